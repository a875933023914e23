//! The numbers on the console's home page: customers by lifecycle stage, new customers and
//! orders per month, revenue, active customers.

use crate::accounts::Actor;
use crate::error::CoreResult;
use crate::Ciclo;
use ciclo_domain::operator::Permission;
use serde::Serialize;

/// One month of activity (`month` is `YYYY-MM` in the workspace's time zone).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthPoint {
    pub month: String,
    pub new_customers: i64,
    pub orders: i64,
    pub revenue_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    pub customers_total: i64,
    /// Customers who did anything in the last 30 days.
    pub active_customers_30d: i64,
    pub orders_total: i64,
    pub revenue_total_minor: i64,
    /// (stage, count) in lifecycle order: reach, acquisition, nurture, retention, loyalty,
    /// at_risk, lapsed.
    pub customers_by_stage: Vec<(String, i64)>,
    /// The last 24 months, oldest first, months without activity included.
    pub months: Vec<MonthPoint>,
}

impl Ciclo {
    pub fn dashboard(&self, actor: &Actor) -> CoreResult<Dashboard> {
        actor.require(Permission::ReadCustomers)?;
        todo!("dashboard aggregates: being written")
    }
}
