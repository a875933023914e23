//! Who is calling: secret API keys (`Authorization: Bearer sk_…`), the session cookie of a
//! signed-in operator (with its CSRF check), and Segment write keys (HTTP Basic).
//!
//! Credentials are checked by core; this module only finds them in the request. Roles are not
//! checked here either: each use case asks the actor for the one permission it needs.

use crate::error::ApiError;
use crate::extract::blocking;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use base64::Engine;
use ciclo_core::accounts::{Actor, SESSION_DAYS};
use ciclo_domain::operator::Session;

/// The cookie that carries the session token.
pub const SESSION_COOKIE: &str = "ciclo_session";
/// The header that must echo the session's CSRF token on unsafe cookie-authenticated requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A caller of the admin API that proved who they are.
pub(crate) struct Authenticated {
    pub actor: Actor,
    /// The session token and session, when the cookie (not a key) authenticated the request.
    pub session: Option<(String, Session)>,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // An Authorization header decides alone: a request with a bad key must not fall back to
        // a cookie it happens to carry, or a script could not tell which credential it used.
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let secret = bearer_token(value).ok_or_else(ApiError::unauthorized)?;
            let ciclo = state.ciclo.clone();
            let actor = blocking(move || Ok(ciclo.authenticate_api_key(&secret)?)).await?;
            return Ok(Authenticated {
                actor,
                session: None,
            });
        }
        let token = session_cookie(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let ciclo = state.ciclo.clone();
        let session_token = token.clone();
        let (actor, session) =
            blocking(move || Ok(ciclo.authenticate_session(&session_token)?)).await?;
        if !is_safe_method(&parts.method) {
            // Cookies ride along on cross-site requests; a custom header cannot be set by a
            // cross-site form, and its value proves the caller could read a same-origin answer.
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .map(HeaderValue::as_bytes)
                .unwrap_or_default();
            if !constant_time_eq(sent, session.csrf_token.as_bytes()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "send the session's csrf_token in the X-CSRF-Token header",
                ));
            }
        }
        Ok(Authenticated {
            actor,
            session: Some((token, session)),
        })
    }
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Compares without stopping at the first difference, so timing does not reveal a prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer_token(value: &HeaderValue) -> Option<String> {
    let raw = value.to_str().ok()?.trim();
    let (scheme, token) = raw.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// The session token from the `Cookie` header(s), if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"').to_string())
}

/// `Set-Cookie` for a new session. HttpOnly keeps scripts away from the token; SameSite=Lax keeps
/// it off cross-site POSTs (the CSRF header is the second line of defence).
pub(crate) fn session_set_cookie(token: &str, secure: bool) -> HeaderValue {
    let max_age = SESSION_DAYS * 24 * 60 * 60;
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("ciclo_session=; Path=/"))
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn session_clear_cookie(secure: bool) -> HeaderValue {
    let value = if secure {
        "ciclo_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure"
    } else {
        "ciclo_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    };
    HeaderValue::from_static(value)
}

/// The write key from `Authorization: Basic base64(<write key>:)`, as Segment's SDKs send it.
/// `Ok(None)` when there is no Authorization header; `Err` when there is one but it is not a
/// usable Basic credential.
pub(crate) fn basic_write_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let raw = value.to_str().map_err(|_| invalid_write_key())?.trim();
    let (scheme, encoded) = raw.split_once(' ').ok_or_else(invalid_write_key)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_write_key());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid_write_key())?;
    let text = String::from_utf8(decoded).map_err(|_| invalid_write_key())?;
    // The password is empty by convention; anything after the first colon is ignored.
    let user = text.split(':').next().unwrap_or_default().trim();
    if user.is_empty() {
        return Err(invalid_write_key());
    }
    Ok(Some(user.to_string()))
}

/// 401 `invalid_write_key`.
pub(crate) fn invalid_write_key() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_write_key",
        "send the workspace's write key as the HTTP Basic user name (empty password) or as writeKey in the body",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; ciclo_session=abc123"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
        headers.clear();
        headers.append(header::COOKIE, HeaderValue::from_static("ciclo_session="));
        assert_eq!(session_cookie(&headers), None);
    }

    #[test]
    fn write_key_from_basic_auth() {
        let mut headers = HeaderMap::new();
        assert!(basic_write_key(&headers).unwrap().is_none());
        let encoded = base64::engine::general_purpose::STANDARD.encode("wk_abc:");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        assert_eq!(
            basic_write_key(&headers).unwrap().as_deref(),
            Some("wk_abc")
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer wk_abc"),
        );
        assert_eq!(
            basic_write_key(&headers).unwrap_err().code,
            "invalid_write_key"
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(
            basic_write_key(&headers).unwrap_err().code,
            "invalid_write_key"
        );
    }

    #[test]
    fn bearer_tokens_and_constant_time_compare() {
        assert_eq!(
            bearer_token(&HeaderValue::from_static("Bearer sk_x")).as_deref(),
            Some("sk_x")
        );
        assert_eq!(
            bearer_token(&HeaderValue::from_static("bearer  sk_x ")).as_deref(),
            Some("sk_x")
        );
        assert_eq!(bearer_token(&HeaderValue::from_static("Basic abc")), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
