//! The shapes of error answers, asserted whole: they are the contract clients code against.

use crate::{broken_router, TestApp};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

#[tokio::test]
async fn health_answers_ok() {
    let app = TestApp::new();
    let reply = app.call(Method::GET, "/healthz").send().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let app = TestApp::new();
    let reply = app.call(Method::GET, "/api/v1/nothing-here").send().await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "not_found", "message": "no such endpoint"}})
    );

    let reply = app.call(Method::PUT, "/api/v1/customers").send().await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "method_not_allowed", "message": "this endpoint does not accept that method"}})
    );
}

#[tokio::test]
async fn the_admin_api_needs_credentials() {
    let app = TestApp::new();
    let unauthorized =
        json!({"error": {"code": "unauthorized", "message": "missing or invalid credentials"}});
    for call in [
        app.call(Method::GET, "/api/v1/customers"),
        app.call(Method::GET, "/api/v1/customers")
            .bearer("not-a-secret-key"),
        app.call(Method::GET, "/api/v1/customers")
            .bearer("sk_unknown"),
        app.call(Method::GET, "/api/v1/customers")
            .header("authorization", "Basic Zm9vOg=="),
        app.call(Method::GET, "/api/v1/customers")
            .cookie("stale-session"),
        app.call(Method::GET, "/api/v1/me"),
    ] {
        let reply = call.send().await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert_eq!(reply.json(), unauthorized);
    }
}

#[tokio::test]
async fn malformed_json_is_400_with_line_and_column() {
    let app = TestApp::new();
    let reply = app
        .call(Method::POST, "/api/v1/auth/login")
        .raw("application/json", "{\"email\": ")
        .send()
        .await;
    let error = reply.error(StatusCode::BAD_REQUEST, "invalid_json");
    assert_eq!(
        error["message"],
        "the body is not valid JSON: EOF while parsing a value at line 1 column 10",
        "the reason is serde's, with its position"
    );
    assert!(error.get("field").is_none());
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_422_with_the_path() {
    let app = TestApp::new();
    let reply = app
        .call(Method::POST, "/api/v1/auth/login")
        .json(json!({"email": 7, "password": "x"}))
        .send()
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert_eq!(error["field"], "email");
    assert!(
        error["message"].as_str().unwrap().contains("invalid type"),
        "{error}"
    );

    let reply = app
        .call(Method::POST, "/api/v1/auth/login")
        .json(json!({"email": "a@b.co", "password": "x", "otp": 1}))
        .send()
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `otp`"),
        "{error}"
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = TestApp::new();
    let huge = format!(
        "{{\"email\": \"{}\", \"password\": \"x\"}}",
        "a".repeat(ciclo_http::MAX_JSON_BODY_BYTES + 1)
    );
    let reply = app
        .call(Method::POST, "/api/v1/auth/login")
        .raw("application/json", huge)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "payload_too_large", "message": "the body is larger than this endpoint accepts"}})
    );
}

#[tokio::test]
async fn store_failures_are_opaque_500s() {
    let router = broken_router();
    let opaque = json!({"error": {"code": "internal_error", "message": "something went wrong on our side; it has been logged"}});
    let requests = [
        Request::builder()
            .uri("/api/v1/customers")
            .header("authorization", "Bearer sk_whatever")
            .body(Body::empty())
            .unwrap(),
        Request::builder()
            .method("POST")
            .uri("/v1/track")
            .header("authorization", "Basic d2tfeDo=")
            .body(Body::from(r#"{"event":"X","userId":"u"}"#))
            .unwrap(),
        Request::builder()
            .method("POST")
            .uri("/api/v1/auth/login")
            .body(Body::from(r#"{"email":"a@b.co","password":"0123456789"}"#))
            .unwrap(),
    ];
    for request in requests {
        let reply = crate::send(&router, request).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reply.json(), opaque, "no store text reaches the client");
    }
}

#[tokio::test]
async fn malformed_path_ids_are_404_of_their_kind() {
    let app = TestApp::new();
    let key = app.key(ciclo_domain::operator::Role::Owner);
    for (method, path, code) in [
        (Method::GET, "/api/v1/customers/nope", "customer_not_found"),
        (
            Method::GET,
            "/api/v1/customers/ord_01jd8x6v3f9q2m4n7p5r8t0w1y/timeline",
            "customer_not_found",
        ),
        (Method::POST, "/api/v1/merges/123/undo", "merge_not_found"),
        (Method::GET, "/api/v1/imports/imp_short", "import_not_found"),
        (Method::DELETE, "/api/v1/api-keys/sk_x", "api_key_not_found"),
        (Method::PATCH, "/api/v1/operators/x", "operator_not_found"),
        (
            Method::POST,
            "/api/v1/identity-conflicts/x/resolve",
            "identity_conflict_not_found",
        ),
    ] {
        let mut call = app.call(method, path).bearer(&key);
        if path.contains("operators") {
            call = call.json(json!({"role": "agent"}));
        }
        if path.contains("resolve") {
            call = call.json(json!({"merge": false}));
        }
        let reply = call.send().await;
        reply.error(StatusCode::NOT_FOUND, code);
    }
}
