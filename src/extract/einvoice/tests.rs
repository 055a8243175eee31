//! Tests of the public API: the real corpus (standalone XML and XML embedded in PDFs) scored by the rules of
//! EVALUATION.md, hostile XML, unsupported formats and the arithmetic checks.

use super::*;
use crate::eval::{score_document, Verdict as Outcome, FIELDS as SCORED_FIELDS};
use crate::extract::model::{Check, DocumentType, Source};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/einvoice");

fn corpus(relative: &str) -> PathBuf {
    Path::new(CORPUS).join(relative)
}

fn read_corpus(relative: &str) -> Vec<u8> {
    std::fs::read(corpus(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn parse_one(relative: &str) -> Extraction {
    let mut all = parse(relative, &read_corpus(relative), &XmlLimits::default()).unwrap();
    assert_eq!(all.len(), 1, "{relative}");
    all.remove(0)
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Every file under `dir` (recursively) whose name ends with one of `extensions` (case-insensitive), sorted.
fn files(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().to_lowercase();
            if path.is_dir() {
                stack.push(path);
            } else if extensions.iter().any(|ext| name.ends_with(ext)) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn expected_for(path: &Path) -> Option<serde_json::Value> {
    let mut name = path.as_os_str().to_owned();
    name.push(".expected.json");
    let text = std::fs::read_to_string(PathBuf::from(name)).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

/// The error code a negative sample's truth asks for (`{"status":"error","error":{"code":…}}`).
fn expected_error(expected: &serde_json::Value) -> Option<String> {
    (expected["status"] == "error").then(|| expected["error"]["code"].as_str().unwrap_or_default().to_string())
}

fn relative(path: &Path) -> String {
    path.strip_prefix(CORPUS).unwrap_or(path).display().to_string()
}

/// Per-field tallies and the list of mismatches, printed as a table.
#[derive(Default)]
struct Scoreboard {
    fields: BTreeMap<&'static str, [usize; 3]>, // correct, missing, wrong
    mismatches: Vec<String>,
    documents: usize,
}

impl Scoreboard {
    fn add(&mut self, name: &str, expected: &serde_json::Value, result: Option<&Extraction>) {
        self.documents += 1;
        let actual = result.map_or(serde_json::Value::Null, |e| serde_json::to_value(e).unwrap());
        for (field, outcome, want, got) in score_document(expected, &actual) {
            let tally = self.fields.entry(field).or_default();
            tally[outcome as usize] += 1;
            if outcome != Outcome::Correct {
                self.mismatches.push(format!("{name}: {field} {outcome:?}: expected {want:?}, got {got:?}"));
            }
        }
    }

    fn table(&self) -> String {
        let mut out =
            format!("{} documents\n{:<16} {:>8} {:>8} {:>8}\n", self.documents, "field", "correct", "missing", "wrong");
        let mut total = [0usize; 3];
        for field in SCORED_FIELDS {
            let t = self.fields.get(field).copied().unwrap_or_default();
            let n = t.iter().sum::<usize>();
            out += &format!("{field:<16} {:>4}/{n:<3} {:>8} {:>8}\n", t[0], t[1], t[2]);
            (0..3).for_each(|i| total[i] += t[i]);
        }
        let n = total.iter().sum::<usize>();
        out += &format!("{:<16} {:>4}/{n:<3} {:>8} {:>8}\n", "ALL", total[0], total[1], total[2]);
        for m in &self.mismatches {
            out += &format!("  {m}\n");
        }
        out
    }

    fn assert_perfect(&self, what: &str) {
        println!("{what}\n{}", self.table());
        assert!(self.documents > 0, "{what}: no document with an expected.json found");
        assert!(self.mismatches.is_empty(), "{what}: not every field is correct\n{}", self.table());
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

#[test]
fn every_corpus_xml_with_an_expected_json_is_read_exactly() {
    let mut board = Scoreboard::default();
    let mut times = Vec::new();
    for path in files(Path::new(CORPUS), &[".xml"]) {
        let Some(expected) = expected_for(&path) else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        let name = relative(&path);
        let start = Instant::now();
        let result = parse(&name, &bytes, &XmlLimits::default());
        times.push(start.elapsed());
        if let Some(code) = expected_error(&expected) {
            // A negative sample: the right typed error is the right answer.
            let got = result.as_ref().err().map(|e| crate::extract::einvoice_error(&name, e));
            let got = got.and_then(|e| e.error).map(|e| e.code.as_str().to_string());
            if got.as_deref() != Some(code.as_str()) {
                board.mismatches.push(format!("{name}: expected error {code}, got {got:?}"));
            }
            continue;
        }
        match &result {
            Ok(all) => board.add(&name, &expected, all.first()),
            Err(err) => {
                board.mismatches.push(format!("{name}: error {err}"));
                board.add(&name, &expected, None);
            }
        }
    }
    println!("median parse time per XML: {:?} over {} files", median(times), board.documents);
    board.assert_perfect("standalone XML files");
}

/// Attachments of a PDF, extracted with poppler's `pdfdetach` into a temporary directory.
fn embedded_xml(pdf: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("pdfdetach")
        .arg("-saveall")
        .arg("-o")
        .arg(dir.path())
        .arg(pdf)
        .output()
        .expect("pdfdetach (poppler-utils) is needed to test the XML embedded in the corpus PDFs");
    if !out.status.success() {
        return Vec::new();
    }
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(Result::unwrap)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .filter(|(name, _)| name.to_lowercase().ends_with(".xml"))
        .collect();
    // The names Factur-X / ZUGFeRD give the invoice; any other attachment comes last.
    let rank = |name: &str| match name.to_lowercase().as_str() {
        "factur-x.xml" => 0,
        "zugferd-invoice.xml" => 1,
        "xrechnung.xml" => 2,
        _ => 3,
    };
    found.sort_by_key(|(name, _)| rank(name));
    found
}

#[test]
fn the_xml_embedded_in_every_corpus_pdf_with_an_expected_json_is_read_exactly() {
    let mut board = Scoreboard::default();
    for path in files(Path::new(CORPUS), &[".pdf"]) {
        let Some(expected) = expected_for(&path) else {
            continue;
        };
        let name = relative(&path);
        let attachments = embedded_xml(&path);
        // A PDF with no XML at all (a visual-only print, a blank page) is for the page readers; the eval of the
        // corpus with --no-embedded scores those.
        if attachments.is_empty() || expected_error(&expected).is_some() {
            continue;
        }
        let result = attachments.iter().find_map(|(_, bytes)| parse(&name, bytes, &XmlLimits::default()).ok());
        if result.is_none() {
            board.mismatches.push(format!("{name}: no readable e-invoice among {} XML attachments", attachments.len()));
        }
        board.add(&name, &expected, result.as_ref().and_then(|all| all.first()));
    }
    board.assert_perfect("XML embedded in PDFs");
}

/// Every XML of the corpus, negatives included, gives a result or a typed error: never a panic.
#[test]
fn no_corpus_xml_makes_the_reader_panic() {
    for path in files(Path::new(CORPUS), &[".xml"]) {
        let bytes = std::fs::read(&path).unwrap();
        let outcome = match parse(&relative(&path), &bytes, &XmlLimits::default()) {
            Ok(all) => {
                let failed: Vec<String> = all
                    .iter()
                    .flat_map(|e| e.failed_checks())
                    .map(|c| format!("{}: {}", c.name, c.detail.as_deref().unwrap_or("")))
                    .collect();
                format!("ok, {} invoice(s), failed checks {failed:?}", all.len())
            }
            Err(err) => format!("error: {err}"),
        };
        println!("{}: {outcome}", relative(&path));
    }
}

#[test]
fn an_external_entity_is_refused_and_never_read() {
    let xxe = br#"<?xml version="1.0"?>
<!DOCTYPE Invoice [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>&xxe;</ID></Invoice>"#;
    let err = parse("xxe.xml", xxe, &XmlLimits::default()).unwrap_err();
    match err {
        EinvoiceError::Invalid { line, message, .. } => {
            assert_eq!(line, 2);
            assert!(message.contains("DTD"), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn billion_laughs_is_refused_without_expanding() {
    let mut bomb = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 { "lol".to_string() } else { format!("lol{}", i - 1) };
        bomb += &format!(" <!ENTITY lol{i} \"{}\">\n", format!("&{prev};").repeat(10));
    }
    bomb += "]>\n<lolz>&lol9;</lolz>";
    let start = Instant::now();
    let err = parse("lol.xml", bomb.as_bytes(), &XmlLimits::default()).unwrap_err();
    assert!(matches!(err, EinvoiceError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("DTD"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_harmless_looking_doctype_is_refused_too() {
    let xml = b"<!DOCTYPE Invoice SYSTEM \"http://example.com/x.dtd\"><Invoice/>";
    assert!(matches!(parse("d.xml", xml, &XmlLimits::default()), Err(EinvoiceError::Invalid { .. })));
}

#[test]
fn a_depth_bomb_is_too_large_without_overflowing_the_stack() {
    let depth = 100_000;
    let bomb = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    let err = parse("deep.xml", bomb.as_bytes(), &XmlLimits::default()).unwrap_err();
    assert!(matches!(err, EinvoiceError::TooLarge(ref m) if m.contains("deeper")), "{err:?}");
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let limits = XmlLimits { max_bytes: 1024, ..XmlLimits::default() };
    let big = format!("<a>{}</a>", "x".repeat(2000));
    let err = parse("big.xml", big.as_bytes(), &limits).unwrap_err();
    assert!(matches!(err, EinvoiceError::TooLarge(_)), "{err:?}");
}

#[test]
fn too_many_nodes_are_too_large() {
    let limits = XmlLimits { max_nodes: 1000, ..XmlLimits::default() };
    let wide = format!("<a>{}</a>", "<b/>".repeat(5000));
    let err = parse("wide.xml", wide.as_bytes(), &limits).unwrap_err();
    assert!(matches!(err, EinvoiceError::TooLarge(_)), "{err:?}");
}

#[test]
fn broken_xml_reports_its_line_and_column() {
    let err = parse("b.xml", b"<Invoice>\n  <ID>1</Id>\n</Invoice>", &XmlLimits::default()).unwrap_err();
    assert!(matches!(err, EinvoiceError::Invalid { line: 2, .. }), "{err:?}");
}

#[test]
fn fatturapa_is_unsupported_and_named() {
    let bytes = read_corpus("zugferd-corpus/fatturaPA/official/valid/IT01234567890_FPA01.xml");
    let err = parse("it.xml", &bytes, &XmlLimits::default()).unwrap_err();
    assert!(matches!(err, EinvoiceError::Unsupported { ref format } if format.contains("FatturaPA")), "{err:?}");
    assert_eq!(sniff_format(&bytes), Some("fatturapa"));
}

#[test]
fn order_x_is_unsupported_and_named() {
    let bytes = read_corpus("akretion-factur-x/tests/fixtures/xml/order-x-basic.xml");
    let err = parse("o.xml", &bytes, &XmlLimits::default()).unwrap_err();
    assert!(matches!(err, EinvoiceError::Unsupported { ref format } if format == "Order-X"), "{err:?}");
}

#[test]
fn a_ubl_order_is_unsupported_and_named() {
    let xml = br#"<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"><ID>1</ID></Order>"#;
    let err = parse("order.xml", xml, &XmlLimits::default()).unwrap_err();
    assert_eq!(err.to_string(), "unsupported e-invoice format: UBL Order");
}

#[test]
fn other_xml_is_not_an_einvoice() {
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>"#;
    let err = parse("pic.svg", svg, &XmlLimits::default()).unwrap_err();
    assert!(matches!(err, EinvoiceError::NotEinvoice { ref root } if root.ends_with("svg")), "{err:?}");
    assert_eq!(sniff_format(svg), None);
}

#[test]
fn sniffing_names_each_format() {
    let cases = [
        ("en16931-cen/cii/examples/CII_example1.xml", Some("cii")),
        ("en16931-cen/ubl/examples/ubl-tc434-creditnote1.xml", Some("ubl")),
        ("facturae/gobl.facturae/out/invoice-vat.xml", Some("facturae")),
        ("akretion-factur-x/tests/fixtures/xml/order-x-comfort.xml", Some("order-x")),
    ];
    for (file, expected) in cases {
        assert_eq!(sniff_format(&read_corpus(file)), expected, "{file}");
    }
    assert_eq!(sniff_format(b"not xml at all"), None);
}

#[test]
fn zugferd_1_is_read_as_cii() {
    let xml = read_corpus("mustangproject/validator/src/test/resources/validV1.xml");
    let e = parse("v1.xml", &xml, &XmlLimits::default()).unwrap().remove(0);
    assert_eq!(e.source, Some(Source::Cii));
    assert!(e.invoice_number.is_some() && e.total_amount.is_some());
}

#[test]
fn a_ubl_credit_note_is_a_credit_note() {
    let e = parse_one("en16931-cen/ubl/examples/ubl-tc434-creditnote1.xml");
    assert_eq!(e.source, Some(Source::Ubl));
    assert_eq!(e.document_type, Some(DocumentType::CreditNote));
}

#[test]
fn type_code_384_is_a_corrected_invoice() {
    let e = parse_one("xrechnung-testsuite/business-cases/standard/01.18a-INVOICE_uncefact.xml");
    assert_eq!(e.document_type, Some(DocumentType::CorrectedInvoice));
}

/// Its totals are consistent; its first line is not (2 x 160.00 written as 160.00). That is the line amount
/// rule (BT-131 = BT-129 x BT-146 / BT-149), which no BR-CO rule covers.
#[test]
fn invalid_arithmetics_is_read_and_flagged() {
    let e = parse_one("mustangproject/validator/src/test/resources/invalidArithmetics.xml");
    assert_eq!(e.invoice_number.as_deref(), Some("RE-20171118/506"));
    assert_eq!(e.total_amount, Some(d("571.04")));
    let failed: Vec<&Check> = e.failed_checks().collect();
    assert_eq!(failed.len(), 1, "{:?}", e.checks);
    assert_eq!(failed[0].name, "PEPPOL-EN16931-R120");
    let detail = failed[0].detail.as_deref().unwrap();
    assert!(detail.contains("line 1") && detail.contains("160.00") && detail.contains("320"), "{detail}");
    let warnings = e.warnings.clone().unwrap_or_default();
    assert!(warnings.iter().any(|w| w.contains("do not add up") && w.contains("R120")), "{warnings:?}");
}

#[test]
fn wrong_totals_fail_their_br_co_rules() {
    let xml =
        String::from_utf8(read_corpus("mustangproject/validator/src/test/resources/invalidArithmetics.xml")).unwrap();
    let xml = xml.replace("<ram:GrandTotalAmount>571.04<", "<ram:GrandTotalAmount>581.04<");
    let e = parse("t.xml", xml.as_bytes(), &XmlLimits::default()).unwrap().remove(0);
    let failed: Vec<&str> = e.failed_checks().map(|c| c.name.as_str()).collect();
    assert!(failed.contains(&"BR-CO-15") && failed.contains(&"BR-CO-16"), "{failed:?}");
}

#[test]
fn a_consistent_invoice_passes_its_checks() {
    let e = parse_one("xrechnung-testsuite/business-cases/standard/01.01a-INVOICE_uncefact.xml");
    let names: Vec<&str> = e.checks.iter().flatten().map(|c| c.name.as_str()).collect();
    for rule in ["BR-CO-10", "BR-CO-13", "BR-CO-15", "BR-CO-16", "BR-CO-17", "PEPPOL-EN16931-R120"] {
        assert!(names.contains(&rule), "{rule} not run: {names:?}");
    }
    assert_eq!(e.failed_checks().count(), 0, "{:?}", e.checks);
    assert!(e.warnings.is_none(), "{:?}", e.warnings);
}

#[test]
fn facturae_irpf_withholding_lowers_the_amount_due() {
    let e = parse_one("facturae/gobl.facturae/out/invoice-vat-irpf.xml");
    assert_eq!(e.source, Some(Source::Facturae));
    assert_eq!(e.total_amount, Some(d("5080.92")));
    assert_eq!(e.amount_due, Some(d("4480.62")));
    assert_eq!(e.total_amount.unwrap() - d("600.30"), e.amount_due.unwrap());
    assert_eq!(e.failed_checks().count(), 0, "{:?}", e.checks);
}

/// The same invoice written the way the Facturae specification defines `InvoiceTotal` (withholding taken off).
#[test]
fn facturae_invoice_total_after_withholding_still_gives_the_total_before_it() {
    let xml = String::from_utf8(read_corpus("facturae/gobl.facturae/out/invoice-vat-irpf.xml")).unwrap();
    let xml = xml.replace("<InvoiceTotal>5080.92</InvoiceTotal>", "<InvoiceTotal>4480.62</InvoiceTotal>");
    let e = parse("f.xml", xml.as_bytes(), &XmlLimits::default()).unwrap().remove(0);
    assert_eq!(e.total_amount, Some(d("5080.92")));
    assert_eq!(e.amount_due, Some(d("4480.62")));
    assert_eq!(e.failed_checks().count(), 0, "{:?}", e.checks);
}

#[test]
fn every_facturae_3_2_version_is_read() {
    let xml = String::from_utf8(read_corpus("facturae/gobl.facturae/out/invoice-vat.xml")).unwrap();
    let v322 = "http://www.facturae.gob.es/formato/Versiones/Facturaev3_2_2.xml";
    for ns in [
        v322,
        "http://www.facturae.es/Facturae/2014/v3.2.1/Facturae",
        "http://www.facturae.es/Facturae/2009/v3.2/Facturae",
    ] {
        let xml = xml.replace(v322, ns);
        let all = parse("f.xsig", xml.as_bytes(), &XmlLimits::default()).unwrap();
        assert_eq!(all[0].invoice_number.as_deref(), Some("TEST01001F"), "{ns}");
        assert_eq!(sniff_format(xml.as_bytes()), Some("facturae"), "{ns}");
    }
}

#[test]
fn a_signed_facturae_is_read_and_its_individual_seller_named() {
    let e = parse_one("facturae/gobl.facturae/out/invoice-vat-irpf.xml");
    let seller = e.supplier.unwrap();
    assert_eq!(seller.name.as_deref(), Some("Maria Remedios Sanchez Nuñez"));
    assert_eq!(seller.tax_id.as_deref(), Some("37221735F"));
}

#[test]
fn a_facturae_rectificativa_is_a_corrected_invoice() {
    let e = parse_one("facturae/gobl.facturae/out/credit-note.xml");
    assert_eq!(e.document_type, Some(DocumentType::CorrectedInvoice));
    assert_eq!(e.invoice_number.as_deref(), Some("TEST01001R"), "not the corrected invoice's number");
}

#[test]
fn a_facturae_batch_gives_one_extraction_per_invoice() {
    let xml = String::from_utf8(read_corpus("facturae/gobl.facturae/out/invoice-vat.xml")).unwrap();
    let start = xml.find("<Invoice>").unwrap();
    let end = xml.find("</Invoice>").unwrap() + "</Invoice>".len();
    let second = xml[start..end].replace(
        "<InvoiceNumber>TEST01001F</InvoiceNumber>",
        "<InvoiceNumber>2</InvoiceNumber><InvoiceSeriesCode>B</InvoiceSeriesCode>",
    );
    let batch = format!("{}{second}{}", &xml[..end], &xml[end..]);
    let all = parse("batch.xsig", batch.as_bytes(), &XmlLimits::default()).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].invoice_number.as_deref(), Some("TEST01001F"));
    assert_eq!(all[1].display_number().as_deref(), Some("B-2"));
    assert_eq!(all[1].supplier, all[0].supplier, "the batch's parties apply to every invoice");
}

#[test]
fn a_utf16_invoice_is_read() {
    let xml = String::from_utf8(read_corpus("en16931-cen/ubl/examples/ubl-tc434-example1.xml")).unwrap();
    let xml = xml.replacen("encoding=\"UTF-8\"", "encoding=\"UTF-16\"", 1);
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(xml.encode_utf16().flat_map(u16::to_le_bytes));
    let e = parse("u16.xml", &bytes, &XmlLimits::default()).unwrap().remove(0);
    assert_eq!(e.invoice_number.as_deref(), Some("12115118"));
}

#[test]
fn a_peppol_envelope_is_opened() {
    let inner = String::from_utf8(read_corpus("en16931-cen/ubl/examples/ubl-tc434-example1.xml")).unwrap();
    let inner = &inner[inner.find("<Invoice").unwrap()..];
    let sbd = format!(
        "<StandardBusinessDocument xmlns=\"http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader\">\
         <StandardBusinessDocumentHeader><HeaderVersion>1.0</HeaderVersion></StandardBusinessDocumentHeader>{inner}\
         </StandardBusinessDocument>"
    );
    let e = parse("sbd.xml", sbd.as_bytes(), &XmlLimits::default()).unwrap().remove(0);
    assert_eq!(e.invoice_number.as_deref(), Some("12115118"));
}

#[test]
fn amounts_keep_their_written_scale_and_every_field_has_confidence_one() {
    let e = parse_one("en16931-cen/ubl/examples/ubl-tc434-example1.xml");
    assert_eq!(e.net_amount.unwrap().to_string(), "229.60");
    let confidence = e.confidence.unwrap();
    assert_eq!(confidence.get("net_amount"), Some(&1.0));
    assert_eq!(confidence.get("supplier.iban"), Some(&1.0));
    assert!(confidence.values().all(|&c| c == 1.0));
}

#[test]
fn tax_total_in_the_accounting_currency_is_not_the_vat_total() {
    // BT-110 is 675.00 DKK (the invoice currency); BT-111 is 628.62 EUR (the VAT accounting currency).
    let e = parse_one("en16931-cen/cii/examples/CII_example5.xml");
    assert_eq!(e.currency.as_deref(), Some("DKK"));
    assert_eq!(e.tax_amount, Some(d("675.00")));
}
