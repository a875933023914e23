//! The numbers on the console's home page: customers by lifecycle stage, new customers and
//! orders per month, revenue, active customers.
//!
//! Computed from the store's two lean whole-workspace scans (`Tx::scan_customer_summaries`:
//! creation, last sighting and cached order stats of every surviving profile;
//! `Tx::scan_order_summaries`: time and total of every order), streamed in one read
//! transaction: exact and simple, instant for tens of thousands of customers. A large
//! workspace's figures are kept and served stale while a background scan refreshes them,
//! by the same rule as the analytics gathering (see the `analytics` module doc: kept when the
//! scan took half a second or more, fresh for 30 times as long as it took, at most ten
//! minutes; one background scan per workspace at a time). (Counters kept as data arrives
//! would remove the scan; see BENCHMARKS.md.)

use crate::accounts::Actor;
use crate::error::CoreResult;
use crate::Ciclo;
use chrono::Datelike;
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::Permission;
use ciclo_domain::{local_month, Timestamp};
use ciclo_store::read;
use serde::Serialize;
use std::collections::BTreeMap;

/// One month of activity (`month` is `YYYY-MM` in the workspace's time zone).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthPoint {
    pub month: String,
    pub new_customers: i64,
    pub orders: i64,
    pub revenue_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    pub customers_total: i64,
    /// Customers who did anything in the last 30 days.
    pub active_customers_30d: i64,
    pub orders_total: i64,
    pub revenue_total_minor: i64,
    /// (stage, count) in lifecycle order: reach, acquisition, nurture, retention, loyalty,
    /// at_risk, lapsed.
    pub customers_by_stage: Vec<(String, i64)>,
    /// The last 24 months, oldest first, months without activity included.
    pub months: Vec<MonthPoint>,
}

impl Ciclo {
    /// The home page's figures (see the module doc for how large workspaces are served).
    pub fn dashboard(&self, actor: &Actor) -> CoreResult<Dashboard> {
        actor.require(Permission::ReadCustomers)?;
        let kept =
            self.kept_or_made(actor, |c| &c.dashboards, Ciclo::scan_dashboard, "dashboard")?;
        Ok((*kept).clone())
    }

    /// Reads every surviving profile and every order of the workspace (the lean rows of the
    /// whole-workspace scans) in one read transaction, and counts.
    fn scan_dashboard(&self, actor: &Actor) -> CoreResult<Dashboard> {
        let now = self.clock.now();
        let tz = actor.workspace.time_zone.clone();
        let ws = &actor.workspace.id;
        let months = last_months(now, &tz, 24);
        let active_since = now - chrono::Duration::days(30);
        // The month of a time in the workspace's zone, as `local_month` reads it (UTC when the
        // zone is unknown), without parsing the zone and formatting a label per row.
        let zone: Option<chrono_tz::Tz> = tz.parse().ok();
        let month_of = |t: Timestamp| -> (i32, u32) {
            match zone {
                Some(zone) => {
                    let local = t.with_timezone(&zone);
                    (local.year(), local.month())
                }
                None => (t.year(), t.month()),
            }
        };
        let dashboard = read(&*self.store, |tx| {
            let rules = crate::evaluate::lifecycle_rules(tx, ws)?;
            // Started inside the closure: a transaction run again starts afresh.
            let mut by_month: BTreeMap<(i32, u32), MonthPoint> = months
                .iter()
                .map(|m| {
                    (
                        month_key(m),
                        MonthPoint {
                            month: m.clone(),
                            new_customers: 0,
                            orders: 0,
                            revenue_minor: 0,
                        },
                    )
                })
                .collect();
            let mut stages: BTreeMap<Stage, i64> = Stage::ALL.iter().map(|s| (*s, 0)).collect();
            let (mut total, mut active) = (0i64, 0i64);
            tx.scan_customer_summaries(ws, &mut |c| {
                total += 1;
                if c.last_seen_at >= active_since {
                    active += 1;
                }
                *stages.entry(rules.stage(&c.stats, now)).or_default() += 1;
                if let Some(point) = by_month.get_mut(&month_of(c.created_at)) {
                    point.new_customers += 1;
                }
            })?;
            let (mut orders_total, mut revenue_total) = (0i64, 0i64);
            tx.scan_order_summaries(ws, &mut |o| {
                orders_total += 1;
                revenue_total += o.total_minor;
                if let Some(point) = by_month.get_mut(&month_of(o.placed_at)) {
                    point.orders += 1;
                    point.revenue_minor += o.total_minor;
                }
            })?;
            Ok(Dashboard {
                customers_total: total,
                active_customers_30d: active,
                orders_total,
                revenue_total_minor: revenue_total,
                customers_by_stage: Stage::ALL
                    .iter()
                    .map(|s| (s.as_str().to_string(), stages[s]))
                    .collect(),
                months: by_month.into_values().collect(),
            })
        })?;
        Ok(dashboard)
    }
}

/// (year, month) of a `YYYY-MM` label.
fn month_key(label: &str) -> (i32, u32) {
    (
        label[..4].parse().unwrap_or(1970),
        label[5..].parse().unwrap_or(1),
    )
}

/// The `count` months up to and including the one of `now`, oldest first.
fn last_months(now: Timestamp, tz: &str, count: usize) -> Vec<String> {
    let current = local_month(now, tz);
    let (mut year, mut month) = month_key(&current);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(format!("{year:04}-{month:02}"));
        if month == 1 {
            year -= 1;
            month = 12;
        } else {
            month -= 1;
        }
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn last_months_wrap_around_the_year() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-02-01T01:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        // 1 February 01:00 UTC is still 31 January in São Paulo.
        let months = super::last_months(now, "America/Sao_Paulo", 3);
        assert_eq!(months, vec!["2025-11", "2025-12", "2026-01"]);
    }
}
