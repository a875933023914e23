//! Events: de-duplicated ingestion, the timeline, and events counted by name (segments).
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
use ciclo_store::{NamedEvent, NamedEventQuery, StoreError, StoreResult, TimelineQuery};
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

/// The stored bounds of a named-event window: `since` inclusive, `until` exclusive, open ends
/// as the widest integers.
fn window(q: &NamedEventQuery) -> (i64, i64) {
    (
        q.since.as_ref().map_or(i64::MIN, micros),
        q.until.as_ref().map_or(i64::MAX, micros),
    )
}

/// What a named-event query reads: the events, or how many each profile has.
#[derive(Clone, Copy, PartialEq)]
enum Read {
    Events,
    Counts,
}

/// A named-event query as one statement: through `events_by_name` (name, then time) for the
/// whole workspace, through `events_timeline` (profile, then time) for some profiles. Rows are
/// the profile's seq, then the timestamp and properties ([`Read::Events`]) or the count.
/// Returns the rows with the ids of the profiles they name.
fn named_events_query<T>(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    q: &NamedEventQuery,
    what: Read,
    read: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<(CustomerId, T)>> {
    let Some(ws_seq) = known_workspace_seq(conn, known, ws)? else {
        return Ok(Vec::new());
    };
    let (since, until) = window(q);
    let (select, group) = match what {
        Read::Events => ("e.customer_seq, e.timestamp, e.properties", ""),
        Read::Counts => ("e.customer_seq, count(*)", " GROUP BY e.customer_seq"),
    };
    let (sql, params, by_seq): (String, Params, Option<HashMap<i64, CustomerId>>) =
        match &q.customers {
            None => (
                // The index holds customer_seq, so counting reads no event row.
                format!(
                    "SELECT {select} FROM events e INDEXED BY events_by_name
                     WHERE e.workspace_seq = ?1 AND e.name = ?2 AND e.timestamp >= ?3 AND e.timestamp < ?4{group}"
                ),
                vec![
                    Box::new(ws_seq),
                    Box::new(q.name.clone()),
                    Box::new(since),
                    Box::new(until),
                ],
                None,
            ),
            Some(customers) => {
                let ids: Vec<&CustomerId> = customers.iter().collect();
                let seqs = customer_seqs(conn, known, ws, &ids)?;
                if seqs.is_empty() {
                    return Ok(Vec::new());
                }
                let list = serde_json::Value::from(seqs.values().copied().collect::<Vec<i64>>());
                (
                    format!(
                        "SELECT {select} FROM events e INDEXED BY events_timeline
                         WHERE e.workspace_seq = ?1 AND e.customer_seq IN (SELECT value FROM json_each(?2))
                           AND e.name = ?3 AND e.timestamp >= ?4 AND e.timestamp < ?5{group}"
                    ),
                    vec![
                        Box::new(ws_seq),
                        Box::new(list.to_string()),
                        Box::new(q.name.clone()),
                        Box::new(since),
                        Box::new(until),
                    ],
                    Some(seqs.into_iter().map(|(id, seq)| (seq, id)).collect()),
                )
            }
        };
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |row| {
            Ok((row.get::<_, i64>(0)?, read(row)?))
        })
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    // The ids of the profiles named: known from the query's list, else from their rows.
    let by_seq = match by_seq {
        Some(map) => map,
        None => {
            let mut wanted: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
            wanted.sort_unstable();
            wanted.dedup();
            ids_of_seqs(conn, &wanted)?
        }
    };
    rows.into_iter()
        .map(|(seq, value)| {
            let id = by_seq
                .get(&seq)
                .ok_or_else(|| StoreError::Backend(format!("event of an unknown profile {seq}")))?;
            Ok((id.clone(), value))
        })
        .collect()
}

/// The ids of profiles by seq (the rowid: one probe each).
fn ids_of_seqs(conn: &Connection, seqs: &[i64]) -> StoreResult<HashMap<i64, CustomerId>> {
    let mut stmt = conn
        .prepare_cached("SELECT id FROM customers WHERE seq = ?1")
        .db()?;
    let mut out = HashMap::with_capacity(seqs.len());
    for seq in seqs {
        let id: String = stmt.query_row([seq], |row| row.get(0)).db()?;
        out.insert(*seq, CustomerId::from_trusted(id));
    }
    Ok(out)
}

/// Events named `q.name` (a track event's name, or a page's or screen's: whatever the type) in
/// the window.
pub(crate) fn named_events(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    q: &NamedEventQuery,
) -> StoreResult<Vec<NamedEvent>> {
    let rows = named_events_query(conn, known, ws, q, Read::Events, |row| {
        Ok((get_ts(row, 1)?, get_json(row, 2)?))
    })?;
    Ok(rows
        .into_iter()
        .map(|(customer_id, (timestamp, properties))| NamedEvent {
            customer_id,
            timestamp,
            properties,
        })
        .collect())
}

/// Events named `q.name` in the window, like [`named_events`], handed to `visit` row by row as
/// SQLite steps through them: nothing is collected, so memory stays flat however many events
/// the workspace has. Without `with_properties` the `properties` column is not selected, so the
/// whole-workspace scan reads nothing but the `events_by_name` index (it holds customer_seq).
pub(crate) fn scan_named_events(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    q: &NamedEventQuery,
    with_properties: bool,
    visit: &mut dyn FnMut(NamedEvent),
) -> StoreResult<()> {
    let Some(ws_seq) = known_workspace_seq(conn, known, ws)? else {
        return Ok(());
    };
    let (since, until) = window(q);
    let properties = if with_properties {
        ", e.properties"
    } else {
        ""
    };
    // Rows are the profile's id (whole workspace) or seq (some profiles), the timestamp, then
    // the properties when asked for.
    let (sql, params, by_seq): (String, Params, Option<HashMap<i64, CustomerId>>) = match &q
        .customers
    {
        // The whole workspace: the profile's id is looked up by SQLite in the same statement
        // (a rowid probe per event), rather than collecting every seq first to map them after.
        // CROSS JOIN keeps events as the outer loop, walking `events_by_name` (name, then time).
        None => (
            format!(
                "SELECT c.id, e.timestamp{properties}
                 FROM events e INDEXED BY events_by_name CROSS JOIN customers c
                 WHERE e.workspace_seq = ?1 AND e.name = ?2 AND e.timestamp >= ?3 AND e.timestamp < ?4
                   AND c.seq = e.customer_seq"
            ),
            vec![
                Box::new(ws_seq),
                Box::new(q.name.clone()),
                Box::new(since),
                Box::new(until),
            ],
            None,
        ),
        // Some profiles: each one's events through `events_timeline` (profile, then time), as
        // `named_events` reads them; the map back to ids is as big as the caller's list.
        Some(customers) => {
            let ids: Vec<&CustomerId> = customers.iter().collect();
            let seqs = customer_seqs(conn, known, ws, &ids)?;
            if seqs.is_empty() {
                return Ok(());
            }
            let list = serde_json::Value::from(seqs.values().copied().collect::<Vec<i64>>());
            (
                format!(
                    "SELECT e.customer_seq, e.timestamp{properties}
                     FROM events e INDEXED BY events_timeline
                     WHERE e.workspace_seq = ?1 AND e.customer_seq IN (SELECT value FROM json_each(?2))
                       AND e.name = ?3 AND e.timestamp >= ?4 AND e.timestamp < ?5"
                ),
                vec![
                    Box::new(ws_seq),
                    Box::new(list.to_string()),
                    Box::new(q.name.clone()),
                    Box::new(since),
                    Box::new(until),
                ],
                Some(seqs.into_iter().map(|(id, seq)| (seq, id)).collect()),
            )
        }
    };
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter())).db()?;
    let mut visited = false;
    // A failure once rows were handed out must not make the store run the transaction again
    // (`visit` would see those rows twice): a busy or locked database is then a plain failure.
    let failed = |e: StoreError, visited: bool| match e {
        StoreError::Retry(reason) if visited => {
            StoreError::Backend(format!("event scan interrupted: {reason}"))
        }
        other => other,
    };
    while let Some(row) = rows.next().db().map_err(|e| failed(e, visited))? {
        let customer_id = match &by_seq {
            None => CustomerId::from_trusted(row.get(0).db()?),
            Some(by_seq) => {
                let seq: i64 = row.get(0).db()?;
                by_seq.get(&seq).cloned().ok_or_else(|| {
                    StoreError::Backend(format!("event of an unknown profile {seq}"))
                })?
            }
        };
        let event = NamedEvent {
            customer_id,
            timestamp: get_ts(row, 1).db()?,
            properties: if with_properties {
                get_json(row, 2).db()?
            } else {
                serde_json::Map::new()
            },
        };
        visit(event);
        visited = true;
    }
    Ok(())
}

/// Ordered by customer id.
pub(crate) fn count_named_events(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    q: &NamedEventQuery,
) -> StoreResult<Vec<(CustomerId, i64)>> {
    let mut counts = match &q.customers {
        // The whole workspace: counted from the index, and the profiles' ids looked up by
        // SQLite once per profile (not per event, and not one statement per profile).
        None => {
            let Some(ws_seq) = known_workspace_seq(conn, known, ws)? else {
                return Ok(Vec::new());
            };
            let (since, until) = window(q);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT c.id, g.n FROM (
                         SELECT e.customer_seq, count(*) AS n FROM events e INDEXED BY events_by_name
                         WHERE e.workspace_seq = ?1 AND e.name = ?2 AND e.timestamp >= ?3
                           AND e.timestamp < ?4
                         GROUP BY e.customer_seq
                     ) g JOIN customers c ON c.seq = g.customer_seq",
                )
                .db()?;
            let rows = stmt
                .query_map(rusqlite::params![ws_seq, q.name, since, until], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .db()?
                .collect::<rusqlite::Result<Vec<_>>>()
                .db()?;
            rows.into_iter()
                .map(|(id, n)| Ok((CustomerId::from_trusted(id), n)))
                .collect::<StoreResult<Vec<_>>>()?
        }
        Some(_) => {
            named_events_query(conn, known, ws, q, Read::Counts, |row| row.get::<_, i64>(1))?
        }
    };
    counts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(counts)
}
