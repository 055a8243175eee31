//! Values from outside (a subject, a supplier's name, Message-IDs) made fit for the headers and lines we write.
//!
//! RFC 5322 2.1.1: a line is at most 998 octets and should be at most 78. lettre folds a header at its spaces and
//! encodes non-ASCII text in RFC 2047 words, but a value without spaces cannot be folded, and an unbounded value
//! (a subject of 100,000 encoded words, a 6 MB supplier name) becomes a line the SMTP server refuses
//! (OpenSMTPD: `500 Line too long`). So every value is bounded before it reaches a header, and shown on one line:
//! an encoded line break, ESC, BEL or NUL in a subject must never start a line of its own in the accountants' mail.

/// The most characters of a subject or a name put in a header; longer values end in an ellipsis.
pub const MAX_HEADER_CHARS: usize = 200;
/// The most characters of a value shown on one line of a mail's body.
pub const MAX_LINE_CHARS: usize = 500;
/// A Message-ID longer than this is not one we can quote (RFC 5322 3.6.4 ids are short; RFC 5322 2.1.1 caps the
/// whole line at 998). It is left out of `In-Reply-To` and `References` rather than cut, since a cut id names
/// nothing.
pub const MAX_MESSAGE_ID_CHARS: usize = 250;
/// `References` keeps the thread's first id and this many of its last (RFC 5322 3.6.4 lets a responder trim it;
/// the first and the latest are what mail clients thread by).
pub const REFERENCES_TAIL: usize = 4;

pub use crate::extract::normalize::{one_line, shorten};

/// RFC 3834 section 5: `Auto-Submitted: auto-replied` (or `auto-generated`) on the mail we write, so
/// well-behaved responders do not answer it.
#[derive(Debug, Clone)]
pub struct AutoSubmitted(pub String);

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted(s.to_string()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// A value for a header: one line, at most `MAX_HEADER_CHARS`.
pub fn header_text(s: &str) -> String {
    shorten(&one_line(s), MAX_HEADER_CHARS)
}

/// A value for a line of a mail's body: one line, at most `MAX_LINE_CHARS`.
pub fn line_text(s: &str) -> String {
    shorten(&one_line(s), MAX_LINE_CHARS)
}

/// A Message-ID in angle brackets, or `None` when it is too long or holds characters no id may hold (RFC 5322
/// 3.6.4: printable ASCII, no spaces).
pub fn message_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    let fits = !id.is_empty()
        && id.len() <= MAX_MESSAGE_ID_CHARS
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    fits.then(|| format!("<{id}>"))
}

/// The `References` of a reply to a mail with `references` and Message-ID `parent`: the usable ids, the first
/// kept and then the last `REFERENCES_TAIL`, ending with `parent`.
pub fn references(references: &[String], parent: &str) -> Vec<String> {
    let mut ids: Vec<String> = references.iter().filter_map(|r| message_id(r)).collect();
    ids.extend(message_id(parent));
    ids.dedup();
    if ids.len() > REFERENCES_TAIL + 1 {
        let tail = ids.split_off(ids.len() - REFERENCES_TAIL);
        ids.truncate(1);
        ids.extend(tail);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_line_breaks_and_terminal_controls_stay_on_one_line() {
        assert_eq!(
            one_line("Factura\r\nIBAN: ES76\u{1b}[31m\u{7}\0 x\u{2028}y\u{202E}z"),
            "Factura IBAN: ES76 [31m x y z"
        );
        assert_eq!(one_line("  \t "), "");
    }

    #[test]
    fn a_long_value_is_cut_with_an_ellipsis_and_a_short_one_is_kept() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "ab…");
        assert_eq!(shorten(&"é".repeat(1000), 10).chars().count(), 10);
        assert_eq!(header_text(&"x ".repeat(100_000)).chars().count(), MAX_HEADER_CHARS);
    }

    #[test]
    fn references_keep_the_first_and_the_last_ids_and_drop_unusable_ones() {
        let refs: Vec<String> = (0..50).map(|i| format!("<r{i}@x.test>")).collect();
        let mut with_junk = refs.clone();
        with_junk.push(format!("<{}@x.test>", "a".repeat(5000)));
        with_junk.push("<has space@x.test>".into());
        let kept = references(&with_junk, "p@x.test");
        assert_eq!(kept, ["<r0@x.test>", "<r47@x.test>", "<r48@x.test>", "<r49@x.test>", "<p@x.test>"]);
        assert_eq!(references(&[], "<p@x.test>"), ["<p@x.test>"]);
    }
}
