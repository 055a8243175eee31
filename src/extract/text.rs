//! Reading an invoice from laid-out text: the output of `pdftotext -layout`, or OCR text laid out in lines.
//!
//! Pure: text in, `Extraction` out. The rules live in `rules/`; this file decides what the document is, runs
//! them, and keeps only what they are sure enough of. A field below `MIN_CONFIDENCE` is left out, because an
//! accountant trusts a value that is there and a wrong one is worse than a missing one.

use crate::extract::model::{Check, DocumentType, ErrorCode, Extraction, Party, Source};
use crate::extract::rules::currency::{self, EURO_COUNTRIES};
use crate::extract::rules::dates::{date_order_votes, document_is_month_first};
use crate::extract::rules::doctype::{self, Kind};
use crate::extract::rules::header::{read_header, Found};
use crate::extract::rules::items::read_items;
use crate::extract::rules::layout::Layout;
use crate::extract::rules::parties::{read_parties, Own, PartyFound};
use crate::extract::rules::totals;
use crate::extract::rules::{fold, Locale};
use chrono::NaiveDate;
use regex_lite::Regex;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Who "we" are (the [company] config section): never report our own company as the supplier.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct OwnCompany {
    pub names: Vec<String>,
    pub tax_ids: Vec<String>,
}

/// Fields below this confidence are not output.
pub const MIN_CONFIDENCE: f32 = 0.5;

/// OCR misreads digits and columns; everything it yields is trusted this much less than a text layer.
const OCR_FACTOR: f32 = 0.85;

/// Read an invoice from layout text. `source` is Source::PdfText or Source::Ocr (OCR text is noisier: be stricter
/// about what you accept, and lower confidences). Returns an Extraction with status Ok and the fields found, or
/// `Extraction::failed(file, ErrorCode::NoInvoiceFound, ...)` when the text is not an invoice (terms and conditions,
/// a delivery note, an empty page): never invent fields.
pub fn read_invoice_text(file: &str, text: &str, source: Source, own: &OwnCompany) -> Extraction {
    let layout = Layout::new(text);
    if layout.is_empty() {
        return Extraction::failed(
            file,
            ErrorCode::NoInvoiceFound,
            "The document has no text to read an invoice from.",
        );
    }
    let kind = doctype::classify(&layout);
    if let Kind::NotAnInvoice(what) = kind {
        return Extraction::failed(
            file,
            ErrorCode::NoInvoiceFound,
            format!("The document is a {what}, not an invoice."),
        );
    }
    let hint = Some(profile(&layout, text));
    let header = read_header(&layout, hint);
    let (mut candidates, rows) = totals::collect(&layout, hint);
    if source == Source::Ocr {
        let extra = totals::unlabelled_totals(&layout, &candidates, hint);
        candidates.extend(extra);
    }
    let mut totals =
        if source == Source::Ocr { totals::solve_ocr(&candidates, &rows) } else { totals::solve(&candidates, &rows) };
    if matches!(kind, Kind::Invoice(DocumentType::Receipt)) || doctype::till_slip(&layout) {
        totals::after_cash_rounding(&layout, &candidates, &mut totals, hint);
        totals::corroborate_receipt_total(&layout, &candidates, &mut totals, hint);
    }

    let has_number = header.number.is_some();
    let has_total = totals.total.is_some();
    // A till slip with a shop and a total is a receipt even without a title (EVALUATION.md).
    let invoice_word =
        matches!(kind, Kind::Invoice(_)) || doctype::mentions_invoice(text) || doctype::till_slip(&layout);
    if !(has_number || has_total) || !(invoice_word || (has_number && has_total)) {
        return Extraction::failed(
            file,
            ErrorCode::NoInvoiceFound,
            "The document shows no invoice number and no invoice total.",
        );
    }

    let factor = if source == Source::Ocr { OCR_FACTOR } else { 1.0 };
    let mut out = Output { e: Extraction::empty(file), confidence: BTreeMap::new(), factor };
    out.e.source = Some(source);

    // OCR reads a smudge or a position number as `1`: from a scan, a number needs three letters or digits.
    let number = header.number.filter(|f| source != Source::Ocr || plausible_ocr_number(&f.value));
    out.e.invoice_number = out.found("invoice_number", number);
    out.e.issue_date = out.found("issue_date", header.issue_date);
    out.e.due_date = out.found("due_date", header.due_date);
    let today = chrono::Utc::now().date_naive();
    for (field, why) in implausible_dates(out.e.issue_date, out.e.due_date, today, source == Source::Ocr) {
        match field {
            "issue_date" => out.e.issue_date = None,
            "due_date" => out.e.due_date = None,
            _ => {}
        }
        out.confidence.remove(field);
        if !why.is_empty() {
            out.e.push_warning(why);
        }
    }

    let parties = read_parties(&layout, &Own::new(&own.names, &own.tax_ids));
    out.e.supplier = out.party("supplier", &parties.supplier, source);
    out.e.customer = out.party("customer", &parties.customer, source);
    separate_parties(&mut out);

    // `document_type` by what the page is (EVALUATION.md): a till slip that names no customer is a receipt
    // whatever its title says; a document that names its customer is an invoice. Never the value `unknown`.
    let has_customer = out.e.customer.as_ref().is_some_and(|c| c.name.is_some() || c.tax_id.is_some());
    let doc = match kind {
        Kind::Invoice(DocumentType::Receipt) if has_customer => Some((DocumentType::Invoice, 0.8)),
        Kind::Invoice(DocumentType::Invoice) if !has_customer && doctype::till_slip(&layout) => {
            Some((DocumentType::Receipt, 0.8))
        }
        Kind::Invoice(t) => Some((t, 0.9)),
        _ if !has_customer && doctype::till_slip(&layout) => Some((DocumentType::Receipt, 0.7)),
        _ if invoice_word || has_customer => Some((DocumentType::Invoice, 0.7)),
        _ => None,
    };
    if let Some((t, c)) = doc.filter(|(t, _)| *t != DocumentType::Unknown) {
        out.e.document_type = out.keep("document_type", Some(t), c);
    }
    if let Some(iban) = parties.iban {
        let kept = out.found("supplier.iban", Some(iban));
        if let Some(iban) = kept {
            out.e.supplier.get_or_insert_with(Party::default).iban = Some(iban.clone());
            out.e.push_check(Check::new("iban_checksum", true, Some(format!("{iban} passes mod 97"))));
        }
    }
    for bad in &parties.bad_ibans {
        out.e.push_check(Check::new("iban_checksum", false, Some(format!("{bad} fails mod 97 or its length"))));
        out.e.push_warning(format!("IBAN {bad} is printed with a wrong check; it was not kept"));
    }
    tax_id_checks(&mut out.e, &parties.supplier, &parties.customer, &parties.bad_tax_ids);

    // Amounts.
    let conf = |name: &str| totals.confidence.get(name).copied().unwrap_or(0.0);
    out.e.net_amount = out.keep("net_amount", totals.net, conf("net_amount"));
    out.e.tax_amount = out.keep("tax_amount", totals.tax, conf("tax_amount"));
    out.e.total_amount = out.keep("total_amount", totals.total, conf("total_amount"));
    out.e.amount_due = out.keep("amount_due", totals.due, conf("amount_due"));
    if !totals.taxes.is_empty() && out.e.net_amount.is_some() && out.e.tax_amount.is_some() {
        out.e.taxes = Some(totals.taxes.clone());
    }
    for check in &totals.checks {
        out.e.push_check(check.clone());
    }
    for w in &totals.warnings {
        out.e.push_warning(w.clone());
    }
    if let Some(w) = totals.withholding {
        out.e.push_warning(format!("a withholding (IRPF) of {w} lowers the amount due"));
    }

    // Currency: what the page shows; else EUR for a euro-area supplier whose page shows amounts (module doc).
    let detected = currency::detect(&layout);
    let euro_supplier = parties.supplier.tax_id.as_ref().is_some_and(|f| EURO_COUNTRIES.contains(&f.value.country()));
    let (cur, cur_conf) = match detected {
        Some((c, k)) => (Some(c.to_string()), k),
        None if euro_supplier && out.e.total_amount.is_some() => (Some("EUR".to_string()), 0.6),
        None => (None, 0.0),
    };
    out.e.currency = out.keep("currency", cur, cur_conf);

    line_items(&mut out.e, &layout, hint);

    let confidence = std::mem::take(&mut out.confidence);
    let mut e = out.e;
    if !confidence.is_empty() {
        e.confidence = Some(confidence);
    }
    e
}

/// The extraction being filled, with the rule that a field is only kept when sure enough.
struct Output {
    e: Extraction,
    confidence: BTreeMap<String, f32>,
    factor: f32,
}

impl Output {
    fn keep<T>(&mut self, name: &str, value: Option<T>, confidence: f32) -> Option<T> {
        let c = (confidence * self.factor).clamp(0.0, 1.0);
        let value = value.filter(|_| c >= MIN_CONFIDENCE)?;
        self.confidence.insert(name.to_string(), (c * 100.0).round() / 100.0);
        Some(value)
    }

    fn found<T>(&mut self, name: &str, found: Option<Found<T>>) -> Option<T> {
        let f = found?;
        self.keep(name, Some(f.value), f.confidence)
    }

    fn party(&mut self, role: &str, p: &PartyFound, source: Source) -> Option<Party> {
        // A letterhead line `Acme Ltd · Victoria Road 47 · Manchester M1 2HF` read as a whole: the name is its
        // first part.
        let name = p.name.clone().map(|mut f| {
            if let Some((first, _)) = f.value.split_once(['·', '|', '•', '●']) {
                let first = first.trim();
                if first.chars().filter(|c| c.is_alphabetic()).count() >= 2 {
                    f.value = first.to_string();
                }
            }
            f
        });
        let name = name.filter(|f| {
            let ok = plausible_name(&f.value);
            if !ok {
                self.e.push_warning(format!(
                    "{role} name {:?} reads like a title or an amount; it was not kept",
                    f.value
                ));
            }
            ok
        });
        let name = name.and_then(|f| self.keep(&format!("{role}.name"), Some(f.value), f.confidence));
        // OCR may turn one digit into another that still passes no check: only verified IDs are kept from it.
        let tax = p.tax_id.clone().filter(|f| source != Source::Ocr || f.value.checksum_verified());
        let tax = tax.and_then(|f| self.keep(&format!("{role}.tax_id"), Some(f.value), f.confidence));
        let (tax_id, country) = match tax {
            Some(t) => (Some(t.as_printed()), Some(t.country().to_string())),
            // What the page prints, check digit failed: reported with a failed check, never from OCR.
            None if source != Source::Ocr => {
                let printed = p.unchecked_tax_id.clone();
                (printed.and_then(|f| self.keep(&format!("{role}.tax_id"), Some(f.value), f.confidence)), None)
            }
            None => (None, None),
        };
        let party = Party { name, country, tax_id, iban: None };
        (!party.is_empty()).then_some(party)
    }
}

/// Dates no issuer prints: an issue date in the future (beyond a few days of clock skew and post-dated
/// invoices), before 1990, a due date before the issue date, or one decades away from it. Returns the fields to
/// drop with the reason. When OCR reads the due date before the issue date one of the two is misread and we
/// cannot tell which: both go. A text layer prints what the issuer wrote (specimen invoices do fall due before
/// their date), so there both stay, with a warning.
fn implausible_dates(
    issue: Option<NaiveDate>,
    due: Option<NaiveDate>,
    today: NaiveDate,
    ocr: bool,
) -> Vec<(&'static str, String)> {
    let mut drop = Vec::new();
    let floor = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or(NaiveDate::MIN);
    let issue_ok = issue.filter(|d| {
        let ok = *d >= floor && *d <= today + chrono::Days::new(7);
        if !ok {
            drop.push(("issue_date", format!("the issue date {d} is not plausible; it was not kept")));
        }
        ok
    });
    if let (Some(i), Some(d)) = (issue_ok, due) {
        if d < i && ocr {
            drop.push(("issue_date", format!("the due date {d} reads before the issue date {i}; neither was kept")));
            drop.push(("due_date", String::new()));
        } else if d < i {
            drop.push(("", format!("the due date {d} is before the issue date {i}")));
        } else if (d - i).num_days() > 3 * 366 {
            drop.push(("due_date", format!("the due date {d} is years after the issue date {i}; it was not kept")));
        }
    } else if let Some(d) = due.filter(|d| *d < floor) {
        drop.push(("due_date", format!("the due date {d} is not plausible; it was not kept")));
    }
    drop
}

/// The supplier and the customer are two parties: a name or tax ID that both would have is one of them read
/// in the other's place (the addressee window read as the letterhead, say). The less sure side loses it; when
/// both are equally sure, neither keeps it.
fn separate_parties(out: &mut Output) {
    let (Some(s), Some(c)) = (out.e.supplier.as_ref(), out.e.customer.as_ref()) else {
        return;
    };
    let same_name = match (&s.name, &c.name) {
        (Some(a), Some(b)) => {
            let (a, b) = (name_key(a), name_key(b));
            !a.is_empty() && !b.is_empty() && (a.contains(&b) || b.contains(&a))
        }
        _ => false,
    };
    let same_id = match (&s.tax_id, &c.tax_id) {
        (Some(a), Some(b)) => {
            let (a, b) = (name_key(a), name_key(b));
            a == b || a.ends_with(&b) || b.ends_with(&a)
        }
        _ => false,
    };
    for (same, field) in [(same_name, "name"), (same_id, "tax_id")] {
        if !same {
            continue;
        }
        let conf = |role: &str| out.confidence.get(&format!("{role}.{field}")).copied().unwrap_or(0.0);
        let (cs, cc) = (conf("supplier"), conf("customer"));
        for role in ["supplier", "customer"] {
            let (mine, theirs) = if role == "supplier" { (cs, cc) } else { (cc, cs) };
            if mine > theirs {
                continue;
            }
            let party = if role == "supplier" { &mut out.e.supplier } else { &mut out.e.customer };
            if let Some(p) = party.as_mut() {
                if field == "name" {
                    p.name = None;
                } else {
                    p.tax_id = None;
                    p.country = None;
                }
            }
            out.confidence.remove(&format!("{role}.{field}"));
        }
        out.e.push_warning(format!("supplier and customer read with the same {field}; the less sure one was dropped"));
    }
    for party in [&mut out.e.supplier, &mut out.e.customer] {
        if party.as_ref().is_some_and(Party::is_empty) {
            *party = None;
        }
    }
}

/// A party's name holds no document-title word (`Factura`, `Invoice`, `Rechnung`) and no amount or currency
/// sign: such a line is the title or a total read in the name's place.
fn plausible_name(name: &str) -> bool {
    static TITLE: LazyLock<Regex> = LazyLock::new(|| {
        super::rules::regex(
            r"\b(?:factura|invoice|[a-z]*rechnung|facture|factuur|fattura|fatura|gutschrift|avoir|receipt|ticket|recibo|quittung|kassenbon|total|totale|totaal|summe|subtotal)\b",
        )
    });
    static AMOUNT: LazyLock<Regex> = LazyLock::new(|| super::rules::regex(r"[0-9][.,][0-9]{2}\b"));
    // `Bahnhofstraße 38`, `Victoria Road 28`, `Via Garibaldi 92`: a street and house number is the address line
    // under a name, read in its place. A company name with a legal form may end in a number (`Studio 54 S.L.`
    // does not), so only names without one are judged.
    static HOUSE_NUMBER: LazyLock<Regex> =
        LazyLock::new(|| super::rules::regex(r"^[^0-9]+\s[0-9]{1,4}[a-z]?(?:[-/][0-9]{1,4})?$"));
    // A field's label read in the name's place (`Nom`, `Descrizione`, `Adresse de facturation`, `N° TVA
    // intracommunautaire`), or OCR's scraps of a name (`AI A`, `DE IE`: no word of three letters).
    static LABEL: LazyLock<Regex> = LazyLock::new(|| {
        super::rules::regex(
            r"^(?:nom|name|nombre|nome|naam|raison\s+sociale|descrizione|description|descripcion|descricao|beschreibung|bezeichnung|omschrijving|adresse|address|direccion|indirizzo|morada|anschrift|n[o°º]?\.?\s*(?:tva|vat|iva|btw)|tva|vat|iva|btw)\b",
        )
    });
    let folded = fold(name);
    let legal_form = super::rules::parties::has_legal_form(name);
    if HOUSE_NUMBER.is_match(folded.trim()) && !legal_form {
        return false;
    }
    let longest_word = folded.split(|c: char| !c.is_alphabetic()).map(|w| w.chars().count()).max().unwrap_or(0);
    if !legal_form && (LABEL.is_match(folded.trim()) || longest_word < 3) {
        return false;
    }
    // `W A R E N R E C H N U N G`: a title set in spaced capitals, read as one word.
    let words: Vec<&str> = folded.split_whitespace().collect();
    let spaced = words.len() >= 4 && words.iter().filter(|w| w.chars().count() == 1).count() * 4 >= words.len() * 3;
    let joined: String = if spaced { words.concat() } else { folded.clone() };
    !spaced
        && !TITLE.is_match(&joined)
        && !AMOUNT.is_match(name)
        && !name.chars().any(|c| matches!(c, '€' | '$' | '£' | '₹' | '¥'))
}

/// An invoice number read by OCR looks like one: at least three letters or digits, one of them a digit.
fn plausible_ocr_number(n: &str) -> bool {
    let alnum = n.chars().filter(|c| c.is_alphanumeric()).count();
    alnum >= 3 && n.chars().any(|c| c.is_ascii_digit())
}

/// Letters and digits only, folded.
fn name_key(s: &str) -> String {
    fold(s).chars().filter(|c| c.is_alphanumeric()).collect()
}

fn tax_id_checks(e: &mut Extraction, supplier: &PartyFound, customer: &PartyFound, bad: &[String]) {
    for (role, p) in [("supplier", supplier), ("customer", customer)] {
        if let Some(f) = &p.tax_id {
            let id = &f.value;
            let detail = if id.checksum_verified() {
                format!("{role} tax id {} passes its check digit", id.as_printed())
            } else {
                format!(
                    "{role} tax id {} has the format of {} but no check digit we can verify",
                    id.as_printed(),
                    id.country()
                )
            };
            e.push_check(Check::new("tax_id_checksum", true, Some(detail)));
        }
    }
    for b in bad {
        e.push_check(Check::new("tax_id_checksum", false, Some(format!("{b} fails its check digit"))));
        e.push_warning(format!("tax id {b} is printed with a wrong check digit"));
    }
}

/// Line items only when the rows multiply out and, together, make the net (or there are several of them).
fn line_items(e: &mut Extraction, layout: &Layout, hint: Option<Locale>) {
    let items = read_items(layout, hint);
    if items.is_empty() {
        return;
    }
    let sum: Decimal = items.iter().filter_map(|i| i.amount).sum();
    match e.net_amount {
        Some(net) => {
            let ok = (sum - net).abs() <= Decimal::new(2, 2);
            e.push_check(Check::new("lines_sum", ok, Some(format!("line amounts sum to {sum}, net is {net}"))));
            if ok || items.len() >= 2 {
                e.line_items = Some(items);
            }
        }
        None if items.len() >= 2 => e.line_items = Some(items),
        None => {}
    }
}

/// Compile the patterns every page needs (dates, IBANs, tax IDs, amounts, the number profile) by reading one
/// line that has each. The extractor calls this while poppler is still reading the page: compiled afterwards,
/// they would add their milliseconds to every document's wait.
pub fn prepare() {
    let sample = "Fecha 01.02.2024  2024-02-01  NIF B12345678  ES91 2100 0418 4502 0005 1332  Total 1.234,56 €";
    let layout = Layout::new(sample);
    profile(&layout, sample);
    for line in &layout.lines {
        line.amounts(0, line.masked().len(), None);
    }
}

/// How the document writes numbers and dates: the decimal separator most of its amounts use, and month-first
/// dates only when a date proves it. The language only names the locale; the separator is what matters.
pub fn profile(layout: &Layout, text: &str) -> Locale {
    static COMMA: LazyLock<Regex> = LazyLock::new(|| super::rules::regex(r"[0-9],[0-9]{2}\b"));
    static POINT: LazyLock<Regex> = LazyLock::new(|| super::rules::regex(r"[0-9]\.[0-9]{2}\b"));
    let (mut comma, mut point) = (0, 0);
    for line in &layout.lines {
        comma += COMMA.find_iter(line.masked()).count();
        point += POINT.find_iter(line.masked()).count();
    }
    let language = language(text);
    let point_decimals = point > comma || (point == comma && language == Locale::En);
    if point_decimals {
        // No date settles the order (`9/10/2020` only): amounts in US dollars and no other currency on the page
        // make it an American document, which writes the month first.
        let (dmy, _) = date_order_votes(text);
        if document_is_month_first(text) || (dmy == 0 && us_dollars(text)) {
            Locale::EnUs
        } else {
            Locale::En
        }
    } else if language == Locale::En {
        // English words with comma decimals: a continental supplier writing in English.
        Locale::De
    } else {
        language
    }
}

/// The page prices in US dollars: `USD`, or `$` with no other dollar's or currency's mark.
fn us_dollars(text: &str) -> bool {
    let others = ["AUD", "CAD", "NZD", "SGD", "HKD", "A$", "C$", "NZ$", "S$", "HK$", "€", "£", "EUR", "GBP", "MXN"];
    (text.contains("USD") || text.contains("US$") || text.contains('$')) && !others.iter().any(|o| text.contains(o))
}

/// The document's language by counting a few frequent invoice words.
fn language(text: &str) -> Locale {
    let f = fold(text);
    let words: [(Locale, &[&str]); 7] = [
        (Locale::Es, &["factura", "fecha", "importe", "iva", "cliente", "vencimiento", "base imponible", "total"]),
        (Locale::En, &["invoice", "date", "amount", "vat", "customer", "due", "subtotal", "total"]),
        (Locale::De, &["rechnung", "datum", "betrag", "mwst", "ust", "summe", "netto", "kunde"]),
        (Locale::Fr, &["facture", "date", "montant", "tva", "client", "echeance", "total ht", "ttc"]),
        (Locale::Nl, &["factuur", "datum", "bedrag", "btw", "klant", "vervaldatum", "totaal", "subtotaal"]),
        (Locale::It, &["fattura", "data", "importo", "imponibile", "cliente", "scadenza", "totale", "pagamento"]),
        (Locale::Pt, &["fatura", "data", "valor", "iva", "cliente", "vencimento", "total", "pagamento"]),
    ];
    words
        .iter()
        .map(|(l, ws)| (*l, ws.iter().map(|w| f.matches(w).count()).sum::<usize>()))
        .max_by_key(|(_, n)| *n)
        .map_or(Locale::Es, |(l, _)| l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::model::Status;
    use chrono::NaiveDate;
    use serde_json::Value;
    use std::str::FromStr;

    /// Fixtures: `tests/fixtures/text/NAME.txt` and the truth `NAME.expected.json` (schema shape).
    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                include_str!(concat!("../../tests/fixtures/text/", $name, ".txt")),
                include_str!(concat!("../../tests/fixtures/text/", $name, ".expected.json")),
            )
        };
    }

    fn fixtures() -> Vec<(&'static str, &'static str, &'static str)> {
        vec![
            fixture!("es_basic_irpf"),
            fixture!("es_rectificativa"),
            fixture!("es_two_rates"),
            fixture!("es_side_by_side"),
            fixture!("es_no_due_date"),
            fixture!("es_ticket"),
            fixture!("en_invoice"),
            fixture!("en_us_invoice"),
            fixture!("not_albaran"),
            fixture!("not_terms"),
            fixture!("not_empty"),
            fixture!("corpus_de_kraxi"),
            fixture!("corpus_de_zugferd_stylesheet"),
            fixture!("corpus_de_gnuaccounting"),
            fixture!("corpus_fr_facture"),
            fixture!("corpus_fr_akretion"),
            fixture!("corpus_en_facture_ue"),
            fixture!("corpus_de_warenrechnung"),
        ]
    }

    fn read(text: &str) -> Extraction {
        read_invoice_text("t.pdf", text, Source::PdfText, &OwnCompany::default())
    }

    fn norm_id(s: &str) -> String {
        s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
    }

    fn norm_name(s: &str) -> String {
        fold(s)
            .chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Compare one field the way `docs/evaluation.md` scores it; `None` when the expected file does not have it.
    fn compare(field: &str, want: &Value, got: &Value) -> Option<Result<(), String>> {
        if want.is_null() {
            return None;
        }
        let ok = match (field, got) {
            (_, Value::Null) => false,
            ("net_amount" | "tax_amount" | "total_amount" | "amount_due", Value::String(g)) => {
                Decimal::from_str(want.as_str()?).ok() == Decimal::from_str(g).ok()
            }
            ("supplier.name" | "customer.name", Value::String(g)) => {
                let (a, b) = (norm_name(want.as_str()?), norm_name(g));
                let (la, lb) = (a.chars().count(), b.chars().count());
                a == b
                    || (a.contains(&b) || b.contains(&a)) && la.min(lb) * 10 >= la.max(lb) * 6
                    || strsim::normalized_levenshtein(&a, &b) >= 0.85
            }
            ("invoice_number" | "supplier.tax_id" | "customer.tax_id", Value::String(g)) => {
                let (a, b) = (norm_id(want.as_str()?), norm_id(g));
                a == b || (a.len() == b.len() + 2 && a.ends_with(&b)) || (b.len() == a.len() + 2 && b.ends_with(&a))
            }
            ("document_type", Value::String(g)) => {
                let credit = |s: &str| s == "credit_note" || s == "corrected_invoice";
                want.as_str() == Some(g.as_str()) || (credit(g) && credit(want.as_str()?))
            }
            (_, g) => g == want,
        };
        Some(if ok { Ok(()) } else { Err(format!("{field}: want {want}, got {got}")) })
    }

    fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
        path.split('.').fold(v, |v, k| v.get(k).unwrap_or(&Value::Null))
    }

    const FIELDS: &[&str] = &[
        "invoice_number",
        "issue_date",
        "due_date",
        "currency",
        "document_type",
        "supplier.name",
        "supplier.tax_id",
        "supplier.iban",
        "customer.name",
        "customer.tax_id",
        "net_amount",
        "tax_amount",
        "total_amount",
        "amount_due",
    ];

    #[test]
    fn every_fixture_reads_as_its_expected_json_and_invents_nothing() {
        for (name, text, expected) in fixtures() {
            let want: Value = serde_json::from_str(expected).expect("expected json");
            let got = serde_json::to_value(read(text)).expect("json");
            assert_eq!(got["status"], want.get("status").cloned().unwrap_or(Value::from("ok")), "{name}: status");
            if let Some(code) = want.get("error").and_then(|e| e.get("code")) {
                assert_eq!(&got["error"]["code"], code, "{name}");
                continue;
            }
            // Corpus fixtures carry the e-invoice XML's truth, which a page does not always show: a missing field
            // is allowed there, a wrong one never.
            let lenient = name.starts_with("corpus_");
            for field in FIELDS {
                let (w, g) = (get(&want, field), get(&got, field));
                match compare(field, w, g) {
                    Some(Err(_)) if lenient && g.is_null() => {}
                    Some(Err(e)) => panic!("{name}: {e}"),
                    Some(Ok(())) => {}
                    // A field the page does not show must stay empty: "no field is ever invented".
                    None if want
                        .get("absent")
                        .and_then(|a| a.as_array())
                        .is_some_and(|a| a.contains(&Value::from(*field))) =>
                    {
                        assert!(g.is_null(), "{name}: {field} must be absent, got {g}");
                    }
                    None => {}
                }
            }
        }
    }

    #[test]
    fn a_spanish_invoice_with_irpf_keeps_the_total_before_withholding() {
        let e = read(include_str!("../../tests/fixtures/text/es_basic_irpf.txt"));
        assert_eq!(e.total_amount, Decimal::from_str("1210.00").ok());
        assert_eq!(e.amount_due, Decimal::from_str("1060.00").ok());
        assert!(e.checks.iter().flatten().any(|c| c.name == "totals_add_up" && c.ok));
    }

    #[test]
    fn an_invoice_without_due_date_or_customer_tax_id_leaves_them_empty() {
        let e = read(include_str!("../../tests/fixtures/text/es_no_due_date.txt"));
        assert_eq!(e.status, Status::Ok);
        assert_eq!(e.due_date, None);
        assert!(e.customer.as_ref().is_none_or(|c| c.tax_id.is_none()));
    }

    #[test]
    fn a_delivery_note_and_terms_and_conditions_are_not_invoices() {
        for text in [
            include_str!("../../tests/fixtures/text/not_albaran.txt"),
            include_str!("../../tests/fixtures/text/not_terms.txt"),
            "",
            "   \n\n  ",
        ] {
            let e = read(text);
            assert_eq!(e.error.map(|e| e.code), Some(ErrorCode::NoInvoiceFound));
            assert_eq!(e.total_amount, None);
        }
    }

    #[test]
    fn our_own_company_is_not_reported_as_supplier() {
        let own = OwnCompany { names: vec!["Distribuciones Norte S.A.".into()], tax_ids: vec!["A58818501".into()] };
        let e = read_invoice_text(
            "f.pdf",
            include_str!("../../tests/fixtures/text/es_side_by_side.txt"),
            Source::PdfText,
            &own,
        );
        let supplier = e.supplier.expect("supplier");
        assert_ne!(supplier.tax_id.as_deref(), Some("A58818501"));
        assert_ne!(supplier.name.as_deref(), Some("Distribuciones Norte S.A."));
    }

    #[test]
    fn ocr_text_gets_lower_confidence_than_a_text_layer() {
        let text = include_str!("../../tests/fixtures/text/es_basic_irpf.txt");
        let pdf = read(text);
        let ocr = read_invoice_text("s.png", text, Source::Ocr, &OwnCompany::default());
        let c = |e: &Extraction| e.confidence.as_ref().and_then(|c| c.get("total_amount").copied()).unwrap_or(0.0);
        assert!(c(&ocr) < c(&pdf));
        assert_eq!(ocr.source, Some(Source::Ocr));
    }

    #[test]
    fn confidences_stay_between_the_threshold_and_one() {
        for (name, text, _) in fixtures() {
            let e = read(text);
            for (field, c) in e.confidence.iter().flatten() {
                assert!((MIN_CONFIDENCE..=1.0).contains(c), "{name}: {field} = {c}");
            }
        }
    }

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn an_issue_date_in_the_future_or_after_its_due_date_is_not_kept() {
        let today = ymd(2025, 6, 1);
        let fields = |i, d| implausible_dates(i, d, today, true).into_iter().map(|(f, _)| f).collect::<Vec<_>>();
        assert!(fields(Some(ymd(2025, 5, 31)), Some(ymd(2025, 6, 30))).is_empty());
        assert!(fields(Some(ymd(2025, 6, 5)), None).is_empty(), "a few days ahead is clock skew");
        assert_eq!(fields(Some(ymd(2026, 5, 1)), None), vec!["issue_date"], "a year ahead");
        assert_eq!(fields(Some(ymd(1925, 5, 1)), None), vec!["issue_date"], "a century back");
        assert_eq!(fields(Some(ymd(2025, 5, 1)), Some(ymd(2025, 4, 1))), vec!["issue_date", "due_date"]);
        assert_eq!(fields(Some(ymd(2025, 5, 1)), Some(ymd(2045, 5, 1))), vec!["due_date"], "decades apart");
        // A text layer's due date before its issue date is what the issuer printed: kept, with a warning.
        let text = implausible_dates(Some(ymd(2025, 5, 1)), Some(ymd(2025, 4, 1)), today, false);
        assert_eq!(text.iter().map(|(f, _)| *f).collect::<Vec<_>>(), vec![""]);
    }

    #[test]
    fn a_scans_one_or_two_character_invoice_number_is_left_empty() {
        let text =
            "Acme S.L.\nNIF: B12345674\n\nFACTURA\nFactura nº: 1\nFecha: 02/03/2025\n\nTotal factura      121,00 €\n";
        let own = OwnCompany::default();
        let scan = read_invoice_text("x.png", text, Source::Ocr, &own);
        assert_eq!(scan.invoice_number, None, "{scan:?}");
        assert_eq!(scan.total_amount, Some(Decimal::new(12100, 2)));
        // The same page from a text layer prints what the issuer wrote.
        assert_eq!(read(text).invoice_number.as_deref(), Some("1"));
        assert!(plausible_ocr_number("F-12") && plausible_ocr_number("2024001") && !plausible_ocr_number("A1"));
    }

    #[test]
    fn a_party_name_is_never_a_title_or_an_amount() {
        assert!(plausible_name("Contoso, Ltd."));
        assert!(plausible_name("Talleres Ejemplo S.L."));
        assert!(!plausible_name("FACTURA SIMPLIFICADA"));
        assert!(!plausible_name("Rechnung"));
        assert!(!plausible_name("W A R E N R E C H N U N G"), "a spaced-out title");
        assert!(!plausible_name("Kostenrechnung"));
        assert!(!plausible_name("Acme 1.234,56"));
        assert!(!plausible_name("Total € 12"));
        // A street and house number read in the name's place; a company with a legal form keeps its number.
        for address in
            ["Bahnhofstraße 38", "Victoria Road 28", "Via Garibaldi 92", "boulevard Victor Hugo 25", "Rua do Carmo 51"]
        {
            assert!(!plausible_name(address), "{address}");
        }
        assert!(plausible_name("Studio 54 S.L."));
        assert!(plausible_name("Harbour Print & Design Ltd"));
        // A label read in the name's place, and OCR's scraps of a name.
        for label in ["Nom", "Descrizione", "Adresse de facturat", "N° TVA intracommunautaire", "AI A", "DE IE"] {
            assert!(!plausible_name(label), "{label}");
        }
        assert!(plausible_name("Nomad Outdoor GmbH"), "a word that starts like a label");
        assert!(plausible_name("AB AS"), "short words with a legal form");
        assert!(plausible_name("Ana Gil"));
        // The page below names no supplier but its title; the title is not kept as a name.
        let e = read("FACTURA\n\nFactura nº: F-2025-7\nFecha: 02/03/2025\n\nTotal factura      121,00 €\n");
        assert!(e.supplier.as_ref().and_then(|s| s.name.as_ref()).is_none(), "{:?}", e.supplier);
    }

    #[test]
    fn supplier_and_customer_never_share_a_name_or_a_tax_id() {
        let mut out = Output { e: Extraction::empty("t.pdf"), confidence: BTreeMap::new(), factor: 1.0 };
        let party = |name: &str, id: &str| Party {
            name: Some(name.into()),
            tax_id: Some(id.into()),
            country: Some("ES".into()),
            iban: None,
        };
        // The addressee window read as the letterhead: the customer's own block is the surer reading.
        out.e.supplier = Some(party("Distribuciones Norte S.A.", "ESA58818501"));
        out.e.customer = Some(party("Distribuciones Norte, S.A.", "A58818501"));
        out.confidence.extend([
            ("supplier.name".to_string(), 0.65),
            ("customer.name".to_string(), 0.85),
            ("supplier.tax_id".to_string(), 0.9),
            ("customer.tax_id".to_string(), 0.9),
        ]);
        separate_parties(&mut out);
        assert_eq!(out.e.supplier, None, "the supplier keeps neither the window's name nor its tax ID");
        let customer = out.e.customer.expect("customer");
        assert_eq!(customer.name.as_deref(), Some("Distribuciones Norte, S.A."));
        assert_eq!(customer.tax_id, None, "equally sure: neither side keeps the shared tax ID");
        assert_eq!(out.e.warnings.iter().flatten().count(), 2);
    }

    #[test]
    fn a_page_without_a_title_word_has_no_document_type_rather_than_unknown() {
        let e = read("Acme Trading Ltd\n\nNo.: 4711\nDate: 02/03/2025\n\nTotal      121.00\n");
        assert_eq!(e.status, Status::Ok);
        assert_eq!(e.invoice_number.as_deref(), Some("4711"));
        assert_eq!(e.document_type, None);
    }

    #[test]
    fn a_till_slip_without_customer_is_a_receipt_and_with_one_an_invoice() {
        let slip = "SUPERMERCADOS LUNA S.L.\nNIF: B12345674\nFACTURA SIMPLIFICADA  Nº T-18873\nFecha: 12/08/2025\n\nTOTAL            5,50\nEntregado       10,00\nCambio           4,50\n";
        assert_eq!(read(slip).document_type, Some(DocumentType::Receipt));
        let named = format!("{slip}\nCliente: Distribuciones Norte S.A.\nCIF: A58818501\n");
        assert_eq!(read(&named).document_type, Some(DocumentType::Invoice));
    }

    #[test]
    fn a_labelled_tax_id_with_a_failing_check_digit_is_kept_with_a_warning() {
        let e = read("Acme S.L.\nNIF: B12345675\n\nFactura nº: F-1\nFecha: 02/03/2025\nTotal factura   121,00 €\n");
        assert_eq!(e.supplier.and_then(|s| s.tax_id).as_deref(), Some("B12345675"));
        assert!(e.warnings.iter().flatten().any(|w| w.contains("B12345675")));
        assert!(e.checks.iter().flatten().any(|c| c.name == "tax_id_checksum" && !c.ok));
    }

    #[test]
    fn an_english_page_in_us_dollars_writes_the_month_first_unless_a_date_says_otherwise() {
        let us = "Date: 9/10/2020\nTotal   $5,150.00\n";
        assert_eq!(profile(&Layout::new(us), us), Locale::EnUs);
        let au = "Date: 9/10/2020\nTotal   AUD 5,150.00\n";
        assert_eq!(profile(&Layout::new(au), au), Locale::En);
        let proven = "Date: 9/10/2020\nDue: 25/10/2020\nTotal   $5,150.00\n";
        assert_eq!(profile(&Layout::new(proven), proven), Locale::En);
    }

    #[test]
    fn the_issue_date_of_an_american_invoice_is_month_first() {
        let e = read(include_str!("../../tests/fixtures/text/en_us_invoice.txt"));
        assert_eq!(e.issue_date, NaiveDate::from_ymd_opt(2025, 3, 4));
    }
}
