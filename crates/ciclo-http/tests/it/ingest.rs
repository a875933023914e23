//! Segment-compatible ingestion through HTTP: authentication, limits, gzip, batch semantics and
//! the answers the Segment SDKs expect.

use crate::TestApp;
use axum::http::{Method, StatusCode};
use ciclo_domain::event::{MAX_BATCH_BYTES, MAX_MESSAGE_BYTES};
use ciclo_domain::operator::Role;
use serde_json::{json, Value};

fn track(user: &str, message_id: &str) -> Value {
    json!({"type": "track", "event": "Product Viewed", "userId": user, "messageId": message_id,
           "properties": {"sku": "45790-32"}, "timestamp": "2026-06-01T11:59:00Z"})
}

#[tokio::test]
async fn a_missing_or_unknown_write_key_is_401() {
    let app = TestApp::new();
    let invalid = json!({"error": {"code": "invalid_write_key", "message":
        "send the workspace's write key as the HTTP Basic user name (empty password) or as writeKey in the body"}});
    for call in [
        app.call(Method::POST, "/v1/track").json(track("u1", "m1")),
        app.call(Method::POST, "/v1/track")
            .basic("wk_unknown")
            .json(track("u1", "m1")),
        app.call(Method::POST, "/v1/track")
            .header("authorization", "Basic ###")
            .json(track("u1", "m1")),
        app.call(Method::POST, "/v1/track")
            .header("authorization", "Bearer sk_x")
            .json(track("u1", "m1")),
        app.call(Method::POST, "/v1/batch")
            .json(json!({"batch": [], "writeKey": "wk_unknown"})),
        app.call(Method::POST, "/v1/b").json(json!({"batch": []})),
    ] {
        let reply = call.send().await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        assert_eq!(reply.json(), invalid);
    }
}

#[tokio::test]
async fn malformed_json_is_400_and_a_bad_envelope_422() {
    let app = TestApp::new();
    let key = app.workspace.write_key.clone();
    let reply = app
        .call(Method::POST, "/v1/track")
        .basic(&key)
        .raw("application/json", "{\"event\": \"X\",")
        .send()
        .await;
    let error = reply.error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("line 1 column 14"),
        "{error}"
    );

    let reply = app
        .call(Method::POST, "/v1/batch")
        .basic(&key)
        .json(json!({"batch": {"type": "track"}}))
        .send()
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert_eq!(error["field"], "batch");
}

#[tokio::test]
async fn size_limits_are_segments() {
    let app = TestApp::new();
    let key = app.workspace.write_key.clone();
    let mut big = track("u1", "m-big");
    big["properties"]["blob"] = json!("x".repeat(MAX_MESSAGE_BYTES));
    let reply = app
        .call(Method::POST, "/v1/track")
        .basic(&key)
        .json(big.clone())
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "message_too_large", "message": format!("a message may be at most {MAX_MESSAGE_BYTES} bytes")}})
    );

    let many: Vec<Value> = (0..20).map(|_| big.clone()).collect();
    let reply = app
        .call(Method::POST, "/v1/batch")
        .basic(&key)
        .json(json!({"batch": many}))
        .send()
        .await;
    reply.error(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large");

    // A gzip body that inflates past the limit is refused without inflating it all.
    let bomb = json!({"batch": [], "padding": " ".repeat(MAX_BATCH_BYTES)});
    let reply = app
        .call(Method::POST, "/v1/batch")
        .basic(&key)
        .gzip_json(&bomb)
        .send()
        .await;
    reply.error(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large");

    let reply = app
        .call(Method::POST, "/v1/batch")
        .basic(&key)
        .header("content-encoding", "br")
        .json(json!({"batch": []}))
        .send()
        .await;
    reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding");
}

#[tokio::test]
async fn an_oversized_message_in_a_batch_is_rejected_alone() {
    let app = TestApp::new();
    let mut big = track("u1", "m-big");
    big["properties"]["blob"] = json!("x".repeat(MAX_MESSAGE_BYTES));
    let reply = app
        .call(Method::POST, "/v1/batch")
        .json(json!({"batch": [big], "writeKey": app.workspace.write_key}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"success": true, "accepted": 0, "duplicates": 0, "rejected": [{
            "index": 0, "message_id": "m-big", "code": "message_too_large", "field": "",
            "reason": format!("a message may be at most {MAX_MESSAGE_BYTES} bytes")}]})
    );
}

#[tokio::test]
async fn an_empty_batch_is_acknowledged() {
    let app = TestApp::new();
    let reply = app
        .call(Method::POST, "/v1/batch")
        .basic(&app.workspace.write_key)
        .json(json!({"batch": []}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"success": true, "accepted": 0, "duplicates": 0, "rejected": []})
    );
}

#[tokio::test]
async fn browsers_may_post_events_cross_origin() {
    let app = TestApp::new();
    let reply = app
        .call(Method::OPTIONS, "/v1/t")
        .header("origin", "https://loja.com.br")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    // The admin API does not take part in CORS.
    let reply = app
        .call(Method::OPTIONS, "/api/v1/customers")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await;
    assert!(reply.header("access-control-allow-origin").is_none());
}

// --- data paths: these go through core's ingest -----------------------------------------------

#[tokio::test]
async fn a_tracked_event_is_stored_once_and_retries_are_duplicates() {
    let app = TestApp::new();
    let key = app.workspace.write_key.clone();
    let reply = app
        .call(Method::POST, "/v1/track")
        .basic(&key)
        .json(track("u1", "m1"))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"success": true, "accepted": 1, "duplicates": 0, "rejected": []})
    );

    // Short form, key in the body, same messageId: a retry.
    let mut again = track("u1", "m1");
    again["writeKey"] = json!(key);
    let reply = app.call(Method::POST, "/v1/t").json(again).send().await;
    assert_eq!(
        reply.json(),
        json!({"success": true, "accepted": 0, "duplicates": 1, "rejected": []})
    );

    let secret = app.key(Role::Analyst);
    let list = app
        .call(Method::GET, "/api/v1/customers")
        .bearer(&secret)
        .send()
        .await
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let id = list["items"][0]["id"].as_str().unwrap();
    let timeline = app
        .call(
            Method::GET,
            &format!("/api/v1/customers/{id}/timeline?type=track"),
        )
        .bearer(&secret)
        .send()
        .await
        .json();
    assert_eq!(timeline["items"][0]["name"], "Product Viewed", "{timeline}");
    assert_eq!(timeline["items"][0]["event_type"], "track");
}

#[tokio::test]
async fn an_invalid_single_message_is_400_with_its_field() {
    let app = TestApp::new();
    let reply = app
        .call(Method::POST, "/v1/track")
        .basic(&app.workspace.write_key)
        .json(json!({"event": "Product Viewed", "messageId": "m1"}))
        .send()
        .await;
    let error = reply.error(StatusCode::BAD_REQUEST, "missing_identity");
    assert_eq!(error["field"], "userId");
}

#[tokio::test]
async fn a_gzip_batch_applies_batch_level_fields_and_reports_bad_messages_by_position() {
    let app = TestApp::new();
    let body = json!({
        "batch": [
            {"type": "identify", "userId": "u1", "traits": {"email": "ana@exemplo.com.br", "name": "Ana"}},
            {"type": "track", "userId": "u1"},
            {"type": "page", "anonymousId": "a1", "name": "Home"},
        ],
        "sentAt": "2026-06-01T12:00:00Z",
        "context": {"library": {"name": "analytics-node", "version": "6.0.0"}},
    });
    let reply = app
        .call(Method::POST, "/v1/batch")
        .basic(&app.workspace.write_key)
        .gzip_json(&body)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let report = reply.json();
    assert_eq!(report["accepted"], 2, "{report}");
    assert_eq!(report["rejected"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            report["rejected"][0]["index"].as_u64(),
            report["rejected"][0]["field"].as_str()
        ),
        (Some(1), Some("event"))
    );

    let secret = app.key(Role::Analyst);
    let list = app
        .call(Method::GET, "/api/v1/customers?search=ana")
        .bearer(&secret)
        .send()
        .await
        .json();
    let id = list["items"][0]["id"]
        .as_str()
        .expect("identify created Ana")
        .to_string();
    let timeline = app
        .call(Method::GET, &format!("/api/v1/customers/{id}/timeline"))
        .bearer(&secret)
        .send()
        .await
        .json();
    assert_eq!(
        timeline["items"][0]["context"]["library"]["name"], "analytics-node",
        "batch context reached the event"
    );
}
