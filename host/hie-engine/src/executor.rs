//! Executors: where an item's workers run.
//!
//! Every worker runs the same loop (`worker.rs`): take from the item's queue, call
//! the plugin, deliver the outcome. An executor only decides how many workers
//! there are and what they run on. Plugin calls block (a `send-request-sync`
//! waits for another item), so no worker ever runs on an async task:
//!
//! - `async`: `pool_size` workers on the tokio runtime's blocking pool;
//! - `single_process`: one dedicated OS thread, strictly serial;
//! - `thread_pool`: `threads` dedicated OS threads;
//! - `multi_process`: `processes × threads` dedicated OS threads in the engine,
//!   whose [`crate::ItemInstance`] is a proxy to the item's `hie worker`
//!   processes (see [`crate::process`]), so items, queues and the worker loop
//!   stay as they are; each engine thread has one call in flight, so each
//!   process has about `threads` calls in flight, one per worker thread.

use std::io;

use hie_config::{Execution, ItemConfig};
use tokio::runtime::Handle;

use crate::error::EngineError;

/// How an item's workers are run.
#[derive(Debug, Clone)]
pub enum Executor {
    /// Workers on the runtime's blocking pool.
    Blocking {
        /// Number of workers.
        workers: usize,
        /// The runtime.
        runtime: Handle,
    },
    /// Workers on dedicated OS threads.
    Threads {
        /// Number of workers.
        workers: usize,
    },
}

/// A running worker, to be joined on stop.
#[derive(Debug)]
pub enum WorkerJoin {
    /// A dedicated thread.
    Thread(std::thread::JoinHandle<()>),
    /// A blocking-pool task.
    Blocking(tokio::task::JoinHandle<()>),
}

impl WorkerJoin {
    /// Whether the worker has ended.
    pub fn is_finished(&self) -> bool {
        match self {
            WorkerJoin::Thread(t) => t.is_finished(),
            WorkerJoin::Blocking(t) => t.is_finished(),
        }
    }
}

impl Executor {
    /// The executor for `item`, or why it cannot run.
    pub fn for_item(item: &ItemConfig, runtime: &Handle) -> Result<Executor, EngineError> {
        match item.execution {
            Execution::Async => Ok(Executor::Blocking {
                workers: item.pool_size,
                runtime: runtime.clone(),
            }),
            Execution::SingleProcess => Ok(Executor::Threads { workers: 1 }),
            Execution::ThreadPool { threads } => Ok(Executor::Threads { workers: threads }),
            Execution::MultiProcess { .. } if item.plugin.is_none() => Err(EngineError::Unsupported {
                item: item.name.clone(),
                what: "execution mode \"multi_process\" without a plugin (it runs the plugin in worker processes; \
                       give the item a plugin or use \"thread_pool\")"
                    .into(),
            }),
            Execution::MultiProcess { processes, threads } => Ok(Executor::Threads {
                workers: processes.saturating_mul(threads).max(1),
            }),
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        match self {
            Executor::Blocking { workers, .. } | Executor::Threads { workers } => *workers,
        }
    }

    /// Start one worker running `job`.
    pub fn spawn(&self, name: String, job: impl FnOnce() + Send + 'static) -> io::Result<WorkerJoin> {
        match self {
            Executor::Blocking { runtime, .. } => Ok(WorkerJoin::Blocking(runtime.spawn_blocking(job))),
            Executor::Threads { .. } => std::thread::Builder::new()
                .name(name)
                .spawn(job)
                .map(WorkerJoin::Thread),
        }
    }
}
