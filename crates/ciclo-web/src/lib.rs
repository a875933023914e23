//! ciclo's operator console: server-rendered HTML pages for the team that works with customers,
//! in Brazilian Portuguese and English.
//!
//! [`console_router`] serves the pages (`/`, `/login`, `/customers`, `/segments`, `/analytics/*`,
//! `/imports`, `/settings`, …) and their assets (`/assets/*`); the composition root merges it with the JSON
//! API of `ciclo-http`, which keeps `/api` and `/v1`. Pages are rendered by minijinja from templates
//! embedded in the binary (HTML auto-escaped); forms work without JavaScript, and a small script
//! adds infinite scroll, "select all" and copy buttons. Charts are SVG drawn on the server.
//!
//! Codemap: `session` (sign-in cookie, CSRF, language choice, the error type and the error
//! pages), `render` (the template environment and its filters), `i18n` (catalogues in
//! `locales/`), `format` (numbers, money, dates per locale), `charts` (SVG), `assets` (CSS, JS),
//! `pages::*` (one module per screen).
//!
//! Like `ciclo-http`, this crate never names a storage backend and calls only `ciclo-core` use
//! cases, on blocking threads.

mod assets;
pub mod charts;
pub mod format;
pub mod i18n;
mod pages;
mod render;
mod session;

pub use session::SESSION_COOKIE;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use ciclo_core::Ciclo;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;

/// How the console behaves where the deployment decides.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Mark cookies `Secure` (set it when served over HTTPS).
    pub secure_cookies: bool,
    /// Largest CSV file the import screen accepts, in bytes.
    pub max_import_bytes: usize,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            secure_cookies: false,
            max_import_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub(crate) struct WebState {
    pub ciclo: Ciclo,
    pub options: Arc<WebOptions>,
    pub templates: Arc<render::Templates>,
    pub imports: Arc<pages::imports::ImportWork>,
}

/// The operator console over `app`. It has no fallback route, so it can be merged with the
/// JSON API router (which has one) at the root.
pub fn console_router(app: Ciclo, options: WebOptions) -> Router {
    let upload_limit = DefaultBodyLimit::max(options.max_import_bytes + 64 * 1024);
    let state = WebState {
        ciclo: app,
        options: Arc::new(options),
        templates: Arc::new(render::Templates::new()),
        imports: Arc::new(pages::imports::ImportWork::default()),
    };
    use pages::{analytics, auth, customer, customers, dashboard, imports, segments, settings};
    Router::new()
        .route("/assets/console.css", get(assets::css))
        .route("/assets/console.js", get(assets::js))
        .route("/assets/favicon.svg", get(assets::favicon))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/login/code", post(auth::login_code))
        .route("/logout", post(auth::logout))
        .route("/switch-workspace", post(auth::switch_workspace))
        .route("/language", post(auth::set_language))
        .route("/", get(dashboard::page))
        .route("/customers", get(customers::list))
        .route("/customers/bulk-tag", post(customers::bulk_tag))
        .route("/customers/export.csv", get(customers::export))
        .route(
            "/customers/{id}",
            get(customer::page).post(customer::update),
        )
        .route("/customers/{id}/timeline", get(customer::timeline_fragment))
        .route("/merges/{id}/undo", post(customer::unmerge))
        .route("/segments", get(segments::list))
        .route(
            "/segments/new",
            get(segments::editor::new_page).post(segments::editor::create),
        )
        .route(
            "/segments/preview",
            post(segments::editor::preview_fragment),
        )
        .route("/segments/{id}", get(segments::detail::page))
        .route(
            "/segments/{id}/edit",
            get(segments::editor::edit_page).post(segments::editor::update),
        )
        .route("/segments/{id}/delete", post(segments::detail::delete))
        .route(
            "/segments/{id}/members",
            post(segments::detail::add_members),
        )
        .route(
            "/segments/{id}/members/remove",
            post(segments::detail::remove_member),
        )
        .route(
            "/segments/{id}/upload",
            post(segments::detail::upload).layer(upload_limit),
        )
        .route("/segments/{id}/export.csv", get(segments::detail::export))
        .route(
            "/imports",
            get(imports::start)
                .post(imports::upload)
                .layer(upload_limit),
        )
        .route("/imports/uploads/{token}", post(imports::mapped))
        .route("/imports/jobs/{job}", get(imports::progress))
        .route("/imports/{id}", get(imports::result))
        .route("/imports/{id}/rejected.csv", get(imports::rejected_csv))
        .route("/analytics", get(analytics::index))
        .route("/analytics/rfm", get(analytics::rfm::page))
        .route("/analytics/rfm/customers", get(analytics::rfm::customers))
        .route("/analytics/cohorts", get(analytics::cohorts::page))
        .route("/analytics/metrics", get(analytics::metrics::page))
        .route("/analytics/clv", get(analytics::clv::page))
        .route("/analytics/funnel", get(analytics::funnel::page))
        .route("/settings", get(settings::page))
        .route("/settings/workspace", post(settings::update_workspace))
        .route("/settings/lifecycle", post(settings::update_lifecycle))
        .route("/settings/operators", post(settings::add_operator))
        .route("/settings/operators/{id}/role", post(settings::change_role))
        .route(
            "/settings/operators/{id}/remove",
            post(settings::remove_operator),
        )
        .route(
            "/settings/two-factor/setup",
            post(settings::begin_two_factor),
        )
        .route(
            "/settings/two-factor/confirm",
            post(settings::confirm_two_factor),
        )
        .route(
            "/settings/two-factor/disable",
            post(settings::disable_two_factor),
        )
        .route("/settings/api-keys", post(settings::create_api_key))
        .route(
            "/settings/api-keys/{id}/revoke",
            post(settings::revoke_api_key),
        )
        .layer(CatchPanicLayer::custom(session::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::finish_response,
        ))
        .with_state(state)
}
