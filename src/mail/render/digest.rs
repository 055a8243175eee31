//! The digests: the alert digest (quarantined mail and mail that left no invoice) and the daily digest.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::extract::{ErrorCode, Extraction};
use crate::mail::headers::{line_text, one_line, shorten};
use crate::mail::i18n::{self, t, tf};
use crate::mail::settings::Language;

use super::{render, review_items, sums, unsure_fields, GridRow, Rendered, Section, SUBJECT_NAME_CHARS};

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
    let heading = crate::mail::headers::header_text(&subject);
    let empty: Vec<String> = Vec::new();
    render(
        "table",
        lang,
        crate::mail::headers::header_text(&subject),
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
    let subject = crate::mail::headers::header_text(&tf(
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
