//! Wiring: opens the backend a database URL names, brings its schema up to date and builds the
//! [`Ciclo`] application over it, plus the [`Actor`] the command line acts as.
//!
//! This is the only place that names a concrete backend (the composition root); everything
//! past it sees `Arc<dyn Store>`.

use anyhow::{bail, Context};
use ciclo_core::accounts::Actor;
use ciclo_core::{Ciclo, CoreError, SystemClock, SystemRandom};
use ciclo_domain::ids::WorkspaceId;
use ciclo_domain::operator::{Role, Workspace};
use ciclo_store::{BackendKind, Store};
use std::path::Path;
use std::sync::Arc;

/// Opens the database `database_url` names and runs its migrations.
///
/// Must be called outside an async runtime: the stores are blocking (the PostgreSQL client
/// may run a runtime of its own).
pub fn open_store(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let kind = BackendKind::from_url(database_url).map_err(|e| anyhow::anyhow!(e))?;
    let store: Arc<dyn Store> = match kind {
        BackendKind::Sqlite(path) => {
            if !path.starts_with(':') && !path.is_empty() {
                if let Some(parent) = Path::new(&path)
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(parent).with_context(|| {
                        format!("cannot create the directory {}", parent.display())
                    })?;
                }
            }
            let store = ciclo_store_sqlite::SqliteStore::open(&path)
                .with_context(|| format!("cannot open the SQLite database {path}"))?;
            Arc::new(store)
        }
        BackendKind::Postgres(url) => {
            let store = ciclo_store_postgres::PostgresStore::connect(&url)
                .with_context(|| format!("cannot connect to PostgreSQL at {}", redact_url(&url)))?;
            Arc::new(store)
        }
    };
    store.migrate().context("database migration failed")?;
    Ok(store)
}

/// Opens the database and builds the application with the system clock and randomness.
pub fn open_app(database_url: &str) -> anyhow::Result<Ciclo> {
    let store = open_store(database_url)?;
    tracing::info!(backend = store.backend(), database = %redact_url(database_url), "database ready");
    Ok(Ciclo::new(
        store,
        Arc::new(SystemClock),
        Arc::new(SystemRandom),
    ))
}

/// The workspaces the operator with this email belongs to, ordered by name (empty when the
/// operator does not exist). Used to show write keys on start and to pick the CLI's workspace.
pub fn workspaces_of_owner(
    app: &Ciclo,
    owner_email: &str,
) -> anyhow::Result<Vec<(Workspace, Role)>> {
    let email = owner_email.trim().to_lowercase();
    let found = ciclo_store::read(&*app.store, |tx| match tx.operator_by_email(&email)? {
        Some(operator) => tx.workspaces_of_operator(&operator.id),
        None => Ok(Vec::new()),
    })?;
    Ok(found)
}

/// The actor the command line acts as: an owner of the workspace `workspace_id` names, or of
/// the configured owner's first workspace. The CLI runs on the server with database access, so
/// it is trusted like an owner.
pub fn cli_actor(
    app: &Ciclo,
    owner_email: &str,
    workspace_id: Option<&str>,
) -> anyhow::Result<Actor> {
    let workspace = match workspace_id {
        Some(raw) => {
            let id = WorkspaceId::parse(raw)
                .map_err(|e| anyhow::anyhow!("--workspace: {}", e.reason))?;
            match ciclo_store::read(&*app.store, |tx| tx.get_workspace(&id))? {
                Some(ws) => ws,
                None => bail!("no workspace {raw} in this database"),
            }
        }
        None => {
            let mut owned = workspaces_of_owner(app, owner_email)?;
            match owned.len() {
                0 => bail!(
                    "no workspace owned by {owner_email} yet: start `ciclo serve` once to create one, \
                     or name one with --workspace"
                ),
                1 => owned.remove(0).0,
                _ => {
                    let (ws, _) = owned.remove(0);
                    tracing::warn!(workspace = %ws.id, "{owner_email} belongs to several workspaces; using the first (pick one with --workspace)");
                    ws
                }
            }
        }
    };
    Ok(Actor {
        workspace,
        role: Role::Owner,
        operator_id: None,
        api_key_id: None,
    })
}

/// A use-case error as a person reads it: validation problems listed as `field: reason`.
pub fn explain(error: CoreError) -> anyhow::Error {
    match error {
        CoreError::Invalid(problems) => {
            let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("invalid input: {}", listed.join("; "))
        }
        CoreError::Conflict(problem) => anyhow::anyhow!("conflict: {problem}"),
        other => anyhow::Error::new(other),
    }
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or("");
            if user_info.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                format!("{scheme}://{user_info}@{host}{path}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            redact_url("postgres://ciclo:segredo@db:5432/ciclo"),
            "postgres://ciclo:***@db:5432/ciclo"
        );
        assert_eq!(
            redact_url("postgres://ciclo@db/ciclo"),
            "postgres://ciclo@db/ciclo"
        );
        assert_eq!(
            redact_url("sqlite://./ciclo-data/ciclo.db"),
            "sqlite://./ciclo-data/ciclo.db"
        );
    }
}
