//! Segments (dynamic, kept current by `evaluate`) and static lists: create, change, delete,
//! preview, members, count history, and list membership by hand, API or CSV.

use crate::accounts::Actor;
use crate::error::{CoreError, CoreResult};
use crate::evaluate::{
    newest_page, Evaluation, MergedProfiles, Outcome, Plan, SEGMENT_ENTERED, SEGMENT_EXITED,
};
use crate::identity::root_of;
use crate::Ciclo;
use ciclo_domain::customer::Customer;
use ciclo_domain::identity::{IdentityKey, IdentityKind};
use ciclo_domain::ids::{CustomerId, SegmentId};
use ciclo_domain::operator::Permission;
use ciclo_domain::segment::{
    check_references, depends_on, parse_with_spans, print, validate, Expr, ResolvedSegment,
    SegmentError,
};
use ciclo_domain::{FieldError, Timestamp};
use ciclo_store::{
    read, write, RejectedRow, SegmentCount, SegmentKind, SegmentRecord, StoreError, Tx,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

/// Longest segment name.
pub const MAX_NAME: usize = 120;
/// Most sample members a preview returns.
pub const MAX_SAMPLE: usize = 50;

/// Customers per page of a preview without the segment index.
const PAGE: i64 = 5_000;

/// What an operator or API client sends to create or change a segment.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SegmentInput {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `dynamic` (default) or `static`; fixed once created.
    pub kind: Option<String>,
    /// For dynamic segments: the definition as text (`city = "Recife" and orders_count >= 2`)
    /// or as its JSON form.
    pub definition: Option<Value>,
}

/// A segment as operators and the API see it.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentView {
    #[serde(flatten)]
    pub record: SegmentRecord,
    /// The definition in the segment language (dynamic segments).
    pub text: Option<String>,
    /// Whether membership changes with time alone (re-evaluated on a schedule).
    pub time_relative: bool,
    /// Names of the segments this one includes.
    pub includes: Vec<String>,
}

impl SegmentView {
    fn of(record: SegmentRecord) -> SegmentView {
        let deps = record.definition.as_ref().map(depends_on);
        SegmentView {
            text: record.definition.as_ref().map(print),
            time_relative: deps.as_ref().is_some_and(|d| d.time_relative),
            includes: deps
                .map(|d| d.segments.into_iter().collect())
                .unwrap_or_default(),
            record,
        }
    }
}

/// The result of a preview: how many customers match now, and a few of them.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentPreview {
    pub count: usize,
    /// Customers looked at: every surviving profile (the segment index evaluates them all at
    /// once).
    pub customers: usize,
    pub sample: Vec<Customer>,
    /// The definition as the language prints it.
    pub text: String,
    pub elapsed_ms: f64,
}

/// What changing a list's members did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListChange {
    /// Members added or removed now.
    pub changed: i64,
    /// Customers that already were (or were not) members.
    pub unchanged: i64,
    /// Inputs that named nobody: (position or line, what was given, why).
    pub rejected: Vec<RejectedRow>,
}

fn invalid(code: &str, field: &str, reason: impl Into<String>) -> CoreError {
    CoreError::invalid(code, field, reason)
}

/// Reads a definition from its text or JSON form and checks it; every problem is reported
/// with a stable code, the field (`definition` and a JSON pointer) and, for text, the line and
/// column in the reason.
pub fn parse_definition(raw: &Value) -> CoreResult<Expr> {
    let expr = match raw {
        Value::String(text) => {
            // Parsed with spans, so that every problem found in the text has a line and column.
            let parsed = parse_with_spans(text)
                .map_err(|e| CoreError::Invalid(vec![definition_error(&e)]))?;
            parsed.validate().map_err(|errors| {
                CoreError::Invalid(errors.iter().map(definition_error).collect())
            })?;
            return Ok(parsed.expr);
        }
        Value::Object(_) => serde_json::from_value::<Expr>(raw.clone()).map_err(|e| {
            invalid(
                "invalid_definition",
                "definition",
                format!("not a segment definition: {e}"),
            )
        })?,
        _ => {
            return Err(invalid(
                "invalid_definition",
                "definition",
                "expected the definition as text or as its JSON form",
            ))
        }
    };
    validate(&expr)
        .map_err(|errors| CoreError::Invalid(errors.iter().map(definition_error).collect()))?;
    Ok(expr)
}

/// A segment language error as a field error: the field is `definition` followed by the JSON
/// pointer of the offending node, and the reason says where in the text (line and column).
pub fn definition_error(e: &SegmentError) -> FieldError {
    let mut reason = e.reason.clone();
    if let Some(p) = &e.position {
        reason.push_str(&format!(" (line {}, column {})", p.line, p.column));
    }
    FieldError::new(e.code.as_str(), format!("definition{}", e.pointer), reason)
}

fn segment_not_found(e: StoreError) -> CoreError {
    match e {
        StoreError::NotFound => CoreError::NotFound("segment"),
        StoreError::Conflict(_) => CoreError::Conflict(FieldError::new(
            "segment_name_taken",
            "name",
            "another segment has this name",
        )),
        other => other.into(),
    }
}

/// Checks that the segments `expr` includes exist and that none leads back to `id`.
fn check_includes(tx: &mut dyn Tx, actor: &Actor, id: &SegmentId, expr: &Expr) -> CoreResult<()> {
    let segments = tx.list_segments(&actor.workspace.id)?;
    let lookup = |reference: &str| {
        segments
            .iter()
            .find(|s| s.id.as_str() == reference || s.name.eq_ignore_ascii_case(reference))
            .map(|s| ResolvedSegment {
                id: s.id.to_string(),
                expr: s
                    .definition
                    .clone()
                    .unwrap_or(Expr::And { all: Vec::new() }),
            })
    };
    check_references(id.as_str(), expr, &lookup)
        .map_err(|e| CoreError::Invalid(vec![definition_error(&e)]))
}

fn check_name(name: Option<&str>) -> CoreResult<String> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(invalid("required", "name", "a segment needs a name"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(invalid(
            "too_long",
            "name",
            format!("at most {MAX_NAME} characters"),
        ));
    }
    Ok(name.to_string())
}

impl Ciclo {
    /// Every segment and list of the workspace, by name.
    pub fn list_segments(&self, actor: &Actor) -> CoreResult<Vec<SegmentView>> {
        actor.require(Permission::ReadCustomers)?;
        let records = read(&*self.store, |tx| tx.list_segments(&actor.workspace.id))?;
        Ok(records.into_iter().map(SegmentView::of).collect())
    }

    pub fn get_segment(&self, actor: &Actor, id: &SegmentId) -> CoreResult<SegmentView> {
        actor.require(Permission::ReadCustomers)?;
        read(&*self.store, |tx| tx.get_segment(&actor.workspace.id, id))?
            .map(SegmentView::of)
            .ok_or(CoreError::NotFound("segment"))
    }

    /// Creates a segment or list. A dynamic segment is evaluated over every customer before this
    /// returns (its first members get `Segment Entered` events marked `initial`).
    pub fn create_segment(&self, actor: &Actor, input: &SegmentInput) -> CoreResult<SegmentView> {
        actor.require(Permission::WriteCustomers)?;
        let name = check_name(input.name.as_deref())?;
        let kind = match input.kind.as_deref().map(str::trim) {
            None | Some("") => SegmentKind::Dynamic,
            Some(raw) => SegmentKind::parse(raw)
                .ok_or_else(|| invalid("invalid_kind", "kind", "expected `dynamic` or `static`"))?,
        };
        let definition = match (kind, &input.definition) {
            (SegmentKind::Dynamic, Some(raw)) => Some(parse_definition(raw)?),
            (SegmentKind::Dynamic, None) => {
                return Err(invalid(
                    "required",
                    "definition",
                    "a dynamic segment needs a definition",
                ))
            }
            (SegmentKind::Static, None | Some(Value::Null)) => None,
            (SegmentKind::Static, Some(_)) => {
                return Err(invalid(
                    "not_allowed",
                    "definition",
                    "a static list has no definition: add members instead",
                ))
            }
        };
        let now = self.clock.now();
        let record = SegmentRecord {
            id: self.new_id(SegmentId::generate),
            workspace_id: actor.workspace.id.clone(),
            name,
            description: input.description.clone().unwrap_or_default(),
            kind,
            definition,
            member_count: 0,
            evaluated_at: None,
            created_at: now,
            updated_at: now,
        };
        let outcome = write(&*self.store, |tx| {
            if let Some(expr) = &record.definition {
                if let Err(e) = check_includes(tx, actor, &record.id, expr) {
                    return Ok(Err(e));
                }
            }
            match tx.insert_segment(&record) {
                Err(StoreError::Conflict(_)) => {
                    Ok(Err(segment_not_found(StoreError::Conflict(String::new()))))
                }
                Err(e) => Err(e),
                Ok(()) => {
                    tx.insert_segment_count(
                        &record.workspace_id,
                        &record.id,
                        &SegmentCount { at: now, count: 0 },
                    )?;
                    Ok(Ok(()))
                }
            }
        })?;
        outcome?;
        if kind == SegmentKind::Dynamic {
            let initial: HashSet<SegmentId> = [record.id.clone()].into();
            self.refresh_workspace(
                &actor.workspace.id,
                Some(std::slice::from_ref(&record.id)),
                false,
                &initial,
            )?;
        }
        self.get_segment(actor, &record.id)
    }

    /// Changes a segment's name, description or definition (the kind stays). A new definition is
    /// evaluated over every customer before this returns, with the segments that include it.
    pub fn update_segment(
        &self,
        actor: &Actor,
        id: &SegmentId,
        input: &SegmentInput,
    ) -> CoreResult<SegmentView> {
        actor.require(Permission::WriteCustomers)?;
        let ws = actor.workspace.id.clone();
        // Everything that needs no database is checked first.
        let name = match &input.name {
            Some(_) => Some(check_name(input.name.as_deref())?),
            None => None,
        };
        let kind = match input
            .kind
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            Some(raw) => Some(SegmentKind::parse(&raw.to_lowercase()).ok_or_else(|| {
                invalid("invalid_kind", "kind", "expected `dynamic` or `static`")
            })?),
            None => None,
        };
        let definition = input
            .definition
            .as_ref()
            .map(parse_definition)
            .transpose()?;
        let now = self.clock.now();
        // Read, change and write in one transaction, so that concurrent edits do not undo each
        // other.
        let outcome = write(&*self.store, |tx| {
            let Some(mut record) = tx.get_segment(&ws, id)? else {
                return Ok(Err(CoreError::NotFound("segment")));
            };
            if kind.is_some_and(|k| k != record.kind) {
                return Ok(Err(invalid(
                    "kind_fixed",
                    "kind",
                    "a segment's kind cannot change: create a new one",
                )));
            }
            if let Some(name) = &name {
                if !name.eq_ignore_ascii_case(&record.name) {
                    let users = includers(tx, &ws, &record)?;
                    if !users.is_empty() {
                        return Ok(Err(CoreError::Conflict(FieldError::new(
                            "segment_in_use",
                            "name",
                            format!(
                                "other segments include this one by name: {}; change them first",
                                users.join(", ")
                            ),
                        ))));
                    }
                }
                record.name = name.clone();
            }
            if let Some(description) = &input.description {
                record.description = description.clone();
            }
            let mut redefined = false;
            if let Some(expr) = &definition {
                if record.kind == SegmentKind::Static {
                    return Ok(Err(invalid(
                        "not_allowed",
                        "definition",
                        "a static list has no definition: add members instead",
                    )));
                }
                if let Err(e) = check_includes(tx, actor, &record.id, expr) {
                    return Ok(Err(e));
                }
                redefined = record.definition.as_ref() != Some(expr);
                record.definition = Some(expr.clone());
            }
            record.updated_at = now;
            match tx.update_segment(&record) {
                Ok(()) => Ok(Ok(redefined)),
                Err(e @ (StoreError::Conflict(_) | StoreError::NotFound)) => {
                    Ok(Err(segment_not_found(e)))
                }
                Err(e) => Err(e),
            }
        })?;
        let redefined = outcome?;
        if redefined {
            self.refresh_workspace(&ws, Some(std::slice::from_ref(id)), false, &HashSet::new())?;
        }
        self.get_segment(actor, id)
    }

    /// Deletes a segment or list with its members and history. A segment that others include
    /// cannot be deleted (409 `segment_in_use`, naming them).
    pub fn delete_segment(&self, actor: &Actor, id: &SegmentId) -> CoreResult<()> {
        actor.require(Permission::WriteCustomers)?;
        let ws = actor.workspace.id.clone();
        let outcome = write(&*self.store, |tx| {
            let Some(record) = tx.get_segment(&ws, id)? else {
                return Ok(Err(CoreError::NotFound("segment")));
            };
            let users = includers(tx, &ws, &record)?;
            if !users.is_empty() {
                return Ok(Err(CoreError::Conflict(FieldError::new(
                    "segment_in_use",
                    "id",
                    format!("included by {}", users.join(", ")),
                ))));
            }
            tx.delete_segment(&ws, id)?;
            Ok(Ok(()))
        })?;
        outcome
    }

    /// Counts the customers a definition matches now and returns the first `sample` of them
    /// (newest first), without saving anything.
    pub fn preview_segment(
        &self,
        actor: &Actor,
        definition: &Value,
        sample: usize,
    ) -> CoreResult<SegmentPreview> {
        actor.require(Permission::ReadCustomers)?;
        let started = std::time::Instant::now();
        let expr = parse_definition(definition)?;
        let ws = actor.workspace.id.clone();
        let now = self.clock.now();
        let sample = sample.min(MAX_SAMPLE);
        let (count, customers, matching) = read(&*self.store, |tx| {
            let plan = Plan::load(tx, &ws)?;
            // The in-memory index answers for the whole workspace at once.
            let slot = self.segment_index.of(&ws);
            let mut index = slot.lock();
            if slot.prepare(&mut index, tx, &plan, &[&expr])? {
                let members = index.evaluate(&plan, &expr, now, &HashMap::new());
                let sample_ids = index.newest(&members, sample);
                let mut found = tx.get_customers(&ws, &sample_ids)?;
                found.sort_by(|a, b| b.id.cmp(&a.id));
                return Ok((members.count(), index.alive_count(), found));
            }
            drop(index);
            // A workspace the index cannot hold (ids not made by ciclo): every profile is
            // evaluated from the store, a page at a time.
            let merged = MergedProfiles::load(tx, &ws)?;
            let evaluation = Evaluation::preview(&plan, &expr, sample, now);
            let mut outcome = Outcome::default();
            let mut after: Option<CustomerId> = None;
            let mut seen = 0usize;
            loop {
                let query = newest_page(after.clone(), PAGE);
                let page = tx.list_customers(&ws, &query)?;
                let n = page.len();
                seen += n;
                after = page.last().map(|c| c.id.clone());
                evaluation.run(tx, page, &merged, &mut outcome)?;
                if (n as i64) < PAGE {
                    break;
                }
            }
            Ok((outcome.matching_count, seen, outcome.matching))
        })?;
        Ok(SegmentPreview {
            count,
            customers,
            sample: matching,
            text: print(&expr),
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Membership count history since `since`, oldest first, with the current count last.
    pub fn segment_history(
        &self,
        actor: &Actor,
        id: &SegmentId,
        since: Timestamp,
    ) -> CoreResult<Vec<SegmentCount>> {
        actor.require(Permission::ReadCustomers)?;
        let ws = &actor.workspace.id;
        let (record, mut points) = read(&*self.store, |tx| {
            let record = tx.get_segment(ws, id)?;
            let points = tx.segment_counts(ws, id, since)?;
            Ok((record, points))
        })?;
        let record = record.ok_or(CoreError::NotFound("segment"))?;
        if points.last().map(|p| p.count) != Some(record.member_count) {
            points.push(SegmentCount {
                at: self.clock.now(),
                count: record.member_count,
            });
        }
        Ok(points)
    }

    /// The segments and lists a customer is in, with when they entered.
    pub fn customer_segments(
        &self,
        actor: &Actor,
        customer: &CustomerId,
    ) -> CoreResult<Vec<(SegmentView, Timestamp)>> {
        actor.require(Permission::ReadCustomers)?;
        let ws = &actor.workspace.id;
        read(&*self.store, |tx| {
            let Some(root) = root_of(tx, ws, customer)? else {
                return Ok(Err(CoreError::NotFound("customer")));
            };
            let segments = tx.list_segments(ws)?;
            let mut out = Vec::new();
            for (segment, _, since) in tx.memberships_of(ws, std::slice::from_ref(&root.id))? {
                if let Some(record) = segments.iter().find(|s| s.id == segment) {
                    out.push((SegmentView::of(record.clone()), since));
                }
            }
            out.sort_by(|a, b| {
                a.0.record
                    .name
                    .to_lowercase()
                    .cmp(&b.0.record.name.to_lowercase())
            });
            Ok(Ok(out))
        })?
    }

    /// Adds customers (by id; merged-away ids count as their surviving profile) to a static
    /// list. Ids that name nobody are reported by position.
    pub fn add_to_list(
        &self,
        actor: &Actor,
        id: &SegmentId,
        customers: &[String],
    ) -> CoreResult<ListChange> {
        self.change_list(actor, id, &by_position(customers), true)
    }

    /// Removes customers (by id) from a static list.
    pub fn remove_from_list(
        &self,
        actor: &Actor,
        id: &SegmentId,
        customers: &[String],
    ) -> CoreResult<ListChange> {
        self.change_list(actor, id, &by_position(customers), false)
    }

    /// Adds (or, with `remove`, removes) the customers a CSV names to a static list. The file
    /// needs a header with one of the columns `id` (or `customer_id`), `email`, `phone`,
    /// `whatsapp` or `user_id` (first found wins, in that order; Portuguese `telefone`,
    /// `celular` and `e-mail` are understood); rows that name nobody are reported by line.
    pub fn list_from_csv(
        &self,
        actor: &Actor,
        id: &SegmentId,
        data: &[u8],
        remove: bool,
    ) -> CoreResult<ListChange> {
        let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        let first_line = data.split(|b| *b == b'\n').next().unwrap_or_default();
        let delimiter = [b';', b',', b'\t']
            .into_iter()
            .max_by_key(|d| first_line.iter().filter(|b| *b == d).count())
            .unwrap_or(b',');
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(data);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| invalid("invalid_csv", "file", e.to_string()))?
            .iter()
            .map(|h| h.trim().to_lowercase())
            .collect();
        let column = [
            (&["id", "customer_id"][..], "id"),
            (&["email", "e-mail"][..], "email"),
            (&["phone", "telefone", "celular"][..], "phone"),
            (&["whatsapp"][..], "whatsapp"),
            (&["user_id"][..], "user_id"),
        ]
        .into_iter()
        .find_map(|(names, kind)| {
            headers
                .iter()
                .position(|h| names.contains(&h.as_str()))
                .map(|i| (i, kind))
        });
        let Some((column, kind)) = column else {
            return Err(invalid(
                "missing_column",
                "file",
                "the file needs a column id, email, phone, whatsapp or user_id",
            ));
        };
        let mut keys = Vec::new();
        for (n, row) in reader.records().enumerate() {
            let line = n as u64 + 2;
            let value = row
                .ok()
                .and_then(|r| r.get(column).map(|v| v.trim().to_string()))
                .unwrap_or_default();
            keys.push((line, value, kind));
        }
        self.change_list(actor, id, &keys, !remove)
    }

    /// Resolves (line, value, kind) to customers and adds or removes them.
    fn change_list(
        &self,
        actor: &Actor,
        id: &SegmentId,
        keys: &[(u64, String, &str)],
        add: bool,
    ) -> CoreResult<ListChange> {
        actor.require(Permission::WriteCustomers)?;
        let ws = actor.workspace.id.clone();
        let region = actor.workspace.default_region.clone();
        let now = self.clock.now();
        let outcome = write(&*self.store, |tx| {
            let Some(record) = tx.get_segment(&ws, id)? else {
                return Ok(Err(CoreError::NotFound("segment")));
            };
            if record.kind != SegmentKind::Static {
                return Ok(Err(invalid(
                    "not_a_list",
                    "id",
                    "members of a dynamic segment follow its definition; use a static list",
                )));
            }
            let mut change = ListChange::default();
            let mut found: Vec<CustomerId> = Vec::new();
            for (line, value, kind) in keys {
                let reject = |code: &str, reason: &str| RejectedRow {
                    line: *line,
                    code: code.into(),
                    field: (*kind).into(),
                    reason: reason.into(),
                };
                if value.is_empty() {
                    change.rejected.push(reject("required", "empty"));
                    continue;
                }
                let owner = match *kind {
                    "id" => match CustomerId::parse(value) {
                        Ok(cid) => root_of(tx, &ws, &cid)?.map(|c| c.id),
                        Err(_) => {
                            change
                                .rejected
                                .push(reject("invalid_id", "not a customer id"));
                            continue;
                        }
                    },
                    other => {
                        let key = match identity_key(other, value, &region) {
                            Some(key) => key,
                            None => {
                                change
                                    .rejected
                                    .push(reject("invalid_value", "not a valid identifier"));
                                continue;
                            }
                        };
                        match tx.find_identities(&ws, std::slice::from_ref(&key))?.first() {
                            Some(identity) => {
                                root_of(tx, &ws, &identity.customer_id)?.map(|c| c.id)
                            }
                            None => None,
                        }
                    }
                };
                match owner {
                    Some(cid) => found.push(cid),
                    None => change
                        .rejected
                        .push(reject("not_found", "no customer has this identifier")),
                }
            }
            found.sort();
            found.dedup();
            let current: HashSet<CustomerId> = tx
                .memberships_of(&ws, &found)?
                .into_iter()
                .filter(|(s, _, _)| *s == record.id)
                .map(|(_, c, _)| c)
                .collect();
            let targets: Vec<CustomerId> = found
                .iter()
                .filter(|c| current.contains(*c) != add)
                .cloned()
                .collect();
            change.unchanged = (found.len() - targets.len()) as i64;
            change.changed = if add {
                tx.add_segment_members(&ws, &record.id, &targets, now)?
            } else {
                tx.remove_segment_members(&ws, &record.id, &targets)?
            };
            let name = if add { SEGMENT_ENTERED } else { SEGMENT_EXITED };
            let events: Vec<_> = targets
                .iter()
                .map(|c| {
                    let mut properties = Map::new();
                    properties.insert("segment_id".into(), json!(record.id.as_str()));
                    properties.insert("segment_name".into(), json!(record.name));
                    properties.insert("segment_kind".into(), json!("static"));
                    properties.insert("actor".into(), json!(actor.label()));
                    self.system_event(&ws, c, name, properties, now)
                })
                .collect();
            for chunk in events.chunks(5_000) {
                tx.insert_events(chunk)?;
            }
            // Dynamic segments that include this list may move these customers.
            tx.mark_dirty(&ws, &targets)?;
            tx.insert_segment_count(
                &ws,
                &record.id,
                &SegmentCount {
                    at: now,
                    count: record.member_count + if add { change.changed } else { -change.changed },
                },
            )?;
            Ok(Ok(change))
        })?;
        self.notify_evaluator();
        outcome
    }
}

/// Names of the segments that include `record` (by name or id).
fn includers(
    tx: &mut dyn Tx,
    ws: &ciclo_domain::ids::WorkspaceId,
    record: &SegmentRecord,
) -> Result<Vec<String>, StoreError> {
    Ok(tx
        .list_segments(ws)?
        .into_iter()
        .filter(|s| s.id != record.id)
        .filter(|s| {
            s.definition.as_ref().is_some_and(|d| {
                depends_on(d)
                    .segments
                    .iter()
                    .any(|r| r == record.id.as_str() || r.eq_ignore_ascii_case(&record.name))
            })
        })
        .map(|s| s.name)
        .collect())
}

/// Customer ids as (position, id, `id`) for `change_list`.
fn by_position(customers: &[String]) -> Vec<(u64, String, &'static str)> {
    customers
        .iter()
        .enumerate()
        .map(|(i, c)| (i as u64, c.clone(), "id"))
        .collect()
}

/// The identity a CSV value names, normalised like the rest of the product.
fn identity_key(kind: &str, value: &str, region: &str) -> Option<IdentityKey> {
    use ciclo_domain::contact::{Email, Phone};
    match kind {
        "email" => Email::parse(value)
            .ok()
            .map(|e| IdentityKey::new(IdentityKind::Email, e.as_str())),
        "phone" => Phone::parse(value, region)
            .ok()
            .map(|p| IdentityKey::new(IdentityKind::Phone, p.as_str())),
        "whatsapp" => Phone::parse(value, region)
            .ok()
            .map(|p| IdentityKey::new(IdentityKind::Whatsapp, p.as_str())),
        "user_id" => Some(IdentityKey::new(IdentityKind::UserId, value)),
        _ => None,
    }
}
