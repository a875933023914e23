//! CSV import: messy files, rejected rows with line numbers, idempotent re-import, known people
//! not duplicated, and export.

use crate::harness;
use ciclo_core::import::{ColumnMapping, ImportKind};
use ciclo_store::CustomerQuery;
use serde_json::json;

fn messy_file() -> String {
    // A spreadsheet export: byte-order mark, pt-BR headers, quoted commas, bad cells.
    [
        "\u{feff}Nome,E-mail,Telefone,Cidade,Aniversário,Tags",
        "Ana Souza,ana@loja.com.br,(11) 98765-4321,São Paulo,17/05/1990,vip",
        "Bruno Lima,bruno@@loja,(21) 99876-1234,Rio de Janeiro,,",
        "Carla Dias,carla@loja.com.br,,Recife,1988-02-30,",
        "\"Dias, Davi\",davi@loja.com.br,+55 31 98888-7777,Belo Horizonte,01/01/1980,\"vip,newsletter\"",
        ",,,Salvador,,",
    ]
    .join("\n")
}

#[test]
fn every_good_row_is_kept_and_every_bad_one_reported_by_line() {
    let h = harness();
    let run = h
        .app
        .import_csv(
            &h.actor,
            ImportKind::Customers,
            "clientes.csv",
            messy_file().as_bytes(),
            &ColumnMapping::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(run.rows_total, 5);
    assert_eq!(run.rows_created, 2);
    assert_eq!(run.rows_rejected, 3);
    let lines: Vec<(u64, &str)> = run
        .rejected
        .iter()
        .map(|r| (r.line, r.code.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (3, "invalid_email"),
            (4, "invalid_date"),
            (6, "missing_identity")
        ]
    );
    assert_eq!(run.status, "done");

    // Re-importing changes nothing.
    let again = h
        .app
        .import_csv(
            &h.actor,
            ImportKind::Customers,
            "clientes.csv",
            messy_file().as_bytes(),
            &ColumnMapping::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(
        (again.rows_created, again.rows_updated, again.rows_unchanged),
        (0, 0, 2)
    );
    let all = h
        .app
        .list_customers(
            &h.actor,
            CustomerQuery {
                limit: 100,
                ..Default::default()
            },
            None,
        )
        .unwrap()
        .items;
    assert_eq!(all.len(), 2);
    let davi = all
        .iter()
        .find(|c| c.name.as_deref() == Some("Dias, Davi"))
        .unwrap();
    assert_eq!(davi.tags, vec!["vip".to_string(), "newsletter".to_string()]);
    assert_eq!(davi.phone.as_ref().unwrap().as_str(), "+5531988887777");
}

#[test]
fn semicolon_files_from_brazilian_spreadsheets_are_read() {
    let h = harness();
    let file = "\u{feff}Nome;Celular;Cidade\nJo\u{e3}o Silva;(85) 99123-4567;Fortaleza\n";
    let run = h
        .app
        .import_csv(
            &h.actor,
            ImportKind::Customers,
            "c.csv",
            file.as_bytes(),
            &ColumnMapping::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(run.rows_created, 1, "{run:?}");
    let all = h
        .app
        .list_customers(
            &h.actor,
            CustomerQuery {
                limit: 10,
                ..Default::default()
            },
            None,
        )
        .unwrap()
        .items;
    assert_eq!(all[0].phone.as_ref().unwrap().as_str(), "+5585991234567");
    assert_eq!(all[0].city.as_deref(), Some("Fortaleza"));
}

#[test]
fn importing_a_known_person_updates_them_instead_of_duplicating() {
    let h = harness();
    h.ingest(vec![json!({"type": "identify", "userId": "u1", "messageId": "i1", "traits": {"email": "ana@loja.com.br"}})]);
    let run = h
        .app
        .import_csv(
            &h.actor,
            ImportKind::Customers,
            "c.csv",
            "email,city\nana@loja.com.br,Campinas\n".as_bytes(),
            &ColumnMapping::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((run.rows_created, run.rows_updated), (0, 1));
    let all = h
        .app
        .list_customers(
            &h.actor,
            CustomerQuery {
                limit: 100,
                ..Default::default()
            },
            None,
        )
        .unwrap()
        .items;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].city.as_deref(), Some("Campinas"));
}

#[test]
fn orders_import_groups_items_and_is_idempotent_and_export_round_trips() {
    let h = harness();
    let file = "pedido,email,data,valor,produto,preço,quantidade\n\
                A-1,ana@loja.com.br,2026-01-05,\"129,80\",Camiseta,\"64,90\",2\n\
                A-2,ana@loja.com.br,2026-02-05,50,Caneca,50,1\n\
                A-2,ana@loja.com.br,2026-02-05,50,Adesivo,0,1\n\
                A-3,,2026-02-06,10,X,10,1\n\
                A-4,bia@loja.com.br,ontem,10,X,10,1\n";
    let mut mapping = ColumnMapping::default();
    mapping.0.insert("data".into(), "placed_at".into());
    let run = h
        .app
        .import_csv(
            &h.actor,
            ImportKind::Orders,
            "pedidos.csv",
            file.as_bytes(),
            &mapping,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(run.rows_created, 2, "{run:?}");
    let lines: Vec<u64> = run.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![5, 6]);
    let again = h
        .app
        .import_csv(
            &h.actor,
            ImportKind::Orders,
            "pedidos.csv",
            file.as_bytes(),
            &mapping,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((again.rows_created, again.rows_unchanged), (0, 2));
    let all = h
        .app
        .list_customers(
            &h.actor,
            CustomerQuery {
                limit: 100,
                ..Default::default()
            },
            None,
        )
        .unwrap()
        .items;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].stats.orders_count, 2);
    assert_eq!(all[0].stats.total_spent_minor, 17980);

    let mut out = Vec::new();
    assert_eq!(h.app.export_orders_csv(&h.actor, &mut out).unwrap(), 2);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("A-2") && text.contains("Adesivo"));
    let mut out = Vec::new();
    h.app
        .export_customers_csv(&h.actor, CustomerQuery::default(), &mut out)
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().nth(1).unwrap().contains("ana@loja.com.br"));
    assert!(text.contains("179.80"));
}
