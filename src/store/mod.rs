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
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::str::FromStr;
use std::time::Duration;

use crate::extract::Extraction;

pub mod accountants;
pub mod keys;
pub mod ledger;

/// How long to wait for a pooled connection before the step fails and is retried.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The first key of the advisory locks that mark a message as being handled (the second is its id).
const MESSAGE_LOCK_CLASS: i32 = 0x1e_4e0c;
/// The same for an outbox mail being sent.
const OUTBOX_LOCK_CLASS: i32 = 0x1e_4e0d;
/// The session-level advisory lock held by the one process that talks IMAP for a mailbox (the second key is
/// `hashtext(mailbox)`).
const IMAP_LOCK_CLASS: i32 = 0x1e_4e0e;
/// The `application_name` of the connection holding the IMAP lock, so `status` can say who holds it.
const IMAP_OWNER_APP: &str = "invoice-intake imap owner";
/// A liveness check of the lock's connection answers quickly or the connection is gone.
const LOCK_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
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

// ---- mailbox state ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxState {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

pub async fn mailbox_state(pool: &PgPool, mailbox: &str) -> Result<Option<MailboxState>> {
    let row = sqlx::query("SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = $1")
        .bind(mailbox)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| MailboxState { uidvalidity: r.get::<i64, _>(0) as u32, last_uid: r.get::<i64, _>(1) as u32 }))
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

// ---- who talks IMAP ----

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

// ---- messages ----

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

#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: i64,
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub message_id: Option<String>,
    pub raw: Vec<u8>,
    pub raw_sha256: String,
    pub size_bytes: u64,
    /// Attempts begun so far, this one included once `begin_attempt` counted it.
    pub attempts: i32,
    pub received_at: DateTime<Utc>,
    /// An operator reviewed this message and sent it through again (`reprocess`): its sender is vouched for.
    pub operator_release: bool,
}

/// How many of the oldest due messages one claim looks at. Each worker process holds at most a few at once, so
/// this only has to exceed the messages in hand across all processes.
const CLAIM_WINDOW: i64 = 256;

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

/// The oldest due messages, the lock tried on each in id order. The LIMIT in the subquery keeps Postgres from
/// pushing the lock call down into the scan, and the outer LIMIT stops at the first lock taken.
const CLAIM_MESSAGE: &str =
    "SELECT id FROM (SELECT id FROM messages WHERE state = 'received' AND next_attempt_at <= now()
                                              ORDER BY id LIMIT $2) due
                              WHERE pg_try_advisory_xact_lock($1, (id % 2147483647)::int) LIMIT 1";
/// The same for due outbox mail.
const CLAIM_OUTBOX: &str = "SELECT id FROM (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= now()
                                             ORDER BY id LIMIT $2) due
                             WHERE pg_try_advisory_xact_lock($1, (id % 2147483647)::int) LIMIT 1";

/// Run a claim query (`CLAIM_MESSAGE`, `CLAIM_OUTBOX`): the id now locked for this transaction, if any.
async fn lock_oldest_free(tx: &mut Transaction<'_, Postgres>, sql: &'static str, class: i32) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(sql).bind(class).bind(CLAIM_WINDOW).fetch_optional(&mut **tx).await?)
}

async fn read_claimed(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<Option<StoredMessage>> {
    // Read after taking the lock: a worker that finished it before committed first, and we see that.
    let row = sqlx::query(
        "SELECT id, mailbox, uidvalidity, uid, message_id, raw, attempts, received_at, size_bytes, operator_release,
                raw_sha256
         FROM messages WHERE id = $1 AND state = 'received' AND next_attempt_at <= now()",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| StoredMessage {
        id: r.get(0),
        mailbox: r.get(1),
        uidvalidity: r.get::<i64, _>(2) as u32,
        uid: r.get::<i64, _>(3) as u32,
        message_id: r.get(4),
        raw: r.get(5),
        attempts: r.get(6),
        received_at: r.get(7),
        size_bytes: r.get::<i64, _>(8) as u64,
        operator_release: r.get(9),
        raw_sha256: r.get(10),
    }))
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

/// An earlier message with the same Message-ID (a resend of the very same mail), if any.
pub async fn earlier_message_with_id(
    tx: &mut Transaction<'_, Postgres>,
    message_id: &str,
    before: i64,
) -> Result<Option<(i64, DateTime<Utc>)>> {
    let row = sqlx::query(
        "SELECT id, received_at FROM messages WHERE message_id = $1 AND id < $2 AND state <> 'received'
         ORDER BY id LIMIT 1",
    )
    .bind(clean_message_id(message_id))
    .bind(before)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

#[derive(Debug, Clone)]
pub struct ExistingInvoice {
    pub id: i64,
    pub invoice_number: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn invoice_by_document(
    tx: &mut Transaction<'_, Postgres>,
    sender: &str,
    sha256: &str,
    index: i32,
) -> Result<Option<ExistingInvoice>> {
    let row = sqlx::query(
        "SELECT id, invoice_number, created_at FROM invoices
         WHERE sender = $1 AND attachment_sha256 = $2 AND document_index = $3",
    )
    .bind(clean_address(sender))
    .bind(sha256)
    .bind(index)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| ExistingInvoice { id: r.get(0), invoice_number: r.get(1), created_at: r.get(2) }))
}

pub struct NewAttachment<'a> {
    pub message_ref: i64,
    pub position: i32,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub status: &'a str,
    pub error_code: Option<&'a str>,
    pub result: serde_json::Value,
}

pub async fn insert_attachment(tx: &mut Transaction<'_, Postgres>, a: &NewAttachment<'_>) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO attachments (message_ref, position, filename, content_type, size_bytes, sha256, status, error_code, result)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (message_ref, position) DO UPDATE SET status = EXCLUDED.status, error_code = EXCLUDED.error_code,
             result = EXCLUDED.result
         RETURNING id",
    )
    .bind(a.message_ref)
    .bind(a.position)
    .bind(clean_text(a.filename, MAX_TEXT_CHARS))
    .bind(a.content_type)
    .bind(a.size_bytes)
    .bind(a.sha256)
    .bind(a.status)
    .bind(a.error_code)
    .bind({
        let mut v = a.result.clone();
        clean_json(&mut v);
        v
    })
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.get(0))
}

/// Where an invoice came from; `(sender, sha256, index)` is its identity.
pub struct InvoiceOrigin<'a> {
    pub message_ref: i64,
    pub attachment_ref: i64,
    pub message_id: Option<&'a str>,
    pub sender: &'a str,
    pub sha256: &'a str,
    /// The invoice's place in its file (a Facturae batch holds several).
    pub index: i32,
}

/// The columns of an invoice row that come from its extraction, in the order `InvoiceFields::bind` binds them.
/// Storing an invoice and correcting one write the same columns from the same values.
pub const FIELD_COLUMNS: [&str; 18] = [
    "document_type",
    "invoice_number",
    "issue_date",
    "due_date",
    "currency",
    "supplier_name",
    "supplier_tax_id",
    "supplier_iban",
    "customer_name",
    "customer_tax_id",
    "net_amount",
    "tax_amount",
    "total_amount",
    "amount_due",
    "result",
    "supplier_key",
    "number_key",
    "variant_key",
];

/// An extraction as the invoice row's columns: cleaned for Postgres, with its duplicate keys.
pub struct InvoiceFields {
    e: Extraction,
    result: serde_json::Value,
    keys: crate::store::keys::InvoiceKeys,
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

impl InvoiceFields {
    pub fn of(e: &Extraction, sender: &str) -> Result<InvoiceFields> {
        let e = clean_extraction(e.clone());
        let keys = crate::store::keys::InvoiceKeys::of(&e, sender);
        let result = serde_json::to_value(&e)?;
        Ok(InvoiceFields { e, result, keys })
    }

    /// The extraction's `source`, as stored.
    pub fn source(&self) -> Option<&str> {
        self.result.get("source").and_then(|v| v.as_str())
    }

    /// `q` with the values of `FIELD_COLUMNS` bound, in that order.
    pub fn bind<'q>(&'q self, q: PgQuery<'q>) -> PgQuery<'q> {
        let e = &self.e;
        let supplier = e.supplier.as_ref();
        let customer = e.customer.as_ref();
        q.bind(self.result.get("document_type").and_then(|v| v.as_str()))
            .bind(e.display_number())
            .bind(e.issue_date)
            .bind(e.due_date)
            .bind(&e.currency)
            .bind(supplier.and_then(|p| p.name.as_deref()))
            .bind(supplier.and_then(|p| p.tax_id.as_deref()))
            .bind(supplier.and_then(|p| p.iban.as_deref()))
            .bind(customer.and_then(|p| p.name.as_deref()))
            .bind(customer.and_then(|p| p.tax_id.as_deref()))
            .bind(e.net_amount)
            .bind(e.tax_amount)
            .bind(e.total_amount)
            .bind(e.amount_due)
            .bind(&self.result)
            .bind(&self.keys.supplier)
            .bind(&self.keys.number)
            .bind(&self.keys.variant)
    }
}

/// `$from, $from+1, …` for `n` parameters.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Store one invoice. Returns its id, or `None` when the same sender already sent this very document, or the
/// same invoice is stored already (`store::keys`; a concurrent insert of it waits for the first to commit).
pub async fn insert_invoice(
    tx: &mut Transaction<'_, Postgres>,
    o: &InvoiceOrigin<'_>,
    e: &Extraction,
) -> Result<Option<i64>> {
    let fields = InvoiceFields::of(e, o.sender)?;
    let sql = format!(
        "INSERT INTO invoices (message_ref, attachment_ref, message_id, sender, attachment_sha256, document_index,
             source, {})
         VALUES ({}) ON CONFLICT DO NOTHING RETURNING id",
        FIELD_COLUMNS.join(", "),
        placeholders(1, 7 + FIELD_COLUMNS.len())
    );
    let q = sqlx::query(&sql)
        .bind(o.message_ref)
        .bind(o.attachment_ref)
        .bind(o.message_id.map(clean_message_id))
        .bind(clean_address(o.sender))
        .bind(o.sha256)
        .bind(o.index)
        .bind(fields.source());
    let row = fields.bind(q).fetch_optional(&mut **tx).await?;
    Ok(row.map(|r| r.get(0)))
}

/// The supplier's earlier invoices: same tax ID, or same sender when there is none. For the fraud signals.
pub async fn supplier_history(
    tx: &mut Transaction<'_, Postgres>,
    tax_id: Option<&str>,
    sender: &str,
    excluding: i64,
) -> Result<Vec<crate::fraud::PastInvoice>> {
    let rows = sqlx::query(
        "SELECT supplier_tax_id, sender, invoice_number, total_amount, supplier_iban, issue_date FROM invoices
         WHERE id <> $3 AND (($1::text IS NOT NULL AND supplier_tax_id = $1) OR sender = $2)
         ORDER BY id DESC LIMIT 500",
    )
    .bind(tax_id)
    .bind(clean_address(sender))
    .bind(excluding)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| crate::fraud::PastInvoice {
            supplier_tax_id: r.get(0),
            sender: r.get(1),
            invoice_number: r.get(2),
            total_amount: r.get(3),
            iban: r.get(4),
            issue_date: r.get(5),
        })
        .collect())
}

pub async fn set_fraud_signals(
    tx: &mut Transaction<'_, Postgres>,
    invoice_id: i64,
    signals: &serde_json::Value,
) -> Result<()> {
    sqlx::query("UPDATE invoices SET fraud_signals = $2 WHERE id = $1")
        .bind(invoice_id)
        .bind(signals)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Stored invoices that raised fraud signals, newest first, for `status`.
pub async fn flagged_invoices(
    pool: &PgPool,
    limit: i64,
) -> Result<Vec<(i64, Option<String>, String, serde_json::Value)>> {
    let rows = sqlx::query(
        "SELECT id, invoice_number, sender, fraud_signals FROM invoices
         WHERE fraud_signals <> '[]'::jsonb ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
}

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

/// When the next outbox delivery is due, if any mail waits.
pub async fn next_delivery(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar("SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'").fetch_one(pool).await?)
}

/// When the next message retry is due, if any message waits for one.
pub async fn next_message_retry(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar("SELECT min(next_attempt_at) FROM messages WHERE state = 'received'").fetch_one(pool).await?)
}

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

// ---- archiving (moving handled mail out of the inbox) ----

#[derive(Debug, Clone)]
pub struct ToArchive {
    pub id: i64,
    pub uidvalidity: u32,
    pub uid: u32,
    pub target_mailbox: String,
}

/// Handled messages of `mailbox` not yet moved. Only messages whose outcome is durable are listed, so the
/// IMAP copy is never moved before its results are safe (unlike Odoo, which flags mail before parsing it).
pub async fn awaiting_archive(pool: &PgPool, mailbox: &str) -> Result<Vec<ToArchive>> {
    let rows = sqlx::query(
        "SELECT id, uidvalidity, uid, target_mailbox FROM messages
         WHERE mailbox = $1 AND state <> 'received' AND target_mailbox IS NOT NULL AND archived_at IS NULL
         ORDER BY id",
    )
    .bind(mailbox)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ToArchive {
            id: r.get(0),
            uidvalidity: r.get::<i64, _>(1) as u32,
            uid: r.get::<i64, _>(2) as u32,
            target_mailbox: r.get(3),
        })
        .collect())
}

pub async fn mark_archived(pool: &PgPool, ids: &[i64]) -> Result<()> {
    sqlx::query("UPDATE messages SET archived_at = now() WHERE id = ANY($1)").bind(ids).execute(pool).await?;
    Ok(())
}

// ---- outbox ----

#[derive(Debug, Clone)]
pub struct OutboxMail {
    pub id: i64,
    pub kind: String,
    pub mail_message_id: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub body: Vec<u8>,
    pub attempts: i32,
}

/// Take the oldest due outbox mail nobody is sending, for as long as `tx` lives (a transaction-scoped advisory
/// lock, skipped by the others as in `claim_message`). `None` when nothing is due and free.
pub async fn claim_outbox(tx: &mut Transaction<'_, Postgres>) -> Result<Option<OutboxMail>> {
    for _ in 0..8 {
        let Some(id) = lock_oldest_free(tx, CLAIM_OUTBOX, OUTBOX_LOCK_CLASS).await? else { return Ok(None) };
        // Read after taking the lock: a sender that finished it before committed first, and we see that.
        let row = sqlx::query(
            "SELECT id, kind, mail_message_id, envelope_from, recipients, body, attempts FROM outbox
             WHERE id = $1 AND state = 'pending' AND next_attempt_at <= now()",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(r) = row {
            return Ok(Some(OutboxMail {
                id: r.get(0),
                kind: r.get(1),
                mail_message_id: r.get(2),
                envelope_from: r.get(3),
                recipients: r.get(4),
                body: r.get(5),
                attempts: r.get(6),
            }));
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

// ---- operator views ----

pub async fn state_counts(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT state, count(*) FROM messages GROUP BY state ORDER BY state").fetch_all(pool).await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[derive(Debug, Clone)]
pub struct ProblemMessage {
    pub id: i64,
    pub state: String,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

pub async fn problem_messages(pool: &PgPool, limit: i64) -> Result<Vec<ProblemMessage>> {
    let rows = sqlx::query(
        "SELECT id, state, sender, subject, reason, updated_at FROM messages
         WHERE state IN ('failed', 'quarantined') ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ProblemMessage {
            id: r.get(0),
            state: r.get(1),
            sender: r.get(2),
            subject: r.get(3),
            reason: r.get(4),
            updated_at: r.get(5),
        })
        .collect())
}

pub async fn undeliverable_mail(pool: &PgPool, limit: i64) -> Result<Vec<(i64, Vec<String>, Option<String>)>> {
    let rows =
        sqlx::query("SELECT id, recipients, last_error FROM outbox WHERE state = 'failed' ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
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

/// The state of each of `ids`, `None` for ids no message has (for `reprocess` to say why it queued nothing).
pub async fn message_states(pool: &PgPool, ids: &[i64]) -> Result<Vec<(i64, Option<String>)>> {
    let rows = sqlx::query("SELECT i, m.state FROM unnest($1::bigint[]) i LEFT JOIN messages m ON m.id = i")
        .bind(ids)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Note that quarantined message `id` waits for the next alert digest.
pub async fn mark_alert_pending(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<()> {
    sqlx::query("UPDATE messages SET alert_pending = true WHERE id = $1").bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// A quarantined message as the alert digest lists it.
#[derive(Debug, Clone)]
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
    let rows = sqlx::query(
        "SELECT id, sender, subject, message_id, reason FROM messages WHERE alert_pending
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PendingAlert {
            id: r.get(0),
            sender: r.get(1),
            subject: r.get(2),
            message_id: r.get(3),
            reason: r.get(4),
        })
        .collect())
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

/// The oldest mail still waiting in the outbox, for `status`: the one every reply behind it may be waiting for.
#[derive(Debug, Clone)]
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
    let row = sqlx::query(
        "SELECT id, kind, recipients, created_at, attempts, next_attempt_at, last_error FROM outbox
         WHERE state = 'pending' ORDER BY id LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| PendingMail {
        id: r.get(0),
        kind: r.get(1),
        recipients: r.get(2),
        created_at: r.get(3),
        attempts: r.get(4),
        next_attempt_at: r.get(5),
        last_error: r.get(6),
    }))
}

pub async fn last_imap_contact(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query("SELECT max(last_contact) FROM mailbox_state").fetch_one(pool).await?.get(0))
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
