//! Configuration: one TOML file, environment overrides, secrets from files, all validated at start-up.
//!
//! Any key can be overridden by `INVOICE_INTAKE__SECTION__KEY` (double underscores, like `config-rs`), which is how
//! containers and CI pass secrets. A secret may also come from `*_file` (systemd `LoadCredential`). Unknown keys
//! and bad values are rejected with an error that names the key, because a typo in `processed_mailbox` would
//! otherwise silently leave mail in the inbox.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

pub const ENV_PREFIX: &str = "INVOICE_INTAKE__";

/// A string that never prints: `Debug` and `Display` show `***`, so a config dump or a log line cannot leak it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS (IMAP 143, submission 587).
    Starttls,
    /// No encryption; only accepted towards loopback hosts or with `allow_insecure = true`.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// LOGIN / AUTHENTICATE PLAIN (IMAP), AUTH PLAIN / LOGIN (SMTP).
    #[default]
    Password,
    /// SASL XOAUTH2 with an OAuth2 access token (Gmail, Microsoft 365): see the `oauth2` section.
    Xoauth2,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    pub host: String,
    #[serde(default = "default_imap_port")]
    pub port: u16,
    #[serde(default = "default_tls")]
    pub tls: Tls,
    /// Plaintext to a non-loopback host. Off by default: a password over the open network is never a default.
    #[serde(default)]
    pub allow_insecure: bool,
    /// PEM file with extra CA certificates (a private CA); the system roots are always trusted too.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    pub username: String,
    #[serde(default)]
    pub auth: AuthMethod,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Where XOAUTH2 tokens come from, when `auth = "xoauth2"`.
    #[serde(default)]
    pub oauth2: Option<crate::mail::oauth2::OAuth2Config>,
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    #[serde(default = "default_processed")]
    pub processed_mailbox: String,
    #[serde(default = "default_failed")]
    pub failed_mailbox: String,
    /// Fallback when the server lacks IDLE, and the longest a missed IDLE notification can delay a message.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Use IDLE when the server offers it (RFC 2177).
    #[serde(default = "yes")]
    pub idle: bool,
    /// Instead of IDLE, poll with NOOP every this many milliseconds: for replies within 100 ms from servers that
    /// delay IDLE notifications (Dovecot holds them 500 ms to batch changes). Off (0) by default.
    #[serde(default)]
    pub fast_poll_ms: Option<u64>,
    /// Messages fetched per round, so a large backlog is taken in bounded bites.
    #[serde(default = "default_fetch_batch")]
    pub fetch_batch: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default = "default_tls")]
    pub tls: Tls,
    #[serde(default)]
    pub allow_insecure: bool,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The address replies come from; also how we recognise our own mail and never answer it.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub auth: AuthMethod,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Where XOAUTH2 tokens come from, when `auth = "xoauth2"` (usually the same as imap.oauth2).
    #[serde(default)]
    pub oauth2: Option<crate::mail::oauth2::OAuth2Config>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Secret,
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    #[serde(default = "default_db_connections")]
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxBackend {
    /// bubblewrap on this machine (the default).
    Local,
    /// No jail at all; only for machines without user namespaces, and loudly warned about.
    None,
    /// A fresh e2b.dev cloud sandbox per document (`[sandbox.e2b]`).
    E2b,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    #[serde(default = "default_backend")]
    pub backend: SandboxBackend,
    /// Wall-clock limit per document; the whole process tree is killed past it.
    #[serde(default = "default_sandbox_timeout")]
    pub timeout_secs: u64,
    /// Address-space limit for the extractor and its tools (tesseract needs a few hundred MB).
    #[serde(default = "default_sandbox_memory")]
    pub memory_mb: u64,
    #[serde(default = "default_sandbox_cpu")]
    pub cpu_secs: u64,
    /// Documents extracted at once; 0 means one per core.
    #[serde(default)]
    pub concurrency: usize,
    /// Jails started ahead of time, each waiting for the one document it will read; unset means one per
    /// extraction slot, 0 starts each jail only when its document arrives.
    #[serde(default)]
    pub standby: Option<usize>,
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// Decompression-bomb guard: images larger than this many pixels are refused before decoding.
    #[serde(default = "default_max_pixels")]
    pub max_image_pixels: u64,
    /// The extractor binary run inside the jail; defaults to this very executable.
    #[serde(default)]
    pub extractor: Option<PathBuf>,
    /// Settings of the E2B backend; required when `backend = "e2b"`.
    #[serde(default)]
    pub e2b: Option<crate::sandbox::e2b::E2bConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    #[serde(default)]
    pub accountants: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderPolicy {
    /// Answer every sender (tests and demos).
    Any,
    /// Answer only the addresses and domains in `allowlist`.
    Allowlist,
    /// Answer only mail our own MTA authenticated (DMARC pass, or aligned DKIM pass), read from the topmost
    /// Authentication-Results header stamped with `authserv_id` (RFC 8601, RFC 7489).
    Authenticated,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    #[serde(default = "default_policy")]
    pub sender_policy: SenderPolicy,
    #[serde(default)]
    pub allowlist: Vec<String>,
    /// The authserv-id our receiving MTA writes in Authentication-Results (e.g. "mx.example.com").
    #[serde(default)]
    pub authserv_id: Option<String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig { sender_policy: default_policy(), allowlist: Vec::new(), authserv_id: None }
    }
}

impl SecurityConfig {
    pub fn policy(&self) -> crate::mail::auth::SenderPolicy {
        use crate::mail::auth::SenderPolicy as P;
        match self.sender_policy {
            SenderPolicy::Any => P::Any,
            SenderPolicy::Allowlist => P::Allowlist(self.allowlist.clone()),
            SenderPolicy::Authenticated => {
                P::Authenticated { authserv_id: self.authserv_id.clone().unwrap_or_default() }
            }
        }
    }
}

/// Our own company, so that it is never reported as the supplier of an invoice addressed to us.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyConfig {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub tax_ids: Vec<String>,
    /// What to do with an invoice whose customer is clearly another company.
    #[serde(default)]
    pub on_foreign_customer: ForeignCustomer,
}

/// `[company] on_foreign_customer`: book an invoice addressed to another company flagged for review, or answer
/// the supplier that it is not ours and book nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForeignCustomer {
    #[default]
    Flag,
    Reject,
}

/// `[review]`: when an invoice needs an accountant's look before it is booked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// A field read with less confidence than this (0..1) puts the invoice in `needs_review`.
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f32,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig { min_confidence: default_min_confidence() }
    }
}

fn default_min_confidence() -> f32 {
    0.6
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Es,
    En,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyConfig {
    /// Used when the message's own language cannot be told.
    #[serde(default = "default_language")]
    pub default_language: Language,
}

impl Default for ReplyConfig {
    fn default() -> Self {
        ReplyConfig { default_language: default_language() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default = "default_max_message")]
    pub max_message_bytes: u64,
    #[serde(default = "default_max_attachments")]
    pub max_attachments: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { max_message_bytes: default_max_message(), max_attachments: default_max_attachments() }
    }
}

/// `/metrics` (Prometheus) and `/healthz`; off unless `listen` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// e.g. "127.0.0.1:9184". Keep it on loopback or a private network: it needs no authentication.
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive; `RUST_LOG` wins when set.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: default_log_format(), level: default_log_level() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub imap: ImapConfig,
    pub smtp: SmtpConfig,
    pub database: DatabaseConfig,
    #[serde(default = "default_sandbox")]
    pub sandbox: SandboxConfig,
    #[serde(default)]
    pub notify: NotifyConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    #[serde(default)]
    pub company: CompanyConfig,
    #[serde(default)]
    pub review: ReviewConfig,
    #[serde(default)]
    pub reply: ReplyConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
}

fn default_imap_port() -> u16 {
    993
}
fn default_smtp_port() -> u16 {
    465
}
fn default_tls() -> Tls {
    Tls::Implicit
}
fn default_mailbox() -> String {
    "INBOX".into()
}
fn default_processed() -> String {
    "Processed".into()
}
fn default_failed() -> String {
    "Failed".into()
}
fn default_poll() -> u64 {
    60
}
fn default_fetch_batch() -> u32 {
    50
}
fn yes() -> bool {
    true
}
fn default_db_connections() -> u32 {
    8
}
fn default_backend() -> SandboxBackend {
    SandboxBackend::Local
}
fn default_sandbox_timeout() -> u64 {
    120
}
fn default_sandbox_memory() -> u64 {
    2048
}
fn default_sandbox_cpu() -> u64 {
    120
}
fn default_max_pages() -> u32 {
    50
}
fn default_max_pixels() -> u64 {
    // An A4 page at 600 dpi is about 35 Mpx; anything past 100 Mpx is a bomb, not a scan.
    100_000_000
}
fn default_sandbox() -> SandboxConfig {
    SandboxConfig {
        backend: default_backend(),
        timeout_secs: default_sandbox_timeout(),
        memory_mb: default_sandbox_memory(),
        cpu_secs: default_sandbox_cpu(),
        concurrency: 0,
        standby: None,
        max_pages: default_max_pages(),
        max_image_pixels: default_max_pixels(),
        extractor: None,
        e2b: None,
    }
}
fn default_policy() -> SenderPolicy {
    SenderPolicy::Any
}
fn default_language() -> Language {
    Language::Es
}
fn default_max_message() -> u64 {
    40 * 1024 * 1024
}
fn default_max_attachments() -> usize {
    20
}
fn default_log_format() -> LogFormat {
    LogFormat::Pretty
}
fn default_log_level() -> String {
    "info".into()
}

impl Config {
    /// Read `path`, apply `INVOICE_INTAKE__*` overrides from the process environment, resolve `*_file` secrets and
    /// validate.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        Self::from_toml_with_env(&text, std::env::vars())
            .with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn from_toml_with_env(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
        let mut value: toml::Table = toml::from_str(text)?;
        for (key, val) in env {
            if let Some(path) = key.strip_prefix(ENV_PREFIX) {
                apply_override(&mut value, path, &val)?;
            }
        }
        // Round-trip through text so the error for an unknown key or a bad value quotes the offending line.
        let merged = toml::to_string(&value)?;
        let mut config: Config = toml::from_str(&merged)?;
        config.resolve_secret_files()?;
        config.validate()?;
        Ok(config)
    }

    fn resolve_secret_files(&mut self) -> Result<()> {
        if let Some(p) = &self.imap.password_file {
            self.imap.password = Some(read_secret_file(p, "imap.password_file")?);
        }
        if let Some(p) = &self.smtp.password_file {
            self.smtp.password = Some(read_secret_file(p, "smtp.password_file")?);
        }
        if let Some(p) = &self.database.url_file {
            self.database.url = read_secret_file(p, "database.url_file")?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if self.imap.host.trim().is_empty() {
            bail!("imap.host must not be empty");
        }
        match self.imap.auth {
            AuthMethod::Password if self.imap.password.as_ref().is_none_or(Secret::is_empty) => {
                bail!(
                    "imap.password is missing: set imap.password, imap.password_file or INVOICE_INTAKE__IMAP__PASSWORD"
                )
            }
            AuthMethod::Xoauth2 => self
                .imap
                .oauth2
                .as_ref()
                .context("imap.auth = \"xoauth2\" needs an [imap.oauth2] section")?
                .validate("imap.oauth2")?,
            AuthMethod::Password => {}
        }
        if self.smtp.auth == AuthMethod::Xoauth2 {
            self.smtp
                .oauth2
                .as_ref()
                .context("smtp.auth = \"xoauth2\" needs an [smtp.oauth2] section")?
                .validate("smtp.oauth2")?;
            if self.smtp.username.is_none() {
                bail!("smtp.username is needed with smtp.auth = \"xoauth2\"");
            }
        }
        if !(0.0..=1.0).contains(&self.review.min_confidence) {
            bail!("review.min_confidence must be between 0 and 1, got {}", self.review.min_confidence);
        }
        check_plaintext("imap", &self.imap.host, self.imap.tls, self.imap.allow_insecure)?;
        check_plaintext("smtp", &self.smtp.host, self.smtp.tls, self.smtp.allow_insecure)?;
        if !looks_like_address(&self.smtp.from) {
            bail!("smtp.from must be an email address, got {:?}", self.smtp.from);
        }
        for (i, a) in self.notify.accountants.iter().enumerate() {
            if !looks_like_address(a) {
                bail!("notify.accountants[{i}] must be an email address, got {a:?}");
            }
        }
        if self.imap.processed_mailbox == self.imap.mailbox || self.imap.failed_mailbox == self.imap.mailbox {
            bail!("imap.processed_mailbox and imap.failed_mailbox must differ from imap.mailbox");
        }
        if self.database.max_connections < 2 {
            bail!("database.max_connections must be at least 2: each document in hand holds one, and the loop one");
        }
        if self.imap.poll_interval_secs == 0 {
            bail!("imap.poll_interval_secs must be at least 1");
        }
        if self.imap.fetch_batch == 0 {
            bail!("imap.fetch_batch must be at least 1");
        }
        if self.sandbox.timeout_secs == 0 || self.sandbox.memory_mb < 64 {
            bail!("sandbox.timeout_secs must be > 0 and sandbox.memory_mb at least 64");
        }
        if self.sandbox.backend == SandboxBackend::E2b {
            let e2b = self.sandbox.e2b.as_ref().context("sandbox.backend = \"e2b\" needs a [sandbox.e2b] section")?;
            e2b.validate()?;
        }
        if self.security.sender_policy == SenderPolicy::Authenticated
            && self.security.authserv_id.as_deref().is_none_or(|s| s.trim().is_empty())
        {
            bail!("security.authserv_id must name the receiving MTA when sender_policy = \"authenticated\"");
        }
        if self.security.sender_policy == SenderPolicy::Allowlist && self.security.allowlist.is_empty() {
            bail!("security.allowlist must list addresses or domains when sender_policy = \"allowlist\"");
        }
        if !self.database.url.expose().starts_with("postgres://")
            && !self.database.url.expose().starts_with("postgresql://")
        {
            bail!("database.url must be a postgres:// URL");
        }
        Ok(())
    }

    /// Extraction workers: the configured number, or one per core.
    pub fn extract_concurrency(&self) -> usize {
        if self.sandbox.concurrency > 0 {
            self.sandbox.concurrency
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }
}

fn read_secret_file(path: &Path, key: &str) -> Result<Secret> {
    let s = std::fs::read_to_string(path).with_context(|| format!("{key}: cannot read {}", path.display()))?;
    Ok(Secret::new(s.trim_end_matches(['\r', '\n'])))
}

fn check_plaintext(section: &str, host: &str, tls: Tls, allow_insecure: bool) -> Result<()> {
    if tls == Tls::None && !allow_insecure && !is_loopback(host) {
        bail!(
            "{section}.tls = \"none\" is only allowed for loopback hosts (got {host:?}); use implicit or starttls, \
             or set {section}.allow_insecure = true"
        );
    }
    Ok(())
}

pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
        || host.trim_matches(['[', ']']).parse::<std::net::Ipv6Addr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

fn looks_like_address(s: &str) -> bool {
    s.parse::<lettre::Address>().is_ok()
}

/// `IMAP__PASSWORD` → `[imap] password`. The value is read as a TOML literal when it is one (`993`, `true`,
/// `["a@b"]`), else as a plain string, so a password is never mangled.
fn apply_override(root: &mut toml::Table, path: &str, raw: &str) -> Result<()> {
    let keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
    if keys.iter().any(|k| k.is_empty()) {
        bail!("environment override {ENV_PREFIX}{path} has an empty key");
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|_| !keys.last().is_some_and(|k| k.contains("password") || k.contains("key") || k == "url"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let (last, parents) = keys.split_last().expect("split yields at least one key");
    let mut table = root;
    for k in parents {
        let entry = table.entry(k.clone()).or_insert_with(|| toml::Value::Table(Default::default()));
        table = entry
            .as_table_mut()
            .with_context(|| format!("environment override {ENV_PREFIX}{path}: {k} is not a section"))?;
    }
    table.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [imap]
        host = "127.0.0.1"
        tls = "none"
        username = "intake@example.test"
        password = "hunter2"
        [smtp]
        host = "127.0.0.1"
        tls = "none"
        from = "intake@example.test"
        [database]
        url = "postgres://postgres@127.0.0.1/invoice_intake"
    "#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config> {
        Config::from_toml_with_env(text, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn a_minimal_config_gets_sane_defaults() {
        let c = load(MINIMAL, &[]).unwrap();
        assert_eq!(c.imap.mailbox, "INBOX");
        assert_eq!(c.imap.processed_mailbox, "Processed");
        assert_eq!(c.limits.max_message_bytes, 40 * 1024 * 1024);
        assert_eq!(c.sandbox.backend, SandboxBackend::Local);
    }

    #[test]
    fn an_unknown_key_is_rejected_by_name() {
        let text = MINIMAL.replace("mailbox_typo = 1", "").replace("[smtp]", "proccessed_mailbox = \"X\"\n[smtp]");
        let err = format!("{:#}", load(&text, &[]).unwrap_err());
        assert!(err.contains("proccessed_mailbox"), "{err}");
    }

    #[test]
    fn a_bad_value_names_the_key() {
        let text = MINIMAL.replacen("tls = \"none\"", "tls = \"sometimes\"", 1);
        let err = format!("{:#}", load(&text, &[]).unwrap_err());
        assert!(err.contains("tls") && err.contains("sometimes"), "{err}");
    }

    #[test]
    fn plaintext_to_a_remote_host_is_refused() {
        let text = MINIMAL.replacen("host = \"127.0.0.1\"", "host = \"imap.example.com\"", 1);
        let err = format!("{:#}", load(&text, &[]).unwrap_err());
        assert!(err.contains("imap.tls"), "{err}");
    }

    #[test]
    fn the_environment_overrides_the_file_and_passwords_stay_strings() {
        let c = load(
            MINIMAL,
            &[
                ("INVOICE_INTAKE__IMAP__PASSWORD", "12345"),
                ("INVOICE_INTAKE__IMAP__PORT", "10143"),
                ("INVOICE_INTAKE__NOTIFY__ACCOUNTANTS", r#"["a@example.test"]"#),
            ],
        )
        .unwrap();
        assert_eq!(c.imap.password.unwrap().expose(), "12345");
        assert_eq!(c.imap.port, 10143);
        assert_eq!(c.notify.accountants, vec!["a@example.test"]);
    }

    #[test]
    fn a_password_file_is_read_and_its_newline_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        let text = MINIMAL.replace("password = \"hunter2\"", &format!("password_file = {:?}", p.display().to_string()));
        let c = load(&text, &[]).unwrap();
        assert_eq!(c.imap.password.unwrap().expose(), "s3cret");
    }

    #[test]
    fn the_e2b_section_is_read_checked_and_its_key_never_prints() {
        let text = format!("{MINIMAL}\n[sandbox]\nbackend = \"e2b\"\n[sandbox.e2b]\ntemplate = \"tpl123\"\n");
        let err = format!("{:#}", load(&text, &[]).unwrap_err());
        assert!(err.contains("sandbox.e2b.api_key is missing"), "{err}");
        let c = load(&text, &[("INVOICE_INTAKE__SANDBOX__E2B__API_KEY", "e2b_123456")]).unwrap();
        assert_eq!(c.sandbox.backend, SandboxBackend::E2b);
        let e2b = c.sandbox.e2b.as_ref().unwrap();
        assert_eq!(e2b.api_key.as_ref().unwrap().expose(), "e2b_123456");
        assert_eq!(e2b.api_url, "https://api.e2b.app");
        assert!(!format!("{c:?}").contains("e2b_123456"));
        let typo = text.replace("template =", "templat =");
        let err = format!("{:#}", load(&typo, &[("INVOICE_INTAKE__SANDBOX__E2B__API_KEY", "e2b_1")]).unwrap_err());
        assert!(err.contains("templat"), "{err}");
        let missing = format!("{MINIMAL}\n[sandbox]\nbackend = \"e2b\"\n");
        let err = format!("{:#}", load(&missing, &[]).unwrap_err());
        assert!(err.contains("[sandbox.e2b]"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let c = load(MINIMAL, &[]).unwrap();
        let dump = format!("{c:?}");
        assert!(!dump.contains("hunter2"), "{dump}");
        assert!(!dump.contains("postgres://postgres@"), "{dump}");
    }

    #[test]
    fn the_example_config_is_valid_and_complete() {
        let text = include_str!("../config/example.toml");
        let c = load(text, &[("INVOICE_INTAKE__IMAP__PASSWORD", "x")]).unwrap();
        assert!(!c.notify.accountants.is_empty());
        assert_eq!(c.security.sender_policy, SenderPolicy::Authenticated, "safe by default");
    }
}
