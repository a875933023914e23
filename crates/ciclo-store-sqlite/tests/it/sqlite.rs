//! What only the SQLite adapter has: a file that outlives the process, several connections and
//! processes on one file, and query plans that must use the indexes designed for them.

use crate::fresh_store;
use ciclo_domain::customer::Customer;
use ciclo_domain::event::{Event, EventType};
use ciclo_domain::identity::{Identity, IdentityKey, IdentityKind};
use ciclo_domain::ids::{CustomerId, EventId, SegmentId, WorkspaceId};
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::Workspace;
use ciclo_domain::{DateTime, Timestamp};
use ciclo_store::{
    read, write, CustomerCursor, CustomerQuery, CustomerSort, SegmentKind, SegmentRecord, Store,
    StoreError, TimelineQuery,
};
use ciclo_store_sqlite::SqliteStore;
use serde_json::Map;
use std::sync::Arc;

const BASE_MS: u64 = 1_767_225_600_000;

fn at(secs: i64) -> Timestamp {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).expect("time in range")
}

fn workspace(n: u64) -> Workspace {
    Workspace {
        id: WorkspaceId::generate(BASE_MS + n, u128::from(n)),
        name: format!("Loja {n}"),
        write_key: format!("wk_{n}"),
        locale: "pt-BR".into(),
        time_zone: "America/Sao_Paulo".into(),
        currency: "BRL".into(),
        default_region: "BR".into(),
        created_at: at(0),
    }
}

fn customer(ws: &WorkspaceId, n: u64, name: &str) -> Customer {
    let mut c = Customer::new(
        CustomerId::generate(BASE_MS + n, u128::from(n)),
        ws.clone(),
        at(n as i64),
    );
    c.name = Some(name.to_string());
    c.last_seen_at = at((n % 97) as i64 * 60);
    c.stats.total_spent_minor = (n % 13) as i64 * 1_000;
    c
}

fn event(ws: &WorkspaceId, customer: &CustomerId, n: u64) -> Event {
    Event {
        id: EventId::generate(BASE_MS + n, u128::from(n)),
        workspace_id: ws.clone(),
        customer_id: customer.clone(),
        message_id: format!("msg-{n}"),
        event_type: EventType::Track,
        name: Some("Product Viewed".into()),
        channel: "web".into(),
        source: "api".into(),
        user_id: None,
        anonymous_id: Some("anon".into()),
        properties: Map::new(),
        context: Map::new(),
        timestamp: at(n as i64),
        received_at: at(n as i64),
    }
}

fn setup(store: &dyn Store, n: u64) -> WorkspaceId {
    let ws = workspace(n);
    write(store, |tx| tx.insert_workspace(&ws)).expect("insert workspace");
    ws.id
}

fn plan_text(plan: &[String]) -> String {
    plan.join("\n")
}

#[test]
fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ciclo.db");
    let path = path.to_str().expect("utf-8 path");
    let (ws, c) = {
        let store = SqliteStore::open(path).expect("open");
        store.migrate().expect("migrate");
        let ws = setup(&store, 1);
        let c = customer(&ws, 1, "Ana Souza");
        let e = event(&ws, &c.id, 1);
        write(&store, |tx| {
            tx.insert_customer(&c)?;
            tx.insert_events(std::slice::from_ref(&e))
        })
        .expect("write");
        (ws, c)
    };
    let store = SqliteStore::open(path).expect("reopen");
    store
        .migrate()
        .expect("migrating an up-to-date file is harmless");
    let (got, events) = read(&store, |tx| {
        Ok((
            tx.get_customer(&ws, &c.id)?,
            tx.existing_message_ids(&ws, &["msg-1".into()])?,
        ))
    })
    .expect("read");
    assert_eq!(got, Some(c));
    assert_eq!(events, vec!["msg-1".to_string()]);
}

#[test]
fn a_write_inside_read_is_refused() {
    let (_dir, store) = fresh_store();
    let result = read(&store, |tx| tx.insert_workspace(&workspace(1)));
    assert!(
        matches!(result, Err(StoreError::Backend(_))),
        "readers are query_only, got {result:?}"
    );
    assert_eq!(read(&store, |tx| tx.count_workspaces()).expect("count"), 0);
}

#[test]
fn a_closure_that_panics_leaves_the_store_usable() {
    let (_dir, store) = fresh_store();
    let store = Arc::new(store);
    let panicking = Arc::clone(&store);
    let outcome = std::thread::spawn(move || {
        let _ = write(&*panicking, |tx| {
            tx.insert_workspace(&workspace(1))?;
            panic!("a bug in a use case");
            #[allow(unreachable_code)]
            Ok(())
        });
    })
    .join();
    assert!(outcome.is_err(), "the panic reaches the caller");
    assert_eq!(
        read(&*store, |tx| tx.count_workspaces()).expect("count"),
        0,
        "the panicked write was rolled back"
    );
    setup(&*store, 2);
    assert_eq!(
        read(&*store, |tx| tx.count_workspaces()).expect("count"),
        1,
        "writes work again"
    );
}

#[test]
fn readers_and_writers_run_concurrently() {
    let (_dir, store) = fresh_store();
    let store = Arc::new(store);
    let ws = setup(&*store, 1);
    let owner = customer(&ws, 1, "Ana");
    write(&*store, |tx| tx.insert_customer(&owner)).expect("insert customer");
    let mut handles = Vec::new();
    for worker in 0..3u64 {
        let (store, ws, owner) = (Arc::clone(&store), ws.clone(), owner.id.clone());
        handles.push(std::thread::spawn(move || {
            for batch in 0..40u64 {
                let events: Vec<Event> = (0..25u64)
                    .map(|i| event(&ws, &owner, 1_000_000 * (worker + 1) + batch * 100 + i))
                    .collect();
                let inserted =
                    write(&*store, |tx| tx.insert_events(&events)).expect("concurrent write");
                assert!(inserted.iter().all(|i| *i));
            }
        }));
    }
    for _ in 0..3 {
        let (store, ws, owner) = (Arc::clone(&store), ws.clone(), owner.id.clone());
        handles.push(std::thread::spawn(move || {
            let mut last = 0;
            for _ in 0..100 {
                // One snapshot: the count and the timeline agree.
                let (count, page) = read(&*store, |tx| {
                    let q = TimelineQuery {
                        limit: 5000,
                        ..Default::default()
                    };
                    Ok((
                        tx.count_events(&ws)?,
                        tx.timeline(&ws, std::slice::from_ref(&owner), &q)?.len(),
                    ))
                })
                .expect("concurrent read");
                assert_eq!(count as usize, page, "a read is one consistent snapshot");
                assert!(count >= last, "commits never go backwards");
                last = count;
            }
        }));
    }
    for handle in handles {
        handle.join().expect("thread finished");
    }
    assert_eq!(
        read(&*store, |tx| tx.count_events(&ws)).expect("count"),
        3 * 40 * 25
    );
}

#[test]
fn two_stores_on_one_file_migrate_and_write_together() {
    // Two stores on one file behave like two processes (`ciclo serve` and `ciclo import`).
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir
        .path()
        .join("shared.db")
        .to_str()
        .expect("utf-8 path")
        .to_string();
    let stores: Vec<Arc<SqliteStore>> = (0..2)
        .map(|_| Arc::new(SqliteStore::open(&path).expect("open")))
        .collect();
    let migrations: Vec<_> = stores
        .iter()
        .map(|s| {
            let s = Arc::clone(s);
            std::thread::spawn(move || s.migrate())
        })
        .collect();
    for m in migrations {
        m.join().expect("thread").expect("concurrent migrate");
    }
    let writers: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = Arc::clone(s);
            std::thread::spawn(move || {
                for n in 0..20u64 {
                    let ws = workspace(i as u64 * 100 + n);
                    write(&*s, |tx| tx.insert_workspace(&ws)).expect("write from either store");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("thread");
    }
    assert_eq!(
        read(&*stores[0], |tx| tx.count_workspaces()).expect("count"),
        40
    );
    assert_eq!(
        read(&*stores[1], |tx| tx.count_workspaces()).expect("count"),
        40
    );
}

/// Profiles named `Ana 00001`…: enough that a search for `ana` matches more than the adapter
/// fetches and sorts (10,000, `FEW_MATCHES` in src/customers.rs), so it walks the sort index,
/// while `ana 0001` matches few.
fn many_anas(store: &dyn Store, ws: &WorkspaceId, count: u64) -> Vec<Customer> {
    let customers: Vec<Customer> = (1..=count)
        .map(|n| {
            let mut c = customer(ws, n, &format!("Ana {n:05}"));
            if n % 10 == 0 {
                c.tags = vec!["vip".into()];
            }
            c
        })
        .collect();
    write(store, |tx| {
        customers.iter().try_for_each(|c| tx.insert_customer(c))
    })
    .expect("insert customers");
    customers
}

fn list_all(store: &dyn Store, ws: &WorkspaceId, base: &CustomerQuery) -> Vec<CustomerId> {
    let mut q = base.clone();
    let mut out = Vec::new();
    loop {
        let rows = read(store, |tx| tx.list_customers(ws, &q)).expect("list");
        out.extend(rows.iter().map(|c| c.id.clone()));
        match rows.last() {
            Some(last) if rows.len() as i64 == q.limit => {
                let key = match q.sort {
                    CustomerSort::Newest => String::new(),
                    CustomerSort::LastSeen => last.last_seen_at.to_rfc3339(),
                    CustomerSort::TotalSpent => last.stats.total_spent_minor.to_string(),
                    CustomerSort::Name => last.name.clone().unwrap_or_default().to_lowercase(),
                };
                q.after = Some(CustomerCursor {
                    key,
                    id: last.id.clone(),
                });
            }
            _ => return out,
        }
    }
}

fn expected(
    customers: &[Customer],
    sort: CustomerSort,
    keep: impl Fn(&Customer) -> bool,
) -> Vec<CustomerId> {
    let mut v: Vec<&Customer> = customers.iter().filter(|c| keep(c)).collect();
    match sort {
        CustomerSort::Newest => v.sort_by(|a, b| b.id.cmp(&a.id)),
        CustomerSort::LastSeen => {
            v.sort_by(|a, b| (b.last_seen_at, &b.id).cmp(&(a.last_seen_at, &a.id)))
        }
        CustomerSort::TotalSpent => v.sort_by(|a, b| {
            (b.stats.total_spent_minor, &b.id).cmp(&(a.stats.total_spent_minor, &a.id))
        }),
        CustomerSort::Name => {
            v.sort_by(|a, b| (a.name.clone(), &a.id).cmp(&(b.name.clone(), &b.id)))
        }
    }
    v.into_iter().map(|c| c.id.clone()).collect()
}

const SORTS: [CustomerSort; 4] = [
    CustomerSort::Newest,
    CustomerSort::LastSeen,
    CustomerSort::TotalSpent,
    CustomerSort::Name,
];

#[test]
fn list_plans_use_the_indexes_and_agree() {
    let (_dir, store) = fresh_store();
    let ws = setup(&store, 1);
    let customers = many_anas(&store, &ws, 10_500);

    for sort in SORTS {
        // No filter: walk the sort's index, no sorting step.
        let q = CustomerQuery {
            sort,
            limit: 50,
            ..Default::default()
        };
        let plan = plan_text(&store.explain_list_customers(&ws, &q).expect("explain"));
        assert!(
            !plan.contains("TEMP B-TREE"),
            "{sort:?} without filters must not sort:\n{plan}"
        );
        assert!(
            plan.contains("USING INDEX") || plan.contains("USING PRIMARY KEY"),
            "{sort:?}:\n{plan}"
        );

        // A broad search (10,500 matches): still a walk of the sort index, checking each row.
        let broad = CustomerQuery {
            search: Some("ana".into()),
            sort,
            limit: 2_000,
            ..Default::default()
        };
        let plan = plan_text(&store.explain_list_customers(&ws, &broad).expect("explain"));
        assert!(
            !plan.contains("TEMP B-TREE"),
            "a broad search walks the sort index:\n{plan}"
        );
        assert!(
            !plan.contains("customer_search_terms"),
            "a broad search does not read all its matches:\n{plan}"
        );
        assert_eq!(
            list_all(&store, &ws, &broad),
            expected(&customers, sort, |_| true),
            "broad search, {sort:?}"
        );

        // A narrow search (`ana 0001` matches 10): the terms index, then a sort of the few rows.
        let narrow = CustomerQuery {
            search: Some("ana 0001".into()),
            sort,
            limit: 3,
            ..Default::default()
        };
        let plan = plan_text(&store.explain_list_customers(&ws, &narrow).expect("explain"));
        assert!(
            plan.contains("SEARCH customer_search_terms USING PRIMARY KEY (workspace_seq=? AND term>? AND term<?)"),
            "a narrow search reads the terms index by prefix range:\n{plan}"
        );
        assert!(
            !plan.contains("SCAN c"),
            "a narrow search does not scan customers:\n{plan}"
        );
        let want = expected(&customers, sort, |c| {
            c.name.as_deref().is_some_and(|n| n.starts_with("Ana 0001"))
        });
        assert_eq!(want.len(), 10);
        assert_eq!(
            list_all(&store, &ws, &narrow),
            want,
            "narrow search, {sort:?}"
        );

        // A tag on 1,050 profiles: the tag index.
        let tagged = CustomerQuery {
            tag: Some("vip".into()),
            sort,
            limit: 100,
            ..Default::default()
        };
        let plan = plan_text(&store.explain_list_customers(&ws, &tagged).expect("explain"));
        assert!(
            plan.contains("SEARCH customer_tags USING PRIMARY KEY (workspace_seq=? AND tag=?)"),
            "{plan}"
        );
        assert_eq!(
            list_all(&store, &ws, &tagged),
            expected(&customers, sort, |c| !c.tags.is_empty()),
            "tag, {sort:?}"
        );

        // Phone digits and email prefixes use the same index.
        let phone = CustomerQuery {
            search: Some("11 9876".into()),
            sort,
            limit: 10,
            ..Default::default()
        };
        let plan = plan_text(&store.explain_list_customers(&ws, &phone).expect("explain"));
        assert!(
            plan.contains("customer_search_terms USING PRIMARY KEY"),
            "{plan}"
        );
    }
}

#[test]
fn the_timeline_reads_the_timeline_index() {
    let (_dir, store) = fresh_store();
    let ws = setup(&store, 1);
    let ids: Vec<CustomerId> = (1..=20)
        .map(|n| CustomerId::generate(BASE_MS + n, u128::from(n)))
        .collect();
    let q = TimelineQuery {
        limit: 50,
        before: Some((at(100), EventId::generate(BASE_MS, 1))),
        ..Default::default()
    };
    let one = plan_text(&store.explain_timeline(&ws, &ids[..1], &q).expect("explain"));
    assert!(one.contains("USING INDEX events_timeline"), "{one}");
    // The index orders by time only (the event id would double its size, and ingestion pays for
    // every byte): events of the same microsecond are put in id order as they are read, which
    // is a sort of each run of equal times, never of the whole timeline.
    assert!(
        !one.contains("TEMP B-TREE FOR ORDER BY"),
        "one profile's timeline needs no full sort:\n{one}"
    );
    assert!(
        one.contains("timestamp<?"),
        "the cursor bounds the index walk:\n{one}"
    );
    let three = plan_text(&store.explain_timeline(&ws, &ids[..3], &q).expect("explain"));
    assert_eq!(
        three.matches("USING INDEX events_timeline").count(),
        3,
        "one index walk per profile:\n{three}"
    );
    let many = plan_text(&store.explain_timeline(&ws, &ids, &q).expect("explain"));
    assert!(many.contains("USING INDEX events_timeline"), "{many}");
}

/// A customer of workspace `ws` for the group commit tests (ids unique per `n`).
fn plain_customer(ws: &WorkspaceId, n: u64) -> Customer {
    Customer::new(
        CustomerId::generate(BASE_MS + n, u128::from(n)),
        ws.clone(),
        at(0),
    )
}

#[test]
fn concurrent_writes_commit_together_and_fail_apart() {
    let (_dir, store) = fresh_store();
    let store = Arc::new(store);
    let ws = setup(&*store, 1);
    let threads = 8u64;
    let writes = 40u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, ws) = (Arc::clone(&store), ws.clone());
            std::thread::spawn(move || {
                let mut committed = Vec::new();
                for i in 0..writes {
                    let n = 1_000 * (t + 1) + i;
                    let customer = plain_customer(&ws, n);
                    let event = event(&ws, &customer.id, n);
                    // Every fifth write of every thread fails after writing: its rows must not
                    // survive, while the writes grouped with it commit.
                    let fail = i % 5 == 0;
                    let result = write(&*store, |tx| {
                        tx.insert_customer(&customer)?;
                        tx.insert_events(std::slice::from_ref(&event))?;
                        if fail {
                            return Err(StoreError::Conflict("on purpose".into()));
                        }
                        Ok(())
                    });
                    match (fail, result) {
                        (true, Err(StoreError::Conflict(_))) => {}
                        (false, Ok(())) => committed.push(customer.id.clone()),
                        (fail, other) => panic!("write {n} (failing: {fail}) returned {other:?}"),
                    }
                }
                committed
            })
        })
        .collect();
    let mut committed = Vec::new();
    for handle in handles {
        committed.extend(handle.join().expect("writer thread"));
    }
    let expected = (threads * writes * 4 / 5) as i64;
    assert_eq!(committed.len() as i64, expected);
    let (customers, events, found) = read(&*store, |tx| {
        Ok((
            tx.count_customers(&ws)?,
            tx.count_events(&ws)?,
            tx.get_customers(&ws, &committed)?.len(),
        ))
    })
    .expect("read");
    assert_eq!(
        (customers, events, found as i64),
        (expected, expected, expected)
    );
}

#[test]
fn a_write_that_breaks_a_foreign_key_fails_alone() {
    // The event's customer does not exist: the deferred foreign key fails the COMMIT. Writes that
    // shared the transaction must still commit, and the culprit must get the real error.
    let (_dir, store) = fresh_store();
    let store = Arc::new(store);
    let ws = setup(&*store, 1);
    let handles: Vec<_> = (0..6u64)
        .map(|t| {
            let (store, ws) = (Arc::clone(&store), ws.clone());
            std::thread::spawn(move || {
                let mut outcomes = Vec::new();
                for i in 0..20u64 {
                    let n = 1_000 * (t + 1) + i;
                    let orphan = t == 0 && i % 4 == 0;
                    let customer = plain_customer(&ws, n);
                    let owner = if orphan {
                        CustomerId::generate(1, u128::from(n))
                    } else {
                        customer.id.clone()
                    };
                    let event = event(&ws, &owner, n);
                    let result = write(&*store, |tx| {
                        if !orphan {
                            tx.insert_customer(&customer)?;
                        }
                        tx.insert_events(std::slice::from_ref(&event)).map(|_| ())
                    });
                    outcomes.push((orphan, result));
                }
                outcomes
            })
        })
        .collect();
    let mut good = 0;
    for handle in handles {
        for (orphan, result) in handle.join().expect("writer thread") {
            match (orphan, result) {
                (true, Err(StoreError::Backend(message))) => {
                    assert!(message.contains("FOREIGN KEY"), "{message}")
                }
                (false, Ok(())) => good += 1,
                (orphan, other) => panic!("orphan {orphan}: {other:?}"),
            }
        }
    }
    assert_eq!(good, 6 * 20 - 5);
    assert_eq!(
        read(&*store, |tx| tx.count_events(&ws)).expect("count"),
        good
    );
}

#[test]
fn a_write_that_panics_among_concurrent_writes_loses_only_itself() {
    let (_dir, store) = fresh_store();
    let store = Arc::new(store);
    let ws = setup(&*store, 1);
    let handles: Vec<_> = (0..6u64)
        .map(|t| {
            let (store, ws) = (Arc::clone(&store), ws.clone());
            std::thread::spawn(move || {
                let mut committed = 0;
                for i in 0..20u64 {
                    let n = 1_000 * (t + 1) + i;
                    let customer = plain_customer(&ws, n);
                    let panics = t == 0 && i % 5 == 0;
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        write(&*store, |tx| {
                            tx.insert_customer(&customer)?;
                            if panics {
                                panic!("a bug in a use case");
                            }
                            Ok(())
                        })
                    }));
                    match (panics, outcome) {
                        (true, Err(_)) => {}
                        (false, Ok(Ok(()))) => committed += 1,
                        (panics, Ok(other)) => panic!("panicking {panics}: {other:?}"),
                        (false, Err(_)) => panic!("a write that did not panic panicked"),
                    }
                }
                committed
            })
        })
        .collect();
    let committed: i64 = handles
        .into_iter()
        .map(|h| h.join().expect("writer thread"))
        .sum();
    assert_eq!(committed, 6 * 20 - 4);
    assert_eq!(
        read(&*store, |tx| tx.count_customers(&ws)).expect("count"),
        committed
    );
}

/// A store on its own file and a second one on the same file (another process, such as
/// `ciclo import` next to `ciclo serve`).
fn two_stores() -> (tempfile::TempDir, SqliteStore, SqliteStore) {
    let (dir, first) = fresh_store();
    let path = first.path().to_string();
    let second = SqliteStore::open(&path).expect("open the same file again");
    (dir, first, second)
}

fn stored_customer(store: &dyn Store, ws: &WorkspaceId, id: &CustomerId) -> Option<Customer> {
    read(store, |tx| tx.get_customer(ws, id)).expect("read a customer")
}

#[test]
fn the_writer_sees_what_another_connection_committed() {
    // The writer keeps rows it read and wrote from one transaction to the next; a commit by
    // another connection must make it forget them.
    let (_dir, first, second) = two_stores();
    let ws = setup(&first, 1);
    let mut ana = customer(&ws, 1, "Ana");
    write(&first, |tx| tx.insert_customer(&ana)).expect("insert");
    let known = write(&first, |tx| tx.get_customer(&ws, &ana.id)).expect("read in a write");
    assert_eq!(known.and_then(|c| c.name), Some("Ana".into()));

    // The other connection renames her and sees her later.
    let mut renamed = ana.clone();
    renamed.name = Some("Beatriz".into());
    renamed.last_seen_at = at(5_000);
    write(&second, |tx| tx.update_customer(&renamed)).expect("update from the second store");

    let seen = write(&first, |tx| tx.get_customer(&ws, &ana.id)).expect("read again");
    assert_eq!(
        seen.as_ref().and_then(|c| c.name.clone()),
        Some("Beatriz".into()),
        "a read inside a write must see the other connection's commit"
    );
    // Writing the old name back must write it, although the first store once read it so.
    ana.last_seen_at = at(5_000);
    write(&first, |tx| tx.update_customer(&ana)).expect("update from the first store");
    assert_eq!(
        stored_customer(&second, &ws, &ana.id).and_then(|c| c.name),
        Some("Ana".into())
    );
    // And the identities it knows: the second store attaches, deletes, attaches elsewhere.
    let key = IdentityKey::new(IdentityKind::Email, "ana@x.com");
    let find = |store: &SqliteStore| {
        write(store, |tx| {
            tx.find_identities(&ws, std::slice::from_ref(&key))
        })
        .expect("find")
    };
    assert!(find(&first).is_empty(), "absent at first (and known so)");
    let identity = Identity {
        key: key.clone(),
        customer_id: ana.id.clone(),
        source: "api".into(),
        created_at: at(1),
    };
    write(&second, |tx| tx.insert_identity(&ws, &identity)).expect("attach");
    assert_eq!(
        find(&first).len(),
        1,
        "the other connection's identity is seen"
    );
}

#[test]
fn what_a_failed_write_did_is_not_remembered() {
    let (_dir, store) = fresh_store();
    let ws = setup(&store, 1);
    let ana = customer(&ws, 1, "Ana");
    write(&store, |tx| tx.insert_customer(&ana)).expect("insert");
    // Changes the row, then fails: rolled back.
    let failed = write(&store, |tx| {
        let mut c = tx.get_customer(&ws, &ana.id)?.ok_or(StoreError::NotFound)?;
        c.name = Some("Rolled Back".into());
        c.stats.orders_count = 7;
        tx.update_customer(&c)?;
        tx.delete_customer(&ws, &ana.id)?;
        Err::<(), _>(StoreError::Conflict("on purpose".into()))
    });
    assert!(matches!(failed, Err(StoreError::Conflict(_))));
    let inside = write(&store, |tx| tx.get_customer(&ws, &ana.id)).expect("read in a write");
    assert_eq!(inside, stored_customer(&store, &ws, &ana.id));
    let inside = inside.expect("the delete was rolled back");
    assert_eq!(inside.name, Some("Ana".into()));
    assert_eq!(inside.stats.orders_count, 0);
    // Writing the rolled-back values again must write them.
    let mut again = inside.clone();
    again.name = Some("Rolled Back".into());
    write(&store, |tx| tx.update_customer(&again)).expect("update");
    assert_eq!(
        stored_customer(&store, &ws, &ana.id).and_then(|c| c.name),
        Some("Rolled Back".into())
    );
}

#[test]
fn rows_read_inside_writes_equal_rows_read_from_the_database() {
    // Times with nanoseconds are stored as microseconds: a row the writer remembers must come
    // back as the database has it, and a write of a time that differs below a microsecond is no
    // change.
    let (_dir, store) = fresh_store();
    let ws = setup(&store, 1);
    let mut ana = customer(&ws, 1, "Ana");
    let fine = DateTime::from_timestamp(1_767_225_600, 123_456_789).expect("time");
    ana.last_seen_at = fine;
    ana.updated_at = fine;
    write(&store, |tx| tx.insert_customer(&ana)).expect("insert");
    let inside = write(&store, |tx| tx.get_customer(&ws, &ana.id)).expect("read in a write");
    let outside = stored_customer(&store, &ws, &ana.id);
    assert_eq!(inside, outside);
    assert_eq!(
        outside.map(|c| c.last_seen_at.timestamp_subsec_nanos()),
        Some(123_456_000)
    );
    // Deleted in one write, gone in the next.
    write(&store, |tx| tx.delete_customer(&ws, &ana.id)).expect("delete");
    assert_eq!(
        write(&store, |tx| tx.get_customer(&ws, &ana.id)).expect("read in a write"),
        None
    );
    assert!(write(&store, |tx| tx.update_customer(&ana))
        .is_err_and(|e| matches!(e, StoreError::NotFound)));
}

#[test]
fn many_events_in_one_call_say_which_were_stored() {
    // A call that skips some events (message ids stored before, or repeated in the call) says
    // which, in order, over more events than any batching of rows would take at once.
    let (_dir, store) = fresh_store();
    let ws = setup(&store, 1);
    let ana = customer(&ws, 1, "Ana");
    write(&store, |tx| tx.insert_customer(&ana)).expect("insert");
    let first: Vec<Event> = (0..50).map(|n| event(&ws, &ana.id, n)).collect();
    assert_eq!(
        write(&store, |tx| tx.insert_events(&first)).expect("insert events"),
        vec![true; 50]
    );
    // 100 more: every third repeats a stored message id, and #70 repeats #65 of this call.
    let second: Vec<Event> = (0..100u64)
        .map(|i| {
            let mut e = event(&ws, &ana.id, 1_000 + i);
            if i % 3 == 0 {
                e.message_id = format!("msg-{}", i % 50);
            }
            if i == 70 {
                e.message_id = "again".into();
            }
            if i == 65 {
                e.message_id = "again".into();
            }
            e
        })
        .collect();
    // #65 is stored (not a multiple of 3); #70 repeats it, so it is not.
    let expected: Vec<bool> = (0..100u64).map(|i| i % 3 != 0 && i != 70).collect();
    assert_eq!(
        write(&store, |tx| tx.insert_events(&second)).expect("insert events"),
        expected
    );
    let stored = expected.iter().filter(|s| **s).count() as i64;
    assert_eq!(
        read(&store, |tx| tx.count_events(&ws)).expect("count"),
        50 + stored
    );
}

#[test]
fn concurrent_read_modify_writes_of_one_profile_add_up() {
    // Writes grouped in one transaction read what the earlier ones wrote; those that fail leave
    // nothing behind, not even in what the writer remembers of the row.
    let (_dir, store) = fresh_store();
    let store = Arc::new(store);
    let ws = setup(&*store, 1);
    let ana = customer(&ws, 1, "Ana");
    write(&*store, |tx| tx.insert_customer(&ana)).expect("insert");
    let handles: Vec<_> = (0..6u64)
        .map(|t| {
            let (store, ws, id) = (Arc::clone(&store), ws.clone(), ana.id.clone());
            std::thread::spawn(move || {
                let mut added = 0;
                for i in 0..30u64 {
                    let fail = (t + i) % 4 == 0;
                    let result = write(&*store, |tx| {
                        let mut c = tx.get_customer(&ws, &id)?.ok_or(StoreError::NotFound)?;
                        c.stats.orders_count += 1;
                        c.name = Some(format!("writer {t}"));
                        tx.update_customer(&c)?;
                        // Toggles an identifier: what a write sees must be what is stored.
                        let key = IdentityKey::new(IdentityKind::Email, "ana@x.com");
                        if tx
                            .find_identities(&ws, std::slice::from_ref(&key))?
                            .is_empty()
                        {
                            let identity = Identity {
                                key,
                                customer_id: id.clone(),
                                source: "api".into(),
                                created_at: at(1),
                            };
                            if !tx.insert_identity(&ws, &identity)? {
                                return Err(StoreError::Backend("saw a stale absence".into()));
                            }
                        } else {
                            tx.delete_identity(&ws, &key)?;
                        }
                        if fail {
                            return Err(StoreError::Conflict("on purpose".into()));
                        }
                        Ok(())
                    });
                    match (fail, result) {
                        (true, Err(StoreError::Conflict(_))) => {}
                        (false, Ok(())) => added += 1,
                        (fail, other) => panic!("failing {fail}: {other:?}"),
                    }
                }
                added
            })
        })
        .collect();
    let added: i64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    let inside = write(&*store, |tx| tx.get_customer(&ws, &ana.id)).expect("read in a write");
    assert_eq!(inside.as_ref().map(|c| c.stats.orders_count), Some(added));
    let key = IdentityKey::new(IdentityKind::Email, "ana@x.com");
    let attached = read(&*store, |tx| {
        tx.find_identities(&ws, std::slice::from_ref(&key))
    });
    assert_eq!(attached.expect("find").len() as i64, added % 2);
    assert_eq!(inside, stored_customer(&*store, &ws, &ana.id));
}

/// The stage and segment filters at a volume where the plan matters: a stage most profiles are
/// in walks the sort's index (the Newest sort: the stage index, in id order), a stage few are in
/// starts from its matches, a segment likewise; every plan returns the same rows.
#[test]
fn stage_and_segment_filters_use_their_indexes_and_agree() {
    let (_dir, store) = fresh_store();
    let ws = setup(&store, 1);
    let customers: Vec<Customer> = (1..=12_000u64)
        .map(|n| customer(&ws, n, &format!("Cliente {:05}", (n * 7_919) % 12_000)))
        .collect();
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
        customers.iter().try_for_each(|c| tx.insert_customer(c))?;
        let stages: Vec<(CustomerId, Stage, Timestamp)> = customers
            .iter()
            .zip(1u64..)
            .map(|(c, n)| (c.id.clone(), stage_of(n), at(0)))
            .collect();
        tx.set_stages(&ws, &stages)?;
        tx.insert_segment(&segment)?;
        let members: Vec<CustomerId> = customers
            .iter()
            .zip(1u64..)
            .filter(|(_, n)| n.is_multiple_of(5))
            .map(|(c, _)| c.id.clone())
            .collect();
        tx.add_segment_members(&ws, &segment.id, &members, at(0))
            .map(drop)
    })
    .expect("fixture");
    let n_of: std::collections::HashMap<CustomerId, u64> = customers
        .iter()
        .zip(1u64..)
        .map(|(c, n)| (c.id.clone(), n))
        .collect();

    for sort in SORTS {
        let many = CustomerQuery {
            stage: Some(Stage::Loyalty),
            sort,
            limit: 500,
            ..Default::default()
        };
        let plan = plan_text(&store.explain_list_customers(&ws, &many).expect("explain"));
        assert!(
            !plan.contains("TEMP B-TREE"),
            "a stage most are in is walked in the sort's order ({sort:?}):\n{plan}"
        );
        if sort == CustomerSort::Newest {
            assert!(
                plan.contains("customer_computed_by_stage"),
                "Newest walks the stage index by id:\n{plan}"
            );
        } else {
            assert!(
                plan.contains("USING INDEX customers_by_"),
                "{sort:?}:\n{plan}"
            );
        }
        assert_eq!(
            list_all(&store, &ws, &many),
            expected(&customers, sort, |c| stage_of(n_of[&c.id])
                == Stage::Loyalty),
            "stage loyalty, {sort:?}"
        );

        let few = CustomerQuery {
            stage: Some(Stage::Lapsed),
            sort,
            limit: 300,
            ..Default::default()
        };
        let plan = plan_text(&store.explain_list_customers(&ws, &few).expect("explain"));
        assert!(
            plan.contains("customer_computed_by_stage (workspace_id=? AND stage=?)"),
            "a stage few are in starts from its index ({sort:?}):\n{plan}"
        );
        assert_eq!(
            list_all(&store, &ws, &few),
            expected(&customers, sort, |c| stage_of(n_of[&c.id]) == Stage::Lapsed),
            "stage lapsed, {sort:?}"
        );

        let members = CustomerQuery {
            segment: Some(segment.id.clone()),
            tag: None,
            sort,
            limit: 400,
            ..Default::default()
        };
        let plan = plan_text(
            &store
                .explain_list_customers(&ws, &members)
                .expect("explain"),
        );
        assert!(
            plan.contains("SEARCH f USING PRIMARY KEY (workspace_id=? AND segment_id=?"),
            "a segment starts from its members ({sort:?}):\n{plan}"
        );
        if sort == CustomerSort::Newest {
            assert!(!plan.contains("TEMP B-TREE"), "in id order:\n{plan}");
        }
        assert_eq!(
            list_all(&store, &ws, &members),
            expected(&customers, sort, |c| n_of[&c.id].is_multiple_of(5)),
            "segment, {sort:?}"
        );

        let both = CustomerQuery {
            segment: Some(segment.id.clone()),
            stage: Some(Stage::Lapsed),
            sort,
            limit: 100,
            ..Default::default()
        };
        assert_eq!(
            list_all(&store, &ws, &both),
            expected(&customers, sort, |c| n_of[&c.id].is_multiple_of(10)),
            "segment and stage, {sort:?}"
        );
    }
}
