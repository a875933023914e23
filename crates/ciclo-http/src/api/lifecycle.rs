//! Lifecycle stages: the workspace's rules (read and replace), customers per stage, the moves
//! between stages in a period, and one customer's stage with its history. Stages are computed by
//! core's evaluator (in real time and on a schedule) from the rules.

use crate::api::analytics::{period, StageDto};
use crate::api::customers::IdParam;
use crate::auth::Authenticated;
use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::{blocking, path_id, JsonBody, QueryPairs};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use ciclo_core::lifecycle::CustomerLifecycle;
use ciclo_domain::ids::CustomerId;
use ciclo_domain::lifecycle::LifecycleRules;
use ciclo_domain::{DateTime, Utc};
use ciclo_store::{StageChange, StageTransition};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Default length of the flow period, days.
const DEFAULT_FLOW_DAYS: i64 = 90;

// --- shapes -------------------------------------------------------------------------------------

/// The thresholds that place a customer in a stage (first rule that holds): `reach` without
/// orders; `lapsed` when the last order is more than `lapsed_after_days` old; `at_risk` when it
/// is more than `at_risk_after_days` old; `loyalty` with at least `loyalty_min_orders` orders and
/// `loyalty_min_spent_minor` spent; `retention` with two or more orders; `acquisition` with one
/// order placed in the last `acquisition_days`; `nurture` with one older order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LifecycleRules)]
pub(crate) struct LifecycleRulesDto {
    /// 1 to 3650 (default 30).
    #[schema(example = 30)]
    pub acquisition_days: i64,
    /// 1 to 3650 (default 120).
    #[schema(example = 120)]
    pub at_risk_after_days: i64,
    /// 1 to 7300 and more than `at_risk_after_days` (default 365).
    #[schema(example = 365)]
    pub lapsed_after_days: i64,
    /// 2 to 1000 (default 5).
    #[schema(example = 5)]
    pub loyalty_min_orders: i64,
    /// Minor units (centavos), not negative (default 0).
    #[schema(example = 0)]
    pub loyalty_min_spent_minor: i64,
}

impl From<LifecycleRules> for LifecycleRulesDto {
    fn from(r: LifecycleRules) -> Self {
        LifecycleRulesDto {
            acquisition_days: r.acquisition_days,
            at_risk_after_days: r.at_risk_after_days,
            lapsed_after_days: r.lapsed_after_days,
            loyalty_min_orders: r.loyalty_min_orders,
            loyalty_min_spent_minor: r.loyalty_min_spent_minor,
        }
    }
}

impl From<LifecycleRulesDto> for LifecycleRules {
    fn from(r: LifecycleRulesDto) -> Self {
        LifecycleRules {
            acquisition_days: r.acquisition_days,
            at_risk_after_days: r.at_risk_after_days,
            lapsed_after_days: r.lapsed_after_days,
            loyalty_min_orders: r.loyalty_min_orders,
            loyalty_min_spent_minor: r.loyalty_min_spent_minor,
        }
    }
}

/// Customers in one stage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct StageCount {
    pub stage: StageDto,
    pub customers: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct StageCounts {
    /// Every stage, in the order of the cycle (zeros included).
    pub items: Vec<StageCount>,
    /// Customers with a stage.
    pub total: i64,
}

/// How many customers moved from one stage to another.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = StageTransition)]
pub(crate) struct StageTransitionDto {
    /// Null for a customer's first stage.
    pub from: Option<StageDto>,
    pub to: StageDto,
    pub customers: i64,
}

impl From<StageTransition> for StageTransitionDto {
    fn from(t: StageTransition) -> Self {
        StageTransitionDto {
            from: t.from.map(Into::into),
            to: t.to.into(),
            customers: t.customers,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct StageFlow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Most frequent first.
    pub items: Vec<StageTransitionDto>,
}

/// One move of a customer between stages.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = StageChange)]
pub(crate) struct StageChangeDto {
    /// The profile that moved (this customer or one merged into it).
    pub customer_id: String,
    /// Null for the first stage.
    pub from: Option<StageDto>,
    pub to: StageDto,
    pub at: DateTime<Utc>,
}

impl From<StageChange> for StageChangeDto {
    fn from(c: StageChange) -> Self {
        StageChangeDto {
            customer_id: c.customer_id.to_string(),
            from: c.from.map(Into::into),
            to: c.to.into(),
            at: c.at,
        }
    }
}

/// A customer's stage now and how they got there.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = CustomerLifecycle)]
pub(crate) struct CustomerLifecycleDto {
    /// Null until the evaluator has seen the customer.
    pub stage: Option<StageDto>,
    /// When the customer entered the stage.
    pub since: Option<DateTime<Utc>>,
    /// Newest first.
    pub history: Vec<StageChangeDto>,
}

impl From<CustomerLifecycle> for CustomerLifecycleDto {
    fn from(l: CustomerLifecycle) -> Self {
        CustomerLifecycleDto {
            stage: l.stage.map(Into::into),
            since: l.since,
            history: l.history.into_iter().map(Into::into).collect(),
        }
    }
}

/// The period of a stage flow.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query string for OpenAPI; parsing is in `flow`.
pub(crate) struct FlowParams {
    /// Start, inclusive (RFC 3339, or a date `YYYY-MM-DD` meaning its midnight UTC). Default: 90 days before `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// End, exclusive (same formats; a date means the end of that day UTC). Default: now.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
}

// --- handlers -----------------------------------------------------------------------------------

/// The workspace's lifecycle rules (the defaults until changed).
#[utoipa::path(
    get,
    path = "/api/v1/lifecycle/rules",
    operation_id = "get_lifecycle_rules",
    tag = "lifecycle",
    responses(
        (status = 200, body = LifecycleRulesDto),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn rules(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<LifecycleRulesDto>, ApiError> {
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(Json(ciclo.lifecycle_rules(&auth.actor)?.into()))).await
}

/// Replaces the lifecycle rules (every field is required) and re-evaluates every customer's stage
/// with them before answering; each move is recorded in the stage history and on the timeline.
#[utoipa::path(
    put,
    path = "/api/v1/lifecycle/rules",
    operation_id = "set_lifecycle_rules",
    tag = "lifecycle",
    request_body = LifecycleRulesDto,
    responses(
        (status = 200, description = "The rules now in force", body = LifecycleRulesDto),
        (status = 400, description = "Not JSON (`invalid_json`)", body = ErrorBody),
        (status = 403, description = "The role lacks `manage_workspace` (`forbidden`)", body = ErrorBody),
        (status = 422, description = "A missing field (`invalid_body`), or numbers out of range (`validation_failed`: `out_of_range`, every problem in `details`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn set_rules(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<LifecycleRulesDto>,
) -> Result<Json<LifecycleRulesDto>, ApiError> {
    let ciclo = state.ciclo.clone();
    let rules = LifecycleRules::from(body);
    blocking(move || Ok(Json(ciclo.set_lifecycle_rules(&auth.actor, &rules)?.into()))).await
}

/// Customers per stage now, every stage in the order of the cycle.
#[utoipa::path(
    get,
    path = "/api/v1/lifecycle/stages",
    operation_id = "lifecycle_stage_counts",
    tag = "lifecycle",
    responses(
        (status = 200, body = StageCounts),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn stages(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<StageCounts>, ApiError> {
    let ciclo = state.ciclo.clone();
    blocking(move || {
        let counts = ciclo.stage_counts(&auth.actor)?;
        Ok(Json(StageCounts {
            total: counts.iter().map(|(_, n)| n).sum(),
            items: counts
                .into_iter()
                .map(|(stage, customers)| StageCount {
                    stage: stage.into(),
                    customers,
                })
                .collect(),
        }))
    })
    .await
}

/// Moves between stages recorded in the period, by (from, to), most frequent first.
#[utoipa::path(
    get,
    path = "/api/v1/lifecycle/flow",
    operation_id = "lifecycle_flow",
    tag = "lifecycle",
    params(FlowParams),
    responses(
        (status = 200, body = StageFlow),
        (status = 401, description = "Not signed in (`unauthorized`)", body = ErrorBody),
        (status = 422, description = "A bad parameter (`validation_failed`: `invalid_timestamp`, `invalid_period`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn flow(
    State(state): State<AppState>,
    auth: Authenticated,
    q: QueryPairs,
) -> Result<Json<StageFlow>, ApiError> {
    let (from, to) = period(&q)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        let to = to.unwrap_or_else(|| ciclo.clock.now());
        let from = from.unwrap_or(to - chrono::Duration::days(DEFAULT_FLOW_DAYS));
        let items = ciclo.stage_flow(&auth.actor, from, to)?;
        Ok(Json(StageFlow {
            from,
            to,
            items: items.into_iter().map(Into::into).collect(),
        }))
    })
    .await
}

/// A customer's lifecycle stage and the history of their moves (of every profile merged into it).
#[utoipa::path(
    get,
    path = "/api/v1/customers/{id}/lifecycle",
    operation_id = "customer_lifecycle",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Customer id (`cus_…`)")),
    responses(
        (status = 200, body = CustomerLifecycleDto),
        (status = 404, description = "`customer_not_found`", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn customer_lifecycle(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<Json<CustomerLifecycleDto>, ApiError> {
    let id = path_id(&id, "customer", CustomerId::parse)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(Json(ciclo.customer_lifecycle(&auth.actor, &id)?.into()))).await
}
