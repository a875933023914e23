//! Decides whether one customer is in a segment, from a snapshot of what the conditions need.
//!
//! The evaluator never counts events itself: the store counts each
//! [`EventRequirement`](super::EventRequirement) (one indexed query per requirement per batch of
//! customers) and hands the counts in the snapshot. What is left here is cheap work on one
//! profile, so a batch of a million customers costs a million small function calls.
//!
//! Semantics worth knowing:
//! * text comparisons ignore case and Portuguese accents (`"sao paulo"` finds `São Paulo`);
//! * a list (tags, a JSON array trait) passes a test when one of its items does, and
//!   `contains` on a list means "has the item";
//! * negative tests (`!=`, `not in`, `does not contain`, `is not set`) are exactly the negation
//!   of the positive ones, so they hold for customers without the value;
//! * a number written as text in a trait (`"42"`) compares as the number;
//! * missing event counts read as zero.

use super::ast::{DateValue, EventCondition, Expr, Literal, PropertyFilter, Test};
use super::fields::{self, Attribute, Field};
use super::lexer::{fold, folded_chars};
use super::requirements::EventRequirement;
use super::time::{
    anniversary_in, days_until_anniversary, local_date, lower_bound, shift, start_of_day,
    upper_bound, Direction,
};
use crate::customer::Customer;
use crate::event::Event;
use crate::Timestamp;
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use serde_json::{Map, Value};

/// Everything the evaluator needs about one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSnapshot {
    pub customer: Customer,
    /// Computed attributes by name: `lifecycle_stage`, `rfm_group`, `predicted_clv`,
    /// `p_alive` and any other the analytics jobs produce (read as `computed.<name>`).
    pub computed: Map<String, Value>,
    /// How many events meet each requirement the segment has.
    pub event_counts: EventCounts,
    /// The workspace's calendar, for "today", "this month" and dates written as days.
    pub time_zone: Tz,
}

impl CustomerSnapshot {
    /// A snapshot with no computed attributes and no event counts.
    pub fn new(customer: Customer, time_zone: Tz) -> CustomerSnapshot {
        CustomerSnapshot {
            customer,
            computed: Map::new(),
            event_counts: EventCounts::default(),
            time_zone,
        }
    }

    pub fn with_computed(mut self, name: &str, value: Value) -> CustomerSnapshot {
        self.computed.insert(name.to_string(), value);
        self
    }

    pub fn with_count(mut self, requirement: EventRequirement, count: u64) -> CustomerSnapshot {
        self.event_counts.set(requirement, count);
        self
    }
}

/// Event counts keyed by requirement. A segment has a handful of requirements, so a short list
/// searched in place beats hashing (and lets the evaluator look a condition up without building
/// a key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventCounts {
    entries: Vec<(EventRequirement, u64)>,
}

impl EventCounts {
    /// Sets the count of a requirement.
    pub fn set(&mut self, requirement: EventRequirement, count: u64) {
        match self.entries.iter_mut().find(|(r, _)| *r == requirement) {
            Some((_, slot)) => *slot = count,
            None => self.entries.push((requirement, count)),
        }
    }

    /// Adds one event to a requirement's count (real-time updates of ever-windows).
    pub fn increment(&mut self, requirement: &EventRequirement) {
        match self.entries.iter_mut().find(|(r, _)| r == requirement) {
            Some((_, slot)) => *slot += 1,
            None => self.entries.push((requirement.clone(), 1)),
        }
    }

    pub fn get(&self, requirement: &EventRequirement) -> Option<u64> {
        self.entries
            .iter()
            .find(|(r, _)| r == requirement)
            .map(|(_, n)| *n)
    }

    /// The count for the requirement of an event condition.
    pub fn for_condition(&self, condition: &EventCondition) -> Option<u64> {
        self.entries
            .iter()
            .find(|(r, _)| r.is_for(condition))
            .map(|(_, n)| *n)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&EventRequirement, u64)> {
        self.entries.iter().map(|(r, n)| (r, *n))
    }
}

/// Whether the customer in `snapshot` is in the segment `expr` at `now`. `segments` answers
/// membership of other segments (by the reference written in the AST).
pub fn matches(
    expr: &Expr,
    snapshot: &CustomerSnapshot,
    now: Timestamp,
    segments: &dyn Fn(&str) -> bool,
) -> bool {
    let context = Context {
        now,
        tz: snapshot.time_zone,
    };
    evaluate(expr, snapshot, &context, segments)
}

fn evaluate(
    expr: &Expr,
    snapshot: &CustomerSnapshot,
    cx: &Context,
    segments: &dyn Fn(&str) -> bool,
) -> bool {
    match expr {
        Expr::And { all } => all.iter().all(|e| evaluate(e, snapshot, cx, segments)),
        Expr::Or { any } => any.iter().any(|e| evaluate(e, snapshot, cx, segments)),
        Expr::Not { expr } => !evaluate(expr, snapshot, cx, segments),
        Expr::Attribute(condition) => holds(
            &condition.test,
            attribute_value(&condition.attribute, snapshot),
            cx,
        ),
        Expr::Event(condition) => condition
            .count
            .holds(snapshot.event_counts.for_condition(condition).unwrap_or(0)),
        Expr::Segment(condition) => segments(&condition.segment),
    }
}

impl PropertyFilter {
    /// Whether an event's properties pass this filter.
    pub fn matches(&self, properties: &Map<String, Value>, now: Timestamp, tz: Tz) -> bool {
        holds(
            &self.test,
            json_path(properties, &self.property),
            &Context { now, tz },
        )
    }
}

impl EventRequirement {
    /// Whether one event counts towards this requirement at `now` (name, time window and
    /// property filters). Real-time ingestion uses it to update counts without a query; a store
    /// that cannot express a filter in its query language can fetch by name and window through
    /// its index and finish with this.
    pub fn matches_event(&self, event: &Event, now: Timestamp, tz: Tz) -> bool {
        event.name.as_deref() == Some(self.event.as_str())
            && self.window.bounds(now, tz).contains(event.timestamp)
            && self
                .filters
                .iter()
                .all(|f| f.matches(&event.properties, now, tz))
    }
}

pub(super) struct Context {
    pub now: Timestamp,
    pub tz: Tz,
}

/// A value as the tests see it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
    Missing,
    Text(&'a str),
    Number(f64),
    Bool(bool),
    Date(NaiveDate),
    Instant(Timestamp),
    Tags(&'a [String]),
    /// A JSON array or object (scalars are normalised to the variants above).
    Json(&'a Value),
}

pub(super) fn json(value: Option<&Value>) -> Val<'_> {
    match value {
        None | Some(Value::Null) => Val::Missing,
        Some(Value::String(s)) => Val::Text(s),
        Some(Value::Number(n)) => n.as_f64().map_or(Val::Missing, Val::Number),
        Some(Value::Bool(b)) => Val::Bool(*b),
        Some(other) => Val::Json(other),
    }
}

/// A dotted path into a JSON object. A key that itself contains the dots wins, so a flat trait
/// named `address.city` is found as well as a nested one.
pub(super) fn json_path<'a>(object: &'a Map<String, Value>, path: &str) -> Val<'a> {
    if let Some(value) = object.get(path) {
        return json(Some(value));
    }
    let mut segments = path.split('.');
    let mut current = segments.next().and_then(|first| object.get(first));
    for segment in segments {
        current = current.and_then(|v| v.get(segment));
    }
    json(current)
}

fn text(value: Option<&str>) -> Val<'_> {
    value.map_or(Val::Missing, Val::Text)
}

fn instant(value: Option<Timestamp>) -> Val<'static> {
    value.map_or(Val::Missing, Val::Instant)
}

pub(super) fn attribute_value<'a>(name: &'a str, snapshot: &'a CustomerSnapshot) -> Val<'a> {
    let customer = &snapshot.customer;
    let stats = &customer.stats;
    let Some((attribute, _)) = fields::resolve(name) else {
        return Val::Missing;
    };
    match attribute {
        Attribute::Field(field) => match field {
            Field::Name => text(customer.name.as_deref()),
            Field::Email => text(customer.email.as_ref().map(|e| e.as_str())),
            Field::Phone => text(customer.phone.as_ref().map(|p| p.as_str())),
            Field::Whatsapp => text(customer.whatsapp.as_ref().map(|p| p.as_str())),
            Field::City => text(customer.city.as_deref()),
            Field::State => text(customer.state.as_deref()),
            Field::Country => text(customer.country.as_deref()),
            Field::Locale => text(customer.locale.as_deref()),
            Field::TimeZone => text(customer.time_zone.as_deref()),
            Field::Tags => Val::Tags(&customer.tags),
            Field::Birthday => customer.birthday.map_or(Val::Missing, Val::Date),
            Field::FirstSeenAt => Val::Instant(customer.first_seen_at),
            Field::LastSeenAt => Val::Instant(customer.last_seen_at),
            Field::CreatedAt => Val::Instant(customer.created_at),
            // Counts and money are exact in f64 far beyond any real customer's totals.
            Field::OrdersCount => Val::Number(stats.orders_count as f64),
            Field::TotalSpent => Val::Number(stats.total_spent_minor as f64 / 100.0),
            Field::AverageOrderValue => {
                Val::Number(stats.average_order_value_minor() as f64 / 100.0)
            }
            Field::FirstOrderAt => instant(stats.first_order_at),
            Field::LastOrderAt => instant(stats.last_order_at),
        },
        Attribute::Computed(name) => json(snapshot.computed.get(name)),
        Attribute::Trait(path) => json_path(&customer.traits, path),
        Attribute::OtherComputed(path) => json_path(&snapshot.computed, path),
    }
}

fn is_set(value: Val) -> bool {
    match value {
        Val::Missing => false,
        Val::Text(s) => !s.trim().is_empty(),
        Val::Tags(tags) => !tags.is_empty(),
        Val::Json(Value::Array(items)) => !items.is_empty(),
        Val::Json(Value::Object(fields)) => !fields.is_empty(),
        _ => true,
    }
}

/// Runs `test` on each item of a list, or on the value itself: a list passes when an item does.
fn any_item(value: Val, test: impl Fn(Val) -> bool) -> bool {
    match value {
        Val::Tags(tags) => tags.iter().any(|t| test(Val::Text(t))),
        Val::Json(Value::Array(items)) => items.iter().any(|item| test(json(Some(item)))),
        other => test(other),
    }
}

pub(super) fn holds(test: &Test, value: Val, cx: &Context) -> bool {
    match test {
        Test::IsSet => is_set(value),
        Test::IsNotSet => !is_set(value),
        Test::Eq { value: literal } => any_item(value, |v| equals(v, literal, cx)),
        Test::NotEq { value: literal } => !any_item(value, |v| equals(v, literal, cx)),
        Test::In { values } => any_item(value, |v| values.iter().any(|l| equals(v, l, cx))),
        Test::NotIn { values } => !any_item(value, |v| values.iter().any(|l| equals(v, l, cx))),
        Test::Contains { value: literal } => contains(value, literal, cx),
        Test::NotContains { value: literal } => !contains(value, literal, cx),
        Test::StartsWith { value: prefix } => any_item(
            value,
            |v| matches!(v, Val::Text(s) if fold(s).starts_with(&fold(prefix))),
        ),
        Test::Lt { value: n } => compare(value, n, |a, b| a < b),
        Test::Lte { value: n } => compare(value, n, |a, b| a <= b),
        Test::Gt { value: n } => compare(value, n, |a, b| a > b),
        Test::Gte { value: n } => compare(value, n, |a, b| a >= b),
        Test::Between { low, high } => match (low.as_f64(), high.as_f64()) {
            (Some(low), Some(high)) => {
                any_item(value, |v| number(v).is_some_and(|x| low <= x && x <= high))
            }
            _ => false,
        },
        _ => any_item(value, |v| when(v).is_some_and(|w| date_holds(test, w, cx))),
    }
}

fn contains(value: Val, literal: &Literal, cx: &Context) -> bool {
    match (value, literal) {
        (Val::Text(s), Literal::Text(part)) => fold(s).contains(&fold(part)),
        (Val::Tags(_) | Val::Json(Value::Array(_)), _) => {
            any_item(value, |v| equals(v, literal, cx))
        }
        _ => false,
    }
}

fn equals(value: Val, literal: &Literal, cx: &Context) -> bool {
    match (value, literal) {
        (Val::Text(a), Literal::Text(b)) => folded_chars(a).eq(folded_chars(b)),
        (Val::Text(a), Literal::Number(b)) => {
            parse_number(a).is_some_and(|a| Some(a) == b.as_f64())
        }
        (Val::Number(a), Literal::Number(b)) => Some(a) == b.as_f64(),
        (Val::Number(a), Literal::Text(b)) => parse_number(b) == Some(a),
        (Val::Bool(a), Literal::Bool(b)) => a == *b,
        (Val::Date(d), Literal::Text(b)) => match DateValue::parse(b) {
            Some(DateValue::Date(x)) => d == x,
            Some(DateValue::Instant(t)) => start_of_day(d, cx.tz) == t,
            None => false,
        },
        (Val::Instant(t), Literal::Text(b)) => match DateValue::parse(b) {
            // A day written for a date-time means "on that day".
            Some(DateValue::Date(x)) => local_date(t, cx.tz) == x,
            Some(DateValue::Instant(x)) => t == x,
            None => false,
        },
        _ => false,
    }
}

fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn number(value: Val) -> Option<f64> {
    match value {
        Val::Number(n) => Some(n),
        Val::Text(s) => parse_number(s),
        _ => None,
    }
}

fn compare(value: Val, literal: &serde_json::Number, op: fn(f64, f64) -> bool) -> bool {
    literal
        .as_f64()
        .is_some_and(|b| any_item(value, |v| number(v).is_some_and(|a| op(a, b))))
}

/// A date-ish value: a calendar day or an instant.
#[derive(Debug, Clone, Copy)]
enum When {
    Day(NaiveDate),
    At(Timestamp),
}

fn when(value: Val) -> Option<When> {
    match value {
        Val::Date(d) => Some(When::Day(d)),
        Val::Instant(t) => Some(When::At(t)),
        Val::Text(s) => match DateValue::parse(s)? {
            DateValue::Date(d) => Some(When::Day(d)),
            DateValue::Instant(t) => Some(When::At(t)),
        },
        _ => None,
    }
}

/// The instants that pass a date test, as one range `[low, high)` in microseconds, when the
/// test is a range on instants (everything but equality and anniversaries). A column of
/// instants is then tested with two comparisons per row instead of calendar arithmetic; it
/// agrees with [`date_holds`] on `When::At` for instants of whole microseconds (what the stores
/// keep), which the columnar tests check.
pub(super) fn instant_range(test: &Test, cx: &Context) -> Option<(i64, i64)> {
    let tz = cx.tz;
    // `t >= bound` for a whole-microsecond `t` is `t_us >= ceil(bound_us)`.
    let ceil = |t: Timestamp| {
        let floor = t.timestamp_micros();
        if t.timestamp_subsec_nanos().is_multiple_of(1_000) {
            floor
        } else {
            floor + 1
        }
    };
    let floor = |t: Timestamp| t.timestamp_micros();
    match test {
        Test::Before { date } => Some((i64::MIN, ceil(lower_bound(*date, tz)))),
        Test::After {
            date: date @ DateValue::Date(_),
        } => Some((ceil(upper_bound(*date, tz)), i64::MAX)),
        Test::After {
            date: DateValue::Instant(t),
        } => Some((floor(*t) + 1, i64::MAX)),
        Test::BetweenDates { from, to } => {
            Some((ceil(lower_bound(*from, tz)), ceil(upper_bound(*to, tz))))
        }
        Test::WithinLast { amount, unit } => {
            let boundary = shift(cx.now, *amount, *unit, tz, Direction::Back);
            Some((ceil(boundary), floor(cx.now) + 1))
        }
        Test::MoreThanAgo { amount, unit } => {
            let boundary = shift(cx.now, *amount, *unit, tz, Direction::Back);
            Some((i64::MIN, ceil(boundary)))
        }
        Test::InNext { amount, unit } => {
            let boundary = shift(cx.now, *amount, *unit, tz, Direction::Forward);
            Some((ceil(cx.now), floor(boundary) + 1))
        }
        _ => None,
    }
}

fn date_holds(test: &Test, value: When, cx: &Context) -> bool {
    let tz = cx.tz;
    let instant = match value {
        When::Day(d) => start_of_day(d, tz),
        When::At(t) => t,
    };
    let today = local_date(cx.now, tz);
    let day = match value {
        When::Day(d) => d,
        When::At(t) => local_date(t, tz),
    };
    match test {
        Test::Before { date } => instant < lower_bound(*date, tz),
        Test::After {
            date: date @ DateValue::Date(_),
        } => instant >= upper_bound(*date, tz),
        Test::After {
            date: DateValue::Instant(t),
        } => instant > *t,
        Test::BetweenDates { from, to } => {
            instant >= lower_bound(*from, tz) && instant < upper_bound(*to, tz)
        }
        // Calendar days compare as days; instants compare exactly.
        Test::WithinLast { amount, unit } => {
            let boundary = shift(cx.now, *amount, *unit, tz, Direction::Back);
            match value {
                When::Day(d) => local_date(boundary, tz) <= d && d <= today,
                When::At(t) => boundary <= t && t <= cx.now,
            }
        }
        Test::MoreThanAgo { amount, unit } => {
            let boundary = shift(cx.now, *amount, *unit, tz, Direction::Back);
            match value {
                When::Day(d) => d < local_date(boundary, tz),
                When::At(t) => t < boundary,
            }
        }
        Test::InNext { amount, unit } => {
            let boundary = shift(cx.now, *amount, *unit, tz, Direction::Forward);
            match value {
                When::Day(d) => today <= d && d <= local_date(boundary, tz),
                When::At(t) => cx.now <= t && t <= boundary,
            }
        }
        Test::AnniversaryThisMonth => day.month() == today.month(),
        Test::AnniversaryToday => anniversary_in(day, today.year()) == today,
        Test::AnniversaryInNextDays { days } => {
            days_until_anniversary(day, today) <= i64::from(*days)
        }
        _ => false,
    }
}
