//! The IMAP side: hold the mailbox's session, fetch new mail into Postgres, move handled mail to its folder.

use anyhow::{Context, Result};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::mail::imap::ImapSession;
use crate::metrics::Metrics;
use crate::store;

use super::{jitter, App, Wake, MAX_BACKOFF};

/// A process that does not hold the IMAP session tries to take it this often, so a dead holder is replaced within
/// a few seconds (Postgres drops its lock as soon as its connection closes).
const OWNER_RETRY: Duration = Duration::from_secs(2);

impl App {
    /// Hold the IMAP session when nobody else does; reconnect with backoff after any error.
    pub(super) async fn imap_task(
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
    pub(super) async fn imap_round(
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

    pub(super) async fn prepare_mailboxes(&self, imap: &mut ImapSession) -> Result<()> {
        for mb in [&self.config.imap.processed_mailbox, &self.config.imap.failed_mailbox] {
            imap.ensure_mailbox(mb).await?;
        }
        Ok(())
    }

    /// Fetch up to one batch of new messages into Postgres. Returns how many were fetched.
    pub(super) async fn sync(&self, imap: &mut ImapSession) -> Result<usize> {
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

    /// Move handled messages to their folder. Only messages whose outcome is committed are moved.
    pub(super) async fn archive(&self, imap: &mut ImapSession) -> Result<usize> {
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
}

/// Log in to IMAP, and show the session in the metrics.
pub(super) async fn connect_imap(cfg: &crate::config::ImapConfig) -> Result<ImapSession> {
    let imap = ImapSession::connect(cfg).await?;
    let metrics = Metrics::global();
    metrics.imap_connected.set(1);
    metrics.imap_contact();
    Ok(imap)
}

pub(super) async fn logout_imap(imap: ImapSession) {
    imap.logout().await;
    Metrics::global().imap_connected.set(0);
}
