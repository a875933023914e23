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
