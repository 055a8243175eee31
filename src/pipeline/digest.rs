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
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use std::sync::Arc;
use tracing::info;

use crate::ledger::digest::{self, DigestData};
use crate::mail::headers::AutoSubmitted;
use crate::store::{self, accountants as db};

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
            let (id, mail) = self.compose_digest(&data, first)?;
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

    fn compose_digest(&self, data: &DigestData, first_message: i64) -> Result<(String, Message)> {
        let spanish = self.config.reply.default_language == crate::config::Language::Es;
        let (subject, text) = digest::render_text(data, spanish);
        let from = &self.config.smtp.from;
        let id = crate::mail::reply::stable_message_id(&format!("digest.{}", data.day), first_message, &text, from);
        let mut b = Message::builder()
            .from(from.parse::<Mailbox>()?)
            .subject(crate::mail::headers::header_text(&subject))
            .message_id(Some(id.clone()))
            .header(AutoSubmitted("auto-generated".into()))
            .date_now();
        for to in &self.config.notify.accountants {
            b = b.to(to.parse::<Mailbox>()?);
        }
        let csv = Attachment::new(format!("facturas-{}.csv", data.day))
            .body(data.csv.clone(), ContentType::parse("text/csv; charset=utf-8")?);
        let mail = b.multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                .singlepart(csv),
        )?;
        Ok((id, mail))
    }
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
