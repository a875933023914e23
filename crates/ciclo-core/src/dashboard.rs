//! The numbers on the console's home page: customers by lifecycle stage, new customers and
//! orders per month, revenue, active customers.
//!
//! Computed by scanning the workspace's profiles and orders page by page: exact and simple,
//! instant for tens of thousands of customers. For a large workspace (a scan that takes half a
//! second or more) the figures are kept for 30 times as long as the scan took (at most ten
//! minutes), and once they are older a visit gets them at once while a fresh scan runs in the
//! background. (Counters kept as data arrives would remove the scan; see BENCHMARKS.md.)

use crate::accounts::Actor;
use crate::error::CoreResult;
use crate::Ciclo;
use ciclo_domain::customer::Customer;
use ciclo_domain::ids::OrderId;
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::Permission;
use ciclo_domain::order::Order;
use ciclo_domain::{local_month, Timestamp};
use ciclo_store::{read, CustomerCursor, CustomerQuery, CustomerSort};
use serde::Serialize;
use std::collections::BTreeMap;

/// Rows read per page while scanning.
const SCAN_PAGE: i64 = 1000;

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
    /// Calls `visit` with every surviving profile of the workspace, a page at a time.
    pub(crate) fn scan_customers(
        &self,
        actor: &Actor,
        visit: &mut dyn FnMut(&Customer),
    ) -> CoreResult<()> {
        let mut after: Option<CustomerCursor> = None;
        loop {
            let query = CustomerQuery {
                sort: CustomerSort::Newest,
                after: after.clone(),
                limit: SCAN_PAGE,
                ..Default::default()
            };
            let page = read(&*self.store, |tx| {
                tx.list_customers(&actor.workspace.id, &query)
            })?;
            for c in &page {
                visit(c);
            }
            if (page.len() as i64) < SCAN_PAGE {
                return Ok(());
            }
            after = page.last().map(|c| CustomerCursor {
                key: String::new(),
                id: c.id.clone(),
            });
        }
    }

    /// Calls `visit` with every order of the workspace, a page at a time.
    pub(crate) fn scan_orders(
        &self,
        actor: &Actor,
        visit: &mut dyn FnMut(&Order),
    ) -> CoreResult<()> {
        let mut after: Option<OrderId> = None;
        loop {
            let page = read(&*self.store, |tx| {
                tx.list_orders(&actor.workspace.id, after.as_ref(), SCAN_PAGE)
            })?;
            for o in &page {
                visit(o);
            }
            if (page.len() as i64) < SCAN_PAGE {
                return Ok(());
            }
            after = page.last().map(|o| o.id.clone());
        }
    }

    /// The home page's figures (see the module doc for how large workspaces are served).
    pub fn dashboard(&self, actor: &Actor) -> CoreResult<Dashboard> {
        actor.require(Permission::ReadCustomers)?;
        let ws = actor.workspace.id.clone();
        let cache = &self.analytics_cache.dashboards;
        if let Ok(mut entries) = cache.lock() {
            if let Some(entry) = entries.get_mut(&ws) {
                if entry.gathered.elapsed() >= entry.keep && !entry.refreshing {
                    entry.refreshing = true;
                    let (app, actor) = (self.clone(), actor.clone());
                    std::thread::spawn(move || {
                        if let Err(e) = app.compute_dashboard(&actor) {
                            tracing::warn!(error = %e, "dashboard refresh failed");
                        }
                    });
                }
                return Ok((*entry.value).clone());
            }
        }
        self.compute_dashboard(actor)
    }

    /// Scans and, when the scan was slow, keeps the result for later visits.
    fn compute_dashboard(&self, actor: &Actor) -> CoreResult<Dashboard> {
        let started = std::time::Instant::now();
        let result = self.scan_dashboard(actor);
        let took = started.elapsed();
        if let Ok(mut entries) = self.analytics_cache.dashboards.lock() {
            match &result {
                Ok(dashboard) if took >= crate::analytics::REUSE_FROM => {
                    entries.insert(
                        actor.workspace.id.clone(),
                        crate::analytics::Kept {
                            value: std::sync::Arc::new(dashboard.clone()),
                            gathered: std::time::Instant::now(),
                            keep: (took * 30).min(crate::analytics::MAX_REUSE),
                            refreshing: false,
                        },
                    );
                }
                // Small again, or failed: the next visit scans.
                _ => {
                    entries.remove(&actor.workspace.id);
                }
            }
        }
        result
    }

    fn scan_dashboard(&self, actor: &Actor) -> CoreResult<Dashboard> {
        let now = self.clock.now();
        let tz = actor.workspace.time_zone.clone();
        let months = last_months(now, &tz, 24);
        let mut by_month: BTreeMap<String, MonthPoint> = months
            .iter()
            .map(|m| {
                (
                    m.clone(),
                    MonthPoint {
                        month: m.clone(),
                        new_customers: 0,
                        orders: 0,
                        revenue_minor: 0,
                    },
                )
            })
            .collect();
        let rules = ciclo_store::read(&*self.store, |tx| {
            crate::evaluate::lifecycle_rules(tx, &actor.workspace.id)
        })?;
        let mut stages: BTreeMap<Stage, i64> = Stage::ALL.iter().map(|s| (*s, 0)).collect();
        let (mut total, mut active) = (0i64, 0i64);
        let active_since = now - chrono::Duration::days(30);
        self.scan_customers(actor, &mut |c| {
            total += 1;
            if c.last_seen_at >= active_since {
                active += 1;
            }
            *stages.entry(rules.stage(&c.stats, now)).or_default() += 1;
            if let Some(point) = by_month.get_mut(&local_month(c.created_at, &tz)) {
                point.new_customers += 1;
            }
        })?;
        let (mut orders_total, mut revenue_total) = (0i64, 0i64);
        self.scan_orders(actor, &mut |o| {
            orders_total += 1;
            revenue_total += o.total_minor;
            if let Some(point) = by_month.get_mut(&local_month(o.placed_at, &tz)) {
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
    }
}

/// The `count` months up to and including the one of `now`, oldest first.
fn last_months(now: Timestamp, tz: &str, count: usize) -> Vec<String> {
    let current = local_month(now, tz);
    let (mut year, mut month): (i32, u32) = (
        current[..4].parse().unwrap_or(1970),
        current[5..].parse().unwrap_or(1),
    );
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
