//! Message routes: search, show, trace, resend, purge, over the durable store
//! (the engine's operator methods, shared with `hie messages`). Store reads
//! block, so each handler runs them on the blocking pool.

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hie_core::MessageId;
use hie_engine::messages::{MessageQuery, MessageStatus, MessageSummary};
use hie_engine::{Engine, EngineError};
use hie_store::StoreError;

use crate::api::*;
use crate::routes::{AdminState, ApiBody, ApiPath, ApiQuery};

/// Most search results one request returns.
pub const MAX_SEARCH: usize = 10_000;

/// The message routes.
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/api/v1/messages", get(search))
        .route("/api/v1/messages/purge", post(purge))
        .route("/api/v1/messages/{id}", get(show))
        .route("/api/v1/messages/{id}/trace", get(trace))
        .route("/api/v1/messages/{id}/resend", post(resend))
}

/// Store failures as the caller sees them.
fn store_error(e: EngineError) -> ApiError {
    match &e {
        EngineError::NoStore => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        EngineError::Store(StoreError::NotFound { .. }) => {
            ApiError::not_found(format!("{e}: `hie messages search` finds stored messages"))
        }
        EngineError::Store(StoreError::Invalid(_) | StoreError::WrongState { .. }) => {
            ApiError::bad_request(e.to_string())
        }
        EngineError::Store(StoreError::Unavailable { .. }) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e}: the store cannot be written; see the engine log and /ready"),
        ),
        _ => ApiError::from(e),
    }
}

/// Run a blocking store call off the async threads.
async fn blocking<T: Send + 'static>(
    engine: &Arc<Engine>,
    f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || f(&engine))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("store task failed: {e}"),
            )
        })?
        .map_err(store_error)
}

fn message_id(text: &str, what: &str) -> Result<MessageId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{text:?} is not a {what} id: ids are UUIDs as `hie messages search` lists them"
        ))
    })
}

fn status(text: &str) -> Result<MessageStatus, ApiError> {
    MessageStatus::from_str(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn summary(m: &MessageSummary) -> MessageSummaryView {
    MessageSummaryView {
        id: m.id.to_string(),
        session_id: m.session_id.to_string(),
        parent_id: m.parent_id.map(|p| p.to_string()),
        source: m.source.clone(),
        target: m.target.clone(),
        created_at_ms: m.created_at_ms,
        content_type: m.content_type.clone(),
        message_type: m.indexed.message_type.clone(),
        control_id: m.indexed.control_id.clone(),
        sending_app: m.indexed.sending_app.clone(),
        body_len: m.body_len,
    }
}

fn trace_view(e: &hie_store::TraceEvent) -> TraceEventView {
    TraceEventView {
        message_id: e.message_id.to_string(),
        parent_id: e.parent_id.map(|p| p.to_string()),
        item: e.item.clone(),
        status: e.status.as_str().to_string(),
        at_ms: e.at_ms,
        attempt: e.attempt,
        plugin_version: e.plugin_version.clone(),
        error: e.error.clone(),
    }
}

/// Find stored messages, newest first (headers only).
#[utoipa::path(get, path = "/api/v1/messages", tag = "messages",
    params(SearchParams),
    responses((status = 200, description = "Matching messages, newest first", body = [MessageSummaryView]),
              (status = 400, description = "A filter is not valid", body = ErrorBody),
              (status = 409, description = "The production keeps no messages", body = ErrorBody),
              (status = 503, description = "The store cannot be read", body = ErrorBody),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn search(
    State(s): State<AdminState>,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> Result<Json<Vec<MessageSummaryView>>, ApiError> {
    let query = MessageQuery {
        since_ms: p.since_ms,
        until_ms: p.until_ms,
        message_type: p.message_type,
        status: p.status.as_deref().map(status).transpose()?,
        item: p.item,
        session: p
            .session
            .as_deref()
            .map(|t| message_id(t, "session"))
            .transpose()?,
        control_id: p.control_id,
        patient_id: p.patient_id,
        limit: p.limit.unwrap_or(100).min(MAX_SEARCH),
    };
    let found = blocking(&s.engine, move |e| e.search_messages(&query)).await?;
    Ok(Json(found.iter().map(summary).collect()))
}

/// One stored message: header, body and the trace of its hops.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, description = "The message", body = MessageView),
              (status = 400, description = "Not a message id", body = ErrorBody),
              (status = 404, description = "No such message", body = ErrorBody),
              (status = 409, description = "The production keeps no messages", body = ErrorBody),
              (status = 503, description = "The store cannot be read", body = ErrorBody),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn show(
    State(s): State<AdminState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MessageView>, ApiError> {
    let id = message_id(&id, "message")?;
    let detail = blocking(&s.engine, move |e| e.show_message(id))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no stored message {id}: `hie messages search` finds them"
            ))
        })?;
    tracing::info!(message_id = %id, "message body shown through the admin api");
    let body_len = detail.body.len() as u64;
    Ok(Json(MessageView {
        summary: MessageSummaryView {
            id: detail.id.to_string(),
            session_id: detail.session_id.to_string(),
            parent_id: detail.parent_id.map(|p| p.to_string()),
            source: detail.source,
            target: detail.target,
            created_at_ms: detail.created_at_ms,
            content_type: detail.content_type,
            message_type: detail.indexed.message_type,
            control_id: detail.indexed.control_id,
            sending_app: detail.indexed.sending_app,
            body_len,
        },
        body: detail.body,
        trace: detail.trace.iter().map(trace_view).collect(),
    }))
}

/// Query of `GET /api/v1/messages/{id}/trace`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceParams {
    /// Trace every message of the id's session (the id may be a session id).
    #[serde(default)]
    pub session: bool,
}

/// The hops of a message, or of its whole session, oldest first.
#[utoipa::path(get, path = "/api/v1/messages/{id}/trace", tag = "messages",
    params(("id" = String, Path, description = "Message id (or session id with session=true)"), TraceParams),
    responses((status = 200, description = "Status changes, oldest first", body = [TraceEventView]),
              (status = 400, description = "Not a message id", body = ErrorBody),
              (status = 404, description = "No such message", body = ErrorBody),
              (status = 409, description = "The production keeps no messages", body = ErrorBody),
              (status = 503, description = "The store cannot be read", body = ErrorBody),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn trace(
    State(s): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<TraceParams>,
) -> Result<Json<Vec<TraceEventView>>, ApiError> {
    let id = message_id(&id, "message")?;
    let events = blocking(&s.engine, move |e| {
        if !p.session {
            return Ok(e.show_message(id)?.map(|d| d.trace));
        }
        // the id may be a message of the session or the session itself
        let session = e.show_message(id)?.map_or(id, |d| d.session_id);
        Ok(Some(e.trace_session(session)?))
    })
    .await?
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "no stored message {id}: `hie messages search` finds them"
        ))
    })?;
    Ok(Json(events.iter().map(trace_view).collect()))
}

/// Queue a copy of a stored message again (new id, parent = the original).
#[utoipa::path(post, path = "/api/v1/messages/{id}/resend", tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    request_body(content = ResendRequest, description = "Where to send it (default: where it went)"),
    responses((status = 200, description = "Queued", body = Resent),
              (status = 400, description = "Not a message id, or a bad body", body = ErrorBody),
              (status = 404, description = "No such message or item", body = ErrorBody),
              (status = 409, description = "The item refused it (now a dead letter), or no store", body = ErrorBody),
              (status = 413, description = "Body over 64 KiB", body = ErrorBody),
              (status = 503, description = "The store cannot be written", body = ErrorBody),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn resend(
    State(s): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    body: ApiBody,
) -> Result<Json<Resent>, ApiError> {
    let id = message_id(&id, "message")?;
    let to = body.json_or_default::<ResendRequest>()?.to;
    let (copy, item) = blocking(&s.engine, move |e| {
        let copy = e.resend(id, to.as_deref())?;
        let item = e.show_message(copy)?.map(|d| d.target).unwrap_or_default();
        Ok((copy, item))
    })
    .await?;
    Ok(Json(Resent {
        id: copy.to_string(),
        to: item,
    }))
}

/// Delete old messages and give the space back to the file system.
#[utoipa::path(post, path = "/api/v1/messages/purge", tag = "messages",
    request_body = PurgeRequest,
    responses((status = 200, description = "Purged", body = Purged),
              (status = 400, description = "No body, a body that is not the JSON described, a bad age or status", body = ErrorBody),
              (status = 409, description = "The production keeps no messages", body = ErrorBody),
              (status = 413, description = "Body over 64 KiB", body = ErrorBody),
              (status = 503, description = "The store cannot be written", body = ErrorBody),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn purge(State(s): State<AdminState>, body: ApiBody) -> Result<Json<Purged>, ApiError> {
    let p: PurgeRequest = body.json()?;
    let older_than = humantime::parse_duration(p.older_than.trim()).map_err(|e| {
        ApiError::bad_request(format!(
            "older_than {:?}: {e}; give an age such as \"30d\" or \"12h\"",
            p.older_than
        ))
    })?;
    let statuses = if p.statuses.is_empty() {
        vec![MessageStatus::Done]
    } else {
        p.statuses.iter().map(|t| status(t)).collect::<Result<_, _>>()?
    };
    let report = blocking(&s.engine, move |e| e.purge(older_than, &statuses)).await?;
    Ok(Json(Purged {
        purged: report.purged,
        reclaimed_bytes: report.reclaimed_bytes,
    }))
}
