//! Finding and decoding the codes: in an image directly; in a PDF first in its embedded images (`pdfimages`),
//! and only when the code is drawn as vector graphics, in the page rendered at the lowest resolution that
//! decodes.
//!
//! The decoder is `rxing`, a port of ZXing. On the QR corpus (18 bare codes, 28 rendered Swiss payment parts)
//! both it and `rqrr` read every bare code, but rendered pages at 72 dpi `rxing` read 27 of 28 and `rqrr` 4,
//! at 100 dpi 28 and 19; and `rxing` took a third to a tenth of `rqrr`'s time on the same image (1–20 ms a bare
//! code against 30–100 ms). The low resolution is what keeps a rendered page within its time.
//!
//! Everything here runs inside the jail, like every other reading of the document.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use super::merge::Found;

/// A code's finder patterns need about three pixels per module; bare codes and payment parts have far more.
/// Resolutions tried for a page drawn in vector graphics, lowest first (see the module comment).
const RENDER_DPI: [u32; 3] = [72, 100, 150];
/// The smallest code is 21 modules; an image smaller than this is no code.
const MIN_SIDE: u32 = 21;
/// Codes are square; an image much wider than tall is a logo or a photo.
const MAX_ASPECT: f32 = 1.25;

/// Every QR code the decoder reads in a grey image.
pub fn in_luma(img: &image::GrayImage) -> Vec<String> {
    let mut hints = rxing::DecodeHints::default()
        .with(rxing::DecodeHintValue::TryHarder(true))
        .with(rxing::DecodeHintValue::AlsoInverted(true))
        .with(rxing::DecodeHintValue::PossibleFormats(HashSet::from([rxing::BarcodeFormat::QR_CODE])));
    let found =
        rxing::helpers::detect_multiple_in_luma_with_hints(img.as_raw().clone(), img.width(), img.height(), &mut hints);
    found.map(|v| v.into_iter().map(|r| r.getText().to_string()).collect()).unwrap_or_default()
}

/// An image, with a white margin around it: an embedded code is often cut at its edge, without the quiet zone
/// the finder needs, and a small one is scaled up so each module has a few pixels.
fn padded(img: image::GrayImage) -> image::GrayImage {
    let scale = (200 / img.width().max(img.height()).max(1)).clamp(1, 8);
    let img = if scale > 1 {
        image::imageops::resize(&img, img.width() * scale, img.height() * scale, image::imageops::FilterType::Nearest)
    } else {
        img
    };
    let margin = img.width().max(img.height()) / 8 + 8;
    let mut out = image::GrayImage::from_pixel(img.width() + 2 * margin, img.height() + 2 * margin, image::Luma([255]));
    image::imageops::replace(&mut out, &img, margin as i64, margin as i64);
    out
}

/// The codes in one image file (an invoice sent as a picture, or a page already rendered for OCR).
pub fn in_image_file(path: &Path, page: u32) -> Vec<Found> {
    // By content, not by name: in the jail the document is a file called `document`.
    let img = image::ImageReader::open(path).and_then(|r| r.with_guessed_format()).map(|r| r.decode());
    match img {
        Ok(Ok(img)) => in_luma(&img.to_luma8()).into_iter().map(|payload| Found { page, payload }).collect(),
        _ => Vec::new(),
    }
}

/// The codes in an image file that `pdfimages` wrote (its name tells the format).
fn in_named_image_file(path: &Path, page: u32) -> Vec<Found> {
    match image::open(path) {
        Ok(img) => in_luma(&img.to_luma8()).into_iter().map(|payload| Found { page, payload }).collect(),
        Err(_) => Vec::new(),
    }
}

/// Is any embedded image square enough and big enough to be a code? Read from the bytes, without poppler.
///
/// Images are streams, and streams are never inside compressed object streams (ISO 32000-1 §7.5.7), so each
/// one's dictionary, `/Width` and `/Height` included, is plain text in the file. A text-layer PDF without any
/// such image never starts `pdfimages`.
pub fn may_have_code_image(bytes: &[u8]) -> bool {
    let finder = memchr::memmem::Finder::new(b"/Image");
    finder.find_iter(bytes).any(|at| {
        // The dictionary around `/Subtype /Image`: a few hundred bytes either way.
        let from = at.saturating_sub(400);
        let to = (at + 400).min(bytes.len());
        let dict = &bytes[from..to];
        let start = dict[..at - from].windows(2).rposition(|w| w == b"<<").unwrap_or(0);
        let dict = &dict[start..];
        let end = dict.windows(6).position(|w| w == b"stream").unwrap_or(dict.len());
        let dict = &dict[..end];
        match (number_after(dict, b"/Width"), number_after(dict, b"/Height")) {
            (Some(w), Some(h)) => square_enough(w, h),
            _ => false,
        }
    })
}

fn number_after(dict: &[u8], key: &[u8]) -> Option<u32> {
    let at = memchr::memmem::find(dict, key)? + key.len();
    let rest = &dict[at..];
    let digits: Vec<u8> =
        rest.iter().skip_while(|b| b.is_ascii_whitespace()).take_while(|b| b.is_ascii_digit()).copied().collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn square_enough(w: u32, h: u32) -> bool {
    let (w, h) = (w.max(1) as f32, h.max(1) as f32);
    w.min(h) >= MIN_SIDE as f32 && w.max(h) / w.min(h) <= MAX_ASPECT
}

/// Does the page's text say a code is printed on it? A Swiss payment part is titled by law; a VeriFactu
/// invoice prints "VERI*FACTU" or "Factura verificable" beside its code; a TicketBAI invoice prints its TBAI
/// identifier under it; a Portuguese invoice its ATCUD; a GiroCode is usually captioned. Only such a page is
/// rendered when its code is not an embedded image.
pub fn page_announces_code(text: &str) -> bool {
    const MARKS: [&str; 14] = [
        "zahlteil",
        "section paiement",
        "payment part",
        "sezione pagamento",
        "empfangsschein",
        "récépissé",
        "veri*factu",
        "factura verificable",
        "tbai-",
        "atcud",
        "girocode",
        "zahlen mit code",
        "bezahlcode",
        "epc qr",
    ];
    let lower = text.to_lowercase();
    MARKS.iter().any(|m| lower.contains(m))
}

/// The codes in a PDF: its embedded images first, then the pages whose text announces a code that no image
/// held, rendered at the lowest resolution that decodes. `page_texts` is the text layer split by page.
pub fn in_pdf(path: &Path, bytes: &[u8], page_texts: &[&str], workdir: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    if may_have_code_image(bytes) {
        found = in_embedded_images(path, workdir, page_texts.len() as u32);
    }
    for (i, text) in page_texts.iter().enumerate() {
        let page = i as u32 + 1;
        if found.iter().any(|f| f.page == page) || !page_announces_code(text) {
            continue;
        }
        found.extend(in_rendered_page(path, workdir, page));
    }
    found
}

fn in_embedded_images(path: &Path, workdir: &Path, pages: u32) -> Vec<Found> {
    let dir = workdir.join("qr-images");
    if std::fs::create_dir_all(&dir).is_err() {
        return Vec::new();
    }
    // `-p` puts the page number in each file name (`img-001-000.pbm`); PBM/PGM/PPM, never compressed.
    let ok = Command::new("pdfimages")
        .args(["-p", "-l", &pages.max(1).to_string()])
        .arg(path)
        .arg(dir.join("img"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let page = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let Ok(size) = imagesize::size(&file) else { continue };
        if !square_enough(size.width as u32, size.height as u32) {
            continue;
        }
        if let Ok(img) = image::open(&file) {
            found.extend(in_luma(&padded(img.to_luma8())).into_iter().map(|payload| Found { page, payload }));
        }
        let _ = std::fs::remove_file(&file);
    }
    found
}

fn in_rendered_page(path: &Path, workdir: &Path, page: u32) -> Vec<Found> {
    let prefix = workdir.join("qr-page");
    let n = page.to_string();
    for dpi in RENDER_DPI {
        let ok = Command::new("pdftoppm")
            .args(["-r", &dpi.to_string(), "-gray", "-singlefile", "-f", &n, "-l", &n])
            .arg(path)
            .arg(&prefix)
            .output()
            .is_ok_and(|o| o.status.success());
        let file = prefix.with_extension("pgm");
        if !ok {
            return Vec::new();
        }
        let found = in_named_image_file(&file, page);
        let _ = std::fs::remove_file(&file);
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_square_image_of_code_size_is_looked_into() {
        let code = b"<< /Type /XObject /Subtype /Image /Width 290 /Height 290 /BitsPerComponent 8 >>\nstream\n";
        let logo = b"<< /Type /XObject /Subtype /Image /Width 600 /Height 120 /BitsPerComponent 8 >>\nstream\n";
        let dot = b"<< /Subtype/Image/Width 8/Height 8 >>stream";
        assert!(may_have_code_image(code));
        assert!(!may_have_code_image(logo));
        assert!(!may_have_code_image(dot));
        assert!(!may_have_code_image(b"%PDF-1.4 no images at all"));
    }

    #[test]
    fn a_bare_code_in_a_png_is_decoded() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/qr/epc-girocode/girocode_demo.png");
        let found = in_image_file(&path, 1);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].payload.starts_with("BCD\n002\n1\nSCT\n\nBeispiel AG\nDE02100500000054540402"));
    }

    #[test]
    fn pages_that_announce_a_code_are_recognised() {
        assert!(page_announces_code("Zahlteil   Konto / Zahlbar an"));
        assert!(page_announces_code("QR tributario: Factura verificable en la sede electrónica de la AEAT"));
        assert!(page_announces_code("ATCUD: CSDF7T5H-0035"));
        assert!(!page_announces_code("FACTURA nº 2024-001  Total 121,00 €"));
    }
}
