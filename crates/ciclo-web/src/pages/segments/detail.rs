//! One segment or list: what it is, its members now and over time, its members page by page,
//! the CSV export, deletion, and (lists) adding members by id or from a CSV file and removing
//! one. Adding and uploading answer with the same page and a report of what happened (added,
//! already there, rejected inputs by position or line).

use super::{parse_id, summary};
use crate::charts::{line_chart, ChartPoint};
use crate::format::{format_date, format_day_month, format_integer, time_zone};
use crate::i18n::{fill, Locale};
use crate::pages::{field_messages, see_other};
use crate::render;
use crate::session::{blocking, core, Console, ErrorPage, WebError};
use crate::WebState;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use ciclo_core::segments::{ListChange, SegmentView};
use ciclo_core::CoreError;
use ciclo_domain::customer::Customer;
use ciclo_domain::ids::SegmentId;
use ciclo_domain::operator::Permission;
use ciclo_domain::{FieldError, Timestamp};
use ciclo_store::{CustomerQuery, CustomerSort, SegmentCount, SegmentKind};
use minijinja::{context, Value};
use std::collections::HashMap;

/// Members per page.
pub(crate) const MEMBERS_PAGE: i64 = 25;
/// Days the count chart covers.
pub(crate) const HISTORY_DAYS: i64 = 90;
/// Most ids the "add members" form takes at once.
pub(crate) const MAX_IDS: usize = 1_000;
/// Rejected inputs listed in a report.
const REJECTED_SHOWN: usize = 200;
/// Marks the first page in the `back` list.
const FIRST_PAGE: &str = ".";
/// How many pages back the URL remembers.
const MAX_BACK: usize = 50;

/// What a form on this page sends back with it.
#[derive(Default)]
pub(crate) struct Extras {
    /// What adding, removing or uploading did: the action, its result, the ids typed (to show
    /// a rejected one by its position).
    report: Option<(&'static str, ListChange, Vec<String>)>,
    /// Errors of the "add members" form.
    add_errors: Vec<FieldError>,
    /// The ids typed, shown again after an error.
    add_value: String,
    /// Why an upload was refused (`segment_detail.upload_errors.*`).
    upload_error: Option<String>,
    /// The segment could not be deleted because others include it.
    delete_refused: bool,
}

/// The member count per day over the last [`HISTORY_DAYS`] days (since creation if later),
/// each day showing the count at its end. `None` while there is only one day to show: a line
/// needs two.
pub(crate) fn history_chart(
    points: &[SegmentCount],
    created: Timestamp,
    now: Timestamp,
    tz: chrono_tz::Tz,
    locale: Locale,
) -> Option<String> {
    let today = now.with_timezone(&tz).date_naive();
    let first = created
        .with_timezone(&tz)
        .date_naive()
        .max(today - Duration::days(HISTORY_DAYS - 1));
    if first >= today {
        return None;
    }
    let mut sorted: Vec<&SegmentCount> = points.iter().collect();
    sorted.sort_by_key(|p| p.at);
    let mut chart = Vec::new();
    let mut next = 0;
    let mut current = 0;
    let mut day = first;
    while day <= today {
        while next < sorted.len() && sorted[next].at.with_timezone(&tz).date_naive() <= day {
            current = sorted[next].count;
            next += 1;
        }
        chart.push(ChartPoint::new(
            format_day_month(day, locale),
            current,
            format!(
                "{} · {}",
                format_date(day, locale),
                format_integer(current, locale)
            ),
        ));
        match day.succ_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    Some(line_chart(
        "chart-segment-history",
        &locale.text("segment_detail.history"),
        &chart,
        &|n| format_integer(n, locale),
    ))
}

fn member_row(c: &Customer) -> Value {
    context! {
        id => c.id.as_str(),
        name => c.name.as_deref(),
        email => c.email.as_ref().map(|e| e.to_string()),
        phone => c.phone.as_ref().map(|p| p.to_string()),
        city => c.city.as_deref(),
        orders_count => c.stats.orders_count,
        total_spent_minor => c.stats.total_spent_minor,
        last_seen_at => c.last_seen_at.to_rfc3339(),
    }
}

/// A rejected input as the report shows it, the reason in the operator's language.
fn rejected_rows(
    locale: Locale,
    action: &str,
    change: &ListChange,
    typed: &[String],
) -> Vec<Value> {
    change
        .rejected
        .iter()
        .take(REJECTED_SHOWN)
        .map(|r| {
            let key = format!("segment_detail.rejections.{}", r.code);
            let reason = if locale.has(&key) {
                locale.text(&key)
            } else {
                r.reason.clone()
            };
            // Typed ids are numbered from 0 by core; people count from 1.
            let (place, value) = if action.starts_with("csv") {
                (
                    fill(
                        &locale.text("segment_detail.report.line"),
                        &[("n", r.line.to_string())],
                    ),
                    None,
                )
            } else {
                (
                    fill(
                        &locale.text("segment_detail.report.item"),
                        &[("n", (r.line + 1).to_string())],
                    ),
                    typed.get(r.line as usize).cloned(),
                )
            };
            context! { place => place, value => value, code => r.code.as_str(), reason => reason }
        })
        .collect()
}

/// Segments whose definitions include this one (they keep it from being deleted).
fn included_by(all: &[SegmentView], this: &SegmentView) -> Vec<Value> {
    all.iter()
        .filter(|s| s.record.id != this.record.id)
        .filter(|s| {
            s.includes
                .iter()
                .any(|r| r == this.record.id.as_str() || r.eq_ignore_ascii_case(&this.record.name))
        })
        .map(|s| context! { id => s.record.id.as_str(), name => s.record.name.as_str() })
        .collect()
}

/// The segments this one includes, linked when they exist.
fn includes(all: &[SegmentView], this: &SegmentView) -> Vec<Value> {
    this.includes
        .iter()
        .map(|reference| {
            let found = all.iter().find(|s| {
                s.record.id.as_str() == reference || s.record.name.eq_ignore_ascii_case(reference)
            });
            context! {
                id => found.map(|s| s.record.id.as_str().to_string()),
                name => found.map_or(reference.as_str(), |s| s.record.name.as_str()),
            }
        })
        .collect()
}

fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let query = crate::pages::customers::query_string(pairs);
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

pub(crate) async fn render_detail(
    state: &WebState,
    console: &Console,
    id: SegmentId,
    q: &HashMap<String, String>,
    extras: Extras,
    status: StatusCode,
) -> Result<Response, WebError> {
    let cursor = q.get("cursor").filter(|c| !c.is_empty()).cloned();
    let back: Vec<String> = q
        .get("back")
        .map(|b| {
            b.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let asked = cursor.clone();
    let (view, all, history, page) = core(move || {
        let view = ciclo.get_segment(&actor, &id)?;
        let all = ciclo.list_segments(&actor)?;
        let history = ciclo.segment_history(&actor, &id, view.record.created_at)?;
        let query = CustomerQuery {
            segment: Some(id.clone()),
            sort: CustomerSort::Newest,
            limit: MEMBERS_PAGE,
            ..CustomerQuery::default()
        };
        let page = match ciclo.list_customers(&actor, query.clone(), asked.as_deref()) {
            // A mangled cursor starts over.
            Err(CoreError::Invalid(_)) => ciclo.list_customers(&actor, query, None)?,
            other => other?,
        };
        Ok((view, all, history, page))
    })
    .await?;
    let locale = console.locale;
    let tz = time_zone(&console.actor.workspace.time_zone);
    let now = state.ciclo.clock.now();
    let path = format!("/segments/{}", view.record.id);
    let next_url = page.next_cursor.as_ref().map(|next| {
        let mut trail = back.clone();
        trail.push(cursor.clone().unwrap_or_else(|| FIRST_PAGE.into()));
        let skip = trail.len().saturating_sub(MAX_BACK);
        let pairs = [("cursor", next.clone()), ("back", trail[skip..].join(","))];
        format!("{}#members", with_query(&path, &pairs))
    });
    let prev_url = back.last().map(|previous| {
        let mut pairs = Vec::new();
        if previous != FIRST_PAGE {
            pairs.push(("cursor", previous.clone()));
            let rest = &back[..back.len() - 1];
            if !rest.is_empty() {
                pairs.push(("back", rest.join(",")));
            }
        }
        format!("{}#members", with_query(&path, &pairs))
    });
    let report = extras.report.as_ref().map(|(action, change, typed)| {
        context! {
            action => *action,
            csv => action.starts_with("csv"),
            changed => change.changed,
            unchanged => change.unchanged,
            rejected_count => change.rejected.len(),
            rejected => rejected_rows(locale, action, change, typed),
            more_rejected => change.rejected.len() > REJECTED_SHOWN,
        }
    });
    let upload_error = extras.upload_error.as_ref().map(|code| {
        let key = format!("segment_detail.upload_errors.{code}");
        if locale.has(&key) {
            locale.text(&key)
        } else {
            locale.text("segment_detail.upload_errors.unreadable")
        }
    });
    let values = context! {
        segment => summary(&view),
        text => view.text.as_deref(),
        is_list => view.record.kind == SegmentKind::Static,
        includes => includes(&all, &view),
        included_by => included_by(&all, &view),
        chart => history_chart(&history, view.record.created_at, now, tz, locale).map(Value::from_safe_string),
        history_days => HISTORY_DAYS,
        members => page.items.iter().map(member_row).collect::<Vec<_>>(),
        next_url => next_url,
        prev_url => prev_url,
        first_url => (!back.is_empty()).then(|| format!("{path}#members")),
        report => report,
        add_errors => field_messages(locale, &extras.add_errors),
        add_value => extras.add_value,
        upload_error => upload_error,
        delete_refused => extras.delete_refused,
        max_ids => MAX_IDS,
    };
    render::page_with_status(
        &state.templates,
        console,
        "segment.html",
        "segments",
        values,
        status,
    )
}

/// `GET /segments/{id}` (`cursor`, `back`: the members page).
pub(crate) async fn page(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    render_detail(&state, &console, id, &q, Extras::default(), StatusCode::OK).await
}

/// `POST /segments/{id}/delete`. A segment other segments include is not deleted: the page
/// says which ones (409).
pub(crate) async fn delete(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    console.form(&body)?;
    console.require(Permission::WriteCustomers)?;
    let id = parse_id(&id)?;
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let target = id.clone();
    match blocking(move || ciclo.delete_segment(&actor, &target)).await? {
        Ok(()) => Ok(see_other("/segments?notice=segment_deleted")),
        Err(CoreError::Conflict(e)) if e.code == "segment_in_use" => {
            let extras = Extras {
                delete_refused: true,
                ..Extras::default()
            };
            render_detail(
                &state,
                &console,
                id,
                &HashMap::new(),
                extras,
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

/// The ids typed in the "add members" box: separated by spaces, commas, semicolons or lines.
pub(crate) fn typed_ids(raw: &str) -> Vec<String> {
    raw.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `POST /segments/{id}/members`: adds the customers whose ids were typed to a list.
pub(crate) async fn add_members(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::WriteCustomers)?;
    let id = parse_id(&id)?;
    let raw = form.get("ids").unwrap_or_default().to_string();
    let ids = typed_ids(&raw);
    let problem = if ids.is_empty() {
        Some("ids_missing")
    } else if ids.len() > MAX_IDS {
        Some("too_many_ids")
    } else {
        None
    };
    if let Some(code) = problem {
        let extras = Extras {
            add_errors: vec![FieldError::new(code, "ids", "")],
            add_value: raw,
            ..Extras::default()
        };
        return render_detail(
            &state,
            &console,
            id,
            &HashMap::new(),
            extras,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let (target, typed) = (id.clone(), ids.clone());
    let change = core(move || ciclo.add_to_list(&actor, &target, &typed)).await?;
    let extras = Extras {
        add_value: if change.rejected.is_empty() {
            String::new()
        } else {
            raw
        },
        report: Some(("add", change, ids)),
        ..Extras::default()
    };
    render_detail(
        &state,
        &console,
        id,
        &HashMap::new(),
        extras,
        StatusCode::OK,
    )
    .await
}

/// `POST /segments/{id}/members/remove`: takes one customer out of a list.
pub(crate) async fn remove_member(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::WriteCustomers)?;
    let id = parse_id(&id)?;
    let customer = form.text("customer");
    if customer.is_empty() {
        return Err(ErrorPage::BadRequest.into());
    }
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let target = id.clone();
    let change = core(move || ciclo.remove_from_list(&actor, &target, &[customer])).await?;
    let notice = if change.changed > 0 {
        "member_removed"
    } else {
        "member_not_removed"
    };
    Ok(see_other(&format!(
        "/segments/{id}?notice={notice}#members"
    )))
}

/// `POST /segments/{id}/upload` (multipart: `file`, `mode` = `add` or `remove`): adds (or
/// removes) the customers a CSV file names, and shows the report.
pub(crate) async fn upload(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let mut csrf = String::new();
    let mut remove = false;
    let mut file: Option<Bytes> = None;
    let mut failure: Option<(&str, StatusCode)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                tracing::info!(error = %e, "console: unreadable list upload");
                failure = Some(("unreadable", StatusCode::BAD_REQUEST));
                break;
            }
        };
        match field.name().unwrap_or_default() {
            "csrf_token" => csrf = field.text().await.unwrap_or_default(),
            "mode" => remove = field.text().await.unwrap_or_default() == "remove",
            "file" => match field.bytes().await {
                Ok(bytes) => file = Some(bytes),
                Err(e) => {
                    tracing::info!(error = %e, "console: list upload cut short (too large?)");
                    failure = Some(("too_large", StatusCode::PAYLOAD_TOO_LARGE));
                    break;
                }
            },
            _ => {}
        }
    }
    console.check_csrf(&csrf)?;
    console.require(Permission::WriteCustomers)?;
    let refuse = |code: &str| Extras {
        upload_error: Some(code.to_string()),
        ..Extras::default()
    };
    if let Some((code, status)) = failure {
        return render_detail(&state, &console, id, &HashMap::new(), refuse(code), status).await;
    }
    let Some(bytes) = file.filter(|b| !b.is_empty()) else {
        return render_detail(
            &state,
            &console,
            id,
            &HashMap::new(),
            refuse("file_missing"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let target = id.clone();
    let outcome = blocking(move || ciclo.list_from_csv(&actor, &target, &bytes, remove)).await?;
    match outcome {
        Ok(change) => {
            let action = if remove { "csv_remove" } else { "csv_add" };
            let extras = Extras {
                report: Some((action, change, Vec::new())),
                ..Extras::default()
            };
            render_detail(
                &state,
                &console,
                id,
                &HashMap::new(),
                extras,
                StatusCode::OK,
            )
            .await
        }
        Err(CoreError::Invalid(errors)) => {
            let code = errors
                .first()
                .map_or("unreadable".to_string(), |e| e.code.clone());
            render_detail(
                &state,
                &console,
                id,
                &HashMap::new(),
                refuse(&code),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

/// A file name from a segment's name: `Clientes VIP — SP` → `clientes-vip-sp.csv`.
pub(crate) fn file_name(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        let c = match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' | 'Á' | 'À' | 'Â' | 'Ã' | 'Ä' => 'a',
            'é' | 'ê' | 'è' | 'É' | 'Ê' | 'È' => 'e',
            'í' | 'Í' => 'i',
            'ó' | 'ô' | 'õ' | 'ö' | 'Ó' | 'Ô' | 'Õ' | 'Ö' => 'o',
            'ú' | 'ü' | 'Ú' | 'Ü' => 'u',
            'ç' | 'Ç' => 'c',
            other => other.to_ascii_lowercase(),
        };
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(60).collect();
    if slug.is_empty() {
        "segment.csv".to_string()
    } else {
        format!("{slug}.csv")
    }
}

/// A CSV answer to download.
pub(crate) fn csv_response(name: &str, bytes: Vec<u8>) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /segments/{id}/export.csv`: the members as CSV (the columns of the customer export).
pub(crate) async fn export(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    console.require(Permission::ExportCustomers)?;
    let id = parse_id(&id)?;
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let (name, bytes) = core(move || {
        let view = ciclo.get_segment(&actor, &id)?;
        let query = CustomerQuery {
            segment: Some(id),
            limit: ciclo_core::customers::MAX_PAGE,
            ..CustomerQuery::default()
        };
        let mut out = Vec::new();
        ciclo.export_customers_csv(&actor, query, &mut out)?;
        Ok((view.record.name, out))
    })
    .await?;
    Ok(csv_response(&file_name(&name), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain_ascii() {
        assert_eq!(
            file_name("Clientes VIP — São Paulo"),
            "clientes-vip-sao-paulo.csv"
        );
        assert_eq!(file_name("!!!"), "segment.csv");
        assert_eq!(
            file_name("Aniversariantes de março"),
            "aniversariantes-de-marco.csv"
        );
    }

    #[test]
    fn typed_ids_split_on_any_separator() {
        assert_eq!(
            typed_ids(" cus_1, cus_2;cus_3\n\ncus_4\tcus_5 "),
            vec!["cus_1", "cus_2", "cus_3", "cus_4", "cus_5"]
        );
        assert!(typed_ids(" , ; ").is_empty());
    }

    #[test]
    fn the_history_chart_has_one_point_per_day_since_creation() {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let points = vec![
            SegmentCount {
                at: at("2026-05-29T12:00:00Z"),
                count: 0,
            },
            SegmentCount {
                at: at("2026-05-30T15:00:00Z"),
                count: 1234,
            },
            SegmentCount {
                at: at("2026-06-01T11:00:00Z"),
                count: 1300,
            },
        ];
        let svg = history_chart(
            &points,
            at("2026-05-29T12:00:00Z"),
            at("2026-06-01T12:00:00Z"),
            chrono_tz::America::Sao_Paulo,
            Locale::PtBr,
        )
        .unwrap();
        assert_eq!(svg.matches("<circle").count(), 4, "{svg}");
        assert!(svg.contains("30/05/2026 · 1.234"), "{svg}");
        assert!(svg.contains("01/06/2026 · 1.300"), "{svg}");
        // Created today: nothing to draw a line through yet.
        assert!(history_chart(
            &points[..1],
            at("2026-06-01T10:00:00Z"),
            at("2026-06-01T12:00:00Z"),
            chrono_tz::America::Sao_Paulo,
            Locale::PtBr,
        )
        .is_none());
    }
}
