//! How long to wait before trying again, and which errors blame nobody.

use std::time::Duration;

/// Transient failures of a message wait before the next attempt: 10 s, then 20 s (plus jitter).
const RETRY_BASE_DELAY: Duration = Duration::from_secs(10);
/// Outbox retries after a 4xx answer: 30 s, doubling, at most 1 hour apart.
const OUTBOX_BASE_DELAY: Duration = Duration::from_secs(30);
const OUTBOX_MAX_DELAY: Duration = Duration::from_secs(3600);

/// The wait before attempt `attempt + 1` of a message that failed transiently: 10 s, 20 s, … (with jitter).
pub(super) fn retry_delay(attempt: i32) -> Duration {
    let exp = RETRY_BASE_DELAY.saturating_mul(1u32 << (attempt - 1).clamp(0, 6) as u32);
    jitter(exp)
}

/// Whether an error means Postgres (or the connection to it) is unavailable, as opposed to something about the
/// message in hand. Outages end the turn and are retried with the reconnect backoff; no message is blamed.
pub(super) fn is_outage(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        if let Some(err) = cause.downcast_ref::<sqlx::Error>() {
            return match err {
                // SQLSTATE classes: 08 connection, 53 insufficient resources, 57 operator intervention (shutdown),
                // 58 system error, 40 rollback (serialization failure, deadlock): none is about the data.
                sqlx::Error::Database(db) => {
                    db.code().is_some_and(|c| ["08", "40", "53", "57", "58"].iter().any(|class| c.starts_with(class)))
                }
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                _ => false,
            };
        }
        cause.downcast_ref::<std::io::Error>().is_some()
    })
}

pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".to_string()
    }
}

pub(super) fn outbox_delay(attempts: i32) -> Duration {
    let exp = OUTBOX_BASE_DELAY.saturating_mul(1u32 << attempts.clamp(0, 10) as u32);
    jitter(exp.min(OUTBOX_MAX_DELAY))
}

/// Up to 25% random extra, so many workers retrying the same outage do not stampede together.
pub(super) fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    let extra = rand::thread_rng().gen_range(0.0..0.25);
    d.mul_f64(1.0 + extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_retries_back_off_and_stay_bounded() {
        let first = retry_delay(1);
        let second = retry_delay(2);
        assert!(first >= RETRY_BASE_DELAY && first <= RETRY_BASE_DELAY.mul_f64(1.25), "{first:?}");
        assert!(second >= RETRY_BASE_DELAY * 2 && second <= (RETRY_BASE_DELAY * 2).mul_f64(1.25), "{second:?}");
        assert!(retry_delay(60) <= (RETRY_BASE_DELAY * 64).mul_f64(1.25));
    }

    #[test]
    fn only_an_unreachable_database_is_an_outage() {
        assert!(is_outage(&anyhow::Error::new(sqlx::Error::PoolTimedOut)));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(is_outage(&anyhow::Error::new(sqlx::Error::Io(io)).context("committing")));
        assert!(!is_outage(&anyhow::anyhow!("the reply address is not usable")));
        assert!(!is_outage(&anyhow::Error::new(sqlx::Error::RowNotFound)));
    }

    #[test]
    fn a_panic_is_described_by_its_message() {
        let caught = std::panic::catch_unwind(|| panic!("index out of bounds")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "panic: index out of bounds");
    }
}
