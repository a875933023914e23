//! Splits segment text into tokens, each with its span, so that every later error can point at
//! a line and column.
//!
//! Words are compared by their *folded* form (lower case, Portuguese accents removed), which is
//! what makes `NOT`, `não` and `nao` the same keyword; attribute names keep their raw spelling.

use super::ast::DateValue;
use super::error::{Position, SegmentError, Span};
use serde_json::Number;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// An identifier or keyword.
    Word {
        raw: String,
        folded: String,
    },
    /// A `backtick-quoted` name: always a name, never a keyword.
    Name(String),
    /// A "quoted" or 'quoted' text.
    Text(String),
    Number(Number),
    /// `2024-01-31` or `2024-01-31T10:00:00Z`, with the text as written.
    Date(DateValue, String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    NotEq,
    Lt,
    Lte,
    Gt,
    Gte,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

impl TokenKind {
    /// How the token is named in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Word { raw, .. } => format!("\"{raw}\""),
            TokenKind::Name(n) => format!("`{n}`"),
            TokenKind::Text(t) => format!("the text {t:?}"),
            TokenKind::Number(n) => format!("the number {n}"),
            TokenKind::Date(_, raw) => format!("the date {raw}"),
            TokenKind::End => "the end of the text".to_string(),
            other => format!("\"{}\"", other.symbol()),
        }
    }

    /// The spelling of a punctuation token.
    pub fn symbol(&self) -> &'static str {
        match self {
            TokenKind::LParen => "(",
            TokenKind::RParen => ")",
            TokenKind::LBracket => "[",
            TokenKind::RBracket => "]",
            TokenKind::Comma => ",",
            TokenKind::Dot => ".",
            TokenKind::Eq => "=",
            TokenKind::NotEq => "!=",
            TokenKind::Lt => "<",
            TokenKind::Lte => "<=",
            TokenKind::Gt => ">",
            TokenKind::Gte => ">=",
            _ => "",
        }
    }
}

/// Lower case without the accents Portuguese uses, for keyword comparison (and, in the
/// evaluator, for text comparison: "Sao Paulo" finds "São Paulo").
pub(crate) fn fold(word: &str) -> String {
    folded_chars(word).collect()
}

/// The characters of [`fold`], without allocating.
pub(crate) fn folded_chars(word: &str) -> impl Iterator<Item = char> + '_ {
    word.chars().flat_map(char::to_lowercase).map(|c| match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        other => other,
    })
}

/// Whether `word` can be written bare (not in backticks) as a name.
pub(crate) fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    matches!(chars.next(), Some(c) if is_word_start(c)) && chars.all(is_word_continue)
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_word_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

struct Lexer<'a> {
    text: &'a str,
    position: Position,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.position.offset..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.text[self.position.offset..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.position.offset += c.len_utf8();
        if c == '\n' {
            self.position.line += 1;
            self.position.column = 1;
        } else {
            self.position.column += 1;
        }
        Some(c)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.position.offset;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        &self.text[start..self.position.offset]
    }

    fn quoted(&mut self, quote: char, what: &str) -> Result<String, SegmentError> {
        let start = self.position;
        self.bump();
        let mut out = String::new();
        loop {
            let here = self.position;
            match self.bump() {
                None => {
                    return Err(SegmentError::syntax(
                        format!("{what} is not closed: a {quote} is missing"),
                        start,
                    ));
                }
                Some(c) if c == quote => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('u') if self.peek() == Some('{') => {
                        self.bump();
                        let hex = self.bump_while(|c| c.is_ascii_hexdigit());
                        let code = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                        match (code, self.bump()) {
                            (Some(c), Some('}')) => out.push(c),
                            _ => {
                                return Err(SegmentError::syntax(
                                    "expected a \\u{…} escape with hex digits",
                                    here,
                                ))
                            }
                        }
                    }
                    Some(c @ ('\\' | '"' | '\'' | '`')) => out.push(c),
                    _ => {
                        return Err(SegmentError::syntax(
                            "unknown escape: use \\\\, \\\", \\', \\`, \\n, \\t, \\r or \\u{…}",
                            here,
                        ))
                    }
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// `2024-01-31` optionally followed by `T10:00:00Z`, when the next characters look like one.
    fn looks_like_date(&self) -> bool {
        (0..4).all(|i| self.peek_at(i).is_some_and(|c| c.is_ascii_digit()))
            && self.peek_at(4) == Some('-')
            && self.peek_at(5).is_some_and(|c| c.is_ascii_digit())
    }

    fn date(&mut self) -> Result<TokenKind, SegmentError> {
        let start = self.position;
        let mut raw = self
            .bump_while(|c| c.is_ascii_digit() || c == '-')
            .to_string();
        if matches!(self.peek(), Some('T' | 't'))
            && self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
        {
            raw.push_str(
                self.bump_while(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-')
                }),
            );
        }
        match DateValue::parse(&raw) {
            Some(date) => Ok(TokenKind::Date(date, raw)),
            None => Err(SegmentError::syntax(
                format!("{raw} is not a valid date (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"),
                start,
            )),
        }
    }

    fn number(&mut self) -> Result<TokenKind, SegmentError> {
        let start = self.position;
        let mut raw = String::new();
        if self.peek() == Some('-') {
            self.bump();
            raw.push('-');
        }
        raw.push_str(self.bump_while(|c| c.is_ascii_digit()));
        let mut float = false;
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            raw.push(self.bump().unwrap_or('.'));
            raw.push_str(self.bump_while(|c| c.is_ascii_digit()));
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = matches!(self.peek_at(1), Some('+' | '-'));
            let digit_at = if sign { 2 } else { 1 };
            if self.peek_at(digit_at).is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                raw.push(self.bump().unwrap_or('e'));
                if sign {
                    raw.push(self.bump().unwrap_or('+'));
                }
                raw.push_str(self.bump_while(|c| c.is_ascii_digit()));
            }
        }
        let number = if float {
            raw.parse::<f64>().ok().and_then(Number::from_f64)
        } else if let Ok(n) = raw.parse::<i64>() {
            Some(Number::from(n))
        } else if let Ok(n) = raw.parse::<u64>() {
            Some(Number::from(n))
        } else {
            raw.parse::<f64>().ok().and_then(Number::from_f64)
        };
        number.map(TokenKind::Number).ok_or_else(|| {
            SegmentError::syntax(format!("{raw} is not a number ciclo can hold"), start)
        })
    }

    fn next(&mut self) -> Result<Token, SegmentError> {
        self.bump_while(char::is_whitespace);
        let start = self.position;
        let Some(c) = self.peek() else {
            return Ok(Token {
                kind: TokenKind::End,
                span: Span::new(start, start),
            });
        };
        let single = |lexer: &mut Lexer, kind| {
            lexer.bump();
            Ok(kind)
        };
        let kind = match c {
            '(' => single(self, TokenKind::LParen),
            ')' => single(self, TokenKind::RParen),
            '[' => single(self, TokenKind::LBracket),
            ']' => single(self, TokenKind::RBracket),
            ',' => single(self, TokenKind::Comma),
            '.' => single(self, TokenKind::Dot),
            '≠' => single(self, TokenKind::NotEq),
            '≤' => single(self, TokenKind::Lte),
            '≥' => single(self, TokenKind::Gte),
            '=' => {
                self.bump();
                if self.peek() == Some('=') {
                    self.bump();
                }
                Ok(TokenKind::Eq)
            }
            '!' if self.peek_at(1) == Some('=') => {
                self.bump();
                single(self, TokenKind::NotEq)
            }
            '<' => {
                self.bump();
                match self.peek() {
                    Some('=') => single(self, TokenKind::Lte),
                    Some('>') => single(self, TokenKind::NotEq),
                    _ => Ok(TokenKind::Lt),
                }
            }
            '>' => {
                self.bump();
                if self.peek() == Some('=') {
                    single(self, TokenKind::Gte)
                } else {
                    Ok(TokenKind::Gt)
                }
            }
            '"' | '\'' => self.quoted(c, "the text").map(TokenKind::Text),
            '`' => self.quoted('`', "the name").map(TokenKind::Name),
            '-' if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) => self.number(),
            c if c.is_ascii_digit() && self.looks_like_date() => self.date(),
            c if c.is_ascii_digit() => self.number(),
            c if is_word_start(c) => {
                let raw = self.bump_while(is_word_continue).to_string();
                Ok(TokenKind::Word {
                    folded: fold(&raw),
                    raw,
                })
            }
            other => Err(SegmentError::syntax(
                format!("unexpected character {other:?}"),
                start,
            )),
        }?;
        Ok(Token {
            kind,
            span: Span::new(start, self.position),
        })
    }
}

/// The tokens of `text`, ending with [`TokenKind::End`].
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, SegmentError> {
    let mut lexer = Lexer {
        text,
        position: Position::START,
    };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next()?;
        let end = token.kind == TokenKind::End;
        tokens.push(token);
        if end {
            return Ok(tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    fn word(raw: &str) -> TokenKind {
        TokenKind::Word {
            raw: raw.into(),
            folded: fold(raw),
        }
    }

    #[test]
    fn tokens_cover_every_kind() {
        assert_eq!(
            kinds(r#"traits.plan != 'gold' <> "a\"b" <= >= < > == ( ) [ ] , `x y` -3 2.5e3 1e-7"#),
            vec![
                word("traits"),
                TokenKind::Dot,
                word("plan"),
                TokenKind::NotEq,
                TokenKind::Text("gold".into()),
                TokenKind::NotEq,
                TokenKind::Text("a\"b".into()),
                TokenKind::Lte,
                TokenKind::Gte,
                TokenKind::Lt,
                TokenKind::Gt,
                TokenKind::Eq,
                TokenKind::LParen,
                TokenKind::RParen,
                TokenKind::LBracket,
                TokenKind::RBracket,
                TokenKind::Comma,
                TokenKind::Name("x y".into()),
                TokenKind::Number((-3).into()),
                TokenKind::Number(Number::from_f64(2500.0).unwrap()),
                TokenKind::Number(Number::from_f64(1e-7).unwrap()),
                TokenKind::End,
            ]
        );
    }

    #[test]
    fn dates_and_instants_are_single_tokens() {
        let d = |s: &str| TokenKind::Date(DateValue::parse(s).unwrap(), s.into());
        assert_eq!(
            kinds("2024-02-29 2024-01-31T10:00:00-03:00)"),
            vec![
                d("2024-02-29"),
                d("2024-01-31T10:00:00-03:00"),
                TokenKind::RParen,
                TokenKind::End
            ]
        );
        let e = tokenize("x before 2023-02-29").unwrap_err();
        assert_eq!(
            (e.position.unwrap().column, e.code.as_str()),
            (10, "syntax_error")
        );
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let tokens = tokenize("não\n  \"Calçados\" x").unwrap();
        assert_eq!(
            tokens[0].kind,
            TokenKind::Word {
                raw: "não".into(),
                folded: "nao".into()
            }
        );
        let x = &tokens[2].span.start;
        assert_eq!((x.line, x.column, x.offset), (2, 14, 19));
    }

    #[test]
    fn broken_text_is_reported_where_it_starts() {
        let e = tokenize("city = \"Recife").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the text is not closed: a \" is missing at 1:8"
        );
        let e = tokenize("city ~ 3").unwrap_err();
        assert_eq!(e.to_string(), "unexpected character '~' at 1:6");
    }
}
