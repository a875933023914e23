//! What only the PostgreSQL adapter has to get right: several processes on one database
//! (concurrent migrations, racing inserts, deadlocks), the retry loop, statements that stay
//! usable after a reported conflict, read-only snapshots, bulk statements at volume.

use crate::fresh_database;
use crate::support::TestDatabaseStores as _;
use ciclo_domain::customer::Customer;
use ciclo_domain::event::{Event, EventType};
use ciclo_domain::identity::{Identity, IdentityKey, IdentityKind};
use ciclo_domain::ids::*;
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::{Operator, Workspace};
use ciclo_domain::order::{Order, OrderItem};
use ciclo_domain::{DateTime, Timestamp};
use ciclo_store::{
    read, write, CustomerCursor, CustomerQuery, CustomerSort, SegmentKind, SegmentRecord, Store,
    StoreError, TimelineQuery,
};
use ciclo_store_postgres::{PostgresStore, LATEST_VERSION};
use serde_json::{json, Map};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

const BASE_SECS: i64 = 1_767_225_600;
const BASE_MS: u64 = 1_767_225_600_000;

fn at(secs: i64) -> Timestamp {
    DateTime::from_timestamp(BASE_SECS + secs, 0).expect("time in range")
}

fn workspace(n: u64) -> Workspace {
    Workspace {
        id: WorkspaceId::generate(BASE_MS + n, u128::from(n)),
        name: format!("Workspace {n}"),
        write_key: format!("wk_{n}"),
        locale: "pt-BR".into(),
        time_zone: "America/Sao_Paulo".into(),
        currency: "BRL".into(),
        default_region: "BR".into(),
        created_at: at(0),
    }
}

fn operator(n: u64, email: &str) -> Operator {
    Operator {
        id: OperatorId::generate(BASE_MS + n, u128::from(n)),
        email: email.into(),
        name: format!("Operator {n}"),
        password_hash: "x".into(),
        locale: None,
        active: true,
        created_at: at(0),
    }
}

fn customer(ws: &WorkspaceId, n: u64) -> Customer {
    Customer::new(
        CustomerId::generate(BASE_MS + n, u128::from(n) * 31),
        ws.clone(),
        at(n as i64),
    )
}

fn event(ws: &WorkspaceId, customer: &CustomerId, n: u64, message_id: &str) -> Event {
    let mut properties = Map::new();
    properties.insert("price".into(), json!(n as f64 / 10.0));
    properties.insert("sku".into(), json!(format!("sku-{n}")));
    let mut context = Map::new();
    context.insert(
        "library".into(),
        json!({"name": "analytics-node", "version": "6.0.0"}),
    );
    Event {
        id: EventId::generate(BASE_MS + n, u128::from(n) * 7),
        workspace_id: ws.clone(),
        customer_id: customer.clone(),
        message_id: message_id.into(),
        event_type: EventType::Track,
        name: Some("Product Viewed".into()),
        channel: "web".into(),
        source: "api".into(),
        user_id: Some(format!("u-{}", n % 100)),
        anonymous_id: None,
        properties,
        context,
        timestamp: at(n as i64),
        received_at: at(n as i64),
    }
}

/// A migrated store with one workspace and `customers` profiles in it.
fn setup(store: &PostgresStore, customers: u64) -> (WorkspaceId, Vec<Customer>) {
    let ws = workspace(1);
    let profiles: Vec<Customer> = (1..=customers).map(|n| customer(&ws.id, n)).collect();
    write(store, |tx| {
        tx.insert_workspace(&ws)?;
        tx.insert_customers(&profiles)
    })
    .expect("setup");
    (ws.id, profiles)
}

#[test]
fn concurrent_migrations_apply_each_version_once() {
    let db = fresh_database!();
    let stores: Vec<PostgresStore> = (0..3).map(|_| db.store()).collect();
    let start = Arc::new(Barrier::new(stores.len()));
    std::thread::scope(|scope| {
        for store in &stores {
            let start = Arc::clone(&start);
            scope.spawn(move || {
                start.wait();
                store.migrate().expect("a concurrent migrate succeeds");
            });
        }
    });
    let mut client = db.client();
    let versions: Vec<i64> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .expect("read versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        (1..=LATEST_VERSION).collect::<Vec<_>>(),
        "each version recorded once"
    );
    stores[0]
        .migrate()
        .expect("migrating a migrated database is a no-op");
    let (ws, _) = setup(&stores[1], 1);
    assert_eq!(
        read(&stores[2], |tx| tx.count_customers(&ws)).expect("count"),
        1
    );
}

#[test]
fn retry_errors_run_the_closure_again_then_give_up() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let attempts = AtomicUsize::new(0);
    let ws = workspace(1);
    write(&store, |tx| {
        tx.insert_workspace(&ws)?;
        if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
            // Rolled back, so the next attempt can insert the same row again.
            return Err(StoreError::Retry("simulated race".into()));
        }
        Ok(())
    })
    .expect("the third attempt commits");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(read(&store, |tx| tx.count_workspaces()).expect("count"), 1);

    let attempts = AtomicUsize::new(0);
    let result = write(&store, |_| {
        attempts.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(StoreError::Retry("always".into()))
    });
    assert!(
        matches!(result, Err(StoreError::Retry(_))),
        "gives up with the Retry error, got {result:?}"
    );
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        5,
        "a few attempts, not forever"
    );

    let attempts = AtomicUsize::new(0);
    let result = write(&store, |_| {
        attempts.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(StoreError::Conflict("operators_email".into()))
    });
    assert!(matches!(result, Err(StoreError::Conflict(_))));
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "only Retry errors are retried"
    );
}

/// Two transactions that lock two profiles in opposite orders deadlock; PostgreSQL aborts one,
/// the adapter reports `Retry` and runs it again, and both writes land.
#[test]
fn deadlocks_are_retried() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let (_, profiles) = setup(&store, 2);
    let both_locked_one = Barrier::new(2);
    let attempts = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for (first, second, name) in [(0, 1, "Ana"), (1, 0, "Bia")] {
            let (store, profiles, both_locked_one, attempts) =
                (&store, &profiles, &both_locked_one, &attempts);
            scope.spawn(move || {
                let mut my_attempts = 0;
                write(store, |tx| {
                    my_attempts += 1;
                    attempts.fetch_add(1, Ordering::SeqCst);
                    let mut a = profiles[first].clone();
                    a.name = Some(name.into());
                    tx.update_customer(&a)?;
                    if my_attempts == 1 {
                        both_locked_one.wait();
                    }
                    let mut b = profiles[second].clone();
                    b.name = Some(name.into());
                    tx.update_customer(&b)
                })
                .expect("the write lands, after a retry for one of them");
            });
        }
    });
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "one of the two was run again"
    );
    let names: Vec<Option<String>> = read(&store, |tx| {
        tx.get_customers(
            &profiles[0].workspace_id,
            &[profiles[0].id.clone(), profiles[1].id.clone()],
        )
    })
    .expect("read")
    .into_iter()
    .map(|c| c.name)
    .collect();
    assert_eq!(names[0], names[1], "the last writer wrote both rows");
}

/// A reported conflict leaves the transaction usable (the insert did not raise an error in
/// PostgreSQL), so a caller may handle it and go on, as with SQLite.
#[test]
fn a_reported_conflict_does_not_abort_the_transaction() {
    let db = fresh_database!();
    let store = db.migrated_store();
    write(&store, |tx| tx.insert_operator(&operator(1, "ana@x.com"))).expect("first operator");
    let outcome = write(&store, |tx| {
        let clash = tx.insert_operator(&operator(2, "ANA@x.com"));
        tx.insert_operator(&operator(3, "bia@x.com"))?;
        Ok(clash)
    })
    .expect("the transaction goes on after the conflict");
    assert!(
        matches!(outcome, Err(StoreError::Conflict(ref c)) if c == "operators_email"),
        "got {outcome:?}"
    );
    assert!(read(&store, |tx| tx.operator_by_email("bia@x.com"))
        .expect("read")
        .is_some());
    let ws = workspace(1);
    let mut twin = workspace(2);
    twin.write_key = ws.write_key.clone();
    let outcome = write(&store, |tx| {
        tx.insert_workspace(&ws)?;
        Ok(tx.insert_workspace(&twin))
    })
    .expect("write");
    assert!(
        matches!(outcome, Err(StoreError::Conflict(ref c)) if c == "workspaces_write_key"),
        "got {outcome:?}"
    );
}

#[test]
fn reads_are_read_only() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let result = read(&store, |tx| tx.insert_workspace(&workspace(1)));
    assert!(
        matches!(result, Err(StoreError::Backend(_))),
        "a write inside read fails, got {result:?}"
    );
    assert_eq!(read(&store, |tx| tx.count_workspaces()).expect("count"), 0);
}

/// Two ingestion batches with the same message ids, racing: every message is stored once, and
/// each is reported as inserted by exactly one of them. No error reaches the caller.
#[test]
fn racing_batches_store_each_message_once() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let (ws, profiles) = setup(&store, 10);
    let events: Vec<Event> = (0..2_000u64)
        .map(|n| event(&ws, &profiles[(n % 10) as usize].id, n, &format!("m-{n}")))
        .collect();
    let mut reversed = events.clone();
    reversed.reverse();
    let start = Barrier::new(2);
    let inserted: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&events, &reversed]
            .into_iter()
            .map(|batch| {
                let (store, start) = (&store, &start);
                scope.spawn(move || {
                    start.wait();
                    let mut total = 0;
                    for chunk in batch.chunks(250) {
                        let flags =
                            write(store, |tx| tx.insert_events(chunk)).expect("insert_events");
                        total += flags.iter().filter(|f| **f).count();
                    }
                    total
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(
        inserted.iter().sum::<usize>(),
        events.len(),
        "each message reported inserted once: {inserted:?}"
    );
    assert_eq!(
        read(&store, |tx| tx.count_events(&ws)).expect("count") as usize,
        events.len()
    );
}

#[test]
fn bulk_identities_race_without_errors() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let (ws, profiles) = setup(&store, 2);
    let identities = |owner: &Customer| -> Vec<Identity> {
        (0..500)
            .map(|n| Identity {
                key: IdentityKey::new(IdentityKind::AnonymousId, format!("anon-{n}")),
                customer_id: owner.id.clone(),
                source: "track".into(),
                created_at: at(n),
            })
            .collect()
    };
    let start = Barrier::new(2);
    let inserted: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = profiles
            .iter()
            .map(|owner| {
                let (store, start, ws) = (&store, &start, &ws);
                let mine = identities(owner);
                scope.spawn(move || {
                    start.wait();
                    let flags = write(store, |tx| tx.insert_identities(ws, &mine))
                        .expect("insert_identities");
                    flags.iter().filter(|f| **f).count()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(
        inserted.iter().sum::<usize>(),
        500,
        "every key has exactly one owner: {inserted:?}"
    );
}

/// Batches of the size ingestion sends go in as single statements; prints the rate, which the
/// ingestion target (50,000 events/s) depends on.
#[test]
fn bulk_event_inserts_at_volume() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let (ws, profiles) = setup(&store, 100);
    let events: Vec<Event> = (0..20_000u64)
        .map(|n| {
            event(
                &ws,
                &profiles[(n % 100) as usize].id,
                n,
                &format!("bulk-{n}"),
            )
        })
        .collect();
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let insert_all = |batch: &[Event]| {
        for chunk in batch.chunks(1_000) {
            let flags = write(&store, |tx| tx.insert_events(chunk)).expect("insert_events");
            assert!(flags.iter().all(|f| *f));
        }
    };
    let (first, rest) = events.split_at(10_000);
    let started = Instant::now();
    insert_all(first);
    let rate = first.len() as f64 / started.elapsed().as_secs_f64();
    println!("insert_events: {rate:.0} events/s, one connection, batches of 1,000 ({build} build)");
    let started = Instant::now();
    std::thread::scope(|scope| {
        for half in rest.chunks(rest.len() / 2) {
            scope.spawn(|| insert_all(half));
        }
    });
    let rate = rest.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "insert_events: {rate:.0} events/s, two connections, batches of 1,000 ({build} build)"
    );
    let again = write(&store, |tx| tx.insert_events(&events[..1_000])).expect("repeat");
    assert!(again.iter().all(|f| !*f), "a repeated batch stores nothing");
    let timeline = read(&store, |tx| {
        tx.timeline(
            &ws,
            std::slice::from_ref(&profiles[7].id),
            &TimelineQuery {
                limit: 5,
                ..Default::default()
            },
        )
    })
    .expect("timeline");
    assert_eq!(timeline.len(), 5);
    assert_eq!(timeline[0].message_id, "bulk-19907");
    assert_eq!(timeline[0].properties, events[19_907].properties);
}

/// Profiles written in bulk are found by search and sorted like single writes; the derived
/// columns follow updates.
#[test]
fn bulk_customer_writes_keep_search_and_sort_columns() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let ws = workspace(1);
    let mut profiles: Vec<Customer> = (1..=300u64)
        .map(|n| {
            let mut c = customer(&ws.id, n);
            c.name = Some(format!("Cliente {n:03} O'Brien \\ \"quoted\""));
            c.tags = vec![
                format!("Tag{}", n % 3),
                "NULL".into(),
                "with \"quote\", comma".into(),
            ];
            c
        })
        .collect();
    write(&store, |tx| {
        tx.insert_workspace(&ws)?;
        tx.insert_customers(&profiles)
    })
    .expect("insert");
    let search = |text: &str| {
        let q = CustomerQuery {
            search: Some(text.into()),
            sort: CustomerSort::Name,
            limit: 1_000,
            ..Default::default()
        };
        read(&store, |tx| tx.list_customers(&ws.id, &q))
            .expect("search")
            .len()
    };
    assert_eq!(search("cliente 0"), 99);
    assert_eq!(search("o'brien"), 300);
    assert_eq!(search("\\"), 300, "a backslash word is found");
    assert_eq!(search("\"quoted"), 300);
    let stored = read(&store, |tx| tx.get_customer(&ws.id, &profiles[0].id))
        .expect("get")
        .expect("exists");
    assert_eq!(
        stored, profiles[0],
        "tags with quotes, commas and the word NULL round-trip"
    );
    let by_tag = CustomerQuery {
        tag: Some("tag1".into()),
        limit: 1_000,
        ..Default::default()
    };
    assert_eq!(
        read(&store, |tx| tx.list_customers(&ws.id, &by_tag))
            .expect("tag")
            .len(),
        100
    );

    for c in profiles.iter_mut() {
        c.name = Some("Renamed".into());
        c.tags.clear();
    }
    write(&store, |tx| tx.update_customers(&profiles)).expect("bulk update");
    assert_eq!(search("cliente"), 0);
    assert_eq!(search("renamed"), 300);
    assert_eq!(
        read(&store, |tx| tx.list_customers(&ws.id, &by_tag))
            .expect("tag")
            .len(),
        0
    );
    let ghost = customer(&ws.id, 999);
    let result = write(&store, |tx| {
        tx.update_customers(&[profiles[0].clone(), ghost.clone()])
    });
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "a missing profile in a bulk update is NotFound, got {result:?}"
    );
}

/// A write transaction sends back only the half of a profile it changed (the activity row, the
/// `customers` row, or nothing), so a concurrent change to the other half survives instead of
/// being overwritten with the stale copy read before it.
#[test]
fn writing_back_a_profile_leaves_alone_what_this_transaction_did_not_change() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let (ws, profiles) = setup(&store, 2);
    let (seen, untouched) = (&profiles[0], &profiles[1]);
    write(&store, |tx| {
        let mut mine = tx.get_customers(&ws, &[seen.id.clone(), untouched.id.clone()])?;
        // Another transaction renames the first and records activity on the second, and
        // commits while this one holds its copies.
        write(&store, |other| {
            let mut renamed = seen.clone();
            renamed.name = Some("Renamed elsewhere".into());
            let mut active = untouched.clone();
            active.last_seen_at = at(9_000);
            other.update_customers(&[renamed, active])
        })?;
        mine[0].seen_at(at(5_000));
        tx.update_customers(&mine)
    })
    .expect("write");
    let stored = read(&store, |tx| {
        tx.get_customers(&ws, &[seen.id.clone(), untouched.id.clone()])
    })
    .expect("read");
    assert_eq!(stored[0].name.as_deref(), Some("Renamed elsewhere"));
    assert_eq!(stored[0].last_seen_at, at(5_000));
    assert_eq!(stored[1].last_seen_at, at(9_000));
    assert_eq!(
        read(&store, |tx| {
            let q = CustomerQuery {
                search: Some("renamed".into()),
                limit: 10,
                ..Default::default()
            };
            tx.list_customers(&ws, &q)
        })
        .expect("search")
        .len(),
        1,
        "the search column followed the rename"
    );
}

/// The bulk order insert behaves like `insert_order` called in turn: a repeated external id
/// (in the same call or stored before) is not inserted, and items go in with their order only.
#[test]
fn bulk_orders_keep_the_first_of_each_external_id() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let (ws, profiles) = setup(&store, 1);
    let order = |n: u64, external_id: &str, items: usize| Order {
        id: OrderId::generate(BASE_MS + n, u128::from(n)),
        workspace_id: ws.clone(),
        customer_id: profiles[0].id.clone(),
        external_id: external_id.into(),
        total_minor: 1_000 * n as i64,
        currency: "BRL".into(),
        placed_at: at(n as i64),
        source: "track".into(),
        event_id: None,
        items: (0..items)
            .map(|i| OrderItem {
                product_id: Some(format!("p-{n}-{i}")),
                sku: None,
                name: Some(format!("Item {i}")),
                category: None,
                price_minor: 100 * i as i64,
                quantity: 1,
            })
            .collect(),
    };
    let first = order(1, "E-1", 2);
    let inserted = write(&store, |tx| {
        tx.insert_orders(&[first.clone(), order(2, "E-1", 3), order(3, "E-2", 0)])
    })
    .expect("insert");
    assert_eq!(inserted, vec![true, false, true]);
    let again = write(&store, |tx| {
        tx.insert_orders(&[order(4, "E-2", 1), order(5, "E-3", 1)])
    })
    .expect("insert again");
    assert_eq!(again, vec![false, true]);
    let stored = read(&store, |tx| {
        tx.orders_of(&ws, &[profiles[0].id.clone()], 10)
    })
    .expect("orders");
    let by_external: Vec<(&str, usize)> = stored
        .iter()
        .map(|o| (o.external_id.as_str(), o.items.len()))
        .collect();
    assert_eq!(by_external, vec![("E-3", 1), ("E-2", 0), ("E-1", 2)]);
    assert_eq!(stored[2], first, "the first E-1 went in, items in order");
}

/// The plans behind the profile list, on enough rows for the planner to care: every sort walks
/// its index, and a selective search goes through the GIN index.
#[test]
fn list_queries_use_their_indexes() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let ws = workspace(1);
    write(&store, |tx| tx.insert_workspace(&ws)).expect("workspace");
    for chunk in (1..=20_000u64).collect::<Vec<_>>().chunks(2_000) {
        let profiles: Vec<Customer> = chunk
            .iter()
            .map(|&n| {
                let mut c = customer(&ws.id, n);
                c.name = Some(if n == 777 {
                    "Zuleica Prado".into()
                } else {
                    format!("Cliente {n}")
                });
                c.last_seen_at = at((n * 7_919 % 20_000) as i64);
                c.stats.total_spent_minor = (n * 104_729 % 1_000) as i64;
                c
            })
            .collect();
        write(&store, |tx| tx.insert_customers(&profiles)).expect("insert");
    }
    let mut client = db.client();
    client
        .batch_execute("ANALYZE customers, customer_activity")
        .expect("analyze");
    let mut plan = |sql: &str| -> String {
        client
            .query(&format!("EXPLAIN {sql}"), &[])
            .expect("explain")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The shape of list_customers' statements.
    let base = format!(
        "SELECT c.id FROM customers c JOIN customer_activity a ON a.workspace_id = c.workspace_id \
         AND a.id = c.id WHERE c.workspace_id = '{}' AND c.merged_into IS NULL",
        ws.id
    );
    for (sql, index) in [
        (format!("{base} ORDER BY c.id DESC LIMIT 50"), "customers_pkey"),
        (
            format!("{base} AND (a.last_seen_at, a.id) < (now(), 'x') ORDER BY a.last_seen_at DESC, a.id DESC LIMIT 50"),
            "customer_activity_last_seen",
        ),
        (
            format!(
                "{base} AND (a.total_spent_minor, a.id) < (500, 'x') ORDER BY a.total_spent_minor DESC, a.id DESC LIMIT 50"
            ),
            "customer_activity_total_spent",
        ),
        (format!("{base} AND (c.sort_name, c.id) > ('m', 'x') ORDER BY c.sort_name, c.id LIMIT 50"), "customers_sort_name"),
        (
            format!(
                "{base} AND c.search @@ $$('zule':*)$$::text::tsquery AND (starts_with(c.sort_name, 'zule') \
                 OR strpos(c.sort_name, ' zule') > 0 OR starts_with(c.email, 'zule')) ORDER BY c.id DESC LIMIT 50"
            ),
            "customers_search",
        ),
    ] {
        let shown = plan(&sql);
        assert!(shown.contains(index), "expected {index} in the plan of {sql}:\n{shown}");
    }
    let q = CustomerQuery {
        search: Some("zule".into()),
        limit: 50,
        ..Default::default()
    };
    assert_eq!(
        read(&store, |tx| tx.list_customers(&ws.id, &q))
            .expect("search")
            .len(),
        1
    );
}

#[test]
fn connecting_to_a_missing_database_fails_fast() {
    let db = fresh_database!();
    let missing = db.url().replace("ciclo_test_", "ciclo_missing_");
    let started = Instant::now();
    let result = PostgresStore::connect(&missing);
    assert!(
        matches!(result, Err(StoreError::Backend(ref m)) if m.contains("does not exist")),
        "got {result:?}"
    );
    assert!(
        started.elapsed().as_secs() < 5,
        "no waiting for a pool timeout"
    );
    let store = db.store();
    assert_eq!(store.backend(), "postgres");
    assert!(
        !format!("{store:?}").contains("postgres://"),
        "Debug shows no URL (it may hold a password)"
    );
}

/// Two evaluators never take the same customer: `take_dirty` locks what it returns and skips
/// what another transaction holds. A customer marked again while an evaluator holds its mark
/// stays marked once that evaluator clears it and commits: the new mark waits for the
/// evaluator, then goes in (the change came too late for that evaluation).
#[test]
fn taken_marks_are_locked_and_a_new_mark_outlives_the_clear() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let (ws, profiles) = setup(&store, 3);
    let ids: Vec<CustomerId> = profiles.iter().map(|c| c.id.clone()).collect();
    write(&store, |tx| tx.mark_dirty(&ws, &ids)).expect("mark");
    let taken = std::sync::Mutex::new(Vec::new());
    let (took, wait_took) = std::sync::mpsc::channel();
    let (finish, wait_finish) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let (store, taken) = (&store, &taken);
        let first = scope.spawn(move || {
            write(store, |tx| {
                let mine = tx.take_dirty(2)?;
                *taken.lock().expect("lock") = mine.clone();
                let _ = took.send(());
                let _ = wait_finish.recv();
                tx.clear_dirty(&mine)
            })
            .expect("first evaluator");
        });
        wait_took
            .recv()
            .expect("the first evaluator took its marks");
        let mine = taken.lock().expect("lock").clone();
        assert_eq!(mine.len(), 2);
        let others = write(store, |tx| tx.take_dirty(10)).expect("second evaluator");
        assert_eq!(others.len(), 1, "the held marks are skipped: {others:?}");
        assert!(!mine.contains(&others[0]));

        let again = mine[0].customer_id.clone();
        let ws = &ws;
        let marker = scope.spawn(move || {
            write(store, |tx| tx.mark_dirty(ws, std::slice::from_ref(&again))).expect("mark again")
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !marker.is_finished(),
            "marking a customer an evaluator holds waits for the evaluator"
        );
        finish.send(()).expect("let the first evaluator finish");
        first.join().expect("first evaluator thread");
        marker.join().expect("marker thread");
    });
    let mine = taken.into_inner().expect("lock");
    let left = write(&store, |tx| tx.take_dirty(10)).expect("take what is left");
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.contains(&mine[0]),
        "the mark made during the evaluation survives its clear"
    );
    assert!(!left.contains(&mine[1]), "the other taken mark is cleared");
}

/// The stage and segment filters at a volume where the adapter picks the plan (see
/// `customers::list_customers`): the Newest sort walks a stage's index in id order, a stage or
/// segment with few profiles is the starting point of the other sorts, a stage with many is
/// left to the planner; every plan returns the same rows, page after page.
#[test]
fn stage_and_segment_lists_agree_across_plans() {
    let db = fresh_database!();
    let store = db.migrated_store();
    let (ws, mut profiles) = setup(&store, 0);
    for chunk in (1..=12_000u64).collect::<Vec<_>>().chunks(3_000) {
        let batch: Vec<Customer> = chunk
            .iter()
            .map(|&n| {
                let mut c = customer(&ws, n);
                c.name = Some(format!("Cliente {:05}", (n * 7_919) % 12_000));
                c.last_seen_at = at((n * 104_729 % 12_000) as i64);
                c.stats.total_spent_minor = (n % 97) as i64 * 100;
                c
            })
            .collect();
        write(&store, |tx| tx.insert_customers(&batch)).expect("insert");
        profiles.extend(batch);
    }
    let stage_of = |n: u64| {
        if n.is_multiple_of(10) {
            Stage::Lapsed
        } else {
            Stage::Loyalty
        }
    };
    let segment = SegmentRecord {
        id: SegmentId::generate(BASE_MS, 1),
        workspace_id: ws.clone(),
        name: "Escolhidos".into(),
        description: String::new(),
        kind: SegmentKind::Static,
        definition: None,
        member_count: 0,
        evaluated_at: None,
        created_at: at(0),
        updated_at: at(0),
    };
    write(&store, |tx| {
        let stages: Vec<(CustomerId, Stage, Timestamp)> = profiles
            .iter()
            .zip(1u64..)
            .map(|(c, n)| (c.id.clone(), stage_of(n), at(0)))
            .collect();
        tx.set_stages(&ws, &stages)?;
        tx.insert_segment(&segment)?;
        let members: Vec<CustomerId> = profiles
            .iter()
            .zip(1u64..)
            .filter(|(_, n)| n.is_multiple_of(5))
            .map(|(c, _)| c.id.clone())
            .collect();
        tx.add_segment_members(&ws, &segment.id, &members, at(0))
            .map(drop)
    })
    .expect("stages and members");
    // As autovacuum leaves the tables: statistics, and the visibility map that lets the stage
    // index answer without the table.
    db.client()
        .batch_execute("VACUUM ANALYZE")
        .expect("vacuum analyze");
    let n_of: std::collections::HashMap<CustomerId, u64> = profiles
        .iter()
        .zip(1u64..)
        .map(|(c, n)| (c.id.clone(), n))
        .collect();
    let list_all = |base: &CustomerQuery| -> Vec<CustomerId> {
        let mut q = base.clone();
        let mut out = Vec::new();
        loop {
            let rows = read(&store, |tx| tx.list_customers(&ws, &q)).expect("list");
            out.extend(rows.iter().map(|c| c.id.clone()));
            match rows.last() {
                Some(last) if rows.len() as i64 == q.limit => {
                    q.after = Some(CustomerCursor {
                        key: match q.sort {
                            CustomerSort::Newest => String::new(),
                            CustomerSort::LastSeen => last.last_seen_at.to_rfc3339(),
                            CustomerSort::TotalSpent => last.stats.total_spent_minor.to_string(),
                            CustomerSort::Name => {
                                last.name.clone().unwrap_or_default().to_lowercase()
                            }
                        },
                        id: last.id.clone(),
                    })
                }
                _ => return out,
            }
        }
    };
    let expected = |sort: CustomerSort, keep: &dyn Fn(u64) -> bool| -> Vec<CustomerId> {
        let mut v: Vec<&Customer> = profiles.iter().filter(|c| keep(n_of[&c.id])).collect();
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
    };
    for sort in [
        CustomerSort::Newest,
        CustomerSort::LastSeen,
        CustomerSort::TotalSpent,
        CustomerSort::Name,
    ] {
        for (label, q, keep) in [
            (
                "many in the stage",
                CustomerQuery {
                    stage: Some(Stage::Loyalty),
                    ..Default::default()
                },
                &(|n: u64| stage_of(n) == Stage::Loyalty) as &dyn Fn(u64) -> bool,
            ),
            (
                "few in the stage",
                CustomerQuery {
                    stage: Some(Stage::Lapsed),
                    ..Default::default()
                },
                &|n: u64| stage_of(n) == Stage::Lapsed,
            ),
            (
                "segment",
                CustomerQuery {
                    segment: Some(segment.id.clone()),
                    ..Default::default()
                },
                &|n: u64| n.is_multiple_of(5),
            ),
            (
                "segment and stage",
                CustomerQuery {
                    segment: Some(segment.id.clone()),
                    stage: Some(Stage::Loyalty),
                    ..Default::default()
                },
                &|n: u64| n.is_multiple_of(5) && stage_of(n) == Stage::Loyalty,
            ),
            (
                "segment and search",
                CustomerQuery {
                    segment: Some(segment.id.clone()),
                    search: Some("cliente 1".into()),
                    ..Default::default()
                },
                &|n: u64| n.is_multiple_of(5) && (n * 7_919) % 12_000 >= 10_000,
            ),
        ] {
            let q = CustomerQuery {
                sort,
                limit: 700,
                ..q
            };
            assert_eq!(list_all(&q), expected(sort, keep), "{label}, {sort:?}");
        }
    }

    // The Newest sort's walk of the stage index: in id order, no sort step.
    let mut client = db.client();
    let plan: Vec<String> = client
        .query(
            &format!(
                "EXPLAIN SELECT x.* FROM customer_computed f CROSS JOIN LATERAL (
                     SELECT c.id FROM customers c JOIN customer_activity a
                         ON a.workspace_id = c.workspace_id AND a.id = c.id
                     WHERE c.workspace_id = f.workspace_id AND c.id = f.customer_id
                       AND c.merged_into IS NULL OFFSET 0) x
                 WHERE f.workspace_id = '{ws}' AND f.stage = 'loyalty'
                 ORDER BY f.customer_id DESC LIMIT 50"
            ),
            &[],
        )
        .expect("explain")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Only Scan Backward using customer_computed_by_stage"),
        "{plan}"
    );
    assert!(!plan.contains("Sort"), "{plan}");
}
