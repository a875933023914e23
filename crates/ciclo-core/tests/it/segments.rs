//! Segments, lists and lifecycle stages: real-time membership, scheduled re-evaluation,
//! timeline events, previews, static lists and stored stages.

use crate::{harness, postgres_harness, Harness};
use ciclo_core::evaluate::{SEGMENT_ENTERED, SEGMENT_EXITED, STAGE_CHANGED};
use ciclo_core::segments::SegmentInput;
use ciclo_core::CoreError;
use ciclo_domain::ids::{CustomerId, SegmentId};
use ciclo_domain::lifecycle::{LifecycleRules, Stage};
use ciclo_store::{CustomerQuery, TimelineQuery};
use serde_json::{json, Value};
use std::collections::HashSet;

fn dynamic(name: &str, text: &str) -> SegmentInput {
    SegmentInput {
        name: Some(name.into()),
        definition: Some(Value::String(text.into())),
        ..Default::default()
    }
}

fn list(name: &str) -> SegmentInput {
    SegmentInput {
        name: Some(name.into()),
        kind: Some("static".into()),
        ..Default::default()
    }
}

impl Harness {
    fn customer_of(&self, user_id: &str) -> CustomerId {
        let page = self
            .app
            .list_customers(
                &self.actor,
                CustomerQuery {
                    search: None,
                    limit: 500,
                    ..Default::default()
                },
                None,
            )
            .unwrap();
        for c in page.items {
            let view = self.app.get_customer(&self.actor, &c.id).unwrap();
            if view
                .identities
                .iter()
                .any(|i| i.key.kind.as_string() == "user_id" && i.key.value == user_id)
            {
                return c.id;
            }
        }
        panic!("no customer with user id {user_id}");
    }

    fn members(&self, segment: &SegmentId) -> HashSet<CustomerId> {
        self.app
            .list_customers(
                &self.actor,
                CustomerQuery {
                    segment: Some(segment.clone()),
                    limit: 500,
                    ..Default::default()
                },
                None,
            )
            .unwrap()
            .items
            .into_iter()
            .map(|c| c.id)
            .collect()
    }

    fn system_events(&self, customer: &CustomerId, name: &str) -> Vec<ciclo_domain::event::Event> {
        self.app
            .timeline(
                &self.actor,
                customer,
                TimelineQuery {
                    names: vec![name.into()],
                    limit: 100,
                    ..Default::default()
                },
                None,
            )
            .unwrap()
            .items
    }

    fn settle(&self) {
        self.app.evaluate_pending(usize::MAX).unwrap();
    }
}

fn view(user: &str, at: &str, n: u32) -> Value {
    json!({"type": "track", "event": "Product Viewed", "userId": user,
           "messageId": format!("view-{user}-{n}"), "timestamp": at,
           "properties": {"category": "Calçados"}})
}

#[test]
fn events_move_customers_in_real_time_and_time_moves_them_out() {
    let h = harness();
    let segment = h
        .app
        .create_segment(
            &h.actor,
            &dynamic(
                "Interessados",
                r#"performed "Product Viewed" at least 2 times in the last 7 days where category = "calcados""#,
            ),
        )
        .unwrap();
    assert!(segment.time_relative);
    assert_eq!(segment.record.member_count, 0);

    h.ingest(vec![view("u1", "2026-05-30T10:00:00Z", 1)]);
    h.settle();
    let u1 = h.customer_of("u1");
    assert!(h.members(&segment.record.id).is_empty());

    h.ingest(vec![view("u1", "2026-05-31T10:00:00Z", 2)]);
    h.settle();
    assert_eq!(h.members(&segment.record.id), HashSet::from([u1.clone()]));
    let entered = h.system_events(&u1, SEGMENT_ENTERED);
    assert_eq!(entered.len(), 1);
    assert_eq!(entered[0].properties["segment_name"], "Interessados");
    assert_eq!(
        entered[0].properties["segment_id"],
        segment.record.id.as_str()
    );
    assert_eq!(
        h.app
            .get_segment(&h.actor, &segment.record.id)
            .unwrap()
            .record
            .member_count,
        1
    );

    // Eight days later the views fall out of the window: only the schedule can notice.
    h.clock.advance(chrono::Duration::days(8));
    h.settle();
    assert_eq!(h.members(&segment.record.id).len(), 1, "nothing marked yet");
    h.app
        .refresh_workspace(&h.actor.workspace.id, None, true, &HashSet::new())
        .unwrap();
    assert!(h.members(&segment.record.id).is_empty());
    assert_eq!(h.system_events(&u1, SEGMENT_EXITED).len(), 1);
    let history = h
        .app
        .segment_history(
            &h.actor,
            &segment.record.id,
            crate::t("2026-01-01T00:00:00Z"),
        )
        .unwrap();
    assert_eq!(history.last().unwrap().count, 0);
    assert!(history.iter().any(|p| p.count == 1) || history.len() >= 2);
}

#[test]
fn profile_changes_and_nested_segments_are_followed() {
    let h = harness();
    let recife = h
        .app
        .create_segment(&h.actor, &dynamic("Recife", r#"city = "recife""#))
        .unwrap();
    let buyers = h
        .app
        .create_segment(
            &h.actor,
            &dynamic(
                "Compradores de Recife",
                r#"in segment "recife" and orders_count >= 1"#,
            ),
        )
        .unwrap();
    h.ingest(vec![
        json!({"type": "identify", "userId": "u2", "messageId": "i-1",
               "traits": {"email": "ana@exemplo.com.br", "city": "Recife"}}),
        json!({"type": "identify", "userId": "u3", "messageId": "i-2",
               "traits": {"city": "Olinda"}}),
    ]);
    h.settle();
    let u2 = h.customer_of("u2");
    assert_eq!(h.members(&recife.record.id), HashSet::from([u2.clone()]));
    assert!(h.members(&buyers.record.id).is_empty());

    h.ingest(vec![
        json!({"type": "track", "event": "Order Completed", "userId": "u2",
        "messageId": "o-1", "properties": {"order_id": "A1", "total": 99.9}}),
    ]);
    h.settle();
    assert_eq!(h.members(&buyers.record.id), HashSet::from([u2.clone()]));

    // An operator moves her to another city: out of both.
    let mut patch = serde_json::Map::new();
    patch.insert("city".into(), json!("Caruaru"));
    h.app.update_customer(&h.actor, &u2, &patch).unwrap();
    h.settle();
    assert!(h.members(&recife.record.id).is_empty());
    assert!(h.members(&buyers.record.id).is_empty());
    assert_eq!(h.system_events(&u2, SEGMENT_EXITED).len(), 2);

    // A segment others include by name cannot be renamed or deleted; the includer can.
    let rename = SegmentInput {
        name: Some("Recife e região".into()),
        ..Default::default()
    };
    let err = h
        .app
        .update_segment(&h.actor, &recife.record.id, &rename)
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Conflict(e) if e.code == "segment_in_use" && e.field == "name"),
        "{err:?}"
    );
    let err = h
        .app
        .delete_segment(&h.actor, &recife.record.id)
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Conflict(e) if e.code == "segment_in_use"),
        "{err:?}"
    );
    h.app.delete_segment(&h.actor, &buyers.record.id).unwrap();
    h.app.delete_segment(&h.actor, &recife.record.id).unwrap();
    assert!(h.app.list_segments(&h.actor).unwrap().is_empty());
}

#[test]
fn definitions_are_checked_with_positions_and_loops_refused() {
    let h = harness();
    let err = h
        .app
        .create_segment(&h.actor, &dynamic("Ruim", "city = "))
        .unwrap_err();
    let CoreError::Invalid(errors) = err else {
        panic!("expected invalid, got {err:?}")
    };
    assert!(errors[0].field.starts_with("definition"), "{errors:?}");
    assert!(errors[0].reason.contains("column"), "{errors:?}");

    let err = h
        .app
        .create_segment(&h.actor, &dynamic("Ruim", "orders_count > \"muitos\""))
        .unwrap_err();
    assert!(matches!(err, CoreError::Invalid(_)), "{err:?}");

    let err = h
        .app
        .create_segment(&h.actor, &dynamic("Ruim", r#"in segment "nao existe""#))
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Invalid(e) if e[0].code == "unknown_segment"),
        "{err:?}"
    );

    let a = h
        .app
        .create_segment(&h.actor, &dynamic("A", "orders_count >= 1"))
        .unwrap();
    h.app
        .create_segment(&h.actor, &dynamic("B", r#"in segment "A""#))
        .unwrap();
    let err = h
        .app
        .update_segment(
            &h.actor,
            &a.record.id,
            &SegmentInput {
                definition: Some(json!(r#"in segment "B""#)),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Invalid(e) if e[0].code == "cyclic_reference"),
        "{err:?}"
    );
    // Names are unique without regard to case.
    let err = h
        .app
        .create_segment(&h.actor, &dynamic("a", "orders_count >= 2"))
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Conflict(e) if e.code == "segment_name_taken"),
        "{err:?}"
    );
    // The JSON form is accepted as well.
    let json_form = SegmentInput {
        name: Some("Json".into()),
        definition: Some(json!({"type": "attribute", "attribute": "city",
                                "test": {"op": "eq", "value": "Recife"}})),
        ..Default::default()
    };
    let created = h.app.create_segment(&h.actor, &json_form).unwrap();
    assert_eq!(created.text.as_deref(), Some(r#"city = "Recife""#));
}

#[test]
fn preview_counts_without_saving() {
    let h = harness();
    let mut batch = Vec::new();
    for i in 0..30 {
        batch.push(json!({"type": "identify", "userId": format!("p{i}"), "messageId": format!("p-{i}"),
            "traits": {"city": if i % 3 == 0 { "Recife" } else { "Natal" }, "plan": if i < 5 { "gold" } else { "free" }}}));
    }
    h.ingest(batch);
    let preview = h
        .app
        .preview_segment(
            &h.actor,
            &json!(r#"city = "Recife" or traits.plan = "gold""#),
            4,
        )
        .unwrap();
    // Recife: 0,3,…,27 (10); gold: 0–4, of which 0 and 3 are in Recife already.
    assert_eq!(preview.count, 13);
    assert_eq!(preview.customers, 30);
    assert_eq!(preview.sample.len(), 4);
    assert!(h.app.list_segments(&h.actor).unwrap().is_empty());

    // Definitions an index can narrow give the same answers as a full scan.
    let count = |text: &str| h.app.preview_segment(&h.actor, &json!(text), 50).unwrap();
    let narrowed = count(r#"city = "recife" and traits.plan = "gold""#);
    assert_eq!(narrowed.count, 2);
    // The segment index evaluates every profile at once.
    assert_eq!(narrowed.customers, 30);
    assert_eq!(
        count(r#"not (city != "Recife") and traits.plan = "gold""#).count,
        2
    );
    let mut views = Vec::new();
    for i in 0..6 {
        views.push(view(&format!("p{i}"), "2026-05-31T10:00:00Z", i));
        if i % 2 == 0 {
            views.push(view(&format!("p{i}"), "2026-05-30T10:00:00Z", 100 + i));
        }
    }
    h.ingest(views);
    let twice = count(r#"performed "Product Viewed" at least 2 times in the last 7 days"#);
    assert_eq!(twice.count, 3);
    assert_eq!(twice.customers, 30);
    assert_eq!(twice.sample.len(), 3);
    let filtered_only = count(
        r#"performed "Product Viewed" at least 2 times where category = "calcados" and not performed "Product Viewed" in the last 1 hours"#,
    );
    assert_eq!(filtered_only.count, 3);
    let none = count(r#"performed "Product Viewed" at least 2 times where category = "Roupas""#);
    assert_eq!(none.count, 0);
    assert!(none.sample.is_empty());
    let filtered = count(
        r#"performed "Product Viewed" at least 2 times where category = "Roupas" or city = "Recife""#,
    );
    assert_eq!(filtered.count, 10);
    let in_recife = count(r#"performed "Product Viewed" and city = "Recife""#);
    // Viewers p0–p5; of them p0 and p3 live in Recife.
    assert_eq!(in_recife.count, 2);
}

#[test]
fn static_lists_by_hand_and_csv_feed_dynamic_segments() {
    let h = harness();
    h.ingest(vec![
        json!({"type": "identify", "userId": "l1", "messageId": "l-1", "traits": {"email": "um@exemplo.com"}}),
        json!({"type": "identify", "userId": "l2", "messageId": "l-2", "traits": {"email": "dois@exemplo.com", "phone": "+55 11 98765-4321"}}),
        json!({"type": "identify", "userId": "l3", "messageId": "l-3", "traits": {"email": "tres@exemplo.com"}}),
    ]);
    h.settle();
    let vip = h.app.create_segment(&h.actor, &list("VIP")).unwrap();
    let includes = h
        .app
        .create_segment(
            &h.actor,
            &dynamic("VIP sem pedido", r#"in segment "VIP" and orders_count = 0"#),
        )
        .unwrap();
    let l1 = h.customer_of("l1");
    let change = h
        .app
        .add_to_list(
            &h.actor,
            &vip.record.id,
            &[l1.to_string(), "cus_nope".into()],
        )
        .unwrap();
    assert_eq!(change.changed, 1);
    assert_eq!(change.rejected.len(), 1);
    assert_eq!(change.rejected[0].code, "invalid_id");

    let csv = "nome;e-mail\nDois;dois@exemplo.com\nNinguém;ninguem@exemplo.com\nUm;um@exemplo.com\nRuim;não é email\n";
    let change = h
        .app
        .list_from_csv(&h.actor, &vip.record.id, csv.as_bytes(), false)
        .unwrap();
    assert_eq!(change.changed, 1, "dois is new");
    assert_eq!(change.unchanged, 1, "um was in already");
    let lines: Vec<(u64, &str)> = change
        .rejected
        .iter()
        .map(|r| (r.line, r.code.as_str()))
        .collect();
    assert_eq!(lines, vec![(3, "not_found"), (5, "invalid_value")]);
    let l2 = h.customer_of("l2");
    assert_eq!(
        h.members(&vip.record.id),
        HashSet::from([l1.clone(), l2.clone()])
    );
    assert_eq!(h.system_events(&l2, SEGMENT_ENTERED).len(), 1, "the list");

    h.settle();
    assert_eq!(
        h.members(&includes.record.id),
        HashSet::from([l1.clone(), l2.clone()])
    );
    assert_eq!(
        h.system_events(&l2, SEGMENT_ENTERED).len(),
        2,
        "list and dynamic segment"
    );

    // Removing by phone, through a CSV.
    let change = h
        .app
        .list_from_csv(
            &h.actor,
            &vip.record.id,
            b"telefone\n(11) 98765-4321\n",
            true,
        )
        .unwrap();
    assert_eq!(change.changed, 1);
    h.settle();
    assert_eq!(h.members(&vip.record.id), HashSet::from([l1.clone()]));
    assert_eq!(h.members(&includes.record.id), HashSet::from([l1]));

    // Dynamic segments take no hand-made members.
    let err = h
        .app
        .add_to_list(&h.actor, &includes.record.id, &[l2.to_string()])
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Invalid(e) if e[0].code == "not_a_list"),
        "{err:?}"
    );
}

#[test]
fn lifecycle_stages_are_stored_with_history_and_follow_the_rules() {
    let h = harness();
    h.ingest(vec![
        json!({"type": "identify", "userId": "c1", "messageId": "c-1", "traits": {"name": "Clara"}}),
    ]);
    h.settle();
    let c1 = h.customer_of("c1");
    let life = h.app.customer_lifecycle(&h.actor, &c1).unwrap();
    assert_eq!(life.stage, Some(Stage::Reach));

    h.ingest(vec![
        json!({"type": "track", "event": "Order Completed", "userId": "c1",
        "messageId": "c-o1", "timestamp": "2026-06-01T09:00:00Z",
        "properties": {"order_id": "C1", "total": 120.0}}),
    ]);
    h.settle();
    let life = h.app.customer_lifecycle(&h.actor, &c1).unwrap();
    assert_eq!(life.stage, Some(Stage::Acquisition));
    assert_eq!(life.history.len(), 2);
    assert_eq!(life.history[0].from, Some(Stage::Reach));
    let changed = h.system_events(&c1, STAGE_CHANGED);
    assert_eq!(changed.len(), 2);
    assert!(
        changed
            .iter()
            .any(|e| e.properties["to"] == "acquisition" && e.properties["from"] == "reach"),
        "{changed:?}"
    );

    let in_acquisition = h
        .app
        .list_customers(
            &h.actor,
            CustomerQuery {
                stage: Some(Stage::Acquisition),
                limit: 10,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(in_acquisition.items.len(), 1);

    // A month and a bit later the schedule moves her to nurture.
    h.clock.advance(chrono::Duration::days(35));
    h.app
        .refresh_workspace(&h.actor.workspace.id, None, true, &HashSet::new())
        .unwrap();
    assert_eq!(
        h.app.customer_lifecycle(&h.actor, &c1).unwrap().stage,
        Some(Stage::Nurture)
    );
    // Stricter rules (at risk after 30 days) take effect at once.
    let rules = LifecycleRules {
        at_risk_after_days: 30,
        ..LifecycleRules::default()
    };
    h.app.set_lifecycle_rules(&h.actor, &rules).unwrap();
    let life = h.app.customer_lifecycle(&h.actor, &c1).unwrap();
    assert_eq!(life.stage, Some(Stage::AtRisk));
    assert_eq!(life.history.len(), 4);
    let counts = h.app.stage_counts(&h.actor).unwrap();
    assert!(counts.contains(&(Stage::AtRisk, 1)));
    let flow = h
        .app
        .stage_flow(
            &h.actor,
            crate::t("2026-05-01T00:00:00Z"),
            crate::t("2026-12-01T00:00:00Z"),
        )
        .unwrap();
    assert!(flow
        .iter()
        .any(|f| f.from == Some(Stage::Nurture) && f.to == Stage::AtRisk && f.customers == 1));

    // Bad rules are refused field by field.
    let bad = LifecycleRules {
        lapsed_after_days: 10,
        loyalty_min_orders: 1,
        ..LifecycleRules::default()
    };
    let err = h.app.set_lifecycle_rules(&h.actor, &bad).unwrap_err();
    let CoreError::Invalid(errors) = err else {
        panic!("{err:?}")
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"lapsed_after_days"), "{fields:?}");
    assert!(fields.contains(&"loyalty_min_orders"), "{fields:?}");
}

#[test]
fn stored_scores_are_usable_in_segments() {
    let h = harness();
    let mut batch = Vec::new();
    for i in 0..20 {
        for k in 0..=(i % 4) {
            batch.push(
                json!({"type": "track", "event": "Order Completed", "userId": format!("s{i}"),
                "messageId": format!("s-{i}-{k}"),
                "timestamp": format!("2026-0{}-1{}T10:00:00Z", 1 + (k % 5), i % 10),
                "properties": {"order_id": format!("S{i}-{k}"), "total": 50.0 + (i * 10) as f64}}),
            );
        }
    }
    h.ingest(batch);
    h.settle();
    let scored = h.app.refresh_scores(&h.actor.workspace.id).unwrap();
    assert_eq!(scored, 20);
    let champions = h
        .app
        .preview_segment(&h.actor, &json!(r#"rfm_group is set"#), 50)
        .unwrap();
    assert_eq!(champions.count, 20);
    let seg = h
        .app
        .create_segment(&h.actor, &dynamic("Ativos", "p_alive > 0"))
        .unwrap();
    assert!(seg.record.member_count > 0, "{seg:?}");
}

#[test]
fn merged_away_profiles_leave_their_segments() {
    let h = harness();
    let seg = h
        .app
        .create_segment(&h.actor, &dynamic("Todos", "everyone"))
        .unwrap();
    h.ingest(vec![
        json!({"type": "page", "name": "Home", "anonymousId": "anon-1", "messageId": "m-a"}),
        json!({"type": "identify", "userId": "m1", "messageId": "m-b", "traits": {"email": "m@exemplo.com"}}),
    ]);
    h.settle();
    assert_eq!(h.members(&seg.record.id).len(), 2);
    // The visitor signs in: the anonymous profile merges into m1.
    h.ingest(vec![
        json!({"type": "identify", "userId": "m1", "anonymousId": "anon-1", "messageId": "m-c"}),
    ]);
    h.settle();
    let m1 = h.customer_of("m1");
    assert_eq!(h.members(&seg.record.id), HashSet::from([m1]));
    assert_eq!(
        h.app
            .get_segment(&h.actor, &seg.record.id)
            .unwrap()
            .record
            .member_count,
        1
    );
}

/// The in-memory segment index is built on the first preview and must then follow every kind
/// of change: profile edits still in the evaluation queue, events the evaluator has cleared, a
/// merge (the loser's events count for the winner) and its undoing; and a saved segment's
/// members (computed from the index) must agree with the preview.
#[test]
fn the_segment_index_follows_every_change() {
    index_follows_changes(&harness());
}

#[test]
fn the_segment_index_follows_every_change_on_postgres() {
    if let Some(h) = postgres_harness("the_segment_index_follows_every_change_on_postgres") {
        index_follows_changes(&h);
    }
}

fn index_follows_changes(h: &Harness) {
    let mut batch = Vec::new();
    for (i, city) in [(1, "Recife"), (2, "Recife"), (3, "Natal"), (4, "Natal")] {
        batch.push(
            json!({"type": "identify", "userId": format!("u{i}"), "messageId": format!("u-{i}"),
            "traits": {"city": city}}),
        );
    }
    batch.push(view("u1", "2026-05-31T10:00:00Z", 1));
    batch.push(view("u1", "2026-05-31T11:00:00Z", 2));
    batch.push(view("u2", "2026-05-31T10:00:00Z", 1));
    batch.push(view("u3", "2026-05-31T10:00:00Z", 1));
    h.ingest(batch);
    h.settle();
    let preview = |text: &str| h.app.preview_segment(&h.actor, &json!(text), 10).unwrap();
    let recife = r#"city = "Recife""#;
    let twice = r#"performed "Product Viewed" at least 2 times in the last 7 days"#;
    assert_eq!(preview(recife).count, 2);
    assert_eq!(preview(twice).count, 1);

    // A profile edit still waiting in the queue is read before answering.
    h.ingest(vec![
        json!({"type": "identify", "userId": "u3", "messageId": "u-3b", "traits": {"city": "Recife"}}),
    ]);
    assert_eq!(preview(recife).count, 3);

    // Events the evaluator has already cleared from the queue are read too.
    h.ingest(vec![
        view("u4", "2026-05-31T10:00:00Z", 1),
        view("u4", "2026-05-31T12:00:00Z", 2),
    ]);
    h.settle();
    let found = preview(twice);
    assert_eq!(found.count, 2);
    let u1 = h.customer_of("u1");
    let u4 = h.customer_of("u4");
    let mut sample: Vec<CustomerId> = found.sample.iter().map(|c| c.id.clone()).collect();
    sample.sort();
    let mut expected = vec![u1.clone(), u4.clone()];
    expected.sort();
    assert_eq!(sample, expected);

    // u3 merged into u2: u2 now has two views, and u3 is nobody's member.
    let u2 = h.customer_of("u2");
    let u3 = h.customer_of("u3");
    let merge = h.app.merge_customers(&h.actor, &u2, &u3, true).unwrap();
    let merged = preview(twice);
    assert_eq!(merged.count, 3);
    assert_eq!(merged.customers, 3, "the merged-away profile is no one");
    assert!(merged.sample.iter().any(|c| c.id == u2));
    assert!(merged.sample.iter().all(|c| c.id != u3));

    // Saved, the segment has the members the preview found, with one entry event each.
    let saved = h
        .app
        .create_segment(
            &h.actor,
            &SegmentInput {
                name: Some("Twice".into()),
                definition: Some(json!(twice)),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(saved.record.member_count, 3);

    // Undone: u2 is back to one view and leaves the saved segment once evaluated.
    h.app.unmerge(&h.actor, &merge.id).unwrap();
    let unmerged = preview(twice);
    assert_eq!(unmerged.count, 2);
    assert_eq!(unmerged.customers, 4);
    h.settle();
    let segments_of_u2 = h.app.customer_segments(&h.actor, &u2).unwrap();
    assert!(segments_of_u2
        .iter()
        .all(|(s, _)| s.record.id != saved.record.id));
    let refreshed = h.app.get_segment(&h.actor, &saved.record.id).unwrap();
    assert_eq!(refreshed.record.member_count, 2);
}

/// Past a number of changed profiles the index is rebuilt instead of re-reading them, keeping
/// what it held; answers stay right either way.
#[test]
fn a_segment_index_with_too_many_changes_is_rebuilt() {
    let h = harness();
    h.app.set_segment_index_rebuild_after(2);
    let mut batch = Vec::new();
    for i in 0..6 {
        batch.push(
            json!({"type": "identify", "userId": format!("r{i}"), "messageId": format!("r-{i}"),
            "traits": {"city": "Natal"}}),
        );
    }
    h.ingest(batch);
    h.settle();
    let preview = |text: &str| h.app.preview_segment(&h.actor, &json!(text), 10).unwrap();
    assert_eq!(preview(r#"city = "Recife""#).count, 0);
    assert!(!h.app.segment_index_needs_rebuild());

    // Four profiles move (more than 2): cleared by the evaluator, too many to re-read.
    let moves: Vec<Value> = (0..4)
        .map(|i| json!({"type": "identify", "userId": format!("r{i}"), "messageId": format!("r-move-{i}"),
            "traits": {"city": "Recife"}}))
        .collect();
    h.ingest(moves);
    h.settle();
    assert!(h.app.segment_index_needs_rebuild());
    h.app.rebuild_segment_index(&h.actor.workspace.id).unwrap();
    assert!(!h.app.segment_index_needs_rebuild());
    assert_eq!(preview(r#"city = "Recife""#).count, 4);

    // Once more, answered by the next preview's own rebuild.
    let back: Vec<Value> = (0..3)
        .map(|i| json!({"type": "identify", "userId": format!("r{i}"), "messageId": format!("r-back-{i}"),
            "traits": {"city": "Natal"}}))
        .collect();
    h.ingest(back);
    h.settle();
    assert!(h.app.segment_index_needs_rebuild());
    assert_eq!(preview(r#"city = "Recife""#).count, 1);
    assert_eq!(preview(r#"city = "Natal""#).count, 5);
}
