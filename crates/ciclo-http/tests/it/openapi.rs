//! The OpenAPI document: the committed copy is current, and the server serves it.

use crate::TestApp;
use axum::http::{Method, StatusCode};
use ciclo_http::HttpOptions;
use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

/// `docs/openapi.json` must equal what the code generates. To refresh it after changing the API:
/// `CICLO_UPDATE_OPENAPI=1 cargo test -p ciclo-http --test it openapi`.
#[test]
fn openapi_document_is_up_to_date() {
    let generated = ciclo_http::openapi_json();
    let path = committed_path();
    if std::env::var_os("CICLO_UPDATE_OPENAPI").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(n, (a, b))| format!("line {}:\n  committed: {a}\n  generated: {b}", n + 1))
            .unwrap_or_else(|| "one is a prefix of the other".into());
        panic!(
            "docs/openapi.json is stale ({first_difference}).\n\
             Regenerate it with: CICLO_UPDATE_OPENAPI=1 cargo test -p ciclo-http --test it openapi"
        );
    }
}

#[test]
fn document_is_openapi_3_1_with_every_area_and_the_three_security_schemes() {
    let doc: serde_json::Value = serde_json::from_str(&ciclo_http::openapi_json()).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/healthz",
        "/v1/identify",
        "/v1/track",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/auth/switch",
        "/api/v1/me",
        "/api/v1/customers",
        "/api/v1/customers/{id}",
        "/api/v1/customers/{id}/timeline",
        "/api/v1/customers/{id}/orders",
        "/api/v1/customers/{id}/merge",
        "/api/v1/merges/{id}/undo",
        "/api/v1/identity-conflicts",
        "/api/v1/identity-conflicts/{id}/resolve",
        "/api/v1/imports",
        "/api/v1/imports/preview",
        "/api/v1/imports/{id}",
        "/api/v1/exports/customers.csv",
        "/api/v1/exports/orders.csv",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}",
        "/api/v1/operators",
        "/api/v1/operators/{id}",
        "/api/v1/workspace",
        "/api/v1/segments",
        "/api/v1/segments/preview",
        "/api/v1/segments/{id}",
        "/api/v1/segments/{id}/members",
        "/api/v1/segments/{id}/members.csv",
        "/api/v1/segments/{id}/members/import",
        "/api/v1/segments/{id}/history",
        "/api/v1/customers/{id}/segments",
        "/api/v1/customers/{id}/lifecycle",
        "/api/v1/lifecycle/rules",
        "/api/v1/lifecycle/stages",
        "/api/v1/lifecycle/flow",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["write_key"]["scheme"], "basic");
    assert_eq!(schemes["secret_key"]["scheme"], "bearer");
    assert_eq!(
        (
            schemes["session_cookie"]["in"].as_str(),
            schemes["session_cookie"]["name"].as_str()
        ),
        (Some("cookie"), Some("ciclo_session"))
    );
    for schema in [
        "ErrorBody",
        "Customer",
        "CustomerView",
        "IngestResponse",
        "SegmentMessage",
        "ImportRun",
        "Workspace",
        "Segment",
        "SegmentInput",
        "SegmentDefinition",
        "ListChange",
        "LifecycleRules",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} is missing"
        );
    }
}

#[test]
fn operation_ids_are_unique_and_every_operation_says_its_security() {
    let doc: serde_json::Value = serde_json::from_str(&ciclo_http::openapi_json()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                seen.insert(id.to_string()),
                "operationId {id} is used twice"
            );
            assert!(
                operation["security"].is_array(),
                "{method} {path} does not say how it is authenticated"
            );
        }
    }
}

#[tokio::test]
async fn the_server_serves_the_document_with_its_public_url() {
    let app = TestApp::with_options(HttpOptions {
        public_url: "https://crm.loja.com.br/".into(),
        ..Default::default()
    });
    let reply = app.call(Method::GET, "/api/openapi.json").send().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let doc = reply.json();
    assert_eq!(doc["servers"][0]["url"], "https://crm.loja.com.br");
    assert!(doc["paths"]["/v1/batch"]["post"].is_object());
}
