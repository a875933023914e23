//! ciclo's use cases. HTTP handlers, the CLI and workers all call these, never the store directly.
//!
//! Every call is synchronous and blocking (the store is); async callers use `spawn_blocking`.
//! Time and randomness come from the [`Clock`] and [`Random`] ports so tests can fix them.

pub mod accounts;
pub mod analytics;
pub mod customers;
pub mod dashboard;
pub mod error;
pub mod evaluate;
pub mod identity;
pub mod import;
pub mod ingest;
pub mod lifecycle;
pub mod mfa;
pub mod ports;
pub mod segment_index;
pub mod segments;

pub use error::CoreError;
pub use ports::{Clock, Random, SystemClock, SystemRandom};

use ciclo_store::Store;
use std::sync::Arc;

/// The application: the store and the ports, shared by every caller.
#[derive(Clone)]
pub struct Ciclo {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    /// The process's ingestion writer, started on first use (see `ingest`).
    ingest_writer: Arc<std::sync::OnceLock<ingest::IngestWriter>>,
    /// Wakes the background evaluator (see `evaluate`).
    evaluation: Arc<evaluate::Signal>,
    /// Recent gatherings of large workspaces for the analytics pages.
    analytics_cache: Arc<analytics::AnalyticsCache>,
    /// In-memory columns for whole-workspace segment evaluation (see `segment_index`).
    segment_index: Arc<segment_index::IndexRegistry>,
}

impl Ciclo {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, random: Arc<dyn Random>) -> Self {
        Ciclo {
            store,
            clock,
            random,
            ingest_writer: Arc::default(),
            evaluation: Arc::default(),
            analytics_cache: Arc::default(),
            segment_index: Arc::default(),
        }
    }

    /// A new id of type `T`, sortable by creation time.
    pub fn new_id<T>(&self, make: fn(u64, u128) -> T) -> T {
        let now = self.clock.now();
        make(now.timestamp_millis().max(0) as u64, self.random.u128())
    }
}
