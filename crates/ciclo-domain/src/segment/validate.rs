//! Checks that a well-formed AST also means something: attributes exist, operators fit their
//! types, values are usable ([`validate`]), and references to other segments resolve without
//! loops ([`check_references`]).
//!
//! Every error carries a JSON pointer into the AST (for clients that send JSON) and an AST
//! location that [`SpanTree::locate`](super::SpanTree::locate) turns into a line and column
//! for text.

use super::ast::{DateValue, Expr, Literal, PropertyFilter, Test, Window};
use super::error::{ErrorCode, Location, Part, SegmentError};
use super::fields::{self, FieldType};
use std::collections::HashSet;

/// Another segment, as the reference lookup returns it: its canonical id (so that a key and an
/// id naming the same segment are recognised as one) and its definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSegment {
    pub id: String,
    pub expr: Expr,
}

/// Checks attributes, types and values; returns every problem found, not just the first.
pub fn validate(expr: &Expr) -> Result<(), Vec<SegmentError>> {
    let mut errors = Vec::new();
    let mut cursor = Cursor::default();
    check(expr, &mut cursor, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Where the walk is: child indices and the matching JSON pointer.
#[derive(Debug, Default)]
struct Cursor {
    node: Vec<usize>,
    pointer: String,
}

impl Cursor {
    fn error(
        &self,
        code: ErrorCode,
        part: Part,
        suffix: &str,
        reason: impl Into<String>,
    ) -> SegmentError {
        SegmentError::at(
            code,
            reason,
            format!("{}{suffix}", self.pointer),
            Location {
                node: self.node.clone(),
                part,
            },
        )
    }

    fn enter<T>(
        &mut self,
        index: usize,
        segment: &str,
        inside: impl FnOnce(&mut Cursor) -> T,
    ) -> T {
        let length = self.pointer.len();
        self.node.push(index);
        self.pointer.push_str(segment);
        let result = inside(self);
        self.node.pop();
        self.pointer.truncate(length);
        result
    }
}

fn check(expr: &Expr, cursor: &mut Cursor, errors: &mut Vec<SegmentError>) {
    match expr {
        Expr::And { all } => {
            for (i, child) in all.iter().enumerate() {
                cursor.enter(i, &format!("/all/{i}"), |c| check(child, c, errors));
            }
        }
        Expr::Or { any } => {
            for (i, child) in any.iter().enumerate() {
                cursor.enter(i, &format!("/any/{i}"), |c| check(child, c, errors));
            }
        }
        Expr::Not { expr } => cursor.enter(0, "/expr", |c| check(expr, c, errors)),
        Expr::Attribute(condition) => {
            let name = &condition.attribute;
            match fields::resolve(name) {
                None => errors.push(cursor.error(
                    ErrorCode::UnknownField,
                    Part::Subject,
                    "/attribute",
                    unknown(name),
                )),
                Some((_, field_type)) => {
                    if let Some(reason) = type_problem(name, field_type, &condition.test) {
                        errors.push(cursor.error(
                            ErrorCode::TypeMismatch,
                            Part::Test,
                            "/test",
                            reason,
                        ));
                    } else if let Some(reason) = value_problem(&condition.test) {
                        errors.push(cursor.error(
                            ErrorCode::InvalidValue,
                            Part::Test,
                            "/test",
                            reason,
                        ));
                    }
                }
            }
        }
        Expr::Event(condition) => {
            if condition.event.trim().is_empty() {
                errors.push(cursor.error(
                    ErrorCode::InvalidValue,
                    Part::Subject,
                    "/event",
                    "the event name is empty",
                ));
            }
            if let Some(reason) = window_problem(&condition.window) {
                errors.push(cursor.error(ErrorCode::InvalidValue, Part::Window, "/window", reason));
            }
            for (i, PropertyFilter { property, test }) in condition.filters.iter().enumerate() {
                if property.is_empty() || property.split('.').any(str::is_empty) {
                    let reason = format!("{property:?} is not a property name");
                    let suffix = format!("/where/{i}/property");
                    errors.push(cursor.error(
                        ErrorCode::InvalidValue,
                        Part::FilterProperty(i),
                        &suffix,
                        reason,
                    ));
                } else if let Some(reason) = value_problem(test) {
                    let suffix = format!("/where/{i}/test");
                    errors.push(cursor.error(
                        ErrorCode::InvalidValue,
                        Part::FilterTest(i),
                        &suffix,
                        reason,
                    ));
                }
            }
        }
        Expr::Segment(condition) => {
            if condition.segment.trim().is_empty() {
                errors.push(cursor.error(
                    ErrorCode::InvalidValue,
                    Part::Subject,
                    "/segment",
                    "the segment name is empty",
                ));
            }
        }
    }
}

fn unknown(name: &str) -> String {
    if let Some(rest) = name
        .strip_prefix(fields::TRAITS_PREFIX)
        .or_else(|| name.strip_prefix(fields::COMPUTED_PREFIX))
    {
        return format!("unknown attribute {name:?}: {rest:?} is not a valid path");
    }
    match fields::suggestion(name) {
        Some(known) => format!("unknown attribute {name:?} (did you mean {known}?)"),
        None => format!("unknown attribute {name:?}; custom data is written traits.{name}"),
    }
}

/// How an operator is named in messages.
fn operator(test: &Test) -> &'static str {
    match test {
        Test::Eq { .. } => "=",
        Test::NotEq { .. } => "!=",
        Test::Contains { .. } => "contains",
        Test::NotContains { .. } => "does not contain",
        Test::StartsWith { .. } => "starts with",
        Test::In { .. } => "in",
        Test::NotIn { .. } => "not in",
        Test::IsSet => "is set",
        Test::IsNotSet => "is not set",
        Test::Lt { .. } => "<",
        Test::Lte { .. } => "<=",
        Test::Gt { .. } => ">",
        Test::Gte { .. } => ">=",
        Test::Between { .. } => "between",
        Test::Before { .. } => "before",
        Test::After { .. } => "after",
        Test::BetweenDates { .. } => "between",
        Test::WithinLast { .. } => "within",
        Test::MoreThanAgo { .. } => "more than … ago",
        Test::InNext { .. } => "within the next",
        Test::AnniversaryThisMonth => "this month",
        Test::AnniversaryToday => "today",
        Test::AnniversaryInNextDays { .. } => "anniversary in the next",
    }
}

fn is_date_test(test: &Test) -> bool {
    matches!(
        test,
        Test::Before { .. }
            | Test::After { .. }
            | Test::BetweenDates { .. }
            | Test::WithinLast { .. }
            | Test::MoreThanAgo { .. }
            | Test::InNext { .. }
            | Test::AnniversaryThisMonth
            | Test::AnniversaryToday
            | Test::AnniversaryInNextDays { .. }
    )
}

fn is_number_test(test: &Test) -> bool {
    matches!(
        test,
        Test::Lt { .. }
            | Test::Lte { .. }
            | Test::Gt { .. }
            | Test::Gte { .. }
            | Test::Between { .. }
    )
}

/// The literals a test compares with, if any.
fn literals(test: &Test) -> &[Literal] {
    match test {
        Test::Eq { value }
        | Test::NotEq { value }
        | Test::Contains { value }
        | Test::NotContains { value } => std::slice::from_ref(value),
        Test::In { values } | Test::NotIn { values } => values,
        _ => &[],
    }
}

/// Why `test` does not fit an attribute of type `field_type`, if it does not.
fn type_problem(name: &str, field_type: FieldType, test: &Test) -> Option<String> {
    let op = operator(test);
    let kind = field_type.describe();
    let all_text = || literals(test).iter().all(|l| matches!(l, Literal::Text(_)));
    match field_type {
        FieldType::Dynamic => None,
        FieldType::Text | FieldType::TextList => {
            if is_number_test(test) {
                return Some(format!("{name} is {kind}, but \"{op}\" compares numbers"));
            }
            if is_date_test(test) {
                return Some(format!(
                    "{name} is {kind}, not a date: \"{op}\" does not apply"
                ));
            }
            if field_type == FieldType::TextList
                && matches!(test, Test::Eq { .. } | Test::NotEq { .. })
            {
                return Some(format!(
                    "{name} is {kind}: use contains / does not contain for one item"
                ));
            }
            if field_type == FieldType::TextList && matches!(test, Test::StartsWith { .. }) {
                return Some(format!("{name} is {kind}: starts with applies to text"));
            }
            (!all_text()).then(|| format!("{name} is {kind}: compare it with text in quotes"))
        }
        FieldType::Number => {
            if is_date_test(test) {
                return Some(format!(
                    "{name} is a number, not a date: \"{op}\" does not apply"
                ));
            }
            if matches!(
                test,
                Test::Contains { .. } | Test::NotContains { .. } | Test::StartsWith { .. }
            ) {
                return Some(format!("{name} is a number, but \"{op}\" applies to text"));
            }
            let all_numbers = literals(test)
                .iter()
                .all(|l| matches!(l, Literal::Number(_)));
            (!all_numbers).then(|| format!("{name} is a number: write the value without quotes"))
        }
        FieldType::Date | FieldType::Instant => {
            if is_number_test(test) {
                return Some(format!(
                    "{name} is {kind}: use before, after or between dates instead of \"{op}\""
                ));
            }
            if matches!(
                test,
                Test::Contains { .. } | Test::NotContains { .. } | Test::StartsWith { .. }
            ) {
                return Some(format!("{name} is {kind}, but \"{op}\" applies to text"));
            }
            let all_dates = literals(test)
                .iter()
                .all(|l| matches!(l, Literal::Text(t) if DateValue::parse(t).is_some()));
            (!all_dates)
                .then(|| format!("{name} is {kind}: compare it with a date such as 2024-01-31"))
        }
    }
}

/// Why a test's values cannot mean anything, if they cannot.
fn value_problem(test: &Test) -> Option<String> {
    match test {
        Test::In { values } | Test::NotIn { values } if values.is_empty() => {
            Some("the list is empty: give at least one value".to_string())
        }
        Test::Between { low, high } => match (low.as_f64(), high.as_f64()) {
            (Some(l), Some(h)) if l > h => Some(format!(
                "between {low} and {high} is empty: the lower bound comes first"
            )),
            _ => None,
        },
        Test::BetweenDates { from, to } => dates_reversed(*from, *to),
        Test::WithinLast { amount: 0, .. } | Test::InNext { amount: 0, .. } => {
            Some("a window of 0 is empty: give a positive amount".to_string())
        }
        _ => None,
    }
}

fn window_problem(window: &Window) -> Option<String> {
    match window {
        Window::Last { amount: 0, .. } => {
            Some("a window of 0 is empty: give a positive amount".to_string())
        }
        Window::Between { from, to } => dates_reversed(*from, *to),
        Window::Last { .. } | Window::Ever => None,
    }
}

fn dates_reversed(from: DateValue, to: DateValue) -> Option<String> {
    let reversed = match (from, to) {
        (DateValue::Date(a), DateValue::Date(b)) => a > b,
        (DateValue::Instant(a), DateValue::Instant(b)) => a >= b,
        // Mixed kinds depend on the time zone; the evaluator copes with an empty range.
        _ => false,
    };
    reversed.then(|| format!("between {from} and {to} is empty: the earlier date comes first"))
}

/// Checks that every segment `expr` refers to exists (through `lookup`) and that no chain of
/// references leads back to `segment_id` or loops among other segments. `segment_id` is the
/// segment being saved; the lookup maps any reference (key or id) to the canonical id and the
/// current definition of another segment.
pub fn check_references(
    segment_id: &str,
    expr: &Expr,
    lookup: &dyn Fn(&str) -> Option<ResolvedSegment>,
) -> Result<(), SegmentError> {
    let mut references = Vec::new();
    collect_references(expr, &mut Cursor::default(), &mut references);
    let mut done = HashSet::new();
    for (reference, cursor) in references {
        let error = |code, reason: String| {
            SegmentError::at(
                code,
                reason,
                format!("{}/segment", cursor.pointer),
                Location {
                    node: cursor.node.clone(),
                    part: Part::Subject,
                },
            )
        };
        if reference == segment_id {
            return Err(error(
                ErrorCode::CyclicReference,
                format!("segment {segment_id:?} cannot include itself"),
            ));
        }
        let Some(resolved) = lookup(reference) else {
            return Err(error(
                ErrorCode::UnknownSegment,
                format!("there is no segment {reference:?}"),
            ));
        };
        let mut stack = vec![segment_id.to_string()];
        if let Some(cycle) = find_cycle(&resolved, &mut stack, &mut done, lookup) {
            let path = cycle.join(" → ");
            let reason = if cycle.first().map(String::as_str) == Some(segment_id) {
                format!("in segment {reference:?} makes a loop: {path}")
            } else {
                format!("segment {reference:?} depends on segments that include each other: {path}")
            };
            return Err(error(ErrorCode::CyclicReference, reason));
        }
    }
    Ok(())
}

/// Depth-first search from `segment` with `stack` the chain that led here. Returns the loop
/// (first id repeated at the end) if one is reachable.
fn find_cycle(
    segment: &ResolvedSegment,
    stack: &mut Vec<String>,
    done: &mut HashSet<String>,
    lookup: &dyn Fn(&str) -> Option<ResolvedSegment>,
) -> Option<Vec<String>> {
    if let Some(i) = stack.iter().position(|id| *id == segment.id) {
        let mut cycle = stack[i..].to_vec();
        cycle.push(segment.id.clone());
        return Some(cycle);
    }
    if done.contains(&segment.id) {
        return None;
    }
    stack.push(segment.id.clone());
    let mut references = Vec::new();
    collect_references(&segment.expr, &mut Cursor::default(), &mut references);
    for (reference, _) in references {
        let next = if reference == stack[0] {
            Some(ResolvedSegment {
                id: stack[0].clone(),
                expr: Expr::And { all: Vec::new() },
            })
        } else {
            // A dangling reference inside another segment is that segment's problem, not this one's.
            lookup(reference)
        };
        if let Some(next) = next {
            if let Some(cycle) = find_cycle(&next, stack, done, lookup) {
                return Some(cycle);
            }
        }
    }
    stack.pop();
    done.insert(segment.id.clone());
    None
}

fn collect_references<'a>(expr: &'a Expr, cursor: &mut Cursor, out: &mut Vec<(&'a str, Cursor)>) {
    let here = |c: &Cursor| Cursor {
        node: c.node.clone(),
        pointer: c.pointer.clone(),
    };
    match expr {
        Expr::And { all } => {
            for (i, child) in all.iter().enumerate() {
                cursor.enter(i, &format!("/all/{i}"), |c| {
                    collect_references(child, c, out)
                });
            }
        }
        Expr::Or { any } => {
            for (i, child) in any.iter().enumerate() {
                cursor.enter(i, &format!("/any/{i}"), |c| {
                    collect_references(child, c, out)
                });
            }
        }
        Expr::Not { expr } => cursor.enter(0, "/expr", |c| collect_references(expr, c, out)),
        Expr::Segment(condition) => out.push((&condition.segment, here(cursor))),
        Expr::Attribute(_) | Expr::Event(_) => {}
    }
}
