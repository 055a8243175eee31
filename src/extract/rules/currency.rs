//! The invoice currency, from what the page shows: a labelled currency (`Moneda: EUR`, `Währung: GBP`), else
//! the symbols and ISO codes printed with the amounts.
//!
//! Decision: when the page shows no currency at all we return `None`; the caller may then assume EUR only if the
//! supplier's tax ID is from a euro-area country and the document does show amounts (see `text`), with a
//! lower confidence. We never assume a currency for a document without amounts.

use super::labels::Field;
use super::layout::Layout;
use regex_lite::Regex;
use std::sync::LazyLock;

const CODES: &[&str] = &[
    "EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "RON", "BGN", "JPY", "CAD", "AUD", "MXN",
    "DEM", "MYR", "INR",
];

static CODE_RE: LazyLock<Regex> = LazyLock::new(|| super::regex(&format!(r"\b(?:{})\b", CODES.join("|"))));

/// `RM` (ringgit) and `Rs`/`Rs.` (rupee) are also ordinary letters (`RM` a room, `Rs` an abbreviation): they only
/// count printed right before an amount (`RM 12.50`, `Rs.120`), never alone.
static SHORT_RE: LazyLock<Regex> = LazyLock::new(|| super::regex(r"(?:^|[^A-Za-z0-9])(RM|Rs\.?)\s?[0-9]"));

fn short_code(s: &str) -> Option<&'static str> {
    let caps = SHORT_RE.captures(s)?;
    Some(if caps.get(1)?.as_str() == "RM" { "MYR" } else { "INR" })
}

/// Countries whose currency is the euro (for the fallback described above).
pub const EURO_COUNTRIES: &[&str] = &[
    "AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PT", "SI",
    "SK",
];

fn code_in(s: &str) -> Option<&'static str> {
    if let Some(m) = CODE_RE.find(s) {
        return CODES.iter().copied().find(|c| *c == m.as_str());
    }
    let upper = s.to_uppercase();
    if upper.contains("EURO") {
        return Some("EUR");
    }
    symbol_code(s).or_else(|| short_code(s))
}

fn symbol_code(s: &str) -> Option<&'static str> {
    if s.contains('€') {
        Some("EUR")
    } else if s.contains('£') {
        Some("GBP")
    } else if s.contains('$') {
        Some("USD")
    } else if s.contains('₹') {
        Some("INR")
    } else {
        None
    }
}

/// The currency and how sure we are of it.
pub fn detect(layout: &Layout) -> Option<(&'static str, f32)> {
    for (i, line) in layout.lines.iter().enumerate() {
        for hit in line.labels().iter().filter(|h| h.field == Field::Currency) {
            let right = &line.text[hit.end..];
            let right = right.split("  ").map(str::trim).find(|s| !s.is_empty() && *s != ":").unwrap_or("");
            let right = right.trim_start_matches(':').trim();
            if let Some(code) = code_in(right.split_whitespace().take(3).collect::<Vec<_>>().join(" ").as_str()) {
                return Some((code, 0.95));
            }
            let next = layout.lines.get(i + 1).map(|l| l.text.trim()).unwrap_or("");
            if next.len() <= 5 {
                if let Some(code) = code_in(next) {
                    return Some((code, 0.9));
                }
            }
        }
    }
    // Otherwise count the markers: codes and symbols touching amounts or alone in a column.
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for line in &layout.lines {
        for m in CODE_RE.find_iter(&line.text) {
            bump(&mut counts, CODES.iter().copied().find(|c| *c == m.as_str()).expect("listed"));
        }
        for c in line.text.chars() {
            if let Some(code) = symbol_code(&c.to_string()) {
                bump(&mut counts, code);
            }
        }
        for caps in SHORT_RE.captures_iter(&line.text) {
            bump(&mut counts, if &caps[1] == "RM" { "MYR" } else { "INR" });
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    match counts.as_slice() {
        [] => None,
        [(code, _)] => Some((code, 0.9)),
        [(code, n), (_, m), ..] if *n >= 3 * m => Some((code, 0.8)),
        [(code, _), ..] => Some((code, 0.55)),
    }
}

fn bump(counts: &mut Vec<(&'static str, usize)>, code: &'static str) {
    match counts.iter_mut().find(|(c, _)| *c == code) {
        Some(e) => e.1 += 1,
        None => counts.push((code, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(text: &str) -> Option<&'static str> {
        detect(&Layout::new(text)).map(|(c, _)| c)
    }

    #[test]
    fn a_labelled_currency_wins_over_symbols() {
        assert_eq!(cur("Währung:   GBP\nSteuerbetrag in EUR 183,14\nTotal 12,00 €"), Some("GBP"));
        assert_eq!(cur("Moneda: Euro\nTotal 12,00"), Some("EUR"));
    }

    #[test]
    fn symbols_and_codes_next_to_amounts_give_the_currency() {
        assert_eq!(cur("Total 1.210,00 €"), Some("EUR"));
        assert_eq!(cur("Total £120.00"), Some("GBP"));
        assert_eq!(cur("Total Amount (USD) 37.00"), Some("USD"));
    }

    #[test]
    fn ringgit_and_rupee_markers_count_only_beside_an_amount() {
        assert_eq!(cur("TOTAL        RM 12.50\nCASH         RM 20.00"), Some("MYR"));
        assert_eq!(cur("Total  RM12.50"), Some("MYR"));
        assert_eq!(cur("Grand Total  Rs. 1,250.00"), Some("INR"));
        assert_eq!(cur("Total Rs 480.00"), Some("INR"));
        assert_eq!(cur("Net payable ₹ 1,180.00"), Some("INR"));
        assert_eq!(cur("Total Amount (INR) 90.00"), Some("INR"));
        assert_eq!(cur("Currency: MYR\nTotal 10.00"), Some("MYR"));
        // The letters alone, or inside a word, are no currency.
        assert_eq!(cur("Meeting RM Level 3\nTotal 12.50"), None);
        assert_eq!(cur("Mrs. Lee\nHRS 12\nTotal 12.50"), None);
        assert_eq!(cur("FORM 12.50"), None);
    }

    #[test]
    fn no_marker_means_no_currency() {
        assert_eq!(cur("Total 1.210,00"), None);
    }
}
