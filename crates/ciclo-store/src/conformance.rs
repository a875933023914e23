//! The storage conformance suite: one story per area of the [`Tx`] contract, written against
//! the traits only, so that every backend runs the same stories and behaves the same.
//!
//! Enabled by the `conformance` feature. A backend's integration tests run each story on a fresh,
//! empty, migrated store, either one test per story (better failure reports):
//!
//! ```text
//! #[test]
//! fn customer_search() {
//!     ciclo_store::conformance::customer_search(&fresh_store());
//! }
//! ```
//!
//! or all at once with [`run_all`]. A story panics with a message saying what broke.
//!
//! Where the contract in `lib.rs` leaves a choice open, the stories pin one, so that backends
//! agree; each such choice is stated in the story's doc comment.

use crate::*;
use ciclo_domain::contact::{Email, Phone};
use ciclo_domain::customer::{Customer, CustomerPatch, OrderStats};
use ciclo_domain::event::{Event, EventType};
use ciclo_domain::identity::{Identity, IdentityKey, IdentityKind};
use ciclo_domain::ids::*;
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::{ApiKey, Membership, Operator, Role, Session, Workspace};
use ciclo_domain::order::{Order, OrderItem};
use ciclo_domain::segment::{Count, EventCondition, Expr, SegmentCondition, TimeUnit, Window};
use ciclo_domain::{DateTime, NaiveDate, Timestamp};
use serde_json::{json, Map};
use std::collections::BTreeSet;

/// A story: takes a fresh, empty, migrated store and panics if the backend misbehaves.
pub type Story = fn(&dyn Store);

/// Every story, by name.
pub const STORIES: &[(&str, Story)] = &[
    ("accounts_round_trip", accounts_round_trip),
    ("sessions_and_api_keys", sessions_and_api_keys),
    ("operator_mfa_round_trip", operator_mfa_round_trip),
    ("customers_round_trip", customers_round_trip),
    (
        "customer_list_sorts_and_paging",
        customer_list_sorts_and_paging,
    ),
    ("customer_search", customer_search),
    ("customer_filters", customer_filters),
    ("identities_round_trip", identities_round_trip),
    ("merges_and_conflicts", merges_and_conflicts),
    (
        "events_deduplicate_by_message_id",
        events_deduplicate_by_message_id,
    ),
    (
        "timeline_order_filters_and_paging",
        timeline_order_filters_and_paging,
    ),
    ("orders_insert_once_and_stats", orders_insert_once_and_stats),
    ("imports_round_trip", imports_round_trip),
    ("workspace_isolation", workspace_isolation),
    (
        "delete_customer_removes_everything",
        delete_customer_removes_everything,
    ),
    (
        "updates_of_missing_rows_are_not_found",
        updates_of_missing_rows_are_not_found,
    ),
    ("migrate_is_idempotent", migrate_is_idempotent),
    ("failed_write_rolls_back", failed_write_rolls_back),
    ("settings_round_trip", settings_round_trip),
    ("segments_round_trip", segments_round_trip),
    ("segment_members_and_counts", segment_members_and_counts),
    ("evaluation_queue", evaluation_queue),
    ("computed_stages_and_scores", computed_stages_and_scores),
    (
        "stage_history_and_transitions",
        stage_history_and_transitions,
    ),
    ("named_events_windows", named_events_windows),
    ("scan_named_events_streams", scan_named_events_streams),
    ("merged_profiles_listed", merged_profiles_listed),
    (
        "customer_and_order_summaries_stream",
        customer_and_order_summaries_stream,
    ),
    (
        "customer_list_stage_and_segment_filters",
        customer_list_stage_and_segment_filters,
    ),
    (
        "delete_customer_clears_segments_and_lifecycle",
        delete_customer_clears_segments_and_lifecycle,
    ),
    (
        "segments_and_lifecycle_workspace_isolation",
        segments_and_lifecycle_workspace_isolation,
    ),
];

/// Runs every story, each on a store from `make_store` (which must return a fresh, empty,
/// migrated store every time it is called).
pub fn run_all(make_store: &dyn Fn() -> Box<dyn Store>) {
    for (name, story) in STORIES {
        let store = make_store();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| story(&*store)));
        if let Err(panic) = outcome {
            eprintln!("conformance story `{name}` failed");
            std::panic::resume_unwind(panic);
        }
    }
}

// --- fixtures ---------------------------------------------------------------------------------

/// 2026-01-01T00:00:00Z: fixture times are offsets from it.
const BASE_SECS: i64 = 1_767_225_600;
const BASE_MS: u64 = 1_767_225_600_000;

/// A time `secs` after the base, whole seconds.
fn at(secs: i64) -> Timestamp {
    at_micros(secs, 0)
}

/// A time with a microsecond part: backends keep microseconds (and may drop finer parts).
fn at_micros(secs: i64, micros: u32) -> Timestamp {
    DateTime::from_timestamp(BASE_SECS + secs, micros * 1000).expect("fixture time in range")
}

fn ws_id(n: u64) -> WorkspaceId {
    WorkspaceId::generate(BASE_MS + n, u128::from(n))
}

/// Customer ids sort by `n` (the id's time part grows with it).
fn cid(n: u64) -> CustomerId {
    CustomerId::generate(BASE_MS + n, u128::from(n) * 7919)
}

fn eid(n: u64) -> EventId {
    EventId::generate(BASE_MS + n, u128::from(n) * 104_729)
}

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("fixture email is valid")
}

fn phone(raw: &str) -> Phone {
    Phone::parse(raw, "BR").expect("fixture phone is valid")
}

fn workspace(n: u64, name: &str) -> Workspace {
    Workspace {
        id: ws_id(n),
        name: name.to_string(),
        write_key: format!("wk_{n}_{}", name.to_lowercase().replace(' ', "_")),
        locale: "pt-BR".into(),
        time_zone: "America/Sao_Paulo".into(),
        currency: "BRL".into(),
        default_region: "BR".into(),
        created_at: at(n as i64),
    }
}

fn operator(n: u64, email: &str) -> Operator {
    Operator {
        id: OperatorId::generate(BASE_MS + n, u128::from(n)),
        email: email.to_string(),
        name: format!("Operator {n}"),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${n}"),
        locale: Some("pt-BR".into()),
        active: true,
        created_at: at(n as i64),
    }
}

/// A bare profile `n` of workspace `ws`, first seen at `at(n)`.
fn customer(ws: &WorkspaceId, n: u64) -> Customer {
    Customer::new(cid(n), ws.clone(), at(n as i64))
}

fn named(ws: &WorkspaceId, n: u64, name: &str) -> Customer {
    let mut c = customer(ws, n);
    c.name = Some(name.to_string());
    c
}

#[allow(clippy::too_many_arguments)]
fn event(
    ws: &WorkspaceId,
    customer: &CustomerId,
    n: u64,
    message_id: &str,
    timestamp: Timestamp,
    event_type: EventType,
    name: Option<&str>,
    channel: &str,
) -> Event {
    let mut properties = Map::new();
    properties.insert("n".into(), json!(n));
    let mut context = Map::new();
    context.insert("ip".into(), json!("203.0.113.7"));
    Event {
        id: eid(n),
        workspace_id: ws.clone(),
        customer_id: customer.clone(),
        message_id: message_id.to_string(),
        event_type,
        name: name.map(str::to_string),
        channel: channel.to_string(),
        source: "api".into(),
        user_id: Some(format!("user-{n}")),
        anonymous_id: None,
        properties,
        context,
        timestamp,
        received_at: timestamp,
    }
}

fn track(ws: &WorkspaceId, customer: &CustomerId, n: u64, secs: i64) -> Event {
    event(
        ws,
        customer,
        n,
        &format!("msg-{n}"),
        at(secs),
        EventType::Track,
        Some("Product Viewed"),
        "web",
    )
}

fn order(
    ws: &WorkspaceId,
    customer: &CustomerId,
    n: u64,
    external_id: &str,
    total_minor: i64,
    secs: i64,
) -> Order {
    Order {
        id: OrderId::generate(BASE_MS + n, u128::from(n)),
        workspace_id: ws.clone(),
        customer_id: customer.clone(),
        external_id: external_id.to_string(),
        total_minor,
        currency: "BRL".into(),
        placed_at: at(secs),
        source: "track".into(),
        event_id: None,
        items: vec![
            OrderItem {
                product_id: Some(format!("p-{n}")),
                sku: Some(format!("sku-{n}")),
                name: Some("Camiseta".into()),
                category: Some("Roupas".into()),
                price_minor: total_minor - 500,
                quantity: 1,
            },
            OrderItem {
                product_id: None,
                sku: None,
                name: Some("Frete".into()),
                category: None,
                price_minor: 500,
                quantity: 1,
            },
        ],
    }
}

fn key(kind: IdentityKind, value: &str) -> IdentityKey {
    IdentityKey::new(kind, value)
}

fn identity(customer: &CustomerId, kind: IdentityKind, value: &str, secs: i64) -> Identity {
    Identity {
        key: key(kind, value),
        customer_id: customer.clone(),
        source: "api".into(),
        created_at: at(secs),
    }
}

fn import_run(ws: &WorkspaceId, n: u64, secs: i64) -> ImportRun {
    ImportRun {
        id: ImportId::generate(BASE_MS + n, u128::from(n)),
        workspace_id: ws.clone(),
        kind: "customers".into(),
        file_name: format!("clientes-{n}.csv"),
        status: "running".into(),
        rows_total: 0,
        rows_created: 0,
        rows_updated: 0,
        rows_unchanged: 0,
        rows_rejected: 0,
        rejected: Vec::new(),
        created_at: at(secs),
        finished_at: None,
        actor: Some("op_x".into()),
    }
}

/// Runs a write that must succeed.
fn w<T>(store: &dyn Store, what: &str, work: impl FnMut(&mut dyn Tx) -> StoreResult<T>) -> T {
    write(store, work).unwrap_or_else(|e| panic!("{what}: the write failed: {e}"))
}

/// Runs a read that must succeed.
fn r<T>(store: &dyn Store, what: &str, work: impl FnMut(&mut dyn Tx) -> StoreResult<T>) -> T {
    read(store, work).unwrap_or_else(|e| panic!("{what}: the read failed: {e}"))
}

/// A workspace that exists, for stories that need one.
fn setup_workspace(store: &dyn Store, n: u64) -> WorkspaceId {
    let ws = workspace(n, &format!("Workspace {n}"));
    w(store, "insert workspace", |tx| tx.insert_workspace(&ws));
    ws.id
}

fn insert_customers(store: &dyn Store, customers: &[Customer]) {
    w(store, "insert customers", |tx| {
        customers.iter().try_for_each(|c| tx.insert_customer(c))
    });
}

fn ids(customers: &[Customer]) -> Vec<CustomerId> {
    customers.iter().map(|c| c.id.clone()).collect()
}

fn event_ids(events: &[Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id.clone()).collect()
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut v = items.to_vec();
    v.sort();
    v
}

fn query(sort: CustomerSort, limit: i64) -> CustomerQuery {
    CustomerQuery {
        sort,
        limit,
        ..CustomerQuery::default()
    }
}

/// The cursor key of a row, as documented on [`CustomerCursor::key`].
fn cursor_key(c: &Customer, sort: CustomerSort) -> String {
    match sort {
        CustomerSort::Newest => String::new(),
        CustomerSort::LastSeen => c.last_seen_at.to_rfc3339(),
        CustomerSort::TotalSpent => c.stats.total_spent_minor.to_string(),
        CustomerSort::Name => c.name.clone().unwrap_or_default().to_lowercase(),
    }
}

/// Reads every page of `base` with pages of `page` rows, checking that no row comes twice.
fn list_all_pages(
    store: &dyn Store,
    ws: &WorkspaceId,
    base: &CustomerQuery,
    page: i64,
) -> Vec<CustomerId> {
    let mut q = base.clone();
    q.limit = page;
    q.after = None;
    let mut out: Vec<CustomerId> = Vec::new();
    for _ in 0..10_000 {
        let rows = r(store, "list_customers", |tx| tx.list_customers(ws, &q));
        assert!(
            rows.len() as i64 <= page,
            "list_customers returned {} rows for a limit of {page}",
            rows.len()
        );
        for c in &rows {
            assert!(
                !out.contains(&c.id),
                "{:?} (sort {:?}, page {page}): {} appeared on two pages",
                base,
                q.sort,
                c.id
            );
            out.push(c.id.clone());
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == page => {
                q.after = Some(CustomerCursor {
                    key: cursor_key(last, q.sort),
                    id: last.id.clone(),
                })
            }
            _ => return out,
        }
    }
    panic!("paging through {base:?} never ended");
}

/// The order a sort must produce: the key, then the id in the same direction.
fn expected_order(customers: &[Customer], sort: CustomerSort) -> Vec<CustomerId> {
    let mut v: Vec<&Customer> = customers
        .iter()
        .filter(|c| c.merged_into.is_none())
        .collect();
    match sort {
        CustomerSort::Newest => v.sort_by(|a, b| b.id.cmp(&a.id)),
        CustomerSort::LastSeen => {
            v.sort_by(|a, b| (b.last_seen_at, &b.id).cmp(&(a.last_seen_at, &a.id)))
        }
        CustomerSort::TotalSpent => v.sort_by(|a, b| {
            (b.stats.total_spent_minor, &b.id).cmp(&(a.stats.total_spent_minor, &a.id))
        }),
        CustomerSort::Name => v.sort_by(|a, b| {
            (a.name.clone().unwrap_or_default().to_lowercase(), &a.id)
                .cmp(&(b.name.clone().unwrap_or_default().to_lowercase(), &b.id))
        }),
    }
    v.into_iter().map(|c| c.id.clone()).collect()
}

const SORTS: [CustomerSort; 4] = [
    CustomerSort::Newest,
    CustomerSort::LastSeen,
    CustomerSort::TotalSpent,
    CustomerSort::Name,
];

// --- stories ----------------------------------------------------------------------------------

/// Workspaces, operators and memberships. Operator emails are stored in lower case, and a taken
/// email (in any case) is `Conflict("operators_email")`. Members are listed by email and an
/// operator's workspaces by name.
pub fn accounts_round_trip(store: &dyn Store) {
    let mut alfa = workspace(1, "Loja Alfa");
    let beta = workspace(2, "Beta Store");
    w(store, "insert workspaces", |tx| {
        tx.insert_workspace(&alfa)?;
        tx.insert_workspace(&beta)
    });
    assert_eq!(
        r(store, "get_workspace", |tx| tx.get_workspace(&alfa.id)),
        Some(alfa.clone())
    );
    assert_eq!(
        r(store, "get_workspace unknown", |tx| tx
            .get_workspace(&ws_id(99))),
        None
    );
    assert_eq!(
        r(store, "workspace_by_write_key", |tx| tx
            .workspace_by_write_key(&beta.write_key)),
        Some(beta.clone())
    );
    assert_eq!(
        r(store, "workspace_by_write_key unknown", |tx| tx
            .workspace_by_write_key("wk_nope")),
        None
    );
    assert_eq!(r(store, "count_workspaces", |tx| tx.count_workspaces()), 2);
    assert_eq!(
        r(store, "list_workspaces", |tx| tx.list_workspaces()),
        vec![alfa.clone(), beta.clone()],
        "every workspace, by id"
    );
    alfa.name = "Zeta Alfa".into();
    alfa.currency = "USD".into();
    w(store, "update_workspace", |tx| tx.update_workspace(&alfa));
    assert_eq!(
        r(store, "get_workspace after update", |tx| tx
            .get_workspace(&alfa.id)),
        Some(alfa.clone())
    );

    let mut ana = operator(1, "Ana@Example.com");
    let bruno = operator(2, "bruno@example.com");
    w(store, "insert operators", |tx| {
        tx.insert_operator(&ana)?;
        tx.insert_operator(&bruno)
    });
    let stored =
        r(store, "get_operator", |tx| tx.get_operator(&ana.id)).expect("operator ana was stored");
    assert_eq!(
        stored.email, "ana@example.com",
        "operator emails are stored in lower case"
    );
    ana.email = "ana@example.com".into();
    assert_eq!(stored, ana);
    assert_eq!(
        r(store, "operator_by_email", |tx| tx
            .operator_by_email("ANA@example.COM")),
        Some(ana.clone())
    );
    assert_eq!(
        r(store, "operator_by_email unknown", |tx| tx
            .operator_by_email("nobody@example.com")),
        None
    );
    let clash = operator(3, "ANA@EXAMPLE.COM");
    match write(store, |tx| tx.insert_operator(&clash)) {
        Err(StoreError::Conflict(name)) => assert_eq!(name, "operators_email"),
        other => panic!(
            "a taken email (in another case) must be Conflict(\"operators_email\"), got {other:?}"
        ),
    }
    ana.name = "Ana Souza".into();
    ana.active = false;
    ana.locale = None;
    w(store, "update_operator", |tx| tx.update_operator(&ana));
    assert_eq!(
        r(store, "get_operator after update", |tx| tx
            .get_operator(&ana.id)),
        Some(ana.clone())
    );

    w(store, "upsert memberships", |tx| {
        tx.upsert_membership(&Membership {
            workspace_id: alfa.id.clone(),
            operator_id: bruno.id.clone(),
            role: Role::Agent,
        })?;
        tx.upsert_membership(&Membership {
            workspace_id: alfa.id.clone(),
            operator_id: ana.id.clone(),
            role: Role::Owner,
        })?;
        tx.upsert_membership(&Membership {
            workspace_id: beta.id.clone(),
            operator_id: ana.id.clone(),
            role: Role::Analyst,
        })
    });
    assert_eq!(
        r(store, "membership", |tx| tx.membership(&alfa.id, &ana.id)),
        Some(Role::Owner)
    );
    assert_eq!(
        r(store, "membership", |tx| tx.membership(&beta.id, &bruno.id)),
        None
    );
    w(store, "upsert changes the role", |tx| {
        tx.upsert_membership(&Membership {
            workspace_id: alfa.id.clone(),
            operator_id: bruno.id.clone(),
            role: Role::Admin,
        })
    });
    assert_eq!(
        r(store, "membership after upsert", |tx| tx
            .membership(&alfa.id, &bruno.id)),
        Some(Role::Admin)
    );
    let members = r(store, "list_members", |tx| tx.list_members(&alfa.id));
    assert_eq!(
        members,
        vec![(ana.clone(), Role::Owner), (bruno.clone(), Role::Admin)],
        "members are listed by email, with their role"
    );
    let of_ana = r(store, "workspaces_of_operator", |tx| {
        tx.workspaces_of_operator(&ana.id)
    });
    assert_eq!(
        of_ana,
        vec![(beta.clone(), Role::Analyst), (alfa.clone(), Role::Owner)],
        "workspaces are listed by name"
    );
    w(store, "delete_membership", |tx| {
        tx.delete_membership(&alfa.id, &bruno.id)
    });
    assert_eq!(
        r(store, "membership after delete", |tx| tx
            .membership(&alfa.id, &bruno.id)),
        None
    );
    assert_eq!(
        r(store, "list_members after delete", |tx| tx
            .list_members(&alfa.id)),
        vec![(ana.clone(), Role::Owner)]
    );
    assert!(r(store, "workspaces_of_operator", |tx| tx
        .workspaces_of_operator(&bruno.id))
    .is_empty());
    w(store, "delete_membership twice is harmless", |tx| {
        tx.delete_membership(&alfa.id, &bruno.id)
    });
}

/// Sessions by token hash, API keys by hash and per workspace (newest first, revoked ones
/// included); revoking a key of another workspace is `NotFound`.
pub fn operator_mfa_round_trip(store: &dyn Store) {
    let op = operator(1, "ana@example.com");
    w(store, "insert operator", |tx| tx.insert_operator(&op));
    assert_eq!(
        r(store, "get_operator_mfa none", |tx| tx
            .get_operator_mfa(&op.id)),
        None
    );
    let mut mfa = crate::OperatorMfa {
        operator_id: op.id.clone(),
        totp_secret: "JBSWY3DPEHPK3PXP".into(),
        enabled_at: None,
        recovery_code_hashes: vec!["h1".into(), "h2".into()],
        last_used_step: None,
        failed_attempts: 2,
        created_at: at_micros(5, 250_000),
    };
    w(store, "put_operator_mfa pending", |tx| {
        tx.put_operator_mfa(&mfa)
    });
    assert_eq!(
        r(store, "get_operator_mfa pending", |tx| tx
            .get_operator_mfa(&op.id)),
        Some(mfa.clone())
    );
    mfa.enabled_at = Some(at(60));
    mfa.recovery_code_hashes = vec!["h2".into()];
    mfa.last_used_step = Some(58_907_521);
    mfa.failed_attempts = 0;
    w(store, "put_operator_mfa enabled", |tx| {
        tx.put_operator_mfa(&mfa)
    });
    assert_eq!(
        r(store, "get_operator_mfa enabled", |tx| tx
            .get_operator_mfa(&op.id)),
        Some(mfa.clone())
    );
    mfa.failed_attempts = 5;
    w(store, "put_operator_mfa failed attempts", |tx| {
        tx.put_operator_mfa(&mfa)
    });
    assert_eq!(
        r(store, "get_operator_mfa failed attempts", |tx| tx
            .get_operator_mfa(&op.id))
        .map(|m| m.failed_attempts),
        Some(5),
        "failed_attempts round-trips"
    );
    w(store, "delete_operator_mfa", |tx| {
        tx.delete_operator_mfa(&op.id)
    });
    assert_eq!(
        r(store, "get_operator_mfa deleted", |tx| tx
            .get_operator_mfa(&op.id)),
        None
    );
}

pub fn sessions_and_api_keys(store: &dyn Store) {
    let a = setup_workspace(store, 1);
    let b = setup_workspace(store, 2);
    let op = operator(1, "ana@example.com");
    w(store, "insert operator", |tx| tx.insert_operator(&op));

    let session = Session {
        token_hash: "hash-of-token-1".into(),
        operator_id: op.id.clone(),
        workspace_id: a.clone(),
        csrf_token: "csrf-1".into(),
        created_at: at_micros(10, 123_456),
        expires_at: at(10 + 14 * 86_400),
    };
    w(store, "insert_session", |tx| tx.insert_session(&session));
    assert_eq!(
        r(store, "session_by_token_hash", |tx| tx
            .session_by_token_hash("hash-of-token-1")),
        Some(session.clone())
    );
    assert_eq!(
        r(store, "session_by_token_hash unknown", |tx| tx
            .session_by_token_hash("nope")),
        None
    );
    w(store, "delete_session", |tx| {
        tx.delete_session("hash-of-token-1")
    });
    assert_eq!(
        r(store, "session after delete", |tx| tx
            .session_by_token_hash("hash-of-token-1")),
        None
    );
    w(store, "delete_session twice is harmless", |tx| {
        tx.delete_session("hash-of-token-1")
    });

    let key = |n: u64, ws: &WorkspaceId, secs: i64| ApiKey {
        id: ApiKeyId::generate(BASE_MS + n, u128::from(n)),
        workspace_id: ws.clone(),
        name: format!("key {n}"),
        role: Role::Admin,
        prefix: format!("sk_{n}"),
        key_hash: format!("key-hash-{n}"),
        created_at: at(secs),
        last_used_at: None,
        revoked_at: None,
    };
    let mut k1 = key(1, &a, 100);
    let mut k2 = key(2, &a, 200);
    let k3 = key(3, &b, 300);
    w(store, "insert api keys", |tx| {
        tx.insert_api_key(&k1)?;
        tx.insert_api_key(&k2)?;
        tx.insert_api_key(&k3)
    });
    assert_eq!(
        r(store, "api_key_by_hash", |tx| tx
            .api_key_by_hash("key-hash-1")),
        Some(k1.clone())
    );
    assert_eq!(
        r(store, "api_key_by_hash of workspace b", |tx| tx
            .api_key_by_hash("key-hash-3")),
        Some(k3.clone())
    );
    assert_eq!(
        r(store, "api_key_by_hash unknown", |tx| tx
            .api_key_by_hash("nope")),
        None
    );
    assert_eq!(
        r(store, "list_api_keys", |tx| tx.list_api_keys(&a)),
        vec![k2.clone(), k1.clone()],
        "newest first"
    );

    w(store, "revoke_api_key", |tx| {
        tx.revoke_api_key(&a, &k1.id, at(400))
    });
    k1.revoked_at = Some(at(400));
    w(store, "touch_api_key", |tx| {
        tx.touch_api_key(&a, &k2.id, at_micros(500, 42))
    });
    k2.last_used_at = Some(at_micros(500, 42));
    assert_eq!(
        r(store, "list_api_keys after revoke", |tx| tx
            .list_api_keys(&a)),
        vec![k2.clone(), k1.clone()],
        "revoked keys stay listed"
    );
    match write(store, |tx| tx.revoke_api_key(&a, &k3.id, at(400))) {
        Err(StoreError::NotFound) => {}
        other => panic!("revoking another workspace's key must be NotFound, got {other:?}"),
    }
    assert_eq!(
        r(store, "key of b untouched", |tx| tx
            .api_key_by_hash("key-hash-3")),
        Some(k3.clone())
    );
}

/// Every customer field round-trips (timestamps at microsecond precision); a second insert of an
/// id is a `Conflict`; `get_customers` returns the profiles that exist; `count_customers` counts
/// surviving profiles (not merged ones); the bulk forms behave like the single ones.
pub fn customers_round_trip(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let mut full = named(&ws, 1, "Ana Júlia Souza");
    full.email = Some(email("ana.julia@exemplo.com.br"));
    full.phone = Some(phone("+55 11 98765-4321"));
    full.whatsapp = Some(phone("+55 21 3456-7890"));
    full.birthday = NaiveDate::from_ymd_opt(1990, 5, 17);
    full.locale = Some("pt-BR".into());
    full.time_zone = Some("America/Recife".into());
    full.city = Some("Recife".into());
    full.state = Some("PE".into());
    full.country = Some("BR".into());
    full.tags = vec!["vip".into(), "newsletter".into()];
    full.traits = json!({"plan": "gold", "score": 9.5, "kids": 2, "pets": ["cat"], "address": {"street": "Rua A"},
                         "optin": true, "nothing": null})
    .as_object()
    .cloned()
    .unwrap_or_default();
    full.first_seen_at = at_micros(1, 123_456);
    full.last_seen_at = at_micros(3_600, 999_999);
    full.stats = OrderStats {
        orders_count: 3,
        total_spent_minor: 45_990,
        first_order_at: Some(at(2)),
        last_order_at: Some(at_micros(3_000, 1)),
    };
    full.created_at = at_micros(1, 123_456);
    full.updated_at = at(3_600);
    let bare = customer(&ws, 2);
    let third = named(&ws, 3, "Carla");
    insert_customers(store, &[full.clone(), bare.clone()]);
    w(store, "insert_customers (bulk)", |tx| {
        tx.insert_customers(std::slice::from_ref(&third))
    });

    assert_eq!(
        r(store, "get_customer", |tx| tx.get_customer(&ws, &full.id)),
        Some(full.clone()),
        "every field round-trips"
    );
    assert_eq!(
        r(store, "get_customer bare", |tx| tx
            .get_customer(&ws, &bare.id)),
        Some(bare.clone())
    );
    assert_eq!(
        r(store, "get_customer unknown", |tx| tx
            .get_customer(&ws, &cid(99))),
        None
    );

    match write(store, |tx| tx.insert_customer(&bare)) {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("inserting an existing customer id must be a Conflict, got {other:?}"),
    }

    let mut changed = full.clone();
    changed.name = Some("Ana Souza".into());
    changed.email = None;
    changed.whatsapp = None;
    changed.birthday = None;
    changed.tags = vec!["gold".into()];
    changed.traits.remove("pets");
    changed.traits.insert("plan".into(), json!("platinum"));
    changed.last_seen_at = at(7_200);
    changed.stats.orders_count = 4;
    changed.updated_at = at(7_200);
    w(store, "update_customer", |tx| tx.update_customer(&changed));
    assert_eq!(
        r(store, "get_customer after update", |tx| tx
            .get_customer(&ws, &full.id)),
        Some(changed.clone())
    );

    let mut merged = third.clone();
    merged.merged_into = Some(full.id.clone());
    w(store, "update_customers (bulk)", |tx| {
        tx.update_customers(std::slice::from_ref(&merged))
    });
    assert_eq!(
        r(store, "get merged customer", |tx| tx
            .get_customer(&ws, &third.id)),
        Some(merged.clone())
    );
    assert_eq!(
        r(store, "merged_children", |tx| tx
            .merged_children(&ws, &full.id)),
        vec![third.id.clone()]
    );
    assert!(r(store, "merged_children of a leaf", |tx| tx
        .merged_children(&ws, &bare.id))
    .is_empty());
    assert_eq!(
        r(store, "count_customers", |tx| tx.count_customers(&ws)),
        2,
        "merged profiles are not counted"
    );

    let got = r(store, "get_customers", |tx| {
        tx.get_customers(&ws, &[third.id.clone(), cid(99), full.id.clone()])
    });
    assert_eq!(
        sorted(&ids(&got)),
        sorted(&[third.id.clone(), full.id.clone()]),
        "get_customers returns those that exist"
    );
    assert!(got.contains(&changed) && got.contains(&merged));
    assert!(r(store, "get_customers of nothing", |tx| tx
        .get_customers(&ws, &[]))
    .is_empty());
}

/// Every sort pages through all surviving profiles with keyset cursors, whatever the page size:
/// no row twice, none missing, merged profiles never. Ties are broken by id in the sort's
/// direction (`id DESC` for the newest/last seen/total spent sorts, `id ASC` for names); the
/// name sort compares lower-cased names byte by byte, a profile without a name sorting as the
/// empty name. (A backend may also ignore accents and punctuation when sorting names, as long as
/// it reads the cursor key, the lower-cased name, the same way; the names here have neither.)
pub fn customer_list_sorts_and_paging(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let other = setup_workspace(store, 2);
    let names = [
        Some("Ana Souza"),
        Some("bruno lima"),
        None,
        Some("Carla Dias"),
        Some("ana souza"),
        Some("Ana Souza"),
        Some("Zeca"),
        None,
        Some("eduardo"),
        Some("Beatriz"),
        Some("ANA"),
        Some("Caio"),
        Some("davi"),
        Some("Elisa Rocha"),
        Some("Fabio"),
        Some("gabriela"),
        Some("Hugo"),
        Some("Iara"),
        Some("joao"),
        Some("Zeca"),
        Some("Lara"),
        Some("Mel"),
        Some("Nina"),
    ];
    let mut customers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let n = i as u64 + 1;
        let mut c = customer(&ws, n);
        c.name = name.map(str::to_string);
        // Ties on purpose: last seen repeats every 4 rows, totals every 3 (with zeros).
        c.last_seen_at = at_micros(1_000 + (i as i64 % 4) * 60, (i as u32 % 2) * 250);
        c.stats.total_spent_minor = (i as i64 % 3) * 10_000;
        c.stats.orders_count = i64::from(c.stats.total_spent_minor > 0);
        customers.push(c);
    }
    for (i, c) in customers.iter_mut().enumerate() {
        if i == 6 || i == 15 {
            c.merged_into = Some(cid(1));
        }
    }
    insert_customers(store, &customers);
    insert_customers(
        store,
        &[
            named(&other, 500, "Ana Souza"),
            named(&other, 501, "Outsider"),
        ],
    );

    for sort in SORTS {
        let expected = expected_order(&customers, sort);
        for page in [1, 4, 7, 100] {
            let got = list_all_pages(store, &ws, &query(sort, page), page);
            assert_eq!(got, expected, "sort {sort:?} with pages of {page}");
        }
    }
    assert!(r(store, "limit 0", |tx| tx
        .list_customers(&ws, &query(CustomerSort::Newest, 0)))
    .is_empty());
}

/// Search matches a prefix of any word of the name (case-insensitively; several words match a
/// run of words), a prefix of the email, or a prefix of the phone digits with the country code,
/// without it, or (for Brazilian numbers) without the area code, so that `11 9876` and `9876`
/// both find `+5511987654321`. Never a merged profile, never another workspace.
pub fn customer_search(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let other = setup_workspace(store, 2);
    let mut ana = named(&ws, 1, "Ana Souza");
    ana.email = Some(email("ana.souza@exemplo.com.br"));
    ana.phone = Some(phone("+55 11 98765-4321"));
    let mut mariana = named(&ws, 2, "Mariana Lima");
    mariana.email = Some(email("mari@x.com"));
    let mut bruno = named(&ws, 3, "Bruno Anacleto");
    bruno.email = Some(email("bruno@y.com"));
    bruno.phone = Some(phone("+55 21 3456-7890"));
    let mut carla = named(&ws, 4, "Carla Dias");
    carla.email = Some(email("ana.carla@z.com"));
    let mut us = customer(&ws, 5);
    us.phone = Some(phone("+1 415 555 2671"));
    let mut merged = named(&ws, 6, "Ana Merged");
    merged.merged_into = Some(ana.id.clone());
    let outsider = named(&other, 7, "Ana Outside");
    insert_customers(
        store,
        &[
            ana.clone(),
            mariana.clone(),
            bruno.clone(),
            carla.clone(),
            us.clone(),
            merged,
            outsider,
        ],
    );

    let search = |text: &str, sort: CustomerSort| {
        let q = CustomerQuery {
            search: Some(text.to_string()),
            ..query(sort, 100)
        };
        sorted(&ids(&r(store, "search", |tx| tx.list_customers(&ws, &q))))
    };
    let cases: Vec<(&str, Vec<&Customer>)> = vec![
        ("ana", vec![&ana, &bruno, &carla]),
        ("ANA", vec![&ana, &bruno, &carla]),
        ("  ana ", vec![&ana, &bruno, &carla]),
        ("souza", vec![&ana]),
        ("ana sou", vec![&ana]),
        ("Ana Souza", vec![&ana]),
        ("anacl", vec![&bruno]),
        ("lim", vec![&mariana]),
        ("ana.souza@", vec![&ana]),
        ("mari@x", vec![&mariana]),
        ("MARI@X.COM", vec![&mariana]),
        ("11 9876", vec![&ana]),
        ("+55 11 98765", vec![&ana]),
        ("98765-43", vec![&ana]),
        ("(21) 3456", vec![&bruno]),
        ("4155", vec![&us]),
        ("+1 415", vec![&us]),
        ("xyz", vec![]),
        ("iana", vec![]),
        ("outside", vec![]),
        ("merged", vec![]),
    ];
    for (text, expected) in cases {
        let expected: Vec<CustomerId> =
            sorted(&expected.iter().map(|c| c.id.clone()).collect::<Vec<_>>());
        for sort in SORTS {
            assert_eq!(
                search(text, sort),
                expected,
                "search {text:?} (sort {sort:?})"
            );
        }
    }
    let q = CustomerQuery {
        search: Some("ana".into()),
        ..query(CustomerSort::Name, 2)
    };
    assert_eq!(
        list_all_pages(store, &ws, &q, 2),
        vec![ana.id.clone(), bruno.id.clone(), carla.id.clone()],
        "search results page in the sort's order"
    );
    // A profile whose name, email or phone changes is found by the new values only.
    let mut renamed = ana.clone();
    renamed.name = Some("Joana Prado".into());
    renamed.email = None;
    renamed.phone = None;
    w(store, "update_customer", |tx| tx.update_customer(&renamed));
    assert_eq!(
        search("souza", CustomerSort::Newest),
        Vec::<CustomerId>::new(),
        "old name no longer found"
    );
    assert_eq!(
        search("11 9876", CustomerSort::Newest),
        Vec::<CustomerId>::new(),
        "old phone no longer found"
    );
    assert_eq!(
        search("prado", CustomerSort::Newest),
        vec![ana.id.clone()],
        "new name found"
    );
    assert_eq!(search("jo", CustomerSort::Newest), vec![ana.id.clone()]);
}

/// Filters combine with each other, with search and with every sort. Tag and city compare
/// case-insensitively; `seen_after` keeps profiles seen strictly after the time; `has_ordered`
/// looks at the profile's order count.
pub fn customer_filters(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let mut all = Vec::new();
    for n in 1..=12u64 {
        let mut c = named(&ws, n, &format!("Cliente {n:02}"));
        c.tags = match n % 3 {
            0 => vec!["vip".into(), "newsletter".into()],
            1 => vec!["vip".into()],
            _ => vec![],
        };
        c.city = Some(if n % 2 == 0 {
            "Recife".into()
        } else {
            "São Paulo".into()
        });
        c.last_seen_at = at(n as i64 * 100);
        if n % 4 == 0 {
            c.stats.orders_count = 1;
            c.stats.total_spent_minor = n as i64 * 1_000;
        }
        all.push(c);
    }
    let mut merged = named(&ws, 13, "Cliente 13");
    merged.tags = vec!["vip".into()];
    merged.city = Some("Recife".into());
    merged.merged_into = Some(cid(1));
    insert_customers(store, &all);
    insert_customers(store, std::slice::from_ref(&merged));

    let check =
        |all: &[Customer], label: &str, base: CustomerQuery, keep: &dyn Fn(&Customer) -> bool| {
            for sort in SORTS {
                let chosen: Vec<Customer> = all.iter().filter(|c| keep(c)).cloned().collect();
                let expected = expected_order(&chosen, sort);
                for page in [2, 100] {
                    let q = CustomerQuery {
                        sort,
                        ..base.clone()
                    };
                    assert_eq!(
                        list_all_pages(store, &ws, &q, page),
                        expected,
                        "{label} (sort {sort:?}, pages of {page})"
                    );
                }
            }
        };
    let has_tag = |c: &Customer, t: &str| c.tags.iter().any(|x| x == t);
    let base = CustomerQuery::default();
    check(
        &all,
        "tag vip",
        CustomerQuery {
            tag: Some("vip".into()),
            ..base.clone()
        },
        &|c| has_tag(c, "vip"),
    );
    check(
        &all,
        "tag VIP",
        CustomerQuery {
            tag: Some("VIP".into()),
            ..base.clone()
        },
        &|c| has_tag(c, "vip"),
    );
    check(
        &all,
        "tag newsletter",
        CustomerQuery {
            tag: Some("newsletter".into()),
            ..base.clone()
        },
        &|c| has_tag(c, "newsletter"),
    );
    check(
        &all,
        "tag unknown",
        CustomerQuery {
            tag: Some("nope".into()),
            ..base.clone()
        },
        &|_| false,
    );
    check(
        &all,
        "city recife",
        CustomerQuery {
            city: Some("recife".into()),
            ..base.clone()
        },
        &|c| c.city.as_deref() == Some("Recife"),
    );
    check(
        &all,
        "city São Paulo",
        CustomerQuery {
            city: Some("SÃO PAULO".into()),
            ..base.clone()
        },
        &|c| c.city.as_deref() == Some("São Paulo"),
    );
    check(
        &all,
        "has ordered",
        CustomerQuery {
            has_ordered: Some(true),
            ..base.clone()
        },
        &|c| c.stats.orders_count > 0,
    );
    check(
        &all,
        "has not ordered",
        CustomerQuery {
            has_ordered: Some(false),
            ..base.clone()
        },
        &|c| c.stats.orders_count == 0,
    );
    check(
        &all,
        "seen after 600s",
        CustomerQuery {
            seen_after: Some(at(600)),
            ..base.clone()
        },
        &|c| c.last_seen_at > at(600),
    );
    check(
        &all,
        "tag + city + has ordered + seen after",
        CustomerQuery {
            tag: Some("vip".into()),
            city: Some("Recife".into()),
            has_ordered: Some(true),
            seen_after: Some(at(300)),
            ..base.clone()
        },
        &|c| {
            has_tag(c, "vip")
                && c.city.as_deref() == Some("Recife")
                && c.stats.orders_count > 0
                && c.last_seen_at > at(300)
        },
    );
    check(
        &all,
        "search + tag",
        CustomerQuery {
            search: Some("cliente 1".into()),
            tag: Some("vip".into()),
            ..base.clone()
        },
        &|c| {
            has_tag(c, "vip")
                && c.name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("Cliente 1"))
        },
    );

    // Changing tags and city moves a profile in and out of the filters.
    let mut moved = all[1].clone();
    moved.tags = vec!["vip".into()];
    moved.city = Some("Natal".into());
    w(store, "update_customer", |tx| tx.update_customer(&moved));
    all[1] = moved.clone();
    check(
        &all,
        "tag vip after update",
        CustomerQuery {
            tag: Some("vip".into()),
            ..base.clone()
        },
        &|c| has_tag(c, "vip"),
    );
    check(
        &all,
        "city natal",
        CustomerQuery {
            city: Some("natal".into()),
            ..base.clone()
        },
        &|c| c.id == moved.id,
    );
}

/// Identities: inserting a taken key returns false and keeps the owner (also within one bulk
/// call); `find_identities` returns the keys that exist; `identities_of` orders by kind (as text:
/// `anonymous_id` < `email` < `external:…` < `phone` < `user_id` < `whatsapp`), then value.
pub fn identities_round_trip(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let (c1, c2) = (customer(&ws, 1), customer(&ws, 2));
    insert_customers(store, &[c1.clone(), c2.clone()]);
    let i_user = identity(&c1.id, IdentityKind::UserId, "u-1", 1);
    let i_email = identity(&c1.id, IdentityKind::Email, "ana@x.com", 2);
    let i_phone = identity(&c1.id, IdentityKind::Phone, "+5511987654321", 3);
    let i_shop = identity(
        &c1.id,
        IdentityKind::External("shopify".into()),
        "998877",
        4,
    );
    let i_anon = identity(&c2.id, IdentityKind::AnonymousId, "anon-1", 5);
    let i_whats = identity(&c2.id, IdentityKind::Whatsapp, "+5511987654321", 6);
    assert!(w(store, "insert_identity", |tx| tx
        .insert_identity(&ws, &i_user)));
    assert_eq!(
        w(store, "insert_identities", |tx| tx.insert_identities(
            &ws,
            &[
                i_email.clone(),
                i_phone.clone(),
                i_shop.clone(),
                i_anon.clone(),
                i_whats.clone()
            ]
        )),
        vec![true; 5]
    );
    let stolen = identity(&c2.id, IdentityKind::Email, "ana@x.com", 9);
    assert!(
        !w(store, "insert a taken identity", |tx| tx
            .insert_identity(&ws, &stolen)),
        "a taken key is not inserted"
    );
    let fresh = identity(&c2.id, IdentityKind::Email, "bia@x.com", 9);
    assert_eq!(
        w(store, "insert_identities with a repeat", |tx| tx
            .insert_identities(
                &ws,
                &[fresh.clone(), stolen.clone(), fresh.clone()]
            )),
        vec![true, false, false],
        "per input: inserted, taken before, taken earlier in the same call"
    );

    let found = r(store, "find_identities", |tx| {
        tx.find_identities(
            &ws,
            &[
                i_email.key.clone(),
                key(IdentityKind::Email, "nobody@x.com"),
                i_shop.key.clone(),
                i_anon.key.clone(),
            ],
        )
    });
    let mut found_sorted = found.clone();
    found_sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut expected = vec![i_email.clone(), i_shop.clone(), i_anon.clone()];
    expected.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        found_sorted, expected,
        "find_identities returns the stored identities among the keys, owner unchanged"
    );
    assert!(r(store, "find_identities of nothing", |tx| tx
        .find_identities(&ws, &[]))
    .is_empty());
    assert!(r(store, "find_identities, kind matters", |tx| {
        tx.find_identities(
            &ws,
            &[
                key(IdentityKind::UserId, "ana@x.com"),
                key(IdentityKind::External("vtex".into()), "998877"),
            ],
        )
    })
    .is_empty());

    assert_eq!(
        r(store, "identities_of", |tx| tx
            .identities_of(&ws, std::slice::from_ref(&c1.id))),
        vec![
            i_email.clone(),
            i_shop.clone(),
            i_phone.clone(),
            i_user.clone()
        ],
        "ordered by kind, then value"
    );
    assert_eq!(
        r(store, "identities_of two profiles", |tx| tx
            .identities_of(&ws, &[c2.id.clone(), c1.id.clone()])),
        vec![
            i_anon.clone(),
            i_email.clone(),
            fresh.clone(),
            i_shop.clone(),
            i_phone.clone(),
            i_user.clone(),
            i_whats.clone()
        ]
    );
    w(store, "delete_identity", |tx| {
        tx.delete_identity(&ws, &i_email.key)
    });
    assert!(r(store, "find deleted", |tx| tx
        .find_identities(&ws, std::slice::from_ref(&i_email.key)))
    .is_empty());
    assert!(w(store, "the key is free again", |tx| tx
        .insert_identity(&ws, &stolen)));
}

/// Merge records and identity conflicts round-trip; `merges_of` finds merges where a profile is
/// winner or loser, newest first; `list_conflicts` is newest first, optionally open ones only.
pub fn merges_and_conflicts(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let cs: Vec<Customer> = (1..=4).map(|n| customer(&ws, n)).collect();
    insert_customers(store, &cs);
    let mut filled = CustomerPatch {
        name: Some(Some("Ana".into())),
        city: Some(Some("Recife".into())),
        ..Default::default()
    };
    filled.tags = Some(vec!["vip".into()]);
    filled.traits.insert("plan".into(), json!("gold"));
    let mut m1 = MergeRecord {
        id: MergeId::generate(BASE_MS + 1, 1),
        workspace_id: ws.clone(),
        winner_id: cs[0].id.clone(),
        loser_id: cs[1].id.clone(),
        via: Some(key(IdentityKind::Email, "ana@x.com")),
        message_id: Some("msg-1".into()),
        source: "automatic".into(),
        actor: None,
        filled,
        created_at: at_micros(100, 5),
        undone_at: None,
        undone_by: None,
    };
    let m2 = MergeRecord {
        id: MergeId::generate(BASE_MS + 2, 2),
        workspace_id: ws.clone(),
        winner_id: cs[2].id.clone(),
        loser_id: cs[0].id.clone(),
        via: None,
        message_id: None,
        source: "console".into(),
        actor: Some("op_1".into()),
        filled: CustomerPatch::default(),
        created_at: at(200),
        undone_at: None,
        undone_by: None,
    };
    w(store, "insert merges", |tx| {
        tx.insert_merge(&m1)?;
        tx.insert_merge(&m2)
    });
    assert_eq!(
        r(store, "get_merge", |tx| tx.get_merge(&ws, &m1.id)),
        Some(m1.clone())
    );
    assert_eq!(
        r(store, "get_merge", |tx| tx.get_merge(&ws, &m2.id)),
        Some(m2.clone())
    );
    assert_eq!(
        r(store, "get_merge unknown", |tx| tx
            .get_merge(&ws, &MergeId::generate(1, 1))),
        None
    );
    m1.undone_at = Some(at(300));
    m1.undone_by = Some("op_2".into());
    w(store, "update_merge", |tx| tx.update_merge(&m1));
    assert_eq!(
        r(store, "get_merge after update", |tx| tx
            .get_merge(&ws, &m1.id)),
        Some(m1.clone())
    );
    assert_eq!(
        r(store, "merges_of winner and loser", |tx| tx
            .merges_of(&ws, std::slice::from_ref(&cs[0].id))),
        vec![m2.clone(), m1.clone()]
    );
    assert_eq!(
        r(store, "merges_of loser", |tx| tx
            .merges_of(&ws, std::slice::from_ref(&cs[1].id))),
        vec![m1.clone()]
    );
    assert_eq!(
        r(store, "merges_of several", |tx| tx
            .merges_of(&ws, &[cs[1].id.clone(), cs[2].id.clone()])),
        vec![m2.clone(), m1.clone()],
        "each merge once"
    );
    assert!(r(store, "merges_of none", |tx| tx
        .merges_of(&ws, std::slice::from_ref(&cs[3].id)))
    .is_empty());

    let conflict = |n: u64, a: usize, b: usize, secs: i64| IdentityConflict {
        id: ConflictId::generate(BASE_MS + n, u128::from(n)),
        workspace_id: ws.clone(),
        customer_a: cs[a].id.clone(),
        customer_b: cs[b].id.clone(),
        via: key(IdentityKind::Phone, "+5511987654321"),
        message_id: Some(format!("msg-{n}")),
        created_at: at(secs),
        resolution: None,
        resolved_at: None,
    };
    let mut k1 = conflict(1, 0, 1, 100);
    let mut k2 = conflict(2, 1, 2, 200);
    k2.resolution = Some("kept_apart".into());
    k2.resolved_at = Some(at(250));
    let k3 = conflict(3, 2, 3, 300);
    w(store, "insert conflicts", |tx| {
        tx.insert_conflict(&k1)?;
        tx.insert_conflict(&k2)?;
        tx.insert_conflict(&k3)
    });
    assert_eq!(
        r(store, "get_conflict", |tx| tx.get_conflict(&ws, &k2.id)),
        Some(k2.clone())
    );
    assert_eq!(
        r(store, "list_conflicts all", |tx| tx
            .list_conflicts(&ws, false, 10)),
        vec![k3.clone(), k2.clone(), k1.clone()]
    );
    assert_eq!(
        r(store, "list_conflicts open", |tx| tx
            .list_conflicts(&ws, true, 10)),
        vec![k3.clone(), k1.clone()]
    );
    assert_eq!(
        r(store, "list_conflicts limit", |tx| tx
            .list_conflicts(&ws, false, 1)),
        vec![k3.clone()]
    );
    k1.resolution = Some("merged".into());
    k1.resolved_at = Some(at_micros(400, 7));
    w(store, "update_conflict", |tx| tx.update_conflict(&k1));
    assert_eq!(
        r(store, "get_conflict after update", |tx| tx
            .get_conflict(&ws, &k1.id)),
        Some(k1.clone())
    );
    assert_eq!(
        r(store, "list_conflicts open after update", |tx| tx
            .list_conflicts(&ws, true, 10)),
        vec![k3.clone()]
    );
}

/// `insert_events` skips an event whose message id is stored in the workspace, also when the
/// repeat comes in the same call, and says per input whether it was stored. Message ids are per
/// workspace. Stored events round-trip.
pub fn events_deduplicate_by_message_id(store: &dyn Store) {
    let a = setup_workspace(store, 1);
    let b = setup_workspace(store, 2);
    let ca = customer(&a, 1);
    let cb = customer(&b, 2);
    insert_customers(store, &[ca.clone(), cb.clone()]);
    let mut e1 = event(
        &a,
        &ca.id,
        1,
        "m1",
        at_micros(10, 1),
        EventType::Identify,
        None,
        "server",
    );
    e1.anonymous_id = Some("anon-1".into());
    e1.properties.insert(
        "traits".into(),
        json!({"email": "ana@x.com", "nested": {"list": [1, 2.5, "três", null]}}),
    );
    let e2 = event(
        &a,
        &ca.id,
        2,
        "m2",
        at(20),
        EventType::Track,
        Some("Order Completed"),
        "web",
    );
    let e3 = event(
        &a,
        &ca.id,
        3,
        "m1",
        at(30),
        EventType::Track,
        Some("Repeat"),
        "web",
    );
    assert_eq!(
        w(store, "insert_events", |tx| tx.insert_events(&[
            e1.clone(),
            e2.clone(),
            e3.clone()
        ])),
        vec![true, true, false],
        "the repeat of m1 in the same call is skipped"
    );
    let e4 = event(
        &a,
        &ca.id,
        4,
        "m2",
        at(40),
        EventType::Page,
        Some("Home"),
        "web",
    );
    let e5 = event(
        &a,
        &ca.id,
        5,
        "m3",
        at(50),
        EventType::Screen,
        Some("Cart"),
        "mobile",
    );
    assert_eq!(
        w(store, "insert_events again", |tx| tx
            .insert_events(&[e4.clone(), e5.clone()])),
        vec![false, true]
    );
    assert!(w(store, "insert_events of nothing", |tx| tx
        .insert_events(&[]))
    .is_empty());

    let existing = r(store, "existing_message_ids", |tx| {
        tx.existing_message_ids(&a, &["m1".into(), "m3".into(), "m9".into(), "m1".into()])
    });
    let existing: BTreeSet<String> = existing.into_iter().collect();
    assert_eq!(
        existing,
        ["m1".to_string(), "m3".to_string()].into_iter().collect()
    );
    assert!(r(store, "existing_message_ids of nothing", |tx| tx
        .existing_message_ids(&a, &[]))
    .is_empty());
    assert_eq!(r(store, "count_events", |tx| tx.count_events(&a)), 3);

    let eb = event(
        &b,
        &cb.id,
        6,
        "m1",
        at(60),
        EventType::Track,
        Some("Elsewhere"),
        "web",
    );
    assert_eq!(
        w(store, "same message id in another workspace", |tx| tx
            .insert_events(std::slice::from_ref(&eb))),
        vec![true]
    );
    assert_eq!(r(store, "count_events b", |tx| tx.count_events(&b)), 1);
    assert_eq!(
        r(store, "count_events a unchanged", |tx| tx.count_events(&a)),
        3
    );

    let stored = r(store, "timeline", |tx| {
        tx.timeline(
            &a,
            std::slice::from_ref(&ca.id),
            &TimelineQuery {
                limit: 10,
                ..Default::default()
            },
        )
    });
    assert_eq!(
        stored,
        vec![e5, e2, e1],
        "stored events round-trip, newest first"
    );
}

/// The timeline is newest first by (timestamp, id), over one profile or several (a profile and
/// those merged into it), filtered by type, name (events whose name is in the list) and channel,
/// and paged with a `(timestamp, id)` cursor.
pub fn timeline_order_filters_and_paging(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let other = setup_workspace(store, 2);
    let root = customer(&ws, 1);
    let mut child = customer(&ws, 2);
    child.merged_into = Some(root.id.clone());
    let stranger = customer(&ws, 3);
    let outsider = customer(&other, 4);
    insert_customers(
        store,
        &[
            root.clone(),
            child.clone(),
            stranger.clone(),
            outsider.clone(),
        ],
    );

    let kinds = [
        (EventType::Track, Some("Product Viewed"), "web"),
        (EventType::Track, Some("Order Completed"), "web"),
        (EventType::Page, Some("Home"), "web"),
        (EventType::Identify, None, "server"),
        (EventType::Track, Some("Email Opened"), "email"),
        (EventType::Track, Some("Order Completed"), "store"),
    ];
    let mut root_events = Vec::new();
    for n in 0..14u64 {
        let (t, name, channel) = kinds[n as usize % kinds.len()];
        // Pairs of events share a timestamp, so ids break ties.
        let secs = 1_000 + (n as i64 / 2) * 10;
        root_events.push(event(
            &ws,
            &root.id,
            100 + n,
            &format!("r{n}"),
            at(secs),
            t,
            name,
            channel,
        ));
    }
    let child_events: Vec<Event> = (0..3u64)
        .map(|n| {
            event(
                &ws,
                &child.id,
                200 + n,
                &format!("c{n}"),
                at(1_005 + n as i64 * 30),
                EventType::Track,
                Some("Product Viewed"),
                "mobile",
            )
        })
        .collect();
    let noise = vec![
        track(&ws, &stranger.id, 300, 1_001),
        track(&other, &outsider.id, 301, 1_002),
    ];
    w(store, "insert events", |tx| {
        tx.insert_events(&root_events)?;
        tx.insert_events(&child_events)?;
        tx.insert_events(&noise)
    });

    let newest_first = |events: &[Event]| {
        let mut v = events.to_vec();
        v.sort_by(|a, b| (b.timestamp, &b.id).cmp(&(a.timestamp, &a.id)));
        v
    };
    let page_through = |customers: &[CustomerId], base: &TimelineQuery, page: i64| {
        let mut q = base.clone();
        q.limit = page;
        let mut out: Vec<EventId> = Vec::new();
        for _ in 0..1_000 {
            let rows = r(store, "timeline", |tx| tx.timeline(&ws, customers, &q));
            assert!(
                rows.len() as i64 <= page,
                "timeline returned more rows than the limit"
            );
            for e in &rows {
                assert!(
                    !out.contains(&e.id),
                    "{} appeared on two timeline pages",
                    e.id
                );
                out.push(e.id.clone());
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == page => {
                    q.before = Some((last.timestamp, last.id.clone()))
                }
                _ => return out,
            }
        }
        panic!("timeline paging never ended");
    };
    let everything = TimelineQuery::default();
    let expected_root = event_ids(&newest_first(&root_events));
    for page in [1, 3, 5, 100] {
        assert_eq!(
            page_through(std::slice::from_ref(&root.id), &everything, page),
            expected_root,
            "one profile, pages of {page}"
        );
    }
    let both: Vec<Event> = root_events.iter().chain(&child_events).cloned().collect();
    let expected_both = event_ids(&newest_first(&both));
    for page in [2, 100] {
        assert_eq!(
            page_through(&[root.id.clone(), child.id.clone()], &everything, page),
            expected_both,
            "a profile and its merged child, pages of {page}"
        );
    }

    let filtered = |label: &str, q: TimelineQuery, keep: &dyn Fn(&Event) -> bool| {
        let chosen: Vec<Event> = both.iter().filter(|e| keep(e)).cloned().collect();
        let expected = event_ids(&newest_first(&chosen));
        for page in [2, 100] {
            assert_eq!(
                page_through(&[root.id.clone(), child.id.clone()], &q, page),
                expected,
                "{label}, pages of {page}"
            );
        }
    };
    filtered(
        "type track",
        TimelineQuery {
            event_types: vec![EventType::Track],
            ..Default::default()
        },
        &|e| e.event_type == EventType::Track,
    );
    filtered(
        "types page + identify",
        TimelineQuery {
            event_types: vec![EventType::Page, EventType::Identify],
            ..Default::default()
        },
        &|e| matches!(e.event_type, EventType::Page | EventType::Identify),
    );
    filtered(
        "name",
        TimelineQuery {
            names: vec!["Order Completed".into()],
            ..Default::default()
        },
        &|e| e.name.as_deref() == Some("Order Completed"),
    );
    filtered(
        "channels",
        TimelineQuery {
            channels: vec!["email".into(), "mobile".into()],
            ..Default::default()
        },
        &|e| e.channel == "email" || e.channel == "mobile",
    );
    filtered(
        "type + name + channel",
        TimelineQuery {
            event_types: vec![EventType::Track],
            names: vec!["Order Completed".into(), "Product Viewed".into()],
            channels: vec!["web".into()],
            ..Default::default()
        },
        &|e| e.event_type == EventType::Track && e.channel == "web",
    );
    assert!(r(store, "timeline of nobody", |tx| tx.timeline(
        &ws,
        &[],
        &TimelineQuery {
            limit: 10,
            ..Default::default()
        }
    ))
    .is_empty());

    // Many profiles at once (a large merge set).
    let many: Vec<Customer> = (0..20u64).map(|n| customer(&ws, 400 + n)).collect();
    insert_customers(store, &many);
    let many_events: Vec<Event> = many
        .iter()
        .enumerate()
        .map(|(i, c)| track(&ws, &c.id, 500 + i as u64, 5_000 - i as i64 * 7))
        .collect();
    w(store, "insert many events", |tx| {
        tx.insert_events(&many_events)
    });
    let expected_many = event_ids(&newest_first(&many_events));
    for page in [3, 100] {
        assert_eq!(
            page_through(&ids(&many), &everything, page),
            expected_many,
            "twenty profiles, pages of {page}"
        );
    }
}

/// Orders are inserted once per external id and workspace (a repeat returns false and adds no
/// items); `orders_of` is newest first with items; `list_orders` pages by id; `order_stats_of`
/// sums over profiles.
pub fn orders_insert_once_and_stats(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let other = setup_workspace(store, 2);
    let (c1, c2, c3) = (customer(&ws, 1), customer(&ws, 2), customer(&ws, 3));
    let outsider = customer(&other, 4);
    insert_customers(
        store,
        &[c1.clone(), c2.clone(), c3.clone(), outsider.clone()],
    );
    let mut o1 = order(&ws, &c1.id, 1, "ext-1", 10_000, 100);
    o1.event_id = Some(eid(77));
    let o2 = order(&ws, &c1.id, 2, "ext-2", 25_990, 300);
    let o3 = order(&ws, &c2.id, 3, "ext-3", 5_000, 200);
    let o4 = order(&other, &outsider.id, 4, "ext-1", 99_900, 50);
    assert_eq!(
        w(store, "insert orders", |tx| Ok(vec![
            tx.insert_order(&o1)?,
            tx.insert_order(&o2)?,
            tx.insert_order(&o3)?
        ])),
        vec![true, true, true]
    );
    assert!(w(store, "same external id in another workspace", |tx| tx
        .insert_order(&o4)));
    let repeat = order(&ws, &c2.id, 5, "ext-1", 1, 999);
    assert!(
        !w(store, "repeat external id", |tx| tx.insert_order(&repeat)),
        "a repeated external id is not inserted"
    );

    assert_eq!(
        r(store, "orders_of", |tx| tx.orders_of(
            &ws,
            std::slice::from_ref(&c1.id),
            10
        )),
        vec![o2.clone(), o1.clone()]
    );
    assert_eq!(
        r(store, "orders_of limit", |tx| tx.orders_of(
            &ws,
            std::slice::from_ref(&c1.id),
            1
        )),
        vec![o2.clone()]
    );
    assert_eq!(
        r(store, "orders_of two profiles", |tx| tx.orders_of(
            &ws,
            &[c1.id.clone(), c2.id.clone()],
            10
        )),
        vec![o2.clone(), o3.clone(), o1.clone()]
    );
    assert_eq!(
        r(store, "orders_of c2", |tx| tx.orders_of(
            &ws,
            std::slice::from_ref(&c2.id),
            10
        )),
        vec![o3.clone()],
        "the repeat added nothing to c2"
    );
    assert!(r(store, "orders_of none", |tx| tx.orders_of(
        &ws,
        std::slice::from_ref(&c3.id),
        10
    ))
    .is_empty());

    let first = r(store, "list_orders", |tx| tx.list_orders(&ws, None, 2));
    assert_eq!(first, vec![o1.clone(), o2.clone()], "by id");
    let rest = r(store, "list_orders after", |tx| {
        tx.list_orders(&ws, Some(&o2.id), 2)
    });
    assert_eq!(rest, vec![o3.clone()]);
    assert!(r(store, "list_orders end", |tx| tx.list_orders(
        &ws,
        Some(&o3.id),
        2
    ))
    .is_empty());

    assert_eq!(
        r(store, "order_stats_of", |tx| tx
            .order_stats_of(&ws, std::slice::from_ref(&c1.id))),
        OrderStats {
            orders_count: 2,
            total_spent_minor: 35_990,
            first_order_at: Some(at(100)),
            last_order_at: Some(at(300))
        }
    );
    assert_eq!(
        r(store, "order_stats_of two", |tx| tx
            .order_stats_of(&ws, &[c1.id.clone(), c2.id.clone()])),
        OrderStats {
            orders_count: 3,
            total_spent_minor: 40_990,
            first_order_at: Some(at(100)),
            last_order_at: Some(at(300))
        }
    );
    assert_eq!(
        r(store, "order_stats_of none", |tx| tx
            .order_stats_of(&ws, std::slice::from_ref(&c3.id))),
        OrderStats::default()
    );
    assert_eq!(
        r(store, "order_stats_of nothing", |tx| tx
            .order_stats_of(&ws, &[])),
        OrderStats::default()
    );
}

/// Import runs round-trip with their rejected rows; listed newest first.
pub fn imports_round_trip(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let mut i1 = import_run(&ws, 1, 100);
    let i2 = import_run(&ws, 2, 200);
    w(store, "insert imports", |tx| {
        tx.insert_import(&i1)?;
        tx.insert_import(&i2)
    });
    assert_eq!(
        r(store, "get_import", |tx| tx.get_import(&ws, &i1.id)),
        Some(i1.clone())
    );
    i1.status = "done".into();
    i1.rows_total = 10;
    i1.rows_created = 6;
    i1.rows_updated = 1;
    i1.rows_unchanged = 1;
    i1.rows_rejected = 2;
    i1.rejected = vec![
        RejectedRow {
            line: 3,
            code: "invalid_email".into(),
            field: "email".into(),
            reason: "not a valid email".into(),
        },
        RejectedRow {
            line: 9,
            code: "invalid_date".into(),
            field: "birthday".into(),
            reason: "\"31/02\" is not a date".into(),
        },
    ];
    i1.finished_at = Some(at_micros(150, 999));
    w(store, "update_import", |tx| tx.update_import(&i1));
    assert_eq!(
        r(store, "get_import after update", |tx| tx
            .get_import(&ws, &i1.id)),
        Some(i1.clone())
    );
    assert_eq!(
        r(store, "list_imports", |tx| tx.list_imports(&ws, 10)),
        vec![i2.clone(), i1.clone()]
    );
    assert_eq!(
        r(store, "list_imports limit", |tx| tx.list_imports(&ws, 1)),
        vec![i2.clone()]
    );
    assert_eq!(
        r(store, "get_import unknown", |tx| tx
            .get_import(&ws, &ImportId::generate(1, 1))),
        None
    );
}

/// Data of one workspace is never read, changed or deleted through another workspace's id.
pub fn workspace_isolation(store: &dyn Store) {
    let a = setup_workspace(store, 1);
    let b = setup_workspace(store, 2);
    let op = operator(1, "ana@example.com");
    w(store, "operator and membership", |tx| {
        tx.insert_operator(&op)?;
        tx.upsert_membership(&Membership {
            workspace_id: a.clone(),
            operator_id: op.id.clone(),
            role: Role::Owner,
        })
    });
    // The same shapes in both workspaces, with distinct ids.
    struct Data {
        root: Customer,
        child: Customer,
        identity: Identity,
        event: Event,
        order: Order,
        merge: MergeRecord,
        conflict: IdentityConflict,
        import: ImportRun,
        key: ApiKey,
    }
    let make = |ws: &WorkspaceId, base: u64| {
        let mut root = named(ws, base + 1, "Ana Souza");
        root.email = Some(email("ana@x.com"));
        root.phone = Some(phone("+55 11 98765-4321"));
        root.tags = vec!["vip".into()];
        root.city = Some("Recife".into());
        root.stats.orders_count = 1;
        let mut child = named(ws, base + 2, "Ana S.");
        child.merged_into = Some(root.id.clone());
        Data {
            identity: identity(&root.id, IdentityKind::Email, "ana@x.com", 1),
            event: event(
                ws,
                &root.id,
                base + 3,
                "same-message",
                at(10),
                EventType::Track,
                Some("Order Completed"),
                "web",
            ),
            order: order(ws, &root.id, base + 4, "same-order", 10_000, 10),
            merge: MergeRecord {
                id: MergeId::generate(BASE_MS + base + 5, 5),
                workspace_id: ws.clone(),
                winner_id: root.id.clone(),
                loser_id: child.id.clone(),
                via: Some(key(IdentityKind::Email, "ana@x.com")),
                message_id: None,
                source: "automatic".into(),
                actor: None,
                filled: CustomerPatch::default(),
                created_at: at(20),
                undone_at: None,
                undone_by: None,
            },
            conflict: IdentityConflict {
                id: ConflictId::generate(BASE_MS + base + 6, 6),
                workspace_id: ws.clone(),
                customer_a: root.id.clone(),
                customer_b: child.id.clone(),
                via: key(IdentityKind::Email, "ana@x.com"),
                message_id: None,
                created_at: at(30),
                resolution: None,
                resolved_at: None,
            },
            import: import_run(ws, base + 7, 40),
            key: ApiKey {
                id: ApiKeyId::generate(BASE_MS + base + 8, 8),
                workspace_id: ws.clone(),
                name: "key".into(),
                role: Role::Admin,
                prefix: "sk_x".into(),
                key_hash: format!("hash-{base}"),
                created_at: at(50),
                last_used_at: None,
                revoked_at: None,
            },
            root,
            child,
        }
    };
    let da = make(&a, 0);
    let db = make(&b, 100);
    for (ws, d) in [(&a, &da), (&b, &db)] {
        w(store, "insert workspace data", |tx| {
            tx.insert_customer(&d.root)?;
            tx.insert_customer(&d.child)?;
            assert!(
                tx.insert_identity(ws, &d.identity)?,
                "the same identity key is free in each workspace"
            );
            assert_eq!(
                tx.insert_events(std::slice::from_ref(&d.event))?,
                vec![true],
                "message ids are per workspace"
            );
            assert!(
                tx.insert_order(&d.order)?,
                "external order ids are per workspace"
            );
            tx.insert_merge(&d.merge)?;
            tx.insert_conflict(&d.conflict)?;
            tx.insert_import(&d.import)?;
            tx.insert_api_key(&d.key)
        });
    }

    for (ws, mine, theirs) in [(&a, &da, &db), (&b, &db, &da)] {
        let label = |what: &str| {
            format!("{what} from workspace {ws} must not see the other workspace's data")
        };
        let roots = [
            mine.root.id.clone(),
            mine.child.id.clone(),
            theirs.root.id.clone(),
            theirs.child.id.clone(),
        ];
        r(store, "isolation reads", |tx| {
            assert_eq!(
                tx.get_customer(ws, &theirs.root.id)?,
                None,
                "{}",
                label("get_customer")
            );
            assert_eq!(
                ids(&tx.get_customers(ws, &roots)?).len(),
                2,
                "{}",
                label("get_customers")
            );
            assert_eq!(tx.count_customers(ws)?, 1, "{}", label("count_customers"));
            assert!(
                tx.merged_children(ws, &theirs.root.id)?.is_empty(),
                "{}",
                label("merged_children")
            );
            let everyone = CustomerQuery {
                limit: 100,
                ..Default::default()
            };
            assert_eq!(
                ids(&tx.list_customers(ws, &everyone)?),
                vec![mine.root.id.clone()],
                "{}",
                label("list_customers")
            );
            for filter in [
                CustomerQuery {
                    search: Some("ana".into()),
                    ..everyone.clone()
                },
                CustomerQuery {
                    search: Some("ana@x".into()),
                    ..everyone.clone()
                },
                CustomerQuery {
                    search: Some("11 98765".into()),
                    ..everyone.clone()
                },
                CustomerQuery {
                    tag: Some("vip".into()),
                    ..everyone.clone()
                },
                CustomerQuery {
                    city: Some("Recife".into()),
                    ..everyone.clone()
                },
                CustomerQuery {
                    has_ordered: Some(true),
                    ..everyone.clone()
                },
                CustomerQuery {
                    seen_after: Some(at(-1)),
                    ..everyone.clone()
                },
            ] {
                assert_eq!(
                    ids(&tx.list_customers(ws, &filter)?),
                    vec![mine.root.id.clone()],
                    "{}",
                    label(&format!("{filter:?}"))
                );
            }
            let found = tx.find_identities(ws, std::slice::from_ref(&mine.identity.key))?;
            assert_eq!(
                found,
                vec![mine.identity.clone()],
                "{}",
                label("find_identities")
            );
            assert!(
                tx.identities_of(ws, std::slice::from_ref(&theirs.root.id))?
                    .is_empty(),
                "{}",
                label("identities_of")
            );
            assert_eq!(
                tx.get_merge(ws, &theirs.merge.id)?,
                None,
                "{}",
                label("get_merge")
            );
            assert!(
                tx.merges_of(ws, std::slice::from_ref(&theirs.root.id))?
                    .is_empty(),
                "{}",
                label("merges_of")
            );
            assert_eq!(
                tx.get_conflict(ws, &theirs.conflict.id)?,
                None,
                "{}",
                label("get_conflict")
            );
            assert_eq!(
                tx.list_conflicts(ws, false, 10)?,
                vec![mine.conflict.clone()],
                "{}",
                label("list_conflicts")
            );
            assert_eq!(tx.count_events(ws)?, 1, "{}", label("count_events"));
            let all_events = TimelineQuery {
                limit: 10,
                ..Default::default()
            };
            assert!(
                tx.timeline(ws, std::slice::from_ref(&theirs.root.id), &all_events)?
                    .is_empty(),
                "{}",
                label("timeline")
            );
            assert_eq!(
                tx.timeline(ws, &roots, &all_events)?,
                vec![mine.event.clone()],
                "{}",
                label("timeline")
            );
            assert!(
                tx.orders_of(ws, std::slice::from_ref(&theirs.root.id), 10)?
                    .is_empty(),
                "{}",
                label("orders_of")
            );
            assert_eq!(
                tx.list_orders(ws, None, 10)?,
                vec![mine.order.clone()],
                "{}",
                label("list_orders")
            );
            assert_eq!(
                tx.order_stats_of(ws, std::slice::from_ref(&theirs.root.id))?,
                OrderStats::default(),
                "{}",
                label("order_stats_of")
            );
            assert_eq!(
                tx.get_import(ws, &theirs.import.id)?,
                None,
                "{}",
                label("get_import")
            );
            assert_eq!(
                tx.list_imports(ws, 10)?,
                vec![mine.import.clone()],
                "{}",
                label("list_imports")
            );
            assert_eq!(
                tx.list_api_keys(ws)?,
                vec![mine.key.clone()],
                "{}",
                label("list_api_keys")
            );
            Ok(())
        });
    }
    assert_eq!(r(store, "membership", |tx| tx.membership(&b, &op.id)), None);
    assert!(r(store, "list_members", |tx| tx.list_members(&b)).is_empty());

    // Writes through the wrong workspace change nothing.
    let mut forged = da.root.clone();
    forged.workspace_id = b.clone();
    forged.name = Some("Hijacked".into());
    assert!(
        matches!(
            write(store, |tx| tx.update_customer(&forged)),
            Err(StoreError::NotFound)
        ),
        "updating a customer through another workspace must be NotFound"
    );
    assert!(matches!(
        write(store, |tx| tx.revoke_api_key(&b, &da.key.id, at(99))),
        Err(StoreError::NotFound)
    ));
    w(store, "delete through the wrong workspace", |tx| {
        tx.delete_customer(&b, &da.root.id)
    });
    r(store, "workspace a intact", |tx| {
        assert_eq!(tx.get_customer(&a, &da.root.id)?, Some(da.root.clone()));
        assert_eq!(
            tx.identities_of(&a, std::slice::from_ref(&da.root.id))?,
            vec![da.identity.clone()]
        );
        assert_eq!(tx.count_events(&a)?, 1);
        // Workspace b still has its own identity with the same key.
        assert_eq!(
            tx.find_identities(&b, std::slice::from_ref(&db.identity.key))?,
            vec![db.identity.clone()]
        );
        Ok(())
    });
}

/// Deleting a profile removes it with its identities, events, orders (and items), and the merge
/// and conflict records that name it; other profiles keep theirs; deleting twice is harmless.
pub fn delete_customer_removes_everything(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let mut doomed = named(&ws, 1, "Ana Souza");
    doomed.email = Some(email("ana@x.com"));
    doomed.tags = vec!["vip".into()];
    let mut kept = named(&ws, 2, "Bruno Lima");
    kept.tags = vec!["vip".into()];
    let third = customer(&ws, 3);
    insert_customers(store, &[doomed.clone(), kept.clone(), third.clone()]);
    let doomed_keys = [
        identity(&doomed.id, IdentityKind::Email, "ana@x.com", 1),
        identity(&doomed.id, IdentityKind::UserId, "u-1", 1),
    ];
    let kept_key = identity(&kept.id, IdentityKind::UserId, "u-2", 1);
    let merge = |n: u64, winner: &CustomerId, loser: &CustomerId| MergeRecord {
        id: MergeId::generate(BASE_MS + n, u128::from(n)),
        workspace_id: ws.clone(),
        winner_id: winner.clone(),
        loser_id: loser.clone(),
        via: None,
        message_id: None,
        source: "api".into(),
        actor: None,
        filled: CustomerPatch::default(),
        created_at: at(n as i64),
        undone_at: Some(at(n as i64 + 1)),
        undone_by: None,
    };
    let (m_win, m_lose, m_other) = (
        merge(1, &doomed.id, &third.id),
        merge(2, &kept.id, &doomed.id),
        merge(3, &kept.id, &third.id),
    );
    let conflict = |n: u64, x: &CustomerId, y: &CustomerId| IdentityConflict {
        id: ConflictId::generate(BASE_MS + n, u128::from(n)),
        workspace_id: ws.clone(),
        customer_a: x.clone(),
        customer_b: y.clone(),
        via: key(IdentityKind::Email, "ana@x.com"),
        message_id: None,
        created_at: at(n as i64),
        resolution: None,
        resolved_at: None,
    };
    let (k_a, k_b, k_other) = (
        conflict(4, &doomed.id, &kept.id),
        conflict(5, &third.id, &doomed.id),
        conflict(6, &kept.id, &third.id),
    );
    let doomed_events = [
        track(&ws, &doomed.id, 10, 100),
        track(&ws, &doomed.id, 11, 200),
    ];
    let kept_event = track(&ws, &kept.id, 12, 300);
    let doomed_order = order(&ws, &doomed.id, 20, "ext-doomed", 10_000, 100);
    let kept_order = order(&ws, &kept.id, 21, "ext-kept", 20_000, 200);
    w(store, "insert related data", |tx| {
        tx.insert_identities(&ws, &doomed_keys)?;
        tx.insert_identity(&ws, &kept_key)?;
        for m in [&m_win, &m_lose, &m_other] {
            tx.insert_merge(m)?;
        }
        for k in [&k_a, &k_b, &k_other] {
            tx.insert_conflict(k)?;
        }
        tx.insert_events(&doomed_events)?;
        tx.insert_events(std::slice::from_ref(&kept_event))?;
        tx.insert_order(&doomed_order)?;
        tx.insert_order(&kept_order)
    });

    w(store, "delete_customer", |tx| {
        tx.delete_customer(&ws, &doomed.id)
    });
    r(store, "after delete", |tx| {
        assert_eq!(
            tx.get_customer(&ws, &doomed.id)?,
            None,
            "the profile is gone"
        );
        assert!(
            tx.identities_of(&ws, std::slice::from_ref(&doomed.id))?
                .is_empty(),
            "its identities are gone"
        );
        let keys: Vec<IdentityKey> = doomed_keys.iter().map(|i| i.key.clone()).collect();
        assert!(
            tx.find_identities(&ws, &keys)?.is_empty(),
            "its identity keys are free"
        );
        let all = TimelineQuery {
            limit: 100,
            ..Default::default()
        };
        assert!(
            tx.timeline(&ws, std::slice::from_ref(&doomed.id), &all)?
                .is_empty(),
            "its events are gone"
        );
        assert!(tx
            .existing_message_ids(&ws, &["msg-10".into(), "msg-11".into()])?
            .is_empty());
        assert_eq!(tx.count_events(&ws)?, 1);
        assert!(
            tx.orders_of(&ws, std::slice::from_ref(&doomed.id), 10)?
                .is_empty(),
            "its orders are gone"
        );
        assert_eq!(
            tx.list_orders(&ws, None, 10)?,
            vec![kept_order.clone()],
            "its orders are gone from the list"
        );
        assert_eq!(
            tx.order_stats_of(&ws, std::slice::from_ref(&doomed.id))?,
            OrderStats::default()
        );
        assert!(
            tx.merges_of(&ws, std::slice::from_ref(&doomed.id))?
                .is_empty(),
            "merges naming it are gone"
        );
        assert_eq!(tx.get_merge(&ws, &m_win.id)?, None);
        assert_eq!(tx.get_merge(&ws, &m_lose.id)?, None);
        assert_eq!(
            tx.get_conflict(&ws, &k_a.id)?,
            None,
            "conflicts naming it are gone"
        );
        assert_eq!(tx.get_conflict(&ws, &k_b.id)?, None);
        let everyone = CustomerQuery {
            limit: 100,
            ..Default::default()
        };
        assert!(!ids(&tx.list_customers(&ws, &everyone)?).contains(&doomed.id));
        let by_name = CustomerQuery {
            search: Some("ana".into()),
            ..everyone.clone()
        };
        assert!(
            tx.list_customers(&ws, &by_name)?.is_empty(),
            "it is not found by search"
        );
        let by_tag = CustomerQuery {
            tag: Some("vip".into()),
            ..everyone.clone()
        };
        assert_eq!(
            ids(&tx.list_customers(&ws, &by_tag)?),
            vec![kept.id.clone()],
            "nor by tag"
        );

        assert_eq!(
            tx.get_customer(&ws, &kept.id)?,
            Some(kept.clone()),
            "other profiles stay"
        );
        assert_eq!(
            tx.identities_of(&ws, std::slice::from_ref(&kept.id))?,
            vec![kept_key.clone()]
        );
        assert_eq!(
            tx.timeline(&ws, std::slice::from_ref(&kept.id), &all)?,
            vec![kept_event.clone()]
        );
        assert_eq!(
            tx.orders_of(&ws, std::slice::from_ref(&kept.id), 10)?,
            vec![kept_order.clone()]
        );
        assert_eq!(
            tx.merges_of(&ws, std::slice::from_ref(&kept.id))?,
            vec![m_other.clone()]
        );
        assert_eq!(tx.list_conflicts(&ws, false, 10)?, vec![k_other.clone()]);
        Ok(())
    });
    w(store, "delete_customer twice is harmless", |tx| {
        tx.delete_customer(&ws, &doomed.id)
    });
    // The freed keys can be used again.
    let reborn = named(&ws, 9, "Ana Souza");
    insert_customers(store, std::slice::from_ref(&reborn));
    assert!(w(store, "reuse a freed identity", |tx| tx.insert_identity(
        &ws,
        &identity(&reborn.id, IdentityKind::Email, "ana@x.com", 9)
    )));
    assert_eq!(
        w(store, "reuse a freed message id", |tx| tx.insert_events(&[
            event(
                &ws,
                &reborn.id,
                30,
                "msg-10",
                at(1),
                EventType::Track,
                Some("X"),
                "web"
            )
        ])),
        vec![true]
    );
    assert!(w(store, "reuse a freed order id", |tx| tx.insert_order(
        &order(&ws, &reborn.id, 31, "ext-doomed", 1_000, 1)
    )));
}

/// Updating (or revoking, or touching) a record that does not exist is `NotFound`, not a silent
/// no-op: the caller named something that is not there.
pub fn updates_of_missing_rows_are_not_found(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let c = customer(&ws, 1);
    insert_customers(store, std::slice::from_ref(&c));
    let expect_not_found = |what: &str, result: StoreResult<()>| match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{what} of a missing row must be NotFound, got {other:?}"),
    };
    expect_not_found(
        "update_workspace",
        write(store, |tx| tx.update_workspace(&workspace(9, "Ghost"))),
    );
    expect_not_found(
        "update_operator",
        write(store, |tx| tx.update_operator(&operator(9, "ghost@x.com"))),
    );
    expect_not_found(
        "update_customer",
        write(store, |tx| tx.update_customer(&customer(&ws, 9))),
    );
    let merge = MergeRecord {
        id: MergeId::generate(BASE_MS, 9),
        workspace_id: ws.clone(),
        winner_id: c.id.clone(),
        loser_id: c.id.clone(),
        via: None,
        message_id: None,
        source: "api".into(),
        actor: None,
        filled: CustomerPatch::default(),
        created_at: at(1),
        undone_at: None,
        undone_by: None,
    };
    expect_not_found("update_merge", write(store, |tx| tx.update_merge(&merge)));
    let conflict = IdentityConflict {
        id: ConflictId::generate(BASE_MS, 9),
        workspace_id: ws.clone(),
        customer_a: c.id.clone(),
        customer_b: c.id.clone(),
        via: key(IdentityKind::UserId, "u"),
        message_id: None,
        created_at: at(1),
        resolution: None,
        resolved_at: None,
    };
    expect_not_found(
        "update_conflict",
        write(store, |tx| tx.update_conflict(&conflict)),
    );
    expect_not_found(
        "update_import",
        write(store, |tx| tx.update_import(&import_run(&ws, 9, 1))),
    );
    let ghost_key = ApiKeyId::generate(BASE_MS, 9);
    expect_not_found(
        "revoke_api_key",
        write(store, |tx| tx.revoke_api_key(&ws, &ghost_key, at(1))),
    );
    expect_not_found(
        "touch_api_key",
        write(store, |tx| tx.touch_api_key(&ws, &ghost_key, at(1))),
    );
}

/// Running the migrations again changes nothing and loses nothing.
pub fn migrate_is_idempotent(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let c = named(&ws, 1, "Ana");
    insert_customers(store, std::slice::from_ref(&c));
    store
        .migrate()
        .unwrap_or_else(|e| panic!("a second migrate failed: {e}"));
    store
        .migrate()
        .unwrap_or_else(|e| panic!("a third migrate failed: {e}"));
    assert_eq!(
        r(store, "data after migrate", |tx| tx
            .get_customer(&ws, &c.id)),
        Some(c.clone())
    );
    let d = named(&ws, 2, "Bia");
    insert_customers(store, std::slice::from_ref(&d));
    assert_eq!(
        r(store, "count after migrate", |tx| tx.count_customers(&ws)),
        2
    );
}

/// A write whose closure fails commits nothing and returns the closure's error unchanged; a
/// failed statement (a conflict) inside it fails the whole write.
pub fn failed_write_rolls_back(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let c1 = customer(&ws, 1);
    let result = write(store, |tx| {
        tx.insert_customer(&c1)?;
        tx.insert_events(&[track(&ws, &c1.id, 1, 1)])?;
        Err::<(), _>(StoreError::NotFound)
    });
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "the closure's error comes back unchanged, got {result:?}"
    );
    assert_eq!(
        r(store, "nothing committed", |tx| tx
            .get_customer(&ws, &c1.id)),
        None,
        "a failed write is rolled back"
    );
    assert_eq!(
        r(store, "no events committed", |tx| tx.count_events(&ws)),
        0
    );

    let c2 = customer(&ws, 2);
    insert_customers(store, std::slice::from_ref(&c2));
    let c3 = customer(&ws, 3);
    let result = write(store, |tx| {
        tx.insert_customer(&c3)?;
        tx.insert_customer(&c2)
    });
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "a duplicate insert is a Conflict, got {result:?}"
    );
    assert_eq!(
        r(store, "rolled back", |tx| tx.get_customer(&ws, &c3.id)),
        None,
        "the rows before the conflict are rolled back"
    );

    // The store is usable after failures.
    insert_customers(store, std::slice::from_ref(&c3));
    assert_eq!(r(store, "count", |tx| tx.count_customers(&ws)), 2);
}

// --- segments, evaluation queue, lifecycle -----------------------------------------------------

fn sid(n: u64) -> SegmentId {
    SegmentId::generate(BASE_MS + n, u128::from(n) * 6_007)
}

/// A definition with some nesting, so that its JSON form is exercised.
fn definition(referenced: &str) -> Expr {
    Expr::And {
        all: vec![
            Expr::Event(EventCondition {
                event: "Order Completed".into(),
                count: Count::AtLeast { times: 2 },
                window: Window::Last {
                    amount: 30,
                    unit: TimeUnit::Days,
                },
                filters: Vec::new(),
            }),
            Expr::Not {
                expr: Box::new(Expr::Segment(SegmentCondition {
                    segment: referenced.into(),
                })),
            },
        ],
    }
}

/// Segment `n` of `ws`: dynamic ones have a definition, static ones none.
fn segment(ws: &WorkspaceId, n: u64, name: &str, kind: SegmentKind) -> SegmentRecord {
    SegmentRecord {
        id: sid(n),
        workspace_id: ws.clone(),
        name: name.to_string(),
        description: format!("Segment number {n}"),
        kind,
        definition: match kind {
            SegmentKind::Dynamic => Some(definition("vip")),
            SegmentKind::Static => None,
        },
        member_count: 0,
        evaluated_at: None,
        created_at: at_micros(n as i64, 123_456),
        updated_at: at_micros(n as i64, 123_456),
    }
}

fn insert_segments(store: &dyn Store, segments: &[SegmentRecord]) {
    w(store, "insert segments", |tx| {
        segments.iter().try_for_each(|s| tx.insert_segment(s))
    });
}

fn member_count(store: &dyn Store, ws: &WorkspaceId, id: &SegmentId) -> i64 {
    r(store, "get_segment for its count", |tx| {
        tx.get_segment(ws, id)
    })
    .unwrap_or_else(|| panic!("segment {id} is missing"))
    .member_count
}

fn expect_conflict<T: std::fmt::Debug>(what: &str, result: StoreResult<T>, constraint: &str) {
    match result {
        Err(StoreError::Conflict(name)) if name == constraint => {}
        other => panic!("{what}: expected Conflict({constraint:?}), got {other:?}"),
    }
}

fn expect_not_found<T: std::fmt::Debug>(what: &str, result: StoreResult<T>) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn scores(pairs: &[(&str, serde_json::Value)]) -> Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// JSON settings per workspace: none until put, then replaced by each put.
pub fn settings_round_trip(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    assert_eq!(
        r(store, "get_setting none", |tx| tx
            .get_setting(&ws, "lifecycle_rules")),
        None
    );
    let rules =
        json!({"lapsed_after_days": 180, "stages": ["reach", "nurture"], "nested": {"a": 1.5}});
    w(store, "put_setting", |tx| {
        tx.put_setting(&ws, "lifecycle_rules", &rules)
    });
    assert_eq!(
        r(store, "get_setting", |tx| tx
            .get_setting(&ws, "lifecycle_rules")),
        Some(rules.clone())
    );
    let replaced = json!({"lapsed_after_days": 90});
    w(store, "put_setting again", |tx| {
        tx.put_setting(&ws, "lifecycle_rules", &replaced)?;
        tx.put_setting(&ws, "other", &json!("text"))
    });
    assert_eq!(
        r(store, "get_setting replaced", |tx| tx
            .get_setting(&ws, "lifecycle_rules")),
        Some(replaced)
    );
    assert_eq!(
        r(store, "get_setting other key", |tx| tx
            .get_setting(&ws, "other")),
        Some(json!("text"))
    );
    assert_eq!(
        r(store, "get_setting unknown key", |tx| tx
            .get_setting(&ws, "nope")),
        None
    );
}

/// Segment CRUD. Names are unique per workspace without regard to case: a taken name is
/// `Conflict("segments_name")` on insert and update (a segment may change the case of its own
/// name), and the failed statement leaves the transaction usable. Pinned: `list_segments` orders
/// by lower-cased name then id; `update_segment` leaves `member_count` alone (the member methods
/// keep it); deleting a segment deletes its members and count history.
pub fn segments_round_trip(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let other_ws = setup_workspace(store, 2);
    let vip = segment(&ws, 1, "VIP Clientes", SegmentKind::Dynamic);
    let list = segment(&ws, 2, "black friday", SegmentKind::Static);
    let mut zeta = segment(&ws, 3, "Zeta", SegmentKind::Dynamic);
    zeta.evaluated_at = Some(at_micros(50, 999_999));
    insert_segments(store, &[vip.clone(), list.clone(), zeta.clone()]);
    assert_eq!(
        r(store, "get_segment", |tx| tx.get_segment(&ws, &vip.id)),
        Some(vip.clone()),
        "a segment round-trips, definition and microseconds included"
    );
    assert_eq!(
        r(store, "get_segment static", |tx| tx
            .get_segment(&ws, &list.id)),
        Some(list.clone())
    );
    assert_eq!(
        r(store, "get_segment unknown", |tx| tx
            .get_segment(&ws, &sid(99))),
        None
    );
    assert_eq!(
        r(store, "segment_by_name any case", |tx| tx
            .segment_by_name(&ws, "vip clientes")),
        Some(vip.clone())
    );
    assert_eq!(
        r(store, "segment_by_name upper case", |tx| tx
            .segment_by_name(&ws, "BLACK FRIDAY")),
        Some(list.clone())
    );
    assert_eq!(
        r(store, "segment_by_name unknown", |tx| tx
            .segment_by_name(&ws, "nobody")),
        None
    );
    assert_eq!(
        r(store, "list_segments", |tx| tx.list_segments(&ws)),
        vec![list.clone(), vip.clone(), zeta.clone()],
        "by lower-cased name"
    );

    // The name is taken in any case; the transaction goes on after the conflict.
    let clash = segment(&ws, 4, "vip CLIENTES", SegmentKind::Static);
    let fresh = segment(&ws, 5, "Recentes", SegmentKind::Static);
    w(
        store,
        "a name conflict leaves the transaction usable",
        |tx| {
            expect_conflict(
                "insert a taken name",
                tx.insert_segment(&clash),
                "segments_name",
            );
            tx.insert_segment(&fresh)
        },
    );
    assert_eq!(
        r(store, "the conflicting segment is not stored", |tx| tx
            .get_segment(&ws, &clash.id)),
        None
    );
    assert_eq!(
        r(store, "the segment after the conflict is stored", |tx| tx
            .get_segment(&ws, &fresh.id)),
        Some(fresh.clone())
    );
    // The same name in another workspace is free.
    let elsewhere = segment(&other_ws, 6, "VIP Clientes", SegmentKind::Dynamic);
    insert_segments(store, std::slice::from_ref(&elsewhere));

    // Updates: every column but member_count; the name rule holds.
    let mut renamed = zeta.clone();
    renamed.name = "black FRIDAY".into();
    expect_conflict(
        "update to a taken name",
        write(store, |tx| tx.update_segment(&renamed)),
        "segments_name",
    );
    let mut changed = zeta.clone();
    changed.name = "ZETA".into();
    changed.description = "Outra descrição".into();
    changed.kind = SegmentKind::Static;
    changed.definition = None;
    changed.evaluated_at = None;
    changed.updated_at = at_micros(70, 1);
    changed.member_count = 42;
    w(store, "update_segment", |tx| tx.update_segment(&changed));
    let stored = r(store, "get_segment after update", |tx| {
        tx.get_segment(&ws, &zeta.id)
    });
    assert_eq!(
        stored,
        Some(SegmentRecord {
            member_count: 0,
            ..changed.clone()
        }),
        "update_segment writes every column but member_count"
    );
    let mut dynamic_again = changed.clone();
    dynamic_again.kind = SegmentKind::Dynamic;
    dynamic_again.definition = Some(definition("black friday"));
    dynamic_again.member_count = 0;
    w(store, "update_segment definition", |tx| {
        tx.update_segment(&dynamic_again)
    });
    assert_eq!(
        r(store, "get_segment after second update", |tx| tx
            .get_segment(&ws, &zeta.id)),
        Some(dynamic_again.clone())
    );
    expect_not_found(
        "update_segment of a missing segment",
        write(store, |tx| {
            tx.update_segment(&segment(&ws, 99, "Ghost", SegmentKind::Static))
        }),
    );

    // Delete takes members and count history along.
    let c = customer(&ws, 1);
    insert_customers(store, std::slice::from_ref(&c));
    w(store, "members and counts", |tx| {
        tx.add_segment_members(&ws, &list.id, std::slice::from_ref(&c.id), at(5))?;
        tx.add_segment_members(&ws, &vip.id, std::slice::from_ref(&c.id), at(5))?;
        tx.insert_segment_count(
            &ws,
            &list.id,
            &SegmentCount {
                at: at(5),
                count: 1,
            },
        )
    });
    w(store, "delete_segment", |tx| {
        tx.delete_segment(&ws, &list.id)
    });
    assert_eq!(
        r(store, "get_segment deleted", |tx| tx
            .get_segment(&ws, &list.id)),
        None
    );
    assert_eq!(
        r(store, "memberships after delete", |tx| tx
            .memberships_of(&ws, std::slice::from_ref(&c.id))),
        vec![(vip.id.clone(), c.id.clone(), at(5))],
        "the deleted segment's members are gone, the others stay"
    );
    assert_eq!(
        r(store, "count history after delete", |tx| tx.segment_counts(
            &ws,
            &list.id,
            at(0)
        )),
        Vec::new()
    );
    expect_not_found(
        "delete_segment twice",
        write(store, |tx| tx.delete_segment(&ws, &list.id)),
    );
    // The name is free again.
    let reborn = segment(&ws, 7, "Black Friday", SegmentKind::Static);
    insert_segments(store, std::slice::from_ref(&reborn));
    assert_eq!(
        r(store, "the freed name's segment has no members", |tx| tx
            .segment_members(&ws, &reborn.id, None, 10)),
        Vec::new()
    );
    assert_eq!(
        r(store, "list_segments at the end", |tx| tx
            .list_segments(&ws)),
        vec![
            reborn,
            fresh,
            SegmentRecord {
                member_count: 1,
                ..vip.clone()
            },
            dynamic_again
        ]
    );
}

/// Members are added and removed in bulk; each call says how many it actually added or removed
/// and `member_count` follows. Pinned: an existing member keeps its `since`; ids the workspace has
/// no customer for are not added; adding to or removing from a missing segment is `NotFound`;
/// `memberships_of` orders by customer then segment; `segment_members` pages by id.
pub fn segment_members_and_counts(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let other_ws = setup_workspace(store, 2);
    let customers: Vec<Customer> = (1..=6).map(|n| customer(&ws, n)).collect();
    insert_customers(store, &customers);
    let stranger = customer(&other_ws, 50);
    insert_customers(store, std::slice::from_ref(&stranger));
    let ids = ids(&customers);
    let a = segment(&ws, 1, "A", SegmentKind::Static);
    let b = segment(&ws, 2, "B", SegmentKind::Dynamic);
    insert_segments(store, &[a.clone(), b.clone()]);

    let since = at_micros(10, 500_001);
    let added = w(store, "add members", |tx| {
        tx.add_segment_members(&ws, &a.id, &ids[0..4], since)
    });
    assert_eq!(added, 4);
    assert_eq!(member_count(store, &ws, &a.id), 4);
    // Again, overlapping, with a duplicate, an unknown id and another workspace's customer.
    let later = at(20);
    let mut batch = ids[2..6].to_vec();
    batch.push(ids[5].clone());
    batch.push(cid(99));
    batch.push(stranger.id.clone());
    let added = w(store, "add members again", |tx| {
        tx.add_segment_members(&ws, &a.id, &batch, later)
    });
    assert_eq!(added, 2, "only customers 5 and 6 are new");
    assert_eq!(member_count(store, &ws, &a.id), 6);
    assert_eq!(
        w(store, "add nothing", |tx| tx.add_segment_members(
            &ws,
            &a.id,
            &[],
            later
        )),
        0
    );
    assert_eq!(
        r(store, "segment_members", |tx| tx
            .segment_members(&ws, &a.id, None, 100)),
        sorted(&ids),
        "members in id order, unknown customers left out"
    );
    let memberships = r(store, "memberships_of", |tx| tx.memberships_of(&ws, &ids));
    let since_of: Vec<(CustomerId, Timestamp)> = memberships
        .iter()
        .map(|(_, c, since)| (c.clone(), *since))
        .collect();
    assert_eq!(
        since_of,
        vec![
            (ids[0].clone(), since),
            (ids[1].clone(), since),
            (ids[2].clone(), since),
            (ids[3].clone(), since),
            (ids[4].clone(), later),
            (ids[5].clone(), later),
        ],
        "members added again keep their first since (microseconds kept)"
    );

    w(store, "members of b", |tx| {
        tx.add_segment_members(&ws, &b.id, &[ids[1].clone(), ids[4].clone()], at(30))
    });
    let mut expected = vec![
        (a.id.clone(), ids[1].clone(), since),
        (b.id.clone(), ids[1].clone(), at(30)),
        (a.id.clone(), ids[4].clone(), later),
        (b.id.clone(), ids[4].clone(), at(30)),
        (a.id.clone(), ids[5].clone(), later),
    ];
    expected.sort_by(|x, y| (&x.1, &x.0).cmp(&(&y.1, &y.0)));
    assert_eq!(
        r(store, "memberships_of many", |tx| tx.memberships_of(
            &ws,
            &[ids[5].clone(), ids[1].clone(), ids[4].clone(), cid(99)]
        )),
        expected,
        "by customer, then segment"
    );
    assert_eq!(
        r(store, "memberships_of none", |tx| tx
            .memberships_of(&ws, &[])),
        Vec::new()
    );

    // Paging through members.
    let sorted_ids = sorted(&ids);
    let page1 = r(store, "segment_members page 1", |tx| {
        tx.segment_members(&ws, &a.id, None, 4)
    });
    assert_eq!(page1, sorted_ids[0..4].to_vec());
    let page2 = r(store, "segment_members page 2", |tx| {
        tx.segment_members(&ws, &a.id, page1.last(), 4)
    });
    assert_eq!(page2, sorted_ids[4..6].to_vec());
    assert_eq!(
        r(store, "segment_members limit 0", |tx| tx
            .segment_members(&ws, &a.id, None, 0)),
        Vec::new()
    );
    assert_eq!(
        r(store, "segment_members unknown segment", |tx| tx
            .segment_members(&ws, &sid(99), None, 10)),
        Vec::new()
    );

    // Removing: absent members are ignored.
    let removed = w(store, "remove members", |tx| {
        tx.remove_segment_members(
            &ws,
            &a.id,
            &[ids[0].clone(), ids[0].clone(), ids[1].clone(), cid(99)],
        )
    });
    assert_eq!(removed, 2);
    assert_eq!(member_count(store, &ws, &a.id), 4);
    assert_eq!(
        w(store, "remove them again", |tx| tx.remove_segment_members(
            &ws,
            &a.id,
            &ids[0..2]
        )),
        0
    );
    assert_eq!(member_count(store, &ws, &a.id), 4);
    assert_eq!(member_count(store, &ws, &b.id), 2, "b is untouched");
    // Re-adding a removed member gives it a new since.
    assert_eq!(
        w(store, "re-add", |tx| tx.add_segment_members(
            &ws,
            &a.id,
            &ids[0..1],
            at(40)
        )),
        1
    );
    assert_eq!(
        r(store, "memberships_of re-added", |tx| tx
            .memberships_of(&ws, &ids[0..1])),
        vec![(a.id.clone(), ids[0].clone(), at(40))]
    );
    assert_eq!(member_count(store, &ws, &a.id), 5);

    expect_not_found(
        "add to a missing segment",
        write(store, |tx| {
            tx.add_segment_members(&ws, &sid(99), &ids, at(1))
        }),
    );
    expect_not_found(
        "remove from a missing segment",
        write(store, |tx| tx.remove_segment_members(&ws, &sid(99), &ids)),
    );
    expect_not_found(
        "add to another workspace's segment",
        write(store, |tx| {
            tx.add_segment_members(&other_ws, &a.id, &ids, at(1))
        }),
    );

    // Count history: at or after `since`, oldest first.
    let points = [
        SegmentCount {
            at: at_micros(300, 7),
            count: 30,
        },
        SegmentCount {
            at: at_micros(100, 250_000),
            count: 10,
        },
        SegmentCount {
            at: at_micros(200, 0),
            count: 20,
        },
    ];
    w(store, "insert_segment_count", |tx| {
        points
            .iter()
            .try_for_each(|p| tx.insert_segment_count(&ws, &a.id, p))?;
        tx.insert_segment_count(
            &ws,
            &b.id,
            &SegmentCount {
                at: at(150),
                count: 99,
            },
        )
    });
    assert_eq!(
        r(store, "segment_counts all", |tx| tx.segment_counts(
            &ws,
            &a.id,
            at(0)
        )),
        vec![points[1], points[2], points[0]]
    );
    assert_eq!(
        r(store, "segment_counts since (inclusive)", |tx| tx
            .segment_counts(&ws, &a.id, at(200))),
        vec![points[2], points[0]]
    );
    assert_eq!(
        r(store, "segment_counts after the last", |tx| tx
            .segment_counts(&ws, &a.id, at(301))),
        Vec::new()
    );
}

/// The evaluation queue: marking a marked customer again keeps one mark (in its place), marks are
/// taken oldest first across workspaces, and cleared ones are gone. `take_dirty` runs in a write
/// transaction (PostgreSQL locks what it takes).
pub fn evaluation_queue(store: &dyn Store) {
    let a = setup_workspace(store, 1);
    let b = setup_workspace(store, 2);
    let dirty = |ws: &WorkspaceId, n: u64| DirtyCustomer {
        workspace_id: ws.clone(),
        customer_id: cid(n),
    };
    assert_eq!(
        w(store, "take from an empty queue", |tx| tx.take_dirty(10)),
        Vec::new()
    );
    w(store, "mark", |tx| {
        tx.mark_dirty(&a, &[cid(3), cid(1)])?;
        tx.mark_dirty(&b, &[cid(2)])?;
        tx.mark_dirty(&a, &[cid(3), cid(3)])
    });
    w(store, "mark again", |tx| {
        tx.mark_dirty(&a, &[cid(1), cid(4)])?;
        tx.mark_dirty(&a, &[])
    });
    // Peeking at one workspace's marks takes nothing.
    let mut of_a = r(store, "dirty of a", |tx| tx.dirty_of(&a, 100));
    of_a.sort();
    assert_eq!(of_a, vec![cid(1), cid(3), cid(4)]);
    assert_eq!(
        r(store, "dirty of b", |tx| tx.dirty_of(&b, 100)),
        vec![cid(2)]
    );
    assert_eq!(r(store, "dirty of a, 2", |tx| tx.dirty_of(&a, 2)).len(), 2);
    let all = w(store, "take all", |tx| tx.take_dirty(100));
    assert_eq!(all.len(), 4, "one mark per customer: {all:?}");
    // Oldest call first (the marks of one call in any order).
    let first_call: std::collections::HashSet<DirtyCustomer> = all[0..2].iter().cloned().collect();
    assert_eq!(
        first_call,
        [dirty(&a, 3), dirty(&a, 1)].into_iter().collect(),
        "the first call's marks come first: {all:?}"
    );
    assert_eq!(all[2], dirty(&b, 2));
    assert_eq!(
        all[3],
        dirty(&a, 4),
        "marked again: still in its first place"
    );
    assert_eq!(
        w(store, "take 2", |tx| tx.take_dirty(2)),
        all[0..2].to_vec(),
        "taking does not remove"
    );
    assert_eq!(w(store, "take 0", |tx| tx.take_dirty(0)), Vec::new());
    w(store, "clear", |tx| {
        tx.clear_dirty(&[all[0].clone(), all[2].clone(), dirty(&b, 77)])
    });
    assert_eq!(
        w(store, "take after clear", |tx| tx.take_dirty(100)),
        vec![all[1].clone(), all[3].clone()]
    );
    // A cleared customer marked again goes to the end.
    w(store, "mark a cleared one", |tx| {
        tx.mark_dirty(&a, std::slice::from_ref(&all[0].customer_id))
    });
    assert_eq!(
        w(store, "take after re-mark", |tx| tx.take_dirty(100)),
        vec![all[1].clone(), all[3].clone(), all[0].clone()]
    );
    // Take and clear in one transaction, as an evaluator does.
    let taken = w(store, "take and clear", |tx| {
        let taken = tx.take_dirty(2)?;
        tx.clear_dirty(&taken)?;
        Ok(taken)
    });
    assert_eq!(taken, vec![all[1].clone(), all[3].clone()]);
    assert_eq!(
        w(store, "what is left", |tx| tx.take_dirty(100)),
        vec![all[0].clone()]
    );
    w(store, "clear nothing", |tx| tx.clear_dirty(&[]));
    assert_eq!(
        r(store, "dirty of b after clearing", |tx| tx
            .dirty_of(&b, 100)),
        Vec::new()
    );
}

/// Computed values: `set_stages` and `set_scores` each write their own columns, creating the row
/// as needed and leaving the other columns as they were. Pinned: `computed_of` orders by customer
/// id; `stage_counts` lists stages in the order of `Stage::ALL`, leaving out stages nobody is in,
/// and counts surviving customers only.
pub fn computed_stages_and_scores(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let customers: Vec<Customer> = (1..=5).map(|n| customer(&ws, n)).collect();
    let mut merged = customer(&ws, 6);
    merged.merged_into = Some(cid(1));
    insert_customers(store, &customers);
    insert_customers(store, std::slice::from_ref(&merged));
    let ids = ids(&customers);

    assert_eq!(
        r(store, "computed_of nothing yet", |tx| tx
            .computed_of(&ws, &ids)),
        Vec::new()
    );
    assert_eq!(
        r(store, "stage_counts nothing yet", |tx| tx.stage_counts(&ws)),
        Vec::new()
    );
    w(store, "set_stages", |tx| {
        tx.set_stages(
            &ws,
            &[
                (ids[0].clone(), Stage::Loyalty, at_micros(10, 1)),
                (ids[1].clone(), Stage::Reach, at(11)),
                (ids[2].clone(), Stage::Loyalty, at(12)),
                (merged.id.clone(), Stage::Loyalty, at(13)),
            ],
        )
    });
    let rfm = scores(&[
        ("rfm_group", json!("champions")),
        ("rfm_r", json!(5)),
        ("p_alive", json!(0.93)),
    ]);
    w(store, "set_scores", |tx| {
        tx.set_scores(
            &ws,
            &[
                (ids[0].clone(), rfm.clone()),
                (ids[3].clone(), scores(&[("predicted_clv", json!(1234.5))])),
            ],
            at_micros(20, 999_999),
        )
    });
    let expected = vec![
        CustomerComputed {
            customer_id: ids[0].clone(),
            stage: Some(Stage::Loyalty),
            stage_since: Some(at_micros(10, 1)),
            scores: rfm.clone(),
            scores_at: Some(at_micros(20, 999_999)),
        },
        CustomerComputed {
            customer_id: ids[1].clone(),
            stage: Some(Stage::Reach),
            stage_since: Some(at(11)),
            scores: Map::new(),
            scores_at: None,
        },
        CustomerComputed {
            customer_id: ids[2].clone(),
            stage: Some(Stage::Loyalty),
            stage_since: Some(at(12)),
            scores: Map::new(),
            scores_at: None,
        },
        CustomerComputed {
            customer_id: ids[3].clone(),
            stage: None,
            stage_since: None,
            scores: scores(&[("predicted_clv", json!(1234.5))]),
            scores_at: Some(at_micros(20, 999_999)),
        },
    ];
    let mut asked = ids.clone();
    asked.reverse();
    assert_eq!(
        r(store, "computed_of", |tx| tx.computed_of(&ws, &asked)),
        expected,
        "by customer id; customer 5, never computed, left out"
    );

    // A new stage leaves the scores; new scores leave the stage, and replace the old scores.
    w(store, "set_stages again", |tx| {
        tx.set_stages(&ws, &[(ids[0].clone(), Stage::AtRisk, at(30))])
    });
    let only_r = scores(&[("rfm_r", json!(2))]);
    w(store, "set_scores again", |tx| {
        tx.set_scores(&ws, &[(ids[1].clone(), only_r.clone())], at(31))?;
        tx.set_scores(&ws, &[(ids[0].clone(), only_r.clone())], at(32))
    });
    let now = r(store, "computed_of after", |tx| {
        tx.computed_of(&ws, &ids[0..2])
    });
    assert_eq!(
        now,
        vec![
            CustomerComputed {
                customer_id: ids[0].clone(),
                stage: Some(Stage::AtRisk),
                stage_since: Some(at(30)),
                scores: only_r.clone(),
                scores_at: Some(at(32)),
            },
            CustomerComputed {
                customer_id: ids[1].clone(),
                stage: Some(Stage::Reach),
                stage_since: Some(at(11)),
                scores: only_r.clone(),
                scores_at: Some(at(31)),
            },
        ]
    );
    assert_eq!(
        r(store, "computed_of none", |tx| tx.computed_of(&ws, &[])),
        Vec::new()
    );
    w(store, "empty batches", |tx| {
        tx.set_stages(&ws, &[])?;
        tx.set_scores(&ws, &[], at(1))
    });

    // Merged-away profiles and customers without a stage are not counted.
    assert_eq!(
        r(store, "stage_counts", |tx| tx.stage_counts(&ws)),
        vec![(Stage::Reach, 1), (Stage::Loyalty, 1), (Stage::AtRisk, 1)]
    );
    w(store, "more stages", |tx| {
        tx.set_stages(
            &ws,
            &[
                (ids[3].clone(), Stage::Lapsed, at(40)),
                (ids[4].clone(), Stage::Reach, at(40)),
            ],
        )
    });
    assert_eq!(
        r(store, "stage_counts after", |tx| tx.stage_counts(&ws)),
        vec![
            (Stage::Reach, 2),
            (Stage::Loyalty, 1),
            (Stage::AtRisk, 1),
            (Stage::Lapsed, 1)
        ]
    );
}

/// Stage history and transitions. `stage_history` is newest first; `stage_transitions` counts,
/// per (from, to), the changes with `from <= at < to`. Pinned: a transition counts distinct
/// customers (one who made the same move twice in the period counts once), and transitions are
/// ordered by `from` (none first, then `Stage::ALL` order), then `to`.
pub fn stage_history_and_transitions(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let change = |n: u64, from: Option<Stage>, to: Stage, at: Timestamp| StageChange {
        customer_id: cid(n),
        from,
        to,
        at,
    };
    let changes = [
        change(1, None, Stage::Reach, at(100)),
        change(1, Some(Stage::Reach), Stage::Acquisition, at_micros(200, 5)),
        change(1, Some(Stage::Acquisition), Stage::Nurture, at(300)),
        change(2, None, Stage::Reach, at(150)),
        change(2, Some(Stage::Reach), Stage::Acquisition, at(250)),
        change(3, None, Stage::Acquisition, at(199)),
        change(3, Some(Stage::Acquisition), Stage::Reach, at(260)),
        change(3, Some(Stage::Reach), Stage::Acquisition, at(270)),
    ];
    w(store, "insert_stage_changes", |tx| {
        tx.insert_stage_changes(&ws, &changes[0..5])?;
        tx.insert_stage_changes(&ws, &changes[5..])?;
        tx.insert_stage_changes(&ws, &[])
    });
    assert_eq!(
        r(store, "stage_history one", |tx| tx
            .stage_history(&ws, &[cid(1)])),
        vec![changes[2].clone(), changes[1].clone(), changes[0].clone()],
        "newest first"
    );
    assert_eq!(
        r(store, "stage_history two", |tx| tx
            .stage_history(&ws, &[cid(2), cid(1), cid(9)])),
        vec![
            changes[2].clone(),
            changes[4].clone(),
            changes[1].clone(),
            changes[3].clone(),
            changes[0].clone()
        ]
    );
    assert_eq!(
        r(store, "stage_history none", |tx| tx.stage_history(&ws, &[])),
        Vec::new()
    );

    let transition = |from: Option<Stage>, to: Stage, customers: i64| StageTransition {
        from,
        to,
        customers,
    };
    assert_eq!(
        r(store, "stage_transitions all", |tx| tx.stage_transitions(
            &ws,
            at(0),
            at(1000)
        )),
        vec![
            transition(None, Stage::Reach, 2),
            transition(None, Stage::Acquisition, 1),
            transition(Some(Stage::Reach), Stage::Acquisition, 3),
            transition(Some(Stage::Acquisition), Stage::Reach, 1),
            transition(Some(Stage::Acquisition), Stage::Nurture, 1),
        ]
    );
    // `from` is inclusive, `to` exclusive.
    assert_eq!(
        r(store, "stage_transitions window", |tx| tx
            .stage_transitions(&ws, at(150), at(270))),
        vec![
            transition(None, Stage::Reach, 1),
            transition(None, Stage::Acquisition, 1),
            transition(Some(Stage::Reach), Stage::Acquisition, 2),
            transition(Some(Stage::Acquisition), Stage::Reach, 1),
        ]
    );
    assert_eq!(
        r(store, "stage_transitions microseconds", |tx| tx
            .stage_transitions(&ws, at_micros(200, 6), at(250))),
        Vec::new(),
        "a change at 200.000005 is before 200.000006"
    );
    assert_eq!(
        r(store, "stage_transitions empty window", |tx| tx
            .stage_transitions(&ws, at(100), at(100))),
        Vec::new()
    );
}

/// Events of one name in a window: `since` inclusive, `until` exclusive (either may be open),
/// for the whole workspace or only the named profiles (as stored on the event: a merged-away
/// profile's events name it). Pinned: the name matches whatever the event type (a track event's
/// name or a page's), and `count_named_events` orders by customer id.
pub fn named_events_windows(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let c1 = customer(&ws, 1);
    let c2 = customer(&ws, 2);
    let mut loser = customer(&ws, 3);
    loser.merged_into = Some(c1.id.clone());
    insert_customers(store, &[c1.clone(), c2.clone(), loser.clone()]);
    let named_event = |customer: &CustomerId, n: u64, name: &str, timestamp: Timestamp, kind| {
        event(
            &ws,
            customer,
            n,
            &format!("m-{n}"),
            timestamp,
            kind,
            Some(name),
            "web",
        )
    };
    let viewed = "Product Viewed";
    let events = vec![
        named_event(&c1.id, 1, viewed, at(100), EventType::Track),
        named_event(&c1.id, 2, viewed, at_micros(200, 1), EventType::Track),
        named_event(&c1.id, 3, viewed, at(300), EventType::Track),
        named_event(&c2.id, 4, viewed, at(200), EventType::Track),
        named_event(&c2.id, 5, "Order Completed", at(200), EventType::Track),
        named_event(&loser.id, 6, viewed, at(250), EventType::Track),
        named_event(&c2.id, 7, viewed, at(260), EventType::Page),
    ];
    w(store, "insert events", |tx| tx.insert_events(&events));
    let found = |q: &NamedEventQuery| -> Vec<(CustomerId, Timestamp, serde_json::Value)> {
        let mut rows: Vec<(CustomerId, Timestamp, serde_json::Value)> =
            r(store, "named_events", |tx| tx.named_events(&ws, q))
                .into_iter()
                .map(|e| (e.customer_id, e.timestamp, e.properties["n"].clone()))
                .collect();
        rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        rows
    };
    let expect = |picks: &[usize]| -> Vec<(CustomerId, Timestamp, serde_json::Value)> {
        let mut rows: Vec<(CustomerId, Timestamp, serde_json::Value)> = picks
            .iter()
            .map(|&i| {
                (
                    events[i].customer_id.clone(),
                    events[i].timestamp,
                    events[i].properties["n"].clone(),
                )
            })
            .collect();
        rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        rows
    };
    let counts = |q: &NamedEventQuery| {
        r(store, "count_named_events", |tx| {
            tx.count_named_events(&ws, q)
        })
    };
    let counted = |pairs: &[(&CustomerId, i64)]| -> Vec<(CustomerId, i64)> {
        let mut v: Vec<(CustomerId, i64)> = pairs.iter().map(|(c, n)| ((*c).clone(), *n)).collect();
        v.sort();
        v
    };

    let ever = NamedEventQuery {
        name: viewed.into(),
        ..NamedEventQuery::default()
    };
    assert_eq!(
        found(&ever),
        expect(&[0, 1, 2, 3, 5, 6]),
        "every one, any type"
    );
    assert_eq!(
        counts(&ever),
        counted(&[(&c1.id, 3), (&c2.id, 2), (&loser.id, 1)])
    );
    // A window: 200.000001 is in [200.000001, 300), 300 is not; 200 is before it.
    let window = NamedEventQuery {
        name: viewed.into(),
        since: Some(at_micros(200, 1)),
        until: Some(at(300)),
        customers: None,
    };
    assert_eq!(found(&window), expect(&[1, 5, 6]));
    assert_eq!(
        counts(&window),
        counted(&[(&c1.id, 1), (&c2.id, 1), (&loser.id, 1)])
    );
    let since_only = NamedEventQuery {
        since: Some(at(300)),
        until: None,
        ..window.clone()
    };
    assert_eq!(found(&since_only), expect(&[2]), "since is inclusive");
    let until_only = NamedEventQuery {
        since: None,
        until: Some(at(200)),
        ..window.clone()
    };
    assert_eq!(found(&until_only), expect(&[0]), "until is exclusive");

    // Restricted to some profiles, as stored: the merged-away profile is itself.
    let some = NamedEventQuery {
        customers: Some(vec![c1.id.clone(), cid(99)]),
        ..ever.clone()
    };
    assert_eq!(found(&some), expect(&[0, 1, 2]));
    assert_eq!(counts(&some), counted(&[(&c1.id, 3)]));
    let loser_only = NamedEventQuery {
        customers: Some(vec![loser.id.clone()]),
        ..window.clone()
    };
    assert_eq!(found(&loser_only), expect(&[5]));
    let both = NamedEventQuery {
        customers: Some(vec![c2.id.clone(), loser.id.clone(), c2.id.clone()]),
        ..window.clone()
    };
    assert_eq!(found(&both), expect(&[5, 6]));
    assert_eq!(counts(&both), counted(&[(&c2.id, 1), (&loser.id, 1)]));
    let nobody = NamedEventQuery {
        customers: Some(Vec::new()),
        ..ever.clone()
    };
    assert_eq!(found(&nobody), Vec::new());
    assert_eq!(counts(&nobody), Vec::new());
    let other_name = NamedEventQuery {
        name: "Order Completed".into(),
        ..NamedEventQuery::default()
    };
    assert_eq!(found(&other_name), expect(&[4]));
    let unknown = NamedEventQuery {
        name: "product viewed".into(),
        ..NamedEventQuery::default()
    };
    assert_eq!(found(&unknown), Vec::new(), "names compare exactly");
    // The properties come back whole.
    let one = r(store, "named_events properties", |tx| {
        tx.named_events(
            &ws,
            &NamedEventQuery {
                customers: Some(vec![c2.id.clone()]),
                ..other_name.clone()
            },
        )
    });
    assert_eq!(
        one,
        vec![NamedEvent {
            customer_id: c2.id.clone(),
            timestamp: at(200),
            properties: events[4].properties.clone(),
        }]
    );
}

/// `scan_named_events`: the rows of `named_events` (window, name whatever the event type,
/// `customers` as stored), each handed to `visit` once; with `with_properties` the properties
/// come back whole, without it every map is empty. Events of other names, outside the window or
/// of another workspace are never visited. Many events (more than a backend may fetch at once)
/// are each visited once too.
pub fn scan_named_events_streams(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let other = setup_workspace(store, 2);
    let c1 = customer(&ws, 1);
    let c2 = customer(&ws, 2);
    let mut loser = customer(&ws, 3);
    loser.merged_into = Some(c1.id.clone());
    let stranger = customer(&other, 4);
    insert_customers(
        store,
        &[c1.clone(), c2.clone(), loser.clone(), stranger.clone()],
    );
    let viewed = "Product Viewed";
    let named_event =
        |ws: &WorkspaceId, customer: &CustomerId, n: u64, name: &str, timestamp: Timestamp| {
            event(
                ws,
                customer,
                n,
                &format!("m-{n}"),
                timestamp,
                EventType::Track,
                Some(name),
                "web",
            )
        };
    let mut events = vec![
        named_event(&ws, &c1.id, 1, viewed, at(100)),
        named_event(&ws, &c1.id, 2, viewed, at_micros(200, 1)),
        named_event(&ws, &c1.id, 3, viewed, at(300)),
        named_event(&ws, &c2.id, 4, viewed, at(200)),
        named_event(&ws, &c2.id, 5, "Order Completed", at(250)),
        named_event(&ws, &loser.id, 6, viewed, at(250)),
        named_event(&ws, &c2.id, 7, viewed, at(260)),
        // Same name and window, another workspace.
        named_event(&other, &stranger.id, 8, viewed, at(250)),
    ];
    // Properties with some depth, to see them come back whole.
    events[5].properties.insert(
        "product".into(),
        json!({"sku": "A-1", "price": 12.5, "tags": ["new", "sale"], "stock": null}),
    );
    events[5]
        .properties
        .insert("nome".into(), json!("Pão de queijo"));
    w(store, "insert events", |tx| tx.insert_events(&events));

    // Rows in a stable order, to compare the two methods (neither promises one).
    let in_order = |mut rows: Vec<NamedEvent>| -> Vec<NamedEvent> {
        rows.sort_by(|a, b| {
            (
                &a.customer_id,
                a.timestamp,
                a.properties.get("n").and_then(|n| n.as_u64()),
            )
                .cmp(&(
                    &b.customer_id,
                    b.timestamp,
                    b.properties.get("n").and_then(|n| n.as_u64()),
                ))
        });
        rows
    };
    let scanned = |q: &NamedEventQuery, with_properties: bool| -> Vec<NamedEvent> {
        let rows = r(store, "scan_named_events", |tx| {
            // Started inside the closure: a transaction run again starts afresh.
            let mut rows = Vec::new();
            tx.scan_named_events(&ws, q, with_properties, &mut |e| rows.push(e))?;
            Ok(rows)
        });
        in_order(rows)
    };
    let listed =
        |q: &NamedEventQuery| in_order(r(store, "named_events", |tx| tx.named_events(&ws, q)));
    let without_properties = |rows: Vec<NamedEvent>| -> Vec<NamedEvent> {
        rows.into_iter()
            .map(|e| NamedEvent {
                properties: Map::new(),
                ..e
            })
            .collect()
    };
    let expect = |picks: &[usize]| -> Vec<NamedEvent> {
        in_order(
            picks
                .iter()
                .map(|&i| NamedEvent {
                    customer_id: events[i].customer_id.clone(),
                    timestamp: events[i].timestamp,
                    properties: events[i].properties.clone(),
                })
                .collect(),
        )
    };

    let ever = NamedEventQuery {
        name: viewed.into(),
        ..NamedEventQuery::default()
    };
    // 200.000001 is in [200.000001, 300), 300 is not, 200 is before it; 250 is of another name
    // for c2, and of another workspace for the stranger.
    let window = NamedEventQuery {
        name: viewed.into(),
        since: Some(at_micros(200, 1)),
        until: Some(at(300)),
        customers: None,
    };
    assert_eq!(scanned(&window, true), expect(&[1, 5, 6]), "the window");
    assert_eq!(
        scanned(&window, false),
        without_properties(expect(&[1, 5, 6])),
        "no properties read: empty maps"
    );
    assert_eq!(scanned(&ever, true), expect(&[0, 1, 2, 3, 5, 6]), "ever");
    let some = NamedEventQuery {
        customers: Some(vec![c1.id.clone(), cid(99)]),
        ..ever.clone()
    };
    assert_eq!(
        scanned(&some, true),
        expect(&[0, 1, 2]),
        "only the profiles named (an unknown one ignored)"
    );
    let both = NamedEventQuery {
        customers: Some(vec![c2.id.clone(), loser.id.clone(), c2.id.clone()]),
        ..window.clone()
    };
    assert_eq!(
        scanned(&both, true),
        expect(&[5, 6]),
        "the merged-away profile is itself"
    );
    assert_eq!(scanned(&both, false), without_properties(expect(&[5, 6])));

    // Whatever the query, the same rows as `named_events`.
    let queries = [
        ever.clone(),
        window.clone(),
        NamedEventQuery {
            since: Some(at(300)),
            until: None,
            ..window.clone()
        },
        NamedEventQuery {
            since: None,
            until: Some(at(200)),
            ..window.clone()
        },
        some.clone(),
        both.clone(),
        NamedEventQuery {
            customers: Some(vec![loser.id.clone()]),
            ..window.clone()
        },
        NamedEventQuery {
            customers: Some(vec![stranger.id.clone()]),
            ..ever.clone()
        },
        NamedEventQuery {
            customers: Some(Vec::new()),
            ..ever.clone()
        },
        NamedEventQuery {
            name: "Order Completed".into(),
            ..NamedEventQuery::default()
        },
        NamedEventQuery {
            name: "product viewed".into(),
            ..NamedEventQuery::default()
        },
    ];
    for q in &queries {
        let expected = listed(q);
        assert_eq!(scanned(q, true), expected, "{q:?} with properties");
        assert_eq!(
            scanned(q, false),
            without_properties(expected),
            "{q:?} without properties"
        );
    }
    assert_eq!(
        r(store, "scan_named_events of an unknown workspace", |tx| {
            let mut visits = 0;
            tx.scan_named_events(&ws_id(9), &ever, true, &mut |_| visits += 1)?;
            Ok(visits)
        }),
        0
    );

    // Many events: each visited once. 20,000 in all (a round number, as a backend reading in
    // batches might), 15,000 of them in a window.
    const MANY: u64 = 20_000;
    let bulk = "Bulk";
    let owners = [&c1.id, &c2.id, &loser.id];
    let many: Vec<Event> = (0..MANY)
        .map(|i| {
            let n = 1_000 + i;
            named_event(&ws, owners[(i % 3) as usize], n, bulk, at(1_000 + i as i64))
        })
        .collect();
    w(store, "insert many events", |tx| tx.insert_events(&many));
    let tally = |q: &NamedEventQuery, with_properties: bool| {
        r(store, "scan_named_events many", |tx| {
            let mut visits = 0u64;
            let mut n_sum = 0u64;
            let mut per_customer: std::collections::BTreeMap<CustomerId, i64> = Default::default();
            tx.scan_named_events(&ws, q, with_properties, &mut |e| {
                visits += 1;
                n_sum += e.properties.get("n").and_then(|n| n.as_u64()).unwrap_or(0);
                *per_customer.entry(e.customer_id).or_default() += 1;
            })?;
            Ok((visits, n_sum, per_customer.into_iter().collect::<Vec<_>>()))
        })
    };
    let counts = |q: &NamedEventQuery| {
        r(store, "count_named_events", |tx| {
            tx.count_named_events(&ws, q)
        })
    };
    let all_bulk = NamedEventQuery {
        name: bulk.into(),
        ..NamedEventQuery::default()
    };
    let sum = |range: std::ops::Range<u64>| range.map(|i| 1_000 + i).sum::<u64>();
    assert_eq!(
        tally(&all_bulk, true),
        (MANY, sum(0..MANY), counts(&all_bulk)),
        "every one of many, once"
    );
    assert_eq!(
        tally(&all_bulk, false),
        (MANY, 0, counts(&all_bulk)),
        "many, without properties"
    );
    let bulk_window = NamedEventQuery {
        since: Some(at(1_000 + 5_000)),
        until: Some(at(1_000 + MANY as i64)),
        ..all_bulk.clone()
    };
    assert_eq!(
        tally(&bulk_window, true),
        (MANY - 5_000, sum(5_000..MANY), counts(&bulk_window)),
        "a window of many"
    );
    let bulk_of_c2 = NamedEventQuery {
        customers: Some(vec![c2.id.clone()]),
        ..all_bulk.clone()
    };
    let of_c2 = (0..MANY).filter(|i| i % 3 == 1).count() as u64;
    assert_eq!(
        tally(&bulk_of_c2, false),
        (of_c2, 0, counts(&bulk_of_c2)),
        "many of one profile"
    );
}

/// `merged_profiles`: every merged-away profile with the profile it was merged into (chains as
/// stored, one step each). Pinned: ordered by the merged-away profile's id.
pub fn merged_profiles_listed(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let other = setup_workspace(store, 2);
    assert_eq!(
        r(store, "merged_profiles none", |tx| tx.merged_profiles(&ws)),
        Vec::new()
    );
    let root = customer(&ws, 1);
    let mut a = customer(&ws, 2);
    a.merged_into = Some(root.id.clone());
    let mut b = customer(&ws, 3);
    b.merged_into = Some(a.id.clone());
    let plain = customer(&ws, 4);
    let mut elsewhere = customer(&other, 5);
    elsewhere.merged_into = Some(cid(6));
    insert_customers(
        store,
        &[b.clone(), root.clone(), a.clone(), plain.clone(), elsewhere],
    );
    assert_eq!(
        r(store, "merged_profiles", |tx| tx.merged_profiles(&ws)),
        vec![
            (a.id.clone(), root.id.clone()),
            (b.id.clone(), a.id.clone())
        ]
    );
    // Undoing a merge takes the profile out.
    a.merged_into = None;
    w(store, "undo", |tx| tx.update_customer(&a));
    assert_eq!(
        r(store, "merged_profiles after undo", |tx| tx
            .merged_profiles(&ws)),
        vec![(b.id.clone(), a.id.clone())]
    );
}

/// `scan_customer_summaries` and `scan_order_summaries`: every surviving profile of the
/// workspace once, with its name, email, creation, first and last sighting and stored order
/// stats (merged-away profiles left out, as `list_customers` leaves them out, and back after an
/// undo); every order of the workspace once, those of merged-away profiles included under the
/// profile they are stored under. Nothing of another workspace, nothing for an unknown one.
/// Many rows (more than a backend may fetch at once) are each visited once too.
pub fn customer_and_order_summaries_stream(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let other = setup_workspace(store, 2);
    let mut c1 = named(&ws, 1, "Ana Souza");
    c1.email = Some(email("ana@example.com.br"));
    c1.phone = Some(phone("+55 11 98765-4321"));
    c1.tags = vec!["vip".into()];
    c1.traits.insert("plan".into(), json!({"name": "gold"}));
    c1.created_at = at_micros(10, 7);
    c1.first_seen_at = at(5);
    c1.last_seen_at = at_micros(900, 3);
    c1.stats = OrderStats {
        orders_count: 3,
        total_spent_minor: 45_000,
        first_order_at: Some(at(100)),
        last_order_at: Some(at_micros(300, 9)),
    };
    let c2 = customer(&ws, 2);
    let mut loser = named(&ws, 3, "Ana (anônima)");
    loser.merged_into = Some(c1.id.clone());
    let stranger = named(&other, 4, "Outra");
    insert_customers(
        store,
        &[c2.clone(), loser.clone(), c1.clone(), stranger.clone()],
    );
    let orders = [
        order(&ws, &c1.id, 1, "o-1", 10_000, 100),
        order(&ws, &c1.id, 2, "o-2", 15_000, 200),
        order(&ws, &loser.id, 3, "o-3", 20_000, 300),
        order(&ws, &c2.id, 4, "o-4", 7_500, 400),
        order(&other, &stranger.id, 5, "o-5", 99_900, 150),
    ];
    w(store, "insert orders", |tx| {
        orders
            .iter()
            .try_for_each(|o| tx.insert_order(o).map(|_| ()))
    });

    let summary = |c: &Customer| CustomerSummary {
        id: c.id.clone(),
        name: c.name.clone(),
        email: c.email.as_ref().map(|e| e.as_str().to_string()),
        created_at: c.created_at,
        first_seen_at: c.first_seen_at,
        last_seen_at: c.last_seen_at,
        stats: c.stats.clone(),
    };
    let of_order = |o: &Order| OrderSummary {
        customer_id: o.customer_id.clone(),
        placed_at: o.placed_at,
        total_minor: o.total_minor,
    };
    // Rows in a stable order (the scans promise none).
    let in_order = |mut rows: Vec<OrderSummary>| -> Vec<OrderSummary> {
        rows.sort_by(|a, b| {
            (&a.customer_id, a.placed_at, a.total_minor).cmp(&(
                &b.customer_id,
                b.placed_at,
                b.total_minor,
            ))
        });
        rows
    };
    let profiles = |ws: &WorkspaceId| -> Vec<CustomerSummary> {
        let mut rows = r(store, "scan_customer_summaries", |tx| {
            // Started inside the closure: a transaction run again starts afresh.
            let mut rows = Vec::new();
            tx.scan_customer_summaries(ws, &mut |c| rows.push(c))?;
            Ok(rows)
        });
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows
    };
    let order_rows = |ws: &WorkspaceId| -> Vec<OrderSummary> {
        in_order(r(store, "scan_order_summaries", |tx| {
            let mut rows = Vec::new();
            tx.scan_order_summaries(ws, &mut |o| rows.push(o))?;
            Ok(rows)
        }))
    };
    assert_eq!(
        profiles(&ws),
        vec![summary(&c1), summary(&c2)],
        "surviving profiles only, with their fields (microseconds kept)"
    );
    assert_eq!(
        profiles(&other),
        vec![summary(&stranger)],
        "the other workspace sees its own"
    );
    assert_eq!(
        order_rows(&ws),
        in_order(orders[..4].iter().map(of_order).collect()),
        "every order, the merged-away profile's under its own id"
    );
    assert_eq!(order_rows(&other), vec![of_order(&orders[4])]);
    assert_eq!(
        r(store, "scans of an unknown workspace", |tx| {
            let mut visits = 0;
            tx.scan_customer_summaries(&ws_id(9), &mut |_| visits += 1)?;
            tx.scan_order_summaries(&ws_id(9), &mut |_| visits += 1)?;
            Ok(visits)
        }),
        0
    );
    // Undoing the merge brings the profile back.
    loser.merged_into = None;
    w(store, "undo", |tx| tx.update_customer(&loser));
    assert_eq!(
        profiles(&ws),
        vec![summary(&c1), summary(&c2), summary(&loser)]
    );

    // Many: each visited once. 20,000 profiles and orders (a round number, as a backend
    // reading in batches might), one profile in ten merged away.
    const MANY: u64 = 20_000;
    let many: Vec<Customer> = (0..MANY)
        .map(|i| {
            let mut c = named(&ws, 1_000 + i, &format!("Cliente {i}"));
            if i % 10 == 9 {
                c.merged_into = Some(cid(1_000 + i - 1));
            }
            c
        })
        .collect();
    for chunk in many.chunks(2_000) {
        w(store, "insert many customers", |tx| {
            tx.insert_customers(chunk)
        });
    }
    let many_orders: Vec<Order> = (0..MANY)
        .map(|i| {
            let mut o = order(
                &ws,
                &many[i as usize].id,
                1_000 + i,
                &format!("many-{i}"),
                i as i64,
                i as i64,
            );
            o.items.clear();
            o
        })
        .collect();
    for chunk in many_orders.chunks(2_000) {
        w(store, "insert many orders", |tx| {
            tx.insert_orders(chunk).map(|_| ())
        });
    }
    let merged_away: BTreeSet<CustomerId> = many
        .iter()
        .filter(|c| c.merged_into.is_some())
        .map(|c| c.id.clone())
        .collect();
    let (visits, distinct, merged_seen) = r(store, "scan_customer_summaries many", |tx| {
        let mut visits = 0u64;
        let mut ids = BTreeSet::new();
        let mut merged_seen = 0u64;
        tx.scan_customer_summaries(&ws, &mut |c| {
            visits += 1;
            merged_seen += u64::from(merged_away.contains(&c.id));
            ids.insert(c.id);
        })?;
        Ok((visits, ids.len() as u64, merged_seen))
    });
    let surviving = 3 + MANY - MANY / 10;
    assert_eq!(
        (visits, distinct, merged_seen),
        (surviving, surviving, 0),
        "every surviving one of many, once"
    );
    let (visits, total) = r(store, "scan_order_summaries many", |tx| {
        let mut visits = 0u64;
        let mut total = 0i64;
        tx.scan_order_summaries(&ws, &mut |o| {
            visits += 1;
            total += o.total_minor;
        })?;
        Ok((visits, total))
    });
    let expected_total: i64 =
        orders[..4].iter().map(|o| o.total_minor).sum::<i64>() + (0..MANY as i64).sum::<i64>();
    assert_eq!(
        (visits, total),
        (4 + MANY, expected_total),
        "every one of many orders, once"
    );
}

/// The `stage` and `segment` filters of `list_customers`, alone and with the other filters,
/// under every sort and page size: stored stages (customer_computed) and memberships, surviving
/// profiles only.
pub fn customer_list_stage_and_segment_filters(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let mut all = Vec::new();
    for n in 1..=24u64 {
        let mut c = named(&ws, n, &format!("Cliente {:02}", (n * 7) % 24));
        c.last_seen_at = at(((n * 5) % 24) as i64 * 100);
        c.stats.total_spent_minor = ((n * 11) % 6) as i64 * 1_000;
        if n % 2 == 0 {
            c.tags = vec!["vip".into()];
        }
        if n % 3 == 0 {
            c.stats.orders_count = 1;
        }
        all.push(c);
    }
    let mut merged = named(&ws, 25, "Cliente merged");
    merged.tags = vec!["vip".into()];
    merged.merged_into = Some(cid(1));
    insert_customers(store, &all);
    insert_customers(store, std::slice::from_ref(&merged));
    let stage_of = |n: u64| match n % 4 {
        0 => Some(Stage::Loyalty),
        1 => Some(Stage::Lapsed),
        2 => None,
        _ => Some(Stage::Loyalty),
    };
    let in_segment = |n: u64| n % 3 != 1;
    let seg = segment(&ws, 1, "Escolhidos", SegmentKind::Static);
    let empty_seg = segment(&ws, 2, "Vazio", SegmentKind::Static);
    insert_segments(store, &[seg.clone(), empty_seg.clone()]);
    w(store, "stages and members", |tx| {
        let stages: Vec<(CustomerId, Stage, Timestamp)> = (1..=25u64)
            .filter_map(|n| {
                let stage = if n == 25 {
                    Some(Stage::Loyalty)
                } else {
                    stage_of(n)
                };
                stage.map(|s| (cid(n), s, at(1)))
            })
            .collect();
        tx.set_stages(&ws, &stages)?;
        // Scores alone make a row without a stage.
        tx.set_scores(&ws, &[(cid(2), scores(&[("rfm_r", json!(1))]))], at(1))?;
        let members: Vec<CustomerId> = (1..=25u64)
            .filter(|n| *n == 25 || in_segment(*n))
            .map(cid)
            .collect();
        tx.add_segment_members(&ws, &seg.id, &members, at(1))
    });
    let n_of = |c: &Customer| -> u64 {
        (1..=24u64)
            .find(|n| cid(*n) == c.id)
            .expect("a fixture customer")
    };
    let check = |label: &str, base: CustomerQuery, keep: &dyn Fn(&Customer) -> bool| {
        let chosen: Vec<Customer> = all.iter().filter(|c| keep(c)).cloned().collect();
        for sort in SORTS {
            let expected = expected_order(&chosen, sort);
            for page in [2, 5, 100] {
                let q = CustomerQuery {
                    sort,
                    ..base.clone()
                };
                assert_eq!(
                    list_all_pages(store, &ws, &q, page),
                    expected,
                    "{label} (sort {sort:?}, pages of {page})"
                );
            }
        }
    };
    let base = CustomerQuery::default();
    check(
        "stage loyalty",
        CustomerQuery {
            stage: Some(Stage::Loyalty),
            ..base.clone()
        },
        &|c| stage_of(n_of(c)) == Some(Stage::Loyalty),
    );
    check(
        "stage lapsed",
        CustomerQuery {
            stage: Some(Stage::Lapsed),
            ..base.clone()
        },
        &|c| stage_of(n_of(c)) == Some(Stage::Lapsed),
    );
    check(
        "stage nobody is in",
        CustomerQuery {
            stage: Some(Stage::Nurture),
            ..base.clone()
        },
        &|_| false,
    );
    check(
        "segment",
        CustomerQuery {
            segment: Some(seg.id.clone()),
            ..base.clone()
        },
        &|c| in_segment(n_of(c)),
    );
    check(
        "empty segment",
        CustomerQuery {
            segment: Some(empty_seg.id.clone()),
            ..base.clone()
        },
        &|_| false,
    );
    check(
        "unknown segment",
        CustomerQuery {
            segment: Some(sid(99)),
            ..base.clone()
        },
        &|_| false,
    );
    check(
        "stage and segment",
        CustomerQuery {
            stage: Some(Stage::Loyalty),
            segment: Some(seg.id.clone()),
            ..base.clone()
        },
        &|c| stage_of(n_of(c)) == Some(Stage::Loyalty) && in_segment(n_of(c)),
    );
    check(
        "segment and tag",
        CustomerQuery {
            segment: Some(seg.id.clone()),
            tag: Some("VIP".into()),
            ..base.clone()
        },
        &|c| in_segment(n_of(c)) && !c.tags.is_empty(),
    );
    check(
        "stage, ordered, seen after",
        CustomerQuery {
            stage: Some(Stage::Loyalty),
            has_ordered: Some(true),
            seen_after: Some(at(500)),
            ..base.clone()
        },
        &|c| {
            stage_of(n_of(c)) == Some(Stage::Loyalty)
                && c.stats.orders_count > 0
                && c.last_seen_at > at(500)
        },
    );
    check(
        "segment and search",
        CustomerQuery {
            segment: Some(seg.id.clone()),
            search: Some("cliente 1".into()),
            ..base.clone()
        },
        &|c| {
            in_segment(n_of(c))
                && c.name
                    .as_deref()
                    .is_some_and(|name| name.starts_with("Cliente 1"))
        },
    );
    // Membership and stage changes show at once.
    w(store, "change", |tx| {
        tx.remove_segment_members(&ws, &seg.id, &[cid(3), cid(6)])?;
        tx.set_stages(&ws, &[(cid(1), Stage::Loyalty, at(2))])
    });
    check(
        "segment after removals",
        CustomerQuery {
            segment: Some(seg.id.clone()),
            ..base.clone()
        },
        &|c| in_segment(n_of(c)) && n_of(c) != 3 && n_of(c) != 6,
    );
    check(
        "stage after a change",
        CustomerQuery {
            stage: Some(Stage::Loyalty),
            ..base.clone()
        },
        &|c| n_of(c) == 1 || stage_of(n_of(c)) == Some(Stage::Loyalty),
    );
}

/// Deleting a profile deletes its memberships (and takes it out of the segments' member counts),
/// its computed values, its stage history and its evaluation mark; other profiles keep theirs.
pub fn delete_customer_clears_segments_and_lifecycle(store: &dyn Store) {
    let ws = setup_workspace(store, 1);
    let doomed = customer(&ws, 1);
    let kept = customer(&ws, 2);
    insert_customers(store, &[doomed.clone(), kept.clone()]);
    let a = segment(&ws, 1, "A", SegmentKind::Static);
    let b = segment(&ws, 2, "B", SegmentKind::Dynamic);
    let c = segment(&ws, 3, "C", SegmentKind::Static);
    insert_segments(store, &[a.clone(), b.clone(), c.clone()]);
    let both = [doomed.id.clone(), kept.id.clone()];
    w(store, "everything for both", |tx| {
        tx.add_segment_members(&ws, &a.id, &both, at(1))?;
        tx.add_segment_members(&ws, &b.id, std::slice::from_ref(&doomed.id), at(1))?;
        tx.add_segment_members(&ws, &c.id, std::slice::from_ref(&kept.id), at(1))?;
        tx.set_stages(
            &ws,
            &[
                (doomed.id.clone(), Stage::Loyalty, at(1)),
                (kept.id.clone(), Stage::Loyalty, at(1)),
            ],
        )?;
        tx.set_scores(
            &ws,
            &[(doomed.id.clone(), scores(&[("rfm_r", json!(3))]))],
            at(1),
        )?;
        tx.insert_stage_changes(
            &ws,
            &[
                StageChange {
                    customer_id: doomed.id.clone(),
                    from: None,
                    to: Stage::Loyalty,
                    at: at(1),
                },
                StageChange {
                    customer_id: kept.id.clone(),
                    from: None,
                    to: Stage::Loyalty,
                    at: at(1),
                },
            ],
        )?;
        tx.mark_dirty(&ws, &both)
    });
    w(store, "delete_customer", |tx| {
        tx.delete_customer(&ws, &doomed.id)
    });
    assert_eq!(member_count(store, &ws, &a.id), 1);
    assert_eq!(member_count(store, &ws, &b.id), 0);
    assert_eq!(member_count(store, &ws, &c.id), 1);
    r(store, "what is left", |tx| {
        assert_eq!(
            tx.memberships_of(&ws, &both)?,
            vec![
                (a.id.clone(), kept.id.clone(), at(1)),
                (c.id.clone(), kept.id.clone(), at(1))
            ]
        );
        assert_eq!(tx.segment_members(&ws, &b.id, None, 10)?, Vec::new());
        let computed = tx.computed_of(&ws, &both)?;
        assert_eq!(
            computed
                .iter()
                .map(|c| c.customer_id.clone())
                .collect::<Vec<_>>(),
            vec![kept.id.clone()]
        );
        assert_eq!(tx.stage_counts(&ws)?, vec![(Stage::Loyalty, 1)]);
        assert_eq!(
            tx.stage_history(&ws, &both)?
                .into_iter()
                .map(|c| c.customer_id)
                .collect::<Vec<_>>(),
            vec![kept.id.clone()]
        );
        assert_eq!(
            tx.stage_transitions(&ws, at(0), at(10))?,
            vec![StageTransition {
                from: None,
                to: Stage::Loyalty,
                customers: 1
            }]
        );
        Ok(())
    });
    assert_eq!(
        w(store, "the mark is gone", |tx| tx.take_dirty(10)),
        vec![DirtyCustomer {
            workspace_id: ws.clone(),
            customer_id: kept.id.clone()
        }]
    );
    w(store, "delete_customer twice is harmless", |tx| {
        tx.delete_customer(&ws, &doomed.id)
    });
    assert_eq!(member_count(store, &ws, &a.id), 1, "nothing counted twice");
    // Listing by segment or stage no longer finds it.
    let q = CustomerQuery {
        segment: Some(a.id.clone()),
        limit: 10,
        ..CustomerQuery::default()
    };
    assert_eq!(
        ids(&r(store, "list by segment", |tx| tx.list_customers(&ws, &q))),
        vec![kept.id.clone()]
    );
}

/// The segment and lifecycle tables are scoped by workspace like the others: one workspace's
/// segments, members, counts, settings, computed values, stage history and events by name are
/// invisible from another (the evaluation queue is read across workspaces by design, each mark
/// naming its workspace).
pub fn segments_and_lifecycle_workspace_isolation(store: &dyn Store) {
    let a = setup_workspace(store, 1);
    let b = setup_workspace(store, 2);
    let ca = customer(&a, 1);
    let cb = customer(&b, 2);
    insert_customers(store, &[ca.clone(), cb.clone()]);
    let seg_a = segment(&a, 1, "Same Name", SegmentKind::Static);
    let seg_b = segment(&b, 2, "same name", SegmentKind::Static);
    insert_segments(store, &[seg_a.clone(), seg_b.clone()]);
    w(store, "data in a", |tx| {
        tx.put_setting(&a, "lifecycle_rules", &json!({"a": true}))?;
        tx.add_segment_members(&a, &seg_a.id, std::slice::from_ref(&ca.id), at(1))?;
        tx.insert_segment_count(
            &a,
            &seg_a.id,
            &SegmentCount {
                at: at(1),
                count: 1,
            },
        )?;
        tx.set_stages(&a, &[(ca.id.clone(), Stage::Reach, at(1))])?;
        tx.set_scores(&a, &[(ca.id.clone(), scores(&[("x", json!(1))]))], at(1))?;
        tx.insert_stage_changes(
            &a,
            &[StageChange {
                customer_id: ca.id.clone(),
                from: None,
                to: Stage::Reach,
                at: at(1),
            }],
        )?;
        tx.insert_events(&[track(&a, &ca.id, 1, 10)])?;
        tx.mark_dirty(&a, std::slice::from_ref(&ca.id))
    });
    r(store, "nothing of a from b", |tx| {
        assert_eq!(tx.get_setting(&b, "lifecycle_rules")?, None);
        assert_eq!(tx.get_segment(&b, &seg_a.id)?, None);
        assert_eq!(tx.segment_by_name(&b, "Same Name")?, Some(seg_b.clone()));
        assert_eq!(tx.list_segments(&b)?, vec![seg_b.clone()]);
        assert_eq!(
            tx.memberships_of(&b, std::slice::from_ref(&ca.id))?,
            Vec::new()
        );
        assert_eq!(tx.segment_members(&b, &seg_a.id, None, 10)?, Vec::new());
        assert_eq!(tx.segment_counts(&b, &seg_a.id, at(0))?, Vec::new());
        assert_eq!(
            tx.computed_of(&b, std::slice::from_ref(&ca.id))?,
            Vec::new()
        );
        assert_eq!(tx.stage_counts(&b)?, Vec::new());
        assert_eq!(
            tx.stage_history(&b, std::slice::from_ref(&ca.id))?,
            Vec::new()
        );
        assert_eq!(tx.stage_transitions(&b, at(0), at(100))?, Vec::new());
        let viewed = NamedEventQuery {
            name: "Product Viewed".into(),
            ..NamedEventQuery::default()
        };
        assert_eq!(tx.named_events(&b, &viewed)?, Vec::new());
        assert_eq!(tx.count_named_events(&b, &viewed)?, Vec::new());
        let of_a = NamedEventQuery {
            customers: Some(vec![ca.id.clone()]),
            ..viewed.clone()
        };
        assert_eq!(tx.named_events(&b, &of_a)?, Vec::new());
        assert_eq!(tx.count_named_events(&b, &of_a)?, Vec::new());
        assert_eq!(tx.count_named_events(&a, &of_a)?, vec![(ca.id.clone(), 1)]);
        let by_segment = CustomerQuery {
            segment: Some(seg_a.id.clone()),
            limit: 10,
            ..CustomerQuery::default()
        };
        assert_eq!(tx.list_customers(&b, &by_segment)?, Vec::new());
        let by_stage = CustomerQuery {
            stage: Some(Stage::Reach),
            limit: 10,
            ..CustomerQuery::default()
        };
        assert_eq!(tx.list_customers(&b, &by_stage)?, Vec::new());
        assert_eq!(ids(&tx.list_customers(&a, &by_stage)?), vec![ca.id.clone()]);
        Ok(())
    });
    // Writes through b do not reach a's rows.
    expect_not_found(
        "update a's segment through b",
        write(store, |tx| {
            tx.update_segment(&SegmentRecord {
                workspace_id: b.clone(),
                ..seg_a.clone()
            })
        }),
    );
    expect_not_found(
        "delete a's segment through b",
        write(store, |tx| tx.delete_segment(&b, &seg_a.id)),
    );
    w(store, "writes through b", |tx| {
        assert_eq!(
            tx.add_segment_members(&b, &seg_b.id, std::slice::from_ref(&ca.id), at(2))?,
            0,
            "a's customer cannot join b's segment"
        );
        tx.set_stages(&b, &[(ca.id.clone(), Stage::Lapsed, at(2))])?;
        tx.clear_dirty(&[DirtyCustomer {
            workspace_id: b.clone(),
            customer_id: ca.id.clone(),
        }])?;
        tx.delete_customer(&b, &ca.id)
    });
    r(store, "a is intact", |tx| {
        assert_eq!(
            tx.memberships_of(&a, std::slice::from_ref(&ca.id))?,
            vec![(seg_a.id.clone(), ca.id.clone(), at(1))]
        );
        assert_eq!(tx.stage_counts(&a)?, vec![(Stage::Reach, 1)]);
        assert_eq!(tx.stage_history(&a, std::slice::from_ref(&ca.id))?.len(), 1);
        assert_eq!(
            tx.get_setting(&a, "lifecycle_rules")?,
            Some(json!({"a": true}))
        );
        assert_eq!(
            tx.get_segment(&a, &seg_a.id)?.map(|s| s.member_count),
            Some(1)
        );
        Ok(())
    });
    assert_eq!(
        w(store, "a's mark survives", |tx| tx.take_dirty(10)),
        vec![DirtyCustomer {
            workspace_id: a.clone(),
            customer_id: ca.id.clone()
        }]
    );
}
