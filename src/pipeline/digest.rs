//! The daily digest: at `[notify] digest_at` (local time) the accountants get one mail about the day before
//! (`ledger::digest`), with the day's CSV attached. Every worker looks when it delivers; the one whose
//! transaction inserts the day's row in `daily_digests` queues the mail in that same transaction, and the others
//! find the row and do nothing, so the digest goes out once however many workers run.
//!
//! ```text
//! now ≥ digest_at ──▶ day = yesterday ──▶ INSERT daily_digests(day) ──(inserted)──▶ outbox (same transaction)
//!                                                                  └─(present)──▶ nothing
//! ```

use anyhow::Result;
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use lettre::Message;
use std::sync::Arc;
use tracing::info;

use crate::config::Language;
use crate::extract::Extraction;
use crate::ledger::digest::{self, DigestData};
use crate::mail::{i18n, render, reply};
use crate::store::{self, accountants as db};

use super::deliver::failure_of;
use super::App;

/// Where the worker reads the time: the system clock, or a test's.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// The day whose digest is due at local time `now`, with the digest sent at `at`: yesterday, once `at` passed.
pub fn digest_day(now: NaiveDateTime, at: NaiveTime) -> Option<NaiveDate> {
    if now.time() < at {
        return None;
    }
    now.date().pred_opt()
}

impl App {
    /// Queue the digest of the day before when it is due and no worker has taken it. Returns whether this worker
    /// took it.
    pub(super) async fn send_daily_digest(&self) -> Result<bool> {
        let Some(at) = self.config.notify.digest_time()? else { return Ok(false) };
        if self.config.notify.accountants.is_empty() {
            return Ok(false);
        }
        let now = (self.clock)().with_timezone(&Local);
        let Some(day) = digest_day(now.naive_local(), at) else { return Ok(false) };
        if db::digest_taken(&self.pool, day).await? {
            return Ok(false);
        }
        let data = digest::gather(&self.pool, day, &Local).await?;
        let mut tx = self.pool.begin().await?;
        if !db::take_digest_lease(&mut tx, day, &format!("pid {}", std::process::id())).await? {
            return Ok(false);
        }
        // A day without mail gets no digest; its lease says it was looked at.
        if let Some(first) = data.first_message {
            let (id, mail) = self.compose_digest(&data)?;
            let outbox = store::NewOutboxMail {
                message_ref: first,
                kind: "digest",
                mail_message_id: &id,
                envelope_from: &self.config.smtp.from_address(),
                recipients: &self.config.notify.accountants,
                body: &mail.formatted(),
            };
            store::enqueue_mail(&mut tx, &outbox).await?;
            db::set_digest_mail(&mut tx, day, &id).await?;
        }
        tx.commit().await?;
        info!(day = %day, invoices = data.invoices.len(), "daily digest queued");
        Ok(true)
    }

    /// The digest mail, in the accountants' language, with the day's CSV attached.
    fn compose_digest(&self, data: &DigestData) -> Result<(String, Message)> {
        let lang = self.accountants_language();
        let view = digest_view(data, lang, self.config.review.min_confidence);
        let intake = self.intake_address();
        let to = reply::Addresses {
            from: &self.config.smtp.from,
            to: &self.config.notify.accountants,
            reply_to: Some(&intake),
        };
        let filename = format!("facturas-{}.csv", data.day);
        let csv = reply::Attachment {
            filename: &filename,
            content_type: "text/csv; charset=utf-8",
            bytes: data.csv.as_bytes(),
        };
        reply::compose_digest(&to, lang, &view, Some(csv))
    }
}

/// What the digest mail shows of a day's ledger: every invoice (with what needs a look, in `lang`), and the mail
/// that left no invoice or was quarantined.
fn digest_view(data: &DigestData, lang: Language, min_confidence: f32) -> render::DigestView {
    let invoices = data
        .invoices
        .iter()
        .map(|r| {
            let review = if r.state == "needs_review" {
                // The stored reading, corrections applied by the ledger, says why; a row whose reading cannot be
                // read back still shows that it needs a look.
                match serde_json::from_value::<Extraction>(r.result.clone()) {
                    Ok(e) => render::review_reasons(&e, lang, min_confidence),
                    Err(_) => Vec::new(),
                }
            } else {
                Vec::new()
            };
            let review = if r.state == "needs_review" && review.is_empty() {
                vec![i18n::t(lang, "confidence.review").to_string()]
            } else {
                review
            };
            render::DigestInvoice {
                invoice_ref: r.id,
                supplier: r
                    .supplier_name
                    .clone()
                    .or_else(|| r.supplier_tax_id.clone())
                    .unwrap_or_else(|| r.sender.clone()),
                supplier_tax_id: r.supplier_tax_id.clone(),
                number: r.invoice_number.clone(),
                issue_date: r.issue_date,
                total: r.total_amount,
                currency: r.currency.clone(),
                review,
            }
        })
        .collect();
    let failed = data
        .failed
        .iter()
        .map(|m| {
            let (documents, kind) = failure_of(m.reason.as_deref().unwrap_or(""));
            render::FailedMail {
                message_ref: m.id,
                sender: m.sender.clone().unwrap_or_else(|| "?".into()),
                subject: m.subject.clone().unwrap_or_default(),
                received: Some(m.received_at),
                documents,
                kind,
            }
        })
        .collect();
    let quarantined = data
        .quarantined
        .iter()
        .map(|m| render::QuarantinedMail {
            message_ref: m.id,
            sender: m.sender.clone().unwrap_or_else(|| "?".into()),
            subject: m.subject.clone().unwrap_or_default(),
            message_id: None,
            reason: m.reason.clone().unwrap_or_default(),
        })
        .collect();
    render::DigestView { date: data.day, invoices, failed, quarantined, csv_attached: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_of_yesterday_is_due_from_its_time_on() {
        let at = NaiveTime::from_hms_opt(8, 0, 0).unwrap();
        let day = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(digest_day(day("2026-12-05 07:59"), at), None);
        assert_eq!(digest_day(day("2026-12-05 08:00"), at), NaiveDate::from_ymd_opt(2026, 12, 4));
        assert_eq!(digest_day(day("2026-12-05 23:59"), at), NaiveDate::from_ymd_opt(2026, 12, 4));
        assert_eq!(digest_day(day("2027-01-01 09:00"), at), NaiveDate::from_ymd_opt(2026, 12, 31));
    }
}
