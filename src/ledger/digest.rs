//! The daily digest's content: one local day's invoices with totals per supplier, those that need review, the
//! failed and quarantined mail, and the day's CSV (the ledger export's columns). `gather` reads it into a plain
//! struct; `render_text` is the plain-text renderer, and any other renderer takes the same struct.

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;

use super::export;
use crate::store::accountants::{self as db, MessageLine};
use crate::store::ledger::{self as ledger_db, Filter, LedgerRow};

/// Everything one day's digest shows.
#[derive(Debug, Clone)]
pub struct DigestData {
    /// The local day reported on.
    pub day: NaiveDate,
    /// The day's invoices, oldest first, corrections applied.
    pub invoices: Vec<LedgerRow>,
    /// Per supplier, biggest total first.
    pub per_supplier: Vec<SupplierTotal>,
    /// The day's invoices in the `needs_review` state.
    pub needs_review: Vec<LedgerRow>,
    pub failed: Vec<MessageLine>,
    pub quarantined: Vec<MessageLine>,
    /// The day's invoices as `export --format csv` writes them.
    pub csv: String,
    /// The first message of the day, if any: the digest's outbox row refers to it.
    pub first_message: Option<i64>,
}

impl DigestData {
    /// Nothing arrived that day.
    pub fn is_empty(&self) -> bool {
        self.first_message.is_none()
    }
}

/// One supplier's invoices of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierTotal {
    /// The supplier's name, else its tax ID, else the sender.
    pub supplier: String,
    pub tax_id: Option<String>,
    pub invoices: usize,
    /// Sum of the totals per currency (`EUR` when an invoice names none), in currency order.
    pub totals: Vec<(String, Decimal)>,
}

/// The bounds of local day `day` in `tz`, as instants.
pub fn day_bounds<Tz: TimeZone>(day: NaiveDate, tz: &Tz) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let at = |d: NaiveDate| {
        let midnight = d.and_hms_opt(0, 0, 0).context("midnight")?;
        // A day that starts in a DST gap starts at the first instant that exists.
        tz.from_local_datetime(&midnight)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(midnight + chrono::Duration::hours(1))).earliest())
            .map(|t| t.with_timezone(&Utc))
            .context("a local midnight that does not exist")
    };
    Ok((at(day)?, at(day.succ_opt().context("the day after")?)?))
}

/// Read local day `day`'s digest (in `tz`) from the ledger.
pub async fn gather<Tz: TimeZone>(pool: &PgPool, day: NaiveDate, tz: &Tz) -> Result<DigestData> {
    let (from, before) = day_bounds(day, tz)?;
    let filter = Filter { received_from: Some(from), received_before: Some(before), ..Default::default() };
    let invoices = ledger_db::list_invoices(pool, &filter).await?;
    let failed = db::messages_received(pool, from, before, &["failed"]).await?;
    let quarantined = db::messages_received(pool, from, before, &["quarantined"]).await?;
    let first_message = db::first_message_received(pool, from, before).await?;
    Ok(DigestData {
        day,
        per_supplier: per_supplier(&invoices),
        needs_review: invoices.iter().filter(|r| r.state == "needs_review").cloned().collect(),
        csv: export::csv(&invoices),
        invoices,
        failed,
        quarantined,
        first_message,
    })
}

pub fn per_supplier(rows: &[LedgerRow]) -> Vec<SupplierTotal> {
    let mut out: Vec<SupplierTotal> = Vec::new();
    for r in rows {
        let name = r.supplier_name.clone().or_else(|| r.supplier_tax_id.clone()).unwrap_or_else(|| r.sender.clone());
        let k = match out.iter().position(|s| s.supplier == name && s.tax_id == r.supplier_tax_id) {
            Some(k) => k,
            None => {
                out.push(SupplierTotal {
                    supplier: name,
                    tax_id: r.supplier_tax_id.clone(),
                    invoices: 0,
                    totals: Vec::new(),
                });
                out.len() - 1
            }
        };
        let s = &mut out[k];
        s.invoices += 1;
        if let Some(total) = r.total_amount {
            let currency = r.currency.clone().unwrap_or_else(|| "EUR".into());
            match s.totals.iter_mut().find(|(c, _)| *c == currency) {
                Some((_, sum)) => *sum += total,
                None => s.totals.push((currency, total)),
            }
            s.totals.sort();
        }
    }
    let biggest = |s: &SupplierTotal| s.totals.iter().map(|(_, t)| *t).max().unwrap_or_default();
    out.sort_by(|a, b| biggest(b).cmp(&biggest(a)).then_with(|| a.supplier.cmp(&b.supplier)));
    out
}

/// The digest as plain text: a subject and a body, in Spanish or English.
pub fn render_text(d: &DigestData, spanish: bool) -> (String, String) {
    let t = |es: &'static str, en: &'static str| if spanish { es } else { en };
    let day = d.day.format("%d/%m/%Y");
    let subject =
        format!("{} {day}: {} {}", t("Resumen del", "Digest of"), d.invoices.len(), t("facturas", "invoices"));
    let mut out = Vec::new();
    out.push(format!("{} {day}", t("Facturas recibidas el", "Invoices received on")));
    if d.per_supplier.is_empty() {
        out.push(format!("  {}", t("(ninguna)", "(none)")));
    }
    for s in &d.per_supplier {
        let totals: Vec<String> = s.totals.iter().map(|(c, t)| format!("{t} {c}")).collect();
        let id = s.tax_id.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
        out.push(format!("  {}{id}: {} × {}", s.supplier, s.invoices, totals.join(" + ")));
    }
    out.push(String::new());
    out.push(format!("{} ({})", t("Pendientes de revisión", "Needing review"), d.needs_review.len()));
    for r in &d.needs_review {
        let reasons: Vec<&str> = r.review_reasons.as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
        out.push(format!(
            "  #{} {} {} {}: {}",
            r.id,
            r.supplier_name.as_deref().unwrap_or("?"),
            r.invoice_number.as_deref().unwrap_or("?"),
            r.total_amount.map(|t| t.to_string()).unwrap_or_default(),
            reasons.join("; ")
        ));
    }
    for (title, lines) in [
        (t("Correo fallido", "Failed mail"), &d.failed),
        (t("Correo en cuarentena", "Quarantined mail"), &d.quarantined),
    ] {
        out.push(String::new());
        out.push(format!("{title} ({})", lines.len()));
        for m in lines {
            out.push(format!(
                "  #{} {} «{}»: {}",
                m.id,
                m.sender.as_deref().unwrap_or("?"),
                m.subject.as_deref().unwrap_or(""),
                m.reason.as_deref().unwrap_or("")
            ));
        }
    }
    out.push(String::new());
    out.push(format!("{} facturas-{}.csv", t("Adjunto:", "Attached:"), d.day));
    (subject, out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, supplier: &str, total: &str, state: &str) -> LedgerRow {
        LedgerRow {
            id,
            state: state.into(),
            received_at: Utc::now(),
            sender: "s@x.test".into(),
            source: None,
            document_type: None,
            supplier_name: Some(supplier.into()),
            supplier_tax_id: None,
            customer_name: None,
            customer_tax_id: None,
            invoice_number: Some(format!("N-{id}")),
            issue_date: None,
            due_date: None,
            currency: Some("EUR".into()),
            net_amount: None,
            tax_amount: None,
            total_amount: total.parse().ok(),
            amount_due: None,
            iban: None,
            result: serde_json::Value::Null,
            fraud_signals: serde_json::json!([]),
            review_reasons: serde_json::json!(["check totals_add_up failed"]),
            message_ref: 1,
            attachment_ref: 1,
            document_index: 0,
        }
    }

    #[test]
    fn totals_per_supplier_add_up_and_the_biggest_comes_first() {
        let rows =
            [row(1, "A", "10.50", "auto_ok"), row(2, "B", "100", "auto_ok"), row(3, "A", "0.50", "needs_review")];
        let s = per_supplier(&rows);
        assert_eq!(s.iter().map(|s| (s.supplier.as_str(), s.invoices)).collect::<Vec<_>>(), [("B", 1), ("A", 2)]);
        assert_eq!(s[1].totals, [("EUR".to_string(), "11.00".parse().unwrap())]);
        let d = DigestData {
            day: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
            per_supplier: s,
            needs_review: vec![rows[2].clone()],
            invoices: rows.to_vec(),
            failed: Vec::new(),
            quarantined: Vec::new(),
            csv: String::new(),
            first_message: Some(1),
        };
        let (subject, text) = render_text(&d, true);
        assert_eq!(subject, "Resumen del 04/12/2026: 3 facturas");
        assert!(text.contains("  A: 2 × 11.00 EUR\n"), "{text}");
        assert!(text.contains("Pendientes de revisión (1)\n  #3 A N-3 0.50: check totals_add_up failed"), "{text}");
    }

    #[test]
    fn a_local_day_is_bounded_by_its_midnights() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let cet = chrono::FixedOffset::east_opt(3600).unwrap();
        let (from, before) = day_bounds(day, &cet).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-03-28T23:00:00+00:00");
        assert_eq!(before.to_rfc3339(), "2026-03-29T23:00:00+00:00");
    }
}
