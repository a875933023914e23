//! Schema migrations: SQL files embedded in the binary, applied in order and recorded in
//! `schema_migrations`. Version numbers are shared with the PostgreSQL adapter (one version = one
//! logical change in both), so `ciclo migrate` means the same thing on either backend.

use crate::error::Db;
use ciclo_store::StoreResult;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// Every migration, oldest first: (version, name, SQL). Never edit one that has shipped; add a
/// new version instead.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "operator_mfa",
        include_str!("../migrations/0002_operator_mfa.sql"),
    ),
    (
        3,
        "segments_lifecycle",
        include_str!("../migrations/0003_segments_lifecycle.sql"),
    ),
];

/// Applies the migrations not yet recorded. Each runs in its own `BEGIN IMMEDIATE` transaction,
/// which takes the database's write lock first: a second process migrating at the same time
/// waits, then finds the version recorded and skips it.
pub(crate) fn apply(conn: &mut Connection) -> StoreResult<()> {
    for (version, name, sql) in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER NOT NULL PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
            )",
        )
        .db()?;
        let applied = tx
            .query_row(
                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                [version],
                |_| Ok(()),
            )
            .optional()
            .db()?
            .is_some();
        if applied {
            continue;
        }
        tx.execute_batch(sql).db()?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
            rusqlite::params![version, name],
        )
        .db()?;
        tx.commit().db()?;
    }
    // Lets the query planner refresh statistics it finds stale (cheap when nothing changed).
    conn.execute_batch("PRAGMA optimize").db()?;
    Ok(())
}
