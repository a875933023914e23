//! Orders, following the Segment e-commerce spec (`Order Completed` with `order_id`,
//! `products`, `revenue`/`total`, `currency`). Money is held in minor units (centavos).

use crate::ids::{CustomerId, EventId, OrderId, WorkspaceId};
use crate::{FieldError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The event names that carry an order.
pub const ORDER_COMPLETED: &str = "Order Completed";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: Option<String>,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub price_minor: i64,
    pub quantity: i64,
}

/// An order as read from an event or a CSV row, before it is given ids and an owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderDraft {
    pub external_id: String,
    pub total_minor: i64,
    pub currency: String,
    pub items: Vec<OrderItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub external_id: String,
    pub total_minor: i64,
    pub currency: String,
    pub placed_at: Timestamp,
    /// `track`, `import`, `api`, `demo`.
    pub source: String,
    pub event_id: Option<EventId>,
    pub items: Vec<OrderItem>,
}

/// Converts an amount in major units (`129.9`) to minor units (`12990`), refusing what is not
/// a finite, non-negative number.
pub fn money_to_minor(value: &Value, field: &str) -> Result<i64, FieldError> {
    let amount = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_decimal(s),
        _ => None,
    }
    .ok_or_else(|| FieldError::new("invalid_amount", field, "expected a number"))?;
    if !amount.is_finite() || !(0.0..=1e13).contains(&amount) {
        return Err(FieldError::new(
            "invalid_amount",
            field,
            "expected a non-negative amount",
        ));
    }
    Ok((amount * 100.0).round() as i64)
}

/// Reads `129.90`, `129,90` and `1.234,56` (Brazilian) as well as `1,234.56`.
pub fn parse_decimal(raw: &str) -> Option<f64> {
    let s = raw.trim().trim_start_matches("R$").trim();
    if s.is_empty() {
        return None;
    }
    let normalised = match (s.rfind(','), s.rfind('.')) {
        (Some(c), Some(d)) if c > d => s.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => s.replace(',', ""),
        (Some(_), None) => s.replace(',', "."),
        _ => s.to_string(),
    };
    normalised.parse::<f64>().ok()
}

/// Reads an order from `Order Completed` properties.
pub fn order_from_properties(
    props: &Map<String, Value>,
    default_currency: &str,
) -> Result<OrderDraft, FieldError> {
    let external_id = match props.get("order_id").or_else(|| props.get("orderId")) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(FieldError::new(
                "missing_field",
                "properties.order_id",
                "an order needs an order_id",
            ))
        }
    };
    let mut items = Vec::new();
    if let Some(products) = props.get("products") {
        let list = products.as_array().ok_or_else(|| {
            FieldError::new("invalid_type", "properties.products", "expected a list")
        })?;
        for (i, p) in list.iter().enumerate() {
            let field = format!("properties.products[{i}]");
            let p = p
                .as_object()
                .ok_or_else(|| FieldError::new("invalid_type", &field, "expected an object"))?;
            let text = |k: &str| match p.get(k) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let price_minor = match p.get("price") {
                Some(v) => money_to_minor(v, &format!("{field}.price"))?,
                None => 0,
            };
            let quantity = match p.get("quantity") {
                None | Some(Value::Null) => 1,
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_f64().map(|f| f as i64))
                    .filter(|q| *q > 0)
                    .ok_or_else(|| {
                        FieldError::new(
                            "invalid_quantity",
                            format!("{field}.quantity"),
                            "expected a positive whole number",
                        )
                    })?,
            };
            items.push(OrderItem {
                product_id: text("product_id").or_else(|| text("id")),
                sku: text("sku"),
                name: text("name"),
                category: text("category"),
                price_minor,
                quantity,
            });
        }
    }
    let total_minor = match (props.get("total"), props.get("revenue")) {
        (Some(v), _) if !v.is_null() => money_to_minor(v, "properties.total")?,
        (_, Some(v)) if !v.is_null() => money_to_minor(v, "properties.revenue")?,
        _ => items.iter().map(|i| i.price_minor * i.quantity).sum(),
    };
    let currency = match props.get("currency") {
        Some(Value::String(c)) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
            c.to_uppercase()
        }
        None | Some(Value::Null) => default_currency.to_string(),
        Some(_) => {
            return Err(FieldError::new(
                "invalid_currency",
                "properties.currency",
                "expected an ISO 4217 code such as BRL",
            ))
        }
    };
    Ok(OrderDraft {
        external_id,
        total_minor,
        currency,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_completed_becomes_an_order_with_items() {
        let props = json!({"order_id": "50314b8e", "total": 27.5, "currency": "brl",
            "products": [{"product_id": "507f", "sku": "45790-32", "name": "Camiseta", "price": 19, "quantity": 1},
                         {"product_id": "505b", "name": "Caneca", "price": "8,50"}]});
        let o = order_from_properties(props.as_object().unwrap(), "BRL").unwrap();
        assert_eq!(o.external_id, "50314b8e");
        assert_eq!(o.total_minor, 2750);
        assert_eq!(o.currency, "BRL");
        assert_eq!(o.items.len(), 2);
        assert_eq!(o.items[1].price_minor, 850);
        assert_eq!(o.items[1].quantity, 1);
    }

    #[test]
    fn totals_fall_back_to_revenue_then_items() {
        let o = order_from_properties(
            json!({"order_id": 7, "revenue": 10}).as_object().unwrap(),
            "BRL",
        )
        .unwrap();
        assert_eq!((o.external_id.as_str(), o.total_minor), ("7", 1000));
        let o = order_from_properties(
            json!({"order_id": "x", "products": [{"price": 2.5, "quantity": 3}]})
                .as_object()
                .unwrap(),
            "BRL",
        )
        .unwrap();
        assert_eq!(o.total_minor, 750);
    }

    #[test]
    fn bad_orders_name_the_field() {
        let e = order_from_properties(json!({"total": 1}).as_object().unwrap(), "BRL").unwrap_err();
        assert_eq!(e.field, "properties.order_id");
        let e = order_from_properties(
            json!({"order_id": "a", "total": -1}).as_object().unwrap(),
            "BRL",
        )
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.field.as_str()),
            ("invalid_amount", "properties.total")
        );
    }

    #[test]
    fn decimals_in_brazilian_and_english_notation() {
        assert_eq!(parse_decimal("R$ 1.234,56"), Some(1234.56));
        assert_eq!(parse_decimal("1,234.56"), Some(1234.56));
        assert_eq!(parse_decimal("99,9"), Some(99.9));
        assert_eq!(parse_decimal("abc"), None);
    }
}
