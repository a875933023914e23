//! One-shot commands: `default-config`, `migrate`, `demo`, `import`, `export`.

use crate::support::{run_ciclo, run_ciclo_ok, serve_args, spawn_server};

#[test]
fn default_config_prints_the_documented_defaults_as_toml() {
    let text = run_ciclo_ok(["default-config"]);
    let parsed: toml::Table = toml::from_str(&text).expect("valid TOML");
    assert_eq!(parsed["listen"].as_str(), Some("127.0.0.1:8080"));
    assert_eq!(parsed["data_dir"].as_str(), Some("./ciclo-data"));
    assert_eq!(parsed["owner_email"].as_str(), Some("owner@ciclo.local"));
    for documented in ["database_url", "public_url", "owner_password", "CICLO_"] {
        assert!(
            text.contains(documented),
            "{documented} is documented:\n{text}"
        );
    }
}

#[test]
fn a_config_file_is_read_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ciclo.toml");
    let data = dir.path().join("dados");
    std::fs::write(
        &file,
        format!("data_dir = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    run_ciclo_ok(["migrate", "--config", file.to_str().unwrap()]);
    assert!(
        data.join("ciclo.db").exists(),
        "the file's data_dir was used"
    );

    std::fs::write(&file, "dta_dir = \"x\"\n").unwrap();
    let output = run_ciclo(["migrate", "--config", file.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("dta_dir"),
        "{output:?}"
    );
}

#[test]
fn demo_data_loads_through_ingestion_and_a_second_load_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let mut server = spawn_server(serve_args(dir.path()));
    server.kill(); // only needed to create the workspace

    let first = run_ciclo_ok(["demo", "--customers", "40", "--data-dir", &data_dir]);
    let stored = number_before(&first, " stored");
    assert!(stored > 400, "{first}");
    assert_eq!(number_before(&first, " rejected"), 0, "{first}");

    let second = run_ciclo_ok(["demo", "--customers", "40", "--data-dir", &data_dir]);
    assert_eq!(number_before(&second, " stored"), 0, "{second}");
    assert_eq!(number_before(&second, " already there"), stored, "{second}");
}

#[test]
fn customers_import_reports_rejected_rows_beside_the_file_and_export_writes_csv() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let server = spawn_server(serve_args(std::path::Path::new(&data_dir)));

    let csv = dir.path().join("clientes.csv");
    std::fs::write(
        &csv,
        "Nome,E-mail,Celular,Cidade\n\
         Maria Oliveira,maria.oliveira@example.com.br,(21) 99876-5432,Rio de Janeiro\n\
         João Santos,joao.santos@example.com.br,+5531988887777,Belo Horizonte\n\
         Sem Email,isto-nao-e-email,,Recife\n",
    )
    .unwrap();
    // Imports run next to a live server: SQLite in WAL mode takes both.
    let out = run_ciclo_ok([
        "import",
        "customers",
        csv.to_str().unwrap(),
        "--mapping",
        "Celular=whatsapp",
        "--data-dir",
        &data_dir,
    ]);
    assert!(out.contains("2 created"), "{out}");
    assert!(out.contains("1 rejected"), "{out}");
    let report = dir.path().join("clientes.csv.rejected.csv");
    assert!(
        out.contains(&report.display().to_string()),
        "says where the report is: {out}"
    );
    let report_text = std::fs::read_to_string(&report).unwrap();
    assert!(
        report_text.starts_with("line,code,field,reason,Nome,E-mail,Celular,Cidade\n"),
        "{report_text}"
    );
    assert!(
        report_text.contains("4,") && report_text.contains("isto-nao-e-email"),
        "{report_text}"
    );

    // Importing the same file again changes nothing.
    let again = run_ciclo_ok([
        "import",
        "customers",
        csv.to_str().unwrap(),
        "--mapping",
        "Celular=whatsapp",
        "--data-dir",
        &data_dir,
    ]);
    assert!(again.contains("0 created"), "{again}");

    let exported = dir.path().join("export.csv");
    run_ciclo_ok([
        "export",
        "customers",
        "--out",
        exported.to_str().unwrap(),
        "--data-dir",
        &data_dir,
    ]);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(
        text.contains("maria.oliveira@example.com.br") && text.contains("+5521998765432"),
        "{text}"
    );
    assert_eq!(
        text.lines().count(),
        3,
        "a header and two customers:\n{text}"
    );

    // What the CLI imported is what the API shows.
    let admin = server.admin();
    let (status, page) = admin.get("/api/v1/customers?search=joao.santos");
    assert_eq!(status, 200);
    assert_eq!(page["items"][0]["city"], "Belo Horizonte", "{page}");
}

#[test]
fn commands_that_need_a_workspace_say_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_ciclo([
        "export",
        "customers",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ciclo serve"), "{stderr}");
}

/// The number just before `suffix` in `text` (`"12 stored"` → 12).
fn number_before(text: &str, suffix: &str) -> usize {
    let end = text
        .find(suffix)
        .unwrap_or_else(|| panic!("no {suffix:?} in {text}"));
    let start = text[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    text[start..end]
        .parse()
        .unwrap_or_else(|_| panic!("no number before {suffix:?} in {text}"))
}
