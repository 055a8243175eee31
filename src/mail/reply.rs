//! What we write back: to the supplier, in the same thread and in their language, what was read or exactly what
//! went wrong; and to the accountants, a confirmation per stored invoice.
//!
//! Everything here is pure: outcomes in, `lettre::Message` out. Values from the document or the mail are never put
//! in a header unescaped (lettre encodes headers), are bounded and kept on one line (`headers`), and are
//! HTML-escaped in the HTML part.

use chrono::{DateTime, Datelike, Utc};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use sha2::{Digest, Sha256};

use super::render::{self, Rendered};
use super::settings::Language;
use crate::extract::{ErrorCode, Extraction};
use crate::mail::headers::{self, header_text, shorten, AutoSubmitted};
use crate::mail::mime::Skipped;

/// A header whose value is plain text we write.
macro_rules! text_header {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        struct $name(String);

        impl Header for $name {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($field)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($name(s.to_string()))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(
    /// RFC 3282: the language we wrote in, so a mail client (and the next reply) can follow it.
    ContentLanguage,
    "Content-Language"
);

/// What happened to one document of a message.
#[derive(Debug, Clone)]
pub enum Outcome {
    Stored(Extraction),
    /// This invoice is stored already: the same document from the same sender, or the same supplier and number
    /// (another copy, or the XML beside its own PDF).
    Duplicate {
        extraction: Extraction,
        first_seen: DateTime<Utc>,
        invoice_number: Option<String>,
    },
    Failed(Extraction),
    /// Not booked: the invoice is addressed to another company (`[company] on_foreign_customer = "reject"`).
    NotForUs {
        extraction: Extraction,
        reason: String,
    },
}

impl Outcome {
    pub fn extraction(&self) -> &Extraction {
        match self {
            Outcome::Stored(e) | Outcome::Failed(e) => e,
            Outcome::Duplicate { extraction, .. } | Outcome::NotForUs { extraction, .. } => extraction,
        }
    }
}

/// Everything the supplier's reply says.
#[derive(Debug, Clone)]
pub struct ReplyContent<'a> {
    pub language: Language,
    pub outcomes: &'a [(String, Outcome)],
    pub skipped: &'a [Skipped],
    /// Set when this very message (same Message-ID) was handled before.
    pub resent_of: Option<DateTime<Utc>>,
    /// Set when the whole message was refused before reading (too large, unparseable).
    pub message_error: Option<MessageError>,
    pub max_pages: u32,
    pub max_attachments: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    TooLarge {
        bytes: u64,
        limit: u64,
    },
    /// A person has to look (the extractor kept failing); the supplier is told it is not lost.
    UnderReview,
}

/// The thread a reply belongs to.
#[derive(Debug, Clone)]
pub struct Thread<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub message_id: Option<&'a str>,
    pub references: &'a [String],
}

/// A stable Message-ID: the same content for the same message always gets the same id, so queuing it twice
/// (after a crash) is a no-op in the outbox and a resend is recognisable. `from` may carry a display name.
pub fn stable_message_id(kind: &str, message_ref: i64, body: &str, from: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let address = from.parse::<Mailbox>().map(|m| m.email.to_string()).unwrap_or_else(|_| from.to_string());
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("invoice-intake.invalid");
    format!("<{kind}.{message_ref}.{}@{domain}>", hex::encode(&digest[..6]))
}

/// A document that goes with a mail to the accountants: the original, byte for byte, under its own name.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// Build a mail with a plain-text and an HTML alternative, and the attachments after them.
fn build(
    from: &str,
    to: &[String],
    rendered: &Rendered,
    message_id: &str,
    thread: Option<&Thread<'_>>,
    reply_to: Option<&str>,
    attachments: &[Attachment<'_>],
) -> anyhow::Result<Message> {
    let mut b = Message::builder()
        .from(from.parse::<Mailbox>()?)
        .subject(header_text(&rendered.subject))
        .message_id(Some(message_id.to_string()))
        // RFC 3834 section 5: an answer to a mail is auto-replied; a confirmation, an alert or a digest is
        // auto-generated. Either way well-behaved responders do not answer it.
        .header(AutoSubmitted(if thread.is_some() { "auto-replied" } else { "auto-generated" }.into()))
        .header(ContentLanguage(rendered.language.code().to_string()))
        .date_now();
    for t in to {
        b = b.to(t.parse::<Mailbox>()?);
    }
    if let Some(r) = reply_to {
        b = b.reply_to(r.parse::<Mailbox>()?);
    }
    if let Some(th) = thread {
        if let Some(id) = th.message_id.and_then(headers::message_id) {
            b = b.in_reply_to(id.clone());
            b = b.references(headers::references(th.references, &id).join(" "));
        }
    }
    // Each line stays within what SMTP servers take, however a value inside it was written.
    let text: String =
        rendered.text.lines().map(|l| shorten(l, headers::MAX_LINE_CHARS + 200)).collect::<Vec<_>>().join("\n") + "\n";
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(rendered.html.clone()));
    if attachments.is_empty() {
        return Ok(b.multipart(alternative)?);
    }
    let mut mixed = MultiPart::mixed().multipart(alternative);
    for a in attachments {
        let content_type = ContentType::parse(a.content_type)
            .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("a valid content type"));
        let name = header_text(a.filename);
        mixed = mixed.singlepart(lettre::message::Attachment::new(name).body(a.bytes.to_vec(), content_type));
    }
    Ok(b.multipart(mixed)?)
}

/// The supplier's reply, with its stable Message-ID.
pub fn compose_reply(
    thread: &Thread<'_>,
    content: &ReplyContent<'_>,
    message_ref: i64,
) -> anyhow::Result<(String, Message)> {
    let rendered = render::render_reply(content, thread.subject)?;
    let id = stable_message_id("reply", message_ref, &rendered.text, thread.from);
    let msg = build(thread.from, &[thread.to.to_string()], &rendered, &id, Some(thread), None, &[])?;
    Ok((id, msg))
}

/// What the accountants get for each stored invoice.
pub struct Confirmation<'a> {
    pub language: Language,
    pub extraction: &'a Extraction,
    pub filename: &'a str,
    pub sender: &'a str,
    pub subject: &'a str,
    pub message_id: Option<&'a str>,
    pub message_ref: i64,
    pub invoice_ref: i64,
    /// Fraud signals (a changed IBAN, a reused number), one sentence each in `language`, shown first.
    pub alerts: &'a [String],
    /// When the mail arrived.
    pub received: Option<DateTime<Utc>>,
    /// A field read with less confidence than this (0..1) is marked for review (`[review] min_confidence`).
    pub min_confidence: f32,
    /// The original document goes with the confirmation (it fits `[notify] max_batch_attachment_bytes`).
    pub attached: bool,
}

/// Where the accountants' replies go: the intake mailbox, so an answer to a confirmation comes back to us.
#[derive(Debug, Clone, Copy)]
pub struct Addresses<'a> {
    /// `smtp.from`, with its display name if it has one.
    pub from: &'a str,
    pub to: &'a [String],
    pub reply_to: Option<&'a str>,
}

pub fn compose_confirmation(
    to: &Addresses<'_>,
    c: &Confirmation<'_>,
    original: Option<Attachment<'_>>,
) -> anyhow::Result<(String, Message)> {
    let rendered = render::render_confirmation(&Confirmation { attached: original.is_some(), ..*c })?;
    let id = stable_message_id(&format!("confirm{}", c.invoice_ref), c.message_ref, &rendered.text, to.from);
    let attachments: Vec<Attachment<'_>> = original.into_iter().collect();
    let msg = build(to.from, to.to, &rendered, &id, None, to.reply_to, &attachments)?;
    Ok((id, msg))
}

/// One invoice of a message that brought several.
pub struct BatchItem<'a> {
    pub extraction: &'a Extraction,
    pub filename: &'a str,
    pub invoice_ref: i64,
    pub alerts: &'a [String],
}

/// The one confirmation for a message with several invoices (a Facturae batch, many PDFs).
pub struct BatchConfirmation<'a> {
    pub language: Language,
    pub items: &'a [BatchItem<'a>],
    /// The documents of the message that could not be read.
    pub failed: &'a [(String, ErrorCode)],
    pub sender: &'a str,
    pub subject: &'a str,
    pub message_id: Option<&'a str>,
    pub message_ref: i64,
    pub received: Option<DateTime<Utc>>,
    pub min_confidence: f32,
    /// How many documents the message brought, and how many of them go with the confirmation.
    pub documents: usize,
    pub attached: usize,
}

/// The originals that fit in `max_bytes` together, in order; a document shared by several invoices (one XML
/// holding a batch) once.
pub fn attachments_within<'a>(docs: &[Attachment<'a>], max_bytes: u64) -> Vec<Attachment<'a>> {
    let mut out: Vec<Attachment<'a>> = Vec::new();
    let mut used = 0u64;
    for d in docs {
        if out.iter().any(|o| o.filename == d.filename && o.bytes == d.bytes) {
            continue;
        }
        let size = d.bytes.len() as u64;
        if used + size <= max_bytes {
            used += size;
            out.push(d.clone());
        }
    }
    out
}

pub fn compose_batch_confirmation(
    to: &Addresses<'_>,
    b: &BatchConfirmation<'_>,
    originals: &[Attachment<'_>],
) -> anyhow::Result<(String, Message)> {
    let rendered = render::render_batch(&BatchConfirmation { attached: originals.len(), ..*b })?;
    let id = stable_message_id("confirm-batch", b.message_ref, &rendered.text, to.from);
    let msg = build(to.from, to.to, &rendered, &id, None, to.reply_to, originals)?;
    Ok((id, msg))
}

/// One mail to the accountants for every message quarantined (unauthenticated sender) or left without an
/// invoice since the last one: spam or a broken sender would otherwise send them a mail each.
pub fn compose_alert_digest(
    to: &Addresses<'_>,
    language: Language,
    alerts: &render::AlertsView,
) -> anyhow::Result<(String, Message)> {
    let rendered = render::render_alerts(alerts, language)?;
    let first =
        alerts.quarantined.iter().map(|q| q.message_ref).chain(alerts.failed.iter().map(|f| f.message_ref)).min();
    let id = stable_message_id("alerts", first.unwrap_or(0), &rendered.text, to.from);
    let msg = build(to.from, to.to, &rendered, &id, None, to.reply_to, &[])?;
    Ok((id, msg))
}

/// The daily digest as a mail, with the day's CSV when there is one.
pub fn compose_digest(
    to: &Addresses<'_>,
    language: Language,
    digest: &render::DigestView,
    csv: Option<Attachment<'_>>,
) -> anyhow::Result<(String, Message)> {
    let rendered =
        render::render_digest(&render::DigestView { csv_attached: csv.is_some(), ..digest.clone() }, language)?;
    let id = stable_message_id("digest", digest.date.num_days_from_ce() as i64, &rendered.text, to.from);
    let attachments: Vec<Attachment<'_>> = csv.into_iter().collect();
    let msg = build(to.from, to.to, &rendered, &id, None, to.reply_to, &attachments)?;
    Ok((id, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{Party, Status};
    use chrono::NaiveDate;
    use mail_parser::MimeHeaders;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    /// The reply's text, its words single-spaced (the text part wraps long sentences).
    fn reply_text(c: &ReplyContent<'_>) -> String {
        let text = render::render_reply(c, "Factura").unwrap().text;
        text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n")
    }

    fn to() -> Addresses<'static> {
        static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        Addresses {
            from: "intake@example.test",
            to: LIST.get_or_init(|| vec!["accounts@example.test".to_string()]),
            reply_to: None,
        }
    }

    fn confirmation<'a>(e: &'a Extraction, subject: &'a str, filename: &'a str) -> Confirmation<'a> {
        Confirmation {
            language: Language::Es,
            extraction: e,
            filename,
            sender: "billing@supplier.test",
            subject,
            message_id: Some("m1@supplier.test"),
            message_ref: 3,
            invoice_ref: 9,
            alerts: &[],
            received: None,
            min_confidence: 0.6,
            attached: false,
        }
    }

    fn invoice() -> Extraction {
        let mut e = Extraction::empty("factura.pdf");
        e.invoice_number = Some("2025-0042".into());
        e.issue_date = NaiveDate::from_ymd_opt(2025, 10, 15);
        e.currency = Some("EUR".into());
        e.supplier = Some(Party {
            name: Some("Suministros <b>Norte</b> S.L.".into()),
            tax_id: Some("B12345674".into()),
            ..Default::default()
        });
        e.total_amount = Some(Decimal::from_str("1210.00").unwrap());
        e
    }

    fn content<'a>(outcomes: &'a [(String, Outcome)], lang: Language) -> ReplyContent<'a> {
        ReplyContent {
            language: lang,
            outcomes,
            skipped: &[],
            resent_of: None,
            message_error: None,
            max_pages: 50,
            max_attachments: 20,
        }
    }

    #[test]
    fn a_stored_invoice_is_read_back_in_spanish() {
        let o = vec![("factura.pdf".to_string(), Outcome::Stored(invoice()))];
        let text = reply_text(&content(&o, Language::Es));
        assert!(text.contains("factura.pdf: registrada"), "{text}");
        assert!(text.contains("Número 2025-0042"), "{text}");
        assert!(text.contains("Fecha de emisión 15/10/2025"), "{text}");
        assert!(text.contains("Total 1.210,00 EUR"), "{text}");
    }

    #[test]
    fn an_encrypted_pdf_gets_the_sentence_the_supplier_can_act_on() {
        let e = Extraction::failed("f.pdf", ErrorCode::Encrypted, "password");
        let o = vec![("f.pdf".to_string(), Outcome::Failed(e))];
        let text = reply_text(&content(&o, Language::Es));
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("El PDF está protegido con contraseña; envíelo sin contraseña, por favor."), "{text}");
    }

    #[test]
    fn a_mail_without_documents_is_told_so_in_english() {
        let text = reply_text(&content(&[], Language::En));
        assert!(text.contains("We found no invoice attached"), "{text}");
    }

    #[test]
    fn a_failed_total_check_is_shown_plainly() {
        let mut e = invoice();
        e.push_check(crate::extract::Check::new("totals_add_up", false, Some("1000.00 + 210.00 ≠ 1200.00".into())));
        let o = vec![("factura.pdf".to_string(), Outcome::Stored(e))];
        let text = reply_text(&content(&o, Language::Es)).replace('\n', " ");
        assert!(
            text.contains("El total no coincide con la base imponible más el IVA (1000.00 + 210.00 ≠ 1200.00)"),
            "{text}"
        );
    }

    #[test]
    fn the_reply_is_threaded_marked_automatic_and_escaped() {
        let o = vec![("factura.pdf".to_string(), Outcome::Stored(invoice()))];
        let refs = vec!["<a@x.test>".to_string()];
        let thread = Thread {
            from: "intake@example.test",
            to: "billing@supplier.test",
            subject: "Factura octubre",
            message_id: Some("m1@supplier.test"),
            references: &refs,
        };
        let (id, msg) = compose_reply(&thread, &content(&o, Language::Es), 7).unwrap();
        let raw = String::from_utf8(msg.formatted()).unwrap();
        assert!(raw.contains("Subject: Re: Factura octubre"), "{raw}");
        assert!(raw.contains("In-Reply-To: <m1@supplier.test>"), "{raw}");
        assert!(raw.contains("References: <a@x.test> <m1@supplier.test>"), "{raw}");
        assert!(raw.contains("Auto-Submitted: auto-replied"), "{raw}");
        assert!(raw.contains(&format!("Message-ID: {id}")), "{raw}");
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("&lt;b&gt;Norte&lt;"), "HTML part must escape: {html}");
        assert!(!html.contains("<b>Norte"), "HTML part must escape: {html}");
        assert!(parsed.body_text(0).unwrap().contains("1.210,00 EUR"));
        // The same content gives the same Message-ID: the outbox key that stops double replies.
        let (id2, _) = compose_reply(&thread, &content(&o, Language::Es), 7).unwrap();
        assert_eq!(id, id2);
    }

    #[test]
    fn a_hostile_subject_cannot_add_headers() {
        let thread = Thread {
            from: "intake@example.test",
            to: "a@b.test",
            subject: "x\r\nBcc: victim@evil.test",
            message_id: None,
            references: &[],
        };
        let (_, msg) = compose_reply(&thread, &content(&[], Language::En), 1).unwrap();
        let raw = String::from_utf8(msg.formatted()).unwrap();
        assert!(!raw.lines().any(|l| l.starts_with("Bcc:")), "{raw}");
    }

    #[test]
    fn the_confirmation_names_the_fields_and_the_message() {
        let e = invoice();
        let c = confirmation(&e, "Factura octubre", "factura.pdf");
        let accountants = ["accounts@example.test".to_string()];
        let to = Addresses {
            from: "\"Facturas Ejemplo S.L.\" <intake@example.test>",
            to: &accountants,
            reply_to: Some("intake@example.test"),
        };
        let original = Attachment { filename: "factura.pdf", content_type: "application/pdf", bytes: b"%PDF-1.4 x" };
        let (id, msg) = compose_confirmation(&to, &c, Some(original)).unwrap();
        assert!(id.ends_with("@example.test>"), "{id}");
        let raw = msg.formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let body = parsed.body_text(0).unwrap();
        assert!(parsed.subject().unwrap().contains("Factura registrada"));
        assert!(body.contains("Message-ID: <m1@supplier.test>"), "{body}");
        assert!(body.contains("Remitente: billing@supplier.test"), "{body}");
        assert!(body.contains("El documento original va adjunto: factura.pdf."), "{body}");
        assert_eq!(parsed.reply_to().and_then(|r| r.first()).and_then(|a| a.address()), Some("intake@example.test"));
        assert_eq!(parsed.from().and_then(|r| r.first()).and_then(|a| a.name()), Some("Facturas Ejemplo S.L."));
        let attached = parsed.attachments().next().expect("the original");
        assert_eq!(attached.attachment_name(), Some("factura.pdf"));
        assert_eq!(attached.contents(), b"%PDF-1.4 x");
        assert_eq!(e.status, Status::Ok);
    }

    /// Every line of `raw` within RFC 5322's 998 octets, the header lines within 78 where they can be folded, and
    /// the message readable again.
    fn assert_bounded(raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let (head, _) = text.split_once("\r\n\r\n").expect("a header and a body");
        for line in text.split("\r\n") {
            assert!(line.len() <= 998, "a line of {} octets: {}…", line.len(), &line[..80]);
        }
        for line in head.split("\r\n") {
            assert!(line.len() <= 78, "a header line of {} octets: {line}", line.len());
        }
        assert!(mail_parser::MessageParser::default().parse(raw).is_some());
    }

    #[test]
    fn a_huge_subject_and_thread_give_short_folded_header_lines() {
        let subject = "Factura =?utf-8?q?n=C2=BA?= ".repeat(100_000);
        let refs: Vec<String> = (0..10_000).map(|i| format!("<ref{i}@supplier.test>")).collect();
        let long_id = format!("{}@supplier.test", "x".repeat(6000));
        for message_id in [Some("m1@supplier.test"), Some(long_id.as_str())] {
            let thread = Thread {
                from: "intake@example.test",
                to: "a@b.test",
                subject: &subject,
                message_id,
                references: &refs,
            };
            let (_, msg) = compose_reply(&thread, &content(&[], Language::Es), 1).unwrap();
            let raw = msg.formatted();
            assert_bounded(&raw);
            let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
            assert!(parsed.subject().unwrap().ends_with('…'), "{:?}", parsed.subject());
            if message_id == Some("m1@supplier.test") {
                let refs = String::from_utf8_lossy(&raw);
                assert!(refs.contains("<ref0@supplier.test>") && refs.contains("<ref9999@supplier.test>"));
                assert!(!refs.contains("<ref5000@supplier.test>"));
            }
        }
    }

    #[test]
    fn a_huge_supplier_name_keeps_the_confirmation_short_and_its_number_visible() {
        let mut e = invoice();
        e.supplier.as_mut().unwrap().name = Some("N".repeat(6 * 1024 * 1024));
        let subject = "ñ".repeat(50_000);
        let c = confirmation(&e, &subject, "factura.pdf");
        let (_, msg) = compose_confirmation(&to(), &c, None).unwrap();
        let raw = msg.formatted();
        assert!(raw.len() < 20_000, "{} bytes", raw.len());
        assert_bounded(&raw);
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert!(parsed.subject().unwrap().contains("nº 2025-0042"), "{:?}", parsed.subject());
    }

    #[test]
    fn encoded_line_breaks_and_controls_in_a_subject_add_no_lines_to_the_accountants_mails() {
        let subject = "Factura\r\nIBAN: ES00 0000 0000\n\u{1b}[2J\u{7}\0fin";
        let e = invoice();
        let c = confirmation(&e, subject, "f.pdf\nIBAN: ES11");
        let (_, confirmation) = compose_confirmation(&to(), &c, None).unwrap();
        let alerts = render::AlertsView {
            quarantined: vec![render::QuarantinedMail {
                message_ref: 4,
                sender: "x@evil.test".into(),
                subject: subject.into(),
                message_id: None,
                reason: "sender not authenticated: spf fail; Reply-To: y@evil.test\r\nIBAN: ES22".into(),
            }],
            failed: vec![],
        };
        let (_, alert) = compose_alert_digest(&to(), Language::Es, &alerts).unwrap();
        for msg in [confirmation, alert] {
            let raw = msg.formatted();
            let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
            for body in [parsed.body_text(0).unwrap().to_string(), parsed.body_html(0).unwrap().to_string()] {
                assert!(!body.lines().any(|l| l.trim_start().starts_with("IBAN: ES")), "{body}");
                assert!(!body.chars().any(|c| matches!(c, '\u{1b}' | '\u{7}' | '\0')), "{body:?}");
                assert!(body.contains("Factura IBAN: ES00 0000 0000 [2J fin"), "{body}");
            }
        }
    }
}
