//! The `attachments` and `invoices` tables: what each document was read as, and the supplier's history that the
//! fraud signals compare against.

use anyhow::Result;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::extract::Extraction;

use super::{clean_address, clean_extraction, clean_json, clean_message_id, clean_text, MAX_TEXT_CHARS};

#[derive(Debug, Clone, sqlx::FromRow)]
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
    Ok(sqlx::query_as(
        "SELECT id, invoice_number, created_at FROM invoices
         WHERE sender = $1 AND attachment_sha256 = $2 AND document_index = $3",
    )
    .bind(clean_address(sender))
    .bind(sha256)
    .bind(index)
    .fetch_optional(&mut **tx)
    .await?)
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
