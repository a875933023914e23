//! Segment's official Python SDK works unchanged when pointed at ciclo's host.

use crate::support::{serve_args, spawn_server};
use std::process::Command;

#[test]
fn official_segment_sdk_works_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(serve_args(dir.path()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/sdk/segment_sdk.py");
    let output = Command::new("python3")
        .arg(script)
        .env("CICLO_URL", &server.url)
        .env("CICLO_WRITE_KEY", &server.write_key)
        .output()
        .expect("python3 is needed for this test");
    assert!(
        output.status.success(),
        "the SDK script failed ({}); if the SDK is missing: pip install -r .ci/requirements.txt\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let admin = server.admin();
    let (status, found) = admin.get("/api/v1/customers?search=sofia.sdk");
    assert_eq!(status, 200, "{found}");
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one profile for the SDK user: {found}");
    let id = items[0]["id"].as_str().unwrap();
    let (_, profile) = admin.get(&format!("/api/v1/customers/{id}"));
    assert_eq!(profile["name"], "Sofia Dias", "{profile}");
    assert_eq!(profile["traits"]["plan"], "ouro", "{profile}");
    let (_, orders) = admin.get(&format!("/api/v1/customers/{id}/orders"));
    let orders = orders["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["external_id"], "sdk-order-1");
    let (_, timeline) = admin.get(&format!("/api/v1/customers/{id}/timeline?limit=100"));
    // What the SDK sent (the system's own lifecycle and segment events aside).
    let events: Vec<&serde_json::Value> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] != "system")
        .collect();
    assert_eq!(
        events.len(),
        28,
        "identify + order + page + 25 batched tracks"
    );
    assert!(
        events.iter().any(|e| e["event_type"] == "page"),
        "{timeline}"
    );
}
