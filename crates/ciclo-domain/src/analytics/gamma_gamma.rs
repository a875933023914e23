//! The Gamma-Gamma model of spend per transaction, and customer lifetime value.
//!
//! Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
//! Analysis", Journal of Marketing Research 42(4), 415–430; the likelihood as written in
//! Fader & Hardie, "The Gamma-Gamma Model of Monetary Value" (2013 note).
//!
//! A customer's transaction values are Gamma(p, ν) with ν ~ Gamma(q, γ) across customers, and
//! spend is assumed independent of purchase frequency ([`frequency_spend_correlation`] helps
//! check that). The only customers carrying information are those with repeat purchases: x
//! transactions with mean value m_x.
//!
//! [`customer_lifetime_value`] combines this with BG/NBD exactly as lifetimes'
//! `GammaGammaFitter.customer_lifetime_value` does: month by month, expected purchases in the
//! month times expected spend, discounted at a monthly rate.

use super::bgnbd::{BgNbdParams, RfmSummary};
use super::optimize::{self, Objective, Settings};
use super::special::{digamma, ln_gamma};
use super::{FitError, FitOptions, PredictionError};
use serde::{Deserialize, Serialize};

/// What the Gamma-Gamma model needs from one customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpendSummary {
    /// x: the number of transactions `average_spend` averages over (lifetimes uses the repeat
    /// purchases, i.e. the BG/NBD frequency, and so do we).
    pub frequency: u32,
    /// m_x: the mean value of those transactions, in any currency unit (must be > 0).
    pub average_spend: f64,
}

/// Gamma-Gamma parameters: transaction values ~ Gamma(p, ν), ν ~ Gamma(q, γ).
/// γ is in the currency unit of the data it was fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// A Gamma-Gamma fit with the facts needed to judge it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaFit {
    pub params: GammaGammaParams,
    /// Total log-likelihood of the customers used.
    pub log_likelihood: f64,
    pub iterations: u64,
    pub converged: bool,
    /// Customers used: those with frequency > 0.
    pub customers: usize,
}

impl GammaGammaParams {
    /// The log-density of one customer's average spend m_x given x:
    ///
    /// ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m_x + px ln x − (px+q) ln(γ + x m_x)
    pub fn customer_log_likelihood(&self, customer: &SpendSummary) -> f64 {
        let GammaGammaParams { p, q, gamma } = *self;
        let x = f64::from(customer.frequency);
        let m = customer.average_spend;
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * gamma.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (gamma + m * x).ln()
    }

    /// Total log-likelihood of the customers with frequency > 0 (the others carry no spend).
    pub fn log_likelihood(&self, data: &[SpendSummary]) -> f64 {
        data.iter()
            .filter(|c| c.frequency > 0)
            .map(|c| self.customer_log_likelihood(c))
            .sum()
    }

    /// The population mean spend per transaction, pγ/(q−1); infinite (`None`) when q ≤ 1.
    pub fn population_mean_spend(&self) -> Option<f64> {
        (self.q > 1.0).then(|| self.p * self.gamma / (self.q - 1.0))
    }

    /// E(M | p, q, γ, m_x, x): the expected spend per future transaction of a customer with x
    /// past transactions averaging m_x — a weighted mean of the population mean and the
    /// customer's own mean, weighted towards the latter as x grows:
    ///
    /// (q−1)/(px+q−1) · pγ/(q−1) + px/(px+q−1) · m_x  =  p(γ + x m_x)/(px+q−1).
    ///
    /// For x = 0 this is the population mean. `None` when it is undefined (px+q ≤ 1).
    pub fn conditional_expected_average_spend(
        &self,
        frequency: u32,
        average_spend: f64,
    ) -> Option<f64> {
        let GammaGammaParams { p, q, gamma } = *self;
        let x = f64::from(frequency);
        let denominator = p * x + q - 1.0;
        if denominator <= 0.0 {
            return None;
        }
        let own = if frequency > 0 {
            x * average_spend
        } else {
            0.0
        };
        Some(p * (gamma + own) / denominator)
    }
}

/// The negative mean log-likelihood over (ln p, ln q, ln γ), with spend rescaled to mean 1 so
/// that γ starts near 1 whether the data are in cents or dollars (γ scales with the currency
/// unit, so the optimum maps back exactly).
struct Likelihood {
    /// Distinct frequencies x, ascending: the ln Γ and ψ terms depend on p·x alone, so they
    /// are computed once per distinct x per evaluation (CDNOW: 946 customers, 26 values of x).
    frequencies: Vec<f64>,
    /// (index into `frequencies`, ln x, m_x, ln m_x) per customer with x > 0.
    customers: Vec<(usize, f64, f64, f64)>,
}

impl Likelihood {
    /// `customers`: (x > 0, m_x > 0), spend already rescaled.
    fn new(customers: &[(u32, f64)]) -> Likelihood {
        let mut distinct: Vec<u32> = customers.iter().map(|(x, _)| *x).collect();
        distinct.sort_unstable();
        distinct.dedup();
        Likelihood {
            frequencies: distinct.iter().map(|&x| f64::from(x)).collect(),
            customers: customers
                .iter()
                .map(|&(x, m)| {
                    let index = distinct
                        .binary_search(&x)
                        .expect("every frequency is listed");
                    (index, f64::from(x).ln(), m, m.ln())
                })
                .collect(),
        }
    }
}

impl Objective for Likelihood {
    fn value_and_gradient(&self, log_params: &[f64], gradient: &mut [f64]) -> f64 {
        let (p, q, gamma) = (
            log_params[0].exp(),
            log_params[1].exp(),
            log_params[2].exp(),
        );
        let (ln_gamma_q, psi_q, ln_gamma_param) = (ln_gamma(q), digamma(q), gamma.ln());
        // Per distinct x: ln Γ(px+q) − ln Γ(px), ψ(px+q) and ψ(px+q) − ψ(px).
        let per_frequency: Vec<[f64; 3]> = self
            .frequencies
            .iter()
            .map(|&x| {
                let px = p * x;
                let psi_pxq = digamma(px + q);
                [
                    ln_gamma(px + q) - ln_gamma(px),
                    psi_pxq,
                    psi_pxq - digamma(px),
                ]
            })
            .collect();
        let mut total = 0.0;
        let mut d = [0.0_f64; 3];
        for &(k, ln_x, m, ln_m) in &self.customers {
            let x = self.frequencies[k];
            let [ln_gamma_ratio, psi_pxq, psi_difference] = per_frequency[k];
            let px = p * x;
            let ln_denominator = (gamma + m * x).ln();
            total +=
                ln_gamma_ratio - ln_gamma_q + q * ln_gamma_param + (px - 1.0) * ln_m + px * ln_x
                    - (px + q) * ln_denominator;
            d[0] += x * (psi_difference + ln_m + ln_x - ln_denominator);
            d[1] += psi_pxq - psi_q + ln_gamma_param - ln_denominator;
            d[2] += q / gamma - (px + q) / (gamma + m * x);
        }
        let n = self.customers.len() as f64;
        for (slot, (derivative, theta)) in gradient.iter_mut().zip(d.iter().zip([p, q, gamma])) {
            *slot = -derivative * theta / n;
        }
        -total / n
    }
}

/// Fits Gamma-Gamma by maximum likelihood on the customers with frequency > 0 (others are
/// skipped: with no repeat transaction there is no spend average to learn from) and returns
/// the parameters, or an error when the data cannot support a fit or the optimiser did not
/// converge. Use [`fit_gamma_gamma_detailed`] for a best effort with diagnostics.
pub fn fit_gamma_gamma(data: &[SpendSummary]) -> Result<GammaGammaParams, FitError> {
    let fit = fit_gamma_gamma_detailed(data, &FitOptions::default())?;
    if fit.converged {
        Ok(fit.params)
    } else {
        Err(FitError::NotConverged {
            iterations: fit.iterations,
        })
    }
}

/// Fits Gamma-Gamma by maximum likelihood, returning the best point found even when the
/// optimiser did not converge (`converged` says which).
pub fn fit_gamma_gamma_detailed(
    data: &[SpendSummary],
    options: &FitOptions,
) -> Result<GammaGammaFit, FitError> {
    let mut used = Vec::new();
    for (index, customer) in data.iter().enumerate() {
        if customer.frequency == 0 {
            continue;
        }
        if !(customer.average_spend.is_finite() && customer.average_spend > 0.0) {
            return Err(FitError::InvalidCustomer {
                index,
                reason: "average spend must be a positive number".to_string(),
            });
        }
        used.push(*customer);
    }
    if used.is_empty() {
        return Err(FitError::NoRepeatCustomers);
    }
    let mean_spend = used.iter().map(|c| c.average_spend).sum::<f64>() / used.len() as f64;
    let scaled: Vec<(u32, f64)> = used
        .iter()
        .map(|c| (c.frequency, c.average_spend / mean_spend))
        .collect();
    let likelihood = Likelihood::new(&scaled);
    let starts = optimize::default_starts(options.initial_log_params.as_ref().map(|p| &p[..3]), 3);
    let settings = Settings {
        max_iterations: options.max_iterations,
        gradient_tolerance: options.gradient_tolerance,
    };
    let minimum = optimize::minimize_from_starts(&likelihood, &starts, settings);
    if minimum.x.iter().any(|v| !v.is_finite()) || !minimum.value.is_finite() {
        return Err(FitError::NonFinite);
    }
    let params = GammaGammaParams {
        p: minimum.x[0].exp(),
        q: minimum.x[1].exp(),
        gamma: minimum.x[2].exp() * mean_spend,
    };
    Ok(GammaGammaFit {
        params,
        log_likelihood: params.log_likelihood(&used),
        iterations: minimum.iterations,
        converged: minimum.converged,
        customers: used.len(),
    })
}

/// Pearson correlation between frequency and average spend over customers with frequency > 0.
/// Gamma-Gamma assumes the two are independent; a value far from 0 (lifetimes' docs suggest
/// worrying above roughly 0.3 in magnitude) means its spend predictions are biased.
/// `None` with fewer than two such customers or no variation.
pub fn frequency_spend_correlation(data: &[SpendSummary]) -> Option<f64> {
    let used: Vec<(f64, f64)> = data
        .iter()
        .filter(|c| c.frequency > 0)
        .map(|c| (f64::from(c.frequency), c.average_spend))
        .collect();
    if used.len() < 2 {
        return None;
    }
    let n = used.len() as f64;
    let (mean_x, mean_m) = used
        .iter()
        .fold((0.0, 0.0), |(sx, sm), (x, m)| (sx + x / n, sm + m / n));
    let (mut sxx, mut smm, mut sxm) = (0.0, 0.0, 0.0);
    for (x, m) in &used {
        sxx += (x - mean_x) * (x - mean_x);
        smm += (m - mean_m) * (m - mean_m);
        sxm += (x - mean_x) * (m - mean_m);
    }
    (sxx > 0.0 && smm > 0.0).then(|| sxm / (sxx * smm).sqrt())
}

/// How to add up future value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClvSettings {
    /// Months ahead to sum over.
    pub months: u32,
    /// Discount per month (0.01 = 1 %), applied as (1 + rate)^month.
    pub monthly_discount_rate: f64,
    /// Length of a month in the time unit of the BG/NBD data: lifetimes uses 4.345 for weeks
    /// and 30 for days.
    pub time_units_per_month: f64,
}

impl ClvSettings {
    /// For BG/NBD fitted in weeks (lifetimes' `freq="W"`).
    pub fn weeks(months: u32, monthly_discount_rate: f64) -> ClvSettings {
        ClvSettings {
            months,
            monthly_discount_rate,
            time_units_per_month: 4.345,
        }
    }

    /// For BG/NBD fitted in days (lifetimes' `freq="D"`).
    pub fn days(months: u32, monthly_discount_rate: f64) -> ClvSettings {
        ClvSettings {
            months,
            monthly_discount_rate,
            time_units_per_month: 30.0,
        }
    }
}

/// Discounted expected value of a customer over the next `settings.months` months:
///
/// Σₘ (E[Y(m·u)] − E[Y((m−1)·u)]) · E(M) / (1 + d)^m,  m = 1..months, u = time units per month,
///
/// with E\[Y\] from BG/NBD (eq. 10) and E(M) the Gamma-Gamma conditional expected spend for the
/// customer's frequency and `average_spend`. The result is in the currency unit of the spend.
pub fn customer_lifetime_value(
    bgnbd: &BgNbdParams,
    gamma_gamma: &GammaGammaParams,
    customer: &RfmSummary,
    average_spend: f64,
    settings: &ClvSettings,
) -> Result<f64, PredictionError> {
    let month_is_valid =
        settings.time_units_per_month.is_finite() && settings.time_units_per_month > 0.0;
    let rate_is_valid =
        settings.monthly_discount_rate.is_finite() && settings.monthly_discount_rate > -1.0;
    if !(month_is_valid && rate_is_valid) {
        return Err(PredictionError::InvalidHorizon);
    }
    let spend = gamma_gamma
        .conditional_expected_average_spend(customer.frequency, average_spend)
        .ok_or(PredictionError::UndefinedSpend)?;
    let mut value = 0.0;
    let mut previous = 0.0;
    for month in 1..=settings.months {
        let cumulative =
            bgnbd.expected_purchases(customer, f64::from(month) * settings.time_units_per_month)?;
        value += (cumulative - previous) * spend
            / (1.0 + settings.monthly_discount_rate).powi(month as i32);
        previous = cumulative;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let likelihood = Likelihood::new(&[(1, 0.6), (3, 2.0), (7, 0.475), (3, 1.1)]);
        let point = [1.2, 0.8, -0.3];
        let mut gradient = [0.0; 3];
        likelihood.value_and_gradient(&point, &mut gradient);
        for i in 0..3 {
            let h = 1e-6;
            let (mut up, mut down) = (point, point);
            up[i] += h;
            down[i] -= h;
            let mut scratch = [0.0; 3];
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
    fn expected_spend_shrinks_towards_the_population_mean() {
        let params = GammaGammaParams {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let population = params.population_mean_spend().unwrap();
        assert_eq!(
            params.conditional_expected_average_spend(0, 999.0),
            Some(population)
        );
        let one = params.conditional_expected_average_spend(1, 100.0).unwrap();
        let ten = params
            .conditional_expected_average_spend(10, 100.0)
            .unwrap();
        assert!(population < one && one < ten && ten < 100.0);
        assert_eq!(
            GammaGammaParams {
                p: 1.0,
                q: 0.5,
                gamma: 1.0
            }
            .population_mean_spend(),
            None
        );
    }

    #[test]
    fn no_discount_and_one_month_is_expected_purchases_times_spend() {
        let bgnbd = BgNbdParams {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let gamma_gamma = GammaGammaParams {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let customer = RfmSummary {
            frequency: 2,
            recency: 30.43,
            age: 38.86,
        };
        let settings = ClvSettings {
            months: 1,
            monthly_discount_rate: 0.0,
            time_units_per_month: 4.345,
        };
        let clv =
            customer_lifetime_value(&bgnbd, &gamma_gamma, &customer, 22.35, &settings).unwrap();
        let expected = bgnbd.expected_purchases(&customer, 4.345).unwrap()
            * gamma_gamma
                .conditional_expected_average_spend(2, 22.35)
                .unwrap();
        assert!((clv - expected).abs() < 1e-12);
    }
}
