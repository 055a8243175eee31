//! Supplier memory: where a supplier prints a field, learnt from one correction, read first on its next
//! invoices. What invoice2data needs a hand-written template for comes from an accountant fixing one value.
//!
//! A hint names the label printed before the value (or above it, in a table), the column, and the value's shape
//! (letters, digits and the punctuation between them). Both halves are pure functions of the page text:
//! `learn` finds the corrected value on the page and describes where it sits; `apply` reads the value at that
//! place on a new page. The worker stores hints and hands them to the extractor with the document; the extractor
//! applies a hint only to an invoice of the supplier it was learnt from.

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use crate::extract::rules::dates::parse_date;
use crate::extract::rules::fold;
use crate::extract::rules::numbers::parse_amount;
use crate::extract::Extraction;

/// The `confidence` a field read through a hint gets, and the name its source is reported under.
const HINT_CONFIDENCE: f32 = 0.9;
pub const SOURCE: &str = "supplier_memory";
/// Fields a hint can read.
pub const FIELDS: &[&str] =
    &["invoice_number", "issue_date", "due_date", "net_amount", "tax_amount", "total_amount", "amount_due"];

/// Where one supplier prints one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldHint {
    /// Whose layout it is: the supplier key of the ledger (`tax:…`, `name:…` or `sender:…`).
    pub supplier: String,
    pub field: String,
    /// The label as printed, folded (lower-case, no accents), without its trailing colon.
    pub label: String,
    /// The value is on a line below the label, in its column, rather than after it on the same line.
    pub below: bool,
    /// The label's column (characters from the line's start), to find the value under it.
    pub column: usize,
    /// The value's shape: `A` a run of letters, `9` a run of digits, anything else itself (`FN-9-9`).
    pub pattern: String,
}

/// A correction to learn from: the extractor finds `value` on the page and reports where it sits
/// (`Extraction::learned`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnRequest {
    pub supplier: String,
    pub field: String,
    pub value: String,
}

/// The hints `requests` teach on `text`, for those whose value the page shows.
pub fn learn_all(text: &str, requests: &[LearnRequest]) -> Vec<FieldHint> {
    requests
        .iter()
        .filter(|r| FIELDS.contains(&r.field.as_str()))
        .filter_map(|r| learn(text, &r.supplier, &r.field, &r.value))
        .collect()
}

/// Learn where `value` (the corrected `field`) sits on `text`. `None` when the page does not show it.
pub fn learn(text: &str, supplier: &str, field: &str, value: &str) -> Option<FieldHint> {
    let wanted = compact(value);
    if wanted.is_empty() {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        for (start, token) in tokens(line) {
            if compact(token) != wanted {
                continue;
            }
            let before = line[..start].trim_end();
            let label_chunk = before.rsplit("  ").next().unwrap_or("").trim();
            if !label_chunk.is_empty() && label_chunk.chars().any(char::is_alphabetic) {
                let column = before.len() - label_chunk.len();
                return Some(hint(supplier, field, label_chunk, false, column, token));
            }
            // A table: the label sits on a line above, over the value's column.
            for above in lines[..i].iter().rev().take(3) {
                if let Some((col, label)) = chunk_at(above, start) {
                    return Some(hint(supplier, field, label, true, col, token));
                }
            }
        }
    }
    None
}

fn hint(supplier: &str, field: &str, label: &str, below: bool, column: usize, token: &str) -> FieldHint {
    FieldHint {
        supplier: supplier.to_string(),
        field: field.to_string(),
        label: fold(label).trim_end_matches([':', '.', ' ']).trim().to_string(),
        below,
        column,
        pattern: shape(token),
    }
}

/// Read the fields `hints` describe from `text`, for the hints of this invoice's supplier. A value found
/// replaces what the general rules read, and its source is recorded as `supplier_memory`.
pub fn apply(e: &mut Extraction, text: &str, hints: &[FieldHint]) {
    let mine: Vec<&FieldHint> = hints.iter().filter(|h| same_supplier(e, &h.supplier)).collect();
    for h in mine {
        let Some(raw) = read(text, h) else { continue };
        let set = match h.field.as_str() {
            "invoice_number" => {
                e.invoice_number = Some(raw.clone());
                e.invoice_series = None;
                true
            }
            "issue_date" | "due_date" => match parse_date(&raw, None) {
                Some(d) => {
                    *if h.field == "issue_date" { &mut e.issue_date } else { &mut e.due_date } = Some(d);
                    true
                }
                None => false,
            },
            "net_amount" | "tax_amount" | "total_amount" | "amount_due" => match parse_amount(&raw, None) {
                Some(a) => {
                    *match h.field.as_str() {
                        "net_amount" => &mut e.net_amount,
                        "tax_amount" => &mut e.tax_amount,
                        "total_amount" => &mut e.total_amount,
                        _ => &mut e.amount_due,
                    } = Some(a);
                    true
                }
                None => false,
            },
            _ => false,
        };
        if set {
            e.confidence.get_or_insert_with(Default::default).insert(h.field.clone(), HINT_CONFIDENCE);
            e.field_sources
                .get_or_insert_with(Default::default)
                .insert(h.field.clone(), crate::extract::Source::SupplierMemory);
        }
    }
}

/// Whether the invoice is from the supplier a hint was learnt from. A hint keyed by the sender's address was
/// only handed over for mail from that address, so it applies.
fn same_supplier(e: &Extraction, key: &str) -> bool {
    let supplier = e.supplier.as_ref();
    if let Some(tax) = key.strip_prefix("tax:") {
        let read = supplier.and_then(|s| s.tax_id.as_deref()).and_then(crate::extract::normalize::normalize_tax_id);
        return read.as_deref() == Some(tax);
    }
    if let Some(name) = key.strip_prefix("name:") {
        let read = supplier.and_then(|s| s.name.as_deref()).and_then(crate::extract::normalize::normalize_name);
        return read.as_deref() == Some(name);
    }
    key.starts_with("sender:")
}

/// The value at the hint's place on `text`, as printed.
fn read(text: &str, h: &FieldHint) -> Option<String> {
    let re = pattern_regex(&h.pattern)?;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let folded = fold(line);
        // Folding keeps one char per char, but not always one byte per byte: work in chars.
        let Some(at) = folded.find(&h.label) else { continue };
        let label_col = folded[..at].chars().count();
        if !h.below {
            let after_col = label_col + h.label.chars().count();
            let rest: String = line.chars().skip(after_col).collect();
            let rest = rest.trim_start_matches([':', '.', ' ', '#', '\t']);
            let token = rest.split_whitespace().next()?;
            if let Some(v) = whole_match(&re, token) {
                return Some(v);
            }
            continue;
        }
        for below in lines.iter().skip(i + 1).take(3) {
            let byte_col = below.char_indices().nth(label_col).map(|(b, _)| b);
            let Some(col) = byte_col else { continue };
            if let Some((_, chunk)) = chunk_at(below, col) {
                if let Some(v) = chunk.split_whitespace().find_map(|t| whole_match(&re, t)) {
                    return Some(v);
                }
            }
        }
    }
    None
}

fn whole_match(re: &Regex, token: &str) -> Option<String> {
    let token = token.trim_end_matches([',', ';']);
    re.find(token).filter(|m| m.start() == 0 && m.end() == token.len()).map(|m| m.as_str().to_string())
}

/// `FN-2025-0042` → `A-9-9`.
fn shape(token: &str) -> String {
    let mut out = String::new();
    for c in token.chars() {
        let s = if c.is_ascii_digit() {
            '9'
        } else if c.is_alphabetic() {
            'A'
        } else {
            c
        };
        if !(matches!(s, 'A' | '9') && out.ends_with(s)) {
            out.push(s);
        }
    }
    out
}

fn pattern_regex(pattern: &str) -> Option<Regex> {
    let mut re = String::new();
    for c in pattern.chars() {
        match c {
            // regex-lite has no Unicode classes: ASCII and Latin-1 letters are what invoice numbers use.
            'A' => re.push_str("[A-Za-zÀ-ÖØ-öø-ÿ]+"),
            '9' => re.push_str("[0-9]+"),
            other => re.push_str(&regex_lite::escape(&other.to_string())),
        }
    }
    Regex::new(&re).ok()
}

/// The whitespace-separated tokens of a line with their byte offsets.
fn tokens(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split_whitespace().map(move |t| (t.as_ptr() as usize - line.as_ptr() as usize, t))
}

/// The chunks of `line`: text separated by runs of two or more spaces, as byte ranges.
fn chunks(line: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            continue;
        }
        match start {
            Some(s) if i > end + 1 => {
                out.push((s, end));
                start = Some(i);
            }
            None => start = Some(i),
            _ => {}
        }
        end = i + c.len_utf8();
    }
    if let Some(s) = start {
        out.push((s, end));
    }
    out
}

/// The chunk of `line` that covers byte column `col` (or starts within a few columns of it), with its start.
fn chunk_at(line: &str, col: usize) -> Option<(usize, &str)> {
    let cs = chunks(line);
    let (s, e) =
        cs.iter().find(|(s, e)| (*s..*e).contains(&col)).or_else(|| cs.iter().find(|(s, _)| s.abs_diff(col) <= 3))?;
    Some((*s, &line[*s..*e]))
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Party;

    const PAGE: &str = "Suministros Norte S.L.                    FACTURA
Calle Mayor 12                            Ref. de cargo: EXP-2025/0017
NIF: B12345674                            Fecha: 15/10/2025
";

    const TABLE: &str = "EMISOR                    CLIENTE
Expediente      Fecha        Vencimiento
X-77/B          15/10/2025   14/11/2025
";

    fn invoice_from(tax_id: &str) -> Extraction {
        let mut e = Extraction::empty("f.pdf");
        e.supplier = Some(Party { tax_id: Some(tax_id.into()), ..Default::default() });
        e
    }

    #[test]
    fn a_label_learnt_from_one_page_reads_the_next() {
        let h = learn(PAGE, "tax:B12345674", "invoice_number", "EXP-2025/0017").unwrap();
        assert_eq!((h.label.as_str(), h.below, h.pattern.as_str()), ("ref. de cargo", false, "A-9/9"));
        let next = PAGE.replace("EXP-2025/0017", "EXP-2026/0123");
        let mut e = invoice_from("ESB12345674");
        apply(&mut e, &next, std::slice::from_ref(&h));
        assert_eq!(e.invoice_number.as_deref(), Some("EXP-2026/0123"));
        assert_eq!(e.field_sources.unwrap()["invoice_number"], crate::extract::Source::SupplierMemory);
        // Another supplier's invoice is not read with this supplier's hint.
        let mut other = invoice_from("A58818501");
        apply(&mut other, &next, &[h]);
        assert_eq!(other.invoice_number, None);
    }

    #[test]
    fn a_value_under_its_label_is_learnt_as_a_column() {
        let h = learn(TABLE, "sender:a@b", "invoice_number", "X-77/B").unwrap();
        assert_eq!((h.label.as_str(), h.below), ("expediente", true));
        let mut e = Extraction::empty("f.pdf");
        apply(&mut e, &TABLE.replace("X-77/B", "Y-81/C"), &[h]);
        assert_eq!(e.invoice_number.as_deref(), Some("Y-81/C"));
    }

    #[test]
    fn a_value_the_page_does_not_show_teaches_nothing() {
        assert_eq!(learn(PAGE, "sender:a@b", "invoice_number", "NOPE-1"), None);
    }
}
