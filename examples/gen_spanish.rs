//! Writes a labelled set of generated Spanish invoices for `invoice-intake eval`.
//!
//! Usage: `gen_spanish OUT_DIR N SEED`
//!
//! - `OUT_DIR/text/X.pdf` + `X.pdf.expected.json`: N text-layer PDFs (`tests/common/pdf.rs` says what varies);
//! - `OUT_DIR/scans/X.scan.{png,jpg,pdf}` + `.expected.json`: a degraded scan of each (150–300 dpi, rotated up
//!   to 3°, grain and specks, PNG or JPEG; an image-only PDF when the invoice has several pages).
//!
//! The same N and SEED always give the same invoices (the scans' pixels depend on the poppler version that
//! renders them, their ground truth does not). Score with `invoice-intake eval OUT_DIR/text` and
//! `invoice-intake eval OUT_DIR/scans`.

#[path = "../tests/common/pdf.rs"]
mod pdf;

use anyhow::{bail, Context, Result};
use pdf::{SampleInvoice, ScanOptions};
use std::path::Path;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, n, seed] = args.as_slice() else {
        bail!("usage: gen_spanish OUT_DIR N SEED");
    };
    let n: usize = n.parse().context("N must be a number")?;
    let seed: u64 = seed.parse().context("SEED must be a number")?;
    let (text, scans) = (Path::new(out).join("text"), Path::new(out).join("scans"));
    std::fs::create_dir_all(&text)?;
    std::fs::create_dir_all(&scans)?;
    for i in 0..n {
        let inv = SampleInvoice::generate(seed, i);
        write_pair(&text, &format!("es-{seed}-{i:04}.pdf"), &inv.render_pdf(), &inv)?;
        let opts = ScanOptions::generate(seed.wrapping_mul(31).wrapping_add(i as u64));
        let scan = inv.render_scan(&opts).context("rendering a scan needs poppler's pdftoppm")?;
        let name = format!("es-{seed}-{i:04}.scan.{}", opts.extension(inv.page_count()));
        write_pair(&scans, &name, &scan, &inv)?;
    }
    println!("{n} invoices in {}, their scans in {}", text.display(), scans.display());
    Ok(())
}

fn write_pair(dir: &Path, name: &str, bytes: &[u8], inv: &SampleInvoice) -> Result<()> {
    std::fs::write(dir.join(name), bytes)?;
    let truth = serde_json::to_string_pretty(&inv.expected())?;
    std::fs::write(dir.join(format!("{name}.expected.json")), truth + "\n")?;
    Ok(())
}
