//! Analytics over small data sets whose answers are worked out by hand in the comments: RFM
//! groups, cohort retention and revenue, the base metrics (repeat, churn, AOV, LTV), the
//! lifecycle funnel, orders of merged profiles, and the CLV fit (finite on generated orders,
//! "thin" on three customers). The clock stands at 2026-06-01 12:00 UTC; the workspace is in
//! São Paulo (UTC−3), and every order is at 12:00 UTC so its local day is the UTC day.

use crate::{harness, postgres_harness, t, Harness};
use ciclo_core::analytics::{RfmFilter, CHURN_AFTER_DAYS};
use ciclo_core::CoreError;
use ciclo_domain::analytics::{DataSufficiency, Month, RfmSegment, ThinReason};
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::Role;
use serde_json::{json, Value};

fn order(user: &str, id: &str, reais: f64, day: &str) -> Value {
    json!({"type": "track", "event": "Order Completed", "userId": user,
           "messageId": format!("m-{id}"), "timestamp": format!("{day}T12:00:00Z"),
           "properties": {"order_id": id, "total": reais, "currency": "BRL"}})
}

fn known(user: &str, day: &str) -> Value {
    json!({"type": "identify", "userId": user, "messageId": format!("i-{user}"),
           "timestamp": format!("{day}T12:00:00Z"), "traits": {"name": format!("Cliente {user}")}})
}

fn load(h: &Harness, messages: Vec<Value>) {
    for chunk in messages.chunks(500) {
        let report = h.ingest(chunk.to_vec());
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    }
}

/// Five buyers, each a step up from the last on every measure, and one known non-buyer:
///
/// | user | orders | total  | last order  | days ago | R F M | FM | group          |
/// |------|--------|--------|-------------|----------|-------|----|----------------|
/// | r1   | 1      | R$ 10  | 2025-08-05  | 300      | 1 1 1 | 1  | Lost           |
/// | r2   | 2      | R$ 20  | 2025-11-13  | 200      | 2 2 2 | 2  | Hibernating    |
/// | r3   | 3      | R$ 30  | 2026-02-21  | 100      | 3 3 3 | 3  | Need attention |
/// | r4   | 4      | R$ 40  | 2026-05-12  | 20       | 4 4 4 | 4  | Loyal          |
/// | r5   | 5      | R$ 50  | 2026-05-30  | 2        | 5 5 5 | 5  | Champions      |
fn rfm_data() -> Vec<Value> {
    let mut messages = vec![known("r0", "2026-01-01")];
    let last_days = [
        "2025-08-05",
        "2025-11-13",
        "2026-02-21",
        "2026-05-12",
        "2026-05-30",
    ];
    for (i, last) in last_days.iter().enumerate() {
        let user = format!("r{}", i + 1);
        messages.push(known(&user, "2025-01-01"));
        let last = chrono::NaiveDate::parse_from_str(last, "%Y-%m-%d").unwrap();
        for k in 0..=i {
            // Orders of R$ 10 a week apart, ending on the last day.
            let day = last - chrono::Duration::days(7 * k as i64);
            messages.push(order(&user, &format!("{user}-{k}"), 10.0, &day.to_string()));
        }
    }
    messages
}

#[test]
fn rfm_scores_quintiles_and_names_the_groups() {
    let h = harness();
    load(&h, rfm_data());
    let report = h.app.rfm(&h.actor).unwrap();
    assert_eq!(report.customers, 5);
    assert_eq!(report.customers_without_orders, 1);
    assert_eq!(report.grid.len(), 25);
    // The grid reads FM 5 down to FM 1, R 1 to R 5: the diagonal holds one customer each.
    let at = |r: u8, fm: u8| {
        report
            .grid
            .iter()
            .find(|c| c.recency == r && c.fm == fm)
            .unwrap()
    };
    for score in 1..=5u8 {
        assert_eq!(at(score, score).customers, 1, "cell R{score} FM{score}");
    }
    assert_eq!(report.grid.iter().map(|c| c.customers).sum::<usize>(), 5);
    assert_eq!((report.grid[0].recency, report.grid[0].fm), (1, 5));
    assert_eq!(report.grid[0].segment, RfmSegment::CantLoseThem);
    let count = |segment: RfmSegment| {
        report
            .groups
            .iter()
            .find(|g| g.segment == segment)
            .unwrap()
            .customers
    };
    for segment in [
        RfmSegment::Lost,
        RfmSegment::Hibernating,
        RfmSegment::NeedAttention,
        RfmSegment::Loyal,
        RfmSegment::Champions,
    ] {
        assert_eq!(count(segment), 1, "{segment:?}");
    }
    assert_eq!(count(RfmSegment::AtRisk), 0);
    assert_eq!(report.groups.len(), RfmSegment::ALL.len());
    let champions = report
        .groups
        .iter()
        .find(|g| g.segment == RfmSegment::Champions)
        .unwrap();
    assert_eq!(champions.revenue_minor, 5_000);
    assert_eq!(champions.average_orders, Some(5.0));
    assert_eq!(champions.average_days_since_last_order, Some(2.0));
    assert_eq!(champions.share, Some(0.2));

    // The customers of a group, and of a cell, paged biggest spender first.
    let loyal = h
        .app
        .rfm_customers(
            &h.actor,
            &RfmFilter {
                segment: Some(RfmSegment::Loyal),
                ..RfmFilter::default()
            },
            0,
            10,
        )
        .unwrap();
    assert_eq!(loyal.total, 1);
    let row = &loyal.items[0];
    assert_eq!(row.customer.name.as_deref(), Some("Cliente r4"));
    assert_eq!(
        (row.recency, row.frequency, row.monetary, row.fm),
        (4, 4, 4, 4)
    );
    assert_eq!(
        (row.orders, row.total_spent_minor, row.days_since_last_order),
        (4, 4_000, 20)
    );
    let everyone = h
        .app
        .rfm_customers(&h.actor, &RfmFilter::default(), 0, 2)
        .unwrap();
    assert_eq!(everyone.total, 5);
    assert_eq!(everyone.next_offset, Some(2));
    assert_eq!(
        everyone.items[0].customer.name.as_deref(),
        Some("Cliente r5")
    );
    let last = h
        .app
        .rfm_customers(&h.actor, &RfmFilter::default(), 4, 2)
        .unwrap();
    assert_eq!((last.items.len(), last.next_offset), (1, None));
    let cell = h
        .app
        .rfm_customers(
            &h.actor,
            &RfmFilter {
                recency: Some(1),
                fm: Some(1),
                ..RfmFilter::default()
            },
            0,
            10,
        )
        .unwrap();
    assert_eq!(cell.items[0].segment, RfmSegment::Lost);
    assert!(matches!(
        h.app.rfm_customers(&h.actor, &RfmFilter::default(), 0, 0),
        Err(CoreError::Invalid(_))
    ));
}

/// Four buyers and one known non-buyer (e0, known since 2026-02-01):
///
/// | user | orders (day: R$)                               |
/// |------|------------------------------------------------|
/// | a    | 2026-01-10: 100, 2026-02-10: 50, 2026-04-10: 25 |
/// | b    | 2026-01-20: 80                                  |
/// | c    | 2026-02-05: 10, 2026-03-05: 10                  |
/// | d    | 2026-05-15: 40                                  |
fn shop_data() -> Vec<Value> {
    vec![
        known("e0", "2026-02-01"),
        order("a", "a1", 100.0, "2026-01-10"),
        order("a", "a2", 50.0, "2026-02-10"),
        order("a", "a3", 25.0, "2026-04-10"),
        order("b", "b1", 80.0, "2026-01-20"),
        order("c", "c1", 10.0, "2026-02-05"),
        order("c", "c2", 10.0, "2026-03-05"),
        order("d", "d1", 40.0, "2026-05-15"),
    ]
}

#[test]
fn cohorts_follow_first_order_months_with_retention_and_revenue() {
    let h = harness();
    load(&h, shop_data());
    let cohorts = h.app.cohorts(&h.actor, 6).unwrap();
    let months: Vec<Month> = cohorts.iter().map(|c| c.month).collect();
    assert_eq!(
        months,
        vec![
            Month::new(2026, 1).unwrap(),
            Month::new(2026, 2).unwrap(),
            Month::new(2026, 5).unwrap()
        ]
    );
    // January: a and b. a orders again in February (offset 1) and April (offset 3).
    let january = &cohorts[0];
    assert_eq!(january.size, 2);
    assert_eq!(january.active, vec![2, 1, 0, 1, 0, 0]);
    assert_eq!(january.retention, vec![1.0, 0.5, 0.0, 0.5, 0.0, 0.0]);
    assert_eq!(january.revenue_minor, vec![18_000, 5_000, 0, 2_500, 0, 0]);
    // February: c, again in March.
    assert_eq!(cohorts[1].active, vec![1, 1, 0, 0, 0]);
    assert_eq!(cohorts[1].revenue_minor, vec![1_000, 1_000, 0, 0, 0]);
    // May: d, nothing since; the row stops at the current month (June).
    assert_eq!(cohorts[2].retention, vec![1.0, 0.0]);
    // Two months back shows May and June only.
    assert_eq!(h.app.cohorts(&h.actor, 2).unwrap().len(), 1);
    assert!(matches!(
        h.app.cohorts(&h.actor, 0),
        Err(CoreError::Invalid(_))
    ));
}

#[test]
fn metrics_now_and_month_by_month() {
    let h = harness();
    load(&h, shop_data());
    let metrics = h.app.metrics(&h.actor).unwrap();
    assert_eq!(metrics.churn_after_days, CHURN_AFTER_DAYS);
    let now = &metrics.current;
    // 4 buyers (plus e0), a and c bought again; 7 orders worth R$ 315.
    assert_eq!((now.customers, now.buyers, now.repeat_buyers), (5, 4, 2));
    assert_eq!((now.orders, now.revenue_minor), (7, 31_500));
    assert_eq!(now.repeat_rate, Some(0.5));
    assert_eq!(now.average_order_value_minor, Some(4_500.0));
    assert_eq!(now.purchase_frequency, Some(1.75));
    assert_eq!(now.historic_ltv_minor, Some(7_875.0));
    // Only b's last order (20 January, 132 days ago) is more than 120 days old.
    assert_eq!(now.churn_rate, Some(0.25));

    assert_eq!(metrics.months.len(), 12);
    assert_eq!(metrics.months[0].month, "2025-07");
    let month = |m: &str| metrics.months.iter().find(|x| x.month == m).unwrap();
    let january = month("2026-01");
    assert_eq!((january.orders, january.revenue_minor), (2, 18_000));
    assert_eq!((january.active_buyers, january.new_buyers), (2, 2));
    assert_eq!(january.average_order_value_minor, Some(9_000.0));
    assert_eq!(january.base.repeat_rate, Some(0.0));
    let february = month("2026-02");
    assert_eq!((february.active_buyers, february.new_buyers), (2, 1));
    assert_eq!(february.base.repeat_rate, Some(1.0 / 3.0));
    // b is 100 days quiet at the end of April, 131 days at the end of May.
    assert_eq!(month("2026-04").base.churn_rate, Some(0.0));
    assert_eq!(month("2026-05").base.churn_rate, Some(0.25));
    assert_eq!(month("2025-12").base.buyers, 0);
    assert_eq!(month("2025-12").base.repeat_rate, None);
    assert_eq!(month("2026-06").at, t("2026-06-01T12:00:00Z"));
}

#[test]
fn the_funnel_counts_stages_at_both_ends_and_conversion_along_the_cycle() {
    let h = harness();
    load(&h, shop_data());
    let from = t("2026-03-01T12:00:00Z");
    let report = h
        .app
        .funnel(&h.actor, from, t("2026-07-01T00:00:00Z"))
        .unwrap();
    assert_eq!(
        report.to,
        t("2026-06-01T12:00:00Z"),
        "the end is capped at now"
    );
    // At the start: e0 reach; c acquisition (first order 24 days before); b nurture (40 days);
    // a retention (2 orders); d unknown yet. At the end: d acquisition, b at risk (132 days),
    // a and c retention.
    assert_eq!((report.customers_at_start, report.customers_at_end), (4, 5));
    let stage = |s: Stage| {
        let c = report.stages.iter().find(|c| c.stage == s).unwrap();
        (c.at_start, c.at_end)
    };
    assert_eq!(stage(Stage::Reach), (1, 1));
    assert_eq!(stage(Stage::Acquisition), (1, 1));
    assert_eq!(stage(Stage::Nurture), (1, 0));
    assert_eq!(stage(Stage::Retention), (1, 2));
    assert_eq!(stage(Stage::Loyalty), (0, 0));
    assert_eq!(stage(Stage::AtRisk), (0, 1));
    // Furthest stage at the end: e0 reach, d acquisition, b nurture, a and c retention.
    let steps: Vec<(Stage, usize, usize, Option<f64>)> = report
        .steps
        .iter()
        .map(|s| (s.from, s.reached_from, s.reached_to, s.conversion))
        .collect();
    assert_eq!(
        steps,
        vec![
            (Stage::Reach, 5, 4, Some(0.8)),
            (Stage::Acquisition, 4, 3, Some(0.75)),
            (Stage::Nurture, 3, 2, Some(2.0 / 3.0)),
            (Stage::Retention, 2, 0, Some(0.0)),
        ]
    );
    // During the period: of e0 and d (new), d bought; c went from acquisition to retention;
    // b stayed nurtured; a stayed in retention.
    let period: Vec<(usize, usize)> = report
        .steps
        .iter()
        .map(|s| (s.period_base, s.period_converted))
        .collect();
    assert_eq!(period, vec![(2, 1), (1, 1), (1, 0), (1, 0)]);
    assert!(matches!(
        h.app.funnel(
            &h.actor,
            t("2026-06-02T00:00:00Z"),
            t("2026-06-03T00:00:00Z")
        ),
        Err(CoreError::Invalid(_))
    ));
}

#[test]
fn orders_of_merged_profiles_count_for_the_survivor() {
    let h = harness();
    load(
        &h,
        vec![
            json!({"type": "track", "event": "Order Completed", "anonymousId": "anon-f",
                   "messageId": "m-f1", "timestamp": "2026-05-01T12:00:00Z",
                   "properties": {"order_id": "f1", "total": 30.0}}),
            order("f", "f2", 70.0, "2026-05-20"),
            json!({"type": "identify", "userId": "f", "anonymousId": "anon-f", "messageId": "i-f",
                   "timestamp": "2026-05-21T12:00:00Z"}),
        ],
    );
    let rfm = h.app.rfm(&h.actor).unwrap();
    assert_eq!(rfm.customers, 1, "one person after the merge");
    let metrics = h.app.metrics(&h.actor).unwrap();
    assert_eq!(metrics.current.orders, 2);
    assert_eq!(metrics.current.revenue_minor, 10_000);
    assert_eq!(metrics.current.repeat_rate, Some(1.0));
}

#[test]
fn reports_need_the_read_permission_and_survive_an_empty_workspace() {
    let h = harness();
    let rfm = h.app.rfm(&h.actor).unwrap();
    assert_eq!((rfm.customers, rfm.grid.len()), (0, 25));
    assert!(h.app.cohorts(&h.actor, 12).unwrap().is_empty());
    assert_eq!(h.app.metrics(&h.actor).unwrap().current.repeat_rate, None);
    let clv = h.app.clv(&h.actor, 12).unwrap();
    assert!(!clv.reliable && clv.bgnbd.is_none() && clv.top_customers.is_empty());
    // Every role reads customers today; the check is there for roles that will not.
    let mut analyst = h.actor.clone();
    analyst.role = Role::Analyst;
    assert!(h.app.rfm(&analyst).is_ok());
    assert!(matches!(h.app.clv(&h.actor, 0), Err(CoreError::Invalid(_))));
}

#[test]
fn clv_on_three_customers_gives_numbers_flagged_thin() {
    let h = harness();
    load(
        &h,
        vec![
            order("x", "x1", 50.0, "2026-01-05"),
            order("x", "x2", 70.0, "2026-02-15"),
            order("x", "x3", 60.0, "2026-04-20"),
            order("y", "y1", 120.0, "2026-02-01"),
            order("y", "y2", 100.0, "2026-05-03"),
            order("z", "z1", 30.0, "2026-03-10"),
        ],
    );
    let clv = h.app.clv(&h.actor, 12).unwrap();
    assert_eq!((clv.customers, clv.repeat_customers), (3, 2));
    assert!(!clv.reliable);
    assert_eq!(
        clv.sufficiency,
        DataSufficiency::Thin {
            reason: ThinReason::TooFewRepeatCustomers {
                repeat_customers: 2,
                minimum: 200
            }
        }
    );
    // Still a prediction for everyone, with finite numbers.
    assert_eq!(clv.top_customers.len(), 3);
    for c in &clv.top_customers {
        assert!(c.expected_purchases.is_finite() && c.expected_purchases >= 0.0);
        assert!((0.0..=1.0).contains(&c.probability_alive));
    }
    assert_eq!(clv.observation_end.to_string(), "2026-06-01");
}

/// A deterministic shop of 300 buyers over the past year: buyer i first orders
/// 10 + (i·79 mod 340) days ago and comes back (i·31 mod 5) times, every 5 + (i mod 23) days,
/// while that is still in the past, spending R$ 50 + (i·13 mod 200) each time.
#[test]
fn clv_on_generated_orders_is_finite() {
    let h = harness();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let mut messages = Vec::new();
    for i in 0..300i64 {
        let user = format!("g{i}");
        let first = today - chrono::Duration::days(10 + (i * 79) % 340);
        let gap = 5 + i % 23;
        let amount = 50.0 + ((i * 13) % 200) as f64;
        for k in 0..=(i * 31) % 5 {
            let day = first + chrono::Duration::days(k * gap);
            if day >= today {
                break;
            }
            messages.push(order(
                &user,
                &format!("{user}-{k}"),
                amount,
                &day.to_string(),
            ));
        }
    }
    load(&h, messages);
    let clv = h.app.clv(&h.actor, 12).unwrap();
    assert_eq!(clv.customers, 300);
    let bgnbd = clv.bgnbd.expect("BG/NBD fitted");
    let p = bgnbd.params;
    assert!([p.r, p.alpha, p.a, p.b]
        .iter()
        .all(|v| v.is_finite() && *v > 0.0));
    let g = clv.gamma_gamma.expect("Gamma-Gamma fitted").params;
    assert!([g.p, g.q, g.gamma]
        .iter()
        .all(|v| v.is_finite() && *v > 0.0));
    assert!(clv.fit_ms.is_finite() && clv.fit_ms >= 0.0);
    assert_eq!(clv.top_customers.len(), 25);
    for c in &clv.top_customers {
        assert!(c.expected_purchases.is_finite());
        assert!(c.predicted_value_minor.is_some());
    }
    let values: usize = clv.value_distribution.iter().map(|b| b.customers).sum();
    let alive: usize = clv
        .probability_alive_distribution
        .iter()
        .map(|b| b.customers)
        .sum();
    assert_eq!((values, alive), (300, 300));
    assert!(clv.predicted_value_total_minor.unwrap() > 0);
    // Sorted by predicted value.
    let top: Vec<i64> = clv
        .top_customers
        .iter()
        .map(|c| c.predicted_value_minor.unwrap())
        .collect();
    assert!(top.windows(2).all(|w| w[0] >= w[1]));
}

/// Waits (up to a minute) until `check` holds: for what a background thread does.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn small_workspaces_always_see_the_latest_data() {
    latest_data(&harness());
}

#[test]
fn small_workspaces_always_see_the_latest_data_on_postgres() {
    if let Some(h) = postgres_harness("small_workspaces_always_see_the_latest_data_on_postgres") {
        latest_data(&h);
    }
}

fn latest_data(h: &Harness) {
    load(h, shop_data());
    assert_eq!(h.app.rfm(&h.actor).unwrap().customers, 4);
    assert_eq!(h.app.dashboard(&h.actor).unwrap().orders_total, 7);
    load(h, vec![order("n", "n1", 20.0, "2026-05-25")]);
    // A gathering this small is never kept: the next page sees the new order.
    assert_eq!(h.app.rfm(&h.actor).unwrap().customers, 5);
    assert_eq!(h.app.metrics(&h.actor).unwrap().current.orders, 8);
    let dashboard = h.app.dashboard(&h.actor).unwrap();
    assert_eq!((dashboard.customers_total, dashboard.orders_total), (6, 8));
    assert_eq!(dashboard.revenue_total_minor, 33_500);
    let month = |m: &str| {
        let point = dashboard.months.iter().find(|p| p.month == m).unwrap();
        (point.orders, point.revenue_minor)
    };
    assert_eq!(month("2026-01"), (2, 18_000));
    assert_eq!(month("2026-05"), (2, 6_000));
    assert_eq!(dashboard.months.last().unwrap().month, "2026-06");
}

/// A kept gathering is served as it is while fresh; once stale it is still served at once,
/// while one regathering runs in the background and then replaces it; a regathering that is
/// fast again (under `from`) drops it, and the pages go back to live data. The reuse policy is
/// set so that every gathering counts as large, fresh forever or stale at once.
#[test]
fn a_kept_gathering_is_served_stale_while_a_fresh_one_is_made() {
    use ciclo_core::analytics::ReusePolicy;
    use std::time::Duration;
    let h = harness();
    load(&h, shop_data());
    let kept_for_ever = ReusePolicy {
        from: Duration::ZERO,
        factor: u32::MAX,
        max: Duration::from_secs(3_600),
    };
    h.app.set_analytics_reuse(kept_for_ever);
    let buyers = || h.app.rfm(&h.actor).unwrap().customers;
    let orders_on_home = || h.app.dashboard(&h.actor).unwrap().orders_total;
    assert_eq!((buyers(), orders_on_home()), (4, 7));

    load(&h, vec![order("n", "n1", 20.0, "2026-05-25")]);
    assert_eq!(buyers(), 4, "fresh: the kept gathering");
    assert_eq!(h.app.metrics(&h.actor).unwrap().current.orders, 7);
    assert_eq!(h.app.cohorts(&h.actor, 6).unwrap().len(), 3);
    assert_eq!(orders_on_home(), 7, "fresh: the kept figures");

    // Stale at once: the page gets the kept gathering without waiting, and a regathering
    // starts behind it; later pages get the new one.
    h.app.set_analytics_reuse(ReusePolicy {
        factor: 0,
        ..kept_for_ever
    });
    assert_eq!(buyers(), 4, "stale: still served");
    assert_eq!(orders_on_home(), 7, "stale: still served");
    eventually("the regathering", || buyers() == 5);
    eventually("the dashboard's refresh", || orders_on_home() == 8);
    assert_eq!(h.app.metrics(&h.actor).unwrap().current.orders, 8);

    // Gatherings under an hour are no longer kept: the next refresh of what is kept (stale at
    // once still) drops it, and from then on every page reads live data.
    h.app.set_analytics_reuse(ReusePolicy {
        from: Duration::from_secs(3_600),
        factor: 0,
        ..kept_for_ever
    });
    load(&h, vec![order("o", "o1", 20.0, "2026-05-26")]);
    eventually("the regathering", || buyers() == 6);
    eventually("the dashboard's refresh", || orders_on_home() == 9);
    load(&h, vec![order("p", "p1", 20.0, "2026-05-27")]);
    assert_eq!(buyers(), 7, "live again");
    assert_eq!(orders_on_home(), 10, "live again");
}

/// Orders of a profile merged into one that was itself merged later count for the survivor
/// at the end of the chain, on the analytics pages and on the home page. (Written straight to
/// the store: root ← b ← c.)
#[test]
fn orders_follow_a_chain_of_merges() {
    chain_of_merges(&harness());
}

#[test]
fn orders_follow_a_chain_of_merges_on_postgres() {
    if let Some(h) = postgres_harness("orders_follow_a_chain_of_merges_on_postgres") {
        chain_of_merges(&h);
    }
}

fn chain_of_merges(h: &Harness) {
    use ciclo_domain::customer::Customer;
    use ciclo_domain::ids::{CustomerId, OrderId};
    use ciclo_domain::order::Order;
    let ws = h.actor.workspace.id.clone();
    let at = t("2026-05-01T12:00:00Z");
    let id = |n: u64| CustomerId::generate(1_777_000_000_000 + n, u128::from(n));
    let root = Customer::new(id(1), ws.clone(), at);
    let mut b = Customer::new(id(2), ws.clone(), at);
    b.merged_into = Some(root.id.clone());
    let mut c = Customer::new(id(3), ws.clone(), at);
    c.merged_into = Some(b.id.clone());
    let orders: Vec<Order> = [(&root, 5_000), (&b, 2_000), (&c, 3_000)]
        .into_iter()
        .enumerate()
        .map(|(i, (owner, total))| Order {
            id: OrderId::generate(1_777_000_000_000 + i as u64, i as u128),
            workspace_id: ws.clone(),
            customer_id: owner.id.clone(),
            external_id: format!("chain-{i}"),
            total_minor: total,
            currency: "BRL".into(),
            placed_at: at + chrono::Duration::days(i as i64 * 10),
            source: "track".into(),
            event_id: None,
            items: Vec::new(),
        })
        .collect();
    ciclo_store::write(&*h.app.store, |tx| {
        tx.insert_customers(&[root.clone(), b.clone(), c.clone()])?;
        tx.insert_orders(&orders).map(|_| ())
    })
    .unwrap();
    let rfm = h.app.rfm(&h.actor).unwrap();
    assert_eq!((rfm.customers, rfm.customers_without_orders), (1, 0));
    let page = h
        .app
        .rfm_customers(&h.actor, &RfmFilter::default(), 0, 10)
        .unwrap();
    assert_eq!(page.items[0].customer.id, root.id);
    assert_eq!(
        (page.items[0].orders, page.items[0].total_spent_minor),
        (3, 10_000)
    );
    let metrics = h.app.metrics(&h.actor).unwrap();
    assert_eq!(
        (metrics.current.orders, metrics.current.revenue_minor),
        (3, 10_000)
    );
    let dashboard = h.app.dashboard(&h.actor).unwrap();
    assert_eq!(
        (
            dashboard.customers_total,
            dashboard.orders_total,
            dashboard.revenue_total_minor
        ),
        (1, 3, 10_000)
    );
}

/// The scores job fits the CLV model over the whole workspace; the CLV page over the same
/// horizon is served from that fit while the gathering is kept, and must be exactly what the
/// page would have computed itself.
#[test]
fn the_clv_page_reuses_the_scores_jobs_fit() {
    use ciclo_core::analytics::{ReusePolicy, SCORE_HORIZON_MONTHS};
    use std::time::Duration;
    let h = harness();
    let mut orders = Vec::new();
    for (n, user) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        for k in 0..(n % 3 + 1) {
            orders.push(order(
                user,
                &format!("{user}{k}"),
                20.0 + 15.0 * (n + k) as f64,
                &format!("2026-0{}-1{k}", k + 2),
            ));
        }
    }
    load(&h, orders);
    let live = h.app.clv(&h.actor, SCORE_HORIZON_MONTHS).unwrap();
    assert!(!live.top_customers.is_empty());
    h.app.set_analytics_reuse(ReusePolicy {
        from: Duration::ZERO,
        factor: u32::MAX,
        max: Duration::from_secs(3_600),
    });
    h.app.refresh_scores(&h.actor.workspace.id).unwrap();
    let mut kept = h.app.clv(&h.actor, SCORE_HORIZON_MONTHS).unwrap();
    // Only how long the fit took differs (it was the scores job's).
    kept.fit_ms = live.fit_ms;
    kept.bgnbd_fit_ms = live.bgnbd_fit_ms;
    kept.gamma_gamma_fit_ms = live.gamma_gamma_fit_ms;
    assert_eq!(kept, live);
    // Another horizon is fitted for the page, and kept too.
    let six = h.app.clv(&h.actor, 6).unwrap();
    assert_eq!(six.horizon_months, 6);
    assert_eq!(h.app.clv(&h.actor, 6).unwrap(), six);
}
