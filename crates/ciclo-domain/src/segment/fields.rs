//! The attributes a segment may test, with their types: profile fields, order stats, computed
//! attributes (filled by analytics and lifecycle rules and handed to the evaluator in the
//! snapshot), and the open namespaces `traits.…` and `computed.…`.
//!
//! One table drives validation, evaluation and [`crate::segment::depends_on`], so a field
//! added here is known everywhere at once.

/// The type of an attribute, which decides the tests it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    Text,
    /// A list of text (tags): `contains`, `in`, `is set`.
    TextList,
    Number,
    /// A calendar date without time (birthday).
    Date,
    /// A point in time.
    Instant,
    /// Any JSON value (traits, `computed.…`): every test is accepted, the value decides at
    /// evaluation time.
    Dynamic,
}

impl FieldType {
    /// How the type is named in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::TextList => "a list of text",
            FieldType::Number => "a number",
            FieldType::Date => "a date",
            FieldType::Instant => "a date and time",
            FieldType::Dynamic => "any value",
        }
    }
}

/// Where the evaluator reads an attribute from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Name,
    Email,
    Phone,
    Whatsapp,
    City,
    State,
    Country,
    Locale,
    TimeZone,
    Tags,
    Birthday,
    FirstSeenAt,
    LastSeenAt,
    CreatedAt,
    OrdersCount,
    /// In major units (reais), as marketers think of money.
    TotalSpent,
    AverageOrderValue,
    FirstOrderAt,
    LastOrderAt,
}

/// A resolved attribute name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribute<'a> {
    Field(Field),
    /// A well-known computed attribute, read from the snapshot under this (canonical) name.
    Computed(&'static str),
    /// `traits.a.b`: the path inside the traits object.
    Trait(&'a str),
    /// `computed.x`: any other computed attribute, by name.
    OtherComputed(&'a str),
}

/// The profile fields and order stats: name as written, where it lives, its type.
pub const FIELDS: &[(&str, Field, FieldType)] = &[
    ("name", Field::Name, FieldType::Text),
    ("email", Field::Email, FieldType::Text),
    ("phone", Field::Phone, FieldType::Text),
    ("whatsapp", Field::Whatsapp, FieldType::Text),
    ("city", Field::City, FieldType::Text),
    ("state", Field::State, FieldType::Text),
    ("country", Field::Country, FieldType::Text),
    ("locale", Field::Locale, FieldType::Text),
    ("time_zone", Field::TimeZone, FieldType::Text),
    ("tags", Field::Tags, FieldType::TextList),
    ("birthday", Field::Birthday, FieldType::Date),
    ("first_seen_at", Field::FirstSeenAt, FieldType::Instant),
    ("last_seen_at", Field::LastSeenAt, FieldType::Instant),
    ("created_at", Field::CreatedAt, FieldType::Instant),
    ("orders_count", Field::OrdersCount, FieldType::Number),
    ("total_spent", Field::TotalSpent, FieldType::Number),
    (
        "average_order_value",
        Field::AverageOrderValue,
        FieldType::Number,
    ),
    ("first_order_at", Field::FirstOrderAt, FieldType::Instant),
    ("last_order_at", Field::LastOrderAt, FieldType::Instant),
];

/// Computed attributes every workspace has, with their types. The snapshot carries them in
/// [`crate::segment::CustomerSnapshot::computed`] under these names.
pub const COMPUTED: &[(&str, FieldType)] = &[
    ("lifecycle_stage", FieldType::Text),
    ("rfm_group", FieldType::Text),
    ("predicted_clv", FieldType::Number),
    ("p_alive", FieldType::Number),
];

/// Other spellings accepted for an attribute (`lifecycle is retention`).
pub const ALIASES: &[(&str, &str)] = &[("lifecycle", "lifecycle_stage"), ("clv", "predicted_clv")];

/// Prefix of the trait namespace.
pub const TRAITS_PREFIX: &str = "traits.";
/// Prefix of the open computed namespace.
pub const COMPUTED_PREFIX: &str = "computed.";

/// Resolves an attribute name; `None` when nothing by that name exists.
pub fn resolve(name: &str) -> Option<(Attribute<'_>, FieldType)> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, canonical)| canonical);
    if let Some((_, field, ty)) = FIELDS.iter().find(|(n, _, _)| *n == name) {
        return Some((Attribute::Field(*field), *ty));
    }
    if let Some((n, ty)) = COMPUTED.iter().find(|(n, _)| *n == name) {
        return Some((Attribute::Computed(n), *ty));
    }
    if let Some(path) = name.strip_prefix(TRAITS_PREFIX) {
        return valid_path(path).then_some((Attribute::Trait(path), FieldType::Dynamic));
    }
    if let Some(rest) = name.strip_prefix(COMPUTED_PREFIX) {
        if let Some((known, ty)) = COMPUTED.iter().find(|(n, _)| *n == rest) {
            return Some((Attribute::Computed(known), *ty));
        }
        return valid_path(rest).then_some((Attribute::OtherComputed(rest), FieldType::Dynamic));
    }
    None
}

/// The canonical spelling of an attribute (aliases resolved, `computed.rfm_group` →
/// `rfm_group`), or the name unchanged when it is unknown.
pub fn canonical(name: &str) -> String {
    match resolve(name) {
        Some((Attribute::Field(field), _)) => FIELDS
            .iter()
            .find(|(_, f, _)| *f == field)
            .map_or(name, |(n, _, _)| n)
            .to_string(),
        Some((Attribute::Computed(known), _)) => known.to_string(),
        _ => name.to_string(),
    }
}

/// Whether `name` is the birthday field, whose anniversary tests read without the word
/// `anniversary` in the text syntax (`birthday this month`).
pub fn is_birthday(name: &str) -> bool {
    matches!(resolve(name), Some((Attribute::Field(Field::Birthday), _)))
}

/// A dotted path with no empty segment.
fn valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('.').all(|segment| !segment.is_empty())
}

/// All names a marketer can write, for suggestions in errors.
pub fn known_names() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .map(|(n, _, _)| *n)
        .chain(COMPUTED.iter().map(|(n, _)| *n))
}

/// The known name closest to `name` when it is probably a typo (at most two edits away).
pub fn suggestion(name: &str) -> Option<&'static str> {
    known_names()
        .map(|known| (edit_distance(name, known), known))
        .filter(|(distance, known)| *distance <= 2.min(known.len() / 3 + 1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_with_aliases_and_namespaces() {
        assert_eq!(
            resolve("city"),
            Some((Attribute::Field(Field::City), FieldType::Text))
        );
        assert_eq!(
            resolve("lifecycle"),
            Some((Attribute::Computed("lifecycle_stage"), FieldType::Text))
        );
        assert_eq!(
            resolve("computed.p_alive"),
            Some((Attribute::Computed("p_alive"), FieldType::Number))
        );
        assert_eq!(
            resolve("computed.churn_risk"),
            Some((Attribute::OtherComputed("churn_risk"), FieldType::Dynamic))
        );
        assert_eq!(
            resolve("traits.address.city"),
            Some((Attribute::Trait("address.city"), FieldType::Dynamic))
        );
        for unknown in [
            "cidade",
            "traits.",
            "traits..x",
            "computed.",
            "",
            "Traits.plan",
            "updated",
        ] {
            assert_eq!(resolve(unknown), None, "{unknown}");
        }
        assert_eq!(canonical("lifecycle"), "lifecycle_stage");
        assert_eq!(canonical("computed.rfm_group"), "rfm_group");
        assert_eq!(canonical("traits.plan"), "traits.plan");
        assert!(is_birthday("birthday"));
        assert!(!is_birthday("traits.birthday"));
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(suggestion("citty"), Some("city"));
        assert_eq!(suggestion("order_count"), Some("orders_count"));
        assert_eq!(suggestion("totalspent"), Some("total_spent"));
        assert_eq!(suggestion("xyz"), None);
    }
}
