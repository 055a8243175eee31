//! Writes the documents of the QR benchmark (`scripts/bench-extract`): one invoice for each of the five kinds
//! of code the extractor reads, three ways each.
//!
//! Usage: `gen_qr OUT_DIR`
//!
//! - `OUT_DIR/image/KIND.pdf`: a text-layer PDF whose code is an embedded image (4 pixels a module);
//! - `OUT_DIR/vector/KIND.pdf`: the same with the code drawn as filled squares, so the page must be rendered;
//! - `OUT_DIR/scan/KIND.pdf`: the vector page scanned at 200 dpi to an image-only PDF (a JPEG page, slightly
//!   rotated): no text layer, so the page is read by OCR and its code from the same rendered image.

#[path = "../tests/common/pdf.rs"]
mod pdf;
#[path = "../tests/common/qr.rs"]
mod qr;

use anyhow::{bail, Result};
use pdf::{QrDrawing, ScanOptions};
use std::path::Path;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        bail!("usage: gen_qr OUT_DIR");
    };
    let scan = ScanOptions { dpi: 200, angle: 0.8, noise: 1, jpeg: Some(75), seed: 17, turn: 0 };
    for how in ["image", "vector", "scan"] {
        std::fs::create_dir_all(Path::new(out).join(how))?;
    }
    for c in qr::five_kinds() {
        let payloads = [c.payload.as_str()];
        let inv = &c.invoice;
        let file = format!("{}.pdf", c.name);
        std::fs::write(
            Path::new(out).join("image").join(&file),
            inv.render_pdf_with_qr(&payloads, &c.caption, QrDrawing::Image),
        )?;
        std::fs::write(
            Path::new(out).join("vector").join(&file),
            inv.render_pdf_with_qr(&payloads, &c.caption, QrDrawing::Vector),
        )?;
        std::fs::write(
            Path::new(out).join("scan").join(&file),
            inv.render_scan_with_qr(&payloads, &c.caption, &scan, true)?,
        )?;
    }
    Ok(())
}
