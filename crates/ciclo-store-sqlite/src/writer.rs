//! The writer connection, and group commit: writes that arrive while another is running share
//! its transaction and its one fsync'd COMMIT.
//!
//! Why: with `synchronous=FULL` every commit waits for the disk, and under concurrent ingestion
//! (many HTTP batches at once) that wait, not the inserts, bounds throughput. So a write whose
//! closure succeeded while other writes are queued does not commit: it leaves the transaction
//! open, releases the connection and waits; the next write runs its closure in the same
//! transaction, and the last one of the group (nobody queued, or the group is full or old enough)
//! commits for all and wakes them. Each write still returns only once its work is committed, so
//! acknowledged still means durable.
//!
//! Each closure but the group's first runs inside its own SAVEPOINT, so a failing closure undoes
//! only its own writes and the group goes on (the first needs none: when it fails, the group has
//! no other member and the whole transaction is rolled back, which spares SQLite journalling
//! every page it changes; ingestion, one write at a time, is always first). When the group's
//! COMMIT fails (a deferred foreign key broken by one of its members, a full disk), every member
//! gets [`StoreError::Retry`] and runs again alone, so the one at fault gets the real error and
//! the others commit. A closure that panics rolls the whole group back (its members retry) and
//! the panic goes on to its caller.
//!
//! Writes in a group behave as if run one after the other: a closure sees the writes of the
//! members before it, which commit together with its own or not at all.
//!
//! The writer also keeps the rows it read and wrote from one transaction to the next (`known.rs`):
//! what each member learnt is merged into that cache when the group commits and dropped when it
//! does not. And it decides when to checkpoint (`checkpoint.rs`), from the WAL length each
//! COMMIT reports.

use crate::checkpoint::{self, Checkpointer};
use crate::error::Db;
use crate::known::{Known, Layer, RowCache};
use crate::tx::SqliteTx;
use ciclo_store::{StoreError, StoreResult, Tx};
use rusqlite::Connection;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A group commits once it has this many members…
const MAX_GROUP_MEMBERS: usize = 32;
/// …or once it has been open this long, so that its first member does not wait for ever.
const MAX_GROUP_AGE: Duration = Duration::from_millis(25);

pub(crate) struct Writer {
    slot: Mutex<Slot>,
    /// Writes waiting for the connection: while there are some, a finished closure leaves the
    /// group open for them.
    queued: AtomicUsize,
    outcomes: Mutex<Outcomes>,
    group_finished: Condvar,
    /// Off for in-memory databases, whose one connection also serves reads.
    grouping: bool,
    checkpointer: Option<Checkpointer>,
}

struct Slot {
    conn: Connection,
    /// The open transaction, while members wait for it to commit.
    group: Option<Group>,
    next_group: u64,
    /// The WAL reached its limit: checkpoint before the next transaction (see `checkpoint.rs`).
    checkpoint_due: bool,
    /// Rows as committed (see `known.rs`).
    cache: RowCache,
    /// What the members of the open group learnt, in order, for `cache` once it commits.
    pending: Vec<Layer>,
}

struct Group {
    id: u64,
    /// Closures that succeeded in it (and wait, or will return, with its outcome).
    members: usize,
    opened: Instant,
}

/// The outcome of finished groups: every group up to `finished_through` is done, and those in
/// `failures` failed, with the message and the number of members yet to read it.
struct Outcomes {
    finished_through: u64,
    failures: HashMap<u64, (String, usize)>,
}

/// The connection, held with no write transaction open.
pub(crate) struct Exclusive<'a>(MutexGuard<'a, Slot>);

impl Deref for Exclusive<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

impl DerefMut for Exclusive<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0.conn
    }
}

impl Writer {
    /// `checkpointer`: checkpoints in the background (none for an in-memory database).
    pub(crate) fn new(
        conn: Connection,
        grouping: bool,
        checkpointer: Option<Checkpointer>,
    ) -> Writer {
        Writer {
            slot: Mutex::new(Slot {
                conn,
                group: None,
                next_group: 1,
                checkpoint_due: false,
                cache: RowCache::default(),
                pending: Vec::new(),
            }),
            checkpointer,
            queued: AtomicUsize::new(0),
            outcomes: Mutex::new(Outcomes {
                finished_through: 0,
                failures: HashMap::new(),
            }),
            group_finished: Condvar::new(),
            grouping,
        }
    }

    /// The connection for work outside `write` (migrations, reads of an in-memory database):
    /// an open group is committed first.
    pub(crate) fn exclusive(&self) -> Exclusive<'_> {
        let mut slot = self.lock_slot();
        // A failure is the group members' to retry, not this caller's.
        let _ = self.close_group(&mut slot, false);
        // The caller may change anything (migrations).
        slot.cache.clear();
        Exclusive(slot)
    }

    /// Runs `work` in a write transaction (possibly shared, see the module doc) and returns once
    /// its writes are committed or rolled back; reruns it on [`StoreError::Retry`].
    pub(crate) fn write(
        &self,
        work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>,
        max_attempts: u32,
    ) -> StoreResult<()> {
        let mut alone = !self.grouping;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.write_once(work, alone) {
                Err(StoreError::Retry(_)) if attempt < max_attempts => {
                    // Alone from now on: if a group failed because of this closure, it now gets
                    // the real error.
                    alone = true;
                    crate::backoff(attempt);
                }
                other => return other,
            }
        }
    }

    fn write_once(
        &self,
        work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>,
        alone: bool,
    ) -> StoreResult<()> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut slot = self.lock_slot();
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if alone {
            // A failure is the group members' to retry, not this write's.
            let _ = self.close_group(&mut slot, false);
        }
        // The first write of a group needs no savepoint: if it fails, the group has no other
        // member, and rolling the whole transaction back undoes exactly its writes. That is the
        // common case (ingestion runs one write at a time), and it spares SQLite copying every
        // page the write changes into the savepoint's journal.
        let first = slot.group.is_none();
        if first {
            if slot.checkpoint_due {
                slot.checkpoint_due = false;
                if let Some(checkpointer) = &self.checkpointer {
                    // A failure leaves the WAL longer; the next commit asks again.
                    let _ = checkpointer.catch_up(&slot.conn);
                }
            }
            slot.conn.execute_batch("BEGIN IMMEDIATE").db()?;
            // Holding the write lock from here on, see whether another connection committed
            // since the cache was last current.
            let data_version = slot
                .conn
                .prepare_cached("PRAGMA data_version")
                .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
                .db();
            match data_version {
                Ok(version) => slot.cache.check_data_version(version),
                Err(e) => {
                    let _ = slot.conn.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
            let id = slot.next_group;
            slot.next_group += 1;
            slot.group = Some(Group {
                id,
                members: 0,
                opened: Instant::now(),
            });
        } else if let Err(e) = slot.conn.execute_batch("SAVEPOINT member").db() {
            self.abandon_group(&mut slot, &e.to_string());
            return Err(e);
        }
        let (ran, learnt) = {
            let Slot { conn, cache, .. } = &mut *slot;
            // Later members of a group do not read the cache: it lacks the earlier members'
            // writes, which are not committed yet.
            let known = Known::for_writes(first.then_some(cache));
            let mut tx = SqliteTx::for_writes(conn, known);
            let ran = catch_unwind(AssertUnwindSafe(|| work(&mut tx)));
            (ran, tx.into_layer())
        };
        let result = match ran {
            Ok(result) => result,
            Err(panic) => {
                self.abandon_group(&mut slot, "another write of the same group panicked");
                drop(slot);
                resume_unwind(panic);
            }
        };
        let settled = match &result {
            // Without a savepoint, a failure rolls the group back below (it has no members).
            _ if first => Ok(()),
            Ok(()) => slot.conn.execute_batch("RELEASE member"),
            // Undo this closure's writes only; the group goes on.
            Err(_) => slot
                .conn
                .execute_batch("ROLLBACK TO member; RELEASE member"),
        };
        if let Err(e) = settled.db() {
            // SQLite rolled the whole transaction back (some I/O errors do): the group is lost.
            self.abandon_group(&mut slot, &e.to_string());
            return Err(result.err().unwrap_or(e));
        }
        if result.is_ok() {
            slot.pending.push(learnt);
        }
        let Some(group) = slot.group.as_mut() else {
            slot.pending.clear();
            return Err(StoreError::Backend("write transaction vanished".into()));
        };
        if result.is_ok() {
            group.members += 1;
        }
        let hold = result.is_ok()
            && !alone
            && self.queued.load(Ordering::SeqCst) > 0
            && group.members < MAX_GROUP_MEMBERS
            && group.opened.elapsed() < MAX_GROUP_AGE;
        if hold {
            let id = group.id;
            drop(slot);
            return self.wait_for(id);
        }
        let members = group.members;
        let committed = self.close_group(&mut slot, result.is_ok());
        drop(slot);
        match (result, committed) {
            (Err(e), _) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
            // Others' work was in the group too: run again alone to learn whose fault it was.
            (Ok(()), Err(e)) if members > 1 => {
                Err(StoreError::Retry(format!("the group commit failed: {e}")))
            }
            (Ok(()), Err(e)) => Err(e),
        }
    }

    /// The slot, repaired if a thread panicked while holding it (which `write_once` already
    /// handles; this is the backstop).
    fn lock_slot(&self) -> MutexGuard<'_, Slot> {
        match self.slot.lock() {
            Ok(slot) => slot,
            Err(poisoned) => {
                let mut slot = poisoned.into_inner();
                self.abandon_group(&mut slot, "a write panicked");
                slot
            }
        }
    }

    /// Commits the open group, if any (rolls it back if no closure in it succeeded), and tells
    /// its waiting members; `closer_is_member` when the calling write is one of them (and so
    /// learns the outcome from the return value rather than by waiting).
    fn close_group(&self, slot: &mut Slot, closer_is_member: bool) -> StoreResult<()> {
        let Some(group) = slot.group.take() else {
            return Ok(());
        };
        let outcome = if group.members > 0 {
            checkpoint::take_wal_frames();
            let committed = slot.conn.execute_batch("COMMIT").db();
            if committed.is_ok() {
                for layer in std::mem::take(&mut slot.pending) {
                    slot.cache.merge(layer);
                }
            }
            if let (Ok(()), Some(frames)) = (&committed, checkpoint::take_wal_frames()) {
                if frames >= checkpoint::WAL_LIMIT_PAGES {
                    slot.checkpoint_due = true;
                } else if let Some(checkpointer) = &self.checkpointer {
                    checkpointer.committed(frames);
                }
            }
            committed
        } else {
            slot.conn.execute_batch("ROLLBACK").db()
        };
        if outcome.is_err() && !slot.conn.is_autocommit() {
            let _ = slot.conn.execute_batch("ROLLBACK");
        }
        slot.pending.clear();
        let waiting = group.members - usize::from(closer_is_member);
        self.publish(
            group.id,
            outcome.as_ref().err().map(|e| (e.to_string(), waiting)),
        );
        outcome
    }

    /// Rolls the open group back after a failure that leaves its state unknown.
    fn abandon_group(&self, slot: &mut Slot, reason: &str) {
        if !slot.conn.is_autocommit() {
            let _ = slot.conn.execute_batch("ROLLBACK");
        }
        slot.pending.clear();
        if let Some(group) = slot.group.take() {
            // The calling write is not among the members: its closure did not succeed.
            self.publish(group.id, Some((reason.to_string(), group.members)));
        }
    }

    /// Records that `group` finished, failed with a message for its waiting members if
    /// `failure` says so, and wakes them.
    fn publish(&self, group: u64, failure: Option<(String, usize)>) {
        let mut outcomes = self
            .outcomes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        outcomes.finished_through = outcomes.finished_through.max(group);
        if let Some((message, waiting)) = failure {
            if waiting > 0 {
                outcomes.failures.insert(group, (message, waiting));
            }
        }
        self.group_finished.notify_all();
    }

    /// Waits until group `id` is committed (`Ok`) or failed (`Retry`: run the closure again).
    fn wait_for(&self, id: u64) -> StoreResult<()> {
        let mut outcomes = self
            .outcomes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while outcomes.finished_through < id {
            outcomes = self
                .group_finished
                .wait(outcomes)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let Some((message, waiting)) = outcomes.failures.get_mut(&id) else {
            return Ok(());
        };
        let error = StoreError::Retry(format!("the group commit failed: {message}"));
        *waiting -= 1;
        if *waiting == 0 {
            outcomes.failures.remove(&id);
        }
        Err(error)
    }
}
