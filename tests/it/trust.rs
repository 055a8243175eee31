//! Who may be answered, and what looks like fraud: sender authentication by the receiving MTA's
//! Authentication-Results (RFC 8601, DMARC RFC 7489), and signals raised against a supplier's history.

use crate::common;

use common::pdf::SampleInvoice;
use common::{MailBuilder, TestWorld};

const AUTHSERV: &str = "mx.example.test";

async fn authenticated_world() -> TestWorld {
    TestWorld::with_config(|t| {
        let security = t.entry("security").or_insert(toml::Value::Table(Default::default())).as_table_mut().unwrap();
        security.insert("sender_policy".into(), "authenticated".into());
        security.insert("authserv_id".into(), AUTHSERV.into());
    })
    .await
}

fn invoice_mail(w: &TestWorld, subject: &str, auth_results: Option<&str>) -> MailBuilder {
    let mut m = MailBuilder::new(w, subject).header("Reply-To", "collector@attacker.example.test").attach(
        "factura.pdf",
        "application/pdf",
        SampleInvoice::basic("AUTH-1").render_pdf(),
    );
    if let Some(ar) = auth_results {
        // The receiving MTA prepends its header, so it comes first.
        m.extra_headers.insert(0, ("Authentication-Results".into(), ar.into()));
    }
    m
}

async fn outbox_kinds(w: &TestWorld) -> Vec<String> {
    sqlx::query_scalar("SELECT kind FROM outbox ORDER BY id").fetch_all(&w.pool).await.unwrap()
}

#[tokio::test]
async fn a_mail_failing_dmarc_gets_no_reply_not_even_to_its_reply_to_and_the_accountants_are_alerted() {
    let w = authenticated_world().await;
    let ar = format!("{AUTHSERV}; spf=pass smtp.mailfrom=example.test; dkim=fail header.d=example.test; dmarc=fail header.from=example.test");
    w.send(&invoice_mail(&w, "Factura urgente", Some(&ar)).build()).await.unwrap();
    w.run_once().await.unwrap();

    assert_eq!(outbox_kinds(&w).await, vec!["alert"], "only the accountants' alert is sent");
    let state: (String, String) =
        sqlx::query_as("SELECT state, reason FROM messages").fetch_one(&w.pool).await.unwrap();
    assert_eq!(state.0, "quarantined");
    assert!(state.1.contains("dmarc=fail"), "{}", state.1);
    assert_eq!(
        w.scalar_i64("SELECT count(*) FROM invoices").await,
        0,
        "nothing is recorded from an unauthenticated sender"
    );
    let alert = &w.mailbox("accounts", 1).await.unwrap()[0];
    assert!(alert.subject.contains("Remitente no autenticado"), "{}", alert.subject);
    assert!(alert.text.contains("collector@attacker.example.test"), "the alert shows the Reply-To: {}", alert.text);
    assert!(w.mailbox_now("supplier").await.unwrap().is_empty());
    w.drop_database().await;
}

#[tokio::test]
async fn a_mail_without_authentication_results_is_quarantined_the_same_way() {
    let w = authenticated_world().await;
    // A header from someone else's authserv-id is no better than none: anyone can write one.
    let forged = "mx.attacker.example.test; dmarc=pass header.from=example.test";
    w.send(&invoice_mail(&w, "Factura", Some(forged)).build()).await.unwrap();
    w.send(&invoice_mail(&w, "Factura 2", None).build()).await.unwrap();
    w.run_once().await.unwrap();
    // One digest for both (notify.alert_digest_minutes), not an alert per mail.
    assert_eq!(outbox_kinds(&w).await, vec!["alert"]);
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM messages").fetch_all(&w.pool).await.unwrap();
    assert_eq!(states, vec!["quarantined", "quarantined"]);
    let digest = &w.mailbox("accounts", 1).await.unwrap()[0];
    assert!(digest.subject.contains("2 mensajes"), "{}", digest.subject);
    assert!(digest.text.contains("Factura 2"), "{}", digest.text);

    // More spam within the period waits for the next digest.
    w.send(&invoice_mail(&w, "Factura 3", None).build()).await.unwrap();
    w.run_once().await.unwrap();
    assert_eq!(outbox_kinds(&w).await, vec!["alert"]);
    assert_eq!(w.scalar_i64("SELECT count(*) FROM messages WHERE alert_pending").await, 1);
    w.drop_database().await;
}

#[tokio::test]
async fn a_mail_passing_dmarc_is_answered_and_recorded() {
    let w = authenticated_world().await;
    let ar = format!("{AUTHSERV};\r\n\tdkim=pass (2048-bit key) header.d=example.test header.i=@example.test;\r\n\tdmarc=pass (p=REJECT) header.from=example.test");
    let mut mail = invoice_mail(&w, "Factura", Some(&ar));
    mail.extra_headers.retain(|(k, _)| k != "Reply-To");
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();
    assert_eq!(outbox_kinds(&w).await, vec!["reply", "confirmation"]);
    assert_eq!(w.mailbox("supplier", 1).await.unwrap().len(), 1);
    w.drop_database().await;
}

#[tokio::test]
async fn a_supplier_whose_iban_changes_raises_a_fraud_alert_listed_for_the_operator() {
    let w = TestWorld::new().await;
    let first = SampleInvoice::basic("IBAN-1");
    let mut second = SampleInvoice::basic("IBAN-2");
    second.iban = Some("ES79 2100 0813 6101 2345 6789".into());
    for (subject, inv) in [("Factura 1", &first), ("Factura 2", &second)] {
        let m = MailBuilder::new(&w, subject).attach("factura.pdf", "application/pdf", inv.render_pdf());
        w.send(&m.build()).await.unwrap();
        w.run_once().await.unwrap();
    }
    let confirmations = w.mailbox("accounts", 2).await.unwrap();
    let flagged: Vec<_> = confirmations.iter().filter(|c| c.subject.starts_with("[ALERTA]")).collect();
    assert_eq!(flagged.len(), 1, "{:?}", confirmations.iter().map(|c| &c.subject).collect::<Vec<_>>());
    assert!(flagged[0].subject.contains("IBAN-2"));
    assert!(flagged[0].text.contains("ES79"), "{}", flagged[0].text);
    let signals: serde_json::Value =
        sqlx::query_scalar("SELECT fraud_signals FROM invoices WHERE invoice_number = 'IBAN-2'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(signals[0]["kind"], "iban_changed", "{signals}");

    // The same number again with another total is the second signal.
    let mut reused = SampleInvoice::basic("IBAN-1");
    reused.lines.truncate(1);
    let m = MailBuilder::new(&w, "Factura 1 corregida").attach("factura-b.pdf", "application/pdf", reused.render_pdf());
    w.send(&m.build()).await.unwrap();
    w.run_once().await.unwrap();
    let kinds: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT fraud_signals FROM invoices ORDER BY id").fetch_all(&w.pool).await.unwrap();
    assert_eq!(kinds[2][0]["kind"], "number_reused_with_different_total", "{kinds:?}");
    // What `invoice-intake status` lists under "invoices with fraud signals".
    let flagged = invoice_intake::store::flagged_invoices(&w.pool, 10).await.unwrap();
    assert_eq!(flagged.len(), 2, "{flagged:?}");
    w.drop_database().await;
}
