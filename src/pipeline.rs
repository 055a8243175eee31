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
//!
//! Failures are sorted by what they say about the message:
//! - an outage (Postgres, IMAP or SMTP unreachable) blames no message: the loop reconnects with backoff, and
//!   delivery pauses while the SMTP server is away;
//! - a transient failure of one message (the extractor crashed, timed out or was killed for resources; any other
//!   error while handling it, a panic included) puts it back with a growing delay, and after `MAX_ATTEMPTS` it is
//!   quarantined with the reason, so it never blocks the messages behind it;
//! - a permanent failure (a damaged file, a limit hit) is an outcome like any other: stored, answered, filed.
//!
//! Any number of `run` processes share one mailbox and one Postgres. Exactly one of them, the holder of a
//! session-level advisory lock for the mailbox, talks IMAP (fetches and moves); every process extracts and
//! delivers, claiming work with transaction-scoped advisory locks that the others skip. A dead holder's lock
//! goes with its connection and another process takes the session within `OWNER_RETRY`. `once` is the
//! operator's tool and logs in by itself, as before: fetching and moving are idempotent, so it may run beside the
//! service.

use anyhow::{Context, Result};
use futures::FutureExt;
use sqlx::PgPool;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::config::{Config, Language};
use crate::extract::{ErrorCode, Extraction};
use crate::fraud;
use crate::mail::auth;
use crate::mail::imap::ImapSession;
use crate::mail::mime::{self, Incoming};
use crate::mail::reply::{self, MessageError, Outcome, ReplyContent, Thread};
use crate::mail::smtp::Mailer;
use crate::metrics::Metrics;
use crate::sandbox::Sandbox;
use crate::store::{self, MessageState, StoredMessage};

/// A message is attempted at most this many times. A transient extraction failure (crash, timeout, killed for
/// resources) on the last attempt quarantines it; a message whose handling was interrupted this many times (the
/// worker died while on it, which a document that crashes the worker itself would do) is quarantined before a
/// further attempt. Either way it never blocks the inbox.
pub const MAX_ATTEMPTS: i32 = 3;
/// Transient failures of a message wait before the next attempt: 10 s, then 20 s (plus jitter).
const RETRY_BASE_DELAY: Duration = Duration::from_secs(10);
/// `once` waits for retries due within this long; later ones stay for the next run.
const ONCE_RETRY_PATIENCE: Duration = Duration::from_secs(120);
/// Reconnection backoff after an IMAP or database error: from 1 s, doubling, to at most 5 minutes.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Outbox retries after a 4xx answer: 30 s, doubling, at most 1 hour apart, for a day; then the delivery is
/// marked failed.
const OUTBOX_BASE_DELAY: Duration = Duration::from_secs(30);
const OUTBOX_MAX_DELAY: Duration = Duration::from_secs(3600);
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

/// A process that does not hold the IMAP session tries to take it this often, so a dead holder is replaced within
/// a few seconds (Postgres drops its lock as soon as its connection closes).
const OWNER_RETRY: Duration = Duration::from_secs(2);
/// Outbox mails sent at once, at most (see `App::delivery_slots`).
const DELIVERY_SLOTS: usize = 4;
/// NOTIFY channels, raised by triggers (migrations/20261128070000_notify.sql) when a transaction commits.
const CHANNEL_MESSAGES: &str = "invoice_intake_messages";
const CHANNEL_OUTBOX: &str = "invoice_intake_outbox";
const CHANNEL_ARCHIVE: &str = "invoice_intake_archive";

/// Wake-ups between the tasks of one process. Messages wake every idle slot (`notify_waiters`, with slots
/// registering before they look); the outbox and the archive have one waiter each, and `notify_one` keeps the
/// news for it when it is busy.
#[derive(Default)]
struct Wake {
    messages: Notify,
    outbox: Notify,
    archive: Notify,
}

impl Wake {
    fn all(&self) {
        self.messages.notify_waiters();
        self.outbox.notify_one();
        self.archive.notify_one();
    }
}

/// What one `once` pass did, for the operator and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub fetched: usize,
    pub processed: usize,
    pub sent: usize,
    pub queued: i64,
    pub archived: usize,
}

/// What happened to one message taken from the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// It reached this final state.
    Done(MessageState),
    /// It was put back for a later attempt.
    Deferred,
}

#[derive(Debug, Default, Clone, Copy)]
struct Round {
    done: usize,
    deferred: usize,
}

/// The SMTP circuit breaker: while `until` is ahead, nothing is sent.
#[derive(Debug)]
struct SmtpPause {
    until: Option<Instant>,
    next: Duration,
}

pub struct App {
    pub config: Config,
    pub pool: PgPool,
    sandbox: Sandbox,
    mailer: Mailer,
    smtp_pause: Mutex<SmtpPause>,
    /// Cancelled when the service is asked to stop: a message's remaining documents are then put back instead
    /// of read, so the stop waits for one document, not for a whole message.
    stopping: CancellationToken,
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
        sandbox.ensure_usable().await?;
        let mailer = Mailer::new(&config.smtp)?;
        let smtp_pause = Mutex::new(SmtpPause { until: None, next: Duration::from_secs(1) });
        Ok(App { config, pool, sandbox, mailer, smtp_pause, stopping: CancellationToken::new() })
    }

    /// Documents handled at once (the slots), bounded by the cores. Each message in hand holds one database
    /// connection for its transaction and briefly a second one (its attempt count); delivery and the IMAP task
    /// need theirs too, so this stays two below `database.max_connections`.
    fn concurrency(&self) -> usize {
        let connections = self.config.database.max_connections as usize;
        self.config.extract_concurrency().min(connections.saturating_sub(2)).max(1)
    }

    /// Process everything waiting in the mailbox (and retries due within a couple of minutes), deliver the
    /// replies, move the mail, and return.
    pub async fn run_once(&self) -> Result<Summary> {
        let mut summary = Summary::default();
        let mut imap = connect_imap(&self.config.imap).await?;
        self.prepare_mailboxes(&mut imap).await?;
        let started = Instant::now();
        loop {
            if self.turn(&mut imap, &mut summary).await? {
                continue;
            }
            let Some(at) = store::next_message_retry(&self.pool).await? else { break };
            let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default();
            if started.elapsed() + wait > ONCE_RETRY_PATIENCE {
                info!(retry_in_secs = wait.as_secs(), "messages wait for a later retry; leaving them for the next run");
                break;
            }
            tokio::time::sleep(wait + Duration::from_millis(100)).await;
            imap.noop().await?;
        }
        summary.queued = store::pending_mail_count(&self.pool).await?;
        logout_imap(imap).await;
        Ok(summary)
    }

    /// One turn of the loop: fetch a batch, handle a round of messages, deliver what is due, move what is handled.
    /// Returns whether there is probably more to do right away.
    async fn turn(&self, imap: &mut ImapSession, summary: &mut Summary) -> Result<bool> {
        let fetched = self.sync(imap).await?;
        let round = self.process_round().await?;
        summary.fetched += fetched;
        summary.processed += round.done;
        summary.sent += self.deliver().await?;
        summary.archived += self.archive(imap).await?;
        self.refresh_gauges().await?;
        Ok(fetched > 0 || round.done + round.deferred > 0)
    }

    /// Queue depth and outbox backlog, read from Postgres so they count every worker's share.
    async fn refresh_gauges(&self) -> Result<()> {
        let (waiting, outbox) = store::backlog(&self.pool).await?;
        let metrics = Metrics::global();
        metrics.queue_depth.set(waiting);
        metrics.outbox_backlog.set(outbox);
        Ok(())
    }

    /// The service, until `cancel` fires: four tasks that overlap, woken by each other within the process and
    /// by Postgres NOTIFY across processes, each with a poll as a fallback.
    /// - IMAP: only the process holding the mailbox's IMAP lock logs in. It fetches new mail into Postgres, moves
    ///   handled mail, and waits with IDLE (or NOOP polling); the others wait to take over.
    /// - extraction: `concurrency` slots, each claiming the oldest due message nobody holds, in every process.
    /// - delivery: sends outbox mail as soon as its message commits, over lettre's pooled SMTP connection.
    /// - listening: LISTEN for the other processes' news.
    ///
    /// On cancellation the slots finish the message in hand, then its replies are sent and the mail moved.
    /// `on_ready` is called once: after the IMAP login, or on learning that another process holds the session.
    pub async fn run_until_stopped(&self, cancel: CancellationToken, mut on_ready: impl FnMut()) -> Result<()> {
        let wake = Wake::default();
        let drained = CancellationToken::new();
        let mut ready = false;
        let mut once_ready = || {
            if !ready {
                ready = true;
                on_ready();
            }
        };
        let extraction = async {
            self.extraction_task(&cancel, &wake).await;
            drained.cancel();
        };
        let stopping = async {
            cancel.cancelled().await;
            self.stopping.cancel();
        };
        tokio::join!(
            self.imap_task(&cancel, &drained, &wake, &mut once_ready),
            extraction,
            self.delivery_task(&drained, &wake),
            self.listen_task(&drained, &wake),
            stopping,
        );
        info!("stopped taking mail");
        Ok(())
    }

    /// Hold the IMAP session when nobody else does; reconnect with backoff after any error.
    async fn imap_task(
        &self,
        cancel: &CancellationToken,
        drained: &CancellationToken,
        wake: &Wake,
        on_ready: &mut dyn FnMut(),
    ) {
        let mut backoff = Duration::from_secs(1);
        let mut lock: Option<store::ImapLock> = None;
        while !cancel.is_cancelled() {
            match self.imap_round(&mut lock, cancel, drained, wake, on_ready, &mut backoff).await {
                Ok(()) => {}
                Err(e) => {
                    Metrics::global().imap_connected.set(0);
                    warn!(error = format!("{e:#}"), retry_in_secs = backoff.as_secs(), "mail loop error; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(jitter(backoff)) => {}
                        _ = cancel.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        // Another process may hold the session; what this one finished is moved by whoever holds it.
        Metrics::global().imap_connected.set(0);
    }

    /// One try at the IMAP lock: as its holder, run the session until cancellation or an error; otherwise note
    /// who is alive and wait `OWNER_RETRY` before the next try.
    async fn imap_round(
        &self,
        lock: &mut Option<store::ImapLock>,
        cancel: &CancellationToken,
        drained: &CancellationToken,
        wake: &Wake,
        on_ready: &mut dyn FnMut(),
        backoff: &mut Duration,
    ) -> Result<()> {
        // The lock stays held through IMAP errors (the next holder would meet the same server); only a lock
        // whose connection is gone is given up, and taken again, by this process or another, with a new one.
        if let Some(l) = lock {
            if let Err(e) = l.check().await {
                *lock = None;
                Metrics::global().imap_owner.set(0);
                return Err(e);
            }
        }
        let held = match lock {
            Some(l) => l,
            None => lock
                .insert(store::ImapLock::connect(self.config.database.url.expose(), &self.config.imap.mailbox).await?),
        };
        let metrics = Metrics::global();
        if !held.try_take().await? {
            metrics.imap_owner.set(0);
            // Healthy as long as Postgres answers and the holder keeps reaching IMAP (it stamps `last_contact`).
            if let Some(at) = store::last_imap_contact(&self.pool).await? {
                metrics.imap_contact_at(at.timestamp());
            }
            self.refresh_gauges().await?;
            on_ready();
            *backoff = Duration::from_secs(1);
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            tokio::select! {
                _ = tokio::time::sleep(OWNER_RETRY) => {}
                _ = cancel.cancelled() => {}
            }
            return Ok(());
        }
        if metrics.imap_owner.get() == 0 {
            info!(mailbox = self.config.imap.mailbox.as_str(), "this process holds the IMAP session");
        }
        metrics.imap_owner.set(1);
        let mut imap = connect_imap(&self.config.imap).await?;
        self.prepare_mailboxes(&mut imap).await?;
        on_ready();
        let poll = Duration::from_secs(self.config.imap.poll_interval_secs);
        let mut healthy = false;
        loop {
            let fetched = self.sync(&mut imap).await?;
            if fetched > 0 {
                wake.messages.notify_waiters();
            }
            self.archive(&mut imap).await?;
            self.refresh_gauges().await?;
            held.check().await?;
            if !healthy {
                // A whole turn worked: whatever failed before is over, so the next failure starts from 1 s again.
                healthy = true;
                *backoff = Duration::from_secs(1);
            }
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            if cancel.is_cancelled() {
                // Drain: the slots finish the messages in hand, then those are moved too.
                drained.cancelled().await;
                self.archive(&mut imap).await?;
                logout_imap(imap).await;
                return Ok(());
            }
            if fetched >= self.config.imap.fetch_batch as usize {
                continue;
            }
            // Settled messages interrupt the wait so they are moved now, not at the next poll.
            let interrupt = cancel.child_token();
            let waiting = imap.wait(poll, self.config.imap.idle, &interrupt);
            tokio::pin!(waiting);
            let (session, _) = tokio::select! {
                r = &mut waiting => r?,
                _ = wake.archive.notified() => {
                    interrupt.cancel();
                    waiting.await?
                }
            };
            imap = session;
            metrics.imap_contact();
        }
    }

    /// Claim and handle messages with `concurrency` slots until cancellation; each finishes the one in hand.
    async fn extraction_task(&self, cancel: &CancellationToken, wake: &Wake) {
        let slots = self.concurrency();
        futures::future::join_all((0..slots).map(|_| self.extraction_slot(cancel, wake))).await;
    }

    async fn extraction_slot(&self, cancel: &CancellationToken, wake: &Wake) {
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
    async fn until_next_retry(&self, poll: Duration) -> Result<Duration> {
        let due = match store::next_message_retry(&self.pool).await? {
            Some(at) => (at - chrono::Utc::now()).to_std().unwrap_or_default(),
            None => poll,
        };
        Ok(due.clamp(Duration::from_secs(1), poll.max(Duration::from_secs(1))))
    }

    /// Send outbox mail as soon as it is committed, until the slots have drained; then send what they left.
    async fn delivery_task(&self, drained: &CancellationToken, wake: &Wake) {
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
    async fn until_next_delivery(&self, poll: Duration) -> Result<Duration> {
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

    /// LISTEN for the other processes' news and pass it on. A lost connection may have lost news, so every task
    /// is woken after it; the tasks' polls cover the time it is down.
    async fn listen_task(&self, stop: &CancellationToken, wake: &Wake) {
        let mut backoff = Duration::from_secs(1);
        while !stop.is_cancelled() {
            let listener = async {
                // Its own connection: one taken from the pool would be held for good, and the pool is sized so
                // that the slots and delivery can never all wait for a connection at once.
                let mut l = sqlx::postgres::PgListener::connect(self.config.database.url.expose()).await?;
                l.listen_all([CHANNEL_MESSAGES, CHANNEL_OUTBOX, CHANNEL_ARCHIVE]).await?;
                Ok::<_, sqlx::Error>(l)
            };
            let mut listener = match listener.await {
                Ok(l) => l,
                Err(e) => {
                    warn!(error = %e, "cannot LISTEN; relying on polls for now");
                    tokio::select! {
                        _ = tokio::time::sleep(jitter(backoff)) => {}
                        _ = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_secs(1);
            wake.all();
            loop {
                let n = tokio::select! {
                    n = listener.try_recv() => n,
                    _ = stop.cancelled() => return,
                };
                match n {
                    Ok(Some(n)) => match n.channel() {
                        CHANNEL_MESSAGES => wake.messages.notify_waiters(),
                        CHANNEL_OUTBOX => wake.outbox.notify_one(),
                        _ => wake.archive.notify_one(),
                    },
                    Ok(None) | Err(_) => {
                        // The connection dropped: reconnect through the outer loop.
                        wake.all();
                        break;
                    }
                }
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
                // Every UID we kept is void. The mailbox is read again from the start; copies of messages we
                // already handled are recognised by their bytes when their turn comes (`store::handled_copy`).
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
        Metrics::global().imap_contact();
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
            store::insert_message(
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

    /// Handle every message waiting in Postgres whose attempt is due. Returns how many reached a final state.
    pub async fn process_pending(&self) -> Result<usize> {
        Ok(self.process_round().await?.done)
    }

    /// Handle every due message nobody else holds, `concurrency` at a time, until none is left.
    async fn process_round(&self) -> Result<Round> {
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
    async fn process_next(&self) -> Result<Option<Step>> {
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
    async fn message_failed(&self, m: &StoredMessage, error: &str) -> Result<Step> {
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
    fn finished(&self, m: &StoredMessage, state: MessageState) -> Step {
        let metrics = Metrics::global();
        metrics.message_done(state.as_str());
        let took = (chrono::Utc::now() - m.received_at).to_std().unwrap_or_default();
        metrics.message_seconds.observe(took.as_secs_f64());
        Step::Done(state)
    }

    /// Read one locked message and record its outcome in `tx` (committed by the caller).
    async fn handle(&self, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, m: &StoredMessage) -> Result<Step> {
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
    async fn quarantine_untrusted(
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
    async fn quarantine(&self, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, id: i64, reason: &str) -> Result<()> {
        store::finish_message(tx, id, MessageState::Quarantined, Some(reason), Some(&self.config.imap.failed_mailbox))
            .await
    }

    /// Store the outcome, queue the replies and decide the message's folder, all in one transaction.
    /// `poisoned` says why extraction kept failing when it did on the last attempt.
    async fn finalize(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        m: &StoredMessage,
        incoming: &Incoming,
        extracted: Vec<(mime::Document, Vec<Extraction>)>,
        too_large: Option<MessageError>,
        poisoned: Option<String>,
    ) -> Result<MessageState> {
        // A mail without a From is nobody's: its documents are its own, never merged with other such mail.
        let sender = match incoming.from.as_deref() {
            Some(from) => store::clean_address(from),
            None => format!("(no sender: message {})", m.id),
        };
        // A resend is the same Message-ID from the same sender; another sender reusing the id learns nothing.
        let resent_of = match (&incoming.message_id, &incoming.from) {
            (Some(id), Some(_)) => store::earlier_message_from(tx, id, &sender, m.id).await?.map(|(_, at)| at),
            _ => None,
        };
        let mut outcomes: Vec<(String, Outcome)> = Vec::new();
        let mut stored: Vec<(String, Extraction, i64, Vec<String>)> = Vec::new();
        for (position, (doc, results)) in extracted.into_iter().enumerate() {
            let sha = crate::extract::sha256_hex(&doc.bytes);
            let summary = serde_json::to_value(&results)?;
            let first_error = results.iter().find_map(|r| r.error.as_ref().map(|e| e.code.as_str()));
            let attachment_id = store::insert_attachment(
                tx,
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
                let e = match self.addressed_to_us(e) {
                    Ok(e) => e,
                    Err(not_ours) => {
                        outcomes.push((label, *not_ours));
                        continue;
                    }
                };
                let keys = crate::store::keys::InvoiceKeys::of(&e, &sender);
                let earlier = match store::invoice_by_document(tx, &sender, &sha, index as i32).await? {
                    Some(same_file) => Some(same_file),
                    None => store::ledger::invoice_by_content(tx, &keys).await?,
                };
                if let Some(existing) = earlier {
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
                match store::insert_invoice(tx, &origin, &e).await? {
                    Some(invoice_id) => {
                        info!(invoice_id, number = e.invoice_number.as_deref().unwrap_or(""), "invoice stored");
                        let alerts = self.fraud_signals(tx, &sender, invoice_id, &e).await?;
                        let (review, reasons) =
                            crate::ledger::review::assess(&e, &alerts, self.config.review.min_confidence);
                        store::ledger::set_review(tx, invoice_id, review.as_str(), &serde_json::to_value(&reasons)?)
                            .await?;
                        stored.push((label.clone(), e.clone(), invoice_id, alerts));
                        outcomes.push((label, Outcome::Stored(e)));
                    }
                    // Another worker stored the same invoice while we read it; its commit came first.
                    None => {
                        let first = store::ledger::invoice_by_content(tx, &keys).await?;
                        outcomes.push((
                            label,
                            Outcome::Duplicate {
                                extraction: e,
                                first_seen: first.as_ref().map_or_else(chrono::Utc::now, |f| f.created_at),
                                invoice_number: first.and_then(|f| f.invoice_number),
                            },
                        ))
                    }
                }
            }
        }

        let any_invoice = outcomes.iter().any(|(_, o)| matches!(o, Outcome::Stored(_) | Outcome::Duplicate { .. }));
        let (state, target, mut reason) = if let Some(why) = &poisoned {
            (MessageState::Quarantined, &self.config.imap.failed_mailbox, Some(why.clone()))
        } else if let Some(MessageError::TooLarge { bytes, limit }) = too_large {
            (
                MessageState::Failed,
                &self.config.imap.failed_mailbox,
                Some(format!("too_large: the message is {bytes} bytes; limits.max_message_bytes is {limit}")),
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
                .filter_map(|(n, o)| match o {
                    Outcome::NotForUs { reason, .. } => Some(format!("{n}: not for us ({reason})")),
                    _ => o.extraction().error.as_ref().map(|e| format!("{n}: {} ({})", e.code.as_str(), e.message)),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let why = if why.is_empty() { "no invoice attached".to_string() } else { why };
            (MessageState::Failed, &self.config.imap.failed_mailbox, Some(why))
        };

        let not_read = incoming.skipped.iter().filter(|k| k.reason == mime::SkipReason::TooMany).count();
        if not_read > 0 {
            let note = format!(
                "too_many_attachments: {not_read} documents past limits.max_attachments ({}) were not read",
                self.config.limits.max_attachments
            );
            reason = Some(match reason {
                Some(r) => format!("{r}; {note}"),
                None => note,
            });
        }
        let language = incoming.language.unwrap_or(self.config.reply.default_language);
        let held = match (&incoming.no_reply, any_invoice) {
            (None, false) => self.reply_held(tx, incoming).await?,
            _ => None,
        };
        match (&incoming.no_reply, &incoming.reply_to) {
            (None, Some(_)) if held.is_some() => {
                let note = format!("not answered: {}", held.unwrap_or_default());
                info!(reason = note.as_str(), "not replying");
                reason = Some(match reason {
                    Some(r) => format!("{r}; {note}"),
                    None => note,
                });
            }
            (None, Some(to)) => {
                let content = ReplyContent {
                    language,
                    outcomes: &outcomes,
                    skipped: &incoming.skipped,
                    resent_of,
                    message_error: too_large.or(poisoned.is_some().then_some(MessageError::UnderReview)),
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
                match reply::compose_reply(&thread, &content, m.id) {
                    Ok((id, mail)) => {
                        store::enqueue_mail(
                            tx,
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
                    // The address came from the mail's own headers: one we cannot write to is a fact about this
                    // mail, not a reason to stop. The outcome is stored and the operator sees why nobody was told.
                    Err(e) => {
                        warn!(to = to.as_str(), error = %e, "cannot write a reply to this address; not replying");
                        let note = format!("not answered: the reply address {to:?} is not usable ({e})");
                        reason = Some(match reason {
                            Some(r) => format!("{r}; {note}"),
                            None => note,
                        });
                    }
                }
            }
            (Some(why), _) => {
                info!(reason = %why, "not replying");
                let note = format!("not answered: {why}");
                reason = Some(match reason {
                    Some(r) if r.contains(&note) => r,
                    Some(r) => format!("{r}; {note}"),
                    None => note,
                });
            }
            (None, None) => {
                info!("no sender address; not replying");
                let note = "not answered: no sender address".to_string();
                reason = Some(match reason {
                    Some(r) => format!("{r}; {note}"),
                    None => note,
                });
            }
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
                    tx,
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
        store::finish_message(tx, m.id, state, reason.as_deref(), Some(target)).await?;
        info!(state = state.as_str(), documents = outcomes.len(), "message handled");
        Ok(state)
    }

    /// Why a mail without an invoice gets no reply, when it gets none: it answers a mail of ours (a robot that
    /// does not mark itself, RFC 3834, would loop with us), or its sender had their hourly share of replies.
    async fn reply_held(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        incoming: &Incoming,
    ) -> Result<Option<String>> {
        if let Some(ours) = store::own_mail_among(tx, &incoming.answers).await? {
            return Ok(Some(format!("it answers our mail {ours} and carries no invoice")));
        }
        let Some(to) = &incoming.reply_to else { return Ok(None) };
        let budget = self.config.reply.max_replies_without_invoice_per_hour;
        let sent = store::recent_replies_without_invoice(tx, to).await?;
        Ok((sent >= i64::from(budget)).then(|| {
            format!(
                "{sent} replies about mail without an invoice went to {to} within the hour \
                 (reply.max_replies_without_invoice_per_hour = {budget})"
            )
        }))
    }

    /// An invoice whose customer is clearly another company is flagged with a failed `addressed_to_us` check
    /// (so it needs review and the confirmation says `[REVISAR]`), or with `on_foreign_customer = "reject"`
    /// returned as the supplier's answer instead of being booked.
    fn addressed_to_us(&self, mut e: Extraction) -> std::result::Result<Extraction, Box<Outcome>> {
        let Some(why) = crate::ledger::review::foreign_customer(&e, &self.config.company) else { return Ok(e) };
        warn!(reason = why.as_str(), "invoice addressed to another company");
        if self.config.company.on_foreign_customer == crate::config::ForeignCustomer::Reject {
            return Err(Box::new(Outcome::NotForUs { extraction: e, reason: why }));
        }
        e.push_check(crate::extract::Check::new(crate::ledger::review::ADDRESSED_TO_US, false, Some(why)));
        Ok(e)
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
            qr_iban_mismatch: e
                .qr_codes
                .iter()
                .flatten()
                // Every code on the page asks to be paid, a second bill's too.
                .find_map(|c| Some((c.iban.clone()?, c.page_iban.clone()?))),
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

    /// Mails sent at once: OpenSMTPD takes a mail in a few milliseconds but commits its queue per mail, so a few
    /// connections in parallel keep up with the extraction. Each holds a database connection while its mail is
    /// sent, so this stays below what the extraction slots leave of `database.max_connections`.
    fn delivery_slots(&self) -> usize {
        let connections = self.config.database.max_connections as usize;
        DELIVERY_SLOTS.min(connections.saturating_sub(self.concurrency() + 1)).max(1)
    }

    /// Queue the accountants' digest of quarantined mail, when some waits and none went out within the period.
    async fn send_alert_digest(&self) -> Result<()> {
        const MAX_PER_DIGEST: i64 = 200;
        let period = Duration::from_secs(self.config.notify.alert_digest_minutes * 60);
        let mut tx = self.pool.begin().await?;
        let pending = store::take_pending_alerts(&mut tx, period, MAX_PER_DIGEST).await?;
        if pending.is_empty() || self.config.notify.accountants.is_empty() {
            return Ok(());
        }
        let alerts: Vec<reply::QuarantineAlert<'_>> = pending
            .iter()
            .map(|p| reply::QuarantineAlert {
                language: self.config.reply.default_language,
                sender: p.sender.as_deref().unwrap_or("?"),
                reply_to: None,
                subject: p.subject.as_deref().unwrap_or(""),
                message_id: p.message_id.as_deref(),
                reason: p.reason.as_deref().unwrap_or(""),
                message_ref: p.id,
            })
            .collect();
        let (id, mail) = reply::compose_alert_digest(
            &self.config.smtp.from,
            &self.config.notify.accountants,
            self.config.reply.default_language,
            &alerts,
        )?;
        store::enqueue_mail(
            &mut tx,
            &store::NewOutboxMail {
                message_ref: pending[0].id,
                kind: "alert",
                mail_message_id: &id,
                envelope_from: &self.config.smtp.from,
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
    async fn deliver_next(&self) -> Result<Option<bool>> {
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
    async fn record_sent(&self, id: i64) -> Result<()> {
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
    fn smtp_paused_for(&self) -> Option<Duration> {
        let p = self.smtp_pause.lock().expect("smtp pause lock");
        p.until.and_then(|t| t.checked_duration_since(Instant::now())).filter(|d| !d.is_zero())
    }

    fn pause_smtp(&self) -> Duration {
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

    fn smtp_reachable(&self) {
        let mut p = self.smtp_pause.lock().expect("smtp pause lock");
        p.until = None;
        p.next = Duration::from_secs(1);
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

/// Log in to IMAP, and show the session in the metrics.
async fn connect_imap(cfg: &crate::config::ImapConfig) -> Result<ImapSession> {
    let imap = ImapSession::connect(cfg).await?;
    let metrics = Metrics::global();
    metrics.imap_connected.set(1);
    metrics.imap_contact();
    Ok(imap)
}

async fn logout_imap(imap: ImapSession) {
    imap.logout().await;
    Metrics::global().imap_connected.set(0);
}

/// The wait before attempt `attempt + 1` of a message that failed transiently: 10 s, 20 s, … (with jitter).
fn retry_delay(attempt: i32) -> Duration {
    let exp = RETRY_BASE_DELAY.saturating_mul(1u32 << (attempt - 1).clamp(0, 6) as u32);
    jitter(exp)
}

/// Whether an error means Postgres (or the connection to it) is unavailable, as opposed to something about the
/// message in hand. Outages end the turn and are retried with the reconnect backoff; no message is blamed.
fn is_outage(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        if let Some(err) = cause.downcast_ref::<sqlx::Error>() {
            return match err {
                // SQLSTATE classes: 08 connection, 53 insufficient resources, 57 operator intervention (shutdown),
                // 58 system error, 40 rollback (serialization failure, deadlock): none is about the data.
                sqlx::Error::Database(db) => {
                    db.code().is_some_and(|c| ["08", "40", "53", "57", "58"].iter().any(|class| c.starts_with(class)))
                }
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                _ => false,
            };
        }
        cause.downcast_ref::<std::io::Error>().is_some()
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_retries_back_off_and_stay_bounded() {
        let first = retry_delay(1);
        let second = retry_delay(2);
        assert!(first >= RETRY_BASE_DELAY && first <= RETRY_BASE_DELAY.mul_f64(1.25), "{first:?}");
        assert!(second >= RETRY_BASE_DELAY * 2 && second <= (RETRY_BASE_DELAY * 2).mul_f64(1.25), "{second:?}");
        assert!(retry_delay(60) <= (RETRY_BASE_DELAY * 64).mul_f64(1.25));
    }

    #[test]
    fn only_an_unreachable_database_is_an_outage() {
        assert!(is_outage(&anyhow::Error::new(sqlx::Error::PoolTimedOut)));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(is_outage(&anyhow::Error::new(sqlx::Error::Io(io)).context("committing")));
        assert!(!is_outage(&anyhow::anyhow!("the reply address is not usable")));
        assert!(!is_outage(&anyhow::Error::new(sqlx::Error::RowNotFound)));
    }

    #[test]
    fn a_panic_is_described_by_its_message() {
        let caught = std::panic::catch_unwind(|| panic!("index out of bounds")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "panic: index out of bounds");
    }
}
