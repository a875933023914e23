//! `GET /analytics/rfm`: the R × FM grid as a heat-map (each cell links to its customers) and
//! the named groups with their sizes and spend; `GET /analytics/rfm/customers`: the customers of
//! one group or one cell, biggest spenders first, page by page.

use super::charts::{heatmap, HeatAxes, HeatCell};
use super::{number_param, segment_name};
use crate::format::format_integer;
use crate::i18n::{fill, Locale};
use crate::render;
use crate::session::{core, Console, ErrorPage, WebError};
use crate::WebState;
use axum::extract::{Query, State};
use axum::response::Response;
use ciclo_core::analytics::{parse_rfm_segment, RfmFilter, RfmReport};
use ciclo_domain::analytics::RfmSegment;
use minijinja::{context, Value};
use std::collections::HashMap;

/// Customers per page of a group.
pub(crate) const PAGE_SIZE: usize = 25;

/// The heat-map of the grid, labelled in `locale`.
pub(crate) fn grid_chart(report: &RfmReport, locale: Locale) -> String {
    let cells: Vec<HeatCell> = report
        .grid
        .iter()
        .map(|cell| {
            let group = segment_name(locale, cell.segment);
            let count = format_integer(cell.customers as i64, locale);
            HeatCell {
                column: usize::from(cell.recency) - 1,
                row: usize::from(5 - cell.fm),
                value: cell.customers as i64,
                display: count.clone(),
                group: cell.segment.code().to_string(),
                group_label: group.clone(),
                tooltip: fill(
                    &locale.text("analytics.rfm_page.cell_tooltip"),
                    &[
                        ("r", cell.recency.to_string()),
                        ("fm", cell.fm.to_string()),
                        ("group", group),
                        ("count", count),
                    ],
                ),
                href: format!(
                    "/analytics/rfm/customers?recency={}&fm={}",
                    cell.recency, cell.fm
                ),
            }
        })
        .collect();
    let axes = HeatAxes {
        columns: (1..=5).map(|r| format!("R {r}")).collect(),
        rows: (1..=5).rev().map(|fm| format!("FM {fm}")).collect(),
        column_title: locale.text("analytics.rfm_page.column_title"),
        row_title: locale.text("analytics.rfm_page.row_title"),
    };
    heatmap(
        "chart-rfm",
        &locale.text("analytics.rfm_page.grid"),
        &cells,
        &axes,
    )
}

/// The page's values from a report (separate from the handler so tests can render it).
pub(crate) fn values(report: &RfmReport, locale: Locale) -> Value {
    let groups: Vec<Value> = report
        .groups
        .iter()
        .map(|g| {
            context! {
                code => g.segment.code(),
                name => segment_name(locale, g.segment),
                hint => locale.text(&format!("analytics.segment_hints.{}", g.segment.code())),
                customers => g.customers,
                share => g.share,
                revenue_minor => g.revenue_minor,
                average_orders => g.average_orders,
                average_spent_minor => g.average_spent_minor.map(|v| v.round() as i64),
                average_days => g.average_days_since_last_order,
            }
        })
        .collect();
    context! {
        tab => "rfm",
        report => Value::from_serialize(report),
        groups => groups,
        chart => Value::from_safe_string(grid_chart(report, locale)),
    }
}

/// `GET /analytics/rfm`.
pub(crate) async fn page(
    State(state): State<WebState>,
    console: Console,
) -> Result<Response, WebError> {
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let report = core(move || ciclo.rfm(&actor)).await?;
    let values = values(&report, console.locale);
    render::page(
        &state.templates,
        &console,
        "analytics_rfm.html",
        "analytics",
        values,
    )
}

/// Reads `segment`, `recency` and `fm`; anything present but unreadable is a bad request.
fn parse_filter(q: &HashMap<String, String>) -> Result<RfmFilter, WebError> {
    let bad = || WebError::Page(ErrorPage::BadRequest);
    let segment = match q.get("segment").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => None,
        Some(code) => Some(parse_rfm_segment(code).ok_or_else(bad)?),
    };
    let score = |name: &str| -> Result<Option<u8>, WebError> {
        match q.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(raw) => raw
                .parse::<u8>()
                .ok()
                .filter(|v| (1..=5).contains(v))
                .map(Some)
                .ok_or_else(bad),
        }
    };
    Ok(RfmFilter {
        segment,
        recency: score("recency")?,
        fm: score("fm")?,
    })
}

/// The heading of a list: the group's name, or the cell's scores (and its group).
fn list_title(filter: &RfmFilter, locale: Locale) -> String {
    match (filter.segment, filter.recency, filter.fm) {
        (_, Some(r), Some(fm)) => fill(
            &locale.text("analytics.rfm_customers.title_cell"),
            &[
                ("r", r.to_string()),
                ("fm", fm.to_string()),
                (
                    "group",
                    segment_name(locale, RfmSegment::from_scores(r, fm, fm)),
                ),
            ],
        ),
        (Some(segment), _, _) => segment_name(locale, segment),
        _ => locale.text("analytics.rfm_customers.title_all"),
    }
}

/// `GET /analytics/rfm/customers?segment=…|recency=…&fm=…&page=…`.
pub(crate) async fn customers(
    State(state): State<WebState>,
    console: Console,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let filter = parse_filter(&q)?;
    let page = number_param::<usize>(&q, "page").unwrap_or(1).max(1);
    let offset = (page - 1).saturating_mul(PAGE_SIZE);
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let list = core(move || ciclo.rfm_customers(&actor, &filter, offset, PAGE_SIZE)).await?;
    let locale = console.locale;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(segment) = filter.segment {
        query.push(("segment", segment.code().to_string()));
    }
    if let Some(r) = filter.recency {
        query.push(("recency", r.to_string()));
    }
    if let Some(fm) = filter.fm {
        query.push(("fm", fm.to_string()));
    }
    let link = |page: usize| {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query {
            pairs.append_pair(k, v);
        }
        if page > 1 {
            pairs.append_pair("page", &page.to_string());
        }
        format!("/analytics/rfm/customers?{}", pairs.finish())
    };
    let rows: Vec<Value> = list
        .items
        .iter()
        .map(|row| {
            context! {
                id => row.customer.id.as_str(),
                name => row.customer.name.clone(),
                email => row.customer.email.clone(),
                recency => row.recency,
                frequency => row.frequency,
                monetary => row.monetary,
                segment => row.segment.code(),
                segment_name => segment_name(locale, row.segment),
                orders => row.orders,
                total_spent_minor => row.total_spent_minor,
                last_order_at => row.last_order_at.to_rfc3339(),
                days => row.days_since_last_order,
            }
        })
        .collect();
    let values = context! {
        tab => "rfm",
        title => list_title(&filter, locale),
        hint => filter.segment.map(|s| locale.text(&format!("analytics.segment_hints.{}", s.code()))),
        total => list.total,
        rows => rows,
        page => page,
        prev_url => (page > 1).then(|| link(page - 1)),
        next_url => list.next_offset.map(|_| link(page + 1)),
    };
    render::page(
        &state.templates,
        &console,
        "analytics_rfm_customers.html",
        "analytics",
        values,
    )
}
