//! Finding and decoding the codes: in an image directly; in a PDF first in its embedded images (read beside
//! `pdftotext`, by `pdf_images` in this process, or by `pdfimages` when that cannot), and only when the code is
//! drawn as vector graphics, in the page rendered at the lowest resolution that decodes; on a scanned page, in
//! the image already rendered for OCR.
//!
//! The decoder is `rxing`, a port of ZXing, through its port of zxing-cpp's QR reader, which finds every
//! finder pattern in one pass and decodes every code they frame. On the QR corpus (18 bare codes, 28 rendered
//! Swiss payment parts) both it and `rqrr` read every bare code, but rendered pages at 72 dpi `rxing` read 27 of
//! 28 and `rqrr` 4, at 100 dpi 28 and 19; and `rxing` took a third to a tenth of `rqrr`'s time on the same image.
//! The reader is asked cheaply first (every third row scanned for finder patterns), harder only when that
//! finds nothing, and a large image (a page scanned at 300 dpi) is read halved first.
//!
//! Everything here runs inside the jail, like every other reading of the document.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use rxing::common::HybridBinarizer;
use rxing::multi::MultipleBarcodeReader;
use rxing::qrcode::cpp_port::QrReader;
use rxing::{BarcodeFormat, BinaryBitmap, DecodeHintValue, DecodeHints, Luma8LuminanceSource};

use super::merge::Found;
use super::pdf_images;
use super::pdf_objects::Objects;

/// Resolutions tried for a page drawn in vector graphics, lowest first. A code's finder patterns need about two
/// pixels per module: 85 dpi reads every rendered payment part of the corpus (72 dpi missed the densest), 150 dpi
/// is for denser codes than those.
const RENDER_DPI: [u32; 2] = [85, 150];
/// The smallest code is 21 modules; an image smaller than this is no code.
const MIN_SIDE: u32 = 21;
/// Codes are square; an image much wider than tall is a logo or a photo.
const MAX_ASPECT: f32 = 1.25;
/// An image with a longer side than this is read first shrunk to it or below (by a whole factor): a page
/// scanned at 300 dpi is read at 150 dpi, where a printed code still has more than two pixels per module, in a
/// quarter of the time.
const FIRST_PASS_SIDE: u32 = 1800;
/// An embedded code image is read first at most this wide: a Swiss QR-bill's code (at most 125 modules with its
/// margin) keeps two pixels a module or more, most codes three or four.
const CODE_IMAGE_SIDE: u32 = 300;

/// Every QR code the decoder reads in a grey image: cheaply first, harder only when that finds nothing.
pub fn in_luma(img: &image::GrayImage) -> Vec<String> {
    in_luma_shrunk_to(img, FIRST_PASS_SIDE, |i| i)
}

/// The passes of `in_luma`, with the first ones on `img` shrunk to `side` or below when it is larger, and every
/// image `prepare`d before it is read.
fn in_luma_shrunk_to(
    img: &image::GrayImage,
    side: u32,
    prepare: impl Fn(image::GrayImage) -> image::GrayImage,
) -> Vec<String> {
    let longest = img.width().max(img.height());
    let factor = longest.div_ceil(side);
    if factor > 1 {
        let small = prepare(shrink(img, factor));
        for harder in [false, true] {
            let found = read(&small, harder, false);
            if !found.is_empty() {
                return found;
            }
        }
    }
    let img = prepare(img.clone());
    let mut passes = vec![(true, false)];
    if factor <= 1 {
        passes.insert(0, (false, false));
    }
    // Light-on-dark codes are rare: tried on small images only, where a pass is cheap.
    if longest <= FIRST_PASS_SIDE {
        passes.push((true, true));
    }
    passes
        .into_iter()
        .map(|(harder, inverted)| read(&img, harder, inverted))
        .find(|f| !f.is_empty())
        .unwrap_or_default()
}

/// The codes in an embedded image that may be a code: one drawn at many pixels a module is read first shrunk to
/// about three or four (`CODE_IMAGE_SIDE`), each with a white margin (`padded`).
pub(super) fn in_code_image(img: &image::GrayImage) -> Vec<String> {
    in_luma_shrunk_to(img, CODE_IMAGE_SIDE, padded)
}

/// Grey levels of a decoded image; RGB by integer weights (ITU-R BT.601), much cheaper than `to_luma8`'s
/// colour-space conversion on the RGB images `pdfimages` writes.
pub(super) fn grey(img: image::DynamicImage) -> image::GrayImage {
    match img {
        image::DynamicImage::ImageLuma8(g) => g,
        image::DynamicImage::ImageRgb8(rgb) => {
            let (w, h) = rgb.dimensions();
            let luma = rgb.as_raw().chunks_exact(3).map(|p| rgb_luma(p[0], p[1], p[2])).collect();
            image::GrayImage::from_raw(w, h, luma).expect("one grey pixel per RGB pixel")
        }
        other => other.to_luma8(),
    }
}

/// The grey level of an RGB pixel, by integer weights (ITU-R BT.601).
#[inline]
pub(super) fn rgb_luma(r: u8, g: u8, b: u8) -> u8 {
    ((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b)) >> 8) as u8
}

/// One pass of the reader: every code whose three finder patterns it finds.
fn read(img: &image::GrayImage, harder: bool, inverted: bool) -> Vec<String> {
    let Ok(source) = Luma8LuminanceSource::new(img.as_raw().clone(), img.width(), img.height()) else {
        return Vec::new();
    };
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
    if inverted {
        bitmap.invert();
    }
    let mut hints =
        DecodeHints::default().with(DecodeHintValue::PossibleFormats(HashSet::from([BarcodeFormat::QR_CODE])));
    if harder {
        hints = hints.with(DecodeHintValue::TryHarder(true));
    }
    QrReader
        .decode_multiple_with_hints(&mut bitmap, &hints)
        .map(|v| v.into_iter().map(|r| r.getText().to_string()).collect())
        .unwrap_or_default()
}

/// `img` shrunk `factor` times, each pixel the mean of the block it replaces.
fn shrink(img: &image::GrayImage, factor: u32) -> image::GrayImage {
    let f = factor as usize;
    let (sw, w, h) = (img.width() as usize, img.width() as usize / f, img.height() as usize / f);
    let src = img.as_raw();
    let mut out = Vec::with_capacity(w * h);
    let mut sums = vec![0u32; w];
    for y in 0..h {
        sums.fill(0);
        for row in src[y * f * sw..].chunks(sw).take(f) {
            for (sum, block) in sums.iter_mut().zip(row.chunks(f)) {
                *sum += block.iter().map(|&p| u32::from(p)).sum::<u32>();
            }
        }
        out.extend(sums.iter().map(|&s| (s / (f * f) as u32) as u8));
    }
    image::GrayImage::from_raw(w as u32, h as u32, out).expect("w × h pixels")
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

/// The codes in one image file (an invoice sent as a picture, a page rendered for OCR), on page `page`.
pub fn in_image_file(path: &Path, page: u32) -> Vec<Found> {
    // By content, not by name: in the jail the document is a file called `document`.
    let img = image::ImageReader::open(path).and_then(|r| r.with_guessed_format()).map(|r| r.decode());
    match img {
        Ok(Ok(img)) => in_luma(&grey(img)).into_iter().map(|payload| Found { page, payload }).collect(),
        _ => Vec::new(),
    }
}

/// Is any embedded image square enough and big enough to be a code? Read from the bytes, without poppler.
///
/// Images are streams, and streams are never inside compressed object streams (ISO 32000-1 §7.5.7), so each
/// one's dictionary, `/Width` and `/Height` included, is plain text in the file. A text-layer PDF without any
/// such image has no image read at all.
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

pub(super) fn square_enough(w: u32, h: u32) -> bool {
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

/// The embedded images that may be codes, read while `pdftotext` runs: in a thread of this process when every
/// one is of a kind `pdf_images` reads, else by `pdfimages`, as before.
pub struct ImageRun {
    how: How,
    /// What a late fall back to `pdfimages` needs.
    path: PathBuf,
    workdir: PathBuf,
    max_pages: u32,
}

enum How {
    /// `pdf_images` decoding the images and the reader reading them; `None` when an image turned out unreadable
    /// here (a damaged stream), and `pdfimages` is to try.
    Here(JoinHandle<Option<ReadHere>>),
    Poppler(PdfImages),
}

impl ImageRun {
    /// Start reading the images of the first `max_pages` pages, when any embedded image may be a code
    /// (`may_have_code_image`); else there is nothing to run.
    pub fn start(path: &Path, bytes: &[u8], workdir: &Path, max_pages: u32) -> Option<ImageRun> {
        if !may_have_code_image(bytes) {
            return None;
        }
        // The look at the bytes saw a square image: if this reader finds none, it misunderstands the file.
        let here = pdf_images::readable(bytes).ok().filter(|&n| n > 0).and_then(|_| {
            let bytes = bytes.to_vec();
            std::thread::Builder::new().name("qr-images".into()).spawn(move || read_here(&bytes, max_pages)).ok()
        });
        let how = match here {
            Some(thread) => How::Here(thread),
            None => How::Poppler(PdfImages::start(path, workdir, max_pages)?),
        };
        Some(ImageRun { how, path: path.to_path_buf(), workdir: workdir.to_path_buf(), max_pages })
    }

    /// The codes in the images, on a PDF of `pages` pages.
    fn finish(self, pages: usize) -> Vec<Found> {
        match self.how {
            How::Poppler(run) => run.finish(),
            How::Here(thread) => match thread.join().ok().flatten().and_then(|read| read.found(pages)) {
                Some(found) => found,
                None => PdfImages::start(&self.path, &self.workdir, self.max_pages)
                    .map(PdfImages::finish)
                    .unwrap_or_default(),
            },
        }
    }
}

/// What the images read here held: the codes in each, by the image's object number, and the pages that draw
/// them (looked up only when there is a code).
struct ReadHere {
    codes: Vec<(u32, Vec<String>)>,
    pages: Option<(u32, HashMap<u32, Vec<u32>>)>,
}

fn read_here(bytes: &[u8], max_pages: u32) -> Option<ReadHere> {
    // One index of the file's objects serves both the images and the page tree.
    let objects = Objects::index(bytes);
    let images = pdf_images::code_images_in(bytes, &objects).ok()?;
    let codes: Vec<_> =
        images.iter().map(|i| (i.object, in_code_image(&i.image))).filter(|(_, c)| !c.is_empty()).collect();
    let pages = if codes.is_empty() { None } else { objects.image_pages(max_pages) };
    Some(ReadHere { codes, pages })
}

impl ReadHere {
    /// Each code with its page, in page order; `None` when a code's page is not known here (a page tree in an
    /// object stream, an image drawn from an annotation): `pdfimages` knows.
    fn found(self, pages: usize) -> Option<Vec<Found>> {
        let mut found = Vec::new();
        for (object, payloads) in self.codes {
            let on = if pages <= 1 {
                vec![1]
            } else {
                let (count, drawn) = self.pages.as_ref()?;
                if *count as usize != pages {
                    return None;
                }
                drawn.get(&object)?.clone()
            };
            for page in on {
                found.extend(payloads.iter().map(|payload| Found { page, payload: payload.clone() }));
            }
        }
        found.sort_by_key(|f| f.page);
        Some(found)
    }
}

/// `pdfimages` writing a PDF's embedded images, to be read as files.
struct PdfImages {
    child: Child,
    dir: PathBuf,
}

impl PdfImages {
    fn start(path: &Path, workdir: &Path, max_pages: u32) -> Option<PdfImages> {
        let dir = workdir.join("qr-images");
        std::fs::create_dir_all(&dir).ok()?;
        // `-p` puts the page number in each file name (`img-001-000.pbm`); PBM/PGM/PPM, never compressed.
        let child = Command::new("pdfimages")
            .args(["-p", "-l", &max_pages.max(1).to_string()])
            .arg(path)
            .arg(dir.join("img"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(PdfImages { child, dir })
    }

    /// The codes in the images `pdfimages` wrote; the files are removed as they are read.
    fn finish(mut self) -> Vec<Found> {
        if !self.child.wait().is_ok_and(|s| s.success()) {
            return Vec::new();
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
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
            let square = imagesize::size(&file).is_ok_and(|s| square_enough(s.width as u32, s.height as u32));
            if square {
                if let Ok(img) = image::open(&file) {
                    found.extend(in_code_image(&grey(img)).into_iter().map(|payload| Found { page, payload }));
                }
            }
            let _ = std::fs::remove_file(&file);
        }
        found
    }
}

/// The codes in a PDF: those `images` found in its embedded images, then on each page whose text announces a
/// code that no image held, the page rendered at the lowest resolution that decodes. `page_texts` is the text
/// layer split by page.
pub fn in_pdf(path: &Path, images: Option<ImageRun>, page_texts: &[&str], workdir: &Path) -> Vec<Found> {
    let mut found = images.map(|i| i.finish(page_texts.len())).unwrap_or_default();
    for (i, text) in page_texts.iter().enumerate() {
        let page = i as u32 + 1;
        if found.iter().any(|f| f.page == page) || !page_announces_code(text) {
            continue;
        }
        found.extend(in_rendered_page(path, workdir, page));
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
        let found = in_image_file(&file, page);
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
    fn a_code_on_a_large_page_is_read_from_the_page_shrunk() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/qr/epc-girocode/girocode_demo.png");
        let code = image::open(path).unwrap().to_luma8();
        // A page scanned at 300 dpi: 2480 × 3508 pixels, the code in its lower right corner.
        let mut page = image::GrayImage::from_pixel(2480, 3508, image::Luma([250]));
        image::imageops::replace(&mut page, &code, 1900, 2900);
        let found = in_luma(&page);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("BCD\n002\n1\nSCT"), "{found:?}");
        // And an empty page has none.
        assert!(in_luma(&image::GrayImage::from_pixel(2480, 3508, image::Luma([250]))).is_empty());
    }

    #[test]
    fn a_code_image_read_here_is_on_the_page_that_draws_it() {
        let pdf = pdf_images::tests::code_pdf(3, 2);
        let found = read_here(&pdf, 50).expect("every image is readable here").found(3);
        assert_eq!(found, Some(vec![Found { page: 2, payload: pdf_images::tests::PAYLOAD.to_string() }]));
        // A page tree that disagrees with the text layer's page count leaves the pages to pdfimages.
        assert_eq!(read_here(&pdf, 50).unwrap().found(2), None);
        // On a one-page PDF the page is known without the tree.
        let one = pdf_images::tests::code_pdf(1, 1);
        assert_eq!(read_here(&one, 50).unwrap().found(1).map(|f| f[0].page), Some(1));
    }

    #[test]
    fn shrinking_averages_each_block() {
        let img = image::GrayImage::from_raw(4, 2, vec![0, 255, 10, 10, 255, 0, 30, 30]).unwrap();
        assert_eq!(shrink(&img, 2).into_raw(), vec![127, 20]);
    }

    #[test]
    fn pages_that_announce_a_code_are_recognised() {
        assert!(page_announces_code("Zahlteil   Konto / Zahlbar an"));
        assert!(page_announces_code("QR tributario: Factura verificable en la sede electrónica de la AEAT"));
        assert!(page_announces_code("ATCUD: CSDF7T5H-0035"));
        assert!(!page_announces_code("FACTURA nº 2024-001  Total 121,00 €"));
    }
}
