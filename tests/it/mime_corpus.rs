//! Every message of the email corpus (RFC, legacy, malformed, bounces, TNEF, partial messages) goes through the
//! MIME layer: no panic, and a result for each. `tests/corpus/email` always; `$INVOICE_INTAKE_EXTRA_CORPUS/email`
//! too when that variable names an extra corpus.

use crate::common;

use invoice_intake::mail::mime;

fn messages() -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![common::corpus("email")];
    stack.extend(common::extra_corpus("email"));
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "list" | "md")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_message_is_split_without_panicking() {
    let files = messages();
    assert!(files.len() > 100, "the corpus should hold hundreds of messages, found {}", files.len());
    let mut panics = Vec::new();
    let mut with_documents = 0;
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        match std::panic::catch_unwind(|| mime::parse(&raw, "intake@example.test", 20)) {
            Ok(m) => {
                if !m.documents.is_empty() {
                    with_documents += 1;
                }
            }
            Err(_) => panics.push(f.display().to_string()),
        }
    }
    assert!(panics.is_empty(), "the MIME layer panicked on: {panics:#?}");
    assert!(with_documents > 0, "some corpus messages carry PDFs or images");
    println!("{} messages split, {with_documents} with documents, 0 panics", files.len());
}

#[test]
fn corpus_bounces_are_never_answered() {
    let dir = common::corpus("email/ruby-mail/multipart_report_emails");
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let raw = std::fs::read(&p).unwrap();
        let m = mime::parse(&raw, "intake@example.test", 20);
        if raw.windows(16).any(|w| w.eq_ignore_ascii_case(b"multipart/report")) {
            assert!(m.no_reply.is_some(), "{} is a delivery report and must not be answered", p.display());
            checked += 1;
        }
    }
    assert!(checked > 0);
}
