//! The segment AST, which is also the JSON form the API takes and stores.
//!
//! The JSON is internally tagged (`"type"` for expressions and windows, `"op"` for tests and
//! counts), unknown keys are refused (a typo such as `"windw"` must not silently mean "ever"),
//! and optional parts of an event condition may be left out. See the module documentation of
//! [`crate::segment`] for a full example. Changing a name here changes the public API.

use crate::Timestamp;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use std::fmt;

/// A segment definition: conditions combined with and / or / not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expr {
    /// Every condition holds. With no conditions it holds for everyone.
    And { all: Vec<Expr> },
    /// At least one condition holds. With no conditions it holds for no one.
    Or { any: Vec<Expr> },
    /// The condition does not hold.
    Not { expr: Box<Expr> },
    /// A test on a profile field, order stat, trait or computed attribute.
    Attribute(AttributeCondition),
    /// How often the customer performed an event.
    Event(EventCondition),
    /// Membership of another segment.
    Segment(SegmentCondition),
}

/// `city = "Recife"`, `traits.plan in ("gold", "silver")`, `rfm_group = "champions"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeCondition {
    /// A field name (`city`), a dotted trait path (`traits.plan`, `traits.address.city`), a
    /// computed attribute (`rfm_group`) or `computed.<name>`.
    pub attribute: String,
    pub test: Test,
}

/// `performed "Product Viewed" at least 3 times in the last 7 days where category = "Calçados"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventCondition {
    /// The event name (`track` event, or page/screen name).
    pub event: String,
    /// How many matching events; "at least once" when left out.
    #[serde(default)]
    pub count: Count,
    /// Which events count by time; all of them when left out.
    #[serde(default)]
    pub window: Window,
    /// Tests on the event's properties, all of which must hold.
    #[serde(default, rename = "where")]
    pub filters: Vec<PropertyFilter>,
}

/// `in segment "vip"`. The reference is a segment key or id, resolved by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentCondition {
    pub segment: String,
}

/// A test on one event property (a dotted path inside `properties`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyFilter {
    pub property: String,
    pub test: Test,
}

/// How many matching events a customer must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Count {
    AtLeast {
        times: u64,
    },
    AtMost {
        times: u64,
    },
    /// `exactly 0 times` is "has not performed".
    Exactly {
        times: u64,
    },
}

impl Default for Count {
    fn default() -> Self {
        Count::AtLeast { times: 1 }
    }
}

impl Count {
    pub fn holds(self, count: u64) -> bool {
        match self {
            Count::AtLeast { times } => count >= times,
            Count::AtMost { times } => count <= times,
            Count::Exactly { times } => count == times,
        }
    }
}

/// Which events count, by their time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Window {
    /// All events, whenever they happened.
    #[default]
    Ever,
    /// Events at or after `now - amount unit`.
    Last { amount: u32, unit: TimeUnit },
    /// Events from `from` (inclusive) to `to`: a date `to` includes that whole day, an instant
    /// `to` is exclusive.
    Between { from: DateValue, to: DateValue },
}

/// Units of relative time. Minutes to weeks are fixed lengths (a day is 24 hours); months and
/// years are calendar steps in the workspace's time zone (31 March minus one month is the last
/// day of February).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl TimeUnit {
    pub const ALL: [TimeUnit; 6] = [
        TimeUnit::Minutes,
        TimeUnit::Hours,
        TimeUnit::Days,
        TimeUnit::Weeks,
        TimeUnit::Months,
        TimeUnit::Years,
    ];

    /// The English word, singular or plural by `amount`.
    pub fn word(self, amount: u32) -> &'static str {
        let (one, many) = match self {
            TimeUnit::Minutes => ("minute", "minutes"),
            TimeUnit::Hours => ("hour", "hours"),
            TimeUnit::Days => ("day", "days"),
            TimeUnit::Weeks => ("week", "weeks"),
            TimeUnit::Months => ("month", "months"),
            TimeUnit::Years => ("year", "years"),
        };
        if amount == 1 {
            one
        } else {
            many
        }
    }
}

/// A test on one value. Which tests fit which attributes is checked by
/// [`crate::segment::validate`]; traits, computed attributes and event properties are
/// dynamically typed and take every test.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Test {
    /// Equal (text ignores case; a date literal on a date-time means "on that day").
    Eq {
        value: Literal,
    },
    /// Not equal; also true when the value is not set (the negation of `eq`).
    NotEq {
        value: Literal,
    },
    /// Text contains a substring; a list (tags, JSON array) contains an item.
    Contains {
        value: Literal,
    },
    NotContains {
        value: Literal,
    },
    StartsWith {
        value: String,
    },
    /// Equal to one of the values (a list: one of its items is).
    In {
        values: Vec<Literal>,
    },
    NotIn {
        values: Vec<Literal>,
    },
    /// Has a value (not null, not empty text, not an empty list).
    IsSet,
    IsNotSet,
    Lt {
        value: Number,
    },
    Lte {
        value: Number,
    },
    Gt {
        value: Number,
    },
    Gte {
        value: Number,
    },
    /// `low <= value <= high`.
    Between {
        low: Number,
        high: Number,
    },
    /// Strictly before: a date means before that day starts.
    Before {
        date: DateValue,
    },
    /// Strictly after: a date means from the next day on.
    After {
        date: DateValue,
    },
    /// From `from` to `to`, both dates included (an instant `to` is exclusive).
    BetweenDates {
        from: DateValue,
        to: DateValue,
    },
    /// In the past `amount unit`, up to now: `now - amount <= value <= now`.
    WithinLast {
        amount: u32,
        unit: TimeUnit,
    },
    /// Longer ago than `amount unit`: `value < now - amount`.
    MoreThanAgo {
        amount: u32,
        unit: TimeUnit,
    },
    /// In the coming `amount unit`: `now <= value <= now + amount`.
    InNext {
        amount: u32,
        unit: TimeUnit,
    },
    /// The day and month fall in the current month (birthdays).
    AnniversaryThisMonth,
    /// The day and month are today's (29 February is celebrated on the 28th in common years).
    AnniversaryToday,
    /// The next anniversary is today or within `days` days.
    AnniversaryInNextDays {
        days: u32,
    },
}

/// A constant in a test: text, number or boolean. In JSON it is the plain JSON value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum Literal {
    Bool(bool),
    Number(Number),
    Text(String),
}

impl From<Literal> for Value {
    fn from(literal: Literal) -> Value {
        match literal {
            Literal::Bool(b) => Value::Bool(b),
            Literal::Number(n) => Value::Number(n),
            Literal::Text(s) => Value::String(s),
        }
    }
}

impl TryFrom<Value> for Literal {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        match value {
            Value::Bool(b) => Ok(Literal::Bool(b)),
            Value::Number(n) => Ok(Literal::Number(n)),
            Value::String(s) => Ok(Literal::Text(s)),
            other => Err(format!(
                "a value must be a string, number or boolean, not {other}"
            )),
        }
    }
}

impl From<&str> for Literal {
    fn from(s: &str) -> Literal {
        Literal::Text(s.to_string())
    }
}

impl From<i64> for Literal {
    fn from(n: i64) -> Literal {
        Literal::Number(n.into())
    }
}

/// An absolute date in a test: a calendar day (`2024-01-31`, read in the workspace's time zone)
/// or an instant (`2024-01-31T10:00:00Z`). In JSON it is that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DateValue {
    Date(NaiveDate),
    Instant(Timestamp),
}

impl DateValue {
    /// Accepts `YYYY-MM-DD` or an RFC 3339 date-time with offset (kept as UTC).
    pub fn parse(raw: &str) -> Option<DateValue> {
        let raw = raw.trim();
        if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            // chrono accepts 1- and 3-digit fields; insist on the canonical shape so that what
            // is printed is what was written.
            if raw.len() == 10 {
                return Some(DateValue::Date(d));
            }
            return None;
        }
        DateTime::parse_from_rfc3339(raw)
            .ok()
            .map(|t| DateValue::Instant(t.with_timezone(&Utc)))
    }
}

impl fmt::Display for DateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateValue::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            DateValue::Instant(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

impl From<DateValue> for String {
    fn from(d: DateValue) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for DateValue {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        DateValue::parse(&raw)
            .ok_or_else(|| format!("{raw:?} is not a date (YYYY-MM-DD) or an RFC 3339 date-time"))
    }
}

impl Expr {
    /// `a and b and …`.
    pub fn and(all: Vec<Expr>) -> Expr {
        Expr::And { all }
    }

    /// `a or b or …`.
    pub fn or(any: Vec<Expr>) -> Expr {
        Expr::Or { any }
    }

    /// `not e`. (Named for the keyword; `std::ops::Not` would hide that it builds a node.)
    #[allow(clippy::should_implement_trait)]
    pub fn not(expr: Expr) -> Expr {
        Expr::Not {
            expr: Box::new(expr),
        }
    }

    /// `attribute test`.
    pub fn attribute(attribute: &str, test: Test) -> Expr {
        Expr::Attribute(AttributeCondition {
            attribute: attribute.to_string(),
            test,
        })
    }

    /// `in segment "reference"`.
    pub fn segment(reference: &str) -> Expr {
        Expr::Segment(SegmentCondition {
            segment: reference.to_string(),
        })
    }

    /// The children of a group (`and`, `or`, `not`), in order; none for a condition.
    pub fn children(&self) -> &[Expr] {
        match self {
            Expr::And { all } => all,
            Expr::Or { any } => any,
            Expr::Not { expr } => std::slice::from_ref(expr),
            Expr::Attribute(_) | Expr::Event(_) | Expr::Segment(_) => &[],
        }
    }

    /// Calls `visit` on this node and every node below it, depth first, parents first.
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Expr)) {
        visit(self);
        for child in self.children() {
            child.walk(visit);
        }
    }
}
