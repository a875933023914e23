//! Segments (dynamic, kept current by the evaluator) and static lists: CRUD, preview of a
//! definition, members (paged and as CSV), the count history, list membership by id or CSV, and
//! the segments a customer is in.
//!
//! A definition is sent either as text in the segment language (`"city = \"Recife\" and
//! orders_count >= 2"`) or as its JSON form; core parses and checks it and reports every problem
//! as a 422 with a stable code, the field (`definition`, or a JSON pointer under it such as
//! `definition/all/0/test`) and, for text, the line and column in the reason.

use crate::api::customers::{IdParam, PageParams, DEFAULT_LIMIT, MAX_LIMIT};
use crate::api::imports::stream_csv;
use crate::auth::Authenticated;
use crate::dto::{CustomerDto, CustomerPage, ErrorBody};
use crate::error::ApiError;
use crate::extract::{blocking, bytes_rejection, check, path_id, JsonBody, QueryPairs};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ciclo_core::segments::{ListChange, SegmentInput, SegmentPreview, SegmentView, MAX_SAMPLE};
use ciclo_domain::ids::{CustomerId, SegmentId};
use ciclo_domain::operator::Permission;
use ciclo_domain::{DateTime, FieldError, Timestamp, Utc};
use ciclo_store::{CustomerQuery, RejectedRow, SegmentCount, SegmentKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Sample size of a preview when the request does not say.
const DEFAULT_SAMPLE: usize = 10;
/// Default length of the count history, days.
const DEFAULT_HISTORY_DAYS: u32 = 90;
/// Longest count history, days.
const MAX_HISTORY_DAYS: u32 = 3650;
/// Most customer ids one request may add to or remove from a list.
pub(crate) const MAX_LIST_IDS: usize = 10_000;

// --- shapes -------------------------------------------------------------------------------------

/// Whether members follow a definition (`dynamic`) or are added and removed by hand (`static`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SegmentKind)]
pub(crate) enum SegmentKindDto {
    Dynamic,
    Static,
}

impl From<SegmentKind> for SegmentKindDto {
    fn from(k: SegmentKind) -> Self {
        match k {
            SegmentKind::Dynamic => SegmentKindDto::Dynamic,
            SegmentKind::Static => SegmentKindDto::Static,
        }
    }
}

/// A segment definition: text in the segment language, or its JSON form (see the module
/// documentation of `ciclo_domain::segment` for both grammars).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Describes the request for OpenAPI; the body is read as JSON and given to core.
pub(crate) enum SegmentDefinition {
    /// In the segment language, e.g. `city = "Recife" and orders_count >= 2`.
    Text(String),
    /// The JSON form, e.g. `{"type": "attribute", "attribute": "city", "test": {"op": "eq", "value": "Recife"}}`.
    Json(BTreeMap<String, Value>),
}

/// A segment (dynamic) or a static list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Segment)]
pub(crate) struct SegmentDto {
    #[schema(example = "seg_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: SegmentKindDto,
    /// The definition in its JSON form (dynamic segments; null for lists).
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Value>,
    /// The definition in the segment language (dynamic segments).
    #[schema(example = "city = \"Recife\" and orders_count >= 2")]
    pub text: Option<String>,
    /// Whether membership changes with time alone (re-evaluated on a schedule).
    pub time_relative: bool,
    /// The segments this one includes (`in segment …`), as written.
    pub includes: Vec<String>,
    /// Members now.
    pub member_count: i64,
    /// When membership was last computed over every customer (dynamic segments).
    pub evaluated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SegmentView> for SegmentDto {
    fn from(v: SegmentView) -> Self {
        let r = v.record;
        SegmentDto {
            id: r.id.to_string(),
            name: r.name,
            description: r.description,
            kind: r.kind.into(),
            definition: r
                .definition
                .as_ref()
                .and_then(|d| serde_json::to_value(d).ok()),
            text: v.text,
            time_relative: v.time_relative,
            includes: v.includes,
            member_count: r.member_count,
            evaluated_at: r.evaluated_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct SegmentList {
    /// By name.
    pub items: Vec<SegmentDto>,
}

/// What to create or change. On create, `name` is required and a dynamic segment needs a
/// `definition`; on update (PATCH) absent keys stay. The kind cannot change.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SegmentInput)]
pub(crate) struct SegmentInputDto {
    /// Unique in the workspace (compared without regard to case), at most 120 characters.
    #[schema(example = "Recife recorrentes")]
    pub name: Option<String>,
    pub description: Option<String>,
    /// `dynamic` (default) or `static`; fixed once created.
    #[schema(value_type = Option<SegmentKindDto>)]
    pub kind: Option<String>,
    /// Dynamic segments only.
    #[schema(value_type = Option<SegmentDefinition>)]
    pub definition: Option<Value>,
}

impl From<SegmentInputDto> for SegmentInput {
    fn from(i: SegmentInputDto) -> Self {
        SegmentInput {
            name: i.name,
            description: i.description,
            kind: i.kind,
            definition: i.definition,
        }
    }
}

/// A definition to try without saving it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewRequest {
    #[schema(value_type = SegmentDefinition)]
    pub definition: Option<Value>,
    /// How many matching customers to return, 0 to 50 (default 10), newest first.
    #[schema(minimum = 0, maximum = 50)]
    pub sample: Option<i64>,
}

/// How many customers a definition matches now, and a few of them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = SegmentPreview)]
pub(crate) struct SegmentPreviewDto {
    /// Customers matching.
    pub count: usize,
    /// Customers looked at (every surviving profile).
    pub customers: usize,
    pub sample: Vec<CustomerDto>,
    /// The definition as the segment language prints it.
    pub text: String,
    /// How long the evaluation took.
    pub elapsed_ms: f64,
}

impl From<SegmentPreview> for SegmentPreviewDto {
    fn from(p: SegmentPreview) -> Self {
        SegmentPreviewDto {
            count: p.count,
            customers: p.customers,
            sample: p.sample.into_iter().map(Into::into).collect(),
            text: p.text,
            elapsed_ms: p.elapsed_ms,
        }
    }
}

/// One point of the membership count history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = SegmentCount)]
pub(crate) struct SegmentCountDto {
    pub at: DateTime<Utc>,
    pub count: i64,
}

impl From<SegmentCount> for SegmentCountDto {
    fn from(c: SegmentCount) -> Self {
        SegmentCountDto {
            at: c.at,
            count: c.count,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct SegmentHistory {
    /// Start of the history.
    pub since: DateTime<Utc>,
    /// Oldest first; the last point is the current count.
    pub points: Vec<SegmentCountDto>,
}

/// Customers to add to or remove from a static list.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListMembersRequest {
    /// Customer ids (`cus_…`); a merged-away id counts as its surviving profile. At most 10,000.
    pub customer_ids: Vec<String>,
}

/// An input that named nobody.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ListRejection)]
pub(crate) struct ListRejectionDto {
    /// CSV imports: the line in the file (the header is line 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// `customer_ids` requests: the position in the array, from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// `required`, `invalid_id`, `invalid_value`, `not_found`.
    #[schema(example = "not_found")]
    pub code: String,
    /// `customer_ids[i]`, or the CSV column read (`id`, `email`, `phone`, `whatsapp`, `user_id`).
    pub field: String,
    pub reason: String,
}

/// What a change to a list's members did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ListChange)]
pub(crate) struct ListChangeDto {
    /// Members added (or removed) now.
    pub changed: i64,
    /// Customers that already were (or were not) members.
    pub unchanged: i64,
    pub rejected: Vec<ListRejectionDto>,
}

impl ListChangeDto {
    /// From a change made by id: the position becomes `index` and the field names the array slot.
    fn by_index(change: ListChange) -> Self {
        ListChangeDto::shape(change, |r| ListRejectionDto {
            line: None,
            index: Some(r.line),
            field: format!("customer_ids[{}]", r.line),
            code: r.code,
            reason: r.reason,
        })
    }

    /// From a change made by CSV: rows are named by their line.
    fn by_line(change: ListChange) -> Self {
        ListChangeDto::shape(change, |r| ListRejectionDto {
            line: Some(r.line),
            index: None,
            field: r.field,
            code: r.code,
            reason: r.reason,
        })
    }

    fn shape(change: ListChange, row: impl Fn(RejectedRow) -> ListRejectionDto) -> Self {
        ListChangeDto {
            changed: change.changed,
            unchanged: change.unchanged,
            rejected: change.rejected.into_iter().map(row).collect(),
        }
    }
}

/// A segment a customer is in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = CustomerSegment)]
pub(crate) struct CustomerSegmentDto {
    #[serde(flatten)]
    pub segment: SegmentDto,
    /// When the customer entered it.
    pub member_since: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct CustomerSegmentList {
    /// By segment name.
    pub items: Vec<CustomerSegmentDto>,
}

/// The length of a count history.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query string for OpenAPI; parsing is in `history`.
pub(crate) struct HistoryParams {
    /// Days back from now, 1 to 3650 (default 90).
    #[param(minimum = 1, maximum = 3650)]
    days: Option<u32>,
}

/// Options of a CSV list import.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query string for OpenAPI; parsing is in `import_members`.
pub(crate) struct ListImportParams {
    /// Remove the customers the file names instead of adding them.
    remove: Option<bool>,
}

const SEGMENT_ID: &str = "Segment id (`seg_…`)";

fn segment_id(raw: &str) -> Result<SegmentId, ApiError> {
    path_id(raw, "segment", SegmentId::parse)
}

fn created(view: SegmentView) -> Response {
    let location = HeaderValue::from_str(&format!("/api/v1/segments/{}", view.record.id)).ok();
    let mut response = (StatusCode::CREATED, Json(SegmentDto::from(view))).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

// --- handlers -----------------------------------------------------------------------------------

/// Every segment and static list of the workspace, by name.
#[utoipa::path(
    get,
    path = "/api/v1/segments",
    operation_id = "list_segments",
    tag = "segments",
    responses(
        (status = 200, body = SegmentList),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<SegmentList>, ApiError> {
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(SegmentList {
            items: ciclo
                .list_segments(&auth.actor)?
                .into_iter()
                .map(Into::into)
                .collect(),
        }))
    })
    .await
}

/// Creates a segment or a static list. A dynamic segment is evaluated over every customer before
/// the answer (its first members get `Segment Entered` events).
#[utoipa::path(
    post,
    path = "/api/v1/segments",
    operation_id = "create_segment",
    tag = "segments",
    request_body = SegmentInputDto,
    responses(
        (status = 201, description = "Created; `Location` names the new segment", body = SegmentDto),
        (status = 400, description = "Not JSON (`invalid_json`)", body = ErrorBody),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 409, description = "Another segment has this name (`segment_name_taken`)", body = ErrorBody),
        (status = 422, description = "Invalid input (`validation_failed`, every problem in `details`: `required`, `invalid_kind`, \
            `syntax_error`, `unknown_field`, `type_mismatch`, `invalid_value`, `unknown_segment`, `cyclic_reference`…, with the \
            field `definition` or a JSON pointer under it, and for text the line and column in the reason)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<SegmentInputDto>,
) -> Result<Response, ApiError> {
    let ciclo = state.ciclo.clone();
    let input = SegmentInput::from(body);
    let view = blocking(move || Ok(ciclo.create_segment(&auth.actor, &input)?)).await?;
    Ok(created(view))
}

/// One segment or list.
#[utoipa::path(
    get,
    path = "/api/v1/segments/{id}",
    operation_id = "get_segment",
    tag = "segments",
    params(("id" = String, Path, description = SEGMENT_ID)),
    responses(
        (status = 200, body = SegmentDto),
        (status = 404, description = "`segment_not_found`", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<Json<SegmentDto>, ApiError> {
    let id = segment_id(&id)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(Json(ciclo.get_segment(&auth.actor, &id)?.into()))).await
}

/// Changes a segment's name, description or definition. A new definition is evaluated over every
/// customer (with the segments that include this one) before the answer.
#[utoipa::path(
    patch,
    path = "/api/v1/segments/{id}",
    operation_id = "update_segment",
    tag = "segments",
    params(("id" = String, Path, description = SEGMENT_ID)),
    request_body = SegmentInputDto,
    responses(
        (status = 200, body = SegmentDto),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 404, description = "`segment_not_found`", body = ErrorBody),
        (status = 409, description = "Another segment has this name (`segment_name_taken`)", body = ErrorBody),
        (status = 422, description = "Invalid input (`validation_failed`: `kind_fixed`, `not_allowed`, definition errors…)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    JsonBody(body): JsonBody<SegmentInputDto>,
) -> Result<Json<SegmentDto>, ApiError> {
    let id = segment_id(&id)?;
    let ciclo = state.ciclo.clone();
    let input = SegmentInput::from(body);
    blocking(move || {
        ciclo
            .update_segment(&auth.actor, &id, &input)
            .map(|view| Json(view.into()))
            .map_err(ApiError::from)
    })
    .await
}

/// Deletes a segment or list with its members and history. A segment that another includes
/// cannot be deleted.
#[utoipa::path(
    delete,
    path = "/api/v1/segments/{id}",
    operation_id = "delete_segment",
    tag = "segments",
    params(("id" = String, Path, description = SEGMENT_ID)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 404, description = "`segment_not_found`", body = ErrorBody),
        (status = 409, description = "Other segments include it (`segment_in_use`; the message names them)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<StatusCode, ApiError> {
    let id = segment_id(&id)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(ciclo.delete_segment(&auth.actor, &id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Counts the customers a definition matches now and returns a sample of them, without saving
/// anything.
#[utoipa::path(
    post,
    path = "/api/v1/segments/preview",
    operation_id = "preview_segment",
    tag = "segments",
    request_body = PreviewRequest,
    responses(
        (status = 200, body = SegmentPreviewDto),
        (status = 400, description = "Not JSON (`invalid_json`)", body = ErrorBody),
        (status = 422, description = "A bad definition or sample (`validation_failed`, every problem in `details`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn preview(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<PreviewRequest>,
) -> Result<Json<SegmentPreviewDto>, ApiError> {
    let mut errors = Vec::new();
    let sample = match body.sample {
        None => DEFAULT_SAMPLE,
        Some(n) if (0..=MAX_SAMPLE as i64).contains(&n) => n as usize,
        Some(_) => {
            errors.push(FieldError::new(
                "invalid_sample",
                "sample",
                format!("sample must be a whole number from 0 to {MAX_SAMPLE}"),
            ));
            DEFAULT_SAMPLE
        }
    };
    let definition = match body.definition {
        Some(d) => Some(d),
        None => {
            errors.push(FieldError::new(
                "required",
                "definition",
                "send the definition to preview, as text or as its JSON form",
            ));
            None
        }
    };
    check(errors)?;
    let definition = definition.ok_or_else(ApiError::internal)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        ciclo
            .preview_segment(&auth.actor, &definition, sample)
            .map(|preview| Json(preview.into()))
            .map_err(ApiError::from)
    })
    .await
}

/// The members of a segment or list, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/segments/{id}/members",
    operation_id = "list_segment_members",
    tag = "segments",
    params(("id" = String, Path, description = SEGMENT_ID), PageParams),
    responses(
        (status = 200, body = CustomerPage),
        (status = 404, description = "`segment_not_found`", body = ErrorBody),
        (status = 422, description = "A bad parameter (`validation_failed`: `invalid_limit`, `invalid_cursor`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn members(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    q: QueryPairs,
) -> Result<Json<CustomerPage>, ApiError> {
    let id = segment_id(&id)?;
    let mut errors = Vec::new();
    let limit = q.limit(DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
    check(errors)?;
    let cursor = q.get("cursor").map(str::to_string);
    let ciclo = state.ciclo.clone();
    blocking(move || {
        ciclo.get_segment(&auth.actor, &id)?;
        let query = CustomerQuery {
            segment: Some(id),
            limit,
            ..CustomerQuery::default()
        };
        Ok(Json(
            ciclo
                .list_customers(&auth.actor, query, cursor.as_deref())?
                .into(),
        ))
    })
    .await
}

/// The members of a segment or list as CSV (the columns of the customer export).
#[utoipa::path(
    get,
    path = "/api/v1/segments/{id}/members.csv",
    operation_id = "export_segment_members_csv",
    tag = "segments",
    params(("id" = String, Path, description = SEGMENT_ID)),
    responses(
        (status = 200, description = "The CSV file", content_type = "text/csv", body = String),
        (status = 403, description = "The role lacks `export_customers` (`forbidden`)", body = ErrorBody),
        (status = 404, description = "`segment_not_found`", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn members_csv(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<Response, ApiError> {
    let id = segment_id(&id)?;
    // Checked first so that a caller who may not export learns nothing about which ids exist.
    auth.actor.require(Permission::ExportCustomers)?;
    let file_name = format!("{id}.csv");
    stream_csv(state.ciclo.clone(), file_name, move |ciclo, out| {
        ciclo.get_segment(&auth.actor, &id)?;
        let query = CustomerQuery {
            segment: Some(id),
            limit: MAX_LIMIT,
            ..CustomerQuery::default()
        };
        ciclo.export_customers_csv(&auth.actor, query, out)
    })
    .await
}

/// The membership count over time, oldest first, ending with the current count.
#[utoipa::path(
    get,
    path = "/api/v1/segments/{id}/history",
    operation_id = "segment_history",
    tag = "segments",
    params(("id" = String, Path, description = SEGMENT_ID), HistoryParams),
    responses(
        (status = 200, body = SegmentHistory),
        (status = 404, description = "`segment_not_found`", body = ErrorBody),
        (status = 422, description = "A bad parameter (`validation_failed`: `invalid_days`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    q: QueryPairs,
) -> Result<Json<SegmentHistory>, ApiError> {
    let id = segment_id(&id)?;
    let mut errors = Vec::new();
    let days = crate::api::analytics::bounded(
        &q,
        "days",
        DEFAULT_HISTORY_DAYS,
        MAX_HISTORY_DAYS,
        &mut errors,
    );
    check(errors)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        let since: Timestamp = ciclo.clock.now() - chrono::Duration::days(i64::from(days));
        let points = ciclo.segment_history(&auth.actor, &id, since)?;
        Ok(Json(SegmentHistory {
            since,
            points: points.into_iter().map(Into::into).collect(),
        }))
    })
    .await
}

fn checked_ids(body: ListMembersRequest) -> Result<Vec<String>, ApiError> {
    if body.customer_ids.len() > MAX_LIST_IDS {
        return Err(ApiError::invalid_field(
            "too_many",
            "customer_ids",
            format!("at most {MAX_LIST_IDS} customers per request; send the rest in more requests or as CSV"),
        ));
    }
    Ok(body
        .customer_ids
        .into_iter()
        .map(|c| c.trim().to_string())
        .collect())
}

/// Adds customers to a static list. Ids that name nobody are reported by position; the others
/// are added.
#[utoipa::path(
    post,
    path = "/api/v1/segments/{id}/members",
    operation_id = "add_list_members",
    tag = "segments",
    params(("id" = String, Path, description = SEGMENT_ID)),
    request_body = ListMembersRequest,
    responses(
        (status = 200, body = ListChangeDto),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 404, description = "`segment_not_found`", body = ErrorBody),
        (status = 422, description = "Not a static list (`validation_failed`: `not_a_list`), or too many ids (`too_many`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn add_members(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    JsonBody(body): JsonBody<ListMembersRequest>,
) -> Result<Json<ListChangeDto>, ApiError> {
    let id = segment_id(&id)?;
    let ids = checked_ids(body)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(ListChangeDto::by_index(ciclo.add_to_list(
            &auth.actor,
            &id,
            &ids,
        )?)))
    })
    .await
}

/// Removes customers from a static list.
#[utoipa::path(
    delete,
    path = "/api/v1/segments/{id}/members",
    operation_id = "remove_list_members",
    tag = "segments",
    params(("id" = String, Path, description = SEGMENT_ID)),
    request_body = ListMembersRequest,
    responses(
        (status = 200, body = ListChangeDto),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 404, description = "`segment_not_found`", body = ErrorBody),
        (status = 422, description = "Not a static list (`validation_failed`: `not_a_list`), or too many ids (`too_many`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn remove_members(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    JsonBody(body): JsonBody<ListMembersRequest>,
) -> Result<Json<ListChangeDto>, ApiError> {
    let id = segment_id(&id)?;
    let ids = checked_ids(body)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(ListChangeDto::by_index(ciclo.remove_from_list(
            &auth.actor,
            &id,
            &ids,
        )?)))
    })
    .await
}

/// Adds (or, with `remove=true`, removes) the customers a CSV file names to a static list. The
/// file needs a header with a column `id` (or `customer_id`), `email`, `phone`, `whatsapp` or
/// `user_id` (the first found, in that order; `e-mail`, `telefone` and `celular` are understood).
/// Rows that name nobody are reported by line; the others are applied.
#[utoipa::path(
    post,
    path = "/api/v1/segments/{id}/members/import",
    operation_id = "import_list_members",
    tag = "segments",
    params(("id" = String, Path, description = SEGMENT_ID), ListImportParams),
    request_body(content = String, content_type = "text/csv", description = "The CSV file, header first"),
    responses(
        (status = 200, body = ListChangeDto),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 404, description = "`segment_not_found`", body = ErrorBody),
        (status = 413, description = "The file is larger than the server accepts (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `not_a_list`, `missing_column`, `invalid_csv`, `invalid_boolean`", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn import_members(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    q: QueryPairs,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ListChangeDto>, ApiError> {
    let id = segment_id(&id)?;
    let mut errors = Vec::new();
    let remove = q.boolean("remove", &mut errors).unwrap_or(false);
    check(errors)?;
    let csv = body.map_err(bytes_rejection)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(ListChangeDto::by_line(ciclo.list_from_csv(
            &auth.actor,
            &id,
            csv.as_ref(),
            remove,
        )?)))
    })
    .await
}

/// The segments and lists a customer is in, by name, with when they entered.
#[utoipa::path(
    get,
    path = "/api/v1/customers/{id}/segments",
    operation_id = "customer_segments",
    tag = "segments",
    params(("id" = String, Path, description = "Customer id (`cus_…`)")),
    responses(
        (status = 200, body = CustomerSegmentList),
        (status = 404, description = "`customer_not_found`", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn customer_segments(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<Json<CustomerSegmentList>, ApiError> {
    let id = path_id(&id, "customer", CustomerId::parse)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(CustomerSegmentList {
            items: ciclo
                .customer_segments(&auth.actor, &id)?
                .into_iter()
                .map(|(view, since)| CustomerSegmentDto {
                    segment: view.into(),
                    member_since: since,
                })
                .collect(),
        }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_changes_name_rejections_by_index_or_by_line() {
        let change = || ListChange {
            changed: 1,
            unchanged: 0,
            rejected: vec![RejectedRow {
                line: 2,
                code: "not_found".into(),
                field: "email".into(),
                reason: "no customer has this identifier".into(),
            }],
        };
        let by_index = ListChangeDto::by_index(change());
        assert_eq!(
            (by_index.rejected[0].index, by_index.rejected[0].line),
            (Some(2), None)
        );
        assert_eq!(by_index.rejected[0].field, "customer_ids[2]");
        let by_line = ListChangeDto::by_line(change());
        assert_eq!(
            (by_line.rejected[0].index, by_line.rejected[0].line),
            (None, Some(2))
        );
        assert_eq!(by_line.rejected[0].field, "email");
    }
}
