//! `pdftotext -layout` text as lines of column segments.
//!
//! The layout mode keeps every glyph at its horizontal position, so a run of two or more spaces separates two
//! columns and a value printed under its label starts (or ends) in the label's column. We keep char columns for
//! that, and byte offsets for slicing. OCR text laid out in lines works the same, only noisier.

use super::dates::find_dates;
use super::iban::find_ibans;
use super::labels::{find_labels, LabelHit};
use super::numbers::{find_amounts, AmountMatch};
use super::taxid::find_tax_ids;
use super::Locale;
use regex::Regex;
use std::sync::LazyLock;

/// A run of text without two consecutive spaces.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub text: String,
    /// Char column of the first char.
    pub start: usize,
    /// Char column just after the last char.
    pub end: usize,
    pub byte_start: usize,
    pub byte_end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub segments: Vec<Segment>,
    /// The text with dates, IBANs and tax IDs blanked out byte for byte, so their digits are never read as
    /// amounts.
    masked: String,
    /// The field labels in the line (`labels::find_labels`), found once: header, totals and currency all ask.
    labels: Vec<LabelHit>,
}

impl Line {
    fn new(text: String) -> Line {
        let segments = split_segments(&text);
        let mut masked = text.clone().into_bytes();
        let mut blank = |s: usize, e: usize| masked[s..e].iter_mut().for_each(|b| *b = b' ');
        for d in find_dates(&text, None) {
            blank(d.start, d.end);
        }
        for i in find_ibans(&text) {
            blank(i.start, i.end);
        }
        for t in find_tax_ids(&text) {
            blank(t.start, t.end);
        }
        // Blanking whole UTF-8 sequences keeps the string valid; a partial one cannot happen because every range
        // above starts and ends on char boundaries.
        let masked = String::from_utf8(masked).unwrap_or_else(|_| text.clone());
        let labels = find_labels(&text);
        Line { text, segments, masked, labels }
    }

    /// The text with dates, IBANs and tax IDs blanked out (same byte offsets as `text`).
    pub fn masked(&self) -> &str {
        &self.masked
    }

    /// The field labels in the line, left to right.
    pub fn labels(&self) -> &[LabelHit] {
        &self.labels
    }

    pub fn is_blank(&self) -> bool {
        self.segments.is_empty()
    }

    /// The char column of a byte offset.
    pub fn col(&self, byte: usize) -> usize {
        self.text[..byte.min(self.text.len())].chars().count()
    }

    /// The byte offset of a char column (clamped to the line).
    pub fn byte(&self, col: usize) -> usize {
        self.text.char_indices().nth(col).map_or(self.text.len(), |(b, _)| b)
    }

    /// Amounts within a byte range, dates, IBANs and tax IDs excluded.
    pub fn amounts(&self, from: usize, to: usize, hint: Option<Locale>) -> Vec<AmountMatch> {
        let to = to.min(self.masked.len());
        if from >= to {
            return Vec::new();
        }
        find_amounts(&self.masked[from..to], hint)
            .into_iter()
            .map(|mut a| {
                a.start += from;
                a.end += from;
                a
            })
            .collect()
    }

    /// The segment containing a byte offset, if any.
    pub fn segment_at(&self, byte: usize) -> Option<&Segment> {
        self.segments.iter().find(|s| s.byte_start <= byte && byte < s.byte_end)
    }

    /// The first segment that starts at or after a byte offset.
    pub fn segment_after(&self, byte: usize) -> Option<&Segment> {
        self.segments.iter().find(|s| s.byte_start >= byte)
    }
}

fn split_segments(text: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].1 == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i + 1;
        while end < chars.len() {
            let gap = chars[end..].iter().take_while(|(_, c)| *c == ' ').count();
            if gap >= 2 || end + gap >= chars.len() {
                break;
            }
            end += gap.max(1);
            while end < chars.len() && chars[end].1 != ' ' {
                end += 1;
            }
        }
        let byte_start = chars[start].0;
        let byte_end = chars.get(end).map_or(text.len(), |(b, _)| *b);
        out.push(Segment { text: text[byte_start..byte_end].to_string(), start, end, byte_start, byte_end });
        i = end;
    }
    out
}

/// The page(s) as lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub lines: Vec<Line>,
}

impl Layout {
    pub fn new(text: &str) -> Layout {
        let lines = text
            .replace('\u{c}', "\n")
            .replace('\r', "")
            .lines()
            // Tabs come from producers that position words with them; two spaces keep them a column break.
            .map(|l| Line::new(unglue(&l.replace('\t', "  ")).trim_end().to_string()))
            .collect();
        Layout { lines }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(Line::is_blank)
    }

    /// Segments under a column span `[from, to)` (char columns) in the next lines after `line`: each returned
    /// segment overlaps the span. Stops after `max_lines` non-blank lines or three blank ones in a row.
    pub fn below(&self, line: usize, from: usize, to: usize, max_lines: usize) -> Vec<(usize, &Segment)> {
        let mut out = Vec::new();
        let (mut seen, mut blanks) = (0, 0);
        for (i, l) in self.lines.iter().enumerate().skip(line + 1) {
            if l.is_blank() {
                blanks += 1;
                if blanks >= 3 {
                    break;
                }
                continue;
            }
            blanks = 0;
            seen += 1;
            out.extend(l.segments.iter().filter(|s| s.start < to && s.end > from).map(|s| (i, s)));
            if seen >= max_lines {
                break;
            }
        }
        out
    }

    /// The column span a label at `[start, end)` (char columns) owns on its line: from a little left of it up to
    /// the next segment on the same line. Right-aligned values under a left-aligned label still overlap it.
    pub fn column_of(&self, line: usize, start: usize, end: usize) -> (usize, usize) {
        let l = &self.lines[line];
        let next = l.segments.iter().map(|s| s.start).filter(|&s| s >= end).min().unwrap_or(usize::MAX);
        let prev_end = l.segments.iter().map(|s| s.end).filter(|&e| e <= start).max().unwrap_or(0);
        let left = start.saturating_sub(3).max(prev_end + (start - prev_end) / 2);
        (left, next.saturating_sub(1).max(end))
    }
}

/// A label glued to its amount (`NETTOBETRAG10.371,24 €`, `UST. 19 %1.970,54`): compact summaries set the
/// amount a hair's breadth from an upper-case label, and text extraction and OCR read the two as one word, so
/// neither the label nor the amount would be found. A space goes in between when a word of four letters or more
/// (or a percent sign, or a tax abbreviation that ends totals labels: `HT`, `TTC`, `BTW`, `IVA`, `VAT` …) runs
/// straight into an amount with a decimal part; a code such as `FV24/002055`, `A4` or
/// `INV-0042` has no such tail and stays as it is.
fn unglue(line: &str) -> std::borrow::Cow<'_, str> {
    static GLUED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:\p{L}{4}|%|\b(?i:ht|ttc|btw|iva|tva|vat|gst|tax|net))([-−]?(?:[0-9]{1,3}(?:[.,' ][0-9]{3})+|[0-9]+)[.,][0-9]{2})(?:[^0-9\p{L}]|$)")
            .expect("glued amount regex")
    });
    if !line.bytes().any(|b| b.is_ascii_digit()) || !GLUED.is_match(line) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 4);
    let mut at = 0;
    for caps in GLUED.captures_iter(line) {
        let amount = caps.get(1).expect("amount");
        out.push_str(&line[at..amount.start()]);
        out.push(' ');
        at = amount.start();
    }
    out.push_str(&line[at..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_spaces_split_columns_and_one_does_not() {
        let l = Line::new("Factura nº   F-001      Fecha:  15/10/2025".to_string());
        let texts: Vec<&str> = l.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, vec!["Factura nº", "F-001", "Fecha:", "15/10/2025"]);
        assert_eq!(l.segments[1].start, 13);
    }

    #[test]
    fn columns_count_chars_not_bytes() {
        let l = Line::new("Número  Año  12".to_string());
        assert_eq!(l.segments[1].start, 8);
        assert_eq!(l.segments[2].start, 13);
        assert_eq!(l.col(l.segments[2].byte_start), 13);
    }

    #[test]
    fn dates_and_ibans_are_not_amounts() {
        let l = Line::new("Fecha 15.10.2025  IBAN ES91 2100 0418 4502 0005 1332  Total 12,50".to_string());
        let amounts: Vec<String> = l.amounts(0, l.text.len(), None).iter().map(|a| a.value.to_string()).collect();
        assert_eq!(amounts, vec!["12.50"]);
    }

    #[test]
    fn a_value_under_a_label_is_found_in_its_column() {
        let layout = Layout::new("Name        Total\nWidget      12,00\nOther line\n");
        let (from, to) = layout.column_of(0, 12, 17);
        let below = layout.below(0, from, to, 1);
        assert_eq!(below.len(), 1);
        assert_eq!(below[0].1.text, "12,00");
    }

    #[test]
    fn a_label_glued_to_its_amount_is_set_apart_and_codes_are_not() {
        let cases = [
            ("NETTOBETRAG10.371,24 €", "NETTOBETRAG 10.371,24 €"),
            ("UST. 19 %1.970,54 €", "UST. 19 % 1.970,54 €"),
            ("MONTANT TTC7 452,19 €", "MONTANT TTC 7 452,19 €"),
            ("SOUS-TOTAL HT6 210,16 €", "SOUS-TOTAL HT 6 210,16 €"),
            ("TOTAAL INCL. BTW11.423,45 EUR", "TOTAAL INCL. BTW 11.423,45 EUR"),
            ("Ref. XHT12,50", "Ref. XHT12,50"),
            ("TOTALFACTURA1.234,56", "TOTALFACTURA 1.234,56"),
            ("TOTAL4599.96", "TOTAL 4599.96"),
            ("MONTANTTTC-1 141,94", "MONTANTTTC -1 141,94"),
            ("Factura FV24/002055", "Factura FV24/002055"),
            ("Papel A4 12,00", "Papel A4 12,00"),
            ("Nº INV-0042.10", "Nº INV-0042.10"),
            ("Ref ABCD123", "Ref ABCD123"),
        ];
        for (line, want) in cases {
            assert_eq!(unglue(line), want, "{line}");
        }
        let layout = Layout::new("                SUMME BRUTTO12.341,78 €");
        let line = &layout.lines[0];
        assert_eq!(line.labels().len(), 1, "{:?}", line.labels());
        let amounts: Vec<String> = line.amounts(0, line.text.len(), None).iter().map(|a| a.value.to_string()).collect();
        assert_eq!(amounts, vec!["12341.78"]);
    }
}
