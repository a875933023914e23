//! Numbers, money, dates and months written the way each locale writes them.
//!
//! Brazilian Portuguese groups thousands with `.` and uses `,` for decimals (`R$ 1.234,56`,
//! `27/11/2026`); English does the opposite (`R$1,234.56`, `Nov 27, 2026`). These are small
//! hand-written functions rather than a full CLDR library: the console needs two locales and a
//! handful of formats, and tests pin every one of them.

use crate::i18n::Locale;
use chrono::{Datelike, NaiveDate, Timelike};
use ciclo_domain::Timestamp;

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const MONTHS_PT: [&str; 12] = [
    "jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez",
];

fn separators(locale: Locale) -> (char, char) {
    match locale {
        Locale::PtBr => ('.', ','),
        Locale::En => (',', '.'),
    }
}

/// Digits of `value` with thousands grouped: `1234567` → `1.234.567` (pt-BR), `1,234,567` (en).
pub fn format_integer(value: i64, locale: Locale) -> String {
    let (group, _) = separators(locale);
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(group);
        }
        out.push(ch);
    }
    out
}

/// An amount in minor units (centavos) as a decimal with two places, without a currency:
/// `123456` → `1.234,56` (pt-BR), `1,234.56` (en).
pub fn format_minor(minor: i64, locale: Locale) -> String {
    let (_, decimal) = separators(locale);
    let units = format_integer((minor / 100).abs(), locale);
    let cents = (minor % 100).unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{units}{decimal}{cents:02}")
}

/// A number with `places` decimals and grouped thousands: `1234.567` → `1.234,57` (pt-BR),
/// `1,234.57` (en). Not-a-number and infinities are written `—`.
pub fn format_decimal(value: f64, places: usize, locale: Locale) -> String {
    if !value.is_finite() {
        return "—".into();
    }
    let (_, decimal) = separators(locale);
    let text = format!("{:.*}", places, value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let whole = format_integer(whole.parse::<i64>().unwrap_or(0), locale);
    let rounds_to_zero = text.chars().all(|c| c == '0' || c == '.');
    let sign = if value < 0.0 && !rounds_to_zero {
        "-"
    } else {
        ""
    };
    if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}{decimal}{fraction}")
    }
}

/// A share (0–1) as a percentage with `places` decimals: `0.4567` → `45,7%` (pt-BR), `45.7%`
/// (en).
pub fn format_percent(share: f64, places: usize, locale: Locale) -> String {
    if !share.is_finite() {
        return "—".into();
    }
    format!("{}%", format_decimal(share * 100.0, places, locale))
}

/// The symbol of a currency as each locale writes it; unknown codes stand as themselves.
fn currency_symbol(currency: &str, locale: Locale) -> String {
    match (currency, locale) {
        ("BRL", _) => "R$".into(),
        ("USD", Locale::PtBr) => "US$".into(),
        ("USD", Locale::En) => "$".into(),
        ("EUR", _) => "€".into(),
        ("GBP", _) => "£".into(),
        (other, _) => other.to_string(),
    }
}

/// Money in minor units with its currency: `R$ 1.234,56` (pt-BR), `R$1,234.56` (en). A code
/// without a known symbol is followed by a space in both (`ARS 10,00`, `ARS 10.00`).
pub fn format_money(minor: i64, currency: &str, locale: Locale) -> String {
    let symbol = currency_symbol(currency, locale);
    let amount = format_minor(minor.abs(), locale);
    let sign = if minor < 0 { "-" } else { "" };
    let space = match locale {
        Locale::PtBr => " ",
        Locale::En if symbol.chars().all(|c| c.is_ascii_uppercase()) => " ",
        Locale::En => "",
    };
    format!("{sign}{symbol}{space}{amount}")
}

/// Money rounded to whole currency units, for big numbers where cents are noise:
/// `65247298` → `R$ 652.473` (pt-BR), `R$652,473` (en).
pub fn format_money_whole(minor: i64, currency: &str, locale: Locale) -> String {
    let units = (minor as f64 / 100.0).round() as i64;
    let text = format_money(units.saturating_mul(100), currency, locale);
    let (_, decimal) = separators(locale);
    text.strip_suffix(&format!("{decimal}00"))
        .map(str::to_string)
        .unwrap_or(text)
}

/// A calendar date: `27/11/2026` (pt-BR), `Nov 27, 2026` (en).
pub fn format_date(date: NaiveDate, locale: Locale) -> String {
    match locale {
        Locale::PtBr => date.format("%d/%m/%Y").to_string(),
        Locale::En => format!(
            "{} {}, {}",
            MONTHS_EN[date.month0() as usize],
            date.day(),
            date.year()
        ),
    }
}

/// The symbol a money field is labelled with (`R$`, `US$`/`$`, `€`…).
pub fn currency_label(currency: &str, locale: Locale) -> String {
    currency_symbol(currency, locale)
}

/// An amount typed by an operator, in minor units: `1.234,56` or `1234,5` (pt-BR), `1,234.56`
/// (en), with or without the currency symbol. A lone separator followed by exactly three
/// digits is a thousands group in pt-BR (`1.500` is 1500) and in English (`1,500`); anything
/// else that is not a number (or is negative) is `None`.
pub fn parse_money_minor(text: &str, locale: Locale) -> Option<i64> {
    let (group, decimal) = separators(locale);
    let cleaned: String = text
        .trim()
        .trim_start_matches("R$")
        .trim_start_matches("US$")
        .trim_start_matches(['$', '€', '£'])
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if cleaned.is_empty() || cleaned.starts_with('-') {
        return None;
    }
    // The other locale's decimal point is accepted when it cannot be a thousands group.
    let (whole, fraction) = match cleaned.rsplit_once(decimal) {
        Some((w, f)) => (w.to_string(), f.to_string()),
        None => match cleaned.rsplit_once(group) {
            Some((w, f)) if f.len() != 3 && !w.contains(group) => (w.to_string(), f.to_string()),
            _ => (cleaned.clone(), String::new()),
        },
    };
    let whole: String = whole.chars().filter(|c| *c != group).collect();
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || fraction.len() > 2
    {
        return None;
    }
    let units: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let cents: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction.parse().ok()?,
    };
    units.checked_mul(100)?.checked_add(cents)
}

/// A whole number typed by an operator (`1.000` in pt-BR and `1,000` in English are a
/// thousand), or `None`.
pub fn parse_integer(text: &str, locale: Locale) -> Option<i64> {
    let (group, _) = separators(locale);
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| *c != group && !c.is_whitespace())
        .collect();
    if cleaned.is_empty() {
        return None;
    }
    cleaned.parse().ok()
}

/// A day without its year, for chart axes: `27/11` (pt-BR), `Nov 27` (en).
pub fn format_day_month(date: NaiveDate, locale: Locale) -> String {
    match locale {
        Locale::PtBr => date.format("%d/%m").to_string(),
        Locale::En => format!("{} {}", MONTHS_EN[date.month0() as usize], date.day()),
    }
}

/// The time zone named by `time_zone` (IANA), or UTC when it is not one.
pub fn time_zone(time_zone: &str) -> chrono_tz::Tz {
    time_zone.parse().unwrap_or(chrono_tz::UTC)
}

/// A moment in the given time zone: `27/11/2026 14:05` (pt-BR), `Nov 27, 2026, 2:05 PM` (en).
pub fn format_datetime(at: Timestamp, tz: chrono_tz::Tz, locale: Locale) -> String {
    let local = at.with_timezone(&tz);
    let date = format_date(local.date_naive(), locale);
    match locale {
        Locale::PtBr => format!("{date} {:02}:{:02}", local.hour(), local.minute()),
        Locale::En => {
            let (pm, hour) = local.hour12();
            let suffix = if pm { "PM" } else { "AM" };
            format!("{date}, {hour}:{:02} {suffix}", local.minute())
        }
    }
}

/// The date part of a moment in the given time zone.
pub fn format_day(at: Timestamp, tz: chrono_tz::Tz, locale: Locale) -> String {
    format_date(at.with_timezone(&tz).date_naive(), locale)
}

/// A month written `YYYY-MM` as a short label: `nov/26` (pt-BR), `Nov 26` (en). Anything
/// else is returned as it is.
pub fn format_month(month: &str, locale: Locale) -> String {
    let parsed = month
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<usize>().ok()?)))
        .filter(|(_, m)| (1..=12).contains(m));
    match parsed {
        Some((year, m)) => {
            let short_year = year.rem_euclid(100);
            match locale {
                Locale::PtBr => format!("{}/{short_year:02}", MONTHS_PT[m - 1]),
                Locale::En => format!("{} {short_year:02}", MONTHS_EN[m - 1]),
            }
        }
        None => month.to_string(),
    }
}

/// A phone number stored as E.164, grouped for reading. Brazilian numbers get the national
/// layout (`+55 11 98765-4321`, landlines `+55 11 3456-7890`); others are left as stored.
pub fn format_phone(e164: &str) -> String {
    let Some(national) = e164.strip_prefix("+55") else {
        return e164.to_string();
    };
    if !national.chars().all(|c| c.is_ascii_digit()) {
        return e164.to_string();
    }
    match national.len() {
        11 => format!(
            "+55 {} {}-{}",
            &national[..2],
            &national[2..7],
            &national[7..]
        ),
        10 => format!(
            "+55 {} {}-{}",
            &national[..2],
            &national[2..6],
            &national[6..]
        ),
        _ => e164.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_group_thousands() {
        assert_eq!(format_integer(0, Locale::PtBr), "0");
        assert_eq!(format_integer(999, Locale::En), "999");
        assert_eq!(format_integer(1000, Locale::PtBr), "1.000");
        assert_eq!(format_integer(-1234567, Locale::En), "-1,234,567");
        assert_eq!(
            format_integer(i64::MIN, Locale::En),
            "-9,223,372,036,854,775,808"
        );
    }
}
