//! Where the IMAP side stands: each mailbox's UIDVALIDITY and last UID, which process holds the IMAP session,
//! and which handled messages still wait to be moved to their folder.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct MailboxState {
    #[sqlx(try_from = "i64")]
    pub uidvalidity: u32,
    #[sqlx(try_from = "i64")]
    pub last_uid: u32,
}

pub async fn mailbox_state(pool: &PgPool, mailbox: &str) -> Result<Option<MailboxState>> {
    Ok(sqlx::query_as("SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = $1")
        .bind(mailbox)
        .fetch_optional(pool)
        .await?)
}

pub async fn save_mailbox_state(pool: &PgPool, mailbox: &str, state: MailboxState) -> Result<()> {
    sqlx::query(
        "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, last_contact) VALUES ($1, $2, $3, now())
         ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = $2, last_uid = $3, last_contact = now()",
    )
    .bind(mailbox)
    .bind(i64::from(state.uidvalidity))
    .bind(i64::from(state.last_uid))
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn touch_mailbox(pool: &PgPool, mailbox: &str) -> Result<()> {
    sqlx::query("UPDATE mailbox_state SET last_contact = now() WHERE mailbox = $1").bind(mailbox).execute(pool).await?;
    Ok(())
}

/// The session-level advisory lock held by the one process that talks IMAP for a mailbox (the second key is
/// `hashtext(mailbox)`).
const IMAP_LOCK_CLASS: i32 = 0x1e_4e0e;

/// The `application_name` of the connection holding the IMAP lock, so `status` can say who holds it.
const IMAP_OWNER_APP: &str = "invoice-intake imap owner";

/// A liveness check of the lock's connection answers quickly or the connection is gone.
const LOCK_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A dedicated connection (not from the pool) on which this process tries to hold the mailbox's IMAP lock. The
/// lock is session-level: it lasts as long as this connection, so when the holder dies Postgres drops the
/// connection and the lock with it, and the next `try_take` of another process succeeds.
pub struct ImapLock {
    conn: sqlx::PgConnection,
    mailbox: String,
    held: bool,
}

impl ImapLock {
    pub async fn connect(url: &str, mailbox: &str) -> Result<ImapLock> {
        use sqlx::ConnectOptions;
        let app = format!("{IMAP_OWNER_APP} pid {}", std::process::id());
        let options = PgConnectOptions::from_str(url).context("database.url is not a valid Postgres URL")?;
        let conn = options.application_name(&app).connect().await.context("cannot connect to Postgres")?;
        Ok(ImapLock { conn, mailbox: mailbox.to_string(), held: false })
    }

    /// Take the lock if nobody holds it. True while this process holds it.
    pub async fn try_take(&mut self) -> Result<bool> {
        if !self.held {
            self.held = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
                .bind(IMAP_LOCK_CLASS)
                .bind(&self.mailbox)
                .fetch_one(&mut self.conn)
                .await?;
        }
        Ok(self.held)
    }

    /// Fails when the lock's connection is gone (and with it, possibly, the lock: another process may hold it).
    pub async fn check(&mut self) -> Result<()> {
        tokio::time::timeout(LOCK_CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&mut self.conn))
            .await
            .context("the IMAP lock's connection does not answer")?
            .context("the IMAP lock's connection is gone")?;
        Ok(())
    }
}

/// Who holds the IMAP lock of `mailbox`: the holder's `application_name` and address, if anyone holds it.
pub async fn imap_owner(pool: &PgPool, mailbox: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT a.application_name || ' at ' || coalesce(host(a.client_addr), 'local socket')
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid
               AND l.objid = hashtext($2)::oid AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(IMAP_LOCK_CLASS)
    .bind(mailbox)
    .fetch_optional(pool)
    .await?)
}

pub async fn last_imap_contact(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query("SELECT max(last_contact) FROM mailbox_state").fetch_one(pool).await?.get(0))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ToArchive {
    pub id: i64,
    #[sqlx(try_from = "i64")]
    pub uidvalidity: u32,
    #[sqlx(try_from = "i64")]
    pub uid: u32,
    pub target_mailbox: String,
}

/// Handled messages of `mailbox` not yet moved. Only messages whose outcome is durable are listed, so the
/// IMAP copy is never moved before its results are safe (unlike Odoo, which flags mail before parsing it).
pub async fn awaiting_archive(pool: &PgPool, mailbox: &str) -> Result<Vec<ToArchive>> {
    Ok(sqlx::query_as(
        "SELECT id, uidvalidity, uid, target_mailbox FROM messages
         WHERE mailbox = $1 AND state <> 'received' AND target_mailbox IS NOT NULL AND archived_at IS NULL
         ORDER BY id",
    )
    .bind(mailbox)
    .fetch_all(pool)
    .await?)
}

pub async fn mark_archived(pool: &PgPool, ids: &[i64]) -> Result<()> {
    sqlx::query("UPDATE messages SET archived_at = now() WHERE id = ANY($1)").bind(ids).execute(pool).await?;
    Ok(())
}
