//! Postgres LISTEN: news from the other processes wakes this one's tasks.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{jitter, App, Wake, CHANNEL_ARCHIVE, CHANNEL_MESSAGES, CHANNEL_OUTBOX, MAX_BACKOFF};

impl App {
    /// LISTEN for the other processes' news and pass it on. A lost connection may have lost news, so every task
    /// is woken after it; the tasks' polls cover the time it is down.
    pub(super) async fn listen_task(&self, stop: &CancellationToken, wake: &Wake) {
        let mut backoff = Duration::from_secs(1);
        while !stop.is_cancelled() {
            let listener = async {
                // Its own connection: one taken from the pool would be held for good, and the pool is sized so
                // that the slots and delivery can never all wait for a connection at once.
                let mut l = sqlx::postgres::PgListener::connect(self.config.database.url.expose()).await?;
                l.listen_all([CHANNEL_MESSAGES, CHANNEL_OUTBOX, CHANNEL_ARCHIVE]).await?;
                Ok::<_, sqlx::Error>(l)
            };
            let mut listener = match listener.await {
                Ok(l) => l,
                Err(e) => {
                    warn!(error = %e, "cannot LISTEN; relying on polls for now");
                    tokio::select! {
                        _ = tokio::time::sleep(jitter(backoff)) => {}
                        _ = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_secs(1);
            wake.all();
            loop {
                let n = tokio::select! {
                    n = listener.try_recv() => n,
                    _ = stop.cancelled() => return,
                };
                match n {
                    Ok(Some(n)) => match n.channel() {
                        CHANNEL_MESSAGES => wake.messages.notify_waiters(),
                        CHANNEL_OUTBOX => wake.outbox.notify_one(),
                        _ => wake.archive.notify_one(),
                    },
                    Ok(None) | Err(_) => {
                        // The connection dropped: reconnect through the outer loop.
                        wake.all();
                        break;
                    }
                }
            }
        }
    }
}
