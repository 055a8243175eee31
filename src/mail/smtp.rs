//! Delivering queued mail over SMTP (lettre). Only the outbox calls this; nothing sends mail directly, so every
//! mail we send was first made durable.

use anyhow::{Context, Result};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;
use std::time::{Duration, Instant};

use super::settings::{AuthMethod, SmtpConfig, Tls};

/// Connecting and saying hello answer within this, or the server is treated as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// One mail (MAIL, RCPT, DATA and the server's queue commit) must be answered within this; a silent server is
/// treated as unreachable.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);
/// Consecutive mails go over one kept connection (no TCP, greeting and EHLO per mail), but servers cap a session:
/// OpenSMTPD answers `452 4.5.3 Too many messages sent` after 100 mails (its `max-mails` default). A new
/// connection is opened before reaching that.
const MAILS_PER_CONNECTION: u32 = 90;
/// A kept connection older than this is closed instead of reused: servers drop idle sessions (RFC 5321 4.5.3.2
/// lets them after 5 minutes), and an XOAUTH2 login is only as good as its token.
const CONNECTION_MAX_AGE: Duration = Duration::from_secs(240);

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

/// A connection kept for the next mail.
struct Kept {
    conn: AsyncSmtpConnection,
    opened: Instant,
    sent: u32,
}

/// Sends mail over SMTP connections of its own, kept between mails.
///
/// Not lettre's `AsyncSmtpTransport`: it never sets `TCP_NODELAY`, and it writes a mail's body and its final
/// `.` in two writes, so Nagle's algorithm holds the `.` until the server acknowledges the body, which a server
/// delays by up to 40 ms (delayed ACK): about 50 ms per mail against OpenSMTPD on loopback, where one write each
/// (Python's smtplib) takes 4 ms. Here the socket is ours and has `TCP_NODELAY`; lettre still speaks SMTP on it.
/// (Implicit TLS still goes through lettre's own connect, so it keeps the delay; STARTTLS does not.)
pub struct Mailer {
    cfg: SmtpConfig,
    /// With `auth = "password"` and a username: the credentials and the SASL mechanisms to offer.
    password_auth: Option<(Credentials, Vec<Mechanism>)>,
    /// With `auth = "xoauth2"`: where access tokens come from (one per connection).
    oauth2: Option<std::sync::Arc<crate::mail::oauth2::TokenSource>>,
    tls: Option<TlsParameters>,
    hello: ClientId,
    /// Idle connections; each sender takes one (or opens one) and puts it back after a clean send.
    kept: std::sync::Mutex<Vec<Kept>>,
}

fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(ca) = &cfg.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("smtp.ca_file: cannot read {}", ca.display()))?;
        b = b.add_root_certificate(Certificate::from_pem(&pem).context("smtp.ca_file is not PEM")?);
    }
    Ok(b.build_rustls()?)
}

impl Mailer {
    pub fn new(cfg: &SmtpConfig) -> Result<Mailer> {
        let password_auth = cfg.username.as_ref().filter(|_| cfg.auth == AuthMethod::Password).map(|user| {
            let password = cfg.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
            (Credentials::new(user.clone(), password), vec![Mechanism::Plain, Mechanism::Login])
        });
        let oauth2 = match (&cfg.auth, &cfg.oauth2) {
            (AuthMethod::Xoauth2, Some(o)) => {
                Some(std::sync::Arc::new(crate::mail::oauth2::TokenSource::new(o.clone())?))
            }
            _ => None,
        };
        let tls = match cfg.tls {
            Tls::None => None,
            Tls::Implicit | Tls::Starttls => Some(tls_parameters(cfg)?),
        };
        Ok(Mailer {
            cfg: cfg.clone(),
            password_auth,
            oauth2,
            tls,
            hello: ClientId::default(),
            kept: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Connect, greet, secure and log in: a connection ready for mail.
    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        self.open_conn().await.map_err(|e| match e {
            Opening::Smtp(e) => classify(&e),
            Opening::Io(e) => SendError::Unreachable(e),
        })
    }

    async fn open_conn(&self) -> Result<AsyncSmtpConnection, Opening> {
        let addr = (self.cfg.host.as_str(), self.cfg.port);
        let mut conn = match (&self.cfg.tls, &self.tls) {
            (Tls::Implicit, Some(tls)) => {
                AsyncSmtpConnection::connect_tokio1(addr, Some(CONNECT_TIMEOUT), &self.hello, Some(tls.clone()), None)
                    .await?
            }
            _ => {
                let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| Opening::Io(e.to_string()))?;
                tcp.set_nodelay(true).map_err(|e| Opening::Io(e.to_string()))?;
                let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
                if let (Tls::Starttls, Some(tls)) = (&self.cfg.tls, &self.tls) {
                    conn.starttls(tls.clone(), &self.hello).await?;
                }
                conn
            }
        };
        if let Some((credentials, mechanisms)) = &self.password_auth {
            conn.auth(mechanisms, credentials).await?;
        } else if let Some(tokens) = &self.oauth2 {
            let token = tokens.access_token().await.map_err(|e| Opening::Io(format!("{e:#}")))?;
            let user = self.cfg.username.clone().unwrap_or_default();
            conn.auth(&[Mechanism::Xoauth2], &Credentials::new(user, token.expose().to_string())).await?;
        }
        Ok(conn)
    }

    /// A kept connection that is still fit, or a new one. The flag says whether it was kept (and so may have been
    /// closed by the server meanwhile).
    async fn take(&self) -> Result<(Kept, bool), SendError> {
        let kept = {
            let mut k = self.kept.lock().expect("smtp connections lock");
            std::iter::from_fn(|| k.pop()).find(|c| !c.conn.has_broken() && c.opened.elapsed() < CONNECTION_MAX_AGE)
        };
        if let Some(k) = kept {
            return Ok((k, true));
        }
        self.take_new().await
    }

    /// Send one already-formatted mail.
    pub async fn send_raw(&self, from: &str, to: &[String], body: &[u8]) -> Result<(), SendError> {
        let from: Address = from.parse().map_err(|e| SendError::Permanent(format!("bad sender {from}: {e}")))?;
        let mut rcpts = Vec::with_capacity(to.len());
        for t in to {
            rcpts.push(t.parse::<Address>().map_err(|e| SendError::Permanent(format!("bad recipient {t}: {e}")))?);
        }
        let envelope = Envelope::new(Some(from), rcpts).map_err(|e| SendError::Permanent(e.to_string()))?;
        let (kept, reused) = self.take().await?;
        match self.send_on(kept, &envelope, body).await {
            // A kept connection the server has closed meanwhile, or a 4xx that belongs to the session rather than
            // the mail (a per-session cap): one more try on a new connection before the mail waits for its retry.
            Err(SendError::Unreachable(_) | SendError::Transient(_)) if reused => {
                let (fresh, _) = self.take_new().await?;
                self.send_on(fresh, &envelope, body).await
            }
            Err(SendError::Transient(_)) => {
                let (fresh, _) = self.take_new().await?;
                self.send_on(fresh, &envelope, body).await
            }
            other => other,
        }
    }

    async fn take_new(&self) -> Result<(Kept, bool), SendError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(Ok(conn)) => Ok((Kept { conn, opened: Instant::now(), sent: 0 }, false)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SendError::Unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))),
        }
    }

    /// Send on `kept`; keep it for the next mail when all went well, close it otherwise.
    async fn send_on(&self, mut kept: Kept, envelope: &Envelope, body: &[u8]) -> Result<(), SendError> {
        let res = match tokio::time::timeout(SMTP_TIMEOUT, kept.conn.send(envelope, body)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(SendError::Unreachable(format!("no answer within {}s", SMTP_TIMEOUT.as_secs()))),
        };
        kept.sent += 1;
        if res.is_ok() && kept.sent < MAILS_PER_CONNECTION {
            self.kept.lock().expect("smtp connections lock").push(kept);
        } else if res.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), kept.conn.quit()).await;
        } else {
            kept.conn.abort().await;
        }
        res
    }

    /// Connect and say hello, for `doctor`.
    pub async fn test_connection(&self) -> Result<bool> {
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await.context("SMTP timed out")??;
        let _ = conn.quit().await;
        Ok(true)
    }
}

/// Why a connection could not be opened: the server's answer, or no server (or no token) at all.
enum Opening {
    Smtp(lettre::transport::smtp::Error),
    Io(String),
}

impl From<lettre::transport::smtp::Error> for Opening {
    fn from(e: lettre::transport::smtp::Error) -> Opening {
        Opening::Smtp(e)
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
