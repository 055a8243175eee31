//! `[sandbox.e2b]`: the backend's settings and the checks that need no network.

use serde::Deserialize;
use std::path::PathBuf;

use std::time::Duration;

use super::{E2bError, DEFAULT_API_URL, DEFAULT_EXTRACTOR_PATH, POOL_MAX_IDLE, TTL_MARGIN};
use crate::secret::Secret;

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
    /// The longest sandbox lifetime the E2B plan allows (1 hour on the hobby plan, 24 on Pro). Each sandbox is
    /// created with a lifetime past `timeout_secs`, and E2B refuses (HTTP 400) one longer than the plan's.
    #[serde(default = "default_max_sandbox_lifetime_secs")]
    pub max_sandbox_lifetime_secs: u64,
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
fn default_max_sandbox_lifetime_secs() -> u64 {
    3600
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
            max_sandbox_lifetime_secs: default_max_sandbox_lifetime_secs(),
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
        let (lifetime, max) = (self.longest_lifetime(), Duration::from_secs(self.max_sandbox_lifetime_secs));
        if lifetime > max {
            let pool = if self.pool_size > 0 {
                format!(" + {} s a pooled sandbox may wait", POOL_MAX_IDLE.as_secs())
            } else {
                String::new()
            };
            return Err(E2bError::Config(format!(
                "sandbox.e2b.timeout_secs = {} is too long for sandbox.e2b.max_sandbox_lifetime_secs = {}: a sandbox \
                 lives timeout_secs + {} s{pool} = {} s, and E2B refuses a longer one; lower timeout_secs to at most \
                 {}, or raise max_sandbox_lifetime_secs if the plan allows longer sandboxes",
                self.timeout_secs,
                max.as_secs(),
                TTL_MARGIN.as_secs(),
                lifetime.as_secs(),
                (max.saturating_sub(lifetime - Duration::from_secs(self.timeout_secs))).as_secs(),
            )));
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

impl E2bConfig {
    /// The longest lifetime a sandbox for a document is created with: our deadline plus the margin, and for a
    /// pooled one also the time it may wait. (`doctor`'s sandbox is capped at the plan's limit instead.)
    pub(super) fn longest_lifetime(&self) -> Duration {
        let idle = if self.pool_size > 0 { POOL_MAX_IDLE } else { Duration::ZERO };
        Duration::from_secs(self.timeout_secs) + TTL_MARGIN + idle
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_past_the_plans_sandbox_lifetime_is_refused_naming_both_keys() {
        let mut c = E2bConfig::new("e2b_00", "tmpl");
        // A sandbox lives timeout_secs + 60 s; E2B refuses a lifetime over the plan's (3600 s on the hobby plan).
        c.timeout_secs = 3540;
        assert!(c.validate().is_ok());
        c.timeout_secs = 3541;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("sandbox.e2b.timeout_secs = 3541") && err.contains("max_sandbox_lifetime_secs"), "{err}");
        assert!(err.contains("at most 3540"), "{err}");
        // A pooled sandbox may also wait up to 240 s before its document comes.
        c.timeout_secs = 3301;
        c.pool_size = 1;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("at most 3300"), "{err}");
        // A plan with longer sandboxes.
        c.max_sandbox_lifetime_secs = 24 * 3600;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn plain_http_is_only_allowed_to_loopback() {
        assert!(check_url("k", "https://api.e2b.app").is_ok());
        assert!(check_url("k", "http://127.0.0.1:3000").is_ok());
        assert!(check_url("k", "http://localhost:3000").is_ok());
        assert!(check_url("k", "http://api.e2b.app").is_err());
    }
}
