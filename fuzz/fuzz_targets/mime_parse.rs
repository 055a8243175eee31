//! Attachment extraction: any bytes as a received message. Must never panic, and every document it finds must be
//! non-empty with a sane name.
#![no_main]

use invoice_intake::mail::mime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let incoming = mime::parse(data, "intake@example.test", 20);
    assert!(incoming.documents.len() <= 20);
    for d in &incoming.documents {
        assert!(!d.filename.is_empty() && d.filename.chars().count() <= 200);
        assert!(!d.filename.contains(['/', '\\', '\0']));
    }
});
