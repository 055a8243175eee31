//! Codes on the page, through the real binary and the real jail: generated invoices carrying each of the five
//! kinds of code, codes that disagree with their page, two bills on one page, the QR corpus scored by `eval`, and
//! a tampered IBAN followed to the accountants' `[ALERTA]` and to `status`.

use crate::common;

use common::pdf::{QrDrawing, SampleInvoice, ScanOptions};
use common::qr::{self, epc, iban};
use common::{MailBuilder, TestWorld};
use rust_decimal::Decimal;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_invoice-intake"))
}

/// `extract --json` on `files` in `dir`, one result each.
fn extract(dir: &Path, files: &[&str]) -> Vec<Value> {
    let out = bin().arg("extract").arg("--json").args(files.iter().map(|f| dir.join(f))).output().expect("run extract");
    assert!(out.status.success(), "extract failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A field of a result by its dotted name (`supplier.iban`).
fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    name.split('.').fold(v, |v, k| &v[k])
}

/// Every field the code carries is in the result, with the code's value and source, at confidence 1.
fn assert_fields(result: &Value, source: &str, want: &[(&str, String)]) {
    assert_eq!(result["status"], "ok", "{result}");
    for (name, value) in want {
        let got = field(result, name);
        let same = match (got.as_str(), value.parse::<Decimal>()) {
            (Some(g), Ok(d)) if name.contains("amount") => g.parse::<Decimal>().ok() == Some(d),
            (Some(g), _) => g == value,
            _ => false,
        };
        assert!(same, "{source}: {name} is {got}, the code says {value}: {result}");
        assert_eq!(result["field_sources"][name], source, "{name}: {result}");
        assert_eq!(result["confidence"][name], 1.0, "{name}: {result}");
    }
    let check = result["checks"].as_array().into_iter().flatten().find(|c| c["name"] == "qr_matches_visual");
    assert_eq!(check.map(|c| &c["ok"]), Some(&Value::Bool(true)), "{source}: {result}");
}

#[test]
fn each_kind_of_code_on_a_generated_invoice_gives_every_field_it_carries() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut expectations = Vec::new();
    for c in qr::five_kinds() {
        // Every kind as an embedded image; VeriFactu also drawn in vector graphics (the page is rendered).
        let drawings: &[(QrDrawing, &str)] = if c.source == "qr_verifactu" {
            &[(QrDrawing::Image, ""), (QrDrawing::Vector, "-vector")]
        } else {
            &[(QrDrawing::Image, "")]
        };
        for (drawing, suffix) in drawings {
            let name = format!("{}{suffix}.pdf", c.name);
            let pdf = c.invoice.render_pdf_with_qr(&[&c.payload], &c.caption, *drawing);
            std::fs::write(dir.path().join(&name), pdf).unwrap();
            files.push(name);
            expectations.push(c.clone());
        }
    }
    let names: Vec<&str> = files.iter().map(String::as_str).collect();
    let results = extract(dir.path(), &names);
    assert_eq!(results.len(), files.len());
    for ((result, c), file) in results.iter().zip(&expectations).zip(&files) {
        assert_fields(result, c.source, &c.fields);
        assert!(result["file"].as_str().unwrap().ends_with(file.as_str()));
    }
}

/// A scanner's image-only PDF has no text layer to announce a code and no code image apart from the page: the
/// code is read from the page rendered for OCR. An invoice sent as a picture is read the same way.
#[test]
fn a_scanned_pdf_and_a_photographed_invoice_give_their_codes_fields() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ScanOptions { dpi: 200, angle: 1.2, noise: 1, jpeg: Some(70), seed: 5, turn: 0 };
    let (swiss, epc) = (qr::swiss(), qr::girocode());
    for c in [&swiss, &epc] {
        let pdf = c.invoice.render_scan_with_qr(&[&c.payload], &c.caption, &opts, true).unwrap();
        let file = dir.path().join(format!("{}.pdf", c.name));
        std::fs::write(&file, pdf).unwrap();
        let text = Command::new("pdftotext").arg(&file).arg("-").output().unwrap().stdout;
        assert!(String::from_utf8_lossy(&text).trim().is_empty(), "an image-only PDF has no text layer");
    }
    // One page scanned to a JPEG, as a phone or a scanner's e-mail button sends it.
    let jpeg = epc.invoice.render_scan_with_qr(&[&epc.payload], &epc.caption, &opts, false).unwrap();
    std::fs::write(dir.path().join("epc.jpg"), jpeg).unwrap();

    let results = extract(dir.path(), &["swiss.pdf", "epc.pdf", "epc.jpg"]);
    assert_fields(&results[0], swiss.source, &swiss.fields);
    assert_fields(&results[1], epc.source, &epc.fields);
    assert_fields(&results[2], epc.source, &epc.fields);
    for r in &results {
        assert_eq!(r["source"], "ocr", "the rest of the page is read by OCR: {r}");
    }
}

#[test]
fn a_code_that_disagrees_with_its_page_is_a_failed_check_and_names_the_page_iban() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = SampleInvoice::basic("GC-2025-8");
    let printed = qr::spanish_iban();
    let sticker = iban("DE", "370400440532013000");
    inv.iban = Some(printed.clone());
    let tampered = epc(&inv, &sticker, inv.total());
    std::fs::write(dir.path().join("iban.pdf"), inv.render_pdf_with_qr(&[&tampered], "GiroCode", QrDrawing::Image))
        .unwrap();
    let partial = inv.total() - Decimal::from(100);
    let short = epc(&inv, &printed, partial);
    std::fs::write(dir.path().join("amount.pdf"), inv.render_pdf_with_qr(&[&short], "GiroCode", QrDrawing::Image))
        .unwrap();

    let r = extract(dir.path(), &["iban.pdf", "amount.pdf"]);
    let check = |v: &Value| v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "qr_matches_visual").cloned();
    assert_eq!(r[0]["status"], "ok", "{}", r[0]);
    assert_eq!(check(&r[0]).unwrap()["ok"], false, "{}", r[0]);
    assert_eq!(r[0]["qr_codes"][0]["iban"], sticker.as_str());
    assert_eq!(r[0]["qr_codes"][0]["page_iban"], printed.as_str(), "{}", r[0]);

    assert_eq!(r[1]["status"], "ok", "an amount that differs is not a rejection: {}", r[1]);
    let c = check(&r[1]).unwrap();
    assert_eq!(c["ok"], false, "{}", r[1]);
    assert!(c["detail"].as_str().unwrap().contains(&partial.to_string()), "{c}");
    assert!(r[1]["warnings"].to_string().contains("does not match the page"), "{}", r[1]);
    assert_eq!(r[1]["total_amount"].as_str().and_then(|t| t.parse::<Decimal>().ok()), Some(inv.total()));
    assert!(r[1]["qr_codes"][0].get("page_iban").is_none(), "{}", r[1]);
}

#[test]
fn two_bills_on_one_page_say_which_one_gave_the_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = SampleInvoice::basic("GC-2025-9");
    let printed = qr::spanish_iban();
    inv.iban = Some(printed.clone());
    let deposit = epc(&inv, &printed, Decimal::from(50));
    let full = epc(&inv, &printed, inv.total());
    std::fs::write(
        dir.path().join("two.pdf"),
        inv.render_pdf_with_qr(&[&deposit, &full], "GiroCode", QrDrawing::Vector),
    )
    .unwrap();
    let r = &extract(dir.path(), &["two.pdf"])[0];
    let codes = r["qr_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 2, "{r}");
    let used: Vec<&Value> = codes.iter().filter(|c| c["used"] == true).collect();
    assert_eq!(used.len(), 1, "{r}");
    assert_eq!(used[0]["amount"].as_str().and_then(|a| a.parse::<Decimal>().ok()), Some(inv.total()));
    assert!(used[0]["reason"].as_str().unwrap().contains("total"), "{r}");
    assert_eq!(r["amount_due"].as_str().and_then(|a| a.parse::<Decimal>().ok()), Some(inv.total()));
}

#[test]
fn the_qr_corpus_is_read_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/qr");
    let out = bin().arg("eval").arg("--json").arg(&dir).output().expect("run eval");
    assert!(out.status.success(), "eval failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let overall = &report["overall"];
    assert!(overall["expected"].as_u64().unwrap() >= 190, "every file of the corpus is scored: {overall}");
    assert_eq!(overall["correct"], overall["expected"], "{report}");
    assert_eq!(overall["wrong"], 0, "{report}");
}

#[tokio::test]
async fn a_tampered_iban_in_the_code_reaches_the_accountants_as_an_alert_and_status_lists_it() {
    let w = TestWorld::new().await;
    let mut inv = SampleInvoice::basic("QR-2025-66");
    let printed = qr::spanish_iban();
    inv.iban = Some(printed.clone());
    let sticker = iban("DE", "370400440532013000");
    let pdf = inv.render_pdf_with_qr(&[&epc(&inv, &sticker, inv.total())], "GiroCode", QrDrawing::Image);
    let mail = MailBuilder::new(&w, "Factura QR-2025-66").attach("factura-qr.pdf", "application/pdf", pdf);
    w.send(&mail.build()).await.unwrap();
    w.run_once().await.unwrap();

    let confirmation = &w.mailbox("accounts", 1).await.unwrap()[0];
    assert!(confirmation.subject.starts_with("[ALERTA]"), "{}", confirmation.subject);
    assert!(confirmation.text.contains("código QR"), "{}", confirmation.text);
    assert!(confirmation.text.contains("DE"), "{}", confirmation.text);
    assert!(confirmation.text.contains("Leído del código QR"), "{}", confirmation.text);
    let reply = &w.mailbox("supplier", 1).await.unwrap()[0];
    assert!(reply.text.contains("Leído del código QR"), "{}", reply.text);

    let signals: Value = sqlx::query_scalar("SELECT fraud_signals FROM invoices").fetch_one(&w.pool).await.unwrap();
    assert_eq!(signals[0]["kind"], "qr_iban_differs_from_page", "{signals}");

    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), &w.config_toml).unwrap();
    let out = bin().arg("status").arg("--config").arg(config.path()).output().expect("run status");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("QR-2025-66") && stdout.contains("qr_iban_differs_from_page"), "{stdout}");
    w.drop_database().await;
}
