//! The jail, proved from the inside: the real extractor binary, in the real bubblewrap jail, tries to escape
//! and to exhaust the machine; every attempt must fail, and the worker must carry on reading invoices.

use crate::common;

use common::pdf::SampleInvoice;
use invoice_intake::config::{CompanyConfig, SandboxConfig};
use invoice_intake::extract::ErrorCode;
use invoice_intake::sandbox::Sandbox;

fn sandbox(timeout_secs: u64, memory_mb: u64) -> Sandbox {
    let cfg: SandboxConfig = toml::from_str(&format!(
        "extractor = {:?}\ntimeout_secs = {timeout_secs}\nmemory_mb = {memory_mb}\ncpu_secs = {timeout_secs}",
        env!("CARGO_BIN_EXE_invoice-intake")
    ))
    .unwrap();
    Sandbox::new(&cfg, &CompanyConfig::default()).unwrap()
}

#[tokio::test]
async fn from_inside_the_jail_the_network_our_secrets_and_the_disk_are_out_of_reach() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[imap]\npassword = \"hunter2\"\n").unwrap();
    let secrets = [config.path().display().to_string(), "/var/run/postgresql/.s.PGSQL.5432".to_string()];
    let probes = sandbox(30, 1024).probe(&secrets).await;
    let names: Vec<&str> = probes.iter().map(|p| p.name.as_str()).collect();
    for expected in [
        "no network: tcp 127.0.0.1:5432",
        "no network: tcp 1.1.1.1:443",
        "no network: udp socket",
        "cannot read /etc/shadow",
        "cannot read /var/run/postgresql/.s.PGSQL.5432",
        "cannot write /escape",
        "cannot write /usr/escape",
        "a fresh /tmp, empty",
        "the document arrives on stdin",
        "private /tmp is writable",
        "tesseract language spa",
        "scanned PDF in spa",
        "pdftotext",
    ] {
        assert!(names.contains(&expected), "missing check {expected}: {names:?}");
    }
    assert!(names
        .iter()
        .any(|n| n.starts_with("cannot read /") && n.contains(config.path().file_name().unwrap().to_str().unwrap())));
    let failed: Vec<String> = probes.iter().filter(|p| !p.ok).map(|p| format!("{}: {}", p.name, p.detail)).collect();
    assert!(failed.is_empty(), "the jail leaks: {failed:#?}");
}

async fn bomb(sb: &Sandbox, kind: &str) -> anyhow::Result<std::process::Output> {
    sb.run_raw(&["sandbox-bomb".to_string(), kind.to_string()]).await
}

#[tokio::test]
async fn a_fork_bomb_a_memory_bomb_and_an_endless_loop_are_stopped_and_the_worker_carries_on() {
    let sb = sandbox(5, 512);
    let started = std::time::Instant::now();
    // Fork bomb: the process limit stops the forks, the wall clock stops the jail.
    let fork = bomb(&sb, "fork").await;
    assert!(fork.is_err() || !fork.as_ref().unwrap().status.success(), "{fork:?}");
    // Memory bomb: the address-space limit makes the allocation fail and the extractor abort.
    let memory = bomb(&sb, "memory").await.expect("the memory bomb ends by itself");
    assert!(!memory.status.success());
    // Endless loop: stopped by the CPU-time limit (SIGXCPU) or, failing that, killed at the wall-clock limit.
    match bomb(&sb, "loop").await {
        Err(e) => assert!(e.to_string().contains("timed out"), "{e}"),
        Ok(out) => assert!(!out.status.success(), "the endless loop ended by itself? {out:?}"),
    }
    assert!(started.elapsed().as_secs() < 30, "each bomb is stopped within its limits");

    // The machine and the worker are unharmed: a real invoice is read right after.
    let results = sb.extract("factura.pdf", &SampleInvoice::basic("AFTER-1").render_pdf()).await;
    assert_eq!(results[0].invoice_number.as_deref(), Some("AFTER-1"), "{results:?}");
    let fresh = std::process::Command::new("true").status().expect("the host can still start processes");
    assert!(fresh.success());
}

#[tokio::test]
async fn a_document_that_hangs_the_reader_is_reported_as_a_timeout() {
    // A real worst case: OCR of a big blank scan with a one-second budget.
    let sb = sandbox(1, 1024);
    let big = common::render_png(&SampleInvoice::basic("SLOW-1").render_pdf(), 600);
    let results = sb.extract("slow.png", &big).await;
    let code = results[0].error.as_ref().map(|e| e.code);
    assert_eq!(code, Some(ErrorCode::Timeout), "{results:?}");
}

/// The jails of this test process whose command line holds `mark`: the tests of this file run at once, and
/// each must touch only its own.
fn our_jails(mark: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        // pid (comm) state ppid …; comm may hold spaces, so split after its closing parenthesis.
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let ppid = rest.split_whitespace().nth(1).unwrap_or("");
        let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if head.ends_with("(bwrap") && ppid == me && args.contains(mark) {
            pids.push(head.split_whitespace().next().unwrap().parse().unwrap());
        }
    }
    pids
}

#[tokio::test]
async fn a_standby_jail_that_died_while_waiting_never_takes_a_document() {
    // An unusual page limit marks this test's jails on their command line.
    let cfg: SandboxConfig =
        toml::from_str(&format!("extractor = {:?}\nmax_pages = 47", env!("CARGO_BIN_EXE_invoice-intake"))).unwrap();
    let sb = Sandbox::new(&cfg, &CompanyConfig::default()).unwrap();
    let first = sb.extract("factura.pdf", &SampleInvoice::basic("STANDBY-1").render_pdf()).await;
    assert_eq!(first[0].invoice_number.as_deref(), Some("STANDBY-1"), "{first:?}");
    // The jails started for the next documents, waiting. Kill them from outside, as an OOM killer or an
    // operator's kill might.
    let mut waiting = Vec::new();
    for _ in 0..500 {
        waiting = our_jails("--max-pages=47");
        if !waiting.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!waiting.is_empty(), "no jail was started ahead for the next document");
    for pid in &waiting {
        // SAFETY: plain kill of our own child.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    // Dead, not dying: a zombie or gone. (A jail killed in the very moment of its handover is the other guard's
    // case: the document then meets a closed pipe.)
    let dead = |pid: &i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
    };
    for _ in 0..500 {
        if waiting.iter().all(dead) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(waiting.iter().all(dead), "the killed jails did not die");
    // Every following document is still read, in a jail that is alive.
    for n in 2..=4 {
        let number = format!("STANDBY-{n}");
        let results = sb.extract("factura.pdf", &SampleInvoice::basic(&number).render_pdf()).await;
        assert_eq!(results[0].invoice_number.as_deref(), Some(number.as_str()), "{results:?}");
        assert!(results[0].is_ok(), "{results:?}");
    }
}
