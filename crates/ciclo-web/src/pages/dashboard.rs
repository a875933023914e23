//! The home page: headline numbers and four charts from `Ciclo::dashboard` — customers by
//! lifecycle stage (the stored stages of `Ciclo::stage_counts` once the evaluator has stored
//! any), new customers and orders per month, revenue per month.

use crate::charts::{bar_chart, column_chart, line_chart, ChartPoint};
use crate::format::{format_integer, format_money, format_month};
use crate::i18n::Locale;
use crate::render;
use crate::session::{core, Console, WebError};
use crate::WebState;
use axum::extract::State;
use axum::response::Response;
use ciclo_core::dashboard::Dashboard;
use minijinja::{context, Value};

/// The charts of the dashboard as SVG, labelled in `locale`.
pub(crate) fn charts(data: &Dashboard, locale: Locale, currency: &str) -> Value {
    let count = |n: i64| format_integer(n, locale);
    let stages: Vec<ChartPoint> = data
        .customers_by_stage
        .iter()
        .map(|(stage, n)| {
            let key = format!("stages.{stage}");
            let label = if locale.has(&key) {
                locale.text(&key)
            } else {
                stage.clone()
            };
            ChartPoint::new(label, *n, count(*n))
        })
        .collect();
    let month = |m: &str| format_month(m, locale);
    let new_customers: Vec<ChartPoint> = data
        .months
        .iter()
        .map(|m| ChartPoint::new(month(&m.month), m.new_customers, count(m.new_customers)))
        .collect();
    let orders: Vec<ChartPoint> = data
        .months
        .iter()
        .map(|m| ChartPoint::new(month(&m.month), m.orders, count(m.orders)))
        .collect();
    let revenue: Vec<ChartPoint> = data
        .months
        .iter()
        .map(|m| {
            ChartPoint::new(
                month(&m.month),
                m.revenue_minor,
                format_money(m.revenue_minor, currency, locale),
            )
        })
        .collect();
    // Axis labels in whole currency units keep the axis narrow.
    let money_axis = |minor: i64| {
        let text = format_money(minor - minor % 100, currency, locale);
        text.rsplit_once([',', '.'])
            .map(|(whole, _)| whole.to_string())
            .unwrap_or(text)
    };
    let svg = |s: String| Value::from_safe_string(s);
    context! {
        stages => svg(bar_chart("chart-stages", &locale.text("dashboard.by_stage"), &stages)),
        new_customers => svg(column_chart(
            "chart-new-customers",
            &locale.text("dashboard.new_customers"),
            &new_customers,
            &count,
        )),
        orders => svg(column_chart("chart-orders", &locale.text("dashboard.orders_per_month"), &orders, &count)),
        revenue => svg(line_chart(
            "chart-revenue",
            &locale.text("dashboard.revenue_per_month"),
            &revenue,
            &money_axis,
        )),
    }
}

/// `GET /`: the dashboard.
pub(crate) async fn page(
    State(state): State<WebState>,
    console: Console,
) -> Result<Response, WebError> {
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let data = core(move || {
        let mut data = ciclo.dashboard(&actor)?;
        // Stages as the evaluator stored them, once it has stored any; until then the
        // dashboard's own reckoning from order stats.
        let stored = ciclo.stage_counts(&actor)?;
        if stored.iter().any(|(_, n)| *n > 0) {
            data.customers_by_stage = stored
                .iter()
                .map(|(stage, n)| (stage.as_str().to_string(), *n))
                .collect();
        }
        Ok(data)
    })
    .await?;
    let charts = charts(&data, console.locale, &console.actor.workspace.currency);
    let values = context! {
        data => Value::from_serialize(&data),
        charts => charts,
    };
    render::page(&state.templates, &console, "dashboard.html", "home", values)
}

#[cfg(test)]
mod tests {
    //! The dashboard page rendered from fixed numbers (core's `dashboard()` is tested in core).
    //! Set `CICLO_WEB_PREVIEW_DIR` to also write the page as HTML, to look at it in a browser.
    use super::*;
    use ciclo_core::dashboard::MonthPoint;

    fn sample() -> Dashboard {
        Dashboard {
            customers_total: 12_480,
            active_customers_30d: 3_215,
            orders_total: 8_902,
            revenue_total_minor: 152_340_990,
            customers_by_stage: vec![
                ("reach".into(), 4_100),
                ("acquisition".into(), 2_950),
                ("nurture".into(), 1_800),
                ("retention".into(), 1_540),
                ("loyalty".into(), 620),
                ("at_risk".into(), 870),
                ("lapsed".into(), 600),
            ],
            months: (0..24)
                .map(|i| MonthPoint {
                    month: format!("{}-{:02}", 2024 + (i + 11) / 12, (i + 11) % 12 + 1),
                    new_customers: 300 + (i * 37) % 250,
                    orders: 250 + (i * 53) % 400,
                    revenue_minor: 4_000_000 + (i * 731_000) % 6_000_000,
                })
                .collect(),
        }
    }

    #[test]
    fn the_dashboard_renders_in_both_languages() {
        let templates = crate::render::Templates::new();
        let data = sample();
        for locale in Locale::ALL {
            let ctx = context! {
                t => locale.template_messages(),
                lang => locale.code(),
                language_chosen => false,
                tz => "America/Sao_Paulo",
                currency => "BRL",
                csrf_token => "token",
                here => "/",
                nav => "home",
                notice => None::<String>,
                alert => None::<String>,
                me => context! {
                    role => "owner",
                    operator_id => None::<String>,
                    workspace => context! { id => "ws_1", name => "Minha Loja" },
                    workspaces => Vec::<Value>::new(),
                    can_write => true, can_export => true, can_manage => true, can_own => true,
                },
                data => Value::from_serialize(&data),
                charts => charts(&data, locale, "BRL"),
            };
            let html = templates.render("dashboard.html", ctx).unwrap();
            assert_eq!(html.matches("<svg class=\"chart\"").count(), 4);
            match locale {
                Locale::PtBr => {
                    assert!(html.contains("R$ 1.523.409,90"));
                    assert!(html.contains("12.480"));
                    assert!(html.contains("Lealdade"));
                    assert!(html.contains("nov/24") || html.contains("out/26"));
                }
                Locale::En => {
                    assert!(html.contains("R$1,523,409.90"));
                    assert!(html.contains("12,480"));
                    assert!(html.contains("At risk"));
                }
            }
            if let Ok(dir) = std::env::var("CICLO_WEB_PREVIEW_DIR") {
                let page = html.replace("/assets/", "");
                std::fs::write(format!("{dir}/dashboard-{}.html", locale.code()), page).unwrap();
                std::fs::write(
                    format!("{dir}/console.css"),
                    include_str!("../../assets/console.css"),
                )
                .unwrap();
            }
        }
    }
}
