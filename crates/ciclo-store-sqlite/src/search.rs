//! Customer search terms, computed in Rust so that stored terms and queries are folded by the
//! same code (SQLite's own `lower()` only knows ASCII).
//!
//! A profile's terms are its folded name and every suffix of it that starts at a word
//! (`n:ana souza`, `n:souza`), its email (`e:ana@x.com`), and the digits of its phone and
//! WhatsApp numbers with the country code, without it, and without the area code where the
//! numbering plan has one (`p:5511987654321`, `p:11987654321`, `p:987654321`). A search matches a
//! profile when one of its needles is a prefix of one of the profile's terms: a range scan over
//! `customer_search_terms`, or `instr` over the `search_text` column, which holds the same terms
//! each preceded by [`SEPARATOR`].

use ciclo_domain::customer::Customer;

/// Precedes every term in `search_text`; it never occurs inside a term.
pub(crate) const SEPARATOR: char = '\u{1f}';
/// Longer names are indexed by their first characters; queries are cut the same way.
const MAX_TERM_CHARS: usize = 64;
/// A name longer than this many words only gets suffix terms for the first ones.
const MAX_NAME_WORDS: usize = 8;

/// Lower case, Latin accents removed, anything but letters and digits turned into single spaces:
/// `"  Ana-Júlia D'Ávila "` becomes `"ana julia d avila"`.
pub(crate) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if ('\u{300}'..='\u{36f}').contains(&c) {
            // A combining accent (decomposed input, or what lowering `İ` leaves): dropped, like
            // the precomposed ones below, and not a word break.
            continue;
        }
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            match strip_accent(c) {
                Some(plain) => out.push_str(plain),
                None => out.push(c),
            }
        } else {
            pending_space = true;
        }
    }
    out
}

/// The unaccented spelling of a lower-case Latin letter, for the letters of the languages ciclo's
/// users write names in (Portuguese, Spanish, French, German, Italian and their neighbours).
fn strip_accent(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(MAX_TERM_CHARS) {
        Some((cut, _)) => text[..cut].trim_end(),
        None => text,
    }
}

/// Columns and rows derived from a customer on every write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Derived {
    /// The folded name, empty when none: the Name sort key.
    pub sort_name: String,
    pub city_key: Option<String>,
    pub search_text: String,
    /// The rows of `customer_search_terms` and `customer_tags`; empty for a merged profile,
    /// which lists and searches never show.
    pub terms: Vec<String>,
    pub tags: Vec<String>,
}

pub(crate) fn derive(customer: &Customer) -> Derived {
    let sort_name = customer.name.as_deref().map(fold).unwrap_or_default();
    let mut terms: Vec<String> = Vec::new();
    let words: Vec<&str> = sort_name.split(' ').filter(|w| !w.is_empty()).collect();
    for start in 0..words.len().min(MAX_NAME_WORDS) {
        terms.push(format!("n:{}", truncate(&words[start..].join(" "))));
    }
    if let Some(email) = &customer.email {
        terms.push(format!("e:{}", truncate(&email.as_str().to_lowercase())));
    }
    for phone in [&customer.phone, &customer.whatsapp].into_iter().flatten() {
        terms.extend(phone_terms(phone.as_str()));
    }
    terms.sort();
    terms.dedup();
    let search_text: String = terms
        .iter()
        .flat_map(|t| [SEPARATOR.to_string(), t.clone()])
        .collect();
    let mut tags: Vec<String> = customer
        .tags
        .iter()
        .map(|t| normalise_tag(t))
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    let surviving = customer.merged_into.is_none();
    Derived {
        sort_name,
        city_key: customer.city.as_deref().map(fold).filter(|c| !c.is_empty()),
        search_text,
        terms: if surviving { terms } else { Vec::new() },
        tags: if surviving { tags } else { Vec::new() },
    }
}

/// Tags are matched in the form the domain normalises them to.
pub(crate) fn normalise_tag(tag: &str) -> String {
    tag.trim().to_lowercase()
}

/// The terms of a stored `search_text`, to find the rows to delete when a profile changes.
pub(crate) fn terms_of(search_text: &str) -> Vec<String> {
    search_text
        .split(SEPARATOR)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// The search terms of an E.164 number (`+5511987654321`).
fn phone_terms(e164: &str) -> Vec<String> {
    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!("p:{digits}")];
    let code_len = country_code_len(&digits);
    if digits.len() > code_len {
        let national = &digits[code_len..];
        out.push(format!("p:{national}"));
        // Where a numbering plan has a fixed-length area code, people also search by the local
        // number alone (`98765-4321` in São Paulo).
        let area_len = match &digits[..code_len] {
            "55" if national.len() >= 10 => 2,
            "1" if national.len() == 10 => 3,
            _ => 0,
        };
        if area_len > 0 {
            out.push(format!("p:{}", &national[area_len..]));
        }
    }
    out
}

/// The length of the ITU country code an international number starts with.
fn country_code_len(digits: &str) -> usize {
    const TWO_DIGIT: &[&str] = &[
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if digits.len() >= 2 && TWO_DIGIT.contains(&&digits[..2]) {
        2
    } else {
        3.min(digits.len())
    }
}

/// What a search query looks for: each needle is matched as a prefix of a term.
pub(crate) fn needles(query: &str) -> Vec<String> {
    let query = query.trim();
    let mut out = Vec::new();
    if query.is_empty() {
        return out;
    }
    let name = fold(query);
    if !name.is_empty() {
        out.push(format!("n:{}", truncate(&name)));
    }
    if !query.chars().any(char::is_whitespace) {
        out.push(format!("e:{}", truncate(&query.to_lowercase())));
    }
    let phone_like = query
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    if phone_like && !digits.is_empty() {
        out.push(format!("p:{digits}"));
    }
    out
}

/// The smallest string greater than every string that starts with `prefix`, for range scans
/// (`term >= prefix AND term < bound`) that an index can serve. Text compares byte-wise, and
/// UTF-8 byte order is code point order, so incrementing the last character is enough.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciclo_domain::contact::{Email, Phone};
    use ciclo_domain::ids::{CustomerId, WorkspaceId};

    #[test]
    fn folding_lowers_strips_accents_and_punctuation() {
        assert_eq!(fold("  Ana-Júlia D'Ávila "), "ana julia d avila");
        assert_eq!(fold("JOÃO  da   Conceição"), "joao da conceicao");
        assert_eq!(fold("Straße Œuvre"), "strasse oeuvre");
        assert_eq!(fold("!!!"), "");
        assert_eq!(fold("Jose\u{301} İzmir"), "jose izmir");
    }

    #[test]
    fn terms_cover_name_words_email_and_phone_forms() {
        let mut c = Customer::new(
            CustomerId::generate(1, 1),
            WorkspaceId::generate(1, 1),
            Default::default(),
        );
        c.name = Some("Maria Ana Souza".into());
        c.email = Email::parse("Ana@X.com").ok();
        c.phone = Phone::parse("(11) 98765-4321", "BR").ok();
        c.whatsapp = c.phone.clone();
        c.city = Some("São Paulo".into());
        c.tags = vec!["VIP ".into(), "vip".into()];
        let d = derive(&c);
        assert_eq!(d.sort_name, "maria ana souza");
        assert_eq!(d.city_key.as_deref(), Some("sao paulo"));
        assert_eq!(d.tags, vec!["vip"]);
        assert_eq!(
            d.terms,
            vec![
                "e:ana@x.com",
                "n:ana souza",
                "n:maria ana souza",
                "n:souza",
                "p:11987654321",
                "p:5511987654321",
                "p:987654321"
            ]
        );
        assert_eq!(terms_of(&d.search_text), d.terms);
        c.merged_into = Some(CustomerId::generate(2, 2));
        assert!(derive(&c).terms.is_empty());
    }

    #[test]
    fn needles_by_query_shape() {
        assert_eq!(needles("Ana So"), vec!["n:ana so"]);
        assert_eq!(needles("ana@x"), vec!["n:ana x", "e:ana@x"]);
        assert_eq!(needles("11 9876"), vec!["n:11 9876", "p:119876"]);
        assert_eq!(needles("+55119"), vec!["n:55119", "e:+55119", "p:55119"]);
        assert!(needles("  ").is_empty());
    }

    #[test]
    fn upper_bounds_close_prefix_ranges() {
        assert_eq!(prefix_upper_bound("n:ana").as_deref(), Some("n:anb"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(country_code_len("5511987654321"), 2);
        assert_eq!(country_code_len("14155552671"), 1);
        assert_eq!(country_code_len("351912345678"), 3);
    }
}
