//! The OpenAPI 3.1 document of the whole HTTP API, generated from the handlers' annotations and
//! the DTOs, so it cannot drift from the code. `docs/openapi.json` holds a copy for readers and
//! client generators; a test fails when it is stale.

use crate::api::{analytics, customers, identity, imports, lifecycle, segments, session, settings};
use crate::dto::HealthResponse;
use crate::ingest;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ciclo API",
        description = "ciclo's HTTP API.\n\n\
            * **Ingestion** (`/v1/*`) follows Segment's tracking API, so Segment and RudderStack SDKs work unchanged. \
            The one-letter forms `/v1/i`, `/v1/t`, `/v1/p`, `/v1/s`, `/v1/g`, `/v1/a` and `/v1/b` are accepted too.\n\
            * **Admin API** (`/api/v1/*`) is REST/JSON with cursor pagination. Authenticate with a secret key \
            (`Authorization: Bearer sk_…`) or, from a browser, with the `ciclo_session` cookie set by login; \
            cookie-authenticated POST, PATCH and DELETE requests must send the session's CSRF token as `X-CSRF-Token`.\n\n\
            Every error answers `{\"error\": {\"code\", \"message\", \"field\"?, \"details\"?}}` with a stable snake_case code.",
        license(name = "AGPL-3.0-or-later", identifier = "AGPL-3.0-or-later"),
    ),
    paths(
        health,
        document,
        ingest::identify,
        ingest::track,
        ingest::page,
        ingest::screen,
        ingest::group,
        ingest::alias,
        ingest::batch,
        session::login,
        session::logout,
        session::me,
        session::switch_workspace,
        customers::list,
        customers::create,
        customers::get,
        customers::update,
        customers::delete,
        customers::timeline,
        customers::orders,
        identity::merge,
        identity::undo_merge,
        identity::list_conflicts,
        identity::resolve_conflict,
        imports::create,
        imports::preview,
        imports::list,
        imports::get,
        imports::export_customers,
        imports::export_orders,
        settings::list_api_keys,
        settings::create_api_key,
        settings::revoke_api_key,
        settings::list_operators,
        settings::create_operator,
        settings::update_operator,
        settings::remove_operator,
        settings::get_workspace,
        settings::update_workspace,
        analytics::rfm,
        analytics::rfm_customers,
        analytics::cohorts,
        analytics::metrics,
        analytics::clv,
        analytics::funnel,
        segments::list,
        segments::create,
        segments::get,
        segments::update,
        segments::delete,
        segments::preview,
        segments::members,
        segments::members_csv,
        segments::history,
        segments::add_members,
        segments::remove_members,
        segments::import_members,
        segments::customer_segments,
        lifecycle::rules,
        lifecycle::set_rules,
        lifecycle::stages,
        lifecycle::flow,
        lifecycle::customer_lifecycle,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "ingestion", description = "Segment-compatible event ingestion"),
        (name = "auth", description = "Operator sign-in and sessions"),
        (name = "customers", description = "Customer profiles, timelines and orders"),
        (name = "identity", description = "The identity graph: merges, undo and conflicts"),
        (name = "imports", description = "CSV import and export"),
        (name = "settings", description = "API keys, operators and workspace settings"),
        (name = "segments", description = "Segments kept current in real time, static lists, and their members"),
        (name = "lifecycle", description = "Lifecycle stages: rules, counts, flow between stages and each customer's history"),
        (name = "analytics", description = "RFM, cohorts, customer-base metrics, predicted CLV and the lifecycle funnel"),
        (name = "meta", description = "Health and this document"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "write_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("The workspace's Segment write key as the user name, with an empty password."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "secret_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sk_…")
                    .description(Some(
                        "A secret API key created under settings, as `Authorization: Bearer sk_…`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The session cookie set by login. Unsafe methods also need the `X-CSRF-Token` header.",
            ))),
        );
    }
}

/// The OpenAPI document, as generated from the code.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty JSON with a final newline: the form kept in `docs/openapi.json`.
pub fn openapi_json() -> String {
    let mut text = openapi().to_pretty_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document cannot be serialised");
        "{}".to_string()
    });
    text.push('\n');
    text
}

/// The document a running server serves: the generated one plus its public URL as the server,
/// so that "try it" tools call the right host.
pub(crate) fn served_json(public_url: &str) -> String {
    let mut doc = openapi();
    if !public_url.trim().is_empty() {
        doc.servers = Some(vec![Server::new(public_url.trim().trim_end_matches('/'))]);
    }
    doc.to_json().unwrap_or_else(|_| "{}".to_string())
}

/// Liveness: answers as long as the process serves HTTP.
#[utoipa::path(get, path = "/healthz", operation_id = "health", tag = "meta", responses((status = 200, body = HealthResponse)), security(()))]
pub(crate) async fn health() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi_document",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json")),
    security(())
)]
pub(crate) async fn document(State(state): State<AppState>) -> Response {
    let mut response = state.openapi.clone().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
