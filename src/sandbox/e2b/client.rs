//! The client: one sandbox per document, the pool, creation and deletion.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::bucket::TokenBucket;
use super::guard::SandboxGuard;
use super::helpers::*;
use super::wire::*;
use super::*;
use crate::extract::Extraction;
use crate::sandbox::ExtractOptions;
use crate::secret::Secret;

/// The E2B backend. Cheap to clone; clones share the pool, the semaphore and the rate limiter.
#[derive(Clone)]
pub struct E2bSandbox {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for E2bSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E2bSandbox")
            .field("api_url", &self.inner.api_url)
            .field("api_key", &self.inner.api_key)
            .field("template", &self.inner.template)
            .field("timeout", &self.inner.timeout)
            .field("pool_size", &self.inner.pool_size)
            .finish()
    }
}

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) api_url: String,
    pub(super) api_key: Secret,
    pub(super) template: String,
    pub(super) timeout: Duration,
    /// The plan's longest sandbox lifetime (`max_sandbox_lifetime_secs`).
    pub(super) max_lifetime: Duration,
    pub(super) extractor: String,
    pub(super) envd_override: Option<String>,
    pub(super) slots: Semaphore,
    pub(super) bucket: TokenBucket,
    pub(super) pool_size: usize,
    pub(super) pool: Mutex<VecDeque<Pooled>>,
    pub(super) pool_pending: AtomicUsize,
    pub(super) closed: AtomicBool,
}

/// A running sandbox: where its envd is and how to talk to it.
#[derive(Debug)]
pub(super) struct Live {
    pub(super) id: String,
    pub(super) template_id: String,
    pub(super) alias: Option<String>,
    pub(super) envd_url: String,
    pub(super) envd_version: String,
    pub(super) access_token: Option<Secret>,
}

pub(super) struct Pooled {
    pub(super) live: Live,
    pub(super) started: Instant,
}

/// What one process run in the sandbox produced.
#[derive(Debug, Default)]
pub(super) struct ProcessOutput {
    pub(super) pid: Option<u32>,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: Vec<u8>,
    pub(super) end: Option<EndInfo>,
}

impl ProcessOutput {
    /// The process ended, with exit code 0 and no error.
    pub(super) fn succeeded(&self) -> bool {
        self.end.as_ref().is_some_and(|e| e.exit_code == 0 && e.error.is_none())
    }
}

#[derive(Debug, Default)]
pub(super) struct EndInfo {
    pub(super) exit_code: i64,
    pub(super) status: String,
    pub(super) error: Option<String>,
}

impl E2bSandbox {
    /// Build the client from its config (no network). Fails on a missing key or an invalid setting.
    pub fn new(cfg: &E2bConfig) -> Result<E2bSandbox, E2bError> {
        cfg.validate()?;
        let api_key = cfg.resolve_api_key()?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("invoice-intake/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| E2bError::Config(format!("cannot build the HTTP client: {e}")))?;
        let rate = cfg.creations_per_second;
        Ok(E2bSandbox {
            inner: Arc::new(Inner {
                http,
                api_url: cfg.api_url.trim_end_matches('/').to_string(),
                api_key,
                template: cfg.template.trim().to_string(),
                timeout: Duration::from_secs(cfg.timeout_secs),
                max_lifetime: Duration::from_secs(cfg.max_sandbox_lifetime_secs),
                extractor: cfg.extractor_path.clone(),
                envd_override: cfg.envd_url_override.as_ref().map(|u| u.trim_end_matches('/').to_string()),
                slots: Semaphore::new(cfg.max_concurrent),
                bucket: TokenBucket::new(rate, rate.max(1.0)),
                pool_size: cfg.pool_size,
                pool: Mutex::new(VecDeque::new()),
                pool_pending: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Extract one document. Never fails: every error becomes one `Extraction::failed` with `timeout` or
    /// `sandbox_failure`, like the local backend. Use [`E2bSandbox::try_extract`] to see the typed error and
    /// retry transient ones.
    pub async fn extract(&self, filename: &str, bytes: &[u8], options: &ExtractOptions) -> Vec<Extraction> {
        let digest = crate::extract::sha256_hex(bytes);
        let mut results = match self.try_extract(filename, bytes, options).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(
                    file = filename,
                    code = e.error_code().as_str(),
                    transient = e.is_transient(),
                    error = %e,
                    "E2B sandbox failure"
                );
                let mut failed = Extraction::failed(filename, e.error_code(), e.to_string());
                if let Some(err) = failed.error.as_mut() {
                    err.permanent = !e.is_transient();
                }
                vec![failed]
            }
        };
        for r in &mut results {
            r.file = filename.to_string();
            r.sha256 = Some(digest.clone());
        }
        results
    }

    /// Extract one document, or say exactly what failed. The sandbox is deleted whatever happens.
    pub async fn try_extract(
        &self,
        filename: &str,
        bytes: &[u8],
        options: &ExtractOptions,
    ) -> Result<Vec<Extraction>, E2bError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(E2bError::Config("the E2B backend was shut down".into()));
        }
        let _slot =
            inner.slots.acquire().await.map_err(|_| E2bError::Config("the E2B backend was shut down".into()))?;
        let deadline = Instant::now() + inner.timeout;
        let args = run_args(filename, options);
        let result = inner.read_document(bytes, args, deadline).await;
        Inner::refill_pool(inner);
        result
    }

    /// Start the pool now (up to `pool_size` sandboxes, at the creation rate) instead of on the first document.
    /// Returns the first error met, the pool keeps whatever did start.
    pub async fn warm_up(&self) -> Result<(), E2bError> {
        let inner = &self.inner;
        while !inner.closed.load(Ordering::SeqCst) {
            {
                let pool = inner.pool.lock().expect("pool lock");
                if pool.len() + inner.pool_pending.load(Ordering::SeqCst) >= inner.pool_size {
                    return Ok(());
                }
                inner.pool_pending.fetch_add(1, Ordering::SeqCst);
            }
            let created = Inner::create_detached(inner, "pool", POOL_MAX_IDLE + inner.timeout + TTL_MARGIN, None).await;
            inner.pool_pending.fetch_sub(1, Ordering::SeqCst);
            let guard = created?;
            inner.put_in_pool(guard);
        }
        Ok(())
    }

    /// Sandboxes waiting in the pool now.
    pub fn pooled(&self) -> usize {
        self.inner.pool.lock().expect("pool lock").len()
    }

    /// Stop taking documents and delete every pooled sandbox. Creations still in flight delete their sandbox
    /// as soon as they finish.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::SeqCst);
        inner.slots.close();
        let drained: Vec<Pooled> = inner.pool.lock().expect("pool lock").drain(..).collect();
        let deletes = drained.into_iter().map(|p| {
            let inner = inner.clone();
            async move { inner.delete_logged(&p.live.id).await }
        });
        futures::future::join_all(deletes).await;
    }
}

impl Inner {
    /// `doctor`'s sandbox runs several steps, each within `timeout`; its lifetime covers them all, capped at
    /// the plan's limit (E2B refuses a longer one), since `doctor` deletes it anyway.
    pub(super) fn probe_ttl(&self) -> Duration {
        (self.timeout * 4 + TTL_MARGIN).min(self.max_lifetime)
    }

    /// `GET /sandboxes/{id}` answers 404: E2B no longer knows the sandbox.
    pub(super) async fn is_gone(&self, id: &str) -> Result<bool, E2bError> {
        let resp = self
            .http
            .get(format!("{}/sandboxes/{id}", self.api_url))
            .header("X-API-Key", self.api_key.expose())
            .timeout(API_REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| connection_error("look up the sandbox", e))?;
        match resp.status().as_u16() {
            404 => Ok(true),
            200 => Ok(false),
            401 => Err(E2bError::Unauthorized),
            status => Err(E2bError::Http { what: "look up the sandbox", status, message: error_message(resp).await }),
        }
    }

    /// Run a command in the sandbox within one `timeout`.
    pub(super) async fn run_bounded(&self, live: &Live, args: Vec<String>) -> Result<ProcessOutput, E2bError> {
        let deadline = Instant::now() + self.timeout;
        match tokio::time::timeout_at(deadline, self.run(live, args, deadline)).await {
            Ok(r) => r,
            Err(_) => Err(E2bError::Timeout { secs: self.timeout.as_secs() }),
        }
    }

    /// One document: a sandbox (pooled or new), upload, run, parse; the sandbox deleted in every case.
    pub(super) async fn read_document(
        self: &Arc<Self>,
        bytes: &[u8],
        args: Vec<String>,
        deadline: Instant,
    ) -> Result<Vec<Extraction>, E2bError> {
        let secs = self.timeout.as_secs();
        // A pooled sandbox first; if it turns out dead on upload, a fresh one.
        let mut guard = None;
        if let Some(pooled) = self.take_pooled() {
            let g = SandboxGuard::new(self.clone(), pooled);
            match tokio::time::timeout_at(deadline, self.upload(g.live(), bytes, deadline)).await {
                Ok(Ok(())) => guard = Some(g),
                Ok(Err(e)) if e.is_transient() => {
                    tracing::info!(sandbox = %g.live().id, error = %e, "pooled E2B sandbox unusable; starting a fresh one");
                    let _ = g.delete().await;
                }
                Ok(Err(e)) => {
                    let _ = g.delete().await;
                    return Err(e);
                }
                Err(_) => {
                    let _ = g.delete().await;
                    return Err(E2bError::Timeout { secs });
                }
            }
        }
        let guard = match guard {
            Some(g) => g,
            None => {
                // Not under the deadline: a creation cut short could leave a sandbox we never learn the ID of.
                let g = Inner::create_detached(self, "extract", self.timeout + TTL_MARGIN, Some(deadline)).await?;
                if Instant::now() >= deadline {
                    let _ = g.delete().await;
                    return Err(E2bError::Timeout { secs });
                }
                match tokio::time::timeout_at(deadline, self.upload(g.live(), bytes, deadline)).await {
                    Ok(Ok(())) => g,
                    Ok(Err(e)) => {
                        let _ = g.delete().await;
                        return Err(e);
                    }
                    Err(_) => {
                        let _ = g.delete().await;
                        return Err(E2bError::Timeout { secs });
                    }
                }
            }
        };
        let outcome = tokio::time::timeout_at(deadline, async {
            let out = self.run(guard.live(), args, deadline).await?;
            parse_results(&out, &self.extractor)
        })
        .await;
        let _ = guard.delete().await;
        match outcome {
            Ok(r) => r,
            Err(_) => Err(E2bError::Timeout { secs }),
        }
    }

    /// Create a sandbox in a task of its own, so that if our caller gives up half-way the sandbox is still
    /// deleted as soon as the creation answers (the guard is dropped, and its `Drop` deletes).
    pub(super) async fn create_detached(
        self: &Arc<Self>,
        purpose: &'static str,
        ttl: Duration,
        deadline: Option<Instant>,
    ) -> Result<SandboxGuard, E2bError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let inner = self.clone();
        tokio::spawn(async move {
            let result = inner.create(purpose, ttl, deadline).await.map(|live| SandboxGuard::new(inner.clone(), live));
            // Nobody waiting any more: dropping the returned guard deletes the sandbox.
            let _ = tx.send(result);
        });
        rx.await.unwrap_or_else(|_| Err(E2bError::Protocol("the sandbox creation task stopped".into())))
    }

    /// `POST /sandboxes`, at the creation rate, retrying 429s after their `Retry-After` unless that wait would
    /// pass `deadline`.
    pub(super) async fn create(
        &self,
        purpose: &'static str,
        ttl: Duration,
        deadline: Option<Instant>,
    ) -> Result<Live, E2bError> {
        let body = serde_json::json!({
            "templateID": self.template,
            "timeout": ttl.as_secs(),
            "autoPause": false,
            "secure": true,
            "allow_internet_access": false,
            "metadata": { "app": "invoice-intake", "purpose": purpose },
        });
        let url = format!("{}/sandboxes", self.api_url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.bucket.acquire().await;
            let t0 = Instant::now();
            let resp = self
                .http
                .post(&url)
                .header("X-API-Key", self.api_key.expose())
                .timeout(API_REQUEST_TIMEOUT)
                .json(&body)
                .send()
                .await
                .map_err(|e| connection_error("create sandbox", e))?;
            let status = resp.status().as_u16();
            match status {
                200 | 201 => {
                    let text = resp.text().await.map_err(|e| connection_error("create sandbox", e))?;
                    let created: CreatedSandbox = serde_json::from_str(&text).map_err(|e| {
                        E2bError::Protocol(format!(
                            "the create answer is not a sandbox ({e}): {}",
                            truncate(&text, 300)
                        ))
                    })?;
                    let live = Live {
                        envd_url: self.envd_url(&created.sandbox_id, created.domain.as_deref()),
                        id: created.sandbox_id,
                        template_id: created.template_id.unwrap_or_else(|| self.template.clone()),
                        alias: created.alias,
                        envd_version: created.envd_version.unwrap_or_default(),
                        access_token: created.envd_access_token.filter(|t| !t.is_empty()).map(Secret::new),
                    };
                    tracing::info!(
                        sandbox = %live.id,
                        template = %live.template_id,
                        purpose,
                        ms = t0.elapsed().as_millis() as u64,
                        "E2B sandbox created"
                    );
                    return Ok(live);
                }
                401 => return Err(E2bError::Unauthorized),
                404 => {
                    return Err(E2bError::TemplateNotFound {
                        template: self.template.clone(),
                        message: error_message(resp).await,
                    })
                }
                400 => {
                    let message = error_message(resp).await;
                    return Err(E2bError::Http {
                        what: "create sandbox",
                        status,
                        message: format!(
                            "{message} (asked for a {} s lifetime: is sandbox.e2b.max_sandbox_lifetime_secs within \
                             the plan's limit?)",
                            ttl.as_secs()
                        ),
                    });
                }
                429 => {
                    let wait = retry_after(resp.headers());
                    let message = error_message(resp).await;
                    let pause = backoff(wait);
                    // Everyone waits, not only this caller.
                    self.bucket.pause_for(pause);
                    let too_late = deadline.is_some_and(|d| Instant::now() + pause >= d);
                    if attempt >= CREATE_ATTEMPTS || too_late {
                        return Err(E2bError::RateLimited { retry_after: wait, message });
                    }
                    tracing::info!(
                        attempt,
                        wait_ms = pause.as_millis() as u64,
                        "E2B rate limit; waiting before creating again"
                    );
                    tokio::time::sleep(pause).await;
                }
                _ => {
                    return Err(E2bError::Http { what: "create sandbox", status, message: error_message(resp).await });
                }
            }
        }
    }

    /// `DELETE /sandboxes/{id}`; a 404 means it is already gone. Retried once on a transient failure.
    pub(super) async fn delete(&self, id: &str) -> Result<(), E2bError> {
        delete_sandbox(&self.http, &self.api_url, &self.api_key, id).await
    }

    pub(super) async fn delete_logged(&self, id: &str) {
        if let Err(e) = self.delete(id).await {
            tracing::warn!(sandbox = id, error = %e, "E2B sandbox not deleted; E2B stops it at its TTL");
        }
    }

    pub(super) fn take_pooled(&self) -> Option<Live> {
        let mut pool = self.pool.lock().expect("pool lock");
        while let Some(p) = pool.pop_front() {
            if p.started.elapsed() < POOL_MAX_IDLE {
                return Some(p.live);
            }
            // Too close to its TTL: delete it in the background and look further.
            let http = self.http.clone();
            let (api_url, key, id) = (self.api_url.clone(), self.api_key.clone(), p.live.id);
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = delete_sandbox(&http, &api_url, &key, &id).await;
                });
            }
        }
        None
    }

    pub(super) fn put_in_pool(&self, mut guard: SandboxGuard) {
        if self.closed.load(Ordering::SeqCst) {
            return; // dropping the guard deletes it
        }
        if let Some(live) = guard.live.take() {
            self.pool.lock().expect("pool lock").push_back(Pooled { live, started: Instant::now() });
        }
    }

    /// Start creations in the background until the pool (plus creations in flight) is full again.
    pub(super) fn refill_pool(self: &Arc<Self>) {
        if self.pool_size == 0 || self.closed.load(Ordering::SeqCst) {
            return;
        }
        let missing = {
            let pool = self.pool.lock().expect("pool lock");
            let have = pool.len() + self.pool_pending.load(Ordering::SeqCst);
            let missing = self.pool_size.saturating_sub(have);
            self.pool_pending.fetch_add(missing, Ordering::SeqCst);
            missing
        };
        for _ in 0..missing {
            let inner = self.clone();
            tokio::spawn(async move {
                let r = Inner::create_detached(&inner, "pool", POOL_MAX_IDLE + inner.timeout + TTL_MARGIN, None).await;
                inner.pool_pending.fetch_sub(1, Ordering::SeqCst);
                match r {
                    Ok(guard) => inner.put_in_pool(guard),
                    Err(e) => tracing::warn!(error = %e, "could not start a pooled E2B sandbox"),
                }
            });
        }
    }
}

impl Drop for Inner {
    /// A client dropped without `shutdown()` still deletes its pooled sandboxes, when a runtime is around.
    fn drop(&mut self) {
        let drained: Vec<Pooled> = match self.pool.get_mut() {
            Ok(p) => p.drain(..).collect(),
            Err(_) => return,
        };
        if drained.is_empty() {
            return;
        }
        let Ok(h) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                count = drained.len(),
                "pooled E2B sandboxes left to expire at their TTL (no runtime to delete them)"
            );
            return;
        };
        for p in drained {
            let (http, api_url, key) = (self.http.clone(), self.api_url.clone(), self.api_key.clone());
            h.spawn(async move {
                let _ = delete_sandbox(&http, &api_url, &key, &p.live.id).await;
            });
        }
    }
}

pub(super) async fn delete_sandbox(
    http: &reqwest::Client,
    api_url: &str,
    key: &Secret,
    id: &str,
) -> Result<(), E2bError> {
    let url = format!("{api_url}/sandboxes/{id}");
    let mut last = None;
    for attempt in 0..2 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let resp = http.delete(&url).header("X-API-Key", key.expose()).timeout(DELETE_TIMEOUT).send().await;
        let err = match resp {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 404 => {
                tracing::debug!(sandbox = id, "E2B sandbox deleted");
                return Ok(());
            }
            Ok(r) if r.status().as_u16() == 401 => return Err(E2bError::Unauthorized),
            Ok(r) => {
                let status = r.status().as_u16();
                E2bError::Http { what: "delete sandbox", status, message: error_message(r).await }
            }
            Err(e) => connection_error("delete sandbox", e),
        };
        if !err.is_transient() {
            return Err(err);
        }
        last = Some(err);
    }
    Err(last.expect("at least one attempt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_key_never_prints() {
        let cfg = E2bConfig::new("e2b_0123456789abcdef", "tmpl");
        let dump = format!("{cfg:?}");
        assert!(!dump.contains("0123456789abcdef"), "{dump}");
        let client = E2bSandbox::new(&cfg).unwrap();
        let dump = format!("{client:?}");
        assert!(!dump.contains("0123456789abcdef"), "{dump}");
        assert!(!E2bError::Unauthorized.to_string().contains("0123456789abcdef"));
    }
}
