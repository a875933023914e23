//! Operators' second factor (TOTP secrets and recovery-code hashes).

use crate::codec::{get_json, get_opt_ts, get_ts, micros, opt_micros, to_json};
use crate::error::Db;
use ciclo_domain::ids::OperatorId;
use ciclo_store::{OperatorMfa, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn get_operator_mfa(
    conn: &Connection,
    operator: &OperatorId,
) -> StoreResult<Option<OperatorMfa>> {
    conn.prepare_cached(
        "SELECT operator_id, totp_secret, enabled_at, recovery_code_hashes, last_used_step, created_at,
             failed_attempts
         FROM operator_mfa WHERE operator_id = ?1",
    )
    .db()?
    .query_row([operator.as_str()], |row| {
        Ok(OperatorMfa {
            operator_id: OperatorId::from_trusted(row.get(0)?),
            totp_secret: row.get(1)?,
            enabled_at: get_opt_ts(row, 2)?,
            recovery_code_hashes: get_json(row, 3)?,
            last_used_step: row.get(4)?,
            created_at: get_ts(row, 5)?,
            failed_attempts: row.get(6)?,
        })
    })
    .optional()
    .db()
}

pub(crate) fn put_operator_mfa(conn: &Connection, mfa: &OperatorMfa) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO operator_mfa (operator_id, totp_secret, enabled_at, recovery_code_hashes, last_used_step, created_at,
             failed_attempts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (operator_id) DO UPDATE SET totp_secret = excluded.totp_secret, enabled_at = excluded.enabled_at,
           recovery_code_hashes = excluded.recovery_code_hashes, last_used_step = excluded.last_used_step,
           created_at = excluded.created_at, failed_attempts = excluded.failed_attempts",
    )
    .db()?
    .execute(params![
        mfa.operator_id.as_str(),
        mfa.totp_secret,
        opt_micros(&mfa.enabled_at),
        to_json(&mfa.recovery_code_hashes)?,
        mfa.last_used_step,
        micros(&mfa.created_at),
        mfa.failed_attempts
    ])
    .db()?;
    Ok(())
}

pub(crate) fn delete_operator_mfa(conn: &Connection, operator: &OperatorId) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM operator_mfa WHERE operator_id = ?1")
        .db()?
        .execute([operator.as_str()])
        .db()?;
    Ok(())
}
