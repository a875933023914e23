//! The template environment: every template embedded with `include_str!`, HTML auto-escaping
//! on, strict about undefined values (a missing message key fails loudly in tests), and the
//! filters that format values in the page's language (`money`, `money_whole`, `number`, `date`,
//! `datetime`, `month`, `percent`, `decimal`, `fill`).
//!
//! Every signed-in page gets the same base context from [`page`]: the messages `t`, the
//! language, the workspace's time zone and currency, the CSRF token for its forms, what the
//! operator's role allows (`me.can_write`…), and the notice named in the query string.

use crate::format;
use crate::i18n::{self, Locale};
use crate::session::{Console, ErrorPage, WebError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ciclo_domain::operator::Permission;
use minijinja::value::Kwargs;
use minijinja::{context, AutoEscape, Environment, State, UndefinedBehavior, Value};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("error.html", include_str!("../templates/error.html")),
    (
        "dashboard.html",
        include_str!("../templates/dashboard.html"),
    ),
    (
        "customers.html",
        include_str!("../templates/customers.html"),
    ),
    ("customer.html", include_str!("../templates/customer.html")),
    (
        "timeline_items.html",
        include_str!("../templates/timeline_items.html"),
    ),
    ("imports.html", include_str!("../templates/imports.html")),
    (
        "import_map.html",
        include_str!("../templates/import_map.html"),
    ),
    (
        "import_progress.html",
        include_str!("../templates/import_progress.html"),
    ),
    (
        "import_result.html",
        include_str!("../templates/import_result.html"),
    ),
    ("settings.html", include_str!("../templates/settings.html")),
    ("segments.html", include_str!("../templates/segments.html")),
    ("segment.html", include_str!("../templates/segment.html")),
    (
        "segment_macros.html",
        include_str!("../templates/segment_macros.html"),
    ),
    (
        "segment_edit.html",
        include_str!("../templates/segment_edit.html"),
    ),
    (
        "segment_result.html",
        include_str!("../templates/segment_result.html"),
    ),
    (
        "analytics_nav.html",
        include_str!("../templates/analytics_nav.html"),
    ),
    (
        "analytics_rfm.html",
        include_str!("../templates/analytics_rfm.html"),
    ),
    (
        "analytics_rfm_customers.html",
        include_str!("../templates/analytics_rfm_customers.html"),
    ),
    (
        "analytics_cohorts.html",
        include_str!("../templates/analytics_cohorts.html"),
    ),
    (
        "analytics_metrics.html",
        include_str!("../templates/analytics_metrics.html"),
    ),
    (
        "analytics_clv.html",
        include_str!("../templates/analytics_clv.html"),
    ),
    (
        "analytics_funnel.html",
        include_str!("../templates/analytics_funnel.html"),
    ),
];

pub(crate) struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new()
    }
}

fn locale_of(state: &State) -> Locale {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Locale::parse))
        .unwrap_or(Locale::PtBr)
}

fn time_zone_of(state: &State) -> chrono_tz::Tz {
    state
        .lookup("tz")
        .and_then(|v| v.as_str().map(format::time_zone))
        .unwrap_or(chrono_tz::UTC)
}

fn parse_timestamp(raw: &str) -> Option<ciclo_domain::Timestamp> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn integer(value: &Value) -> i64 {
    i64::try_from(value.clone())
        .ok()
        .or_else(|| f64::try_from(value.clone()).ok().map(|f| f as i64))
        .unwrap_or(0)
}

fn money_filter(state: &State, minor: Value, currency: Option<String>) -> String {
    let currency = currency
        .or_else(|| {
            state
                .lookup("currency")
                .and_then(|v| v.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| "BRL".into());
    format::format_money(integer(&minor), &currency, locale_of(state))
}

/// `{{ 65247298|money_whole }}` → `R$ 652.473`: rounded to whole currency units.
fn money_whole_filter(state: &State, minor: Value) -> String {
    let currency = state
        .lookup("currency")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "BRL".into());
    let minor = float(&minor).map_or(0, |v| v.round() as i64);
    format::format_money_whole(minor, &currency, locale_of(state))
}

fn number_filter(state: &State, value: Value) -> String {
    format::format_integer(integer(&value), locale_of(state))
}

/// A date (`YYYY-MM-DD`) or a moment (RFC 3339, shown as its day in the workspace time zone).
fn date_filter(state: &State, value: Value) -> String {
    let Some(raw) = value.as_str() else {
        return String::new();
    };
    if let Ok(date) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return format::format_date(date, locale_of(state));
    }
    match parse_timestamp(raw) {
        Some(at) => format::format_day(at, time_zone_of(state), locale_of(state)),
        None => raw.to_string(),
    }
}

fn datetime_filter(state: &State, value: Value) -> String {
    match value.as_str().and_then(parse_timestamp) {
        Some(at) => format::format_datetime(at, time_zone_of(state), locale_of(state)),
        None => value.as_str().unwrap_or_default().to_string(),
    }
}

/// A value that may be absent (`none`) or not a number: `None` for both.
fn float(value: &Value) -> Option<f64> {
    if value.is_none() || value.is_undefined() {
        return None;
    }
    f64::try_from(value.clone()).ok().filter(|f| f.is_finite())
}

/// `{{ 0.456|percent }}` → `45,6%`; `{{ x|percent(0) }}` without decimals; `—` for none.
fn percent_filter(state: &State, value: Value, places: Option<usize>) -> String {
    float(&value).map_or_else(
        || "—".to_string(),
        |share| format::format_percent(share, places.unwrap_or(1), locale_of(state)),
    )
}

/// `{{ 1.756|decimal(2) }}` → `1,76`; `—` for none.
fn decimal_filter(state: &State, value: Value, places: Option<usize>) -> String {
    float(&value).map_or_else(
        || "—".to_string(),
        |number| format::format_decimal(number, places.unwrap_or(2), locale_of(state)),
    )
}

fn month_filter(state: &State, value: String) -> String {
    format::format_month(&value, locale_of(state))
}

/// `{{ t.x | fill(count=3) }}`: replaces `{count}` in the message.
fn fill_filter(state: &State, message: String, kwargs: Kwargs) -> Result<String, minijinja::Error> {
    let locale = locale_of(state);
    let mut values = Vec::new();
    for name in kwargs.args() {
        let value: Value = kwargs.get(name)?;
        let text = if let Ok(n) = i64::try_from(value.clone()) {
            format::format_integer(n, locale)
        } else {
            value.to_string()
        };
        values.push((name, text));
    }
    Ok(i18n::fill(&message, &values))
}

/// An inline SVG icon for a channel (decorative: the channel's name is written next to it).
fn channel_icon(channel: String) -> Value {
    let paths = match channel.as_str() {
        "web" => {
            r#"<circle cx="12" cy="12" r="9"/><path d="M3 12h18M12 3c3 3.5 3 14.5 0 18M12 3c-3 3.5-3 14.5 0 18"/>"#
        }
        "mobile" => r#"<rect x="7" y="2.5" width="10" height="19" rx="2"/><path d="M11 18.5h2"/>"#,
        "server" => {
            r#"<rect x="4" y="4" width="16" height="6" rx="1.5"/><rect x="4" y="14" width="16" height="6" rx="1.5"/><path d="M8 7h.01M8 17h.01"/>"#
        }
        "email" => {
            r#"<rect x="3" y="5" width="18" height="14" rx="2"/><path d="m3.5 6 8.5 7 8.5-7"/>"#
        }
        "whatsapp" => {
            r#"<path d="M4 20l1.3-3.9A8.5 8.5 0 1 1 8 19z"/><path d="M9 9.5c.5 2.5 2.5 4.5 5 5"/>"#
        }
        "sms" => r#"<path d="M4 5h16v11H9l-5 4z"/><path d="M8 10.5h.01M12 10.5h.01M16 10.5h.01"/>"#,
        "store" => r#"<path d="M4 10v10h16V10M3 10l2-6h14l2 6z"/><path d="M10 20v-5h4v5"/>"#,
        "support" => {
            r#"<path d="M4 14v-2a8 8 0 0 1 16 0v2"/><rect x="3" y="13" width="4" height="6" rx="1"/><rect x="17" y="13" width="4" height="6" rx="1"/>"#
        }
        "import" => r#"<path d="M12 3v11m-4-4 4 4 4-4"/><path d="M4 15v4h16v-4"/>"#,
        _ => r#"<circle cx="12" cy="12" r="3"/>"#,
    };
    Value::from_safe_string(format!(
        r#"<svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">{paths}</svg>"#
    ))
}

/// An inline SVG icon for the events ciclo writes itself (decorative, like [`channel_icon`]).
fn system_icon(kind: String) -> Value {
    let paths = match kind.as_str() {
        // A group of people with a plus: entered a segment or list.
        "segment_entered" => {
            r#"<circle cx="9" cy="8" r="3.2"/><path d="M3 19c.6-3.3 3-5 6-5s5.4 1.7 6 5"/><path d="M18 7v6M15 10h6"/>"#
        }
        // The same with a minus: left it.
        "segment_exited" => {
            r#"<circle cx="9" cy="8" r="3.2"/><path d="M3 19c.6-3.3 3-5 6-5s5.4 1.7 6 5"/><path d="M15 10h6"/>"#
        }
        // A cycle of arrows: moved to another lifecycle stage.
        "stage_changed" => {
            r#"<path d="M20 11a8 8 0 0 0-14.3-4.9L4 8"/><path d="M4 3.5V8h4.5"/><path d="M4 13a8 8 0 0 0 14.3 4.9L20 16"/><path d="M20 20.5V16h-4.5"/>"#
        }
        _ => r#"<circle cx="12" cy="12" r="3"/>"#,
    };
    Value::from_safe_string(format!(
        r#"<svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">{paths}</svg>"#
    ))
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                // The templates are part of the binary and rendered by the tests.
                panic!("template {name} does not compile: {e}");
            }
        }
        env.add_filter("money", money_filter);
        env.add_filter("number", number_filter);
        env.add_filter("date", date_filter);
        env.add_filter("datetime", datetime_filter);
        env.add_filter("month", month_filter);
        env.add_filter("money_whole", money_whole_filter);
        env.add_filter("percent", percent_filter);
        env.add_filter("decimal", decimal_filter);
        env.add_filter("fill", fill_filter);
        env.add_filter("phone", |value: String| format::format_phone(&value));
        env.add_function("channel_icon", channel_icon);
        env.add_function("system_icon", system_icon);
        Templates { env }
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, WebError> {
        let template = self.env.get_template(name).map_err(|e| {
            tracing::error!(error = %e, template = name, "console: no such template");
            WebError::Page(ErrorPage::Internal)
        })?;
        template.render(ctx).map_err(|e| {
            tracing::error!(error = ?e, template = name, "console: template failed");
            WebError::Page(ErrorPage::Internal)
        })
    }

    /// A friendly error page, standing alone (no navigation that could fail in turn).
    pub fn error_page(&self, locale: Locale, page: ErrorPage) -> Response {
        let ctx = context! {
            t => locale.template_messages(),
            lang => locale.code(),
            page => page.key(),
            status => page.status().as_u16(),
        };
        match self.render("error.html", ctx) {
            Ok(body) => html(body),
            // Even the error page failed: a plain sentence, still no details.
            Err(_) => (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                locale.text("error_pages.internal.body"),
            )
                .into_response(),
        }
    }
}

/// An HTML answer that no cache keeps (pages carry CSRF tokens and customer data).
pub(crate) fn html(body: String) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// One query parameter of a path-and-query string, decoded.
pub(crate) fn query_param(path_and_query: &str, name: &str) -> Option<String> {
    let query = path_and_query.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The base context of signed-in pages (see the module doc).
pub(crate) fn base_context(console: &Console, nav: &str) -> Value {
    let locale = console.locale;
    let actor = &console.actor;
    let flash = |name: &str| {
        query_param(&console.here, name).filter(|key| locale.has(&format!("notices.{key}")))
    };
    let workspaces: Vec<Value> = console
        .workspaces
        .iter()
        .map(|(w, role)| {
            context! {
                id => w.id.as_str(),
                name => w.name.as_str(),
                role => role.as_str(),
                current => w.id == actor.workspace.id,
            }
        })
        .collect();
    context! {
        t => locale.template_messages(),
        lang => locale.code(),
        language_chosen => console.language_chosen,
        tz => actor.workspace.time_zone.as_str(),
        currency => actor.workspace.currency.as_str(),
        csrf_token => console.session.csrf_token.as_str(),
        here => console.here.as_str(),
        nav => nav,
        notice => flash("notice"),
        alert => flash("alert"),
        me => context! {
            role => actor.role.as_str(),
            operator_id => actor.operator_id.as_ref().map(|o| o.as_str().to_string()),
            workspace => context! {
                id => actor.workspace.id.as_str(),
                name => actor.workspace.name.as_str(),
            },
            workspaces => workspaces,
            can_write => actor.role.allows(Permission::WriteCustomers),
            can_export => actor.role.allows(Permission::ExportCustomers),
            can_manage => actor.role.allows(Permission::ManageWorkspace),
            can_own => actor.role.allows(Permission::OwnWorkspace),
        },
    }
}

/// Renders a signed-in page: the base context merged with the page's own values.
pub(crate) fn page(
    templates: &Templates,
    console: &Console,
    template: &str,
    nav: &str,
    values: Value,
) -> Result<Response, WebError> {
    let base = base_context(console, nav);
    let ctx = context! { ..values, ..base };
    templates.render(template, ctx).map(html)
}

/// Like [`page`], with a status other than 200 (a form shown again with its errors: 422).
pub(crate) fn page_with_status(
    templates: &Templates,
    console: &Console,
    template: &str,
    nav: &str,
    values: Value,
    status: StatusCode,
) -> Result<Response, WebError> {
    let mut response = page(templates, console, template, nav, values)?;
    *response.status_mut() = status;
    Ok(response)
}
