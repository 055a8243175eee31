//! What an accountant's mail asks for: lines such as `total: 512,00`, `número: F-2025-17` or `aprobar`, in any of
//! the languages we answer in, and the rest as a note. Only the accountant's own text counts: quoted lines (`>`)
//! and everything after the quote header of the mail they answer ("El … escribió:", "On … wrote:") or their
//! signature (`-- `) are left out. Pure: text in, instructions out.

/// One thing the accountant asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// Set a field (named as in the schema) to the value as written; `correct::apply` checks it.
    Correct {
        field: &'static str,
        value: String,
    },
    Approve,
}

/// An accountant's mail, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub instructions: Vec<Instruction>,
    /// The other lines of their own text, for a note on the invoice (empty when there are none).
    pub note: String,
    /// All lines of their own text, instructions included.
    pub own_text: String,
    /// The language of the words they used, when one says it (`es`, `en`, `de`, `fr`, `nl`, `it`, `pt`).
    pub language: Option<&'static str>,
}

/// Field labels an accountant may write, lower-case, with the language each is specific to (`None` when several
/// languages write it so). The schema's own names are accepted too.
const LABELS: &[(&str, &str, Option<&str>)] = &[
    ("total", "total_amount", None),
    ("importe total", "total_amount", Some("es")),
    ("total factura", "total_amount", Some("es")),
    ("total amount", "total_amount", Some("en")),
    ("gesamtbetrag", "total_amount", Some("de")),
    ("gesamt", "total_amount", Some("de")),
    ("summe", "total_amount", Some("de")),
    ("montant total", "total_amount", Some("fr")),
    ("total ttc", "total_amount", Some("fr")),
    ("totaal", "total_amount", Some("nl")),
    ("totaalbedrag", "total_amount", Some("nl")),
    ("totale", "total_amount", Some("it")),
    ("importo totale", "total_amount", Some("it")),
    ("valor total", "total_amount", Some("pt")),
    ("base", "net_amount", None),
    ("base imponible", "net_amount", Some("es")),
    ("neto", "net_amount", Some("es")),
    ("net", "net_amount", None),
    ("net amount", "net_amount", Some("en")),
    ("netto", "net_amount", None),
    ("nettobetrag", "net_amount", Some("de")),
    ("montant ht", "net_amount", Some("fr")),
    ("total ht", "net_amount", Some("fr")),
    ("imponibile", "net_amount", Some("it")),
    ("base tributável", "net_amount", Some("pt")),
    ("iva", "tax_amount", None),
    ("cuota", "tax_amount", Some("es")),
    ("cuota iva", "tax_amount", Some("es")),
    ("vat", "tax_amount", Some("en")),
    ("tax", "tax_amount", Some("en")),
    ("mwst", "tax_amount", Some("de")),
    ("ust", "tax_amount", Some("de")),
    ("tva", "tax_amount", Some("fr")),
    ("btw", "tax_amount", Some("nl")),
    ("imposta", "tax_amount", Some("it")),
    ("a pagar", "amount_due", None),
    ("total a pagar", "amount_due", None),
    ("amount due", "amount_due", Some("en")),
    ("zahlbetrag", "amount_due", Some("de")),
    ("net à payer", "amount_due", Some("fr")),
    ("te betalen", "amount_due", Some("nl")),
    ("da pagare", "amount_due", Some("it")),
    ("número", "invoice_number", None),
    ("numero", "invoice_number", None),
    ("nº", "invoice_number", None),
    ("n.º", "invoice_number", None),
    ("número de factura", "invoice_number", Some("es")),
    ("number", "invoice_number", Some("en")),
    ("invoice number", "invoice_number", Some("en")),
    ("nummer", "invoice_number", None),
    ("rechnungsnummer", "invoice_number", Some("de")),
    ("numéro", "invoice_number", Some("fr")),
    ("n°", "invoice_number", Some("fr")),
    ("numéro de facture", "invoice_number", Some("fr")),
    ("factuurnummer", "invoice_number", Some("nl")),
    ("numero fattura", "invoice_number", Some("it")),
    ("número da fatura", "invoice_number", Some("pt")),
    ("fecha", "issue_date", Some("es")),
    ("fecha de emisión", "issue_date", Some("es")),
    ("fecha factura", "issue_date", Some("es")),
    ("date", "issue_date", None),
    ("issue date", "issue_date", Some("en")),
    ("invoice date", "issue_date", Some("en")),
    ("datum", "issue_date", None),
    ("rechnungsdatum", "issue_date", Some("de")),
    ("date de facture", "issue_date", Some("fr")),
    ("factuurdatum", "issue_date", Some("nl")),
    ("data", "issue_date", None),
    ("data fattura", "issue_date", Some("it")),
    ("data de emissão", "issue_date", Some("pt")),
    ("vencimiento", "due_date", Some("es")),
    ("fecha de vencimiento", "due_date", Some("es")),
    ("due date", "due_date", Some("en")),
    ("due", "due_date", Some("en")),
    ("fällig", "due_date", Some("de")),
    ("fälligkeit", "due_date", Some("de")),
    ("échéance", "due_date", Some("fr")),
    ("vervaldatum", "due_date", Some("nl")),
    ("scadenza", "due_date", Some("it")),
    ("vencimento", "due_date", Some("pt")),
    ("nif", "supplier.tax_id", None),
    ("cif", "supplier.tax_id", Some("es")),
    ("vat id", "supplier.tax_id", Some("en")),
    ("tax id", "supplier.tax_id", Some("en")),
    ("ust-idnr", "supplier.tax_id", Some("de")),
    ("ust-id", "supplier.tax_id", Some("de")),
    ("n° tva", "supplier.tax_id", Some("fr")),
    ("btw-nummer", "supplier.tax_id", Some("nl")),
    ("partita iva", "supplier.tax_id", Some("it")),
    ("proveedor", "supplier.name", Some("es")),
    ("emisor", "supplier.name", Some("es")),
    ("supplier", "supplier.name", Some("en")),
    ("lieferant", "supplier.name", Some("de")),
    ("fournisseur", "supplier.name", Some("fr")),
    ("leverancier", "supplier.name", Some("nl")),
    ("fornitore", "supplier.name", Some("it")),
    ("fornecedor", "supplier.name", Some("pt")),
    ("iban", "supplier.iban", None),
    ("cliente", "customer.name", None),
    ("customer", "customer.name", Some("en")),
    ("nif cliente", "customer.tax_id", Some("es")),
    ("moneda", "currency", Some("es")),
    ("divisa", "currency", Some("es")),
    ("currency", "currency", Some("en")),
    ("währung", "currency", Some("de")),
    ("devise", "currency", Some("fr")),
    ("valuta", "currency", None),
    ("moeda", "currency", Some("pt")),
];

/// A line that is only one of these words approves the invoice.
const APPROVALS: &[(&str, Option<&str>)] = &[
    ("aprobar", Some("es")),
    ("aprobada", Some("es")),
    ("aprobado", Some("es")),
    ("apruebo", Some("es")),
    ("approve", Some("en")),
    ("approved", Some("en")),
    ("genehmigt", Some("de")),
    ("genehmigen", Some("de")),
    ("freigeben", Some("de")),
    ("freigegeben", Some("de")),
    ("approuver", Some("fr")),
    ("approuvé", Some("fr")),
    ("approuvée", Some("fr")),
    ("goedkeuren", Some("nl")),
    ("goedgekeurd", Some("nl")),
    ("approvare", Some("it")),
    ("approvato", Some("it")),
    ("approvata", Some("it")),
    ("aprovar", Some("pt")),
    ("aprovado", Some("pt")),
    ("aprovada", Some("pt")),
];

/// The line that starts the quoted mail in the languages' mail clients, or an old-style separator.
fn starts_quote(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    let header = |start: &str, end: &str| l.starts_with(start) && l.ends_with(end);
    header("on ", "wrote:")
        || header("el ", "escribió:")
        || header("am ", "schrieb:")
        || header("le ", "a écrit :")
        || header("le ", "a écrit:")
        || header("op ", "schreef:")
        || header("il ", "ha scritto:")
        || header("em ", "escreveu:")
        || (l.starts_with("-----") && l.ends_with("-----"))
        || l == "________________________________"
}

/// Read the accountant's own text out of a mail body.
pub fn parse(body: &str) -> Request {
    let mut req = Request::default();
    let mut note: Vec<&str> = Vec::new();
    let mut own: Vec<&str> = Vec::new();
    for line in body.lines() {
        if line == "-- " || starts_quote(line) {
            break;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('>') {
            continue;
        }
        own.push(trimmed);
        match instruction(trimmed) {
            Some((i, language)) => {
                req.language = req.language.or(language);
                req.instructions.push(i);
            }
            None => note.push(trimmed),
        }
    }
    req.note = note.join("\n");
    req.own_text = own.join("\n");
    req
}

fn instruction(line: &str) -> Option<(Instruction, Option<&'static str>)> {
    let word = line.trim_end_matches(['.', '!']).trim().to_lowercase();
    if let Some((_, language)) = APPROVALS.iter().find(|(w, _)| *w == word) {
        return Some((Instruction::Approve, *language));
    }
    let (label, value) = line.split_once(':').or_else(|| line.split_once('='))?;
    let label = label.trim().trim_end_matches('.').to_lowercase();
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let known = LABELS.iter().find(|(l, _, _)| *l == label).map(|(_, field, language)| (*field, *language));
    let schema = || super::correct::FIELDS.iter().find(|f| **f == label).map(|f| (*f, None));
    let (field, language) = known.or_else(schema)?;
    Some((Instruction::Correct { field, value: value.to_string() }, language))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn correct(field: &'static str, value: &str) -> Instruction {
        Instruction::Correct { field, value: value.into() }
    }

    #[test]
    fn corrections_and_an_approval_in_the_accountants_words() {
        let body = "total: 512,00\nNúmero: F-2025-17\n\nAprobar.\n\n-- \nAna\nContabilidad\n";
        let r = parse(body);
        assert_eq!(
            r.instructions,
            [correct("total_amount", "512,00"), correct("invoice_number", "F-2025-17"), Instruction::Approve]
        );
        assert_eq!((r.note.as_str(), r.language), ("", Some("es")));
        assert_eq!(r.own_text, "total: 512,00\nNúmero: F-2025-17\nAprobar.");

        let r = parse("Gesamtbetrag: 512,00\nfreigegeben\n");
        assert_eq!(r.instructions, [correct("total_amount", "512,00"), Instruction::Approve]);
        assert_eq!(r.language, Some("de"));
        assert_eq!(parse("supplier.tax_id = B12345674").instructions, [correct("supplier.tax_id", "B12345674")]);
        assert_eq!(parse("approved").language, Some("en"));
    }

    #[test]
    fn the_quoted_confirmation_and_other_text_are_not_instructions() {
        let body = "El proveedor dice que el total correcto es otro.\nLlamo mañana.\n\n\
                    El 5 dic 2026, a las 9:00, intake@example.test escribió:\n> Total: 1210,00\n> aprobar\n";
        let r = parse(body);
        assert!(r.instructions.is_empty(), "{r:?}");
        assert_eq!(r.note, "El proveedor dice que el total correcto es otro.\nLlamo mañana.");
        let r =
            parse("> total: 1,00\nTotal del pedido revisado\nOn Fri, Dec 5, 2026 at 9:00 AM intake wrote:\ntotal: 5");
        assert!(r.instructions.is_empty(), "{r:?}");
        assert_eq!(r.note, "Total del pedido revisado");
        // A label we do not know is text, not a correction.
        assert!(parse("Referencia: 123").instructions.is_empty());
    }
}
