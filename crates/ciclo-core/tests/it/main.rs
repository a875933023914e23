//! Use-case tests of ciclo-core over a real SQLite store, with a fixed clock.

mod analytics;
mod identity;
mod import;
mod ingest;
mod mfa;
mod segments;

use ciclo_core::accounts::{Actor, NewWorkspace};
use ciclo_core::ports::FixedClock;
use ciclo_core::{Ciclo, SystemRandom};
use ciclo_domain::operator::Role;
use serde_json::Value;
use std::sync::Arc;

pub struct Harness {
    pub app: Ciclo,
    pub actor: Actor,
    pub clock: Arc<FixedClock>,
    /// The temporary directory or database behind the store, removed when dropped.
    _storage: Box<dyn std::any::Any>,
}

pub fn t(s: &str) -> ciclo_domain::Timestamp {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

pub fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ciclo.db");
    let store = ciclo_store_sqlite::SqliteStore::open(path.to_str().unwrap()).unwrap();
    harness_on(Arc::new(store), Box::new(dir))
}

/// The same harness on a fresh PostgreSQL database; `None` (the test says it is skipped) when
/// no server is configured.
pub fn postgres_harness(test: &str) -> Option<Harness> {
    let db = ciclo_test_support::TestDatabase::create(test)?;
    let store = ciclo_store_postgres::PostgresStore::connect(db.url()).unwrap();
    Some(harness_on(Arc::new(store), Box::new(db)))
}

fn harness_on(store: Arc<dyn ciclo_store::Store>, storage: Box<dyn std::any::Any>) -> Harness {
    store.migrate().unwrap();
    let clock = Arc::new(FixedClock::at(t("2026-06-01T12:00:00Z")));
    let app = Ciclo::new(store, clock.clone(), Arc::new(SystemRandom));
    let boot = app
        .bootstrap(
            NewWorkspace::default(),
            "owner@loja.com.br",
            Some("correct horse battery"),
        )
        .unwrap()
        .unwrap();
    let actor = Actor {
        workspace: boot.workspace,
        role: Role::Owner,
        operator_id: None,
        api_key_id: None,
    };
    Harness {
        app,
        actor,
        clock,
        _storage: storage,
    }
}

impl Harness {
    pub fn ingest(&self, messages: Vec<Value>) -> ciclo_core::ingest::IngestReport {
        let now = ciclo_core::Clock::now(&*self.clock);
        self.app
            .ingest(
                &self.actor.workspace,
                &messages,
                None,
                now,
                ciclo_core::ingest::IngestSource("api"),
            )
            .unwrap()
    }
}
