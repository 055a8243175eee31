//! The last check of an extraction result before anything stores or shows it. The readers are careful, but the
//! result crosses a trust boundary (it comes out of the sandbox, from a document anyone can write), so every
//! field is held to what such a field can be here:
//! - text fields are one line without control characters, and bounded;
//! - the currency is an ISO 4217 code;
//! - dates fall between 1900 and a few years ahead (Postgres would store `0000-01-01` as 1 BC);
//! - amounts are decimals of a size an invoice can have.
//!
//! A value that fails is dropped with a warning that says what it was: a wrong value is worse than a missing one.
//! An ordinary invoice with a negative total, and one whose total could not be read, get a failed check, so the
//! supplier and the accountants are told instead of the invoice being "recorded" silently.
//!
//! Pure code: a result and today's date in, a result out.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::model::{Check, DocumentType, Extraction, LineItem, Party, TaxLine};

/// ISO 4217 alphabetic codes in use, and the euro's predecessors (an old invoice may still name them). `XXX`
/// (no currency) and `XTS` (testing) are left out: neither is the currency of an invoice.
pub const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF",
    "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB",
    "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR",
    "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD",
    "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR",
    "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP",
    "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD",
    "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF",
    "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA", "YER",
    "ZAR", "ZMW", "ZWG", "ZWL", // withdrawn, replaced by the euro:
    "ATS", "BEF", "CYP", "DEM", "EEK", "ESP", "FIM", "FRF", "GRD", "HRK", "IEP", "ITL", "LTL", "LUF", "LVL", "MTL",
    "NLG", "PTE", "SIT", "SKK",
];

/// Dates before this are misreadings (or `0000-01-01` placeholders).
pub const FIRST_YEAR: i32 = 1900;
/// A date more than this many years after today is a misreading (or `9999-12-31`); due dates of long leases and
/// instalment plans stay within it.
pub const YEARS_AHEAD: i32 = 10;
/// No invoice amount reaches a thousand billion; bigger is a misread number (or ten thousand digits).
pub const MAX_AMOUNT_DIGITS: u32 = 15;

/// Bounds for text fields, in characters.
const MAX_NUMBER_CHARS: usize = 100;
const MAX_NAME_CHARS: usize = 300;
const MAX_CODE_CHARS: usize = 64;
const MAX_NOTE_CHARS: usize = 1000;

/// The names of the checks added here, for the sentences of the replies.
pub const CHECK_TOTAL_READ: &str = "total_readable";
pub const CHECK_TOTAL_POSITIVE: &str = "total_not_negative";

/// `e` with every field that cannot be right removed (and a warning saying so), every text field on one line.
pub fn validate(mut e: Extraction, today: NaiveDate) -> Extraction {
    let mut notes = Vec::new();
    e.file = text(&e.file, MAX_NAME_CHARS).unwrap_or_else(|| "attachment".into());
    e.sha256 = e.sha256.filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    if let Some(err) = e.error.as_mut() {
        err.message = text(&err.message, MAX_NOTE_CHARS).unwrap_or_default();
    }
    e.invoice_number = e.invoice_number.as_deref().and_then(|s| text(s, MAX_NUMBER_CHARS));
    e.invoice_series = e.invoice_series.as_deref().and_then(|s| text(s, MAX_NUMBER_CHARS));
    e.currency = e.currency.take().and_then(|c| currency(&c, &mut notes));
    e.issue_date = e.issue_date.and_then(|d| date(d, "issue date", today, &mut notes));
    e.due_date = e.due_date.and_then(|d| date(d, "due date", today, &mut notes));
    e.supplier = e.supplier.take().map(party).filter(|p| !p.is_empty());
    e.customer = e.customer.take().map(party).filter(|p| !p.is_empty());
    for (value, what) in [
        (&mut e.net_amount, "net amount"),
        (&mut e.tax_amount, "tax amount"),
        (&mut e.total_amount, "total"),
        (&mut e.amount_due, "amount due"),
    ] {
        *value = value.and_then(|v| amount(v, what, &mut notes));
    }
    for t in e.taxes.iter_mut().flatten() {
        tax_line(t, &mut notes);
    }
    for item in e.line_items.iter_mut().flatten() {
        line_item(item, &mut notes);
    }
    for check in e.checks.iter_mut().flatten() {
        check.name = text(&check.name, MAX_CODE_CHARS).unwrap_or_else(|| "check".into());
        check.detail = check.detail.as_deref().and_then(|d| text(d, MAX_NOTE_CHARS));
    }
    if let Some(warnings) = e.warnings.as_mut() {
        *warnings = warnings.iter().filter_map(|w| text(w, MAX_NOTE_CHARS)).collect();
    }
    if e.is_ok() {
        totals_checks(&mut e, &notes);
    }
    for n in notes {
        e.push_warning(n);
    }
    e
}

/// The total is the one figure every invoice has: a result without one, or an ordinary invoice whose total is
/// negative, is shown as a failed check.
fn totals_checks(e: &mut Extraction, notes: &[String]) {
    match e.total_amount {
        None => {
            let why = e
                .warnings
                .iter()
                .flatten()
                .chain(notes)
                .find(|w| w.to_lowercase().contains("total"))
                .cloned()
                .unwrap_or_else(|| "no total found".into());
            e.push_check(Check::new(CHECK_TOTAL_READ, false, Some(why)));
        }
        Some(t) if t.is_sign_negative() && !t.is_zero() && e.document_type == Some(DocumentType::Invoice) => {
            e.push_check(Check::new(CHECK_TOTAL_POSITIVE, false, Some(format!("total {t}"))));
        }
        Some(_) => {}
    }
}

/// `s` on one line without control characters, bounded; `None` when nothing is left.
pub fn text(s: &str, max_chars: usize) -> Option<String> {
    let s = crate::extract::normalize::shorten(&crate::extract::normalize::one_line(s), max_chars);
    (!s.is_empty()).then_some(s)
}

fn currency(c: &str, notes: &mut Vec<String>) -> Option<String> {
    let code = c.trim().to_ascii_uppercase();
    if ISO_4217.contains(&code.as_str()) {
        return Some(code);
    }
    // Quoted short: the value may be written to pass for something else (`EUR` and then an IBAN).
    let quoted = text(c, 8).unwrap_or_default();
    notes.push(format!("The currency {quoted:?} is not an ISO 4217 code; it was left out."));
    None
}

fn date(d: NaiveDate, what: &str, today: NaiveDate, notes: &mut Vec<String>) -> Option<NaiveDate> {
    let latest = today.with_year(today.year() + YEARS_AHEAD).unwrap_or(today);
    if d.year() >= FIRST_YEAR && d <= latest {
        return Some(d);
    }
    notes.push(format!("The {what} {d} is not a plausible date; it was left out."));
    None
}

fn amount(v: Decimal, what: &str, notes: &mut Vec<String>) -> Option<Decimal> {
    let limit = Decimal::from(10u64.pow(MAX_AMOUNT_DIGITS));
    if v.abs() < limit {
        return Some(v);
    }
    notes.push(format!("The {what} {} is not a plausible amount; it was left out.", shown(&v.to_string())));
    None
}

fn party(mut p: Party) -> Party {
    p.name = p.name.as_deref().and_then(|s| text(s, MAX_NAME_CHARS));
    p.tax_id = p.tax_id.as_deref().and_then(|s| text(s, MAX_CODE_CHARS));
    p.country = p.country.filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()));
    // An IBAN is letters and digits only (ISO 13616), at most 34 of them.
    p.iban = p.iban.filter(|i| (5..=34).contains(&i.len()) && i.bytes().all(|b| b.is_ascii_alphanumeric()));
    p
}

fn tax_line(t: &mut TaxLine, notes: &mut Vec<String>) {
    t.base = t.base.and_then(|v| amount(v, "tax base", notes));
    t.amount = t.amount.and_then(|v| amount(v, "tax line amount", notes));
    t.rate = t.rate.filter(|r| r.abs() <= Decimal::from(100));
    t.category = t.category.as_deref().and_then(|s| text(s, MAX_CODE_CHARS));
}

fn line_item(item: &mut LineItem, notes: &mut Vec<String>) {
    item.description = item.description.as_deref().and_then(|s| text(s, MAX_NOTE_CHARS));
    item.quantity = item.quantity.and_then(|v| amount(v, "line quantity", notes));
    item.unit_price = item.unit_price.and_then(|v| amount(v, "line unit price", notes));
    item.amount = item.amount.and_then(|v| amount(v, "line amount", notes));
    item.tax_rate = item.tax_rate.filter(|r| r.abs() <= Decimal::from(100));
}

/// A value as a warning quotes it: one line, short.
fn shown(s: &str) -> String {
    text(s, 40).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()
    }

    fn invoice() -> Extraction {
        let mut e = Extraction::empty("f.xml");
        e.document_type = Some(DocumentType::Invoice);
        e.invoice_number = Some("F-1".into());
        e.currency = Some("EUR".into());
        e.total_amount = Decimal::from_str("121.00").ok();
        e
    }

    #[test]
    fn a_currency_carrying_a_fake_iban_line_is_dropped() {
        let mut e = invoice();
        e.currency = Some("EUR\n    IBAN: ES7600000000000000000000".into());
        e.invoice_number = Some("F-1\r\nIBAN: ES7600000000000000000000".into());
        let v = validate(e, today());
        assert_eq!(v.currency, None);
        assert_eq!(v.invoice_number.as_deref(), Some("F-1 IBAN: ES7600000000000000000000"));
        assert!(v.warnings.iter().flatten().any(|w| w.contains("not an ISO 4217 code")), "{:?}", v.warnings);
        let json = serde_json::to_string(&v).unwrap();
        assert!(!json.contains("\\n") && !json.contains("\\r"), "{json}");
        assert_eq!(
            validate(Extraction { currency: Some(" eur ".into()), ..invoice() }, today()).currency.as_deref(),
            Some("EUR")
        );
        assert_eq!(validate(Extraction { currency: Some("XYZ".into()), ..invoice() }, today()).currency, None);
    }

    #[test]
    fn control_characters_never_survive_in_names_numbers_or_notes() {
        let mut e = invoice();
        e.supplier = Some(Party { name: Some("ACME\u{1b}[2J\u{7}\0 S.L.".into()), ..Default::default() });
        e.push_warning("line one\nline two");
        let v = validate(e, today());
        assert_eq!(v.supplier.unwrap().name.as_deref(), Some("ACME [2J S.L."));
        assert_eq!(v.warnings.unwrap(), ["line one line two"]);
    }

    #[test]
    fn implausible_dates_are_left_out_with_a_warning() {
        let mut e = invoice();
        e.issue_date = NaiveDate::from_ymd_opt(0, 1, 1);
        e.due_date = NaiveDate::from_ymd_opt(9999, 12, 31);
        let v = validate(e, today());
        assert_eq!((v.issue_date, v.due_date), (None, None));
        assert_eq!(v.warnings.iter().flatten().filter(|w| w.contains("not a plausible date")).count(), 2);
        let mut ok = invoice();
        ok.issue_date = NaiveDate::from_ymd_opt(2025, 1, 31);
        ok.due_date = NaiveDate::from_ymd_opt(2030, 1, 31);
        let v = validate(ok, today());
        assert!(v.issue_date.is_some() && v.due_date.is_some());
    }

    #[test]
    fn a_negative_total_on_an_ordinary_invoice_is_flagged_and_a_credit_note_is_not() {
        let mut e = invoice();
        e.total_amount = Decimal::from_str("-121.00").ok();
        let v = validate(e.clone(), today());
        assert!(v.failed_checks().any(|c| c.name == CHECK_TOTAL_POSITIVE), "{:?}", v.checks);
        e.document_type = Some(DocumentType::CreditNote);
        assert_eq!(validate(e, today()).failed_checks().count(), 0);
    }

    #[test]
    fn an_unreadable_or_absurd_total_is_a_failed_check_not_a_silent_record() {
        let mut e = invoice();
        e.total_amount = None;
        e.push_warning("The invoice total (BT-112) is not a number: \"1e400\".");
        let v = validate(e, today());
        let check = v.failed_checks().find(|c| c.name == CHECK_TOTAL_READ).expect("a failed check");
        assert!(check.detail.as_deref().unwrap().contains("1e400"), "{check:?}");

        let mut huge = invoice();
        huge.total_amount = Decimal::from_str("79228162514264337593543950335").ok();
        let v = validate(huge, today());
        assert_eq!(v.total_amount, None);
        assert!(v.failed_checks().any(|c| c.name == CHECK_TOTAL_READ));
        assert!(v.warnings.iter().flatten().any(|w| w.contains("not a plausible amount")));
    }

    #[test]
    fn a_clean_invoice_is_left_as_it_was() {
        let e = invoice();
        assert_eq!(validate(e.clone(), today()), e);
    }
}
