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
    _dir: tempfile::TempDir,
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
    ciclo_store::Store::migrate(&store).unwrap();
    let clock = Arc::new(FixedClock::at(t("2026-06-01T12:00:00Z")));
    let app = Ciclo::new(Arc::new(store), clock.clone(), Arc::new(SystemRandom));
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
        _dir: dir,
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
