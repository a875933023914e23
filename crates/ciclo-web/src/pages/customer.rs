//! Customer 360: the editable profile, identities and merge history with un-merge, order stats
//! and orders with items, tags, the lifecycle stage (since when, and the stage history), the
//! segments and lists the customer is in, and the unified timeline with filters and infinite
//! scroll. The events ciclo writes itself (`Segment Entered`, `Segment Exited`, `Lifecycle Stage
//! Changed`) read as sentences with their own icons, linking to the segment.
//!
//! The timeline's first page comes with the page. Its "older events" link works without
//! JavaScript (the same page, starting at the cursor); the script instead fetches the
//! fragment route, which renders only the next items, and appends them when the link scrolls
//! into view.

use crate::format::{format_integer, format_money};
use crate::i18n::{fill, Locale};
use crate::pages::{field_messages, form_errors, see_other};
use crate::render;
use crate::session::{blocking, core, Console, ErrorPage, FormData, WebError};
use crate::WebState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ciclo_core::customers::{CustomerView, Page};
use ciclo_core::evaluate::{SEGMENT_ENTERED, SEGMENT_EXITED, STAGE_CHANGED};
use ciclo_core::lifecycle::CustomerLifecycle;
use ciclo_core::segments::SegmentView;
use ciclo_core::CoreError;
use ciclo_domain::event::{Event, EventType, CHANNELS};
use ciclo_domain::ids::{CustomerId, MergeId, SegmentId};
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::Permission;
use ciclo_domain::order::{Order, ORDER_COMPLETED};
use ciclo_store::TimelineQuery;
use minijinja::{context, Value};
use serde_json::Map;
use std::collections::{BTreeMap, HashMap};

/// Events per timeline page.
pub(crate) const TIMELINE_PAGE: i64 = 20;
/// Orders shown on the page (newest first).
const ORDERS_SHOWN: i64 = 20;
/// Orders shown open; the others are behind a "more orders" disclosure.
const ORDERS_OPEN: usize = 3;
/// Properties shown under each event.
const PROPERTIES_SHOWN: usize = 6;

/// The profile fields of the edit form, in order.
pub(crate) const PROFILE_FIELDS: &[&str] = &[
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
];

const EVENT_TYPES: &[&str] = &["track", "page", "screen", "identify", "group", "alias"];

fn parse_id(raw: &str) -> Result<CustomerId, WebError> {
    CustomerId::parse(raw).map_err(|_| WebError::Page(ErrorPage::NotFound))
}

/// The timeline filters from the query (unknown values ignored).
#[derive(Debug, Clone, Default)]
struct TimelineFilters {
    event_type: String,
    channel: String,
}

impl TimelineFilters {
    fn parse(q: &HashMap<String, String>) -> TimelineFilters {
        let event_type = q
            .get("type")
            .filter(|t| EVENT_TYPES.contains(&t.as_str()))
            .cloned()
            .unwrap_or_default();
        let channel = q
            .get("channel")
            .filter(|c| CHANNELS.contains(&c.as_str()))
            .cloned()
            .unwrap_or_default();
        TimelineFilters {
            event_type,
            channel,
        }
    }

    fn query(&self) -> TimelineQuery {
        TimelineQuery {
            event_types: EventType::parse(&self.event_type).into_iter().collect(),
            channels: if self.channel.is_empty() {
                Vec::new()
            } else {
                vec![self.channel.clone()]
            },
            limit: TIMELINE_PAGE,
            ..Default::default()
        }
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if !self.event_type.is_empty() {
            pairs.push(("type", self.event_type.clone()));
        }
        if !self.channel.is_empty() {
            pairs.push(("channel", self.channel.clone()));
        }
        pairs
    }
}

/// Keys of an order event whose numbers are amounts of money (Segment e-commerce spec).
const MONEY_KEYS: &[&str] = &[
    "total", "revenue", "subtotal", "value", "price", "shipping", "tax", "discount",
];

/// One property of an event as the timeline shows it: money formatted (order events), long
/// values cut. Lists are counted by the caller.
fn value_text(key: &str, value: &serde_json::Value, money: Option<(&str, Locale)>) -> String {
    let text = match (value, money) {
        (serde_json::Value::String(s), _) => s.clone(),
        (serde_json::Value::Null, _) => "—".into(),
        (serde_json::Value::Number(n), Some((currency, locale))) if MONEY_KEYS.contains(&key) => {
            match n.as_f64() {
                Some(amount) => format_money((amount * 100.0).round() as i64, currency, locale),
                None => n.to_string(),
            }
        }
        (other, _) => other.to_string(),
    };
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(79).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// What the timeline says about the events ciclo itself writes: entering or leaving a segment
/// or list, and moving to another lifecycle stage. `None` for every other event.
fn system_item(event: &Event) -> Option<Value> {
    if event.source != "system" {
        return None;
    }
    let text = |key: &str| {
        event
            .properties
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let stage = |key: &str| text(key).and_then(|s| Stage::parse(&s)).map(Stage::as_str);
    match event.name.as_deref()? {
        name @ (SEGMENT_ENTERED | SEGMENT_EXITED) => Some(context! {
            kind => if name == SEGMENT_ENTERED { "segment_entered" } else { "segment_exited" },
            list => text("segment_kind").as_deref() == Some("static"),
            segment_id => text("segment_id").filter(|id| SegmentId::parse(id).is_ok()),
            segment_name => text("segment_name").unwrap_or_default(),
            initial => event.properties.get("initial").and_then(serde_json::Value::as_bool).unwrap_or(false),
        }),
        STAGE_CHANGED => Some(context! {
            kind => "stage_changed",
            from => stage("from"),
            to => stage("to"),
            initial => false,
        }),
        _ => None,
    }
}

fn event_item(event: &Event, locale: Locale, workspace_currency: &str) -> Value {
    if let Some(system) = system_item(event) {
        return context! {
            id => event.id.as_str(),
            kind => event.event_type.as_str(),
            name => event.name.as_deref(),
            channel => "other",
            source => event.source.as_str(),
            timestamp => event.timestamp.to_rfc3339(),
            details => Vec::<Value>::new(),
            system => system,
        };
    }
    let is_order = event.name.as_deref() == Some(ORDER_COMPLETED);
    let currency = event
        .properties
        .get("currency")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(workspace_currency);
    let details: Vec<Value> = event
        .properties
        .iter()
        .filter(|(k, _)| k.as_str() != "channel" && !(is_order && k.as_str() == "currency"))
        .take(PROPERTIES_SHOWN)
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::Array(items) => fill(
                    &locale.text("timeline.items"),
                    &[("count", format_integer(items.len() as i64, locale))],
                ),
                _ => value_text(k, v, is_order.then_some((currency, locale))),
            };
            context! { key => k.as_str(), value => value }
        })
        .collect();
    context! {
        id => event.id.as_str(),
        kind => event.event_type.as_str(),
        name => event.name.as_deref(),
        channel => if CHANNELS.contains(&event.channel.as_str()) { event.channel.as_str() } else { "other" },
        source => event.source.as_str(),
        timestamp => event.timestamp.to_rfc3339(),
        details => details,
        system => None::<Value>,
    }
}

/// The template values of one timeline page: its items and the link to the next.
fn timeline_values(
    console: &Console,
    id: &CustomerId,
    filters: &TimelineFilters,
    page: &Page<Event>,
) -> Value {
    let currency = console.actor.workspace.currency.as_str();
    let more = page.next_cursor.as_ref().map(|cursor| {
        let mut pairs = filters.pairs();
        pairs.push(("before", cursor.clone()));
        let page_url = format!(
            "/customers/{id}?{}#timeline",
            super::customers::query_string(&pairs)
        );
        let mut pairs = filters.pairs();
        pairs.push(("cursor", cursor.clone()));
        let fragment_url = format!(
            "/customers/{id}/timeline?{}",
            super::customers::query_string(&pairs)
        );
        context! { url => page_url, fragment => fragment_url }
    });
    context! {
        events => page.items.iter().map(|e| event_item(e, console.locale, currency)).collect::<Vec<_>>(),
        more => more,
    }
}

/// The edit form's values as the customer has them.
fn form_values(view: &CustomerView) -> BTreeMap<&'static str, String> {
    let c = &view.customer;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    BTreeMap::from([
        ("name", text(&c.name)),
        (
            "email",
            c.email.as_ref().map(|e| e.to_string()).unwrap_or_default(),
        ),
        (
            "phone",
            c.phone.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        ),
        (
            "whatsapp",
            c.whatsapp
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
        (
            "birthday",
            c.birthday
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
        ),
        ("city", text(&c.city)),
        ("state", text(&c.state)),
        ("country", text(&c.country)),
        ("locale", text(&c.locale)),
        ("time_zone", text(&c.time_zone)),
        ("tags", c.tags.join(", ")),
    ])
}

/// Everything the page shows about one customer.
struct Loaded {
    view: CustomerView,
    orders: Vec<Order>,
    timeline: Page<Event>,
    lifecycle: CustomerLifecycle,
    segments: Vec<(SegmentView, ciclo_domain::Timestamp)>,
}

async fn load(
    state: &WebState,
    console: &Console,
    id: CustomerId,
    filters: &TimelineFilters,
    cursor: Option<String>,
) -> Result<Loaded, WebError> {
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let query = filters.query();
    core(move || {
        let view = ciclo.get_customer(&actor, &id)?;
        let orders = ciclo.customer_orders(&actor, &view.customer.id, ORDERS_SHOWN)?;
        let timeline =
            match ciclo.timeline(&actor, &view.customer.id, query.clone(), cursor.as_deref()) {
                Err(CoreError::Invalid(_)) => {
                    ciclo.timeline(&actor, &view.customer.id, query, None)?
                }
                other => other?,
            };
        let lifecycle = ciclo.customer_lifecycle(&actor, &view.customer.id)?;
        let segments = ciclo.customer_segments(&actor, &view.customer.id)?;
        Ok(Loaded {
            view,
            orders,
            timeline,
            lifecycle,
            segments,
        })
    })
    .await
}

fn render_page(
    state: &WebState,
    console: &Console,
    loaded: &Loaded,
    filters: &TimelineFilters,
    form: BTreeMap<&'static str, String>,
    errors: BTreeMap<String, String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let view = &loaded.view;
    let customer = &view.customer;
    let identities: Vec<Value> = view
        .identities
        .iter()
        .map(|i| {
            context! {
                kind => i.key.kind.as_string(),
                value => i.key.value.as_str(),
                source => i.source.as_str(),
                created_at => i.created_at.to_rfc3339(),
                profile => i.customer_id.as_str(),
                merged_profile => i.customer_id != customer.id,
            }
        })
        .collect();
    let merges: Vec<Value> = view
        .merges
        .iter()
        .rev()
        .map(|m| {
            context! {
                id => m.id.as_str(),
                winner => m.winner_id.as_str(),
                loser => m.loser_id.as_str(),
                via => m.via.as_ref().map(|k| k.to_string()),
                source => m.source.as_str(),
                created_at => m.created_at.to_rfc3339(),
                undone_at => m.undone_at.map(|t| t.to_rfc3339()),
            }
        })
        .collect();
    let conflicts: Vec<Value> = view
        .conflicts
        .iter()
        .map(|c| {
            let other = if view.profile_ids.contains(&c.customer_a) {
                &c.customer_b
            } else {
                &c.customer_a
            };
            context! {
                via => c.via.to_string(),
                other => other.as_str(),
                created_at => c.created_at.to_rfc3339(),
                resolution => c.resolution.as_deref(),
            }
        })
        .collect();
    let form_fields: Vec<Value> = PROFILE_FIELDS
        .iter()
        .map(|f| context! { name => *f, value => form.get(f).cloned().unwrap_or_default() })
        .collect();
    let lifecycle = &loaded.lifecycle;
    let stage_history: Vec<Value> = lifecycle
        .history
        .iter()
        .map(|change| {
            context! {
                from => change.from.map(Stage::as_str),
                to => change.to.as_str(),
                at => change.at.to_rfc3339(),
            }
        })
        .collect();
    let memberships: Vec<Value> = loaded
        .segments
        .iter()
        .map(|(segment, since)| {
            context! {
                id => segment.record.id.as_str(),
                name => segment.record.name.as_str(),
                kind => segment.record.kind.as_str(),
                since => since.to_rfc3339(),
            }
        })
        .collect();
    let values = context! {
        lifecycle => context! {
            stage => lifecycle.stage.map(Stage::as_str),
            since => lifecycle.since.map(|t| t.to_rfc3339()),
            history => stage_history,
        },
        memberships => memberships,
        customer => Value::from_serialize(customer),
        display_name => customer.name.clone()
            .or_else(|| customer.email.as_ref().map(|e| e.to_string()))
            .or_else(|| customer.phone.as_ref().map(|p| p.to_string())),
        aov_minor => customer.stats.average_order_value_minor(),
        identities => identities,
        merges => merges,
        conflicts => conflicts,
        orders => Value::from_serialize(&loaded.orders[..loaded.orders.len().min(ORDERS_OPEN)]),
        more_orders => Value::from_serialize(&loaded.orders[loaded.orders.len().min(ORDERS_OPEN)..]),
        timeline => timeline_values(console, &customer.id, filters, &loaded.timeline),
        timeline_filters => context! { kind => filters.event_type.as_str(), channel => filters.channel.as_str() },
        event_types => EVENT_TYPES,
        channels => CHANNELS,
        form_fields => form_fields,
        errors => errors,
    };
    render::page_with_status(
        &state.templates,
        console,
        "customer.html",
        "customers",
        values,
        status,
    )
}

/// `GET /customers/{id}`.
pub(crate) async fn page(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let filters = TimelineFilters::parse(&q);
    let cursor = q.get("before").filter(|c| !c.is_empty()).cloned();
    let loaded = load(&state, &console, id.clone(), &filters, cursor).await?;
    if loaded.view.customer.id != id {
        // A profile merged away: its address leads to the surviving profile.
        return Ok(see_other(&format!(
            "/customers/{}",
            loaded.view.customer.id
        )));
    }
    let form = form_values(&loaded.view);
    render_page(
        &state,
        &console,
        &loaded,
        &filters,
        form,
        BTreeMap::new(),
        StatusCode::OK,
    )
}

/// `GET /customers/{id}/timeline`: the next timeline items as an HTML fragment.
pub(crate) async fn timeline_fragment(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let filters = TimelineFilters::parse(&q);
    let cursor = q.get("cursor").filter(|c| !c.is_empty()).cloned();
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let query = filters.query();
    let customer = id.clone();
    let page = core(move || ciclo.timeline(&actor, &customer, query, cursor.as_deref())).await?;
    let values = context! { timeline => timeline_values(&console, &id, &filters, &page) };
    render::page(
        &state.templates,
        &console,
        "timeline_items.html",
        "customers",
        values,
    )
}

/// The body `update_customer` takes, from the edit form: an empty field clears the value.
fn update_body(form: &FormData) -> Map<String, serde_json::Value> {
    let mut body = Map::new();
    for field in PROFILE_FIELDS {
        let Some(raw) = form.get(field) else { continue };
        let raw = raw.trim();
        let value = if *field == "tags" {
            serde_json::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| serde_json::Value::String(t.to_string()))
                    .collect(),
            )
        } else if raw.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::String(raw.to_string())
        };
        body.insert(field.to_string(), value);
    }
    body
}

/// `POST /customers/{id}`: saves the profile form; on invalid input shows it again with the
/// messages next to the fields.
pub(crate) async fn update(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::WriteCustomers)?;
    let id = parse_id(&id)?;
    let patch = update_body(&form);
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let target = id.clone();
    let outcome = blocking(move || ciclo.update_customer(&actor, &target, &patch)).await?;
    let errors = match outcome {
        Ok(view) => {
            return Ok(see_other(&format!(
                "/customers/{}?notice=saved",
                view.customer.id
            )));
        }
        Err(error) => match form_errors(&error) {
            Some(errors) => errors,
            None => return Err(error.into()),
        },
    };
    let filters = TimelineFilters::default();
    let loaded = load(&state, &console, id, &filters, None).await?;
    let submitted: BTreeMap<&'static str, String> = PROFILE_FIELDS
        .iter()
        .map(|f| (*f, form.get(f).unwrap_or_default().to_string()))
        .collect();
    let messages = field_messages(console.locale, &errors);
    render_page(
        &state,
        &console,
        &loaded,
        &filters,
        submitted,
        messages,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

/// `POST /merges/{id}/undo`: un-merges, then shows the surviving profile.
pub(crate) async fn unmerge(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::WriteCustomers)?;
    let merge = MergeId::parse(&id).map_err(|_| WebError::Page(ErrorPage::NotFound))?;
    let back = CustomerId::parse(&form.text("customer")).ok();
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let outcome = blocking(move || ciclo.unmerge(&actor, &merge)).await?;
    match outcome {
        Ok(record) => Ok(see_other(&format!(
            "/customers/{}?notice=unmerged#identities",
            record.winner_id
        ))),
        Err(CoreError::Conflict(_)) => match back {
            Some(customer) => Ok(see_other(&format!(
                "/customers/{customer}?alert=unmerge_failed#identities"
            ))),
            None => Err(ErrorPage::BadRequest.into()),
        },
        Err(other) => Err(other.into()),
    }
}
