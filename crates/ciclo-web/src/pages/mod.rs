//! One module per screen of the console. Each handler authenticates through the
//! [`Console`](crate::session::Console) extractor, calls `ciclo-core` on a blocking thread and
//! renders a template; forms post back, are checked for the session's CSRF token, and answer
//! with a redirect (success) or the same page with the errors next to the fields (422).

pub(crate) mod analytics;
pub(crate) mod auth;
pub(crate) mod customer;
pub(crate) mod customers;
pub(crate) mod dashboard;
pub(crate) mod imports;
pub(crate) mod segments;
pub(crate) mod settings;

use crate::i18n::Locale;
use ciclo_core::CoreError;
use ciclo_domain::FieldError;
use std::collections::BTreeMap;

/// Validation problems by field, in the operator's language, for the form that caused them.
pub(crate) fn field_messages(locale: Locale, errors: &[FieldError]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for error in errors {
        let field = if error.field.is_empty() {
            "_form".to_string()
        } else {
            error.field.clone()
        };
        out.entry(field)
            .or_insert_with(|| locale.field_error(error));
    }
    out
}

/// The field errors inside a validation or conflict error, if it is one of those.
pub(crate) fn form_errors(error: &CoreError) -> Option<Vec<FieldError>> {
    match error {
        CoreError::Invalid(errors) => Some(errors.clone()),
        CoreError::Conflict(error) => Some(vec![error.clone()]),
        _ => None,
    }
}

/// A `303 See Other` to a local path, the answer to every successful form.
pub(crate) fn see_other(path: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::response::Redirect::to(path).into_response()
}
