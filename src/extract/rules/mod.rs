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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_drops_accents_and_case() {
        assert_eq!(fold("Fällig Échéance NÚMERO"), "fallig echeance numero");
    }

    #[test]
    fn only_english_writes_a_decimal_point() {
        assert_eq!(Locale::En.decimal_separator(), '.');
        assert_eq!(Locale::Es.decimal_separator(), ',');
        assert_eq!(Locale::De.decimal_separator(), ',');
    }
}
