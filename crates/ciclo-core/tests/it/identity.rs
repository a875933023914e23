//! The identity graph: anonymous visitors become known, shared identifiers merge, different
//! user ids never merge, and a merge can be undone.

use crate::harness;
use ciclo_store::{CustomerQuery, TimelineQuery};
use serde_json::json;

fn roots(h: &crate::Harness) -> Vec<ciclo_domain::customer::Customer> {
    h.app
        .list_customers(
            &h.actor,
            CustomerQuery {
                limit: 100,
                ..Default::default()
            },
            None,
        )
        .unwrap()
        .items
}

#[test]
fn an_anonymous_visitor_who_signs_up_keeps_their_history() {
    let h = harness();
    h.ingest(vec![
        json!({"type": "page", "name": "Home", "anonymousId": "anon-1", "messageId": "p1", "timestamp": "2026-05-01T10:00:00Z"}),
        json!({"type": "track", "event": "Product Viewed", "anonymousId": "anon-1", "messageId": "p2", "timestamp": "2026-05-01T10:01:00Z"}),
    ]);
    h.ingest(vec![
        json!({"type": "identify", "userId": "u1", "anonymousId": "anon-1", "messageId": "i1",
                         "traits": {"email": "bia@loja.com.br"}}),
    ]);
    let all = roots(&h);
    assert_eq!(all.len(), 1, "no duplicate profile");
    let timeline = h
        .app
        .timeline(
            &h.actor,
            &all[0].id,
            TimelineQuery {
                limit: 50,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(timeline.items.len(), 3);
}

#[test]
fn a_shared_identifier_merges_two_profiles_and_undo_restores_both() {
    let h = harness();
    // A known customer, and a separate anonymous profile with its own events.
    h.ingest(vec![json!({"type": "identify", "userId": "u1", "messageId": "i1", "traits": {"email": "caio@loja.com.br"}})]);
    h.ingest(vec![
        json!({"type": "identify", "anonymousId": "anon-9", "messageId": "i2", "traits": {"phone": "+55 21 99876-5432", "city": "Niterói"}}),
        json!({"type": "track", "event": "Added to Cart", "anonymousId": "anon-9", "messageId": "t1"}),
    ]);
    assert_eq!(roots(&h).len(), 2);
    // One message reveals both identifiers: the anonymous profile merges into the known one.
    h.ingest(vec![json!({"type": "track", "event": "Checkout Started", "userId": "u1", "anonymousId": "anon-9", "messageId": "t2"})]);
    let all = roots(&h);
    assert_eq!(all.len(), 1);
    let view = h.app.get_customer(&h.actor, &all[0].id).unwrap();
    assert_eq!(view.profile_ids.len(), 2);
    assert_eq!(
        view.customer.city.as_deref(),
        Some("Niterói"),
        "gaps filled from the merged profile"
    );
    assert_eq!(view.merges.len(), 1);
    let merge = &view.merges[0];
    assert_eq!(merge.via.as_ref().unwrap().value, "anon-9");
    assert_eq!(merge.message_id.as_deref(), Some("t2"));
    let timeline = h
        .app
        .timeline(
            &h.actor,
            &view.customer.id,
            TimelineQuery {
                limit: 50,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(timeline.items.len(), 4);

    // Undo: both profiles again, each with its own identities and events.
    h.app.unmerge(&h.actor, &merge.id).unwrap();
    let all = roots(&h);
    assert_eq!(all.len(), 2);
    let known = h.app.get_customer(&h.actor, &view.customer.id).unwrap();
    assert_eq!(
        known.customer.city, None,
        "the filled field is cleared again"
    );
    let other = all.iter().find(|c| c.id != known.customer.id).unwrap();
    let other_view = h.app.get_customer(&h.actor, &other.id).unwrap();
    assert!(other_view
        .identities
        .iter()
        .any(|i| i.key.value == "+5521998765432"));
    let other_events = h
        .app
        .timeline(
            &h.actor,
            &other.id,
            TimelineQuery {
                limit: 50,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(other_events.items.len(), 2);
    assert!(
        h.app.unmerge(&h.actor, &merge.id).is_err(),
        "undo twice is refused"
    );
}

#[test]
fn two_different_user_ids_never_merge_automatically() {
    let h = harness();
    h.ingest(vec![json!({"type": "identify", "userId": "u1", "messageId": "i1", "traits": {"email": "casal@loja.com.br"}})]);
    h.ingest(vec![json!({"type": "identify", "userId": "u2", "messageId": "i2", "traits": {"email": "casal@loja.com.br"}})]);
    assert_eq!(roots(&h).len(), 2);
    let conflicts = h.app.list_conflicts(&h.actor, true).unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].via.value, "casal@loja.com.br");
    // A person resolves it by merging.
    h.app
        .resolve_conflict(&h.actor, &conflicts[0].id, true)
        .unwrap();
    assert_eq!(roots(&h).len(), 1);
    assert!(h.app.list_conflicts(&h.actor, true).unwrap().is_empty());
}

#[test]
fn manual_merge_checks_user_ids_and_api_create_refuses_taken_identifiers() {
    let h = harness();
    let a = h
        .app
        .create_customer(
            &h.actor,
            json!({"name": "Ana", "email": "ana@x.com.br", "user_id": "u1"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
    let b = h
        .app
        .create_customer(
            &h.actor,
            json!({"name": "Ana S", "user_id": "u2"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
    let err = h
        .app
        .create_customer(
            &h.actor,
            json!({"email": "ANA@x.com.br"}).as_object().unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(err, ciclo_core::CoreError::Conflict(ref fe) if fe.code == "identity_taken" && fe.field == "email"),
        "{err:?}"
    );
    let err = h
        .app
        .merge_customers(&h.actor, &a.customer.id, &b.customer.id, false)
        .unwrap_err();
    assert!(
        matches!(err, ciclo_core::CoreError::Conflict(ref fe) if fe.code == "user_id_conflict")
    );
    let merge = h
        .app
        .merge_customers(&h.actor, &a.customer.id, &b.customer.id, true)
        .unwrap();
    assert_eq!(merge.source, "api");
    // Reading the merged-away profile leads to the survivor.
    assert_eq!(
        h.app
            .get_customer(&h.actor, &b.customer.id)
            .unwrap()
            .customer
            .id,
        a.customer.id
    );
}
