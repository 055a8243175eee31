//! Codes on the page, through the real binary and the real jail: generated invoices carrying each of the five
//! kinds of code, codes that disagree with their page, two bills on one page, the QR corpus scored by `eval`, and
//! a tampered IBAN followed to the accountants' `[ALERTA]` and to `status`.

use crate::common;

use common::pdf::{QrDrawing, SampleInvoice};
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

/// ISO 13616 check digits for `country` + `bban`.
fn iban(country: &str, bban: &str) -> String {
    let digits: String =
        format!("{bban}{country}00").chars().map(|c| c.to_digit(36).expect("alphanumeric").to_string()).collect();
    let rem = digits.bytes().fold(0u32, |r, d| (r * 10 + (d - b'0') as u32) % 97);
    format!("{country}{:02}{bban}", 98 - rem)
}

fn crc8(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |mut crc, b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 { (crc << 1) ^ 0x07 } else { crc << 1 };
        }
        crc
    })
}

fn epc(inv: &SampleInvoice, iban: &str, amount: Decimal) -> String {
    format!("BCD\n002\n1\nSCT\n\n{}\n{iban}\nEUR{amount}\n\n\n{}", inv.supplier_name, inv.number)
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

    // VeriFactu, as an embedded image, and drawn in vector graphics (the page is rendered).
    let inv = SampleInvoice::basic("VF-2025-0101");
    let date = inv.issue_date.format("%d-%m-%Y");
    let url = format!(
        "https://www2.agenciatributaria.gob.es/wlpl/TIKE-CONT/ValidarQR?nif={}&numserie={}&fecha={date}&importe={}",
        inv.supplier_nif,
        inv.number,
        inv.total()
    );
    let want = vec![
        ("supplier.tax_id", inv.supplier_nif.clone()),
        ("invoice_number", inv.number.clone()),
        ("issue_date", inv.issue_date.to_string()),
        ("total_amount", inv.total().to_string()),
    ];
    for (name, drawing) in [("verifactu.pdf", QrDrawing::Image), ("verifactu-vector.pdf", QrDrawing::Vector)] {
        let pdf = inv.render_pdf_with_qr(&[&url], "QR tributario: VERI*FACTU", drawing);
        std::fs::write(dir.path().join(name), pdf).unwrap();
        files.push(name);
        expectations.push(("qr_verifactu", want.clone()));
    }

    // TicketBAI: the identifier and the URL, each with its CRC-8.
    let inv = SampleInvoice::basic("27174");
    let id = format!("TBAI-{}-{}-btFpwP8dcLGAF-", inv.supplier_nif, inv.issue_date.format("%d%m%y"));
    let id = format!("{id}{:03}", crc8(id.as_bytes()));
    let head = format!("https://batuz.eus/QRTBAI/?id={id}&s=T&nf={}&i={}", inv.number, inv.total());
    let url = format!("{head}&cr={:03}", crc8(head.as_bytes()));
    let mut inv_t = inv.clone();
    inv_t.number = format!("T-{}", inv.number);
    std::fs::write(dir.path().join("ticketbai.pdf"), inv_t.render_pdf_with_qr(&[&url], &id, QrDrawing::Image)).unwrap();
    files.push("ticketbai.pdf");
    expectations.push((
        "qr_ticketbai",
        vec![
            ("supplier.tax_id", inv.supplier_nif.clone()),
            ("invoice_number", inv.number.clone()),
            ("issue_date", inv.issue_date.to_string()),
            ("total_amount", inv.total().to_string()),
        ],
    ));

    // Portuguese AT QR: a Portuguese issuer, a buyer with a NIF, the ATCUD.
    let mut inv = SampleInvoice::basic("FT 2025A/17");
    inv.supplier_nif = "500000000".into();
    inv.customer_nif = "123456789".into();
    let payload = format!(
        "A:500000000*B:123456789*C:PT*D:FT*E:N*F:{}*G:FT 2025A/17*H:JJ7XK2MP-17*I1:PT*I7:{}*I8:{}*N:{}*O:{}*Q:kLp0*R:9999",
        inv.issue_date.format("%Y%m%d"),
        inv.net(),
        inv.tax(),
        inv.tax(),
        inv.total()
    );
    std::fs::write(
        dir.path().join("pt.pdf"),
        inv.render_pdf_with_qr(&[&payload], "ATCUD: JJ7XK2MP-17", QrDrawing::Image),
    )
    .unwrap();
    files.push("pt.pdf");
    expectations.push((
        "qr_pt",
        vec![
            ("supplier.tax_id", "500000000".to_string()),
            ("customer.tax_id", "123456789".to_string()),
            ("customer.country", "PT".to_string()),
            ("invoice_number", "FT 2025A/17".to_string()),
            ("issue_date", inv.issue_date.to_string()),
            ("tax_amount", inv.tax().to_string()),
            ("total_amount", inv.total().to_string()),
        ],
    ));

    // Swiss QR-bill with Swico S1 bill information: number, date and UID.
    let mut inv = SampleInvoice::basic("RE-2025-88");
    let ch = "CH9300762011623852957".to_string();
    inv.iban = Some(ch.clone());
    inv.supplier_nif = "CHE-106.017.086".into();
    let payload = format!(
        "SPC\n0200\n1\n{ch}\nS\n{}\nBahnhofstrasse\n1\n8001\nZürich\nCH\n\n\n\n\n\n\n\n{}\nCHF\nS\n{}\nHauptgasse\n2\n3000\nBern\nCH\nNON\n\n\nEPD\n//S1/10/RE-2025-88/11/{}/30/106017086",
        inv.supplier_name,
        inv.total(),
        inv.customer_name,
        inv.issue_date.format("%y%m%d"),
    );
    std::fs::write(dir.path().join("swiss.pdf"), inv.render_pdf_with_qr(&[&payload], "Zahlteil", QrDrawing::Image))
        .unwrap();
    files.push("swiss.pdf");
    expectations.push((
        "qr_swiss",
        vec![
            ("supplier.iban", ch.clone()),
            ("supplier.name", inv.supplier_name.clone()),
            ("supplier.country", "CH".into()),
            ("supplier.tax_id", "CHE106017086".into()),
            ("customer.name", inv.customer_name.clone()),
            ("customer.country", "CH".into()),
            ("currency", "CHF".into()),
            ("amount_due", inv.total().to_string()),
            ("invoice_number", "RE-2025-88".into()),
            ("issue_date", inv.issue_date.to_string()),
        ],
    ));

    // EPC GiroCode with the IBAN the page prints.
    let inv = SampleInvoice::basic("GC-2025-7");
    let page_iban = iban("ES", "21000418450200051332");
    let mut inv = inv;
    inv.iban = Some(page_iban.clone());
    let payload = epc(&inv, &page_iban, inv.total());
    std::fs::write(dir.path().join("epc.pdf"), inv.render_pdf_with_qr(&[&payload], "GiroCode", QrDrawing::Image))
        .unwrap();
    files.push("epc.pdf");
    expectations.push((
        "qr_epc",
        vec![
            ("supplier.iban", page_iban),
            ("supplier.name", inv.supplier_name.clone()),
            ("currency", "EUR".into()),
            ("amount_due", inv.total().to_string()),
        ],
    ));

    let results = extract(dir.path(), &files);
    assert_eq!(results.len(), files.len());
    for ((result, (source, want)), file) in results.iter().zip(&expectations).zip(&files) {
        assert_fields(result, source, want);
        assert!(result["file"].as_str().unwrap().ends_with(file));
    }
}

#[test]
fn a_code_that_disagrees_with_its_page_is_a_failed_check_and_names_the_page_iban() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = SampleInvoice::basic("GC-2025-8");
    let printed = iban("ES", "21000418450200051332");
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
    let printed = iban("ES", "21000418450200051332");
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
    let printed = iban("ES", "21000418450200051332");
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
