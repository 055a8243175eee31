//! The E2B backend: each document is read in a fresh e2b.dev cloud sandbox instead of a local bubblewrap jail.
//!
//! One document, one sandbox, always deleted. For each document the client
//! 1. creates a sandbox from our template: `POST {api_url}/sandboxes` with `X-API-Key`, asking for `secure: true`
//!    (so envd wants an access token) and `allow_internet_access: false`, and with a TTL a minute past our own
//!    deadline, so E2B kills the sandbox by itself even if this process dies before it can;
//! 2. uploads the document to the sandbox daemon (envd, port 49983): `POST {envd}/files?path=/tmp/document`,
//!    multipart field `file`, header `X-Access-Token`;
//! 3. runs the extractor by absolute path with an argument vector (no shell, so a supplier's file name can never
//!    become a command) through envd's Connect-RPC `POST {envd}/process.Process/Start` (server streaming, JSON
//!    envelopes: 1 flag byte, 4-byte big-endian length, JSON; flag 0x02 marks the end-of-stream frame);
//! 4. parses the JSON lines the extractor printed into `Extraction`s exactly as the local backend does;
//! 5. deletes the sandbox (`DELETE {api_url}/sandboxes/{id}`): on success, on error, on timeout, and, through
//!    [`SandboxGuard`]'s `Drop`, when the caller's future is dropped half-way.
//!
//! A sandbox never reads a second document: one that read a hostile file is never trusted again. The optional
//! pool only pre-starts sandboxes to hide the cold start. Concurrency is bounded by a semaphore
//! (`max_concurrent`), sandbox creations by a token bucket (`creations_per_second`), and a 429 pauses every
//! creation for its `Retry-After`.
//!
//! envd's address is `https://49983-{sandboxID}.{domain}` (the domain from the create answer, else the API
//! URL's host without `api.`); `envd_url_override` replaces it, e.g. with E2B's shared `https://sandbox.e2b.app`
//! or a local test server. Every envd request also carries `E2b-Sandbox-Id` and `E2b-Sandbox-Port`, which is how
//! the shared host routes, so either form works.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::ExtractOptions;
use crate::config::Secret;
use crate::extract::{ErrorCode, Extraction};

/// E2B's public API (the `servers` entry of its OpenAPI spec; the SDKs derive it as `https://api.{E2B_DOMAIN}`).
pub const DEFAULT_API_URL: &str = "https://api.e2b.app";
/// The port envd, E2B's in-sandbox daemon, listens on.
pub const ENVD_PORT: u16 = 49983;
/// Where the template puts the extractor (see `e2b/Dockerfile`). Absolute: E2B's PATH is not to be relied on.
pub const DEFAULT_EXTRACTOR_PATH: &str = "/usr/local/bin/invoice-intake";
/// Where the document is uploaded inside the sandbox.
pub const SANDBOX_DOCUMENT: &str = "/tmp/document";
/// The user envd runs the extractor as (E2B's default unprivileged user).
const SANDBOX_USER: &str = "user";
/// `Authorization: Basic base64("user:")`, how envd is told which user to run a process as.
const SANDBOX_USER_BASIC: &str = "Basic dXNlcjo=";

/// Same limits as the local backend: results are small, stderr is only read for its last lines.
const MAX_STDOUT: usize = 16 * 1024 * 1024;
const MAX_STDERR: usize = 64 * 1024;
/// No single Connect frame may be larger than this (stdout arrives in small chunks).
const MAX_FRAME: usize = 16 * 1024 * 1024 + 4096;
/// E2B's TTL is our deadline plus this, so E2B kills a sandbox we failed to delete.
const TTL_MARGIN: Duration = Duration::from_secs(60);
/// A pooled sandbox older than this is deleted rather than used, and its TTL covers this much idling.
const POOL_MAX_IDLE: Duration = Duration::from_secs(240);
/// Per-request limits for the REST calls (creation, deletion).
const API_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A 429 is retried this many times in all, each after its `Retry-After` (capped).
const CREATE_ATTEMPTS: u32 = 4;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// envd sends keepalive events at this interval (seconds) while a process is quiet, as the SDKs ask it to.
const KEEPALIVE_SECS: &str = "50";
/// envd versions from which `stdin: false` is understood (the SDKs' `ENVD_COMMANDS_STDIN`).
const ENVD_COMMANDS_STDIN: (u32, u32, u32) = (0, 3, 0);
/// The environment the extractor gets: the same as in the local jail, independent of the template's ENV.
const EXTRACTOR_ENV: [(&str, &str); 4] =
    [("PATH", "/usr/bin:/bin"), ("HOME", "/tmp"), ("LANG", "C.UTF-8"), ("OMP_THREAD_LIMIT", "1")];

/// A tiny UBL invoice the probe reads inside the sandbox, end to end.
const PROBE_SAMPLE_NUMBER: &str = "E2B-PROBE-1";
const PROBE_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
<cbc:ID>E2B-PROBE-1</cbc:ID>
<cbc:IssueDate>2025-01-01</cbc:IssueDate>
<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
<cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>Probe Supplier</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
<cac:TaxTotal><cbc:TaxAmount currencyID="EUR">21.00</cbc:TaxAmount></cac:TaxTotal>
<cac:LegalMonetaryTotal><cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount><cbc:TaxInclusiveAmount currencyID="EUR">121.00</cbc:TaxInclusiveAmount><cbc:PayableAmount currencyID="EUR">121.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
</Invoice>
"#;

// ---------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------

/// `[sandbox.e2b]`: only read when `sandbox.backend = "e2b"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct E2bConfig {
    /// E2B's REST API. Must be https, except towards a loopback host (tests).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The team API key (`e2b_…`). Prints as `***`.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// File holding the API key (systemd `LoadCredential`); used when `api_key` is not set.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// The template to start: its ID (as printed by `e2b template create` / the dashboard) or its alias. The ID
    /// pins exactly one template; `doctor` prints the ID an alias resolved to.
    pub template: String,
    /// Wall-clock limit per document: creation (or taking a pooled sandbox), upload and extraction.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Documents read at once, i.e. running sandboxes besides the pool. E2B's plans cap concurrent sandboxes.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Sandbox creations per second (a token bucket with one second's worth of burst); E2B rate-limits creation.
    #[serde(default = "default_creations_per_second")]
    pub creations_per_second: f64,
    /// Sandboxes kept started ahead of need (each used for one document, then deleted and replaced). 0 = none.
    /// They run, and are billed, while they wait.
    #[serde(default)]
    pub pool_size: usize,
    /// The extractor inside the template, by absolute path.
    #[serde(default = "default_extractor_path")]
    pub extractor_path: String,
    /// envd's base URL instead of `https://49983-{sandboxID}.{domain}` (e.g. `https://sandbox.e2b.app`, or a local
    /// test server). Must be https, except towards a loopback host.
    #[serde(default)]
    pub envd_url_override: Option<String>,
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}
fn default_timeout_secs() -> u64 {
    120
}
fn default_max_concurrent() -> usize {
    4
}
fn default_creations_per_second() -> f64 {
    1.0
}
fn default_extractor_path() -> String {
    DEFAULT_EXTRACTOR_PATH.to_string()
}

impl E2bConfig {
    /// A config with every default and the given key and template (handy for tests and tools).
    pub fn new(api_key: impl Into<String>, template: impl Into<String>) -> Self {
        E2bConfig {
            api_url: default_api_url(),
            api_key: Some(Secret::new(api_key)),
            api_key_file: None,
            template: template.into(),
            timeout_secs: default_timeout_secs(),
            max_concurrent: default_max_concurrent(),
            creations_per_second: default_creations_per_second(),
            pool_size: 0,
            extractor_path: default_extractor_path(),
            envd_url_override: None,
        }
    }

    /// The API key from `api_key`, else from `api_key_file` (one trailing newline dropped).
    pub fn resolve_api_key(&self) -> Result<Secret, E2bError> {
        if let Some(k) = self.api_key.as_ref().filter(|k| !k.is_empty()) {
            return Ok(k.clone());
        }
        if let Some(p) = &self.api_key_file {
            let s = std::fs::read_to_string(p)
                .map_err(|e| E2bError::Config(format!("sandbox.e2b.api_key_file: cannot read {}: {e}", p.display())))?;
            let s = s.trim_end_matches(['\r', '\n']);
            if !s.is_empty() {
                return Ok(Secret::new(s));
            }
        }
        Err(E2bError::Config(
            "sandbox.e2b.api_key is missing: set api_key, api_key_file or INVOICE_INTAKE__SANDBOX__E2B__API_KEY".into(),
        ))
    }

    /// Every check that needs no network; the error names the key.
    pub fn validate(&self) -> Result<(), E2bError> {
        self.resolve_api_key()?;
        check_url("sandbox.e2b.api_url", &self.api_url)?;
        if let Some(u) = &self.envd_url_override {
            check_url("sandbox.e2b.envd_url_override", u)?;
        }
        if self.template.trim().is_empty() {
            return Err(E2bError::Config("sandbox.e2b.template must name the template (its ID or alias)".into()));
        }
        if self.timeout_secs == 0 {
            return Err(E2bError::Config("sandbox.e2b.timeout_secs must be at least 1".into()));
        }
        if self.max_concurrent == 0 {
            return Err(E2bError::Config("sandbox.e2b.max_concurrent must be at least 1".into()));
        }
        if !(self.creations_per_second.is_finite() && self.creations_per_second > 0.0) {
            return Err(E2bError::Config("sandbox.e2b.creations_per_second must be a positive number".into()));
        }
        if !self.extractor_path.starts_with('/') {
            return Err(E2bError::Config(format!(
                "sandbox.e2b.extractor_path must be an absolute path (E2B's PATH is not reliable), got {:?}",
                self.extractor_path
            )));
        }
        Ok(())
    }
}

/// https, or plain http to a loopback host only: the API key and the documents never cross a network in clear.
fn check_url(key: &str, url: &str) -> Result<(), E2bError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| E2bError::Config(format!("{key}: {url:?} is not a URL: {e}")))?;
    let host = parsed.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host.trim_matches(['[', ']']).parse::<std::net::Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(E2bError::Config(format!(
            "{key} must be an https:// URL (plain http only to a loopback host), got {url:?}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/// What went wrong, typed so the caller can decide to retry ([`E2bError::is_transient`]).
#[derive(Debug, thiserror::Error)]
pub enum E2bError {
    /// HTTP 401 from the API: a configuration error, retrying will not help.
    #[error("E2B API key rejected (HTTP 401): check sandbox.e2b.api_key / api_key_file")]
    Unauthorized,
    /// Missing or invalid settings.
    #[error("E2B configuration error: {0}")]
    Config(String),
    /// HTTP 404 on creation: no such template for this team.
    #[error(
        "E2B template {template:?} not found (HTTP 404: {message}): set sandbox.e2b.template to the template ID \
         printed by `e2b template create` (or its alias) for the team of this API key"
    )]
    TemplateNotFound { template: String, message: String },
    /// HTTP 429: too many sandboxes started, or running at once.
    #[error("E2B rate limit (HTTP 429{}): {message}", .retry_after.map(|d| format!(", retry after {}s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration>, message: String },
    /// Any other HTTP error answer.
    #[error("E2B {what} failed with HTTP {status}: {message}")]
    Http { what: &'static str, status: u16, message: String },
    /// No answer at all: DNS, TCP, TLS, a request timeout.
    #[error("cannot reach E2B ({what}): {message}")]
    Connection { what: &'static str, message: String },
    /// The document's wall-clock limit passed.
    #[error("reading the document in the E2B sandbox took longer than {secs}s")]
    Timeout { secs: u64 },
    /// The sandbox went away while the extractor ran (the stream ended without an end event, or the sandbox is
    /// no longer routable).
    #[error("the E2B sandbox died mid-run: {0}")]
    SandboxDied(String),
    /// envd answered the process RPC with a Connect error.
    #[error("the E2B sandbox daemon refused to run the extractor ({code}): {message}")]
    Rpc { code: String, message: String },
    /// The extractor ran and failed (non-zero exit, killed, or no result printed): the document's fault or the
    /// template's, not the network's.
    #[error("{0}")]
    Extractor(String),
    /// An answer that does not follow the documented API.
    #[error("unexpected answer from E2B: {0}")]
    Protocol(String),
}

impl E2bError {
    /// Worth retrying later: rate limits, 5xx, unreachable, timeouts, a sandbox that died. Not: a rejected key,
    /// a missing template, a bad config, an extractor that failed on this document.
    pub fn is_transient(&self) -> bool {
        match self {
            E2bError::RateLimited { .. }
            | E2bError::Connection { .. }
            | E2bError::Timeout { .. }
            | E2bError::SandboxDied(_)
            | E2bError::Protocol(_) => true,
            E2bError::Http { status, .. } => *status >= 500 || *status == 408,
            E2bError::Rpc { code, message } => {
                matches!(
                    code.as_str(),
                    "unavailable" | "deadline_exceeded" | "resource_exhausted" | "aborted" | "unknown"
                ) && !message.contains("no such file or directory")
            }
            E2bError::Unauthorized
            | E2bError::Config(_)
            | E2bError::TemplateNotFound { .. }
            | E2bError::Extractor(_) => false,
        }
    }

    /// How long E2B asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            E2bError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The schema error code a failed result gets.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            E2bError::Timeout { .. } => ErrorCode::Timeout,
            _ => ErrorCode::SandboxFailure,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------------------------

/// The E2B backend. Cheap to clone; clones share the pool, the semaphore and the rate limiter.
#[derive(Clone)]
pub struct E2bSandbox {
    inner: Arc<Inner>,
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

struct Inner {
    http: reqwest::Client,
    api_url: String,
    api_key: Secret,
    template: String,
    timeout: Duration,
    extractor: String,
    envd_override: Option<String>,
    slots: Semaphore,
    bucket: TokenBucket,
    pool_size: usize,
    pool: Mutex<VecDeque<Pooled>>,
    pool_pending: AtomicUsize,
    closed: AtomicBool,
}

/// A running sandbox: where its envd is and how to talk to it.
#[derive(Debug)]
struct Live {
    id: String,
    template_id: String,
    alias: Option<String>,
    envd_url: String,
    envd_version: String,
    access_token: Option<Secret>,
}

struct Pooled {
    live: Live,
    started: Instant,
}

/// What one process run in the sandbox produced.
#[derive(Debug, Default)]
struct ProcessOutput {
    pid: Option<u32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    end: Option<EndInfo>,
}

#[derive(Debug, Default)]
struct EndInfo {
    exit_code: i64,
    status: String,
    error: Option<String>,
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
                vec![Extraction::failed(filename, e.error_code(), e.to_string())]
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

    /// `doctor` for E2B: start a sandbox, check the extractor's version, run `sandbox-probe` inside it, read a
    /// tiny sample invoice, report the start latency, and delete the sandbox. Each line is (check, ok, detail).
    pub async fn probe(&self) -> Vec<(String, bool, String)> {
        let inner = &self.inner;
        let mut out: Vec<(String, bool, String)> = Vec::new();
        let _slot = match inner.slots.acquire().await {
            Ok(s) => s,
            Err(_) => {
                out.push(("e2b sandbox start".into(), false, "the E2B backend was shut down".into()));
                return out;
            }
        };
        let t0 = Instant::now();
        let guard = match Inner::create_detached(inner, "probe", inner.timeout * 4 + TTL_MARGIN, None).await {
            Ok(g) => g,
            Err(e) => {
                out.push(("e2b sandbox start".into(), false, e.to_string()));
                return out;
            }
        };
        let live = guard.live();
        let started_ms = t0.elapsed().as_millis();
        let mut detail = format!(
            "sandbox {} started in {started_ms} ms from template ID {}{} (envd {})",
            live.id,
            live.template_id,
            live.alias.as_deref().map(|a| format!(", alias {a}")).unwrap_or_default(),
            live.envd_version,
        );
        if live.template_id != inner.template {
            detail.push_str(&format!(
                "; sandbox.e2b.template = {:?} resolved to {}: put the ID in the config to pin this template",
                inner.template, live.template_id
            ));
        }
        out.push(("e2b sandbox start".into(), true, detail));

        let step = |args: Vec<String>| inner.run_bounded(live, args);

        // The extractor is where the template says, runs, and is the same version as this service.
        let ours = env!("CARGO_PKG_VERSION");
        match step(vec!["--version".into()]).await {
            Ok(o) if o.end.as_ref().is_some_and(|e| e.exit_code == 0) => {
                let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
                let theirs = text.split_whitespace().last().unwrap_or("").to_string();
                let ok = theirs == ours;
                let detail = if ok {
                    format!("{} runs: {text}", inner.extractor)
                } else {
                    format!("the template has {text:?}, this service is {ours}: rebuild the template (e2b/README.md)")
                };
                out.push(("e2b extractor version".into(), ok, detail));
            }
            Ok(o) => out.push((
                "e2b extractor version".into(),
                false,
                format!("{} --version failed: {}", inner.extractor, describe_failure(&o)),
            )),
            Err(e) => out.push(("e2b extractor version".into(), false, format!("{}: {e}", inner.extractor))),
        }

        // The tools and language packs, seen from inside the sandbox at run time (not just at build time).
        match step(vec!["sandbox-probe".into()]).await {
            Ok(o) if o.end.as_ref().is_some_and(|e| e.exit_code == 0) => {
                let mut any = false;
                for line in String::from_utf8_lossy(&o.stdout).lines() {
                    if let Ok(p) = serde_json::from_str::<serde_json::Value>(line) {
                        any = true;
                        out.push((
                            p["name"].as_str().unwrap_or("?").to_string(),
                            p["ok"].as_bool().unwrap_or(false),
                            p["detail"].as_str().unwrap_or("").to_string(),
                        ));
                    }
                }
                if !any {
                    out.push((
                        "e2b sandbox-probe".into(),
                        false,
                        "the extractor's sandbox-probe printed nothing".into(),
                    ));
                }
            }
            Ok(o) => out.push(("e2b sandbox-probe".into(), false, describe_failure(&o))),
            Err(e) => out.push(("e2b sandbox-probe".into(), false, e.to_string())),
        }

        // A real document through the real path: upload, sandbox-run, parse.
        let t1 = Instant::now();
        let sample = async {
            let deadline = Instant::now() + inner.timeout;
            let args =
                run_args("e2b-probe.xml", &ExtractOptions { max_pages: 1, max_image_pixels: 1, ..Default::default() });
            tokio::time::timeout_at(deadline, async {
                inner.upload(live, PROBE_SAMPLE.as_bytes()).await?;
                let o = inner.run(live, args, deadline).await?;
                parse_results(&o)
            })
            .await
            .unwrap_or(Err(E2bError::Timeout { secs: inner.timeout.as_secs() }))
        };
        match sample.await {
            Ok(r) if r.first().and_then(|e| e.invoice_number.as_deref()) == Some(PROBE_SAMPLE_NUMBER) => out.push((
                "e2b sample document".into(),
                true,
                format!("read invoice {PROBE_SAMPLE_NUMBER} in {} ms", t1.elapsed().as_millis()),
            )),
            Ok(r) => out.push((
                "e2b sample document".into(),
                false,
                format!(
                    "expected invoice {PROBE_SAMPLE_NUMBER}, got {}",
                    serde_json::to_string(&r).unwrap_or_default()
                ),
            )),
            Err(e) => out.push(("e2b sample document".into(), false, e.to_string())),
        }

        let id = live.id.clone();
        match guard.delete().await {
            Ok(()) => out.push(("e2b sandbox delete".into(), true, format!("sandbox {id} deleted"))),
            Err(e) => out.push((
                "e2b sandbox delete".into(),
                false,
                format!("sandbox {id} not deleted ({e}); E2B stops it at its TTL"),
            )),
        }
        out
    }
}

impl Inner {
    /// Run a command in the sandbox within one `timeout`.
    async fn run_bounded(&self, live: &Live, args: Vec<String>) -> Result<ProcessOutput, E2bError> {
        let deadline = Instant::now() + self.timeout;
        match tokio::time::timeout_at(deadline, self.run(live, args, deadline)).await {
            Ok(r) => r,
            Err(_) => Err(E2bError::Timeout { secs: self.timeout.as_secs() }),
        }
    }

    /// One document: a sandbox (pooled or new), upload, run, parse; the sandbox deleted in every case.
    async fn read_document(
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
            match tokio::time::timeout_at(deadline, self.upload(g.live(), bytes)).await {
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
                match tokio::time::timeout_at(deadline, self.upload(g.live(), bytes)).await {
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
            parse_results(&out)
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
    async fn create_detached(
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
    async fn create(&self, purpose: &'static str, ttl: Duration, deadline: Option<Instant>) -> Result<Live, E2bError> {
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
                429 => {
                    let wait = retry_after(resp.headers());
                    let message = error_message(resp).await;
                    let pause = wait.unwrap_or(DEFAULT_RETRY_AFTER).min(MAX_RETRY_AFTER);
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

    fn envd_url(&self, id: &str, domain: Option<&str>) -> String {
        if let Some(u) = &self.envd_override {
            return u.clone();
        }
        let domain = domain.map(str::trim).filter(|d| !d.is_empty()).map(str::to_string).unwrap_or_else(|| {
            let host = reqwest::Url::parse(&self.api_url).ok().and_then(|u| u.host_str().map(str::to_string));
            match host {
                Some(h) if h.starts_with("api.") => h["api.".len()..].to_string(),
                _ => "e2b.app".to_string(),
            }
        });
        format!("https://{ENVD_PORT}-{id}.{domain}")
    }

    fn envd_request(&self, live: &Live, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let mut b = builder
            .header("E2b-Sandbox-Id", &live.id)
            .header("E2b-Sandbox-Port", ENVD_PORT.to_string())
            .header("Authorization", SANDBOX_USER_BASIC);
        if let Some(t) = &live.access_token {
            b = b.header("X-Access-Token", t.expose());
        }
        b
    }

    /// envd `POST /files?path=/tmp/document` (multipart, field `file`).
    async fn upload(&self, live: &Live, bytes: &[u8]) -> Result<(), E2bError> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/files", live.envd_url),
            &[("path", SANDBOX_DOCUMENT), ("username", SANDBOX_USER)],
        )
        .map_err(|e| E2bError::Config(format!("bad envd URL {}: {e}", live.envd_url)))?;
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name("document")
            .mime_str("application/octet-stream")
            .map_err(|e| E2bError::Protocol(e.to_string()))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let resp = self
            .envd_request(live, self.http.post(url))
            .multipart(form)
            .send()
            .await
            .map_err(|e| connection_error("upload the document", e))?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(()),
            404 | 502 | 503 | 504 => {
                Err(E2bError::SandboxDied(format!("upload answered HTTP {status}: {}", error_message(resp).await)))
            }
            _ => Err(E2bError::Http { what: "upload the document", status, message: error_message(resp).await }),
        }
    }

    /// envd `process.Process/Start`: run the extractor with `args`, collect its output until its end event.
    async fn run(&self, live: &Live, args: Vec<String>, deadline: Instant) -> Result<ProcessOutput, E2bError> {
        let envs: BTreeMap<&str, &str> = EXTRACTOR_ENV.iter().copied().collect();
        let mut request = serde_json::json!({
            "process": { "cmd": self.extractor, "args": args, "envs": envs, "cwd": "/tmp" },
        });
        if envd_at_least(&live.envd_version, ENVD_COMMANDS_STDIN) {
            request["stdin"] = serde_json::Value::Bool(false);
        }
        let body = encode_frame(0, &serde_json::to_vec(&request).expect("JSON of plain values"));
        let remaining_ms = deadline.saturating_duration_since(Instant::now()).as_millis().max(1);
        let mut resp = self
            .envd_request(live, self.http.post(format!("{}/process.Process/Start", live.envd_url)))
            .header("Content-Type", "application/connect+json")
            .header("Connect-Protocol-Version", "1")
            .header("Connect-Timeout-Ms", remaining_ms.to_string())
            .header("Keepalive-Ping-Interval", KEEPALIVE_SECS)
            .body(body)
            .send()
            .await
            .map_err(|e| connection_error("start the extractor", e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(match status {
                404 | 502 | 503 | 504 => E2bError::SandboxDied(format!(
                    "process start answered HTTP {status}: {}",
                    error_message(resp).await
                )),
                _ => {
                    let text = resp.text().await.unwrap_or_default();
                    match serde_json::from_str::<ConnectError>(&text) {
                        Ok(ce) if !ce.code.is_empty() => rpc_error(ce, self.timeout.as_secs()),
                        _ => E2bError::Http { what: "start the extractor", status, message: truncate(&text, 300) },
                    }
                }
            });
        }
        let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if !content_type.starts_with("application/connect+json") {
            return Err(E2bError::Protocol(format!("process start answered content-type {content_type:?}")));
        }

        let mut out = ProcessOutput::default();
        let mut decoder = FrameDecoder::default();
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) if out.end.is_some() => {
                    tracing::debug!(error = %e, "the process stream broke after its end event");
                    return Ok(out);
                }
                Err(e) => {
                    return Err(E2bError::SandboxDied(format!("the process stream broke before its end event: {e}")))
                }
            };
            decoder.push(&chunk);
            while let Some((flags, data)) = decoder.next_frame()? {
                if flags & FLAG_END_STREAM != 0 {
                    let end: EndStream = serde_json::from_slice(&data)
                        .map_err(|e| E2bError::Protocol(format!("bad end-of-stream frame: {e}")))?;
                    if let Some(err) = end.error {
                        return Err(rpc_error(err, self.timeout.as_secs()));
                    }
                    return match out.end {
                        Some(_) => Ok(out),
                        None => Err(E2bError::SandboxDied("the process stream ended without an end event".into())),
                    };
                }
                if flags & FLAG_COMPRESSED != 0 {
                    return Err(E2bError::Protocol("a compressed frame, though no compression was offered".into()));
                }
                let msg: StartResponse = serde_json::from_slice(&data).map_err(|e| {
                    E2bError::Protocol(format!(
                        "bad process event ({e}): {}",
                        truncate(&String::from_utf8_lossy(&data), 200)
                    ))
                })?;
                let Some(event) = msg.event else { continue };
                if let Some(start) = event.start {
                    out.pid = start.pid;
                }
                if let Some(d) = event.data {
                    if let Some(s) = d.stdout {
                        let bytes = decode_b64(&s)?;
                        let room = MAX_STDOUT.saturating_sub(out.stdout.len());
                        out.stdout.extend_from_slice(&bytes[..bytes.len().min(room)]);
                    }
                    if let Some(s) = d.stderr {
                        out.stderr.extend_from_slice(&decode_b64(&s)?);
                        if out.stderr.len() > MAX_STDERR {
                            let cut = out.stderr.len() - MAX_STDERR;
                            out.stderr.drain(..cut);
                        }
                    }
                }
                if let Some(end) = event.end {
                    out.end = Some(EndInfo {
                        // proto3 JSON leaves out a zero exit code: absent means 0.
                        exit_code: end.exit_code.as_ref().and_then(json_int).unwrap_or(0),
                        status: end.status.unwrap_or_default(),
                        error: end.error.filter(|e| !e.is_empty()),
                    });
                }
            }
        }
        if decoder.has_partial() {
            return Err(E2bError::SandboxDied("the process stream stopped in the middle of a frame".into()));
        }
        match out.end {
            Some(_) => Ok(out),
            None => Err(E2bError::SandboxDied("the process stream ended without an end event".into())),
        }
    }

    /// `DELETE /sandboxes/{id}`; a 404 means it is already gone. Retried once on a transient failure.
    async fn delete(&self, id: &str) -> Result<(), E2bError> {
        delete_sandbox(&self.http, &self.api_url, &self.api_key, id).await
    }

    async fn delete_logged(&self, id: &str) {
        if let Err(e) = self.delete(id).await {
            tracing::warn!(sandbox = id, error = %e, "E2B sandbox not deleted; E2B stops it at its TTL");
        }
    }

    fn take_pooled(&self) -> Option<Live> {
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

    fn put_in_pool(&self, mut guard: SandboxGuard) {
        if self.closed.load(Ordering::SeqCst) {
            return; // dropping the guard deletes it
        }
        if let Some(live) = guard.live.take() {
            self.pool.lock().expect("pool lock").push_back(Pooled { live, started: Instant::now() });
        }
    }

    /// Start creations in the background until the pool (plus creations in flight) is full again.
    fn refill_pool(self: &Arc<Self>) {
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

async fn delete_sandbox(http: &reqwest::Client, api_url: &str, key: &Secret, id: &str) -> Result<(), E2bError> {
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

// ---------------------------------------------------------------------------------------------------------------
// The guard: a created sandbox is deleted exactly once, whatever path the code takes.
// ---------------------------------------------------------------------------------------------------------------

/// Owns one running sandbox. `delete()` deletes it and waits; dropping it without `delete()` (an early return,
/// a cancelled future, a panic unwinding) deletes it in a background task.
struct SandboxGuard {
    inner: Arc<Inner>,
    live: Option<Live>,
}

impl SandboxGuard {
    fn new(inner: Arc<Inner>, live: Live) -> Self {
        SandboxGuard { inner, live: Some(live) }
    }

    fn live(&self) -> &Live {
        self.live.as_ref().expect("a guard holds its sandbox until deleted")
    }

    async fn delete(mut self) -> Result<(), E2bError> {
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

// ---------------------------------------------------------------------------------------------------------------
// Creation rate: a token bucket shared by every caller
// ---------------------------------------------------------------------------------------------------------------

struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

struct BucketState {
    tokens: f64,
    last: Instant,
    paused_until: Option<Instant>,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            state: Mutex::new(BucketState { tokens: burst, last: Instant::now(), paused_until: None }),
        }
    }

    /// Wait for one token.
    async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().expect("bucket lock");
                let now = Instant::now();
                match s.paused_until {
                    Some(until) if now < until => until - now,
                    _ => {
                        s.paused_until = None;
                        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
                        s.tokens = (s.tokens + elapsed * self.rate).min(self.burst);
                        s.last = now;
                        if s.tokens >= 1.0 {
                            s.tokens -= 1.0;
                            return;
                        }
                        Duration::from_secs_f64((1.0 - s.tokens) / self.rate)
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Nobody creates for `d` (after a 429), and the bucket starts empty after it.
    fn pause_for(&self, d: Duration) {
        let mut s = self.state.lock().expect("bucket lock");
        let until = Instant::now() + d;
        s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
        s.tokens = 0.0;
        s.last = until;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Wire formats
// ---------------------------------------------------------------------------------------------------------------

/// `POST /sandboxes` answer (`Sandbox` in E2B's OpenAPI spec). Only `sandboxID` is needed; the rest is used when
/// present. `envdAccessToken` is only returned for `secure: true` sandboxes.
#[derive(Debug, Deserialize)]
struct CreatedSandbox {
    #[serde(rename = "sandboxID")]
    sandbox_id: String,
    #[serde(rename = "templateID", default)]
    template_id: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    #[serde(rename = "envdVersion", default)]
    envd_version: Option<String>,
    #[serde(rename = "envdAccessToken", default)]
    envd_access_token: Option<String>,
    #[serde(default)]
    domain: Option<String>,
}

/// Connect-RPC envelope flags.
const FLAG_COMPRESSED: u8 = 0x01;
const FLAG_END_STREAM: u8 = 0x02;

fn encode_frame(flags: u8, json: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + json.len());
    f.push(flags);
    f.extend_from_slice(&(json.len() as u32).to_be_bytes());
    f.extend_from_slice(json);
    f
}

/// Splits a byte stream into Connect envelopes, whatever the chunking.
#[derive(Default)]
struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn next_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, E2bError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(E2bError::Protocol(format!("a {len}-byte frame, more than the {MAX_FRAME} allowed")));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let flags = self.buf[0];
        let data = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((flags, data)))
    }

    fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// `process.StartResponse` in proto3 JSON.
#[derive(Debug, Deserialize)]
struct StartResponse {
    #[serde(default)]
    event: Option<ProcessEvent>,
}

#[derive(Debug, Deserialize)]
struct ProcessEvent {
    #[serde(default)]
    start: Option<StartEvent>,
    #[serde(default)]
    data: Option<DataEvent>,
    #[serde(default)]
    end: Option<EndEvent>,
}

#[derive(Debug, Deserialize)]
struct StartEvent {
    #[serde(default)]
    pid: Option<u32>,
}

/// `bytes` fields are base64 in proto3 JSON.
#[derive(Debug, Deserialize)]
struct DataEvent {
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    stderr: Option<String>,
}

/// Every field may be absent: proto3 JSON omits defaults (`exitCode: 0`, `exited: false`, `status: ""`).
#[derive(Debug, Deserialize)]
struct EndEvent {
    #[serde(rename = "exitCode", alias = "exit_code", default)]
    exit_code: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The end-of-stream frame: `{}` or `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Deserialize)]
struct EndStream {
    #[serde(default)]
    error: Option<ConnectError>,
}

#[derive(Debug, Deserialize)]
struct ConnectError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// A Connect error from envd; its own deadline (we send `Connect-Timeout-Ms`) is our timeout.
fn rpc_error(e: ConnectError, timeout_secs: u64) -> E2bError {
    match e.code.as_str() {
        "deadline_exceeded" => E2bError::Timeout { secs: timeout_secs },
        _ => E2bError::Rpc { code: e.code, message: e.message },
    }
}

/// proto3 JSON writes 32-bit integers as numbers but parsers must accept strings too.
fn json_int(v: &serde_json::Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn decode_b64(s: &str) -> Result<Vec<u8>, E2bError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let t = s.trim_end_matches('=');
    let padded = |e: &base64::engine::GeneralPurpose| {
        e.decode(s).or_else(|_| {
            let mut p = t.to_string();
            while p.len() % 4 != 0 {
                p.push('=');
            }
            e.decode(p)
        })
    };
    padded(&STANDARD)
        .or_else(|_| padded(&URL_SAFE))
        .map_err(|e| E2bError::Protocol(format!("output is not base64: {e}")))
}

fn envd_at_least(version: &str, min: (u32, u32, u32)) -> bool {
    let mut parts = version.trim_start_matches('v').split(['.', '-', '+']).map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    // An unknown version is taken as current: templates built today have a recent envd.
    version.is_empty() || v >= min
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

/// `sandbox-run --name=NAME [options] /tmp/document`. Values are attached with `=` so a file name that starts
/// with `-` is a value, not an option.
fn run_args(filename: &str, o: &ExtractOptions) -> Vec<String> {
    let mut a = vec![
        "sandbox-run".to_string(),
        format!("--name={filename}"),
        format!("--max-pages={}", o.max_pages),
        format!("--max-pixels={}", o.max_image_pixels),
    ];
    if o.no_embedded {
        a.push("--no-embedded".into());
    }
    a.extend(o.own_names.iter().map(|n| format!("--own-name={n}")));
    a.extend(o.own_tax_ids.iter().map(|t| format!("--own-tax-id={t}")));
    a.extend(o.memory_args());
    a.push(SANDBOX_DOCUMENT.into());
    a
}

/// Results from the extractor's stdout: one JSON object per line, as the local backend reads them.
fn parse_results(out: &ProcessOutput) -> Result<Vec<Extraction>, E2bError> {
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed: Vec<Extraction> =
        text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    let exit_ok = out.end.as_ref().is_some_and(|e| e.exit_code == 0 && e.error.is_none());
    if exit_ok && !parsed.is_empty() {
        return Ok(parsed);
    }
    Err(E2bError::Extractor(describe_failure(out)))
}

fn describe_failure(out: &ProcessOutput) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = tail[tail.len().saturating_sub(3)..].join(" | ");
    let why = match &out.end {
        None => "the extractor did not finish".to_string(),
        Some(e) if e.status.contains("killed") => "the extractor was killed (out of memory or time)".to_string(),
        Some(e) if e.status.starts_with("signal") => format!("the extractor crashed ({})", e.status),
        Some(e) if e.exit_code == 0 && e.error.is_none() => "the extractor printed no result".to_string(),
        Some(e) => match &e.error {
            Some(err) => format!("the extractor exited with code {} ({err})", e.exit_code),
            None => format!("the extractor exited with code {}", e.exit_code),
        },
    };
    if tail.is_empty() {
        why
    } else {
        format!("{why}: {tail}")
    }
}

fn connection_error(what: &'static str, e: reqwest::Error) -> E2bError {
    // reqwest's message names the URL (host and sandbox ID), never our headers: no key in it.
    E2bError::Connection { what, message: e.to_string() }
}

/// The `message` of an E2B error body (`{"code": 401, "message": "..."}`), else the start of the body.
async fn error_message(resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) if v["message"].is_string() => v["message"].as_str().unwrap_or_default().to_string(),
        _ => truncate(text.trim(), 300),
    }
}

/// `Retry-After`: delta-seconds (fractions tolerated) or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
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

    #[test]
    fn frames_are_found_whatever_the_chunking() {
        let mut bytes = encode_frame(0, br#"{"event":{"start":{"pid":7}}}"#);
        bytes.extend(encode_frame(0, br#"{"event":{"end":{"exited":true,"status":"exit status 0"}}}"#));
        bytes.extend(encode_frame(FLAG_END_STREAM, b"{}"));
        let mut d = FrameDecoder::default();
        let mut frames = Vec::new();
        for b in bytes.chunks(3) {
            d.push(b);
            while let Some(f) = d.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].0, FLAG_END_STREAM);
        assert!(!d.has_partial());
        let end: StartResponse = serde_json::from_slice(&frames[1].1).unwrap();
        let e = end.event.unwrap().end.unwrap();
        assert_eq!(e.exit_code.as_ref().and_then(json_int).unwrap_or(0), 0);
    }

    #[test]
    fn a_file_name_starting_with_a_dash_stays_a_value() {
        let a = run_args("-rf.pdf", &ExtractOptions { own_names: vec!["-x".into()], ..Default::default() });
        assert!(a.contains(&"--name=-rf.pdf".to_string()));
        assert!(a.contains(&"--own-name=-x".to_string()));
        assert_eq!(a.last().map(String::as_str), Some(SANDBOX_DOCUMENT));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn base64_output_is_decoded_with_or_without_padding() {
        assert_eq!(decode_b64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_b64("aGk").unwrap(), b"hi");
        assert_eq!(decode_b64("_-8=").unwrap(), vec![0xff, 0xef]);
    }

    #[test]
    fn plain_http_is_only_allowed_to_loopback() {
        assert!(check_url("k", "https://api.e2b.app").is_ok());
        assert!(check_url("k", "http://127.0.0.1:3000").is_ok());
        assert!(check_url("k", "http://localhost:3000").is_ok());
        assert!(check_url("k", "http://api.e2b.app").is_err());
    }

    #[test]
    fn envd_is_addressed_by_port_and_sandbox_id() {
        let client = E2bSandbox::new(&E2bConfig::new("e2b_00", "tmpl")).unwrap();
        assert_eq!(client.inner.envd_url("sbx1", None), "https://49983-sbx1.e2b.app");
        assert_eq!(client.inner.envd_url("sbx1", Some("e2b.dev")), "https://49983-sbx1.e2b.dev");
    }

    #[tokio::test]
    async fn the_token_bucket_spaces_creations() {
        let b = TokenBucket::new(20.0, 1.0);
        let t0 = Instant::now();
        for _ in 0..5 {
            b.acquire().await;
        }
        // One immediately, then four at 50 ms each.
        assert!(t0.elapsed() >= Duration::from_millis(190), "{:?}", t0.elapsed());
    }
}
