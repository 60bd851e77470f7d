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
    modifiers(&BearerToken, &BadPathValue),
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

/// Every route with a path value also answers 400 when that value is not UTF-8
/// text once percent-decoded (`/api/v1/items/%a0`): axum refuses it before the
/// handler runs, so the handlers' own annotations cannot say so.
struct BadPathValue;

impl Modify for BadPathValue {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        const WHY: &str = "A path value that is not UTF-8 text once percent-decoded";
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.contains('{') {
                continue;
            }
            for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete]
                .into_iter()
                .flatten()
            {
                let answers = &mut op.responses.responses;
                match answers.get_mut("400") {
                    Some(RefOr::T(known)) => {
                        known.description = format!("{}; or {}", known.description, WHY.to_lowercase());
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        let body = ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build();
                        let answer = ResponseBuilder::new()
                            .description(WHY)
                            .content("application/json", body)
                            .build();
                        answers.insert("400".to_string(), RefOr::T(answer));
                    }
                }
            }
        }
    }
}
