//! Every page renders for every role, in both languages; what a role cannot do is hidden, and
//! trying anyway shows the "not allowed" page.

use super::*;
use ciclo_domain::operator::Role;

const ROLES: [Role; 5] = [
    Role::Owner,
    Role::Admin,
    Role::Marketer,
    Role::Agent,
    Role::Analyst,
];

#[tokio::test]
async fn pages_render_for_each_role_in_both_languages() {
    let app = TestApp::new();
    let id =
        app.customer(json!({"name": "Ana Souza", "email": "ana@example.com", "tags": ["vip"]}));
    let dashboard_works = app.dashboard_works();
    for role in ROLES {
        let email = if role == Role::Owner {
            OWNER_EMAIL.to_string()
        } else {
            app.operator(role)
        };
        for language in ["pt-BR", "en"] {
            let mut browser = app.browser();
            browser.accept_language = Some(language.into());
            let signed = browser.sign_in(&email, PASSWORD).await;
            assert_eq!(signed.status, StatusCode::SEE_OTHER, "{role:?}");
            for path in [
                "/customers".to_string(),
                "/customers?search=ana&sort=name&has_ordered=false".into(),
                format!("/customers/{id}"),
                format!("/customers/{id}/timeline"),
                "/imports".into(),
                "/settings".into(),
                "/segments".into(),
                "/customers?stage=reach".into(),
            ] {
                let page = browser.get(&path).await;
                assert_eq!(
                    page.status,
                    StatusCode::OK,
                    "{role:?} {language} {path}:\n{}",
                    page.body
                );
                if !path.ends_with("/timeline") {
                    page.assert_contains(&format!("<html lang=\"{language}\">"));
                }
            }
            let home = browser.get("/").await;
            if dashboard_works {
                assert_eq!(home.status, StatusCode::OK, "{role:?} dashboard");
                assert!(home.body.matches("<svg class=\"chart\"").count() == 4);
            } else {
                assert_eq!(home.status, StatusCode::INTERNAL_SERVER_ERROR);
                home.assert_lacks("not yet implemented");
            }
        }
    }
}

#[tokio::test]
async fn actions_a_role_lacks_are_hidden_or_refused() {
    let app = TestApp::new();
    let id = app.customer(json!({"name": "Ana Souza"}));
    let profile_form = format!("action=\"/customers/{id}\"");

    // Analysts read and export, nothing else.
    let analyst = app.operator(Role::Analyst);
    let mut browser = app.signed_in(&analyst).await;
    let list = browser.get("/customers").await;
    list.assert_contains("Exportar CSV");
    list.assert_lacks("Adicionar etiqueta");
    list.assert_lacks("href=\"/imports\"");
    let profile = browser.get(&format!("/customers/{id}")).await;
    profile.assert_lacks(&profile_form);
    profile.assert_contains("Ana Souza");
    let refused = browser
        .submit(&profile, &format!("/customers/{id}"), &[("name", "X")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    refused.assert_contains("Acesso não permitido");
    let settings = browser.get("/settings").await;
    settings.assert_lacks("Chaves de API");
    settings.assert_contains("Só proprietários e administradores");
    let refused = browser
        .submit(
            &settings,
            "/settings/api-keys",
            &[("name", "k"), ("role", "analyst")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let imports = browser.get("/imports").await;
    imports.assert_lacks("enctype=\"multipart/form-data\"");

    // Agents edit but do not export.
    let agent = app.operator(Role::Agent);
    let mut browser = app.signed_in(&agent).await;
    let list = browser.get("/customers").await;
    list.assert_lacks("Exportar CSV");
    list.assert_contains("Adicionar etiqueta");
    browser
        .get(&format!("/customers/{id}"))
        .await
        .assert_contains(&profile_form);

    // Admins manage the workspace but cannot hand out ownership.
    let admin = app.operator(Role::Admin);
    let mut browser = app.signed_in(&admin).await;
    let settings = browser.get("/settings").await;
    settings.assert_contains("Chaves de API");
    settings.assert_lacks("<option value=\"owner\"");
}
