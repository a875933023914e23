//! Helpers shared by ciclo's tests. [`TestDatabase`] is a fresh, throw-away PostgreSQL
//! database per test, on the server named by `CICLO_TEST_POSTGRES_URL` (tests that need one
//! are skipped, saying so, when it is unset; CI always sets it).

use postgres::{Client, NoTls};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

pub const URL_VARIABLE: &str = "CICLO_TEST_POSTGRES_URL";

/// A database created for one test, dropped (with its connections) when this is dropped.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database, or says the test is skipped and returns `None` when no server
    /// is configured.
    pub fn create(test: &str) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(URL_VARIABLE) else {
            println!("skipped {test}: {URL_VARIABLE} is not set");
            return None;
        };
        let name = unique_name();
        let mut admin = Client::connect(&admin_url, NoTls).expect("connect to the test server");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        let url = with_database(&admin_url, &name);
        Some(TestDatabase {
            admin_url,
            name,
            url,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A plain client on this database, for looking behind the adapter's back.
    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // WITH (FORCE) ends connections a failed test may have left open.
        match Client::connect(&self.admin_url, NoTls) {
            Ok(mut admin) => {
                if let Err(e) = admin.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                )) {
                    eprintln!("could not drop test database {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("could not drop test database {}: {e}", self.name),
        }
    }
}

/// `ciclo_test_<pid>_<counter>_<random>`: unique across the tests of this run and across runs
/// that share the server.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!(
        "ciclo_test_{}_{}_{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        random
    )
}

/// The URL with its database replaced (`postgres://u@h:5432/test?x=y` → `…/name?x=y`).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let head = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(query) => format!("{head}/{database}?{query}"),
        None => format!("{head}/{database}"),
    }
}

/// `let db = fresh_database!();` — or return early when PostgreSQL tests are skipped.
#[macro_export]
macro_rules! fresh_database {
    () => {
        match $crate::TestDatabase::create(module_path!()) {
            Some(db) => db,
            None => return,
        }
    };
}

#[cfg(test)]
#[test]
fn urls_get_their_database_replaced() {
    assert_eq!(
        with_database("postgres://u@h:5432/test", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/test?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgresql://u:p@h", "x"),
        "postgresql://u:p@h/x"
    );
}
