//! The Swiss QR-bill (SIX "Swiss Implementation Guidelines for the QR-bill", v2.x): `SPC`, version `02xx`,
//! coding `1`, then one element per line, the trailer `EPD` at line 31, and after it the optional bill
//! information (Swico S1, `//S1/10/…`) and up to two alternative schemes.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

use super::{checked_iban, invalid, plain_amount, text, Code, Kind, PayloadError};
use crate::extract::rules::taxid::TaxId;

/// Lines up to and including the trailer `EPD` (IG v2.x §4.3.3).
const MANDATORY_LINES: usize = 31;
const KIND: Kind = Kind::Swiss;

/// A party block: address type, name, two address lines or street and number, postcode, town, country.
struct Party<'a> {
    name: Option<String>,
    country: Option<&'a str>,
}

fn party<'a>(l: &[&'a str]) -> Party<'a> {
    let country = l[6].trim();
    Party { name: text(Some(l[1])), country: (!country.is_empty()).then_some(country) }
}

pub fn parse(payload: &str) -> Result<Code, PayloadError> {
    // IG §4.1.4: elements end with CR LF or LF; the last may end without.
    let lines: Vec<&str> = payload.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    if lines.len() < MANDATORY_LINES {
        return Err(invalid(KIND, format!("truncated: {} of the {MANDATORY_LINES} mandatory lines", lines.len())));
    }
    let version = lines[1];
    if !(version.len() == 4 && version.starts_with("02") && version.bytes().all(|b| b.is_ascii_digit())) {
        return Err(invalid(KIND, format!("version {version:?} is not 02xx")));
    }
    if lines[2] != "1" {
        return Err(invalid(KIND, format!("coding type {:?} is not 1 (UTF-8)", lines[2])));
    }
    if lines[30] != "EPD" {
        return Err(invalid(KIND, "the trailer EPD is not where it belongs: lines are missing or extra"));
    }
    let mut code = Code { kind: Some(KIND), ..Code::default() };
    let w = &mut code.warnings;
    code.iban = checked_iban(KIND, lines[3], w).filter(|iban| {
        // Only Swiss and Liechtenstein accounts are allowed (IG §4.3.3, CdtrInf/IBAN).
        let ok = iban.starts_with("CH") || iban.starts_with("LI");
        if !ok {
            w.push(format!("{}: the IBAN {iban} is not a CH or LI account", KIND.label()));
        }
        ok
    });
    let creditor = party(&lines[4..11]);
    code.supplier_name = creditor.name;
    code.supplier_country = country(creditor.country, w);
    let amount = lines[18].trim();
    if !amount.is_empty() {
        let max = Decimal::from_str("999999999.99").expect("constant");
        code.amount_due = plain_amount(amount, max);
        if code.amount_due.is_none() {
            w.push(format!("{}: the amount {amount:?} is refused: not 0.00 to 999999999.99", KIND.label()));
        }
    }
    code.currency = match lines[19] {
        c @ ("CHF" | "EUR") => Some(c.to_string()),
        other => {
            w.push(format!("{}: the currency {other:?} is refused: only CHF and EUR", KIND.label()));
            None
        }
    };
    if !lines[20..27].iter().all(|l| l.trim().is_empty()) {
        let debtor = party(&lines[20..27]);
        code.customer_name = debtor.name;
        code.customer_country = country(debtor.country, w);
    }
    if let Some(bill) = lines.get(MANDATORY_LINES).filter(|l| l.starts_with("//S1/")) {
        swico_s1(bill, &mut code);
    }
    Ok(code)
}

fn country(c: Option<&str>, warnings: &mut Vec<String>) -> Option<String> {
    let c = c?;
    if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Some(c.to_string())
    } else {
        warnings.push(format!("{}: the country {c:?} is refused: not ISO 3166 alpha-2", KIND.label()));
        None
    }
}

/// Swico S1 bill information (Swico "Syntaxdefinition der Rechnungsinformationen", v1.2): `//S1/` then tag and
/// value pairs separated by `/`, a slash in a value escaped as `\/`. Tag 10: invoice number; 11: invoice date
/// `YYMMDD`; 30: the supplier's UID (`CHE` + nine digits, written without the prefix).
fn swico_s1(bill: &str, code: &mut Code) {
    let body = &bill["//S1/".len()..];
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                current.push('/');
                chars.next();
            }
            '/' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    let label = "Swiss QR-bill, Swico S1";
    for pair in parts.chunks(2) {
        let [tag, value] = pair else {
            code.warnings.push(format!("{label}: the tag {:?} has no value", pair[0]));
            break;
        };
        match tag.as_str() {
            "10" => code.invoice_number = text(Some(value)),
            "11" => {
                // Tag 11 is one date YYMMDD; a range (YYMMDDYYMMDD) is tag 31's form, not this one's.
                code.issue_date =
                    NaiveDate::parse_from_str(&format!("20{value}"), "%Y%m%d").ok().filter(|_| value.len() == 6);
                if code.issue_date.is_none() {
                    code.warnings.push(format!("{label}: the invoice date {value:?} is refused: not a date YYMMDD"));
                }
            }
            "30" => match TaxId::parse(&format!("CHE{value}")) {
                Ok(id) => code.supplier_tax_id = Some(id.vat_form()),
                Err(e) => code.warnings.push(format!("{label}: the UID {value:?} is refused: {e}")),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "SPC\n0200\n1\nCH4431999123000889012\nS\nThomas LeClaire\nRue examplaire\n22a\n1000\nLausanne\nCH\n\n\n\n\n\n\n\n25.90\nCHF\nS\nPia-Maria Rutschmann\nGrosse Marktgasse\n28\n9400\nRorschach\nCH\nQRR\n123456789012345678901234567\nInvoice 1234568\nEPD\n//S1/10/10201409/11/190512/20/1400.000-53/30/106017086/31/180508/32/7.7/40/2:10;0:30\n";

    fn with_line(n: usize, value: &str) -> String {
        let mut lines: Vec<&str> = FULL.split('\n').collect();
        lines[n] = value;
        lines.join("\n")
    }

    #[test]
    fn a_full_bill_gives_creditor_account_amount_debtor_and_swico_bill_information() {
        let c = parse(FULL).unwrap();
        assert_eq!(c.iban.as_deref(), Some("CH4431999123000889012"));
        assert_eq!(c.supplier_name.as_deref(), Some("Thomas LeClaire"));
        assert_eq!(c.supplier_country.as_deref(), Some("CH"));
        assert_eq!(c.amount_due, Some(Decimal::from_str("25.90").unwrap()));
        assert_eq!(c.currency.as_deref(), Some("CHF"));
        assert_eq!(c.customer_name.as_deref(), Some("Pia-Maria Rutschmann"));
        assert_eq!(c.invoice_number.as_deref(), Some("10201409"));
        assert_eq!(c.issue_date, NaiveDate::from_ymd_opt(2019, 5, 12));
        assert_eq!(c.supplier_tax_id.as_deref(), Some("CHE106017086"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn crlf_line_ends_read_the_same() {
        assert_eq!(parse(&FULL.replace('\n', "\r\n")).unwrap(), parse(FULL).unwrap());
    }

    #[test]
    fn a_truncated_bill_is_refused_whole() {
        let cut: String = FULL.split('\n').take(20).collect::<Vec<_>>().join("\n");
        assert!(matches!(parse(&cut), Err(PayloadError::Invalid { .. })));
        assert!(parse(&with_line(30, "")).unwrap_err().to_string().contains("EPD"));
    }

    #[test]
    fn a_wrong_version_or_coding_is_refused_whole() {
        assert!(parse(&with_line(1, "0100")).unwrap_err().to_string().contains("version"));
        assert!(parse(&with_line(2, "2")).unwrap_err().to_string().contains("coding"));
    }

    #[test]
    fn a_bad_iban_is_refused_and_the_rest_kept() {
        let c = parse(&with_line(3, "CH4431999123000889013")).unwrap();
        assert_eq!(c.iban, None);
        assert!(c.warnings[0].contains("IBAN"), "{:?}", c.warnings);
        assert_eq!(c.amount_due, Some(Decimal::from_str("25.90").unwrap()));
        // A valid IBAN of another country is not allowed on a QR-bill.
        let c = parse(&with_line(3, "DE89370400440532013000")).unwrap();
        assert_eq!(c.iban, None);
    }

    #[test]
    fn a_non_numeric_or_out_of_range_amount_is_refused() {
        for bad in ["25,90", "abc", "1000000000.00", "-5.00", "25.901"] {
            let c = parse(&with_line(18, bad)).unwrap();
            assert_eq!(c.amount_due, None, "{bad}");
            assert!(c.warnings.iter().any(|w| w.contains("amount")), "{bad}: {:?}", c.warnings);
        }
        let c = parse(&with_line(18, "")).unwrap();
        assert_eq!(c.amount_due, None);
        assert!(c.warnings.is_empty(), "a bill without an amount is valid: {:?}", c.warnings);
    }

    #[test]
    fn a_non_existent_swico_date_or_bad_uid_is_refused() {
        let c = parse(&with_line(31, "//S1/10/A\\/7/11/190231/30/106017087")).unwrap();
        assert_eq!(c.invoice_number.as_deref(), Some("A/7"));
        assert_eq!(c.issue_date, None);
        assert_eq!(c.supplier_tax_id, None);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    }

    #[test]
    fn the_other_currency_is_refused() {
        let c = parse(&with_line(19, "USD")).unwrap();
        assert_eq!(c.currency, None);
        assert_eq!(c.warnings.len(), 1);
    }
}
