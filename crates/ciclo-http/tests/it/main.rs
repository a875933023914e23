//! Integration tests of the HTTP layer: the router over a real (temporary) SQLite store, driven
//! in-process with `tower::ServiceExt::oneshot`, plus the OpenAPI staleness check.
//!
//! Error bodies are asserted whole (`json!` literals): they are the API's contract with clients,
//! so any change to them should show up as a failing test.

mod accounts;
mod analytics;
mod customers;
mod errors;
mod ingest;
mod openapi;
mod segments;

use axum::body::{to_bytes, Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use ciclo_core::accounts::{Actor, NewWorkspace};
use ciclo_core::ports::FixedClock;
use ciclo_core::{Ciclo, SystemRandom};
use ciclo_domain::operator::{Role, Workspace};
use ciclo_http::HttpOptions;
use ciclo_store::{Store, StoreError, StoreResult, Tx};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

pub const OWNER_EMAIL: &str = "owner@loja.com.br";
pub const OWNER_PASSWORD: &str = "correct horse battery";

pub fn t(s: &str) -> ciclo_domain::Timestamp {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// The router over a fresh SQLite database with one workspace and its owner.
pub struct TestApp {
    pub router: Router,
    pub ciclo: Ciclo,
    pub workspace: Workspace,
    _dir: tempfile::TempDir,
}

impl Default for TestApp {
    fn default() -> Self {
        TestApp::new()
    }
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with_options(HttpOptions::default())
    }

    pub fn with_options(options: HttpOptions) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ciclo.db");
        let store = ciclo_store_sqlite::SqliteStore::open(path.to_str().unwrap()).unwrap();
        store.migrate().unwrap();
        let clock = Arc::new(FixedClock::at(t("2026-06-01T12:00:00Z")));
        let ciclo = Ciclo::new(Arc::new(store), clock, Arc::new(SystemRandom));
        let boot = ciclo
            .bootstrap(NewWorkspace::default(), OWNER_EMAIL, Some(OWNER_PASSWORD))
            .unwrap()
            .unwrap();
        TestApp {
            router: ciclo_http::router(ciclo.clone(), options),
            ciclo,
            workspace: boot.workspace,
            _dir: dir,
        }
    }

    /// The owner acting directly through core, to set up data without going through HTTP.
    pub fn owner(&self) -> Actor {
        Actor {
            workspace: self.workspace.clone(),
            role: Role::Owner,
            operator_id: None,
            api_key_id: None,
        }
    }

    /// A secret key with this role, made through core.
    pub fn key(&self, role: Role) -> String {
        self.ciclo
            .create_api_key(&self.owner(), "test key", role)
            .unwrap()
            .1
    }

    /// Signs the owner in through the API; returns (session token, csrf token).
    pub async fn login(&self) -> (String, String) {
        let reply = self
            .call(Method::POST, "/api/v1/auth/login")
            .json(serde_json::json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD}))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let token = reply
            .session_cookie()
            .expect("login sets the session cookie");
        let csrf = reply.json()["csrf_token"].as_str().unwrap().to_string();
        (token, csrf)
    }

    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            router: &self.router,
            builder: Request::builder().method(method).uri(path),
            body: Body::empty(),
        }
    }
}

/// A router whose store fails every transaction: for errors that must stay opaque.
pub fn broken_router() -> Router {
    struct BrokenStore;
    impl Store for BrokenStore {
        fn backend(&self) -> &'static str {
            "broken"
        }
        fn migrate(&self) -> StoreResult<()> {
            Ok(())
        }
        fn write(&self, _: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
            Err(StoreError::Backend(
                "disk I/O error in /var/lib/ciclo/secret.db: SELECT * FROM customers".into(),
            ))
        }
        fn read(&self, _: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
            Err(StoreError::Backend(
                "disk I/O error in /var/lib/ciclo/secret.db: SELECT * FROM customers".into(),
            ))
        }
    }
    let clock = Arc::new(FixedClock::at(t("2026-06-01T12:00:00Z")));
    ciclo_http::router(
        Ciclo::new(Arc::new(BrokenStore), clock, Arc::new(SystemRandom)),
        HttpOptions::default(),
    )
}

/// One request being built.
pub struct Call<'a> {
    router: &'a Router,
    builder: axum::http::request::Builder,
    body: Body,
}

impl Call<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn bearer(self, secret: &str) -> Self {
        self.header("authorization", &format!("Bearer {secret}"))
    }

    pub fn basic(self, write_key: &str) -> Self {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{write_key}:"));
        self.header("authorization", &format!("Basic {encoded}"))
    }

    pub fn cookie(self, token: &str) -> Self {
        self.header("cookie", &format!("ciclo_session={token}"))
    }

    pub fn csrf(self, token: &str) -> Self {
        self.header("x-csrf-token", token)
    }

    pub fn json(mut self, value: Value) -> Self {
        self.builder = self
            .builder
            .header(header::CONTENT_TYPE, "application/json");
        self.body = Body::from(value.to_string());
        self
    }

    pub fn raw(mut self, content_type: &str, bytes: impl Into<Bytes>) -> Self {
        self.builder = self.builder.header(header::CONTENT_TYPE, content_type);
        self.body = Body::from(bytes.into());
        self
    }

    pub fn gzip_json(mut self, value: &Value) -> Self {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(value.to_string().as_bytes()).unwrap();
        self.builder = self
            .builder
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, "gzip");
        self.body = Body::from(encoder.finish().unwrap());
        self
    }

    pub async fn send(self) -> Reply {
        send(self.router, self.builder.body(self.body).unwrap()).await
    }
}

/// Runs one request through the router in-process and reads the whole answer.
pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The session token from `Set-Cookie`, when it sets one.
    pub fn session_cookie(&self) -> Option<String> {
        let set_cookie = self.header("set-cookie")?;
        let value = set_cookie
            .split(';')
            .next()?
            .strip_prefix("ciclo_session=")?;
        (!value.is_empty()).then(|| value.to_string())
    }

    /// Asserts the status and the error code, and returns the error object.
    #[track_caller]
    pub fn error(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        body["error"].clone()
    }
}
