//! Segments (dynamic, their members follow a definition in the segment language) and static
//! lists (members added by hand, by id or from a CSV file):
//!
//! * `GET /segments`: every segment and list, with kind, members, "changes with time" and when
//!   it last changed; buttons to create either;
//! * `GET|POST /segments/new`, `GET|POST /segments/{id}/edit` ([`editor`]): name, description
//!   and, for segments, the definition with a short syntax help, a preview (count and a sample
//!   of members, nothing saved) and errors under the textarea with line, column and the text
//!   highlighted; `POST /segments/preview` answers the preview as an HTML fragment for the
//!   script, which swaps it in without reloading;
//! * `GET /segments/{id}` ([`detail`]): definition, members now, the count over the last 90
//!   days, members page by page, CSV export, delete; for lists, adding members by id, a CSV
//!   upload with its report, and removing a member.

pub(crate) mod definition;
pub(crate) mod detail;
pub(crate) mod editor;

use crate::render;
use crate::session::{core, Console, ErrorPage, WebError};
use crate::WebState;
use axum::extract::State;
use axum::response::Response;
use ciclo_core::segments::SegmentView;
use ciclo_domain::ids::SegmentId;
use minijinja::{context, Value};

pub(crate) fn parse_id(raw: &str) -> Result<SegmentId, WebError> {
    SegmentId::parse(raw).map_err(|_| WebError::Page(ErrorPage::NotFound))
}

/// A segment as the list and the 360 page show it.
pub(crate) fn summary(view: &SegmentView) -> Value {
    let r = &view.record;
    context! {
        id => r.id.as_str(),
        name => r.name.as_str(),
        description => r.description.as_str(),
        kind => r.kind.as_str(),
        member_count => r.member_count,
        time_relative => view.time_relative,
        updated_at => r.updated_at.to_rfc3339(),
        evaluated_at => r.evaluated_at.map(|t| t.to_rfc3339()),
        created_at => r.created_at.to_rfc3339(),
    }
}

/// `GET /segments`.
pub(crate) async fn list(
    State(state): State<WebState>,
    console: Console,
) -> Result<Response, WebError> {
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let segments = core(move || ciclo.list_segments(&actor)).await?;
    let rows: Vec<Value> = segments.iter().map(summary).collect();
    let dynamic = segments
        .iter()
        .filter(|s| s.record.kind == ciclo_store::SegmentKind::Dynamic)
        .count();
    let values = context! {
        segments => rows,
        dynamic_count => dynamic,
        list_count => segments.len() - dynamic,
    };
    render::page(
        &state.templates,
        &console,
        "segments.html",
        "segments",
        values,
    )
}
