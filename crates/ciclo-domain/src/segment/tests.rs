//! Data-driven table tests of the segment language: text → AST (as JSON, which also pins the
//! API shape), AST → text, round trips over examples and generated ASTs, syntax and validation
//! errors with their positions, reference checks, and evaluator truth tables at fixed times.

use super::*;
use crate::customer::{Customer, OrderStats};
use crate::ids::{CustomerId, WorkspaceId};
use crate::Timestamp;
use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{json, Number, Value};
use std::collections::HashSet;

const SAO_PAULO: Tz = chrono_tz::America::Sao_Paulo;

fn at(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&Utc)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn parsed(text: &str) -> Expr {
    parse(text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"))
}

/// Texts that must parse, from the brief and beyond; each also round-trips.
const EXAMPLES: &[&str] = &[
    r#"city = "Recife" and orders_count >= 2"#,
    r#"performed "Product Viewed" at least 3 times in the last 7 days where category = "Calçados""#,
    r#"last_order_at more than 90 days ago and not (tags contains "vip")"#,
    r#"birthday this month or in segment "aniversariantes""#,
    r#"total_spent between 100 and 500 and traits.plan in ("gold", "silver")"#,
    r#"has not performed "Order Completed" in the last 30 days"#,
    r#"lifecycle is retention"#,
    r#"rfm_group = "champions" and predicted_clv > 500 and p_alive >= 0.5"#,
    r#"not in segment seg_01hzx3k9v7q2m4n5p6r7s8t9v0"#,
    r#"(city = "Recife" or city = "Olinda") and (orders_count > 1 or traits.vip = true)"#,
    r#"performed "Order Completed" at most 2 times between 2024-01-01 and 2024-03-31"#,
    r#"performed "Order Completed" exactly 1 time ever where (properties.total > 100 and coupon is set)"#,
    r#"performed "Page Viewed" where url starts with "https://loja.com.br/promo""#,
    r#"birthday in the next 7 days and birthday today"#,
    r#"first_order_at anniversary this month"#,
    r#"traits.trial_ends_at in the next 3 days"#,
    r#"created_at before 2024-01-01 or created_at after 2025-06-30T12:00:00Z"#,
    r#"last_seen_at within 2 hours and first_seen_at less than 1 week ago"#,
    r#"email is not set or phone is set"#,
    r#"name does not contain "teste" and tags not in ("churned", "blocked")"#,
    r#"traits.`favourite colour` = "azul" and traits.address.city != "Recife""#,
    r#"computed.churn_risk > 0.7"#,
    r#"all of (city is set)"#,
    r#"any of ()"#,
    r#"everyone"#,
    r#"nobody"#,
    r#"cidade_natal is set"#,
    "city = \"Recife\"\n  and orders_count >= 2\n  and not in segment \"vip\"",
    r#"realizou "Compra" pelo menos 2 vezes nos últimos 30 dias onde categoria = "Calçados""#,
    r#"last_order_at há mais de 90 dias e não (tags contém "vip")"#,
    r#"birthday este mês ou no segmento "aniversariantes""#,
    r#"total_spent entre 100 e 500 e traits.plan em ("gold", "silver")"#,
    r#"nunca realizou "Order Completed" nos últimos 30 dias"#,
    r#"city = "Recife" AND NOT orders_count < 2"#,
];

#[test]
fn every_example_parses_and_round_trips_through_text_and_json() {
    for text in EXAMPLES {
        let ast = parsed(text);
        let printed = print(&ast);
        assert_eq!(
            parse(&printed).as_ref(),
            Ok(&ast),
            "{text:?} printed as {printed:?}"
        );
        assert_eq!(
            print(&parsed(&printed)),
            printed,
            "printing is stable for {text:?}"
        );
        let json = serde_json::to_value(&ast).unwrap();
        assert_eq!(
            serde_json::from_value::<Expr>(json.clone()).unwrap(),
            ast,
            "{json}"
        );
        assert_eq!(text.parse::<Expr>().unwrap(), ast);
    }
}

#[test]
fn text_becomes_the_documented_json() {
    let attr = |attribute: &str, test: Value| json!({"type": "attribute", "attribute": attribute, "test": test});
    let cases: Vec<(&str, Value)> = vec![
        (
            r#"city = "Recife""#,
            attr("city", json!({"op": "eq", "value": "Recife"})),
        ),
        (
            r#"city == "Recife""#,
            attr("city", json!({"op": "eq", "value": "Recife"})),
        ),
        (
            r#"city is "Recife""#,
            attr("city", json!({"op": "eq", "value": "Recife"})),
        ),
        (
            r#"city != "Recife""#,
            attr("city", json!({"op": "not_eq", "value": "Recife"})),
        ),
        (
            r#"city <> "Recife""#,
            attr("city", json!({"op": "not_eq", "value": "Recife"})),
        ),
        (
            "lifecycle is retention",
            attr("lifecycle", json!({"op": "eq", "value": "retention"})),
        ),
        (
            "lifecycle is not retention",
            attr("lifecycle", json!({"op": "not_eq", "value": "retention"})),
        ),
        (
            r#"name contains "Silva""#,
            attr("name", json!({"op": "contains", "value": "Silva"})),
        ),
        (
            r#"name does not contain "x""#,
            attr("name", json!({"op": "not_contains", "value": "x"})),
        ),
        (
            r#"name not contains "x""#,
            attr("name", json!({"op": "not_contains", "value": "x"})),
        ),
        (
            r#"email starts with "ana""#,
            attr("email", json!({"op": "starts_with", "value": "ana"})),
        ),
        (
            r#"traits.plan in ("gold", 'silver')"#,
            attr(
                "traits.plan",
                json!({"op": "in", "values": ["gold", "silver"]}),
            ),
        ),
        (
            r#"traits.plan not in ["gold"]"#,
            attr("traits.plan", json!({"op": "not_in", "values": ["gold"]})),
        ),
        (
            "traits.level in (1, 2.5, true)",
            attr(
                "traits.level",
                json!({"op": "in", "values": [1, 2.5, true]}),
            ),
        ),
        ("phone is set", attr("phone", json!({"op": "is_set"}))),
        (
            "phone is not set",
            attr("phone", json!({"op": "is_not_set"})),
        ),
        (
            "orders_count < 2",
            attr("orders_count", json!({"op": "lt", "value": 2})),
        ),
        (
            "orders_count <= 2",
            attr("orders_count", json!({"op": "lte", "value": 2})),
        ),
        (
            "orders_count > -2",
            attr("orders_count", json!({"op": "gt", "value": -2})),
        ),
        (
            "orders_count >= 2",
            attr("orders_count", json!({"op": "gte", "value": 2})),
        ),
        (
            "orders_count ≥ 2",
            attr("orders_count", json!({"op": "gte", "value": 2})),
        ),
        (
            "total_spent between 99.9 and 1e3",
            attr(
                "total_spent",
                json!({"op": "between", "low": 99.9, "high": 1000.0}),
            ),
        ),
        (
            "created_at before 2024-01-01",
            attr("created_at", json!({"op": "before", "date": "2024-01-01"})),
        ),
        (
            "created_at after 2024-01-01T10:00:00-03:00",
            attr(
                "created_at",
                json!({"op": "after", "date": "2024-01-01T13:00:00Z"}),
            ),
        ),
        (
            r#"created_at between 2024-01-01 and "2024-12-31""#,
            attr(
                "created_at",
                json!({"op": "between_dates", "from": "2024-01-01", "to": "2024-12-31"}),
            ),
        ),
        (
            "created_at = 2024-01-01",
            attr("created_at", json!({"op": "eq", "value": "2024-01-01"})),
        ),
        (
            "last_seen_at within 30 days",
            attr(
                "last_seen_at",
                json!({"op": "within_last", "amount": 30, "unit": "days"}),
            ),
        ),
        (
            "last_seen_at within the last 2 hours",
            attr(
                "last_seen_at",
                json!({"op": "within_last", "amount": 2, "unit": "hours"}),
            ),
        ),
        (
            "last_seen_at in the last 1 minute",
            attr(
                "last_seen_at",
                json!({"op": "within_last", "amount": 1, "unit": "minutes"}),
            ),
        ),
        (
            "last_seen_at less than 1 week ago",
            attr(
                "last_seen_at",
                json!({"op": "within_last", "amount": 1, "unit": "weeks"}),
            ),
        ),
        (
            "last_order_at more than 90 days ago",
            attr(
                "last_order_at",
                json!({"op": "more_than_ago", "amount": 90, "unit": "days"}),
            ),
        ),
        (
            "last_order_at há mais de 2 anos",
            attr(
                "last_order_at",
                json!({"op": "more_than_ago", "amount": 2, "unit": "years"}),
            ),
        ),
        (
            "traits.renews_at in the next 1 month",
            attr(
                "traits.renews_at",
                json!({"op": "in_next", "amount": 1, "unit": "months"}),
            ),
        ),
        (
            "birthday within the next 3 days",
            attr(
                "birthday",
                json!({"op": "in_next", "amount": 3, "unit": "days"}),
            ),
        ),
        (
            "birthday this month",
            attr("birthday", json!({"op": "anniversary_this_month"})),
        ),
        (
            "birthday today",
            attr("birthday", json!({"op": "anniversary_today"})),
        ),
        (
            "birthday in the next 7 days",
            attr(
                "birthday",
                json!({"op": "anniversary_in_next_days", "days": 7}),
            ),
        ),
        (
            "birthday anniversary today",
            attr("birthday", json!({"op": "anniversary_today"})),
        ),
        (
            "first_order_at anniversary this month",
            attr("first_order_at", json!({"op": "anniversary_this_month"})),
        ),
        (
            "first_order_at anniversary in the next 1 day",
            attr(
                "first_order_at",
                json!({"op": "anniversary_in_next_days", "days": 1}),
            ),
        ),
        (
            "traits.`a b`.c is set",
            attr("traits.a b.c", json!({"op": "is_set"})),
        ),
        (
            r#"performed "Signed Up""#,
            json!({"type": "event", "event": "Signed Up", "count": {"op": "at_least", "times": 1},
                   "window": {"type": "ever"}, "where": []}),
        ),
        (
            r#"performed "Product Viewed" at least 3 times in the last 7 days where category = "Calçados""#,
            json!({"type": "event", "event": "Product Viewed", "count": {"op": "at_least", "times": 3},
                   "window": {"type": "last", "amount": 7, "unit": "days"},
                   "where": [{"property": "category", "test": {"op": "eq", "value": "Calçados"}}]}),
        ),
        (
            r#"has not performed "Order Completed" in the last 30 days"#,
            json!({"type": "event", "event": "Order Completed", "count": {"op": "exactly", "times": 0},
                   "window": {"type": "last", "amount": 30, "unit": "days"}, "where": []}),
        ),
        (
            r#"performed "X" in the last 2 weeks at most 2 times"#,
            json!({"type": "event", "event": "X", "count": {"op": "at_most", "times": 2},
                   "window": {"type": "last", "amount": 2, "unit": "weeks"}, "where": []}),
        ),
        (
            r#"performed "X" exactly 2 times between 2024-01-01 and 2024-01-31"#,
            json!({"type": "event", "event": "X", "count": {"op": "exactly", "times": 2},
                   "window": {"type": "between", "from": "2024-01-01", "to": "2024-01-31"}, "where": []}),
        ),
        (
            r#"performed Login where (properties.device.os = "ios" and price between 1 and 2)"#,
            json!({"type": "event", "event": "Login", "count": {"op": "at_least", "times": 1}, "window": {"type": "ever"},
                   "where": [{"property": "device.os", "test": {"op": "eq", "value": "ios"}},
                             {"property": "price", "test": {"op": "between", "low": 1, "high": 2}}]}),
        ),
        (
            r#"in segment "vip""#,
            json!({"type": "segment", "segment": "vip"}),
        ),
        (
            "in segment seg_01",
            json!({"type": "segment", "segment": "seg_01"}),
        ),
        (
            r#"not in segment "vip""#,
            json!({"type": "not", "expr": {"type": "segment", "segment": "vip"}}),
        ),
        (
            "phone is set and email is set or city is set",
            json!({"type": "or", "any": [
                {"type": "and", "all": [attr("phone", json!({"op": "is_set"})), attr("email", json!({"op": "is_set"}))]},
                attr("city", json!({"op": "is_set"}))]}),
        ),
        (
            "phone is set and (email is set or city is set)",
            json!({"type": "and", "all": [
                attr("phone", json!({"op": "is_set"})),
                {"type": "or", "any": [attr("email", json!({"op": "is_set"})), attr("city", json!({"op": "is_set"}))]}]}),
        ),
        (
            "phone is set and email is set and city is set",
            json!({"type": "and", "all": [attr("phone", json!({"op": "is_set"})), attr("email", json!({"op": "is_set"})),
                                          attr("city", json!({"op": "is_set"}))]}),
        ),
        (
            "not not phone is set",
            json!({"type": "not", "expr": {"type": "not", "expr": attr("phone", json!({"op": "is_set"}))}}),
        ),
        (
            "all of (phone is set)",
            json!({"type": "and", "all": [attr("phone", json!({"op": "is_set"}))]}),
        ),
        (
            "any of (phone is set, email is set)",
            json!({"type": "or", "any": [attr("phone", json!({"op": "is_set"})), attr("email", json!({"op": "is_set"}))]}),
        ),
        ("everyone", json!({"type": "and", "all": []})),
        ("nobody", json!({"type": "or", "any": []})),
        ("`not` = 1", attr("not", json!({"op": "eq", "value": 1}))),
    ];
    for (text, expected) in cases {
        let ast = parsed(text);
        assert_eq!(serde_json::to_value(&ast).unwrap(), expected, "{text}");
        assert_eq!(
            serde_json::from_value::<Expr>(expected).unwrap(),
            ast,
            "{text}"
        );
    }
}

#[test]
fn the_printer_writes_canonical_english() {
    let cases = [
        (
            "CITY = 'Recife' AND orders_count ≥ 2",
            r#"CITY = "Recife" and orders_count >= 2"#,
        ),
        (
            "not (tags contains \"vip\")",
            r#"not (tags contains "vip")"#,
        ),
        ("not in segment vip", r#"not in segment "vip""#),
        (
            "a is set or b is set and c is set",
            "a is set or (b is set and c is set)",
        ),
        (
            "(a is set and b is set) and c is set",
            "(a is set and b is set) and c is set",
        ),
        ("((a is set))", "a is set"),
        ("lifecycle is retention", r#"lifecycle = "retention""#),
        (
            "last_seen_at in the last 30 days",
            "last_seen_at within 30 days",
        ),
        (
            "last_seen_at less than 1 day ago",
            "last_seen_at within 1 day",
        ),
        (
            "traits.x in the next 2 weeks",
            "traits.x within the next 2 weeks",
        ),
        ("birthday anniversary this month", "birthday this month"),
        (
            "first_order_at aniversário hoje",
            "first_order_at anniversary today",
        ),
        (
            "created_at after \"2024-01-01T10:00:00-03:00\"",
            "created_at after 2024-01-01T13:00:00Z",
        ),
        ("created_at = 2024-01-01", r#"created_at = "2024-01-01""#),
        (r#"performed "X" at least 1 time ever"#, r#"performed "X""#),
        (
            r#"performed "X" exactly 0 times"#,
            r#"has not performed "X""#,
        ),
        (
            r#"never performed "X" within 3 days"#,
            r#"has not performed "X" in the last 3 days"#,
        ),
        (
            r#"performed "X" where (a = 1)"#,
            r#"performed "X" where a = 1"#,
        ),
        (
            r#"performed "X" where properties.properties.a = 1"#,
            r#"performed "X" where properties.properties.a = 1"#,
        ),
        (
            r#"performed "X" where (a = 1 e b = 2)"#,
            r#"performed "X" where (a = 1 and b = 2)"#,
        ),
        ("all of ()", "everyone"),
        (
            "traits.`plan` = \"a\\\"b\\\\c\\n\"",
            r#"traits.plan = "a\"b\\c\n""#,
        ),
        (
            "realizou \"Compra\" pelo menos 2 vezes",
            r#"performed "Compra" at least 2 times"#,
        ),
        (
            "total_spent entre 100 e 500",
            "total_spent between 100 and 500",
        ),
        ("x não é \"a\"", r#"x != "a""#),
        ("x não está preenchido", "x is not set"),
        ("x fora de (1)", "x not in (1)"),
        ("x começa com \"a\"", r#"x starts with "a""#),
        ("x não contém \"a\"", r#"x does not contain "a""#),
        (
            "x antes de 2024-01-01 ou x depois de 2024-01-01 ou x após 2024-01-01",
            "x before 2024-01-01 or x after 2024-01-01 or x after 2024-01-01",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(print(&parsed(text)), expected, "{text}");
    }
}

#[test]
fn syntax_errors_say_what_was_expected_and_where() {
    let deep = format!("{}city is set{}", "(".repeat(70), ")".repeat(70));
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            r#"orders_count > "três""#,
            "1:16",
            r#"expected a number after ">", found the text "três""#,
        ),
        (
            "orders_count >",
            "1:15",
            r#"expected a number after ">", found the end of the text"#,
        ),
        (
            "city = ",
            "1:8",
            r#"expected a value (text in quotes, a number, true or false) after "=", found the end of the text"#,
        ),
        (r#"city = "Recife" and"#, "1:20", "expected a condition"),
        (
            r#"city = "Recife" orders_count > 1"#,
            "1:17",
            r#"expected "and", "or" or the end of the text, found "orders_count""#,
        ),
        (
            r#"(city = "Recife""#,
            "1:17",
            r#"expected ")" to close the "(" at 1:1, found the end of the text"#,
        ),
        (
            "performed",
            "1:10",
            r#"expected an event name in quotes after "performed""#,
        ),
        (
            r#"performed "X" at least"#,
            "1:23",
            r#"expected a whole number after "at least""#,
        ),
        (
            r#"performed "X" at least 2.5 times"#,
            "1:24",
            r#"expected a whole number after "at least", found the number 2.5"#,
        ),
        (
            "last_seen_at within 30",
            "1:23",
            r#"expected a time unit (minutes, hours, days, weeks, months or years) after "30""#,
        ),
        (
            "last_seen_at within 30 parsecs",
            "1:24",
            r#"found "parsecs""#,
        ),
        (
            "last_order_at more than 3 days",
            "1:31",
            r#"expected "ago" after "days", found the end of the text"#,
        ),
        (
            "city starts with 3",
            "1:18",
            r#"expected text in quotes after "starts with", found the number 3"#,
        ),
        (
            r#"tags in "vip""#,
            "1:9",
            r#"expected a list of values in parentheses, such as ("a", "b") after "in""#,
        ),
        (
            "tags in (\"a\" \"b\")",
            "1:14",
            r#"expected ")" to close the "(" at 1:9, found the text "b""#,
        ),
        (
            "city",
            "1:5",
            r#"expected an operator (=, !=, <, >, contains, starts with, in, is set, between, before, after, within, …) after "city""#,
        ),
        (
            "birthday in the next 2 weeks",
            "1:24",
            r#"anniversaries are counted in days: expected "days" after 2"#,
        ),
        (
            "created_at before yesterday",
            "1:19",
            r#"expected a date (2024-01-31 or 2024-01-31T10:00:00Z) after "before", found "yesterday""#,
        ),
        (
            "created_at before \"soon\"",
            "1:19",
            r#"found the text "soon""#,
        ),
        (
            "created_at before 2023-02-29",
            "1:19",
            "2023-02-29 is not a valid date",
        ),
        (
            "first_order_at anniversary soon",
            "1:28",
            r#"expected "this month", "today" or "in the next N days" after "anniversary", found "soon""#,
        ),
        (
            "city = \"Recife",
            "1:8",
            r#"the text is not closed: a " is missing"#,
        ),
        ("traits.", "1:8", r#"expected a name after ".""#),
        (
            "in segment 3",
            "1:12",
            r#"expected a segment name in quotes after "in segment", found the number 3"#,
        ),
        (
            r#"performed "X" where"#,
            "1:20",
            r#"expected a property name after "where""#,
        ),
        (
            r#"performed "X" where (a = 1 and)"#,
            "1:31",
            r#"expected a property name after "and", found ")""#,
        ),
        (
            "city = \"Recife\"\n  and orders_count >= x",
            "2:23",
            r#"expected a number after ">=", found "x""#,
        ),
        (
            &deep,
            "1:66",
            "the conditions nest too deeply (more than 64 levels)",
        ),
        (
            "total_spent between 100 500",
            "1:25",
            r#"expected "and" after "100", found the number 500"#,
        ),
        ("total_spent between \"a\" and 1", "1:21", "expected a date"),
        ("all of (city is set,)", "1:21", "expected a condition"),
        (
            "last_seen_at within 99999999999 days",
            "1:21",
            "99999999999 is too large",
        ),
        ("x = 1 ~", "1:7", "unexpected character '~'"),
        ("", "1:1", "expected a condition"),
        ("x = \"\\q\"", "1:6", "unknown escape"),
    ];
    for (text, position, reason) in cases {
        let error = parse(text).expect_err(text);
        assert_eq!(error.code, ErrorCode::SyntaxError, "{text}");
        assert_eq!(
            error.position.map(|p| p.to_string()).as_deref(),
            Some(position),
            "{text}: {error}"
        );
        assert!(
            error.reason.contains(reason),
            "{text}: {:?} lacks {reason:?}",
            error.reason
        );
        assert!(
            error.to_string().ends_with(&format!(" at {position}")),
            "{error}"
        );
    }
}

#[test]
fn the_brief_error_example_reads_as_promised() {
    let error = parse(r#"city = "Recife" and x > y"#).unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"expected a number after ">", found "y" at 1:25"#
    );
    assert_eq!(
        error.position,
        Some(Position {
            offset: 24,
            line: 1,
            column: 25
        })
    );
    let field = error.to_field_error();
    assert_eq!(
        (field.code.as_str(), field.field.as_str()),
        ("syntax_error", "1:25")
    );
}

#[test]
fn validation_finds_unknown_fields_type_mismatches_and_empty_values() {
    let cases: Vec<(&str, ErrorCode, &str, &str, &str)> = vec![
        (
            r#"citty = "Recife""#,
            ErrorCode::UnknownField,
            "1:1",
            "/attribute",
            "did you mean city?",
        ),
        (
            r#"plan = "gold""#,
            ErrorCode::UnknownField,
            "1:1",
            "/attribute",
            "custom data is written traits.plan",
        ),
        (
            "traits.`` is set",
            ErrorCode::UnknownField,
            "1:1",
            "/attribute",
            "is not a valid path",
        ),
        (
            "city > 3",
            ErrorCode::TypeMismatch,
            "1:6",
            "/test",
            r#"city is text, but ">" compares numbers"#,
        ),
        (
            "city = 3",
            ErrorCode::TypeMismatch,
            "1:6",
            "/test",
            "compare it with text in quotes",
        ),
        (
            "city within 3 days",
            ErrorCode::TypeMismatch,
            "1:6",
            "/test",
            "not a date",
        ),
        (
            r#"orders_count = "2""#,
            ErrorCode::TypeMismatch,
            "1:14",
            "/test",
            "write the value without quotes",
        ),
        (
            r#"orders_count contains "2""#,
            ErrorCode::TypeMismatch,
            "1:14",
            "/test",
            "applies to text",
        ),
        (
            "orders_count this_month is set",
            ErrorCode::SyntaxError,
            "1:14",
            "",
            "",
        ),
        (
            "predicted_clv before 2024-01-01",
            ErrorCode::TypeMismatch,
            "1:15",
            "/test",
            "not a date",
        ),
        (
            r#"tags = "vip""#,
            ErrorCode::TypeMismatch,
            "1:6",
            "/test",
            "use contains",
        ),
        (
            r#"tags starts with "v""#,
            ErrorCode::TypeMismatch,
            "1:6",
            "/test",
            "starts with applies to text",
        ),
        (
            r#"tags in (1)"#,
            ErrorCode::TypeMismatch,
            "1:6",
            "/test",
            "text in quotes",
        ),
        (
            "birthday > 3",
            ErrorCode::TypeMismatch,
            "1:10",
            "/test",
            "use before, after or between dates",
        ),
        (
            r#"last_order_at = "yesterday""#,
            ErrorCode::TypeMismatch,
            "1:15",
            "/test",
            "compare it with a date",
        ),
        (
            r#"created_at contains "2024""#,
            ErrorCode::TypeMismatch,
            "1:12",
            "/test",
            "applies to text",
        ),
        (
            "total_spent between 500 and 100",
            ErrorCode::InvalidValue,
            "1:13",
            "/test",
            "the lower bound comes first",
        ),
        (
            "created_at between 2024-02-01 and 2024-01-01",
            ErrorCode::InvalidValue,
            "1:12",
            "/test",
            "the earlier date comes first",
        ),
        (
            "traits.plan in ()",
            ErrorCode::InvalidValue,
            "1:13",
            "/test",
            "the list is empty",
        ),
        (
            "last_seen_at within 0 days",
            ErrorCode::InvalidValue,
            "1:14",
            "/test",
            "a window of 0",
        ),
        (
            r#"performed "X" in the last 0 days"#,
            ErrorCode::InvalidValue,
            "1:15",
            "/window",
            "a window of 0",
        ),
        (
            r#"performed "X" between 2024-02-01 and 2024-01-01"#,
            ErrorCode::InvalidValue,
            "1:15",
            "/window",
            "earlier date",
        ),
        (
            r#"performed """#,
            ErrorCode::InvalidValue,
            "1:11",
            "/event",
            "the event name is empty",
        ),
        (
            r#"performed "X" where price between 5 and 1"#,
            ErrorCode::InvalidValue,
            "1:27",
            "/where/0/test",
            "lower bound",
        ),
        (
            r#"in segment """#,
            ErrorCode::InvalidValue,
            "1:12",
            "/segment",
            "the segment name is empty",
        ),
        (
            "not (citty is set)",
            ErrorCode::UnknownField,
            "1:6",
            "/expr/attribute",
            "citty",
        ),
        (
            r#"city is set and (phone is set or orders_count = "x")"#,
            ErrorCode::TypeMismatch,
            "1:47",
            "/all/1/any/1/test",
            "orders_count is a number",
        ),
    ];
    for (text, code, position, pointer, reason) in cases {
        let error = match parse_with_spans(text) {
            Err(e) => e,
            Ok(parsed) => parsed.validate().expect_err(text).remove(0),
        };
        assert_eq!(error.code, code, "{text}: {error}");
        assert_eq!(
            error.position.map(|p| p.to_string()).as_deref(),
            Some(position),
            "{text}: {error}"
        );
        assert_eq!(error.pointer, pointer, "{text}");
        assert!(
            error.reason.contains(reason),
            "{text}: {:?} lacks {reason:?}",
            error.reason
        );
    }
}

#[test]
fn validation_reports_every_problem_and_accepts_sound_segments() {
    let errors = parse_with_spans(r#"citty is set or city > 3 or plan = 1"#)
        .unwrap()
        .validate()
        .unwrap_err();
    let found: Vec<_> = errors
        .iter()
        .map(|e| (e.code.as_str(), e.pointer.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("unknown_field", "/any/0/attribute"),
            ("type_mismatch", "/any/1/test"),
            ("unknown_field", "/any/2/attribute")
        ]
    );
    for text in EXAMPLES.iter().filter(|t| !t.contains("cidade_natal")) {
        assert_eq!(parse_with_spans(text).unwrap().validate(), Ok(()), "{text}");
    }
    // An AST sent as JSON has no text: errors point into the JSON instead.
    let ast: Expr = serde_json::from_value(json!({"type": "or", "any": [
        {"type": "attribute", "attribute": "city", "test": {"op": "gt", "value": 3}}]}))
    .unwrap();
    let error = validate(&ast).unwrap_err().remove(0);
    assert_eq!(
        (error.pointer.as_str(), error.position),
        ("/any/0/test", None)
    );
    assert_eq!(
        error.to_string(),
        r#"city is text, but ">" compares numbers at /any/0/test"#
    );
    let field = error.to_field_error();
    assert_eq!(
        (field.code.as_str(), field.field.as_str()),
        ("type_mismatch", "/any/0/test")
    );
}

/// Stored segments for the reference checks: (key, id, definition).
const STORED: &[(&str, &str, &str)] = &[
    ("vip", "seg_vip", "orders_count >= 10"),
    (
        "gold",
        "seg_gold",
        r#"in segment "vip" and total_spent > 1000"#,
    ),
    ("loop_a", "seg_a", r#"in segment "loop_b""#),
    ("loop_b", "seg_b", r#"in segment "seg_a""#),
    ("uses_new", "seg_uses_new", r#"in segment "seg_new""#),
    (
        "dangling",
        "seg_dangling",
        r#"in segment "deleted_long_ago""#,
    ),
];

fn lookup(reference: &str) -> Option<ResolvedSegment> {
    STORED
        .iter()
        .find(|(key, id, _)| *key == reference || *id == reference)
        .map(|(_, id, text)| ResolvedSegment {
            id: id.to_string(),
            expr: parsed(text),
        })
}

#[test]
fn references_must_exist_and_never_loop() {
    /// (segment being saved, its text, the expected error: code, position, reason).
    type Case<'a> = (&'a str, &'a str, Option<(ErrorCode, &'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "seg_new",
            r#"in segment "gold" and not in segment "vip""#,
            None,
        ),
        ("seg_new", r#"in segment "dangling""#, None),
        (
            "seg_new",
            r#"in segment "nope""#,
            Some((
                ErrorCode::UnknownSegment,
                "1:12",
                r#"there is no segment "nope""#,
            )),
        ),
        (
            "seg_new",
            r#"city is set and (phone is set or not in segment "nope")"#,
            Some((
                ErrorCode::UnknownSegment,
                "1:49",
                r#"there is no segment "nope""#,
            )),
        ),
        (
            "seg_vip",
            r#"in segment "gold""#,
            Some((
                ErrorCode::CyclicReference,
                "1:12",
                r#"in segment "gold" makes a loop: seg_vip → seg_gold → seg_vip"#,
            )),
        ),
        (
            "seg_vip",
            r#"in segment "seg_vip""#,
            Some((ErrorCode::CyclicReference, "1:12", "cannot include itself")),
        ),
        (
            "seg_vip",
            r#"in segment "vip""#,
            Some((ErrorCode::CyclicReference, "1:12", "seg_vip → seg_vip")),
        ),
        (
            "seg_new",
            r#"in segment "uses_new""#,
            Some((
                ErrorCode::CyclicReference,
                "1:12",
                "seg_new → seg_uses_new → seg_new",
            )),
        ),
        (
            "seg_new",
            r#"city is set or in segment "loop_a""#,
            Some((
                ErrorCode::CyclicReference,
                "1:27",
                "depends on segments that include each other: seg_a → seg_b → seg_a",
            )),
        ),
    ];
    for (segment_id, text, expected) in cases {
        let result = parse_with_spans(text)
            .unwrap()
            .check_references(segment_id, &lookup);
        match (result, expected) {
            (Ok(()), None) => {}
            (Err(error), Some((code, position, reason))) => {
                assert_eq!(error.code, code, "{text}: {error}");
                assert_eq!(
                    error.position.map(|p| p.to_string()).as_deref(),
                    Some(position),
                    "{text}"
                );
                assert!(
                    error.reason.contains(reason),
                    "{text}: {:?} lacks {reason:?}",
                    error.reason
                );
            }
            (result, expected) => panic!("{text}: got {result:?}, expected {expected:?}"),
        }
    }
    // Without text, the error points into the JSON form.
    let error = check_references(
        "seg_vip",
        &parsed(r#"phone is set or in segment "gold""#),
        &lookup,
    )
    .unwrap_err();
    assert_eq!(
        (error.code, error.pointer.as_str()),
        (ErrorCode::CyclicReference, "/any/1/segment")
    );
}

/// Ana, a customer in São Paulo, seen at a fixed `now`.
fn ana() -> Customer {
    let created = at("2024-01-01T12:00:00Z");
    let mut c = Customer::new(
        CustomerId::generate(1, 1),
        WorkspaceId::generate(1, 1),
        created,
    );
    c.name = Some("Ana Souza".into());
    c.email = Some(crate::contact::Email::parse("ana@exemplo.com.br").unwrap());
    c.city = Some("São Paulo".into());
    c.state = Some("SP".into());
    c.country = Some("BR".into());
    c.locale = Some("pt-BR".into());
    c.tags = vec!["vip".into(), "newsletter".into()];
    c.birthday = Some(date("1990-05-17"));
    c.last_seen_at = at("2026-05-10T12:00:00Z");
    c.traits = json!({
        "plan": "gold", "age": 34, "vip": true, "sizes": [38, 39], "score": "42",
        "address": {"city": "Recife"}, "trial_ends_at": "2026-05-13", "signup": "2024-01-31T10:00:00Z",
        "flat.key": "yes", "empty": "", "nothing": null
    })
    .as_object()
    .unwrap()
    .clone();
    c.stats = OrderStats {
        orders_count: 3,
        total_spent_minor: 45_000,
        first_order_at: Some(at("2025-01-10T15:00:00Z")),
        last_order_at: Some(at("2026-01-20T15:00:00Z")),
    };
    c
}

const NOW: &str = "2026-05-10T15:00:00Z"; // noon in São Paulo

/// Event counts the store would have computed for Ana: (condition text, count).
const COUNTS: &[(&str, u64)] = &[
    (
        r#"performed "Product Viewed" in the last 7 days where category = "Calçados""#,
        4,
    ),
    (r#"performed "Order Completed" in the last 30 days"#, 0),
    (r#"performed "Order Completed""#, 3),
];

fn snapshot(customer: Customer) -> CustomerSnapshot {
    let mut snapshot = CustomerSnapshot::new(customer, SAO_PAULO)
        .with_computed("lifecycle_stage", json!("retention"))
        .with_computed("rfm_group", json!("champions"))
        .with_computed("predicted_clv", json!(812.5))
        .with_computed("p_alive", json!(0.83));
    for (text, count) in COUNTS {
        let requirement = event_requirements(&parsed(text)).remove(0);
        snapshot.event_counts.set(requirement, *count);
    }
    snapshot
}

fn member_of(reference: &str) -> bool {
    reference == "vip"
}

#[test]
fn the_evaluator_agrees_with_the_truth_table() {
    let snapshot = snapshot(ana());
    let cases: &[(&str, bool)] = &[
        // Text ignores case and accents; negations hold for missing values.
        (r#"city = "São Paulo""#, true),
        (r#"city = "sao paulo""#, true),
        (r#"city = "Recife""#, false),
        (r#"city != "Recife""#, true),
        (r#"city != "SÃO PAULO""#, false),
        (r#"city in ("Recife", "São Paulo")"#, true),
        (r#"city not in ("Recife")"#, true),
        (r#"name contains "souza""#, true),
        (r#"name contains "silva""#, false),
        (r#"name does not contain "silva""#, true),
        (r#"name starts with "ANA""#, true),
        (r#"name starts with "souza""#, false),
        (r#"email = "ANA@exemplo.com.br""#, true),
        (r#"locale = "pt-br""#, true),
        ("phone is set", false),
        ("phone is not set", true),
        (r#"phone != "+5511987654321""#, true),
        (r#"phone = "+5511987654321""#, false),
        (r#"phone contains "55""#, false),
        // Tags are a list: contains means "has the tag".
        (r#"tags contains "VIP""#, true),
        (r#"tags contains "vi""#, false),
        (r#"tags does not contain "churned""#, true),
        (r#"tags in ("x", "newsletter")"#, true),
        (r#"tags not in ("x")"#, true),
        ("tags is set", true),
        // Numbers and money in reais.
        ("orders_count = 3", true),
        ("orders_count != 3", false),
        ("orders_count >= 3", true),
        ("orders_count > 3", false),
        ("orders_count < 3", false),
        ("orders_count <= 3", true),
        ("orders_count in (1, 3)", true),
        ("total_spent = 450", true),
        ("total_spent = 450.0", true),
        ("total_spent between 100 and 500", true),
        ("total_spent between 450 and 450", true),
        ("total_spent between 450.01 and 500", false),
        ("average_order_value = 150", true),
        // Traits are dynamically typed.
        (r#"traits.plan = "gold""#, true),
        (r#"traits.plan in ("gold", "silver")"#, true),
        (r#"traits.plan = 1"#, false),
        ("traits.age > 30", true),
        (r#"traits.age = "34""#, true),
        ("traits.score > 40", true),
        ("traits.vip = true", true),
        ("traits.vip = false", false),
        ("traits.vip is set", true),
        ("traits.sizes contains 39", true),
        ("traits.sizes contains 40", false),
        ("traits.sizes > 38", true),
        ("traits.sizes = 38", true),
        ("traits.sizes < 38", false),
        (r#"traits.address.city = "Recife""#, true),
        ("traits.address is set", true),
        (r#"traits.flat.key = "yes""#, true),
        ("traits.missing is not set", true),
        (r#"traits.missing != "x""#, true),
        (r#"traits.missing = "x""#, false),
        ("traits.empty is set", false),
        ("traits.nothing is not set", true),
        ("traits.missing > 0", false),
        // Computed attributes.
        ("lifecycle is retention", true),
        (r#"lifecycle_stage = "loyalty""#, false),
        (r#"rfm_group = "champions""#, true),
        ("predicted_clv > 500", true),
        ("clv between 800 and 900", true),
        ("p_alive < 0.5", false),
        ("computed.p_alive >= 0.83", true),
        ("computed.churn_risk is not set", true),
        // Dates: days in São Paulo; created_at is 2024-01-01 09:00 there.
        ("created_at before 2024-01-02", true),
        ("created_at before 2024-01-01", false),
        ("created_at after 2023-12-31", true),
        ("created_at after 2024-01-01", false),
        ("created_at after 2024-01-01T11:59:59Z", true),
        ("created_at after 2024-01-01T12:00:00Z", false),
        ("created_at before 2024-01-01T12:00:01Z", true),
        ("created_at between 2024-01-01 and 2024-01-01", true),
        ("created_at between 2023-01-01 and 2023-12-31", false),
        ("created_at = 2024-01-01", true),
        ("created_at = 2024-01-01T12:00:00Z", true),
        ("created_at != 2024-01-02", true),
        ("last_order_at more than 90 days ago", true),
        ("last_order_at within 90 days", false),
        ("last_order_at within 4 months", true),
        ("last_order_at more than 3 months ago", true),
        ("last_seen_at within 1 day", true),
        ("last_seen_at within 2 hours", false),
        ("first_order_at is set", true),
        ("first_order_at anniversary this month", false),
        ("traits.trial_ends_at within the next 3 days", true),
        ("traits.trial_ends_at within the next 2 days", false),
        ("traits.trial_ends_at within 3 days", false),
        ("traits.signup before 2024-02-01", true),
        ("traits.signup = 2024-01-31", false),
        ("traits.plan before 2024-02-01", false),
        // Birthdays: 17 May, now is 10 May.
        ("birthday this month", true),
        ("birthday today", false),
        ("birthday in the next 7 days", true),
        ("birthday in the next 6 days", false),
        ("birthday before 2000-01-01", true),
        ("birthday = 1990-05-17", true),
        ("birthday more than 18 years ago", true),
        ("birthday within the next 7 days", false),
        // Events: counts come from the snapshot; conditions sharing a requirement share a count.
        (
            r#"performed "Product Viewed" at least 3 times in the last 7 days where category = "Calçados""#,
            true,
        ),
        (
            r#"performed "Product Viewed" at least 5 times in the last 7 days where category = "Calçados""#,
            false,
        ),
        (
            r#"performed "Product Viewed" at most 4 times in the last 7 days where category = "Calçados""#,
            true,
        ),
        (
            r#"performed "Product Viewed" exactly 4 times in the last 7 days where category = "Calçados""#,
            true,
        ),
        (
            r#"performed "Product Viewed" in the last 7 days where category = "Bolsas""#,
            false,
        ),
        (
            r#"has not performed "Order Completed" in the last 30 days"#,
            true,
        ),
        (r#"performed "Order Completed" in the last 30 days"#, false),
        (r#"performed "Order Completed" at least 3 times"#, true),
        (r#"performed "Never Counted""#, false),
        (r#"has not performed "Never Counted""#, true),
        // Segments.
        (r#"in segment "vip""#, true),
        (r#"in segment "gold""#, false),
        (r#"not in segment "gold""#, true),
        // Combinations.
        (r#"city = "São Paulo" and orders_count >= 2"#, true),
        (r#"city = "Recife" and orders_count >= 2"#, false),
        (r#"city = "Recife" or orders_count >= 2"#, true),
        (r#"not (city = "Recife")"#, true),
        (
            r#"last_order_at more than 90 days ago and not (tags contains "vip")"#,
            false,
        ),
        (
            r#"birthday this month or in segment "aniversariantes""#,
            true,
        ),
        (
            r#"total_spent between 100 and 500 and traits.plan in ("gold", "silver")"#,
            true,
        ),
        ("everyone", true),
        ("nobody", false),
        ("all of ()", true),
        ("any of ()", false),
        ("all of (nobody)", false),
        ("any of (everyone)", true),
    ];
    let now = at(NOW);
    for (text, expected) in cases {
        assert_eq!(
            matches(&parsed(text), &snapshot, now, &member_of),
            *expected,
            "{text}"
        );
    }
}

#[test]
fn and_or_not_follow_boolean_logic() {
    let constant = |b: bool| if b { "everyone" } else { "nobody" };
    let snapshot = snapshot(ana());
    let now = at(NOW);
    for a in [false, true] {
        for b in [false, true] {
            for c in [false, true] {
                let (x, y, z) = (constant(a), constant(b), constant(c));
                let table = [
                    (format!("{x} and {y}"), a && b),
                    (format!("{x} or {y}"), a || b),
                    (format!("not {x}"), !a),
                    (format!("{x} or {y} and {z}"), a || (b && c)),
                    (format!("({x} or {y}) and {z}"), (a || b) && c),
                    (format!("not ({x} and {y}) or {z}"), !(a && b) || c),
                    (format!("not {x} and not {y}"), !a && !b),
                ];
                for (text, expected) in table {
                    assert_eq!(
                        matches(&parsed(&text), &snapshot, now, &member_of),
                        expected,
                        "{text}"
                    );
                }
            }
        }
    }
}

fn holds_at(text: &str, customer: &Customer, now: &str, tz: Tz) -> bool {
    let snapshot = CustomerSnapshot::new(customer.clone(), tz);
    matches(&parsed(text), &snapshot, at(now), &|_| false)
}

#[test]
fn relative_dates_are_exact_at_their_boundaries() {
    let mut c = ana();
    c.stats.last_order_at = Some(at("2026-01-01T00:00:00Z"));
    // 90 days after the order, to the second.
    let cases = [
        ("2026-04-01T00:00:00Z", true, false),
        ("2026-04-01T00:00:01Z", false, true),
        ("2026-03-31T23:59:59Z", true, false),
        ("2026-01-01T00:00:00Z", true, false),
    ];
    for (now, within, more_than_ago) in cases {
        assert_eq!(
            holds_at("last_order_at within 90 days", &c, now, SAO_PAULO),
            within,
            "within at {now}"
        );
        assert_eq!(
            holds_at("last_order_at more than 90 days ago", &c, now, SAO_PAULO),
            more_than_ago,
            "ago at {now}"
        );
    }
    // A value in the future is neither within the last days nor long ago; it is in the next days.
    assert!(!holds_at(
        "last_order_at within 90 days",
        &c,
        "2025-12-31T23:59:59Z",
        SAO_PAULO
    ));
    assert!(!holds_at(
        "last_order_at more than 90 days ago",
        &c,
        "2025-12-31T23:59:59Z",
        SAO_PAULO
    ));
    assert!(holds_at(
        "last_order_at within the next 1 minute",
        &c,
        "2025-12-31T23:59:59Z",
        SAO_PAULO
    ));
    assert!(holds_at(
        "last_order_at within the next 1 minute",
        &c,
        "2026-01-01T00:00:00Z",
        SAO_PAULO
    ));
    assert!(!holds_at(
        "last_order_at within the next 1 minute",
        &c,
        "2026-01-01T00:00:01Z",
        SAO_PAULO
    ));
    // For past values, "within N" and "more than N ago" partition time.
    for hour in 0..(24 * 200) {
        let now = (at("2026-01-01T00:00:00Z") + chrono::Duration::minutes(hour * 59)).to_rfc3339();
        assert_ne!(
            holds_at("last_order_at within 90 days", &c, &now, SAO_PAULO),
            holds_at("last_order_at more than 90 days ago", &c, &now, SAO_PAULO),
            "{now}"
        );
    }
    // Months are calendar months in the workspace's zone: 31 March minus a month is 28 February.
    c.stats.last_order_at = Some(at("2026-02-28T12:00:00-03:00"));
    assert!(holds_at(
        "last_order_at within 1 month",
        &c,
        "2026-03-31T12:00:00-03:00",
        SAO_PAULO
    ));
    assert!(!holds_at(
        "last_order_at within 1 month",
        &c,
        "2026-03-31T12:00:01-03:00",
        SAO_PAULO
    ));
}

#[test]
fn calendar_dates_compare_as_whole_days_in_the_workspace_zone() {
    let mut c = ana();
    c.traits.insert("visited_on".into(), json!("2026-05-01"));
    // Every moment of 10 May in São Paulo sees 1 May as "within 9 days" and not "within 8".
    for now in [
        "2026-05-10T03:00:00Z",
        "2026-05-10T15:00:00Z",
        "2026-05-11T02:59:59Z",
    ] {
        assert!(
            holds_at("traits.visited_on within 9 days", &c, now, SAO_PAULO),
            "{now}"
        );
        assert!(
            !holds_at("traits.visited_on within 8 days", &c, now, SAO_PAULO),
            "{now}"
        );
        assert!(
            holds_at("traits.visited_on more than 8 days ago", &c, now, SAO_PAULO),
            "{now}"
        );
    }
    // The same instant is still 9 May in São Paulo, 10 May in UTC.
    assert!(holds_at(
        "traits.visited_on within 8 days",
        &c,
        "2026-05-10T01:00:00Z",
        SAO_PAULO
    ));
    assert!(!holds_at(
        "traits.visited_on within 8 days",
        &c,
        "2026-05-10T01:00:00Z",
        Tz::UTC
    ));
    // A date literal on a date-time is that day in the zone: 02:00 UTC on 10 May is 9 May there.
    c.last_seen_at = at("2026-05-10T02:00:00Z");
    assert!(holds_at("last_seen_at = 2026-05-09", &c, NOW, SAO_PAULO));
    assert!(holds_at("last_seen_at = 2026-05-10", &c, NOW, Tz::UTC));
    assert!(holds_at(
        "last_seen_at before 2026-05-10",
        &c,
        NOW,
        SAO_PAULO
    ));
    assert!(!holds_at(
        "last_seen_at before 2026-05-10",
        &c,
        NOW,
        Tz::UTC
    ));
}

#[test]
fn birthdays_including_the_29th_of_february() {
    let mut c = ana();
    c.birthday = Some(date("2000-02-29"));
    let cases = [
        ("birthday today", "2027-02-28T12:00:00Z", true),
        ("birthday today", "2027-03-01T12:00:00Z", false),
        ("birthday today", "2028-02-28T12:00:00Z", false),
        ("birthday today", "2028-02-29T12:00:00Z", true),
        ("birthday this month", "2027-02-01T12:00:00Z", true),
        ("birthday this month", "2027-03-01T12:00:00Z", false),
        ("birthday in the next 1 day", "2028-02-28T12:00:00Z", true),
        ("birthday in the next 0 days", "2028-02-28T12:00:00Z", false),
        ("birthday in the next 1 day", "2027-02-27T12:00:00Z", true),
        ("birthday in the next 0 days", "2027-02-28T12:00:00Z", true),
        (
            "birthday in the next 365 days",
            "2027-03-01T12:00:00Z",
            true,
        ),
        (
            "birthday in the next 364 days",
            "2027-03-01T12:00:00Z",
            false,
        ),
    ];
    for (text, now, expected) in cases {
        assert_eq!(
            holds_at(text, &c, now, SAO_PAULO),
            expected,
            "{text} at {now}"
        );
    }
    // Across the new year.
    c.birthday = Some(date("1990-01-02"));
    assert!(holds_at(
        "birthday in the next 5 days",
        &c,
        "2026-12-28T12:00:00Z",
        SAO_PAULO
    ));
    assert!(!holds_at(
        "birthday in the next 4 days",
        &c,
        "2026-12-28T12:00:00Z",
        SAO_PAULO
    ));
    assert!(holds_at(
        "birthday this month",
        &c,
        "2027-01-31T12:00:00Z",
        SAO_PAULO
    ));
    // "Today" is the workspace's today: 23:00 on 16 May in São Paulo is already 17 May in UTC.
    c.birthday = Some(date("1990-05-17"));
    assert!(!holds_at(
        "birthday today",
        &c,
        "2026-05-17T02:00:00Z",
        SAO_PAULO
    ));
    assert!(holds_at(
        "birthday today",
        &c,
        "2026-05-17T02:00:00Z",
        Tz::UTC
    ));
    // No birthday, no anniversary.
    c.birthday = None;
    for text in [
        "birthday today",
        "birthday this month",
        "birthday in the next 365 days",
    ] {
        assert!(!holds_at(text, &c, NOW, SAO_PAULO), "{text}");
    }
    // Anniversaries of date-times use the local day: first order 10 Jan 2025 15:00 UTC.
    let c = ana();
    assert!(holds_at(
        "first_order_at anniversary today",
        &c,
        "2026-01-10T20:00:00Z",
        SAO_PAULO
    ));
    assert!(holds_at(
        "first_order_at anniversary in the next 3 days",
        &c,
        "2026-01-07T20:00:00Z",
        SAO_PAULO
    ));
}

#[test]
fn event_requirements_are_distinct_and_shared_by_counts() {
    let ast = parsed(
        r#"performed "Product Viewed" at least 3 times in the last 7 days where category = "Calçados"
           and not performed "Product Viewed" at least 10 times in the last 7 days where category = "Calçados"
           and (has not performed "Order Completed" in the last 30 days or performed "Order Completed" ever)
           and city is set"#,
    );
    let requirements = event_requirements(&ast);
    assert_eq!(requirements.len(), 3);
    assert_eq!(
        serde_json::to_value(&requirements[0]).unwrap(),
        json!({"event": "Product Viewed", "where": [{"property": "category", "test": {"op": "eq", "value": "Calçados"}}],
               "window": {"type": "last", "amount": 7, "unit": "days"}})
    );
    assert_eq!(requirements[1].event, "Order Completed");
    assert_eq!(requirements[2].window, Window::Ever);
    assert!(requirements[0].is_time_relative() && requirements[1].is_time_relative());
    assert!(!requirements[2].is_time_relative());

    // A counted event matches a requirement by name, window and filters.
    let mut event = crate::event::Event {
        id: crate::ids::EventId::generate(1, 1),
        workspace_id: WorkspaceId::generate(1, 1),
        customer_id: CustomerId::generate(1, 1),
        message_id: "m1".into(),
        event_type: crate::event::EventType::Track,
        name: Some("Product Viewed".into()),
        channel: "web".into(),
        source: "api".into(),
        user_id: Some("u1".into()),
        anonymous_id: None,
        properties: json!({"category": "calçados", "price": 199.9})
            .as_object()
            .unwrap()
            .clone(),
        context: Default::default(),
        timestamp: at("2026-05-05T10:00:00Z"),
        received_at: at("2026-05-05T10:00:00Z"),
    };
    let now = at(NOW);
    assert!(requirements[0].matches_event(&event, now, SAO_PAULO));
    assert!(!requirements[0].matches_event(&event, at("2026-05-12T10:00:01Z"), SAO_PAULO));
    event.properties.insert("category".into(), json!("Bolsas"));
    assert!(!requirements[0].matches_event(&event, now, SAO_PAULO));
    event.name = Some("Order Completed".into());
    assert!(requirements[2].matches_event(&event, now, SAO_PAULO));

    // Real-time: counting the event in moves the customer into the segment.
    let segment = parsed(r#"performed "Order Completed" at least 4 times"#);
    let mut snapshot = snapshot(ana());
    assert!(!matches(&segment, &snapshot, now, &member_of));
    snapshot
        .event_counts
        .increment(&event_requirements(&segment)[0]);
    assert!(matches(&segment, &snapshot, now, &member_of));
    assert_eq!(
        snapshot.event_counts.get(&event_requirements(&segment)[0]),
        Some(4)
    );
}

#[test]
fn property_filters_test_nested_and_typed_properties() {
    let properties =
        json!({"product": {"brand": "Nike", "sizes": [40, 41]}, "price": "199.90", "coupon": null})
            .as_object()
            .unwrap()
            .clone();
    let now = at(NOW);
    let cases = [
        (r#"product.brand = "nike""#, true),
        ("product.sizes contains 41", true),
        ("price > 150", true),
        ("price between 200 and 300", false),
        ("coupon is set", false),
        ("coupon is not set", true),
        (r#"missing != "x""#, true),
    ];
    for (filter, expected) in cases {
        let ast = parsed(&format!(r#"performed "X" where {filter}"#));
        let Expr::Event(condition) = ast else {
            panic!()
        };
        assert_eq!(
            condition.filters[0].matches(&properties, now, SAO_PAULO),
            expected,
            "{filter}"
        );
    }
}

#[test]
fn dependencies_say_what_to_re_evaluate() {
    let deps = depends_on(&parsed(
        r#"lifecycle is retention and traits.address.city = "Recife" and computed.rfm_group = "x"
           and performed "Product Viewed" and not in segment "vip" or has not performed "Order Completed""#,
    ));
    assert_eq!(
        serde_json::to_value(&deps).unwrap(),
        json!({"fields": ["lifecycle_stage", "rfm_group", "traits.address.city"],
               "event_names": ["Order Completed", "Product Viewed"], "segments": ["vip"], "time_relative": false})
    );
    assert!(deps.depends_on_event("Product Viewed") && !deps.depends_on_event("Page Viewed"));
    assert!(deps.depends_on_field("traits.address"));
    assert!(deps.depends_on_field("traits.address.city"));
    assert!(deps.depends_on_field("lifecycle"));
    assert!(!deps.depends_on_field("traits.addresses"));
    assert!(!deps.depends_on_field("city"));

    let relative = [
        "last_seen_at within 3 days",
        "last_seen_at more than 3 days ago",
        "traits.x within the next 3 days",
        "birthday this month",
        "birthday today",
        "birthday in the next 3 days",
        r#"performed "X" in the last 3 days"#,
        r#"performed "X" where date within 3 days"#,
        r#"not (city is set or last_seen_at within 3 days)"#,
    ];
    for text in relative {
        assert!(depends_on(&parsed(text)).time_relative, "{text}");
    }
    let absolute = [
        "created_at before 2024-01-01",
        r#"performed "X" between 2024-01-01 and 2024-02-01"#,
        r#"performed "X" at least 3 times"#,
        r#"in segment "vip""#,
    ];
    for text in absolute {
        assert!(!depends_on(&parsed(text)).time_relative, "{text}");
    }
}

#[test]
fn the_json_form_is_strict_and_has_defaults() {
    let minimal: Expr =
        serde_json::from_value(json!({"type": "event", "event": "Signed Up"})).unwrap();
    assert_eq!(minimal, parsed(r#"performed "Signed Up""#));
    let refused = [
        json!({"type": "event", "event": "X", "windw": {"type": "ever"}}),
        json!({"type": "attribute", "attribute": "city", "test": {"op": "eq", "valeu": "x"}}),
        json!({"type": "attribute", "attribute": "city", "test": {"op": "eq", "value": null}}),
        json!({"type": "attribute", "attribute": "city", "test": {"op": "eq", "value": [1]}}),
        json!({"type": "attribute", "attribute": "city", "test": {"op": "like", "value": "x"}}),
        json!({"type": "attribute", "attribute": "created_at", "test": {"op": "before", "date": "ontem"}}),
        json!({"type": "and", "all": [], "extra": 1}),
        json!({"type": "xor", "all": []}),
        json!({"type": "event", "event": "X", "window": {"type": "last", "amount": -1, "unit": "days"}}),
        json!({"type": "event", "event": "X", "window": {"type": "last", "amount": 1, "unit": "fortnights"}}),
    ];
    for value in refused {
        assert!(
            serde_json::from_value::<Expr>(value.clone()).is_err(),
            "{value}"
        );
    }
}

#[test]
fn floats_print_in_a_form_the_lexer_reads_back() {
    for f in [
        0.1,
        3.0,
        -0.0,
        1e21,
        1.5e-7,
        123456.789,
        f64::MAX,
        f64::MIN_POSITIVE,
        2.0f64.powi(60),
    ] {
        let expr = Expr::attribute(
            "traits.x",
            Test::Gt {
                value: Number::from_f64(f).unwrap(),
            },
        );
        assert_eq!(
            parse(&print(&expr)),
            Ok(expr.clone()),
            "{f}: {}",
            print(&expr)
        );
    }
    for n in [
        Number::from(u64::MAX),
        Number::from(i64::MIN),
        Number::from(0),
    ] {
        let expr = Expr::attribute(
            "traits.x",
            Test::Eq {
                value: Literal::Number(n),
            },
        );
        assert_eq!(parse(&print(&expr)), Ok(expr.clone()), "{}", print(&expr));
    }
}

/// A small deterministic generator (xorshift), so the round trip is checked over thousands of
/// odd ASTs without a random-number crate in the domain's dependency tree.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    fn name(&mut self) -> String {
        self.pick(&[
            "city",
            "birthday",
            "traits.plan",
            "traits.a b.c",
            "traits.`x`",
            "not",
            "performed",
            "e",
            "ou",
            "in",
            "no",
            "everyone",
            "todos",
            "Não",
            "2024",
            "",
            "a..b",
            "traits.",
            "properties.x",
            "properties",
            "lifecycle",
            "computed.p_alive",
            "x\"y",
            "back`tick",
            "nova\nlinha",
            "ç",
            "all",
            "any",
            "has",
        ])
        .to_string()
    }

    fn text(&mut self) -> String {
        self.pick(&[
            "Recife",
            "",
            "São Paulo",
            "a\"b",
            "c\\d",
            "tab\there",
            "'single'",
            "\u{1}",
            "2024-01-01",
            "true",
            "é",
        ])
        .to_string()
    }

    fn number(&mut self) -> Number {
        match self.below(5) {
            0 => Number::from(self.next() % 1000),
            1 => Number::from(-((self.next() % 1000) as i64) - 1),
            2 => Number::from(u64::MAX - self.next() % 3),
            // serde_json parses short decimals exactly (17-digit ones may be off by one ulp
            // without its `float_roundtrip` feature), and marketers write short decimals.
            3 => Number::from_f64((self.next() % 10_000_000) as f64 / 100.0).unwrap(),
            _ => Number::from_f64(self.pick(&[0.1, 1e21, -2.5e-9, 3.0, 0.0])).unwrap(),
        }
    }

    fn literal(&mut self) -> Literal {
        match self.below(3) {
            0 => Literal::Text(self.text()),
            1 => Literal::Number(self.number()),
            _ => Literal::Bool(self.below(2) == 0),
        }
    }

    fn date(&mut self) -> DateValue {
        let day = NaiveDate::from_ymd_opt(1900 + self.below(200) as i32, 1, 1).unwrap()
            + chrono::Duration::days(self.below(366) as i64);
        if self.below(2) == 0 {
            DateValue::Date(day)
        } else {
            let nanos = self.pick(&[0, 500_000_000, 123_456_789]);
            let t = day
                .and_hms_nano_opt(self.below(24) as u32, 7, 9, nanos)
                .unwrap()
                .and_utc();
            DateValue::Instant(t)
        }
    }

    fn unit(&mut self) -> TimeUnit {
        self.pick(&TimeUnit::ALL)
    }

    fn amount(&mut self) -> u32 {
        self.pick(&[0, 1, 7, 30, u32::MAX])
    }

    fn test(&mut self) -> Test {
        match self.below(23) {
            0 => Test::Eq {
                value: self.literal(),
            },
            1 => Test::NotEq {
                value: self.literal(),
            },
            2 => Test::Contains {
                value: self.literal(),
            },
            3 => Test::NotContains {
                value: self.literal(),
            },
            4 => Test::StartsWith { value: self.text() },
            5 => Test::In {
                values: (0..self.below(3)).map(|_| self.literal()).collect(),
            },
            6 => Test::NotIn {
                values: (0..self.below(3)).map(|_| self.literal()).collect(),
            },
            7 => Test::IsSet,
            8 => Test::IsNotSet,
            9 => Test::Lt {
                value: self.number(),
            },
            10 => Test::Lte {
                value: self.number(),
            },
            11 => Test::Gt {
                value: self.number(),
            },
            12 => Test::Gte {
                value: self.number(),
            },
            13 => Test::Between {
                low: self.number(),
                high: self.number(),
            },
            14 => Test::Before { date: self.date() },
            15 => Test::After { date: self.date() },
            16 => Test::BetweenDates {
                from: self.date(),
                to: self.date(),
            },
            17 => Test::WithinLast {
                amount: self.amount(),
                unit: self.unit(),
            },
            18 => Test::MoreThanAgo {
                amount: self.amount(),
                unit: self.unit(),
            },
            19 => Test::InNext {
                amount: self.amount(),
                unit: self.unit(),
            },
            20 => Test::AnniversaryThisMonth,
            21 => Test::AnniversaryToday,
            _ => Test::AnniversaryInNextDays {
                days: self.amount(),
            },
        }
    }

    fn expr(&mut self, depth: usize) -> Expr {
        let choice = if depth == 0 {
            3 + self.below(3)
        } else {
            self.below(6)
        };
        match choice {
            0 => Expr::And {
                all: (0..self.below(4)).map(|_| self.expr(depth - 1)).collect(),
            },
            1 => Expr::Or {
                any: (0..self.below(4)).map(|_| self.expr(depth - 1)).collect(),
            },
            2 => Expr::not(self.expr(depth - 1)),
            3 => Expr::attribute(&self.name(), self.test()),
            4 => Expr::Event(EventCondition {
                event: self.text(),
                count: match self.below(3) {
                    0 => Count::AtLeast {
                        times: self.pick(&[0, 1, 3]),
                    },
                    1 => Count::AtMost {
                        times: self.pick(&[0, 1, 3]),
                    },
                    _ => Count::Exactly {
                        times: self.pick(&[0, 1, 3]),
                    },
                },
                window: match self.below(3) {
                    0 => Window::Ever,
                    1 => Window::Last {
                        amount: self.amount(),
                        unit: self.unit(),
                    },
                    _ => Window::Between {
                        from: self.date(),
                        to: self.date(),
                    },
                },
                filters: (0..self.below(3))
                    .map(|_| PropertyFilter {
                        property: self.name(),
                        test: self.test(),
                    })
                    .collect(),
            }),
            _ => Expr::segment(&self.text()),
        }
    }
}

#[test]
fn generated_asts_round_trip_through_text_and_json() {
    let mut generator = Generator(0x9e37_79b9_7f4a_7c15);
    let mut seen = HashSet::new();
    for _ in 0..3000 {
        let ast = generator.expr(4);
        let printed = print(&ast);
        match parse(&printed) {
            Ok(back) => assert_eq!(back, ast, "{printed}"),
            Err(e) => panic!("{printed:?} does not parse: {e}\n{ast:?}"),
        }
        let json = serde_json::to_string(&ast).unwrap();
        assert_eq!(serde_json::from_str::<Expr>(&json).unwrap(), ast, "{json}");
        seen.insert(printed);
    }
    assert!(
        seen.len() > 1500,
        "the generator repeats itself: {}",
        seen.len()
    );
}

#[test]
fn the_evaluator_never_panics_on_odd_asts() {
    let mut generator = Generator(42);
    let snapshot = snapshot(ana());
    for _ in 0..2000 {
        let ast = generator.expr(3);
        let _ = matches(&ast, &snapshot, at(NOW), &member_of);
        let _ = validate(&ast);
        let _ = depends_on(&ast);
        let _ = event_requirements(&ast);
    }
}

#[test]
fn spans_point_at_each_part_of_a_condition() {
    let parsed = parse_with_spans(
        r#"city = "Recife" and performed "X" at least 2 times in the last 3 days where a = 1"#,
    )
    .unwrap();
    let span = |node: &[usize], part| {
        parsed
            .spans
            .span_of(node, part)
            .map(|s| (s.start.column, s.end.column))
    };
    assert_eq!(span(&[], Part::Node), Some((1, 82)));
    assert_eq!(span(&[0], Part::Subject), Some((1, 5)));
    assert_eq!(span(&[0], Part::Test), Some((6, 16)));
    assert_eq!(span(&[1], Part::Subject), Some((31, 34)));
    assert_eq!(span(&[1], Part::Count), Some((35, 51)));
    assert_eq!(span(&[1], Part::Window), Some((52, 70)));
    assert_eq!(span(&[1], Part::FilterProperty(0)), Some((77, 78)));
    assert_eq!(span(&[1], Part::FilterTest(0)), Some((79, 82)));
    assert_eq!(span(&[2], Part::Node), None);
}

#[test]
fn any_text_either_fails_cleanly_or_round_trips() {
    // Word salad from the language's own vocabulary finds the corners of the grammar.
    let vocabulary = [
        "city",
        "birthday",
        "traits.plan",
        "performed",
        "\"X\"",
        "has",
        "not",
        "in",
        "segment",
        "and",
        "or",
        "e",
        "ou",
        "não",
        "(",
        ")",
        "[",
        "]",
        ",",
        "=",
        "!=",
        ">",
        "<=",
        "3",
        "-2.5",
        "2024-01-01",
        "2024-01-01T10:00:00Z",
        "between",
        "at",
        "least",
        "most",
        "exactly",
        "times",
        "the",
        "last",
        "next",
        "within",
        "days",
        "hours",
        "ago",
        "more",
        "than",
        "where",
        "is",
        "set",
        "contains",
        "starts",
        "with",
        "this",
        "month",
        "today",
        "anniversary",
        "all",
        "of",
        "any",
        "everyone",
        "nobody",
        "ever",
        "before",
        "after",
        "`a b`",
        ".",
        "true",
        "\"",
        "'x'",
        "~",
        "pelo",
        "menos",
        "nos",
        "últimos",
    ];
    let mut generator = Generator(7);
    let mut parsed_count = 0;
    for _ in 0..20_000 {
        let length = 1 + generator.below(9);
        let words: Vec<&str> = (0..length).map(|_| generator.pick(&vocabulary)).collect();
        let text = words.join(" ");
        match parse(&text) {
            Ok(ast) => {
                parsed_count += 1;
                assert_eq!(parse(&print(&ast)), Ok(ast), "{text:?}");
            }
            Err(error) => {
                let position = error.position.expect("syntax errors have a position");
                assert!(position.offset <= text.len(), "{text:?}: {error}");
                assert!(text.is_char_boundary(position.offset), "{text:?}: {error}");
            }
        }
    }
    assert!(parsed_count > 50, "too few texts parsed: {parsed_count}");
}
