//! Segment-compatible ingestion: `POST /v1/identify|track|page|screen|group|alias|batch` (and
//! the one-letter forms `/v1/i|t|p|s|g|a|b`), so the Segment and RudderStack SDKs work unchanged
//! when pointed at ciclo.
//!
//! The write key comes as the HTTP Basic user name or as `writeKey` in the body. Bodies may be
//! gzip; they are read with a cap on the compressed size and inflated with a cap on the
//! inflated size, so a small "zip bomb" cannot make the server allocate without bound. Limits
//! are Segment's: 32 KB per message, 500 KB per batch. In a batch, an oversized message is
//! rejected on its own and the others are kept, as Segment does.
//!
//! Everything after reading the bytes (inflating, parsing, the write-key lookup and the ingest
//! itself) runs in one blocking task: it is CPU and store work, and one hop is cheaper than three.

use crate::auth::{basic_write_key, invalid_write_key};
use crate::dto::{ErrorBody, IngestResponse, SegmentBatch, SegmentMessage};
use crate::error::ApiError;
use crate::extract::{blocking, parse_json};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use ciclo_core::ingest::{IngestReport, IngestSource, RejectedMessage};
use ciclo_core::{Ciclo, CoreError};
use ciclo_domain::event::{EventType, MAX_BATCH_BYTES, MAX_MESSAGE_BYTES};
use ciclo_domain::operator::Workspace;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::io::Read;

/// How many bytes a gzip body may exceed the inflated limit by: gzip's header and trailer plus
/// deflate's per-block overhead on data that does not compress.
const GZIP_SLACK_BYTES: usize = 4096;

fn message_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "message_too_large",
        format!("a message may be at most {MAX_MESSAGE_BYTES} bytes"),
    )
}

fn batch_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch_too_large",
        format!("a batch may be at most {MAX_BATCH_BYTES} bytes"),
    )
}

/// Whether the body is gzip; other encodings are refused (Segment's SDKs send only gzip).
fn is_gzip(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let encoding = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "gzip" | "x-gzip" => Ok(true),
        "" | "identity" => Ok(false),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            "bodies may be sent plain or with Content-Encoding: gzip",
        )),
    }
}

/// Reads the raw body, refusing it as soon as it passes `raw_limit` bytes.
async fn read_raw(
    headers: &HeaderMap,
    body: Body,
    raw_limit: usize,
    too_large: fn() -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > raw_limit) {
        return Err(too_large());
    }
    let mut buffer = Vec::with_capacity(declared.unwrap_or(0));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the request body could not be read",
            )
        })?;
        if buffer.len() + chunk.len() > raw_limit {
            return Err(too_large());
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer)
}

/// Inflates a gzip body, stopping one byte past `limit` so that an oversized one is detected
/// without inflating all of it.
fn inflate(
    raw: Vec<u8>,
    gzip: bool,
    limit: usize,
    too_large: fn() -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    if !gzip {
        return if raw.len() > limit {
            Err(too_large())
        } else {
            Ok(raw)
        };
    }
    let mut inflated = Vec::with_capacity((raw.len() * 4).min(limit + 1));
    flate2::read::MultiGzDecoder::new(raw.as_slice())
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_gzip",
                format!("the gzip body cannot be inflated: {e}"),
            )
        })?;
    if inflated.len() > limit {
        return Err(too_large());
    }
    Ok(inflated)
}

/// The workspace of a write key; an unknown key is 401 `invalid_write_key`.
fn workspace_for(ciclo: &Ciclo, write_key: &str) -> Result<Workspace, ApiError> {
    ciclo
        .workspace_for_write_key(write_key)
        .map_err(|e| match e {
            CoreError::Unauthorized => invalid_write_key(),
            other => other.into(),
        })
}

fn body_write_key(object: Option<&Value>) -> Option<String> {
    object
        .and_then(|v| v.get("writeKey"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
}

/// One message to one typed endpoint. An invalid message is answered 400 with its error, since
/// there is nothing else in the request to acknowledge.
async fn ingest_single(
    state: AppState,
    headers: HeaderMap,
    body: Body,
    event_type: EventType,
) -> Result<Json<IngestResponse>, ApiError> {
    let header_key = basic_write_key(&headers)?;
    let gzip = is_gzip(&headers)?;
    let raw_limit = if gzip {
        MAX_MESSAGE_BYTES + GZIP_SLACK_BYTES
    } else {
        MAX_MESSAGE_BYTES
    };
    let raw = read_raw(&headers, body, raw_limit, message_too_large).await?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        // A key in the header is checked before the body is even parsed.
        let header_workspace = header_key.map(|k| workspace_for(&ciclo, &k)).transpose()?;
        let bytes = inflate(raw, gzip, MAX_MESSAGE_BYTES, message_too_large)?;
        let message: Value = parse_json(&bytes)?;
        let workspace = match header_workspace {
            Some(w) => w,
            None => workspace_for(
                &ciclo,
                &body_write_key(Some(&message)).ok_or_else(invalid_write_key)?,
            )?,
        };
        let report = ciclo.ingest(
            &workspace,
            std::slice::from_ref(&message),
            Some(event_type),
            ciclo.clock.now(),
            IngestSource("api"),
        )?;
        if let Some(rejected) = report.rejected.into_iter().next() {
            return Err(
                ApiError::new(StatusCode::BAD_REQUEST, rejected.code, rejected.reason)
                    .with_field(rejected.field),
            );
        }
        Ok(Json(IngestResponse {
            success: true,
            accepted: report.accepted,
            duplicates: report.duplicates,
            rejected: Vec::new(),
        }))
    })
    .await
}

/// The `/v1/batch` body. Messages stay raw until their size is checked, so that an oversized
/// one can be rejected without failing the batch.
#[derive(Deserialize)]
struct BatchEnvelope<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(rename = "sentAt", default)]
    sent_at: Option<Value>,
    #[serde(default)]
    context: Option<Map<String, Value>>,
    #[serde(rename = "writeKey", default)]
    write_key: Option<String>,
}

/// Segment semantics for batch-level fields: `sentAt` applies to messages that have none;
/// `context` is merged into each message's context, the message's own keys winning.
fn apply_batch_defaults(
    message: &mut Value,
    sent_at: Option<&Value>,
    context: Option<&Map<String, Value>>,
) {
    let Value::Object(fields) = message else {
        return;
    };
    if let Some(sent_at) = sent_at.filter(|v| !v.is_null()) {
        if fields.get("sentAt").is_none_or(Value::is_null) {
            fields.insert("sentAt".into(), sent_at.clone());
        }
    }
    if let Some(batch_context) = context {
        match fields.get_mut("context") {
            None | Some(Value::Null) => {
                fields.insert("context".into(), Value::Object(batch_context.clone()));
            }
            Some(Value::Object(own)) => {
                for (key, value) in batch_context {
                    own.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
            // Not an object: left for core to reject with the field named.
            Some(_) => {}
        }
    }
}

fn message_id_of(message: &Value) -> Option<String> {
    match message.get("messageId") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// A batch split into what goes to core and what was rejected here.
struct PreparedBatch {
    /// The messages to ingest, batch defaults applied.
    messages: Vec<Value>,
    /// For each of `messages`, its position in the batch as sent.
    positions: Vec<usize>,
    /// Messages rejected here for size.
    rejected: Vec<RejectedMessage>,
}

/// Splits a batch into the messages to ingest (with their positions in the batch) and the ones
/// rejected here for size.
fn prepare_batch(envelope: &BatchEnvelope<'_>) -> Result<PreparedBatch, ApiError> {
    let mut messages = Vec::with_capacity(envelope.batch.len());
    let mut positions = Vec::with_capacity(envelope.batch.len());
    let mut rejected = Vec::new();
    for (index, raw) in envelope.batch.iter().enumerate() {
        // Already checked to be JSON as part of the envelope, so this cannot fail in practice.
        let mut message: Value = serde_json::from_str(raw.get()).map_err(ApiError::invalid_json)?;
        if raw.get().len() > MAX_MESSAGE_BYTES {
            rejected.push(RejectedMessage {
                index,
                message_id: message_id_of(&message),
                code: "message_too_large".into(),
                field: String::new(),
                reason: format!("a message may be at most {MAX_MESSAGE_BYTES} bytes"),
            });
            continue;
        }
        apply_batch_defaults(
            &mut message,
            envelope.sent_at.as_ref(),
            envelope.context.as_ref(),
        );
        messages.push(message);
        positions.push(index);
    }
    Ok(PreparedBatch {
        messages,
        positions,
        rejected,
    })
}

/// Core numbers rejections by position in what it was given; the client needs positions in
/// what it sent.
fn merge_reports(
    report: IngestReport,
    positions: &[usize],
    mut rejected_here: Vec<RejectedMessage>,
) -> IngestReport {
    for mut r in report.rejected {
        r.index = positions.get(r.index).copied().unwrap_or(r.index);
        rejected_here.push(r);
    }
    rejected_here.sort_by_key(|r| r.index);
    IngestReport {
        accepted: report.accepted,
        duplicates: report.duplicates,
        rejected: rejected_here,
    }
}

async fn ingest_batch(
    state: AppState,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let header_key = basic_write_key(&headers)?;
    let gzip = is_gzip(&headers)?;
    let raw_limit = if gzip {
        MAX_BATCH_BYTES + GZIP_SLACK_BYTES
    } else {
        MAX_BATCH_BYTES
    };
    let raw = read_raw(&headers, body, raw_limit, batch_too_large).await?;
    let ciclo = state.ciclo.clone();
    blocking(move || {
        let header_workspace = header_key.map(|k| workspace_for(&ciclo, &k)).transpose()?;
        let bytes = inflate(raw, gzip, MAX_BATCH_BYTES, batch_too_large)?;
        let envelope: BatchEnvelope<'_> = parse_json(&bytes)?;
        let workspace = match header_workspace {
            Some(w) => w,
            None => {
                let key = envelope
                    .write_key
                    .as_deref()
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .ok_or_else(invalid_write_key)?;
                workspace_for(&ciclo, key)?
            }
        };
        let PreparedBatch {
            messages,
            positions,
            rejected: rejected_here,
        } = prepare_batch(&envelope)?;
        let report = if messages.is_empty() {
            IngestReport::default()
        } else {
            ciclo.ingest(
                &workspace,
                &messages,
                None,
                ciclo.clock.now(),
                IngestSource("api"),
            )?
        };
        Ok(Json(
            merge_reports(report, &positions, rejected_here).into(),
        ))
    })
    .await
}

/// Declares one typed Segment endpoint with its OpenAPI description.
macro_rules! single_endpoint {
    ($name:ident, $operation_id:literal, $path:literal, $event_type:expr, $summary:literal) => {
        #[utoipa::path(
            post,
            path = $path,
            operation_id = $operation_id,
            tag = "ingestion",
            summary = $summary,
            description = "Segment tracking API. Authenticate with the workspace's write key as the HTTP Basic user name \
                (empty password), or send it as `writeKey` in the body. The body may be gzip (`Content-Encoding: gzip`). \
                A message may be at most 32 KB.",
            request_body(content = SegmentMessage, content_type = "application/json"),
            responses(
                (status = 200, description = "Stored, or acknowledged as a duplicate", body = IngestResponse),
                (status = 400, description = "Not JSON (`invalid_json`), or the message is invalid (its own code and field)", body = ErrorBody),
                (status = 401, description = "Missing or unknown write key (`invalid_write_key`)", body = ErrorBody),
                (status = 413, description = "Larger than 32 KB (`message_too_large`)", body = ErrorBody),
                (status = 415, description = "A Content-Encoding other than gzip (`unsupported_encoding`)", body = ErrorBody),
                (status = 500, description = "Server failure (`internal_error`)", body = ErrorBody),
            ),
            security(("write_key" = []))
        )]
        pub(crate) async fn $name(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<IngestResponse>, ApiError> {
            ingest_single(state, headers, body, $event_type).await
        }
    };
}

single_endpoint!(
    identify,
    "segment_identify",
    "/v1/identify",
    EventType::Identify,
    "Identify a user and record their traits"
);
single_endpoint!(
    track,
    "segment_track",
    "/v1/track",
    EventType::Track,
    "Record an action (`Order Completed` also records an order)"
);
single_endpoint!(
    page,
    "segment_page",
    "/v1/page",
    EventType::Page,
    "Record a page view"
);
single_endpoint!(
    screen,
    "segment_screen",
    "/v1/screen",
    EventType::Screen,
    "Record a mobile screen view"
);
single_endpoint!(
    group,
    "segment_group",
    "/v1/group",
    EventType::Group,
    "Associate a user with a group"
);
single_endpoint!(
    alias,
    "segment_alias",
    "/v1/alias",
    EventType::Alias,
    "Link a previous id to a user id"
);

/// Many messages of any type in one request.
#[utoipa::path(
    post,
    path = "/v1/batch",
    operation_id = "segment_batch",
    tag = "ingestion",
    summary = "Send many messages at once",
    description = "Segment batch API. Each message needs its `type`. Batch-level `sentAt` applies to messages without one; \
        batch-level `context` is merged into each message's context. The body may be at most 500 KB (inflated) and each \
        message at most 32 KB: an oversized or invalid message is reported in `rejected` and the others are kept. \
        Messages are de-duplicated by `messageId`.",
    request_body(content = SegmentBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "What was stored, what was a duplicate, what was rejected and why", body = IngestResponse),
        (status = 400, description = "Not JSON (`invalid_json`)", body = ErrorBody),
        (status = 401, description = "Missing or unknown write key (`invalid_write_key`)", body = ErrorBody),
        (status = 413, description = "Larger than 500 KB (`batch_too_large`)", body = ErrorBody),
        (status = 415, description = "A Content-Encoding other than gzip (`unsupported_encoding`)", body = ErrorBody),
        (status = 422, description = "JSON without a `batch` list (`invalid_body`)", body = ErrorBody),
        (status = 500, description = "Server failure (`internal_error`)", body = ErrorBody),
    ),
    security(("write_key" = []))
)]
pub(crate) async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    ingest_batch(state, headers, body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_defaults_fill_without_overriding() {
        let context = json!({"library": {"name": "analytics-node"}, "ip": "1.2.3.4"});
        let context = context.as_object().unwrap();
        let sent_at = json!("2026-01-01T00:00:00Z");
        let mut bare = json!({"type": "track"});
        apply_batch_defaults(&mut bare, Some(&sent_at), Some(context));
        assert_eq!(bare["sentAt"], sent_at);
        assert_eq!(bare["context"]["ip"], "1.2.3.4");
        let mut own = json!({"type": "track", "sentAt": "2025-12-31T00:00:00Z", "context": {"ip": "5.6.7.8"}});
        apply_batch_defaults(&mut own, Some(&sent_at), Some(context));
        assert_eq!(own["sentAt"], "2025-12-31T00:00:00Z");
        assert_eq!(own["context"]["ip"], "5.6.7.8");
        assert_eq!(own["context"]["library"]["name"], "analytics-node");
    }

    #[test]
    fn oversized_batch_messages_are_rejected_alone_and_indexes_map_back() {
        let big = "x".repeat(MAX_MESSAGE_BYTES);
        let body = json!({"batch": [
            {"type": "track", "event": "A", "userId": "u"},
            {"type": "track", "event": "B", "userId": "u", "messageId": "m-big", "properties": {"blob": big}},
            {"type": "track", "event": "C", "userId": "u"},
        ]})
        .to_string();
        let envelope: BatchEnvelope<'_> = parse_json(body.as_bytes()).unwrap();
        let PreparedBatch {
            messages,
            positions,
            rejected,
        } = prepare_batch(&envelope).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(positions, vec![0, 2]);
        assert_eq!(
            (rejected[0].index, rejected[0].message_id.as_deref()),
            (1, Some("m-big"))
        );
        let core_report = IngestReport {
            accepted: 1,
            duplicates: 0,
            rejected: vec![RejectedMessage {
                index: 1,
                message_id: None,
                code: "missing_identity".into(),
                field: "userId".into(),
                reason: "r".into(),
            }],
        };
        let merged = merge_reports(core_report, &positions, rejected);
        let indexes: Vec<_> = merged
            .rejected
            .iter()
            .map(|r| (r.index, r.code.as_str()))
            .collect();
        assert_eq!(
            indexes,
            vec![(1, "message_too_large"), (2, "missing_identity")]
        );
    }

    #[test]
    fn envelope_shape_errors_name_the_field() {
        let e = parse_json::<BatchEnvelope<'_>>(br#"{"batch": 3}"#)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.field.as_deref()),
            ("invalid_body", Some("batch"))
        );
        let e = parse_json::<BatchEnvelope<'_>>(br#"{"batch": [1,"#)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.code, "invalid_json");
    }

    #[test]
    fn gzip_is_inflated_with_a_cap() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder
            .write_all(&vec![b' '; MAX_BATCH_BYTES + 10])
            .unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 4096);
        assert_eq!(
            inflate(bomb, true, MAX_BATCH_BYTES, batch_too_large)
                .unwrap_err()
                .code,
            "batch_too_large"
        );
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"{\"a\": 1}").unwrap();
        assert_eq!(
            inflate(
                encoder.finish().unwrap(),
                true,
                MAX_BATCH_BYTES,
                batch_too_large
            )
            .unwrap(),
            b"{\"a\": 1}"
        );
        assert_eq!(
            inflate(b"not gzip".to_vec(), true, 100, batch_too_large)
                .unwrap_err()
                .code,
            "invalid_gzip"
        );
    }
}
