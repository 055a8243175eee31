//! Quarantined mail waiting for the accountants' alert digest.

use anyhow::Result;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;

/// Note that quarantined message `id` waits for the next alert digest.
pub async fn mark_alert_pending(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<()> {
    sqlx::query("UPDATE messages SET alert_pending = true WHERE id = $1").bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// A quarantined message as the alert digest lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingAlert {
    pub id: i64,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub reason: Option<String>,
}

/// Messages waiting for an alert digest, locked for this transaction (another process skips them), when no
/// digest went out within `period`; empty otherwise.
pub async fn take_pending_alerts(
    tx: &mut Transaction<'_, Postgres>,
    period: Duration,
    limit: i64,
) -> Result<Vec<PendingAlert>> {
    let recent: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE kind = 'alert' AND created_at > now() - make_interval(secs => $1))",
    )
    .bind(period.as_secs_f64())
    .fetch_one(&mut **tx)
    .await?;
    if recent {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(
        "SELECT id, sender, subject, message_id, reason FROM messages WHERE alert_pending
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn clear_pending_alerts(tx: &mut Transaction<'_, Postgres>, ids: &[i64]) -> Result<()> {
    sqlx::query("UPDATE messages SET alert_pending = false WHERE id = ANY($1)").bind(ids).execute(&mut **tx).await?;
    Ok(())
}

/// When the next alert digest may go out, if messages wait for one.
pub async fn next_alert_digest(pool: &PgPool, period: Duration) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM messages WHERE alert_pending)
                     THEN coalesce((SELECT max(created_at) FROM outbox WHERE kind = 'alert') + make_interval(secs => $1),
                                   now())
                END",
    )
    .bind(period.as_secs_f64())
    .fetch_one(pool)
    .await?)
}
