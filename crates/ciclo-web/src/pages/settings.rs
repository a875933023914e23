//! Settings: the operator's own language and two-factor sign-in, the workspace (name, locale,
//! time zone, currency), operators and their roles, and secret API keys.
//!
//! Sections an operator's role cannot change are shown read-only or not at all; core checks
//! every permission again. A new API key's secret is shown once, in the answer to the form
//! that created it (never stored in a cookie or URL), with a copy button.
//!
//! Two-factor sign-in (TOTP) is the operator's own, whatever the role: "set up" starts an
//! enrolment and shows its QR code and key (`?two_factor=setup`, the key itself never in the
//! URL), a first code turns it on and answers with the ten recovery codes, shown that once; a
//! current code or a recovery code turns it off.

use crate::format::{
    currency_label, format_integer, format_minor, format_money, parse_integer, parse_money_minor,
};
use crate::i18n::{fill, Locale};
use crate::pages::{field_messages, form_errors, see_other};
use crate::render::{self, query_param};
use crate::session::{blocking, core, Console, ErrorPage, FormData, WebError};
use crate::WebState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ciclo_core::mfa::TotpStatus;
use ciclo_core::CoreError;
use ciclo_domain::ids::{ApiKeyId, OperatorId};
use ciclo_domain::lifecycle::LifecycleRules;
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
    two_factor: TwoFactorForm,
    lifecycle_errors: Vec<FieldError>,
    lifecycle_form: Option<BTreeMap<&'static str, String>>,
}

/// The fields of the lifecycle rules form, in order (money in major units, as typed).
const LIFECYCLE_FIELDS: &[&str] = &[
    "acquisition_days",
    "at_risk_after_days",
    "lapsed_after_days",
    "loyalty_min_orders",
    "loyalty_min_spent",
];

/// The rules as the form shows them.
fn lifecycle_form(rules: &LifecycleRules, locale: Locale) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("acquisition_days", rules.acquisition_days.to_string()),
        ("at_risk_after_days", rules.at_risk_after_days.to_string()),
        ("lapsed_after_days", rules.lapsed_after_days.to_string()),
        ("loyalty_min_orders", rules.loyalty_min_orders.to_string()),
        (
            "loyalty_min_spent",
            format_minor(rules.loyalty_min_spent_minor, locale),
        ),
    ])
}

/// The rules written out, first that holds wins, with this workspace's numbers.
fn lifecycle_explained(rules: &LifecycleRules, locale: Locale, currency: &str) -> Vec<Value> {
    let days = |n: i64| format_integer(n, locale);
    let defaults = LifecycleRules::default();
    [
        ("reach", vec![]),
        ("lapsed", vec![("days", days(rules.lapsed_after_days))]),
        ("at_risk", vec![("days", days(rules.at_risk_after_days))]),
        (
            "loyalty",
            vec![
                ("orders", days(rules.loyalty_min_orders)),
                (
                    "amount",
                    format_money(rules.loyalty_min_spent_minor, currency, locale),
                ),
            ],
        ),
        ("retention", vec![]),
        ("acquisition", vec![("days", days(rules.acquisition_days))]),
        ("nurture", vec![("days", days(rules.acquisition_days))]),
    ]
    .into_iter()
    .map(|(stage, values)| {
        let values: Vec<(&str, String)> = values.into_iter().collect();
        let key = if stage == "loyalty" && rules.loyalty_min_spent_minor == 0 {
            "lifecycle_rules.rules.loyalty_orders_only".to_string()
        } else {
            format!("lifecycle_rules.rules.{stage}")
        };
        context! {
            stage => stage,
            rule => fill(&locale.text(&key), &values),
        }
    })
    .chain(std::iter::once(context! {
        stage => "defaults",
        rule => fill(
            &locale.text("lifecycle_rules.defaults"),
            &[
                ("acquisition", days(defaults.acquisition_days)),
                ("at_risk", days(defaults.at_risk_after_days)),
                ("lapsed", days(defaults.lapsed_after_days)),
                ("orders", days(defaults.loyalty_min_orders)),
                ("amount", format_money(defaults.loyalty_min_spent_minor, currency, locale)),
            ],
        ),
    }))
    .collect()
}

/// What a two-factor form sends back to the settings page.
#[derive(Default)]
struct TwoFactorForm {
    /// Show the enrolment in progress (QR code, key, code field).
    setup: bool,
    /// The problem with the code sent (`two_factor.errors.*`), and which form sent it.
    error: Option<(&'static str, &'static str)>,
    /// The recovery codes, right after turning it on: shown this once.
    recovery_codes: Vec<String>,
    /// Just turned off.
    turned_off: bool,
}

/// The base32 key in groups of four, easier to type into an app by hand.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The two-factor section's values. The QR code is core's SVG, generated from our own data, so
/// the template embeds it as is (without the XML declaration, meaningless inside HTML).
fn two_factor_values(
    status: Option<TotpStatus>,
    form: TwoFactorForm,
    locale: Locale,
    email: &str,
) -> Value {
    let (state, since, codes_left, enrolment) = match status {
        None => ("unavailable", None, 0, None),
        Some(TotpStatus::Off) => ("off", None, 0, None),
        Some(TotpStatus::Pending(enrolment)) => ("off", None, 0, Some(enrolment)),
        Some(TotpStatus::On {
            since,
            recovery_codes_left,
        }) => ("on", Some(since.to_rfc3339()), recovery_codes_left, None),
    };
    let enrolment = enrolment.filter(|_| form.setup).map(|e| {
        let svg = e.qr_svg.find("<svg").map_or("", |at| &e.qr_svg[at..]);
        let groups = grouped(&e.secret);
        let words: Vec<&str> = groups.split(' ').collect();
        // Two halves that each stay on one line: the key breaks in the middle or not at all.
        let halves: Vec<String> = words
            .chunks(words.len().div_ceil(2).max(1))
            .map(|h| h.join(" "))
            .collect();
        context! {
            secret_halves => halves,
            qr_svg => svg,
        }
    });
    let recovery_download = (!form.recovery_codes.is_empty()).then(|| {
        let heading = fill(
            &locale.text("two_factor.file_heading"),
            &[("email", email.to_string())],
        );
        let text = format!("{heading}\n\n{}\n", form.recovery_codes.join("\n"));
        format!(
            "data:text/plain;charset=utf-8,{}",
            urlencoding::encode(&text)
        )
    });
    context! {
        state => state,
        since => since,
        codes_left => codes_left,
        enrolment => enrolment,
        error => form.error.map(|(_, key)| key),
        error_form => form.error.map(|(which, _)| which),
        recovery_codes => form.recovery_codes,
        recovery_download => recovery_download,
        turned_off => form.turned_off,
    }
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
    let (operators, keys, totp, rules) = core(move || {
        let operators = ciclo.list_operators(&actor)?;
        let keys = if can_manage {
            ciclo.list_api_keys(&actor)?
        } else {
            Vec::new()
        };
        // Only operators signed in with a password have a second factor.
        let totp = match actor.operator_id {
            Some(_) => Some(ciclo.totp_status(&actor)?),
            None => None,
        };
        let rules = ciclo.lifecycle_rules(&actor)?;
        Ok((operators, keys, totp, rules))
    })
    .await?;
    let me = console.actor.operator_id.clone();
    let my_email = operators
        .iter()
        .find(|(op, _)| me.as_ref() == Some(&op.id))
        .map(|(op, _)| op.email.clone())
        .unwrap_or_default();
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
    let currency = console.actor.workspace.currency.as_str();
    let explained = lifecycle_explained(&rules, locale, currency);
    let lifecycle_form = extras
        .lifecycle_form
        .unwrap_or_else(|| lifecycle_form(&rules, locale));
    let values = context! {
        lifecycle => context! {
            form => lifecycle_form,
            errors => lifecycle_messages(locale, &extras.lifecycle_errors),
            explained => explained,
            currency_label => currency_label(currency, locale),
            fields => LIFECYCLE_FIELDS,
        },
        workspace => context! { write_key => ws.write_key.as_str(), id => ws.id.as_str() },
        workspace_form => workspace_form,
        workspace_errors => field_messages(locale, &extras.workspace_errors),
        invite_form => invite_form,
        invite_errors => field_messages(locale, &extras.invite_errors),
        key_errors => field_messages(locale, &extras.key_errors),
        new_key => extras.new_key.map(|(name, secret)| context! { name => name, secret => secret }),
        two_factor => two_factor_values(totp, extras.two_factor, locale, &my_email),
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

/// `GET /settings` (`?two_factor=setup` shows the two-factor enrolment in progress,
/// `?two_factor=off` says it was just turned off).
pub(crate) async fn page(
    State(state): State<WebState>,
    console: Console,
) -> Result<Response, WebError> {
    let flag = query_param(&console.here, "two_factor");
    let extras = Extras {
        two_factor: TwoFactorForm {
            setup: flag.as_deref() == Some("setup"),
            turned_off: flag.as_deref() == Some("off"),
            ..Default::default()
        },
        ..Default::default()
    };
    render_settings(&state, &console, extras, StatusCode::OK).await
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

/// The message key for a two-factor code that was refused, or the error page.
fn code_error(error: CoreError) -> Result<&'static str, WebError> {
    match form_errors(&error).as_deref() {
        Some([e, ..]) if e.code == "invalid_totp_code" => Ok("invalid_totp_code"),
        Some([e, ..]) if e.code == "totp_already_enabled" => Ok("totp_already_enabled"),
        Some([e, ..]) if e.code == "totp_not_started" => Ok("totp_not_started"),
        Some(_) => Ok("invalid_totp_code"),
        None => Err(error.into()),
    }
}

/// `POST /settings/two-factor/setup`: starts (or starts over) the enrolment, then shows it.
pub(crate) async fn begin_two_factor(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    console.form(&body)?;
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    match blocking(move || ciclo.begin_totp(&actor)).await? {
        Ok(_) => Ok(see_other("/settings?two_factor=setup#two-factor")),
        // Already on (a second click, another tab): the section says so.
        Err(CoreError::Conflict(_)) => Ok(see_other("/settings#two-factor")),
        Err(other) => Err(other.into()),
    }
}

/// `POST /settings/two-factor/confirm`: a first code from the app turns it on; the answer shows
/// the recovery codes, once.
pub(crate) async fn confirm_two_factor(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    let code = form.text("code");
    let refused = if code.is_empty() {
        "missing"
    } else {
        let ciclo = state.ciclo.clone();
        let actor = console.actor.clone();
        match blocking(move || ciclo.confirm_totp(&actor, &code)).await? {
            Ok(recovery_codes) => {
                let extras = Extras {
                    two_factor: TwoFactorForm {
                        recovery_codes,
                        ..Default::default()
                    },
                    ..Default::default()
                };
                return render_settings(&state, &console, extras, StatusCode::OK).await;
            }
            Err(error) => match code_error(error)? {
                // Sent twice (a reload): it is on, the section says so.
                "totp_already_enabled" => return Ok(see_other("/settings#two-factor")),
                refused => refused,
            },
        }
    };
    let extras = Extras {
        two_factor: TwoFactorForm {
            setup: true,
            error: Some(("confirm", refused)),
            ..Default::default()
        },
        ..Default::default()
    };
    render_settings(&state, &console, extras, StatusCode::UNPROCESSABLE_ENTITY).await
}

/// `POST /settings/two-factor/disable`: turns it off with a current code or a recovery code.
pub(crate) async fn disable_two_factor(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    let code = form.text("code");
    let refused = if code.is_empty() {
        "missing"
    } else {
        let ciclo = state.ciclo.clone();
        let actor = console.actor.clone();
        match blocking(move || ciclo.disable_totp(&actor, &code)).await? {
            Ok(()) => return Ok(see_other("/settings?two_factor=off#two-factor")),
            Err(error) => code_error(error)?,
        }
    };
    let extras = Extras {
        two_factor: TwoFactorForm {
            error: Some(("disable", refused)),
            ..Default::default()
        },
        ..Default::default()
    };
    render_settings(&state, &console, extras, StatusCode::UNPROCESSABLE_ENTITY).await
}

/// The lifecycle form's errors in the operator's language, by field; each field has its own
/// message (its range), and "lapsed" a second one for coming before "at risk".
fn lifecycle_messages(locale: Locale, errors: &[FieldError]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for error in errors {
        let field = match error.field.as_str() {
            "loyalty_min_spent_minor" => "loyalty_min_spent",
            other => other,
        };
        let key = match error.code.as_str() {
            "not_a_number" | "not_an_amount" | "lapsed_order" => {
                format!("lifecycle_rules.errors.{}", error.code)
            }
            _ => format!("lifecycle_rules.errors.{field}"),
        };
        let message = if locale.has(&key) {
            locale.text(&key)
        } else {
            locale.field_error(error)
        };
        out.entry(field.to_string()).or_insert(message);
    }
    out
}

/// Reads the form: every number, or the fields that are not numbers.
fn read_rules(
    form: &BTreeMap<&'static str, String>,
    locale: Locale,
) -> Result<LifecycleRules, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut whole = |field: &'static str| {
        parse_integer(&form[field], locale).unwrap_or_else(|| {
            errors.push(FieldError::new("not_a_number", field, "not a whole number"));
            0
        })
    };
    let rules = LifecycleRules {
        acquisition_days: whole("acquisition_days"),
        at_risk_after_days: whole("at_risk_after_days"),
        lapsed_after_days: whole("lapsed_after_days"),
        loyalty_min_orders: whole("loyalty_min_orders"),
        loyalty_min_spent_minor: 0,
    };
    let spent = parse_money_minor(&form["loyalty_min_spent"], locale);
    if spent.is_none() {
        errors.push(FieldError::new(
            "not_an_amount",
            "loyalty_min_spent",
            "not an amount",
        ));
    }
    if errors.is_empty() {
        Ok(LifecycleRules {
            loyalty_min_spent_minor: spent.unwrap_or_default(),
            ..rules
        })
    } else {
        Err(errors)
    }
}

/// `POST /settings/lifecycle`: saves the lifecycle rules (every customer's stage is computed
/// again with them before the answer); `intent=defaults` puts the documented defaults back.
pub(crate) async fn update_lifecycle(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::ManageWorkspace)?;
    let locale = console.locale;
    let typed: BTreeMap<&'static str, String> = LIFECYCLE_FIELDS
        .iter()
        .map(|f| (*f, form.text(f)))
        .collect();
    let rules = if form.get("intent") == Some("defaults") {
        Ok(LifecycleRules::default())
    } else {
        read_rules(&typed, locale)
    };
    let outcome = match rules {
        Err(errors) => Err(errors),
        Ok(rules) => {
            let ciclo = state.ciclo.clone();
            let actor = console.actor.clone();
            let sent = rules.clone();
            match blocking(move || ciclo.set_lifecycle_rules(&actor, &sent)).await? {
                Ok(_) => Ok(()),
                Err(error) => {
                    let mut errors = invalid_or_page(error)?;
                    // "Lapsed" in range but not after "at risk": say that, not the range.
                    for e in &mut errors {
                        if e.field == "lapsed_after_days"
                            && (1..=7300).contains(&rules.lapsed_after_days)
                        {
                            e.code = "lapsed_order".into();
                        }
                    }
                    Err(errors)
                }
            }
        }
    };
    match outcome {
        Ok(()) => Ok(see_other("/settings?notice=lifecycle_saved#lifecycle")),
        Err(errors) => {
            let extras = Extras {
                lifecycle_errors: errors,
                lifecycle_form: Some(typed),
                ..Default::default()
            };
            render_settings(&state, &console, extras, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}
