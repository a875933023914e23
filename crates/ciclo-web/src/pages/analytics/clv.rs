//! `GET /analytics/clv?horizon=…`: predicted customer lifetime value — the fitted BG/NBD and
//! Gamma-Gamma parameters with the fit time, how predicted value and P(alive) are spread over
//! the customers, the customers worth most over the horizon, and, when the data is too thin for
//! a reliable prediction, a warning that says so and why (the numbers are still shown).

use super::number_param;
use crate::charts::{column_chart, ChartPoint};
use crate::format::{format_decimal, format_integer, format_money, format_percent};
use crate::i18n::{fill, Locale};
use crate::render;
use crate::session::{core, Console, WebError};
use crate::WebState;
use axum::extract::{Query, State};
use axum::response::Response;
use ciclo_core::analytics::{ClvReport, MAX_HORIZON_MONTHS};
use ciclo_domain::analytics::{DataSufficiency, ThinReason};
use minijinja::{context, Value};
use std::collections::HashMap;

/// The horizon unless asked otherwise, in months.
pub(crate) const DEFAULT_HORIZON: u32 = 12;
const HORIZON_CHOICES: [u32; 5] = [3, 6, 12, 24, 36];

/// Why the prediction is thin, as a sentence in `locale`; `None` when it is not.
pub(crate) fn thin_message(report: &ClvReport, locale: Locale) -> Option<String> {
    let DataSufficiency::Thin { reason } = &report.sufficiency else {
        return None;
    };
    let key = format!("analytics.clv_page.thin.{}", reason.code());
    let values: Vec<(&str, String)> = match reason {
        ThinReason::TooFewRepeatCustomers {
            repeat_customers,
            minimum,
        } => vec![
            ("repeat", format_integer(*repeat_customers as i64, locale)),
            ("minimum", format_integer(*minimum as i64, locale)),
        ],
        ThinReason::FitFailed { model, .. }
        | ThinReason::FitNotConverged { model, .. }
        | ThinReason::ImplausibleParameters { model, .. } => vec![("model", model.clone())],
    };
    Some(fill(&locale.text(&key), &values))
}

/// The two distribution charts, labelled in `locale`.
fn charts(report: &ClvReport, locale: Locale, currency: &str) -> Value {
    let count = |n: i64| format_integer(n, locale);
    let whole_money = |minor: i64| {
        let text = format_money(minor, currency, locale);
        text.strip_suffix(",00")
            .or_else(|| text.strip_suffix(".00"))
            .map(str::to_string)
            .unwrap_or(text)
    };
    let values: Vec<ChartPoint> = report
        .value_distribution
        .iter()
        .map(|band| {
            let label = match band.to_minor {
                Some(to) => format!("{}–{}", whole_money(band.from_minor), whole_money(to)),
                None => format!("≥ {}", whole_money(band.from_minor)),
            };
            let n = band.customers as i64;
            ChartPoint::new(label, n, count(n))
        })
        .collect();
    let alive: Vec<ChartPoint> = report
        .probability_alive_distribution
        .iter()
        .map(|band| {
            let label = format!(
                "{}–{}",
                format_decimal(band.from * 100.0, 0, locale),
                format_percent(band.to, 0, locale)
            );
            let n = band.customers as i64;
            ChartPoint::new(label, n, count(n))
        })
        .collect();
    let svg = |s: String| Value::from_safe_string(s);
    context! {
        values => (!values.is_empty()).then(|| svg(column_chart(
            "chart-clv-values",
            &locale.text("analytics.clv_page.value_distribution"),
            &values,
            &count,
        ))),
        alive => (!alive.is_empty()).then(|| svg(column_chart(
            "chart-clv-alive",
            &locale.text("analytics.clv_page.alive_distribution"),
            &alive,
            &count,
        ))),
    }
}

/// The page's values (separate from the handler so tests can render it).
pub(crate) fn values(report: &ClvReport, locale: Locale, currency: &str) -> Value {
    let mut choices = HORIZON_CHOICES.to_vec();
    if !choices.contains(&report.horizon_months) {
        choices.push(report.horizon_months);
        choices.sort_unstable();
    }
    let fit_time = |ms: f64| {
        fill(
            &locale.text("analytics.clv_page.ms"),
            &[("ms", format_decimal(ms, 1, locale))],
        )
    };
    context! {
        tab => "clv",
        report => Value::from_serialize(report),
        choices => choices,
        thin => thin_message(report, locale),
        intro => fill(
            &locale.text("analytics.clv_page.intro"),
            &[("rate", format_percent(report.monthly_discount_rate, 0, locale))],
        ),
        reliable_note => fill(
            &locale.text("analytics.clv_page.reliable"),
            &[("repeat", format_integer(report.repeat_customers as i64, locale))],
        ),
        fit_ms => fit_time(report.fit_ms),
        bgnbd_ms => fit_time(report.bgnbd_fit_ms),
        gamma_gamma_ms => fit_time(report.gamma_gamma_fit_ms),
        charts => charts(report, locale, currency),
    }
}

/// `GET /analytics/clv`.
pub(crate) async fn page(
    State(state): State<WebState>,
    console: Console,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let horizon = number_param::<u32>(&q, "horizon")
        .filter(|h| (1..=MAX_HORIZON_MONTHS).contains(h))
        .unwrap_or(DEFAULT_HORIZON);
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let report = core(move || ciclo.clv(&actor, horizon)).await?;
    let values = values(&report, console.locale, &console.actor.workspace.currency);
    render::page(
        &state.templates,
        &console,
        "analytics_clv.html",
        "analytics",
        values,
    )
}
