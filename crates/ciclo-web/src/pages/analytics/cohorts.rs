//! `GET /analytics/cohorts?months=…`: monthly acquisition cohorts as a retention triangle (each
//! cell the share of the cohort that ordered in that later month, shaded by its size) and the
//! revenue of each cohort month by month.

use super::number_param;
use crate::render;
use crate::session::{core, Console, WebError};
use crate::WebState;
use axum::extract::{Query, State};
use axum::response::Response;
use ciclo_core::analytics::{month_label, MAX_COHORT_MONTHS};
use ciclo_domain::analytics::Cohort;
use minijinja::{context, Value};
use std::collections::HashMap;

/// How many months the page shows unless asked otherwise.
pub(crate) const DEFAULT_MONTHS: u32 = 12;
/// The choices offered in the form.
const MONTH_CHOICES: [u32; 4] = [6, 12, 24, 36];

/// The shade class of a retention cell: `shade-0` (none) to `shade-10` (everyone). Month 0 is
/// always 100 % and would drown the rest, so it gets its own class.
fn shade(offset: usize, share: f64) -> String {
    if offset == 0 {
        return "shade-base".into();
    }
    // Retention after the first month rarely passes 50 %: the scale saturates there, so that
    // 5 % and 15 % look different.
    let level = (share * 20.0).ceil().clamp(0.0, 10.0) as u32;
    format!("shade-{level}")
}

/// The page's values (separate from the handler so tests can render it).
pub(crate) fn values(cohorts: &[Cohort], months: u32) -> Value {
    let columns = cohorts.iter().map(|c| c.active.len()).max().unwrap_or(0);
    let rows: Vec<Value> = cohorts
        .iter()
        .map(|cohort| {
            let cells: Vec<Value> = (0..columns)
                .map(|offset| match cohort.retention.get(offset) {
                    Some(share) => context! {
                        present => true,
                        share => share,
                        active => cohort.active[offset],
                        revenue_minor => cohort.revenue_minor[offset],
                        shade => shade(offset, *share),
                    },
                    None => context! { present => false },
                })
                .collect();
            context! {
                month => month_label(cohort.month),
                size => cohort.size,
                revenue_total_minor => cohort.revenue_minor.iter().sum::<i64>(),
                cells => cells,
            }
        })
        .collect();
    let choices: Vec<u32> = if MONTH_CHOICES.contains(&months) {
        MONTH_CHOICES.to_vec()
    } else {
        let mut all = MONTH_CHOICES.to_vec();
        all.push(months);
        all.sort_unstable();
        all
    };
    context! {
        tab => "cohorts",
        months => months,
        choices => choices,
        offsets => (0..columns).collect::<Vec<_>>(),
        rows => rows,
        customers => cohorts.iter().map(|c| c.size).sum::<usize>(),
    }
}

/// `GET /analytics/cohorts`.
pub(crate) async fn page(
    State(state): State<WebState>,
    console: Console,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let months = number_param::<u32>(&q, "months")
        .filter(|m| (1..=MAX_COHORT_MONTHS).contains(m))
        .unwrap_or(DEFAULT_MONTHS);
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let cohorts = core(move || ciclo.cohorts(&actor, months)).await?;
    render::page(
        &state.templates,
        &console,
        "analytics_cohorts.html",
        "analytics",
        values(&cohorts, months),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn shades_saturate_at_half() {
        assert_eq!(super::shade(0, 1.0), "shade-base");
        assert_eq!(super::shade(1, 0.0), "shade-0");
        assert_eq!(super::shade(1, 0.04), "shade-1");
        assert_eq!(super::shade(2, 0.5), "shade-10");
        assert_eq!(super::shade(2, 0.9), "shade-10");
    }
}
