//! The OpenAPI description served at `/openapi.json`, made from the handlers'
//! annotations so it cannot drift from the routes.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::*;
use crate::routes;

/// The description.
#[derive(OpenApi)]
#[openapi(
    info(title = "HIE admin API", description = "Operate a running HIE production. Every route needs \
        `Authorization: Bearer TOKEN` when the production has an admin token."),
    paths(
        routes::health,
        routes::ready,
        routes::metrics,
        routes::openapi,
        routes::production,
        routes::reload_production,
        routes::items,
        routes::item,
        routes::item_action,
        routes::dead_letters,
        routes::requeue,
        routes::discard,
        crate::messages::search,
        crate::messages::show,
        crate::messages::trace,
        crate::messages::resend,
        crate::messages::purge,
    ),
    components(schemas(ErrorBody, ActionRequest, ProductionView, ItemView, ItemAction, DeadLetterView, Health, Readiness, Done,
        MessageSummaryView, MessageView, TraceEventView, SearchParams, ResendRequest, Resent, PurgeRequest, Purged)),
    modifiers(&BearerToken),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
