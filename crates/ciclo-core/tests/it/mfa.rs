//! Two-factor sign-in: enrolment, codes, replay protection, recovery codes, challenges.

use crate::harness;
use ciclo_core::mfa::LoginStep;
use ciclo_core::{Clock, CoreError};
use totp_rs::{Algorithm, Secret, TOTP};

const PASSWORD: &str = "correct horse battery";

fn code_at(secret: &str, clock: &dyn Clock) -> String {
    let bytes = Secret::Encoded(secret.to_string()).to_bytes().unwrap();
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new())
        .generate(clock.now().timestamp() as u64)
}

fn is_invalid_code(e: &CoreError) -> bool {
    matches!(e, CoreError::Invalid(errors) if errors[0].code == "invalid_totp_code")
}

#[test]
fn totp_enrolment_sign_in_replay_and_recovery_codes() {
    let h = harness();
    let (token, _) = h.app.login("owner@loja.com.br", PASSWORD, None).unwrap();
    let (actor, _) = h.app.authenticate_session(&token).unwrap();

    let enrolment = h.app.begin_totp(&actor).unwrap();
    assert!(
        enrolment.otpauth_url.starts_with("otpauth://totp/"),
        "{}",
        enrolment.otpauth_url
    );
    assert!(enrolment.qr_svg.contains("<svg"));
    assert!(
        is_invalid_code(&h.app.confirm_totp(&actor, "000000").unwrap_err())
            || code_at(&enrolment.secret, &*h.clock) == "000000"
    );
    let recovery = h
        .app
        .confirm_totp(&actor, &code_at(&enrolment.secret, &*h.clock))
        .unwrap();
    assert_eq!(recovery.len(), 10);

    // The password alone no longer signs in.
    let challenge = match h
        .app
        .login_start("owner@loja.com.br", PASSWORD, None)
        .unwrap()
    {
        LoginStep::SecondFactor { challenge } => challenge,
        LoginStep::Done(..) => panic!("second factor skipped"),
    };
    assert!(matches!(
        h.app.login("owner@loja.com.br", PASSWORD, None),
        Err(CoreError::SecondFactorRequired(_))
    ));
    // A challenge is not a session.
    assert!(matches!(
        h.app.authenticate_session(&challenge),
        Err(CoreError::Unauthorized)
    ));
    // The code used to confirm cannot be replayed.
    let replay = h
        .app
        .login_complete(&challenge, &code_at(&enrolment.secret, &*h.clock))
        .unwrap_err();
    assert!(is_invalid_code(&replay), "{replay:?}");
    h.clock.advance(chrono::Duration::seconds(30));
    let (token, _) = h
        .app
        .login_complete(&challenge, &code_at(&enrolment.secret, &*h.clock))
        .unwrap();
    assert!(h.app.authenticate_session(&token).is_ok());

    // A recovery code works once.
    let challenge = match h
        .app
        .login_start("owner@loja.com.br", PASSWORD, None)
        .unwrap()
    {
        LoginStep::SecondFactor { challenge } => challenge,
        LoginStep::Done(..) => panic!("second factor skipped"),
    };
    h.app
        .login_complete(&challenge, &recovery[3].to_uppercase())
        .unwrap();
    let challenge = match h
        .app
        .login_start("owner@loja.com.br", PASSWORD, None)
        .unwrap()
    {
        LoginStep::SecondFactor { challenge } => challenge,
        LoginStep::Done(..) => panic!("second factor skipped"),
    };
    assert!(is_invalid_code(
        &h.app.login_complete(&challenge, &recovery[3]).unwrap_err()
    ));

    // Challenges expire.
    h.clock.advance(chrono::Duration::minutes(6));
    assert!(matches!(
        h.app.login_complete(&challenge, &recovery[4]),
        Err(CoreError::Unauthorized)
    ));

    // Turning it off needs a code; then the password alone signs in again.
    h.app.disable_totp(&actor, &recovery[5]).unwrap();
    assert!(h.app.login("owner@loja.com.br", PASSWORD, None).is_ok());
}

#[test]
fn wrong_codes_in_a_row_cancel_the_challenge_until_a_right_one() {
    let h = harness();
    let (token, _) = h.app.login("owner@loja.com.br", PASSWORD, None).unwrap();
    let (actor, _) = h.app.authenticate_session(&token).unwrap();
    let enrolment = h.app.begin_totp(&actor).unwrap();
    let recovery = h
        .app
        .confirm_totp(&actor, &code_at(&enrolment.secret, &*h.clock))
        .unwrap();
    h.clock.advance(chrono::Duration::seconds(30));
    let start = || match h
        .app
        .login_start("owner@loja.com.br", PASSWORD, None)
        .unwrap()
    {
        LoginStep::SecondFactor { challenge } => challenge,
        LoginStep::Done(..) => panic!("second factor skipped"),
    };
    let right = code_at(&enrolment.secret, &*h.clock);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    let too_many = |e: &CoreError| matches!(e, CoreError::Invalid(errors) if errors[0].code == "too_many_attempts");
    let challenge = start();
    for _ in 0..4 {
        assert!(is_invalid_code(
            &h.app.login_complete(&challenge, wrong).unwrap_err()
        ));
    }
    // The fifth wrong code cancels the challenge: even the right code no longer works on it.
    assert!(too_many(
        &h.app.login_complete(&challenge, wrong).unwrap_err()
    ));
    assert!(matches!(
        h.app.login_complete(&challenge, &right),
        Err(CoreError::Unauthorized)
    ));
    // From now on each password sign-in allows one guess.
    let challenge = start();
    assert!(too_many(
        &h.app.login_complete(&challenge, wrong).unwrap_err()
    ));
    // A right code (here a recovery code) signs in and resets the count.
    let challenge = start();
    h.app.login_complete(&challenge, &recovery[0]).unwrap();
    let challenge = start();
    assert!(is_invalid_code(
        &h.app.login_complete(&challenge, wrong).unwrap_err()
    ));
    h.app.login_complete(&challenge, &right).unwrap();
}
