//! The demo behind `scripts/demo`: a supplier emails six documents to the intake address of the local servers,
//! the worker runs once, and we print what the supplier and the accountants received and what Postgres holds.
//!
//! Usage: demo CONFIG SAMPLES_DIR   (scripts/demo writes both)

#[path = "../tests/common/pdf.rs"]
mod pdf;
#[path = "../tests/common/wire.rs"]
mod wire;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mail_parser::MessageParser;
use pdf::SampleInvoice;
use sqlx::Row;
use std::path::Path;
use std::time::{Duration, Instant};

use invoice_intake::config::Config;
use invoice_intake::pipeline::App;

const SUPPLIER: &str = "supplier+demo@example.test";
const FOLDER: &str = "demo";

fn mail(subject: &str, body: &str, attachments: &[(&str, &str, &[u8])]) -> Vec<u8> {
    use std::fmt::Write;
    let id = format!("{}.{}@supplier.example.test", subject.len(), Instant::now().elapsed().as_nanos());
    let mut s = format!(
        "From: Suministros Norte <{SUPPLIER}>\r\nTo: intake+demo@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{id}-{}>\r\nDate: Wed, 15 Oct 2025 10:00:00 +0200\r\nMIME-Version: 1.0\r\n",
        rand_suffix()
    );
    if attachments.is_empty() {
        let _ = write!(s, "Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n");
        return s.into_bytes();
    }
    let _ = write!(s, "Content-Type: multipart/mixed; boundary=\"demo\"\r\n\r\n--demo\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n");
    for (name, ctype, bytes) in attachments {
        let _ = write!(
            s,
            "--demo\r\nContent-Type: {ctype}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            wire::base64_lines(bytes)
        );
    }
    s.push_str("--demo--\r\n");
    s.into_bytes()
}

fn rand_suffix() -> u64 {
    use rand::Rng;
    rand::thread_rng().gen()
}

async fn folder(cfg: &Config, user: &str) -> Result<Vec<Vec<u8>>> {
    let tcp = tokio::net::TcpStream::connect((cfg.imap.host.as_str(), cfg.imap.port)).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?;
    let mut s = client.login(user, "secret").await.map_err(|(e, _)| e)?;
    let out = match s.examine(FOLDER).await {
        Ok(mb) if mb.exists > 0 => {
            let f: Vec<_> = s.fetch("1:*", "BODY.PEEK[]").await?.try_collect().await?;
            f.iter().filter_map(|m| m.body().map(<[u8]>::to_vec)).collect()
        }
        _ => Vec::new(),
    };
    s.logout().await.ok();
    Ok(out)
}

async fn wait_for(cfg: &Config, user: &str, n: usize) -> Result<Vec<Vec<u8>>> {
    let started = Instant::now();
    loop {
        let got = folder(cfg, user).await?;
        if got.len() >= n || started.elapsed() > Duration::from_secs(30) {
            return Ok(got);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn show(raw: &[u8]) {
    let m = MessageParser::default().parse(raw).expect("parsable");
    println!("  ┌ To: {}", m.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or(""));
    println!("  │ Subject: {}", m.subject().unwrap_or(""));
    for line in m.body_text(0).unwrap_or_default().lines() {
        println!("  │ {line}");
    }
    println!("  └");
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let config = Config::load(Path::new(args.get(1).context("usage: demo CONFIG SAMPLES_DIR")?))?;
    let samples = Path::new(args.get(2).context("usage: demo CONFIG SAMPLES_DIR")?);
    std::fs::create_dir_all(samples)?;

    let basic = SampleInvoice::basic("FN-2025-0042");
    let irpf = SampleInvoice::with_irpf("2025/117");
    let scanned = SampleInvoice::basic("ESC-7781");
    let basic_pdf = basic.render_pdf();
    let scan_pdf = scanned.render_pdf();
    std::fs::write(samples.join("scan.pdf"), &scan_pdf)?;
    let status = std::process::Command::new("pdftoppm")
        .args(["-r", "200", "-png", "-singlefile", "-gray"])
        .arg(samples.join("scan.pdf"))
        .arg(samples.join("scan"))
        .status()?;
    anyhow::ensure!(status.success(), "pdftoppm failed");
    let png = std::fs::read(samples.join("scan.png"))?;
    let facturae =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/einvoice/facturae-vat-irpf.xml"))?;
    let mut corrupt = basic_pdf.clone();
    corrupt.truncate(300);

    let mails = [
        mail(
            "Factura octubre",
            "Hola,\n\nadjunto la factura de octubre.\n\nUn saludo",
            &[("factura-FN-2025-0042.pdf", "application/pdf", &basic_pdf)],
        ),
        mail(
            "Factura asesoría",
            "Buenos días, les envío mi factura con retención de IRPF.",
            &[("factura-2025-117.pdf", "application/octet-stream", &irpf.render_pdf())],
        ),
        mail("Factura escaneada", "Hola, os mando la factura escaneada.", &[("escaneo.png", "image/png", &png)]),
        mail(
            "Invoice (Facturae)",
            "Hello,\n\nplease find our e-invoice attached.\n\nKind regards",
            &[("factura.xml", "application/xml", &facturae)],
        ),
        mail("Factura", "Hola, os envío la factura.", &[("factura.pdf", "application/pdf", &corrupt)]),
        mail("Pregunta", "Hola, ¿recibisteis la factura de septiembre?", &[]),
    ];
    let smtp =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.smtp.host).port(config.smtp.port).build();
    println!("== a supplier sends {} mails to intake+demo@example.test", mails.len());
    for m in &mails {
        let env = Envelope::new(Some(SUPPLIER.parse()?), vec!["intake+demo@example.test".parse()?])?;
        smtp.send_raw(&env, m).await.context("sending to the local OpenSMTPD")?;
    }
    let arrived = wait_for(&config, "intake@example.test", mails.len()).await?;
    println!("   {} delivered into the intake mailbox", arrived.len());

    println!("\n== the worker runs once");
    let started = Instant::now();
    let app = App::build(config.clone()).await?;
    let summary = app.run_once().await?;
    println!(
        "   fetched {}, handled {}, sent {} mails, moved {} messages, in {:.2}s",
        summary.fetched,
        summary.processed,
        summary.sent,
        summary.archived,
        started.elapsed().as_secs_f64()
    );

    println!("\n== what the supplier received");
    for raw in wait_for(&config, "supplier@example.test", mails.len()).await? {
        show(&raw);
    }
    println!("\n== what the accountants received");
    for raw in wait_for(&config, "accounts@example.test", 4).await? {
        show(&raw);
    }

    println!("\n== rows in Postgres (invoices)");
    let rows = sqlx::query(
        "SELECT id::text, coalesce(source, ''), coalesce(document_type, ''), coalesce(invoice_number, ''),
                coalesce(supplier_tax_id, ''), coalesce(issue_date::text, ''), coalesce(total_amount::text, ''),
                coalesce(amount_due::text, ''), coalesce(currency, '') FROM invoices ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await?;
    let header = ["id", "source", "type", "number", "supplier", "date", "total", "due", "cur"];
    let cells = |v: Vec<String>| {
        format!(
            "  {:<3} {:<9} {:<8} {:<13} {:<11} {:<10} {:>10} {:>10} {}",
            v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]
        )
    };
    println!("{}", cells(header.iter().map(|h| h.to_string()).collect()));
    for r in rows {
        println!("{}", cells((0..9).map(|i| r.get::<String, _>(i)).collect()));
    }
    println!("\n== messages");
    let states: Vec<(i64, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, state, subject, reason FROM messages ORDER BY id").fetch_all(&app.pool).await?;
    for (id, state, subject, reason) in states {
        println!("  #{id} {state:<10} {:<22} {}", subject.unwrap_or_default(), reason.unwrap_or_default());
    }
    Ok(())
}
