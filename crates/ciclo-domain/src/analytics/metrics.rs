//! Descriptive customer-base metrics: repeat rate, churn rate, average order value, purchase
//! frequency and historic lifetime value.
//!
//! Non-contractual businesses (shops) never see a customer cancel, so "churned" here means
//! "no order for longer than a window the caller picks" — the usual operational definition.
//! For a model-based view of the same question see [`super::bgnbd`] (P(alive)).
//! Ratios are `None` when their denominator is zero rather than NaN, so the console can show
//! "—" instead of a misleading 0.

use super::rfm::RfmInput;
use serde::{Deserialize, Serialize};

/// Metrics of a customer base at one reference date (the one `days_since_last_order` was
/// measured from). Money is in minor units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerBaseMetrics {
    /// All customers given, including those who never ordered.
    pub customers: usize,
    /// Customers with at least one order.
    pub buyers: usize,
    /// Customers with at least two orders.
    pub repeat_buyers: usize,
    pub orders: u64,
    pub revenue_minor: i64,
    /// repeat_buyers / buyers.
    pub repeat_rate: Option<f64>,
    /// Buyers whose last order is more than `churn_after_days` ago, over buyers.
    pub churn_rate: Option<f64>,
    /// revenue / orders.
    pub average_order_value_minor: Option<f64>,
    /// orders / buyers.
    pub purchase_frequency: Option<f64>,
    /// revenue / buyers: what a buyer has been worth so far (= AOV × purchase frequency).
    pub historic_ltv_minor: Option<f64>,
}

fn ratio(numerator: f64, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator / denominator as f64)
}

/// Computes [`CustomerBaseMetrics`] from per-customer facts (the same input as RFM).
pub fn customer_base_metrics<K>(
    customers: &[RfmInput<K>],
    churn_after_days: u32,
) -> CustomerBaseMetrics {
    let buyers = customers.iter().filter(|c| c.orders > 0).count();
    let repeat_buyers = customers.iter().filter(|c| c.orders > 1).count();
    let churned = customers
        .iter()
        .filter(|c| {
            c.orders > 0
                && c.days_since_last_order
                    .is_some_and(|days| days > churn_after_days)
        })
        .count();
    let orders: u64 = customers.iter().map(|c| u64::from(c.orders)).sum();
    let revenue_minor: i64 = customers.iter().map(|c| c.total_spent_minor).sum();
    CustomerBaseMetrics {
        customers: customers.len(),
        buyers,
        repeat_buyers,
        orders,
        revenue_minor,
        repeat_rate: ratio(repeat_buyers as f64, buyers),
        churn_rate: ratio(churned as f64, buyers),
        average_order_value_minor: (orders > 0).then(|| revenue_minor as f64 / orders as f64),
        purchase_frequency: ratio(orders as f64, buyers),
        historic_ltv_minor: ratio(revenue_minor as f64, buyers),
    }
}

/// Churn between two consecutive periods: the share of customers active in the previous period
/// who are not active in the current one. Inputs are customer keys, in any order, duplicates
/// allowed. `None` when nobody was active in the previous period.
pub fn period_churn_rate<K: Ord + Clone>(
    previous_period: &[K],
    current_period: &[K],
) -> Option<f64> {
    let previous: std::collections::BTreeSet<K> = previous_period.iter().cloned().collect();
    let current: std::collections::BTreeSet<K> = current_period.iter().cloned().collect();
    let lost = previous.difference(&current).count();
    ratio(lost as f64, previous.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(days: Option<u32>, orders: u32, spent: i64) -> RfmInput<()> {
        RfmInput {
            customer: (),
            days_since_last_order: days,
            orders,
            total_spent_minor: spent,
        }
    }

    #[test]
    fn metrics_of_a_small_base() {
        let base = [
            customer(Some(10), 3, 30_000),
            customer(Some(200), 1, 5_000),
            customer(Some(40), 2, 15_000),
            customer(None, 0, 0),
        ];
        let metrics = customer_base_metrics(&base, 90);
        assert_eq!(
            (metrics.customers, metrics.buyers, metrics.repeat_buyers),
            (4, 3, 2)
        );
        assert_eq!(metrics.orders, 6);
        assert_eq!(metrics.revenue_minor, 50_000);
        assert_eq!(metrics.repeat_rate, Some(2.0 / 3.0));
        assert_eq!(metrics.churn_rate, Some(1.0 / 3.0));
        assert_eq!(metrics.average_order_value_minor, Some(50_000.0 / 6.0));
        assert_eq!(metrics.purchase_frequency, Some(2.0));
        assert_eq!(metrics.historic_ltv_minor, Some(50_000.0 / 3.0));
        let empty = customer_base_metrics::<()>(&[], 90);
        assert_eq!(
            (empty.repeat_rate, empty.average_order_value_minor),
            (None, None)
        );
    }

    #[test]
    fn period_churn_counts_customers_not_seen_again() {
        assert_eq!(
            period_churn_rate(&["a", "b", "b", "c", "d"], &["a", "c", "e"]),
            Some(0.5)
        );
        assert_eq!(period_churn_rate::<u8>(&[], &[1]), None);
    }
}
