//! The catalogues: both languages have every key, error codes core emits have messages, and the
//! language is chosen in the documented order.

use ciclo_web::i18n::{fill, Locale};

#[test]
fn both_catalogues_have_the_same_keys() {
    let pt = Locale::PtBr.keys();
    let en = Locale::En.keys();
    let only_pt: Vec<_> = pt.difference(&en).collect();
    let only_en: Vec<_> = en.difference(&pt).collect();
    assert!(only_pt.is_empty(), "missing in en.toml: {only_pt:?}");
    assert!(only_en.is_empty(), "missing in pt-BR.toml: {only_en:?}");
    assert!(pt.len() > 300, "{} keys", pt.len());
    for locale in Locale::ALL {
        for key in locale.keys() {
            let text = locale.text(&key);
            assert!(
                !text.trim().is_empty(),
                "{key} is empty in {}",
                locale.code()
            );
        }
    }
}

#[test]
fn placeholders_match_between_languages() {
    let placeholders = |text: &str| {
        let mut names: Vec<String> = text
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
            .collect();
        names.sort();
        names
    };
    for key in Locale::En.keys() {
        assert_eq!(
            placeholders(&Locale::En.text(&key)),
            placeholders(&Locale::PtBr.text(&key)),
            "{key}"
        );
    }
}

#[test]
fn every_validation_code_the_forms_can_meet_has_a_message() {
    for code in [
        "invalid_email",
        "invalid_phone",
        "invalid_date",
        "invalid_time_zone",
        "invalid_locale",
        "invalid_currency",
        "invalid_name",
        "invalid_role",
        "invalid_type",
        "identity_taken",
        "weak_password",
        "already_member",
        "last_owner",
        "cannot_remove_self",
        "missing_field",
        "missing_identity",
        "invalid_amount",
        "invalid_timestamp",
        "unknown_field",
        "unknown_column",
        "required",
        "segment_name_taken",
        "ids_missing",
        "too_many_ids",
        "preview_failed",
    ] {
        for locale in Locale::ALL {
            assert!(
                locale.has(&format!("errors.{code}")),
                "{code} in {}",
                locale.code()
            );
        }
    }
    let unknown = ciclo_domain::FieldError::new("brand_new_code", "x", "English reason");
    assert_eq!(
        Locale::PtBr.field_error(&unknown),
        "Este valor não é válido."
    );
    let email = ciclo_domain::FieldError::new("invalid_email", "email", "English reason");
    assert!(Locale::En
        .field_error(&email)
        .starts_with("Enter a valid email"));
    assert!(Locale::PtBr
        .field_error(&email)
        .starts_with("Digite um e-mail válido"));
}

#[test]
fn language_choice_order() {
    // The operator's preference wins over the browser, the browser over the workspace.
    assert_eq!(
        Locale::negotiate(Some("en"), Some("pt-BR"), Some("pt-BR")),
        Locale::En
    );
    assert_eq!(
        Locale::negotiate(None, Some("en-US,en;q=0.9"), Some("pt-BR")),
        Locale::En
    );
    assert_eq!(
        Locale::negotiate(None, Some("de-DE"), Some("en")),
        Locale::En
    );
    assert_eq!(Locale::negotiate(Some("xx"), None, None), Locale::PtBr);
    assert_eq!(
        Locale::negotiate(None, Some("fr;q=1, pt;q=0.4, en;q=0.3"), None),
        Locale::PtBr
    );
    assert_eq!(Locale::parse("pt_BR"), Some(Locale::PtBr));
    assert_eq!(Locale::parse("EN-gb"), Some(Locale::En));
}

#[test]
fn placeholders_are_filled() {
    assert_eq!(
        fill(
            "Order {id} of {name}",
            &[("id", "7".into()), ("name", "Ana".into())]
        ),
        "Order 7 of Ana"
    );
}
