//! The loop that moves work along the arrows:
//!
//! ```text
//! IMAP ──fetch──▶ messages ──split + sandbox──▶ attachments, invoices, outbox (one transaction)
//!   ▲                                                     │
//!   └────────── move to Processed / Failed ◀── deliver ◀──┘
//! ```
//! Every arrow starts from a durable state, so a crash anywhere resumes from the last commit: a message is
//! moved out of the inbox only after its results and its reply are stored, and the reply is sent from the
//! outbox, never directly.

use anyhow::{Context, Result};
use futures::StreamExt;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::config::{Config, Language};
use crate::extract::{ErrorCode, Extraction};
use crate::fraud;
use crate::mail::auth;
use crate::mail::imap::{ImapSession, Woken};
use crate::mail::mime::{self, Incoming};
use crate::mail::reply::{self, MessageError, Outcome, ReplyContent, Thread};
use crate::mail::smtp::Mailer;
use crate::sandbox::Sandbox;
use crate::store::{self, MessageState, StoredMessage};

/// A message whose extraction crashes or hangs this many times is quarantined, so it never blocks the inbox.
pub const MAX_ATTEMPTS: i32 = 3;
/// Reconnection backoff after an IMAP or database error: from 1 s, doubling, to at most 5 minutes.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Outbox retries: 30 s, doubling, at most 1 hour apart, for a day; then the delivery is marked failed.
const OUTBOX_BASE_DELAY: Duration = Duration::from_secs(30);
const OUTBOX_MAX_DELAY: Duration = Duration::from_secs(3600);
const OUTBOX_MAX_ATTEMPTS: i32 = 30;

/// What one `once` pass did, for the operator and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub fetched: usize,
    pub processed: usize,
    pub sent: usize,
    pub queued: i64,
    pub archived: usize,
}

pub struct App {
    pub config: Config,
    pub pool: PgPool,
    sandbox: Sandbox,
    mailer: Mailer,
}

impl App {
    /// Connect to Postgres, apply migrations, and set up the sandbox and the SMTP transport.
    pub async fn build(config: Config) -> Result<App> {
        let pool = store::connect(config.database.url.expose(), config.database.max_connections).await?;
        store::migrate(&pool).await?;
        let sandbox = Sandbox::new(&config.sandbox, &config.company)?;
        if sandbox.backend() == crate::config::SandboxBackend::None {
            warn!("sandbox.backend = \"none\": documents from the internet are read WITHOUT isolation");
        }
        let mailer = Mailer::new(&config.smtp)?;
        Ok(App { config, pool, sandbox, mailer })
    }

    /// Process everything waiting in the mailbox, deliver the replies, move the mail, and return.
    pub async fn run_once(&self) -> Result<Summary> {
        let mut summary = Summary::default();
        let mut imap = ImapSession::connect(&self.config.imap).await?;
        self.prepare_mailboxes(&mut imap).await?;
        loop {
            let fetched = self.sync(&mut imap).await?;
            summary.fetched += fetched;
            summary.processed += self.process_pending().await?;
            if fetched == 0 {
                break;
            }
        }
        summary.sent += self.deliver().await?;
        summary.archived += self.archive(&mut imap).await?;
        summary.queued = store::pending_mail_count(&self.pool).await?;
        imap.logout().await;
        Ok(summary)
    }

    /// The service: watch the mailbox until `cancel` fires. IMAP and database errors are retried with backoff;
    /// `on_ready` is called once, after the first successful login.
    pub async fn run_until_stopped(&self, cancel: CancellationToken, mut on_ready: impl FnMut()) -> Result<()> {
        let mut backoff = Duration::from_secs(1);
        let mut ready = false;
        while !cancel.is_cancelled() {
            match self
                .session_round(&cancel, &mut || {
                    if !ready {
                        ready = true;
                        on_ready();
                    }
                })
                .await
            {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(e) => {
                    warn!(error = format!("{e:#}"), retry_in_secs = backoff.as_secs(), "mail loop error; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(jitter(backoff)) => {}
                        _ = cancel.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        info!("stopped taking mail");
        Ok(())
    }

    async fn session_round(&self, cancel: &CancellationToken, on_ready: &mut dyn FnMut()) -> Result<()> {
        let mut imap = ImapSession::connect(&self.config.imap).await?;
        self.prepare_mailboxes(&mut imap).await?;
        on_ready();
        let poll = Duration::from_secs(self.config.imap.poll_interval_secs);
        loop {
            while self.sync(&mut imap).await? > 0 {
                self.process_pending().await?;
                if cancel.is_cancelled() {
                    break;
                }
            }
            self.process_pending().await?;
            self.deliver().await?;
            self.archive(&mut imap).await?;
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            if cancel.is_cancelled() {
                imap.logout().await;
                return Ok(());
            }
            let (session, woken) = imap.wait(poll, self.config.imap.idle, cancel).await?;
            imap = session;
            if woken == Woken::Cancelled {
                imap.logout().await;
                return Ok(());
            }
        }
    }

    async fn prepare_mailboxes(&self, imap: &mut ImapSession) -> Result<()> {
        for mb in [&self.config.imap.processed_mailbox, &self.config.imap.failed_mailbox] {
            imap.ensure_mailbox(mb).await?;
        }
        Ok(())
    }

    /// Fetch up to one batch of new messages into Postgres. Returns how many were fetched.
    async fn sync(&self, imap: &mut ImapSession) -> Result<usize> {
        let mailbox = &self.config.imap.mailbox;
        let selected = imap.select(mailbox).await?;
        let known = store::mailbox_state(&self.pool, mailbox).await?;
        let rescan = known.is_some_and(|k| k.uidvalidity != selected.uidvalidity);
        let last_uid = match known {
            Some(k) if !rescan => k.last_uid,
            Some(k) => {
                warn!(
                    mailbox,
                    old = k.uidvalidity,
                    new = selected.uidvalidity,
                    "UIDVALIDITY changed; rescanning the mailbox"
                );
                0
            }
            None => 0,
        };
        if selected.uidnext.is_some_and(|next| next <= last_uid + 1) && !rescan {
            store::save_mailbox_state(
                &self.pool,
                mailbox,
                store::MailboxState { uidvalidity: selected.uidvalidity, last_uid },
            )
            .await?;
            return Ok(0);
        }
        let uids = imap.new_uids(last_uid, self.config.imap.fetch_batch as usize).await?;
        let fetched = imap.fetch(&uids, self.config.limits.max_message_bytes).await?;
        let mut highest = last_uid;
        for f in &fetched {
            let headers = mail_parser::MessageParser::default().parse_headers(&f.raw);
            let message_id = headers.as_ref().and_then(|m| m.message_id()).map(str::to_string);
            let sender = headers
                .as_ref()
                .and_then(|m| m.from())
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(|a| a.to_lowercase());
            let subject = headers.as_ref().and_then(|m| m.subject()).map(str::to_string);
            let digest = crate::extract::sha256_hex(&f.raw);
            let id = store::insert_message(
                &self.pool,
                &store::NewMessage {
                    mailbox,
                    uidvalidity: selected.uidvalidity,
                    uid: f.uid,
                    message_id: message_id.as_deref(),
                    sender: sender.as_deref(),
                    subject: subject.as_deref(),
                    raw: &f.raw,
                    raw_sha256: &digest,
                    size_bytes: u64::from(f.size),
                },
            )
            .await?;
            if let (Some(id), true) = (id, rescan) {
                store::settle_rescanned_copy(&self.pool, id, &digest).await?;
            }
            highest = highest.max(f.uid);
        }
        store::save_mailbox_state(
            &self.pool,
            mailbox,
            store::MailboxState { uidvalidity: selected.uidvalidity, last_uid: highest },
        )
        .await?;
        if !fetched.is_empty() {
            info!(count = fetched.len(), "fetched new mail");
        }
        Ok(fetched.len())
    }

    /// Handle every message waiting in Postgres. Returns how many reached a final state.
    pub async fn process_pending(&self) -> Result<usize> {
        let concurrency = self.config.extract_concurrency();
        let mut done = 0;
        loop {
            let batch = store::claim_received(&self.pool, (concurrency * 2) as i64).await?;
            if batch.is_empty() {
                return Ok(done);
            }
            let results: Vec<Result<bool>> = futures::stream::iter(batch)
                .map(|m| {
                    let span = info_span!(
                        "message",
                        id = m.id,
                        uid = m.uid,
                        message_id = m.message_id.as_deref().unwrap_or("")
                    );
                    async move { self.process_message(m).await }.instrument(span)
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for r in results {
                match r {
                    Ok(true) => done += 1,
                    Ok(false) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Returns true when the message reached a final state, false when it was put back for another attempt.
    async fn process_message(&self, m: StoredMessage) -> Result<bool> {
        let own = &self.config.smtp.from;
        let incoming = mime::parse(&m.raw, own, self.config.limits.max_attachments);
        if !m.operator_release {
            let from = incoming.from.as_deref().unwrap_or("");
            if let auth::Verdict::Untrusted { reason } = auth::judge(&m.raw, from, &self.config.security.policy()) {
                warn!(reason = reason.as_str(), "sender not authenticated; quarantined without a reply");
                self.quarantine_untrusted(&m, &incoming, &reason).await?;
                return Ok(true);
            }
        }
        let too_large = (m.size_bytes > self.config.limits.max_message_bytes)
            .then_some(MessageError::TooLarge { bytes: m.size_bytes, limit: self.config.limits.max_message_bytes });

        let mut extracted: Vec<(mime::Document, Vec<Extraction>)> = Vec::new();
        if too_large.is_none() {
            for doc in &incoming.documents {
                let span = info_span!(
                    "attachment",
                    file = doc.filename.as_str(),
                    kind = doc.kind.as_str(),
                    bytes = doc.bytes.len()
                );
                let results = self.sandbox.extract(&doc.filename, &doc.bytes).instrument(span).await;
                extracted.push((doc.clone(), results));
            }
        }
        let transient = extracted.iter().flat_map(|(_, r)| r).any(|e| {
            matches!(e.error.as_ref().map(|er| er.code), Some(ErrorCode::SandboxFailure | ErrorCode::Timeout))
        });
        if transient && m.attempts < MAX_ATTEMPTS {
            warn!(attempt = m.attempts, "extraction crashed or timed out; will try again");
            store::release_message(&self.pool, m.id, "extraction crashed or timed out; retrying").await?;
            return Ok(false);
        }
        self.finalize(&m, &incoming, extracted, too_large, transient).await?;
        Ok(true)
    }

    /// A mail that fails the sender policy: no reply (backscatter, and a spoofer's Reply-To must never get the
    /// data), nothing extracted or stored, the message quarantined, and the accountants alerted.
    async fn quarantine_untrusted(&self, m: &StoredMessage, incoming: &Incoming, reason: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if !self.config.notify.accountants.is_empty() {
            let alert = reply::QuarantineAlert {
                language: self.config.reply.default_language,
                sender: incoming.from.as_deref().unwrap_or("?"),
                reply_to: incoming.reply_to.as_deref().filter(|r| Some(*r) != incoming.from.as_deref()),
                subject: &incoming.subject,
                message_id: incoming.message_id.as_deref(),
                reason,
                message_ref: m.id,
            };
            let (id, mail) =
                reply::compose_quarantine_alert(&self.config.smtp.from, &self.config.notify.accountants, &alert)?;
            store::enqueue_mail(
                &mut tx,
                &store::NewOutboxMail {
                    message_ref: m.id,
                    kind: "alert",
                    mail_message_id: &id,
                    envelope_from: &self.config.smtp.from,
                    recipients: &self.config.notify.accountants,
                    body: &mail.formatted(),
                },
            )
            .await?;
        }
        let why = format!("sender not authenticated: {reason}");
        store::finish_message(
            &mut tx,
            m.id,
            MessageState::Quarantined,
            Some(&why),
            Some(&self.config.imap.failed_mailbox),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Store the outcome, queue the replies and decide the message's folder, all in one transaction.
    async fn finalize(
        &self,
        m: &StoredMessage,
        incoming: &Incoming,
        extracted: Vec<(mime::Document, Vec<Extraction>)>,
        too_large: Option<MessageError>,
        poisoned: bool,
    ) -> Result<()> {
        let sender = incoming.from.clone().unwrap_or_else(|| "unknown".into());
        let mut tx = self.pool.begin().await?;
        let resent_of = match &incoming.message_id {
            Some(id) => store::earlier_message_with_id(&mut tx, id, m.id).await?.map(|(_, at)| at),
            None => None,
        };
        let mut outcomes: Vec<(String, Outcome)> = Vec::new();
        let mut stored: Vec<(String, Extraction, i64, Vec<String>)> = Vec::new();
        for (position, (doc, results)) in extracted.into_iter().enumerate() {
            let sha = crate::extract::sha256_hex(&doc.bytes);
            let summary = serde_json::to_value(&results)?;
            let first_error = results.iter().find_map(|r| r.error.as_ref().map(|e| e.code.as_str()));
            let attachment_id = store::insert_attachment(
                &mut tx,
                &store::NewAttachment {
                    message_ref: m.id,
                    position: position as i32,
                    filename: &doc.filename,
                    content_type: doc.kind.as_str(),
                    size_bytes: doc.bytes.len() as i64,
                    sha256: &sha,
                    status: if results.iter().any(Extraction::is_ok) { "ok" } else { "error" },
                    error_code: first_error,
                    result: summary,
                },
            )
            .await?;
            let several = results.len() > 1;
            for (index, e) in results.into_iter().enumerate() {
                let label = if several { format!("{} #{}", doc.filename, index + 1) } else { doc.filename.clone() };
                if !e.is_ok() {
                    outcomes.push((label, Outcome::Failed(e)));
                    continue;
                }
                if let Some(existing) = store::invoice_by_document(&mut tx, &sender, &sha, index as i32).await? {
                    outcomes.push((
                        label,
                        Outcome::Duplicate {
                            extraction: e,
                            first_seen: existing.created_at,
                            invoice_number: existing.invoice_number,
                        },
                    ));
                    continue;
                }
                let origin = store::InvoiceOrigin {
                    message_ref: m.id,
                    attachment_ref: attachment_id,
                    message_id: incoming.message_id.as_deref(),
                    sender: &sender,
                    sha256: &sha,
                    index: index as i32,
                };
                match store::insert_invoice(&mut tx, &origin, &e).await? {
                    Some(invoice_id) => {
                        info!(invoice_id, number = e.invoice_number.as_deref().unwrap_or(""), "invoice stored");
                        let alerts = self.fraud_signals(&mut tx, &sender, invoice_id, &e).await?;
                        stored.push((label.clone(), e.clone(), invoice_id, alerts));
                        outcomes.push((label, Outcome::Stored(e)));
                    }
                    None => outcomes.push((
                        label,
                        Outcome::Duplicate { extraction: e, first_seen: chrono::Utc::now(), invoice_number: None },
                    )),
                }
            }
        }

        let any_invoice = outcomes.iter().any(|(_, o)| !matches!(o, Outcome::Failed(_)));
        let (state, target, reason) = if poisoned {
            (
                MessageState::Quarantined,
                &self.config.imap.failed_mailbox,
                Some("extraction kept crashing or timing out".to_string()),
            )
        } else if let Some(MessageError::TooLarge { bytes, limit }) = too_large {
            (
                MessageState::Failed,
                &self.config.imap.failed_mailbox,
                Some(format!("message is {bytes} bytes; limit {limit}")),
            )
        } else if any_invoice {
            (MessageState::Processed, &self.config.imap.processed_mailbox, None)
        } else if incoming.documents.is_empty() && incoming.no_reply.is_some() {
            (
                MessageState::Ignored,
                &self.config.imap.processed_mailbox,
                incoming.no_reply.as_ref().map(|r| format!("not answered: {r}")),
            )
        } else {
            let why = outcomes
                .iter()
                .filter_map(|(n, o)| {
                    o.extraction().error.as_ref().map(|e| format!("{n}: {} ({})", e.code.as_str(), e.message))
                })
                .collect::<Vec<_>>()
                .join("; ");
            let why = if why.is_empty() { "no invoice attached".to_string() } else { why };
            (MessageState::Failed, &self.config.imap.failed_mailbox, Some(why))
        };

        let language = incoming.language.unwrap_or(self.config.reply.default_language);
        match (&incoming.no_reply, &incoming.reply_to) {
            (None, Some(to)) => {
                let content = ReplyContent {
                    language,
                    outcomes: &outcomes,
                    skipped: &incoming.skipped,
                    resent_of,
                    message_error: too_large.or(poisoned.then_some(MessageError::UnderReview)),
                    max_pages: self.config.sandbox.max_pages,
                    max_attachments: self.config.limits.max_attachments,
                };
                let thread = Thread {
                    from: &self.config.smtp.from,
                    to,
                    subject: &incoming.subject,
                    message_id: incoming.message_id.as_deref(),
                    references: &incoming.references,
                };
                let (id, mail) = reply::compose_reply(&thread, &content, m.id)?;
                store::enqueue_mail(
                    &mut tx,
                    &store::NewOutboxMail {
                        message_ref: m.id,
                        kind: "reply",
                        mail_message_id: &id,
                        envelope_from: &self.config.smtp.from,
                        recipients: std::slice::from_ref(to),
                        body: &mail.formatted(),
                    },
                )
                .await?;
            }
            (Some(why), _) => info!(reason = %why, "not replying"),
            (None, None) => info!("no sender address; not replying"),
        }
        if !self.config.notify.accountants.is_empty() {
            for (filename, e, invoice_id, alerts) in &stored {
                let c = reply::Confirmation {
                    language: self.config.reply.default_language,
                    extraction: e,
                    filename,
                    sender: &sender,
                    subject: &incoming.subject,
                    message_id: incoming.message_id.as_deref(),
                    message_ref: m.id,
                    invoice_ref: *invoice_id,
                    alerts,
                };
                let (id, mail) =
                    reply::compose_confirmation(&self.config.smtp.from, &self.config.notify.accountants, &c)?;
                store::enqueue_mail(
                    &mut tx,
                    &store::NewOutboxMail {
                        message_ref: m.id,
                        kind: "confirmation",
                        mail_message_id: &id,
                        envelope_from: &self.config.smtp.from,
                        recipients: &self.config.notify.accountants,
                        body: &mail.formatted(),
                    },
                )
                .await?;
            }
        }
        store::finish_message(&mut tx, m.id, state, reason.as_deref(), Some(target)).await?;
        tx.commit().await.context("committing the message outcome")?;
        info!(state = state.as_str(), documents = outcomes.len(), "message handled");
        Ok(())
    }

    /// Compare a newly stored invoice with the supplier's history: a changed IBAN (business email compromise)
    /// or a reused number with another total. Signals are stored with the invoice and returned as sentences.
    async fn fraud_signals(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        sender: &str,
        invoice_id: i64,
        e: &Extraction,
    ) -> Result<Vec<String>> {
        let supplier = e.supplier.clone().unwrap_or_default();
        let history = store::supplier_history(tx, supplier.tax_id.as_deref(), sender, invoice_id).await?;
        let new = fraud::NewInvoice {
            supplier_tax_id: supplier.tax_id,
            sender: sender.to_string(),
            invoice_number: e.display_number(),
            total_amount: e.total_amount,
            iban: supplier.iban,
            issue_date: e.issue_date,
        };
        let signals = fraud::signals(&new, &history);
        if signals.is_empty() {
            return Ok(Vec::new());
        }
        warn!(invoice_id, count = signals.len(), "fraud signals raised");
        store::set_fraud_signals(tx, invoice_id, &serde_json::to_value(&signals)?).await?;
        let es = self.config.reply.default_language == Language::Es;
        Ok(signals.iter().map(|s| s.describe(es)).collect())
    }

    /// Send what the outbox holds. Returns how many were sent.
    pub async fn deliver(&self) -> Result<usize> {
        let mut sent = 0;
        loop {
            let due = store::due_mail(&self.pool, 50).await?;
            if due.is_empty() {
                return Ok(sent);
            }
            let mut progressed = false;
            for mail in due {
                let span = info_span!(
                    "deliver",
                    outbox_id = mail.id,
                    kind = mail.kind.as_str(),
                    message_id = mail.mail_message_id.as_str()
                );
                let res =
                    self.mailer.send_raw(&mail.envelope_from, &mail.recipients, &mail.body).instrument(span).await;
                match res {
                    Ok(()) => {
                        store::mark_sent(&self.pool, mail.id).await?;
                        sent += 1;
                        progressed = true;
                    }
                    Err(e) if e.is_transient() && mail.attempts + 1 < OUTBOX_MAX_ATTEMPTS => {
                        let delay = outbox_delay(mail.attempts);
                        warn!(outbox_id = mail.id, error = %e, retry_in_secs = delay.as_secs(), "delivery failed; will retry");
                        store::mark_retry(&self.pool, mail.id, &e.to_string(), delay).await?;
                    }
                    Err(e) => {
                        warn!(outbox_id = mail.id, error = %e, "delivery failed for good");
                        store::mark_undeliverable(&self.pool, mail.id, &e.to_string()).await?;
                    }
                }
            }
            if !progressed {
                return Ok(sent);
            }
        }
    }

    /// Move handled messages to their folder. Only messages whose outcome is committed are moved.
    async fn archive(&self, imap: &mut ImapSession) -> Result<usize> {
        let mailbox = &self.config.imap.mailbox;
        let pending = store::awaiting_archive(&self.pool, mailbox).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let selected = imap.select(mailbox).await?;
        let mut moved = 0;
        let (current, stale): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(|p| p.uidvalidity == selected.uidvalidity);
        if !stale.is_empty() {
            // Their UIDs died with the old UIDVALIDITY; the rescan finds the messages again under new UIDs.
            store::mark_archived(&self.pool, &stale.iter().map(|p| p.id).collect::<Vec<_>>()).await?;
        }
        let mut targets: Vec<&str> = current.iter().map(|p| p.target_mailbox.as_str()).collect();
        targets.sort_unstable();
        targets.dedup();
        for target in targets {
            let batch: Vec<_> = current.iter().filter(|p| p.target_mailbox == target).collect();
            let uids: Vec<u32> = batch.iter().map(|p| p.uid).collect();
            imap.ensure_mailbox(target).await?;
            imap.move_uids(&uids, target)
                .await
                .with_context(|| format!("moving {} messages to {target}", uids.len()))?;
            store::mark_archived(&self.pool, &batch.iter().map(|p| p.id).collect::<Vec<_>>()).await?;
            moved += uids.len();
        }
        Ok(moved)
    }

    pub fn language(&self) -> Language {
        self.config.reply.default_language
    }
}

fn outbox_delay(attempts: i32) -> Duration {
    let exp = OUTBOX_BASE_DELAY.saturating_mul(1u32 << attempts.clamp(0, 10) as u32);
    jitter(exp.min(OUTBOX_MAX_DELAY))
}

/// Up to 25% random extra, so many workers retrying the same outage do not stampede together.
fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    let extra = rand::thread_rng().gen_range(0.0..0.25);
    d.mul_f64(1.0 + extra)
}
