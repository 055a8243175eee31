//! The extractor's own benchmark behind `scripts/bench-extract`: real documents through the real jail.
//!
//! `extract_bench jail LABEL RUNS FILE...`
//!   Every file through the bubblewrap jail, one document at a time, RUNS rounds, each arriving at an idle
//!   service: the p50/p95 wall time per document, from handing it over to its result, teardown included.
//!   Twice: with each jail started when its document comes (`standby = 0`), and as the service runs, with a
//!   jail started ahead and waiting. Then every file once more with as many jails at once as there are cores:
//!   documents per second and how busy the machine's cores were meanwhile.
//! `extract_bench xml LABEL RUNS FILE...`
//!   The e-invoice parser in this process, without the jail: the p50/p95 parse time per XML file.
//! `extract_bench qr LABEL RUNS FILE...`
//!   The search for QR codes in each PDF, in this process, without the jail: what it adds to a document's
//!   reading (on a PDF without a code: the look at its bytes and its text, no process started).
//!
//! Numbers, no assertions: this is a benchmark, not a test. Build `--bin invoice-intake` beside it first.

#[path = "support/measure.rs"]
mod measure;

use anyhow::{bail, Context, Result};
use invoice_intake::config::{CompanyConfig, SandboxConfig};
use invoice_intake::extract::einvoice::{self, XmlLimits};
use invoice_intake::sandbox::Sandbox;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, label, runs, files @ ..] = args.as_slice() else {
        bail!("usage: extract_bench jail|xml LABEL RUNS FILE...");
    };
    let runs: usize = runs.parse().context("RUNS must be a number")?;
    let files: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            let p = PathBuf::from(f);
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            Ok((name, std::fs::read(&p).with_context(|| format!("reading {f}"))?))
        })
        .collect::<Result<_>>()?;
    if files.is_empty() {
        bail!("no files given");
    }
    match mode.as_str() {
        "jail" => jail(label, runs, &files),
        "xml" => xml(label, runs, &files),
        "qr" => qr(label, runs, &files),
        other => bail!("unknown mode {other}: jail or xml"),
    }
}

fn jail(label: &str, runs: usize, files: &[(String, Vec<u8>)]) -> Result<()> {
    // The extractor is the service's own binary, beside this one's directory (target/release/examples/..).
    let exe = std::env::current_exe()?;
    let extractor = exe.parent().and_then(|d| d.parent()).context("no target dir")?.join("invoice-intake");
    let config = |standby: &str| -> Result<Sandbox> {
        let cfg: SandboxConfig =
            toml::from_str(&format!("extractor = {:?}\n{standby}", extractor.display().to_string()))?;
        Sandbox::new(&cfg, &CompanyConfig::default())
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let (on_demand, ahead) = (config("standby = 0")?, config("")?);
        for (how, sandbox, waits) in
            [("jail started on demand", &on_demand, false), ("jail started ahead", &ahead, true)]
        {
            sandbox.ensure_usable().await?;
            // One warm-up pass: the page cache holds the binaries afterwards, as it does on a running service.
            for (name, bytes) in files.iter().take(3) {
                sandbox.extract(name, bytes).await;
            }
            let mut times = Vec::new();
            let mut failed = 0;
            for _ in 0..runs {
                for (name, bytes) in files {
                    // Each invoice arrives at an idle service, as mail does: the last one's jail is gone and,
                    // started ahead, the next one waits.
                    for _ in 0..1000 {
                        if !waits || sandbox.standby_ready() > 0 {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let t = Instant::now();
                    let out = sandbox.extract(name, bytes).await;
                    times.push(t.elapsed());
                    failed += out.iter().filter(|e| !e.is_ok()).count();
                }
            }
            let (p50, p95) = percentiles(&times);
            println!(
                "{label}: one at a time, {how}, {} documents: p50 {p50:.0} ms, p95 {p95:.0} ms per document \
                 ({failed} not read)",
                times.len(),
            );
        }

        let before = measure::machine_ticks()?;
        let t = Instant::now();
        let sandbox = &ahead;
        let results: Vec<usize> = futures::future::join_all((0..cores).map(|k| async move {
            let mut n = 0;
            for (name, bytes) in files.iter().skip(k).step_by(cores) {
                sandbox.extract(name, bytes).await;
                n += 1;
            }
            n
        }))
        .await;
        let wall = t.elapsed();
        let after = measure::machine_ticks()?;
        let busy = (after.0 - before.0) / (after.1 - before.1).max(1.0);
        let n: usize = results.iter().sum();
        println!(
            "{label}: {cores} jails at once, {n} documents in {:.2} s: {:.1} documents/s, cores {:.0}% busy \
             (whole machine, /proc/stat)",
            wall.as_secs_f64(),
            n as f64 / wall.as_secs_f64(),
            100.0 * busy,
        );
        Ok(())
    })
}

fn xml(label: &str, runs: usize, files: &[(String, Vec<u8>)]) -> Result<()> {
    let limits = XmlLimits::default();
    let mut times = Vec::new();
    let mut failed = 0;
    for _ in 0..runs {
        for (name, bytes) in files {
            let t = Instant::now();
            let out = einvoice::parse(name, bytes, &limits);
            times.push(t.elapsed());
            failed += usize::from(out.is_err());
        }
    }
    let (p50, p95) = percentiles(&times);
    println!(
        "{label}: {} parses: p50 {p50:.2} ms, p95 {p95:.2} ms per XML file in process ({failed} not read)",
        times.len(),
    );
    Ok(())
}

fn qr(label: &str, runs: usize, files: &[(String, Vec<u8>)]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut times = Vec::new();
    let mut codes = 0;
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes)?;
        let text = std::process::Command::new("pdftotext").args(["-layout"]).arg(&path).arg("-").output()?.stdout;
        let text = String::from_utf8_lossy(&text).into_owned();
        let pages: Vec<&str> = text.split('\u{c}').filter(|p| !p.trim().is_empty()).collect();
        for _ in 0..runs {
            let t = Instant::now();
            let images = invoice_intake::extract::qr::decode::ImageRun::start(&path, bytes, dir.path(), 50);
            let found = invoice_intake::extract::qr::decode::in_pdf(&path, images, &pages, dir.path());
            times.push(t.elapsed());
            codes += found.len();
        }
    }
    let (p50, p95) = percentiles(&times);
    println!("{label}: {} searches: p50 {p50:.3} ms, p95 {p95:.3} ms per PDF in process ({codes} codes)", times.len());
    Ok(())
}

/// p50 and p95 of `times`, in milliseconds.
fn percentiles(times: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    (measure::percentile(&ms, 0.50), measure::percentile(&ms, 0.95))
}
