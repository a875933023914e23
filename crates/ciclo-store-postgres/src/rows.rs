//! Decoding rows into domain values, and the encodings of values that have no column type of
//! their own (identity kinds, roles, event types, customer patches).
//!
//! Nothing here panics on what the database returns: a value this version cannot read becomes
//! a [`StoreError::Backend`] naming the column.

use crate::error::corrupt;
use ciclo_domain::contact::{Email, Phone};
use ciclo_domain::customer::CustomerPatch;
use ciclo_domain::event::EventType;
use ciclo_domain::identity::{IdentityKey, IdentityKind};
use ciclo_domain::operator::Role;
use ciclo_store::{StoreError, StoreResult};
use postgres::types::FromSql;
use postgres::Row;
use serde::de::value::{Error as ValueError, StringDeserializer};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Reads column `column` of `row`.
pub(crate) fn get<'r, T: FromSql<'r>>(row: &'r Row, column: &str) -> StoreResult<T> {
    row.try_get(column).map_err(|e| corrupt(column, e))
}

/// Wraps a stored id. Ids are written only by this adapter from typed ids, so they are trusted.
pub(crate) fn id<T>(row: &Row, column: &str, wrap: fn(String) -> T) -> StoreResult<T> {
    Ok(wrap(get::<String>(row, column)?))
}

pub(crate) fn opt_id<T>(row: &Row, column: &str, wrap: fn(String) -> T) -> StoreResult<Option<T>> {
    Ok(get::<Option<String>>(row, column)?.map(wrap))
}

/// An email read back from storage. It was validated when written, so it is wrapped as is
/// rather than parsed again (the domain offers no trusted constructor, but its serde form is
/// the bare string).
pub(crate) fn email(row: &Row, column: &str) -> StoreResult<Option<Email>> {
    get::<Option<String>>(row, column)?
        .map(|raw| {
            Email::deserialize(StringDeserializer::<ValueError>::new(raw))
                .map_err(|e| corrupt(column, e))
        })
        .transpose()
}

/// A phone read back from storage (E.164, validated when written).
pub(crate) fn phone(row: &Row, column: &str) -> StoreResult<Option<Phone>> {
    get::<Option<String>>(row, column)?
        .map(|raw| {
            Phone::deserialize(StringDeserializer::<ValueError>::new(raw))
                .map_err(|e| corrupt(column, e))
        })
        .transpose()
}

pub(crate) fn role(row: &Row, column: &str) -> StoreResult<Role> {
    let raw: String = get(row, column)?;
    Role::parse(&raw).map_err(|e| corrupt(column, e))
}

pub(crate) fn event_type(row: &Row, column: &str) -> StoreResult<EventType> {
    let raw: String = get(row, column)?;
    EventType::parse(&raw).ok_or_else(|| corrupt(column, format!("unknown event type {raw:?}")))
}

pub(crate) fn identity_key(
    row: &Row,
    kind_column: &str,
    value_column: &str,
) -> StoreResult<IdentityKey> {
    let kind: String = get(row, kind_column)?;
    let kind = IdentityKind::parse(&kind).map_err(|e| corrupt(kind_column, e))?;
    Ok(IdentityKey {
        kind,
        value: get(row, value_column)?,
    })
}

/// An identity key stored in two nullable columns (both null: no key).
pub(crate) fn opt_identity_key(
    row: &Row,
    kind_column: &str,
    value_column: &str,
) -> StoreResult<Option<IdentityKey>> {
    let kind: Option<String> = get(row, kind_column)?;
    let value: Option<String> = get(row, value_column)?;
    match (kind, value) {
        (Some(kind), Some(value)) => {
            let kind = IdentityKind::parse(&kind).map_err(|e| corrupt(kind_column, e))?;
            Ok(Some(IdentityKey { kind, value }))
        }
        _ => Ok(None),
    }
}

/// A jsonb column that must hold an object.
pub(crate) fn object(row: &Row, column: &str) -> StoreResult<Map<String, Value>> {
    match get::<Value>(row, column)? {
        Value::Object(map) => Ok(map),
        other => Err(corrupt(
            column,
            format!("expected a JSON object, found {other}"),
        )),
    }
}

/// Encodes a patch so that it decodes to the same patch. Serde's derived form cannot: both
/// "untouched" (`None`) and "cleared" (`Some(None)`) serialize to `null`. Here an untouched field
/// is absent, a cleared one is `null`, a set one is its value; `traits` is always present.
pub(crate) fn encode_patch(patch: &CustomerPatch) -> StoreResult<Value> {
    fn put<T: serde::Serialize>(
        out: &mut Map<String, Value>,
        key: &str,
        field: &Option<Option<T>>,
    ) -> StoreResult<()> {
        if let Some(value) = field {
            let json = serde_json::to_value(value)
                .map_err(|e| StoreError::Backend(format!("encoding {key}: {e}")))?;
            out.insert(key.to_string(), json);
        }
        Ok(())
    }
    let mut out = Map::new();
    put(&mut out, "name", &patch.name)?;
    put(&mut out, "email", &patch.email)?;
    put(&mut out, "phone", &patch.phone)?;
    put(&mut out, "whatsapp", &patch.whatsapp)?;
    put(&mut out, "birthday", &patch.birthday)?;
    put(&mut out, "locale", &patch.locale)?;
    put(&mut out, "time_zone", &patch.time_zone)?;
    put(&mut out, "city", &patch.city)?;
    put(&mut out, "state", &patch.state)?;
    put(&mut out, "country", &patch.country)?;
    if let Some(tags) = &patch.tags {
        out.insert(
            "tags".into(),
            Value::Array(tags.iter().cloned().map(Value::String).collect()),
        );
    }
    out.insert("traits".into(), Value::Object(patch.traits.clone()));
    Ok(Value::Object(out))
}

/// The inverse of [`encode_patch`].
pub(crate) fn decode_patch(value: Value, column: &str) -> StoreResult<CustomerPatch> {
    fn take<T: serde::de::DeserializeOwned>(
        map: &mut Map<String, Value>,
        key: &str,
        column: &str,
    ) -> StoreResult<Option<Option<T>>> {
        match map.remove(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => serde_json::from_value(v)
                .map(|v| Some(Some(v)))
                .map_err(|e| corrupt(column, format!("{key}: {e}"))),
        }
    }
    let Value::Object(mut map) = value else {
        return Err(corrupt(column, "expected a JSON object"));
    };
    let mut patch = CustomerPatch {
        name: take(&mut map, "name", column)?,
        email: take(&mut map, "email", column)?,
        phone: take(&mut map, "phone", column)?,
        whatsapp: take(&mut map, "whatsapp", column)?,
        birthday: take(&mut map, "birthday", column)?,
        locale: take(&mut map, "locale", column)?,
        time_zone: take(&mut map, "time_zone", column)?,
        city: take(&mut map, "city", column)?,
        state: take(&mut map, "state", column)?,
        country: take(&mut map, "country", column)?,
        ..CustomerPatch::default()
    };
    if let Some(tags) = map.remove("tags") {
        patch.tags =
            Some(serde_json::from_value(tags).map_err(|e| corrupt(column, format!("tags: {e}")))?);
    }
    match map.remove("traits") {
        Some(Value::Object(traits)) => patch.traits = traits,
        None | Some(Value::Null) => {}
        Some(_) => return Err(corrupt(column, "traits: expected an object")),
    }
    Ok(patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patches_round_trip_including_cleared_fields() {
        let mut patch = CustomerPatch {
            name: Some(Some("Ana".into())),
            email: Some(Some(Email::parse("ana@x.com.br").unwrap())),
            phone: Some(None),
            birthday: Some(Some(chrono::NaiveDate::from_ymd_opt(1990, 5, 17).unwrap())),
            city: None,
            tags: Some(vec!["vip".into()]),
            ..CustomerPatch::default()
        };
        patch.traits.insert("plan".into(), json!("gold"));
        let encoded = encode_patch(&patch).unwrap();
        assert_eq!(encoded["phone"], Value::Null);
        assert!(encoded.get("city").is_none());
        assert_eq!(decode_patch(encoded, "filled").unwrap(), patch);
        assert_eq!(
            decode_patch(json!({}), "filled").unwrap(),
            CustomerPatch::default()
        );
        assert!(decode_patch(json!([]), "filled").is_err());
    }
}
