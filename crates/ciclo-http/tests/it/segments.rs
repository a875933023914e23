//! Segments, static lists and lifecycle stages through HTTP: definitions by text and JSON with
//! their errors, preview, real-time membership after ingestion, lists by id and CSV, members,
//! export, history, deletion rules, lifecycle rules and stages, list filters and permissions.

use crate::{Reply, TestApp};
use axum::http::{Method, StatusCode};
use ciclo_domain::operator::Role;
use serde_json::{json, Value};

/// Some Segment messages through `/v1/batch`, then the evaluation queue drained (what the
/// background evaluator of `ciclo serve` does).
async fn ingest(app: &TestApp, batch: Vec<Value>) {
    let reply = app
        .call(Method::POST, "/v1/batch")
        .basic(&app.workspace.write_key)
        .json(json!({ "batch": batch }))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json()["rejected"],
        json!([]),
        "every message accepted"
    );
    evaluate(app);
}

fn evaluate(app: &TestApp) {
    app.ciclo.evaluate_pending(usize::MAX).unwrap();
}

fn identify(user: &str, email: &str, name: &str, city: &str) -> Value {
    json!({"type": "identify", "userId": user, "messageId": format!("id-{user}-{city}"),
           "timestamp": "2026-05-20T10:00:00Z",
           "traits": {"email": email, "name": name, "city": city}})
}

fn order(user: &str, id: &str, day: &str, total: f64) -> Value {
    json!({"type": "track", "event": "Order Completed", "userId": user, "messageId": id,
           "timestamp": format!("{day}T12:00:00Z"),
           "properties": {"order_id": id, "total": total, "currency": "BRL"}})
}

/// Ana and Bruno in Recife, Carla in São Paulo.
async fn three_customers(app: &TestApp) {
    ingest(
        app,
        vec![
            identify("u1", "ana@exemplo.com.br", "Ana", "Recife"),
            identify("u2", "bruno@exemplo.com.br", "Bruno", "Recife"),
            identify("u3", "carla@exemplo.com.br", "Carla", "São Paulo"),
        ],
    )
    .await;
}

async fn get(app: &TestApp, key: &str, path: &str) -> Value {
    let reply = app.call(Method::GET, path).bearer(key).send().await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    reply.json()
}

async fn send(app: &TestApp, key: &str, method: Method, path: &str, body: Value) -> Reply {
    app.call(method, path).bearer(key).json(body).send().await
}

/// Creates a segment and checks the answer is a 201 naming it.
async fn create_segment(app: &TestApp, key: &str, body: Value) -> Value {
    let reply = send(app, key, Method::POST, "/api/v1/segments", body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let segment = reply.json();
    let id = segment["id"].as_str().unwrap();
    assert!(id.starts_with("seg_"), "{segment}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/segments/{id}").as_str())
    );
    segment
}

/// The id of the customer with this email.
async fn customer_id(app: &TestApp, key: &str, email: &str) -> String {
    let page = get(app, key, &format!("/api/v1/customers?search={email}")).await;
    page["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no customer {email}: {page}"))
        .to_string()
}

fn emails(page: &Value) -> Vec<String> {
    let mut out: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn dynamic_segments_are_made_by_text_and_by_json_and_previewed() {
    let app = TestApp::new();
    three_customers(&app).await;
    let key = app.key(Role::Marketer);

    let preview = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments/preview",
        json!({"definition": "city = \"Recife\"", "sample": 1}),
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
    let preview = preview.json();
    assert_eq!(preview["count"], 2, "{preview}");
    // Every surviving profile is evaluated (by the segment index, all at once).
    assert_eq!(preview["customers"], 3);
    assert_eq!(preview["sample"].as_array().unwrap().len(), 1);
    assert_eq!(preview["sample"][0]["city"], "Recife");
    assert_eq!(preview["text"], "city = \"Recife\"");
    assert!(preview["elapsed_ms"].as_f64().unwrap() >= 0.0);
    let default_sample = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments/preview",
        json!({"definition": {"type": "attribute", "attribute": "city", "test": {"op": "eq", "value": "Recife"}}}),
    )
    .await
    .json();
    assert_eq!(default_sample["sample"].as_array().unwrap().len(), 2);

    let recife = create_segment(
        &app,
        &key,
        json!({"name": "Recife", "description": "Quem mora em Recife",
               "definition": "city = \"Recife\""}),
    )
    .await;
    assert_eq!(recife["kind"], "dynamic");
    assert_eq!(recife["member_count"], 2, "evaluated before the answer");
    assert_eq!(recife["text"], "city = \"Recife\"");
    assert_eq!(recife["definition"]["type"], "attribute");
    assert_eq!(recife["time_relative"], false);
    assert_eq!(recife["description"], "Quem mora em Recife");

    let paulistas = create_segment(
        &app,
        &key,
        json!({"name": "Paulistas", "definition": {"type": "attribute", "attribute": "city",
               "test": {"op": "eq", "value": "São Paulo"}}}),
    )
    .await;
    assert_eq!(paulistas["member_count"], 1);
    assert_eq!(paulistas["text"], "city = \"São Paulo\"");

    let list = get(&app, &key, "/api/v1/segments").await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Paulistas", "Recife"]);

    let id = recife["id"].as_str().unwrap();
    assert_eq!(
        get(&app, &key, &format!("/api/v1/segments/{id}")).await["name"],
        "Recife"
    );
    let changed = send(
        &app,
        &key,
        Method::PATCH,
        &format!("/api/v1/segments/{id}"),
        json!({"name": "Recife e SP", "definition": "city in (\"Recife\", \"São Paulo\")"}),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let changed = changed.json();
    assert_eq!(changed["name"], "Recife e SP");
    assert_eq!(changed["member_count"], 3, "re-evaluated before the answer");
    assert_eq!(
        changed["description"], "Quem mora em Recife",
        "absent keys stay"
    );

    send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments",
        json!({"name": "recife e sp", "definition": "everyone"}),
    )
    .await
    .error(StatusCode::CONFLICT, "segment_name_taken");
    send(
        &app,
        &key,
        Method::PATCH,
        &format!("/api/v1/segments/{id}"),
        json!({"kind": "static"}),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    for missing in [
        "/api/v1/segments/seg_01jd8x6v3f9q2m4n7p5r8t0w1y",
        "/api/v1/segments/not-an-id",
        "/api/v1/segments/seg_01jd8x6v3f9q2m4n7p5r8t0w1y/members",
        "/api/v1/segments/seg_01jd8x6v3f9q2m4n7p5r8t0w1y/history",
    ] {
        app.call(Method::GET, missing)
            .bearer(&key)
            .send()
            .await
            .error(StatusCode::NOT_FOUND, "segment_not_found");
    }
}

#[tokio::test]
async fn bad_definitions_are_422_with_every_problem_located() {
    let app = TestApp::new();
    let key = app.key(Role::Marketer);

    // Text: the syntax error with its line and column.
    let reply = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments",
        json!({"name": "Quebrado", "definition": "city = \"Recife\" and\norders_count >= "}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reason = "expected a number after \">=\", found the end of the text (line 2, column 17)";
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "validation_failed", "message": reason, "field": "definition",
            "details": [{"code": "syntax_error", "field": "definition", "reason": reason}]}})
    );

    // JSON form: every semantic problem, each at its JSON pointer.
    let reply = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments/preview",
        json!({"definition": {"type": "and", "all": [
            {"type": "attribute", "attribute": "city", "test": {"op": "gt", "value": 3}},
            {"type": "attribute", "attribute": "shoe_size", "test": {"op": "eq", "value": 40}},
        ]}}),
    )
    .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let found: Vec<(&str, &str)> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["code"].as_str().unwrap(), d["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("type_mismatch", "definition/all/0/test"),
            ("unknown_field", "definition/all/1/attribute"),
        ],
        "{error}"
    );
    assert_eq!(error["field"], "definition/all/0/test");

    // Text with semantic problems: every one, at the pointer of its condition.
    let fine = create_segment(&app, &key, json!({"name": "Ok", "definition": "everyone"})).await;
    let reply = send(
        &app,
        &key,
        Method::PATCH,
        &format!("/api/v1/segments/{}", fine["id"].as_str().unwrap()),
        json!({"definition": "city > 3 and shoe_size = 40"}),
    )
    .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let codes: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["type_mismatch", "unknown_field"], "{error}");
    let reply = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments/preview",
        json!({"definition": "city > 3 and shoe_size = 40"}),
    )
    .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let found: Vec<(&str, &str)> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["code"].as_str().unwrap(), d["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("type_mismatch", "definition/all/0/test"),
            ("unknown_field", "definition/all/1/attribute"),
        ],
        "{error}"
    );

    // A JSON object that is not a definition at all.
    let reply = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments/preview",
        json!({"definition": {"type": "sometimes"}}),
    )
    .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(error["details"][0]["code"], "invalid_definition");
    assert_eq!(error["field"], "definition");

    // A reference to a segment that does not exist.
    let reply = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments",
        json!({"name": "Fantasma", "definition": "in segment \"nenhum\""}),
    )
    .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(error["details"][0]["code"], "unknown_segment", "{error}");

    // Request shape problems, all at once where the handler checks them.
    let reply = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments/preview",
        json!({"sample": 51}),
    )
    .await;
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "validation_failed", "message": "2 fields are invalid; see details", "field": "sample",
        "details": [
            {"code": "invalid_sample", "field": "sample", "reason": "sample must be a whole number from 0 to 50"},
            {"code": "required", "field": "definition", "reason": "send the definition to preview, as text or as its JSON form"},
        ]}})
    );
    let reply = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments",
        json!({"name": "X", "definition": "everyone", "colour": "red"}),
    )
    .await;
    assert_eq!(
        reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")["field"],
        "colour"
    );
    let reply = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments",
        json!({"name": "Sem definição"}),
    )
    .await;
    assert_eq!(
        reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "definition"
    );
}

#[tokio::test]
async fn membership_follows_ingestion_in_real_time_with_timeline_events() {
    let app = TestApp::new();
    let key = app.key(Role::Marketer);
    let segment = create_segment(
        &app,
        &key,
        json!({"name": "Recife", "definition": "city = \"Recife\""}),
    )
    .await;
    assert_eq!(segment["member_count"], 0);
    let id = segment["id"].as_str().unwrap().to_string();

    ingest(
        &app,
        vec![identify("u1", "ana@exemplo.com.br", "Ana", "Recife")],
    )
    .await;
    let ana = customer_id(&app, &key, "ana@exemplo.com.br").await;
    let members = get(&app, &key, &format!("/api/v1/segments/{id}/members")).await;
    assert_eq!(emails(&members), vec!["ana@exemplo.com.br"]);
    assert_eq!(
        get(&app, &key, &format!("/api/v1/segments/{id}")).await["member_count"],
        1
    );
    let in_segments = get(&app, &key, &format!("/api/v1/customers/{ana}/segments")).await;
    assert_eq!(in_segments["items"][0]["id"], id.as_str(), "{in_segments}");
    assert_eq!(in_segments["items"][0]["name"], "Recife");
    assert!(in_segments["items"][0]["member_since"].is_string());

    let timeline = get(
        &app,
        &key,
        &format!("/api/v1/customers/{ana}/timeline?event=Segment%20Entered"),
    )
    .await;
    let entered = &timeline["items"][0];
    assert_eq!(entered["name"], "Segment Entered", "{timeline}");
    assert_eq!(entered["properties"]["segment_id"], id.as_str());
    assert_eq!(entered["properties"]["segment_name"], "Recife");
    assert_eq!(entered["source"], "system");

    // She moves away: out of the segment, with an exit event.
    ingest(
        &app,
        vec![identify("u1", "ana@exemplo.com.br", "Ana", "Natal")],
    )
    .await;
    let members = get(&app, &key, &format!("/api/v1/segments/{id}/members")).await;
    assert_eq!(members["items"], json!([]));
    assert_eq!(
        get(&app, &key, &format!("/api/v1/customers/{ana}/segments")).await["items"],
        json!([])
    );
    let timeline = get(
        &app,
        &key,
        &format!("/api/v1/customers/{ana}/timeline?event=Segment%20Exited"),
    )
    .await;
    assert_eq!(
        timeline["items"][0]["properties"]["segment_id"],
        id.as_str()
    );
    app.call(
        Method::GET,
        "/api/v1/customers/cus_01jd8x6v3f9q2m4n7p5r8t0w1y/segments",
    )
    .bearer(&key)
    .send()
    .await
    .error(StatusCode::NOT_FOUND, "customer_not_found");
}

#[tokio::test]
async fn static_lists_take_members_by_id_and_csv_and_report_bad_inputs() {
    let app = TestApp::new();
    three_customers(&app).await;
    let key = app.key(Role::Marketer);
    let ana = customer_id(&app, &key, "ana@exemplo.com.br").await;
    let bruno = customer_id(&app, &key, "bruno@exemplo.com.br").await;
    let list = create_segment(&app, &key, json!({"name": "Evento", "kind": "static"})).await;
    assert_eq!(list["kind"], "static");
    assert_eq!(list["definition"], Value::Null);
    let id = list["id"].as_str().unwrap().to_string();
    let members = format!("/api/v1/segments/{id}/members");

    let reply = send(
        &app,
        &key,
        Method::POST,
        &members,
        json!({"customer_ids": [ana, "cus_nope", "cus_01jd8x6v3f9q2m4n7p5r8t0w1y"]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let change = reply.json();
    assert_eq!(
        (change["changed"].as_i64(), change["unchanged"].as_i64()),
        (Some(1), Some(0))
    );
    let rejected: Vec<(u64, &str, &str)> = change["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r.get("line").is_none(), "{r}");
            (
                r["index"].as_u64().unwrap(),
                r["code"].as_str().unwrap(),
                r["field"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, "invalid_id", "customer_ids[1]"),
            (2, "not_found", "customer_ids[2]")
        ]
    );
    let again = send(
        &app,
        &key,
        Method::POST,
        &members,
        json!({"customer_ids": [ana]}),
    )
    .await;
    assert_eq!(
        (
            again.json()["changed"].as_i64(),
            again.json()["unchanged"].as_i64()
        ),
        (Some(0), Some(1))
    );

    // CSV: the good rows are applied, the bad ones reported by line (the header is line 1).
    let csv = "Nome;E-mail\nBruno;bruno@exemplo.com.br\nX;not-an-email\nY;ninguem@exemplo.com.br\n";
    let reply = app
        .call(Method::POST, &format!("{members}/import"))
        .bearer(&key)
        .raw("text/csv", csv)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let change = reply.json();
    assert_eq!(change["changed"], 1, "{change}");
    assert_eq!(
        change["rejected"],
        json!([
            {"line": 3, "code": "invalid_value", "field": "email", "reason": "not a valid identifier"},
            {"line": 4, "code": "not_found", "field": "email", "reason": "no customer has this identifier"},
        ])
    );
    let page = get(&app, &key, &members).await;
    assert_eq!(
        emails(&page),
        vec!["ana@exemplo.com.br", "bruno@exemplo.com.br"]
    );
    let timeline = get(
        &app,
        &key,
        &format!("/api/v1/customers/{bruno}/timeline?event=Segment%20Entered"),
    )
    .await;
    assert_eq!(timeline["items"][0]["properties"]["segment_kind"], "static");

    // Removal by id and by CSV.
    let removed = send(
        &app,
        &key,
        Method::DELETE,
        &members,
        json!({"customer_ids": [ana]}),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text());
    assert_eq!(removed.json()["changed"], 1);
    let reply = app
        .call(Method::POST, &format!("{members}/import?remove=true"))
        .bearer(&key)
        .raw("text/csv", format!("id\n{bruno}\n"))
        .send()
        .await;
    assert_eq!(reply.json()["changed"], 1, "{}", reply.text());
    assert_eq!(get(&app, &key, &members).await["items"], json!([]));
    assert_eq!(
        get(&app, &key, &format!("/api/v1/segments/{id}")).await["member_count"],
        0
    );

    // Files and requests that cannot work.
    let reply = app
        .call(Method::POST, &format!("{members}/import"))
        .bearer(&key)
        .raw("text/csv", "nome\nAna\n")
        .send()
        .await;
    assert_eq!(
        reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["details"][0]["code"],
        "missing_column"
    );
    let reply = app
        .call(Method::POST, &format!("{members}/import?remove=talvez"))
        .bearer(&key)
        .raw("text/csv", "id\n")
        .send()
        .await;
    assert_eq!(
        reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "remove"
    );
    send(
        &app,
        &key,
        Method::POST,
        &members,
        json!({"customer_ids": "all"}),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let dynamic = create_segment(
        &app,
        &key,
        json!({"name": "Todos", "definition": "everyone"}),
    )
    .await;
    let reply = send(
        &app,
        &key,
        Method::POST,
        &format!(
            "/api/v1/segments/{}/members",
            dynamic["id"].as_str().unwrap()
        ),
        json!({"customer_ids": [ana]}),
    )
    .await;
    assert_eq!(
        reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["details"][0]["code"],
        "not_a_list"
    );
    let reply = send(
        &app,
        &key,
        Method::POST,
        "/api/v1/segments",
        json!({"name": "Lista", "kind": "static", "definition": "everyone"}),
    )
    .await;
    assert_eq!(
        reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["details"][0]["code"],
        "not_allowed"
    );
}

#[tokio::test]
async fn members_page_export_as_csv_and_keep_a_count_history() {
    let app = TestApp::new();
    ingest(
        &app,
        vec![
            identify("u1", "ana@exemplo.com.br", "Ana", "Recife"),
            identify("u2", "bruno@exemplo.com.br", "Bruno", "Recife"),
            identify("u3", "carla@exemplo.com.br", "Carla", "Recife"),
            identify("u4", "davi@exemplo.com.br", "Davi", "Natal"),
        ],
    )
    .await;
    let key = app.key(Role::Marketer);
    let segment = create_segment(
        &app,
        &key,
        json!({"name": "Recife", "definition": "city = \"Recife\""}),
    )
    .await;
    let id = segment["id"].as_str().unwrap();

    let first = get(
        &app,
        &key,
        &format!("/api/v1/segments/{id}/members?limit=2"),
    )
    .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = get(
        &app,
        &key,
        &format!("/api/v1/segments/{id}/members?limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    let mut all = emails(&first);
    all.extend(emails(&second));
    all.sort();
    assert_eq!(
        all,
        vec![
            "ana@exemplo.com.br",
            "bruno@exemplo.com.br",
            "carla@exemplo.com.br"
        ]
    );
    app.call(
        Method::GET,
        &format!("/api/v1/segments/{id}/members?limit=0"),
    )
    .bearer(&key)
    .send()
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let analyst = app.key(Role::Analyst);
    let export = app
        .call(Method::GET, &format!("/api/v1/segments/{id}/members.csv"))
        .bearer(&analyst)
        .send()
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text());
    assert_eq!(
        export.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        export.header("content-disposition"),
        Some(format!("attachment; filename=\"{id}.csv\"").as_str())
    );
    let text = export.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("id,name,email,"), "{text}");
    assert_eq!(lines.len(), 4, "header and three members: {text}");
    for email in ["ana@", "bruno@", "carla@"] {
        assert!(text.contains(email), "{text}");
    }
    assert!(!text.contains("davi@"), "{text}");
    let agent = app.key(Role::Agent);
    app.call(Method::GET, &format!("/api/v1/segments/{id}/members.csv"))
        .bearer(&agent)
        .send()
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.call(
        Method::GET,
        "/api/v1/segments/seg_01jd8x6v3f9q2m4n7p5r8t0w1y/members.csv",
    )
    .bearer(&analyst)
    .send()
    .await
    .error(StatusCode::NOT_FOUND, "segment_not_found");

    let history = get(
        &app,
        &key,
        &format!("/api/v1/segments/{id}/history?days=30"),
    )
    .await;
    assert_eq!(history["since"], "2026-05-02T12:00:00Z");
    let points = history["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{history}");
    assert_eq!(points.last().unwrap()["count"], 3, "{history}");
    let history = get(&app, &key, &format!("/api/v1/segments/{id}/history")).await;
    assert_eq!(
        history["since"], "2026-03-03T12:00:00Z",
        "90 days by default"
    );
    let reply = app
        .call(
            Method::GET,
            &format!("/api/v1/segments/{id}/history?days=0"),
        )
        .bearer(&key)
        .send()
        .await;
    assert_eq!(
        reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["details"][0]["code"],
        "invalid_days"
    );
}

#[tokio::test]
async fn a_segment_included_by_another_cannot_be_deleted() {
    let app = TestApp::new();
    let key = app.key(Role::Marketer);
    let recife = create_segment(
        &app,
        &key,
        json!({"name": "Recife", "definition": "city = \"Recife\""}),
    )
    .await;
    let buyers = create_segment(
        &app,
        &key,
        json!({"name": "Compradores de Recife", "definition": "in segment \"Recife\" and orders_count >= 1"}),
    )
    .await;
    assert_eq!(buyers["includes"], json!(["Recife"]));
    let recife_path = format!("/api/v1/segments/{}", recife["id"].as_str().unwrap());
    let reply = app
        .call(Method::DELETE, &recife_path)
        .bearer(&key)
        .send()
        .await;
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "segment_in_use", "message": "included by Compradores de Recife", "field": "id"}})
    );
    assert_eq!(reply.status, StatusCode::CONFLICT);

    let reply = app
        .call(
            Method::DELETE,
            &format!("/api/v1/segments/{}", buyers["id"].as_str().unwrap()),
        )
        .bearer(&key)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    let reply = app
        .call(Method::DELETE, &recife_path)
        .bearer(&key)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    app.call(Method::GET, &recife_path)
        .bearer(&key)
        .send()
        .await
        .error(StatusCode::NOT_FOUND, "segment_not_found");
    app.call(Method::DELETE, &recife_path)
        .bearer(&key)
        .send()
        .await
        .error(StatusCode::NOT_FOUND, "segment_not_found");
}

#[tokio::test]
async fn lifecycle_rules_are_validated_and_saved_and_stages_follow_orders() {
    let app = TestApp::new();
    let owner = app.key(Role::Owner);
    let rules = get(&app, &owner, "/api/v1/lifecycle/rules").await;
    assert_eq!(
        rules,
        json!({"acquisition_days": 30, "at_risk_after_days": 120, "lapsed_after_days": 365,
               "loyalty_min_orders": 5, "loyalty_min_spent_minor": 0})
    );

    let reply = send(
        &app,
        &owner,
        Method::PUT,
        "/api/v1/lifecycle/rules",
        json!({"acquisition_days": 0, "at_risk_after_days": 120, "lapsed_after_days": 100,
               "loyalty_min_orders": 5, "loyalty_min_spent_minor": 0}),
    )
    .await;
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "validation_failed", "message": "2 fields are invalid; see details", "field": "acquisition_days",
        "details": [
            {"code": "out_of_range", "field": "acquisition_days", "reason": "between 1 and 3650 days"},
            {"code": "out_of_range", "field": "lapsed_after_days", "reason": "must be more than at_risk_after_days"},
        ]}})
    );
    send(
        &app,
        &owner,
        Method::PUT,
        "/api/v1/lifecycle/rules",
        json!({"acquisition_days": 45}),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let marketer = app.key(Role::Marketer);
    let new_rules = json!({"acquisition_days": 45, "at_risk_after_days": 100,
        "lapsed_after_days": 300, "loyalty_min_orders": 4, "loyalty_min_spent_minor": 50000});
    send(
        &app,
        &marketer,
        Method::PUT,
        "/api/v1/lifecycle/rules",
        new_rules.clone(),
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden");
    let reply = send(
        &app,
        &owner,
        Method::PUT,
        "/api/v1/lifecycle/rules",
        new_rules.clone(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), new_rules);
    assert_eq!(
        get(&app, &owner, "/api/v1/lifecycle/rules").await,
        new_rules
    );

    // Ana orders (acquisition), Bruno only signs up (reach).
    ingest(
        &app,
        vec![
            identify("u1", "ana@exemplo.com.br", "Ana", "Recife"),
            identify("u2", "bruno@exemplo.com.br", "Bruno", "Natal"),
            order("u1", "o1", "2026-05-25", 120.0),
        ],
    )
    .await;
    let analyst = app.key(Role::Analyst);
    let ana = customer_id(&app, &analyst, "ana@exemplo.com.br").await;
    let lifecycle = get(
        &app,
        &analyst,
        &format!("/api/v1/customers/{ana}/lifecycle"),
    )
    .await;
    assert_eq!(lifecycle["stage"], "acquisition", "{lifecycle}");
    assert!(lifecycle["since"].is_string(), "{lifecycle}");
    let history = lifecycle["history"].as_array().unwrap();
    assert_eq!(history[0]["to"], "acquisition", "{lifecycle}");
    assert_eq!(history[0]["customer_id"], ana.as_str());
    app.call(
        Method::GET,
        "/api/v1/customers/cus_01jd8x6v3f9q2m4n7p5r8t0w1y/lifecycle",
    )
    .bearer(&analyst)
    .send()
    .await
    .error(StatusCode::NOT_FOUND, "customer_not_found");

    let stages = get(&app, &analyst, "/api/v1/lifecycle/stages").await;
    assert_eq!(stages["total"], 2, "{stages}");
    assert_eq!(stages["items"].as_array().unwrap().len(), 7);
    assert_eq!(
        stages["items"][0],
        json!({"stage": "reach", "customers": 1})
    );
    assert_eq!(
        stages["items"][1],
        json!({"stage": "acquisition", "customers": 1})
    );

    let flow = get(
        &app,
        &analyst,
        "/api/v1/lifecycle/flow?from=2026-05-01&to=2026-06-30",
    )
    .await;
    let items = flow["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|t| t["to"] == "acquisition" && t["customers"] == 1),
        "{flow}"
    );
    assert_eq!(flow["from"], "2026-05-01T00:00:00Z");
    let default_period = get(&app, &analyst, "/api/v1/lifecycle/flow").await;
    assert_eq!(default_period["to"], "2026-06-01T12:00:00Z");
    assert_eq!(default_period["from"], "2026-03-03T12:00:00Z");
    for (path, field) in [
        ("/api/v1/lifecycle/flow?from=soon", "from"),
        (
            "/api/v1/lifecycle/flow?from=2026-05-02&to=2026-05-01",
            "from",
        ),
    ] {
        let reply = app.call(Method::GET, path).bearer(&analyst).send().await;
        assert_eq!(
            reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
            field,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_customer_list_filters_by_stage_and_segment() {
    let app = TestApp::new();
    three_customers(&app).await;
    ingest(&app, vec![order("u3", "o1", "2026-05-25", 80.0)]).await;
    let key = app.key(Role::Marketer);

    let buyers = get(&app, &key, "/api/v1/customers?stage=acquisition").await;
    assert_eq!(emails(&buyers), vec!["carla@exemplo.com.br"]);
    let reach = get(&app, &key, "/api/v1/customers?stage=reach").await;
    assert_eq!(
        emails(&reach),
        vec!["ana@exemplo.com.br", "bruno@exemplo.com.br"]
    );
    assert_eq!(
        get(&app, &key, "/api/v1/customers?stage=lapsed").await["items"],
        json!([])
    );

    let segment = create_segment(
        &app,
        &key,
        json!({"name": "Recife", "definition": "city = \"Recife\""}),
    )
    .await;
    let id = segment["id"].as_str().unwrap();
    let members = get(&app, &key, &format!("/api/v1/customers?segment={id}")).await;
    assert_eq!(
        emails(&members),
        vec!["ana@exemplo.com.br", "bruno@exemplo.com.br"]
    );
    let both = get(
        &app,
        &key,
        &format!("/api/v1/customers?segment={id}&search=bruno&stage=reach"),
    )
    .await;
    assert_eq!(emails(&both), vec!["bruno@exemplo.com.br"]);

    let reply = app
        .call(Method::GET, "/api/v1/customers?stage=vip&segment=recife")
        .bearer(&key)
        .send()
        .await;
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "validation_failed", "message": "2 fields are invalid; see details", "field": "stage",
        "details": [
            {"code": "invalid_stage", "field": "stage",
             "reason": "expected reach, acquisition, nurture, retention, loyalty, at_risk or lapsed"},
            {"code": "invalid_segment", "field": "segment", "reason": "expected a segment id (`seg_…`)"},
        ]}})
    );
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn roles_decide_who_may_read_write_and_export_segments() {
    let app = TestApp::new();
    three_customers(&app).await;
    let analyst = app.key(Role::Analyst);
    let reply = send(
        &app,
        &analyst,
        Method::POST,
        "/api/v1/segments",
        json!({"name": "Recife", "definition": "city = \"Recife\""}),
    )
    .await;
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "forbidden", "message": "your role does not have the write_customers permission"}})
    );
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // An analyst reads and previews.
    let marketer = app.key(Role::Marketer);
    let list = create_segment(&app, &marketer, json!({"name": "Lista", "kind": "static"})).await;
    let id = list["id"].as_str().unwrap();
    get(&app, &analyst, "/api/v1/segments").await;
    get(&app, &analyst, &format!("/api/v1/segments/{id}")).await;
    let preview = send(
        &app,
        &analyst,
        Method::POST,
        "/api/v1/segments/preview",
        json!({"definition": "everyone"}),
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
    assert_eq!(preview.json()["count"], 3);

    // …but changes nothing.
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/segments/{id}"),
            json!({"name": "Outra"}),
        ),
        (Method::DELETE, format!("/api/v1/segments/{id}"), json!({})),
        (
            Method::POST,
            format!("/api/v1/segments/{id}/members"),
            json!({"customer_ids": []}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/segments/{id}/members"),
            json!({"customer_ids": []}),
        ),
    ] {
        send(&app, &analyst, method.clone(), &path, body)
            .await
            .error(StatusCode::FORBIDDEN, "forbidden");
    }
    app.call(
        Method::POST,
        &format!("/api/v1/segments/{id}/members/import"),
    )
    .bearer(&analyst)
    .raw("text/csv", "id\n")
    .send()
    .await
    .error(StatusCode::FORBIDDEN, "forbidden");
    send(
        &app,
        &marketer,
        Method::PUT,
        "/api/v1/lifecycle/rules",
        json!({"acquisition_days": 30, "at_risk_after_days": 120, "lapsed_after_days": 365,
               "loyalty_min_orders": 5, "loyalty_min_spent_minor": 0}),
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden");

    // Nobody gets in without credentials.
    for path in [
        "/api/v1/segments".to_string(),
        format!("/api/v1/segments/{id}/members"),
        "/api/v1/lifecycle/rules".to_string(),
        "/api/v1/lifecycle/stages".to_string(),
    ] {
        app.call(Method::GET, &path)
            .send()
            .await
            .error(StatusCode::UNAUTHORIZED, "unauthorized");
    }

    // A session needs its CSRF token to change anything.
    let (token, csrf) = app.login().await;
    app.call(Method::POST, "/api/v1/segments")
        .cookie(&token)
        .json(json!({"name": "Lista 2", "kind": "static"}))
        .send()
        .await
        .error(StatusCode::FORBIDDEN, "csrf_failed");
    let reply = app
        .call(Method::POST, "/api/v1/segments")
        .cookie(&token)
        .csrf(&csrf)
        .json(json!({"name": "Lista 2", "kind": "static"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}
