//! Sign-in, sign-out, moving to another workspace, and the language choice.
//!
//! The sign-in form has no session yet to take a CSRF token from, so it carries its own: a
//! random value set both as a short-lived `SameSite=Strict` cookie and as a hidden field (double
//! submit), which stops another site from signing a browser into an account of its choosing.
//!
//! Two-factor sign-in: when the password is right and the operator has TOTP on, core answers
//! with a short-lived challenge instead of a session, and the page asks for a code. The
//! challenge is a bearer secret (five minutes): it travels only in a hidden field of the
//! same-origin code form (with the sign-in token), never in a URL or a cookie. A few wrong codes
//! end the challenge, so it cannot be used to try every code.

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
use ciclo_core::mfa::LoginStep;
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
    /// A problem with the password step (`login.errors.*`).
    error: Option<&'static str>,
    /// Why the visitor is back at the password step (`login.code.errors.*`).
    restart: Option<&'static str>,
    /// The second step: the challenge and a problem with the code (`login.code.errors.*`).
    second_factor: Option<(&'a str, Option<&'static str>)>,
}

impl<'a> LoginForm<'a> {
    fn password(next: &'a str, email: &'a str, error: Option<&'static str>) -> Self {
        LoginForm {
            next,
            email,
            error,
            restart: None,
            second_factor: None,
        }
    }
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
        restart => form.restart,
        challenge => form.second_factor.map(|(challenge, _)| challenge),
        code_error => form.second_factor.and_then(|(_, error)| error),
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
    let next = local_or_home(&next);
    let form = LoginForm::password(&next, "", None);
    render_login(&state, &visitor, form, StatusCode::OK)
}

/// Whether the form carries the sign-in token of its login cookie (double submit).
fn login_token_ok(headers: &HeaderMap, form: &FormData) -> bool {
    let expected = cookie(headers, LOGIN_COOKIE).unwrap_or_default();
    let sent = form.get("login_token").unwrap_or_default();
    !expected.is_empty() && constant_time_eq(expected.as_bytes(), sent.as_bytes())
}

/// Signed in: the session cookie, the sign-in cookie cleared, on to `next`.
fn signed_in(state: &WebState, token: &str, next: &str, locale: Option<Locale>) -> Response {
    let mut response = see_other(next);
    let secure = state.options.secure_cookies;
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session_set_cookie(token, secure));
    headers.append(header::SET_COOKIE, login_cookie("", secure));
    // The language saved on the account follows the operator to every device.
    if let Some(locale) = locale {
        headers.append(header::SET_COOKIE, language_cookie(Some(locale), secure));
    }
    response
}

/// The language the operator saved on their account, if any.
async fn saved_locale(
    state: &WebState,
    operator: &ciclo_domain::ids::OperatorId,
) -> Option<Locale> {
    let ciclo = state.ciclo.clone();
    let operator = operator.clone();
    blocking(move || ciclo.operator_locale(&operator))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .and_then(|l| Locale::parse(&l))
}

/// `POST /login`: checks the password; sets the session cookie and goes where the operator was
/// headed, or asks for the second factor.
pub(crate) async fn login(
    State(state): State<WebState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = FormData::parse(&body);
    let next = local_or_home(form.get("next").unwrap_or("/"));
    let email = form.text("email");
    if !login_token_ok(&headers, &form) {
        let form = LoginForm::password(&next, &email, Some("expired"));
        return render_login(&state, &visitor, form, StatusCode::FORBIDDEN);
    }
    if email.is_empty() || form.get("password").unwrap_or_default().is_empty() {
        let form = LoginForm::password(&next, &email, Some("missing"));
        return render_login(&state, &visitor, form, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let ciclo = state.ciclo.clone();
    let password = form.get("password").unwrap_or_default().to_string();
    let login_email = email.clone();
    let outcome = blocking(move || ciclo.login_start(&login_email, &password, None)).await?;
    match outcome {
        Ok(LoginStep::Done(token, session)) => {
            let locale = saved_locale(&state, &session.operator_id).await;
            Ok(signed_in(&state, &token, &next, locale))
        }
        Ok(LoginStep::SecondFactor { challenge }) => {
            let form = LoginForm {
                second_factor: Some((&challenge, None)),
                ..LoginForm::password(&next, &email, None)
            };
            render_login(&state, &visitor, form, StatusCode::OK)
        }
        Err(CoreError::Unauthorized) => {
            let form = LoginForm::password(&next, &email, Some("wrong"));
            render_login(&state, &visitor, form, StatusCode::UNAUTHORIZED)
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST /login/code`: the second step. Trades the challenge and a code from the authenticator
/// app (or a recovery code) for the session; a wrong code shows the step again with the error,
/// an expired or used-up challenge goes back to the password.
pub(crate) async fn login_code(
    State(state): State<WebState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = FormData::parse(&body);
    let next = local_or_home(form.get("next").unwrap_or("/"));
    let email = form.text("email");
    let challenge = form.text("challenge");
    let code = form.text("code");
    let restart = |reason: &'static str, status: StatusCode| {
        let form = LoginForm {
            restart: Some(reason),
            ..LoginForm::password(&next, &email, None)
        };
        render_login(&state, &visitor, form, status)
    };
    if !login_token_ok(&headers, &form) {
        let form = LoginForm::password(&next, &email, Some("expired"));
        return render_login(&state, &visitor, form, StatusCode::FORBIDDEN);
    }
    if challenge.is_empty() {
        return restart("expired", StatusCode::UNAUTHORIZED);
    }
    let ask_again = |error: &'static str, status: StatusCode| {
        let form = LoginForm {
            second_factor: Some((&challenge, Some(error))),
            ..LoginForm::password(&next, &email, None)
        };
        render_login(&state, &visitor, form, status)
    };
    if code.is_empty() {
        return ask_again("missing", StatusCode::UNPROCESSABLE_ENTITY);
    }
    let ciclo = state.ciclo.clone();
    let sent = challenge.clone();
    let outcome = blocking(move || ciclo.login_complete(&sent, &code)).await?;
    match outcome {
        Ok((token, session)) => {
            let locale = saved_locale(&state, &session.operator_id).await;
            Ok(signed_in(&state, &token, &next, locale))
        }
        // Core counts wrong codes per operator and ends the challenge after a few.
        Err(CoreError::Invalid(errors)) if errors.iter().any(|e| e.code == "too_many_attempts") => {
            restart("too_many", StatusCode::UNAUTHORIZED)
        }
        Err(CoreError::Invalid(_)) => ask_again("wrong", StatusCode::UNAUTHORIZED),
        Err(CoreError::Unauthorized) => restart("expired", StatusCode::UNAUTHORIZED),
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
        if let Ok((actor, session)) = session {
            let sent = form.get("csrf_token").unwrap_or_default();
            if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
                return Err(ErrorPage::Csrf.into());
            }
            // Saved on the account too, so it follows the operator to other devices.
            let chosen = Locale::parse(&form.text("lang"));
            let ciclo = state.ciclo.clone();
            blocking(move || ciclo.set_operator_locale(&actor, chosen.map(Locale::code))).await??;
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
