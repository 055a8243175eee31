//! The ledger's statements: finding an invoice by its content, review states, corrections with their audit
//! trail, the accountants' queries, and the supplier memory. One small function per statement.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::ExistingInvoice;
use crate::extract::Extraction;
use crate::store::keys::InvoiceKeys;
use crate::store::{InvoiceFields, FIELD_COLUMNS};

/// The stored invoice with the same supplier, number, total and date, if any (a copy with other bytes).
pub async fn invoice_by_content(
    tx: &mut Transaction<'_, Postgres>,
    keys: &InvoiceKeys,
) -> Result<Option<ExistingInvoice>> {
    let Some(number) = &keys.number else { return Ok(None) };
    let row = sqlx::query(
        "SELECT id, invoice_number, created_at FROM invoices
         WHERE supplier_key = $1 AND number_key = $2 AND variant_key = $3",
    )
    .bind(&keys.supplier)
    .bind(number)
    .bind(&keys.variant)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| ExistingInvoice { id: r.get(0), invoice_number: r.get(1), created_at: r.get(2) }))
}

pub async fn set_review(
    tx: &mut Transaction<'_, Postgres>,
    invoice_id: i64,
    state: &str,
    reasons: &serde_json::Value,
) -> Result<()> {
    sqlx::query("UPDATE invoices SET review_state = $2, review_reasons = $3 WHERE id = $1")
        .bind(invoice_id)
        .bind(state)
        .bind(reasons)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What `invoices list` and the exports select.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub state: Option<String>,
    pub supplier: Option<String>,
    /// Issue dates (the received date when the invoice shows none), for the exports.
    pub issued_from: Option<NaiveDate>,
    pub issued_to: Option<NaiveDate>,
    /// Received in `[received_from, received_before)`, for the daily digest (a local day's bounds).
    pub received_from: Option<DateTime<Utc>>,
    pub received_before: Option<DateTime<Utc>>,
}

/// One invoice as the accountants see it, corrections applied.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub id: i64,
    pub state: String,
    pub received_at: DateTime<Utc>,
    pub sender: String,
    pub source: Option<String>,
    pub document_type: Option<String>,
    pub supplier_name: Option<String>,
    pub supplier_tax_id: Option<String>,
    pub customer_name: Option<String>,
    pub customer_tax_id: Option<String>,
    pub invoice_number: Option<String>,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub currency: Option<String>,
    pub net_amount: Option<Decimal>,
    pub tax_amount: Option<Decimal>,
    pub total_amount: Option<Decimal>,
    pub amount_due: Option<Decimal>,
    pub iban: Option<String>,
    pub result: serde_json::Value,
    pub fraud_signals: serde_json::Value,
    pub review_reasons: serde_json::Value,
    pub message_ref: i64,
    pub attachment_ref: i64,
    pub document_index: i32,
}

const ROW_COLUMNS: &str = "i.id, i.review_state, m.received_at, i.sender, i.source, i.document_type, i.supplier_name,
    i.supplier_tax_id, i.customer_name, i.customer_tax_id, i.invoice_number, i.issue_date, i.due_date, i.currency,
    i.net_amount, i.tax_amount, i.total_amount, i.amount_due, i.supplier_iban, i.result, i.fraud_signals,
    i.review_reasons, i.message_ref, i.attachment_ref, i.document_index";

fn ledger_row(r: &sqlx::postgres::PgRow) -> LedgerRow {
    LedgerRow {
        id: r.get(0),
        state: r.get(1),
        received_at: r.get(2),
        sender: r.get(3),
        source: r.get(4),
        document_type: r.get(5),
        supplier_name: r.get(6),
        supplier_tax_id: r.get(7),
        customer_name: r.get(8),
        customer_tax_id: r.get(9),
        invoice_number: r.get(10),
        issue_date: r.get(11),
        due_date: r.get(12),
        currency: r.get(13),
        net_amount: r.get(14),
        tax_amount: r.get(15),
        total_amount: r.get(16),
        amount_due: r.get(17),
        iban: r.get(18),
        result: r.get(19),
        fraud_signals: r.get(20),
        review_reasons: r.get(21),
        message_ref: r.get(22),
        attachment_ref: r.get(23),
        document_index: r.get(24),
    }
}

/// Invoices matching `f`, oldest first.
pub async fn list_invoices(pool: &PgPool, f: &Filter) -> Result<Vec<LedgerRow>> {
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM invoices i JOIN messages m ON m.id = i.message_ref
         WHERE ($1::date IS NULL OR m.received_at >= $1::date)
           AND ($2::date IS NULL OR m.received_at < $2::date + 1)
           AND ($3::text IS NULL OR i.review_state = $3)
           AND ($4::text IS NULL OR i.supplier_name ILIKE '%' || $4 || '%' OR i.supplier_tax_id ILIKE '%' || $4 || '%'
                OR i.sender ILIKE '%' || $4 || '%')
           AND ($5::date IS NULL OR coalesce(i.issue_date, m.received_at::date) >= $5)
           AND ($6::date IS NULL OR coalesce(i.issue_date, m.received_at::date) <= $6)
           AND ($7::timestamptz IS NULL OR m.received_at >= $7)
           AND ($8::timestamptz IS NULL OR m.received_at < $8)
         ORDER BY i.id"
    );
    let rows = sqlx::query(&sql)
        .bind(f.since)
        .bind(f.until)
        .bind(&f.state)
        .bind(&f.supplier)
        .bind(f.issued_from)
        .bind(f.issued_to)
        .bind(f.received_from)
        .bind(f.received_before)
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(ledger_row).collect())
}

pub async fn invoice(pool: &PgPool, id: i64) -> Result<Option<LedgerRow>> {
    let sql = format!("SELECT {ROW_COLUMNS} FROM invoices i JOIN messages m ON m.id = i.message_ref WHERE i.id = $1");
    Ok(sqlx::query(&sql).bind(id).fetch_optional(pool).await?.as_ref().map(ledger_row))
}

/// The invoice's row for update, inside a correction's transaction.
pub async fn lock_invoice(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<Option<(serde_json::Value, String)>> {
    let row = sqlx::query("SELECT result, sender FROM invoices WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Write a corrected extraction over the invoice's fields and keys, with the review state it now has.
pub async fn update_fields(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    e: &Extraction,
    sender: &str,
    state: &str,
    reasons: &serde_json::Value,
) -> Result<()> {
    let fields = InvoiceFields::of(e, sender)?;
    let sets: Vec<String> = FIELD_COLUMNS.iter().enumerate().map(|(k, c)| format!("{c} = ${}", k + 4)).collect();
    let sql = format!("UPDATE invoices SET review_state = $2, review_reasons = $3, {} WHERE id = $1", sets.join(", "));
    let q = sqlx::query(&sql).bind(id).bind(state).bind(reasons);
    fields.bind(q).execute(&mut **tx).await?;
    Ok(())
}

pub struct NewCorrection<'a> {
    pub invoice_ref: i64,
    pub field: &'a str,
    pub old_value: Option<&'a str>,
    pub new_value: &'a str,
    pub corrected_by: &'a str,
    pub via: &'a str,
}

pub async fn insert_correction(tx: &mut Transaction<'_, Postgres>, c: &NewCorrection<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO invoice_corrections (invoice_ref, field, old_value, new_value, corrected_by, via)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(c.invoice_ref)
    .bind(c.field)
    .bind(c.old_value)
    .bind(c.new_value)
    .bind(c.corrected_by)
    .bind(c.via)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One entry of an invoice's audit trail.
#[derive(Debug, Clone)]
pub struct Correction {
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: String,
    pub corrected_by: String,
    pub via: String,
    pub corrected_at: DateTime<Utc>,
}

pub async fn corrections(pool: &PgPool, invoice_id: i64) -> Result<Vec<Correction>> {
    let rows = sqlx::query(
        "SELECT field, old_value, new_value, corrected_by, via, corrected_at FROM invoice_corrections
         WHERE invoice_ref = $1 ORDER BY id",
    )
    .bind(invoice_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Correction {
            field: r.get(0),
            old_value: r.get(1),
            new_value: r.get(2),
            corrected_by: r.get(3),
            via: r.get(4),
            corrected_at: r.get(5),
        })
        .collect())
}

pub async fn review_state(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT review_state FROM invoices WHERE id = $1").bind(id).fetch_optional(&mut **tx).await?)
}

/// Mark invoices approved; returns the ids that exist.
pub async fn approve<'e>(db: impl sqlx::PgExecutor<'e>, ids: &[i64]) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar("UPDATE invoices SET review_state = 'approved' WHERE id = ANY($1) RETURNING id")
        .bind(ids)
        .fetch_all(db)
        .await?)
}

/// The raw mail an invoice came in, and the attachment's place and name in it.
pub async fn original(pool: &PgPool, invoice_id: i64) -> Result<Option<(Vec<u8>, i32, String)>> {
    let row = sqlx::query(
        "SELECT m.raw, a.position, a.filename FROM invoices i JOIN messages m ON m.id = i.message_ref
         JOIN attachments a ON a.id = i.attachment_ref WHERE i.id = $1",
    )
    .bind(invoice_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}

pub async fn remember_hint(
    tx: &mut Transaction<'_, Postgres>,
    supplier_key: &str,
    field: &str,
    hint: &serde_json::Value,
    learned_from: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO supplier_memory (supplier_key, field, hint, learned_from) VALUES ($1, $2, $3, $4)
         ON CONFLICT (supplier_key, field) DO UPDATE SET hint = $3, learned_from = $4, updated_at = now()",
    )
    .bind(supplier_key)
    .bind(field)
    .bind(hint)
    .bind(learned_from)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn supplier_key_of(tx: &mut Transaction<'_, Postgres>, invoice_id: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT supplier_key FROM invoices WHERE id = $1")
        .bind(invoice_id)
        .fetch_optional(&mut **tx)
        .await?
        .flatten())
}

/// Hints learnt for the suppliers this address has sent invoices for (the extractor applies each only to its
/// own supplier).
pub async fn hints_for_sender(pool: &PgPool, sender: &str) -> Result<Vec<serde_json::Value>> {
    Ok(sqlx::query_scalar(
        "SELECT hint FROM supplier_memory WHERE supplier_key IN
             (SELECT DISTINCT supplier_key FROM invoices WHERE sender = $1 AND supplier_key IS NOT NULL)
         ORDER BY supplier_key, field LIMIT 100",
    )
    .bind(super::clean_address(sender))
    .fetch_all(pool)
    .await?)
}

/// Invoices per review state, for `status`.
pub async fn review_counts(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT review_state, count(*) FROM invoices GROUP BY review_state ORDER BY review_state")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}
