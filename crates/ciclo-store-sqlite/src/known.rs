//! What the writer knows about rows without asking SQLite: the integer keys (`seq`) of workspaces
//! and customers, customer rows and identities, as they stand in the database.
//!
//! Ingestion reads every profile and identifier a batch touches (`get_customers`,
//! `find_identities`), changes a few fields and writes the profiles back (`update_customers`),
//! then stores events that name the profiles. Batches keep coming back to the same customers, so
//! the writer connection keeps what it read and wrote in a [`RowCache`] from one transaction to
//! the next: a read finds the row without a query, an update writes only the columns that differ
//! from the row as stored (often none: an event within the profile's known first/last-seen range
//! changes nothing) without reading it first, and events find their profile's `seq` at once.
//!
//! Why this stays right:
//!
//! * **Only this connection writes here, through [`Known`].** Every `Tx` method that writes
//!   `customers` or `identities` records what it wrote (or, when it cannot tell, that the entry is
//!   unknown: see [`Known::forget`]) in the transaction's own layer, which lookups consult first.
//! * **The cache holds committed rows only.** A transaction's layer is merged into the cache when
//!   its transaction commits, and dropped when it rolls back (a failed closure, a failed group
//!   commit, a panic). Members of a group commit after the first run in a savepoint and do not
//!   read the cache (earlier members' uncommitted writes are not in it); their layers merge in
//!   order when the group commits.
//! * **Other connections' commits empty it.** Every write transaction starts by reading `PRAGMA
//!   data_version`, which changes when another connection (another process, such as `ciclo
//!   import` next to `ciclo serve`) committed since; it holds the write lock from then on
//!   (`BEGIN IMMEDIATE`), so nobody else can change a row while it relies on the cache.
//! * **Rows are kept as SQLite returns them** (timestamps cut to microseconds), so a row read
//!   from the cache equals the row read from the database.
//!
//! The cache is bounded: two generations of at most [`GENERATION_ROWS`] entries each; when the
//! newer one fills up, the older is dropped (what was used since stays in the newer one).

use crate::codec::{from_micros, micros};
use ciclo_domain::customer::Customer;
use ciclo_domain::identity::{Identity, IdentityKey};
use ciclo_domain::ids::{CustomerId, WorkspaceId};
use ciclo_domain::Timestamp;
use std::collections::{HashMap, HashSet};

/// Entries (profiles plus identities) per generation of the cache: two generations of ~64k, at a
/// few hundred bytes each, stay within some tens of MB.
pub(crate) const GENERATION_ROWS: usize = 65_536;

/// A profile as known: its seq, and its row when it was read or written (only the seq when it
/// was merely looked up).
#[derive(Clone)]
pub(crate) struct KnownCustomer {
    pub seq: i64,
    pub row: Option<Customer>,
}

/// What a layer says about a key.
#[derive(Clone)]
enum Entry<T> {
    Known(T),
    /// Changed in a way not recorded: ask the database (hides what lower layers say).
    Unknown,
}

/// What one transaction, or the cache, knows.
#[derive(Default)]
pub(crate) struct Layer {
    workspaces: HashMap<WorkspaceId, i64>,
    /// By id (one hash per lookup), then workspace: ids are unique in practice, so the list
    /// has one element, but nothing requires two workspaces to use different ids.
    customers: HashMap<CustomerId, Vec<(WorkspaceId, Entry<KnownCustomer>)>>,
    /// `None`: known not to exist.
    identities: HashMap<WorkspaceId, HashMap<IdentityKey, Entry<Option<Identity>>>>,
    /// Workspaces whose identities may have changed beyond what `identities` says (a profile
    /// and its identities were deleted): lower layers' identities of these are not to be used.
    identities_reset: HashSet<WorkspaceId>,
    entries: usize,
}

impl Layer {
    fn customer(&self, ws: &WorkspaceId, id: &CustomerId) -> Option<&Entry<KnownCustomer>> {
        self.customers
            .get(id)?
            .iter()
            .find(|(owner, _)| owner == ws)
            .map(|(_, entry)| entry)
    }

    fn customer_mut(
        &mut self,
        ws: &WorkspaceId,
        id: &CustomerId,
    ) -> Option<&mut Entry<KnownCustomer>> {
        self.customers
            .get_mut(id)?
            .iter_mut()
            .find(|(owner, _)| owner == ws)
            .map(|(_, entry)| entry)
    }

    fn put_customer(&mut self, ws: &WorkspaceId, id: &CustomerId, entry: Entry<KnownCustomer>) {
        match self.customers.get_mut(id) {
            Some(entries) => match entries.iter_mut().find(|(owner, _)| owner == ws) {
                Some(slot) => slot.1 = entry,
                None => {
                    entries.push((ws.clone(), entry));
                    self.entries += 1;
                }
            },
            None => {
                self.customers.insert(id.clone(), vec![(ws.clone(), entry)]);
                self.entries += 1;
            }
        }
    }

    fn take_customer(&mut self, ws: &WorkspaceId, id: &CustomerId) -> Option<Entry<KnownCustomer>> {
        let entries = self.customers.get_mut(id)?;
        let at = entries.iter().position(|(owner, _)| owner == ws)?;
        let (_, entry) = entries.swap_remove(at);
        if entries.is_empty() {
            self.customers.remove(id);
        }
        self.entries -= 1;
        Some(entry)
    }

    fn identity(&self, ws: &WorkspaceId, key: &IdentityKey) -> Option<&Entry<Option<Identity>>> {
        self.identities.get(ws)?.get(key)
    }

    fn put_identity(
        &mut self,
        ws: &WorkspaceId,
        key: &IdentityKey,
        entry: Entry<Option<Identity>>,
    ) {
        if !self.identities.contains_key(ws) {
            self.identities.insert(ws.clone(), HashMap::new());
        }
        let Some(keys) = self.identities.get_mut(ws) else {
            return;
        };
        match keys.get_mut(key) {
            Some(slot) => *slot = entry,
            None => {
                keys.insert(key.clone(), entry);
                self.entries += 1;
            }
        }
    }

    fn remove_identity(&mut self, ws: &WorkspaceId, key: &IdentityKey) {
        if self
            .identities
            .get_mut(ws)
            .and_then(|m| m.remove(key))
            .is_some()
        {
            self.entries -= 1;
        }
    }

    fn remove_identities(&mut self, ws: &WorkspaceId) {
        if let Some(removed) = self.identities.remove(ws) {
            self.entries -= removed.len();
        }
    }
}

/// The writer's rows from one transaction to the next (committed state only).
#[derive(Default)]
pub(crate) struct RowCache {
    newer: Layer,
    older: Layer,
    /// `PRAGMA data_version` when the cache was last known to be current.
    data_version: Option<i64>,
}

impl RowCache {
    /// Empties the cache unless `data_version` (read inside the write transaction about to use
    /// the cache) is the one seen last: another connection committed since.
    pub(crate) fn check_data_version(&mut self, data_version: i64) {
        if self.data_version != Some(data_version) {
            self.clear();
            self.data_version = Some(data_version);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.newer = Layer::default();
        self.older = Layer::default();
        self.data_version = None;
    }

    /// Adds what a committed transaction learnt.
    pub(crate) fn merge(&mut self, layer: Layer) {
        let Layer {
            workspaces,
            customers,
            identities,
            identities_reset,
            entries: _,
        } = layer;
        self.newer.workspaces.extend(workspaces);
        for ws in &identities_reset {
            self.newer.remove_identities(ws);
            self.older.remove_identities(ws);
        }
        for (id, entries) in customers {
            for (ws, entry) in entries {
                self.older.take_customer(&ws, &id);
                match entry {
                    Entry::Known(known) => self.newer.put_customer(&ws, &id, Entry::Known(known)),
                    Entry::Unknown => {
                        self.newer.take_customer(&ws, &id);
                    }
                }
            }
        }
        for (ws, keys) in identities {
            for (key, entry) in keys {
                self.older.remove_identity(&ws, &key);
                match entry {
                    Entry::Known(found) => self.newer.put_identity(&ws, &key, Entry::Known(found)),
                    Entry::Unknown => self.newer.remove_identity(&ws, &key),
                }
            }
        }
        if self.newer.entries > GENERATION_ROWS {
            let workspaces = self.newer.workspaces.clone();
            self.older = std::mem::take(&mut self.newer);
            self.newer.workspaces = workspaces;
        }
    }

    fn customer(&self, ws: &WorkspaceId, id: &CustomerId) -> Option<&KnownCustomer> {
        match self
            .newer
            .customer(ws, id)
            .or_else(|| self.older.customer(ws, id))
        {
            Some(Entry::Known(known)) => Some(known),
            _ => None,
        }
    }

    /// Moves the profile's entry out of the cache (it comes back when the transaction commits).
    fn take_customer(&mut self, ws: &WorkspaceId, id: &CustomerId) -> Option<KnownCustomer> {
        let newer = self.newer.take_customer(ws, id);
        let older = self.older.take_customer(ws, id);
        match newer.or(older) {
            Some(Entry::Known(known)) => Some(known),
            _ => None,
        }
    }

    fn identity(&self, ws: &WorkspaceId, key: &IdentityKey) -> Option<Option<&Identity>> {
        match self
            .newer
            .identity(ws, key)
            .or_else(|| self.older.identity(ws, key))
        {
            Some(Entry::Known(found)) => Some(found.as_ref()),
            _ => None,
        }
    }
}

/// What one transaction knows: its own layer over the cache (none in read transactions and in
/// members of a group commit after the first).
pub(crate) struct Known<'c> {
    /// Off in read transactions, where nothing is updated and recording would only cost.
    enabled: bool,
    base: Option<&'c mut RowCache>,
    local: Layer,
}

/// A time as SQLite gives it back (microsecond precision).
pub(crate) fn as_stored_time(at: Timestamp) -> Timestamp {
    from_micros(micros(&at)).unwrap_or(at)
}

/// The row as SQLite gives it back: timestamps at microsecond precision.
fn as_stored(customer: &mut Customer) {
    for at in [
        &mut customer.first_seen_at,
        &mut customer.last_seen_at,
        &mut customer.created_at,
        &mut customer.updated_at,
    ] {
        *at = as_stored_time(*at);
    }
    for at in [
        &mut customer.stats.first_order_at,
        &mut customer.stats.last_order_at,
    ]
    .into_iter()
    .flatten()
    {
        *at = as_stored_time(*at);
    }
}

impl<'c> Known<'c> {
    /// A write transaction's, over `base` (the writer's cache, when this transaction may use it).
    pub(crate) fn for_writes(base: Option<&'c mut RowCache>) -> Known<'c> {
        Known {
            enabled: true,
            base,
            local: Layer::default(),
        }
    }

    pub(crate) fn for_reads() -> Known<'static> {
        Known {
            enabled: false,
            base: None,
            local: Layer::default(),
        }
    }

    /// What this transaction learnt, to merge into the cache once it committed.
    pub(crate) fn into_layer(self) -> Layer {
        self.local
    }

    pub(crate) fn workspace_seq(&self, ws: &WorkspaceId) -> Option<i64> {
        self.local
            .workspaces
            .get(ws)
            .or_else(|| self.base.as_ref()?.newer.workspaces.get(ws))
            .copied()
    }

    pub(crate) fn set_workspace_seq(&mut self, ws: &WorkspaceId, seq: i64) {
        if self.enabled {
            self.local.workspaces.insert(ws.clone(), seq);
        }
    }

    pub(crate) fn customer(&self, ws: &WorkspaceId, id: &CustomerId) -> Option<&KnownCustomer> {
        match self.local.customer(ws, id) {
            Some(Entry::Known(known)) => Some(known),
            Some(Entry::Unknown) => None,
            None => self.base.as_ref()?.customer(ws, id),
        }
    }

    /// The stored row of a profile, to change in place along with the database (moved into this
    /// transaction's layer first); with its seq.
    pub(crate) fn row_mut(
        &mut self,
        ws: &WorkspaceId,
        id: &CustomerId,
    ) -> Option<(i64, &mut Customer)> {
        if self.local.customer(ws, id).is_none() {
            let from_base = self.base.as_mut()?.take_customer(ws, id)?;
            self.local.put_customer(ws, id, Entry::Known(from_base));
        }
        match self.local.customer_mut(ws, id)? {
            Entry::Known(KnownCustomer {
                seq,
                row: Some(row),
            }) => Some((*seq, row)),
            _ => None,
        }
    }

    /// Records the row as it now stands (inserted or updated).
    pub(crate) fn set_row(&mut self, seq: i64, row: &Customer) {
        if self.enabled {
            let mut stored = row.clone();
            as_stored(&mut stored);
            let entry = Entry::Known(KnownCustomer {
                seq,
                row: Some(stored),
            });
            self.local.put_customer(&row.workspace_id, &row.id, entry);
        }
    }

    /// Records a row read from the database, handing it back.
    pub(crate) fn read_row(&mut self, seq: i64, row: Customer) -> Customer {
        if self.enabled {
            self.set_row(seq, &row);
        }
        row
    }

    /// Records only the seq of a profile (looked up, not read).
    pub(crate) fn set_seq(&mut self, ws: &WorkspaceId, id: &CustomerId, seq: i64) {
        if self.enabled && self.customer(ws, id).is_none() {
            self.local
                .put_customer(ws, id, Entry::Known(KnownCustomer { seq, row: None }));
        }
    }

    /// The profile's row changed in a way not recorded here (or was deleted): ask the database.
    pub(crate) fn forget(&mut self, ws: &WorkspaceId, id: &CustomerId) {
        if self.enabled {
            self.local.put_customer(ws, id, Entry::Unknown);
        }
    }

    /// `Some(None)`: the identifier is known not to exist.
    pub(crate) fn identity(
        &self,
        ws: &WorkspaceId,
        key: &IdentityKey,
    ) -> Option<Option<&Identity>> {
        match self.local.identity(ws, key) {
            Some(Entry::Known(found)) => Some(found.as_ref()),
            Some(Entry::Unknown) => None,
            None if self.local.identities_reset.contains(ws) => None,
            None => self.base.as_ref()?.identity(ws, key),
        }
    }

    /// Records an identity as stored (`None`: none with this key).
    pub(crate) fn set_identity(
        &mut self,
        ws: &WorkspaceId,
        key: &IdentityKey,
        identity: Option<&Identity>,
    ) {
        if self.enabled {
            let mut identity = identity.cloned();
            if let Some(i) = identity.as_mut() {
                i.created_at = as_stored_time(i.created_at);
            }
            self.local.put_identity(ws, key, Entry::Known(identity));
        }
    }

    pub(crate) fn forget_identity(&mut self, ws: &WorkspaceId, key: &IdentityKey) {
        if self.enabled {
            self.local.put_identity(ws, key, Entry::Unknown);
        }
    }

    /// Identities of the workspace were deleted beyond what is recorded here.
    pub(crate) fn forget_identities(&mut self, ws: &WorkspaceId) {
        if self.enabled {
            self.local.remove_identities(ws);
            self.local.identities_reset.insert(ws.clone());
        }
    }
}
