//! The mails people read, end to end on real servers: a German supplier is answered in German, the accountants'
//! confirmation carries the original document byte for byte, a 50-invoice Facturae batch gives one confirmation,
//! a damaged PDF reaches the accountants in the alert digest, and `smtp.from` may carry a display name.

use crate::common;

use common::pdf::SampleInvoice;
use common::{corpus, MailBuilder, TestWorld};
use mail_parser::{MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The attachments of a received mail: file name and bytes.
fn attachments(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let m = MessageParser::default().parse(raw).expect("a parsable mail");
    m.attachments().map(|a| (a.attachment_name().unwrap_or("").to_string(), a.contents().to_vec())).collect()
}

fn header(raw: &[u8], name: &str) -> Option<String> {
    let m = MessageParser::default().parse(raw).expect("a parsable mail");
    m.header_raw(name).map(|v| v.trim().to_string())
}

#[tokio::test]
async fn a_german_mail_gets_a_german_reply() {
    let w = TestWorld::new().await;
    let inv = SampleInvoice::basic("DE-2025-7");
    let mail = MailBuilder::new(&w, "Rechnung März")
        .body("Sehr geehrte Damen und Herren,\n\nanbei die Rechnung für März.\n\nMit freundlichen Grüßen\n")
        .attach("rechnung.pdf", "application/pdf", inv.render_pdf());
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert_eq!(reply.subject, "Re: Rechnung März");
    assert!(reply.text.starts_with("Guten Tag,"), "{}", reply.text);
    assert!(reply.text.contains("rechnung.pdf: erfasst"), "{}", reply.text);
    assert!(common::shows(&reply.text, "Nummer", "DE-2025-7"), "{}", reply.text);
    assert!(reply.text.contains("Dies ist eine automatische Nachricht des Rechnungspostfachs."), "{}", reply.text);
    for spanish in ["Hola", "registrada", "Gracias", "Factura"] {
        assert!(!reply.text.contains(spanish), "Spanish {spanish:?} in a German reply: {}", reply.text);
    }
    assert_eq!(header(&reply.raw, "Content-Language").as_deref(), Some("de"));
    assert!(reply.html.contains("<html lang=\"de\">"), "{}", reply.html);
    w.drop_database().await;
}

#[tokio::test]
async fn the_confirmation_carries_the_original_document_and_answers_go_to_the_intake() {
    let w = TestWorld::new().await;
    let pdf = SampleInvoice::basic("FN-2025-0042").render_pdf();
    let mail = MailBuilder::new(&w, "Factura octubre").attach("factura-0042.pdf", "application/pdf", pdf.clone());
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    let c = &w.mailbox("accounts", 1).await.unwrap()[0];
    assert!(c.subject.contains("FN-2025-0042") && c.subject.contains("Factura registrada"), "{}", c.subject);
    let stored: String = sqlx::query_scalar("SELECT attachment_sha256 FROM invoices").fetch_one(&w.pool).await.unwrap();
    let attached = attachments(&c.raw);
    assert_eq!(attached.len(), 1, "{:?}", attached.iter().map(|a| &a.0).collect::<Vec<_>>());
    assert_eq!(attached[0].0, "factura-0042.pdf");
    assert_eq!(sha256(&attached[0].1), sha256(&pdf), "the attachment is the document the supplier sent");
    assert_eq!(sha256(&attached[0].1), stored, "and the one the invoice row names");
    assert!(c.text.contains("El documento original va adjunto: factura-0042.pdf."), "{}", c.text);
    assert!(c.html.contains("<table"), "an HTML table");
    let reply_to = header(&c.raw, "Reply-To").unwrap_or_default();
    assert!(reply_to.contains(&w.config.imap.username), "Reply-To {reply_to:?}");
    w.drop_database().await;
}

/// A Facturae file holding `n` invoices of the same supplier, numbered B-001…, from the corpus's one.
fn facturae_batch(n: usize) -> Vec<u8> {
    let xml = std::fs::read_to_string(corpus("einvoice/facturae/gobl.facturae/out/invoice-vat-irpf.xml")).unwrap();
    let start = xml.find("<Invoice>").expect("an Invoice element");
    let end = xml.find("</Invoice>").expect("its end") + "</Invoice>".len();
    let one = &xml[start..end];
    let invoices: String = (1..=n)
        .map(|i| {
            one.replace(
                "<InvoiceNumber>TEST01002F</InvoiceNumber>",
                &format!("<InvoiceNumber>B-{i:03}</InvoiceNumber>"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let batch = format!("{}{invoices}{}", &xml[..start], &xml[end..]);
    batch.replace("<InvoicesCount>1</InvoicesCount>", &format!("<InvoicesCount>{n}</InvoicesCount>")).into_bytes()
}

#[tokio::test]
async fn a_facturae_batch_of_fifty_invoices_gives_one_confirmation_with_the_original() {
    let w = TestWorld::with_config(|t| {
        t.remove("company");
    })
    .await;
    let xml = facturae_batch(50);
    let mail = MailBuilder::new(&w, "Lote de facturas").attach("lote.xml", "application/xml", xml.clone());
    w.send(&mail.build()).await.unwrap();
    let summary = w.run_once().await.unwrap();

    let stored = w.scalar_i64("SELECT count(*) FROM invoices").await;
    assert_eq!(stored, 50);
    assert_eq!(summary.sent, 2, "one reply and one confirmation: {summary:?}");
    let confirmations = w.mailbox("accounts", 1).await.unwrap();
    assert_eq!(confirmations.len(), 1);
    let c = &confirmations[0];
    assert!(c.subject.contains("50 facturas registradas"), "{}", c.subject);
    for number in ["B-001", "B-025", "B-050"] {
        assert!(c.text.contains(number) && c.html.contains(number), "{number} missing: {}", c.text);
    }
    assert!(c.text.contains("Los documentos originales van adjuntos (1)."), "{}", c.text);
    let attached = attachments(&c.raw);
    assert_eq!(attached.len(), 1, "the one XML, once");
    assert_eq!(attached[0].0, "lote.xml");
    assert_eq!(sha256(&attached[0].1), sha256(&xml));
    w.drop_database().await;
}

#[tokio::test]
async fn a_damaged_pdf_reaches_the_accountants_in_the_alert_digest() {
    let w = TestWorld::new().await;
    let mail =
        MailBuilder::new(&w, "Factura rota").attach("rota.pdf", "application/pdf", b"%PDF-1.7\n%garbage".to_vec());
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    let digest = &w.mailbox("accounts", 1).await.unwrap()[0];
    assert_eq!(digest.subject, "[REVISAR] Mensajes sin factura registrada: 1");
    assert!(digest.text.contains("rota.pdf: archivo dañado"), "{}", digest.text);
    assert!(digest.text.contains(&w.supplier()), "{}", digest.text);
    // The supplier was told what to do.
    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(reply.text.contains("El archivo está dañado"), "{}", reply.text);
    w.drop_database().await;
}

#[tokio::test]
async fn smtp_from_may_carry_a_display_name() {
    let w = TestWorld::with_config(|t| {
        let smtp = t.get_mut("smtp").and_then(|s| s.as_table_mut()).unwrap();
        let from = smtp["from"].as_str().unwrap().to_string();
        smtp.insert("from".into(), format!("\"Facturas Ejemplo S.L.\" <{from}>").into());
    })
    .await;
    let mail =
        MailBuilder::new(&w, "Factura").attach("f.pdf", "application/pdf", SampleInvoice::basic("DN-1").render_pdf());
    w.send(&mail.build()).await.unwrap();
    let summary = w.run_once().await.unwrap();
    assert_eq!(summary.sent, 2, "{summary:?}");
    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    let from = header(&reply.raw, "From").unwrap_or_default();
    assert!(from.contains("Facturas Ejemplo S.L.") && from.contains(&format!("<{}>", w.intake())), "{from}");
    // Our own reply, sent back to the intake, is recognised as ours by its address and not answered.
    w.send(&reply.raw).await.unwrap();
    w.run_once().await.unwrap();
    let state: String =
        sqlx::query_scalar("SELECT reason FROM messages ORDER BY id DESC LIMIT 1").fetch_one(&w.pool).await.unwrap();
    assert!(state.contains("sent by our own address") || state.contains("auto-replied"), "{state}");
    w.drop_database().await;
}
