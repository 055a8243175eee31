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
        // poppler says "Incorrect password" when a user password is needed; an owner-only password opens fine.
        if stderr.contains("Incorrect password") || stderr.contains("password") {
            return Err((ErrorCode::Encrypted, "the PDF is password-protected".into()));
        }
        return Err((ErrorCode::Unreadable, first_line(&stderr, "the PDF cannot be opened")));
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

fn first_line(s: &str, default: &str) -> String {
    s.lines()
        .map(|l| l.trim().trim_start_matches("Syntax Error: ").trim_start_matches("Error: "))
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(200).collect())
        .unwrap_or_else(|| default.to_string())
}

/// Every embedded file (/EmbeddedFiles and /AF attachments) that looks like XML, with its name.
pub fn embedded_xml(path: &Path, workdir: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = workdir.join("embedded");
    if std::fs::create_dir_all(&dir).is_err() {
        return Vec::new();
    }
    let ok = Command::new("pdfdetach")
        .arg("-saveall")
        .arg("-o")
        .arg(&dir)
        .arg(path)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        return Vec::new();
    }
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return found };
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

/// The text layer, laid out as the page shows it.
pub fn text_layer(path: &Path) -> Result<String, (ErrorCode, String)> {
    let out = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(path)
        .arg("-")
        .output()
        .map_err(|e| (ErrorCode::SandboxFailure, format!("cannot run pdftotext: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err((ErrorCode::Unreadable, first_line(&stderr, "the PDF text cannot be read")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Render pages to grey PNG at `dpi` for OCR.
pub fn render_pages(path: &Path, workdir: &Path, dpi: u32, pages: u32) -> Result<Vec<PathBuf>, (ErrorCode, String)> {
    let prefix = workdir.join("page");
    let out = Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-gray", "-png", "-f", "1", "-l", &pages.to_string()])
        .arg(path)
        .arg(&prefix)
        .output()
        .map_err(|e| (ErrorCode::SandboxFailure, format!("cannot run pdftoppm: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err((ErrorCode::Unreadable, first_line(&stderr, "the PDF pages cannot be rendered")));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(workdir)
        .map_err(|e| (ErrorCode::SandboxFailure, e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("page"))
                && p.extension().is_some_and(|e| e == "png")
        })
        .collect();
    files.sort();
    Ok(files)
}
