//! Customer profiles: list and search with cursor pagination, create, read (the merged view),
//! update, delete, timeline and orders.

use crate::auth::Authenticated;
use crate::dto::{CustomerInput, CustomerPage, CustomerViewDto, ErrorBody, EventPage, OrderList};
use crate::error::ApiError;
use crate::extract::{blocking, check, path_id, JsonBody, QueryPairs};
use crate::AppState;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ciclo_domain::event::EventType;
use ciclo_domain::ids::{CustomerId, SegmentId};
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::{FieldError, NaiveDate, Timestamp};
use ciclo_store::{CustomerQuery, CustomerSort, TimelineQuery};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// Default page size of every list.
pub(crate) const DEFAULT_LIMIT: i64 = 50;
/// Largest page a client may ask for.
pub(crate) const MAX_LIMIT: i64 = 500;

/// The single `{id}` segment of a path, as text; each handler parses it into its id type.
/// A path that cannot be decoded names nothing, so it is a 404 like any unknown id.
pub(crate) struct IdParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| IdParam(id))
            .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint"))
    }
}

/// The sort orders, as the query string spells them. Parsing goes through this enum so that the
/// documented values and the accepted ones are the same.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CustomerSort)]
pub(crate) enum CustomerSortDto {
    /// Newest first.
    Newest,
    /// Most recently seen first.
    LastSeen,
    /// Highest total spent first.
    TotalSpent,
    /// By name, A to Z.
    Name,
}

/// Filters of the customer list (and of the customer CSV export).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query string for OpenAPI; parsing is in `customer_filters`.
pub(crate) struct CustomerFilterParams {
    /// Prefix of the name (or of any word in it), of the email, or of the phone's digits.
    search: Option<String>,
    /// Customers with this tag.
    tag: Option<String>,
    /// Customers in this city.
    city: Option<String>,
    /// Customers with (true) or without (false) orders.
    has_ordered: Option<bool>,
    /// Customers seen at or after this time (RFC 3339, or a date `YYYY-MM-DD` meaning its midnight UTC).
    #[param(value_type = Option<String>, format = DateTime)]
    seen_after: Option<String>,
    /// Customers in this lifecycle stage.
    stage: Option<crate::api::analytics::StageDto>,
    /// Members of this segment or static list (`seg_…`).
    segment: Option<String>,
    /// Order of the list (default `newest`).
    sort: Option<CustomerSortDto>,
}

/// A page of a list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query string for OpenAPI; parsing is in `QueryPairs::limit`.
pub(crate) struct PageParams {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Filters of a timeline.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query string for OpenAPI; parsing is in `timeline`.
pub(crate) struct TimelineParams {
    /// Event types to keep; repeat the parameter or separate with commas (`type=track&type=page`).
    #[param(rename = "type", style = Form, explode)]
    event_type: Option<Vec<crate::dto::EventTypeDto>>,
    /// Track event names to keep (`event=Order Completed`), repeatable.
    #[param(style = Form, explode)]
    event: Option<Vec<String>>,
    /// Channels to keep (`web`, `mobile`, `server`, `email`, `whatsapp`…), repeatable.
    #[param(style = Form, explode)]
    channel: Option<Vec<String>>,
}

/// A time parameter: RFC 3339, or a plain date meaning midnight UTC.
fn parse_time(raw: &str) -> Option<Timestamp> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Reads the list filters; problems are added to `errors`. The limit is left for the caller.
pub(crate) fn customer_filters(q: &QueryPairs, errors: &mut Vec<FieldError>) -> CustomerQuery {
    let sort = match q
        .get("sort")
        .map(|raw| serde_json::from_value::<CustomerSortDto>(Value::String(raw.to_string())))
    {
        None | Some(Ok(CustomerSortDto::Newest)) => CustomerSort::Newest,
        Some(Ok(CustomerSortDto::LastSeen)) => CustomerSort::LastSeen,
        Some(Ok(CustomerSortDto::TotalSpent)) => CustomerSort::TotalSpent,
        Some(Ok(CustomerSortDto::Name)) => CustomerSort::Name,
        Some(Err(_)) => {
            errors.push(FieldError::new(
                "invalid_sort",
                "sort",
                "expected newest, last_seen, total_spent or name",
            ));
            CustomerSort::Newest
        }
    };
    let seen_after = q.get("seen_after").and_then(|raw| {
        let parsed = parse_time(raw);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "invalid_timestamp",
                "seen_after",
                "expected an RFC 3339 time or a YYYY-MM-DD date",
            ));
        }
        parsed
    });
    let stage = q.get("stage").and_then(|raw| {
        let parsed = Stage::parse(raw);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "invalid_stage",
                "stage",
                "expected reach, acquisition, nurture, retention, loyalty, at_risk or lapsed",
            ));
        }
        parsed
    });
    let segment = q.get("segment").and_then(|raw| {
        SegmentId::parse(raw)
            .map_err(|_| {
                errors.push(FieldError::new(
                    "invalid_segment",
                    "segment",
                    "expected a segment id (`seg_…`)",
                ))
            })
            .ok()
    });
    CustomerQuery {
        search: q.get("search").map(str::to_string),
        tag: q.get("tag").map(str::to_string),
        city: q.get("city").map(str::to_string),
        has_ordered: q.boolean("has_ordered", errors),
        seen_after,
        stage,
        segment,
        sort,
        after: None,
        limit: DEFAULT_LIMIT,
    }
}

/// Lists and searches customers.
#[utoipa::path(
    get,
    path = "/api/v1/customers",
    operation_id = "list_customers",
    tag = "customers",
    params(CustomerFilterParams, PageParams),
    responses(
        (status = 200, body = CustomerPage),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
        (status = 403, description = "The role lacks `read_customers` (`forbidden`)", body = ErrorBody),
        (status = 422, description = "A bad parameter (`validation_failed`: `invalid_limit`, `invalid_sort`, `invalid_stage`, `invalid_segment`, `invalid_cursor`…)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    q: QueryPairs,
) -> Result<Json<CustomerPage>, ApiError> {
    let mut errors = Vec::new();
    let mut query = customer_filters(&q, &mut errors);
    query.limit = q.limit(DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
    check(errors)?;
    let cursor = q.get("cursor").map(str::to_string);
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(
            ciclo
                .list_customers(&auth.actor, query, cursor.as_deref())?
                .into(),
        ))
    })
    .await
}

/// Creates a customer. Its email, phone and WhatsApp become identities.
#[utoipa::path(
    post,
    path = "/api/v1/customers",
    operation_id = "create_customer",
    tag = "customers",
    request_body = CustomerInput,
    responses(
        (status = 201, description = "Created; `Location` names the new profile", body = CustomerViewDto),
        (status = 400, description = "Not JSON (`invalid_json`)", body = ErrorBody),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 409, description = "An identifier belongs to another profile (`identity_taken`)", body = ErrorBody),
        (status = 422, description = "Invalid fields (`validation_failed`, every problem in `details`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let ciclo = state.ciclo.clone();
    let view = blocking(move || Ok(ciclo.create_customer(&auth.actor, &body)?)).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/customers/{}", view.customer.id)).ok();
    let mut response = (StatusCode::CREATED, Json(CustomerViewDto::from(view))).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A customer as the merged view. Asking for a profile that was merged away answers the survivor.
#[utoipa::path(
    get,
    path = "/api/v1/customers/{id}",
    operation_id = "get_customer",
    tag = "customers",
    params(("id" = String, Path, description = "Customer id (`cus_…`)")),
    responses(
        (status = 200, body = CustomerViewDto),
        (status = 404, description = "`customer_not_found`", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<Json<CustomerViewDto>, ApiError> {
    let id = path_id(&id, "customer", CustomerId::parse)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(Json(ciclo.get_customer(&auth.actor, &id)?.into()))).await
}

/// Changes some fields of a customer: absent keys stay, null clears, `traits` merge key by key.
#[utoipa::path(
    patch,
    path = "/api/v1/customers/{id}",
    operation_id = "update_customer",
    tag = "customers",
    params(("id" = String, Path, description = "Customer id (`cus_…`)")),
    request_body = CustomerInput,
    responses(
        (status = 200, body = CustomerViewDto),
        (status = 404, description = "`customer_not_found`", body = ErrorBody),
        (status = 409, description = "An identifier belongs to another profile (`identity_taken`)", body = ErrorBody),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<CustomerViewDto>, ApiError> {
    let id = path_id(&id, "customer", CustomerId::parse)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(Json(ciclo.update_customer(&auth.actor, &id, &body)?.into()))).await
}

/// Deletes a customer and everything merged into it, with their events and orders.
#[utoipa::path(
    delete,
    path = "/api/v1/customers/{id}",
    operation_id = "delete_customer",
    tag = "customers",
    params(("id" = String, Path, description = "Customer id (`cus_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 404, description = "`customer_not_found`", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "customer", CustomerId::parse)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(ciclo.delete_customer(&auth.actor, &id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The unified timeline of a customer and everything merged into it, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/customers/{id}/timeline",
    operation_id = "customer_timeline",
    tag = "customers",
    params(("id" = String, Path, description = "Customer id (`cus_…`)"), TimelineParams, PageParams),
    responses(
        (status = 200, body = EventPage),
        (status = 404, description = "`customer_not_found`", body = ErrorBody),
        (status = 422, description = "A bad parameter (`validation_failed`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn timeline(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    q: QueryPairs,
) -> Result<Json<EventPage>, ApiError> {
    let id = path_id(&id, "customer", CustomerId::parse)?;
    let mut errors = Vec::new();
    let mut event_types = Vec::new();
    for raw in q.all("type") {
        match EventType::parse(&raw) {
            Some(t) => event_types.push(t),
            None => errors.push(FieldError::new(
                "invalid_event_type",
                "type",
                format!("{raw:?} is not identify, track, page, screen, group or alias"),
            )),
        }
    }
    let query = TimelineQuery {
        event_types,
        names: q
            .0
            .iter()
            .filter(|(k, v)| k == "event" && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect(),
        channels: q
            .all("channel")
            .into_iter()
            .map(|c| c.to_lowercase())
            .collect(),
        before: None,
        limit: q.limit(DEFAULT_LIMIT, MAX_LIMIT, &mut errors),
    };
    check(errors)?;
    let cursor = q.get("cursor").map(str::to_string);
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(
            ciclo
                .timeline(&auth.actor, &id, query, cursor.as_deref())?
                .into(),
        ))
    })
    .await
}

/// Orders of a customer and everything merged into it, newest first, with items.
#[utoipa::path(
    get,
    path = "/api/v1/customers/{id}/orders",
    operation_id = "customer_orders",
    tag = "customers",
    params(
        ("id" = String, Path, description = "Customer id (`cus_…`)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many orders (default 50)"),
    ),
    responses(
        (status = 200, body = OrderList),
        (status = 404, description = "`customer_not_found`", body = ErrorBody),
        (status = 422, description = "A bad limit (`validation_failed`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn orders(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
    q: QueryPairs,
) -> Result<Json<OrderList>, ApiError> {
    let id = path_id(&id, "customer", CustomerId::parse)?;
    let mut errors = Vec::new();
    let limit = q.limit(DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
    check(errors)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        let orders = ciclo.customer_orders(&auth.actor, &id, limit)?;
        Ok(Json(OrderList {
            items: orders.into_iter().map(Into::into).collect(),
        }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> QueryPairs {
        QueryPairs(
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn filters_are_read_and_every_bad_one_reported() {
        let mut errors = Vec::new();
        let q = customer_filters(
            &pairs(&[
                ("search", "ana"),
                ("has_ordered", "true"),
                ("seen_after", "2026-01-02"),
                ("sort", "total_spent"),
            ]),
            &mut errors,
        );
        assert!(errors.is_empty());
        assert_eq!(q.search.as_deref(), Some("ana"));
        assert_eq!(q.has_ordered, Some(true));
        assert_eq!(q.sort, CustomerSort::TotalSpent);
        assert_eq!(
            q.seen_after.unwrap().to_rfc3339(),
            "2026-01-02T00:00:00+00:00"
        );
        customer_filters(
            &pairs(&[
                ("sort", "age"),
                ("seen_after", "yesterday"),
                ("has_ordered", "perhaps"),
            ]),
            &mut errors,
        );
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["sort", "seen_after", "has_ordered"]);
    }
}
