//! The JSON shapes of the API: request and response bodies with their OpenAPI schemas.
//!
//! The domain crate stays free of `utoipa`, so every type the API shows has a mirror here with a
//! `From` impl. Field names match the domain types' own serde names, so a client sees the same
//! JSON whether a type reaches it through this API or through a future export of the domain
//! type. Request bodies that core takes as a free JSON object (customers) are parsed as
//! `Map<String, Value>`; their structs here exist to document the shape.
//!
//! Times are written `DateTime<Utc>` rather than the domain's `Timestamp` alias because utoipa
//! recognises chrono types by name.

use ciclo_core::accounts::Actor;
use ciclo_core::customers::{CustomerView, Page};
use ciclo_core::import::{ImportKind, ImportPreview};
use ciclo_core::ingest::{IngestReport, RejectedMessage};
use ciclo_domain::customer::{Customer, CustomerPatch, OrderStats};
use ciclo_domain::event::{Event, EventType};
use ciclo_domain::identity::Identity;
use ciclo_domain::operator::{ApiKey, Operator, Role, Workspace};
use ciclo_domain::order::{Order, OrderItem};
use ciclo_domain::{DateTime, FieldError, NaiveDate, Utc};
use ciclo_store::{IdentityConflict, ImportRun, MergeRecord, RejectedRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;

// --- errors -------------------------------------------------------------------------------------

/// Every error answer: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code that clients may match on (`validation_failed`, `customer_not_found`…).
    #[schema(example = "validation_failed")]
    pub code: String,
    /// A human explanation. For 5xx answers it is deliberately vague; details are in the server log.
    pub message: String,
    /// The input field at fault, when there is one (the first one for `validation_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem found, for `validation_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldErrorDto>>,
}

/// One problem with one field.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = FieldError)]
pub struct FieldErrorDto {
    #[schema(example = "invalid_email")]
    pub code: String,
    #[schema(example = "email")]
    pub field: String,
    pub reason: String,
}

impl From<&FieldError> for FieldErrorDto {
    fn from(e: &FieldError) -> Self {
        FieldErrorDto {
            code: e.code.clone(),
            field: e.field.clone(),
            reason: e.reason.clone(),
        }
    }
}

// --- meta ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "ok")]
    pub status: String,
}

// --- ingestion ----------------------------------------------------------------------------------

/// A Segment message (`identify`, `track`, `page`, `screen`, `group`, `alias`), as the Segment and
/// RudderStack SDKs send it. Only the fields ciclo reads are listed; others are accepted and kept
/// where Segment keeps them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMessage {
    /// Required in a batch; the endpoint decides it otherwise.
    #[serde(rename = "type")]
    pub message_type: Option<EventTypeDto>,
    /// Used to drop retries of the same message; one is made up when missing.
    pub message_id: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// `alias`: the id being aliased.
    pub previous_id: Option<String>,
    /// `group`: the group.
    pub group_id: Option<String>,
    /// `track`: the event name (`Order Completed` carries an order).
    pub event: Option<String>,
    /// `page`/`screen`: the page name.
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub traits: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// When it happened, by the client's clock.
    pub timestamp: Option<DateTime<Utc>>,
    /// When the client sent it, for clock-skew correction.
    pub sent_at: Option<DateTime<Utc>>,
    /// The write key, for clients that cannot send HTTP Basic auth.
    pub write_key: Option<String>,
}

/// The body of `/v1/batch`: messages of any type, with defaults for the fields they lack.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentBatch {
    pub batch: Vec<SegmentMessage>,
    /// Applied to messages without their own `sentAt`.
    pub sent_at: Option<DateTime<Utc>>,
    /// Merged into each message's context (the message's own keys win).
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    pub write_key: Option<String>,
}

/// What happened to the messages of a request. `success` is always true on a 200, as with Segment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    pub success: bool,
    /// Messages stored now.
    pub accepted: usize,
    /// Messages stored before (same `messageId`): acknowledged, not stored again.
    pub duplicates: usize,
    pub rejected: Vec<RejectedMessageDto>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = RejectedMessage)]
pub struct RejectedMessageDto {
    /// Position in the batch (0 for a single message).
    pub index: usize,
    pub message_id: Option<String>,
    #[schema(example = "missing_identity")]
    pub code: String,
    pub field: String,
    pub reason: String,
}

impl From<RejectedMessage> for RejectedMessageDto {
    fn from(r: RejectedMessage) -> Self {
        RejectedMessageDto {
            index: r.index,
            message_id: r.message_id,
            code: r.code,
            field: r.field,
            reason: r.reason,
        }
    }
}

impl From<IngestReport> for IngestResponse {
    fn from(r: IngestReport) -> Self {
        IngestResponse {
            success: true,
            accepted: r.accepted,
            duplicates: r.duplicates,
            rejected: r.rejected.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = EventType)]
pub enum EventTypeDto {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl From<EventType> for EventTypeDto {
    fn from(t: EventType) -> Self {
        match t {
            EventType::Identify => EventTypeDto::Identify,
            EventType::Track => EventTypeDto::Track,
            EventType::Page => EventTypeDto::Page,
            EventType::Screen => EventTypeDto::Screen,
            EventType::Group => EventTypeDto::Group,
            EventType::Alias => EventTypeDto::Alias,
        }
    }
}

// --- accounts -----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Role)]
pub enum RoleDto {
    Owner,
    Admin,
    Marketer,
    Agent,
    Analyst,
}

impl From<Role> for RoleDto {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => RoleDto::Owner,
            Role::Admin => RoleDto::Admin,
            Role::Marketer => RoleDto::Marketer,
            Role::Agent => RoleDto::Agent,
            Role::Analyst => RoleDto::Analyst,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Workspace)]
pub struct WorkspaceDto {
    #[schema(example = "ws_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    pub name: String,
    /// The Segment write key. Not a secret (it ships in web pages), so it is shown again.
    pub write_key: String,
    #[schema(example = "pt-BR")]
    pub locale: String,
    #[schema(example = "America/Sao_Paulo")]
    pub time_zone: String,
    #[schema(example = "BRL")]
    pub currency: String,
    /// ISO 3166 region used to read phone numbers written without a country code.
    #[schema(example = "BR")]
    pub default_region: String,
    pub created_at: DateTime<Utc>,
}

impl From<Workspace> for WorkspaceDto {
    fn from(w: Workspace) -> Self {
        WorkspaceDto {
            id: w.id.to_string(),
            name: w.name,
            write_key: w.write_key,
            locale: w.locale,
            time_zone: w.time_zone,
            currency: w.currency,
            default_region: w.default_region,
            created_at: w.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The workspace to open; the operator's first one (by name) when absent.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// The current code of the operator's authenticator app (or a recovery code), for
    /// operators with two-factor sign-in.
    #[serde(default)]
    pub totp_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchWorkspaceRequest {
    pub workspace_id: String,
}

/// A signed-in session. The session token itself travels only in the `ciclo_session` cookie.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionResponse {
    /// Send it back as `X-CSRF-Token` on every POST, PATCH and DELETE authenticated by the cookie.
    pub csrf_token: String,
    pub workspace: WorkspaceDto,
    pub role: RoleDto,
    pub expires_at: DateTime<Utc>,
}

/// Who is calling.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Actor)]
pub struct ActorDto {
    pub workspace: WorkspaceDto,
    pub role: RoleDto,
    /// Set when an operator signed in.
    pub operator_id: Option<String>,
    /// Set when a secret API key is used.
    pub api_key_id: Option<String>,
}

impl From<Actor> for ActorDto {
    fn from(a: Actor) -> Self {
        ActorDto {
            workspace: a.workspace.into(),
            role: a.role.into(),
            operator_id: a.operator_id.map(|id| id.to_string()),
            api_key_id: a.api_key_id.map(|id| id.to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceAccess {
    pub workspace: WorkspaceDto,
    pub role: RoleDto,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    pub actor: ActorDto,
    /// The workspaces this operator may switch to (an API key sees only its own).
    pub workspaces: Vec<WorkspaceAccess>,
    /// The session's CSRF token, when authenticated by the session cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// A member of the workspace.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Operator)]
pub struct OperatorDto {
    #[schema(example = "op_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: RoleDto,
    pub locale: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<(Operator, Role)> for OperatorDto {
    fn from((o, role): (Operator, Role)) -> Self {
        OperatorDto {
            id: o.id.to_string(),
            email: o.email,
            name: o.name,
            role: role.into(),
            locale: o.locale,
            active: o.active,
            created_at: o.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorList {
    pub items: Vec<OperatorDto>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorRequest {
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// Validated by ciclo (`invalid_role`), so it is read as text.
    #[schema(value_type = RoleDto)]
    pub role: String,
    /// Used only when no account has this email yet (at least 10 characters).
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOperatorRequest {
    #[schema(value_type = RoleDto)]
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct ApiKeyDto {
    #[schema(example = "key_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    pub name: String,
    pub role: RoleDto,
    /// The first characters of the secret, to tell keys apart.
    #[schema(example = "sk_Ab12Cd3")]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyDto {
    fn from(k: ApiKey) -> Self {
        ApiKeyDto {
            id: k.id.to_string(),
            name: k.name,
            role: k.role.into(),
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyDto>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
    #[schema(value_type = RoleDto)]
    pub role: String,
}

/// A new key with its secret. The secret is shown in this answer only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyDto,
    /// Use as `Authorization: Bearer <secret>`. Store it now: ciclo keeps only its hash.
    #[schema(example = "sk_3q2m4n7p5r8t0w1yAb12Cd34Ef56Gh78")]
    pub secret: String,
}

/// Workspace settings to change; absent or null fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkspaceRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// `pt-BR` or `en`.
    #[serde(default)]
    pub locale: Option<String>,
    /// An IANA time zone.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// ISO 4217, upper case.
    #[serde(default)]
    pub currency: Option<String>,
}

// --- customers ----------------------------------------------------------------------------------

/// Order statistics of a profile. Money is in minor units (centavos).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = OrderStats)]
pub struct OrderStatsDto {
    pub orders_count: i64,
    pub total_spent_minor: i64,
    pub average_order_value_minor: i64,
    pub first_order_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
}

impl From<OrderStats> for OrderStatsDto {
    fn from(s: OrderStats) -> Self {
        OrderStatsDto {
            orders_count: s.orders_count,
            total_spent_minor: s.total_spent_minor,
            average_order_value_minor: s.average_order_value_minor(),
            first_order_at: s.first_order_at,
            last_order_at: s.last_order_at,
        }
    }
}

/// A customer profile.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Customer)]
pub struct CustomerDto {
    #[schema(example = "cus_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    pub workspace_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// E.164.
    #[schema(example = "+5511987654321")]
    pub phone: Option<String>,
    pub whatsapp: Option<String>,
    pub birthday: Option<NaiveDate>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub tags: Vec<String>,
    /// Free-form traits (any JSON values).
    #[schema(value_type = Object)]
    pub traits: Map<String, Value>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub stats: OrderStatsDto,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set on a profile merged into another.
    pub merged_into: Option<String>,
}

impl From<Customer> for CustomerDto {
    fn from(c: Customer) -> Self {
        CustomerDto {
            id: c.id.to_string(),
            workspace_id: c.workspace_id.to_string(),
            name: c.name,
            email: c.email.map(|e| e.to_string()),
            phone: c.phone.map(|p| p.to_string()),
            whatsapp: c.whatsapp.map(|p| p.to_string()),
            birthday: c.birthday,
            locale: c.locale,
            time_zone: c.time_zone,
            city: c.city,
            state: c.state,
            country: c.country,
            tags: c.tags,
            traits: c.traits,
            first_seen_at: c.first_seen_at,
            last_seen_at: c.last_seen_at,
            stats: c.stats.into(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            merged_into: c.merged_into.map(|id| id.to_string()),
        }
    }
}

/// The fields of a profile to set. On create every key is optional; on update (PATCH) absent
/// keys stay, a null clears, and `traits` merge key by key (a null removes the trait). Unknown
/// keys are refused (`unknown_field`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerInput {
    pub name: Option<String>,
    /// Segment's reserved trait; joined with `lastName` into `name` when `name` is absent.
    #[serde(rename = "firstName")]
    pub first_name: Option<String>,
    #[serde(rename = "lastName")]
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// Read in the workspace's default region when written without a country code.
    pub phone: Option<String>,
    pub whatsapp: Option<String>,
    /// `YYYY-MM-DD` or `DD/MM/YYYY`.
    pub birthday: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub tags: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub traits: Option<Map<String, Value>>,
}

/// An identifier of a profile (`email`, `phone`, `whatsapp`, `user_id`, `anonymous_id`,
/// `external:<source>`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Identity)]
pub struct IdentityDto {
    #[schema(example = "email")]
    pub kind: String,
    #[schema(example = "ana@exemplo.com.br")]
    pub value: String,
    /// The profile that owns it (follow `merged_into` for the surviving one).
    pub customer_id: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
}

impl From<Identity> for IdentityDto {
    fn from(i: Identity) -> Self {
        IdentityDto {
            kind: i.key.kind.as_string(),
            value: i.key.value,
            customer_id: i.customer_id.to_string(),
            source: i.source,
            created_at: i.created_at,
        }
    }
}

/// An identifier as a `kind` and a `value`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = IdentityKey)]
pub struct IdentityKeyDto {
    pub kind: String,
    pub value: String,
}

/// One merge of `loser_id` into `winner_id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = MergeRecord)]
pub struct MergeRecordDto {
    #[schema(example = "mrg_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    pub winner_id: String,
    pub loser_id: String,
    /// The identifier the two shared (none for a merge an operator asked for).
    pub via: Option<IdentityKeyDto>,
    pub message_id: Option<String>,
    /// `automatic`, `api`, `console`, `import`.
    pub source: String,
    pub actor: Option<String>,
    /// The winner's fields that were empty and filled from the loser (cleared again on undo).
    #[schema(value_type = Object)]
    pub filled: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub undone_at: Option<DateTime<Utc>>,
    pub undone_by: Option<String>,
}

/// The fields a patch sets, as a JSON object: touched-and-set fields only.
fn patch_as_object(patch: &CustomerPatch) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            out.insert(key.to_string(), v);
        }
    };
    let text = |v: &Option<Option<String>>| v.clone().flatten().map(Value::String);
    put("name", text(&patch.name));
    put(
        "email",
        patch
            .email
            .clone()
            .flatten()
            .map(|e| Value::String(e.to_string())),
    );
    put(
        "phone",
        patch
            .phone
            .clone()
            .flatten()
            .map(|p| Value::String(p.to_string())),
    );
    put(
        "whatsapp",
        patch
            .whatsapp
            .clone()
            .flatten()
            .map(|p| Value::String(p.to_string())),
    );
    put(
        "birthday",
        patch
            .birthday
            .flatten()
            .map(|d| Value::String(d.to_string())),
    );
    put("locale", text(&patch.locale));
    put("time_zone", text(&patch.time_zone));
    put("city", text(&patch.city));
    put("state", text(&patch.state));
    put("country", text(&patch.country));
    put(
        "tags",
        patch
            .tags
            .clone()
            .map(|t| Value::Array(t.into_iter().map(Value::String).collect())),
    );
    if !patch.traits.is_empty() {
        out.insert("traits".into(), Value::Object(patch.traits.clone()));
    }
    out
}

impl From<MergeRecord> for MergeRecordDto {
    fn from(m: MergeRecord) -> Self {
        MergeRecordDto {
            filled: patch_as_object(&m.filled),
            id: m.id.to_string(),
            winner_id: m.winner_id.to_string(),
            loser_id: m.loser_id.to_string(),
            via: m.via.map(|k| IdentityKeyDto {
                kind: k.kind.as_string(),
                value: k.value,
            }),
            message_id: m.message_id,
            source: m.source,
            actor: m.actor,
            created_at: m.created_at,
            undone_at: m.undone_at,
            undone_by: m.undone_by,
        }
    }
}

/// Two profiles that share an identifier but have different user ids, left apart for a person.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = IdentityConflict)]
pub struct IdentityConflictDto {
    #[schema(example = "cfl_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    pub customer_a: String,
    pub customer_b: String,
    pub via: IdentityKeyDto,
    pub message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `merged`, `kept_apart`, or null while open.
    pub resolution: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<IdentityConflict> for IdentityConflictDto {
    fn from(c: IdentityConflict) -> Self {
        IdentityConflictDto {
            id: c.id.to_string(),
            customer_a: c.customer_a.to_string(),
            customer_b: c.customer_b.to_string(),
            via: IdentityKeyDto {
                kind: c.via.kind.as_string(),
                value: c.via.value,
            },
            message_id: c.message_id,
            created_at: c.created_at,
            resolution: c.resolution,
            resolved_at: c.resolved_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IdentityConflictList {
    pub items: Vec<IdentityConflictDto>,
}

/// A profile as operators see it: the surviving profile with the identities, merges and
/// conflicts of everything merged into it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = CustomerView)]
pub struct CustomerViewDto {
    #[serde(flatten)]
    pub customer: CustomerDto,
    /// The profile and every profile merged into it.
    pub profile_ids: Vec<String>,
    pub identities: Vec<IdentityDto>,
    pub merges: Vec<MergeRecordDto>,
    pub conflicts: Vec<IdentityConflictDto>,
}

impl From<CustomerView> for CustomerViewDto {
    fn from(v: CustomerView) -> Self {
        CustomerViewDto {
            customer: v.customer.into(),
            profile_ids: v.profile_ids.into_iter().map(|id| id.to_string()).collect(),
            identities: v.identities.into_iter().map(Into::into).collect(),
            merges: v.merges.into_iter().map(Into::into).collect(),
            conflicts: v.conflicts.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerPage {
    pub items: Vec<CustomerDto>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<Page<Customer>> for CustomerPage {
    fn from(p: Page<Customer>) -> Self {
        CustomerPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// An event on a customer's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Event)]
pub struct EventDto {
    #[schema(example = "evt_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    /// The profile the event was attributed to when it arrived.
    pub customer_id: String,
    pub message_id: String,
    pub event_type: EventTypeDto,
    /// `track`: the event name; `page`/`screen`: the page name.
    pub name: Option<String>,
    #[schema(example = "web")]
    pub channel: String,
    /// `api`, `import`, `console`, `demo`, `system`.
    pub source: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

impl From<Event> for EventDto {
    fn from(e: Event) -> Self {
        EventDto {
            id: e.id.to_string(),
            customer_id: e.customer_id.to_string(),
            message_id: e.message_id,
            event_type: e.event_type.into(),
            name: e.name,
            channel: e.channel,
            source: e.source,
            user_id: e.user_id,
            anonymous_id: e.anonymous_id,
            properties: e.properties,
            context: e.context,
            timestamp: e.timestamp,
            received_at: e.received_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventDto>,
    pub next_cursor: Option<String>,
}

impl From<Page<Event>> for EventPage {
    fn from(p: Page<Event>) -> Self {
        EventPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = OrderItem)]
pub struct OrderItemDto {
    pub product_id: Option<String>,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub price_minor: i64,
    pub quantity: i64,
}

impl From<OrderItem> for OrderItemDto {
    fn from(i: OrderItem) -> Self {
        OrderItemDto {
            product_id: i.product_id,
            sku: i.sku,
            name: i.name,
            category: i.category,
            price_minor: i.price_minor,
            quantity: i.quantity,
        }
    }
}

/// An order (Segment's `Order Completed`, or an imported row). Money is in minor units.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Order)]
pub struct OrderDto {
    #[schema(example = "ord_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    pub customer_id: String,
    /// The shop's own order id.
    pub external_id: String,
    pub total_minor: i64,
    #[schema(example = "BRL")]
    pub currency: String,
    pub placed_at: DateTime<Utc>,
    /// `track`, `import`, `api`, `demo`.
    pub source: String,
    pub event_id: Option<String>,
    pub items: Vec<OrderItemDto>,
}

impl From<Order> for OrderDto {
    fn from(o: Order) -> Self {
        OrderDto {
            id: o.id.to_string(),
            customer_id: o.customer_id.to_string(),
            external_id: o.external_id,
            total_minor: o.total_minor,
            currency: o.currency,
            placed_at: o.placed_at,
            source: o.source,
            event_id: o.event_id.map(|id| id.to_string()),
            items: o.items.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderList {
    pub items: Vec<OrderDto>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The profile to merge into the one in the path.
    pub loser_id: String,
    /// Merge even when both profiles have different user ids.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveConflictRequest {
    /// `true` merges `customer_b` into `customer_a`; `false` keeps them apart for good.
    pub merge: bool,
}

// --- imports ------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ImportKind)]
pub enum ImportKindDto {
    Customers,
    Orders,
}

impl From<ImportKindDto> for ImportKind {
    fn from(k: ImportKindDto) -> Self {
        match k {
            ImportKindDto::Customers => ImportKind::Customers,
            ImportKindDto::Orders => ImportKind::Orders,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = RejectedRow)]
pub struct RejectedRowDto {
    /// Line number in the file; the header is line 1.
    pub line: u64,
    pub code: String,
    pub field: String,
    pub reason: String,
}

impl From<RejectedRow> for RejectedRowDto {
    fn from(r: RejectedRow) -> Self {
        RejectedRowDto {
            line: r.line,
            code: r.code,
            field: r.field,
            reason: r.reason,
        }
    }
}

/// One CSV import and its report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ImportRun)]
pub struct ImportRunDto {
    #[schema(example = "imp_01jd8x6v3f9q2m4n7p5r8t0w1y")]
    pub id: String,
    /// `customers` or `orders`.
    pub kind: String,
    pub file_name: String,
    /// `running`, `done`, `failed`.
    pub status: String,
    pub rows_total: i64,
    pub rows_created: i64,
    pub rows_updated: i64,
    pub rows_unchanged: i64,
    pub rows_rejected: i64,
    pub rejected: Vec<RejectedRowDto>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub actor: Option<String>,
}

impl From<ImportRun> for ImportRunDto {
    fn from(r: ImportRun) -> Self {
        ImportRunDto {
            id: r.id.to_string(),
            kind: r.kind,
            file_name: r.file_name,
            status: r.status,
            rows_total: r.rows_total,
            rows_created: r.rows_created,
            rows_updated: r.rows_updated,
            rows_unchanged: r.rows_unchanged,
            rows_rejected: r.rows_rejected,
            rejected: r.rejected.into_iter().map(Into::into).collect(),
            created_at: r.created_at,
            finished_at: r.finished_at,
            actor: r.actor,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportList {
    pub items: Vec<ImportRunDto>,
}

/// The header of a CSV file, the mapping ciclo would use, and the first rows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ImportPreview)]
pub struct ImportPreviewDto {
    pub headers: Vec<String>,
    /// CSV header → ciclo field.
    pub mapping: BTreeMap<String, String>,
    pub rows: Vec<Vec<String>>,
}

impl From<ImportPreview> for ImportPreviewDto {
    fn from(p: ImportPreview) -> Self {
        ImportPreviewDto {
            headers: p.headers,
            mapping: p.mapping.0,
            rows: p.rows,
        }
    }
}
