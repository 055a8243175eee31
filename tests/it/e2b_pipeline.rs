//! The E2B backend through the whole service, against the E2B stand-in (`e2b_support`) and the local mail and
//! database servers: `invoice-intake doctor` on a complete and on a broken template, and a message whose
//! sandbox can never start (a rejected key) quarantined at its first attempt.

use crate::common;
use crate::e2b_support;

use common::{MailBuilder, TestWorld};
use e2b_support::FakeE2b;
use std::time::Duration;

const KEY: &str = "e2b_0123456789abcdef0123456789abcdef01234567";

fn e2b_backend(t: &mut toml::Table, e2b: &FakeE2b, key: &str) {
    let sandbox = t.get_mut("sandbox").and_then(|s| s.as_table_mut()).unwrap();
    sandbox.insert("backend".into(), "e2b".into());
    let section: toml::Table = toml::from_str(&format!(
        r#"
        api_url = "{url}"
        envd_url_override = "{url}"
        api_key = "{key}"
        template = "{template}"
        creations_per_second = 100.0
        timeout_secs = 60
        "#,
        url = e2b.url(),
        template = e2b_support::TEMPLATE_ID,
    ))
    .unwrap();
    sandbox.insert("e2b".into(), section.into());
}

/// Run `invoice-intake doctor` on `w`'s config; its exit code and what it printed.
async fn doctor(w: &TestWorld) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &w.config_toml).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_invoice-intake"))
        .arg("doctor")
        .arg("--config")
        .arg(&path)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_a_complete_e2b_template_and_names_the_tool_a_broken_one_cannot_run() {
    let e2b = FakeE2b::start(KEY, env!("CARGO_BIN_EXE_invoice-intake")).await;
    let w = TestWorld::with_config(|t| {
        t["imap"].as_table_mut().unwrap().insert("mailbox".into(), "INBOX".into());
        e2b_backend(t, &e2b, KEY);
    })
    .await;

    let (code, out) = doctor(&w).await;
    println!("doctor, complete template (exit {code}):\n{out}");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all checks passed"), "{out}");
    for line in ["ok   pdftotext", "ok   scanned PDF in spa", "ok   e2b sandbox delete", "n/a  jail escape tests"] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }
    assert!(!out.contains("FAIL"), "{out}");
    assert_eq!(e2b.deleted(), e2b.created());

    // The same template with poppler's library unloadable.
    let (_libs, lib_path) = e2b_support::broken_poppler();
    e2b.template_env("LD_LIBRARY_PATH", &lib_path);
    let (code, out) = doctor(&w).await;
    println!("doctor, template with an unloadable libpoppler (exit {code}):\n{out}");
    assert_eq!(code, 1, "{out}");
    let missing = out.split("\nmissing:\n").nth(1).unwrap_or_default();
    assert!(missing.contains("- pdftotext: pdftotext starts but cannot read"), "{out}");
    assert!(missing.contains("- pdftoppm:"), "{out}");
    assert!(!missing.contains("tesseract language spa"), "{out}");
    assert_eq!(e2b.deleted(), e2b.created());
    w.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_e2b_key_quarantines_the_message_at_its_first_attempt_with_the_reason() {
    let e2b = FakeE2b::start(KEY, env!("CARGO_BIN_EXE_invoice-intake")).await;
    let w = TestWorld::with_config(|t| e2b_backend(t, &e2b, "e2b_ffffffffffffffffffffffffffffffffffffffff")).await;
    let (name, xml) = e2b_support::corpus_invoice();
    let mail = MailBuilder::new(&w, "Factura E2B").attach(&name, "application/xml", xml);
    w.send(&mail.build()).await.unwrap();

    let started = std::time::Instant::now();
    let summary = w.run_once().await.unwrap();
    assert_eq!(summary.processed, 1);
    let (state, attempts, reason): (String, i32, Option<String>) =
        sqlx::query_as("SELECT state, attempts, reason FROM messages").fetch_one(&w.pool).await.unwrap();
    assert_eq!((state.as_str(), attempts), ("quarantined", 1), "{reason:?}");
    let reason = reason.unwrap_or_default();
    assert!(reason.contains("retrying will not help") && reason.contains("E2B API key rejected"), "{reason}");
    assert!(reason.contains(&name), "{reason}");
    // No backoff was waited out (the retries of a transient failure wait 10 s, then 20 s).
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(e2b.created().is_empty());
    assert_eq!(w.count("intake", &format!("{}_failed", w.tag)).await.unwrap(), 1);
    w.drop_database().await;
}
