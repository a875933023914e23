//! Customer profiles: writes (which keep the derived `sort_name` and `search` columns in step
//! with the fields), reads, deletion with everything that belongs to a profile, and the sorted,
//! filtered, keyset-paginated list.

use crate::error::corrupt;
use crate::rows::{self, get};
use crate::search;
use crate::tx::{distinct_ids, sql_limit, PgTx};
use ciclo_domain::customer::{Customer, OrderStats};
use ciclo_domain::ids::*;
use ciclo_domain::{NaiveDate, Timestamp};
use ciclo_store::{CustomerQuery, CustomerSort, StoreError, StoreResult};
use postgres::types::{Json, ToSql};
use postgres::Row;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The columns [`customer_from`] reads, qualified with the alias `c`.
macro_rules! customer_columns {
    () => {
        "c.id, c.workspace_id, c.name, c.email, c.phone, c.whatsapp, c.birthday, c.locale, c.time_zone, \
         c.city, c.state, c.country, c.tags, c.traits, c.first_seen_at, c.last_seen_at, c.orders_count, \
         c.total_spent_minor, c.first_order_at, c.last_order_at, c.created_at, c.updated_at, c.merged_into"
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

/// The key of the Name sort, as `CustomerCursor` defines it: the lower-cased name, empty when
/// there is none.
fn sort_name(customer: &Customer) -> String {
    customer
        .name
        .as_deref()
        .map(str::to_lowercase)
        .unwrap_or_default()
}

/// The rows to write, one array per column, for `unnest`: one statement writes any number of
/// profiles. Tags and search lexemes are lists per row, which a PostgreSQL array of arrays cannot
/// hold (it must be rectangular), so they travel as array and tsvector literals and are cast.
struct CustomerColumns<'c> {
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
    first_seen_at: Vec<Timestamp>,
    last_seen_at: Vec<Timestamp>,
    orders_count: Vec<i64>,
    total_spent_minor: Vec<i64>,
    first_order_at: Vec<Option<Timestamp>>,
    last_order_at: Vec<Option<Timestamp>>,
    created_at: Vec<Timestamp>,
    updated_at: Vec<Timestamp>,
    merged_into: Vec<Option<&'c str>>,
    sort_names: Vec<String>,
    search: Vec<String>,
    tag_keys: Vec<String>,
    city_keys: Vec<Option<String>>,
}

impl<'c> CustomerColumns<'c> {
    fn new(customers: &[&'c Customer]) -> CustomerColumns<'c> {
        let text = |f: fn(&'c Customer) -> Option<&'c str>| {
            customers.iter().map(|c| f(c)).collect::<Vec<_>>()
        };
        CustomerColumns {
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
            first_seen_at: customers.iter().map(|c| c.first_seen_at).collect(),
            last_seen_at: customers.iter().map(|c| c.last_seen_at).collect(),
            orders_count: customers.iter().map(|c| c.stats.orders_count).collect(),
            total_spent_minor: customers
                .iter()
                .map(|c| c.stats.total_spent_minor)
                .collect(),
            first_order_at: customers.iter().map(|c| c.stats.first_order_at).collect(),
            last_order_at: customers.iter().map(|c| c.stats.last_order_at).collect(),
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

    /// In the order of the columns of `unnest_customers!`.
    fn params(&self) -> [&(dyn ToSql + Sync); 27] {
        [
            &self.workspace_ids,
            &self.ids,
            &self.names,
            &self.emails,
            &self.phones,
            &self.whatsapps,
            &self.birthdays,
            &self.locales,
            &self.time_zones,
            &self.cities,
            &self.states,
            &self.countries,
            &self.tags,
            &self.traits,
            &self.first_seen_at,
            &self.last_seen_at,
            &self.orders_count,
            &self.total_spent_minor,
            &self.first_order_at,
            &self.last_order_at,
            &self.created_at,
            &self.updated_at,
            &self.merged_into,
            &self.sort_names,
            &self.search,
            &self.tag_keys,
            &self.city_keys,
        ]
    }
}

/// The rows of [`CustomerColumns`] as a relation `u`.
macro_rules! unnest_customers {
    () => {
        "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::date[], $8::text[],
             $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::jsonb[], $15::timestamptz[],
             $16::timestamptz[], $17::bigint[], $18::bigint[], $19::timestamptz[], $20::timestamptz[],
             $21::timestamptz[], $22::timestamptz[], $23::text[], $24::text[], $25::text[], $26::text[], $27::text[])
         AS u(workspace_id, id, name, email, phone, whatsapp, birthday, locale, time_zone, city, state, country,
             tags, traits, first_seen_at, last_seen_at, orders_count, total_spent_minor, first_order_at,
             last_order_at, created_at, updated_at, merged_into, sort_name, search, tag_keys, city_key)"
    };
}

const INSERT_CUSTOMERS: &str = concat!(
    "INSERT INTO customers (workspace_id, id, name, email, phone, whatsapp, birthday, locale, time_zone, city,
         state, country, tags, traits, first_seen_at, last_seen_at, orders_count, total_spent_minor,
         first_order_at, last_order_at, created_at, updated_at, merged_into, sort_name, search, tag_keys,
         city_key)
     SELECT u.workspace_id, u.id, u.name, u.email, u.phone, u.whatsapp, u.birthday, u.locale, u.time_zone,
         u.city, u.state, u.country, u.tags::text[], u.traits, u.first_seen_at, u.last_seen_at, u.orders_count,
         u.total_spent_minor, u.first_order_at, u.last_order_at, u.created_at, u.updated_at, u.merged_into,
         u.sort_name, u.search::tsvector, u.tag_keys::text[], u.city_key
     FROM ",
    unnest_customers!(),
    " ON CONFLICT DO NOTHING"
);

const UPDATE_CUSTOMERS: &str = concat!(
    "UPDATE customers c
     SET name = u.name, email = u.email, phone = u.phone, whatsapp = u.whatsapp, birthday = u.birthday,
         locale = u.locale, time_zone = u.time_zone, city = u.city, state = u.state, country = u.country,
         tags = u.tags::text[], traits = u.traits, first_seen_at = u.first_seen_at,
         last_seen_at = u.last_seen_at, orders_count = u.orders_count, total_spent_minor = u.total_spent_minor,
         first_order_at = u.first_order_at, last_order_at = u.last_order_at, created_at = u.created_at,
         updated_at = u.updated_at, merged_into = u.merged_into, sort_name = u.sort_name,
         search = u.search::tsvector, tag_keys = u.tag_keys::text[], city_key = u.city_key
     FROM ",
    unnest_customers!(),
    " WHERE c.workspace_id = u.workspace_id AND c.id = u.id"
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
    let columns = CustomerColumns::new(&rows);
    let inserted = tx.execute(INSERT_CUSTOMERS, &columns.params())?;
    if inserted == customers.len() as u64 {
        Ok(())
    } else {
        Err(StoreError::Conflict("customers_pkey".into()))
    }
}

pub(crate) fn update_customer(tx: &mut PgTx<'_>, c: &Customer) -> StoreResult<()> {
    update_customers(tx, std::slice::from_ref(c))
}

/// One statement for all the profiles; `NotFound` when one of them does not exist.
pub(crate) fn update_customers(tx: &mut PgTx<'_>, customers: &[Customer]) -> StoreResult<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let rows = distinct_sorted(customers);
    let columns = CustomerColumns::new(&rows);
    let changed = tx.execute(UPDATE_CUSTOMERS, &columns.params())?;
    if changed == rows.len() as u64 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

pub(crate) fn get_customer(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    id: &CustomerId,
) -> StoreResult<Option<Customer>> {
    tx.query_opt(
        concat!(
            "SELECT ",
            customer_columns!(),
            " FROM customers c WHERE c.workspace_id = $1 AND c.id = $2"
        ),
        &[&workspace.as_str(), &id.as_str()],
    )?
    .as_ref()
    .map(customer_from)
    .transpose()
}

/// In the order of `ids` (each once); ids not found are left out.
pub(crate) fn get_customers(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    ids: &[CustomerId],
) -> StoreResult<Vec<Customer>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = distinct_ids(ids);
    tx.query(
        concat!(
            "SELECT ",
            customer_columns!(),
            " FROM unnest($2::text[]) WITH ORDINALITY AS k(id, n)
              JOIN customers c ON c.workspace_id = $1 AND c.id = k.id
              ORDER BY k.n"
        ),
        &[&workspace.as_str(), &ids],
    )?
    .iter()
    .map(customer_from)
    .collect()
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
         )
         DELETE FROM customers WHERE workspace_id = $1 AND id = $2",
        &[&workspace.as_str(), &id.as_str()],
    )?;
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

/// The list. The SQL is assembled from the filters present, so that each shape gets its own
/// plan (one index per sort, the GIN indexes for search and tags), and it is not cached: a
/// search for "a" and one for "ana.souza@" want different plans.
pub(crate) fn list_customers(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    q: &CustomerQuery,
) -> StoreResult<Vec<Customer>> {
    let mut sql = String::from(concat!(
        "SELECT ",
        customer_columns!(),
        " FROM customers c WHERE c.workspace_id = $1 AND c.merged_into IS NULL"
    ));
    let mut params: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(workspace.as_str().to_string())];
    // Adds a parameter and returns its placeholder.
    let mut bind = |value: Box<dyn ToSql + Sync>| {
        params.push(value);
        format!("${}", params.len())
    };

    if let Some(plan) = q.search.as_deref().and_then(search::plan) {
        let tsquery = bind(Box::new(plan.tsquery));
        let term = bind(Box::new(plan.term));
        sql += &format!(
            " AND c.search @@ {tsquery}::text::tsquery AND (starts_with(c.sort_name, {term}) \
             OR strpos(c.sort_name, ' ' || {term}) > 0 OR starts_with(c.email, {term})"
        );
        if let Some(digits) = plan.digits {
            // strpos is 1-based and E.164 numbers start with '+': the digits may start after
            // at most PHONE_SKIPPABLE_DIGITS digits, like the indexed suffixes.
            let digits = bind(Box::new(digits));
            let last = 2 + search::PHONE_SKIPPABLE_DIGITS;
            sql += &format!(
                " OR strpos(c.phone, {digits}) BETWEEN 2 AND {last} OR strpos(c.whatsapp, {digits}) BETWEEN 2 AND {last}"
            );
        }
        sql += ")";
    }
    // Tags and cities are typed by people ("VIP", "São Paulo"): compare without case.
    if let Some(tag) = &q.tag {
        sql += &format!(
            " AND c.tag_keys @> ARRAY[{}::text]",
            bind(Box::new(tag.trim().to_lowercase()))
        );
    }
    if let Some(city) = &q.city {
        sql += &format!(
            " AND c.city_key = {}::text",
            bind(Box::new(city.trim().to_lowercase()))
        );
    }
    match q.has_ordered {
        Some(true) => sql += " AND c.orders_count > 0",
        Some(false) => sql += " AND c.orders_count = 0",
        None => {}
    }
    if let Some(after) = q.seen_after {
        sql += &format!(
            " AND c.last_seen_at > {}::timestamptz",
            bind(Box::new(after))
        );
    }

    // Keyset pagination: rows strictly after (key, id) in the sort's order. Row comparisons
    // match the (workspace_id, key, id) indexes, scanned backwards for the descending sorts.
    if let Some(cursor) = &q.after {
        let id = cursor.id.as_str().to_string();
        match q.sort {
            CustomerSort::Newest => sql += &format!(" AND c.id < {}::text", bind(Box::new(id))),
            CustomerSort::LastSeen => {
                let key = chrono::DateTime::parse_from_rfc3339(&cursor.key)
                    .map_err(|e| invalid_cursor(&cursor.key, e))?
                    .with_timezone(&chrono::Utc);
                let key = bind(Box::new(key));
                sql += &format!(
                    " AND (c.last_seen_at, c.id) < ({key}::timestamptz, {}::text)",
                    bind(Box::new(id))
                );
            }
            CustomerSort::TotalSpent => {
                let key: i64 = cursor
                    .key
                    .parse()
                    .map_err(|e| invalid_cursor(&cursor.key, e))?;
                let key = bind(Box::new(key));
                sql += &format!(
                    " AND (c.total_spent_minor, c.id) < ({key}::bigint, {}::text)",
                    bind(Box::new(id))
                );
            }
            CustomerSort::Name => {
                let key = bind(Box::new(cursor.key.clone()));
                sql += &format!(
                    " AND (c.sort_name, c.id) > ({key}::text, {}::text)",
                    bind(Box::new(id))
                );
            }
        }
    }
    sql += match q.sort {
        CustomerSort::Newest => " ORDER BY c.id DESC",
        CustomerSort::LastSeen => " ORDER BY c.last_seen_at DESC, c.id DESC",
        CustomerSort::TotalSpent => " ORDER BY c.total_spent_minor DESC, c.id DESC",
        CustomerSort::Name => " ORDER BY c.sort_name, c.id",
    };
    sql += &format!(" LIMIT {}::bigint", bind(Box::new(sql_limit(q.limit))));

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
