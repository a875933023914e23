//! A fresh, throw-away database per test (from `ciclo-test-support`), with store helpers.

use ciclo_store::Store;
use ciclo_store_postgres::PostgresStore;
pub use ciclo_test_support::TestDatabase;

/// Store constructors for a test database.
pub trait TestDatabaseStores {
    /// A store over this database, not yet migrated.
    fn store(&self) -> PostgresStore;
    /// A store over this database, migrated.
    fn migrated_store(&self) -> PostgresStore;
}

impl TestDatabaseStores for TestDatabase {
    fn store(&self) -> PostgresStore {
        PostgresStore::connect_with_pool_size(self.url(), 4).expect("connect to the test database")
    }

    fn migrated_store(&self) -> PostgresStore {
        let store = self.store();
        store.migrate().expect("migrate the test database");
        store
    }
}

/// `let db = fresh_database!();` — or return early when PostgreSQL tests are skipped.
#[macro_export]
macro_rules! fresh_database {
    () => {
        match $crate::support::TestDatabase::create(module_path!()) {
            Some(db) => db,
            None => return,
        }
    };
}
