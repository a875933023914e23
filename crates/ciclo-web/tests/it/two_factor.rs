//! Two-factor sign-in in the console: enrolment from the settings page (QR code, key, first
//! code, recovery codes shown once), the code step of the sign-in (wrong, replayed, expired,
//! too many), recovery codes working once, turning it off, and the CSRF checks of the new forms.
//!
//! Codes are computed as an authenticator app would, with `totp-rs`, from the key shown on the
//! page, at the time of the app's clock (which the tests move: a code is accepted once per
//! 30-second step).

use super::*;
use ciclo_core::mfa::TotpStatus;
use ciclo_core::{Clock, CoreError};
use totp_rs::{Algorithm, Secret, TOTP};

/// A [`TestApp`] whose clock the test can move.
fn app_with_clock() -> (TestApp, Arc<FixedClock>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ciclo.db");
    let inner = ciclo_store_sqlite::SqliteStore::open(path.to_str().unwrap()).unwrap();
    let store = Arc::new(FlakyStore {
        inner,
        failing: AtomicBool::new(false),
    });
    store.migrate().unwrap();
    let clock = Arc::new(FixedClock::at(t("2026-06-01T12:00:00Z")));
    let ciclo = Ciclo::new(store.clone(), clock.clone(), Arc::new(SystemRandom));
    let boot = ciclo
        .bootstrap(NewWorkspace::default(), OWNER_EMAIL, Some(PASSWORD))
        .unwrap()
        .unwrap();
    let router = ciclo_http::router(ciclo.clone(), ciclo_http::HttpOptions::default()).merge(
        ciclo_web::console_router(ciclo.clone(), WebOptions::default()),
    );
    let app = TestApp {
        router,
        ciclo,
        clock: clock.clone(),
        workspace: boot.workspace,
        store,
        _dir: dir,
    };
    (app, clock)
}

/// The code an authenticator app shows for `secret` (as printed on the page, spaces and all).
fn code_for(secret: &str, clock: &FixedClock) -> String {
    let secret: String = secret.split_whitespace().collect();
    let bytes = Secret::Encoded(secret).to_bytes().unwrap();
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new())
        .generate(clock.now().timestamp() as u64)
}

/// A six-digit code that is not the current one.
fn wrong_code(secret: &str, clock: &FixedClock) -> &'static str {
    if code_for(secret, clock) == "000000" {
        "111111"
    } else {
        "000000"
    }
}

/// The key for typing in by hand, as shown on the set-up page.
fn shown_key(page: &Page) -> String {
    let marker = "<code id=\"tf-secret\" aria-labelledby=\"tf-secret-label\">";
    let start = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no key in:\n{}", page.body))
        + marker.len();
    let end = page.body[start..].find("</code>").unwrap() + start;
    page.body[start..end]
        .replace("<span class=\"nowrap\">", "")
        .replace("</span>", "")
}

/// The recovery codes shown right after turning it on.
fn recovery_codes(page: &Page) -> Vec<String> {
    let start = page
        .body
        .find("id=\"recovery-codes\">")
        .expect("recovery codes")
        + "id=\"recovery-codes\">".len();
    let end = page.body[start..].find("</pre>").unwrap() + start;
    page.body[start..end].lines().map(str::to_string).collect()
}

/// Submits the code step of the sign-in shown on `page`.
async fn send_code(browser: &mut Browser, page: &Page, code: &str) -> Page {
    let fields = [
        ("login_token", page.hidden("login_token")),
        ("next", unescape(&page.hidden("next"))),
        ("email", page.hidden("email")),
        ("challenge", page.hidden("challenge")),
        ("code", code.to_string()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post("/login/code", &fields).await
}

async fn sign_out(browser: &mut Browser) {
    let page = browser.get("/settings").await;
    let out = browser.submit(&page, "/logout", &[]).await;
    assert_eq!(out.location(), "/login");
}

/// Turns two-factor sign-in on for the owner through the settings page; returns the key shown
/// and the recovery codes.
async fn enrol(browser: &mut Browser, clock: &FixedClock) -> (String, Vec<String>) {
    let page = browser.get("/settings").await;
    let started = browser
        .submit(&page, "/settings/two-factor/setup", &[])
        .await;
    assert_eq!(started.location(), "/settings?two_factor=setup#two-factor");
    let setup = browser.get("/settings?two_factor=setup").await;
    let secret = shown_key(&setup);
    let on = browser
        .submit(
            &setup,
            "/settings/two-factor/confirm",
            &[("code", &code_for(&secret, clock))],
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    (secret, recovery_codes(&on))
}

#[tokio::test]
async fn enrol_sign_out_then_sign_in_with_a_code_or_a_recovery_code_once() {
    let (app, clock) = app_with_clock();
    let mut browser = app.signed_in(OWNER_EMAIL).await;

    // Off: the section offers the set-up.
    let page = browser.get("/settings").await;
    page.assert_contains("Autenticação em dois fatores");
    page.assert_contains("<span class=\"status\">Desativada</span>");
    page.assert_contains("action=\"/settings/two-factor/setup\"");
    page.assert_lacks("<figure class=\"qr\"");

    // Set up: the key never goes into the URL; the page shows it with its QR code.
    let started = browser
        .submit(&page, "/settings/two-factor/setup", &[])
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    assert_eq!(started.location(), "/settings?two_factor=setup#two-factor");
    let setup = browser.get("/settings?two_factor=setup").await;
    assert_eq!(setup.status, StatusCode::OK);
    let secret = shown_key(&setup);
    let bare: String = secret.split_whitespace().collect();
    assert_eq!(bare.len(), 32, "160-bit key in base32: {secret}");
    setup.assert_contains("<figure class=\"qr\" aria-labelledby=\"qr-caption\">");
    setup.assert_contains(
        "role=\"img\" aria-label=\"QR code que adiciona o ciclo ao seu aplicativo autenticador\"><svg",
    );
    setup.assert_lacks("<?xml");
    setup.assert_contains("Leia com o seu aplicativo autenticador.");
    // Without the flag, the settings page does not show the key (an abandoned set-up).
    browser.get("/settings").await.assert_lacks(&secret);

    // A wrong code, an empty one: the error next to the field, the same key still shown.
    let wrong = browser
        .submit(
            &setup,
            "/settings/two-factor/confirm",
            &[("code", wrong_code(&secret, &clock))],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    wrong.assert_contains("id=\"tf-code-error\">Este código não é válido.");
    wrong.assert_contains("aria-invalid=\"true\" aria-describedby=\"tf-code-error\"");
    assert_eq!(shown_key(&wrong), secret);
    let empty = browser
        .submit(&setup, "/settings/two-factor/confirm", &[("code", " ")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    empty.assert_contains("id=\"tf-code-error\">Digite o código.");

    // The right code turns it on and shows ten recovery codes, once, with a download.
    let confirm_code = code_for(&secret, &clock);
    let on = browser
        .submit(
            &setup,
            "/settings/two-factor/confirm",
            &[("code", &confirm_code)],
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    on.assert_contains("Guarde agora os seus códigos de recuperação.");
    let codes = recovery_codes(&on);
    assert_eq!(codes.len(), 10, "{codes:?}");
    assert!(
        codes.iter().all(|c| c.len() > 6 && &c[5..6] == "-"),
        "{codes:?}"
    );
    on.assert_contains("download=\"ciclo-recovery-codes.txt\"");
    on.assert_contains(&format!("{}%0A", urlencoding::encode(&codes[0])));
    on.assert_contains(&format!(
        "charset=utf-8,{}",
        urlencoding::encode("Códigos de recuperação do ciclo para owner@loja.com.br.")
    ));
    on.assert_lacks(&secret);
    let settings = browser.get("/settings").await;
    assert!(unescape(&settings.body)
        .contains("<span class=\"status status-done\">Ativada</span> desde 01/06/2026."));
    settings.assert_contains("Códigos de recuperação restantes: 10.");
    settings.assert_contains("action=\"/settings/two-factor/disable\"");
    settings.assert_lacks(&codes[0]);

    // Sign out; the password alone now leads to the code step, not to a session.
    sign_out(&mut browser).await;
    let step = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    assert_eq!(step.status, StatusCode::OK, "{}", step.body);
    step.assert_contains("Digite o código de 6 dígitos do seu aplicativo autenticador");
    step.assert_contains("action=\"/login/code\"");
    step.assert_contains("autocomplete=\"one-time-code\"");
    assert!(!browser.cookies.contains_key(ciclo_web::SESSION_COOKIE));
    let challenge = step.hidden("challenge");
    assert!(challenge.len() >= 32);
    assert_eq!(
        step.body.matches(&challenge).count(),
        1,
        "the challenge is only in its hidden field"
    );
    assert!(matches!(
        app.ciclo.authenticate_session(&challenge),
        Err(CoreError::Unauthorized)
    ));
    assert_eq!(
        browser.get("/customers").await.status,
        StatusCode::SEE_OTHER
    );

    // A wrong code: the error next to the field, in the operator's language.
    let wrong = send_code(&mut browser, &step, wrong_code(&secret, &clock)).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong.assert_contains("id=\"f-code-error\" role=\"alert\">Este código não é válido.");
    wrong.assert_contains("aria-describedby=\"f-code-hint f-code-error\" aria-invalid=\"true\"");
    assert_eq!(wrong.hidden("challenge"), challenge);
    browser.accept_language = Some("en".into());
    let wrong = send_code(&mut browser, &wrong, "12345").await;
    wrong.assert_contains("id=\"f-code-error\" role=\"alert\">This code is not valid.");
    let empty = send_code(&mut browser, &wrong, "").await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    empty.assert_contains("Type the code from your authenticator app.");
    browser.accept_language = Some("pt-BR".into());
    // The code that turned it on cannot be used again in the same 30 seconds.
    let replayed = send_code(&mut browser, &empty, &confirm_code).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    replayed.assert_contains("Este código não é válido.");

    // The next code signs in, like the password alone used to: cookie, then `next`.
    clock.advance(chrono::Duration::seconds(30));
    let signed = send_code(&mut browser, &replayed, &code_for(&secret, &clock)).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(signed.location(), "/customers");
    let set_cookies: Vec<&str> = signed
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(set_cookies.iter().any(|c| c.starts_with("ciclo_session=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Lax")
        && c.contains("Path=/;")));
    assert!(set_cookies.iter().any(|c| c.starts_with("ciclo_login=;")));
    assert_eq!(browser.get("/customers").await.status, StatusCode::OK);
    // The challenge is spent (tried from a fresh sign-in form, whose token is valid).
    let form = browser.get("/login").await;
    let fields = [
        ("login_token", form.hidden("login_token")),
        ("challenge", challenge.clone()),
        ("code", codes[0].clone()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let again = browser.post("/login/code", &fields).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    again.assert_contains("A entrada demorou demais. Entre de novo.");

    // A recovery code (as typed, in capitals) signs in once.
    sign_out(&mut browser).await;
    let step = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    let signed = send_code(&mut browser, &step, &codes[3].to_uppercase()).await;
    assert_eq!(signed.location(), "/customers");
    browser
        .get("/settings")
        .await
        .assert_contains("Códigos de recuperação restantes: 9.");
    sign_out(&mut browser).await;
    let step = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    let reused = send_code(&mut browser, &step, &codes[3]).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    reused.assert_contains("Este código não é válido.");
    let signed = send_code(&mut browser, &reused, &codes[4]).await;
    assert_eq!(signed.location(), "/customers");

    // Turning it off asks for a code; then the password alone signs in again.
    let page = browser.get("/settings").await;
    let refused = browser
        .submit(
            &page,
            "/settings/two-factor/disable",
            &[("code", wrong_code(&secret, &clock))],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_contains("id=\"tf-disable-code-error\">Este código não é válido.");
    refused.assert_contains("Ativada</span> desde");
    clock.advance(chrono::Duration::seconds(30));
    let off = browser
        .submit(
            &page,
            "/settings/two-factor/disable",
            &[("code", &code_for(&secret, &clock))],
        )
        .await;
    assert_eq!(off.location(), "/settings?two_factor=off#two-factor");
    let page = browser.get("/settings?two_factor=off").await;
    page.assert_contains("A autenticação em dois fatores está desativada.");
    page.assert_contains("action=\"/settings/two-factor/setup\"");
    sign_out(&mut browser).await;
    let signed = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    assert_eq!(signed.location(), "/customers");
}

#[tokio::test]
async fn the_setup_page_and_code_step_in_english() {
    let (app, clock) = app_with_clock();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    browser.accept_language = Some("en-US,en;q=0.9".into());
    let page = browser.get("/settings").await;
    page.assert_contains(">Set up two-factor</button>");
    browser
        .submit(&page, "/settings/two-factor/setup", &[])
        .await;
    let setup = browser.get("/settings?two_factor=setup").await;
    setup.assert_contains("Key for typing in by hand");
    setup.assert_contains("aria-label=\"QR code that adds ciclo to your authenticator app\"");
    let secret = shown_key(&setup);
    // Starting over gives a new key; the old one no longer confirms.
    browser
        .submit(&setup, "/settings/two-factor/setup", &[])
        .await;
    let fresh = browser.get("/settings?two_factor=setup").await;
    let new_secret = shown_key(&fresh);
    assert_ne!(new_secret, secret);
    let on = browser
        .submit(
            &fresh,
            "/settings/two-factor/confirm",
            &[("code", &code_for(&new_secret, &clock))],
        )
        .await;
    on.assert_contains("Save your recovery codes now.");
    // Set up again while on: nothing changes, the section says it is on.
    let started = browser
        .submit(&fresh, "/settings/two-factor/setup", &[])
        .await;
    assert_eq!(started.location(), "/settings#two-factor");
    let settings = browser.get("/settings").await;
    settings.assert_contains("On</span> since Jun 1, 2026.");
    settings.assert_contains("Recovery codes left: 10.");

    sign_out(&mut browser).await;
    let step = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    step.assert_contains("<title>Two-step verification · ciclo</title>");
    step.assert_contains(
        "Enter the 6-digit code from your authenticator app (or a recovery code).",
    );
}

#[tokio::test]
async fn an_expired_challenge_or_too_many_wrong_codes_go_back_to_the_password() {
    let (app, clock) = app_with_clock();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let (secret, codes) = enrol(&mut browser, &clock).await;
    sign_out(&mut browser).await;

    // Five minutes pass: even the right code leads back to the sign-in, with a message.
    let step = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    clock.advance(chrono::Duration::minutes(6));
    let late = send_code(&mut browser, &step, &code_for(&secret, &clock)).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
    late.assert_contains("A entrada demorou demais. Entre de novo.");
    late.assert_contains("action=\"/login\"");
    late.assert_contains(&format!("value=\"{OWNER_EMAIL}\""));
    late.assert_lacks("name=\"challenge\"");
    assert!(!browser.cookies.contains_key(ciclo_web::SESSION_COOKIE));

    // A challenge cannot be used to try every code: the fifth wrong code ends it.
    let mut step = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    let challenge = step.hidden("challenge");
    for attempt in 1..=4 {
        step = send_code(&mut browser, &step, wrong_code(&secret, &clock)).await;
        assert_eq!(step.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        step.assert_contains("Este código não é válido.");
    }
    let ended = send_code(&mut browser, &step, wrong_code(&secret, &clock)).await;
    ended.assert_contains("Códigos errados demais. Entre de novo.");
    ended.assert_lacks("name=\"challenge\"");
    // Even with the right answer, that challenge is gone.
    let fields = [
        ("login_token", ended.hidden("login_token")),
        ("next", "/".to_string()),
        ("challenge", challenge),
        ("code", codes[0].clone()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gone = browser.post("/login/code", &fields).await;
    gone.assert_contains("A entrada demorou demais.");
    assert!(!browser.cookies.contains_key(ciclo_web::SESSION_COOKIE));
    // The recovery code was not spent by that.
    let step = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    let signed = send_code(&mut browser, &step, &codes[0]).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_two_factor_forms_check_their_tokens() {
    let (app, clock) = app_with_clock();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let (token, _) = app.ciclo.login(OWNER_EMAIL, PASSWORD, None).unwrap();
    let (actor, _) = app.ciclo.authenticate_session(&token).unwrap();
    let status = || app.ciclo.totp_status(&actor).unwrap();

    // Settings forms: the session's CSRF token.
    for route in [
        "/settings/two-factor/setup",
        "/settings/two-factor/confirm",
        "/settings/two-factor/disable",
    ] {
        for token in ["", "forged"] {
            let page = browser
                .post(route, &[("csrf_token", token), ("code", "123456")])
                .await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{route}");
            page.assert_contains("Este formulário expirou");
        }
    }
    assert!(matches!(status(), TotpStatus::Off));
    let (secret, _) = enrol(&mut browser, &clock).await;
    assert!(matches!(status(), TotpStatus::On { .. }));
    clock.advance(chrono::Duration::seconds(30));
    let forged = browser
        .post(
            "/settings/two-factor/disable",
            &[
                ("csrf_token", "forged"),
                ("code", &code_for(&secret, &clock)),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(matches!(status(), TotpStatus::On { .. }));

    // The code step: the sign-in token of its cookie (a cross-site form cannot know it), even
    // with the right challenge and code.
    sign_out(&mut browser).await;
    let step = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    let challenge = step.hidden("challenge");
    for login_token in ["", "forged"] {
        let page = browser
            .post(
                "/login/code",
                &[
                    ("login_token", login_token),
                    ("challenge", &challenge),
                    ("code", &code_for(&secret, &clock)),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        page.assert_contains("O formulário de entrada expirou");
        assert!(!browser.cookies.contains_key(ciclo_web::SESSION_COOKIE));
    }
    // Without the login cookie at all (another browser), the same.
    let mut other = app.browser();
    let page = other
        .post(
            "/login/code",
            &[
                ("login_token", &step.hidden("login_token")),
                ("challenge", &challenge),
                ("code", &code_for(&secret, &clock)),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!other.cookies.contains_key(ciclo_web::SESSION_COOKIE));
}
