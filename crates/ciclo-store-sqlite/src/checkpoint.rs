//! Checkpoints (copying committed pages from the WAL back into the database file) mostly off the
//! writer's path.
//!
//! SQLite checkpoints by itself in the connection that commits, once the WAL holds
//! `wal_autocheckpoint` pages: under ingestion that stalls the one writer for the copy and an
//! fsync of the database file every few transactions. Instead, the writer connection reports the
//! WAL's length after each commit ([`take_wal_frames`], through SQLite's WAL hook, which also
//! turns its automatic checkpoints off), and:
//!
//! * every [`NUDGE_PAGES`] new pages, it wakes a [`Checkpointer`] thread, which runs a PASSIVE
//!   checkpoint on its own connection: it copies what is committed while the writer goes on;
//! * once the WAL holds [`WAL_LIMIT_PAGES`], the writer checkpoints itself between two
//!   transactions, which copies only what the background thread has not copied yet. A WAL can
//!   only start over from its beginning when a checkpoint has caught up with it before a write
//!   transaction begins, which a background checkpoint racing a busy writer seldom does; this
//!   keeps the WAL file bounded.
//!
//! Durability does not depend on checkpoints: a commit is durable once its WAL frames are fsynced
//! (`synchronous=FULL`).

use crate::error::Db;
use ciclo_store::{StoreError, StoreResult};
use rusqlite::Connection;
use std::cell::Cell;
use std::os::raw::c_int;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The writer checkpoints itself once the WAL is this long (4 KiB pages: 128 MiB). A long WAL
/// lets a page that many transactions changed (ingestion dirties index pages at random) be copied
/// once: measured on `ciclo bench ingest`, 64 MiB wrote 15% more to disk, 256 MiB 10% less, at
/// the same throughput.
pub(crate) const WAL_LIMIT_PAGES: i32 = 32_768;
/// The background thread is woken each time this many pages were added to the WAL: often
/// enough that little is left for the writer to copy, seldom enough that a page changed by
/// consecutive transactions is copied once.
pub(crate) const NUDGE_PAGES: i32 = 8_192;

thread_local! {
    /// The WAL length SQLite reported at the last commit made on this thread.
    static WAL_FRAMES: Cell<Option<c_int>> = const { Cell::new(None) };
}

/// The WAL hook of the writer connection: notes the WAL's length for the code that committed
/// (the hook runs inside COMMIT, on its thread).
fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(Some(frames)));
    Ok(())
}

/// Installs the hook on the writer connection (which also disables SQLite's automatic
/// checkpoints on it).
pub(crate) fn watch_wal(conn: &Connection) {
    conn.wal_hook(Some(note_wal_frames));
}

/// The WAL length reported by the last commit on this thread, if any since the last call.
pub(crate) fn take_wal_frames() -> Option<i32> {
    WAL_FRAMES.with(|f| f.take())
}

/// Copies the WAL into the database, as far as no reader needs it; returns whether it caught up.
pub(crate) fn checkpoint(conn: &Connection) -> StoreResult<bool> {
    let (busy, log, done): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .db()?;
    Ok(busy == 0 && log == done)
}

/// The background checkpointing thread of one database file.
pub(crate) struct Checkpointer {
    wake: Mutex<Option<SyncSender<()>>>,
    thread: Option<JoinHandle<()>>,
    /// Held while a checkpoint runs, so that the writer's and the thread's do not collide (the
    /// second would fail as busy rather than wait).
    running: Arc<Mutex<()>>,
    /// WAL length at the last wake-up (the WAL starts over from 0 after a full checkpoint).
    woken_at: Mutex<i32>,
}

impl Checkpointer {
    /// Starts the thread with its own connection `conn` to the database.
    pub(crate) fn start(conn: Connection) -> StoreResult<Checkpointer> {
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let running = Arc::new(Mutex::new(()));
        let lock = Arc::clone(&running);
        let thread = std::thread::Builder::new()
            .name("ciclo-sqlite-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    let _running = lock.lock().unwrap_or_else(|p| p.into_inner());
                    // A failure (another process checkpointing) leaves the copy to the next one.
                    let _ = checkpoint(&conn);
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start a thread: {e}")))?;
        Ok(Checkpointer {
            wake: Mutex::new(Some(wake)),
            thread: Some(thread),
            running,
            woken_at: Mutex::new(0),
        })
    }

    /// Called after a commit left `frames` pages in the WAL: wakes the thread if enough pages
    /// were added since it was last woken.
    pub(crate) fn committed(&self, frames: i32) {
        let mut woken_at = self.woken_at.lock().unwrap_or_else(|p| p.into_inner());
        if frames < *woken_at {
            *woken_at = 0;
        }
        if frames - *woken_at < NUDGE_PAGES {
            return;
        }
        *woken_at = frames;
        if let Some(wake) = self.wake.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            // Full: a wake-up is pending already.
            let _ = wake.try_send(());
        }
    }

    /// Checkpoints on the writer's connection `conn` (between transactions), after any
    /// checkpoint of the thread's has finished.
    pub(crate) fn catch_up(&self, conn: &Connection) -> StoreResult<bool> {
        let _running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        checkpoint(conn)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.wake.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
