//! Segments and lists with their members and count history, the evaluation queue, computed
//! attributes (lifecycle stage, scores) with the stage history, and workspace settings.
//!
//! Bulk methods loop one cached statement: inside a transaction an execution costs a few
//! microseconds, and a multi-row statement would make SQLite keep a statement journal.
//! `segments.member_count` is kept in step by every statement that adds or removes members
//! (here and in `customers::delete_customer`).

use crate::codec::{
    get_json, get_opt_ts, get_parsed, get_ts, ids_json, micros, opt_micros, to_json,
};
use crate::error::{expect_one, Db};
use ciclo_domain::ids::{CustomerId, SegmentId, WorkspaceId};
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::segment::Expr;
use ciclo_domain::Timestamp;
use ciclo_store::{
    CustomerComputed, DirtyCustomer, SegmentCount, SegmentKind, SegmentRecord, StageChange,
    StageTransition, StoreError, StoreResult,
};
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};
use std::collections::HashMap;

// --- workspace settings ---------------------------------------------------------------------

pub(crate) fn get_setting(
    conn: &Connection,
    ws: &WorkspaceId,
    key: &str,
) -> StoreResult<Option<Value>> {
    conn.prepare_cached("SELECT value FROM workspace_settings WHERE workspace_id = ?1 AND key = ?2")
        .db()?
        .query_row(params![ws.as_str(), key], |row| get_json(row, 0))
        .optional()
        .db()
}

pub(crate) fn put_setting(
    conn: &Connection,
    ws: &WorkspaceId,
    key: &str,
    value: &Value,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO workspace_settings (workspace_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (workspace_id, key) DO UPDATE SET value = excluded.value",
    )
    .db()?
    .execute(params![ws.as_str(), key, to_json(value)?])
    .db()?;
    Ok(())
}

// --- segments -------------------------------------------------------------------------------

const SEGMENT_COLUMNS: &str =
    "workspace_id, id, name, description, kind, definition, member_count, \
     evaluated_at, created_at, updated_at";

/// The key names are compared by: lower case (by ciclo, like operator emails).
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn segment_from_row(row: &Row<'_>) -> rusqlite::Result<SegmentRecord> {
    let definition: Option<String> = row.get(5)?;
    let definition = definition
        .map(|text| serde_json::from_str::<Expr>(&text))
        .transpose()
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                5,
                Type::Text,
                format!("bad definition: {e}").into(),
            )
        })?;
    Ok(SegmentRecord {
        workspace_id: WorkspaceId::from_trusted(row.get(0)?),
        id: SegmentId::from_trusted(row.get(1)?),
        name: row.get(2)?,
        description: row.get(3)?,
        kind: get_parsed(row, 4, |s| {
            SegmentKind::parse(s).ok_or("unknown segment kind")
        })?,
        definition,
        member_count: row.get(6)?,
        evaluated_at: get_opt_ts(row, 7)?,
        created_at: get_ts(row, 8)?,
        updated_at: get_ts(row, 9)?,
    })
}

/// The name rule is `segments_name` (SQLite names it after its columns, `segments_name_key`).
fn name_conflict(error: StoreError) -> StoreError {
    match error {
        StoreError::Conflict(name) if name == "segments_name_key" => {
            StoreError::Conflict("segments_name".into())
        }
        other => other,
    }
}

fn definition_json(segment: &SegmentRecord) -> StoreResult<Option<String>> {
    segment.definition.as_ref().map(to_json).transpose()
}

pub(crate) fn insert_segment(conn: &Connection, s: &SegmentRecord) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO segments (workspace_id, id, name, name_key, description, kind, definition,
             member_count, evaluated_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .db()?
    .execute(params![
        s.workspace_id.as_str(),
        s.id.as_str(),
        s.name,
        name_key(&s.name),
        s.description,
        s.kind.as_str(),
        definition_json(s)?,
        s.member_count,
        opt_micros(&s.evaluated_at),
        micros(&s.created_at),
        micros(&s.updated_at)
    ])
    .db()
    .map_err(name_conflict)?;
    Ok(())
}

/// Every column but `member_count`, which the member statements keep (a record read before
/// members were added in the same transaction would otherwise undo their count).
pub(crate) fn update_segment(conn: &Connection, s: &SegmentRecord) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE segments SET name = ?3, name_key = ?4, description = ?5, kind = ?6, definition = ?7,
                 evaluated_at = ?8, created_at = ?9, updated_at = ?10
             WHERE workspace_id = ?1 AND id = ?2",
        )
        .db()?
        .execute(params![
            s.workspace_id.as_str(),
            s.id.as_str(),
            s.name,
            name_key(&s.name),
            s.description,
            s.kind.as_str(),
            definition_json(s)?,
            opt_micros(&s.evaluated_at),
            micros(&s.created_at),
            micros(&s.updated_at)
        ])
        .db()
        .map_err(name_conflict)?;
    expect_one(changed)
}

pub(crate) fn get_segment(
    conn: &Connection,
    ws: &WorkspaceId,
    id: &SegmentId,
) -> StoreResult<Option<SegmentRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {SEGMENT_COLUMNS} FROM segments WHERE workspace_id = ?1 AND id = ?2"
    ))
    .db()?
    .query_row([ws.as_str(), id.as_str()], segment_from_row)
    .optional()
    .db()
}

pub(crate) fn segment_by_name(
    conn: &Connection,
    ws: &WorkspaceId,
    name: &str,
) -> StoreResult<Option<SegmentRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {SEGMENT_COLUMNS} FROM segments WHERE workspace_id = ?1 AND name_key = ?2"
    ))
    .db()?
    .query_row(params![ws.as_str(), name_key(name)], segment_from_row)
    .optional()
    .db()
}

pub(crate) fn list_segments(
    conn: &Connection,
    ws: &WorkspaceId,
) -> StoreResult<Vec<SegmentRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments WHERE workspace_id = ?1 ORDER BY name_key, id"
        ))
        .db()?;
    let rows = stmt.query_map([ws.as_str()], segment_from_row).db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn delete_segment(
    conn: &Connection,
    ws: &WorkspaceId,
    id: &SegmentId,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("DELETE FROM segments WHERE workspace_id = ?1 AND id = ?2")
        .db()?
        .execute([ws.as_str(), id.as_str()])
        .db()?;
    expect_one(changed)?;
    for sql in [
        "DELETE FROM segment_members WHERE workspace_id = ?1 AND segment_id = ?2",
        "DELETE FROM segment_counts WHERE workspace_id = ?1 AND segment_id = ?2",
    ] {
        conn.prepare_cached(sql)
            .db()?
            .execute([ws.as_str(), id.as_str()])
            .db()?;
    }
    Ok(())
}

/// `NotFound` unless the workspace has the segment.
fn require_segment(conn: &Connection, ws: &WorkspaceId, id: &SegmentId) -> StoreResult<()> {
    let found = conn
        .prepare_cached("SELECT 1 FROM segments WHERE workspace_id = ?1 AND id = ?2")
        .db()?
        .exists([ws.as_str(), id.as_str()])
        .db()?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

fn change_member_count(
    conn: &Connection,
    ws: &WorkspaceId,
    id: &SegmentId,
    by: i64,
) -> StoreResult<()> {
    if by != 0 {
        conn.prepare_cached(
            "UPDATE segments SET member_count = member_count + ?3 WHERE workspace_id = ?1 AND id = ?2",
        )
        .db()?
        .execute(params![ws.as_str(), id.as_str(), by])
        .db()?;
    }
    Ok(())
}

/// Customers the workspace does not have are not added (a membership always names a profile,
/// so that deleting the profile deletes it).
pub(crate) fn add_segment_members(
    conn: &Connection,
    ws: &WorkspaceId,
    segment: &SegmentId,
    customers: &[CustomerId],
    since: Timestamp,
) -> StoreResult<i64> {
    require_segment(conn, ws, segment)?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO segment_members (workspace_id, segment_id, customer_id, since)
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM customers WHERE workspace_id = ?1 AND id = ?3)
             ON CONFLICT (workspace_id, segment_id, customer_id) DO NOTHING",
        )
        .db()?;
    let since = micros(&since);
    let mut added = 0;
    for customer in customers {
        added += stmt
            .execute(params![
                ws.as_str(),
                segment.as_str(),
                customer.as_str(),
                since
            ])
            .db()? as i64;
    }
    change_member_count(conn, ws, segment, added)?;
    Ok(added)
}

pub(crate) fn remove_segment_members(
    conn: &Connection,
    ws: &WorkspaceId,
    segment: &SegmentId,
    customers: &[CustomerId],
) -> StoreResult<i64> {
    require_segment(conn, ws, segment)?;
    let mut stmt = conn
        .prepare_cached(
            "DELETE FROM segment_members WHERE workspace_id = ?1 AND segment_id = ?2 AND customer_id = ?3",
        )
        .db()?;
    let mut removed = 0;
    for customer in customers {
        removed += stmt
            .execute([ws.as_str(), segment.as_str(), customer.as_str()])
            .db()? as i64;
    }
    change_member_count(conn, ws, segment, -removed)?;
    Ok(removed)
}

/// Ordered by customer, then segment.
pub(crate) fn memberships_of(
    conn: &Connection,
    ws: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<Vec<(SegmentId, CustomerId, Timestamp)>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT segment_id, customer_id, since FROM segment_members
             WHERE workspace_id = ?1 AND customer_id IN (SELECT value FROM json_each(?2))
             ORDER BY customer_id, segment_id",
        )
        .db()?;
    let rows = stmt
        .query_map(params![ws.as_str(), ids_json(customers)], |row| {
            Ok((
                SegmentId::from_trusted(row.get(0)?),
                CustomerId::from_trusted(row.get(1)?),
                get_ts(row, 2)?,
            ))
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn segment_members(
    conn: &Connection,
    ws: &WorkspaceId,
    segment: &SegmentId,
    after: Option<&CustomerId>,
    limit: i64,
) -> StoreResult<Vec<CustomerId>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT customer_id FROM segment_members
             WHERE workspace_id = ?1 AND segment_id = ?2 AND customer_id > ?3
             ORDER BY customer_id LIMIT ?4",
        )
        .db()?;
    let rows = stmt
        .query_map(
            params![
                ws.as_str(),
                segment.as_str(),
                after.map_or("", |a| a.as_str()),
                limit.max(0)
            ],
            |row| Ok(CustomerId::from_trusted(row.get(0)?)),
        )
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn insert_segment_count(
    conn: &Connection,
    ws: &WorkspaceId,
    segment: &SegmentId,
    point: &SegmentCount,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO segment_counts (workspace_id, segment_id, at, count) VALUES (?1, ?2, ?3, ?4)",
    )
    .db()?
    .execute(params![
        ws.as_str(),
        segment.as_str(),
        micros(&point.at),
        point.count
    ])
    .db()?;
    Ok(())
}

pub(crate) fn segment_counts(
    conn: &Connection,
    ws: &WorkspaceId,
    segment: &SegmentId,
    since: Timestamp,
) -> StoreResult<Vec<SegmentCount>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT at, count FROM segment_counts
             WHERE workspace_id = ?1 AND segment_id = ?2 AND at >= ?3 ORDER BY at",
        )
        .db()?;
    let rows = stmt
        .query_map(
            params![ws.as_str(), segment.as_str(), micros(&since)],
            |row| {
                Ok(SegmentCount {
                    at: get_ts(row, 0)?,
                    count: row.get(1)?,
                })
            },
        )
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

// --- evaluation queue -----------------------------------------------------------------------

/// A customer marked already keeps its place in the queue.
pub(crate) fn mark_dirty(
    conn: &Connection,
    ws: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO dirty_customers (workspace_id, customer_id) VALUES (?1, ?2)
             ON CONFLICT (workspace_id, customer_id) DO NOTHING",
        )
        .db()?;
    for customer in customers {
        stmt.execute([ws.as_str(), customer.as_str()]).db()?;
    }
    Ok(())
}

/// SQLite has one writer at a time, so nothing needs locking: the caller's write transaction
/// holds the database until it clears what it took.
pub(crate) fn take_dirty(conn: &Connection, limit: i64) -> StoreResult<Vec<DirtyCustomer>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT workspace_id, customer_id FROM dirty_customers ORDER BY seq LIMIT ?1",
        )
        .db()?;
    let rows = stmt
        .query_map([limit.max(0)], |row| {
            Ok(DirtyCustomer {
                workspace_id: WorkspaceId::from_trusted(row.get(0)?),
                customer_id: CustomerId::from_trusted(row.get(1)?),
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn dirty_of(
    conn: &Connection,
    ws: &WorkspaceId,
    limit: i64,
) -> StoreResult<Vec<CustomerId>> {
    let mut stmt = conn
        .prepare_cached("SELECT customer_id FROM dirty_customers WHERE workspace_id = ?1 LIMIT ?2")
        .db()?;
    let rows = stmt
        .query_map(rusqlite::params![ws.as_str(), limit.max(0)], |row| {
            Ok(CustomerId::from_trusted(row.get(0)?))
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn clear_dirty(conn: &Connection, customers: &[DirtyCustomer]) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached("DELETE FROM dirty_customers WHERE workspace_id = ?1 AND customer_id = ?2")
        .db()?;
    for d in customers {
        stmt.execute([d.workspace_id.as_str(), d.customer_id.as_str()])
            .db()?;
    }
    Ok(())
}

// --- computed attributes and lifecycle ------------------------------------------------------

fn get_stage(row: &Row<'_>, index: usize) -> rusqlite::Result<Stage> {
    get_parsed(row, index, |s| Stage::parse(s).ok_or("unknown stage"))
}

fn get_opt_stage(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Stage>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(_) => get_stage(row, index).map(Some),
    }
}

/// Ordered by customer id.
pub(crate) fn computed_of(
    conn: &Connection,
    ws: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<Vec<CustomerComputed>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT customer_id, stage, stage_since, scores, scores_at FROM customer_computed
             WHERE workspace_id = ?1 AND customer_id IN (SELECT value FROM json_each(?2))
             ORDER BY customer_id",
        )
        .db()?;
    let rows = stmt
        .query_map(params![ws.as_str(), ids_json(customers)], |row| {
            Ok(CustomerComputed {
                customer_id: CustomerId::from_trusted(row.get(0)?),
                stage: get_opt_stage(row, 1)?,
                stage_since: get_opt_ts(row, 2)?,
                scores: get_json(row, 3)?,
                scores_at: get_opt_ts(row, 4)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn set_stages(
    conn: &Connection,
    ws: &WorkspaceId,
    stages: &[(CustomerId, Stage, Timestamp)],
) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO customer_computed (workspace_id, customer_id, stage, stage_since)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (workspace_id, customer_id)
             DO UPDATE SET stage = excluded.stage, stage_since = excluded.stage_since",
        )
        .db()?;
    for (customer, stage, since) in stages {
        stmt.execute(params![
            ws.as_str(),
            customer.as_str(),
            stage.as_str(),
            micros(since)
        ])
        .db()?;
    }
    Ok(())
}

pub(crate) fn set_scores(
    conn: &Connection,
    ws: &WorkspaceId,
    scores: &[(CustomerId, Map<String, Value>)],
    at: Timestamp,
) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO customer_computed (workspace_id, customer_id, scores, scores_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (workspace_id, customer_id)
             DO UPDATE SET scores = excluded.scores, scores_at = excluded.scores_at",
        )
        .db()?;
    let at = micros(&at);
    for (customer, values) in scores {
        stmt.execute(params![
            ws.as_str(),
            customer.as_str(),
            to_json(values)?,
            at
        ])
        .db()?;
    }
    Ok(())
}

/// The position of a stage in the cycle, for a stable order.
fn stage_rank(stage: Option<Stage>) -> usize {
    stage.map_or(0, |s| {
        1 + Stage::ALL.iter().position(|x| *x == s).unwrap_or_default()
    })
}

/// In the order of [`Stage::ALL`]. Counted from the stage index (a covering scan), less the
/// merged-away profiles that have a stage (few, found through `customers_merged_into`): a join
/// of every computed row with its profile would read a million rows at a million profiles.
pub(crate) fn stage_counts(conn: &Connection, ws: &WorkspaceId) -> StoreResult<Vec<(Stage, i64)>> {
    let mut counts: HashMap<Stage, i64> = HashMap::new();
    for (sql, sign) in [
        (
            "SELECT stage, count(*) FROM customer_computed INDEXED BY customer_computed_by_stage
             WHERE workspace_id = ?1 AND stage IS NOT NULL GROUP BY stage",
            1,
        ),
        (
            "SELECT cc.stage, count(*) FROM customers c INDEXED BY customers_merged_into
             JOIN customer_computed cc ON cc.workspace_id = c.workspace_id AND cc.customer_id = c.id
             WHERE c.workspace_id = ?1 AND c.merged_into IS NOT NULL AND cc.stage IS NOT NULL
             GROUP BY cc.stage",
            -1,
        ),
    ] {
        let mut stmt = conn.prepare_cached(sql).db()?;
        let rows = stmt
            .query_map([ws.as_str()], |row| {
                Ok((get_stage(row, 0)?, row.get::<_, i64>(1)?))
            })
            .db()?;
        for row in rows {
            let (stage, n) = row.db()?;
            *counts.entry(stage).or_default() += sign * n;
        }
    }
    Ok(Stage::ALL
        .into_iter()
        .filter_map(|s| counts.get(&s).filter(|n| **n > 0).map(|n| (s, *n)))
        .collect())
}

pub(crate) fn insert_stage_changes(
    conn: &Connection,
    ws: &WorkspaceId,
    changes: &[StageChange],
) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO stage_changes (workspace_id, customer_id, from_stage, to_stage, at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .db()?;
    for c in changes {
        stmt.execute(params![
            ws.as_str(),
            c.customer_id.as_str(),
            c.from.map(Stage::as_str),
            c.to.as_str(),
            micros(&c.at)
        ])
        .db()?;
    }
    Ok(())
}

/// Newest first; changes at the same time in insertion order, newest first too.
pub(crate) fn stage_history(
    conn: &Connection,
    ws: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<Vec<StageChange>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT customer_id, from_stage, to_stage, at FROM stage_changes
             WHERE workspace_id = ?1 AND customer_id IN (SELECT value FROM json_each(?2))
             ORDER BY at DESC, seq DESC",
        )
        .db()?;
    let rows = stmt
        .query_map(params![ws.as_str(), ids_json(customers)], |row| {
            Ok(StageChange {
                customer_id: CustomerId::from_trusted(row.get(0)?),
                from: get_opt_stage(row, 1)?,
                to: get_stage(row, 2)?,
                at: get_ts(row, 3)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

/// Distinct customers per (from, to), ordered by the stages' places in the cycle (a first stage,
/// `from` none, before the others).
pub(crate) fn stage_transitions(
    conn: &Connection,
    ws: &WorkspaceId,
    from: Timestamp,
    to: Timestamp,
) -> StoreResult<Vec<StageTransition>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT from_stage, to_stage, count(DISTINCT customer_id) FROM stage_changes
             WHERE workspace_id = ?1 AND at >= ?2 AND at < ?3
             GROUP BY from_stage, to_stage",
        )
        .db()?;
    let rows = stmt
        .query_map(params![ws.as_str(), micros(&from), micros(&to)], |row| {
            Ok(StageTransition {
                from: get_opt_stage(row, 0)?,
                to: get_stage(row, 1)?,
                customers: row.get(2)?,
            })
        })
        .db()?;
    let mut out = rows.collect::<rusqlite::Result<Vec<_>>>().db()?;
    sort_transitions(&mut out);
    Ok(out)
}

fn sort_transitions(transitions: &mut [StageTransition]) {
    transitions.sort_by_key(|t| (stage_rank(t.from), stage_rank(Some(t.to))));
}

/// Deletes what the segment and lifecycle tables hold for a profile (with `delete_customer`),
/// taking it out of the member counts of its segments.
pub(crate) fn delete_customer_rows(
    conn: &Connection,
    ws: &WorkspaceId,
    id: &CustomerId,
) -> StoreResult<()> {
    for sql in [
        "UPDATE segments SET member_count = member_count - 1
         WHERE workspace_id = ?1
           AND id IN (SELECT segment_id FROM segment_members WHERE workspace_id = ?1 AND customer_id = ?2)",
        "DELETE FROM segment_members WHERE workspace_id = ?1 AND customer_id = ?2",
        "DELETE FROM customer_computed WHERE workspace_id = ?1 AND customer_id = ?2",
        "DELETE FROM stage_changes WHERE workspace_id = ?1 AND customer_id = ?2",
        "DELETE FROM dirty_customers WHERE workspace_id = ?1 AND customer_id = ?2",
    ] {
        conn.prepare_cached(sql)
            .db()?
            .execute([ws.as_str(), id.as_str()])
            .db()?;
    }
    Ok(())
}
