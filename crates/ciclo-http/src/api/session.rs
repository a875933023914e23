//! Sign-in for operators: login (sets the `ciclo_session` cookie), logout, who am I, and moving
//! the session to another workspace.

use crate::auth::{
    constant_time_eq, session_clear_cookie, session_cookie, session_set_cookie, Authenticated,
    CSRF_HEADER,
};
use crate::dto::{
    ErrorBody, LoginRequest, MeResponse, SessionResponse, SwitchWorkspaceRequest, WorkspaceAccess,
};
use crate::error::ApiError;
use crate::extract::{blocking, body_id, JsonBody};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ciclo_core::mfa::LoginStep;
use ciclo_core::{Ciclo, CoreError};
use ciclo_domain::ids::WorkspaceId;
use ciclo_domain::operator::Session;

/// The answer to a new session: the body for the client and the cookie for the browser.
/// `no-store` keeps the CSRF token out of caches.
fn session_response(
    ciclo: &Ciclo,
    token: &str,
    session: &Session,
    secure: bool,
) -> Result<Response, ApiError> {
    let (actor, _) = ciclo.authenticate_session(token)?;
    let body = SessionResponse {
        csrf_token: session.csrf_token.clone(),
        workspace: actor.workspace.into(),
        role: actor.role.into(),
        expires_at: session.expires_at,
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_set_cookie(token, secure));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Signs an operator in.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    operation_id = "login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in. The session token is set as the `ciclo_session` cookie \
            (HttpOnly, SameSite=Lax); send `csrf_token` back as `X-CSRF-Token` on unsafe requests.", body = SessionResponse),
        (status = 400, description = "Not JSON (`invalid_json`)", body = ErrorBody),
        (status = 401, description = "Wrong email or password, or not a member of the workspace asked for (`unauthorized`)", body = ErrorBody),
        (status = 422, description = "Wrong body shape (`invalid_body`) or malformed workspace id (`validation_failed`)", body = ErrorBody),
    ),
    security(())
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let workspace = body
        .workspace_id
        .as_deref()
        .map(|raw| body_id(raw, "workspace_id", WorkspaceId::parse))
        .transpose()?;
    let ciclo = state.ciclo.clone();
    let secure = state.options.secure_cookies;
    blocking(move || {
        let step = ciclo.login_start(&body.email, &body.password, workspace.as_ref());
        let (token, session) = match (step, body.totp_code.as_deref()) {
            (Ok(LoginStep::Done(token, session)), _) => Ok((token, session)),
            (Ok(LoginStep::SecondFactor { challenge }), Some(code)) => {
                ciclo.login_complete(&challenge, code)
            }
            (Ok(LoginStep::SecondFactor { challenge }), None) => {
                Err(CoreError::SecondFactorRequired(challenge))
            }
            (Err(e), _) => Err(e),
        }
        .map_err(|e| match e {
            CoreError::Unauthorized => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong email or password, or no access to that workspace",
            ),
            other => other.into(),
        })?;
        session_response(&ciclo, &token, &session, secure)
    })
    .await
}

/// Ends the session. Always clears the cookie, so a browser with a stale cookie can sign out.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "logout",
    tag = "auth",
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 403, description = "A live session without the matching `X-CSRF-Token` (`csrf_failed`)", body = ErrorBody),
    ),
    security(("session_cookie" = []), ())
)]
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let secure = state.options.secure_cookies;
    if let Some(token) = session_cookie(&headers) {
        let ciclo = state.ciclo.clone();
        let sent_csrf = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        blocking(move || match ciclo.authenticate_session(&token) {
            // A live session is only ended by its own page: otherwise any site could sign
            // operators out. A dead one has nothing left to protect.
            Ok((_, session))
                if !constant_time_eq(sent_csrf.as_bytes(), session.csrf_token.as_bytes()) =>
            {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "send the session's csrf_token in the X-CSRF-Token header",
                ))
            }
            Ok(_) => Ok(ciclo.logout(&token)?),
            Err(CoreError::Unauthorized) => Ok(()),
            Err(other) => Err(other.into()),
        })
        .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_clear_cookie(secure));
    Ok(response)
}

/// Who is calling, and which workspaces they can switch to.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    operation_id = "get_me",
    tag = "auth",
    responses(
        (status = 200, body = MeResponse),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn me(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<MeResponse>, ApiError> {
    let ciclo = state.ciclo.clone();
    let actor = auth.actor.clone();
    let workspaces = blocking(move || Ok(ciclo.workspaces_of(&actor)?)).await?;
    Ok(Json(MeResponse {
        actor: auth.actor.into(),
        workspaces: workspaces
            .into_iter()
            .map(|(w, role)| WorkspaceAccess {
                workspace: w.into(),
                role: role.into(),
            })
            .collect(),
        csrf_token: auth.session.map(|(_, session)| session.csrf_token),
    }))
}

/// Moves the signed-in operator to another of their workspaces (a new session and cookie).
#[utoipa::path(
    post,
    path = "/api/v1/auth/switch",
    operation_id = "switch_workspace",
    tag = "auth",
    request_body = SwitchWorkspaceRequest,
    responses(
        (status = 200, description = "The new session; the cookie is replaced", body = SessionResponse),
        (status = 400, description = "Called with an API key, which belongs to one workspace (`session_required`)", body = ErrorBody),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
        (status = 403, description = "Missing `X-CSRF-Token` (`csrf_failed`)", body = ErrorBody),
        (status = 404, description = "Not a member of that workspace (`workspace_not_found`)", body = ErrorBody),
        (status = 422, description = "Malformed workspace id (`validation_failed`)", body = ErrorBody),
    ),
    security(("session_cookie" = []))
)]
pub(crate) async fn switch_workspace(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<SwitchWorkspaceRequest>,
) -> Result<Response, ApiError> {
    let Some((token, _)) = auth.session else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "session_required",
            "an API key belongs to one workspace; only a signed-in session can switch",
        ));
    };
    let workspace = body_id(&body.workspace_id, "workspace_id", WorkspaceId::parse)?;
    let ciclo = state.ciclo.clone();
    let secure = state.options.secure_cookies;
    blocking(move || {
        let (new_token, session) = ciclo.switch_workspace(&token, &workspace)?;
        session_response(&ciclo, &new_token, &session, secure)
    })
    .await
}
