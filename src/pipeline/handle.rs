//! The extraction slots: claim a due message, read it inside its transaction, and retry or quarantine it when
//! its handling fails.

use anyhow::{Context, Result};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::extract::{ErrorCode, Extraction};
use crate::mail::auth;
use crate::mail::mime::{self, Incoming};
use crate::mail::reply::MessageError;
use crate::metrics::Metrics;
use crate::store::{self, MessageState, StoredMessage};

use super::{is_outage, jitter, panic_message, retry_delay, App, Round, Step, Wake, MAX_ATTEMPTS, MAX_BACKOFF};

impl App {
    /// Claim and handle messages with `concurrency` slots until cancellation; each finishes the one in hand.
    pub(super) async fn extraction_task(&self, cancel: &CancellationToken, wake: &Wake) {
        let slots = self.concurrency();
        futures::future::join_all((0..slots).map(|_| self.extraction_slot(cancel, wake))).await;
    }

    pub(super) async fn extraction_slot(&self, cancel: &CancellationToken, wake: &Wake) {
        let poll = Duration::from_secs(self.config.imap.poll_interval_secs);
        let mut backoff = Duration::from_secs(1);
        while !cancel.is_cancelled() {
            // Registered before looking, so news that arrives while we look is not missed.
            let news = wake.messages.notified();
            tokio::pin!(news);
            news.as_mut().enable();
            let wait = match self.process_next().await {
                Ok(Some(step)) => {
                    backoff = Duration::from_secs(1);
                    if matches!(step, Step::Done(_)) {
                        wake.outbox.notify_one();
                        wake.archive.notify_one();
                    }
                    continue;
                }
                Ok(None) => self.until_next_retry(poll).await,
                Err(e) => {
                    warn!(
                        error = format!("{e:#}"),
                        retry_in_secs = backoff.as_secs(),
                        "extraction paused by an outage"
                    );
                    let wait = jitter(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    Ok(wait)
                }
            };
            tokio::select! {
                _ = news => {}
                _ = tokio::time::sleep(wait.unwrap_or(poll)) => {}
                _ = cancel.cancelled() => {}
            }
        }
    }

    /// How long an idle slot may sleep: until the next retry falls due, at most the poll interval, at least a
    /// second (new mail and requeued messages wake it sooner).
    pub(super) async fn until_next_retry(&self, poll: Duration) -> Result<Duration> {
        let due = match store::next_message_retry(&self.pool).await? {
            Some(at) => (at - chrono::Utc::now()).to_std().unwrap_or_default(),
            None => poll,
        };
        Ok(due.clamp(Duration::from_secs(1), poll.max(Duration::from_secs(1))))
    }

    /// Handle every message waiting in Postgres whose attempt is due. Returns how many reached a final state.
    pub async fn process_pending(&self) -> Result<usize> {
        Ok(self.process_round().await?.done)
    }

    /// Handle every due message nobody else holds, `concurrency` at a time, until none is left.
    pub(super) async fn process_round(&self) -> Result<Round> {
        let slot = || async {
            let mut round = Round::default();
            while let Some(step) = self.process_next().await? {
                match step {
                    Step::Done(_) => round.done += 1,
                    Step::Deferred => round.deferred += 1,
                }
            }
            Ok::<_, anyhow::Error>(round)
        };
        let rounds = futures::future::join_all((0..self.concurrency()).map(|_| slot())).await;
        let mut total = Round::default();
        for r in rounds {
            let r = r?;
            total.done += r.done;
            total.deferred += r.deferred;
        }
        Ok(total)
    }

    /// Claim the oldest due message nobody holds and handle it inside one transaction, which holds the message's
    /// lock from the first read to the commit of its outcome. `None` when nothing is due. Outages are returned as
    /// errors; anything else that goes wrong is this message's failure, retried and then quarantined
    /// (`message_failed`).
    pub(super) async fn process_next(&self) -> Result<Option<Step>> {
        let mut tx = self.pool.begin().await?;
        let Some(mut m) = store::claim_message(&mut tx).await? else { return Ok(None) };
        let id = m.id;
        m.attempts = store::begin_attempt(&self.pool, id).await?;
        let span = info_span!(
            "message",
            id = m.id,
            uid = m.uid,
            attempt = m.attempts,
            message_id = m.message_id.as_deref().unwrap_or("")
        );
        async move {
            if m.attempts > MAX_ATTEMPTS {
                let reason = format!(
                    "handling this message was interrupted {} times (the worker stopped, or its outcome could not be \
                     stored); quarantined instead of trying again",
                    m.attempts - 1
                );
                warn!(reason = reason.as_str(), "quarantined");
                self.quarantine(&mut tx, m.id, &reason).await?;
                tx.commit().await?;
                return Ok(self.finished(&m, MessageState::Quarantined));
            }
            if let Some((first, target)) = store::handled_copy(&mut tx, &m).await? {
                info!(first, "a copy of a message already handled (new UIDVALIDITY); settled without a reply");
                store::settle_copy(&mut tx, m.id, first, target.as_deref()).await?;
                tx.commit().await?;
                return Ok(self.finished(&m, MessageState::Ignored));
            }
            let handled = AssertUnwindSafe(self.handle(&mut tx, &m)).catch_unwind().await;
            let failure = match handled {
                Ok(Ok(step)) => {
                    tx.commit().await.context("committing the message outcome")?;
                    return Ok(match step {
                        Step::Done(state) => self.finished(&m, state),
                        other => other,
                    });
                }
                Ok(Err(e)) if is_outage(&e) => return Err(e),
                Ok(Err(e)) => format!("{e:#}"),
                Err(panic) => format!("internal error: {}", panic_message(panic.as_ref())),
            };
            drop(tx);
            self.message_failed(&m, &failure).await
        }
        .instrument(span)
        .await
        .map(Some)
    }

    /// A message's handling failed for a reason of its own (not an outage): try again later, or after the last
    /// attempt quarantine it with the reason.
    pub(super) async fn message_failed(&self, m: &StoredMessage, error: &str) -> Result<Step> {
        let mut tx = self.pool.begin().await?;
        let step = if m.attempts < MAX_ATTEMPTS {
            let delay = retry_delay(m.attempts);
            warn!(error, retry_in_secs = delay.as_secs(), "handling the message failed; will try again");
            let reason = format!("attempt {} failed: {error}", m.attempts);
            store::release_message(&mut tx, m.id, &reason, delay).await?;
            Step::Deferred
        } else {
            warn!(error, "handling the message failed on its last attempt; quarantined");
            let reason = format!("could not be handled after {} attempts: {error}", m.attempts);
            self.quarantine(&mut tx, m.id, &reason).await?;
            Step::Done(MessageState::Quarantined)
        };
        tx.commit().await?;
        Ok(match step {
            Step::Done(state) => self.finished(m, state),
            other => other,
        })
    }

    /// A message's final state is committed: count it, and how long it took from fetch to here.
    pub(super) fn finished(&self, m: &StoredMessage, state: MessageState) -> Step {
        let metrics = Metrics::global();
        metrics.message_done(state.as_str());
        let took = (chrono::Utc::now() - m.received_at).to_std().unwrap_or_default();
        metrics.message_seconds.observe(took.as_secs_f64());
        Step::Done(state)
    }

    /// Read one locked message and record its outcome in `tx` (committed by the caller).
    pub(super) async fn handle(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        m: &StoredMessage,
    ) -> Result<Step> {
        let own = &self.config.smtp.from;
        let incoming = mime::parse(&m.raw, own, self.config.limits.max_attachments);
        if !m.operator_release {
            let from = incoming.from.as_deref().unwrap_or("");
            if let auth::Verdict::Untrusted { reason } = auth::judge(&m.raw, from, &self.config.security.policy()) {
                warn!(reason = reason.as_str(), "sender not authenticated; quarantined without a reply");
                self.quarantine_untrusted(tx, m, &incoming, &reason).await?;
                return Ok(Step::Done(MessageState::Quarantined));
            }
        }
        if let Some(state) = self.accountants_mail(tx, m, &incoming).await? {
            return Ok(Step::Done(state));
        }
        let too_large = (m.size_bytes > self.config.limits.max_message_bytes)
            .then_some(MessageError::TooLarge { bytes: m.size_bytes, limit: self.config.limits.max_message_bytes });

        let mut extracted: Vec<(mime::Document, Vec<Extraction>)> = Vec::new();
        // Sandbox failures that no later attempt can cure (see `ExtractError::permanent`).
        let mut permanent: Vec<String> = Vec::new();
        let budget = self.config.sandbox.message_budget();
        let started = Instant::now();
        let mut out_of_time = false;
        // Where corrections taught us this sender's suppliers print their fields (`extract::memory`).
        let hints = match (&too_large, incoming.from.as_deref()) {
            (None, Some(from)) if !incoming.documents.is_empty() => crate::ledger::hints_for(&self.pool, from).await?,
            _ => Vec::new(),
        };
        if too_large.is_none() {
            for doc in &incoming.documents {
                if self.stopping.is_cancelled() {
                    info!(
                        read = extracted.len(),
                        left = incoming.documents.len() - extracted.len(),
                        "stopping; the message is put back"
                    );
                    store::put_back(tx, m.id).await?;
                    return Ok(Step::Deferred);
                }
                if out_of_time || started.elapsed() >= budget {
                    out_of_time = true;
                    let why =
                        format!("not read: the message's documents took more than {} s together", budget.as_secs());
                    extracted
                        .push((doc.clone(), vec![Extraction::failed(doc.filename.as_str(), ErrorCode::Timeout, why)]));
                    continue;
                }
                // A damaged image header is refused here, in microseconds, instead of holding a jail until its
                // timeout.
                if let Err(why) = crate::extract::precheck::check(&doc.bytes) {
                    info!(file = doc.filename.as_str(), why = why.as_str(), "image refused before the sandbox");
                    Metrics::global().document(ErrorCode::Unreadable.as_str());
                    extracted.push((
                        doc.clone(),
                        vec![Extraction::failed(doc.filename.as_str(), ErrorCode::Unreadable, why)],
                    ));
                    continue;
                }
                let span = info_span!(
                    "attachment",
                    file = doc.filename.as_str(),
                    kind = doc.kind.as_str(),
                    bytes = doc.bytes.len()
                );
                let started = Instant::now();
                let results = self
                    .sandbox
                    .extract_with_memory(&doc.filename, &doc.bytes, hints.clone(), Vec::new())
                    .instrument(span)
                    .await;
                Metrics::global().sandbox_seconds.observe(started.elapsed().as_secs_f64());
                for r in &results {
                    Metrics::global().document(r.error.as_ref().map_or("ok", |e| e.code.as_str()));
                    if let Some(e) = r.error.as_ref().filter(|e| e.permanent) {
                        permanent.push(format!("{}: {} ({})", r.file, e.code.as_str(), e.message));
                    }
                }
                // Results come out of the sandbox, from documents anyone can write: validated before anything
                // stores or shows them.
                let today = chrono::Utc::now().date_naive();
                let results = results.into_iter().map(|e| crate::extract::validate::validate(e, today));
                extracted.push((doc.clone(), results.map(store::clean_extraction).collect()));
            }
        }
        let transient: Vec<String> = extracted
            .iter()
            .flat_map(|(_, r)| r)
            .filter_map(|e| e.error.as_ref().map(|er| (e, er)))
            .filter(|(_, er)| matches!(er.code, ErrorCode::SandboxFailure | ErrorCode::Timeout))
            .map(|(e, er)| format!("{}: {} ({})", e.file, er.code.as_str(), er.message))
            .collect();
        // A message that used up its time budget would use it up again: a person looks instead.
        if !transient.is_empty() && permanent.is_empty() && m.attempts < MAX_ATTEMPTS && !out_of_time {
            let delay = retry_delay(m.attempts);
            let why = transient.join("; ");
            warn!(
                why = why.as_str(),
                retry_in_secs = delay.as_secs(),
                "extraction crashed or timed out; will try again"
            );
            store::release_message(tx, m.id, &format!("attempt {} failed: {why}", m.attempts), delay).await?;
            return Ok(Step::Deferred);
        }
        let poisoned = if !permanent.is_empty() {
            Some(format!("the sandbox cannot read documents, retrying will not help: {}", permanent.join("; ")))
        } else {
            (!transient.is_empty()).then(|| {
                if out_of_time {
                    format!(
                        "the documents took more than the message's time budget ({} s): {}",
                        budget.as_secs(),
                        transient.join("; ")
                    )
                } else {
                    format!("extraction kept failing after {} attempts: {}", m.attempts, transient.join("; "))
                }
            })
        };
        let state = self.finalize(tx, m, &incoming, extracted, too_large, poisoned).await?;
        Ok(Step::Done(state))
    }

    /// A mail that fails the sender policy: no reply (backscatter, and a spoofer's Reply-To must never get the
    /// data), nothing extracted or stored, the message quarantined, and the accountants told in the next digest.
    pub(super) async fn quarantine_untrusted(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        m: &StoredMessage,
        incoming: &Incoming,
        reason: &str,
    ) -> Result<()> {
        // Reported in the next alert digest (`send_alert_digest`), not in a mail of its own.
        if !self.config.notify.accountants.is_empty() {
            store::mark_alert_pending(tx, m.id).await?;
        }
        // A Reply-To other than the From is where a spoofer wants the answer: the operator should see it.
        let reply_to = incoming
            .reply_to
            .as_deref()
            .filter(|r| Some(*r) != incoming.from.as_deref())
            .map(|r| format!("; Reply-To: {r}"))
            .unwrap_or_default();
        self.quarantine(tx, m.id, &format!("sender not authenticated: {reason}{reply_to}")).await
    }

    /// Put message `id` aside for an operator, with the reason `status` shows; its mail goes to the failed folder.
    pub(super) async fn quarantine(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        id: i64,
        reason: &str,
    ) -> Result<()> {
        store::finish_message(tx, id, MessageState::Quarantined, Some(reason), Some(&self.config.imap.failed_mailbox))
            .await
    }
}
