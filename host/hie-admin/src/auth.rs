//! The two layers every request passes before a handler: the bearer token
//! (checked on the headers alone, so no body byte is read from a caller without
//! it) and the body limit (a `Content-Length` over the limit is refused at once;
//! a chunked body is cut off by the extractors' limit).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;

/// Largest request body the admin API takes (its bodies are small JSON objects).
pub const MAX_BODY: usize = 64 * 1024;

/// The token callers must present, if any.
#[derive(Clone, Default)]
pub struct Auth {
    token: Option<Arc<str>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Auth {
    /// Require `token` (`None`: every caller is let in; loopback only).
    pub fn new(token: Option<String>) -> Self {
        Auth {
            token: token.map(Arc::from),
        }
    }

    /// Whether a token is required.
    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let Some(given) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        constant_time_eq(given.trim().as_bytes(), expected.as_bytes())
    }
}

/// Compare without stopping at the first difference, so the time taken does
/// not tell a caller how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: 401 unless the request carries the token.
pub async fn require_token(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !auth.admits(authorization) {
        return ApiError::unauthorized().into_response();
    }
    next.run(request).await
}

/// Middleware: 413 for a declared body over [`MAX_BODY`], before reading it.
pub async fn limit_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return ApiError::too_large(MAX_BODY).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_must_match_exactly() {
        let auth = Auth::new(Some("s3cret".into()));
        assert!(auth.admits(Some("Bearer s3cret")));
        assert!(!auth.admits(Some("Bearer s3cre")));
        assert!(!auth.admits(Some("Bearer s3cretx")));
        assert!(!auth.admits(Some("Basic s3cret")));
        assert!(!auth.admits(None));
        assert!(Auth::new(None).admits(None));
    }
}
