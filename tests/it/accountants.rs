//! Mail from the accountants and the daily digest, end to end on real servers: a reply to a confirmation corrects
//! or approves its invoice and gets one answer, never the supplier's; the digest of a day goes out once with two
//! workers running.

use crate::common;

use chrono::{Local, TimeZone, Utc};
use common::pdf::{cif, SampleInvoice};
use common::{cli, stdout, MailBuilder, Received, TestWorld};
use invoice_intake::pipeline::App;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn send_pdf(w: &TestWorld, inv: &SampleInvoice) {
    let mail = MailBuilder::new(w, &format!("Factura {}", inv.number)).attach(
        &format!("{}.pdf", inv.number),
        "application/pdf",
        inv.render_pdf(),
    );
    w.send(&mail.build()).await.unwrap();
}

/// The accountant's answer to `confirmation`, written above the quoted confirmation as a mail client does.
fn reply_to(w: &TestWorld, confirmation: &Received, text: &str, from: &str) -> Vec<u8> {
    reply_mail(w, confirmation, text, from).build()
}

fn reply_mail(w: &TestWorld, confirmation: &Received, text: &str, from: &str) -> MailBuilder {
    let id = confirmation.message_id.clone().unwrap();
    let quoted: String = confirmation.text.lines().map(|l| format!("> {l}\n")).collect();
    let body = format!("{text}\n\nEl 5 dic 2026, a las 9:00, Facturas <{}> escribió:\n{quoted}", w.intake());
    let mut mail = MailBuilder::new(w, &format!("Re: {}", confirmation.subject))
        .header("In-Reply-To", &format!("<{id}>"))
        .header("References", &format!("<{id}>"))
        .body(&body);
    mail.from = format!("Ana Contable <{from}>");
    mail
}

async fn outbox_kinds(w: &TestWorld) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT kind, count(*) FROM outbox GROUP BY kind ORDER BY kind").fetch_all(&w.pool).await.unwrap()
}

#[tokio::test]
async fn an_accountants_reply_corrects_or_approves_the_invoice_and_gets_one_answer() {
    let w = TestWorld::new().await;
    let inv = SampleInvoice::basic("FN-2025-0042");
    send_pdf(&w, &inv).await;
    w.run_once().await.unwrap();
    let registered = w.mailbox("supplier", 1).await.unwrap();
    let confirmation = w.mailbox("accounts", 1).await.unwrap().remove(0);
    let id = w.scalar_i64("SELECT id FROM invoices").await;

    w.send(&reply_to(&w, &confirmation, "total: 512,00", &w.accountants())).await.unwrap();
    w.run_once().await.unwrap();
    let mails = w.mailbox("accounts", 2).await.unwrap();
    let mut answer = mails.iter().find(|m| m.message_id != confirmation.message_id).unwrap().clone();
    answer.text = answer.text.replace("\r\n", "\n");
    println!("{}\n{}", answer.subject, answer.text);
    assert!(answer.subject.starts_with("Re: "), "{}", answer.subject);
    assert_eq!(answer.auto_submitted.as_deref(), Some("auto-replied"));
    let was = inv.total().to_string().replace('.', ",");
    assert!(answer.text.contains(&format!("Cambios aplicados:\n- Total: {was} → 512,00")), "{}", answer.text);
    // 512.00 is not the printed net plus VAT: the checks, run again, say so.
    assert!(answer.text.contains("Sigue pendiente de revisión: la base imponible más el IVA no da el total."));
    assert!(!answer.text.contains("No hemos encontrado"), "{}", answer.text);

    let (total, state): (rust_decimal::Decimal, String) =
        sqlx::query_as("SELECT total_amount, review_state FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert_eq!((total.to_string().as_str(), state.as_str()), ("512.00", "needs_review"));
    let audit: (String, Option<String>, String, String, String) = sqlx::query_as(
        "SELECT field, old_value, new_value, corrected_by, via FROM invoice_corrections WHERE invoice_ref = $1",
    )
    .bind(id)
    .fetch_one(&w.pool)
    .await
    .unwrap();
    let old = inv.total().to_string();
    assert_eq!(audit, ("total_amount".into(), Some(old), "512.00".into(), w.accountants(), "mail".into()));
    // One answer to the accountant; the supplier path answered nobody.
    assert_eq!(outbox_kinds(&w).await, [("answer".into(), 1), ("confirmation".into(), 1), ("reply".into(), 1)]);
    assert_eq!(w.mailbox_now("supplier").await.unwrap().len(), registered.len());
    let reason: String =
        sqlx::query_scalar("SELECT reason FROM messages ORDER BY id DESC LIMIT 1").fetch_one(&w.pool).await.unwrap();
    assert!(reason.starts_with(&format!("from the accountants about invoice {id}: total_amount")), "{reason}");

    // Another reply approves it, with a note; running again answers nothing twice.
    let text = "Aprobar\nEl proveedor confirma el importe por teléfono.";
    w.send(&reply_to(&w, &confirmation, text, &w.accountants())).await.unwrap();
    w.run_once().await.unwrap();
    w.run_once().await.unwrap();
    let mails = w.mailbox("accounts", 3).await.unwrap();
    let second = mails.iter().find(|m| m.text.contains("Factura aprobada.")).expect("the approval's answer");
    assert!(second.text.contains("Su nota se ha guardado en la factura."), "{}", second.text);
    assert_eq!(w.scalar_i64("SELECT count(*) FROM outbox WHERE kind = 'answer'").await, 2);
    let state: String = sqlx::query_scalar("SELECT review_state FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert_eq!(state, "approved");
    let note: String = sqlx::query_scalar("SELECT body FROM invoice_notes").fetch_one(&w.pool).await.unwrap();
    assert_eq!(note, "El proveedor confirma el importe por teléfono.");
    assert_eq!(w.mailbox_now("supplier").await.unwrap().len(), registered.len());
    // What `invoices show` tells the accountants afterwards: the state, the audit trail, the note.
    let show = stdout(&cli(&w, &["invoices", "show", &id.to_string()]));
    let who = w.accountants();
    assert!(show.starts_with(&format!("invoice {id}: approved\n")), "{show}");
    assert!(show.contains(&format!("total_amount by {who} via mail: {} -> 512.00", inv.total())), "{show}");
    assert!(show.contains(&format!("review_state by {who} via mail: needs_review -> approved")), "{show}");
    assert!(show.contains(&format!("{who}: El proveedor confirma el importe por teléfono.")), "{show}");
    w.drop_database().await;
}

#[tokio::test]
async fn a_wrong_value_changes_nothing_and_a_stranger_cannot_correct() {
    let w = TestWorld::new().await;
    send_pdf(&w, &SampleInvoice::basic("FN-2025-0043")).await;
    w.run_once().await.unwrap();
    let confirmation = w.mailbox("accounts", 1).await.unwrap().remove(0);
    let total_before = w.scalar_i64("SELECT (total_amount * 100)::bigint FROM invoices").await;

    let with_pdf = reply_mail(&w, &confirmation, "Gesamtbetrag: zwölf", &w.accountants()).attach(
        "korrigiert.pdf",
        "application/pdf",
        SampleInvoice::basic("FN-2025-0099").render_pdf(),
    );
    w.send(&with_pdf.build()).await.unwrap();
    // Someone else got hold of the confirmation: their lines are a note, not a correction, and nobody answers.
    w.send(&reply_to(&w, &confirmation, "total: 1,00", &w.supplier())).await.unwrap();
    w.run_once().await.unwrap();
    let mails = w.mailbox("accounts", 2).await.unwrap();
    let answer = mails.iter().find(|m| m.message_id != confirmation.message_id).unwrap();
    let lines: Vec<&str> = answer.text.trim().lines().map(str::trim_end).collect();
    assert_eq!(
        lines,
        [
            "Nichts wurde geändert: „zwölf“ ist kein gültiger Wert für Gesamtbetrag.",
            "Die angehängten Dokumente wurden nicht erfasst: bitte senden Sie sie in einer neuen Nachricht, nicht als \
             Antwort."
        ]
    );
    assert_eq!(w.scalar_i64("SELECT count(*) FROM invoices").await, 1, "the attached PDF is not booked");
    assert_eq!(w.scalar_i64("SELECT (total_amount * 100)::bigint FROM invoices").await, total_before);
    assert_eq!(w.scalar_i64("SELECT count(*) FROM invoice_corrections").await, 0);
    let note: String = sqlx::query_scalar("SELECT body FROM invoice_notes").fetch_one(&w.pool).await.unwrap();
    assert_eq!(note, "total: 1,00", "filed as they wrote it, not applied");
    assert_eq!(w.scalar_i64("SELECT count(*) FROM outbox WHERE kind IN ('answer', 'reply')").await, 2);
    w.drop_database().await;
}

#[tokio::test]
async fn an_invoice_the_accountants_forward_is_booked_and_only_they_hear_of_it() {
    let w = TestWorld::new().await;
    let inv = SampleInvoice::basic("FN-2025-0044");
    let mut forwarded = MailBuilder::new(&w, "Fwd: Factura").attach("f.pdf", "application/pdf", inv.render_pdf());
    forwarded.from = format!("Ana Contable <{}>", w.accountants());
    w.send(&forwarded.build()).await.unwrap();
    // A question that names no invoice gets one answer saying how to name it.
    let mut question = MailBuilder::new(&w, "Una pregunta").body("¿Está pagada la factura de Norte?");
    question.from = w.accountants();
    w.send(&question.build()).await.unwrap();
    w.run_once().await.unwrap();

    assert_eq!(w.scalar_i64("SELECT count(*) FROM invoices WHERE invoice_number = 'FN-2025-0044'").await, 1);
    assert_eq!(outbox_kinds(&w).await, [("answer".into(), 1), ("confirmation".into(), 1)]);
    let mails = w.mailbox("accounts", 2).await.unwrap();
    let answer = mails.iter().find(|m| m.subject == "Re: Una pregunta").expect("the answer");
    assert_eq!(answer.text.trim(), "No sabemos a qué factura se refiere: responda a la confirmación de la factura.");
    let reason: String = sqlx::query_scalar("SELECT reason FROM messages WHERE subject = 'Fwd: Factura'")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert!(reason.contains("not answered: it comes from the accountants"), "{reason}");
    w.drop_database().await;
}

/// The CSV attached to a mail, by its file name.
fn attachment(raw: &[u8], name: &str) -> Option<String> {
    let m = mail_parser::MessageParser::default().parse(raw)?;
    let part = m.attachments().find(|a| mail_parser::MimeHeaders::attachment_name(*a) == Some(name))?;
    Some(String::from_utf8_lossy(part.contents()).into_owned())
}

#[tokio::test]
async fn the_daily_digest_is_sent_once_with_two_workers_running() {
    let w = TestWorld::new().await;
    let a = SampleInvoice::basic("FN-2025-0101");
    let b = SampleInvoice::basic("FN-2025-0102");
    let mut foreign = SampleInvoice::with_irpf("P-2025-0031");
    foreign.customer_name = "Hotel Miramar S.A.".into();
    foreign.customer_nif = cif('A', "2345678");
    for inv in [&a, &b, &foreign] {
        send_pdf(&w, inv).await;
    }
    w.send(&MailBuilder::new(&w, "Sin factura").build()).await.unwrap();
    w.run_once().await.unwrap();
    // The three confirmations, and the alert digest naming the mail without an invoice.
    let first = w.mailbox("accounts", 4).await.unwrap();
    assert_eq!(first.iter().filter(|m| m.subject.contains("Factura registrada")).count(), 3, "the three confirmations");
    assert_eq!(first.iter().filter(|m| m.subject.starts_with("[REVISAR] Mensajes sin factura")).count(), 1);

    // Tomorrow at 08:00:30 for both workers: the digest of today is due.
    let today = Local::now().date_naive();
    let tomorrow = today.succ_opt().unwrap().and_hms_opt(8, 0, 30).unwrap();
    let now = Local.from_local_datetime(&tomorrow).earliest().unwrap().with_timezone(&Utc);
    let mut config = w.config.clone();
    config.notify.digest_at = Some("08:00".into());
    let mut workers = Vec::new();
    for _ in 0..2 {
        let mut app = App::build(config.clone()).await.unwrap();
        app.set_clock(Arc::new(move || now));
        workers.push(app);
    }
    let stop = CancellationToken::new();
    let running = futures::future::join_all(workers.iter().map(|app| app.run_until_stopped(stop.clone(), || {})));
    let watch = async {
        let mails = w.mailbox("accounts", 5).await.unwrap();
        stop.cancel();
        mails
    };
    let (results, mails) = tokio::join!(running, watch);
    assert!(results.iter().all(|r| r.is_ok()));
    // Both look again, one after the other and at once: nothing more is queued.
    for app in &workers {
        app.deliver().await.unwrap();
    }
    let (x, y) = tokio::join!(workers[0].deliver(), workers[1].deliver());
    x.unwrap();
    y.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.mailbox_now("accounts").await.unwrap().len(), 5);
    assert_eq!(w.scalar_i64("SELECT count(*) FROM outbox WHERE kind = 'digest'").await, 1);
    assert_eq!(w.scalar_i64("SELECT count(*) FROM daily_digests").await, 1);

    let mut digest = mails.iter().find(|m| m.subject.starts_with("Resumen del")).expect("the digest").clone();
    digest.text = digest.text.replace("\r\n", "\n");
    println!("{}\n{}", digest.subject, digest.text);
    let norte = a.total() + b.total();
    let all = norte + foreign.total();
    assert_eq!(digest.subject, format!("Resumen del {}: {} EUR en facturas (3)", today.format("%d/%m/%Y"), es(all)));
    assert_eq!(digest.auto_submitted.as_deref(), Some("auto-generated"));
    // Per supplier, the biggest first, with its NIF, its count and its total, then the sum.
    let per_supplier = [
        format!("Suministros Norte S.L.  {}         2  {} EUR", a.supplier_nif, es(norte)),
        format!("Laura Gómez Ruiz        {}         1  {} EUR", foreign.supplier_nif, es(foreign.total())),
        format!("Suma                                      3  {} EUR", es(all)),
    ]
    .join("\n");
    assert!(digest.text.contains(&per_supplier), "{}", digest.text);
    // What needs a look comes first, in Spanish: the invoice addressed to another company.
    let review = digest.text.find("Necesitan revisión:").expect("a review section");
    assert!(review < digest.text.find("Facturas recibidas").unwrap(), "{}", digest.text);
    assert!(
        digest.text.contains("  * Laura Gómez Ruiz P-2025-0031: la factura no va dirigida a nuestra empresa"),
        "{}",
        digest.text
    );
    // The mail without an invoice, with its subject and why.
    let failed = digest.text.find("Mensajes sin factura registrada").expect("the failed mail");
    assert!(digest.text[failed..].contains("Sin factura  mensaje sin factura adjunta"), "{}", digest.text);
    assert!(!digest.text.contains("Mensajes en cuarentena"), "nothing was quarantined: {}", digest.text);

    let csv = attachment(&digest.raw, &format!("facturas-{today}.csv")).expect("the day's CSV");
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("id,state,received_at,supplier_name,supplier_tax_id,invoice_number"));
    let mut numbers: Vec<&str> = lines.map(|l| l.split(',').nth(5).unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["FN-2025-0101", "FN-2025-0102", "P-2025-0031"]);
    for app in workers {
        app.pool.close().await;
    }
    w.drop_database().await;
}

/// An amount as a Spanish accountant reads it: `1.064,32`.
fn es(d: rust_decimal::Decimal) -> String {
    let s = format!("{:.2}", d);
    let (int, dec) = s.split_once('.').unwrap();
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push('.');
        }
        grouped.push(c);
    }
    format!("{grouped},{dec}")
}
