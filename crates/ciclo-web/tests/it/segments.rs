//! Segments, static lists and lifecycle stages in the console: the pages in both languages, the
//! editor (create, errors with their position, preview), list members by id and by CSV with a
//! report, the 360 page's lifecycle and segments, the stage and segment filters of the customer
//! list, the lifecycle rules form and the stage flow of the funnel.

use super::*;
use axum::http::header;
use ciclo_core::segments::SegmentInput;
use ciclo_domain::ids::SegmentId;

/// The id in a `/segments/{id}…` redirect.
fn segment_of(location: &str) -> String {
    location
        .trim_start_matches("/segments/")
        .split(['?', '/', '#'])
        .next()
        .unwrap()
        .to_string()
}

/// Three customers: two in Recife (one with two orders), one in Natal.
async fn people(app: &TestApp) -> (String, String, String) {
    let ana = app.customer(json!({"name": "Ana Souza", "email": "ana@example.com", "city": "Recife", "user_id": "ana-1"}));
    let bruno =
        app.customer(json!({"name": "Bruno Lima", "email": "bruno@example.com", "city": "Recife"}));
    let carla =
        app.customer(json!({"name": "Carla Dias", "email": "carla@example.com", "city": "Natal"}));
    let order = |i: u32, day: &str| {
        json!({"type": "track", "event": "Order Completed", "userId": "ana-1",
        "messageId": format!("o-{i}"), "timestamp": format!("{day}T12:00:00Z"),
        "properties": {"order_id": format!("PED-{i}"), "total": 150.0, "currency": "BRL"}})
    };
    app.ingest(json!([order(1, "2026-04-10"), order(2, "2026-05-20")]))
        .await;
    app.ciclo.evaluate_pending(100).unwrap();
    (ana, bruno, carla)
}

fn create(app: &TestApp, name: &str, kind: &str, definition: Option<&str>) -> String {
    let input = SegmentInput {
        name: Some(name.into()),
        description: Some(String::new()),
        kind: Some(kind.into()),
        definition: definition.map(|d| Value::String(d.into())),
    };
    app.ciclo
        .create_segment(&app.owner(), &input)
        .unwrap()
        .record
        .id
        .to_string()
}

fn multipart(path: &str, csrf: &str, mode: &str, file: &str) -> Request<Body> {
    let body = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"mode\"\r\n\r\n{mode}\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"lista.csv\"\r\nContent-Type: text/csv\r\n\r\n{file}\r\n--XyZ--\r\n"
    );
    Request::post(path)
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn segment_pages_render_in_both_languages() {
    let app = TestApp::new();
    let (ana, _, _) = people(&app).await;
    let recife = create(&app, "Recife", "dynamic", Some("city = \"Recife\""));
    let vip = create(&app, "VIP", "static", None);
    app.ciclo
        .add_to_list(
            &app.owner(),
            &SegmentId::parse(&vip).unwrap(),
            std::slice::from_ref(&ana),
        )
        .unwrap();
    for (language, words) in [
        (
            "pt-BR",
            ["Segmentos", "Novo segmento", "Lista", "Membros agora"],
        ),
        ("en", ["Segments", "New segment", "List", "Members now"]),
    ] {
        let mut browser = app.browser();
        browser.accept_language = Some(language.into());
        browser.sign_in(OWNER_EMAIL, PASSWORD).await;
        let mut all = String::new();
        for path in [
            "/segments".to_string(),
            "/segments/new".into(),
            "/segments/new?kind=static".into(),
            format!("/segments/{recife}"),
            format!("/segments/{recife}/edit"),
            format!("/segments/{vip}"),
            format!("/segments/{vip}/edit"),
            format!("/customers/{ana}"),
            "/customers?stage=retention".into(),
            format!("/customers?segment={recife}"),
            "/settings".into(),
            "/analytics/funnel".into(),
        ] {
            let page = browser.get(&path).await;
            assert_eq!(
                page.status,
                StatusCode::OK,
                "{language} {path}:\n{}",
                page.body
            );
            page.assert_contains(&format!("<html lang=\"{language}\">"));
            all.push_str(&page.body);
        }
        for word in words {
            assert!(all.contains(word), "{language}: {word}");
        }
    }
    // The list: kind, members, the detail's chart.
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let list = browser.get("/segments").await;
    list.assert_contains("<span class=\"badge badge-dynamic\">Segmento</span>");
    list.assert_contains("<span class=\"badge badge-static\">Lista</span>");
    let detail = browser.get(&format!("/segments/{recife}")).await;
    detail.assert_contains("id=\"member-count\">2</p>");
    // Created today: the chart waits for a second day.
    detail.assert_contains("id=\"history-starts\"");
    detail.assert_contains("Ana Souza");
    detail.assert_contains("Bruno Lima");
    detail.assert_lacks("Carla Dias");
    detail.assert_contains(&format!("href=\"/segments/{recife}/export.csv\""));
    // The export: the members only.
    let export = browser.get(&format!("/segments/{recife}/export.csv")).await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("recife.csv"));
    assert_eq!(export.body.trim().lines().count(), 3, "{}", export.body);
    assert!(export.body.contains("ana@example.com") && !export.body.contains("carla@"));
    // An unknown segment is the friendly 404.
    let missing = browser
        .get("/segments/seg_01aaaaaaaaaaaaaaaaaaaaaaaa")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn create_a_segment_with_the_editor() {
    let app = TestApp::new();
    people(&app).await;
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let form = browser.get("/segments/new").await;
    form.assert_contains("name=\"definition\"");
    form.assert_contains("Como escrever a definição");
    // Every help example is in Portuguese here.
    form.assert_contains("realizou &quot;Product Viewed&quot; pelo menos 3 vezes");
    let saved = browser
        .submit(
            &form,
            "/segments/new",
            &[
                ("kind", "dynamic"),
                ("name", "Recife recorrentes"),
                ("description", "Duas compras ou mais"),
                ("definition", "city = \"Recife\"\r\ne orders_count >= 2"),
                ("intent", "save"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(saved.location().ends_with("?notice=segment_created"));
    let id = segment_of(saved.location());
    let detail = browser.get(saved.location()).await;
    detail.assert_contains("<h1>Recife recorrentes</h1>");
    detail.assert_contains("Criado. Os membros aparecem abaixo.");
    detail.assert_contains("id=\"member-count\">1</p>");
    detail.assert_contains("Ana Souza");
    // Core prints the definition in its English spelling.
    detail.assert_contains("orders_count &gt;= 2");

    // Edit: the name is taken by another segment → the error is next to the name.
    create(&app, "Outro", "dynamic", Some("everyone"));
    let edit = browser.get(&format!("/segments/{id}/edit")).await;
    let taken = browser
        .submit(
            &edit,
            &format!("/segments/{id}/edit"),
            &[
                ("name", "outro"),
                ("definition", "city = \"Recife\""),
                ("intent", "save"),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    taken.assert_contains("id=\"f-name-error\">Já existe um segmento ou lista com este nome.");
    let renamed = browser
        .submit(
            &edit,
            &format!("/segments/{id}/edit"),
            &[
                ("name", "Recife"),
                ("definition", "city = \"Recife\""),
                ("intent", "save"),
            ],
        )
        .await;
    assert_eq!(
        renamed.location(),
        format!("/segments/{id}?notice=segment_saved")
    );
    let detail = browser.get(&format!("/segments/{id}")).await;
    detail.assert_contains("id=\"member-count\">2</p>");

    // A name is required; what was typed stays.
    let form = browser.get("/segments/new").await;
    let nameless = browser
        .submit(
            &form,
            "/segments/new",
            &[
                ("name", ""),
                ("definition", "city = \"Natal\""),
                ("intent", "save"),
            ],
        )
        .await;
    assert_eq!(nameless.status, StatusCode::UNPROCESSABLE_ENTITY);
    nameless.assert_contains("Dê um nome ao segmento.");
    nameless.assert_contains("city = &quot;Natal&quot;</textarea>");
}

#[tokio::test]
async fn definition_errors_show_line_column_and_the_text() {
    let app = TestApp::new();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let form = browser.get("/segments/new").await;
    let send = |definition: &'static str, intent: &'static str| {
        vec![
            ("kind", "dynamic"),
            ("name", "Teste"),
            ("definition", definition),
            ("intent", intent),
        ]
    };
    // An unknown attribute on the second line, with the suggestion.
    let page = browser
        .submit(
            &form,
            "/segments/new",
            &send("city = \"Recife\"\r\n  e cidade = \"Olinda\"", "save"),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.assert_contains("Linha 2, coluna 5: “cidade” não é um atributo conhecido.");
    page.assert_contains("<mark>cidade</mark>");
    page.assert_contains("Se for um dado próprio do cliente, escreva traits.cidade.");
    page.assert_contains("aria-invalid=\"true\"");
    page.assert_contains("data-start=\"20\" data-end=\"26\"");
    page.assert_lacks("unknown_field");
    assert!(app.ciclo.list_segments(&app.owner()).unwrap().is_empty());

    // A near miss gets a suggestion.
    let page = browser
        .submit(&form, "/segments/new", &send("orders_cont > 1", "save"))
        .await;
    page.assert_contains("Linha 1, coluna 1: “orders_cont” não é um atributo conhecido.");
    page.assert_contains("Você quis dizer orders_count?");

    // A syntax error, in the middle and at the end.
    let page = browser
        .submit(
            &form,
            "/segments/new",
            &send("orders_count >= 2 and city ~ \"Recife\"", "preview"),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.assert_contains("Linha 1, coluna 28: não entendi o texto a partir de “~”.");
    page.assert_contains("<mark>~</mark>");
    let page = browser
        .submit(&form, "/segments/new", &send("orders_count >=", "preview"))
        .await;
    page.assert_contains("a definição terminou antes do esperado");
    // A type mismatch points at the test.
    let page = browser
        .submit(&form, "/segments/new", &send("city > 3", "save"))
        .await;
    page.assert_contains(
        "Linha 1, coluna 6: o teste “&gt; 3” não combina com o tipo deste atributo.",
    );
    // A segment that does not exist.
    let page = browser
        .submit(
            &form,
            "/segments/new",
            &send("in segment \"Não existe\"", "save"),
        )
        .await;
    page.assert_contains(
        "Linha 1, coluna 12: não existe um segmento chamado &quot;Não existe&quot;.",
    );
    // Nothing written.
    let page = browser
        .submit(&form, "/segments/new", &send("  ", "preview"))
        .await;
    page.assert_contains("Escreva a definição: quem faz parte deste segmento.");

    // In English.
    browser.accept_language = Some("en".into());
    let form = browser.get("/segments/new").await;
    let page = browser
        .submit(
            &form,
            "/segments/new",
            &send("city = \"Recife\" and cidade = 1", "save"),
        )
        .await;
    page.assert_contains("Line 1, column 21: “cidade” is not an attribute ciclo knows.");
    page.assert_contains("If it is your own customer data, write traits.cidade.");
}

#[tokio::test]
async fn preview_counts_and_samples_without_saving() {
    let app = TestApp::new();
    people(&app).await;
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let form = browser.get("/segments/new").await;
    let page = browser
        .submit(
            &form,
            "/segments/new",
            &[
                ("kind", "dynamic"),
                ("name", "Recife"),
                ("definition", "city é \"Recife\""),
                ("intent", "preview"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains("id=\"preview-count\">2</span>");
    page.assert_contains("de 3 clientes · 66,7%");
    page.assert_contains("Ana Souza");
    page.assert_contains("Bruno Lima");
    page.assert_lacks("Carla Dias");
    // The form keeps what was typed, and nothing was saved.
    page.assert_contains("value=\"Recife\"");
    assert!(app.ciclo.list_segments(&app.owner()).unwrap().is_empty());

    // The fragment the script asks for: errors and preview, no page around them.
    let fragment = browser
        .submit(
            &form,
            "/segments/preview",
            &[(
                "definition",
                "realizou \"Order Completed\" pelo menos 2 vezes",
            )],
        )
        .await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(!fragment.body.contains("<html"));
    fragment.assert_contains("id=\"definition-errors\"");
    fragment.assert_contains("id=\"preview-count\">1</span>");
    fragment.assert_contains("Ana Souza");
    let fragment = browser
        .submit(&form, "/segments/preview", &[("definition", "city >")])
        .await;
    fragment.assert_contains("Linha 1, coluna 7");
    fragment.assert_lacks("id=\"preview-count\"");
    // Before the evaluator has stored any stage there is no total to compare with.
    let fresh = TestApp::new();
    fresh.customer(json!({"name": "Nova", "city": "Recife"}));
    let mut other = fresh.signed_in(OWNER_EMAIL).await;
    let form2 = other.get("/segments/new").await;
    let page = other
        .submit(
            &form2,
            "/segments/preview",
            &[("definition", "city = \"Recife\"")],
        )
        .await;
    page.assert_contains(
        "id=\"preview-count\">1</span> <span>clientes atendem a esta definição agora",
    );

    // Without the token, nothing.
    let forged = browser
        .post(
            "/segments/preview",
            &[("csrf_token", "x"), ("definition", "everyone")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn static_list_by_id_and_csv_with_a_bad_row() {
    let app = TestApp::new();
    let (ana, bruno, carla) = people(&app).await;
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let form = browser.get("/segments/new?kind=static").await;
    form.assert_contains("Nova lista");
    form.assert_lacks("name=\"definition\"");
    let created = browser
        .submit(
            &form,
            "/segments/new",
            &[
                ("kind", "static"),
                ("name", "Convidados"),
                ("intent", "save"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let id = segment_of(created.location());
    let page = browser.get(&format!("/segments/{id}")).await;
    page.assert_contains("A lista está vazia.");

    // By id: one good, one that is no id, one twice.
    let typed = format!("{ana}, nao-e-id\n{ana}");
    let report = browser
        .submit(
            &page,
            &format!("/segments/{id}/members"),
            &[("ids", &typed)],
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    report.assert_contains("id=\"report-changed\">1</p>");
    report.assert_contains("id=\"report-rejected\">1</p>");
    report.assert_contains("Item 2");
    report.assert_contains("<code>nao-e-id</code>");
    report.assert_contains("Não é um ID de cliente (cus_…).");
    let empty = browser
        .submit(&page, &format!("/segments/{id}/members"), &[("ids", " ")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    empty.assert_contains("id=\"f-ids-error\">Digite pelo menos um ID de cliente.");

    // A CSV: Bruno by email, a line naming nobody, a bad email, Ana again.
    let csv = "nome;email\nBruno;bruno@example.com\nNinguém;ninguem@example.com\nErro;isto-nao-e-email\nAna;ana@example.com\n";
    let report = browser
        .send(multipart(
            &format!("/segments/{id}/upload"),
            &page.csrf(),
            "add",
            csv,
        ))
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    report.assert_contains("Resultado do arquivo: clientes adicionados");
    report.assert_contains("id=\"report-changed\">1</p>");
    report.assert_contains("id=\"report-unchanged\">1</p>");
    report.assert_contains("id=\"report-rejected\">2</p>");
    report.assert_contains("Linha 3");
    report.assert_contains("Nenhum cliente tem este identificador.");
    report.assert_contains("Linha 4");
    report.assert_contains("Não é um e-mail ou telefone válido.");
    report.assert_contains("id=\"member-count\">2</p>");
    let _ = carla;
    // A file without a column that names customers.
    let refused = browser
        .send(multipart(
            &format!("/segments/{id}/upload"),
            &page.csrf(),
            "add",
            "nome\nAna\n",
        ))
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_contains("id=\"f-file-error\">O arquivo precisa de uma coluna id, email");
    // The upload checks the token too.
    let forged = browser
        .send(multipart(
            &format!("/segments/{id}/upload"),
            "nope",
            "add",
            csv,
        ))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Removing one member.
    let page = browser.get(&format!("/segments/{id}")).await;
    page.assert_contains("Bruno Lima");
    let removed = browser
        .submit(
            &page,
            &format!("/segments/{id}/members/remove"),
            &[("customer", &bruno)],
        )
        .await;
    assert_eq!(
        removed.location(),
        format!("/segments/{id}?notice=member_removed#members")
    );
    let page = browser.get(&format!("/segments/{id}")).await;
    page.assert_contains("id=\"member-count\">1</p>");
    page.assert_lacks("Bruno Lima");

    // The 360 page lists the list, and the timeline says Ana was added.
    let profile = browser.get(&format!("/customers/{ana}")).await;
    profile.assert_contains(&format!("href=\"/segments/{id}\">Convidados</a>"));
    profile.assert_contains("Entrou na lista");
}

#[tokio::test]
async fn a_segment_others_include_cannot_be_deleted() {
    let app = TestApp::new();
    let base = create(&app, "Base", "dynamic", Some("city = \"Recife\""));
    let top = create(
        &app,
        "Topo",
        "dynamic",
        Some("in segment \"Base\" and orders_count > 0"),
    );
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let page = browser.get(&format!("/segments/{base}")).await;
    page.assert_contains("Usado pelos segmentos");
    let refused = browser
        .submit(&page, &format!("/segments/{base}/delete"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    refused.assert_contains("Não foi possível excluir.");
    refused.assert_contains(&format!("href=\"/segments/{top}/edit\">Topo</a>"));
    let deleted = browser
        .submit(&page, &format!("/segments/{top}/delete"), &[])
        .await;
    assert_eq!(deleted.location(), "/segments?notice=segment_deleted");
    let deleted = browser
        .submit(&page, &format!("/segments/{base}/delete"), &[])
        .await;
    assert_eq!(deleted.location(), "/segments?notice=segment_deleted");
    let list = browser.get("/segments").await;
    list.assert_contains("Nenhum segmento ou lista ainda.");
}

#[tokio::test]
async fn the_360_page_shows_stage_segments_and_their_events() {
    let app = TestApp::new();
    let (ana, _, carla) = people(&app).await;
    let recife = create(&app, "Recife", "dynamic", Some("city = \"Recife\""));
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let page = browser.get(&format!("/customers/{ana}")).await;
    page.assert_contains("id=\"lifecycle-stage\">Retenção</span>");
    page.assert_contains("Histórico de etapas");
    page.assert_contains(&format!("href=\"/segments/{recife}\">Recife</a>"));
    // Timeline: entering the segment and the stage change, as sentences with icons.
    page.assert_contains("Entrou no segmento <a href=\"/segments/");
    page.assert_contains("na criação do segmento");
    page.assert_contains("Etapa do ciclo de vida: ");
    page.assert_contains("class=\"event-icon system-segment_entered\"");
    page.assert_contains("class=\"event-icon system-stage_changed\"");
    page.assert_lacks("segment_id</dt>");

    // An event moves Carla into the segment; the evaluator keeps it current.
    let carla_id = ciclo_domain::ids::CustomerId::parse(&carla).unwrap();
    let mut patch = serde_json::Map::new();
    patch.insert("city".into(), json!("Recife"));
    app.ciclo
        .update_customer(&app.owner(), &carla_id, &patch)
        .unwrap();
    app.ciclo.evaluate_pending(100).unwrap();
    let page = browser.get(&format!("/customers/{carla}")).await;
    page.assert_contains(&format!("href=\"/segments/{recife}\">Recife</a>"));
    page.assert_lacks("na criação do segmento");
    page.assert_contains("Entrou no segmento");
    page.assert_contains("id=\"lifecycle-stage\">Alcance</span>");

    browser.accept_language = Some("en".into());
    let page = browser.get(&format!("/customers/{ana}")).await;
    page.assert_contains("id=\"lifecycle-stage\">Retention</span>");
    page.assert_contains("Entered the segment");
    page.assert_contains("Lifecycle stage: ");
}

#[tokio::test]
async fn customer_list_filters_by_stage_and_segment() {
    let app = TestApp::new();
    let (_, _, _) = people(&app).await;
    let natal = create(&app, "Natal", "dynamic", Some("city = \"Natal\""));
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let all = browser.get("/customers").await;
    assert_eq!(all.body.matches("name=\"ids\"").count(), 3);
    all.assert_contains("<option value=\"retention\">Retenção</option>");
    all.assert_contains(&format!("<option value=\"{natal}\">Natal</option>"));
    let retention = browser.get("/customers?stage=retention").await;
    assert_eq!(retention.body.matches("name=\"ids\"").count(), 1);
    retention.assert_contains("Ana Souza");
    retention.assert_contains("<option value=\"retention\" selected>Retenção</option>");
    // Stage and segment are not the JSON API's filters: the export goes to the console's.
    retention.assert_contains("href=\"&#x2f;customers&#x2f;export.csv?stage=retention\"");
    let reach = browser.get("/customers?stage=reach").await;
    assert_eq!(reach.body.matches("name=\"ids\"").count(), 2);
    let in_natal = browser.get(&format!("/customers?segment={natal}")).await;
    assert_eq!(in_natal.body.matches("name=\"ids\"").count(), 1);
    in_natal.assert_contains("Carla Dias");
    in_natal.assert_contains("Mostrando os membros de “Natal”.");
    let both = browser
        .get(&format!("/customers?segment={natal}&stage=retention"))
        .await;
    both.assert_contains("Nenhum cliente corresponde a estes filtros.");
    let export = browser.get("/customers/export.csv?stage=reach").await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.body.trim().lines().count(), 3, "{}", export.body);
    // Unknown values are ignored, not errors.
    let odd = browser.get("/customers?stage=sleeping&segment=nope").await;
    assert_eq!(odd.status, StatusCode::OK);
    assert_eq!(odd.body.matches("name=\"ids\"").count(), 3);
}

#[tokio::test]
async fn lifecycle_rules_form_checks_each_number() {
    let app = TestApp::new();
    people(&app).await;
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let settings = browser.get("/settings").await;
    settings.assert_contains("Regras do ciclo de vida");
    settings.assert_contains("id=\"lc-acquisition_days\"");
    settings.assert_contains("value=\"0,00\"");
    settings.assert_contains("Última compra há mais de 365 dias.");
    let fields = |acq: &'static str,
                  risk: &'static str,
                  lapsed: &'static str,
                  orders: &'static str,
                  spent: &'static str| {
        vec![
            ("acquisition_days", acq),
            ("at_risk_after_days", risk),
            ("lapsed_after_days", lapsed),
            ("loyalty_min_orders", orders),
            ("loyalty_min_spent", spent),
            ("intent", "save"),
        ]
    };
    let bad = browser
        .submit(
            &settings,
            "/settings/lifecycle",
            &fields("0", "abc", "100", "1", "-5"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_contains("id=\"lc-at_risk_after_days-error\">Digite um número inteiro, como 30.");
    bad.assert_contains("id=\"lc-loyalty_min_spent-error\">Digite um valor em reais");
    bad.assert_contains("value=\"abc\"");
    let bad = browser
        .submit(
            &settings,
            "/settings/lifecycle",
            &fields("0", "120", "100", "1", "1.500,00"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_contains("id=\"lc-acquisition_days-error\">Use de 1 a 3.650 dias.");
    bad.assert_contains(
        "id=\"lc-lapsed_after_days-error\">Precisa ser maior que o prazo de Em risco.",
    );
    bad.assert_contains("id=\"lc-loyalty_min_orders-error\">Use de 2 a 1.000 pedidos.");
    // Ana has two orders: with loyalty at two orders she is in Loyalty.
    let saved = browser
        .submit(
            &settings,
            "/settings/lifecycle",
            &fields("30", "120", "365", "2", "250,00"),
        )
        .await;
    assert_eq!(
        saved.location(),
        "/settings?notice=lifecycle_saved#lifecycle"
    );
    let rules = app.ciclo.lifecycle_rules(&app.owner()).unwrap();
    assert_eq!(rules.loyalty_min_orders, 2);
    assert_eq!(rules.loyalty_min_spent_minor, 25_000);
    let loyal = browser.get("/customers?stage=loyalty").await;
    loyal.assert_contains("Ana Souza");
    let settings = browser.get("/settings").await;
    settings.assert_contains("value=\"250,00\"");
    settings.assert_contains("Pelo menos 2 pedidos e R$ 250,00 gastos.");
    // Back to the defaults.
    let reset = browser
        .submit(&settings, "/settings/lifecycle", &[("intent", "defaults")])
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.ciclo.lifecycle_rules(&app.owner()).unwrap(),
        ciclo_domain::lifecycle::LifecycleRules::default()
    );

    // Only managers change them.
    let marketer = app.operator(ciclo_domain::operator::Role::Marketer);
    let mut other = app.signed_in(&marketer).await;
    let page = other.get("/settings").await;
    page.assert_lacks("action=\"/settings/lifecycle\"");
    page.assert_contains("Regras do ciclo de vida");
    let refused = other
        .submit(
            &page,
            "/settings/lifecycle",
            &fields("30", "120", "365", "5", "0"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn funnel_page_shows_the_stage_flow() {
    let app = TestApp::new();
    people(&app).await;
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let page = browser.get("/analytics/funnel").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("Movimentos entre etapas no período");
    // Everyone entered a first stage today (the evaluator's first pass).
    page.assert_contains("(primeira etapa)");
    page.assert_contains("<span class=\"badge flow-entered\">Entrada</span>");
    let old = browser
        .get("/analytics/funnel?from=2025-01-01&to=2025-02-01")
        .await;
    old.assert_contains("Nenhuma mudança de etapa registrada neste período.");
}

#[tokio::test]
async fn roles_without_write_see_segments_but_cannot_change_them() {
    let app = TestApp::new();
    let id = create(&app, "VIP", "static", None);
    let analyst = app.operator(ciclo_domain::operator::Role::Analyst);
    let mut browser = app.signed_in(&analyst).await;
    let list = browser.get("/segments").await;
    assert_eq!(list.status, StatusCode::OK);
    list.assert_lacks("href=\"/segments/new\"");
    let page = browser.get(&format!("/segments/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_lacks("/delete\"");
    page.assert_lacks("id=\"f-ids\"");
    page.assert_contains("export.csv");
    assert_eq!(
        browser.get("/segments/new").await.status,
        StatusCode::FORBIDDEN
    );
    let refused = browser
        .submit(&page, &format!("/segments/{id}/delete"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_count_history_is_drawn_day_by_day() {
    let app = TestApp::new();
    let (ana, bruno, _) = people(&app).await;
    let list = create(&app, "Dia a dia", "static", None);
    let id = SegmentId::parse(&list).unwrap();
    app.ciclo.add_to_list(&app.owner(), &id, &[ana]).unwrap();
    app.clock.advance(chrono::Duration::days(1));
    app.ciclo.add_to_list(&app.owner(), &id, &[bruno]).unwrap();
    app.clock.advance(chrono::Duration::days(1));
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let page = browser.get(&format!("/segments/{list}")).await;
    page.assert_lacks("id=\"history-starts\"");
    page.assert_contains("<svg class=\"chart\"");
    page.assert_contains("Número de membros no fim de cada dia, nos últimos 90 dias.");
    assert_eq!(page.body.matches("<circle class=\"chart-dot\"").count(), 3);
    page.assert_contains("01/06/2026 · 1</title>");
    page.assert_contains("02/06/2026 · 2</title>");
    page.assert_contains("03/06/2026 · 2</title>");
    browser.accept_language = Some("en".into());
    let page = browser.get(&format!("/segments/{list}")).await;
    page.assert_contains("Jun 2, 2026 · 2</title>");
}
