//! How PostgreSQL errors become [`StoreError`]s.

use ciclo_store::StoreError;
use postgres::error::SqlState;

/// Serialization failures and deadlocks mean "run the transaction again"; a unique violation
/// names its constraint (the schema names constraints after what they protect, such as
/// `operators_email`); everything else is a backend failure.
pub(crate) fn from_pg(error: postgres::Error) -> StoreError {
    match error.code() {
        Some(code)
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            StoreError::Retry(describe(&error))
        }
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
            let constraint = error
                .as_db_error()
                .and_then(|db| db.constraint())
                .unwrap_or("unique")
                .to_string();
            StoreError::Conflict(constraint)
        }
        _ => StoreError::Backend(describe(&error)),
    }
}

/// The error with the server's message: `postgres::Error` displays only "db error" for errors
/// the server reported, and the message is what an operator needs in the log.
pub(crate) fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{db} ({})", db.code().code()),
        None => error.to_string(),
    }
}

/// A row that does not decode into a domain value: the database holds something this version
/// of ciclo did not write.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable {what} in the database: {detail}"))
}
