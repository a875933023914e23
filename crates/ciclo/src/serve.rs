//! `ciclo serve`: migrate, create the first workspace on first start, optionally load the demo
//! data, then serve HTTP until SIGTERM or Ctrl-C, finishing the requests in flight.
//!
//! What a person needs to start (URL, owner login, write key, a curl example) is printed on
//! standard output, not only logged. The line `listening on http://ADDR` comes last and names
//! the address actually bound (port 0 picks one); tests and scripts wait for it.

use crate::app;
use crate::config::Config;
use crate::demo;
use anyhow::Context;
use ciclo_core::accounts::{Bootstrap, NewWorkspace};
use ciclo_core::Ciclo;
use ciclo_domain::operator::Workspace;
use ciclo_store::CustomerQuery;
use std::io::Write;
use std::net::SocketAddr;

pub fn serve(config: &Config, load_demo: bool) -> anyhow::Result<()> {
    // Bind first, so that a taken port fails fast and the printed URL carries the real port.
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener.local_addr()?;
    let public_url = config.public_url_for(bound);

    let app = app::open_app(&config.database_url)?;
    let owner_password = config.owner_password.as_ref().map(|s| s.expose());
    let created = app
        .bootstrap(NewWorkspace::default(), &config.owner_email, owner_password)
        .map_err(app::explain)
        .context("cannot create the first workspace")?;
    let workspaces: Vec<Workspace> = match &created {
        Some(b) => vec![b.workspace.clone()],
        None => app::workspaces_of_owner(&app, &config.owner_email)?
            .into_iter()
            .map(|(w, _)| w)
            .collect(),
    };

    if load_demo {
        match workspaces.first() {
            Some(workspace) => load_demo_once(&app, &config.owner_email, workspace)?,
            None => tracing::warn!(
                "--demo: no workspace owned by {} to load the demo into (the owner email changed?)",
                config.owner_email
            ),
        }
    }

    let mut out = std::io::stdout().lock();
    match &created {
        Some(bootstrap) => print_first_start(&mut out, &public_url, bootstrap)?,
        None => print_later_start(&mut out, &public_url, &config.owner_email, &workspaces)?,
    }
    drop(out);

    // Keeps segments and lifecycle stages current (real-time queue + scheduled refreshes).
    app.start_background(ciclo_core::evaluate::BackgroundOptions {
        refresh_every: std::time::Duration::from_secs(config.refresh_seconds),
        scores_every: std::time::Duration::from_secs(config.scores_seconds),
    });

    let options = ciclo_http::HttpOptions {
        public_url: public_url.clone(),
        secure_cookies: public_url.starts_with("https://"),
        ..Default::default()
    };
    let web_options = ciclo_web::WebOptions {
        secure_cookies: options.secure_cookies,
        ..Default::default()
    };
    // The JSON API owns /api and /v1 (and the fallback); the console owns / and its pages.
    let router =
        ciclo_http::router(app.clone(), options).merge(ciclo_web::console_router(app, web_options));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ciclo-http")
        .build()?;
    runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        println!("listening on http://{bound}");
        tracing::info!(%bound, %public_url, "listening");
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server failed")
    })?;
    tracing::info!("stopped");
    Ok(())
}

/// Loads the demo data set unless the workspace already has customers.
fn load_demo_once(app: &Ciclo, owner_email: &str, workspace: &Workspace) -> anyhow::Result<()> {
    let actor = app::cli_actor(app, owner_email, Some(workspace.id.as_str()))?;
    let existing = app
        .list_customers(
            &actor,
            CustomerQuery {
                limit: 1,
                ..Default::default()
            },
            None,
        )
        .map_err(app::explain)?;
    if !existing.items.is_empty() {
        println!(
            "demo: workspace {} already has customers; not loading the demo data",
            workspace.name
        );
        return Ok(());
    }
    let options = demo::DemoOptions::new(app.clock.now());
    let report = demo::load(app, workspace, &options, true)?;
    println!("{report}");
    Ok(())
}

fn print_first_start(out: &mut impl Write, url: &str, created: &Bootstrap) -> std::io::Result<()> {
    let ws = &created.workspace;
    writeln!(out)?;
    writeln!(
        out,
        "ciclo is ready: first start, workspace {:?} created.",
        ws.name
    )?;
    writeln!(out)?;
    writeln!(out, "  url:            {url}")?;
    writeln!(out, "  owner email:    {}", created.owner_email)?;
    match &created.owner_password {
        Some(password) => {
            writeln!(out, "  owner password: {password}")?;
            writeln!(
                out,
                "                  (generated and shown only this once: sign in and change it)"
            )?;
        }
        None => writeln!(
            out,
            "  owner password: (the one configured in owner_password)"
        )?,
    }
    writeln!(out, "  workspace:      {} ({})", ws.name, ws.id)?;
    writeln!(out, "  write key:      {}", ws.write_key)?;
    writeln!(out)?;
    writeln!(
        out,
        "Send a first event (Segment API; the write key is the user name):"
    )?;
    writeln!(out)?;
    writeln!(out, "{}", curl_example(url, &ws.write_key))?;
    writeln!(out)
}

fn print_later_start(
    out: &mut impl Write,
    url: &str,
    owner_email: &str,
    workspaces: &[Workspace],
) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "ciclo is ready.")?;
    writeln!(out)?;
    writeln!(out, "  url:            {url}")?;
    writeln!(out, "  owner email:    {owner_email}")?;
    if workspaces.is_empty() {
        writeln!(out, "  (no workspace is owned by {owner_email}; sign in with the account that created them)")?;
    }
    for ws in workspaces {
        writeln!(
            out,
            "  write key:      {}   (workspace {:?}, {})",
            ws.write_key, ws.name, ws.id
        )?;
    }
    writeln!(out)
}

/// A `curl` command that sends one track event to this server.
pub fn curl_example(url: &str, write_key: &str) -> String {
    format!(
        "  curl -u '{write_key}:' -H 'Content-Type: application/json' \\\n    \
         -d '{{\"userId\": \"cliente-1\", \"event\": \"Order Completed\", \"properties\": \
         {{\"order_id\": \"PED-1\", \"total\": 129.90, \"currency\": \"BRL\"}}, \"traits\": {{\"email\": \"ana@example.com\"}}}}' \\\n    \
         {url}/v1/track"
    )
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curl_example_is_valid_json_for_the_track_endpoint() {
        let example = curl_example("http://127.0.0.1:8080", "wk_abc");
        assert!(example.contains("-u 'wk_abc:'"));
        assert!(example
            .trim_end()
            .ends_with("http://127.0.0.1:8080/v1/track"));
        let body = example
            .split("-d '")
            .nth(1)
            .unwrap()
            .split("' \\")
            .next()
            .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed["event"], "Order Completed");
    }
}
