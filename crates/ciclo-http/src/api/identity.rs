//! The identity graph by hand: merge two profiles, undo a merge, and resolve the conflicts that
//! automatic resolution left for a person (two user ids sharing an email, say).

use crate::api::customers::IdParam;
use crate::auth::Authenticated;
use crate::dto::{
    ErrorBody, IdentityConflictDto, IdentityConflictList, MergeRecordDto, MergeRequest,
    ResolveConflictRequest,
};
use crate::error::ApiError;
use crate::extract::{blocking, body_id, check, path_id, JsonBody, QueryPairs};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ciclo_domain::ids::{ConflictId, CustomerId, MergeId};

/// Merges `loser_id` into the customer in the path.
#[utoipa::path(
    post,
    path = "/api/v1/customers/{id}/merge",
    operation_id = "merge_customers",
    tag = "identity",
    params(("id" = String, Path, description = "The surviving customer (`cus_…`)")),
    request_body = MergeRequest,
    responses(
        (status = 201, description = "Merged; the record can be undone", body = MergeRecordDto),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 404, description = "`customer_not_found`", body = ErrorBody),
        (status = 409, description = "Both have different user ids and `force` is not set (`user_id_conflict`)", body = ErrorBody),
        (status = 422, description = "Malformed `loser_id` (`validation_failed`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn merge(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    JsonBody(body): JsonBody<MergeRequest>,
) -> Result<(StatusCode, Json<MergeRecordDto>), ApiError> {
    let winner = path_id(&id, "customer", CustomerId::parse)?;
    let loser = body_id(&body.loser_id, "loser_id", CustomerId::parse)?;
    let ciclo = state.ciclo.clone();
    let record =
        blocking(move || Ok(ciclo.merge_customers(&auth.actor, &winner, &loser, body.force)?))
            .await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// Undoes a merge: both profiles exist again with their own identities, events and orders.
#[utoipa::path(
    post,
    path = "/api/v1/merges/{id}/undo",
    operation_id = "undo_merge",
    tag = "identity",
    params(("id" = String, Path, description = "Merge id (`mrg_…`)")),
    responses(
        (status = 200, description = "The merge record, now with `undone_at`", body = MergeRecordDto),
        (status = 404, description = "`merge_not_found`", body = ErrorBody),
        (status = 409, description = "The merge cannot be undone (for example, it was undone already)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn undo_merge(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<Json<MergeRecordDto>, ApiError> {
    let merge = path_id(&id, "merge", MergeId::parse)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(Json(ciclo.unmerge(&auth.actor, &merge)?.into()))).await
}

/// Identity conflicts, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/identity-conflicts",
    operation_id = "list_identity_conflicts",
    tag = "identity",
    params(("open" = Option<bool>, Query, description = "Only unresolved conflicts when true (default false: all)")),
    responses(
        (status = 200, body = IdentityConflictList),
        (status = 422, description = "A bad parameter (`validation_failed`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn list_conflicts(
    State(state): State<AppState>,
    auth: Authenticated,
    q: QueryPairs,
) -> Result<Json<IdentityConflictList>, ApiError> {
    let mut errors = Vec::new();
    let open_only = q.boolean("open", &mut errors).unwrap_or(false);
    check(errors)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        let conflicts = ciclo.list_conflicts(&auth.actor, open_only)?;
        Ok(Json(IdentityConflictList {
            items: conflicts.into_iter().map(Into::into).collect(),
        }))
    })
    .await
}

/// Resolves a conflict: merge the two profiles (b into a), or keep them apart for good.
#[utoipa::path(
    post,
    path = "/api/v1/identity-conflicts/{id}/resolve",
    operation_id = "resolve_identity_conflict",
    tag = "identity",
    params(("id" = String, Path, description = "Conflict id (`cfl_…`)")),
    request_body = ResolveConflictRequest,
    responses(
        (status = 200, body = IdentityConflictDto),
        (status = 404, description = "`identity_conflict_not_found`", body = ErrorBody),
        (status = 409, description = "Resolved already", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn resolve_conflict(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    JsonBody(body): JsonBody<ResolveConflictRequest>,
) -> Result<Json<IdentityConflictDto>, ApiError> {
    let conflict = path_id(&id, "identity_conflict", ConflictId::parse)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(
            ciclo
                .resolve_conflict(&auth.actor, &conflict, body.merge)?
                .into(),
        ))
    })
    .await
}
