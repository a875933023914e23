//! Ingestion: de-duplication, partial batches, orders and profile stats.

use crate::harness;
use ciclo_store::{CustomerQuery, TimelineQuery};
use serde_json::json;

#[test]
fn a_retried_message_is_stored_once_and_bad_messages_do_not_drop_good_ones() {
    let h = harness();
    let batch = vec![
        json!({"type": "track", "event": "Product Viewed", "userId": "u1", "messageId": "m-1", "timestamp": "2026-05-01T10:00:00Z"}),
        json!({"type": "track", "userId": "u1", "messageId": "m-bad"}),
        json!({"type": "page", "name": "Home", "anonymousId": "a1", "messageId": "m-2"}),
        json!({"type": "track", "event": "Product Viewed", "userId": "u1", "messageId": "m-1"}),
    ];
    let report = h.ingest(batch.clone());
    assert_eq!(report.accepted, 2);
    assert_eq!(report.duplicates, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].index, 1);
    assert_eq!(report.rejected[0].code, "missing_field");
    assert_eq!(report.rejected[0].field, "event");
    let again = h.ingest(batch);
    assert_eq!(again.accepted, 0);
    assert_eq!(again.duplicates, 3);
    let page = h
        .app
        .list_customers(
            &h.actor,
            CustomerQuery {
                limit: 50,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(page.items.len(), 2, "u1 and the anonymous visitor");
}

#[test]
fn order_completed_lands_in_orders_and_keeps_stats_current() {
    let h = harness();
    let order = |id: &str, total: f64, at: &str| {
        json!({"type": "track", "event": "Order Completed", "userId": "u9", "messageId": format!("msg-{id}"), "timestamp": at,
               "properties": {"order_id": id, "total": total, "currency": "BRL",
                              "products": [{"product_id": "p1", "name": "Camiseta", "price": total, "quantity": 1}]}})
    };
    let r = h.ingest(vec![
        order("o1", 100.0, "2026-01-10T10:00:00Z"),
        order("o2", 50.5, "2026-03-10T10:00:00Z"),
    ]);
    assert_eq!(r.accepted, 2);
    // The same order under another message id is not counted twice.
    let r = h.ingest(vec![
        json!({"type": "track", "event": "Order Completed", "userId": "u9", "messageId": "other",
                                 "properties": {"order_id": "o1", "total": 100.0}}),
    ]);
    assert_eq!(r.accepted, 1);
    let page = h
        .app
        .list_customers(
            &h.actor,
            CustomerQuery {
                limit: 10,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    let c = &page.items[0];
    assert_eq!(c.stats.orders_count, 2);
    assert_eq!(c.stats.total_spent_minor, 15050);
    assert_eq!(
        c.stats.first_order_at,
        Some(crate::t("2026-01-10T10:00:00Z"))
    );
    let orders = h.app.customer_orders(&h.actor, &c.id, 10).unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0].external_id, "o2", "newest first");
    assert_eq!(orders[0].items[0].name.as_deref(), Some("Camiseta"));
}

#[test]
fn identify_sets_profile_fields_and_rejects_bad_traits() {
    let h = harness();
    let r = h.ingest(vec![
        json!({"type": "identify", "userId": "u1", "messageId": "i1",
               "traits": {"firstName": "Ana", "lastName": "Souza", "email": "Ana@Loja.com.br", "phone": "(11) 98765-4321", "plan": "ouro"}}),
        json!({"type": "identify", "userId": "u2", "messageId": "i2", "traits": {"email": "not-an-email"}}),
    ]);
    assert_eq!(r.accepted, 1);
    assert_eq!(
        (r.rejected[0].code.as_str(), r.rejected[0].field.as_str()),
        ("invalid_email", "traits.email")
    );
    let found = h
        .app
        .list_customers(
            &h.actor,
            CustomerQuery {
                search: Some("ana".into()),
                limit: 10,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(found.items.len(), 1);
    let view = h.app.get_customer(&h.actor, &found.items[0].id).unwrap();
    assert_eq!(
        view.customer.email.as_ref().unwrap().as_str(),
        "ana@loja.com.br"
    );
    assert_eq!(
        view.customer.phone.as_ref().unwrap().as_str(),
        "+5511987654321"
    );
    assert_eq!(view.customer.traits["plan"], json!("ouro"));
    let kinds: Vec<String> = view
        .identities
        .iter()
        .map(|i| i.key.kind.as_string())
        .collect();
    assert!(
        kinds.contains(&"email".to_string())
            && kinds.contains(&"phone".to_string())
            && kinds.contains(&"user_id".to_string())
    );
}

#[test]
fn timeline_is_newest_first_filterable_and_paginated() {
    let h = harness();
    let mut batch = Vec::new();
    for i in 0..25 {
        batch.push(json!({"type": if i % 5 == 0 { "page" } else { "track" }, "event": "Product Viewed", "name": "Home",
            "userId": "u1", "messageId": format!("m{i}"), "timestamp": format!("2026-05-01T10:{:02}:00Z", i),
            "properties": {"channel": if i % 2 == 0 { "web" } else { "email" }}}));
    }
    h.ingest(batch);
    let id = h
        .app
        .list_customers(
            &h.actor,
            CustomerQuery {
                limit: 1,
                ..Default::default()
            },
            None,
        )
        .unwrap()
        .items[0]
        .id
        .clone();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = h
            .app
            .timeline(
                &h.actor,
                &id,
                TimelineQuery {
                    limit: 10,
                    ..Default::default()
                },
                cursor.as_deref(),
            )
            .unwrap();
        seen.extend(page.items.iter().map(|e| e.timestamp));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let pages = h
        .app
        .timeline(
            &h.actor,
            &id,
            TimelineQuery {
                limit: 50,
                event_types: vec![ciclo_domain::event::EventType::Page],
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(pages.items.len(), 5);
    let email = h
        .app
        .timeline(
            &h.actor,
            &id,
            TimelineQuery {
                limit: 50,
                channels: vec!["email".into()],
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert!(email.items.iter().all(|e| e.channel == "email"));
    assert_eq!(email.items.len(), 12);
}
