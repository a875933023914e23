//! `GET /analytics/funnel?from=YYYY-MM-DD&to=YYYY-MM-DD`: the lifecycle funnel over a period —
//! how many customers had reached each stage of the cycle by its end (with the conversion from
//! one stage to the next), customers per stage at its start and end, and how many moved on to
//! the next stage during it, and the moves between stored stages the evaluator recorded in the
//! period (`Ciclo::stage_flow`). Dates are days in the workspace's time zone; the period runs from
//! the start of `from` to the end of `to` (or now). The default is the last 90 days.

use super::charts::{funnel, FunnelBar};
use crate::format::{format_date, format_integer, format_percent, time_zone};
use crate::i18n::{fill, Locale};
use crate::pages::field_messages;
use crate::render;
use crate::session::{core, Console, WebError};
use crate::WebState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, NaiveDate, TimeZone};
use ciclo_core::analytics::FunnelReport;
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::{FieldError, Timestamp};
use ciclo_store::StageTransition;
use minijinja::{context, Value};
use std::collections::HashMap;

/// Days in the default period.
pub(crate) const DEFAULT_DAYS: i64 = 90;

/// The first moment of `day` in `tz` (the first hour that exists, on a daylight-saving day).
fn start_of(day: NaiveDate, tz: chrono_tz::Tz) -> Timestamp {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..3)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| midnight.and_utc())
}

fn stage_name(locale: Locale, stage: Stage) -> String {
    locale.text(&format!("stages.{}", stage.as_str()))
}

/// The funnel chart: customers who reached each stage of the cycle by the end of the period.
pub(crate) fn chart(report: &FunnelReport, locale: Locale) -> String {
    let mut bars: Vec<FunnelBar> = Vec::new();
    if let Some(first) = report.steps.first() {
        bars.push(FunnelBar {
            label: stage_name(locale, first.from),
            value: first.reached_from as i64,
            display: format_integer(first.reached_from as i64, locale),
            conversion: None,
        });
    }
    for step in &report.steps {
        bars.push(FunnelBar {
            label: stage_name(locale, step.to),
            value: step.reached_to as i64,
            display: format_integer(step.reached_to as i64, locale),
            conversion: step.conversion.map(|share| {
                fill(
                    &locale.text("analytics.funnel_page.conversion"),
                    &[("share", format_percent(share, 1, locale))],
                )
            }),
        });
    }
    funnel(
        "chart-funnel",
        &locale.text("analytics.funnel_page.reached"),
        &bars,
    )
}

/// Which way a move goes: into the cycle, on through it, slipping away, or back from risk.
fn direction(from: Option<Stage>, to: Stage) -> &'static str {
    let away = |s: Stage| matches!(s, Stage::AtRisk | Stage::Lapsed);
    match from {
        None => "entered",
        Some(f) if away(f) && !away(to) => "recovered",
        Some(_) if away(to) => "slipping",
        Some(f) if f < to => "advanced",
        Some(_) => "other",
    }
}

/// The moves between stored stages in the period, most frequent first: a row per (from, to)
/// with the customers who made it and their share of all moves.
pub(crate) fn flow_values(flow: &[StageTransition], locale: Locale) -> Value {
    let total: i64 = flow.iter().map(|t| t.customers).sum();
    let rows: Vec<Value> = flow
        .iter()
        .map(|t| {
            context! {
                from => t.from.map(|s| stage_name(locale, s)),
                to => stage_name(locale, t.to),
                customers => t.customers,
                share => if total > 0 { Some(t.customers as f64 / total as f64) } else { None },
                direction => direction(t.from, t.to),
            }
        })
        .collect();
    context! { rows => rows, total => total }
}

/// The page's values (separate from the handler so tests can render it).
pub(crate) fn values(
    report: &FunnelReport,
    locale: Locale,
    tz: chrono_tz::Tz,
    from_day: NaiveDate,
    to_day: NaiveDate,
    errors: &[FieldError],
) -> Value {
    let stages: Vec<Value> = report
        .stages
        .iter()
        .map(|s| {
            context! {
                name => stage_name(locale, s.stage),
                at_start => s.at_start,
                at_end => s.at_end,
                change => s.at_end as i64 - s.at_start as i64,
            }
        })
        .collect();
    let steps: Vec<Value> = report
        .steps
        .iter()
        .map(|s| {
            context! {
                label => fill(
                    &locale.text("analytics.funnel_page.step"),
                    &[("from", stage_name(locale, s.from)), ("to", stage_name(locale, s.to))],
                ),
                reached_from => s.reached_from,
                reached_to => s.reached_to,
                conversion => s.conversion,
                period_base => s.period_base,
                period_converted => s.period_converted,
                period_conversion => s.period_conversion,
            }
        })
        .collect();
    let day = |t: Timestamp| format_date(t.with_timezone(&tz).date_naive(), locale);
    context! {
        tab => "funnel",
        from => from_day.to_string(),
        to => to_day.to_string(),
        col_start => fill(&locale.text("analytics.funnel_page.col_start"), &[("date", day(report.from))]),
        col_end => fill(&locale.text("analytics.funnel_page.col_end"), &[("date", day(report.to))]),
        report => Value::from_serialize(report),
        stages => stages,
        total_change => report.customers_at_end as i64 - report.customers_at_start as i64,
        steps => steps,
        chart => Value::from_safe_string(chart(report, locale)),
        errors => field_messages(locale, errors),
    }
}

/// `GET /analytics/funnel`.
pub(crate) async fn page(
    State(state): State<WebState>,
    console: Console,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let tz = time_zone(&console.actor.workspace.time_zone);
    let now = state.ciclo.clock.now();
    let today = now.with_timezone(&tz).date_naive();
    let default_from = today - Duration::days(DEFAULT_DAYS);
    let mut errors = Vec::new();
    let mut day = |name: &str, default: NaiveDate| match q.get(name).map(|v| v.trim()) {
        None | Some("") => default,
        Some(raw) => NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap_or_else(|_| {
            errors.push(FieldError::new("invalid_date", name, "expected YYYY-MM-DD"));
            default
        }),
    };
    let (mut from_day, mut to_day) = (day("from", default_from), day("to", today));
    if from_day > to_day || from_day > today {
        errors.push(FieldError::new(
            "invalid_period",
            "from",
            "the start must be before the end",
        ));
        (from_day, to_day) = (default_from, today);
    }
    let from = start_of(from_day, tz);
    let to = start_of(to_day + Duration::days(1), tz) - Duration::microseconds(1);
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let (report, flow) = core(move || {
        let report = ciclo.funnel(&actor, from, to)?;
        let flow = ciclo.stage_flow(&actor, from, to)?;
        Ok((report, flow))
    })
    .await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let flow = flow_values(&flow, console.locale);
    let values =
        context! { flow => flow, ..values(&report, console.locale, tz, from_day, to_day, &errors) };
    render::page_with_status(
        &state.templates,
        &console,
        "analytics_funnel.html",
        "analytics",
        values,
        status,
    )
}
