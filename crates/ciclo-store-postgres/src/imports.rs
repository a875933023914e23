//! CSV import runs and their reports (rejected rows are kept as a jsonb array).

use crate::rows::{self, get};
use crate::tx::{require_one, sql_limit, PgTx};
use ciclo_domain::ids::*;
use ciclo_store::{ImportRun, RejectedRow, StoreError, StoreResult};
use postgres::types::Json;
use postgres::Row;

macro_rules! import_columns {
    () => {
        "workspace_id, id, kind, file_name, status, rows_total, rows_created, rows_updated, rows_unchanged, \
         rows_rejected, rejected, created_at, finished_at, actor"
    };
}

fn import_from(row: &Row) -> StoreResult<ImportRun> {
    let Json(rejected): Json<Vec<RejectedRow>> = get(row, "rejected")?;
    Ok(ImportRun {
        id: rows::id(row, "id", ImportId::from_trusted)?,
        workspace_id: rows::id(row, "workspace_id", WorkspaceId::from_trusted)?,
        kind: get(row, "kind")?,
        file_name: get(row, "file_name")?,
        status: get(row, "status")?,
        rows_total: get(row, "rows_total")?,
        rows_created: get(row, "rows_created")?,
        rows_updated: get(row, "rows_updated")?,
        rows_unchanged: get(row, "rows_unchanged")?,
        rows_rejected: get(row, "rows_rejected")?,
        rejected,
        created_at: get(row, "created_at")?,
        finished_at: get(row, "finished_at")?,
        actor: get(row, "actor")?,
    })
}

fn write_import(tx: &mut PgTx<'_>, sql: &'static str, i: &ImportRun) -> StoreResult<u64> {
    tx.execute(
        sql,
        &[
            &i.workspace_id.as_str(),
            &i.id.as_str(),
            &i.kind,
            &i.file_name,
            &i.status,
            &i.rows_total,
            &i.rows_created,
            &i.rows_updated,
            &i.rows_unchanged,
            &i.rows_rejected,
            &Json(&i.rejected),
            &i.created_at,
            &i.finished_at,
            &i.actor,
        ],
    )
}

pub(crate) fn insert_import(tx: &mut PgTx<'_>, import: &ImportRun) -> StoreResult<()> {
    let inserted = write_import(
        tx,
        concat!(
            "INSERT INTO imports (",
            import_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING"
        ),
        import,
    )?;
    if inserted == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict("imports_pkey".into()))
    }
}

pub(crate) fn update_import(tx: &mut PgTx<'_>, import: &ImportRun) -> StoreResult<()> {
    let changed = write_import(
        tx,
        "UPDATE imports
         SET kind = $3, file_name = $4, status = $5, rows_total = $6, rows_created = $7, rows_updated = $8,
             rows_unchanged = $9, rows_rejected = $10, rejected = $11, created_at = $12, finished_at = $13,
             actor = $14
         WHERE workspace_id = $1 AND id = $2",
        import,
    )?;
    require_one(changed)
}

pub(crate) fn get_import(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    id: &ImportId,
) -> StoreResult<Option<ImportRun>> {
    tx.query_opt(
        concat!(
            "SELECT ",
            import_columns!(),
            " FROM imports WHERE workspace_id = $1 AND id = $2"
        ),
        &[&workspace.as_str(), &id.as_str()],
    )?
    .as_ref()
    .map(import_from)
    .transpose()
}

pub(crate) fn list_imports(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    limit: i64,
) -> StoreResult<Vec<ImportRun>> {
    tx.query(
        concat!(
            "SELECT ",
            import_columns!(),
            " FROM imports WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2::bigint"
        ),
        &[&workspace.as_str(), &sql_limit(limit)],
    )?
    .iter()
    .map(import_from)
    .collect()
}
