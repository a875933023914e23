//! The event model, after the Segment spec: `identify`, `track`, `page`, `screen`, `group` and
//! `alias` messages, validated and with Segment's clock-skew correction applied.

use crate::ids::{CustomerId, EventId, WorkspaceId};
use crate::{FieldError, Timestamp};
use chrono::{DateTime, Duration};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Segment's limit for one message (32 KB).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Segment's limit for one batch request (500 KB).
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// How far past the receive time a (corrected) timestamp may lie before it is refused.
pub const MAX_FUTURE_SKEW_HOURS: i64 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }

    pub fn parse(raw: &str) -> Option<EventType> {
        Some(match raw {
            "identify" => EventType::Identify,
            "track" => EventType::Track,
            "page" => EventType::Page,
            "screen" => EventType::Screen,
            "group" => EventType::Group,
            "alias" => EventType::Alias,
            _ => return None,
        })
    }
}

/// A validated incoming message, not yet attributed to a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingMessage {
    pub message_id: String,
    pub event_type: EventType,
    /// `track`: the event name; `page`/`screen`: the page name; otherwise none.
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// `alias`: the id being aliased; `group`: none.
    pub previous_id: Option<String>,
    pub group_id: Option<String>,
    pub traits: Map<String, Value>,
    pub properties: Map<String, Value>,
    pub context: Map<String, Value>,
    pub channel: String,
    /// The event time after clock-skew correction.
    pub timestamp: Timestamp,
    pub original_timestamp: Option<Timestamp>,
    pub sent_at: Option<Timestamp>,
    pub received_at: Timestamp,
}

/// A stored event on a customer's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub workspace_id: WorkspaceId,
    /// The profile the event was attributed to when it arrived (see [`crate::customer::Customer::merged_into`]).
    pub customer_id: CustomerId,
    pub message_id: String,
    pub event_type: EventType,
    pub name: Option<String>,
    pub channel: String,
    /// `api` (Segment ingestion), `import`, `console`, `demo`, `system`.
    pub source: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub properties: Map<String, Value>,
    pub context: Map<String, Value>,
    pub timestamp: Timestamp,
    pub received_at: Timestamp,
}

/// Channels ciclo knows of; anything else is stored as `other`.
pub const CHANNELS: &[&str] = &[
    "web", "mobile", "server", "email", "whatsapp", "sms", "store", "support", "import", "other",
];

fn id_like(value: Option<&Value>, field: &str) -> Result<Option<String>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() > 255 => {
            Err(FieldError::new("too_long", field, "at most 255 characters"))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(FieldError::new("invalid_type", field, "expected a string")),
    }
}

fn object(value: Option<&Value>, field: &str) -> Result<Map<String, Value>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(FieldError::new("invalid_type", field, "expected an object")),
    }
}

fn time(value: Option<&Value>, field: &str) -> Result<Option<Timestamp>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                FieldError::new(
                    "invalid_timestamp",
                    field,
                    "expected an ISO-8601 date-time with offset",
                )
            }),
        Some(_) => Err(FieldError::new(
            "invalid_type",
            field,
            "expected an ISO-8601 string",
        )),
    }
}

fn channel_of(
    event_type: EventType,
    properties: &Map<String, Value>,
    context: &Map<String, Value>,
) -> String {
    let named = properties
        .get("channel")
        .and_then(Value::as_str)
        .or_else(|| context.get("channel").and_then(Value::as_str))
        .map(|c| c.trim().to_lowercase());
    if let Some(c) = named {
        return if CHANNELS.contains(&c.as_str()) {
            c
        } else {
            "other".into()
        };
    }
    let library = context
        .get("library")
        .and_then(|l| l.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match event_type {
        EventType::Page => "web".into(),
        EventType::Screen => "mobile".into(),
        _ if library.contains("analytics.js")
            || library.contains("analytics-next")
            || library.contains("browser") =>
        {
            "web".into()
        }
        _ if library.contains("ios")
            || library.contains("android")
            || library.contains("react-native") =>
        {
            "mobile".into()
        }
        _ => "server".into(),
    }
}

/// Validates one raw message and applies Segment's clock-skew correction:
/// `timestamp = receivedAt - (sentAt - timestamp)` when the client sent `sentAt`.
///
/// * `forced_type`: the type implied by the endpoint (`/v1/track`), or `None` for `/v1/batch`,
///   where each message carries its `type`;
/// * `fallback_message_id`: used when the client sent no `messageId` (made by the caller, since
///   the domain draws no random numbers).
pub fn parse_message(
    raw: &Value,
    forced_type: Option<EventType>,
    received_at: Timestamp,
    fallback_message_id: &str,
) -> Result<IncomingMessage, FieldError> {
    let m = raw
        .as_object()
        .ok_or_else(|| FieldError::new("invalid_message", "", "a message must be a JSON object"))?;
    let event_type = match (forced_type, m.get("type")) {
        (Some(t), _) => t,
        (None, Some(Value::String(s))) => EventType::parse(s).ok_or_else(|| {
            FieldError::new(
                "invalid_type",
                "type",
                "expected identify, track, page, screen, group or alias",
            )
        })?,
        (None, _) => {
            return Err(FieldError::new(
                "missing_field",
                "type",
                "each batch message needs a type",
            ))
        }
    };
    let message_id = id_like(m.get("messageId"), "messageId")?
        .unwrap_or_else(|| fallback_message_id.to_string());
    let user_id = id_like(m.get("userId"), "userId")?;
    let anonymous_id = id_like(m.get("anonymousId"), "anonymousId")?;
    let previous_id = id_like(m.get("previousId"), "previousId")?;
    let group_id = id_like(m.get("groupId"), "groupId")?;
    match event_type {
        EventType::Alias => {
            if previous_id.is_none() {
                return Err(FieldError::new(
                    "missing_field",
                    "previousId",
                    "alias needs a previousId",
                ));
            }
            if user_id.is_none() {
                return Err(FieldError::new(
                    "missing_field",
                    "userId",
                    "alias needs a userId",
                ));
            }
        }
        _ if user_id.is_none() && anonymous_id.is_none() => {
            return Err(FieldError::new(
                "missing_identity",
                "userId",
                "a message needs a userId or an anonymousId",
            ));
        }
        EventType::Group if group_id.is_none() => {
            return Err(FieldError::new(
                "missing_field",
                "groupId",
                "group needs a groupId",
            ));
        }
        _ => {}
    }
    let name = match event_type {
        EventType::Track => match m.get("event") {
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 => {
                Some(s.trim().to_string())
            }
            Some(Value::String(s)) if s.len() > 255 => {
                return Err(FieldError::new(
                    "too_long",
                    "event",
                    "at most 255 characters",
                ))
            }
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(FieldError::new(
                    "missing_field",
                    "event",
                    "track needs an event name",
                ))
            }
            Some(_) => {
                return Err(FieldError::new(
                    "invalid_type",
                    "event",
                    "expected a string",
                ))
            }
        },
        EventType::Page | EventType::Screen => id_like(m.get("name"), "name")?,
        _ => None,
    };
    let properties = object(m.get("properties"), "properties")?;
    let traits = match event_type {
        // analytics.js puts traits in context.traits for track calls; identify/group carry them on top.
        EventType::Identify | EventType::Group => object(m.get("traits"), "traits")?,
        _ => object(m.get("traits"), "traits")?,
    };
    let context = object(m.get("context"), "context")?;
    let original_timestamp = match time(m.get("timestamp"), "timestamp")? {
        Some(t) => Some(t),
        None => time(m.get("originalTimestamp"), "originalTimestamp")?,
    };
    let sent_at = time(m.get("sentAt"), "sentAt")?;
    let timestamp = match (original_timestamp, sent_at) {
        (Some(t), Some(sent)) => received_at - (sent - t),
        (Some(t), None) => t,
        (None, _) => received_at,
    };
    if timestamp > received_at + Duration::hours(MAX_FUTURE_SKEW_HOURS) {
        return Err(FieldError::new(
            "timestamp_in_future",
            "timestamp",
            format!("the event time lies more than {MAX_FUTURE_SKEW_HOURS} hours in the future"),
        ));
    }
    if timestamp.timestamp() < 0 {
        return Err(FieldError::new(
            "timestamp_too_old",
            "timestamp",
            "the event time lies before 1970",
        ));
    }
    let channel = channel_of(event_type, &properties, &context);
    Ok(IncomingMessage {
        message_id,
        event_type,
        name,
        user_id,
        anonymous_id,
        previous_id,
        group_id,
        traits,
        properties,
        context,
        channel,
        timestamp,
        original_timestamp,
        sent_at,
        received_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn clock_skew_is_corrected_from_sent_at() {
        // The client's clock runs 10 minutes fast: it says it sent at 12:10 what happened at 12:05.
        let raw = json!({"type": "track", "event": "Product Viewed", "userId": "u1", "messageId": "m1",
                         "timestamp": "2026-01-01T12:05:00Z", "sentAt": "2026-01-01T12:10:00Z"});
        let m = parse_message(&raw, None, at("2026-01-01T12:00:30Z"), "x").unwrap();
        assert_eq!(m.timestamp, at("2026-01-01T11:55:30Z"));
        assert_eq!(m.name.as_deref(), Some("Product Viewed"));
        assert_eq!(m.channel, "server");
    }

    #[test]
    fn bad_messages_say_which_field_and_why() {
        let now = at("2026-01-01T00:00:00Z");
        let cases = [
            (json!([]), "invalid_message", ""),
            (
                json!({"type": "track", "userId": "u"}),
                "missing_field",
                "event",
            ),
            (
                json!({"type": "track", "event": "X"}),
                "missing_identity",
                "userId",
            ),
            (
                json!({"type": "jump", "userId": "u"}),
                "invalid_type",
                "type",
            ),
            (
                json!({"type": "identify", "userId": {"a": 1}}),
                "invalid_type",
                "userId",
            ),
            (
                json!({"type": "track", "event": "X", "userId": "u", "properties": 3}),
                "invalid_type",
                "properties",
            ),
            (
                json!({"type": "track", "event": "X", "userId": "u", "timestamp": "yesterday"}),
                "invalid_timestamp",
                "timestamp",
            ),
            (
                json!({"type": "track", "event": "X", "userId": "u", "timestamp": "2099-01-01T00:00:00Z"}),
                "timestamp_in_future",
                "timestamp",
            ),
            (
                json!({"type": "alias", "userId": "u"}),
                "missing_field",
                "previousId",
            ),
        ];
        for (raw, code, field) in cases {
            let e = parse_message(&raw, None, now, "fallback").unwrap_err();
            assert_eq!((e.code.as_str(), e.field.as_str()), (code, field), "{raw}");
        }
    }

    #[test]
    fn endpoint_type_wins_and_missing_message_id_falls_back() {
        let raw =
            json!({"userId": 42, "name": "Home", "properties": {"url": "https://loja.com.br/"}});
        let m = parse_message(
            &raw,
            Some(EventType::Page),
            at("2026-01-01T00:00:00Z"),
            "gen-1",
        )
        .unwrap();
        assert_eq!(m.event_type, EventType::Page);
        assert_eq!(m.user_id.as_deref(), Some("42"));
        assert_eq!(m.message_id, "gen-1");
        assert_eq!(m.channel, "web");
    }

    #[test]
    fn channel_comes_from_properties_then_context() {
        let raw = json!({"type": "track", "event": "Message Read", "userId": "u", "properties": {"channel": "WhatsApp"}});
        assert_eq!(
            parse_message(&raw, None, at("2026-01-01T00:00:00Z"), "g")
                .unwrap()
                .channel,
            "whatsapp"
        );
        let raw =
            json!({"type": "track", "event": "X", "userId": "u", "context": {"channel": "mobile"}});
        assert_eq!(
            parse_message(&raw, None, at("2026-01-01T00:00:00Z"), "g")
                .unwrap()
                .channel,
            "mobile"
        );
    }
}
