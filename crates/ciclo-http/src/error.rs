//! The one mapping from errors to HTTP answers.
//!
//! Every error leaves as `{"error": {"code", "message", "field"?, "details"?}}` with a stable
//! snake_case code. Server-side failures (store errors, panics) answer 500 with an opaque
//! message: what went wrong is written to the log, never to the client, because backend error
//! text can carry SQL, file paths or customer data.

use crate::dto::{ErrorBody, ErrorDetail, FieldErrorDto};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ciclo_core::CoreError;
use ciclo_domain::FieldError;
use std::borrow::Cow;

/// What clients read on every 500: nothing about the cause.
const INTERNAL_MESSAGE: &str = "something went wrong on our side; it has been logged";

/// An error on its way to becoming an HTTP answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    pub field: Option<String>,
    pub details: Vec<FieldError>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            details: Vec::new(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = (!field.is_empty()).then_some(field);
        self
    }

    /// 500 with the opaque message. Callers log the cause themselves before calling this.
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            INTERNAL_MESSAGE,
        )
    }

    /// 404 `<what>_not_found`.
    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{what}_not_found"),
            format!("{} not found", what.replace('_', " ")),
        )
    }

    /// 422 `validation_failed` with every problem in `details` and the first one's field.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let message = match errors.as_slice() {
            [one] => one.reason.clone(),
            many => format!("{} fields are invalid; see details", many.len()),
        };
        let field = errors.first().map(|e| e.field.clone()).unwrap_or_default();
        ApiError {
            details: errors,
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            )
        }
        .with_field(field)
    }

    /// 422 `validation_failed` for one field.
    pub fn invalid_field(code: &str, field: &str, reason: impl Into<String>) -> Self {
        ApiError::invalid(vec![FieldError::new(code, field, reason)])
    }

    /// 401 `unauthorized`: no credentials, or ones that are not valid.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid credentials",
        )
    }

    /// 400 `invalid_json`: the body is not JSON. The reason is serde's, with line and column.
    pub fn invalid_json(reason: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {reason}"),
        )
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
                details: (!self.details.is_empty())
                    .then(|| self.details.iter().map(FieldErrorDto::from).collect()),
            },
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(errors) => ApiError::invalid(errors),
            CoreError::NotFound(what) => ApiError::not_found(what),
            CoreError::Conflict(fe) => {
                ApiError::new(StatusCode::CONFLICT, fe.code, fe.reason).with_field(fe.field)
            }
            CoreError::Unauthorized => ApiError::unauthorized(),
            // The challenge itself is for the console's two-step form; API clients send
            // `totp_code` with the password instead.
            CoreError::SecondFactorRequired(_) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "second_factor_required",
                "this operator signs in with a code from an authenticator app: send totp_code",
            )
            .with_field("totp_code"),
            CoreError::Forbidden(permission) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("your role does not have the {permission} permission"),
            ),
            CoreError::Store(store_error) => {
                tracing::error!(error = %store_error, "store failure while serving a request");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // Tells generic HTTP clients which schemes the API accepts.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Unknown paths.
pub(crate) async fn not_found_fallback() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Known paths called with a method they do not have.
pub(crate) async fn method_not_allowed_fallback() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

/// Turns a handler panic (caught by tower-http's CatchPanic) into an opaque 500; the panic
/// message goes to the log only.
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic payload");
    tracing::error!(panic = detail, "a request handler panicked");
    ApiError::internal().into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciclo_store::StoreError;

    #[test]
    fn core_errors_map_to_stable_codes() {
        let cases: Vec<(CoreError, StatusCode, &str, Option<&str>)> = vec![
            (
                CoreError::invalid("invalid_email", "email", "nope"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                Some("email"),
            ),
            (
                CoreError::NotFound("customer"),
                StatusCode::NOT_FOUND,
                "customer_not_found",
                None,
            ),
            (
                CoreError::Conflict(FieldError::new("identity_taken", "email", "taken")),
                StatusCode::CONFLICT,
                "identity_taken",
                Some("email"),
            ),
            (
                CoreError::Unauthorized,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                None,
            ),
            (
                CoreError::Forbidden("manage_workspace"),
                StatusCode::FORBIDDEN,
                "forbidden",
                None,
            ),
            (
                CoreError::Store(StoreError::Backend("disk I/O error at /var/lib/x".into())),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                None,
            ),
        ];
        for (core, status, code, field) in cases {
            let api = ApiError::from(core);
            assert_eq!(
                (api.status, api.code.as_ref(), api.field.as_deref()),
                (status, code, field)
            );
        }
    }

    #[test]
    fn store_failures_never_reach_the_body() {
        let api = ApiError::from(CoreError::Store(StoreError::Backend(
            "disk I/O error on /var/lib/ciclo/secret.db".into(),
        )));
        let body = serde_json::to_string(&api.body()).unwrap();
        assert!(!body.contains("secret.db"), "{body}");
    }

    #[test]
    fn forbidden_names_the_permission() {
        let api = ApiError::from(CoreError::Forbidden("export_customers"));
        assert!(api.message.contains("export_customers"));
    }
}
