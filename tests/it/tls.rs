//! TLS to the real servers, with a private CA: implicit TLS and STARTTLS for IMAP (Dovecot) and SMTP (Dovecot
//! submission, relaying to OpenSMTPD), through the whole pipeline; and a certificate we do not trust is refused.

use crate::common;

use common::pdf::SampleInvoice;
use common::{MailBuilder, TestWorld};
use invoice_intake::mail::imap::ImapSession;

fn tls_world(implicit: bool) -> impl FnOnce(&mut toml::Table) {
    move |t: &mut toml::Table| {
        let servers = common::Servers::from_env();
        let (imap_port, smtp_port, mode) = if implicit {
            (servers.imaps_port, servers.smtps_port, "implicit")
        } else {
            (servers.imap_port, servers.submission_port, "starttls")
        };
        let imap = t["imap"].as_table_mut().unwrap();
        imap.insert("host".into(), "localhost".into());
        imap.insert("port".into(), i64::from(imap_port).into());
        imap.insert("tls".into(), mode.into());
        imap.insert("ca_file".into(), servers.tls_ca_file.clone().into());
        let smtp = t["smtp"].as_table_mut().unwrap();
        smtp.insert("host".into(), "localhost".into());
        smtp.insert("port".into(), i64::from(smtp_port).into());
        smtp.insert("tls".into(), mode.into());
        smtp.insert("ca_file".into(), servers.tls_ca_file.clone().into());
        smtp.insert("username".into(), format!("intake@{}", common::DOMAIN).into());
        smtp.insert("password".into(), common::PASSWORD.into());
    }
}

async fn an_invoice_goes_through(w: TestWorld) {
    let mail = MailBuilder::new(&w, "Factura TLS").attach(
        "f.pdf",
        "application/pdf",
        SampleInvoice::basic("TLS-1").render_pdf(),
    );
    w.send(&mail.build()).await.unwrap();
    let summary = w.run_once().await.unwrap();
    assert_eq!((summary.processed, summary.sent), (1, 2), "{summary:?}");
    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(reply.text.contains("Factura nº: TLS-1"), "{}", reply.text);
    assert_eq!(w.mailbox("accounts", 1).await.unwrap().len(), 1);
    w.drop_database().await;
}

#[tokio::test]
async fn the_pipeline_runs_over_implicit_tls_for_imap_and_smtp() {
    an_invoice_goes_through(TestWorld::with_config(tls_world(true)).await).await;
}

#[tokio::test]
async fn the_pipeline_runs_over_starttls_for_imap_and_smtp() {
    an_invoice_goes_through(TestWorld::with_config(tls_world(false)).await).await;
}

#[tokio::test]
async fn a_server_certificate_we_do_not_trust_is_refused() {
    let w = TestWorld::with_config(|t| {
        tls_world(true)(t);
        // No private CA: only the system roots, which never signed our test servers' certificate.
        t["imap"].as_table_mut().unwrap().remove("ca_file");
    })
    .await;
    let err = match ImapSession::connect(&w.config.imap).await {
        Ok(_) => panic!("connected to a server whose certificate no trusted CA signed"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    w.drop_database().await;
}
