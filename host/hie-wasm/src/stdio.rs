//! Guest stdout and stderr, captured line by line into the log (with the item as a
//! field) instead of being inherited from the host process.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line logged; the rest of a longer line is cut.
const MAX_LINE: usize = 1024;
/// Lines of stderr kept per call to explain a trap (a Rust panic prints two).
const TAIL_LINES: usize = 3;

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// One guest output stream. Clones share the same line buffer.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    inner: Arc<Mutex<Lines>>,
}

struct Lines {
    item: String,
    stream: Stream,
    pending: Vec<u8>,
    /// The last few lines written since [`GuestOutput::clear_tail`].
    tail: Vec<String>,
}

impl GuestOutput {
    pub fn stdout(item: &str) -> Self {
        Self::new(item, Stream::Stdout)
    }

    pub fn stderr(item: &str) -> Self {
        Self::new(item, Stream::Stderr)
    }

    fn new(item: &str, stream: Stream) -> Self {
        GuestOutput {
            inner: Arc::new(Mutex::new(Lines {
                item: item.to_owned(),
                stream,
                pending: Vec::new(),
                tail: Vec::new(),
            })),
        }
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, bytes: &[u8]) {
        self.lines().push(bytes);
    }

    /// Forgets the lines of earlier calls.
    pub fn clear_tail(&self) {
        self.lines().tail.clear();
    }

    /// What the guest wrote since the last [`Self::clear_tail`], on one line.
    pub fn tail(&self) -> Option<String> {
        let mut lines = self.lines();
        lines.flush_pending();
        (!lines.tail.is_empty()).then(|| lines.tail.join(" "))
    }
}

impl Lines {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&bytes[..newline]);
            self.flush_pending();
            bytes = &bytes[newline + 1..];
        }
        let room = MAX_LINE.saturating_sub(self.pending.len());
        self.pending.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.pending.truncate(MAX_LINE);
        let line = String::from_utf8_lossy(&self.pending).trim_end().to_owned();
        self.pending.clear();
        let item = self.item.as_str();
        match self.stream {
            Stream::Stdout => tracing::info!(target: "hie_plugin", item, stream = "stdout", "{line}"),
            Stream::Stderr => tracing::warn!(target: "hie_plugin", item, stream = "stderr", "{line}"),
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.remove(0);
        }
        self.tail.push(line);
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.flush_pending();
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
