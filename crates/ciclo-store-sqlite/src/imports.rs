//! CSV import runs and their reports (rejected rows kept as JSON).

use crate::codec::{get_json, get_opt_ts, get_ts, micros, opt_micros, to_json};
use crate::error::{expect_one, Db};
use ciclo_domain::ids::{ImportId, WorkspaceId};
use ciclo_store::{ImportRun, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

const IMPORT_COLUMNS: &str =
    "id, workspace_id, kind, file_name, status, rows_total, rows_created, rows_updated, \
     rows_unchanged, rows_rejected, rejected, created_at, finished_at, actor";

fn import_from_row(row: &Row<'_>) -> rusqlite::Result<ImportRun> {
    Ok(ImportRun {
        id: ImportId::from_trusted(row.get(0)?),
        workspace_id: WorkspaceId::from_trusted(row.get(1)?),
        kind: row.get(2)?,
        file_name: row.get(3)?,
        status: row.get(4)?,
        rows_total: row.get(5)?,
        rows_created: row.get(6)?,
        rows_updated: row.get(7)?,
        rows_unchanged: row.get(8)?,
        rows_rejected: row.get(9)?,
        rejected: get_json(row, 10)?,
        created_at: get_ts(row, 11)?,
        finished_at: get_opt_ts(row, 12)?,
        actor: row.get(13)?,
    })
}

pub(crate) fn insert_import(conn: &Connection, i: &ImportRun) -> StoreResult<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO imports ({IMPORT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))
    .db()?
    .execute(params![
        i.id.as_str(),
        i.workspace_id.as_str(),
        i.kind,
        i.file_name,
        i.status,
        i.rows_total,
        i.rows_created,
        i.rows_updated,
        i.rows_unchanged,
        i.rows_rejected,
        to_json(&i.rejected)?,
        micros(&i.created_at),
        opt_micros(&i.finished_at),
        i.actor
    ])
    .db()?;
    Ok(())
}

pub(crate) fn update_import(conn: &Connection, i: &ImportRun) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE imports SET kind = ?3, file_name = ?4, status = ?5, rows_total = ?6, rows_created = ?7,
                 rows_updated = ?8, rows_unchanged = ?9, rows_rejected = ?10, rejected = ?11, created_at = ?12,
                 finished_at = ?13, actor = ?14
             WHERE id = ?1 AND workspace_id = ?2",
        )
        .db()?
        .execute(params![
            i.id.as_str(),
            i.workspace_id.as_str(),
            i.kind,
            i.file_name,
            i.status,
            i.rows_total,
            i.rows_created,
            i.rows_updated,
            i.rows_unchanged,
            i.rows_rejected,
            to_json(&i.rejected)?,
            micros(&i.created_at),
            opt_micros(&i.finished_at),
            i.actor
        ])
        .db()?;
    expect_one(changed)
}

pub(crate) fn get_import(
    conn: &Connection,
    ws: &WorkspaceId,
    id: &ImportId,
) -> StoreResult<Option<ImportRun>> {
    conn.prepare_cached(&format!(
        "SELECT {IMPORT_COLUMNS} FROM imports WHERE workspace_id = ?1 AND id = ?2"
    ))
    .db()?
    .query_row([ws.as_str(), id.as_str()], import_from_row)
    .optional()
    .db()
}

pub(crate) fn list_imports(
    conn: &Connection,
    ws: &WorkspaceId,
    limit: i64,
) -> StoreResult<Vec<ImportRun>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {IMPORT_COLUMNS} FROM imports WHERE workspace_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2"
        ))
        .db()?;
    let rows = stmt
        .query_map(params![ws.as_str(), limit.max(0)], import_from_row)
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}
