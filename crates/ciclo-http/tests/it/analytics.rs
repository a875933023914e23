//! The analytics endpoints: each answers its report as JSON for a read-only key, bad parameters
//! are refused with every problem listed, and nobody gets in without credentials.

use crate::TestApp;
use axum::http::{Method, StatusCode};
use ciclo_domain::operator::Role;
use serde_json::{json, Value};

/// Two buyers: `a` three times (January, February, April 2026), `b` once (May 2026).
async fn shop(app: &TestApp) {
    let order = |user: &str, id: &str, day: &str| {
        json!({"type": "track", "event": "Order Completed", "userId": user, "messageId": id,
               "timestamp": format!("{day}T12:00:00Z"),
               "properties": {"order_id": id, "total": 50.0, "currency": "BRL"}})
    };
    let batch = vec![
        order("a", "a1", "2026-01-10"),
        order("a", "a2", "2026-02-10"),
        order("a", "a3", "2026-04-10"),
        order("b", "b1", "2026-05-15"),
    ];
    let reply = app
        .call(Method::POST, "/v1/batch")
        .basic(&app.workspace.write_key)
        .json(json!({ "batch": batch }))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

async fn get(app: &TestApp, key: &str, path: &str) -> Value {
    let reply = app.call(Method::GET, path).bearer(key).send().await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    reply.json()
}

#[tokio::test]
async fn every_report_answers_for_an_analyst() {
    let app = TestApp::new();
    shop(&app).await;
    let key = app.key(Role::Analyst);

    let rfm = get(&app, &key, "/api/v1/analytics/rfm").await;
    assert_eq!(rfm["customers"], 2);
    assert_eq!(rfm["grid"].as_array().unwrap().len(), 25);
    assert_eq!(rfm["groups"].as_array().unwrap().len(), 11);
    assert_eq!(rfm["groups"][0]["segment"], "champions");

    let page = get(&app, &key, "/api/v1/analytics/rfm/customers?limit=1").await;
    assert_eq!(page["total"], 2);
    assert_eq!(
        page["items"][0]["total_spent_minor"], 15_000,
        "a spent most"
    );
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let next = get(
        &app,
        &key,
        &format!("/api/v1/analytics/rfm/customers?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(next["items"][0]["orders"], 1);
    assert_eq!(next["next_cursor"], Value::Null);

    let cohorts = get(&app, &key, "/api/v1/analytics/cohorts?months=6").await;
    assert_eq!(cohorts["cohorts"][0]["month"], "2026-01");
    assert_eq!(cohorts["cohorts"][0]["active"], json!([1, 1, 0, 1, 0, 0]));

    let metrics = get(&app, &key, "/api/v1/analytics/metrics").await;
    assert_eq!(metrics["current"]["repeat_rate"], 0.5);
    assert_eq!(metrics["months"].as_array().unwrap().len(), 12);

    let clv = get(&app, &key, "/api/v1/analytics/clv?horizon_months=6").await;
    assert_eq!(clv["horizon_months"], 6);
    assert_eq!(clv["reliable"], false);
    assert_eq!(clv["sufficiency"]["verdict"], "thin");
    assert_eq!(
        clv["sufficiency"]["reason"]["code"],
        "too_few_repeat_customers"
    );

    let funnel = get(
        &app,
        &key,
        "/api/v1/analytics/funnel?from=2026-03-01&to=2026-06-01",
    )
    .await;
    assert_eq!(funnel["steps"][0]["from"], "reach");
    assert_eq!(funnel["steps"][0]["reached_to"], 2);
    assert_eq!(funnel["to"], "2026-06-01T12:00:00Z", "capped at now");
    let default_period = get(&app, &key, "/api/v1/analytics/funnel").await;
    assert_eq!(default_period["from"], "2026-03-03T12:00:00Z");
}

#[tokio::test]
async fn bad_parameters_and_missing_credentials_are_refused() {
    let app = TestApp::new();
    let key = app.key(Role::Analyst);
    let reply = app
        .call(
            Method::GET,
            "/api/v1/analytics/rfm/customers?segment=vips&recency=7&limit=0&cursor=zzz",
        )
        .bearer(&key)
        .send()
        .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let codes: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec![
            "invalid_segment",
            "invalid_score",
            "invalid_limit",
            "invalid_cursor"
        ]
    );
    for (path, field) in [
        ("/api/v1/analytics/cohorts?months=0", "months"),
        ("/api/v1/analytics/clv?horizon_months=500", "horizon_months"),
        ("/api/v1/analytics/funnel?from=soon", "from"),
        (
            "/api/v1/analytics/funnel?from=2026-05-01&to=2026-04-01",
            "from",
        ),
    ] {
        let reply = app.call(Method::GET, path).bearer(&key).send().await;
        assert_eq!(
            reply.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
            field,
            "{path}"
        );
    }
    for path in [
        "/api/v1/analytics/rfm",
        "/api/v1/analytics/cohorts",
        "/api/v1/analytics/metrics",
        "/api/v1/analytics/clv",
        "/api/v1/analytics/funnel",
    ] {
        app.call(Method::GET, path)
            .send()
            .await
            .error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
}
