//! Embedded migrations, applied in order and recorded in `schema_migrations(version)`.
//!
//! The version numbers are shared with the SQLite adapter: version N means the same schema
//! shape on both backends, so `ciclo migrate` reports one number whatever the database.

use crate::error::from_pg;
use ciclo_store::StoreResult;
use postgres::Client;

/// `(version, SQL)`, oldest first. A migration is never edited once released: add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_operator_mfa.sql")),
    (3, include_str!("../migrations/0003_segments_lifecycle.sql")),
];

/// The schema version this build brings a database to.
pub const LATEST_VERSION: i64 = 3;

/// Key of the advisory lock that serialises migrations across processes ("ciclomig" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6369_636c_6f6d_6967;

/// Applies every migration not yet recorded, all in one transaction: PostgreSQL's DDL is
/// transactional, so a failed migration leaves the database as it was. Concurrent callers wait
/// on the advisory lock, then find the work done.
pub(crate) fn run(client: &mut Client) -> StoreResult<()> {
    let mut tx = client.transaction().map_err(from_pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .map_err(from_pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version bigint PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(from_pg)?;
    let applied: Vec<i64> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .map_err(from_pg)?
        .iter()
        .map(|row| row.try_get::<_, i64>(0))
        .collect::<Result<_, _>>()
        .map_err(from_pg)?;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tracing::info!(version, "applying PostgreSQL migration");
        tx.batch_execute(sql).map_err(from_pg)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .map_err(from_pg)?;
    }
    if let Some(newest) = applied.iter().max().filter(|v| **v > LATEST_VERSION) {
        // A newer ciclo migrated this database (a rolling upgrade, or a downgrade). Refusing to
        // start would break the rolling upgrade; migrations only add, so carry on and say so.
        tracing::warn!(
            database = newest,
            binary = LATEST_VERSION,
            "the database schema is newer than this ciclo"
        );
    }
    tx.commit().map_err(from_pg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_and_the_latest_is_declared() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(versions.last().copied(), Some(LATEST_VERSION));
    }
}
