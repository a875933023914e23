//! Events: de-duplicated ingestion and the timeline.
//!
//! Ingestion is the hottest path (the target is 50,000 events/s), so an event is one execution
//! of a cached INSERT inside the caller's transaction, with `ON CONFLICT DO NOTHING` on the
//! message id: the changed-row count says whether it was new, without a lookup first.
//!
//! Events refer to their workspace and profile by integer seq (see `0001_init.sql`): the profile's
//! seq comes from what the writer knows (`known.rs`), as ingestion has just read or written every
//! profile it stores events for, and a timeline maps the profiles' ids to seqs and back.

use crate::codec::{get_json, get_parsed, get_ts, json_strings, micros};
use crate::customers::{customer_seqs, known_workspace_seq};
use crate::error::Db;
use crate::known::Known;
use ciclo_domain::event::{Event, EventType};
use ciclo_domain::ids::{CustomerId, EventId, WorkspaceId};
use ciclo_store::{StoreError, StoreResult, TimelineQuery};
use rusqlite::types::{ToSql, ToSqlOutput, Type, ValueRef};
use rusqlite::{params, Connection, Row};
use std::collections::{HashMap, HashSet};

/// Up to this many profiles, a timeline reads each profile's newest events through the index
/// and merges them (`limit` rows per profile at most); beyond it, one scan over all of them.
const PER_PROFILE_BRANCHES: usize = 16;

const EVENT_COLUMNS: &str =
    "e.id, e.customer_seq, e.message_id, e.event_type, e.name, e.channel, e.source, e.user_id, \
     e.anonymous_id, e.properties, e.context, e.timestamp, e.received_at";

/// Reads a row selected as [`EVENT_COLUMNS`]; the workspace and the profiles' ids come from the
/// query (rows hold their integer keys).
fn event_from_row(
    row: &Row<'_>,
    ws: &WorkspaceId,
    customers: &HashMap<i64, &CustomerId>,
) -> rusqlite::Result<Event> {
    let customer_seq: i64 = row.get(1)?;
    let customer_id = customers.get(&customer_seq).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            Type::Integer,
            format!("event of an unexpected profile {customer_seq}").into(),
        )
    })?;
    Ok(Event {
        id: EventId::from_trusted(row.get(0)?),
        workspace_id: ws.clone(),
        customer_id: (*customer_id).clone(),
        message_id: row.get(2)?,
        event_type: get_parsed(row, 3, |s| EventType::parse(s).ok_or("unknown event type"))?,
        name: row.get(4)?,
        channel: row.get(5)?,
        source: row.get(6)?,
        user_id: row.get(7)?,
        anonymous_id: row.get(8)?,
        properties: get_json(row, 9)?,
        context: get_json(row, 10)?,
        timestamp: get_ts(row, 11)?,
        received_at: get_ts(row, 12)?,
    })
}

pub(crate) fn existing_message_ids(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    message_ids: &[String],
) -> StoreResult<Vec<String>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let Some(ws_seq) = known_workspace_seq(conn, known, ws)? else {
        return Ok(Vec::new());
    };
    // Each id is one probe of the (workspace_seq, message_id) unique index.
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM events WHERE workspace_seq = ?1 AND message_id = ?2")
        .db()?;
    let mut seen: HashSet<&str> = HashSet::with_capacity(message_ids.len());
    let mut existing = Vec::new();
    for id in message_ids {
        if seen.insert(id) && stmt.exists(params![ws_seq, id]).db()? {
            existing.push(id.clone());
        }
    }
    Ok(existing)
}

/// A JSON document serialised into a buffer reused from one event to the next, bound as text.
struct JsonText(Vec<u8>);

impl JsonText {
    fn encode<T: serde::Serialize>(&mut self, value: &T) -> StoreResult<&Self> {
        self.0.clear();
        serde_json::to_writer(&mut self.0, value)
            .map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")))?;
        Ok(self)
    }
}

impl ToSql for JsonText {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        // serde_json writes UTF-8.
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(&self.0)))
    }
}

pub(crate) fn insert_events(
    conn: &Connection,
    known: &mut Known<'_>,
    events: &[Event],
) -> StoreResult<Vec<bool>> {
    // The integer keys of the workspaces and profiles named: known already when the writer read
    // or wrote the profiles (ingestion does), else looked up in one statement per workspace.
    let mut looked_up: HashMap<&WorkspaceId, HashMap<CustomerId, i64>> = HashMap::new();
    for e in events {
        let ws = &e.workspace_id;
        if known.customer(ws, &e.customer_id).is_some() || looked_up.contains_key(ws) {
            continue;
        }
        let mut ids: Vec<&CustomerId> = events
            .iter()
            .filter(|o| &o.workspace_id == ws && known.customer(ws, &o.customer_id).is_none())
            .map(|o| &o.customer_id)
            .collect();
        ids.sort();
        ids.dedup();
        looked_up.insert(ws, customer_seqs(conn, known, ws, &ids)?);
    }
    let mut seqs = Vec::with_capacity(events.len());
    for e in events {
        let ws_seq = known_workspace_seq(conn, known, &e.workspace_id)?
            .ok_or_else(|| missing_customer(e))?;
        let customer_seq = match known.customer(&e.workspace_id, &e.customer_id) {
            Some(k) => k.seq,
            None => *looked_up
                .get(&e.workspace_id)
                .and_then(|seqs| seqs.get(&e.customer_id))
                .ok_or_else(|| missing_customer(e))?,
        };
        seqs.push((ws_seq, customer_seq));
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO events (workspace_seq, customer_seq, id, message_id, event_type, name, channel,
                 source, user_id, anonymous_id, properties, context, timestamp, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (workspace_seq, message_id) DO NOTHING",
        )
        .db()?;
    // One row per execution: a multi-row INSERT measured no faster, as SQLite then keeps a
    // statement journal (a later row could fail and undo the earlier ones).
    let (mut properties, mut context) = (JsonText(Vec::new()), JsonText(Vec::new()));
    let mut inserted = Vec::with_capacity(events.len());
    for (e, (ws_seq, customer_seq)) in events.iter().zip(seqs) {
        let changed = stmt
            .execute(params![
                ws_seq,
                customer_seq,
                e.id.as_str(),
                e.message_id,
                e.event_type.as_str(),
                e.name,
                e.channel,
                e.source,
                e.user_id,
                e.anonymous_id,
                properties.encode(&e.properties)?,
                context.encode(&e.context)?,
                micros(&e.timestamp),
                micros(&e.received_at)
            ])
            .db()?;
        inserted.push(changed == 1);
    }
    Ok(inserted)
}

/// An event must name a stored profile: the rule a foreign key states in the other tables,
/// checked here when the event is written (an event refers to its profile by the profile's seq,
/// which exists only once the profile does).
fn missing_customer(e: &Event) -> StoreError {
    StoreError::Backend(format!(
        "FOREIGN KEY constraint failed: event {} names customer {}, which workspace {} does not have",
        e.id, e.customer_id, e.workspace_id
    ))
}

pub(crate) fn timeline(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    customers: &[CustomerId],
    q: &TimelineQuery,
) -> StoreResult<Vec<Event>> {
    if customers.is_empty() || q.limit <= 0 {
        return Ok(Vec::new());
    }
    let Some(ws_seq) = known_workspace_seq(conn, known, ws)? else {
        return Ok(Vec::new());
    };
    let ids: Vec<&CustomerId> = customers.iter().collect();
    let seqs = customer_seqs(conn, known, ws, &ids)?;
    let by_seq: HashMap<i64, &CustomerId> = seqs.iter().map(|(id, seq)| (*seq, id)).collect();
    let mut wanted: Vec<i64> = by_seq.keys().copied().collect();
    wanted.sort_unstable();
    let Some((text, params)) = timeline_sql(ws_seq, &wanted, q) else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(&text).db()?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |row| {
            event_from_row(row, ws, &by_seq)
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

/// Positional parameters of an assembled statement (`?1`, `?2`…).
pub(crate) type Params = Vec<Box<dyn ToSql>>;

/// The statement and parameters of a timeline query over the events of these profiles (by seq),
/// or none when the answer is empty without asking.
pub(crate) fn timeline_sql(
    ws_seq: i64,
    customers: &[i64],
    q: &TimelineQuery,
) -> Option<(String, Params)> {
    let limit = q.limit.max(0);
    if customers.is_empty() || limit == 0 {
        return None;
    }
    let mut params: Params = vec![Box::new(ws_seq), Box::new(limit)];
    let mut bind = |value: Box<dyn ToSql>| {
        params.push(value);
        format!("?{}", params.len())
    };
    let mut filters = String::new();
    if !q.event_types.is_empty() {
        let types: Vec<&str> = q.event_types.iter().map(|t| t.as_str()).collect();
        let p = bind(Box::new(json_strings(&types)));
        filters.push_str(&format!(
            " AND e.event_type IN (SELECT value FROM json_each({p}))"
        ));
    }
    if !q.names.is_empty() {
        let p = bind(Box::new(json_strings(&q.names)));
        filters.push_str(&format!(
            " AND e.name IN (SELECT value FROM json_each({p}))"
        ));
    }
    if !q.channels.is_empty() {
        let p = bind(Box::new(json_strings(&q.channels)));
        filters.push_str(&format!(
            " AND e.channel IN (SELECT value FROM json_each({p}))"
        ));
    }
    if let Some((at, id)) = &q.before {
        let at = bind(Box::new(micros(at)));
        let id = bind(Box::new(id.as_str().to_string()));
        filters.push_str(&format!(" AND (e.timestamp, e.id) < ({at}, {id})"));
    }
    let order = "ORDER BY e.timestamp DESC, e.id DESC LIMIT ?2";
    let text = if customers.len() <= PER_PROFILE_BRANCHES {
        let mut unique = customers.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let branches: Vec<String> = unique
            .into_iter()
            .map(|c| {
                let p = bind(Box::new(c));
                format!(
                    "SELECT * FROM (SELECT {EVENT_COLUMNS} FROM events e
                         WHERE e.workspace_seq = ?1 AND e.customer_seq = {p}{filters} {order})"
                )
            })
            .collect();
        if branches.len() == 1 {
            branches.concat()
        } else {
            // Columns 12 and 1 are timestamp and id.
            format!(
                "{} ORDER BY 12 DESC, 1 DESC LIMIT ?2",
                branches.join(" UNION ALL ")
            )
        }
    } else {
        let list = serde_json::Value::from(customers.to_vec()).to_string();
        let p = bind(Box::new(list));
        format!(
            "SELECT {EVENT_COLUMNS} FROM events e
             WHERE e.workspace_seq = ?1 AND e.customer_seq IN (SELECT value FROM json_each({p})){filters} {order}"
        )
    };
    Some((text, params))
}

pub(crate) fn count_events(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
) -> StoreResult<i64> {
    let Some(ws_seq) = known_workspace_seq(conn, known, ws)? else {
        return Ok(0);
    };
    conn.prepare_cached("SELECT count(*) FROM events WHERE workspace_seq = ?1")
        .db()?
        .query_row([ws_seq], |row| row.get(0))
        .db()
}
