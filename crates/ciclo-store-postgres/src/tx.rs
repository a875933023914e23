//! One transaction: [`PgTx`] runs statements through the connection's statement cache and
//! implements [`Tx`] by handing each operation to the module that owns its tables.

use crate::error::from_pg;
use crate::{accounts, customers, events, identity, imports, orders, segments};
use ciclo_domain::customer::{Customer, OrderStats};
use ciclo_domain::event::Event;
use ciclo_domain::identity::{Identity, IdentityKey};
use ciclo_domain::ids::*;
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::{ApiKey, Membership, Operator, Role, Session, Workspace};
use ciclo_domain::order::Order;
use ciclo_domain::Timestamp;
use ciclo_store::*;
use postgres::types::ToSql;
use postgres::{Row, Statement, Transaction};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Statement parameters, as the postgres client takes them.
pub(crate) type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

pub(crate) struct PgTx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut HashMap<&'static str, Statement>,
    /// Statement timings, when `CICLO_PG_PROFILE` is set (see [`crate::profile`]).
    profile: Option<crate::profile::Profile>,
    /// In write transactions, each customer as this transaction last read or wrote it, so that
    /// writing back a profile sends only what changed (see
    /// [`crate::customers::update_customers`]). Keyed by id alone: ids are unique across
    /// workspaces, and the comparison includes the workspace, so a clash could only cost a
    /// shortcut.
    customer_rows: Option<HashMap<CustomerId, Customer>>,
}

impl<'a> PgTx<'a> {
    pub(crate) fn new(
        tx: Transaction<'a>,
        statements: &'a mut HashMap<&'static str, Statement>,
    ) -> PgTx<'a> {
        PgTx {
            tx,
            statements,
            profile: crate::profile::Profile::start(),
            customer_rows: None,
        }
    }

    /// Remember customer rows read and written from now on (write transactions).
    pub(crate) fn track_customer_rows(&mut self) {
        self.customer_rows = Some(HashMap::new());
    }

    /// Records that the stored rows of these customers are now exactly these values.
    pub(crate) fn remember_customers<'c>(&mut self, rows: impl IntoIterator<Item = &'c Customer>) {
        if let Some(known) = &mut self.customer_rows {
            for c in rows {
                known.insert(c.id.clone(), c.clone());
            }
        }
    }

    /// The customer as this transaction last read or wrote it, when it did.
    pub(crate) fn stored_customer(&self, id: &CustomerId) -> Option<&Customer> {
        self.customer_rows.as_ref().and_then(|known| known.get(id))
    }

    /// Forgets what is known of a customer's row (it was deleted or changed by other means).
    pub(crate) fn forget_customer(&mut self, id: &CustomerId) {
        if let Some(known) = &mut self.customer_rows {
            known.remove(id);
        }
    }

    pub(crate) fn into_inner(self) -> (Transaction<'a>, Option<crate::profile::Profile>) {
        (self.tx, self.profile)
    }

    /// The prepared statement for `sql`, prepared on first use on this connection.
    fn statement(&mut self, sql: &'static str) -> StoreResult<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql).map_err(from_pg)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    pub(crate) fn query(&mut self, sql: &'static str, params: Params<'_>) -> StoreResult<Vec<Row>> {
        let statement = self.statement(sql)?;
        let started = std::time::Instant::now();
        let rows = self.tx.query(&statement, params).map_err(from_pg);
        self.record(sql, started, rows.as_ref().map_or(0, |r| r.len() as u64));
        rows
    }

    /// Runs `sql` through a portal and hands its rows to `each`, fetching `batch` rows per round
    /// trip: at most one batch is held at a time, however many rows the statement yields (for
    /// scans over a whole workspace). Stops at the first error, `each`'s included.
    pub(crate) fn for_each_row(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
        batch: i32,
        each: &mut dyn FnMut(Row) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let statement = self.statement(sql)?;
        let started = std::time::Instant::now();
        let mut sent = 0u64;
        let outcome = (|| {
            let portal = self.tx.bind(&statement, params).map_err(from_pg)?;
            loop {
                let rows = self.tx.query_portal(&portal, batch).map_err(from_pg)?;
                let fetched = rows.len();
                sent += fetched as u64;
                rows.into_iter().try_for_each(&mut *each)?;
                // A short batch is the last one: the portal has run to completion. (A full one
                // may be the last too; the next fetch then returns no row.)
                if fetched < batch as usize {
                    return Ok(());
                }
            }
        })();
        self.record(sql, started, sent);
        outcome
    }

    /// [`Self::for_each_row`] for a scan whose rows go out to the caller as they come: the store
    /// runs a transaction again from the start when it fails with `Retry`
    /// (`PostgresStore::run`), and the caller would see the rows it already had twice; so once
    /// a row was handed out, a `Retry` failure (a serialization failure, a deadlock) is reported
    /// as a plain backend failure (`what` names the scan), and the transaction is not run again.
    pub(crate) fn stream_rows(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
        batch: i32,
        what: &str,
        each: &mut dyn FnMut(Row) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut visited = false;
        let outcome = self.for_each_row(sql, params, batch, &mut |row| {
            each(row)?;
            visited = true;
            Ok(())
        });
        match outcome {
            Err(StoreError::Retry(reason)) if visited => {
                Err(StoreError::Backend(format!("{what} interrupted: {reason}")))
            }
            other => other,
        }
    }

    /// Adds a count to the profile (when profiling), such as how many rows a statement sent.
    pub(crate) fn note(&mut self, what: &str, rows: usize) {
        if let Some(profile) = &mut self.profile {
            profile.record(what, std::time::Duration::ZERO, rows as u64);
        }
    }

    fn record(&mut self, sql: &str, started: std::time::Instant, rows: u64) {
        if let Some(profile) = &mut self.profile {
            profile.record(sql, started.elapsed(), rows);
        }
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> StoreResult<Option<Row>> {
        let statement = self.statement(sql)?;
        let started = std::time::Instant::now();
        let row = self.tx.query_opt(&statement, params).map_err(from_pg);
        self.record(sql, started, 1);
        row
    }

    pub(crate) fn query_one(&mut self, sql: &'static str, params: Params<'_>) -> StoreResult<Row> {
        let statement = self.statement(sql)?;
        let started = std::time::Instant::now();
        let row = self.tx.query_one(&statement, params).map_err(from_pg);
        self.record(sql, started, 1);
        row
    }

    pub(crate) fn execute(&mut self, sql: &'static str, params: Params<'_>) -> StoreResult<u64> {
        let statement = self.statement(sql)?;
        let started = std::time::Instant::now();
        let changed = self.tx.execute(&statement, params).map_err(from_pg);
        self.record(sql, started, *changed.as_ref().unwrap_or(&0));
        changed
    }

    /// Runs SQL built at run time without caching it: PostgreSQL then plans it for these very
    /// parameters, which matters where selectivity varies wildly (customer search).
    pub(crate) fn query_uncached(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> StoreResult<Vec<Row>> {
        let started = std::time::Instant::now();
        let rows = self.tx.query(sql, params).map_err(from_pg);
        self.record(sql, started, rows.as_ref().map_or(0, |r| r.len() as u64));
        rows
    }
}

/// An update or delete that must have found its row: `NotFound` when it changed nothing.
pub(crate) fn require_one(changed: u64) -> StoreResult<()> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// `limit` as SQL's `LIMIT $n`: a limit of zero (or less) returns no rows, as the conformance
/// suite pins.
pub(crate) fn sql_limit(limit: i64) -> i64 {
    limit.max(0)
}

/// Customer ids as a `text[]` parameter, each once, in first-seen order.
pub(crate) fn distinct_ids(ids: &[CustomerId]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter()
        .map(|id| id.as_str())
        .filter(|id| seen.insert(*id))
        .collect()
}

impl Tx for PgTx<'_> {
    fn insert_workspace(&mut self, workspace: &Workspace) -> StoreResult<()> {
        accounts::insert_workspace(self, workspace)
    }
    fn update_workspace(&mut self, workspace: &Workspace) -> StoreResult<()> {
        accounts::update_workspace(self, workspace)
    }
    fn get_workspace(&mut self, id: &WorkspaceId) -> StoreResult<Option<Workspace>> {
        accounts::get_workspace(self, id)
    }
    fn workspace_by_write_key(&mut self, write_key: &str) -> StoreResult<Option<Workspace>> {
        accounts::workspace_by_write_key(self, write_key)
    }
    fn count_workspaces(&mut self) -> StoreResult<i64> {
        accounts::count_workspaces(self)
    }
    fn list_workspaces(&mut self) -> StoreResult<Vec<Workspace>> {
        accounts::list_workspaces(self)
    }

    fn insert_operator(&mut self, operator: &Operator) -> StoreResult<()> {
        accounts::insert_operator(self, operator)
    }
    fn update_operator(&mut self, operator: &Operator) -> StoreResult<()> {
        accounts::update_operator(self, operator)
    }
    fn get_operator(&mut self, id: &OperatorId) -> StoreResult<Option<Operator>> {
        accounts::get_operator(self, id)
    }
    fn operator_by_email(&mut self, email: &str) -> StoreResult<Option<Operator>> {
        accounts::operator_by_email(self, email)
    }
    fn upsert_membership(&mut self, membership: &Membership) -> StoreResult<()> {
        accounts::upsert_membership(self, membership)
    }
    fn delete_membership(
        &mut self,
        workspace: &WorkspaceId,
        operator: &OperatorId,
    ) -> StoreResult<()> {
        accounts::delete_membership(self, workspace, operator)
    }
    fn membership(
        &mut self,
        workspace: &WorkspaceId,
        operator: &OperatorId,
    ) -> StoreResult<Option<Role>> {
        accounts::membership(self, workspace, operator)
    }
    fn list_members(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<(Operator, Role)>> {
        accounts::list_members(self, workspace)
    }
    fn workspaces_of_operator(
        &mut self,
        operator: &OperatorId,
    ) -> StoreResult<Vec<(Workspace, Role)>> {
        accounts::workspaces_of_operator(self, operator)
    }

    fn insert_session(&mut self, session: &Session) -> StoreResult<()> {
        accounts::insert_session(self, session)
    }
    fn session_by_token_hash(&mut self, token_hash: &str) -> StoreResult<Option<Session>> {
        accounts::session_by_token_hash(self, token_hash)
    }
    fn delete_session(&mut self, token_hash: &str) -> StoreResult<()> {
        accounts::delete_session(self, token_hash)
    }

    fn get_operator_mfa(
        &mut self,
        operator: &OperatorId,
    ) -> StoreResult<Option<ciclo_store::OperatorMfa>> {
        crate::mfa::get_operator_mfa(self, operator)
    }
    fn put_operator_mfa(&mut self, value: &ciclo_store::OperatorMfa) -> StoreResult<()> {
        crate::mfa::put_operator_mfa(self, value)
    }
    fn delete_operator_mfa(&mut self, operator: &OperatorId) -> StoreResult<()> {
        crate::mfa::delete_operator_mfa(self, operator)
    }
    fn insert_api_key(&mut self, key: &ApiKey) -> StoreResult<()> {
        accounts::insert_api_key(self, key)
    }
    fn api_key_by_hash(&mut self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        accounts::api_key_by_hash(self, key_hash)
    }
    fn list_api_keys(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<ApiKey>> {
        accounts::list_api_keys(self, workspace)
    }
    fn revoke_api_key(
        &mut self,
        workspace: &WorkspaceId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> StoreResult<()> {
        accounts::revoke_api_key(self, workspace, id, at)
    }
    fn touch_api_key(
        &mut self,
        workspace: &WorkspaceId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> StoreResult<()> {
        accounts::touch_api_key(self, workspace, id, at)
    }

    fn insert_customer(&mut self, customer: &Customer) -> StoreResult<()> {
        customers::insert_customer(self, customer)
    }
    fn update_customer(&mut self, customer: &Customer) -> StoreResult<()> {
        customers::update_customer(self, customer)
    }
    fn insert_customers(&mut self, batch: &[Customer]) -> StoreResult<()> {
        customers::insert_customers(self, batch)
    }
    fn update_customers(&mut self, batch: &[Customer]) -> StoreResult<()> {
        customers::update_customers(self, batch)
    }
    fn get_customer(
        &mut self,
        workspace: &WorkspaceId,
        id: &CustomerId,
    ) -> StoreResult<Option<Customer>> {
        customers::get_customer(self, workspace, id)
    }
    fn get_customers(
        &mut self,
        workspace: &WorkspaceId,
        ids: &[CustomerId],
    ) -> StoreResult<Vec<Customer>> {
        customers::get_customers(self, workspace, ids)
    }
    fn delete_customer(&mut self, workspace: &WorkspaceId, id: &CustomerId) -> StoreResult<()> {
        customers::delete_customer(self, workspace, id)
    }
    fn list_customers(
        &mut self,
        workspace: &WorkspaceId,
        query: &CustomerQuery,
    ) -> StoreResult<Vec<Customer>> {
        customers::list_customers(self, workspace, query)
    }
    fn count_customers(&mut self, workspace: &WorkspaceId) -> StoreResult<i64> {
        customers::count_customers(self, workspace)
    }
    fn merged_children(
        &mut self,
        workspace: &WorkspaceId,
        root: &CustomerId,
    ) -> StoreResult<Vec<CustomerId>> {
        customers::merged_children(self, workspace, root)
    }

    fn find_identities(
        &mut self,
        workspace: &WorkspaceId,
        keys: &[IdentityKey],
    ) -> StoreResult<Vec<Identity>> {
        identity::find_identities(self, workspace, keys)
    }
    fn insert_identity(
        &mut self,
        workspace: &WorkspaceId,
        identity: &Identity,
    ) -> StoreResult<bool> {
        identity::insert_identity(self, workspace, identity)
    }
    fn insert_identities(
        &mut self,
        workspace: &WorkspaceId,
        batch: &[Identity],
    ) -> StoreResult<Vec<bool>> {
        identity::insert_identities(self, workspace, batch)
    }
    fn identities_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<Identity>> {
        identity::identities_of(self, workspace, customers)
    }
    fn delete_identity(&mut self, workspace: &WorkspaceId, key: &IdentityKey) -> StoreResult<()> {
        identity::delete_identity(self, workspace, key)
    }

    fn insert_merge(&mut self, merge: &MergeRecord) -> StoreResult<()> {
        identity::insert_merge(self, merge)
    }
    fn get_merge(
        &mut self,
        workspace: &WorkspaceId,
        id: &MergeId,
    ) -> StoreResult<Option<MergeRecord>> {
        identity::get_merge(self, workspace, id)
    }
    fn update_merge(&mut self, merge: &MergeRecord) -> StoreResult<()> {
        identity::update_merge(self, merge)
    }
    fn merges_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<MergeRecord>> {
        identity::merges_of(self, workspace, customers)
    }

    fn insert_conflict(&mut self, conflict: &IdentityConflict) -> StoreResult<()> {
        identity::insert_conflict(self, conflict)
    }
    fn update_conflict(&mut self, conflict: &IdentityConflict) -> StoreResult<()> {
        identity::update_conflict(self, conflict)
    }
    fn get_conflict(
        &mut self,
        workspace: &WorkspaceId,
        id: &ConflictId,
    ) -> StoreResult<Option<IdentityConflict>> {
        identity::get_conflict(self, workspace, id)
    }
    fn list_conflicts(
        &mut self,
        workspace: &WorkspaceId,
        open_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<IdentityConflict>> {
        identity::list_conflicts(self, workspace, open_only, limit)
    }

    fn existing_message_ids(
        &mut self,
        workspace: &WorkspaceId,
        message_ids: &[String],
    ) -> StoreResult<Vec<String>> {
        events::existing_message_ids(self, workspace, message_ids)
    }
    fn insert_events(&mut self, events: &[Event]) -> StoreResult<Vec<bool>> {
        events::insert_events(self, events)
    }
    fn timeline(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
        query: &TimelineQuery,
    ) -> StoreResult<Vec<Event>> {
        events::timeline(self, workspace, customers, query)
    }
    fn count_events(&mut self, workspace: &WorkspaceId) -> StoreResult<i64> {
        events::count_events(self, workspace)
    }

    fn insert_order(&mut self, order: &Order) -> StoreResult<bool> {
        orders::insert_order(self, order)
    }
    fn insert_orders(&mut self, batch: &[Order]) -> StoreResult<Vec<bool>> {
        orders::insert_orders(self, batch)
    }
    fn orders_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
        limit: i64,
    ) -> StoreResult<Vec<Order>> {
        orders::orders_of(self, workspace, customers, limit)
    }
    fn list_orders(
        &mut self,
        workspace: &WorkspaceId,
        after: Option<&OrderId>,
        limit: i64,
    ) -> StoreResult<Vec<Order>> {
        orders::list_orders(self, workspace, after, limit)
    }
    fn order_stats_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<OrderStats> {
        orders::order_stats_of(self, workspace, customers)
    }

    fn insert_import(&mut self, import: &ImportRun) -> StoreResult<()> {
        imports::insert_import(self, import)
    }
    fn update_import(&mut self, import: &ImportRun) -> StoreResult<()> {
        imports::update_import(self, import)
    }
    fn get_import(
        &mut self,
        workspace: &WorkspaceId,
        id: &ImportId,
    ) -> StoreResult<Option<ImportRun>> {
        imports::get_import(self, workspace, id)
    }
    fn list_imports(&mut self, workspace: &WorkspaceId, limit: i64) -> StoreResult<Vec<ImportRun>> {
        imports::list_imports(self, workspace, limit)
    }

    fn named_events(
        &mut self,
        workspace: &WorkspaceId,
        query: &NamedEventQuery,
    ) -> StoreResult<Vec<NamedEvent>> {
        events::named_events(self, workspace, query)
    }
    fn count_named_events(
        &mut self,
        workspace: &WorkspaceId,
        query: &NamedEventQuery,
    ) -> StoreResult<Vec<(CustomerId, i64)>> {
        events::count_named_events(self, workspace, query)
    }
    fn scan_named_events(
        &mut self,
        workspace: &WorkspaceId,
        query: &NamedEventQuery,
        with_properties: bool,
        visit: &mut dyn FnMut(NamedEvent),
    ) -> StoreResult<()> {
        events::scan_named_events(self, workspace, query, with_properties, visit)
    }
    fn scan_customer_summaries(
        &mut self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(CustomerSummary),
    ) -> StoreResult<()> {
        customers::scan_customer_summaries(self, workspace, visit)
    }
    fn scan_order_summaries(
        &mut self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(OrderSummary),
    ) -> StoreResult<()> {
        orders::scan_order_summaries(self, workspace, visit)
    }
    fn merged_profiles(
        &mut self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<(CustomerId, CustomerId)>> {
        customers::merged_profiles(self, workspace)
    }

    fn get_setting(&mut self, workspace: &WorkspaceId, key: &str) -> StoreResult<Option<Value>> {
        segments::get_setting(self, workspace, key)
    }
    fn put_setting(
        &mut self,
        workspace: &WorkspaceId,
        key: &str,
        value: &Value,
    ) -> StoreResult<()> {
        segments::put_setting(self, workspace, key, value)
    }

    fn insert_segment(&mut self, segment: &SegmentRecord) -> StoreResult<()> {
        segments::insert_segment(self, segment)
    }
    fn update_segment(&mut self, segment: &SegmentRecord) -> StoreResult<()> {
        segments::update_segment(self, segment)
    }
    fn get_segment(
        &mut self,
        workspace: &WorkspaceId,
        id: &SegmentId,
    ) -> StoreResult<Option<SegmentRecord>> {
        segments::get_segment(self, workspace, id)
    }
    fn segment_by_name(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
    ) -> StoreResult<Option<SegmentRecord>> {
        segments::segment_by_name(self, workspace, name)
    }
    fn list_segments(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<SegmentRecord>> {
        segments::list_segments(self, workspace)
    }
    fn delete_segment(&mut self, workspace: &WorkspaceId, id: &SegmentId) -> StoreResult<()> {
        segments::delete_segment(self, workspace, id)
    }
    fn add_segment_members(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        customers: &[CustomerId],
        since: Timestamp,
    ) -> StoreResult<i64> {
        segments::add_segment_members(self, workspace, segment, customers, since)
    }
    fn remove_segment_members(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        customers: &[CustomerId],
    ) -> StoreResult<i64> {
        segments::remove_segment_members(self, workspace, segment, customers)
    }
    fn memberships_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<(SegmentId, CustomerId, Timestamp)>> {
        segments::memberships_of(self, workspace, customers)
    }
    fn segment_members(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        after: Option<&CustomerId>,
        limit: i64,
    ) -> StoreResult<Vec<CustomerId>> {
        segments::segment_members(self, workspace, segment, after, limit)
    }
    fn insert_segment_count(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        point: &SegmentCount,
    ) -> StoreResult<()> {
        segments::insert_segment_count(self, workspace, segment, point)
    }
    fn segment_counts(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        since: Timestamp,
    ) -> StoreResult<Vec<SegmentCount>> {
        segments::segment_counts(self, workspace, segment, since)
    }

    fn mark_dirty(&mut self, workspace: &WorkspaceId, customers: &[CustomerId]) -> StoreResult<()> {
        segments::mark_dirty(self, workspace, customers)
    }
    fn take_dirty(&mut self, limit: i64) -> StoreResult<Vec<DirtyCustomer>> {
        segments::take_dirty(self, limit)
    }
    fn dirty_of(&mut self, workspace: &WorkspaceId, limit: i64) -> StoreResult<Vec<CustomerId>> {
        segments::dirty_of(self, workspace, limit)
    }
    fn clear_dirty(&mut self, customers: &[DirtyCustomer]) -> StoreResult<()> {
        segments::clear_dirty(self, customers)
    }

    fn computed_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<CustomerComputed>> {
        segments::computed_of(self, workspace, customers)
    }
    fn set_stages(
        &mut self,
        workspace: &WorkspaceId,
        stages: &[(CustomerId, Stage, Timestamp)],
    ) -> StoreResult<()> {
        segments::set_stages(self, workspace, stages)
    }
    fn set_scores(
        &mut self,
        workspace: &WorkspaceId,
        scores: &[(CustomerId, Map<String, Value>)],
        at: Timestamp,
    ) -> StoreResult<()> {
        segments::set_scores(self, workspace, scores, at)
    }
    fn stage_counts(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<(Stage, i64)>> {
        segments::stage_counts(self, workspace)
    }
    fn insert_stage_changes(
        &mut self,
        workspace: &WorkspaceId,
        changes: &[StageChange],
    ) -> StoreResult<()> {
        segments::insert_stage_changes(self, workspace, changes)
    }
    fn stage_history(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<StageChange>> {
        segments::stage_history(self, workspace, customers)
    }
    fn stage_transitions(
        &mut self,
        workspace: &WorkspaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<StageTransition>> {
        segments::stage_transitions(self, workspace, from, to)
    }
}
