//! The daily digest's content: one local day's invoices with totals per supplier, those that need review, the
//! failed and quarantined mail, and the day's CSV (the ledger export's columns). `gather` reads it into a plain
//! struct, which `pipeline::digest` turns into the mail (`mail::render::render_digest`).

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
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
    Ok(DigestData { day, csv: export::csv(&invoices), invoices, failed, quarantined, first_message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_day_is_bounded_by_its_midnights() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let cet = chrono::FixedOffset::east_opt(3600).unwrap();
        let (from, before) = day_bounds(day, &cet).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-03-28T23:00:00+00:00");
        assert_eq!(before.to_rfc3339(), "2026-03-29T23:00:00+00:00");
    }
}
