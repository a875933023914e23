//! Operators' second factor (TOTP secrets and recovery-code hashes).

use crate::rows::{self, get};
use crate::tx::PgTx;
use ciclo_domain::ids::OperatorId;
use ciclo_store::{OperatorMfa, StoreError, StoreResult};

pub(crate) fn get_operator_mfa(
    tx: &mut PgTx<'_>,
    operator: &OperatorId,
) -> StoreResult<Option<OperatorMfa>> {
    let row = tx.query_opt(
        "SELECT operator_id, totp_secret, enabled_at, recovery_code_hashes, last_used_step, created_at,
             failed_attempts
         FROM operator_mfa WHERE operator_id = $1",
        &[&operator.as_str()],
    )?;
    let Some(row) = row else { return Ok(None) };
    let hashes: serde_json::Value = get(&row, "recovery_code_hashes")?;
    Ok(Some(OperatorMfa {
        operator_id: rows::id(&row, "operator_id", OperatorId::from_trusted)?,
        totp_secret: get(&row, "totp_secret")?,
        enabled_at: get(&row, "enabled_at")?,
        recovery_code_hashes: serde_json::from_value(hashes)
            .map_err(|e| StoreError::Backend(format!("operator_mfa.recovery_code_hashes: {e}")))?,
        last_used_step: get(&row, "last_used_step")?,
        failed_attempts: get(&row, "failed_attempts")?,
        created_at: get(&row, "created_at")?,
    }))
}

pub(crate) fn put_operator_mfa(tx: &mut PgTx<'_>, mfa: &OperatorMfa) -> StoreResult<()> {
    let hashes = serde_json::json!(mfa.recovery_code_hashes);
    tx.execute(
        "INSERT INTO operator_mfa (operator_id, totp_secret, enabled_at, recovery_code_hashes, last_used_step, created_at,
             failed_attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (operator_id) DO UPDATE SET totp_secret = EXCLUDED.totp_secret, enabled_at = EXCLUDED.enabled_at,
           recovery_code_hashes = EXCLUDED.recovery_code_hashes, last_used_step = EXCLUDED.last_used_step,
           created_at = EXCLUDED.created_at, failed_attempts = EXCLUDED.failed_attempts",
        &[&mfa.operator_id.as_str(), &mfa.totp_secret, &mfa.enabled_at, &hashes, &mfa.last_used_step, &mfa.created_at,
          &mfa.failed_attempts],
    )?;
    Ok(())
}

pub(crate) fn delete_operator_mfa(tx: &mut PgTx<'_>, operator: &OperatorId) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM operator_mfa WHERE operator_id = $1",
        &[&operator.as_str()],
    )?;
    Ok(())
}
