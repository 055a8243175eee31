//! Delivering queued mail over SMTP (lettre). Only the outbox calls this; nothing sends mail directly, so every
//! mail we send was first made durable.

use anyhow::{Context, Result};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as LettreTls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

use crate::config::{SmtpConfig, Tls};

/// Each SMTP command must answer within this; a silent server is treated as a transient failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// 4xx, connection refused, timeouts: try again later.
    #[error("transient SMTP failure: {0}")]
    Transient(String),
    /// 5xx or an address the server will never take: an operator must look.
    #[error("permanent SMTP failure: {0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Mailer {
    pub fn new(cfg: &SmtpConfig) -> Result<Mailer> {
        let tls_params = || -> Result<TlsParameters> {
            let mut b = TlsParameters::builder(cfg.host.clone());
            if let Some(ca) = &cfg.ca_file {
                let pem = std::fs::read(ca).with_context(|| format!("smtp.ca_file: cannot read {}", ca.display()))?;
                b = b.add_root_certificate(Certificate::from_pem(&pem).context("smtp.ca_file is not PEM")?);
            }
            Ok(b.build_rustls()?)
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str()).port(cfg.port);
        let builder = match cfg.tls {
            Tls::Implicit => builder.tls(LettreTls::Wrapper(tls_params()?)),
            Tls::Starttls => builder.tls(LettreTls::Required(tls_params()?)),
            Tls::None => builder.tls(LettreTls::None),
        };
        let mut builder = builder.timeout(Some(SMTP_TIMEOUT));
        if let Some(user) = &cfg.username {
            let password = cfg.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Mailer { transport: builder.build() })
    }

    /// Send one already-formatted mail.
    pub async fn send_raw(&self, from: &str, to: &[String], body: &[u8]) -> Result<(), SendError> {
        let from: Address = from.parse().map_err(|e| SendError::Permanent(format!("bad sender {from}: {e}")))?;
        let mut rcpts = Vec::with_capacity(to.len());
        for t in to {
            rcpts.push(t.parse::<Address>().map_err(|e| SendError::Permanent(format!("bad recipient {t}: {e}")))?);
        }
        let envelope = Envelope::new(Some(from), rcpts).map_err(|e| SendError::Permanent(e.to_string()))?;
        match self.transport.send_raw(&envelope, body).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }

    /// Connect and say hello, for `doctor`.
    pub async fn test_connection(&self) -> Result<bool> {
        Ok(self.transport.test_connection().await?)
    }
}
