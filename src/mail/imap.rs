//! The IMAP side: one long-lived session that fetches new mail by UID, moves handled mail away, and IDLEs.
//!
//! UIDs only mean something together with UIDVALIDITY (RFC 3501 section 2.3.1.1), so both are kept in Postgres
//! per mailbox. Bodies are fetched with `BODY.PEEK[]` so the server's \Seen flag stays the user's business.

use anyhow::{anyhow, bail, Context, Result};
use async_imap::extensions::idle::IdleResponse;
use async_imap::Session;
use futures::TryStreamExt;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

use super::settings::{AuthMethod, ImapConfig, Tls};

/// A TCP connect to a mail server answers within seconds or not at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Ordinary commands (LOGIN, SELECT, SEARCH, MOVE) are small; a server that takes longer is stuck.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// A fetch may carry a batch of 40 MB messages over a slow link.
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);
/// One fetch brings at most this many bytes of whole messages (at least one message), so a backlog of large
/// mail is taken in bites that fit in memory; the rest comes in the next round.
const MAX_FETCH_BYTES: u64 = 128 * 1024 * 1024;
/// RFC 2177: clients should re-issue IDLE at least every 29 minutes, or servers may log them out.
const IDLE_REISSUE: Duration = Duration::from_secs(25 * 60);

pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + Sync + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + Debug> ImapStream for T {}

type Stream = Box<dyn ImapStream>;

/// A fetched message.
#[derive(Debug)]
pub struct Fetched {
    pub uid: u32,
    pub size: u32,
    /// The whole message, or only its header when it is larger than the configured limit.
    pub raw: Vec<u8>,
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub uidvalidity: u32,
    pub uidnext: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The server told us something changed (new mail, usually).
    NewData,
    /// The poll interval passed; look anyway.
    Timeout,
    /// Shutdown was requested.
    Cancelled,
}

pub struct ImapSession {
    session: Session<Stream>,
    has_move: bool,
    has_idle: bool,
    has_uidplus: bool,
    /// `imap.fast_poll_ms`: poll with NOOP at this step instead of IDLE.
    fast_poll: Option<Duration>,
}

/// An IMAP error as the operator reads it: a NO or BAD answer is the server's own sentence, not async-imap's
/// debug print of its response. async-imap 0.12 writes two such prints: `outcome: Outcome { code: None,
/// information: Some("…") }` (SELECT and other parsed commands) and `code: None, info: Some("…")` (LOGIN and
/// AUTHENTICATE).
pub fn plain(e: &async_imap::error::Error) -> String {
    use async_imap::error::Error;
    let (kind, text) = match e {
        Error::No(t) => ("NO", t),
        Error::Bad(t) => ("BAD", t),
        other => return other.to_string(),
    };
    let said = ["information: Some(\"", "info: Some(\""]
        .iter()
        .find_map(|field| text.split_once(field))
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(info, _)| info.replace("\\\"", "\""))
        .unwrap_or_else(|| text.clone());
    format!("the server answered {kind}: {said}")
}

async fn timed<T>(what: &str, limit: Duration, fut: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, fut).await.map_err(|_| anyhow!("IMAP {what} timed out after {}s", limit.as_secs()))
}

pub fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading CA file {}", path.display()))?
        {
            roots.add(cert.context("bad certificate in CA file")?)?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn wrap_tls(tcp: TcpStream, host: &str, ca_file: Option<&std::path::Path>) -> Result<Stream> {
    let connector = tokio_rustls::TlsConnector::from(tls_config(ca_file)?);
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).context("imap.host is not a valid TLS name")?;
    let tls = timed("TLS handshake", CONNECT_TIMEOUT, connector.connect(name, tcp)).await??;
    Ok(Box::new(tls))
}

impl ImapSession {
    /// Connect, secure, read the greeting and log in.
    pub async fn connect(cfg: &ImapConfig) -> Result<ImapSession> {
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let tcp = timed("connect", CONNECT_TIMEOUT, TcpStream::connect(&addr))
            .await?
            .with_context(|| format!("cannot connect to IMAP server {addr}"))?;
        tcp.set_nodelay(true).ok();
        let stream: Stream = match cfg.tls {
            Tls::Implicit => wrap_tls(tcp, &cfg.host, cfg.ca_file.as_deref()).await?,
            Tls::None => Box::new(tcp),
            Tls::Starttls => {
                let mut plain = async_imap::Client::new(tcp);
                timed("greeting", COMMAND_TIMEOUT, plain.read_response()).await??;
                timed("STARTTLS", COMMAND_TIMEOUT, plain.run_command_and_check_ok("STARTTLS", None)).await??;
                wrap_tls(plain.into_inner(), &cfg.host, cfg.ca_file.as_deref()).await?
            }
        };
        let mut client = async_imap::Client::new(stream);
        if cfg.tls != Tls::Starttls {
            let greeting = timed("greeting", COMMAND_TIMEOUT, client.read_response()).await??;
            if greeting.is_none() {
                bail!("IMAP server {addr} closed the connection before greeting");
            }
        }
        if cfg.auth == AuthMethod::Xoauth2 {
            let tokens = cfg.oauth2.clone().context("imap.auth = \"xoauth2\" needs [imap.oauth2]")?;
            let token = crate::mail::oauth2::TokenSource::new(tokens)?.access_token().await?;
            let auth = XOAuth2 { response: crate::mail::oauth2::xoauth2_response(&cfg.username, token.expose()) };
            let session = match timed("AUTHENTICATE XOAUTH2", COMMAND_TIMEOUT, client.authenticate("XOAUTH2", auth))
                .await?
            {
                Ok(s) => s,
                Err((e, _)) => return Err(anyhow!("IMAP XOAUTH2 login as {} refused: {}", cfg.username, plain(&e))),
            };
            return Ok(ImapSession::finish_login(session).await?.with_fast_poll(cfg));
        }
        let password = cfg.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
        let session = match timed("LOGIN", COMMAND_TIMEOUT, client.login(&cfg.username, &password)).await? {
            Ok(s) => s,
            Err((e, client)) => {
                // Some servers disable LOGIN but accept AUTHENTICATE PLAIN (RFC 4616).
                let auth = PlainAuth { user: cfg.username.clone(), password };
                match timed("AUTHENTICATE", COMMAND_TIMEOUT, client.authenticate("PLAIN", auth)).await? {
                    Ok(s) => s,
                    Err((_, _)) => return Err(anyhow!("IMAP login as {} refused: {}", cfg.username, plain(&e))),
                }
            }
        };
        Ok(ImapSession::finish_login(session).await?.with_fast_poll(cfg))
    }

    fn with_fast_poll(mut self, cfg: &ImapConfig) -> ImapSession {
        self.fast_poll = cfg.fast_poll_ms.filter(|ms| *ms > 0).map(Duration::from_millis);
        self
    }

    /// Learn what the server offers, once logged in.
    async fn finish_login(session: Session<Stream>) -> Result<ImapSession> {
        let mut s = ImapSession { session, has_move: false, has_idle: false, has_uidplus: false, fast_poll: None };
        let caps = timed("CAPABILITY", COMMAND_TIMEOUT, s.session.capabilities()).await??;
        s.has_move = caps.has_str("MOVE");
        s.has_idle = caps.has_str("IDLE");
        s.has_uidplus = caps.has_str("UIDPLUS");
        Ok(s)
    }

    pub fn has_idle(&self) -> bool {
        self.has_idle
    }

    pub async fn select(&mut self, mailbox: &str) -> Result<Selected> {
        let mb = timed("SELECT", COMMAND_TIMEOUT, self.session.select(mailbox))
            .await?
            .map_err(|e| anyhow!("cannot select mailbox {mailbox:?}: {}", plain(&e)))?;
        let uidvalidity = mb.uid_validity.ok_or_else(|| anyhow!("server sent no UIDVALIDITY for {mailbox}"))?;
        Ok(Selected { uidvalidity, uidnext: mb.uid_next })
    }

    /// Create `mailbox` unless it exists. A CREATE that fails because it exists is fine (RFC 3501 6.3.3 lets the
    /// server say NO for that).
    pub async fn ensure_mailbox(&mut self, mailbox: &str) -> Result<()> {
        let exists = {
            let list = timed("LIST", COMMAND_TIMEOUT, self.session.list(None, Some(mailbox))).await??;
            let names: Vec<_> = timed("LIST", COMMAND_TIMEOUT, list.try_collect::<Vec<_>>()).await??;
            names.iter().any(|n| n.name() == mailbox)
        };
        if !exists {
            if let Err(e) = timed("CREATE", COMMAND_TIMEOUT, self.session.create(mailbox)).await? {
                tracing::debug!(mailbox, error = %e, "CREATE refused; assuming the mailbox exists");
            }
        }
        Ok(())
    }

    /// UIDs above `after` in the selected mailbox, oldest first, at most `limit`.
    pub async fn new_uids(&mut self, after: u32, limit: usize) -> Result<Vec<u32>> {
        // `UID n:*` always matches the last message even when its UID is below n (RFC 3501 6.4.8), so filter.
        let query = format!("UID {}:*", after.saturating_add(1));
        let found = timed("UID SEARCH", COMMAND_TIMEOUT, self.session.uid_search(&query)).await??;
        let mut uids: Vec<u32> = found.into_iter().filter(|&u| u > after).collect();
        uids.sort_unstable();
        uids.truncate(limit);
        Ok(uids)
    }

    /// Fetch the given UIDs, oldest first, as many as fit in `MAX_FETCH_BYTES` (always at least one): the caller
    /// asks again for the rest. Messages over `max_bytes` come back as their header only, so a 500 MB mail costs
    /// nothing but still gets an answer.
    pub async fn fetch(&mut self, uids: &[u32], max_bytes: u64) -> Result<Vec<Fetched>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let sizes: Vec<(u32, u32)> = {
            let stream =
                timed("UID FETCH size", COMMAND_TIMEOUT, self.session.uid_fetch(&set, "(UID RFC822.SIZE)")).await??;
            let fetches: Vec<_> = timed("UID FETCH size", COMMAND_TIMEOUT, stream.try_collect::<Vec<_>>()).await??;
            fetches.iter().filter_map(|f| Some((f.uid?, f.size.unwrap_or(0)))).collect()
        };
        let sizes = within_budget(sizes, max_bytes, MAX_FETCH_BYTES);
        let (small, large): (Vec<_>, Vec<_>) = sizes.iter().partition(|(_, size)| u64::from(*size) <= max_bytes);
        let mut out = Vec::with_capacity(sizes.len());
        if !small.is_empty() {
            let set = uid_set(&small.iter().map(|(u, _)| *u).collect::<Vec<_>>());
            let stream =
                timed("UID FETCH", FETCH_TIMEOUT, self.session.uid_fetch(&set, "(UID RFC822.SIZE BODY.PEEK[])"))
                    .await??;
            let fetches: Vec<_> = timed("UID FETCH", FETCH_TIMEOUT, stream.try_collect::<Vec<_>>()).await??;
            for f in fetches {
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    out.push(Fetched {
                        uid,
                        size: f.size.unwrap_or(body.len() as u32),
                        raw: body.to_vec(),
                        truncated: false,
                    });
                }
            }
        }
        if !large.is_empty() {
            let set = uid_set(&large.iter().map(|(u, _)| *u).collect::<Vec<_>>());
            let stream = timed(
                "UID FETCH header",
                COMMAND_TIMEOUT,
                self.session.uid_fetch(&set, "(UID RFC822.SIZE BODY.PEEK[HEADER])"),
            )
            .await??;
            let fetches: Vec<_> = timed("UID FETCH header", COMMAND_TIMEOUT, stream.try_collect::<Vec<_>>()).await??;
            for f in fetches {
                if let (Some(uid), Some(header)) = (f.uid, f.header().or(f.body())) {
                    out.push(Fetched { uid, size: f.size.unwrap_or(0), raw: header.to_vec(), truncated: true });
                }
            }
        }
        out.sort_by_key(|f| f.uid);
        Ok(out)
    }

    /// Move messages of the selected mailbox to `target`: MOVE (RFC 6851) when offered, else COPY, \Deleted and
    /// (UID) EXPUNGE.
    pub async fn move_uids(&mut self, uids: &[u32], target: &str) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        if self.has_move {
            match timed("UID MOVE", COMMAND_TIMEOUT, self.session.uid_mv(&set, target)).await? {
                Ok(()) => return Ok(()),
                // Another session (a second worker, a person) expunged some of them after our last look: RFC 5530
                // EXPUNGEISSUED. A NOOP brings our view up to date; UIDs that are gone are then simply skipped.
                Err(e) if e.to_string().contains("EXPUNGEISSUED") => {
                    self.noop().await?;
                    timed("UID MOVE", COMMAND_TIMEOUT, self.session.uid_mv(&set, target)).await??;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        timed("UID COPY", COMMAND_TIMEOUT, self.session.uid_copy(&set, target)).await??;
        {
            let stream = timed("UID STORE", COMMAND_TIMEOUT, self.session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)"))
                .await??;
            let _: Vec<_> = timed("UID STORE", COMMAND_TIMEOUT, stream.try_collect::<Vec<_>>()).await??;
        }
        if self.has_uidplus {
            let stream = timed("UID EXPUNGE", COMMAND_TIMEOUT, self.session.uid_expunge(&set)).await??;
            let _: Vec<_> = timed("UID EXPUNGE", COMMAND_TIMEOUT, stream.try_collect::<Vec<_>>()).await??;
        } else {
            let stream = timed("EXPUNGE", COMMAND_TIMEOUT, self.session.expunge()).await??;
            let _: Vec<_> = timed("EXPUNGE", COMMAND_TIMEOUT, stream.try_collect::<Vec<_>>()).await??;
        }
        Ok(())
    }

    pub async fn noop(&mut self) -> Result<()> {
        timed("NOOP", COMMAND_TIMEOUT, self.session.noop()).await??;
        Ok(())
    }

    /// Wait for news: IDLE when the server has it (re-issued well before RFC 2177's 29 minutes), else sleep for
    /// the poll interval. Returns early on cancellation.
    pub async fn wait(
        mut self,
        poll: Duration,
        use_idle: bool,
        cancel: &CancellationToken,
    ) -> Result<(ImapSession, Woken)> {
        if let Some(step) = self.fast_poll {
            return self.fast_poll(step, poll, cancel).await;
        }
        if !(use_idle && self.has_idle) {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = cancel.cancelled() => return Ok((self, Woken::Cancelled)),
            }
            self.noop().await?;
            return Ok((self, Woken::Timeout));
        }
        let (has_move, has_idle, has_uidplus) = (self.has_move, self.has_idle, self.has_uidplus);
        let mut handle = self.session.idle();
        timed("IDLE", COMMAND_TIMEOUT, handle.init()).await??;
        let limit = poll.min(IDLE_REISSUE);
        let woken = {
            let (fut, stop) = handle.wait_with_timeout(limit);
            tokio::pin!(fut);
            // Keepalives ("* OK Still here") reset the library's timeout, so bound the whole wait ourselves.
            tokio::select! {
                r = &mut fut => match r? {
                    IdleResponse::NewData(_) => Woken::NewData,
                    IdleResponse::Timeout | IdleResponse::ManualInterrupt => Woken::Timeout,
                },
                _ = cancel.cancelled() => { drop(stop); let _ = fut.await; Woken::Cancelled }
                _ = tokio::time::sleep(limit) => { drop(stop); let _ = fut.await; Woken::Timeout }
            }
        };
        let session = timed("IDLE DONE", COMMAND_TIMEOUT, handle.done()).await??;
        Ok((ImapSession { session, has_move, has_idle, has_uidplus, fast_poll: None }, woken))
    }

    /// Poll with NOOP every `step` until news or `poll` has passed. NOOP makes the server look at the mailbox
    /// there and then, where IDLE waits for its change notification: Dovecot delays those by 500 ms to batch them
    /// (NOTIFY_DELAY_MSECS in its mailbox-watch.c), which alone would put every reply half a second late.
    async fn fast_poll(
        mut self,
        step: Duration,
        poll: Duration,
        cancel: &CancellationToken,
    ) -> Result<(ImapSession, Woken)> {
        use async_imap::types::UnsolicitedResponse;
        while self.session.unsolicited_responses.try_recv().is_ok() {}
        let deadline = tokio::time::Instant::now() + poll;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = cancel.cancelled() => return Ok((self, Woken::Cancelled)),
            }
            self.noop().await?;
            let mut news = false;
            while let Ok(r) = self.session.unsolicited_responses.try_recv() {
                news |= matches!(r, UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_));
            }
            if news {
                return Ok((self, Woken::NewData));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok((self, Woken::Timeout));
            }
        }
    }

    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// The oldest messages whose whole bodies add up to at most `budget` bytes (at least one message). Messages over
/// `max_bytes` are fetched as headers only and cost nothing here.
fn within_budget(mut sizes: Vec<(u32, u32)>, max_bytes: u64, budget: u64) -> Vec<(u32, u32)> {
    sizes.sort_unstable();
    let mut total = 0u64;
    let mut keep = 0;
    for (_, size) in &sizes {
        let cost = if u64::from(*size) <= max_bytes { u64::from(*size) } else { 0 };
        if keep > 0 && total + cost > budget {
            break;
        }
        total += cost;
        keep += 1;
    }
    sizes.truncate(keep);
    sizes
}

/// A compact UID set: `1:3,7,9:10`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end { start.to_string() } else { format!("{start}:{end}") });
        i += 1;
    }
    parts.join(",")
}

/// SASL XOAUTH2 (Google's and Microsoft's): the whole response is sent at once.
struct XOAuth2 {
    response: String,
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> Self::Response {
        // A second challenge is the server's JSON error; answering it with an empty line ends the exchange.
        std::mem::take(&mut self.response)
    }
}

struct PlainAuth {
    user: String,
    password: String,
}

impl async_imap::Authenticator for PlainAuth {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> Self::Response {
        format!("\0{}\0{}", self.user, self.password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_as_the_servers_sentence_whichever_way_async_imap_prints_it() {
        use async_imap::error::Error;
        let login = Error::No("code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")".into());
        assert_eq!(plain(&login), "the server answered NO: [AUTHENTICATIONFAILED] Authentication failed.");
        let select = Error::No(
            "outcome: Outcome { code: None, information: Some(\"Mailbox doesn't exist: \\\"x\\\"\") }".into(),
        );
        assert_eq!(plain(&select), "the server answered NO: Mailbox doesn't exist: \"x\"");
        assert_eq!(plain(&Error::Bad("unexpected".into())), "the server answered BAD: unexpected");
    }

    #[test]
    fn a_fetch_stays_within_its_byte_budget() {
        let mb = 1024 * 1024;
        let sizes = vec![(3, 30 * mb), (1, 40 * mb), (2, 40 * mb), (4, 500 * mb)];
        // 40 + 40 fit in 100 MB, the third would not; the 500 MB one is header-only but comes after it.
        assert_eq!(
            within_budget(sizes.clone(), 41 * u64::from(mb), 100 * u64::from(mb)),
            vec![(1, 40 * mb), (2, 40 * mb)]
        );
        // A single message larger than the budget still comes alone.
        assert_eq!(within_budget(vec![(7, 90 * mb)], 100 * u64::from(mb), 10 * u64::from(mb)), vec![(7, 90 * mb)]);
        // Header-only messages cost nothing.
        assert_eq!(within_budget(vec![(1, 500 * mb), (2, 600 * mb)], 41, 10).len(), 2);
    }

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[3, 1, 2, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
    }
}
