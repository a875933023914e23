//! Segments and lists with their members and count history, the evaluation queue, computed
//! attributes (lifecycle stage, scores) with the stage history, and workspace settings.
//!
//! Bulk writes are one statement each (arrays, `unnest`), with their rows sorted by key so that
//! two transactions writing the same rows lock them in the same order. `segments.member_count`
//! is changed by the statement that adds or removes the members (here and in
//! `customers::delete_customer`), under the segment row's lock, so concurrent writers add up.
//!
//! Like the other inserts of this adapter, a taken name is reported as a conflict without
//! raising an error in PostgreSQL, which would abort the caller's transaction.

use crate::error::corrupt;
use crate::rows::{self, get};
use crate::tx::{distinct_ids, require_one, sql_limit, PgTx};
use ciclo_domain::ids::*;
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::segment::Expr;
use ciclo_domain::Timestamp;
use ciclo_store::{
    CustomerComputed, DirtyCustomer, SegmentCount, SegmentKind, SegmentRecord, StageChange,
    StageTransition, StoreError, StoreResult,
};
use postgres::types::Json;
use postgres::Row;
use serde_json::{Map, Value};
use std::collections::HashMap;

// --- workspace settings ---------------------------------------------------------------------

pub(crate) fn get_setting(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    key: &str,
) -> StoreResult<Option<Value>> {
    tx.query_opt(
        "SELECT value FROM workspace_settings WHERE workspace_id = $1 AND key = $2",
        &[&workspace.as_str(), &key],
    )?
    .map(|row| get(&row, "value"))
    .transpose()
}

pub(crate) fn put_setting(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    key: &str,
    value: &Value,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO workspace_settings (workspace_id, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (workspace_id, key) DO UPDATE SET value = EXCLUDED.value",
        &[&workspace.as_str(), &key, value],
    )?;
    Ok(())
}

// --- segments -------------------------------------------------------------------------------

macro_rules! segment_columns {
    () => {
        "workspace_id, id, name, description, kind, definition, member_count, evaluated_at, \
         created_at, updated_at"
    };
}

/// The key names are compared by: lower case, by ciclo (the database's `lower()` depends on its
/// locale).
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn segment_from(row: &Row) -> StoreResult<SegmentRecord> {
    let kind: String = get(row, "kind")?;
    let definition: Option<Value> = get(row, "definition")?;
    Ok(SegmentRecord {
        workspace_id: rows::id(row, "workspace_id", WorkspaceId::from_trusted)?,
        id: rows::id(row, "id", SegmentId::from_trusted)?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        kind: SegmentKind::parse(&kind)
            .ok_or_else(|| corrupt("segments.kind", format!("unknown kind {kind:?}")))?,
        definition: definition
            .map(serde_json::from_value::<Expr>)
            .transpose()
            .map_err(|e| corrupt("segments.definition", e))?,
        member_count: get(row, "member_count")?,
        evaluated_at: get(row, "evaluated_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn definition_json(segment: &SegmentRecord) -> StoreResult<Option<Value>> {
    segment
        .definition
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| StoreError::Backend(format!("cannot encode a segment definition: {e}")))
}

pub(crate) fn insert_segment(tx: &mut PgTx<'_>, s: &SegmentRecord) -> StoreResult<()> {
    let definition = definition_json(s)?;
    let inserted = tx.execute(
        "INSERT INTO segments (workspace_id, id, name, name_key, description, kind, definition,
             member_count, evaluated_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT DO NOTHING",
        &[
            &s.workspace_id.as_str(),
            &s.id.as_str(),
            &s.name,
            &name_key(&s.name),
            &s.description,
            &s.kind.as_str(),
            &definition,
            &s.member_count,
            &s.evaluated_at,
            &s.created_at,
            &s.updated_at,
        ],
    )?;
    if inserted == 1 {
        return Ok(());
    }
    let id_taken = tx
        .query_opt(
            "SELECT 1 FROM segments WHERE workspace_id = $1 AND id = $2",
            &[&s.workspace_id.as_str(), &s.id.as_str()],
        )?
        .is_some();
    Err(StoreError::Conflict(
        if id_taken {
            "segments_pkey"
        } else {
            "segments_name"
        }
        .into(),
    ))
}

/// Every column but `member_count`, which the member statements keep (a record read before
/// members were added in the same transaction would otherwise undo their count). A name another
/// segment has leaves the row alone and is reported as `Conflict("segments_name")`.
pub(crate) fn update_segment(tx: &mut PgTx<'_>, s: &SegmentRecord) -> StoreResult<()> {
    let definition = definition_json(s)?;
    let key = name_key(&s.name);
    let changed = tx.execute(
        "UPDATE segments SET name = $3, name_key = $4, description = $5, kind = $6, definition = $7,
             evaluated_at = $8, created_at = $9, updated_at = $10
         WHERE workspace_id = $1 AND id = $2
           AND NOT EXISTS (SELECT 1 FROM segments o WHERE o.workspace_id = $1 AND o.name_key = $4 AND o.id <> $2)",
        &[
            &s.workspace_id.as_str(),
            &s.id.as_str(),
            &s.name,
            &key,
            &s.description,
            &s.kind.as_str(),
            &definition,
            &s.evaluated_at,
            &s.created_at,
            &s.updated_at,
        ],
    )?;
    if changed == 1 {
        return Ok(());
    }
    match get_segment(tx, &s.workspace_id, &s.id)? {
        Some(_) => Err(StoreError::Conflict("segments_name".into())),
        None => Err(StoreError::NotFound),
    }
}

pub(crate) fn get_segment(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    id: &SegmentId,
) -> StoreResult<Option<SegmentRecord>> {
    tx.query_opt(
        concat!(
            "SELECT ",
            segment_columns!(),
            " FROM segments WHERE workspace_id = $1 AND id = $2"
        ),
        &[&workspace.as_str(), &id.as_str()],
    )?
    .as_ref()
    .map(segment_from)
    .transpose()
}

pub(crate) fn segment_by_name(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    name: &str,
) -> StoreResult<Option<SegmentRecord>> {
    tx.query_opt(
        concat!(
            "SELECT ",
            segment_columns!(),
            " FROM segments WHERE workspace_id = $1 AND name_key = $2"
        ),
        &[&workspace.as_str(), &name_key(name)],
    )?
    .as_ref()
    .map(segment_from)
    .transpose()
}

pub(crate) fn list_segments(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
) -> StoreResult<Vec<SegmentRecord>> {
    tx.query(
        concat!(
            "SELECT ",
            segment_columns!(),
            " FROM segments WHERE workspace_id = $1 ORDER BY name_key, id"
        ),
        &[&workspace.as_str()],
    )?
    .iter()
    .map(segment_from)
    .collect()
}

pub(crate) fn delete_segment(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    id: &SegmentId,
) -> StoreResult<()> {
    let row = tx.query_one(
        "WITH deleted_members AS (
             DELETE FROM segment_members WHERE workspace_id = $1 AND segment_id = $2
         ), deleted_counts AS (
             DELETE FROM segment_counts WHERE workspace_id = $1 AND segment_id = $2
         ), deleted AS (
             DELETE FROM segments WHERE workspace_id = $1 AND id = $2 RETURNING 1
         )
         SELECT count(*) AS n FROM deleted",
        &[&workspace.as_str(), &id.as_str()],
    )?;
    let n: i64 = get(&row, "n")?;
    require_one(n as u64)
}

/// Customers the workspace does not have are not added (a membership always names a profile,
/// so that deleting the profile deletes it). Each id is one probe of the profiles' primary key,
/// pinned by `LATERAL … OFFSET 0` (see `events::existing_message_ids`).
pub(crate) fn add_segment_members(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    segment: &SegmentId,
    customers: &[CustomerId],
    since: Timestamp,
) -> StoreResult<i64> {
    let mut ids = distinct_ids(customers);
    ids.sort_unstable();
    let row = tx.query_one(
        "WITH s AS (
             SELECT id FROM segments WHERE workspace_id = $1 AND id = $2
         ), added AS (
             INSERT INTO segment_members (workspace_id, segment_id, customer_id, since)
             SELECT $1, s.id, c.id, $4 FROM s
             CROSS JOIN unnest($3::text[]) WITH ORDINALITY AS k(id, n)
             CROSS JOIN LATERAL (
                 SELECT c.id FROM customers c WHERE c.workspace_id = $1 AND c.id = k.id OFFSET 0
             ) c
             ORDER BY k.n
             ON CONFLICT DO NOTHING
             RETURNING 1
         ), counted AS (
             UPDATE segments SET member_count = member_count + (SELECT count(*) FROM added)
             WHERE workspace_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM added)
         )
         SELECT (SELECT count(*) FROM s) AS found, (SELECT count(*) FROM added) AS added",
        &[&workspace.as_str(), &segment.as_str(), &ids, &since],
    )?;
    let found: i64 = get(&row, "found")?;
    if found == 0 {
        return Err(StoreError::NotFound);
    }
    get(&row, "added")
}

pub(crate) fn remove_segment_members(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    segment: &SegmentId,
    customers: &[CustomerId],
) -> StoreResult<i64> {
    let mut ids = distinct_ids(customers);
    ids.sort_unstable();
    let row = tx.query_one(
        "WITH s AS (
             SELECT id FROM segments WHERE workspace_id = $1 AND id = $2
         ), removed AS (
             DELETE FROM segment_members
             WHERE workspace_id = $1 AND segment_id = $2 AND customer_id = ANY($3::text[])
             RETURNING 1
         ), counted AS (
             UPDATE segments SET member_count = member_count - (SELECT count(*) FROM removed)
             WHERE workspace_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM removed)
         )
         SELECT (SELECT count(*) FROM s) AS found, (SELECT count(*) FROM removed) AS removed",
        &[&workspace.as_str(), &segment.as_str(), &ids],
    )?;
    let found: i64 = get(&row, "found")?;
    if found == 0 {
        return Err(StoreError::NotFound);
    }
    get(&row, "removed")
}

/// Ordered by customer, then segment.
pub(crate) fn memberships_of(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<Vec<(SegmentId, CustomerId, Timestamp)>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let ids = distinct_ids(customers);
    tx.query(
        "SELECT segment_id, customer_id, since FROM segment_members
         WHERE workspace_id = $1 AND customer_id = ANY($2::text[])
         ORDER BY customer_id, segment_id",
        &[&workspace.as_str(), &ids],
    )?
    .iter()
    .map(|row| {
        Ok((
            rows::id(row, "segment_id", SegmentId::from_trusted)?,
            rows::id(row, "customer_id", CustomerId::from_trusted)?,
            get(row, "since")?,
        ))
    })
    .collect()
}

pub(crate) fn segment_members(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    segment: &SegmentId,
    after: Option<&CustomerId>,
    limit: i64,
) -> StoreResult<Vec<CustomerId>> {
    tx.query(
        "SELECT customer_id FROM segment_members
         WHERE workspace_id = $1 AND segment_id = $2 AND customer_id > $3
         ORDER BY customer_id LIMIT $4",
        &[
            &workspace.as_str(),
            &segment.as_str(),
            &after.map_or("", |a| a.as_str()),
            &sql_limit(limit),
        ],
    )?
    .iter()
    .map(|row| rows::id(row, "customer_id", CustomerId::from_trusted))
    .collect()
}

pub(crate) fn insert_segment_count(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    segment: &SegmentId,
    point: &SegmentCount,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO segment_counts (workspace_id, segment_id, at, count) VALUES ($1, $2, $3, $4)",
        &[
            &workspace.as_str(),
            &segment.as_str(),
            &point.at,
            &point.count,
        ],
    )?;
    Ok(())
}

pub(crate) fn segment_counts(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    segment: &SegmentId,
    since: Timestamp,
) -> StoreResult<Vec<SegmentCount>> {
    tx.query(
        "SELECT at, count FROM segment_counts
         WHERE workspace_id = $1 AND segment_id = $2 AND at >= $3 ORDER BY at",
        &[&workspace.as_str(), &segment.as_str(), &since],
    )?
    .iter()
    .map(|row| {
        Ok(SegmentCount {
            at: get(row, "at")?,
            count: get(row, "count")?,
        })
    })
    .collect()
}

// --- evaluation queue -----------------------------------------------------------------------

/// A customer marked already keeps its place in the queue, but its mark is locked all the same
/// (`DO UPDATE … WHERE false` updates nothing and locks the row): when an evaluator holds the
/// mark (`take_dirty`), this waits until the evaluator commits and, the mark being gone then,
/// inserts a new one. Without the wait, a change made while the customer was being evaluated
/// would find the mark present, leave it, and the evaluator would clear it: the change would
/// never be evaluated.
pub(crate) fn mark_dirty(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let mut ids = distinct_ids(customers);
    ids.sort_unstable();
    tx.execute(
        "INSERT INTO dirty_customers (workspace_id, customer_id)
         SELECT $1, k.id FROM unnest($2::text[]) WITH ORDINALITY AS k(id, n) ORDER BY k.n
         ON CONFLICT (workspace_id, customer_id) DO UPDATE SET seq = dirty_customers.seq WHERE false",
        &[&workspace.as_str(), &ids],
    )?;
    Ok(())
}

/// Locks the marks it returns, skipping those another transaction holds (call it in a write
/// transaction).
pub(crate) fn take_dirty(tx: &mut PgTx<'_>, limit: i64) -> StoreResult<Vec<DirtyCustomer>> {
    tx.query(
        "SELECT workspace_id, customer_id FROM dirty_customers
         ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        &[&sql_limit(limit)],
    )?
    .iter()
    .map(|row| {
        Ok(DirtyCustomer {
            workspace_id: rows::id(row, "workspace_id", WorkspaceId::from_trusted)?,
            customer_id: rows::id(row, "customer_id", CustomerId::from_trusted)?,
        })
    })
    .collect()
}

pub(crate) fn dirty_of(
    tx: &mut PgTx<'_>,
    ws: &WorkspaceId,
    limit: i64,
) -> StoreResult<Vec<CustomerId>> {
    tx.query(
        "SELECT customer_id FROM dirty_customers WHERE workspace_id = $1 LIMIT $2",
        &[&ws.as_str(), &sql_limit(limit)],
    )?
    .iter()
    .map(|row| rows::id(row, "customer_id", CustomerId::from_trusted))
    .collect()
}

pub(crate) fn clear_dirty(tx: &mut PgTx<'_>, customers: &[DirtyCustomer]) -> StoreResult<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<(&str, &str)> = customers
        .iter()
        .map(|d| (d.workspace_id.as_str(), d.customer_id.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let (workspaces, ids): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
    tx.execute(
        "DELETE FROM dirty_customers d
         USING unnest($1::text[], $2::text[]) AS k(workspace_id, customer_id)
         WHERE d.workspace_id = k.workspace_id AND d.customer_id = k.customer_id",
        &[&workspaces, &ids],
    )?;
    Ok(())
}

// --- computed attributes and lifecycle ------------------------------------------------------

fn stage(row: &Row, column: &str) -> StoreResult<Stage> {
    let raw: String = get(row, column)?;
    Stage::parse(&raw).ok_or_else(|| corrupt(column, format!("unknown stage {raw:?}")))
}

fn opt_stage(row: &Row, column: &str) -> StoreResult<Option<Stage>> {
    match get::<Option<String>>(row, column)? {
        None => Ok(None),
        Some(_) => stage(row, column).map(Some),
    }
}

/// Ordered by customer id.
pub(crate) fn computed_of(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<Vec<CustomerComputed>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let ids = distinct_ids(customers);
    tx.query(
        "SELECT customer_id, stage, stage_since, scores, scores_at FROM customer_computed
         WHERE workspace_id = $1 AND customer_id = ANY($2::text[])
         ORDER BY customer_id",
        &[&workspace.as_str(), &ids],
    )?
    .iter()
    .map(|row| {
        Ok(CustomerComputed {
            customer_id: rows::id(row, "customer_id", CustomerId::from_trusted)?,
            stage: opt_stage(row, "stage")?,
            stage_since: get(row, "stage_since")?,
            scores: rows::object(row, "scores")?,
            scores_at: get(row, "scores_at")?,
        })
    })
    .collect()
}

/// Each customer once (the last value given wins: one upsert cannot change a row twice), sorted
/// by id for the lock order.
fn last_per_customer<T>(items: &[(CustomerId, T)]) -> Vec<&(CustomerId, T)> {
    let mut latest: HashMap<&str, &(CustomerId, T)> = HashMap::with_capacity(items.len());
    for item in items {
        latest.insert(item.0.as_str(), item);
    }
    let mut out: Vec<&(CustomerId, T)> = latest.into_values().collect();
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

pub(crate) fn set_stages(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    stages: &[(CustomerId, Stage, Timestamp)],
) -> StoreResult<()> {
    if stages.is_empty() {
        return Ok(());
    }
    let pairs: Vec<(CustomerId, (Stage, Timestamp))> = stages
        .iter()
        .map(|(id, stage, since)| (id.clone(), (*stage, *since)))
        .collect();
    let rows = last_per_customer(&pairs);
    let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    let names: Vec<&str> = rows.iter().map(|(_, (s, _))| s.as_str()).collect();
    let since: Vec<Timestamp> = rows.iter().map(|(_, (_, at))| *at).collect();
    tx.execute(
        "INSERT INTO customer_computed (workspace_id, customer_id, stage, stage_since)
         SELECT $1, unnest($2::text[]), unnest($3::text[]), unnest($4::timestamptz[])
         ON CONFLICT (workspace_id, customer_id)
         DO UPDATE SET stage = EXCLUDED.stage, stage_since = EXCLUDED.stage_since",
        &[&workspace.as_str(), &ids, &names, &since],
    )?;
    Ok(())
}

pub(crate) fn set_scores(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    scores: &[(CustomerId, Map<String, Value>)],
    at: Timestamp,
) -> StoreResult<()> {
    if scores.is_empty() {
        return Ok(());
    }
    let rows = last_per_customer(scores);
    let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    let values: Vec<Json<&Map<String, Value>>> = rows.iter().map(|(_, v)| Json(v)).collect();
    tx.execute(
        "INSERT INTO customer_computed (workspace_id, customer_id, scores, scores_at)
         SELECT $1, unnest($2::text[]), unnest($3::jsonb[]), $4
         ON CONFLICT (workspace_id, customer_id)
         DO UPDATE SET scores = EXCLUDED.scores, scores_at = EXCLUDED.scores_at",
        &[&workspace.as_str(), &ids, &values, &at],
    )?;
    Ok(())
}

/// The position of a stage in the cycle, for a stable order (none first).
fn stage_rank(stage: Option<Stage>) -> usize {
    stage.map_or(0, |s| {
        1 + Stage::ALL.iter().position(|x| *x == s).unwrap_or_default()
    })
}

/// In the order of [`Stage::ALL`]. Counted from the stage index, less the merged-away profiles
/// that have a stage (few, found through `customers_merged_into`): a join of every computed row
/// with its profile would read a million rows at a million profiles.
pub(crate) fn stage_counts(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
) -> StoreResult<Vec<(Stage, i64)>> {
    let mut counts: HashMap<Stage, i64> = HashMap::new();
    for (sql, sign) in [
        (
            "SELECT stage, count(*) AS n FROM customer_computed
             WHERE workspace_id = $1 AND stage IS NOT NULL GROUP BY stage",
            1,
        ),
        (
            "SELECT cc.stage, count(*) AS n FROM customers c
             JOIN customer_computed cc ON cc.workspace_id = c.workspace_id AND cc.customer_id = c.id
             WHERE c.workspace_id = $1 AND c.merged_into IS NOT NULL AND cc.stage IS NOT NULL
             GROUP BY cc.stage",
            -1,
        ),
    ] {
        for row in tx.query(sql, &[&workspace.as_str()])? {
            let n: i64 = get(&row, "n")?;
            *counts.entry(stage(&row, "stage")?).or_default() += sign * n;
        }
    }
    Ok(Stage::ALL
        .into_iter()
        .filter_map(|s| counts.get(&s).filter(|n| **n > 0).map(|n| (s, *n)))
        .collect())
}

pub(crate) fn insert_stage_changes(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    changes: &[StageChange],
) -> StoreResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = changes.iter().map(|c| c.customer_id.as_str()).collect();
    let from: Vec<Option<&str>> = changes.iter().map(|c| c.from.map(Stage::as_str)).collect();
    let to: Vec<&str> = changes.iter().map(|c| c.to.as_str()).collect();
    let at: Vec<Timestamp> = changes.iter().map(|c| c.at).collect();
    // WITH ORDINALITY keeps the given order, which `seq` records.
    tx.execute(
        "INSERT INTO stage_changes (workspace_id, customer_id, from_stage, to_stage, at)
         SELECT $1, k.customer_id, k.from_stage, k.to_stage, k.at
         FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[])
             WITH ORDINALITY AS k(customer_id, from_stage, to_stage, at, n)
         ORDER BY k.n",
        &[&workspace.as_str(), &ids, &from, &to, &at],
    )?;
    Ok(())
}

/// Newest first; changes at the same time newest inserted first.
pub(crate) fn stage_history(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<Vec<StageChange>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let ids = distinct_ids(customers);
    tx.query(
        "SELECT customer_id, from_stage, to_stage, at FROM stage_changes
         WHERE workspace_id = $1 AND customer_id = ANY($2::text[])
         ORDER BY at DESC, seq DESC",
        &[&workspace.as_str(), &ids],
    )?
    .iter()
    .map(|row| {
        Ok(StageChange {
            customer_id: rows::id(row, "customer_id", CustomerId::from_trusted)?,
            from: opt_stage(row, "from_stage")?,
            to: stage(row, "to_stage")?,
            at: get(row, "at")?,
        })
    })
    .collect()
}

/// Distinct customers per (from, to), ordered by the stages' places in the cycle (a first stage,
/// `from` none, before the others).
pub(crate) fn stage_transitions(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    from: Timestamp,
    to: Timestamp,
) -> StoreResult<Vec<StageTransition>> {
    let mut out = tx
        .query(
            "SELECT from_stage, to_stage, count(DISTINCT customer_id) AS n FROM stage_changes
             WHERE workspace_id = $1 AND at >= $2 AND at < $3
             GROUP BY from_stage, to_stage",
            &[&workspace.as_str(), &from, &to],
        )?
        .iter()
        .map(|row| {
            Ok(StageTransition {
                from: opt_stage(row, "from_stage")?,
                to: stage(row, "to_stage")?,
                customers: get(row, "n")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    out.sort_by_key(|t| (stage_rank(t.from), stage_rank(Some(t.to))));
    Ok(out)
}
