//! PDF tools, run inside the sandbox: poppler's `pdfinfo`, `pdfdetach`, `pdftotext` and `pdftoppm`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdfInfo {
    pub pages: u32,
}

/// Page count, or the reason the PDF cannot be opened at all.
pub fn info(path: &Path) -> Result<PdfInfo, (ErrorCode, String)> {
    let out = Command::new("pdfinfo")
        .arg(path)
        .output()
        .map_err(|e| (ErrorCode::SandboxFailure, format!("cannot run pdfinfo: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(cannot_open(&stderr));
    }
    let pages = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Pages:").map(|v| v.trim().parse::<u32>().unwrap_or(0)))
        .unwrap_or(0);
    if pages == 0 {
        return Err((ErrorCode::Unreadable, "the PDF has no pages".into()));
    }
    Ok(PdfInfo { pages })
}

/// Why poppler could not open the PDF, from what it printed on stderr.
fn cannot_open(stderr: &str) -> (ErrorCode, String) {
    // poppler says "Incorrect password" when a user password is needed; an owner-only password opens fine.
    if stderr.contains("Incorrect password") || stderr.contains("password") {
        return (ErrorCode::Encrypted, "the PDF is password-protected".into());
    }
    (ErrorCode::Unreadable, first_line(stderr, "the PDF cannot be opened"))
}

fn first_line(s: &str, default: &str) -> String {
    s.lines()
        .map(|l| l.trim().trim_start_matches("Syntax Error: ").trim_start_matches("Error: "))
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(200).collect())
        .unwrap_or_else(|| default.to_string())
}

/// `pdfdetach` saving every embedded file (/EmbeddedFiles and /AF attachments), run while `pdftotext` reads
/// the page: a Factur-X PDF needs both, the XML and the page to compare.
pub struct Detach {
    child: std::process::Child,
    dir: PathBuf,
}

impl Detach {
    /// Every embedded file that looks like XML, with its name, the standards' names first.
    pub fn xml_files(mut self) -> Vec<(String, Vec<u8>)> {
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        if !ok {
            return Vec::new();
        }
        collect_xml(&self.dir)
    }
}

fn collect_xml(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Ok(bytes) = std::fs::read(entry.path()) else { continue };
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
            .trim_start_matches('\u{feff}')
            .trim_start()
            .to_string();
        if name.to_lowercase().ends_with(".xml") || head.starts_with("<?xml") || head.starts_with('<') {
            found.push((name, bytes));
        }
    }
    // The names the standards use come first (Factur-X, ZUGFeRD 1 and 2, XRechnung).
    found.sort_by_key(|(n, _)| {
        let l = n.to_lowercase();
        match l.as_str() {
            "factur-x.xml" => 0,
            "zugferd-invoice.xml" => 1,
            "xrechnung.xml" => 2,
            _ if l.contains("zugferd") || l.contains("factur") => 3,
            _ => 4,
        }
    });
    found
}

/// The text layer of a PDF, with its page count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLayer {
    pub text: String,
    /// Pages read: `pdftotext` ends every page with a form feed. One more than the limit means "too many".
    pub pages: u32,
}

/// `pdftotext` reading the text layer, laid out as the page shows it, of at most `max_pages + 1` pages. It is
/// started first and collected last (`finish`): the caller compiles its patterns and parses an embedded XML
/// meanwhile, and the page is the slowest of those.
///
/// One `pdftotext` run also opens the file (a damaged or password-protected PDF fails here with the same
/// messages `pdfinfo` gives) and counts the pages, so the usual document needs no `pdfinfo` run: each poppler
/// process costs about 8 ms of start-up, a sixth of the time budget for a whole text-layer PDF.
pub struct TextRun {
    child: std::process::Child,
    out: PathBuf,
}

/// poppler's two readers of a PDF, `pdftotext` and `pdfdetach`, started before the document is at hand and
/// waiting for its bytes on stdin (`-` and `fd://0`).
///
/// Loading poppler's 30 shared libraries is about half of each tool's time on a one-page invoice (`pdftotext
/// -v` alone: 9 ms of 17). A jail started ahead of its document starts these too, so that wait is over before
/// the document comes; a document that is not a PDF ends them unused. They read from a pipe, not a file, and
/// write into `workdir`: `pdftotext` its text to a file, so a long text never stalls poppler while the caller
/// is busy elsewhere, and `pdfdetach` the attachments.
pub struct Readers {
    text: Option<(std::process::Child, PathBuf)>,
    detach: Option<(std::process::Child, PathBuf)>,
}

impl Readers {
    /// Start `pdftotext` for at most `max_pages + 1` pages, and `pdfdetach` when `attachments` are wanted.
    pub fn start(workdir: &Path, max_pages: u32, attachments: bool) -> Result<Readers, (ErrorCode, String)> {
        let out = workdir.join("text.txt");
        let sink =
            std::fs::File::create(&out).map_err(|e| (ErrorCode::SandboxFailure, format!("no scratch space: {e}")))?;
        let text = Command::new("pdftotext")
            .args(["-layout", "-enc", "UTF-8", "-l", &max_pages.saturating_add(1).to_string(), "-", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(sink)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| (ErrorCode::SandboxFailure, format!("cannot run pdftotext: {e}")))?;
        let mut readers = Readers { text: Some((text, out)), detach: None };
        if attachments {
            let dir = workdir.join("embedded");
            if std::fs::create_dir_all(&dir).is_ok() {
                let detach = Command::new("pdfdetach")
                    .arg("-saveall")
                    .arg("-o")
                    .arg(&dir)
                    .arg("fd://0")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn();
                readers.detach = detach.ok().map(|c| (c, dir));
            }
        }
        Ok(readers)
    }

    /// Hand `bytes` to the readers: `pdftotext` always (see `for_text`), `pdfdetach` when `attachments` are
    /// wanted and it was started (else it ends unused). Both then run while the caller goes on.
    pub fn read(mut self, bytes: &[u8], attachments: bool) -> (TextRun, Option<Detach>) {
        let (mut child, out) = self.text.take().expect("pdftotext is started with the readers");
        // A reader that died early closed its pipe; its exit status tells why, in `finish`.
        let _ = feed(&mut child, &for_text(bytes));
        let detach = match self.detach.take() {
            Some((mut child, dir)) if attachments => {
                let _ = feed(&mut child, bytes);
                Some(Detach { child, dir })
            }
            Some((child, _)) => {
                end(child);
                None
            }
            None => None,
        };
        (TextRun { child, out }, detach)
    }
}

/// Readers a document never needed (it was not a PDF) are ended, not left waiting.
impl Drop for Readers {
    fn drop(&mut self) {
        for (child, _) in self.text.take().into_iter().chain(self.detach.take()) {
            end(child);
        }
    }
}

fn feed(child: &mut std::process::Child, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    // Dropping stdin after the write closes it: the tool reads to the end before it parses.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(bytes)
}

fn end(mut child: std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

impl TextRun {
    pub fn finish(self) -> Result<TextLayer, (ErrorCode, String)> {
        let done = self
            .child
            .wait_with_output()
            .map_err(|e| (ErrorCode::SandboxFailure, format!("pdftotext did not finish: {e}")))?;
        let stderr = String::from_utf8_lossy(&done.stderr);
        if !done.status.success() {
            return Err(cannot_open(&stderr));
        }
        let bytes = std::fs::read(&self.out)
            .map_err(|e| (ErrorCode::SandboxFailure, format!("cannot read pdftotext's output: {e}")))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let pages = text.matches('\u{c}').count() as u32;
        if pages == 0 {
            return Err((ErrorCode::Unreadable, first_line(&stderr, "the PDF has no pages")));
        }
        Ok(TextLayer { text, pages })
    }
}

/// The bytes for `pdftotext` to read: the document itself, or a copy that hides its PDF/A output intent from
/// poppler.
///
/// poppler (22.12 here) makes the catalog's `/OutputIntents` ICC profile the display profile of every page it
/// reads, and builds lcms colour transforms from it, even for text extraction, which never draws a colour. On the
/// corpus' PDF/A invoices that cost 40–150 ms of `cmsReverseToneCurveEx` per document, where the whole text layer
/// takes 15 ms. The copy renames the key to one of the same length, so every offset in the cross-reference
/// table stays right, and poppler skips the key it does not know; the text it prints is the same. A catalog
/// inside a compressed object stream keeps its intent, and then the time is spent.
fn for_text(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const KEY: &[u8] = b"/OutputIntents";
    const HIDDEN: &[u8] = b"/XOutputIntent";
    let at: Vec<usize> = memchr::memmem::find_iter(bytes, KEY).collect();
    if at.is_empty() {
        return bytes.into();
    }
    let mut copy = bytes.to_vec();
    for i in at {
        copy[i..i + KEY.len()].copy_from_slice(HIDDEN);
    }
    copy.into()
}

/// Can this PDF hold attachments? `pdfdetach` is only worth its start-up when the file names an embedded file.
///
/// Every attachment is a stream, and streams are never inside compressed object streams (ISO 32000-1 §7.5.7),
/// so their dictionary is plain text in the file; producers write `/Type /EmbeddedFile` there, and the
/// `/EmbeddedFiles` name tree says it too when the catalog is not compressed. Every PDF with an attachment in
/// the corpus (84 of 88) shows the word. A producer that omits the optional `/Type` *and* compresses its
/// catalog would go unnoticed: then the page is read instead of the XML, which is the same invoice.
pub fn may_have_attachments(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"/EmbeddedFile").is_some()
}

/// Render page `page` (1-based) to a grey PGM at `dpi` for OCR, and return its path.
///
/// PGM, not PNG: tesseract reads both, and compressing a noisy 300 dpi scan to PNG took pdftoppm 6 s of the
/// 6.2 s it spent on the page here (rendering alone: 0.2 s). One page at a time, so a long document never holds
/// more than one 9 MB page in the jail's small /tmp.
pub fn render_page(path: &Path, workdir: &Path, dpi: u32, page: u32) -> Result<PathBuf, (ErrorCode, String)> {
    let prefix = workdir.join("page");
    let n = page.to_string();
    let out = Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-gray", "-singlefile", "-f", &n, "-l", &n])
        .arg(path)
        .arg(&prefix)
        .output()
        .map_err(|e| (ErrorCode::SandboxFailure, format!("cannot run pdftoppm: {e}")))?;
    let file = prefix.with_extension("pgm");
    if !out.status.success() || !file.is_file() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err((ErrorCode::Unreadable, first_line(&stderr, "the PDF pages cannot be rendered")));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pdf_that_names_an_embedded_file_is_detached() {
        assert!(may_have_attachments(b"<< /Type /EmbeddedFile /Subtype /text#2Fxml /Length 12 >>"));
        assert!(may_have_attachments(b"<< /Names << /EmbeddedFiles 12 0 R >> >>"));
        assert!(!may_have_attachments(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj"));
    }

    const FACTUR_X: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/einvoice/akretion-factur-x/tests/fixtures/pdf/invoice_EN16931.pdf"
    );

    #[test]
    fn readers_started_before_the_document_read_its_page_and_its_xml_from_their_pipes() {
        let dir = tempfile::tempdir().unwrap();
        let readers = Readers::start(dir.path(), 50, true).unwrap();
        let bytes = std::fs::read(FACTUR_X).unwrap();
        let (text, detach) = readers.read(&bytes, may_have_attachments(&bytes));
        let xml = detach.expect("a Factur-X PDF is detached").xml_files();
        assert_eq!(xml.first().map(|(n, _)| n.as_str()), Some("factur-x.xml"), "{:?}", xml.len());
        let layer = text.finish().unwrap();
        assert_eq!(layer.pages, 1);
        assert!(layer.text.contains("F20260023"), "{}", layer.text);
    }

    #[test]
    fn readers_that_no_document_needed_are_ended() {
        let dir = tempfile::tempdir().unwrap();
        let readers = Readers::start(dir.path(), 50, true).unwrap();
        let pids: Vec<u32> = readers.text.iter().chain(&readers.detach).map(|(c, _)| c.id()).collect();
        assert_eq!(pids.len(), 2);
        drop(readers);
        for pid in pids {
            assert!(!Path::new(&format!("/proc/{pid}")).exists(), "reader {pid} is left running");
        }
    }

    #[test]
    fn a_damaged_pdf_fed_to_the_readers_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let (text, _) = Readers::start(dir.path(), 50, false).unwrap().read(b"%PDF-1.4\ngarbage", false);
        let (code, message) = text.finish().unwrap_err();
        assert_eq!(code, ErrorCode::Unreadable, "{message}");
        assert!(!message.is_empty());
    }

    #[test]
    fn text_is_read_from_a_copy_without_the_output_intent_and_of_the_same_length() {
        let pdfa = b"1 0 obj << /Type /Catalog /Pages 2 0 R /OutputIntents [3 0 R] >> endobj\nxref".to_vec();
        let copy = for_text(&pdfa);
        assert_eq!(copy.len(), pdfa.len(), "offsets in the xref table must stay valid");
        assert!(memchr::memmem::find(&copy, b"/OutputIntents").is_none());
        assert!(copy.starts_with(b"1 0 obj << /Type /Catalog /Pages 2 0 R /"));

        let plain = b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj".to_vec();
        assert!(matches!(for_text(&plain), std::borrow::Cow::Borrowed(_)));
    }
}
