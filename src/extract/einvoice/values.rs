//! Turning element text into typed values, and the bits every format shares once values are read.

use super::xml::NodeExt;
use crate::extract::model::{DocumentType, Extraction, Party};
use chrono::NaiveDate;
use roxmltree::Node;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;

/// Collects what could not be read so the result can say so, instead of failing the whole document.
#[derive(Default)]
pub(crate) struct Reader {
    pub warnings: Vec<String>,
}

impl Reader {
    /// An amount exactly as written (scale kept: "229.60" stays 229.60). Never goes through a float.
    pub fn amount(&mut self, node: Option<Node>, what: &str) -> Option<Decimal> {
        let text = node?.own_text()?;
        let value = decimal(&text);
        if value.is_none() {
            self.warnings.push(format!("{what} is not a number: {text:?}."));
        }
        value
    }

    /// A date in ISO form (`YYYY-MM-DD`, possibly followed by a time or a zone as xs:date/xs:dateTime allow).
    pub fn iso_date(&mut self, node: Option<Node>, what: &str) -> Option<NaiveDate> {
        let text = node?.own_text()?;
        let value = iso_date(&text);
        if value.is_none() {
            self.warnings.push(format!("{what} is not a date: {text:?}."));
        }
        value
    }

    /// A CII date: `<udt:DateTimeString format="102">20240131</udt:DateTimeString>` inside `node`; ZUGFeRD 1.0's
    /// release candidate puts the `format` on `node` itself, and some writers put an ISO date there.
    pub fn cii_date(&mut self, node: Option<Node>, what: &str) -> Option<NaiveDate> {
        let node = node?;
        let string = node.child("DateTimeString").or_else(|| node.child("DateString")).unwrap_or(node);
        let text = string.own_text()?;
        let value = match string.attribute("format") {
            // 102 = CCYYMMDD, 203 = CCYYMMDDHHMM: the date is the first eight digits.
            Some("102" | "203") | None => compact_date(&text).or_else(|| iso_date(&text)),
            // 610 (CCYYMM) and 616 (CCYYWW) name no single day.
            Some("610" | "616") => None,
            Some(code) => {
                let value = compact_date(&text).or_else(|| iso_date(&text));
                if value.is_some() {
                    self.warnings.push(format!("{what} has the unknown date format code {code:?}; read as a date."));
                }
                value
            }
        };
        if value.is_none() {
            self.warnings.push(format!("{what} is not a date: {text:?}."));
        }
        value
    }
}

/// What an allowance/charge element is called at each level, for warnings.
pub(crate) enum Level {
    Document, // BG-20 allowances (BT-92), BG-21 charges (BT-99)
    Line,     // BG-27 allowances (BT-136), BG-28 charges (BT-141)
}

/// Allowance and charge amounts of `elements`, split by their indicator (`indicator` path, "true" = charge).
pub(crate) fn allowances_and_charges<'a, 'i: 'a>(
    r: &mut Reader,
    elements: impl Iterator<Item = Node<'a, 'i>>,
    indicator: &[&str],
    amount: &str,
    level: Level,
) -> (Vec<Decimal>, Vec<Decimal>) {
    let (allowance, charge) = match level {
        Level::Document => ("A document level allowance (BT-92)", "A document level charge (BT-99)"),
        Level::Line => ("A line allowance (BT-136)", "A line charge (BT-141)"),
    };
    let (mut allowances, mut charges) = (Vec::new(), Vec::new());
    for element in elements {
        let is_charge = element.text_at(indicator).is_some_and(|v| v == "true");
        let what = if is_charge { charge } else { allowance };
        if let Some(value) = r.amount(element.child(amount), what) {
            if is_charge {
                charges.push(value);
            } else {
                allowances.push(value);
            }
        }
    }
    (allowances, charges)
}

pub(crate) fn decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    Decimal::from_str(text).ok()
}

fn iso_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

fn compact_date(text: &str) -> Option<NaiveDate> {
    let digits = text.get(..8)?;
    digits.bytes().all(|b| b.is_ascii_digit()).then(|| NaiveDate::parse_from_str(digits, "%Y%m%d").ok())?
}

/// Whitespace runs (line breaks in pretty-printed names) become one space.
pub(crate) fn clean(text: Option<String>) -> Option<String> {
    let text = text?;
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// An IBAN in its electronic form (no spaces, upper case), if `text` has the shape of one. Account ids of other
/// schemes (national account numbers, placeholders such as "IBAN") are not an IBAN and give `None`.
pub(crate) fn iban(text: &str) -> Option<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    let bytes = compact.as_bytes();
    let shaped = (15..=34).contains(&bytes.len())
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..4].iter().all(u8::is_ascii_digit)
        && bytes[4..].iter().all(u8::is_ascii_alphanumeric);
    shaped.then_some(compact)
}

/// The payee's account (BT-84): the first of `candidates` that has the shape of an IBAN, else the first account
/// id as the XML states it. BT-84 is the account to pay into whatever its scheme, and an e-invoice is read
/// exactly: a value that is no valid IBAN is kept, and `checks::payee_account` reports it as failing its check
/// instead of hiding it. Placeholder words ("IBAN", "n/a") and ids longer than an IBAN are not accounts.
pub(crate) fn first_iban(candidates: impl IntoIterator<Item = String>) -> Option<String> {
    let candidates: Vec<String> = candidates.into_iter().collect();
    candidates.iter().find_map(|c| iban(c)).or_else(|| {
        candidates.iter().find_map(|c| {
            let compact: String = c.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
            let plausible = (3..=34).contains(&compact.len())
                && compact.chars().all(|c| c.is_ascii_alphanumeric())
                && !matches!(compact.as_str(), "IBAN" | "NA" | "NONE" | "NULL" | "TBD");
            plausible.then_some(compact)
        })
    })
}

/// An identifier (a tax number, an account), not a sentence: at most one word of three or more letters.
/// Ids are written with spaces (`FR 05 987 654 321`) and as placeholders (`XX`), so digits are not required.
pub(crate) fn looks_like_identifier(text: &str) -> bool {
    let words = text.split_whitespace().filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 3);
    words.filter(|w| w.chars().all(|c| c.is_alphabetic() || c == '-')).count() < 2
}

/// ISO 3166-1 alpha-2, as the schema wants it; anything else is dropped.
pub(crate) fn country(text: Option<String>) -> Option<String> {
    let text = text?.trim().to_ascii_uppercase();
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase())).then_some(text)
}

/// BT-3 invoice type code (UNTDID 1001) to the schema's document type.
pub(crate) fn document_type(code: &str) -> DocumentType {
    match code.trim() {
        // Commercial, debit note, prepayment, self-billed, information for accounting, partial and
        // final construction invoices, and the other invoice codes EN 16931 allows.
        "380" | "383" | "386" | "389" | "751" | "875" | "876" | "877" | "326" | "71" | "80" | "82" | "84" | "102"
        | "218" | "219" | "331" | "382" | "387" | "388" | "390" | "393" | "394" | "395" | "456" | "527" | "575"
        | "623" | "633" | "780" | "935" => DocumentType::Invoice,
        // Credit notes (commercial, self-billed, financial, factored ...).
        "381" | "81" | "83" | "261" | "262" | "296" | "308" | "396" | "420" | "458" | "532" => DocumentType::CreditNote,
        "384" => DocumentType::CorrectedInvoice,
        _ => DocumentType::Unknown,
    }
}

/// `None` for a party with nothing in it, so the JSON shows null rather than `{}`.
pub(crate) fn party(p: Party) -> Option<Party> {
    (!p.is_empty()).then_some(p)
}

/// Structured XML states each field outright: every field present gets confidence 1.0.
pub(crate) fn fill_confidence(e: &mut Extraction) {
    let supplier = e.supplier.clone().unwrap_or_default();
    let customer = e.customer.clone().unwrap_or_default();
    let present = [
        ("document_type", e.document_type.is_some()),
        ("invoice_number", e.invoice_number.is_some()),
        ("invoice_series", e.invoice_series.is_some()),
        ("issue_date", e.issue_date.is_some()),
        ("due_date", e.due_date.is_some()),
        ("currency", e.currency.is_some()),
        ("supplier.name", supplier.name.is_some()),
        ("supplier.tax_id", supplier.tax_id.is_some()),
        ("supplier.country", supplier.country.is_some()),
        ("supplier.iban", supplier.iban.is_some()),
        ("customer.name", customer.name.is_some()),
        ("customer.tax_id", customer.tax_id.is_some()),
        ("customer.country", customer.country.is_some()),
        ("net_amount", e.net_amount.is_some()),
        ("tax_amount", e.tax_amount.is_some()),
        ("total_amount", e.total_amount.is_some()),
        ("amount_due", e.amount_due.is_some()),
        ("taxes", e.taxes.is_some()),
        ("line_items", e.line_items.is_some()),
    ];
    let map: BTreeMap<String, f32> =
        present.iter().filter(|(_, is)| *is).map(|(field, _)| (field.to_string(), 1.0)).collect();
    e.confidence = Some(map);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_the_scale_they_were_written_with() {
        assert_eq!(decimal("229.60").unwrap().to_string(), "229.60");
        assert_eq!(decimal(" -4202.00 ").unwrap().to_string(), "-4202.00");
        assert_eq!(decimal("+5").unwrap().to_string(), "5");
        assert!(decimal("1,5").is_none());
    }

    #[test]
    fn cii_dates_in_format_102_are_read() {
        let doc = roxmltree::Document::parse(
            r#"<d xmlns:udt="u"><udt:DateTimeString format="102">20150109</udt:DateTimeString></d>"#,
        )
        .unwrap();
        let mut r = Reader::default();
        assert_eq!(r.cii_date(Some(doc.root_element()), "BT-2"), NaiveDate::from_ymd_opt(2015, 1, 9));
    }

    #[test]
    fn an_unknown_date_format_code_is_read_with_a_warning_but_a_month_is_not_a_date() {
        let read = |xml: &str| {
            let doc = roxmltree::Document::parse(xml).unwrap();
            let mut r = Reader::default();
            (r.cii_date(Some(doc.root_element()), "BT-2"), r.warnings)
        };
        let (date, warnings) = read(r#"<d><DateTimeString format="1020">20141008</DateTimeString></d>"#);
        assert_eq!(date, NaiveDate::from_ymd_opt(2014, 10, 8));
        assert_eq!(warnings.len(), 1);
        let (date, _) = read(r#"<d><DateTimeString format="610">201410</DateTimeString></d>"#);
        assert_eq!(date, None);
        // ZUGFeRD 1.0's release candidate: the format on the element itself.
        let (date, warnings) = read(r#"<IssueDateTime format="102">20140519</IssueDateTime>"#);
        assert_eq!(date, NaiveDate::from_ymd_opt(2014, 5, 19));
        assert!(warnings.is_empty());
    }

    #[test]
    fn type_codes_map_to_document_types() {
        let cases = [
            ("380", DocumentType::Invoice),
            ("389", DocumentType::Invoice),
            ("381", DocumentType::CreditNote),
            ("261", DocumentType::CreditNote),
            ("384", DocumentType::CorrectedInvoice),
            ("999", DocumentType::Unknown),
        ];
        for (code, expected) in cases {
            assert_eq!(document_type(code), expected, "code {code}");
        }
    }

    #[test]
    fn only_iban_shaped_accounts_are_ibans() {
        assert_eq!(iban("de08 7009 0100 1234 5678 90").as_deref(), Some("DE08700901001234567890"));
        assert_eq!(iban("1234567891234"), None);
        assert_eq!(iban("IBAN"), None);
        assert!(looks_like_identifier("FR 05 987 654 321") && looks_like_identifier("XX"));
        assert!(!looks_like_identifier("Godkänd för F-skatt"));
        // BT-84 as stated, when no candidate is an IBAN (the check then fails, see checks::payee_account).
        assert_eq!(first_iban(["1234567891234".to_string()]).as_deref(), Some("1234567891234"));
        assert_eq!(first_iban(["IBAN".to_string()]), None);
        assert_eq!(
            first_iban(["123".to_string(), "DE08 7009 0100 1234 5678 90".to_string()]).as_deref(),
            Some("DE08700901001234567890")
        );
    }
}
