//! The mails people read, rendered from templates (`templates/`, MiniJinja) with the words of `i18n`: a plain
//! text and an HTML alternative of each, and its subject.
//!
//! The `.html` templates escape every value by default, so a supplier's name like `<b>Norte</b>` is shown, never
//! interpreted. Values from a document or a mail reach a view already on one line and bounded
//! (`headers::line_text`), so none can add lines or headers of its own.
//!
//! `render_digest` and `render_alerts` take plain view structs, so whatever gathers the data (the daily digest's
//! schedule, the alert digest) only fills them in.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use minijinja::value::Serde;
use minijinja::{Environment, State, Value};
use rust_decimal::Decimal;
use serde::Serialize;

use super::headers::{line_text, one_line, shorten};
use super::i18n::{self, t, tf};
use super::reply::{BatchConfirmation, Confirmation, MessageError, Outcome, ReplyContent};
use super::settings::Language;
use crate::extract::{ErrorCode, Extraction};

/// One rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub language: Language,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The widest a cell of a text table gets; longer values end in an ellipsis (the HTML keeps them whole).
const TEXT_CELL_CHARS: usize = 48;
/// The most characters of a name or number in a subject.
const SUBJECT_NAME_CHARS: usize = 80;
const SUBJECT_NUMBER_CHARS: usize = 40;

// ---------------------------------------------------------------------------------------------------------------
// Templates

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        for (name, src) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("macros.html", include_str!("templates/macros.html")),
            ("reply.html", include_str!("templates/reply.html")),
            ("reply.txt", include_str!("templates/reply.txt")),
            ("confirm.html", include_str!("templates/confirm.html")),
            ("confirm.txt", include_str!("templates/confirm.txt")),
            ("table.html", include_str!("templates/table.html")),
            ("table.txt", include_str!("templates/table.txt")),
        ] {
            // The templates are part of the binary and a test renders each; a broken one renders as an error.
            let _ = env.add_template(name, src);
        }
        env.add_filter("wrap", |s: String, width: usize, indent: String| wrap(&s, width, &indent));
        env.add_function("t", |state: &State, key: &str| -> String {
            let lang = state.lookup("lang").and_then(|v| v.as_str().and_then(Language::from_tag));
            t(lang.unwrap_or(Language::En), key).to_string()
        });
        env
    })
}

/// Render `base`.txt and `base`.html with `ctx` plus the language and subject.
fn render(base: &str, lang: Language, subject: String, ctx: serde_json::Value) -> anyhow::Result<Rendered> {
    let mut ctx = ctx;
    if let Some(map) = ctx.as_object_mut() {
        map.insert("lang".into(), lang.code().into());
        map.insert("subject".into(), subject.clone().into());
    }
    let ctx = Value::from(Serde(ctx));
    let text = env().get_template(&format!("{base}.txt"))?.render(&ctx)?;
    let html = env().get_template(&format!("{base}.html"))?.render(&ctx)?;
    Ok(Rendered { language: lang, subject, text: tidy_text(&text), html: tidy_html(&html) })
}

/// `s` in lines of at most `width` characters (a longer word keeps its own line), the ones after the first
/// starting with `indent`: plain text stays readable in any mail client.
fn wrap(s: &str, width: usize, indent: &str) -> String {
    // An IBAN's groups of four, and words joined by a no-break space, stay on one line.
    let group = |w: &str| {
        let w = w.trim_end_matches([',', '.', ':', ';', ')']);
        (1..=4).contains(&w.len()) && w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    // French puts a space before `:` and `;`; the mark stays with its word.
    let mark = |w: &str| w.chars().all(|c| matches!(c, ':' | ';' | '!' | '?' | '»'));
    let mut words: Vec<String> = Vec::new();
    for w in s.split([' ', '\u{a0}', '\u{202f}']).filter(|w| !w.is_empty()) {
        match words.last_mut() {
            Some(last)
                if mark(w) || (group(w) && last.rsplit(' ').next().is_some_and(|l| group(l) && l.len() == 4)) =>
            {
                last.push(' ');
                last.push_str(w);
            }
            _ => words.push(w.to_string()),
        }
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in &words {
        let limit = if lines.is_empty() { width } else { width.saturating_sub(chars(indent)) };
        if !line.is_empty() && chars(&line) + 1 + chars(word) > limit {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines.join(&format!("\n{indent}"))
}

/// No trailing spaces, and never more than one empty line in a row.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        blank = if line.is_empty() { blank + 1 } else { 0 };
        if blank < 2 {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.trim_start_matches('\n').to_string()
}

/// Without the empty lines the template tags leave.
fn tidy_html(html: &str) -> String {
    html.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n") + "\n"
}

// ---------------------------------------------------------------------------------------------------------------
// Building blocks of the views

/// One line of a table of values: a label, a value, and the word that asks for a look.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    pub label: String,
    pub value: String,
    /// Shown after the value, highlighted ("revisar").
    pub note: Option<String>,
    pub warn: bool,
    pub strong: bool,
    pub mono: bool,
}

impl Row {
    fn new(label: impl Into<String>, value: impl Into<String>) -> Row {
        Row { label: label.into(), value: line_text(&value.into()), ..Default::default() }
    }
}

/// An invoice as two tables: what identifies it, and its amounts (aligned, the total in bold).
#[derive(Debug, Clone, Serialize)]
struct InvoiceTable {
    details: Vec<Row>,
    amounts: Vec<Row>,
    text_table: String,
}

/// A row of a grid (`Section`).
#[derive(Debug, Clone, Default, Serialize)]
struct GridRow {
    cells: Vec<String>,
    warn: bool,
    strong: bool,
}

/// A titled table of many rows: the invoices of a batch or of a day, the failed and quarantined mail.
#[derive(Debug, Clone, Default, Serialize)]
struct Section {
    title: Option<String>,
    intro: Option<String>,
    head: Vec<String>,
    rows: Vec<GridRow>,
    /// The columns holding amounts or counts: right-aligned.
    numeric: Vec<usize>,
    /// Said instead of an empty table.
    empty: Option<String>,
    text_table: String,
}

impl Section {
    fn new(title: Option<String>, head: Vec<String>, rows: Vec<GridRow>, numeric: Vec<usize>) -> Section {
        let text_table = text_grid(&head, &rows, &numeric);
        Section { title, head, rows, numeric, text_table, ..Default::default() }
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(chars(s)));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

/// A grid as aligned text columns, amounts on the right.
fn text_grid(head: &[String], rows: &[GridRow], numeric: &[usize]) -> String {
    let cell = |s: &str| shorten(s, TEXT_CELL_CHARS);
    let mut widths: Vec<usize> = head.iter().map(|h| chars(h)).collect();
    for r in rows.iter() {
        for (i, c) in r.cells.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(chars(&cell(c)));
            }
        }
    }
    // The last column is not padded, so it is kept whole.
    let last = head.len().saturating_sub(1);
    if let Some(w) = widths.get_mut(last) {
        *w = chars(&head[last]);
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| if i == last { c.clone() } else { pad(&cell(c), widths[i], numeric.contains(&i)) })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(head), widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  ")];
    for r in rows {
        let l = line(&r.cells);
        out.push(if r.warn { format!("{l}  <!>") } else { l });
    }
    out.join("\n")
}

/// Values as `label  value` lines, the amounts right-aligned under each other.
fn text_values(details: &[Row], amounts: &[Row], indent: &str) -> String {
    let width = details.iter().chain(amounts).map(|r| chars(&r.label)).max().unwrap_or(0);
    let amount_width = amounts.iter().map(|r| chars(&r.value)).max().unwrap_or(0);
    let note = |r: &Row| r.note.as_ref().map(|n| format!("  <- {n}")).unwrap_or_default();
    let mut out = Vec::new();
    for r in details {
        out.push(format!("{indent}{}  {}{}", pad(&r.label, width, false), r.value, note(r)));
    }
    if !amounts.is_empty() && !details.is_empty() {
        out.push(String::new());
    }
    for (i, r) in amounts.iter().enumerate() {
        if r.strong && i > 0 {
            out.push(format!("{indent}{}  {}", " ".repeat(width), "=".repeat(amount_width)));
        }
        out.push(format!("{indent}{}  {}{}", pad(&r.label, width, false), pad(&r.value, amount_width, true), note(r)));
    }
    out.join("\n")
}

/// A party as `name (tax ID)`.
fn party(p: Option<&crate::extract::Party>, lang: Language) -> Option<String> {
    let p = p?;
    match (&p.name, &p.tax_id) {
        (Some(n), Some(id)) => Some(format!("{} ({} {})", line_text(n), t(lang, "field.tax_id"), line_text(id))),
        (Some(n), None) => Some(line_text(n)),
        (None, Some(id)) => Some(format!("{} {}", t(lang, "field.tax_id"), line_text(id))),
        (None, None) => None,
    }
}

/// Who sent an invoice, for a subject or a table: the supplier's name, its tax ID, or the sender.
fn supplier_name(e: &Extraction, sender: &str) -> String {
    let s = e.supplier.as_ref();
    let name = s.and_then(|s| s.name.clone().or_else(|| s.tax_id.clone())).unwrap_or_else(|| sender.to_string());
    line_text(&name)
}

/// The fields read with less confidence than `min` (0..1), in the reader's words.
fn unsure_fields(e: &Extraction, min: f32) -> Vec<&str> {
    e.confidence.iter().flatten().filter(|(_, c)| **c < min).map(|(k, _)| k.as_str()).collect()
}

struct TableOptions {
    lang: Language,
    min_confidence: f32,
    received: Option<NaiveDate>,
    /// Where it was read from, and the word for how sure the reading is: for the accountants only.
    for_accountants: bool,
}

fn invoice_table(e: &Extraction, o: &TableOptions) -> InvoiceTable {
    let lang = o.lang;
    let unsure = unsure_fields(e, o.min_confidence);
    let check_word = t(lang, "confidence.review").to_string();
    let flag = |row: &mut Row, fields: &[&str]| {
        if fields.iter().any(|f| unsure.contains(f)) {
            row.note = Some(check_word.clone());
            row.warn = true;
        }
    };
    let cur = e.currency.as_deref();
    let mut details = Vec::new();
    if let Some(n) = e.display_number() {
        let mut r = Row::new(t(lang, "field.number"), n);
        flag(&mut r, &["invoice_number", "invoice_series"]);
        details.push(r);
    }
    for (key, date, field) in
        [("field.issue_date", e.issue_date, "issue_date"), ("field.due_date", e.due_date, "due_date")]
    {
        if let Some(d) = date {
            let mut r = Row::new(t(lang, key), i18n::date(d, lang));
            flag(&mut r, &[field]);
            details.push(r);
        }
    }
    if let Some(d) = o.received {
        details.push(Row::new(t(lang, "field.received"), i18n::date(d, lang)));
    }
    if let Some(s) = party(e.supplier.as_ref(), lang) {
        let mut r = Row::new(t(lang, "field.supplier"), s);
        flag(&mut r, &["supplier.name", "supplier.tax_id"]);
        details.push(r);
    }
    if o.for_accountants {
        if let Some(c) = party(e.customer.as_ref(), lang) {
            let mut r = Row::new(t(lang, "field.customer"), c);
            flag(&mut r, &["customer.name", "customer.tax_id"]);
            details.push(r);
        }
    }
    if let Some(iban) = e.supplier.as_ref().and_then(|p| p.iban.as_deref()) {
        let mut r = Row::new(t(lang, "field.iban"), i18n::iban(iban));
        r.mono = true;
        flag(&mut r, &["supplier.iban", "iban"]);
        details.push(r);
    }
    let qr: Vec<String> = e
        .field_sources
        .iter()
        .flatten()
        .filter(|(_, s)| s.is_qr())
        .filter_map(|(f, _)| i18n::field_label(f, lang))
        .collect();
    if !qr.is_empty() {
        details.push(Row::new(t(lang, "field.source"), tf(lang, "reply.qr_fields", &[("fields", &qr.join(", "))])));
    } else if o.for_accountants {
        if let Some(s) = e.source {
            details.push(Row::new(t(lang, "field.source"), i18n::source_label(s, lang)));
        }
    }
    if o.for_accountants {
        let labels: Vec<String> = unsure.iter().filter_map(|f| i18n::field_label(f, lang)).collect();
        let sure = labels.is_empty() && e.failed_checks().next().is_none();
        let mut r =
            Row::new(t(lang, "field.reading"), t(lang, if sure { "confidence.sure" } else { "confidence.review" }));
        if !sure {
            r.warn = true;
            if !labels.is_empty() {
                r.value = format!("{}: {}", r.value, labels.join(", "));
            }
        }
        details.push(r);
    }

    let mut amounts = Vec::new();
    let lines: Vec<&crate::extract::model::TaxLine> =
        e.taxes.iter().flatten().filter(|l| l.base.is_some() || l.amount.is_some()).collect();
    if lines.is_empty() {
        if let Some(v) = e.net_amount {
            let mut r = Row::new(t(lang, "field.base"), i18n::money_in(v, cur, lang));
            flag(&mut r, &["net_amount"]);
            amounts.push(r);
        }
        if let Some(v) = e.tax_amount {
            let mut r = Row::new(t(lang, "field.vat"), i18n::money_in(v, cur, lang));
            flag(&mut r, &["tax_amount"]);
            amounts.push(r);
        }
    } else {
        // The bases first, then the VAT of each rate, as invoices print them.
        for (with_rate, plain, take) in [
            ("field.base_rate", "field.base", (|l: &crate::extract::model::TaxLine| l.base) as fn(&_) -> _),
            ("field.vat_rate", "field.vat", |l: &crate::extract::model::TaxLine| l.amount),
        ] {
            for l in &lines {
                let Some(v) = take(l) else { continue };
                let label = match l.rate {
                    Some(r) => tf(lang, with_rate, &[("rate", &i18n::rate(r, lang))]),
                    None => t(lang, plain).to_string(),
                };
                amounts.push(Row::new(label, i18n::money_in(v, cur, lang)));
            }
        }
    }
    if let Some(total) = e.total_amount {
        let mut r = Row::new(t(lang, "field.total"), i18n::money_in(total, cur, lang));
        r.strong = true;
        flag(&mut r, &["total_amount"]);
        amounts.push(r);
    }
    if let (Some(due), Some(total)) = (e.amount_due, e.total_amount) {
        if due != total {
            let irpf = e.warnings.iter().flatten().any(|w| w.contains("IRPF") || w.contains("withh"))
                || e.source == Some(crate::extract::Source::Facturae);
            let label = if irpf && due < total { "field.irpf" } else { "field.deducted" };
            amounts.push(Row::new(t(lang, label), i18n::money_in(due - total, cur, lang)));
        }
    }
    if let Some(due) = e.amount_due {
        if Some(due) != e.total_amount || o.for_accountants {
            let mut r = Row::new(t(lang, "field.amount_due"), i18n::money_in(due, cur, lang));
            r.strong = Some(due) != e.total_amount;
            flag(&mut r, &["amount_due"]);
            amounts.push(r);
        }
    }
    let text_table = text_values(&details, &amounts, if o.for_accountants { "" } else { "    " });
    InvoiceTable { details, amounts, text_table }
}

/// What needs a look, as sentences: failed checks, then the reader's notes that matter.
fn review_items(e: &Extraction, lang: Language, invoice_ref: Option<i64>) -> (Vec<String>, Option<String>) {
    let mut items: Vec<String> = e.failed_checks().map(|c| i18n::check_sentence(c, lang)).collect();
    let warnings: Vec<String> = e.warnings.iter().flatten().cloned().collect();
    let (notes, others) = i18n::notes(&warnings, lang);
    items.extend(notes);
    let more = (others > 0 && invoice_ref.is_some()).then(|| {
        tf(
            lang,
            "note.more",
            &[("count", &others.to_string()), ("invoice", &invoice_ref.unwrap_or_default().to_string())],
        )
    });
    (items, more)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn angle(id: &str) -> String {
    super::headers::message_id(id).unwrap_or_else(|| line_text(id))
}

// ---------------------------------------------------------------------------------------------------------------
// The reply to the supplier

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
                super::mime::SkipReason::UnsupportedType => "reply.skipped_unsupported",
                super::mime::SkipReason::TooMany => "reply.skipped_too_many",
                super::mime::SkipReason::TooDeep => "reply.skipped_too_deep",
            };
            tf(lang, key, &[("name", &line_text(&s.filename)), ("max", &c.max_attachments.to_string())])
        })
        .collect::<Vec<_>>();
    let subject = super::headers::header_text(&reply_subject(original_subject, lang));
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

// ---------------------------------------------------------------------------------------------------------------
// The confirmation to the accountants

/// `[ALERTA]` when a fraud signal was raised, `[REVISAR]` when a check failed or a field is unsure.
fn tag(lang: Language, alert: bool, review: bool) -> String {
    if alert {
        format!("{} ", t(lang, "confirm.tag_alert"))
    } else if review {
        format!("{} ", t(lang, "confirm.tag_review"))
    } else {
        String::new()
    }
}

fn mail_footer(lang: Language, sender: &str, subject: &str, message_id: Option<&str>) -> Vec<String> {
    let mut f = vec![
        format!("{}: {}", t(lang, "confirm.sender"), line_text(sender)),
        format!("{}: {}", t(lang, "confirm.subject_label"), line_text(subject)),
    ];
    if let Some(id) = message_id {
        f.push(format!("Message-ID: {}", angle(id)));
    }
    f
}

fn needs_review(e: &Extraction, min_confidence: f32) -> bool {
    e.failed_checks().next().is_some() || !unsure_fields(e, min_confidence).is_empty()
}

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
    let subject = super::headers::header_text(&format!(
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

/// Totals per currency, as `1.210,00 EUR + 80,00 CHF`.
fn sums(amounts: impl Iterator<Item = (Decimal, Option<String>)>, lang: Language) -> String {
    let mut per: Vec<(Option<String>, Decimal)> = Vec::new();
    for (a, cur) in amounts {
        match per.iter_mut().find(|(c, _)| *c == cur) {
            Some((_, sum)) => *sum += a,
            None => per.push((cur, a)),
        }
    }
    if per.is_empty() {
        return i18n::money(Decimal::ZERO, lang);
    }
    per.iter().map(|(c, s)| i18n::money_in(*s, c.as_deref(), lang)).collect::<Vec<_>>().join(" + ")
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
    let subject = super::headers::header_text(&format!(
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

// ---------------------------------------------------------------------------------------------------------------
// Digests: the alert digest (quarantined and failed mail) and the daily one

/// Why a message left no invoice, for the accountants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A document that could not be read (damaged, encrypted, …).
    Document(ErrorCode),
    /// No document at all in the mail.
    NoDocuments,
    MessageTooLarge,
}

impl FailureKind {
    pub fn describe(self, lang: Language) -> String {
        let key = match self {
            FailureKind::Document(code) => return t(lang, &format!("error_short.{}", i18n::error_key(code))).into(),
            FailureKind::NoDocuments => "error_short.no_documents",
            FailureKind::MessageTooLarge => "error_short.message_too_large",
        };
        t(lang, key).to_string()
    }
}

/// A message that left no invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedMail {
    pub message_ref: i64,
    pub sender: String,
    pub subject: String,
    pub received: Option<DateTime<Utc>>,
    /// The file names of the documents, when there were any.
    pub documents: Vec<String>,
    pub kind: FailureKind,
}

/// A message quarantined for an unauthenticated sender.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantinedMail {
    pub message_ref: i64,
    pub sender: String,
    pub subject: String,
    pub message_id: Option<String>,
    /// As `mail::auth` and the quarantine wrote it; translated by kind.
    pub reason: String,
}

/// The alert digest: what was quarantined, and what left no invoice, since the last one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsView {
    pub quarantined: Vec<QuarantinedMail>,
    pub failed: Vec<FailedMail>,
}

/// A table of messages: number, sender, subject, and why, under `intro`.
fn mail_section(
    mails: impl Iterator<Item = (i64, String, String, String)>,
    lang: Language,
    title: Option<String>,
    intro: &str,
) -> Section {
    let rows = mails
        .map(|(number, sender, subject, why)| GridRow {
            cells: vec![number.to_string(), line_text(&sender), line_text(&subject), why],
            ..Default::default()
        })
        .collect();
    let head =
        ["alerts.number", "alerts.from", "confirm.subject_label", "alerts.reason"].map(|k| t(lang, k).to_string());
    let mut s = Section::new(title, head.to_vec(), rows, vec![0]);
    s.intro = Some(t(lang, intro).to_string());
    s
}

fn quarantine_section(q: &[QuarantinedMail], lang: Language, title: Option<String>) -> Section {
    let mails =
        q.iter().map(|m| (m.message_ref, m.sender.clone(), m.subject.clone(), i18n::auth_reason(&m.reason, lang)));
    mail_section(mails, lang, title, "alerts.quarantine_intro")
}

fn failed_section(f: &[FailedMail], lang: Language, title: Option<String>) -> Section {
    let mails = f.iter().map(|m| {
        let what = m.kind.describe(lang);
        let docs = m.documents.iter().map(|d| line_text(d)).collect::<Vec<_>>().join(", ");
        let why = if docs.is_empty() { what } else { format!("{docs}: {what}") };
        (m.message_ref, m.sender.clone(), m.subject.clone(), why)
    });
    mail_section(mails, lang, title, "alerts.failures_intro")
}

pub fn render_alerts(v: &AlertsView, lang: Language) -> anyhow::Result<Rendered> {
    let (q, f) = (v.quarantined.len(), v.failed.len());
    let subject = match (v.quarantined.as_slice(), f) {
        ([one], 0) => {
            tf(lang, "alerts.subject_one", &[("sender", &shorten(&one_line(&one.sender), SUBJECT_NAME_CHARS))])
        }
        (_, 0) => tf(lang, "alerts.subject_many", &[("count", &q.to_string())]),
        ([], _) => tf(lang, "alerts.subject_failures", &[("count", &f.to_string())]),
        _ => tf(lang, "alerts.subject_mixed", &[("quarantined", &q.to_string()), ("failed", &f.to_string())]),
    };
    let mut sections = Vec::new();
    let both = q > 0 && f > 0;
    if q > 0 {
        sections.push(quarantine_section(&v.quarantined, lang, both.then(|| t(lang, "digest.quarantined").into())));
    }
    if f > 0 {
        sections.push(failed_section(&v.failed, lang, both.then(|| t(lang, "digest.failed").into())));
    }
    let outro = vec![tf(lang, "alerts.reprocess", &[("number", &format!("<{}>", t(lang, "alerts.number")))])];
    let heading = super::headers::header_text(&subject);
    let empty: Vec<String> = Vec::new();
    render(
        "table",
        lang,
        super::headers::header_text(&subject),
        serde_json::json!({ "heading": heading, "intro": empty.clone(), "alerts": empty.clone(), "review": empty.clone(), "review_title": "", "sections": sections, "outro": outro, "footer": empty }),
    )
}

/// One invoice of the day, for the daily digest.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestInvoice {
    pub invoice_ref: i64,
    pub supplier: String,
    pub supplier_tax_id: Option<String>,
    pub number: Option<String>,
    pub issue_date: Option<NaiveDate>,
    pub total: Option<Decimal>,
    pub currency: Option<String>,
    /// What needs a look, already as sentences in the digest's language (`review_reasons` makes them from an
    /// extraction); empty when nothing does.
    pub review: Vec<String>,
}

/// The daily digest: what arrived on `date`.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestView {
    pub date: NaiveDate,
    pub invoices: Vec<DigestInvoice>,
    pub failed: Vec<FailedMail>,
    pub quarantined: Vec<QuarantinedMail>,
    /// Whether the day's CSV goes with the mail.
    pub csv_attached: bool,
}

/// What of an invoice needs a look, as the digest lists it: failed checks, the reader's notes that matter, and
/// the fields read with less confidence than `min_confidence`.
pub fn review_reasons(e: &Extraction, lang: Language, min_confidence: f32) -> Vec<String> {
    let (mut items, _) = review_items(e, lang, None);
    let unsure: Vec<String> =
        unsure_fields(e, min_confidence).iter().filter_map(|f| i18n::field_label(f, lang)).collect();
    if !unsure.is_empty() {
        items.push(format!("{} ({})", t(lang, "confidence.review"), unsure.join(", ")));
    }
    items
}

pub fn render_digest(v: &DigestView, lang: Language) -> anyhow::Result<Rendered> {
    let date = i18n::date(v.date, lang);
    let money = |i: &DigestInvoice| i.total.map(|d| i18n::money_in(d, i.currency.as_deref(), lang)).unwrap_or_default();
    let total = sums(v.invoices.iter().filter_map(|i| Some((i.total?, i.currency.clone()))), lang);
    let mut sections = Vec::new();

    let rows: Vec<GridRow> = v
        .invoices
        .iter()
        .map(|i| GridRow {
            cells: vec![
                line_text(&i.supplier),
                i.number.as_deref().map(line_text).unwrap_or_default(),
                i.issue_date.map(|d| i18n::date(d, lang)).unwrap_or_default(),
                money(i),
                t(lang, if i.review.is_empty() { "confidence.sure" } else { "confidence.review" }).to_string(),
            ],
            warn: !i.review.is_empty(),
            strong: false,
        })
        .collect();
    let head = ["field.supplier", "field.number", "field.issue_date", "field.total", "field.reading"]
        .map(|k| t(lang, k).to_string());
    let mut s = Section::new(Some(t(lang, "digest.invoices").into()), head.to_vec(), rows, vec![3]);
    s.empty = Some(t(lang, "digest.none").into());
    sections.push(s);

    if !v.invoices.is_empty() {
        // Per supplier (by tax ID when known, else by name) and currency, in order of first arrival.
        let mut per: Vec<(String, String, Option<String>, usize, Decimal)> = Vec::new();
        for i in &v.invoices {
            let id = i.supplier_tax_id.clone().unwrap_or_default();
            let key_matches = |p: &(String, String, Option<String>, usize, Decimal)| {
                (if id.is_empty() { p.0 == i.supplier } else { p.1 == id }) && p.2 == i.currency
            };
            match per.iter_mut().find(|p| key_matches(p)) {
                Some(p) => {
                    p.3 += 1;
                    p.4 += i.total.unwrap_or_default();
                }
                None => per.push((i.supplier.clone(), id, i.currency.clone(), 1, i.total.unwrap_or_default())),
            }
        }
        let mut rows: Vec<GridRow> = per
            .iter()
            .map(|(name, id, cur, n, sum)| GridRow {
                cells: vec![line_text(name), line_text(id), n.to_string(), i18n::money_in(*sum, cur.as_deref(), lang)],
                warn: false,
                strong: false,
            })
            .collect();
        rows.push(GridRow {
            cells: vec![t(lang, "batch.sum").into(), String::new(), v.invoices.len().to_string(), total.clone()],
            warn: false,
            strong: true,
        });
        let head =
            ["field.supplier", "field.tax_id", "digest.invoices_count", "field.total"].map(|k| t(lang, k).to_string());
        sections.push(Section::new(Some(t(lang, "digest.per_supplier").into()), head.to_vec(), rows, vec![2, 3]));
    }
    let review: Vec<String> = v
        .invoices
        .iter()
        .filter(|i| !i.review.is_empty())
        .map(|i| {
            let who = format!("{} {}", line_text(&i.supplier), i.number.as_deref().map(line_text).unwrap_or_default());
            let what: Vec<String> = i.review.iter().map(|r| line_text(r)).collect();
            format!("{}: {}", who.trim(), what.join("; "))
        })
        .collect();
    if !v.failed.is_empty() {
        sections.push(failed_section(&v.failed, lang, Some(t(lang, "digest.failed").into())));
    }
    if !v.quarantined.is_empty() {
        sections.push(quarantine_section(&v.quarantined, lang, Some(t(lang, "digest.quarantined").into())));
    }
    let mut outro = Vec::new();
    if v.csv_attached {
        outro.push(t(lang, "digest.csv").to_string());
    }
    let subject = super::headers::header_text(&tf(
        lang,
        "digest.subject",
        &[("date", &date), ("count", &v.invoices.len().to_string()), ("total", &total)],
    ));
    let heading = tf(lang, "digest.heading", &[("date", &date)]);
    let review_title = t(lang, "digest.review");
    let empty: Vec<String> = Vec::new();
    render(
        "table",
        lang,
        subject,
        serde_json::json!({ "heading": heading, "intro": empty.clone(), "alerts": empty.clone(), "review": review, "review_title": review_title, "sections": sections, "outro": outro, "footer": empty }),
    )
}
