//! Every form that changes data needs the session's CSRF token; cookies carry the right flags.

use super::*;
use axum::http::header;

#[tokio::test]
async fn a_form_without_the_right_token_is_refused_with_a_friendly_page() {
    let app = TestApp::new();
    let id = app.customer(json!({"name": "Ana Souza"}));
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let path = format!("/customers/{id}");

    for token in ["", "forged-token"] {
        let page = browser
            .post(&path, &[("csrf_token", token), ("name", "Mallory")])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        page.assert_contains("Este formulário expirou");
        page.assert_lacks("csrf_failed");
    }
    let unchanged = browser.get(&path).await;
    unchanged.assert_contains("Ana Souza");
    unchanged.assert_lacks("Mallory");

    // With the page's own token it goes through.
    let saved = browser
        .submit(&unchanged, &path, &[("name", "Ana Lima")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.location(), format!("/customers/{id}?notice=saved"));
}

#[tokio::test]
async fn every_state_changing_route_checks_the_token() {
    let app = TestApp::new();
    let id = app.customer(json!({"name": "Ana"}));
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let zeros = "01aaaaaaaaaaaaaaaaaaaaaaaa";
    let routes = [
        "/logout".to_string(),
        "/switch-workspace".into(),
        "/language".into(),
        "/customers/bulk-tag".into(),
        format!("/customers/{id}"),
        format!("/merges/mrg_{zeros}/undo"),
        "/imports/uploads/some-token".into(),
        "/settings/workspace".into(),
        "/settings/lifecycle".into(),
        "/segments/new".into(),
        "/segments/preview".into(),
        format!("/segments/seg_{zeros}/edit"),
        format!("/segments/seg_{zeros}/delete"),
        format!("/segments/seg_{zeros}/members"),
        format!("/segments/seg_{zeros}/members/remove"),
        "/settings/operators".into(),
        format!("/settings/operators/op_{zeros}/role"),
        format!("/settings/operators/op_{zeros}/remove"),
        "/settings/api-keys".into(),
        format!("/settings/api-keys/key_{zeros}/revoke"),
    ];
    for route in &routes {
        let page = browser.post(route, &[("csrf_token", "nope")]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{route}");
        page.assert_contains("Este formulário expirou");
    }
    // The upload form (multipart) too.
    let body = "--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nnope\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\nemail\r\na@b.co\r\n--b--\r\n";
    let page = browser
        .send(
            Request::post("/imports")
                .header(header::CONTENT_TYPE, "multipart/form-data; boundary=b")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Still signed in: none of those did anything.
    assert_eq!(browser.get("/customers").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_sign_in_form_carries_its_own_token() {
    let app = TestApp::new();
    let mut browser = app.browser();
    // A cross-site form cannot know the token of the login cookie.
    let page = browser
        .post(
            "/login",
            &[
                ("email", OWNER_EMAIL),
                ("password", PASSWORD),
                ("login_token", "guess"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    page.assert_contains("O formulário de entrada expirou");
    assert!(!browser.cookies.contains_key(ciclo_web::SESSION_COOKIE));
}

#[tokio::test]
async fn session_cookie_flags() {
    for secure in [false, true] {
        let app = TestApp::with_options(WebOptions {
            secure_cookies: secure,
            ..Default::default()
        });
        let mut browser = app.browser();
        let page = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
        let cookie = page
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("ciclo_session="))
            .unwrap();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(cookie.contains("Path=/"), "{cookie}");
        assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
    }
}

#[tokio::test]
async fn pages_carry_security_headers_and_are_not_cached() {
    let app = TestApp::new();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let page = browser.get("/customers").await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(page.body.contains("<html lang=\"pt-BR\">"));
}
