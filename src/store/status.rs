//! What `status` and the metrics show: counts, backlogs, problem messages and the oldest waiting mail.

use anyhow::Result;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

/// Messages put back after a transient failure and waiting for their next attempt, and when the first is due
/// (for `status`).
pub async fn retry_backlog(pool: &PgPool) -> Result<(i64, Option<DateTime<Utc>>)> {
    let row = sqlx::query(
        "SELECT count(*), min(next_attempt_at) FROM messages WHERE state = 'received' AND attempts > 0
             AND next_attempt_at > now()",
    )
    .fetch_one(pool)
    .await?;
    Ok((row.get(0), row.get(1)))
}

/// The earliest moment something becomes due: a message retry or an outbox delivery.
pub async fn next_wakeup(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT least((SELECT min(next_attempt_at) FROM messages WHERE state = 'received'),
                      (SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'))",
    )
    .fetch_one(pool)
    .await?)
}

/// Messages waiting for extraction (due or not) and mails waiting in the outbox, for the metrics.
pub async fn backlog(pool: &PgPool) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM messages WHERE state = 'received'),
                (SELECT count(*) FROM outbox WHERE state = 'pending')",
    )
    .fetch_one(pool)
    .await?;
    Ok((row.get(0), row.get(1)))
}

pub async fn pending_mail_count(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query("SELECT count(*) FROM outbox WHERE state = 'pending'").fetch_one(pool).await?.get(0))
}

pub async fn state_counts(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT state, count(*) FROM messages GROUP BY state ORDER BY state").fetch_all(pool).await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProblemMessage {
    pub id: i64,
    pub state: String,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

pub async fn problem_messages(pool: &PgPool, limit: i64) -> Result<Vec<ProblemMessage>> {
    Ok(sqlx::query_as(
        "SELECT id, state, sender, subject, reason, updated_at FROM messages
         WHERE state IN ('failed', 'quarantined') ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub async fn undeliverable_mail(pool: &PgPool, limit: i64) -> Result<Vec<(i64, Vec<String>, Option<String>)>> {
    let rows =
        sqlx::query("SELECT id, recipients, last_error FROM outbox WHERE state = 'failed' ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// The oldest mail still waiting in the outbox, for `status`: the one every reply behind it may be waiting for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingMail {
    pub id: i64,
    pub kind: String,
    pub recipients: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

pub async fn oldest_pending_mail(pool: &PgPool) -> Result<Option<PendingMail>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, recipients, created_at, attempts, next_attempt_at, last_error FROM outbox
         WHERE state = 'pending' ORDER BY id LIMIT 1",
    )
    .fetch_optional(pool)
    .await?)
}
