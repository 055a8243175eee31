//! The accountants' ledger end to end, on real servers: an invoice is booked once whatever its bytes, one for
//! another company is flagged, and the `invoices` and `export` commands of the real binary show, correct and
//! export what was stored. The supplier memory learns from one correction.

use crate::common;

use common::pdf::{cif, Layout, SampleInvoice};
use common::{cli, stdout, MailBuilder, TestWorld};
use rust_decimal::Decimal;

/// Parse the CSV the commands print (our fields never hold a quote, so a split is enough) into header → value maps.
fn parse_csv(text: &str, sep: char) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(sep).map(str::to_string).collect();
    lines
        .map(|l| {
            let values: Vec<&str> = l.split(sep).collect();
            assert_eq!(values.len(), header.len(), "{l}");
            header.iter().cloned().zip(values.iter().map(|v| v.to_string())).collect()
        })
        .collect()
}

async fn send_pdf(w: &TestWorld, subject: &str, inv_pdf: Vec<u8>, name: &str) {
    let mail = MailBuilder::new(w, subject).attach(name, "application/pdf", inv_pdf);
    w.send(&mail.build()).await.unwrap();
}

async fn count_invoices(w: &TestWorld) -> i64 {
    w.scalar_i64("SELECT count(*) FROM invoices").await
}

#[tokio::test]
async fn a_re_exported_invoice_is_booked_once_and_its_supplier_told_when_the_first_came() {
    let w = TestWorld::new().await;
    let first = SampleInvoice::basic("FN-2025-0042");
    let mut again = first.clone();
    again.font = common::pdf::Font::Times;
    again.layout = Layout::HeaderRight;
    let (a, b) = (first.render_pdf(), again.render_pdf());
    assert_ne!(a, b, "the re-export has other bytes");
    send_pdf(&w, "Factura FN-2025-0042", a, "FN-2025-0042.pdf").await;
    w.run_once().await.unwrap();
    send_pdf(&w, "Factura FN-2025-0042 (reenvío)", b, "factura-0042-v2.pdf").await;
    w.run_once().await.unwrap();

    assert_eq!(count_invoices(&w).await, 1);
    let replies = w.mailbox("supplier", 2).await.unwrap();
    let second = replies.iter().find(|r| r.subject.contains("reenvío")).unwrap();
    let today = chrono::Utc::now().date_naive().format("%d/%m/%Y").to_string();
    assert!(
        second.text.contains("factura-0042-v2.pdf: duplicada")
            && common::flat(&second.text).contains(&format!("Ya recibimos esta factura el {today}")),
        "{}",
        second.text
    );
    assert!(second.text.contains("FN-2025-0042"), "{}", second.text);
    w.drop_database().await;
}

#[tokio::test]
async fn a_factur_x_pdf_with_its_xml_beside_it_in_one_mail_is_one_invoice() {
    let w = TestWorld::new().await;
    let inv = SampleInvoice::basic("FX-2025-0100");
    let xml = inv.factur_x_xml(inv.total());
    let mail = MailBuilder::new(&w, "Factura FX-2025-0100")
        .attach("factura.pdf", "application/pdf", inv.render_pdf_with_xml(&xml))
        .attach("factur-x.xml", "application/xml", xml.into_bytes());
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    assert_eq!(count_invoices(&w).await, 1);
    assert_eq!(w.scalar_i64("SELECT count(*) FROM attachments").await, 2, "both documents were read");
    let (number, total): (String, Decimal) =
        sqlx::query_as("SELECT invoice_number, total_amount FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert_eq!((number.as_str(), total), ("FX-2025-0100", inv.total()));
    w.drop_database().await;
}

#[tokio::test]
async fn the_same_number_with_another_total_is_a_second_row_with_a_fraud_signal() {
    let w = TestWorld::new().await;
    let first = SampleInvoice::basic("FN-2025-0077");
    let mut doctored = first.clone();
    doctored.lines[2].unit_price = Decimal::new(11500, 2);
    assert_ne!(first.total(), doctored.total());
    send_pdf(&w, "Factura FN-2025-0077", first.render_pdf(), "a.pdf").await;
    w.run_once().await.unwrap();
    send_pdf(&w, "Factura FN-2025-0077", doctored.render_pdf(), "b.pdf").await;
    w.run_once().await.unwrap();

    let rows: Vec<(Decimal, serde_json::Value, String)> =
        sqlx::query_as("SELECT total_amount, fraud_signals, review_state FROM invoices ORDER BY id")
            .fetch_all(&w.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].0, doctored.total());
    assert_eq!(rows[1].1[0]["kind"], "number_reused_with_different_total", "{:?}", rows[1].1);
    assert_eq!(rows[1].2, "needs_review");
    let confirmations = w.mailbox("accounts", 2).await.unwrap();
    assert!(confirmations.iter().any(|c| c.subject.starts_with("[ALERTA]")), "{:?}", confirmations[1].subject);
    w.drop_database().await;
}

fn to_another_company(number: &str) -> SampleInvoice {
    let mut inv = SampleInvoice::basic(number);
    inv.customer_name = "Hotel Miramar S.A.".into();
    inv.customer_nif = cif('A', "2345678");
    inv
}

#[tokio::test]
async fn an_invoice_to_another_company_needs_review_and_is_flagged() {
    let w = TestWorld::new().await;
    send_pdf(&w, "Factura H-1", to_another_company("H-2025-0001").render_pdf(), "h.pdf").await;
    w.run_once().await.unwrap();

    let (state, reasons): (String, serde_json::Value) =
        sqlx::query_as("SELECT review_state, review_reasons FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert_eq!(state, "needs_review");
    assert!(reasons.to_string().contains("dirigida a otra empresa: Hotel Miramar"), "{reasons}");
    let confirmation = &w.mailbox("accounts", 1).await.unwrap()[0];
    assert!(confirmation.subject.starts_with("[REVISAR]"), "{}", confirmation.subject);
    assert!(confirmation.text.contains("no va dirigida a nuestra empresa"), "{}", confirmation.text);
    w.drop_database().await;
}

#[tokio::test]
async fn with_reject_an_invoice_to_another_company_is_answered_and_not_booked() {
    let w = TestWorld::with_config(|t| {
        t["company"].as_table_mut().unwrap().insert("on_foreign_customer".into(), "reject".into());
    })
    .await;
    send_pdf(&w, "Factura H-2", to_another_company("H-2025-0002").render_pdf(), "h.pdf").await;
    w.run_once().await.unwrap();

    assert_eq!(count_invoices(&w).await, 0);
    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(reply.text.contains("h.pdf: no registrada"), "{}", reply.text);
    assert!(reply.text.contains("La factura no va dirigida a nuestra empresa"), "{}", reply.text);
    w.drop_database().await;
}

/// The demo's kinds of invoice: one rate, three rates with a printed breakdown, and a professional's with IRPF.
fn demo_invoices() -> Vec<SampleInvoice> {
    let basic = SampleInvoice::basic("FN-2025-0042");
    let mut mixed = SampleInvoice::basic("MX-2025-0007");
    mixed.layout = Layout::Table;
    mixed.lines[1].iva = Some(Decimal::from(10));
    mixed.lines[2].iva = Some(Decimal::from(4));
    let irpf = SampleInvoice::with_irpf("P-2025-0031");
    vec![basic, mixed, irpf]
}

async fn book(w: &TestWorld, invoices: &[SampleInvoice]) {
    for inv in invoices {
        send_pdf(w, &format!("Factura {}", inv.number), inv.render_pdf(), &format!("{}.pdf", inv.number)).await;
    }
    w.run_once().await.unwrap();
    assert_eq!(count_invoices(w).await, invoices.len() as i64);
}

fn comma(d: Decimal) -> String {
    d.to_string().replace('.', ",")
}

#[tokio::test]
async fn the_list_and_the_libro_registro_show_every_field_of_the_stored_invoices() {
    let w = TestWorld::new().await;
    let invoices = demo_invoices();
    book(&w, &invoices).await;

    let rows = parse_csv(&stdout(&cli(&w, &["invoices", "list", "--format", "csv"])), ',');
    assert_eq!(rows.len(), 3);
    // Several slots read the mails at once, so the rows come in any order: each is found by its number.
    for inv in &invoices {
        let row = rows.iter().find(|r| r["invoice_number"] == inv.number).expect("a row per invoice");
        let due = inv.due_date.map(|d| d.to_string()).unwrap_or_default();
        let iban: String = inv.iban.clone().unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
        for (column, expected) in [
            ("state", "auto_ok".to_string()),
            ("supplier_name", inv.supplier_name.clone()),
            ("supplier_tax_id", inv.supplier_nif.clone()),
            ("invoice_number", inv.number.clone()),
            ("issue_date", inv.issue_date.to_string()),
            ("due_date", due),
            ("currency", "EUR".into()),
            ("net_amount", inv.net().to_string()),
            ("tax_amount", inv.tax().to_string()),
            ("total_amount", inv.total().to_string()),
            ("amount_due", inv.due().to_string()),
            ("iban", iban),
            ("source", "pdf_text".into()),
        ] {
            assert_eq!(row[column], expected, "{column} of {}", inv.number);
        }
        assert!(row["received_at"].starts_with(&chrono::Utc::now().date_naive().to_string()), "{row:?}");
    }
    let since = chrono::Utc::now().date_naive().succ_opt().unwrap().to_string();
    let later = parse_csv(&stdout(&cli(&w, &["invoices", "list", "--format", "csv", "--since", &since])), ',');
    assert!(later.is_empty());
    let by_supplier = stdout(&cli(&w, &["invoices", "list", "--format", "csv", "--supplier", "Laura"]));
    assert_eq!(parse_csv(&by_supplier, ',').len(), 1);

    println!("{}", stdout(&cli(&w, &["invoices", "list"])));
    let libro_text = stdout(&cli(&w, &["export", "--format", "libro-registro"]));
    println!("{libro_text}");
    let libro = parse_csv(&libro_text, ';');
    // One line per invoice and rate: 1 + 3 + 1.
    assert_eq!(libro.len(), 5, "{libro:?}");
    for inv in &invoices {
        let lines: Vec<_> = libro.iter().filter(|l| l["Serie-Número"] == inv.number).collect();
        assert_eq!(lines.len(), inv.bases().len(), "{}: {lines:?}", inv.number);
        for (k, (rate, base, quota)) in inv.bases().into_iter().enumerate() {
            let line = lines[k];
            let first = k == 0;
            for (column, expected) in [
                ("Fecha Expedición", inv.issue_date.format("%d/%m/%Y").to_string()),
                ("Serie-Número", inv.number.clone()),
                ("NIF Expedidor", inv.supplier_nif.clone()),
                ("Nombre Expedidor", inv.supplier_name.clone()),
                ("Base Imponible", comma(base)),
                ("Tipo de IVA", rate.to_string()),
                ("Cuota IVA Soportado", comma(quota)),
                (
                    "Tipo Retención IRPF",
                    if first { inv.irpf.map(|r| r.to_string()).unwrap_or_default() } else { String::new() },
                ),
                (
                    "Importe Retención IRPF",
                    if first && inv.irpf.is_some() { comma(inv.withheld()) } else { String::new() },
                ),
                ("Total Factura", if first { comma(inv.total()) } else { String::new() }),
            ] {
                assert_eq!(line[column], expected, "{column} of {} at rate {rate}", inv.number);
            }
        }
    }
    w.drop_database().await;
}

#[tokio::test]
async fn a_correction_is_shown_with_its_audit_record_and_used_by_the_export() {
    let w = TestWorld::new().await;
    let inv = SampleInvoice::basic("FN-2025-0042");
    book(&w, std::slice::from_ref(&inv)).await;
    let id = w.scalar_i64("SELECT id FROM invoices").await.to_string();

    let bad = cli(&w, &["invoices", "correct", &id, "issue_date=2025-13-45"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("issue_date must be a date such as 2025-10-15") && err.contains("nothing was changed"),
        "{err}"
    );
    let bad = cli(&w, &["invoices", "correct", &id, "total_amount=12O,00"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("total_amount must be a decimal amount"));
    assert_eq!(w.scalar_i64("SELECT count(*) FROM invoice_corrections").await, 0);

    let out = stdout(&cli(
        &w,
        &["invoices", "correct", &id, "total_amount=600.00", "supplier.name=Suministros del Norte S.L.", "--by", "ana"],
    ));
    assert!(out.contains(&format!("invoice {id}: total_amount {} -> 600.00", inv.total())), "{out}");
    // The checks run again on the corrected record: the printed net and tax no longer make 600.00.
    let sum = inv.net() + inv.tax();
    let failed = format!("FAIL totals_add_up: net {} + tax {} = {sum} (total 600.00)", inv.net(), inv.tax());
    assert!(out.contains(&failed), "{out}");
    assert!(
        out.contains("ok   tax_id_checksum: supplier tax id")
            && out.ends_with(&format!("invoice {id}: needs_review\n"))
    );
    let show = stdout(&cli(&w, &["invoices", "show", &id]));
    assert!(show.contains("checks (after the corrections):") && show.contains(&format!("  {failed}")), "{show}");
    assert!(show.contains(&format!("  - check totals_add_up failed: net {}", inv.net())), "{show}");
    let out = stdout(&cli(&w, &["invoices", "correct", &id, "net_amount=495,87", "tax_amount=104.13", "--by", "ana"]));
    assert!(out.contains("ok   totals_add_up: net 495.87 + tax 104.13 = 600.00 (total 600.00)"), "{out}");
    assert!(out.ends_with(&format!("invoice {id}: corrected\n")), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let show = stdout(&cli(&w, &["invoices", "show", &id, "--save-original", &dir.path().display().to_string()]));
    println!("{show}");
    assert!(show.contains(&format!("invoice {id}: corrected")), "{show}");
    let total_line = show.lines().find(|l| l.starts_with("total_amount")).unwrap();
    assert!(total_line.contains("600.00") && total_line.ends_with("correction"), "{total_line}");
    let number_line = show.lines().find(|l| l.starts_with("invoice_number")).unwrap();
    assert!(number_line.contains("FN-2025-0042") && number_line.contains("0.95") && number_line.ends_with("pdf_text"));
    assert!(show.contains(&format!("total_amount by ana via cli: {} -> 600.00", inv.total())), "{show}");
    assert!(show.contains("supplier.name by ana via cli: Suministros Norte S.L. -> Suministros del Norte S.L."));
    let saved = std::fs::read(dir.path().join(format!("{id}-FN-2025-0042.pdf"))).unwrap();
    assert_eq!(saved, inv.render_pdf(), "the original document, byte for byte");

    let csv = parse_csv(&stdout(&cli(&w, &["export", "--format", "csv"])), ',');
    assert_eq!((csv[0]["total_amount"].as_str(), csv[0]["state"].as_str()), ("600.00", "corrected"));
    let libro = parse_csv(&stdout(&cli(&w, &["export", "--format", "libro-registro"])), ';');
    assert_eq!(libro[0]["Total Factura"], "600,00");
    assert_eq!(libro[0]["Nombre Expedidor"], "Suministros del Norte S.L.");

    let approved = stdout(&cli(&w, &["invoices", "approve", &id]));
    assert!(approved.contains("approved"));
    let listed = parse_csv(&stdout(&cli(&w, &["invoices", "list", "--format", "csv", "--state", "approved"])), ',');
    assert_eq!(listed.len(), 1);
    w.drop_database().await;
}

/// A supplier whose invoice number sits behind a label the general rules do not know (`Ref. de cargo:`). The
/// generator's label is swapped in the PDF for one of the same length, so the file stays valid.
fn unusual_label(number: &str) -> Vec<u8> {
    let pdf = SampleInvoice::basic(number).render_pdf();
    let from = b"Factura n\\272:";
    let to = b"Ref. de cargo:";
    let at = pdf.windows(from.len()).position(|w| w == from).expect("the number label is in the PDF");
    let mut out = pdf;
    out[at..at + from.len()].copy_from_slice(to);
    out
}

#[tokio::test]
async fn after_one_correction_the_next_invoices_of_an_unusual_layout_are_read_right() {
    let w = TestWorld::new().await;
    let numbers =
        ["EXP-2025/0017", "EXP-2025/0031", "EXP-2025/0102", "EXP-2026/0004", "EXP-2026/0019", "EXP-2026/1207"];
    let pdfs: Vec<Vec<u8>> = numbers.iter().map(|n| unusual_label(n)).collect();

    // The general rules alone, on the five later invoices.
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (n, pdf) in numbers.iter().zip(&pdfs).skip(1) {
        let path = dir.path().join(format!("{}.pdf", n.replace('/', "-")));
        std::fs::write(&path, pdf).unwrap();
        files.push(path.display().to_string());
    }
    let mut args = vec!["extract", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_invoice-intake")).args(&args).output().unwrap();
    let plain: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let right_without = plain.iter().zip(&numbers[1..]).filter(|(e, n)| e["invoice_number"] == **n).count();
    assert!(right_without < 5, "the general rules already read this layout");

    send_pdf(&w, "Factura", pdfs[0].clone(), "cargo-1.pdf").await;
    w.run_once().await.unwrap();
    let (id, read): (i64, Option<String>) =
        sqlx::query_as("SELECT id, invoice_number FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert_ne!(read.as_deref(), Some(numbers[0]));
    let learnt = stdout(&cli(&w, &["invoices", "correct", &id.to_string(), &format!("invoice_number={}", numbers[0])]));
    assert!(
        learnt.contains("learnt: this supplier prints invoice_number after the label \"ref. de cargo\""),
        "{learnt}"
    );

    for (k, pdf) in pdfs.iter().enumerate().skip(1) {
        send_pdf(&w, "Factura", pdf.clone(), &format!("cargo-{}.pdf", k + 1)).await;
    }
    w.run_once().await.unwrap();
    let later: Vec<(Option<String>, serde_json::Value)> =
        sqlx::query_as("SELECT invoice_number, result->'field_sources' FROM invoices WHERE id <> $1 ORDER BY id")
            .bind(id)
            .fetch_all(&w.pool)
            .await
            .unwrap();
    // Several slots read the mails at once, so the rows come in any order.
    let mut got: Vec<&str> = later.iter().filter_map(|(n, _)| n.as_deref()).collect();
    got.sort_unstable();
    let right_with = numbers[1..].iter().filter(|n| got.binary_search(n).is_ok()).count();
    assert_eq!(got.len(), 5);
    println!(
        "invoice numbers right: {right_without} of 5 by the general rules, {right_with} of 5 after one correction"
    );
    assert_eq!(right_with, 5, "{later:?}");
    assert!(later.iter().all(|(_, s)| s["invoice_number"] == "supplier_memory"), "{later:?}");
    w.drop_database().await;
}

/// Two workers read two copies of one invoice (other bytes) at the same moment: the unique key on supplier and
/// number makes the second INSERT wait for the first to commit, then store nothing.
#[tokio::test]
async fn two_workers_storing_the_same_invoice_at_once_make_one_row() {
    use invoice_intake::extract::{Extraction, Party};
    use invoice_intake::store::{self, InvoiceOrigin, NewAttachment, NewMessage};
    let w = TestWorld::new().await;
    let pool = store::connect(w.config.database.url.expose(), 4).await.unwrap();
    store::migrate(&pool).await.unwrap();
    let mut e = Extraction::empty("a.pdf");
    e.invoice_number = Some("FN-2025-0042".into());
    e.total_amount = Some(Decimal::new(53216, 2));
    e.issue_date = "2025-10-15".parse().ok();
    e.supplier = Some(Party { tax_id: Some("B12345674".into()), ..Default::default() });

    let mut refs = Vec::new();
    for uid in [1u32, 2] {
        let raw = format!("Subject: copy {uid}\r\n\r\n");
        let m = NewMessage {
            mailbox: "INBOX",
            uidvalidity: 1,
            uid,
            message_id: None,
            sender: Some("a@x.test"),
            subject: None,
            raw: raw.as_bytes(),
            raw_sha256: &format!("{uid:064}"),
            size_bytes: raw.len() as u64,
        };
        let message = store::insert_message(&pool, &m).await.unwrap().unwrap();
        let mut tx = pool.begin().await.unwrap();
        let a = NewAttachment {
            message_ref: message,
            position: 0,
            filename: "a.pdf",
            content_type: "pdf",
            size_bytes: 1,
            sha256: &format!("{uid}"),
            status: "ok",
            error_code: None,
            result: serde_json::json!([]),
        };
        let attachment = store::insert_attachment(&mut tx, &a).await.unwrap();
        tx.commit().await.unwrap();
        refs.push((message, attachment, format!("{uid}")));
    }
    let origin = |i: usize| InvoiceOrigin {
        message_ref: refs[i].0,
        attachment_ref: refs[i].1,
        message_id: None,
        sender: "a@x.test",
        sha256: &refs[i].2,
        index: 0,
    };
    let mut first = pool.begin().await.unwrap();
    assert!(store::insert_invoice(&mut first, &origin(0), &e).await.unwrap().is_some());
    let mut second = pool.begin().await.unwrap();
    let second_origin = origin(1);
    {
        let racing = store::insert_invoice(&mut second, &second_origin, &e);
        tokio::pin!(racing);
        // The second insert waits for the first transaction.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(300), &mut racing).await.is_err());
        first.commit().await.unwrap();
        assert_eq!(racing.await.unwrap(), None, "the second copy stores nothing");
    }
    second.commit().await.unwrap();
    assert_eq!(count_invoices(&w).await, 1);
    pool.close().await;
    w.drop_database().await;
}
