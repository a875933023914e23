//! Two-factor sign-in with TOTP (RFC 6238: 6 digits, 30-second steps, SHA-1, as every
//! authenticator app reads it) and single-use recovery codes.
//!
//! Enrolment is two steps: `begin_totp` stores a pending secret and returns it with an
//! `otpauth://` URL and its QR code (SVG); `confirm_totp` checks a first code, switches the
//! factor on and returns ten recovery codes, shown once (only their hashes are kept).
//!
//! Sign-in with a second factor: when the password is right and the operator has TOTP on,
//! `login_start` returns a short-lived challenge instead of a session; `login_complete` trades
//! the challenge and a code (or a recovery code) for the session. A challenge is stored like a
//! session whose CSRF token is [`PENDING_MARK`], which `authenticate_session` never accepts.

use crate::accounts::{hash_token, Actor};
use crate::error::{CoreError, CoreResult};
use crate::Ciclo;
use base64::Engine;
use ciclo_domain::ids::OperatorId;
use ciclo_domain::operator::Session;
use ciclo_domain::{FieldError, Timestamp};
use ciclo_store::{read, write, OperatorMfa};
use serde::Serialize;
use totp_rs::{Algorithm, TOTP};

/// Marks a stored challenge (not a usable session).
pub const PENDING_MARK: &str = "pending-second-factor";
/// How long a sign-in challenge lives.
pub const CHALLENGE_MINUTES: i64 = 5;
const STEP_SECONDS: u64 = 30;
const RECOVERY_CODES: usize = 10;
/// Wrong codes in a row after which a sign-in challenge is cancelled.
pub const MAX_CODE_ATTEMPTS: i64 = 5;

/// What an operator scans to enrol.
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrolment {
    /// Base32, for typing in by hand.
    pub secret: String,
    pub otpauth_url: String,
    /// The URL as a QR code, an SVG document.
    pub qr_svg: String,
}

/// Where an operator's second factor stands.
#[derive(Debug, Clone, Serialize)]
pub enum TotpStatus {
    /// Not set up.
    Off,
    /// Set-up started, not confirmed with a first code yet.
    Pending(TotpEnrolment),
    /// On since `since`, with this many unused recovery codes.
    On {
        since: Timestamp,
        recovery_codes_left: usize,
    },
}

/// The result of checking a password.
#[derive(Debug, Clone)]
pub enum LoginStep {
    /// Signed in: the session token and session.
    Done(String, Session),
    /// The operator has a second factor: send the challenge back with a code.
    SecondFactor { challenge: String },
}

fn totp(secret: &[u8], account: &str) -> CoreResult<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        Some("ciclo".into()),
        account.to_string(),
    )
    .map_err(|e| CoreError::Store(ciclo_store::StoreError::Backend(format!("totp: {e}"))))
}

/// The secret (base32), its `otpauth://` URL and the URL as a QR code.
fn enrolment(secret: &[u8], account: &str) -> CoreResult<TotpEnrolment> {
    let generator = totp(secret, account)?;
    let otpauth_url = generator.get_url();
    let qr_svg = qrcode::QrCode::new(otpauth_url.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .build()
        })
        .map_err(|e| CoreError::Store(ciclo_store::StoreError::Backend(format!("qr: {e}"))))?;
    Ok(TotpEnrolment {
        secret: generator.get_secret_base32(),
        otpauth_url,
        qr_svg,
    })
}

fn decode_secret(secret: &str) -> CoreResult<Vec<u8>> {
    totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .map_err(|_| {
            CoreError::Store(ciclo_store::StoreError::Backend(
                "stored TOTP secret is not base32".into(),
            ))
        })
}

/// The time step a code is valid for (now, or one step either side for clock drift), if any.
fn matching_step(secret: &[u8], code: &str, now: Timestamp) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let generator = TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        None,
        String::new(),
    );
    let current = now.timestamp().max(0) as u64 / STEP_SECONDS;
    (current.saturating_sub(1)..=current + 1).find_map(|step| {
        let expected = generator.generate(step * STEP_SECONDS);
        // Constant-time comparison: the codes are short, but timing should not leak digits.
        let same = expected.len() == code.len()
            && expected
                .bytes()
                .zip(code.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then_some(step as i64)
    })
}

fn invalid_code() -> CoreError {
    CoreError::invalid(
        "invalid_totp_code",
        "code",
        "the code is not valid; check your authenticator app's clock",
    )
}

fn normalise_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

impl Ciclo {
    fn operator_of(actor: &Actor) -> CoreResult<&OperatorId> {
        actor
            .operator_id
            .as_ref()
            .ok_or(CoreError::Forbidden("operator_session"))
    }

    /// Whether the operator signs in with a second factor.
    pub fn totp_enabled(&self, operator: &OperatorId) -> CoreResult<bool> {
        Ok(read(&*self.store, |tx| tx.get_operator_mfa(operator))?
            .is_some_and(|m| m.enabled_at.is_some()))
    }

    /// Starts enrolment: a new pending secret (replacing any unconfirmed one).
    pub fn begin_totp(&self, actor: &Actor) -> CoreResult<TotpEnrolment> {
        let operator_id = Self::operator_of(actor)?.clone();
        if self.totp_enabled(&operator_id)? {
            return Err(CoreError::Conflict(FieldError::new(
                "totp_already_enabled",
                "code",
                "two-factor sign-in is already on",
            )));
        }
        let operator = read(&*self.store, |tx| tx.get_operator(&operator_id))?
            .ok_or(CoreError::Unauthorized)?;
        // 160 bits, as RFC 4226 recommends.
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(self.random.token(20))
            .map_err(|e| CoreError::Store(ciclo_store::StoreError::Backend(e.to_string())))?;
        let enrolment = enrolment(&raw, &operator.email)?;
        let mfa = OperatorMfa {
            operator_id,
            totp_secret: enrolment.secret.clone(),
            enabled_at: None,
            recovery_code_hashes: Vec::new(),
            last_used_step: None,
            failed_attempts: 0,
            created_at: self.clock.now(),
        };
        write(&*self.store, |tx| tx.put_operator_mfa(&mfa))?;
        Ok(enrolment)
    }

    /// Where the operator's second factor stands (for the settings page); a set-up in
    /// progress comes with its secret and QR code again, so the page can be shown again.
    pub fn totp_status(&self, actor: &Actor) -> CoreResult<TotpStatus> {
        let operator_id = Self::operator_of(actor)?;
        let Some(mfa) = read(&*self.store, |tx| tx.get_operator_mfa(operator_id))? else {
            return Ok(TotpStatus::Off);
        };
        if let Some(since) = mfa.enabled_at {
            return Ok(TotpStatus::On {
                since,
                recovery_codes_left: mfa.recovery_code_hashes.len(),
            });
        }
        let operator = read(&*self.store, |tx| tx.get_operator(operator_id))?
            .ok_or(CoreError::Unauthorized)?;
        Ok(TotpStatus::Pending(enrolment(
            &decode_secret(&mfa.totp_secret)?,
            &operator.email,
        )?))
    }

    /// Confirms enrolment with a first code; returns the recovery codes, shown once.
    pub fn confirm_totp(&self, actor: &Actor, code: &str) -> CoreResult<Vec<String>> {
        let operator_id = Self::operator_of(actor)?.clone();
        let Some(mut mfa) = read(&*self.store, |tx| tx.get_operator_mfa(&operator_id))? else {
            return Err(CoreError::Conflict(FieldError::new(
                "totp_not_started",
                "code",
                "start the set-up first",
            )));
        };
        if mfa.enabled_at.is_some() {
            return Err(CoreError::Conflict(FieldError::new(
                "totp_already_enabled",
                "code",
                "two-factor sign-in is already on",
            )));
        }
        let now = self.clock.now();
        let step =
            matching_step(&decode_secret(&mfa.totp_secret)?, code, now).ok_or_else(invalid_code)?;
        // Ten hex digits (40 bits) each, as `xxxxx-xxxxx`.
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| {
                let digits = format!("{:032x}", self.random.u128());
                format!("{}-{}", &digits[..5], &digits[5..10])
            })
            .collect();
        mfa.recovery_code_hashes = codes
            .iter()
            .map(|c| hash_token(&normalise_recovery(c)))
            .collect();
        mfa.enabled_at = Some(now);
        mfa.last_used_step = Some(step);
        write(&*self.store, |tx| tx.put_operator_mfa(&mfa))?;
        Ok(codes)
    }

    /// Turns the second factor off; needs a current code or a recovery code.
    pub fn disable_totp(&self, actor: &Actor, code: &str) -> CoreResult<()> {
        let operator_id = Self::operator_of(actor)?.clone();
        self.verify_second_factor(&operator_id, code)?;
        write(&*self.store, |tx| tx.delete_operator_mfa(&operator_id))?;
        Ok(())
    }

    /// Checks a TOTP code (never the same step twice) or spends a recovery code. A wrong code
    /// adds to the operator's count of wrong codes in a row (a right one resets it); the count
    /// is returned with the error.
    fn verify_second_factor(&self, operator: &OperatorId, code: &str) -> CoreResult<()> {
        self.check_second_factor(operator, code)
            .and_then(|(ok, _)| if ok { Ok(()) } else { Err(invalid_code()) })
    }

    /// (whether the code was right, wrong codes in a row now).
    fn check_second_factor(&self, operator: &OperatorId, code: &str) -> CoreResult<(bool, i64)> {
        let now = self.clock.now();
        Ok(write(&*self.store, |tx| {
            let Some(mut mfa) = tx
                .get_operator_mfa(operator)?
                .filter(|m| m.enabled_at.is_some())
            else {
                return Ok((false, 0));
            };
            let right = Self::spend_code(&mut mfa, code, now);
            mfa.failed_attempts = if right { 0 } else { mfa.failed_attempts + 1 };
            tx.put_operator_mfa(&mfa)?;
            Ok((right, mfa.failed_attempts))
        })?)
    }

    /// Whether `code` is a fresh TOTP code or an unused recovery code (spent if so).
    fn spend_code(mfa: &mut OperatorMfa, code: &str, now: Timestamp) -> bool {
        let secret = totp_rs::Secret::Encoded(mfa.totp_secret.clone())
            .to_bytes()
            .unwrap_or_default();
        if let Some(step) = matching_step(&secret, code, now) {
            if mfa.last_used_step.is_some_and(|last| step <= last) {
                return false; // replayed code
            }
            mfa.last_used_step = Some(step);
            return true;
        }
        let hashed = hash_token(&normalise_recovery(code));
        if let Some(position) = mfa.recovery_code_hashes.iter().position(|h| *h == hashed) {
            mfa.recovery_code_hashes.remove(position);
            return true;
        }
        false
    }

    /// Checks email and password. With a second factor on, returns a challenge for
    /// [`Ciclo::login_complete`] instead of a session.
    pub fn login_start(
        &self,
        email: &str,
        password: &str,
        workspace: Option<&ciclo_domain::ids::WorkspaceId>,
    ) -> CoreResult<LoginStep> {
        let (token, session) = self.login_password_only(email, password, workspace)?;
        if !self.totp_enabled(&session.operator_id)? {
            return Ok(LoginStep::Done(token, session));
        }
        // Turn the session into a challenge: same row, marked, short-lived.
        let challenge = Session {
            csrf_token: PENDING_MARK.to_string(),
            expires_at: session.created_at + chrono::Duration::minutes(CHALLENGE_MINUTES),
            ..session
        };
        write(&*self.store, |tx| {
            tx.delete_session(&challenge.token_hash)?;
            tx.insert_session(&challenge)
        })?;
        Ok(LoginStep::SecondFactor { challenge: token })
    }

    /// Completes a sign-in that needs a second factor.
    pub fn login_complete(&self, challenge: &str, code: &str) -> CoreResult<(String, Session)> {
        let hash = hash_token(challenge);
        let pending = read(&*self.store, |tx| tx.session_by_token_hash(&hash))?;
        let Some(pending) =
            pending.filter(|s| s.csrf_token == PENDING_MARK && s.expires_at > self.clock.now())
        else {
            return Err(CoreError::Unauthorized);
        };
        let (right, failures) = self.check_second_factor(&pending.operator_id, code)?;
        if !right {
            if failures >= MAX_CODE_ATTEMPTS {
                // Enough guesses on this password: start again from the password (each new
                // challenge then allows one guess until a right code resets the count).
                write(&*self.store, |tx| tx.delete_session(&hash))?;
                return Err(CoreError::invalid(
                    "too_many_attempts",
                    "code",
                    "too many wrong codes: sign in again with your password",
                ));
            }
            return Err(invalid_code());
        }
        write(&*self.store, |tx| tx.delete_session(&hash))?;
        self.open_session_for(&pending.operator_id, &pending.workspace_id)
    }
}
