//! ciclo's SQLite adapter: [`SqliteStore`] implements the storage port ([`ciclo_store::Store`])
//! over one embedded database file. All SQL for SQLite lives in this crate.
//!
//! How the database is used, and why:
//! * **WAL mode, `synchronous=FULL`**: readers never block the writer nor the writer the
//!   readers, and a commit is fsynced before `write` returns, so an acknowledged write survives a
//!   power loss.
//! * **One writer connection behind a mutex**: SQLite has one writer at a time anyway; queueing
//!   on a mutex is cheaper than bouncing off `SQLITE_BUSY`. Transactions open with `BEGIN
//!   IMMEDIATE`, so the write lock is taken up front and a transaction never fails half-way to
//!   upgrade it (which could only happen against another process, such as `ciclo import` next
//!   to `ciclo serve`).
//! * **Group commit** (see `writer.rs`): writes that queue up while one runs share its
//!   transaction, each after the first in a savepoint, and one fsync'd COMMIT; each still
//!   returns only once its work is durable.
//! * **The writer remembers rows** (see `known.rs`): profiles and identities it read or wrote
//!   stay known from one transaction to the next (until another connection commits), so that
//!   ingestion reads them without a query and writes back only the columns that changed.
//! * **Checkpoints in the background** (see `checkpoint.rs`): a thread with its own connection
//!   copies the WAL into the database file while the writer goes on; the WAL is allowed to
//!   grow to 128 MiB so that pages changed by many transactions are copied once.
//! * **A small pool of reader connections**: each `read` is a deferred transaction on one of
//!   them, that is one consistent snapshot. Readers are `query_only`, so a write method called
//!   inside `read` fails instead of writing.
//! * **Retries**: `SQLITE_BUSY`/`SQLITE_LOCKED` become [`StoreError::Retry`]; `write` and `read`
//!   run the closure again a few times before giving up.
//!
//! Storage conventions (see `migrations/0001_init.sql`): timestamps are INTEGER unix
//! microseconds, so values round-trip at microsecond precision (like PostgreSQL's); money is
//! INTEGER minor units; lists and maps are JSON text. Events (and the derived search tables)
//! refer to their workspace and profile by the integer `seq` of those rows rather than by their
//! text ids, which keeps the hottest indexes small; ids stay the public API, mapped in here.
//!
//! Customer lists and search stay fast at a million profiles through derived tables and one
//! index per sort, and a choice between two plans made per query: see `customers.rs` and
//! `search.rs`. [`SqliteStore::explain_list_customers`] shows the plan a query gets.
//!
//! Codemap: `writer.rs` (write transactions, group commit), `known.rs` (the writer's rows from
//! one transaction to the next), `checkpoint.rs` (background checkpoints), `migrations.rs`,
//! `tx.rs` (the [`Tx`] methods, delegating to) `accounts.rs`, `mfa.rs`, `customers.rs`,
//! `identity.rs`, `events.rs`, `orders.rs`, `imports.rs`, `segments.rs`; `search.rs` (terms and folding),
//! `codec.rs` (column encodings), `error.rs` (SQLite errors to [`StoreError`]).

mod accounts;
mod checkpoint;
mod codec;
mod customers;
mod error;
mod events;
mod identity;
mod imports;
mod known;
mod mfa;
mod migrations;
mod orders;
mod search;
mod segments;
mod tx;
mod writer;

use ciclo_domain::ids::{CustomerId, WorkspaceId};
use ciclo_store::{CustomerQuery, Store, StoreError, StoreResult, TimelineQuery, Tx};
use error::Db;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// How long a connection waits on another process's lock before reporting `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times `write` and `read` run a closure that failed with [`StoreError::Retry`].
const MAX_ATTEMPTS: u32 = 5;
/// Reader connections kept open between reads; more are opened under load and closed after.
const IDLE_READERS: usize = 8;
/// Prepared statements cached per connection. List queries are assembled from their filters, so
/// there are a few hundred distinct statements at most.
const STATEMENT_CACHE: usize = 256;
/// The WAL file is truncated to this size when it starts over: a little more than the length at
/// which the writer checkpoints (`checkpoint.rs`), so that a busy WAL is not shrunk and regrown.
const WAL_SIZE_LIMIT: i64 = 160 * 1024 * 1024;
/// Page cache per connection, in KiB (negative `cache_size` means KiB in SQLite).
const WRITER_CACHE_KIB: i64 = 32 * 1024;
const READER_CACHE_KIB: i64 = 8 * 1024;
/// A checkpoint reads pages from the WAL and writes them to the database without the cache.
const CHECKPOINTER_CACHE_KIB: i64 = 1024;

/// A ciclo database in one SQLite file.
pub struct SqliteStore {
    path: String,
    /// The one connection that writes, with group commit. In memory mode it serves reads too,
    /// since a private in-memory database cannot be opened twice.
    writer: writer::Writer,
    /// Idle reader connections (empty and unused in memory mode).
    readers: Mutex<Vec<Connection>>,
    in_memory: bool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("in_memory", &self.in_memory)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the database at `path`.
    /// `":memory:"` (or an empty path) opens a private in-memory database, where reads and
    /// writes share one connection: for quick experiments, not for serving.
    ///
    /// Opening does not change the schema; call [`Store::migrate`].
    pub fn open(path: &str) -> StoreResult<SqliteStore> {
        let in_memory = path.is_empty() || path == ":memory:";
        let writer = if in_memory {
            Connection::open_in_memory().db()?
        } else {
            if let Some(parent) = Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Backend(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
            }
            Connection::open(path).db()?
        };
        configure(&writer, WRITER_CACHE_KIB)?;
        if !in_memory {
            // WAL is a property of the file: set once here, readers then find it.
            let mode: String = writer
                .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                .db()?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Backend(format!(
                    "could not switch {path} to WAL mode (got {mode})"
                )));
            }
            // Checkpoints mostly in the background rather than in the committing connection
            // (see checkpoint.rs); this hook replaces SQLite's automatic checkpoints.
            checkpoint::watch_wal(&writer);
            // Keep the WAL file from staying large after a burst of writes.
            writer
                .pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
                .db()?;
        }
        let checkpointer = if in_memory {
            None
        } else {
            let conn = Connection::open(path).db()?;
            configure(&conn, CHECKPOINTER_CACHE_KIB)?;
            Some(checkpoint::Checkpointer::start(conn)?)
        };
        Ok(SqliteStore {
            path: path.to_string(),
            // Grouping needs reads on other connections, which an in-memory database lacks.
            writer: writer::Writer::new(writer, !in_memory, checkpointer),
            readers: Mutex::new(Vec::new()),
            in_memory,
        })
    }

    /// The path this store was opened with.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn take_reader(&self) -> StoreResult<Connection> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = Connection::open(&self.path).db()?;
                configure(&conn, READER_CACHE_KIB)?;
                conn.pragma_update(None, "query_only", true).db()?;
                Ok(conn)
            }
        }
    }

    /// Diagnostics: SQLite's plan (the detail lines of `EXPLAIN QUERY PLAN`) for the statement
    /// [`Tx::list_customers`] would run for `query` now; it counts matches first, like the real
    /// call, since the plan depends on them. Empty when the call would not query at all.
    pub fn explain_list_customers(
        &self,
        workspace: &WorkspaceId,
        query: &CustomerQuery,
    ) -> StoreResult<Vec<String>> {
        self.with_reader(
            |conn| match customers::list_customers_sql(conn, workspace, query)? {
                Some(sql) => explain(conn, &sql.text, &sql.params),
                None => Ok(Vec::new()),
            },
        )
    }

    /// Diagnostics: SQLite's plan for the statement [`Tx::timeline`] would run.
    pub fn explain_timeline(
        &self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
        query: &TimelineQuery,
    ) -> StoreResult<Vec<String>> {
        self.with_reader(|conn| {
            let mut known = known::Known::for_reads();
            let ws_seq = customers::known_workspace_seq(conn, &mut known, workspace)?.unwrap_or(0);
            let ids: Vec<&CustomerId> = customers.iter().collect();
            let seqs = customers::customer_seqs(conn, &mut known, workspace, &ids)?;
            // Profiles that do not exist get a seq none has, so that the plan is the one a
            // timeline over that many profiles gets.
            let wanted: Vec<i64> = customers
                .iter()
                .enumerate()
                .map(|(i, id)| seqs.get(id).copied().unwrap_or(-1 - i as i64))
                .collect();
            match events::timeline_sql(ws_seq, &wanted, query) {
                Some((text, params)) => explain(conn, &text, &params),
                None => Ok(Vec::new()),
            }
        })
    }

    /// Runs `work` on a reader connection (the writer in memory mode), outside any transaction.
    fn with_reader<T>(&self, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        if self.in_memory {
            return work(&self.writer.exclusive());
        }
        let conn = self.take_reader()?;
        let result = work(&conn);
        self.return_reader(conn);
        result
    }

    fn return_reader(&self, conn: Connection) {
        let mut idle = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < IDLE_READERS && conn.is_autocommit() {
            idle.push(conn);
        }
    }
}

/// The detail lines of `EXPLAIN QUERY PLAN` for a statement and its parameters.
fn explain(
    conn: &Connection,
    text: &str,
    params: &[Box<dyn rusqlite::types::ToSql>],
) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {text}")).db()?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |row| {
            row.get::<_, String>(3)
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

/// Per-connection settings (the ones that are not stored in the file).
fn configure(conn: &Connection, cache_kib: i64) -> StoreResult<()> {
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // FULL: the WAL is fsynced at every commit, so an acknowledged write is durable.
    conn.pragma_update(None, "synchronous", "FULL").db()?;
    conn.pragma_update(None, "foreign_keys", true).db()?;
    conn.pragma_update(None, "temp_store", "MEMORY").db()?;
    conn.pragma_update(None, "cache_size", -cache_kib).db()?;
    Ok(())
}

/// Waits a little longer after each lost race, so competing processes drift apart.
pub(crate) fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(5 << attempt.min(6)));
}

/// Runs `work` in one deferred transaction on `conn` (one consistent snapshot) and rolls it back;
/// reruns it on [`StoreError::Retry`].
fn run_read(
    conn: &mut Connection,
    work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>,
) -> StoreResult<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = (|| {
            let transaction = conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .db()?;
            let result = work(&mut tx::SqliteTx::for_reads(&transaction));
            // Nothing to commit; a rollback failure matters less than the closure's own error.
            let rolled_back = transaction.rollback().db();
            result.and(rolled_back)
        })();
        match outcome {
            Err(StoreError::Retry(_)) if attempt < MAX_ATTEMPTS => backoff(attempt),
            other => return other,
        }
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.writer.exclusive();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match migrations::apply(&mut conn) {
                Err(StoreError::Retry(_)) if attempt < MAX_ATTEMPTS => backoff(attempt),
                other => return other,
            }
        }
    }

    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
        self.writer.write(work, MAX_ATTEMPTS)
    }

    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
        if self.in_memory {
            return run_read(&mut self.writer.exclusive(), work);
        }
        let mut conn = self.take_reader()?;
        let result = run_read(&mut conn, work);
        self.return_reader(conn);
        result
    }
}
