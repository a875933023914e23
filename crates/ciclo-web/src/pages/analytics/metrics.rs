//! `GET /analytics/metrics`: repeat-purchase rate, churn rate, average order value, purchase
//! frequency and historic LTV now; churn and repeat rates as lines over the last twelve months;
//! average order value per month; and the month-by-month table behind the charts.

use super::charts::{percent_lines, Series};
use crate::charts::{column_chart, ChartPoint};
use crate::format::{format_money, format_month, format_percent};
use crate::i18n::{fill, Locale};
use crate::render;
use crate::session::{core, Console, WebError};
use crate::WebState;
use axum::extract::State;
use axum::response::Response;
use ciclo_core::analytics::BaseMetrics;
use minijinja::{context, Value};

/// The charts of the page, labelled in `locale`.
pub(crate) fn charts(data: &BaseMetrics, locale: Locale, currency: &str) -> Value {
    let labels: Vec<String> = data
        .months
        .iter()
        .map(|m| format_month(&m.month, locale))
        .collect();
    let percent =
        |v: Option<f64>| v.map_or_else(|| "—".to_string(), |s| format_percent(s, 1, locale));
    let series =
        |name: &str,
         colour,
         dashed,
         pick: &dyn Fn(&ciclo_core::analytics::MonthMetrics) -> Option<f64>| {
            let values: Vec<Option<f64>> = data.months.iter().map(pick).collect();
            Series {
                name: locale.text(name),
                colour,
                dashed,
                displays: values.iter().map(|v| percent(*v)).collect(),
                values,
            }
        };
    let lines = percent_lines(
        "chart-rates",
        &locale.text("analytics.metrics_page.over_time"),
        &labels,
        &[
            series(
                "analytics.metrics_page.churn_rate",
                "#b42318",
                false,
                &|m| m.base.churn_rate,
            ),
            series(
                "analytics.metrics_page.repeat_rate",
                "#1d4ed8",
                true,
                &|m| m.base.repeat_rate,
            ),
        ],
        &|v| format_percent(v, 0, locale),
    );
    let aov: Vec<ChartPoint> = data
        .months
        .iter()
        .zip(&labels)
        .map(|(m, label)| {
            let value = m.average_order_value_minor.map_or(0, |v| v.round() as i64);
            let display = m.average_order_value_minor.map_or_else(
                || "—".to_string(),
                |_| format_money(value, currency, locale),
            );
            ChartPoint::new(label.clone(), value, display)
        })
        .collect();
    let money_axis = |minor: i64| {
        let text = format_money(minor - minor % 100, currency, locale);
        text.rsplit_once([',', '.'])
            .map(|(whole, _)| whole.to_string())
            .unwrap_or(text)
    };
    context! {
        rates => Value::from_safe_string(lines),
        aov => Value::from_safe_string(column_chart(
            "chart-aov",
            &locale.text("analytics.metrics_page.aov_per_month"),
            &aov,
            &money_axis,
        )),
    }
}

/// The page's values (separate from the handler so tests can render it).
pub(crate) fn values(data: &BaseMetrics, locale: Locale, currency: &str) -> Value {
    context! {
        tab => "metrics",
        data => Value::from_serialize(data),
        churn_hint => fill(
            &locale.text("analytics.metrics_page.churn_hint"),
            &[("days", data.churn_after_days.to_string())],
        ),
        charts => charts(data, locale, currency),
    }
}

/// `GET /analytics/metrics`.
pub(crate) async fn page(
    State(state): State<WebState>,
    console: Console,
) -> Result<Response, WebError> {
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let data = core(move || ciclo.metrics(&actor)).await?;
    let values = values(&data, console.locale, &console.actor.workspace.currency);
    render::page(
        &state.templates,
        &console,
        "analytics_metrics.html",
        "analytics",
        values,
    )
}
