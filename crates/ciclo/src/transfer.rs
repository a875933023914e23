//! `ciclo import` and `ciclo export`: CSV files in and out through the same use cases the
//! console uses, with a progress bar for imports and a report of rejected rows written next to
//! the input file (`FILE.rejected.csv`), each with the original row so it can be fixed and
//! imported again.

use anyhow::Context;
use ciclo_core::accounts::Actor;
use ciclo_core::import::{ColumnMapping, ImportKind};
use ciclo_core::Ciclo;
use ciclo_store::{CustomerQuery, ImportRun, RejectedRow};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Parses one `--mapping HEADER=FIELD` pair.
pub fn parse_mapping_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((header, field)) if !header.trim().is_empty() && !field.trim().is_empty() => {
            Ok((header.trim().to_string(), field.trim().to_string()))
        }
        _ => Err(format!(
            "{raw:?} is not HEADER=FIELD (e.g. \"Celular=whatsapp\")"
        )),
    }
}

pub fn import(
    app: &Ciclo,
    actor: &Actor,
    kind: ImportKind,
    file: &Path,
    mapping: Vec<(String, String)>,
) -> anyhow::Result<()> {
    let rows = count_data_lines(file)?;
    let mapping = ColumnMapping(mapping.into_iter().collect::<BTreeMap<_, _>>());
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    let bar = ProgressBar::new(rows);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} importing {msg} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(file_name.clone());
    let result = app.import_csv(
        actor,
        kind,
        &file_name,
        BufReader::new(input),
        &mapping,
        &mut |done| bar.set_position(done),
    );
    bar.finish_and_clear();
    let run = result.map_err(|e| crate::app::explain(e).context("import failed"))?;

    println!("{}", summary(&run, kind));
    let report_path = rejected_report_path(file);
    if run.rejected.is_empty() {
        if report_path.exists() {
            std::fs::remove_file(&report_path).ok();
        }
    } else {
        write_rejected_report(file, &report_path, &run.rejected)?;
        println!(
            "rejected rows, with the reason for each, written to {}",
            report_path.display()
        );
    }
    Ok(())
}

pub fn export(
    app: &Ciclo,
    actor: &Actor,
    kind: ImportKind,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let written = match kind {
        ImportKind::Customers => app.export_customers_csv(
            actor,
            CustomerQuery {
                limit: 1000,
                ..Default::default()
            },
            &mut sink,
        ),
        ImportKind::Orders => app.export_orders_csv(actor, &mut sink),
    }
    .map_err(|e| crate::app::explain(e).context("export failed"))?;
    sink.flush()?;
    drop(sink);
    let what = match kind {
        ImportKind::Customers => "customers",
        ImportKind::Orders => "order lines",
    };
    match out {
        Some(path) => eprintln!("exported {written} {what} to {}", path.display()),
        None => eprintln!("exported {written} {what}"),
    }
    Ok(())
}

fn summary(run: &ImportRun, kind: ImportKind) -> String {
    let what = match kind {
        ImportKind::Customers => "customers",
        ImportKind::Orders => "orders",
    };
    format!(
        "imported {} ({what}, import {}): {} rows read, {} created, {} updated, {} unchanged, {} rejected",
        run.file_name, run.id, run.rows_total, run.rows_created, run.rows_updated, run.rows_unchanged, run.rows_rejected
    )
}

/// Lines after the header (an estimate when quoted fields span lines; only sizes the bar).
fn count_data_lines(file: &Path) -> anyhow::Result<u64> {
    let reader = BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let mut lines = 0u64;
    for line in reader.split(b'\n') {
        if !line?.iter().all(u8::is_ascii_whitespace) {
            lines += 1;
        }
    }
    Ok(lines.saturating_sub(1))
}

/// `clientes.csv` → `clientes.csv.rejected.csv`, beside it.
pub fn rejected_report_path(file: &Path) -> PathBuf {
    let mut name = file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".rejected.csv");
    file.with_file_name(name)
}

/// Writes `line,code,field,reason` followed by the rejected row's original columns.
fn write_rejected_report(
    input: &Path,
    report: &Path,
    rejected: &[RejectedRow],
) -> anyhow::Result<()> {
    let (headers, rows_by_line) = original_rows(input, rejected).unwrap_or_default();
    let mut out = csv::Writer::from_path(report)
        .with_context(|| format!("cannot write {}", report.display()))?;
    let mut header = vec![
        "line".to_string(),
        "code".into(),
        "field".into(),
        "reason".into(),
    ];
    header.extend(headers);
    out.write_record(&header)?;
    for row in rejected {
        let mut record = vec![
            row.line.to_string(),
            row.code.clone(),
            row.field.clone(),
            row.reason.clone(),
        ];
        if let Some(original) = rows_by_line.get(&row.line) {
            record.extend(original.iter().cloned());
        }
        out.write_record(&record)?;
    }
    out.flush()?;
    Ok(())
}

/// The header and the records starting on the rejected lines (the header is line 1).
/// A CSV header and records by the line they start on.
type OriginalRows = (Vec<String>, BTreeMap<u64, Vec<String>>);

fn original_rows(input: &Path, rejected: &[RejectedRow]) -> anyhow::Result<OriginalRows> {
    let wanted: std::collections::BTreeSet<u64> = rejected.iter().map(|r| r.line).collect();
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(input)?;
    let headers = reader.headers()?.iter().map(str::to_string).collect();
    let mut rows = BTreeMap::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let line = record.position().map_or(0, |p| p.line());
        if wanted.contains(&line) {
            rows.insert(line, record.iter().map(str::to_string).collect());
        }
    }
    Ok((headers, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_pairs() {
        assert_eq!(
            parse_mapping_pair("Celular = whatsapp").unwrap(),
            ("Celular".into(), "whatsapp".into())
        );
        assert_eq!(
            parse_mapping_pair("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_mapping_pair("Celular").is_err());
        assert!(parse_mapping_pair("=email").is_err());
    }

    #[test]
    fn the_report_sits_beside_the_input() {
        assert_eq!(
            rejected_report_path(Path::new("/tmp/x/clientes.csv")),
            PathBuf::from("/tmp/x/clientes.csv.rejected.csv")
        );
    }

    #[test]
    fn rejected_rows_carry_the_original_columns() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("c.csv");
        std::fs::write(
            &input,
            "nome,email\nAna,ana@x.com.br\nBia,nao-e-email\n\"Caio\nSilva\",c@x.com\n",
        )
        .unwrap();
        assert_eq!(
            count_data_lines(&input).unwrap(),
            4,
            "an estimate: the quoted line break counts"
        );
        let report = rejected_report_path(&input);
        let rejected = vec![RejectedRow {
            line: 3,
            code: "invalid_email".into(),
            field: "email".into(),
            reason: "bad".into(),
        }];
        write_rejected_report(&input, &report, &rejected).unwrap();
        let text = std::fs::read_to_string(&report).unwrap();
        assert_eq!(
            text,
            "line,code,field,reason,nome,email\n3,invalid_email,email,bad,Bia,nao-e-email\n"
        );
    }
}
