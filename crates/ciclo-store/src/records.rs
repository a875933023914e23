//! Records the store keeps that are bookkeeping rather than domain concepts, and query shapes.

use ciclo_domain::customer::CustomerPatch;
use ciclo_domain::event::EventType;
use ciclo_domain::identity::IdentityKey;
use ciclo_domain::ids::*;
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
    pub created_at: Timestamp,
}
