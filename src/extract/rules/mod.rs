//! Pure rules that read invoice fields out of laid-out text: no I/O, no globals that change, every function
//! table-tested on strings. `extract::text::read_invoice_text` strings them together.
//!
//! - `numbers`, `dates`: locale-aware parsing of amounts and dates (never via f64).
//! - `taxid`, `iban`: identifiers as newtypes that only exist once their checksum held.
//! - `layout`: lines of `pdftotext -layout` text cut into column segments, so a value can be looked up to the right
//!   of its label or under it.
//! - `labels`: the words that name a field in es/en/de/fr/nl.
//! - `totals`: picks net/tax/total/amount due among labelled candidates so that they add up.
//! - `header`, `parties`, `doctype`, `currency`, `items`: the other fields.

pub mod currency;
pub mod dates;
pub mod doctype;
pub mod header;
pub mod iban;
pub mod items;
pub mod labels;
pub mod layout;
pub mod numbers;
pub mod parties;
pub mod taxid;
pub mod totals;

/// How a document writes numbers and dates. Only two things depend on it: which of `.` and `,` is the decimal
/// separator, and whether `03/04/2025` is the 3rd of April (everyone) or March 4th (`EnUs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Locale {
    Es,
    En,
    /// English with month-first dates: only chosen when the document itself shows a date like `11/17/2017`.
    EnUs,
    De,
    Fr,
    Nl,
    It,
    Pt,
}

impl Locale {
    /// The decimal separator the locale writes: everyone in continental Europe writes `1.234,56`.
    pub fn decimal_separator(self) -> char {
        match self {
            Locale::En | Locale::EnUs => '.',
            _ => ',',
        }
    }

    pub fn month_first(self) -> bool {
        self == Locale::EnUs
    }
}

/// Remove diacritics and lower-case, so labels and month names match however they were typed (`Fällig` →
/// `fallig`, `Échéance` → `echeance`). Keeps one char per input char so positions stay valid for ASCII input.
pub fn fold(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfd().filter(|c| !unicode_normalization::char::is_combining_mark(*c)).flat_map(char::to_lowercase).collect()
}

/// One char folded the way `fold` folds it, but always to exactly one char (`İ` → `i`), so a folded line can
/// be mapped back to the original byte for byte.
pub fn fold_char(c: char) -> char {
    use unicode_normalization::UnicodeNormalization;
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let base = std::iter::once(c).nfd().find(|d| !unicode_normalization::char::is_combining_mark(*d)).unwrap_or(c);
    base.to_lowercase().next().unwrap_or(base)
}

/// `s` folded char by char (see `fold_char`), with the original byte offset of every folded byte offset (and
/// one more entry for the end), so a match in the folded text can be reported in the original.
pub fn fold_mapped(s: &str) -> (String, Vec<usize>) {
    let mut folded = String::with_capacity(s.len());
    let mut map = Vec::with_capacity(s.len() + 1);
    for (at, c) in s.char_indices() {
        let f = fold_char(c);
        folded.push(f);
        map.extend(std::iter::repeat_n(at, f.len_utf8()));
    }
    map.push(s.len());
    (folded, map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_drops_accents_and_case() {
        assert_eq!(fold("Fällig Échéance NÚMERO"), "fallig echeance numero");
    }

    #[test]
    fn folding_char_by_char_maps_back_to_the_original_bytes() {
        let (f, map) = fold_mapped("Nº Fällig İx");
        assert_eq!(f, "nº fallig ix");
        let at = f.find("fallig").unwrap();
        assert_eq!(map[at], "Nº ".len());
        assert_eq!(map[at + "fallig".len()], "Nº Fällig".len());
        assert_eq!(map[f.len()], "Nº Fällig İx".len());
    }

    #[test]
    fn only_english_writes_a_decimal_point() {
        assert_eq!(Locale::En.decimal_separator(), '.');
        assert_eq!(Locale::Es.decimal_separator(), ',');
        assert_eq!(Locale::De.decimal_separator(), ',');
    }
}
