//! The EPC QR code for SEPA credit transfers (EPC069-12 "Quick Response Code: Guidelines to Enable Data Capture
//! for the Initiation of a SEPA Credit Transfer", v2.1+), sold as GiroCode in Germany and Austria: `BCD`,
//! version `001` or `002`, a character set, `SCT`, BIC, name, IBAN, `EUR` + amount, purpose, reference, text.

use rust_decimal::Decimal;
use std::str::FromStr;

use super::{checked_iban, invalid, plain_amount, text, Code, Kind, PayloadError};

const KIND: Kind = Kind::Epc;
/// Service tag to IBAN: the elements every version requires (§3.4); the rest may be left off the end.
const MANDATORY_LINES: usize = 7;
/// At most 12 elements (the last, "beneficiary to originator information", is optional).
const MAX_LINES: usize = 12;

pub fn parse(payload: &str) -> Result<Code, PayloadError> {
    let body = payload.strip_suffix('\n').unwrap_or(payload);
    let lines: Vec<&str> = body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    if lines.len() < MANDATORY_LINES {
        return Err(invalid(KIND, format!("truncated: {} of the {MANDATORY_LINES} mandatory lines", lines.len())));
    }
    if lines.len() > MAX_LINES {
        return Err(invalid(KIND, format!("{} lines, at most {MAX_LINES}", lines.len())));
    }
    let version = lines[1];
    if !matches!(version, "001" | "002") {
        return Err(invalid(KIND, format!("version {version:?} is not 001 or 002")));
    }
    if !matches!(lines[2], "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8") {
        return Err(invalid(KIND, format!("character set {:?} is not 1 to 8", lines[2])));
    }
    if lines[3] != "SCT" {
        return Err(invalid(KIND, format!("identification {:?} is not SCT", lines[3])));
    }
    // Version 001 requires the BIC; 002 makes it optional inside the EEA.
    if version == "001" && lines[4].trim().is_empty() {
        return Err(invalid(KIND, "version 001 without the BIC"));
    }
    let mut code = Code { kind: Some(KIND), ..Code::default() };
    code.supplier_name = text(Some(lines[5]));
    if code.supplier_name.is_none() {
        return Err(invalid(KIND, "the beneficiary's name is empty"));
    }
    code.iban = checked_iban(KIND, lines[6], &mut code.warnings);
    if let Some(amount) = lines.get(7).map(|a| a.trim()).filter(|a| !a.is_empty()) {
        // EUR0.01 to EUR999999999.99 (§3.4, element 8).
        let max = Decimal::from_str("999999999.99").expect("constant");
        let value = amount.strip_prefix("EUR").and_then(|a| plain_amount(a, max)).filter(|v| !v.is_zero());
        match value {
            Some(v) => {
                code.amount_due = Some(v);
                code.currency = Some("EUR".into());
            }
            None => code
                .warnings
                .push(format!("{}: the amount {amount:?} is refused: not EUR0.01 to EUR999999999.99", KIND.label())),
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &str = "BCD\n002\n1\nSCT\n\nBeispiel AG\nDE02100500000054540402\nEUR123.45\n\nRE 2019/05/445 744507\n";
    const V1: &str = "BCD\n001\n1\nSCT\nBFSWDE33BER\nWikimedia Foerdergesellschaft\nDE33100205000001194700\nEUR123.45\n\n\nSpende fuer Wikipedia";

    fn with_line(payload: &str, n: usize, value: &str) -> String {
        let mut lines: Vec<&str> = payload.split('\n').collect();
        lines[n] = value;
        lines.join("\n")
    }

    #[test]
    fn both_versions_give_beneficiary_iban_and_amount() {
        for p in [V1, V2] {
            let c = parse(p).unwrap();
            assert_eq!(c.iban.as_deref().map(|i| &i[..2]), Some("DE"));
            assert_eq!(c.amount_due, Some(Decimal::from_str("123.45").unwrap()));
            assert_eq!(c.currency.as_deref(), Some("EUR"));
            assert!(c.warnings.is_empty());
        }
        assert_eq!(parse(V2).unwrap().supplier_name.as_deref(), Some("Beispiel AG"));
    }

    #[test]
    fn a_code_without_amount_or_trailing_lines_is_valid() {
        let c = parse("BCD\n002\n1\nSCT\n\nBeispiel AG\nDE02100500000054540402").unwrap();
        assert_eq!(c.amount_due, None);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn a_truncated_code_or_a_wrong_version_is_refused_whole() {
        assert!(parse("BCD\n002\n1\nSCT\n\nBeispiel AG").unwrap_err().to_string().contains("truncated"));
        assert!(parse(&with_line(V2, 1, "003")).unwrap_err().to_string().contains("version"));
        assert!(parse(&with_line(V2, 3, "INST")).is_err());
        assert!(parse(&with_line(V1, 4, "")).unwrap_err().to_string().contains("BIC"));
    }

    #[test]
    fn a_bad_iban_is_refused_and_the_amount_kept() {
        let c = parse(&with_line(V2, 6, "DE02100500000054540403")).unwrap();
        assert_eq!(c.iban, None);
        assert!(c.warnings[0].contains("IBAN"));
        assert_eq!(c.amount_due, Some(Decimal::from_str("123.45").unwrap()));
    }

    #[test]
    fn a_non_numeric_zero_or_foreign_currency_amount_is_refused() {
        for bad in ["EUR12,34", "EURabc", "USD12.00", "12.00", "EUR0.00", "EUR1000000000.00"] {
            let c = parse(&with_line(V2, 7, bad)).unwrap();
            assert_eq!(c.amount_due, None, "{bad}");
            assert_eq!(c.currency, None, "{bad}");
            assert_eq!(c.warnings.len(), 1, "{bad}");
        }
    }
}
