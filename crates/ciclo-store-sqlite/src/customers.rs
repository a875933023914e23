//! Customer profiles: rows, derived search and tag rows, and the list query.
//!
//! Listing has to stay fast at a million profiles, for every sort, with any filter. Two plans:
//!
//! * **walk the sort index**: each sort has an index over surviving profiles
//!   (`customers_by_last_seen`, …); the query walks it from the cursor and checks the filters on
//!   each row until the page is full. Fast when many rows match, since a page fills quickly.
//! * **start from the matches**: a selective filter (search, tag, city, seen after) names its
//!   profiles through an index (`customer_search_terms`, `customer_tags`, `customers_by_city`,
//!   `customers_by_last_seen`); those rows are fetched, checked and sorted. Fast when few match.
//!
//! * **walk a filter's index in id order**: the lifecycle stage and segment filters live in
//!   tables keyed by the profile's id (`customer_computed_by_stage`, `segment_members`), whose
//!   index lists a stage's or segment's profiles in id order: the Newest sort walks it backwards
//!   and stops when the page is full, however many match and wherever they are.
//!
//! Which one to use depends on how many rows the selective filters match, which the planner
//! cannot know without statistics, so the adapter counts it (up to [`FEW_MATCHES`]) and picks.
//! Every plan checks every filter on the row, so they return the same rows.
//!
//! What stays slow: a walk of a sort index passes the profiles that do not match before the
//! ones that do, so a filter matching many profiles that all sort late costs a walk past the
//! others (at a million profiles, about 0.5 s for the first page of `stage = lapsed` by last
//! seen, lapsed profiles being the least recently seen; the pages after it are fast), and two
//! filters that each match many but together few cost a walk of the whole sort index.

use crate::codec::{
    get_json, get_opt_date, get_opt_trusted, get_opt_ts, get_ts, json_strings, micros, opt_micros,
    to_json,
};
use crate::error::{expect_one, Db};
use crate::known::{as_stored_time, Known, KnownCustomer};
use crate::search::{self, Derived, SEPARATOR};
use ciclo_domain::customer::{Customer, OrderStats};
use ciclo_domain::ids::{CustomerId, WorkspaceId};
use ciclo_domain::{DateTime, Timestamp};
use ciclo_store::{
    CustomerCursor, CustomerQuery, CustomerSort, CustomerSummary, StoreError, StoreResult,
};
use rusqlite::types::{ToSql, ToSqlOutput, Value, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

/// Below this many matches of a selective filter, start from the matches; from this many on,
/// walk the sort index. Measured at a million profiles: starting from the matches costs about
/// 2.5 µs per match (so at most ~25 ms here), while a walk costs about 1 µs per row it passes, and
/// finds a page of 50 within ~5,000 rows when one row in a hundred matches, unless the matches
/// cluster away from where the walk starts (a filter that correlates with the sort).
pub(crate) const FEW_MATCHES: i64 = 10_000;

pub(crate) const CUSTOMER_COLUMNS: &str = "c.workspace_id, c.id, c.name, c.email, c.phone, c.whatsapp, c.birthday, \
     c.locale, c.time_zone, c.city, c.state, c.country, c.tags, c.traits, c.first_seen_at, c.last_seen_at, \
     c.orders_count, c.total_spent_minor, c.first_order_at, c.last_order_at, c.created_at, c.updated_at, c.merged_into";

pub(crate) fn customer_from_row(row: &Row<'_>) -> rusqlite::Result<Customer> {
    Ok(Customer {
        workspace_id: WorkspaceId::from_trusted(row.get(0)?),
        id: CustomerId::from_trusted(row.get(1)?),
        name: row.get(2)?,
        email: get_opt_trusted(row, 3)?,
        phone: get_opt_trusted(row, 4)?,
        whatsapp: get_opt_trusted(row, 5)?,
        birthday: get_opt_date(row, 6)?,
        locale: row.get(7)?,
        time_zone: row.get(8)?,
        city: row.get(9)?,
        state: row.get(10)?,
        country: row.get(11)?,
        tags: get_json(row, 12)?,
        traits: get_json(row, 13)?,
        first_seen_at: get_ts(row, 14)?,
        last_seen_at: get_ts(row, 15)?,
        stats: OrderStats {
            orders_count: row.get(16)?,
            total_spent_minor: row.get(17)?,
            first_order_at: get_opt_ts(row, 18)?,
            last_order_at: get_opt_ts(row, 19)?,
        },
        created_at: get_ts(row, 20)?,
        updated_at: get_ts(row, 21)?,
        merged_into: row
            .get::<_, Option<String>>(22)?
            .map(CustomerId::from_trusted),
    })
}

/// The customer columns an INSERT writes, in parameter order (?1 … ?26).
const WRITTEN_COLUMNS: [&str; 26] = [
    "workspace_id",
    "id",
    "name",
    "email",
    "phone",
    "whatsapp",
    "birthday",
    "locale",
    "time_zone",
    "city",
    "state",
    "country",
    "tags",
    "traits",
    "first_seen_at",
    "last_seen_at",
    "orders_count",
    "total_spent_minor",
    "first_order_at",
    "last_order_at",
    "created_at",
    "updated_at",
    "merged_into",
    "sort_name",
    "city_key",
    "search_text",
];

/// Columns that some index holds: an UPDATE sets them only when they change, since SQLite
/// rewrites the entries of every index on a column that is SET, changed or not (and ingestion
/// updates a profile for every event, usually only its last-seen time).
const INDEXED_COLUMNS: [&str; 6] = [
    "last_seen_at",
    "total_spent_minor",
    "merged_into",
    "sort_name",
    "city_key",
    "search_text",
];

/// The parameters of INSERT and UPDATE, in [`WRITTEN_COLUMNS`] order.
fn row_values(c: &Customer, d: &Derived) -> StoreResult<Vec<Box<dyn ToSql>>> {
    Ok(vec![
        Box::new(c.workspace_id.as_str().to_string()),
        Box::new(c.id.as_str().to_string()),
        Box::new(c.name.clone()),
        Box::new(c.email.as_ref().map(|e| e.as_str().to_string())),
        Box::new(c.phone.as_ref().map(|p| p.as_str().to_string())),
        Box::new(c.whatsapp.as_ref().map(|p| p.as_str().to_string())),
        Box::new(c.birthday.map(|b| b.format("%Y-%m-%d").to_string())),
        Box::new(c.locale.clone()),
        Box::new(c.time_zone.clone()),
        Box::new(c.city.clone()),
        Box::new(c.state.clone()),
        Box::new(c.country.clone()),
        Box::new(to_json(&c.tags)?),
        Box::new(to_json(&c.traits)?),
        Box::new(micros(&c.first_seen_at)),
        Box::new(micros(&c.last_seen_at)),
        Box::new(c.stats.orders_count),
        Box::new(c.stats.total_spent_minor),
        Box::new(opt_micros(&c.stats.first_order_at)),
        Box::new(opt_micros(&c.stats.last_order_at)),
        Box::new(micros(&c.created_at)),
        Box::new(micros(&c.updated_at)),
        Box::new(c.merged_into.as_ref().map(|m| m.as_str().to_string())),
        Box::new(d.sort_name.clone()),
        Box::new(d.city_key.clone()),
        Box::new(d.search_text.clone()),
    ])
}

/// The integer key of a workspace, for the derived search tables and the events.
pub(crate) fn workspace_seq(conn: &Connection, ws: &WorkspaceId) -> StoreResult<Option<i64>> {
    conn.prepare_cached("SELECT seq FROM workspaces WHERE id = ?1")
        .db()?
        .query_row([ws.as_str()], |row| row.get(0))
        .optional()
        .db()
}

/// [`workspace_seq`], remembered for the rest of the transaction.
pub(crate) fn known_workspace_seq(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
) -> StoreResult<Option<i64>> {
    if let Some(seq) = known.workspace_seq(ws) {
        return Ok(Some(seq));
    }
    let seq = workspace_seq(conn, ws)?;
    if let Some(seq) = seq {
        known.set_workspace_seq(ws, seq);
    }
    Ok(seq)
}

/// The seq of each profile among `ids` that exists in the workspace (from what the transaction
/// knows, else one statement for the rest).
pub(crate) fn customer_seqs(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    ids: &[&CustomerId],
) -> StoreResult<HashMap<CustomerId, i64>> {
    let mut seqs = HashMap::with_capacity(ids.len());
    let mut missing: Vec<&str> = Vec::new();
    for id in ids {
        match known.customer(ws, id) {
            Some(k) => {
                seqs.insert((*id).clone(), k.seq);
            }
            None => missing.push(id.as_str()),
        }
    }
    if missing.is_empty() {
        return Ok(seqs);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT c.id, c.seq FROM customers c
             WHERE c.workspace_id = ?1 AND c.id IN (SELECT value FROM json_each(?2))",
        )
        .db()?;
    let rows = stmt
        .query_map(params![ws.as_str(), json_strings(&missing)], |row| {
            Ok((CustomerId::from_trusted(row.get(0)?), row.get::<_, i64>(1)?))
        })
        .db()?;
    for row in rows {
        let (id, seq) = row.db()?;
        known.set_seq(ws, &id, seq);
        seqs.insert(id, seq);
    }
    Ok(seqs)
}

/// The INSERT of a profile, with every [`WRITTEN_COLUMNS`] column, assembled once.
static INSERT_CUSTOMER: LazyLock<String> = LazyLock::new(|| {
    let placeholders: Vec<String> = (1..=WRITTEN_COLUMNS.len())
        .map(|i| format!("?{i}"))
        .collect();
    format!(
        "INSERT INTO customers ({}) VALUES ({})",
        WRITTEN_COLUMNS.join(", "),
        placeholders.join(", ")
    )
});

pub(crate) fn insert_customer(
    conn: &Connection,
    known: &mut Known<'_>,
    c: &Customer,
) -> StoreResult<()> {
    // The derived rows need the workspace's seq, so a profile cannot be written before its
    // workspace (unlike the rows checked by deferred foreign keys).
    let ws_seq = known_workspace_seq(conn, known, &c.workspace_id)?.ok_or_else(|| {
        StoreError::Backend(format!(
            "cannot insert customer {}: no workspace {}",
            c.id, c.workspace_id
        ))
    })?;
    let derived = search::derive(c);
    let values = row_values(c, &derived)?;
    conn.prepare_cached(&INSERT_CUSTOMER)
        .db()?
        .execute(rusqlite::params_from_iter(values.iter()))
        .db()?;
    let seq = conn.last_insert_rowid();
    sync_derived_rows(conn, ws_seq, seq, &[], &[], &derived.terms, &derived.tags)?;
    known.set_row(seq, c);
    Ok(())
}

/// What a stored profile's row holds that an update compares against.
struct Stored {
    workspace_seq: i64,
    seq: i64,
    /// The current rows of `customer_search_terms` and `customer_tags`.
    terms: Vec<String>,
    tags: Vec<String>,
    /// The indexed columns, in [`INDEXED_COLUMNS`] order, as SQLite values.
    indexed: Vec<Value>,
}

fn stored(conn: &Connection, ws: &WorkspaceId, id: &CustomerId) -> StoreResult<Option<Stored>> {
    conn.prepare_cached(&format!(
        "SELECT w.seq, c.seq, c.tags, c.{} FROM customers c JOIN workspaces w ON w.id = c.workspace_id
         WHERE c.workspace_id = ?1 AND c.id = ?2",
        INDEXED_COLUMNS.join(", c.")
    ))
    .db()?
    .query_row([ws.as_str(), id.as_str()], |row| {
        let tags: Vec<String> = get_json(row, 2)?;
        let indexed = (0..INDEXED_COLUMNS.len())
            .map(|i| row.get::<_, Value>(3 + i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let column = |name: &str| INDEXED_COLUMNS.iter().position(|c| *c == name).and_then(|i| indexed.get(i));
        let surviving = column("merged_into") == Some(&Value::Null);
        let search_text = match column("search_text") {
            Some(Value::Text(t)) => t.clone(),
            _ => String::new(),
        };
        let (terms, tags) = if surviving {
            let mut tags: Vec<String> = tags.iter().map(|t| search::normalise_tag(t)).filter(|t| !t.is_empty()).collect();
            tags.sort();
            tags.dedup();
            (search::terms_of(&search_text), tags)
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Stored { workspace_seq: row.get(0)?, seq: row.get(1)?, terms, tags, indexed })
    })
    .optional()
    .db()
}

/// Brings `customer_search_terms` and `customer_tags` from the old rows to the new ones, touching
/// only what changed: most updates (a new last-seen time) change neither.
fn sync_derived_rows(
    conn: &Connection,
    workspace_seq: i64,
    customer_seq: i64,
    old_terms: &[String],
    old_tags: &[String],
    new_terms: &[String],
    new_tags: &[String],
) -> StoreResult<()> {
    for (table, column, old, new) in [
        ("customer_search_terms", "term", old_terms, new_terms),
        ("customer_tags", "tag", old_tags, new_tags),
    ] {
        let old: BTreeSet<&String> = old.iter().collect();
        let new: BTreeSet<&String> = new.iter().collect();
        if old == new {
            continue;
        }
        let mut delete = conn
            .prepare_cached(&format!(
                "DELETE FROM {table} WHERE workspace_seq = ?1 AND {column} = ?2 AND customer_seq = ?3"
            ))
            .db()?;
        for value in old.difference(&new) {
            delete
                .execute(params![workspace_seq, value, customer_seq])
                .db()?;
        }
        let mut insert = conn
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO {table} (workspace_seq, {column}, customer_seq) VALUES (?1, ?2, ?3)"
            ))
            .db()?;
        for value in new.difference(&old) {
            insert
                .execute(params![workspace_seq, value, customer_seq])
                .db()?;
        }
    }
    Ok(())
}

/// Writes the profile back. When the writer knows the row as stored (read or written in this
/// transaction or an earlier one, see `known.rs`), only the columns that differ from it are
/// written, and nothing when none does; otherwise the row is read first (and indexed columns that
/// keep their value are still left alone, since SQLite rewrites the entries of every index on a
/// column that is SET, changed or not).
pub(crate) fn update_customer(
    conn: &Connection,
    known: &mut Known<'_>,
    c: &Customer,
) -> StoreResult<()> {
    let (ws, id) = (&c.workspace_id, &c.id);
    let ws_seq = known_workspace_seq(conn, known, ws)?;
    let outcome = match (ws_seq, known.row_mut(ws, id)) {
        // The known row is brought up to date in place.
        (Some(ws_seq), Some((seq, stored))) => update_changed(conn, ws_seq, seq, stored, c),
        _ => update_stored(conn, c).map(|seq| known.set_row(seq, c)),
    };
    if outcome.is_err() {
        // What the row holds now is unknown: read it again next time.
        known.forget(ws, id);
    }
    outcome
}

/// The `?n` placeholders of an UPDATE of some customer columns, by the columns' positions in
/// [`WRITTEN_COLUMNS`]: a few distinct statements in practice (ingestion mostly moves the
/// last-seen time), each prepared once.
fn update_sql(columns: &[usize]) -> String {
    let mut sql = String::from("UPDATE customers SET ");
    for (n, column) in columns.iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        sql.push_str(WRITTEN_COLUMNS[*column]);
        sql.push_str(" = ?");
        sql.push_str(&(n + 1).to_string());
    }
    sql.push_str(" WHERE seq = ?");
    sql.push_str(&(columns.len() + 1).to_string());
    sql
}

fn text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |v| Value::Text(v.to_string()))
}

fn integer(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::Integer)
}

/// The columns of an UPDATE under construction, with their values.
#[derive(Default)]
struct Changes {
    columns: Vec<usize>,
    values: Vec<Value>,
}

impl Changes {
    fn set(&mut self, name: &str, value: Value) {
        let column = WRITTEN_COLUMNS
            .iter()
            .position(|c| *c == name)
            .unwrap_or_default();
        self.columns.push(column);
        self.values.push(value);
    }

    /// Sets `field` of the stored row to `new`, and its column too when it differs.
    fn field<T: PartialEq + Clone>(
        &mut self,
        name: &str,
        stored: &mut T,
        new: &T,
        value: impl FnOnce(&T) -> StoreResult<Value>,
    ) -> StoreResult<()> {
        if stored != new {
            self.set(name, value(new)?);
            stored.clone_from(new);
        }
        Ok(())
    }

    /// The same for a time, compared as stored (microseconds).
    fn time(&mut self, name: &str, stored: &mut Timestamp, new: &Timestamp) {
        if micros(stored) != micros(new) {
            self.set(name, Value::Integer(micros(new)));
        }
        *stored = as_stored_time(*new);
    }

    fn opt_time(&mut self, name: &str, stored: &mut Option<Timestamp>, new: &Option<Timestamp>) {
        if opt_micros(stored) != opt_micros(new) {
            self.set(name, integer(opt_micros(new)));
        }
        *stored = new.map(as_stored_time);
    }
}

/// Updates the columns of row `seq` that differ between `stored` (the row as stored) and `c`, and
/// brings `stored` up to date with it.
fn update_changed(
    conn: &Connection,
    ws_seq: i64,
    seq: i64,
    stored: &mut Customer,
    c: &Customer,
) -> StoreResult<()> {
    // The derived columns and rows follow from these fields only.
    let derived_before = (stored.name != c.name
        || stored.email != c.email
        || stored.phone != c.phone
        || stored.whatsapp != c.whatsapp
        || stored.tags != c.tags
        || stored.city != c.city
        || stored.merged_into != c.merged_into)
        .then(|| search::derive(stored));
    let mut changes = Changes::default();
    let opt_text = |v: &Option<String>| Ok(text(v.as_deref()));
    changes.field("name", &mut stored.name, &c.name, opt_text)?;
    changes.field("email", &mut stored.email, &c.email, |v| {
        Ok(text(v.as_ref().map(|e| e.as_str())))
    })?;
    changes.field("phone", &mut stored.phone, &c.phone, |v| {
        Ok(text(v.as_ref().map(|p| p.as_str())))
    })?;
    changes.field("whatsapp", &mut stored.whatsapp, &c.whatsapp, |v| {
        Ok(text(v.as_ref().map(|p| p.as_str())))
    })?;
    changes.field("birthday", &mut stored.birthday, &c.birthday, |v| {
        Ok(text(v.map(|b| b.format("%Y-%m-%d").to_string()).as_deref()))
    })?;
    changes.field("locale", &mut stored.locale, &c.locale, opt_text)?;
    changes.field("time_zone", &mut stored.time_zone, &c.time_zone, opt_text)?;
    changes.field("city", &mut stored.city, &c.city, opt_text)?;
    changes.field("state", &mut stored.state, &c.state, opt_text)?;
    changes.field("country", &mut stored.country, &c.country, opt_text)?;
    changes.field("tags", &mut stored.tags, &c.tags, |v| {
        Ok(Value::Text(to_json(v)?))
    })?;
    changes.field("traits", &mut stored.traits, &c.traits, |v| {
        Ok(Value::Text(to_json(v)?))
    })?;
    changes.time("first_seen_at", &mut stored.first_seen_at, &c.first_seen_at);
    changes.time("last_seen_at", &mut stored.last_seen_at, &c.last_seen_at);
    let integer_value = |v: &i64| Ok(Value::Integer(*v));
    changes.field(
        "orders_count",
        &mut stored.stats.orders_count,
        &c.stats.orders_count,
        integer_value,
    )?;
    changes.field(
        "total_spent_minor",
        &mut stored.stats.total_spent_minor,
        &c.stats.total_spent_minor,
        integer_value,
    )?;
    changes.opt_time(
        "first_order_at",
        &mut stored.stats.first_order_at,
        &c.stats.first_order_at,
    );
    changes.opt_time(
        "last_order_at",
        &mut stored.stats.last_order_at,
        &c.stats.last_order_at,
    );
    changes.time("created_at", &mut stored.created_at, &c.created_at);
    changes.time("updated_at", &mut stored.updated_at, &c.updated_at);
    changes.field(
        "merged_into",
        &mut stored.merged_into,
        &c.merged_into,
        |v| Ok(text(v.as_ref().map(|m| m.as_str()))),
    )?;
    debug_assert!(
        stored.workspace_id == c.workspace_id && stored.id == c.id,
        "an update compares a row with itself"
    );
    let derived = match derived_before {
        Some(before) => {
            let after = search::derive(c);
            if before.sort_name != after.sort_name {
                changes.set("sort_name", Value::Text(after.sort_name.clone()));
            }
            if before.city_key != after.city_key {
                changes.set("city_key", text(after.city_key.as_deref()));
            }
            if before.search_text != after.search_text {
                changes.set("search_text", Value::Text(after.search_text.clone()));
            }
            Some((before, after))
        }
        None => None,
    };
    if changes.columns.is_empty() {
        return Ok(());
    }
    changes.values.push(Value::Integer(seq));
    let changed = conn
        .prepare_cached(&update_sql(&changes.columns))
        .db()?
        .execute(rusqlite::params_from_iter(changes.values.iter()))
        .db()?;
    expect_one(changed)?;
    if let Some((before, after)) = derived {
        sync_derived_rows(
            conn,
            ws_seq,
            seq,
            &before.terms,
            &before.tags,
            &after.terms,
            &after.tags,
        )?;
    }
    Ok(())
}

/// Writes the profile back after reading what it replaces; returns its seq.
fn update_stored(conn: &Connection, c: &Customer) -> StoreResult<i64> {
    let Some(old) = stored(conn, &c.workspace_id, &c.id)? else {
        return Err(StoreError::NotFound);
    };
    let derived = search::derive(c);
    let values = row_values(c, &derived)?;
    // Every column but the key, except indexed ones that keep their value.
    let mut sets = Vec::new();
    let mut params: Vec<&dyn ToSql> = Vec::new();
    for (column, value) in WRITTEN_COLUMNS.iter().zip(&values).skip(2) {
        if let Some(i) = INDEXED_COLUMNS.iter().position(|c| c == column) {
            if same_value(&value.to_sql().db()?, &old.indexed[i]) {
                continue;
            }
        }
        params.push(value.as_ref());
        sets.push(format!("{column} = ?{}", params.len()));
    }
    params.push(&old.seq);
    let changed = conn
        .prepare_cached(&format!(
            "UPDATE customers SET {} WHERE seq = ?{}",
            sets.join(", "),
            params.len()
        ))
        .db()?
        .execute(params.as_slice())
        .db()?;
    expect_one(changed)?;
    sync_derived_rows(
        conn,
        old.workspace_seq,
        old.seq,
        &old.terms,
        &old.tags,
        &derived.terms,
        &derived.tags,
    )?;
    Ok(old.seq)
}

/// Whether a parameter equals a stored value (`ToSqlOutput` itself tells borrowed from owned).
fn same_value(new: &ToSqlOutput<'_>, old: &Value) -> bool {
    let new = match new {
        ToSqlOutput::Borrowed(v) => *v,
        ToSqlOutput::Owned(v) => ValueRef::from(v),
        _ => return false,
    };
    new == ValueRef::from(old)
}

/// Reads a row selected as [`CUSTOMER_COLUMNS`] then `c.seq`, and records it in `known`.
fn known_customer_from_row(known: &mut Known<'_>, row: &Row<'_>) -> rusqlite::Result<Customer> {
    let customer = customer_from_row(row)?;
    Ok(known.read_row(row.get(23)?, customer))
}

pub(crate) fn get_customer(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    id: &CustomerId,
) -> StoreResult<Option<Customer>> {
    if let Some(KnownCustomer { row: Some(row), .. }) = known.customer(ws, id) {
        return Ok(Some(Customer::clone(row)));
    }
    conn.prepare_cached(&format!(
        "SELECT {CUSTOMER_COLUMNS}, c.seq FROM customers c WHERE c.workspace_id = ?1 AND c.id = ?2"
    ))
    .db()?
    .query_row([ws.as_str(), id.as_str()], |row| {
        known_customer_from_row(known, row)
    })
    .optional()
    .db()
}

/// The profiles among `ids` that exist, in the order of `ids` (duplicates once). Each id is one
/// execution of the cached statement of `get_customer` (cheaper, in process, than unpacking a
/// JSON list in SQL and sorting by position).
pub(crate) fn get_customers(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    ids: &[CustomerId],
) -> StoreResult<Vec<Customer>> {
    let mut seen: HashSet<&CustomerId> = HashSet::with_capacity(ids.len());
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if seen.insert(id) {
            found.extend(get_customer(conn, known, ws, id)?);
        }
    }
    Ok(found)
}

/// Deletes the profile's row and everything that names it. Idempotent.
pub(crate) fn delete_customer(
    conn: &Connection,
    known: &mut Known<'_>,
    ws: &WorkspaceId,
    id: &CustomerId,
) -> StoreResult<()> {
    // Whatever happens below, the row and its identities are not known any more.
    known.forget(ws, id);
    known.forget_identities(ws);
    // Memberships, computed values, stage history and the evaluation mark name the profile by
    // id alone; cleared even when the row is gone already.
    crate::segments::delete_customer_rows(conn, ws, id)?;
    let Some(old) = stored(conn, ws, id)? else {
        return Ok(());
    };
    sync_derived_rows(
        conn,
        old.workspace_seq,
        old.seq,
        &old.terms,
        &old.tags,
        &[],
        &[],
    )?;
    conn.prepare_cached("DELETE FROM events WHERE workspace_seq = ?1 AND customer_seq = ?2")
        .db()?
        .execute([old.workspace_seq, old.seq])
        .db()?;
    for sql in [
        "DELETE FROM order_items WHERE workspace_id = ?1
             AND order_id IN (SELECT id FROM orders WHERE workspace_id = ?1 AND customer_id = ?2)",
        "DELETE FROM orders WHERE workspace_id = ?1 AND customer_id = ?2",
        "DELETE FROM identities WHERE workspace_id = ?1 AND customer_id = ?2",
        "DELETE FROM merges WHERE workspace_id = ?1 AND (winner_id = ?2 OR loser_id = ?2)",
        "DELETE FROM identity_conflicts WHERE workspace_id = ?1 AND (customer_a = ?2 OR customer_b = ?2)",
        "DELETE FROM customers WHERE workspace_id = ?1 AND id = ?2",
    ] {
        conn.prepare_cached(sql).db()?.execute([ws.as_str(), id.as_str()]).db()?;
    }
    Ok(())
}

/// Surviving profiles (merged ones are part of the profile they were merged into).
pub(crate) fn count_customers(conn: &Connection, ws: &WorkspaceId) -> StoreResult<i64> {
    conn.prepare_cached(
        "SELECT count(*) FROM customers WHERE workspace_id = ?1 AND merged_into IS NULL",
    )
    .db()?
    .query_row([ws.as_str()], |row| row.get(0))
    .db()
}

pub(crate) fn merged_children(
    conn: &Connection,
    ws: &WorkspaceId,
    root: &CustomerId,
) -> StoreResult<Vec<CustomerId>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id FROM customers WHERE workspace_id = ?1 AND merged_into = ?2 ORDER BY id",
        )
        .db()?;
    let rows = stmt
        .query_map([ws.as_str(), root.as_str()], |row| {
            Ok(CustomerId::from_trusted(row.get(0)?))
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

/// Every merged-away profile with the profile it was merged into, by id (through the partial
/// index of merged profiles, which are few).
pub(crate) fn merged_profiles(
    conn: &Connection,
    ws: &WorkspaceId,
) -> StoreResult<Vec<(CustomerId, CustomerId)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, merged_into FROM customers INDEXED BY customers_merged_into
             WHERE workspace_id = ?1 AND merged_into IS NOT NULL ORDER BY id",
        )
        .db()?;
    let rows = stmt
        .query_map([ws.as_str()], |row| {
            Ok((
                CustomerId::from_trusted(row.get(0)?),
                CustomerId::from_trusted(row.get(1)?),
            ))
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

/// Runs `sql` and hands each row to `each` as SQLite steps through them (nothing collected).
/// A failure once a row was handed out is never [`StoreError::Retry`]: the store would run the
/// transaction again and the caller would see those rows twice, so a busy or locked database
/// is then a plain failure (`what` names the scan in its message).
pub(crate) fn stream_rows(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &str,
    each: &mut dyn FnMut(&Row<'_>) -> rusqlite::Result<()>,
) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(sql).db()?;
    let mut rows = stmt.query(params).db()?;
    let mut visited = false;
    let failed = |e: StoreError, visited: bool| match e {
        StoreError::Retry(reason) if visited => {
            StoreError::Backend(format!("{what} interrupted: {reason}"))
        }
        other => other,
    };
    while let Some(row) = rows.next().db().map_err(|e| failed(e, visited))? {
        each(row).db().map_err(|e| failed(e, visited))?;
        visited = true;
    }
    Ok(())
}

/// Every surviving profile of the workspace, reduced to what the whole-workspace reports read
/// (no traits, tags or phones decoded). Ordered by id so that SQLite walks the `(workspace_id,
/// id)` index, whose order follows the table's (ids grow with time, like the rowid): 1.0 s
/// against 1.9 s at a million profiles (sqlite3 shell) for the walk of a partial index of
/// surviving profiles that the planner picks otherwise, which jumps around the table; and
/// without reading other workspaces' rows, as a table scan would.
pub(crate) fn scan_customer_summaries(
    conn: &Connection,
    ws: &WorkspaceId,
    visit: &mut dyn FnMut(CustomerSummary),
) -> StoreResult<()> {
    stream_rows(
        conn,
        "SELECT id, name, email, created_at, first_seen_at, last_seen_at, orders_count,
                total_spent_minor, first_order_at, last_order_at
         FROM customers WHERE workspace_id = ?1 AND merged_into IS NULL ORDER BY id",
        [ws.as_str()],
        "profile scan",
        &mut |row| {
            visit(CustomerSummary {
                id: CustomerId::from_trusted(row.get(0)?),
                name: row.get(1)?,
                email: row.get(2)?,
                created_at: get_ts(row, 3)?,
                first_seen_at: get_ts(row, 4)?,
                last_seen_at: get_ts(row, 5)?,
                stats: OrderStats {
                    orders_count: row.get(6)?,
                    total_spent_minor: row.get(7)?,
                    first_order_at: get_opt_ts(row, 8)?,
                    last_order_at: get_opt_ts(row, 9)?,
                },
            });
            Ok(())
        },
    )
}

/// A statement under construction: SQL text plus its positional parameters (`?1`, `?2`…).
#[derive(Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) params: Vec<Box<dyn ToSql>>,
}

impl Sql {
    /// Adds a parameter and returns its placeholder.
    fn bind(&mut self, value: impl ToSql + 'static) -> String {
        self.params.push(Box::new(value));
        format!("?{}", self.params.len())
    }
}

/// A filter that can name its matching profiles through an index (the "start from the matches"
/// plan): the SQL of a query returning their seqs.
struct Driver {
    sql: String,
    /// What counting the matches reads, when cheaper than `sql` (no join to the profiles).
    count: Option<String>,
    /// For filters kept in a table keyed by the profile's id (stage, segment), that table and
    /// the filter on it, aliased `f`: its index lists the matches in id order, so the Newest
    /// sort can walk it instead of the profiles (see [`list_customers_sql`]).
    by_id: Option<(String, String)>,
}

impl Driver {
    fn rows(sql: String) -> Driver {
        Driver {
            sql,
            count: None,
            by_id: None,
        }
    }

    /// A filter on a table with a `customer_id` column, aliased `f` in `table`.
    fn by_id(table: &str, filter: String) -> Driver {
        Driver {
            sql: format!(
                "SELECT p.seq AS customer_seq FROM {table}
                 CROSS JOIN customers p ON p.workspace_id = f.workspace_id AND p.id = f.customer_id
                 WHERE {filter}"
            ),
            count: Some(format!("SELECT 1 FROM {table} WHERE {filter}")),
            by_id: Some((table.to_string(), filter)),
        }
    }
}

pub(crate) fn list_customers(
    conn: &Connection,
    ws: &WorkspaceId,
    q: &CustomerQuery,
) -> StoreResult<Vec<Customer>> {
    let Some(sql) = list_customers_sql(conn, ws, q)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(&sql.text).db()?;
    let rows = stmt
        .query_map(
            rusqlite::params_from_iter(sql.params.iter()),
            customer_from_row,
        )
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

/// The statement `list_customers` runs for this query (after counting matches to choose the
/// plan), or none when the answer is empty without asking.
pub(crate) fn list_customers_sql(
    conn: &Connection,
    ws: &WorkspaceId,
    q: &CustomerQuery,
) -> StoreResult<Option<Sql>> {
    let limit = q.limit.max(0);
    if limit == 0 {
        return Ok(None);
    }
    let Some(ws_seq) = workspace_seq(conn, ws)? else {
        return Ok(None);
    };
    let mut sql = Sql::default();
    let ws_param = sql.bind(ws.as_str().to_string());
    let ws_seq = sql.bind(ws_seq);
    let needles = q.search.as_deref().map(search::needles).unwrap_or_default();
    let tag = q
        .tag
        .as_deref()
        .map(search::normalise_tag)
        .filter(|t| !t.is_empty());
    let city = q
        .city
        .as_deref()
        .map(search::fold)
        .filter(|c| !c.is_empty());

    // Row checks, shared by both plans. Unary `+` keeps the planner from serving a check with an
    // index other than the one the plan chose.
    let mut conditions = vec![
        format!("c.workspace_id = {ws_param}"),
        "c.merged_into IS NULL".to_string(),
    ];
    let mut drivers: Vec<Driver> = Vec::new();
    if !needles.is_empty() {
        let mut row_checks = Vec::new();
        // One range scan of the terms index per needle. (An OR of ranges in one WHERE makes
        // SQLite scan the workspace's whole term list instead.)
        let mut ranges = Vec::new();
        for needle in &needles {
            let marked = sql.bind(format!("{SEPARATOR}{needle}"));
            row_checks.push(format!("instr(c.search_text, {marked}) > 0"));
            let low = sql.bind(needle.clone());
            // Past the end of the prefix range; none only for a prefix of U+10FFFF characters,
            // where the row check alone decides.
            let high = match search::prefix_upper_bound(needle) {
                Some(high) => format!(" AND term < {}", sql.bind(high)),
                None => String::new(),
            };
            ranges.push(format!(
                "SELECT customer_seq FROM customer_search_terms WHERE workspace_seq = {ws_seq} AND term >= {low}{high}"
            ));
        }
        conditions.push(format!("({})", row_checks.join(" OR ")));
        drivers.push(Driver::rows(ranges.join(" UNION ALL ")));
    } else if q.search.as_deref().is_some_and(|s| !s.trim().is_empty()) {
        // A query that folds to nothing searchable matches nothing.
        return Ok(None);
    }
    if let Some(tag) = tag {
        let tag = sql.bind(tag);
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM customer_tags t WHERE t.workspace_seq = {ws_seq} AND t.tag = {tag}
                 AND t.customer_seq = c.seq)"
        ));
        drivers.push(Driver::rows(format!(
            "SELECT customer_seq FROM customer_tags WHERE workspace_seq = {ws_seq} AND tag = {tag}"
        )));
    }
    if let Some(city) = city {
        let city = sql.bind(city);
        conditions.push(format!("+c.city_key = {city}"));
        drivers.push(Driver::rows(format!(
            "SELECT seq AS customer_seq FROM customers INDEXED BY customers_by_city
             WHERE workspace_id = {ws_param} AND city_key = {city} AND merged_into IS NULL"
        )));
    }
    match q.has_ordered {
        Some(true) => conditions.push("+c.orders_count > 0".into()),
        Some(false) => conditions.push("+c.orders_count = 0".into()),
        None => {}
    }
    if let Some(after) = &q.seen_after {
        let after = sql.bind(micros(after));
        if q.sort == CustomerSort::LastSeen {
            // Bounds the walk of the last-seen index itself.
            conditions.push(format!("c.last_seen_at > {after}"));
        } else {
            conditions.push(format!("+c.last_seen_at > {after}"));
            drivers.push(Driver::rows(format!(
                "SELECT seq AS customer_seq FROM customers INDEXED BY customers_by_last_seen
                 WHERE workspace_id = {ws_param} AND last_seen_at > {after} AND merged_into IS NULL"
            )));
        }
    }

    // Stages and segment members are rows keyed by the profile's id: checked with one probe of
    // their primary key per profile, or the starting point (see `Driver::by_id`). The stage
    // first: when both match many, the Newest sort walks the stage's index, since stages
    // correlate with age (reach is new, lapsed is old), which walking the stage's own index in
    // id order does not mind, while walking a segment's would pass every member of the wrong
    // age first.
    if let Some(stage) = q.stage {
        let stage = sql.bind(stage.as_str());
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM customer_computed cc WHERE cc.workspace_id = {ws_param}
                 AND cc.customer_id = c.id AND cc.stage = {stage})"
        ));
        drivers.push(Driver::by_id(
            "customer_computed f INDEXED BY customer_computed_by_stage",
            format!("f.workspace_id = {ws_param} AND f.stage = {stage}"),
        ));
    }
    if let Some(segment) = &q.segment {
        let segment = sql.bind(segment.as_str().to_string());
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM segment_members sm WHERE sm.workspace_id = {ws_param}
                 AND sm.segment_id = {segment} AND sm.customer_id = c.id)"
        ));
        drivers.push(Driver::by_id(
            "segment_members f",
            format!("f.workspace_id = {ws_param} AND f.segment_id = {segment}"),
        ));
    }

    let (order, index) = match q.sort {
        CustomerSort::Newest => ("c.id DESC", None),
        CustomerSort::LastSeen => (
            "c.last_seen_at DESC, c.id DESC",
            Some("customers_by_last_seen"),
        ),
        CustomerSort::TotalSpent => (
            "c.total_spent_minor DESC, c.id DESC",
            Some("customers_by_total_spent"),
        ),
        CustomerSort::Name => ("c.sort_name ASC, c.id ASC", Some("customers_by_name")),
    };
    if let Some(after) = &q.after {
        conditions.push(cursor_condition(&mut sql, q.sort, after)?);
    }

    // The most selective driver, if it is selective enough; and the most selective of those
    // that list their matches in id order.
    let mut best: Option<(i64, &Driver)> = None;
    let mut best_by_id: Option<(i64, &Driver)> = None;
    for driver in &drivers {
        let count = count_up_to(conn, &sql, driver.count.as_deref().unwrap_or(&driver.sql))?;
        if count < FEW_MATCHES && best.is_none_or(|(fewest, _)| count < fewest) {
            best = Some((count, driver));
        }
        if driver.by_id.is_some() && best_by_id.is_none_or(|(fewest, _)| count < fewest) {
            best_by_id = Some((count, driver));
        }
    }
    // Newest first is id order, which a stage or segment filter's own index has: walking it
    // backwards fills a page after as many matches as the page holds, however the matches
    // spread over the profiles (walking the profiles could pass most of them first when the
    // filter correlates with age, as stages do). Unless another filter matches few: those are
    // then cheaper to start from.
    let walk_by_id = match (q.sort, best, best_by_id) {
        (CustomerSort::Newest, Some((_, driver)), _) if driver.by_id.is_some() => Some(driver),
        (CustomerSort::Newest, None, Some((_, driver))) => Some(driver),
        _ => None,
    };
    if let Some((table, filter)) = walk_by_id.and_then(|d| d.by_id.as_ref()) {
        let mut walk = vec![filter.clone()];
        if let Some(after) = &q.after {
            walk.push(format!(
                "f.customer_id < {}",
                sql.bind(after.id.as_str().to_string())
            ));
        }
        walk.extend(conditions);
        let limit_param = sql.bind(limit);
        sql.text = format!(
            "SELECT {CUSTOMER_COLUMNS} FROM {table}
             CROSS JOIN customers c ON c.workspace_id = f.workspace_id AND c.id = f.customer_id
             WHERE {} ORDER BY f.customer_id DESC LIMIT {limit_param}",
            walk.join(" AND ")
        );
        return Ok(Some(sql));
    }
    let limit_param = sql.bind(limit);
    sql.text = match best {
        Some((_, driver)) => format!(
            "SELECT {CUSTOMER_COLUMNS} FROM (SELECT DISTINCT customer_seq FROM ({})) AS matches
             CROSS JOIN customers c ON c.seq = matches.customer_seq
             WHERE {} ORDER BY {order} LIMIT {limit_param}",
            driver.sql,
            conditions.join(" AND ")
        ),
        None => format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers c{} WHERE {} ORDER BY {order} LIMIT {limit_param}",
            index.map(|i| format!(" INDEXED BY {i}")).unwrap_or_default(),
            conditions.join(" AND ")
        ),
    };
    Ok(Some(sql))
}

/// How many rows `driver` returns, counting no further than [`FEW_MATCHES`].
fn count_up_to(conn: &Connection, sql: &Sql, driver: &str) -> StoreResult<i64> {
    let text = format!("SELECT count(*) FROM ({driver} LIMIT {FEW_MATCHES})");
    let mut stmt = conn.prepare_cached(&text).db()?;
    // A driver uses only some of the parameters bound so far; SQLite wants exactly the ones its
    // text names, so bind by position up to the highest one it uses.
    let used = stmt.parameter_count();
    stmt.query_row(
        rusqlite::params_from_iter(sql.params.iter().take(used)),
        |row| row.get(0),
    )
    .db()
}

/// A cursor key this sort cannot read. Callers hand back keys the store's rows produced, so this
/// is a caller bug (or a forged cursor that the caller failed to check).
fn invalid_cursor(key: &str, expected: &str) -> StoreError {
    StoreError::Backend(format!(
        "invalid customer cursor: key {key:?} is not {expected}"
    ))
}

/// Rows strictly after the cursor in the sort's order (ties broken by id in the same direction).
fn cursor_condition(
    sql: &mut Sql,
    sort: CustomerSort,
    after: &CustomerCursor,
) -> StoreResult<String> {
    let id = after.id.as_str().to_string();
    Ok(match sort {
        CustomerSort::Newest => format!("c.id < {}", sql.bind(id)),
        CustomerSort::LastSeen => {
            let at = DateTime::parse_from_rfc3339(&after.key)
                .map_err(|_| invalid_cursor(&after.key, "an RFC 3339 time"))?;
            let key = sql.bind(at.timestamp_micros());
            format!("(c.last_seen_at, c.id) < ({key}, {})", sql.bind(id))
        }
        CustomerSort::TotalSpent => {
            let spent: i64 = after
                .key
                .parse()
                .map_err(|_| invalid_cursor(&after.key, "an integer"))?;
            let key = sql.bind(spent);
            format!("(c.total_spent_minor, c.id) < ({key}, {})", sql.bind(id))
        }
        CustomerSort::Name => {
            // The key is the lower-cased name; the index holds the folded one.
            let key = sql.bind(search::fold(&after.key));
            format!("(c.sort_name, c.id) > ({key}, {})", sql.bind(id))
        }
    })
}
