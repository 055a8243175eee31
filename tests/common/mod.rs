//! The test harness: real Postgres, real Dovecot and OpenSMTPD (started by `scripts/mailservers`), the real
//! extractor binary in a real bubblewrap jail.
//!
//! Each test gets its own database and its own mail folders: addresses carry a `+tag` (intake+tag@…), and
//! Dovecot delivers `user+tag` into the folder `tag` (lmtp_save_to_detail_mailbox), so tests run in parallel
//! without seeing each other's mail.

#![allow(dead_code)]

pub mod flood;
pub mod pdf;
pub mod qr;
pub mod wire;
pub mod worker;

pub use wire::base64_lines;

use anyhow::{bail, Context, Result};
use futures::TryStreamExt;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mail_parser::MessageParser;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use invoice_intake::config::Config;
use invoice_intake::pipeline::{App, Summary};

pub const DOMAIN: &str = "example.test";
pub const PASSWORD: &str = "secret";
/// How long a delivery through OpenSMTPD and LMTP may take before a test gives up waiting for it.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

/// Settings of the local servers, from `target/mailservers/env` (written by `scripts/mailservers start`).
pub struct Servers {
    pub imap_port: u16,
    pub smtp_port: u16,
    pub host: String,
    pub admin_db_url: String,
    /// IMAP with implicit TLS (the plain port offers STARTTLS).
    pub imaps_port: u16,
    /// SMTP with implicit TLS and with STARTTLS (Dovecot submission, relaying to OpenSMTPD).
    pub smtps_port: u16,
    pub submission_port: u16,
    /// The throwaway CA that signed the servers' certificate for `localhost`.
    pub tls_ca_file: String,
}

impl Servers {
    /// The state directory of the running `scripts/mailservers` instance (where its `env` file is), for
    /// `scripts/mailservers stop-smtp DIR` and the like.
    pub fn state_dir() -> std::path::PathBuf {
        let env = std::env::var("MAILSERVERS_ENV")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/mailservers/env").to_string());
        std::path::Path::new(&env).parent().map(|p| p.to_path_buf()).unwrap_or_default()
    }

    pub fn from_env() -> Servers {
        let mut vars: HashMap<String, String> = HashMap::new();
        let path = std::env::var("MAILSERVERS_ENV")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/mailservers/env").to_string());
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                let line = line.trim().trim_start_matches("export ");
                if let Some((k, v)) = line.split_once('=') {
                    vars.insert(k.trim().to_string(), v.trim().trim_matches('"').trim_matches('\'').to_string());
                }
            }
        }
        let get = |k: &str, default: &str| {
            std::env::var(k).ok().or_else(|| vars.get(k).cloned()).unwrap_or_else(|| default.to_string())
        };
        Servers {
            imap_port: get("IMAP_PORT", "10143").parse().expect("IMAP_PORT"),
            smtp_port: get("SMTP_PORT", "10025").parse().expect("SMTP_PORT"),
            host: get("IMAP_HOST", "127.0.0.1"),
            admin_db_url: get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
            imaps_port: get("IMAPS_PORT", "10993").parse().expect("IMAPS_PORT"),
            smtps_port: get("SMTPS_PORT", "10465").parse().expect("SMTPS_PORT"),
            submission_port: get("SUBMISSION_PORT", "10587").parse().expect("SUBMISSION_PORT"),
            tls_ca_file: get("TLS_CA_FILE", concat!(env!("CARGO_MANIFEST_DIR"), "/target/mailservers/tls/ca.pem")),
        }
    }
}

/// One test's world: a database, a tag for its mail folders, and a config pointing at both.
pub struct TestWorld {
    pub servers: Servers,
    pub tag: String,
    pub db_name: String,
    pub pool: PgPool,
    pub config: Config,
    /// The config as TOML text, for running the real binary (`invoice-intake run --config FILE`).
    pub config_toml: String,
}

/// Whether a mail's text shows `value` on a line labelled `label` (its tables pad the space between them).
pub fn shows(text: &str, label: &str, value: &str) -> bool {
    text.lines().map(str::trim).any(|l| l.strip_prefix(label).is_some_and(|rest| rest.trim_start().starts_with(value)))
}

/// A mail's text on one line, its words single-spaced: what a sentence says, however the mail wrapped it.
pub fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn random_tag() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..10).map(|_| (b'a' + rng.gen_range(0..26)) as char).collect()
}

impl TestWorld {
    pub async fn new() -> TestWorld {
        Self::with_config(|_| {}).await
    }

    /// A world whose config TOML can be adjusted before it is loaded.
    pub async fn with_config(adjust: impl FnOnce(&mut toml::Table)) -> TestWorld {
        let servers = Servers::from_env();
        let tag = random_tag();
        let db_name = format!("ii_test_{tag}");
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&servers.admin_db_url)
            .await
            .expect("Postgres must run at 127.0.0.1:5432 (see scripts/test)");
        sqlx::query(&format!("CREATE DATABASE {db_name}")).execute(&admin).await.expect("create test database");
        admin.close().await;
        let db_url =
            servers.admin_db_url.rsplit_once('/').map(|(base, _)| format!("{base}/{db_name}")).expect("db url");
        let mut table: toml::Table = toml::from_str(&format!(
            r#"
            [imap]
            host = "{host}"
            port = {imap_port}
            tls = "none"
            username = "intake@{DOMAIN}"
            password = "{PASSWORD}"
            mailbox = "{tag}"
            processed_mailbox = "{tag}_processed"
            failed_mailbox = "{tag}_failed"
            poll_interval_secs = 2
            [smtp]
            host = "{host}"
            port = {smtp_port}
            tls = "none"
            from = "intake+{tag}@{DOMAIN}"
            [database]
            url = "{db_url}"
            max_connections = 4
            [sandbox]
            extractor = "{extractor}"
            timeout_secs = 60
            [notify]
            accountants = ["accounts+{tag}@{DOMAIN}"]
            [company]
            names = ["Example Buyer S.L."]
            tax_ids = ["{buyer}"]
            [reply]
            default_language = "es"
            [security]
            sender_policy = "any"
            "#,
            host = servers.host,
            imap_port = servers.imap_port,
            smtp_port = servers.smtp_port,
            extractor = env!("CARGO_BIN_EXE_invoice-intake"),
            buyer = pdf::cif('B', "7654321"),
        ))
        .expect("test config template");
        adjust(&mut table);
        let config_toml = toml::to_string(&table).unwrap();
        let config = Config::from_toml_with_env(&config_toml, std::iter::empty()).expect("test config");
        let pool = PgPoolOptions::new().max_connections(2).connect(&db_url).await.expect("connect test database");
        TestWorld { servers, tag, db_name, pool, config, config_toml }
    }

    pub fn intake(&self) -> String {
        format!("intake+{}@{DOMAIN}", self.tag)
    }
    pub fn supplier(&self) -> String {
        format!("supplier+{}@{DOMAIN}", self.tag)
    }
    pub fn accountants(&self) -> String {
        format!("accounts+{}@{DOMAIN}", self.tag)
    }

    /// Send a raw message over SMTP to the intake address, as a supplier's mail server would, and wait until
    /// Dovecot has it in the intake folder.
    pub async fn send(&self, raw: &[u8]) -> Result<()> {
        let before = self.count("intake", &self.tag).await.unwrap_or(0);
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.servers.host)
            .port(self.servers.smtp_port)
            .build();
        let envelope = Envelope::new(Some(self.supplier().parse()?), vec![self.intake().parse()?])?;
        transport.send_raw(&envelope, raw).await.context("SMTP submission to OpenSMTPD")?;
        self.wait_for_count("intake", &self.tag, before + 1).await?;
        Ok(())
    }

    /// Submit a raw message over SMTP to `to` without waiting for its delivery (for bursts of mail).
    pub async fn submit_to(&self, to: &str, raw: &[u8]) -> Result<()> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.servers.host)
            .port(self.servers.smtp_port)
            .build();
        let envelope = Envelope::new(Some(self.supplier().parse()?), vec![to.parse()?])?;
        transport.send_raw(&envelope, raw).await.context("SMTP submission to OpenSMTPD")?;
        Ok(())
    }

    /// Put a raw message straight into `user`'s folder `folder` with IMAP APPEND (creating the folder), as a
    /// mail server restoring a mailbox would: no SMTP, the bytes exactly as given.
    pub async fn append(&self, user: &str, folder: &str, raw: &[u8]) -> Result<()> {
        let mut session = self.imap_login(user).await?;
        let _ = session.create(folder).await;
        session.append(folder, None, None, raw).await.context("IMAP APPEND")?;
        session.logout().await.ok();
        Ok(())
    }

    /// Delete `user`'s folder `folder` (and everything in it).
    pub async fn delete_folder(&self, user: &str, folder: &str) -> Result<()> {
        let mut session = self.imap_login(user).await?;
        session.delete(folder).await.context("IMAP DELETE")?;
        session.logout().await.ok();
        Ok(())
    }

    /// The UIDVALIDITY of `user`'s folder `folder`.
    pub async fn uidvalidity(&self, user: &str, folder: &str) -> Result<u32> {
        let mut session = self.imap_login(user).await?;
        let mb = session.examine(folder).await?;
        session.logout().await.ok();
        mb.uid_validity.context("no UIDVALIDITY")
    }

    async fn imap_login(&self, user: &str) -> Result<async_imap::Session<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect((self.servers.host.as_str(), self.servers.imap_port)).await?;
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await?;
        Ok(client.login(format!("{user}@{DOMAIN}"), PASSWORD).await.map_err(|(e, _)| e)?)
    }

    /// Wait until `user`'s folder `folder` holds at least `n` messages, and return them.
    pub async fn wait_for_folder(&self, user: &str, folder: &str, n: usize, limit: Duration) -> Result<Vec<Received>> {
        let started = Instant::now();
        loop {
            let msgs = self.fetch_all(user, folder).await.unwrap_or_default();
            if msgs.len() >= n {
                return Ok(msgs.into_iter().map(Received::parse).collect());
            }
            if started.elapsed() > limit {
                bail!("{user}'s folder {folder} has {} messages after {limit:?}; expected {n}", msgs.len());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Run the worker once, as `invoice-intake once` does.
    pub async fn run_once(&self) -> Result<Summary> {
        let app = App::build(self.config.clone()).await?;
        app.run_once().await
    }

    /// Messages in `user`'s folder `folder` (0 when the folder does not exist yet).
    pub async fn count(&self, user: &str, folder: &str) -> Result<usize> {
        Ok(self.fetch_all(user, folder).await?.len())
    }

    async fn wait_for_count(&self, user: &str, folder: &str, n: usize) -> Result<Vec<Vec<u8>>> {
        let started = Instant::now();
        loop {
            let msgs = self.fetch_all(user, folder).await.unwrap_or_default();
            if msgs.len() >= n {
                return Ok(msgs);
            }
            if started.elapsed() > DELIVERY_WAIT {
                bail!("{user}'s folder {folder} has {} messages after {:?}; expected {n}", msgs.len(), DELIVERY_WAIT);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until `user` (supplier, accounts, intake) has `n` messages in this test's folder, and return them.
    pub async fn mailbox(&self, user: &str, n: usize) -> Result<Vec<Received>> {
        Ok(self.wait_for_count(user, &self.tag, n).await?.into_iter().map(Received::parse).collect())
    }

    /// What `user` has in this test's folder right now, without waiting.
    pub async fn mailbox_now(&self, user: &str) -> Result<Vec<Received>> {
        Ok(self.fetch_all(user, &self.tag).await?.into_iter().map(Received::parse).collect())
    }

    /// The raw messages in `user`'s folder, over IMAP.
    pub async fn fetch_all(&self, user: &str, folder: &str) -> Result<Vec<Vec<u8>>> {
        let tcp = tokio::net::TcpStream::connect((self.servers.host.as_str(), self.servers.imap_port)).await?;
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await?;
        let mut session = client.login(format!("{user}@{DOMAIN}"), PASSWORD).await.map_err(|(e, _)| e)?;
        let out = match session.examine(folder).await {
            Ok(mb) if mb.exists > 0 => {
                let fetches: Vec<_> = session.fetch("1:*", "BODY.PEEK[]").await?.try_collect().await?;
                fetches.iter().filter_map(|f| f.body().map(|b| b.to_vec())).collect()
            }
            _ => Vec::new(),
        };
        session.logout().await.ok();
        Ok(out)
    }

    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn drop_database(self) {
        self.pool.close().await;
        if let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(&self.servers.admin_db_url).await {
            let _ =
                sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name)).execute(&admin).await;
        }
    }
}

/// A received mail, parsed, with the parts a test looks at.
#[derive(Debug, Clone)]
pub struct Received {
    pub raw: Vec<u8>,
    pub subject: String,
    pub to: Vec<String>,
    pub text: String,
    pub html: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub auto_submitted: Option<String>,
    pub message_id: Option<String>,
}

impl Received {
    pub fn parse(raw: Vec<u8>) -> Received {
        let m = MessageParser::default().parse(&raw).expect("a parsable mail");
        let list = |v: &mail_parser::HeaderValue<'_>| match v {
            mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
            mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
            _ => vec![],
        };
        Received {
            subject: m.subject().unwrap_or("").to_string(),
            to: m.to().map(|a| a.iter().filter_map(|x| x.address().map(str::to_string)).collect()).unwrap_or_default(),
            text: m.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
            html: m.body_html(0).map(|t| t.to_string()).unwrap_or_default(),
            in_reply_to: list(m.in_reply_to()).into_iter().next(),
            references: list(m.references()),
            auto_submitted: m.header_raw("Auto-Submitted").map(|s| s.trim().to_string()),
            message_id: m.message_id().map(str::to_string),
            raw: raw.clone(),
        }
    }
}

/// A mail with attachments, as a supplier's mail client writes it.
pub struct MailBuilder {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub body: String,
    pub extra_headers: Vec<(String, String)>,
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

impl MailBuilder {
    pub fn new(world: &TestWorld, subject: &str) -> MailBuilder {
        MailBuilder {
            from: format!("Proveedor <{}>", world.supplier()),
            to: world.intake(),
            subject: subject.to_string(),
            message_id: format!("<{}@supplier.{DOMAIN}>", random_tag()),
            body: "Hola,\n\nAdjunto la factura del mes. Un saludo.\n".into(),
            extra_headers: Vec::new(),
            attachments: Vec::new(),
        }
    }

    pub fn attach(mut self, name: &str, content_type: &str, bytes: Vec<u8>) -> Self {
        self.attachments.push((name.to_string(), content_type.to_string(), bytes));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.extra_headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let boundary = format!("b-{}", random_tag());
        let mut s = String::new();
        s.push_str(&format!("From: {}\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: {}\r\nDate: Wed, 15 Oct 2025 10:00:00 +0200\r\nMIME-Version: 1.0\r\n", self.from, self.to, self.subject, self.message_id));
        for (k, v) in &self.extra_headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        if self.attachments.is_empty() {
            s.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
            s.push_str(&self.body.replace('\n', "\r\n"));
            return s.into_bytes();
        }
        s.push_str(&format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"));
        s.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
            self.body.replace('\n', "\r\n")
        ));
        for (name, ctype, bytes) in &self.attachments {
            s.push_str(&format!(
                "--{boundary}\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                base64_lines(bytes)
            ));
        }
        s.push_str(&format!("--{boundary}--\r\n"));
        s.into_bytes()
    }
}

/// Render the first page of a PDF to PNG with poppler, the way a scanner's output looks to us.
pub fn render_png(pdf: &[u8], dpi: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pdf");
    std::fs::write(&input, pdf).unwrap();
    let status = std::process::Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-png", "-singlefile", "-gray"])
        .arg(&input)
        .arg(dir.path().join("page"))
        .status()
        .expect("pdftoppm (poppler-utils) must be installed");
    assert!(status.success());
    std::fs::read(dir.path().join("page.png")).unwrap()
}

/// A file or folder of the test corpus that ships with the repository (`tests/corpus/`, see its SOURCES.md).
pub fn corpus(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(path)
}

/// The same sub-path in an optional extra corpus laid out like `tests/corpus/` (for example an operator's own
/// suppliers' mails), named by `INVOICE_INTAKE_EXTRA_CORPUS`. The tests are complete without it; when it is set,
/// the corpus walks read it too.
pub fn extra_corpus(path: &str) -> Option<std::path::PathBuf> {
    let root = std::env::var_os("INVOICE_INTAKE_EXTRA_CORPUS").filter(|v| !v.is_empty())?;
    Some(std::path::PathBuf::from(root).join(path)).filter(|p| p.exists())
}

/// Run the real binary with `args` and `--config` pointing at the world's config.
pub fn cli(w: &TestWorld, args: &[&str]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("cli-{}", w.tag));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, &w.config_toml).unwrap();
    let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    full.push("--config".into());
    full.push(config.display().to_string());
    std::process::Command::new(env!("CARGO_BIN_EXE_invoice-intake")).args(&full).output().unwrap()
}

pub fn stdout(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}
