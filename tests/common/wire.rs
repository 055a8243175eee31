//! Small helpers for putting bytes on the wire in test and demo mail.

#![allow(dead_code)]

use base64::Engine;

/// Base64 in lines of 76 characters, as RFC 2045 section 6.8 asks of mail bodies.
pub fn base64_lines(data: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(data);
    flat.as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect::<Vec<_>>()
        .join("\r\n")
}
