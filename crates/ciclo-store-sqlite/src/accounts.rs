//! Workspaces, operators, memberships, sessions and API keys.
//!
//! Operators are global (one person may belong to several workspaces); the session token hash,
//! the API key hash and the write key are global too, since they are how a request finds its
//! workspace. Everything else is read through a workspace id.

use crate::codec::{get_opt_ts, get_parsed, get_ts, micros, opt_micros};
use crate::error::{expect_one, Db};
use ciclo_domain::ids::{ApiKeyId, OperatorId, WorkspaceId};
use ciclo_domain::operator::{ApiKey, Membership, Operator, Role, Session, Workspace};
use ciclo_domain::Timestamp;
use ciclo_store::StoreResult;
use rusqlite::{params, Connection, OptionalExtension, Row};

const WORKSPACE_COLUMNS: &str =
    "w.id, w.name, w.write_key, w.locale, w.time_zone, w.currency, w.default_region, w.created_at";

fn workspace_from_row(row: &Row<'_>) -> rusqlite::Result<Workspace> {
    Ok(Workspace {
        id: WorkspaceId::from_trusted(row.get(0)?),
        name: row.get(1)?,
        write_key: row.get(2)?,
        locale: row.get(3)?,
        time_zone: row.get(4)?,
        currency: row.get(5)?,
        default_region: row.get(6)?,
        created_at: get_ts(row, 7)?,
    })
}

pub(crate) fn insert_workspace(conn: &Connection, w: &Workspace) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO workspaces (id, name, write_key, locale, time_zone, currency, default_region, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .db()?
    .execute(params![
        w.id.as_str(),
        w.name,
        w.write_key,
        w.locale,
        w.time_zone,
        w.currency,
        w.default_region,
        micros(&w.created_at)
    ])
    .db()?;
    Ok(())
}

pub(crate) fn update_workspace(conn: &Connection, w: &Workspace) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE workspaces SET name = ?2, write_key = ?3, locale = ?4, time_zone = ?5, currency = ?6,
                 default_region = ?7, created_at = ?8
             WHERE id = ?1",
        )
        .db()?
        .execute(params![
            w.id.as_str(),
            w.name,
            w.write_key,
            w.locale,
            w.time_zone,
            w.currency,
            w.default_region,
            micros(&w.created_at)
        ])
        .db()?;
    expect_one(changed)
}

pub(crate) fn get_workspace(conn: &Connection, id: &WorkspaceId) -> StoreResult<Option<Workspace>> {
    conn.prepare_cached(&format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces w WHERE w.id = ?1"
    ))
    .db()?
    .query_row([id.as_str()], workspace_from_row)
    .optional()
    .db()
}

pub(crate) fn workspace_by_write_key(
    conn: &Connection,
    write_key: &str,
) -> StoreResult<Option<Workspace>> {
    conn.prepare_cached(&format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces w WHERE w.write_key = ?1"
    ))
    .db()?
    .query_row([write_key], workspace_from_row)
    .optional()
    .db()
}

pub(crate) fn count_workspaces(conn: &Connection) -> StoreResult<i64> {
    conn.prepare_cached("SELECT count(*) FROM workspaces")
        .db()?
        .query_row([], |row| row.get(0))
        .db()
}

/// Every workspace, by id.
pub(crate) fn list_workspaces(conn: &Connection) -> StoreResult<Vec<Workspace>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces w ORDER BY w.id"
        ))
        .db()?;
    let rows = stmt.query_map([], workspace_from_row).db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

const OPERATOR_COLUMNS: &str =
    "o.id, o.email, o.name, o.password_hash, o.locale, o.active, o.created_at";

fn operator_from_row(row: &Row<'_>) -> rusqlite::Result<Operator> {
    Ok(Operator {
        id: OperatorId::from_trusted(row.get(0)?),
        email: row.get(1)?,
        name: row.get(2)?,
        password_hash: row.get(3)?,
        locale: row.get(4)?,
        active: row.get(5)?,
        created_at: get_ts(row, 6)?,
    })
}

pub(crate) fn insert_operator(conn: &Connection, o: &Operator) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO operators (id, email, name, password_hash, locale, active, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![
        o.id.as_str(),
        o.email.trim().to_lowercase(),
        o.name,
        o.password_hash,
        o.locale,
        o.active,
        micros(&o.created_at)
    ])
    .db()?;
    Ok(())
}

pub(crate) fn update_operator(conn: &Connection, o: &Operator) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE operators SET email = ?2, name = ?3, password_hash = ?4, locale = ?5, active = ?6, created_at = ?7
             WHERE id = ?1",
        )
        .db()?
        .execute(params![
            o.id.as_str(),
            o.email.trim().to_lowercase(),
            o.name,
            o.password_hash,
            o.locale,
            o.active,
            micros(&o.created_at)
        ])
        .db()?;
    expect_one(changed)
}

pub(crate) fn get_operator(conn: &Connection, id: &OperatorId) -> StoreResult<Option<Operator>> {
    conn.prepare_cached(&format!(
        "SELECT {OPERATOR_COLUMNS} FROM operators o WHERE o.id = ?1"
    ))
    .db()?
    .query_row([id.as_str()], operator_from_row)
    .optional()
    .db()
}

pub(crate) fn operator_by_email(conn: &Connection, email: &str) -> StoreResult<Option<Operator>> {
    conn.prepare_cached(&format!(
        "SELECT {OPERATOR_COLUMNS} FROM operators o WHERE o.email = ?1"
    ))
    .db()?
    .query_row([email.trim().to_lowercase()], operator_from_row)
    .optional()
    .db()
}

pub(crate) fn upsert_membership(conn: &Connection, m: &Membership) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO memberships (workspace_id, operator_id, role) VALUES (?1, ?2, ?3)
         ON CONFLICT (workspace_id, operator_id) DO UPDATE SET role = excluded.role",
    )
    .db()?
    .execute(params![
        m.workspace_id.as_str(),
        m.operator_id.as_str(),
        m.role.as_str()
    ])
    .db()?;
    Ok(())
}

pub(crate) fn delete_membership(
    conn: &Connection,
    ws: &WorkspaceId,
    operator: &OperatorId,
) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM memberships WHERE workspace_id = ?1 AND operator_id = ?2")
        .db()?
        .execute([ws.as_str(), operator.as_str()])
        .db()?;
    Ok(())
}

pub(crate) fn membership(
    conn: &Connection,
    ws: &WorkspaceId,
    operator: &OperatorId,
) -> StoreResult<Option<Role>> {
    conn.prepare_cached("SELECT role FROM memberships WHERE workspace_id = ?1 AND operator_id = ?2")
        .db()?
        .query_row([ws.as_str(), operator.as_str()], |row| {
            get_parsed(row, 0, Role::parse)
        })
        .optional()
        .db()
}

pub(crate) fn list_members(
    conn: &Connection,
    ws: &WorkspaceId,
) -> StoreResult<Vec<(Operator, Role)>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {OPERATOR_COLUMNS}, m.role FROM memberships m JOIN operators o ON o.id = m.operator_id
             WHERE m.workspace_id = ?1 ORDER BY o.email, o.id"
        ))
        .db()?;
    let rows = stmt
        .query_map([ws.as_str()], |row| {
            Ok((operator_from_row(row)?, get_parsed(row, 7, Role::parse)?))
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn workspaces_of_operator(
    conn: &Connection,
    operator: &OperatorId,
) -> StoreResult<Vec<(Workspace, Role)>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {WORKSPACE_COLUMNS}, m.role FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
             WHERE m.operator_id = ?1 ORDER BY w.name, w.id"
        ))
        .db()?;
    let rows = stmt
        .query_map([operator.as_str()], |row| {
            Ok((workspace_from_row(row)?, get_parsed(row, 8, Role::parse)?))
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn insert_session(conn: &Connection, s: &Session) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO sessions (token_hash, workspace_id, operator_id, csrf_token, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![
        s.token_hash,
        s.workspace_id.as_str(),
        s.operator_id.as_str(),
        s.csrf_token,
        micros(&s.created_at),
        micros(&s.expires_at)
    ])
    .db()?;
    Ok(())
}

pub(crate) fn session_by_token_hash(
    conn: &Connection,
    token_hash: &str,
) -> StoreResult<Option<Session>> {
    conn.prepare_cached(
        "SELECT token_hash, operator_id, workspace_id, csrf_token, created_at, expires_at
         FROM sessions WHERE token_hash = ?1",
    )
    .db()?
    .query_row([token_hash], |row| {
        Ok(Session {
            token_hash: row.get(0)?,
            operator_id: OperatorId::from_trusted(row.get(1)?),
            workspace_id: WorkspaceId::from_trusted(row.get(2)?),
            csrf_token: row.get(3)?,
            created_at: get_ts(row, 4)?,
            expires_at: get_ts(row, 5)?,
        })
    })
    .optional()
    .db()
}

pub(crate) fn delete_session(conn: &Connection, token_hash: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")
        .db()?
        .execute([token_hash])
        .db()?;
    Ok(())
}

const API_KEY_COLUMNS: &str =
    "id, workspace_id, name, role, prefix, key_hash, created_at, last_used_at, revoked_at";

fn api_key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: ApiKeyId::from_trusted(row.get(0)?),
        workspace_id: WorkspaceId::from_trusted(row.get(1)?),
        name: row.get(2)?,
        role: get_parsed(row, 3, Role::parse)?,
        prefix: row.get(4)?,
        key_hash: row.get(5)?,
        created_at: get_ts(row, 6)?,
        last_used_at: get_opt_ts(row, 7)?,
        revoked_at: get_opt_ts(row, 8)?,
    })
}

pub(crate) fn insert_api_key(conn: &Connection, k: &ApiKey) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO api_keys (id, workspace_id, name, role, prefix, key_hash, created_at, last_used_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .db()?
    .execute(params![
        k.id.as_str(),
        k.workspace_id.as_str(),
        k.name,
        k.role.as_str(),
        k.prefix,
        k.key_hash,
        micros(&k.created_at),
        opt_micros(&k.last_used_at),
        opt_micros(&k.revoked_at)
    ])
    .db()?;
    Ok(())
}

pub(crate) fn api_key_by_hash(conn: &Connection, key_hash: &str) -> StoreResult<Option<ApiKey>> {
    conn.prepare_cached(&format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"
    ))
    .db()?
    .query_row([key_hash], api_key_from_row)
    .optional()
    .db()
}

pub(crate) fn list_api_keys(conn: &Connection, ws: &WorkspaceId) -> StoreResult<Vec<ApiKey>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE workspace_id = ?1 ORDER BY created_at DESC, id DESC"
        ))
        .db()?;
    let rows = stmt.query_map([ws.as_str()], api_key_from_row).db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn revoke_api_key(
    conn: &Connection,
    ws: &WorkspaceId,
    id: &ApiKeyId,
    at: Timestamp,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("UPDATE api_keys SET revoked_at = ?3 WHERE workspace_id = ?1 AND id = ?2")
        .db()?
        .execute(params![ws.as_str(), id.as_str(), micros(&at)])
        .db()?;
    expect_one(changed)
}

pub(crate) fn touch_api_key(
    conn: &Connection,
    ws: &WorkspaceId,
    id: &ApiKeyId,
    at: Timestamp,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("UPDATE api_keys SET last_used_at = ?3 WHERE workspace_id = ?1 AND id = ?2")
        .db()?
        .execute(params![ws.as_str(), id.as_str(), micros(&at)])
        .db()?;
    expect_one(changed)
}
