//! The segment index: per workspace, the columns a whole-workspace segment evaluation reads,
//! kept in memory so a preview or a new segment over a million customers is computed in
//! milliseconds by [`ColumnarInput`] instead of reading every profile from the store.
//!
//! What is kept is only what definitions have asked for: an attribute column is loaded (one
//! scan of the profiles) the first time a definition tests that attribute, an event column
//! (one indexed scan of that event name) the first time a definition counts that event, with
//! the property paths its filters read, and a segment's membership (from the stored members)
//! the first time one refers to it. Rows are profiles: merged-away ones too, because their
//! events still count for the profile they were merged into.
//!
//! Staying current: every change to a profile marks it in the evaluation queue (`evaluate`),
//! in the transaction that changed it. The index re-reads, before each use and in the same read
//! transaction as the evaluation, the profiles still in the queue and those the evaluator of
//! this process cleared since the last use (it reports them here). Bulk membership writes
//! (a new segment, the scheduled pass) replace that segment's bits directly. When more than
//! [`MAX_TOUCHED`] profiles changed since the last use (a large import, the hourly scores job)
//! the workspace's index is dropped and rebuilt on next use, which is cheaper than re-reading
//! them one by one. While more than that many wait in the queue (the evaluator far behind a
//! bulk load), an index rebuilt within the last minute is used as it is: it is then up to a
//! minute behind, rather than every preview paying for a rebuild.
//!
//! With several processes on one PostgreSQL database, each keeps its own index and hears only
//! its own evaluator: profiles another process evaluated are re-read when they change again,
//! or when the index is rebuilt (see ARCHITECTURE.md).

use crate::evaluate::{newest_page, MergedProfiles, Plan};
use ciclo_domain::customer::{Customer, OrderStats};
use ciclo_domain::ids::{CustomerId, SegmentId, WorkspaceId};
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::segment::{
    attribute_cell, Bits, Cell, Column, ColumnarInput, CustomerSnapshot, EventColumn,
    EventColumnBuilder, Expr, ProfileEvent,
};
use ciclo_domain::Timestamp;
use ciclo_store::{NamedEventQuery, StoreResult, Tx};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Attributes a [`ciclo_store::CustomerSummary`] holds, loaded without reading whole profiles.
const SUMMARY_ATTRIBUTES: [&str; 9] = [
    "name",
    "created_at",
    "first_seen_at",
    "last_seen_at",
    "orders_count",
    "total_spent",
    "average_order_value",
    "first_order_at",
    "last_order_at",
];

/// Computed attributes (scores) of a page of profiles.
type Scores = HashMap<CustomerId, Map<String, Value>>;

/// Past this many changed profiles since the last use, the index is rebuilt instead.
pub(crate) const MAX_TOUCHED: usize = 50_000;
/// With more than [`MAX_TOUCHED`] profiles waiting in the queue, an index rebuilt this recently
/// is used as it is rather than rebuilt again.
const BACKLOG_REBUILD_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Profiles read per store call while loading or catching up.
const PAGE: usize = 1_000;
/// The attribute derived from order stats at evaluation time (it depends on `now`).
const STAGE: &str = "lifecycle_stage";
/// The order-stat columns the stage is derived from.
const STAGE_INPUTS: [&str; 4] = [
    "orders_count",
    "total_spent",
    "first_order_at",
    "last_order_at",
];

/// The indexes of this process, by workspace.
pub(crate) struct IndexRegistry {
    workspaces: Mutex<HashMap<WorkspaceId, Arc<IndexSlot>>>,
    /// Changed profiles past which an index is rebuilt ([`MAX_TOUCHED`]; lower in tests).
    pub(crate) rebuild_after: std::sync::atomic::AtomicUsize,
}

impl Default for IndexRegistry {
    fn default() -> Self {
        IndexRegistry {
            workspaces: Mutex::default(),
            rebuild_after: std::sync::atomic::AtomicUsize::new(MAX_TOUCHED),
        }
    }
}

/// One workspace's index, and the profiles changed since its last use. The two are locked
/// apart so that the evaluator never waits for an index being loaded to report its changes.
#[derive(Default)]
pub(crate) struct IndexSlot {
    pub index: Mutex<WorkspaceIndex>,
    changes: Mutex<Changes>,
}

#[derive(Default)]
struct Changes {
    ids: HashSet<u128>,
    /// More changes than re-reading is worth: rebuild.
    overflowed: bool,
}

impl IndexSlot {
    /// The index, locked (a panic while it was held leaves it to be rebuilt).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, WorkspaceIndex> {
        self.index.lock().unwrap_or_else(|poisoned| {
            let mut index = poisoned.into_inner();
            index.overflowed = true;
            index
        })
    }

    /// Makes the index able to evaluate `exprs` and current (see
    /// [`WorkspaceIndex::prepare`]).
    pub fn prepare(
        &self,
        index: &mut WorkspaceIndex,
        tx: &mut dyn Tx,
        plan: &Plan,
        exprs: &[&Expr],
    ) -> StoreResult<bool> {
        let (changed, overflowed) = {
            let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
            (
                std::mem::take(&mut changes.ids),
                std::mem::take(&mut changes.overflowed),
            )
        };
        index.overflowed |= overflowed;
        let result = index.prepare(tx, plan, exprs, changed);
        if result.is_err() {
            // What was drained above is lost: start over next time.
            index.overflowed = true;
        }
        result
    }
}

impl IndexRegistry {
    /// The workspace's index (empty until first used).
    pub fn of(&self, ws: &WorkspaceId) -> Arc<IndexSlot> {
        let mut all = self.workspaces.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(ws.clone()).or_default().clone()
    }

    fn existing(&self, ws: &WorkspaceId) -> Option<Arc<IndexSlot>> {
        let all = self.workspaces.lock().unwrap_or_else(|e| e.into_inner());
        all.get(ws).cloned()
    }

    /// Workspaces whose index must be rebuilt (too many changes since its last use).
    pub fn overflowed(&self) -> Vec<WorkspaceId> {
        let all = self.workspaces.lock().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .filter(|(_, slot)| {
                slot.changes.lock().map(|c| c.overflowed).unwrap_or(true)
                    || slot.index.try_lock().map(|i| i.overflowed).unwrap_or(false)
            })
            .map(|(ws, _)| ws.clone())
            .collect()
    }

    /// The evaluator of this process has cleared these profiles of the queue.
    pub fn touched(&self, ws: &WorkspaceId, ids: &[CustomerId]) {
        let Some(slot) = self.existing(ws) else {
            return;
        };
        let mut changes = slot.changes.lock().unwrap_or_else(|e| e.into_inner());
        if changes.overflowed {
            return;
        }
        for id in ids {
            match number(id) {
                Some(n) => {
                    changes.ids.insert(n);
                }
                None => changes.overflowed = true,
            }
        }
        if changes.ids.len()
            > self
                .rebuild_after
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            changes.overflowed = true;
            changes.ids = HashSet::new();
        }
    }

    /// Forgets a workspace's stored membership of a segment (it was rewritten in bulk).
    pub fn forget_segment(&self, ws: &WorkspaceId, segment: &SegmentId) {
        if let Some(slot) = self.existing(ws) {
            slot.lock().segments.remove(segment);
        }
    }
}

/// The columns of one workspace. See the module documentation.
#[derive(Default)]
pub(crate) struct WorkspaceIndex {
    /// Id number of each row. The first `sorted` rows are in descending order (the initial
    /// scan reads newest first) and found by binary search; rows added later are found through
    /// `extra`. At a million profiles this is 16 MB where a map of every id would be 50.
    ids: Vec<u128>,
    sorted: usize,
    extra: HashMap<u128, u32>,
    /// Surviving profiles.
    alive: Bits,
    /// The profile each row was merged into (itself when it survives).
    parent: Vec<u32>,
    columns: HashMap<String, Column>,
    events: HashMap<String, EventColumn>,
    /// Stored membership of segments definitions referred to.
    pub(crate) segments: HashMap<SegmentId, Bits>,
    /// Whether the rows are the workspace's profiles (loaded once, then kept up to date).
    built: bool,
    /// Must be rebuilt before use (an id it cannot number, a failed catch-up, too many changes).
    overflowed: bool,
    /// When the rows were last loaded from scratch.
    built_at: Option<std::time::Instant>,
}

fn number(id: &CustomerId) -> Option<u128> {
    id.to_u128()
}

impl WorkspaceIndex {
    /// The row of a profile, if it has one.
    fn find(&self, id: u128) -> Option<u32> {
        match self.ids[..self.sorted].binary_search_by(|probe| id.cmp(probe)) {
            Ok(row) => Some(row as u32),
            Err(_) => self.extra.get(&id).copied(),
        }
    }

    /// The row of a profile, added when it has none.
    fn row_of(&mut self, id: u128) -> u32 {
        if let Some(row) = self.find(id) {
            return row;
        }
        let row = self.ids.len() as u32;
        let keeps_order =
            self.sorted == self.ids.len() && self.ids.last().is_none_or(|&last| id < last);
        self.ids.push(id);
        if keeps_order {
            self.sorted += 1;
        } else {
            self.extra.insert(id, row);
        }
        self.parent.push(row);
        self.alive.grow(row as usize + 1);
        row
    }

    /// Makes the index able to evaluate `expr` and current: loads what is missing and
    /// re-reads changed profiles. Returns `false` when this workspace cannot be indexed (an id
    /// not made by ciclo), in which case the caller evaluates through the store.
    fn prepare(
        &mut self,
        tx: &mut dyn Tx,
        plan: &Plan,
        exprs: &[&Expr],
        touched: HashSet<u128>,
    ) -> StoreResult<bool> {
        let ws = plan.workspace.id.clone();
        if self.overflowed {
            // Rebuilt with everything it held, so that definitions in use stay fast.
            let attributes: Vec<String> = self.columns.keys().cloned().collect();
            let events: Vec<(String, Vec<String>)> = self
                .events
                .iter()
                .map(|(name, column)| (name.clone(), column.paths().map(str::to_string).collect()))
                .collect();
            *self = WorkspaceIndex::default();
            if !self.load_profiles(tx, &ws)? {
                *self = WorkspaceIndex::default();
                return Ok(false);
            }
            self.built = true;
            self.built_at = Some(std::time::Instant::now());
            if !attributes.is_empty() {
                self.load_attributes(tx, plan, &attributes)?;
            }
            for (name, paths) in events {
                self.load_events(tx, &ws, &name, paths)?;
            }
        }
        if !self.built {
            if !self.load_profiles(tx, &ws)? {
                *self = WorkspaceIndex::default();
                return Ok(false);
            }
            self.built = true;
            self.built_at = Some(std::time::Instant::now());
        } else {
            // Profiles changed since the last use, and those waiting in the queue.
            let mut changed: Vec<u128> = touched.into_iter().collect();
            let queued: Vec<u128> = tx
                .dirty_of(&ws, MAX_TOUCHED as i64 + 1)?
                .iter()
                .filter_map(number)
                .collect();
            let recent = self
                .built_at
                .is_some_and(|at| at.elapsed() < BACKLOG_REBUILD_EVERY);
            if queued.len() <= MAX_TOUCHED || !recent {
                changed.extend(queued);
            }
            // Otherwise the evaluator is far behind (a bulk load): the index, rebuilt less than
            // BACKLOG_REBUILD_EVERY ago, is at most that much behind the queued profiles, where
            // rebuilding on every use would make every preview as slow as a first load.
            changed.sort_unstable();
            changed.dedup();
            if changed.len() > MAX_TOUCHED {
                self.overflowed = true;
                return self.prepare(tx, plan, exprs, HashSet::new());
            }
            for chunk in changed.chunks(PAGE) {
                let ids: Vec<CustomerId> =
                    chunk.iter().map(|&n| CustomerId::from_u128(n)).collect();
                self.refresh(tx, plan, &ids)?;
            }
        }
        let mut attributes: Vec<String> = Vec::new();
        let mut events: Vec<(String, Vec<String>)> = Vec::new();
        let mut segments: Vec<SegmentId> = Vec::new();
        for expr in exprs {
            let missing = self
                .input(plan, Timestamp::default(), &|_| None)
                .missing(expr);
            for a in missing.attributes {
                if !attributes.contains(&a) {
                    attributes.push(a);
                }
            }
            events.extend(missing.events);
            expr.walk(&mut |node| {
                if let Expr::Segment(condition) = node {
                    if let Some(i) = plan.find(&condition.segment) {
                        let id = &plan.segments[i].record.id;
                        if !self.segments.contains_key(id) && !segments.contains(id) {
                            segments.push(id.clone());
                        }
                    }
                }
            });
        }
        // The stage is derived from order stats.
        if attributes.iter().any(|a| a == STAGE) {
            attributes.retain(|a| a != STAGE);
            for input in STAGE_INPUTS {
                if !self.columns.contains_key(input) && !attributes.iter().any(|a| a == input) {
                    attributes.push(input.to_string());
                }
            }
        }
        if !attributes.is_empty() {
            self.load_attributes(tx, plan, &attributes)?;
        }
        for (name, paths) in events {
            self.load_events(tx, &ws, &name, paths)?;
        }
        for id in segments {
            self.load_segment(tx, &ws, &id)?;
        }
        Ok(true)
    }

    /// Rows for every profile: the surviving ones, then the merged-away ones pointing at the
    /// profile they were merged into. Columns are loaded separately.
    fn load_profiles(&mut self, tx: &mut dyn Tx, ws: &WorkspaceId) -> StoreResult<bool> {
        let mut all_ok = true;
        let mut numbers: Vec<u128> = Vec::new();
        tx.scan_customer_summaries(ws, &mut |c| match number(&c.id) {
            Some(n) => numbers.push(n),
            None => all_ok = false,
        })?;
        if !all_ok {
            return Ok(false);
        }
        // Newest first, so rows are found by binary search.
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        numbers.dedup();
        for n in numbers {
            let row = self.row_of(n);
            self.alive.set(row as usize, true);
        }
        if let MergedProfiles::Known { roots, .. } = MergedProfiles::load(tx, ws)? {
            for (loser, root) in roots {
                let (Some(l), Some(r)) = (number(&loser), number(&root)) else {
                    return Ok(false);
                };
                let l = self.row_of(l);
                let r = self.row_of(r);
                self.parent[l as usize] = r;
                self.alive.set(l as usize, false);
            }
        }
        Ok(true)
    }

    /// Every surviving profile's summary, through `visit` (which may add rows).
    fn scan_summaries(
        &mut self,
        tx: &mut dyn Tx,
        ws: &WorkspaceId,
        visit: &mut dyn FnMut(&mut Self, ciclo_store::CustomerSummary),
    ) -> StoreResult<()> {
        tx.scan_customer_summaries(ws, &mut |summary| visit(self, summary))
    }

    /// Pages through the surviving profiles (with their computed attributes when asked).
    fn scan_customers(
        &mut self,
        tx: &mut dyn Tx,
        ws: &WorkspaceId,
        computed: bool,
        visit: &mut dyn FnMut(&mut Self, Vec<Customer>, Scores),
    ) -> StoreResult<()> {
        let mut after: Option<CustomerId> = None;
        loop {
            let query = newest_page(after.clone(), PAGE as i64);
            let page = tx.list_customers(ws, &query)?;
            let n = page.len();
            after = page.last().map(|c| c.id.clone());
            let scores = if computed {
                let ids: Vec<CustomerId> = page.iter().map(|c| c.id.clone()).collect();
                tx.computed_of(ws, &ids)?
                    .into_iter()
                    .map(|c| (c.customer_id, c.scores))
                    .collect()
            } else {
                HashMap::new()
            };
            visit(self, page, scores);
            if n < PAGE {
                return Ok(());
            }
        }
    }

    /// Loads attribute columns with one scan of the profiles.
    fn load_attributes(
        &mut self,
        tx: &mut dyn Tx,
        plan: &Plan,
        names: &[String],
    ) -> StoreResult<()> {
        let computed = names.iter().any(|n| needs_computed(n));
        let mut columns: Vec<(String, Column)> = names
            .iter()
            .map(|n| (n.clone(), Column::for_attribute(n)))
            .collect();
        let tz = plan.tz;
        let ws = plan.workspace.id.clone();
        if names
            .iter()
            .all(|n| SUMMARY_ATTRIBUTES.contains(&n.as_str()))
        {
            // Order stats and dates: the lean summary scan is enough (no traits to parse).
            self.scan_summaries(tx, &ws, &mut |index, summary| {
                let Some(n) = number(&summary.id) else { return };
                let row = index.row_of(n) as usize;
                index.alive.set(row, true);
                let mut customer = Customer::new(summary.id, ws.clone(), summary.created_at);
                customer.name = summary.name;
                customer.first_seen_at = summary.first_seen_at;
                customer.last_seen_at = summary.last_seen_at;
                customer.stats = summary.stats;
                let snapshot = CustomerSnapshot::new(customer, tz);
                for (name, column) in &mut columns {
                    column.set(row, attribute_cell(name, &snapshot));
                }
            })?;
            for (name, column) in columns {
                self.columns.insert(name, column);
            }
            return Ok(());
        }
        self.scan_customers(
            tx,
            &plan.workspace.id,
            computed,
            &mut |index, page, mut scores| {
                for c in page {
                    let Some(n) = number(&c.id) else { continue };
                    let row = index.row_of(n) as usize;
                    index.alive.set(row, true);
                    let mut snapshot = CustomerSnapshot::new(c, tz);
                    if let Some(s) = scores.remove(&snapshot.customer.id) {
                        snapshot.computed = s;
                    }
                    for (name, column) in &mut columns {
                        column.set(row, attribute_cell(name, &snapshot));
                    }
                }
            },
        )?;
        for (name, column) in columns {
            self.columns.insert(name, column);
        }
        Ok(())
    }

    /// Loads (or reloads with more property paths) the column of one event name.
    fn load_events(
        &mut self,
        tx: &mut dyn Tx,
        ws: &WorkspaceId,
        name: &str,
        mut paths: Vec<String>,
    ) -> StoreResult<()> {
        if let Some(old) = self.events.get(name) {
            paths.extend(old.paths().map(str::to_string));
        }
        paths.sort();
        paths.dedup();
        let with_properties = !paths.is_empty();
        let mut builder = EventColumnBuilder::new(paths);
        let query = NamedEventQuery {
            name: name.to_string(),
            since: None,
            until: None,
            customers: None,
        };
        let mut unknown = false;
        tx.scan_named_events(ws, &query, with_properties, &mut |event| match number(
            &event.customer_id,
        ) {
            Some(n) => {
                let row = self.row_of(n);
                builder.push(row, event.timestamp, &event.properties);
            }
            None => unknown = true,
        })?;
        if unknown {
            self.overflowed = true;
        }
        self.events.insert(name.to_string(), builder.finish());
        Ok(())
    }

    /// Loads the stored members of a segment.
    fn load_segment(
        &mut self,
        tx: &mut dyn Tx,
        ws: &WorkspaceId,
        segment: &SegmentId,
    ) -> StoreResult<()> {
        let mut bits = Bits::empty(self.ids.len());
        let mut after: Option<CustomerId> = None;
        loop {
            let page = tx.segment_members(ws, segment, after.as_ref(), 10_000)?;
            let n = page.len();
            for id in &page {
                if let Some(number) = number(id) {
                    let row = self.row_of(number);
                    bits.set(row as usize, true);
                }
            }
            after = page.last().cloned();
            if n < 10_000 {
                break;
            }
        }
        self.segments.insert(segment.clone(), bits);
        Ok(())
    }

    /// Re-reads these profiles: their columns, events, merges and memberships.
    fn refresh(&mut self, tx: &mut dyn Tx, plan: &Plan, ids: &[CustomerId]) -> StoreResult<()> {
        let ws = &plan.workspace.id;
        let found = tx.get_customers(ws, ids)?;
        let scores: HashMap<CustomerId, Map<String, Value>> =
            if self.columns.keys().any(|n| needs_computed(n)) {
                tx.computed_of(ws, ids)?
                    .into_iter()
                    .map(|c| (c.customer_id, c.scores))
                    .collect()
            } else {
                HashMap::new()
            };
        let mut seen: HashSet<u128> = HashSet::new();
        let mut scores = scores;
        for c in found {
            let Some(n) = number(&c.id) else {
                self.overflowed = true;
                continue;
            };
            seen.insert(n);
            let row = self.row_of(n);
            match &c.merged_into {
                Some(into) => {
                    self.alive.set(row as usize, false);
                    if let Some(into) = number(into) {
                        let parent = self.row_of(into);
                        self.parent[row as usize] = parent;
                    }
                    for column in self.columns.values_mut() {
                        column.set(row as usize, Cell::Missing);
                    }
                }
                None => {
                    self.alive.set(row as usize, true);
                    self.parent[row as usize] = row;
                    let mut snapshot = CustomerSnapshot::new(c, plan.tz);
                    if let Some(s) = scores.remove(&snapshot.customer.id) {
                        snapshot.computed = s;
                    }
                    for (name, column) in self.columns.iter_mut() {
                        column.set(row as usize, attribute_cell(name, &snapshot));
                    }
                }
            }
        }
        // Profiles that are gone (erased) belong nowhere.
        for id in ids {
            if let Some(n) = number(id) {
                if !seen.contains(&n) {
                    if let Some(row) = self.find(n) {
                        self.alive.set(row as usize, false);
                    }
                }
            }
        }
        // Their events, per loaded event name.
        let names: Vec<String> = self.events.keys().cloned().collect();
        for name in names {
            let query = NamedEventQuery {
                name: name.clone(),
                since: None,
                until: None,
                customers: Some(ids.to_vec()),
            };
            let mut by_profile: HashMap<CustomerId, Vec<ProfileEvent>> = HashMap::new();
            for e in tx.named_events(ws, &query)? {
                by_profile
                    .entry(e.customer_id)
                    .or_default()
                    .push((e.timestamp, e.properties));
            }
            let rows: Vec<(u32, Vec<ProfileEvent>)> = ids
                .iter()
                .filter_map(|id| {
                    let n = number(id)?;
                    let row = self.find(n)?;
                    Some((row, by_profile.remove(id).unwrap_or_default()))
                })
                .collect();
            let Some(column) = self.events.get_mut(&name) else {
                continue;
            };
            for (row, events) in rows {
                column.replace_profile(row, events);
            }
            // Past a tenth of the column kept aside, rebuilding is cheaper than checking.
            if column.replaced_events() > 10_000 && column.replaced_events() * 10 > column.len() {
                let paths: Vec<String> = column.paths().map(str::to_string).collect();
                self.events.remove(&name);
                self.load_events(tx, ws, &name, paths)?;
            }
        }
        // Their memberships of the loaded segments.
        if !self.segments.is_empty() {
            let mut member: HashSet<(SegmentId, u128)> = HashSet::new();
            for (segment, customer, _) in tx.memberships_of(ws, ids)? {
                if let Some(n) = number(&customer) {
                    member.insert((segment, n));
                }
            }
            let rows: Vec<(u32, u128)> = ids
                .iter()
                .filter_map(|id| {
                    let n = number(id)?;
                    Some((self.find(n)?, n))
                })
                .collect();
            for (segment, bits) in self.segments.iter_mut() {
                for &(row, n) in &rows {
                    bits.set(row as usize, member.contains(&(segment.clone(), n)));
                }
            }
        }
        Ok(())
    }

    /// The evaluation input at `now` (without the derived stage column: see
    /// [`WorkspaceIndex::evaluate`]).
    fn input<'a>(
        &'a self,
        plan: &'a Plan,
        now: Timestamp,
        segments: &'a dyn Fn(&str) -> Option<&'a Bits>,
    ) -> ColumnarInput<'a> {
        ColumnarInput {
            len: self.ids.len(),
            alive: &self.alive,
            parent: &self.parent,
            columns: &self.columns,
            events: &self.events,
            segments,
            now,
            tz: plan.tz,
        }
    }

    /// The surviving profiles in `expr` at `now`, reading other segments' membership from
    /// `computed` (evaluated in this pass) or the stored members. Call [`Self::prepare`]
    /// first.
    pub fn evaluate(
        &mut self,
        plan: &Plan,
        expr: &Expr,
        now: Timestamp,
        computed: &HashMap<SegmentId, Bits>,
    ) -> Bits {
        let stage = reads_stage(expr).then(|| self.stage_column(plan, now));
        if let Some(column) = stage {
            self.columns.insert(STAGE.to_string(), column);
        }
        // Merge chains are followed to the surviving profile once per evaluation.
        let roots = self.roots();
        let lookup = |reference: &str| -> Option<&Bits> {
            let i = plan.find(reference)?;
            let id = &plan.segments[i].record.id;
            computed.get(id).or_else(|| self.segments.get(id))
        };
        let input = ColumnarInput {
            parent: &roots,
            ..self.input(plan, now, &lookup)
        };
        let out = input.evaluate(expr);
        self.columns.remove(STAGE);
        out
    }

    fn roots(&self) -> Vec<u32> {
        self.parent
            .iter()
            .map(|&first| {
                let mut r = first;
                for _ in 0..64 {
                    let next = self.parent[r as usize];
                    if next == r {
                        break;
                    }
                    r = next;
                }
                r
            })
            .collect()
    }

    /// Every row's lifecycle stage at `now`, from its order stats and the workspace's rules
    /// (as the evaluator computes it).
    fn stage_column(&self, plan: &Plan, now: Timestamp) -> Column {
        let orders = self.columns.get("orders_count");
        let spent = self.columns.get("total_spent");
        let first = self.columns.get("first_order_at");
        let last = self.columns.get("last_order_at");
        let number_at = |c: Option<&Column>, row: usize| match c {
            Some(Column::Numbers(v)) => v.get(row).copied().filter(|x| !x.is_nan()),
            _ => None,
        };
        let instant_at = |c: Option<&Column>, row: usize| match c {
            Some(Column::Instants(v)) => v
                .get(row)
                .copied()
                .filter(|&t| t != i64::MIN)
                .and_then(chrono::DateTime::from_timestamp_micros),
            _ => None,
        };
        let codes: Vec<u32> = (0..self.ids.len())
            .map(|row| {
                let stats = OrderStats {
                    orders_count: number_at(orders, row).unwrap_or(0.0) as i64,
                    total_spent_minor: (number_at(spent, row).unwrap_or(0.0) * 100.0).round()
                        as i64,
                    first_order_at: instant_at(first, row),
                    last_order_at: instant_at(last, row),
                };
                let stage = plan.rules.stage(&stats, now);
                Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0) as u32
            })
            .collect();
        let values = Stage::ALL
            .iter()
            .map(|s| attribute_cell(STAGE, &stage_snapshot(plan, *s)))
            .collect();
        Column::from_codes(codes, values)
    }

    /// Surviving profiles' ids among `rows`, newest first, at most `limit`.
    pub fn newest(&self, rows: &Bits, limit: usize) -> Vec<CustomerId> {
        let mut ids: Vec<u128> = rows.iter().map(|row| self.ids[row]).collect();
        if ids.len() > limit && limit > 0 {
            let cut = ids.len() - limit;
            ids.select_nth_unstable(cut);
            ids.drain(..cut);
        } else if limit == 0 {
            ids.clear();
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.into_iter().map(CustomerId::from_u128).collect()
    }

    /// The stored membership of a segment (loaded by [`Self::prepare`] or
    /// [`Self::stored_members`]).
    pub fn stored_members(
        &mut self,
        tx: &mut dyn Tx,
        ws: &WorkspaceId,
        segment: &SegmentId,
    ) -> StoreResult<Bits> {
        if !self.segments.contains_key(segment) {
            self.load_segment(tx, ws, segment)?;
        }
        let mut bits = self.segments.get(segment).cloned().unwrap_or_default();
        bits.grow(self.ids.len());
        Ok(bits)
    }

    /// Who is in `members` but not in `stored` (entering) and the other way round (leaving).
    pub fn differences(&self, members: &Bits, stored: &Bits) -> (Vec<CustomerId>, Vec<CustomerId>) {
        let mut entered = Vec::new();
        let mut exited = Vec::new();
        for row in 0..self.ids.len() {
            match (members.get(row), stored.get(row)) {
                (true, false) => entered.push(CustomerId::from_u128(self.ids[row])),
                (false, true) => exited.push(CustomerId::from_u128(self.ids[row])),
                _ => {}
            }
        }
        (entered, exited)
    }

    /// Surviving profiles.
    pub fn alive_count(&self) -> usize {
        self.alive.count()
    }
}

/// A snapshot whose only content is a stage, to read the stage's cell as the evaluator would.
fn stage_snapshot(plan: &Plan, stage: Stage) -> CustomerSnapshot {
    let customer = Customer::new(
        CustomerId::from_u128(0),
        plan.workspace.id.clone(),
        Timestamp::default(),
    );
    CustomerSnapshot::new(customer, plan.tz).with_computed(STAGE, json!(stage.as_str()))
}

fn reads_stage(expr: &Expr) -> bool {
    let mut found = false;
    expr.walk(&mut |node| {
        if let Expr::Attribute(condition) = node {
            found |= ciclo_domain::segment::fields::canonical(&condition.attribute) == STAGE;
        }
    });
    found
}

/// Whether an attribute is read from the computed attributes (scores) rather than the profile.
fn needs_computed(name: &str) -> bool {
    use ciclo_domain::segment::fields::{resolve, Attribute};
    matches!(
        resolve(name),
        Some((Attribute::Computed(_) | Attribute::OtherComputed(_), _))
    )
}
