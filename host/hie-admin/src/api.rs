//! What the admin API sends and takes: JSON bodies (shared with the `hie ctl`
//! client) and the one mapping of failures to HTTP statuses.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hie_engine::{DeadLetter, EngineError, ItemStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error answer: `{ "error": "what went wrong and what to do" }`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub error: String,
}

/// A failure of a request, with its HTTP status.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The message a person can act on.
    pub message: String,
}

impl ApiError {
    /// A failure with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 401, for a missing or wrong bearer token.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token: send the header \"Authorization: Bearer TOKEN\" with the \
             token from the production's [admin] token_file or token_env",
        )
    }

    /// 413, for a body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {limit} bytes: admin requests carry small JSON bodies only"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: self.message })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match &e {
            EngineError::UnknownItem(_) => {
                ApiError::not_found(format!("{e}: `hie ctl items` lists the items of this production"))
            }
            EngineError::State { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            EngineError::Invalid { .. } | EngineError::Unsupported { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            _ => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{e}: see the engine log for details"),
            ),
        }
    }
}

impl From<hie_engine::ReloadError> for ApiError {
    fn from(e: hie_engine::ReloadError) -> Self {
        use hie_engine::ReloadError as R;
        match &e {
            R::UnknownItem(_) => {
                ApiError::not_found(format!("{e}: `hie ctl items` lists the items of this production"))
            }
            R::NoPlugin(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            R::Rejected { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
            R::Invalid { .. } => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::new(
            r.status(),
            format!(
                "{}: send a JSON body as described in /openapi.json",
                r.body_text()
            ),
        )
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        ApiError::new(
            r.status(),
            format!("{}: admin requests carry small JSON bodies only", r.body_text()),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        let hint = match &r {
            PathRejection::FailedToDeserializePathParams(e)
                if matches!(e.kind(), ErrorKind::InvalidUtf8InPathParam { .. }) =>
            {
                "item names and message ids are UTF-8 text, percent-encoded byte by byte"
            }
            _ => "see /openapi.json for the routes",
        };
        ApiError::new(r.status(), format!("{}: {hint}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(
            r.status(),
            format!("{}: see /openapi.json for the parameters", r.body_text()),
        )
    }
}

/// A production and its items.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProductionView {
    /// Name of the production.
    pub name: String,
    /// Its items, in file order.
    pub items: Vec<ItemView>,
    /// Messages in the dead-letter queue.
    pub dead_letters: usize,
}

/// One item as an operator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemView {
    /// Name.
    pub name: String,
    /// `service`, `process` or `operation`.
    pub kind: String,
    /// `running`, `paused`, `stopped`, `disabled`, `failed` or `stopping`.
    pub state: String,
    /// Messages waiting in the queue.
    pub queue_depth: usize,
    /// Most messages the queue holds.
    pub queue_capacity: usize,
    /// How long the oldest waiting message has waited, in milliseconds.
    pub oldest_age_ms: Option<u64>,
    /// Messages being processed now.
    pub in_flight: usize,
    /// Workers of the item (threads, tasks or processes).
    pub workers: usize,
    /// Worker process ids (`multi_process` items).
    pub pids: Vec<u32>,
    /// Worker restarts so far.
    pub restarts: u64,
    /// The plugin as configured (a standard name or a file).
    pub plugin: Option<String>,
    /// Version (content hash) of the plugin running now, when known.
    pub plugin_version: Option<String>,
    /// The version before it (what a rollback returns to).
    pub previous_version: Option<String>,
}

impl ItemView {
    /// The view of `status` with what the config says about the item.
    pub fn new(status: &ItemStatus, config: Option<&hie_config::ItemConfig>) -> Self {
        ItemView {
            name: status.name.clone(),
            kind: config.map(|c| c.kind.as_str().to_string()).unwrap_or_default(),
            state: status.state.as_str().to_string(),
            queue_depth: status.queue.depth,
            queue_capacity: config.map_or(0, |c| c.queue.capacity),
            oldest_age_ms: status.queue.oldest_age.map(|d| d.as_millis() as u64),
            in_flight: status.queue.in_flight,
            workers: if status.workers.is_empty() {
                config.map_or(0, |c| c.pool_size)
            } else {
                status.workers.len()
            },
            pids: status.workers.iter().filter_map(|w| w.pid).collect(),
            restarts: status.restarts,
            plugin: config
                .and_then(|c| c.plugin.as_ref())
                .map(|p| match &p.reference {
                    hie_config::PluginRef::Standard(name) => name.clone(),
                    hie_config::PluginRef::File(path) => path.display().to_string(),
                }),
            plugin_version: status.versions.current.clone(),
            previous_version: status.versions.previous.clone(),
        }
    }
}

/// What a production reload applied (`POST /api/v1/production/reload`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigReloadView {
    /// The production file read.
    pub file: String,
    /// Items started.
    pub added: Vec<String>,
    /// Items stopped and removed.
    pub removed: Vec<String>,
    /// Items rebuilt with their new configuration.
    pub changed: Vec<ReconfiguredView>,
    /// Items left running as they were.
    pub unchanged: Vec<String>,
    /// Whether the lookup tables were replaced.
    pub lookups: bool,
    /// `[production]` fields that changed but only take effect on a restart.
    pub needs_restart: Vec<String>,
    /// Messages the retired items still held, moved to their replacement or dead-lettered.
    pub moved: usize,
    /// Of those, dead-lettered (their item was removed).
    pub dead_lettered: usize,
}

/// One item a production reload rebuilt.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReconfiguredView {
    /// The item.
    pub name: String,
    /// The fields that changed.
    pub fields: Vec<String>,
}

impl From<hie_engine::ConfigReload> for ConfigReloadView {
    fn from(r: hie_engine::ConfigReload) -> Self {
        ConfigReloadView {
            file: r.file.display().to_string(),
            added: r.added,
            removed: r.removed,
            changed: r
                .changed
                .into_iter()
                .map(|c| ReconfiguredView {
                    name: c.name,
                    fields: c.fields,
                })
                .collect(),
            unchanged: r.unchanged,
            lookups: r.lookups,
            needs_restart: r.needs_restart,
            moved: r.moved,
            dead_lettered: r.dead_lettered,
        }
    }
}

/// What an item action can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemAction {
    /// Start a stopped or failed item's workers.
    Start,
    /// Stop the workers; the queue keeps and accepts messages.
    Stop,
    /// Hold workers back; the queue accepts up to capacity.
    Pause,
    /// Let a paused item go on.
    Resume,
    /// Enable a disabled item (and start it).
    Enable,
    /// Stop the item and refuse messages to it; waiting ones are dead-lettered.
    Disable,
    /// Replace the workers with fresh plugin instances.
    Restart,
    /// Load the item's plugin file again and swap it in.
    Reload,
    /// Go back to the previous plugin version.
    Rollback,
    /// Make the canary version the one every message goes to.
    Promote,
}

/// Optional body of an item action; only `reload` reads it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ActionRequest {
    /// `reload`: the component file to load (default: the file the item's config names, read again).
    pub file: Option<String>,
    /// `reload`: publish as a canary getting this percentage of the messages.
    pub canary: Option<u8>,
}

impl ItemAction {
    /// Every action.
    pub const ALL: [ItemAction; 10] = [
        ItemAction::Start,
        ItemAction::Stop,
        ItemAction::Pause,
        ItemAction::Resume,
        ItemAction::Enable,
        ItemAction::Disable,
        ItemAction::Restart,
        ItemAction::Reload,
        ItemAction::Rollback,
        ItemAction::Promote,
    ];

    /// The word in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemAction::Start => "start",
            ItemAction::Stop => "stop",
            ItemAction::Pause => "pause",
            ItemAction::Resume => "resume",
            ItemAction::Enable => "enable",
            ItemAction::Disable => "disable",
            ItemAction::Restart => "restart",
            ItemAction::Reload => "reload",
            ItemAction::Rollback => "rollback",
            ItemAction::Promote => "promote",
        }
    }
}

/// A message in the dead-letter queue (header only: no body).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterView {
    /// Message id.
    pub id: String,
    /// Its session (the inbound message it came from).
    pub session_id: String,
    /// The item it was meant for.
    pub item: String,
    /// Failure code.
    pub code: String,
    /// Why it failed.
    pub reason: String,
    /// Delivery attempt.
    pub attempt: u32,
    /// When it was dead-lettered, ms since the Unix epoch.
    pub at_ms: u64,
}

impl From<&DeadLetter> for DeadLetterView {
    fn from(l: &DeadLetter) -> Self {
        DeadLetterView {
            id: l.message.id.to_string(),
            session_id: l.message.session_id.to_string(),
            item: l.item.clone(),
            code: l.reason.code.clone(),
            reason: l.reason.text.clone(),
            attempt: l.message.attempt,
            at_ms: l.at_ms,
        }
    }
}

/// The answer of `/health`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `alive` when the engine answers.
    pub status: String,
    /// The production.
    pub production: String,
}

/// The answer of `/ready`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// Whether the production takes messages.
    pub ready: bool,
    /// Why not, one line each.
    pub reasons: Vec<String>,
}

/// The answer of an action that changes something.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Done {
    /// What was done.
    pub done: String,
}

/// A stored message without its body, as search lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageSummaryView {
    /// Message id.
    pub id: String,
    /// Session id (the inbound message it came from).
    pub session_id: String,
    /// Parent message, if derived.
    pub parent_id: Option<String>,
    /// Item that produced it.
    pub source: String,
    /// Item it was addressed to.
    pub target: String,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Content type of the body.
    pub content_type: String,
    /// MSH-9.
    pub message_type: Option<String>,
    /// MSH-10.
    pub control_id: Option<String>,
    /// MSH-3.
    pub sending_app: Option<String>,
    /// Body length in bytes.
    pub body_len: u64,
}

/// One status change of a message at an item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TraceEventView {
    /// The message.
    pub message_id: String,
    /// Its parent, if derived.
    pub parent_id: Option<String>,
    /// The item.
    pub item: String,
    /// `queued`, `in-flight`, `done`, `failed`, `dead-lettered` or `discarded`.
    pub status: String,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
    /// The attempt.
    pub attempt: u32,
    /// Content hash of the plugin version that handled it.
    pub plugin_version: Option<String>,
    /// Error text of a failure.
    pub error: Option<String>,
}

/// A stored message with its body and the trace of its hops.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    /// Header.
    pub summary: MessageSummaryView,
    /// Body (patient data), as text; bytes that are not UTF-8 are replaced.
    pub body: String,
    /// Status changes at each item, oldest first.
    pub trace: Vec<TraceEventView>,
}

/// Query of `GET /api/v1/messages`; every given filter must match, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Created at or after, ms since the Unix epoch.
    pub since_ms: Option<u64>,
    /// Created before, ms since the Unix epoch.
    pub until_ms: Option<u64>,
    /// Message type (MSH-9), exact, e.g. `ADT^A01`.
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    /// Current status at some item.
    pub status: Option<String>,
    /// Queued at this item at some point.
    pub item: Option<String>,
    /// Session id.
    pub session: Option<String>,
    /// Control id (MSH-10), exact.
    pub control_id: Option<String>,
    /// Patient id (PID-3, first repetition), exact.
    pub patient_id: Option<String>,
    /// Most results (default 100, at most 10000).
    pub limit: Option<usize>,
}

/// Body of `POST /api/v1/messages/{id}/resend`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ResendRequest {
    /// Item to send it to; default: the item it was addressed to.
    pub to: Option<String>,
}

/// Answer of a resend.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Resent {
    /// Id of the new copy.
    pub id: String,
    /// Item it was queued for.
    pub to: String,
}

/// Body of `POST /api/v1/messages/purge`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PurgeRequest {
    /// Purge messages older than this, e.g. `30d`, `12h`.
    pub older_than: String,
    /// Only messages whose every hop has one of these statuses (default `done`).
    #[serde(default)]
    pub statuses: Vec<String>,
}

/// Answer of a purge.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Purged {
    /// Messages removed.
    pub purged: u64,
    /// Bytes given back to the file system.
    pub reclaimed_bytes: u64,
}
