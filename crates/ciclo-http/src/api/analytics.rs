//! Customer analytics: RFM scores, groups and the customers of a group; monthly acquisition
//! cohorts; the customer-base metrics over time; predicted CLV (BG/NBD + Gamma-Gamma, with the
//! data-sufficiency verdict); and the lifecycle funnel over a period. Every report is computed by
//! `ciclo_core::analytics` on request; the console shows the same numbers.
//!
//! The response shapes are mirrored here with their OpenAPI schemas (the core and domain crates
//! stay free of `utoipa`); field names are those of the core types' own serde names.

use crate::auth::Authenticated;
use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::{blocking, check, QueryPairs};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use ciclo_core::analytics::{
    month_label, parse_rfm_segment, BaseMetrics, ClvCustomer, ClvReport, CustomerRef, FunnelReport,
    MonthMetrics, RfmCustomer, RfmCustomerPage, RfmFilter, RfmReport, MAX_COHORT_MONTHS,
    MAX_HORIZON_MONTHS, MAX_RFM_PAGE,
};
use ciclo_domain::analytics::{
    BgNbdFit, Cohort, CustomerBaseMetrics, DataSufficiency, GammaGammaFit, RfmSegment, ThinReason,
};
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::{DateTime, FieldError, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Default months of cohorts.
const DEFAULT_COHORT_MONTHS: u32 = 12;
/// Default CLV horizon, months.
const DEFAULT_HORIZON_MONTHS: u32 = 12;
/// Default length of the funnel period, days.
const DEFAULT_FUNNEL_DAYS: i64 = 90;
/// Default page of an RFM list.
const DEFAULT_RFM_LIMIT: i64 = 50;

// --- shapes -------------------------------------------------------------------------------------

/// The named RFM groups (the R × FM grid of the module documentation of RFM in ciclo-domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RfmSegment)]
pub(crate) enum RfmSegmentDto {
    Champions,
    Loyal,
    PotentialLoyalist,
    New,
    Promising,
    NeedAttention,
    AboutToSleep,
    AtRisk,
    CantLoseThem,
    Hibernating,
    Lost,
}

impl From<RfmSegment> for RfmSegmentDto {
    fn from(s: RfmSegment) -> Self {
        match s {
            RfmSegment::Champions => RfmSegmentDto::Champions,
            RfmSegment::Loyal => RfmSegmentDto::Loyal,
            RfmSegment::PotentialLoyalist => RfmSegmentDto::PotentialLoyalist,
            RfmSegment::New => RfmSegmentDto::New,
            RfmSegment::Promising => RfmSegmentDto::Promising,
            RfmSegment::NeedAttention => RfmSegmentDto::NeedAttention,
            RfmSegment::AboutToSleep => RfmSegmentDto::AboutToSleep,
            RfmSegment::AtRisk => RfmSegmentDto::AtRisk,
            RfmSegment::CantLoseThem => RfmSegmentDto::CantLoseThem,
            RfmSegment::Hibernating => RfmSegmentDto::Hibernating,
            RfmSegment::Lost => RfmSegmentDto::Lost,
        }
    }
}

/// A lifecycle stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = LifecycleStage)]
pub(crate) enum StageDto {
    Reach,
    Acquisition,
    Nurture,
    Retention,
    Loyalty,
    AtRisk,
    Lapsed,
}

impl From<Stage> for StageDto {
    fn from(s: Stage) -> Self {
        match s {
            Stage::Reach => StageDto::Reach,
            Stage::Acquisition => StageDto::Acquisition,
            Stage::Nurture => StageDto::Nurture,
            Stage::Retention => StageDto::Retention,
            Stage::Loyalty => StageDto::Loyalty,
            Stage::AtRisk => StageDto::AtRisk,
            Stage::Lapsed => StageDto::Lapsed,
        }
    }
}

/// Who a row is about.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = AnalyticsCustomer)]
pub(crate) struct CustomerRefDto {
    #[schema(example = "cus_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

impl From<&CustomerRef> for CustomerRefDto {
    fn from(c: &CustomerRef) -> Self {
        CustomerRefDto {
            id: c.id.to_string(),
            name: c.name.clone(),
            email: c.email.clone(),
        }
    }
}

/// One cell of the R × FM grid.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = RfmCell)]
pub(crate) struct RfmCellDto {
    /// 1–5, 5 = ordered most recently.
    pub recency: u8,
    /// 1–5: the mean of the frequency and monetary scores, rounded half up.
    pub fm: u8,
    pub customers: usize,
    pub segment: RfmSegmentDto,
}

/// One named group and what its customers look like.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = RfmGroup)]
pub(crate) struct RfmGroupDto {
    pub segment: RfmSegmentDto,
    pub customers: usize,
    /// Share of the scored customers, 0–1.
    pub share: Option<f64>,
    /// Total spent by the group's customers, minor units.
    pub revenue_minor: i64,
    pub average_orders: Option<f64>,
    pub average_spent_minor: Option<f64>,
    pub average_days_since_last_order: Option<f64>,
}

/// RFM over the customers who have ordered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = RfmReport)]
pub(crate) struct RfmReportDto {
    /// Recency is measured from this moment.
    pub reference: DateTime<Utc>,
    /// Customers with at least one order (the ones scored).
    pub customers: usize,
    pub customers_without_orders: usize,
    /// 25 cells: rows from FM 5 down to FM 1, each from R 1 to R 5.
    pub grid: Vec<RfmCellDto>,
    /// Every group, best first.
    pub groups: Vec<RfmGroupDto>,
}

impl From<RfmReport> for RfmReportDto {
    fn from(r: RfmReport) -> Self {
        RfmReportDto {
            reference: r.reference,
            customers: r.customers,
            customers_without_orders: r.customers_without_orders,
            grid: r
                .grid
                .iter()
                .map(|c| RfmCellDto {
                    recency: c.recency,
                    fm: c.fm,
                    customers: c.customers,
                    segment: c.segment.into(),
                })
                .collect(),
            groups: r
                .groups
                .iter()
                .map(|g| RfmGroupDto {
                    segment: g.segment.into(),
                    customers: g.customers,
                    share: g.share,
                    revenue_minor: g.revenue_minor,
                    average_orders: g.average_orders,
                    average_spent_minor: g.average_spent_minor,
                    average_days_since_last_order: g.average_days_since_last_order,
                })
                .collect(),
        }
    }
}

/// One scored customer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = RfmCustomer)]
pub(crate) struct RfmCustomerDto {
    pub customer: CustomerRefDto,
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
    pub fm: u8,
    pub segment: RfmSegmentDto,
    pub days_since_last_order: u32,
    pub orders: u32,
    pub total_spent_minor: i64,
    pub last_order_at: DateTime<Utc>,
}

impl From<&RfmCustomer> for RfmCustomerDto {
    fn from(c: &RfmCustomer) -> Self {
        RfmCustomerDto {
            customer: (&c.customer).into(),
            recency: c.recency,
            frequency: c.frequency,
            monetary: c.monetary,
            fm: c.fm,
            segment: c.segment.into(),
            days_since_last_order: c.days_since_last_order,
            orders: c.orders,
            total_spent_minor: c.total_spent_minor,
            last_order_at: c.last_order_at,
        }
    }
}

/// A page of scored customers, biggest spenders first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = RfmCustomerPage)]
pub(crate) struct RfmCustomerPageDto {
    pub items: Vec<RfmCustomerDto>,
    /// Customers matching the filter, on every page.
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// One acquisition cohort; the arrays are indexed by month offset (0 = the first-order month)
/// up to the current month.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Cohort)]
pub(crate) struct CohortDto {
    /// `YYYY-MM` in the workspace's time zone.
    #[schema(example = "2026-01")]
    pub month: String,
    pub size: usize,
    /// Customers of the cohort who ordered in each month.
    pub active: Vec<usize>,
    /// `active / size`.
    pub retention: Vec<f64>,
    /// Revenue of the cohort's orders in each month, minor units.
    pub revenue_minor: Vec<i64>,
}

impl From<&Cohort> for CohortDto {
    fn from(c: &Cohort) -> Self {
        CohortDto {
            month: month_label(c.month),
            size: c.size,
            active: c.active.clone(),
            retention: c.retention.clone(),
            revenue_minor: c.revenue_minor.clone(),
        }
    }
}

/// Monthly acquisition cohorts, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = CohortReport)]
pub(crate) struct CohortReportDto {
    pub months: u32,
    pub cohorts: Vec<CohortDto>,
}

/// Repeat, churn, order value, frequency and historic LTV of a customer base at one moment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = CustomerBaseMetrics)]
pub(crate) struct CustomerBaseMetricsDto {
    pub customers: usize,
    pub buyers: usize,
    pub repeat_buyers: usize,
    pub orders: u64,
    pub revenue_minor: i64,
    pub repeat_rate: Option<f64>,
    pub churn_rate: Option<f64>,
    pub average_order_value_minor: Option<f64>,
    pub purchase_frequency: Option<f64>,
    pub historic_ltv_minor: Option<f64>,
}

impl From<&CustomerBaseMetrics> for CustomerBaseMetricsDto {
    fn from(m: &CustomerBaseMetrics) -> Self {
        CustomerBaseMetricsDto {
            customers: m.customers,
            buyers: m.buyers,
            repeat_buyers: m.repeat_buyers,
            orders: m.orders,
            revenue_minor: m.revenue_minor,
            repeat_rate: m.repeat_rate,
            churn_rate: m.churn_rate,
            average_order_value_minor: m.average_order_value_minor,
            purchase_frequency: m.purchase_frequency,
            historic_ltv_minor: m.historic_ltv_minor,
        }
    }
}

/// One month of metrics.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = MonthMetrics)]
pub(crate) struct MonthMetricsDto {
    #[schema(example = "2026-05")]
    pub month: String,
    /// When `base` was measured: the end of the month, or now for the current one.
    pub at: DateTime<Utc>,
    pub base: CustomerBaseMetricsDto,
    /// Orders, revenue and average order value of the month itself.
    pub orders: u64,
    pub revenue_minor: i64,
    pub average_order_value_minor: Option<f64>,
    pub active_buyers: usize,
    pub new_buyers: usize,
}

impl From<&MonthMetrics> for MonthMetricsDto {
    fn from(m: &MonthMetrics) -> Self {
        MonthMetricsDto {
            month: m.month.clone(),
            at: m.at,
            base: (&m.base).into(),
            orders: m.orders,
            revenue_minor: m.revenue_minor,
            average_order_value_minor: m.average_order_value_minor,
            active_buyers: m.active_buyers,
            new_buyers: m.new_buyers,
        }
    }
}

/// The customer-base metrics now and over the last twelve months.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = BaseMetrics)]
pub(crate) struct BaseMetricsDto {
    pub reference: DateTime<Utc>,
    /// A buyer with no order for longer than this is churned.
    pub churn_after_days: u32,
    pub current: CustomerBaseMetricsDto,
    pub months: Vec<MonthMetricsDto>,
}

impl From<BaseMetrics> for BaseMetricsDto {
    fn from(m: BaseMetrics) -> Self {
        BaseMetricsDto {
            reference: m.reference,
            churn_after_days: m.churn_after_days,
            current: (&m.current).into(),
            months: m.months.iter().map(Into::into).collect(),
        }
    }
}

/// BG/NBD parameters: purchase rate λ ~ Gamma(r, α) (α in weeks), dropout p ~ Beta(a, b).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = BgNbdParams)]
pub(crate) struct BgNbdParamsDto {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// A BG/NBD fit.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = BgNbdFit)]
pub(crate) struct BgNbdFitDto {
    pub params: BgNbdParamsDto,
    pub log_likelihood: f64,
    pub iterations: u64,
    pub converged: bool,
    pub customers: usize,
    pub repeat_customers: usize,
}

impl From<&BgNbdFit> for BgNbdFitDto {
    fn from(f: &BgNbdFit) -> Self {
        BgNbdFitDto {
            params: BgNbdParamsDto {
                r: f.params.r,
                alpha: f.params.alpha,
                a: f.params.a,
                b: f.params.b,
            },
            log_likelihood: f.log_likelihood,
            iterations: f.iterations,
            converged: f.converged,
            customers: f.customers,
            repeat_customers: f.repeat_customers,
        }
    }
}

/// Gamma-Gamma parameters: spend per purchase ~ Gamma(p, ν), ν ~ Gamma(q, γ); γ in the
/// workspace's currency (major units).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = GammaGammaParams)]
pub(crate) struct GammaGammaParamsDto {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// A Gamma-Gamma fit.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = GammaGammaFit)]
pub(crate) struct GammaGammaFitDto {
    pub params: GammaGammaParamsDto,
    pub log_likelihood: f64,
    pub iterations: u64,
    pub converged: bool,
    pub customers: usize,
}

impl From<&GammaGammaFit> for GammaGammaFitDto {
    fn from(f: &GammaGammaFit) -> Self {
        GammaGammaFitDto {
            params: GammaGammaParamsDto {
                p: f.params.p,
                q: f.params.q,
                gamma: f.params.gamma,
            },
            log_likelihood: f.log_likelihood,
            iterations: f.iterations,
            converged: f.converged,
            customers: f.customers,
        }
    }
}

/// Whether the data behind a prediction is sufficient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SufficiencyVerdict)]
pub(crate) enum VerdictDto {
    Sufficient,
    Thin,
}

/// Why a prediction is unreliable. Only the fields of the `code` are present.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ThinReason)]
pub(crate) struct ThinReasonDto {
    /// `too_few_repeat_customers`, `fit_failed`, `fit_not_converged` or `implausible_parameters`.
    #[schema(example = "too_few_repeat_customers")]
    pub code: String,
    /// The reason in English.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_customers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<usize>,
    /// `BG/NBD` or `Gamma-Gamma`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The data-sufficiency verdict: `thin` predictions are returned, marked unreliable.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = DataSufficiency)]
pub(crate) struct SufficiencyDto {
    pub verdict: VerdictDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ThinReasonDto>,
}

impl From<&DataSufficiency> for SufficiencyDto {
    fn from(s: &DataSufficiency) -> Self {
        let DataSufficiency::Thin { reason } = s else {
            return SufficiencyDto {
                verdict: VerdictDto::Sufficient,
                reason: None,
            };
        };
        let mut dto = ThinReasonDto {
            code: reason.code().to_string(),
            message: reason.to_string(),
            repeat_customers: None,
            minimum: None,
            model: None,
            iterations: None,
            detail: None,
        };
        match reason {
            ThinReason::TooFewRepeatCustomers {
                repeat_customers,
                minimum,
            } => {
                dto.repeat_customers = Some(*repeat_customers);
                dto.minimum = Some(*minimum);
            }
            ThinReason::FitFailed { model, message } => {
                dto.model = Some(model.clone());
                dto.detail = Some(message.clone());
            }
            ThinReason::FitNotConverged { model, iterations } => {
                dto.model = Some(model.clone());
                dto.iterations = Some(*iterations);
            }
            ThinReason::ImplausibleParameters { model, detail } => {
                dto.model = Some(model.clone());
                dto.detail = Some(detail.clone());
            }
        }
        SufficiencyDto {
            verdict: VerdictDto::Thin,
            reason: Some(dto),
        }
    }
}

/// One customer's prediction.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ClvCustomer)]
pub(crate) struct ClvCustomerDto {
    pub customer: CustomerRefDto,
    pub orders: usize,
    pub total_spent_minor: i64,
    /// Distinct purchase days after the first.
    pub repeat_purchases: u32,
    pub recency_weeks: f64,
    pub age_weeks: f64,
    /// Probability that the customer is still buying, 0–1.
    pub probability_alive: f64,
    /// Expected purchases over the horizon.
    pub expected_purchases: f64,
    pub expected_order_value_minor: Option<i64>,
    /// Discounted expected value over the horizon, minor units.
    pub predicted_value_minor: Option<i64>,
}

impl From<&ClvCustomer> for ClvCustomerDto {
    fn from(c: &ClvCustomer) -> Self {
        ClvCustomerDto {
            customer: (&c.customer).into(),
            orders: c.orders,
            total_spent_minor: c.total_spent_minor,
            repeat_purchases: c.repeat_purchases,
            recency_weeks: c.recency_weeks,
            age_weeks: c.age_weeks,
            probability_alive: c.probability_alive,
            expected_purchases: c.expected_purchases,
            expected_order_value_minor: c.expected_order_value_minor,
            predicted_value_minor: c.predicted_value_minor,
        }
    }
}

/// Customers with predicted value in [from, to) (the last band is open).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ValueBand)]
pub(crate) struct ValueBandDto {
    pub from_minor: i64,
    pub to_minor: Option<i64>,
    pub customers: usize,
}

/// Customers with P(alive) in [from, to).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ProbabilityBand)]
pub(crate) struct ProbabilityBandDto {
    pub from: f64,
    pub to: f64,
    pub customers: usize,
}

/// Predicted customer lifetime value. With thin data the numbers are still there, and
/// `reliable` is false with the reason in `sufficiency`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ClvReport)]
pub(crate) struct ClvReportDto {
    pub horizon_months: u32,
    pub monthly_discount_rate: f64,
    #[schema(example = "weeks")]
    pub time_unit: String,
    pub observation_end: NaiveDate,
    pub customers: usize,
    pub repeat_customers: usize,
    pub bgnbd: Option<BgNbdFitDto>,
    pub gamma_gamma: Option<GammaGammaFitDto>,
    /// Wall-clock time of both fits, milliseconds.
    pub fit_ms: f64,
    pub bgnbd_fit_ms: f64,
    pub gamma_gamma_fit_ms: f64,
    pub sufficiency: SufficiencyDto,
    pub reliable: bool,
    pub frequency_spend_correlation: Option<f64>,
    pub expected_purchases_total: Option<f64>,
    pub predicted_value_total_minor: Option<i64>,
    pub average_probability_alive: Option<f64>,
    /// The customers with the highest predicted value.
    pub top_customers: Vec<ClvCustomerDto>,
    pub value_distribution: Vec<ValueBandDto>,
    pub probability_alive_distribution: Vec<ProbabilityBandDto>,
}

impl From<ClvReport> for ClvReportDto {
    fn from(r: ClvReport) -> Self {
        ClvReportDto {
            horizon_months: r.horizon_months,
            monthly_discount_rate: r.monthly_discount_rate,
            time_unit: r.time_unit.to_string(),
            observation_end: r.observation_end,
            customers: r.customers,
            repeat_customers: r.repeat_customers,
            bgnbd: r.bgnbd.as_ref().map(Into::into),
            gamma_gamma: r.gamma_gamma.as_ref().map(Into::into),
            fit_ms: r.fit_ms,
            bgnbd_fit_ms: r.bgnbd_fit_ms,
            gamma_gamma_fit_ms: r.gamma_gamma_fit_ms,
            sufficiency: (&r.sufficiency).into(),
            reliable: r.reliable,
            frequency_spend_correlation: r.frequency_spend_correlation,
            expected_purchases_total: r.expected_purchases_total,
            predicted_value_total_minor: r.predicted_value_total_minor,
            average_probability_alive: r.average_probability_alive,
            top_customers: r.top_customers.iter().map(Into::into).collect(),
            value_distribution: r
                .value_distribution
                .iter()
                .map(|b| ValueBandDto {
                    from_minor: b.from_minor,
                    to_minor: b.to_minor,
                    customers: b.customers,
                })
                .collect(),
            probability_alive_distribution: r
                .probability_alive_distribution
                .iter()
                .map(|b| ProbabilityBandDto {
                    from: b.from,
                    to: b.to,
                    customers: b.customers,
                })
                .collect(),
        }
    }
}

/// Customers in one stage at the start and end of the period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = StageCount)]
pub(crate) struct StageCountDto {
    pub stage: StageDto,
    pub at_start: usize,
    pub at_end: usize,
}

/// The move from one stage of the cycle to the next.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = FunnelStep)]
pub(crate) struct FunnelStepDto {
    pub from: StageDto,
    pub to: StageDto,
    /// Customers who had reached `from` by the end of the period.
    pub reached_from: usize,
    /// Customers who had reached `to` by the end of the period.
    pub reached_to: usize,
    /// `reached_to / reached_from`.
    pub conversion: Option<f64>,
    /// Customers whose furthest stage was `from` at the start (for reach, plus customers who
    /// became known during the period).
    pub period_base: usize,
    /// Of them, those who had moved on by the end.
    pub period_converted: usize,
    pub period_conversion: Option<f64>,
}

/// The lifecycle funnel over a period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = FunnelReport)]
pub(crate) struct FunnelReportDto {
    pub from: DateTime<Utc>,
    /// The end of the period (never after now).
    pub to: DateTime<Utc>,
    pub customers_at_start: usize,
    pub customers_at_end: usize,
    pub stages: Vec<StageCountDto>,
    /// Reach → Acquisition → Nurture → Retention → Loyalty.
    pub steps: Vec<FunnelStepDto>,
}

impl From<FunnelReport> for FunnelReportDto {
    fn from(r: FunnelReport) -> Self {
        FunnelReportDto {
            from: r.from,
            to: r.to,
            customers_at_start: r.customers_at_start,
            customers_at_end: r.customers_at_end,
            stages: r
                .stages
                .iter()
                .map(|s| StageCountDto {
                    stage: s.stage.into(),
                    at_start: s.at_start,
                    at_end: s.at_end,
                })
                .collect(),
            steps: r
                .steps
                .iter()
                .map(|s| FunnelStepDto {
                    from: s.from.into(),
                    to: s.to.into(),
                    reached_from: s.reached_from,
                    reached_to: s.reached_to,
                    conversion: s.conversion,
                    period_base: s.period_base,
                    period_converted: s.period_converted,
                    period_conversion: s.period_conversion,
                })
                .collect(),
        }
    }
}

// --- parameters ---------------------------------------------------------------------------------

/// Which scored customers to list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query string for OpenAPI; parsing is in `rfm_customers`.
pub(crate) struct RfmCustomerParams {
    /// Customers of this group.
    segment: Option<RfmSegmentDto>,
    /// Customers with this recency score (1–5).
    #[param(minimum = 1, maximum = 5)]
    recency: Option<u8>,
    /// Customers with this FM score (1–5).
    #[param(minimum = 1, maximum = 5)]
    fm: Option<u8>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The period of the funnel.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query string for OpenAPI; parsing is in `funnel`.
pub(crate) struct FunnelParams {
    /// Start (RFC 3339, or a date `YYYY-MM-DD` meaning its midnight UTC). Default: 90 days before `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// End (same formats; a date means the end of that day UTC). Default and maximum: now.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
}

/// A whole number from the query, within bounds; problems go to `errors`.
pub(crate) fn bounded(
    q: &QueryPairs,
    name: &str,
    default: u32,
    max: u32,
    errors: &mut Vec<FieldError>,
) -> u32 {
    match q.get(name) {
        None => default,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    &format!("invalid_{name}"),
                    name,
                    format!("{name} must be a whole number from 1 to {max}"),
                ));
                default
            }
        },
    }
}

fn encode_cursor(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("rfm:{offset}"))
}

fn decode_cursor(raw: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("rfm:")?
        .parse()
        .ok()
}

/// The optional `from` and `to` of a period (RFC 3339 times or `YYYY-MM-DD` dates, `to`
/// meaning the end of that day), both checked before either error is reported.
pub(crate) fn period(
    q: &QueryPairs,
) -> Result<
    (
        Option<ciclo_domain::Timestamp>,
        Option<ciclo_domain::Timestamp>,
    ),
    ApiError,
> {
    let mut errors = Vec::new();
    let mut time = |name: &str, end_of_day: bool| {
        q.get(name).and_then(|raw| {
            let parsed = parse_time(raw, end_of_day);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "invalid_timestamp",
                    name,
                    "expected an RFC 3339 time or a YYYY-MM-DD date",
                ));
            }
            parsed
        })
    };
    let (from, to) = (time("from", false), time("to", true));
    check(errors)?;
    Ok((from, to))
}

/// A time parameter: RFC 3339, or a date meaning its start (or, for the end of a period, its
/// last moment) in UTC.
pub(crate) fn parse_time(raw: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    let start = day.and_hms_opt(0, 0, 0)?.and_utc();
    Some(if end_of_day {
        start + chrono::Duration::days(1) - chrono::Duration::microseconds(1)
    } else {
        start
    })
}

// --- handlers -----------------------------------------------------------------------------------

/// RFM: the R × FM grid and the named groups, over the customers who have ordered.
#[utoipa::path(
    get,
    path = "/api/v1/analytics/rfm",
    operation_id = "analytics_rfm",
    tag = "analytics",
    responses(
        (status = 200, body = RfmReportDto),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
        (status = 403, description = "The role lacks `read_customers` (`forbidden`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn rfm(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<RfmReportDto>, ApiError> {
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(Json(ciclo.rfm(&auth.actor)?.into()))).await
}

/// The scored customers of a group or a cell of the grid, biggest spenders first.
#[utoipa::path(
    get,
    path = "/api/v1/analytics/rfm/customers",
    operation_id = "analytics_rfm_customers",
    tag = "analytics",
    params(RfmCustomerParams),
    responses(
        (status = 200, body = RfmCustomerPageDto),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
        (status = 422, description = "A bad parameter (`validation_failed`: `invalid_segment`, `invalid_score`, `invalid_limit`, `invalid_cursor`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn rfm_customers(
    State(state): State<AppState>,
    auth: Authenticated,
    q: QueryPairs,
) -> Result<Json<RfmCustomerPageDto>, ApiError> {
    let mut errors = Vec::new();
    let segment = q.get("segment").and_then(|raw| {
        let parsed = parse_rfm_segment(raw);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "invalid_segment",
                "segment",
                "expected an RFM group such as champions, loyal or at_risk",
            ));
        }
        parsed
    });
    let mut score = |name: &str| {
        q.get(name).and_then(|raw| {
            let parsed = raw.parse::<u8>().ok().filter(|v| (1..=5).contains(v));
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "invalid_score",
                    name,
                    "expected a score from 1 to 5",
                ));
            }
            parsed
        })
    };
    let (recency, fm) = (score("recency"), score("fm"));
    let limit = q.limit(DEFAULT_RFM_LIMIT, MAX_RFM_PAGE as i64, &mut errors) as usize;
    let offset = match q.get("cursor") {
        None => 0,
        Some(raw) => decode_cursor(raw).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "invalid_cursor",
                "cursor",
                "the cursor is not one this API returned",
            ));
            0
        }),
    };
    check(errors)?;
    let filter = RfmFilter {
        segment,
        recency,
        fm,
    };
    let ciclo = state.ciclo.clone();
    blocking(move || {
        let page: RfmCustomerPage = ciclo.rfm_customers(&auth.actor, &filter, offset, limit)?;
        Ok(Json(RfmCustomerPageDto {
            items: page.items.iter().map(Into::into).collect(),
            total: page.total,
            next_cursor: page.next_offset.map(encode_cursor),
        }))
    })
    .await
}

/// Monthly acquisition cohorts with retention and revenue per later month.
#[utoipa::path(
    get,
    path = "/api/v1/analytics/cohorts",
    operation_id = "analytics_cohorts",
    tag = "analytics",
    params(("months" = Option<u32>, Query, minimum = 1, maximum = 60, description = "Cohorts of the last this many months, the current one included (default 12)")),
    responses(
        (status = 200, body = CohortReportDto),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
        (status = 422, description = "A bad parameter (`validation_failed`: `invalid_months`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn cohorts(
    State(state): State<AppState>,
    auth: Authenticated,
    q: QueryPairs,
) -> Result<Json<CohortReportDto>, ApiError> {
    let mut errors = Vec::new();
    let months = bounded(
        &q,
        "months",
        DEFAULT_COHORT_MONTHS,
        MAX_COHORT_MONTHS,
        &mut errors,
    );
    check(errors)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        let cohorts = ciclo.cohorts(&auth.actor, months)?;
        Ok(Json(CohortReportDto {
            months,
            cohorts: cohorts.iter().map(Into::into).collect(),
        }))
    })
    .await
}

/// Repeat-purchase rate, churn rate, average order value, purchase frequency and historic LTV,
/// now and at the end of each of the last twelve months.
#[utoipa::path(
    get,
    path = "/api/v1/analytics/metrics",
    operation_id = "analytics_metrics",
    tag = "analytics",
    responses(
        (status = 200, body = BaseMetricsDto),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<BaseMetricsDto>, ApiError> {
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(Json(ciclo.metrics(&auth.actor)?.into()))).await
}

/// Predicted CLV: BG/NBD and Gamma-Gamma fitted by maximum likelihood on the workspace's orders,
/// with expected purchases, P(alive) and value over the horizon. Thin data still gets numbers,
/// with `reliable: false` and the reason.
#[utoipa::path(
    get,
    path = "/api/v1/analytics/clv",
    operation_id = "analytics_clv",
    tag = "analytics",
    params(("horizon_months" = Option<u32>, Query, minimum = 1, maximum = 120, description = "Months ahead to predict (default 12)")),
    responses(
        (status = 200, body = ClvReportDto),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
        (status = 422, description = "A bad parameter (`validation_failed`: `invalid_horizon_months`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn clv(
    State(state): State<AppState>,
    auth: Authenticated,
    q: QueryPairs,
) -> Result<Json<ClvReportDto>, ApiError> {
    let mut errors = Vec::new();
    let horizon = bounded(
        &q,
        "horizon_months",
        DEFAULT_HORIZON_MONTHS,
        MAX_HORIZON_MONTHS,
        &mut errors,
    );
    check(errors)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(Json(ciclo.clv(&auth.actor, horizon)?.into()))).await
}

/// The lifecycle funnel: customers per stage at the start and end of the period, and conversion
/// between consecutive stages of the cycle.
#[utoipa::path(
    get,
    path = "/api/v1/analytics/funnel",
    operation_id = "analytics_funnel",
    tag = "analytics",
    params(FunnelParams),
    responses(
        (status = 200, body = FunnelReportDto),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
        (status = 422, description = "A bad parameter (`validation_failed`: `invalid_timestamp`, `invalid_period`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn funnel(
    State(state): State<AppState>,
    auth: Authenticated,
    q: QueryPairs,
) -> Result<Json<FunnelReportDto>, ApiError> {
    let (from, to) = period(&q)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        let to = to.unwrap_or_else(|| ciclo.clock.now());
        let from = from.unwrap_or(to - chrono::Duration::days(DEFAULT_FUNNEL_DAYS));
        Ok(Json(ciclo.funnel(&auth.actor, from, to)?.into()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_strangers() {
        assert_eq!(decode_cursor(&encode_cursor(75)), Some(75));
        assert_eq!(decode_cursor("not-a-cursor"), None);
        assert_eq!(decode_cursor(&encode_cursor(0)), Some(0));
    }

    #[test]
    fn dates_mean_the_start_or_the_end_of_the_day() {
        let start = parse_time("2026-05-01", false).unwrap();
        let end = parse_time("2026-05-01", true).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-05-01T00:00:00+00:00");
        assert!(end > start && end < parse_time("2026-05-02", false).unwrap());
        assert!(parse_time("yesterday", false).is_none());
    }
}
