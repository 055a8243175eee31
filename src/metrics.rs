//! Prometheus metrics and a health check, served on `[metrics] listen` (loopback by default).
//!
//! `/metrics` is the text exposition format (prometheus-client, the Prometheus project's own Rust client);
//! `/healthz` answers 200 while the mail loop has touched IMAP recently and 503 otherwise, so a load balancer
//! or a systemd `ExecStartPost` probe can tell a stuck worker from a live one. A process that does not hold the
//! IMAP session (another one does) counts the holder's last contact, read from Postgres every few seconds: it is
//! healthy while Postgres answers and the mailbox is being watched by someone.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

/// Every metric the service exports. One instance per process (`Metrics::global`).
pub struct Metrics {
    registry: Registry,
    /// Messages that reached a final state, by state (processed, failed, ignored, quarantined).
    pub messages: Family<StateLabel, Counter>,
    /// Documents read, by outcome (ok or the error code).
    pub documents: Family<OutcomeLabel, Counter>,
    /// Mails delivered from the outbox, by outcome (sent, retry, failed).
    pub deliveries: Family<OutcomeLabel, Counter>,
    /// Messages waiting in Postgres for extraction.
    pub queue_depth: Gauge,
    /// Replies and confirmations waiting in the outbox.
    pub outbox_backlog: Gauge,
    /// 1 while an IMAP session is logged in, 0 otherwise.
    pub imap_connected: Gauge,
    /// 1 while this process holds the mailbox's IMAP lock (exactly one process does), 0 otherwise.
    pub imap_owner: Gauge,
    /// From fetch to the outcome committed, per message.
    pub message_seconds: Histogram,
    /// One document in the sandbox, spawn and teardown included.
    pub sandbox_seconds: Histogram,
    /// Unix time of the last successful IMAP round trip.
    last_imap_contact: AtomicI64,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("invoice_intake");
        let messages = Family::<StateLabel, Counter>::default();
        let documents = Family::<OutcomeLabel, Counter>::default();
        let deliveries = Family::<OutcomeLabel, Counter>::default();
        let queue_depth = Gauge::default();
        let outbox_backlog = Gauge::default();
        let imap_connected = Gauge::default();
        let imap_owner = Gauge::default();
        // 5 ms .. ~40 s: a text PDF takes tens of milliseconds, a scanned multi-page one seconds.
        let message_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let sandbox_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register("messages", "Messages that reached a final state", messages.clone());
        registry.register("documents", "Documents read by the extractor", documents.clone());
        registry.register("deliveries", "Outbox deliveries", deliveries.clone());
        registry.register("queue_depth", "Messages waiting for extraction", queue_depth.clone());
        registry.register("outbox_backlog", "Mails waiting in the outbox", outbox_backlog.clone());
        registry.register("imap_connected", "1 while logged in to IMAP", imap_connected.clone());
        registry.register("imap_owner", "1 while this process holds the IMAP session", imap_owner.clone());
        registry.register("message_seconds", "Time from fetch to committed outcome", message_seconds.clone());
        registry.register("sandbox_seconds", "Time of one document in the sandbox", sandbox_seconds.clone());
        Metrics {
            registry,
            messages,
            documents,
            deliveries,
            queue_depth,
            outbox_backlog,
            imap_connected,
            imap_owner,
            message_seconds,
            sandbox_seconds,
            last_imap_contact: AtomicI64::new(0),
        }
    }

    pub fn global() -> &'static Metrics {
        static METRICS: OnceLock<Metrics> = OnceLock::new();
        METRICS.get_or_init(Metrics::new)
    }

    pub fn message_done(&self, state: &str) {
        self.messages.get_or_create(&StateLabel { state: state.to_string() }).inc();
    }

    pub fn document(&self, outcome: &str) {
        self.documents.get_or_create(&OutcomeLabel { outcome: outcome.to_string() }).inc();
    }

    pub fn delivery(&self, outcome: &str) {
        self.deliveries.get_or_create(&OutcomeLabel { outcome: outcome.to_string() }).inc();
    }

    pub fn imap_contact(&self) {
        self.imap_contact_at(chrono::Utc::now().timestamp());
    }

    /// The IMAP session's holder (another process, perhaps) reached IMAP at this Unix time, as Postgres says.
    pub fn imap_contact_at(&self, unix: i64) {
        self.last_imap_contact.fetch_max(unix, Ordering::Relaxed);
    }

    /// Healthy while IMAP was reached within `within`: by this process if it holds the session, else by the
    /// holder, as seen in Postgres (so a worker that only extracts is healthy while Postgres answers and someone
    /// talks to IMAP).
    pub fn healthy(&self, within: Duration) -> bool {
        let last = self.last_imap_contact.load(Ordering::Relaxed);
        last > 0 && chrono::Utc::now().timestamp() - last <= within.as_secs() as i64
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Serve `/metrics` and `/healthz` on `listen` until `cancel` fires. `stale_after` is how long without an IMAP
/// round trip counts as unhealthy (a few poll intervals).
pub async fn serve(
    listen: std::net::SocketAddr,
    stale_after: Duration,
    cancel: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    let metrics: &'static Metrics = Metrics::global();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                    metrics.render(),
                )
            }),
        )
        .route(
            "/healthz",
            get(move || async move {
                if metrics.healthy(stale_after) {
                    (StatusCode::OK, "ok\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "no IMAP contact recently\n")
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(%listen, "metrics on /metrics and /healthz");
    axum::serve(listener, app).with_graceful_shutdown(async move { cancel.cancelled().await }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_up_in_the_exposition() {
        let m = Metrics::new();
        m.message_done("processed");
        m.message_done("processed");
        m.document("ok");
        m.sandbox_seconds.observe(0.03);
        let text = m.render();
        assert!(text.contains("invoice_intake_messages_total{state=\"processed\"} 2"), "{text}");
        assert!(text.contains("invoice_intake_documents_total{outcome=\"ok\"} 1"), "{text}");
        assert!(text.contains("invoice_intake_sandbox_seconds_count 1"), "{text}");
    }

    #[test]
    fn health_follows_the_last_imap_contact() {
        let m = Metrics::new();
        assert!(!m.healthy(Duration::from_secs(60)));
        m.imap_contact();
        assert!(m.healthy(Duration::from_secs(60)));
    }
}
