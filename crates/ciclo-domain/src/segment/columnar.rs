//! Segment evaluation over a whole workspace at once, from columns kept in memory.
//!
//! [`matches`](super::matches) decides for one customer from a snapshot; this module decides
//! for every customer from columns: one array per attribute (a row per profile), one
//! time-sorted array per event name, and membership bitsets of other segments. A definition
//! becomes a handful of passes over arrays, so a million customers take milliseconds instead
//! of a million snapshots read from the database.
//!
//! The semantics are the snapshot evaluator's, not a copy of them: a test on a text or JSON
//! column runs [`holds`] once per *distinct* value (a city column has a few hundred), a numeric
//! column runs it per row, and an instant column turns range tests (`within 30 days`, `before
//! 2024-01-01`) into two integer comparisons computed by [`instant_range`], which sits beside
//! the calendar code it mirrors. The tests in `tests.rs` run random definitions both ways and
//! require the same members.
//!
//! Rows are profiles, numbered by the caller. A merged-away profile is a row too (its events
//! stay attributed to it in the store): `parent` sends its event counts to the surviving
//! profile, and it is never a member itself (`alive` is false).

use super::ast::{Expr, Test};
use super::eval::{attribute_value, holds, instant_range, json_path, Context, Val};
use super::requirements::EventRequirement;
use super::CustomerSnapshot;
use crate::Timestamp;
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A set of rows, one bit each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    /// No row set.
    pub fn empty(len: usize) -> Bits {
        Bits {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Every row set.
    pub fn full(len: usize) -> Bits {
        let mut bits = Bits {
            words: vec![u64::MAX; len.div_ceil(64)],
            len,
        };
        bits.trim();
        bits
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Grows to `len` rows, the new ones unset.
    pub fn grow(&mut self, len: usize) {
        if len > self.len {
            self.words.resize(len.div_ceil(64), 0);
            self.len = len;
        }
    }

    pub fn get(&self, row: usize) -> bool {
        row < self.len && self.words[row / 64] & (1 << (row % 64)) != 0
    }

    pub fn set(&mut self, row: usize, on: bool) {
        if row >= self.len {
            self.grow(row + 1);
        }
        let mask = 1u64 << (row % 64);
        if on {
            self.words[row / 64] |= mask;
        } else {
            self.words[row / 64] &= !mask;
        }
    }

    /// How many rows are set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The set rows, in order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(i * 64 + bit)
            })
        })
    }

    fn and(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
        // Rows `other` does not have are not in it.
        let common = other.words.len().min(self.words.len());
        for a in &mut self.words[common..] {
            *a = 0;
        }
    }

    fn or(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// Keeps the rows of `within` that are not set here.
    fn complement_within(&mut self, within: &Bits) {
        for (i, a) in self.words.iter_mut().enumerate() {
            *a = !*a & within.words.get(i).copied().unwrap_or(0);
        }
    }

    /// Clears the bits past `len` in the last word.
    fn trim(&mut self) {
        if !self.len.is_multiple_of(64) {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << (self.len % 64)) - 1;
            }
        }
    }

    fn from_fn(len: usize, mut test: impl FnMut(usize) -> bool) -> Bits {
        let mut words = vec![0u64; len.div_ceil(64)];
        for (i, word) in words.iter_mut().enumerate() {
            let start = i * 64;
            let end = (start + 64).min(len);
            let mut w = 0u64;
            for row in start..end {
                if test(row) {
                    w |= 1 << (row - start);
                }
            }
            *word = w;
        }
        Bits { words, len }
    }
}

/// An owned value of a column, as the tests see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Missing,
    Text(Box<str>),
    Number(f64),
    Bool(bool),
    Date(NaiveDate),
    Instant(Timestamp),
    Tags(Box<[String]>),
    Json(Box<Value>),
}

impl Cell {
    fn of(value: Val<'_>) -> Cell {
        match value {
            Val::Missing => Cell::Missing,
            Val::Text(s) => Cell::Text(s.into()),
            Val::Number(n) => Cell::Number(n),
            Val::Bool(b) => Cell::Bool(b),
            Val::Date(d) => Cell::Date(d),
            Val::Instant(t) => Cell::Instant(t),
            Val::Tags(tags) => Cell::Tags(tags.into()),
            Val::Json(v) => Cell::Json(Box::new(v.clone())),
        }
    }

    fn val(&self) -> Val<'_> {
        match self {
            Cell::Missing => Val::Missing,
            Cell::Text(s) => Val::Text(s),
            Cell::Number(n) => Val::Number(*n),
            Cell::Bool(b) => Val::Bool(*b),
            Cell::Date(d) => Val::Date(*d),
            Cell::Instant(t) => Val::Instant(*t),
            Cell::Tags(tags) => Val::Tags(tags),
            Cell::Json(v) => Val::Json(v),
        }
    }

    /// A key that is equal exactly when the cells are (for the dictionary).
    fn key(&self) -> String {
        match self {
            Cell::Missing => "m".into(),
            Cell::Text(s) => format!("t{s}"),
            Cell::Number(n) => format!("n{}", n.to_bits()),
            Cell::Bool(b) => format!("b{b}"),
            Cell::Date(d) => format!("d{d}"),
            Cell::Instant(t) => format!("i{}", t.timestamp_nanos_opt().unwrap_or_default()),
            Cell::Tags(tags) => format!("l{}", serde_json::to_string(tags).unwrap_or_default()),
            Cell::Json(v) => format!("j{v}"),
        }
    }
}

/// The value of attribute `name` for one customer, as a column row holds it.
pub fn attribute_cell(name: &str, snapshot: &CustomerSnapshot) -> Cell {
    Cell::of(attribute_value(name, snapshot))
}

/// The value at a dotted property path of an event, as a column row holds it.
pub fn property_cell(properties: &Map<String, Value>, path: &str) -> Cell {
    Cell::of(json_path(properties, path))
}

/// Distinct values and, per row, which one it holds.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    rows: Vec<u32>,
    values: Vec<Cell>,
    lookup: HashMap<String, u32>,
}

impl Dictionary {
    fn intern(&mut self, cell: Cell) -> u32 {
        let key = cell.key();
        if let Some(&id) = self.lookup.get(&key) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(cell);
        self.lookup.insert(key, id);
        id
    }

    fn push(&mut self, cell: Cell) {
        let id = self.intern(cell);
        self.rows.push(id);
    }

    fn set(&mut self, row: usize, cell: Cell) {
        let id = self.intern(cell);
        if row >= self.rows.len() {
            let missing = self.intern(Cell::Missing);
            self.rows.resize(row + 1, missing);
        }
        self.rows[row] = id;
    }

    /// Which distinct values pass `test`.
    fn passing(&self, test: &Test, cx: &Context) -> Vec<bool> {
        self.values
            .iter()
            .map(|v| holds(test, v.val(), cx))
            .collect()
    }

    /// The row's value id, `None` past the end (a row added after the column was built).
    fn id(&self, row: usize) -> Option<u32> {
        self.rows.get(row).copied()
    }
}

/// One attribute for every row.
#[derive(Debug, Clone)]
pub enum Column {
    /// Numbers; NaN where there is none.
    Numbers(Vec<f64>),
    /// Instants in microseconds since the epoch; `i64::MIN` where there is none.
    Instants(Vec<i64>),
    /// Anything else (text, lists, dates, JSON), through a dictionary.
    Values(Dictionary),
}

const NO_INSTANT: i64 = i64::MIN;

impl Column {
    /// An empty column that will hold values of this kind of attribute.
    pub fn for_attribute(name: &str) -> Column {
        use super::fields::{resolve, FieldType};
        match resolve(name).map(|(_, ty)| ty) {
            Some(FieldType::Number) => Column::Numbers(Vec::new()),
            Some(FieldType::Instant) => Column::Instants(Vec::new()),
            _ => Column::Values(Dictionary::default()),
        }
    }

    /// A column of few distinct values given as codes: row `i` holds `values[codes[i]]`
    /// (lifecycle stages, computed for every row at once).
    pub fn from_codes(codes: Vec<u32>, values: Vec<Cell>) -> Column {
        let lookup = values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.key(), i as u32))
            .collect();
        Column::Values(Dictionary {
            rows: codes,
            values,
            lookup,
        })
    }

    /// Appends the next row.
    pub fn push(&mut self, cell: Cell) {
        let row = self.len();
        self.set(row, cell);
    }

    /// Sets a row (growing the column with missing values when needed).
    pub fn set(&mut self, row: usize, cell: Cell) {
        match self {
            Column::Numbers(values) => {
                if row >= values.len() {
                    values.resize(row + 1, f64::NAN);
                }
                values[row] = match cell {
                    Cell::Number(n) => n,
                    _ => f64::NAN,
                };
            }
            Column::Instants(values) => {
                if row >= values.len() {
                    values.resize(row + 1, NO_INSTANT);
                }
                values[row] = match cell {
                    Cell::Instant(t) => t.timestamp_micros(),
                    _ => NO_INSTANT,
                };
            }
            Column::Values(dictionary) => {
                if row == dictionary.rows.len() {
                    dictionary.push(cell);
                } else {
                    dictionary.set(row, cell);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Numbers(v) => v.len(),
            Column::Instants(v) => v.len(),
            Column::Values(d) => d.rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows (of `len`) whose value passes `test`.
    fn test(&self, test: &Test, cx: &Context, len: usize) -> Bits {
        match self {
            Column::Numbers(values) => Bits::from_fn(len, |row| {
                let value = match values.get(row) {
                    Some(n) if !n.is_nan() => Val::Number(*n),
                    _ => Val::Missing,
                };
                holds(test, value, cx)
            }),
            Column::Instants(values) => {
                let missing = holds(test, Val::Missing, cx);
                match instant_range(test, cx) {
                    Some((low, high)) => Bits::from_fn(len, |row| match values.get(row) {
                        Some(&t) if t != NO_INSTANT => low <= t && t < high,
                        _ => missing,
                    }),
                    None => Bits::from_fn(len, |row| match values.get(row) {
                        Some(&t) if t != NO_INSTANT => DateTime::from_timestamp_micros(t)
                            .is_some_and(|t| holds(test, Val::Instant(t), cx)),
                        _ => missing,
                    }),
                }
            }
            Column::Values(dictionary) => {
                let passing = dictionary.passing(test, cx);
                let missing = holds(test, Val::Missing, cx);
                Bits::from_fn(len, |row| match dictionary.id(row) {
                    Some(id) => passing[id as usize],
                    None => missing,
                })
            }
        }
    }
}

/// One event of a profile, as [`EventColumn::replace_profile`] takes them: when, and its
/// properties.
pub type ProfileEvent = (Timestamp, Map<String, Value>);

/// Every event of one name: who (row of the profile it is attributed to), when, and the
/// values of the property paths that filters have asked for, sorted by time so a window is a
/// binary search. Profiles whose events changed since the column was built are kept aside in
/// full (`replaced`) until the next rebuild.
#[derive(Debug, Clone, Default)]
pub struct EventColumn {
    at: Vec<i64>,
    profile: Vec<u32>,
    /// Per property path: the value id of each event (aligned with `at`).
    properties: HashMap<String, Dictionary>,
    /// Profiles whose rows above are out of date, with their current events.
    replaced: HashMap<u32, Vec<ProfileEvent>>,
    replaced_events: usize,
}

/// Builds an [`EventColumn`] from events in any order, keeping only the property paths asked
/// for (the JSON of each event is dropped once read).
#[derive(Debug, Default)]
pub struct EventColumnBuilder {
    column: EventColumn,
    paths: Vec<String>,
}

impl EventColumnBuilder {
    pub fn new(paths: Vec<String>) -> EventColumnBuilder {
        let mut column = EventColumn::default();
        for path in &paths {
            column
                .properties
                .insert(path.clone(), Dictionary::default());
        }
        EventColumnBuilder { column, paths }
    }

    pub fn push(&mut self, profile: u32, at: Timestamp, properties: &Map<String, Value>) {
        self.column.at.push(at.timestamp_micros());
        self.column.profile.push(profile);
        for path in &self.paths {
            if let Some(d) = self.column.properties.get_mut(path) {
                d.push(property_cell(properties, path));
            }
        }
    }

    pub fn finish(self) -> EventColumn {
        let mut column = self.column;
        let mut order: Vec<u32> = (0..column.at.len() as u32).collect();
        order.sort_unstable_by_key(|&i| column.at[i as usize]);
        column.at = order.iter().map(|&i| column.at[i as usize]).collect();
        column.profile = order.iter().map(|&i| column.profile[i as usize]).collect();
        for dictionary in column.properties.values_mut() {
            dictionary.rows = order.iter().map(|&i| dictionary.rows[i as usize]).collect();
        }
        column
    }
}

impl EventColumn {
    /// The property paths this column can filter on.
    pub fn has_paths<'a>(&self, mut paths: impl Iterator<Item = &'a str>) -> bool {
        paths.all(|p| self.properties.contains_key(p))
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.properties.keys().map(String::as_str)
    }

    /// How many events the column holds (rows kept aside included).
    pub fn len(&self) -> usize {
        self.at.len() + self.replaced_events
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events kept aside since the build; past a share of the column, rebuilding is cheaper
    /// than checking them on every count.
    pub fn replaced_events(&self) -> usize {
        self.replaced_events
    }

    /// Replaces all the events of one profile (after new events, or a correction).
    pub fn replace_profile(&mut self, profile: u32, events: Vec<ProfileEvent>) {
        let added = events.len();
        if let Some(old) = self.replaced.insert(profile, events) {
            self.replaced_events -= old.len();
        }
        self.replaced_events += added;
    }

    /// Adds, per surviving profile (`parent` maps each row to it), how many events meet
    /// `requirement` at `now`.
    pub fn count_into(
        &self,
        requirement: &EventRequirement,
        now: Timestamp,
        tz: Tz,
        parent: &[u32],
        counts: &mut [u32],
    ) {
        let cx = Context { now, tz };
        let bounds = requirement.window.bounds(now, tz);
        let start = bounds.since.map_or(0, |since| {
            let since = since.timestamp_micros()
                + i64::from(!since.timestamp_subsec_nanos().is_multiple_of(1_000));
            self.at.partition_point(|&t| t < since)
        });
        let end = bounds.until.map_or(self.at.len(), |until| {
            let until = until.timestamp_micros()
                + i64::from(!until.timestamp_subsec_nanos().is_multiple_of(1_000));
            self.at.partition_point(|&t| t < until)
        });
        // Per filter, which distinct values of its path pass.
        let filters: Vec<(&Dictionary, Vec<bool>)> = requirement
            .filters
            .iter()
            .filter_map(|f| {
                let d = self.properties.get(&f.property)?;
                Some((d, d.passing(&f.test, &cx)))
            })
            .collect();
        let complete = filters.len() == requirement.filters.len();
        let check_replaced = !self.replaced.is_empty();
        for i in start..end.max(start) {
            let profile = self.profile[i];
            if check_replaced && self.replaced.contains_key(&profile) {
                continue;
            }
            if !complete
                || filters
                    .iter()
                    .all(|(d, passing)| passing[d.rows[i] as usize])
            {
                if let Some(slot) = parent
                    .get(profile as usize)
                    .and_then(|&p| counts.get_mut(p as usize))
                {
                    *slot += 1;
                }
            }
        }
        for (&profile, events) in &self.replaced {
            let n = events
                .iter()
                .filter(|(at, properties)| {
                    bounds.contains(*at)
                        && requirement
                            .filters
                            .iter()
                            .all(|f| f.matches(properties, now, tz))
                })
                .count() as u32;
            if let Some(slot) = parent
                .get(profile as usize)
                .and_then(|&p| counts.get_mut(p as usize))
            {
                *slot += n;
            }
        }
    }
}

/// What a definition is evaluated over: the columns, event columns and other segments'
/// memberships of one workspace. Missing pieces are the caller's to load first (see
/// [`ColumnarInput::missing`]).
pub struct ColumnarInput<'a> {
    /// How many rows (profiles) there are.
    pub len: usize,
    /// Surviving profiles: the only possible members.
    pub alive: &'a Bits,
    /// Per row, the surviving profile its events count for (itself when it survives).
    pub parent: &'a [u32],
    /// Attribute columns by canonical name.
    pub columns: &'a HashMap<String, Column>,
    /// Event columns by event name.
    pub events: &'a HashMap<String, EventColumn>,
    /// Membership of another segment, by the reference written in the definition.
    pub segments: &'a dyn Fn(&str) -> Option<&'a Bits>,
    pub now: Timestamp,
    pub tz: Tz,
}

/// What a definition needs that the input does not have yet.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Missing {
    /// Attributes (canonical names) without a column.
    pub attributes: Vec<String>,
    /// Event names without a column, or whose column lacks filtered paths: (name, paths).
    pub events: Vec<(String, Vec<String>)>,
}

impl Missing {
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.events.is_empty()
    }
}

impl ColumnarInput<'_> {
    /// The columns `expr` reads that are not loaded.
    pub fn missing(&self, expr: &Expr) -> Missing {
        missing(expr, self.columns, self.events)
    }

    /// The surviving profiles in the segment `expr`. A column, event column or segment that is
    /// not loaded reads as "no value" (load them first: see [`ColumnarInput::missing`]).
    pub fn evaluate(&self, expr: &Expr) -> Bits {
        let cx = Context {
            now: self.now,
            tz: self.tz,
        };
        let mut counts: Vec<(EventRequirement, Vec<u32>)> = Vec::new();
        self.eval(expr, &cx, &mut counts)
    }

    fn eval(
        &self,
        expr: &Expr,
        cx: &Context,
        counts: &mut Vec<(EventRequirement, Vec<u32>)>,
    ) -> Bits {
        match expr {
            Expr::And { all } => {
                let mut out = self.alive.clone();
                for e in all {
                    out.and(&self.eval(e, cx, counts));
                }
                out
            }
            Expr::Or { any } => {
                let mut out = Bits::empty(self.len);
                for e in any {
                    out.or(&self.eval(e, cx, counts));
                }
                out
            }
            Expr::Not { expr } => {
                let mut out = self.eval(expr, cx, counts);
                out.complement_within(self.alive);
                out
            }
            Expr::Attribute(condition) => {
                let name = super::fields::canonical(&condition.attribute);
                let mut out = match self.columns.get(&name) {
                    Some(column) => column.test(&condition.test, cx, self.len),
                    None if holds(&condition.test, Val::Missing, cx) => Bits::full(self.len),
                    None => Bits::empty(self.len),
                };
                out.and(self.alive);
                out
            }
            Expr::Event(condition) => {
                let position = match counts.iter().position(|(r, _)| r.is_for(condition)) {
                    Some(p) => p,
                    None => {
                        let requirement = EventRequirement::from(condition);
                        let mut per_row = vec![0u32; self.len];
                        if let Some(column) = self.events.get(&condition.event) {
                            column.count_into(
                                &requirement,
                                self.now,
                                self.tz,
                                self.parent,
                                &mut per_row,
                            );
                        }
                        counts.push((requirement, per_row));
                        counts.len() - 1
                    }
                };
                let per_row = &counts[position].1;
                let count = condition.count;
                let mut out = Bits::from_fn(self.len, |row| count.holds(u64::from(per_row[row])));
                out.and(self.alive);
                out
            }
            Expr::Segment(condition) => {
                let mut out = match (self.segments)(&condition.segment) {
                    Some(bits) => {
                        let mut b = bits.clone();
                        b.grow(self.len);
                        b
                    }
                    None => Bits::empty(self.len),
                };
                out.and(self.alive);
                out
            }
        }
    }
}

fn missing(
    expr: &Expr,
    columns: &HashMap<String, Column>,
    events: &HashMap<String, EventColumn>,
) -> Missing {
    let mut out = Missing::default();
    expr.walk(&mut |node| match node {
        Expr::Attribute(condition) => {
            let name = super::fields::canonical(&condition.attribute);
            if !columns.contains_key(&name) && !out.attributes.contains(&name) {
                out.attributes.push(name);
            }
        }
        Expr::Event(condition) => {
            let paths: Vec<String> = condition
                .filters
                .iter()
                .map(|f| f.property.clone())
                .collect();
            let loaded = events
                .get(&condition.event)
                .is_some_and(|c| c.has_paths(paths.iter().map(String::as_str)));
            if !loaded {
                match out.events.iter_mut().find(|(n, _)| *n == condition.event) {
                    Some((_, known)) => {
                        for p in paths {
                            if !known.contains(&p) {
                                known.push(p);
                            }
                        }
                    }
                    None => out.events.push((condition.event.clone(), paths)),
                }
            }
        }
        _ => {}
    });
    out
}

#[cfg(test)]
#[path = "columnar_tests.rs"]
mod tests;
