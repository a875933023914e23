//! The customer list: search, filters, sortable columns, keyset pagination, bulk tagging and
//! the CSV export of the current filter.
//!
//! Pagination follows core's keyset cursors, which only go forward; the way back is carried in
//! the URL (`back`, the cursors of the pages before, `.` for the first), so "previous" needs no
//! server state and costs the same as "next" however deep the operator goes. The filter
//! parameters have the names of the JSON API's (`search`, `tag`, `city`, `has_ordered`,
//! `seen_after`, `sort`), so the export link is the API's export with the same query. The
//! lifecycle `stage` and `segment` filters are the console's own: with either, the export link
//! is the console's `/customers/export.csv`, which knows them.

use crate::pages::{field_messages, see_other};
use crate::render;
use crate::session::{blocking, core, Console, WebError};
use crate::WebState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use ciclo_core::CoreError;
use ciclo_domain::ids::{CustomerId, SegmentId};
use ciclo_domain::lifecycle::Stage;
use ciclo_domain::operator::Permission;
use ciclo_domain::FieldError;
use ciclo_store::{CustomerQuery, CustomerSort};
use minijinja::{context, Value};
use serde_json::{json, Map};
use std::collections::{BTreeMap, HashMap};

/// Rows per page.
pub(crate) const PAGE_SIZE: i64 = 25;
/// Marks the first page in the `back` list.
const FIRST_PAGE: &str = ".";
/// How many pages back the URL remembers (older ones fall off; "first page" always works).
const MAX_BACK: usize = 50;

/// The filters of the list as the form shows them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Filters {
    pub search: String,
    pub tag: String,
    pub city: String,
    /// `""`, `"true"` or `"false"`.
    pub has_ordered: String,
    /// `YYYY-MM-DD` or empty.
    pub seen_after: String,
    /// A lifecycle stage (`retention`…) or empty.
    pub stage: String,
    /// A segment or list id or empty.
    pub segment: String,
    pub sort: &'static str,
}

fn sort_name(sort: CustomerSort) -> &'static str {
    match sort {
        CustomerSort::Newest => "newest",
        CustomerSort::LastSeen => "last_seen",
        CustomerSort::TotalSpent => "total_spent",
        CustomerSort::Name => "name",
    }
}

fn parse_sort(raw: &str) -> CustomerSort {
    match raw {
        "last_seen" => CustomerSort::LastSeen,
        "total_spent" => CustomerSort::TotalSpent,
        "name" => CustomerSort::Name,
        _ => CustomerSort::Newest,
    }
}

impl Filters {
    /// Reads the filters; a malformed date is reported and ignored.
    pub fn parse(
        q: &HashMap<String, String>,
        errors: &mut Vec<FieldError>,
    ) -> (Filters, CustomerQuery) {
        let get = |k: &str| q.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
        let sort = parse_sort(&get("sort"));
        let mut filters = Filters {
            search: get("search"),
            tag: get("tag"),
            city: get("city"),
            has_ordered: match get("has_ordered").as_str() {
                "true" => "true".into(),
                "false" => "false".into(),
                _ => String::new(),
            },
            seen_after: get("seen_after"),
            stage: Stage::parse(&get("stage"))
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            segment: SegmentId::parse(&get("segment"))
                .map(|s| s.to_string())
                .unwrap_or_default(),
            sort: sort_name(sort),
        };
        let seen_after = if filters.seen_after.is_empty() {
            None
        } else {
            match chrono::NaiveDate::parse_from_str(&filters.seen_after, "%Y-%m-%d") {
                Ok(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
                Err(_) => {
                    errors.push(FieldError::new(
                        "invalid_date",
                        "seen_after",
                        "expected YYYY-MM-DD",
                    ));
                    filters.seen_after.clear();
                    None
                }
            }
        };
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let query = CustomerQuery {
            search: nonempty(&filters.search),
            tag: nonempty(&filters.tag),
            city: nonempty(&filters.city),
            has_ordered: match filters.has_ordered.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            seen_after,
            stage: Stage::parse(&filters.stage),
            segment: SegmentId::parse(&filters.segment).ok(),
            sort,
            after: None,
            limit: PAGE_SIZE,
        };
        (filters, query)
    }

    /// The filters as query pairs (empty ones left out), sort last.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        for (name, value) in [
            ("search", &self.search),
            ("tag", &self.tag),
            ("city", &self.city),
            ("has_ordered", &self.has_ordered),
            ("seen_after", &self.seen_after),
            ("stage", &self.stage),
            ("segment", &self.segment),
        ] {
            if !value.is_empty() {
                pairs.push((name, value.clone()));
            }
        }
        if self.sort != "newest" {
            pairs.push(("sort", self.sort.to_string()));
        }
        pairs
    }
}

/// `pairs` as a query string (without `?`).
pub(crate) fn query_string(pairs: &[(&str, String)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let query = query_string(pairs);
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// `GET /customers`.
pub(crate) async fn list(
    State(state): State<WebState>,
    console: Console,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let mut errors = Vec::new();
    let (filters, query) = Filters::parse(&q, &mut errors);
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
    let (page, segments) = core(move || {
        let page = match ciclo.list_customers(&actor, query.clone(), asked.as_deref()) {
            // A cursor from another sort or a mangled URL: start over rather than fail.
            Err(CoreError::Invalid(_)) => ciclo.list_customers(&actor, query, None)?,
            other => other?,
        };
        Ok((page, ciclo.list_segments(&actor)?))
    })
    .await?;
    let segment_options: Vec<Value> = segments
        .iter()
        .map(|s| {
            context! {
                id => s.record.id.as_str(),
                name => s.record.name.as_str(),
                kind => s.record.kind.as_str(),
            }
        })
        .collect();
    let segment_name = segments
        .iter()
        .find(|s| s.record.id.as_str() == filters.segment)
        .map(|s| s.record.name.clone());

    let base = filters.pairs();
    let next_url = page.next_cursor.as_ref().map(|next| {
        let mut trail = back.clone();
        trail.push(cursor.clone().unwrap_or_else(|| FIRST_PAGE.into()));
        let skip = trail.len().saturating_sub(MAX_BACK);
        let mut pairs = base.clone();
        pairs.push(("cursor", next.clone()));
        pairs.push(("back", trail[skip..].join(",")));
        with_query("/customers", &pairs)
    });
    let prev_url = back.last().map(|previous| {
        let mut pairs = base.clone();
        if previous != FIRST_PAGE {
            pairs.push(("cursor", previous.clone()));
            let rest = &back[..back.len() - 1];
            if !rest.is_empty() {
                pairs.push(("back", rest.join(",")));
            }
        }
        with_query("/customers", &pairs)
    });
    let sort_links: BTreeMap<&str, Value> = ["name", "last_seen", "total_spent", "newest"]
        .iter()
        .map(|sort| {
            let mut f = filters.clone();
            f.sort = sort;
            let link = context! { url => with_query("/customers", &f.pairs()), active => filters.sort == *sort };
            (*sort, link)
        })
        .collect();
    // The JSON API's export knows the profile filters; stage and segment need the console's.
    let export_url = if filters.stage.is_empty() && filters.segment.is_empty() {
        with_query("/api/v1/exports/customers.csv", &base)
    } else {
        with_query("/customers/export.csv", &base)
    };
    let here_query = console
        .here
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    let return_to: String = form_urlencoded::parse(here_query.as_bytes())
        .filter(|(k, _)| k != "notice" && k != "alert")
        .fold(
            form_urlencoded::Serializer::new(String::new()),
            |mut s, (k, v)| {
                s.append_pair(&k, &v);
                s
            },
        )
        .finish();
    let values = context! {
        customers => Value::from_serialize(&page.items),
        filters => Value::from_serialize(&filters),
        errors => field_messages(console.locale, &errors),
        next_url => next_url,
        prev_url => prev_url,
        first_url => (!back.is_empty()).then(|| with_query("/customers", &base)),
        sort_links => sort_links,
        export_url => console.can(Permission::ExportCustomers).then_some(export_url),
        return_to => return_to,
        filtered => !base.iter().all(|(k, _)| *k == "sort"),
        stages => Stage::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        segments => segment_options,
        segment_name => segment_name,
    };
    render::page(
        &state.templates,
        &console,
        "customers.html",
        "customers",
        values,
    )
}

/// `POST /customers/bulk-tag`: adds one tag to every selected customer.
pub(crate) async fn bulk_tag(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = console.form(&body)?;
    console.require(Permission::WriteCustomers)?;
    let return_to: String = form
        .text("return_to")
        .chars()
        .filter(|c| !c.is_control() && *c != '#')
        .collect();
    let back = |key: &str, value: &str| {
        let sep = if return_to.is_empty() { "" } else { "&" };
        format!("/customers?{return_to}{sep}{key}={value}")
    };
    let tag = form.text("tag");
    let ids: Vec<CustomerId> = form
        .all("ids")
        .iter()
        .filter_map(|raw| CustomerId::parse(raw).ok())
        .take(ciclo_core::customers::MAX_PAGE as usize)
        .collect();
    if ids.is_empty() {
        return Ok(see_other(&back("alert", "none_selected")));
    }
    if tag.is_empty() || tag.chars().count() > 64 {
        return Ok(see_other(&back("alert", "tag_missing")));
    }
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    blocking(move || -> Result<(), CoreError> {
        for id in ids {
            let view = match ciclo.get_customer(&actor, &id) {
                Ok(view) => view,
                // Deleted since the page was shown: nothing to tag.
                Err(CoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            if view.customer.tags.iter().any(|t| t == &tag) {
                continue;
            }
            let mut tags = view.customer.tags.clone();
            tags.push(tag.clone());
            let mut body = Map::new();
            body.insert("tags".into(), json!(tags));
            ciclo.update_customer(&actor, &view.customer.id, &body)?;
        }
        Ok(())
    })
    .await??;
    Ok(see_other(&back("notice", "tagged")))
}

/// `GET /customers/export.csv`: the customers of the list's filters (stage and segment too) as
/// CSV, with the columns of the JSON API's export.
pub(crate) async fn export(
    State(state): State<WebState>,
    console: Console,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    console.require(Permission::ExportCustomers)?;
    let mut errors = Vec::new();
    let (_, mut query) = Filters::parse(&q, &mut errors);
    query.limit = ciclo_core::customers::MAX_PAGE;
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let bytes = core(move || {
        let mut out = Vec::new();
        ciclo.export_customers_csv(&actor, query, &mut out)?;
        Ok(out)
    })
    .await?;
    Ok(crate::pages::segments::detail::csv_response(
        "customers.csv",
        bytes,
    ))
}
