//! CSV import and export of customers and orders. Identities resolve through the graph (no
//! duplicates for people already known), every good row is kept, every bad one is reported with
//! its line number, and re-importing a file changes nothing.

use crate::accounts::Actor;
use crate::error::CoreResult;
use crate::Ciclo;
use ciclo_store::{CustomerQuery, ImportRun};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// Which CSV column feeds which field. Keys are CSV header names; values are ciclo field names
/// (customers: `name`, `email`, `phone`, `whatsapp`, `birthday`, `city`, `state`, `country`,
/// `locale`, `time_zone`, `tags`, `user_id`, `external:<source>`, `trait:<name>`, or `ignore`;
/// orders: `order_id`, `email`, `phone`, `user_id`, `total`, `currency`, `placed_at`,
/// `product_id`, `sku`, `product_name`, `category`, `price`, `quantity`).
/// Headers not in the map are matched by name (case and accents ignored; `e-mail`,
/// `telefone`, `nome`, `cidade`, `aniversário`… are understood).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ColumnMapping(pub BTreeMap<String, String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    Customers,
    Orders,
}

/// A preview of a CSV file: the header, the mapping ciclo would use, and the first rows.
#[derive(Debug, Clone, Serialize)]
pub struct ImportPreview {
    pub headers: Vec<String>,
    pub mapping: ColumnMapping,
    pub rows: Vec<Vec<String>>,
}

impl Ciclo {
    /// Reads the header and a few rows and proposes a mapping.
    pub fn preview_import(&self, kind: ImportKind, input: impl Read, mapping: &ColumnMapping, rows: usize) -> CoreResult<ImportPreview> {
        let _ = (kind, input, mapping, rows);
        todo!()
    }

    /// Imports a CSV file. `progress(rows_done)` is called now and then (for a progress bar).
    pub fn import_csv(
        &self,
        actor: &Actor,
        kind: ImportKind,
        file_name: &str,
        input: impl Read,
        mapping: &ColumnMapping,
        progress: &mut dyn FnMut(u64),
    ) -> CoreResult<ImportRun> {
        let _ = (actor, kind, file_name, input, mapping, progress);
        todo!()
    }

    /// Writes customers matching `query` (all pages) as CSV.
    pub fn export_customers_csv(&self, actor: &Actor, query: CustomerQuery, out: impl Write) -> CoreResult<u64> {
        let _ = (actor, query, out);
        todo!()
    }

    /// Writes all orders of the workspace as CSV, one line per item.
    pub fn export_orders_csv(&self, actor: &Actor, out: impl Write) -> CoreResult<u64> {
        let _ = (actor, out);
        todo!()
    }

    pub fn get_import(&self, actor: &Actor, id: &ciclo_domain::ids::ImportId) -> CoreResult<ImportRun> {
        let _ = (actor, id);
        todo!()
    }

    pub fn list_imports(&self, actor: &Actor) -> CoreResult<Vec<ImportRun>> {
        let _ = actor;
        todo!()
    }
}
