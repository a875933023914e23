//! Sign-in, sessions with their cookie and CSRF check, secret keys, roles, operators and
//! workspace settings.

use crate::{TestApp, OWNER_EMAIL, OWNER_PASSWORD};
use axum::http::{Method, StatusCode};
use ciclo_domain::operator::Role;
use ciclo_http::HttpOptions;
use serde_json::json;

#[tokio::test]
async fn login_sets_a_safe_cookie_and_returns_the_csrf_token() {
    let app = TestApp::new();
    let reply = app
        .call(Method::POST, "/api/v1/auth/login")
        .json(json!({"email": "  OWNER@loja.com.br ", "password": OWNER_PASSWORD}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let cookie = reply.header("set-cookie").unwrap();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert!(
        body["csrf_token"].as_str().is_some_and(|t| t.len() > 20),
        "{body}"
    );
    assert_eq!(body["workspace"]["id"], app.workspace.id.to_string());
    assert_eq!(body["role"], "owner");

    let secure = TestApp::with_options(HttpOptions {
        secure_cookies: true,
        ..Default::default()
    });
    let reply = secure
        .call(Method::POST, "/api/v1/auth/login")
        .json(json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD}))
        .send()
        .await;
    assert!(reply.header("set-cookie").unwrap().contains("; Secure"));
}

#[tokio::test]
async fn wrong_credentials_are_401() {
    let app = TestApp::new();
    for body in [
        json!({"email": OWNER_EMAIL, "password": "wrong password"}),
        json!({"email": "nobody@loja.com.br", "password": OWNER_PASSWORD}),
        json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "workspace_id": "ws_01jd8x6v3f9q2m4n7p5r8t0w1y"}),
    ] {
        let reply = app
            .call(Method::POST, "/api/v1/auth/login")
            .json(body)
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.json(),
            json!({"error": {"code": "unauthorized", "message": "wrong email or password, or no access to that workspace"}})
        );
    }
    let reply = app
        .call(Method::POST, "/api/v1/auth/login")
        .json(json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "workspace_id": "nope"}))
        .send()
        .await;
    assert_eq!(
        reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "workspace_id"
    );
}

#[tokio::test]
async fn the_session_cookie_works_and_unsafe_methods_need_the_csrf_token() {
    let app = TestApp::new();
    let (session, csrf) = app.login().await;

    let me = app
        .call(Method::GET, "/api/v1/me")
        .cookie(&session)
        .send()
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    let me = me.json();
    assert_eq!(me["actor"]["role"], "owner");
    assert_eq!(me["csrf_token"], csrf.as_str());
    assert_eq!(
        me["workspaces"][0]["workspace"]["id"],
        app.workspace.id.to_string()
    );
    assert!(me["actor"]["operator_id"]
        .as_str()
        .unwrap()
        .starts_with("op_"));

    let create = || {
        app.call(Method::POST, "/api/v1/api-keys")
            .cookie(&session)
            .json(json!({"name": "ci", "role": "agent"}))
    };
    let reply = create().send().await;
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "csrf_failed", "message": "send the session's csrf_token in the X-CSRF-Token header"}})
    );
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    create()
        .csrf("wrong")
        .send()
        .await
        .error(StatusCode::FORBIDDEN, "csrf_failed");
    let reply = create().csrf(&csrf).send().await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());

    // An Authorization header decides alone, even next to a good cookie.
    let reply = app
        .call(Method::GET, "/api/v1/me")
        .cookie(&session)
        .bearer("sk_bad")
        .send()
        .await;
    reply.error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::new();
    let (session, csrf) = app.login().await;
    app.call(Method::POST, "/api/v1/auth/logout")
        .cookie(&session)
        .send()
        .await
        .error(StatusCode::FORBIDDEN, "csrf_failed");
    let reply = app
        .call(Method::POST, "/api/v1/auth/logout")
        .cookie(&session)
        .csrf(&csrf)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.header("set-cookie").unwrap().contains("Max-Age=0"));
    app.call(Method::GET, "/api/v1/me")
        .cookie(&session)
        .send()
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    // A stale cookie can still sign out (nothing left to protect).
    let reply = app
        .call(Method::POST, "/api/v1/auth/logout")
        .cookie(&session)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn switching_workspaces_needs_a_session_and_a_membership() {
    let app = TestApp::new();
    let other = app
        .ciclo
        .create_workspace_with_owner(
            ciclo_core::accounts::NewWorkspace {
                name: "Outra Loja".into(),
                ..Default::default()
            },
            OWNER_EMAIL,
            "Owner",
            OWNER_PASSWORD,
        )
        .unwrap();
    let (session, csrf) = app.login().await;
    let reply = app
        .call(Method::POST, "/api/v1/auth/switch")
        .cookie(&session)
        .csrf(&csrf)
        .json(json!({"workspace_id": other.id.to_string()}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["workspace"]["name"], "Outra Loja");
    let new_session = reply.session_cookie().unwrap();
    assert_ne!(new_session, session);

    let key = app.key(Role::Owner);
    let reply = app
        .call(Method::POST, "/api/v1/auth/switch")
        .bearer(&key)
        .json(json!({"workspace_id": other.id.to_string()}))
        .send()
        .await;
    reply.error(StatusCode::BAD_REQUEST, "session_required");
}

#[tokio::test]
async fn api_keys_are_created_listed_and_revoked_and_roles_are_enforced() {
    let app = TestApp::new();
    let admin = app.key(Role::Admin);
    let reply = app
        .call(Method::POST, "/api/v1/api-keys")
        .bearer(&admin)
        .json(json!({"name": "loja", "role": "analyst"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let created = reply.json();
    let analyst = created["secret"].as_str().unwrap().to_string();
    assert!(analyst.starts_with("sk_"));
    assert_eq!(created["role"], "analyst");
    assert!(created.get("key_hash").is_none());

    let list = app
        .call(Method::GET, "/api/v1/api-keys")
        .bearer(&admin)
        .send()
        .await
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    assert!(
        !list.to_string().contains(&analyst),
        "secrets are shown once"
    );

    let reply = app
        .call(Method::GET, "/api/v1/api-keys")
        .bearer(&analyst)
        .send()
        .await;
    let error = reply.error(StatusCode::FORBIDDEN, "forbidden");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("manage_workspace"),
        "{error}"
    );

    let reply = app
        .call(Method::POST, "/api/v1/api-keys")
        .bearer(&admin)
        .json(json!({"name": "x", "role": "root"}))
        .send()
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        error["details"],
        json!([{"code": "invalid_role", "field": "role",
        "reason": "expected owner, admin, marketer, agent or analyst"}])
    );

    let id = created["id"].as_str().unwrap();
    let reply = app
        .call(Method::DELETE, &format!("/api/v1/api-keys/{id}"))
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    app.call(Method::GET, "/api/v1/me")
        .bearer(&analyst)
        .send()
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.call(
        Method::DELETE,
        "/api/v1/api-keys/key_01jd8x6v3f9q2m4n7p5r8t0w1y",
    )
    .bearer(&admin)
    .send()
    .await
    .error(StatusCode::NOT_FOUND, "api_key_not_found");
}

#[tokio::test]
async fn operators_are_added_changed_and_removed() {
    let app = TestApp::new();
    let owner = app.key(Role::Owner);
    let reply = app
        .call(Method::POST, "/api/v1/operators")
        .bearer(&owner)
        .json(json!({"email": "Bia@Loja.com.br", "name": "Bia", "role": "agent", "password": "another long password"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let bia = reply.json();
    assert_eq!(
        (bia["email"].as_str(), bia["role"].as_str()),
        (Some("bia@loja.com.br"), Some("agent"))
    );
    assert!(bia.get("password_hash").is_none());

    let again = app
        .call(Method::POST, "/api/v1/operators")
        .bearer(&owner)
        .json(json!({"email": "bia@loja.com.br", "name": "Bia", "role": "agent", "password": "another long password"}))
        .send()
        .await;
    assert_eq!(
        again.error(StatusCode::CONFLICT, "already_member")["field"],
        "email"
    );

    let weak = app
        .call(Method::POST, "/api/v1/operators")
        .bearer(&owner)
        .json(json!({"email": "caio@loja.com.br", "name": "Caio", "role": "agent", "password": "short"}))
        .send()
        .await;
    assert_eq!(
        weak.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["details"][0]["code"],
        "weak_password"
    );

    let id = bia["id"].as_str().unwrap();
    let reply = app
        .call(Method::PATCH, &format!("/api/v1/operators/{id}"))
        .bearer(&owner)
        .json(json!({"role": "marketer"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["role"], "marketer");

    let list = app
        .call(Method::GET, "/api/v1/operators")
        .bearer(&owner)
        .send()
        .await
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    let reply = app
        .call(Method::DELETE, &format!("/api/v1/operators/{id}"))
        .bearer(&owner)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    let list = app
        .call(Method::GET, "/api/v1/operators")
        .bearer(&owner)
        .send()
        .await
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // The last owner stays an owner.
    let owner_id = list["items"][0]["id"].as_str().unwrap();
    let reply = app
        .call(Method::PATCH, &format!("/api/v1/operators/{owner_id}"))
        .bearer(&owner)
        .json(json!({"role": "admin"}))
        .send()
        .await;
    reply.error(StatusCode::CONFLICT, "last_owner");
}

#[tokio::test]
async fn workspace_settings_are_read_and_validated() {
    let app = TestApp::new();
    let admin = app.key(Role::Admin);
    let ws = app
        .call(Method::GET, "/api/v1/workspace")
        .bearer(&admin)
        .send()
        .await
        .json();
    assert_eq!(ws["write_key"], app.workspace.write_key.as_str());
    assert_eq!(ws["currency"], "BRL");

    let reply = app
        .call(Method::PATCH, "/api/v1/workspace")
        .bearer(&admin)
        .json(json!({"currency": "reais", "time_zone": "Mars/Olympus"}))
        .send()
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(error["message"], "2 fields are invalid; see details");
    assert_eq!(error["field"], "time_zone");
    assert_eq!(error["details"].as_array().unwrap().len(), 2);

    let reply = app
        .call(Method::PATCH, "/api/v1/workspace")
        .bearer(&admin)
        .json(json!({"colour": "blue"}))
        .send()
        .await;
    reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");

    let reply = app
        .call(Method::PATCH, "/api/v1/workspace")
        .bearer(&admin)
        .json(json!({"name": "Loja Nova", "locale": "en"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        (
            reply.json()["name"].as_str(),
            reply.json()["locale"].as_str()
        ),
        (Some("Loja Nova"), Some("en"))
    );

    let agent = app.key(Role::Agent);
    app.call(Method::PATCH, "/api/v1/workspace")
        .bearer(&agent)
        .json(json!({"name": "X"}))
        .send()
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
}
