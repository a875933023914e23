//! Sign-in, sign-out, moving to another workspace, and the language choice.
//!
//! The sign-in form has no session yet to take a CSRF token from, so it carries its own: a
//! random value set both as a short-lived `SameSite=Strict` cookie and as a hidden field (double
//! submit), which stops another site from signing a browser into an account of its choosing.
//! Two-factor sign-in (TOTP) will slot in after the password check; the settings page already
//! has its section.

use crate::i18n::Locale;
use crate::pages::see_other;
use crate::render::{html, query_param};
use crate::session::{
    blocking, constant_time_eq, cookie, is_local_path, language_cookie, session_clear_cookie,
    session_set_cookie, Console, ErrorPage, FormData, Visitor, WebError, SESSION_COOKIE,
};
use crate::WebState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use ciclo_core::CoreError;
use ciclo_domain::ids::WorkspaceId;
use minijinja::context;

const LOGIN_COOKIE: &str = "ciclo_login";

fn login_cookie(token: &str, secure: bool) -> axum::http::HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    axum::http::HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"
    ))
    .unwrap_or_else(|_| axum::http::HeaderValue::from_static("ciclo_login=; Max-Age=0"))
}

fn local_or_home(next: &str) -> String {
    if is_local_path(next) && !next.starts_with("/login") {
        next.to_string()
    } else {
        "/".to_string()
    }
}

struct LoginForm<'a> {
    next: &'a str,
    email: &'a str,
    error: Option<&'static str>,
}

fn render_login(
    state: &WebState,
    visitor: &Visitor,
    form: LoginForm,
    status: StatusCode,
) -> Result<Response, WebError> {
    let token = state.ciclo.random.token(18);
    let locale = visitor.locale;
    let ctx = context! {
        t => locale.template_messages(),
        lang => locale.code(),
        language_chosen => visitor.language_chosen,
        next => form.next,
        email => form.email,
        error => form.error,
        login_token => token.as_str(),
        here => format!("/login?next={}", urlencoding::encode(form.next)),
    };
    let mut response = html(state.templates.render("login.html", ctx)?);
    *response.status_mut() = status;
    response.headers_mut().append(
        header::SET_COOKIE,
        login_cookie(&token, state.options.secure_cookies),
    );
    Ok(response)
}

/// `GET /login`: the sign-in form.
pub(crate) async fn login_page(
    State(state): State<WebState>,
    visitor: Visitor,
    uri: Uri,
) -> Result<Response, WebError> {
    let next = query_param(&uri.to_string(), "next").unwrap_or_else(|| "/".into());
    render_login(
        &state,
        &visitor,
        LoginForm {
            next: &local_or_home(&next),
            email: "",
            error: None,
        },
        StatusCode::OK,
    )
}

/// `POST /login`: checks the password, sets the session cookie, goes where the operator was
/// headed.
pub(crate) async fn login(
    State(state): State<WebState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = FormData::parse(&body);
    let next = local_or_home(form.get("next").unwrap_or("/"));
    let email = form.text("email");
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let sent = form.get("login_token").unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), sent.as_bytes()) {
        let form = LoginForm {
            next: &next,
            email: &email,
            error: Some("expired"),
        };
        return render_login(&state, &visitor, form, StatusCode::FORBIDDEN);
    }
    if email.is_empty() || form.get("password").unwrap_or_default().is_empty() {
        let form = LoginForm {
            next: &next,
            email: &email,
            error: Some("missing"),
        };
        return render_login(&state, &visitor, form, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let ciclo = state.ciclo.clone();
    let password = form.get("password").unwrap_or_default().to_string();
    let login_email = email.clone();
    let outcome = blocking(move || ciclo.login(&login_email, &password, None)).await?;
    match outcome {
        Ok((token, _session)) => {
            let mut response = see_other(&next);
            let secure = state.options.secure_cookies;
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, session_set_cookie(&token, secure));
            headers.append(header::SET_COOKIE, login_cookie("", secure));
            Ok(response)
        }
        Err(CoreError::Unauthorized) => {
            let form = LoginForm {
                next: &next,
                email: &email,
                error: Some("wrong"),
            };
            render_login(&state, &visitor, form, StatusCode::UNAUTHORIZED)
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST /logout`: ends the session and clears the cookie.
pub(crate) async fn logout(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    console.form(&body)?;
    let ciclo = state.ciclo.clone();
    let token = console.token.clone();
    blocking(move || ciclo.logout(&token)).await??;
    let mut response = see_other("/login");
    response.headers_mut().append(
        header::SET_COOKIE,
        session_clear_cookie(state.options.secure_cookies),
    );
    Ok(response)
}

/// `POST /switch-workspace`: a new session in another workspace of the same operator.
pub(crate) async fn switch_workspace(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    let workspace = WorkspaceId::parse(&form.text("workspace_id"))
        .map_err(|_| WebError::Page(ErrorPage::NotFound))?;
    let ciclo = state.ciclo.clone();
    let token = console.token.clone();
    let (new_token, _) = blocking(move || ciclo.switch_workspace(&token, &workspace)).await??;
    let mut response = see_other("/?notice=switched");
    response.headers_mut().append(
        header::SET_COOKIE,
        session_set_cookie(&new_token, state.options.secure_cookies),
    );
    Ok(response)
}

/// `POST /language`: remembers the operator's language (`auto` forgets it) and goes back.
/// Signed-in pages send their CSRF token; the sign-in page has no session to protect.
pub(crate) async fn set_language(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = FormData::parse(&body);
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let ciclo = state.ciclo.clone();
        let session = blocking(move || ciclo.authenticate_session(&token)).await?;
        if let Ok((_, session)) = session {
            let sent = form.get("csrf_token").unwrap_or_default();
            if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
                return Err(ErrorPage::Csrf.into());
            }
        }
    }
    let choice = form.text("lang");
    let locale = Locale::parse(&choice);
    let next = form.get("next").filter(|n| is_local_path(n)).unwrap_or("/");
    let mut response = see_other(next);
    response.headers_mut().append(
        header::SET_COOKIE,
        language_cookie(locale, state.options.secure_cookies),
    );
    Ok(response)
}
