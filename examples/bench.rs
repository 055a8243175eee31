//! The benchmark behind `scripts/bench`: real servers, real worker process, measured from outside.
//!
//! `bench CONFIG BINARY throughput N KIND`: queue N mails of KIND (text | scan | einvoice), run
//!   `invoice-intake once` under GNU time, and report seconds, invoices per second, peak RSS and CPU-seconds.
//! `bench CONFIG BINARY latency N KIND`: start `invoice-intake run`, send N mails one at a time, and measure
//!   from SMTP acceptance to the reply being in the supplier's mailbox; report p50/p95/p99.

#[path = "../tests/common/pdf.rs"]
mod pdf;
#[path = "../tests/common/wire.rs"]
mod wire;

use anyhow::{bail, Context, Result};
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use pdf::SampleInvoice;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use invoice_intake::config::Config;

const SUPPLIER: &str = "supplier+bench@example.test";
const INTAKE: &str = "intake+bench@example.test";

fn document(kind: &str, i: usize) -> Result<(String, &'static str, Vec<u8>)> {
    let inv = SampleInvoice::basic(&format!("BENCH-{i:05}"));
    Ok(match kind {
        "text" => (format!("factura-{i}.pdf"), "application/pdf", inv.render_pdf()),
        "scan" => {
            let dir = tempfile::tempdir()?;
            std::fs::write(dir.path().join("in.pdf"), inv.render_pdf())?;
            let ok = Command::new("pdftoppm")
                .args(["-r", "200", "-png", "-singlefile", "-gray"])
                .arg(dir.path().join("in.pdf"))
                .arg(dir.path().join("page"))
                .status()?
                .success();
            anyhow::ensure!(ok, "pdftoppm failed");
            (format!("escaneo-{i}.png"), "image/png", std::fs::read(dir.path().join("page.png"))?)
        }
        "einvoice" => {
            let xml = std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/einvoice/facturae-vat-irpf.xml"
            ))?;
            let xml = xml.replace(
                "<InvoiceNumber>TEST01002F</InvoiceNumber>",
                &format!("<InvoiceNumber>BENCH{i:05}</InvoiceNumber>"),
            );
            (format!("factura-{i}.xml"), "application/xml", xml.into_bytes())
        }
        other => bail!("unknown kind {other}: text, scan or einvoice"),
    })
}

fn mail(i: usize, doc: &(String, &'static str, Vec<u8>)) -> Vec<u8> {
    format!(
        "From: <{SUPPLIER}>\r\nTo: {INTAKE}\r\nSubject: Factura {i}\r\nMessage-ID: <bench-{i}-{}@supplier.example.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Adjunto la factura.\r\n--b\r\nContent-Type: {}\r\nContent-Disposition: attachment; filename=\"{}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        std::process::id(),
        doc.1,
        doc.0,
        wire::base64_lines(&doc.2)
    )
    .into_bytes()
}

async fn count(cfg: &Config, user: &str, folder: &str) -> Result<u32> {
    let tcp = tokio::net::TcpStream::connect((cfg.imap.host.as_str(), cfg.imap.port)).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?;
    let mut s = client.login(user, "secret").await.map_err(|(e, _)| e)?;
    let n = match s.examine(folder).await {
        Ok(mb) => mb.exists,
        Err(_) => 0,
    };
    s.logout().await.ok();
    Ok(n)
}

async fn wait_count(cfg: &Config, user: &str, folder: &str, n: u32, limit: Duration) -> Result<Duration> {
    let started = Instant::now();
    while count(cfg, user, folder).await? < n {
        if started.elapsed() > limit {
            bail!("{user} {folder}: fewer than {n} messages after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(started.elapsed())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn throughput(cfg: &Config, config_path: &str, binary: &str, n: usize, kind: &str) -> Result<()> {
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp.host).port(cfg.smtp.port).build();
    let env = Envelope::new(Some(SUPPLIER.parse()?), vec![INTAKE.parse()?])?;
    let mut bytes = 0;
    for i in 0..n {
        let m = mail(i, &document(kind, i)?);
        bytes += m.len();
        smtp.send_raw(&env, &m).await?;
        if i % 10 == 9 {
            eprint!("\rqueued {}/{n}", i + 1);
        }
    }
    eprintln!();
    wait_count(cfg, "intake@example.test", "bench", n as u32, Duration::from_secs(120)).await?;
    println!("{n} {kind} mails ({:.1} MB) waiting in the inbox; running `invoice-intake once`", bytes as f64 / 1e6);
    let out = Command::new("/usr/bin/time")
        .args(["-f", "TIME %e %M %U %S"])
        .arg(binary)
        .args(["once", "--config", config_path])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .output()
        .context("GNU time (package `time`) runs the worker")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().rev().find(|l| l.starts_with("TIME ")).context("no timing line")?;
    let v: Vec<f64> = line[5..].split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    anyhow::ensure!(out.status.success(), "once failed: {stderr}");
    let (secs, rss_kb, user, sys) = (v[0], v[1], v[2], v[3]);
    let replies = wait_count(cfg, "supplier@example.test", "bench", n as u32, Duration::from_secs(60)).await.is_ok();
    println!("seconds            {secs:.2}");
    println!("invoices/second    {:.1}", n as f64 / secs);
    println!("worker peak RSS    {:.1} MiB (the worker process; each jail is a separate process)", rss_kb / 1024.0);
    println!("worker CPU-seconds {:.3} per invoice (user+sys of the worker and its jails)", (user + sys) / n as f64);
    println!("all replies there  {replies}");
    Ok(())
}

async fn latency(cfg: &Config, config_path: &str, binary: &str, n: usize, kind: &str) -> Result<()> {
    let mut worker = Command::new(binary)
        .args(["run", "--config", config_path])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting invoice-intake run")?;
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp.host).port(cfg.smtp.port).build();
    let env = Envelope::new(Some(SUPPLIER.parse()?), vec![INTAKE.parse()?])?;
    // Let the worker log in and settle into IDLE.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = count(cfg, "supplier@example.test", "bench").await?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let m = mail(100_000 + i, &document(kind, 100_000 + i)?);
        smtp.send_raw(&env, &m).await?;
        // The clock starts when OpenSMTPD has accepted the mail (250 after DATA).
        let waited =
            wait_count(cfg, "supplier@example.test", "bench", base + i as u32 + 1, Duration::from_secs(60)).await?;
        samples.push(waited.as_secs_f64() * 1000.0);
        eprint!("\r{}/{n}", i + 1);
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    let _ = Command::new("kill").args(["-TERM", &worker.id().to_string()]).status();
    let _ = worker.wait();
    samples.sort_by(|a, b| a.total_cmp(b));
    println!("mail accepted by SMTP → reply in the supplier's mailbox, {n} {kind} mails, worker idling in IDLE:");
    println!(
        "p50 {:.0} ms   p95 {:.0} ms   p99 {:.0} ms   max {:.0} ms",
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0.0)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(a.len() == 6, "usage: bench CONFIG BINARY throughput|latency N text|scan|einvoice");
    let cfg = Config::load(Path::new(&a[1]))?;
    let n: usize = a[4].parse().context("N")?;
    match a[3].as_str() {
        "throughput" => throughput(&cfg, &a[1], &a[2], n, &a[5]).await,
        "latency" => latency(&cfg, &a[1], &a[2], n, &a[5]).await,
        other => bail!("unknown mode {other}"),
    }
}
