//! The extractor: bytes of one document in, schema JSON out. It runs inside the sandbox (see `sandbox`), so it
//! may call poppler and tesseract, but it never touches the network, the database or the mailbox.
//!
//! Order of preference: structured XML (attached, or embedded in a PDF), then the PDF text layer, then OCR.
//! The rules that read fields (`rules`, `text`, `einvoice`) are pure functions of text or XML.

pub mod breakdown;
pub mod einvoice;
pub mod kind;
pub mod memory;
pub mod model;
pub mod normalize;
pub mod ocr;
mod options;
pub mod pdf;
pub mod precheck;
pub mod probe;
pub mod qr;
pub mod rules;
pub mod text;
pub mod validate;

use sha2::{Digest, Sha256};
use std::path::Path;

pub use kind::{sniff, DocumentKind};
pub use model::{Check, DocumentType, ErrorCode, Extraction, Party, QrCode, Source, Status};
pub use options::{CompanyConfig, ExtractOptions, ForeignCustomer};

/// Below this many letters and digits a PDF's text layer is a scan's stray metadata, not its content.
const MIN_TEXT_CHARS: usize = 40;
/// Pages are rendered for OCR at the resolution tesseract is trained for.
const OCR_DPI: u32 = 300;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Read one document at `path`. `name` is the name the supplier gave it (used in results and as a type hint).
/// Runs inside the jail; `workdir` is its private scratch space. `readers` are poppler's tools when they were
/// started before the document came (`pdf::Readers`); else a PDF starts them.
pub fn extract_file(
    path: &Path,
    name: &str,
    opts: &ExtractOptions,
    workdir: &Path,
    readers: Option<pdf::Readers>,
) -> Vec<Extraction> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return vec![Extraction::failed(name, ErrorCode::Unreadable, format!("cannot read the file: {e}"))],
    };
    let mut results = extract_bytes(path, &bytes, name, opts, workdir, readers);
    let digest = sha256_hex(&bytes);
    for r in &mut results {
        r.file = name.to_string();
        r.sha256 = Some(digest.clone());
    }
    results
}

fn extract_bytes(
    path: &Path,
    bytes: &[u8],
    name: &str,
    opts: &ExtractOptions,
    workdir: &Path,
    readers: Option<pdf::Readers>,
) -> Vec<Extraction> {
    if bytes.is_empty() {
        return vec![Extraction::failed(name, ErrorCode::Unreadable, "the file is empty")];
    }
    let lower = name.to_lowercase();
    let kind = sniff(bytes).or_else(|| {
        if lower.ends_with(".pdf") {
            Some(DocumentKind::Pdf)
        } else if lower.ends_with(".xml") || lower.ends_with(".xsig") {
            Some(DocumentKind::Xml)
        } else {
            None
        }
    });
    match kind {
        Some(DocumentKind::Xml) => read_xml(name, bytes),
        Some(DocumentKind::Pdf) if !bytes.windows(5).take(1024).any(|w| w == b"%PDF-") => {
            vec![Extraction::failed(name, ErrorCode::Unreadable, describe_not_pdf(bytes))]
        }
        Some(DocumentKind::Pdf) => read_pdf(path, bytes, name, opts, workdir, readers),
        Some(DocumentKind::Png | DocumentKind::Jpeg | DocumentKind::Tiff) => {
            read_image(path, name, bytes, opts, workdir)
        }
        None => vec![Extraction::failed(name, ErrorCode::UnsupportedType, describe_not_pdf(bytes))],
    }
}

fn describe_not_pdf(bytes: &[u8]) -> String {
    if bytes.starts_with(b"PK\x03\x04") {
        "the file is a ZIP archive, not a PDF".into()
    } else if bytes.starts_with(b"\xD0\xCF\x11\xE0") {
        "the file is an old Microsoft Office document, not a PDF".into()
    } else {
        "the file is not a PDF, an image or an XML invoice".into()
    }
}

fn read_xml(name: &str, bytes: &[u8]) -> Vec<Extraction> {
    match einvoice::parse(name, bytes, &einvoice::XmlLimits::default()) {
        Ok(v) if !v.is_empty() => v,
        Ok(_) => vec![Extraction::failed(name, ErrorCode::NoInvoiceFound, "the XML holds no invoice")],
        Err(e) => vec![einvoice_error(name, &e)],
    }
}

pub(crate) fn einvoice_error(name: &str, e: &einvoice::EinvoiceError) -> Extraction {
    use einvoice::EinvoiceError as E;
    let code = match e {
        E::NotEinvoice { .. } => ErrorCode::NoInvoiceFound,
        E::Unsupported { .. } => ErrorCode::UnsupportedType,
        E::Invalid { .. } => ErrorCode::InvalidEinvoice,
        E::TooLarge(_) => ErrorCode::TooLarge,
    };
    Extraction::failed(name, code, e.to_string())
}

fn own_company(opts: &ExtractOptions) -> text::OwnCompany {
    text::OwnCompany { names: opts.own_names.clone(), tax_ids: opts.own_tax_ids.clone() }
}

fn read_pdf(
    path: &Path,
    bytes: &[u8],
    name: &str,
    opts: &ExtractOptions,
    workdir: &Path,
    readers: Option<pdf::Readers>,
) -> Vec<Extraction> {
    // pdftotext opens the file, counts the pages and reads the text layer in one run (see `pdf::TextRun`). It
    // is the slowest step, so everything else happens while it runs: pdfdetach saves the attachments (a
    // Factur-X PDF needs both), the rules compile their patterns, and an embedded XML is parsed.
    let attachments = !opts.no_embedded && pdf::may_have_attachments(bytes);
    let readers = match readers {
        Some(r) => Ok(r),
        None => pdf::Readers::start(workdir, opts.max_pages, attachments),
    };
    let (text, detach) = match readers.map(|r| r.read(bytes, attachments)) {
        Ok((text, detach)) => (Ok(text), detach),
        Err(e) => (Err(e), None),
    };
    // The embedded images that may be codes are written beside the text, not after it.
    let images = qr::decode::ImageRun::start(path, bytes, workdir, opts.max_pages);
    text::prepare();
    let structured = detach.and_then(|d| embedded_invoice(d.xml_files(), name));
    let layer = match text.and_then(pdf::TextRun::finish) {
        Ok(l) => l,
        Err((code, msg)) => return vec![Extraction::failed(name, code, msg)],
    };
    if layer.pages > opts.max_pages {
        let pages = pdf::info(path).map_or(layer.pages, |i| i.pages);
        return vec![Extraction::failed(
            name,
            ErrorCode::TooManyPages,
            format!("the PDF has {pages} pages; the limit is {}", opts.max_pages),
        )];
    }
    // Codes found on pages rendered for OCR (a scan has no text layer to announce them, nor a code image apart),
    // and the text OCR read there, which the codes are compared with.
    let mut scanned = Scanned::default();
    let mut results = match structured {
        Some(Ok(mut xml)) => {
            if let Some(first) = xml.first_mut() {
                cross_check(first, &layer.text, || read_pdf_visual(path, name, opts, &layer, workdir, &mut scanned));
            }
            xml
        }
        // The XML inside is broken, but the page may still be readable: say both.
        Some(Err(err)) => {
            let mut v = read_pdf_visual(path, name, opts, &layer, workdir, &mut scanned);
            if !v.is_ok() {
                return vec![err];
            }
            v.push_warning(format!(
                "the embedded e-invoice XML could not be used: {}",
                err.error.map(|e| e.message).unwrap_or_default()
            ));
            vec![v]
        }
        None => vec![read_pdf_visual(path, name, opts, &layer, workdir, &mut scanned)],
    };
    let pages: Vec<&str> = layer.text.split('\u{c}').take(layer.pages as usize).collect();
    let mut found = qr::decode::in_pdf(path, images, &pages, workdir);
    found.append(&mut scanned.codes);
    let printed = if scanned.text.is_empty() { &layer.text } else { &scanned.text };
    if let Some(first) = results.first_mut() {
        qr::merge::apply(first, &found, printed);
    }
    results
}

/// The first embedded XML that is an e-invoice we read; an error result when there is XML but it is bad.
fn embedded_invoice(files: Vec<(String, Vec<u8>)>, name: &str) -> Option<Result<Vec<Extraction>, Extraction>> {
    let mut first_error = None;
    for (xml_name, bytes) in files {
        match einvoice::parse(name, &bytes, &einvoice::XmlLimits::default()) {
            Ok(v) if !v.is_empty() => return Some(Ok(v)),
            Ok(_) | Err(einvoice::EinvoiceError::NotEinvoice { .. }) => {}
            Err(e) => {
                if first_error.is_none() {
                    let mut failed = einvoice_error(name, &e);
                    if let Some(err) = failed.error.as_mut() {
                        err.message = format!("{xml_name}: {}", err.message);
                    }
                    first_error = Some(failed);
                }
            }
        }
    }
    first_error.map(Err)
}

fn read_pdf_visual(
    path: &Path,
    name: &str,
    opts: &ExtractOptions,
    layer: &pdf::TextLayer,
    workdir: &Path,
    scanned: &mut Scanned,
) -> Extraction {
    if layer.text.chars().filter(|c| c.is_alphanumeric()).count() >= MIN_TEXT_CHARS {
        return read_text(name, &layer.text, Source::PdfText, opts);
    }
    let pages = layer.pages;
    let pages_dir = workdir.join("pages");
    if let Err(e) = std::fs::create_dir_all(&pages_dir) {
        return Extraction::failed(name, ErrorCode::SandboxFailure, e.to_string());
    }
    let langs = ocr::languages();
    let mut text = String::new();
    for page in 1..=pages {
        let image = match pdf::render_page(path, &pages_dir, OCR_DPI, page) {
            Ok(i) => i,
            Err((code, msg)) => return Extraction::failed(name, code, msg),
        };
        // The page's codes are read from the image rendered for OCR, beside tesseract.
        let (ocr, found) = std::thread::scope(|s| {
            let decoding = s.spawn(|| qr::decode::in_image_file(&image, page));
            let ocr = ocr::image_to_text(&image, &langs, Some(OCR_DPI), &pages_dir);
            (ocr, decoding.join().unwrap_or_default())
        });
        scanned.codes.extend(found);
        match ocr {
            Ok(t) => {
                text.push_str(&t);
                text.push('\u{c}');
            }
            Err((code, msg)) => return Extraction::failed(name, code, msg),
        }
        let _ = std::fs::remove_file(&image);
    }
    let e = read_text(name, &text, Source::Ocr, opts);
    scanned.text = text;
    e
}

/// What reading a PDF's pages by OCR found besides the fields: the codes on the rendered pages and the text.
#[derive(Default)]
struct Scanned {
    codes: Vec<qr::merge::Found>,
    text: String,
}

/// The rules on laid-out text, then what they leave to others: the supplier's remembered layout
/// (`memory`) and the VAT breakdown per rate (`breakdown`).
fn read_text(name: &str, text: &str, source: Source, opts: &ExtractOptions) -> Extraction {
    let mut e = text::read_invoice_text(name, text, source, &own_company(opts));
    if e.is_ok() {
        memory::apply(&mut e, text, &opts.hints);
        breakdown::fill(&mut e, text);
    }
    let learned = memory::learn_all(text, &opts.learn);
    if !learned.is_empty() {
        e.learned = Some(learned);
    }
    e
}

fn read_image(path: &Path, name: &str, bytes: &[u8], opts: &ExtractOptions, workdir: &Path) -> Vec<Extraction> {
    // Decompression bombs: judge the size from the header before any decoder allocates the pixels.
    match imagesize::blob_size(bytes) {
        Ok(size) => {
            let pixels = size.width as u64 * size.height as u64;
            if pixels > opts.max_image_pixels {
                return vec![Extraction::failed(
                    name,
                    ErrorCode::TooLarge,
                    format!(
                        "the image is {}×{} pixels; the limit is {} megapixels",
                        size.width,
                        size.height,
                        opts.max_image_pixels / 1_000_000
                    ),
                )];
            }
        }
        Err(_) => return vec![Extraction::failed(name, ErrorCode::Unreadable, "the image is damaged")],
    }
    let langs = ocr::languages();
    // The codes are read beside tesseract.
    let (ocr, found) = std::thread::scope(|s| {
        let decoding = s.spawn(|| qr::decode::in_image_file(path, 1));
        let ocr = ocr::image_to_text(path, &langs, None, workdir);
        (ocr, decoding.join().unwrap_or_default())
    });
    let (mut result, text) = match ocr {
        Ok(text) => (read_text(name, &text, Source::Ocr, opts), text),
        Err((code, msg)) => (Extraction::failed(name, code, msg), String::new()),
    };
    qr::merge::apply(&mut result, &found, &text);
    vec![result]
}

/// EN 16931 says the XML is the invoice; a PDF whose page says something else is an error or a fraud pattern.
/// Compare number, date and total with what the page shows, and record the result as `xml_matches_visual`.
///
/// A page whose text prints the XML's number, date and total agrees with it (`rules::shown`), and most do: that
/// lookup costs about a tenth of reading the page. Only when one of them is not found is the page read as any
/// PDF would be (`read_page`, OCR included for a scan) and its fields compared, so the warning can say what the
/// page shows instead.
fn cross_check(xml: &mut Extraction, text: &str, read_page: impl FnOnce() -> Extraction) {
    let number = xml.invoice_number.as_deref().map(|n| rules::shown::number(text, n));
    let date = xml.issue_date.map(|d| rules::shown::date(text, d));
    let total = xml.total_amount.map(|t| rules::shown::amount(text, t));
    let none_missing = ![number, date, total].contains(&Some(false));
    if none_missing && (number.is_some() || total.is_some()) {
        xml.push_check(Check::new("xml_matches_visual", true, None));
        return;
    }
    let visual = read_page();
    if !visual.is_ok() {
        return;
    }
    let mut differences = Vec::new();
    let norm = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_uppercase();
    if let (Some(a), Some(b)) = (&xml.invoice_number, &visual.invoice_number) {
        if norm(a) != norm(b) && !norm(b).ends_with(&norm(a)) {
            differences.push(format!("number {a} in the XML, {b} on the page"));
        }
    }
    if let (Some(a), Some(b)) = (xml.issue_date, visual.issue_date) {
        if a != b {
            differences.push(format!("date {a} in the XML, {b} on the page"));
        }
    }
    if let (Some(a), Some(b)) = (xml.total_amount, visual.total_amount) {
        if a != b {
            differences.push(format!("total {a} in the XML, {b} on the page"));
        }
    }
    let compared = xml.invoice_number.is_some() && visual.invoice_number.is_some()
        || xml.total_amount.is_some() && visual.total_amount.is_some();
    if !compared {
        return;
    }
    let ok = differences.is_empty();
    let detail = if ok { None } else { Some(differences.join("; ")) };
    if !ok {
        xml.push_warning(format!(
            "the embedded XML does not match the visible page: {}",
            detail.clone().unwrap_or_default()
        ));
    }
    xml.push_check(Check::new("xml_matches_visual", ok, detail));
}
