//! Events: de-duplicated ingestion and the timeline.
//!
//! Ingestion is the hottest path (the target is 50,000 events/s), so an event is one execution
//! of a cached INSERT inside the caller's transaction, with `ON CONFLICT DO NOTHING` on the
//! message id: the changed-row count says whether it was new, without a lookup first.

use crate::codec::{get_json, get_parsed, get_ts, ids_json, json_strings, micros, to_json};
use crate::error::Db;
use ciclo_domain::event::{Event, EventType};
use ciclo_domain::ids::{CustomerId, EventId, WorkspaceId};
use ciclo_store::{StoreResult, TimelineQuery};
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, Row};

/// Up to this many profiles, a timeline reads each profile's newest events through the index
/// and merges them (`limit` rows per profile at most); beyond it, one scan over all of them.
const PER_PROFILE_BRANCHES: usize = 16;

const EVENT_COLUMNS: &str =
    "e.id, e.workspace_id, e.customer_id, e.message_id, e.event_type, e.name, e.channel, \
     e.source, e.user_id, e.anonymous_id, e.properties, e.context, e.timestamp, e.received_at";

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: EventId::from_trusted(row.get(0)?),
        workspace_id: WorkspaceId::from_trusted(row.get(1)?),
        customer_id: CustomerId::from_trusted(row.get(2)?),
        message_id: row.get(3)?,
        event_type: get_parsed(row, 4, |s| EventType::parse(s).ok_or("unknown event type"))?,
        name: row.get(5)?,
        channel: row.get(6)?,
        source: row.get(7)?,
        user_id: row.get(8)?,
        anonymous_id: row.get(9)?,
        properties: get_json(row, 10)?,
        context: get_json(row, 11)?,
        timestamp: get_ts(row, 12)?,
        received_at: get_ts(row, 13)?,
    })
}

pub(crate) fn existing_message_ids(
    conn: &Connection,
    ws: &WorkspaceId,
    message_ids: &[String],
) -> StoreResult<Vec<String>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    // Each id is one probe of the (workspace_id, message_id) unique index.
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT wanted.value FROM json_each(?2) AS wanted
             CROSS JOIN events e ON e.workspace_id = ?1 AND e.message_id = wanted.value",
        )
        .db()?;
    let rows = stmt
        .query_map(params![ws.as_str(), json_strings(message_ids)], |row| {
            row.get(0)
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<String>>>().db()
}

pub(crate) fn insert_events(conn: &Connection, events: &[Event]) -> StoreResult<Vec<bool>> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO events (id, workspace_id, customer_id, message_id, event_type, name, channel, source,
                 user_id, anonymous_id, properties, context, timestamp, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (workspace_id, message_id) DO NOTHING",
        )
        .db()?;
    let mut inserted = Vec::with_capacity(events.len());
    for e in events {
        let changed = stmt
            .execute(params![
                e.id.as_str(),
                e.workspace_id.as_str(),
                e.customer_id.as_str(),
                e.message_id,
                e.event_type.as_str(),
                e.name,
                e.channel,
                e.source,
                e.user_id,
                e.anonymous_id,
                to_json(&e.properties)?,
                to_json(&e.context)?,
                micros(&e.timestamp),
                micros(&e.received_at)
            ])
            .db()?;
        inserted.push(changed == 1);
    }
    Ok(inserted)
}

pub(crate) fn timeline(
    conn: &Connection,
    ws: &WorkspaceId,
    customers: &[CustomerId],
    q: &TimelineQuery,
) -> StoreResult<Vec<Event>> {
    let Some((text, params)) = timeline_sql(ws, customers, q) else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(&text).db()?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), event_from_row)
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

/// Positional parameters of an assembled statement (`?1`, `?2`…).
pub(crate) type Params = Vec<Box<dyn ToSql>>;

/// The statement and parameters of a timeline query, or none when the answer is empty without
/// asking.
pub(crate) fn timeline_sql(
    ws: &WorkspaceId,
    customers: &[CustomerId],
    q: &TimelineQuery,
) -> Option<(String, Params)> {
    let limit = q.limit.max(0);
    if customers.is_empty() || limit == 0 {
        return None;
    }
    let mut params: Params = vec![Box::new(ws.as_str().to_string()), Box::new(limit)];
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
        let mut unique: Vec<&CustomerId> = customers.iter().collect();
        unique.sort();
        unique.dedup();
        let branches: Vec<String> = unique
            .into_iter()
            .map(|c| {
                let p = bind(Box::new(c.as_str().to_string()));
                format!(
                    "SELECT * FROM (SELECT {EVENT_COLUMNS} FROM events e
                         WHERE e.workspace_id = ?1 AND e.customer_id = {p}{filters} {order})"
                )
            })
            .collect();
        if branches.len() == 1 {
            branches.concat()
        } else {
            // Columns 13 and 1 are timestamp and id.
            format!(
                "{} ORDER BY 13 DESC, 1 DESC LIMIT ?2",
                branches.join(" UNION ALL ")
            )
        }
    } else {
        let p = bind(Box::new(ids_json(customers)));
        format!(
            "SELECT {EVENT_COLUMNS} FROM events e
             WHERE e.workspace_id = ?1 AND e.customer_id IN (SELECT value FROM json_each({p})){filters} {order}"
        )
    };
    Some((text, params))
}

pub(crate) fn count_events(conn: &Connection, ws: &WorkspaceId) -> StoreResult<i64> {
    conn.prepare_cached("SELECT count(*) FROM events WHERE workspace_id = ?1")
        .db()?
        .query_row([ws.as_str()], |row| row.get(0))
        .db()
}
