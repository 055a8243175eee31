//! The mail settings: how to reach the IMAP and SMTP servers, and the language of our replies. `config` reads
//! them from the `[imap]`, `[smtp]` and `[reply]` sections and checks them.

use crate::secret::Secret;
use serde::Deserialize;
use std::path::PathBuf;

impl SmtpConfig {
    /// The bare address of `from`, lower-cased: the envelope sender, and how our own mail is recognised.
    pub fn from_address(&self) -> String {
        bare_address(&self.from)
    }
}

/// `facturas@example.com` of `"Facturas Ejemplo S.L." <facturas@example.com>` (or of a bare address).
pub fn bare_address(mailbox: &str) -> String {
    let s = mailbox.trim();
    let inner = match (s.rfind('<'), s.rfind('>')) {
        (Some(open), Some(close)) if open < close => &s[open + 1..close],
        _ => s,
    };
    inner.trim().to_lowercase()
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
    pub oauth2: Option<super::oauth2::OAuth2Config>,
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
    /// The address replies come from, with a display name if wanted (`"Facturas Ejemplo S.L." <facturas@…>`);
    /// its address is also how we recognise our own mail and never answer it (`from_address`).
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
    pub oauth2: Option<super::oauth2::OAuth2Config>,
}

/// The languages our mails are written in; each has a catalog in `mail::i18n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Es,
    En,
    De,
    Fr,
    Nl,
    It,
    Pt,
}

impl Language {
    pub const ALL: [Language; 7] =
        [Language::Es, Language::En, Language::De, Language::Fr, Language::Nl, Language::It, Language::Pt];

    /// The ISO 639-1 code, as `Content-Language` writes it.
    pub fn code(self) -> &'static str {
        match self {
            Language::Es => "es",
            Language::En => "en",
            Language::De => "de",
            Language::Fr => "fr",
            Language::Nl => "nl",
            Language::It => "it",
            Language::Pt => "pt",
        }
    }

    /// The language of a tag such as `de-AT` or `pt_BR`; `None` for one we do not write.
    pub fn from_tag(tag: &str) -> Option<Language> {
        let primary = tag.trim().split(['-', '_', ';']).next()?.trim().to_ascii_lowercase();
        Language::ALL.into_iter().find(|l| l.code() == primary)
    }
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
pub(crate) fn default_language() -> Language {
    Language::Es
}
