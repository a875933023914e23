//! What operators do, page by page: sign in and out, the customer list, the 360 page with its
//! form, un-merge, imports, settings, the language, and the error pages.

use super::*;
use axum::http::header;

#[tokio::test]
async fn sign_in_out_and_back_to_where_you_were_going() {
    let app = TestApp::new();
    let mut browser = app.browser();
    let away = browser.get("/customers?search=ana").await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert_eq!(away.location(), "/login?next=%2Fcustomers%3Fsearch%3Dana");

    let wrong = browser.sign_in(OWNER_EMAIL, "wrong password!").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong.assert_contains("E-mail ou senha incorretos.");
    browser.accept_language = Some("en".into());
    let wrong = browser.sign_in(OWNER_EMAIL, "wrong password!").await;
    wrong.assert_contains("Wrong email or password.");

    let form = browser.get("/login?next=%2Fcustomers%3Fsearch%3Dana").await;
    let token = form.hidden("login_token");
    let next = unescape(&form.hidden("next"));
    let signed = browser
        .post(
            "/login",
            &[
                ("login_token", &token),
                ("email", OWNER_EMAIL),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(signed.location(), "/customers?search=ana");

    // An outside address is never followed.
    let form = browser.get("/login").await;
    let token = form.hidden("login_token");
    let signed = browser
        .post(
            "/login",
            &[
                ("login_token", &token),
                ("email", OWNER_EMAIL),
                ("password", PASSWORD),
                ("next", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(signed.location(), "/");

    let page = browser.get("/customers").await;
    let out = browser.submit(&page, "/logout", &[]).await;
    assert_eq!(out.location(), "/login");
    assert!(!browser.cookies.contains_key(ciclo_web::SESSION_COOKIE));
    assert_eq!(
        browser.get("/customers").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn customer_list_search_filters_sorting_and_pagination() {
    let app = TestApp::new();
    for i in 0..30 {
        app.customer(json!({
            "name": format!("Cliente {i:02}"),
            "email": format!("c{i}@example.com"),
            "city": if i % 2 == 0 { "Recife" } else { "Natal" },
        }));
    }
    app.customer(json!({"name": "Ana Souza", "phone": "+55 11 98765-4321", "tags": ["vip"]}));
    let mut browser = app.signed_in(OWNER_EMAIL).await;

    let first = browser.get("/customers").await;
    assert_eq!(first.body.matches("name=\"ids\"").count(), 25);
    let next = first.body.split("rel=\"next\"").next().unwrap();
    let href = next
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let href = unescape(href);
    let second = browser.get(&href).await;
    assert_eq!(second.body.matches("name=\"ids\"").count(), 6);
    second.assert_contains("rel=\"prev\"");
    second.assert_lacks("rel=\"next\"");
    // Keyset pages neither skip nor repeat anyone.
    let ids = |page: &Page| -> Vec<String> {
        page.body
            .split("name=\"ids\" value=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect()
    };
    let mut all = ids(&first);
    all.extend(ids(&second));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 31);
    let prev = second.body.split("rel=\"prev\"").next().unwrap();
    let prev = unescape(
        prev.rsplit("href=\"")
            .next()
            .unwrap()
            .split('"')
            .next()
            .unwrap(),
    );
    assert_eq!(ids(&browser.get(&prev).await), ids(&first));

    let found = browser.get("/customers?search=98765").await;
    assert_eq!(found.body.matches("name=\"ids\"").count(), 1);
    found.assert_contains("Ana Souza");
    found.assert_contains("+55 11 98765-4321");
    let tagged = browser.get("/customers?tag=vip").await;
    assert_eq!(tagged.body.matches("name=\"ids\"").count(), 1);
    let city = browser.get("/customers?city=Recife").await;
    assert_eq!(city.body.matches("name=\"ids\"").count(), 15);
    let by_name = browser.get("/customers?sort=name").await;
    let ana = by_name.body.find("Ana Souza").unwrap();
    let cliente = by_name.body.find("Cliente 00").unwrap();
    assert!(ana < cliente, "A to Z");
    // The export link carries the same filters to the API's CSV export.
    city.assert_contains("href=\"&#x2f;api&#x2f;v1&#x2f;exports&#x2f;customers.csv?city=Recife\"");

    let bad = browser.get("/customers?seen_after=31/02/2026").await;
    assert_eq!(bad.status, StatusCode::OK);
    bad.assert_contains("Digite uma data válida.");
    let mangled = browser.get("/customers?cursor=not-a-cursor").await;
    assert_eq!(mangled.status, StatusCode::OK, "a bad cursor starts over");
}

#[tokio::test]
async fn bulk_tagging() {
    let app = TestApp::new();
    let a = app.customer(json!({"name": "A", "tags": ["old"]}));
    let b = app.customer(json!({"name": "B"}));
    let c = app.customer(json!({"name": "C"}));
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let page = browser.get("/customers?city=").await;
    let done = browser
        .submit(
            &page,
            "/customers/bulk-tag",
            &[
                ("return_to", "sort=name"),
                ("ids", &a),
                ("ids", &b),
                ("tag", "black-friday"),
            ],
        )
        .await;
    assert_eq!(done.location(), "/customers?sort=name&notice=tagged");
    let owner = app.owner();
    let tags = |id: &str| {
        app.ciclo
            .get_customer(&owner, &ciclo_domain::ids::CustomerId::parse(id).unwrap())
            .unwrap()
            .customer
            .tags
    };
    assert_eq!(tags(&a), vec!["old", "black-friday"]);
    assert_eq!(tags(&b), vec!["black-friday"]);
    assert!(tags(&c).is_empty());
    browser
        .get(done.location())
        .await
        .assert_contains("Etiqueta adicionada");

    let none = browser
        .submit(
            &page,
            "/customers/bulk-tag",
            &[("return_to", ""), ("tag", "x")],
        )
        .await;
    assert_eq!(none.location(), "/customers?alert=none_selected");
}

#[tokio::test]
async fn customer_360_shows_profile_orders_and_timeline() {
    let app = TestApp::new();
    let id =
        app.customer(json!({"name": "Ana Souza", "email": "ana@example.com", "user_id": "ana-1"}));
    let mut events = vec![json!({
        "type": "track", "userId": "ana-1", "event": "Order Completed", "messageId": "o1",
        "timestamp": "2026-05-20T15:00:00Z",
        "properties": {"order_id": "PED-1", "total": 1234.56, "currency": "BRL",
            "products": [{"sku": "CAM-1", "name": "Camiseta", "price": 1234.56, "quantity": 1}]},
    })];
    for i in 0..25 {
        events.push(json!({
            "type": "page", "userId": "ana-1", "name": format!("Página {i}"), "messageId": format!("p{i}"),
            "timestamp": format!("2026-05-{:02}T10:00:00Z", i + 1),
        }));
    }
    events.push(json!({"type": "track", "userId": "ana-1", "event": "Message Received", "messageId": "w1",
        "timestamp": "2026-05-30T10:00:00Z", "properties": {"channel": "whatsapp", "text": "<b>oi</b>"}}));
    app.ingest(json!(events)).await;
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let page = browser.get(&format!("/customers/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("<h1>Ana Souza</h1>");
    page.assert_contains("Pedido PED-1");
    page.assert_contains("R$ 1.234,56");
    page.assert_contains("Camiseta");
    page.assert_contains("ana@example.com");
    page.assert_contains("Visitou a página: Página 24");
    page.assert_contains("&lt;b&gt;oi&lt;&#x2f;b&gt;");
    page.assert_contains("Em breve."); // reserved panels
    assert_eq!(page.body.matches("<li class=\"event").count(), 20);
    // The next page, as the fragment the script appends and as the no-script link.
    let more = page
        .body
        .split("data-fragment=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let fragment = browser.get(&unescape(more)).await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(!fragment.body.contains("<html"));
    assert_eq!(fragment.body.matches("<li class=\"event").count(), 7);
    let whatsapp = browser
        .get(&format!("/customers/{id}?channel=whatsapp"))
        .await;
    assert_eq!(whatsapp.body.matches("<li class=\"event").count(), 1);
    let unknown = browser
        .get(&format!("/customers/{id}?channel=carrier-pigeon"))
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::OK,
        "unknown filters are ignored"
    );
}

#[tokio::test]
async fn editing_the_profile_shows_errors_next_to_the_fields() {
    let app = TestApp::new();
    let id = app.customer(json!({"name": "Ana", "email": "ana@example.com"}));
    app.customer(json!({"name": "Bia", "email": "bia@example.com"}));
    let path = format!("/customers/{id}");
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let page = browser.get(&path).await;
    let fields = |email: &'static str, phone: &'static str| {
        vec![
            ("name", "Ana Souza"),
            ("email", email),
            ("phone", phone),
            ("city", "Campinas"),
            ("tags", "vip, newsletter"),
            ("birthday", "1990-05-17"),
        ]
    };

    let bad = browser.submit(&page, &path, &fields("ana@@x", "123")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_contains("id=\"f-email-error\">Digite um e-mail válido");
    bad.assert_contains("id=\"f-phone-error\">Digite um telefone válido");
    bad.assert_contains("aria-invalid=\"true\"");
    bad.assert_contains("value=\"ana@@x\""); // what was typed stays
    bad.assert_contains("Corrija o seguinte:");
    bad.assert_lacks("invalid_email");

    browser.accept_language = Some("en-US".into());
    let bad = browser.submit(&page, &path, &fields("ana@@x", "")).await;
    bad.assert_contains("id=\"f-email-error\">Enter a valid email address");

    let taken = browser
        .submit(&page, &path, &fields("bia@example.com", ""))
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    taken.assert_contains("This already belongs to another customer.");

    let saved = browser
        .submit(&page, &path, &fields("ana@example.com", "(11) 98765-4321"))
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let shown = browser.get(saved.location()).await;
    shown.assert_contains("Changes saved.");
    shown.assert_contains("value=\"Campinas\"");
    shown.assert_contains("value=\"vip, newsletter\"");
    shown.assert_contains("value=\"+5511987654321\"");
    shown.assert_contains("value=\"1990-05-17\"");
}

#[tokio::test]
async fn un_merge_from_the_merge_history() {
    let app = TestApp::new();
    let winner = app.customer(json!({"name": "Carla", "email": "carla@example.com"}));
    let loser = app.customer(json!({"phone": "+55 21 99876-5432"}));
    let owner = app.owner();
    let id = |s: &str| ciclo_domain::ids::CustomerId::parse(s).unwrap();
    app.ciclo
        .merge_customers(&owner, &id(&winner), &id(&loser), false)
        .unwrap();
    let mut browser = app.signed_in(OWNER_EMAIL).await;

    // The loser's address leads to the merged profile.
    let redirect = browser.get(&format!("/customers/{loser}")).await;
    assert_eq!(redirect.location(), format!("/customers/{winner}"));
    let page = browser.get(&format!("/customers/{winner}")).await;
    page.assert_contains("+55 21 99876-5432");
    page.assert_contains("Desfazer mesclagem");
    let merge = page
        .body
        .split("action=\"/merges/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let undone = browser
        .submit(
            &page,
            &format!("/merges/{merge}/undo"),
            &[("customer", &winner)],
        )
        .await;
    assert_eq!(
        undone.location(),
        format!("/customers/{winner}?notice=unmerged#identities")
    );
    let after = browser
        .get(&format!("/customers/{winner}?notice=unmerged"))
        .await;
    after.assert_contains("Mesclagem desfeita");
    after.assert_contains("Desfeita em");
    after.assert_lacks("+55 21 99876-5432");
    assert_eq!(
        browser.get(&format!("/customers/{loser}")).await.status,
        StatusCode::OK
    );

    // Undoing twice tells the operator instead of failing.
    let again = browser
        .submit(
            &page,
            &format!("/merges/{merge}/undo"),
            &[("customer", &winner)],
        )
        .await;
    assert_eq!(
        again.location(),
        format!("/customers/{winner}?alert=unmerge_failed#identities")
    );
}

fn multipart(csrf: &str, kind: &str, file: &str) -> Request<Body> {
    let body = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\n{kind}\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clientes.csv\"\r\nContent-Type: text/csv\r\n\r\n{file}\r\n--XyZ--\r\n"
    );
    Request::post("/imports")
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn import_with_mapping_progress_result_and_rejected_rows_report() {
    let app = TestApp::new();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let start = browser.get("/imports").await;
    let csv = "Nome;E-mail;Celular;Cor favorita\nDiego;diego@example.com;;azul\nErro;nao-e-email;;verde\nFabi;fabi@example.com;;rosa\n";
    let mapping = browser
        .send(multipart(&start.csrf(), "customers", csv))
        .await;
    assert_eq!(mapping.status, StatusCode::OK, "{}", mapping.body);
    mapping.assert_contains("Associe as colunas");
    mapping.assert_contains("<option value=\"email\" selected>E-mail</option>");
    mapping.assert_contains("Guardar como atributo “Cor favorita”");
    let action = mapping
        .body
        .split("action=\"/imports/uploads/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let path = format!("/imports/uploads/{action}");

    // A different mapping: the preview follows it.
    let preview = browser
        .submit(
            &mapping,
            &path,
            &[
                ("action", "preview"),
                ("col_0", "name"),
                ("col_1", "email"),
                ("col_2", "ignore"),
                ("col_3", "trait:Cor favorita"),
            ],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    preview.assert_contains("<option value=\"trait:Cor favorita\" selected>");

    let started = browser
        .submit(
            &preview,
            &path,
            &[
                ("action", "run"),
                ("col_0", "name"),
                ("col_1", "email"),
                ("col_2", "whatsapp"),
                ("col_3", "ignore"),
            ],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    let mut location = started.location().to_string();
    assert!(location.starts_with("/imports/jobs/"));
    for _ in 0..400 {
        let progress = browser.get(&location).await;
        if progress.status == StatusCode::SEE_OTHER {
            location = progress.location().to_string();
            break;
        }
        progress.assert_contains("http-equiv=\"refresh\"");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(location.starts_with("/imports/imp_"), "{location}");
    let result = browser.get(&location).await;
    result.assert_contains("Resultado da importação");
    result.assert_contains("Digite um e-mail válido");
    result.assert_contains("Baixar linhas rejeitadas (CSV)");
    let report = browser.get(&format!("{location}/rejected.csv")).await;
    assert_eq!(
        report.headers[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert!(report.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let lines: Vec<&str> = report.body.lines().collect();
    assert_eq!(lines[0], "line,code,field,reason");
    assert!(
        lines[1].starts_with("3,invalid_email,email,\"Digite um e-mail válido"),
        "{}",
        lines[1]
    );
    assert_eq!(lines.len(), 2);
    browser
        .get("/imports")
        .await
        .assert_contains("clientes.csv");

    // The staged file is gone once run; an unknown upload token says so.
    let gone = browser.submit(&start, &path, &[("action", "run")]).await;
    assert_eq!(gone.location(), "/imports?alert=upload_expired");
    // An orders file gets the orders fields.
    let orders = browser
        .send(multipart(
            &start.csrf(),
            "orders",
            "Pedido,E-mail,Valor,Data\nPED-1,a@b.co,10.00,2026-05-01\n",
        ))
        .await;
    assert_eq!(orders.status, StatusCode::OK);
    orders.assert_contains("<option value=\"order_id\" selected>Número do pedido</option>");
    orders.assert_contains("<option value=\"total\" selected>Total do pedido</option>");
    orders.assert_lacks("Guardar como atributo");
    // Not a CSV, and no file.
    let not_csv = browser.send(multipart(&start.csrf(), "orders", "")).await;
    assert_eq!(not_csv.status, StatusCode::UNPROCESSABLE_ENTITY);
    not_csv.assert_contains("Escolha um arquivo CSV");
}

#[tokio::test]
async fn settings_operators_and_api_keys() {
    let app = TestApp::new();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let page = browser.get("/settings").await;

    let weak = browser
        .submit(
            &page,
            "/settings/operators",
            &[
                ("email", "nina@loja.com.br"),
                ("name", "Nina"),
                ("role", "agent"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    weak.assert_contains("id=\"invite-password-error\">Use pelo menos 10 caracteres.");
    weak.assert_contains("value=\"nina@loja.com.br\"");
    let added = browser
        .submit(
            &page,
            "/settings/operators",
            &[
                ("email", "nina@loja.com.br"),
                ("name", "Nina"),
                ("role", "agent"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        added.location(),
        "/settings?notice=operator_added#operators"
    );
    let page = browser.get("/settings").await;
    page.assert_contains("nina@loja.com.br");
    let nina = page
        .body
        .split("action=\"/settings/operators/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let changed = browser
        .submit(
            &page,
            &format!("/settings/operators/{nina}/role"),
            &[("role", "marketer")],
        )
        .await;
    assert_eq!(
        changed.location(),
        "/settings?notice=role_changed#operators"
    );
    let removed = browser
        .submit(&page, &format!("/settings/operators/{nina}/remove"), &[])
        .await;
    assert_eq!(
        removed.location(),
        "/settings?notice=operator_removed#operators"
    );

    let unnamed = browser
        .submit(
            &page,
            "/settings/api-keys",
            &[("name", " "), ("role", "analyst")],
        )
        .await;
    assert_eq!(unnamed.status, StatusCode::UNPROCESSABLE_ENTITY);
    unnamed.assert_contains("id=\"key-name-error\">Digite um nome");
    let created = browser
        .submit(
            &page,
            "/settings/api-keys",
            &[("name", "Loja virtual"), ("role", "analyst")],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK);
    created.assert_contains("Chave “Loja virtual” criada");
    let secret = created
        .body
        .split("id=\"new-secret\" type=\"text\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(secret.starts_with("sk_"));
    assert!(app.ciclo.authenticate_api_key(secret).is_ok());
    let again = browser.get("/settings").await;
    again.assert_lacks(secret);
    let key = again
        .body
        .split("action=\"/settings/api-keys/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let revoked = browser
        .submit(&again, &format!("/settings/api-keys/{key}/revoke"), &[])
        .await;
    assert_eq!(revoked.location(), "/settings?notice=key_revoked#api-keys");
    assert!(app.ciclo.authenticate_api_key(secret).is_err());

    let bad = browser
        .submit(
            &again,
            "/settings/workspace",
            &[
                ("name", "Loja Nova"),
                ("locale", "pt-BR"),
                ("time_zone", "Mars/Olympus"),
                ("currency", "brl"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_contains("id=\"ws-time_zone-error\">Fuso horário desconhecido");
    let saved = browser
        .submit(
            &again,
            "/settings/workspace",
            &[
                ("name", "Loja Nova"),
                ("locale", "en"),
                ("time_zone", "America/Manaus"),
                ("currency", "usd"),
            ],
        )
        .await;
    assert_eq!(saved.location(), "/settings?notice=workspace_saved");
    let page = browser.get("/settings").await;
    page.assert_contains("Loja Nova");
    page.assert_contains("value=\"USD\"");
}

#[tokio::test]
async fn language_from_preference_then_browser_then_workspace() {
    let app = TestApp::new();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    browser.accept_language = Some("en-US,en;q=0.9".into());
    let english = browser.get("/customers").await;
    english.assert_contains("<h1>Customers</h1>");
    let chosen = browser
        .submit(
            &english,
            "/language",
            &[("lang", "pt-BR"), ("next", "/customers?search=x")],
        )
        .await;
    assert_eq!(chosen.location(), "/customers?search=x");
    browser
        .get("/customers")
        .await
        .assert_contains("<h1>Clientes</h1>");
    let settings = browser.get("/settings").await;
    settings.assert_contains("<option value=\"pt-BR\" lang=\"pt-BR\" selected>");
    browser
        .submit(
            &settings,
            "/language",
            &[("lang", "auto"), ("next", "/settings")],
        )
        .await;
    browser
        .get("/customers")
        .await
        .assert_contains("<h1>Customers</h1>");
    // No preference and a browser asking for neither language: the workspace's (pt-BR).
    browser.accept_language = Some("de-DE".into());
    browser
        .get("/customers")
        .await
        .assert_contains("<h1>Clientes</h1>");
    // Never an outside address after the change.
    let page = browser.get("/customers").await;
    let out = browser
        .submit(
            &page,
            "/language",
            &[("lang", "en"), ("next", "https://evil.example")],
        )
        .await;
    assert_eq!(out.location(), "/");
}

#[tokio::test]
async fn the_chosen_language_is_saved_on_the_account_and_follows_to_a_new_device() {
    let app = TestApp::new();
    let mut laptop = app.signed_in(OWNER_EMAIL).await;
    let page = laptop.get("/customers").await;
    page.assert_contains("<h1>Clientes</h1>");
    laptop
        .submit(
            &page,
            "/language",
            &[("lang", "en"), ("next", "/customers")],
        )
        .await;
    // A phone with no cookies and a Portuguese browser signs in: English, from the account.
    let mut phone = app.browser();
    phone.accept_language = Some("pt-BR".into());
    let signed = phone.sign_in(OWNER_EMAIL, PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    phone
        .get("/customers")
        .await
        .assert_contains("<h1>Customers</h1>");
    // Going back to "follow the browser" clears it on the account too.
    let page = laptop.get("/settings").await;
    laptop
        .submit(
            &page,
            "/language",
            &[("lang", "auto"), ("next", "/settings")],
        )
        .await;
    let mut tablet = app.browser();
    tablet.accept_language = Some("pt-BR".into());
    tablet.sign_in(OWNER_EMAIL, PASSWORD).await;
    tablet
        .get("/customers")
        .await
        .assert_contains("<h1>Clientes</h1>");
}

#[tokio::test]
async fn user_data_is_escaped() {
    let app = TestApp::new();
    let id = app.customer(
        json!({"name": "<script>alert('x')</script>", "city": "\"><img src=x>", "tags": ["<b>"]}),
    );
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    for path in ["/customers".to_string(), format!("/customers/{id}")] {
        let page = browser.get(&path).await;
        page.assert_lacks("<script>alert");
        page.assert_lacks("<img src=x>");
        page.assert_lacks("<b></span>");
        page.assert_contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt;");
    }
}

#[tokio::test]
async fn error_pages_are_friendly_and_say_nothing_of_the_cause() {
    let app = TestApp::new();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let missing = browser
        .get("/customers/cus_01aaaaaaaaaaaaaaaaaaaaaaaa")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.assert_contains("Página não encontrada");
    let malformed = browser.get("/customers/not-an-id").await;
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
    let no_import = browser.get("/imports/imp_01aaaaaaaaaaaaaaaaaaaaaaaa").await;
    assert_eq!(no_import.status, StatusCode::NOT_FOUND);

    app.store
        .failing
        .store(true, std::sync::atomic::Ordering::Relaxed);
    browser.accept_language = Some("en".into());
    let broken = browser.get("/customers").await;
    assert_eq!(broken.status, StatusCode::INTERNAL_SERVER_ERROR);
    broken.assert_contains("Something went wrong");
    broken.assert_lacks("SECRET-DETAIL");
    broken.assert_lacks("/var/lib");
    app.store
        .failing
        .store(false, std::sync::atomic::Ordering::Relaxed);
}

#[tokio::test]
async fn workspace_switcher() {
    let app = TestApp::new();
    let second = app
        .ciclo
        .create_workspace_with_owner(
            ciclo_core::accounts::NewWorkspace {
                name: "Filial Rio".into(),
                ..Default::default()
            },
            OWNER_EMAIL,
            "Owner",
            PASSWORD,
        )
        .unwrap();
    let mut browser = app.signed_in(OWNER_EMAIL).await;
    let page = browser.get("/customers").await;
    page.assert_contains("action=\"/switch-workspace\"");
    page.assert_contains("Filial Rio");
    let before = browser.cookies[ciclo_web::SESSION_COOKIE].clone();
    let switched = browser
        .submit(
            &page,
            "/switch-workspace",
            &[("workspace_id", second.id.as_str())],
        )
        .await;
    assert_eq!(switched.location(), "/?notice=switched");
    assert_ne!(browser.cookies[ciclo_web::SESSION_COOKIE], before);
    let page = browser.get("/settings").await;
    page.assert_contains("value=\"Filial Rio\"");
}

#[tokio::test]
async fn assets_are_served() {
    let app = TestApp::new();
    let mut browser = app.browser();
    for (path, kind) in [
        ("/assets/console.css", "text/css"),
        ("/assets/console.js", "text/javascript"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let asset = browser.get(path).await;
        assert_eq!(asset.status, StatusCode::OK);
        assert!(asset.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with(kind));
    }
}
