//! What we write back: to the supplier, in the same thread and in their language, what was read or exactly what
//! went wrong; and to the accountants, a confirmation per stored invoice.
//!
//! Everything here is pure: outcomes in, `lettre::Message` out. Values from the document or the mail are never put
//! in a header unescaped (lettre encodes headers), are bounded and kept on one line (`headers`), and are
//! HTML-escaped in the HTML part.

use chrono::{DateTime, NaiveDate, Utc};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::settings::Language;
use crate::extract::{validate, ErrorCode, Extraction};
use crate::mail::headers::{self, header_text, line_text, one_line, shorten};
use crate::mail::mime::{SkipReason, Skipped};

/// RFC 3834 section 5: our replies say they are automatic, so well-behaved responders do not answer them.
#[derive(Debug, Clone)]
struct AutoSubmitted(String);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The most characters of a supplier's name (or a sender) and of an invoice number in a subject we write.
const SUBJECT_NAME_CHARS: usize = 80;
const SUBJECT_NUMBER_CHARS: usize = 40;

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
/// (after a crash) is a no-op in the outbox and a resend is recognisable.
pub fn stable_message_id(kind: &str, message_ref: i64, body: &str, from: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("invoice-intake.invalid");
    format!("<{kind}.{message_ref}.{}@{domain}>", hex::encode(&digest[..6]))
}

pub fn reply_subject(original: &str) -> String {
    let trimmed = original.trim();
    let lower = trimmed.to_lowercase();
    if lower.starts_with("re:") || lower.starts_with("re ") {
        trimmed.to_string()
    } else if trimmed.is_empty() {
        "Re: (sin asunto)".to_string()
    } else {
        format!("Re: {trimmed}")
    }
}

/// The reply to the supplier, as plain text (the HTML part is built from the same lines).
pub fn reply_lines(c: &ReplyContent<'_>) -> Vec<String> {
    let es = c.language == Language::Es;
    let mut lines = Vec::new();
    lines.push(if es { "Hola:".to_string() } else { "Hello,".to_string() });
    lines.push(String::new());
    if let Some(first) = c.resent_of {
        lines.push(if es {
            format!("Este mensaje ya lo recibimos el {}; no registramos nada dos veces.", date_es(first.date_naive()))
        } else {
            format!("We already received this message on {}; nothing is recorded twice.", first.date_naive())
        });
        lines.push(String::new());
    }
    match c.message_error {
        Some(MessageError::TooLarge { bytes, limit }) => {
            lines.push(if es {
                format!(
                    "Su mensaje ocupa {} y el máximo que aceptamos es {}; envíe la factura en un PDF más pequeño, por favor.",
                    size(bytes),
                    size(limit)
                )
            } else {
                format!(
                    "Your message is {} and the most we accept is {}; please send the invoice as a smaller PDF.",
                    size(bytes),
                    size(limit)
                )
            });
        }
        Some(MessageError::UnderReview) => lines.push(if es {
            "Hemos recibido su mensaje, pero no hemos podido leerlo automáticamente; una persona lo revisará y le responderá.".into()
        } else {
            "We received your message but could not read it automatically; a person will review it and get back to you.".into()
        }),
        None if c.outcomes.is_empty() => {
            lines.push(if es {
                "No hemos encontrado ninguna factura adjunta en su mensaje. Envíe la factura como PDF, imagen (PNG, JPEG, TIFF) o factura electrónica XML, por favor.".into()
            } else {
                "We found no invoice attached to your message. Please send the invoice as a PDF, an image (PNG, JPEG, TIFF) or an XML e-invoice.".into()
            });
        }
        None => {
            lines.push(if es {
                "Gracias. Esto es lo que hemos leído de su mensaje:".into()
            } else {
                "Thank you. This is what we read from your message:".into()
            });
            lines.push(String::new());
            for (name, outcome) in c.outcomes {
                lines.extend(outcome_lines(name, outcome, c));
            }
        }
    }
    for s in c.skipped {
        lines.push(match (s.reason, es) {
            (SkipReason::UnsupportedType, true) => {
                format!("- {}: no es un PDF, una imagen ni una factura XML, así que no lo hemos leído.", s.filename)
            }
            (SkipReason::UnsupportedType, false) => {
                format!("- {}: not a PDF, an image or an XML invoice, so we did not read it.", s.filename)
            }
            (SkipReason::TooMany, true) => format!(
                "- {}: no leído; leemos como máximo {} documentos por mensaje. Envíelo en otro mensaje, por favor.",
                s.filename, c.max_attachments
            ),
            (SkipReason::TooMany, false) => format!(
                "- {}: not read; we read at most {} documents per message. Please send it in another message.",
                s.filename, c.max_attachments
            ),
            (SkipReason::TooDeep, true) => format!(
                "- {}: es un mensaje reenviado dentro de demasiados reenvíos y no lo hemos abierto. Envíe la factura adjunta directamente, por favor.",
                s.filename
            ),
            (SkipReason::TooDeep, false) => format!(
                "- {}: a forwarded message inside too many forwards, so we did not open it. Please attach the invoice directly.",
                s.filename
            ),
        });
    }
    lines.push(String::new());
    lines.push(if es {
        "Este es un mensaje automático del buzón de facturas.".into()
    } else {
        "This is an automatic message from the invoice mailbox.".into()
    });
    lines
}

fn outcome_lines(name: &str, outcome: &Outcome, c: &ReplyContent<'_>) -> Vec<String> {
    let es = c.language == Language::Es;
    let mut out = Vec::new();
    match outcome {
        Outcome::Stored(e) => {
            out.push(format!("- {name}: {}", if es { "registrada." } else { "recorded." }));
            out.extend(field_lines(e, es).into_iter().map(|l| format!("    {l}")));
            for check in e.failed_checks() {
                out.push(format!(
                    "    {} {}",
                    if es { "Atención:" } else { "Please check:" },
                    check_sentence(check, es)
                ));
            }
        }
        Outcome::Duplicate { first_seen, invoice_number, .. } => {
            let number = invoice_number.as_deref().unwrap_or("-");
            out.push(if es {
                format!(
                    "- {name}: duplicado. Ya recibimos esta factura el {} (factura nº {number}); no la registramos de nuevo.",
                    date_es(first_seen.date_naive())
                )
            } else {
                format!(
                    "- {name}: duplicate. We already received this invoice on {} (invoice {number}); it is not recorded again.",
                    first_seen.date_naive()
                )
            });
        }
        Outcome::NotForUs { reason, .. } => {
            out.push(if es {
                format!("- {name}: no registrada: la factura no va dirigida a nuestra empresa ({reason}). Envíela a su destinatario, por favor.")
            } else {
                format!("- {name}: not recorded: the invoice is not addressed to our company ({reason}). Please send it to its recipient.")
            });
        }
        Outcome::Failed(e) => {
            let code = e.error.as_ref().map(|er| er.code).unwrap_or(ErrorCode::Unreadable);
            let detail = e.error.as_ref().map(|er| er.message.as_str()).unwrap_or("");
            out.push(format!("- {name}: {}", error_sentence(code, detail, es, c.max_pages)));
        }
    }
    out
}

fn field_lines(e: &Extraction, es: bool) -> Vec<String> {
    let mut v = Vec::new();
    let label = |es_l: &str, en_l: &str| if es { es_l.to_string() } else { en_l.to_string() };
    if let Some(n) = e.display_number() {
        v.push(format!("{}: {n}", label("Factura nº", "Invoice number")));
    }
    if let Some(d) = e.issue_date {
        v.push(format!("{}: {}", label("Fecha", "Date"), if es { date_es(d) } else { d.to_string() }));
    }
    if let Some(d) = e.due_date {
        v.push(format!("{}: {}", label("Vencimiento", "Due date"), if es { date_es(d) } else { d.to_string() }));
    }
    if let Some(s) = &e.supplier {
        let who = match (&s.name, &s.tax_id) {
            (Some(n), Some(t)) => Some(format!("{n} ({t})")),
            (Some(n), None) => Some(n.clone()),
            (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        };
        if let Some(who) = who {
            v.push(format!("{}: {who}", label("Proveedor", "Supplier")));
        }
    }
    let cur = e.currency.clone().unwrap_or_default();
    if let Some(t) = e.total_amount {
        v.push(format!("{}: {} {cur}", label("Total", "Total"), money(t, es)).trim_end().to_string());
    }
    if let (Some(due), Some(total)) = (e.amount_due, e.total_amount) {
        if due != total {
            v.push(format!("{}: {} {cur}", label("A pagar", "Amount due"), money(due, es)).trim_end().to_string());
        }
    }
    v.extend(qr_line(e, es));
    if v.is_empty() {
        v.push(label(
            "No hemos podido leer ningún dato con seguridad.",
            "We could not read any field with confidence.",
        ));
    }
    v
}

/// Which fields were read from a QR code on the page, so the reader knows they are the code's, not the text's.
fn qr_line(e: &Extraction, es: bool) -> Option<String> {
    let fields: Vec<&str> =
        e.field_sources.iter().flatten().filter(|(_, s)| s.is_qr()).map(|(f, _)| f.as_str()).collect();
    if fields.is_empty() {
        return None;
    }
    let what = if es { "Leído del código QR" } else { "Read from the QR code" };
    Some(format!("{what}: {}", fields.join(", ")))
}

/// One sentence the supplier can act on, per error code.
pub fn error_sentence(code: ErrorCode, detail: &str, es: bool, max_pages: u32) -> String {
    match (code, es) {
        (ErrorCode::Encrypted, true) => "El PDF está protegido con contraseña; envíelo sin contraseña, por favor.".into(),
        (ErrorCode::Encrypted, false) => "The PDF is password-protected; please send it without a password.".into(),
        (ErrorCode::Unreadable, true) => {
            "El archivo está dañado y no se puede abrir; exporte de nuevo la factura a PDF y envíela otra vez, por favor.".into()
        }
        (ErrorCode::Unreadable, false) => {
            "The file is damaged and cannot be opened; please export the invoice to PDF again and resend it.".into()
        }
        (ErrorCode::UnsupportedType, true) => format!(
            "no podemos leer este tipo de archivo{}; envíe la factura en PDF, por favor.",
            paren(detail)
        ),
        (ErrorCode::UnsupportedType, false) => {
            format!("we cannot read this kind of file{}; please send the invoice as a PDF.", paren(detail))
        }
        (ErrorCode::TooLarge, true) => format!(
            "el archivo es demasiado grande{}; envíe un PDF más pequeño o una imagen de menor resolución, por favor.",
            paren(detail)
        ),
        (ErrorCode::TooLarge, false) => format!(
            "the file is too large{}; please send a smaller PDF or a lower-resolution image.",
            paren(detail)
        ),
        (ErrorCode::TooManyPages, true) => format!(
            "el PDF tiene demasiadas páginas (leemos hasta {max_pages}); envíe solo la factura, por favor."
        ),
        (ErrorCode::TooManyPages, false) => {
            format!("the PDF has too many pages (we read up to {max_pages}); please send only the invoice.")
        }
        (ErrorCode::NoInvoiceFound, true) => {
            "no hemos encontrado una factura en este documento; si lo es, envíe el PDF original o una imagen nítida, por favor.".into()
        }
        (ErrorCode::NoInvoiceFound, false) => {
            "we found no invoice in this document; if it is one, please send the original PDF or a sharp image.".into()
        }
        (ErrorCode::InvalidEinvoice, true) => {
            format!("la factura electrónica XML no es válida{}; corríjala y envíela de nuevo, por favor.", paren(detail))
        }
        (ErrorCode::InvalidEinvoice, false) => {
            format!("the XML e-invoice is not valid{}; please correct it and send it again.", paren(detail))
        }
        (ErrorCode::Timeout | ErrorCode::SandboxFailure, true) => {
            "no hemos podido leerlo automáticamente; una persona lo revisará.".into()
        }
        (ErrorCode::Timeout | ErrorCode::SandboxFailure, false) => {
            "we could not read it automatically; a person will review it.".into()
        }
    }
}

fn paren(detail: &str) -> String {
    let d = detail.trim().trim_end_matches('.');
    if d.is_empty() {
        String::new()
    } else {
        format!(" ({d})")
    }
}

fn check_sentence(check: &crate::extract::Check, es: bool) -> String {
    let what = match (check.name.as_str(), es) {
        ("totals_add_up" | "BR-CO-15", true) => "el total no coincide con la base imponible más el IVA".to_string(),
        ("totals_add_up" | "BR-CO-15", false) => "the total does not match the net amount plus tax".to_string(),
        ("tax_id_checksum", true) => "el NIF/CIF/número de IVA no es válido (dígito de control)".to_string(),
        ("tax_id_checksum", false) => "the tax ID's check digit is wrong".to_string(),
        ("iban_checksum", true) => "el IBAN no es válido (dígitos de control)".to_string(),
        ("iban_checksum", false) => "the IBAN's check digits are wrong".to_string(),
        ("xml_matches_visual", true) => "los datos del XML no coinciden con lo que muestra el PDF".to_string(),
        ("xml_matches_visual", false) => "the embedded XML does not match what the PDF shows".to_string(),
        ("qr_matches_visual", true) => "el código QR no coincide con lo que imprime la factura".to_string(),
        ("qr_matches_visual", false) => "the QR code does not match what the invoice prints".to_string(),
        (validate::CHECK_TOTAL_READ, true) => {
            "no hemos podido leer el importe total; revíselo y, si hace falta, envíe la factura de nuevo".to_string()
        }
        (validate::CHECK_TOTAL_READ, false) => {
            "we could not read the total; please check it and resend the invoice if needed".to_string()
        }
        (validate::CHECK_TOTAL_POSITIVE, true) => {
            "el total es negativo en una factura ordinaria; si es un abono, envíelo como factura rectificativa"
                .to_string()
        }
        (validate::CHECK_TOTAL_POSITIVE, false) => {
            "the total is negative on an ordinary invoice; if it is a credit, please send it as a credit note"
                .to_string()
        }
        ("addressed_to_us", true) => "la factura no va dirigida a nuestra empresa".to_string(),
        ("addressed_to_us", false) => "the invoice is not addressed to our company".to_string(),
        (name, true) => format!("la comprobación {name} no se cumple"),
        (name, false) => format!("check {name} failed"),
    };
    match &check.detail {
        Some(d) if !d.is_empty() => format!("{what} ({d})."),
        _ => format!("{what}."),
    }
}

pub fn money(d: Decimal, es: bool) -> String {
    let s = format!("{:.2}", d.round_dp(2));
    let (neg, s) = s.strip_prefix('-').map(|r| (true, r)).unwrap_or((false, s.as_str()));
    let (int, frac) = s.split_once('.').unwrap_or((s, "00"));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(if es { '.' } else { ',' });
        }
        grouped.push(ch);
    }
    format!("{}{grouped}{}{frac}", if neg { "-" } else { "" }, if es { ',' } else { '.' })
}

fn date_es(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

fn size(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn to_html(lines: &[String]) -> String {
    let mut html = String::from("<!DOCTYPE html><html><body style=\"font-family:sans-serif\">\n");
    for l in lines {
        if l.is_empty() {
            html.push_str("<br>\n");
        } else if let Some(rest) = l.strip_prefix("    ") {
            html.push_str(&format!("<div style=\"margin-left:2em\">{}</div>\n", html_escape(rest)));
        } else {
            html.push_str(&format!("<div>{}</div>\n", html_escape(l)));
        }
    }
    html.push_str("</body></html>\n");
    html
}

/// Build a mail with a plain-text and an HTML part from the same lines.
fn build(
    from: &str,
    to: &[String],
    subject: &str,
    message_id: &str,
    thread: Option<&Thread<'_>>,
    lines: &[String],
) -> anyhow::Result<Message> {
    let mut b = Message::builder()
        .from(from.parse::<Mailbox>()?)
        .subject(header_text(subject))
        .message_id(Some(message_id.to_string()))
        .header(AutoSubmitted("auto-replied".into()))
        .date_now();
    for t in to {
        b = b.to(t.parse::<Mailbox>()?);
    }
    if let Some(th) = thread {
        if let Some(id) = th.message_id.and_then(headers::message_id) {
            b = b.in_reply_to(id.clone());
            b = b.references(headers::references(th.references, &id).join(" "));
        }
    }
    // Each line stays one line, however a value inside it was written.
    let lines: Vec<String> = lines
        .iter()
        .map(|l| {
            let indent = if l.starts_with("    ") { "    " } else { "" };
            format!("{indent}{}", shorten(&one_line(l), headers::MAX_LINE_CHARS))
        })
        .collect();
    let text = lines.join("\n") + "\n";
    Ok(b.multipart(
        MultiPart::alternative()
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(to_html(&lines))),
    )?)
}

/// A Message-ID as a line of a mail's body shows it.
fn angle(id: &str) -> String {
    headers::message_id(id).unwrap_or_else(|| line_text(id))
}

/// The supplier's reply, with its stable Message-ID.
pub fn compose_reply(
    thread: &Thread<'_>,
    content: &ReplyContent<'_>,
    message_ref: i64,
) -> anyhow::Result<(String, Message)> {
    let lines = reply_lines(content);
    let id = stable_message_id("reply", message_ref, &lines.join("\n"), thread.from);
    let msg = build(thread.from, &[thread.to.to_string()], &reply_subject(thread.subject), &id, Some(thread), &lines)?;
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
    /// Fraud signals (a changed IBAN, a reused number), one sentence each, shown first.
    pub alerts: &'a [String],
}

pub fn confirmation_lines(c: &Confirmation<'_>) -> Vec<String> {
    let es = c.language == Language::Es;
    let e = c.extraction;
    let mut lines =
        vec![if es { "Factura registrada:".to_string() } else { "Invoice recorded:".to_string() }, String::new()];
    for a in c.alerts {
        lines.push(format!("{} {a}", if es { "ALERTA:" } else { "ALERT:" }));
    }
    if !c.alerts.is_empty() {
        lines.push(String::new());
    }
    lines.extend(field_lines(e, es).into_iter().map(|l| format!("    {l}")));
    let cur = e.currency.clone().unwrap_or_default();
    for (label_es, label_en, v) in [("Base imponible", "Net amount", e.net_amount), ("Impuestos", "Tax", e.tax_amount)]
    {
        if let Some(v) = v {
            lines.push(
                format!("    {}: {} {cur}", if es { label_es } else { label_en }, money(v, es)).trim_end().to_string(),
            );
        }
    }
    if let Some(c) = e.customer.as_ref().and_then(|p| p.name.clone().or(p.tax_id.clone())) {
        lines.push(format!("    {}: {c}", if es { "Cliente" } else { "Customer" }));
    }
    if let Some(iban) = e.supplier.as_ref().and_then(|p| p.iban.clone()) {
        lines.push(format!("    IBAN: {iban}"));
    }
    let source =
        e.source.map(|s| serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default());
    lines.push(format!("    {}: {}", if es { "Origen" } else { "Source" }, source.unwrap_or_default()));
    if let Some(conf) = &e.confidence {
        let parts: Vec<String> = conf.iter().map(|(k, v)| format!("{k} {:.0}%", v * 100.0)).collect();
        if !parts.is_empty() {
            lines.push(format!("    {}: {}", if es { "Confianza" } else { "Confidence" }, parts.join(", ")));
        }
    }
    for check in e.failed_checks() {
        lines.push(format!("    {} {}", if es { "Atención:" } else { "Warning:" }, check_sentence(check, es)));
    }
    for w in e.warnings.iter().flatten() {
        lines.push(format!("    {} {w}", if es { "Aviso:" } else { "Note:" }));
    }
    lines.push(String::new());
    lines.push(format!(
        "{}: {} ({})",
        if es { "Documento" } else { "Document" },
        c.filename,
        e.sha256.as_deref().unwrap_or("")
    ));
    lines.push(format!("{}: {}", if es { "Remitente" } else { "Sender" }, line_text(c.sender)));
    lines.push(format!("{}: {}", if es { "Asunto" } else { "Subject" }, line_text(c.subject)));
    if let Some(id) = c.message_id {
        lines.push(format!("Message-ID: {}", angle(id)));
    }
    lines.push(format!(
        "{}: message {} / invoice {}",
        if es { "Referencia" } else { "Reference" },
        c.message_ref,
        c.invoice_ref
    ));
    lines
}

pub fn compose_confirmation(
    from: &str,
    accountants: &[String],
    c: &Confirmation<'_>,
) -> anyhow::Result<(String, Message)> {
    let es = c.language == Language::Es;
    let lines = confirmation_lines(c);
    let e = c.extraction;
    let who =
        e.supplier.as_ref().and_then(|s| s.name.clone().or(s.tax_id.clone())).unwrap_or_else(|| c.sender.to_string());
    // Bounded one by one, so a long name cannot push the number and the total out of the subject.
    let who = shorten(&one_line(&who), SUBJECT_NAME_CHARS);
    let number = shorten(&one_line(&e.display_number().unwrap_or_else(|| "?".into())), SUBJECT_NUMBER_CHARS);
    let total = e
        .total_amount
        .map(|t| format!(" — {} {}", money(t, es), e.currency.clone().unwrap_or_default()))
        .unwrap_or_default();
    let flag = if !c.alerts.is_empty() {
        if es {
            "[ALERTA] "
        } else {
            "[ALERT] "
        }
    } else if e.failed_checks().next().is_some() {
        if es {
            "[REVISAR] "
        } else {
            "[CHECK] "
        }
    } else {
        ""
    };
    let subject = if es {
        format!("{flag}Factura registrada: {who} nº {number}{total}")
    } else {
        format!("{flag}Invoice recorded: {who} no. {number}{total}")
    };
    let id = stable_message_id(&format!("confirm{}", c.invoice_ref), c.message_ref, &lines.join("\n"), from);
    let msg = build(from, accountants, subject.trim(), &id, None, &lines)?;
    Ok((id, msg))
}

/// The accountants' alert for a mail we quarantined without answering (its sender is not authenticated).
pub struct QuarantineAlert<'a> {
    pub language: Language,
    pub sender: &'a str,
    pub reply_to: Option<&'a str>,
    pub subject: &'a str,
    pub message_id: Option<&'a str>,
    pub reason: &'a str,
    pub message_ref: i64,
}

pub fn compose_quarantine_alert(
    from: &str,
    accountants: &[String],
    a: &QuarantineAlert<'_>,
) -> anyhow::Result<(String, Message)> {
    let es = a.language == Language::Es;
    let mut lines = vec![
        if es {
            "Un mensaje a la dirección de facturas no ha superado la comprobación del remitente. No se ha respondido ni registrado nada; está en cuarentena.".to_string()
        } else {
            "A message to the invoice address failed the sender check. Nothing was answered or recorded; it is quarantined.".to_string()
        },
        String::new(),
        format!("{}: {}", if es { "Motivo" } else { "Reason" }, line_text(a.reason)),
        format!("From: {}", line_text(a.sender)),
    ];
    if let Some(r) = a.reply_to {
        lines.push(format!("Reply-To: {}", line_text(r)));
    }
    lines.push(format!("{}: {}", if es { "Asunto" } else { "Subject" }, line_text(a.subject)));
    if let Some(id) = a.message_id {
        lines.push(format!("Message-ID: {}", angle(id)));
    }
    lines.push(String::new());
    lines.push(if es {
        format!("Si el remitente es legítimo: invoice-intake reprocess --config … {}", a.message_ref)
    } else {
        format!("If the sender is genuine: invoice-intake reprocess --config … {}", a.message_ref)
    });
    let sender = shorten(&one_line(a.sender), SUBJECT_NAME_CHARS);
    let subject = if es {
        format!("[ALERTA] Remitente no autenticado: {sender}")
    } else {
        format!("[ALERT] Unauthenticated sender: {sender}")
    };
    let id = stable_message_id("alert", a.message_ref, &lines.join("\n"), from);
    let msg = build(from, accountants, &subject, &id, None, &lines)?;
    Ok((id, msg))
}

/// One mail to the accountants for every message quarantined (unauthenticated sender) since the last one: spam
/// would otherwise send them an alert per mail.
pub fn compose_alert_digest(
    from: &str,
    accountants: &[String],
    language: Language,
    alerts: &[QuarantineAlert<'_>],
) -> anyhow::Result<(String, Message)> {
    let es = language == Language::Es;
    let mut lines = vec![
        if es {
            format!("{} mensajes a la dirección de facturas no han superado la comprobación del remitente. No se ha respondido ni registrado nada; están en cuarentena.", alerts.len())
        } else {
            format!("{} messages to the invoice address failed the sender check. Nothing was answered or recorded; they are quarantined.", alerts.len())
        },
        String::new(),
    ];
    for a in alerts {
        lines.push(format!("#{} From: {}", a.message_ref, line_text(a.sender)));
        lines.push(format!("    {}: {}", if es { "Asunto" } else { "Subject" }, line_text(a.subject)));
        lines.push(format!("    {}: {}", if es { "Motivo" } else { "Reason" }, line_text(a.reason)));
        if let Some(id) = a.message_id {
            lines.push(format!("    Message-ID: {}", angle(id)));
        }
    }
    lines.push(String::new());
    lines.push(if es {
        "Si un remitente es legítimo: invoice-intake reprocess --config … <número>".to_string()
    } else {
        "If a sender is genuine: invoice-intake reprocess --config … <number>".to_string()
    });
    let subject = match (alerts, es) {
        ([one], true) => {
            format!("[ALERTA] Remitente no autenticado: {}", shorten(&one_line(one.sender), SUBJECT_NAME_CHARS))
        }
        ([one], false) => {
            format!("[ALERT] Unauthenticated sender: {}", shorten(&one_line(one.sender), SUBJECT_NAME_CHARS))
        }
        (_, true) => format!("[ALERTA] {} mensajes de remitentes no autenticados", alerts.len()),
        (_, false) => format!("[ALERT] {} messages from unauthenticated senders", alerts.len()),
    };
    let first = alerts.first().map_or(0, |a| a.message_ref);
    let id = stable_message_id("alerts", first, &lines.join("\n"), from);
    let msg = build(from, accountants, &subject, &id, None, &lines)?;
    Ok((id, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{Party, Status};
    use std::str::FromStr;

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
        let text = reply_lines(&content(&o, Language::Es)).join("\n");
        assert!(text.contains("factura.pdf: registrada."), "{text}");
        assert!(text.contains("Factura nº: 2025-0042"), "{text}");
        assert!(text.contains("Fecha: 15/10/2025"), "{text}");
        assert!(text.contains("Total: 1.210,00 EUR"), "{text}");
    }

    #[test]
    fn an_encrypted_pdf_gets_the_sentence_the_supplier_can_act_on() {
        let e = Extraction::failed("f.pdf", ErrorCode::Encrypted, "password");
        let o = vec![("f.pdf".to_string(), Outcome::Failed(e))];
        let text = reply_lines(&content(&o, Language::Es)).join("\n");
        assert!(text.contains("El PDF está protegido con contraseña; envíelo sin contraseña, por favor."), "{text}");
    }

    #[test]
    fn a_mail_without_documents_is_told_so_in_english() {
        let text = reply_lines(&content(&[], Language::En)).join("\n");
        assert!(text.contains("We found no invoice attached"), "{text}");
    }

    #[test]
    fn a_failed_total_check_is_shown_plainly() {
        let mut e = invoice();
        e.push_check(crate::extract::Check::new("totals_add_up", false, Some("1000.00 + 210.00 ≠ 1200.00".into())));
        let o = vec![("factura.pdf".to_string(), Outcome::Stored(e))];
        let text = reply_lines(&content(&o, Language::Es)).join("\n");
        assert!(text.contains("el total no coincide con la base imponible más el IVA"), "{text}");
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
        assert!(html.contains("&lt;b&gt;Norte&lt;/b&gt;"), "HTML part must escape: {html}");
        assert!(parsed.body_text(0).unwrap().contains("Total: 1.210,00 EUR"));
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
    fn money_is_grouped_by_locale() {
        let cases = [
            ("1210", true, "1.210,00"),
            ("1234567.5", false, "1,234,567.50"),
            ("-45.1", true, "-45,10"),
            ("0", true, "0,00"),
        ];
        for (input, es, want) in cases {
            assert_eq!(money(Decimal::from_str(input).unwrap(), es), want);
        }
    }

    #[test]
    fn the_confirmation_names_the_fields_and_the_message() {
        let e = invoice();
        let c = Confirmation {
            language: Language::Es,
            extraction: &e,
            filename: "factura.pdf",
            sender: "billing@supplier.test",
            subject: "Factura octubre",
            message_id: Some("m1@supplier.test"),
            message_ref: 3,
            invoice_ref: 9,
            alerts: &[],
        };
        let (_, msg) = compose_confirmation("intake@example.test", &["accounts@example.test".to_string()], &c).unwrap();
        let raw = msg.formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let body = parsed.body_text(0).unwrap();
        assert!(parsed.subject().unwrap().contains("Factura registrada"));
        assert!(body.contains("Message-ID: <m1@supplier.test>"), "{body}");
        assert!(body.contains("Remitente: billing@supplier.test"), "{body}");
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
        let c = Confirmation {
            language: Language::Es,
            extraction: &e,
            filename: "factura.pdf",
            sender: "billing@supplier.test",
            subject: &subject,
            message_id: Some("m1@supplier.test"),
            message_ref: 3,
            invoice_ref: 9,
            alerts: &[],
        };
        let (_, msg) = compose_confirmation("intake@example.test", &["accounts@example.test".to_string()], &c).unwrap();
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
        let c = Confirmation {
            language: Language::Es,
            extraction: &e,
            filename: "f.pdf\nIBAN: ES11",
            sender: "billing@supplier.test",
            subject,
            message_id: Some("m1@supplier.test"),
            message_ref: 3,
            invoice_ref: 9,
            alerts: &[],
        };
        let (_, confirmation) = compose_confirmation("i@example.test", &["a@example.test".to_string()], &c).unwrap();
        let alert = QuarantineAlert {
            language: Language::Es,
            sender: "x@evil.test",
            reply_to: Some("y@evil.test\r\nIBAN: ES22"),
            subject,
            message_id: None,
            reason: "spf fail",
            message_ref: 4,
        };
        let (_, alert) = compose_quarantine_alert("i@example.test", &["a@example.test".to_string()], &alert).unwrap();
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
