//! Configuration: one TOML file, environment overrides, secrets from files, all validated at start-up.
//!
//! Any key can be overridden by `INVOICE_INTAKE__SECTION__KEY` (double underscores, like `config-rs`), which is how
//! containers and CI pass secrets. A secret may also come from `*_file` (systemd `LoadCredential`). Unknown keys
//! and bad values are rejected with an error that names the key, because a typo in `processed_mailbox` would
//! otherwise silently leave mail in the inbox.

pub use crate::extract::{CompanyConfig, ForeignCustomer};
pub use crate::mail::auth::SenderPolicy;
pub use crate::mail::settings::{AuthMethod, ImapConfig, Language, SmtpConfig, Tls};
pub use crate::sandbox::settings::{SandboxBackend, SandboxConfig};
use crate::secret::Secret;
pub use crate::telemetry::{LogConfig, LogFormat};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const ENV_PREFIX: &str = "INVOICE_INTAKE__";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Secret,
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    #[serde(default = "default_db_connections")]
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    #[serde(default)]
    pub accountants: Vec<String>,
    /// Mail quarantined for an unauthenticated sender is reported in one digest per this many minutes, not one
    /// alert each (spam would flood the accountants).
    #[serde(default = "default_alert_digest_minutes")]
    pub alert_digest_minutes: u64,
    /// The language of the accountants' mails; `reply.default_language` when absent.
    #[serde(default)]
    pub language: Option<Language>,
    /// The most bytes of original documents attached to one confirmation; a batch's documents past it are named
    /// but not attached.
    #[serde(default = "default_max_batch_attachment_bytes")]
    pub max_batch_attachment_bytes: u64,
    /// `"08:00"`: at this local time the accountants get the daily digest of the day before. Off when absent.
    #[serde(default)]
    pub digest_at: Option<String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            accountants: Vec::new(),
            alert_digest_minutes: default_alert_digest_minutes(),
            language: None,
            max_batch_attachment_bytes: default_max_batch_attachment_bytes(),
            digest_at: None,
        }
    }
}

impl NotifyConfig {
    /// `digest_at` as a time of day (`HH:MM`), when set.
    pub fn digest_time(&self) -> Result<Option<chrono::NaiveTime>> {
        let Some(at) = &self.digest_at else { return Ok(None) };
        chrono::NaiveTime::parse_from_str(at.trim(), "%H:%M")
            .map(Some)
            .map_err(|_| anyhow::anyhow!("notify.digest_at must be a time of day such as \"08:00\", got {at:?}"))
    }
}

fn default_max_batch_attachment_bytes() -> u64 {
    20 * 1024 * 1024
}

fn default_alert_digest_minutes() -> u64 {
    60
}

/// `[security]`: who may send us invoices, read into the one `SenderPolicy` that `mail::auth` judges by.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "SecuritySection")]
pub struct SecurityConfig {
    pub sender_policy: SenderPolicy,
}

/// `[security]` as written: `sender_policy` names the policy, and the keys beside it give its details.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecuritySection {
    /// "any" (tests and demos), "allowlist" (the addresses and domains in `allowlist`) or "authenticated"
    /// (DMARC pass, or aligned DKIM pass, in the topmost Authentication-Results header stamped with
    /// `authserv_id`; RFC 8601, RFC 7489).
    #[serde(default = "default_policy")]
    sender_policy: String,
    #[serde(default)]
    allowlist: Vec<String>,
    /// The authserv-id our receiving MTA writes in Authentication-Results (e.g. "mx.example.com").
    #[serde(default)]
    authserv_id: Option<String>,
}

impl TryFrom<SecuritySection> for SecurityConfig {
    type Error = String;
    fn try_from(s: SecuritySection) -> Result<Self, String> {
        let sender_policy = match s.sender_policy.as_str() {
            "any" => SenderPolicy::Any,
            "allowlist" if s.allowlist.is_empty() => {
                return Err(
                    "security.allowlist must list addresses or domains when sender_policy = \"allowlist\"".into()
                )
            }
            "allowlist" => SenderPolicy::Allowlist(s.allowlist),
            "authenticated" => match s.authserv_id.filter(|id| !id.trim().is_empty()) {
                Some(authserv_id) => SenderPolicy::Authenticated { authserv_id },
                None => {
                    return Err(
                        "security.authserv_id must name the receiving MTA when sender_policy = \"authenticated\""
                            .into(),
                    )
                }
            },
            other => {
                return Err(format!(
                "security.sender_policy: unknown value {other:?}, expected \"any\", \"allowlist\" or \"authenticated\""
            ))
            }
        };
        Ok(SecurityConfig { sender_policy })
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig { sender_policy: SenderPolicy::Any }
    }
}

impl SandboxConfig {
    /// The time all documents of one message may take together.
    pub fn message_budget(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.message_budget_secs.unwrap_or(3 * self.timeout_secs))
    }
}

impl SecurityConfig {
    pub fn policy(&self) -> SenderPolicy {
        self.sender_policy.clone()
    }
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyConfig {
    /// Used when the message's own language cannot be told.
    #[serde(default = "crate::mail::settings::default_language")]
    pub default_language: Language,
    /// Replies to one sender about mail without an invoice, at most, per hour. A robot that answers every mail
    /// and does not say it is a robot (RFC 3834) would otherwise loop with us forever.
    #[serde(default = "default_replies_without_invoice")]
    pub max_replies_without_invoice_per_hour: u32,
}

impl Default for ReplyConfig {
    fn default() -> Self {
        ReplyConfig {
            default_language: crate::mail::settings::default_language(),
            max_replies_without_invoice_per_hour: default_replies_without_invoice(),
        }
    }
}

fn default_replies_without_invoice() -> u32 {
    3
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub imap: ImapConfig,
    pub smtp: SmtpConfig,
    pub database: DatabaseConfig,
    #[serde(default)]
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

fn default_db_connections() -> u32 {
    8
}
/// Only authenticated mail is answered unless the operator says otherwise: answering anyone lets a spoofer
/// have our replies (and the invoice data in them) sent wherever they like.
fn default_policy() -> String {
    "authenticated".into()
}
fn default_max_message() -> u64 {
    40 * 1024 * 1024
}
fn default_max_attachments() -> usize {
    20
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
        let mut value: toml::Table = toml::from_str(text).map_err(|e| toml_error(&e, text, true))?;
        for (key, val) in env {
            if let Some(path) = key.strip_prefix(ENV_PREFIX) {
                apply_override(&mut value, path, &val)?;
            }
        }
        // Round-trip through text so an unknown key or a bad value is found; the error names the key, since line
        // numbers of the merged text are not the file's.
        let merged = toml::to_string(&value)?;
        let mut config: Config = toml::from_str(&merged).map_err(|e| toml_error(&e, &merged, false))?;
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
        self.notify.digest_time()?;
        check_plaintext("imap", &self.imap.host, self.imap.tls, self.imap.allow_insecure)?;
        check_plaintext("smtp", &self.smtp.host, self.smtp.tls, self.smtp.allow_insecure)?;
        if self.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            bail!(
                "smtp.from must be an email address, optionally with a display name (\"Name\" <a@b>), got {:?}",
                self.smtp.from
            );
        }
        for (i, a) in self.notify.accountants.iter().enumerate() {
            if !looks_like_address(a) {
                bail!("notify.accountants[{i}] must be an email address, got {a:?}");
            }
        }
        for (key, name) in [
            ("imap.mailbox", &self.imap.mailbox),
            ("imap.processed_mailbox", &self.imap.processed_mailbox),
            ("imap.failed_mailbox", &self.imap.failed_mailbox),
        ] {
            if name.trim().is_empty() {
                bail!("{key} must name a mailbox; it is empty");
            }
        }
        for (key, port) in [("imap.port", self.imap.port), ("smtp.port", self.smtp.port)] {
            if port == 0 {
                bail!("{key} must be a port number from 1 to 65535, not 0");
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
        if let Some(l) = self
            .sandbox
            .ocr_languages
            .iter()
            .find(|l| l.is_empty() || !l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        {
            bail!("sandbox.ocr_languages: {l:?} is not a tesseract language code (eng, spa, deu, chi_sim, ...)");
        }
        if self.sandbox.backend == SandboxBackend::E2b {
            let e2b = self.sandbox.e2b.as_ref().context("sandbox.backend = \"e2b\" needs a [sandbox.e2b] section")?;
            e2b.validate()?;
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

/// A TOML error without the quoted line toml prints: that line may hold a password or a database URL. A syntax
/// error in the file says its line and column; an error in the merged config (file and environment) names the
/// key, and quotes no value of a key that may be secret.
fn toml_error(e: &toml::de::Error, text: &str, in_file: bool) -> anyhow::Error {
    let span = e.span();
    let key = span.as_ref().and_then(|s| key_at(text, s.start));
    let secret = key.as_deref().is_some_and(is_secret_key);
    let message = e.message().trim();
    let message = if secret { mask_quoted(message) } else { message.to_string() };
    match (in_file, span, key) {
        (true, Some(s), _) => {
            let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
            let column = s.start - text[..s.start.min(text.len())].rfind('\n').map_or(0, |i| i + 1) + 1;
            anyhow!("TOML error at line {line}, column {column}: {message}")
        }
        (false, _, Some(key)) => anyhow!("{key}: {message}"),
        _ => anyhow!("{message}"),
    }
}

/// The dotted key (`imap.port`) whose line holds byte `at` of `text`, with its `[section]`.
fn key_at(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line.split_once('=').map(|(k, _)| k.trim().trim_matches('"').to_string());
    let section = text[..line_start]
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')).map(|s| s.trim().to_string()));
    match (section, key) {
        (Some(s), Some(k)) => Some(format!("{s}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(s), None) => Some(s),
        (None, None) => None,
    }
}

fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    last.contains("password")
        || last.contains("secret")
        || last.contains("token")
        || last.contains("key")
        || last == "url"
}

/// `message` with every quoted value replaced by `"***"`.
fn mask_quoted(message: &str) -> String {
    let mut out = String::new();
    let mut parts = message.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push('"');
        out.push_str(if i % 2 == 0 { "***" } else { part });
    }
    out
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
        [security]
        sender_policy = "any"
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
    fn the_sender_policy_is_read_with_its_details_and_checked() {
        let base = MINIMAL.replace("[security]\n        sender_policy = \"any\"\n", "");
        let with = |section: &str| load(&format!("{base}\n[security]\n{section}\n"), &[]);
        let c = with("sender_policy = \"allowlist\"\nallowlist = [\"example.com\"]").unwrap();
        assert_eq!(c.security.sender_policy, SenderPolicy::Allowlist(vec!["example.com".into()]));
        let c = with("sender_policy = \"authenticated\"\nauthserv_id = \"mx.example.com\"").unwrap();
        assert_eq!(c.security.sender_policy, SenderPolicy::Authenticated { authserv_id: "mx.example.com".into() });
        for (section, named) in [
            ("sender_policy = \"allowlist\"", "security.allowlist"),
            ("sender_policy = \"authenticated\"", "security.authserv_id"),
            ("sender_policy = \"everyone\"", "security.sender_policy"),
        ] {
            let err = format!("{:#}", with(section).unwrap_err());
            assert!(err.contains(named), "{section}: {err}");
        }
        assert_eq!(load(MINIMAL, &[]).unwrap().security.sender_policy, SenderPolicy::Any);
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
        assert!(matches!(c.security.sender_policy, SenderPolicy::Authenticated { .. }), "safe by default");
    }

    #[test]
    fn a_syntax_error_says_where_and_never_quotes_a_password_or_a_database_url() {
        let broken_password = MINIMAL.replace("password = \"hunter2\"", "password = \"hunter2");
        let err = format!("{:#}", load(&broken_password, &[]).unwrap_err());
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("line 6"), "{err}");
        let broken_url = MINIMAL.replace(
            "url = \"postgres://postgres@127.0.0.1/invoice_intake\"",
            "url = \"postgres://app:s3cr3t@127.0.0.1/invoice_intake\" trailing",
        );
        let err = format!("{:#}", load(&broken_url, &[]).unwrap_err());
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(err.contains("line 12"), "{err}");
    }

    #[test]
    fn an_error_after_environment_overrides_names_the_key_not_a_wrong_line() {
        let text = MINIMAL.replace("[smtp]", "bogus_key = 1\n[smtp]");
        let env = [("INVOICE_INTAKE__SMTP__USERNAME", "x"), ("INVOICE_INTAKE__LOG__LEVEL", "debug")];
        let err = format!("{:#}", load(&text, &env).unwrap_err());
        assert!(err.contains("imap.bogus_key") && !err.contains("line"), "{err}");
        let err = format!("{:#}", load(MINIMAL, &[("INVOICE_INTAKE__IMAP__PORT", "\"abc\"")]).unwrap_err());
        assert!(err.contains("imap.port"), "{err}");
    }

    #[test]
    fn operator_mistakes_are_named_before_anything_runs() {
        let no_policy = MINIMAL.replace("sender_policy = \"any\"", "");
        let err = format!("{:#}", load(&no_policy, &[]).unwrap_err());
        assert!(err.contains("security.authserv_id"), "authenticated is the default: {err}");
        let err = format!("{:#}", load(MINIMAL, &[("INVOICE_INTAKE__IMAP__PROCESSED_MAILBOX", "\"\"")]).unwrap_err());
        assert!(err.contains("imap.processed_mailbox must name a mailbox"), "{err}");
        let err = format!("{:#}", load(MINIMAL, &[("INVOICE_INTAKE__IMAP__PORT", "0")]).unwrap_err());
        assert!(err.contains("imap.port must be a port number"), "{err}");
        let err = format!("{:#}", load(MINIMAL, &[("INVOICE_INTAKE__SMTP__PORT", "0")]).unwrap_err());
        assert!(err.contains("smtp.port"), "{err}");
    }
}
