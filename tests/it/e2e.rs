//! End to end, on real servers: a supplier's mail goes in over SMTP, the worker runs, and we read what each
//! mailbox received over IMAP and what Postgres holds.

use crate::common;

use common::pdf::SampleInvoice;
use common::{corpus, render_png, MailBuilder, TestWorld};
use rust_decimal::Decimal;
use std::str::FromStr;

/// How the reply shows an invoice's total: `Total: 532,16 EUR`.
fn total_line(inv: &SampleInvoice) -> String {
    format!("Total: {} EUR", common::pdf::eur(inv.total()).trim_end_matches(" €"))
}

async fn invoice_rows(w: &TestWorld) -> Vec<(String, Option<String>, Option<Decimal>, Option<String>)> {
    sqlx::query_as("SELECT sender, invoice_number, total_amount, supplier_tax_id FROM invoices ORDER BY id")
        .fetch_all(&w.pool)
        .await
        .unwrap()
}

async fn message_states(w: &TestWorld) -> Vec<String> {
    sqlx::query_scalar("SELECT state FROM messages ORDER BY id").fetch_all(&w.pool).await.unwrap()
}

#[tokio::test]
async fn a_text_layer_pdf_becomes_a_row_a_threaded_reply_and_a_confirmation() {
    let w = TestWorld::new().await;
    let inv = SampleInvoice::basic("FN-2025-0042");
    let mail = MailBuilder::new(&w, "Factura octubre").attach("factura-0042.pdf", "application/pdf", inv.render_pdf());
    w.send(&mail.build()).await.unwrap();

    let summary = w.run_once().await.unwrap();
    assert_eq!(summary.processed, 1);

    let rows = invoice_rows(&w).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1.as_deref(), Some("FN-2025-0042"));
    assert_eq!(rows[0].2, Some(inv.total()));
    assert_eq!(rows[0].3.as_deref(), Some(inv.supplier_nif.as_str()));
    let (net, tax, source): (Option<Decimal>, Option<Decimal>, String) =
        sqlx::query_as("SELECT net_amount, tax_amount, source FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert_eq!((net, tax, source.as_str()), (Some(inv.net()), Some(inv.tax()), "pdf_text"));

    let replies = w.mailbox("supplier", 1).await.unwrap();
    let r = &replies[0];
    assert_eq!(r.subject, "Re: Factura octubre");
    assert_eq!(r.in_reply_to.as_deref(), Some(mail.message_id.trim_matches(['<', '>'])));
    assert!(r.references.iter().any(|x| x.contains(mail.message_id.trim_matches(['<', '>']))), "{:?}", r.references);
    assert_eq!(r.auto_submitted.as_deref(), Some("auto-replied"));
    assert!(r.text.contains("factura-0042.pdf: registrada."), "{}", r.text);
    assert!(r.text.contains("Factura nº: FN-2025-0042"), "{}", r.text);
    assert!(r.text.contains(&total_line(&inv)), "{}", r.text);
    assert!(r.html.contains("FN-2025-0042"), "an HTML part too");

    let confirmations = w.mailbox("accounts", 1).await.unwrap();
    let c = &confirmations[0];
    assert!(c.subject.contains("Factura registrada") && c.subject.contains("FN-2025-0042"), "{}", c.subject);
    assert!(c.text.contains(&format!("Remitente: {}", w.supplier())), "{}", c.text);
    assert!(
        c.text.contains(mail.message_id.trim_matches(['<', '>'])),
        "the confirmation names the message: {}",
        c.text
    );

    // Only after its results are stored is the mail moved out of the inbox.
    assert_eq!(w.count("intake", &w.tag).await.unwrap(), 0);
    assert_eq!(w.count("intake", &format!("{}_processed", w.tag)).await.unwrap(), 1);
    assert_eq!(message_states(&w).await, vec!["processed"]);
    w.drop_database().await;
}

#[tokio::test]
async fn a_factur_x_pdf_from_the_corpus_is_read_from_its_xml() {
    let w = TestWorld::new().await;
    let path = corpus("einvoice/zugferd-corpus/ZUGFeRDv2/correct/FNFE-factur-x-examples/Facture_DOM_BASICWL.pdf");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{}.expected.json", path.display())).unwrap()).unwrap();
    let mail = MailBuilder::new(&w, "Invoice FA-2017-0009")
        .body("Hello,\n\nplease find attached our invoice.\n\nKind regards\n")
        .attach("Facture_DOM_BASICWL.pdf", "application/octet-stream", std::fs::read(&path).unwrap());
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    let rows = invoice_rows(&w).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.as_deref(), expected["invoice_number"].as_str());
    assert_eq!(rows[0].2, Decimal::from_str(expected["total_amount"].as_str().unwrap()).ok());
    let source: String = sqlx::query_scalar("SELECT source FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert_eq!(source, "cii");
    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(
        reply.text.contains("Thank you. This is what we read"),
        "an English mail gets an English reply: {}",
        reply.text
    );
    assert!(reply.text.contains(expected["invoice_number"].as_str().unwrap()), "{}", reply.text);
    w.drop_database().await;
}

/// The XML inside a Factur-X PDF says one total, the page another: the supplier and the accountants are both told,
/// in plain words, and the row is still written from the XML (a warning, not a rejection).
#[tokio::test]
async fn a_factur_x_pdf_whose_xml_disagrees_with_its_page_is_flagged_to_supplier_and_accountants() {
    let w = TestWorld::new().await;
    let inv = SampleInvoice::basic("FX-2025-0777");
    let xml_total = inv.total() + Decimal::new(25000, 2);
    let mail = MailBuilder::new(&w, "Factura FX-2025-0777").attach(
        "factura-fx.pdf",
        "application/pdf",
        inv.render_pdf_with_xml(&inv.factur_x_xml(xml_total)),
    );
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    let rows = invoice_rows(&w).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].2, Some(xml_total), "the XML is the invoice");
    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(reply.text.contains("no coinciden con lo que muestra el PDF"), "{}", reply.text);
    let confirmation = &w.mailbox("accounts", 1).await.unwrap()[0];
    assert!(
        confirmation.text.contains("no coinciden") || confirmation.text.contains("does not match"),
        "{}",
        confirmation.text
    );
    w.drop_database().await;
}

#[tokio::test]
async fn a_scanned_png_gets_a_reply_with_its_total() {
    let w = TestWorld::new().await;
    let inv = SampleInvoice::basic("ESC-7781");
    let png = render_png(&inv.render_pdf(), 200);
    let mail = MailBuilder::new(&w, "Factura escaneada").attach("escaneo.png", "image/png", png);
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(reply.text.contains("escaneo.png: registrada."), "{}", reply.text);
    assert!(reply.text.contains("Factura nº: ESC-7781"), "{}", reply.text);
    assert!(reply.text.contains(&total_line(&inv)), "{}", reply.text);
    let source: String = sqlx::query_scalar("SELECT source FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert_eq!(source, "ocr");
    w.drop_database().await;
}

#[tokio::test]
async fn a_mail_without_an_attachment_is_told_so_and_filed_as_failed() {
    let w = TestWorld::new().await;
    let mail = MailBuilder::new(&w, "Factura").body("Hola, os envío la factura.\nSaludos\n");
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(reply.text.contains("No hemos encontrado ninguna factura adjunta"), "{}", reply.text);
    assert_eq!(invoice_rows(&w).await.len(), 0);
    assert_eq!(message_states(&w).await, vec!["failed"]);
    assert_eq!(w.count("intake", &format!("{}_failed", w.tag)).await.unwrap(), 1);
    assert_eq!(w.mailbox_now("accounts").await.unwrap().len(), 0, "nothing stored, nothing confirmed");
    w.drop_database().await;
}

#[tokio::test]
async fn a_corrupt_pdf_gets_a_reply_the_supplier_can_act_on() {
    let w = TestWorld::new().await;
    let mut pdf = SampleInvoice::basic("X-1").render_pdf();
    pdf.truncate(200);
    let mail = MailBuilder::new(&w, "Factura").attach("factura.pdf", "application/pdf", pdf);
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(reply.text.contains("factura.pdf: El archivo está dañado"), "{}", reply.text);
    let code: Option<String> =
        sqlx::query_scalar("SELECT error_code FROM attachments").fetch_one(&w.pool).await.unwrap();
    assert_eq!(code.as_deref(), Some("unreadable"));
    assert_eq!(message_states(&w).await, vec!["failed"]);
    // The original is kept, byte for byte.
    let raw: Vec<u8> = sqlx::query_scalar("SELECT raw FROM messages").fetch_one(&w.pool).await.unwrap();
    assert_eq!(raw.len(), w.fetch_all("intake", &format!("{}_failed", w.tag)).await.unwrap()[0].len());
    w.drop_database().await;
}

#[tokio::test]
async fn a_resent_duplicate_is_stored_once_and_answered_as_a_duplicate() {
    let w = TestWorld::new().await;
    let pdf = SampleInvoice::basic("DUP-1").render_pdf();
    let first = MailBuilder::new(&w, "Factura DUP-1").attach("factura.pdf", "application/pdf", pdf.clone());
    w.send(&first.build()).await.unwrap();
    w.run_once().await.unwrap();
    // The supplier sends it again, in a new mail, and their client also re-sends the very first message.
    let second = MailBuilder::new(&w, "Factura DUP-1 (reenvío)").attach("factura.pdf", "application/pdf", pdf);
    w.send(&second.build()).await.unwrap();
    w.send(&first.build()).await.unwrap();
    w.run_once().await.unwrap();

    assert_eq!(invoice_rows(&w).await.len(), 1, "the same document never makes a second row");
    let replies = w.mailbox("supplier", 3).await.unwrap();
    let duplicates = replies.iter().filter(|r| r.text.contains("duplicado")).count();
    assert_eq!(duplicates, 2, "{:#?}", replies.iter().map(|r| &r.text).collect::<Vec<_>>());
    assert!(
        replies.iter().any(|r| r.text.contains("Este mensaje ya lo recibimos")),
        "the resent message is recognised"
    );
    assert_eq!(w.mailbox("accounts", 1).await.unwrap().len(), 1, "one confirmation only");
    w.drop_database().await;
}

#[tokio::test]
async fn a_forwarded_mail_that_carries_the_invoice_is_read() {
    let w = TestWorld::new().await;
    let inner = MailBuilder::new(&w, "Factura FW-9")
        .attach("factura-fw9.pdf", "application/octet-stream", SampleInvoice::basic("FW-9").render_pdf())
        .build();
    let outer = MailBuilder::new(&w, "Fwd: Factura FW-9")
        .body("Te reenvío la factura que nos mandó el proveedor.\n")
        .attach("Factura FW-9.eml", "message/rfc822", inner);
    w.send(&outer.build()).await.unwrap();
    w.run_once().await.unwrap();

    let rows = invoice_rows(&w).await;
    assert_eq!(rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(), vec![Some("FW-9".to_string())]);
    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(reply.text.contains("factura-fw9.pdf: registrada."), "{}", reply.text);
    w.drop_database().await;
}

/// A minimal TNEF stream as Outlook writes it: one attachment with a title and data.
fn winmail_dat(filename: &str, data: &[u8]) -> Vec<u8> {
    fn attr(level: u8, id: u32, data: &[u8]) -> Vec<u8> {
        let mut v = vec![level];
        v.extend(id.to_le_bytes());
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(data);
        let sum = data.iter().fold(0u16, |a, &b| a.wrapping_add(u16::from(b)));
        v.extend(sum.to_le_bytes());
        v
    }
    let mut v = 0x223E_9F78u32.to_le_bytes().to_vec();
    v.extend(0x0001u16.to_le_bytes());
    v.extend(attr(1, 0x0009_8000, &1u32.to_le_bytes()));
    v.extend(attr(2, 0x0006_9002, &[0; 14]));
    let mut title = filename.as_bytes().to_vec();
    title.push(0);
    v.extend(attr(2, 0x0001_8010, &title));
    v.extend(attr(2, 0x0006_800F, data));
    v
}

#[tokio::test]
async fn an_invoice_inside_winmail_dat_is_read() {
    let w = TestWorld::new().await;
    let tnef = winmail_dat("FACTURA.PDF", &SampleInvoice::basic("TNEF-3").render_pdf());
    let mail = MailBuilder::new(&w, "Factura").attach("winmail.dat", "application/ms-tnef", tnef);
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    assert_eq!(
        invoice_rows(&w).await.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        vec![Some("TNEF-3".to_string())]
    );
    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(reply.text.contains("FACTURA.PDF: registrada."), "{}", reply.text);
    w.drop_database().await;
}

#[tokio::test]
async fn auto_replies_and_bounces_get_no_reply() {
    let w = TestWorld::new().await;
    let auto = MailBuilder::new(&w, "Fuera de la oficina")
        .header("Auto-Submitted", "auto-replied")
        .body("Estoy fuera de la oficina hasta el lunes.\n");
    w.send(&auto.build()).await.unwrap();
    let mut bounce = MailBuilder::new(&w, "Undelivered Mail Returned to Sender").body("This is the mail system.\n");
    bounce.from = format!("MAILER-DAEMON@{}", common::DOMAIN);
    w.send(&bounce.build()).await.unwrap();
    // A list mail too: replying to lists is how loops start.
    let list =
        MailBuilder::new(&w, "Boletín").header("List-Id", "<news.supplier.example.test>").header("Precedence", "list");
    w.send(&list.build()).await.unwrap();
    w.run_once().await.unwrap();

    let queued = w.scalar_i64("SELECT count(*) FROM outbox").await;
    assert_eq!(queued, 0, "nothing may even be queued for robots");
    assert_eq!(message_states(&w).await, vec!["ignored", "ignored", "ignored"]);

    // A person's mail sent afterwards is answered; when its reply is there, nothing else is.
    let person = MailBuilder::new(&w, "Pregunta").body("Hola, ¿recibisteis la factura?\n");
    w.send(&person.build()).await.unwrap();
    w.run_once().await.unwrap();
    let replies = w.mailbox("supplier", 1).await.unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].subject, "Re: Pregunta");
    w.drop_database().await;
}

#[tokio::test]
async fn the_worker_never_answers_its_own_mail() {
    let w = TestWorld::new().await;
    let mut own = MailBuilder::new(&w, "Re: Factura").body("Esto es un mensaje automático.\n");
    own.from = w.intake();
    w.send(&own.build()).await.unwrap();
    w.run_once().await.unwrap();
    assert_eq!(w.scalar_i64("SELECT count(*) FROM outbox").await, 0);
    w.drop_database().await;
}
