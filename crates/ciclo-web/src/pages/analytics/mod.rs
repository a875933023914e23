//! The analytics screens (`/analytics/*`), one module each: the RFM grid and its groups' customers
//! (`rfm`), acquisition cohorts (`cohorts`), the customer-base metrics over time (`metrics`),
//! predicted CLV (`clv`) and the lifecycle funnel (`funnel`). They share a row of tabs
//! (`analytics_nav.html`), the main navigation entry "Analytics", and the SVG charts of
//! [`charts`].
//!
//! Each page calls one `ciclo-core` use case on a blocking thread; every number shown is
//! computed there, so the console and the JSON API (`/api/v1/analytics/*`) agree.

pub(crate) mod charts;
pub(crate) mod clv;
pub(crate) mod cohorts;
pub(crate) mod funnel;
pub(crate) mod metrics;
pub(crate) mod rfm;

use crate::i18n::Locale;
use crate::pages::see_other;
use axum::response::Response;
use ciclo_domain::analytics::RfmSegment;
use std::collections::HashMap;

/// `GET /analytics`: the first tab.
pub(crate) async fn index(_console: crate::session::Console) -> Response {
    see_other("/analytics/rfm")
}

/// The translated name of an RFM group.
pub(crate) fn segment_name(locale: Locale, segment: RfmSegment) -> String {
    locale.text(&format!("analytics.segments.{}", segment.code()))
}

/// A whole-number query parameter, if present and valid.
pub(crate) fn number_param<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    name: &str,
) -> Option<T> {
    q.get(name).and_then(|v| v.trim().parse::<T>().ok())
}
