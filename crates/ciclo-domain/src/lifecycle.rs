//! Lifecycle stages, after the seeds' customer cycle (Alcance, Aquisição, Nutrição, Retenção,
//! Lealdade) plus At risk and Lapsed, and the configurable rules that place a customer in one.
//!
//! Default rules (each number is a per-workspace setting):
//!
//! | stage       | when (first rule that holds, top to bottom)                              |
//! |-------------|---------------------------------------------------------------------------|
//! | reach       | known, no order yet                                                       |
//! | lapsed      | last order more than `lapsed_after_days` (365) ago                        |
//! | at_risk     | last order more than `at_risk_after_days` (120) ago                       |
//! | loyalty     | at least `loyalty_min_orders` (5) orders and `loyalty_min_spent` (R$ 0)  |
//! | retention   | two or more orders                                                        |
//! | acquisition | one order, placed in the last `acquisition_days` (30)                     |
//! | nurture     | one order, older than that: a recent customer being developed             |

use crate::customer::OrderStats;
use crate::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Reach,
    Acquisition,
    Nurture,
    Retention,
    Loyalty,
    AtRisk,
    Lapsed,
}

impl Stage {
    /// Every stage, in the order of the cycle.
    pub const ALL: [Stage; 7] = [
        Stage::Reach,
        Stage::Acquisition,
        Stage::Nurture,
        Stage::Retention,
        Stage::Loyalty,
        Stage::AtRisk,
        Stage::Lapsed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Reach => "reach",
            Stage::Acquisition => "acquisition",
            Stage::Nurture => "nurture",
            Stage::Retention => "retention",
            Stage::Loyalty => "loyalty",
            Stage::AtRisk => "at_risk",
            Stage::Lapsed => "lapsed",
        }
    }

    pub fn parse(raw: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// The thresholds of the rules in the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleRules {
    pub acquisition_days: i64,
    pub at_risk_after_days: i64,
    pub lapsed_after_days: i64,
    pub loyalty_min_orders: i64,
    pub loyalty_min_spent_minor: i64,
}

impl Default for LifecycleRules {
    fn default() -> Self {
        LifecycleRules {
            acquisition_days: 30,
            at_risk_after_days: 120,
            lapsed_after_days: 365,
            loyalty_min_orders: 5,
            loyalty_min_spent_minor: 0,
        }
    }
}

impl LifecycleRules {
    /// The stage of a customer with these order stats at `now`.
    pub fn stage(&self, stats: &OrderStats, now: Timestamp) -> Stage {
        let Some(last) = stats.last_order_at else {
            return Stage::Reach;
        };
        if stats.orders_count == 0 {
            return Stage::Reach;
        }
        let days_since_last = (now - last).num_days();
        if days_since_last > self.lapsed_after_days {
            return Stage::Lapsed;
        }
        if days_since_last > self.at_risk_after_days {
            return Stage::AtRisk;
        }
        if stats.orders_count >= self.loyalty_min_orders
            && stats.total_spent_minor >= self.loyalty_min_spent_minor
        {
            return Stage::Loyalty;
        }
        if stats.orders_count >= 2 {
            return Stage::Retention;
        }
        let days_since_first = stats
            .first_order_at
            .map_or(days_since_last, |f| (now - f).num_days());
        if days_since_first <= self.acquisition_days {
            Stage::Acquisition
        } else {
            Stage::Nurture
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_ago: i64, now: Timestamp) -> Option<Timestamp> {
        Some(now - chrono::Duration::days(days_ago))
    }

    #[test]
    fn stages_follow_the_rules_in_order() {
        let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let rules = LifecycleRules::default();
        let stats = |n: i64, first: i64, last: i64| OrderStats {
            orders_count: n,
            total_spent_minor: n * 10_000,
            first_order_at: if n > 0 { at(first, now) } else { None },
            last_order_at: if n > 0 { at(last, now) } else { None },
        };
        let cases = [
            (stats(0, 0, 0), Stage::Reach),
            (stats(1, 3, 3), Stage::Acquisition),
            (stats(1, 30, 30), Stage::Acquisition),
            (stats(1, 31, 31), Stage::Nurture),
            (stats(2, 200, 10), Stage::Retention),
            (stats(5, 400, 10), Stage::Loyalty),
            (stats(5, 400, 121), Stage::AtRisk),
            (stats(1, 366, 366), Stage::Lapsed),
        ];
        for (s, expected) in cases {
            assert_eq!(rules.stage(&s, now), expected, "{s:?}");
        }
        let strict = LifecycleRules {
            loyalty_min_spent_minor: 1_000_000,
            ..LifecycleRules::default()
        };
        assert_eq!(strict.stage(&stats(5, 400, 10), now), Stage::Retention);
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
        }
    }
}
