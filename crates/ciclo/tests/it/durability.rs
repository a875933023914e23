//! Acknowledged = durable: the server is killed with SIGKILL in the middle of a stream of
//! batches, restarted on the same data, and every message it acknowledged is there exactly once.

use crate::support::{http, serve_args, spawn_server, ServerHandle};
use ciclo_store::{read, Store};
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SENDERS: usize = 3;
const BATCH: usize = 100;

/// Streams batches from several threads until the server stops answering; returns the message
/// ids of every batch answered with 200, and the batches themselves (to retry later).
fn stream_until_killed(server: &mut ServerHandle) -> (Vec<String>, Vec<serde_json::Value>) {
    let acked: Arc<Mutex<(Vec<String>, Vec<serde_json::Value>)>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for sender in 0..SENDERS {
        let (url, key, acked, stop) = (
            server.url.clone(),
            server.write_key.clone(),
            acked.clone(),
            stop.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let client = http();
            for n in 0.. {
                if stop.load(Ordering::Relaxed) || n > 100_000 {
                    return;
                }
                let ids: Vec<String> = (0..BATCH).map(|i| format!("s{sender}-b{n}-m{i}")).collect();
                let batch: Vec<serde_json::Value> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| {
                        json!({"type": "track", "event": "Product Viewed", "userId": format!("user-{}", (n * 7 + i) % 300),
                               "messageId": id, "properties": {"product_id": format!("p{i}")}})
                    })
                    .collect();
                let body = json!({ "batch": batch });
                match client.post(format!("{url}/v1/batch")).basic_auth(&key, Some("")).json(&body).send() {
                    Ok(r) if r.status().as_u16() == 200 => {
                        let mut a = acked.lock().unwrap();
                        a.0.extend(ids);
                        a.1.push(body);
                    }
                    Ok(r) => panic!("unexpected status {} before the kill", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Let a good number of batches through, then kill the server while requests are in flight.
    let started = Instant::now();
    while acked.lock().unwrap().0.len() < 20 * BATCH && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("sender thread panicked");
    }
    let mut guard = acked.lock().unwrap();
    std::mem::take(&mut *guard)
}

fn assert_all_stored_once(store: &dyn Store, write_key: &str, acked: &[String]) {
    let workspace = read(store, |tx| tx.workspace_by_write_key(write_key))
        .unwrap()
        .expect("workspace");
    let found: HashSet<String> = acked
        .chunks(500)
        .flat_map(|chunk| read(store, |tx| tx.existing_message_ids(&workspace.id, chunk)).unwrap())
        .collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !found.contains(*id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but lost: {missing:?} (of {})",
        acked.len()
    );
}

/// Sends every acknowledged batch again: each message must be reported as a duplicate.
fn assert_retries_are_duplicates(server: &ServerHandle, batches: &[serde_json::Value]) {
    let client = http();
    for body in batches.iter().take(30) {
        let r = client
            .post(server.at("/v1/batch"))
            .basic_auth(&server.write_key, Some(""))
            .json(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let report: serde_json::Value = r.json().unwrap();
        assert_eq!(report["accepted"], 0, "{report}");
        assert_eq!(report["duplicates"], BATCH, "{report}");
    }
}

#[test]
fn sigkill_during_ingestion_loses_no_acknowledged_message_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_server(serve_args(dir.path()));
    let write_key = server.write_key.clone();
    let (acked, batches) = stream_until_killed(&mut server);
    assert!(
        acked.len() >= 20 * BATCH,
        "only {} messages acknowledged before the kill",
        acked.len()
    );

    let restarted = spawn_server(serve_args(dir.path()));
    assert_eq!(
        restarted.write_key, write_key,
        "same workspace after restart"
    );
    let store =
        ciclo_store_sqlite::SqliteStore::open(dir.path().join("ciclo.db").to_str().unwrap())
            .unwrap();
    assert_all_stored_once(&store, &write_key, &acked);
    assert_retries_are_duplicates(&restarted, &batches);
}

#[test]
fn sigkill_during_ingestion_loses_no_acknowledged_message_on_postgres() {
    let Some(db) = ciclo_test_support::TestDatabase::create("sigkill_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut args = serve_args(dir.path());
    args.extend(["--database-url".to_string(), db.url().to_string()]);
    let mut server = spawn_server(args.clone());
    let write_key = server.write_key.clone();
    let (acked, batches) = stream_until_killed(&mut server);
    assert!(
        acked.len() >= 20 * BATCH,
        "only {} messages acknowledged before the kill",
        acked.len()
    );

    let restarted = spawn_server(args);
    let store = ciclo_store_postgres::PostgresStore::connect(db.url()).unwrap();
    assert_all_stored_once(&store, &write_key, &acked);
    assert_retries_are_duplicates(&restarted, &batches);
    drop(store);
    drop(restarted);
}
