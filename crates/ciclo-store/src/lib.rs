//! The storage port. A backend (SQLite, PostgreSQL) implements [`Store`], which hands out
//! transactions implementing [`Tx`]: small, synchronous, SQL-shaped operations. The rules and
//! algorithms that combine them (identity resolution, merges, ingestion) live in `ciclo-core`
//! and are written once for every backend.
//!
//! Every [`Tx`] method takes the workspace id: no operation reads across workspaces.
//! Calls are blocking; async callers run them on a blocking thread.

#[cfg(feature = "conformance")]
pub mod conformance;
mod records;

pub use records::*;

use ciclo_domain::customer::{Customer, OrderStats};
use ciclo_domain::event::Event;
use ciclo_domain::identity::{Identity, IdentityKey};
use ciclo_domain::ids::*;
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::{ApiKey, Membership, Operator, Role, Session, Workspace};
use ciclo_domain::order::Order;
use ciclo_domain::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (the constraint's name says which).
    #[error("conflict on {0}")]
    Conflict(String),
    /// The transaction lost a race (serialization failure, deadlock, busy database) and may be
    /// run again from the start.
    #[error("transient failure, retry: {0}")]
    Retry(String),
    /// Anything else from the backend: logged, never shown to users.
    #[error("backend failure: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which backend a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// A file path (`sqlite:///var/lib/ciclo/ciclo.db`, `sqlite://data/ciclo.db`, `sqlite::memory:`).
    Sqlite(String),
    /// A libpq-style URL, passed through (`postgres://user@host/db`).
    Postgres(String),
}

impl BackendKind {
    pub fn from_url(url: &str) -> Result<BackendKind, String> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            Ok(BackendKind::Sqlite(rest.to_string()))
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            Ok(BackendKind::Sqlite(rest.to_string()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(BackendKind::Postgres(url.to_string()))
        } else {
            Err(format!(
                "unsupported database URL {url:?}: expected sqlite://PATH or postgres://…"
            ))
        }
    }
}

/// A database. `write` and `read` run a closure in one transaction; `write` commits when the
/// closure returns `Ok` and rolls back otherwise. On [`StoreError::Retry`] the backend may call the
/// closure again, so it must not have effects outside the transaction.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Brings the schema to the latest version; safe to run concurrently from several processes.
    fn migrate(&self) -> StoreResult<()>;
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()>;
    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()>;
}

/// Runs `work` in a write transaction and returns its value.
pub fn write<T>(
    store: &dyn Store,
    mut work: impl FnMut(&mut dyn Tx) -> StoreResult<T>,
) -> StoreResult<T> {
    let mut out = None;
    store.write(&mut |tx| {
        out = Some(work(tx)?);
        Ok(())
    })?;
    out.ok_or_else(|| StoreError::Backend("transaction produced no value".into()))
}

/// Runs `work` in a read transaction (one consistent snapshot) and returns its value.
pub fn read<T>(
    store: &dyn Store,
    mut work: impl FnMut(&mut dyn Tx) -> StoreResult<T>,
) -> StoreResult<T> {
    let mut out = None;
    store.read(&mut |tx| {
        out = Some(work(tx)?);
        Ok(())
    })?;
    out.ok_or_else(|| StoreError::Backend("transaction produced no value".into()))
}

/// The operations of one transaction. Methods that write are only called inside `Store::write`.
pub trait Tx {
    // --- workspaces, operators, sessions, keys -------------------------------------------------
    fn insert_workspace(&mut self, workspace: &Workspace) -> StoreResult<()>;
    fn update_workspace(&mut self, workspace: &Workspace) -> StoreResult<()>;
    fn get_workspace(&mut self, id: &WorkspaceId) -> StoreResult<Option<Workspace>>;
    fn workspace_by_write_key(&mut self, write_key: &str) -> StoreResult<Option<Workspace>>;
    fn count_workspaces(&mut self) -> StoreResult<i64>;
    /// Every workspace, by id (for the scheduled jobs that visit each).
    fn list_workspaces(&mut self) -> StoreResult<Vec<Workspace>>;

    /// Fails with `Conflict("operators_email")` when the email is taken.
    fn insert_operator(&mut self, operator: &Operator) -> StoreResult<()>;
    fn update_operator(&mut self, operator: &Operator) -> StoreResult<()>;
    fn get_operator(&mut self, id: &OperatorId) -> StoreResult<Option<Operator>>;
    /// Emails are stored and matched in lower case.
    fn operator_by_email(&mut self, email: &str) -> StoreResult<Option<Operator>>;
    /// Inserts or changes the operator's role in the workspace.
    fn upsert_membership(&mut self, membership: &Membership) -> StoreResult<()>;
    fn delete_membership(
        &mut self,
        workspace: &WorkspaceId,
        operator: &OperatorId,
    ) -> StoreResult<()>;
    fn membership(
        &mut self,
        workspace: &WorkspaceId,
        operator: &OperatorId,
    ) -> StoreResult<Option<Role>>;
    /// Members of a workspace, ordered by operator email.
    fn list_members(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<(Operator, Role)>>;
    /// The workspaces an operator belongs to, ordered by name.
    fn workspaces_of_operator(
        &mut self,
        operator: &OperatorId,
    ) -> StoreResult<Vec<(Workspace, Role)>>;

    /// The operator's second factor, if one was set up (enabled or pending confirmation).
    fn get_operator_mfa(&mut self, operator: &OperatorId) -> StoreResult<Option<OperatorMfa>>;
    /// Inserts or replaces the operator's second factor.
    fn put_operator_mfa(&mut self, mfa: &OperatorMfa) -> StoreResult<()>;
    fn delete_operator_mfa(&mut self, operator: &OperatorId) -> StoreResult<()>;

    fn insert_session(&mut self, session: &Session) -> StoreResult<()>;
    fn session_by_token_hash(&mut self, token_hash: &str) -> StoreResult<Option<Session>>;
    fn delete_session(&mut self, token_hash: &str) -> StoreResult<()>;

    fn insert_api_key(&mut self, key: &ApiKey) -> StoreResult<()>;
    fn api_key_by_hash(&mut self, key_hash: &str) -> StoreResult<Option<ApiKey>>;
    /// Keys of a workspace, newest first, revoked ones included.
    fn list_api_keys(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<ApiKey>>;
    /// Sets `revoked_at`; `NotFound` when no such key is in this workspace.
    fn revoke_api_key(
        &mut self,
        workspace: &WorkspaceId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> StoreResult<()>;
    fn touch_api_key(
        &mut self,
        workspace: &WorkspaceId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> StoreResult<()>;

    // --- customers -----------------------------------------------------------------------------
    fn insert_customer(&mut self, customer: &Customer) -> StoreResult<()>;
    /// Writes every column of the row (the caller read, changed and now writes it back).
    fn update_customer(&mut self, customer: &Customer) -> StoreResult<()>;
    /// Bulk form of `insert_customer` (ingestion creates many at once); backends may override
    /// it with one round trip.
    fn insert_customers(&mut self, customers: &[Customer]) -> StoreResult<()> {
        customers.iter().try_for_each(|c| self.insert_customer(c))
    }
    /// Bulk form of `update_customer`; backends may override it with one round trip.
    fn update_customers(&mut self, customers: &[Customer]) -> StoreResult<()> {
        customers.iter().try_for_each(|c| self.update_customer(c))
    }
    fn get_customer(
        &mut self,
        workspace: &WorkspaceId,
        id: &CustomerId,
    ) -> StoreResult<Option<Customer>>;
    fn get_customers(
        &mut self,
        workspace: &WorkspaceId,
        ids: &[CustomerId],
    ) -> StoreResult<Vec<Customer>>;
    /// Deletes the profile and everything that belongs to it (identities, events, orders with
    /// items, merge and conflict records that name it, segment memberships, computed values,
    /// stage history and evaluation marks).
    fn delete_customer(&mut self, workspace: &WorkspaceId, id: &CustomerId) -> StoreResult<()>;
    /// Surviving profiles (`merged_into` is null) matching the query, ordered by the query's sort.
    fn list_customers(
        &mut self,
        workspace: &WorkspaceId,
        query: &CustomerQuery,
    ) -> StoreResult<Vec<Customer>>;
    fn count_customers(&mut self, workspace: &WorkspaceId) -> StoreResult<i64>;
    /// Profiles merged directly into `root` (`merged_into = root`).
    fn merged_children(
        &mut self,
        workspace: &WorkspaceId,
        root: &CustomerId,
    ) -> StoreResult<Vec<CustomerId>>;

    // --- identity graph ------------------------------------------------------------------------
    /// The identities among `keys` that exist.
    fn find_identities(
        &mut self,
        workspace: &WorkspaceId,
        keys: &[IdentityKey],
    ) -> StoreResult<Vec<Identity>>;
    /// Inserts the identity unless the key exists; returns whether it was inserted.
    fn insert_identity(
        &mut self,
        workspace: &WorkspaceId,
        identity: &Identity,
    ) -> StoreResult<bool>;
    /// Bulk form of `insert_identity`; backends may override it with one round trip.
    fn insert_identities(
        &mut self,
        workspace: &WorkspaceId,
        identities: &[Identity],
    ) -> StoreResult<Vec<bool>> {
        identities
            .iter()
            .map(|i| self.insert_identity(workspace, i))
            .collect()
    }
    /// Identities owned by any of these profiles, ordered by kind then value.
    fn identities_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<Identity>>;
    fn delete_identity(&mut self, workspace: &WorkspaceId, key: &IdentityKey) -> StoreResult<()>;

    fn insert_merge(&mut self, merge: &MergeRecord) -> StoreResult<()>;
    fn get_merge(
        &mut self,
        workspace: &WorkspaceId,
        id: &MergeId,
    ) -> StoreResult<Option<MergeRecord>>;
    fn update_merge(&mut self, merge: &MergeRecord) -> StoreResult<()>;
    /// Merges in which any of these profiles is winner or loser, newest first.
    fn merges_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<MergeRecord>>;

    fn insert_conflict(&mut self, conflict: &IdentityConflict) -> StoreResult<()>;
    fn update_conflict(&mut self, conflict: &IdentityConflict) -> StoreResult<()>;
    fn get_conflict(
        &mut self,
        workspace: &WorkspaceId,
        id: &ConflictId,
    ) -> StoreResult<Option<IdentityConflict>>;
    /// Conflicts of the workspace (open ones only when `open_only`), newest first.
    fn list_conflicts(
        &mut self,
        workspace: &WorkspaceId,
        open_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<IdentityConflict>>;

    // --- events and timeline -------------------------------------------------------------------
    /// The message ids among `message_ids` already stored in this workspace.
    fn existing_message_ids(
        &mut self,
        workspace: &WorkspaceId,
        message_ids: &[String],
    ) -> StoreResult<Vec<String>>;
    /// Inserts events; one whose `message_id` exists already is skipped. Returns, per input,
    /// whether it was inserted.
    fn insert_events(&mut self, events: &[Event]) -> StoreResult<Vec<bool>>;
    /// Events of these profiles, newest first (by timestamp, then id), after the cursor.
    fn timeline(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
        query: &TimelineQuery,
    ) -> StoreResult<Vec<Event>>;
    fn count_events(&mut self, workspace: &WorkspaceId) -> StoreResult<i64>;

    // --- orders --------------------------------------------------------------------------------
    /// Inserts the order with its items unless an order with that external id exists in the
    /// workspace; returns whether it was inserted.
    fn insert_order(&mut self, order: &Order) -> StoreResult<bool>;
    /// Bulk form of `insert_order` (as if called for each in turn); backends may override it
    /// with one round trip.
    fn insert_orders(&mut self, orders: &[Order]) -> StoreResult<Vec<bool>> {
        orders.iter().map(|o| self.insert_order(o)).collect()
    }
    /// Orders of these profiles, newest first, with items.
    fn orders_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
        limit: i64,
    ) -> StoreResult<Vec<Order>>;
    /// Every order of the workspace in id order, after `after` (for export), with items.
    fn list_orders(
        &mut self,
        workspace: &WorkspaceId,
        after: Option<&OrderId>,
        limit: i64,
    ) -> StoreResult<Vec<Order>>;
    /// Order stats summed over these profiles (used to recompute a profile after a merge or undo).
    fn order_stats_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<OrderStats>;

    /// Events of one name in a time range (see [`NamedEventQuery`]), in no particular order.
    fn named_events(
        &mut self,
        workspace: &WorkspaceId,
        query: &NamedEventQuery,
    ) -> StoreResult<Vec<NamedEvent>>;
    /// How many events of one name each profile has in the range (profiles with none left out):
    /// the same rows as `named_events`, counted by the database.
    fn count_named_events(
        &mut self,
        workspace: &WorkspaceId,
        query: &NamedEventQuery,
    ) -> StoreResult<Vec<(CustomerId, i64)>>;
    /// Every event of `query.name` in `[query.since, query.until)` (the same rows as
    /// `named_events`, `query.customers` honoured), handed to `visit` one at a time in no
    /// particular order, so that a whole workspace's events of one name are never held at
    /// once. Properties are read (and parsed) only when `with_properties`; otherwise they are
    /// an empty map.
    ///
    /// A failure after `visit` has been called is never [`StoreError::Retry`]: the store does
    /// not run the transaction again because of the scan once rows were handed out, so `visit`
    /// never sees a row twice on that account. A `write` may still be run again for other
    /// reasons (see [`Store`]), so what `visit` builds is best started inside the closure.
    fn scan_named_events(
        &mut self,
        workspace: &WorkspaceId,
        query: &NamedEventQuery,
        with_properties: bool,
        visit: &mut dyn FnMut(NamedEvent),
    ) -> StoreResult<()>;
    /// Every surviving profile of the workspace (`merged_into` is null), reduced to a
    /// [`CustomerSummary`], handed to `visit` one at a time in no particular order: the whole
    /// workspace is read in one statement and never held at once. Retries as for
    /// `scan_named_events`: a failure after `visit` was called is never [`StoreError::Retry`].
    fn scan_customer_summaries(
        &mut self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(CustomerSummary),
    ) -> StoreResult<()>;
    /// Every order of the workspace (those of merged-away profiles included, under the profile
    /// they are stored under), reduced to an [`OrderSummary`] (no items), handed to `visit` one
    /// at a time in no particular order. Retries as for `scan_named_events`.
    fn scan_order_summaries(
        &mut self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(OrderSummary),
    ) -> StoreResult<()>;
    /// Every merged-away profile of the workspace and the profile it was merged into.
    fn merged_profiles(
        &mut self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<(CustomerId, CustomerId)>>;

    // --- imports -------------------------------------------------------------------------------
    fn insert_import(&mut self, import: &ImportRun) -> StoreResult<()>;
    fn update_import(&mut self, import: &ImportRun) -> StoreResult<()>;
    fn get_import(
        &mut self,
        workspace: &WorkspaceId,
        id: &ImportId,
    ) -> StoreResult<Option<ImportRun>>;
    /// Newest first.
    fn list_imports(&mut self, workspace: &WorkspaceId, limit: i64) -> StoreResult<Vec<ImportRun>>;

    // --- workspace settings --------------------------------------------------------------------
    /// A JSON setting of the workspace (`lifecycle_rules`, …), if set.
    fn get_setting(
        &mut self,
        workspace: &WorkspaceId,
        key: &str,
    ) -> StoreResult<Option<serde_json::Value>>;
    /// Inserts or replaces a setting.
    fn put_setting(
        &mut self,
        workspace: &WorkspaceId,
        key: &str,
        value: &serde_json::Value,
    ) -> StoreResult<()>;

    // --- segments and lists --------------------------------------------------------------------
    /// Fails with `Conflict("segments_name")` when the workspace has a segment of that name
    /// (compared in lower case).
    fn insert_segment(&mut self, segment: &SegmentRecord) -> StoreResult<()>;
    /// Writes every column but `member_count`, which only the member methods change (same name
    /// rule as insert); `NotFound` when missing.
    fn update_segment(&mut self, segment: &SegmentRecord) -> StoreResult<()>;
    fn get_segment(
        &mut self,
        workspace: &WorkspaceId,
        id: &SegmentId,
    ) -> StoreResult<Option<SegmentRecord>>;
    /// By name, without regard to case.
    fn segment_by_name(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
    ) -> StoreResult<Option<SegmentRecord>>;
    /// Every segment of the workspace, by name (lower case).
    fn list_segments(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<SegmentRecord>>;
    /// Deletes the segment with its members and count history; `NotFound` when missing.
    fn delete_segment(&mut self, workspace: &WorkspaceId, id: &SegmentId) -> StoreResult<()>;
    /// Adds members (already present ones are left as they are, their `since` kept) and returns
    /// how many were added; keeps `member_count` of the segment in step.
    fn add_segment_members(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        customers: &[CustomerId],
        since: Timestamp,
    ) -> StoreResult<i64>;
    /// Removes members (absent ones ignored) and returns how many were removed; keeps
    /// `member_count` in step.
    fn remove_segment_members(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        customers: &[CustomerId],
    ) -> StoreResult<i64>;
    /// The segments each of these customers is in: (segment, customer, since).
    fn memberships_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<(SegmentId, CustomerId, Timestamp)>>;
    /// Members of a segment in id order, after `after`.
    fn segment_members(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        after: Option<&CustomerId>,
        limit: i64,
    ) -> StoreResult<Vec<CustomerId>>;
    fn insert_segment_count(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        point: &SegmentCount,
    ) -> StoreResult<()>;
    /// Count history of a segment at or after `since`, oldest first.
    fn segment_counts(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        since: Timestamp,
    ) -> StoreResult<Vec<SegmentCount>>;

    // --- evaluation queue ----------------------------------------------------------------------
    /// Marks customers for evaluation (already marked ones stay marked once).
    fn mark_dirty(&mut self, workspace: &WorkspaceId, customers: &[CustomerId]) -> StoreResult<()>;
    /// Up to `limit` marked customers of any workspace, oldest mark first. PostgreSQL locks the
    /// rows it returns (skipping rows another transaction holds), so that two evaluators never
    /// take the same customer.
    fn take_dirty(&mut self, limit: i64) -> StoreResult<Vec<DirtyCustomer>>;
    /// Up to `limit` customers of one workspace waiting in the queue, without taking them (the
    /// segment index re-reads them before it answers).
    fn dirty_of(&mut self, workspace: &WorkspaceId, limit: i64) -> StoreResult<Vec<CustomerId>>;
    /// Removes the marks.
    fn clear_dirty(&mut self, customers: &[DirtyCustomer]) -> StoreResult<()>;

    // --- computed attributes and lifecycle -----------------------------------------------------
    /// What was computed for these customers (customers never computed left out).
    fn computed_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<CustomerComputed>>;
    /// Sets the lifecycle stage (and when it was entered) of customers, creating rows as needed;
    /// scores are left alone.
    fn set_stages(
        &mut self,
        workspace: &WorkspaceId,
        stages: &[(CustomerId, Stage, Timestamp)],
    ) -> StoreResult<()>;
    /// Replaces the scores of customers (and `scores_at`), creating rows as needed; stages are
    /// left alone.
    fn set_scores(
        &mut self,
        workspace: &WorkspaceId,
        scores: &[(CustomerId, serde_json::Map<String, serde_json::Value>)],
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Surviving customers per stored stage (customers with no stage yet left out).
    fn stage_counts(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<(Stage, i64)>>;
    fn insert_stage_changes(
        &mut self,
        workspace: &WorkspaceId,
        changes: &[StageChange],
    ) -> StoreResult<()>;
    /// Stage history of these profiles, newest first.
    fn stage_history(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<StageChange>>;
    /// Stage changes with `from <= at < to`, counted by (from, to).
    fn stage_transitions(
        &mut self,
        workspace: &WorkspaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<StageTransition>>;
}
