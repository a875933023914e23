//! Customer analytics math: pure functions over numbers the caller has already gathered.
//!
//! * [`bgnbd`] — the BG/NBD repeat-buying model (Fader, Hardie & Lee 2005, "Counting Your
//!   Customers the Easy Way"): fit, expected purchases, P(alive).
//! * [`gamma_gamma`] — the Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV:
//!   Using Iso-Value Curves") and customer lifetime value.
//! * [`sufficiency`] — whether a CLV prediction rests on enough data.
//! * [`rfm`] — RFM quintile scores and the named RFM segments.
//! * [`cohorts`] — monthly acquisition cohorts (retention and revenue by month offset).
//! * [`metrics`] — repeat rate, churn rate, average order value, purchase frequency,
//!   historic LTV.
//! * [`special`] — ln Γ, digamma and the hypergeometric function ₂F₁ behind BG/NBD.
//!
//! Like the rest of the domain this reads no clock and does no IO: reference dates and the end
//! of an observation period are parameters, and fits are deterministic (no random restarts).
//! Against the CDNOW data the fits reproduce the published estimates; see
//! `tests/it/analytics.rs`.

pub mod bgnbd;
pub mod cohorts;
pub mod gamma_gamma;
pub mod metrics;
mod optimize;
pub mod rfm;
pub mod special;
pub mod sufficiency;

pub use bgnbd::{
    fit_bgnbd, fit_bgnbd_detailed, BgNbdFit, BgNbdParams, RfmSummary, SummaryError, TimeUnit,
};
pub use cohorts::{monthly_cohorts, Cohort, CustomerMonths, Month};
pub use gamma_gamma::{
    customer_lifetime_value, fit_gamma_gamma, fit_gamma_gamma_detailed,
    frequency_spend_correlation, ClvSettings, GammaGammaFit, GammaGammaParams, SpendSummary,
};
pub use metrics::{customer_base_metrics, period_churn_rate, CustomerBaseMetrics};
pub use rfm::{rfm_scores, RfmInput, RfmScore, RfmSegment};
pub use special::Hyp2f1Error;
pub use sufficiency::{assess_clv_data, DataSufficiency, SufficiencyThresholds, ThinReason};

use serde::{Deserialize, Serialize};

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("no customers to fit")]
    NoData,
    #[error("no customer has a repeat purchase, so the model cannot be identified")]
    NoRepeatCustomers,
    #[error("customer at position {index} is invalid: {reason}")]
    InvalidCustomer { index: usize, reason: String },
    #[error("the optimiser did not converge in {iterations} iterations")]
    NotConverged { iterations: u64 },
    #[error("the optimiser ended on non-finite parameters")]
    NonFinite,
}

/// Why a prediction could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PredictionError {
    #[error("the horizon, month length and discount rate must be finite, non-negative numbers")]
    InvalidHorizon,
    #[error("the expected spend is undefined for these parameters (the mean spend is infinite)")]
    UndefinedSpend,
    #[error(transparent)]
    Hypergeometric(#[from] Hyp2f1Error),
}

/// Optimiser settings shared by the fits. The defaults suit every data set we know of.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    /// L-BFGS iterations before falling back to Nelder–Mead (which gets 20 times as many).
    pub max_iterations: u64,
    /// The fit has converged when every component of the gradient of the mean negative
    /// log-likelihood, with respect to the log-parameters, is at most this.
    pub gradient_tolerance: f64,
    /// First starting point in log-parameters ((ln r, ln α, ln a, ln b) or (ln p, ln q, ln γ,
    /// unused)), in the models' internal scaling (time rescaled so the longest age is 10, spend
    /// rescaled to mean 1). `None` starts from all parameters equal to 1. When a start ends on
    /// a boundary of the parameter space or does not converge, fixed further starts are tried
    /// and the best likelihood wins.
    pub initial_log_params: Option<[f64; 4]>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            max_iterations: 500,
            gradient_tolerance: 1e-7,
            initial_log_params: None,
        }
    }
}
