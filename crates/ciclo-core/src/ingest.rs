//! Event ingestion: validate Segment messages, de-duplicate by `messageId`, resolve identities,
//! store events and orders, and keep profiles and their order stats current, in one transaction
//! per call, so that what was acknowledged is committed.

use crate::error::{CoreError, CoreResult};
use crate::identity::{Graph, Provenance};
use crate::Ciclo;
use ciclo_domain::customer::CustomerPatch;
use ciclo_domain::event::{parse_message, Event, EventType, IncomingMessage};
use ciclo_domain::identity::{IdentityKey, IdentityKind};
use ciclo_domain::ids::{CustomerId, EventId, OrderId};
use ciclo_domain::operator::Workspace;
use ciclo_domain::order::{order_from_properties, Order, OrderDraft, ORDER_COMPLETED};
use ciclo_domain::{FieldError, Timestamp};
use ciclo_store::{write, StoreError, StoreResult, Tx};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{mpsc, Mutex};

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

/// How many messages one group commit may take at most: enough to amortise the commit's fsync
/// and the per-customer writes, small enough to keep a transaction short.
const MAX_GROUP_MESSAGES: usize = 5_000;

/// One caller's validated messages, waiting for the ingestion writer.
struct Job {
    workspace: Workspace,
    prepared: Vec<Prepared>,
    received_at: Timestamp,
    source: IngestSource,
    reply: mpsc::Sender<CoreResult<(usize, usize)>>,
}

/// The ingestion writer: one thread per process that takes every batch waiting and stores them
/// in one transaction (group commit). Callers validate in parallel on their own threads and
/// block until the commit that holds their messages is done, so a 2xx still means committed.
/// With one writer, concurrent batches touching the same customers cannot deadlock each other.
pub(crate) struct IngestWriter {
    jobs: Mutex<mpsc::SyncSender<Job>>,
}

impl IngestWriter {
    fn start(app: &Ciclo) -> IngestWriter {
        let app_signal = app.evaluation.clone();
        // The thread's copy does not share this writer slot: when the last user-facing `Ciclo`
        // is dropped, the sender goes with it and the thread ends, releasing the store.
        let mut app = Ciclo::new(app.store.clone(), app.clock.clone(), app.random.clone());
        app.evaluation = app_signal;
        let (sender, receiver) = mpsc::sync_channel::<Job>(1024);
        std::thread::Builder::new()
            .name("ciclo-ingest".into())
            .spawn(move || writer_loop(app, receiver))
            .expect("cannot start the ingestion thread");
        IngestWriter {
            jobs: Mutex::new(sender),
        }
    }
}

fn writer_loop(app: Ciclo, receiver: mpsc::Receiver<Job>) {
    while let Ok(first) = receiver.recv() {
        let mut size = first.prepared.len();
        let mut jobs = vec![first];
        while size < MAX_GROUP_MESSAGES {
            match receiver.try_recv() {
                Ok(job) => {
                    size += job.prepared.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let stored = app.store_jobs(&jobs);
        // The transaction marked the customers it touched: wake the evaluator.
        app.notify_evaluator();
        match stored {
            Ok(counts) => {
                for (job, count) in jobs.iter().zip(counts) {
                    let _ = job.reply.send(Ok(count));
                }
            }
            // One bad batch must not fail the others it was grouped with: retry each alone.
            Err(_) if jobs.len() > 1 => {
                for job in &jobs {
                    let result = app
                        .store_jobs(std::slice::from_ref(job))
                        .map(|mut c| c.remove(0));
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                let _ = jobs[0].reply.send(Err(e));
            }
        }
    }
}

impl Ciclo {
    /// Ingests raw Segment messages into `workspace`. `forced_type` is the endpoint's type
    /// (`/v1/track`) or `None` for `/v1/batch`. The caller enforces Segment's size limits on the
    /// raw bytes (the HTTP layer does; re-serialising here would cost on the hot path). Invalid
    /// messages are reported as rejected; the valid ones are committed before this returns
    /// (through the process's ingestion writer, which groups concurrent batches in one
    /// transaction).
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
        let (reply, answer) = mpsc::channel();
        let job = Job {
            workspace: workspace.clone(),
            prepared,
            received_at,
            source,
            reply,
        };
        let writer = self.ingest_writer.get_or_init(|| IngestWriter::start(self));
        let sender = writer
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        sender.send(job).map_err(|_| {
            CoreError::Store(StoreError::Backend("the ingestion writer stopped".into()))
        })?;
        let (accepted, duplicates) = answer.recv().map_err(|_| {
            CoreError::Store(StoreError::Backend("the ingestion writer stopped".into()))
        })??;
        report.accepted = accepted;
        report.duplicates += duplicates;
        Ok(report)
    }

    /// Stores several jobs in one write transaction; returns (accepted, duplicates) per job.
    fn store_jobs(&self, jobs: &[Job]) -> CoreResult<Vec<(usize, usize)>> {
        Ok(write(&*self.store, |tx| {
            let mut counts = vec![(0usize, 0usize); jobs.len()];
            let mut workspaces: Vec<&Workspace> = Vec::new();
            for job in jobs {
                if !workspaces.iter().any(|w| w.id == job.workspace.id) {
                    workspaces.push(&job.workspace);
                }
            }
            for workspace in workspaces {
                let mine: Vec<usize> = (0..jobs.len())
                    .filter(|i| jobs[*i].workspace.id == workspace.id)
                    .collect();
                self.store_workspace_jobs(tx, workspace, jobs, &mine, &mut counts)?;
            }
            Ok(counts)
        })?)
    }

    fn store_workspace_jobs(
        &self,
        tx: &mut dyn Tx,
        workspace: &Workspace,
        jobs: &[Job],
        mine: &[usize],
        counts: &mut [(usize, usize)],
    ) -> StoreResult<()> {
        let ws = workspace.id.clone();
        let ids: Vec<String> = mine
            .iter()
            .flat_map(|j| {
                jobs[*j]
                    .prepared
                    .iter()
                    .map(|p| p.message.message_id.clone())
            })
            .collect();
        let mut stored: HashSet<String> = HashSet::new();
        for chunk in ids.chunks(500) {
            stored.extend(tx.existing_message_ids(&ws, chunk)?);
        }
        // (job, prepared) in arrival order; a message id seen earlier in the group is a duplicate.
        let mut fresh: Vec<(usize, &Prepared)> = Vec::new();
        for &j in mine {
            for p in &jobs[j].prepared {
                if stored.insert(p.message.message_id.clone()) {
                    fresh.push((j, p));
                } else {
                    counts[j].1 += 1;
                }
            }
        }
        let mut graph = Graph::new(self, ws.clone());
        let all_keys: Vec<IdentityKey> = fresh
            .iter()
            .flat_map(|(_, p)| p.keys.iter().chain(&p.lookup_only).cloned())
            .collect();
        graph.prefetch(tx, &all_keys)?;
        let mut events = Vec::with_capacity(fresh.len());
        let mut event_jobs = Vec::with_capacity(fresh.len());
        let mut orders: Vec<(usize, CustomerId, Order)> = Vec::new();
        for (j, p) in &fresh {
            let job = &jobs[*j];
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
                customer.updated_at = job.received_at;
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
                        source: if job.source.0 == "api" {
                            "track".to_string()
                        } else {
                            job.source.0.to_string()
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
                source: job.source.0.to_string(),
                user_id: m.user_id.clone(),
                anonymous_id: m.anonymous_id.clone(),
                properties,
                context: m.context.clone(),
                timestamp: m.timestamp,
                received_at: job.received_at,
            });
            event_jobs.push(*j);
        }
        graph.flush(tx)?;
        let inserted = tx.insert_events(&events)?;
        for (i, was_inserted) in inserted.iter().enumerate() {
            let j = event_jobs[i];
            if *was_inserted {
                counts[j].0 += 1;
            } else {
                counts[j].1 += 1;
            }
        }
        let (roots, orders): (Vec<CustomerId>, Vec<Order>) = orders
            .into_iter()
            .filter(|(event_index, _, _)| inserted.get(*event_index).copied().unwrap_or(false))
            .map(|(_, root, order)| (root, order))
            .unzip();
        let stored = tx.insert_orders(&orders)?;
        for ((root, order), was_stored) in roots.iter().zip(&orders).zip(stored) {
            if was_stored {
                graph
                    .customer_mut(tx, root)?
                    .stats
                    .record_order(order.total_minor, order.placed_at);
            }
        }
        graph.flush(tx)
    }
}
