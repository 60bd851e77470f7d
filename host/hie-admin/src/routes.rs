//! The routes: one handler each, documented for `/openapi.json`.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use hie_engine::Engine;
use utoipa::OpenApi;

use crate::api::*;
use crate::auth::{self, Auth};

/// What every handler gets.
#[derive(Clone)]
pub struct AdminState {
    /// The running production.
    pub engine: Arc<Engine>,
}

/// `Path` whose rejections are JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query` whose rejections are JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The raw body, whose rejections (too large) are JSON errors.
pub struct ApiBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Ok(ApiBody(axum::body::Bytes::from_request(request, state).await?))
    }
}

impl ApiBody {
    /// The body as JSON of type `T`, which the route needs (any content type is taken).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "this route needs a JSON body: see /openapi.json for its fields",
            ));
        }
        serde_json::from_slice(&self.0).map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not the JSON this route takes ({e}): see /openapi.json"
            ))
        })
    }

    /// The body as JSON of type `T`; an empty body is `T::default()`.
    pub fn json_or_default<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        serde_json::from_slice(&self.0).map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not the JSON this route takes ({e}): see /openapi.json"
            ))
        })
    }
}

/// The admin API: every route behind the token check and the body limit.
pub fn router(engine: Arc<Engine>, auth: Auth) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/api/v1/production", get(production))
        .route("/api/v1/production/reload", post(reload_production))
        .route("/api/v1/items", get(items))
        .route("/api/v1/items/{item}", get(item))
        .route("/api/v1/items/{item}/{action}", post(item_action))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/dead-letters/{id}", delete(discard))
        .route("/api/v1/dead-letters/{id}/requeue", post(requeue))
        .merge(crate::messages::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(AdminState { engine });
    // the last layer added runs first: the token, then the body limit
    api.layer(axum::extract::DefaultBodyLimit::max(auth::MAX_BODY))
        .layer(axum::middleware::from_fn(auth::limit_body))
        .layer(axum::middleware::from_fn_with_state(auth, auth::require_token))
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {method} {}: /openapi.json lists the routes",
        uri.path()
    ))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} does not take {method}: /openapi.json lists the methods of each route",
            uri.path()
        ),
    )
}

/// Alive: the engine answers.
#[utoipa::path(get, path = "/health", tag = "probes",
    responses((status = 200, description = "The engine answers", body = Health),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn health(State(s): State<AdminState>) -> Json<Health> {
    Json(Health {
        status: "alive".into(),
        production: s.engine.name(),
    })
}

/// Ready: every enabled item is started and the production is not stopping.
#[utoipa::path(get, path = "/ready", tag = "probes",
    responses((status = 200, description = "Taking messages", body = Readiness),
              (status = 503, description = "Not taking messages; the reasons say why", body = Readiness),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn ready(State(s): State<AdminState>) -> Result<(StatusCode, Json<Readiness>), ApiError> {
    let engine = Arc::clone(&s.engine);
    // a faulted store is probed with a write, which blocks
    let readiness = tokio::task::spawn_blocking(move || readiness(&engine))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("readiness check failed: {e}"),
            )
        })?;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(readiness)))
}

fn readiness(engine: &Engine) -> Readiness {
    use hie_engine::ItemState;
    let production = engine.production();
    let mut reasons = Vec::new();
    if !engine.is_ready() {
        reasons.push(
            "the message store cannot be written (a write failed, or its disk is full): free space or fix the disk; see the engine log".to_string(),
        );
    }
    for status in engine.status() {
        let configured_on = production.item(&status.name).is_none_or(|c| c.enabled);
        match status.state {
            ItemState::Running | ItemState::Paused => {}
            ItemState::Disabled if !configured_on => {}
            other => reasons.push(format!("item {} is {}", status.name, other.as_str())),
        }
    }
    Readiness {
        ready: reasons.is_empty(),
        reasons,
    }
}

/// Metrics in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "probes",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn metrics(State(s): State<AdminState>) -> Response {
    let mut response = s.engine.metrics_text().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// This description.
#[utoipa::path(get, path = "/openapi.json", tag = "probes",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API", content_type = "application/json", body = Object),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn openapi() -> Response {
    Json(crate::openapi::ApiDoc::openapi()).into_response()
}

/// The production: its name, items and dead-letter count.
#[utoipa::path(get, path = "/api/v1/production", tag = "items",
    responses((status = 200, description = "The production", body = ProductionView),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn production(State(s): State<AdminState>) -> Json<ProductionView> {
    Json(ProductionView {
        name: s.engine.name(),
        items: item_views(&s.engine),
        dead_letters: s.engine.dead_letters().len(),
    })
}

/// Reload the production file the engine started from: validate it, diff it
/// against the running production and apply only what changed. An invalid file
/// changes nothing; the answer lists every error with file, line and field.
#[utoipa::path(post, path = "/api/v1/production/reload", tag = "items",
    responses((status = 200, description = "What was added, removed, re-configured and left untouched", body = ConfigReloadView),
              (status = 422, description = "The file is not valid; nothing changed", body = ErrorBody),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn reload_production(State(s): State<AdminState>) -> Result<Json<ConfigReloadView>, ApiError> {
    match s.engine.reload_config(None).await {
        Ok(report) => {
            tracing::info!(added = ?report.added, removed = ?report.removed, "production reloaded through the admin api");
            Ok(Json(report.into()))
        }
        Err(e) => {
            for error in e.errors() {
                tracing::error!(error = %error, "config reload refused");
            }
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
        }
    }
}

fn item_views(engine: &Engine) -> Vec<ItemView> {
    let production = engine.production();
    engine
        .status()
        .iter()
        .map(|st| ItemView::new(st, production.item(&st.name)))
        .collect()
}

fn item_view(engine: &Engine, name: &str) -> Result<ItemView, ApiError> {
    let status = engine.item_status(name)?;
    let production = engine.production();
    Ok(ItemView::new(&status, production.item(name)))
}

/// Every item: state, queue, workers, restarts, plugin.
#[utoipa::path(get, path = "/api/v1/items", tag = "items",
    responses((status = 200, description = "Items in file order", body = [ItemView]),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn items(State(s): State<AdminState>) -> Json<Vec<ItemView>> {
    Json(item_views(&s.engine))
}

/// One item.
#[utoipa::path(get, path = "/api/v1/items/{item}", tag = "items",
    params(("item" = String, Path, description = "Item name")),
    responses((status = 200, description = "The item", body = ItemView),
              (status = 404, description = "No such item", body = ErrorBody),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn item(
    State(s): State<AdminState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ItemView>, ApiError> {
    Ok(Json(item_view(&s.engine, &name)?))
}

/// Act on an item: start, stop, pause, resume, enable, disable, restart, reload, rollback, promote.
#[utoipa::path(post, path = "/api/v1/items/{item}/{action}", tag = "items",
    params(("item" = String, Path, description = "Item name"),
           ("action" = ItemAction, Path, description = "What to do")),
    request_body(content = Option<ActionRequest>, description = "reload only: another file, or a canary share"),
    responses((status = 200, description = "Done; the item as it is now", body = ItemView),
              (status = 400, description = "Unknown action, a body that is not the JSON described, or a reload, rollback or promote the item cannot take (bad canary share, no previous version, no canary)", body = ErrorBody),
              (status = 404, description = "No such item", body = ErrorBody),
              (status = 409, description = "The item's state does not allow it", body = ErrorBody),
              (status = 413, description = "Body over 64 KiB", body = ErrorBody),
              (status = 422, description = "The new plugin version cannot be used; the old one keeps running", body = ErrorBody),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn item_action(
    State(s): State<AdminState>,
    ApiPath((name, action)): ApiPath<(String, ItemAction)>,
    body: ApiBody,
) -> Result<Json<ItemView>, ApiError> {
    let request: ActionRequest = body.json_or_default()?;
    let engine = &s.engine;
    engine.item_status(&name)?;
    match action {
        ItemAction::Start => engine.start_item(&name)?,
        ItemAction::Stop => engine.stop_item(&name).await?,
        ItemAction::Pause => engine.pause(&name)?,
        ItemAction::Resume => engine.resume(&name)?,
        ItemAction::Enable => engine.enable(&name)?,
        ItemAction::Disable => engine.disable(&name).await?,
        ItemAction::Restart => engine.restart(&name).await?,
        ItemAction::Reload => {
            let file = request.file.map(std::path::PathBuf::from);
            let report = engine.reload_plugin(&name, file, request.canary).await?;
            tracing::info!(item = %name, from = ?report.from, to = %report.to, "plugin reloaded through the admin api");
        }
        ItemAction::Rollback => {
            let change = engine.rollback(&name).await?;
            tracing::info!(item = %name, from = %change.from, to = %change.to, "plugin rolled back through the admin api");
        }
        ItemAction::Promote => {
            let change = engine.promote(&name).await?;
            tracing::info!(item = %name, from = %change.from, to = %change.to, "canary promoted through the admin api");
        }
    }
    tracing::info!(item = %name, action = action.as_str(), "admin action done");
    Ok(Json(item_view(engine, &name)?))
}

/// The dead-letter queue, oldest first (headers only).
#[utoipa::path(get, path = "/api/v1/dead-letters", tag = "dead letters",
    responses((status = 200, description = "Dead letters", body = [DeadLetterView]),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn dead_letters(State(s): State<AdminState>) -> Json<Vec<DeadLetterView>> {
    Json(s.engine.dead_letters().iter().map(DeadLetterView::from).collect())
}

fn message_id(text: &str) -> Result<hie_core::MessageId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{text:?} is not a message id: ids are UUIDs as listed by `hie ctl dead-letters`"
        ))
    })
}

/// Put a dead letter back on its item's queue as a new attempt.
#[utoipa::path(post, path = "/api/v1/dead-letters/{id}/requeue", tag = "dead letters",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, description = "Requeued", body = Done),
              (status = 400, description = "Not a message id", body = ErrorBody),
              (status = 404, description = "No such dead letter", body = ErrorBody),
              (status = 409, description = "The item did not take it; it stays a dead letter", body = ErrorBody),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn requeue(
    State(s): State<AdminState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Done>, ApiError> {
    let id = message_id(&id)?;
    let engine = Arc::clone(&s.engine);
    // requeue may wait for room in a full queue
    let result = tokio::task::spawn_blocking(move || engine.requeue(id))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("requeue task failed: {e}"),
            )
        })?;
    match result {
        Ok(()) => Ok(Json(Done {
            done: format!("message {id} requeued"),
        })),
        Err(f) if f.code == "not-found" => Err(ApiError::not_found(format!(
            "{}: `hie ctl dead-letters` lists them",
            f.text
        ))),
        Err(f) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{}: it stays a dead letter; fix the item and requeue again",
                f.text
            ),
        )),
    }
}

/// Drop a dead letter for good.
#[utoipa::path(delete, path = "/api/v1/dead-letters/{id}", tag = "dead letters",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, description = "Discarded", body = Done),
              (status = 400, description = "Not a message id", body = ErrorBody),
              (status = 404, description = "No such dead letter", body = ErrorBody),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)))]
pub async fn discard(
    State(s): State<AdminState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Done>, ApiError> {
    let id = message_id(&id)?;
    if s.engine.discard(id) {
        Ok(Json(Done {
            done: format!("dead letter {id} discarded"),
        }))
    } else {
        Err(ApiError::not_found(format!(
            "no dead letter {id}: `hie ctl dead-letters` lists them"
        )))
    }
}
