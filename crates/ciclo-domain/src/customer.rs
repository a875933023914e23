//! Customer profiles: the standard fields, free-form traits and computed order stats.

use crate::contact::{Email, Phone};
use crate::ids::{CustomerId, WorkspaceId};
use crate::{FieldError, NaiveDate, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Order statistics kept on the profile as orders arrive. Money is in minor units (centavos).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStats {
    pub orders_count: i64,
    pub total_spent_minor: i64,
    pub first_order_at: Option<Timestamp>,
    pub last_order_at: Option<Timestamp>,
}

impl OrderStats {
    /// Average order value in minor units (0 with no orders).
    pub fn average_order_value_minor(&self) -> i64 {
        if self.orders_count == 0 {
            0
        } else {
            self.total_spent_minor / self.orders_count
        }
    }

    /// Adds one order placed at `at` for `amount_minor`.
    pub fn record_order(&mut self, amount_minor: i64, at: Timestamp) {
        self.orders_count += 1;
        self.total_spent_minor += amount_minor;
        self.first_order_at = Some(self.first_order_at.map_or(at, |f| f.min(at)));
        self.last_order_at = Some(self.last_order_at.map_or(at, |l| l.max(at)));
    }
}

/// One customer profile. A profile that was merged into another keeps its row (so a merge can
/// be undone) and points to the survivor through `merged_into`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: CustomerId,
    pub workspace_id: WorkspaceId,
    pub name: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub whatsapp: Option<Phone>,
    pub birthday: Option<NaiveDate>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub tags: Vec<String>,
    /// Free-form typed traits (any JSON value), as sent by `identify` or set by operators.
    pub traits: Map<String, Value>,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub stats: OrderStats,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub merged_into: Option<CustomerId>,
}

impl Customer {
    /// An empty profile first seen at `at`.
    pub fn new(id: CustomerId, workspace_id: WorkspaceId, at: Timestamp) -> Self {
        Customer {
            id,
            workspace_id,
            name: None,
            email: None,
            phone: None,
            whatsapp: None,
            birthday: None,
            locale: None,
            time_zone: None,
            city: None,
            state: None,
            country: None,
            tags: Vec::new(),
            traits: Map::new(),
            first_seen_at: at,
            last_seen_at: at,
            stats: OrderStats::default(),
            created_at: at,
            updated_at: at,
            merged_into: None,
        }
    }

    /// Widens first/last seen to include `at`.
    pub fn seen_at(&mut self, at: Timestamp) {
        self.first_seen_at = self.first_seen_at.min(at);
        self.last_seen_at = self.last_seen_at.max(at);
    }

    /// Applies a validated patch. Each `Some` replaces the field (`Some(None)` clears it); traits
    /// are merged key by key, a JSON null removing the key; tags are replaced when given.
    pub fn apply(&mut self, patch: &CustomerPatch) {
        fn set<T: Clone>(slot: &mut Option<T>, value: &Option<Option<T>>) {
            if let Some(v) = value {
                *slot = v.clone();
            }
        }
        set(&mut self.name, &patch.name);
        set(&mut self.email, &patch.email);
        set(&mut self.phone, &patch.phone);
        set(&mut self.whatsapp, &patch.whatsapp);
        set(&mut self.birthday, &patch.birthday);
        set(&mut self.locale, &patch.locale);
        set(&mut self.time_zone, &patch.time_zone);
        set(&mut self.city, &patch.city);
        set(&mut self.state, &patch.state);
        set(&mut self.country, &patch.country);
        if let Some(tags) = &patch.tags {
            self.tags = normalise_tags(tags);
        }
        for (key, value) in &patch.traits {
            if value.is_null() {
                self.traits.remove(key);
            } else {
                self.traits.insert(key.clone(), value.clone());
            }
        }
    }

    /// Fills only the fields that are empty here from `patch` (used when data arrives from a
    /// lower-trust source, such as an import of a person already known, or a merge).
    pub fn fill_gaps(&mut self, patch: &CustomerPatch) -> CustomerPatch {
        let mut filled = CustomerPatch::default();
        macro_rules! fill {
            ($f:ident) => {
                if self.$f.is_none() {
                    if let Some(Some(v)) = &patch.$f {
                        self.$f = Some(v.clone());
                        filled.$f = Some(Some(v.clone()));
                    }
                }
            };
        }
        fill!(name);
        fill!(email);
        fill!(phone);
        fill!(whatsapp);
        fill!(birthday);
        fill!(locale);
        fill!(time_zone);
        fill!(city);
        fill!(state);
        fill!(country);
        if let Some(tags) = &patch.tags {
            for tag in normalise_tags(tags) {
                if !self.tags.contains(&tag) {
                    self.tags.push(tag.clone());
                    filled.tags.get_or_insert_with(Vec::new).push(tag);
                }
            }
        }
        for (key, value) in &patch.traits {
            if !value.is_null() && !self.traits.contains_key(key) {
                self.traits.insert(key.clone(), value.clone());
                filled.traits.insert(key.clone(), value.clone());
            }
        }
        filled
    }

    /// Undoes a [`Customer::fill_gaps`]: clears each field that still holds the value filled in.
    pub fn unfill(&mut self, filled: &CustomerPatch) {
        macro_rules! unfill {
            ($f:ident) => {
                if let Some(Some(v)) = &filled.$f {
                    if self.$f.as_ref() == Some(v) {
                        self.$f = None;
                    }
                }
            };
        }
        unfill!(name);
        unfill!(email);
        unfill!(phone);
        unfill!(whatsapp);
        unfill!(birthday);
        unfill!(locale);
        unfill!(time_zone);
        unfill!(city);
        unfill!(state);
        unfill!(country);
        if let Some(tags) = &filled.tags {
            self.tags.retain(|t| !tags.contains(t));
        }
        for (key, value) in &filled.traits {
            if self.traits.get(key) == Some(value) {
                self.traits.remove(key);
            }
        }
    }

    /// The profile as a patch that would recreate its standard fields (for fill_gaps on merge).
    pub fn as_patch(&self) -> CustomerPatch {
        CustomerPatch {
            name: Some(self.name.clone()),
            email: Some(self.email.clone()),
            phone: Some(self.phone.clone()),
            whatsapp: Some(self.whatsapp.clone()),
            birthday: Some(self.birthday),
            locale: Some(self.locale.clone()),
            time_zone: Some(self.time_zone.clone()),
            city: Some(self.city.clone()),
            state: Some(self.state.clone()),
            country: Some(self.country.clone()),
            tags: Some(self.tags.clone()),
            traits: self.traits.clone(),
        }
    }
}

fn normalise_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// A validated change to a profile. The outer `Option` says whether the field is touched, the
/// inner one whether it is set or cleared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerPatch {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub name: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub email: Option<Option<Email>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub phone: Option<Option<Phone>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub whatsapp: Option<Option<Phone>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub birthday: Option<Option<NaiveDate>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub locale: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub time_zone: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub city: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub state: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub country: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub traits: Map<String, Value>,
}

/// Serde for `Option<Option<T>>` that keeps "absent" (untouched) apart from `null` (cleared):
/// an absent key is skipped on output and defaults to `None` on input; `null` is `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Names of the standard fields, as used in JSON, CSV column mapping and errors.
pub const STANDARD_FIELDS: &[&str] = &[
    "name",
    "email",
    "phone",
    "whatsapp",
    "birthday",
    "locale",
    "time_zone",
    "city",
    "state",
    "country",
    "tags",
];

impl CustomerPatch {
    /// Builds a patch from a JSON object (API body, `identify` traits, a mapped CSV row).
    ///
    /// Standard fields are validated (`email`, `phone`, `whatsapp`, `birthday`, `time_zone`,
    /// `locale`, `country`); a JSON null clears a field. With `traits_from_rest`, every other key
    /// becomes a trait (Segment `identify`); otherwise only the `traits` object does, and
    /// unknown keys are an error. `firstName`/`lastName` (Segment reserved traits) build `name`.
    /// All errors are returned, not just the first.
    pub fn from_json(
        object: &Map<String, Value>,
        default_region: &str,
        traits_from_rest: bool,
    ) -> Result<CustomerPatch, Vec<FieldError>> {
        let mut patch = CustomerPatch::default();
        let mut errors = Vec::new();
        let text =
            |key: &str, value: &Value, errors: &mut Vec<FieldError>| -> Option<Option<String>> {
                match value {
                    Value::Null => Some(None),
                    Value::String(s) if s.trim().is_empty() => Some(None),
                    Value::String(s) => Some(Some(s.trim().to_string())),
                    Value::Number(n) => Some(Some(n.to_string())),
                    _ => {
                        errors.push(FieldError::new("invalid_type", key, "expected a string"));
                        None
                    }
                }
            };
        let mut first_name: Option<String> = None;
        let mut last_name: Option<String> = None;
        for (key, value) in object {
            match key.as_str() {
                "name" => patch.name = text(key, value, &mut errors),
                "firstName" | "first_name" => first_name = text(key, value, &mut errors).flatten(),
                "lastName" | "last_name" => last_name = text(key, value, &mut errors).flatten(),
                "email" => {
                    if let Some(v) = text(key, value, &mut errors) {
                        match v.map(|s| Email::parse(&s)).transpose() {
                            Ok(e) => patch.email = Some(e),
                            Err(e) => errors.push(e),
                        }
                    }
                }
                "phone" | "whatsapp" => {
                    if let Some(v) = text(key, value, &mut errors) {
                        match v.map(|s| Phone::parse(&s, default_region)).transpose() {
                            Ok(p) if key == "phone" => patch.phone = Some(p),
                            Ok(p) => patch.whatsapp = Some(p),
                            Err(e) => errors.push(FieldError {
                                field: key.clone(),
                                ..e
                            }),
                        }
                    }
                }
                "birthday" => {
                    if let Some(v) = text(key, value, &mut errors) {
                        match v.map(|s| parse_date(&s)).transpose() {
                            Ok(d) => patch.birthday = Some(d),
                            Err(reason) => {
                                errors.push(FieldError::new("invalid_date", key, reason))
                            }
                        }
                    }
                }
                "time_zone" | "timezone" => {
                    if let Some(v) = text(key, value, &mut errors) {
                        match &v {
                            Some(tz) if !is_time_zone(tz) => errors.push(FieldError::new(
                                "invalid_time_zone",
                                "time_zone",
                                format!("unknown IANA time zone {tz:?}"),
                            )),
                            _ => patch.time_zone = Some(v),
                        }
                    }
                }
                "locale" => {
                    if let Some(v) = text(key, value, &mut errors) {
                        match &v {
                            Some(l) if !is_locale(l) => errors.push(FieldError::new(
                                "invalid_locale",
                                key,
                                "expected a language tag such as pt-BR",
                            )),
                            _ => patch.locale = Some(v),
                        }
                    }
                }
                "city" => patch.city = text(key, value, &mut errors),
                "state" => patch.state = text(key, value, &mut errors),
                "country" => {
                    if let Some(v) = text(key, value, &mut errors) {
                        patch.country = Some(v.map(|c| c.to_uppercase()));
                    }
                }
                "address" if traits_from_rest => {
                    // Segment reserved trait: { city, state, country, ... }
                    if let Value::Object(address) = value {
                        for (k, slot) in [("city", &mut patch.city), ("state", &mut patch.state)] {
                            if let Some(Value::String(s)) = address.get(k) {
                                *slot = Some(Some(s.trim().to_string()));
                            }
                        }
                        if let Some(Value::String(s)) = address.get("country") {
                            patch.country = Some(Some(s.trim().to_uppercase()));
                        }
                    }
                    patch.traits.insert(key.clone(), value.clone());
                }
                "tags" => match value {
                    Value::Array(items) => {
                        let mut tags = Vec::new();
                        for item in items {
                            match item {
                                Value::String(s) => tags.push(s.clone()),
                                _ => errors.push(FieldError::new(
                                    "invalid_type",
                                    "tags",
                                    "tags must be strings",
                                )),
                            }
                        }
                        patch.tags = Some(tags);
                    }
                    Value::String(s) => {
                        patch.tags = Some(s.split([',', ';', '|']).map(str::to_string).collect());
                    }
                    Value::Null => patch.tags = Some(Vec::new()),
                    _ => errors.push(FieldError::new(
                        "invalid_type",
                        "tags",
                        "expected a list of strings",
                    )),
                },
                "traits" if !traits_from_rest => match value {
                    Value::Object(traits) => {
                        for (k, v) in traits {
                            patch.traits.insert(k.clone(), v.clone());
                        }
                    }
                    Value::Null => {}
                    _ => errors.push(FieldError::new(
                        "invalid_type",
                        "traits",
                        "expected an object",
                    )),
                },
                _ if traits_from_rest => {
                    patch.traits.insert(key.clone(), value.clone());
                }
                _ => errors.push(FieldError::new(
                    "unknown_field",
                    key,
                    "not a customer field",
                )),
            }
        }
        if patch.name.is_none() && (first_name.is_some() || last_name.is_some()) {
            let joined = [first_name, last_name]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            patch.name = Some(Some(joined));
        }
        if errors.is_empty() {
            Ok(patch)
        } else {
            Err(errors)
        }
    }
}

/// Accepts ISO dates (`1990-05-17`), Brazilian dates (`17/05/1990`) and ISO timestamps.
pub fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    let raw = raw.trim();
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(d);
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%d/%m/%Y") {
        return Ok(d);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.date_naive());
    }
    Err(format!(
        "{raw:?} is not a date (expected YYYY-MM-DD or DD/MM/YYYY)"
    ))
}

/// Whether `raw` names an IANA time zone (`America/Sao_Paulo`).
pub fn is_time_zone(raw: &str) -> bool {
    raw.parse::<chrono_tz::Tz>().is_ok()
}

fn is_locale(raw: &str) -> bool {
    let mut parts = raw.split(['-', '_']);
    let lang = parts.next().unwrap_or("");
    (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn patch_collects_every_error_with_its_field() {
        let errors = CustomerPatch::from_json(
            &obj(
                json!({"email": "nope", "phone": "12", "birthday": "31/02/1990", "colour": "red"}),
            ),
            "BR",
            false,
        )
        .unwrap_err();
        let fields: Vec<_> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert!(fields.contains(&("email", "invalid_email")));
        assert!(fields.contains(&("phone", "invalid_phone")));
        assert!(fields.contains(&("birthday", "invalid_date")));
        assert!(fields.contains(&("colour", "unknown_field")));
    }

    #[test]
    fn identify_traits_fill_standard_fields_and_keep_the_rest() {
        let patch = CustomerPatch::from_json(
            &obj(json!({"firstName": "Ana", "lastName": "Souza", "email": "ANA@x.com.br", "plan": "gold",
                        "address": {"city": "Recife", "state": "PE", "country": "br"}})),
            "BR",
            true,
        )
        .unwrap();
        assert_eq!(patch.name, Some(Some("Ana Souza".into())));
        assert_eq!(patch.city, Some(Some("Recife".into())));
        assert_eq!(patch.country, Some(Some("BR".into())));
        assert_eq!(patch.traits["plan"], json!("gold"));
    }

    #[test]
    fn fill_gaps_then_unfill_restores_the_profile() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut winner = Customer::new(CustomerId::generate(1, 1), WorkspaceId::generate(1, 1), at);
        winner.name = Some("Ana".into());
        let before = winner.clone();
        let mut loser = Customer::new(CustomerId::generate(2, 2), WorkspaceId::generate(1, 1), at);
        loser.name = Some("Ana S.".into());
        loser.city = Some("Recife".into());
        loser.traits.insert("plan".into(), json!("gold"));
        let filled = winner.fill_gaps(&loser.as_patch());
        assert_eq!(winner.name.as_deref(), Some("Ana"));
        assert_eq!(winner.city.as_deref(), Some("Recife"));
        winner.unfill(&filled);
        assert_eq!(winner, before);
    }

    #[test]
    fn patches_keep_cleared_apart_from_untouched_through_json() {
        let patch = CustomerPatch {
            city: Some(None),
            name: Some(Some("Ana".into())),
            ..CustomerPatch::default()
        };
        let json = serde_json::to_string(&patch).unwrap();
        assert_eq!(json, r#"{"name":"Ana","city":null}"#);
        let back: CustomerPatch = serde_json::from_str(&json).unwrap();
        assert_eq!(back, patch);
    }

    #[test]
    fn order_stats_track_counts_and_bounds() {
        let mut s = OrderStats::default();
        let t1 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t0 = chrono::DateTime::from_timestamp(1_600_000_000, 0).unwrap();
        s.record_order(10_000, t1);
        s.record_order(5_000, t0);
        assert_eq!(s.orders_count, 2);
        assert_eq!(s.average_order_value_minor(), 7_500);
        assert_eq!(s.first_order_at, Some(t0));
        assert_eq!(s.last_order_at, Some(t1));
    }
}
