//! The two languages of the console and their message catalogues.
//!
//! Every word on screen comes from `locales/pt-BR.toml` or `locales/en.toml`, embedded in the
//! binary. Templates read them as the nested object `t` (`{{ t.nav.customers }}`); the
//! environment renders in strict mode, so a key missing from a catalogue fails the render (and
//! the tests that render every page in both languages) instead of showing an empty space.
//!
//! The language is chosen in this order: the operator's preference cookie (`ciclo_lang`, set
//! from the language menu or the settings page), the browser's `Accept-Language`, the
//! workspace's locale, then Brazilian Portuguese.

use ciclo_domain::FieldError;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The cookie that holds the operator's language preference.
pub const LANGUAGE_COOKIE: &str = "ciclo_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Locale {
    #[serde(rename = "pt-BR")]
    PtBr,
    #[serde(rename = "en")]
    En,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::PtBr, Locale::En];

    /// The BCP 47 tag, as used in `lang=""`, cookies and workspace settings.
    pub fn code(self) -> &'static str {
        match self {
            Locale::PtBr => "pt-BR",
            Locale::En => "en",
        }
    }

    /// Reads a tag loosely: `pt`, `pt-BR`, `pt_br` → pt-BR; `en`, `en-US` → en.
    pub fn parse(raw: &str) -> Option<Locale> {
        let lang = raw
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match lang.as_str() {
            "pt" => Some(Locale::PtBr),
            "en" => Some(Locale::En),
            _ => None,
        }
    }

    /// The best of our languages for an `Accept-Language` header (highest `q` wins; ties go to
    /// the first listed), or none when the browser asks for neither.
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(f32, Locale)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default();
            let quality = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if quality <= 0.0 {
                continue;
            }
            if let Some(locale) = Locale::parse(tag) {
                if best.is_none_or(|(q, _)| quality > q) {
                    best = Some((quality, locale));
                }
            }
        }
        best.map(|(_, locale)| locale)
    }

    /// Picks the language: preference cookie, then browser, then workspace, then pt-BR.
    pub fn negotiate(
        preference: Option<&str>,
        accept_language: Option<&str>,
        workspace: Option<&str>,
    ) -> Locale {
        preference
            .and_then(Locale::parse)
            .or_else(|| accept_language.and_then(Locale::from_accept_language))
            .or_else(|| workspace.and_then(Locale::parse))
            .unwrap_or(Locale::PtBr)
    }

    fn source(self) -> &'static str {
        match self {
            Locale::PtBr => include_str!("../locales/pt-BR.toml"),
            Locale::En => include_str!("../locales/en.toml"),
        }
    }

    /// The catalogue as a JSON tree (parsed once).
    pub fn catalogue(self) -> &'static Value {
        static PT: OnceLock<Value> = OnceLock::new();
        static EN: OnceLock<Value> = OnceLock::new();
        let cell = match self {
            Locale::PtBr => &PT,
            Locale::En => &EN,
        };
        cell.get_or_init(|| parse_catalogue(self.source()))
    }

    /// The catalogue as a template value (converted once).
    pub fn template_messages(self) -> minijinja::Value {
        static PT: OnceLock<minijinja::Value> = OnceLock::new();
        static EN: OnceLock<minijinja::Value> = OnceLock::new();
        let cell = match self {
            Locale::PtBr => &PT,
            Locale::En => &EN,
        };
        cell.get_or_init(|| minijinja::Value::from_serialize(self.catalogue()))
            .clone()
    }

    /// One message by dotted key (`nav.customers`); the key itself when missing, so that a
    /// gap shows up on screen rather than as a blank.
    pub fn text(self, key: &str) -> String {
        lookup(self.catalogue(), key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| key.to_string())
    }

    /// Whether the catalogue has a message under `key`.
    pub fn has(self, key: &str) -> bool {
        lookup(self.catalogue(), key).is_some_and(Value::is_string)
    }

    /// Every dotted key of the catalogue (for the completeness test).
    pub fn keys(self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        collect_keys(self.catalogue(), "", &mut keys);
        keys
    }

    /// The message for a validation error, by its stable code (`errors.invalid_email`), or a
    /// general "not valid" message for codes the console does not know.
    pub fn field_error(self, error: &FieldError) -> String {
        let key = format!("errors.{}", error.code);
        if self.has(&key) {
            self.text(&key)
        } else {
            self.text("errors.invalid_value")
        }
    }
}

/// Replaces `{name}` placeholders in a message.
pub fn fill(message: &str, values: &[(&str, String)]) -> String {
    let mut out = message.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

fn parse_catalogue(source: &str) -> Value {
    let parsed: toml::Table = toml::from_str(source).unwrap_or_else(|e| {
        // The catalogues are part of the binary and checked by tests; a broken one is a bug.
        panic!("a message catalogue does not parse: {e}")
    });
    serde_json::to_value(parsed).unwrap_or(Value::Null)
}

fn lookup<'a>(root: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(root, |node, part| node.get(part))
}

fn collect_keys(node: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect_keys(v, &key, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_match() {
        assert_eq!(
            Locale::from_accept_language("pt-BR,pt;q=0.9,en;q=0.8"),
            Some(Locale::PtBr)
        );
        assert_eq!(
            Locale::from_accept_language("fr-FR, en-GB;q=0.7, pt;q=0.5"),
            Some(Locale::En)
        );
        assert_eq!(Locale::from_accept_language("de, fr"), None);
        assert_eq!(
            Locale::from_accept_language("en;q=0, pt"),
            Some(Locale::PtBr)
        );
    }
}
