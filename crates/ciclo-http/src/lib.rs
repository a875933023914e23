//! ciclo's HTTP layer: the axum [`router`] with Segment-compatible ingestion (`/v1/*`), the
//! admin JSON API (`/api/v1/*`), the OpenAPI 3.1 document (`/api/openapi.json`) and `/healthz`.
//!
//! Handlers call the use cases of [`ciclo_core::Ciclo`], which block on the store, through
//! `tokio::task::spawn_blocking`. This crate never names a storage backend: it gets a `Ciclo`
//! already built over one.
//!
//! Codemap: `ingest` (Segment endpoints), `api::*` (admin API by area), `auth` (keys, session
//! cookie, CSRF, write keys), `extract` (extractors with the API's error codes), `error` (the one
//! error → HTTP mapping), `dto` (JSON shapes with their schemas), `openapi` (the document).

mod api;
mod auth;
pub mod dto;
pub mod error;
mod extract;
mod ingest;
pub mod openapi;

pub use auth::{CSRF_HEADER, SESSION_COOKIE};
pub use error::ApiError;
pub use openapi::{openapi, openapi_json};

use crate::api::{analytics, customers, identity, imports, lifecycle, segments, session, settings};
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, Method};
use axum::routing::{get, patch, post};
use axum::Router;
use ciclo_core::Ciclo;
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::TraceLayer;

/// Largest JSON body the admin API reads (ingestion and imports have their own limits).
pub const MAX_JSON_BODY_BYTES: usize = 1024 * 1024;

/// How the router behaves where the deployment decides.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The URL clients reach this server at (`https://crm.loja.com.br`), announced in the served
    /// OpenAPI document. Empty: not announced.
    pub public_url: String,
    /// Mark the session cookie `Secure` (set it when served over HTTPS).
    pub secure_cookies: bool,
    /// Largest CSV file `POST /api/v1/imports` accepts, in bytes.
    pub max_import_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            public_url: String::new(),
            secure_cookies: false,
            max_import_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub(crate) struct AppState {
    pub ciclo: Ciclo,
    pub options: Arc<HttpOptions>,
    /// The served OpenAPI document, rendered once.
    pub openapi: Bytes,
}

/// The whole HTTP API over `app`.
pub fn router(app: Ciclo, options: HttpOptions) -> Router {
    let import_limit = DefaultBodyLimit::max(options.max_import_bytes);
    let state = AppState {
        ciclo: app,
        openapi: Bytes::from(openapi::served_json(&options.public_url)),
        options: Arc::new(options),
    };

    // Browser SDKs post events cross-origin; the admin API gets no CORS on purpose (its cookie
    // must only ever be used by same-origin pages).
    let ingestion_cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
        ])
        .max_age(Duration::from_secs(24 * 60 * 60));
    let ingestion = Router::new()
        .route("/v1/identify", post(ingest::identify))
        .route("/v1/track", post(ingest::track))
        .route("/v1/page", post(ingest::page))
        .route("/v1/screen", post(ingest::screen))
        .route("/v1/group", post(ingest::group))
        .route("/v1/alias", post(ingest::alias))
        .route("/v1/batch", post(ingest::batch))
        .route("/v1/i", post(ingest::identify))
        .route("/v1/t", post(ingest::track))
        .route("/v1/p", post(ingest::page))
        .route("/v1/s", post(ingest::screen))
        .route("/v1/g", post(ingest::group))
        .route("/v1/a", post(ingest::alias))
        .route("/v1/b", post(ingest::batch))
        // Set before the CORS layer so that the layer wraps it: preflight (OPTIONS) requests
        // reach CORS through the method-not-allowed fallback of these POST-only routes.
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .layer(ingestion_cors);

    let admin = Router::new()
        .route("/api/v1/auth/login", post(session::login))
        .route("/api/v1/auth/logout", post(session::logout))
        .route("/api/v1/auth/switch", post(session::switch_workspace))
        .route("/api/v1/me", get(session::me))
        .route(
            "/api/v1/customers",
            get(customers::list).post(customers::create),
        )
        .route(
            "/api/v1/customers/{id}",
            get(customers::get)
                .patch(customers::update)
                .delete(customers::delete),
        )
        .route("/api/v1/customers/{id}/timeline", get(customers::timeline))
        .route("/api/v1/customers/{id}/orders", get(customers::orders))
        .route(
            "/api/v1/customers/{id}/segments",
            get(segments::customer_segments),
        )
        .route(
            "/api/v1/customers/{id}/lifecycle",
            get(lifecycle::customer_lifecycle),
        )
        .route("/api/v1/customers/{id}/merge", post(identity::merge))
        .route("/api/v1/merges/{id}/undo", post(identity::undo_merge))
        .route("/api/v1/identity-conflicts", get(identity::list_conflicts))
        .route(
            "/api/v1/identity-conflicts/{id}/resolve",
            post(identity::resolve_conflict),
        )
        .route(
            "/api/v1/imports",
            get(imports::list).post(imports::create).layer(import_limit),
        )
        .route(
            "/api/v1/imports/preview",
            post(imports::preview).layer(import_limit),
        )
        .route("/api/v1/imports/{id}", get(imports::get))
        .route(
            "/api/v1/exports/customers.csv",
            get(imports::export_customers),
        )
        .route("/api/v1/exports/orders.csv", get(imports::export_orders))
        .route(
            "/api/v1/api-keys",
            get(settings::list_api_keys).post(settings::create_api_key),
        )
        .route(
            "/api/v1/api-keys/{id}",
            axum::routing::delete(settings::revoke_api_key),
        )
        .route(
            "/api/v1/operators",
            get(settings::list_operators).post(settings::create_operator),
        )
        .route(
            "/api/v1/operators/{id}",
            patch(settings::update_operator).delete(settings::remove_operator),
        )
        .route(
            "/api/v1/segments",
            get(segments::list).post(segments::create),
        )
        .route("/api/v1/segments/preview", post(segments::preview))
        .route(
            "/api/v1/segments/{id}",
            get(segments::get)
                .patch(segments::update)
                .delete(segments::delete),
        )
        .route(
            "/api/v1/segments/{id}/members",
            get(segments::members)
                .post(segments::add_members)
                .delete(segments::remove_members),
        )
        .route(
            "/api/v1/segments/{id}/members.csv",
            get(segments::members_csv),
        )
        .route(
            "/api/v1/segments/{id}/members/import",
            post(segments::import_members).layer(import_limit),
        )
        .route("/api/v1/segments/{id}/history", get(segments::history))
        .route(
            "/api/v1/lifecycle/rules",
            get(lifecycle::rules).put(lifecycle::set_rules),
        )
        .route("/api/v1/lifecycle/stages", get(lifecycle::stages))
        .route("/api/v1/lifecycle/flow", get(lifecycle::flow))
        .route("/api/v1/analytics/rfm", get(analytics::rfm))
        .route(
            "/api/v1/analytics/rfm/customers",
            get(analytics::rfm_customers),
        )
        .route("/api/v1/analytics/cohorts", get(analytics::cohorts))
        .route("/api/v1/analytics/metrics", get(analytics::metrics))
        .route("/api/v1/analytics/clv", get(analytics::clv))
        .route("/api/v1/analytics/funnel", get(analytics::funnel))
        .route(
            "/api/v1/workspace",
            get(settings::get_workspace).patch(settings::update_workspace),
        );

    Router::new()
        .route("/healthz", get(openapi::health))
        .route("/api/openapi.json", get(openapi::document))
        .merge(ingestion)
        .merge(admin)
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        // Route-level limits (imports) are inside this layer and win over it.
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY_BYTES))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A store that holds nothing, for unit tests of code paths that never reach it.
#[cfg(test)]
pub(crate) mod tests_support {
    use ciclo_store::{Store, StoreError, StoreResult, Tx};

    pub(crate) struct NoStore;

    impl Store for NoStore {
        fn backend(&self) -> &'static str {
            "none"
        }
        fn migrate(&self) -> StoreResult<()> {
            Ok(())
        }
        fn write(&self, _work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
            Err(StoreError::Backend("no store in unit tests".into()))
        }
        fn read(&self, _work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
            Err(StoreError::Backend("no store in unit tests".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("secret detail")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_an_opaque_500() {
        let app: Router = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(error::panic_response));
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("internal_error") && !body.contains("secret detail"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_panicking_use_case_answers_an_opaque_500() {
        let result =
            extract::blocking(|| -> Result<(), ApiError> { panic!("secret detail") }).await;
        let error = result.unwrap_err();
        assert_eq!(
            (error.status, error.code.as_ref()),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
        );
        assert!(!error.message.contains("secret"));
    }
}
