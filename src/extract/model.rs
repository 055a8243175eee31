//! The extraction result: one document in, one of these out.
//!
//! The shape is the contract in `schema/invoice.schema.json`; `extract --json` prints it, the worker stores it
//! in `invoices.result`, and `eval` compares it with `X.expected.json`. Amounts are `Decimal` and serialise as
//! strings so no float ever touches money.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the fields came from. Structured XML beats the text layer, which beats OCR.
///
/// The `Qr…` sources are the codes on the page (`extract::qr`): they name single fields in
/// `Extraction::field_sources`, while `source` stays the reading of the page or the XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Cii,
    Ubl,
    Facturae,
    PdfText,
    Ocr,
    QrSwiss,
    QrEpc,
    QrVerifactu,
    QrTicketbai,
    QrPt,
    /// A field read where a correction taught us this supplier prints it (`extract::memory`).
    SupplierMemory,
}

impl Source {
    pub fn is_qr(self) -> bool {
        matches!(self, Source::QrSwiss | Source::QrEpc | Source::QrVerifactu | Source::QrTicketbai | Source::QrPt)
    }
}

/// One code found on the page and what became of it (`extract::qr::merge`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QrCode {
    /// Which specification it follows, as a source name (`qr_swiss`, `qr_epc`, …).
    pub kind: Source,
    pub page: u32,
    /// Its fields are in the result; false for a second bill on the page, `reason` says why.
    pub used: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_number: Option<String>,
    /// The IBAN the page prints where it differs from the code's: a sticker or a tampered PDF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_iban: Option<String>,
    /// The code agrees with what the page prints; `None` when nothing could be compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches_visual: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Invoice,
    CreditNote,
    CorrectedInvoice,
    Receipt,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Error,
}

/// The schema's error codes. Each maps to one sentence the supplier can act on (see the replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    UnsupportedType,
    Unreadable,
    Encrypted,
    TooLarge,
    TooManyPages,
    Timeout,
    NoInvoiceFound,
    InvalidEinvoice,
    SandboxFailure,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnsupportedType => "unsupported_type",
            ErrorCode::Unreadable => "unreadable",
            ErrorCode::Encrypted => "encrypted",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::TooManyPages => "too_many_pages",
            ErrorCode::Timeout => "timeout",
            ErrorCode::NoInvoiceFound => "no_invoice_found",
            ErrorCode::InvalidEinvoice => "invalid_einvoice",
            ErrorCode::SandboxFailure => "sandbox_failure",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractError {
    pub code: ErrorCode,
    /// One sentence in English for logs and operators; replies use their own localised wording per code.
    pub message: String,
    /// The sandbox itself cannot read any document until an operator acts (a rejected E2B key, a missing
    /// template), so trying again later cannot help. Never part of the result JSON.
    #[serde(skip)]
    pub permanent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Party {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
}

impl Party {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.tax_id.is_none() && self.country.is_none() && self.iban.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaxLine {
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub rate: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub base: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub quantity: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub unit_price: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub amount: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub tax_rate: Option<Decimal>,
}

/// A consistency check run on the result (`totals_add_up`, `tax_id_checksum`, `iban_checksum`, `BR-CO-15`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    pub fn new(name: impl Into<String>, ok: bool, detail: Option<String>) -> Self {
        Check { name: name.into(), ok, detail }
    }
}

/// One document's extraction result (`schema/invoice.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extraction {
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExtractError>,
    #[serde(default)]
    pub source: Option<Source>,
    #[serde(default)]
    pub document_type: Option<DocumentType>,
    #[serde(default)]
    pub invoice_number: Option<String>,
    /// Facturae keeps the series apart from the number; kept here so replies can show "A-1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_series: Option<String>,
    #[serde(default)]
    pub issue_date: Option<NaiveDate>,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub supplier: Option<Party>,
    #[serde(default)]
    pub customer: Option<Party>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub net_amount: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub tax_amount: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub total_amount: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub amount_due: Option<Decimal>,
    #[serde(default)]
    pub taxes: Option<Vec<TaxLine>>,
    #[serde(default)]
    pub line_items: Option<Vec<LineItem>>,
    #[serde(default)]
    pub confidence: Option<BTreeMap<String, f32>>,
    #[serde(default)]
    pub checks: Option<Vec<Check>>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    /// Fields that did not come from `source`: a QR code's fields, with confidence 1 (`extract::qr`), and
    /// `supplier_memory` for a field read where a correction taught us this supplier prints it (`extract::memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_sources: Option<BTreeMap<String, Source>>,
    /// The codes found on the page, one entry each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_codes: Option<Vec<QrCode>>,
    /// Where this page prints the values the worker asked about (`sandbox::ExtractOptions::learn`), for the
    /// supplier memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned: Option<Vec<crate::extract::memory::FieldHint>>,
}

impl Extraction {
    /// An empty successful result for `file`; the readers fill in what the document shows.
    pub fn empty(file: impl Into<String>) -> Self {
        Extraction {
            file: file.into(),
            sha256: None,
            status: Status::Ok,
            error: None,
            source: None,
            document_type: None,
            invoice_number: None,
            invoice_series: None,
            issue_date: None,
            due_date: None,
            currency: None,
            supplier: None,
            customer: None,
            net_amount: None,
            tax_amount: None,
            total_amount: None,
            amount_due: None,
            taxes: None,
            line_items: None,
            confidence: None,
            checks: None,
            warnings: None,
            field_sources: None,
            qr_codes: None,
            learned: None,
        }
    }

    pub fn failed(file: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        let mut e = Extraction::empty(file);
        e.status = Status::Error;
        e.error = Some(ExtractError { code, message: message.into(), permanent: false });
        e
    }

    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    pub fn push_check(&mut self, check: Check) {
        self.checks.get_or_insert_with(Vec::new).push(check);
    }

    pub fn push_warning(&mut self, warning: impl Into<String>) {
        self.warnings.get_or_insert_with(Vec::new).push(warning.into());
    }

    /// Did any field come from a QR code? Replies then say so.
    pub fn read_from_qr(&self) -> bool {
        self.field_sources.iter().flatten().any(|(_, s)| s.is_qr())
    }

    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().flatten().filter(|c| !c.ok)
    }

    /// The invoice number as a supplier would write it, with the Facturae series in front when there is one.
    pub fn display_number(&self) -> Option<String> {
        match (&self.invoice_series, &self.invoice_number) {
            (Some(s), Some(n)) if !n.starts_with(s.as_str()) => Some(format!("{s}-{n}")),
            (_, n) => n.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn amounts_serialise_as_decimal_strings_never_floats() {
        let mut e = Extraction::empty("a.pdf");
        e.total_amount = Some(Decimal::from_str("1210.00").unwrap());
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["total_amount"], serde_json::json!("1210.00"));
        assert_eq!(json["net_amount"], serde_json::Value::Null);
        let back: Extraction = serde_json::from_value(json).unwrap();
        assert_eq!(back.total_amount, e.total_amount);
    }

    #[test]
    fn an_error_result_names_its_code() {
        let e = Extraction::failed("x.pdf", ErrorCode::Encrypted, "The PDF is password-protected.");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["status"], "error");
        assert_eq!(json["error"]["code"], "encrypted");
    }

    #[test]
    fn facturae_series_is_shown_before_the_number() {
        let mut e = Extraction::empty("f.xml");
        e.invoice_series = Some("A".into());
        e.invoice_number = Some("1".into());
        assert_eq!(e.display_number().as_deref(), Some("A-1"));
    }
}
