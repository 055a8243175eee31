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
//!
//! The parts: [`fetch`] (the IMAP session), [`handle`] (the extraction slots and retries), [`outcome`] (what a
//! read message comes to), [`accountants`] (their replies: corrections, approvals, notes), [`deliver`] (the
//! outbox), [`digest`] (the daily digest), [`listen`] (news from other processes) and [`backoff`].

use anyhow::Result;
use sqlx::PgPool;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, Language};
use crate::mail::imap::ImapSession;
use crate::mail::smtp::Mailer;
use crate::metrics::Metrics;
use crate::sandbox::Sandbox;
use crate::store::{self, MessageState};

mod accountants;
mod backoff;
mod deliver;
pub mod digest;
mod fetch;
mod handle;
mod listen;
mod outcome;

use backoff::{is_outage, jitter, outbox_delay, panic_message, retry_delay};
use fetch::{connect_imap, logout_imap};

/// A message is attempted at most this many times. A transient extraction failure (crash, timeout, killed for
/// resources) on the last attempt quarantines it; a message whose handling was interrupted this many times (the
/// worker died while on it, which a document that crashes the worker itself would do) is quarantined before a
/// further attempt. Either way it never blocks the inbox.
pub const MAX_ATTEMPTS: i32 = 3;
/// `once` waits for retries due within this long; later ones stay for the next run.
const ONCE_RETRY_PATIENCE: Duration = Duration::from_secs(120);
/// Reconnection backoff after an IMAP or database error: from 1 s, doubling, to at most 5 minutes.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

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
    /// The time as the daily digest reads it (`set_clock` lets a test choose it).
    clock: digest::Clock,
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
        let clock = digest::system_clock();
        Ok(App { config, pool, sandbox, mailer, smtp_pause, stopping: CancellationToken::new(), clock })
    }

    /// Read the time from `clock` instead of the system's (for the daily digest).
    pub fn set_clock(&mut self, clock: digest::Clock) {
        self.clock = clock;
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

    pub fn language(&self) -> Language {
        self.config.reply.default_language
    }
}
