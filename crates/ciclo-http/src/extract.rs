//! Request extractors whose failures speak the API's error format, and the bridge to the
//! blocking use cases.
//!
//! axum's own `Json` and `Query` answer rejections in plain text with their own status codes;
//! these wrappers give the stable codes instead: `invalid_json` (400, not JSON at all),
//! `invalid_body` (422, JSON of the wrong shape, with serde's path as `field`),
//! `payload_too_large` (413) and `invalid_query` (400).

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use ciclo_domain::FieldError;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Runs a blocking use case on tokio's blocking pool. A panic inside becomes an opaque 500 (and
/// a log line) instead of tearing down the connection.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join_error) => {
            if join_error.is_panic() {
                let payload = join_error.into_panic();
                let detail = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown panic payload");
                tracing::error!(panic = detail, "a use case panicked");
            } else {
                tracing::error!(error = %join_error, "a blocking task was cancelled");
            }
            Err(ApiError::internal())
        }
    }
}

/// Parses JSON, telling syntax errors (400 `invalid_json`) from shape errors (422
/// `invalid_body`, with the path of the offending value as `field`).
pub(crate) fn parse_json<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        json_error(e.into_inner(), path)
    })?;
    deserializer
        .end()
        .map_err(|e| json_error(e, String::new()))?;
    Ok(value)
}

fn json_error(error: serde_json::Error, path: String) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => {
            let field = if path == "." { String::new() } else { path };
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("the body does not have the expected shape: {error}"),
            )
            .with_field(field)
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::invalid_json(error),
    }
}

/// A JSON body, with the API's error codes on failure. Unlike axum's `Json` it does not insist
/// on a `Content-Type`, since the body is parsed either way.
pub(crate) struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Maps a failure to buffer the body: over the route's `DefaultBodyLimit` is 413.
pub(crate) fn bytes_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than this endpoint accepts",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            "the request body could not be read",
        )
    }
}

/// The query string as name/value pairs, in order. Parameters may repeat (`type=track&type=page`),
/// which `serde_urlencoded` structs cannot express, so handlers read the pairs and validate each
/// value themselves, collecting every problem into one 422.
pub(crate) struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| QueryPairs(pairs))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("the query string cannot be read: {e}"),
                )
            })
    }
}

impl QueryPairs {
    /// The first non-empty value of `name` (an empty value counts as absent, as forms send them).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    /// Every value of `name`, comma-separated values split too (`type=track,page`).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// `limit`: `default` when absent, 1 to `max` otherwise.
    pub fn limit(&self, default: i64, max: i64, errors: &mut Vec<FieldError>) -> i64 {
        match self.get("limit") {
            None => default,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        "invalid_limit",
                        "limit",
                        format!("limit must be a whole number from 1 to {max}"),
                    ));
                    default
                }
            },
        }
    }

    /// A boolean parameter: `true`/`false` (also `1`/`0`, `yes`/`no`).
    pub fn boolean(&self, name: &str, errors: &mut Vec<FieldError>) -> Option<bool> {
        let raw = self.get(name)?;
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => {
                errors.push(FieldError::new(
                    "invalid_boolean",
                    name,
                    "expected true or false",
                ));
                None
            }
        }
    }
}

/// Fails with 422 listing every problem collected while reading parameters.
pub(crate) fn check(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// Parses an id from the path. A malformed id cannot name anything, so it is answered like an
/// id that does not exist: 404 `<what>_not_found`.
pub(crate) fn path_id<T>(
    raw: &str,
    what: &str,
    parse: fn(&str) -> Result<T, FieldError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|_| ApiError::not_found(what))
}

/// Parses an id from a request body. A malformed one there is bad input: 422 naming the field.
pub(crate) fn body_id<T>(
    raw: &str,
    field: &str,
    parse: fn(&str) -> Result<T, FieldError>,
) -> Result<T, ApiError> {
    parse(raw.trim()).map_err(|e| {
        ApiError::invalid(vec![FieldError {
            field: field.to_string(),
            ..e
        }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        name: String,
        items: Vec<u32>,
    }

    #[test]
    fn syntax_errors_are_400_with_line_and_column() {
        let e = parse_json::<Shape>(b"{\"name\": ").unwrap_err();
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::BAD_REQUEST, "invalid_json")
        );
        assert!(e.message.contains("line 1 column"), "{}", e.message);
        let e = parse_json::<Shape>(b"{\"name\": \"a\", \"items\": []} trailing").unwrap_err();
        assert_eq!(e.code, "invalid_json");
    }

    #[test]
    fn shape_errors_are_422_with_the_path() {
        let e = parse_json::<Shape>(br#"{"name": "a", "items": [1, "two"]}"#).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        );
        assert_eq!(e.field.as_deref(), Some("items[1]"));
        let e = parse_json::<Shape>(br#"{"items": []}"#).unwrap_err();
        assert_eq!(e.code, "invalid_body");
        assert!(e.message.contains("name"), "{}", e.message);
    }

    #[test]
    fn query_values_split_and_validate() {
        let q = QueryPairs(vec![
            ("type".into(), "track,page".into()),
            ("type".into(), "identify".into()),
            ("limit".into(), "501".into()),
            ("open".into(), "maybe".into()),
        ]);
        assert_eq!(q.all("type"), vec!["track", "page", "identify"]);
        let mut errors = Vec::new();
        assert_eq!(q.limit(50, 500, &mut errors), 50);
        assert_eq!(q.boolean("open", &mut errors), None);
        let fields: Vec<_> = errors.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(fields, vec!["invalid_limit", "invalid_boolean"]);
    }
}
