//! The generated Spanish set through the real binary and the real jail, scored by `invoice-intake eval --json`
//! as an operator would score their own suppliers' invoices (docs/evaluation.md).
//!
//! The layout families (`mod layout_families`, at the end) are the yardstick for documents this project did
//! not design: eleven conventions in seven languages, with floors at what the extractor reads today.
//!
//! The floors of the Spanish sets are the accuracy targets, which the full generated sets clear with room to
//! spare (100% / 0% on text PDFs, about 92% / 0.2% on scans, see docs/extraction.md). The sets here are small
//! so CI stays fast: twelve text PDFs cover every layout, font and feature of the generator once; six scans
//! cover PNG, JPEG and a multi-page image-only PDF.

use crate::pdf;

use pdf::{SampleInvoice, ScanOptions};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const SEED: u64 = 20251015;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_invoice-intake"))
}

fn write_labelled(dir: &Path, name: &str, bytes: &[u8], inv: &SampleInvoice) {
    std::fs::write(dir.join(name), bytes).unwrap();
    std::fs::write(dir.join(format!("{name}.expected.json")), inv.expected().to_string()).unwrap();
}

/// `eval --json DIR`: the overall tally, after checking that no document failed outright.
fn eval(dir: &Path) -> (f64, f64, Value) {
    let out = bin().arg("eval").arg("--json").arg(dir).output().expect("run eval");
    assert!(out.status.success(), "eval failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("eval --json prints JSON");
    let overall = &report["overall"];
    let expected = overall["expected"].as_f64().unwrap();
    assert!(expected > 0.0, "{report}");
    let correct = overall["correct"].as_f64().unwrap() / expected;
    let wrong = overall["wrong"].as_f64().unwrap() / expected;
    eprintln!("{}: {:.1}% correct, {:.1}% wrong", dir.display(), correct * 100.0, wrong * 100.0);
    (correct, wrong, report)
}

fn text_set(dir: &Path, n: usize) -> Vec<(String, SampleInvoice)> {
    (0..n)
        .map(|i| {
            let inv = SampleInvoice::generate(SEED, i);
            let name = format!("es-{i:02}.pdf");
            write_labelled(dir, &name, &inv.render_pdf(), &inv);
            (name, inv)
        })
        .collect()
}

fn scan_set(dir: &Path, indices: &[usize]) -> Vec<(String, SampleInvoice)> {
    indices
        .iter()
        .map(|&i| {
            let inv = SampleInvoice::generate(SEED, i);
            let opts = ScanOptions::generate(SEED + i as u64);
            let scan = inv.render_scan(&opts).expect("pdftoppm (poppler-utils) renders the scan");
            let name = format!("es-{i:02}.scan.{}", opts.extension(inv.page_count()));
            write_labelled(dir, &name, &scan, &inv);
            (name, inv)
        })
        .collect()
}

#[test]
fn generated_text_pdfs_score_at_least_95_percent_correct_and_at_most_1_percent_wrong() {
    let dir = tempfile::tempdir().unwrap();
    text_set(dir.path(), 12);
    let (correct, wrong, report) = eval(dir.path());
    assert!(correct >= 0.95, "correct {:.1}%: {report:#}", correct * 100.0);
    assert!(wrong <= 0.01, "wrong {:.1}%: {report:#}", wrong * 100.0);
}

#[test]
fn degraded_scans_score_at_least_85_percent_correct_and_at_most_3_percent_wrong() {
    let dir = tempfile::tempdir().unwrap();
    // 5 is a two-page invoice (an image-only PDF); the others mix PNG and JPEG, 150 to 300 dpi, tilted.
    scan_set(dir.path(), &[0, 1, 2, 3, 5, 7]);
    let (correct, wrong, report) = eval(dir.path());
    assert!(correct >= 0.85, "correct {:.1}%: {report:#}", correct * 100.0);
    assert!(wrong <= 0.03, "wrong {:.1}%: {report:#}", wrong * 100.0);
}

/// Every field the page does not show (`absent` in the truth: no due date, no IBAN, no customer NIF) must come
/// back null, from the text layer and from a scan alike.
#[test]
fn no_field_is_ever_invented_for_invoices_that_lack_it() {
    let dir = tempfile::tempdir().unwrap();
    // Indices 1, 2 and 3 of every four lack a due date, an IBAN and the customer's NIF respectively.
    let mut docs: Vec<(String, SampleInvoice)> =
        text_set(dir.path(), 12).into_iter().filter(|(_, inv)| !absent(inv).is_empty()).collect();
    docs.extend(scan_set(dir.path(), &[1, 2, 3]));
    assert!(docs.len() >= 9, "the set has documents that lack fields");
    let out = bin()
        .arg("extract")
        .arg("--json")
        .args(docs.iter().map(|(name, _)| dir.path().join(name)))
        .output()
        .expect("run extract");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results.len(), docs.len());
    let mut checked = 0;
    for ((name, inv), got) in docs.iter().zip(&results) {
        assert_eq!(got["status"], "ok", "{name}: {got}");
        for field in absent(inv) {
            let value = field.split('.').fold(got, |v, k| &v[k]);
            assert!(value.is_null(), "{name}: {field} is not on the page, but came back as {value}");
            checked += 1;
        }
    }
    assert!(checked >= 9, "{checked} absent fields checked");
}

fn absent(inv: &SampleInvoice) -> Vec<String> {
    inv.expected()["absent"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect()
}

/// The layout families (`tests/common/families`): one text-layer PDF per family and language, and one capture
/// per family (scanner, screenshot or phone photo, the language turning with the family).
mod layout_families {
    use super::{bin, eval};
    use crate::families::{Capture, Document, Family, FAMILIES, LANGS};
    use serde_json::Value;
    use std::path::Path;

    const SEED: u64 = 20251015;

    /// Floors the extractor clears on these slices today, a little below what it scores on a 2-core machine
    /// (text 96.4% correct, 0.1% wrong; scans 87–90% / 0.0%, see docs/extraction-families.md), so that a
    /// regression fails; they rise towards the acceptance figures the Spanish sets above hold.
    const TEXT_CORRECT: f64 = 0.95;
    const TEXT_WRONG: f64 = 0.01;
    const SCAN_CORRECT: f64 = 0.85;
    const SCAN_WRONG: f64 = 0.03;

    fn write(dir: &Path, name: &str, bytes: &[u8], doc: &Document) {
        std::fs::write(dir.join(name), bytes).unwrap();
        std::fs::write(dir.join(format!("{name}.expected.json")), doc.expected().to_string()).unwrap();
    }

    /// The document of `family` in `lang`: the index turns so that the slice covers every missing field,
    /// number format and date format of each family.
    fn doc(family: Family, k: usize) -> Document {
        let lang = LANGS[k % LANGS.len()];
        Document::generate(family, lang, SEED, (k + family as usize) % 6)
    }

    fn text_slice(dir: &Path) -> Vec<(String, Document)> {
        let mut out = Vec::new();
        for family in FAMILIES {
            let sub = dir.join(family.name());
            std::fs::create_dir_all(&sub).unwrap();
            for k in 0..LANGS.len() {
                let d = doc(family, k);
                let name = format!("{}/{}-{:02}.pdf", family.name(), d.lang.code(), d.index);
                write(dir, &name, &d.render_pdf(), &d);
                out.push((name, d));
            }
        }
        out
    }

    fn scan_slice(dir: &Path) -> Vec<(String, Document)> {
        FAMILIES
            .iter()
            .map(|&family| {
                let d = doc(family, family as usize);
                let capture = Capture::generate(SEED, family as usize);
                let (bytes, ext) = d.render_capture(&capture).expect("pdftoppm (poppler-utils) renders the capture");
                let name = format!("{}-{}-{:02}.scan.{ext}", family.name(), d.lang.code(), d.index);
                write(dir, &name, &bytes, &d);
                (name, d)
            })
            .collect()
    }

    #[test]
    fn every_family_and_language_reads_from_the_text_layer_above_its_floor() {
        let dir = tempfile::tempdir().unwrap();
        text_slice(dir.path());
        let (correct, wrong, report) = eval(dir.path());
        assert_eq!(report["documents"], 77, "{report}");
        assert!(correct >= TEXT_CORRECT, "correct {:.1}%: {report:#}", correct * 100.0);
        assert!(wrong <= TEXT_WRONG, "wrong {:.1}%: {report:#}", wrong * 100.0);
    }

    #[test]
    fn scans_screenshots_and_photos_of_every_family_read_above_their_floor() {
        let dir = tempfile::tempdir().unwrap();
        scan_slice(dir.path());
        let (correct, wrong, report) = eval(dir.path());
        assert!(correct >= SCAN_CORRECT, "correct {:.1}%: {report:#}", correct * 100.0);
        assert!(wrong <= SCAN_WRONG, "wrong {:.1}%: {report:#}", wrong * 100.0);
    }

    /// What a page does not show (no due date, no IBAN, no customer tax ID, no customer at all on a till slip)
    /// must come back null, in every family and language, from text and from images.
    #[test]
    fn no_field_is_invented_in_any_family_or_language() {
        let dir = tempfile::tempdir().unwrap();
        let mut docs: Vec<(String, Document)> =
            text_slice(dir.path()).into_iter().filter(|(_, d)| !absent(d).is_empty()).collect();
        docs.extend(scan_slice(dir.path()).into_iter().filter(|(_, d)| !absent(d).is_empty()));
        let out = bin()
            .arg("extract")
            .arg("--json")
            .args(docs.iter().map(|(name, _)| dir.path().join(name)))
            .output()
            .expect("run extract");
        // `extract` exits 1 when some file could not be read; each file still gets its line, checked below.
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
        let results: Vec<Value> =
            String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(results.len(), docs.len());
        let mut checked = 0;
        let mut invented = Vec::new();
        for ((name, d), got) in docs.iter().zip(&results) {
            for field in absent(d) {
                let value = field.split('.').fold(got, |v, k| &v[k]);
                if !value.is_null() {
                    invented.push(format!("{name}: {field} is not on the page, but came back as {value}"));
                }
                checked += 1;
            }
        }
        assert!(checked >= 60, "{checked} absent fields checked");
        assert!(invented.is_empty(), "{} invented:\n{}", invented.len(), invented.join("\n"));
    }

    fn absent(d: &Document) -> Vec<String> {
        d.expected()["absent"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect()
    }
}
