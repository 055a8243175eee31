//! `/metrics` and `/healthz` of a real `invoice-intake run`, scraped over HTTP after a real invoice mail went
//! through it: the figures an operator's Prometheus would show.

use crate::common;

use common::pdf::SampleInvoice;
use common::worker::{free_port, http_get, sample, Worker};
use common::{MailBuilder, TestWorld};
use std::time::{Duration, Instant};

/// How long the worker may take to answer one mail before the test gives up (a limit, not a measurement).
const REPLY_WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn metrics_count_a_handled_invoice_and_health_answers() {
    let w = TestWorld::new().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let mut table: toml::Table = toml::from_str(&w.config_toml).unwrap();
    let mut metrics = toml::Table::new();
    metrics.insert("listen".into(), listen.clone().into());
    table.insert("metrics".into(), metrics.into());
    let mut worker = Worker::start_with(&w, &toml::to_string(&table).unwrap(), "metrics");

    let inv = SampleInvoice::basic("MT-0001");
    let mail = MailBuilder::new(&w, "Factura MT-0001").attach("factura-mt.pdf", "application/pdf", inv.render_pdf());
    w.send(&mail.build()).await.unwrap();
    w.wait_for_folder("supplier", &w.tag, 1, REPLY_WAIT).await.unwrap();
    w.wait_for_folder("accounts", &w.tag, 1, REPLY_WAIT).await.unwrap();

    // The reply is in the mailbox; the worker records it as sent right after the server's 250.
    let started = Instant::now();
    let text = loop {
        let (status, text) = http_get(&listen, "/metrics").await.unwrap_or_default();
        let sent = sample(&text, "invoice_intake_deliveries_total{outcome=\"sent\"}").unwrap_or(0.0);
        if status == 200 && sent >= 2.0 {
            break text;
        }
        assert!(started.elapsed() < REPLY_WAIT, "metrics never showed two deliveries:\n{text}\n{}", worker.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sample(&text, "invoice_intake_messages_total{state=\"processed\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "invoice_intake_documents_total{outcome=\"ok\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "invoice_intake_imap_connected"), Some(1.0), "{text}");
    assert!(sample(&text, "invoice_intake_message_seconds_count").unwrap_or(0.0) >= 1.0, "{text}");
    assert!(sample(&text, "invoice_intake_sandbox_seconds_count").unwrap_or(0.0) >= 1.0, "{text}");
    assert_eq!(sample(&text, "invoice_intake_queue_depth"), Some(0.0), "{text}");
    assert!(text.contains("invoice_intake_outbox_backlog"), "{text}");

    let (status, body) = http_get(&listen, "/healthz").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(worker.alive());
    assert_eq!(worker.terminate(), Some(0), "{}", worker.log());
    w.drop_database().await;
}
