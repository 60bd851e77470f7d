//! Behaviour of the SQLite store: what callers get back and what ends up in the file.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{adt, open, sized};
use hie_core::Envelope;
use hie_store::{
    FaultInjector, Ingested, ManualClock, MessageStore, SearchQuery, SqliteStore, Status, StoreConfig,
    StoreError, TraceKey, WriteBatch,
};

#[test]
fn ingested_message_reads_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (mut msg, idx) = adt("C1", "P1");
    msg.properties.insert("peer".into(), "10.0.0.1:5000".into());
    msg.body = Bytes::from_static(b"MSH|^~\\&|\xff\x00\r");
    store.ingest(&msg, &idx, "in").unwrap();

    let stored = store.get(msg.id).unwrap().expect("stored");
    assert_eq!(stored.envelope, msg);
    assert_eq!(stored.indexed, idx);
    assert_eq!(stored.states.len(), 1);
    assert_eq!(stored.states[0].item, "in");
    assert_eq!(stored.states[0].status, Status::Queued);
    assert_eq!(
        store.ingest(&msg, &idx, "in"),
        Err(StoreError::AlreadyStored { id: msg.id })
    );
}

#[test]
fn concurrent_ingests_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let threads = 16;
    let per_thread = 200;
    let commits: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = store.clone();
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let (msg, idx) = adt(&format!("T{t}-{i}"), "P1");
                            store.ingest(&msg, &idx, "in").expect("ingest").transaction
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let messages = threads * per_thread;
    let transactions: HashSet<u64> = commits.into_iter().flatten().collect();
    let stats = store.stats();
    assert_eq!(store.count_messages().unwrap(), messages as u64);
    assert_eq!(stats.batches, messages as u64);
    assert!(
        stats.transactions < messages as u64,
        "{} transactions for {messages} messages: no group commit",
        stats.transactions
    );
    assert_eq!(transactions.len() as u64, stats.transactions);
}

#[test]
fn recovery_returns_open_work_per_item_in_order_with_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let mut ids_a = Vec::new();
    let mut ids_b = Vec::new();
    {
        let store = open(dir.path());
        for i in 0..6 {
            let (msg, idx) = adt(&format!("A{i}"), "P1");
            store.ingest(&msg, &idx, "a").unwrap();
            ids_a.push(msg.id);
            let (msg, idx) = adt(&format!("B{i}"), "P2");
            store.ingest(&msg, &idx, "b").unwrap();
            ids_b.push(msg.id);
        }
        let mut batch = WriteBatch::new();
        batch
            .mark(ids_a[0], "a", Status::Done, 1, Some("sha256:1"), None)
            .mark(ids_a[1], "a", Status::InFlight, 1, Some("sha256:1"), None)
            .mark(ids_a[2], "a", Status::DeadLettered, 3, None, Some("no route"))
            .mark(ids_a[3], "a", Status::Failed, 2, None, Some("timeout"))
            .mark(ids_b[5], "b", Status::Done, 1, None, None);
        store.write(batch).unwrap();
    }
    let store = open(dir.path());
    let recovered = store.recover().unwrap();
    let got: Vec<(String, uuid::Uuid, u32, bool)> = recovered
        .iter()
        .map(|r| (r.item.clone(), r.envelope.id, r.envelope.attempt, r.was_in_flight))
        .collect();
    let want = vec![
        ("a".to_owned(), ids_a[1], 2, true),
        ("a".to_owned(), ids_a[3], 3, true),
        ("a".to_owned(), ids_a[4], 1, false),
        ("a".to_owned(), ids_a[5], 1, false),
        ("b".to_owned(), ids_b[0], 1, false),
        ("b".to_owned(), ids_b[1], 1, false),
        ("b".to_owned(), ids_b[2], 1, false),
        ("b".to_owned(), ids_b[3], 1, false),
        ("b".to_owned(), ids_b[4], 1, false),
    ];
    assert_eq!(got, want);
    assert_eq!(
        recovered[0].envelope.body,
        store.get(ids_a[1]).unwrap().unwrap().envelope.body
    );
}

#[test]
fn dedup_window_returns_stored_ack_inside_and_stores_outside() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let config = StoreConfig {
        dedup_window: Duration::from_secs(60),
        clock: hie_store::Clock::Manual(clock.clone()),
        ..StoreConfig::default()
    };
    let store = SqliteStore::open(dir.path(), config).unwrap();
    let ack = Bytes::from_static(b"MSH|^~\\&|HIE|HIE|LAB|HOSP||ACK|A1|P|2.5\rMSA|AA|C1\r");
    let (first, idx) = adt("C1", "P1");
    assert!(matches!(
        store.ingest_dedup(&first, &idx, "in", Some(ack.clone())).unwrap(),
        Ingested::Stored(_)
    ));

    clock.advance(Duration::from_secs(59));
    let (resent, _) = adt("C1", "P1");
    assert_eq!(
        store.ingest_dedup(&resent, &idx, "in", None).unwrap(),
        Ingested::Duplicate {
            original: first.id,
            ack: Some(ack.clone())
        }
    );
    assert_eq!(store.get(resent.id).unwrap(), None);

    clock.advance(Duration::from_secs(2));
    let (late, _) = adt("C1", "P1");
    assert!(matches!(
        store.ingest_dedup(&late, &idx, "in", None).unwrap(),
        Ingested::Stored(_)
    ));
    assert!(store.get(late.id).unwrap().is_some());
}

#[test]
fn dedup_sees_a_first_copy_still_without_ack_then_its_recorded_ack() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (first, idx) = adt("C7", "P1");
    store.ingest_dedup(&first, &idx, "in", None).unwrap();
    let (again, _) = adt("C7", "P1");
    assert_eq!(
        store.ingest_dedup(&again, &idx, "in", None).unwrap(),
        Ingested::Duplicate {
            original: first.id,
            ack: None
        }
    );
    let ack = Bytes::from_static(b"MSA|AA|C7");
    store.record_ack(&idx.ack_key().unwrap(), ack.clone()).unwrap();
    assert_eq!(
        store.ingest_dedup(&again, &idx, "in", None).unwrap(),
        Ingested::Duplicate {
            original: first.id,
            ack: Some(ack)
        }
    );
    // another sender with the same control id is a different message
    let (other, mut other_idx) = adt("C7", "P1");
    other_idx.sending_app = Some("RAD".into());
    assert!(matches!(
        store.ingest_dedup(&other, &other_idx, "in", None).unwrap(),
        Ingested::Stored(_)
    ));
}

#[test]
fn a_duplicate_ingest_skips_the_rest_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (first, idx) = adt("C8", "P1");
    let mut batch = WriteBatch::new();
    batch
        .ingest_dedup(&first, &idx, "router", None)
        .enqueue(&first, &idx, "audit");
    assert_eq!(store.write(batch).unwrap().applied.len(), 2);

    let (again, _) = adt("C8", "P1");
    let mut batch = WriteBatch::new();
    batch
        .ingest_dedup(&again, &idx, "router", None)
        .enqueue(&again, &idx, "audit");
    let outcome = store.write(batch).unwrap();
    assert_eq!(
        outcome.applied,
        vec![hie_store::Applied::Duplicate {
            original: first.id,
            ack: None
        }]
    );
    assert_eq!(
        store.get(again.id).unwrap(),
        None,
        "the routing op after it did not store the copy"
    );
    let open: Vec<_> = store
        .recover()
        .unwrap()
        .into_iter()
        .map(|r| (r.item, r.envelope.id))
        .collect();
    assert_eq!(
        open,
        vec![("audit".to_owned(), first.id), ("router".to_owned(), first.id)]
    );
}

#[test]
fn dedup_points_at_the_inbound_copy_not_at_messages_derived_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (first, idx) = adt("C9", "P1");
    store.ingest_dedup(&first, &idx, "in", None).unwrap();
    let child = first.derive("router", "mapped");
    store.enqueue(&child, &idx, "out").unwrap();
    let (again, _) = adt("C9", "P1");
    assert_eq!(
        store.ingest_dedup(&again, &idx, "in", None).unwrap(),
        Ingested::Duplicate {
            original: first.id,
            ack: None
        }
    );
}

#[test]
fn failed_commit_answers_unavailable_and_intake_resumes_after_probe() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let config = StoreConfig {
        fault_injector: Some(faults.clone()),
        probe_interval: Duration::ZERO,
        ..StoreConfig::default()
    };
    let store = SqliteStore::open(dir.path(), config).unwrap();
    let (before, idx) = adt("OK1", "P1");
    store.ingest(&before, &idx, "in").unwrap();

    faults.fail_commits(true);
    let attempts: Vec<(Envelope, Result<_, StoreError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                s.spawn(move || {
                    let (msg, idx) = adt(&format!("F{i}"), "P1");
                    let result = store.ingest(&msg, &idx, "in");
                    (msg, result)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (msg, result) in &attempts {
        assert!(
            matches!(result, Err(StoreError::Unavailable { .. })),
            "got {result:?}"
        );
        assert_eq!(store.get(msg.id).unwrap(), None, "a failed write is visible");
    }
    assert!(faults.injected() > 0);
    assert!(store.stats().faulted);
    assert!(!store.is_writable());
    let mut mark = WriteBatch::new();
    mark.mark(before.id, "in", Status::Done, 1, None, None);
    assert!(matches!(
        store.write(mark.clone()),
        Err(StoreError::Unavailable { .. })
    ));
    assert_eq!(
        store.get(before.id).unwrap().unwrap().states[0].status,
        Status::Queued
    );

    faults.fail_commits(false);
    assert!(store.is_writable());
    assert!(!store.stats().faulted);
    store.write(mark).unwrap();
    let (after, idx) = adt("OK2", "P1");
    store.ingest(&after, &idx, "in").unwrap();
    assert!(store.get(after.id).unwrap().is_some());
    assert_eq!(store.count_messages().unwrap(), 2);
}

#[test]
fn a_bad_batch_fails_alone_inside_a_shared_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (msg, idx) = adt("C1", "P1");
    let mut bad = WriteBatch::new();
    bad.ingest(&msg, &idx, "in")
        .mark(uuid::Uuid::now_v7(), "in", Status::Done, 1, None, None);
    let (good_msg, good_idx) = adt("C2", "P1");
    let mut good = WriteBatch::new();
    good.ingest(&good_msg, &good_idx, "in");
    let bad = store.submit(bad);
    let good = store.submit(good);
    assert!(matches!(bad.wait(), Err(StoreError::NotFound { .. })));
    good.wait().unwrap();
    assert_eq!(
        store.get(msg.id).unwrap(),
        None,
        "a failed batch is all or nothing"
    );
    assert!(store.get(good_msg.id).unwrap().is_some());
    // the rolled-back message is not stored for any later batch either
    let mut mark = WriteBatch::new();
    mark.mark(msg.id, "in", Status::InFlight, 1, None, None);
    assert!(matches!(store.write(mark), Err(StoreError::NotFound { .. })));
}

/// A hop's outcome (new messages, then the mark of the one they came from) commits
/// without a savepoint; a batch that repeats a new message, or marks one that is
/// not stored, still rolls back whole, also when it shares the commit.
#[test]
fn multi_operation_batches_commit_whole_or_roll_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (parent, idx) = adt("H1", "P1");
    store.ingest(&parent, &idx, "route").unwrap();
    let child = |to: &str| {
        let mut c = Envelope::hl7("route", parent.body.clone());
        c.parent_id = Some(parent.id);
        c.target = to.to_owned();
        c
    };
    let (a, b) = (child("a"), child("b"));
    let mut hop = WriteBatch::new();
    hop.enqueue(&a, &idx, "a")
        .enqueue(&b, &idx, "b")
        .mark(parent.id, "route", Status::Done, 1, None, None);
    let twice = child("a");
    let mut repeated = WriteBatch::new();
    repeated.enqueue(&twice, &idx, "a").enqueue(&twice, &idx, "a");
    let orphan = child("b");
    let mut unknown = WriteBatch::new();
    unknown
        .enqueue(&orphan, &idx, "b")
        .mark(uuid::Uuid::now_v7(), "route", Status::Done, 1, None, None);
    let pending = [store.submit(hop), store.submit(repeated), store.submit(unknown)];
    let [hop, repeated, unknown] = pending.map(|p| p.wait());
    hop.unwrap();
    assert!(
        matches!(repeated, Err(StoreError::WrongState { .. })),
        "{repeated:?}"
    );
    assert!(matches!(unknown, Err(StoreError::NotFound { .. })), "{unknown:?}");
    assert_eq!(store.get(twice.id).unwrap(), None, "rolled back whole");
    assert_eq!(store.get(orphan.id).unwrap(), None, "rolled back whole");
    for (c, item) in [(&a, "a"), (&b, "b")] {
        let stored = store.get(c.id).unwrap().expect("the hop's copies are stored");
        assert_eq!(stored.states.len(), 1);
        assert_eq!(
            (stored.states[0].item.as_str(), stored.states[0].status),
            (item, Status::Queued)
        );
    }
    let parent_state = store.get(parent.id).unwrap().unwrap().states;
    assert_eq!(parent_state[0].status, Status::Done);
    assert_eq!(store.count_messages().unwrap(), 3);
    // the trace has the events of what committed, in order, and none of what rolled back
    let session: Vec<(String, Status)> = store
        .trace(TraceKey::Message(parent.id))
        .unwrap()
        .into_iter()
        .map(|e| (e.item, e.status))
        .collect();
    assert_eq!(
        session,
        [
            ("route".to_owned(), Status::Queued),
            ("route".to_owned(), Status::Done)
        ]
    );
    for c in [&a, &b] {
        assert_eq!(store.trace(TraceKey::Message(c.id)).unwrap().len(), 1);
    }
    for gone in [&twice, &orphan] {
        assert!(
            store
                .trace(TraceKey::Message(gone.id))
                .unwrap_or_default()
                .is_empty()
        );
    }
}

/// A routed copy with its parent's body keeps no body of its own, reads back whole
/// (a copy of a copy too), and gets its body back when the parent is purged first.
#[test]
fn routed_copies_share_their_parents_body_until_it_is_purged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (parent, idx) = sized("S1", 4096);
    store.ingest(&parent, &idx, "route").unwrap();
    let derive = |from: &Envelope, to: &str, body: Option<&'static [u8]>| {
        let mut c = Envelope::hl7("route", body.map_or(from.body.clone(), Bytes::from_static));
        c.parent_id = Some(from.id);
        c.session_id = from.session_id;
        c.target = to.to_owned();
        c
    };
    let same = derive(&parent, "a", None);
    let changed = derive(&parent, "b", Some(b"MSH|^~\\&|changed\r"));
    let mut other_session = derive(&parent, "c", None);
    other_session.session_id = uuid::Uuid::now_v7();
    let mut hop = WriteBatch::new();
    hop.enqueue_copy(&same, &idx, "a", &parent)
        .enqueue_copy(&changed, &idx, "b", &parent)
        .enqueue_copy(&other_session, &idx, "c", &parent)
        .mark(parent.id, "route", Status::Done, 1, None, None);
    store.write(hop).unwrap();
    let again = derive(&same, "d", None);
    let mut next = WriteBatch::new();
    next.enqueue_copy(&again, &idx, "d", &same);
    store.write(next).unwrap();

    for m in [&same, &changed, &other_session, &again] {
        assert_eq!(store.get(m.id).unwrap().unwrap().envelope, *m, "reads back whole");
    }
    let summary = store
        .search(&SearchQuery {
            control_id: Some("S1".into()),
            ..SearchQuery::default()
        })
        .unwrap();
    assert!(summary.iter().all(|m| m.body_len > 0), "{summary:?}");
    let shared = |id: uuid::Uuid| -> (i64, Option<i64>) {
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        conn.query_row(
            "SELECT length(body), body_of FROM messages WHERE id = ?1",
            [id.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let (parent_len, _) = shared(parent.id);
    assert_eq!(parent_len, 4096);
    let (len, of) = shared(same.id);
    assert_eq!((len, of.is_some()), (0, true), "the copy holds no body");
    assert_eq!(
        shared(again.id).1,
        of,
        "a copy of a copy refers to the row with the bytes"
    );
    assert_eq!(
        shared(changed.id),
        (changed.body.len() as i64, None),
        "a changed body is its own"
    );
    assert_eq!(shared(other_session.id).1, None, "another session keeps its own");

    // the parent and its done copies go, the dead-lettered copy stays with its body
    for (m, item) in [(&same, "a"), (&changed, "b"), (&other_session, "c")] {
        store.mark(m.id, item, Status::Done, 1, None, None).unwrap();
    }
    store
        .mark(again.id, "d", Status::DeadLettered, 1, None, Some("down"))
        .unwrap();
    let purged = store.purge(i64::MAX as u64, &[Status::Done]).unwrap();
    assert_eq!(purged, 4);
    assert_eq!(store.get(parent.id).unwrap(), None);
    let kept = store.get(again.id).unwrap().expect("a dead letter is not purged");
    assert_eq!(kept.envelope.body, parent.body, "its body survives the parent");
    assert_eq!(shared(again.id), (4096, None));
}

/// One-operation batches run without a savepoint: each refused one must have
/// written nothing, while the others in the same commit are kept.
#[test]
fn refused_single_operation_batches_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (msg, idx) = adt("C1", "P1");
    store.ingest(&msg, &idx, "in").unwrap();
    let before = store.get(msg.id).unwrap().unwrap();
    let events_before = store.trace(TraceKey::Message(msg.id)).unwrap().len();

    let single = |build: &dyn Fn(&mut WriteBatch)| {
        let mut b = WriteBatch::new();
        build(&mut b);
        b
    };
    let (other, other_idx) = adt("C2", "P2");
    let refused = [
        // unknown message
        single(&|b| {
            b.mark(uuid::Uuid::now_v7(), "in", Status::Done, 1, None, None);
        }),
        // stored already
        single(&|b| {
            b.ingest(&msg, &idx, "router");
        }),
        // queued at that item already
        single(&|b| {
            b.enqueue(&msg, &idx, "in");
        }),
        // not a dead letter
        single(&|b| {
            b.requeue_dead_letter(msg.id, "in");
        }),
    ];
    let mut good = WriteBatch::new();
    good.ingest(&other, &other_idx, "in");
    let pending: Vec<_> = refused.into_iter().map(|b| store.submit(b)).collect();
    let good = store.submit(good);
    for p in pending {
        assert!(p.wait().is_err(), "the batch should have been refused");
    }
    good.wait().unwrap();

    assert_eq!(store.get(msg.id).unwrap().unwrap(), before);
    assert_eq!(
        store.trace(TraceKey::Message(msg.id)).unwrap().len(),
        events_before,
        "a refused operation wrote an event"
    );
    assert!(store.get(other.id).unwrap().is_some());
    assert_eq!(store.count_messages().unwrap(), 2);
}

#[tokio::test]
async fn submit_can_be_awaited() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (msg, idx) = adt("C1", "P1");
    let mut batch = WriteBatch::new();
    batch.ingest(&msg, &idx, "in");
    let outcome = store.submit(batch).await.unwrap();
    assert_eq!(outcome.applied, vec![hie_store::Applied::Stored]);
    assert!(store.get(msg.id).unwrap().is_some());
}

#[test]
fn search_finds_by_each_filter_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut ids = Vec::new();
    for i in 0..20 {
        let (mut msg, mut idx) = adt(&format!("C{i}"), &format!("P{}", i % 3));
        if i % 2 == 1 {
            idx.message_type = Some("ORU^R01".into());
        }
        msg.created_at_ms = 1_000 + i;
        store.ingest(&msg, &idx, "in").unwrap();
        ids.push(msg.id);
    }
    store.mark(ids[4], "in", Status::Done, 1, None, None).unwrap();
    let child = Envelope::hl7("router", "x");
    store.enqueue(&child, &Default::default(), "out").unwrap();
    let search =
        |q: SearchQuery| -> Vec<uuid::Uuid> { store.search(&q).unwrap().into_iter().map(|s| s.id).collect() };

    assert_eq!(
        search(SearchQuery {
            control_id: Some("C7".into()),
            ..Default::default()
        }),
        vec![ids[7]]
    );
    assert_eq!(
        search(SearchQuery {
            patient_id: Some("P1".into()),
            ..Default::default()
        }),
        vec![ids[19], ids[16], ids[13], ids[10], ids[7], ids[4], ids[1]]
    );
    assert_eq!(
        search(SearchQuery {
            patient_id: Some("P1".into()),
            message_type: Some("ORU^R01".into()),
            limit: 2,
            ..Default::default()
        }),
        vec![ids[19], ids[13]]
    );
    assert_eq!(
        search(SearchQuery {
            status: Some(Status::Done),
            ..Default::default()
        }),
        vec![ids[4]]
    );
    assert_eq!(
        search(SearchQuery {
            item: Some("out".into()),
            ..Default::default()
        }),
        vec![child.id]
    );
    assert_eq!(
        search(SearchQuery {
            since_ms: Some(1_003),
            until_ms: Some(1_005),
            ..Default::default()
        }),
        vec![ids[4], ids[3]]
    );
    assert_eq!(
        search(SearchQuery {
            session: Some(ids[2]),
            ..Default::default()
        }),
        vec![ids[2]]
    );
}

#[test]
fn search_by_control_id_and_patient_uses_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..50 {
        let (msg, idx) = adt(&format!("C{i}"), &format!("P{i}"));
        store.ingest(&msg, &idx, "in").unwrap();
    }
    for (query, index) in [
        (
            SearchQuery {
                control_id: Some("C3".into()),
                ..Default::default()
            },
            "messages_control_id",
        ),
        (
            SearchQuery {
                patient_id: Some("P3".into()),
                ..Default::default()
            },
            "messages_patient_id",
        ),
        (
            SearchQuery {
                patient_id: Some("P3".into()),
                status: Some(Status::Queued),
                ..Default::default()
            },
            "messages_patient_id",
        ),
    ] {
        let plan = store.explain_search(&query).unwrap();
        assert!(
            plan.iter()
                .any(|line| line.contains("USING INDEX") && line.contains(index)),
            "plan for {query:?} does not use {index}: {plan:?}"
        );
        assert!(
            !plan.iter().any(|line| line.starts_with("SCAN m")),
            "plan scans messages: {plan:?}"
        );
    }
}

#[test]
fn trace_lists_hops_of_a_message_and_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (msg, idx) = adt("C1", "P1");
    store.ingest(&msg, &idx, "in").unwrap();
    let child = msg.derive("router", "transformed");
    let mut batch = WriteBatch::new();
    batch
        .mark(msg.id, "in", Status::InFlight, 1, Some("sha256:aa"), None)
        .enqueue(&child, &idx, "out")
        .mark(msg.id, "in", Status::Done, 1, Some("sha256:aa"), None);
    store.write(batch).unwrap();
    store
        .mark(
            child.id,
            "out",
            Status::Failed,
            1,
            Some("sha256:bb"),
            Some("connection refused"),
        )
        .unwrap();

    let hops = |key| -> Vec<(uuid::Uuid, String, Status, Option<String>)> {
        store
            .trace(key)
            .unwrap()
            .into_iter()
            .map(|e| (e.message_id, e.item, e.status, e.error))
            .collect()
    };
    assert_eq!(
        hops(TraceKey::Message(msg.id)),
        vec![
            (msg.id, "in".into(), Status::Queued, None),
            (msg.id, "in".into(), Status::InFlight, None),
            (msg.id, "in".into(), Status::Done, None),
        ]
    );
    let session = hops(TraceKey::Session(msg.session_id));
    assert_eq!(session.len(), 5);
    assert_eq!(
        session[4],
        (
            child.id,
            "out".into(),
            Status::Failed,
            Some("connection refused".into())
        )
    );
    let events = store.trace(TraceKey::Message(child.id)).unwrap();
    assert_eq!(events[0].parent_id, Some(msg.id));
    assert_eq!(events[1].plugin_version.as_deref(), Some("sha256:bb"));
}

#[test]
fn dead_letters_can_be_listed_requeued_and_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, idx_a) = adt("C1", "P1");
    let (b, idx_b) = adt("C2", "P1");
    store.ingest(&a, &idx_a, "out").unwrap();
    store.ingest(&b, &idx_b, "out").unwrap();
    store
        .mark(a.id, "out", Status::DeadLettered, 3, None, Some("AR from peer"))
        .unwrap();
    store
        .mark(b.id, "out", Status::DeadLettered, 2, None, Some("timeout"))
        .unwrap();

    let listed = store.dead_letters(Some("out"), 10).unwrap();
    assert_eq!(
        listed.iter().map(|d| d.summary.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    assert_eq!(listed[0].error.as_deref(), Some("AR from peer"));
    assert_eq!(listed[0].attempt, 3);
    assert!(store.dead_letters(Some("other"), 10).unwrap().is_empty());

    store.requeue_dead_letter(a.id, "out").unwrap();
    store.discard_dead_letter(b.id, "out").unwrap();
    assert!(store.dead_letters(None, 10).unwrap().is_empty());
    let recovered = store.recover().unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        (recovered[0].envelope.id, recovered[0].envelope.attempt),
        (a.id, 4)
    );
    assert_eq!(
        store.get(b.id).unwrap().unwrap().states[0].status,
        Status::Discarded
    );
    assert!(matches!(
        store.discard_dead_letter(a.id, "out"),
        Err(StoreError::WrongState { .. })
    ));
}

#[test]
fn dead_letter_stores_a_message_refused_before_any_queue_and_marks_a_queued_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (never_queued, idx) = adt("D1", "P1");
    let (queued, idx2) = adt("D2", "P1");
    store.ingest(&queued, &idx2, "out").unwrap();
    let mut batch = WriteBatch::new();
    batch
        .dead_letter(
            &never_queued,
            &idx,
            "out",
            "queue-full: queue of item out is full (1)",
        )
        .dead_letter(&queued, &idx2, "out", "reply-fail: AR");
    store.write(batch).unwrap();
    let letters = store.dead_letters(Some("out"), 10).unwrap();
    let ids: Vec<_> = letters.iter().map(|l| l.summary.id).collect();
    assert_eq!(ids, vec![queued.id, never_queued.id]);
    assert_eq!(
        letters[1].error.as_deref(),
        Some("queue-full: queue of item out is full (1)")
    );
    assert!(
        store.recover().unwrap().is_empty(),
        "dead letters are not open work"
    );
    store.requeue_dead_letter(never_queued.id, "out").unwrap();
    assert_eq!(store.recover().unwrap()[0].envelope.id, never_queued.id);
}

#[test]
fn resend_queues_a_copy_with_a_fresh_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (msg, idx) = adt("C1", "P1");
    store.ingest(&msg, &idx, "in").unwrap();
    store.mark(msg.id, "in", Status::Done, 1, None, None).unwrap();
    let copy_id = store.resend(msg.id, "out").unwrap();
    assert_ne!(copy_id, msg.id);
    let copy = store.get(copy_id).unwrap().unwrap();
    assert_eq!(copy.envelope.body, msg.body);
    assert_eq!(copy.envelope.parent_id, Some(msg.id));
    assert_eq!(copy.envelope.session_id, msg.session_id);
    assert_eq!(copy.indexed, idx);
    let recovered = store.recover().unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        (recovered[0].item.as_str(), recovered[0].envelope.id),
        ("out", copy_id)
    );
    assert!(matches!(
        store.resend(uuid::Uuid::now_v7(), "out"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn purge_keeps_open_work_and_the_file_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut done = Vec::new();
    let mut open_ids = Vec::new();
    for chunk in 0..20 {
        let mut batch = WriteBatch::new();
        for i in 0..100 {
            let (msg, idx) = sized(&format!("C{chunk}-{i}"), 8 * 1024);
            batch.ingest(&msg, &idx, "in");
            if i == 0 {
                open_ids.push(msg.id);
            } else {
                batch.mark(msg.id, "in", Status::Done, 1, None, None);
                done.push(msg.id);
            }
        }
        store.write(batch).unwrap();
    }
    store.reclaim_space().unwrap();
    let before = std::fs::metadata(store.path()).unwrap().len();

    assert!(matches!(
        store.purge(u64::MAX, &[Status::Queued]),
        Err(StoreError::Invalid(_))
    ));
    let purged = store.purge(hie_core::now_ms() + 1, &[Status::Done]).unwrap();
    assert_eq!(purged, done.len() as u64);
    let freed = store.reclaim_space().unwrap();
    let after = std::fs::metadata(store.path()).unwrap().len();

    assert!(after * 4 < before, "file went from {before} to {after} bytes");
    assert!(freed > 0);
    assert_eq!(store.count_messages().unwrap(), open_ids.len() as u64);
    for id in &open_ids {
        assert!(store.get(*id).unwrap().is_some());
    }
    assert_eq!(store.get(done[0]).unwrap(), None);
    assert!(store.trace(TraceKey::Message(done[0])).unwrap().is_empty());
}

#[test]
fn background_retention_purges_and_stops_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (msg, idx) = adt("C1", "P1");
    store.ingest(&msg, &idx, "in").unwrap();
    store.mark(msg.id, "in", Status::Done, 1, None, None).unwrap();
    let policy = hie_store::RetentionPolicy {
        keep_for: Duration::ZERO,
        ..Default::default()
    };
    let task = store.spawn_retention(policy, Duration::from_millis(10)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.count_messages().unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "retention did not purge within 10 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(task);
}

#[test]
fn store_handles_outlive_each_other_and_the_writer_commits_before_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let (msg, idx) = adt("C1", "P1");
    let mut batch = WriteBatch::new();
    batch.ingest(&msg, &idx, "in");
    let pending = store.submit(batch);
    drop(store);
    pending.wait().unwrap();
    assert!(open(dir.path()).get(msg.id).unwrap().is_some());
}

/// The ACK of an inbound message is kept in its row (schema 4): nothing goes to
/// `acks` while messages are stored, and a re-send finds the ACK through the row.
/// A message purged inside the de-duplication window leaves its ACK in `acks`, so a
/// re-send still gets it and is not stored again.
#[test]
fn acks_live_in_the_message_row_and_outlive_a_purge_inside_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (first, idx) = adt("K1", "P1");
    let ack = Bytes::from_static(b"MSH|^~\\&|HIE||SND||20260101||ACK|A1|P|2.5\rMSA|AA|K1\r");
    store.ingest_dedup(&first, &idx, "in", Some(ack.clone())).unwrap();
    // application mode: stored first, the ACK recorded when the route answers
    let (second, idx2) = adt("K2", "P2");
    store.ingest_dedup(&second, &idx2, "in", None).unwrap();
    let late = Bytes::from_static(b"MSA|AE|K2");
    store.record_ack(&idx2.ack_key().unwrap(), late.clone()).unwrap();
    let dup = |key: &str, idx: &hie_store::Indexed| {
        let (again, _) = adt(key, "P1");
        store.ingest_dedup(&again, idx, "in", None).unwrap()
    };
    assert_eq!(
        dup("K1", &idx),
        Ingested::Duplicate {
            original: first.id,
            ack: Some(ack.clone())
        }
    );
    assert_eq!(
        dup("K2", &idx2),
        Ingested::Duplicate {
            original: second.id,
            ack: Some(late.clone())
        }
    );
    let db = dir.path().join("hie-store.sqlite");
    let count = |sql: &str| -> i64 {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM acks"), 0);
    assert_eq!(count("SELECT count(*) FROM messages WHERE ack IS NOT NULL"), 2);
    // purged while still inside the window: the ACK stays for re-sends
    store.mark(first.id, "in", Status::Done, 1, None, None).unwrap();
    assert_eq!(store.purge(hie_core::now_ms() + 1, &[Status::Done]).unwrap(), 1);
    assert!(store.get(first.id).unwrap().is_none());
    assert_eq!(
        dup("K1", &idx),
        Ingested::Duplicate {
            original: first.id,
            ack: Some(ack)
        }
    );
    assert_eq!(count("SELECT count(*) FROM acks"), 1);
}

/// A store from before schema 4 kept its ACKs in `acks`, with or without the
/// message's id (application mode recorded them by key only). Opening it moves
/// each ACK into its message's row; re-sends get the same ACKs as before.
#[test]
fn migration_4_moves_cached_acks_into_their_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (first, idx) = adt("M1", "P1");
    let (second, idx2) = adt("M2", "P2");
    {
        let store = open(dir.path());
        store.ingest_dedup(&first, &idx, "in", None).unwrap();
        store.ingest_dedup(&second, &idx2, "in", None).unwrap();
    }
    // make it a version 3 file: ACKs in `acks`, no `ack` column
    let db = dir.path().join("hie-store.sqlite");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let key = idx.ack_key().unwrap();
        let key2 = idx2.ack_key().unwrap();
        conn.execute(
            "INSERT INTO acks (sending_app, sending_facility, control_id, ack, message_id, at_ms) \
             VALUES (?1, ?2, ?3, CAST('ACK-M1' AS BLOB), ?4, ?5), (?6, ?7, ?8, CAST('ACK-M2' AS BLOB), NULL, ?5)",
            rusqlite::params![
                key.sending_app,
                key.sending_facility,
                key.control_id,
                first.id.as_bytes(),
                hie_core::now_ms() as i64,
                key2.sending_app,
                key2.sending_facility,
                key2.control_id,
            ],
        )
        .unwrap();
        conn.execute_batch("ALTER TABLE messages DROP COLUMN ack; PRAGMA user_version = 3;")
            .unwrap();
    }
    let store = open(dir.path());
    for (key, idx, original, ack) in [
        ("M1", &idx, first.id, "ACK-M1"),
        ("M2", &idx2, second.id, "ACK-M2"),
    ] {
        let (again, _) = adt(key, "P1");
        assert_eq!(
            store.ingest_dedup(&again, idx, "in", None).unwrap(),
            Ingested::Duplicate {
                original,
                ack: Some(Bytes::from(ack))
            }
        );
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM acks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "every ACK found its message");
}

/// An in-flight mark followed by a later state of the same hop in one commit is
/// only an event (the later state is what the queue keeps); an in-flight mark
/// alone is the queue's state after its commit; one in a batch that is refused
/// leaves neither state nor event.
#[test]
fn in_flight_marks_leave_the_same_states_and_trace_in_any_grouping() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let ingest = |id: &str| {
        let (m, idx) = adt(id, "P1");
        store.ingest(&m, &idx, "route").unwrap();
        (m, idx)
    };
    let ((done, _), (flying, _), (refused, idx)) = (ingest("F1"), ingest("F2"), ingest("F3"));
    let mut hop = WriteBatch::new();
    hop.mark(done.id, "route", Status::InFlight, 1, None, None).mark(
        done.id,
        "route",
        Status::Done,
        1,
        None,
        None,
    );
    store.write(hop).unwrap();
    let mut alone = WriteBatch::new();
    alone.mark(flying.id, "route", Status::InFlight, 2, None, None);
    store.write(alone).unwrap();
    let twice = {
        let mut c = Envelope::hl7("route", refused.body.clone());
        c.parent_id = Some(refused.id);
        c
    };
    let mut bad = WriteBatch::new();
    bad.mark(refused.id, "route", Status::InFlight, 1, None, None)
        .enqueue(&twice, &idx, "a")
        .enqueue(&twice, &idx, "a");
    assert!(matches!(store.write(bad), Err(StoreError::WrongState { .. })));
    // a later commit does not write what the refused batch left behind
    let (_, _) = ingest("F4");
    let state = |id| {
        let s = store.get(id).unwrap().unwrap().states;
        assert_eq!(s.len(), 1);
        (s[0].status, s[0].attempt)
    };
    assert_eq!(state(done.id), (Status::Done, 1));
    assert_eq!(state(flying.id), (Status::InFlight, 2));
    assert_eq!(state(refused.id), (Status::Queued, 1));
    let trace = |id| -> Vec<Status> {
        store
            .trace(TraceKey::Message(id))
            .unwrap()
            .into_iter()
            .map(|e| e.status)
            .collect()
    };
    assert_eq!(trace(done.id), [Status::Queued, Status::InFlight, Status::Done]);
    assert_eq!(trace(flying.id), [Status::Queued, Status::InFlight]);
    assert_eq!(trace(refused.id), [Status::Queued]);
    // recovery runs the one left in flight again with attempt + 1
    let recovered = store.recover().unwrap();
    let again = recovered.iter().find(|r| r.envelope.id == flying.id).unwrap();
    assert!(again.was_in_flight);
    assert_eq!(again.envelope.attempt, 3);
}

/// A new inbound message is inserted without looking its id up first: one stored
/// already is refused by the insert (the id is unique), with nothing written, and
/// the batches that share its commit are not disturbed.
#[test]
fn an_ingest_of_a_stored_id_is_refused_by_the_insert_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (first, idx) = adt("U1", "P1");
    store.ingest(&first, &idx, "in").unwrap();
    // reopened, so the writer has no memory of the id
    drop(store);
    let store = open(dir.path());
    let (next, idx2) = adt("U2", "P2");
    let mut again = WriteBatch::new();
    again.ingest(&first, &idx, "in");
    let mut other = WriteBatch::new();
    other.ingest(&next, &idx2, "in");
    let pending = [store.submit(again), store.submit(other)];
    let [again, other] = pending.map(|p| p.wait());
    assert!(
        matches!(again, Err(StoreError::AlreadyStored { id }) if id == first.id),
        "{again:?}"
    );
    other.unwrap();
    assert_eq!(store.get(next.id).unwrap().unwrap().envelope, next);
    assert_eq!(store.count_messages().unwrap(), 2);
    assert_eq!(store.trace(TraceKey::Message(first.id)).unwrap().len(), 1);
}

/// The writer thread asks for nice level -10 (`StoreConfig::writer_nice`); with the
/// right to (root here, or CAP_SYS_NICE, or a nice limit) it gets it, and the
/// store's other threads keep the process's level. 0 leaves the writer alone.
#[test]
fn the_writer_thread_runs_at_its_nice_level() {
    let nice_of_writers = || -> Vec<i64> {
        let mut levels = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() != "hie-store-write" {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // fields after the command name: state is the 3rd field, nice the 19th
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            levels.push(after.split(' ').nth(16).unwrap().parse().unwrap());
        }
        levels
    };
    let root = rustix::process::geteuid().is_root();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (m, idx) = adt("N1", "P1");
    store.ingest(&m, &idx, "in").unwrap();
    let levels = nice_of_writers();
    assert!(!levels.is_empty());
    if root {
        assert!(levels.contains(&-10), "{levels:?}");
    }
    assert!(levels.iter().all(|l| *l == -10 || *l == 0), "{levels:?}");
    drop(store);
    let plain = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        writer_nice: 0,
        ..StoreConfig::default()
    };
    let store = SqliteStore::open(plain.path(), config).unwrap();
    store.ingest(&m, &idx, "in").unwrap();
    assert!(nice_of_writers().contains(&0), "{:?}", nice_of_writers());
}
