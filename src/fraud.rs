//! Fraud signals: a new invoice compared with the same supplier's earlier ones, which the caller loads.
//!
//! Pure comparisons, no I/O. Each signal is a reason for an accountant to look before paying, not a verdict:
//! - the IBAN changed — the classic business-email-compromise fraud, where a lookalike or hijacked mailbox
//!   sends a real-looking invoice that pays into the fraudster's account;
//! - an invoice number came back with a different total or date — a doctored copy of a real invoice;
//! - a payment QR code pays into another IBAN than the one the page prints — a sticker over the code, or a
//!   PDF whose code was swapped.
//!
//! `history` must hold invoices received *before* this one and not the new invoice itself (else its own IBAN
//! would always be "known"). Its order is used only to break ties between invoices of the same issue date.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An invoice already stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PastInvoice {
    pub supplier_tax_id: Option<String>,
    /// The From address it came with, lower-case.
    pub sender: String,
    pub invoice_number: Option<String>,
    pub total_amount: Option<Decimal>,
    pub iban: Option<String>,
    pub issue_date: Option<NaiveDate>,
}

/// The invoice being checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewInvoice {
    pub supplier_tax_id: Option<String>,
    /// The From address it came with, lower-case.
    pub sender: String,
    pub invoice_number: Option<String>,
    pub total_amount: Option<Decimal>,
    pub iban: Option<String>,
    pub issue_date: Option<NaiveDate>,
    /// A payment QR code's IBAN and the different one the page prints (`extract::qr`), when they differ.
    pub qr_iban_mismatch: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// BEC fraud: the supplier's IBAN differs from the one on their earlier invoices.
    /// `previous` is the IBAN of their most recent earlier invoice; `since` the first issue date it appeared on.
    IbanChanged { previous: String, now: String, since: Option<NaiveDate> },
    /// Same invoice number from the same supplier with a different total.
    NumberReusedWithDifferentTotal { number: String, previous_total: Decimal, now: Decimal },
    /// The payment QR code's IBAN is not the one printed on the page.
    QrIbanDiffersFromPage { code: String, page: String },
    /// Same invoice number and total from the same supplier with a different issue date.
    NumberReusedWithDifferentDate { number: String, previous_date: NaiveDate, now: NaiveDate },
}

/// The signals the new invoice raises against the supplier's history, IBAN first.
pub fn signals(new: &NewInvoice, history: &[PastInvoice]) -> Vec<Signal> {
    let supplier = Supplier::of(new.supplier_tax_id.as_deref(), &new.sender);
    let earlier: Vec<&PastInvoice> =
        history.iter().filter(|p| supplier.same_as(&Supplier::of(p.supplier_tax_id.as_deref(), &p.sender))).collect();
    let qr = new
        .qr_iban_mismatch
        .as_ref()
        .map(|(code, page)| Signal::QrIbanDiffersFromPage { code: code.clone(), page: page.clone() });
    qr.into_iter().chain(iban_changed(new, &earlier)).chain(number_reused(new, &earlier)).collect()
}

/// Flags a new IBAN only when it is none of those the supplier used before: suppliers with two banks alternate
/// legitimately, and an IBAN seen before was already checked when it first appeared.
fn iban_changed(new: &NewInvoice, earlier: &[&PastInvoice]) -> Option<Signal> {
    let now = normalize_iban(new.iban.as_deref()?)?;
    let with_iban: Vec<(&PastInvoice, String)> =
        earlier.iter().filter_map(|p| Some((*p, normalize_iban(p.iban.as_deref()?)?))).collect();
    if with_iban.iter().any(|(_, iban)| *iban == now) {
        return None;
    }
    let (_, previous) = latest(&with_iban, |(p, _)| p.issue_date)?;
    let since = with_iban.iter().filter(|(_, iban)| iban == previous).filter_map(|(p, _)| p.issue_date).min();
    Some(Signal::IbanChanged { previous: previous.clone(), now, since })
}

/// Flags an invoice number seen before with another total, or with the same total and another date. A copy
/// with the same total and date is the same invoice: the store keeps one row per invoice (`store::keys`), so
/// such a copy only reaches here when it could not be recognised as one (read without the tax ID, say), and it
/// is not a signal.
fn number_reused(new: &NewInvoice, earlier: &[&PastInvoice]) -> Option<Signal> {
    let written = new.invoice_number.as_deref()?;
    let number = normalize_number(written)?;
    let now = new.total_amount?;
    let same_number: Vec<(&PastInvoice, Decimal)> = earlier
        .iter()
        .filter(|p| p.invoice_number.as_deref().and_then(normalize_number).as_deref() == Some(number.as_str()))
        .filter_map(|p| Some((*p, p.total_amount?)))
        .collect();
    // Decimal equality is numeric: 100.0 and 100.00 are the same total.
    let same_total: Vec<(&PastInvoice, Decimal)> = same_number.iter().copied().filter(|(_, t)| *t == now).collect();
    if same_total.iter().any(|(p, _)| p.issue_date == new.issue_date) {
        return None;
    }
    let number = written.trim().to_string();
    if let Some((p, _)) = latest(&same_total, |(p, _)| p.issue_date) {
        let (Some(previous_date), Some(date)) = (p.issue_date, new.issue_date) else { return None };
        return Some(Signal::NumberReusedWithDifferentDate { number, previous_date, now: date });
    }
    let (_, previous_total) = latest(&same_number, |(p, _)| p.issue_date)?;
    Some(Signal::NumberReusedWithDifferentTotal { number, previous_total: *previous_total, now })
}

/// The most recent item by issue date; undated ones count as oldest, and ties go to the later one in `items`.
fn latest<T>(items: &[T], date: impl Fn(&T) -> Option<NaiveDate>) -> Option<&T> {
    items.iter().enumerate().max_by_key(|(i, item)| (date(item), *i)).map(|(_, item)| item)
}

/// Who issued an invoice, as far as we can tell.
struct Supplier {
    tax_id: Option<String>,
    sender: String,
}

impl Supplier {
    fn of(tax_id: Option<&str>, sender: &str) -> Self {
        Supplier { tax_id: tax_id.and_then(normalize_tax_id), sender: sender.trim().to_lowercase() }
    }

    /// The tax id decides when both invoices carry one (one sender may mail for several companies, as an
    /// accounting firm does); otherwise the sender address is all we have.
    fn same_as(&self, other: &Supplier) -> bool {
        match (&self.tax_id, &other.tax_id) {
            (Some(a), Some(b)) => a == b,
            _ => !self.sender.is_empty() && self.sender == other.sender,
        }
    }
}

pub(crate) use crate::extract::normalize::normalize_tax_id;

/// ISO 13616 electronic form: no spaces (or other separators), upper-case.
fn normalize_iban(raw: &str) -> Option<String> {
    let iban = compact_upper(raw);
    (!iban.is_empty()).then_some(iban)
}

/// Invoice numbers compare case-insensitively and without whitespace; other punctuation is kept because
/// `2024-1` and `20241` can be two different invoices.
pub(crate) fn normalize_number(raw: &str) -> Option<String> {
    let number: String = raw.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_uppercase).collect();
    (!number.is_empty()).then_some(number)
}

fn compact_upper(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

impl Signal {
    /// One sentence for the accountants, in Spanish or English.
    pub fn describe(&self, spanish: bool) -> String {
        match self {
            Signal::IbanChanged { previous, now, since } => describe_iban(previous, now, *since, spanish),
            Signal::QrIbanDiffersFromPage { code, page } => {
                let (code, page) = (group_iban(code), group_iban(page));
                if spanish {
                    format!(
                        "El código QR de pago lleva el IBAN {code}, pero la factura imprime el {page}: puede ser \
                         una pegatina o un PDF manipulado. Confirme la cuenta por teléfono con un contacto conocido \
                         antes de pagar."
                    )
                } else {
                    format!(
                        "The payment QR code carries the IBAN {code}, but the invoice prints {page}: a sticker or a \
                         tampered PDF. Confirm the account by phone with a known contact before paying."
                    )
                }
            }
            Signal::NumberReusedWithDifferentDate { number, previous_date, now } => {
                if spanish {
                    format!(
                        "La factura número {number} de este proveedor ya llegó con fecha {} y ahora llega con fecha \
                         {} y el mismo total: compruebe cuál es la buena antes de pagar.",
                        previous_date.format("%d/%m/%Y"),
                        now.format("%d/%m/%Y")
                    )
                } else {
                    format!(
                        "Invoice number {number} from this supplier already arrived dated {previous_date} and now \
                         arrives dated {now} with the same total: check which one is genuine before paying."
                    )
                }
            }
            Signal::NumberReusedWithDifferentTotal { number, previous_total, now } => {
                let (before, after) = (format_amount(*previous_total, spanish), format_amount(*now, spanish));
                if spanish {
                    format!(
                        "La factura número {number} de este proveedor ya llegó con un total de {before} y ahora \
                         llega con {after}: compruebe cuál es la buena antes de pagar."
                    )
                } else {
                    format!(
                        "Invoice number {number} from this supplier already arrived with a total of {before} and \
                         now arrives with {after}: check which one is genuine before paying."
                    )
                }
            }
        }
    }
}

fn describe_iban(previous: &str, now: &str, since: Option<NaiveDate>, spanish: bool) -> String {
    let (previous, now) = (group_iban(previous), group_iban(now));
    match (spanish, since) {
        (true, Some(date)) => format!(
            "El IBAN {now} no coincide con el {previous}, que este proveedor usa en sus facturas desde el {}: \
             confirme el cambio por teléfono con un contacto conocido antes de pagar.",
            date.format("%d/%m/%Y")
        ),
        (true, None) => format!(
            "El IBAN {now} no coincide con el {previous} de las facturas anteriores de este proveedor: confirme \
             el cambio por teléfono con un contacto conocido antes de pagar."
        ),
        (false, Some(date)) => format!(
            "The IBAN {now} differs from {previous}, which this supplier has used on its invoices since {}: \
             confirm the change by phone with a known contact before paying.",
            date.format("%Y-%m-%d")
        ),
        (false, None) => format!(
            "The IBAN {now} differs from {previous} on this supplier's earlier invoices: confirm the change by \
             phone with a known contact before paying."
        ),
    }
}

/// Groups of four, the way IBANs are printed (ISO 13616), so the two can be read side by side.
fn group_iban(iban: &str) -> String {
    let chars: Vec<char> = iban.chars().collect();
    chars.chunks(4).map(|chunk| chunk.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// `1234.5` as `1,234.50` in English or `1.234,50` in Spanish (RAE: a point for thousands in amounts).
fn format_amount(amount: Decimal, spanish: bool) -> String {
    let (thousands, decimal) = if spanish { ('.', ',') } else { (',', '.') };
    let text = amount.abs().round_dp(2).to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, digit) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(thousands);
        }
        grouped.push(digit);
    }
    let sign = if amount.is_sign_negative() && !amount.is_zero() { "-" } else { "" };
    format!("{sign}{grouped}{decimal}{frac:0<2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn amount(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// An earlier invoice from supplier `tax_id` at `sender`, numbered `number`.
    fn past(tax_id: Option<&str>, sender: &str, number: &str, total: &str, iban: &str, issued: &str) -> PastInvoice {
        PastInvoice {
            supplier_tax_id: tax_id.map(str::to_string),
            sender: sender.to_string(),
            invoice_number: Some(number.to_string()),
            total_amount: Some(amount(total)),
            iban: (!iban.is_empty()).then(|| iban.to_string()),
            issue_date: Some(date(issued)),
        }
    }

    fn new(tax_id: Option<&str>, sender: &str, number: &str, total: &str, iban: &str) -> NewInvoice {
        NewInvoice {
            supplier_tax_id: tax_id.map(str::to_string),
            sender: sender.to_string(),
            invoice_number: Some(number.to_string()),
            total_amount: Some(amount(total)),
            iban: (!iban.is_empty()).then(|| iban.to_string()),
            issue_date: Some(date("2024-06-01")),
            qr_iban_mismatch: None,
        }
    }

    const SUPPLIER: Option<&str> = Some("B12345674");
    const SENDER: &str = "facturas@proveedor.es";
    const IBAN_A: &str = "ES9121000418450200051332";
    const IBAN_B: &str = "ES7921000813610123456789";
    const IBAN_C: &str = "ES6000491500051234567892";

    struct Case {
        name: &'static str,
        new: NewInvoice,
        history: Vec<PastInvoice>,
        expected: Vec<Signal>,
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "first invoice of a supplier",
                new: new(SUPPLIER, SENDER, "F-7", "100.00", IBAN_A),
                history: vec![past(Some("A58818501"), "ap@other.es", "F-1", "50", IBAN_B, "2024-01-10")],
                expected: vec![],
            },
            Case {
                name: "same IBAN as before",
                new: new(SUPPLIER, SENDER, "F-7", "100.00", IBAN_A),
                history: vec![past(SUPPLIER, SENDER, "F-1", "50", IBAN_A, "2024-01-10")],
                expected: vec![],
            },
            Case {
                name: "changed IBAN, since the first invoice that used the previous one",
                new: new(SUPPLIER, SENDER, "F-7", "100.00", IBAN_B),
                history: vec![
                    past(SUPPLIER, SENDER, "F-1", "50", IBAN_A, "2024-01-10"),
                    past(SUPPLIER, SENDER, "F-2", "60", "", "2024-02-10"),
                    past(SUPPLIER, SENDER, "F-3", "70", IBAN_A, "2024-03-10"),
                ],
                expected: vec![Signal::IbanChanged {
                    previous: IBAN_A.into(),
                    now: IBAN_B.into(),
                    since: Some(date("2024-01-10")),
                }],
            },
            Case {
                name: "IBAN with spaces and lower case against the compact form",
                new: new(SUPPLIER, SENDER, "F-7", "100.00", "es91 2100 0418 4502 0005 1332"),
                history: vec![past(SUPPLIER, SENDER, "F-1", "50", IBAN_A, "2024-01-10")],
                expected: vec![],
            },
            Case {
                name: "earlier invoices without an IBAN do not count",
                new: new(SUPPLIER, SENDER, "F-7", "100.00", IBAN_A),
                history: vec![past(SUPPLIER, SENDER, "F-1", "50", "", "2024-01-10")],
                expected: vec![],
            },
            Case {
                name: "a supplier with two banks uses one of them",
                new: new(SUPPLIER, SENDER, "F-7", "100.00", IBAN_A),
                history: vec![
                    past(SUPPLIER, SENDER, "F-1", "50", IBAN_A, "2024-01-10"),
                    past(SUPPLIER, SENDER, "F-2", "60", IBAN_B, "2024-02-10"),
                ],
                expected: vec![],
            },
            Case {
                name: "a supplier with two banks sends a third: compared with the most recent",
                new: new(SUPPLIER, SENDER, "F-7", "100.00", IBAN_C),
                history: vec![
                    past(SUPPLIER, SENDER, "F-2", "60", IBAN_B, "2024-02-10"),
                    past(SUPPLIER, SENDER, "F-1", "50", IBAN_A, "2024-01-10"),
                ],
                expected: vec![Signal::IbanChanged {
                    previous: IBAN_B.into(),
                    now: IBAN_C.into(),
                    since: Some(date("2024-02-10")),
                }],
            },
            Case {
                name: "number reused with a different total",
                new: new(SUPPLIER, SENDER, "F-1", "1500.00", IBAN_A),
                history: vec![past(SUPPLIER, SENDER, "f-1", "1234.50", IBAN_A, "2024-01-10")],
                expected: vec![Signal::NumberReusedWithDifferentTotal {
                    number: "F-1".into(),
                    previous_total: amount("1234.50"),
                    now: amount("1500.00"),
                }],
            },
            Case {
                name: "same number, total and date is the same invoice, not a signal",
                new: new(SUPPLIER, SENDER, "F-1", "1234.5", IBAN_A),
                history: vec![past(SUPPLIER, SENDER, "F-1", "1234.50", IBAN_A, "2024-06-01")],
                expected: vec![],
            },
            Case {
                name: "same number and total with another date is a signal: the store keeps both",
                new: new(SUPPLIER, SENDER, "F-1", "1234.5", IBAN_A),
                history: vec![past(SUPPLIER, SENDER, "F-1", "1234.50", IBAN_A, "2024-01-10")],
                expected: vec![Signal::NumberReusedWithDifferentDate {
                    number: "F-1".into(),
                    previous_date: date("2024-01-10"),
                    now: date("2024-06-01"),
                }],
            },
            Case {
                name: "another supplier with the same number",
                new: new(SUPPLIER, SENDER, "F-1", "1500.00", IBAN_A),
                history: vec![past(Some("A58818501"), "ap@other.es", "F-1", "80", IBAN_B, "2024-01-10")],
                expected: vec![],
            },
            Case {
                name: "ES prefix and separators on the tax id: same supplier, even from a new address",
                new: new(Some("ES-B12345674"), "pagos@proveedor-nuevo.es", "F-1", "999", IBAN_B),
                history: vec![past(Some("b 1234567 4"), SENDER, "F-1", "100", IBAN_A, "2024-01-10")],
                expected: vec![
                    Signal::IbanChanged {
                        previous: IBAN_A.into(),
                        now: IBAN_B.into(),
                        since: Some(date("2024-01-10")),
                    },
                    Signal::NumberReusedWithDifferentTotal {
                        number: "F-1".into(),
                        previous_total: amount("100"),
                        now: amount("999"),
                    },
                ],
            },
            Case {
                name: "different tax ids at the same sender (an accounting firm) are different suppliers",
                new: new(SUPPLIER, "gestoria@asesores.es", "1", "100", IBAN_A),
                history: vec![past(Some("A58818501"), "gestoria@asesores.es", "1", "80", IBAN_B, "2024-01-10")],
                expected: vec![],
            },
            Case {
                name: "no tax id on one side: the sender address decides",
                new: new(None, "Facturas@Proveedor.es", "F-7", "100", IBAN_B),
                history: vec![past(SUPPLIER, SENDER, "F-1", "50", IBAN_A, "2024-01-10")],
                expected: vec![Signal::IbanChanged {
                    previous: IBAN_A.into(),
                    now: IBAN_B.into(),
                    since: Some(date("2024-01-10")),
                }],
            },
            Case {
                name: "no IBAN and no total on the new invoice: nothing to compare",
                new: NewInvoice { iban: None, total_amount: None, ..new(SUPPLIER, SENDER, "F-1", "0", "") },
                history: vec![past(SUPPLIER, SENDER, "F-1", "50", IBAN_A, "2024-01-10")],
                expected: vec![],
            },
        ]
    }

    #[test]
    fn signals_compare_with_the_same_suppliers_earlier_invoices() {
        for case in cases() {
            assert_eq!(signals(&case.new, &case.history), case.expected, "case: {}", case.name);
        }
    }

    #[test]
    fn descriptions_are_one_sentence_in_either_language() {
        let changed =
            Signal::IbanChanged { previous: IBAN_A.into(), now: IBAN_B.into(), since: Some(date("2024-01-10")) };
        let undated = Signal::IbanChanged { previous: IBAN_A.into(), now: IBAN_B.into(), since: None };
        let reused = Signal::NumberReusedWithDifferentTotal {
            number: "F-1".into(),
            previous_total: amount("1234.5"),
            now: amount("-1500"),
        };
        let cases = [
            (
                &changed,
                true,
                "El IBAN ES79 2100 0813 6101 2345 6789 no coincide con el ES91 2100 0418 4502 0005 1332, que este \
                 proveedor usa en sus facturas desde el 10/01/2024: confirme el cambio por teléfono con un contacto \
                 conocido antes de pagar.",
            ),
            (
                &changed,
                false,
                "The IBAN ES79 2100 0813 6101 2345 6789 differs from ES91 2100 0418 4502 0005 1332, which this \
                 supplier has used on its invoices since 2024-01-10: confirm the change by phone with a known \
                 contact before paying.",
            ),
            (
                &undated,
                false,
                "The IBAN ES79 2100 0813 6101 2345 6789 differs from ES91 2100 0418 4502 0005 1332 on this \
                 supplier's earlier invoices: confirm the change by phone with a known contact before paying.",
            ),
            (
                &reused,
                true,
                "La factura número F-1 de este proveedor ya llegó con un total de 1.234,50 y ahora llega con \
                 -1.500,00: compruebe cuál es la buena antes de pagar.",
            ),
            (
                &reused,
                false,
                "Invoice number F-1 from this supplier already arrived with a total of 1,234.50 and now arrives \
                 with -1,500.00: check which one is genuine before paying.",
            ),
        ];
        for (signal, spanish, expected) in cases {
            assert_eq!(signal.describe(spanish), expected, "{signal:?} spanish={spanish}");
        }
    }

    #[test]
    fn amounts_are_formatted_per_language() {
        let cases = [
            ("0", "0.00", "0,00"),
            ("5", "5.00", "5,00"),
            ("999.999", "1,000.00", "1.000,00"),
            ("1234567.891", "1,234,567.89", "1.234.567,89"),
            ("-42.1", "-42.10", "-42,10"),
            ("0.125", "0.12", "0,12"),
        ];
        for (value, en, es) in cases {
            assert_eq!(format_amount(amount(value), false), en, "{value}");
            assert_eq!(format_amount(amount(value), true), es, "{value}");
        }
    }

    #[test]
    fn tax_ids_normalize_with_and_without_the_es_prefix() {
        let cases = [
            ("ESB12345674", Some("B12345674")),
            ("es b-1234567-4", Some("B12345674")),
            ("B12345674", Some("B12345674")),
            ("DE123456789", Some("DE123456789")),
            ("ES12345678Z", Some("12345678Z")),
            (" - ", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_tax_id(raw).as_deref(), expected, "{raw}");
        }
    }

    #[test]
    fn a_payment_code_paying_into_another_iban_than_the_page_prints_is_flagged_first() {
        let mut n = new(SUPPLIER, SENDER, "F-9", "100.00", IBAN_A);
        n.qr_iban_mismatch = Some((IBAN_B.to_string(), IBAN_A.to_string()));
        let history = [past(SUPPLIER, SENDER, "F-1", "50.00", IBAN_A, "2024-01-01")];
        let s = signals(&n, &history);
        assert_eq!(s, vec![Signal::QrIbanDiffersFromPage { code: IBAN_B.into(), page: IBAN_A.into() }]);
        let es = s[0].describe(true);
        assert!(es.contains("ES79 2100 0813 6101 2345 6789") && es.contains("código QR"), "{es}");
        assert!(s[0].describe(false).contains("QR code"));
    }
}
