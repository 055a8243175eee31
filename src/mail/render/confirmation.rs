//! The accountants' confirmation of one invoice, and the summary of a message with several.

use rust_decimal::Decimal;

use crate::mail::headers::{line_text, one_line, shorten};
use crate::mail::i18n::{self, t, tf};
use crate::mail::reply::{BatchConfirmation, Confirmation};

use super::{
    invoice_table, mail_footer, needs_review, render, review_items, review_reasons, sums, supplier_name, tag, GridRow,
    Rendered, Section, TableOptions, SUBJECT_NAME_CHARS, SUBJECT_NUMBER_CHARS,
};

pub fn render_confirmation(c: &Confirmation<'_>) -> anyhow::Result<Rendered> {
    let lang = c.language;
    let e = c.extraction;
    let opts = TableOptions {
        lang,
        min_confidence: c.min_confidence,
        received: c.received.map(|r| r.date_naive()),
        for_accountants: true,
    };
    let invoice = invoice_table(e, &opts);
    let (review, more) = review_items(e, lang, Some(c.invoice_ref));
    let alerts: Vec<String> = c.alerts.iter().map(|a| line_text(a)).collect();
    let file = line_text(c.filename);
    let attachment = if c.attached {
        tf(lang, "confirm.attached", &[("file", &file)])
    } else {
        tf(lang, "confirm.not_attached", &[("file", &file)])
    };
    let mut footer = mail_footer(lang, c.sender, c.subject, c.message_id);
    footer.extend(more);
    footer.push(tf(
        lang,
        "confirm.reference",
        &[("message", &c.message_ref.to_string()), ("invoice", &c.invoice_ref.to_string())],
    ));
    let who = shorten(&one_line(&supplier_name(e, c.sender)), SUBJECT_NAME_CHARS);
    let number = shorten(&one_line(&e.display_number().unwrap_or_else(|| "?".into())), SUBJECT_NUMBER_CHARS);
    let total = e.total_amount.map(|t| i18n::money_in(t, e.currency.as_deref(), lang)).unwrap_or_else(|| "?".into());
    let flag = tag(lang, !alerts.is_empty(), !review.is_empty() || needs_review(e, c.min_confidence));
    let subject = crate::mail::headers::header_text(&format!(
        "{flag}{}",
        tf(lang, "confirm.subject", &[("who", &who), ("number", &number), ("total", &total)])
    ));
    let heading = t(lang, "confirm.heading");
    render(
        "confirm",
        lang,
        subject,
        serde_json::json!({ "heading": heading, "alerts": alerts, "review": review, "invoice": invoice, "attachment": attachment, "footer": footer }),
    )
}

pub fn render_batch(b: &BatchConfirmation<'_>) -> anyhow::Result<Rendered> {
    let lang = b.language;
    let mut alerts = Vec::new();
    let mut review = Vec::new();
    let mut rows = Vec::new();
    for item in b.items {
        let e = item.extraction;
        let number = line_text(&e.display_number().unwrap_or_else(|| "?".into()));
        for a in item.alerts {
            alerts.push(format!("{number}: {}", line_text(a)));
        }
        let items = review_reasons(e, lang, b.min_confidence);
        let flagged = !items.is_empty() || !item.alerts.is_empty();
        if !items.is_empty() {
            review.push(format!("{number}: {}", items.join("; ")));
        }
        let cur = e.currency.as_deref();
        let money = |d: Option<Decimal>| d.map(|d| i18n::money_in(d, cur, lang)).unwrap_or_default();
        rows.push(GridRow {
            cells: vec![
                number,
                supplier_name(e, b.sender),
                e.issue_date.map(|d| i18n::date(d, lang)).unwrap_or_default(),
                money(e.net_amount),
                money(e.tax_amount),
                money(e.total_amount),
                t(lang, if flagged { "confidence.review" } else { "confidence.sure" }).to_string(),
            ],
            warn: flagged,
            strong: false,
        });
    }
    let total =
        sums(b.items.iter().filter_map(|i| Some((i.extraction.total_amount?, i.extraction.currency.clone()))), lang);
    let mut sum_cells = vec![String::new(); 7];
    sum_cells[0] = t(lang, "batch.sum").to_string();
    sum_cells[5] = total.clone();
    rows.push(GridRow { cells: sum_cells, warn: false, strong: true });
    let head = [
        "field.number",
        "field.supplier",
        "field.issue_date",
        "field.base",
        "field.vat",
        "field.total",
        "field.reading",
    ]
    .map(|k| t(lang, k).to_string())
    .to_vec();
    let mut sections = vec![Section::new(None, head, rows, vec![3, 4, 5])];
    if !b.failed.is_empty() {
        let rows = b
            .failed
            .iter()
            .map(|(name, code)| GridRow {
                cells: vec![line_text(name), t(lang, &format!("error_short.{}", i18n::error_key(*code))).to_string()],
                warn: true,
                strong: false,
            })
            .collect();
        let mut s =
            Section::new(None, vec![t(lang, "batch.document").into(), t(lang, "alerts.reason").into()], rows, vec![]);
        s.intro = Some(tf(lang, "batch.failed_rows", &[("count", &b.failed.len().to_string())]));
        sections.push(s);
    }
    let count = b.items.len().to_string();
    let outro = vec![
        if b.attached >= b.documents {
            tf(lang, "batch.attached", &[("count", &b.attached.to_string())])
        } else {
            tf(
                lang,
                "batch.partly_attached",
                &[("attached", &b.attached.to_string()), ("count", &b.documents.to_string())],
            )
        },
        t(lang, "confirm.reply_hint").to_string(),
    ];
    let mut footer = mail_footer(lang, b.sender, b.subject, b.message_id);
    footer.push(tf(lang, "batch.reference", &[("message", &b.message_ref.to_string())]));
    let who = shorten(
        &one_line(
            &b.items.first().map(|i| supplier_name(i.extraction, b.sender)).unwrap_or_else(|| line_text(b.sender)),
        ),
        SUBJECT_NAME_CHARS,
    );
    let flag = tag(lang, !alerts.is_empty(), !review.is_empty() || !b.failed.is_empty());
    let subject = crate::mail::headers::header_text(&format!(
        "{flag}{}",
        tf(lang, "batch.subject", &[("count", &count), ("who", &who), ("total", &total)])
    ));
    let heading = tf(lang, "batch.heading", &[("count", &count)]);
    let review_title = t(lang, "confirm.review_heading");
    let intro: Vec<String> = Vec::new();
    render(
        "table",
        lang,
        subject,
        serde_json::json!({ "heading": heading, "intro": intro, "alerts": alerts, "review": review, "review_title": review_title, "sections": sections, "outro": outro, "footer": footer }),
    )
}
