//! The `outbox` table: every mail we send waits here until the SMTP server took it, so a reply is never lost
//! nor sent twice.

use anyhow::Result;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;

use super::{clean_message_id, lock_oldest_free};

pub struct NewOutboxMail<'a> {
    pub message_ref: i64,
    pub kind: &'a str,
    pub mail_message_id: &'a str,
    pub envelope_from: &'a str,
    pub recipients: &'a [String],
    pub body: &'a [u8],
}

/// Queue a mail. The Message-ID is the idempotency key: queuing the same mail twice is a no-op.
pub async fn enqueue_mail(tx: &mut Transaction<'_, Postgres>, m: &NewOutboxMail<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (message_ref, kind, mail_message_id, envelope_from, recipients, body)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (mail_message_id) DO NOTHING",
    )
    .bind(m.message_ref)
    .bind(m.kind)
    .bind(m.mail_message_id)
    .bind(m.envelope_from)
    .bind(m.recipients)
    .bind(m.body)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// When the next outbox delivery is due, if any mail waits.
pub async fn next_delivery(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar("SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'").fetch_one(pool).await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxMail {
    pub id: i64,
    pub kind: String,
    pub mail_message_id: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub body: Vec<u8>,
    pub attempts: i32,
}

/// The same for an outbox mail being sent.
const OUTBOX_LOCK_CLASS: i32 = 0x1e_4e0d;

/// The same for due outbox mail.
const CLAIM_OUTBOX: &str = "SELECT id FROM (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= now()
                                             ORDER BY id LIMIT $2) due
                             WHERE pg_try_advisory_xact_lock($1, (id % 2147483647)::int) LIMIT 1";

/// Take the oldest due outbox mail nobody is sending, for as long as `tx` lives (a transaction-scoped advisory
/// lock, skipped by the others as in `claim_message`). `None` when nothing is due and free.
pub async fn claim_outbox(tx: &mut Transaction<'_, Postgres>) -> Result<Option<OutboxMail>> {
    for _ in 0..8 {
        let Some(id) = lock_oldest_free(tx, CLAIM_OUTBOX, OUTBOX_LOCK_CLASS).await? else { return Ok(None) };
        // Read after taking the lock: a sender that finished it before committed first, and we see that.
        let mail = sqlx::query_as(
            "SELECT id, kind, mail_message_id, envelope_from, recipients, body, attempts FROM outbox
             WHERE id = $1 AND state = 'pending' AND next_attempt_at <= now()",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        if mail.is_some() {
            return Ok(mail);
        }
    }
    Ok(None)
}

pub async fn mark_sent<'e>(db: impl sqlx::PgExecutor<'e>, id: i64) -> Result<()> {
    sqlx::query("UPDATE outbox SET state = 'sent', sent_at = now(), attempts = attempts + 1 WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn mark_retry<'e>(db: impl sqlx::PgExecutor<'e>, id: i64, error: &str, after: Duration) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
             next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(after.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

/// The SMTP server could not be reached while this mail was next: note why, without counting it against the mail.
pub async fn note_delivery_error<'e>(db: impl sqlx::PgExecutor<'e>, id: i64, error: &str) -> Result<()> {
    sqlx::query("UPDATE outbox SET last_error = $2 WHERE id = $1").bind(id).bind(error).execute(db).await?;
    Ok(())
}

pub async fn mark_undeliverable<'e>(db: impl sqlx::PgExecutor<'e>, id: i64, error: &str) -> Result<()> {
    sqlx::query("UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(db)
        .await?;
    Ok(())
}

/// One of the ids `ids` (without angle brackets) that is a mail we sent, if any: the mail naming it answers us.
pub async fn own_mail_among(tx: &mut Transaction<'_, Postgres>, ids: &[String]) -> Result<Option<String>> {
    let ids: Vec<String> = ids.iter().take(200).map(|i| format!("<{}>", clean_message_id(i))).collect();
    Ok(sqlx::query_scalar("SELECT mail_message_id FROM outbox WHERE mail_message_id = ANY($1) LIMIT 1")
        .bind(&ids)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Replies to `address` queued within the last hour about messages that stored no invoice.
pub async fn recent_replies_without_invoice(tx: &mut Transaction<'_, Postgres>, address: &str) -> Result<i64> {
    // Messages from one sender are handled in parallel slots; without this lock each transaction counts before
    // the others commit their replies and the budget is exceeded. Held until this transaction ends.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(lower($1)))").bind(address).execute(&mut **tx).await?;
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM outbox o
         WHERE o.kind = 'reply' AND lower($1) IN (SELECT lower(r) FROM unnest(o.recipients) r)
           AND o.created_at > now() - interval '1 hour'
           AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.message_ref = o.message_ref)",
    )
    .bind(address)
    .fetch_one(&mut **tx)
    .await?)
}
