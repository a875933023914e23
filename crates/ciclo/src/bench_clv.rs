//! `ciclo bench clv`: how fast ciclo fits the CLV models on the CDNOW data set, and whether it
//! finds the same estimates as the Python package lifetimes on the same machine.
//!
//! It reads the two CDNOW customer summaries that ciclo's domain tests ship
//! (`crates/ciclo-domain/tests/fixtures/cdnow_customers_summary*.csv`, or the folder given by
//! `--data`), fits BG/NBD on the 2,357 customers and Gamma-Gamma on the 946 with repeat
//! purchases `--repeat` times each, and prints the median fit time and the parameters next to
//! the published estimates (Fader, Hardie & Lee 2005).
//!
//! When `python3 scripts/clv_compare.py --json` runs (lifetimes installed), the same command
//! prints lifetimes' numbers beside ciclo's, the speed-up, and whether every estimate agrees to
//! three decimals. The script reports lifetimes' fastest run and ciclo reports its median, so
//! the speed-up is, if anything, understated. Without lifetimes it says how to install it and
//! prints ciclo's numbers alone. Either way the run ends with a Markdown row for BENCHMARKS.md.

use anyhow::{bail, Context};
use ciclo_domain::analytics::{
    fit_bgnbd_detailed, fit_gamma_gamma_detailed, BgNbdFit, FitOptions, GammaGammaFit, RfmSummary,
    SpendSummary,
};
use clap::Args;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Where the fixtures live, relative to the repository root.
const FIXTURES: &str = "crates/ciclo-domain/tests/fixtures";
const SUMMARY: &str = "cdnow_customers_summary.csv";
const WITH_SPEND: &str = "cdnow_customers_summary_with_transactions.csv";
/// The comparison script, relative to the repository root.
const SCRIPT: &str = "scripts/clv_compare.py";

/// Fader, Hardie & Lee (2005): BG/NBD (r, α, a, b) and the Gamma-Gamma estimates (p, q, γ).
const PUBLISHED_BGNBD: [f64; 4] = [0.243, 4.414, 0.793, 2.426];
const PUBLISHED_GAMMA_GAMMA: [f64; 3] = [6.25, 3.74, 15.44];

#[derive(Debug, Args)]
pub struct ClvArgs {
    /// Folder with the CDNOW summary CSV files [default: crates/ciclo-domain/tests/fixtures of
    /// this repository].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Fits of each model; the median time is reported.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Fits lifetimes runs (it is slow; its fastest run is reported).
    #[arg(long, default_value_t = 3)]
    lifetimes_repeat: usize,
    /// The Python interpreter that has lifetimes (a virtualenv's, say).
    #[arg(
        long,
        env = "CICLO_BENCH_PYTHON",
        default_value = "python3",
        value_name = "PATH"
    )]
    python: String,
    /// Do not run lifetimes, only ciclo.
    #[arg(long)]
    no_compare: bool,
}

/// What ciclo measured.
struct CicloRun {
    customers: usize,
    repeat_customers: usize,
    bgnbd: BgNbdFit,
    gamma_gamma: GammaGammaFit,
    bgnbd_ms: f64,
    gamma_gamma_ms: f64,
}

/// What `clv_compare.py --json` prints (the fields used here).
#[derive(Debug, Deserialize)]
struct LifetimesRun {
    lifetimes_version: String,
    bgnbd: LifetimesBgNbd,
    bgnbd_fit_ms: f64,
    gamma_gamma: LifetimesGammaGamma,
    gamma_gamma_fit_ms: f64,
}

#[derive(Debug, Deserialize)]
struct LifetimesBgNbd {
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
}

#[derive(Debug, Deserialize)]
struct LifetimesGammaGamma {
    p: f64,
    q: f64,
    gamma: f64,
}

/// The repository root: the first folder, from here upwards, that holds the fixtures; else the
/// one this binary was built from.
fn repository_root() -> Option<PathBuf> {
    let here = std::env::current_dir().ok()?;
    if let Some(found) = here
        .ancestors()
        .find(|dir| dir.join(FIXTURES).join(SUMMARY).is_file())
    {
        return Some(found.to_path_buf());
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    built_from
        .join(FIXTURES)
        .join(SUMMARY)
        .is_file()
        .then_some(built_from)
}

fn read_csv(path: &Path) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: line {}", path.display(), line + 2))?;
        let fields = record
            .iter()
            .map(|f| f.trim().parse::<f64>())
            .collect::<Result<Vec<f64>, _>>()
            .with_context(|| format!("{}: line {} is not all numbers", path.display(), line + 2))?;
        rows.push(fields);
    }
    Ok(rows)
}

/// (x, t_x, T) per customer, and (x, mean repeat spend) per customer with repeat purchases.
fn load(data: &Path) -> anyhow::Result<(Vec<RfmSummary>, Vec<SpendSummary>)> {
    let mut summaries = Vec::new();
    for (i, row) in read_csv(&data.join(SUMMARY))?.iter().enumerate() {
        let [_, x, t_x, big_t, ..] = row.as_slice() else {
            bail!("{SUMMARY}: row {} has fewer than 4 columns", i + 1);
        };
        summaries.push(
            RfmSummary::new(*x as u32, *t_x, *big_t)
                .with_context(|| format!("{SUMMARY}: row {}", i + 1))?,
        );
    }
    let mut spends = Vec::new();
    for (i, row) in read_csv(&data.join(WITH_SPEND))?.iter().enumerate() {
        let [_, x, _, _, zbar, ..] = row.as_slice() else {
            bail!("{WITH_SPEND}: row {} has fewer than 5 columns", i + 1);
        };
        if *x > 0.0 {
            spends.push(SpendSummary {
                frequency: *x as u32,
                average_spend: *zbar,
            });
        }
    }
    Ok((summaries, spends))
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    }
}

/// Runs `fit` `repeat` times; the last result and the median time in milliseconds.
fn timed<T>(repeat: usize, mut fit: impl FnMut() -> T) -> (T, f64) {
    let mut times = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        last = Some(fit());
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    (last.expect("at least one run"), median(times))
}

fn run_ciclo(data: &Path, repeat: usize) -> anyhow::Result<CicloRun> {
    let (summaries, spends) = load(data)?;
    let options = FitOptions::default();
    let (bgnbd, bgnbd_ms) = timed(repeat, || fit_bgnbd_detailed(&summaries, &options));
    let (gamma_gamma, gamma_gamma_ms) =
        timed(repeat, || fit_gamma_gamma_detailed(&spends, &options));
    Ok(CicloRun {
        customers: summaries.len(),
        repeat_customers: spends.len(),
        bgnbd: bgnbd.context("BG/NBD could not be fitted")?,
        gamma_gamma: gamma_gamma.context("Gamma-Gamma could not be fitted")?,
        bgnbd_ms,
        gamma_gamma_ms,
    })
}

/// Runs the comparison script; `Err` says why there is no comparison.
fn run_lifetimes(
    python: &str,
    script: &Path,
    data: &Path,
    repeat: usize,
) -> Result<LifetimesRun, String> {
    let output = Command::new(python)
        .arg(script)
        .arg("--json")
        .arg("--data")
        .arg(data)
        .arg("--repeat")
        .arg(repeat.max(1).to_string())
        .output()
        .map_err(|e| format!("{python} could not be started ({e})"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or_default().trim().to_string();
        return Err(
            if last.contains("lifetimes") || last.contains("No module") {
                format!("lifetimes is not installed for {python}")
            } else {
                format!("{} failed: {last}", script.display())
            },
        );
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{} printed something else than JSON ({e})",
            script.display()
        )
    })
}

/// Whether two estimates agree to three decimals.
fn agree(a: f64, b: f64) -> bool {
    (a - b).abs() < 5e-4
}

fn today() -> String {
    ciclo_core::Clock::now(&ciclo_core::SystemClock)
        .format("%Y-%m-%d")
        .to_string()
}

pub fn run(args: ClvArgs) -> anyhow::Result<()> {
    let root = repository_root();
    let data = match (&args.data, &root) {
        (Some(dir), _) => dir.clone(),
        (None, Some(root)) => root.join(FIXTURES),
        (None, None) => bail!(
            "the CDNOW fixtures were not found from here; run from the repository or pass --data DIR"
        ),
    };
    let ciclo = run_ciclo(&data, args.repeat)?;
    let b = ciclo.bgnbd.params;
    let g = ciclo.gamma_gamma.params;
    let ciclo_bgnbd = [b.r, b.alpha, b.a, b.b];
    let ciclo_gamma_gamma = [g.p, g.q, g.gamma];
    println!(
        "CDNOW: {} customers, {} with repeat purchases ({})",
        ciclo.customers,
        ciclo.repeat_customers,
        data.display()
    );
    println!(
        "ciclo: median of {} fits; BG/NBD {} in {} iterations, Gamma-Gamma {} in {}",
        args.repeat.max(1),
        if ciclo.bgnbd.converged {
            "converged"
        } else {
            "NOT converged"
        },
        ciclo.bgnbd.iterations,
        if ciclo.gamma_gamma.converged {
            "converged"
        } else {
            "NOT converged"
        },
        ciclo.gamma_gamma.iterations,
    );

    let comparison = if args.no_compare {
        Err("not run (--no-compare)".to_string())
    } else {
        match &root {
            Some(root) => run_lifetimes(
                &args.python,
                &root.join(SCRIPT),
                &data,
                args.lifetimes_repeat,
            ),
            None => Err(format!("{SCRIPT} was not found")),
        }
    };

    let names_bgnbd = ["r", "alpha", "a", "b"];
    let names_gamma_gamma = ["p", "q", "gamma"];
    match &comparison {
        Ok(lt) => {
            let lt_bgnbd = [lt.bgnbd.r, lt.bgnbd.alpha, lt.bgnbd.a, lt.bgnbd.b];
            let lt_gamma_gamma = [lt.gamma_gamma.p, lt.gamma_gamma.q, lt.gamma_gamma.gamma];
            println!(
                "lifetimes {}: fastest of {} fits",
                lt.lifetimes_version,
                args.lifetimes_repeat.max(1)
            );
            println!();
            println!(
                "{:<12} {:<6} {:>12} {:>12} {:>10} {:>7}",
                "model", "param", "ciclo", "lifetimes", "published", "agree"
            );
            let rows = names_bgnbd
                .iter()
                .zip(ciclo_bgnbd.iter().zip(&lt_bgnbd).zip(PUBLISHED_BGNBD))
                .map(|(n, ((c, l), p))| ("BG/NBD", *n, *c, *l, p))
                .chain(
                    names_gamma_gamma
                        .iter()
                        .zip(
                            ciclo_gamma_gamma
                                .iter()
                                .zip(&lt_gamma_gamma)
                                .zip(PUBLISHED_GAMMA_GAMMA),
                        )
                        .map(|(n, ((c, l), p))| ("Gamma-Gamma", *n, *c, *l, p)),
                );
            let mut all_agree = true;
            for (model, name, c, l, p) in rows {
                let same = agree(c, l);
                all_agree &= same;
                println!(
                    "{model:<12} {name:<6} {c:>12.6} {l:>12.6} {p:>10} {:>7}",
                    if same { "yes" } else { "NO" }
                );
            }
            let ciclo_total = ciclo.bgnbd_ms + ciclo.gamma_gamma_ms;
            let lt_total = lt.bgnbd_fit_ms + lt.gamma_gamma_fit_ms;
            let speedup = |l: f64, c: f64| if c > 0.0 { l / c } else { f64::INFINITY };
            println!();
            println!(
                "{:<12} {:>12} {:>12} {:>10}",
                "fit time", "ciclo", "lifetimes", "speed-up"
            );
            for (model, c, l) in [
                ("BG/NBD", ciclo.bgnbd_ms, lt.bgnbd_fit_ms),
                ("Gamma-Gamma", ciclo.gamma_gamma_ms, lt.gamma_gamma_fit_ms),
                ("both", ciclo_total, lt_total),
            ] {
                println!(
                    "{model:<12} {:>9.2} ms {:>9.2} ms {:>9.1}×",
                    c,
                    l,
                    speedup(l, c)
                );
            }
            println!();
            println!(
                "estimates agree to 3 decimals: {}",
                if all_agree { "yes" } else { "NO" }
            );
            println!();
            println!("| date | bench | data | ciclo BG/NBD / Gamma-Gamma (median) | lifetimes BG/NBD / Gamma-Gamma (fastest) | speed-up | estimates (r, α, a, b; p, q, γ) | agree to 3 decimals |");
            println!("|---|---|---|---|---|---|---|---|");
            println!(
                "| {} | clv | CDNOW, {} customers ({} repeat) | {:.2} / {:.2} ms | {:.1} / {:.1} ms (lifetimes {}) | {:.0}× | {}; {} | {} |",
                today(),
                thousands(ciclo.customers),
                ciclo.repeat_customers,
                ciclo.bgnbd_ms,
                ciclo.gamma_gamma_ms,
                lt.bgnbd_fit_ms,
                lt.gamma_gamma_fit_ms,
                lt.lifetimes_version,
                speedup(lt_total, ciclo_total),
                three_decimals(&ciclo_bgnbd),
                three_decimals(&ciclo_gamma_gamma),
                if all_agree { "yes" } else { "no" },
            );
        }
        Err(reason) => {
            if !args.no_compare {
                println!(
                    "{reason}: showing ciclo's numbers only. To compare, pip install lifetimes==0.11.3 \
                     (or point --python or CICLO_BENCH_PYTHON at a virtualenv's interpreter that has it)."
                );
            }
            println!();
            println!(
                "{:<12} {:<6} {:>12} {:>10}",
                "model", "param", "ciclo", "published"
            );
            for (name, c, p) in names_bgnbd
                .iter()
                .zip(ciclo_bgnbd)
                .zip(PUBLISHED_BGNBD)
                .map(|((n, c), p)| (n, c, p))
            {
                println!("{:<12} {name:<6} {c:>12.6} {p:>10}", "BG/NBD");
            }
            for (name, c, p) in names_gamma_gamma
                .iter()
                .zip(ciclo_gamma_gamma)
                .zip(PUBLISHED_GAMMA_GAMMA)
                .map(|((n, c), p)| (n, c, p))
            {
                println!("{:<12} {name:<6} {c:>12.6} {p:>10}", "Gamma-Gamma");
            }
            println!();
            println!(
                "fit time (median): BG/NBD {:.2} ms, Gamma-Gamma {:.2} ms",
                ciclo.bgnbd_ms, ciclo.gamma_gamma_ms
            );
            println!();
            println!("| date | bench | data | ciclo BG/NBD / Gamma-Gamma (median) | lifetimes | speed-up | estimates (r, α, a, b; p, q, γ) | agree to 3 decimals |");
            println!("|---|---|---|---|---|---|---|---|");
            println!(
                "| {} | clv | CDNOW, {} customers ({} repeat) | {:.2} / {:.2} ms | not run ({}) | — | {}; {} | — |",
                today(),
                thousands(ciclo.customers),
                ciclo.repeat_customers,
                ciclo.bgnbd_ms,
                ciclo.gamma_gamma_ms,
                if args.no_compare { "--no-compare" } else { "not installed" },
                three_decimals(&ciclo_bgnbd),
                three_decimals(&ciclo_gamma_gamma),
            );
        }
    }
    Ok(())
}

fn three_decimals(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_agreement() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(agree(0.24259, 0.2426));
        assert!(!agree(0.2426, 0.2436));
        assert_eq!(thousands(2357), "2,357");
        assert_eq!(three_decimals(&[0.24259, 4.4136]), "0.243, 4.414");
    }

    #[test]
    fn the_fixtures_load_and_fit_to_the_published_estimates() {
        let data = repository_root()
            .expect("run inside the repository")
            .join(FIXTURES);
        let run = run_ciclo(&data, 1).unwrap();
        assert_eq!((run.customers, run.repeat_customers), (2357, 946));
        let b = run.bgnbd.params;
        assert_eq!(
            three_decimals(&[b.r, b.alpha, b.a, b.b]),
            "0.243, 4.414, 0.793, 2.426"
        );
        let g = run.gamma_gamma.params;
        assert!(
            (g.p - 6.25).abs() < 0.01
                && (g.q - 3.74).abs() < 0.01
                && (g.gamma - 15.44).abs() < 0.05
        );
    }
}
