//! CSV import (raw CSV body, options in the query string) and CSV export (streamed).
//!
//! Exports stream: core writes into a blocking writer that hands 64 KB chunks to the response
//! through a small channel, so a million-customer export never sits in memory whole. An error
//! before the first chunk is answered as a normal error response; one after it (headers are
//! gone by then) aborts the body so the client sees a broken transfer rather than a file that
//! looks complete.

use crate::api::customers::{customer_filters, CustomerFilterParams, IdParam, MAX_LIMIT};
use crate::auth::Authenticated;
use crate::dto::{ErrorBody, ImportKindDto, ImportList, ImportPreviewDto, ImportRunDto};
use crate::error::ApiError;
use crate::extract::{blocking, bytes_rejection, check, path_id, QueryPairs};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ciclo_core::import::{ColumnMapping, ImportKind};
use ciclo_core::{Ciclo, CoreError};
use ciclo_domain::ids::ImportId;
use ciclo_domain::operator::Permission;
use ciclo_domain::FieldError;
use futures_util::StreamExt as _;
use std::collections::BTreeMap;
use std::io::{self, Write};
use tokio::sync::mpsc;
use utoipa::IntoParams;

/// How many preview rows a client may ask for.
const MAX_PREVIEW_ROWS: usize = 100;
/// Export chunk size: large enough to keep per-chunk overhead small, small enough to stream.
const EXPORT_CHUNK_BYTES: usize = 64 * 1024;

/// Options of an import, in the query string (the body is the CSV file itself).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query string for OpenAPI; parsing is in `import_options`.
pub(crate) struct ImportParams {
    /// What the rows are.
    kind: ImportKindDto,
    /// The file's name, kept on the import report (default `import.csv`).
    file_name: Option<String>,
    /// A JSON object from CSV header to ciclo field (`{"E-mail": "email", "Plano": "trait:plan"}`).
    /// Headers left out are matched by name.
    mapping: Option<String>,
}

struct ImportOptions {
    kind: ImportKind,
    file_name: String,
    mapping: ColumnMapping,
}

fn import_options(q: &QueryPairs, errors: &mut Vec<FieldError>) -> Option<ImportOptions> {
    let kind = match q.get("kind") {
        Some("customers") => Some(ImportKind::Customers),
        Some("orders") => Some(ImportKind::Orders),
        Some(_) => {
            errors.push(FieldError::new(
                "invalid_kind",
                "kind",
                "expected customers or orders",
            ));
            None
        }
        None => {
            errors.push(FieldError::new(
                "missing_field",
                "kind",
                "say what the rows are: kind=customers or kind=orders",
            ));
            None
        }
    };
    let mapping = match q.get("mapping") {
        None => ColumnMapping::default(),
        Some(raw) => match serde_json::from_str::<BTreeMap<String, String>>(raw) {
            Ok(map) => ColumnMapping(map),
            Err(e) => {
                errors.push(FieldError::new(
                    "invalid_mapping",
                    "mapping",
                    format!("expected a JSON object from CSV header to field name: {e}"),
                ));
                ColumnMapping::default()
            }
        },
    };
    let file_name = q
        .get("file_name")
        .unwrap_or("import.csv")
        .chars()
        .take(255)
        .collect();
    Some(ImportOptions {
        kind: kind?,
        file_name,
        mapping,
    })
}

/// Imports a CSV file of customers or orders.
#[utoipa::path(
    post,
    path = "/api/v1/imports",
    operation_id = "create_import",
    tag = "imports",
    params(ImportParams),
    request_body(content = String, content_type = "text/csv", description = "The CSV file, header first"),
    responses(
        (status = 201, description = "The import report; rejected rows carry their line numbers", body = ImportRunDto),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 413, description = "The file is larger than the server accepts (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "Bad options (`validation_failed`: `invalid_kind`, `invalid_mapping`…)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    q: QueryPairs,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ImportRunDto>), ApiError> {
    let mut errors = Vec::new();
    let options = import_options(&q, &mut errors);
    check(errors)?;
    let options = options.ok_or_else(ApiError::internal)?;
    let csv = body.map_err(bytes_rejection)?;
    let ciclo = state.ciclo.clone();
    let run = blocking(move || {
        Ok(ciclo.import_csv(
            &auth.actor,
            options.kind,
            &options.file_name,
            csv.as_ref(),
            &options.mapping,
            &mut |_| {},
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(run.into())))
}

/// Reads the header and first rows of a CSV file and proposes a column mapping. Nothing is stored.
#[utoipa::path(
    post,
    path = "/api/v1/imports/preview",
    operation_id = "preview_import",
    tag = "imports",
    params(
        ImportParams,
        ("rows" = Option<i64>, Query, minimum = 1, maximum = 100, description = "How many rows to show (default 10)"),
    ),
    request_body(content = String, content_type = "text/csv", description = "The CSV file, or its first lines"),
    responses(
        (status = 200, body = ImportPreviewDto),
        (status = 403, description = "The role lacks `write_customers` (`forbidden`)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 422, description = "Bad options (`validation_failed`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn preview(
    State(state): State<AppState>,
    auth: Authenticated,
    q: QueryPairs,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ImportPreviewDto>, ApiError> {
    // Core's preview takes no actor; previewing is the first step of importing, so it needs
    // the import permission.
    auth.actor.require(Permission::WriteCustomers)?;
    let mut errors = Vec::new();
    let options = import_options(&q, &mut errors);
    let rows = match q.get("rows") {
        None => 10,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PREVIEW_ROWS).contains(n))
            .unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "invalid_rows",
                    "rows",
                    format!("rows must be a whole number from 1 to {MAX_PREVIEW_ROWS}"),
                ));
                10
            }),
    };
    check(errors)?;
    let options = options.ok_or_else(ApiError::internal)?;
    let csv = body.map_err(bytes_rejection)?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(
            ciclo
                .preview_import(options.kind, csv.as_ref(), &options.mapping, rows)?
                .into(),
        ))
    })
    .await
}

/// Past imports, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/imports",
    operation_id = "list_imports",
    tag = "imports",
    responses((status = 200, body = ImportList)),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<ImportList>, ApiError> {
    let ciclo = state.ciclo.clone();
    blocking(move || {
        Ok(Json(ImportList {
            items: ciclo
                .list_imports(&auth.actor)?
                .into_iter()
                .map(Into::into)
                .collect(),
        }))
    })
    .await
}

/// One import and its report.
#[utoipa::path(
    get,
    path = "/api/v1/imports/{id}",
    operation_id = "get_import",
    tag = "imports",
    params(("id" = String, Path, description = "Import id (`imp_…`)")),
    responses(
        (status = 200, body = ImportRunDto),
        (status = 404, description = "`import_not_found`", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    IdParam(id): IdParam,
) -> Result<Json<ImportRunDto>, ApiError> {
    let id = path_id(&id, "import", ImportId::parse)?;
    let ciclo = state.ciclo.clone();
    blocking(move || Ok(Json(ciclo.get_import(&auth.actor, &id)?.into()))).await
}

/// Customers as CSV, with the filters of the customer list (all pages).
#[utoipa::path(
    get,
    path = "/api/v1/exports/customers.csv",
    operation_id = "export_customers_csv",
    tag = "imports",
    params(CustomerFilterParams),
    responses(
        (status = 200, description = "The CSV file", content_type = "text/csv", body = String),
        (status = 403, description = "The role lacks `export_customers` (`forbidden`)", body = ErrorBody),
        (status = 422, description = "A bad filter (`validation_failed`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn export_customers(
    State(state): State<AppState>,
    auth: Authenticated,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let mut query = customer_filters(&q, &mut errors);
    // The export reads every page itself; this is only its page size.
    query.limit = MAX_LIMIT;
    check(errors)?;
    stream_csv(state.ciclo.clone(), "customers.csv", move |ciclo, out| {
        ciclo.export_customers_csv(&auth.actor, query, out)
    })
    .await
}

/// Every order of the workspace as CSV, one line per item.
#[utoipa::path(
    get,
    path = "/api/v1/exports/orders.csv",
    operation_id = "export_orders_csv",
    tag = "imports",
    responses(
        (status = 200, description = "The CSV file", content_type = "text/csv", body = String),
        (status = 403, description = "The role lacks `export_customers` (`forbidden`)", body = ErrorBody),
    ),
    security(("secret_key" = []), ("session_cookie" = []))
)]
pub(crate) async fn export_orders(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    stream_csv(state.ciclo.clone(), "orders.csv", move |ciclo, out| {
        ciclo.export_orders_csv(&auth.actor, out)
    })
    .await
}

type Chunk = Result<Bytes, io::Error>;

/// A `Write` that sends full chunks to the response body. Writes fail once the client is gone,
/// which stops the export early.
pub(crate) struct ChunkWriter {
    sender: mpsc::Sender<Chunk>,
    buffer: Vec<u8>,
    sent_any: bool,
    finished: bool,
}

impl ChunkWriter {
    fn new(sender: mpsc::Sender<Chunk>) -> Self {
        ChunkWriter {
            sender,
            buffer: Vec::with_capacity(EXPORT_CHUNK_BYTES),
            sent_any: false,
            finished: false,
        }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(EXPORT_CHUNK_BYTES),
        ));
        self.sent_any = true;
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Sends what is left; the body ends when the writer is dropped.
    fn finish(mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.send_buffer()?;
        }
        self.finished = true;
        Ok(())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= EXPORT_CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    // Deliberately does not send: a partial chunk is held back so that an error early in the
    // export can still become a proper error response.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        // Dropped unfinished after the body started (an error or a panic mid-export): make the
        // body fail instead of ending cleanly, so the truncated file is not taken for whole.
        if self.sent_any && !self.finished {
            let _ = self
                .sender
                .blocking_send(Err(io::Error::other("the export failed midway")));
        }
    }
}

pub(crate) async fn stream_csv<F>(
    ciclo: Ciclo,
    file_name: impl Into<String>,
    export: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&Ciclo, &mut ChunkWriter) -> Result<u64, CoreError> + Send + 'static,
{
    let file_name: String = file_name.into();
    let task_file_name = file_name.clone();
    let (sender, mut receiver) = mpsc::channel::<Chunk>(4);
    let task = tokio::task::spawn_blocking(move || {
        let file_name = task_file_name;
        let mut writer = ChunkWriter::new(sender);
        match export(&ciclo, &mut writer) {
            Ok(_) => writer.finish().map_err(|_| None),
            Err(e) => {
                if writer.sent_any {
                    tracing::error!(error = %e, file = %file_name, "export failed after it started streaming");
                }
                Err(Some(e))
            }
        }
    });
    let first = match receiver.recv().await {
        Some(chunk) => chunk,
        None => match task.await {
            Ok(Ok(())) => Ok(Bytes::new()),
            Ok(Err(Some(core_error))) => return Err(core_error.into()),
            // The client left before the first chunk: nobody reads this answer.
            Ok(Err(None)) => return Err(ApiError::internal()),
            Err(join_error) => {
                tracing::error!(error = %join_error, file = %file_name, "export task panicked");
                return Err(ApiError::internal());
            }
        },
    };
    let rest = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let body = Body::from_stream(futures_util::stream::once(async move { first }).chain(rest));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_options_need_a_kind_and_a_json_mapping() {
        let q = QueryPairs(vec![
            ("kind".into(), "orders".into()),
            ("mapping".into(), r#"{"E-mail":"email"}"#.into()),
        ]);
        let mut errors = Vec::new();
        let options = import_options(&q, &mut errors).unwrap();
        assert!(errors.is_empty());
        assert_eq!(options.kind, ImportKind::Orders);
        assert_eq!(options.file_name, "import.csv");
        assert_eq!(options.mapping.0["E-mail"], "email");
        let q = QueryPairs(vec![("mapping".into(), "[1]".into())]);
        assert!(import_options(&q, &mut errors).is_none());
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["kind", "mapping"]);
    }

    #[tokio::test]
    async fn exports_stream_in_chunks_and_errors_before_the_first_become_responses() {
        use axum::body::to_bytes;
        let store: std::sync::Arc<dyn ciclo_store::Store> =
            std::sync::Arc::new(crate::tests_support::NoStore);
        let ciclo = Ciclo::new(
            store,
            std::sync::Arc::new(ciclo_core::SystemClock),
            std::sync::Arc::new(ciclo_core::SystemRandom),
        );
        let big = stream_csv(ciclo.clone(), "x.csv", |_, out| {
            for _ in 0..3000 {
                out.write_all(b"0123456789012345678901234567890123456789\n")
                    .map_err(|e| {
                        CoreError::Store(ciclo_store::StoreError::Backend(e.to_string()))
                    })?;
            }
            Ok(3000)
        })
        .await
        .unwrap();
        assert_eq!(
            big.headers()[header::CONTENT_TYPE],
            "text/csv; charset=utf-8"
        );
        assert_eq!(
            to_bytes(big.into_body(), usize::MAX).await.unwrap().len(),
            3000 * 41
        );
        let refused = stream_csv(ciclo.clone(), "x.csv", |_, out| {
            out.write_all(b"id,name\n").ok();
            Err(CoreError::Forbidden("export_customers"))
        })
        .await
        .unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let broken = stream_csv(ciclo, "x.csv", |_, out| {
            out.write_all(&vec![b'a'; EXPORT_CHUNK_BYTES + 1]).ok();
            Err(CoreError::Store(ciclo_store::StoreError::Backend(
                "disk".into(),
            )))
        })
        .await
        .unwrap();
        assert!(
            to_bytes(broken.into_body(), usize::MAX).await.is_err(),
            "a failed export must not end cleanly"
        );
    }
}
