//! The `messages` table: each fetched mail, its claim by one worker, its attempts and its final state.

use anyhow::Result;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::time::Duration;

use super::{clean_address, clean_message_id, clean_text, lock_oldest_free, MessageState, MAX_TEXT_CHARS};

pub struct NewMessage<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
    pub message_id: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub raw: &'a [u8],
    pub raw_sha256: &'a str,
    /// The size the server reported; larger than `raw` when only the header of an oversized mail was fetched.
    pub size_bytes: u64,
}

/// Store a fetched message. Returns its id, or `None` when this mailbox/UIDVALIDITY/UID is already stored.
pub async fn insert_message(pool: &PgPool, m: &NewMessage<'_>) -> Result<Option<i64>> {
    let row = sqlx::query(
        "INSERT INTO messages (mailbox, uidvalidity, uid, message_id, sender, subject, raw, raw_sha256, size_bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (mailbox, uidvalidity, uid) DO NOTHING RETURNING id",
    )
    .bind(m.mailbox)
    .bind(i64::from(m.uidvalidity))
    .bind(i64::from(m.uid))
    .bind(m.message_id.map(clean_message_id).filter(|s| !s.is_empty()))
    .bind(m.sender.map(clean_address))
    .bind(m.subject.map(|s| clean_text(s, MAX_TEXT_CHARS)))
    .bind(m.raw)
    .bind(m.raw_sha256)
    .bind(m.size_bytes as i64)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.get(0)))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredMessage {
    pub id: i64,
    pub mailbox: String,
    #[sqlx(try_from = "i64")]
    pub uidvalidity: u32,
    #[sqlx(try_from = "i64")]
    pub uid: u32,
    pub message_id: Option<String>,
    pub raw: Vec<u8>,
    pub raw_sha256: String,
    #[sqlx(try_from = "i64")]
    pub size_bytes: u64,
    /// Attempts begun so far, this one included once `begin_attempt` counted it.
    pub attempts: i32,
    pub received_at: DateTime<Utc>,
    /// An operator reviewed this message and sent it through again (`reprocess`): its sender is vouched for.
    pub operator_release: bool,
}

/// The first key of the advisory locks that mark a message as being handled (the second is its id).
const MESSAGE_LOCK_CLASS: i32 = 0x1e_4e0c;

/// The oldest due messages, the lock tried on each in id order. The LIMIT in the subquery keeps Postgres from
/// pushing the lock call down into the scan, and the outer LIMIT stops at the first lock taken.
const CLAIM_MESSAGE: &str =
    "SELECT id FROM (SELECT id FROM messages WHERE state = 'received' AND next_attempt_at <= now()
                                              ORDER BY id LIMIT $2) due
                              WHERE pg_try_advisory_xact_lock($1, (id % 2147483647)::int) LIMIT 1";

/// Take the oldest due message nobody holds, for this transaction: a transaction-scoped advisory lock, released
/// at commit or rollback, or when the connection dies with its worker (no lease to expire). Locked messages are
/// skipped, as `FOR UPDATE SKIP LOCKED` would, without holding a row lock across the slow extraction: the row is
/// updated by `begin_attempt` outside this transaction while it is held. `None` when nothing is due and free.
pub async fn claim_message(tx: &mut Transaction<'_, Postgres>) -> Result<Option<StoredMessage>> {
    // A message finished by another worker between the window's snapshot and our lock is found gone when read
    // back; the next claim skips it. Bounded, so a storm of such races cannot loop forever.
    for _ in 0..8 {
        let Some(id) = lock_oldest_free(tx, CLAIM_MESSAGE, MESSAGE_LOCK_CLASS).await? else { return Ok(None) };
        if let Some(m) = read_claimed(tx, id).await? {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

async fn read_claimed(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<Option<StoredMessage>> {
    // Read after taking the lock: a worker that finished it before committed first, and we see that.
    Ok(sqlx::query_as(
        "SELECT id, mailbox, uidvalidity, uid, message_id, raw, attempts, received_at, size_bytes, operator_release,
                raw_sha256
         FROM messages WHERE id = $1 AND state = 'received' AND next_attempt_at <= now()",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Count an attempt at handling a locked message, durably and before any work: a message during which the
/// worker dies again and again (a poison message that crashes the worker itself) is recognised by this count.
/// Runs outside the handling transaction, which has not touched the row, so it cannot wait on it.
pub async fn begin_attempt(pool: &PgPool, id: i64) -> Result<i32> {
    Ok(sqlx::query_scalar(
        "UPDATE messages SET attempts = attempts + 1, updated_at = now() WHERE id = $1 RETURNING attempts",
    )
    .bind(id)
    .fetch_one(pool)
    .await?)
}

/// When a mailbox was renumbered (a new UIDVALIDITY), every message comes back under a new UID. A copy whose
/// bytes (and Message-ID) we already handled under another UIDVALIDITY is that message again: this returns the
/// first copy's id and folder, so the copy is settled (moved where the first went) instead of answered twice.
pub async fn handled_copy(
    tx: &mut Transaction<'_, Postgres>,
    m: &StoredMessage,
) -> Result<Option<(i64, Option<String>)>> {
    let row = sqlx::query(
        "SELECT id, target_mailbox FROM messages
         WHERE raw_sha256 = $1 AND mailbox = $2 AND message_id IS NOT DISTINCT FROM $3 AND uidvalidity <> $4
               AND id <> $5 AND state <> 'received'
         ORDER BY id LIMIT 1",
    )
    .bind(&m.raw_sha256)
    .bind(&m.mailbox)
    .bind(&m.message_id)
    .bind(i64::from(m.uidvalidity))
    .bind(m.id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Settle a rescanned copy of message `first` (see `handled_copy`): no reply, moved where the first went.
pub async fn settle_copy(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    first: i64,
    target_mailbox: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE messages SET state = 'ignored', target_mailbox = $3, updated_at = now(),
             reason = 'already handled as message ' || $2 || ' (the mailbox was renumbered: new UIDVALIDITY)'
         WHERE id = $1",
    )
    .bind(id)
    .bind(first)
    .bind(target_mailbox)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An earlier message with the same Message-ID from the same sender (a resend of the very same mail), if any.
pub async fn earlier_message_from(
    tx: &mut Transaction<'_, Postgres>,
    message_id: &str,
    sender: &str,
    before: i64,
) -> Result<Option<(i64, DateTime<Utc>)>> {
    let row = sqlx::query(
        "SELECT id, received_at FROM messages
         WHERE message_id = $1 AND lower(sender) = lower($2) AND id < $3 AND state <> 'received'
         ORDER BY id LIMIT 1",
    )
    .bind(clean_message_id(message_id))
    .bind(clean_address(sender))
    .bind(before)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

pub async fn finish_message(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    state: MessageState,
    reason: Option<&str>,
    target_mailbox: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE messages SET state = $2, reason = $3, target_mailbox = $4, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(state.as_str())
        .bind(reason.map(|r| clean_text(r, MAX_TEXT_CHARS)))
        .bind(target_mailbox)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Put a message back for another attempt `after` from now (a transient failure), saying why.
pub async fn release_message(tx: &mut Transaction<'_, Postgres>, id: i64, reason: &str, after: Duration) -> Result<()> {
    sqlx::query(
        "UPDATE messages SET state = 'received', reason = $2, next_attempt_at = now() + make_interval(secs => $3),
             updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(clean_text(reason, MAX_TEXT_CHARS))
    .bind(after.as_secs_f64())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Put a locked message back untouched (the service is stopping): due at once, and the attempt that was
/// interrupted on purpose not counted against it.
pub async fn put_back(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE messages SET attempts = greatest(attempts - 1, 0), next_attempt_at = now(), updated_at = now(),
             reason = 'put back unfinished when the service stopped'
         WHERE id = $1 AND state = 'received'",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// When the next message retry is due, if any message waits for one.
pub async fn next_message_retry(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar("SELECT min(next_attempt_at) FROM messages WHERE state = 'received'").fetch_one(pool).await?)
}

/// The state of each of `ids`, `None` for ids no message has (for `reprocess` to say why it queued nothing).
pub async fn message_states(pool: &PgPool, ids: &[i64]) -> Result<Vec<(i64, Option<String>)>> {
    let rows = sqlx::query("SELECT i, m.state FROM unnest($1::bigint[]) i LEFT JOIN messages m ON m.id = i")
        .bind(ids)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Send failed or quarantined messages through again: back to `received`, and back into the inbox flow.
/// Their earlier outcome rows stay; the unique keys keep a second pass from duplicating invoices or replies.
pub async fn reprocess(pool: &PgPool, ids: &[i64]) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE messages SET state = 'received', reason = 'reprocess requested', attempts = 0, operator_release = true,
             next_attempt_at = now(), updated_at = now()
         WHERE id = ANY($1) AND state IN ('failed', 'quarantined', 'ignored')",
    )
    .bind(ids)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
