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
//! The cache is bounded: two generations of at most [`GENERATION_SIZE`] each; when the newer one
//! fills up, the older is dropped (what was used since stays in the newer one).

use crate::codec::{from_micros, micros};
use ciclo_domain::customer::Customer;
use ciclo_domain::identity::{Identity, IdentityKey};
use ciclo_domain::ids::{CustomerId, WorkspaceId};
use ciclo_domain::Timestamp;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The size of a generation of the cache, in units of [`Layer::size`] (about 256 bytes of
/// memory each): 16 MiB, so that the cache stays within some tens of MiB whatever the number of
/// profiles (measured: the server's peak RSS at a million events over 100,000 customers, where
/// the cache turns over constantly, was 304 MB with twice this, 1.3× the cache's own estimate).
pub(crate) const GENERATION_SIZE: usize = 1 << 16;

/// FxHash (the Rust compiler's): a multiply-rotate hash, several times faster than the standard
/// SipHash on short keys. Only for customer ids, which the store generates (ULIDs), so no input
/// can pick keys that collide; identifiers (emails, user ids) keep the standard, keyed hash.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(word);
            self.add(u64::from_le_bytes(buf));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A profile as known: its seq, and its row when it was read or written (only the seq when it
/// was merely looked up).
#[derive(Clone)]
pub(crate) struct KnownCustomer {
    pub seq: i64,
    /// Boxed: entries move between maps, and a profile is some hundreds of bytes.
    pub row: Option<Box<Customer>>,
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
    /// By id alone, with the workspace checked on the way out: ids are unique in practice (see
    /// `conflicted` for when they are not).
    customers: FastMap<CustomerId, (WorkspaceId, Entry<KnownCustomer>)>,
    /// Two workspaces used the same customer id in this layer, so the first one's entry was
    /// lost: a transaction's layer then hides the whole cache, and empties it when merged.
    conflicted: bool,
    /// `None`: known not to exist.
    identities: HashMap<WorkspaceId, HashMap<IdentityKey, Entry<Option<Identity>>>>,
    /// Workspaces whose identities may have changed beyond what `identities` says (a profile
    /// and its identities were deleted): lower layers' identities of these are not to be used.
    identities_reset: HashSet<WorkspaceId>,
    customers_held: usize,
    identities_held: usize,
}

impl Layer {
    /// Roughly how much memory the layer holds, in 256-byte units: a profile takes about four,
    /// an identity one.
    fn size(&self) -> usize {
        self.customers_held * 4 + self.identities_held
    }

    fn customer(&self, ws: &WorkspaceId, id: &CustomerId) -> Option<&Entry<KnownCustomer>> {
        match self.customers.get(id) {
            Some((owner, entry)) if owner == ws => Some(entry),
            _ => None,
        }
    }

    fn customer_mut(
        &mut self,
        ws: &WorkspaceId,
        id: &CustomerId,
    ) -> Option<&mut Entry<KnownCustomer>> {
        match self.customers.get_mut(id) {
            Some((owner, entry)) if owner == ws => Some(entry),
            _ => None,
        }
    }

    /// `put_customer` with owned keys (no clones when the key is new).
    fn put_customer_owned(&mut self, ws: WorkspaceId, id: CustomerId, entry: Entry<KnownCustomer>) {
        match self.customers.get_mut(&id) {
            Some((owner, slot)) => {
                if *owner != ws {
                    self.conflicted = true;
                    *owner = ws;
                }
                *slot = entry;
            }
            None => {
                self.customers.insert(id, (ws, entry));
                self.customers_held += 1;
            }
        }
    }

    fn put_customer(&mut self, ws: &WorkspaceId, id: &CustomerId, entry: Entry<KnownCustomer>) {
        match self.customers.get_mut(id) {
            Some((owner, slot)) => {
                if owner != ws {
                    self.conflicted = true;
                    owner.clone_from(ws);
                }
                *slot = entry;
            }
            None => {
                self.customers.insert(id.clone(), (ws.clone(), entry));
                self.customers_held += 1;
            }
        }
    }

    fn take_customer(&mut self, ws: &WorkspaceId, id: &CustomerId) -> Option<Entry<KnownCustomer>> {
        let (owner, entry) = self.customers.remove(id)?;
        if &owner == ws {
            self.customers_held -= 1;
            Some(entry)
        } else {
            // Another workspace's: not the one asked for, kept.
            self.customers.insert(id.clone(), (owner, entry));
            None
        }
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
                self.identities_held += 1;
            }
        }
    }

    fn remove_identities(&mut self, ws: &WorkspaceId) {
        if let Some(removed) = self.identities.remove(ws) {
            self.identities_held -= removed.len();
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
            conflicted,
            customers_held: _,
            identities_held: _,
        } = layer;
        self.newer.workspaces.extend(workspaces);
        for ws in &identities_reset {
            self.newer.remove_identities(ws);
            self.older.remove_identities(ws);
        }
        if conflicted {
            self.clear();
            return;
        }
        for (id, (ws, entry)) in customers {
            self.older.take_customer(&ws, &id);
            match entry {
                Entry::Known(known) => self.newer.put_customer_owned(ws, id, Entry::Known(known)),
                Entry::Unknown => {
                    self.newer.take_customer(&ws, &id);
                }
            }
        }
        for (ws, keys) in identities {
            let mut older = self.older.identities.get_mut(&ws);
            let newer = self.newer.identities.entry(ws).or_default();
            for (key, entry) in keys {
                if older.as_mut().and_then(|o| o.remove(&key)).is_some() {
                    self.older.identities_held -= 1;
                }
                match entry {
                    Entry::Known(found) => {
                        if newer.insert(key, Entry::Known(found)).is_none() {
                            self.newer.identities_held += 1;
                        }
                    }
                    Entry::Unknown => {
                        if newer.remove(&key).is_some() {
                            self.newer.identities_held -= 1;
                        }
                    }
                }
            }
        }
        if self.newer.size() > GENERATION_SIZE {
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

    /// The cache, unless this transaction's layer hides it.
    fn base(&self) -> Option<&RowCache> {
        match &self.base {
            Some(base) if !self.local.conflicted => Some(base),
            _ => None,
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
            .or_else(|| self.base()?.newer.workspaces.get(ws))
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
            None => self.base()?.customer(ws, id),
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
            if self.local.conflicted {
                return None;
            }
            let from_base = self.base.as_mut()?.take_customer(ws, id)?;
            self.local.put_customer(ws, id, Entry::Known(from_base));
        }
        match self.local.customer_mut(ws, id)? {
            Entry::Known(KnownCustomer {
                seq,
                row: Some(row),
            }) => Some((*seq, &mut **row)),
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
                row: Some(Box::new(stored)),
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
            None => self.base()?.identity(ws, key),
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

#[cfg(test)]
mod tests {
    use super::*;
    use ciclo_domain::identity::IdentityKind;
    use ciclo_domain::DateTime;

    fn at() -> Timestamp {
        DateTime::from_timestamp(1_767_225_600, 123_456_789).unwrap_or_default()
    }

    fn ws(n: u128) -> WorkspaceId {
        WorkspaceId::generate(1, n)
    }

    fn customer(ws: &WorkspaceId, n: u128) -> Customer {
        Customer::new(CustomerId::generate(1, n), ws.clone(), at())
    }

    /// Runs one "transaction" over the cache and merges what it learnt (as a commit would).
    fn commit(cache: &mut RowCache, work: impl FnOnce(&mut Known<'_>)) {
        let mut known = Known::for_writes(Some(cache));
        work(&mut known);
        let layer = known.into_layer();
        cache.merge(layer);
    }

    #[test]
    fn committed_rows_are_found_later_as_stored() {
        let mut cache = RowCache::default();
        let a = ws(1);
        let ana = customer(&a, 1);
        commit(&mut cache, |k| k.set_row(7, &ana));
        let known = Known::for_writes(Some(&mut cache));
        let found = known.customer(&a, &ana.id).expect("cached");
        assert_eq!(found.seq, 7);
        let row = found.row.as_deref().expect("with its row");
        assert_eq!(row.first_seen_at.timestamp_subsec_nanos(), 123_456_000);
        assert!(known.customer(&ws(2), &ana.id).is_none(), "per workspace");
    }

    #[test]
    fn a_forgotten_row_hides_the_cache_and_leaves_it() {
        let mut cache = RowCache::default();
        let a = ws(1);
        let ana = customer(&a, 1);
        commit(&mut cache, |k| k.set_row(7, &ana));
        commit(&mut cache, |k| {
            k.forget(&a, &ana.id);
            assert!(k.customer(&a, &ana.id).is_none());
        });
        assert!(Known::for_writes(Some(&mut cache))
            .customer(&a, &ana.id)
            .is_none());
    }

    #[test]
    fn rows_changed_in_place_move_to_the_transaction() {
        let mut cache = RowCache::default();
        let a = ws(1);
        let ana = customer(&a, 1);
        commit(&mut cache, |k| k.set_row(7, &ana));
        {
            // A transaction that changes the row and rolls back (its layer is dropped).
            let mut known = Known::for_writes(Some(&mut cache));
            let (_, row) = known.row_mut(&a, &ana.id).expect("known row");
            row.name = Some("Rolled back".into());
        }
        assert!(
            Known::for_writes(Some(&mut cache))
                .customer(&a, &ana.id)
                .is_none(),
            "the row left the cache with the transaction that changed it"
        );
    }

    #[test]
    fn identities_of_a_workspace_can_be_forgotten_at_once() {
        let mut cache = RowCache::default();
        let (a, b) = (ws(1), ws(2));
        let key = IdentityKey::new(IdentityKind::Email, "ana@x.com");
        let absent = IdentityKey::new(IdentityKind::Email, "bia@x.com");
        commit(&mut cache, |k| {
            k.set_identity(&a, &absent, None);
            k.set_identity(&b, &absent, None);
        });
        commit(&mut cache, |k| {
            assert_eq!(k.identity(&a, &absent), Some(None), "known absent");
            k.forget_identities(&a);
            assert_eq!(k.identity(&a, &absent), None);
            assert_eq!(
                k.identity(&b, &absent),
                Some(None),
                "other workspaces keep theirs"
            );
            assert_eq!(k.identity(&a, &key), None);
        });
        let known = Known::for_writes(Some(&mut cache));
        assert_eq!(known.identity(&a, &absent), None);
        assert_eq!(known.identity(&b, &absent), Some(None));
    }

    #[test]
    fn one_id_in_two_workspaces_empties_the_cache() {
        let mut cache = RowCache::default();
        let (a, b) = (ws(1), ws(2));
        let other = customer(&a, 9);
        commit(&mut cache, |k| k.set_row(9, &other));
        let ana_a = customer(&a, 1);
        let mut ana_b = customer(&b, 1);
        ana_b.name = Some("B".into());
        commit(&mut cache, |k| {
            k.set_row(1, &ana_a);
            k.forget(&a, &ana_a.id);
            // Same id in workspace b: the tombstone of a is lost, so nothing below is trusted.
            k.set_row(2, &ana_b);
            assert!(k.customer(&a, &other.id).is_none());
            assert!(k.customer(&a, &ana_a.id).is_none());
        });
        let known = Known::for_writes(Some(&mut cache));
        assert!(known.customer(&a, &other.id).is_none(), "emptied");
        assert!(known.customer(&a, &ana_a.id).is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let mut cache = RowCache::default();
        let a = ws(1);
        let per_commit = 1_000u128;
        // Three generations' worth of profiles.
        let rounds = GENERATION_SIZE as u128 / 4 / per_commit * 3;
        for round in 0..rounds {
            commit(&mut cache, |k| {
                for n in 0..per_commit {
                    k.set_row(1, &customer(&a, round * per_commit + n));
                }
            });
            assert!(cache.newer.size() <= GENERATION_SIZE);
            assert!(cache.older.size() <= GENERATION_SIZE + per_commit as usize * 4);
        }
        let last = customer(&a, rounds * per_commit - 1);
        assert!(Known::for_writes(Some(&mut cache))
            .customer(&a, &last.id)
            .is_some());
    }
}
