//! Event ingestion: validate Segment messages, de-duplicate by `messageId`, resolve identities,
//! store events and orders, and keep profiles and their order stats current, in one transaction
//! per call, so that what was acknowledged is committed.

use crate::error::CoreResult;
use crate::Ciclo;
use ciclo_domain::event::EventType;
use ciclo_domain::operator::Workspace;
use ciclo_domain::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// One rejected message of a batch: its position and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedMessage {
    pub index: usize,
    pub message_id: Option<String>,
    pub code: String,
    pub field: String,
    pub reason: String,
}

/// What happened to a batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestReport {
    /// Messages stored now.
    pub accepted: usize,
    /// Messages whose `messageId` was stored before (retries): accepted, not stored again.
    pub duplicates: usize,
    pub rejected: Vec<RejectedMessage>,
}

/// Where ingested events came from: `api` for the Segment endpoints, `import`, `demo`, `console`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestSource(pub &'static str);

impl Ciclo {
    /// Ingests raw Segment messages into `workspace`. `forced_type` is the endpoint's type
    /// (`/v1/track`) or `None` for `/v1/batch`. `oversize` lists indexes the caller found larger
    /// than Segment's 32 KB limit, reported as rejected. Invalid messages are reported; valid
    /// ones are stored in one transaction.
    pub fn ingest(
        &self,
        workspace: &Workspace,
        messages: &[Value],
        forced_type: Option<EventType>,
        received_at: Timestamp,
        source: IngestSource,
    ) -> CoreResult<IngestReport> {
        let _ = (workspace, messages, forced_type, received_at, source);
        todo!()
    }
}
