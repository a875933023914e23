//! Orders and their items, and the order statistics of a set of profiles.

use crate::customers::SUMMARY_BATCH;
use crate::rows::{self, get};
use crate::tx::{distinct_ids, sql_limit, PgTx};
use ciclo_domain::customer::OrderStats;
use ciclo_domain::ids::*;
use ciclo_domain::order::{Order, OrderItem};
use ciclo_store::{OrderSummary, StoreResult};
use postgres::Row;
use std::collections::HashMap;

pub(crate) fn insert_order(tx: &mut PgTx<'_>, order: &Order) -> StoreResult<bool> {
    Ok(insert_orders(tx, std::slice::from_ref(order))?[0])
}

/// All the orders and their items in one statement: the items of an order go in only when the
/// order row did (`o` holds the orders inserted; one whose external id exists is skipped), so a
/// repeated `Order Completed` changes nothing, and `o` says which went in.
///
/// As if [`insert_order`] ran for each in turn: of two orders with the same external id only
/// the first is sent (the second would find it). The rows go in key order so that concurrent
/// batches wait for each other instead of deadlocking.
pub(crate) fn insert_orders(tx: &mut PgTx<'_>, orders: &[Order]) -> StoreResult<Vec<bool>> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let mut first_of_key: HashMap<(&str, &str), usize> = HashMap::with_capacity(orders.len());
    for (index, order) in orders.iter().enumerate() {
        first_of_key
            .entry((order.workspace_id.as_str(), order.external_id.as_str()))
            .or_insert(index);
    }
    let mut unique: Vec<usize> = first_of_key.values().copied().collect();
    unique.sort_by_key(|&i| {
        (
            orders[i].workspace_id.as_str(),
            orders[i].external_id.as_str(),
        )
    });

    let n = unique.len();
    let mut workspace_ids = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut customer_ids = Vec::with_capacity(n);
    let mut external_ids = Vec::with_capacity(n);
    let mut totals = Vec::with_capacity(n);
    let mut currencies = Vec::with_capacity(n);
    let mut placed_at = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut event_ids = Vec::with_capacity(n);
    // Items, flattened: each names its order by position among the orders sent.
    let mut item_orders: Vec<i32> = Vec::new();
    let mut item_indexes: Vec<i32> = Vec::new();
    let mut product_ids: Vec<Option<&str>> = Vec::new();
    let mut skus: Vec<Option<&str>> = Vec::new();
    let mut names: Vec<Option<&str>> = Vec::new();
    let mut categories: Vec<Option<&str>> = Vec::new();
    let mut prices: Vec<i64> = Vec::new();
    let mut quantities: Vec<i64> = Vec::new();
    for (position, &i) in unique.iter().enumerate() {
        let o = &orders[i];
        workspace_ids.push(o.workspace_id.as_str());
        ids.push(o.id.as_str());
        customer_ids.push(o.customer_id.as_str());
        external_ids.push(o.external_id.as_str());
        totals.push(o.total_minor);
        currencies.push(o.currency.as_str());
        placed_at.push(o.placed_at);
        sources.push(o.source.as_str());
        event_ids.push(o.event_id.as_ref().map(|e| e.as_str()));
        for (index, item) in o.items.iter().enumerate() {
            item_orders.push(position as i32 + 1);
            item_indexes.push(index as i32);
            product_ids.push(item.product_id.as_deref());
            skus.push(item.sku.as_deref());
            names.push(item.name.as_deref());
            categories.push(item.category.as_deref());
            prices.push(item.price_minor);
            quantities.push(item.quantity);
        }
    }
    let rows = tx.query(
        "WITH u AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                 $7::timestamptz[], $8::text[], $9::text[]) WITH ORDINALITY
                 AS u(workspace_id, id, customer_id, external_id, total_minor, currency, placed_at, source,
                     event_id, n)
         ), o AS (
             INSERT INTO orders (workspace_id, id, customer_id, external_id, total_minor, currency, placed_at,
                 source, event_id)
             SELECT workspace_id, id, customer_id, external_id, total_minor, currency, placed_at, source,
                 event_id
             FROM u ORDER BY n
             ON CONFLICT (workspace_id, external_id) DO NOTHING
             RETURNING workspace_id, id, external_id
         ), items AS (
             INSERT INTO order_items (workspace_id, order_id, item_index, product_id, sku, name, category,
                 price_minor, quantity)
             SELECT o.workspace_id, o.id, i.item_index, i.product_id, i.sku, i.name, i.category,
                 i.price_minor, i.quantity
             FROM unnest($10::integer[], $11::integer[], $12::text[], $13::text[], $14::text[], $15::text[],
                     $16::bigint[], $17::bigint[])
                     AS i(n, item_index, product_id, sku, name, category, price_minor, quantity)
                 JOIN u ON u.n = i.n
                 JOIN o ON o.workspace_id = u.workspace_id AND o.external_id = u.external_id
         )
         SELECT workspace_id, external_id FROM o",
        &[
            &workspace_ids,
            &ids,
            &customer_ids,
            &external_ids,
            &totals,
            &currencies,
            &placed_at,
            &sources,
            &event_ids,
            &item_orders,
            &item_indexes,
            &product_ids,
            &skus,
            &names,
            &categories,
            &prices,
            &quantities,
        ],
    )?;
    let mut inserted = vec![false; orders.len()];
    for row in &rows {
        let key: (&str, &str) = (get(row, "workspace_id")?, get(row, "external_id")?);
        if let Some(&index) = first_of_key.get(&key) {
            inserted[index] = true;
        }
    }
    Ok(inserted)
}

fn order_from(row: &Row) -> StoreResult<Order> {
    Ok(Order {
        id: rows::id(row, "id", OrderId::from_trusted)?,
        workspace_id: rows::id(row, "workspace_id", WorkspaceId::from_trusted)?,
        customer_id: rows::id(row, "customer_id", CustomerId::from_trusted)?,
        external_id: get(row, "external_id")?,
        total_minor: get(row, "total_minor")?,
        currency: get(row, "currency")?,
        placed_at: get(row, "placed_at")?,
        source: get(row, "source")?,
        event_id: rows::opt_id(row, "event_id", EventId::from_trusted)?,
        items: Vec::new(),
    })
}

fn item_from(row: &Row) -> StoreResult<OrderItem> {
    Ok(OrderItem {
        product_id: get(row, "product_id")?,
        sku: get(row, "sku")?,
        name: get(row, "name")?,
        category: get(row, "category")?,
        price_minor: get(row, "price_minor")?,
        quantity: get(row, "quantity")?,
    })
}

/// Two statements whatever the number of orders: the orders, then all their items.
pub(crate) fn orders_of(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    customers: &[CustomerId],
    limit: i64,
) -> StoreResult<Vec<Order>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let mut orders: Vec<Order> = tx
        .query(
            "SELECT id, workspace_id, customer_id, external_id, total_minor, currency, placed_at, source, event_id
             FROM orders
             WHERE workspace_id = $1 AND customer_id = ANY($2::text[])
             ORDER BY placed_at DESC, id DESC
             LIMIT $3::bigint",
            &[&workspace.as_str(), &distinct_ids(customers), &sql_limit(limit)],
        )?
        .iter()
        .map(order_from)
        .collect::<StoreResult<_>>()?;
    attach_items(tx, workspace, &mut orders)?;
    Ok(orders)
}

/// Every order of the workspace by id, after `after` (keyset pagination for export).
pub(crate) fn list_orders(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    after: Option<&OrderId>,
    limit: i64,
) -> StoreResult<Vec<Order>> {
    let after = after.map(|id| id.as_str());
    let mut orders: Vec<Order> = tx
        .query(
            "SELECT id, workspace_id, customer_id, external_id, total_minor, currency, placed_at, source, event_id
             FROM orders
             WHERE workspace_id = $1 AND ($2::text IS NULL OR id > $2::text)
             ORDER BY id
             LIMIT $3::bigint",
            &[&workspace.as_str(), &after, &sql_limit(limit)],
        )?
        .iter()
        .map(order_from)
        .collect::<StoreResult<_>>()?;
    attach_items(tx, workspace, &mut orders)?;
    Ok(orders)
}

/// Loads the items of all `orders` in one statement.
fn attach_items(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    orders: &mut [Order],
) -> StoreResult<()> {
    if orders.is_empty() {
        return Ok(());
    }
    let order_ids: Vec<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    let item_rows = tx.query(
        "SELECT order_id, product_id, sku, name, category, price_minor, quantity
         FROM order_items
         WHERE workspace_id = $1 AND order_id = ANY($2::text[])
         ORDER BY order_id, item_index",
        &[&workspace.as_str(), &order_ids],
    )?;
    let mut items_of: HashMap<String, Vec<OrderItem>> = HashMap::new();
    for row in &item_rows {
        items_of
            .entry(get(row, "order_id")?)
            .or_default()
            .push(item_from(row)?);
    }
    for order in orders.iter_mut() {
        if let Some(items) = items_of.remove(order.id.as_str()) {
            order.items = items;
        }
    }
    Ok(())
}

/// Every order of the workspace, reduced to what the whole-workspace reports sum (no items),
/// from a portal read [`SUMMARY_BATCH`] rows at a time (see [`PgTx::stream_rows`] for failures).
pub(crate) fn scan_order_summaries(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    visit: &mut dyn FnMut(OrderSummary),
) -> StoreResult<()> {
    tx.stream_rows(
        "SELECT customer_id, placed_at, total_minor FROM orders WHERE workspace_id = $1",
        &[&workspace.as_str()],
        SUMMARY_BATCH,
        "order scan",
        &mut |row| {
            visit(OrderSummary {
                customer_id: rows::id(&row, "customer_id", CustomerId::from_trusted)?,
                placed_at: get(&row, "placed_at")?,
                total_minor: get(&row, "total_minor")?,
            });
            Ok(())
        },
    )
}

pub(crate) fn order_stats_of(
    tx: &mut PgTx<'_>,
    workspace: &WorkspaceId,
    customers: &[CustomerId],
) -> StoreResult<OrderStats> {
    if customers.is_empty() {
        return Ok(OrderStats::default());
    }
    let row = tx.query_one(
        "SELECT count(*) AS orders_count, coalesce(sum(total_minor), 0)::bigint AS total_spent_minor,
                min(placed_at) AS first_order_at, max(placed_at) AS last_order_at
         FROM orders
         WHERE workspace_id = $1 AND customer_id = ANY($2::text[])",
        &[&workspace.as_str(), &distinct_ids(customers)],
    )?;
    Ok(OrderStats {
        orders_count: get(&row, "orders_count")?,
        total_spent_minor: get(&row, "total_spent_minor")?,
        first_order_at: get(&row, "first_order_at")?,
        last_order_at: get(&row, "last_order_at")?,
    })
}
