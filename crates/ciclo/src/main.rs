//! `ciclo`: the one binary that runs the customer relationship platform, and its command line.
//!
//! This crate is the composition root: it reads the configuration, opens the backend the
//! database URL names, builds the application from `ciclo-core` and hands it to `ciclo-http`.
//! Commands: `serve`, `migrate`, `demo`, `import`, `export`, `bench`, `default-config`.

mod app;
mod bench;
mod bench_clv;
mod bench_segments;
mod config;
mod demo;
mod serve;
mod transfer;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use config::{Config, ConfigLayer};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ciclo",
    version,
    about = "ciclo: customer relationships in one binary",
    propagate_version = true
)]
struct Cli {
    /// A TOML configuration file (see `ciclo default-config`).
    #[arg(long, global = true, env = "CICLO_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the embedded database and local files [default: ./ciclo-data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER:PASSWORD@HOST/DB [default: sqlite://<data-dir>/ciclo.db].
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Log filter, such as `info` or `ciclo_http=debug,info`.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (API, ingestion, console). Creates the first workspace on first start.
    Serve(ServeArgs),
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Load the demo data set (a Brazilian shop) into the owner's workspace.
    Demo(DemoArgs),
    /// Import customers or orders from a CSV file.
    Import(ImportArgs),
    /// Export customers or orders as CSV.
    Export(ExportArgs),
    /// Measure ingestion and read performance.
    Bench(bench::BenchArgs),
    /// Print the default configuration as a commented TOML file.
    DefaultConfig,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The URL people and SDKs reach this server at [default: http://<listen address>].
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Email of the first workspace's owner [default: owner@ciclo.local].
    #[arg(long, value_name = "EMAIL")]
    owner_email: Option<String>,
    /// Load the demo data set on start (skipped when the workspace already has customers).
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Seed of the generator: the same seed gives the same data (and loading it twice adds nothing).
    #[arg(long, default_value_t = demo::DEFAULT_SEED)]
    seed: u64,
    /// How many customers to make.
    #[arg(long, default_value_t = demo::DEFAULT_CUSTOMERS)]
    customers: usize,
    /// The workspace to load into [default: the owner's first workspace].
    #[arg(long, value_name = "ID")]
    workspace: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    Customers,
    Orders,
}

impl From<KindArg> for ciclo_core::import::ImportKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Customers => ciclo_core::import::ImportKind::Customers,
            KindArg::Orders => ciclo_core::import::ImportKind::Orders,
        }
    }
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// What the file holds.
    kind: KindArg,
    /// The CSV file (UTF-8, header on the first line).
    file: PathBuf,
    /// Which column feeds which field, as HEADER=FIELD (repeatable; e.g. `--mapping "Celular=whatsapp"`).
    /// Columns not named are matched by header (`email`, `telefone`, `nome`, `cidade`...).
    #[arg(long = "mapping", value_name = "HEADER=FIELD", value_parser = transfer::parse_mapping_pair, num_args = 1..)]
    mapping: Vec<(String, String)>,
    /// The workspace to import into [default: the owner's first workspace].
    #[arg(long, value_name = "ID")]
    workspace: Option<String>,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// What to export.
    kind: KindArg,
    /// File to write [default: standard output].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The workspace to export [default: the owner's first workspace].
    #[arg(long, value_name = "ID")]
    workspace: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::DefaultConfig = cli.command {
        print!("{}", config::default_config_toml());
        return Ok(());
    }
    let mut flags = ConfigLayer {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        log: cli.log.clone(),
        ..Default::default()
    };
    if let Command::Serve(args) = &cli.command {
        flags.listen = args.listen.clone();
        flags.public_url = args.public_url.clone();
        flags.owner_email = args.owner_email.clone();
    }
    let config = Config::load(
        cli.config.as_deref(),
        |name| std::env::var(name).ok(),
        flags,
    )?;
    init_logging(&config.log)?;
    tracing::debug!(?config, "configuration");
    match cli.command {
        Command::Serve(args) => serve::serve(&config, args.demo),
        Command::Migrate => {
            app::open_store(&config.database_url)?;
            println!(
                "database {} is up to date",
                app::redact_url(&config.database_url)
            );
            Ok(())
        }
        Command::Demo(args) => {
            let app = app::open_app(&config.database_url)?;
            let actor = app::cli_actor(&app, &config.owner_email, args.workspace.as_deref())?;
            let options = demo::DemoOptions {
                seed: args.seed,
                customers: args.customers,
                now: app.clock.now(),
            };
            let report = demo::load(&app, &actor.workspace, &options, true)?;
            println!("{report}");
            Ok(())
        }
        Command::Import(args) => {
            let app = app::open_app(&config.database_url)?;
            let actor = app::cli_actor(&app, &config.owner_email, args.workspace.as_deref())?;
            transfer::import(&app, &actor, args.kind.into(), &args.file, args.mapping)
        }
        Command::Export(args) => {
            let app = app::open_app(&config.database_url)?;
            let actor = app::cli_actor(&app, &config.owner_email, args.workspace.as_deref())?;
            transfer::export(&app, &actor, args.kind.into(), args.out.as_deref())
        }
        Command::Bench(args) => bench::run(args, cli.database_url.as_deref()),
        Command::DefaultConfig => unreachable!("handled above"),
    }
}

/// Logs go to standard error so that standard output stays for what commands print.
fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("log: invalid filter {filter:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn import_takes_several_mappings() {
        let cli = Cli::parse_from([
            "ciclo",
            "import",
            "customers",
            "c.csv",
            "--mapping",
            "Celular=whatsapp",
            "Nome=name",
        ]);
        let Command::Import(args) = cli.command else {
            panic!("not import")
        };
        assert_eq!(
            args.mapping,
            vec![
                ("Celular".into(), "whatsapp".into()),
                ("Nome".into(), "name".into())
            ]
        );
    }

    #[test]
    fn global_flags_go_after_the_command_too() {
        let cli = Cli::parse_from([
            "ciclo",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "sqlite://x.db",
            "--demo",
        ]);
        assert_eq!(cli.database_url.as_deref(), Some("sqlite://x.db"));
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert!(args.demo);
        assert_eq!(args.listen.as_deref(), Some("127.0.0.1:0"));
    }
}
