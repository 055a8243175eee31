//! The mails people read, rendered from templates (`templates/`, MiniJinja) with the words of `i18n`: a plain
//! text and an HTML alternative of each, and its subject.
//!
//! The `.html` templates escape every value by default, so a supplier's name like `<b>Norte</b>` is shown, never
//! interpreted. Values from a document or a mail reach a view already on one line and bounded
//! (`headers::line_text`), so none can add lines or headers of its own.
//!
//! `render_digest` and `render_alerts` take plain view structs, so whatever gathers the data (the daily digest's
//! schedule, the alert digest) only fills them in.
//!
//! This file holds what every mail shares (the template environment, the invoice table, text grids); each kind of
//! mail is rendered in its own file: [`reply`], [`confirmation`] (and batches), [`digest`] (alerts and the daily
//! digest).

use std::sync::OnceLock;

use chrono::NaiveDate;
use minijinja::value::Serde;
use minijinja::{Environment, State, Value};
use rust_decimal::Decimal;
use serde::Serialize;

use super::headers::{line_text, shorten};
use super::i18n::{self, t, tf};
use super::settings::Language;
use crate::extract::Extraction;

mod confirmation;
mod digest;
mod reply;

pub use confirmation::{render_batch, render_confirmation};
pub use digest::*;
pub use reply::{render_reply, reply_subject};

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
            ("layout.html", include_str!("../templates/layout.html")),
            ("macros.html", include_str!("../templates/macros.html")),
            ("reply.html", include_str!("../templates/reply.html")),
            ("reply.txt", include_str!("../templates/reply.txt")),
            ("confirm.html", include_str!("../templates/confirm.html")),
            ("confirm.txt", include_str!("../templates/confirm.txt")),
            ("table.html", include_str!("../templates/table.html")),
            ("table.txt", include_str!("../templates/table.txt")),
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

// ---------------------------------------------------------------------------------------------------------------
// Digests: the alert digest (quarantined and failed mail) and the daily one
