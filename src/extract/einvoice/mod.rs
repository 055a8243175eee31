//! The structured e-invoice reader: XML bytes in, one `Extraction` per invoice out. Pure: no I/O.
//!
//! Formats read (mapped onto the EN 16931 semantic model, business terms cited as BT-/BG-):
//! - UN/CEFACT CII: ZUGFeRD 2.x, Factur-X, XRechnung-CII (`cii`), and ZUGFeRD 1.0 (same module);
//! - OASIS UBL 2.x `Invoice` and `CreditNote`: Peppol BIS 3, XRechnung-UBL (`ubl`), also inside a Peppol
//!   Standard Business Document envelope;
//! - Spanish Facturae 3.2 / 3.2.1 / 3.2.2, signed or not, batches of several invoices (`facturae`).
//!
//! Formats recognised but not read (FatturaPA, Order-X, UBL orders ...) give `EinvoiceError::Unsupported`
//! naming the format, so the sender can be told which format we need. Every document is checked with the
//! arithmetic rules of its format (`checks`); a rule that fails is a failed check and a warning, not an error.

mod checks;
mod cii;
mod facturae;
mod ubl;
mod values;
mod xml;

#[cfg(test)]
mod tests;

use crate::extract::model::Extraction;
use roxmltree::{Document, Node};
use xml::NodeExt;

/// Bounds so hostile XML cannot exhaust memory or time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlLimits {
    /// Input size in bytes, checked before anything else.
    pub max_bytes: usize,
    /// Element nesting; real invoices stay under 20 levels (UBL with extensions and signatures included).
    pub max_depth: usize,
    /// Nodes (elements, text, comments) roxmltree may build; a 20 MiB invoice has well under a million.
    pub max_nodes: usize,
}

impl Default for XmlLimits {
    /// 20 MiB (room for XRechnung/UBL invoices that embed base64 attachments), depth 64, 2 000 000 nodes.
    fn default() -> Self {
        XmlLimits { max_bytes: 20 * 1024 * 1024, max_depth: 64, max_nodes: 2_000_000 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EinvoiceError {
    /// Well-formed XML but not an invoice format we know (e.g. an XSLT, an SVG, a random document).
    #[error("not an e-invoice: root element {root}")]
    NotEinvoice { root: String },
    /// A known e-invoice format we do not read: name it (e.g. "FatturaPA (Italy)", "Order-X", "UBL Order").
    #[error("unsupported e-invoice format: {format}")]
    Unsupported { format: String },
    /// XML that does not parse (or has a DTD/entity): with the parser's line and column.
    #[error("invalid XML at line {line}, column {column}: {message}")]
    Invalid { line: u32, column: u32, message: String },
    #[error("XML too large or too deep: {0}")]
    TooLarge(String),
}

/// Parse one XML document. `file` is the name to put in Extraction.file.
/// Returns one Extraction per invoice (Facturae batches hold several invoices; everything else gives one).
///
/// Each result has `source`, the fields the document states (confidence 1.0 each), `taxes`, `line_items`,
/// and `checks` with the format's arithmetic rules; a rule that fails also adds a warning sentence.
///
/// # Errors
/// `TooLarge` past `limits`, `Invalid` for XML that does not parse (DTDs included, with line and column),
/// `Unsupported` for a recognised format we do not read, `NotEinvoice` for any other XML.
pub fn parse(file: &str, xml: &[u8], limits: &XmlLimits) -> Result<Vec<Extraction>, EinvoiceError> {
    let text = xml::decode(xml, limits)?;
    let doc = xml::parse_document(&text, limits)?;
    let root = invoice_root(&doc);
    match classify(root) {
        Format::Cii => Ok(vec![checks::payee_account(cii::read(file, root))]),
        Format::Ubl => Ok(vec![checks::payee_account(ubl::read(file, root))]),
        Format::Facturae => {
            let invoices = facturae::read(file, root);
            if invoices.is_empty() {
                let pos = doc.text_pos_at(root.range().start);
                return Err(EinvoiceError::Invalid {
                    line: pos.row,
                    column: pos.col,
                    message: "the Facturae file holds no Invoices/Invoice element".into(),
                });
            }
            Ok(invoices.into_iter().map(checks::payee_account).collect())
        }
        Format::Unsupported { format, .. } => Err(EinvoiceError::Unsupported { format: format.into() }),
        Format::Unknown => Err(EinvoiceError::NotEinvoice { root: describe(root) }),
    }
}

/// Cheap sniff: does this look like XML of an e-invoice format (by root element / namespace), without full mapping?
///
/// Returns "cii", "ubl", "facturae" for the formats `parse` reads, and for recognised formats it does not read:
/// "fatturapa", "order-x", "ubl-other", "cii-other", "ebinterface", "isdoc", "finvoice", "ksef", "cfdi".
/// The document is parsed (same default limits as `parse`) so namespaces are resolved properly, but nothing
/// is mapped; `None` for anything that is not well-formed XML of one of these.
pub fn sniff_format(xml: &[u8]) -> Option<&'static str> {
    let limits = XmlLimits::default();
    let text = xml::decode(xml, &limits).ok()?;
    let doc = xml::parse_document(&text, &limits).ok()?;
    match classify(invoice_root(&doc)) {
        Format::Cii => Some("cii"),
        Format::Ubl => Some("ubl"),
        Format::Facturae => Some("facturae"),
        Format::Unsupported { sniff, .. } => Some(sniff),
        Format::Unknown => None,
    }
}

enum Format {
    Cii,
    Ubl,
    Facturae,
    Unsupported { format: &'static str, sniff: &'static str },
    Unknown,
}

const UBL_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:";
const UBL_INVOICE: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const UBL_CREDIT_NOTE: &str = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
const SBDH_NS: &str = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader";

/// The document element, or the payload of a Peppol Standard Business Document envelope.
fn invoice_root<'a, 'i>(doc: &'a Document<'i>) -> Node<'a, 'i> {
    let root = doc.root_element();
    if root.local() == "StandardBusinessDocument" && root.tag_name().namespace() == Some(SBDH_NS) {
        let payload = root.children().find(|c| c.is_element() && c.local() != "StandardBusinessDocumentHeader");
        return payload.unwrap_or(root);
    }
    root
}

/// Decides the format from the root element's local name and namespace.
fn classify(root: Node) -> Format {
    let name = root.local();
    let ns = root.tag_name().namespace().unwrap_or("");
    let unsupported = |format, sniff| Format::Unsupported { format, sniff };
    match name {
        "CrossIndustryInvoice" if ns.starts_with("urn:un:unece:uncefact:data:standard:CrossIndustryInvoice") => {
            Format::Cii
        }
        "CrossIndustryDocument" if ns.starts_with("urn:ferd:CrossIndustryDocument:invoice") => Format::Cii,
        // The release candidate of ZUGFeRD 1.0, still found in PDFs from 2014.
        "Invoice" if ns.starts_with("urn:un:unece:uncefact:data:standard:CBFBUY") => Format::Cii,
        "Invoice" if ns == UBL_INVOICE => Format::Ubl,
        "CreditNote" if ns == UBL_CREDIT_NOTE => Format::Ubl,
        // Any Facturae version (3.0 to 3.2.2); some generators leave out the namespace.
        "Facturae" if ns.is_empty() || ns.to_ascii_lowercase().contains("facturae") => Format::Facturae,
        "FatturaElettronica" | "FatturaElettronicaSemplificata" => unsupported("FatturaPA (Italy)", "fatturapa"),
        _ if name.starts_with("SCRDMCCBDACIO") => unsupported("Order-X", "order-x"),
        "Invoice" if ns.contains("isdoc.cz") => unsupported("ISDOC (Czech Republic)", "isdoc"),
        "Invoice" if ns.contains("ebinterface") => unsupported("ebInterface (Austria)", "ebinterface"),
        "Finvoice" => unsupported("Finvoice (Finland)", "finvoice"),
        "Faktura" if ns.contains("crd.gov.pl") => unsupported("KSeF FA (Poland)", "ksef"),
        "Comprobante" if ns.contains("sat.gob.mx") => unsupported("CFDI (Mexico)", "cfdi"),
        // An invoice life-cycle status (French e-invoicing's CDAR: "refused", "paid" ...) answers an invoice; it is
        // not one, and not a format to add: no invoice found.
        "CrossDomainAcknowledgementAndResponse" => Format::Unknown,
        _ if ns.starts_with(UBL_NS) => unsupported(ubl_name(name, ns), "ubl-other"),
        _ if ns.starts_with("urn:un:unece:uncefact:data:") || name.starts_with("CrossIndustry") => {
            unsupported(cii_name(name), "cii-other")
        }
        _ => Format::Unknown,
    }
}

/// A readable name for a UBL document we do not read ("UBL Order", "UBL DespatchAdvice" ...).
fn ubl_name(root: &str, ns: &str) -> &'static str {
    const KNOWN: &[(&str, &str)] = &[
        ("Order", "UBL Order"),
        ("OrderResponse", "UBL OrderResponse"),
        ("DespatchAdvice", "UBL DespatchAdvice"),
        ("ApplicationResponse", "UBL ApplicationResponse"),
        ("Catalogue", "UBL Catalogue"),
        ("Reminder", "UBL Reminder"),
        ("SelfBilledInvoice", "UBL SelfBilledInvoice"),
        ("SelfBilledCreditNote", "UBL SelfBilledCreditNote"),
        ("DebitNote", "UBL DebitNote"),
        ("FreightInvoice", "UBL FreightInvoice"),
    ];
    if matches!(root, "Invoice" | "CreditNote") && !ns.ends_with("-2") {
        return "UBL 1.0 (not UBL 2)";
    }
    KNOWN.iter().find(|(r, _)| *r == root).map_or("UBL document other than Invoice or CreditNote", |(_, n)| *n)
}

fn cii_name(root: &str) -> &'static str {
    match root {
        "CrossIndustryOrder" => "UN/CEFACT Cross Industry Order",
        "CrossIndustryDespatchAdvice" => "UN/CEFACT Cross Industry Despatch Advice",
        _ => "UN/CEFACT document other than a Cross Industry Invoice",
    }
}

/// `{namespace}name`, or just the name, for the NotEinvoice message.
fn describe(root: Node) -> String {
    match root.tag_name().namespace() {
        Some(ns) => format!("{{{ns}}}{}", root.local()),
        None => root.local().to_string(),
    }
}
