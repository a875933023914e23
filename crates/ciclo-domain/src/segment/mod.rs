//! The segment language: real-time customer segments that marketers read and write as text
//! and the API takes as JSON.
//!
//! ```text
//! city = "Recife" and orders_count >= 2
//! performed "Product Viewed" at least 3 times in the last 7 days where category = "Calçados"
//! last_order_at more than 90 days ago and not (tags contains "vip")
//! birthday this month or in segment "aniversariantes"
//! total_spent between 100 and 500 and traits.plan in ("gold", "silver")
//! has not performed "Order Completed" in the last 30 days
//! lifecycle is retention and predicted_clv > 500
//! ```
//!
//! The pieces, all pure (time is a parameter):
//! * [`parse`] / [`parse_with_spans`] turn text into the [`Expr`] AST; [`print()`] (or
//!   `to_string()`) turns it back, and `parse(&print(&ast)) == Ok(ast)` for every AST (whose
//!   dates lie in the years 0–9999, as every date from JSON or text does);
//! * the AST *is* the JSON form (serde, tagged, unknown keys refused);
//! * [`validate`] and [`check_references`] find unknown attributes, type mismatches, unusable
//!   values, missing segments and reference loops, as [`SegmentError`]s with a stable code, a
//!   JSON pointer and (for text) a line and column;
//! * [`matches()`] decides membership for one [`CustomerSnapshot`];
//! * [`event_requirements`] and [`depends_on`] tell the store which event counts to compute and
//!   which changes (event names, fields, segments, the clock) can move a customer.
//!
//! # Grammar
//!
//! Keywords are case-insensitive; words in brackets are optional; `|` separates spellings.
//! Portuguese spellings are accepted next to the English ones (accents optional); the printer
//! writes English.
//!
//! ```text
//! expr       := and (("or" | "ou") and)*
//! and        := unary (("and" | "e") unary)*
//! unary      := ("not" | "não") unary | primary
//! primary    := "(" expr ")"
//!             | "all of" "(" [expr ("," expr)*] ")"        -- an `and` kept as written
//!             | "any of" "(" [expr ("," expr)*] ")"        -- an `or` kept as written
//!             | "everyone" | "nobody"                      -- empty `and` / empty `or`
//!             | ("in segment" | "no segmento") name
//!             | ("performed" | "realizou") name clause*
//!             | ("has not performed" | "did not perform" | "never performed" | "nunca realizou")
//!                   name clause*                           -- count is "exactly 0"
//!             | path test
//! clause     := count | window | where                     -- each at most once, any order
//! count      := ("at least" | "pelo menos") N ["times"] | ("at most" | "no máximo") N ["times"]
//!             | ("exactly" | "exatamente") N ["times"]
//! window     := ("in the last" | "within" | "nos últimos") N unit
//!             | ("between" | "entre") date "and" date | "ever"
//! where      := ("where" | "onde") filter | "where" "(" filter ("and" filter)* ")"
//! filter     := ["properties."] path test
//! test       := "=" value | "!=" value | "is" value | "is not" value
//!             | "<" number | "<=" number | ">" number | ">=" number
//!             | "between" number "and" number | "between" date "and" date
//!             | "contains" value | "does not contain" value | "starts with" text
//!             | "in" list | "not in" list | "is set" | "is not set"
//!             | "before" date | "after" date
//!             | "within" N unit | "in the last" N unit | "less than" N unit "ago"
//!             | "more than" N unit "ago" | "há mais de" N unit
//!             | "within the next" N unit | "in the next" N unit
//!             | "anniversary" ("this month" | "today" | "in the next" N "days")
//!             | "this month" | "today" | "in the next" N "days"   -- after `birthday` only
//! value      := text | number | "true" | "false" | date   -- after "is", a bare word is text
//! list       := "(" [value ("," value)*] ")"               -- or [ … ]
//! unit       := minutes | hours | days | weeks | months | years  (singular too; minutos, horas,
//!               dias, semanas, meses, anos)
//! path       := name ("." name)*                           -- city, traits.plan, traits.`a b`
//! name       := word | `backticked` | "text"
//! date       := 2024-01-31 | 2024-01-31T10:00:00Z | "2024-01-31"
//! ```
//!
//! `not` binds tighter than `and`, which binds tighter than `or`. A single `where` filter needs
//! no parentheses; several do, so that `and` after a filter is never ambiguous.
//!
//! # Attributes
//!
//! Profile fields `name email phone whatsapp city state country locale time_zone` (text),
//! `tags` (list), `birthday` (date), `first_seen_at last_seen_at created_at` (date-time); order
//! stats `orders_count`, `total_spent` and `average_order_value` (in reais, not centavos),
//! `first_order_at last_order_at`; computed attributes `lifecycle_stage` (alias `lifecycle`),
//! `rfm_group`, `predicted_clv`, `p_alive`, and `computed.<name>` for any other; traits as
//! `traits.<path>`. See [`fields`].
//!
//! # Time
//!
//! `now` is a parameter and the workspace's time zone comes with the snapshot. "within 30 days"
//! means `now - 30 days <= t <= now`; "more than 90 days ago" means `t < now - 90 days` (so for
//! a past value exactly one of the two holds); days and weeks are fixed lengths, months and
//! years calendar steps; a date such as `2024-01-31` covers that day in the workspace's zone.
//! 29 February birthdays are celebrated on 28 February in common years.
//!
//! # JSON form
//!
//! `performed "Product Viewed" at least 3 times in the last 7 days where category = "Calçados"
//! and not in segment "vip"` is:
//!
//! ```json
//! {"type": "and", "all": [
//!   {"type": "event", "event": "Product Viewed",
//!    "count": {"op": "at_least", "times": 3},
//!    "window": {"type": "last", "amount": 7, "unit": "days"},
//!    "where": [{"property": "category", "test": {"op": "eq", "value": "Calçados"}}]},
//!   {"type": "not", "expr": {"type": "segment", "segment": "vip"}}
//! ]}
//! ```
//!
//! Attribute conditions are `{"type": "attribute", "attribute": "city", "test": {"op": "eq",
//! "value": "Recife"}}`; test `op`s are `eq not_eq contains not_contains starts_with in not_in
//! is_set is_not_set lt lte gt gte between between_dates before after within_last
//! more_than_ago in_next anniversary_this_month anniversary_today anniversary_in_next_days`.
//! In an event condition `count` (default at least once), `window` (default ever) and `where`
//! (default none) may be left out.

mod ast;
mod columnar;
mod error;
mod eval;
pub mod fields;
mod lexer;
mod parser;
mod printer;
mod requirements;
mod time;
mod validate;

#[cfg(test)]
mod tests;

pub use ast::{
    AttributeCondition, Count, DateValue, EventCondition, Expr, Literal, PropertyFilter,
    SegmentCondition, Test, TimeUnit, Window,
};
pub use columnar::{
    attribute_cell, property_cell, Bits, Cell, Column, ColumnarInput, EventColumn,
    EventColumnBuilder, Missing, ProfileEvent,
};
pub use error::{ErrorCode, Location, Part, Position, SegmentError, Span};
pub use eval::{matches, CustomerSnapshot, EventCounts};
pub use parser::{parse, parse_with_spans, Parsed, SpanTree, MAX_DEPTH};
pub use printer::print;
pub use requirements::{
    depends_on, event_requirements, is_time_relative, Dependencies, EventRequirement,
};
pub use time::{anniversary_in, days_until_anniversary, TimeBounds};
pub use validate::{check_references, validate, ResolvedSegment};

impl std::str::FromStr for Expr {
    type Err = SegmentError;

    fn from_str(text: &str) -> Result<Expr, SegmentError> {
        parse(text)
    }
}
