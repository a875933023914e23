//! Keeps segment membership and lifecycle stages current.
//!
//! * **Real time.** Every write that changes a profile (ingestion, imports, edits, merges)
//!   marks the customer in the store's evaluation queue *in the same transaction*
//!   (`Tx::mark_dirty`), so a crash cannot lose a change. The evaluator drains the queue: for
//!   each marked customer it computes the lifecycle stage and every dynamic segment, writes the
//!   differences (members in and out, stage history) and records each move as an event on the
//!   customer's timeline (`Segment Entered`, `Segment Exited`, `Lifecycle Stage Changed`), all in
//!   one transaction that also clears the marks. The background thread started by
//!   [`Ciclo::start_background`] is woken by ingestion and wakes itself every second, so a
//!   change shows within about a second.
//! * **On a schedule.** Conditions that change with time alone ("no order for 90 days", "in
//!   the last 7 days", birthdays) and the lifecycle stages (which age) are re-evaluated for every
//!   customer by a full pass ([`Ciclo::refresh_workspace`]) every few minutes.
//! * **From scratch.** Saving a segment evaluates it (and the segments that include it) over
//!   every customer; a preview does the same without writing.
//!
//! The rules themselves are in `ciclo_domain::segment` and `ciclo_domain::lifecycle`; this module
//! gathers what they need in batches (one query per event requirement per batch) and writes what
//! they decide.

use crate::error::CoreResult;
use crate::identity::merge_set;
use crate::Ciclo;
use chrono_tz::Tz;
use ciclo_domain::customer::Customer;
use ciclo_domain::event::{Event, EventType};
use ciclo_domain::ids::{CustomerId, EventId, SegmentId, WorkspaceId};
use ciclo_domain::lifecycle::{LifecycleRules, Stage};
use ciclo_domain::operator::Workspace;
use ciclo_domain::segment::{
    depends_on, event_requirements, matches, Bits, CustomerSnapshot, Dependencies,
    EventRequirement, Expr,
};
use ciclo_domain::Timestamp;
use ciclo_store::{
    read, write, CustomerCursor, CustomerQuery, CustomerSort, NamedEventQuery, SegmentCount,
    SegmentKind, SegmentRecord, StageChange, StoreError, StoreResult, Tx,
};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Timeline event recorded when a customer enters a segment or list.
pub const SEGMENT_ENTERED: &str = "Segment Entered";
/// Timeline event recorded when a customer leaves a segment or list.
pub const SEGMENT_EXITED: &str = "Segment Exited";
/// Timeline event recorded when a customer's lifecycle stage changes.
pub const STAGE_CHANGED: &str = "Lifecycle Stage Changed";
/// The workspace setting that holds the lifecycle rules.
pub const LIFECYCLE_RULES_SETTING: &str = "lifecycle_rules";

/// Customers per evaluation transaction: large enough to amortise the per-requirement queries,
/// small enough to keep the write lock short.
const BATCH: i64 = 1_000;

/// The workspace's lifecycle rules (the defaults until an operator changes them).
pub(crate) fn lifecycle_rules(tx: &mut dyn Tx, ws: &WorkspaceId) -> StoreResult<LifecycleRules> {
    Ok(tx
        .get_setting(ws, LIFECYCLE_RULES_SETTING)?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

/// The workspace's calendar (UTC when the setting is unusable).
pub(crate) fn workspace_tz(workspace: &Workspace) -> Tz {
    workspace.time_zone.parse().unwrap_or(Tz::UTC)
}

/// One segment ready to evaluate.
pub(crate) struct Compiled {
    pub record: SegmentRecord,
    pub deps: Dependencies,
}

impl Compiled {
    fn expr(&self) -> Option<&Expr> {
        self.record.definition.as_ref()
    }
}

/// Everything needed to evaluate the customers of one workspace.
pub(crate) struct Plan {
    pub workspace: Workspace,
    pub tz: Tz,
    pub rules: LifecycleRules,
    /// Every segment, referenced ones before the ones that include them.
    pub segments: Vec<Compiled>,
    /// Segment position by id and by lower-cased name.
    index: HashMap<String, usize>,
}

impl Plan {
    pub fn load(tx: &mut dyn Tx, ws: &WorkspaceId) -> StoreResult<Plan> {
        let workspace = tx.get_workspace(ws)?.ok_or(StoreError::NotFound)?;
        let rules = lifecycle_rules(tx, ws)?;
        let records = tx.list_segments(ws)?;
        Ok(Plan::new(workspace, rules, records))
    }

    pub fn new(workspace: Workspace, rules: LifecycleRules, records: Vec<SegmentRecord>) -> Plan {
        let tz = workspace_tz(&workspace);
        let mut plan = Plan {
            workspace,
            tz,
            rules,
            segments: Vec::new(),
            index: HashMap::new(),
        };
        // Depth-first: a segment goes after every segment it refers to. Loops are refused on
        // save; should one exist anyway, the segment on the loop is placed once and the reference
        // that closes it reads stored membership.
        let mut by_key: HashMap<String, usize> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            by_key.insert(r.id.as_str().to_string(), i);
            by_key.insert(r.name.to_lowercase(), i);
        }
        let mut order = Vec::with_capacity(records.len());
        let mut state = vec![0u8; records.len()]; // 0 new, 1 visiting, 2 placed
        fn visit(
            i: usize,
            records: &[SegmentRecord],
            by_key: &HashMap<String, usize>,
            state: &mut [u8],
            order: &mut Vec<usize>,
        ) {
            if state[i] != 0 {
                return;
            }
            state[i] = 1;
            if let Some(expr) = &records[i].definition {
                for reference in depends_on(expr).segments {
                    if let Some(&j) = by_key.get(&reference.to_lowercase()) {
                        visit(j, records, by_key, state, order);
                    }
                }
            }
            state[i] = 2;
            order.push(i);
        }
        for i in 0..records.len() {
            visit(i, &records, &by_key, &mut state, &mut order);
        }
        let mut slots: Vec<Option<SegmentRecord>> = records.into_iter().map(Some).collect();
        for i in order {
            let Some(record) = slots[i].take() else {
                continue;
            };
            let deps = record
                .definition
                .as_ref()
                .map(depends_on)
                .unwrap_or_default();
            let position = plan.segments.len();
            plan.index.insert(record.id.as_str().to_string(), position);
            plan.index.insert(record.name.to_lowercase(), position);
            plan.segments.push(Compiled { record, deps });
        }
        plan
    }

    /// The position of the segment a reference (name or id) names.
    pub fn find(&self, reference: &str) -> Option<usize> {
        self.index
            .get(reference)
            .or_else(|| self.index.get(&reference.to_lowercase()))
            .copied()
    }

    /// Every dynamic segment.
    pub fn all_dynamic(&self) -> Vec<usize> {
        (0..self.segments.len())
            .filter(|&i| self.segments[i].record.kind == SegmentKind::Dynamic)
            .collect()
    }

    /// The given segments and every dynamic segment that includes one of them, directly or not,
    /// in evaluation order.
    pub fn with_dependents(&self, roots: &[usize]) -> Vec<usize> {
        let mut chosen: HashSet<usize> = roots.iter().copied().collect();
        // Segments come after what they include, so one forward sweep closes the set.
        for (i, s) in self.segments.iter().enumerate() {
            if s.record.kind == SegmentKind::Dynamic
                && s.deps
                    .segments
                    .iter()
                    .any(|r| self.find(r).is_some_and(|j| chosen.contains(&j)))
            {
                chosen.insert(i);
            }
        }
        let mut out: Vec<usize> = chosen.into_iter().collect();
        out.sort_unstable();
        out
    }

    /// What the scheduled pass evaluates: dynamic segments whose membership can change with
    /// time alone, and any never evaluated (a first evaluation that failed), with their
    /// dependents.
    /// The segments a pass evaluates: `None`, the scheduled ones; `Some`, these and the
    /// segments that include them.
    pub fn chosen(&self, segments: Option<&[SegmentId]>) -> Vec<usize> {
        match segments {
            None => self.scheduled(),
            Some(ids) => {
                let roots: Vec<usize> =
                    ids.iter().filter_map(|id| self.find(id.as_str())).collect();
                self.with_dependents(&roots)
            }
        }
    }

    pub fn scheduled(&self) -> Vec<usize> {
        let roots: Vec<usize> = (0..self.segments.len())
            .filter(|&i| {
                let s = &self.segments[i];
                s.record.kind == SegmentKind::Dynamic
                    && (s.deps.time_relative || s.record.evaluated_at.is_none())
            })
            .collect();
        self.with_dependents(&roots)
    }

    /// The distinct event counts the chosen segments (and `extra`) need.
    fn requirements(&self, chosen: &[usize], extra: Option<&Expr>) -> Vec<EventRequirement> {
        let mut out: Vec<EventRequirement> = Vec::new();
        let exprs = chosen
            .iter()
            .filter_map(|&i| self.segments[i].expr())
            .chain(extra);
        for expr in exprs {
            for r in event_requirements(expr) {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    }
}

/// Where the other profiles of a merged customer come from.
pub(crate) enum MergedProfiles {
    /// Asked of the store per customer (few customers).
    PerCustomer,
    /// Known for the whole workspace (a full pass): root → profiles merged into it, and each
    /// merged-away profile → its root.
    Known {
        children: HashMap<CustomerId, Vec<CustomerId>>,
        roots: HashMap<CustomerId, CustomerId>,
    },
}

impl MergedProfiles {
    /// Loads the whole workspace's merges, chains followed to the surviving profile.
    pub fn load(tx: &mut dyn Tx, ws: &WorkspaceId) -> StoreResult<MergedProfiles> {
        let pairs = tx.merged_profiles(ws)?;
        let parent: HashMap<CustomerId, CustomerId> = pairs.into_iter().collect();
        let mut by_root: HashMap<CustomerId, Vec<CustomerId>> = HashMap::new();
        let mut roots: HashMap<CustomerId, CustomerId> = HashMap::new();
        for loser in parent.keys() {
            let mut root = loser;
            for _ in 0..64 {
                match parent.get(root) {
                    Some(next) => root = next,
                    None => break,
                }
            }
            by_root.entry(root.clone()).or_default().push(loser.clone());
            roots.insert(loser.clone(), root.clone());
        }
        Ok(MergedProfiles::Known {
            children: by_root,
            roots,
        })
    }

    /// The surviving profile a merged-away one belongs to (none for a surviving profile, or
    /// when merges are looked up per customer).
    pub fn root_of(&self, profile: &CustomerId) -> Option<CustomerId> {
        match self {
            MergedProfiles::PerCustomer => None,
            MergedProfiles::Known { roots, .. } => roots.get(profile).cloned(),
        }
    }

    fn profiles_of(
        &self,
        tx: &mut dyn Tx,
        ws: &WorkspaceId,
        root: &CustomerId,
    ) -> StoreResult<Vec<CustomerId>> {
        match self {
            MergedProfiles::PerCustomer => merge_set(tx, ws, root),
            MergedProfiles::Known { children, .. } => {
                let mut set = vec![root.clone()];
                if let Some(children) = children.get(root) {
                    set.extend(children.iter().cloned());
                }
                Ok(set)
            }
        }
    }
}

/// What one batch decided, before it is written.
#[derive(Default)]
pub(crate) struct Outcome {
    /// Per evaluated segment: customers entering and leaving.
    pub entered: HashMap<usize, Vec<CustomerId>>,
    pub exited: HashMap<usize, Vec<CustomerId>>,
    pub stage_changes: Vec<StageChange>,
    /// For a preview: the customers matching the extra expression.
    pub matching: Vec<Customer>,
    pub matching_count: usize,
}

/// What to evaluate in a batch.
pub(crate) struct Evaluation<'a> {
    pub plan: &'a Plan,
    /// Positions of the segments to compute (in evaluation order).
    pub chosen: Vec<usize>,
    /// Whether to compute lifecycle stages.
    pub lifecycle: bool,
    /// A definition being previewed: matches are collected, nothing is written.
    pub preview: Option<&'a Expr>,
    /// How many matching customers a preview keeps.
    pub sample: usize,
    pub now: Timestamp,
    requirements: Vec<EventRequirement>,
}

impl<'a> Evaluation<'a> {
    pub fn new(plan: &'a Plan, chosen: Vec<usize>, lifecycle: bool, now: Timestamp) -> Self {
        let requirements = plan.requirements(&chosen, None);
        Evaluation {
            plan,
            chosen,
            lifecycle,
            preview: None,
            sample: 0,
            now,
            requirements,
        }
    }

    pub fn preview(plan: &'a Plan, expr: &'a Expr, sample: usize, now: Timestamp) -> Self {
        // Segments the preview refers to are read from stored membership.
        let requirements = plan.requirements(&[], Some(expr));
        Evaluation {
            plan,
            chosen: Vec::new(),
            lifecycle: false,
            preview: Some(expr),
            sample,
            now,
            requirements,
        }
    }

    /// Evaluates a batch of surviving profiles and adds what it decided to `outcome`.
    pub fn run(
        &self,
        tx: &mut dyn Tx,
        customers: Vec<Customer>,
        merged: &MergedProfiles,
        outcome: &mut Outcome,
    ) -> StoreResult<()> {
        if customers.is_empty() {
            return Ok(());
        }
        let plan = self.plan;
        let ws = plan.workspace.id.clone();
        let ids: Vec<CustomerId> = customers.iter().map(|c| c.id.clone()).collect();
        let computed: HashMap<CustomerId, ciclo_store::CustomerComputed> = tx
            .computed_of(&ws, &ids)?
            .into_iter()
            .map(|c| (c.customer_id.clone(), c))
            .collect();
        let mut memberships: HashMap<CustomerId, HashSet<SegmentId>> = HashMap::new();
        for (segment, customer, _) in tx.memberships_of(&ws, &ids)? {
            memberships.entry(customer).or_default().insert(segment);
        }
        let counts = self.count_events(tx, &ws, &ids, merged)?;
        for (n, customer) in customers.into_iter().enumerate() {
            let id = customer.id.clone();
            let old = computed.get(&id);
            let stage = plan.rules.stage(&customer.stats, self.now);
            if self.lifecycle && old.and_then(|c| c.stage) != Some(stage) {
                outcome.stage_changes.push(StageChange {
                    customer_id: id.clone(),
                    from: old.and_then(|c| c.stage),
                    to: stage,
                    at: self.now,
                });
            }
            let mut snapshot = CustomerSnapshot::new(customer, plan.tz);
            if let Some(c) = old {
                snapshot.computed = c.scores.clone();
            }
            snapshot
                .computed
                .insert("lifecycle_stage".into(), json!(stage.as_str()));
            for (r, per_customer) in self.requirements.iter().zip(&counts) {
                snapshot.event_counts.set(r.clone(), per_customer[n]);
            }
            let current = memberships.remove(&id).unwrap_or_default();
            let mut now_in: HashMap<usize, bool> = HashMap::new();
            for &i in &self.chosen {
                let Some(expr) = plan.segments[i].expr() else {
                    continue;
                };
                let member = {
                    let lookup = |reference: &str| in_segment(plan, reference, &now_in, &current);
                    matches(expr, &snapshot, self.now, &lookup)
                };
                now_in.insert(i, member);
                let was = current.contains(&plan.segments[i].record.id);
                if member && !was {
                    outcome.entered.entry(i).or_default().push(id.clone());
                } else if !member && was {
                    outcome.exited.entry(i).or_default().push(id.clone());
                }
            }
            if let Some(expr) = self.preview {
                let lookup = |reference: &str| in_segment(plan, reference, &now_in, &current);
                if matches(expr, &snapshot, self.now, &lookup) {
                    outcome.matching_count += 1;
                    if outcome.matching.len() < self.sample {
                        outcome.matching.push(snapshot.customer);
                    }
                }
            }
        }
        Ok(())
    }

    /// Per requirement, the count of each customer (in the order of `ids`), over all the
    /// profiles merged into it.
    fn count_events(
        &self,
        tx: &mut dyn Tx,
        ws: &WorkspaceId,
        ids: &[CustomerId],
        merged: &MergedProfiles,
    ) -> StoreResult<Vec<Vec<u64>>> {
        if self.requirements.is_empty() {
            return Ok(Vec::new());
        }
        let mut owner: HashMap<CustomerId, usize> = HashMap::with_capacity(ids.len());
        let mut profiles = Vec::with_capacity(ids.len());
        for (n, id) in ids.iter().enumerate() {
            for p in merged.profiles_of(tx, ws, id)? {
                owner.insert(p.clone(), n);
                profiles.push(p);
            }
        }
        let mut out = Vec::with_capacity(self.requirements.len());
        for r in &self.requirements {
            let bounds = r.window.bounds(self.now, self.plan.tz);
            let query = NamedEventQuery {
                name: r.event.clone(),
                since: bounds.since,
                until: bounds.until,
                customers: Some(profiles.clone()),
            };
            let mut counts = vec![0u64; ids.len()];
            if r.filters.is_empty() {
                for (customer, n) in tx.count_named_events(ws, &query)? {
                    if let Some(&i) = owner.get(&customer) {
                        counts[i] += n.max(0) as u64;
                    }
                }
            } else {
                for e in tx.named_events(ws, &query)? {
                    let passes = r
                        .filters
                        .iter()
                        .all(|f| f.matches(&e.properties, self.now, self.plan.tz));
                    if passes {
                        if let Some(&i) = owner.get(&e.customer_id) {
                            counts[i] += 1;
                        }
                    }
                }
            }
            out.push(counts);
        }
        Ok(out)
    }
}

/// Membership of a referenced segment while evaluating one customer: computed in this pass if
/// it was, stored otherwise.
fn in_segment(
    plan: &Plan,
    reference: &str,
    now_in: &HashMap<usize, bool>,
    current: &HashSet<SegmentId>,
) -> bool {
    match plan.find(reference) {
        Some(i) => match now_in.get(&i) {
            Some(&member) => member,
            None => current.contains(&plan.segments[i].record.id),
        },
        None => false,
    }
}

impl Ciclo {
    /// A system event on a customer's timeline.
    pub(crate) fn system_event(
        &self,
        ws: &WorkspaceId,
        customer: &CustomerId,
        name: &str,
        properties: Map<String, Value>,
        at: Timestamp,
    ) -> Event {
        let id = self.new_id(EventId::generate);
        Event {
            message_id: format!("ciclo:{id}"),
            id,
            workspace_id: ws.clone(),
            customer_id: customer.clone(),
            event_type: EventType::Track,
            name: Some(name.to_string()),
            channel: "other".into(),
            source: "system".into(),
            user_id: None,
            anonymous_id: None,
            properties,
            context: Map::new(),
            timestamp: at,
            received_at: at,
        }
    }

    /// Writes what a batch decided: members in and out with their timeline events, stage
    /// changes with theirs. `initial` marks entries found by a segment's first evaluation.
    pub(crate) fn apply_outcome(
        &self,
        tx: &mut dyn Tx,
        plan: &Plan,
        outcome: &Outcome,
        initial: &HashSet<SegmentId>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let ws = &plan.workspace.id;
        let mut events = Vec::new();
        let mut moves: Vec<(usize, &Vec<CustomerId>, bool)> = Vec::new();
        moves.extend(outcome.entered.iter().map(|(i, c)| (*i, c, true)));
        moves.extend(outcome.exited.iter().map(|(i, c)| (*i, c, false)));
        for (i, customers, entered) in moves {
            let record = &plan.segments[i].record;
            if entered {
                tx.add_segment_members(ws, &record.id, customers, now)?;
            } else {
                tx.remove_segment_members(ws, &record.id, customers)?;
            }
            let name = if entered {
                SEGMENT_ENTERED
            } else {
                SEGMENT_EXITED
            };
            for c in customers {
                let mut properties = segment_properties(record);
                if entered && initial.contains(&record.id) {
                    properties.insert("initial".into(), Value::Bool(true));
                }
                events.push(self.system_event(ws, c, name, properties, now));
            }
        }
        if !outcome.stage_changes.is_empty() {
            let stages: Vec<(CustomerId, Stage, Timestamp)> = outcome
                .stage_changes
                .iter()
                .map(|c| (c.customer_id.clone(), c.to, c.at))
                .collect();
            tx.set_stages(ws, &stages)?;
            tx.insert_stage_changes(ws, &outcome.stage_changes)?;
            for change in &outcome.stage_changes {
                let mut properties = Map::new();
                properties.insert(
                    "from".into(),
                    change.from.map_or(Value::Null, |s| json!(s.as_str())),
                );
                properties.insert("to".into(), json!(change.to.as_str()));
                events.push(self.system_event(
                    ws,
                    &change.customer_id,
                    STAGE_CHANGED,
                    properties,
                    now,
                ));
            }
        }
        for chunk in events.chunks(5_000) {
            tx.insert_events(chunk)?;
        }
        Ok(())
    }

    /// Evaluates customers marked in the queue until it is empty (or `max_batches` batches were
    /// done). Returns how many marks were cleared. Safe to call from several threads or
    /// processes: each batch takes its marks in its own transaction.
    pub fn evaluate_pending(&self, max_batches: usize) -> CoreResult<usize> {
        let mut done = 0;
        for _ in 0..max_batches {
            let now = self.clock.now();
            let (cleared, by_ws) = write(&*self.store, |tx| {
                let dirty = tx.take_dirty(BATCH)?;
                let mut by_ws: HashMap<WorkspaceId, Vec<CustomerId>> = HashMap::new();
                for d in &dirty {
                    by_ws
                        .entry(d.workspace_id.clone())
                        .or_default()
                        .push(d.customer_id.clone());
                }
                for (ws, ids) in &by_ws {
                    self.evaluate_customers(tx, ws, ids, now)?;
                }
                tx.clear_dirty(&dirty)?;
                Ok((dirty.len(), by_ws))
            })?;
            if cleared == 0 {
                break;
            }
            // Committed: the segment index re-reads these profiles before its next use.
            for (ws, ids) in &by_ws {
                self.segment_index.touched(ws, ids);
            }
            done += cleared;
        }
        Ok(done)
    }

    /// Evaluates lifecycle and every dynamic segment for these profiles (any of which may have
    /// been merged away or deleted since they were marked).
    fn evaluate_customers(
        &self,
        tx: &mut dyn Tx,
        ws: &WorkspaceId,
        ids: &[CustomerId],
        now: Timestamp,
    ) -> StoreResult<()> {
        let plan = match Plan::load(tx, ws) {
            Ok(plan) => plan,
            // The workspace is gone: nothing to evaluate.
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        let found = tx.get_customers(ws, ids)?;
        // Surviving profiles are evaluated as read; a merged-away one stands for its root.
        let mut customers: Vec<Customer> = Vec::new();
        let mut merged_away: Vec<CustomerId> = Vec::new();
        for c in found {
            match &c.merged_into {
                None => customers.push(c),
                Some(_) => {
                    if let Some(root) = crate::identity::root_of(tx, ws, &c.id)? {
                        customers.push(root);
                    }
                    merged_away.push(c.id);
                }
            }
        }
        // A merged-away profile belongs to no segment: its person is the surviving profile's.
        if !merged_away.is_empty() {
            let mut by_segment: HashMap<SegmentId, Vec<CustomerId>> = HashMap::new();
            for (segment, customer, _) in tx.memberships_of(ws, &merged_away)? {
                by_segment.entry(segment).or_default().push(customer);
            }
            for (segment, customers) in by_segment {
                tx.remove_segment_members(ws, &segment, &customers)?;
            }
        }
        customers.sort_by(|a, b| a.id.cmp(&b.id));
        customers.dedup_by(|a, b| a.id == b.id);
        let evaluation = Evaluation::new(&plan, plan.all_dynamic(), true, now);
        let mut outcome = Outcome::default();
        evaluation.run(tx, customers, &MergedProfiles::PerCustomer, &mut outcome)?;
        self.apply_outcome(tx, &plan, &outcome, &HashSet::new(), now)
    }

    /// Evaluates the chosen segments (`None`: the time-relative ones) and, when `lifecycle`,
    /// the lifecycle stages, for every customer of the workspace, one batch per transaction.
    /// Segments listed in `initial` are being evaluated for the first time. Records a count
    /// point for every segment evaluated. Returns how many customers were evaluated.
    pub fn refresh_workspace(
        &self,
        ws: &WorkspaceId,
        segments: Option<&[SegmentId]>,
        lifecycle: bool,
        initial: &HashSet<SegmentId>,
    ) -> CoreResult<usize> {
        let now = self.clock.now();
        // Segments through the in-memory index when it can; what is left (lifecycle stages, or
        // everything when the workspace cannot be indexed) in batches of profiles.
        let indexed = self.refresh_segments_indexed(ws, segments, initial, now)?;
        let mut evaluated: Vec<SegmentId> = indexed.clone().unwrap_or_default();
        let segments: Option<&[SegmentId]> = match indexed {
            Some(_) => Some(&[]),
            None => segments,
        };
        let merged = read(&*self.store, |tx| MergedProfiles::load(tx, ws))?;
        let mut after: Option<CustomerId> = None;
        let mut total = 0;
        let only_indexed = indexed.is_some() && !lifecycle;
        loop {
            if only_indexed {
                break;
            }
            let (count, last) = write(&*self.store, |tx| {
                let plan = Plan::load(tx, ws)?;
                let chosen = plan.chosen(segments);
                for &i in &chosen {
                    let id = &plan.segments[i].record.id;
                    if !evaluated.contains(id) {
                        evaluated.push(id.clone());
                    }
                }
                if chosen.is_empty() && !lifecycle {
                    return Ok((0, None));
                }
                let query = newest_page(after.clone(), BATCH);
                let customers = tx.list_customers(ws, &query)?;
                let last = customers.last().map(|c| c.id.clone());
                let count = customers.len();
                // A segment never evaluated is having its first evaluation now.
                let mut first = initial.clone();
                first.extend(chosen.iter().filter_map(|&i| {
                    let record = &plan.segments[i].record;
                    record.evaluated_at.is_none().then(|| record.id.clone())
                }));
                let evaluation = Evaluation::new(&plan, chosen, lifecycle, now);
                let mut outcome = Outcome::default();
                evaluation.run(tx, customers, &merged, &mut outcome)?;
                self.apply_outcome(tx, &plan, &outcome, &first, now)?;
                Ok((count, last))
            })?;
            total += count;
            match last {
                Some(id) if count as i64 == BATCH => after = Some(id),
                _ => break,
            }
        }
        write(&*self.store, |tx| {
            for id in &evaluated {
                if let Some(mut record) = tx.get_segment(ws, id)? {
                    record.evaluated_at = Some(now);
                    tx.update_segment(&record)?;
                }
            }
            record_counts(tx, ws, now)
        })?;
        Ok(total)
    }
}

impl Ciclo {
    /// Computes the chosen segments (`None`: the scheduled ones; `Some`: these and the segments
    /// that include them) for the whole workspace from the segment index, then writes who
    /// entered and left, a few thousand profiles per transaction. Returns the segments
    /// evaluated, or `None` when the workspace cannot be indexed.
    fn refresh_segments_indexed(
        &self,
        ws: &WorkspaceId,
        segments: Option<&[SegmentId]>,
        initial: &HashSet<SegmentId>,
        now: Timestamp,
    ) -> CoreResult<Option<Vec<SegmentId>>> {
        type Moves = Vec<(SegmentId, bool, Vec<CustomerId>, Vec<CustomerId>)>;
        let computed: Option<Moves> = read(&*self.store, |tx| {
            let plan = Plan::load(tx, ws)?;
            let chosen = plan.chosen(segments);
            if chosen.is_empty() {
                return Ok(Some(Vec::new()));
            }
            let slot = self.segment_index.of(ws);
            let mut index = slot.lock();
            // Every saved definition's columns, so previews and saves of similar ones are
            // fast from the first (loading is skipped for what is there already).
            let exprs: Vec<&Expr> = plan.segments.iter().filter_map(|c| c.expr()).collect();
            if !slot.prepare(&mut index, tx, &plan, &exprs)? {
                return Ok(None);
            }
            let mut computed: HashMap<SegmentId, Bits> = HashMap::new();
            let mut moves: Moves = Vec::new();
            for &i in &chosen {
                let record = &plan.segments[i].record;
                let Some(expr) = plan.segments[i].expr() else {
                    continue;
                };
                let members = index.evaluate(&plan, expr, now, &computed);
                let stored = index.stored_members(tx, ws, &record.id)?;
                let (entered, exited) = index.differences(&members, &stored);
                let first = initial.contains(&record.id) || record.evaluated_at.is_none();
                moves.push((record.id.clone(), first, entered, exited));
                computed.insert(record.id.clone(), members);
            }
            Ok(Some(moves))
        })?;
        let Some(moves) = computed else {
            return Ok(None);
        };
        let mut evaluated = Vec::new();
        for (id, first, entered, exited) in moves {
            let initial: HashSet<SegmentId> = if first {
                HashSet::from([id.clone()])
            } else {
                HashSet::new()
            };
            let chunks = entered
                .chunks(WRITE_CHUNK)
                .map(|c| (c, true))
                .chain(exited.chunks(WRITE_CHUNK).map(|c| (c, false)));
            for (chunk, entering) in chunks {
                write(&*self.store, |tx| {
                    let plan = Plan::load(tx, ws)?;
                    // Deleted meanwhile: nothing to write.
                    let Some(i) = plan.find(id.as_str()) else {
                        return Ok(());
                    };
                    let mut outcome = Outcome::default();
                    if entering {
                        outcome.entered.insert(i, chunk.to_vec());
                    } else {
                        outcome.exited.insert(i, chunk.to_vec());
                    }
                    self.apply_outcome(tx, &plan, &outcome, &initial, now)
                })?;
            }
            // Its stored membership is reloaded on next use.
            self.segment_index.forget_segment(ws, &id);
            evaluated.push(id);
        }
        Ok(Some(evaluated))
    }
}

/// A page of surviving profiles in id order, newest first, after `after` (the keyset every
/// whole-workspace pass pages with).
pub(crate) fn newest_page(after: Option<CustomerId>, limit: i64) -> CustomerQuery {
    CustomerQuery {
        sort: CustomerSort::Newest,
        after: after.map(|id| CustomerCursor {
            key: String::new(),
            id,
        }),
        limit,
        ..CustomerQuery::default()
    }
}

/// Profiles written per transaction when a whole segment's membership changes.
const WRITE_CHUNK: usize = 5_000;

/// Adds a point to the count history of every segment of the workspace whose count changed
/// since its last point, or whose last point is an hour old (real-time moves change counts
/// between points; this keeps the history to what a chart needs).
pub(crate) fn record_counts(tx: &mut dyn Tx, ws: &WorkspaceId, now: Timestamp) -> StoreResult<()> {
    let hour_ago = now - chrono::Duration::hours(1);
    for segment in tx.list_segments(ws)? {
        let recent = tx.segment_counts(ws, &segment.id, hour_ago)?;
        if recent.last().map(|p| p.count) != Some(segment.member_count) {
            tx.insert_segment_count(
                ws,
                &segment.id,
                &SegmentCount {
                    at: now,
                    count: segment.member_count,
                },
            )?;
        }
    }
    Ok(())
}

/// The properties of a segment's entry and exit events.
fn segment_properties(record: &SegmentRecord) -> Map<String, Value> {
    let mut properties = Map::new();
    properties.insert("segment_id".into(), json!(record.id.as_str()));
    properties.insert("segment_name".into(), json!(record.name));
    properties.insert("segment_kind".into(), json!(record.kind.as_str()));
    properties
}

/// Wakes the background evaluator when something was marked.
#[derive(Default)]
pub(crate) struct Signal {
    pending: Mutex<bool>,
    wake: Condvar,
}

impl Signal {
    pub fn notify(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = true;
            self.wake.notify_one();
        }
    }

    /// Waits until notified or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        let Ok(pending) = self.pending.lock() else {
            return;
        };
        let (mut pending, _) = self
            .wake
            .wait_timeout_while(pending, timeout, |p| !*p)
            .unwrap_or_else(|e| e.into_inner());
        *pending = false;
    }
}

/// How often the background work runs.
#[derive(Debug, Clone, Copy)]
pub struct BackgroundOptions {
    /// Full re-evaluation of time-relative segments and lifecycle stages.
    pub refresh_every: Duration,
    /// Recomputing RFM and predicted CLV scores.
    pub scores_every: Duration,
}

impl Default for BackgroundOptions {
    fn default() -> Self {
        BackgroundOptions {
            refresh_every: Duration::from_secs(120),
            scores_every: Duration::from_secs(3600),
        }
    }
}

impl Ciclo {
    /// Starts the background evaluator thread: drains the evaluation queue as soon as
    /// something is marked (and at least every second), refreshes time-relative segments and
    /// lifecycle stages every `refresh_every`, and scores every `scores_every`. The thread ends
    /// with the process.
    pub fn start_background(&self, options: BackgroundOptions) {
        let app = self.clone();
        std::thread::Builder::new()
            .name("ciclo-evaluator".into())
            .spawn(move || {
                let mut last_refresh: Option<Timestamp> = None;
                let mut last_scores: Option<Timestamp> = None;
                loop {
                    if let Err(e) = app.evaluate_pending(usize::MAX) {
                        tracing::warn!(error = %e, "segment evaluation failed");
                    }
                    // A segment index a bulk change invalidated is rebuilt here rather than
                    // on someone's next preview.
                    for ws in app.segment_index.overflowed() {
                        if let Err(e) = app.rebuild_segment_index(&ws) {
                            tracing::warn!(error = %e, "segment index rebuild failed");
                        }
                    }
                    let now = app.clock.now();
                    let due = |last: Option<Timestamp>, every: Duration| {
                        last.is_none_or(|t| (now - t).to_std().unwrap_or_default() >= every)
                    };
                    if due(last_refresh, options.refresh_every) {
                        last_refresh = Some(now);
                        let scores = due(last_scores, options.scores_every);
                        if scores {
                            last_scores = Some(now);
                        }
                        if let Err(e) = app.refresh_all(scores) {
                            tracing::warn!(error = %e, "scheduled refresh failed");
                        }
                    }
                    app.evaluation.wait(Duration::from_secs(1));
                }
            })
            .expect("cannot start the evaluator thread");
    }

    /// One scheduled round over every workspace: scores (when asked), then time-relative
    /// segments and lifecycle stages.
    pub fn refresh_all(&self, scores: bool) -> CoreResult<()> {
        let workspaces = read(&*self.store, |tx| tx.list_workspaces())?;
        for workspace in workspaces {
            if scores {
                self.refresh_scores(&workspace.id)?;
            }
            self.refresh_workspace(&workspace.id, None, true, &HashSet::new())?;
            self.evaluate_pending(usize::MAX)?;
        }
        Ok(())
    }

    /// Sets how many changed profiles make a segment index rebuild rather than re-read them
    /// (50,000 by default). For tests of the rebuild.
    #[doc(hidden)]
    pub fn set_segment_index_rebuild_after(&self, profiles: usize) {
        self.segment_index
            .rebuild_after
            .store(profiles, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether some segment index waits for a rebuild.
    #[doc(hidden)]
    pub fn segment_index_needs_rebuild(&self) -> bool {
        !self.segment_index.overflowed().is_empty()
    }

    /// Brings a workspace's segment index up to date with every saved definition loaded.
    pub fn rebuild_segment_index(&self, ws: &WorkspaceId) -> CoreResult<()> {
        read(&*self.store, |tx| {
            let plan = Plan::load(tx, ws)?;
            let exprs: Vec<&Expr> = plan.segments.iter().filter_map(|c| c.expr()).collect();
            let slot = self.segment_index.of(ws);
            let mut index = slot.lock();
            slot.prepare(&mut index, tx, &plan, &exprs)?;
            Ok(())
        })?;
        Ok(())
    }

    /// Tells the background evaluator that customers were marked.
    pub(crate) fn notify_evaluator(&self) {
        self.evaluation.notify();
    }
}
