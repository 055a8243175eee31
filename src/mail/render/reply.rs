//! The supplier's reply: what was read of each document, or what to do about it.

use serde::Serialize;

use crate::extract::ErrorCode;
use crate::mail::headers::line_text;
use crate::mail::i18n::{self, t, tf};
use crate::mail::reply::{MessageError, Outcome, ReplyContent};
use crate::mail::settings::Language;

use super::{capitalise, invoice_table, party, render, text_values, Rendered, Row, TableOptions};

#[derive(Serialize)]
struct ReplyDoc {
    name: String,
    status: String,
    /// `ok`, `warn` or `fail`: the colour of the status.
    kind: &'static str,
    message: Option<String>,
    action: Option<String>,
    warnings: Vec<String>,
    details: Vec<Row>,
    amounts: Vec<Row>,
    text_table: String,
}

/// The subject of a reply: `Re:` and the original, or the language's "(no subject)".
pub fn reply_subject(original: &str, lang: Language) -> String {
    let trimmed = original.trim();
    let lower = trimmed.to_lowercase();
    if lower.starts_with("re:") || lower.starts_with("re ") {
        trimmed.to_string()
    } else if trimmed.is_empty() {
        format!("Re: {}", t(lang, "common.no_subject"))
    } else {
        format!("Re: {trimmed}")
    }
}

pub fn render_reply(c: &ReplyContent<'_>, original_subject: &str) -> anyhow::Result<Rendered> {
    let lang = c.language;
    let mut intro = Vec::new();
    if let Some(first) = c.resent_of {
        intro.push(tf(lang, "reply.resent", &[("date", &i18n::date(first.date_naive(), lang))]));
    }
    match c.message_error {
        Some(MessageError::TooLarge { bytes, limit }) => intro.push(tf(
            lang,
            "reply.too_large",
            &[("size", &i18n::size(bytes, lang)), ("limit", &i18n::size(limit, lang))],
        )),
        Some(MessageError::UnderReview) => intro.push(t(lang, "reply.under_review").to_string()),
        None if c.outcomes.is_empty() => intro.push(t(lang, "reply.no_invoice").to_string()),
        None => intro.push(t(lang, "reply.thanks").to_string()),
    }
    let docs: Vec<ReplyDoc> = if c.message_error.is_some() {
        Vec::new()
    } else {
        c.outcomes.iter().map(|(name, o)| reply_doc(name, o, c)).collect()
    };
    let skipped = c
        .skipped
        .iter()
        .map(|s| {
            let key = match s.reason {
                crate::mail::mime::SkipReason::UnsupportedType => "reply.skipped_unsupported",
                crate::mail::mime::SkipReason::TooMany => "reply.skipped_too_many",
                crate::mail::mime::SkipReason::TooDeep => "reply.skipped_too_deep",
            };
            tf(lang, key, &[("name", &line_text(&s.filename)), ("max", &c.max_attachments.to_string())])
        })
        .collect::<Vec<_>>();
    let subject = crate::mail::headers::header_text(&reply_subject(original_subject, lang));
    render("reply", lang, subject, serde_json::json!({ "intro": intro, "docs": docs, "skipped": skipped }))
}

fn reply_doc(name: &str, o: &Outcome, c: &ReplyContent<'_>) -> ReplyDoc {
    let lang = c.language;
    let opts = TableOptions { lang, min_confidence: 0.0, received: None, for_accountants: false };
    let mut doc = ReplyDoc {
        name: line_text(name),
        status: String::new(),
        kind: "ok",
        message: None,
        action: None,
        warnings: Vec::new(),
        details: Vec::new(),
        amounts: Vec::new(),
        text_table: String::new(),
    };
    match o {
        Outcome::Stored(e) => {
            doc.status = t(lang, "reply.status_recorded").to_string();
            doc.warnings = e.failed_checks().map(|ch| capitalise(&i18n::check_sentence(ch, lang))).collect();
            if !doc.warnings.is_empty() {
                doc.kind = "warn";
            }
            let table = invoice_table(e, &opts);
            if table.details.is_empty() && table.amounts.is_empty() {
                doc.message = Some(t(lang, "reply.nothing_read").to_string());
            }
            doc.details = table.details;
            doc.amounts = table.amounts;
            doc.text_table = table.text_table;
        }
        Outcome::Duplicate { first_seen, invoice_number, .. } => {
            doc.status = t(lang, "reply.status_duplicate").to_string();
            doc.kind = "warn";
            let number = invoice_number.as_deref().map(line_text).unwrap_or_else(|| "-".into());
            doc.message = Some(tf(
                lang,
                "reply.duplicate",
                &[("date", &i18n::date(first_seen.date_naive(), lang)), ("number", &number)],
            ));
        }
        Outcome::NotForUs { extraction, .. } => {
            doc.status = t(lang, "reply.status_not_for_us").to_string();
            doc.kind = "fail";
            doc.action = Some(t(lang, "reply.not_for_us").to_string());
            if let Some(c) = party(extraction.customer.as_ref(), lang) {
                doc.details = vec![Row::new(t(lang, "field.customer"), c)];
                doc.text_table = text_values(&doc.details, &[], "    ");
            }
        }
        Outcome::Failed(e) => {
            doc.status = t(lang, "reply.status_failed").to_string();
            doc.kind = "fail";
            let code = e.error.as_ref().map(|er| er.code).unwrap_or(ErrorCode::Unreadable);
            doc.action = Some(i18n::error_sentence(code, lang, c.max_pages));
        }
    }
    doc
}
