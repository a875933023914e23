//! Records the store keeps that are bookkeeping rather than domain concepts, and query shapes.

use ciclo_domain::customer::{CustomerPatch, OrderStats};
use ciclo_domain::event::EventType;
use ciclo_domain::identity::IdentityKey;
use ciclo_domain::ids::*;
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::segment::Expr;
use ciclo_domain::Timestamp;
use serde::{Deserialize, Serialize};

/// One merge of `loser` into `winner`, with its provenance and what is needed to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeRecord {
    pub id: MergeId,
    pub workspace_id: WorkspaceId,
    pub winner_id: CustomerId,
    pub loser_id: CustomerId,
    /// The identifier the two profiles shared (none for a merge an operator asked for).
    pub via: Option<IdentityKey>,
    /// The message that revealed the link, when it came from an event.
    pub message_id: Option<String>,
    /// `automatic`, `api`, `console`, `import`.
    pub source: String,
    /// Who asked for it (an operator or key id), for manual merges.
    pub actor: Option<String>,
    /// The fields of the winner that were empty and filled from the loser (cleared on undo).
    pub filled: CustomerPatch,
    pub created_at: Timestamp,
    pub undone_at: Option<Timestamp>,
    pub undone_by: Option<String>,
}

/// Two profiles that share an identifier but have different user ids: left apart for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityConflict {
    pub id: ConflictId,
    pub workspace_id: WorkspaceId,
    pub customer_a: CustomerId,
    pub customer_b: CustomerId,
    pub via: IdentityKey,
    pub message_id: Option<String>,
    pub created_at: Timestamp,
    /// `merged`, `kept_apart`, or none while open.
    pub resolution: Option<String>,
    pub resolved_at: Option<Timestamp>,
}

/// How a customer list is sorted. Every sort breaks ties by id so that cursors are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CustomerSort {
    /// Newest first (by id, which sorts by creation time).
    #[default]
    Newest,
    /// Most recently seen first.
    LastSeen,
    /// Highest total spent first.
    TotalSpent,
    /// By name, A to Z.
    Name,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CustomerQuery {
    /// Prefix search: matches the start of the name (or of any word in it), the email, or the
    /// phone (digits only compared, so `11 9876` finds `+5511987…` and `9876…`).
    pub search: Option<String>,
    pub tag: Option<String>,
    pub city: Option<String>,
    pub has_ordered: Option<bool>,
    pub seen_after: Option<Timestamp>,
    /// Only customers whose stored lifecycle stage is this one.
    pub stage: Option<Stage>,
    /// Only members of this segment or list.
    pub segment: Option<SegmentId>,
    pub sort: CustomerSort,
    /// Keyset cursor: the sort key and id of the last row of the previous page, as returned in
    /// [`CustomerCursor`]. Rows strictly after it are returned.
    pub after: Option<CustomerCursor>,
    pub limit: i64,
}

/// The position of a row in a sorted customer list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerCursor {
    /// The sort key as text: empty for `Newest`, RFC 3339 for `LastSeen`, integer for
    /// `TotalSpent`, the lower-cased name (empty when none) for `Name`.
    pub key: String,
    pub id: CustomerId,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TimelineQuery {
    pub event_types: Vec<EventType>,
    /// Track event names to keep (any when empty).
    pub names: Vec<String>,
    pub channels: Vec<String>,
    /// Keyset cursor: rows strictly older than (timestamp, id).
    pub before: Option<(Timestamp, EventId)>,
    pub limit: i64,
}

/// One CSV import run and its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRun {
    pub id: ImportId,
    pub workspace_id: WorkspaceId,
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
    pub rejected: Vec<RejectedRow>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub actor: Option<String>,
}

/// One rejected row: its line number in the file (the header is line 1) and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedRow {
    pub line: u64,
    pub code: String,
    pub field: String,
    pub reason: String,
}

/// An operator's second factor: a TOTP secret (RFC 6238), active once `enabled_at` is set, and
/// the SHA-256 hashes of the unused recovery codes. Operators are global, so this is too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorMfa {
    pub operator_id: OperatorId,
    /// Base32 (RFC 4648, no padding).
    pub totp_secret: String,
    pub enabled_at: Option<Timestamp>,
    pub recovery_code_hashes: Vec<String>,
    /// The last time step a code was accepted for: a code is never accepted twice.
    pub last_used_step: Option<i64>,
    /// Wrong codes in a row since the last right one: sign-in with a code stops after a few.
    pub failed_attempts: i64,
    pub created_at: Timestamp,
}

/// Whether a segment's members follow its definition or are added and removed by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// Members are the customers matching `definition`, kept current by the evaluator.
    Dynamic,
    /// A static list: members are added and removed by hand, CSV or API.
    Static,
}

impl SegmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::Dynamic => "dynamic",
            SegmentKind::Static => "static",
        }
    }

    pub fn parse(raw: &str) -> Option<SegmentKind> {
        match raw {
            "dynamic" => Some(SegmentKind::Dynamic),
            "static" => Some(SegmentKind::Static),
            _ => None,
        }
    }
}

/// A segment (dynamic) or a list (static) of a workspace. Names are unique per workspace, compared
/// without regard to case (other segments refer to it by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub id: SegmentId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: String,
    pub kind: SegmentKind,
    /// The definition, for dynamic segments (stored as its JSON form).
    pub definition: Option<Expr>,
    /// Members now, kept by the writer of memberships.
    pub member_count: i64,
    /// When membership was last computed from scratch (dynamic segments).
    pub evaluated_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One point of a segment's membership count history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCount {
    pub at: Timestamp,
    pub count: i64,
}

/// A customer whose segments and lifecycle stage must be evaluated again, because something about
/// them changed. Written in the transaction that made the change, so no change is forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DirtyCustomer {
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
}

/// One move of a customer from one lifecycle stage to another (`from` is none for the first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageChange {
    pub customer_id: CustomerId,
    pub from: Option<Stage>,
    pub to: Stage,
    pub at: Timestamp,
}

/// What the evaluator and analytics jobs computed for one customer: the lifecycle stage (with
/// when it was entered) and named scores (`rfm_group`, `rfm_r`, `predicted_clv`, `p_alive`, …)
/// that segments read as computed attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerComputed {
    pub customer_id: CustomerId,
    pub stage: Option<Stage>,
    pub stage_since: Option<Timestamp>,
    pub scores: serde_json::Map<String, serde_json::Value>,
    pub scores_at: Option<Timestamp>,
}

/// How many customers moved from one stage to another in a period (`from` none: first stage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTransition {
    pub from: Option<Stage>,
    pub to: Stage,
    pub customers: i64,
}

/// Events of one name in a time range, optionally for some customers only; what the segment
/// evaluator counts. `since` is inclusive, `until` exclusive.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NamedEventQuery {
    pub name: String,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only events attributed to these profiles (as stored: merged-away profiles are named
    /// themselves); every customer of the workspace when none.
    pub customers: Option<Vec<CustomerId>>,
}

/// One event found by a [`NamedEventQuery`], with what property filters need.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedEvent {
    pub customer_id: CustomerId,
    pub timestamp: Timestamp,
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// What the whole-workspace reports (analytics, the home page) read of one surviving profile:
/// who it is, when it appeared and its cached activity, without the rest of the record (no
/// contacts but the email, no tags, no traits to parse). See [`crate::Tx::scan_customer_summaries`].
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSummary {
    pub id: CustomerId,
    pub name: Option<String>,
    /// The email as stored (it was validated when written).
    pub email: Option<String>,
    pub created_at: Timestamp,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The order stats kept on the profile (its merge set's orders).
    pub stats: OrderStats,
}

/// One order reduced to what the whole-workspace reports sum (see
/// [`crate::Tx::scan_order_summaries`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderSummary {
    /// The profile the order is stored under: a merged-away profile is named itself.
    pub customer_id: CustomerId,
    pub placed_at: Timestamp,
    pub total_minor: i64,
}
