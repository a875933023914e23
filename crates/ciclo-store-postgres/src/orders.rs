//! Orders and their items, and the order statistics of a set of profiles.

use crate::rows::{self, get};
use crate::tx::{distinct_ids, sql_limit, PgTx};
use ciclo_domain::customer::OrderStats;
use ciclo_domain::ids::*;
use ciclo_domain::order::{Order, OrderItem};
use ciclo_store::StoreResult;
use postgres::Row;
use std::collections::HashMap;

/// The order and its items in one statement: the items are inserted only when the order row
/// was (the CTE `o` is empty when the external id exists), so a repeated `Order Completed`
/// changes nothing.
pub(crate) fn insert_order(tx: &mut PgTx<'_>, order: &Order) -> StoreResult<bool> {
    let items = &order.items;
    let product_ids: Vec<Option<&str>> = items.iter().map(|i| i.product_id.as_deref()).collect();
    let skus: Vec<Option<&str>> = items.iter().map(|i| i.sku.as_deref()).collect();
    let names: Vec<Option<&str>> = items.iter().map(|i| i.name.as_deref()).collect();
    let categories: Vec<Option<&str>> = items.iter().map(|i| i.category.as_deref()).collect();
    let prices: Vec<i64> = items.iter().map(|i| i.price_minor).collect();
    let quantities: Vec<i64> = items.iter().map(|i| i.quantity).collect();
    let event_id = order.event_id.as_ref().map(|e| e.as_str());
    let row = tx.query_one(
        "WITH o AS (
             INSERT INTO orders (workspace_id, id, customer_id, external_id, total_minor, currency, placed_at,
                 source, event_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (workspace_id, external_id) DO NOTHING
             RETURNING id
         ), items AS (
             INSERT INTO order_items (workspace_id, order_id, item_index, product_id, sku, name, category,
                 price_minor, quantity)
             SELECT $1, o.id, (i.n - 1)::integer, i.product_id, i.sku, i.name, i.category, i.price_minor,
                 i.quantity
             FROM o CROSS JOIN unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[],
                 $15::bigint[]) WITH ORDINALITY AS i(product_id, sku, name, category, price_minor, quantity, n)
         )
         SELECT count(*) AS inserted FROM o",
        &[
            &order.workspace_id.as_str(),
            &order.id.as_str(),
            &order.customer_id.as_str(),
            &order.external_id,
            &order.total_minor,
            &order.currency,
            &order.placed_at,
            &order.source,
            &event_id,
            &product_ids,
            &skus,
            &names,
            &categories,
            &prices,
            &quantities,
        ],
    )?;
    Ok(get::<i64>(&row, "inserted")? == 1)
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
