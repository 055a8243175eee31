//! OCR with tesseract, run inside the sandbox. We read its TSV word boxes and lay the words back out in lines
//! and columns, so the same layout-aware rules read scans and text-layer PDFs alike.

use std::path::Path;
use std::process::Command;

use super::ErrorCode;

/// English and Spanish first (our suppliers), then the other EU languages when their packs are installed.
const PREFERRED: &[&str] = &["eng", "spa", "deu", "fra", "nld"];

pub fn languages() -> Vec<String> {
    let Ok(out) = Command::new("tesseract").arg("--list-langs").output() else { return Vec::new() };
    let listed = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let have: Vec<&str> = listed.lines().map(str::trim).collect();
    PREFERRED.iter().filter(|l| have.contains(l)).map(|l| l.to_string()).collect()
}

/// OCR one image file (PNG, JPEG, TIFF; multi-page TIFF too) into layout text.
pub fn image_to_text(path: &Path, langs: &[String]) -> Result<String, (ErrorCode, String)> {
    let langs = if langs.is_empty() { "eng".to_string() } else { langs.join("+") };
    let out = Command::new("tesseract")
        .arg(path)
        .arg("stdout")
        .args(["-l", &langs, "--psm", "3", "tsv"])
        .output()
        .map_err(|e| (ErrorCode::SandboxFailure, format!("cannot run tesseract: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("the image cannot be read").to_string();
        return Err((ErrorCode::Unreadable, msg));
    }
    Ok(layout_from_tsv(&String::from_utf8_lossy(&out.stdout)))
}

#[derive(Debug, Clone)]
struct Word {
    page: u32,
    left: i32,
    top: i32,
    width: i32,
    height: i32,
    text: String,
}

/// Rebuild lines from word boxes: words whose vertical centres are close form a line; a word's column is its
/// left edge divided by the typical character width, like `pdftotext -layout`.
pub fn layout_from_tsv(tsv: &str) -> String {
    let mut words: Vec<Word> = Vec::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let text = cols[11].trim();
        let conf: f32 = cols[10].parse().unwrap_or(-1.0);
        if text.is_empty() || conf < 0.0 {
            continue;
        }
        let n = |i: usize| cols[i].parse::<i32>().unwrap_or(0);
        words.push(Word {
            page: n(1) as u32,
            left: n(6),
            top: n(7),
            width: n(8),
            height: n(9),
            text: text.to_string(),
        });
    }
    if words.is_empty() {
        return String::new();
    }
    let mut char_widths: Vec<f32> = words
        .iter()
        .filter(|w| w.text.chars().count() >= 2)
        .map(|w| w.width as f32 / w.text.chars().count() as f32)
        .collect();
    char_widths.sort_by(|a, b| a.total_cmp(b));
    let char_w = char_widths.get(char_widths.len() / 2).copied().unwrap_or(10.0).max(1.0);
    let mut heights: Vec<i32> = words.iter().map(|w| w.height).collect();
    heights.sort_unstable();
    let line_h = heights[heights.len() / 2].max(1) as f32;

    words.sort_by_key(|w| (w.page, w.top + w.height / 2));
    let mut lines: Vec<(u32, f32, Vec<Word>)> = Vec::new();
    for w in words {
        let centre = (w.top + w.height / 2) as f32;
        match lines.last_mut() {
            Some((page, c, ws)) if *page == w.page && (centre - *c).abs() < line_h * 0.5 => {
                let k = ws.len() as f32;
                *c = (*c * k + centre) / (k + 1.0);
                ws.push(w);
            }
            _ => lines.push((w.page, centre, vec![w])),
        }
    }
    let mut out = String::new();
    let mut last_page = None;
    for (page, _, mut ws) in lines {
        if last_page.is_some_and(|p| p != page) {
            out.push('\u{c}');
        }
        last_page = Some(page);
        ws.sort_by_key(|w| w.left);
        let mut line = String::new();
        for w in ws {
            let col = (w.left as f32 / char_w).round() as usize;
            let len = line.chars().count();
            if len > 0 {
                line.push_str(&" ".repeat(col.saturating_sub(len).max(1)));
            } else {
                line.push_str(&" ".repeat(col.min(200)));
            }
            line.push_str(&w.text);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_on_one_row_become_one_line_with_their_columns() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
5\t1\t1\t1\t1\t1\t100\t100\t100\t20\t95\tTotal\n\
5\t1\t2\t1\t1\t1\t600\t102\t120\t20\t93\t1.210,00\n\
5\t1\t1\t1\t2\t1\t100\t140\t80\t20\t90\tIVA\n";
        let text = layout_from_tsv(tsv);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].trim_start().starts_with("Total") && lines[0].ends_with("1.210,00"), "{text}");
        assert!(lines[0].find("1.210,00").unwrap() > lines[0].find("Total").unwrap() + 10, "columns kept: {text}");
    }
}
