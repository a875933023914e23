//! Validation errors that carry a stable code, the offending field and a human reason.

use serde::Serialize;

/// One problem with one field of some input. `code` is stable snake_case that clients may match on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {reason} ({code})")]
pub struct FieldError {
    pub code: String,
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(code: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            code: code.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error, with its field nested under `prefix` (`traits` + `email` → `traits.email`).
    pub fn under(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.field = if self.field.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}.{}", self.field)
            };
        }
        self
    }
}
