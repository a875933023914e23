//! The BG/NBD model of repeat buying: Fader, Hardie & Lee (2005), "Counting Your Customers the
//! Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275–284.
//!
//! While alive, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each
//! purchase they drop out with probability p ~ Beta(a, b). All the model needs from a customer's
//! history is the summary (x, t_x, T) — [`RfmSummary`] — and the time unit is the caller's
//! choice (weeks in the paper; the fitted α is in that unit).
//!
//! * [`fit_bgnbd`] maximises the log-likelihood of section 7 (the paper's eq. 6) over
//!   (ln r, ln α, ln a, ln b), so the parameters stay positive without constraints.
//! * [`BgNbdParams::expected_purchases`] is the conditional expectation of eq. 10, with
//!   ₂F₁ from [`super::special`].
//! * [`BgNbdParams::probability_alive`] is P(alive | x, t_x, T) from Fader, Hardie & Lee,
//!   "Computing P(alive) Using the BG/NBD Model" (2008 note), eq. 2.

use super::optimize::{self, Objective, Settings};
use super::special::{digamma, ln_gamma, ln_hyp2f1};
use super::{FitError, FitOptions, PredictionError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One customer's purchase history as the BG/NBD model sees it. All times in one unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RfmSummary {
    /// x: the number of repeat purchases, i.e. purchase periods after the first one.
    pub frequency: u32,
    /// t_x: time from the first to the last purchase (0 when `frequency` is 0).
    pub recency: f64,
    /// T: time from the first purchase to the end of the observation period.
    pub age: f64,
}

/// The time unit of a summary built from calendar dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeUnit {
    Days,
    Weeks,
}

impl TimeUnit {
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 7.0,
        }
    }
}

/// Why a summary is not a valid BG/NBD input.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum SummaryError {
    #[error("recency and age must be finite numbers")]
    NonFinite,
    #[error("recency must not be negative")]
    NegativeRecency,
    #[error(
        "recency (time to the last purchase) must not exceed age (time to the end of observation)"
    )]
    RecencyAfterAge,
    #[error("a customer without repeat purchases must have recency 0")]
    RecencyWithoutRepeat,
    #[error("a customer summary needs at least one purchase")]
    NoPurchases,
    #[error("a purchase lies after the end of the observation period")]
    PurchaseAfterObservationEnd,
}

impl RfmSummary {
    /// A checked summary.
    pub fn new(frequency: u32, recency: f64, age: f64) -> Result<RfmSummary, SummaryError> {
        let summary = RfmSummary {
            frequency,
            recency,
            age,
        };
        summary.check()?;
        Ok(summary)
    }

    /// Summarises purchase dates as lifetimes' `summary_data_from_transaction_data` does with
    /// daily periods: several purchases on one day count as one, x is the number of distinct
    /// purchase days after the first, t_x and T are measured from the first day in `unit`.
    /// The end of observation is a parameter (the domain reads no clock).
    pub fn from_purchase_dates(
        purchase_dates: &[NaiveDate],
        observation_end: NaiveDate,
        unit: TimeUnit,
    ) -> Result<RfmSummary, SummaryError> {
        let mut days: Vec<NaiveDate> = purchase_dates.to_vec();
        days.sort_unstable();
        days.dedup();
        let (Some(first), Some(last)) = (days.first(), days.last()) else {
            return Err(SummaryError::NoPurchases);
        };
        if *last > observation_end {
            return Err(SummaryError::PurchaseAfterObservationEnd);
        }
        let in_units = |to: NaiveDate| (to - *first).num_days() as f64 / unit.days();
        RfmSummary::new(
            (days.len() - 1) as u32,
            in_units(*last),
            in_units(observation_end),
        )
    }

    /// The rules lifetimes' `_check_inputs` enforces, plus finiteness.
    pub fn check(&self) -> Result<(), SummaryError> {
        if !self.recency.is_finite() || !self.age.is_finite() {
            return Err(SummaryError::NonFinite);
        }
        if self.recency < 0.0 {
            return Err(SummaryError::NegativeRecency);
        }
        if self.recency > self.age {
            return Err(SummaryError::RecencyAfterAge);
        }
        if self.frequency == 0 && self.recency != 0.0 {
            return Err(SummaryError::RecencyWithoutRepeat);
        }
        Ok(())
    }
}

/// The four BG/NBD parameters: purchase rates λ ~ Gamma(shape r, rate α), dropout
/// probabilities p ~ Beta(a, b). α is in the time unit of the data it was fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// A BG/NBD fit with the facts needed to judge it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdFit {
    pub params: BgNbdParams,
    /// The total log-likelihood of the data at `params` (the paper reports −9582.4 for CDNOW).
    pub log_likelihood: f64,
    /// Optimiser iterations used.
    pub iterations: u64,
    /// Whether the optimiser reached a stationary point (see [`FitOptions::gradient_tolerance`]).
    pub converged: bool,
    /// Customers in the data.
    pub customers: usize,
    /// Customers with at least one repeat purchase (x > 0): they carry the information about
    /// dropout, so few of them make an unreliable fit.
    pub repeat_customers: usize,
}

impl BgNbdParams {
    /// The log-likelihood of one customer (the paper's eq. 6, in the form of its section 7):
    ///
    /// ln L = ln B(a, b+x) − ln B(a, b) + ln Γ(r+x) − ln Γ(r) + r ln α
    ///        + ln[ (α+T)^−(r+x) + δ(x>0) · a/(b+x−1) · (α+t_x)^−(r+x) ].
    ///
    /// The bracket is combined with log-sum-exp: for frequent buyers both powers underflow.
    pub fn customer_log_likelihood(&self, customer: &RfmSummary) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        let x = f64::from(customer.frequency);
        let beta_part = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        let gamma_part = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let still_alive = -(r + x) * (alpha + customer.age).ln();
        let bracket = if customer.frequency > 0 {
            let dropped_after_last =
                a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + customer.recency).ln();
            log_add_exp(still_alive, dropped_after_last)
        } else {
            still_alive
        };
        beta_part + gamma_part + bracket
    }

    /// The total log-likelihood of `data`.
    pub fn log_likelihood(&self, data: &[RfmSummary]) -> f64 {
        data.iter().map(|c| self.customer_log_likelihood(c)).sum()
    }

    /// P(alive | x, t_x, T) = 1 / (1 + δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)).
    ///
    /// A customer who never bought again is "alive" with probability 1 under BG/NBD, because
    /// dropout can only happen right after a purchase (a known quirk of the model).
    pub fn probability_alive(&self, customer: &RfmSummary) -> f64 {
        if customer.frequency == 0 {
            return 1.0;
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        let x = f64::from(customer.frequency);
        let ln_odds_dead = a.ln() - (b + x - 1.0).ln()
            + (r + x) * ((alpha + customer.age).ln() - (alpha + customer.recency).ln());
        1.0 / (1.0 + ln_odds_dead.exp())
    }

    /// E[Y(t) | x, t_x, T]: the expected number of purchases in the next `horizon` time units
    /// by a customer with this history (eq. 10):
    ///
    /// (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))]
    /// / [1 + δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)]
    pub fn expected_purchases(
        &self,
        customer: &RfmSummary,
        horizon: f64,
    ) -> Result<f64, PredictionError> {
        check_horizon(horizon)?;
        if horizon == 0.0 {
            return Ok(0.0);
        }
        let BgNbdParams { r, alpha, b, .. } = *self;
        let a = away_from_one(self.a);
        let x = f64::from(customer.frequency);
        let t = horizon;
        let big_t = customer.age;
        let z = t / (alpha + big_t + t);
        let ln_one_minus_z = (alpha + big_t).ln() - (alpha + big_t + t).ln();
        let hypergeometric = ln_hyp2f1(r + x, b + x, a + b + x - 1.0, z)?;
        let discounted = hypergeometric.scale_ln((r + x) * ln_one_minus_z).to_f64();
        let numerator = (a + b + x - 1.0) / (a - 1.0) * (1.0 - discounted);
        let denominator = if customer.frequency > 0 {
            1.0 + (a.ln() - (b + x - 1.0).ln()
                + (r + x) * ((alpha + big_t).ln() - (alpha + customer.recency).ln()))
            .exp()
        } else {
            1.0
        };
        Ok(numerator / denominator)
    }

    /// E[X(t)]: expected purchases in a period of length t by a customer picked at random from
    /// the population at the start of their life (eq. 9):
    /// (a+b−1)/(a−1) · [1 − (α/(α+t))^r ₂F₁(r, b; a+b−1; t/(α+t))].
    pub fn expected_purchases_new_customer(&self, horizon: f64) -> Result<f64, PredictionError> {
        check_horizon(horizon)?;
        if horizon == 0.0 {
            return Ok(0.0);
        }
        let BgNbdParams { r, alpha, b, .. } = *self;
        let a = away_from_one(self.a);
        let z = horizon / (alpha + horizon);
        let hypergeometric = ln_hyp2f1(r, b, a + b - 1.0, z)?;
        let discounted = hypergeometric
            .scale_ln(r * (alpha.ln() - (alpha + horizon).ln()))
            .to_f64();
        Ok((a + b - 1.0) / (a - 1.0) * (1.0 - discounted))
    }
}

fn check_horizon(horizon: f64) -> Result<(), PredictionError> {
    if horizon.is_finite() && horizon >= 0.0 {
        Ok(())
    } else {
        Err(PredictionError::InvalidHorizon)
    }
}

/// Eqs. 9 and 10 divide by (a−1); at a = 1 the bracket vanishes too and the limit is finite.
/// Evaluating a hair away from 1 gives that limit to about 1e-8 relative, which is plenty for
/// purchase counts, without a separate closed form for a measure-zero case.
fn away_from_one(a: f64) -> f64 {
    const NUDGE: f64 = 1e-7;
    if (a - 1.0).abs() < NUDGE {
        1.0 + NUDGE
    } else {
        a
    }
}

/// ln(eᵘ + eᵛ) without overflow or underflow.
fn log_add_exp(u: f64, v: f64) -> f64 {
    let m = u.max(v);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((u - m).exp() + (v - m).exp()).ln()
}

/// Customers who share (x, t_x, T) contribute identical likelihood terms; the fit evaluates each
/// distinct pattern once with a weight, as Fader & Hardie do in their spreadsheet and lifetimes
/// does with `weights`. CDNOW's 2,357 customers collapse to about 1,500 patterns.
#[derive(Debug, Clone, Copy)]
struct Pattern {
    frequency: u32,
    recency: f64,
    age: f64,
    weight: f64,
}

/// The negative mean log-likelihood over (ln r, ln α, ln a, ln b), in rescaled time.
///
/// Time is rescaled so the longest age is 10 (lifetimes does the same): α then lives near 1
/// whether the caller counts in days or weeks, which keeps the optimiser's steps well scaled.
/// The likelihood is equivariant under the rescaling (α scales with time), so the optimum maps
/// back exactly.
struct Likelihood {
    patterns: Vec<Pattern>,
    /// Distinct frequencies, ascending; the ln Γ and ψ terms depend on x alone.
    frequencies: Vec<u32>,
    /// For each pattern, the index of its frequency in `frequencies`.
    frequency_index: Vec<usize>,
    total_weight: f64,
}

impl Likelihood {
    fn new(data: &[RfmSummary], time_scale: f64) -> Likelihood {
        let mut sorted: Vec<RfmSummary> = data
            .iter()
            .map(|c| RfmSummary {
                frequency: c.frequency,
                recency: c.recency * time_scale,
                age: c.age * time_scale,
            })
            .collect();
        sorted.sort_by(|p, q| {
            p.frequency
                .cmp(&q.frequency)
                .then(p.recency.total_cmp(&q.recency))
                .then(p.age.total_cmp(&q.age))
        });
        let mut patterns: Vec<Pattern> = Vec::new();
        for c in sorted {
            match patterns.last_mut() {
                Some(last)
                    if last.frequency == c.frequency
                        && last.recency == c.recency
                        && last.age == c.age =>
                {
                    last.weight += 1.0
                }
                _ => patterns.push(Pattern {
                    frequency: c.frequency,
                    recency: c.recency,
                    age: c.age,
                    weight: 1.0,
                }),
            }
        }
        let mut frequencies: Vec<u32> = patterns.iter().map(|p| p.frequency).collect();
        frequencies.dedup();
        let frequency_index = patterns
            .iter()
            .map(|p| {
                frequencies
                    .binary_search(&p.frequency)
                    .expect("every frequency is listed")
            })
            .collect();
        Likelihood {
            patterns,
            frequencies,
            frequency_index,
            total_weight: data.len() as f64,
        }
    }
}

impl Objective for Likelihood {
    fn value_and_gradient(&self, log_params: &[f64], gradient: &mut [f64]) -> f64 {
        let (r, alpha, a, b) = (
            log_params[0].exp(),
            log_params[1].exp(),
            log_params[2].exp(),
            log_params[3].exp(),
        );
        // Per distinct x: the ln Γ parts of the likelihood and their derivatives (ψ = digamma).
        //   G(x)   = ln Γ(r+x) − ln Γ(r) + ln Γ(a+b) + ln Γ(b+x) − ln Γ(b) − ln Γ(a+b+x)
        //   ∂G/∂r  = ψ(r+x) − ψ(r)
        //   ∂G/∂a  = ψ(a+b) − ψ(a+b+x)
        //   ∂G/∂b  = ψ(a+b) + ψ(b+x) − ψ(b) − ψ(a+b+x)
        let (ln_gamma_r, ln_gamma_b, ln_gamma_ab) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b));
        let (psi_r, psi_b, psi_ab) = (digamma(r), digamma(b), digamma(a + b));
        let per_frequency: Vec<[f64; 4]> = self
            .frequencies
            .iter()
            .map(|&frequency| {
                if frequency == 0 {
                    return [0.0; 4];
                }
                let x = f64::from(frequency);
                let psi_abx = digamma(a + b + x);
                [
                    ln_gamma(r + x) - ln_gamma_r + ln_gamma_ab + ln_gamma(b + x)
                        - ln_gamma_b
                        - ln_gamma(a + b + x),
                    digamma(r + x) - psi_r,
                    psi_ab - psi_abx,
                    psi_ab + digamma(b + x) - psi_b - psi_abx,
                ]
            })
            .collect();

        let ln_alpha = alpha.ln();
        let ln_a = a.ln();
        let mut total = 0.0;
        let mut d = [0.0_f64; 4];
        for (pattern, &k) in self.patterns.iter().zip(&self.frequency_index) {
            let [g, dg_r, dg_a, dg_b] = per_frequency[k];
            let x = f64::from(pattern.frequency);
            let w = pattern.weight;
            let ln_alpha_age = (alpha + pattern.age).ln();
            let still_alive = -(r + x) * ln_alpha_age;
            let (ll, d_r, d_alpha, d_a, d_b);
            if pattern.frequency > 0 {
                let ln_alpha_recency = (alpha + pattern.recency).ln();
                let b_x_1 = b + x - 1.0;
                let dropped = ln_a - b_x_1.ln() - (r + x) * ln_alpha_recency;
                let bracket = log_add_exp(still_alive, dropped);
                // Shares of the two bracket terms: the derivative of ln(e^u + e^v).
                let share_alive = (still_alive - bracket).exp();
                let share_dropped = (dropped - bracket).exp();
                ll = g + r * ln_alpha + bracket;
                d_r =
                    dg_r + ln_alpha - share_alive * ln_alpha_age - share_dropped * ln_alpha_recency;
                d_alpha = r / alpha
                    - share_alive * (r + x) / (alpha + pattern.age)
                    - share_dropped * (r + x) / (alpha + pattern.recency);
                d_a = dg_a + share_dropped / a;
                d_b = dg_b - share_dropped / b_x_1;
            } else {
                ll = g + r * ln_alpha + still_alive;
                d_r = ln_alpha - ln_alpha_age;
                d_alpha = r / alpha - r / (alpha + pattern.age);
                d_a = dg_a;
                d_b = dg_b;
            }
            total += w * ll;
            d[0] += w * d_r;
            d[1] += w * d_alpha;
            d[2] += w * d_a;
            d[3] += w * d_b;
        }
        // Chain rule to log-parameters (∂/∂ln θ = θ ∂/∂θ), negated and averaged.
        for (slot, (derivative, theta)) in gradient.iter_mut().zip(d.iter().zip([r, alpha, a, b])) {
            *slot = -derivative * theta / self.total_weight;
        }
        -total / self.total_weight
    }
}

/// Fits BG/NBD by maximum likelihood and returns the parameters, or an error when the data
/// cannot support a fit or the optimiser did not converge. Use [`fit_bgnbd_detailed`] for the
/// log-likelihood, iteration count and a non-converged best effort.
///
/// Time units are the caller's: α comes back in the unit of `recency` and `age`.
pub fn fit_bgnbd(data: &[RfmSummary]) -> Result<BgNbdParams, FitError> {
    let fit = fit_bgnbd_detailed(data, &FitOptions::default())?;
    if fit.converged {
        Ok(fit.params)
    } else {
        Err(FitError::NotConverged {
            iterations: fit.iterations,
        })
    }
}

/// Fits BG/NBD by maximum likelihood, returning the best point found even when the optimiser
/// did not converge (`converged` says which), so a console can show a prediction flagged as
/// unreliable instead of none.
pub fn fit_bgnbd_detailed(data: &[RfmSummary], options: &FitOptions) -> Result<BgNbdFit, FitError> {
    if data.is_empty() {
        return Err(FitError::NoData);
    }
    for (index, customer) in data.iter().enumerate() {
        customer
            .check()
            .map_err(|reason| FitError::InvalidCustomer {
                index,
                reason: reason.to_string(),
            })?;
    }
    let repeat_customers = data.iter().filter(|c| c.frequency > 0).count();
    if repeat_customers == 0 {
        // Without a single repeat purchase the likelihood has no maximum: dropout is unidentified.
        return Err(FitError::NoRepeatCustomers);
    }
    let longest_age = data.iter().map(|c| c.age).fold(0.0_f64, f64::max);
    if longest_age <= 0.0 {
        return Err(FitError::NoData);
    }
    let time_scale = 10.0 / longest_age;
    let likelihood = Likelihood::new(data, time_scale);
    let starts = optimize::default_starts(options.initial_log_params.as_ref().map(|p| &p[..]), 4);
    let settings = Settings {
        max_iterations: options.max_iterations,
        gradient_tolerance: options.gradient_tolerance,
    };
    let minimum = optimize::minimize_from_starts(&likelihood, &starts, settings);
    if minimum.x.iter().any(|v| !v.is_finite()) || !minimum.value.is_finite() {
        return Err(FitError::NonFinite);
    }
    let params = BgNbdParams {
        r: minimum.x[0].exp(),
        alpha: minimum.x[1].exp() / time_scale,
        a: minimum.x[2].exp(),
        b: minimum.x[3].exp(),
    };
    Ok(BgNbdFit {
        params,
        log_likelihood: params.log_likelihood(data),
        iterations: minimum.iterations,
        converged: minimum.converged,
        customers: data.len(),
        repeat_customers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAPER: BgNbdParams = BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };

    #[test]
    fn gradient_matches_finite_differences() {
        let data = [
            RfmSummary {
                frequency: 0,
                recency: 0.0,
                age: 30.0,
            },
            RfmSummary {
                frequency: 2,
                recency: 20.0,
                age: 38.0,
            },
            RfmSummary {
                frequency: 7,
                recency: 35.5,
                age: 36.0,
            },
            RfmSummary {
                frequency: 1,
                recency: 1.0,
                age: 12.0,
            },
        ];
        let likelihood = Likelihood::new(&data, 0.25);
        let point = [-1.2, 0.3, -0.2, 0.9];
        let mut gradient = [0.0; 4];
        likelihood.value_and_gradient(&point, &mut gradient);
        for i in 0..4 {
            let h = 1e-6;
            let (mut up, mut down) = (point, point);
            up[i] += h;
            down[i] -= h;
            let mut scratch = [0.0; 4];
            let numeric = (likelihood.value_and_gradient(&up, &mut scratch)
                - likelihood.value_and_gradient(&down, &mut scratch))
                / (2.0 * h);
            assert!(
                (numeric - gradient[i]).abs() < 1e-7,
                "component {i}: {numeric} vs {}",
                gradient[i]
            );
        }
    }

    #[test]
    fn probability_alive_rules() {
        let never_repeated = RfmSummary {
            frequency: 0,
            recency: 0.0,
            age: 38.0,
        };
        assert_eq!(PAPER.probability_alive(&never_repeated), 1.0);
        let recent = RfmSummary {
            frequency: 5,
            recency: 37.0,
            age: 38.0,
        };
        let lapsed = RfmSummary {
            frequency: 5,
            recency: 5.0,
            age: 38.0,
        };
        assert!(PAPER.probability_alive(&recent) > PAPER.probability_alive(&lapsed));
    }

    #[test]
    fn expected_purchases_grow_with_the_horizon_and_start_at_zero() {
        let customer = RfmSummary {
            frequency: 3,
            recency: 30.0,
            age: 38.0,
        };
        assert_eq!(PAPER.expected_purchases(&customer, 0.0).unwrap(), 0.0);
        let mut previous = 0.0;
        for horizon in [1.0, 10.0, 52.0, 260.0, 1000.0] {
            let value = PAPER.expected_purchases(&customer, horizon).unwrap();
            assert!(value > previous, "horizon {horizon}: {value} <= {previous}");
            previous = value;
        }
        assert!(PAPER.expected_purchases(&customer, -1.0).is_err());
    }

    #[test]
    fn summary_from_dates_counts_distinct_days() {
        let day = |d| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
        let summary = RfmSummary::from_purchase_dates(
            &[day(1), day(1), day(8), day(15)],
            day(29),
            TimeUnit::Weeks,
        )
        .unwrap();
        assert_eq!(
            summary,
            RfmSummary {
                frequency: 2,
                recency: 2.0,
                age: 4.0
            }
        );
        assert_eq!(
            RfmSummary::from_purchase_dates(&[day(30)], day(29), TimeUnit::Days),
            Err(SummaryError::PurchaseAfterObservationEnd)
        );
        assert_eq!(
            RfmSummary::new(0, 1.0, 3.0),
            Err(SummaryError::RecencyWithoutRepeat)
        );
    }
}
