//! Several `invoice-intake run` processes on one mailbox and one Postgres: 200 invoice mails with 1, 2 and 3
//! workers, each mail answered once, each invoice stored once; and the IMAP session taken over when its holder
//! is killed. Throughput figures are printed with `--nocapture`, never asserted (the benchmark measures speed).

use crate::common;

use common::flood::{append_all, assert_one_reply_each, invoice_mail};
use common::worker::{free_port, http_get, sample, Worker};
use common::{MailBuilder, Received, TestWorld};
use std::time::{Duration, Instant};

const MAILS: usize = 200;
/// How long the workers may take for the whole flood before the test gives up (a limit, not a measurement).
const FLOOD_LIMIT: Duration = Duration::from_secs(150);

/// A world whose workers notice mail at once (NOOP polling instead of Dovecot's 500 ms-late IDLE news).
async fn fast_world() -> TestWorld {
    TestWorld::with_config(|t| {
        let imap = t.get_mut("imap").and_then(|v| v.as_table_mut()).expect("[imap]");
        imap.insert("fast_poll_ms".into(), 20.into());
    })
    .await
}

async fn count(w: &TestWorld, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(&w.pool).await.unwrap_or(-1)
}

/// Wait until every message is settled and moved and every outbox mail sent.
async fn wait_settled(w: &TestWorld, workers: &mut [Worker]) {
    let started = Instant::now();
    loop {
        let settled =
            count(w, "SELECT count(*) FROM messages WHERE state <> 'received' AND archived_at IS NOT NULL").await;
        let pending = count(w, "SELECT count(*) FROM outbox WHERE state = 'pending'").await;
        if settled == MAILS as i64 && pending == 0 {
            return;
        }
        let logs: Vec<String> = workers.iter().map(Worker::log).collect();
        assert!(
            started.elapsed() < FLOOD_LIMIT,
            "{settled} of {MAILS} settled, {pending} mails pending after {FLOOD_LIMIT:?}; logs:\n{}",
            logs.join("\n----\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Run the flood with `n` workers; returns mails per second from the first APPEND to the last reply sent.
async fn flood_with(n: usize) -> f64 {
    let w = fast_world().await;
    let mut workers: Vec<Worker> = (0..n).map(|i| Worker::start(&w, &format!("scale{n}-{i}"))).collect();
    // Wait until one of them holds the IMAP session (it created the folders).
    let started = Instant::now();
    while !workers.iter().any(|wk| wk.log().contains("this process holds the IMAP session")) {
        assert!(started.elapsed() < Duration::from_secs(30), "no worker took the IMAP session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mails: Vec<MailBuilder> = (0..MAILS).map(|i| invoice_mail(&w, &format!("SC-{}-{i:03}", w.tag))).collect();
    let originals: Vec<String> = mails.iter().map(|m| m.message_id.clone()).collect();
    let raws: Vec<Vec<u8>> = mails.iter().map(MailBuilder::build).collect();

    let started = Instant::now();
    append_all(&w, "intake", &w.tag, &raws).await.unwrap();
    wait_settled(&w, &mut workers).await;
    let took = started.elapsed();

    // Counted before stopping them: once the holder stops, another takes over, as it should.
    let holders = workers.iter().filter(|wk| wk.log().contains("this process holds the IMAP session")).count();
    assert_eq!(holders, 1, "exactly one process talks IMAP");
    for wk in workers.iter_mut() {
        assert!(wk.alive(), "a worker died:\n{}", wk.log());
        assert_eq!(wk.terminate(), Some(0), "{}", wk.log());
    }

    let replies: Vec<Received> = w.wait_for_folder("supplier", &w.tag, MAILS, Duration::from_secs(60)).await.unwrap();
    assert_eq!(assert_one_reply_each(&replies, &originals), 0, "no reply delivered twice");
    assert_eq!(count(&w, "SELECT count(*) FROM messages").await, MAILS as i64);
    assert_eq!(count(&w, "SELECT count(*) FROM invoices").await, MAILS as i64);
    assert_eq!(count(&w, "SELECT count(DISTINCT message_id) FROM invoices").await, MAILS as i64);
    assert_eq!(count(&w, "SELECT count(*) FROM messages WHERE state = 'quarantined'").await, 0);
    assert_eq!(count(&w, "SELECT count(*) FROM outbox WHERE state = 'sent'").await, 2 * MAILS as i64);
    assert_eq!(count(&w, "SELECT max(attempts)::bigint FROM messages").await, 1, "no message handled twice");
    w.drop_database().await;
    MAILS as f64 / took.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_two_and_three_workers_answer_200_mails_once_each() {
    let mut figures = Vec::new();
    for n in 1..=3 {
        let rate = flood_with(n).await;
        eprintln!("scale: {n} worker(s): {MAILS} mails in {:.1} s, {rate:.1} mails/s", MAILS as f64 / rate);
        figures.push((n, rate));
    }
    eprintln!("scale: throughput by workers: {figures:.1?}");
}

/// The process holding the IMAP session is killed with SIGKILL: Postgres drops its lock with its connection,
/// another process takes the session over within seconds, and mail keeps being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_imap_holder_is_replaced_and_mail_keeps_flowing() {
    let w = fast_world().await;
    let listens = [format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port())];
    let mut workers = [0, 1].map(|i| {
        let mut table: toml::Table = toml::from_str(&w.config_toml).unwrap();
        let mut metrics = toml::Table::new();
        metrics.insert("listen".into(), listens[i].clone().into());
        table.insert("metrics".into(), metrics.into());
        Worker::start_with(&w, &toml::to_string(&table).unwrap(), &format!("takeover-{i}"))
    });
    let first = invoice_mail(&w, &format!("TK-{}-0", w.tag));
    w.send(&first.build()).await.unwrap();
    w.wait_for_folder("supplier", &w.tag, 1, Duration::from_secs(60)).await.unwrap();
    let holder = workers
        .iter()
        .position(|wk| wk.log().contains("this process holds the IMAP session"))
        .expect("one worker holds the session");
    // The other one never logged in to IMAP, and is healthy all the same: Postgres answers and the holder is
    // watching the mailbox.
    let other_listen = &listens[1 - holder];
    // It learns the holder's last contact from Postgres every few seconds, so it may take one round to say so.
    let asked = Instant::now();
    loop {
        let (status, body) = http_get(other_listen, "/healthz").await.unwrap();
        if status == 200 {
            break;
        }
        assert!(asked.elapsed() < Duration::from_secs(10), "the other worker stays unhealthy: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, text) = http_get(other_listen, "/metrics").await.unwrap();
    assert_eq!(sample(&text, "invoice_intake_imap_owner"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "invoice_intake_imap_connected"), Some(0.0), "{text}");
    workers[holder].kill9();
    let killed_at = Instant::now();

    let second = invoice_mail(&w, &format!("TK-{}-1", w.tag));
    w.send(&second.build()).await.unwrap();
    let replies = w.wait_for_folder("supplier", &w.tag, 2, Duration::from_secs(60)).await.unwrap();
    let other = &mut workers[1 - holder];
    assert!(other.log().contains("this process holds the IMAP session"), "{}", other.log());
    let (_, text) = http_get(other_listen, "/metrics").await.unwrap();
    assert_eq!(sample(&text, "invoice_intake_imap_owner"), Some(1.0), "{text}");
    assert_eq!(assert_one_reply_each(&replies, &[first.message_id.clone(), second.message_id.clone()]), 0);
    eprintln!("takeover: the second mail was answered {:.1?} after the holder was killed", killed_at.elapsed());
    assert_eq!(other.terminate(), Some(0), "{}", other.log());
    w.drop_database().await;
}
