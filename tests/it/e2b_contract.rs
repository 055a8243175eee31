//! Contract tests of the E2B backend against a local server implementing the documented subset of E2B's API
//! (`e2b_support`): the REST API (create, delete) and envd (file upload, Connect-RPC process start). Real HTTP on
//! 127.0.0.1, the real client, and the real extractor binary run by the server for the sandbox, so a real invoice
//! is read end to end. The real E2B service is not reachable from here; see e2b/README.md for what that leaves
//! unverified.

use crate::e2b_support;

use e2b_support::{FakeE2b, TEMPLATE_EXTRACTOR, TEMPLATE_ID, UNKNOWN_TEMPLATE};
use invoice_intake::extract::{ErrorCode, Status};
use invoice_intake::sandbox::e2b::{E2bError, E2bSandbox};
use invoice_intake::sandbox::ExtractOptions;
use std::time::{Duration, Instant};

const KEY: &str = "e2b_0123456789abcdef0123456789abcdef01234567";

fn extractor() -> &'static str {
    env!("CARGO_BIN_EXE_invoice-intake")
}

fn options() -> ExtractOptions {
    ExtractOptions { max_pages: 50, max_image_pixels: 100_000_000, ..Default::default() }
}

async fn server() -> FakeE2b {
    FakeE2b::start(KEY, extractor()).await
}

#[tokio::test]
async fn a_document_is_read_through_the_e2b_api_and_the_sandbox_deleted() {
    let e2b = server().await;
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();
    let (name, bytes) = e2b_support::corpus_invoice();

    let results = client.extract(&name, &bytes, &options()).await;

    assert_eq!(results.len(), 1, "{results:?}");
    let r = &results[0];
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.invoice_number.as_deref(), Some("12115118"));
    assert_eq!(r.file, name);
    assert_eq!(r.sha256.as_deref(), Some(invoice_intake::extract::sha256_hex(&bytes).as_str()));

    // One sandbox, created as documented and deleted.
    assert_eq!(e2b.created().len(), 1);
    assert_eq!(e2b.deleted(), e2b.created());
    e2b.with(|rec| {
        let body = &rec.create_bodies[0];
        assert_eq!(body["templateID"], "invoice-intake");
        assert!(body["timeout"].as_u64().unwrap() > 60, "a TTL past our own deadline: {body}");
        assert_eq!(body["secure"], true, "secure, so envd wants the access token");
        assert_eq!(body["allow_internet_access"], false);
        assert_eq!(body["metadata"]["app"], "invoice-intake");
        // The document went to /tmp/document, whole.
        assert_eq!(rec.uploads, vec![(rec.created[0].clone(), "/tmp/document".to_string(), bytes.len())]);
        // The extractor ran by absolute path with an argument vector, not through a shell.
        let c = &rec.commands[0];
        assert_eq!(c.cmd, TEMPLATE_EXTRACTOR);
        assert_eq!(c.args.first().map(String::as_str), Some("sandbox-run"));
        assert!(c.args.contains(&format!("--name={name}")), "{:?}", c.args);
        assert_eq!(c.args.last().map(String::as_str), Some("/tmp/document"));
        assert_eq!(c.envs.get("PATH").map(String::as_str), Some("/usr/bin:/bin"), "PATH is ours, not the template's");
        assert_eq!(c.stdin, Some(false), "no stdin for the extractor (envd 0.3.0 and later)");
    });
}

#[tokio::test]
async fn a_wrong_api_key_is_a_permanent_error_naming_the_key() {
    let e2b = server().await;
    let wrong = "e2b_ffffffffffffffffffffffffffffffffffffffff";
    let client = E2bSandbox::new(&e2b.config(wrong)).unwrap();
    let (name, bytes) = e2b_support::corpus_invoice();

    let err = client.try_extract(&name, &bytes, &options()).await.unwrap_err();
    assert!(matches!(err, E2bError::Unauthorized), "{err:?}");
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(text.contains("E2B API key rejected"), "{text}");
    assert!(!text.contains(wrong) && !format!("{err:?}").contains(wrong), "the key itself never shows: {text}");
    assert!(!format!("{client:?}").contains(wrong));

    // Through the pipeline's entry point: one failed result, never a panic.
    let results = client.extract(&name, &bytes, &options()).await;
    assert_eq!(results.len(), 1);
    let e = results[0].error.as_ref().unwrap();
    assert_eq!(e.code, ErrorCode::SandboxFailure);
    assert!(e.message.contains("E2B API key rejected"), "{}", e.message);
    assert!(e2b.created().is_empty());
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_the_delay() {
    let e2b = server().await;
    e2b.rate_limit_next(1, "1");
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();
    let (name, bytes) = e2b_support::corpus_invoice();

    let t0 = Instant::now();
    let results = client.try_extract(&name, &bytes, &options()).await.unwrap();
    let waited = t0.elapsed();

    assert_eq!(results[0].invoice_number.as_deref(), Some("12115118"));
    assert!(waited >= Duration::from_millis(950), "Retry-After: 1 was honoured, waited {waited:?}");
    assert_eq!(e2b.with(|r| r.create_attempts), 2);
    assert_eq!(e2b.created().len(), 1);
    assert_eq!(e2b.deleted(), e2b.created());
}

#[tokio::test]
async fn a_rate_limit_that_persists_is_a_transient_error_with_its_delay() {
    let e2b = server().await;
    e2b.rate_limit_next(100, "0");
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();

    let err = client.try_extract("a.xml", b"<x/>", &options()).await.unwrap_err();
    assert!(matches!(err, E2bError::RateLimited { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::ZERO));
    assert!(e2b.created().is_empty());
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_is_returned_not_waited_out() {
    let e2b = server().await;
    e2b.rate_limit_next(1, "30");
    let mut cfg = e2b.config(KEY);
    cfg.timeout_secs = 5;
    let client = E2bSandbox::new(&cfg).unwrap();

    let t0 = Instant::now();
    let err = client.try_extract("a.xml", b"<x/>", &options()).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)), "{err:?}");
    assert!(e2b.created().is_empty());
}

#[tokio::test]
async fn a_sandbox_that_dies_mid_run_is_transient_and_deleted() {
    let e2b = server().await;
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();
    let (_, bytes) = e2b_support::corpus_invoice();

    // The connection is cut after some output.
    let err = client.try_extract("die-invoice.xml", &bytes, &options()).await.unwrap_err();
    assert!(matches!(&err, E2bError::SandboxDied(m) if m.contains("before its end event")), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.error_code(), ErrorCode::SandboxFailure);

    // The stream ends cleanly, but without an end event.
    let err = client.try_extract("eof-invoice.xml", &bytes, &options()).await.unwrap_err();
    assert!(matches!(&err, E2bError::SandboxDied(m) if m.contains("without an end event")), "{err:?}");
    assert!(err.is_transient());

    assert_eq!(e2b.created().len(), 2);
    assert_eq!(e2b.deleted(), e2b.created());
}

#[tokio::test]
async fn a_timeout_deletes_the_sandbox() {
    let e2b = server().await;
    let mut cfg = e2b.config(KEY);
    cfg.timeout_secs = 2;
    let client = E2bSandbox::new(&cfg).unwrap();

    let t0 = Instant::now();
    let err = client.try_extract("hang.xml", b"<x/>", &options()).await.unwrap_err();
    assert!(matches!(err, E2bError::Timeout { secs: 2 }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.error_code(), ErrorCode::Timeout);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(e2b.deleted(), e2b.created());

    // The pipeline's entry point reports it as a timeout.
    let results = client.extract("hang.xml", b"<x/>", &options()).await;
    assert_eq!(results[0].error.as_ref().unwrap().code, ErrorCode::Timeout);
    assert_eq!(e2b.created().len(), 2);
    assert_eq!(e2b.deleted(), e2b.created());
}

#[tokio::test]
async fn no_sandbox_leaks_when_runs_fail() {
    let e2b = server().await;
    let mut cfg = e2b.config(KEY);
    cfg.timeout_secs = 2;
    cfg.max_concurrent = 4;
    cfg.pool_size = 2;
    let client = E2bSandbox::new(&cfg).unwrap();
    client.warm_up().await.unwrap();
    assert_eq!(client.pooled(), 2);

    let docs: Vec<(String, Vec<u8>)> = (0..3)
        .flat_map(|i| {
            [
                (format!("die-{i}.xml"), b"<x/>".to_vec()),
                (format!("hang-{i}.xml"), b"<x/>".to_vec()),
                (format!("crash-{i}.pdf"), b"%PDF-1.4".to_vec()),
                (format!("upload-{i}.pdf"), b"FAIL-UPLOAD".to_vec()),
            ]
        })
        .collect();
    let opts = options();
    let runs = docs.iter().map(|(name, bytes)| client.try_extract(name, bytes, &opts));
    let outcomes = futures::future::join_all(runs).await;

    for ((name, _), outcome) in docs.iter().zip(&outcomes) {
        let err = outcome.as_ref().expect_err(name);
        let expected = match name.split('-').next().unwrap() {
            "die" => matches!(err, E2bError::SandboxDied(_)),
            "hang" => matches!(err, E2bError::Timeout { .. }),
            "crash" => matches!(err, E2bError::Extractor(_)) && !err.is_transient(),
            _ => matches!(err, E2bError::Http { status: 500, .. }) && err.is_transient(),
        };
        assert!(expected, "{name}: {err:?}");
    }

    client.shutdown().await;
    let leaked = e2b.wait_until_all_deleted(Duration::from_secs(10)).await;
    assert!(leaked.is_empty(), "leaked sandboxes: {leaked:?}");
    let (created, deleted) = (e2b.created().len(), e2b.deleted().len());
    assert!(created >= docs.len(), "{created} created for {} documents", docs.len());
    assert_eq!(created, deleted);
}

#[tokio::test]
async fn an_exit_code_of_zero_omitted_from_the_end_event_is_success() {
    let e2b = server().await;
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();
    let (name, bytes) = e2b_support::corpus_invoice();

    let results = client.try_extract(&name, &bytes, &options()).await.unwrap();
    assert_eq!(results[0].invoice_number.as_deref(), Some("12115118"));
    let end = e2b.with(|r| r.end_events.last().cloned()).unwrap();
    assert!(!end.contains("exitCode"), "the server left the zero out, as envd does: {end}");

    // A non-zero exit code, present, is a failure of the extractor, not of the network.
    let err = client.try_extract("crash.pdf", b"%PDF-1.4", &options()).await.unwrap_err();
    assert!(matches!(&err, E2bError::Extractor(m) if m.contains("code 101") && m.contains("panicked")), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(e2b.deleted(), e2b.created());
}

#[tokio::test]
async fn a_missing_template_is_a_permanent_error_naming_the_template() {
    let e2b = server().await;
    let mut cfg = e2b.config(KEY);
    cfg.template = UNKNOWN_TEMPLATE.into();
    let client = E2bSandbox::new(&cfg).unwrap();

    let err = client.try_extract("a.xml", b"<x/>", &options()).await.unwrap_err();
    assert!(matches!(err, E2bError::TemplateNotFound { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains(UNKNOWN_TEMPLATE), "{err}");
}

/// envd runs every command through a shell wrapper, so a template without the extractor is a run that exits
/// 127, with an end event carrying `error`, not a refused RPC.
#[tokio::test]
async fn a_template_without_the_extractor_exits_127_and_is_a_permanent_error_naming_the_path() {
    let e2b = server().await;
    let mut cfg = e2b.config(KEY);
    cfg.extractor_path = "/usr/bin/invoice-intake".into();
    let client = E2bSandbox::new(&cfg).unwrap();

    let err = client.try_extract("a.xml", b"<x/>", &options()).await.unwrap_err();
    let end = e2b.with(|r| r.end_events.last().cloned()).unwrap();
    assert!(end.contains(r#""exitCode":127"#) && end.contains(r#""error":"exit status 127""#), "{end}");
    assert!(
        matches!(&err, E2bError::Extractor(m) if m.contains("no /usr/bin/invoice-intake") && m.contains("exit 127")),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(e2b.deleted(), e2b.created());
}

/// A run that did not exit 0 ends with an event carrying Go's `cmd.Wait()` error, as envd's does: a non-zero
/// exit, or a kill.
#[tokio::test]
async fn an_end_event_carrying_an_error_is_the_extractors_failure_with_that_error() {
    let e2b = server().await;
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();

    let err = client.try_extract("killed.pdf", b"%PDF-1.4", &options()).await.unwrap_err();
    let end = e2b.with(|r| r.end_events.last().cloned()).unwrap();
    assert!(end.contains(r#""error":"signal: killed""#), "{end}");
    assert!(matches!(&err, E2bError::Extractor(m) if m.contains("killed (out of memory or time)")), "{err:?}");
    assert!(!err.is_transient());

    let err = client.try_extract("crash.pdf", b"%PDF-1.4", &options()).await.unwrap_err();
    let end = e2b.with(|r| r.end_events.last().cloned()).unwrap();
    assert!(end.contains(r#""error":"exit status 101""#), "{end}");
    assert!(matches!(&err, E2bError::Extractor(m) if m.contains("code 101 (exit status 101)")), "{err:?}");
    assert_eq!(e2b.deleted(), e2b.created());
}

/// E2B refuses (HTTP 400) a sandbox lifetime past the plan's; the config check stops such a `timeout_secs` before
/// it is ever sent, and a plan limit set higher than the real one gets a permanent error that names the key.
#[tokio::test]
async fn a_lifetime_past_the_plans_limit_is_refused_by_config_and_by_e2b() {
    let e2b = server().await;
    let mut cfg = e2b.config(KEY);
    cfg.timeout_secs = 3541;
    let err = E2bSandbox::new(&cfg).unwrap_err();
    assert!(matches!(err, E2bError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("sandbox.e2b.timeout_secs = 3541"), "{err}");
    assert!(e2b.with(|r| r.create_attempts) == 0);

    // Configured as a 2-hour plan, the account has a 1-hour one.
    cfg.max_sandbox_lifetime_secs = 7200;
    let client = E2bSandbox::new(&cfg).unwrap();
    let err = client.try_extract("a.xml", b"<x/>", &options()).await.unwrap_err();
    assert!(matches!(err, E2bError::Http { status: 400, .. }), "{err:?}");
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(text.contains("Timeout cannot be greater than 1 hours") && text.contains("3601 s lifetime"), "{text}");
    assert!(text.contains("max_sandbox_lifetime_secs"), "{text}");
    assert!(e2b.created().is_empty());
}

/// A 429 without `Retry-After` still waits (a second, the default) and tries again; when it persists, the error
/// is transient and says no delay was given.
#[tokio::test]
async fn a_rate_limit_without_retry_after_waits_the_default_and_retries() {
    let e2b = server().await;
    e2b.rate_limit_next(1, "");
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();
    let (name, bytes) = e2b_support::corpus_invoice();

    let t0 = Instant::now();
    let results = client.try_extract(&name, &bytes, &options()).await.unwrap();
    assert_eq!(results[0].invoice_number.as_deref(), Some("12115118"));
    assert!(t0.elapsed() >= Duration::from_millis(950), "waited {:?}", t0.elapsed());
    assert_eq!(e2b.with(|r| r.create_attempts), 2);

    e2b.rate_limit_next(100, "");
    let mut cfg = e2b.config(KEY);
    cfg.timeout_secs = 3;
    let client = E2bSandbox::new(&cfg).unwrap();
    let err = client.try_extract("a.xml", b"<x/>", &options()).await.unwrap_err();
    assert!(matches!(err, E2bError::RateLimited { retry_after: None, .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(e2b.created().len(), 1);
    assert_eq!(e2b.deleted(), e2b.created());
}

/// E2B's edge in front of envd answers 429 or 409 (no `Retry-After`): waited out like the API's 429, and
/// transient when it persists.
#[tokio::test]
async fn the_edges_409_and_429_on_envd_are_waited_out_and_transient() {
    let e2b = server().await;
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();
    let (name, bytes) = e2b_support::corpus_invoice();

    // The upload meets a 429, then the process start a 409: both retried after a second.
    e2b.edge_refuse_next(1, 429);
    let t0 = Instant::now();
    let results = client.try_extract(&name, &bytes, &options()).await.unwrap();
    assert_eq!(results[0].invoice_number.as_deref(), Some("12115118"));
    assert!(t0.elapsed() >= Duration::from_millis(950), "waited {:?}", t0.elapsed());
    e2b.edge_refuse_next(1, 409);
    client.try_extract(&name, &bytes, &options()).await.unwrap();
    assert_eq!(e2b.with(|r| r.edge_refusals), 2);

    e2b.edge_refuse_next(1000, 409);
    let err = client.try_extract(&name, &bytes, &options()).await.unwrap_err();
    assert!(matches!(err, E2bError::Edge { status: 409, retry_after: None, .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(e2b.deleted(), e2b.created());
}

#[tokio::test]
async fn a_cancelled_extraction_still_deletes_its_sandbox() {
    let e2b = server().await;
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();

    let opts = options();
    let run = client.try_extract("hang.xml", b"<x/>", &opts);
    assert!(tokio::time::timeout(Duration::from_millis(700), run).await.is_err(), "still running when dropped");

    // Wherever it was cut (creating, uploading or running), its sandbox is deleted.
    e2b.wait_until_created(1, Duration::from_secs(10)).await;
    let leaked = e2b.wait_until_all_deleted(Duration::from_secs(10)).await;
    assert!(leaked.is_empty(), "leaked: {leaked:?}");
    assert_eq!(e2b.created().len(), 1);
}

#[tokio::test]
async fn a_caller_giving_up_during_creation_still_gets_the_sandbox_deleted() {
    let e2b = server().await;
    e2b.delay_creations(Duration::from_millis(800));
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();

    let opts = options();
    let run = client.try_extract("a.xml", b"<x/>", &opts);
    assert!(tokio::time::timeout(Duration::from_millis(200), run).await.is_err(), "dropped while creating");
    assert!(e2b.deleted().is_empty(), "not answered yet, so nothing to delete yet");

    // The creation lands after its caller left; the sandbox is deleted all the same.
    e2b.wait_until_created(1, Duration::from_secs(10)).await;
    let leaked = e2b.wait_until_all_deleted(Duration::from_secs(10)).await;
    assert!(leaked.is_empty(), "leaked: {leaked:?}");
    assert_eq!(e2b.deleted(), e2b.created());
}

#[tokio::test]
async fn sandbox_creations_are_spaced_by_the_rate_limit() {
    let e2b = server().await;
    let mut cfg = e2b.config(KEY);
    cfg.creations_per_second = 2.0;
    cfg.max_concurrent = 4;
    let client = E2bSandbox::new(&cfg).unwrap();
    let (name, bytes) = e2b_support::corpus_invoice();

    let opts = options();
    let runs = (0..4).map(|_| client.try_extract(&name, &bytes, &opts));
    for r in futures::future::join_all(runs).await {
        assert_eq!(r.unwrap()[0].invoice_number.as_deref(), Some("12115118"));
    }
    let times = e2b.with(|r| r.create_times.clone());
    assert_eq!(times.len(), 4);
    // Two at once (one second's burst), then one every 500 ms.
    let span = times[3].duration_since(times[0]);
    assert!(span >= Duration::from_millis(900), "4 creations at 2/s took {span:?}");
    assert_eq!(e2b.deleted().len(), 4);
}

fn langs() -> Vec<String> {
    vec!["eng".into(), "spa".into()]
}

/// Everything `doctor` checks on E2B, in a complete template: all pass, the escape tests are marked not
/// applicable, and the sandbox is deleted and gone.
#[tokio::test]
async fn the_probe_checks_the_template_at_run_time_and_deletes_its_sandbox() {
    let e2b = server().await;
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();

    let probes = client.probe(&langs()).await;
    let find =
        |name: &str| probes.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no {name} in {probes:#?}"));

    let failed: Vec<_> = probes.iter().filter(|p| !p.ok).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let start = find("e2b sandbox start");
    assert!(start.detail.contains(TEMPLATE_ID) && start.detail.contains(" ms "), "latency and template: {start:?}");
    // Every tool read its sample inside the sandbox, in each language asked for.
    for tool in [
        "e2b extractor version",
        "pdftotext",
        "pdftoppm",
        "pdfinfo",
        "pdfdetach",
        "tesseract",
        "tesseract language eng",
        "tesseract language spa",
        "scanned PDF in spa",
        "no internet: tcp 1.1.1.1:443",
        "e2b sample document",
    ] {
        assert!(find(tool).applies, "{tool}");
    }
    assert!(find("tesseract language spa").detail.contains("FACTURA 4711"), "{probes:#?}");
    assert!(!find("jail escape tests").applies);
    assert!(probes.iter().all(|p| !p.name.starts_with("cannot read") && !p.name.contains("fresh /tmp")));
    assert!(find("e2b sandbox delete").detail.contains("404"), "{probes:#?}");
    let probe_run = e2b.with(|r| r.commands.iter().find(|c| c.args[0] == "sandbox-probe").cloned()).unwrap();
    assert!(probe_run.args.contains(&"--lang=spa".to_string()), "{:?}", probe_run.args);
    assert_eq!(e2b.created().len(), 1);
    assert_eq!(e2b.deleted(), e2b.created());
}

/// A template whose poppler cannot load its library, or that lacks the Spanish pack: the tools start, cannot
/// read, and the probe fails naming them.
#[tokio::test]
async fn the_probe_names_the_tool_a_broken_template_cannot_run() {
    let e2b = server().await;
    let (_libs, lib_path) = e2b_support::broken_poppler();
    e2b.template_env("LD_LIBRARY_PATH", &lib_path);
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();
    let probes = client.probe(&langs()).await;
    let failed: Vec<&str> = probes.iter().filter(|p| !p.ok).map(|p| p.name.as_str()).collect();
    for tool in ["pdfinfo", "pdftotext", "pdfdetach", "pdftoppm", "scanned PDF in eng"] {
        assert!(failed.contains(&tool), "{tool} not failed: {probes:#?}");
    }
    assert!(!failed.contains(&"tesseract language spa"), "{probes:#?}");
    let pdftotext = probes.iter().find(|p| p.name == "pdftotext").unwrap();
    assert!(pdftotext.detail.contains("starts but cannot read"), "{pdftotext:?}");
    assert_eq!(e2b.deleted(), e2b.created());

    let e2b = server().await;
    let (_tessdata, tessdata) = e2b_support::tessdata_without("spa");
    e2b.template_env("TESSDATA_PREFIX", &tessdata);
    let client = E2bSandbox::new(&e2b.config(KEY)).unwrap();
    let probes = client.probe(&langs()).await;
    let failed: Vec<&str> = probes.iter().filter(|p| !p.ok).map(|p| p.name.as_str()).collect();
    assert_eq!(failed, ["tesseract language spa", "scanned PDF in spa"], "{probes:#?}");
    assert_eq!(e2b.deleted(), e2b.created());
}

#[tokio::test]
async fn the_probe_reports_a_rejected_key_without_starting_anything() {
    let e2b = server().await;
    let client = E2bSandbox::new(&e2b.config("e2b_badbadbad")).unwrap();
    let probes = client.probe(&langs()).await;
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert!(!probes[0].ok && probes[0].detail.contains("E2B API key rejected"), "{probes:?}");
    assert!(e2b.created().is_empty());
}
