//! What a segment needs from the outside world, so the store can do the expensive part well.
//!
//! * [`event_requirements`] lists the distinct event counts a segment needs: (event name,
//!   property filters, window). The store computes each with one indexed query per batch of
//!   customers (by workspace, event name and time) and puts the counts in the
//!   [`CustomerSnapshot`](super::CustomerSnapshot); on a new event, only requirements with that
//!   name and whose filters the event passes ([`EventRequirement::matches_event`]) change.
//! * [`depends_on`] says which changes can move a customer in or out: the fields read, the event
//!   names counted, the segments referenced and whether the passing of time alone can (a
//!   "time-relative" segment, re-evaluated on a schedule).

use super::ast::{EventCondition, Expr, PropertyFilter, Test, Window};
use super::fields;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One event count a segment needs: events named `event`, within `window`, passing `filters`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventRequirement {
    pub event: String,
    #[serde(rename = "where")]
    pub filters: Vec<PropertyFilter>,
    pub window: Window,
}

impl EventRequirement {
    /// Whether this is the requirement of `condition` (compared in place, without building one).
    pub fn is_for(&self, condition: &EventCondition) -> bool {
        self.event == condition.event
            && self.window == condition.window
            && self.filters == condition.filters
    }

    /// Whether the count depends on `now` (the window slides, or a filter is relative).
    pub fn is_time_relative(&self) -> bool {
        matches!(self.window, Window::Last { .. })
            || self.filters.iter().any(|f| is_time_relative(&f.test))
    }
}

impl From<&EventCondition> for EventRequirement {
    fn from(condition: &EventCondition) -> EventRequirement {
        EventRequirement {
            event: condition.event.clone(),
            filters: condition.filters.clone(),
            window: condition.window.clone(),
        }
    }
}

/// The distinct event counts the segment needs, in order of first appearance. Conditions that
/// differ only in their count (`at least 3` and `never`) share one requirement.
pub fn event_requirements(expr: &Expr) -> Vec<EventRequirement> {
    let mut requirements: Vec<EventRequirement> = Vec::new();
    expr.walk(&mut |node| {
        if let Expr::Event(condition) = node {
            if !requirements.iter().any(|r| r.is_for(condition)) {
                requirements.push(condition.into());
            }
        }
    });
    requirements
}

/// What can change a segment's membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dependencies {
    /// Attributes read, in canonical spelling (`city`, `traits.plan`, `rfm_group`).
    pub fields: BTreeSet<String>,
    /// Event names counted.
    pub event_names: BTreeSet<String>,
    /// Segments referenced, as written.
    pub segments: BTreeSet<String>,
    /// Whether membership can change with time alone, so the segment must be re-evaluated on
    /// a schedule (relative dates, sliding windows, birthdays).
    pub time_relative: bool,
}

impl Dependencies {
    /// Whether a new event of this name may change membership.
    pub fn depends_on_event(&self, name: &str) -> bool {
        self.event_names.contains(name)
    }

    /// Whether a change to `field` (canonical name, or a trait path) may change membership. A
    /// change to `traits.address` touches `traits.address.city` and the other way round.
    pub fn depends_on_field(&self, field: &str) -> bool {
        let field = fields::canonical(field);
        self.fields.iter().any(|read| {
            *read == field
                || read
                    .strip_prefix(field.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
                || field
                    .strip_prefix(read.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

/// The dependencies of one segment. References are not followed: a segment that includes a
/// time-relative segment changes when that one is re-evaluated, which the caller tracks
/// through `segments`.
pub fn depends_on(expr: &Expr) -> Dependencies {
    let mut deps = Dependencies::default();
    expr.walk(&mut |node| match node {
        Expr::Attribute(condition) => {
            deps.fields.insert(fields::canonical(&condition.attribute));
            deps.time_relative |= is_time_relative(&condition.test);
        }
        Expr::Event(condition) => {
            deps.event_names.insert(condition.event.clone());
            deps.time_relative |= EventRequirement::from(condition).is_time_relative();
        }
        Expr::Segment(condition) => {
            deps.segments.insert(condition.segment.clone());
        }
        Expr::And { .. } | Expr::Or { .. } | Expr::Not { .. } => {}
    });
    deps
}

/// Whether a test's outcome moves with `now`.
pub fn is_time_relative(test: &Test) -> bool {
    matches!(
        test,
        Test::WithinLast { .. }
            | Test::MoreThanAgo { .. }
            | Test::InNext { .. }
            | Test::AnniversaryThisMonth
            | Test::AnniversaryToday
            | Test::AnniversaryInNextDays { .. }
    )
}
