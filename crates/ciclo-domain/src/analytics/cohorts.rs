//! Monthly acquisition cohorts: customers grouped by the month of their first order, followed
//! month by month — how many of them order again, and how much they spend.
//!
//! The last month to report is a parameter (the domain reads no clock), so a cohort's rows stop
//! at the current month instead of showing future months as zero retention.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Month {
    pub year: i32,
    /// 1–12.
    pub month: u32,
}

impl Month {
    /// `None` when `month` is not 1–12.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        (1..=12).contains(&month).then_some(Month { year, month })
    }

    pub fn of(date: NaiveDate) -> Month {
        Month {
            year: date.year(),
            month: date.month(),
        }
    }

    /// Months elapsed since the year 0, so that offsets are plain subtraction.
    fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    /// Whole months from `earlier` to `self` (negative when `self` is before `earlier`).
    pub fn months_since(self, earlier: Month) -> i64 {
        self.index() - earlier.index()
    }
}

/// One customer's ordering history by month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMonths {
    pub first_order_month: Month,
    /// Months with orders and the revenue of each (minor units). A month may appear more than
    /// once (one entry per order); entries before `first_order_month` are ignored.
    pub orders: Vec<(Month, i64)>,
}

/// One acquisition cohort; vectors are indexed by month offset (0 = the first-order month)
/// up to the reporting month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    pub month: Month,
    /// Customers whose first order fell in `month`.
    pub size: usize,
    /// Customers of the cohort who ordered in month `month + offset`. Offset 0 is the whole
    /// cohort: a first order is an order.
    pub active: Vec<usize>,
    /// `active[offset] / size`.
    pub retention: Vec<f64>,
    /// Revenue of the cohort's orders in month `month + offset`, minor units.
    pub revenue_minor: Vec<i64>,
}

/// Builds monthly cohorts up to and including `through`, oldest cohort first. Customers whose
/// first order is after `through` are left out; orders after `through` are not counted.
pub fn monthly_cohorts(customers: &[CustomerMonths], through: Month) -> Vec<Cohort> {
    let mut cohorts: BTreeMap<Month, Cohort> = BTreeMap::new();
    for customer in customers {
        let start = customer.first_order_month;
        let Ok(span) = usize::try_from(through.months_since(start)) else {
            continue;
        };
        let cohort = cohorts.entry(start).or_insert_with(|| Cohort {
            month: start,
            size: 0,
            active: vec![0; span + 1],
            retention: Vec::new(),
            revenue_minor: vec![0; span + 1],
        });
        cohort.size += 1;
        let mut active_offsets = vec![false; span + 1];
        active_offsets[0] = true;
        for (month, revenue) in &customer.orders {
            let Ok(offset) = usize::try_from(month.months_since(start)) else {
                continue;
            };
            if offset > span {
                continue;
            }
            active_offsets[offset] = true;
            cohort.revenue_minor[offset] += revenue;
        }
        for (count, active) in cohort.active.iter_mut().zip(active_offsets) {
            *count += usize::from(active);
        }
    }
    cohorts
        .into_values()
        .map(|mut cohort| {
            cohort.retention = cohort
                .active
                .iter()
                .map(|&a| a as f64 / cohort.size as f64)
                .collect();
            cohort
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(year: i32, month: u32) -> Month {
        Month::new(year, month).unwrap()
    }

    #[test]
    fn cohorts_count_retention_and_revenue_by_offset() {
        let customers = vec![
            CustomerMonths {
                first_order_month: month(2024, 11),
                orders: vec![
                    (month(2024, 11), 100),
                    (month(2025, 1), 50),
                    (month(2025, 1), 25),
                ],
            },
            CustomerMonths {
                first_order_month: month(2024, 11),
                orders: vec![(month(2024, 11), 80)],
            },
            CustomerMonths {
                first_order_month: month(2024, 12),
                orders: vec![
                    (month(2024, 12), 10),
                    (month(2025, 1), 10),
                    (month(2025, 2), 99),
                ],
            },
            CustomerMonths {
                first_order_month: month(2025, 2),
                orders: vec![(month(2025, 2), 1)],
            },
        ];
        let cohorts = monthly_cohorts(&customers, month(2025, 1));
        assert_eq!(
            cohorts.len(),
            2,
            "the February 2025 cohort is after the reporting month"
        );
        let november = &cohorts[0];
        assert_eq!(november.size, 2);
        assert_eq!(november.active, vec![2, 0, 1]);
        assert_eq!(november.retention, vec![1.0, 0.0, 0.5]);
        assert_eq!(november.revenue_minor, vec![180, 0, 75]);
        let december = &cohorts[1];
        assert_eq!(december.active, vec![1, 1]);
        assert_eq!(
            december.revenue_minor,
            vec![10, 10],
            "orders after the reporting month are not counted"
        );
        assert_eq!(month(2025, 1).months_since(month(2024, 11)), 2);
        assert_eq!(Month::new(2025, 13), None);
    }
}
