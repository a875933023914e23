//! ciclo's PostgreSQL storage adapter: [`ciclo_store::Store`] and [`ciclo_store::Tx`] over the
//! synchronous `postgres` client and an r2d2 pool, with the schema in embedded migrations
//! (`migrations/NNNN_*.sql`, the same version numbers as the SQLite adapter).
//!
//! Several ciclo processes may share one database: migrations serialise on an advisory lock,
//! writes run at READ COMMITTED and are retried when PostgreSQL reports a serialization failure
//! or a deadlock, and reads run in one REPEATABLE READ snapshot.
//!
//! Every call blocks. The sync client drives its own small Tokio runtime, so calls must come
//! from a plain or a blocking thread (`tokio::task::spawn_blocking`), never from an async task.

mod accounts;
mod customers;
mod error;
mod events;
mod identity;
mod imports;
mod mfa;
mod migrate;
mod orders;
mod pool;
mod profile;
mod rows;
mod search;
mod segments;
mod tx;

use ciclo_store::{Store, StoreError, StoreResult, Tx};
use postgres::IsolationLevel;
use std::time::Duration;

pub use migrate::LATEST_VERSION;

/// Connections per process when the caller does not say: the machines ciclo targets have few
/// cores, and PostgreSQL itself prefers few busy connections to many idle ones.
pub const DEFAULT_POOL_SIZE: u32 = 8;

/// How many times `write`/`read` run the closure before giving up on a transient failure.
const MAX_ATTEMPTS: u32 = 5;

/// How long to wait for a free connection (or for a new one to be established).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// Run at the start of each write transaction: its statements are planned for the parameters
/// of each execution, never with a generic plan cached on the connection.
///
/// PostgreSQL switches a prepared statement to a generic plan after five executions, chosen
/// from the statistics of that moment, and keeps it until an ANALYZE invalidates it. While the
/// tables have none (a new database, autovacuum behind or off), the planner takes them for
/// nearly empty, and on an empty table every index costs the same: a cached plan that found
/// message ids through `events_timeline` (every event of the workspace, per id) instead of the
/// primary key went on being used as ingestion filled the table, until one ingestion
/// transaction took minutes. Write transactions are where tables grow, and ingestion's
/// statements carry hundreds of keys each, so planning them costs little (tens of microseconds)
/// and lets the plan see how many keys there are. Reads keep PostgreSQL's plan cache: a profile
/// page runs many small statements, where planning each time would add up.
const WRITE_SETUP: &str = "SET LOCAL plan_cache_mode = force_custom_plan";

/// A pool of connections to one PostgreSQL database.
pub struct PostgresStore {
    /// Always `Some` until the store is dropped (see the `Drop` impl for why it is optional).
    pool: Option<r2d2::Pool<pool::Manager>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: show only the pool's shape.
        let state = self
            .pool
            .as_ref()
            .map(|p| (p.max_size(), p.state().connections));
        f.debug_struct("PostgresStore")
            .field("pool_size_and_open", &state)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`, libpq style) with
    /// [`DEFAULT_POOL_SIZE`] connections. Fails when no connection can be made.
    pub fn connect(url: &str) -> StoreResult<PostgresStore> {
        PostgresStore::connect_with_pool_size(url, DEFAULT_POOL_SIZE)
    }

    /// Like [`PostgresStore::connect`], with at most `pool_size` connections (at least one).
    pub fn connect_with_pool_size(url: &str, pool_size: u32) -> StoreResult<PostgresStore> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_application_name().is_none() {
            // Shows up in pg_stat_activity, which is where an operator looks first.
            config.application_name("ciclo");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // One direct attempt first: a wrong URL, password or database then fails at once with
        // PostgreSQL's own message, instead of after r2d2's connection timeout. It runs on a
        // thread of its own because the sync client must not block inside an async runtime.
        let probe_config = config.clone();
        std::thread::spawn(move || probe_config.connect(postgres::NoTls).map(drop))
            .join()
            .map_err(|_| StoreError::Backend("the PostgreSQL connection probe panicked".into()))?
            .map_err(|e| {
                StoreError::Backend(format!(
                    "cannot connect to PostgreSQL: {}",
                    error::describe(&e)
                ))
            })?;
        let manager = pool::Manager::new(config);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            // One connection is opened now, so a wrong URL or a down server fails here rather
            // than on the first request; the rest are opened on demand.
            .min_idle(Some(1))
            .connection_timeout(CONNECTION_TIMEOUT)
            .build(manager)
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        Ok(PostgresStore { pool: Some(pool) })
    }

    fn connection(&self) -> StoreResult<r2d2::PooledConnection<pool::Manager>> {
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))?;
        pool.get()
            .map_err(|e| StoreError::Backend(format!("no PostgreSQL connection available: {e}")))
    }

    /// Runs `work` in one transaction, again from the start on [`StoreError::Retry`].
    fn run(
        &self,
        mode: Mode,
        work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut attempt = 1;
        loop {
            match self.run_once(mode, work) {
                Err(StoreError::Retry(reason)) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, %reason, "PostgreSQL transaction lost a race; running it again");
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn run_once(
        &self,
        mode: Mode,
        work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut connection = self.connection()?;
        let pool::PooledClient { client, statements } = &mut *connection;
        let builder = client.build_transaction();
        let builder = match mode {
            // Row locks and unique indexes give the write paths what they need; stricter levels
            // would only turn contention into more retries.
            Mode::Write => builder.isolation_level(IsolationLevel::ReadCommitted),
            // One snapshot for the whole read, as the trait promises; a read-only repeatable
            // read transaction never fails with a serialization error.
            Mode::Read => builder
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true),
        };
        let mut transaction = builder.start().map_err(error::from_pg)?;
        if let Mode::Write = mode {
            transaction
                .batch_execute(WRITE_SETUP)
                .map_err(error::from_pg)?;
        }
        let mut tx = tx::PgTx::new(transaction, statements);
        if let Mode::Write = mode {
            tx.track_customer_rows();
        }
        let outcome = work(&mut tx);
        let (transaction, profile) = tx.into_inner();
        match outcome {
            Ok(()) => {
                let started = std::time::Instant::now();
                let committed = transaction.commit().map_err(error::from_pg);
                if let Some(profile) = profile {
                    profile.report(Some(started.elapsed()));
                }
                committed
            }
            Err(e) => {
                if let Some(profile) = profile {
                    profile.report(None);
                }
                if let Err(rollback) = transaction.rollback() {
                    // The connection is probably gone; r2d2 drops it when it is returned.
                    tracing::warn!(error = %error::describe(&rollback), "rollback failed");
                }
                Err(e)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Write,
    Read,
}

/// Exponential backoff with jitter (1–2 ms, 2–4 ms, 4–8 ms, …), so that two transactions that
/// deadlocked do not collide again in lockstep.
fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let base_micros = 1_000u64 << attempt.saturating_sub(1).min(6);
    // RandomState is seeded randomly per instance: enough jitter without an RNG dependency.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros(base_micros + random % base_micros)
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut connection = self.connection()?;
        let result = migrate::run(&mut connection.client);
        // Migrations change the schema under any statement this connection prepared before.
        connection.statements.clear();
        result
    }

    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
        self.run(Mode::Write, work)
    }

    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
        self.run(Mode::Read, work)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing a sync postgres client blocks on its runtime, which panics when the store is
        // dropped inside an async task (the last `Arc` of an app state often is). Closing the
        // connections on a thread of our own is safe from any context.
        if let Some(pool) = self.pool.take() {
            let closer = std::thread::Builder::new()
                .name("ciclo-pg-close".into())
                .spawn(move || drop(pool));
            match closer {
                Ok(handle) => {
                    let _ = handle.join();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not start a thread to close PostgreSQL connections")
                }
            }
        }
    }
}
