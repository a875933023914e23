//! A hand-written recursive-descent parser from segment text to the AST.
//!
//! Hand-written rather than generated because the errors matter more than the grammar's size:
//! each production knows what it expected and after which words, so a marketer reads
//! `expected a number after ">", found the text "três" at 1:16`.
//!
//! Keywords are phrases (`at least`, `pelo menos`) matched on folded words, so English and
//! Portuguese spellings live side by side in the tables below; the printer writes English.

use super::ast::{
    AttributeCondition, Count, DateValue, EventCondition, Expr, Literal, PropertyFilter,
    SegmentCondition, Test, TimeUnit, Window,
};
use super::error::{Part, Position, SegmentError, Span};
use super::fields;
use super::lexer::{tokenize, Token, TokenKind};

type Phrase = &'static [&'static str];

// Combinators and condition openings.
const AND: &[Phrase] = &[&["and"], &["e"]];
const OR: &[Phrase] = &[&["or"], &["ou"]];
const NOT: &[Phrase] = &[&["not"], &["nao"]];
const ALL_OF: &[Phrase] = &[&["all", "of"], &["todas", "as"]];
const ANY_OF: &[Phrase] = &[&["any", "of"], &["qualquer", "de"]];
const EVERYONE: &[Phrase] = &[&["everyone"], &["todos"]];
const NOBODY: &[Phrase] = &[&["nobody"], &["no", "one"], &["ninguem"]];
const IN_SEGMENT: &[Phrase] = &[&["in", "segment"], &["no", "segmento"], &["em", "segmento"]];
const PERFORMED: &[Phrase] = &[&["performed"], &["realizou"], &["fez"]];
const NOT_PERFORMED: &[Phrase] = &[
    &["has", "not", "performed"],
    &["did", "not", "perform"],
    &["never", "performed"],
    &["nunca", "realizou"],
    &["nunca", "fez"],
];
// Event clauses.
const AT_LEAST: &[Phrase] = &[&["at", "least"], &["pelo", "menos"], &["no", "minimo"]];
const AT_MOST: &[Phrase] = &[&["at", "most"], &["no", "maximo"]];
const EXACTLY: &[Phrase] = &[&["exactly"], &["exatamente"]];
const TIMES: &[Phrase] = &[&["times"], &["time"], &["vezes"], &["vez"]];
const EVER: &[Phrase] = &[&["ever"], &["alguma", "vez"]];
const WHERE: &[Phrase] = &[&["where"], &["onde"], &["com"]];
// Time.
const IN_THE_LAST: &[Phrase] = &[
    &["in", "the", "last"],
    &["within", "the", "last"],
    &["nos", "ultimos"],
    &["nas", "ultimas"],
    &["no", "ultimo"],
    &["na", "ultima"],
];
const WITHIN: &[Phrase] = &[&["within"]];
const IN_THE_NEXT: &[Phrase] = &[
    &["in", "the", "next"],
    &["nos", "proximos"],
    &["nas", "proximas"],
];
const WITHIN_THE_NEXT: &[Phrase] = &[&["within", "the", "next"]];
const MORE_THAN: &[Phrase] = &[&["more", "than"]];
const LESS_THAN: &[Phrase] = &[&["less", "than"]];
const AGO: &[Phrase] = &[&["ago"]];
const HA_MAIS_DE: &[Phrase] = &[&["ha", "mais", "de"]];
const HA_MENOS_DE: &[Phrase] = &[&["ha", "menos", "de"]];
const BETWEEN: &[Phrase] = &[&["between"], &["entre"]];
const BEFORE: &[Phrase] = &[&["before"], &["antes", "de"]];
const AFTER: &[Phrase] = &[&["after"], &["depois", "de"], &["apos"]];
const ANNIVERSARY: &[Phrase] = &[&["anniversary"], &["aniversario"]];
const THIS_MONTH: &[Phrase] = &[&["this", "month"], &["este", "mes"], &["neste", "mes"]];
const TODAY: &[Phrase] = &[&["today"], &["hoje"]];
// Attribute tests.
const IS_NOT_SET: &[Phrase] = &[&["is", "not", "set"], &["nao", "esta", "preenchido"]];
const IS_SET: &[Phrase] = &[&["is", "set"], &["esta", "preenchido"]];
const IS_NOT: &[Phrase] = &[&["is", "not"], &["nao", "e"]];
const IS: &[Phrase] = &[&["is"], &["e"]];
const NOT_CONTAINS: &[Phrase] = &[
    &["does", "not", "contain"],
    &["not", "contains"],
    &["nao", "contem"],
];
const CONTAINS: &[Phrase] = &[&["contains"], &["contem"]];
const STARTS_WITH: &[Phrase] = &[&["starts", "with"], &["comeca", "com"]];
const NOT_IN: &[Phrase] = &[&["not", "in"], &["nao", "em"], &["fora", "de"]];
const IN: &[Phrase] = &[&["in"], &["em"]];
const TRUE: &[Phrase] = &[&["true"], &["verdadeiro"]];
const FALSE: &[Phrase] = &[&["false"], &["falso"]];

/// Words that open a condition; a name spelled like one must be written in backticks.
const CONDITION_OPENINGS: &[&[Phrase]] = &[
    NOT,
    ALL_OF,
    ANY_OF,
    EVERYONE,
    NOBODY,
    IN_SEGMENT,
    PERFORMED,
    NOT_PERFORMED,
];

/// Whether a name must be quoted in backticks when it starts a condition.
pub(crate) fn is_reserved(folded: &str) -> bool {
    CONDITION_OPENINGS
        .iter()
        .flat_map(|alternatives| alternatives.iter())
        .any(|phrase| phrase[0] == folded)
}

/// Units by folded spelling, singular and plural, English and Portuguese.
const UNITS: &[(&str, TimeUnit)] = &[
    ("minute", TimeUnit::Minutes),
    ("minutes", TimeUnit::Minutes),
    ("minuto", TimeUnit::Minutes),
    ("minutos", TimeUnit::Minutes),
    ("hour", TimeUnit::Hours),
    ("hours", TimeUnit::Hours),
    ("hora", TimeUnit::Hours),
    ("horas", TimeUnit::Hours),
    ("day", TimeUnit::Days),
    ("days", TimeUnit::Days),
    ("dia", TimeUnit::Days),
    ("dias", TimeUnit::Days),
    ("week", TimeUnit::Weeks),
    ("weeks", TimeUnit::Weeks),
    ("semana", TimeUnit::Weeks),
    ("semanas", TimeUnit::Weeks),
    ("month", TimeUnit::Months),
    ("months", TimeUnit::Months),
    ("mes", TimeUnit::Months),
    ("meses", TimeUnit::Months),
    ("year", TimeUnit::Years),
    ("years", TimeUnit::Years),
    ("ano", TimeUnit::Years),
    ("anos", TimeUnit::Years),
];

/// How deep groups may nest; deeper text is refused rather than risking the stack.
pub const MAX_DEPTH: usize = 64;

/// Where each part of a parsed expression came from. The tree mirrors [`Expr`]: one node per
/// expression node, `children` in the same order as [`Expr::children`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanTree {
    pub span: Span,
    pub parts: Vec<(Part, Span)>,
    pub children: Vec<SpanTree>,
}

impl SpanTree {
    fn leaf(span: Span, parts: Vec<(Part, Span)>) -> SpanTree {
        SpanTree {
            span,
            parts,
            children: Vec::new(),
        }
    }

    /// The node at `path` (child indices from the root).
    pub fn node(&self, path: &[usize]) -> Option<&SpanTree> {
        match path.split_first() {
            None => Some(self),
            Some((first, rest)) => self.children.get(*first)?.node(rest),
        }
    }

    /// The span of one part of the node at `path`, or of the whole node.
    pub fn span_of(&self, path: &[usize], part: Part) -> Option<Span> {
        let node = self.node(path)?;
        Some(
            node.parts
                .iter()
                .find(|(p, _)| *p == part)
                .map_or(node.span, |(_, span)| *span),
        )
    }

    /// The error with its text position filled in from its AST location (when it has one and
    /// no position yet).
    pub fn locate(&self, mut error: SegmentError) -> SegmentError {
        if error.position.is_none() {
            if let Some(location) = &error.location {
                error.position = self
                    .span_of(&location.node, location.part)
                    .map(|span| span.start);
            }
        }
        error
    }
}

/// An expression parsed from text, with the spans that let later errors point into the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub expr: Expr,
    pub spans: SpanTree,
}

impl Parsed {
    /// [`super::validate`] with text positions on the errors.
    pub fn validate(&self) -> Result<(), Vec<SegmentError>> {
        super::validate::validate(&self.expr)
            .map_err(|errors| errors.into_iter().map(|e| self.spans.locate(e)).collect())
    }

    /// [`super::check_references`] with a text position on the error.
    pub fn check_references(
        &self,
        segment_id: &str,
        lookup: &dyn Fn(&str) -> Option<super::ResolvedSegment>,
    ) -> Result<(), SegmentError> {
        super::validate::check_references(segment_id, &self.expr, lookup)
            .map_err(|e| self.spans.locate(e))
    }
}

/// Parses segment text into its AST.
pub fn parse(text: &str) -> Result<Expr, SegmentError> {
    parse_with_spans(text).map(|parsed| parsed.expr)
}

/// Parses segment text, keeping where each node came from.
pub fn parse_with_spans(text: &str) -> Result<Parsed, SegmentError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        text,
        tokens,
        at: 0,
        depth: 0,
    };
    let (expr, spans) = parser.or()?;
    if parser.peek().kind != TokenKind::End {
        return Err(parser.expected("\"and\", \"or\" or the end of the text", None));
    }
    Ok(Parsed { expr, spans })
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

type Node = (Expr, SpanTree);

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.peek_n(0)
    }

    fn peek_n(&self, n: usize) -> &Token {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.at + n).min(last)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::End {
            self.at += 1;
        }
        token
    }

    fn folded_n(&self, n: usize) -> Option<&str> {
        match &self.peek_n(n).kind {
            TokenKind::Word { folded, .. } => Some(folded),
            _ => None,
        }
    }

    /// The length of the first alternative that the next words spell, if any.
    fn matches(&self, alternatives: &[Phrase]) -> Option<usize> {
        alternatives
            .iter()
            .find(|phrase| {
                phrase
                    .iter()
                    .enumerate()
                    .all(|(i, word)| self.folded_n(i) == Some(word))
            })
            .map(|phrase| phrase.len())
    }

    /// Consumes the phrase when the next words spell it, returning its span.
    fn eat(&mut self, alternatives: &[Phrase]) -> Option<Span> {
        let len = self.matches(alternatives)?;
        let start = self.peek().span;
        let mut end = start;
        for _ in 0..len {
            end = self.advance().span;
        }
        Some(start.to(end))
    }

    fn eat_kind(&mut self, kind: &TokenKind) -> Option<Span> {
        (&self.peek().kind == kind).then(|| self.advance().span)
    }

    fn slice(&self, span: Span) -> &str {
        &self.text[span.start.offset..span.end.offset]
    }

    fn previous_end(&self) -> Position {
        if self.at == 0 {
            Position::START
        } else {
            self.tokens[self.at - 1].span.end
        }
    }

    /// "expected WHAT after "AFTER", found TOKEN", at the next token.
    fn expected(&self, what: &str, after: Option<Span>) -> SegmentError {
        let token = self.peek();
        let after = after
            .map(|span| format!(" after \"{}\"", self.slice(span)))
            .unwrap_or_default();
        SegmentError::syntax(
            format!("expected {what}{after}, found {}", token.kind.describe()),
            token.span.start,
        )
    }

    fn span_from(&self, start: Span) -> Span {
        Span::new(start.start, self.previous_end().max(start.end))
    }

    // expr := and ("or" and)*
    fn or(&mut self) -> Result<Node, SegmentError> {
        let first = self.and()?;
        if self.matches(OR).is_none() {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(OR).is_some() {
            items.push(self.and()?);
        }
        Ok(group(items, |any| Expr::Or { any }))
    }

    // and := unary ("and" unary)*
    fn and(&mut self) -> Result<Node, SegmentError> {
        let first = self.unary()?;
        if self.matches(AND).is_none() {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(AND).is_some() {
            items.push(self.unary()?);
        }
        Ok(group(items, |all| Expr::And { all }))
    }

    // unary := "not" unary | primary
    fn unary(&mut self) -> Result<Node, SegmentError> {
        if let Some(start) = self.eat(NOT) {
            let (inner, inner_spans) = self.nested(|p| p.unary())?;
            let span = start.to(inner_spans.span);
            return Ok((
                Expr::not(inner),
                SpanTree {
                    span,
                    parts: Vec::new(),
                    children: vec![inner_spans],
                },
            ));
        }
        self.primary()
    }

    /// Runs `parse` one level deeper, refusing text that nests too deeply.
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, SegmentError>,
    ) -> Result<T, SegmentError> {
        if self.depth >= MAX_DEPTH {
            return Err(SegmentError::syntax(
                format!("the conditions nest too deeply (more than {MAX_DEPTH} levels)"),
                self.peek().span.start,
            ));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn primary(&mut self) -> Result<Node, SegmentError> {
        let start = self.peek().span;
        if self.peek().kind == TokenKind::LParen {
            self.advance();
            let (expr, mut spans) = self.nested(|p| p.or())?;
            self.close(TokenKind::RParen, start)?;
            // The parentheses belong to the node: errors on a group point at its "(".
            spans.span = self.span_from(start);
            return Ok((expr, spans));
        }
        for (alternatives, is_and) in [(ALL_OF, true), (ANY_OF, false)] {
            if let Some(len) = self.matches(alternatives) {
                if self.peek_n(len).kind == TokenKind::LParen {
                    return self.explicit_group(alternatives, is_and, start);
                }
            }
        }
        if self.eat(EVERYONE).is_some() {
            return Ok((
                Expr::And { all: Vec::new() },
                SpanTree::leaf(self.span_from(start), Vec::new()),
            ));
        }
        if self.eat(NOBODY).is_some() {
            return Ok((
                Expr::Or { any: Vec::new() },
                SpanTree::leaf(self.span_from(start), Vec::new()),
            ));
        }
        if let Some(keyword) = self.eat(IN_SEGMENT) {
            let (segment, subject) = self.name("a segment name in quotes", keyword)?;
            let span = self.span_from(start);
            return Ok((
                Expr::Segment(SegmentCondition { segment }),
                SpanTree::leaf(span, vec![(Part::Subject, subject)]),
            ));
        }
        if let Some(keyword) = self.eat(NOT_PERFORMED) {
            return self.event(start, keyword, false);
        }
        if let Some(keyword) = self.eat(PERFORMED) {
            return self.event(start, keyword, true);
        }
        if matches!(
            self.peek().kind,
            TokenKind::Word { .. } | TokenKind::Name(_)
        ) {
            return self.attribute_condition(start);
        }
        Err(self.expected("a condition (an attribute such as city, \"performed\", \"in segment\", \"not\" or \"(\")", None))
    }

    fn close(&mut self, kind: TokenKind, open: Span) -> Result<Span, SegmentError> {
        match self.eat_kind(&kind) {
            Some(span) => Ok(span),
            None => Err(self.expected(
                &format!(
                    "\"{}\" to close the \"{}\" at {}",
                    kind.symbol(),
                    self.slice(open),
                    open.start
                ),
                None,
            )),
        }
    }

    // all of ( expr, expr, … ) — keeps the group exactly, even with one or no children.
    fn explicit_group(
        &mut self,
        alternatives: &[Phrase],
        is_and: bool,
        start: Span,
    ) -> Result<Node, SegmentError> {
        self.eat(alternatives);
        let open = self.advance().span;
        let mut items = Vec::new();
        if self.eat_kind(&TokenKind::RParen).is_none() {
            loop {
                items.push(self.nested(|p| p.or())?);
                if self.eat_kind(&TokenKind::Comma).is_none() {
                    break;
                }
            }
            self.close(TokenKind::RParen, open)?;
        }
        let (exprs, children): (Vec<Expr>, Vec<SpanTree>) = items.into_iter().unzip();
        let expr = if is_and {
            Expr::And { all: exprs }
        } else {
            Expr::Or { any: exprs }
        };
        Ok((
            expr,
            SpanTree {
                span: self.span_from(start),
                parts: Vec::new(),
                children,
            },
        ))
    }

    /// A name given as quoted text, a bare word or a backticked name.
    fn name(&mut self, what: &str, after: Span) -> Result<(String, Span), SegmentError> {
        let token = self.peek().clone();
        let name = match token.kind {
            TokenKind::Text(t) | TokenKind::Name(t) => t,
            TokenKind::Word { raw, .. } => raw,
            _ => return Err(self.expected(what, Some(after))),
        };
        self.advance();
        Ok((name, token.span))
    }

    // event := performed NAME clause* | has not performed NAME clause*
    // clause := count | window | where   (each at most once, any order)
    fn event(&mut self, start: Span, keyword: Span, positive: bool) -> Result<Node, SegmentError> {
        let (event, subject) = self.name("an event name in quotes", keyword)?;
        let mut parts = vec![(Part::Subject, subject)];
        let mut count = if positive {
            None
        } else {
            Some(Count::Exactly { times: 0 })
        };
        let mut window = None;
        let mut filters = None;
        loop {
            let clause_start = self.peek().span;
            if count.is_none() {
                if let Some(c) = self.count()? {
                    count = Some(c);
                    parts.push((Part::Count, self.span_from(clause_start)));
                    continue;
                }
            }
            if window.is_none() {
                if let Some(w) = self.window()? {
                    window = Some(w);
                    parts.push((Part::Window, self.span_from(clause_start)));
                    continue;
                }
            }
            if filters.is_none() {
                if let Some(keyword) = self.eat(WHERE) {
                    filters = Some(self.filters(keyword, &mut parts)?);
                    continue;
                }
            }
            break;
        }
        let condition = EventCondition {
            event,
            count: count.unwrap_or_default(),
            window: window.unwrap_or_default(),
            filters: filters.unwrap_or_default(),
        };
        Ok((
            Expr::Event(condition),
            SpanTree::leaf(self.span_from(start), parts),
        ))
    }

    fn count(&mut self) -> Result<Option<Count>, SegmentError> {
        let build: fn(u64) -> Count;
        let keyword = if let Some(k) = self.eat(AT_LEAST) {
            build = |times| Count::AtLeast { times };
            k
        } else if let Some(k) = self.eat(AT_MOST) {
            build = |times| Count::AtMost { times };
            k
        } else if let Some(k) = self.eat(EXACTLY) {
            build = |times| Count::Exactly { times };
            k
        } else {
            return Ok(None);
        };
        let (times, _) = self.whole_number(keyword)?;
        self.eat(TIMES);
        Ok(Some(build(times)))
    }

    fn window(&mut self) -> Result<Option<Window>, SegmentError> {
        if self.eat(EVER).is_some() {
            return Ok(Some(Window::Ever));
        }
        if let Some(keyword) = self.eat(IN_THE_LAST).or_else(|| {
            // Plain "within" only when "the next" does not follow (that is not a window).
            (self.matches(WITHIN_THE_NEXT).is_none())
                .then(|| self.eat(WITHIN))
                .flatten()
        }) {
            let (amount, unit) = self.amount_and_unit(keyword)?;
            return Ok(Some(Window::Last { amount, unit }));
        }
        if let Some(keyword) = self.eat(BETWEEN) {
            let (from, to) = self.date_range(keyword)?;
            return Ok(Some(Window::Between { from, to }));
        }
        Ok(None)
    }

    // where := "where" filter | "where" "(" filter ("and" filter)* ")"
    fn filters(
        &mut self,
        keyword: Span,
        parts: &mut Vec<(Part, Span)>,
    ) -> Result<Vec<PropertyFilter>, SegmentError> {
        let mut filters = Vec::new();
        if let Some(open) = self.eat_kind(&TokenKind::LParen) {
            filters.push(self.filter(0, open, parts)?);
            while let Some(and) = self.eat(AND) {
                filters.push(self.filter(filters.len(), and, parts)?);
            }
            self.close(TokenKind::RParen, open)?;
        } else {
            filters.push(self.filter(0, keyword, parts)?);
        }
        Ok(filters)
    }

    // filter := ["properties."] path test
    fn filter(
        &mut self,
        index: usize,
        after: Span,
        parts: &mut Vec<(Part, Span)>,
    ) -> Result<PropertyFilter, SegmentError> {
        if !matches!(
            self.peek().kind,
            TokenKind::Word { .. } | TokenKind::Name(_)
        ) {
            return Err(self.expected("a property name", Some(after)));
        }
        let (mut property, property_span) = self.path()?;
        // `properties.category` and `category` name the same property.
        if let Some(rest) = property.strip_prefix("properties.") {
            property = rest.to_string();
        }
        let (test, test_span) = self.test(&property, property_span)?;
        parts.push((Part::FilterProperty(index), property_span));
        parts.push((Part::FilterTest(index), test_span));
        Ok(PropertyFilter { property, test })
    }

    /// A dotted name: `city`, `traits.plan`, ``traits.`favourite colour` ``.
    fn path(&mut self) -> Result<(String, Span), SegmentError> {
        let start = self.peek().span;
        let mut path = String::new();
        loop {
            match self.peek().kind.clone() {
                TokenKind::Word { raw, .. } => path.push_str(&raw),
                TokenKind::Name(name) => path.push_str(&name),
                _ => return Err(self.expected("a name", None)),
            }
            self.advance();
            if self.peek().kind != TokenKind::Dot {
                break;
            }
            let dot = self.advance().span;
            if !matches!(
                self.peek().kind,
                TokenKind::Word { .. } | TokenKind::Name(_)
            ) {
                return Err(self.expected("a name", Some(dot)));
            }
            path.push('.');
        }
        Ok((path, self.span_from(start)))
    }

    fn attribute_condition(&mut self, start: Span) -> Result<Node, SegmentError> {
        let (attribute, subject) = self.path()?;
        let (test, test_span) = self.test(&attribute, subject)?;
        let parts = vec![(Part::Subject, subject), (Part::Test, test_span)];
        Ok((
            Expr::Attribute(AttributeCondition { attribute, test }),
            SpanTree::leaf(self.span_from(start), parts),
        ))
    }

    /// The test after an attribute or property name.
    fn test(&mut self, subject: &str, subject_span: Span) -> Result<(Test, Span), SegmentError> {
        let start = self.peek().span;
        let test = self.test_inner(subject, subject_span)?;
        Ok((test, self.span_from(start)))
    }

    fn test_inner(&mut self, subject: &str, subject_span: Span) -> Result<Test, SegmentError> {
        let operator = self.peek().span;
        match self.peek().kind {
            TokenKind::Eq => {
                self.advance();
                return Ok(Test::Eq {
                    value: self.literal(operator, false)?,
                });
            }
            TokenKind::NotEq => {
                self.advance();
                return Ok(Test::NotEq {
                    value: self.literal(operator, false)?,
                });
            }
            TokenKind::Lt | TokenKind::Lte | TokenKind::Gt | TokenKind::Gte => {
                let kind = self.advance().kind;
                let value = self.number(operator)?;
                return Ok(match kind {
                    TokenKind::Lt => Test::Lt { value },
                    TokenKind::Lte => Test::Lte { value },
                    TokenKind::Gt => Test::Gt { value },
                    _ => Test::Gte { value },
                });
            }
            _ => {}
        }
        if self.eat(IS_NOT_SET).is_some() {
            return Ok(Test::IsNotSet);
        }
        if self.eat(IS_SET).is_some() {
            return Ok(Test::IsSet);
        }
        if let Some(k) = self.eat(IS_NOT) {
            return Ok(Test::NotEq {
                value: self.literal(k, true)?,
            });
        }
        if let Some(k) = self.eat(IS) {
            return Ok(Test::Eq {
                value: self.literal(k, true)?,
            });
        }
        if let Some(k) = self.eat(NOT_CONTAINS) {
            return Ok(Test::NotContains {
                value: self.literal(k, false)?,
            });
        }
        if let Some(k) = self.eat(CONTAINS) {
            return Ok(Test::Contains {
                value: self.literal(k, false)?,
            });
        }
        if let Some(k) = self.eat(STARTS_WITH) {
            return match self.peek().kind.clone() {
                TokenKind::Text(value) => {
                    self.advance();
                    Ok(Test::StartsWith { value })
                }
                _ => Err(self.expected("text in quotes", Some(k))),
            };
        }
        if let Some(k) = self.eat(NOT_IN) {
            return Ok(Test::NotIn {
                values: self.list(k)?,
            });
        }
        let birthday = fields::is_birthday(subject);
        if let Some(k) = self.eat(ANNIVERSARY) {
            return match self.anniversary()? {
                Some(test) => Ok(test),
                None => Err(self.expected(
                    "\"this month\", \"today\" or \"in the next N days\"",
                    Some(k),
                )),
            };
        }
        if birthday {
            if let Some(test) = self.anniversary()? {
                return Ok(test);
            }
        }
        if let Some(k) = self.eat(IN_THE_LAST) {
            let (amount, unit) = self.amount_and_unit(k)?;
            return Ok(Test::WithinLast { amount, unit });
        }
        if let Some(k) = self.eat(WITHIN_THE_NEXT) {
            let (amount, unit) = self.amount_and_unit(k)?;
            return Ok(Test::InNext { amount, unit });
        }
        if let Some(k) = self.eat(IN_THE_NEXT) {
            // For the birthday field "in the next" was taken above as its anniversary.
            let (amount, unit) = self.amount_and_unit(k)?;
            return Ok(Test::InNext { amount, unit });
        }
        if let Some(k) = self.eat(WITHIN) {
            let (amount, unit) = self.amount_and_unit(k)?;
            return Ok(Test::WithinLast { amount, unit });
        }
        if let Some(k) = self.eat(IN) {
            return Ok(Test::In {
                values: self.list(k)?,
            });
        }
        if let Some(k) = self.eat(MORE_THAN) {
            let (amount, unit) = self.amount_and_unit(k)?;
            self.ago()?;
            return Ok(Test::MoreThanAgo { amount, unit });
        }
        if let Some(k) = self.eat(LESS_THAN) {
            let (amount, unit) = self.amount_and_unit(k)?;
            self.ago()?;
            return Ok(Test::WithinLast { amount, unit });
        }
        if let Some(k) = self.eat(HA_MAIS_DE) {
            let (amount, unit) = self.amount_and_unit(k)?;
            return Ok(Test::MoreThanAgo { amount, unit });
        }
        if let Some(k) = self.eat(HA_MENOS_DE) {
            let (amount, unit) = self.amount_and_unit(k)?;
            return Ok(Test::WithinLast { amount, unit });
        }
        if let Some(k) = self.eat(BETWEEN) {
            return self.between(k);
        }
        if let Some(k) = self.eat(BEFORE) {
            return Ok(Test::Before {
                date: self.date(k)?,
            });
        }
        if let Some(k) = self.eat(AFTER) {
            return Ok(Test::After {
                date: self.date(k)?,
            });
        }
        Err(self.expected(
            "an operator (=, !=, <, >, contains, starts with, in, is set, between, before, after, within, …)",
            Some(subject_span),
        ))
    }

    /// The `ago` that closes `more than N days ago`.
    fn ago(&mut self) -> Result<(), SegmentError> {
        let unit_span = self.tokens[self.at - 1].span;
        match self.eat(AGO) {
            Some(_) => Ok(()),
            None => Err(self.expected("\"ago\"", Some(unit_span))),
        }
    }

    /// `this month`, `today` or `in the next N days` after `anniversary`, or after `birthday`
    /// (where the word may be left out).
    fn anniversary(&mut self) -> Result<Option<Test>, SegmentError> {
        if self.eat(THIS_MONTH).is_some() {
            return Ok(Some(Test::AnniversaryThisMonth));
        }
        if self.eat(TODAY).is_some() {
            return Ok(Some(Test::AnniversaryToday));
        }
        if let Some(k) = self.eat(IN_THE_NEXT) {
            let (amount, unit) = self.amount_and_unit(k)?;
            if unit != TimeUnit::Days {
                let unit_span = self.tokens[self.at - 1].span;
                return Err(SegmentError::syntax(
                    format!("anniversaries are counted in days: expected \"days\" after {amount}"),
                    unit_span.start,
                ));
            }
            return Ok(Some(Test::AnniversaryInNextDays { days: amount }));
        }
        Ok(None)
    }

    fn between(&mut self, keyword: Span) -> Result<Test, SegmentError> {
        if let TokenKind::Number(_) = self.peek().kind {
            let low = self.number(keyword)?;
            let and = self.expect(AND, "\"and\"", self.tokens[self.at - 1].span)?;
            let high = self.number(and)?;
            return Ok(Test::Between { low, high });
        }
        if matches!(self.peek().kind, TokenKind::Date(..) | TokenKind::Text(_)) {
            let (from, to) = self.date_range(keyword)?;
            return Ok(Test::BetweenDates { from, to });
        }
        Err(self.expected("a number or a date", Some(keyword)))
    }

    fn date_range(&mut self, keyword: Span) -> Result<(DateValue, DateValue), SegmentError> {
        let from = self.date(keyword)?;
        let and = self.expect(AND, "\"and\"", self.tokens[self.at - 1].span)?;
        let to = self.date(and)?;
        Ok((from, to))
    }

    fn expect(
        &mut self,
        alternatives: &[Phrase],
        what: &str,
        after: Span,
    ) -> Result<Span, SegmentError> {
        match self.eat(alternatives) {
            Some(span) => Ok(span),
            None => Err(self.expected(what, Some(after))),
        }
    }

    fn date(&mut self, after: Span) -> Result<DateValue, SegmentError> {
        let what = "a date (2024-01-31 or 2024-01-31T10:00:00Z)";
        match self.peek().kind.clone() {
            TokenKind::Date(date, _) => {
                self.advance();
                Ok(date)
            }
            TokenKind::Text(text) => match DateValue::parse(&text) {
                Some(date) => {
                    self.advance();
                    Ok(date)
                }
                None => Err(self.expected(what, Some(after))),
            },
            _ => Err(self.expected(what, Some(after))),
        }
    }

    fn number(&mut self, after: Span) -> Result<serde_json::Number, SegmentError> {
        match self.peek().kind.clone() {
            TokenKind::Number(n) => {
                self.advance();
                Ok(n)
            }
            _ => Err(self.expected("a number", Some(after))),
        }
    }

    fn whole_number(&mut self, after: Span) -> Result<(u64, Span), SegmentError> {
        match self.peek().kind.clone() {
            TokenKind::Number(n) if n.as_u64().is_some() => {
                let span = self.advance().span;
                Ok((n.as_u64().unwrap_or_default(), span))
            }
            _ => Err(self.expected("a whole number", Some(after))),
        }
    }

    fn amount_and_unit(&mut self, after: Span) -> Result<(u32, TimeUnit), SegmentError> {
        let (amount, amount_span) = self.whole_number(after)?;
        let Ok(amount) = u32::try_from(amount) else {
            return Err(SegmentError::syntax(
                format!("{amount} is too large"),
                amount_span.start,
            ));
        };
        let unit = self
            .folded_n(0)
            .and_then(|word| UNITS.iter().find(|(w, _)| *w == word))
            .map(|(_, unit)| *unit);
        match unit {
            Some(unit) => {
                self.advance();
                Ok((amount, unit))
            }
            None => Err(self.expected(
                "a time unit (minutes, hours, days, weeks, months or years)",
                Some(amount_span),
            )),
        }
    }

    /// A value: text, number, true/false; a date is kept as its text. After `is`, a bare word is
    /// text too (`lifecycle is retention`).
    fn literal(&mut self, after: Span, bare_words: bool) -> Result<Literal, SegmentError> {
        let literal = match self.peek().kind.clone() {
            TokenKind::Text(t) => Literal::Text(t),
            TokenKind::Number(n) => Literal::Number(n),
            TokenKind::Date(_, raw) => Literal::Text(raw),
            TokenKind::Word { .. } if self.matches(TRUE).is_some() => Literal::Bool(true),
            TokenKind::Word { .. } if self.matches(FALSE).is_some() => Literal::Bool(false),
            TokenKind::Word { raw, .. } if bare_words => Literal::Text(raw),
            _ => {
                return Err(self.expected(
                    "a value (text in quotes, a number, true or false)",
                    Some(after),
                ))
            }
        };
        self.advance();
        Ok(literal)
    }

    // list := "(" [literal ("," literal)*] ")"   (brackets also accepted)
    fn list(&mut self, after: Span) -> Result<Vec<Literal>, SegmentError> {
        let close = match self.peek().kind {
            TokenKind::LParen => TokenKind::RParen,
            TokenKind::LBracket => TokenKind::RBracket,
            _ => {
                return Err(self.expected(
                    "a list of values in parentheses, such as (\"a\", \"b\")",
                    Some(after),
                ))
            }
        };
        let open = self.advance().span;
        let mut values = Vec::new();
        if self.eat_kind(&close).is_some() {
            return Ok(values);
        }
        loop {
            let previous = self.tokens[self.at - 1].span;
            values.push(self.literal(previous, false)?);
            if self.eat_kind(&TokenKind::Comma).is_none() {
                break;
            }
        }
        self.close(close, open)?;
        Ok(values)
    }
}

/// An `and`/`or` node from two or more parsed operands.
fn group(items: Vec<Node>, build: impl FnOnce(Vec<Expr>) -> Expr) -> Node {
    let span = items[0].1.span.to(items[items.len() - 1].1.span);
    let (exprs, children): (Vec<Expr>, Vec<SpanTree>) = items.into_iter().unzip();
    (
        build(exprs),
        SpanTree {
            span,
            parts: Vec::new(),
            children,
        },
    )
}
