//! Codes on the page: the Swiss QR-bill, the EPC QR code (GiroCode), the Spanish VeriFactu and Basque
//! TicketBAI URLs and the Portuguese AT QR code. Each carries an invoice's own data, which is read exactly, as an
//! e-invoice's XML is, and then compared with what the page prints (`merge`).
//!
//! The payload parsers (`swiss`, `epc`, `verifactu`, `ticketbai`, `pt`) are pure functions of the decoded
//! text. A field that does not validate (an IBAN failing mod 97, an amount out of range, a date that does not
//! exist) is refused with a warning and left empty: a wrong value is worse than a missing one. A payload that
//! is not what its header says (wrong version, truncated, a URL with parameters the specification does not
//! have) is refused whole.

pub mod decode;
pub mod epc;
pub mod merge;
pub mod pdf_images;
mod pdf_objects;
pub mod pt;
pub mod swiss;
pub mod ticketbai;
pub mod verifactu;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

use super::model::Source;
use super::rules::iban::Iban;

/// Which specification a code follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Swiss,
    Epc,
    Verifactu,
    Ticketbai,
    Pt,
}

impl Kind {
    /// The source recorded for the fields a code of this kind gave.
    pub fn source(self) -> Source {
        match self {
            Kind::Swiss => Source::QrSwiss,
            Kind::Epc => Source::QrEpc,
            Kind::Verifactu => Source::QrVerifactu,
            Kind::Ticketbai => Source::QrTicketbai,
            Kind::Pt => Source::QrPt,
        }
    }

    /// A payment code asks for money into an account; the others identify an invoice at a tax authority.
    pub fn is_payment(self) -> bool {
        matches!(self, Kind::Swiss | Kind::Epc)
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Swiss => "Swiss QR-bill",
            Kind::Epc => "EPC QR (GiroCode)",
            Kind::Verifactu => "VeriFactu",
            Kind::Ticketbai => "TicketBAI",
            Kind::Pt => "Portuguese AT QR",
        }
    }
}

/// What one code says, in the result's terms. Every field here has passed its specification's checks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Code {
    pub kind: Option<Kind>,
    pub invoice_number: Option<String>,
    pub invoice_series: Option<String>,
    pub issue_date: Option<NaiveDate>,
    pub currency: Option<String>,
    pub supplier_name: Option<String>,
    pub supplier_tax_id: Option<String>,
    pub supplier_country: Option<String>,
    pub iban: Option<String>,
    pub customer_name: Option<String>,
    pub customer_tax_id: Option<String>,
    pub customer_country: Option<String>,
    /// The invoice's total (VeriFactu `importe`, TicketBAI `i`, Portuguese `O`).
    pub total_amount: Option<Decimal>,
    pub tax_amount: Option<Decimal>,
    /// The amount a payment code asks for (Swiss `Amt`, EPC amount): maybe a part of the total.
    pub amount_due: Option<Decimal>,
    /// Fields refused, one sentence each.
    pub warnings: Vec<String>,
}

impl Code {
    pub fn kind(&self) -> Kind {
        self.kind.expect("a parsed code has its kind")
    }

    /// The amount the code states, whichever it is.
    pub fn amount(&self) -> Option<Decimal> {
        self.total_amount.or(self.amount_due)
    }
}

/// Why a payload was refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not a code this module reads (a web address, a vCard): not an error, just not an invoice code.
    #[error("not an invoice code")]
    Foreign,
    #[error("{kind}: {reason}")]
    Invalid { kind: &'static str, reason: String },
}

pub(crate) fn invalid(kind: Kind, reason: impl Into<String>) -> PayloadError {
    PayloadError::Invalid { kind: kind.label(), reason: reason.into() }
}

/// Read one decoded payload by the specification its header names.
pub fn parse(payload: &str) -> Result<Code, PayloadError> {
    let trimmed = payload.trim_start_matches('\u{feff}');
    if trimmed.starts_with("SPC\n") || trimmed.starts_with("SPC\r\n") {
        return swiss::parse(trimmed);
    }
    if trimmed.starts_with("BCD\n") || trimmed.starts_with("BCD\r\n") {
        return epc::parse(trimmed);
    }
    if trimmed.starts_with("A:") && trimmed.contains('*') {
        return pt::parse(trimmed);
    }
    if let Some(url) = Url::parse(trimmed) {
        if url.path.contains("/wlpl/TIKE-CONT/ValidarQR") {
            return verifactu::parse(&url);
        }
        if url.params.iter().any(|(k, v)| k == "id" && v.starts_with("TBAI-")) {
            return ticketbai::parse(trimmed, &url);
        }
    }
    Err(PayloadError::Foreign)
}

/// An amount as the specifications write it: digits, an optional point and at most two decimals, no sign, no
/// thousands separator, at most `max` (Swiss and EPC: 999 999 999.99).
pub(crate) fn plain_amount(s: &str, max: Decimal) -> Option<Decimal> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let ok = !int.is_empty()
        && int.len() <= 12
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 2
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(s.contains('.') && frac.is_empty());
    let value = Decimal::from_str(s).ok().filter(|_| ok)?;
    (value <= max).then_some(value)
}

/// A checked IBAN in its electronic form, or the warning that refuses it.
pub(crate) fn checked_iban(kind: Kind, raw: &str, warnings: &mut Vec<String>) -> Option<String> {
    match Iban::parse(raw) {
        Ok(iban) => Some(iban.as_str().to_string()),
        Err(e) => {
            warnings.push(format!("{}: the IBAN {raw:?} is refused: {e}", kind.label()));
            None
        }
    }
}

/// A text field: trimmed, `None` when empty.
pub(crate) fn text(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// The query string of a URL, split and percent-decoded. Small on purpose: the codes are plain `https` URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub host: String,
    pub path: String,
    pub params: Vec<(String, String)>,
}

impl Url {
    pub fn parse(s: &str) -> Option<Url> {
        let rest = s.trim().strip_prefix("https://").or_else(|| s.trim().strip_prefix("http://"))?;
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (host, path) = before_query.split_once('/').map_or((before_query, ""), |(h, p)| (h, p));
        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.push((percent_decode(k)?, percent_decode(v)?));
        }
        Some(Url { host: host.to_lowercase(), path: format!("/{path}"), params })
    }

    /// Exactly the parameters `names`, each once, in any order; else why not.
    pub fn exactly(&self, names: &[&str]) -> Result<Vec<&str>, String> {
        if let Some((k, _)) = self.params.iter().find(|(k, _)| !names.contains(&k.as_str())) {
            return Err(format!("the URL has a parameter {k:?} the specification does not define"));
        }
        names
            .iter()
            .map(|n| {
                let mut found = self.params.iter().filter(|(k, _)| k == n);
                match (found.next(), found.next()) {
                    (Some((_, v)), None) => Ok(v.as_str()),
                    (None, _) => Err(format!("the URL lacks the parameter {n:?}")),
                    (Some(_), Some(_)) => Err(format!("the URL repeats the parameter {n:?}")),
                }
            })
            .collect()
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_only_in_the_specifications_plain_form() {
        let max = Decimal::from_str("999999999.99").unwrap();
        assert_eq!(plain_amount("123.45", max), Some(Decimal::from_str("123.45").unwrap()));
        assert_eq!(plain_amount("0.00", max), Some(Decimal::ZERO));
        assert_eq!(plain_amount("7", max), Some(Decimal::from(7)));
        for bad in ["12,50", "1.234.5", "abc", "", "-5.00", "1.", ".5", "1.234", "1000000000.00", "1e3"] {
            assert_eq!(plain_amount(bad, max), None, "{bad}");
        }
    }

    #[test]
    fn a_url_is_split_and_percent_decoded() {
        let u = Url::parse("https://h.example/a/b?x=1%26G&y=z").unwrap();
        assert_eq!(u.host, "h.example");
        assert_eq!(u.path, "/a/b");
        assert_eq!(u.exactly(&["x", "y"]).unwrap(), vec!["1&G", "z"]);
        assert!(u.exactly(&["x"]).unwrap_err().contains("\"y\""));
        assert!(u.exactly(&["x", "y", "w"]).unwrap_err().contains("lacks"));
    }

    #[test]
    fn codes_that_are_no_invoice_codes_are_left_alone() {
        assert_eq!(parse("https://example.com/menu"), Err(PayloadError::Foreign));
        assert_eq!(parse("BEGIN:VCARD"), Err(PayloadError::Foreign));
    }
}
