//! Workspace settings: secret API keys, operators and their roles, and the workspace itself.

use crate::api::customers::IdParam;
use crate::auth::Authenticated;
use crate::dto::{
    ApiKeyList, CreateApiKeyRequest, CreateOperatorRequest, CreatedApiKey, ErrorBody, OperatorDto,
    OperatorList, UpdateOperatorRequest, UpdateWorkspaceRequest, WorkspaceDto,
};
use crate::error::ApiError;
use crate::extract::{blocking, path_id, JsonBody};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ciclo_domain::ids::{ApiKeyId, OperatorId};
use ciclo_domain::operator::Role;
use ciclo_domain::FieldError;

/// A role from a request body; a bad one is 422 with ciclo's own `invalid_role` code.
fn parse_role(raw: &str) -> Result<Role, ApiError> {
    Role::parse(raw.trim()).map_err(|e| {
        ApiError::invalid(vec![FieldError {
            field: "role".into(),
            ..e
        }])
    })
}

/// Secret API keys of the workspace, newest first, revoked ones included.
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    operation_id = "list_api_keys",
    tag = "settings",
    responses(
        (status = 200, body = ApiKeyList),
        (status = 403, description = "The role lacks `manage_workspace` (`forbidden`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<ApiKeyList>, ApiError> {
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(ApiKeyList {
            items: ciclo
                .list_api_keys(&auth.actor)?
                .into_iter()
                .map(Into::into)
                .collect(),
        }))
    })
    .await
}

/// Creates a secret API key. The secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    operation_id = "create_api_key",
    tag = "settings",
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, body = CreatedApiKey),
        (status = 403, description = "The role lacks `manage_workspace`, or an owner key was asked for by a non-owner (`forbidden`)", body = ErrorBody),
        (status = 422, description = "Bad name or role (`validation_failed`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let role = parse_role(&body.role)?;
    let ciclo = state.ciclo.clone();
    let (key, secret) =
        blocking(move || Ok(ciclo.create_api_key(&auth.actor, &body.name, role)?)).await?;
    let mut response = (
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: key.into(),
            secret,
        }),
    )
        .into_response();
    // The secret must not linger in any cache.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Revokes a key; it stops working at once and stays listed with `revoked_at`.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    operation_id = "revoke_api_key",
    tag = "settings",
    params(("id" = String, Path, description = "Key id (`key_…`)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "`api_key_not_found`", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "api_key", ApiKeyId::parse)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(ciclo.revoke_api_key(&auth.actor, &id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Operators of the workspace with their roles, by email.
#[utoipa::path(
    get,
    path = "/api/v1/operators",
    operation_id = "list_operators",
    tag = "settings",
    responses((status = 200, body = OperatorList)),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn list_operators(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<OperatorList>, ApiError> {
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(OperatorList {
            items: ciclo
                .list_operators(&auth.actor)?
                .into_iter()
                .map(Into::into)
                .collect(),
        }))
    })
    .await
}

/// Adds an operator to the workspace, creating the account when the email is new.
#[utoipa::path(
    post,
    path = "/api/v1/operators",
    operation_id = "add_operator",
    tag = "settings",
    request_body = CreateOperatorRequest,
    responses(
        (status = 201, body = OperatorDto),
        (status = 403, description = "The role lacks `manage_workspace` (or `own_workspace` to add an owner) (`forbidden`)", body = ErrorBody),
        (status = 409, description = "Already a member (`already_member`)", body = ErrorBody),
        (status = 422, description = "Bad email, role or password (`validation_failed`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn create_operator(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<CreateOperatorRequest>,
) -> Result<(StatusCode, Json<OperatorDto>), ApiError> {
    let role = parse_role(&body.role)?;
    let ciclo = state.ciclo.clone();
    let operator = blocking(move || {
        Ok(ciclo.add_operator(&auth.actor, &body.email, &body.name, role, &body.password)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json((operator, role).into())))
}

/// Changes an operator's role. The last owner cannot be demoted.
#[utoipa::path(
    patch,
    path = "/api/v1/operators/{id}",
    operation_id = "change_operator_role",
    tag = "settings",
    params(("id" = String, Path, description = "Operator id (`op_…`)")),
    request_body = UpdateOperatorRequest,
    responses(
        (status = 200, body = OperatorDto),
        (status = 403, description = "Only owners change owners (`forbidden`)", body = ErrorBody),
        (status = 404, description = "`operator_not_found`", body = ErrorBody),
        (status = 409, description = "The workspace would lose its last owner (`last_owner`)", body = ErrorBody),
        (status = 422, description = "Bad role (`validation_failed`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn update_operator(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    JsonBody(body): JsonBody<UpdateOperatorRequest>,
) -> Result<Json<OperatorDto>, ApiError> {
    let id = path_id(&id, "operator", OperatorId::parse)?;
    let role = parse_role(&body.role)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        ciclo.change_role(&auth.actor, &id, role)?;
        // Core answers nothing; read the member back so the client sees the result.
        let member = ciclo
            .list_operators(&auth.actor)?
            .into_iter()
            .find(|(o, _)| o.id == id);
        member
            .map(|m| Json(m.into()))
            .ok_or_else(|| ApiError::not_found("operator"))
    })
    .await
}

/// Removes an operator from the workspace (their account stays for other workspaces).
#[utoipa::path(
    delete,
    path = "/api/v1/operators/{id}",
    operation_id = "remove_operator",
    tag = "settings",
    params(("id" = String, Path, description = "Operator id (`op_…`)")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "`operator_not_found`", body = ErrorBody),
        (status = 409, description = "Removing yourself (`cannot_remove_self`) or the last owner (`last_owner`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn remove_operator(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "operator", OperatorId::parse)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(ciclo.remove_operator(&auth.actor, &id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's workspace, with its write key.
#[utoipa::path(
    get,
    path = "/api/v1/workspace",
    operation_id = "get_workspace",
    tag = "settings",
    responses((status = 200, body = WorkspaceDto)),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn get_workspace(auth: Authenticated) -> Json<WorkspaceDto> {
    Json(auth.actor.workspace.into())
}

/// Changes workspace settings.
#[utoipa::path(
    patch,
    path = "/api/v1/workspace",
    operation_id = "update_workspace",
    tag = "settings",
    request_body = UpdateWorkspaceRequest,
    responses(
        (status = 200, body = WorkspaceDto),
        (status = 403, description = "The role lacks `manage_workspace` (`forbidden`)", body = ErrorBody),
        (status = 422, description = "Bad values (`validation_failed`) or unknown fields (`invalid_body`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn update_workspace(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<UpdateWorkspaceRequest>,
) -> Result<Json<WorkspaceDto>, ApiError> {
    let ciclo = state.ciclo.clone();
    blocking(move || {
        let workspace = ciclo.update_workspace(
            &auth.actor,
            body.name.as_deref(),
            body.locale.as_deref(),
            body.time_zone.as_deref(),
            body.currency.as_deref(),
        )?;
        Ok(Json(workspace.into()))
    })
    .await
}
