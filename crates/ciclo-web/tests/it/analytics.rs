//! The analytics pages: each renders for an analyst in both languages with its chart or table,
//! the RFM grid links through to a group's customers, thin data gets a clear warning on the CLV
//! page, and what should be refused is (signed out, unreadable parameters, a broken database).

use super::*;
use ciclo_domain::operator::Role;
use std::sync::atomic::Ordering;

/// Orders of R$ 100 at noon UTC on the given days.
fn orders(user: &str, name: &str, days: &[&str]) -> Vec<Value> {
    let mut messages = vec![
        json!({"type": "identify", "userId": user, "messageId": format!("i-{user}"),
        "timestamp": format!("{}T11:00:00Z", days[0]), "traits": {"name": name}}),
    ];
    for (i, day) in days.iter().enumerate() {
        messages.push(
            json!({"type": "track", "event": "Order Completed", "userId": user,
            "messageId": format!("o-{user}-{i}"), "timestamp": format!("{day}T12:00:00Z"),
            "properties": {"order_id": format!("{user}-{i}"), "total": 100.0, "currency": "BRL"}}),
        );
    }
    messages
}

/// A few customers: one frequent and recent (a champion), one long gone, one new.
async fn shop(app: &TestApp) {
    let mut batch = Vec::new();
    batch.extend(orders(
        "u1",
        "Beatriz Lima",
        &[
            "2026-01-05",
            "2026-02-10",
            "2026-03-15",
            "2026-04-20",
            "2026-05-25",
        ],
    ));
    batch.extend(orders("u2", "Carlos Melo", &["2025-09-01", "2025-10-03"]));
    batch.extend(orders("u3", "Daniela Reis", &["2026-05-20"]));
    batch.extend(orders("u4", "Eduardo Souza", &["2026-02-14", "2026-05-02"]));
    batch.extend(orders("u5", "Fernanda Dias", &["2025-12-01"]));
    app.ingest(Value::Array(batch)).await;
}

const PAGES: [&str; 8] = [
    "/analytics/rfm",
    "/analytics/rfm/customers?segment=champions",
    "/analytics/rfm/customers?recency=5&fm=5",
    "/analytics/cohorts",
    "/analytics/cohorts?months=24",
    "/analytics/metrics",
    "/analytics/clv?horizon=6",
    "/analytics/funnel?from=2026-01-01&to=2026-05-31",
];

#[tokio::test]
async fn every_analytics_page_renders_for_an_analyst_in_both_languages() {
    let app = TestApp::new();
    shop(&app).await;
    let analyst = app.operator(Role::Analyst);
    for (language, expected) in [
        (
            "pt-BR",
            [
                "Grade RFM",
                "Campeões",
                "Campeões",
                "Retenção",
                "Receita por coorte",
                "Taxa de churn",
                "Esta previsão ainda não é confiável",
                "Clientes que chegaram a cada etapa",
            ],
        ),
        (
            "en",
            [
                "RFM grid",
                "Champions",
                "Champions",
                "Retention",
                "Revenue by cohort",
                "Churn rate",
                "This prediction is not reliable yet",
                "Customers who reached each stage",
            ],
        ),
    ] {
        let mut browser = app.browser();
        browser.accept_language = Some(language.into());
        let signed = browser.sign_in(&analyst, PASSWORD).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER);
        let home = browser.get("/customers").await;
        home.assert_contains("href=\"/analytics\"");
        let index = browser.get("/analytics").await;
        assert_eq!(index.status, StatusCode::SEE_OTHER);
        assert_eq!(index.location(), "/analytics/rfm");
        for (path, text) in PAGES.iter().zip(expected) {
            let page = browser.get(path).await;
            assert_eq!(
                page.status,
                StatusCode::OK,
                "{language} {path}:\n{}",
                page.body
            );
            page.assert_contains(&format!("<html lang=\"{language}\">"));
            page.assert_contains(text);
            page.assert_contains("aria-current=\"page\">");
            page.assert_lacks("analytics.");
            assert!(!page.body.contains("NaN"), "{path}");
        }
    }
}

#[tokio::test]
async fn the_pages_show_the_numbers_and_link_through() {
    let app = TestApp::new();
    shop(&app).await;
    let mut browser = app.signed_in(OWNER_EMAIL).await;

    // RFM: a heat-map whose 25 cells link to their customers; the champion is listed.
    let rfm = browser.get("/analytics/rfm").await;
    assert_eq!(rfm.body.matches("<a class=\"heat-cell\"").count(), 25);
    rfm.assert_contains("href=\"/analytics/rfm/customers?recency=5&amp;fm=5\"");
    rfm.assert_contains("href=\"/analytics/rfm/customers?segment=champions\"");
    let champions = browser
        .get("/analytics/rfm/customers?segment=champions")
        .await;
    champions.assert_contains("Beatriz Lima");
    champions.assert_lacks("Carlos Melo");
    champions.assert_contains("5 · 5 · 5");

    // Cohorts: January 2026 is Beatriz alone, back every month; shaded cells.
    let cohorts = browser.get("/analytics/cohorts?months=12").await;
    cohorts.assert_contains("jan&#x2f;26");
    cohorts.assert_contains("class=\"num shade-10\"");
    cohorts.assert_contains("R$ 100</td>");

    // Metrics: 5 buyers, 11 orders of R$ 100; Carlos (October) and Fernanda (December) churned.
    let metrics = browser.get("/analytics/metrics").await;
    metrics.assert_contains("R$ 100,00");
    metrics.assert_contains("40,0%");
    assert_eq!(metrics.body.matches("<svg class=\"chart\"").count(), 2);

    // CLV: three repeat buyers is far too few: the warning says so, numbers still shown.
    let clv = browser.get("/analytics/clv").await;
    clv.assert_contains("class=\"warning-banner\" role=\"alert\"");
    clv.assert_contains("Só 3 clientes compraram mais de uma vez");
    clv.assert_contains("Beatriz Lima");

    // Funnel: five stages of the cycle, conversions between them.
    let funnel = browser
        .get("/analytics/funnel?from=2026-03-01&to=2026-06-01")
        .await;
    assert_eq!(funnel.body.matches("class=\"funnel-stage\"").count(), 5);
    funnel.assert_contains("Alcance → Aquisição");
    let bad = browser
        .get("/analytics/funnel?from=2026-05-01&to=2026-01-01")
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_contains("O início deve ser uma data anterior ao fim.");
}

#[tokio::test]
async fn an_empty_workspace_gets_empty_states_not_errors() {
    let app = TestApp::new();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    for path in [
        "/analytics/rfm",
        "/analytics/cohorts",
        "/analytics/metrics",
        "/analytics/clv",
        "/analytics/funnel",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}:\n{}", page.body);
        page.assert_lacks("NaN");
    }
    browser
        .get("/analytics/rfm")
        .await
        .assert_contains("Ainda não há pedidos");
    browser
        .get("/analytics/clv")
        .await
        .assert_contains("Ainda não há previsão para mostrar.");
}

#[tokio::test]
async fn analytics_are_refused_where_they_should_be() {
    let app = TestApp::new();
    shop(&app).await;
    // Signed out: to the sign-in page, and back afterwards.
    let mut stranger = app.browser();
    for path in ["/analytics", "/analytics/rfm", "/analytics/clv?horizon=6"] {
        let away = stranger.get(path).await;
        assert_eq!(away.status, StatusCode::SEE_OTHER, "{path}");
        assert!(away.location().starts_with("/login"), "{path}");
    }
    // Signed in: parameters that name nothing are a bad request, not a guess.
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    for path in [
        "/analytics/rfm/customers?segment=vips",
        "/analytics/rfm/customers?recency=9",
        "/analytics/rfm/customers?fm=x",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
    }
    // A horizon out of range falls back to the default rather than failing.
    let clv = browser.get("/analytics/clv?horizon=9999").await;
    assert_eq!(clv.status, StatusCode::OK);
    clv.assert_contains("<option value=\"12\" selected>");
    // A broken database: the friendly error page, no details.
    app.store.failing.store(true, Ordering::Relaxed);
    let broken = browser.get("/analytics/metrics").await;
    app.store.failing.store(false, Ordering::Relaxed);
    assert_eq!(broken.status, StatusCode::INTERNAL_SERVER_ERROR);
    broken.assert_lacks("SECRET-DETAIL");
}
