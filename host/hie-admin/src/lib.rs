//! The HIE admin API: an HTTP server (axum on hyper, HTTP/1.1, optional TLS)
//! next to a running [`Engine`].
//!
//! Every route sits behind a bearer-token check that looks at the headers only
//! ([`auth::require_token`]), then a body limit that refuses a declared
//! `Content-Length` over [`auth::MAX_BODY`] before reading it. The server binds
//! to loopback unless told otherwise and refuses any other address without a
//! token. Routes are described in [`openapi::ApiDoc`], served at `/openapi.json`;
//! `hie ctl` is the client and shares the bodies in [`api`].
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
mod messages;
pub mod openapi;
pub mod routes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hie_engine::Engine;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use auth::Auth;
pub use routes::router;

/// How long a client may take to send its request headers or finish a TLS handshake.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the admin API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve the admin API on {0} without a token: set [admin] token_file or token_env \
         (or --admin-token-file), or listen on 127.0.0.1"
    )]
    NoToken(SocketAddr),
    /// The address could not be bound.
    #[error(
        "cannot listen for the admin API on {addr}: {source}; pick a free port with [admin] listen or --admin"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The token could not be read.
    #[error("{0}")]
    Token(String),
    /// The TLS certificate or key could not be used.
    #[error("admin TLS: {0}")]
    Tls(String),
}

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bearer token callers must send (`None`: loopback only, no check).
    pub token: Option<String>,
    /// PEM certificate chain and private key, to serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Read the token from `file` (first line, trimmed) or the environment variable `env`.
pub fn read_token(file: Option<&Path>, env: Option<&str>) -> Result<Option<String>, AdminError> {
    let token = match (file, env) {
        (Some(f), _) => std::fs::read_to_string(f)
            .map_err(|e| {
                AdminError::Token(format!(
                    "cannot read the admin token file {}: {e}; create it (e.g. `openssl rand -hex 32 > {}`, mode 0600)",
                    f.display(),
                    f.display()
                ))
            })?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        (None, Some(var)) => std::env::var(var)
            .map_err(|_| {
                AdminError::Token(format!(
                    "the admin token variable {var} is not set: export it, or use token_file instead"
                ))
            })?
            .trim()
            .to_string(),
        (None, None) => return Ok(None),
    };
    if token.is_empty() {
        return Err(AdminError::Token(
            "the admin token is empty: put a long random string in the token file or variable".into(),
        ));
    }
    Ok(Some(token))
}

/// Bind and serve the admin API for `engine` until `shutdown`; returns the bound
/// address and the server task.
pub async fn start(
    engine: Arc<Engine>,
    options: AdminOptions,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), AdminError> {
    if options.token.is_none() && !options.listen.ip().is_loopback() {
        return Err(AdminError::NoToken(options.listen));
    }
    let tls = match &options.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|source| AdminError::Bind {
            addr: options.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| AdminError::Bind {
        addr: options.listen,
        source,
    })?;
    let app = router(engine, Auth::new(options.token));
    tracing::info!(addr = %local, tls = tls.is_some(), "admin api listening");
    let task = tokio::spawn(serve(listener, tls, app, shutdown));
    Ok((local, task))
}

async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of file descriptors and the like: back off instead of spinning
                    tracing::warn!(error = %e, "admin api accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let http = {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
                b
            };
            let served = match tls {
                Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => {
                        let conn = http.serve_connection(TokioIo::new(s), service);
                        run_connection(conn, &shutdown).await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer, error = %e, "admin tls handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    run_connection(conn, &shutdown).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(peer = %peer, error = %e, "admin connection ended with an error");
            }
        });
    }
}

async fn run_connection<F>(conn: F, shutdown: &CancellationToken) -> Result<(), hyper::Error>
where
    F: std::future::Future<Output = Result<(), hyper::Error>>,
{
    tokio::select! {
        r = conn => r,
        _ = shutdown.cancelled() => Ok(()),
    }
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, AdminError> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| AdminError::Tls(format!("cannot read {}: {e}", p.display())));
    let certs: Vec<_> = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| AdminError::Tls(format!("{}: not a PEM certificate chain: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(AdminError::Tls(format!(
            "{} holds no certificate: give the PEM certificate chain",
            cert.display()
        )));
    }
    let key_der = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| AdminError::Tls(format!("{}: not a PEM private key: {e}", key.display())))?
        .ok_or_else(|| AdminError::Tls(format!("{} holds no private key", key.display())))?;
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| AdminError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key_der)
            .map_err(|e| AdminError::Tls(format!("certificate and key do not fit together: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
