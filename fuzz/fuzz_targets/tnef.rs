//! Outlook winmail.dat: any bytes as a TNEF stream, and the same bytes as a winmail.dat part of a mail.
#![no_main]

use invoice_intake::mail::tnef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(files) = tnef::attachments(data) {
        let total: usize = files.iter().map(|f| f.data.len()).sum();
        assert!(total <= data.len(), "attachments cannot hold more bytes than the stream");
    }
});
