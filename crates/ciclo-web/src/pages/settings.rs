//! Settings: the operator's own language, two-factor sign-in (reserved), the workspace (name,
//! locale, time zone, currency), operators and their roles, and secret API keys.
//!
//! Sections an operator's role cannot change are shown read-only or not at all; core checks
//! every permission again. A new API key's secret is shown once, in the answer to the form
//! that created it (never stored in a cookie or URL), with a copy button.

use crate::pages::{field_messages, form_errors, see_other};
use crate::render;
use crate::session::{blocking, core, Console, ErrorPage, FormData, WebError};
use crate::WebState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ciclo_core::CoreError;
use ciclo_domain::ids::{ApiKeyId, OperatorId};
use ciclo_domain::operator::{Permission, Role};
use ciclo_domain::FieldError;
use minijinja::{context, Value};
use std::collections::BTreeMap;

const ROLES: &[&str] = &["owner", "admin", "marketer", "agent", "analyst"];
/// Suggestions for the time zone field (any IANA name is accepted).
const TIME_ZONES: &[&str] = &[
    "America/Sao_Paulo",
    "America/Manaus",
    "America/Belem",
    "America/Fortaleza",
    "America/Recife",
    "America/Cuiaba",
    "America/Porto_Velho",
    "America/Rio_Branco",
    "America/Noronha",
    "America/Argentina/Buenos_Aires",
    "America/Santiago",
    "America/Bogota",
    "America/Mexico_City",
    "America/New_York",
    "Europe/Lisbon",
    "Europe/London",
    "UTC",
];
const CURRENCIES: &[&str] = &["BRL", "USD", "EUR", "GBP", "ARS", "CLP", "MXN"];

/// What a settings form sends back to the page besides the data: errors per section, the
/// values typed, a new key's secret.
#[derive(Default)]
struct Extras {
    workspace_errors: Vec<FieldError>,
    workspace_form: Option<BTreeMap<&'static str, String>>,
    invite_errors: Vec<FieldError>,
    invite_form: Option<BTreeMap<&'static str, String>>,
    key_errors: Vec<FieldError>,
    new_key: Option<(String, String)>,
}

async fn render_settings(
    state: &WebState,
    console: &Console,
    extras: Extras,
    status: StatusCode,
) -> Result<Response, WebError> {
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let can_manage = console.can(Permission::ManageWorkspace);
    let (operators, keys) = core(move || {
        let operators = ciclo.list_operators(&actor)?;
        let keys = if can_manage {
            ciclo.list_api_keys(&actor)?
        } else {
            Vec::new()
        };
        Ok((operators, keys))
    })
    .await?;
    let me = console.actor.operator_id.clone();
    let operators: Vec<Value> = operators
        .iter()
        .map(|(op, role)| {
            context! {
                id => op.id.as_str(),
                name => op.name.as_str(),
                email => op.email.as_str(),
                role => role.as_str(),
                is_me => me.as_ref() == Some(&op.id),
            }
        })
        .collect();
    let ws = &console.actor.workspace;
    let workspace_form = extras.workspace_form.unwrap_or_else(|| {
        BTreeMap::from([
            ("name", ws.name.clone()),
            ("locale", ws.locale.clone()),
            ("time_zone", ws.time_zone.clone()),
            ("currency", ws.currency.clone()),
        ])
    });
    let invite_form = extras.invite_form.unwrap_or_else(|| {
        BTreeMap::from([
            ("email", String::new()),
            ("name", String::new()),
            ("role", "agent".to_string()),
        ])
    });
    let assignable: Vec<&str> = ROLES
        .iter()
        .copied()
        .filter(|r| *r != "owner" || console.can(Permission::OwnWorkspace))
        .collect();
    let locale = console.locale;
    let values = context! {
        workspace => context! { write_key => ws.write_key.as_str(), id => ws.id.as_str() },
        workspace_form => workspace_form,
        workspace_errors => field_messages(locale, &extras.workspace_errors),
        invite_form => invite_form,
        invite_errors => field_messages(locale, &extras.invite_errors),
        key_errors => field_messages(locale, &extras.key_errors),
        new_key => extras.new_key.map(|(name, secret)| context! { name => name, secret => secret }),
        operators => operators,
        api_keys => Value::from_serialize(&keys),
        roles => ROLES,
        assignable_roles => assignable,
        time_zones => TIME_ZONES,
        currencies => CURRENCIES,
        my_language => if console.language_chosen { locale.code() } else { "auto" },
    };
    render::page_with_status(
        &state.templates,
        console,
        "settings.html",
        "settings",
        values,
        status,
    )
}

/// `GET /settings`.
pub(crate) async fn page(
    State(state): State<WebState>,
    console: Console,
) -> Result<Response, WebError> {
    render_settings(&state, &console, Extras::default(), StatusCode::OK).await
}

fn invalid_or_page(error: CoreError) -> Result<Vec<FieldError>, WebError> {
    form_errors(&error).ok_or_else(|| error.into())
}

/// `POST /settings/workspace`.
pub(crate) async fn update_workspace(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::ManageWorkspace)?;
    let values: BTreeMap<&'static str, String> = ["name", "locale", "time_zone", "currency"]
        .into_iter()
        .map(|k| (k, form.text(k)))
        .collect();
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let sent = values.clone();
    let outcome = blocking(move || {
        let currency = sent["currency"].to_uppercase();
        ciclo.update_workspace(
            &actor,
            Some(&sent["name"]),
            Some(&sent["locale"]),
            Some(&sent["time_zone"]),
            Some(&currency),
        )
    })
    .await?;
    match outcome {
        Ok(_) => Ok(see_other("/settings?notice=workspace_saved")),
        Err(error) => {
            let extras = Extras {
                workspace_errors: invalid_or_page(error)?,
                workspace_form: Some(values),
                ..Default::default()
            };
            render_settings(&state, &console, extras, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

fn parse_role(form: &FormData) -> Result<Role, FieldError> {
    Role::parse(&form.text("role"))
}

/// `POST /settings/operators`: invites an operator with an initial password.
pub(crate) async fn add_operator(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::ManageWorkspace)?;
    let typed: BTreeMap<&'static str, String> = ["email", "name", "role"]
        .into_iter()
        .map(|k| (k, form.text(k)))
        .collect();
    let password = form.get("password").unwrap_or_default().to_string();
    let outcome = match parse_role(&form) {
        Err(e) => Err(CoreError::Invalid(vec![e])),
        Ok(role) => {
            let ciclo = state.ciclo.clone();
            let actor = console.actor.clone();
            let (email, name) = (typed["email"].clone(), typed["name"].clone());
            blocking(move || ciclo.add_operator(&actor, &email, &name, role, &password)).await?
        }
    };
    match outcome {
        Ok(_) => Ok(see_other("/settings?notice=operator_added#operators")),
        Err(error) => {
            let extras = Extras {
                invite_errors: invalid_or_page(error)?,
                invite_form: Some(typed),
                ..Default::default()
            };
            render_settings(&state, &console, extras, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

fn parse_operator(raw: &str) -> Result<OperatorId, WebError> {
    OperatorId::parse(raw).map_err(|_| WebError::Page(ErrorPage::NotFound))
}

/// A conflict from a role change or removal, as the alert to show on the settings page.
fn operator_alert(error: CoreError) -> Result<Response, WebError> {
    match error {
        CoreError::Conflict(e) if e.code == "last_owner" => {
            Ok(see_other("/settings?alert=last_owner#operators"))
        }
        CoreError::Conflict(e) if e.code == "cannot_remove_self" => {
            Ok(see_other("/settings?alert=cannot_remove_self#operators"))
        }
        other => Err(other.into()),
    }
}

/// `POST /settings/operators/{id}/role`.
pub(crate) async fn change_role(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::ManageWorkspace)?;
    let operator = parse_operator(&id)?;
    let role = parse_role(&form).map_err(|_| WebError::Page(ErrorPage::BadRequest))?;
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    match blocking(move || ciclo.change_role(&actor, &operator, role)).await? {
        Ok(()) => Ok(see_other("/settings?notice=role_changed#operators")),
        Err(error) => operator_alert(error),
    }
}

/// `POST /settings/operators/{id}/remove`: takes the operator out of this workspace.
pub(crate) async fn remove_operator(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    console.form(&body)?;
    console.require(Permission::ManageWorkspace)?;
    let operator = parse_operator(&id)?;
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    match blocking(move || ciclo.remove_operator(&actor, &operator)).await? {
        Ok(()) => Ok(see_other("/settings?notice=operator_removed#operators")),
        Err(error) => operator_alert(error),
    }
}

/// `POST /settings/api-keys`: creates a key and shows its secret, once.
pub(crate) async fn create_api_key(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::ManageWorkspace)?;
    let name = form.text("name");
    let outcome = match parse_role(&form) {
        Err(e) => Err(CoreError::Invalid(vec![e])),
        Ok(role) => {
            let ciclo = state.ciclo.clone();
            let actor = console.actor.clone();
            let key_name = name.clone();
            blocking(move || ciclo.create_api_key(&actor, &key_name, role)).await?
        }
    };
    let extras = match outcome {
        Ok((key, secret)) => Extras {
            new_key: Some((key.name, secret)),
            ..Default::default()
        },
        Err(error) => Extras {
            key_errors: invalid_or_page(error)?,
            ..Default::default()
        },
    };
    let status = if extras.key_errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_settings(&state, &console, extras, status).await
}

/// `POST /settings/api-keys/{id}/revoke`.
pub(crate) async fn revoke_api_key(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    console.form(&body)?;
    console.require(Permission::ManageWorkspace)?;
    let key = ApiKeyId::parse(&id).map_err(|_| WebError::Page(ErrorPage::NotFound))?;
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    core(move || ciclo.revoke_api_key(&actor, &key)).await?;
    Ok(see_other("/settings?notice=key_revoked#api-keys"))
}
