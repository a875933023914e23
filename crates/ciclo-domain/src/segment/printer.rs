//! Writes an AST back as segment text, in the canonical English spelling.
//!
//! The printer and the parser are each other's inverse: `parse(&print(&ast)) == Ok(ast)` for
//! every AST, including shapes text would not usually produce (a group with one condition is
//! written `all of (…)`, an empty one `everyone`; a name that is a keyword goes in backticks).
//! Grouped operands of `and`/`or` are always parenthesised, so nesting survives a round trip.

use super::ast::{Count, EventCondition, Expr, Literal, PropertyFilter, Test, TimeUnit, Window};
use super::fields;
use super::lexer::{fold, is_identifier};
use super::parser::is_reserved;
use std::fmt::{self, Display, Formatter, Write};

/// The text form of an expression (the same as `expr.to_string()`).
pub fn print(expr: &Expr) -> String {
    expr.to_string()
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And { all } => group(f, all, "and", "everyone", "all of"),
            Expr::Or { any } => group(f, any, "or", "nobody", "any of"),
            Expr::Not { expr } => match expr.as_ref() {
                Expr::Segment(_) => write!(f, "not {expr}"),
                _ => write!(f, "not ({expr})"),
            },
            Expr::Attribute(condition) => {
                write_path(f, &condition.attribute)?;
                f.write_char(' ')?;
                write_test(f, &condition.test, &condition.attribute)
            }
            Expr::Event(condition) => condition.fmt(f),
            Expr::Segment(condition) => {
                f.write_str("in segment ")?;
                write_quoted(f, &condition.segment, '"')
            }
        }
    }
}

/// Whether the expression is an infix `and`/`or` that needs parentheses as an operand.
fn is_infix(expr: &Expr) -> bool {
    matches!(expr, Expr::And { all: items } | Expr::Or { any: items } if items.len() >= 2)
}

fn group(
    f: &mut Formatter<'_>,
    items: &[Expr],
    joiner: &str,
    empty: &str,
    explicit: &str,
) -> fmt::Result {
    match items {
        [] => f.write_str(empty),
        [only] => write!(f, "{explicit} ({only})"),
        _ => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, " {joiner} ")?;
                }
                if is_infix(item) {
                    write!(f, "({item})")?;
                } else {
                    write!(f, "{item}")?;
                }
            }
            Ok(())
        }
    }
}

impl Display for EventCondition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let never = self.count == Count::Exactly { times: 0 };
        f.write_str(if never {
            "has not performed "
        } else {
            "performed "
        })?;
        write_quoted(f, &self.event, '"')?;
        match self.count {
            Count::AtLeast { times: 1 } => {}
            Count::Exactly { times: 0 } => {}
            Count::AtLeast { times } => write!(f, " at least {times} {}", times_word(times))?,
            Count::AtMost { times } => write!(f, " at most {times} {}", times_word(times))?,
            Count::Exactly { times } => write!(f, " exactly {times} {}", times_word(times))?,
        }
        match &self.window {
            Window::Ever => {}
            Window::Last { amount, unit } => {
                write!(f, " in the last {amount} {}", unit.word(*amount))?
            }
            Window::Between { from, to } => write!(f, " between {from} and {to}")?,
        }
        match self.filters.as_slice() {
            [] => Ok(()),
            [only] => write!(f, " where {only}"),
            filters => {
                f.write_str(" where (")?;
                for (i, filter) in filters.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    write!(f, "{filter}")?;
                }
                f.write_char(')')
            }
        }
    }
}

fn times_word(times: u64) -> &'static str {
    if times == 1 {
        "time"
    } else {
        "times"
    }
}

impl Display for PropertyFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        // The parser drops one leading `properties.`, so a property that itself starts with it
        // gets the prefix written out.
        if self.property.starts_with("properties.") {
            f.write_str("properties.")?;
        }
        write_path(f, &self.property)?;
        f.write_char(' ')?;
        write_test(f, &self.test, &self.property)
    }
}

/// A dotted name, each segment bare when it can be and in backticks otherwise.
fn write_path(f: &mut Formatter<'_>, path: &str) -> fmt::Result {
    for (i, segment) in path.split('.').enumerate() {
        if i > 0 {
            f.write_char('.')?;
        }
        if is_identifier(segment) && !(i == 0 && is_reserved(&fold(segment))) {
            f.write_str(segment)?;
        } else {
            write_quoted(f, segment, '`')?;
        }
    }
    Ok(())
}

fn write_quoted(f: &mut Formatter<'_>, text: &str, quote: char) -> fmt::Result {
    f.write_char(quote)?;
    for c in text.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c == quote => write!(f, "\\{c}")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Text(t) => write_quoted(f, t, '"'),
        }
    }
}

fn write_list(f: &mut Formatter<'_>, values: &[Literal]) -> fmt::Result {
    f.write_char('(')?;
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{value}")?;
    }
    f.write_char(')')
}

fn amount(f: &mut Formatter<'_>, amount: u32, unit: TimeUnit) -> fmt::Result {
    write!(f, "{amount} {}", unit.word(amount))
}

/// A test; `subject` decides whether anniversary tests may leave out the word `anniversary`.
fn write_test(f: &mut Formatter<'_>, test: &Test, subject: &str) -> fmt::Result {
    let anniversary = if fields::is_birthday(subject) {
        ""
    } else {
        "anniversary "
    };
    match test {
        Test::Eq { value } => write!(f, "= {value}"),
        Test::NotEq { value } => write!(f, "!= {value}"),
        Test::Contains { value } => write!(f, "contains {value}"),
        Test::NotContains { value } => write!(f, "does not contain {value}"),
        Test::StartsWith { value } => {
            f.write_str("starts with ")?;
            write_quoted(f, value, '"')
        }
        Test::In { values } => {
            f.write_str("in ")?;
            write_list(f, values)
        }
        Test::NotIn { values } => {
            f.write_str("not in ")?;
            write_list(f, values)
        }
        Test::IsSet => f.write_str("is set"),
        Test::IsNotSet => f.write_str("is not set"),
        Test::Lt { value } => write!(f, "< {value}"),
        Test::Lte { value } => write!(f, "<= {value}"),
        Test::Gt { value } => write!(f, "> {value}"),
        Test::Gte { value } => write!(f, ">= {value}"),
        Test::Between { low, high } => write!(f, "between {low} and {high}"),
        Test::Before { date } => write!(f, "before {date}"),
        Test::After { date } => write!(f, "after {date}"),
        Test::BetweenDates { from, to } => write!(f, "between {from} and {to}"),
        Test::WithinLast { amount: n, unit } => {
            f.write_str("within ")?;
            amount(f, *n, *unit)
        }
        Test::MoreThanAgo { amount: n, unit } => {
            f.write_str("more than ")?;
            amount(f, *n, *unit)?;
            f.write_str(" ago")
        }
        Test::InNext { amount: n, unit } => {
            f.write_str("within the next ")?;
            amount(f, *n, *unit)
        }
        Test::AnniversaryThisMonth => write!(f, "{anniversary}this month"),
        Test::AnniversaryToday => write!(f, "{anniversary}today"),
        Test::AnniversaryInNextDays { days } => {
            write!(f, "{anniversary}in the next ")?;
            amount(f, *days, TimeUnit::Days)
        }
    }
}

impl Display for Test {
    /// The test alone, as it would follow a (non-birthday) attribute.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_test(f, self, "")
    }
}

impl Display for Window {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Window::Ever => f.write_str("ever"),
            Window::Last { amount: n, unit } => {
                f.write_str("in the last ")?;
                amount(f, *n, *unit)
            }
            Window::Between { from, to } => write!(f, "between {from} and {to}"),
        }
    }
}
