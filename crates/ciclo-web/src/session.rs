//! Who is looking and in which language: the session cookie, the CSRF check of every form, the
//! language choice, and the one error type of the console with its friendly pages.
//!
//! Handlers return `Result<Response, WebError>`. A `WebError` leaves the handler as an empty
//! response carrying an [`ErrorPage`] marker; [`finish_response`], the outermost middleware,
//! renders the marker as a page in the visitor's language (it knows the request, the handler's
//! error does not) and adds the security headers to every answer. Panics become the same
//! friendly 500 page: no stack trace or error text ever reaches the browser.

use crate::i18n::{Locale, LANGUAGE_COOKIE};
use crate::WebState;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use ciclo_core::accounts::{Actor, SESSION_DAYS};
use ciclo_core::CoreError;
use ciclo_domain::operator::{Permission, Role, Session, Workspace};

/// The cookie that carries the session token (shared with the JSON API).
pub const SESSION_COOKIE: &str = "ciclo_session";

/// The error pages the console shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorPage {
    /// The role lacks the permission (403).
    Forbidden,
    /// No such page or record (404).
    NotFound,
    /// A form without the session's CSRF token (403).
    Csrf,
    /// A request the console cannot read (400).
    BadRequest,
    /// Something failed on our side (500).
    Internal,
}

impl ErrorPage {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorPage::Forbidden | ErrorPage::Csrf => StatusCode::FORBIDDEN,
            ErrorPage::NotFound => StatusCode::NOT_FOUND,
            ErrorPage::BadRequest => StatusCode::BAD_REQUEST,
            ErrorPage::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The catalogue section of the page's words (`error_pages.<key>`).
    pub fn key(self) -> &'static str {
        match self {
            ErrorPage::Forbidden => "forbidden",
            ErrorPage::NotFound => "not_found",
            ErrorPage::Csrf => "csrf",
            ErrorPage::BadRequest => "bad_request",
            ErrorPage::Internal => "internal",
        }
    }
}

/// Why a request did not get its page.
#[derive(Debug)]
pub(crate) enum WebError {
    /// Not signed in (or the session ended): go to the sign-in page, then come back to `next`.
    SignIn {
        next: String,
    },
    Page(ErrorPage),
}

impl From<CoreError> for WebError {
    fn from(error: CoreError) -> Self {
        match error {
            // A second factor is asked for by the sign-in pages themselves; anywhere else it
            // means "sign in again".
            CoreError::Unauthorized | CoreError::SecondFactorRequired(_) => {
                WebError::SignIn { next: "/".into() }
            }
            CoreError::Forbidden(_) => WebError::Page(ErrorPage::Forbidden),
            CoreError::NotFound(_) => WebError::Page(ErrorPage::NotFound),
            CoreError::Invalid(_) | CoreError::Conflict(_) => WebError::Page(ErrorPage::BadRequest),
            CoreError::Store(cause) => {
                tracing::error!(error = %cause, "console: store failure");
                WebError::Page(ErrorPage::Internal)
            }
        }
    }
}

impl From<ErrorPage> for WebError {
    fn from(page: ErrorPage) -> Self {
        WebError::Page(page)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn { next } => {
                let target = if next == "/" || !is_local_path(&next) {
                    "/login".to_string()
                } else {
                    format!("/login?next={}", urlencoding::encode(&next))
                };
                Redirect::to(&target).into_response()
            }
            WebError::Page(page) => {
                let mut response = page.status().into_response();
                response.extensions_mut().insert(page);
                response
            }
        }
    }
}

/// Runs blocking work (every core call) off the async threads. A panic there becomes a 500.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, WebError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "console: blocking task failed");
        WebError::Page(ErrorPage::Internal)
    })
}

/// [`blocking`] for a core call whose errors all become error pages.
pub(crate) async fn core<T, F>(work: F) -> Result<T, WebError>
where
    F: FnOnce() -> Result<T, CoreError> + Send + 'static,
    T: Send + 'static,
{
    blocking(work).await?.map_err(WebError::from)
}

/// Whether `path` is a path on this site (`/customers?x=1`), never another origin (`//evil`).
pub(crate) fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(|c| c.is_control())
}

/// The value of one cookie, if sent.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v.trim_matches('"').to_string())
}

/// The language for a request whose workspace is not known (sign-in and error pages).
pub(crate) fn request_locale(headers: &HeaderMap, workspace_locale: Option<&str>) -> Locale {
    let preference = cookie(headers, LANGUAGE_COOKIE);
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Locale::negotiate(preference.as_deref(), accept, workspace_locale)
}

fn cookie_header(value: String) -> HeaderValue {
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

/// `Set-Cookie` for a new session. HttpOnly keeps scripts away from the token; SameSite=Lax
/// keeps it off cross-site POSTs (the CSRF token in every form is the second line of defence).
pub(crate) fn session_set_cookie(token: &str, secure: bool) -> HeaderValue {
    let max_age = SESSION_DAYS * 24 * 60 * 60;
    let secure = if secure { "; Secure" } else { "" };
    cookie_header(format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
}

pub(crate) fn session_clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    cookie_header(format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
}

/// `Set-Cookie` for the language preference (`None` forgets it: back to the browser's).
pub(crate) fn language_cookie(locale: Option<Locale>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    match locale {
        Some(locale) => cookie_header(format!(
            "{LANGUAGE_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000{secure}",
            locale.code()
        )),
        None => cookie_header(format!(
            "{LANGUAGE_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
        )),
    }
}

/// Compares without stopping at the first difference, so timing does not reveal a prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A signed-in operator looking at the console.
pub(crate) struct Console {
    pub actor: Actor,
    pub session: Session,
    pub token: String,
    pub locale: Locale,
    /// Whether the language came from the operator's preference cookie (vs. the browser).
    pub language_chosen: bool,
    /// Every workspace the operator belongs to (for the switcher).
    pub workspaces: Vec<(Workspace, Role)>,
    /// The path and query of this request (to come back after a language change).
    pub here: String,
}

impl Console {
    pub fn can(&self, permission: Permission) -> bool {
        self.actor.role.allows(permission)
    }

    /// Fails with the "not allowed" page unless the role grants `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), WebError> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(ErrorPage::Forbidden.into())
        }
    }

    /// Reads a submitted form (`application/x-www-form-urlencoded`) after checking that it
    /// carries this session's CSRF token in `csrf_token`.
    pub fn form(&self, body: &Bytes) -> Result<FormData, WebError> {
        let form = FormData::parse(body);
        self.check_csrf(form.get("csrf_token").unwrap_or_default())?;
        Ok(form)
    }

    pub fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        if constant_time_eq(sent.as_bytes(), self.session.csrf_token.as_bytes()) {
            Ok(())
        } else {
            Err(ErrorPage::Csrf.into())
        }
    }
}

impl FromRequestParts<WebState> for Console {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        let here = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let next = if parts.method == axum::http::Method::GET {
            here.clone()
        } else {
            "/".to_string()
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(WebError::SignIn { next });
        };
        let ciclo = state.ciclo.clone();
        let session_token = token.clone();
        let found = blocking(move || {
            let (actor, session) = ciclo.authenticate_session(&session_token)?;
            let workspaces = ciclo.workspaces_of(&actor)?;
            Ok::<_, CoreError>((actor, session, workspaces))
        })
        .await?;
        let (actor, session, workspaces) = match found {
            Ok(found) => found,
            Err(CoreError::Unauthorized) => return Err(WebError::SignIn { next }),
            Err(other) => return Err(other.into()),
        };
        let preference = cookie(&parts.headers, LANGUAGE_COOKIE);
        let language_chosen = preference.as_deref().and_then(Locale::parse).is_some();
        let locale = request_locale(&parts.headers, Some(&actor.workspace.locale));
        Ok(Console {
            actor,
            session,
            token,
            locale,
            language_chosen,
            workspaces,
            here,
        })
    }
}

/// The language of a visitor who may not be signed in.
pub(crate) struct Visitor {
    pub locale: Locale,
    pub language_chosen: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let language_chosen = cookie(&parts.headers, LANGUAGE_COOKIE)
            .as_deref()
            .and_then(Locale::parse)
            .is_some();
        Ok(Visitor {
            locale: request_locale(&parts.headers, None),
            language_chosen,
        })
    }
}

/// A form body as name/value pairs, in order, repeated names kept (checkbox lists).
#[derive(Debug, Default, Clone)]
pub(crate) struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed value, empty when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_string()
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Turns a handler panic into the friendly 500 page; the message goes to the log only.
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic payload");
    tracing::error!(panic = detail, "console: a request handler panicked");
    WebError::Page(ErrorPage::Internal).into_response()
}

/// The outermost middleware: renders error markers as pages in the visitor's language and adds
/// the security headers to every answer.
pub(crate) async fn finish_response(
    State(state): State<WebState>,
    request: Request,
    next: Next,
) -> Response {
    let locale = request_locale(request.headers(), None);
    let mut response = next.run(request).await;
    if let Some(page) = response.extensions().get::<ErrorPage>().copied() {
        let status = response.status();
        response = state.templates.error_page(locale, page);
        *response.status_mut() = status;
    }
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert!(is_local_path("/customers?q=1"));
        assert!(!is_local_path("//evil.example"));
        assert!(!is_local_path("https://evil.example"));
        assert!(!is_local_path("/\\evil"));
        assert!(!is_local_path("/a\r\nSet-Cookie: x"));
    }

    #[test]
    fn repeated_form_fields_are_kept() {
        let form = FormData::parse(b"ids=a&ids=b&tag=+vip+&csrf_token=x%2By");
        assert_eq!(form.all("ids"), vec!["a", "b"]);
        assert_eq!(form.text("tag"), "vip");
        assert_eq!(form.get("csrf_token"), Some("x+y"));
    }
}
