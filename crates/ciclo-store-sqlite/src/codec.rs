//! Conversions between domain values and SQLite columns: timestamps as unix microseconds,
//! JSON text for lists and maps, and readers that turn a bad stored value into an error rather
//! than a panic.

use ciclo_domain::ids::CustomerId;
use ciclo_domain::{DateTime, NaiveDate, Timestamp};
use ciclo_store::{StoreError, StoreResult};
use rusqlite::types::Type;
use rusqlite::Row;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Timestamps are stored as unix microseconds: compact, fast to compare and index, and the
/// precision PostgreSQL keeps too (finer parts are dropped).
pub(crate) fn micros(at: &Timestamp) -> i64 {
    at.timestamp_micros()
}

pub(crate) fn opt_micros(at: &Option<Timestamp>) -> Option<i64> {
    at.as_ref().map(micros)
}

pub(crate) fn from_micros(value: i64) -> Option<Timestamp> {
    DateTime::from_timestamp_micros(value)
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")))
}

/// A JSON array of strings, bound as one parameter and unpacked with `json_each` in SQL: one
/// cached statement serves lists of any length, where `IN (?, ?, …)` would need one per length.
pub(crate) fn json_strings<S: AsRef<str>>(items: &[S]) -> String {
    serde_json::Value::Array(
        items
            .iter()
            .map(|s| serde_json::Value::String(s.as_ref().to_string()))
            .collect(),
    )
    .to_string()
}

pub(crate) fn ids_json(ids: &[CustomerId]) -> String {
    json_strings(&ids.iter().map(CustomerId::as_str).collect::<Vec<_>>())
}

/// Wraps a conversion failure of column `index` as a rusqlite error, so row mappers can use `?`.
fn bad_column(index: usize, kind: Type, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, kind, message.into())
}

pub(crate) fn get_ts(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let value: i64 = row.get(index)?;
    from_micros(value).ok_or_else(|| {
        bad_column(
            index,
            Type::Integer,
            format!("timestamp {value} out of range"),
        )
    })
}

pub(crate) fn get_opt_ts(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    let value: Option<i64> = row.get(index)?;
    value
        .map(|v| {
            from_micros(v).ok_or_else(|| {
                bad_column(index, Type::Integer, format!("timestamp {v} out of range"))
            })
        })
        .transpose()
}

pub(crate) fn get_json<T: DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| bad_column(index, Type::Text, format!("bad JSON: {e}")))
}

/// Reads a text column into a type whose serde form is a plain string (the `Email` and `Phone`
/// newtypes): values were validated before they were stored, so they are not parsed again.
pub(crate) fn get_opt_trusted<T: DeserializeOwned>(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| {
        serde_json::from_value(serde_json::Value::String(t))
            .map_err(|e| bad_column(index, Type::Text, format!("bad value: {e}")))
    })
    .transpose()
}

pub(crate) fn get_opt_date(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<NaiveDate>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| {
        NaiveDate::parse_from_str(&t, "%Y-%m-%d")
            .map_err(|e| bad_column(index, Type::Text, format!("bad date: {e}")))
    })
    .transpose()
}

/// Reads a text column with a domain parser (`Role::parse`, `EventType::parse`…).
pub(crate) fn get_parsed<T, E: std::fmt::Display>(
    row: &Row<'_>,
    index: usize,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text).map_err(|e| bad_column(index, Type::Text, format!("bad value {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_at_microsecond_precision() {
        let at = DateTime::from_timestamp(1_767_225_600, 123_456_000).unwrap_or_default();
        assert_eq!(from_micros(micros(&at)), Some(at));
        assert_eq!(json_strings(&["a", "b\"c"]), r#"["a","b\"c"]"#);
    }
}
