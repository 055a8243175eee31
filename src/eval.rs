//! `invoice-intake eval DIR`: run the extractor on every document that has `X.expected.json` beside it and
//! score it by the rules of `docs/evaluation.md`. An operator labels a few of their own suppliers' invoices
//! and measures; we use it on the corpus.

use anyhow::{Context, Result};
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;
use unicode_normalization::UnicodeNormalization;

use crate::extract::Extraction;
use crate::sandbox::Sandbox;

/// The scored fields, in the order of docs/evaluation.md.
pub const FIELDS: &[&str] = &[
    "invoice_number",
    "issue_date",
    "due_date",
    "currency",
    "document_type",
    "supplier.name",
    "supplier.tax_id",
    "supplier.iban",
    "customer.name",
    "customer.tax_id",
    "net_amount",
    "tax_amount",
    "total_amount",
    "amount_due",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    Wrong,
    Missing,
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Tally {
    pub expected: usize,
    pub correct: usize,
    pub wrong: usize,
    pub missing: usize,
}

impl Tally {
    fn add(&mut self, v: Verdict) {
        self.expected += 1;
        match v {
            Verdict::Correct => self.correct += 1,
            Verdict::Wrong => self.wrong += 1,
            Verdict::Missing => self.missing += 1,
        }
    }
    pub fn correct_pct(&self) -> f64 {
        pct(self.correct, self.expected)
    }
    pub fn wrong_pct(&self) -> f64 {
        pct(self.wrong, self.expected)
    }
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

fn get<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in field.split('.') {
        cur = cur.get(part)?;
    }
    (!cur.is_null()).then_some(cur)
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// NFKC, upper-case, letters and digits only: how invoice numbers, tax IDs and IBANs compare.
pub fn norm_id(s: &str) -> String {
    s.nfkc().flat_map(char::to_uppercase).filter(|c| c.is_alphanumeric()).collect()
}

/// NFKC, case-folded, punctuation removed, whitespace collapsed: how names compare.
pub fn norm_name(s: &str) -> String {
    let folded: String = s
        .nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() || c.is_whitespace() { c } else { ' ' })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The ratio python-Levenshtein computes: 1 − indel distance / (len a + len b). Written here because `strsim`
/// has Levenshtein, Jaro and Dice but not this indel ratio, and the scores must stay comparable with the
/// scoring rules' reference implementation.
pub fn levenshtein_ratio(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    // Indel distance = len a + len b − 2·LCS.
    let mut prev = vec![0usize; b.len() + 1];
    for ca in &a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = if ca == cb { prev[j] + 1 } else { cur[j].max(prev[j + 1]) };
        }
        prev = cur;
    }
    let lcs = prev[b.len()];
    let total = a.len() + b.len();
    (2 * lcs) as f64 / total as f64
}

fn names_match(expected: &str, got: &str) -> bool {
    let (e, g) = (norm_name(expected), norm_name(got));
    if e == g {
        return true;
    }
    let (short, long) = if e.chars().count() <= g.chars().count() { (&e, &g) } else { (&g, &e) };
    if !short.is_empty() && long.contains(short.as_str()) && short.chars().count() * 10 >= long.chars().count() * 6 {
        return true;
    }
    levenshtein_ratio(&e, &g) >= 0.85
}

fn tax_ids_match(expected: &str, got: &str) -> bool {
    let (e, g) = (norm_id(expected), norm_id(got));
    let prefixed = |long: &str, short: &str| {
        long.len() == short.len() + 2 && long.ends_with(short) && long[..2].chars().all(|c| c.is_ascii_alphabetic())
    };
    e == g || prefixed(&e, &g) || prefixed(&g, &e)
}

/// Score one field. `expected_doc` is the whole expected object (for `invoice_series`).
pub fn score_field(field: &str, expected_doc: &Value, got_doc: &Value) -> Option<Verdict> {
    let expected = get(expected_doc, field)?;
    let Some(got) = get(got_doc, field) else { return Some(Verdict::Missing) };
    let (e, g) = (as_text(expected), as_text(got));
    let ok = match field {
        "invoice_number" => {
            let (ne, ng) = (norm_id(&e), norm_id(&g));
            ne == ng || get(expected_doc, "invoice_series").is_some_and(|s| ng == norm_id(&(as_text(s) + &e)))
        }
        "supplier.tax_id" | "customer.tax_id" => tax_ids_match(&e, &g),
        "supplier.iban" => norm_id(&e) == norm_id(&g),
        "issue_date" | "due_date" => e == g,
        "net_amount" | "tax_amount" | "total_amount" | "amount_due" => {
            matches!((Decimal::from_str(e.trim()), Decimal::from_str(g.trim())), (Ok(a), Ok(b)) if a == b)
        }
        "document_type" => {
            let credit = |s: &str| if s == "corrected_invoice" { "credit_note".to_string() } else { s.to_string() };
            credit(&e) == credit(&g)
        }
        "currency" => e == g,
        "supplier.name" | "customer.name" => names_match(&e, &g),
        _ => e == g,
    };
    Some(if ok { Verdict::Correct } else { Verdict::Wrong })
}

/// Score every field `expected` holds. Returns (field, verdict, expected value, value found).
pub fn score_document(expected: &Value, got: &Value) -> Vec<(&'static str, Verdict, String, String)> {
    FIELDS
        .iter()
        .filter_map(|&field| {
            let verdict = score_field(field, expected, got)?;
            Some((
                field,
                verdict,
                get(expected, field).map(as_text).unwrap_or_default(),
                get(got, field).map(as_text).unwrap_or_default(),
            ))
        })
        .collect()
}

/// Every document in `dir` (recursively) with an `X.expected.json` beside it.
pub fn labelled_documents(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.to_string_lossy().ends_with(".expected.json") {
                let expected = PathBuf::from(format!("{}.expected.json", path.display()));
                if expected.is_file() {
                    out.push(path);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub documents: usize,
    pub failures: Vec<String>,
    pub fields: BTreeMap<String, Tally>,
    pub overall: Tally,
    pub seconds: f64,
    pub documents_per_second: f64,
    /// Per document, the fields that were wrong, with both values, so a regression is easy to find.
    pub wrong: Vec<String>,
}

pub async fn evaluate(sandbox: &Sandbox, dir: &Path, progress: bool) -> Result<Report> {
    use futures::StreamExt;
    let docs = labelled_documents(dir)?;
    let started = Instant::now();
    let mut report = Report { documents: docs.len(), ..Default::default() };
    for f in FIELDS {
        report.fields.insert(f.to_string(), Tally::default());
    }
    let concurrency = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut stream = futures::stream::iter(docs.iter().cloned())
        .map(|path| async move {
            let name = path.display().to_string();
            let results = match tokio::fs::read(&path).await {
                Ok(bytes) => sandbox.extract(&name, &bytes).await,
                Err(e) => vec![Extraction::failed(name.as_str(), crate::extract::ErrorCode::Unreadable, e.to_string())],
            };
            (path, results)
        })
        .buffer_unordered(concurrency);
    let bar = if progress { indicatif::ProgressBar::new(docs.len() as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("[{pos}/{len}] {elapsed} {wide_msg}")
            .expect("a valid progress template"),
    );
    while let Some((path, results)) = stream.next().await {
        bar.inc(1);
        bar.set_message(path.display().to_string());
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{}.expected.json", path.display()))?)?;
        let first = results
            .into_iter()
            .next()
            .unwrap_or_else(|| Extraction::failed("", crate::extract::ErrorCode::SandboxFailure, "no result"));
        if !first.is_ok() {
            report.failures.push(format!(
                "{}: {}",
                path.display(),
                first.error.as_ref().map(|e| format!("{} ({})", e.code.as_str(), e.message)).unwrap_or_default()
            ));
        }
        let got = if first.is_ok() { serde_json::to_value(&first)? } else { Value::Null };
        for field in FIELDS {
            if let Some(v) = score_field(field, &expected, &got) {
                report.fields.get_mut(*field).expect("all fields present").add(v);
                report.overall.add(v);
                if v == Verdict::Wrong {
                    report.wrong.push(format!(
                        "{}: {field}: expected {}, got {}",
                        path.display(),
                        get(&expected, field).map(as_text).unwrap_or_default(),
                        get(&got, field).map(as_text).unwrap_or_default()
                    ));
                }
            }
        }
    }
    bar.finish_and_clear();
    report.failures.sort();
    report.wrong.sort();
    report.seconds = started.elapsed().as_secs_f64();
    report.documents_per_second = if report.seconds > 0.0 { report.documents as f64 / report.seconds } else { 0.0 };
    Ok(report)
}

pub async fn run(sandbox: &Sandbox, dir: &Path, json: bool) -> Result<i32> {
    let report = evaluate(sandbox, dir, !json && std::io::stderr().is_terminal()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    println!(
        "{} documents in {:.1}s ({:.1} documents/s)\n",
        report.documents, report.seconds, report.documents_per_second
    );
    println!(
        "{:<18} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}",
        "field", "expected", "correct", "wrong", "missing", "correct%", "wrong%"
    );
    for (name, t) in report.fields.iter().filter(|(_, t)| t.expected > 0) {
        println!(
            "{name:<18} {:>8} {:>8} {:>8} {:>8} {:>8.1}% {:>7.1}%",
            t.expected,
            t.correct,
            t.wrong,
            t.missing,
            t.correct_pct(),
            t.wrong_pct()
        );
    }
    let t = report.overall;
    println!(
        "{:<18} {:>8} {:>8} {:>8} {:>8} {:>8.1}% {:>7.1}%",
        "OVERALL",
        t.expected,
        t.correct,
        t.wrong,
        t.missing,
        t.correct_pct(),
        t.wrong_pct()
    );
    if !report.failures.is_empty() {
        println!("\n{} documents failed:", report.failures.len());
        for f in &report.failures {
            println!("  {f}");
        }
    }
    if !report.wrong.is_empty() {
        println!("\nwrong values:");
        for w in &report.wrong {
            println!("  {w}");
        }
    }
    Ok(0)
}

/// One line for `extract` without `--json`.
pub fn human_line(e: &Extraction) -> String {
    if let Some(err) = &e.error {
        return format!("{}: error {}: {}", e.file, err.code.as_str(), err.message);
    }
    let party = e.supplier.as_ref().and_then(|s| s.name.clone().or(s.tax_id.clone())).unwrap_or_else(|| "?".into());
    format!(
        "{}: {} {} from {} dated {} total {} {}",
        e.file,
        e.document_type.map(|d| format!("{d:?}").to_lowercase()).unwrap_or_else(|| "document".into()),
        e.display_number().unwrap_or_else(|| "?".into()),
        party,
        e.issue_date.map(|d| d.to_string()).unwrap_or_else(|| "?".into()),
        e.total_amount.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
        e.currency.clone().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_scored_by_the_evaluation_rules() {
        let expected = json!({
            "invoice_number": "A-1", "invoice_series": "A", "issue_date": "2025-10-15", "currency": "EUR",
            "document_type": "credit_note", "supplier": {"name": "Hypeprop S.L.", "tax_id": "B23103039"},
            "customer": {"tax_id": "ESB77436020"}, "total_amount": "1210", "net_amount": "1000"
        });
        let got = json!({
            "invoice_number": "a1", "issue_date": "2025-10-15", "currency": "EUR", "document_type": "corrected_invoice",
            "supplier": {"name": "HYPEPROP SL", "tax_id": "ESB23103039"}, "customer": {"tax_id": "B77436020"},
            "total_amount": "1210.00", "net_amount": "999.99"
        });
        let cases = [
            ("invoice_number", Some(Verdict::Correct)),
            ("issue_date", Some(Verdict::Correct)),
            ("due_date", None),
            ("document_type", Some(Verdict::Correct)),
            ("supplier.name", Some(Verdict::Correct)),
            ("supplier.tax_id", Some(Verdict::Correct)),
            ("customer.tax_id", Some(Verdict::Correct)),
            ("total_amount", Some(Verdict::Correct)),
            ("net_amount", Some(Verdict::Wrong)),
            ("supplier.iban", None),
        ];
        for (field, want) in cases {
            assert_eq!(score_field(field, &expected, &got), want, "{field}");
        }
        assert_eq!(score_field("currency", &expected, &json!({})), Some(Verdict::Missing));
    }

    #[test]
    fn names_match_by_containment_or_similarity_but_not_loosely() {
        assert!(names_match("Hypeprop S.L.", "Hypeprop SL"));
        assert!(names_match("Lieferant GmbH", "Lieferant GmbH Berlin"));
        assert!(!names_match("ACME", "ACME Holding International Group"));
        assert!(!names_match("Moniward Sl", "Hypeprop Sl"));
    }

    #[test]
    fn the_levenshtein_ratio_is_the_indel_ratio() {
        assert!((levenshtein_ratio("kitten", "sitting") - 0.6153846).abs() < 1e-6);
        assert_eq!(levenshtein_ratio("", ""), 1.0);
    }
}
