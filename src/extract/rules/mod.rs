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
//! - `shown`: whether the page prints a known value (the e-invoice cross-check).

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
pub mod shown;
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

/// Unicode's white space beyond ASCII: what `\s` meant under the `regex` crate's Unicode mode. PDFs print
/// no-break and thin spaces inside amounts and between a currency sign and its number.
const WIDE_SPACES: &str = r"\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}";

/// Compile one of the rules' patterns with `regex_lite`.
///
/// The extractor is a fresh process per document (it runs in the jail), so every pattern is compiled once per
/// document, and the `regex` crate spends up to a millisecond building its engines for each one: that was most of
/// the text reader's time. `regex_lite` compiles in microseconds but searches with a plain PikeVM, so the split
/// is by use: the few patterns that run over every line (amounts, numeric dates, IBANs, tax IDs) stay on
/// `regex`, whose fast search pays for its compile; the label, title and name patterns, most of which a
/// document compiles and tries on a handful of lines, use this. Reading one German invoice page in a fresh
/// process took 26–31 ms with `regex` alone and 10–15 ms split like this (callgrind: 86 M instructions with
/// `regex_lite` alone, 53 M split).
///
/// `regex_lite`'s classes and word boundaries are ASCII, which is what these patterns want: they run on folded
/// text. Only `\s` and `\S` are widened back to Unicode white space here, so a no-break space still separates
/// `1.234,56\u{a0}€`. Letters beyond ASCII (`\p{L}`) are tested in code, not in patterns.
pub fn regex(pattern: &str) -> regex_lite::Regex {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('s') if in_class => out.push_str(&format!(r"\s{WIDE_SPACES}")),
                Some('s') => out.push_str(&format!(r"[\s{WIDE_SPACES}]")),
                Some('S') if !in_class => out.push_str(&format!(r"[^\s{WIDE_SPACES}]")),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` or `^]` right after the opening bracket is a literal, not the end of the class.
                let rest = chars.as_str();
                let skip = if rest.starts_with("^]") { 2 } else { usize::from(rest.starts_with(']')) };
                for _ in 0..skip {
                    out.extend(chars.next());
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    regex_lite::Regex::new(&out).unwrap_or_else(|e| panic!("pattern {pattern}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_patterns_treat_unicode_spaces_as_spaces_and_keep_ascii_classes() {
        let cases: &[(&str, &str, bool)] = &[
            (r"^a\sb$", "a\u{a0}b", true),
            (r"^a\sb$", "a\u{202f}b", true),
            (r"^a\sb$", "a b", true),
            (r"^a[\s,]b$", "a\u{a0}b", true),
            (r"^a[\s,]b$", "a,b", true),
            (r"^a\Sb$", "a\u{a0}b", false),
            (r"^a\Sb$", "axb", true),
            (r"^[]x]$", "]", true),
            (r"^[^]x]$", "y", true),
            (r"^[^]x]$", "]", false),
            (r"^\[\s\]$", "[ ]", true),
            (r"\bfallig\b", "f\u{e4}llig", false),
            (r"^[0-9]+$", "\u{661}", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(regex(pattern).is_match(text), *want, "{pattern} on {text:?}");
        }
    }

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
