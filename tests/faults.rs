//! Faults with real processes: the worker is `invoice-intake run` killed with SIGKILL, Postgres and OpenSMTPD are
//! stopped, Dovecot is restarted, and hostile or oversized mail goes through the whole pipeline. Every test ends
//! by counting what the mailboxes and Postgres hold: one invoice row per document, one reply per mail.
//!
//! Tests that stop or restart a shared server (Postgres, OpenSMTPD, Dovecot) take `SERVERS` exclusively, so no
//! other test of this binary runs meanwhile; the others share it and run in parallel. Cargo runs test binaries
//! one after another, so no other binary sees the outage either. Whatever a test stops, a guard starts again when
//! it ends, failed or not.
//!
//! Figures (kills, duplicates, counts) are printed with `--nocapture`.

mod common;

use common::flood::{assert_one_reply_each, invoice_mail, replies_by_original};
use common::pdf::SampleInvoice;
use common::worker::Worker;
use common::{corpus, MailBuilder, Received, Servers, TestWorld};
use rand::Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static SERVERS: RwLock<()> = RwLock::const_new(());

/// For tests that stop or restart a server: nothing else in this binary runs meanwhile.
async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SERVERS.write().await
}

/// For tests that only use the servers.
async fn shared() -> RwLockReadGuard<'static, ()> {
    SERVERS.read().await
}

// ---- servers that a test stops, and the guards that start them again ----

fn mailservers(cmd: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailservers");
    let status = Command::new(script).arg(cmd).arg(Servers::state_dir()).status().expect("scripts/mailservers");
    assert!(status.success(), "scripts/mailservers {cmd} failed");
}

/// OpenSMTPD is stopped while this lives.
struct SmtpDown;

impl SmtpDown {
    fn stop() -> SmtpDown {
        mailservers("stop-smtp");
        SmtpDown
    }
}

impl Drop for SmtpDown {
    fn drop(&mut self) {
        mailservers("start-smtp");
    }
}

/// The Debian cluster (version, name) that serves the tests' Postgres port.
fn postgres_cluster() -> (String, String) {
    let url = Servers::from_env().admin_db_url;
    let port = url
        .rsplit_once('@')
        .map(|(_, hostpart)| hostpart)
        .and_then(|h| h.split('/').next())
        .and_then(|h| h.rsplit_once(':'))
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| "5432".into());
    let out = Command::new("pg_lsclusters").arg("--no-header").output().expect("pg_lsclusters (postgresql-common)");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 3 && f[2] == port {
            return (f[0].to_string(), f[1].to_string());
        }
    }
    panic!("no Postgres cluster on port {port} in pg_lsclusters:\n{text}");
}

fn pg_ctl(action: &str, cluster: &(String, String)) {
    let mut cmd = Command::new("pg_ctlcluster");
    cmd.arg("--skip-systemctl-redirect");
    if action == "stop" {
        // Like a crash: no checkpoint, every session cut; the next start runs crash recovery.
        cmd.args(["--mode", "immediate"]);
    }
    let status = cmd.arg(&cluster.0).arg(&cluster.1).arg(action).status().expect("pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {} {} {action} failed", cluster.0, cluster.1);
}

/// Postgres is stopped while this lives (`start` ends the outage early).
struct PostgresDown {
    cluster: (String, String),
    down: bool,
}

impl PostgresDown {
    fn stop() -> PostgresDown {
        let cluster = postgres_cluster();
        pg_ctl("stop", &cluster);
        PostgresDown { cluster, down: true }
    }

    fn start(&mut self) {
        if self.down {
            pg_ctl("start", &self.cluster);
            self.down = false;
        }
    }
}

impl Drop for PostgresDown {
    fn drop(&mut self) {
        self.start();
    }
}

/// Set `[section] key = value` in a test config (the key need not be in the template).
fn set(t: &mut toml::Table, section: &str, key: &str, value: i64) {
    let table = t.entry(section).or_insert_with(|| toml::Value::Table(Default::default()));
    table.as_table_mut().expect("a section").insert(key.into(), value.into());
}

// ---- waiting and counting ----

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A count from Postgres, or -1 while it cannot be had (an outage).
async fn count(w: &TestWorld, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(&w.pool).await.unwrap_or(-1)
}

/// Every message in a final state, every outbox row delivered or given up, every message moved.
async fn settled(w: &TestWorld, messages: i64) -> bool {
    count(w, "SELECT count(*) FROM messages WHERE state <> 'received' AND archived_at IS NOT NULL").await == messages
        && count(w, "SELECT count(*) FROM outbox WHERE state = 'pending'").await == 0
}

/// The supplier's folder once every original mail has at least one reply there, or as it is at `limit`.
async fn replies_to_all(w: &TestWorld, originals: &[String], limit: Duration) -> Vec<Received> {
    let started = Instant::now();
    loop {
        let replies: Vec<Received> =
            w.fetch_all("supplier", &w.tag).await.unwrap_or_default().into_iter().map(Received::parse).collect();
        let by = replies_by_original(&replies);
        let all = originals.iter().all(|o| by.contains_key(o.trim_matches(['<', '>'])) || by.contains_key(o.as_str()));
        if all || started.elapsed() > limit {
            return replies;
        }
        // A delivery Dovecot deferred under load waits minutes in OpenSMTPD's queue; have it retried now.
        mailservers("flush");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Submit mails over SMTP and wait until each has arrived: in the test's folder, or already taken from it by the
/// worker (then Postgres has it; the folder alone undercounts once the worker moves mail out quickly). A
/// delivery that met Dovecot's LMTP while it restarted waits minutes in OpenSMTPD's queue, so the queue is
/// flushed every second meanwhile.
async fn deliver_all(w: &TestWorld, mails: &[Vec<u8>]) {
    let ids: Vec<String> = mails.iter().map(|raw| message_id_of(raw)).collect();
    for raw in mails {
        w.submit_to(&w.intake(), raw).await.unwrap();
    }
    let started = Instant::now();
    loop {
        let fetched: Vec<String> = sqlx::query_scalar("SELECT message_id FROM messages WHERE message_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&w.pool)
            .await
            .unwrap_or_default();
        let folder = w.fetch_all("intake", &w.tag).await.unwrap_or_default();
        let waiting: Vec<&String> = ids
            .iter()
            .filter(|id| !fetched.contains(id) && !folder.iter().any(|raw| contains(raw, id.as_bytes())))
            .collect();
        if waiting.is_empty() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not delivered after 60 s: {waiting:?}");
        mailservers("flush");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The Message-ID of a raw mail, without its angle brackets (as `messages.message_id` stores it).
fn message_id_of(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("message-id")).map(|(_, v)| v))
        .map(|v| v.trim().trim_matches(['<', '>']).to_string())
        .expect("every test mail has a Message-ID")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn invoices_per_message_id(w: &TestWorld) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>("SELECT message_id, count(*) FROM invoices GROUP BY message_id")
        .fetch_all(&w.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

fn assert_one_invoice_each(rows: &HashMap<String, i64>, originals: &[String]) {
    for id in originals {
        let id = id.trim_matches(['<', '>']);
        assert_eq!(rows.get(id).copied().unwrap_or(0), 1, "invoice rows for {id}");
    }
    assert_eq!(rows.len(), originals.len());
}

// ---- crafted hostile files ----

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend(data);
    out.extend(&body);
    out.extend(crc32(&body).to_be_bytes());
}

/// A PNG whose header says `width`×`height` and whose data is a few bytes: a decompression bomb's shape. A text
/// chunk pads it past the size below which inline images are taken for logos.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunk(&mut v, b"IHDR", &ihdr);
    let mut text = b"Comment\0".to_vec();
    text.extend(std::iter::repeat_n(b'x', 20_000));
    png_chunk(&mut v, b"tEXt", &text);
    png_chunk(&mut v, b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]);
    png_chunk(&mut v, b"IEND", &[]);
    v
}

/// A valid PDF of `pages` empty A4 pages, built by hand with a correct cross-reference table.
fn blank_pdf(pages: usize) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", i + 3)).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!("<< /Type /Pages /Kids [{}] /Count {pages} >>", kids.join(" ")),
    ];
    objects.extend((0..pages).map(|_| "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>".to_string()));
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for off in offsets {
        out.extend(format!("{off:010} 00000 n \n").bytes());
    }
    out.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).bytes());
    out
}

/// The sample invoice, password-protected with qpdf (AES-256, a user password).
fn encrypted_pdf() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (plain, locked) = (dir.path().join("in.pdf"), dir.path().join("out.pdf"));
    std::fs::write(&plain, SampleInvoice::basic("ENC-1").render_pdf()).unwrap();
    let status = Command::new("qpdf")
        .args(["--encrypt", "user-secret", "owner-secret", "256", "--"])
        .arg(&plain)
        .arg(&locked)
        .status()
        .expect("qpdf must be installed (scripts/deps)");
    assert!(status.success());
    std::fs::read(locked).unwrap()
}

const XXE: &str = r#"<?xml version="1.0"?>
<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"><cbc:ID>&xxe;</cbc:ID></Invoice>
"#;

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol9;</Invoice>
"#;

/// UBL whose elements nest `depth` deep.
fn deep_xml(depth: usize) -> Vec<u8> {
    let mut s = String::from(
        r#"<?xml version="1.0"?><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">"#,
    );
    s.push_str(&"<a>".repeat(depth));
    s.push_str(&"</a>".repeat(depth));
    s.push_str("</Invoice>");
    s.into_bytes()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::thread_rng().fill(&mut v[..]);
    v
}

/// `(filename, error_code)` of every attachment row, by position.
async fn attachment_codes(w: &TestWorld) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT filename, error_code FROM attachments ORDER BY message_ref, position")
        .fetch_all(&w.pool)
        .await
        .unwrap()
}

// =====================================================================================================================

/// 100 invoice mails arrive while the worker is killed with SIGKILL at random moments, at least 20 times, and
/// started again each time. Afterwards every mail has exactly one invoice row and one reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_nothing_and_counts_nothing_twice() {
    const MAILS: usize = 100;
    const MIN_KILLS: usize = 20;
    let _servers = exclusive().await;
    let w = Arc::new(
        TestWorld::with_config(|t| {
            set(t, "imap", "poll_interval_secs", 1);
        })
        .await,
    );
    let mails: Vec<MailBuilder> = (0..MAILS).map(|i| invoice_mail(&w, &format!("K-{}-{i:03}", w.tag))).collect();
    let originals: Vec<String> = mails.iter().map(|m| m.message_id.clone()).collect();
    let raws: Vec<Vec<u8>> = mails.iter().map(MailBuilder::build).collect();

    // The mail flows in over SMTP for about 20 seconds while the killing goes on.
    let started = Instant::now();
    let sender = {
        let w = w.clone();
        tokio::spawn(async move {
            for raw in raws {
                w.submit_to(&w.intake(), &raw).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let mut kills = 0;
    let mut worker = Worker::start(&w, "kill");
    while kills < MIN_KILLS || !sender.is_finished() {
        // From just after start-up to well into a round of work: connect, fetch, extract, commit, send, move.
        let pause = rand::thread_rng().gen_range(800..2600);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        worker.kill9();
        kills += 1;
        worker = Worker::start(&w, "kill");
        assert!(started.elapsed() < Duration::from_secs(150), "the kill phase took too long");
    }
    let kill_phase = started.elapsed();

    // Left alone, the last worker finishes everything.
    wait_until("every mail handled, answered and moved", Duration::from_secs(120), || settled(&w, MAILS as i64)).await;
    // Wait for a reply to every mail, not merely for as many messages as mails: repeat deliveries count towards
    // the folder's size, and under load OpenSMTPD may still be handing the last replies to Dovecot.
    let replies = replies_to_all(&w, &originals, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // a late duplicate would arrive now
    let replies: Vec<Received> = match w.fetch_all("supplier", &w.tag).await {
        Ok(raw) => raw.into_iter().map(Received::parse).collect(),
        Err(_) => replies,
    };
    assert!(worker.alive());
    assert_eq!(worker.terminate(), Some(0), "SIGTERM: finishes and exits 0");

    let resent = assert_one_reply_each(&replies, &originals);
    assert_one_invoice_each(&invoices_per_message_id(&w).await, &originals);
    assert_eq!(count(&w, "SELECT count(*) FROM messages").await, MAILS as i64, "each mail stored once");
    assert_eq!(count(&w, "SELECT count(*) FROM messages WHERE state = 'processed'").await, MAILS as i64);
    let confirmations = w.wait_for_folder("accounts", &w.tag, MAILS, Duration::from_secs(30)).await.unwrap();
    let confirmation_ids: std::collections::HashSet<_> = confirmations.iter().map(|c| c.message_id.clone()).collect();
    assert_eq!(confirmation_ids.len(), MAILS, "one confirmation per invoice");
    let interrupted: i64 = count(&w, "SELECT count(*) FROM messages WHERE attempts > 1").await;
    println!(
        "kill -9: {kills} kills in {:.0?} while {MAILS} mails flowed; {} invoice rows, {} distinct replies, {resent} \
         reply copies delivered twice (same Message-ID), {} confirmation deliveries for {} invoices, {interrupted} \
         messages whose handling was interrupted and resumed; 0 lost",
        kill_phase,
        MAILS,
        MAILS,
        confirmations.len(),
        confirmation_ids.len(),
    );
    drop(worker);
    Arc::try_unwrap(w).ok().expect("no other user of the world").drop_database().await;
}

/// Postgres stops (as if it crashed) while the worker has mail in hand and more arrives; it comes back. The
/// worker survives, reconnects with backoff, and every mail is handled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_run_loses_nothing_and_doubles_nothing() {
    let _servers = exclusive().await;
    let w = TestWorld::with_config(|t| {
        set(t, "imap", "poll_interval_secs", 1);
    })
    .await;
    let mails: Vec<MailBuilder> = (0..20).map(|i| invoice_mail(&w, &format!("PG-{}-{i:02}", w.tag))).collect();
    let mut originals: Vec<String> = mails.iter().map(|m| m.message_id.clone()).collect();
    let raws: Vec<Vec<u8>> = mails.iter().map(MailBuilder::build).collect();
    deliver_all(&w, &raws[..10]).await;

    let mut worker = Worker::start(&w, "pg");
    wait_until("a few messages handled", Duration::from_secs(60), || async {
        count(&w, "SELECT count(*) FROM messages WHERE state <> 'received'").await >= 3
    })
    .await;
    let mut outage = PostgresDown::stop();
    let down_at = Instant::now();
    deliver_all(&w, &raws[10..]).await; // IMAP and SMTP still work: mail keeps arriving
                                        // Longer than the pool's 10 s acquire timeout, so the worker's queries fail and it has to reconnect.
    tokio::time::sleep(Duration::from_secs(14).saturating_sub(down_at.elapsed())).await;
    assert!(worker.alive(), "the worker survives a database outage");
    outage.start();
    let outage_secs = down_at.elapsed().as_secs_f32();

    wait_until("every mail handled after the outage", Duration::from_secs(120), || settled(&w, 20)).await;

    // A second outage while the worker idles: its next query fails after the pool's 10 s acquire timeout, and it
    // reconnects with backoff. Mail sent after the outage is handled as usual.
    let mut idle_outage = PostgresDown::stop();
    tokio::time::sleep(Duration::from_secs(13)).await;
    assert!(worker.alive(), "the worker survives a database outage while idle");
    idle_outage.start();
    let late: Vec<MailBuilder> = (20..22).map(|i| invoice_mail(&w, &format!("PG-{}-{i:02}", w.tag))).collect();
    originals.extend(late.iter().map(|m| m.message_id.clone()));
    deliver_all(&w, &late.iter().map(MailBuilder::build).collect::<Vec<_>>()).await;
    wait_until("every mail handled after the second outage", Duration::from_secs(120), || settled(&w, 22)).await;

    let replies = w.wait_for_folder("supplier", &w.tag, 22, Duration::from_secs(60)).await.unwrap();
    let resent = assert_one_reply_each(&replies, &originals);
    assert_one_invoice_each(&invoices_per_message_id(&w).await, &originals);
    assert!(worker.alive());
    let log = worker.log();
    let reconnects = log.matches("mail loop error; reconnecting").count();
    let held = log.matches("sent, but cannot record it yet").count();
    assert!(reconnects > 0, "the idle outage made the worker reconnect:\n{log}");
    assert_eq!(worker.terminate(), Some(0));
    println!(
        "postgres outages: {outage_secs:.1}s mid-run and 13s while idle; the worker reconnected {reconnects} times \
         and held {held} sent mails until it could record them; 22 mails, 22 invoice rows, 22 distinct replies, \
         {resent} delivered twice"
    );
    w.drop_database().await;
}

/// OpenSMTPD is down while replies are due: they wait in the outbox (the mails are handled and filed all the
/// same) and all arrive, once, when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_wait_out_an_smtp_outage_and_all_arrive_once() {
    let _servers = exclusive().await;
    let w = TestWorld::with_config(|t| {
        set(t, "imap", "poll_interval_secs", 1);
    })
    .await;
    let mails: Vec<MailBuilder> = (0..10).map(|i| invoice_mail(&w, &format!("SM-{}-{i:02}", w.tag))).collect();
    let originals: Vec<String> = mails.iter().map(|m| m.message_id.clone()).collect();
    deliver_all(&w, &mails.iter().map(MailBuilder::build).collect::<Vec<_>>()).await;

    let smtp = SmtpDown::stop();
    let down_at = Instant::now();
    let mut worker = Worker::start(&w, "smtp");
    wait_until("every mail handled while SMTP is down", Duration::from_secs(60), || async {
        count(&w, "SELECT count(*) FROM messages WHERE state = 'processed'").await == 10
            && count(&w, "SELECT count(*) FROM outbox WHERE last_error IS NOT NULL").await >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(down_at.elapsed())).await;
    assert_eq!(count(&w, "SELECT count(*) FROM outbox WHERE state = 'sent'").await, 0);
    assert_eq!(
        count(&w, "SELECT count(*) FROM outbox WHERE state = 'pending'").await,
        20,
        "10 replies, 10 confirmations"
    );
    drop(smtp);
    let outage_secs = down_at.elapsed().as_secs_f32();
    let back = Instant::now();

    wait_until("the outbox drained", Duration::from_secs(90), || settled(&w, 10)).await;
    let drained = back.elapsed().as_secs_f32();
    let replies = w.wait_for_folder("supplier", &w.tag, 10, Duration::from_secs(30)).await.unwrap();
    let resent = assert_one_reply_each(&replies, &originals);
    assert_eq!(count(&w, "SELECT count(*) FROM outbox WHERE state = 'failed'").await, 0);
    // An unreachable server is not held against the mail: no attempt was spent on the outage.
    assert_eq!(count(&w, "SELECT max(attempts)::bigint FROM outbox").await, 1);
    assert_eq!(w.wait_for_folder("accounts", &w.tag, 10, Duration::from_secs(30)).await.unwrap().len(), 10);
    assert_eq!(worker.terminate(), Some(0));
    println!(
        "smtp outage: {outage_secs:.1}s; 20 mails waited in the outbox and were sent {drained:.1}s after the server \
         returned; {resent} delivered twice, 0 lost"
    );
    w.drop_database().await;
}

/// Dovecot restarts while the worker idles (its IDLE connection is dropped) and while it fetches: it reconnects
/// and every mail is handled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_restarts_while_idling_and_while_fetching() {
    let _servers = exclusive().await;
    let w = TestWorld::with_config(|t| {
        set(t, "imap", "poll_interval_secs", 30);
    })
    .await;
    let mut worker = Worker::start(&w, "imap");
    let first = invoice_mail(&w, &format!("IM-{}-00", w.tag));
    deliver_all(&w, &[first.build()]).await;
    w.wait_for_folder("supplier", &w.tag, 1, Duration::from_secs(60)).await.unwrap();

    // Idle: the worker sits in IDLE (poll interval 30 s). The restart drops that connection.
    tokio::time::sleep(Duration::from_secs(1)).await;
    mailservers("restart-imap");
    let second = invoice_mail(&w, &format!("IM-{}-01", w.tag));
    deliver_all(&w, &[second.build()]).await;
    w.wait_for_folder("supplier", &w.tag, 2, Duration::from_secs(60)).await.unwrap();

    // Fetching: a burst of large mails (an invoice and 4 MB of something else each), with restarts while the
    // worker takes them in.
    let mut originals = vec![first.message_id.clone(), second.message_id.clone()];
    let burst: Vec<MailBuilder> = (2..10)
        .map(|i| {
            invoice_mail(&w, &format!("IM-{}-{i:02}", w.tag)).attach(
                "anexo.bin",
                "application/octet-stream",
                random_bytes(4 << 20),
            )
        })
        .collect();
    originals.extend(burst.iter().map(|m| m.message_id.clone()));
    for m in &burst {
        w.submit_to(&w.intake(), &m.build()).await.unwrap();
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(300..1200))).await;
        mailservers("restart-imap");
    }
    wait_until("every mail handled after the restarts", Duration::from_secs(120), || settled(&w, 10)).await;
    let replies = w.wait_for_folder("supplier", &w.tag, 10, Duration::from_secs(60)).await.unwrap();
    let resent = assert_one_reply_each(&replies, &originals);
    assert_one_invoice_each(&invoices_per_message_id(&w).await, &originals);
    assert!(worker.alive());
    let reconnects = worker.log().matches("mail loop error; reconnecting").count();
    assert!(reconnects >= 2, "the restarts were noticed:\n{}", worker.log());
    assert_eq!(worker.terminate(), Some(0));
    println!(
        "dovecot restarts: 4 (1 idle, 3 during a burst); {reconnects} reconnects; 10 mails, 10 replies, {resent} twice"
    );
    w.drop_database().await;
}

/// Two workers on one mailbox (the service and an operator's `once`, say): each message is handled by one of
/// them, each reply sent by one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_handle_or_send_the_same_mail() {
    let _servers = shared().await;
    let w = TestWorld::new().await;
    let mails: Vec<MailBuilder> = (0..8).map(|i| invoice_mail(&w, &format!("TW-{}-{i}", w.tag))).collect();
    let originals: Vec<String> = mails.iter().map(|m| m.message_id.clone()).collect();
    deliver_all(&w, &mails.iter().map(MailBuilder::build).collect::<Vec<_>>()).await;
    let a = invoice_intake::pipeline::App::build(w.config.clone()).await.unwrap();
    let b = invoice_intake::pipeline::App::build(w.config.clone()).await.unwrap();
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.processed + rb.processed, 8, "{ra:?} {rb:?}");
    assert_eq!(ra.sent + rb.sent, 16, "8 replies and 8 confirmations, each sent once: {ra:?} {rb:?}");
    assert_eq!(count(&w, "SELECT max(attempts)::bigint FROM messages").await, 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let replies = w.wait_for_folder("supplier", &w.tag, 8, Duration::from_secs(30)).await.unwrap();
    assert_eq!(replies.len(), 8);
    assert_eq!(assert_one_reply_each(&replies, &originals), 0);
    assert_one_invoice_each(&invoices_per_message_id(&w).await, &originals);
    println!(
        "two workers: {} and {} messages handled, {} and {} mails sent",
        ra.processed, rb.processed, ra.sent, rb.sent
    );
    w.drop_database().await;
}

/// A reply the SMTP server refuses for good (550: no such user) is a failed delivery an operator sees in
/// `status`, not something retried forever.
#[tokio::test]
async fn a_permanently_refused_reply_is_a_failed_delivery_in_status() {
    let _servers = shared().await;
    let w = TestWorld::new().await;
    let mail = invoice_mail(&w, &format!("NB-{}", w.tag)).header("Reply-To", &format!("nobody@{}", common::DOMAIN));
    deliver_all(&w, &[mail.build()]).await;
    w.run_once().await.unwrap();

    let (state, attempts, error): (String, i32, Option<String>) =
        sqlx::query_as("SELECT state, attempts, last_error FROM outbox WHERE kind = 'reply'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("failed", 1));
    let error = error.unwrap_or_default();
    assert!(error.contains("permanent") && error.contains("550"), "{error}");
    // The accountants' confirmation went out all the same.
    assert_eq!(w.wait_for_folder("accounts", &w.tag, 1, Duration::from_secs(30)).await.unwrap().len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, &w.config_toml).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_invoice-intake")).arg("status").arg("--config").arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("undeliverable mail:") && text.contains("nobody@example.test") && text.contains("550"),
        "{text}"
    );
    w.drop_database().await;
}

/// A document that hangs the extractor (1 s timeout, a page that needs OCR) is tried three times with growing
/// delays and then quarantined, with a reply saying a person will look; the mail behind it is answered at once.
/// A message during which the worker died three times is quarantined before a fourth attempt.
#[tokio::test]
async fn a_poison_message_is_quarantined_and_never_blocks_the_mail_behind_it() {
    let _servers = shared().await;
    let w = TestWorld::with_config(|t| {
        set(t, "sandbox", "timeout_secs", 1);
    })
    .await;
    // A 600 dpi scan: OCR takes several seconds, far past the 1 s the extractor is given.
    let scan = common::render_png(&SampleInvoice::basic("SLOW-1").render_pdf(), 600);
    let poison = MailBuilder::new(&w, "Factura escaneada").attach("escaneo.png", "image/png", scan);
    let xml = std::fs::read(corpus("einvoice/en16931-cen/ubl/examples/ubl-tc434-example1.xml")).unwrap();
    let good = MailBuilder::new(&w, "Factura XML").attach("factura.xml", "application/xml", xml);
    deliver_all(&w, &[poison.build(), good.build()]).await;

    let started = Instant::now();
    let summary = w.run_once().await.unwrap();
    let took = started.elapsed();
    assert_eq!(summary.processed, 2);
    let rows: Vec<(String, i32, Option<String>)> =
        sqlx::query_as("SELECT state, attempts, reason FROM messages ORDER BY subject <> 'Factura escaneada', id")
            .fetch_all(&w.pool)
            .await
            .unwrap();
    assert_eq!(rows[0].0, "quarantined", "{rows:?}");
    assert_eq!(rows[0].1, 3, "three attempts");
    let reason = rows[0].2.clone().unwrap_or_default();
    assert!(reason.contains("escaneo.png: timeout"), "{reason}");
    assert_eq!((rows[1].0.as_str(), rows[1].1), ("processed", 1), "the mail behind it went through at its first try");
    // Backoff: 10 s, then 20 s (plus up to 25 %) between the attempts.
    assert!(took >= Duration::from_secs(30), "{took:?}");
    let replies = w.wait_for_folder("supplier", &w.tag, 2, Duration::from_secs(30)).await.unwrap();
    assert!(
        replies
            .iter()
            .any(|r| common::flat(&r.text).contains("no hemos podido leerlo automáticamente; una persona lo revisará")),
        "{:#?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(w.count("intake", &format!("{}_failed", w.tag)).await.unwrap(), 1);

    // The worker itself died three times on this one (attempts counted, never finished): a fourth start
    // quarantines it without reading it again.
    let crasher = MailBuilder::new(&w, "Otra").attach("factura.xml", "application/xml", b"<x/>".to_vec());
    deliver_all(&w, &[crasher.build()]).await;
    let app = invoice_intake::pipeline::App::build(w.config.clone()).await.unwrap();
    let s = app.run_once().await.unwrap();
    assert_eq!(s.processed, 1);
    // Simulate three interrupted attempts on a fresh copy of it and let the worker meet it again.
    sqlx::query("UPDATE messages SET state = 'received', attempts = 3 WHERE subject = 'Otra'")
        .execute(&w.pool)
        .await
        .unwrap();
    app.process_pending().await.unwrap();
    let (state, reason): (String, Option<String>) =
        sqlx::query_as("SELECT state, reason FROM messages WHERE subject = 'Otra'").fetch_one(&w.pool).await.unwrap();
    assert_eq!(state, "quarantined");
    assert!(reason.unwrap_or_default().contains("interrupted 3 times"));
    println!("poison: quarantined after 3 attempts in {took:.1?}; the mail behind it answered at its first attempt");
    w.drop_database().await;
}

/// Each limit, hit through the whole pipeline, gives a clear error code and a reply that names the limit and
/// what to do: message size, attachments per message, pages per PDF, image pixels, XML depth.
#[tokio::test]
async fn every_limit_hit_gives_a_clear_error_and_a_reply_that_names_it() {
    let _servers = shared().await;
    let w = TestWorld::with_config(|t| {
        set(t, "sandbox", "max_pages", 3);
        // Four of these mails store no invoice; each must still be answered, past the hourly reply budget.
        set(t, "reply", "max_replies_without_invoice_per_hour", 10);
    })
    .await;
    // 31 MiB of attachment is a 42 MiB message once base64-encoded: over the 40 MiB default.
    let big = MailBuilder::new(&w, "Factura grande").attach("factura.pdf", "application/pdf", random_bytes(31 << 20));
    let xmls: Vec<PathBuf> = std::fs::read_dir(corpus("einvoice/xrechnung-testsuite/business-cases/standard"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    assert!(xmls.len() >= 25);
    let mut many = MailBuilder::new(&w, "25 facturas");
    for (i, p) in xmls.iter().take(25).enumerate() {
        many = many.attach(&format!("f{i:02}.xml"), "application/xml", std::fs::read(p).unwrap());
    }
    let pixels = MailBuilder::new(&w, "Foto").attach("foto.png", "image/png", png_bomb(60_000, 60_000));
    let pages = MailBuilder::new(&w, "Libro").attach("libro.pdf", "application/pdf", blank_pdf(5));
    let deep = MailBuilder::new(&w, "XML").attach("profundo.xml", "application/xml", deep_xml(200));
    let mails = [&big, &many, &pixels, &pages, &deep];
    deliver_all(&w, &mails.iter().map(|m| m.build()).collect::<Vec<_>>()).await;
    w.run_once().await.unwrap();

    let replies = w.wait_for_folder("supplier", &w.tag, 5, Duration::from_secs(30)).await.unwrap();
    let reply_to = |m: &MailBuilder| {
        let id = m.message_id.trim_matches(['<', '>']).to_string();
        replies.iter().find(|r| r.in_reply_to.as_deref() == Some(id.as_str())).map(|r| r.text.clone()).unwrap()
    };
    let text = reply_to(&big);
    assert!(
        common::flat(&text).contains("y el máximo que aceptamos es 40,0 MB; envíe la factura en un PDF más pequeño"),
        "{text}"
    );
    let text = common::flat(&reply_to(&many));
    assert_eq!(
        text.matches("no leído; leemos como máximo 20 documentos por mensaje. Envíelo en otro mensaje").count(),
        5,
        "{text}"
    );
    // Each in the supplier's words, without the operators' English detail.
    for (m, name, sentence) in [
        (
            &pixels,
            "foto.png",
            "El archivo es demasiado grande; envíe un PDF más pequeño o una imagen de menor resolución",
        ),
        (&pages, "libro.pdf", "El PDF tiene demasiadas páginas (leemos hasta 3); envíe solo la factura"),
        (&deep, "profundo.xml", "El archivo es demasiado grande"),
    ] {
        let text = common::flat(&reply_to(m));
        assert!(text.contains(&format!("{name}: no leída Qué hacer: {sentence}")), "{text}");
        assert!(!text.contains("pixels") && !text.contains("too deep"), "{text}");
    }

    let reasons: Vec<Option<String>> =
        sqlx::query_scalar("SELECT reason FROM messages ORDER BY id").fetch_all(&w.pool).await.unwrap();
    let has = |prefix: &str| reasons.iter().flatten().any(|r| r.starts_with(prefix));
    assert!(has("too_large: the message is"), "{reasons:?}");
    assert!(has("too_many_attachments: 5 documents past limits.max_attachments (20)"), "{reasons:?}");
    assert!(has("libro.pdf: too_many_pages (the PDF has 5 pages; the limit is 3)"), "{reasons:?}");
    assert!(has("profundo.xml: too_large (XML too large or too deep"), "{reasons:?}");
    assert!(has("foto.png: too_large (the image is 60000×60000 pixels"), "{reasons:?}");
    let codes = attachment_codes(&w).await;
    let code_of = |name: &str| codes.iter().find(|(f, _)| f == name).and_then(|(_, c)| c.clone());
    assert_eq!(code_of("foto.png").as_deref(), Some("too_large"));
    assert_eq!(code_of("libro.pdf").as_deref(), Some("too_many_pages"));
    assert_eq!(code_of("profundo.xml").as_deref(), Some("too_large"));
    assert_eq!(codes.iter().filter(|(f, _)| f.starts_with('f') && f.ends_with(".xml")).count(), 20);
    w.drop_database().await;
}

/// Hostile files, each through the whole pipeline: a clear error code each (never a crash, a hang or a
/// sandbox failure), and one reply that says what to do about every one.
#[tokio::test]
async fn hostile_files_each_get_a_clear_error() {
    let _servers = shared().await;
    let w = TestWorld::new().await;
    let mut truncated = SampleInvoice::basic("TR-1").render_pdf();
    truncated.truncate(truncated.len() * 2 / 5);
    let mut zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    zip.extend(random_bytes(4000));
    let files: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("vacio.pdf", "application/pdf", Vec::new(), "unreadable"),
        ("aleatorio.pdf", "application/pdf", random_bytes(50_000), "unreadable"),
        ("truncado.pdf", "application/pdf", truncated, "unreadable"),
        ("cifrado.pdf", "application/pdf", encrypted_pdf(), "encrypted"),
        ("bomba.png", "image/png", png_bomb(60_000, 60_000), "too_large"),
        ("3000-paginas.pdf", "application/pdf", blank_pdf(3000), "too_many_pages"),
        ("xxe.xml", "application/xml", XXE.as_bytes().to_vec(), "invalid_einvoice"),
        ("billion-laughs.xml", "application/xml", BILLION_LAUGHS.as_bytes().to_vec(), "invalid_einvoice"),
        ("comprimido.pdf", "application/pdf", zip, "unreadable"),
    ];
    let mut mail = MailBuilder::new(&w, "Facturas raras");
    for (name, ctype, bytes, _) in &files {
        mail = mail.attach(name, ctype, bytes.clone());
    }
    deliver_all(&w, &[mail.build()]).await;
    let started = Instant::now();
    w.run_once().await.unwrap();
    let took = started.elapsed();

    let codes = attachment_codes(&w).await;
    for (name, _, _, want) in &files {
        let got = codes.iter().find(|(f, _)| f == name).and_then(|(_, c)| c.clone());
        assert_eq!(got.as_deref(), Some(*want), "{name}: {codes:?}");
    }
    let reply = &w.wait_for_folder("supplier", &w.tag, 1, Duration::from_secs(30)).await.unwrap()[0];
    for (name, ..) in &files {
        assert!(reply.text.contains(&format!("- {name}: ")), "{name} is named in the reply:\n{}", reply.text);
    }
    assert!(reply.text.contains("cifrado.pdf: no leída"), "{}", reply.text);
    assert!(common::flat(&reply.text).contains("Qué hacer: El PDF está protegido con contraseña"), "{}", reply.text);
    assert!(!reply.text.contains("una persona lo revisará"), "no hostile file may look like a crash:\n{}", reply.text);
    assert_eq!(count(&w, "SELECT count(*) FROM messages WHERE state = 'failed' AND attempts = 1").await, 1);
    assert!(!w.fetch_all("intake", &format!("{}_failed", w.tag)).await.unwrap().is_empty());
    println!("hostile files: {} files, each with its error code, read in {took:.1?}", files.len());
    w.drop_database().await;
}

/// The mailbox is renumbered (deleted and restored, so Dovecot gives it a new UIDVALIDITY) with copies of mail we
/// already handled in it, and a new mail: the rescan settles the copies without a second reply or row, and
/// handles the new one.
#[tokio::test]
async fn a_new_uidvalidity_rescans_without_answering_twice() {
    let _servers = shared().await;
    let w = TestWorld::new().await;
    let first: Vec<MailBuilder> = (0..2).map(|i| invoice_mail(&w, &format!("UV-{}-{i}", w.tag))).collect();
    deliver_all(&w, &first.iter().map(MailBuilder::build).collect::<Vec<_>>()).await;
    w.run_once().await.unwrap();
    let processed = format!("{}_processed", w.tag);
    let handled = w.fetch_all("intake", &processed).await.unwrap();
    assert_eq!(handled.len(), 2);
    let old = w.uidvalidity("intake", &w.tag).await.unwrap();

    // A restore from backup: the folder is recreated and the two handled mails come back, byte for byte.
    w.delete_folder("intake", &w.tag).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // Dovecot's UIDVALIDITY is time-based
    for raw in &handled {
        w.append("intake", &w.tag, raw).await.unwrap();
    }
    let new = w.uidvalidity("intake", &w.tag).await.unwrap();
    assert_ne!(old, new, "the folder must have a new UIDVALIDITY");
    let third = invoice_mail(&w, &format!("UV-{}-2", w.tag));
    deliver_all(&w, &[third.build()]).await;
    w.run_once().await.unwrap();

    let states: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT state, reason FROM messages ORDER BY id").fetch_all(&w.pool).await.unwrap();
    assert_eq!(states.len(), 5, "{states:?}");
    let settled: Vec<_> = states.iter().filter(|(s, _)| s == "ignored").collect();
    assert_eq!(settled.len(), 2, "{states:?}");
    assert!(settled.iter().all(|(_, r)| r.as_deref().unwrap_or("").contains("already handled as message")));
    assert_eq!(count(&w, "SELECT count(*) FROM invoices").await, 3);
    let mut originals: Vec<String> = first.iter().map(|m| m.message_id.clone()).collect();
    originals.push(third.message_id.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let replies = w.wait_for_folder("supplier", &w.tag, 3, Duration::from_secs(30)).await.unwrap();
    assert_eq!(replies.len(), 3, "no second reply for the copies");
    assert_one_reply_each(&replies, &originals);
    assert_eq!(w.count("intake", &w.tag).await.unwrap(), 0, "the copies are filed too");
    assert_eq!(w.count("intake", &processed).await.unwrap(), 5);
    w.drop_database().await;
}

/// The whole corpus through the whole pipeline: every mail of `corpus/email/` as it is, every TNEF blob
/// as a winmail.dat, every e-invoice of `corpus/einvoice/` as the attachment of a mail. Nothing panics, and every
/// message ends answered, ignored (mail we must not answer) or quarantined, with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_corpus_goes_through_the_pipeline() {
    let _servers = shared().await;
    let w = TestWorld::with_config(|t| {
        // Replies to the corpus's own senders are refused by our OpenSMTPD (550: not a local user) and end as
        // failed deliveries; the outbox rows are what this test counts.
        set(t, "imap", "fetch_batch", 100);
    })
    .await;
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    let mut files = Vec::new();
    collect_files(&corpus("email"), &mut files);
    collect_files(&corpus("einvoice"), &mut files);
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let lower = name.to_lowercase();
        let label = path.strip_prefix(corpus("")).unwrap_or(&path).display().to_string();
        if path.starts_with(corpus("email")) && (lower.ends_with(".eml") || lower.ends_with(".txt")) {
            messages.push((label, std::fs::read(&path).unwrap()));
        } else if lower.ends_with(".tnef") {
            let mail =
                MailBuilder::new(&w, &name).attach("winmail.dat", "application/ms-tnef", std::fs::read(&path).unwrap());
            messages.push((label, mail.build()));
        } else if path.starts_with(corpus("einvoice")) && (lower.ends_with(".xml") || lower.ends_with(".pdf")) {
            let mail = MailBuilder::new(&w, &format!("Invoice {name}"))
                .body("Hello,\n\nplease find our invoice attached.\n")
                .attach(&name, "application/octet-stream", std::fs::read(&path).unwrap());
            messages.push((label, mail.build()));
        }
    }
    let total = messages.len();
    for (_, raw) in &messages {
        w.append("intake", &w.tag, raw).await.unwrap();
    }
    let appended = w.count("intake", &w.tag).await.unwrap();

    let started = Instant::now();
    let app = invoice_intake::pipeline::App::build(w.config.clone()).await.unwrap();
    let summary = app.run_once().await.unwrap();
    let took = started.elapsed();

    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM messages GROUP BY state ORDER BY state")
            .fetch_all(&w.pool)
            .await
            .unwrap();
    let replied = count(&w, "SELECT count(DISTINCT message_ref) FROM outbox WHERE kind = 'reply'").await;
    let unanswered: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT m.id, m.state, m.reason FROM messages m
         WHERE m.state IN ('processed', 'failed') AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_ref = m.id AND o.kind = 'reply')",
    )
    .fetch_all(&w.pool)
    .await
    .unwrap();
    let panics =
        count(&w, "SELECT count(*) FROM messages WHERE reason LIKE '%panic%' OR reason LIKE '%crashed%'").await;
    let sandbox_failures =
        count(&w, "SELECT count(*) FROM attachments WHERE error_code IN ('sandbox_failure', 'timeout')").await;
    let invoices = count(&w, "SELECT count(*) FROM invoices").await;
    let codes: Vec<(Option<String>, i64)> =
        sqlx::query_as("SELECT error_code, count(*) FROM attachments GROUP BY 1 ORDER BY 2 DESC")
            .fetch_all(&w.pool)
            .await
            .unwrap();
    println!(
        "corpus: {total} messages ({appended} in the folder), handled in {took:.1?}: {states:?}; {replied} answered, \
         {invoices} invoice rows; attachments by error code {codes:?}; {panics} panics or crashes, {sandbox_failures} \
         sandbox failures or timeouts"
    );
    assert_eq!(summary.fetched, total);
    assert_eq!(count(&w, "SELECT count(*) FROM messages WHERE state = 'received'").await, 0);
    assert_eq!(states.iter().map(|(_, n)| n).sum::<i64>(), total as i64);
    assert_eq!(panics, 0, "no panic, no extractor crash");
    // Every message answered, except those we must not answer (ignored: auto-replies, bounces, lists, no sender)
    // or that an operator must look at (quarantined); those carry a reason.
    let unexplained: Vec<_> =
        unanswered.iter().filter(|(_, _, r)| !r.as_deref().unwrap_or("").contains("not answered")).collect();
    assert!(unexplained.is_empty(), "handled but neither answered nor explained: {unexplained:?}");
    assert_eq!(
        count(&w, "SELECT count(*) FROM messages WHERE state IN ('ignored', 'quarantined') AND reason IS NULL").await,
        0
    );
    w.drop_database().await;
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if !path.to_string_lossy().ends_with(".expected.json") {
            out.push(path);
        }
    }
}
