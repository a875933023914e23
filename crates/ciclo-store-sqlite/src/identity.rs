//! The identity graph: identities (which identifier belongs to which profile), merge records and
//! identity conflicts.

use crate::codec::{
    get_json, get_opt_ts, get_parsed, get_ts, ids_json, micros, opt_micros, to_json,
};
use crate::error::{expect_one, Db};
use crate::known::Known;
use ciclo_domain::identity::{Identity, IdentityKey, IdentityKind};
use ciclo_domain::ids::{ConflictId, CustomerId, MergeId, WorkspaceId};
use ciclo_store::{IdentityConflict, MergeRecord, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

const IDENTITY_COLUMNS: &str = "i.kind, i.value, i.customer_id, i.source, i.created_at";

fn identity_from_row(row: &Row<'_>) -> rusqlite::Result<Identity> {
    Ok(Identity {
        key: IdentityKey {
            kind: get_parsed(row, 0, IdentityKind::parse)?,
            value: row.get(1)?,
        },
        customer_id: CustomerId::from_trusted(row.get(2)?),
        source: row.get(3)?,
        created_at: get_ts(row, 4)?,
    })
}

/// Each key not known to the writer (see `known.rs`) is one execution of a cached statement, a
/// probe of the primary key: in process, that is cheaper than passing the keys as one JSON
/// document to unpack in SQL.
pub(crate) fn find_identities(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    keys: &[IdentityKey],
) -> StoreResult<Vec<Identity>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut unique: Vec<&IdentityKey> = keys.iter().collect();
    unique.sort();
    unique.dedup();
    let mut stmt = conn
        .prepare_cached(
            "SELECT customer_id, source, created_at FROM identities
             WHERE workspace_id = ?1 AND kind = ?2 AND value = ?3",
        )
        .db()?;
    let mut found: Vec<(String, Identity)> = Vec::new();
    for key in unique {
        let kind = key.kind.as_string();
        if let Some(cached) = known.identity(ws, key) {
            found.extend(cached.map(|identity| (kind, identity.clone())));
            continue;
        }
        let identity = stmt
            .query_row(params![ws.as_str(), kind, key.value], |row| {
                Ok(Identity {
                    key: key.clone(),
                    customer_id: CustomerId::from_trusted(row.get(0)?),
                    source: row.get(1)?,
                    created_at: get_ts(row, 2)?,
                })
            })
            .optional()
            .db()?;
        known.set_identity(ws, key, identity.as_ref());
        if let Some(identity) = identity {
            found.push((kind, identity));
        }
    }
    // In the order of the stored columns, as the other queries return identities.
    found.sort_by(|(a_kind, a), (b_kind, b)| (a_kind, &a.key.value).cmp(&(b_kind, &b.key.value)));
    Ok(found.into_iter().map(|(_, identity)| identity).collect())
}

pub(crate) fn insert_identity(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    identity: &Identity,
) -> StoreResult<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO identities (workspace_id, kind, value, customer_id, source, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (workspace_id, kind, value) DO NOTHING",
        )
        .db()?
        .execute(params![
            ws.as_str(),
            identity.key.kind.as_string(),
            identity.key.value,
            identity.customer_id.as_str(),
            identity.source,
            micros(&identity.created_at)
        ])
        .db();
    match inserted {
        Ok(1) => known.set_identity(ws, &identity.key, Some(identity)),
        // Another row holds the key (or the statement failed): not recorded here.
        _ => known.forget_identity(ws, &identity.key),
    }
    Ok(inserted? == 1)
}

pub(crate) fn identities_of(
    conn: &Connection,
    ws: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<Vec<Identity>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities i
             WHERE i.workspace_id = ?1 AND i.customer_id IN (SELECT value FROM json_each(?2))
             ORDER BY i.kind, i.value"
        ))
        .db()?;
    let rows = stmt
        .query_map(params![ws.as_str(), ids_json(customers)], identity_from_row)
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn delete_identity(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    key: &IdentityKey,
) -> StoreResult<()> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM identities WHERE workspace_id = ?1 AND kind = ?2 AND value = ?3",
        )
        .db()?
        .execute(params![ws.as_str(), key.kind.as_string(), key.value])
        .db();
    match deleted {
        Ok(_) => known.set_identity(ws, key, None),
        Err(_) => known.forget_identity(ws, key),
    }
    deleted.map(|_| ())
}

/// Reads an identity key stored as two nullable columns.
fn get_opt_key(row: &Row<'_>, kind: usize, value: usize) -> rusqlite::Result<Option<IdentityKey>> {
    let value: Option<String> = row.get(value)?;
    match value {
        Some(value) => Ok(Some(IdentityKey {
            kind: get_parsed(row, kind, IdentityKind::parse)?,
            value,
        })),
        None => Ok(None),
    }
}

const MERGE_COLUMNS: &str =
    "id, workspace_id, winner_id, loser_id, via_kind, via_value, message_id, source, actor, \
     filled, created_at, undone_at, undone_by";

fn merge_from_row(row: &Row<'_>) -> rusqlite::Result<MergeRecord> {
    Ok(MergeRecord {
        id: MergeId::from_trusted(row.get(0)?),
        workspace_id: WorkspaceId::from_trusted(row.get(1)?),
        winner_id: CustomerId::from_trusted(row.get(2)?),
        loser_id: CustomerId::from_trusted(row.get(3)?),
        via: get_opt_key(row, 4, 5)?,
        message_id: row.get(6)?,
        source: row.get(7)?,
        actor: row.get(8)?,
        filled: get_json(row, 9)?,
        created_at: get_ts(row, 10)?,
        undone_at: get_opt_ts(row, 11)?,
        undone_by: row.get(12)?,
    })
}

pub(crate) fn insert_merge(conn: &Connection, m: &MergeRecord) -> StoreResult<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO merges ({MERGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))
    .db()?
    .execute(params![
        m.id.as_str(),
        m.workspace_id.as_str(),
        m.winner_id.as_str(),
        m.loser_id.as_str(),
        m.via.as_ref().map(|k| k.kind.as_string()),
        m.via.as_ref().map(|k| k.value.as_str()),
        m.message_id,
        m.source,
        m.actor,
        to_json(&m.filled)?,
        micros(&m.created_at),
        opt_micros(&m.undone_at),
        m.undone_by
    ])
    .db()?;
    Ok(())
}

pub(crate) fn update_merge(conn: &Connection, m: &MergeRecord) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE merges SET winner_id = ?3, loser_id = ?4, via_kind = ?5, via_value = ?6, message_id = ?7,
                 source = ?8, actor = ?9, filled = ?10, created_at = ?11, undone_at = ?12, undone_by = ?13
             WHERE id = ?1 AND workspace_id = ?2",
        )
        .db()?
        .execute(params![
            m.id.as_str(),
            m.workspace_id.as_str(),
            m.winner_id.as_str(),
            m.loser_id.as_str(),
            m.via.as_ref().map(|k| k.kind.as_string()),
            m.via.as_ref().map(|k| k.value.as_str()),
            m.message_id,
            m.source,
            m.actor,
            to_json(&m.filled)?,
            micros(&m.created_at),
            opt_micros(&m.undone_at),
            m.undone_by
        ])
        .db()?;
    expect_one(changed)
}

pub(crate) fn get_merge(
    conn: &Connection,
    ws: &WorkspaceId,
    id: &MergeId,
) -> StoreResult<Option<MergeRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {MERGE_COLUMNS} FROM merges WHERE workspace_id = ?1 AND id = ?2"
    ))
    .db()?
    .query_row([ws.as_str(), id.as_str()], merge_from_row)
    .optional()
    .db()
}

pub(crate) fn merges_of(
    conn: &Connection,
    ws: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<Vec<MergeRecord>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MERGE_COLUMNS} FROM merges
             WHERE workspace_id = ?1
                 AND (winner_id IN (SELECT value FROM json_each(?2)) OR loser_id IN (SELECT value FROM json_each(?2)))
             ORDER BY created_at DESC, id DESC"
        ))
        .db()?;
    let rows = stmt
        .query_map(params![ws.as_str(), ids_json(customers)], merge_from_row)
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

const CONFLICT_COLUMNS: &str =
    "id, workspace_id, customer_a, customer_b, via_kind, via_value, message_id, created_at, resolution, resolved_at";

fn conflict_from_row(row: &Row<'_>) -> rusqlite::Result<IdentityConflict> {
    Ok(IdentityConflict {
        id: ConflictId::from_trusted(row.get(0)?),
        workspace_id: WorkspaceId::from_trusted(row.get(1)?),
        customer_a: CustomerId::from_trusted(row.get(2)?),
        customer_b: CustomerId::from_trusted(row.get(3)?),
        via: IdentityKey {
            kind: get_parsed(row, 4, IdentityKind::parse)?,
            value: row.get(5)?,
        },
        message_id: row.get(6)?,
        created_at: get_ts(row, 7)?,
        resolution: row.get(8)?,
        resolved_at: get_opt_ts(row, 9)?,
    })
}

pub(crate) fn insert_conflict(conn: &Connection, c: &IdentityConflict) -> StoreResult<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO identity_conflicts ({CONFLICT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))
    .db()?
    .execute(params![
        c.id.as_str(),
        c.workspace_id.as_str(),
        c.customer_a.as_str(),
        c.customer_b.as_str(),
        c.via.kind.as_string(),
        c.via.value,
        c.message_id,
        micros(&c.created_at),
        c.resolution,
        opt_micros(&c.resolved_at)
    ])
    .db()?;
    Ok(())
}

pub(crate) fn update_conflict(conn: &Connection, c: &IdentityConflict) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE identity_conflicts SET customer_a = ?3, customer_b = ?4, via_kind = ?5, via_value = ?6,
                 message_id = ?7, created_at = ?8, resolution = ?9, resolved_at = ?10
             WHERE id = ?1 AND workspace_id = ?2",
        )
        .db()?
        .execute(params![
            c.id.as_str(),
            c.workspace_id.as_str(),
            c.customer_a.as_str(),
            c.customer_b.as_str(),
            c.via.kind.as_string(),
            c.via.value,
            c.message_id,
            micros(&c.created_at),
            c.resolution,
            opt_micros(&c.resolved_at)
        ])
        .db()?;
    expect_one(changed)
}

pub(crate) fn get_conflict(
    conn: &Connection,
    ws: &WorkspaceId,
    id: &ConflictId,
) -> StoreResult<Option<IdentityConflict>> {
    conn.prepare_cached(&format!(
        "SELECT {CONFLICT_COLUMNS} FROM identity_conflicts WHERE workspace_id = ?1 AND id = ?2"
    ))
    .db()?
    .query_row([ws.as_str(), id.as_str()], conflict_from_row)
    .optional()
    .db()
}

pub(crate) fn list_conflicts(
    conn: &Connection,
    ws: &WorkspaceId,
    open_only: bool,
    limit: i64,
) -> StoreResult<Vec<IdentityConflict>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CONFLICT_COLUMNS} FROM identity_conflicts
             WHERE workspace_id = ?1 AND (?2 = 0 OR resolution IS NULL)
             ORDER BY created_at DESC, id DESC LIMIT ?3"
        ))
        .db()?;
    let rows = stmt
        .query_map(
            params![ws.as_str(), open_only, limit.max(0)],
            conflict_from_row,
        )
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}
