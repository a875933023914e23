//! RFM scores (recency, frequency, monetary, each 1–5) and the named RFM segments.
//!
//! Scores are quintiles of the customer base: a customer's score is
//! `1 + ⌊5·k/n⌋`, where n is the number of customers and k the number of customers strictly
//! worse than them on that measure. Customers with equal values therefore always share a score
//! (a rank-based qcut would split them by input order), the result does not depend on the order
//! of the input, and the best customers get 5 whenever n ≥ 5. For recency, fewer days since the
//! last order is better (recent = 5); a customer who never ordered is the least recent of all.
//! With heavily tied data (say 60 % of customers with one order) fewer than five distinct
//! scores appear — that is the honest answer, not a defect.
//!
//! Segments follow the widely used R × FM grid, with FM = the average of the F and M scores
//! rounded half up, i.e. `(F + M + 1) / 2` in integer arithmetic:
//!
//! | FM \ R | 1              | 2              | 3              | 4                  | 5                  |
//! |--------|----------------|----------------|----------------|--------------------|--------------------|
//! | 5      | Can't lose them| Can't lose them| Loyal          | Loyal              | Champions          |
//! | 4      | At risk        | At risk        | Loyal          | Loyal              | Champions          |
//! | 3      | At risk        | At risk        | Need attention | Potential loyalist | Potential loyalist |
//! | 2      | Hibernating    | Hibernating    | About to sleep | Potential loyalist | Potential loyalist |
//! | 1      | Lost           | Hibernating    | About to sleep | Promising          | New                |
//!
//! As rules: Champions R 5, FM 4–5 · Loyal R 3–4, FM 4–5 · Potential loyalist R 4–5, FM 2–3 ·
//! New R 5, FM 1 · Promising R 4, FM 1 · Need attention R 3, FM 3 · About to sleep R 3, FM 1–2 ·
//! At risk R 1–2, FM 3–4 · Can't lose them R 1–2, FM 5 · Hibernating R 1–2, FM 1–2 except
//! R 1 FM 1 · Lost R 1, FM 1. Every cell has exactly one segment.

use serde::{Deserialize, Serialize};

/// What RFM needs to know about one customer. Money is in minor units, as in orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmInput<K> {
    pub customer: K,
    /// Days since the last order at the reference date the caller chose; `None` when the
    /// customer never ordered.
    pub days_since_last_order: Option<u32>,
    pub orders: u32,
    pub total_spent_minor: i64,
}

/// One customer's RFM scores and segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmScore<K> {
    pub customer: K,
    /// 1–5, 5 = ordered most recently.
    pub recency: u8,
    /// 1–5, 5 = most orders.
    pub frequency: u8,
    /// 1–5, 5 = spent most.
    pub monetary: u8,
    pub segment: RfmSegment,
}

/// The named RFM segments; see the module documentation for the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RfmSegment {
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

impl RfmSegment {
    /// All segments, best first.
    pub const ALL: [RfmSegment; 11] = [
        RfmSegment::Champions,
        RfmSegment::Loyal,
        RfmSegment::PotentialLoyalist,
        RfmSegment::New,
        RfmSegment::Promising,
        RfmSegment::NeedAttention,
        RfmSegment::AboutToSleep,
        RfmSegment::AtRisk,
        RfmSegment::CantLoseThem,
        RfmSegment::Hibernating,
        RfmSegment::Lost,
    ];

    /// The segment of a cell of the R × FM grid. Scores outside 1–5 are clamped into it.
    pub fn from_scores(recency: u8, frequency: u8, monetary: u8) -> RfmSegment {
        let r = recency.clamp(1, 5);
        let fm = (frequency.clamp(1, 5) + monetary.clamp(1, 5)).div_ceil(2);
        match (r, fm) {
            (5, 4..=5) => RfmSegment::Champions,
            (3..=4, 4..=5) => RfmSegment::Loyal,
            (4..=5, 2..=3) => RfmSegment::PotentialLoyalist,
            (5, 1) => RfmSegment::New,
            (4, 1) => RfmSegment::Promising,
            (3, 3) => RfmSegment::NeedAttention,
            (3, 1..=2) => RfmSegment::AboutToSleep,
            (1..=2, 3..=4) => RfmSegment::AtRisk,
            (1..=2, 5) => RfmSegment::CantLoseThem,
            (1, 1) => RfmSegment::Lost,
            _ => RfmSegment::Hibernating,
        }
    }

    /// Stable snake_case code, as serialised.
    pub fn code(self) -> &'static str {
        match self {
            RfmSegment::Champions => "champions",
            RfmSegment::Loyal => "loyal",
            RfmSegment::PotentialLoyalist => "potential_loyalist",
            RfmSegment::New => "new",
            RfmSegment::Promising => "promising",
            RfmSegment::NeedAttention => "need_attention",
            RfmSegment::AboutToSleep => "about_to_sleep",
            RfmSegment::AtRisk => "at_risk",
            RfmSegment::CantLoseThem => "cant_lose_them",
            RfmSegment::Hibernating => "hibernating",
            RfmSegment::Lost => "lost",
        }
    }

    /// English display name (the console translates by `code`).
    pub fn name(self) -> &'static str {
        match self {
            RfmSegment::Champions => "Champions",
            RfmSegment::Loyal => "Loyal",
            RfmSegment::PotentialLoyalist => "Potential loyalist",
            RfmSegment::New => "New",
            RfmSegment::Promising => "Promising",
            RfmSegment::NeedAttention => "Need attention",
            RfmSegment::AboutToSleep => "About to sleep",
            RfmSegment::AtRisk => "At risk",
            RfmSegment::CantLoseThem => "Can't lose them",
            RfmSegment::Hibernating => "Hibernating",
            RfmSegment::Lost => "Lost",
        }
    }
}

/// Quintile scores for `values` where larger is better: 1 + ⌊5·k/n⌋ with k the number of
/// values strictly smaller. O(n log n).
fn quintile_scores<T: Ord + Copy>(values: &[T]) -> Vec<u8> {
    let n = values.len();
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    values
        .iter()
        .map(|v| {
            let worse = sorted.partition_point(|s| s < v);
            (1 + 5 * worse / n) as u8
        })
        .collect()
}

/// RFM scores and segments for every customer, in input order.
pub fn rfm_scores<K: Clone>(customers: &[RfmInput<K>]) -> Vec<RfmScore<K>> {
    if customers.is_empty() {
        return Vec::new();
    }
    // Recency: fewer days is better, never ordered is worst. Map to a "larger is better" key.
    let recency_keys: Vec<i64> = customers
        .iter()
        .map(|c| {
            c.days_since_last_order
                .map_or(i64::MIN, |days| -i64::from(days))
        })
        .collect();
    let frequency_keys: Vec<u32> = customers.iter().map(|c| c.orders).collect();
    let monetary_keys: Vec<i64> = customers.iter().map(|c| c.total_spent_minor).collect();
    let recency = quintile_scores(&recency_keys);
    let frequency = quintile_scores(&frequency_keys);
    let monetary = quintile_scores(&monetary_keys);
    customers
        .iter()
        .enumerate()
        .map(|(i, c)| RfmScore {
            customer: c.customer.clone(),
            recency: recency[i],
            frequency: frequency[i],
            monetary: monetary[i],
            segment: RfmSegment::from_scores(recency[i], frequency[i], monetary[i]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grid_cell_has_the_documented_segment() {
        use RfmSegment::*;
        // Rows FM 5..1, columns R 1..5, as in the module documentation.
        let grid = [
            [CantLoseThem, CantLoseThem, Loyal, Loyal, Champions],
            [AtRisk, AtRisk, Loyal, Loyal, Champions],
            [
                AtRisk,
                AtRisk,
                NeedAttention,
                PotentialLoyalist,
                PotentialLoyalist,
            ],
            [
                Hibernating,
                Hibernating,
                AboutToSleep,
                PotentialLoyalist,
                PotentialLoyalist,
            ],
            [Lost, Hibernating, AboutToSleep, Promising, New],
        ];
        for (row, fm) in (1..=5u8).rev().enumerate() {
            for r in 1..=5u8 {
                assert_eq!(
                    RfmSegment::from_scores(r, fm, fm),
                    grid[row][usize::from(r) - 1],
                    "R {r} FM {fm}"
                );
            }
        }
        // FM rounds half up: F 5, M 4 → 4.5 → 5.
        assert_eq!(RfmSegment::from_scores(1, 5, 4), CantLoseThem);
        assert_eq!(RfmSegment::from_scores(1, 1, 2), Hibernating);
        assert_eq!(RfmSegment::ALL.len(), 11);
    }

    #[test]
    fn quintiles_share_scores_on_ties_and_ignore_input_order() {
        assert_eq!(quintile_scores(&[10, 20, 30, 40, 50]), vec![1, 2, 3, 4, 5]);
        assert_eq!(quintile_scores(&[50, 10, 30, 20, 40]), vec![5, 1, 3, 2, 4]);
        assert_eq!(quintile_scores(&[1, 1, 1, 2, 3]), vec![1, 1, 1, 4, 5]);
        assert_eq!(quintile_scores(&[7, 7]), vec![1, 1]);
    }

    #[test]
    fn recent_frequent_big_spenders_are_champions() {
        let input: Vec<RfmInput<u32>> = (0..10)
            .map(|i| RfmInput {
                customer: i,
                days_since_last_order: Some(100 - i * 10),
                orders: i + 1,
                total_spent_minor: i64::from(i) * 1000,
            })
            .chain(std::iter::once(RfmInput {
                customer: 99,
                days_since_last_order: None,
                orders: 0,
                total_spent_minor: 0,
            }))
            .collect();
        let scores = rfm_scores(&input);
        assert_eq!(scores.len(), 11);
        let best = &scores[9];
        assert_eq!(
            (best.recency, best.frequency, best.monetary, best.segment),
            (5, 5, 5, RfmSegment::Champions)
        );
        let never = &scores[10];
        assert_eq!(
            (
                never.recency,
                never.frequency,
                never.monetary,
                never.segment
            ),
            (1, 1, 1, RfmSegment::Lost)
        );
    }
}
