//! Integration tests of the operator console: the formatting functions, the message catalogues,
//! the SVG charts, and the pages themselves, served by the real router over a temporary SQLite
//! database and driven in-process like a browser would (cookies kept, CSRF tokens read from the
//! forms). The browser tests in `e2e/` drive the same pages in headless Chromium.

mod analytics;
mod charts;
mod csrf;
mod flows;
mod format;
mod i18n;
mod roles;
mod segments;
mod two_factor;

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::Router;
use ciclo_core::accounts::{Actor, NewWorkspace};
use ciclo_core::ports::FixedClock;
use ciclo_core::{Ciclo, SystemRandom};
use ciclo_domain::operator::{Role, Workspace};
use ciclo_store::{Store, StoreError, StoreResult, Tx};
use ciclo_web::WebOptions;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

pub const OWNER_EMAIL: &str = "owner@loja.com.br";
pub const PASSWORD: &str = "correct horse battery";

pub fn t(s: &str) -> ciclo_domain::Timestamp {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// SQLite that can be told to fail, to see what a broken database looks like on screen.
pub struct FlakyStore {
    inner: ciclo_store_sqlite::SqliteStore,
    pub failing: AtomicBool,
}

impl Store for FlakyStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    fn migrate(&self) -> StoreResult<()> {
        self.inner.migrate()
    }
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
        self.check()?;
        self.inner.write(work)
    }
    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
        self.check()?;
        self.inner.read(work)
    }
}

impl FlakyStore {
    fn check(&self) -> StoreResult<()> {
        if self.failing.load(Ordering::Relaxed) {
            Err(StoreError::Backend(
                "SECRET-DETAIL: disk on fire at /var/lib/ciclo/ciclo.db".into(),
            ))
        } else {
            Ok(())
        }
    }
}

/// The console and the JSON API over a fresh database with one workspace and its owner.
pub struct TestApp {
    pub router: Router,
    pub ciclo: Ciclo,
    /// The clock core reads (advance it to see time pass).
    pub clock: Arc<FixedClock>,
    pub workspace: Workspace,
    pub store: Arc<FlakyStore>,
    _dir: tempfile::TempDir,
}

impl Default for TestApp {
    fn default() -> Self {
        TestApp::new()
    }
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with_options(WebOptions::default())
    }

    pub fn with_options(options: WebOptions) -> TestApp {
        // Template and handler failures are logged: `CICLO_TEST_LOG=1` shows them.
        if std::env::var_os("CICLO_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ciclo.db");
        let inner = ciclo_store_sqlite::SqliteStore::open(path.to_str().unwrap()).unwrap();
        let store = Arc::new(FlakyStore {
            inner,
            failing: AtomicBool::new(false),
        });
        store.migrate().unwrap();
        let clock = Arc::new(FixedClock::at(t("2026-06-01T12:00:00Z")));
        let ciclo = Ciclo::new(store.clone(), clock.clone(), Arc::new(SystemRandom));
        let boot = ciclo
            .bootstrap(NewWorkspace::default(), OWNER_EMAIL, Some(PASSWORD))
            .unwrap()
            .unwrap();
        let router = ciclo_http::router(ciclo.clone(), ciclo_http::HttpOptions::default())
            .merge(ciclo_web::console_router(ciclo.clone(), options));
        TestApp {
            router,
            ciclo,
            clock,
            workspace: boot.workspace,
            store,
            _dir: dir,
        }
    }

    /// The owner acting directly through core, to set up data.
    pub fn owner(&self) -> Actor {
        Actor {
            workspace: self.workspace.clone(),
            role: Role::Owner,
            operator_id: None,
            api_key_id: None,
        }
    }

    /// Creates a customer through core; returns its id.
    pub fn customer(&self, body: Value) -> String {
        let map = body.as_object().unwrap().clone();
        self.ciclo
            .create_customer(&self.owner(), &map)
            .unwrap()
            .customer
            .id
            .to_string()
    }

    /// Adds an operator with `role` (password [`PASSWORD`]); returns the email.
    pub fn operator(&self, role: Role) -> String {
        let email = format!("{}@loja.com.br", role.as_str());
        self.ciclo
            .add_operator(&self.owner(), &email, role.as_str(), role, PASSWORD)
            .unwrap();
        email
    }

    /// Sends Segment messages through the ingestion endpoint.
    pub async fn ingest(&self, batch: Value) {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:", self.workspace.write_key));
        let request = Request::post("/v1/batch")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Basic {auth}"))
            .body(Body::from(json!({ "batch": batch }).to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// Whether core's dashboard is implemented yet (it is a `todo!()` while being written).
    pub fn dashboard_works(&self) -> bool {
        let ciclo = self.ciclo.clone();
        let actor = self.owner();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            ciclo.dashboard(&actor).is_ok()
        }))
        .unwrap_or(false)
    }

    pub fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: BTreeMap::new(),
            accept_language: Some("pt-BR,pt;q=0.9".into()),
        }
    }

    /// A browser signed in as `email`.
    pub async fn signed_in(&self, email: &str) -> Browser {
        let mut browser = self.browser();
        let page = browser.sign_in(email, PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        browser
    }
}

/// Undoes the HTML escaping of an attribute value (links read from a page).
pub fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// One answer, with its body as text.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the first hidden input named `name`.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }

    pub fn csrf(&self) -> String {
        self.hidden("csrf_token")
    }

    #[track_caller]
    pub fn assert_contains(&self, text: &str) {
        assert!(
            self.body.contains(text),
            "expected {text:?} in the page ({}):\n{}",
            self.status,
            self.body
        );
    }

    #[track_caller]
    pub fn assert_lacks(&self, text: &str) {
        assert!(
            !self.body.contains(text),
            "did not expect {text:?} in the page:\n{}",
            self.body
        );
    }
}

/// A pretend browser: keeps cookies, sends forms.
pub struct Browser {
    router: Router,
    pub cookies: BTreeMap<String, String>,
    pub accept_language: Option<String>,
}

impl Browser {
    pub async fn send(&mut self, request: Request<Body>) -> Page {
        let (mut parts, body) = request.into_parts();
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            parts
                .headers
                .insert(header::COOKIE, cookie.parse().unwrap());
        }
        if let Some(lang) = &self.accept_language {
            parts
                .headers
                .insert(header::ACCEPT_LANGUAGE, lang.parse().unwrap());
        }
        let response = self
            .router
            .clone()
            .oneshot(Request::from_parts(parts, body))
            .await
            .unwrap();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            body.append_pair(k, v);
        }
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body.finish()))
                .unwrap(),
        )
        .await
    }

    /// Submits a form whose page is `from`: its CSRF token is added.
    pub async fn submit(&mut self, from: &Page, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = from.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let token = form.hidden("login_token");
        self.post(
            "/login",
            &[
                ("login_token", &token),
                ("email", email),
                ("password", password),
                ("next", "/customers"),
            ],
        )
        .await
    }
}
