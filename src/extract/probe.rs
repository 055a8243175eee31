//! `doctor`'s and the template build's check of the tools, from where the extractor runs: each tool must read a
//! tiny document and give the expected answer. A tool that starts but cannot read (a poppler whose libraries
//! are gone, a language pack that is missing or broken) fails here, under its own name, instead of on the first
//! invoice.
//!
//! The documents are made here, so the check needs nothing beside the binary: a one-line text-layer PDF, the
//! same line as a PNG scan (embedded at build time), and an image-only PDF holding that scan. Every OCR check
//! is run once per language asked for.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

use super::{ocr, pdf};

/// The line every sample carries, and the words a reading must give back.
pub const SAMPLE_TEXT: &str = "FACTURA 4711 TOTAL 121,00";
const SAMPLE_WORDS: [&str; 4] = ["FACTURA", "4711", "TOTAL", "121,00"];
/// `SAMPLE_TEXT` rendered by pdftoppm at 150 dpi, 1 bit deep.
const SAMPLE_PNG: &[u8] = include_bytes!("probe-invoice.png");
/// The scan's resolution, so the image-only PDF has the size of the original page.
const SAMPLE_PNG_DPI: u32 = 150;

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Value {
    json!({ "name": name, "ok": ok, "detail": detail.into() })
}

/// Every check, in the order a reader needs the tools. `langs` are the OCR languages the config asks for;
/// `workdir` is scratch space (the jail's private /tmp).
pub fn tools(langs: &[String], workdir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let text_pdf = workdir.join("probe-text.pdf");
    let scan_pdf = workdir.join("probe-scan.pdf");
    let png = workdir.join("probe-scan.png");
    let written = std::fs::write(&text_pdf, text_pdf_bytes(SAMPLE_TEXT))
        .and_then(|_| std::fs::write(&png, SAMPLE_PNG))
        .and_then(|_| std::fs::write(&scan_pdf, scan_pdf_bytes()?));
    if let Err(e) = written {
        out.push(check("private /tmp", false, format!("cannot write the sample documents: {e}")));
        return out;
    }
    out.push(check("private /tmp", true, "writable"));

    out.push(match pdf::info(&text_pdf) {
        Ok(i) if i.pages == 1 => check("pdfinfo", true, "reads a PDF: 1 page"),
        Ok(i) => check("pdfinfo", false, format!("read {} pages in a 1-page PDF", i.pages)),
        Err((_, e)) => check("pdfinfo", false, cannot_read("pdfinfo", &e)),
    });
    out.push(match run("pdftotext", &["-layout".as_ref(), text_pdf.as_os_str(), "-".as_ref()]) {
        Ok(text) => words_check("pdftotext", "reads a text-layer PDF", &text),
        Err(e) => check("pdftotext", false, e),
    });
    out.push(match run("pdfdetach", &["-list".as_ref(), text_pdf.as_os_str()]) {
        Ok(t) if t.contains("0 embedded files") => check("pdfdetach", true, "lists a PDF's attachments: none"),
        Ok(t) => check("pdfdetach", false, format!("unexpected answer: {}", first_line(&t))),
        Err(e) => check("pdfdetach", false, e),
    });
    let page = match pdf::render_page(&scan_pdf, workdir, SAMPLE_PNG_DPI, 1) {
        Ok(p) => {
            out.push(check("pdftoppm", true, "renders an image-only PDF's page"));
            Some(p)
        }
        Err((_, e)) => {
            out.push(check("pdftoppm", false, cannot_read("pdftoppm", &e)));
            None
        }
    };
    out.push(match run("tesseract", &["--list-langs".as_ref()]) {
        Ok(t) => check("tesseract", true, format!("runs; languages: {}", listed_langs(&t).join(" "))),
        Err(e) => check("tesseract", false, e),
    });
    for lang in langs {
        let one = [lang.clone()];
        let name = format!("tesseract language {lang}");
        out.push(match ocr::image_to_text(&png, &one, None, workdir) {
            Ok(text) => words_check(&name, "reads a PNG scan", &text),
            Err((_, e)) => check(&name, false, format!("cannot read a PNG scan ({e}): install tesseract-ocr-{lang}")),
        });
        let name = format!("scanned PDF in {lang}");
        out.push(match &page {
            Some(page) => match ocr::image_to_text(page, &one, Some(SAMPLE_PNG_DPI), workdir) {
                Ok(text) => words_check(&name, "pdftoppm → tesseract reads an image-only PDF", &text),
                Err((_, e)) => check(&name, false, format!("tesseract cannot read the rendered page: {e}")),
            },
            None => check(&name, false, "not read: pdftoppm cannot render the page"),
        });
    }
    out
}

/// Pass when every sample word came back.
fn words_check(name: &str, what: &str, text: &str) -> Value {
    let found: Vec<&str> = text.split_whitespace().collect();
    let missing: Vec<&str> = SAMPLE_WORDS.iter().copied().filter(|w| !found.contains(w)).collect();
    if missing.is_empty() {
        check(name, true, format!("{what}: {SAMPLE_TEXT:?}"))
    } else {
        let got = found.join(" ");
        check(
            name,
            false,
            format!("starts but cannot read: expected {SAMPLE_TEXT:?}, got {got:?} (missing {missing:?})"),
        )
    }
}

/// Run a tool; its stdout when it exits 0, else why not (a tool that cannot load its libraries exits 127).
fn run(tool: &str, args: &[&std::ffi::OsStr]) -> Result<String, String> {
    match Command::new(tool).args(args).output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(cannot_read(tool, &format!("{}: {}", o.status, first_line(&String::from_utf8_lossy(&o.stderr))))),
        Err(e) => Err(format!("{tool} is missing ({e}): install poppler-utils and tesseract-ocr")),
    }
}

fn cannot_read(tool: &str, why: &str) -> String {
    format!("{tool} starts but cannot read ({why}): reinstall poppler-utils / tesseract-ocr and their libraries")
}

fn first_line(s: &str) -> String {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string()
}

fn listed_langs(s: &str) -> Vec<&str> {
    s.lines().skip(1).map(str::trim).filter(|l| !l.is_empty()).collect()
}

/// A one-page PDF whose text layer is `text` in Helvetica, a font every PDF reader has built in.
pub fn text_pdf_bytes(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 28 Tf 12 30 Td ({text}) Tj ET");
    let page = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 440 80] /Resources << /Font << /F1 4 0 R >> >> \
                /Contents 5 0 R >>";
    assemble(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        page.as_bytes().to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        stream("", content.as_bytes()),
    ])
}

/// A one-page PDF with no text at all: only the sample scan, as grey pixels, filling the page.
fn scan_pdf_bytes() -> std::io::Result<Vec<u8>> {
    let img = image::load_from_memory_with_format(SAMPLE_PNG, image::ImageFormat::Png)
        .map_err(std::io::Error::other)?
        .into_luma8();
    let (w, h) = img.dimensions();
    let points = |px: u32| px as f64 * 72.0 / SAMPLE_PNG_DPI as f64;
    let (pw, ph) = (points(w), points(h));
    let page = format!(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {pw:.2} {ph:.2}] /Resources << /XObject << /Im1 4 0 R >> >> \
         /Contents 5 0 R >>"
    );
    let image_dict =
        format!(" /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray /BitsPerComponent 8");
    Ok(assemble(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        page.into_bytes(),
        stream(&image_dict, img.as_raw()),
        stream("", format!("q {pw:.2} 0 0 {ph:.2} 0 0 cm /Im1 Do Q").as_bytes()),
    ]))
}

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut s = format!("<<{dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    s.extend_from_slice(data);
    s.extend_from_slice(b"\nendstream");
    s
}

/// Number the objects from 1 and write the cross-reference table a reader needs to find them.
fn assemble(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named<'a>(checks: &'a [Value], name: &str) -> &'a Value {
        checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name} in {checks:#?}"))
    }

    #[test]
    fn every_tool_reads_its_sample_in_every_language_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let langs = vec!["eng".to_string(), "spa".to_string()];
        let checks = tools(&langs, dir.path());
        let failed: Vec<&Value> = checks.iter().filter(|c| c["ok"] != true).collect();
        assert!(failed.is_empty(), "{failed:#?}");
        for name in ["pdfinfo", "pdftotext", "pdfdetach", "pdftoppm", "tesseract", "scanned PDF in spa"] {
            named(&checks, name);
        }
        assert!(named(&checks, "tesseract language spa")["detail"].as_str().unwrap().contains(SAMPLE_TEXT));
    }

    #[test]
    fn a_language_pack_that_is_not_there_fails_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let checks = tools(&["xxx".to_string()], dir.path());
        let lang = named(&checks, "tesseract language xxx");
        assert_eq!(lang["ok"], false, "{lang}");
        assert!(lang["detail"].as_str().unwrap().contains("tesseract-ocr-xxx"), "{lang}");
        assert_eq!(named(&checks, "scanned PDF in xxx")["ok"], false);
        assert_eq!(named(&checks, "pdftotext")["ok"], true);
    }
}
