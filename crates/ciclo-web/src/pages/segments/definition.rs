//! What the editor says about a definition that core refused: each error in the operator's
//! language, with its line and column, the stretch of text it is about highlighted in a copy of
//! the line, and where to put the cursor in the textarea.
//!
//! Core reports syntax errors with `line:column` (field `definition.3:14`) and the errors found
//! on the parsed expression (unknown attribute, wrong type, unknown segment, loops) with a JSON
//! pointer into the expression (`definition/all/1/test`). The pointer is turned into a text
//! position by parsing the same text here with its spans ([`parse_with_spans`]): the parser is
//! the domain's, so the stretch is exactly the one the pointer names.

use crate::i18n::{fill, Locale};
use ciclo_domain::segment::{parse_with_spans, Part, Position};
use ciclo_domain::FieldError;
use minijinja::{context, Value};

/// Longest stretch of text quoted in a message.
const NEAR_MAX: usize = 40;

/// Whether a core error is about the definition.
pub(crate) fn is_definition_error(error: &FieldError) -> bool {
    error.field == "definition"
        || error.field.starts_with("definition.")
        || error.field.starts_with("definition/")
}

/// A located stretch of the text: byte offsets, and the 1-based line and column of its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stretch {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
}

/// The byte offset of a 1-based line and (character) column, clamped to the text.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            let within: usize = l
                .chars()
                .take(column.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return offset + within;
        }
        offset += l.len() + 1;
    }
    text.len()
}

/// The token that starts at `offset`, for a syntax error: a word, a quoted text, an operator
/// or one character. Empty at the end of the text.
fn token_end(text: &str, offset: usize) -> usize {
    let rest = &text[offset.min(text.len())..];
    let mut chars = rest.char_indices();
    let Some((_, first)) = chars.next() else {
        return offset;
    };
    let len = if first == '"' || first == '`' {
        rest[1..]
            .find(first)
            .map_or(rest.find('\n').unwrap_or(rest.len()), |i| i + 2)
    } else if first.is_alphanumeric() || first == '_' {
        rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-'))
            .unwrap_or(rest.len())
    } else if "<>=!".contains(first) {
        rest.find(|c: char| !"<>=!".contains(c))
            .unwrap_or(rest.len())
    } else {
        first.len_utf8()
    };
    offset + len
}

fn stretch_from(text: &str, start: Position, end: Option<usize>) -> Stretch {
    let start_offset = start.offset.min(text.len());
    let end = end
        .unwrap_or_else(|| token_end(text, start_offset))
        .clamp(start_offset, text.len());
    Stretch {
        start: start_offset,
        end,
        line: start.line,
        column: start.column,
    }
}

/// `/all/1/where/0/test` → the child path `[1]` and the part `FilterTest(0)`.
fn pointer_location(pointer: &str) -> (Vec<usize>, Part) {
    let pieces: Vec<&str> = pointer.split('/').filter(|s| !s.is_empty()).collect();
    let mut path = Vec::new();
    let mut i = 0;
    while i < pieces.len() {
        match pieces[i] {
            "all" | "any" => match pieces.get(i + 1).and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => {
                    path.push(n);
                    i += 2;
                }
                None => break,
            },
            "expr" => {
                path.push(0);
                i += 1;
            }
            _ => break,
        }
    }
    let filter = |n: Option<&&str>| n.and_then(|n| n.parse::<usize>().ok());
    let part = match pieces.get(i).copied() {
        Some("attribute" | "event" | "segment") => Part::Subject,
        Some("test") => Part::Test,
        Some("count") => Part::Count,
        Some("window") => Part::Window,
        Some("where") => match (filter(pieces.get(i + 1)), pieces.get(i + 2).copied()) {
            (Some(n), Some("property")) => Part::FilterProperty(n),
            (Some(n), _) => Part::FilterTest(n),
            _ => Part::Node,
        },
        _ => Part::Node,
    };
    (path, part)
}

/// `(line 3, column 14)` in a reason, as core writes the position of a syntax error.
fn reason_position(reason: &str) -> Option<(usize, usize)> {
    let rest = reason.rsplit_once("(line ")?.1;
    let (line, rest) = rest.split_once(", column ")?;
    let column = rest.split_once(')')?.0;
    Some((line.trim().parse().ok()?, column.trim().parse().ok()?))
}

/// Where in `text` a core error about the definition lies, if it says.
pub(crate) fn locate(text: &str, error: &FieldError) -> Option<Stretch> {
    let field = error.field.as_str();
    let written = field
        .strip_prefix("definition.")
        .and_then(|p| p.split_once(':'))
        .and_then(|(l, c)| Some((l.parse().ok()?, c.parse().ok()?)))
        .or_else(|| reason_position(&error.reason));
    if error.code == "syntax_error" || written.is_some() && !field.starts_with("definition/") {
        // A syntax error: the same parser here gives the exact offset; the line and column
        // core sent are the fallback.
        if let Err(e) = parse_with_spans(text) {
            if let Some(at) = e.position {
                return Some(stretch_from(text, at, None));
            }
        }
        let (line, column) = written?;
        let at = Position {
            offset: offset_of(text, line, column),
            line,
            column,
        };
        return Some(stretch_from(text, at, None));
    }
    let pointer = field.strip_prefix("definition")?;
    if !pointer.starts_with('/') {
        return None;
    }
    let parsed = parse_with_spans(text).ok()?;
    let (path, part) = pointer_location(pointer);
    let span = parsed.spans.span_of(&path, part)?;
    Some(stretch_from(text, span.start, Some(span.end.offset)))
}

/// Core's reason without the position it appends (`… (line 2, column 5)`, `… at 2:5`,
/// `… at /all/0/test`).
fn bare_reason(reason: &str) -> &str {
    if let Some((head, tail)) = reason.rsplit_once(" (line ") {
        if reason_position(&format!("(line {tail}")).is_some() {
            return head;
        }
    }
    match reason.rsplit_once(" at ") {
        Some((head, tail))
            if tail.starts_with('/')
                || tail.split_once(':').is_some_and(|(l, c)| {
                    l.parse::<usize>().is_ok() && c.parse::<usize>().is_ok()
                }) =>
        {
            head
        }
        _ => reason,
    }
}

/// The attribute core suggests instead of an unknown one (`… (did you mean city?)`).
fn suggestion(reason: &str) -> Option<&str> {
    let rest = reason.split("did you mean ").nth(1)?;
    let name = rest.split(['?', ')']).next()?.trim();
    (!name.is_empty()).then_some(name)
}

/// How core says an unknown attribute could be custom data (`… custom data is written
/// traits.cidade`).
fn custom_path(reason: &str) -> Option<&str> {
    let rest = reason.split("custom data is written ").nth(1)?;
    let path = rest
        .split_whitespace()
        .next()?
        .trim_end_matches(['.', ',', ';']);
    (!path.is_empty()).then_some(path)
}

fn quoted_near(text: &str, stretch: &Stretch) -> String {
    let near: String = text[stretch.start..stretch.end]
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(NEAR_MAX)
        .collect();
    near
}

/// UTF-16 offset of a byte offset (what a textarea's `setSelectionRange` counts).
fn utf16_offset(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].encode_utf16().count()
}

/// One error as the editor shows it (see the module doc).
pub(crate) fn error_view(locale: Locale, text: &str, error: &FieldError) -> Value {
    let stretch = locate(text, error);
    let near = stretch
        .as_ref()
        .map(|s| quoted_near(text, s))
        .unwrap_or_default();
    let code = error.code.as_str();
    let key = if code == "syntax_error" && near.is_empty() {
        "segment_editor.errors.syntax_error_end".to_string()
    } else {
        format!("segment_editor.errors.{code}")
    };
    let what = if locale.has(&key) {
        fill(&locale.text(&key), &[("near", near.clone())])
    } else {
        locale.field_error(error)
    };
    let message = match &stretch {
        Some(s) => format!(
            "{}: {what}",
            fill(
                &locale.text("segment_editor.at"),
                &[
                    ("line", s.line.to_string()),
                    ("column", s.column.to_string())
                ],
            )
        ),
        None => what,
    };
    let hint = suggestion(&error.reason)
        .map(|name| {
            fill(
                &locale.text("segment_editor.did_you_mean"),
                &[("name", name.to_string())],
            )
        })
        .or_else(|| {
            custom_path(&error.reason).map(|path| {
                fill(
                    &locale.text("segment_editor.custom_data"),
                    &[("path", path.to_string())],
                )
            })
        });
    let detail = bare_reason(&error.reason).trim().to_string();
    let excerpt = stretch.as_ref().map(|s| {
        let line_start = text[..s.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[s.start..]
            .find('\n')
            .map_or(text.len(), |i| s.start + i);
        let end = s.end.min(line_end);
        context! {
            line => s.line,
            before => &text[line_start..s.start],
            marked => &text[s.start..end],
            after => &text[end..line_end],
        }
    });
    context! {
        code => code,
        message => message,
        hint => hint,
        detail => (!detail.is_empty() && code != "required").then_some(detail),
        excerpt => excerpt,
        line => stretch.map(|s| s.line),
        column => stretch.map(|s| s.column),
        select_start => stretch.map(|s| utf16_offset(text, s.start)),
        select_end => stretch.map(|s| utf16_offset(text, s.end.max(s.start))),
    }
}

/// The syntax help's examples, in the operator's language; every one parses (tested).
pub(crate) fn examples(locale: Locale) -> &'static [(&'static str, &'static str)] {
    match locale {
        Locale::PtBr => &[
            (
                "Moram no Recife e compraram duas vezes ou mais",
                r#"city = "Recife" e orders_count >= 2"#,
            ),
            (
                "Viram calçados pelo menos 3 vezes na última semana",
                r#"realizou "Product Viewed" pelo menos 3 vezes nos últimos 7 dias onde category = "Calçados""#,
            ),
            (
                "Sem comprar há mais de 90 dias e sem a etiqueta vip",
                r#"last_order_at há mais de 90 dias e não (tags contém "vip")"#,
            ),
            (
                "Aniversariantes do mês ou quem está em outro segmento",
                r#"birthday este mês ou no segmento "Clientes VIP""#,
            ),
            (
                "Gastaram entre R$ 100 e R$ 500, plano ouro ou prata",
                r#"total_spent entre 100 e 500 e traits.plan em ("gold", "silver")"#,
            ),
            (
                "Na etapa de retenção do ciclo de vida",
                r#"lifecycle_stage = "retention""#,
            ),
            (
                "Nunca compraram nos últimos 30 dias",
                r#"nunca realizou "Order Completed" nos últimos 30 dias"#,
            ),
        ],
        Locale::En => &[
            (
                "Live in Recife and ordered twice or more",
                r#"city = "Recife" and orders_count >= 2"#,
            ),
            (
                "Viewed shoes at least 3 times in the last week",
                r#"performed "Product Viewed" at least 3 times in the last 7 days where category = "Calçados""#,
            ),
            (
                "No order for more than 90 days and not tagged vip",
                r#"last_order_at more than 90 days ago and not (tags contains "vip")"#,
            ),
            (
                "Birthday this month, or in another segment",
                r#"birthday this month or in segment "Clientes VIP""#,
            ),
            (
                "Spent between R$100 and R$500, on the gold or silver plan",
                r#"total_spent between 100 and 500 and traits.plan in ("gold", "silver")"#,
            ),
            (
                "In the retention stage of the lifecycle",
                r#"lifecycle_stage = "retention""#,
            ),
            (
                "Did not order in the last 30 days",
                r#"has not performed "Order Completed" in the last 30 days"#,
            ),
        ],
    }
}

/// Attribute names the help lists, grouped (the words are the language's, not translated).
pub(crate) const ATTRIBUTES: &[(&str, &[&str])] = &[
    (
        "profile",
        &[
            "name", "email", "phone", "whatsapp", "city", "state", "country", "tags", "birthday",
        ],
    ),
    (
        "orders",
        &[
            "orders_count",
            "total_spent",
            "average_order_value",
            "first_order_at",
            "last_order_at",
        ],
    ),
    ("activity", &["first_seen_at", "last_seen_at", "created_at"]),
    (
        "computed",
        &["lifecycle_stage", "rfm_group", "predicted_clv", "p_alive"],
    ),
    ("traits", &["traits.…"]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use ciclo_domain::segment::parse;

    #[test]
    fn every_help_example_parses_and_validates() {
        for locale in Locale::ALL {
            for (_, text) in examples(locale) {
                let parsed = parse_with_spans(text)
                    .unwrap_or_else(|e| panic!("{} example {text:?}: {e}", locale.code()));
                parsed
                    .validate()
                    .unwrap_or_else(|e| panic!("{} example {text:?}: {e:?}", locale.code()));
            }
        }
        // The two languages' examples mean the same.
        for ((_, pt), (_, en)) in examples(Locale::PtBr).iter().zip(examples(Locale::En)) {
            assert_eq!(parse(pt).unwrap(), parse(en).unwrap(), "{pt}");
        }
    }

    #[test]
    fn pointers_become_child_paths_and_parts() {
        assert_eq!(pointer_location(""), (vec![], Part::Node));
        assert_eq!(pointer_location("/attribute"), (vec![], Part::Subject));
        assert_eq!(pointer_location("/all/1/test"), (vec![1], Part::Test));
        assert_eq!(
            pointer_location("/any/0/expr/all/2/where/1/property"),
            (vec![0, 0, 2], Part::FilterProperty(1))
        );
        assert_eq!(pointer_location("/all/0/segment"), (vec![0], Part::Subject));
    }

    #[test]
    fn errors_are_located_in_the_text() {
        let text = "city = \"Recife\"\n  and cidade = \"Olinda\"";
        let error = FieldError::new(
            "unknown_field",
            "definition/all/1/attribute",
            "unknown attribute \"cidade\" (did you mean city?) at /all/1/attribute",
        );
        let s = locate(text, &error).unwrap();
        assert_eq!((s.line, s.column), (2, 7));
        assert_eq!(&text[s.start..s.end], "cidade");
        assert_eq!(suggestion(&error.reason), Some("city"));

        let text = "city = \"Recife\" and orders_count >== 2";
        let e = parse(text).unwrap_err();
        let error = e.to_field_error();
        // Core's two ways of saying where: `definition.1:34`, and `definition` with the line
        // and column in the reason.
        for error in [
            FieldError::new(
                &error.code,
                format!("definition.{}", error.field),
                error.reason.clone(),
            ),
            FieldError::new(
                &error.code,
                "definition",
                format!("{} (line 1, column 34)", e.reason),
            ),
        ] {
            let s = locate(text, &error).unwrap();
            assert_eq!(s.line, 1);
            assert!(
                text[s.start..s.end].starts_with('='),
                "{:?}",
                &text[s.start..s.end]
            );
            assert!(!bare_reason(&error.reason).contains(" at 1:"));
            assert!(!bare_reason(&error.reason).contains("(line"));
        }
        let error = FieldError::new(
            "syntax_error",
            "definition",
            format!("{} (line 1, column 34)", e.reason),
        );

        let view = error_view(Locale::PtBr, text, &error);
        let message = view.get_attr("message").unwrap().to_string();
        assert!(message.starts_with("Linha 1, coluna"), "{message}");
    }

    #[test]
    fn accented_text_is_counted_in_characters_and_utf16() {
        let text = "city = \"São\" e cidade = 1";
        let error = FieldError::new("unknown_field", "definition/all/1/attribute", "x");
        let s = locate(text, &error).unwrap();
        assert_eq!(&text[s.start..s.end], "cidade");
        assert_eq!(s.column, 16);
        assert_eq!(utf16_offset(text, s.start), 15);
    }
}
