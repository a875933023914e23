//! ciclo's domain: plain data and the rules over it.
//!
//! Nothing in this crate performs IO or reads a clock: time and randomness come in as
//! parameters, so every rule can be tested with fixed inputs.

pub mod analytics;
pub mod contact;
pub mod customer;
pub mod error;
pub mod event;
pub mod identity;
pub mod ids;
pub mod lifecycle;
pub mod operator;
pub mod order;
pub mod segment;

pub use chrono::{DateTime, NaiveDate, Utc};
pub use error::FieldError;

/// A point in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// `YYYY-MM` of `t` in the IANA time zone `tz` (UTC when the name is unknown): months of
/// charts and cohorts follow the business's calendar, not UTC.
pub fn local_month(t: Timestamp, tz: &str) -> String {
    match tz.parse::<chrono_tz::Tz>() {
        Ok(zone) => t.with_timezone(&zone).format("%Y-%m").to_string(),
        Err(_) => t.format("%Y-%m").to_string(),
    }
}
