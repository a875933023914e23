//! Workspaces, operators, memberships, sessions and API keys.
//!
//! Inserts use `ON CONFLICT DO NOTHING` and report a taken key as [`StoreError::Conflict`]
//! without raising an error in PostgreSQL: a failed statement would abort the whole
//! transaction, and callers may want to go on after a conflict (SQLite lets them).

use crate::rows::{self, get};
use crate::tx::{require_one, PgTx};
use ciclo_domain::ids::*;
use ciclo_domain::operator::{ApiKey, Membership, Operator, Role, Session, Workspace};
use ciclo_domain::Timestamp;
use ciclo_store::{StoreError, StoreResult};
use postgres::Row;

macro_rules! workspace_columns {
    () => {
        "id, name, write_key, locale, time_zone, currency, default_region, created_at"
    };
}

macro_rules! operator_columns {
    () => {
        "id, email, name, password_hash, locale, active, created_at"
    };
}

macro_rules! api_key_columns {
    () => {
        "id, workspace_id, name, role, prefix, key_hash, created_at, last_used_at, revoked_at"
    };
}

fn workspace_from(row: &Row) -> StoreResult<Workspace> {
    Ok(Workspace {
        id: rows::id(row, "id", WorkspaceId::from_trusted)?,
        name: get(row, "name")?,
        write_key: get(row, "write_key")?,
        locale: get(row, "locale")?,
        time_zone: get(row, "time_zone")?,
        currency: get(row, "currency")?,
        default_region: get(row, "default_region")?,
        created_at: get(row, "created_at")?,
    })
}

fn operator_from(row: &Row) -> StoreResult<Operator> {
    Ok(Operator {
        id: rows::id(row, "id", OperatorId::from_trusted)?,
        email: get(row, "email")?,
        name: get(row, "name")?,
        password_hash: get(row, "password_hash")?,
        locale: get(row, "locale")?,
        active: get(row, "active")?,
        created_at: get(row, "created_at")?,
    })
}

fn api_key_from(row: &Row) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: rows::id(row, "id", ApiKeyId::from_trusted)?,
        workspace_id: rows::id(row, "workspace_id", WorkspaceId::from_trusted)?,
        name: get(row, "name")?,
        role: rows::role(row, "role")?,
        prefix: get(row, "prefix")?,
        key_hash: get(row, "key_hash")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

fn session_from(row: &Row) -> StoreResult<Session> {
    Ok(Session {
        token_hash: get(row, "token_hash")?,
        operator_id: rows::id(row, "operator_id", OperatorId::from_trusted)?,
        workspace_id: rows::id(row, "workspace_id", WorkspaceId::from_trusted)?,
        csrf_token: get(row, "csrf_token")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

// --- workspaces ---------------------------------------------------------------------------------

pub(crate) fn insert_workspace(tx: &mut PgTx<'_>, w: &Workspace) -> StoreResult<()> {
    let inserted = tx.execute(
        "INSERT INTO workspaces (id, name, write_key, locale, time_zone, currency, default_region, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT DO NOTHING",
        &[&w.id.as_str(), &w.name, &w.write_key, &w.locale, &w.time_zone, &w.currency, &w.default_region, &w.created_at],
    )?;
    if inserted == 1 {
        return Ok(());
    }
    let key_taken: bool = get(
        &tx.query_one(
            "SELECT EXISTS (SELECT 1 FROM workspaces WHERE write_key = $1) AS taken",
            &[&w.write_key],
        )?,
        "taken",
    )?;
    Err(StoreError::Conflict(
        if key_taken {
            "workspaces_write_key"
        } else {
            "workspaces_pkey"
        }
        .into(),
    ))
}

pub(crate) fn update_workspace(tx: &mut PgTx<'_>, w: &Workspace) -> StoreResult<()> {
    let changed = tx.execute(
        "UPDATE workspaces
         SET name = $2, write_key = $3, locale = $4, time_zone = $5, currency = $6, default_region = $7,
             created_at = $8
         WHERE id = $1",
        &[&w.id.as_str(), &w.name, &w.write_key, &w.locale, &w.time_zone, &w.currency, &w.default_region, &w.created_at],
    )?;
    require_one(changed)
}

pub(crate) fn get_workspace(tx: &mut PgTx<'_>, id: &WorkspaceId) -> StoreResult<Option<Workspace>> {
    tx.query_opt(
        concat!(
            "SELECT ",
            workspace_columns!(),
            " FROM workspaces WHERE id = $1"
        ),
        &[&id.as_str()],
    )?
    .as_ref()
    .map(workspace_from)
    .transpose()
}

/// Looks a workspace up by its key alone: this is how ingestion learns the workspace.
pub(crate) fn workspace_by_write_key(
    tx: &mut PgTx<'_>,
    write_key: &str,
) -> StoreResult<Option<Workspace>> {
    tx.query_opt(
        concat!(
            "SELECT ",
            workspace_columns!(),
            " FROM workspaces WHERE write_key = $1"
        ),
        &[&write_key],
    )?
    .as_ref()
    .map(workspace_from)
    .transpose()
}

pub(crate) fn count_workspaces(tx: &mut PgTx<'_>) -> StoreResult<i64> {
    get(
        &tx.query_one("SELECT count(*) AS n FROM workspaces", &[])?,
        "n",
    )
}

/// Every workspace, by id.
pub(crate) fn list_workspaces(tx: &mut PgTx<'_>) -> StoreResult<Vec<Workspace>> {
    tx.query(
        concat!(
            "SELECT ",
            workspace_columns!(),
            " FROM workspaces ORDER BY id"
        ),
        &[],
    )?
    .iter()
    .map(workspace_from)
    .collect()
}

// --- operators and memberships -------------------------------------------------------------------

pub(crate) fn insert_operator(tx: &mut PgTx<'_>, o: &Operator) -> StoreResult<()> {
    let email = o.email.to_lowercase();
    let inserted = tx.execute(
        "INSERT INTO operators (id, email, name, password_hash, locale, active, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT DO NOTHING",
        &[
            &o.id.as_str(),
            &email,
            &o.name,
            &o.password_hash,
            &o.locale,
            &o.active,
            &o.created_at,
        ],
    )?;
    if inserted == 1 {
        return Ok(());
    }
    let email_taken: bool = get(
        &tx.query_one(
            "SELECT EXISTS (SELECT 1 FROM operators WHERE email = $1) AS taken",
            &[&email],
        )?,
        "taken",
    )?;
    Err(StoreError::Conflict(
        if email_taken {
            "operators_email"
        } else {
            "operators_pkey"
        }
        .into(),
    ))
}

/// Changing the email to one that is taken fails with `Conflict("operators_email")`; unlike
/// an insert, that conflict aborts the transaction.
pub(crate) fn update_operator(tx: &mut PgTx<'_>, o: &Operator) -> StoreResult<()> {
    let changed = tx.execute(
        "UPDATE operators
         SET email = $2, name = $3, password_hash = $4, locale = $5, active = $6, created_at = $7
         WHERE id = $1",
        &[
            &o.id.as_str(),
            &o.email.to_lowercase(),
            &o.name,
            &o.password_hash,
            &o.locale,
            &o.active,
            &o.created_at,
        ],
    )?;
    require_one(changed)
}

pub(crate) fn get_operator(tx: &mut PgTx<'_>, id: &OperatorId) -> StoreResult<Option<Operator>> {
    tx.query_opt(
        concat!(
            "SELECT ",
            operator_columns!(),
            " FROM operators WHERE id = $1"
        ),
        &[&id.as_str()],
    )?
    .as_ref()
    .map(operator_from)
    .transpose()
}

pub(crate) fn operator_by_email(tx: &mut PgTx<'_>, email: &str) -> StoreResult<Option<Operator>> {
    let email = email.trim().to_lowercase();
    tx.query_opt(
        concat!(
            "SELECT ",
            operator_columns!(),
            " FROM operators WHERE email = $1"
        ),
        &[&email],
    )?
    .as_ref()
    .map(operator_from)
    .transpose()
}

pub(crate) fn upsert_membership(tx: &mut PgTx<'_>, m: &Membership) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO memberships (workspace_id, operator_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (workspace_id, operator_id) DO UPDATE SET role = excluded.role",
        &[
            &m.workspace_id.as_str(),
            &m.operator_id.as_str(),
            &m.role.as_str(),
        ],
    )?;
    Ok(())
}

pub(crate) fn delete_membership(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    operator: &OperatorId,
) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM memberships WHERE workspace_id = $1 AND operator_id = $2",
        &[&workspace.as_str(), &operator.as_str()],
    )?;
    Ok(())
}

pub(crate) fn membership(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    operator: &OperatorId,
) -> StoreResult<Option<Role>> {
    tx.query_opt(
        "SELECT role FROM memberships WHERE workspace_id = $1 AND operator_id = $2",
        &[&workspace.as_str(), &operator.as_str()],
    )?
    .as_ref()
    .map(|row| rows::role(row, "role"))
    .transpose()
}

pub(crate) fn list_members(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
) -> StoreResult<Vec<(Operator, Role)>> {
    tx.query(
        "SELECT o.id, o.email, o.name, o.password_hash, o.locale, o.active, o.created_at, m.role
         FROM memberships m JOIN operators o ON o.id = m.operator_id
         WHERE m.workspace_id = $1
         ORDER BY o.email, o.id",
        &[&workspace.as_str()],
    )?
    .iter()
    .map(|row| Ok((operator_from(row)?, rows::role(row, "role")?)))
    .collect()
}

pub(crate) fn workspaces_of_operator(
    tx: &mut PgTx<'_>,
    operator: &OperatorId,
) -> StoreResult<Vec<(Workspace, Role)>> {
    // Byte order (COLLATE "C"), like SQLite's default, so both backends list alike.
    tx.query(
        "SELECT w.id, w.name, w.write_key, w.locale, w.time_zone, w.currency, w.default_region, w.created_at, m.role
         FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
         WHERE m.operator_id = $1
         ORDER BY w.name COLLATE \"C\", w.id",
        &[&operator.as_str()],
    )?
    .iter()
    .map(|row| Ok((workspace_from(row)?, rows::role(row, "role")?)))
    .collect()
}

// --- sessions ------------------------------------------------------------------------------------

pub(crate) fn insert_session(tx: &mut PgTx<'_>, s: &Session) -> StoreResult<()> {
    let inserted = tx.execute(
        "INSERT INTO sessions (token_hash, workspace_id, operator_id, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING",
        &[&s.token_hash, &s.workspace_id.as_str(), &s.operator_id.as_str(), &s.csrf_token, &s.created_at, &s.expires_at],
    )?;
    if inserted == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict("sessions_pkey".into()))
    }
}

/// By token alone: the token is what identifies the session (and its workspace). Expiry is the
/// caller's to check, since the store reads no clock.
pub(crate) fn session_by_token_hash(
    tx: &mut PgTx<'_>,
    token_hash: &str,
) -> StoreResult<Option<Session>> {
    tx.query_opt(
        "SELECT token_hash, workspace_id, operator_id, csrf_token, created_at, expires_at
         FROM sessions WHERE token_hash = $1",
        &[&token_hash],
    )?
    .as_ref()
    .map(session_from)
    .transpose()
}

pub(crate) fn delete_session(tx: &mut PgTx<'_>, token_hash: &str) -> StoreResult<()> {
    tx.execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])?;
    Ok(())
}

// --- API keys ------------------------------------------------------------------------------------

pub(crate) fn insert_api_key(tx: &mut PgTx<'_>, k: &ApiKey) -> StoreResult<()> {
    let inserted = tx.execute(
        "INSERT INTO api_keys (id, workspace_id, name, role, prefix, key_hash, created_at, last_used_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT DO NOTHING",
        &[
            &k.id.as_str(),
            &k.workspace_id.as_str(),
            &k.name,
            &k.role.as_str(),
            &k.prefix,
            &k.key_hash,
            &k.created_at,
            &k.last_used_at,
            &k.revoked_at,
        ],
    )?;
    if inserted == 1 {
        return Ok(());
    }
    let hash_taken: bool = get(
        &tx.query_one(
            "SELECT EXISTS (SELECT 1 FROM api_keys WHERE key_hash = $1) AS taken",
            &[&k.key_hash],
        )?,
        "taken",
    )?;
    Err(StoreError::Conflict(
        if hash_taken {
            "api_keys_key_hash"
        } else {
            "api_keys_pkey"
        }
        .into(),
    ))
}

/// By hash alone: the key is what identifies its workspace.
pub(crate) fn api_key_by_hash(tx: &mut PgTx<'_>, key_hash: &str) -> StoreResult<Option<ApiKey>> {
    tx.query_opt(
        concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE key_hash = $1"
        ),
        &[&key_hash],
    )?
    .as_ref()
    .map(api_key_from)
    .transpose()
}

pub(crate) fn list_api_keys(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
) -> StoreResult<Vec<ApiKey>> {
    tx.query(
        concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC"
        ),
        &[&workspace.as_str()],
    )?
    .iter()
    .map(api_key_from)
    .collect()
}

pub(crate) fn revoke_api_key(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    id: &ApiKeyId,
    at: Timestamp,
) -> StoreResult<()> {
    let changed = tx.execute(
        "UPDATE api_keys SET revoked_at = $3 WHERE workspace_id = $1 AND id = $2",
        &[&workspace.as_str(), &id.as_str(), &at],
    )?;
    require_one(changed)
}

pub(crate) fn touch_api_key(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    id: &ApiKeyId,
    at: Timestamp,
) -> StoreResult<()> {
    let changed = tx.execute(
        "UPDATE api_keys SET last_used_at = $3 WHERE workspace_id = $1 AND id = $2",
        &[&workspace.as_str(), &id.as_str(), &at],
    )?;
    require_one(changed)
}
