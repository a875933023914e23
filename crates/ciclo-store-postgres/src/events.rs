//! Events: de-duplicated bulk inserts (the ingestion hot path), the timeline, and events of one
//! name for segments.

use crate::rows::{self, get};
use crate::tx::{distinct_ids, sql_limit, PgTx};
use ciclo_domain::event::Event;
use ciclo_domain::ids::*;
use ciclo_domain::Timestamp;
use ciclo_store::{NamedEvent, NamedEventQuery, StoreError, StoreResult, TimelineQuery};
use postgres::types::Json;
use postgres::Row;
use std::collections::HashMap;

/// The message ids of `message_ids` stored in this workspace, in one statement: one probe of
/// the primary key per id, whatever the statistics say. Written as `= ANY(…)` or as a join, the
/// statement gets planned, on a table without statistics yet (a new database, autovacuum behind
/// or off), as a walk through all the workspace's events compared against every id: seconds
/// per call after 50,000 events. A `LATERAL` subquery kept apart by `OFFSET 0` can only run
/// once per id, and for one id the primary key is the cheapest way. (Not `LIMIT 1`: with a
/// limit, a sequential scan that expects to meet its row early looks cheap, and a missing id,
/// the usual case here, reads the whole table.)
pub(crate) fn existing_message_ids(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    message_ids: &[String],
) -> StoreResult<Vec<String>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = std::collections::HashSet::with_capacity(message_ids.len());
    let message_ids: Vec<&str> = message_ids
        .iter()
        .map(String::as_str)
        .filter(|id| seen.insert(*id))
        .collect();
    tx.query(
        "SELECT e.message_id
         FROM unnest($2::text[]) AS k(message_id)
         CROSS JOIN LATERAL (
             SELECT e.message_id FROM events e
             WHERE e.workspace_id = $1 AND e.message_id = k.message_id
             OFFSET 0
         ) e",
        &[&workspace.as_str(), &message_ids],
    )?
    .iter()
    .map(|row| get(row, "message_id"))
    .collect()
}

/// All the events in one statement, one array per column, unnested in the select list (which
/// streams them; `unnest(…)` in `FROM` would first copy every row into a tuple store).
/// `ON CONFLICT DO NOTHING` skips the message ids already stored (also those a concurrent
/// transaction is inserting: it waits for that one and then skips), and `RETURNING` says which
/// rows went in.
///
/// Repeats of a message id within the call are dropped here, before the statement, so that the
/// first occurrence is the one stored and reported. The rows are sent sorted by key so that two
/// batches that share message ids lock them in the same order and cannot deadlock.
pub(crate) fn insert_events(tx: &mut PgTx<'_>, events: &[Event]) -> StoreResult<Vec<bool>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut first_of_key: HashMap<(&str, &str), usize> = HashMap::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        first_of_key
            .entry((event.workspace_id.as_str(), event.message_id.as_str()))
            .or_insert(index);
    }
    let mut unique: Vec<usize> = first_of_key.values().copied().collect();
    unique.sort_by_key(|&i| {
        (
            events[i].workspace_id.as_str(),
            events[i].message_id.as_str(),
        )
    });

    let n = unique.len();
    let mut workspace_ids = Vec::with_capacity(n);
    let mut message_ids = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut customer_ids = Vec::with_capacity(n);
    let mut event_types = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut channels = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut user_ids = Vec::with_capacity(n);
    let mut anonymous_ids = Vec::with_capacity(n);
    let mut properties = Vec::with_capacity(n);
    let mut contexts = Vec::with_capacity(n);
    let mut occurred_at: Vec<Timestamp> = Vec::with_capacity(n);
    let mut received_at: Vec<Timestamp> = Vec::with_capacity(n);
    for &i in &unique {
        let e = &events[i];
        workspace_ids.push(e.workspace_id.as_str());
        message_ids.push(e.message_id.as_str());
        ids.push(e.id.as_str());
        customer_ids.push(e.customer_id.as_str());
        event_types.push(e.event_type.as_str());
        names.push(e.name.as_deref());
        channels.push(e.channel.as_str());
        sources.push(e.source.as_str());
        user_ids.push(e.user_id.as_deref());
        anonymous_ids.push(e.anonymous_id.as_deref());
        // Serialized straight from the maps into the statement's buffer, without a copy.
        properties.push(Json(&e.properties));
        contexts.push(Json(&e.context));
        occurred_at.push(e.timestamp);
        received_at.push(e.received_at);
    }
    let inserted_rows = tx.query(
        "INSERT INTO events (workspace_id, message_id, id, customer_id, event_type, name, channel, source,
             user_id, anonymous_id, properties, context, occurred_at, received_at)
         SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::text[]), unnest($4::text[]),
             unnest($5::text[]), unnest($6::text[]), unnest($7::text[]), unnest($8::text[]),
             unnest($9::text[]), unnest($10::text[]), unnest($11::jsonb[]), unnest($12::jsonb[]),
             unnest($13::timestamptz[]), unnest($14::timestamptz[])
         ON CONFLICT (workspace_id, message_id) DO NOTHING
         RETURNING workspace_id, message_id",
        &[
            &workspace_ids,
            &message_ids,
            &ids,
            &customer_ids,
            &event_types,
            &names,
            &channels,
            &sources,
            &user_ids,
            &anonymous_ids,
            &properties,
            &contexts,
            &occurred_at,
            &received_at,
        ],
    )?;
    // Only first occurrences were sent, so each returned key marks exactly one input.
    let mut inserted = vec![false; events.len()];
    for row in &inserted_rows {
        let key: (&str, &str) = (get(row, "workspace_id")?, get(row, "message_id")?);
        if let Some(&index) = first_of_key.get(&key) {
            inserted[index] = true;
        }
    }
    Ok(inserted)
}

macro_rules! event_columns {
    () => {
        "e.id, e.workspace_id, e.customer_id, e.message_id, e.event_type, e.name, e.channel, e.source, \
         e.user_id, e.anonymous_id, e.properties, e.context, e.occurred_at, e.received_at"
    };
}

fn event_from(row: &Row) -> StoreResult<Event> {
    Ok(Event {
        id: rows::id(row, "id", EventId::from_trusted)?,
        workspace_id: rows::id(row, "workspace_id", WorkspaceId::from_trusted)?,
        customer_id: rows::id(row, "customer_id", CustomerId::from_trusted)?,
        message_id: get(row, "message_id")?,
        event_type: rows::event_type(row, "event_type")?,
        name: get(row, "name")?,
        channel: get(row, "channel")?,
        source: get(row, "source")?,
        user_id: get(row, "user_id")?,
        anonymous_id: get(row, "anonymous_id")?,
        properties: rows::object(row, "properties")?,
        context: rows::object(row, "context")?,
        timestamp: get(row, "occurred_at")?,
        received_at: get(row, "received_at")?,
    })
}

/// Each profile's newest matching events come from its own walk down the timeline index
/// (`LATERAL … LIMIT`), and only those are merged: a profile with a million events costs no
/// more than one with fifty.
const TIMELINE: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM unnest($2::text[]) AS p(customer_id)
      CROSS JOIN LATERAL (
          SELECT * FROM events e
          WHERE e.workspace_id = $1 AND e.customer_id = p.customer_id
            AND (cardinality($3::text[]) = 0 OR e.event_type = ANY($3::text[]))
            AND (cardinality($4::text[]) = 0 OR e.name = ANY($4::text[]))
            AND (cardinality($5::text[]) = 0 OR e.channel = ANY($5::text[]))
          ORDER BY e.occurred_at DESC, e.id DESC
          LIMIT $6::bigint
      ) e
      ORDER BY e.occurred_at DESC, e.id DESC
      LIMIT $6::bigint"
);

/// [`TIMELINE`] after a cursor: `(occurred_at, id) < (…)` matches the index order.
const TIMELINE_BEFORE: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM unnest($2::text[]) AS p(customer_id)
      CROSS JOIN LATERAL (
          SELECT * FROM events e
          WHERE e.workspace_id = $1 AND e.customer_id = p.customer_id
            AND (cardinality($3::text[]) = 0 OR e.event_type = ANY($3::text[]))
            AND (cardinality($4::text[]) = 0 OR e.name = ANY($4::text[]))
            AND (cardinality($5::text[]) = 0 OR e.channel = ANY($5::text[]))
            AND (e.occurred_at, e.id) < ($7::timestamptz, $8::text)
          ORDER BY e.occurred_at DESC, e.id DESC
          LIMIT $6::bigint
      ) e
      ORDER BY e.occurred_at DESC, e.id DESC
      LIMIT $6::bigint"
);

pub(crate) fn timeline(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    customers: &[CustomerId],
    q: &TimelineQuery,
) -> StoreResult<Vec<Event>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let customers = distinct_ids(customers);
    let types: Vec<&str> = q.event_types.iter().map(|t| t.as_str()).collect();
    let limit = sql_limit(q.limit);
    let rows = match &q.before {
        None => tx.query(
            TIMELINE,
            &[
                &workspace.as_str(),
                &customers,
                &types,
                &q.names,
                &q.channels,
                &limit,
            ],
        )?,
        Some((at, id)) => tx.query(
            TIMELINE_BEFORE,
            &[
                &workspace.as_str(),
                &customers,
                &types,
                &q.names,
                &q.channels,
                &limit,
                at,
                &id.as_str(),
            ],
        )?,
    };
    rows.iter().map(event_from).collect()
}

/// Counts every event of the workspace: a full index scan, for dashboards and tests rather than
/// hot paths.
pub(crate) fn count_events(tx: &mut PgTx<'_>, workspace: &WorkspaceId) -> StoreResult<i64> {
    get(
        &tx.query_one(
            "SELECT count(*) AS n FROM events WHERE workspace_id = $1",
            &[&workspace.as_str()],
        )?,
        "n",
    )
}

/// Events of one name in a window, for the whole workspace: `events_by_name` (name, then time).
/// Open ends of the window are infinite times, so that one statement serves every window.
const NAMED_EVENTS: &str = "SELECT e.customer_id, e.occurred_at, e.properties FROM events e
     WHERE e.workspace_id = $1 AND e.name = $2
       AND e.occurred_at >= coalesce($3::timestamptz, '-infinity') AND e.occurred_at < coalesce($4::timestamptz, 'infinity')";

/// [`NAMED_EVENTS`] for some profiles: each profile's events of the window through the timeline
/// index (profile, then time), pinned by `LATERAL … OFFSET 0`.
const NAMED_EVENTS_OF: &str = "SELECT e.customer_id, e.occurred_at, e.properties
     FROM unnest($5::text[]) AS p(customer_id)
     CROSS JOIN LATERAL (
         SELECT e.customer_id, e.occurred_at, e.properties FROM events e
         WHERE e.workspace_id = $1 AND e.customer_id = p.customer_id
           AND e.occurred_at >= coalesce($3::timestamptz, '-infinity') AND e.occurred_at < coalesce($4::timestamptz, 'infinity')
           AND e.name = $2
         OFFSET 0
     ) e";

const COUNT_NAMED_EVENTS: &str = "SELECT e.customer_id, count(*) AS n FROM events e
     WHERE e.workspace_id = $1 AND e.name = $2
       AND e.occurred_at >= coalesce($3::timestamptz, '-infinity') AND e.occurred_at < coalesce($4::timestamptz, 'infinity')
     GROUP BY e.customer_id ORDER BY e.customer_id";

const COUNT_NAMED_EVENTS_OF: &str = "SELECT p.customer_id, e.n
     FROM unnest($5::text[]) AS p(customer_id)
     CROSS JOIN LATERAL (
         SELECT count(*) AS n FROM events e
         WHERE e.workspace_id = $1 AND e.customer_id = p.customer_id
           AND e.occurred_at >= coalesce($3::timestamptz, '-infinity') AND e.occurred_at < coalesce($4::timestamptz, 'infinity')
           AND e.name = $2
     ) e
     WHERE e.n > 0
     ORDER BY p.customer_id";

/// Runs the statement for the whole workspace or the one for some profiles (none when the
/// query names an empty list of profiles).
fn named_events_rows(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    q: &NamedEventQuery,
    all: &'static str,
    some: &'static str,
) -> StoreResult<Vec<Row>> {
    match &q.customers {
        None => tx.query(all, &[&workspace.as_str(), &q.name, &q.since, &q.until]),
        Some(customers) if customers.is_empty() => Ok(Vec::new()),
        Some(customers) => {
            let mut ids = distinct_ids(customers);
            ids.sort_unstable();
            tx.query(
                some,
                &[&workspace.as_str(), &q.name, &q.since, &q.until, &ids],
            )
        }
    }
}

/// Events named `q.name` (a track event's name, or a page's or screen's: whatever the type) in
/// the window.
pub(crate) fn named_events(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    q: &NamedEventQuery,
) -> StoreResult<Vec<NamedEvent>> {
    named_events_rows(tx, workspace, q, NAMED_EVENTS, NAMED_EVENTS_OF)?
        .iter()
        .map(|row| {
            Ok(NamedEvent {
                customer_id: rows::id(row, "customer_id", CustomerId::from_trusted)?,
                timestamp: get(row, "occurred_at")?,
                properties: rows::object(row, "properties")?,
            })
        })
        .collect()
}

/// [`NAMED_EVENTS`] without the properties, for scans that do not need them: jsonb is the
/// bulk of an event row, and it is neither sent nor decoded.
const NAMED_EVENT_TIMES: &str = "SELECT e.customer_id, e.occurred_at FROM events e
     WHERE e.workspace_id = $1 AND e.name = $2
       AND e.occurred_at >= coalesce($3::timestamptz, '-infinity') AND e.occurred_at < coalesce($4::timestamptz, 'infinity')";

/// [`NAMED_EVENTS_OF`] without the properties.
const NAMED_EVENT_TIMES_OF: &str = "SELECT e.customer_id, e.occurred_at
     FROM unnest($5::text[]) AS p(customer_id)
     CROSS JOIN LATERAL (
         SELECT e.customer_id, e.occurred_at FROM events e
         WHERE e.workspace_id = $1 AND e.customer_id = p.customer_id
           AND e.occurred_at >= coalesce($3::timestamptz, '-infinity') AND e.occurred_at < coalesce($4::timestamptz, 'infinity')
           AND e.name = $2
         OFFSET 0
     ) e";

/// Rows fetched per round trip by [`scan_named_events`]: few enough that a batch with its
/// properties is a few megabytes, many enough that the round trips cost nothing next to the rows.
const SCAN_BATCH: i32 = 10_000;

/// Events named `q.name` in the window, like [`named_events`], handed to `visit` one at a time
/// from a portal read [`SCAN_BATCH`] rows at a time, so that memory stays flat whatever the
/// number of events. The properties are selected only `with_properties`.
///
/// The store runs a transaction again from the start when it fails with `Retry`
/// (`PostgresStore::run`); by then `visit` may have seen some rows, and would see them again. So
/// once a row was handed out, a `Retry` failure of the scan (a serialization failure, a
/// deadlock) is reported as a plain backend failure, and the transaction is not run again.
pub(crate) fn scan_named_events(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    q: &NamedEventQuery,
    with_properties: bool,
    visit: &mut dyn FnMut(NamedEvent),
) -> StoreResult<()> {
    let (all, some) = if with_properties {
        (NAMED_EVENTS, NAMED_EVENTS_OF)
    } else {
        (NAMED_EVENT_TIMES, NAMED_EVENT_TIMES_OF)
    };
    let mut visited = false;
    let mut each = |row: Row| -> StoreResult<()> {
        visit(NamedEvent {
            customer_id: rows::id(&row, "customer_id", CustomerId::from_trusted)?,
            timestamp: get(&row, "occurred_at")?,
            properties: if with_properties {
                rows::object(&row, "properties")?
            } else {
                serde_json::Map::new()
            },
        });
        visited = true;
        Ok(())
    };
    let outcome = match &q.customers {
        None => tx.for_each_row(
            all,
            &[&workspace.as_str(), &q.name, &q.since, &q.until],
            SCAN_BATCH,
            &mut each,
        ),
        Some(customers) if customers.is_empty() => Ok(()),
        Some(customers) => {
            let mut ids = distinct_ids(customers);
            ids.sort_unstable();
            tx.for_each_row(
                some,
                &[&workspace.as_str(), &q.name, &q.since, &q.until, &ids],
                SCAN_BATCH,
                &mut each,
            )
        }
    };
    match outcome {
        Err(StoreError::Retry(reason)) if visited => Err(StoreError::Backend(format!(
            "event scan interrupted: {reason}"
        ))),
        other => other,
    }
}

/// Ordered by customer id.
pub(crate) fn count_named_events(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    q: &NamedEventQuery,
) -> StoreResult<Vec<(CustomerId, i64)>> {
    named_events_rows(tx, workspace, q, COUNT_NAMED_EVENTS, COUNT_NAMED_EVENTS_OF)?
        .iter()
        .map(|row| {
            Ok((
                rows::id(row, "customer_id", CustomerId::from_trusted)?,
                get(row, "n")?,
            ))
        })
        .collect()
}
