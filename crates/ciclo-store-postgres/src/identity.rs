//! The identity graph: identities, merge records and identity conflicts.

use crate::rows::{self, get};
use crate::tx::{distinct_ids, require_one, sql_limit, PgTx};
use ciclo_domain::identity::{Identity, IdentityKey};
use ciclo_domain::ids::*;
use ciclo_domain::Timestamp;
use ciclo_store::{IdentityConflict, MergeRecord, StoreError, StoreResult};
use postgres::Row;
use std::collections::{HashMap, HashSet};

fn identity_from(row: &Row) -> StoreResult<Identity> {
    Ok(Identity {
        key: rows::identity_key(row, "kind", "value")?,
        customer_id: rows::id(row, "customer_id", CustomerId::from_trusted)?,
        source: get(row, "source")?,
        created_at: get(row, "created_at")?,
    })
}

/// All the keys in one statement: one probe of the primary key per key, a plan that
/// `LATERAL … OFFSET 0` pins (see [`crate::events::existing_message_ids`]).
pub(crate) fn find_identities(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    keys: &[IdentityKey],
) -> StoreResult<Vec<Identity>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    // Each key once: ingestion looks up every key of a batch at once, with many repeats.
    let mut seen = HashSet::with_capacity(keys.len());
    let mut kinds: Vec<String> = Vec::with_capacity(keys.len());
    let mut values: Vec<&str> = Vec::with_capacity(keys.len());
    for key in keys {
        if seen.insert(key) {
            kinds.push(key.kind.as_string());
            values.push(&key.value);
        }
    }
    tx.query(
        "SELECT i.kind, i.value, i.customer_id, i.source, i.created_at
         FROM unnest($2::text[], $3::text[]) AS k(kind, value)
         CROSS JOIN LATERAL (
             SELECT * FROM identities i
             WHERE i.workspace_id = $1 AND i.kind = k.kind AND i.value = k.value
             OFFSET 0
         ) i
         ORDER BY i.kind, i.value",
        &[&workspace.as_str(), &kinds, &values],
    )?
    .iter()
    .map(identity_from)
    .collect()
}

pub(crate) fn insert_identity(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    identity: &Identity,
) -> StoreResult<bool> {
    let inserted = tx.execute(
        "INSERT INTO identities (workspace_id, kind, value, customer_id, source, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (workspace_id, kind, value) DO NOTHING",
        &[
            &workspace.as_str(),
            &identity.key.kind.as_string(),
            &identity.key.value,
            &identity.customer_id.as_str(),
            &identity.source,
            &identity.created_at,
        ],
    )?;
    Ok(inserted == 1)
}

/// All the identities in one statement. Like [`crate::events::insert_events`]: repeats within
/// the call are dropped first (the first occurrence is the one inserted), rows go in key order
/// so that concurrent batches cannot deadlock, and `RETURNING` says which went in.
pub(crate) fn insert_identities(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    identities: &[Identity],
) -> StoreResult<Vec<bool>> {
    if identities.is_empty() {
        return Ok(Vec::new());
    }
    let kinds: Vec<String> = identities.iter().map(|i| i.key.kind.as_string()).collect();
    let mut first_of_key: HashMap<(&str, &str), usize> = HashMap::with_capacity(identities.len());
    for (index, identity) in identities.iter().enumerate() {
        first_of_key
            .entry((kinds[index].as_str(), identity.key.value.as_str()))
            .or_insert(index);
    }
    let mut unique: Vec<usize> = first_of_key.values().copied().collect();
    unique.sort_by_key(|&i| (kinds[i].as_str(), identities[i].key.value.as_str()));
    let unique_kinds: Vec<&str> = unique.iter().map(|&i| kinds[i].as_str()).collect();
    let values: Vec<&str> = unique
        .iter()
        .map(|&i| identities[i].key.value.as_str())
        .collect();
    let customers: Vec<&str> = unique
        .iter()
        .map(|&i| identities[i].customer_id.as_str())
        .collect();
    let sources: Vec<&str> = unique
        .iter()
        .map(|&i| identities[i].source.as_str())
        .collect();
    let created_at: Vec<Timestamp> = unique.iter().map(|&i| identities[i].created_at).collect();
    let rows = tx.query(
        "INSERT INTO identities (workspace_id, kind, value, customer_id, source, created_at)
         SELECT $1, unnest($2::text[]), unnest($3::text[]), unnest($4::text[]), unnest($5::text[]),
             unnest($6::timestamptz[])
         ON CONFLICT (workspace_id, kind, value) DO NOTHING
         RETURNING kind, value",
        &[
            &workspace.as_str(),
            &unique_kinds,
            &values,
            &customers,
            &sources,
            &created_at,
        ],
    )?;
    let mut inserted = vec![false; identities.len()];
    for row in &rows {
        let key: (&str, &str) = (get(row, "kind")?, get(row, "value")?);
        if let Some(&index) = first_of_key.get(&key) {
            inserted[index] = true;
        }
    }
    Ok(inserted)
}

/// One walk of `identities_customer` per profile (`OFFSET 0` keeps the subquery, and so that
/// plan, whatever the statistics say).
pub(crate) fn identities_of(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<Vec<Identity>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    tx.query(
        "SELECT i.kind, i.value, i.customer_id, i.source, i.created_at
         FROM unnest($2::text[]) AS k(customer_id)
         CROSS JOIN LATERAL (
             SELECT * FROM identities i
             WHERE i.workspace_id = $1 AND i.customer_id = k.customer_id
             OFFSET 0
         ) i
         ORDER BY i.kind, i.value",
        &[&workspace.as_str(), &distinct_ids(customers)],
    )?
    .iter()
    .map(identity_from)
    .collect()
}

pub(crate) fn delete_identity(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    key: &IdentityKey,
) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM identities WHERE workspace_id = $1 AND kind = $2 AND value = $3",
        &[&workspace.as_str(), &key.kind.as_string(), &key.value],
    )?;
    Ok(())
}

// --- merges --------------------------------------------------------------------------------------

macro_rules! merge_columns {
    () => {
        "workspace_id, id, winner_id, loser_id, via_kind, via_value, message_id, source, actor, filled, \
         created_at, undone_at, undone_by"
    };
}

fn merge_from(row: &Row) -> StoreResult<MergeRecord> {
    Ok(MergeRecord {
        id: rows::id(row, "id", MergeId::from_trusted)?,
        workspace_id: rows::id(row, "workspace_id", WorkspaceId::from_trusted)?,
        winner_id: rows::id(row, "winner_id", CustomerId::from_trusted)?,
        loser_id: rows::id(row, "loser_id", CustomerId::from_trusted)?,
        via: rows::opt_identity_key(row, "via_kind", "via_value")?,
        message_id: get(row, "message_id")?,
        source: get(row, "source")?,
        actor: get(row, "actor")?,
        filled: rows::decode_patch(get(row, "filled")?, "filled")?,
        created_at: get(row, "created_at")?,
        undone_at: get(row, "undone_at")?,
        undone_by: get(row, "undone_by")?,
    })
}

/// Runs an insert or update of a whole merge row (`$1` = workspace, `$2` = id).
fn write_merge(tx: &mut PgTx<'_>, sql: &'static str, m: &MergeRecord) -> StoreResult<u64> {
    let via_kind = m.via.as_ref().map(|k| k.kind.as_string());
    let via_value = m.via.as_ref().map(|k| k.value.as_str());
    let filled = rows::encode_patch(&m.filled)?;
    tx.execute(
        sql,
        &[
            &m.workspace_id.as_str(),
            &m.id.as_str(),
            &m.winner_id.as_str(),
            &m.loser_id.as_str(),
            &via_kind,
            &via_value,
            &m.message_id,
            &m.source,
            &m.actor,
            &filled,
            &m.created_at,
            &m.undone_at,
            &m.undone_by,
        ],
    )
}

pub(crate) fn insert_merge(tx: &mut PgTx<'_>, m: &MergeRecord) -> StoreResult<()> {
    let inserted = write_merge(
        tx,
        concat!(
            "INSERT INTO merges (",
            merge_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING"
        ),
        m,
    )?;
    if inserted == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict("merges_pkey".into()))
    }
}

pub(crate) fn get_merge(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    id: &MergeId,
) -> StoreResult<Option<MergeRecord>> {
    tx.query_opt(
        concat!(
            "SELECT ",
            merge_columns!(),
            " FROM merges WHERE workspace_id = $1 AND id = $2"
        ),
        &[&workspace.as_str(), &id.as_str()],
    )?
    .as_ref()
    .map(merge_from)
    .transpose()
}

pub(crate) fn update_merge(tx: &mut PgTx<'_>, m: &MergeRecord) -> StoreResult<()> {
    let changed = write_merge(
        tx,
        "UPDATE merges
         SET winner_id = $3, loser_id = $4, via_kind = $5, via_value = $6, message_id = $7, source = $8,
             actor = $9, filled = $10, created_at = $11, undone_at = $12, undone_by = $13
         WHERE workspace_id = $1 AND id = $2",
        m,
    )?;
    require_one(changed)
}

pub(crate) fn merges_of(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<Vec<MergeRecord>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    tx.query(
        concat!(
            "SELECT ",
            merge_columns!(),
            " FROM merges
              WHERE workspace_id = $1 AND (winner_id = ANY($2::text[]) OR loser_id = ANY($2::text[]))
              ORDER BY created_at DESC, id DESC"
        ),
        &[&workspace.as_str(), &distinct_ids(customers)],
    )?
    .iter()
    .map(merge_from)
    .collect()
}

// --- conflicts -----------------------------------------------------------------------------------

macro_rules! conflict_columns {
    () => {
        "workspace_id, id, customer_a, customer_b, via_kind, via_value, message_id, created_at, resolution, \
         resolved_at"
    };
}

fn conflict_from(row: &Row) -> StoreResult<IdentityConflict> {
    Ok(IdentityConflict {
        id: rows::id(row, "id", ConflictId::from_trusted)?,
        workspace_id: rows::id(row, "workspace_id", WorkspaceId::from_trusted)?,
        customer_a: rows::id(row, "customer_a", CustomerId::from_trusted)?,
        customer_b: rows::id(row, "customer_b", CustomerId::from_trusted)?,
        via: rows::identity_key(row, "via_kind", "via_value")?,
        message_id: get(row, "message_id")?,
        created_at: get(row, "created_at")?,
        resolution: get(row, "resolution")?,
        resolved_at: get(row, "resolved_at")?,
    })
}

fn write_conflict(tx: &mut PgTx<'_>, sql: &'static str, c: &IdentityConflict) -> StoreResult<u64> {
    tx.execute(
        sql,
        &[
            &c.workspace_id.as_str(),
            &c.id.as_str(),
            &c.customer_a.as_str(),
            &c.customer_b.as_str(),
            &c.via.kind.as_string(),
            &c.via.value,
            &c.message_id,
            &c.created_at,
            &c.resolution,
            &c.resolved_at,
        ],
    )
}

pub(crate) fn insert_conflict(tx: &mut PgTx<'_>, c: &IdentityConflict) -> StoreResult<()> {
    let inserted = write_conflict(
        tx,
        concat!(
            "INSERT INTO identity_conflicts (",
            conflict_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
        ),
        c,
    )?;
    if inserted == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict("identity_conflicts_pkey".into()))
    }
}

pub(crate) fn update_conflict(tx: &mut PgTx<'_>, c: &IdentityConflict) -> StoreResult<()> {
    let changed = write_conflict(
        tx,
        "UPDATE identity_conflicts
         SET customer_a = $3, customer_b = $4, via_kind = $5, via_value = $6, message_id = $7, created_at = $8,
             resolution = $9, resolved_at = $10
         WHERE workspace_id = $1 AND id = $2",
        c,
    )?;
    require_one(changed)
}

pub(crate) fn get_conflict(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    id: &ConflictId,
) -> StoreResult<Option<IdentityConflict>> {
    tx.query_opt(
        concat!(
            "SELECT ",
            conflict_columns!(),
            " FROM identity_conflicts WHERE workspace_id = $1 AND id = $2"
        ),
        &[&workspace.as_str(), &id.as_str()],
    )?
    .as_ref()
    .map(conflict_from)
    .transpose()
}

pub(crate) fn list_conflicts(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    open_only: bool,
    limit: i64,
) -> StoreResult<Vec<IdentityConflict>> {
    tx.query(
        concat!(
            "SELECT ",
            conflict_columns!(),
            " FROM identity_conflicts
              WHERE workspace_id = $1 AND (NOT $2::boolean OR resolution IS NULL)
              ORDER BY created_at DESC, id DESC
              LIMIT $3::bigint"
        ),
        &[&workspace.as_str(), &open_only, &sql_limit(limit)],
    )?
    .iter()
    .map(conflict_from)
    .collect()
}
