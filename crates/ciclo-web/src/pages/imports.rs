//! CSV import in four steps: upload a file and choose what it holds; check the column mapping
//! ciclo proposes against a preview of the first rows; run it in the background while a page
//! shows the rows done (refreshing itself every second, no script needed); read the result and
//! download the rejected rows as CSV.
//!
//! Between the upload and the run the file waits in memory ([`ImportWork`]), under a random
//! token, for at most an hour and at most [`MAX_STAGED`] files at a time; the run itself is
//! tracked there too until it has an import id to show. This state is per process: behind a
//! load balancer the import pages need sticky sessions (or one console process).

use crate::i18n::Locale;
use crate::pages::{field_messages, see_other};
use crate::render;
use crate::session::{blocking, core, Console, ErrorPage, WebError};
use crate::WebState;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ciclo_core::import::{ColumnMapping, ImportKind, ImportPreview};
use ciclo_core::CoreError;
use ciclo_domain::ids::{ImportId, WorkspaceId};
use ciclo_domain::operator::Permission;
use ciclo_domain::FieldError;
use minijinja::{context, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Uploaded files waiting for their mapping, at most.
pub(crate) const MAX_STAGED: usize = 16;
/// How long an uploaded file waits for its mapping.
const STAGED_TTL: Duration = Duration::from_secs(60 * 60);
/// How long a finished run stays known to its progress page.
const JOB_TTL: Duration = Duration::from_secs(6 * 60 * 60);
/// Rows shown in the preview.
const PREVIEW_ROWS: usize = 10;
/// Rejected rows listed on the result page (all of them are in the CSV).
const REJECTED_SHOWN: usize = 100;

const CUSTOMER_FIELDS: &[&str] = &[
    "ignore",
    "name",
    "email",
    "phone",
    "whatsapp",
    "birthday",
    "city",
    "state",
    "country",
    "locale",
    "time_zone",
    "tags",
    "user_id",
];
const ORDER_FIELDS: &[&str] = &[
    "ignore",
    "order_id",
    "email",
    "phone",
    "whatsapp",
    "user_id",
    "total",
    "currency",
    "placed_at",
    "product_id",
    "sku",
    "product_name",
    "category",
    "price",
    "quantity",
];

struct StagedUpload {
    workspace: WorkspaceId,
    kind: ImportKind,
    file_name: String,
    bytes: Arc<Vec<u8>>,
    at: Instant,
}

/// A run in the background.
pub(crate) struct Job {
    workspace: WorkspaceId,
    file_name: String,
    rows_done: AtomicU64,
    /// `Some(Ok(id))` when done, `Some(Err(()))` when it failed before recording a result.
    outcome: Mutex<Option<Result<ImportId, ()>>>,
    at: Instant,
}

/// Files between upload and run, and runs in progress.
#[derive(Default)]
pub(crate) struct ImportWork {
    uploads: Mutex<HashMap<String, StagedUpload>>,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl ImportWork {
    fn stage(&self, token: String, upload: StagedUpload) {
        let mut uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        uploads.retain(|_, u| u.at.elapsed() < STAGED_TTL);
        while uploads.len() >= MAX_STAGED {
            let oldest = uploads
                .iter()
                .min_by_key(|(_, u)| u.at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => uploads.remove(&key),
                None => break,
            };
        }
        uploads.insert(token, upload);
    }

    fn staged(
        &self,
        token: &str,
        workspace: &WorkspaceId,
    ) -> Option<(ImportKind, String, Arc<Vec<u8>>)> {
        let uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        uploads
            .get(token)
            .filter(|u| &u.workspace == workspace && u.at.elapsed() < STAGED_TTL)
            .map(|u| (u.kind, u.file_name.clone(), u.bytes.clone()))
    }

    fn unstage(&self, token: &str) {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    fn add_job(&self, token: String, job: Arc<Job>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.retain(|_, j| j.at.elapsed() < JOB_TTL);
        jobs.insert(token, job);
    }

    fn job(&self, token: &str) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }
}

fn kind_name(kind: ImportKind) -> &'static str {
    kind.as_str()
}

/// The choices of one column's select: the known fields of the kind, plus what ciclo proposed
/// when it is none of them, plus (customers) keeping the column as a trait.
fn column_options(locale: Locale, kind: ImportKind, header: &str, chosen: &str) -> Vec<Value> {
    let fields = match kind {
        ImportKind::Customers => CUSTOMER_FIELDS,
        ImportKind::Orders => ORDER_FIELDS,
    };
    let mut options: Vec<(String, String)> = fields
        .iter()
        .map(|f| (f.to_string(), locale.text(&format!("import.fields.{f}"))))
        .collect();
    if kind == ImportKind::Customers {
        let name: String = header.trim().to_string();
        if !name.is_empty() {
            let value = format!("trait:{name}");
            let label = crate::i18n::fill(&locale.text("import.as_trait"), &[("name", name)]);
            options.push((value, label));
        }
    }
    if !options.iter().any(|(v, _)| v == chosen) {
        options.push((chosen.to_string(), chosen.to_string()));
    }
    options
        .into_iter()
        .map(|(value, label)| context! { selected => value == chosen, value => value, label => label })
        .collect()
}

/// `GET /imports`: the upload form and the recent runs.
pub(crate) async fn start(
    State(state): State<WebState>,
    console: Console,
) -> Result<Response, WebError> {
    render_start(&state, &console, None, StatusCode::OK).await
}

async fn render_start(
    state: &WebState,
    console: &Console,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let recent = core(move || ciclo.list_imports(&actor)).await?;
    let values = context! {
        recent => Value::from_serialize(&recent),
        error => error,
    };
    render::page_with_status(
        &state.templates,
        console,
        "imports.html",
        "imports",
        values,
        status,
    )
}

fn render_mapping(
    state: &WebState,
    console: &Console,
    token: &str,
    kind: ImportKind,
    file_name: &str,
    preview: &ImportPreview,
    errors: &[FieldError],
) -> Result<Response, WebError> {
    let columns: Vec<Value> = preview
        .headers
        .iter()
        .enumerate()
        .map(|(i, header)| {
            let chosen = preview
                .mapping
                .0
                .get(header)
                .map(String::as_str)
                .unwrap_or("ignore");
            context! {
                index => i,
                header => header.as_str(),
                options => column_options(console.locale, kind, header, chosen),
            }
        })
        .collect();
    let values = context! {
        token => token,
        kind => kind_name(kind),
        file_name => file_name,
        columns => columns,
        rows => &preview.rows,
        errors => field_messages(console.locale, errors),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render::page_with_status(
        &state.templates,
        console,
        "import_map.html",
        "imports",
        values,
        status,
    )
}

/// `POST /imports` (multipart): keeps the file and shows the proposed mapping with a preview.
pub(crate) async fn upload(
    State(state): State<WebState>,
    console: Console,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let mut csrf = String::new();
    let mut kind = ImportKind::Customers;
    let mut file: Option<(String, Bytes)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                tracing::info!(error = %e, "console: unreadable upload");
                console.check_csrf(&csrf)?;
                return render_start(
                    &state,
                    &console,
                    Some("unreadable"),
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "csrf_token" => csrf = field.text().await.unwrap_or_default(),
            "kind" => {
                kind = match field.text().await.unwrap_or_default().as_str() {
                    "orders" => ImportKind::Orders,
                    _ => ImportKind::Customers,
                }
            }
            "file" => {
                let file_name = field.file_name().unwrap_or("import.csv").to_string();
                match field.bytes().await {
                    Ok(bytes) => file = Some((file_name, bytes)),
                    Err(e) => {
                        tracing::info!(error = %e, "console: upload cut short (too large?)");
                        console.check_csrf(&csrf)?;
                        return render_start(
                            &state,
                            &console,
                            Some("too_large"),
                            StatusCode::PAYLOAD_TOO_LARGE,
                        )
                        .await;
                    }
                }
            }
            _ => {}
        }
    }
    console.check_csrf(&csrf)?;
    console.require(Permission::WriteCustomers)?;
    let Some((file_name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return render_start(
            &state,
            &console,
            Some("file_missing"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let bytes = Arc::new(bytes.to_vec());
    let ciclo = state.ciclo.clone();
    let sample = bytes.clone();
    let preview = blocking(move || {
        ciclo.preview_import(kind, &sample[..], &ColumnMapping::default(), PREVIEW_ROWS)
    })
    .await?;
    let preview = match preview {
        Ok(preview) => preview,
        Err(CoreError::Invalid(_)) => {
            return render_start(
                &state,
                &console,
                Some("not_csv"),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => return Err(other.into()),
    };
    let token = state.ciclo.random.token(18);
    state.imports.stage(
        token.clone(),
        StagedUpload {
            workspace: console.actor.workspace.id.clone(),
            kind,
            file_name: file_name.clone(),
            bytes,
            at: Instant::now(),
        },
    );
    render_mapping(&state, &console, &token, kind, &file_name, &preview, &[])
}

/// `POST /imports/uploads/{token}`: `action=preview` shows the preview with the chosen
/// mapping; `action=run` starts the import and goes to its progress page.
pub(crate) async fn mapped(
    State(state): State<WebState>,
    console: Console,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::WriteCustomers)?;
    let Some((kind, file_name, bytes)) = state.imports.staged(&token, &console.actor.workspace.id)
    else {
        return Ok(see_other("/imports?alert=upload_expired"));
    };
    // Column selects are named by position, so any header text is safe in a form.
    let ciclo = state.ciclo.clone();
    let sample = bytes.clone();
    let headers =
        blocking(move || ciclo.preview_import(kind, &sample[..], &ColumnMapping::default(), 0))
            .await??
            .headers;
    let mut mapping = BTreeMap::new();
    for (i, header) in headers.iter().enumerate() {
        if let Some(field) = form.get(&format!("col_{i}")) {
            mapping.insert(header.clone(), field.to_string());
        }
    }
    let mapping = ColumnMapping(mapping);

    let ciclo = state.ciclo.clone();
    let sample = bytes.clone();
    let chosen = mapping.clone();
    let preview =
        blocking(move || ciclo.preview_import(kind, &sample[..], &chosen, PREVIEW_ROWS)).await?;
    let preview = match preview {
        Ok(preview) => preview,
        Err(CoreError::Invalid(errors)) => {
            let fallback = ImportPreview {
                headers: headers.clone(),
                mapping: mapping.clone(),
                rows: Vec::new(),
            };
            return render_mapping(
                &state, &console, &token, kind, &file_name, &fallback, &errors,
            );
        }
        Err(other) => return Err(other.into()),
    };
    if form.get("action") != Some("run") {
        return render_mapping(&state, &console, &token, kind, &file_name, &preview, &[]);
    }

    state.imports.unstage(&token);
    let job = Arc::new(Job {
        workspace: console.actor.workspace.id.clone(),
        file_name: file_name.clone(),
        rows_done: AtomicU64::new(0),
        outcome: Mutex::new(None),
        at: Instant::now(),
    });
    let job_token = state.ciclo.random.token(18);
    state.imports.add_job(job_token.clone(), job.clone());
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let running = job.clone();
    let work = tokio::task::spawn_blocking(move || {
        ciclo.import_csv(
            &actor,
            kind,
            &file_name,
            &bytes[..],
            &mapping,
            &mut |done| running.rows_done.store(done, Ordering::Relaxed),
        )
    });
    tokio::spawn(async move {
        let outcome = match work.await {
            Ok(Ok(run)) => Ok(run.id),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "console: import failed");
                Err(())
            }
            Err(e) => {
                tracing::error!(error = %e, "console: import task failed");
                Err(())
            }
        };
        *job.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
    });
    Ok(see_other(&format!("/imports/jobs/{job_token}")))
}

/// `GET /imports/jobs/{job}`: rows done so far, refreshing every second; the result once done.
pub(crate) async fn progress(
    State(state): State<WebState>,
    console: Console,
    Path(job): Path<String>,
) -> Result<Response, WebError> {
    let Some(job) = state
        .imports
        .job(&job)
        .filter(|j| j.workspace == console.actor.workspace.id)
    else {
        return Err(ErrorPage::NotFound.into());
    };
    let outcome = job
        .outcome
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(Ok(id)) = outcome {
        return Ok(see_other(&format!("/imports/{id}")));
    }
    let values = context! {
        file_name => job.file_name.as_str(),
        rows_done => job.rows_done.load(Ordering::Relaxed),
        failed => outcome.is_some(),
    };
    render::page(
        &state.templates,
        &console,
        "import_progress.html",
        "imports",
        values,
    )
}

fn parse_import(raw: &str) -> Result<ImportId, WebError> {
    ImportId::parse(raw).map_err(|_| WebError::Page(ErrorPage::NotFound))
}

/// The reason of a rejected row in the operator's language (core's own words when the code is
/// not one the console knows).
fn rejected_reason(locale: Locale, code: &str, reason: &str) -> String {
    let key = format!("errors.{code}");
    if locale.has(&key) {
        locale.text(&key)
    } else {
        reason.to_string()
    }
}

/// `GET /imports/{id}`: counts and the first rejected rows.
pub(crate) async fn result(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_import(&id)?;
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let run = core(move || ciclo.get_import(&actor, &id)).await?;
    let rejected: Vec<Value> = run
        .rejected
        .iter()
        .take(REJECTED_SHOWN)
        .map(|r| {
            context! {
                line => r.line,
                code => r.code.as_str(),
                field => r.field.as_str(),
                reason => rejected_reason(console.locale, &r.code, &r.reason),
            }
        })
        .collect();
    let values = context! {
        run => Value::from_serialize(&run),
        rejected => rejected,
        more_rejected => run.rejected.len() > REJECTED_SHOWN,
        running => run.status == "running",
    };
    render::page(
        &state.templates,
        &console,
        "import_result.html",
        "imports",
        values,
    )
}

/// `GET /imports/{id}/rejected.csv`: every rejected row as `line,code,field,reason`.
pub(crate) async fn rejected_csv(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_import(&id)?;
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let run = core(move || ciclo.get_import(&actor, &id)).await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut write = || -> Result<Vec<u8>, csv::Error> {
        writer.write_record(["line", "code", "field", "reason"])?;
        for row in &run.rejected {
            let reason = rejected_reason(console.locale, &row.code, &row.reason);
            writer.write_record([
                row.line.to_string().as_str(),
                &row.code,
                &row.field,
                &reason,
            ])?;
        }
        writer.flush()?;
        Ok(writer.get_ref().clone())
    };
    let body = write().map_err(|e| {
        tracing::error!(error = %e, "console: cannot write the rejected rows");
        WebError::Page(ErrorPage::Internal)
    })?;
    let disposition = format!("attachment; filename=\"{}-rejected.csv\"", run.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}
