//! `ciclo serve`: first and later starts, health, Segment ingestion read back through the admin
//! API, graceful shutdown.

use crate::support::{http, serve_args, spawn_server};
use serde_json::json;
use std::time::Duration;

#[test]
fn first_start_prints_the_login_and_the_server_answers_health() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(serve_args(dir.path()));
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(
        !server.url.ends_with(":0"),
        "the real port is printed: {}",
        server.url
    );
    assert_eq!(server.owner_email, "owner@ciclo.local");
    let password = server
        .owner_password
        .as_deref()
        .expect("a generated password on first start");
    assert!(password.len() >= 10, "{password}");
    let printed = server.stdout_text();
    assert!(
        printed.contains(&format!("curl -u '{}:'", server.write_key)),
        "a curl example:\n{printed}"
    );
    assert!(printed.contains("/v1/track"), "{printed}");
    let health = http().get(server.at("/healthz")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        dir.path().join("ciclo.db").exists(),
        "SQLite in the data directory by default"
    );
}

#[test]
fn a_segment_batch_is_stored_and_read_back_through_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(serve_args(dir.path()));
    let (status, body) = server.send_batch(json!([
        {"type": "identify", "messageId": "it-m1", "userId": "it-user-1", "anonymousId": "it-anon-1",
         "traits": {"firstName": "Ana", "lastName": "Sousa", "email": "ana.sousa@example.com.br", "phone": "(11) 98765-4321"}},
        {"type": "page", "messageId": "it-m2", "anonymousId": "it-anon-1", "name": "Produto",
         "properties": {"path": "/p/caneca"}},
        {"type": "track", "messageId": "it-m3", "userId": "it-user-1", "event": "Order Completed",
         "properties": {"order_id": "IT-1", "total": 129.9, "currency": "BRL",
                        "products": [{"product_id": "p1", "name": "Caneca", "price": 129.9, "quantity": 1}]}},
    ]));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 3, "{body}");

    // Sending the same batch again (an SDK retry) stores nothing new.
    let (status, body) = server.send_batch(json!([
        {"type": "track", "messageId": "it-m3", "userId": "it-user-1", "event": "Order Completed",
         "properties": {"order_id": "IT-1", "total": 129.9}},
    ]));
    assert_eq!(
        (status, body["accepted"].clone(), body["duplicates"].clone()),
        (200, json!(0), json!(1)),
        "{body}"
    );

    let admin = server.admin();
    let (status, page) = admin.get("/api/v1/customers?search=ana.sousa@example.com.br");
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().expect("a page of customers");
    assert_eq!(items.len(), 1, "{page}");
    let customer = &items[0];
    assert_eq!(customer["email"], "ana.sousa@example.com.br", "{customer}");
    assert_eq!(customer["phone"], "+5511987654321", "{customer}");
    let id = customer["id"].as_str().unwrap();

    let (status, timeline) = admin.get(&format!("/api/v1/customers/{id}/timeline"));
    assert_eq!(status, 200, "{timeline}");
    let mut message_ids: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] != "system")
        .filter_map(|e| e["message_id"].as_str())
        .collect();
    message_ids.sort();
    assert_eq!(
        message_ids,
        ["it-m1", "it-m2", "it-m3"],
        "the anonymous page view joined the profile: {timeline}"
    );

    let (status, orders) = admin.get(&format!("/api/v1/customers/{id}/orders"));
    assert_eq!(status, 200, "{orders}");
    assert!(orders.to_string().contains("IT-1"), "{orders}");
}

#[test]
fn later_starts_keep_the_workspace_and_print_its_write_key_but_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = spawn_server(serve_args(dir.path()));
    let write_key = first.write_key.clone();
    let status = first.terminate(Duration::from_secs(20));
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly: {status}\n{}",
        first.stderr_text()
    );

    let second = spawn_server(serve_args(dir.path()));
    assert_eq!(second.write_key, write_key);
    assert_eq!(
        second.owner_password, None,
        "the password is shown only once"
    );
    assert!(!second
        .stdout_text()
        .contains(first.owner_password.as_deref().unwrap()));
}

#[test]
fn the_owner_password_can_be_configured() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = crate::support::ciclo_command(serve_args(dir.path()));
    command
        .env("CICLO_OWNER_PASSWORD", "uma-senha-bem-longa")
        .env("CICLO_OWNER_EMAIL", "dona@loja.com.br");
    let server = crate::support::spawn_server_with(command, crate::support::START_TIMEOUT);
    assert_eq!(server.owner_email, "dona@loja.com.br");
    assert_eq!(
        server.owner_password, None,
        "a configured password is never printed"
    );
    assert!(!server.stdout_text().contains("uma-senha-bem-longa"));
    let admin =
        crate::support::Admin::login(&server.url, "dona@loja.com.br", "uma-senha-bem-longa");
    let (status, _) = admin.get("/api/v1/me");
    assert_eq!(status, 200);
}
