//! Customers, the identity graph by hand, CSV import and export, through HTTP.

use crate::TestApp;
use axum::http::{Method, StatusCode};
use ciclo_domain::operator::Role;
use serde_json::{json, Value};

async fn create(app: &TestApp, key: &str, body: Value) -> Value {
    let reply = app
        .call(Method::POST, "/api/v1/customers")
        .bearer(key)
        .json(body)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let created = reply.json();
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/customers/{}", created["id"].as_str().unwrap()).as_str())
    );
    created
}

#[tokio::test]
async fn bad_list_parameters_are_all_reported() {
    let app = TestApp::new();
    let key = app.key(Role::Analyst);
    let reply = app
        .call(
            Method::GET,
            "/api/v1/customers?limit=501&sort=age&has_ordered=maybe",
        )
        .bearer(&key)
        .send()
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let codes: Vec<_> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        codes,
        vec!["invalid_sort", "invalid_boolean", "invalid_limit"]
    );

    let reply = app
        .call(Method::GET, "/api/v1/customers?limit=0")
        .bearer(&key)
        .send()
        .await;
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "validation_failed", "message": "limit must be a whole number from 1 to 500", "field": "limit",
            "details": [{"code": "invalid_limit", "field": "limit", "reason": "limit must be a whole number from 1 to 500"}]}})
    );

    let reply = app
        .call(
            Method::GET,
            "/api/v1/customers/cus_01jd8x6v3f9q2m4n7p5r8t0w1y/timeline?type=click",
        )
        .bearer(&key)
        .send()
        .await;
    assert_eq!(
        reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "type"
    );
}

#[tokio::test]
async fn customers_are_created_read_updated_listed_and_deleted() {
    let app = TestApp::new();
    let key = app.key(Role::Marketer);
    let ana = create(
        &app,
        &key,
        json!({"name": "Ana Souza", "email": "ANA@exemplo.com.br", "phone": "(11) 98765-4321",
        "city": "Recife", "tags": ["VIP"], "traits": {"plan": "gold"}}),
    )
    .await;
    assert_eq!(ana["email"], "ana@exemplo.com.br");
    assert_eq!(ana["phone"], "+5511987654321");
    assert_eq!(ana["stats"]["orders_count"], 0);
    assert!(
        ana["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "email"),
        "{ana}"
    );
    let id = ana["id"].as_str().unwrap().to_string();

    let reply = app
        .call(Method::POST, "/api/v1/customers")
        .bearer(&key)
        .json(json!({"email": "nope", "phone": "12"}))
        .send()
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(error["details"].as_array().unwrap().len(), 2, "{error}");

    let reply = app
        .call(Method::POST, "/api/v1/customers")
        .bearer(&key)
        .json(json!({"email": "ana@exemplo.com.br"}))
        .send()
        .await;
    assert_eq!(
        reply.error(StatusCode::CONFLICT, "identity_taken")["field"],
        "email"
    );

    let reply = app
        .call(Method::PATCH, &format!("/api/v1/customers/{id}"))
        .bearer(&key)
        .json(json!({"city": null, "traits": {"plan": "platinum"}}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let updated = reply.json();
    assert_eq!(
        (updated["city"].clone(), updated["traits"]["plan"].clone()),
        (Value::Null, json!("platinum"))
    );

    let got = app
        .call(Method::GET, &format!("/api/v1/customers/{id}"))
        .bearer(&key)
        .send()
        .await
        .json();
    assert_eq!(got["name"], "Ana Souza");

    create(&app, &key, json!({"name": "Bruno"})).await;
    let page = app
        .call(Method::GET, "/api/v1/customers?limit=1&sort=name")
        .bearer(&key)
        .send()
        .await
        .json();
    assert_eq!(page["items"][0]["name"], "Ana Souza", "{page}");
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let page = app
        .call(
            Method::GET,
            &format!("/api/v1/customers?limit=1&sort=name&cursor={cursor}"),
        )
        .bearer(&key)
        .send()
        .await
        .json();
    assert_eq!(page["items"][0]["name"], "Bruno", "{page}");
    app.call(Method::GET, "/api/v1/customers?cursor=garbage")
        .bearer(&key)
        .send()
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let orders = app
        .call(Method::GET, &format!("/api/v1/customers/{id}/orders"))
        .bearer(&key)
        .send()
        .await;
    assert_eq!(orders.json(), json!({"items": []}));

    let analyst = app.key(Role::Analyst);
    app.call(Method::DELETE, &format!("/api/v1/customers/{id}"))
        .bearer(&analyst)
        .send()
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    let reply = app
        .call(Method::DELETE, &format!("/api/v1/customers/{id}"))
        .bearer(&key)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    app.call(Method::GET, &format!("/api/v1/customers/{id}"))
        .bearer(&key)
        .send()
        .await
        .error(StatusCode::NOT_FOUND, "customer_not_found");
}

#[tokio::test]
async fn merges_are_made_and_undone() {
    let app = TestApp::new();
    let key = app.key(Role::Agent);
    let a = create(
        &app,
        &key,
        json!({"name": "Ana", "email": "ana@exemplo.com.br"}),
    )
    .await;
    let b = create(
        &app,
        &key,
        json!({"city": "Recife", "phone": "+55 11 98765-4321"}),
    )
    .await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());

    let reply = app
        .call(Method::POST, &format!("/api/v1/customers/{a_id}/merge"))
        .bearer(&key)
        .json(json!({"loser_id": "bad"}))
        .send()
        .await;
    assert_eq!(
        reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "loser_id"
    );

    let reply = app
        .call(Method::POST, &format!("/api/v1/customers/{a_id}/merge"))
        .bearer(&key)
        .json(json!({"loser_id": b_id}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let merge = reply.json();
    assert_eq!(
        (merge["winner_id"].as_str(), merge["loser_id"].as_str()),
        (Some(a_id), Some(b_id))
    );
    assert_eq!(merge["filled"]["city"], "Recife", "{merge}");

    let view = app
        .call(Method::GET, &format!("/api/v1/customers/{b_id}"))
        .bearer(&key)
        .send()
        .await
        .json();
    assert_eq!(
        view["id"], a_id,
        "the merged-away profile answers the survivor"
    );
    assert_eq!(view["profile_ids"].as_array().unwrap().len(), 2);

    let merge_id = merge["id"].as_str().unwrap();
    let reply = app
        .call(Method::POST, &format!("/api/v1/merges/{merge_id}/undo"))
        .bearer(&key)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.json()["undone_at"].is_string());
    let view = app
        .call(Method::GET, &format!("/api/v1/customers/{a_id}"))
        .bearer(&key)
        .send()
        .await
        .json();
    assert_eq!(view["city"], Value::Null);

    let conflicts = app
        .call(Method::GET, "/api/v1/identity-conflicts?open=true")
        .bearer(&key)
        .send()
        .await;
    assert_eq!(conflicts.json(), json!({"items": []}));
    app.call(
        Method::POST,
        "/api/v1/identity-conflicts/cfl_01jd8x6v3f9q2m4n7p5r8t0w1y/resolve",
    )
    .bearer(&key)
    .json(json!({"merge": true}))
    .send()
    .await
    .error(StatusCode::NOT_FOUND, "identity_conflict_not_found");
}

#[tokio::test]
async fn import_options_are_checked_before_reading_the_file() {
    let app = TestApp::new();
    let key = app.key(Role::Marketer);
    let reply = app
        .call(Method::POST, "/api/v1/imports?mapping=%5B1%5D")
        .bearer(&key)
        .raw("text/csv", "email\n")
        .send()
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<_> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, vec!["kind", "mapping"]);

    let analyst = app.key(Role::Analyst);
    let reply = app
        .call(Method::POST, "/api/v1/imports/preview?kind=customers")
        .bearer(&analyst)
        .raw("text/csv", "email\n")
        .send()
        .await;
    reply.error(StatusCode::FORBIDDEN, "forbidden");

    let small = TestApp::with_options(ciclo_http::HttpOptions {
        max_import_bytes: 10,
        ..Default::default()
    });
    let key = small.key(Role::Owner);
    let reply = small
        .call(Method::POST, "/api/v1/imports?kind=customers")
        .bearer(&key)
        .raw("text/csv", "email\nana@exemplo.com.br\n")
        .send()
        .await;
    reply.error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn a_csv_import_reports_bad_rows_by_line_and_exports_stream_back() {
    let app = TestApp::new();
    let key = app.key(Role::Owner);
    let csv = "Nome,E-mail,Cidade\nAna Souza,ana@exemplo.com.br,Recife\nBruno,not-an-email,Olinda\nCarla,carla@exemplo.com.br,Natal\n";
    let preview = app
        .call(
            Method::POST,
            "/api/v1/imports/preview?kind=customers&rows=1",
        )
        .bearer(&key)
        .raw("text/csv", csv)
        .send()
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
    let preview = preview.json();
    assert_eq!(preview["headers"], json!(["Nome", "E-mail", "Cidade"]));
    assert_eq!(preview["mapping"]["E-mail"], "email", "{preview}");
    assert_eq!(preview["rows"].as_array().unwrap().len(), 1);

    let reply = app
        .call(
            Method::POST,
            "/api/v1/imports?kind=customers&file_name=clientes.csv",
        )
        .bearer(&key)
        .raw("text/csv", csv)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let run = reply.json();
    assert_eq!(
        (run["rows_created"].as_i64(), run["rows_rejected"].as_i64()),
        (Some(2), Some(1)),
        "{run}"
    );
    assert_eq!(
        (
            run["rejected"][0]["line"].as_u64(),
            run["rejected"][0]["field"].as_str()
        ),
        (Some(3), Some("email"))
    );
    assert_eq!(run["file_name"], "clientes.csv");

    let id = run["id"].as_str().unwrap();
    let got = app
        .call(Method::GET, &format!("/api/v1/imports/{id}"))
        .bearer(&key)
        .send()
        .await
        .json();
    assert_eq!(got["id"], id);
    let list = app
        .call(Method::GET, "/api/v1/imports")
        .bearer(&key)
        .send()
        .await
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let export = app
        .call(Method::GET, "/api/v1/exports/customers.csv?search=ana")
        .bearer(&key)
        .send()
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text());
    assert_eq!(
        export.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        export.header("content-disposition"),
        Some("attachment; filename=\"customers.csv\"")
    );
    let text = export.text();
    assert!(text.starts_with("id,"), "{text}");
    assert!(
        text.contains("ana@exemplo.com.br") && !text.contains("carla@"),
        "{text}"
    );

    let agent = app.key(Role::Agent);
    app.call(Method::GET, "/api/v1/exports/orders.csv")
        .bearer(&agent)
        .send()
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    let orders = app
        .call(Method::GET, "/api/v1/exports/orders.csv")
        .bearer(&key)
        .send()
        .await;
    assert_eq!(orders.status, StatusCode::OK);
}
