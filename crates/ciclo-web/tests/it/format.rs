//! Numbers, money, dates and months per locale, data-driven.

use ciclo_web::format::*;
use ciclo_web::i18n::Locale::{En, PtBr};

#[test]
fn integers() {
    for (value, pt, en) in [
        (0, "0", "0"),
        (7, "7", "7"),
        (999, "999", "999"),
        (1_000, "1.000", "1,000"),
        (12_345, "12.345", "12,345"),
        (1_234_567, "1.234.567", "1,234,567"),
        (-1_000, "-1.000", "-1,000"),
    ] {
        assert_eq!(format_integer(value, PtBr), pt, "{value}");
        assert_eq!(format_integer(value, En), en, "{value}");
    }
}

#[test]
fn money() {
    for (minor, currency, pt, en) in [
        (123_456, "BRL", "R$ 1.234,56", "R$1,234.56"),
        (0, "BRL", "R$ 0,00", "R$0.00"),
        (5, "BRL", "R$ 0,05", "R$0.05"),
        (12_990, "BRL", "R$ 129,90", "R$129.90"),
        (100_000_000, "BRL", "R$ 1.000.000,00", "R$1,000,000.00"),
        (-123_456, "BRL", "-R$ 1.234,56", "-R$1,234.56"),
        (-5, "BRL", "-R$ 0,05", "-R$0.05"),
        (9_999, "USD", "US$ 99,99", "$99.99"),
        (25_000, "EUR", "€ 250,00", "€250.00"),
        (1_000, "ARS", "ARS 10,00", "ARS 10.00"),
    ] {
        assert_eq!(
            format_money(minor, currency, PtBr),
            pt,
            "{minor} {currency}"
        );
        assert_eq!(format_money(minor, currency, En), en, "{minor} {currency}");
    }
    assert_eq!(format_minor(123_456, PtBr), "1.234,56");
    assert_eq!(format_minor(123_456, En), "1,234.56");
}

#[test]
fn dates() {
    let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    for (d, pt, en) in [
        (date(2026, 11, 27), "27/11/2026", "Nov 27, 2026"),
        (date(2026, 1, 5), "05/01/2026", "Jan 5, 2026"),
        (date(1990, 5, 17), "17/05/1990", "May 17, 1990"),
    ] {
        assert_eq!(format_date(d, PtBr), pt);
        assert_eq!(format_date(d, En), en);
    }
}

#[test]
fn moments_in_the_workspace_time_zone() {
    let tz = time_zone("America/Sao_Paulo");
    // 02:30 UTC is still the evening before in São Paulo (UTC-3).
    let at = super::t("2026-11-28T02:30:00Z");
    assert_eq!(format_datetime(at, tz, PtBr), "27/11/2026 23:30");
    assert_eq!(format_datetime(at, tz, En), "Nov 27, 2026, 11:30 PM");
    assert_eq!(format_day(at, tz, PtBr), "27/11/2026");
    let noon = super::t("2026-11-27T15:05:00Z");
    assert_eq!(format_datetime(noon, tz, En), "Nov 27, 2026, 12:05 PM");
    assert_eq!(
        format_datetime(noon, time_zone("UTC"), En),
        "Nov 27, 2026, 3:05 PM"
    );
    assert_eq!(
        format_datetime(noon, time_zone("not/a zone"), PtBr),
        "27/11/2026 15:05",
        "unknown zones fall back to UTC"
    );
}

#[test]
fn months() {
    assert_eq!(format_month("2026-11", PtBr), "nov/26");
    assert_eq!(format_month("2026-11", En), "Nov 26");
    assert_eq!(format_month("2027-01", PtBr), "jan/27");
    assert_eq!(format_month("garbage", En), "garbage");
    assert_eq!(format_month("2026-13", En), "2026-13");
}

#[test]
fn phones() {
    assert_eq!(format_phone("+5511987654321"), "+55 11 98765-4321");
    assert_eq!(format_phone("+551134567890"), "+55 11 3456-7890");
    assert_eq!(format_phone("+14155550100"), "+14155550100");
    assert_eq!(format_phone("+55123"), "+55123");
}
