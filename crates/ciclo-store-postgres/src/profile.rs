//! Optional statement timings, to find where transactions spend their time (ingestion's group
//! commits above all): with `CICLO_PG_PROFILE=1`, each transaction of three statements or more
//! prints one line to stderr with its total time, the time spent outside statements (the
//! caller's own work, decoding rows), the commit, and per statement (named by the start of its
//! SQL) the calls, the rows returned or changed and the time until the answer, parameter
//! encoding included. Some operations add counts of their own (`PgTx::note`). Off by default,
//! and then nothing is measured.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("CICLO_PG_PROFILE").is_some_and(|v| v != "0"))
}

#[derive(Debug)]
pub(crate) struct Profile {
    started: Instant,
    in_statements: Duration,
    calls: u64,
    by_statement: BTreeMap<String, (u64, u64, Duration)>,
}

impl Profile {
    pub(crate) fn start() -> Option<Profile> {
        enabled().then(|| Profile {
            started: Instant::now(),
            in_statements: Duration::ZERO,
            calls: 0,
            by_statement: BTreeMap::new(),
        })
    }

    pub(crate) fn record(&mut self, sql: &str, took: Duration, rows: u64) {
        let name: String = sql
            .split_whitespace()
            .take(8)
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(56)
            .collect();
        let entry = self
            .by_statement
            .entry(name)
            .or_insert((0, 0, Duration::ZERO));
        entry.0 += 1;
        entry.1 += rows;
        entry.2 += took;
        self.in_statements += took;
        self.calls += 1;
    }

    /// Prints the summary; `commit` is how long COMMIT took (None for a rollback).
    pub(crate) fn report(self, commit: Option<Duration>) {
        if self.calls < 3 {
            return;
        }
        let total = self.started.elapsed();
        let mut line = format!(
            "pgprof total={:.1}ms stmts={} in_stmts={:.1}ms client={:.1}ms commit={}",
            ms(total),
            self.calls,
            ms(self.in_statements),
            ms(total.saturating_sub(self.in_statements + commit.unwrap_or_default())),
            commit.map_or("rollback".to_string(), |c| format!("{:.1}ms", ms(c)))
        );
        let mut entries: Vec<_> = self.by_statement.into_iter().collect();
        entries.sort_by_key(|(_, (_, _, took))| std::cmp::Reverse(*took));
        for (name, (calls, rows, took)) in entries {
            line += &format!(" | {name} x{calls} r{rows} {:.1}ms", ms(took));
        }
        eprintln!("{line}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
