//! `ciclo bench`: a small run end to end (server in process, load generator in a child process),
//! so the benchmark keeps working; the numbers themselves are not checked.

use crate::support::run_ciclo_ok;

#[test]
fn bench_read_ingests_then_reads_and_prints_markdown_rows() {
    let out = run_ciclo_ok([
        "bench",
        "read",
        "--events",
        "2000",
        "--batch",
        "250",
        "--connections",
        "2",
        "--customers",
        "100",
        "--requests",
        "30",
        "--readers",
        "2",
        "--log",
        "warn",
    ]);
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| 20")).collect();
    assert_eq!(
        rows.len(),
        3,
        "an ingest row, an API read row and a console read row:\n{out}"
    );
    assert!(
        rows[0].contains(
            "| ingest | sqlite | 2,000 events, batch 250, 2 connections, 100 customers |"
        ),
        "{out}"
    );
    assert!(rows[1].contains("| read | sqlite |"), "{out}");
    assert!(rows[2].contains("| read | sqlite |"), "{out}");
    assert!(
        !rows[2].contains("| 0.0 / 0.0 ms"),
        "console pages were timed: {out}"
    );
    assert!(rows[0].contains(" MB |"), "peak RSS is reported: {out}");
}
