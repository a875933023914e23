//! Event ingestion: validate Segment messages, de-duplicate by `messageId`, resolve identities,
//! store events and orders, and keep profiles and their order stats current, in one transaction
//! per call, so that what was acknowledged is committed.

use crate::error::CoreResult;
use crate::identity::{Graph, Provenance};
use crate::Ciclo;
use ciclo_domain::customer::CustomerPatch;
use ciclo_domain::event::{parse_message, Event, EventType, IncomingMessage};
use ciclo_domain::identity::{IdentityKey, IdentityKind};
use ciclo_domain::ids::{CustomerId, EventId, OrderId};
use ciclo_domain::operator::Workspace;
use ciclo_domain::order::{order_from_properties, Order, OrderDraft, ORDER_COMPLETED};
use ciclo_domain::{FieldError, Timestamp};
use ciclo_store::write;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;

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

/// A message that passed validation, with what it will do.
struct Prepared {
    message: IncomingMessage,
    /// Identify traits, as a profile patch.
    patch: Option<CustomerPatch>,
    order: Option<OrderDraft>,
    keys: Vec<IdentityKey>,
    lookup_only: Vec<IdentityKey>,
    /// The identifier the event is attributed through.
    primary: IdentityKey,
}

fn reject(index: usize, raw: &Value, e: FieldError) -> RejectedMessage {
    RejectedMessage {
        index,
        message_id: raw
            .get("messageId")
            .and_then(Value::as_str)
            .map(str::to_string),
        code: e.code,
        field: e.field,
        reason: e.reason,
    }
}

fn prepare(message: IncomingMessage, workspace: &Workspace) -> Result<Prepared, FieldError> {
    let mut keys = Vec::new();
    let mut lookup_only = Vec::new();
    if let Some(u) = &message.user_id {
        keys.push(IdentityKey::new(IdentityKind::UserId, u));
    }
    if let Some(a) = &message.anonymous_id {
        keys.push(IdentityKey::new(IdentityKind::AnonymousId, a));
    }
    let mut patch = None;
    if message.event_type == EventType::Identify {
        let p = CustomerPatch::from_json(&message.traits, &workspace.default_region, true)
            .map_err(|mut errors| errors.remove(0).under("traits"))?;
        keys.extend(crate::identity::contact_keys(&p));
        patch = Some(p);
    }
    if message.event_type == EventType::Alias {
        if let Some(previous) = &message.previous_id {
            keys.push(IdentityKey::new(IdentityKind::AnonymousId, previous));
            lookup_only.push(IdentityKey::new(IdentityKind::UserId, previous));
        }
    }
    let order = if message.event_type == EventType::Track
        && message.name.as_deref() == Some(ORDER_COMPLETED)
    {
        Some(order_from_properties(
            &message.properties,
            &workspace.currency,
        )?)
    } else {
        None
    };
    let primary = keys
        .first()
        .cloned()
        .ok_or_else(|| FieldError::new("missing_identity", "userId", "no identifier"))?;
    Ok(Prepared {
        message,
        patch,
        order,
        keys,
        lookup_only,
        primary,
    })
}

impl Ciclo {
    /// Ingests raw Segment messages into `workspace`. `forced_type` is the endpoint's type
    /// (`/v1/track`) or `None` for `/v1/batch`. The caller enforces Segment's size limits on the
    /// raw bytes (the HTTP layer does; re-serialising here would cost on the hot path). Invalid
    /// messages are reported as rejected; the valid ones are stored in one transaction, so when this
    /// returns they are committed.
    pub fn ingest(
        &self,
        workspace: &Workspace,
        messages: &[Value],
        forced_type: Option<EventType>,
        received_at: Timestamp,
        source: IngestSource,
    ) -> CoreResult<IngestReport> {
        let mut report = IngestReport::default();
        let mut prepared: Vec<Prepared> = Vec::with_capacity(messages.len());
        let mut seen_in_batch: HashSet<String> = HashSet::new();
        for (index, raw) in messages.iter().enumerate() {
            let fallback_id = self.new_id(EventId::generate).to_string();
            match parse_message(raw, forced_type, received_at, &fallback_id)
                .and_then(|m| prepare(m, workspace))
            {
                Ok(p) => {
                    if seen_in_batch.insert(p.message.message_id.clone()) {
                        prepared.push(p);
                    } else {
                        report.duplicates += 1;
                    }
                }
                Err(e) => report.rejected.push(reject(index, raw, e)),
            }
        }
        if prepared.is_empty() {
            return Ok(report);
        }
        let ws = workspace.id.clone();
        let (accepted, duplicates) = write(&*self.store, |tx| {
            let ids: Vec<String> = prepared
                .iter()
                .map(|p| p.message.message_id.clone())
                .collect();
            let existing: HashSet<String> =
                tx.existing_message_ids(&ws, &ids)?.into_iter().collect();
            let fresh: Vec<&Prepared> = prepared
                .iter()
                .filter(|p| !existing.contains(&p.message.message_id))
                .collect();
            let mut graph = Graph::new(self, ws.clone());
            let all_keys: Vec<IdentityKey> = fresh
                .iter()
                .flat_map(|p| p.keys.iter().chain(&p.lookup_only).cloned())
                .collect();
            graph.prefetch(tx, &all_keys)?;
            let mut events = Vec::with_capacity(fresh.len());
            let mut orders: Vec<(usize, CustomerId, Order)> = Vec::new();
            for p in &fresh {
                let m = &p.message;
                let provenance = Provenance {
                    source: "automatic",
                    message_id: Some(&m.message_id),
                    actor: None,
                    at: m.timestamp,
                };
                let root = graph.resolve(tx, &p.keys, &p.lookup_only, &provenance)?;
                let owner = graph.owner_of(&p.primary).unwrap_or_else(|| root.clone());
                let customer = graph.customer_mut(tx, &root)?;
                if let Some(patch) = &p.patch {
                    customer.apply(patch);
                    customer.updated_at = received_at;
                }
                customer.seen_at(m.timestamp);
                let event_id = self.new_id(EventId::generate);
                if let Some(draft) = &p.order {
                    orders.push((
                        events.len(),
                        root.clone(),
                        Order {
                            id: self.new_id(OrderId::generate),
                            workspace_id: ws.clone(),
                            customer_id: owner.clone(),
                            external_id: draft.external_id.clone(),
                            total_minor: draft.total_minor,
                            currency: draft.currency.clone(),
                            placed_at: m.timestamp,
                            source: if source.0 == "api" {
                                "track".to_string()
                            } else {
                                source.0.to_string()
                            },
                            event_id: Some(event_id.clone()),
                            items: draft.items.clone(),
                        },
                    ));
                }
                let mut properties = m.properties.clone();
                if m.event_type == EventType::Identify || m.event_type == EventType::Group {
                    // Keep what identify/group said on the timeline too.
                    properties.insert("traits".into(), Value::Object(m.traits.clone()));
                }
                if let Some(previous) = &m.previous_id {
                    properties.insert("previousId".into(), Value::String(previous.clone()));
                }
                if let Some(group) = &m.group_id {
                    properties.insert("groupId".into(), Value::String(group.clone()));
                }
                events.push(Event {
                    id: event_id,
                    workspace_id: ws.clone(),
                    customer_id: owner,
                    message_id: m.message_id.clone(),
                    event_type: m.event_type,
                    name: m.name.clone(),
                    channel: m.channel.clone(),
                    source: source.0.to_string(),
                    user_id: m.user_id.clone(),
                    anonymous_id: m.anonymous_id.clone(),
                    properties,
                    context: m.context.clone(),
                    timestamp: m.timestamp,
                    received_at,
                });
            }
            graph.flush(tx)?;
            let inserted = tx.insert_events(&events)?;
            let accepted = inserted.iter().filter(|i| **i).count();
            for (event_index, root, order) in &orders {
                if inserted.get(*event_index).copied().unwrap_or(false) && tx.insert_order(order)? {
                    graph
                        .customer_mut(tx, root)?
                        .stats
                        .record_order(order.total_minor, order.placed_at);
                }
            }
            graph.flush(tx)?;
            Ok((accepted, prepared.len() - accepted))
        })?;
        report.accepted = accepted;
        report.duplicates += duplicates;
        Ok(report)
    }
}
