//! The outbox: send queued mail over SMTP, pause while the server is away, retry what it refused.

use anyhow::Result;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::extract::ErrorCode;
use crate::mail::{render, reply};
use crate::metrics::Metrics;
use crate::store;

use super::{jitter, outbox_delay, App, Wake, MAX_BACKOFF};

/// A mail the server answers with a 4xx is retried (see `outbox_delay`) this many times in all, about a day, then
/// marked failed.
const OUTBOX_MAX_ATTEMPTS: i32 = 30;
/// A mail during whose content the server dropped the connection is tried this many times in all, then failed
/// with the reason: a server that takes other mail but not this one will not take it later either.
const OUTBOX_MAX_REJECTIONS: i32 = 2;
/// While the SMTP server is unreachable, delivery pauses (1 s, doubling, at most 5 minutes) and then probes
/// with one mail. An unreachable server is not held against any mail.
const SMTP_MAX_PAUSE: Duration = Duration::from_secs(300);
/// After the SMTP server accepted a mail, recording that is retried this long: a database outage at that moment
/// must not turn into a second copy of the mail.
const MARK_SENT_PATIENCE: Duration = Duration::from_secs(120);
/// Outbox mails sent at once, at most (see `App::delivery_slots`).
const DELIVERY_SLOTS: usize = 4;

impl App {
    /// Send outbox mail as soon as it is committed, until the slots have drained; then send what they left.
    pub(super) async fn delivery_task(&self, drained: &CancellationToken, wake: &Wake) {
        let poll = Duration::from_secs(self.config.imap.poll_interval_secs);
        let mut backoff = Duration::from_secs(1);
        loop {
            let last = drained.is_cancelled();
            let wait = match self.deliver().await {
                Ok(_) => {
                    backoff = Duration::from_secs(1);
                    self.until_next_delivery(poll).await
                }
                Err(e) => {
                    warn!(error = format!("{e:#}"), retry_in_secs = backoff.as_secs(), "delivery paused by an outage");
                    let wait = jitter(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    Ok(wait)
                }
            };
            if last {
                return;
            }
            tokio::select! {
                _ = wake.outbox.notified() => {}
                _ = tokio::time::sleep(wait.unwrap_or(poll)) => {}
                _ = drained.cancelled() => {}
            }
        }
    }

    /// How long delivery may sleep: until the next mail falls due (or the SMTP pause ends), at most the poll
    /// interval, at least a second (new outbox rows wake it sooner).
    pub(super) async fn until_next_delivery(&self, poll: Duration) -> Result<Duration> {
        let period = Duration::from_secs(self.config.notify.alert_digest_minutes * 60);
        let digest = store::next_alert_digest(&self.pool, period).await?;
        let next = match (store::next_delivery(&self.pool).await?, digest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut due = match next {
            Some(at) => (at - chrono::Utc::now()).to_std().unwrap_or_default(),
            None => poll,
        };
        if let Some(pause) = self.smtp_paused_for() {
            due = due.max(pause);
        }
        Ok(due.clamp(Duration::from_secs(1), poll.max(Duration::from_secs(1))))
    }

    /// Mails sent at once: OpenSMTPD takes a mail in a few milliseconds but commits its queue per mail, so a few
    /// connections in parallel keep up with the extraction. Each holds a database connection while its mail is
    /// sent, so this stays below what the extraction slots leave of `database.max_connections`.
    pub(super) fn delivery_slots(&self) -> usize {
        let connections = self.config.database.max_connections as usize;
        DELIVERY_SLOTS.min(connections.saturating_sub(self.concurrency() + 1)).max(1)
    }

    /// Queue the accountants' digest of quarantined mail and of mail that left no invoice, when some waits and none went out within the period.
    pub(super) async fn send_alert_digest(&self) -> Result<()> {
        const MAX_PER_DIGEST: i64 = 200;
        let period = Duration::from_secs(self.config.notify.alert_digest_minutes * 60);
        let mut tx = self.pool.begin().await?;
        let pending = store::take_pending_alerts(&mut tx, period, MAX_PER_DIGEST).await?;
        if pending.is_empty() || self.config.notify.accountants.is_empty() {
            return Ok(());
        }
        let mut view = render::AlertsView::default();
        for p in &pending {
            let reason = p.reason.clone().unwrap_or_default();
            let sender = p.sender.clone().unwrap_or_else(|| "?".into());
            let subject = p.subject.clone().unwrap_or_default();
            if reason.starts_with("sender not authenticated") {
                view.quarantined.push(render::QuarantinedMail {
                    message_ref: p.id,
                    sender,
                    subject,
                    message_id: p.message_id.clone(),
                    reason,
                });
            } else {
                let (documents, kind) = failure_of(&reason);
                view.failed.push(render::FailedMail {
                    message_ref: p.id,
                    sender,
                    subject,
                    received: None,
                    documents,
                    kind,
                });
            }
        }
        let intake = self.intake_address();
        let to = reply::Addresses {
            from: &self.config.smtp.from,
            to: &self.config.notify.accountants,
            reply_to: Some(&intake),
        };
        let (id, mail) = reply::compose_alert_digest(&to, self.accountants_language(), &view)?;
        store::enqueue_mail(
            &mut tx,
            &store::NewOutboxMail {
                message_ref: pending[0].id,
                kind: "alert",
                mail_message_id: &id,
                envelope_from: &self.config.smtp.from_address(),
                recipients: &self.config.notify.accountants,
                body: &mail.formatted(),
            },
        )
        .await?;
        store::clear_pending_alerts(&mut tx, &pending.iter().map(|p| p.id).collect::<Vec<_>>()).await?;
        tx.commit().await?;
        info!(messages = pending.len(), "alert digest queued");
        Ok(())
    }

    /// Send what the outbox holds, `delivery_slots` at a time. Returns how many were sent.
    pub async fn deliver(&self) -> Result<usize> {
        self.send_alert_digest().await?;
        self.send_daily_digest().await?;
        let slot = || async {
            let mut sent = 0;
            while self.smtp_paused_for().is_none() {
                match self.deliver_next().await? {
                    Some(true) => sent += 1,
                    Some(false) => {}
                    None => break,
                }
            }
            Ok::<_, anyhow::Error>(sent)
        };
        let mut sent = 0;
        for r in futures::future::join_all((0..self.delivery_slots()).map(|_| slot())).await {
            sent += r?;
        }
        Ok(sent)
    }

    /// Claim the oldest due outbox mail nobody is sending and send it; its outcome is recorded in the claim's
    /// own transaction. `None` when nothing is due; otherwise whether it was sent.
    pub(super) async fn deliver_next(&self) -> Result<Option<bool>> {
        // Held while this mail is sent and recorded: a second sender skips it instead of sending it too.
        let mut tx = self.pool.begin().await?;
        let Some(mail) = store::claim_outbox(&mut tx).await? else { return Ok(None) };
        let span = info_span!(
            "deliver",
            outbox_id = mail.id,
            kind = mail.kind.as_str(),
            message_id = mail.mail_message_id.as_str()
        );
        let res = self.mailer.send_raw(&mail.envelope_from, &mail.recipients, &mail.body).instrument(span).await;
        let metrics = Metrics::global();
        match res {
            Ok(()) => {
                self.smtp_reachable();
                let recorded = match store::mark_sent(&mut *tx, mail.id).await {
                    Ok(()) => tx.commit().await.map_err(anyhow::Error::from),
                    Err(e) => Err(e),
                };
                if recorded.is_err() {
                    // The claim's connection failed just now; keep trying on fresh ones.
                    self.record_sent(mail.id).await?;
                }
                metrics.delivery("sent");
                return Ok(Some(true));
            }
            Err(e) if e.is_unreachable() => {
                let pause = self.pause_smtp();
                warn!(outbox_id = mail.id, error = %e, retry_in_secs = pause.as_secs(), "SMTP server unreachable; delivery paused");
                store::note_delivery_error(&mut *tx, mail.id, &e.to_string()).await?;
                metrics.delivery("unreachable");
            }
            Err(e) if e.is_rejected() && mail.attempts + 1 < OUTBOX_MAX_REJECTIONS => {
                self.smtp_reachable();
                let delay = outbox_delay(mail.attempts);
                warn!(outbox_id = mail.id, error = %e, retry_in_secs = delay.as_secs(), "the server refused this mail; will try it once more");
                store::mark_retry(&mut *tx, mail.id, &e.to_string(), delay).await?;
                metrics.delivery("retry");
            }
            Err(e) if e.is_transient() && !e.is_rejected() && mail.attempts + 1 < OUTBOX_MAX_ATTEMPTS => {
                self.smtp_reachable();
                let delay = outbox_delay(mail.attempts);
                warn!(outbox_id = mail.id, error = %e, retry_in_secs = delay.as_secs(), "delivery failed; will retry");
                store::mark_retry(&mut *tx, mail.id, &e.to_string(), delay).await?;
                metrics.delivery("retry");
            }
            Err(e) => {
                self.smtp_reachable();
                warn!(outbox_id = mail.id, error = %e, "delivery failed for good");
                store::mark_undeliverable(&mut *tx, mail.id, &e.to_string()).await?;
                metrics.delivery("failed");
            }
        }
        tx.commit().await?;
        Ok(Some(false))
    }

    /// The server took the mail: record that, and keep trying through a database outage for a while, because
    /// giving up here means sending the mail again after the restart (with the same Message-ID).
    pub(super) async fn record_sent(&self, id: i64) -> Result<()> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(500);
        loop {
            match store::mark_sent(&self.pool, id).await {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() < MARK_SENT_PATIENCE => {
                    warn!(outbox_id = id, error = format!("{e:#}"), "sent, but cannot record it yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e.context("recording a delivered mail as sent")),
            }
        }
    }

    /// How much longer delivery is paused, if it is.
    pub(super) fn smtp_paused_for(&self) -> Option<Duration> {
        let p = self.smtp_pause.lock().expect("smtp pause lock");
        p.until.and_then(|t| t.checked_duration_since(Instant::now())).filter(|d| !d.is_zero())
    }

    pub(super) fn pause_smtp(&self) -> Duration {
        let mut p = self.smtp_pause.lock().expect("smtp pause lock");
        // Parallel senders fail together: the pause grows once per outage step, not once per sender.
        if let Some(left) = p.until.and_then(|t| t.checked_duration_since(Instant::now())) {
            return left;
        }
        let pause = jitter(p.next);
        p.until = Some(Instant::now() + pause);
        p.next = (p.next * 2).min(SMTP_MAX_PAUSE);
        pause
    }

    pub(super) fn smtp_reachable(&self) {
        let mut p = self.smtp_pause.lock().expect("smtp pause lock");
        p.until = None;
        p.next = Duration::from_secs(1);
    }
}

/// What a failed message's reason (as `finalize` writes it) says went wrong: the documents named, and the first
/// error code among them.
pub(super) fn failure_of(reason: &str) -> (Vec<String>, render::FailureKind) {
    if reason.starts_with("too_large:") {
        return (Vec::new(), render::FailureKind::MessageTooLarge);
    }
    let mut documents = Vec::new();
    let mut code = None;
    for part in reason.split("; ") {
        let Some((name, rest)) = part.split_once(": ") else { continue };
        let word = rest.split_whitespace().next().unwrap_or("");
        if let Ok(c) = serde_json::from_value::<ErrorCode>(serde_json::Value::String(word.to_string())) {
            documents.push(name.to_string());
            code.get_or_insert(c);
        }
    }
    match code {
        Some(c) => (documents, render::FailureKind::Document(c)),
        None => (documents, render::FailureKind::NoDocuments),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_reason_names_its_documents_and_first_error() {
        let (docs, kind) = failure_of("a.pdf: unreadable (broken xref); b.pdf: encrypted (password)");
        assert_eq!(docs, ["a.pdf", "b.pdf"]);
        assert_eq!(kind, render::FailureKind::Document(ErrorCode::Unreadable));
        assert_eq!(failure_of("no invoice attached").1, render::FailureKind::NoDocuments);
        assert_eq!(
            failure_of("too_large: the message is 9 bytes; limits.max_message_bytes is 1").1,
            render::FailureKind::MessageTooLarge
        );
    }
}
