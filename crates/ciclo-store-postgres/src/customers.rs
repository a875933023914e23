//! Customer profiles: writes (which keep the derived `sort_name` and `search` columns in step
//! with the fields), reads, deletion with everything that belongs to a profile, and the sorted,
//! filtered, keyset-paginated list.
//!
//! A profile is stored in two rows (see the schema): `customers` holds what people and
//! identify calls change (name, contacts, tags, traits…) with the search and filter indexes,
//! `customer_activity` holds what every event or order changes (first/last seen, order stats)
//! with the indexes of the activity sorts. Ingestion then rewrites a narrow row with three
//! btree entries per touched profile, instead of a wide one with every index of the profile
//! including the GIN search index (PostgreSQL adds an entry to every index for each row version
//! that is not a HOT update, and a new `last_seen_at` rules HOT out). Each write sends only the
//! half that changed.

use crate::error::corrupt;
use crate::rows::{self, get};
use crate::search;
use crate::tx::{distinct_ids, sql_limit, PgTx};
use ciclo_domain::customer::{Customer, OrderStats};
use ciclo_domain::ids::*;
use ciclo_domain::{NaiveDate, Timestamp};
use ciclo_store::{CustomerQuery, CustomerSort, CustomerSummary, StoreError, StoreResult};
use postgres::types::{Json, ToSql};
use postgres::Row;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The columns [`customer_from`] reads, from `customers c` joined to `customer_activity a`.
macro_rules! customer_columns {
    () => {
        "c.id, c.workspace_id, c.name, c.email, c.phone, c.whatsapp, c.birthday, c.locale, c.time_zone, \
         c.city, c.state, c.country, c.tags, c.traits, a.first_seen_at, a.last_seen_at, a.orders_count, \
         a.total_spent_minor, a.first_order_at, a.last_order_at, c.created_at, c.updated_at, c.merged_into"
    };
}

/// The two rows of a profile, as `c` and `a`.
macro_rules! customer_tables {
    () => {
        "customers c JOIN customer_activity a ON a.workspace_id = c.workspace_id AND a.id = c.id"
    };
}

fn customer_from(row: &Row) -> StoreResult<Customer> {
    Ok(Customer {
        id: rows::id(row, "id", CustomerId::from_trusted)?,
        workspace_id: rows::id(row, "workspace_id", WorkspaceId::from_trusted)?,
        name: get(row, "name")?,
        email: rows::email(row, "email")?,
        phone: rows::phone(row, "phone")?,
        whatsapp: rows::phone(row, "whatsapp")?,
        birthday: get(row, "birthday")?,
        locale: get(row, "locale")?,
        time_zone: get(row, "time_zone")?,
        city: get(row, "city")?,
        state: get(row, "state")?,
        country: get(row, "country")?,
        tags: get(row, "tags")?,
        traits: rows::object(row, "traits")?,
        first_seen_at: get(row, "first_seen_at")?,
        last_seen_at: get(row, "last_seen_at")?,
        stats: OrderStats {
            orders_count: get(row, "orders_count")?,
            total_spent_minor: get(row, "total_spent_minor")?,
            first_order_at: get(row, "first_order_at")?,
            last_order_at: get(row, "last_order_at")?,
        },
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        merged_into: rows::opt_id(row, "merged_into", CustomerId::from_trusted)?,
    })
}

/// Whether two versions of a profile have the same `customer_activity` row.
fn same_activity(a: &Customer, b: &Customer) -> bool {
    a.workspace_id == b.workspace_id
        && a.first_seen_at == b.first_seen_at
        && a.last_seen_at == b.last_seen_at
        && a.stats == b.stats
}

/// Whether two versions of a profile have the same `customers` row. Written out field by field
/// (no `..`) so that a field added to `Customer` fails to compile here until it is placed.
fn same_profile(a: &Customer, b: &Customer) -> bool {
    let Customer {
        id,
        workspace_id,
        name,
        email,
        phone,
        whatsapp,
        birthday,
        locale,
        time_zone,
        city,
        state,
        country,
        tags,
        traits,
        first_seen_at: _,
        last_seen_at: _,
        stats: _,
        created_at,
        updated_at,
        merged_into,
    } = a;
    *id == b.id
        && *workspace_id == b.workspace_id
        && *name == b.name
        && *email == b.email
        && *phone == b.phone
        && *whatsapp == b.whatsapp
        && *birthday == b.birthday
        && *locale == b.locale
        && *time_zone == b.time_zone
        && *city == b.city
        && *state == b.state
        && *country == b.country
        && *tags == b.tags
        && *traits == b.traits
        && *created_at == b.created_at
        && *updated_at == b.updated_at
        && *merged_into == b.merged_into
}

/// The key of the Name sort, as `CustomerCursor` defines it: the lower-cased name, empty when
/// there is none.
fn sort_name(customer: &Customer) -> String {
    customer
        .name
        .as_deref()
        .map(str::to_lowercase)
        .unwrap_or_default()
}

/// The `customers` rows to write, one array per column, for `unnest`: one statement writes any
/// number of profiles. Tags and search lexemes are lists per row, which a PostgreSQL array of
/// arrays cannot hold (it must be rectangular), so they travel as array and tsvector literals
/// and are cast.
struct ProfileColumns<'c> {
    workspace_ids: Vec<&'c str>,
    ids: Vec<&'c str>,
    names: Vec<Option<&'c str>>,
    emails: Vec<Option<&'c str>>,
    phones: Vec<Option<&'c str>>,
    whatsapps: Vec<Option<&'c str>>,
    birthdays: Vec<Option<NaiveDate>>,
    locales: Vec<Option<&'c str>>,
    time_zones: Vec<Option<&'c str>>,
    cities: Vec<Option<&'c str>>,
    states: Vec<Option<&'c str>>,
    countries: Vec<Option<&'c str>>,
    tags: Vec<String>,
    traits: Vec<Json<&'c Map<String, Value>>>,
    created_at: Vec<Timestamp>,
    updated_at: Vec<Timestamp>,
    merged_into: Vec<Option<&'c str>>,
    sort_names: Vec<String>,
    search: Vec<String>,
    tag_keys: Vec<String>,
    city_keys: Vec<Option<String>>,
}

impl<'c> ProfileColumns<'c> {
    fn new(customers: &[&'c Customer]) -> ProfileColumns<'c> {
        let text = |f: fn(&'c Customer) -> Option<&'c str>| {
            customers.iter().map(|c| f(c)).collect::<Vec<_>>()
        };
        ProfileColumns {
            workspace_ids: customers.iter().map(|c| c.workspace_id.as_str()).collect(),
            ids: customers.iter().map(|c| c.id.as_str()).collect(),
            names: text(|c| c.name.as_deref()),
            emails: text(|c| c.email.as_ref().map(|e| e.as_str())),
            phones: text(|c| c.phone.as_ref().map(|p| p.as_str())),
            whatsapps: text(|c| c.whatsapp.as_ref().map(|p| p.as_str())),
            birthdays: customers.iter().map(|c| c.birthday).collect(),
            locales: text(|c| c.locale.as_deref()),
            time_zones: text(|c| c.time_zone.as_deref()),
            cities: text(|c| c.city.as_deref()),
            states: text(|c| c.state.as_deref()),
            countries: text(|c| c.country.as_deref()),
            tags: customers
                .iter()
                .map(|c| text_array_literal(&c.tags))
                .collect(),
            traits: customers.iter().map(|c| Json(&c.traits)).collect(),
            created_at: customers.iter().map(|c| c.created_at).collect(),
            updated_at: customers.iter().map(|c| c.updated_at).collect(),
            merged_into: text(|c| c.merged_into.as_ref().map(|m| m.as_str())),
            sort_names: customers.iter().map(|c| sort_name(c)).collect(),
            search: customers
                .iter()
                .map(|c| search::tsvector_literal(&lexemes(c)))
                .collect(),
            tag_keys: customers
                .iter()
                .map(|c| {
                    text_array_literal(&c.tags.iter().map(|t| t.to_lowercase()).collect::<Vec<_>>())
                })
                .collect(),
            city_keys: customers
                .iter()
                .map(|c| c.city.as_deref().map(str::to_lowercase))
                .collect(),
        }
    }
}

/// The `customer_activity` rows to write, one array per column.
struct ActivityColumns<'c> {
    workspace_ids: Vec<&'c str>,
    ids: Vec<&'c str>,
    first_seen_at: Vec<Timestamp>,
    last_seen_at: Vec<Timestamp>,
    orders_count: Vec<i64>,
    total_spent_minor: Vec<i64>,
    first_order_at: Vec<Option<Timestamp>>,
    last_order_at: Vec<Option<Timestamp>>,
}

impl<'c> ActivityColumns<'c> {
    fn new(customers: &[&'c Customer]) -> ActivityColumns<'c> {
        ActivityColumns {
            workspace_ids: customers.iter().map(|c| c.workspace_id.as_str()).collect(),
            ids: customers.iter().map(|c| c.id.as_str()).collect(),
            first_seen_at: customers.iter().map(|c| c.first_seen_at).collect(),
            last_seen_at: customers.iter().map(|c| c.last_seen_at).collect(),
            orders_count: customers.iter().map(|c| c.stats.orders_count).collect(),
            total_spent_minor: customers
                .iter()
                .map(|c| c.stats.total_spent_minor)
                .collect(),
            first_order_at: customers.iter().map(|c| c.stats.first_order_at).collect(),
            last_order_at: customers.iter().map(|c| c.stats.last_order_at).collect(),
        }
    }
}

/// The parameters of [`INSERT_CUSTOMERS`] and [`UPDATE_CUSTOMERS`]: `$1`–`$21` the profile
/// rows, `$22`–`$29` the activity rows (each statement says which rows those are).
fn params<'p>(
    p: &'p ProfileColumns<'_>,
    a: &'p ActivityColumns<'_>,
) -> [&'p (dyn ToSql + Sync); 29] {
    [
        &p.workspace_ids,
        &p.ids,
        &p.names,
        &p.emails,
        &p.phones,
        &p.whatsapps,
        &p.birthdays,
        &p.locales,
        &p.time_zones,
        &p.cities,
        &p.states,
        &p.countries,
        &p.tags,
        &p.traits,
        &p.created_at,
        &p.updated_at,
        &p.merged_into,
        &p.sort_names,
        &p.search,
        &p.tag_keys,
        &p.city_keys,
        &a.workspace_ids,
        &a.ids,
        &a.first_seen_at,
        &a.last_seen_at,
        &a.orders_count,
        &a.total_spent_minor,
        &a.first_order_at,
        &a.last_order_at,
    ]
}

/// The columns of `customers`, in the order of [`profile_rows!`].
macro_rules! profile_columns {
    () => {
        "workspace_id, id, name, email, phone, whatsapp, birthday, locale, time_zone, city, state, country, tags,
         traits, created_at, updated_at, merged_into, sort_name, search, tag_keys, city_key"
    };
}

/// The columns of `customer_activity`, in the order of [`activity_rows!`].
macro_rules! activity_columns {
    () => {
        "workspace_id, id, first_seen_at, last_seen_at, orders_count, total_spent_minor, first_order_at,
         last_order_at"
    };
}

/// The profile rows (`$1`–`$21`) as a relation `u`, every column of `customers`.
/// Set-returning functions in the select list stream the arrays; `unnest(…)` in `FROM` would
/// first copy them all into a tuple store.
macro_rules! profile_rows {
    () => {
        "(SELECT unnest($1::text[]) AS workspace_id, unnest($2::text[]) AS id, unnest($3::text[]) AS name,
             unnest($4::text[]) AS email, unnest($5::text[]) AS phone, unnest($6::text[]) AS whatsapp,
             unnest($7::date[]) AS birthday, unnest($8::text[]) AS locale, unnest($9::text[]) AS time_zone,
             unnest($10::text[]) AS city, unnest($11::text[]) AS state, unnest($12::text[]) AS country,
             unnest($13::text[])::text[] AS tags, unnest($14::jsonb[]) AS traits,
             unnest($15::timestamptz[]) AS created_at, unnest($16::timestamptz[]) AS updated_at,
             unnest($17::text[]) AS merged_into, unnest($18::text[]) AS sort_name,
             unnest($19::text[])::tsvector AS search, unnest($20::text[])::text[] AS tag_keys,
             unnest($21::text[]) AS city_key) u"
    };
}

/// The activity rows (`$22`–`$29`) as a relation `u`, every column of `customer_activity`.
macro_rules! activity_rows {
    () => {
        "(SELECT unnest($22::text[]) AS workspace_id, unnest($23::text[]) AS id,
             unnest($24::timestamptz[]) AS first_seen_at, unnest($25::timestamptz[]) AS last_seen_at,
             unnest($26::bigint[]) AS orders_count, unnest($27::bigint[]) AS total_spent_minor,
             unnest($28::timestamptz[]) AS first_order_at, unnest($29::timestamptz[]) AS last_order_at) u"
    };
}

/// Both rows of each new profile. The activity rows given are those of the profiles given, and
/// go in for the profiles that did.
const INSERT_CUSTOMERS: &str = concat!(
    "WITH p AS (
         INSERT INTO customers (",
    profile_columns!(),
    ") SELECT * FROM ",
    profile_rows!(),
    " ON CONFLICT DO NOTHING
         RETURNING workspace_id, id
     ), a AS (
         INSERT INTO customer_activity (",
    activity_columns!(),
    ") SELECT u.* FROM ",
    activity_rows!(),
    " JOIN p ON p.workspace_id = u.workspace_id AND p.id = u.id
         ON CONFLICT DO NOTHING
     )
     SELECT count(*) AS inserted FROM p"
);

/// The update, written as upserts so that the plan is one probe of the primary key per row
/// whatever the statistics say (an `UPDATE … FROM unnest(…)` on a table without statistics yet
/// gets a hash join over a scan of the whole table). Each table gets the rows whose half of the
/// profile changed; a row identical to the stored one is left alone all the same (no new row
/// version, no index entries, no WAL). A row that does not exist goes in and is reported, so
/// that [`update_customers`] takes it out again.
const UPDATE_CUSTOMERS: &str = concat!(
    "WITH p AS (
         INSERT INTO customers AS c (",
    profile_columns!(),
    ") SELECT * FROM ",
    profile_rows!(),
    " ON CONFLICT (workspace_id, id) DO UPDATE
         SET name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone,
             whatsapp = EXCLUDED.whatsapp, birthday = EXCLUDED.birthday, locale = EXCLUDED.locale,
             time_zone = EXCLUDED.time_zone, city = EXCLUDED.city, state = EXCLUDED.state,
             country = EXCLUDED.country, tags = EXCLUDED.tags, traits = EXCLUDED.traits,
             created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
             merged_into = EXCLUDED.merged_into, sort_name = EXCLUDED.sort_name, search = EXCLUDED.search,
             tag_keys = EXCLUDED.tag_keys, city_key = EXCLUDED.city_key
         WHERE (c.name, c.email, c.phone, c.whatsapp, c.birthday, c.locale, c.time_zone, c.city, c.state,
                 c.country, c.tags, c.traits, c.created_at, c.updated_at, c.merged_into, c.sort_name,
                 c.search, c.tag_keys, c.city_key)
             IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.email, EXCLUDED.phone, EXCLUDED.whatsapp,
                 EXCLUDED.birthday, EXCLUDED.locale, EXCLUDED.time_zone, EXCLUDED.city, EXCLUDED.state,
                 EXCLUDED.country, EXCLUDED.tags, EXCLUDED.traits, EXCLUDED.created_at, EXCLUDED.updated_at,
                 EXCLUDED.merged_into, EXCLUDED.sort_name, EXCLUDED.search, EXCLUDED.tag_keys,
                 EXCLUDED.city_key)
         RETURNING c.workspace_id, c.id, c.xmax = 0 AS inserted
     ), a AS (
         INSERT INTO customer_activity AS c (",
    activity_columns!(),
    ") SELECT * FROM ",
    activity_rows!(),
    " ON CONFLICT (workspace_id, id) DO UPDATE
         SET first_seen_at = EXCLUDED.first_seen_at, last_seen_at = EXCLUDED.last_seen_at,
             orders_count = EXCLUDED.orders_count, total_spent_minor = EXCLUDED.total_spent_minor,
             first_order_at = EXCLUDED.first_order_at, last_order_at = EXCLUDED.last_order_at
         WHERE (c.first_seen_at, c.last_seen_at, c.orders_count, c.total_spent_minor, c.first_order_at,
                 c.last_order_at)
             IS DISTINCT FROM (EXCLUDED.first_seen_at, EXCLUDED.last_seen_at, EXCLUDED.orders_count,
                 EXCLUDED.total_spent_minor, EXCLUDED.first_order_at, EXCLUDED.last_order_at)
         RETURNING c.workspace_id, c.id, c.xmax = 0 AS inserted
     )
     SELECT workspace_id, id FROM p WHERE inserted
     UNION
     SELECT workspace_id, id FROM a WHERE inserted"
);

fn lexemes(customer: &Customer) -> Vec<String> {
    search::customer_lexemes(
        customer.name.as_deref(),
        customer.email.as_ref().map(|e| e.as_str()),
        customer.phone.as_ref().map(|p| p.as_str()),
        customer.whatsapp.as_ref().map(|p| p.as_str()),
    )
}

/// A PostgreSQL array literal (`{"a","b"}`): every element quoted, so that no value (not even
/// `NULL`) reads as anything but its text.
fn text_array_literal(items: &[String]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(&item.replace('\\', "\\\\").replace('"', "\\\""));
        out.push('"');
    }
    out.push('}');
    out
}

/// Each profile once (the last version given wins), sorted by key so that concurrent batches
/// lock rows in the same order and do not deadlock.
fn distinct_sorted(customers: &[Customer]) -> Vec<&Customer> {
    let mut latest: HashMap<(&str, &str), &Customer> = HashMap::with_capacity(customers.len());
    for c in customers {
        latest.insert((c.workspace_id.as_str(), c.id.as_str()), c);
    }
    let mut out: Vec<&Customer> = latest.into_values().collect();
    out.sort_by_key(|c| (c.workspace_id.as_str(), c.id.as_str()));
    out
}

pub(crate) fn insert_customer(tx: &mut PgTx<'_>, c: &Customer) -> StoreResult<()> {
    insert_customers(tx, std::slice::from_ref(c))
}

/// One statement for all the profiles. A profile whose id exists (or that is given twice) is a
/// `Conflict`; the caller is expected to roll back then, since the others were written.
pub(crate) fn insert_customers(tx: &mut PgTx<'_>, customers: &[Customer]) -> StoreResult<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let rows = distinct_sorted(customers);
    let profiles = ProfileColumns::new(&rows);
    let activity = ActivityColumns::new(&rows);
    let inserted: i64 = get(
        &tx.query_one(INSERT_CUSTOMERS, &params(&profiles, &activity))?,
        "inserted",
    )?;
    if inserted == customers.len() as i64 {
        tx.remember_customers(rows);
        Ok(())
    } else {
        Err(StoreError::Conflict("customers_pkey".into()))
    }
}

pub(crate) fn update_customer(tx: &mut PgTx<'_>, c: &Customer) -> StoreResult<()> {
    update_customers(tx, std::slice::from_ref(c))
}

/// One statement for all the profiles (see [`UPDATE_CUSTOMERS`]); `NotFound` when one of them
/// does not exist, after the others were written, as an `UPDATE` would.
///
/// What this transaction read or wrote of a profile decides what is sent: nothing when it comes
/// back unchanged (ingestion writes back every profile an event touched, and most events change
/// nothing once a profile has been seen for a while), the activity row alone when only that
/// changed (an event), the `customers` row alone when only that did. A profile not read in this
/// transaction is sent whole. (Under READ COMMITTED a concurrent transaction may have changed a
/// row since it was read; leaving alone what this one did not change keeps that change, where
/// writing back the stale copy would undo it.)
pub(crate) fn update_customers(tx: &mut PgTx<'_>, customers: &[Customer]) -> StoreResult<()> {
    let rows = distinct_sorted(customers);
    let mut profile_rows = Vec::with_capacity(rows.len());
    let mut activity_rows = Vec::with_capacity(rows.len());
    for c in &rows {
        let stored = tx.stored_customer(&c.id);
        if !stored.is_some_and(|s| same_profile(s, c)) {
            profile_rows.push(*c);
        }
        if !stored.is_some_and(|s| same_activity(s, c)) {
            activity_rows.push(*c);
        }
    }
    tx.note("update_customers: given", rows.len());
    tx.note("update_customers: profile rows", profile_rows.len());
    tx.note("update_customers: activity rows", activity_rows.len());
    if profile_rows.is_empty() && activity_rows.is_empty() {
        return Ok(());
    }
    let profiles = ProfileColumns::new(&profile_rows);
    let activity = ActivityColumns::new(&activity_rows);
    let missing = tx.query(UPDATE_CUSTOMERS, &params(&profiles, &activity))?;
    if missing.is_empty() {
        tx.remember_customers(rows);
        return Ok(());
    }
    let workspaces: Vec<&str> = missing
        .iter()
        .map(|row| get(row, "workspace_id"))
        .collect::<StoreResult<_>>()?;
    let ids: Vec<&str> = missing
        .iter()
        .map(|row| get(row, "id"))
        .collect::<StoreResult<_>>()?;
    tx.execute(
        "WITH m AS (
             SELECT * FROM unnest($1::text[], $2::text[]) AS m(workspace_id, id)
         ), gone AS (
             DELETE FROM customer_activity a USING m
             WHERE a.workspace_id = m.workspace_id AND a.id = m.id
         )
         DELETE FROM customers c USING m WHERE c.workspace_id = m.workspace_id AND c.id = m.id",
        &[&workspaces, &ids],
    )?;
    // Which of the others were written is not worth sorting out on this error path.
    for c in rows {
        tx.forget_customer(&c.id);
    }
    Err(StoreError::NotFound)
}

pub(crate) fn get_customer(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    id: &CustomerId,
) -> StoreResult<Option<Customer>> {
    let customer = tx
        .query_opt(
            concat!(
                "SELECT ",
                customer_columns!(),
                " FROM ",
                customer_tables!(),
                " WHERE c.workspace_id = $1 AND c.id = $2"
            ),
            &[&workspace.as_str(), &id.as_str()],
        )?
        .as_ref()
        .map(customer_from)
        .transpose()?;
    tx.remember_customers(&customer);
    Ok(customer)
}

/// In the order of `ids` (each once); ids not found are left out. Two primary-key probes per
/// id, pinned by `LATERAL … OFFSET 0` (see [`crate::events::existing_message_ids`]).
pub(crate) fn get_customers(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    ids: &[CustomerId],
) -> StoreResult<Vec<Customer>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = distinct_ids(ids);
    let customers = tx
        .query(
            concat!(
                "SELECT x.* FROM unnest($2::text[]) WITH ORDINALITY AS k(id, n)
                 CROSS JOIN LATERAL (
                     SELECT ",
                customer_columns!(),
                " FROM ",
                customer_tables!(),
                " WHERE c.workspace_id = $1 AND c.id = k.id OFFSET 0
                 ) x
                 ORDER BY k.n"
            ),
            &[&workspace.as_str(), &ids],
        )?
        .iter()
        .map(customer_from)
        .collect::<StoreResult<Vec<_>>>()?;
    tx.remember_customers(&customers);
    Ok(customers)
}

/// One statement, so one round trip: each data-modifying CTE runs whether or not the final
/// statement reads it. Order items go through the orders deleted alongside them.
pub(crate) fn delete_customer(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    id: &CustomerId,
) -> StoreResult<()> {
    tx.execute(
        "WITH deleted_orders AS (
             DELETE FROM orders WHERE workspace_id = $1 AND customer_id = $2 RETURNING id
         ), deleted_items AS (
             DELETE FROM order_items WHERE workspace_id = $1 AND order_id IN (SELECT id FROM deleted_orders)
         ), deleted_identities AS (
             DELETE FROM identities WHERE workspace_id = $1 AND customer_id = $2
         ), deleted_events AS (
             DELETE FROM events WHERE workspace_id = $1 AND customer_id = $2
         ), deleted_merges AS (
             DELETE FROM merges WHERE workspace_id = $1 AND (winner_id = $2 OR loser_id = $2)
         ), deleted_conflicts AS (
             DELETE FROM identity_conflicts WHERE workspace_id = $1 AND (customer_a = $2 OR customer_b = $2)
         ), deleted_activity AS (
             DELETE FROM customer_activity WHERE workspace_id = $1 AND id = $2
         ), deleted_memberships AS (
             DELETE FROM segment_members WHERE workspace_id = $1 AND customer_id = $2 RETURNING segment_id
         ), member_counts AS (
             UPDATE segments s SET member_count = s.member_count - 1
             FROM deleted_memberships m WHERE s.workspace_id = $1 AND s.id = m.segment_id
         ), deleted_computed AS (
             DELETE FROM customer_computed WHERE workspace_id = $1 AND customer_id = $2
         ), deleted_stage_changes AS (
             DELETE FROM stage_changes WHERE workspace_id = $1 AND customer_id = $2
         ), deleted_mark AS (
             DELETE FROM dirty_customers WHERE workspace_id = $1 AND customer_id = $2
         )
         DELETE FROM customers WHERE workspace_id = $1 AND id = $2",
        &[&workspace.as_str(), &id.as_str()],
    )?;
    tx.forget_customer(id);
    Ok(())
}

/// Surviving profiles only, like the list.
pub(crate) fn count_customers(tx: &mut PgTx<'_>, workspace: &WorkspaceId) -> StoreResult<i64> {
    get(
        &tx.query_one(
            "SELECT count(*) AS n FROM customers WHERE workspace_id = $1 AND merged_into IS NULL",
            &[&workspace.as_str()],
        )?,
        "n",
    )
}

pub(crate) fn merged_children(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    root: &CustomerId,
) -> StoreResult<Vec<CustomerId>> {
    tx.query(
        "SELECT id FROM customers WHERE workspace_id = $1 AND merged_into = $2 ORDER BY id",
        &[&workspace.as_str(), &root.as_str()],
    )?
    .iter()
    .map(|row| rows::id(row, "id", CustomerId::from_trusted))
    .collect()
}

/// Every merged-away profile with the profile it was merged into, by id (through the partial
/// index of merged profiles, which are few).
pub(crate) fn merged_profiles(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
) -> StoreResult<Vec<(CustomerId, CustomerId)>> {
    tx.query(
        "SELECT id, merged_into FROM customers
         WHERE workspace_id = $1 AND merged_into IS NOT NULL ORDER BY id",
        &[&workspace.as_str()],
    )?
    .iter()
    .map(|row| {
        Ok((
            rows::id(row, "id", CustomerId::from_trusted)?,
            rows::id(row, "merged_into", CustomerId::from_trusted)?,
        ))
    })
    .collect()
}

/// Rows fetched per round trip by the whole-workspace scans of profiles and orders: a batch is
/// a megabyte or two, and the round trips cost nothing next to the rows.
pub(crate) const SUMMARY_BATCH: i32 = 10_000;

/// Every surviving profile of the workspace, reduced to what the whole-workspace reports read
/// (both rows of the profile, but no traits, tags or phones), from a portal read
/// [`SUMMARY_BATCH`] rows at a time (see [`PgTx::stream_rows`] for failures).
pub(crate) fn scan_customer_summaries(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    visit: &mut dyn FnMut(CustomerSummary),
) -> StoreResult<()> {
    tx.stream_rows(
        "SELECT c.id, c.name, c.email, c.created_at, a.first_seen_at, a.last_seen_at,
                a.orders_count, a.total_spent_minor, a.first_order_at, a.last_order_at
         FROM customers c JOIN customer_activity a ON a.workspace_id = c.workspace_id AND a.id = c.id
         WHERE c.workspace_id = $1 AND c.merged_into IS NULL",
        &[&workspace.as_str()],
        SUMMARY_BATCH,
        "profile scan",
        &mut |row| {
            visit(CustomerSummary {
                id: rows::id(&row, "id", CustomerId::from_trusted)?,
                name: get(&row, "name")?,
                email: get(&row, "email")?,
                created_at: get(&row, "created_at")?,
                first_seen_at: get(&row, "first_seen_at")?,
                last_seen_at: get(&row, "last_seen_at")?,
                stats: OrderStats {
                    orders_count: get(&row, "orders_count")?,
                    total_spent_minor: get(&row, "total_spent_minor")?,
                    first_order_at: get(&row, "first_order_at")?,
                    last_order_at: get(&row, "last_order_at")?,
                },
            });
            Ok(())
        },
    )
}

/// Below this many members of a stage or segment, a list starts from them (and sorts them);
/// from this many on, it walks the sort's index and checks each profile (see
/// [`list_customers`]). The same threshold as the SQLite adapter's, for the same reasons.
const FEW_MATCHES: i64 = 10_000;

/// A stage or segment filter: a table keyed by the profile's id, whose index lists the
/// profiles of one stage or segment in id order.
#[derive(Clone, Copy, PartialEq)]
enum ById {
    Stage,
    Segment,
}

impl ById {
    /// The table (aliased `f`) and the column the filter compares.
    fn table(self) -> (&'static str, &'static str) {
        match self {
            ById::Stage => ("customer_computed", "stage"),
            ById::Segment => ("segment_members", "segment_id"),
        }
    }
}

/// How many profiles a stage or segment holds, counting no further than [`FEW_MATCHES`].
fn count_up_to(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    filter: ById,
    value: &str,
) -> StoreResult<i64> {
    let sql = match filter {
        ById::Stage => {
            "SELECT count(*) AS n FROM (
                 SELECT 1 FROM customer_computed WHERE workspace_id = $1 AND stage = $2 LIMIT 10000
             ) m"
        }
        ById::Segment => {
            "SELECT count(*) AS n FROM (
                 SELECT 1 FROM segment_members WHERE workspace_id = $1 AND segment_id = $2 LIMIT 10000
             ) m"
        }
    };
    get(&tx.query_one(sql, &[&workspace.as_str(), &value])?, "n")
}

/// The list. The SQL is assembled from the filters present, so that each shape gets its own
/// plan (one index per sort, the GIN indexes for search and tags), and it is not cached: a
/// search for "a" and one for "ana.souza@" want different plans.
///
/// The stage and segment filters are tables keyed by the profile's id. Left to the planner
/// (which assumes filters and sort keys independent), a stage that correlates with the sort
/// key, as stages do with age and recency, gets a walk of the sort's index past every profile
/// of the other stages first. So, unless a search, tag or city filter is there for the planner
/// to weigh, the adapter picks the plan like the SQLite one does: the Newest sort walks the
/// stage's or segment's own index in id order (backwards) and stops when the page is full;
/// other sorts start from the stage's or segment's profiles when they are fewer than
/// [`FEW_MATCHES`] (counted first) and sort them; otherwise the planner walks the sort's index,
/// checking each profile. `LATERAL … OFFSET 0` pins the first two.
pub(crate) fn list_customers(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    q: &CustomerQuery,
) -> StoreResult<Vec<Customer>> {
    let stage = q.stage.map(|s| s.as_str().to_string());
    let segment = q.segment.as_ref().map(|s| s.as_str().to_string());
    let planner_filters = q.search.is_some() || q.tag.is_some() || q.city.is_some();
    // Which id-keyed filter the list starts from, if any: the one with fewer profiles (the
    // stage when both have many, being the one that correlates with age).
    let mut drive: Option<ById> = None;
    if !planner_filters && sql_limit(q.limit) > 0 {
        let mut candidates: Vec<(ById, &str)> = Vec::new();
        if let Some(stage) = &stage {
            candidates.push((ById::Stage, stage));
        }
        if let Some(segment) = &segment {
            candidates.push((ById::Segment, segment));
        }
        let newest = q.sort == CustomerSort::Newest;
        let mut fewest: Option<(i64, ById)> = None;
        if newest && candidates.len() == 1 {
            fewest = candidates.first().map(|(f, _)| (0, *f));
        } else {
            for (filter, value) in candidates {
                let n = count_up_to(tx, workspace, filter, value)?;
                if fewest.is_none_or(|(least, _)| n < least) {
                    fewest = Some((n, filter));
                }
            }
        }
        drive = fewest
            .filter(|(n, _)| newest || *n < FEW_MATCHES)
            .map(|(_, f)| f);
    }

    let mut params: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(workspace.as_str().to_string())];
    // Adds a parameter and returns its placeholder.
    let mut bind = |value: Box<dyn ToSql + Sync>| {
        params.push(value);
        format!("${}", params.len())
    };
    // Conditions on the profile's rows `c` and `a`, each starting with " AND".
    let mut filters = String::new();
    // Stage and segment: joined (each matches a profile at most once, by their primary keys)
    // when the planner chooses, else the driving one is the starting table and the other a
    // check.
    let mut joins = String::new();
    let mut driving: Option<(ById, String)> = None;
    for (filter, value) in [(ById::Segment, &segment), (ById::Stage, &stage)] {
        let Some(value) = value else { continue };
        let p = bind(Box::new(value.clone()));
        let (table, column) = filter.table();
        if drive == Some(filter) {
            driving = Some((filter, p));
        } else if drive.is_some() {
            filters += &format!(
                " AND EXISTS (SELECT 1 FROM {table} k WHERE k.workspace_id = c.workspace_id \
                 AND k.customer_id = c.id AND k.{column} = {p}::text)"
            );
        } else {
            let alias = match filter {
                ById::Stage => "cc",
                ById::Segment => "m",
            };
            joins += &format!(
                " JOIN {table} {alias} ON {alias}.workspace_id = c.workspace_id \
                 AND {alias}.customer_id = c.id AND {alias}.{column} = {p}::text"
            );
        }
    }

    if let Some(plan) = q.search.as_deref().and_then(search::plan) {
        let tsquery = bind(Box::new(plan.tsquery));
        let term = bind(Box::new(plan.term));
        filters += &format!(
            " AND c.search @@ {tsquery}::text::tsquery AND (starts_with(c.sort_name, {term}) \
             OR strpos(c.sort_name, ' ' || {term}) > 0 OR starts_with(c.email, {term})"
        );
        if let Some(digits) = plan.digits {
            // strpos is 1-based and E.164 numbers start with '+': the digits may start after
            // at most PHONE_SKIPPABLE_DIGITS digits, like the indexed suffixes.
            let digits = bind(Box::new(digits));
            let last = 2 + search::PHONE_SKIPPABLE_DIGITS;
            filters += &format!(
                " OR strpos(c.phone, {digits}) BETWEEN 2 AND {last} OR strpos(c.whatsapp, {digits}) BETWEEN 2 AND {last}"
            );
        }
        filters += ")";
    }
    // Tags and cities are typed by people ("VIP", "São Paulo"): compare without case.
    if let Some(tag) = &q.tag {
        filters += &format!(
            " AND c.tag_keys @> ARRAY[{}::text]",
            bind(Box::new(tag.trim().to_lowercase()))
        );
    }
    if let Some(city) = &q.city {
        filters += &format!(
            " AND c.city_key = {}::text",
            bind(Box::new(city.trim().to_lowercase()))
        );
    }
    match q.has_ordered {
        Some(true) => filters += " AND a.orders_count > 0",
        Some(false) => filters += " AND a.orders_count = 0",
        None => {}
    }
    if let Some(after) = q.seen_after {
        filters += &format!(
            " AND a.last_seen_at > {}::timestamptz",
            bind(Box::new(after))
        );
    }

    // Keyset pagination: rows strictly after (key, id) in the sort's order. Row comparisons
    // match the (workspace_id, key, id) indexes, scanned backwards for the descending sorts.
    let mut newest_cursor = None;
    if let Some(cursor) = &q.after {
        let id = cursor.id.as_str().to_string();
        match q.sort {
            CustomerSort::Newest => {
                let id = bind(Box::new(id));
                filters += &format!(" AND c.id < {id}::text");
                newest_cursor = Some(id);
            }
            CustomerSort::LastSeen => {
                let key = chrono::DateTime::parse_from_rfc3339(&cursor.key)
                    .map_err(|e| invalid_cursor(&cursor.key, e))?
                    .with_timezone(&chrono::Utc);
                let key = bind(Box::new(key));
                filters += &format!(
                    " AND (a.last_seen_at, a.id) < ({key}::timestamptz, {}::text)",
                    bind(Box::new(id))
                );
            }
            CustomerSort::TotalSpent => {
                let key: i64 = cursor
                    .key
                    .parse()
                    .map_err(|e| invalid_cursor(&cursor.key, e))?;
                let key = bind(Box::new(key));
                filters += &format!(
                    " AND (a.total_spent_minor, a.id) < ({key}::bigint, {}::text)",
                    bind(Box::new(id))
                );
            }
            CustomerSort::Name => {
                let key = bind(Box::new(cursor.key.clone()));
                filters += &format!(
                    " AND (c.sort_name, c.id) > ({key}::text, {}::text)",
                    bind(Box::new(id))
                );
            }
        }
    }
    let limit = bind(Box::new(sql_limit(q.limit)));

    let sql = match driving {
        None => {
            let order = match q.sort {
                CustomerSort::Newest => "c.id DESC",
                CustomerSort::LastSeen => "a.last_seen_at DESC, a.id DESC",
                CustomerSort::TotalSpent => "a.total_spent_minor DESC, a.id DESC",
                CustomerSort::Name => "c.sort_name, c.id",
            };
            format!(
                concat!(
                    "SELECT ",
                    customer_columns!(),
                    " FROM ",
                    customer_tables!(),
                    "{} WHERE c.workspace_id = $1 AND c.merged_into IS NULL{} ORDER BY {} LIMIT {}::bigint"
                ),
                joins, filters, order, limit
            )
        }
        Some((filter, value)) => {
            let (table, column) = filter.table();
            let mut start = format!("f.workspace_id = $1 AND f.{column} = {value}::text");
            if let Some(id) = newest_cursor {
                start += &format!(" AND f.customer_id < {id}::text");
            }
            let order = match q.sort {
                CustomerSort::Newest => "f.customer_id DESC",
                CustomerSort::LastSeen => "x.last_seen_at DESC, x.id DESC",
                CustomerSort::TotalSpent => "x.total_spent_minor DESC, x.id DESC",
                CustomerSort::Name => "x.sort_name, x.id",
            };
            format!(
                concat!(
                    "SELECT x.* FROM {} f CROSS JOIN LATERAL (SELECT ",
                    customer_columns!(),
                    ", c.sort_name FROM ",
                    customer_tables!(),
                    " WHERE c.workspace_id = f.workspace_id AND c.id = f.customer_id AND c.merged_into IS NULL{} OFFSET 0) x
                     WHERE {} ORDER BY {} LIMIT {}::bigint"
                ),
                table, filters, start, order, limit
            )
        }
    };
    let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
    tx.query_uncached(&sql, &params)?
        .iter()
        .map(customer_from)
        .collect()
}

fn invalid_cursor(key: &str, error: impl std::fmt::Display) -> StoreError {
    // The store has no "invalid input" error; a cursor key this adapter did not produce is a
    // caller bug (ciclo-core builds cursors from rows it was given).
    corrupt("customer cursor", format!("{key:?}: {error}"))
}
