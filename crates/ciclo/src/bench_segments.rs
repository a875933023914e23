//! `ciclo bench segments`: server-side cost of segments, lifecycle stages and analytics on the
//! data a `bench ingest --database-url …` run left (or on a fresh ingest when no URL is given).
//!
//! It measures, in this process, through the same use cases the API and console call:
//! * draining the evaluation queue that ingestion filled (lifecycle stage + every dynamic
//!   segment per customer), in customers per second;
//! * previews (count + sample over every customer) of a profile, an order-stats, an event and
//!   a nested definition: the median of `--repeat` runs each;
//! * creating segments (first evaluation over every customer, members and timeline events
//!   written);
//! * the real-time path: `--updates` single events for random customers, each followed by the
//!   evaluation of that customer against every segment: p50/p99 of the evaluation step;
//! * the scheduled pass over time-relative segments and lifecycle stages;
//! * the analytics pages' use cases (RFM, cohorts, metrics, CLV, funnel) and the scores job.
//!
//! Each run ends with Markdown rows for BENCHMARKS.md.

use crate::app;
use anyhow::{bail, Context};
use ciclo_core::segments::SegmentInput;
use ciclo_domain::ids::SegmentId;
use ciclo_store::CustomerQuery;
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Instant;

const BENCH_OWNER: &str = "bench@ciclo.local";

#[derive(Debug, Args)]
pub struct SegmentsArgs {
    /// Runs of each preview (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Single-event real-time updates to time.
    #[arg(long, default_value_t = 200)]
    updates: usize,
    /// Skip the analytics use cases (they scan every profile and order).
    #[arg(long)]
    skip_analytics: bool,
    /// Only time the previews (nothing is written).
    #[arg(long)]
    previews_only: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// The process's resident memory now, in MB (0 where /proc is not there).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

/// The definitions measured: (label, text).
const DEFINITIONS: &[(&str, &str)] = &[
    ("profile", r#"city = "Recife" or city = "Salvador""#),
    ("order stats", "orders_count >= 2 and total_spent > 300"),
    (
        "event window",
        r#"performed "Product Viewed" at least 2 times in the last 7 days"#,
    ),
    (
        "event + filter",
        r#"performed "Added to Cart" in the last 30 days where category = "Calçados" and has not performed "Order Completed" in the last 30 days"#,
    ),
    (
        "lifecycle + relative date",
        "lifecycle is retention and last_order_at more than 14 days ago",
    ),
    (
        "nested",
        r#"(city = "São Paulo" or total_spent > 500) and performed "Order Completed" at least 2 times and not (rfm_group = "hibernating" or performed "Email Opened" in the last 3 days)"#,
    ),
];

pub fn run(args: SegmentsArgs, database_url: Option<&str>) -> anyhow::Result<()> {
    let Some(url) = database_url else {
        bail!("bench segments reads a database a `bench ingest --database-url …` run loaded: give it with --database-url");
    };
    eprintln!("bench: database {}", app::redact_url(url));
    let app = app::open_app(url)?;
    let Some((workspace, _)) = app::workspaces_of_owner(&app, BENCH_OWNER)?
        .into_iter()
        .next()
    else {
        bail!(
            "no bench workspace in this database: run `ciclo bench ingest --database-url …` first"
        );
    };
    let actor = app::cli_actor(&app, BENCH_OWNER, Some(workspace.id.as_str()))?;
    let explain = |e| app::explain(e);
    let customers = ciclo_store::read(&*app.store, |tx| tx.count_customers(&workspace.id))?;
    let events = ciclo_store::read(&*app.store, |tx| tx.count_events(&workspace.id))?;
    let backend = app.store.backend();
    println!("## ciclo bench segments: {backend}, {customers} customers, {events} events");

    // 1. The queue ingestion filled.
    let started = Instant::now();
    let drained = app.evaluate_pending(usize::MAX).map_err(explain)?;
    let drain_ms = ms(started);
    println!(
        "queue: {drained} customers evaluated in {:.1} s ({:.0}/s)",
        drain_ms / 1e3,
        drained as f64 / (drain_ms / 1e3).max(1e-9)
    );

    // 2. Previews. The first of each loads into the segment index what that definition reads
    // and nothing loaded before (columns, event names, property paths); the later ones are the
    // whole-workspace evaluation from scratch over the kept columns.
    let mut rows = Vec::new();
    let rss_before = rss_mb();
    for (label, text) in DEFINITIONS {
        let mut times = Vec::new();
        let mut count = 0;
        let mut first = 0.0;
        for run in 0..args.repeat.max(1) + 1 {
            let started = Instant::now();
            let preview = app
                .preview_segment(&actor, &json!(text), 20)
                .map_err(explain)
                .with_context(|| format!("preview of {label}"))?;
            if run == 0 {
                first = ms(started);
            } else {
                times.push(ms(started));
            }
            count = preview.count;
        }
        let t = median(times);
        println!(
            "preview {label:<26} {count:>9} members  {t:>9.1} ms  (first, loading its columns: {first:.0} ms)"
        );
        rows.push((label.to_string(), count, t, first));
    }
    println!(
        "segment index: resident memory {:.0} MB before the previews, {:.0} MB after",
        rss_before,
        rss_mb()
    );

    if args.previews_only {
        return Ok(());
    }

    // 3. Creating segments (first evaluation, writes members and timeline events).
    let mut created: Vec<SegmentId> = Vec::new();
    let mut create_rows = Vec::new();
    for (i, (label, text)) in DEFINITIONS.iter().enumerate() {
        let started = Instant::now();
        let input = SegmentInput {
            name: Some(format!("bench {i} {label}")),
            definition: Some(Value::String(text.to_string())),
            ..Default::default()
        };
        let view = app.create_segment(&actor, &input).map_err(explain)?;
        let t = ms(started);
        println!(
            "create  {label:<26} {:>9} members  {t:>9.1} ms",
            view.record.member_count
        );
        create_rows.push((label.to_string(), view.record.member_count, t));
        created.push(view.record.id);
    }

    // 4. Real time: one event, then that customer's evaluation against every segment.
    let sample = app
        .list_customers(
            &actor,
            CustomerQuery {
                limit: 500,
                ..Default::default()
            },
            None,
        )
        .map_err(explain)?;
    let users: Vec<String> = sample.items.iter().map(|c| c.id.to_string()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut eval_times = Vec::new();
    let mut ingest_times = Vec::new();
    for n in 0..args.updates {
        if users.is_empty() {
            break;
        }
        let customer = &users[rng.gen_range(0..users.len())];
        let message = json!({"type": "track", "event": "Product Viewed", "userId": format!("rt-{customer}"),
            "messageId": format!("bench-rt-{}-{n}", rng.gen::<u64>()),
            "properties": {"category": "Calçados"}});
        let now = app.clock.now();
        let started = Instant::now();
        app.ingest(
            &workspace,
            &[message],
            None,
            now,
            ciclo_core::ingest::IngestSource("api"),
        )
        .map_err(explain)?;
        ingest_times.push(ms(started));
        let started = Instant::now();
        app.evaluate_pending(usize::MAX).map_err(explain)?;
        eval_times.push(ms(started));
    }
    let (rt50, rt99) = (percentile(&eval_times, 0.5), percentile(&eval_times, 0.99));
    // The next preview re-reads the profiles those updates touched.
    let started = Instant::now();
    let after_updates = app
        .preview_segment(&actor, &json!(DEFINITIONS[2].1), 20)
        .map_err(explain)?;
    println!(
        "preview after the updates (index catches up): {} members in {:.1} ms",
        after_updates.count,
        ms(started)
    );
    println!(
        "real time: {} single-event updates, evaluation p50 {rt50:.2} ms p99 {rt99:.2} ms (ingest p50 {:.2} ms)",
        eval_times.len(),
        percentile(&ingest_times, 0.5)
    );

    // 5. The scheduled pass.
    let started = Instant::now();
    let evaluated = app
        .refresh_workspace(&workspace.id, None, true, &HashSet::new())
        .map_err(explain)?;
    let refresh_ms = ms(started);
    println!(
        "scheduled pass (time-relative segments + lifecycle): {evaluated} customers in {:.1} s",
        refresh_ms / 1e3
    );

    // 6. Analytics.
    let mut analytics = Vec::new();
    if !args.skip_analytics {
        let now = app.clock.now();
        let mut time = |label: &str, f: &mut dyn FnMut() -> anyhow::Result<()>| {
            let started = Instant::now();
            let result = f();
            let t = ms(started);
            match result {
                Ok(()) => println!("analytics {label:<18} {t:>9.1} ms"),
                Err(e) => println!("analytics {label:<12} failed: {e:#}"),
            }
            analytics.push((label.to_string(), t));
        };
        time("rfm", &mut || app.rfm(&actor).map(|_| ()).map_err(explain));
        time("cohorts", &mut || {
            app.cohorts(&actor, 12).map(|_| ()).map_err(explain)
        });
        time("metrics", &mut || {
            app.metrics(&actor).map(|_| ()).map_err(explain)
        });
        time("clv", &mut || {
            app.clv(&actor, 12).map(|_| ()).map_err(explain)
        });
        time("funnel", &mut || {
            app.funnel(&actor, now - chrono::Duration::days(90), now)
                .map(|_| ())
                .map_err(explain)
        });
        time("dashboard", &mut || {
            app.dashboard(&actor).map(|_| ()).map_err(explain)
        });
        time("scores job", &mut || {
            app.refresh_scores(&workspace.id)
                .map(|_| ())
                .map_err(explain)
        });
        // As a server sees them: the scores job (run at start and hourly) left its gathering
        // and its CLV fit for the pages.
        time("rfm (kept)", &mut || {
            app.rfm(&actor).map(|_| ()).map_err(explain)
        });
        time("cohorts (kept)", &mut || {
            app.cohorts(&actor, 12).map(|_| ()).map_err(explain)
        });
        time("metrics (kept)", &mut || {
            app.metrics(&actor).map(|_| ()).map_err(explain)
        });
        time("clv (kept)", &mut || {
            app.clv(&actor, 12).map(|_| ()).map_err(explain)
        });
        time("funnel (kept)", &mut || {
            app.funnel(&actor, now - chrono::Duration::days(90), now)
                .map(|_| ())
                .map_err(explain)
        });
        time("dashboard (kept)", &mut || {
            app.dashboard(&actor).map(|_| ()).map_err(explain)
        });
    }

    for id in &created {
        app.delete_segment(&actor, id).map_err(explain)?;
    }
    print_rows(
        backend,
        customers,
        events,
        drained,
        drain_ms,
        &rows,
        &create_rows,
        rt50,
        rt99,
        refresh_ms,
        &analytics,
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn print_rows(
    backend: &str,
    customers: i64,
    events: i64,
    drained: usize,
    drain_ms: f64,
    previews: &[(String, usize, f64, f64)],
    creates: &[(String, i64, f64)],
    rt50: f64,
    rt99: f64,
    refresh_ms: f64,
    analytics: &[(String, f64)],
) {
    println!();
    println!("Markdown rows for BENCHMARKS.md:");
    println!("| backend | customers | events | what | result |");
    println!("|---|---|---|---|---|");
    let row = |what: String, result: String| {
        println!("| {backend} | {customers} | {events} | {what} | {result} |");
    };
    row(
        "drain evaluation queue".into(),
        format!(
            "{drained} customers, {:.0}/s",
            drained as f64 / (drain_ms / 1e3).max(1e-9)
        ),
    );
    for (label, count, t, first) in previews {
        row(
            format!("preview: {label}"),
            format!("{t:.0} ms ({count} members; first {first:.0} ms, loading its columns)"),
        );
    }
    for (label, count, t) in creates {
        row(
            format!("create: {label}"),
            format!("{t:.0} ms ({count} members)"),
        );
    }
    row(
        "real-time evaluation per event".into(),
        format!("p50 {rt50:.2} ms, p99 {rt99:.2} ms"),
    );
    row(
        "scheduled pass".into(),
        format!("{:.1} s", refresh_ms / 1e3),
    );
    for (label, t) in analytics {
        row(format!("analytics: {label}"), format!("{t:.0} ms"));
    }
}
