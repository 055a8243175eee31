//! The mail settings: how to reach the IMAP and SMTP servers, and the language of our replies. `config` reads
//! them from the `[imap]`, `[smtp]` and `[reply]` sections and checks them.

use crate::secret::Secret;
use serde::Deserialize;
use std::path::PathBuf;

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
    pub oauth2: Option<super::oauth2::OAuth2Config>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Es,
    En,
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
