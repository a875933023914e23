//! Customer profiles: create, read (as a merged view), update, delete, list and search.

use crate::accounts::Actor;
use crate::error::{CoreError, CoreResult};
use crate::Ciclo;
use ciclo_domain::customer::{Customer, CustomerPatch};
use ciclo_domain::event::Event;
use ciclo_domain::identity::Identity;
use ciclo_domain::ids::CustomerId;
use ciclo_domain::order::Order;
use ciclo_store::{CustomerCursor, CustomerQuery, IdentityConflict, MergeRecord, TimelineQuery};
use serde::Serialize;
use serde_json::{Map, Value};

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

/// Encodes a customer cursor as an opaque URL-safe string.
pub fn encode_customer_cursor(cursor: &CustomerCursor) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

pub fn decode_customer_cursor(raw: &str) -> CoreResult<CustomerCursor> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| CoreError::invalid("invalid_cursor", "cursor", "the cursor is not one this API returned"))
}

impl Ciclo {
    /// Creates a profile from a JSON object of standard fields, `tags` and `traits`. Its email,
    /// phone and WhatsApp become identities; one already owned by another profile is a conflict
    /// (409 `identity_taken`) naming that profile.
    pub fn create_customer(&self, actor: &Actor, body: &Map<String, Value>) -> CoreResult<CustomerView> {
        let _ = (actor, body);
        todo!()
    }

    /// The merged view of a profile. Asking for a profile that was merged away returns the
    /// surviving one.
    pub fn get_customer(&self, actor: &Actor, id: &CustomerId) -> CoreResult<CustomerView> {
        let _ = (actor, id);
        todo!()
    }

    /// Applies a partial update (JSON null clears a field; `traits` merge key by key).
    pub fn update_customer(&self, actor: &Actor, id: &CustomerId, body: &Map<String, Value>) -> CoreResult<CustomerView> {
        let _ = (actor, id, body);
        todo!()
    }

    /// Deletes the profile and everything merged into it, with their events and orders.
    pub fn delete_customer(&self, actor: &Actor, id: &CustomerId) -> CoreResult<()> {
        let _ = (actor, id);
        todo!()
    }

    /// Lists surviving profiles; `cursor` is the `next_cursor` of the previous page.
    pub fn list_customers(&self, actor: &Actor, query: CustomerQuery, cursor: Option<&str>) -> CoreResult<Page<Customer>> {
        let _ = (actor, query, cursor);
        todo!()
    }

    /// The unified timeline of a profile and everything merged into it, newest first.
    /// `cursor` is the `next_cursor` of the previous page.
    pub fn timeline(&self, actor: &Actor, id: &CustomerId, query: TimelineQuery, cursor: Option<&str>) -> CoreResult<Page<Event>> {
        let _ = (actor, id, query, cursor);
        todo!()
    }

    /// Orders of the profile and everything merged into it, newest first, with items.
    pub fn customer_orders(&self, actor: &Actor, id: &CustomerId, limit: i64) -> CoreResult<Vec<Order>> {
        let _ = (actor, id, limit);
        todo!()
    }

    /// Parses a patch body (for callers that validate before acting, such as forms).
    pub fn parse_customer_patch(&self, actor: &Actor, body: &Map<String, Value>) -> CoreResult<CustomerPatch> {
        CustomerPatch::from_json(body, &actor.workspace.default_region, false).map_err(CoreError::Invalid)
    }
}
