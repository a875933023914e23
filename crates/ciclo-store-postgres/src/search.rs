//! Customer search: which lexemes a profile is indexed under, and how a search box query
//! becomes a `tsquery` over them plus an exact check.
//!
//! The contract (see `CustomerQuery::search`) is a prefix search on any word of the name, on
//! the email, and on the phone's digits. A GIN index over a `tsvector` that the adapter fills
//! with exactly the lexemes it needs answers prefix queries (`'ana':*`) without scanning the
//! table, whatever the word's position, which btree indexes cannot do for "any word of the
//! name". It needs no extension (pg_trgm is not always installable on managed databases).
//!
//! The index only narrows the candidates; an exact condition ([`SearchPlan`]) decides, so the
//! result does not depend on which plan PostgreSQL picks.
//!
//! Phones: an operator types a number the way it is written locally (`11 98765-4321`), with or
//! without country code (`+55 11 …`), or without the area code (`98765-4321`). Stored numbers
//! are E.164 (`+5511987654321`), so a phone is indexed under the suffixes of its digits that
//! start within the first [`PHONE_SKIPPABLE_DIGITS`] digits (the country and area codes), and
//! the query's digits must occur starting there.

/// How many leading digits of a phone (country code, then area code) a search may skip.
pub(crate) const PHONE_SKIPPABLE_DIGITS: usize = 5;

/// PostgreSQL refuses lexemes of 2 KB or more; nothing useful is that long anyway.
const MAX_LEXEME_BYTES: usize = 255;

/// The lexemes a customer is found under: each word of the lower-cased name, the email, and
/// the digit suffixes of the phone and WhatsApp numbers.
pub(crate) fn customer_lexemes(
    name: Option<&str>,
    email: Option<&str>,
    phone: Option<&str>,
    whatsapp: Option<&str>,
) -> Vec<String> {
    let mut lexemes: Vec<String> = Vec::new();
    let mut add = |lexeme: &str| {
        // PostgreSQL rejects empty lexemes; a truncated one still serves prefix queries.
        let lexeme = truncate(lexeme, MAX_LEXEME_BYTES);
        if !lexeme.is_empty() && !lexemes.iter().any(|l| l == lexeme) {
            lexemes.push(lexeme.to_string());
        }
    };
    if let Some(name) = name {
        for word in name.to_lowercase().split_whitespace() {
            add(word);
        }
    }
    if let Some(email) = email {
        add(&email.to_lowercase());
    }
    for number in [phone, whatsapp].into_iter().flatten() {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        for skip in 0..=PHONE_SKIPPABLE_DIGITS.min(digits.len()) {
            add(&digits[skip..]);
        }
    }
    lexemes
}

/// The lexemes as a `tsvector` literal (`'ana' 'souza'`), for statements that cannot call
/// `array_to_tsvector` per row. Quoting as in tsquery: a quote doubled, a backslash escaped.
pub(crate) fn tsvector_literal(lexemes: &[String]) -> String {
    lexemes
        .iter()
        .map(|l| quote(l))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a search box query turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchPlan {
    /// For the GIN index: `('w1':* & 'w2':*) | 'term':* | 'digits':*`.
    pub(crate) tsquery: String,
    /// The query, lower-cased, its words separated by single spaces: must start the name, a
    /// word of the name (after a space), or the email.
    pub(crate) term: String,
    /// The query's digits when it looks like a phone number (only digits, spaces and `+-().`).
    pub(crate) digits: Option<String>,
}

/// Plans a search; `None` when the query has nothing to search for (empty or blank).
pub(crate) fn plan(raw: &str) -> Option<SearchPlan> {
    let lowered = raw.to_lowercase();
    let words: Vec<&str> = lowered
        .split_whitespace()
        .map(|w| truncate(w, MAX_LEXEME_BYTES))
        .collect();
    if words.is_empty() {
        return None;
    }
    let term = words.join(" ");
    // Every word must start a lexeme. A one-word query thereby also covers the email lexeme
    // (an email has no spaces, so a query with several words cannot match one).
    let mut alternatives = vec![format!(
        "({})",
        words
            .iter()
            .map(|w| prefix_lexeme(w))
            .collect::<Vec<_>>()
            .join(" & ")
    )];
    let looks_like_phone = raw
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_whitespace() || "+-().".contains(c));
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let digits = (looks_like_phone && !digits.is_empty())
        .then(|| truncate(&digits, MAX_LEXEME_BYTES).to_string());
    if let Some(d) = &digits {
        alternatives.push(prefix_lexeme(d));
    }
    Some(SearchPlan {
        tsquery: alternatives.join(" | "),
        term,
        digits,
    })
}

/// `'lexeme':*` in tsquery syntax.
fn prefix_lexeme(lexeme: &str) -> String {
    format!("{}:*", quote(lexeme))
}

/// A lexeme quoted for tsvector and tsquery input: inside quotes a quote is doubled and a
/// backslash escaped.
fn quote(lexeme: &str) -> String {
    format!("'{}'", lexeme.replace('\\', "\\\\").replace('\'', "''"))
}

fn truncate(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexemes_cover_name_words_email_and_phone_suffixes() {
        let lexemes = customer_lexemes(
            Some("Ana  SOUZA"),
            Some("ana@x.com.br"),
            Some("+5511987654321"),
            None,
        );
        assert_eq!(
            lexemes,
            vec![
                "ana",
                "souza",
                "ana@x.com.br",
                "5511987654321",
                "511987654321",
                "11987654321",
                "1987654321",
                "987654321",
                "87654321"
            ]
        );
        assert!(customer_lexemes(None, None, None, None).is_empty());
        assert_eq!(
            customer_lexemes(Some("  "), None, Some("+1"), None),
            vec!["1"]
        );
    }

    #[test]
    fn plans_quote_words_and_detect_phone_numbers() {
        assert_eq!(plan("  "), None);
        let p = plan("Ana Sou").unwrap();
        assert_eq!(p.tsquery, "('ana':* & 'sou':*)");
        assert_eq!((p.term.as_str(), p.digits.as_deref()), ("ana sou", None));
        let p = plan("(11) 9876").unwrap();
        assert_eq!(p.digits.as_deref(), Some("119876"));
        assert!(p.tsquery.ends_with("| '119876':*"), "{}", p.tsquery);
        let p = plan("o'brien\\").unwrap();
        assert_eq!(p.tsquery, "('o''brien\\\\':*)");
        assert_eq!(plan("ana2").unwrap().digits, None);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("ação", 2), "a");
        assert_eq!(truncate("ação", 3), "aç");
    }
}
