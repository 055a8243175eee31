//! What kind of document this is, read from its title words.
//!
//! Decisions:
//! - A Spanish `factura simplificada` is an invoice (it is one in law, RD 1619/2012 art. 7), not a receipt.
//! - `ticket`, `recibo`, `receipt`, `Quittung`, `reçu`, `kassabon` make a receipt.
//! - A corrective invoice (`factura rectificativa`, `Rechnungskorrektur`) is `corrected_invoice`; a credit note
//!   (`abono`, `nota de crédito`, `credit note`, `Gutschrift`, `avoir`, `creditnota`) is `credit_note`.
//! - Delivery notes, quotes, pro-forma invoices, order confirmations and terms and conditions are not invoices:
//!   booking one would be wrong, so the caller answers `no_invoice_found`.
//!
//! Only title positions count (a segment that starts with the word, in the upper half of the page, or a short
//! segment anywhere): `Lieferschein-Nr` in an invoice's header or "Gutschriften erstatten wir per Scheck" in its
//! small print say nothing about the document itself.

use super::fold;
use super::layout::Layout;
use crate::extract::model::DocumentType;
use regex_lite::Regex;
use std::sync::LazyLock;

/// What the title words say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invoice(DocumentType),
    /// A delivery note, quote, pro-forma, order confirmation or terms and conditions; the name is for messages.
    NotAnInvoice(&'static str),
    /// No title word at all.
    Unknown,
}

const CORRECTED: &str = r"factura\s+rectificativa|rectificativa|rechnungs-?\s*korrektur|korrekturrechnung|corrective\s+invoice|corrected\s+invoice|facture\s+rectificative";
/// `CORRECTED` titles without spaces, as a title reads when OCR broke a word apart.
const CORRECTED_SQUEEZED: &[&str] =
    &["facturarectificativa", "rechnungskorrektur", "correctiveinvoice", "correctedinvoice", "facturerectificative"];
const CREDIT: &str = r"factura\s+de\s+abono|(?:nota\s+de\s+)?abono|nota\s+d[ei]\s+cr[eé]dito|facture\s+d['’]avoir|credit\s+note|credit\s+memo|gutschrift|avoir|creditnota|creditfactuur";
const RECEIPT: &str = r"ticket|recibo|receipt|quittung|kassenbon|re[cç]u|kassabon";
const INVOICE: &str =
    r"factura(?:\s+simplificada)?|invoice|tax\s+invoice|[a-zß]*rechnung|facture|factuur|fattura|fatura(?:-recibo)?";
const NOT_INVOICE: &[(&str, &str)] = &[
    (
        "delivery note",
        r"albar[aá]n|nota\s+de\s+entrega|lieferschein|delivery\s+note|packing\s+(?:slip|list)|bon\s+de\s+livraison|pakbon|leveringsbon",
    ),
    ("quote", r"presupuesto|quotation|quote|angebot|kostenvoranschlag|devis|offerte"),
    ("pro-forma invoice", r"(?:factura\s+)?pro-?\s?forma(?:\s+invoice)?|proformarechnung"),
    (
        "order confirmation",
        r"confirmaci[oó]n\s+de\s+pedido|order\s+confirmation|auftragsbest[äa]tigung|confirmation\s+de\s+commande|orderbevestiging",
    ),
    (
        "terms and conditions",
        r"t[ée]rminos\s+y\s+condiciones|condiciones\s+generales|terms\s+(?:and|&)\s+conditions|general\s+terms|allgemeine\s+gesch[äa]ftsbedingungen|agb|conditions\s+g[ée]n[ée]rales|algemene\s+voorwaarden",
    ),
];

fn title_re(words: &str) -> Regex {
    // The word opens the segment and is followed by nothing, a number, `Nr.`/`nº`/`#`/`:` or more title words.
    // Titles are folded first (lower case, no accents: see `titles`), so no `(?i)` is needed.
    super::regex(&format!(
        r"^(?:{words})(?:$|\s*[:#]|(?:\s+[a-zß'’]+){{1,6}}\s+(?:n\.?[º°o]|nr\.|no\.)|\s+(?:n\.?[º°o]|nr|no|#|[0-9]|[a-z]{{1,4}}[-/]?[0-9])|\s+\(|\s+[a-zß]+$)"
    ))
}

/// A title pattern, compiled only when some title contains one of its key words: the extractor is a fresh
/// process per document, and most documents never need the credit-note or delivery-note patterns.
struct TitleWords {
    keys: &'static [&'static str],
    re: LazyLock<Regex>,
}

impl TitleWords {
    fn any(&self, titles: &[String]) -> bool {
        titles.iter().any(|t| self.keys.iter().any(|k| t.contains(k))) && titles.iter().any(|t| self.re.is_match(t))
    }
}

static CORRECTED_RE: TitleWords =
    TitleWords { keys: &["rectificativ", "korrektur", "correct"], re: LazyLock::new(|| title_re(CORRECTED)) };
static CREDIT_RE: TitleWords =
    TitleWords { keys: &["abono", "credit", "gutschrift", "avoir"], re: LazyLock::new(|| title_re(CREDIT)) };
static RECEIPT_RE: TitleWords = TitleWords {
    keys: &["ticket", "recibo", "receipt", "quittung", "kassenbon", "recu", "kassabon"],
    re: LazyLock::new(|| title_re(RECEIPT)),
};
static INVOICE_RE: TitleWords = TitleWords {
    keys: &["factura", "invoice", "rechnung", "facture", "factuur", "fattura", "fatura"],
    re: LazyLock::new(|| title_re(INVOICE)),
};
static NOT_INVOICE_RE: [(&str, TitleWords); 5] = [
    (
        NOT_INVOICE[0].0,
        TitleWords {
            keys: &["albaran", "entrega", "lieferschein", "delivery", "packing", "livraison", "pakbon", "leveringsbon"],
            re: LazyLock::new(|| title_re(NOT_INVOICE[0].1)),
        },
    ),
    (
        NOT_INVOICE[1].0,
        TitleWords {
            keys: &["presupuesto", "quot", "angebot", "kostenvoranschlag", "devis", "offerte"],
            re: LazyLock::new(|| title_re(NOT_INVOICE[1].1)),
        },
    ),
    (NOT_INVOICE[2].0, TitleWords { keys: &["forma"], re: LazyLock::new(|| title_re(NOT_INVOICE[2].1)) }),
    (
        NOT_INVOICE[3].0,
        TitleWords {
            keys: &["pedido", "confirmation", "auftragsbest", "orderbevestiging"],
            re: LazyLock::new(|| title_re(NOT_INVOICE[3].1)),
        },
    ),
    (
        NOT_INVOICE[4].0,
        TitleWords {
            keys: &["terminos", "condiciones", "conditions", "terms", "geschaftsbedingungen", "agb", "voorwaarden"],
            re: LazyLock::new(|| title_re(NOT_INVOICE[4].1)),
        },
    ),
];
/// Does the page read like a till slip? Cash tendered and change, a simplified invoice, or a receipt's own
/// title words (`ticket`, `Kassenbon`, `Cash bill`). `text::read_invoice_text` calls it a receipt only when the
/// page also names no customer (EVALUATION.md).
pub fn till_slip(layout: &Layout) -> bool {
    static TILL: LazyLock<Regex> = LazyLock::new(|| {
        super::regex(
            r"\b(?:factura\s+simplificada|simplified\s+tax\s+invoice|cash\s+(?:bill|sale|tendered|received|inv)|tendered|change\s+due|efectivo|entregado|r[uü]ckgeld|kassenbon|quittung|esp[eè]ces|rendu|ticket(?:\s+de\s+caisse)?|kassabon|wisselgeld|scontrino|contanti|resto|troco|tiquet|wechselgeld|monnaie\s+rendue)\b",
        )
    });
    layout.lines.iter().any(|l| TILL.is_match(&fold(&l.text)))
}

/// Any word that speaks of an invoice, compounds included (`Rechnungsnummer`, `Rechnungsdatum`), in folded text.
static ANY_INVOICE_WORD: LazyLock<Regex> = LazyLock::new(|| {
    super::regex(&format!(r"\b(?:{INVOICE}|{CREDIT}|{CORRECTED})\b|rechnungs|factura|invoice|\bfactur"))
});

/// Titles as plain text: letter-spaced words joined (`W A R E N R E C H N U N G` → `WARENRECHNUNG`).
///
/// A spaced word is four or more single letters with one space between each, standing alone: no letter, digit
/// or `_` touches its ends. Written out rather than as a regex because its letters are any alphabet's.
fn despaced(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let is_word = |i: usize| chars.get(i).is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_alphabetic() && (i == 0 || !is_word(i - 1)) {
            // `n` letters at i, i+2, i+4…: the run goes on while `letter space letter` does.
            let mut n = 1;
            while chars.get(i + 2 * n - 1) == Some(&' ') && chars.get(i + 2 * n).is_some_and(|c| c.is_alphabetic()) {
                n += 1;
            }
            // Its last letter must end a word; if a letter or digit follows it, the run ends one letter earlier.
            if is_word(i + 2 * n - 1) {
                n -= 1;
            }
            if n >= 4 {
                out.extend((0..n).map(|k| chars[i + 2 * k]));
                i += 2 * n - 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Segments in title position, best first.
fn titles(layout: &Layout) -> Vec<String> {
    let half = layout.len() / 2 + 1;
    let mut out = Vec::new();
    for (i, line) in layout.lines.iter().enumerate() {
        for seg in &line.segments {
            let short = seg.text.chars().count() <= 40;
            if i <= half || short {
                out.push(fold(&despaced(seg.text.trim())));
            }
        }
    }
    out
}

/// Classify a document by its title words.
pub fn classify(layout: &Layout) -> Kind {
    let titles = titles(layout);
    let any = |words: &TitleWords| words.any(&titles);
    // OCR splits long words (`RECTIFIC ATIVA`): the corrective titles are also known with the spaces out.
    let squeezed = |t: &String| t.chars().filter(|c| c.is_alphanumeric()).collect::<String>();
    let corrected_squeezed =
        titles.iter().map(squeezed).any(|t| CORRECTED_SQUEEZED.iter().any(|w| t.starts_with(w)) && t.len() <= 40);
    if corrected_squeezed || any(&CORRECTED_RE) {
        return Kind::Invoice(DocumentType::CorrectedInvoice);
    }
    let invoice_title = any(&INVOICE_RE);
    if let Some((name, _)) = NOT_INVOICE_RE.iter().find(|(_, re)| any(re)) {
        // A pro-forma says "invoice" in its own title, so that word does not save it.
        let proforma = *name == "pro-forma invoice";
        if proforma || !invoice_title {
            return Kind::NotAnInvoice(name);
        }
    }
    if any(&CREDIT_RE) {
        // "Gutschrift (Selbst ausgestellte Rechnung)" is self-billing: an invoice, not a credit note.
        let self_billing = titles.iter().any(|t| t.contains("selbst ausgestellte") || t.contains("autofactura"));
        if !self_billing {
            return Kind::Invoice(DocumentType::CreditNote);
        }
        return Kind::Invoice(DocumentType::Invoice);
    }
    if any(&RECEIPT_RE) && !invoice_title {
        return Kind::Invoice(DocumentType::Receipt);
    }
    if invoice_title {
        return Kind::Invoice(DocumentType::Invoice);
    }
    Kind::Unknown
}

/// Does the word "invoice" (in any of our languages) appear anywhere?
pub fn mentions_invoice(text: &str) -> bool {
    ANY_INVOICE_WORD.is_match(&fold(&despaced(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Kind {
        classify(&Layout::new(text))
    }

    #[test]
    fn title_words_decide_the_document_type() {
        use DocumentType::*;
        let cases: &[(&str, Kind)] = &[
            ("FACTURA\nNº: 1", Kind::Invoice(Invoice)),
            ("Factura simplificada nº T-12", Kind::Invoice(Invoice)),
            ("FACTURA RECTIFICATIVA\nNº R-1", Kind::Invoice(CorrectedInvoice)),
            ("Factura de abono nº A-3", Kind::Invoice(CreditNote)),
            ("Avoir AV-2017-0005", Kind::Invoice(CreditNote)),
            ("Credit note CN-1", Kind::Invoice(CreditNote)),
            ("Nota de abono", Kind::Invoice(CreditNote)),
            ("Nota di credito", Kind::Invoice(CreditNote)),
            ("Facture d'avoir", Kind::Invoice(CreditNote)),
            ("Fatura n.º FT A/7610", Kind::Invoice(Invoice)),
            ("Fatura de serviços de consultoria n.º FT A/7610", Kind::Invoice(Invoice)),
            ("       W A R E N R E C H N U N G       Seite 1", Kind::Invoice(Invoice)),
            ("RECHNUNGS-KORREKTUR", Kind::Invoice(CorrectedInvoice)),
            ("FACTURA RECTIFIC ATIVA", Kind::Invoice(CorrectedInvoice)),
            ("Ticket nº 0045", Kind::Invoice(Receipt)),
            ("ALBARÁN Nº 2025-77", Kind::NotAnInvoice("delivery note")),
            ("Lieferschein 4711", Kind::NotAnInvoice("delivery note")),
            ("TÉRMINOS Y CONDICIONES", Kind::NotAnInvoice("terms and conditions")),
            ("FACTURA PROFORMA nº 12", Kind::NotAnInvoice("pro-forma invoice")),
            ("Hello world", Kind::Unknown),
        ];
        for (text, want) in cases {
            assert_eq!(kind(text), *want, "{text}");
        }
    }

    #[test]
    fn a_delivery_note_number_inside_an_invoice_does_not_make_it_a_delivery_note() {
        assert_eq!(kind("RECHNUNG\nLieferschein-Nr : L87654321012345\n"), Kind::Invoice(DocumentType::Invoice));
        assert_eq!(kind("FACTURA nº 7\nAlbarán nº 2025-77\n"), Kind::Invoice(DocumentType::Invoice));
    }

    #[test]
    fn letter_spaced_words_are_joined_and_nothing_else() {
        let cases = [
            ("W A R E N R E C H N U N G", "WARENRECHNUNG"),
            ("  F A C T U R A   nº 12", "  FACTURA   nº 12"),
            ("É C H É A N C E", "ÉCHÉANCE"),
            ("A B C", "A B C"),
            ("xy A B C D", "xy ABCD"),
            ("x A B C D", "xABCD"),
            ("A B C D5", "A B C D5"),
            ("A B C D Ex", "ABCD Ex"),
            ("IVA 21 % a b c d", "IVA 21 % abcd"),
            ("Bx C D E F", "Bx CDEF"),
        ];
        for (text, want) in cases {
            assert_eq!(despaced(text), want, "{text}");
        }
    }

    #[test]
    fn self_billing_gutschrift_is_an_invoice() {
        assert_eq!(kind("Gutschrift (Selbst ausgestellte Rechnung) Nr. 471102"), Kind::Invoice(DocumentType::Invoice));
    }
}
