//! Merge by source: what a code carries replaces the page's reading of the same field (confidence 1, the
//! code's source in `field_sources`), the page fills everything else, and an e-invoice's XML still comes first.
//! Before that, the code is compared with what the page prints (`qr_matches_visual`).

use rust_decimal::Decimal;
use std::collections::BTreeMap;

use super::{parse, Code, Kind, PayloadError};
use crate::extract::model::{Check, Extraction, QrCode, Source};
use crate::extract::rules::{iban::find_ibans, shown};

/// A decoded code and the page it was on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub page: u32,
    pub payload: String,
}

/// Apply the codes `found` on a document to its result `e`, whose page text is `text`.
///
/// Several codes of one kind are several bills on one page: the fields come from one of them, the one whose
/// amount the page prints as its total, else the first; every code is listed in `qr_codes` with what became of
/// it. Codes of different kinds (a VeriFactu code beside a GiroCode) each give their own fields.
pub fn apply(e: &mut Extraction, found: &[Found], text: &str) {
    let mut seen = Vec::new();
    let mut codes: Vec<(u32, Code)> = Vec::new();
    for f in found {
        if seen.contains(&f.payload) {
            continue;
        }
        seen.push(f.payload.clone());
        match parse(&f.payload) {
            Ok(code) => codes.push((f.page, code)),
            Err(PayloadError::Foreign) => {}
            Err(err) => e.push_warning(format!("a QR code on page {} is refused: {err}", f.page)),
        }
    }
    if codes.is_empty() {
        return;
    }
    let xml = matches!(e.source, Some(Source::Cii | Source::Ubl | Source::Facturae));
    let page = e.clone();
    if !e.is_ok() {
        // The page gave nothing (a bare code, a payment part without text): the code alone is the result.
        let (file, sha) = (e.file.clone(), e.sha256.clone());
        *e = Extraction::empty(file);
        e.sha256 = sha;
    }
    // Tax-authority codes first: they carry the invoice's own number, date and total.
    codes.sort_by_key(|(_, c)| c.kind().is_payment());
    let mut used_kinds: Vec<Kind> = Vec::new();
    let mut reports = Vec::new();
    let mut results = Vec::new();
    for (page_no, code) in &codes {
        let kind = code.kind();
        let same: Vec<&Code> = codes.iter().filter(|(_, c)| c.kind() == kind).map(|(_, c)| c).collect();
        let chosen = chosen(&same, &page);
        let is_chosen = std::ptr::eq(same[chosen], code);
        let mut report = QrCode {
            kind: kind.source(),
            page: *page_no,
            used: is_chosen && !used_kinds.contains(&kind),
            reason: None,
            iban: code.iban.clone(),
            amount: code.amount(),
            invoice_number: code.invoice_number.clone(),
            page_iban: None,
            matches_visual: None,
        };
        let comparison = compare(code, &page, text);
        report.page_iban = comparison.page_iban.clone();
        report.matches_visual = comparison.ok();
        if same.len() > 1 {
            let why = if report.used {
                format!(
                    "{} {} codes on the page: the fields come from this one, {}",
                    same.len(),
                    kind.label(),
                    why(&same, chosen, &page)
                )
            } else {
                format!("another {} code on the page gave the fields", kind.label())
            };
            report.reason = Some(why);
        }
        for w in &code.warnings {
            e.push_warning(w.clone());
        }
        if report.used {
            used_kinds.push(kind);
            fill(e, code, xml);
            results.push(comparison);
        }
        reports.push(report);
    }
    for comparison in results {
        if let Some(ok) = comparison.ok() {
            let detail = (!ok).then(|| comparison.differences.join("; "));
            if let Some(d) = &detail {
                e.push_warning(format!("the QR code does not match the page: {d}"));
            }
            e.push_check(Check::new("qr_matches_visual", ok, detail));
        }
    }
    if reports.iter().any(|r| !r.used) {
        let taken: Vec<String> = reports.iter().filter_map(|r| r.reason.clone().filter(|_| r.used)).collect();
        for t in taken {
            e.push_warning(t);
        }
    }
    e.qr_codes = Some(reports);
    if !page.is_ok() && e.field_sources.is_none() {
        // No code gave a field: the page's error stands, with what the codes said.
        let (warnings, reports) = (e.warnings.take(), e.qr_codes.take());
        *e = page;
        for w in warnings.into_iter().flatten() {
            e.push_warning(w);
        }
        e.qr_codes = reports;
    }
}

/// Which of several codes of one kind gives the fields: the one whose amount the page prints (or reads as its
/// total), else the first.
fn chosen(same: &[&Code], page: &Extraction) -> usize {
    if same.len() == 1 {
        return 0;
    }
    same.iter().position(|c| c.amount().is_some_and(|a| amount_on_page(a, page))).unwrap_or(0)
}

fn why(same: &[&Code], chosen: usize, page: &Extraction) -> String {
    match same[chosen].amount() {
        Some(a) if amount_on_page(a, page) => format!("whose amount {a} is the invoice's total"),
        _ => "the first: no code's amount is the invoice's total".to_string(),
    }
}

fn amount_on_page(amount: Decimal, page: &Extraction) -> bool {
    page.total_amount == Some(amount) || page.amount_due == Some(amount)
}

/// What the code says against what the page prints.
#[derive(Debug, Default)]
struct Comparison {
    compared: bool,
    differences: Vec<String>,
    page_iban: Option<String>,
}

impl Comparison {
    fn ok(&self) -> Option<bool> {
        self.compared.then_some(self.differences.is_empty())
    }
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

fn compare(code: &Code, page: &Extraction, text: &str) -> Comparison {
    let mut c = Comparison::default();
    if let Some(iban) = &code.iban {
        let printed: Vec<String> =
            find_ibans(text).into_iter().filter_map(|m| m.iban.ok()).map(|i| i.as_str().to_string()).collect();
        if !printed.is_empty() {
            c.compared = true;
            if !printed.contains(iban) {
                c.differences.push(format!("IBAN {iban} in the QR code, {} on the page", printed[0]));
                c.page_iban = Some(printed[0].clone());
            }
        }
    }
    // What the page's reading found counts as printed too: OCR text may print a value in a form the lookups in
    // the raw text miss.
    let read = |v: Option<bool>| page.is_ok() && v == Some(true);
    if let Some(amount) = code.amount() {
        if shown::amount(text, amount) || read(Some(amount_on_page(amount, page))) {
            c.compared = true;
        } else if let Some(total) = page.amount_due.or(page.total_amount).filter(|_| page.is_ok()) {
            c.compared = true;
            c.differences.push(format!("amount {amount} in the QR code, total {total} on the page"));
        }
    }
    if let Some(number) = &code.invoice_number {
        let series = code.invoice_series.as_deref().unwrap_or("");
        let same = page.invoice_number.as_deref().map(|n| compact(n).ends_with(&compact(number)));
        if shown::number(text, number) && (series.is_empty() || compact(text).contains(&compact(series))) || read(same)
        {
            c.compared = true;
        } else if let Some(n) = page.invoice_number.as_deref().filter(|_| page.is_ok()) {
            c.compared = true;
            c.differences.push(format!("number {number} in the QR code, {n} on the page"));
        }
    }
    if let Some(nif) = &code.supplier_tax_id {
        let printed = compact(text);
        let same = page.supplier.as_ref().and_then(|s| s.tax_id.as_deref()).map(|t| compact(t) == compact(nif));
        if printed.contains(&compact(nif)) || read(same) {
            c.compared = true;
        } else if let Some(t) = page.supplier.as_ref().and_then(|s| s.tax_id.as_deref()) {
            c.compared = true;
            c.differences.push(format!("NIF {nif} in the QR code, {t} on the page"));
        }
    }
    c
}

/// Put the code's fields into the result. Over the page's reading they win; under an XML they only fill gaps.
fn fill(e: &mut Extraction, code: &Code, xml: bool) {
    let source = code.kind().source();
    let mut set: Vec<&'static str> = Vec::new();
    macro_rules! put {
        ($name:literal, $slot:expr, $value:expr) => {
            if let Some(v) = $value.clone() {
                if !xml || $slot.is_none() {
                    $slot = Some(v);
                    set.push($name);
                }
            }
        };
    }
    put!("invoice_number", e.invoice_number, code.invoice_number);
    if code.invoice_number.is_some() && set.contains(&"invoice_number") {
        e.invoice_series = code.invoice_series.clone();
    }
    put!("issue_date", e.issue_date, code.issue_date);
    put!("currency", e.currency, code.currency);
    put!("total_amount", e.total_amount, code.total_amount);
    put!("tax_amount", e.tax_amount, code.tax_amount);
    put!("amount_due", e.amount_due, code.amount_due);
    let mut supplier = e.supplier.take().unwrap_or_default();
    put!("supplier.name", supplier.name, code.supplier_name);
    put!("supplier.tax_id", supplier.tax_id, code.supplier_tax_id);
    put!("supplier.country", supplier.country, code.supplier_country);
    put!("supplier.iban", supplier.iban, code.iban);
    e.supplier = (!supplier.is_empty()).then_some(supplier);
    let mut customer = e.customer.take().unwrap_or_default();
    put!("customer.name", customer.name, code.customer_name);
    put!("customer.tax_id", customer.tax_id, code.customer_tax_id);
    put!("customer.country", customer.country, code.customer_country);
    e.customer = (!customer.is_empty()).then_some(customer);
    if set.is_empty() {
        return;
    }
    let confidence = e.confidence.get_or_insert_with(BTreeMap::new);
    let sources = e.field_sources.get_or_insert_with(BTreeMap::new);
    for name in set {
        confidence.insert(name.to_string(), 1.0);
        sources.insert(name.to_string(), source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::model::{ErrorCode, Party};
    use std::str::FromStr;

    const EPC: &str = "BCD\n002\n1\nSCT\n\nBeispiel AG\nDE02100500000054540402\nEUR123.45\n\n\nRE 2019/445";
    const VERIFACTU: &str = "https://www2.agenciatributaria.gob.es/wlpl/TIKE-CONT/ValidarQR?nif=89890001K&numserie=F-7&fecha=01-09-2024&importe=241.40";

    fn found(payloads: &[&str]) -> Vec<Found> {
        payloads.iter().map(|p| Found { page: 1, payload: p.to_string() }).collect()
    }

    fn page(total: &str, iban: &str) -> (Extraction, String) {
        let mut e = Extraction::empty("f.pdf");
        e.source = Some(Source::PdfText);
        e.total_amount = Some(Decimal::from_str(total).unwrap());
        e.supplier = Some(Party { name: Some("Beispel AG".into()), iban: Some(iban.into()), ..Party::default() });
        let text = format!("Rechnung RE 2019/445\nIBAN: {iban}\nGesamtbetrag {total} EUR\n");
        (e, text)
    }

    fn check(e: &Extraction) -> Option<&Check> {
        e.checks.iter().flatten().find(|c| c.name == "qr_matches_visual")
    }

    #[test]
    fn the_codes_fields_replace_the_pages_reading_with_confidence_one_and_their_source() {
        let (mut e, text) = page("123.45", "DE02100500000054540402");
        apply(&mut e, &found(&[EPC]), &text);
        let supplier = e.supplier.as_ref().unwrap();
        assert_eq!(supplier.name.as_deref(), Some("Beispiel AG"), "the code's spelling wins");
        assert_eq!(e.amount_due, Some(Decimal::from_str("123.45").unwrap()));
        assert_eq!(e.source, Some(Source::PdfText), "the page's reading is still the result's source");
        let sources = e.field_sources.as_ref().unwrap();
        assert_eq!(sources["supplier.iban"], Source::QrEpc);
        assert_eq!(e.confidence.as_ref().unwrap()["amount_due"], 1.0);
        assert!(check(&e).unwrap().ok);
        assert!(e.read_from_qr());
    }

    #[test]
    fn a_value_the_pages_reading_found_agrees_even_where_the_text_prints_it_otherwise() {
        // OCR text with the total split by a stray space: the lookup in the text misses it, the reading has it.
        let (mut e, _) = page("123.45", "DE02100500000054540402");
        let text = "Rechnung RE 2019/445\nIBAN: DE02 1005 0000 0054 5404 02\nGesamtbetrag 1 23,45 EUR\n";
        apply(&mut e, &found(&[EPC]), text);
        assert!(check(&e).unwrap().ok, "{:?}", e.checks);
        let (mut e, _) = page("99.00", "DE02100500000054540402");
        apply(&mut e, &found(&[EPC]), text);
        assert!(!check(&e).unwrap().ok, "a reading that differs still fails the check");
    }

    #[test]
    fn an_iban_that_differs_from_the_page_fails_the_check_and_is_kept_for_the_fraud_signal() {
        let (mut e, text) = page("123.45", "DE89370400440532013000");
        apply(&mut e, &found(&[EPC]), &text);
        let c = check(&e).unwrap();
        assert!(!c.ok);
        assert!(c.detail.as_deref().unwrap().contains("DE89370400440532013000"));
        let report = &e.qr_codes.as_ref().unwrap()[0];
        assert_eq!(report.page_iban.as_deref(), Some("DE89370400440532013000"));
        assert_eq!(report.iban.as_deref(), Some("DE02100500000054540402"));
    }

    #[test]
    fn an_amount_that_differs_from_the_total_is_a_warning_not_a_rejection() {
        let (mut e, text) = page("200.00", "DE02100500000054540402");
        apply(&mut e, &found(&[EPC]), &text);
        assert!(e.is_ok());
        assert!(!check(&e).unwrap().ok);
        assert_eq!(e.total_amount, Some(Decimal::from(200)), "the page's total stays");
        assert!(e.warnings.iter().flatten().any(|w| w.contains("123.45")), "{:?}", e.warnings);
    }

    #[test]
    fn an_xml_comes_first_and_the_code_only_fills_its_gaps() {
        let mut e = Extraction::empty("f.pdf");
        e.source = Some(Source::Cii);
        e.invoice_number = Some("F-7".into());
        e.total_amount = Some(Decimal::from_str("241.40").unwrap());
        apply(&mut e, &found(&[VERIFACTU]), "Factura F-7 ... 241,40");
        assert_eq!(e.total_amount, Some(Decimal::from_str("241.40").unwrap()));
        let sources = e.field_sources.unwrap();
        assert!(!sources.contains_key("invoice_number") && !sources.contains_key("total_amount"));
        assert_eq!(sources["issue_date"], Source::QrVerifactu);
        assert_eq!(e.supplier.unwrap().tax_id.as_deref(), Some("89890001K"));
    }

    #[test]
    fn a_bare_code_is_a_result_of_its_own_and_a_refused_one_leaves_the_error() {
        let mut e = Extraction::failed("code.png", ErrorCode::NoInvoiceFound, "no invoice");
        apply(&mut e, &found(&[EPC]), "");
        assert!(e.is_ok(), "{e:?}");
        assert_eq!(e.supplier.unwrap().iban.as_deref(), Some("DE02100500000054540402"));

        let mut e = Extraction::failed("code.png", ErrorCode::NoInvoiceFound, "no invoice");
        apply(&mut e, &found(&[&EPC.replace("002", "009")]), "");
        assert!(!e.is_ok());
        assert!(e.warnings.iter().flatten().any(|w| w.contains("version")), "{:?}", e.warnings);
    }

    #[test]
    fn of_two_bills_the_one_for_the_total_gives_the_fields_and_both_are_listed() {
        let (mut e, text) = page("123.45", "DE02100500000054540402");
        let deposit = EPC.replace("EUR123.45", "EUR50.00");
        apply(&mut e, &found(&[&deposit, EPC]), &text);
        let codes = e.qr_codes.as_ref().unwrap();
        assert_eq!(codes.len(), 2);
        assert_eq!(codes.iter().filter(|c| c.used).count(), 1);
        let used = codes.iter().find(|c| c.used).unwrap();
        assert_eq!(used.amount, Some(Decimal::from_str("123.45").unwrap()));
        assert!(used.reason.as_deref().unwrap().contains("total"));
        assert_eq!(e.amount_due, Some(Decimal::from_str("123.45").unwrap()));
    }

    #[test]
    fn the_same_code_found_twice_counts_once() {
        let (mut e, text) = page("123.45", "DE02100500000054540402");
        apply(&mut e, &found(&[EPC, EPC]), &text);
        assert_eq!(e.qr_codes.unwrap().len(), 1);
    }
}
