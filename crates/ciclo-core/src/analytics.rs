//! Customer analytics of a workspace: RFM scores and groups, monthly acquisition cohorts, the
//! customer-base metrics over time, predicted customer lifetime value (BG/NBD + Gamma-Gamma)
//! and the lifecycle funnel over a period.
//!
//! Every report starts from the same picture of the workspace ([`Base`]), gathered in one read
//! transaction from the store's two lean whole-workspace scans: every surviving profile (id,
//! name, email, creation and first sighting: `Tx::scan_customer_summaries`) and every order
//! (owner, time, total: `Tx::scan_order_summaries`), streamed row by row. Each order is
//! attributed to the surviving profile of its owner: an order placed by a profile that was later
//! merged away belongs to the profile at the end of its chain of merges (the merged-away
//! profiles are few, and read with one more query). Order facts are then recomputed from the
//! orders themselves rather than read from the profiles' cached stats, so that "as of" questions
//! (the funnel at the start of a period, churn at the end of each month) use the same numbers as
//! "now".
//!
//! Months and days are the workspace's: a cohort is the month of the first order in the
//! workspace's time zone, and BG/NBD counts distinct local purchase days. The math lives in
//! `ciclo_domain::analytics` and `ciclo_domain::lifecycle`; this module only gathers inputs.
//!
//! ## Large workspaces: stale while refreshing
//!
//! Gathering reads the whole workspace: exact and simple, instant for tens of thousands of
//! customers, a second or two at a million. So the gathering of a large workspace is kept
//! and served to every page (the home page's figures are kept the same way, see `dashboard`),
//! by the rule of [`ReusePolicy`]:
//!
//! * a gathering that took less than [`REUSE_FROM`] (half a second) is not kept: small
//!   workspaces always see the latest data, each page gathering for itself;
//! * a slower one is kept, and is fresh for 30 times as long as it took (at most
//!   [`MAX_REUSE`], ten minutes);
//! * a page finding a kept gathering answers from it at once, fresh or not. When it is stale,
//!   the page also starts one regathering in a background thread, unless one is already
//!   running for the workspace (at most one per workspace at a time); the old gathering is
//!   served until the new one replaces it. A regathering that fails leaves the old one in
//!   place (the next page view starts another); one that turns out fast (the workspace
//!   became small) drops what was kept, and the pages go back to gathering live;
//! * only a page of a workspace with nothing kept (the first view after a start, or a small
//!   workspace) waits for a gathering.
//!
//! The scheduled scores job (`refresh_scores`) always gathers afresh and leaves its gathering
//! here too, so the pages of a large workspace usually find a fresh one. (Counters kept as data
//! arrives would remove the gathering altogether; see BENCHMARKS.md.)

use crate::accounts::Actor;
use crate::error::{CoreError, CoreResult};
use crate::Ciclo;
use chrono::{Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use ciclo_domain::analytics::{
    assess_clv_data, customer_base_metrics, customer_lifetime_value, fit_bgnbd_detailed,
    fit_gamma_gamma_detailed, frequency_spend_correlation, monthly_cohorts, rfm_scores, BgNbdFit,
    ClvSettings, Cohort, CustomerBaseMetrics, CustomerMonths, DataSufficiency, FitOptions,
    GammaGammaFit, Month, RfmInput, RfmSegment, RfmSummary, SpendSummary, SufficiencyThresholds,
    TimeUnit,
};
use ciclo_domain::customer::OrderStats;
use ciclo_domain::ids::{CustomerId, WorkspaceId};
use ciclo_domain::lifecycle::{LifecycleRules, Stage};
use ciclo_domain::operator::Permission;
use ciclo_domain::Timestamp;
use ciclo_store::read;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A buyer is "churned" when their last order is older than this many days: the lifecycle's
/// default "at risk" threshold, so that the metrics page and the funnel agree.
pub const CHURN_AFTER_DAYS: u32 = 120;
/// Months shown by the metrics over time (the current month included).
pub const METRIC_MONTHS: usize = 12;
/// Most cohorts one report shows.
pub const MAX_COHORT_MONTHS: u32 = 60;
/// Longest CLV horizon, in months.
pub const MAX_HORIZON_MONTHS: u32 = 120;
/// Monthly discount rate of predicted CLV (lifetimes' default: 1 % a month).
pub const MONTHLY_DISCOUNT_RATE: f64 = 0.01;
/// Customers listed by predicted value in the CLV report.
pub const TOP_CUSTOMERS: usize = 25;
/// Largest page of the RFM group list.
pub const MAX_RFM_PAGE: usize = 500;

/// Who a report row is about, enough to name and link them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerRef {
    pub id: CustomerId,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// One surviving profile with its orders (those of everything merged into it).
struct BaseCustomer {
    reference: CustomerRef,
    /// The earliest sign of the customer: profile creation, first sighting or first order.
    known_since: Timestamp,
    /// (placed at, total in minor units), oldest first.
    orders: Vec<(Timestamp, i64)>,
}

impl BaseCustomer {
    /// The order stats as they stood at `at` (orders placed at or before it).
    fn stats_at(&self, at: Timestamp) -> OrderStats {
        let placed = self.orders.partition_point(|(t, _)| *t <= at);
        let orders = &self.orders[..placed];
        OrderStats {
            orders_count: orders.len() as i64,
            total_spent_minor: orders.iter().map(|(_, total)| total).sum(),
            first_order_at: orders.first().map(|(t, _)| *t),
            last_order_at: orders.last().map(|(t, _)| *t),
        }
    }

    /// RFM's view of the customer at `at`.
    fn rfm_input(&self, at: Timestamp) -> RfmInput<()> {
        let stats = self.stats_at(at);
        RfmInput {
            customer: (),
            days_since_last_order: stats.last_order_at.map(|last| whole_days(at - last)),
            orders: u32::try_from(stats.orders_count).unwrap_or(u32::MAX),
            total_spent_minor: stats.total_spent_minor,
        }
    }
}

/// Whole days of a duration, never negative (an order a few seconds in the future is today's).
fn whole_days(duration: Duration) -> u32 {
    u32::try_from(duration.num_days().max(0)).unwrap_or(u32::MAX)
}

/// The workspace as the reports see it.
struct Base {
    now: Timestamp,
    tz: Tz,
    customers: Vec<BaseCustomer>,
    /// Reports already made from this gathering, by page and parameters: a kept gathering is
    /// shared by every page view until it is replaced, and so are its reports (the CLV fit over
    /// half a million buyers takes seconds).
    reports: std::sync::Mutex<HashMap<String, std::sync::Arc<dyn std::any::Any + Send + Sync>>>,
}

impl Base {
    /// The report `key` of this gathering, made by `make` the first time.
    fn report<T: Clone + Send + Sync + 'static>(
        &self,
        key: String,
        make: impl FnOnce(&Base) -> T,
    ) -> T {
        if let Some(kept) = self
            .reports
            .lock()
            .ok()
            .and_then(|reports| reports.get(&key).cloned())
        {
            if let Some(report) = kept.downcast_ref::<T>() {
                return report.clone();
            }
        }
        let report = make(self);
        if let Ok(mut reports) = self.reports.lock() {
            reports.insert(key, std::sync::Arc::new(report.clone()));
        }
        report
    }

    fn local_date(&self, t: Timestamp) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    fn local_month(&self, t: Timestamp) -> Month {
        Month::of(self.local_date(t))
    }

    /// The first moment of `month` in the workspace's time zone.
    fn month_start(&self, month: Month) -> Timestamp {
        let date = NaiveDate::from_ymd_opt(month.year, month.month, 1).unwrap_or_default();
        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        // Midnight may not exist on a daylight-saving day; the first hour that does is the start.
        (0..3)
            .find_map(|hours| {
                self.tz
                    .from_local_datetime(&(midnight + Duration::hours(hours)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|| midnight.and_utc())
    }
}

/// `month` moved by `delta` months.
fn add_months(month: Month, delta: i64) -> Month {
    let index = i64::from(month.year) * 12 + i64::from(month.month) - 1 + delta;
    Month {
        year: index.div_euclid(12) as i32,
        month: index.rem_euclid(12) as u32 + 1,
    }
}

/// `YYYY-MM`, as the rest of the API writes months.
pub fn month_label(month: Month) -> String {
    format!("{:04}-{:02}", month.year, month.month)
}

// ---------------------------------------------------------------------------------------------
// RFM

/// One cell of the R × FM grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmCell {
    /// 1–5, 5 = ordered most recently.
    pub recency: u8,
    /// 1–5: the mean of the frequency and monetary scores, rounded half up.
    pub fm: u8,
    pub customers: usize,
    pub segment: RfmSegment,
}

/// One named RFM group and what its customers look like.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmGroup {
    pub segment: RfmSegment,
    pub customers: usize,
    /// Share of the scored customers, 0–1; `None` when nobody is scored.
    pub share: Option<f64>,
    /// What the group's customers have spent in total, minor units.
    pub revenue_minor: i64,
    pub average_orders: Option<f64>,
    pub average_spent_minor: Option<f64>,
    pub average_days_since_last_order: Option<f64>,
}

/// RFM across the customers who have ordered, at the reference moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmReport {
    /// Recency is measured from here (the time of the report).
    pub reference: Timestamp,
    /// Customers with at least one order: the ones scored.
    pub customers: usize,
    /// Known customers without orders (not scored: they have no recency, frequency or spend).
    pub customers_without_orders: usize,
    /// All 25 cells, rows from FM 5 down to FM 1, each row from R 1 to R 5 (the usual picture).
    pub grid: Vec<RfmCell>,
    /// Every named group, best first, empty ones included.
    pub groups: Vec<RfmGroup>,
}

/// One scored customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmCustomer {
    pub customer: CustomerRef,
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
    pub fm: u8,
    pub segment: RfmSegment,
    pub days_since_last_order: u32,
    pub orders: u32,
    pub total_spent_minor: i64,
    pub last_order_at: Timestamp,
}

/// Which scored customers to list: a group, a cell of the grid, or both (all when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RfmFilter {
    pub segment: Option<RfmSegment>,
    pub recency: Option<u8>,
    pub fm: Option<u8>,
}

impl RfmFilter {
    fn keeps(&self, row: &RfmCustomer) -> bool {
        self.segment.is_none_or(|s| s == row.segment)
            && self.recency.is_none_or(|r| r == row.recency)
            && self.fm.is_none_or(|fm| fm == row.fm)
    }
}

/// One page of an RFM list, biggest spenders first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmCustomerPage {
    pub items: Vec<RfmCustomer>,
    /// Customers matching the filter, on every page.
    pub total: usize,
    pub offset: usize,
    /// The offset of the next page; `None` on the last.
    pub next_offset: Option<usize>,
}

/// Reads an RFM segment code (`champions`, `at_risk`…).
pub fn parse_rfm_segment(code: &str) -> Option<RfmSegment> {
    RfmSegment::ALL.into_iter().find(|s| s.code() == code)
}

fn rfm_rows(base: &Base) -> Vec<RfmCustomer> {
    let buyers: Vec<&BaseCustomer> = base
        .customers
        .iter()
        .filter(|c| !c.orders.is_empty())
        .collect();
    let inputs: Vec<RfmInput<usize>> = buyers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let input = c.rfm_input(base.now);
            RfmInput {
                customer: i,
                days_since_last_order: input.days_since_last_order,
                orders: input.orders,
                total_spent_minor: input.total_spent_minor,
            }
        })
        .collect();
    rfm_scores(&inputs)
        .into_iter()
        .zip(&inputs)
        .map(|(score, input)| {
            let customer = buyers[score.customer];
            RfmCustomer {
                customer: customer.reference.clone(),
                recency: score.recency,
                frequency: score.frequency,
                monetary: score.monetary,
                fm: (score.frequency + score.monetary).div_ceil(2),
                segment: score.segment,
                days_since_last_order: input.days_since_last_order.unwrap_or(0),
                orders: input.orders,
                total_spent_minor: input.total_spent_minor,
                last_order_at: customer.orders.last().map_or(base.now, |(t, _)| *t),
            }
        })
        .collect()
}

fn rfm_report(base: &Base) -> RfmReport {
    let rows = rfm_rows(base);
    let mut cells: BTreeMap<(u8, u8), usize> = BTreeMap::new();
    for row in &rows {
        *cells.entry((row.recency, row.fm)).or_default() += 1;
    }
    let grid = (1..=5u8)
        .rev()
        .flat_map(|fm| (1..=5u8).map(move |recency| (recency, fm)))
        .map(|(recency, fm)| RfmCell {
            recency,
            fm,
            customers: cells.get(&(recency, fm)).copied().unwrap_or(0),
            segment: RfmSegment::from_scores(recency, fm, fm),
        })
        .collect();
    let scored = rows.len();
    let groups = RfmSegment::ALL
        .into_iter()
        .map(|segment| {
            let members: Vec<&RfmCustomer> = rows.iter().filter(|r| r.segment == segment).collect();
            let n = members.len();
            let mean = |total: f64| (n > 0).then(|| total / n as f64);
            let revenue_minor: i64 = members.iter().map(|r| r.total_spent_minor).sum();
            RfmGroup {
                segment,
                customers: n,
                share: (scored > 0).then(|| n as f64 / scored as f64),
                revenue_minor,
                average_orders: mean(members.iter().map(|r| f64::from(r.orders)).sum()),
                average_spent_minor: mean(revenue_minor as f64),
                average_days_since_last_order: mean(
                    members
                        .iter()
                        .map(|r| f64::from(r.days_since_last_order))
                        .sum(),
                ),
            }
        })
        .collect();
    RfmReport {
        reference: base.now,
        customers: scored,
        customers_without_orders: base.customers.len() - scored,
        grid,
        groups,
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics over time

/// One month of the customer-base metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthMetrics {
    /// `YYYY-MM` in the workspace's time zone.
    pub month: String,
    /// When the cumulative figures in `base` were measured: the end of the month, or now for
    /// the current month.
    pub at: Timestamp,
    /// Repeat rate, churn rate, purchase frequency and historic LTV of everyone known at `at`.
    pub base: CustomerBaseMetrics,
    /// Orders placed during the month.
    pub orders: u64,
    /// Revenue of those orders, minor units.
    pub revenue_minor: i64,
    /// Average value of those orders; `None` without orders.
    pub average_order_value_minor: Option<f64>,
    /// Distinct customers who ordered during the month.
    pub active_buyers: usize,
    /// Of them, those whose first order it was.
    pub new_buyers: usize,
}

/// The customer-base metrics now and month by month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseMetrics {
    pub reference: Timestamp,
    /// A buyer with no order for longer than this counts as churned.
    pub churn_after_days: u32,
    /// Everyone known now, with their whole history.
    pub current: CustomerBaseMetrics,
    /// The last [`METRIC_MONTHS`] months, oldest first, months without activity included.
    pub months: Vec<MonthMetrics>,
}

fn base_metrics(base: &Base) -> BaseMetrics {
    let inputs_at = |at: Timestamp| -> Vec<RfmInput<()>> {
        base.customers
            .iter()
            .filter(|c| c.known_since <= at)
            .map(|c| c.rfm_input(at))
            .collect()
    };
    let current_month = base.local_month(base.now);
    let months = (0..METRIC_MONTHS as i64)
        .rev()
        .map(|back| {
            let month = add_months(current_month, -back);
            let start = base.month_start(month);
            let end = base.month_start(add_months(month, 1));
            let at = if back == 0 {
                base.now
            } else {
                end - Duration::microseconds(1)
            };
            let (mut orders, mut revenue_minor, mut active_buyers, mut new_buyers) =
                (0u64, 0i64, 0usize, 0usize);
            for customer in &base.customers {
                let in_month = customer
                    .orders
                    .iter()
                    .filter(|(t, _)| *t >= start && *t < end);
                let (mut count, mut first_here) = (0u64, false);
                for (t, total) in in_month {
                    count += 1;
                    revenue_minor += total;
                    first_here |= customer.orders.first().is_some_and(|(f, _)| f == t);
                }
                orders += count;
                if count > 0 {
                    active_buyers += 1;
                    new_buyers += usize::from(first_here);
                }
            }
            MonthMetrics {
                month: month_label(month),
                at,
                base: customer_base_metrics(&inputs_at(at), CHURN_AFTER_DAYS),
                orders,
                revenue_minor,
                average_order_value_minor: (orders > 0)
                    .then(|| revenue_minor as f64 / orders as f64),
                active_buyers,
                new_buyers,
            }
        })
        .collect();
    BaseMetrics {
        reference: base.now,
        churn_after_days: CHURN_AFTER_DAYS,
        current: customer_base_metrics(&inputs_at(base.now), CHURN_AFTER_DAYS),
        months,
    }
}

// ---------------------------------------------------------------------------------------------
// Cohorts

fn cohort_report(base: &Base, months: u32) -> Vec<Cohort> {
    let through = base.local_month(base.now);
    let first_shown = add_months(through, 1 - i64::from(months));
    let histories: Vec<CustomerMonths> = base
        .customers
        .iter()
        .filter_map(|c| {
            let (first, _) = c.orders.first()?;
            Some(CustomerMonths {
                first_order_month: base.local_month(*first),
                orders: c
                    .orders
                    .iter()
                    .map(|(t, total)| (base.local_month(*t), *total))
                    .collect(),
            })
        })
        .collect();
    monthly_cohorts(&histories, through)
        .into_iter()
        .filter(|cohort| cohort.month >= first_shown)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Predicted CLV

/// One customer's prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClvCustomer {
    pub customer: CustomerRef,
    pub orders: usize,
    pub total_spent_minor: i64,
    /// BG/NBD's x: distinct purchase days after the first.
    pub repeat_purchases: u32,
    /// t_x and T, in weeks.
    pub recency_weeks: f64,
    pub age_weeks: f64,
    /// Probability that the customer is still buying, 0–1.
    pub probability_alive: f64,
    /// Expected purchases over the horizon.
    pub expected_purchases: f64,
    /// Expected value of one future purchase, minor units (`None` without a spend model).
    pub expected_order_value_minor: Option<i64>,
    /// Discounted expected value over the horizon, minor units (`None` without a spend model).
    pub predicted_value_minor: Option<i64>,
}

/// How many customers fall in a band of predicted value (minor units, `to` excluded; the last
/// band is open).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueBand {
    pub from_minor: i64,
    pub to_minor: Option<i64>,
    pub customers: usize,
}

/// How many customers have P(alive) in [from, to) (the last band includes 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbabilityBand {
    pub from: f64,
    pub to: f64,
    pub customers: usize,
}

/// Predicted customer lifetime value for the workspace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClvReport {
    pub horizon_months: u32,
    pub monthly_discount_rate: f64,
    /// The time unit of BG/NBD's α and of recency/age: always `weeks`.
    pub time_unit: &'static str,
    /// The last day of observation (today, in the workspace's time zone).
    pub observation_end: NaiveDate,
    /// Customers with at least one order: the ones the model sees.
    pub customers: usize,
    /// Of them, those who bought on more than one day.
    pub repeat_customers: usize,
    /// The purchase model, when it could be fitted (possibly not converged: see `converged`).
    pub bgnbd: Option<BgNbdFit>,
    /// The spend model (currency major units: γ is in reais, not centavos).
    pub gamma_gamma: Option<GammaGammaFit>,
    /// Wall-clock time of both fits, milliseconds.
    pub fit_ms: f64,
    pub bgnbd_fit_ms: f64,
    pub gamma_gamma_fit_ms: f64,
    /// Whether the prediction rests on enough data, and if not why not.
    pub sufficiency: DataSufficiency,
    /// `sufficiency` is `sufficient`.
    pub reliable: bool,
    /// Gamma-Gamma assumes spend does not depend on frequency; far from 0 means biased values.
    pub frequency_spend_correlation: Option<f64>,
    pub expected_purchases_total: Option<f64>,
    pub predicted_value_total_minor: Option<i64>,
    pub average_probability_alive: Option<f64>,
    /// The [`TOP_CUSTOMERS`] customers with the highest predicted value (or expected purchases
    /// when there is no spend model).
    pub top_customers: Vec<ClvCustomer>,
    pub value_distribution: Vec<ValueBand>,
    pub probability_alive_distribution: Vec<ProbabilityBand>,
}

/// The smallest 1, 2 or 5 × 10ⁿ at least `raw` (at least 1).
fn nice_ceiling(raw: f64) -> i64 {
    if raw.is_nan() || raw <= 1.0 {
        return 1;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    for factor in [1.0, 2.0, 5.0, 10.0] {
        if factor * magnitude >= raw {
            return (factor * magnitude).round() as i64;
        }
    }
    (10.0 * magnitude).round() as i64
}

/// Eight bands of equal, round width covering up to the 95th percentile, and one open band.
fn value_bands(values: &[i64]) -> Vec<ValueBand> {
    if values.is_empty() {
        return Vec::new();
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let p95 = sorted[(sorted.len() - 1) * 95 / 100].max(0);
    const BANDS: i64 = 8;
    let width = nice_ceiling(p95 as f64 / BANDS as f64);
    let mut bands: Vec<ValueBand> = (0..=BANDS)
        .map(|i| ValueBand {
            from_minor: i * width,
            to_minor: (i < BANDS).then_some((i + 1) * width),
            customers: 0,
        })
        .collect();
    for value in values {
        let index = usize::try_from(value.max(&0) / width)
            .unwrap_or(usize::MAX)
            .min(BANDS as usize);
        bands[index].customers += 1;
    }
    bands
}

fn probability_bands(values: &[f64]) -> Vec<ProbabilityBand> {
    let mut bands: Vec<ProbabilityBand> = (0..10)
        .map(|i| ProbabilityBand {
            from: f64::from(i) / 10.0,
            to: f64::from(i + 1) / 10.0,
            customers: 0,
        })
        .collect();
    for value in values {
        let index = ((value.clamp(0.0, 1.0) * 10.0).floor() as usize).min(9);
        bands[index].customers += 1;
    }
    bands
}

/// What the models need from one buyer.
struct ModelInput<'a> {
    customer: &'a BaseCustomer,
    summary: RfmSummary,
    /// Mean value of the repeat purchase days, major units (0 without repeats).
    average_repeat_spend: f64,
}

fn model_inputs(base: &Base) -> Vec<ModelInput<'_>> {
    let today = base.local_date(base.now);
    base.customers
        .iter()
        .filter_map(|customer| {
            // Spend per local day: several orders on one day are one purchase, as in BG/NBD.
            let mut days: BTreeMap<NaiveDate, i64> = BTreeMap::new();
            for (t, total) in &customer.orders {
                *days.entry(base.local_date(*t).min(today)).or_default() += total;
            }
            let dates: Vec<NaiveDate> = days.keys().copied().collect();
            let summary = RfmSummary::from_purchase_dates(&dates, today, TimeUnit::Weeks).ok()?;
            let repeats: Vec<i64> = days.values().skip(1).copied().collect();
            let average_repeat_spend = if repeats.is_empty() {
                0.0
            } else {
                repeats.iter().sum::<i64>() as f64 / repeats.len() as f64 / 100.0
            };
            Some(ModelInput {
                customer,
                summary,
                average_repeat_spend,
            })
        })
        .collect()
}

fn clv_report(base: &Base, horizon_months: u32) -> ClvReport {
    clv_report_keeping(base, horizon_months, TOP_CUSTOMERS)
}

/// The report with the `keep` customers of highest value in `top_customers`.
fn clv_report_keeping(base: &Base, horizon_months: u32, keep: usize) -> ClvReport {
    let inputs = model_inputs(base);
    let summaries: Vec<RfmSummary> = inputs.iter().map(|i| i.summary).collect();
    let spends: Vec<SpendSummary> = inputs
        .iter()
        .filter(|i| i.summary.frequency > 0 && i.average_repeat_spend > 0.0)
        .map(|i| SpendSummary {
            frequency: i.summary.frequency,
            average_spend: i.average_repeat_spend,
        })
        .collect();
    let options = FitOptions::default();
    let started = std::time::Instant::now();
    let bgnbd = fit_bgnbd_detailed(&summaries, &options);
    let bgnbd_fit_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = std::time::Instant::now();
    let gamma_gamma = fit_gamma_gamma_detailed(&spends, &options);
    let gamma_gamma_fit_ms = started.elapsed().as_secs_f64() * 1e3;
    let sufficiency = assess_clv_data(
        &bgnbd,
        Some(&gamma_gamma),
        &SufficiencyThresholds::default(),
    );
    let bgnbd = bgnbd.ok();
    let gamma_gamma = gamma_gamma.ok();
    let settings = ClvSettings::weeks(horizon_months, MONTHLY_DISCOUNT_RATE);
    let horizon = f64::from(horizon_months) * settings.time_units_per_month;
    let mut predictions: Vec<ClvCustomer> = match &bgnbd {
        None => Vec::new(),
        Some(fit) => inputs
            .iter()
            .map(|input| {
                let p = fit.params;
                let finite = |v: f64| v.is_finite().then_some(v);
                let expected_purchases = p
                    .expected_purchases(&input.summary, horizon)
                    .ok()
                    .and_then(finite)
                    .unwrap_or(0.0);
                let spend = gamma_gamma.as_ref().and_then(|g| {
                    g.params
                        .conditional_expected_average_spend(
                            input.summary.frequency,
                            input.average_repeat_spend,
                        )
                        .and_then(finite)
                });
                let value = gamma_gamma.as_ref().and_then(|g| {
                    customer_lifetime_value(
                        &p,
                        &g.params,
                        &input.summary,
                        input.average_repeat_spend,
                        &settings,
                    )
                    .ok()
                    .and_then(finite)
                });
                let to_minor = |major: f64| (major * 100.0).round() as i64;
                ClvCustomer {
                    customer: input.customer.reference.clone(),
                    orders: input.customer.orders.len(),
                    total_spent_minor: input.customer.orders.iter().map(|(_, v)| v).sum(),
                    repeat_purchases: input.summary.frequency,
                    recency_weeks: input.summary.recency,
                    age_weeks: input.summary.age,
                    probability_alive: finite(p.probability_alive(&input.summary)).unwrap_or(0.0),
                    expected_purchases,
                    expected_order_value_minor: spend.map(to_minor),
                    predicted_value_minor: value.map(to_minor),
                }
            })
            .collect(),
    };
    let have_values = gamma_gamma.is_some() && !predictions.is_empty();
    let values: Vec<i64> = predictions
        .iter()
        .filter_map(|p| p.predicted_value_minor)
        .collect();
    let alive: Vec<f64> = predictions.iter().map(|p| p.probability_alive).collect();
    let expected_purchases_total =
        (!predictions.is_empty()).then(|| predictions.iter().map(|p| p.expected_purchases).sum());
    let average_probability_alive =
        (!alive.is_empty()).then(|| alive.iter().sum::<f64>() / alive.len() as f64);
    predictions.sort_by(|x, y| {
        y.predicted_value_minor
            .cmp(&x.predicted_value_minor)
            .then(y.expected_purchases.total_cmp(&x.expected_purchases))
            .then_with(|| x.customer.id.cmp(&y.customer.id))
    });
    predictions.truncate(keep);
    let reliable = sufficiency == DataSufficiency::Sufficient;
    ClvReport {
        horizon_months,
        monthly_discount_rate: MONTHLY_DISCOUNT_RATE,
        time_unit: "weeks",
        observation_end: base.local_date(base.now),
        customers: inputs.len(),
        repeat_customers: summaries.iter().filter(|s| s.frequency > 0).count(),
        frequency_spend_correlation: frequency_spend_correlation(&spends),
        bgnbd,
        gamma_gamma,
        fit_ms: bgnbd_fit_ms + gamma_gamma_fit_ms,
        bgnbd_fit_ms,
        gamma_gamma_fit_ms,
        sufficiency,
        reliable,
        expected_purchases_total,
        predicted_value_total_minor: have_values.then(|| values.iter().sum()),
        average_probability_alive,
        top_customers: predictions,
        value_distribution: if have_values {
            value_bands(&values)
        } else {
            Vec::new()
        },
        probability_alive_distribution: if alive.is_empty() {
            Vec::new()
        } else {
            probability_bands(&alive)
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle funnel

/// The stages of the cycle, in order: what a customer moves through.
pub const CYCLE: [Stage; 5] = [
    Stage::Reach,
    Stage::Acquisition,
    Stage::Nurture,
    Stage::Retention,
    Stage::Loyalty,
];

/// How far along the cycle a customer has come by `at`, as an index into [`CYCLE`]. Unlike the
/// stage (which falls back to At risk or Lapsed when orders stop), the furthest stage reached
/// only moves forward:
///
/// * Reach — known;
/// * Acquisition — at least one order;
/// * Nurture — past the acquisition window (first order more than `acquisition_days` ago) or
///   already ordered again;
/// * Retention — two or more orders;
/// * Loyalty — the loyalty rule (orders and spend).
fn furthest_stage(rules: &LifecycleRules, stats: &OrderStats, at: Timestamp) -> usize {
    if stats.orders_count == 0 {
        return 0;
    }
    if stats.orders_count >= rules.loyalty_min_orders
        && stats.total_spent_minor >= rules.loyalty_min_spent_minor
    {
        return 4;
    }
    if stats.orders_count >= 2 {
        return 3;
    }
    let first = stats.first_order_at.unwrap_or(at);
    if (at - first).num_days() > rules.acquisition_days {
        2
    } else {
        1
    }
}

/// Customers in one lifecycle stage at the start and at the end of the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageCount {
    pub stage: Stage,
    pub at_start: usize,
    pub at_end: usize,
}

/// The move from one stage of the cycle to the next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelStep {
    pub from: Stage,
    pub to: Stage,
    /// Customers who had reached `from` by the end of the period.
    pub reached_from: usize,
    /// Customers who had reached `to` by the end of the period.
    pub reached_to: usize,
    /// `reached_to / reached_from`: of those who got to `from`, the share who got to `to`.
    pub conversion: Option<f64>,
    /// Customers whose furthest stage was `from` at the start of the period (for Reach, also
    /// everyone who became known during the period).
    pub period_base: usize,
    /// Of them, those who had reached `to` (or beyond) by the end of the period.
    pub period_converted: usize,
    /// `period_converted / period_base`: conversion during the period.
    pub period_conversion: Option<f64>,
}

/// Lifecycle stages at the start and end of a period, and conversion along the cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelReport {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Customers known at the start and at the end.
    pub customers_at_start: usize,
    pub customers_at_end: usize,
    /// Every stage (the cycle, then At risk and Lapsed), by the workspace's rules.
    pub stages: Vec<StageCount>,
    /// Reach → Acquisition → Nurture → Retention → Loyalty.
    pub steps: Vec<FunnelStep>,
}

fn funnel_report(
    base: &Base,
    rules: &LifecycleRules,
    from: Timestamp,
    to: Timestamp,
) -> FunnelReport {
    let rules = rules.clone();
    let mut at_start: BTreeMap<Stage, usize> = BTreeMap::new();
    let mut at_end: BTreeMap<Stage, usize> = BTreeMap::new();
    let steps = CYCLE.len() - 1;
    let mut reached_end = vec![0usize; CYCLE.len()];
    let mut base_counts = vec![0usize; steps];
    let mut converted = vec![0usize; steps];
    let (mut known_start, mut known_end) = (0, 0);
    for customer in &base.customers {
        if customer.known_since > to {
            continue;
        }
        known_end += 1;
        let end_stats = customer.stats_at(to);
        *at_end.entry(rules.stage(&end_stats, to)).or_default() += 1;
        let end_level = furthest_stage(&rules, &end_stats, to);
        for reached in reached_end.iter_mut().take(end_level + 1) {
            *reached += 1;
        }
        let start_level = if customer.known_since <= from {
            known_start += 1;
            let start_stats = customer.stats_at(from);
            *at_start.entry(rules.stage(&start_stats, from)).or_default() += 1;
            furthest_stage(&rules, &start_stats, from)
        } else {
            0
        };
        if start_level < steps {
            base_counts[start_level] += 1;
            if end_level > start_level {
                converted[start_level] += 1;
            }
        }
    }
    let ratio = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
    FunnelReport {
        from,
        to,
        customers_at_start: known_start,
        customers_at_end: known_end,
        stages: Stage::ALL
            .into_iter()
            .map(|stage| StageCount {
                stage,
                at_start: at_start.get(&stage).copied().unwrap_or(0),
                at_end: at_end.get(&stage).copied().unwrap_or(0),
            })
            .collect(),
        steps: (0..steps)
            .map(|i| FunnelStep {
                from: CYCLE[i],
                to: CYCLE[i + 1],
                reached_from: reached_end[i],
                reached_to: reached_end[i + 1],
                conversion: ratio(reached_end[i + 1], reached_end[i]),
                period_base: base_counts[i],
                period_converted: converted[i],
                period_conversion: ratio(converted[i], base_counts[i]),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Use cases

/// When gatherings of large workspaces are kept for the pages, and how long they stay fresh
/// (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusePolicy {
    /// A gathering faster than this is not kept: the workspace is small, and its pages always
    /// show the latest data.
    pub from: std::time::Duration,
    /// A kept gathering that took `t` is fresh for `factor` × `t`…
    pub factor: u32,
    /// …but never longer than this.
    pub max: std::time::Duration,
}

impl Default for ReusePolicy {
    fn default() -> Self {
        ReusePolicy {
            from: REUSE_FROM,
            factor: 30,
            max: MAX_REUSE,
        }
    }
}

impl ReusePolicy {
    /// How long a gathering that took `took` stays fresh.
    fn fresh_for(&self, took: std::time::Duration) -> std::time::Duration {
        took.saturating_mul(self.factor).min(self.max)
    }
}

/// Gatherings faster than this are not kept (the default [`ReusePolicy::from`]).
pub const REUSE_FROM: std::time::Duration = std::time::Duration::from_millis(500);
/// The longest a gathering stays fresh (the default [`ReusePolicy::max`]).
pub const MAX_REUSE: std::time::Duration = std::time::Duration::from_secs(600);

/// What the pages of large workspaces are served from: the analytics gathering and the home
/// page's figures, each kept per workspace by the rule of [`ReusePolicy`] and refreshed in the
/// background once stale (see the module doc). The scheduled scores job gathers on its own and
/// leaves its result here, so the pages of a large workspace usually find a fresh one.
pub(crate) struct AnalyticsCache {
    bases: Shelf<Base>,
    /// The home page's figures (see `dashboard`).
    pub(crate) dashboards: Shelf<crate::dashboard::Dashboard>,
    policy: std::sync::Mutex<ReusePolicy>,
}

impl Default for AnalyticsCache {
    fn default() -> Self {
        AnalyticsCache {
            bases: Shelf::default(),
            dashboards: Shelf::default(),
            policy: std::sync::Mutex::new(ReusePolicy::default()),
        }
    }
}

impl AnalyticsCache {
    fn policy(&self) -> ReusePolicy {
        *self
            .policy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Values of one kind kept per workspace.
pub(crate) struct Shelf<T> {
    slots: std::sync::Mutex<HashMap<WorkspaceId, Slot<T>>>,
}

impl<T> Default for Shelf<T> {
    fn default() -> Self {
        Shelf {
            slots: std::sync::Mutex::new(HashMap::new()),
        }
    }
}

/// One workspace's kept value, and whether a fresh one is being made in the background.
struct Slot<T> {
    kept: Option<Kept<T>>,
    refreshing: bool,
}

/// A value with when it was made and how long making it took.
struct Kept<T> {
    value: std::sync::Arc<T>,
    made: std::time::Instant,
    took: std::time::Duration,
}

/// What [`Shelf::lookup`] found.
struct Found<T> {
    value: std::sync::Arc<T>,
    /// The value is stale and no refresh was running: the caller now owns the refresh, and
    /// must end it with [`Shelf::refreshed`].
    refresh: bool,
}

impl<T> Shelf<T> {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<WorkspaceId, Slot<T>>> {
        // A panic while the lock was held left the map whole (no update spans two steps).
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value kept for `ws`, if any. When it is stale and nobody is refreshing it, marks the
    /// refresh as started and says so: one refresh per workspace at a time.
    fn lookup(&self, ws: &WorkspaceId, policy: &ReusePolicy) -> Option<Found<T>> {
        let mut slots = self.slots();
        let slot = slots.get_mut(ws)?;
        let kept = slot.kept.as_ref()?;
        let stale = kept.made.elapsed() >= policy.fresh_for(kept.took);
        let refresh = stale && !slot.refreshing;
        if refresh {
            slot.refreshing = true;
        }
        Some(Found {
            value: kept.value.clone(),
            refresh,
        })
    }

    /// Keeps a value that took `took` to make when the policy says so; otherwise forgets what
    /// was kept (the workspace is small again: its pages go back to live data).
    fn put(
        &self,
        ws: &WorkspaceId,
        value: std::sync::Arc<T>,
        took: std::time::Duration,
        policy: &ReusePolicy,
    ) {
        let mut slots = self.slots();
        if took >= policy.from {
            let slot = slots.entry(ws.clone()).or_insert(Slot {
                kept: None,
                refreshing: false,
            });
            slot.kept = Some(Kept {
                value,
                made: std::time::Instant::now(),
                took,
            });
        } else if let Some(slot) = slots.get_mut(ws) {
            slot.kept = None;
            if !slot.refreshing {
                slots.remove(ws);
            }
        }
    }

    /// Ends the refresh that [`Self::lookup`] handed out (whether it succeeded or not).
    fn refreshed(&self, ws: &WorkspaceId) {
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(ws) {
            slot.refreshing = false;
            if slot.kept.is_none() {
                slots.remove(ws);
            }
        }
    }
}

/// Ends a background refresh when dropped, so that a refresh that failed, or panicked, does not
/// block the next one.
struct RefreshGuard<T: 'static> {
    app: Ciclo,
    shelf: fn(&AnalyticsCache) -> &Shelf<T>,
    ws: WorkspaceId,
}

impl<T: 'static> Drop for RefreshGuard<T> {
    fn drop(&mut self) {
        (self.shelf)(&self.app.analytics_cache).refreshed(&self.ws);
    }
}

impl Ciclo {
    /// Sets when gatherings are kept and for how long they stay fresh (for tests and tuning;
    /// the default is [`ReusePolicy::default`]). Applies to what is already kept too.
    pub fn set_analytics_reuse(&self, policy: ReusePolicy) {
        *self
            .analytics_cache
            .policy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = policy;
    }

    /// `make`'s value for the actor's workspace, served by the rule of the module doc: the kept
    /// one when there is one (a stale one starting a refresh in the background, unless one is
    /// running), made here otherwise.
    pub(crate) fn kept_or_made<T: Send + Sync + 'static>(
        &self,
        actor: &Actor,
        shelf: fn(&AnalyticsCache) -> &Shelf<T>,
        make: fn(&Ciclo, &Actor) -> CoreResult<T>,
        what: &'static str,
    ) -> CoreResult<std::sync::Arc<T>> {
        let ws = &actor.workspace.id;
        let policy = self.analytics_cache.policy();
        let Some(found) = shelf(&self.analytics_cache).lookup(ws, &policy) else {
            return self.make_and_keep(actor, shelf, make);
        };
        if found.refresh {
            let guard = RefreshGuard {
                app: self.clone(),
                shelf,
                ws: ws.clone(),
            };
            let actor = actor.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ciclo-refresh-{what}"))
                .spawn(move || {
                    if let Err(error) = guard.app.make_and_keep(&actor, shelf, make) {
                        // The stale value stays; the next visit tries again.
                        tracing::warn!(%error, what, "background refresh failed");
                    }
                    drop(guard);
                });
            if let Err(error) = spawned {
                // The closure, and with it the guard, was dropped: the refresh is over.
                tracing::warn!(%error, what, "could not start a background refresh");
            }
        }
        Ok(found.value)
    }

    /// Makes the value and keeps it when making it was slow (see [`Shelf::put`]). A failure
    /// leaves what was kept as it was.
    fn make_and_keep<T>(
        &self,
        actor: &Actor,
        shelf: fn(&AnalyticsCache) -> &Shelf<T>,
        make: fn(&Ciclo, &Actor) -> CoreResult<T>,
    ) -> CoreResult<std::sync::Arc<T>> {
        let started = std::time::Instant::now();
        let value = std::sync::Arc::new(make(self, actor)?);
        let took = started.elapsed();
        let policy = self.analytics_cache.policy();
        shelf(&self.analytics_cache).put(&actor.workspace.id, value.clone(), took, &policy);
        Ok(value)
    }

    /// The workspace's profiles and orders for the reports (see the module doc for when a
    /// kept gathering is served instead of a new one).
    fn analytics_base(&self, actor: &Actor) -> CoreResult<std::sync::Arc<Base>> {
        self.kept_or_made(actor, |c| &c.bases, Ciclo::gather_base, "analytics")
    }

    /// Every surviving profile with its orders, and the time and zone of the report: one
    /// read transaction (one consistent snapshot) streaming the lean rows of the profiles and
    /// of the orders, each order attributed to its surviving profile.
    fn gather_base(&self, actor: &Actor) -> CoreResult<Base> {
        let now = self.clock.now();
        let tz: Tz = actor.workspace.time_zone.parse().unwrap_or(chrono_tz::UTC);
        let ws = &actor.workspace.id;
        let customers = read(&*self.store, |tx| {
            // Started inside the closure: a transaction run again starts afresh.
            let mut customers: Vec<BaseCustomer> = Vec::new();
            let mut index: HashMap<CustomerId, usize> = HashMap::new();
            tx.scan_customer_summaries(ws, &mut |c| {
                index.insert(c.id.clone(), customers.len());
                customers.push(BaseCustomer {
                    known_since: c.created_at.min(c.first_seen_at),
                    reference: CustomerRef {
                        id: c.id,
                        name: c.name,
                        email: c.email,
                    },
                    orders: Vec::new(),
                });
            })?;
            // An order stored under a profile that was merged away belongs to the surviving
            // profile at the end of the chain (merged-away profiles are few: one query).
            let merged = crate::evaluate::MergedProfiles::load(tx, ws)?;
            tx.scan_order_summaries(ws, &mut |o| {
                let owner = match index.get(&o.customer_id) {
                    Some(&i) => Some(i),
                    None => merged
                        .root_of(&o.customer_id)
                        .and_then(|root| index.get(&root).copied()),
                };
                if let Some(i) = owner {
                    customers[i].orders.push((o.placed_at, o.total_minor));
                }
            })?;
            Ok(customers)
        })?;
        let mut customers = customers;
        for customer in &mut customers {
            customer.orders.sort_unstable_by_key(|(t, _)| *t);
            if let Some((first, _)) = customer.orders.first() {
                customer.known_since = customer.known_since.min(*first);
            }
        }
        Ok(Base {
            now,
            tz,
            customers,
            reports: Default::default(),
        })
    }

    /// RFM scores of every customer who has ordered, the R × FM grid and the named groups.
    pub fn rfm(&self, actor: &Actor) -> CoreResult<RfmReport> {
        actor.require(Permission::ReadCustomers)?;
        let base = self.analytics_base(actor)?;
        Ok(base.report("rfm".into(), rfm_report))
    }

    /// The scored customers that `filter` keeps, biggest spenders first, `limit` (1–500) from
    /// `offset`.
    pub fn rfm_customers(
        &self,
        actor: &Actor,
        filter: &RfmFilter,
        offset: usize,
        limit: usize,
    ) -> CoreResult<RfmCustomerPage> {
        actor.require(Permission::ReadCustomers)?;
        if !(1..=MAX_RFM_PAGE).contains(&limit) {
            return Err(CoreError::invalid(
                "invalid_limit",
                "limit",
                format!("expected 1 to {MAX_RFM_PAGE}"),
            ));
        }
        for (value, field) in [(filter.recency, "recency"), (filter.fm, "fm")] {
            if value.is_some_and(|v| !(1..=5).contains(&v)) {
                return Err(CoreError::invalid(
                    "invalid_score",
                    field,
                    "expected a score from 1 to 5",
                ));
            }
        }
        let base = self.analytics_base(actor)?;
        let mut rows: Vec<RfmCustomer> = rfm_rows(&base)
            .into_iter()
            .filter(|row| filter.keeps(row))
            .collect();
        rows.sort_by(|a, b| {
            b.total_spent_minor
                .cmp(&a.total_spent_minor)
                .then(b.orders.cmp(&a.orders))
                .then_with(|| a.customer.id.cmp(&b.customer.id))
        });
        let total = rows.len();
        let items: Vec<RfmCustomer> = rows.into_iter().skip(offset).take(limit).collect();
        let next = offset.saturating_add(limit);
        Ok(RfmCustomerPage {
            items,
            total,
            offset,
            next_offset: (next < total).then_some(next),
        })
    }

    /// Monthly acquisition cohorts of the last `months` months (1–60), oldest first, each
    /// followed up to the current month.
    pub fn cohorts(&self, actor: &Actor, months: u32) -> CoreResult<Vec<Cohort>> {
        actor.require(Permission::ReadCustomers)?;
        if !(1..=MAX_COHORT_MONTHS).contains(&months) {
            return Err(CoreError::invalid(
                "invalid_months",
                "months",
                format!("expected 1 to {MAX_COHORT_MONTHS} months"),
            ));
        }
        let base = self.analytics_base(actor)?;
        Ok(base.report(format!("cohorts {months}"), |b| cohort_report(b, months)))
    }

    /// Repeat-purchase and churn rates, average order value, purchase frequency and historic
    /// LTV, now and at the end of each of the last [`METRIC_MONTHS`] months.
    pub fn metrics(&self, actor: &Actor) -> CoreResult<BaseMetrics> {
        actor.require(Permission::ReadCustomers)?;
        let base = self.analytics_base(actor)?;
        Ok(base.report("metrics".into(), base_metrics))
    }

    /// Fits BG/NBD and Gamma-Gamma on the workspace's orders and predicts purchases, P(alive)
    /// and value over the next `horizon_months` months (1–120). Thin data still gets numbers,
    /// flagged by `sufficiency`; only the absence of any repeat buyer leaves them empty.
    pub fn clv(&self, actor: &Actor, horizon_months: u32) -> CoreResult<ClvReport> {
        actor.require(Permission::ReadCustomers)?;
        if !(1..=MAX_HORIZON_MONTHS).contains(&horizon_months) {
            return Err(CoreError::invalid(
                "invalid_horizon",
                "horizon_months",
                format!("expected 1 to {MAX_HORIZON_MONTHS} months"),
            ));
        }
        let base = self.analytics_base(actor)?;
        Ok(base.report(format!("clv {horizon_months}"), |b| {
            clv_report(b, horizon_months)
        }))
    }

    /// Lifecycle stages at `from` and at `to` (not after now) and conversion along the cycle.
    pub fn funnel(
        &self,
        actor: &Actor,
        from: Timestamp,
        to: Timestamp,
    ) -> CoreResult<FunnelReport> {
        actor.require(Permission::ReadCustomers)?;
        let base = self.analytics_base(actor)?;
        let to = to.min(base.now);
        if from >= to {
            return Err(CoreError::invalid(
                "invalid_period",
                "from",
                "the start of the period must be before its end (and before now)",
            ));
        }
        let rules = read(&*self.store, |tx| {
            crate::evaluate::lifecycle_rules(tx, &actor.workspace.id)
        })?;
        Ok(funnel_report(&base, &rules, from, to))
    }
}

/// Months ahead that the stored `predicted_clv` score covers.
pub const SCORE_HORIZON_MONTHS: u32 = 12;

impl Ciclo {
    /// Computes RFM scores and the CLV prediction of every customer of the workspace and stores
    /// them as computed attributes that segments read: `rfm_group` (code), `rfm_r`, `rfm_f`,
    /// `rfm_m`, `predicted_clv` (reais over [`SCORE_HORIZON_MONTHS`] months), `p_alive`,
    /// `expected_purchases`. Customers without orders get empty scores. Returns how many
    /// customers were scored.
    pub fn refresh_scores(&self, ws: &ciclo_domain::ids::WorkspaceId) -> CoreResult<usize> {
        let workspace = read(&*self.store, |tx| tx.get_workspace(ws))?
            .ok_or(CoreError::NotFound("workspace"))?;
        let actor = Actor {
            workspace,
            role: ciclo_domain::operator::Role::Owner,
            operator_id: None,
            api_key_id: None,
        };
        // Always gathered afresh; kept for the pages when the workspace is large.
        let base = self.make_and_keep(&actor, |c| &c.bases, Ciclo::gather_base)?;
        let mut scores: HashMap<CustomerId, serde_json::Map<String, serde_json::Value>> = base
            .customers
            .iter()
            .map(|c| (c.reference.id.clone(), serde_json::Map::new()))
            .collect();
        for row in rfm_rows(&base) {
            if let Some(s) = scores.get_mut(&row.customer.id) {
                s.insert("rfm_group".into(), row.segment.code().into());
                s.insert("rfm_r".into(), row.recency.into());
                s.insert("rfm_f".into(), row.frequency.into());
                s.insert("rfm_m".into(), row.monetary.into());
            }
        }
        let clv = clv_report_keeping(&base, SCORE_HORIZON_MONTHS, usize::MAX);
        // The CLV page over the same horizon is this report cut to its top customers: left
        // with the gathering, so the page does not fit the model again.
        let mut page = clv.clone();
        page.top_customers.truncate(TOP_CUSTOMERS);
        base.report(format!("clv {SCORE_HORIZON_MONTHS}"), |_| page);
        for p in &clv.top_customers {
            if let Some(s) = scores.get_mut(&p.customer.id) {
                s.insert("p_alive".into(), p.probability_alive.into());
                s.insert("expected_purchases".into(), p.expected_purchases.into());
                if let Some(v) = p.predicted_value_minor {
                    s.insert("predicted_clv".into(), (v as f64 / 100.0).into());
                }
            }
        }
        let now = self.clock.now();
        let rows: Vec<(CustomerId, serde_json::Map<String, serde_json::Value>)> =
            scores.into_iter().collect();
        let count = rows.len();
        for chunk in rows.chunks(2_000) {
            ciclo_store::write(&*self.store, |tx| {
                tx.set_scores(ws, chunk, now)?;
                let ids: Vec<CustomerId> = chunk.iter().map(|(id, _)| id.clone()).collect();
                // Segments reading scores must see the new ones.
                tx.mark_dirty(ws, &ids)
            })?;
        }
        self.notify_evaluator();
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_add_across_years() {
        let jan = Month::new(2026, 1).unwrap();
        assert_eq!(add_months(jan, -1), Month::new(2025, 12).unwrap());
        assert_eq!(add_months(jan, 13), Month::new(2027, 2).unwrap());
        assert_eq!(add_months(jan, -25), Month::new(2023, 12).unwrap());
        assert_eq!(month_label(add_months(jan, 0)), "2026-01");
    }

    #[test]
    fn value_bands_are_round_and_cover_everything() {
        let bands = value_bands(&[0, 150, 999, 1_600, 50_000]);
        assert_eq!(bands.len(), 9);
        assert_eq!(bands.iter().map(|b| b.customers).sum::<usize>(), 5);
        let width = bands[0].to_minor.unwrap();
        assert!([1, 2, 5].iter().any(|f| {
            let mut m = 1;
            while m * f < width {
                m *= 10;
            }
            m * f == width
        }));
        assert_eq!(bands.last().unwrap().to_minor, None);
        assert_eq!(nice_ceiling(0.3), 1);
        assert_eq!(nice_ceiling(130.0), 200);
        assert_eq!(nice_ceiling(500.0), 500);
        let p = probability_bands(&[0.0, 0.05, 0.95, 1.0]);
        assert_eq!((p[0].customers, p[9].customers), (2, 2));
    }

    #[test]
    fn a_shelf_hands_out_one_refresh_at_a_time() {
        use std::time::Duration;
        let shelf: Shelf<u32> = Shelf::default();
        let ws = WorkspaceId::generate(1_780_000_000_000, 1);
        let other = WorkspaceId::generate(1_780_000_000_000, 2);
        let fresh = ReusePolicy {
            from: Duration::from_millis(10),
            factor: u32::MAX,
            max: Duration::from_secs(3_600),
        };
        let stale = ReusePolicy { factor: 0, ..fresh };
        let found = |policy: &ReusePolicy| shelf.lookup(&ws, policy).map(|f| (*f.value, f.refresh));
        // Too fast to keep: nothing kept.
        shelf.put(
            &ws,
            std::sync::Arc::new(1),
            Duration::from_millis(9),
            &fresh,
        );
        assert_eq!(found(&fresh), None);
        shelf.put(
            &ws,
            std::sync::Arc::new(2),
            Duration::from_millis(10),
            &fresh,
        );
        assert_eq!(found(&fresh), Some((2, false)), "fresh: no refresh");
        assert_eq!(
            found(&stale),
            Some((2, true)),
            "stale: this caller refreshes"
        );
        assert_eq!(found(&stale), Some((2, false)), "one refresh at a time");
        assert_eq!(shelf.lookup(&other, &stale).map(|f| f.refresh), None);
        // The refresh keeps a new value: it is served, and the next refresh may start.
        shelf.put(
            &ws,
            std::sync::Arc::new(3),
            Duration::from_millis(20),
            &fresh,
        );
        assert_eq!(found(&stale), Some((3, false)), "still refreshing");
        shelf.refreshed(&ws);
        assert_eq!(found(&stale), Some((3, true)));
        // A refresh that failed leaves the old value, and the next caller refreshes.
        shelf.refreshed(&ws);
        assert_eq!(found(&stale), Some((3, true)));
        // A refresh that is fast again forgets the value: the workspace is live again.
        shelf.put(
            &ws,
            std::sync::Arc::new(4),
            Duration::from_millis(1),
            &fresh,
        );
        assert_eq!(found(&stale), None);
        shelf.refreshed(&ws);
        assert!(shelf.slots().is_empty());
    }

    #[test]
    fn the_furthest_stage_only_moves_forward() {
        let rules = LifecycleRules::default();
        let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let stats = |n: i64, first_days_ago: i64| OrderStats {
            orders_count: n,
            total_spent_minor: n * 1000,
            first_order_at: (n > 0).then(|| now - Duration::days(first_days_ago)),
            last_order_at: (n > 0).then(|| now - Duration::days(first_days_ago.min(5))),
        };
        assert_eq!(furthest_stage(&rules, &stats(0, 0), now), 0);
        assert_eq!(furthest_stage(&rules, &stats(1, 10), now), 1);
        assert_eq!(
            furthest_stage(&rules, &stats(1, 400), now),
            2,
            "lapsed, still nurtured"
        );
        assert_eq!(furthest_stage(&rules, &stats(2, 10), now), 3);
        assert_eq!(furthest_stage(&rules, &stats(7, 400), now), 4);
    }
}
