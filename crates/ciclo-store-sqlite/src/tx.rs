//! [`SqliteTx`]: the [`Tx`] operations of one open transaction, each delegating to the module
//! that owns its tables.

use crate::known::{Known, Layer};
use crate::{accounts, customers, events, identity, imports, mfa, orders, segments};
use ciclo_domain::customer::{Customer, OrderStats};
use ciclo_domain::event::Event;
use ciclo_domain::identity::{Identity, IdentityKey};
use ciclo_domain::ids::*;
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::{ApiKey, Membership, Operator, Role, Session, Workspace};
use ciclo_domain::order::Order;
use ciclo_domain::Timestamp;
use ciclo_store::{
    CustomerComputed, CustomerQuery, CustomerSummary, DirtyCustomer, IdentityConflict, ImportRun,
    MergeRecord, NamedEvent, NamedEventQuery, OrderSummary, SegmentCount, SegmentRecord,
    StageChange, StageTransition, StoreResult, TimelineQuery, Tx,
};
use rusqlite::Connection;
use serde_json::{Map, Value};

/// A transaction opened by [`crate::SqliteStore`]; it only borrows the connection, whose
/// transaction the store commits or rolls back.
pub(crate) struct SqliteTx<'c> {
    conn: &'c Connection,
    /// What the writer knows about rows (see `known.rs`).
    known: Known<'c>,
}

impl<'c> SqliteTx<'c> {
    /// A transaction of `Store::write`.
    pub(crate) fn for_writes(conn: &'c Connection, known: Known<'c>) -> Self {
        SqliteTx { conn, known }
    }

    /// A transaction of `Store::read`.
    pub(crate) fn for_reads(conn: &'c Connection) -> Self {
        SqliteTx {
            conn,
            known: Known::for_reads(),
        }
    }

    /// What the transaction learnt, for the writer's cache once it committed.
    pub(crate) fn into_layer(self) -> Layer {
        self.known.into_layer()
    }
}

impl Tx for SqliteTx<'_> {
    fn insert_workspace(&mut self, workspace: &Workspace) -> StoreResult<()> {
        accounts::insert_workspace(self.conn, workspace)
    }
    fn update_workspace(&mut self, workspace: &Workspace) -> StoreResult<()> {
        accounts::update_workspace(self.conn, workspace)
    }
    fn get_workspace(&mut self, id: &WorkspaceId) -> StoreResult<Option<Workspace>> {
        accounts::get_workspace(self.conn, id)
    }
    fn workspace_by_write_key(&mut self, write_key: &str) -> StoreResult<Option<Workspace>> {
        accounts::workspace_by_write_key(self.conn, write_key)
    }
    fn count_workspaces(&mut self) -> StoreResult<i64> {
        accounts::count_workspaces(self.conn)
    }
    fn list_workspaces(&mut self) -> StoreResult<Vec<Workspace>> {
        accounts::list_workspaces(self.conn)
    }

    fn insert_operator(&mut self, operator: &Operator) -> StoreResult<()> {
        accounts::insert_operator(self.conn, operator)
    }
    fn update_operator(&mut self, operator: &Operator) -> StoreResult<()> {
        accounts::update_operator(self.conn, operator)
    }
    fn get_operator(&mut self, id: &OperatorId) -> StoreResult<Option<Operator>> {
        accounts::get_operator(self.conn, id)
    }
    fn operator_by_email(&mut self, email: &str) -> StoreResult<Option<Operator>> {
        accounts::operator_by_email(self.conn, email)
    }
    fn upsert_membership(&mut self, membership: &Membership) -> StoreResult<()> {
        accounts::upsert_membership(self.conn, membership)
    }
    fn delete_membership(
        &mut self,
        workspace: &WorkspaceId,
        operator: &OperatorId,
    ) -> StoreResult<()> {
        accounts::delete_membership(self.conn, workspace, operator)
    }
    fn membership(
        &mut self,
        workspace: &WorkspaceId,
        operator: &OperatorId,
    ) -> StoreResult<Option<Role>> {
        accounts::membership(self.conn, workspace, operator)
    }
    fn list_members(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<(Operator, Role)>> {
        accounts::list_members(self.conn, workspace)
    }
    fn workspaces_of_operator(
        &mut self,
        operator: &OperatorId,
    ) -> StoreResult<Vec<(Workspace, Role)>> {
        accounts::workspaces_of_operator(self.conn, operator)
    }

    fn insert_session(&mut self, session: &Session) -> StoreResult<()> {
        accounts::insert_session(self.conn, session)
    }
    fn session_by_token_hash(&mut self, token_hash: &str) -> StoreResult<Option<Session>> {
        accounts::session_by_token_hash(self.conn, token_hash)
    }
    fn delete_session(&mut self, token_hash: &str) -> StoreResult<()> {
        accounts::delete_session(self.conn, token_hash)
    }

    fn get_operator_mfa(
        &mut self,
        operator: &OperatorId,
    ) -> StoreResult<Option<ciclo_store::OperatorMfa>> {
        mfa::get_operator_mfa(self.conn, operator)
    }
    fn put_operator_mfa(&mut self, value: &ciclo_store::OperatorMfa) -> StoreResult<()> {
        mfa::put_operator_mfa(self.conn, value)
    }
    fn delete_operator_mfa(&mut self, operator: &OperatorId) -> StoreResult<()> {
        mfa::delete_operator_mfa(self.conn, operator)
    }
    fn insert_api_key(&mut self, key: &ApiKey) -> StoreResult<()> {
        accounts::insert_api_key(self.conn, key)
    }
    fn api_key_by_hash(&mut self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        accounts::api_key_by_hash(self.conn, key_hash)
    }
    fn list_api_keys(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<ApiKey>> {
        accounts::list_api_keys(self.conn, workspace)
    }
    fn revoke_api_key(
        &mut self,
        workspace: &WorkspaceId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> StoreResult<()> {
        accounts::revoke_api_key(self.conn, workspace, id, at)
    }
    fn touch_api_key(
        &mut self,
        workspace: &WorkspaceId,
        id: &ApiKeyId,
        at: Timestamp,
    ) -> StoreResult<()> {
        accounts::touch_api_key(self.conn, workspace, id, at)
    }

    fn insert_customer(&mut self, customer: &Customer) -> StoreResult<()> {
        customers::insert_customer(self.conn, &mut self.known, customer)
    }
    fn update_customer(&mut self, customer: &Customer) -> StoreResult<()> {
        customers::update_customer(self.conn, &mut self.known, customer)
    }
    fn get_customer(
        &mut self,
        workspace: &WorkspaceId,
        id: &CustomerId,
    ) -> StoreResult<Option<Customer>> {
        customers::get_customer(self.conn, &mut self.known, workspace, id)
    }
    fn get_customers(
        &mut self,
        workspace: &WorkspaceId,
        ids: &[CustomerId],
    ) -> StoreResult<Vec<Customer>> {
        customers::get_customers(self.conn, &mut self.known, workspace, ids)
    }
    fn delete_customer(&mut self, workspace: &WorkspaceId, id: &CustomerId) -> StoreResult<()> {
        customers::delete_customer(self.conn, &mut self.known, workspace, id)
    }
    fn list_customers(
        &mut self,
        workspace: &WorkspaceId,
        query: &CustomerQuery,
    ) -> StoreResult<Vec<Customer>> {
        customers::list_customers(self.conn, workspace, query)
    }
    fn count_customers(&mut self, workspace: &WorkspaceId) -> StoreResult<i64> {
        customers::count_customers(self.conn, workspace)
    }
    fn merged_children(
        &mut self,
        workspace: &WorkspaceId,
        root: &CustomerId,
    ) -> StoreResult<Vec<CustomerId>> {
        customers::merged_children(self.conn, workspace, root)
    }

    fn find_identities(
        &mut self,
        workspace: &WorkspaceId,
        keys: &[IdentityKey],
    ) -> StoreResult<Vec<Identity>> {
        identity::find_identities(self.conn, &mut self.known, workspace, keys)
    }
    fn insert_identity(
        &mut self,
        workspace: &WorkspaceId,
        identity: &Identity,
    ) -> StoreResult<bool> {
        identity::insert_identity(self.conn, &mut self.known, workspace, identity)
    }
    fn identities_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<Identity>> {
        identity::identities_of(self.conn, workspace, customers)
    }
    fn delete_identity(&mut self, workspace: &WorkspaceId, key: &IdentityKey) -> StoreResult<()> {
        identity::delete_identity(self.conn, &mut self.known, workspace, key)
    }

    fn insert_merge(&mut self, merge: &MergeRecord) -> StoreResult<()> {
        identity::insert_merge(self.conn, merge)
    }
    fn get_merge(
        &mut self,
        workspace: &WorkspaceId,
        id: &MergeId,
    ) -> StoreResult<Option<MergeRecord>> {
        identity::get_merge(self.conn, workspace, id)
    }
    fn update_merge(&mut self, merge: &MergeRecord) -> StoreResult<()> {
        identity::update_merge(self.conn, merge)
    }
    fn merges_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<MergeRecord>> {
        identity::merges_of(self.conn, workspace, customers)
    }

    fn insert_conflict(&mut self, conflict: &IdentityConflict) -> StoreResult<()> {
        identity::insert_conflict(self.conn, conflict)
    }
    fn update_conflict(&mut self, conflict: &IdentityConflict) -> StoreResult<()> {
        identity::update_conflict(self.conn, conflict)
    }
    fn get_conflict(
        &mut self,
        workspace: &WorkspaceId,
        id: &ConflictId,
    ) -> StoreResult<Option<IdentityConflict>> {
        identity::get_conflict(self.conn, workspace, id)
    }
    fn list_conflicts(
        &mut self,
        workspace: &WorkspaceId,
        open_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<IdentityConflict>> {
        identity::list_conflicts(self.conn, workspace, open_only, limit)
    }

    fn existing_message_ids(
        &mut self,
        workspace: &WorkspaceId,
        message_ids: &[String],
    ) -> StoreResult<Vec<String>> {
        events::existing_message_ids(self.conn, &mut self.known, workspace, message_ids)
    }
    fn insert_events(&mut self, events: &[Event]) -> StoreResult<Vec<bool>> {
        events::insert_events(self.conn, &mut self.known, events)
    }
    fn timeline(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
        query: &TimelineQuery,
    ) -> StoreResult<Vec<Event>> {
        events::timeline(self.conn, &mut self.known, workspace, customers, query)
    }
    fn count_events(&mut self, workspace: &WorkspaceId) -> StoreResult<i64> {
        events::count_events(self.conn, &mut self.known, workspace)
    }

    fn insert_order(&mut self, order: &Order) -> StoreResult<bool> {
        orders::insert_order(self.conn, order)
    }
    fn orders_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
        limit: i64,
    ) -> StoreResult<Vec<Order>> {
        orders::orders_of(self.conn, workspace, customers, limit)
    }
    fn list_orders(
        &mut self,
        workspace: &WorkspaceId,
        after: Option<&OrderId>,
        limit: i64,
    ) -> StoreResult<Vec<Order>> {
        orders::list_orders(self.conn, workspace, after, limit)
    }
    fn order_stats_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<OrderStats> {
        orders::order_stats_of(self.conn, workspace, customers)
    }

    fn insert_import(&mut self, import: &ImportRun) -> StoreResult<()> {
        imports::insert_import(self.conn, import)
    }
    fn update_import(&mut self, import: &ImportRun) -> StoreResult<()> {
        imports::update_import(self.conn, import)
    }
    fn get_import(
        &mut self,
        workspace: &WorkspaceId,
        id: &ImportId,
    ) -> StoreResult<Option<ImportRun>> {
        imports::get_import(self.conn, workspace, id)
    }
    fn list_imports(&mut self, workspace: &WorkspaceId, limit: i64) -> StoreResult<Vec<ImportRun>> {
        imports::list_imports(self.conn, workspace, limit)
    }

    fn named_events(
        &mut self,
        workspace: &WorkspaceId,
        query: &NamedEventQuery,
    ) -> StoreResult<Vec<NamedEvent>> {
        events::named_events(self.conn, &mut self.known, workspace, query)
    }
    fn count_named_events(
        &mut self,
        workspace: &WorkspaceId,
        query: &NamedEventQuery,
    ) -> StoreResult<Vec<(CustomerId, i64)>> {
        events::count_named_events(self.conn, &mut self.known, workspace, query)
    }
    fn scan_named_events(
        &mut self,
        workspace: &WorkspaceId,
        query: &NamedEventQuery,
        with_properties: bool,
        visit: &mut dyn FnMut(NamedEvent),
    ) -> StoreResult<()> {
        events::scan_named_events(
            self.conn,
            &mut self.known,
            workspace,
            query,
            with_properties,
            visit,
        )
    }
    fn scan_customer_summaries(
        &mut self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(CustomerSummary),
    ) -> StoreResult<()> {
        customers::scan_customer_summaries(self.conn, workspace, visit)
    }
    fn scan_order_summaries(
        &mut self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(OrderSummary),
    ) -> StoreResult<()> {
        orders::scan_order_summaries(self.conn, workspace, visit)
    }
    fn merged_profiles(
        &mut self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<(CustomerId, CustomerId)>> {
        customers::merged_profiles(self.conn, workspace)
    }

    fn get_setting(&mut self, workspace: &WorkspaceId, key: &str) -> StoreResult<Option<Value>> {
        segments::get_setting(self.conn, workspace, key)
    }
    fn put_setting(
        &mut self,
        workspace: &WorkspaceId,
        key: &str,
        value: &Value,
    ) -> StoreResult<()> {
        segments::put_setting(self.conn, workspace, key, value)
    }

    fn insert_segment(&mut self, segment: &SegmentRecord) -> StoreResult<()> {
        segments::insert_segment(self.conn, segment)
    }
    fn update_segment(&mut self, segment: &SegmentRecord) -> StoreResult<()> {
        segments::update_segment(self.conn, segment)
    }
    fn get_segment(
        &mut self,
        workspace: &WorkspaceId,
        id: &SegmentId,
    ) -> StoreResult<Option<SegmentRecord>> {
        segments::get_segment(self.conn, workspace, id)
    }
    fn segment_by_name(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
    ) -> StoreResult<Option<SegmentRecord>> {
        segments::segment_by_name(self.conn, workspace, name)
    }
    fn list_segments(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<SegmentRecord>> {
        segments::list_segments(self.conn, workspace)
    }
    fn delete_segment(&mut self, workspace: &WorkspaceId, id: &SegmentId) -> StoreResult<()> {
        segments::delete_segment(self.conn, workspace, id)
    }
    fn add_segment_members(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        customers: &[CustomerId],
        since: Timestamp,
    ) -> StoreResult<i64> {
        segments::add_segment_members(self.conn, workspace, segment, customers, since)
    }
    fn remove_segment_members(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        customers: &[CustomerId],
    ) -> StoreResult<i64> {
        segments::remove_segment_members(self.conn, workspace, segment, customers)
    }
    fn memberships_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<(SegmentId, CustomerId, Timestamp)>> {
        segments::memberships_of(self.conn, workspace, customers)
    }
    fn segment_members(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        after: Option<&CustomerId>,
        limit: i64,
    ) -> StoreResult<Vec<CustomerId>> {
        segments::segment_members(self.conn, workspace, segment, after, limit)
    }
    fn insert_segment_count(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        point: &SegmentCount,
    ) -> StoreResult<()> {
        segments::insert_segment_count(self.conn, workspace, segment, point)
    }
    fn segment_counts(
        &mut self,
        workspace: &WorkspaceId,
        segment: &SegmentId,
        since: Timestamp,
    ) -> StoreResult<Vec<SegmentCount>> {
        segments::segment_counts(self.conn, workspace, segment, since)
    }

    fn mark_dirty(&mut self, workspace: &WorkspaceId, customers: &[CustomerId]) -> StoreResult<()> {
        segments::mark_dirty(self.conn, workspace, customers)
    }
    fn take_dirty(&mut self, limit: i64) -> StoreResult<Vec<DirtyCustomer>> {
        segments::take_dirty(self.conn, limit)
    }
    fn dirty_of(&mut self, workspace: &WorkspaceId, limit: i64) -> StoreResult<Vec<CustomerId>> {
        segments::dirty_of(self.conn, workspace, limit)
    }
    fn clear_dirty(&mut self, customers: &[DirtyCustomer]) -> StoreResult<()> {
        segments::clear_dirty(self.conn, customers)
    }

    fn computed_of(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<CustomerComputed>> {
        segments::computed_of(self.conn, workspace, customers)
    }
    fn set_stages(
        &mut self,
        workspace: &WorkspaceId,
        stages: &[(CustomerId, Stage, Timestamp)],
    ) -> StoreResult<()> {
        segments::set_stages(self.conn, workspace, stages)
    }
    fn set_scores(
        &mut self,
        workspace: &WorkspaceId,
        scores: &[(CustomerId, Map<String, Value>)],
        at: Timestamp,
    ) -> StoreResult<()> {
        segments::set_scores(self.conn, workspace, scores, at)
    }
    fn stage_counts(&mut self, workspace: &WorkspaceId) -> StoreResult<Vec<(Stage, i64)>> {
        segments::stage_counts(self.conn, workspace)
    }
    fn insert_stage_changes(
        &mut self,
        workspace: &WorkspaceId,
        changes: &[StageChange],
    ) -> StoreResult<()> {
        segments::insert_stage_changes(self.conn, workspace, changes)
    }
    fn stage_history(
        &mut self,
        workspace: &WorkspaceId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<StageChange>> {
        segments::stage_history(self.conn, workspace, customers)
    }
    fn stage_transitions(
        &mut self,
        workspace: &WorkspaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<StageTransition>> {
        segments::stage_transitions(self.conn, workspace, from, to)
    }
}
