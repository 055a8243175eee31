//! Every SQL statement the service runs, one small function each. The message state machine lives here:
//!
//! ```text
//! received ──▶ processed   (at least one invoice stored; reply and confirmations queued)
//!          ├─▶ failed      (nothing usable; an error reply queued)
//!          ├─▶ ignored     (auto-generated mail without an invoice; nobody is answered)
//!          └─▶ quarantined (an operator must look: the reason says why)
//! ```
//! Every transition out of `received` happens in one transaction with the rows it produces, so a crash leaves a
//! message either untouched or completely handled. After that transition the message's replies wait in `outbox`
//! (`pending` → `sent` | `failed`), and `archived_at` records that the IMAP copy was moved to its folder:
//!
//! ```text
//! received ──(extract; one transaction)──▶ processed | failed | ignored | quarantined
//!          ──▶ outbox rows sent ──▶ archived_at set (IMAP MOVE done)
//! ```
//! Extraction results are not kept on their own: extraction is a pure function of the stored bytes, so a crash
//! before the commit only costs running it again.
//!
//! A worker holds a message while it handles it with a transaction-scoped advisory lock (`claim_message`): a second
//! worker skips it, and a worker that dies drops its connection and with it the lock, so nothing waits for a lease
//! to expire. Header values from the internet are cleaned (`clean_text`) before they are stored or compared,
//! because Postgres `text` cannot hold NUL and an index entry must stay small.

use anyhow::{Context, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;

use crate::extract::Extraction;

pub mod accountants;
mod alerts;
mod invoices;
pub mod keys;
pub mod ledger;
mod mailbox;
mod messages;
mod outbox;
mod status;

pub use alerts::*;
pub use invoices::*;
pub use mailbox::*;
pub use messages::*;
pub use outbox::*;
pub use status::*;
/// How long to wait for a pooled connection before the step fails and is retried.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Bounds for header values we store and index (a btree entry must stay under about 2.7 kB).
pub const MAX_MESSAGE_ID_CHARS: usize = 500;

pub const MAX_ADDRESS_CHARS: usize = 320;

pub const MAX_TEXT_CHARS: usize = 4000;

/// A string Postgres can store and index: NUL removed (`text` cannot hold it), at most `max_chars` characters.
pub fn clean_text(s: &str, max_chars: usize) -> String {
    s.chars().filter(|c| *c != '\0').take(max_chars).collect()
}

/// A Message-ID as stored and compared: trimmed, without angle brackets, cleaned.
pub fn clean_message_id(id: &str) -> String {
    clean_text(id.trim().trim_matches(['<', '>']).trim(), MAX_MESSAGE_ID_CHARS)
}

pub fn clean_address(a: &str) -> String {
    clean_text(a.trim(), MAX_ADDRESS_CHARS)
}

/// Remove NUL from every string in a JSON value: `jsonb` refuses `\u0000`.
pub fn clean_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains('\0') => s.retain(|c| c != '\0'),
        serde_json::Value::Array(a) => a.iter_mut().for_each(clean_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(clean_json),
        _ => {}
    }
}

/// An extraction whose strings Postgres can store (a hostile document can put NUL in any field).
pub fn clean_extraction(e: Extraction) -> Extraction {
    let Ok(mut v) = serde_json::to_value(&e) else { return e };
    let before = v.clone();
    clean_json(&mut v);
    if v == before {
        return e;
    }
    serde_json::from_value(v).unwrap_or(e)
}

pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(url).context("database.url is not a valid Postgres URL")?;
    let (host, port) = (options.get_host().to_string(), options.get_port());
    match PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
    {
        Ok(pool) => Ok(pool),
        // The pool only says it timed out; a plain connect says why (refused, no route, unknown host).
        Err(sqlx::Error::PoolTimedOut) => {
            let why = match tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::TcpStream::connect((host.as_str(), port)),
            )
            .await
            {
                Ok(Err(e)) => e.to_string().to_lowercase(),
                Ok(Ok(_)) => format!("no answer within {} s", ACQUIRE_TIMEOUT.as_secs()),
                Err(_) => "no answer within 5 s".into(),
            };
            Err(anyhow::anyhow!("cannot connect to Postgres at {host}:{port}: {why}"))
        }
        Err(e) => Err(anyhow::anyhow!("cannot connect to Postgres at {host}:{port}: {e}")),
    }
}

pub async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR.run(pool).await.context("applying migrations")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    Received,
    Processed,
    Failed,
    Ignored,
    Quarantined,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Received => "received",
            MessageState::Processed => "processed",
            MessageState::Failed => "failed",
            MessageState::Ignored => "ignored",
            MessageState::Quarantined => "quarantined",
        }
    }
}

/// How many of the oldest due messages one claim looks at. Each worker process holds at most a few at once, so
/// this only has to exceed the messages in hand across all processes.
const CLAIM_WINDOW: i64 = 256;

/// Run a claim query (`CLAIM_MESSAGE`, `CLAIM_OUTBOX`): the id now locked for this transaction, if any.
async fn lock_oldest_free(tx: &mut Transaction<'_, Postgres>, sql: &'static str, class: i32) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(sql).bind(class).bind(CLAIM_WINDOW).fetch_optional(&mut **tx).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_made_storable() {
        assert_eq!(clean_text("a\0b", 10), "ab");
        assert_eq!(clean_text(&"é".repeat(600), MAX_MESSAGE_ID_CHARS).chars().count(), MAX_MESSAGE_ID_CHARS);
        assert_eq!(clean_message_id("  <abc@x.test> "), "abc@x.test");
        let mut v = serde_json::json!({"a": ["x\0y", {"b": "\0"}], "n": 1});
        clean_json(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["xy", {"b": ""}], "n": 1}));
    }

    #[test]
    fn an_extraction_with_nul_bytes_can_be_stored() {
        let mut e = Extraction::empty("f\0.pdf");
        e.invoice_number = Some("A\0-1".into());
        let clean = clean_extraction(e);
        assert_eq!(clean.invoice_number.as_deref(), Some("A-1"));
        assert_eq!(clean.file, "f.pdf");
    }
}
