//! Dates as European invoices print them: `15/10/2025`, `15.10.2025`, `2025-10-15`, `15 de octubre de 2025`,
//! `15. Oktober 2025`, `Oct 15, 2025`, two-digit years.
//!
//! `03/04/2025` is the 3rd of April everywhere we bill except the US. We read it month-first only when the hint
//! is `Locale::EnUs`, which the caller sets when the document itself shows a month-first date such as
//! `11/17/2017`. A date that can only be read one way (`10/15/2025`) is read that way whatever the hint.

use super::{fold, Locale};
use chrono::NaiveDate;
use regex::Regex;
use std::sync::LazyLock;

/// Month names and abbreviations in es/en/de/fr/nl/it/pt, accents folded (see `super::fold`).
const MONTHS: &[(&str, u32)] = &[
    ("enero", 1),
    ("ene", 1),
    ("january", 1),
    ("jan", 1),
    ("januar", 1),
    ("janner", 1),
    ("janvier", 1),
    ("janv", 1),
    ("januari", 1),
    ("gennaio", 1),
    ("janeiro", 1),
    ("febrero", 2),
    ("feb", 2),
    ("february", 2),
    ("februar", 2),
    ("fevrier", 2),
    ("fevr", 2),
    ("fev", 2),
    ("februari", 2),
    ("febbraio", 2),
    ("fevereiro", 2),
    ("marzo", 3),
    ("mar", 3),
    ("march", 3),
    ("marz", 3),
    ("maerz", 3),
    ("mrz", 3),
    ("mars", 3),
    ("maart", 3),
    ("marco", 3),
    ("abril", 4),
    ("abr", 4),
    ("april", 4),
    ("apr", 4),
    ("avril", 4),
    ("avr", 4),
    ("aprile", 4),
    ("mayo", 5),
    ("may", 5),
    ("mai", 5),
    ("mei", 5),
    ("maggio", 5),
    ("maio", 5),
    ("junio", 6),
    ("jun", 6),
    ("june", 6),
    ("juni", 6),
    ("juin", 6),
    ("giugno", 6),
    ("junho", 6),
    ("julio", 7),
    ("jul", 7),
    ("july", 7),
    ("juli", 7),
    ("juillet", 7),
    ("juil", 7),
    ("luglio", 7),
    ("julho", 7),
    ("agosto", 8),
    ("ago", 8),
    ("august", 8),
    ("aug", 8),
    ("aout", 8),
    ("augustus", 8),
    ("septiembre", 9),
    ("setiembre", 9),
    ("sep", 9),
    ("sept", 9),
    ("set", 9),
    ("september", 9),
    ("septembre", 9),
    ("settembre", 9),
    ("setembro", 9),
    ("octubre", 10),
    ("oct", 10),
    ("october", 10),
    ("oktober", 10),
    ("okt", 10),
    ("octobre", 10),
    ("ottobre", 10),
    ("outubro", 10),
    ("out", 10),
    ("noviembre", 11),
    ("nov", 11),
    ("november", 11),
    ("novembre", 11),
    ("novembro", 11),
    ("diciembre", 12),
    ("dic", 12),
    ("december", 12),
    ("dec", 12),
    ("dezember", 12),
    ("dez", 12),
    ("decembre", 12),
    ("dicembre", 12),
    ("dezembro", 12),
];

fn month_number(name: &str) -> Option<u32> {
    let n = fold(name.trim_end_matches('.'));
    MONTHS.iter().find(|(m, _)| *m == n).map(|(_, k)| *k)
}

/// Month names longest first, so the alternation prefers `septiembre` over `sep`. The textual patterns run on
/// the folded line (see `find_dates`), so the folded names are all it needs.
fn month_alternation() -> String {
    let mut names: Vec<&str> = MONTHS.iter().map(|(m, _)| *m).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names.join("|")
}

// ASCII digits and word boundaries: Unicode ones cost most of the compile and match time of these patterns,
// and a date is written in ASCII digits anyway.
static NUMERIC_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)([0-9]{1,2})([./-])([0-9]{1,2})([./-])([0-9]{4}|[0-9]{2})(?-u:\b)")
        .expect("numeric date regex")
});
static ISO_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)([0-9]{4})([-/.])([0-9]{1,2})([-/.])([0-9]{1,2})(?-u:\b)").expect("iso date regex")
});
static DAY_MONTH_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?-u:\b)([0-9]{{1,2}})(?:er|º|°|st|nd|rd|th)?\.?(?:\s+de\s+|\s*[-/\s]\s*)({})\.?(?:\s+de\s+|\s+del\s+|\s*[-/,]\s*|\s+)([0-9]{{4}}|[0-9]{{2}})(?-u:\b)",
        month_alternation()
    ))
    .expect("textual date regex")
});
static MONTH_DAY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?-u:\b)({})\.?\s+([0-9]{{1,2}})(?:st|nd|rd|th)?,?\s+([0-9]{{4}})(?-u:\b)",
        month_alternation()
    ))
    .expect("month-first date regex")
});

/// Does the folded line have a word that is a month name? Only then are the textual patterns worth running
/// (and compiling: the extractor is a fresh process per document).
fn has_month_word(folded: &str) -> bool {
    folded.split(|c: char| !c.is_alphabetic()).any(|w| w.len() >= 3 && MONTHS.iter().any(|(m, _)| *m == w))
}

/// A date found inside a line, with its byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateMatch {
    pub start: usize,
    pub end: usize,
    pub date: NaiveDate,
    /// Printed as `dd/dd/yyyy` with both parts ≤ 12, so the reading depended on the hint.
    pub ambiguous: bool,
}

/// Parse a whole string as a date (surrounding spaces and a trailing `.` or `,` are allowed).
pub fn parse_date(s: &str, hint: Option<Locale>) -> Option<NaiveDate> {
    let t = s.trim().trim_end_matches(['.', ',']).trim();
    find_dates(t, hint).into_iter().find(|m| m.start == 0 && m.end == t.len()).map(|m| m.date)
}

/// Every date in `line`, left to right, without overlaps.
pub fn find_dates(line: &str, hint: Option<Locale>) -> Vec<DateMatch> {
    let month_first = hint.is_some_and(Locale::month_first);
    let mut found: Vec<DateMatch> = Vec::new();
    for c in ISO_RE.captures_iter(line) {
        let m = c.get(0).expect("match");
        if c[2] != c[4] || continues_number(line, m.start(), m.end()) {
            continue;
        }
        if let Some(date) = ymd(num(&c[1]), num(&c[3]), num(&c[5])) {
            found.push(DateMatch { start: m.start(), end: m.end(), date, ambiguous: false });
        }
    }
    for c in NUMERIC_RE.captures_iter(line) {
        let m = c.get(0).expect("match");
        if c[2] != c[4] || continues_number(line, m.start(), m.end()) {
            continue;
        }
        let (a, b, y) = (num(&c[1]), num(&c[3]), year(&c[5]));
        let (day, month, ambiguous) = match (a > 12, b > 12) {
            (true, false) => (a, b, false),
            (false, true) => (b, a, false),
            (false, false) if month_first => (b, a, a != b),
            (false, false) => (a, b, a != b),
            (true, true) => continue,
        };
        if let Some(date) = ymd(y, month, day) {
            found.push(DateMatch { start: m.start(), end: m.end(), date, ambiguous });
        }
    }
    if line.chars().any(char::is_alphabetic) {
        let (folded, map) = super::fold_mapped(line);
        if has_month_word(&folded) {
            for c in DAY_MONTH_RE.captures_iter(&folded) {
                let m = c.get(0).expect("match");
                if let Some(date) = month_number(&c[2]).and_then(|mo| ymd(year(&c[3]), mo, num(&c[1]))) {
                    found.push(DateMatch { start: map[m.start()], end: map[m.end()], date, ambiguous: false });
                }
            }
            for c in MONTH_DAY_RE.captures_iter(&folded) {
                let m = c.get(0).expect("match");
                if let Some(date) = month_number(&c[1]).and_then(|mo| ymd(year(&c[3]), mo, num(&c[2]))) {
                    found.push(DateMatch { start: map[m.start()], end: map[m.end()], date, ambiguous: false });
                }
            }
        }
    }
    found.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
    let mut out: Vec<DateMatch> = Vec::new();
    for m in found {
        if out.last().is_none_or(|last| m.start >= last.end) {
            out.push(m);
        }
    }
    out
}

/// `1.2.2024.5` or `01.234.567.8`: digits or separators right outside the match belong to another token.
fn continues_number(line: &str, start: usize, end: usize) -> bool {
    let before = line[..start].chars().next_back();
    let after: Vec<char> = line[end..].chars().take(2).collect();
    let sep_then_digit =
        matches!(after.first(), Some('.' | '/' | '-' | ',')) && after.get(1).is_some_and(|c| c.is_ascii_digit());
    before.is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | '/')) || sep_then_digit
}

fn num(s: &str) -> u32 {
    s.parse().unwrap_or(0)
}

/// Two-digit years pivot at 70: `25` is 2025, `97` is 1997.
fn year(s: &str) -> i32 {
    let y: i32 = s.parse().unwrap_or(0);
    match s.len() {
        2 if y < 70 => 2000 + y,
        2 => 1900 + y,
        _ => y,
    }
}

fn ymd(y: impl TryInto<i32>, m: u32, d: u32) -> Option<NaiveDate> {
    let y: i32 = y.try_into().ok()?;
    if !(1950..=2100).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Which way round the document writes `dd/dd/yyyy`: month-first when some date only makes sense that way
/// (`11/17/2017`) and none only makes sense day-first.
pub fn document_is_month_first(text: &str) -> bool {
    let (dmy, mdy) = date_order_votes(text);
    mdy > 0 && dmy == 0
}

/// How many numeric dates can only be day-first (`25/08/2020`) and how many only month-first (`8/25/2020`).
pub fn date_order_votes(text: &str) -> (usize, usize) {
    let (mut dmy, mut mdy) = (0, 0);
    for c in NUMERIC_RE.captures_iter(text) {
        if c[2] != c[4] || c[2].eq(".") {
            continue;
        }
        match (num(&c[1]) > 12, num(&c[3]) > 12) {
            (true, false) => dmy += 1,
            (false, true) => mdy += 1,
            _ => {}
        }
    }
    (dmy, mdy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn dates_in_every_supported_notation_are_read() {
        let cases: &[(&str, Option<Locale>, NaiveDate)] = &[
            ("15/10/2025", None, ymd(2025, 10, 15)),
            ("15-10-2025", None, ymd(2025, 10, 15)),
            ("15.10.2025", None, ymd(2025, 10, 15)),
            ("2025-10-15", None, ymd(2025, 10, 15)),
            ("10/15/2025", None, ymd(2025, 10, 15)),
            ("10/15/2025", Some(Locale::Es), ymd(2025, 10, 15)),
            ("15 de octubre de 2025", None, ymd(2025, 10, 15)),
            ("1 de Septiembre del 2025", None, ymd(2025, 9, 1)),
            ("15 oct 2025", None, ymd(2025, 10, 15)),
            ("15-oct-25", None, ymd(2025, 10, 15)),
            ("Oct 15, 2025", None, ymd(2025, 10, 15)),
            ("February 17, 2026", None, ymd(2026, 2, 17)),
            ("15 October 2025", None, ymd(2025, 10, 15)),
            ("15. Oktober 2025", None, ymd(2025, 10, 15)),
            ("24. Januar 2014", None, ymd(2014, 1, 24)),
            ("11. Juli 2014", None, ymd(2014, 7, 11)),
            ("3. März 2024", None, ymd(2024, 3, 3)),
            ("15 octobre 2025", None, ymd(2025, 10, 15)),
            ("1er février 2025", None, ymd(2025, 2, 1)),
            ("15 oktober 2025", None, ymd(2025, 10, 15)),
            ("15/10/25", None, ymd(2025, 10, 15)),
            ("26.10.22", None, ymd(2022, 10, 26)),
            ("02/17/26", None, ymd(2026, 2, 17)),
            ("31/12/97", None, ymd(1997, 12, 31)),
        ];
        for (input, hint, want) in cases {
            assert_eq!(parse_date(input, *hint), Some(*want), "{input}");
        }
    }

    #[test]
    fn an_ambiguous_slash_date_is_day_first_unless_the_document_is_american() {
        assert_eq!(parse_date("03/04/2025", None), Some(ymd(2025, 4, 3)));
        assert_eq!(parse_date("03/04/2025", Some(Locale::Es)), Some(ymd(2025, 4, 3)));
        assert_eq!(parse_date("03/04/2025", Some(Locale::EnUs)), Some(ymd(2025, 3, 4)));
    }

    #[test]
    fn impossible_dates_are_rejected() {
        for s in ["32/01/2025", "29/02/2025", "15/13/2025", "2025-13-01", "13/13/2025", "31 febrero 2025", "1.234,56"] {
            assert_eq!(parse_date(s, None), None, "{s}");
        }
    }

    #[test]
    fn dates_are_found_inside_a_line_with_their_position() {
        let line = "Rechnung # RE-20140519/499 vom 19.05.2014, Tel 01.234.567.8";
        let found = find_dates(line, None);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].date, ymd(2014, 5, 19));
        assert_eq!(&line[found[0].start..found[0].end], "19.05.2014");
    }

    #[test]
    fn a_document_with_a_month_first_date_is_month_first() {
        assert!(document_is_month_first("Invoice Date 11/03/2017 ... paid 11/17/2017"));
        assert!(!document_is_month_first("Fecha 11/03/2017 ... vencimiento 25/03/2017"));
        assert!(!document_is_month_first("Fecha 11/03/2017"));
    }
}
