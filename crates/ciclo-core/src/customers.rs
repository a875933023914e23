//! Customer profiles: create, read (as a merged view), update, delete, list and search, the
//! timeline and orders.

use crate::accounts::Actor;
use crate::error::{CoreError, CoreResult};
use crate::identity::{contact_keys, merge_set, root_of};
use crate::Ciclo;
use ciclo_domain::customer::{Customer, CustomerPatch};
use ciclo_domain::event::Event;
use ciclo_domain::identity::{Identity, IdentityKey, IdentityKind};
use ciclo_domain::ids::{CustomerId, EventId};
use ciclo_domain::operator::Permission;
use ciclo_domain::order::Order;
use ciclo_domain::{FieldError, Timestamp};
use ciclo_store::{
    read, write, CustomerCursor, CustomerQuery, CustomerSort, IdentityConflict, MergeRecord,
    StoreError, TimelineQuery, Tx,
};
use serde::Serialize;
use serde_json::{Map, Value};

/// Largest page any list returns.
pub const MAX_PAGE: i64 = 500;

/// A profile as operators and the API see it: the surviving profile with the identities, order
/// stats and merge history of every profile merged into it.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerView {
    #[serde(flatten)]
    pub customer: Customer,
    /// The profile and every profile merged into it, directly or not.
    pub profile_ids: Vec<CustomerId>,
    pub identities: Vec<Identity>,
    pub merges: Vec<MergeRecord>,
    pub conflicts: Vec<IdentityConflict>,
}

/// One page of a list, with the cursor for the next page (none on the last page).
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

fn encode_cursor<T: Serialize>(value: &T) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(value).unwrap_or_default())
}

fn decode_cursor<T: serde::de::DeserializeOwned>(raw: &str) -> CoreResult<T> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            CoreError::invalid(
                "invalid_cursor",
                "cursor",
                "the cursor is not one this API returned",
            )
        })
}

/// Encodes a customer cursor as an opaque URL-safe string.
pub fn encode_customer_cursor(cursor: &CustomerCursor) -> String {
    encode_cursor(cursor)
}

pub fn decode_customer_cursor(raw: &str) -> CoreResult<CustomerCursor> {
    decode_cursor(raw)
}

/// The cursor key of a customer in a list sorted by `sort` (see [`CustomerCursor::key`]).
pub fn cursor_key(customer: &Customer, sort: CustomerSort) -> String {
    match sort {
        CustomerSort::Newest => String::new(),
        CustomerSort::LastSeen => customer
            .last_seen_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        CustomerSort::TotalSpent => customer.stats.total_spent_minor.to_string(),
        CustomerSort::Name => customer.name.clone().unwrap_or_default().to_lowercase(),
    }
}

fn check_limit(limit: i64) -> CoreResult<i64> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(CoreError::invalid(
            "invalid_limit",
            "limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// Pulls `user_id` and `external_ids` ({source: id}) out of a customer body: they are
/// identities, not profile fields.
fn split_identity_fields(
    body: &Map<String, Value>,
) -> CoreResult<(Map<String, Value>, Vec<IdentityKey>)> {
    let mut rest = body.clone();
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    match rest.remove("user_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 => {
            keys.push(IdentityKey::new(IdentityKind::UserId, s.trim()))
        }
        Some(Value::Number(n)) => keys.push(IdentityKey::new(IdentityKind::UserId, n.to_string())),
        Some(_) => errors.push(FieldError::new(
            "invalid_type",
            "user_id",
            "expected a non-empty string of at most 255 characters",
        )),
    }
    match rest.remove("external_ids") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (source, id) in map {
                match (IdentityKind::parse(&format!("external:{source}")), id) {
                    (Ok(kind), Value::String(s)) if !s.trim().is_empty() => {
                        keys.push(IdentityKey::new(kind, s.trim()))
                    }
                    (Ok(kind), Value::Number(n)) => {
                        keys.push(IdentityKey::new(kind, n.to_string()))
                    }
                    _ => errors.push(FieldError::new(
                        "invalid_external_id",
                        format!("external_ids.{source}"),
                        "expected a source name and a non-empty id",
                    )),
                }
            }
        }
        Some(_) => errors.push(FieldError::new(
            "invalid_type",
            "external_ids",
            "expected an object of source → id",
        )),
    }
    if errors.is_empty() {
        Ok((rest, keys))
    } else {
        Err(CoreError::Invalid(errors))
    }
}

fn taken(key: &IdentityKey, owner: &CustomerId) -> CoreError {
    let field = match &key.kind {
        IdentityKind::External(source) => format!("external_ids.{source}"),
        other => other.as_string(),
    };
    CoreError::Conflict(FieldError::new(
        "identity_taken",
        field,
        format!("{key} already belongs to customer {owner}"),
    ))
}

fn not_found(e: StoreError) -> CoreError {
    match e {
        StoreError::NotFound => CoreError::NotFound("customer"),
        other => other.into(),
    }
}

/// Builds the merged view of the root of `id`.
pub(crate) fn view(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: &CustomerId,
) -> Result<CustomerView, StoreError> {
    let ws = &actor.workspace.id;
    let customer = root_of(tx, ws, id)?.ok_or(StoreError::NotFound)?;
    let profile_ids = merge_set(tx, ws, &customer.id)?;
    let identities = tx.identities_of(ws, &profile_ids)?;
    let merges = tx.merges_of(ws, &profile_ids)?;
    let conflicts = tx
        .list_conflicts(ws, false, 1000)?
        .into_iter()
        .filter(|c| profile_ids.contains(&c.customer_a) || profile_ids.contains(&c.customer_b))
        .collect();
    Ok(CustomerView {
        customer,
        profile_ids,
        identities,
        merges,
        conflicts,
    })
}

impl Ciclo {
    /// Creates a profile from a JSON object of standard fields, `tags`, `traits`, `user_id` and
    /// `external_ids`. Its identifiers become identities; one already owned by another profile is
    /// a conflict (409 `identity_taken`) naming that profile.
    pub fn create_customer(
        &self,
        actor: &Actor,
        body: &Map<String, Value>,
    ) -> CoreResult<CustomerView> {
        actor.require(Permission::WriteCustomers)?;
        let (fields, mut keys) = split_identity_fields(body)?;
        let patch = self.parse_customer_patch(actor, &fields)?;
        keys.extend(contact_keys(&patch));
        let now = self.clock.now();
        let id = self.new_id(CustomerId::generate);
        let ws = actor.workspace.id.clone();
        let outcome = write(&*self.store, |tx| {
            let found = tx.find_identities(&ws, &keys)?;
            if let Some(existing) = found.first() {
                let owner = root_of(tx, &ws, &existing.customer_id)?
                    .map(|c| c.id)
                    .unwrap_or(existing.customer_id.clone());
                return Ok(Err(taken(&existing.key, &owner)));
            }
            let mut customer = Customer::new(id.clone(), ws.clone(), now);
            customer.apply(&patch);
            tx.insert_customer(&customer)?;
            tx.mark_dirty(&ws, std::slice::from_ref(&id))?;
            let identities: Vec<Identity> = keys
                .iter()
                .map(|k| Identity {
                    key: k.clone(),
                    customer_id: id.clone(),
                    source: "api".into(),
                    created_at: now,
                })
                .collect();
            tx.insert_identities(&ws, &identities)?;
            Ok(Ok(view(tx, actor, &id)?))
        })?;
        outcome
    }

    /// The merged view of a profile. Asking for a profile that was merged away returns the
    /// surviving one.
    pub fn get_customer(&self, actor: &Actor, id: &CustomerId) -> CoreResult<CustomerView> {
        actor.require(Permission::ReadCustomers)?;
        read(&*self.store, |tx| view(tx, actor, id)).map_err(not_found)
    }

    /// Applies a partial update (JSON null clears a field; `traits` merge key by key). New
    /// emails, phones, user ids and external ids become identities of the profile; one owned by
    /// another customer is a conflict (409 `identity_taken`).
    pub fn update_customer(
        &self,
        actor: &Actor,
        id: &CustomerId,
        body: &Map<String, Value>,
    ) -> CoreResult<CustomerView> {
        actor.require(Permission::WriteCustomers)?;
        let (fields, mut keys) = split_identity_fields(body)?;
        let patch = self.parse_customer_patch(actor, &fields)?;
        keys.extend(contact_keys(&patch));
        let now = self.clock.now();
        let ws = actor.workspace.id.clone();
        let outcome = write(&*self.store, |tx| {
            let mut customer = root_of(tx, &ws, id)?.ok_or(StoreError::NotFound)?;
            let set = merge_set(tx, &ws, &customer.id)?;
            let found = tx.find_identities(&ws, &keys)?;
            if let Some(foreign) = found.iter().find(|i| !set.contains(&i.customer_id)) {
                let owner = root_of(tx, &ws, &foreign.customer_id)?
                    .map(|c| c.id)
                    .unwrap_or(foreign.customer_id.clone());
                if owner != customer.id {
                    return Ok(Err(taken(&foreign.key, &owner)));
                }
            }
            customer.apply(&patch);
            customer.updated_at = now;
            tx.update_customer(&customer)?;
            tx.mark_dirty(&ws, std::slice::from_ref(&customer.id))?;
            let new_keys: Vec<Identity> = keys
                .iter()
                .filter(|k| !found.iter().any(|f| &f.key == *k))
                .map(|k| Identity {
                    key: k.clone(),
                    customer_id: customer.id.clone(),
                    source: "api".into(),
                    created_at: now,
                })
                .collect();
            tx.insert_identities(&ws, &new_keys)?;
            Ok(Ok(view(tx, actor, &customer.id)?))
        })
        .map_err(not_found)?;
        outcome
    }

    /// Deletes the profile and everything merged into it, with their events and orders.
    pub fn delete_customer(&self, actor: &Actor, id: &CustomerId) -> CoreResult<()> {
        actor.require(Permission::WriteCustomers)?;
        let ws = actor.workspace.id.clone();
        write(&*self.store, |tx| {
            let root = root_of(tx, &ws, id)?.ok_or(StoreError::NotFound)?;
            let set = merge_set(tx, &ws, &root.id)?;
            // Children first, so no row points at a deleted profile.
            for member in set.iter().rev() {
                tx.delete_customer(&ws, member)?;
            }
            Ok(())
        })
        .map_err(not_found)
    }

    /// Lists surviving profiles; `cursor` is the `next_cursor` of the previous page.
    pub fn list_customers(
        &self,
        actor: &Actor,
        mut query: CustomerQuery,
        cursor: Option<&str>,
    ) -> CoreResult<Page<Customer>> {
        actor.require(Permission::ReadCustomers)?;
        let limit = check_limit(query.limit)?;
        query.after = cursor.map(decode_customer_cursor).transpose()?;
        if let Some(after) = &query.after {
            // Stores parse the key by the sort; a key of another shape is the client's mistake.
            let valid = match query.sort {
                CustomerSort::Newest => after.key.is_empty(),
                CustomerSort::LastSeen => chrono::DateTime::parse_from_rfc3339(&after.key).is_ok(),
                CustomerSort::TotalSpent => after.key.parse::<i64>().is_ok(),
                CustomerSort::Name => true,
            };
            if !valid {
                return Err(CoreError::invalid(
                    "invalid_cursor",
                    "cursor",
                    "the cursor belongs to another sort order",
                ));
            }
        }
        query.search = query
            .search
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        query.limit = limit + 1;
        let mut items = read(&*self.store, |tx| {
            tx.list_customers(&actor.workspace.id, &query)
        })?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|c| {
                encode_customer_cursor(&CustomerCursor {
                    key: cursor_key(c, query.sort),
                    id: c.id.clone(),
                })
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// The unified timeline of a profile and everything merged into it, newest first.
    /// `cursor` is the `next_cursor` of the previous page.
    pub fn timeline(
        &self,
        actor: &Actor,
        id: &CustomerId,
        mut query: TimelineQuery,
        cursor: Option<&str>,
    ) -> CoreResult<Page<Event>> {
        actor.require(Permission::ReadCustomers)?;
        let limit = check_limit(query.limit)?;
        query.before = cursor
            .map(decode_cursor::<(Timestamp, EventId)>)
            .transpose()?;
        query.limit = limit + 1;
        let ws = actor.workspace.id.clone();
        let mut items = read(&*self.store, |tx| {
            let root = root_of(tx, &ws, id)?.ok_or(StoreError::NotFound)?;
            let set = merge_set(tx, &ws, &root.id)?;
            tx.timeline(&ws, &set, &query)
        })
        .map_err(not_found)?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items
                .last()
                .map(|e| encode_cursor(&(e.timestamp, e.id.clone())))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Orders of the profile and everything merged into it, newest first, with items.
    pub fn customer_orders(
        &self,
        actor: &Actor,
        id: &CustomerId,
        limit: i64,
    ) -> CoreResult<Vec<Order>> {
        actor.require(Permission::ReadCustomers)?;
        let limit = check_limit(limit)?;
        let ws = actor.workspace.id.clone();
        read(&*self.store, |tx| {
            let root = root_of(tx, &ws, id)?.ok_or(StoreError::NotFound)?;
            let set = merge_set(tx, &ws, &root.id)?;
            tx.orders_of(&ws, &set, limit)
        })
        .map_err(not_found)
    }

    /// Parses a patch body (for callers that validate before acting, such as forms).
    pub fn parse_customer_patch(
        &self,
        actor: &Actor,
        body: &Map<String, Value>,
    ) -> CoreResult<CustomerPatch> {
        CustomerPatch::from_json(body, &actor.workspace.default_region, false)
            .map_err(CoreError::Invalid)
    }
}
