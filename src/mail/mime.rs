//! Splitting a received message into what we need: who sent it, how to answer, and the documents to read.
//!
//! Documents are judged by magic bytes first, then content type, then extension, because suppliers' mailers
//! label PDFs `application/octet-stream` all the time. Forwarded mail (`message/rfc822`) and Outlook's
//! `winmail.dat` (TNEF) are opened. Decorations are skipped: images the HTML body shows through `cid:`, and small
//! inline logos.

use mail_parser::{HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType};

use super::settings::Language;
use super::tnef;
use crate::extract::kind::find;
pub use crate::extract::kind::{sniff, DocumentKind};

/// Images smaller than this that sit inline are signatures and logos, not scans of invoices.
const LOGO_MAX_BYTES: usize = 16 * 1024;
/// Forwarded-within-forwarded mail deeper than this is not followed (a cheap guard against nesting bombs); the
/// supplier is told it was not opened. Mail clients forward a thread a handful of times; 32 is far beyond that.
const MAX_NESTING: usize = 32;

/// One document to hand to the extractor.
#[derive(Debug, Clone)]
pub struct Document {
    pub filename: String,
    pub kind: DocumentKind,
    pub bytes: Vec<u8>,
}

/// A part that was not read, and why; the reply names these so the supplier knows what we ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub filename: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A file type we do not read (a Word document, a zip, …).
    UnsupportedType,
    /// Beyond `limits.max_attachments`.
    TooMany,
    /// A forwarded message nested deeper than `MAX_NESTING`: not opened.
    TooDeep,
}

/// Why we must not answer a message automatically (RFC 3834 section 2, and plain sense about bounces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoReply {
    AutoSubmitted(String),
    Precedence(String),
    MailingList,
    EmptyReturnPath,
    Robot(String),
    Ourselves,
    NoSender,
}

impl std::fmt::Display for NoReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoReply::AutoSubmitted(v) => write!(f, "Auto-Submitted: {v}"),
            NoReply::Precedence(v) => write!(f, "Precedence: {v}"),
            NoReply::MailingList => f.write_str("mailing-list mail (List-Id)"),
            NoReply::EmptyReturnPath => f.write_str("empty Return-Path (a bounce)"),
            NoReply::Robot(a) => write!(f, "sent by an automatic address ({a})"),
            NoReply::Ourselves => f.write_str("sent by our own address"),
            NoReply::NoSender => f.write_str("no sender address"),
        }
    }
}

/// What the pipeline needs from one message.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub message_id: Option<String>,
    pub subject: String,
    /// The From address, lower-cased: the identity we deduplicate documents by.
    pub from: Option<String>,
    /// Where a reply goes: Reply-To, else From.
    pub reply_to: Option<String>,
    pub references: Vec<String>,
    /// The ids of In-Reply-To and References together: what this mail says it answers.
    pub answers: Vec<String>,
    pub language: Option<Language>,
    pub no_reply: Option<NoReply>,
    pub documents: Vec<Document>,
    pub skipped: Vec<Skipped>,
    /// The message could not be parsed as MIME at all; it is kept, and answered if it has a sender.
    pub malformed: bool,
}

pub fn parse(raw: &[u8], own_address: &str, max_documents: usize) -> Incoming {
    let raw = close_open_boundaries(raw);
    let Some(message) = MessageParser::default().parse(raw.as_ref()) else {
        return Incoming {
            message_id: None,
            subject: String::new(),
            from: None,
            reply_to: None,
            references: Vec::new(),
            answers: Vec::new(),
            language: None,
            no_reply: Some(NoReply::NoSender),
            documents: Vec::new(),
            skipped: Vec::new(),
            malformed: true,
        };
    };
    let from = message.from().and_then(|a| a.first()).and_then(|a| a.address()).map(|a| a.trim().to_lowercase());
    let reply_to = message
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_string())
        .filter(|a| a.contains('@'))
        .or_else(|| from.clone());
    let message_id = message.message_id().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let subject = message.subject().unwrap_or("").trim().to_string();
    let mut references = text_list(message.references());
    let mut answers = text_list(message.in_reply_to());
    answers.extend(references.iter().cloned());
    if references.is_empty() {
        references = text_list(message.in_reply_to());
    }

    let mut collector = Collector { documents: Vec::new(), skipped: Vec::new() };
    let html_cids = referenced_cids(&message);
    collector.walk(&message, &html_cids, 0);
    let mut documents = collector.documents;
    let mut skipped = collector.skipped;
    if documents.len() > max_documents {
        for d in documents.drain(max_documents..) {
            skipped.push(Skipped { filename: d.filename, reason: SkipReason::TooMany });
        }
    }

    let body = message.body_text(0).map(|b| b.into_owned()).unwrap_or_default();
    let accept_language = header_text(&message, "Accept-Language");
    let language = super::language::guess_language_from(
        &format!("{subject}\n{body}"),
        content_language(&message).as_deref(),
        accept_language.as_deref(),
    );
    let own = super::settings::bare_address(own_address);
    let no_reply = no_reply_reason(&message, from.as_deref(), &own);

    Incoming {
        message_id,
        subject,
        from,
        reply_to,
        references,
        answers,
        language,
        no_reply,
        documents,
        skipped,
        malformed: false,
    }
}

struct Collector {
    documents: Vec<Document>,
    skipped: Vec<Skipped>,
}

impl Collector {
    fn walk(&mut self, message: &mail_parser::Message<'_>, html_cids: &[String], depth: usize) {
        for (index, part) in message.parts.iter().enumerate() {
            match &part.body {
                PartType::Multipart(_) => {}
                PartType::Message(inner) => self.forwarded(inner, depth),
                // mail-parser stops opening encoded forwards after a few levels and hands them over as bytes.
                PartType::Binary(bytes) | PartType::InlineBinary(bytes)
                    if part.is_content_type("message", "rfc822") || part.is_content_type("message", "global") =>
                {
                    let bytes = forgiving_body(part, &message.raw_message).unwrap_or_else(|| bytes.to_vec());
                    let repaired = close_open_boundaries(&bytes);
                    match MessageParser::default().parse(repaired.as_ref()) {
                        Some(inner) => self.forwarded(&inner, depth),
                        None => self.skipped.push(Skipped {
                            filename: part
                                .attachment_name()
                                .map(sanitize_filename)
                                .unwrap_or_else(|| "forwarded.eml".into()),
                            reason: SkipReason::UnsupportedType,
                        }),
                    }
                }
                PartType::Text(text) | PartType::Html(text) => {
                    // Text parts are the body, except XML e-invoices sent as text/xml or named *.xml.
                    if index == 0 && message.parts.len() > 1 {
                        continue;
                    }
                    let name = part.attachment_name().map(str::to_string);
                    // A non-text part shows up as text when the parser could not decode its base64.
                    let undecoded = part.content_type().is_some_and(|c| !c.ctype().eq_ignore_ascii_case("text"));
                    let declared_xml = part.is_content_type("text", "xml")
                        || part.is_content_type("application", "xml")
                        || name.as_deref().is_some_and(|n| n.to_lowercase().ends_with(".xml"));
                    if declared_xml || undecoded {
                        let decoded = forgiving_body(part, &message.raw_message);
                        self.consider(part, name, decoded.as_deref().unwrap_or(text.as_bytes()), html_cids, index);
                    }
                }
                PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                    let name = part.attachment_name().map(str::to_string);
                    let decoded = forgiving_body(part, &message.raw_message);
                    self.consider(part, name, decoded.as_deref().unwrap_or(bytes), html_cids, index);
                }
            }
        }
    }

    /// A forwarded message inside the one at `depth`: opened, unless it is nested too deep.
    fn forwarded(&mut self, inner: &mail_parser::Message<'_>, depth: usize) {
        if depth + 1 >= MAX_NESTING {
            let subject = inner.subject().map(crate::mail::headers::line_text).filter(|s| !s.is_empty());
            self.skipped.push(Skipped {
                filename: subject.map(|s| format!("\"{s}\"")).unwrap_or_else(|| "forwarded message".into()),
                reason: SkipReason::TooDeep,
            });
            return;
        }
        let cids = referenced_cids(inner);
        self.walk(inner, &cids, depth + 1);
    }

    fn consider(
        &mut self,
        part: &MessagePart<'_>,
        name: Option<String>,
        bytes: &[u8],
        html_cids: &[String],
        index: usize,
    ) {
        let ctype = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_lowercase())
            .unwrap_or_default();
        let lower_name = name.as_deref().unwrap_or("").to_lowercase();
        if ctype == "application/ms-tnef" || ctype == "application/vnd.ms-tnef" || lower_name == "winmail.dat" {
            match tnef::attachments(bytes) {
                Ok(inner) => {
                    for a in inner {
                        self.classify(Some(a.filename), "application/octet-stream", &a.data, false, false);
                    }
                }
                Err(_) => self.skipped.push(Skipped {
                    filename: name.unwrap_or_else(|| "winmail.dat".into()),
                    reason: SkipReason::UnsupportedType,
                }),
            }
            return;
        }
        let cid = part.content_id().map(|c| c.trim_matches(['<', '>']).to_lowercase());
        let referenced = cid.as_ref().is_some_and(|c| html_cids.contains(c));
        let inline = part.content_disposition().is_some_and(|d| d.is_inline()) || part.content_disposition().is_none();
        let decoration = referenced || (inline && name.is_none() && index > 0);
        // A small image the sender attached as a file is a small scan, not a logo: logos sit inline.
        let attached = part.content_disposition().is_some_and(|d| d.is_attachment());
        let name = name.or_else(|| default_name(&ctype, self.documents.len() + self.skipped.len() + 1));
        self.classify(name, &ctype, bytes, decoration, !attached);
    }

    /// `small_is_logo`: whether a small image may be taken for a logo (it sits inline in the body).
    fn classify(&mut self, name: Option<String>, ctype: &str, bytes: &[u8], decoration: bool, small_is_logo: bool) {
        let filename = sanitize_filename(name.as_deref().unwrap_or("attachment"));
        let kind = sniff(bytes).or_else(|| by_declared_type(ctype, &filename, bytes));
        let logo_sized = small_is_logo && bytes.len() < LOGO_MAX_BYTES;
        match kind {
            Some(k @ (DocumentKind::Png | DocumentKind::Jpeg)) if decoration || logo_sized => {
                // A logo or an image the HTML body shows: not a document the supplier sent us to read.
                let _ = k;
            }
            Some(kind) => self.documents.push(Document { filename, kind, bytes: bytes.to_vec() }),
            None if decoration || bytes.is_empty() => {}
            None if is_signature_or_vcard(ctype, &filename) => {}
            None => self.skipped.push(Skipped { filename, reason: SkipReason::UnsupportedType }),
        }
    }
}

/// Mailers that cut a message short, or forget it, leave out the closing delimiter of a multipart (`--b--`,
/// RFC 2046 5.1.1), and the MIME parser then drops the last part: with one PDF, the invoice. Every boundary the
/// message declares and uses but never closes is closed at the end, innermost first.
fn close_open_boundaries(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut open: Vec<Vec<u8>> = Vec::new();
    let lower = raw.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = find(&lower[from..], b"boundary=") {
        let start = from + at + b"boundary=".len();
        from = start;
        let rest = &raw[start..];
        let value: &[u8] = if let Some(quoted) = rest.strip_prefix(b"\"") {
            &quoted[..quoted.iter().position(|&b| b == b'"' || b == b'\n').unwrap_or(quoted.len())]
        } else {
            &rest[..rest.iter().position(|&b| b == b';' || b.is_ascii_whitespace()).unwrap_or(rest.len())]
        };
        // RFC 2046 5.1.1: 1 to 70 characters.
        if value.is_empty() || value.len() > 70 || open.iter().any(|b| b == value) {
            continue;
        }
        let delimiter = [b"\n--".as_slice(), value].concat();
        let close = [b"\n--".as_slice(), value, b"--"].concat();
        if find(raw, &delimiter).is_some() && find(raw, &close).is_none() {
            open.push(value.to_vec());
        }
    }
    if open.is_empty() {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut fixed = raw.to_vec();
    for b in open.iter().rev() {
        fixed.extend_from_slice(b"\r\n--");
        fixed.extend_from_slice(b);
        fixed.extend_from_slice(b"--\r\n");
    }
    std::borrow::Cow::Owned(fixed)
}

/// A base64 part decoded as RFC 2045 6.8 says: characters outside the alphabet are ignored, and `=` ends the
/// data. The MIME parser refuses such a part whole, and the supplier would be told the PDF is damaged. `None`
/// for parts in other encodings.
fn forgiving_body(part: &MessagePart<'_>, raw: &[u8]) -> Option<Vec<u8>> {
    let encoding = part.content_transfer_encoding()?;
    if !encoding.trim().eq_ignore_ascii_case("base64") {
        return None;
    }
    let body = raw.get(part.offset_body as usize..part.offset_end as usize)?;
    Some(base64_lenient(body))
}

fn base64_lenient(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn by_declared_type(ctype: &str, filename: &str, bytes: &[u8]) -> Option<DocumentKind> {
    let ext = filename.rsplit_once('.').map(|(_, e)| e.to_lowercase()).unwrap_or_default();
    // A file that claims to be a PDF but is not one still goes to the extractor, which answers precisely
    // ("the PDF is damaged") instead of us silently skipping what the supplier meant as their invoice.
    if ctype == "application/pdf" || ext == "pdf" {
        return Some(DocumentKind::Pdf);
    }
    if ctype.ends_with("/xml") || ext == "xml" || ext == "xsig" {
        return Some(DocumentKind::Xml);
    }
    if (ctype.starts_with("image/png") || ext == "png") && !bytes.is_empty() {
        return Some(DocumentKind::Png);
    }
    if ctype == "image/jpeg" || ext == "jpg" || ext == "jpeg" {
        return Some(DocumentKind::Jpeg);
    }
    if ctype == "image/tiff" || ext == "tif" || ext == "tiff" {
        return Some(DocumentKind::Tiff);
    }
    None
}

fn is_signature_or_vcard(ctype: &str, filename: &str) -> bool {
    matches!(ctype, "application/pgp-signature" | "application/pkcs7-signature" | "application/x-pkcs7-signature")
        || ctype.starts_with("text/vcard")
        || ctype.starts_with("text/x-vcard")
        || filename.ends_with(".p7s")
        || filename.ends_with(".asc")
}

/// Keep the name readable but harmless: no path separators, no control characters, bounded length.
pub fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    if clean.is_empty() {
        "attachment".into()
    } else {
        clean
    }
}

fn default_name(ctype: &str, n: usize) -> Option<String> {
    let ext = match ctype {
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/tiff" => "tif",
        t if t.ends_with("/xml") => "xml",
        _ => "bin",
    };
    Some(format!("attachment-{n}.{ext}"))
}

fn referenced_cids(message: &mail_parser::Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..message.html_body_count() {
        if let Some(html) = message.body_html(i) {
            let lower = html.to_lowercase();
            for piece in lower.split("cid:").skip(1) {
                let cid: String = piece.chars().take_while(|c| !matches!(c, '"' | '\'' | '>' | ' ' | ')')).collect();
                if !cid.is_empty() {
                    out.push(cid);
                }
            }
        }
    }
    out
}

fn text_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

fn header_text(message: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    message.header_raw(name).map(|v| v.trim().to_string())
}

fn content_language(message: &mail_parser::Message<'_>) -> Option<String> {
    match message.root_part().content_language() {
        HeaderValue::Text(t) => Some(t.to_lowercase()),
        HeaderValue::TextList(l) => l.first().map(|t| t.to_lowercase()),
        _ => None,
    }
}

/// RFC 3834 section 2 and common practice: never answer robots, lists, bounces or ourselves. Answering them
/// makes mail loops and backscatter.
fn no_reply_reason(message: &mail_parser::Message<'_>, from: Option<&str>, own: &str) -> Option<NoReply> {
    if let Some(v) = header_text(message, "Auto-Submitted") {
        // RFC 3834 section 5: only the value "no" marks mail written by a person.
        let v = v.trim().to_lowercase();
        if v.split(';').next().map(str::trim) != Some("no") {
            return Some(NoReply::AutoSubmitted(v));
        }
    }
    if let Some(v) = header_text(message, "Precedence") {
        let v = v.trim().to_lowercase();
        if matches!(v.as_str(), "bulk" | "junk" | "list") {
            return Some(NoReply::Precedence(v));
        }
    }
    if !message.list_id().is_empty() {
        return Some(NoReply::MailingList);
    }
    if let Some(rp) = message.header_raw("Return-Path") {
        let rp = rp.trim();
        if rp == "<>" || rp.is_empty() {
            return Some(NoReply::EmptyReturnPath);
        }
    }
    if message.root_part().is_content_type("multipart", "report") {
        return Some(NoReply::Robot("delivery report".into()));
    }
    let Some(from) = from else { return Some(NoReply::NoSender) };
    if from.eq_ignore_ascii_case(own) {
        return Some(NoReply::Ourselves);
    }
    let local = from.split('@').next().unwrap_or("").to_lowercase();
    let robots = ["mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply"];
    if robots.iter().any(|r| local == *r || local.starts_with(&format!("{r}+")) || local.starts_with(&format!("{r}-")))
    {
        return Some(NoReply::Robot(from.to_string()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "intake@example.test";

    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!("{headers}\r\nMIME-Version: 1.0\r\n\r\n{body}").replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
    }

    fn pdf_mail(extra_headers: &str, ctype: &str, filename_param: &str) -> Vec<u8> {
        use base64::Engine;
        let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
        mail(
            &format!(
                "From: Proveedor <billing@supplier.test>\nTo: {OWN}\nSubject: Factura octubre\nMessage-ID: <m1@supplier.test>\n{extra_headers}Content-Type: multipart/mixed; boundary=\"b\""
            ),
            &format!(
                "--b\nContent-Type: text/plain; charset=utf-8\n\nHola, adjunto la factura del mes. Saludos.\n--b\nContent-Type: {ctype}\nContent-Disposition: attachment; {filename_param}\nContent-Transfer-Encoding: base64\n\n{}\n--b--\n",
                encode(pdf)
            ),
        )
    }

    #[test]
    fn an_octet_stream_pdf_is_found_by_its_magic_bytes() {
        let m = parse(&pdf_mail("", "application/octet-stream", "filename=\"scan0001\""), OWN, 20);
        assert_eq!(m.documents.len(), 1);
        assert_eq!(m.documents[0].kind, DocumentKind::Pdf);
        assert_eq!(m.from.as_deref(), Some("billing@supplier.test"));
        assert_eq!(m.language, Some(Language::Es));
        assert!(m.no_reply.is_none());
    }

    #[test]
    fn an_rfc2231_filename_is_decoded() {
        let m = parse(&pdf_mail("", "application/pdf", "filename*=utf-8''Factura%20n%C2%BA%2012.pdf"), OWN, 20);
        assert_eq!(m.documents[0].filename, "Factura nº 12.pdf");
    }

    #[test]
    fn an_rfc2047_filename_is_decoded() {
        let m = parse(&pdf_mail("", "application/pdf", "filename=\"=?UTF-8?Q?Factura_n=C2=BA_7.pdf?=\""), OWN, 20);
        assert_eq!(m.documents[0].filename, "Factura nº 7.pdf");
    }

    #[test]
    fn robots_lists_and_bounces_are_never_answered() {
        let cases = [
            ("Auto-Submitted: auto-replied\n", true),
            ("Auto-Submitted: no\n", false),
            ("Precedence: bulk\n", true),
            ("List-Id: <suppliers.lists.test>\n", true),
            ("Return-Path: <>\n", true),
            ("Return-Path: <billing@supplier.test>\n", false),
        ];
        for (header, silent) in cases {
            let m = parse(&pdf_mail(header, "application/pdf", "filename=a.pdf"), OWN, 20);
            assert_eq!(m.no_reply.is_some(), silent, "{header}");
        }
        let from_daemon = String::from_utf8(pdf_mail("", "application/pdf", "filename=a.pdf"))
            .unwrap()
            .replace("Proveedor <billing@supplier.test>", "MAILER-DAEMON@mx.test");
        assert!(matches!(parse(from_daemon.as_bytes(), OWN, 20).no_reply, Some(NoReply::Robot(_))));
        let from_us = String::from_utf8(pdf_mail("", "application/pdf", "filename=a.pdf"))
            .unwrap()
            .replace("Proveedor <billing@supplier.test>", OWN);
        assert_eq!(parse(from_us.as_bytes(), OWN, 20).no_reply, Some(NoReply::Ourselves));
    }

    #[test]
    fn a_word_document_is_named_as_skipped() {
        let raw = mail(
            "From: a@b.test\nSubject: x\nContent-Type: multipart/mixed; boundary=\"b\"",
            "--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/msword\nContent-Disposition: attachment; filename=factura.doc\n\nxxxx\n--b--\n",
        );
        let m = parse(&raw, OWN, 20);
        assert!(m.documents.is_empty());
        assert_eq!(m.skipped, vec![Skipped { filename: "factura.doc".into(), reason: SkipReason::UnsupportedType }]);
    }

    #[test]
    fn an_xml_invoice_sent_as_text_xml_is_a_document() {
        let raw = mail(
            "From: a@b.test\nSubject: x\nContent-Type: multipart/mixed; boundary=\"b\"",
            "--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: text/xml; name=inv.xml\nContent-Disposition: attachment; filename=inv.xml\n\n<?xml version=\"1.0\"?><Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"/>\n--b--\n",
        );
        let m = parse(&raw, OWN, 20);
        assert_eq!(m.documents.len(), 1);
        assert_eq!(m.documents[0].kind, DocumentKind::Xml);
    }

    #[test]
    fn filenames_cannot_escape_or_inject() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("a\r\nBcc: x@y.test.pdf"), "aBcc: x@y.test.pdf");
        assert_eq!(sanitize_filename(".."), "attachment");
    }

    #[test]
    fn garbage_is_kept_as_malformed_or_parsed_without_documents() {
        let m = parse(b"\x00\x01\x02 not a mail at all", OWN, 20);
        assert!(m.documents.is_empty());
    }

    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        let s = base64::engine::general_purpose::STANDARD.encode(bytes);
        s.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\n")
    }

    fn headers(subject: &str, ctype: &str) -> String {
        format!("From: billing@supplier.test\nTo: {OWN}\nSubject: {subject}\nMessage-ID: <{subject}@supplier.test>\nContent-Type: {ctype}")
    }

    #[test]
    fn a_missing_closing_boundary_keeps_the_last_part() {
        let raw = mail(
            &headers("unclosed", "multipart/mixed; boundary=\"b\""),
            &format!(
                "--b\nContent-Type: text/plain\n\nAdjunto factura.\n--b\nContent-Type: application/pdf; name=\"f.pdf\"\nContent-Disposition: attachment; filename=\"f.pdf\"\nContent-Transfer-Encoding: base64\n\n{}\n",
                b64(PDF)
            ),
        );
        let m = parse(&raw, OWN, 20);
        assert_eq!(m.documents.len(), 1, "{:?}", m.skipped);
        assert_eq!(m.documents[0].bytes, PDF);

        // The same PDF sent as 8-bit binary, as some mailers do: without its closing delimiter the parser takes the
        // part for broken text and its binary bytes would be lost in the conversion.
        let pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
        let mut raw = mail(
            &headers("unclosed-binary", "multipart/mixed; boundary=\"b\""),
            "--b\nContent-Type: text/plain\n\nAdjunto factura.\n--b\nContent-Type: application/pdf; name=\"f.pdf\"\nContent-Disposition: attachment; filename=\"f.pdf\"\nContent-Transfer-Encoding: binary\n\n",
        );
        raw.extend_from_slice(pdf);
        let m = parse(&raw, OWN, 20);
        assert_eq!(m.documents.len(), 1, "{:?}", m.skipped);
        assert_eq!(m.documents[0].bytes, pdf);
    }

    #[test]
    fn base64_with_characters_outside_its_alphabet_still_decodes() {
        // RFC 2045 6.8: characters outside the alphabet are ignored.
        let dirty: String = b64(PDF)
            .chars()
            .enumerate()
            .map(|(i, c)| if i % 10 == 5 { format!("{c}!*") } else { c.to_string() })
            .collect();
        let raw = mail(
            &headers("dirty", "multipart/mixed; boundary=\"b\""),
            &format!(
                "--b\nContent-Type: text/plain\n\nAdjunto factura.\n--b\nContent-Type: application/pdf; name=\"f.pdf\"\nContent-Disposition: attachment; filename=\"f.pdf\"\nContent-Transfer-Encoding: base64\n\n{dirty}\n--b--\n"
            ),
        );
        let m = parse(&raw, OWN, 20);
        assert_eq!(m.documents.len(), 1, "{:?}", m.skipped);
        assert_eq!(m.documents[0].bytes, PDF);
    }

    #[test]
    fn a_small_jpeg_attached_as_a_file_is_a_document_not_a_logo() {
        let mut jpeg = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00".to_vec();
        jpeg.resize(9000, 0x11);
        let raw = mail(
            &headers("jpeg", "multipart/mixed; boundary=\"b\""),
            &format!(
                "--b\nContent-Type: text/html\n\n<p>Adjunto factura</p><img src=\"cid:logo@x\">\n--b\nContent-Type: image/png\nContent-ID: <logo@x>\nContent-Disposition: inline\nContent-Transfer-Encoding: base64\n\n{}\n--b\nContent-Type: image/jpeg; name=\"factura.jpg\"\nContent-Disposition: attachment; filename=\"factura.jpg\"\nContent-Transfer-Encoding: base64\n\n{}\n--b--\n",
                b64(b"\x89PNG\r\n\x1a\nlogo"),
                b64(&jpeg)
            ),
        );
        let m = parse(&raw, OWN, 20);
        assert_eq!(m.documents.iter().map(|d| d.filename.as_str()).collect::<Vec<_>>(), ["factura.jpg"]);
        assert_eq!(m.documents[0].kind, DocumentKind::Jpeg);
    }

    /// `levels` forwards, each wrapping the last, around a mail with a PDF.
    fn forwarded(levels: usize, encode_every: usize) -> Vec<u8> {
        let mut inner = format!(
            "{}\nMIME-Version: 1.0\n\n--b\nContent-Type: text/plain\n\nfactura\n--b\nContent-Type: application/pdf; name=\"f.pdf\"\nContent-Disposition: attachment; filename=\"f.pdf\"\nContent-Transfer-Encoding: base64\n\n{}\n--b--\n",
            headers("origin", "multipart/mixed; boundary=\"b\""),
            b64(PDF)
        );
        for level in 0..levels {
            let boundary = format!("f{level}");
            let (cte, body) = if encode_every > 0 && level % encode_every == 0 {
                ("Content-Transfer-Encoding: base64\n", b64(inner.as_bytes()))
            } else {
                ("", inner.clone())
            };
            inner = format!(
                "{}\nMIME-Version: 1.0\n\n--{boundary}\nContent-Type: text/plain\n\nreenviado\n--{boundary}\nContent-Type: message/rfc822\n{cte}\n{body}\n--{boundary}--\n",
                headers(&format!("fwd{level}"), &format!("multipart/mixed; boundary=\"{boundary}\""))
            );
        }
        inner.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
    }

    #[test]
    fn forwards_nested_beyond_eight_levels_are_opened_and_too_deep_ones_are_named() {
        for encode_every in [0, 2] {
            let m = parse(&forwarded(12, encode_every), OWN, 20);
            assert_eq!(m.documents.len(), 1, "encoded every {encode_every}: {:?}", m.skipped);
            assert_eq!(m.documents[0].bytes, PDF);
        }
        let m = parse(&forwarded(MAX_NESTING + 3, 0), OWN, 20);
        assert!(m.documents.is_empty());
        assert_eq!(m.skipped.iter().map(|s| s.reason).collect::<Vec<_>>(), [SkipReason::TooDeep]);
    }
}
