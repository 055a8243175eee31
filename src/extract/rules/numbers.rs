//! Amounts as printed on European invoices, parsed into `Decimal` without ever touching a float.
//!
//! The hard case is a single separator followed by three digits: `1.210` is one thousand two hundred and ten in
//! Spain and Germany but one point two one in England. We decide it with the document's locale (the caller
//! measures which separator the document uses for decimals, see `text::profile`); without a locale we refuse to
//! guess and return `None`, except for `0.025`-style values where a thousands reading is impossible.

use super::Locale;
use regex::Regex;
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::LazyLock;

/// ISO 4217 codes and symbols we strip around an amount. The list only needs the currencies suppliers bill in.
const CURRENCY_WORDS: &[&str] = &[
    "EUR", "EURO", "EUROS", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "RON", "BGN", "JPY", "CAD",
    "AUD", "MXN", "DEM", "MYR", "INR", "RM", "RS.", "RS",
];
const CURRENCY_SYMBOLS: &[char] = &['€', '$', '£', '¥', '₹'];

/// Parse one amount such as `1.234,56`, `1,234.56`, `1 234,56`, `1'234.56`, `-12,00`, `(12.00)`, `12,00 €`,
/// `€ 1.210,00`, `EUR 1,210.00` or `12,00-`. `hint` settles `1.210` (see the module comment).
pub fn parse_amount(s: &str, hint: Option<Locale>) -> Option<Decimal> {
    let mut body = s.trim().replace(['−', '–'], "-");
    let mut negative = false;
    if body.starts_with('(') && body.ends_with(')') {
        negative = true;
        body = body[1..body.len() - 1].trim().to_string();
    }
    body = strip_currency(&body);
    if let Some(rest) = body.strip_prefix('-') {
        negative = !negative;
        body = strip_currency(rest.trim());
    } else if let Some(rest) = body.strip_prefix('+') {
        body = strip_currency(rest.trim());
    }
    // German accounting prints credits as `12,00-`.
    if let Some(rest) = body.strip_suffix('-') {
        if !negative {
            negative = true;
            body = rest.trim_end().to_string();
        }
    }
    let value = parse_unsigned(&body, hint)?;
    Some(if negative { -value } else { value })
}

fn strip_currency(s: &str) -> String {
    let mut t = s.trim();
    loop {
        let before = t;
        t = t.trim_matches(|c| CURRENCY_SYMBOLS.contains(&c)).trim();
        for w in CURRENCY_WORDS {
            if t.get(..w.len()).is_some_and(|head| head.eq_ignore_ascii_case(w))
                && !t[w.len()..].starts_with(char::is_alphabetic)
            {
                t = t[w.len()..].trim_start();
            }
            if t.len() >= w.len() {
                let cut = t.len() - w.len();
                if t.is_char_boundary(cut)
                    && t[cut..].eq_ignore_ascii_case(w)
                    && !t[..cut].ends_with(char::is_alphabetic)
                {
                    t = t[..cut].trim_end();
                }
            }
        }
        if t == before {
            return t.to_string();
        }
    }
}

fn is_group_separator(c: char) -> bool {
    matches!(c, '.' | ',' | ' ' | '\'' | '’' | '\u{a0}' | '\u{202f}')
}

/// Digits and separators only; decides which separator (if any) is the decimal one.
fn parse_unsigned(body: &str, hint: Option<Locale>) -> Option<Decimal> {
    if body.is_empty()
        || !body.starts_with(|c: char| c.is_ascii_digit())
        || !body.ends_with(|c: char| c.is_ascii_digit())
        || !body.chars().all(|c| c.is_ascii_digit() || is_group_separator(c))
    {
        return None;
    }
    let seps: Vec<(usize, char)> = body.char_indices().filter(|(_, c)| !c.is_ascii_digit()).collect();
    let Some(&(last_at, last)) = seps.last() else {
        return Decimal::from_str(body).ok();
    };
    let decimals = &body[last_at + last.len_utf8()..];
    let int_part = &body[..last_at];
    let last_is_only_of_its_kind = seps.iter().filter(|(_, c)| *c == last).count() == 1;
    let decimal_sep = match last {
        '.' | ',' if last_is_only_of_its_kind => {
            let other_kinds = seps.len() > 1;
            if decimals.len() != 3 || other_kinds || int_part == "0" {
                Some(last)
            } else {
                // `1.210` / `1,210`: the locale's decimal separator wins; without a locale we do not guess.
                match hint {
                    Some(l) if l.decimal_separator() == last => Some(last),
                    Some(_) => None,
                    None => return None,
                }
            }
        }
        // `3,352,40` or `1.234.56`: OCR read the thousands separator as the decimal one (or the other way
        // round). Two decimals after thousands groups can only be read one way.
        '.' | ',' if decimals.len() == 2 && thousands_digits(&int_part.replace(['.', ','], ".")).is_some() => {
            Some(last)
        }
        _ => None,
    };
    let int_part = if decimal_sep.is_some() && !last_is_only_of_its_kind {
        int_part.replace(['.', ','], ".")
    } else {
        int_part.to_string()
    };
    let int_part = int_part.as_str();
    let (int_part, decimals) = match decimal_sep {
        Some(_) => (int_part, decimals),
        None => (body, ""),
    };
    let digits = thousands_digits(int_part)?;
    let text = if decimals.is_empty() { digits } else { format!("{digits}.{decimals}") };
    Decimal::from_str(&text).ok()
}

/// `1.234.567` → `1234567`, checking that every group after the first has exactly three digits (so `12.34`
/// used as thousands is rejected) and that one kind of separator is used.
fn thousands_digits(int_part: &str) -> Option<String> {
    let mut kinds = int_part.chars().filter(|c| !c.is_ascii_digit());
    if let Some(first) = kinds.next() {
        if kinds.any(|c| c != first) {
            return None;
        }
    }
    let groups: Vec<&str> = int_part.split(|c: char| !c.is_ascii_digit()).collect();
    let ok = groups.iter().enumerate().all(|(i, g)| {
        if i == 0 {
            (1..=3).contains(&g.len()) || groups.len() == 1
        } else {
            g.len() == 3
        }
    });
    ok.then(|| groups.concat())
}

/// A rate such as `21%`, `21 %`, `5,5%`, `19,00 %`, `20.0%`: the percent sign is required.
pub fn parse_percent(s: &str) -> Option<Decimal> {
    let t = s.trim().strip_suffix('%')?.trim();
    let t = t.replace(',', ".");
    Decimal::from_str(&t).ok().map(|d| d.normalize())
}

/// An amount found inside a line, with its byte range.
#[derive(Debug, Clone, PartialEq)]
pub struct AmountMatch {
    pub start: usize,
    pub end: usize,
    pub value: Decimal,
    /// A currency sign or code touches the number: strong evidence that it is money.
    pub has_currency: bool,
    /// Printed with a decimal part (`12,00`), as money usually is; quantities and years are not.
    pub has_decimals: bool,
}

/// A percentage found inside a line.
#[derive(Debug, Clone, PartialEq)]
pub struct PercentMatch {
    pub start: usize,
    pub end: usize,
    pub value: Decimal,
}

static AMOUNT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?P<open>\()?
        (?P<pre>(?:€|\$|£|₹|EUR|USD|GBP|CHF|MYR|INR|\bRM|\bRs\.?)\s?)?
        (?P<sign>[-−+]\s?)?
        (?P<num>[0-9]{1,3}(?:\x20[0-9]{3})+[.,][0-9]{2}|[0-9]{1,3}(?:[.,'’\u{a0}\u{202f}][0-9]{3})+(?:[.,][0-9]+)?|[0-9]+(?:[.,][0-9]+)?)
        (?P<trail>-(?:[\s)]|$))?
        (?P<post>\s?(?:€|\$|£|₹)|\s?(?:EUR|USD|GBP|CHF|MYR|INR)(?-u:\b))?
        (?P<close>\))?
        (?P<pct>\s?%)?",
    )
    .expect("amount regex")
});

/// Every amount in `line`, skipping numbers glued to letters or slashes (`RE-2014/499`, `A4`) and percentages.
/// Dates and IBANs should be blanked out by the caller first (`layout` does it).
pub fn find_amounts(line: &str, hint: Option<Locale>) -> Vec<AmountMatch> {
    let mut out = Vec::new();
    for caps in AMOUNT_RE.captures_iter(line) {
        let whole = caps.get(0).expect("match");
        if caps.name("pct").is_some() {
            continue;
        }
        let num = caps.name("num").expect("num");
        let num_text = num.as_str();
        let has_decimals = match num_text.rfind(['.', ',']) {
            Some(i) => num_text.len() - i - 1 != 3 || parse_amount(num_text, hint).is_some_and(|v| v.scale() > 0),
            None => false,
        };
        let (mut start, mut end) = (whole.start(), whole.end());
        // Parentheses only mean "negative" around money (`(12,00)`), not around an area code `(0123)`.
        let paren = caps.name("open").is_some() && caps.name("close").is_some() && has_decimals;
        if caps.name("open").is_some() && !paren {
            start += 1;
        }
        if caps.name("close").is_some() && !paren {
            end -= 1;
        }
        if glued(line, start, end) {
            continue;
        }
        let text = &line[start..end];
        let text = if caps.name("open").is_some() && !paren { text.trim_start_matches('(') } else { text };
        let Some(value) = parse_amount(text, hint) else {
            continue;
        };
        out.push(AmountMatch {
            start,
            end,
            value,
            has_currency: caps.name("pre").is_some() || caps.name("post").is_some(),
            has_decimals,
        });
    }
    out
}

/// Is the number part of a bigger token (an ID, a date, a product code)? `start..end` is the whole match,
/// sign and currency included.
fn glued(line: &str, start: usize, end: usize) -> bool {
    let mut before = line[..start].chars().rev();
    let mut after = line[end..].chars();
    let (b0, b1) = (before.next(), before.next());
    let (a0, a1) = (after.next(), after.next());
    let glue = |c: char| c.is_alphanumeric() || matches!(c, '/' | '_' | '#' | '@');
    let is_digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    // Spanish `IVA 21% s/1.000,00` ("sobre"): the slash abbreviates a word, it does not glue an ID.
    let sobre = b0 == Some('/') && matches!(b1, Some('s' | 'S'));
    if (b0.is_some_and(glue) && !sobre) || a0.is_some_and(|c| glue(c) && !CURRENCY_SYMBOLS.contains(&c)) {
        return true;
    }
    // `12.34.56`, `2017-0005`: a separator next to a digit continues some other token.
    (matches!(a0, Some('.' | ',' | ':' | '-' | '/')) && is_digit(a1))
        || (matches!(b0, Some('.' | ',' | '-' | '/')) && (is_digit(b1) || b1.is_some_and(char::is_alphabetic)))
}

static PERCENT_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?P<num>[0-9]{1,3}(?:[.,][0-9]{1,3})?)\s?%").expect("percent regex"));

/// Every percentage in `line` (`21%`, `5,5 %`, `19,00%`).
pub fn find_percents(line: &str) -> Vec<PercentMatch> {
    PERCENT_RE
        .captures_iter(line)
        .filter_map(|c| {
            let m = c.get(0)?;
            let num = c.name("num")?;
            if line[..num.start()].ends_with(|ch: char| ch.is_alphanumeric() || ch == '.' || ch == ',') {
                return None;
            }
            Some(PercentMatch { start: m.start(), end: m.end(), value: parse_percent(m.as_str())? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn ringgit_and_rupee_amounts_are_read_with_their_marker() {
        for (line, want) in [
            ("TOTAL RM12.50", "12.50"),
            ("Total RM 1,250.00", "1250.00"),
            ("Total Rs.480.00", "480.00"),
            ("Total Rs 480.00", "480.00"),
            ("Total ₹1,180.00", "1180.00"),
            ("Total 90.00 INR", "90.00"),
        ] {
            let found = find_amounts(line, Some(Locale::En));
            assert_eq!(found.iter().map(|a| a.value).collect::<Vec<_>>(), vec![d(want)], "{line}");
            assert!(found[0].has_currency, "{line}");
        }
        // Letters glued to a number inside a word stay an ID.
        assert!(find_amounts("FORM12.50", Some(Locale::En)).is_empty());
    }

    #[test]
    fn amounts_in_every_european_notation_parse_to_the_same_decimal() {
        let cases: &[(&str, Option<Locale>, &str)] = &[
            ("1.234,56", None, "1234.56"),
            ("1,234.56", None, "1234.56"),
            ("1234,56", None, "1234.56"),
            ("1234.56", None, "1234.56"),
            ("1 234,56", None, "1234.56"),
            ("1\u{a0}234,56", None, "1234.56"),
            ("1'234.56", None, "1234.56"),
            ("-12,00", None, "-12.00"),
            ("(12.00)", None, "-12.00"),
            ("12,00 €", None, "12.00"),
            ("€ 1.210,00", None, "1210.00"),
            ("EUR 1,210.00", None, "1210.00"),
            ("1.210,00 EUR", None, "1210.00"),
            ("-20,48 €", None, "-20.48"),
            ("€-5,00", None, "-5.00"),
            ("12,00-", None, "-12.00"),
            ("1.234.567", None, "1234567"),
            ("1.234.567,8", None, "1234567.8"),
            ("0,025", None, "0.025"),
            ("9,9000", None, "9.9000"),
            ("300", None, "300"),
            ("120 000,00 €", None, "120000.00"),
        ];
        for (input, hint, want) in cases {
            assert_eq!(parse_amount(input, *hint), Some(d(want)), "{input}");
        }
    }

    #[test]
    fn a_thousands_separator_misread_by_ocr_still_gives_the_amount() {
        for (input, want) in [("3,352,40", "3352.40"), ("1.234.56", "1234.56"), ("-3,352,40 €", "-3352.40")] {
            assert_eq!(parse_amount(input, Some(Locale::Es)), Some(d(want)), "{input}");
            assert_eq!(parse_amount(input, None), Some(d(want)), "{input}");
        }
        assert_eq!(parse_amount("1.2345.67", Some(Locale::Es)), None);
    }

    #[test]
    fn a_spanish_thousands_dot_is_not_a_decimal_point() {
        assert_eq!(parse_amount("1.210", Some(Locale::Es)), Some(d("1210")));
        assert_eq!(parse_amount("1.210 €", Some(Locale::De)), Some(d("1210")));
    }

    #[test]
    fn an_english_three_decimal_point_is_a_decimal_point() {
        assert_eq!(parse_amount("1.210", Some(Locale::En)), Some(d("1.210")));
        assert_eq!(parse_amount("1,210", Some(Locale::En)), Some(d("1210")));
    }

    #[test]
    fn a_lone_three_digit_group_without_a_locale_is_not_guessed() {
        assert_eq!(parse_amount("1.210", None), None);
        assert_eq!(parse_amount("1,210", None), None);
    }

    #[test]
    fn malformed_numbers_are_rejected() {
        for s in ["", "abc", "12.34.5", "1.23,4.5", "12,3456,78", "€", "1..2", "1,2.3,4"] {
            assert_eq!(parse_amount(s, Some(Locale::Es)), None, "{s}");
        }
    }

    #[test]
    fn percentages_need_a_percent_sign() {
        assert_eq!(parse_percent("21%"), Some(d("21")));
        assert_eq!(parse_percent("5,5 %"), Some(d("5.5")));
        assert_eq!(parse_percent("19,00%"), Some(d("19")));
        assert_eq!(parse_percent("21"), None);
    }

    #[test]
    fn amounts_are_found_in_a_line_but_not_inside_ids_dates_or_rates() {
        let line = "Rechnung # RE-20140519/499   IVA 21%   Total:  1.210,00 €   A4   (5,00)";
        let found: Vec<Decimal> = find_amounts(line, Some(Locale::Es)).into_iter().map(|a| a.value).collect();
        assert_eq!(found, vec![d("1210.00"), d("-5.00")]);
    }

    #[test]
    fn a_plain_space_groups_thousands_only_before_a_decimal_part() {
        // French and OCR'd amounts: `3 435,10` is one amount, never 435,10 with a stray 3 before it.
        let found: Vec<Decimal> =
            find_amounts("Montant TTC        16 373,10 €", Some(Locale::Fr)).into_iter().map(|a| a.value).collect();
        assert_eq!(found, vec![d("16373.10")]);
        let found: Vec<Decimal> =
            find_amounts("Total 1 234 567,89", Some(Locale::Fr)).into_iter().map(|a| a.value).collect();
        assert_eq!(found, vec![d("1234567.89")]);
        // Two columns (two spaces apart) stay two numbers; a quantity and a year are not thousands groups.
        let found: Vec<Decimal> =
            find_amounts("Licence   16  389,47   2024 100", Some(Locale::Fr)).into_iter().map(|a| a.value).collect();
        assert_eq!(found, vec![d("16"), d("389.47"), d("2024"), d("100")]);
    }

    #[test]
    fn an_amount_touching_a_currency_sign_says_so() {
        let found = find_amounts("Total 12,00 €  and 3", Some(Locale::Es));
        assert!(found[0].has_currency && found[0].has_decimals);
        assert!(!found[1].has_currency && !found[1].has_decimals);
    }

    #[test]
    fn percentages_are_found_with_their_values() {
        let p: Vec<Decimal> = find_percents("IVA 21% y 5,5 % y A4%").into_iter().map(|p| p.value).collect();
        assert_eq!(p, vec![d("21"), d("5.5")]);
    }
}
