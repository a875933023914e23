//! Is there enough data behind a CLV prediction?
//!
//! BG/NBD learns dropout only from customers who bought again, and Gamma-Gamma learns spend only
//! from them too; a small shop with a few dozen repeat buyers gets parameters that fit noise, or
//! an optimiser that never settles. Rather than refuse to predict, the console shows the numbers
//! with a warning, so this module returns a verdict with a reason, not an error.
//!
//! The default of 200 repeat customers is a rule of thumb, not a theorem: with fewer the
//! standard errors of (a, b) in CDNOW-like data are of the order of the estimates themselves.

use super::bgnbd::BgNbdFit;
use super::gamma_gamma::GammaGammaFit;
use super::FitError;
use serde::{Deserialize, Serialize};

/// Where the verdict draws its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SufficiencyThresholds {
    /// Fewer customers with x > 0 than this makes the prediction thin.
    pub min_repeat_customers: usize,
}

impl Default for SufficiencyThresholds {
    fn default() -> Self {
        SufficiencyThresholds {
            min_repeat_customers: 200,
        }
    }
}

/// The verdict on a CLV prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum DataSufficiency {
    /// Enough repeat customers and fits that converged to plausible values.
    Sufficient,
    /// Show the prediction, if any, marked unreliable, and say why.
    Thin { reason: ThinReason },
}

/// Why a prediction is unreliable, most serious first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ThinReason {
    /// A model could not be fitted at all; there is no prediction.
    #[error("the {model} model could not be fitted: {message}")]
    FitFailed { model: String, message: String },
    #[error(
        "only {repeat_customers} customers bought more than once; at least {minimum} are needed"
    )]
    TooFewRepeatCustomers {
        repeat_customers: usize,
        minimum: usize,
    },
    #[error("the {model} fit did not converge after {iterations} iterations")]
    FitNotConverged { model: String, iterations: u64 },
    /// Parameters at the edge of their range: the likelihood is flat or degenerate there.
    #[error("the {model} fit reached implausible parameters: {detail}")]
    ImplausibleParameters { model: String, detail: String },
}

impl ThinReason {
    /// A stable snake_case code for clients and translations.
    pub fn code(&self) -> &'static str {
        match self {
            ThinReason::FitFailed { .. } => "fit_failed",
            ThinReason::TooFewRepeatCustomers { .. } => "too_few_repeat_customers",
            ThinReason::FitNotConverged { .. } => "fit_not_converged",
            ThinReason::ImplausibleParameters { .. } => "implausible_parameters",
        }
    }
}

/// Parameters outside [1e-4, 1e4] (on CDNOW they are 0.2–15) mean the optimiser ran off towards
/// a boundary where the likelihood is flat.
fn outside_plausible_range(value: f64) -> bool {
    !(1e-4..=1e4).contains(&value)
}

/// Judges the data behind a CLV prediction from the BG/NBD fit and, when spend is predicted
/// too, the Gamma-Gamma fit. Reasons are checked most serious first and the first one found
/// is reported.
pub fn assess_clv_data(
    bgnbd: &Result<BgNbdFit, FitError>,
    gamma_gamma: Option<&Result<GammaGammaFit, FitError>>,
    thresholds: &SufficiencyThresholds,
) -> DataSufficiency {
    let thin = |reason| DataSufficiency::Thin { reason };
    let bgnbd_fit = match bgnbd {
        Ok(fit) => fit,
        Err(FitError::NoRepeatCustomers) => {
            return thin(ThinReason::TooFewRepeatCustomers {
                repeat_customers: 0,
                minimum: thresholds.min_repeat_customers,
            })
        }
        Err(error) => {
            return thin(ThinReason::FitFailed {
                model: "BG/NBD".into(),
                message: error.to_string(),
            })
        }
    };
    let gamma_gamma_fit = match gamma_gamma {
        None => None,
        Some(Ok(fit)) => Some(fit),
        Some(Err(error)) => {
            return thin(ThinReason::FitFailed {
                model: "Gamma-Gamma".into(),
                message: error.to_string(),
            })
        }
    };
    if bgnbd_fit.repeat_customers < thresholds.min_repeat_customers {
        return thin(ThinReason::TooFewRepeatCustomers {
            repeat_customers: bgnbd_fit.repeat_customers,
            minimum: thresholds.min_repeat_customers,
        });
    }
    if !bgnbd_fit.converged {
        return thin(ThinReason::FitNotConverged {
            model: "BG/NBD".into(),
            iterations: bgnbd_fit.iterations,
        });
    }
    if let Some(fit) = gamma_gamma_fit {
        if !fit.converged {
            return thin(ThinReason::FitNotConverged {
                model: "Gamma-Gamma".into(),
                iterations: fit.iterations,
            });
        }
    }
    let p = bgnbd_fit.params;
    if [p.r, p.alpha, p.a, p.b]
        .into_iter()
        .any(outside_plausible_range)
    {
        return thin(ThinReason::ImplausibleParameters {
            model: "BG/NBD".into(),
            detail: format!("r = {}, alpha = {}, a = {}, b = {}", p.r, p.alpha, p.a, p.b),
        });
    }
    if let Some(fit) = gamma_gamma_fit {
        let g = fit.params;
        if g.q <= 1.0 {
            return thin(ThinReason::ImplausibleParameters {
                model: "Gamma-Gamma".into(),
                detail: format!(
                    "q = {} ≤ 1 makes the mean spend per transaction infinite",
                    g.q
                ),
            });
        }
        if [g.p, g.q].into_iter().any(outside_plausible_range) {
            return thin(ThinReason::ImplausibleParameters {
                model: "Gamma-Gamma".into(),
                detail: format!("p = {}, q = {}", g.p, g.q),
            });
        }
    }
    DataSufficiency::Sufficient
}
