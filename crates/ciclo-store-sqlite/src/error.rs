//! Maps SQLite errors to [`StoreError`]: busy and locked databases are worth a retry, broken
//! uniqueness rules are conflicts named after the table and columns, the rest is a backend
//! failure.

use ciclo_store::StoreError;
use rusqlite::ffi;

/// `.db()?` turns a rusqlite result into a store result.
pub(crate) trait Db<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(map_error)
    }
}

pub(crate) fn map_error(error: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &error {
        match failure.code {
            ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked => {
                return StoreError::Retry(error.to_string());
            }
            ffi::ErrorCode::ConstraintViolation
                if failure.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || failure.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                return StoreError::Conflict(constraint_name(
                    message.as_deref().unwrap_or_default(),
                ));
            }
            _ => {}
        }
    }
    StoreError::Backend(error.to_string())
}

/// Names a uniqueness rule from SQLite's message, `UNIQUE constraint failed: orders.workspace_id,
/// orders.external_id` giving `orders_external_id`: the table, then the columns other than the
/// workspace id or seq (which scopes every key and says nothing about what clashed). The
/// migrations name their UNIQUE constraints the same way, so the name matches the schema.
pub(crate) fn constraint_name(message: &str) -> String {
    let Some((_, columns)) = message.split_once(": ") else {
        return "unique".into();
    };
    let mut table = None;
    let mut names = Vec::new();
    for qualified in columns.split(',').map(str::trim) {
        let (t, column) = qualified.split_once('.').unwrap_or(("", qualified));
        table.get_or_insert(t);
        if column != "workspace_id" && column != "workspace_seq" {
            names.push(column);
        }
    }
    match table {
        Some(t) if !t.is_empty() => std::iter::once(t)
            .chain(names)
            .collect::<Vec<_>>()
            .join("_"),
        _ => columns.to_string(),
    }
}

/// `NotFound` when an UPDATE touched no row: the caller named a record that is not there.
pub(crate) fn expect_one(changed: usize) -> Result<(), StoreError> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_names_leave_out_the_workspace() {
        assert_eq!(
            constraint_name("UNIQUE constraint failed: operators.email"),
            "operators_email"
        );
        assert_eq!(
            constraint_name("UNIQUE constraint failed: orders.workspace_id, orders.external_id"),
            "orders_external_id"
        );
        assert_eq!(
            constraint_name("UNIQUE constraint failed: customers.workspace_id, customers.id"),
            "customers_id"
        );
        assert_eq!(constraint_name("something else"), "unique");
    }
}
