//! The columnar evaluator against the snapshot evaluator: random workspaces (profiles with
//! every kind of attribute, merged-away profiles, events with properties, another segment's
//! members) and definitions that use every test; both must find the same members.

use super::super::*;
use super::*;
use crate::customer::{Customer, OrderStats};
use crate::ids::{CustomerId, WorkspaceId};
use crate::Timestamp;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const TZ: Tz = chrono_tz::America::Sao_Paulo;

/// xorshift64*: deterministic and good enough to spread test data.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn now() -> Timestamp {
    // Not a whole second, as a real clock is not.
    Utc.with_ymd_and_hms(2026, 5, 10, 15, 0, 0).unwrap() + Duration::nanoseconds(123_456_789)
}

/// A time within about a year and a half around `now`, to the microsecond (as stored).
fn some_time(random: &mut Random) -> Timestamp {
    let seconds = random.below(600 * 86_400) as i64 - 500 * 86_400;
    let micros = random.below(1_000_000) as i64;
    let t = now() + Duration::seconds(seconds);
    Utc.timestamp_micros(t.timestamp() * 1_000_000 + micros)
        .unwrap()
}

fn customer(random: &mut Random, n: u64) -> Customer {
    let created = some_time(random);
    let mut c = Customer::new(
        CustomerId::generate(1_700_000_000_000 + n, n as u128),
        WorkspaceId::generate(1, 1),
        created,
    );
    if random.chance(80) {
        c.city = Some(
            random
                .pick(&[
                    "São Paulo",
                    "sao paulo",
                    "Recife",
                    "RECIFE",
                    "Salvador",
                    " ",
                ])
                .to_string(),
        );
    }
    if random.chance(50) {
        c.name = Some(
            random
                .pick(&["Ana Souza", "João", "Maria da Silva"])
                .to_string(),
        );
    }
    c.tags = match random.below(4) {
        0 => vec![],
        1 => vec!["vip".into()],
        2 => vec!["VIP".into(), "newsletter".into()],
        _ => vec!["newsletter".into()],
    };
    if random.chance(70) {
        c.birthday = NaiveDate::from_ymd_opt(
            1960 + random.below(50) as i32,
            1 + random.below(12) as u32,
            1 + random.below(28) as u32,
        );
    }
    c.last_seen_at = some_time(random);
    let mut traits = Map::new();
    if random.chance(60) {
        traits.insert(
            "plan".into(),
            json!(random.pick(&["gold", "Gold", "silver"])),
        );
    }
    match random.below(4) {
        0 => {
            traits.insert("age".into(), json!(random.below(80)));
        }
        1 => {
            traits.insert("age".into(), json!(random.below(80).to_string()));
        }
        2 => {
            traits.insert("age".into(), Value::Null);
        }
        _ => {}
    }
    if random.chance(40) {
        traits.insert("sizes".into(), json!([38 + random.below(4), 40]));
    }
    if random.chance(30) {
        traits.insert(
            "trial_ends_at".into(),
            json!(some_time(random).date_naive().to_string()),
        );
    }
    if random.chance(20) {
        traits.insert("address".into(), json!({"city": "Recife"}));
    }
    c.traits = traits;
    let orders = random.below(5) as i64;
    if orders > 0 {
        let first = some_time(random);
        let last = first.max(some_time(random));
        c.stats = OrderStats {
            orders_count: orders,
            total_spent_minor: random.below(200_000) as i64,
            first_order_at: Some(first),
            last_order_at: Some(last),
        };
    }
    c
}

struct Event {
    row: u32,
    name: &'static str,
    at: Timestamp,
    properties: Map<String, Value>,
}

fn event(random: &mut Random, rows: u32) -> Event {
    let name = random.pick(&["Product Viewed", "Order Completed", "Added to Cart"]);
    let mut properties = Map::new();
    if random.chance(90) {
        properties.insert(
            "category".into(),
            json!(random.pick(&["Calçados", "calcados", "Bolsas", "Roupas"])),
        );
    }
    if random.chance(70) {
        properties.insert("price".into(), json!(random.below(500)));
    }
    if random.chance(20) {
        properties.insert("product".into(), json!({"brand": "Acme"}));
    }
    Event {
        row: random.below(u64::from(rows)) as u32,
        name,
        at: some_time(random),
        properties,
    }
}

const DEFINITIONS: &[&str] = &[
    r#"city = "Sao Paulo""#,
    r#"city != "recife""#,
    r#"city in ("Recife", "Salvador") or city is not set"#,
    r#"city contains "paulo""#,
    r#"city starts with "rec""#,
    r#"name is set and not (tags contains "vip")"#,
    r#"tags contains "vip""#,
    r#"tags in ("newsletter")"#,
    r#"orders_count >= 2 and total_spent > 300"#,
    r#"orders_count = 0"#,
    r#"total_spent between 100 and 1000"#,
    r#"average_order_value < 250"#,
    r#"last_order_at within 30 days"#,
    r#"last_order_at more than 90 days ago"#,
    r#"first_order_at before 2026-01-01"#,
    r#"first_order_at after 2025-06-30"#,
    r#"last_seen_at between 2025-12-01 and 2026-03-31"#,
    r#"created_at in the next 30 days"#,
    r#"last_seen_at = "2026-05-10""#,
    r#"birthday this month"#,
    r#"birthday today or birthday in the next 10 days"#,
    r#"birthday before 1980-01-01"#,
    r#"traits.plan = "gold""#,
    r#"traits.age > 30"#,
    r#"traits.age is not set"#,
    r#"traits.sizes contains 40 and traits.sizes = 39"#,
    r#"traits.trial_ends_at within 60 days"#,
    r#"traits.address.city = "recife""#,
    r#"lifecycle is retention or lifecycle = "loyalty""#,
    r#"rfm_group in ("champions", "loyal") and p_alive > 0.5"#,
    r#"in segment "vip""#,
    r#"not in segment "vip" and city = "Recife""#,
    r#"performed "Product Viewed""#,
    r#"performed "Product Viewed" at least 2 times in the last 30 days"#,
    r#"performed "Product Viewed" at most 1 times in the last 90 days"#,
    r#"has not performed "Order Completed" in the last 60 days"#,
    r#"performed "Added to Cart" in the last 30 days where category = "Calcados" and has not performed "Order Completed" in the last 30 days"#,
    r#"performed "Product Viewed" exactly 1 times where price >= 100 and price < 300"#,
    r#"performed "Product Viewed" where product.brand = "acme""#,
    r#"performed "Added to Cart" between 2026-01-01 and 2026-03-31 where category in ("Bolsas", "Roupas")"#,
    r#"(performed "Order Completed" at least 2 times or orders_count >= 3) and not (city = "Salvador" or tags contains "vip")"#,
    r#"performed "Never Seen" or traits.plan = "silver""#,
];

struct Workspace {
    snapshots: Vec<CustomerSnapshot>,
    alive: Bits,
    parent: Vec<u32>,
    events: Vec<Event>,
    vip: Bits,
}

fn workspace(seed: u64, rows: u32, events: usize) -> Workspace {
    let mut random = Random(seed);
    let snapshots: Vec<CustomerSnapshot> = (0..rows)
        .map(|n| {
            let c = customer(&mut random, u64::from(n));
            let mut s = CustomerSnapshot::new(c, TZ);
            if random.chance(80) {
                s = s.with_computed(
                    "lifecycle_stage",
                    json!(random.pick(&["reach", "retention", "loyalty", "lapsed"])),
                );
            }
            if random.chance(70) {
                s = s
                    .with_computed(
                        "rfm_group",
                        json!(random.pick(&["champions", "loyal", "hibernating"])),
                    )
                    .with_computed("p_alive", json!(random.below(100) as f64 / 100.0));
            }
            s
        })
        .collect();
    // About one profile in ten was merged into an earlier one.
    let mut alive = Bits::full(rows as usize);
    let mut parent: Vec<u32> = (0..rows).collect();
    for row in 1..rows {
        if random.chance(10) {
            let into = random.below(u64::from(row)) as u32;
            parent[row as usize] = parent[into as usize];
            alive.set(row as usize, false);
        }
    }
    let events = (0..events).map(|_| event(&mut random, rows)).collect();
    let mut vip = Bits::empty(rows as usize);
    for row in 0..rows as usize {
        if alive.get(row) && random.chance(30) {
            vip.set(row, true);
        }
    }
    Workspace {
        snapshots,
        alive,
        parent,
        events,
        vip,
    }
}

/// Members by the snapshot evaluator, with event counts counted by brute force.
fn by_snapshots(w: &Workspace, expr: &Expr) -> Vec<usize> {
    let requirements = event_requirements(expr);
    let mut members = Vec::new();
    for (row, snapshot) in w.snapshots.iter().enumerate() {
        if !w.alive.get(row) {
            continue;
        }
        let mut snapshot = snapshot.clone();
        for r in &requirements {
            let bounds = r.window.bounds(now(), TZ);
            let n = w
                .events
                .iter()
                .filter(|e| {
                    w.parent[e.row as usize] as usize == row
                        && e.name == r.event
                        && bounds.contains(e.at)
                        && r.filters
                            .iter()
                            .all(|f| f.matches(&e.properties, now(), TZ))
                })
                .count();
            snapshot.event_counts.set(r.clone(), n as u64);
        }
        let vip = w.vip.get(row);
        if matches(expr, &snapshot, now(), &|reference| {
            reference == "vip" && vip
        }) {
            members.push(row);
        }
    }
    members
}

/// Columns and event columns for what `expr` reads, loaded the way a store-backed index does.
fn load(
    w: &Workspace,
    expr: &Expr,
    columns: &mut HashMap<String, Column>,
    event_columns: &mut HashMap<String, EventColumn>,
) {
    let segments = |_: &str| None;
    let input = ColumnarInput {
        len: w.snapshots.len(),
        alive: &w.alive,
        parent: &w.parent,
        columns,
        events: event_columns,
        segments: &segments,
        now: now(),
        tz: TZ,
    };
    let missing = input.missing(expr);
    for name in missing.attributes {
        let mut column = Column::for_attribute(&name);
        for snapshot in &w.snapshots {
            column.push(attribute_cell(&name, snapshot));
        }
        columns.insert(name, column);
    }
    for (name, mut paths) in missing.events {
        if let Some(old) = event_columns.get(&name) {
            paths.extend(old.paths().map(str::to_string));
        }
        paths.sort();
        paths.dedup();
        let mut builder = EventColumnBuilder::new(paths);
        for e in w.events.iter().filter(|e| e.name == name) {
            builder.push(e.row, e.at, &e.properties);
        }
        event_columns.insert(name, builder.finish());
    }
}

fn by_columns(
    w: &Workspace,
    expr: &Expr,
    columns: &HashMap<String, Column>,
    event_columns: &HashMap<String, EventColumn>,
) -> Vec<usize> {
    let vip = &w.vip;
    let segments = move |reference: &str| (reference == "vip").then_some(vip);
    let input = ColumnarInput {
        len: w.snapshots.len(),
        alive: &w.alive,
        parent: &w.parent,
        columns,
        events: event_columns,
        segments: &segments,
        now: now(),
        tz: TZ,
    };
    assert!(input.missing(expr).is_empty());
    input.evaluate(expr).iter().collect()
}

#[test]
fn columns_find_the_members_snapshots_find() {
    for seed in [7, 1_234_567, 99_991] {
        let w = workspace(seed, 400, 3_000);
        let mut columns = HashMap::new();
        let mut event_columns = HashMap::new();
        for text in DEFINITIONS {
            let expr = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            load(&w, &expr, &mut columns, &mut event_columns);
            let expected = by_snapshots(&w, &expr);
            let found = by_columns(&w, &expr, &columns, &event_columns);
            assert_eq!(found, expected, "seed {seed}: {text}");
        }
        // The definitions are not trivial on this data: most select some but not all.
        let selective = DEFINITIONS
            .iter()
            .filter(|text| {
                let n = by_snapshots(&w, &parse(text).unwrap()).len();
                n > 0 && n < w.alive.count()
            })
            .count();
        assert!(selective >= DEFINITIONS.len() - 4, "{selective}");
    }
}

#[test]
fn replaced_profiles_count_their_new_events_only() {
    let mut w = workspace(42, 200, 2_000);
    let mut columns = HashMap::new();
    let mut event_columns = HashMap::new();
    let texts = [
        r#"performed "Product Viewed" at least 2 times in the last 30 days"#,
        r#"performed "Added to Cart" where category = "Calçados""#,
    ];
    for text in texts {
        load(&w, &parse(text).unwrap(), &mut columns, &mut event_columns);
    }
    // New events for some profiles (one of them merged away), and all events of another
    // removed (a correction); the columns are told per profile.
    let mut random = Random(5);
    let mut changed: Vec<u32> = vec![3, 4, 5, 17];
    changed.extend((0..200).filter(|&r| !w.alive.get(r as usize)).take(2));
    for &row in &changed {
        for _ in 0..4 {
            let mut e = event(&mut random, 200);
            e.row = row;
            e.at = now() - Duration::days(random.below(20) as i64);
            w.events.push(e);
        }
    }
    w.events.retain(|e| e.row != 9);
    changed.push(9);
    for &row in &changed {
        for (name, column) in event_columns.iter_mut() {
            let events = w
                .events
                .iter()
                .filter(|e| e.row == row && e.name == name)
                .map(|e| (e.at, e.properties.clone()))
                .collect();
            column.replace_profile(row, events);
        }
    }
    for text in texts {
        let expr = parse(text).unwrap();
        assert_eq!(
            by_columns(&w, &expr, &columns, &event_columns),
            by_snapshots(&w, &expr),
            "{text}"
        );
    }
    assert!(event_columns["Product Viewed"].replaced_events() > 0);
}

#[test]
fn bits_set_operations() {
    let mut a = Bits::empty(130);
    for row in [0, 63, 64, 129] {
        a.set(row, true);
    }
    assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 63, 64, 129]);
    assert_eq!(a.count(), 4);
    let full = Bits::full(130);
    assert_eq!(full.count(), 130);
    let mut b = a.clone();
    b.complement_within(&full);
    assert_eq!(b.count(), 126);
    assert!(!b.get(64) && b.get(65));
    b.and(&a);
    assert_eq!(b.count(), 0);
    b.or(&a);
    assert_eq!(b, a);
    a.set(200, true);
    assert_eq!(a.len(), 201);
    assert!(a.get(200) && !a.get(199));
}
