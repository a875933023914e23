//! Identity graph use cases: automatic resolution of the identifiers a message or an imported
//! row carries (merges and conflicts), manual merge, and undoing a merge.
//!
//! A merge never moves data: the losing profile keeps its identities, events and orders and
//! points to the winner through `merged_into`, so undoing it is exact. Reads gather the "merge
//! set" (the root and everything merged into it). The survivor's order stats are the sum over
//! its merge set; fields the survivor lacked are filled from the loser and remembered, so that
//! undo clears them again.

use crate::accounts::Actor;
use crate::error::{CoreError, CoreResult};
use crate::Ciclo;
use ciclo_domain::customer::{Customer, OrderStats};
use ciclo_domain::identity::{
    resolve, FoundIdentity, Identity, IdentityKey, IdentityKind, Resolution, RootProfile,
};
use ciclo_domain::ids::{ConflictId, CustomerId, MergeId, WorkspaceId};
use ciclo_domain::operator::Permission;
use ciclo_domain::{FieldError, Timestamp};
use ciclo_store::{read, write, IdentityConflict, MergeRecord, StoreError, StoreResult, Tx};
use std::collections::{HashMap, HashSet};

/// How deep `merged_into` chains may go before the data is considered corrupt.
const MAX_CHAIN: usize = 64;

/// The root profile and every profile merged into it, directly or not (root first).
pub(crate) fn merge_set(
    tx: &mut dyn Tx,
    ws: &WorkspaceId,
    root: &CustomerId,
) -> StoreResult<Vec<CustomerId>> {
    let mut set = vec![root.clone()];
    let mut i = 0;
    while i < set.len() && set.len() < 10_000 {
        let children = tx.merged_children(ws, &set[i])?;
        for c in children {
            if !set.contains(&c) {
                set.push(c);
            }
        }
        i += 1;
    }
    Ok(set)
}

/// Follows `merged_into` from a profile to the surviving one.
pub(crate) fn root_of(
    tx: &mut dyn Tx,
    ws: &WorkspaceId,
    id: &CustomerId,
) -> StoreResult<Option<Customer>> {
    let mut current = tx.get_customer(ws, id)?;
    for _ in 0..MAX_CHAIN {
        match current {
            Some(ref c) if c.merged_into.is_some() => {
                let parent = c.merged_into.clone().unwrap_or_else(|| c.id.clone());
                current = tx.get_customer(ws, &parent)?;
            }
            _ => return Ok(current),
        }
    }
    Err(StoreError::Backend(format!(
        "merged_into chain of {id} is too deep"
    )))
}

/// Adds `other` into `into`: counts and sums add up, the bounds widen.
pub(crate) fn combine_stats(into: &mut OrderStats, other: &OrderStats) {
    into.orders_count += other.orders_count;
    into.total_spent_minor += other.total_spent_minor;
    into.first_order_at = match (into.first_order_at, other.first_order_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    into.last_order_at = match (into.last_order_at, other.last_order_at) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

/// Where an identifier-resolution request came from, for provenance.
pub(crate) struct Provenance<'a> {
    pub source: &'a str,
    pub message_id: Option<&'a str>,
    pub actor: Option<String>,
    pub at: Timestamp,
}

/// A working copy of part of the identity graph inside one write transaction: profiles loaded
/// once, changed in memory, written back once at the end (`flush`). Ingestion of a batch and an
/// import both resolve many rows through one `Graph`.
pub(crate) struct Graph<'c> {
    pub app: &'c Ciclo,
    pub ws: WorkspaceId,
    /// Profiles loaded or created in this transaction.
    pub customers: HashMap<CustomerId, Customer>,
    created: Vec<CustomerId>,
    dirty: HashSet<CustomerId>,
    /// Identifier → owning profile (not necessarily a root), for keys looked up or attached.
    owners: HashMap<IdentityKey, CustomerId>,
    /// Keys known to be absent from the store (looked up, not found, not attached since).
    absent: HashSet<IdentityKey>,
    pending_identities: Vec<Identity>,
}

impl<'c> Graph<'c> {
    pub fn new(app: &'c Ciclo, ws: WorkspaceId) -> Self {
        Graph {
            app,
            ws,
            customers: HashMap::new(),
            created: Vec::new(),
            dirty: HashSet::new(),
            owners: HashMap::new(),
            absent: HashSet::new(),
            pending_identities: Vec::new(),
        }
    }

    /// Looks up many identifiers in one go and loads their profiles (and their roots).
    pub fn prefetch(&mut self, tx: &mut dyn Tx, keys: &[IdentityKey]) -> StoreResult<()> {
        let unknown: Vec<IdentityKey> = keys
            .iter()
            .filter(|k| !self.owners.contains_key(*k) && !self.absent.contains(*k))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        for chunk in unknown.chunks(500) {
            let found = tx.find_identities(&self.ws, chunk)?;
            for identity in found {
                self.owners.insert(identity.key, identity.customer_id);
            }
        }
        for k in unknown {
            if !self.owners.contains_key(&k) {
                self.absent.insert(k);
            }
        }
        let mut wanted: Vec<CustomerId> = self
            .owners
            .values()
            .filter(|id| !self.customers.contains_key(*id))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // Load owners, then their parents, until every chain reaches a root.
        for _ in 0..MAX_CHAIN {
            if wanted.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for chunk in wanted.chunks(500) {
                for c in tx.get_customers(&self.ws, chunk)? {
                    if let Some(parent) = &c.merged_into {
                        if !self.customers.contains_key(parent) {
                            next.push(parent.clone());
                        }
                    }
                    self.customers.insert(c.id.clone(), c);
                }
            }
            next.sort();
            next.dedup();
            wanted = next;
        }
        Ok(())
    }

    fn load(&mut self, tx: &mut dyn Tx, id: &CustomerId) -> StoreResult<()> {
        if !self.customers.contains_key(id) {
            let c = tx.get_customer(&self.ws, id)?.ok_or(StoreError::NotFound)?;
            self.customers.insert(id.clone(), c);
        }
        Ok(())
    }

    /// The surviving profile for `id`.
    pub fn root(&mut self, tx: &mut dyn Tx, id: &CustomerId) -> StoreResult<CustomerId> {
        let mut current = id.clone();
        for _ in 0..MAX_CHAIN {
            self.load(tx, &current)?;
            match self
                .customers
                .get(&current)
                .and_then(|c| c.merged_into.clone())
            {
                Some(parent) => current = parent,
                None => return Ok(current),
            }
        }
        Err(StoreError::Backend(format!(
            "merged_into chain of {id} is too deep"
        )))
    }

    /// The user ids owned by any profile of the root's merge set.
    fn user_ids_of_root(&mut self, tx: &mut dyn Tx, root: &CustomerId) -> StoreResult<Vec<String>> {
        let mut set = merge_set(tx, &self.ws, root)?;
        // Profiles created or re-parented in this transaction are not in the store yet.
        for (id, c) in &self.customers {
            if c.merged_into.is_some() && !set.contains(id) {
                let mut cursor = c.merged_into.clone();
                while let Some(p) = cursor {
                    if &p == root {
                        set.push(id.clone());
                        break;
                    }
                    cursor = self.customers.get(&p).and_then(|pc| pc.merged_into.clone());
                }
            }
        }
        let mut ids: Vec<String> = tx
            .identities_of(&self.ws, &set)?
            .into_iter()
            .filter(|i| i.key.kind.is_user_id())
            .map(|i| i.key.value)
            .collect();
        for pending in &self.pending_identities {
            if pending.key.kind.is_user_id()
                && set.contains(&pending.customer_id)
                && !ids.contains(&pending.key.value)
            {
                ids.push(pending.key.value.clone());
            }
        }
        Ok(ids)
    }

    /// Resolves one message's identifiers: returns the root profile it belongs to, creating,
    /// merging and recording conflicts as the rules in `ciclo_domain::identity::resolve` say.
    /// `lookup_only` keys are used to find profiles but never attached.
    pub fn resolve(
        &mut self,
        tx: &mut dyn Tx,
        keys: &[IdentityKey],
        lookup_only: &[IdentityKey],
        provenance: &Provenance<'_>,
    ) -> StoreResult<CustomerId> {
        let all: Vec<IdentityKey> = keys.iter().chain(lookup_only).cloned().collect();
        self.prefetch(tx, &all)?;
        let mut found = Vec::new();
        for key in &all {
            if let Some(owner) = self.owners.get(key).cloned() {
                let root = self.root(tx, &owner)?;
                found.push(FoundIdentity {
                    key: key.clone(),
                    root,
                });
            }
        }
        let distinct_roots: Vec<CustomerId> = {
            let mut r: Vec<CustomerId> = found.iter().map(|f| f.root.clone()).collect();
            r.sort();
            r.dedup();
            r
        };
        let message_user_key = keys.iter().find(|k| k.kind.is_user_id());
        let fast = distinct_roots.len() == 1
            && message_user_key.is_none_or(|k| self.owners.contains_key(k));
        let resolution = if fast {
            Resolution {
                target: distinct_roots.first().cloned(),
                attach: keys
                    .iter()
                    .filter(|k| !self.owners.contains_key(*k))
                    .cloned()
                    .collect(),
                ..Resolution::default()
            }
        } else {
            let mut roots = Vec::new();
            for id in &distinct_roots {
                let user_ids = self.user_ids_of_root(tx, id)?;
                let created_at = self
                    .customers
                    .get(id)
                    .map(|c| c.created_at)
                    .unwrap_or(provenance.at);
                roots.push(RootProfile {
                    id: id.clone(),
                    created_at,
                    user_ids,
                });
            }
            resolve(keys, &found, &roots)
        };
        let target = match resolution.target {
            Some(t) => t,
            None => {
                let id = self.app.new_id(CustomerId::generate);
                let customer = Customer::new(id.clone(), self.ws.clone(), provenance.at);
                self.customers.insert(id.clone(), customer);
                self.created.push(id.clone());
                id
            }
        };
        for (loser, via) in &resolution.merges {
            self.merge(tx, &target, loser, Some(via.clone()), provenance)?;
        }
        for (other, via) in &resolution.conflicts {
            let conflict = IdentityConflict {
                id: self.app.new_id(ConflictId::generate),
                workspace_id: self.ws.clone(),
                customer_a: other.clone(),
                customer_b: target.clone(),
                via: via.clone(),
                message_id: provenance.message_id.map(str::to_string),
                created_at: provenance.at,
                resolution: None,
                resolved_at: None,
            };
            tx.insert_conflict(&conflict)?;
        }
        for key in resolution.attach {
            if self.owners.contains_key(&key) {
                continue;
            }
            self.fill_contact_field(tx, &target, &key)?;
            self.absent.remove(&key);
            self.owners.insert(key.clone(), target.clone());
            self.pending_identities.push(Identity {
                key,
                customer_id: target.clone(),
                source: provenance.source.to_string(),
                created_at: provenance.at,
            });
        }
        Ok(target)
    }

    /// A new email, phone or WhatsApp identifier also fills the profile's field when it is empty,
    /// so that a customer first known from an order line shows their email.
    fn fill_contact_field(
        &mut self,
        tx: &mut dyn Tx,
        target: &CustomerId,
        key: &IdentityKey,
    ) -> StoreResult<()> {
        use ciclo_domain::contact::{Email, Phone};
        let customer = self.customer_mut(tx, target)?;
        match key.kind {
            IdentityKind::Email if customer.email.is_none() => {
                customer.email = Email::parse(&key.value).ok()
            }
            IdentityKind::Phone if customer.phone.is_none() => {
                customer.phone = Phone::parse(&key.value, "BR").ok()
            }
            IdentityKind::Whatsapp if customer.whatsapp.is_none() => {
                customer.whatsapp = Phone::parse(&key.value, "BR").ok()
            }
            _ => {}
        }
        Ok(())
    }

    /// The profile that owns `key` (after `resolve`), to attribute an event to the profile whose
    /// identifier it carried, so that an undone merge takes its events back.
    pub fn owner_of(&self, key: &IdentityKey) -> Option<CustomerId> {
        self.owners.get(key).cloned()
    }

    /// Merges root `loser` into root `winner` in the working copy and records it.
    pub fn merge(
        &mut self,
        tx: &mut dyn Tx,
        winner: &CustomerId,
        loser: &CustomerId,
        via: Option<IdentityKey>,
        provenance: &Provenance<'_>,
    ) -> StoreResult<MergeRecord> {
        self.load(tx, winner)?;
        self.load(tx, loser)?;
        let loser_profile = self
            .customers
            .get(loser)
            .cloned()
            .ok_or(StoreError::NotFound)?;
        let winner_profile = self.customers.get_mut(winner).ok_or(StoreError::NotFound)?;
        let filled = winner_profile.fill_gaps(&loser_profile.as_patch());
        combine_stats(&mut winner_profile.stats, &loser_profile.stats);
        winner_profile.seen_at(loser_profile.first_seen_at);
        winner_profile.seen_at(loser_profile.last_seen_at);
        winner_profile.updated_at = provenance.at;
        if let Some(l) = self.customers.get_mut(loser) {
            l.merged_into = Some(winner.clone());
            l.updated_at = provenance.at;
        }
        self.dirty.insert(winner.clone());
        self.dirty.insert(loser.clone());
        let record = MergeRecord {
            id: self.app.new_id(MergeId::generate),
            workspace_id: self.ws.clone(),
            winner_id: winner.clone(),
            loser_id: loser.clone(),
            via,
            message_id: provenance.message_id.map(str::to_string),
            source: provenance.source.to_string(),
            actor: provenance.actor.clone(),
            filled,
            created_at: provenance.at,
            undone_at: None,
            undone_by: None,
        };
        // The loser row must reach the store before the merge record that names it.
        self.flush(tx)?;
        tx.insert_merge(&record)?;
        Ok(record)
    }

    /// A loaded profile, to change in place; it is written back by `flush`.
    pub fn customer_mut(&mut self, tx: &mut dyn Tx, id: &CustomerId) -> StoreResult<&mut Customer> {
        self.load(tx, id)?;
        self.dirty.insert(id.clone());
        self.customers.get_mut(id).ok_or(StoreError::NotFound)
    }

    /// Writes new and changed profiles and new identities.
    pub fn flush(&mut self, tx: &mut dyn Tx) -> StoreResult<()> {
        let created: Vec<Customer> = self
            .created
            .drain(..)
            .filter_map(|id| self.customers.get(&id).cloned())
            .collect();
        let created_ids: HashSet<CustomerId> = created.iter().map(|c| c.id.clone()).collect();
        tx.insert_customers(&created)?;
        let changed: Vec<Customer> = self
            .dirty
            .drain()
            .filter(|id| !created_ids.contains(id))
            .filter_map(|id| self.customers.get(&id).cloned())
            .collect();
        tx.update_customers(&changed)?;
        // Whatever changed a profile may move it between segments and lifecycle stages: mark it,
        // in this transaction, for the evaluator (see `evaluate`).
        let touched: Vec<CustomerId> = created
            .iter()
            .chain(&changed)
            .map(|c| c.id.clone())
            .collect();
        if !touched.is_empty() {
            tx.mark_dirty(&self.ws, &touched)?;
        }
        let identities = std::mem::take(&mut self.pending_identities);
        tx.insert_identities(&self.ws, &identities)?;
        Ok(())
    }
}

/// Identifiers found on a customer-shaped input (email, phone, WhatsApp of a patch).
pub(crate) fn contact_keys(patch: &ciclo_domain::customer::CustomerPatch) -> Vec<IdentityKey> {
    let mut keys = Vec::new();
    if let Some(Some(e)) = &patch.email {
        keys.push(IdentityKey::new(IdentityKind::Email, e.as_str()));
    }
    if let Some(Some(p)) = &patch.phone {
        keys.push(IdentityKey::new(IdentityKind::Phone, p.as_str()));
    }
    if let Some(Some(w)) = &patch.whatsapp {
        keys.push(IdentityKey::new(IdentityKind::Whatsapp, w.as_str()));
    }
    keys
}

fn map_merge_error(e: StoreError) -> CoreError {
    match e {
        StoreError::NotFound => CoreError::NotFound("customer"),
        other => other.into(),
    }
}

impl Ciclo {
    /// Merges `loser` into `winner` at an operator's request. Refused (409 `user_id_conflict`)
    /// when both have different user ids unless `force` is set.
    pub fn merge_customers(
        &self,
        actor: &Actor,
        winner: &CustomerId,
        loser: &CustomerId,
        force: bool,
    ) -> CoreResult<MergeRecord> {
        actor.require(Permission::WriteCustomers)?;
        let now = self.clock.now();
        let ws = actor.workspace.id.clone();
        let outcome = write(&*self.store, |tx| {
            let mut graph = Graph::new(self, ws.clone());
            let w = graph.root(tx, winner)?;
            let l = graph.root(tx, loser)?;
            if w == l {
                return Ok(Err(CoreError::Conflict(FieldError::new(
                    "already_merged",
                    "loser_id",
                    "these profiles are already one customer",
                ))));
            }
            if !force {
                let wu = graph.user_ids_of_root(tx, &w)?;
                let lu = graph.user_ids_of_root(tx, &l)?;
                if !wu.is_empty() && !lu.is_empty() && wu.iter().all(|u| !lu.contains(u)) {
                    return Ok(Err(CoreError::Conflict(FieldError::new(
                        "user_id_conflict",
                        "loser_id",
                        format!("the profiles have different user ids ({} and {}); pass force to merge anyway", wu.join(", "), lu.join(", ")),
                    ))));
                }
            }
            let provenance = Provenance { source: "api", message_id: None, actor: Some(actor.label()), at: now };
            let record = graph.merge(tx, &w, &l, None, &provenance)?;
            graph.flush(tx)?;
            Ok(Ok(record))
        })
        .map_err(map_merge_error)?;
        outcome
    }

    /// Undoes a merge: both profiles exist again with their own identities, events and orders;
    /// fields the merge filled in on the winner are cleared. Profiles merged into the loser stay
    /// with the loser.
    pub fn unmerge(&self, actor: &Actor, merge: &MergeId) -> CoreResult<MergeRecord> {
        actor.require(Permission::WriteCustomers)?;
        let now = self.clock.now();
        let ws = actor.workspace.id.clone();
        let outcome = write(&*self.store, |tx| {
            let Some(mut record) = tx.get_merge(&ws, merge)? else {
                return Ok(Err(CoreError::NotFound("merge")));
            };
            if record.undone_at.is_some() {
                return Ok(Err(CoreError::Conflict(FieldError::new(
                    "merge_already_undone",
                    "id",
                    "this merge was undone already",
                ))));
            }
            let mut loser = tx
                .get_customer(&ws, &record.loser_id)?
                .ok_or(StoreError::NotFound)?;
            if loser.merged_into.as_ref() != Some(&record.winner_id) {
                return Ok(Err(CoreError::Conflict(FieldError::new(
                    "merge_superseded",
                    "id",
                    "the profiles were changed since this merge",
                ))));
            }
            loser.merged_into = None;
            let loser_set = merge_set(tx, &ws, &loser.id)?;
            loser.stats = tx.order_stats_of(&ws, &loser_set)?;
            loser.updated_at = now;
            tx.update_customer(&loser)?;
            let mut winner = tx
                .get_customer(&ws, &record.winner_id)?
                .ok_or(StoreError::NotFound)?;
            winner.unfill(&record.filled);
            winner.updated_at = now;
            tx.update_customer(&winner)?;
            // Stats live on the surviving root of the winner's side.
            let root = root_of(tx, &ws, &record.winner_id)?.ok_or(StoreError::NotFound)?;
            let mut root = if root.id == winner.id { winner } else { root };
            let root_set = merge_set(tx, &ws, &root.id)?;
            root.stats = tx.order_stats_of(&ws, &root_set)?;
            tx.update_customer(&root)?;
            tx.mark_dirty(&ws, &[loser.id.clone(), root.id.clone()])?;
            record.undone_at = Some(now);
            record.undone_by = Some(actor.label());
            tx.update_merge(&record)?;
            Ok(Ok(record))
        })
        .map_err(map_merge_error)?;
        outcome
    }

    pub fn list_conflicts(
        &self,
        actor: &Actor,
        open_only: bool,
    ) -> CoreResult<Vec<IdentityConflict>> {
        actor.require(Permission::ReadCustomers)?;
        Ok(read(&*self.store, |tx| {
            tx.list_conflicts(&actor.workspace.id, open_only, 500)
        })?)
    }

    /// Resolves a conflict by merging (`merge = true`, b into a) or keeping the profiles apart.
    pub fn resolve_conflict(
        &self,
        actor: &Actor,
        id: &ConflictId,
        merge: bool,
    ) -> CoreResult<IdentityConflict> {
        actor.require(Permission::WriteCustomers)?;
        let ws = actor.workspace.id.clone();
        let mut conflict = read(&*self.store, |tx| tx.get_conflict(&ws, id))?
            .ok_or(CoreError::NotFound("identity_conflict"))?;
        if conflict.resolution.is_some() {
            return Err(CoreError::Conflict(FieldError::new(
                "conflict_already_resolved",
                "id",
                "this conflict was resolved already",
            )));
        }
        if merge {
            match self.merge_customers(actor, &conflict.customer_a, &conflict.customer_b, true) {
                Ok(_) => {}
                Err(CoreError::Conflict(fe)) if fe.code == "already_merged" => {}
                Err(e) => return Err(e),
            }
        }
        conflict.resolution = Some(if merge { "merged" } else { "kept_apart" }.to_string());
        conflict.resolved_at = Some(self.clock.now());
        write(&*self.store, |tx| tx.update_conflict(&conflict))?;
        Ok(conflict)
    }
}
