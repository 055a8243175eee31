//! The guard: a created sandbox is deleted exactly once, whatever path the code takes.

use std::sync::Arc;

use super::client::{Inner, Live};
use super::E2bError;

/// Owns one running sandbox. `delete()` deletes it and waits; dropping it without `delete()` (an early return,
/// a cancelled future, a panic unwinding) deletes it in a background task.
pub(super) struct SandboxGuard {
    pub(super) inner: Arc<Inner>,
    pub(super) live: Option<Live>,
}

impl SandboxGuard {
    pub(super) fn new(inner: Arc<Inner>, live: Live) -> Self {
        SandboxGuard { inner, live: Some(live) }
    }

    pub(super) fn live(&self) -> &Live {
        self.live.as_ref().expect("a guard holds its sandbox until deleted")
    }

    pub(super) async fn delete(mut self) -> Result<(), E2bError> {
        let live = self.live.take().expect("a guard holds its sandbox until deleted");
        let r = self.inner.delete(&live.id).await;
        if let Err(e) = &r {
            tracing::warn!(sandbox = %live.id, error = %e, "E2B sandbox not deleted; E2B stops it at its TTL");
        }
        r
    }
}

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        let Some(live) = self.live.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                let inner = self.inner.clone();
                h.spawn(async move { inner.delete_logged(&live.id).await });
            }
            Err(_) => {
                tracing::warn!(sandbox = %live.id, "E2B sandbox left to expire at its TTL (no runtime to delete it)")
            }
        }
    }
}
