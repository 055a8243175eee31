//! Mail written to hurt, through the whole service on real servers: what one hostile message must never do to
//! the others (stop the outbox), to the people who read our mail (extra lines), or to the supplier's invoice
//! (lost for a malformed wrapping).

use crate::common;

use common::worker::Worker;
use common::{MailBuilder, TestWorld};
use std::process::Command;
use std::time::{Duration, Instant};

/// `invoice-intake status` for the world's config: its exit code and what it printed.
fn status(w: &TestWorld) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, &w.config_toml).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_invoice-intake")).arg("status").arg("--config").arg(&config).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    started.elapsed()
}

/// One mail the SMTP server refuses (a 6 MB header line: OpenSMTPD answers `500 Line too long` and drops the
/// connection while the content is still being written), queued first; then a supplier's mail. With ONE delivery
/// slot the supplier's reply still arrives within a minute, and the refused mail ends `failed` with its reason,
/// which `status` shows.
#[tokio::test]
async fn a_mail_the_server_refuses_fails_alone_and_the_reply_behind_it_still_goes_out() {
    // max_connections 3: one extraction slot and one delivery slot (`App::delivery_slots`).
    let w = TestWorld::with_config(|t| {
        t["database"].as_table_mut().unwrap().insert("max_connections".into(), 3.into());
    })
    .await;
    invoice_intake::store::migrate(&w.pool).await.unwrap();
    let message_ref: i64 = sqlx::query_scalar(
        "INSERT INTO messages (mailbox, uidvalidity, uid, raw, raw_sha256, size_bytes, state, archived_at)
         VALUES ('elsewhere', 1, 1, 'x', 'x', 1, 'processed', now()) RETURNING id",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    let poisoned = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nMessage-ID: <poisoned@example.test>\r\n\r\nx\r\n",
        "x".repeat(6 * 1024 * 1024),
        from = w.config.smtp.from,
        to = w.supplier(),
    );
    let poisoned_id: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (message_ref, kind, mail_message_id, envelope_from, recipients, body)
         VALUES ($1, 'reply', 'poisoned@example.test', $2, $3, $4) RETURNING id",
    )
    .bind(message_ref)
    .bind(&w.config.smtp.from)
    .bind(vec![w.supplier()])
    .bind(poisoned.as_bytes())
    .fetch_one(&w.pool)
    .await
    .unwrap();

    let innocent = MailBuilder::new(&w, "Consulta sin factura");
    w.send(&innocent.build()).await.unwrap();
    let worker = Worker::start(&w, "refused");
    let took = wait_for("the innocent reply", Duration::from_secs(60), async || {
        w.mailbox_now("supplier").await.unwrap_or_default().iter().any(|r| r.subject == "Re: Consulta sin factura")
    })
    .await;
    println!("the reply behind the refused mail arrived after {:.1} s", took.as_secs_f64());

    let failed = async || {
        sqlx::query_scalar::<_, String>("SELECT state FROM outbox WHERE id = $1")
            .bind(poisoned_id)
            .fetch_one(&w.pool)
            .await
            .unwrap()
            == "failed"
    };
    let took = wait_for("the refused mail to fail", Duration::from_secs(120), failed).await;
    println!("the refused mail was failed {:.1} s later", took.as_secs_f64());
    let (attempts, error): (i32, String) = sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE id = $1")
        .bind(poisoned_id)
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "{error}");
    assert!(error.contains("dropped the connection") || error.contains("500"), "{error}");
    assert!(!worker.log().contains("delivery paused"), "{}", worker.log());

    let (ok, text) = status(&w);
    assert!(ok, "{text}");
    assert!(text.contains("undeliverable mail:") && text.contains(&format!("outbox #{poisoned_id}")), "{text}");
    drop(worker);
    w.drop_database().await;
}

/// A UBL invoice whose currency carries a line break and a fake IBAN (`EUR&#10;    IBAN: ES76…`), whose due date
/// is `0000-01-01` and whose total is `1e400`: nothing implausible is stored, no extra line reaches the supplier
/// or the accountants, and the supplier is told the total could not be read.
#[tokio::test]
async fn read_fields_cannot_add_lines_and_implausible_values_are_not_stored() {
    let w = TestWorld::new().await;
    let xml = std::fs::read("tests/fixtures/hostile/ubl-injected-currency.xml").unwrap();
    let mail = MailBuilder::new(&w, "Factura HX-1").attach("HX-1.xml", "application/xml", xml);
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    let (currency, due, total): (Option<String>, Option<chrono::NaiveDate>, Option<rust_decimal::Decimal>) =
        sqlx::query_as("SELECT currency, due_date, total_amount FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert_eq!((currency, due, total), (None, None, None));

    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    let confirmation = &w.mailbox("accounts", 1).await.unwrap()[0];
    for (who, m) in [("supplier", reply), ("accountants", confirmation)] {
        for body in [&m.text, &m.html] {
            assert!(!body.contains("ES7600000000000000000000"), "the fake IBAN reached the {who}: {body}");
        }
    }
    assert!(common::flat(&reply.text).contains("No hemos podido leer el importe total"), "{}", reply.text);
    assert!(confirmation.subject.starts_with("[REVISAR]"), "{}", confirmation.subject);
    w.drop_database().await;
}

/// A robot that answers every mail and does not say it is one: its answer to our reply is recorded, not answered,
/// and however many mails without an invoice one sender sends, it gets at most three replies an hour.
#[tokio::test]
async fn a_robot_that_answers_us_gets_no_reply_and_a_sender_at_most_three_an_hour() {
    let w = TestWorld::new().await;
    let first = MailBuilder::new(&w, "Pregunta");
    w.send(&first.build()).await.unwrap();
    w.run_once().await.unwrap();
    let ours = w.mailbox("supplier", 1).await.unwrap()[0].message_id.clone().expect("our reply's Message-ID");

    // The robot's answer to our reply, in the thread, with nothing attached.
    let robot = MailBuilder::new(&w, "Re: Re: Pregunta")
        .header("In-Reply-To", &format!("<{ours}>"))
        .header("References", &format!("{} <{ours}>", first.message_id));
    w.send(&robot.build()).await.unwrap();
    w.run_once().await.unwrap();
    let reason: String = sqlx::query_scalar("SELECT reason FROM messages WHERE message_id = $1")
        .bind(robot.message_id.trim_matches(['<', '>']))
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert!(reason.contains("not answered") && reason.contains("answers our mail"), "{reason}");

    for i in 0..4 {
        w.send(&MailBuilder::new(&w, &format!("Otra pregunta {i}")).build()).await.unwrap();
    }
    w.run_once().await.unwrap();
    w.mailbox("supplier", 3).await.unwrap();
    // Whatever was sent has arrived by now (OpenSMTPD hands mail to Dovecot within milliseconds here).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replies = w.mailbox_now("supplier").await.unwrap();
    assert_eq!(replies.len(), 3, "{:?}", replies.iter().map(|r| &r.subject).collect::<Vec<_>>());
    let held: i64 =
        w.scalar_i64("SELECT count(*) FROM messages WHERE reason LIKE '%max_replies_without_invoice_per_hour%'").await;
    assert_eq!(held, 2);
    w.drop_database().await;
}

/// A world whose `[sandbox]` sets `key` to `value`.
async fn sandbox_world(key: &str, value: i64) -> TestWorld {
    TestWorld::with_config(|t| {
        t["sandbox"].as_table_mut().unwrap().insert(key.into(), value.into());
    })
    .await
}

/// `mail` with `n` invoices scanned at 300 dpi (PNG), numbered `{prefix}-0` on.
fn with_scans(mut mail: MailBuilder, prefix: &str, n: usize) -> MailBuilder {
    for i in 0..n {
        let scan = common::render_png(&common::pdf::SampleInvoice::basic(&format!("{prefix}-{i}")).render_pdf(), 300);
        mail = mail.attach(&format!("scan{i}.png"), "image/png", scan);
    }
    mail
}

/// A 772-byte little-endian TIFF whose one page table (IFD) names itself as the next.
fn looping_tiff() -> Vec<u8> {
    std::fs::read("tests/fixtures/hostile/looping.tif").unwrap()
}

/// Twenty TIFFs whose page table loops, in one 15 KB mail: each is refused before the sandbox, the supplier is
/// told the files are damaged, and the message is settled on its first attempt, not after two hours of timeouts.
#[tokio::test]
async fn looping_tiffs_are_refused_before_the_sandbox_with_a_reply() {
    let w = sandbox_world("timeout_secs", 20).await;
    let mut mail = MailBuilder::new(&w, "Facturas escaneadas");
    for i in 0..20 {
        mail = mail.attach(&format!("scan{i}.tif"), "image/tiff", looping_tiff());
    }
    w.send(&mail.build()).await.unwrap();
    let started = Instant::now();
    w.run_once().await.unwrap();
    println!("20 looping TIFFs handled in {:.2} s", started.elapsed().as_secs_f64());
    let (state, attempts, reason): (String, i32, String) =
        sqlx::query_as("SELECT state, attempts, reason FROM messages").fetch_one(&w.pool).await.unwrap();
    assert_eq!((state.as_str(), attempts), ("failed", 1));
    // Refused by the structural check of the TIFF, not by whatever the image library in the sandbox makes of it.
    assert_eq!(reason.matches("page table loops").count(), 20, "{reason}");
    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert_eq!(reply.text.matches("El archivo está dañado").count(), 20, "{}", reply.text);
    w.drop_database().await;
}

/// Four scans in one mail and a time budget of one second for all of a message's documents: the budget runs out
/// while the first is read, the others are not read, and the message goes to a person at once instead of being
/// tried again (it would use up its budget again).
#[tokio::test]
async fn a_message_past_its_time_budget_is_not_read_further_nor_retried() {
    let w = sandbox_world("message_budget_secs", 1).await;
    let mail = with_scans(MailBuilder::new(&w, "Cuatro facturas escaneadas"), "BUDGET", 4);
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();
    let (state, attempts, reason): (String, i32, Option<String>) =
        sqlx::query_as("SELECT state, attempts, reason FROM messages").fetch_one(&w.pool).await.unwrap();
    let reason = reason.unwrap_or_default();
    assert_eq!((state.as_str(), attempts), ("quarantined", 1), "{reason}");
    assert!(reason.contains("time budget (1 s)"), "{reason}");
    let read = w.scalar_i64("SELECT count(*) FROM attachments WHERE status = 'ok'").await;
    let not_read = w.scalar_i64("SELECT count(*) FROM attachments WHERE error_code = 'timeout'").await;
    assert!(read >= 1 && not_read >= 1 && read + not_read == 4, "{read} read, {not_read} not read");
    w.drop_database().await;
}

/// SIGTERM while a message's first of four scans is read: the worker stops after that document, the message is
/// put back unread (its interrupted attempt not counted), and nothing of it is stored or answered.
#[tokio::test]
async fn sigterm_stops_after_the_document_in_hand_and_puts_the_rest_back() {
    let w = TestWorld::new().await;
    let mail = with_scans(MailBuilder::new(&w, "Cuatro facturas"), "STOP", 4);
    w.send(&mail.build()).await.unwrap();
    let mut worker = Worker::start(&w, "sigterm");
    wait_for("the message to be taken", Duration::from_secs(60), async || {
        sqlx::query_scalar::<_, i32>("SELECT attempts FROM messages").fetch_optional(&w.pool).await.ok().flatten()
            == Some(1)
    })
    .await;
    let started = Instant::now();
    assert_eq!(worker.terminate(), Some(0), "{}", worker.log());
    println!("stopped {:.1} s after SIGTERM", started.elapsed().as_secs_f64());
    let (state, attempts, reason): (String, i32, Option<String>) =
        sqlx::query_as("SELECT state, attempts, reason FROM messages").fetch_one(&w.pool).await.unwrap();
    assert_eq!((state.as_str(), attempts), ("received", 0), "{reason:?}\n{}", worker.log());
    assert!(reason.unwrap_or_default().contains("put back"));
    assert_eq!(w.scalar_i64("SELECT count(*) FROM attachments").await, 0);
    assert_eq!(w.scalar_i64("SELECT count(*) FROM outbox").await, 0);

    // The next start reads it whole.
    let worker = Worker::start(&w, "sigterm-after");
    let replies = w.wait_for_folder("supplier", &w.tag, 1, Duration::from_secs(180)).await.unwrap();
    assert_eq!(replies[0].text.matches("registrada").count(), 4, "{}", replies[0].text);
    drop(worker);
    w.drop_database().await;
}

/// `RUST_LOG=trace`, output to a pipe (as under systemd): the IMAP LOGIN line with its password is not logged,
/// and no colour codes are written.
#[tokio::test]
async fn a_trace_log_carries_no_password_and_no_colour_codes() {
    let w = TestWorld::new().await;
    w.send(&MailBuilder::new(&w, "Hola").build()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, &w.config_toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_invoice-intake"))
        .args(["once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "trace,async_imap=trace")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "a trace log was written: {log}");
    assert!(!log.contains("LOGIN \\\"") && !log.contains("\\\"secret\\\""), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log that is not a terminal");
    w.drop_database().await;
}

/// A Message-ID reused by another sender is not "already received" (and does not say when the first came); a mail
/// without a From is stored as nobody's, with the reason that nobody was answered.
#[tokio::test]
async fn identity_is_the_sender_and_the_message_id_together() {
    let w = TestWorld::new().await;
    let first = MailBuilder::new(&w, "Consulta");
    w.send(&first.build()).await.unwrap();
    w.run_once().await.unwrap();
    w.mailbox("supplier", 1).await.unwrap();

    let other = format!("other+{}@example.test", w.tag);
    let mut copycat = MailBuilder::new(&w, "Consulta");
    copycat.from = format!("Otro <{other}>");
    copycat.message_id = first.message_id.clone();
    w.send(&copycat.build()).await.unwrap();
    w.run_once().await.unwrap();
    let reply = &w.wait_for_folder("other", &w.tag, 1, Duration::from_secs(30)).await.unwrap()[0];
    assert!(!reply.text.contains("ya lo recibimos"), "{}", reply.text);

    let pdf = common::pdf::SampleInvoice::basic("NOFROM-1").render_pdf();
    let anonymous = MailBuilder::new(&w, "Sin remitente").attach("f.pdf", "application/pdf", pdf);
    let raw = String::from_utf8(anonymous.build()).unwrap();
    let raw: String = raw.split("\r\n").filter(|l| !l.starts_with("From:")).collect::<Vec<_>>().join("\r\n");
    w.send(raw.as_bytes()).await.unwrap();
    w.run_once().await.unwrap();
    let (state, reason): (String, Option<String>) =
        sqlx::query_as("SELECT state, reason FROM messages WHERE subject = 'Sin remitente'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(state, "processed");
    assert!(reason.as_deref().unwrap_or("").contains("not answered: no sender address"), "{reason:?}");
    let sender: String = sqlx::query_scalar("SELECT sender FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert!(sender.starts_with("(no sender"), "{sender}");
    w.drop_database().await;
}

/// `status | head -1`, `reprocess` of an id that does not exist, `doctor` on a config that answers anyone: the
/// operator gets a quiet end, the reason, and the warnings.
#[tokio::test]
async fn operator_commands_end_quietly_and_say_why() {
    let w = TestWorld::new().await;
    invoice_intake::store::migrate(&w.pool).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, &w.config_toml).unwrap();
    let bin = env!("CARGO_BIN_EXE_invoice-intake");
    for command in ["status", "doctor"] {
        let mut child = Command::new(bin)
            .args([command, "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away at once, as `head -0` would.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{command}: {stderr}");
    }
    let out = Command::new(bin).args(["reprocess", "--config"]).arg(&config).arg("999999").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("#999999: no such message"), "{text}");
    let out = Command::new(bin).args(["doctor", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sender_policy = \"any\""), "{text}");
    w.drop_database().await;
}

/// A mail the SMTP server keeps refusing for now stays pending; `status` names the oldest such mail, its
/// recipient and the server's last answer, so the operator sees what holds the outbox.
#[tokio::test]
async fn status_names_the_oldest_pending_mail_and_its_last_error() {
    let w = TestWorld::new().await;
    invoice_intake::store::migrate(&w.pool).await.unwrap();
    let (message,): (i64,) = sqlx::query_as(
        "INSERT INTO messages (mailbox, uidvalidity, uid, raw, raw_sha256, size_bytes)
         VALUES ('INBOX', 1, 1, 'x', 'sha', 1) RETURNING id",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    for (n, error) in [(1, "451 4.3.0 mailbox busy, try later"), (2, "421 service not available")] {
        sqlx::query(
            "INSERT INTO outbox (message_ref, kind, mail_message_id, envelope_from, recipients, body, attempts, last_error)
             VALUES ($1, 'reply', $2, 'intake@example.test', ARRAY[$3], 'x', $4, $5)",
        )
        .bind(message)
        .bind(format!("<pending-{n}@example.test>"))
        .bind(format!("supplier{n}@example.test"))
        .bind(n)
        .bind(error)
        .execute(&w.pool)
        .await
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, &w.config_toml).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_invoice-intake")).args(["status", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("oldest pending mail")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("supplier1@example.test") && line.contains("451 4.3.0 mailbox busy"), "{line}");
    assert!(!line.contains("supplier2@example.test"), "the oldest, not the newest: {line}");
    w.drop_database().await;
}

/// `doctor` on the world's config as `adjust` spoils it: what it printed.
fn doctor(w: &TestWorld, adjust: impl FnOnce(&mut toml::Table)) -> String {
    let mut table: toml::Table = toml::from_str(&w.config_toml).unwrap();
    adjust(&mut table);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_invoice-intake")).args(["doctor", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success(), "doctor passed a spoilt config");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line `doctor` printed for `check`.
fn check_line<'a>(text: &'a str, check: &str) -> &'a str {
    text.lines().find(|l| l.split_whitespace().nth(1) == Some(check)).unwrap_or_else(|| panic!("no {check}: {text}"))
}

/// `[section] key = value` in a config table.
fn set(t: &mut toml::Table, section: &str, key: &str, value: &str) {
    t[section].as_table_mut().unwrap().insert(key.into(), value.into());
}

/// `doctor` says what is wrong as an operator reads it: the IMAP server's own sentence, not a Rust debug print; a
/// database's error once; a closed database port as refused, with its address; and a warning when nobody would be
/// told of stored invoices.
#[tokio::test]
async fn doctor_says_what_is_wrong_in_plain_words() {
    let w = TestWorld::new().await;
    let table: toml::Table = toml::from_str(&w.config_toml).unwrap();
    let url = table["database"]["url"].as_str().unwrap();
    let missing_database = url.replace(&w.db_name, &format!("{}_missing", w.db_name));
    let text = doctor(&w, |t| {
        set(t, "imap", "password", "wrong");
        set(t, "database", "url", &missing_database);
        t["notify"].as_table_mut().unwrap().remove("accountants");
    });
    let imap = check_line(&text, "imap");
    assert!(imap.contains("refused: the server answered NO") && !imap.contains("Some("), "{imap}");
    let postgres = check_line(&text, "postgres");
    assert_eq!(postgres.matches("does not exist").count(), 1, "{postgres}");
    assert!(text.contains("no [notify] accountants"), "{text}");

    let text = doctor(&w, |t| {
        set(t, "imap", "mailbox", &format!("{}_nowhere", w.tag));
        set(t, "database", "url", "postgres://postgres@127.0.0.1:1/invoice_intake");
    });
    let imap = check_line(&text, "imap");
    assert!(imap.contains("cannot select mailbox") && imap.contains("the server answered NO"), "{imap}");
    assert!(!imap.contains("Some("), "{imap}");
    let postgres = check_line(&text, "postgres");
    assert!(postgres.contains("127.0.0.1:1") && postgres.contains("connection refused"), "{postgres}");
    w.drop_database().await;
}
