//! `run` and `once`: the service under systemd, and one pass for operators and tests.

use anyhow::Result;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::pipeline::App;

use super::load;

/// How long a stopping service may spend finishing the message in hand before it exits anyway. The sandbox
/// timeout bounds one document; this bounds the whole drain (systemd's TimeoutStopSec is set above it).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(150);

pub(super) async fn once(path: &Path) -> Result<i32> {
    let cfg = load(path)?;
    crate::telemetry::init(&cfg.log);
    let app = App::build(cfg).await?;
    let s = app.run_once().await?;
    info!(
        fetched = s.fetched,
        processed = s.processed,
        sent = s.sent,
        archived = s.archived,
        still_queued = s.queued,
        "once: done"
    );
    if s.queued > 0 {
        warn!(
            still_queued = s.queued,
            "some replies could not be delivered yet; they stay in the outbox for the next run"
        );
    }
    Ok(0)
}

pub(super) async fn serve(path: &Path) -> Result<i32> {
    let cfg = load(path)?;
    crate::telemetry::init(&cfg.log);
    let app = App::build(cfg).await?;
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    if let Some(listen) = app.config.metrics.listen {
        // Unhealthy after three poll intervals (at least a minute) without reaching IMAP.
        let stale = Duration::from_secs((app.config.imap.poll_interval_secs * 3).max(60));
        let c = cancel.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(listen, stale, c).await {
                warn!(error = format!("{e:#}"), "metrics endpoint failed");
            }
        });
    }
    let watchdog = watchdog_interval();
    let worker = app.run_until_stopped(cancel.clone(), || {
        info!("ready: Postgres and IMAP are up");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    });
    tokio::pin!(worker);
    let ticker = async {
        // Between loop iterations the worker pings the watchdog itself; this covers long IDLE waits.
        loop {
            match watchdog {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        }
    };
    tokio::select! {
        r = &mut worker => r?,
        _ = ticker => unreachable!("the watchdog ticker never ends"),
    }
    Ok(0)
}

pub(super) fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec / 2))
    } else {
        None
    }
}

pub(super) async fn shutdown_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        warn!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: finishing the message in hand"),
        _ = int.recv() => info!("SIGINT: finishing the message in hand"),
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    cancel.cancel();
    tokio::time::sleep(SHUTDOWN_GRACE).await;
    warn!("shutdown grace of {}s passed; exiting", SHUTDOWN_GRACE.as_secs());
    std::process::exit(0);
}
