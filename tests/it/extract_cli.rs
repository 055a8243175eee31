//! `invoice-intake extract --json` as a user runs it: real binary, real jail, real poppler and tesseract.

use crate::common;

use common::pdf::{SampleInvoice, ScanOptions};
use serde_json::Value;
use std::process::Command;

fn extract(args: &[&str]) -> Vec<Value> {
    let out =
        Command::new(env!("CARGO_BIN_EXE_invoice-intake")).arg("extract").args(args).output().expect("run extract");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Exit 0 when every result is ok, 1 when any failed: what a script running `extract` branches on.
    let any_failed = lines.iter().any(|l| l["status"] != "ok");
    assert_eq!(out.status.code(), Some(i32::from(any_failed)), "{}", String::from_utf8_lossy(&out.stderr));
    lines
}

#[test]
fn extract_exits_non_zero_when_any_file_fails_and_still_reads_the_others() {
    let good = common::corpus("einvoice/en16931-cen/ubl/examples/ubl-tc434-example1.xml");
    let run = |files: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_invoice-intake"))
            .args(["extract", "--json"])
            .args(files)
            .env_remove("INVOICE_INTAKE_CONFIG")
            .output()
            .expect("run extract")
    };
    let ok = run(&[good.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let mixed = run(&[good.to_str().unwrap(), "/nonexistent/invoice.pdf"]);
    assert_eq!(mixed.status.code(), Some(1));
    let lines: Vec<Value> =
        String::from_utf8(mixed.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "both files are answered: {lines:?}");
    assert!(lines.iter().any(|l| l["status"] == "ok") && lines.iter().any(|l| l["error"]["code"] == "unreadable"));
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/invoice.schema.json"))
        .expect("schema/invoice.schema.json");
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("the schema compiles")
}

#[test]
fn corpus_files_give_one_valid_schema_line_each() {
    let files = [
        "einvoice/en16931-cen/ubl/examples/ubl-tc434-example1.xml",
        "einvoice/en16931-cen/cii/examples/CII_example1.xml",
        "einvoice/facturae/gobl.facturae/out/invoice-vat-irpf.xml",
        "einvoice/zugferd-corpus/ZUGFeRDv2/correct/FNFE-factur-x-examples/Facture_DOM_BASICWL.pdf",
        "einvoice/zugferd-corpus/unstructured/RE-E-974-Hetzner_2016-01-19_R0005532486.pdf",
        "einvoice/zugferd-corpus/fatturaPA/official/valid/IT01234567890_FPA01.xml",
    ];
    let paths: Vec<String> = files.iter().map(|f| common::corpus(f).display().to_string()).collect();
    let args: Vec<&str> = std::iter::once("--json").chain(paths.iter().map(String::as_str)).collect();
    let lines = extract(&args);
    assert_eq!(lines.len(), files.len(), "one line per file: {lines:#?}");
    let validator = schema();
    for (line, path) in lines.iter().zip(&paths) {
        let errors: Vec<String> =
            validator.iter_errors(line).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{path}: {errors:?}");
        assert_eq!(line["file"].as_str(), Some(path.as_str()), "`file` is the path as given");
    }
    for line in &lines[..5] {
        assert_eq!(line["status"], "ok", "{line}");
    }
    assert_eq!(lines[0]["invoice_number"], "12115118");
    assert_eq!(lines[2]["source"], "facturae");
    assert_eq!(lines[4]["source"], "pdf_text", "the Hetzner invoice has no XML: {}", lines[4]);
    assert_eq!(lines[0]["source"], "ubl");
    assert_eq!(lines[5]["status"], "error", "FatturaPA is not read: {}", lines[5]);
    assert!(lines[5]["error"]["message"].as_str().unwrap().contains("FatturaPA"), "{}", lines[5]);
}

#[test]
fn a_generated_spanish_pdf_is_read_from_its_text_layer() {
    let dir = tempfile::tempdir().unwrap();
    let inv = SampleInvoice::with_irpf("2025/117");
    let path = dir.path().join("factura.pdf");
    std::fs::write(&path, inv.render_pdf()).unwrap();
    let line = &extract(&["--json", path.to_str().unwrap()])[0];
    assert_eq!(line["status"], "ok", "{line}");
    assert_eq!(line["source"], "pdf_text");
    assert_eq!(line["invoice_number"], "2025/117");
    assert_eq!(line["issue_date"], "2025-10-15");
    assert_eq!(line["supplier"]["tax_id"], inv.supplier_nif);
    assert_eq!(line["customer"]["tax_id"], inv.customer_nif);
    let amount = |k: &str| line[k].as_str().map(|s| s.parse::<rust_decimal::Decimal>().unwrap());
    assert_eq!(amount("net_amount"), Some(inv.net()));
    assert_eq!(amount("tax_amount"), Some(inv.tax()));
    assert_eq!(amount("total_amount"), Some(inv.total()));
    assert_eq!(amount("amount_due"), Some(inv.due()), "IRPF withholding lowers the amount due");
}

#[test]
fn hostile_and_broken_files_each_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend([0u8; 64]);
    let mut truncated = SampleInvoice::basic("T-1").render_pdf();
    truncated.truncate(300);
    // A PNG header claiming 60000×60000 pixels: a decompression bomb is refused before decoding.
    let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bomb.extend(60000u32.to_be_bytes());
    bomb.extend(60000u32.to_be_bytes());
    bomb.extend([8, 0, 0, 0, 0, 0, 0, 0, 0]);
    let xxe = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>&e;</ID></Invoice>"#;
    let cases = [
        (write("empty.pdf", b""), "unreadable"),
        (write("random.pdf", &[0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]), "unreadable"),
        (write("archive.pdf", &zip), "unreadable"),
        (write("truncated.pdf", &truncated), "unreadable"),
        (write("bomb.png", &bomb), "too_large"),
        (write("xxe.xml", xxe), "invalid_einvoice"),
        (write("notes.docx", b"\xD0\xCF\x11\xE0 old office"), "unsupported_type"),
    ];
    let args: Vec<&str> = std::iter::once("--json").chain(cases.iter().map(|(p, _)| p.as_str())).collect();
    let lines = extract(&args);
    for ((path, code), line) in cases.iter().zip(&lines) {
        assert_eq!(line["status"], "error", "{path}: {line}");
        assert_eq!(line["error"]["code"], *code, "{path}: {line}");
        assert!(
            !line["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{path}: a message the supplier can act on"
        );
    }
    assert!(!lines[5].to_string().contains("root:"), "XXE must not leak /etc/passwd");
}

/// A Factur-X PDF carries its invoice twice: the XML and the page. When they agree the XML is read and the
/// comparison recorded; when the XML's total differs from the page's, the result says so in a failed check and
/// a warning, which the reply and the accountants' confirmation show (a known error and fraud pattern).
#[test]
fn a_factur_x_pdf_whose_xml_total_differs_from_the_page_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let inv = SampleInvoice::basic("FX-2025-031");
    let honest = dir.path().join("honest.pdf");
    let forged = dir.path().join("forged.pdf");
    std::fs::write(&honest, inv.render_pdf_with_xml(&inv.factur_x_xml(inv.total()))).unwrap();
    let other_total = inv.total() + rust_decimal::Decimal::new(10000, 2);
    std::fs::write(&forged, inv.render_pdf_with_xml(&inv.factur_x_xml(other_total))).unwrap();
    let lines = extract(&["--json", honest.to_str().unwrap(), forged.to_str().unwrap()]);
    let check = |line: &Value| {
        line["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "xml_matches_visual")
            .cloned()
            .unwrap_or_else(|| panic!("no xml_matches_visual check: {line}"))
    };

    let ok = &lines[0];
    assert_eq!(ok["status"], "ok", "{ok}");
    assert_eq!(ok["source"], "cii", "the embedded XML is read first, not the page: {ok}");
    assert_eq!(ok["invoice_number"], "FX-2025-031");
    assert_eq!(ok["total_amount"], inv.total().to_string());
    assert_eq!(check(ok)["ok"], true, "{ok}");

    let bad = &lines[1];
    assert_eq!(bad["status"], "ok", "a mismatch is flagged, not rejected: {bad}");
    assert_eq!(bad["total_amount"], other_total.to_string(), "the XML is the invoice (EN 16931)");
    let c = check(bad);
    assert_eq!(c["ok"], false, "{bad}");
    let detail = c["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&other_total.to_string()) && detail.contains(&inv.total().to_string()),
        "the check names both totals: {detail}"
    );
    let warnings = bad["warnings"].to_string();
    assert!(warnings.contains("does not match"), "a warning for the reply: {warnings}");
}

/// A sheet fed sideways or upside down is turned upright (tesseract's orientation detection) and read like any
/// other scan.
#[test]
fn a_scan_fed_sideways_or_upside_down_is_read_upright() {
    let dir = tempfile::tempdir().unwrap();
    let inv = SampleInvoice::basic("GIRO-2025-090");
    let mut paths = Vec::new();
    for turn in [90, 180, 270] {
        let opts = ScanOptions { dpi: 200, angle: 0.0, noise: 1, jpeg: None, seed: 7, turn };
        let path = dir.path().join(format!("turned-{turn}.png"));
        std::fs::write(&path, inv.render_scan(&opts).expect("pdftoppm renders the scan")).unwrap();
        paths.push(path.display().to_string());
    }
    let args: Vec<&str> = std::iter::once("--json").chain(paths.iter().map(String::as_str)).collect();
    for line in extract(&args) {
        assert_eq!(line["status"], "ok", "{line}");
        assert_eq!(line["source"], "ocr");
        assert_eq!(line["invoice_number"], "GIRO-2025-090", "{line}");
        assert_eq!(line["total_amount"], inv.total().to_string(), "{line}");
        let nif = &line["supplier"]["tax_id"];
        assert!(nif.is_null() || *nif == inv.supplier_nif, "missing is acceptable from OCR, wrong is not: {line}");
    }
}
