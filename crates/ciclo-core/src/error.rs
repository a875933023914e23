//! The use-case error. The HTTP layer maps each variant to one status and a stable code.

use ciclo_domain::FieldError;
use ciclo_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Input failed validation: every problem found, each with code, field and reason (422).
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldError>),
    /// The thing named does not exist in this workspace (404). The text names what (`customer`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request clashes with existing data (409): code, field and reason.
    #[error("conflict: {0}")]
    Conflict(FieldError),
    /// The password was right, and the operator signs in with a second factor: send the
    /// challenge back with a code (401 `second_factor_required`).
    #[error("second factor required")]
    SecondFactorRequired(String),
    /// No valid credentials (401).
    #[error("unauthorized")]
    Unauthorized,
    /// Valid credentials without the permission needed (403).
    #[error("forbidden: needs {0}")]
    Forbidden(&'static str),
    /// The store failed; details are logged, never shown (500).
    #[error("store failure: {0}")]
    Store(StoreError),
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => CoreError::NotFound("record"),
            other => CoreError::Store(other),
        }
    }
}

impl CoreError {
    pub fn invalid(code: &str, field: &str, reason: impl Into<String>) -> Self {
        CoreError::Invalid(vec![FieldError::new(code, field, reason)])
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
