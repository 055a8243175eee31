//! The statements behind mail from the accountants and the daily digest: which invoices a confirmation showed,
//! notes on invoices, the digest's lease, and the day's messages.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::{clean_address, clean_message_id, clean_text, MAX_TEXT_CHARS};

/// Record that the confirmation `mail_message_id` (as queued, in angle brackets) shows these invoices.
pub async fn remember_confirmation(
    tx: &mut Transaction<'_, Postgres>,
    mail_message_id: &str,
    invoice_refs: &[i64],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO confirmation_invoices (mail_message_id, invoice_ref) SELECT $1, unnest($2::bigint[])
         ON CONFLICT DO NOTHING",
    )
    .bind(mail_message_id)
    .bind(invoice_refs)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The invoices shown by the confirmations among `ids` (a mail's In-Reply-To and References), oldest first.
pub async fn invoices_confirmed_by(tx: &mut Transaction<'_, Postgres>, ids: &[String]) -> Result<Vec<i64>> {
    let ids: Vec<String> = ids.iter().take(200).map(|i| format!("<{}>", clean_message_id(i))).collect();
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT invoice_ref FROM confirmation_invoices WHERE mail_message_id = ANY($1) ORDER BY invoice_ref",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn add_note(
    tx: &mut Transaction<'_, Postgres>,
    invoice_ref: i64,
    message_ref: i64,
    author: &str,
    body: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO invoice_notes (invoice_ref, message_ref, author, body) VALUES ($1, $2, $3, $4)")
        .bind(invoice_ref)
        .bind(message_ref)
        .bind(clean_address(author))
        .bind(clean_text(body, MAX_TEXT_CHARS))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A note on an invoice, for `invoices show`.
#[derive(Debug, Clone)]
pub struct Note {
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

pub async fn notes(pool: &PgPool, invoice_ref: i64) -> Result<Vec<Note>> {
    let rows = sqlx::query("SELECT author, body, created_at FROM invoice_notes WHERE invoice_ref = $1 ORDER BY id")
        .bind(invoice_ref)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| Note { author: r.get(0), body: r.get(1), created_at: r.get(2) }).collect())
}

/// Has some worker taken the digest of `day` already?
pub async fn digest_taken(pool: &PgPool, day: NaiveDate) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM daily_digests WHERE day = $1)")
        .bind(day)
        .fetch_one(pool)
        .await?)
}

/// Take the lease of `day`'s digest: true for the one transaction whose row goes in. A second worker's INSERT
/// waits for the first transaction and then inserts nothing.
pub async fn take_digest_lease(tx: &mut Transaction<'_, Postgres>, day: NaiveDate, taken_by: &str) -> Result<bool> {
    let taken = sqlx::query("INSERT INTO daily_digests (day, taken_by) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING")
        .bind(day)
        .bind(taken_by)
        .execute(&mut **tx)
        .await?;
    Ok(taken.rows_affected() == 1)
}

/// Link `day`'s lease to the digest mail queued with `mail_message_id`.
pub async fn set_digest_mail(tx: &mut Transaction<'_, Postgres>, day: NaiveDate, mail_message_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE daily_digests SET outbox_ref = (SELECT id FROM outbox WHERE mail_message_id = $2) WHERE day = $1",
    )
    .bind(day)
    .bind(mail_message_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A message as the digest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageLine {
    pub id: i64,
    pub state: String,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub reason: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// Messages received in `[from, before)` that ended in one of `states`, oldest first.
pub async fn messages_received(
    pool: &PgPool,
    from: DateTime<Utc>,
    before: DateTime<Utc>,
    states: &[&str],
) -> Result<Vec<MessageLine>> {
    let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    let rows = sqlx::query(
        "SELECT id, state, sender, subject, reason, received_at FROM messages
         WHERE received_at >= $1 AND received_at < $2 AND state = ANY($3) ORDER BY id",
    )
    .bind(from)
    .bind(before)
    .bind(&states)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| MessageLine {
            id: r.get(0),
            state: r.get(1),
            sender: r.get(2),
            subject: r.get(3),
            reason: r.get(4),
            received_at: r.get(5),
        })
        .collect())
}

/// The first message received in `[from, before)`: the digest's outbox row refers to it.
pub async fn first_message_received(pool: &PgPool, from: DateTime<Utc>, before: DateTime<Utc>) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT min(id) FROM messages WHERE received_at >= $1 AND received_at < $2")
        .bind(from)
        .bind(before)
        .fetch_one(pool)
        .await?)
}
