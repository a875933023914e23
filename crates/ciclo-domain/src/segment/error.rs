//! The one error type of the segment language: syntax errors from the parser and the
//! semantic errors of validation and reference checks, each with a stable code, a reason a
//! marketer can act on and a location (a JSON pointer into the AST and, when the segment was
//! written as text, the line and column).

use serde::Serialize;
use std::fmt;

/// Stable snake_case codes that API clients may match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The text does not follow the grammar.
    SyntaxError,
    /// An attribute name that is neither a profile field, an order stat, a computed attribute,
    /// `traits.…` nor `computed.…`.
    UnknownField,
    /// An operator or value that does not fit the attribute's type (`city > 3`).
    TypeMismatch,
    /// A value that fits the type but cannot mean anything (`between 500 and 100`, `in ()`).
    InvalidValue,
    /// `in segment "x"` where no segment `x` exists.
    UnknownSegment,
    /// Segments that refer to each other in a loop.
    CyclicReference,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::SyntaxError => "syntax_error",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::TypeMismatch => "type_mismatch",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::UnknownSegment => "unknown_segment",
            ErrorCode::CyclicReference => "cyclic_reference",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A place in the text: byte offset (for slicing), and 1-based line and column (for people;
/// the column counts characters, not bytes, so `Calçados` is 8 columns wide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Position {
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The start of any text.
    pub const START: Position = Position {
        offset: 0,
        line: 1,
        column: 1,
    };
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A stretch of the text, `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    pub start: Position,
    pub end: Position,
}

impl Span {
    pub fn new(start: Position, end: Position) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// Which part of a condition an error is about, so the text position can be precise: the
/// attribute name for `unknown_field`, the operator for `type_mismatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The whole node.
    Node,
    /// The attribute, event name or segment reference.
    Subject,
    /// The attribute test (operator and value).
    Test,
    /// An event condition's count (`at least 3 times`).
    Count,
    /// An event condition's time window.
    Window,
    /// The property name of the n-th `where` filter.
    FilterProperty(usize),
    /// The test of the n-th `where` filter.
    FilterTest(usize),
}

/// Where in the AST an error lies: the child indices from the root (`and`/`or` children,
/// `0` for the operand of `not`) and the part of that node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub node: Vec<usize>,
    pub part: Part,
}

/// One problem with a segment definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentError {
    pub code: ErrorCode,
    /// What is wrong and, where it helps, what was expected.
    pub reason: String,
    /// A JSON pointer into the AST form (`/all/1/test`); empty for syntax errors and the root.
    pub pointer: String,
    /// Where in the text, when the segment was written as text.
    pub position: Option<Position>,
    /// The AST location, kept so that [`crate::segment::SpanTree::locate`] can add the position
    /// to errors found on an AST that came from text.
    #[serde(skip)]
    pub location: Option<Box<Location>>,
}

impl SegmentError {
    /// A syntax error at a text position.
    pub fn syntax(reason: impl Into<String>, at: Position) -> SegmentError {
        SegmentError {
            code: ErrorCode::SyntaxError,
            reason: reason.into(),
            pointer: String::new(),
            position: Some(at),
            location: None,
        }
    }

    /// A semantic error at an AST location.
    pub fn at(
        code: ErrorCode,
        reason: impl Into<String>,
        pointer: String,
        location: Location,
    ) -> SegmentError {
        SegmentError {
            code,
            reason: reason.into(),
            pointer,
            position: None,
            location: Some(Box::new(location)),
        }
    }

    /// The error in the shape the rest of ciclo reports field problems in (the field being the
    /// JSON pointer, or `line:column` for syntax errors).
    pub fn to_field_error(&self) -> crate::FieldError {
        let field = match (&self.position, self.pointer.is_empty()) {
            (_, false) => self.pointer.clone(),
            (Some(p), true) => p.to_string(),
            (None, true) => String::new(),
        };
        crate::FieldError::new(self.code.as_str(), field, self.to_string())
    }
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        match (&self.position, self.pointer.as_str()) {
            (Some(p), _) => write!(f, " at {p}"),
            (None, "") => Ok(()),
            (None, pointer) => write!(f, " at {pointer}"),
        }
    }
}

impl std::error::Error for SegmentError {}
