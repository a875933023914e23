//! CSV import and export of customers and orders. Identities resolve through the graph (no
//! duplicates for people already known), every good row is kept, every bad one is reported with
//! its line number, and re-importing a file changes nothing.

use crate::accounts::Actor;
use crate::error::{CoreError, CoreResult};
use crate::identity::{contact_keys, Graph, Provenance};
use crate::Ciclo;
use ciclo_domain::customer::CustomerPatch;
use ciclo_domain::event::{Event, EventType};
use ciclo_domain::identity::{IdentityKey, IdentityKind};
use ciclo_domain::ids::{CustomerId, EventId, ImportId, OrderId};
use ciclo_domain::operator::Permission;
use ciclo_domain::order::{money_to_minor, Order, OrderItem, ORDER_COMPLETED};
use ciclo_domain::{FieldError, Timestamp};
use ciclo_store::{read, write, CustomerQuery, ImportRun, RejectedRow, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// Rows resolved per transaction: large enough to amortise the commit, small enough to report
/// progress and keep memory flat on big files.
const ROWS_PER_TRANSACTION: usize = 1000;

/// Which CSV column feeds which field. Keys are CSV header names; values are ciclo field names
/// (customers: `name`, `email`, `phone`, `whatsapp`, `birthday`, `city`, `state`, `country`,
/// `locale`, `time_zone`, `tags`, `user_id`, `external:<source>`, `trait:<name>`, or `ignore`;
/// orders: `order_id`, `email`, `phone`, `user_id`, `total`, `currency`, `placed_at`,
/// `product_id`, `sku`, `product_name`, `category`, `price`, `quantity`).
/// Headers not in the map are matched by name (case and accents ignored; `e-mail`,
/// `telefone`, `nome`, `cidade`, `aniversário`… are understood); others are ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ColumnMapping(pub BTreeMap<String, String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    Customers,
    Orders,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Customers => "customers",
            ImportKind::Orders => "orders",
        }
    }
}

/// A preview of a CSV file: the header, the mapping ciclo would use, and the first rows.
#[derive(Debug, Clone, Serialize)]
pub struct ImportPreview {
    pub headers: Vec<String>,
    pub mapping: ColumnMapping,
    pub rows: Vec<Vec<String>>,
}

/// Lower case, accents folded, separators collapsed: `E-mail ` → `email`, `Aniversário` → `aniversario`.
fn normalise_header(h: &str) -> String {
    h.trim()
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'ê' | 'è' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ô' | 'õ' | 'ò' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            c => c,
        })
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn guess_field(kind: ImportKind, header: &str) -> &'static str {
    let h = normalise_header(header);
    let common = match h.as_str() {
        "email" | "mail" | "emailaddress" | "correio" => Some("email"),
        "phone" | "telefone" | "fone" | "celular" | "mobile" | "phonenumber" | "tel" => {
            Some("phone")
        }
        "whatsapp" | "zap" | "wa" => Some("whatsapp"),
        "userid" | "customerid" | "idcliente" | "clienteid" => Some("user_id"),
        _ => None,
    };
    if let Some(f) = common {
        return f;
    }
    match kind {
        ImportKind::Customers => match h.as_str() {
            "name" | "nome" | "fullname" | "nomecompleto" | "cliente" => "name",
            "birthday" | "aniversario" | "nascimento" | "datadenascimento" | "birthdate"
            | "dob" => "birthday",
            "city" | "cidade" | "municipio" => "city",
            "state" | "estado" | "uf" => "state",
            "country" | "pais" => "country",
            "locale" | "idioma" | "language" => "locale",
            "timezone" | "fusohorario" | "fuso" => "time_zone",
            "tags" | "tag" | "etiquetas" | "marcadores" => "tags",
            _ => "ignore",
        },
        ImportKind::Orders => match h.as_str() {
            "orderid" | "pedido" | "numerodopedido" | "pedidoid" | "order" => "order_id",
            "total" | "valor" | "valortotal" | "revenue" | "amount" => "total",
            "currency" | "moeda" => "currency",
            "placedat" | "date" | "data" | "datadopedido" | "orderdate" | "createdat" => {
                "placed_at"
            }
            "productid" | "produtoid" | "idproduto" => "product_id",
            "sku" => "sku",
            "productname" | "produto" | "product" | "nomedoproduto" | "item" => "product_name",
            "category" | "categoria" => "category",
            "price" | "preco" | "precounitario" | "unitprice" => "price",
            "quantity" | "quantidade" | "qtd" | "qty" => "quantity",
            _ => "ignore",
        },
    }
}

const CUSTOMER_FIELDS: &[&str] = &[
    "name",
    "email",
    "phone",
    "whatsapp",
    "birthday",
    "city",
    "state",
    "country",
    "locale",
    "time_zone",
    "tags",
    "user_id",
    "ignore",
];
const ORDER_FIELDS: &[&str] = &[
    "order_id",
    "email",
    "phone",
    "whatsapp",
    "user_id",
    "total",
    "currency",
    "placed_at",
    "product_id",
    "sku",
    "product_name",
    "category",
    "price",
    "quantity",
    "ignore",
];

/// The field of every column: explicit mapping first, then a guess from the header.
fn resolve_mapping(
    kind: ImportKind,
    headers: &[String],
    explicit: &ColumnMapping,
) -> CoreResult<Vec<String>> {
    let mut errors = Vec::new();
    for (header, field) in &explicit.0 {
        if !headers.contains(header) {
            errors.push(FieldError::new(
                "unknown_column",
                format!("mapping.{header}"),
                "the file has no such column",
            ));
        }
        let allowed = match kind {
            ImportKind::Customers => {
                CUSTOMER_FIELDS.contains(&field.as_str())
                    || field.strip_prefix("trait:").is_some_and(|t| !t.is_empty())
                    || field
                        .strip_prefix("external:")
                        .is_some_and(|t| !t.is_empty())
            }
            ImportKind::Orders => {
                ORDER_FIELDS.contains(&field.as_str())
                    || field
                        .strip_prefix("external:")
                        .is_some_and(|t| !t.is_empty())
            }
        };
        if !allowed {
            errors.push(FieldError::new(
                "unknown_field",
                format!("mapping.{header}"),
                format!("{field:?} is not a field of {}", kind.as_str()),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(CoreError::Invalid(errors));
    }
    Ok(headers
        .iter()
        .map(|h| {
            explicit
                .0
                .get(h)
                .cloned()
                .unwrap_or_else(|| guess_field(kind, h).to_string())
        })
        .collect())
}

/// A CSV reader that skips a UTF-8 byte-order mark (spreadsheets write one) and picks the
/// delimiter from the header line: Brazilian spreadsheet exports use `;`, others `,` or tab.
fn csv_reader(input: impl Read) -> csv::Reader<impl Read> {
    use std::io::BufRead;
    let mut buffered = std::io::BufReader::with_capacity(64 * 1024, input);
    let mut delimiter = b',';
    if let Ok(head) = buffered.fill_buf() {
        let bom = head.starts_with(&[0xEF, 0xBB, 0xBF]);
        let start = if bom { 3 } else { 0 };
        let first_line = head[start..].split(|b| *b == b'\n').next().unwrap_or(&[]);
        let count = |d: u8| first_line.iter().filter(|b| **b == d).count();
        let (commas, semicolons, tabs) = (count(b','), count(b';'), count(b'\t'));
        if semicolons > commas && semicolons >= tabs {
            delimiter = b';';
        } else if tabs > commas && tabs > semicolons {
            delimiter = b'\t';
        }
        if bom {
            buffered.consume(3);
        }
    }
    csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .delimiter(delimiter)
        .from_reader(buffered)
}

fn csv_error(e: csv::Error) -> CoreError {
    CoreError::invalid(
        "invalid_csv",
        "file",
        format!("the file is not valid CSV: {e}"),
    )
}

/// One parsed customer row.
struct CustomerRow {
    patch: CustomerPatch,
    keys: Vec<IdentityKey>,
}

fn parse_customer_row(
    fields: &[String],
    record: &csv::StringRecord,
    region: &str,
) -> Result<(CustomerPatch, Vec<IdentityKey>), FieldError> {
    let mut body = Map::new();
    let mut traits = Map::new();
    let mut keys = Vec::new();
    for (field, value) in fields.iter().zip(record.iter()) {
        if value.is_empty() || field == "ignore" {
            continue; // an empty cell never clears what is known
        }
        if field == "user_id" {
            keys.push(IdentityKey::new(IdentityKind::UserId, value));
        } else if let Some(source) = field.strip_prefix("external:") {
            keys.push(IdentityKey::new(
                IdentityKind::External(source.to_string()),
                value,
            ));
        } else if let Some(name) = field.strip_prefix("trait:") {
            traits.insert(name.to_string(), Value::String(value.to_string()));
        } else {
            body.insert(field.clone(), Value::String(value.to_string()));
        }
    }
    if !traits.is_empty() {
        body.insert("traits".into(), Value::Object(traits));
    }
    let patch = CustomerPatch::from_json(&body, region, false).map_err(|mut e| e.remove(0))?;
    keys.extend(contact_keys(&patch));
    if keys.is_empty() {
        return Err(FieldError::new(
            "missing_identity",
            "email",
            "a row needs an email, phone, WhatsApp, user id or external id",
        ));
    }
    Ok((patch, keys))
}

/// One parsed order line (an order spans one line per item).
struct OrderLine {
    line: u64,
    order_id: String,
    keys: Vec<IdentityKey>,
    total_minor: Option<i64>,
    currency: Option<String>,
    placed_at: Option<Timestamp>,
    item: Option<OrderItem>,
}

fn parse_timestamp(raw: &str, field: &str) -> Result<Timestamp, FieldError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%d/%m/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, format) {
            return Ok(t.and_utc());
        }
    }
    ciclo_domain::customer::parse_date(raw)
        .map(|d| d.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| {
            FieldError::new(
                "invalid_timestamp",
                field,
                format!("{raw:?} is not a date (expected ISO 8601 or DD/MM/YYYY)"),
            )
        })
}

fn parse_order_row(
    fields: &[String],
    record: &csv::StringRecord,
    region: &str,
    now: Timestamp,
) -> Result<OrderLine, FieldError> {
    let mut line = OrderLine {
        line: 0,
        order_id: String::new(),
        keys: Vec::new(),
        total_minor: None,
        currency: None,
        placed_at: None,
        item: None,
    };
    let mut item = OrderItem {
        product_id: None,
        sku: None,
        name: None,
        category: None,
        price_minor: 0,
        quantity: 1,
    };
    let mut has_item = false;
    for (field, value) in fields.iter().zip(record.iter()) {
        if value.is_empty() {
            continue;
        }
        match field.as_str() {
            "order_id" => line.order_id = value.to_string(),
            "email" => line.keys.push(IdentityKey::new(
                IdentityKind::Email,
                ciclo_domain::contact::Email::parse(value)?.as_str(),
            )),
            "phone" | "whatsapp" => {
                let phone =
                    ciclo_domain::contact::Phone::parse(value, region).map_err(|e| FieldError {
                        field: field.clone(),
                        ..e
                    })?;
                let kind = if field == "phone" {
                    IdentityKind::Phone
                } else {
                    IdentityKind::Whatsapp
                };
                line.keys.push(IdentityKey::new(kind, phone.as_str()));
            }
            "user_id" => line
                .keys
                .push(IdentityKey::new(IdentityKind::UserId, value)),
            "total" => {
                line.total_minor = Some(money_to_minor(&Value::String(value.into()), "total")?)
            }
            "currency" => {
                if value.len() != 3 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(FieldError::new(
                        "invalid_currency",
                        "currency",
                        "expected an ISO 4217 code such as BRL",
                    ));
                }
                line.currency = Some(value.to_uppercase());
            }
            "placed_at" => {
                let t = parse_timestamp(value, "placed_at")?;
                if t > now + chrono::Duration::days(1) {
                    return Err(FieldError::new(
                        "timestamp_in_future",
                        "placed_at",
                        "the order date lies in the future",
                    ));
                }
                line.placed_at = Some(t);
            }
            "product_id" => (item.product_id, has_item) = (Some(value.into()), true),
            "sku" => (item.sku, has_item) = (Some(value.into()), true),
            "product_name" => (item.name, has_item) = (Some(value.into()), true),
            "category" => item.category = Some(value.into()),
            "price" => {
                (item.price_minor, has_item) =
                    (money_to_minor(&Value::String(value.into()), "price")?, true)
            }
            "quantity" => {
                item.quantity = value
                    .parse::<i64>()
                    .ok()
                    .filter(|q| *q > 0)
                    .ok_or_else(|| {
                        FieldError::new(
                            "invalid_quantity",
                            "quantity",
                            "expected a positive whole number",
                        )
                    })?
            }
            other => {
                if let Some(source) = other.strip_prefix("external:") {
                    line.keys.push(IdentityKey::new(
                        IdentityKind::External(source.into()),
                        value,
                    ));
                }
            }
        }
    }
    if line.order_id.is_empty() {
        return Err(FieldError::new(
            "missing_field",
            "order_id",
            "every line needs an order id",
        ));
    }
    if line.keys.is_empty() {
        return Err(FieldError::new(
            "missing_identity",
            "email",
            "a line needs the customer's email, phone or user id",
        ));
    }
    if has_item {
        line.item = Some(item);
    }
    Ok(line)
}

fn rejected_row(line: u64, e: FieldError) -> RejectedRow {
    RejectedRow {
        line,
        code: e.code,
        field: e.field,
        reason: e.reason,
    }
}

/// Guards exported cells against spreadsheet formula injection (OWASP: CSV injection).
fn safe_cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

fn money(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, (minor % 100).abs())
}

fn time_cell(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl Ciclo {
    /// Reads the header and a few rows and proposes a mapping.
    pub fn preview_import(
        &self,
        kind: ImportKind,
        input: impl Read,
        mapping: &ColumnMapping,
        rows: usize,
    ) -> CoreResult<ImportPreview> {
        let mut reader = csv_reader(input);
        let headers: Vec<String> = reader
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(str::to_string)
            .collect();
        let fields = resolve_mapping(kind, &headers, mapping)?;
        let mut sample = Vec::new();
        for record in reader.records().take(rows) {
            sample.push(
                record
                    .map_err(csv_error)?
                    .iter()
                    .map(str::to_string)
                    .collect(),
            );
        }
        Ok(ImportPreview {
            mapping: ColumnMapping(headers.iter().cloned().zip(fields).collect()),
            headers,
            rows: sample,
        })
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
        actor.require(Permission::WriteCustomers)?;
        let mut reader = csv_reader(input);
        let headers: Vec<String> = reader
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(str::to_string)
            .collect();
        let fields = resolve_mapping(kind, &headers, mapping)?;
        let now = self.clock.now();
        let mut run = ImportRun {
            id: self.new_id(ImportId::generate),
            workspace_id: actor.workspace.id.clone(),
            kind: kind.as_str().into(),
            file_name: file_name.chars().take(255).collect(),
            status: "running".into(),
            rows_total: 0,
            rows_created: 0,
            rows_updated: 0,
            rows_unchanged: 0,
            rows_rejected: 0,
            rejected: Vec::new(),
            created_at: now,
            finished_at: None,
            actor: Some(actor.label()),
        };
        write(&*self.store, |tx| tx.insert_import(&run))?;
        let result = match kind {
            ImportKind::Customers => {
                self.import_customers(actor, &mut reader, &fields, &mut run, progress)
            }
            ImportKind::Orders => {
                self.import_orders(actor, &mut reader, &fields, &mut run, progress)
            }
        };
        run.status = if result.is_ok() { "done" } else { "failed" }.into();
        run.finished_at = Some(self.clock.now());
        write(&*self.store, |tx| tx.update_import(&run))?;
        result.map(|_| run)
    }

    fn import_customers(
        &self,
        actor: &Actor,
        reader: &mut csv::Reader<impl Read>,
        fields: &[String],
        run: &mut ImportRun,
        progress: &mut dyn FnMut(u64),
    ) -> CoreResult<()> {
        let region = actor.workspace.default_region.clone();
        let mut chunk: Vec<CustomerRow> = Vec::with_capacity(ROWS_PER_TRANSACTION);
        let mut record = csv::StringRecord::new();
        loop {
            let more = match reader.read_record(&mut record) {
                Ok(more) => more,
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    run.rows_total += 1;
                    run.rows_rejected += 1;
                    run.rejected.push(rejected_row(
                        line,
                        FieldError::new("invalid_csv", "", e.to_string()),
                    ));
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        return Err(csv_error(e));
                    }
                    continue;
                }
            };
            if more {
                run.rows_total += 1;
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                match parse_customer_row(fields, &record, &region) {
                    Ok((patch, keys)) => chunk.push(CustomerRow { patch, keys }),
                    Err(e) => {
                        run.rows_rejected += 1;
                        run.rejected.push(rejected_row(line, e));
                    }
                }
            }
            if chunk.len() >= ROWS_PER_TRANSACTION || (!more && !chunk.is_empty()) {
                let (created, updated, unchanged) = self.apply_customer_rows(actor, &chunk)?;
                run.rows_created += created;
                run.rows_updated += updated;
                run.rows_unchanged += unchanged;
                chunk.clear();
                progress(run.rows_total as u64);
                write(&*self.store, |tx| tx.update_import(run))?;
            }
            if !more {
                return Ok(());
            }
        }
    }

    fn apply_customer_rows(
        &self,
        actor: &Actor,
        rows: &[CustomerRow],
    ) -> CoreResult<(i64, i64, i64)> {
        let ws = actor.workspace.id.clone();
        let now = self.clock.now();
        Ok(write(&*self.store, |tx| {
            let mut graph = Graph::new(self, ws.clone());
            let keys: Vec<IdentityKey> = rows.iter().flat_map(|r| r.keys.iter().cloned()).collect();
            graph.prefetch(tx, &keys)?;
            let (mut created, mut updated, mut unchanged) = (0, 0, 0);
            let mut touched_new: Vec<CustomerId> = Vec::new();
            for row in rows {
                let provenance = Provenance {
                    source: "import",
                    message_id: None,
                    actor: Some(actor.label()),
                    at: now,
                };
                let existed_before = row.keys.iter().any(|k| graph.owner_of(k).is_some());
                let root = graph.resolve(tx, &row.keys, &[], &provenance)?;
                let customer = graph.customer_mut(tx, &root)?;
                let before = customer.clone();
                let mut patch = row.patch.clone();
                // Tags from a file add to the profile's tags; they never remove any.
                if let Some(tags) = patch.tags.take() {
                    let mut all = customer.tags.clone();
                    all.extend(tags);
                    patch.tags = Some(all);
                }
                customer.apply(&patch);
                if !existed_before && !touched_new.contains(&root) {
                    touched_new.push(root);
                    created += 1;
                } else if *customer != before {
                    customer.updated_at = now;
                    updated += 1;
                } else {
                    unchanged += 1;
                }
            }
            graph.flush(tx)?;
            Ok((created, updated, unchanged))
        })?)
    }

    fn import_orders(
        &self,
        actor: &Actor,
        reader: &mut csv::Reader<impl Read>,
        fields: &[String],
        run: &mut ImportRun,
        progress: &mut dyn FnMut(u64),
    ) -> CoreResult<()> {
        let region = actor.workspace.default_region.clone();
        let now = self.clock.now();
        // Orders span several lines (one per item), so lines are grouped by order id first.
        let mut orders: BTreeMap<String, Vec<OrderLine>> = BTreeMap::new();
        let mut order_sequence: Vec<String> = Vec::new();
        for record in reader.records() {
            run.rows_total += 1;
            match record {
                Ok(record) => {
                    let line_no = record.position().map(|p| p.line()).unwrap_or(0);
                    match parse_order_row(fields, &record, &region, now) {
                        Ok(mut line) => {
                            line.line = line_no;
                            if !orders.contains_key(&line.order_id) {
                                order_sequence.push(line.order_id.clone());
                            }
                            orders.entry(line.order_id.clone()).or_default().push(line);
                        }
                        Err(e) => {
                            run.rows_rejected += 1;
                            run.rejected.push(rejected_row(line_no, e));
                        }
                    }
                }
                Err(e) => {
                    run.rows_rejected += 1;
                    run.rejected.push(rejected_row(
                        e.position().map(|p| p.line()).unwrap_or(0),
                        FieldError::new("invalid_csv", "", e.to_string()),
                    ));
                }
            }
        }
        let ws = actor.workspace.id.clone();
        let mut done: u64 = 0;
        for chunk in order_sequence.chunks(ROWS_PER_TRANSACTION / 4) {
            let mut batch: Vec<(u64, Order, Vec<IdentityKey>)> = Vec::new();
            for order_id in chunk {
                let lines = &orders[order_id];
                let first = &lines[0];
                let mut keys = Vec::new();
                for l in lines {
                    for k in &l.keys {
                        if !keys.contains(k) {
                            keys.push(k.clone());
                        }
                    }
                }
                let items: Vec<OrderItem> = lines.iter().filter_map(|l| l.item.clone()).collect();
                let total = lines
                    .iter()
                    .find_map(|l| l.total_minor)
                    .unwrap_or_else(|| items.iter().map(|i| i.price_minor * i.quantity).sum());
                let Some(placed_at) = lines.iter().find_map(|l| l.placed_at) else {
                    run.rows_rejected += lines.len() as i64;
                    for l in lines {
                        run.rejected.push(rejected_row(
                            l.line,
                            FieldError::new("missing_field", "placed_at", "the order has no date"),
                        ));
                    }
                    continue;
                };
                let order = Order {
                    id: self.new_id(OrderId::generate),
                    workspace_id: ws.clone(),
                    customer_id: CustomerId::generate(0, 0), // set once the customer is resolved
                    external_id: order_id.clone(),
                    total_minor: total,
                    currency: lines
                        .iter()
                        .find_map(|l| l.currency.clone())
                        .unwrap_or_else(|| actor.workspace.currency.clone()),
                    placed_at,
                    source: "import".into(),
                    event_id: None,
                    items,
                };
                batch.push((first.line, order, keys));
                done += lines.len() as u64;
            }
            let (created, unchanged) = write(&*self.store, |tx| {
                let mut graph = Graph::new(self, ws.clone());
                let all: Vec<IdentityKey> = batch
                    .iter()
                    .flat_map(|(_, _, k)| k.iter().cloned())
                    .collect();
                graph.prefetch(tx, &all)?;
                let (mut created, mut unchanged) = (0i64, 0i64);
                for (_, order, keys) in &batch {
                    let provenance = Provenance {
                        source: "import",
                        message_id: None,
                        actor: Some(actor.label()),
                        at: order.placed_at,
                    };
                    let root = graph.resolve(tx, keys, &[], &provenance)?;
                    let owner = keys
                        .first()
                        .and_then(|k| graph.owner_of(k))
                        .unwrap_or_else(|| root.clone());
                    graph.flush(tx)?;
                    let event_id = self.new_id(EventId::generate);
                    let event = Event {
                        id: event_id.clone(),
                        workspace_id: ws.clone(),
                        customer_id: owner.clone(),
                        message_id: format!("import:order:{}", order.external_id),
                        event_type: EventType::Track,
                        name: Some(ORDER_COMPLETED.into()),
                        channel: "store".into(),
                        source: "import".into(),
                        user_id: None,
                        anonymous_id: None,
                        properties: serde_json::json!({
                            "order_id": order.external_id,
                            "total": order.total_minor as f64 / 100.0,
                            "currency": order.currency,
                            "products": order.items.iter().map(|i| serde_json::json!({
                                "product_id": i.product_id, "sku": i.sku, "name": i.name, "category": i.category,
                                "price": i.price_minor as f64 / 100.0, "quantity": i.quantity,
                            })).collect::<Vec<_>>(),
                        })
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                        context: Map::new(),
                        timestamp: order.placed_at,
                        received_at: now,
                    };
                    let mut order = order.clone();
                    order.customer_id = owner;
                    order.event_id = Some(event_id);
                    if tx.insert_order(&order)? {
                        tx.insert_events(std::slice::from_ref(&event))?;
                        let customer = graph.customer_mut(tx, &root)?;
                        customer
                            .stats
                            .record_order(order.total_minor, order.placed_at);
                        customer.seen_at(order.placed_at);
                        created += 1;
                    } else {
                        unchanged += 1;
                    }
                }
                graph.flush(tx)?;
                Ok((created, unchanged))
            })?;
            run.rows_created += created;
            run.rows_unchanged += unchanged;
            progress(done);
            write(&*self.store, |tx| tx.update_import(run))?;
        }
        Ok(())
    }

    /// Writes customers matching `query` (all pages) as CSV; returns the number of rows.
    pub fn export_customers_csv(
        &self,
        actor: &Actor,
        mut query: CustomerQuery,
        out: impl Write,
    ) -> CoreResult<u64> {
        actor.require(Permission::ExportCustomers)?;
        let mut writer = csv::Writer::from_writer(out);
        let header = [
            "id",
            "name",
            "email",
            "phone",
            "whatsapp",
            "birthday",
            "city",
            "state",
            "country",
            "locale",
            "time_zone",
            "tags",
            "orders_count",
            "total_spent",
            "average_order_value",
            "first_order_at",
            "last_order_at",
            "first_seen_at",
            "last_seen_at",
            "created_at",
            "traits",
        ];
        writer
            .write_record(header)
            .map_err(|e| CoreError::Store(StoreError::Backend(e.to_string())))?;
        query.limit = crate::customers::MAX_PAGE;
        let mut cursor: Option<String> = None;
        let mut count = 0u64;
        loop {
            let page = self.list_customers(actor, query.clone(), cursor.as_deref())?;
            for c in &page.items {
                let row = [
                    c.id.to_string(),
                    c.name.clone().unwrap_or_default(),
                    c.email.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                    c.phone.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                    c.whatsapp
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    c.birthday.map(|d| d.to_string()).unwrap_or_default(),
                    c.city.clone().unwrap_or_default(),
                    c.state.clone().unwrap_or_default(),
                    c.country.clone().unwrap_or_default(),
                    c.locale.clone().unwrap_or_default(),
                    c.time_zone.clone().unwrap_or_default(),
                    c.tags.join(","),
                    c.stats.orders_count.to_string(),
                    money(c.stats.total_spent_minor),
                    money(c.stats.average_order_value_minor()),
                    time_cell(c.stats.first_order_at),
                    time_cell(c.stats.last_order_at),
                    time_cell(Some(c.first_seen_at)),
                    time_cell(Some(c.last_seen_at)),
                    time_cell(Some(c.created_at)),
                    if c.traits.is_empty() {
                        String::new()
                    } else {
                        Value::Object(c.traits.clone()).to_string()
                    },
                ];
                writer
                    .write_record(row.iter().map(|v| safe_cell(v)))
                    .map_err(|e| CoreError::Store(StoreError::Backend(e.to_string())))?;
                count += 1;
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        writer
            .flush()
            .map_err(|e| CoreError::Store(StoreError::Backend(e.to_string())))?;
        Ok(count)
    }

    /// Writes all orders of the workspace as CSV, one line per item (an order without items is
    /// one line); the format `import_csv(Orders)` reads back.
    pub fn export_orders_csv(&self, actor: &Actor, out: impl Write) -> CoreResult<u64> {
        actor.require(Permission::ExportCustomers)?;
        let mut writer = csv::Writer::from_writer(out);
        let io = |e: csv::Error| CoreError::Store(StoreError::Backend(e.to_string()));
        writer
            .write_record([
                "order_id",
                "customer_id",
                "email",
                "placed_at",
                "total",
                "currency",
                "product_id",
                "sku",
                "product_name",
                "category",
                "price",
                "quantity",
            ])
            .map_err(io)?;
        let ws = actor.workspace.id.clone();
        let mut after = None;
        let mut count = 0u64;
        loop {
            let (orders, emails) = read(&*self.store, |tx| {
                let orders = tx.list_orders(&ws, after.as_ref(), 500)?;
                let mut ids: Vec<CustomerId> =
                    orders.iter().map(|o| o.customer_id.clone()).collect();
                ids.sort();
                ids.dedup();
                let emails: BTreeMap<CustomerId, String> = tx
                    .identities_of(&ws, &ids)?
                    .into_iter()
                    .filter(|i| i.key.kind == IdentityKind::Email)
                    .map(|i| (i.customer_id, i.key.value))
                    .collect();
                Ok((orders, emails))
            })?;
            if orders.is_empty() {
                break;
            }
            for o in &orders {
                let email = emails.get(&o.customer_id).cloned().unwrap_or_default();
                let base = [
                    o.external_id.clone(),
                    o.customer_id.to_string(),
                    email,
                    time_cell(Some(o.placed_at)),
                    money(o.total_minor),
                    o.currency.clone(),
                ];
                if o.items.is_empty() {
                    let row: Vec<String> = base
                        .iter()
                        .cloned()
                        .chain(std::iter::repeat_n(String::new(), 6))
                        .collect();
                    writer
                        .write_record(row.iter().map(|v| safe_cell(v)))
                        .map_err(io)?;
                }
                for i in &o.items {
                    let row: Vec<String> = base
                        .iter()
                        .cloned()
                        .chain([
                            i.product_id.clone().unwrap_or_default(),
                            i.sku.clone().unwrap_or_default(),
                            i.name.clone().unwrap_or_default(),
                            i.category.clone().unwrap_or_default(),
                            money(i.price_minor),
                            i.quantity.to_string(),
                        ])
                        .collect();
                    writer
                        .write_record(row.iter().map(|v| safe_cell(v)))
                        .map_err(io)?;
                }
                count += 1;
            }
            after = orders.last().map(|o| o.id.clone());
        }
        writer
            .flush()
            .map_err(|e| CoreError::Store(StoreError::Backend(e.to_string())))?;
        Ok(count)
    }

    pub fn get_import(&self, actor: &Actor, id: &ImportId) -> CoreResult<ImportRun> {
        actor.require(Permission::ReadCustomers)?;
        read(&*self.store, |tx| tx.get_import(&actor.workspace.id, id))?
            .ok_or(CoreError::NotFound("import"))
    }

    pub fn list_imports(&self, actor: &Actor) -> CoreResult<Vec<ImportRun>> {
        actor.require(Permission::ReadCustomers)?;
        Ok(read(&*self.store, |tx| {
            tx.list_imports(&actor.workspace.id, 100)
        })?)
    }
}
