//! The benchmark behind `scripts/bench`: real servers, real worker process, measured from outside.
//!
//! `bench CONFIG BINARY throughput N KIND`: queue N mails of KIND (text | scan | einvoice), run
//!   `invoice-intake once` under GNU time, and report seconds, invoices per second, peak RSS and CPU-seconds.
//! `bench CONFIG BINARY latency N KIND`: start `invoice-intake run`, send N mails one at a time, and measure
//!   from SMTP acceptance to the reply being in the supplier's mailbox; report p50/p95/p99.
//! `bench CONFIG BINARY flood N KIND`: start `invoice-intake run`, let it settle, put N mails into the inbox at once
//!   (IMAP APPEND over one session), and measure until the N-th reply is in the supplier's mailbox: throughput,
//!   CPU-seconds per invoice (the worker's own, and the whole machine's) and the worker's peak RSS; then the same files through
//!   the bare tool (`pdftotext -layout` one at a time, or `tesseract` on every core) for the ratio.
//! `bench CONFIG BINARY sandbox N KIND`: spawn and tear down the jail around a no-op (the extractor's
//!   `--version`) N times; report p50/p95.
//!
//! Mail goes to `intake+TAG`, where TAG is the config's `imap.mailbox`, so runs never share folders.

#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/common/pdf.rs"]
mod pdf;
#[path = "../tests/common/wire.rs"]
mod wire;

use anyhow::{bail, Context, Result};
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use measure::percentile;
use pdf::SampleInvoice;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use invoice_intake::config::Config;

/// The addresses of a run, all `+TAG` (Dovecot delivers `user+TAG` into the folder TAG).
struct Who {
    tag: String,
    supplier: String,
    intake: String,
}

impl Who {
    fn of(cfg: &Config) -> Who {
        let tag = cfg.imap.mailbox.clone();
        Who { supplier: format!("supplier+{tag}@example.test"), intake: format!("intake+{tag}@example.test"), tag }
    }
}

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

fn mail(who: &Who, i: usize, doc: &(String, &'static str, Vec<u8>)) -> Vec<u8> {
    format!(
        "From: <{}>\r\nTo: {}\r\nSubject: Factura {i}\r\nMessage-ID: <bench-{i}-{}@supplier.example.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Adjunto la factura.\r\n--b\r\nContent-Type: {}\r\nContent-Disposition: attachment; filename=\"{}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        who.supplier,
        who.intake,
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

/// One IMAP session watching a folder with NOOP, as a mail client does: a new login per look would cost more
/// than what is measured (several milliseconds each under load).
struct Watch {
    session: async_imap::Session<tokio::net::TcpStream>,
    exists: u32,
}

impl Watch {
    async fn open(cfg: &Config, user: &str, folder: &str) -> Result<Watch> {
        let tcp = tokio::net::TcpStream::connect((cfg.imap.host.as_str(), cfg.imap.port)).await?;
        tcp.set_nodelay(true)?;
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await?;
        let mut session = client.login(user, "secret").await.map_err(|(e, _)| e)?;
        let _ = session.create(folder).await;
        let exists = session.examine(folder).await?.exists;
        Ok(Watch { session, exists })
    }

    /// Wait until the folder holds `n` messages; how long that took.
    async fn wait_for(&mut self, n: u32, limit: Duration) -> Result<Duration> {
        use async_imap::types::UnsolicitedResponse;
        let started = Instant::now();
        loop {
            while let Ok(r) = self.session.unsolicited_responses.try_recv() {
                if let UnsolicitedResponse::Exists(e) = r {
                    self.exists = e;
                }
            }
            if self.exists >= n {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                bail!("fewer than {n} messages after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.session.noop().await?;
        }
    }
}

async fn throughput(cfg: &Config, config_path: &str, binary: &str, n: usize, kind: &str) -> Result<()> {
    let who = Who::of(cfg);
    let env = Envelope::new(Some(who.supplier.parse()?), vec![who.intake.parse()?])?;
    let mut bytes = 0;
    let mut smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp.host).port(cfg.smtp.port).build();
    for i in 0..n {
        if i % 50 == 49 {
            // OpenSMTPD takes at most 100 mails per session (452 after that): a new pooled connection now and then.
            smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp.host).port(cfg.smtp.port).build();
        }
        let m = mail(&who, i, &document(kind, i)?);
        bytes += m.len();
        smtp.send_raw(&env, &m).await?;
        if i % 10 == 9 {
            eprint!("\rqueued {}/{n}", i + 1);
        }
    }
    eprintln!();
    wait_count(cfg, "intake@example.test", &who.tag, n as u32, Duration::from_secs(120)).await?;
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
    let replies = wait_count(cfg, "supplier@example.test", &who.tag, n as u32, Duration::from_secs(60)).await.is_ok();
    println!("seconds            {secs:.2}");
    println!("invoices/second    {:.1}", n as f64 / secs);
    println!("peak RSS           {:.1} MiB (GNU time: the largest of the worker and its jails)", rss_kb / 1024.0);
    println!(
        "CPU-seconds        {:.3} per invoice (GNU time: user+sys of the worker and the children it waited for)",
        (user + sys) / n as f64
    );
    println!("all replies there  {replies}");
    Ok(())
}

/// `invoice-intake run` as a child, with its log discarded.
fn start_worker(binary: &str, config_path: &str) -> Result<std::process::Child> {
    Command::new(binary)
        .args(["run", "--config", config_path])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting invoice-intake run")
}

fn stop_worker(mut worker: std::process::Child) {
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(worker.id() as i32, libc::SIGTERM);
    }
    let _ = worker.wait();
}

/// CPU-seconds of `pid` and of its children it has waited for (its jails), from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3; utime is field 14.
    let rest = stat.rsplit_once(')').context("/proc stat")?.1;
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((f[11] + f[12] + f[13] + f[14]) / ticks)
}

/// Busy CPU-seconds of the whole machine since boot (every process: worker, jails, mail servers, Postgres).
fn machine_cpu_seconds() -> Result<f64> {
    let (busy, _) = measure::machine_ticks()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(busy / ticks)
}

/// The worker process's own peak RSS (VmHWM), in MiB: the jails are other processes.
fn peak_rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmHWM")?;
    Ok(kb / 1024.0)
}

async fn latency(cfg: &Config, config_path: &str, binary: &str, n: usize, kind: &str) -> Result<()> {
    let who = Who::of(cfg);
    // The folder exists before the worker looks (a missing one would put it into reconnect backoff).
    append_all(cfg, "intake@example.test", &who.tag, &[]).await?;
    let worker = start_worker(binary, config_path)?;
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp.host).port(cfg.smtp.port).build();
    let env = Envelope::new(Some(who.supplier.parse()?), vec![who.intake.parse()?])?;
    // Let the worker log in and settle into IDLE.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut watch = Watch::open(cfg, "supplier@example.test", &who.tag).await?;
    let base = watch.exists;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let m = mail(&who, 100_000 + i, &document(kind, 100_000 + i)?);
        smtp.send_raw(&env, &m).await?;
        // The clock starts when OpenSMTPD has accepted the mail (250 after DATA).
        let waited = watch.wait_for(base + i as u32 + 1, Duration::from_secs(60)).await?;
        samples.push(waited.as_secs_f64() * 1000.0);
        eprint!("\r{}/{n}", i + 1);
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    let inside = where_time_went(cfg).await;
    stop_worker(worker);
    samples.sort_by(|a, b| a.total_cmp(b));
    let how = match cfg.imap.fast_poll_ms {
        Some(ms) if ms > 0 => format!("imap.fast_poll_ms = {ms}"),
        _ => "IDLE".to_string(),
    };
    println!("mail accepted by SMTP → reply in the supplier's mailbox, {n} {kind} mails one at a time, {how}:");
    println!(
        "p50 {:.0} ms   p95 {:.0} ms   p99 {:.0} ms   max {:.0} ms",
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0.0)
    );
    if let Some(inside) = inside {
        println!("{inside}");
    }
    Ok(())
}

/// Put `raws` into `user`'s folder with IMAP APPEND over one session (creating the folder).
async fn append_all(cfg: &Config, user: &str, folder: &str, raws: &[Vec<u8>]) -> Result<()> {
    let tcp = tokio::net::TcpStream::connect((cfg.imap.host.as_str(), cfg.imap.port)).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?;
    let mut s = client.login(user, "secret").await.map_err(|(e, _)| e)?;
    let _ = s.create(folder).await;
    for raw in raws {
        s.append(folder, None, None, raw).await.context("IMAP APPEND")?;
    }
    s.logout().await.ok();
    Ok(())
}

async fn flood(cfg: &Config, config_path: &str, binary: &str, n: usize, kind: &str) -> Result<()> {
    let who = Who::of(cfg);
    let docs: Vec<_> = (0..n).map(|i| document(kind, 200_000 + i)).collect::<Result<_>>()?;
    let raws: Vec<Vec<u8>> = docs.iter().enumerate().map(|(i, d)| mail(&who, 200_000 + i, d)).collect();
    append_all(cfg, "intake@example.test", &who.tag, &[]).await?;
    let worker = start_worker(binary, config_path)?;
    let pid = worker.id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut watch = Watch::open(cfg, "supplier@example.test", &who.tag).await?;
    let base = watch.exists;
    let cpu_before = cpu_seconds(pid)?;
    let machine_before = machine_cpu_seconds()?;
    let started = Instant::now();
    append_all(cfg, "intake@example.test", &who.tag, &raws).await?;
    let appended = started.elapsed();
    for got in 1..=n as u32 {
        watch.wait_for(base + got, Duration::from_secs(600)).await?;
        if got % 10 == 0 {
            eprint!("\rreplies {got}/{n}");
            let _ = std::io::stderr().flush();
        }
    }
    eprintln!();
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)? - cpu_before;
    let machine = machine_cpu_seconds()? - machine_before;
    let rss = peak_rss_mib(pid)?;
    let inside = where_time_went(cfg).await;
    stop_worker(worker);
    println!(
        "{n} {kind} mails put into the inbox at once ({:.2} s of APPEND), one `invoice-intake run`:",
        appended.as_secs_f64()
    );
    println!("seconds            {secs:.2} (first APPEND → last reply in the supplier's mailbox)");
    println!("invoices/second    {:.1}", n as f64 / secs);
    println!("pipeline time      {:.1} ms per invoice", secs * 1000.0 / n as f64);
    println!(
        "CPU-seconds        {:.4} per invoice, the worker process (jails run as other uids in their own pid namespace and do not show here)",
        cpu / n as f64
    );
    println!(
        "CPU-seconds        {:.4} per invoice, the whole machine (worker, jails, Dovecot, OpenSMTPD, Postgres, this bench)",
        machine / n as f64
    );
    println!("worker peak RSS    {rss:.1} MiB (VmHWM of the worker process; each jail is a separate process)");
    if let Some(inside) = inside {
        println!("{inside}");
    }
    baseline(&docs, kind, secs / n as f64)?;
    Ok(())
}

/// The worker's own view from its `/metrics` (when `[metrics] listen` is set): mean time in the jail per document
/// and from fetch to committed outcome per message, to tell the extractor's share from the mail servers'.
async fn where_time_went(cfg: &Config) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = cfg.metrics.listen?;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    tcp.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.ok()?;
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.ok()?;
    let value = |name: &str| -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.split_whitespace().next()?.parse().ok())
    };
    let mean = |h: &str| Some(value(&format!("{h}_sum"))? / value(&format!("{h}_count"))?.max(1.0) * 1000.0);
    Some(format!(
        "inside the worker  {:.1} ms per document in the jail (mean), {:.1} ms per message from fetch to committed outcome",
        mean("invoice_intake_sandbox_seconds")?,
        mean("invoice_intake_message_seconds")?
    ))
}

/// The same documents through the bare tool, outside any jail and pipeline.
fn baseline(docs: &[(String, &'static str, Vec<u8>)], kind: &str, pipeline_per_doc: f64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let paths: Vec<_> = docs
        .iter()
        .map(|d| {
            let p = dir.path().join(&d.0);
            std::fs::write(&p, &d.2).map(|_| p)
        })
        .collect::<std::io::Result<_>>()?;
    match kind {
        "text" => {
            let started = Instant::now();
            for p in &paths {
                let ok = Command::new("pdftotext").arg("-layout").arg(p).arg("-").stdout(Stdio::null()).status()?;
                anyhow::ensure!(ok.success(), "pdftotext failed");
            }
            let bare = started.elapsed().as_secs_f64() / paths.len() as f64;
            println!("bare pdftotext     {:.1} ms per file (`pdftotext -layout`, one at a time)", bare * 1000.0);
            println!(
                "ratio              {:.1}× (pipeline time per invoice / bare pdftotext per file)",
                pipeline_per_doc / bare
            );
        }
        "scan" => {
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            let started = Instant::now();
            for chunk in paths.chunks(cores) {
                let children: Vec<_> = chunk
                    .iter()
                    .map(|p| {
                        Command::new("tesseract")
                            .arg(p)
                            .arg("-")
                            .args(["-l", "spa+eng"])
                            .env("OMP_THREAD_LIMIT", "1")
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .spawn()
                    })
                    .collect::<std::io::Result<_>>()?;
                for mut c in children {
                    c.wait()?;
                }
            }
            let bare_rate = paths.len() as f64 / started.elapsed().as_secs_f64();
            let pipeline_rate = 1.0 / pipeline_per_doc;
            println!("bare tesseract     {bare_rate:.2} pages/s ({cores} at a time, one thread each)");
            println!(
                "ratio              {:.0}% (pipeline throughput / bare tesseract throughput)",
                100.0 * pipeline_rate / bare_rate
            );
        }
        _ => println!("(no bare-tool baseline for {kind})"),
    }
    Ok(())
}

async fn sandbox_overhead(cfg: &Config, n: usize) -> Result<()> {
    let sandbox = invoice_intake::sandbox::Sandbox::new(&cfg.sandbox, &cfg.company)?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let out = sandbox.run_raw(&["--version".to_string()]).await?;
        anyhow::ensure!(out.status.success(), "the jail failed: {}", String::from_utf8_lossy(&out.stderr));
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    println!(
        "jail spawn + teardown around a no-op (the extractor's --version), {n} runs: p50 {:.1} ms   p95 {:.1} ms",
        percentile(&samples, 0.5),
        percentile(&samples, 0.95)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(a.len() == 6, "usage: bench CONFIG BINARY throughput|latency|flood|sandbox N text|scan|einvoice");
    let cfg = Config::load(Path::new(&a[1]))?;
    let n: usize = a[4].parse().context("N")?;
    match a[3].as_str() {
        "throughput" => throughput(&cfg, &a[1], &a[2], n, &a[5]).await,
        "latency" => latency(&cfg, &a[1], &a[2], n, &a[5]).await,
        "flood" => flood(&cfg, &a[1], &a[2], n, &a[5]).await,
        "sandbox" => sandbox_overhead(&cfg, n).await,
        other => bail!("unknown mode {other}"),
    }
}
