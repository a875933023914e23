//! `ciclo bench`: the project's own benchmark, run against a real server over loopback.
//!
//! `bench ingest` starts the server in this process on `127.0.0.1:0` over the given database (by
//! default a fresh SQLite file in a temporary directory), then drives `POST /v1/batch` with
//! `--connections` concurrent senders. The events are generated in memory beforehand: a
//! realistic mix of identify, page and track calls, about 10% `Order Completed` with products,
//! user ids drawn from `--customers`. The senders run in a child process (`bench ingest --target
//! URL --write-key KEY`, which only sends) so that the peak RSS read from `/proc/self/status`
//! (VmHWM) is the server's alone; `--in-process` runs them on a separate runtime here instead.
//!
//! `bench read` ingests the same way, then measures p50/p99 of the profile, timeline and search
//! endpoints of the admin API with a secret key created through the core.
//!
//! `bench clv` fits the CLV models on the CDNOW data, beside Python's lifetimes (`bench_clv`).
//!
//! Each run ends with a Markdown table row for BENCHMARKS.md.

use crate::app;
use crate::demo;
use anyhow::{bail, Context};
use axum::body::Bytes;
use chrono::{Duration, SecondsFormat};
use ciclo_core::accounts::NewWorkspace;
use ciclo_core::Ciclo;
use ciclo_domain::operator::{Role, Workspace};
use ciclo_domain::Timestamp;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

const BENCH_OWNER: &str = "bench@ciclo.local";

/// The database is only ever the one `--database-url` names: the configuration file and
/// `CICLO_DATABASE_URL` are ignored, so that a benchmark never writes into real data. Without
/// it, a fresh SQLite file in a temporary directory is used and deleted afterwards.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Events per second through POST /v1/batch, with request latency and peak memory.
    Ingest(IngestArgs),
    /// Latency of the profile, timeline and search endpoints, after an ingest run.
    Read(ReadArgs),
    /// CLV model fit time and estimates on CDNOW, beside Python's lifetimes when installed.
    Clv(crate::bench_clv::ClvArgs),
    /// Segment previews and creation, real-time evaluation, the scheduled pass and analytics,
    /// on a database a previous `bench ingest --database-url …` loaded.
    Segments(crate::bench_segments::SegmentsArgs),
}

#[derive(Debug, Clone, Args)]
struct LoadArgs {
    /// Events to send.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Events per request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent senders (one HTTP connection each).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Distinct user ids the events are drawn from.
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Seed of the event generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Send the load from a runtime in this process instead of a child process (the peak RSS
    /// then includes the load generator).
    #[arg(long)]
    in_process: bool,
}

#[derive(Debug, Args)]
struct IngestArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Only send, to a ciclo server already running at this URL (needs --write-key).
    #[arg(long, value_name = "URL", requires = "write_key")]
    target: Option<String>,
    /// The write key of the target's workspace.
    #[arg(long, value_name = "KEY")]
    write_key: Option<String>,
    /// With --target: print the result as one JSON line (used by the parent process).
    #[arg(long, hide = true)]
    json: bool,
}

#[derive(Debug, Args)]
struct ReadArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Requests per endpoint.
    #[arg(long, default_value_t = 1_000)]
    requests: usize,
    /// Concurrent readers.
    #[arg(long, default_value_t = 4)]
    readers: usize,
    /// Measure reads on what the database already holds (for example the 1M-customer set a
    /// previous `bench ingest --database-url …` run loaded) instead of ingesting first.
    #[arg(long)]
    skip_ingest: bool,
}

/// What one load run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LoadResult {
    events_sent: usize,
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    requests: usize,
    failed_requests: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl LoadResult {
    fn events_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.accepted as f64 / self.seconds
        } else {
            0.0
        }
    }
}

pub fn run(args: BenchArgs, database_url: Option<&str>) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Clv(clv) => crate::bench_clv::run(clv),
        BenchCommand::Segments(segments) => crate::bench_segments::run(segments, database_url),
        BenchCommand::Ingest(IngestArgs {
            load,
            target: Some(target),
            write_key,
            json,
        }) => {
            let write_key = write_key.context("--target needs --write-key")?;
            let result = send_only(&load, &target, &write_key, !json)?;
            if json {
                println!("{}", serde_json::to_string(&result)?);
            } else {
                print_ingest(&load, "remote", &result, None);
            }
            Ok(())
        }
        BenchCommand::Ingest(IngestArgs { load, .. }) => {
            let server = BenchServer::start(database_url, true)?;
            let result = drive_ingest(&server, &load)?;
            server.check_stored(&result);
            server.drain_evaluation();
            let peak = peak_rss_mb();
            print_ingest(&load, server.app.store.backend(), &result, peak);
            server.stop()
        }
        BenchCommand::Read(ReadArgs {
            load,
            requests,
            readers,
            skip_ingest,
        }) => {
            if skip_ingest && database_url.is_none() {
                bail!("--skip-ingest reads an existing database: give it with --database-url");
            }
            // Reads are timed without the scheduled passes running beside them (they would
            // measure the passes, not the pages); the ingest part still drains its queue.
            let server = BenchServer::start(database_url, false)?;
            let ingest = if skip_ingest {
                LoadResult::default()
            } else {
                drive_ingest(&server, &load)?
            };
            server.check_stored(&ingest);
            server.drain_evaluation();
            let reads = server.read_bench(&load, requests, readers)?;
            let peak = peak_rss_mb();
            print_ingest(&load, server.app.store.backend(), &ingest, peak);
            print_reads(
                &load,
                server.app.store.backend(),
                requests,
                readers,
                &reads,
                peak,
            );
            server.stop()
        }
    }
}

/// The server under test, running on its own runtime in this process.
struct BenchServer {
    app: Ciclo,
    workspace: Workspace,
    address: SocketAddr,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Holds the temporary database until the end of the run.
    _data_dir: Option<tempfile::TempDir>,
}

impl BenchServer {
    fn start(database_url: Option<&str>, background: bool) -> anyhow::Result<BenchServer> {
        let (url, data_dir) = match database_url {
            Some(url) => (url.to_string(), None),
            None => {
                let dir = tempfile::Builder::new().prefix("ciclo-bench-").tempdir()?;
                (crate::config::default_database_url(dir.path()), Some(dir))
            }
        };
        eprintln!("bench: database {}", app::redact_url(&url));
        let app = app::open_app(&url)?;
        let settings = NewWorkspace {
            name: "Bench".into(),
            ..NewWorkspace::default()
        };
        let workspace = match app.bootstrap(settings, BENCH_OWNER, None)? {
            Some(created) => created.workspace,
            None => match app::workspaces_of_owner(&app, BENCH_OWNER)?
                .into_iter()
                .next()
            {
                Some((ws, _)) => ws,
                None => bail!(
                    "the database already has workspaces: give `ciclo bench` an empty database"
                ),
            },
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("ciclo-http")
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        let options = ciclo_http::HttpOptions {
            public_url: format!("http://{address}"),
            ..Default::default()
        };
        // The API and the console, as `ciclo serve` mounts them.
        let router = ciclo_http::router(app.clone(), options).merge(ciclo_web::console_router(
            app.clone(),
            ciclo_web::WebOptions::default(),
        ));
        // As in `ciclo serve`: segments and lifecycle stages follow the load in real time.
        if background {
            app.start_background(ciclo_core::evaluate::BackgroundOptions::default());
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = runtime.spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                stopped.await.ok();
            })
            .await
        });
        eprintln!("bench: server listening on http://{address}");
        Ok(BenchServer {
            app,
            workspace,
            address,
            runtime,
            stop,
            serving,
            _data_dir: data_dir,
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Compares what the senders saw acknowledged with what the database holds.
    fn check_stored(&self, result: &LoadResult) {
        match ciclo_store::read(&*self.app.store, |tx| tx.count_events(&self.workspace.id)) {
            Ok(stored) if stored as usize >= result.accepted => {
                eprintln!("bench: {stored} events stored in the workspace")
            }
            Ok(stored) => eprintln!(
                "bench: WARNING: {} events acknowledged but only {stored} stored",
                result.accepted
            ),
            Err(e) => eprintln!("bench: cannot count stored events: {e}"),
        }
    }

    /// Waits for the real-time evaluator to catch up with what the load marked, and says how
    /// long that took after the last acknowledged batch.
    fn drain_evaluation(&self) {
        let started = Instant::now();
        match self.app.evaluate_pending(usize::MAX) {
            Ok(n) => eprintln!(
                "bench: evaluation queue drained {:.1} s after the load ({n} customers left then)",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => eprintln!("bench: evaluation failed: {e}"),
        }
    }

    fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.runtime.block_on(self.serving)??;
        Ok(())
    }

    fn read_bench(
        &self,
        load: &LoadArgs,
        requests: usize,
        readers: usize,
    ) -> anyhow::Result<ReadResults> {
        let actor = app::cli_actor(&self.app, BENCH_OWNER, Some(self.workspace.id.as_str()))?;
        let (_, secret) = self
            .app
            .create_api_key(&actor, "bench", Role::Admin)
            .map_err(|e| crate::app::explain(e).context("cannot create an API key"))?;
        let query = ciclo_store::CustomerQuery {
            limit: 500,
            sort: ciclo_store::CustomerSort::LastSeen,
            ..Default::default()
        };
        let page = self
            .app
            .list_customers(&actor, query, None)
            .map_err(|e| crate::app::explain(e).context("cannot list customers"))?;
        let ids: Vec<String> = page.items.iter().map(|c| c.id.to_string()).collect();
        if ids.is_empty() {
            bail!("no customers to read");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(load.seed);
        let base = format!("{}/api/v1/customers", self.url());
        let pick = |rng: &mut ChaCha8Rng| ids.choose(rng).cloned().unwrap_or_default();
        let profile: Vec<String> = (0..requests)
            .map(|_| format!("{base}/{}", pick(&mut rng)))
            .collect();
        let timeline: Vec<String> = (0..requests)
            .map(|_| format!("{base}/{}/timeline", pick(&mut rng)))
            .collect();
        let names: Vec<String> = demo::first_names()
            .map(|n| n.split(' ').next().unwrap_or(n).to_lowercase())
            .collect();
        let search: Vec<String> = (0..requests)
            .map(|_| {
                let name = names
                    .choose(&mut rng)
                    .cloned()
                    .unwrap_or_else(|| "ana".into());
                let prefix: String = name.chars().take(rng.gen_range(3..=5)).collect();
                format!("{base}?search={}", encode_query(&prefix))
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        // The console's pages, as a signed-in operator sees them (HTML rendered on the server).
        let reader = "reader@bench.local";
        match self.app.add_operator(
            &actor,
            reader,
            "Bench reader",
            Role::Admin,
            BENCH_READER_PASSWORD,
        ) {
            Ok(_) | Err(ciclo_core::CoreError::Conflict(_)) => {}
            Err(e) => return Err(crate::app::explain(e).context("cannot add the reader")),
        }
        let (token, _) = self
            .app
            .login(reader, BENCH_READER_PASSWORD, Some(&self.workspace.id))
            .map_err(|e| crate::app::explain(e).context("cannot sign the reader in"))?;
        let console = self.url();
        let pages: Vec<String> = (0..requests)
            .map(|_| format!("{console}/customers"))
            .collect();
        let console_search: Vec<String> = search
            .iter()
            .map(|u| u.replace(&base, &format!("{console}/customers")))
            .collect();
        let console_360: Vec<String> = (0..requests)
            .map(|_| format!("{console}/customers/{}", pick(&mut rng)))
            .collect();
        let bearer = Auth::Bearer(secret);
        let cookie = Auth::Cookie(token);
        runtime.block_on(async {
            let client = http_client(readers)?;
            Ok(ReadResults {
                profile: read_load(&client, &bearer, profile, readers).await,
                timeline: read_load(&client, &bearer, timeline, readers).await,
                search: read_load(&client, &bearer, search, readers).await,
                console_list: read_load(&client, &cookie, pages, readers).await,
                console_search: read_load(&client, &cookie, console_search, readers).await,
                console_360: read_load(&client, &cookie, console_360, readers).await,
            })
        })
    }
}

fn encode_query(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sends the load to the in-process server, from a child process unless `--in-process`.
fn drive_ingest(server: &BenchServer, load: &LoadArgs) -> anyhow::Result<LoadResult> {
    if load.in_process {
        return send_only(load, &server.url(), &server.workspace.write_key, true);
    }
    let exe = std::env::current_exe()
        .context("cannot find the ciclo executable to run the load generator")?;
    let output = std::process::Command::new(exe)
        .args([
            "bench",
            "ingest",
            "--json",
            "--target",
            &server.url(),
            "--write-key",
            &server.workspace.write_key,
        ])
        .args([
            "--events",
            &load.events.to_string(),
            "--batch",
            &load.batch.to_string(),
        ])
        .args([
            "--connections",
            &load.connections.to_string(),
            "--customers",
            &load.customers.to_string(),
        ])
        .args(["--seed", &load.seed.to_string()])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot start the load generator")?;
    if !output.status.success() {
        bail!("the load generator failed ({})", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the load generator printed no result")?;
    Ok(serde_json::from_str(line)?)
}

/// Generates the events, then sends them to `target` (the sender-only mode).
fn send_only(
    load: &LoadArgs,
    target: &str,
    write_key: &str,
    show_progress: bool,
) -> anyhow::Result<LoadResult> {
    if load.batch == 0 || load.connections == 0 || load.customers == 0 {
        bail!("--batch, --connections and --customers must be at least 1");
    }
    let now = ciclo_core::Clock::now(&ciclo_core::SystemClock);
    let generated = Instant::now();
    let batches = generate_batches(load, now);
    eprintln!(
        "bench: {} events in {} requests generated in {:.1} s",
        load.events,
        batches.len(),
        generated.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("bench-load")
        .build()?;
    let bar = if show_progress {
        ProgressBar::new(load.events as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} sending [{bar:40}] {pos}/{len} events ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let url = format!("{}/v1/batch", target.trim_end_matches('/'));
    let result = runtime.block_on(ingest_load(
        url,
        write_key.to_string(),
        batches,
        load.connections,
        bar.clone(),
    ));
    bar.finish_and_clear();
    result
}

/// One request body per batch: `{"batch": [...], "sentAt": ...}`, and the number of events in it.
fn generate_batches(load: &LoadArgs, now: Timestamp) -> Vec<(usize, Bytes)> {
    let mut rng = ChaCha8Rng::seed_from_u64(load.seed);
    // A run id keeps message ids unique across runs over the same database.
    let run: u32 = rand::random();
    let first: Vec<&str> = demo::first_names().collect();
    let sent_at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut batches = Vec::with_capacity(load.events.div_ceil(load.batch));
    let mut produced = 0;
    while produced < load.events {
        let size = load.batch.min(load.events - produced);
        let messages: Vec<Value> = (produced..produced + size)
            .map(|i| bench_event(&mut rng, load, &first, now, run, i))
            .collect();
        let body =
            serde_json::to_vec(&json!({"batch": messages, "sentAt": sent_at})).unwrap_or_default();
        batches.push((size, Bytes::from(body)));
        produced += size;
    }
    batches
}

fn bench_event(
    rng: &mut ChaCha8Rng,
    load: &LoadArgs,
    first_names: &[&str],
    now: Timestamp,
    run: u32,
    i: usize,
) -> Value {
    // Some customers are much more active than others.
    let u: f64 = rng.gen();
    let n = ((u * u) * load.customers as f64) as usize % load.customers;
    let user_id = format!("bench-{n}");
    let anonymous_id = format!("anon-{n}");
    let at = now - Duration::seconds(rng.gen_range(60..30 * 86_400));
    let timestamp = at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let message_id = format!("bench-{run:08x}-{i}");
    let context =
        json!({"library": {"name": "analytics.js", "version": "4.1.0"}, "locale": "pt-BR"});
    let product = &demo::PRODUCTS[rng.gen_range(0..demo::PRODUCTS.len())];
    let product_json = json!({"product_id": product.id, "sku": product.sku, "name": product.name,
        "category": product.category, "price": product.price_minor as f64 / 100.0, "quantity": 1});
    let roll: f64 = rng.gen();
    if roll < 0.10 {
        let first = first_names[n % first_names.len()];
        let last = demo::SURNAMES[(n / first_names.len()) % demo::SURNAMES.len()];
        let city = &demo::CITIES[n % demo::CITIES.len()];
        json!({"type": "identify", "messageId": message_id, "userId": user_id, "anonymousId": anonymous_id,
            "timestamp": timestamp, "context": context,
            "traits": {"firstName": first, "lastName": last, "email": format!("cliente{n}@example.com.br"),
                       "phone": format!("+55{}9{:08}", city.ddd[0], 60_000_000 + n % 40_000_000),
                       "address": {"city": city.name, "state": city.state, "country": "BR"}}})
    } else if roll < 0.35 {
        json!({"type": "page", "messageId": message_id, "userId": user_id, "anonymousId": anonymous_id,
            "timestamp": timestamp, "context": context, "name": "Produto",
            "properties": {"path": format!("/p/{}", product.id), "url": format!("https://minhaloja.com.br/p/{}", product.id),
                           "title": product.name}})
    } else if roll < 0.90 {
        let (event, properties) = match rng.gen_range(0..4) {
            0 | 1 => ("Product Viewed", product_json),
            2 => ("Added to Cart", product_json),
            _ => (
                "Email Opened",
                json!({"channel": "email", "campaign_id": "cmp-bench", "subject": "Novidades"}),
            ),
        };
        json!({"type": "track", "messageId": message_id, "userId": user_id, "anonymousId": anonymous_id,
            "timestamp": timestamp, "context": context, "event": event, "properties": properties})
    } else {
        let lines = rng.gen_range(1..=3);
        let products: Vec<Value> = (0..lines)
            .map(|_| {
                let p = &demo::PRODUCTS[rng.gen_range(0..demo::PRODUCTS.len())];
                json!({"product_id": p.id, "sku": p.sku, "name": p.name, "category": p.category,
                       "price": p.price_minor as f64 / 100.0, "quantity": rng.gen_range(1..=2)})
            })
            .collect();
        let total: f64 = products
            .iter()
            .map(|p| p["price"].as_f64().unwrap_or(0.0) * p["quantity"].as_f64().unwrap_or(1.0))
            .sum();
        json!({"type": "track", "messageId": message_id, "userId": user_id, "anonymousId": anonymous_id,
            "timestamp": timestamp, "context": context, "event": "Order Completed",
            "properties": {"order_id": format!("B{run:08x}-{i}"), "total": (total * 100.0).round() / 100.0,
                           "currency": "BRL", "products": products}})
    }
}

fn http_client(connections: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(std::time::Duration::from_secs(120))
        .build()?)
}

async fn ingest_load(
    url: String,
    write_key: String,
    batches: Vec<(usize, Bytes)>,
    connections: usize,
    bar: ProgressBar,
) -> anyhow::Result<LoadResult> {
    let client = http_client(connections)?;
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..connections {
        let (client, batches, next, url, write_key, bar) = (
            client.clone(),
            batches.clone(),
            next.clone(),
            url.clone(),
            write_key.clone(),
            bar.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut mine = LoadResult::default();
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((count, body)) = batches.get(index) else {
                    break;
                };
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .basic_auth(&write_key, Some(""))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let outcome = match response {
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        (status.is_success(), status.to_string(), text)
                    }
                    Err(e) => (false, "no response".to_string(), e.to_string()),
                };
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                mine.requests += 1;
                mine.events_sent += count;
                bar.inc(*count as u64);
                match outcome {
                    (true, _, text) => {
                        let (accepted, duplicates, rejected) = count_outcome(*count, &text);
                        mine.accepted += accepted;
                        mine.duplicates += duplicates;
                        mine.rejected += rejected;
                    }
                    (false, status, text) => {
                        if mine.failed_requests == 0 {
                            eprintln!(
                                "bench: request failed: {status}: {}",
                                text.chars().take(300).collect::<String>()
                            );
                        }
                        mine.failed_requests += 1;
                    }
                }
            }
            (mine, latencies)
        }));
    }
    let mut total = LoadResult::default();
    let mut latencies = Vec::new();
    for sender in senders {
        let (mine, mut lat) = sender.await?;
        total.events_sent += mine.events_sent;
        total.accepted += mine.accepted;
        total.duplicates += mine.duplicates;
        total.rejected += mine.rejected;
        total.requests += mine.requests;
        total.failed_requests += mine.failed_requests;
        latencies.append(&mut lat);
    }
    total.seconds = started.elapsed().as_secs_f64();
    (total.p50_ms, total.p99_ms) = percentiles(&mut latencies);
    Ok(total)
}

/// Reads `accepted`/`duplicates`/`rejected` from a batch response when the server reports them;
/// a bare `{"success": true}` (Segment's answer) counts the whole batch as accepted.
fn count_outcome(sent: usize, body: &str) -> (usize, usize, usize) {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let number = |v: &Value| {
        v.as_u64()
            .map(|n| n as usize)
            .or_else(|| v.as_array().map(Vec::len))
    };
    match number(&parsed["accepted"]) {
        Some(accepted) => {
            let duplicates = number(&parsed["duplicates"]).unwrap_or(0);
            let rejected = number(&parsed["rejected"]).unwrap_or(0);
            (accepted + duplicates, duplicates, rejected)
        }
        None => {
            let rejected = number(&parsed["rejected"]).unwrap_or(0);
            (sent.saturating_sub(rejected), 0, rejected)
        }
    }
}

fn percentiles(latencies: &mut [f64]) -> (f64, f64) {
    if latencies.is_empty() {
        return (0.0, 0.0);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: usize| latencies[(latencies.len() * q / 100).min(latencies.len() - 1)];
    (at(50), at(99))
}

#[derive(Debug, Default)]
struct Latency {
    requests: usize,
    failed: usize,
    p50_ms: f64,
    p99_ms: f64,
}

struct ReadResults {
    profile: Latency,
    timeline: Latency,
    search: Latency,
    /// Console pages (HTML): the customer list, a search, the customer 360 page.
    console_list: Latency,
    console_search: Latency,
    console_360: Latency,
}

/// How a reader authenticates: a secret API key, or a console session cookie.
enum Auth {
    Bearer(String),
    Cookie(String),
}

const BENCH_READER_PASSWORD: &str = "bench-reader-password";

async fn read_load(
    client: &reqwest::Client,
    auth: &Auth,
    urls: Vec<String>,
    readers: usize,
) -> Latency {
    let (header, value) = match auth {
        Auth::Bearer(secret) => ("authorization", format!("Bearer {secret}")),
        Auth::Cookie(token) => ("cookie", format!("ciclo_session={token}")),
    };
    let urls = Arc::new(urls);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..readers.max(1) {
        let (client, urls, next, value) =
            (client.clone(), urls.clone(), next.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(url) = urls.get(index) else { break };
                let sent = Instant::now();
                let ok = match client.get(url).header(header, &value).send().await {
                    Ok(r) => {
                        let status = r.status();
                        let body = r.bytes().await;
                        if !status.is_success() && failed == 0 {
                            eprintln!("bench: GET {url}: {status}");
                        }
                        status.is_success() && body.is_ok()
                    }
                    Err(e) => {
                        if failed == 0 {
                            eprintln!("bench: GET {url}: {e}");
                        }
                        false
                    }
                };
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                if !ok {
                    failed += 1;
                }
            }
            (latencies, failed)
        }));
    }
    let mut all = Vec::new();
    let mut failed = 0;
    for task in tasks {
        if let Ok((mut lat, f)) = task.await {
            all.append(&mut lat);
            failed += f;
        }
    }
    let (p50_ms, p99_ms) = percentiles(&mut all);
    Latency {
        requests: all.len(),
        failed,
        p50_ms,
        p99_ms,
    }
}

/// The process's peak resident set size (VmHWM) in MB, on Linux.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn today() -> String {
    ciclo_core::Clock::now(&ciclo_core::SystemClock)
        .format("%Y-%m-%d")
        .to_string()
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rss_text(peak: Option<f64>, in_process: bool) -> String {
    match peak {
        Some(mb) if in_process => format!("{mb:.0} MB (incl. load generator)"),
        Some(mb) => format!("{mb:.0} MB"),
        None => "n/a".into(),
    }
}

fn print_ingest(load: &LoadArgs, backend: &str, r: &LoadResult, peak: Option<f64>) {
    eprintln!(
        "bench ingest: {} events sent in {} requests, {} accepted ({} duplicates), {} rejected, {} failed requests, {:.2} s",
        r.events_sent, r.requests, r.accepted, r.duplicates, r.rejected, r.failed_requests, r.seconds
    );
    println!();
    println!("| date | bench | backend | load | events/s | request p50 | request p99 | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | ingest | {backend} | {} events, batch {}, {} connections, {} customers | {} | {:.1} ms | {:.1} ms | {} |",
        today(),
        thousands(r.events_sent),
        load.batch,
        load.connections,
        thousands(load.customers),
        thousands(r.events_per_second().round() as usize),
        r.p50_ms,
        r.p99_ms,
        rss_text(peak, load.in_process)
    );
}

fn print_reads(
    load: &LoadArgs,
    backend: &str,
    requests: usize,
    readers: usize,
    r: &ReadResults,
    peak: Option<f64>,
) {
    for (name, l) in [
        ("profile", &r.profile),
        ("timeline", &r.timeline),
        ("search", &r.search),
        ("console list", &r.console_list),
        ("console search", &r.console_search),
        ("console 360", &r.console_360),
    ] {
        eprintln!(
            "bench read {name}: {} requests, {} failed, p50 {:.1} ms, p99 {:.1} ms",
            l.requests, l.failed, l.p50_ms, l.p99_ms
        );
    }
    println!();
    println!("| date | bench | backend | data | profile p50 / p99 | timeline p50 / p99 | search p50 / p99 | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | read | {backend} | {} events, {} customers; {requests} requests each, {readers} readers | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {} |",
        today(),
        thousands(load.events),
        thousands(load.customers),
        r.profile.p50_ms,
        r.profile.p99_ms,
        r.timeline.p50_ms,
        r.timeline.p99_ms,
        r.search.p50_ms,
        r.search.p99_ms,
        rss_text(peak, load.in_process)
    );
    println!();
    println!("| date | bench | backend | data | console list p50 / p99 | console search p50 / p99 | console 360 p50 / p99 |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} | read | {backend} | {} events, {} customers | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.1} / {:.1} ms |",
        today(),
        thousands(load.events),
        thousands(load.customers),
        r.console_list.p50_ms,
        r.console_list.p99_ms,
        r.console_search.p50_ms,
        r.console_search.p99_ms,
        r.console_360.p50_ms,
        r.console_360.p99_ms,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciclo_domain::event::parse_message;

    fn load() -> LoadArgs {
        LoadArgs {
            events: 2_000,
            batch: 300,
            connections: 2,
            customers: 50,
            seed: 3,
            in_process: true,
        }
    }

    #[test]
    fn batches_hold_every_event_and_each_is_valid() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let batches = generate_batches(&load(), now);
        assert_eq!(batches.len(), 7);
        assert_eq!(batches.iter().map(|(n, _)| n).sum::<usize>(), 2_000);
        let mut orders = 0;
        for (count, body) in &batches {
            let parsed: Value = serde_json::from_slice(body).unwrap();
            let messages = parsed["batch"].as_array().unwrap();
            assert_eq!(messages.len(), *count);
            for m in messages {
                let message =
                    parse_message(m, None, now, "x").unwrap_or_else(|e| panic!("{e:?}: {m}"));
                if message.name.as_deref() == Some("Order Completed") {
                    ciclo_domain::order::order_from_properties(&message.properties, "BRL").unwrap();
                    orders += 1;
                }
            }
        }
        assert!((100..300).contains(&orders), "about 10% orders: {orders}");
    }

    #[test]
    fn outcome_counts() {
        assert_eq!(count_outcome(500, r#"{"success":true}"#), (500, 0, 0));
        assert_eq!(
            count_outcome(
                500,
                r#"{"accepted":490,"duplicates":5,"rejected":[{},{},{},{},{}]}"#
            ),
            (495, 5, 5)
        );
        assert_eq!(percentiles(&mut [5.0, 1.0, 3.0, 2.0, 4.0]), (3.0, 5.0));
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(encode_query("jo ã"), "jo%20%C3%A3");
    }
}
