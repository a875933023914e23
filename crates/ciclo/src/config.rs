//! Typed configuration, read in layers: built-in defaults < an optional TOML file (`--config` or
//! `CICLO_CONFIG`) < `CICLO_*` environment variables < command-line flags.
//!
//! Each layer is a [`ConfigLayer`] whose fields are all optional; [`Config::resolve`] stacks them
//! and fills the gaps with defaults. The database URL defaults to a SQLite file inside the data
//! directory, so moving the data directory (by any layer) moves the database with it.
//! The owner's password is a [`Secret`]: it never shows in `Debug` output or logs.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./ciclo-data";
pub const DEFAULT_OWNER_EMAIL: &str = "owner@ciclo.local";
pub const DEFAULT_LOG: &str = "info";
pub const DEFAULT_REFRESH_SECONDS: u64 = 120;
pub const DEFAULT_SCORES_SECONDS: u64 = 3600;
/// The SQLite file inside the data directory when no database URL is given.
pub const DEFAULT_DATABASE_FILE: &str = "ciclo.db";

/// A value that must not appear in logs: `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The resolved configuration every command runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address the HTTP server binds; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The URL people and SDKs reach ciclo at; `None` means `http://<bound address>`.
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    /// Owner of the first workspace, created on first start; also whose workspaces the CLI acts on.
    pub owner_email: String,
    /// The owner's password on first start; generated and printed once when absent.
    pub owner_password: Option<Secret>,
    /// A `tracing` filter (`info`, `ciclo_http=debug,info`).
    pub log: String,
    /// Seconds between re-evaluations of time-relative segments and lifecycle stages.
    pub refresh_seconds: u64,
    /// Seconds between recomputations of RFM and predicted CLV scores.
    pub scores_seconds: u64,
}

/// One layer of settings; `None` leaves the value to the layers below.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub owner_email: Option<String>,
    pub owner_password: Option<Secret>,
    pub log: Option<String>,
    pub refresh_seconds: Option<u64>,
    pub scores_seconds: Option<u64>,
}

impl ConfigLayer {
    /// Reads a TOML configuration file.
    pub fn from_toml(text: &str) -> anyhow::Result<ConfigLayer> {
        Ok(toml::from_str(text)?)
    }

    pub fn from_file(path: &Path) -> anyhow::Result<ConfigLayer> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        ConfigLayer::from_toml(&text)
            .with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Reads `CICLO_LISTEN`, `CICLO_PUBLIC_URL`, `CICLO_DATA_DIR`, `CICLO_DATABASE_URL`,
    /// `CICLO_OWNER_EMAIL`, `CICLO_OWNER_PASSWORD` and `CICLO_LOG` through `lookup` (the process
    /// environment in production, a map in tests). Empty values count as unset.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> ConfigLayer {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        ConfigLayer {
            listen: get("CICLO_LISTEN"),
            public_url: get("CICLO_PUBLIC_URL"),
            data_dir: get("CICLO_DATA_DIR").map(PathBuf::from),
            database_url: get("CICLO_DATABASE_URL"),
            owner_email: get("CICLO_OWNER_EMAIL"),
            owner_password: get("CICLO_OWNER_PASSWORD").map(Secret),
            log: get("CICLO_LOG"),
            refresh_seconds: get("CICLO_REFRESH_SECONDS").and_then(|v| v.trim().parse().ok()),
            scores_seconds: get("CICLO_SCORES_SECONDS").and_then(|v| v.trim().parse().ok()),
        }
    }

    /// This layer with every value of `upper` that is set laid over it.
    pub fn overlay(self, upper: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            listen: upper.listen.or(self.listen),
            public_url: upper.public_url.or(self.public_url),
            data_dir: upper.data_dir.or(self.data_dir),
            database_url: upper.database_url.or(self.database_url),
            owner_email: upper.owner_email.or(self.owner_email),
            owner_password: upper.owner_password.or(self.owner_password),
            log: upper.log.or(self.log),
            refresh_seconds: upper.refresh_seconds.or(self.refresh_seconds),
            scores_seconds: upper.scores_seconds.or(self.scores_seconds),
        }
    }
}

impl Config {
    /// Stacks `layers` (lowest first) over the defaults and validates the result.
    pub fn resolve(layers: impl IntoIterator<Item = ConfigLayer>) -> anyhow::Result<Config> {
        let merged = layers
            .into_iter()
            .fold(ConfigLayer::default(), ConfigLayer::overlay);
        let listen_text = merged.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text.trim().parse().with_context(|| {
            format!("listen: {listen_text:?} is not an address such as 127.0.0.1:8080")
        })?;
        let public_url = merged
            .public_url
            .map(|u| u.trim().trim_end_matches('/').to_string());
        if let Some(url) = &public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("public_url: {url:?} must start with http:// or https://");
            }
        }
        let data_dir = merged
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = merged
            .database_url
            .unwrap_or_else(|| default_database_url(&data_dir));
        ciclo_store::BackendKind::from_url(&database_url)
            .map_err(|e| anyhow::anyhow!("database_url: {e}"))?;
        let owner_email = merged
            .owner_email
            .unwrap_or_else(|| DEFAULT_OWNER_EMAIL.to_string())
            .trim()
            .to_lowercase();
        if !owner_email.contains('@') {
            bail!("owner_email: {owner_email:?} is not an email address");
        }
        let log = merged.log.unwrap_or_else(|| DEFAULT_LOG.to_string());
        let refresh_seconds = merged.refresh_seconds.unwrap_or(DEFAULT_REFRESH_SECONDS);
        if refresh_seconds == 0 {
            bail!("refresh_seconds: must be at least 1");
        }
        let scores_seconds = merged.scores_seconds.unwrap_or(DEFAULT_SCORES_SECONDS);
        if scores_seconds == 0 {
            bail!("scores_seconds: must be at least 1");
        }
        Ok(Config {
            refresh_seconds,
            scores_seconds,
            listen,
            public_url,
            data_dir,
            database_url,
            owner_email,
            owner_password: merged.owner_password,
            log,
        })
    }

    /// Defaults < file < environment < flags, reading the file named by `config_file`.
    pub fn load(
        config_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: ConfigLayer,
    ) -> anyhow::Result<Config> {
        let file = match config_file {
            Some(path) => ConfigLayer::from_file(path)?,
            None => ConfigLayer::default(),
        };
        Config::resolve([file, ConfigLayer::from_env(env), flags])
    }

    /// The URL to print and hand to the HTTP layer, given the address actually bound.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }
}

/// `sqlite://<data_dir>/ciclo.db`.
pub fn default_database_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}",
        data_dir.join(DEFAULT_DATABASE_FILE).display()
    )
}

/// The defaults as a commented TOML file (what `ciclo default-config` prints).
pub fn default_config_toml() -> String {
    format!(
        r#"# ciclo configuration.
#
# Settings are read in layers, each overriding the one before: these defaults, this file
# (--config FILE or CICLO_CONFIG=FILE), environment variables (CICLO_ + the name in capitals,
# e.g. CICLO_DATABASE_URL), then command-line flags (--database-url ...).

# Address the HTTP server listens on. Port 0 picks a free port.
listen = "{DEFAULT_LISTEN}"

# The URL people and SDKs reach ciclo at: used in links and to mark cookies Secure when it
# starts with https://. Default: http:// followed by the listen address.
# public_url = "https://crm.minhaloja.com.br"

# Directory for the embedded database and other local files.
data_dir = "{DEFAULT_DATA_DIR}"

# Where data lives: sqlite://PATH (embedded) or postgres://USER:PASSWORD@HOST/DB.
# Default: sqlite://<data_dir>/{DEFAULT_DATABASE_FILE}
# database_url = "postgres://ciclo:secret@localhost/ciclo"

# Owner of the first workspace, created on first start.
owner_email = "{DEFAULT_OWNER_EMAIL}"

# That owner's password (at least 10 characters). When unset, one is generated and printed
# once on first start. Prefer CICLO_OWNER_PASSWORD to writing it here.
# owner_password = "change-me-please"

# Log filter: a level (error, warn, info, debug, trace) or per-crate directives such as
# "ciclo_http=debug,info".
log = "{DEFAULT_LOG}"

# Seconds between re-evaluations of segments whose membership changes with time alone ("no
# order for 90 days", birthdays) and of lifecycle stages. Changes from events, imports and
# edits apply within about a second regardless.
refresh_seconds = {DEFAULT_REFRESH_SECONDS}

# Seconds between recomputations of RFM scores and predicted CLV (used by segments).
scores_seconds = {DEFAULT_SCORES_SECONDS}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_alone() {
        let c = Config::resolve([]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./ciclo-data"));
        assert_eq!(c.database_url, "sqlite://./ciclo-data/ciclo.db");
        assert_eq!(c.owner_email, "owner@ciclo.local");
        assert_eq!(c.owner_password, None);
        assert_eq!(c.public_url, None);
        assert_eq!(c.log, "info");
    }

    #[test]
    fn the_printed_default_config_parses_back_to_the_defaults() {
        let layer = ConfigLayer::from_toml(&default_config_toml()).unwrap();
        assert_eq!(
            Config::resolve([layer]).unwrap(),
            Config::resolve([]).unwrap()
        );
    }

    #[test]
    fn file_then_env_then_flags() {
        let file = ConfigLayer::from_toml(
            r#"listen = "0.0.0.0:9000"
               data_dir = "/var/lib/ciclo"
               owner_email = "Dona@Loja.com.br"
               log = "debug""#,
        )
        .unwrap();
        let environment = ConfigLayer::from_env(env(&[
            ("CICLO_LISTEN", "127.0.0.1:9001"),
            ("CICLO_OWNER_PASSWORD", "s3nha-muito-boa"),
            ("CICLO_PUBLIC_URL", ""),
        ]));
        let flags = ConfigLayer {
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        let c = Config::resolve([file, environment, flags]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/ciclo"));
        // The database follows the data directory unless named.
        assert_eq!(c.database_url, "sqlite:///var/lib/ciclo/ciclo.db");
        assert_eq!(c.owner_email, "dona@loja.com.br");
        assert_eq!(
            c.owner_password.as_ref().map(Secret::expose),
            Some("s3nha-muito-boa")
        );
        assert_eq!(c.public_url, None, "an empty variable counts as unset");
        assert_eq!(c.log, "debug");
    }

    #[test]
    fn database_url_from_env_beats_the_file_and_loses_to_the_flag() {
        let file = ConfigLayer {
            database_url: Some("sqlite://a.db".into()),
            ..Default::default()
        };
        let environment =
            ConfigLayer::from_env(env(&[("CICLO_DATABASE_URL", "postgres://localhost/ciclo")]));
        let c = Config::resolve([file.clone(), environment.clone()]).unwrap();
        assert_eq!(c.database_url, "postgres://localhost/ciclo");
        let flags = ConfigLayer {
            database_url: Some("sqlite://b.db".into()),
            ..Default::default()
        };
        assert_eq!(
            Config::resolve([file, environment, flags])
                .unwrap()
                .database_url,
            "sqlite://b.db"
        );
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let c = Config::resolve([ConfigLayer::from_env(env(&[(
            "CICLO_OWNER_PASSWORD",
            "hunter2-hunter2",
        )]))])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        assert_eq!(format!("{:?}", Secret("x".into())), "Secret([redacted])");
    }

    #[test]
    fn bad_values_are_refused_with_the_setting_named() {
        let bad = |layer: ConfigLayer| Config::resolve([layer]).unwrap_err().to_string();
        assert!(bad(ConfigLayer {
            listen: Some("localhost".into()),
            ..Default::default()
        })
        .starts_with("listen"));
        assert!(bad(ConfigLayer {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        })
        .starts_with("database_url"));
        assert!(bad(ConfigLayer {
            public_url: Some("crm.example.com".into()),
            ..Default::default()
        })
        .starts_with("public_url"));
        assert!(
            ConfigLayer::from_toml("listn = \"x\"").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn public_url_defaults_to_the_bound_address() {
        let c = Config::resolve([]).unwrap();
        assert_eq!(
            c.public_url_for("127.0.0.1:4321".parse().unwrap()),
            "http://127.0.0.1:4321"
        );
        let c = Config::resolve([ConfigLayer {
            public_url: Some("https://crm.loja.com.br/".into()),
            ..Default::default()
        }])
        .unwrap();
        assert_eq!(
            c.public_url_for("127.0.0.1:4321".parse().unwrap()),
            "https://crm.loja.com.br"
        );
    }
}
