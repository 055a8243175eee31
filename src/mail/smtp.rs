//! Delivering queued mail over SMTP (lettre). Only the outbox calls this; nothing sends mail directly, so every
//! mail we send was first made durable.

use anyhow::{Context, Result};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls as LettreTls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

use crate::config::{AuthMethod, SmtpConfig, Tls};

/// Each SMTP command must answer within this; a silent server is treated as a transient failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);
/// Consecutive mails go over one pooled connection (no TCP, greeting and EHLO per mail), but servers cap a
/// session: OpenSMTPD answers `452 4.5.3 Too many messages sent` after 100 mails (its `max-mails` default). A
/// new connection is opened before reaching that.
const MAILS_PER_CONNECTION: u32 = 90;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server could not be reached or talked to (connection refused or reset, timeout, TLS, a 421 "service
    /// not available"): nothing is wrong with this mail. Delivery pauses for every mail and probes again later.
    #[error("SMTP server unreachable: {0}")]
    Unreachable(String),
    /// A 4xx answer to this mail: try it again later.
    #[error("transient SMTP failure: {0}")]
    Transient(String),
    /// 5xx or an address the server will never take: an operator must look.
    #[error("permanent SMTP failure: {0}")]
    Permanent(String),
}

impl SendError {
    /// Worth trying again later (4xx answers, and an unreachable server).
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_) | SendError::Unreachable(_))
    }

    /// The server, not the mail, is the problem.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SendError::Unreachable(_))
    }
}

pub struct Mailer {
    /// The pooled transport, replaced by a fresh one (new connections) every `MAILS_PER_CONNECTION` mails and
    /// after a transient answer; with the mails sent since it was built.
    transport: std::sync::Mutex<(AsyncSmtpTransport<Tokio1Executor>, u32)>,
    /// The settings and credentials to build a fresh transport.
    cfg: SmtpConfig,
    password_auth: Option<(Credentials, Vec<Mechanism>)>,
    /// With `auth = "xoauth2"`: the token source, and the config to build a transport around a fresh token.
    oauth2: Option<(std::sync::Arc<crate::mail::oauth2::TokenSource>, SmtpConfig)>,
}

fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(ca) = &cfg.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("smtp.ca_file: cannot read {}", ca.display()))?;
        b = b.add_root_certificate(Certificate::from_pem(&pem).context("smtp.ca_file is not PEM")?);
    }
    Ok(b.build_rustls()?)
}

/// A transport for `cfg`, authenticating with `auth` (credentials and the SASL mechanisms to offer) if given.
fn build_transport(
    cfg: &SmtpConfig,
    auth: Option<(Credentials, Vec<Mechanism>)>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let tls = match cfg.tls {
        Tls::Implicit => LettreTls::Wrapper(tls_parameters(cfg)?),
        Tls::Starttls => LettreTls::Required(tls_parameters(cfg)?),
        Tls::None => LettreTls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if let Some((credentials, mechanisms)) = auth {
        builder = builder.credentials(credentials).authentication(mechanisms);
    }
    Ok(builder.build())
}

impl Mailer {
    pub fn new(cfg: &SmtpConfig) -> Result<Mailer> {
        let password_auth = cfg.username.as_ref().filter(|_| cfg.auth == AuthMethod::Password).map(|user| {
            let password = cfg.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
            (Credentials::new(user.clone(), password), vec![Mechanism::Plain, Mechanism::Login])
        });
        let oauth2 = match (&cfg.auth, &cfg.oauth2) {
            (AuthMethod::Xoauth2, Some(o)) => {
                Some((std::sync::Arc::new(crate::mail::oauth2::TokenSource::new(o.clone())?), cfg.clone()))
            }
            _ => None,
        };
        let transport = build_transport(cfg, password_auth.clone())?;
        Ok(Mailer { transport: std::sync::Mutex::new((transport, 0)), cfg: cfg.clone(), password_auth, oauth2 })
    }

    /// The pooled transport for the next mail, renewed when its connection has carried its share of mail.
    fn pooled(&self, renew: bool) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let mut t = self.transport.lock().expect("smtp transport lock");
        if renew || t.1 >= MAILS_PER_CONNECTION {
            let fresh = build_transport(&self.cfg, self.password_auth.clone())
                .map_err(|e| SendError::Permanent(format!("{e:#}")))?;
            *t = (fresh, 0);
        }
        t.1 += 1;
        Ok(t.0.clone())
    }

    /// The transport for the next send: the configured one, or one built around a fresh XOAUTH2 token (tokens
    /// expire within the hour, so an XOAUTH2 connection is not pooled).
    async fn transport(&self, renew: bool) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let Some((tokens, cfg)) = &self.oauth2 else { return self.pooled(renew) };
        let token = tokens.access_token().await.map_err(|e| SendError::Unreachable(format!("{e:#}")))?;
        let user = cfg.username.clone().unwrap_or_default();
        let auth = (Credentials::new(user, token.expose().to_string()), vec![Mechanism::Xoauth2]);
        build_transport(cfg, Some(auth)).map_err(|e| SendError::Permanent(format!("{e:#}")))
    }

    /// Send one already-formatted mail.
    pub async fn send_raw(&self, from: &str, to: &[String], body: &[u8]) -> Result<(), SendError> {
        let from: Address = from.parse().map_err(|e| SendError::Permanent(format!("bad sender {from}: {e}")))?;
        let mut rcpts = Vec::with_capacity(to.len());
        for t in to {
            rcpts.push(t.parse::<Address>().map_err(|e| SendError::Permanent(format!("bad recipient {t}: {e}")))?);
        }
        let envelope = Envelope::new(Some(from), rcpts).map_err(|e| SendError::Permanent(e.to_string()))?;
        match self.transport(false).await?.send_raw(&envelope, body).await {
            Ok(_) => Ok(()),
            // A 4xx may belong to the session rather than the mail (a per-session cap, a tired connection):
            // one more try on a new connection before the mail waits for its retry.
            Err(e) if matches!(classify(&e), SendError::Transient(_)) => {
                match self.transport(true).await?.send_raw(&envelope, body).await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(classify(&e)),
                }
            }
            Err(e) => Err(classify(&e)),
        }
    }

    /// Connect and say hello, for `doctor`.
    pub async fn test_connection(&self) -> Result<bool> {
        Ok(self.pooled(false).map_err(|e| anyhow::anyhow!(e))?.test_connection().await?)
    }
}

/// Sort a lettre error into what the outbox does with it. A 5xx answer is permanent (RFC 5321 4.2.1); a 4xx answer
/// is transient for this mail, except 421, which is the server closing the session for everyone.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    match e.status() {
        Some(_) if e.is_permanent() => SendError::Permanent(text),
        Some(code) if code.to_string() == "421" => SendError::Unreachable(text),
        Some(_) => SendError::Transient(text),
        // Our side refused to build the transaction: retried, and failed for good after the outbox's attempts.
        None if e.is_client() => SendError::Transient(text),
        // No SMTP reply at all: refused, reset, timed out, a garbled answer, or a TLS failure.
        None => SendError::Unreachable(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_unreachable_not_the_mails_fault() {
        // Bind and drop a listener to get a loopback port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg: SmtpConfig = toml::from_str(&format!(
            "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"intake@example.test\""
        ))
        .unwrap();
        let mailer = Mailer::new(&cfg).unwrap();
        let err = mailer
            .send_raw("intake@example.test", &["a@example.test".to_string()], b"Subject: x\r\n\r\nx\r\n")
            .await
            .unwrap_err();
        assert!(err.is_unreachable() && err.is_transient(), "{err}");
    }
}
