//! Does the page show a given value? The e-invoice cross-check asks this of the XML's invoice number, issue date
//! and total before it reads the whole page: a page that prints all three agrees with its XML, and finding a
//! known value costs a fraction of reading every field. A value not found proves nothing yet (it may be printed
//! in a way these lookups do not try); the caller then reads the page fully and compares what it finds.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::dates::find_dates;
use super::numbers::find_amounts;
use super::Locale;

/// The invoice number on some line, compared without spaces, punctuation or case (`RE-2020/508` is `re 2020 508`),
/// and not as part of a longer number: `4711` is not shown by `47110`.
pub fn number(text: &str, number: &str) -> bool {
    let key = compact(number);
    if key.is_empty() {
        return false;
    }
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    let starts_digit = digit(key.chars().next());
    let ends_digit = digit(key.chars().last());
    text.lines().map(compact_line).any(|line| {
        line.match_indices(&key).any(|(at, _)| {
            let before = line[..at].chars().next_back();
            let after = line[at + key.len()..].chars().next();
            let glued = starts_digit && digit(before) || ends_digit && digit(after);
            !glued
        })
    })
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

/// A line compacted like a number, except that white space between two digits stays a boundary (`|`): the
/// columns `4711   2` are two numbers, not `47112`.
fn compact_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut gap = false;
    for c in line.chars() {
        if c.is_alphanumeric() {
            if gap && c.is_ascii_digit() && out.ends_with(|p: char| p.is_ascii_digit()) {
                out.push('|');
            }
            out.extend(c.to_uppercase());
            gap = false;
        } else if c.is_whitespace() {
            gap = true;
        }
    }
    out
}

/// The date on some line, day-first or month-first.
pub fn date(text: &str, date: NaiveDate) -> bool {
    text.lines().filter(|l| l.chars().any(|c| c.is_ascii_digit())).any(|line| {
        [None, Some(Locale::EnUs)].into_iter().any(|hint| find_dates(line, hint).iter().any(|m| m.date == date))
    })
}

/// The amount on some line, with a decimal comma or a decimal point, and with either sign: a credit note prints
/// `-233,47` where its XML says 233.47.
pub fn amount(text: &str, amount: Decimal) -> bool {
    let want = amount.abs();
    text.lines().filter(|l| l.chars().any(|c| c.is_ascii_digit())).any(|line| {
        [Locale::Es, Locale::En]
            .into_iter()
            .any(|hint| find_amounts(line, Some(hint)).iter().any(|m| m.value.abs() == want))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const PAGE: &str = "\
        Rechnung Nr. RE-2020/508                 Datum: 20.06.2020\n\
        Artikel 4711   2 Stk   je 12,50 €\n\
        Gesamtbetrag                              1.234,56 EUR\n\
        Gutschrift zu Beleg 99           Betrag   -233,47\n\
        Invoice date 11/17/2017   Total USD 2,000.00\n";

    #[test]
    fn the_number_is_found_without_punctuation_and_not_inside_a_longer_number() {
        let cases = [
            ("RE-2020/508", true),
            ("re 2020 508", true),
            ("RE2020508", true),
            ("4711", true),
            ("471", false),
            ("711", false),
            ("RE-2020/509", false),
            ("", false),
        ];
        for (n, want) in cases {
            assert_eq!(number(PAGE, n), want, "{n}");
        }
    }

    #[test]
    fn the_date_is_found_day_first_or_month_first() {
        let d = |s: &str| NaiveDate::from_str(s).unwrap();
        assert!(date(PAGE, d("2020-06-20")));
        assert!(date(PAGE, d("2017-11-17")));
        assert!(!date(PAGE, d("2020-06-21")));
    }

    #[test]
    fn the_amount_is_found_in_either_notation_and_with_either_sign() {
        let a = |s: &str| Decimal::from_str(s).unwrap();
        assert!(amount(PAGE, a("1234.56")));
        assert!(amount(PAGE, a("2000.00")));
        assert!(amount(PAGE, a("2000")));
        assert!(amount(PAGE, a("233.47")));
        assert!(amount(PAGE, a("-233.47")));
        assert!(amount(PAGE, a("12.50")));
        assert!(!amount(PAGE, a("1334.56")));
        assert!(!amount(PAGE, a("1234.65")));
    }
}
