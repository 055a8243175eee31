//! The words that name an invoice field, in Spanish, English, German, French, Dutch, Italian and Portuguese.
//!
//! Each label carries a strength: how sure we are that a value next to it is that field. `Total` alone is weak
//! (it heads line-item columns too); `Total factura` or `Bruttosumme` are strong. Where two labels overlap the
//! longer one wins, so `Fecha de vencimiento` is a due date and never an issue date, and `Gesamtbetrag der
//! Zuschläge` is nothing at all (`Ignore`).

use regex_lite::Regex;
use std::sync::{LazyLock, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    InvoiceNumber,
    IssueDate,
    DueDate,
    Net,
    Tax,
    Total,
    /// What the customer must pay after withholdings and prepayments.
    Due,
    /// Spanish IRPF and other withholdings, which lower the amount due but not the total.
    Withholding,
    /// Advances already paid, which also lower the amount due.
    Prepaid,
    Currency,
    /// Words that look like a label of ours but name something else (`Lieferdatum`, `Gesamtbetrag der Zuschläge`).
    Ignore,
}

/// A label found in a line, with its byte range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelHit {
    pub field: Field,
    pub start: usize,
    pub end: usize,
    pub strength: f32,
}

/// `(field, pattern, strength)`; patterns are case-insensitive and matched at word boundaries.
const TABLE: &[(Field, &str, f32, &[&str])] = &[
    // Invoice number.
    // OCR reads the ordinal "nº" as "n2", "n9", "n%" or "nª": those are the same label, never a number.
    (
        Field::InvoiceNumber,
        r"(?:n\.?[º°oª29%?]{1,2}\.?|num\.?|n[úu]m(?:ero)?\.?)\s*(?:de\s+)?(?:la\s+)?factura",
        0.95,
        &["factura"],
    ),
    (
        Field::InvoiceNumber,
        r"factura(?:\s+(?:simplificada|rectificativa|de\s+abono))?\s*(?:n[º°oª29%?]{1,2}\.?|n[úu]m(?:ero)?\.?|num\.?|#)",
        0.95,
        &["factura"],
    ),
    (Field::InvoiceNumber, r"n[úu]mero\s+de\s+factura", 0.95, &["numerodefactura"]),
    (Field::InvoiceNumber, r"invoice\s*(?:no\.?|number|num\.?|nr\.?|#|id)", 0.95, &["invoice"]),
    (Field::InvoiceNumber, r"(?:credit\s+note|credit\s+memo)\s*(?:no\.?|number|#)", 0.95, &["credit"]),
    (Field::InvoiceNumber, r"rechnungs?-?\s*(?:nummer|nr\.?|no\.?)", 0.95, &["rechnung"]),
    (Field::InvoiceNumber, r"rech\.-?\s*nr\.?", 0.9, &["rech"]),
    (
        Field::InvoiceNumber,
        r"[a-zß]*rechnung(?:\s+des\s+[a-zß]+|\s*\([^)]{0,40}\))?\s+(?:nr\.?|#|nummer|no\.?)",
        0.9,
        &["rechnung"],
    ),
    (Field::InvoiceNumber, r"gutschrift\s*\([^)]{0,40}\)\s*(?:nr\.?|nummer)", 0.9, &["gutschrift"]),
    (Field::InvoiceNumber, r"gutschrift(?:s-?)?\s*(?:nr\.?|nummer)", 0.9, &["gutschrift"]),
    (Field::InvoiceNumber, r"beleg-?\s*(?:nummer|nr\.?)", 0.8, &["beleg"]),
    (Field::InvoiceNumber, r"(?:facture|avoir)\s*(?:n[°o]\.?|num[ée]ro)", 0.95, &["facture", "avoir"]),
    (Field::InvoiceNumber, r"(?:num[ée]ro|n[°o]\.?)\s+de\s+(?:la\s+)?facture", 0.95, &["facture"]),
    (Field::InvoiceNumber, r"factuur\s*(?:nummer|nr\.?|no\.?)", 0.95, &["factuur"]),
    (Field::InvoiceNumber, r"creditnota\s*(?:nummer|nr\.?)", 0.95, &["creditnota"]),
    (Field::InvoiceNumber, r"document\s*(?:no\.?|number)", 0.6, &["document"]),
    (
        Field::InvoiceNumber,
        r"(?:fattura|fatura|nota\s+di\s+credito|nota\s+de\s+cr[eé]dito)\s*(?:n\.?[º°oª]?\.?|nr\.?|num\.?|n[úu]mero|#)",
        0.95,
        &["fattura", "fatura", "nota"],
    ),
    (
        Field::InvoiceNumber,
        r"(?:n\.?[º°oª]?\.?|num\.?|n[úu]mero)\s*(?:d[ae]\s+|della\s+)?(?:fattura|fatura)",
        0.95,
        &["fattura", "fatura"],
    ),
    // The marker before the document's own word (`N. documento`, `Nº ticket`), and a till slip's `Bonnr.`.
    (
        Field::InvoiceNumber,
        r"(?:n\.?[º°oª29]?\.?|nr\.?|num\.?|n[úu]mero)\s*(?:d[eo]l?\s+)?(?:documento|ticket|tiquet|recibo|scontrino)",
        0.85,
        &["documento", "ticket", "tiquet", "recibo", "scontrino"],
    ),
    (Field::InvoiceNumber, r"bon-?\s*(?:nr\.?|nummer)|bonnr\.?|bonnummer", 0.85, &["bon", "bonnr", "bonnummer"]),
    // Issue date.
    (
        Field::IssueDate,
        r"fecha\s+(?:de\s+)?(?:expedici[oó]n|emisi[oó]n|factura(?:ci[oó]n)?)",
        0.95,
        &["expedicion", "emision", "fechafactura", "fechadefactura"],
    ),
    (Field::IssueDate, r"fecha", 0.7, &["fecha"]),
    (
        Field::IssueDate,
        r"f\.\s*(?:de\s+)?(?:emisi[oó]n|expedici[oó]n|factura)",
        0.9,
        &["emision", "expedicion", "factura"],
    ),
    (Field::IssueDate, r"emitida\s+el|expedida\s+el", 0.9, &["emitida", "expedida"]),
    (
        Field::IssueDate,
        r"data\s+(?:d[ae]l?(?:la)?\s+)?(?:fattura|fatura|emiss[aã]o|emissione|documento)|data\s+de\s+emiss[aã]o",
        0.95,
        &["fattura", "fatura", "emissao", "emissione", "documento"],
    ),
    (Field::IssueDate, r"data", 0.6, &["data"]),
    (Field::IssueDate, r"(?:invoice|issue|billing|credit\s+note)\s+date", 0.95, &["date"]),
    (Field::IssueDate, r"date\s+of\s+(?:issue|invoice)", 0.95, &["date"]),
    (Field::IssueDate, r"dated?", 0.6, &["date"]),
    (Field::IssueDate, r"(?:rechnungs|beleg|gutschrifts)-?\s*datum", 0.95, &["datum"]),
    (Field::IssueDate, r"datum", 0.6, &["datum"]),
    (Field::IssueDate, r"[a-zß]+,\s+den", 0.8, &["den"]),
    (Field::IssueDate, r"date\s+(?:de\s+(?:la\s+)?)?(?:facture|facturation|[ée]mission)", 0.95, &["date"]),
    (Field::IssueDate, r"factuurdatum", 0.95, &["factuurdatum"]),
    (Field::IssueDate, r"datum\s+(?:van\s+(?:de\s+)?)?factuur", 0.95, &["datum"]),
    (Field::IssueDate, r"ausstellungs-?\s*datum|datum\s+der\s+ausstellung", 0.9, &["ausstellungsdatum", "ausstellung"]),
    (Field::IssueDate, r"date\s+d['’]\s?[ée]mission", 0.95, &["emission"]),
    // Due date.
    (Field::DueDate, r"fecha\s+(?:de\s+)?vencimiento", 0.95, &["fechavencimiento", "fechadevencimiento"]),
    (Field::DueDate, r"vencimiento", 0.85, &["vencimiento"]),
    (Field::DueDate, r"vto\.", 0.7, &["vto"]),
    (Field::DueDate, r"(?:payment\s+)?due\s+(?:date|by|on)", 0.95, &["due"]),
    (Field::DueDate, r"payment\s+due", 0.9, &["due"]),
    (Field::DueDate, r"date\s+due", 0.9, &["due"]),
    (Field::DueDate, r"(?:please\s+)?(?:remit|pay)\s+(?:until|by|before)", 0.85, &["remit", "pay"]),
    (Field::DueDate, r"f[äa]lligkeit(?:sdatum)?", 0.9, &["falligkeit"]),
    (Field::DueDate, r"f[äa]llig\s+(?:am|bis)", 0.9, &["fallig"]),
    (Field::DueDate, r"zahlbar\s+(?:ohne\s+abzug\s+)?bis(?:\s+zum)?", 0.9, &["zahlbar"]),
    (Field::DueDate, r"zahlungsziel", 0.85, &["zahlungsziel"]),
    (Field::DueDate, r"[üu]berweisen\s+sie\s+(?:den\s+betrag\s+)?bis\s+(?:zum|sp[äa]testens)", 0.85, &["uberweisen"]),
    (Field::DueDate, r"netto\s+bis", 0.6, &["netto"]),
    (Field::DueDate, r"(?:date\s+d')?[ée]ch[ée]ance", 0.9, &["echeance"]),
    (Field::DueDate, r"[àa]\s+r[ée]gler\s+avant\s+le", 0.85, &["regler"]),
    (Field::DueDate, r"vervaldatum", 0.95, &["vervaldatum"]),
    (Field::DueDate, r"uiterste\s+betaaldatum", 0.95, &["betaaldatum"]),
    (Field::DueDate, r"pagadera\s+(?:antes\s+del?|hasta(?:\s+el)?)", 0.85, &["pagadera"]),
    (Field::DueDate, r"(?:data\s+(?:di\s+)?)?scadenza", 0.9, &["scadenza"]),
    (Field::DueDate, r"data\s+(?:de\s+)?vencimento|vencimento", 0.9, &["vencimento"]),
    // "Pay by …" in Portuguese, Italian and Dutch (longer than the amount-due `a pagar`, `te betalen`).
    (Field::DueDate, r"(?:a\s+)?pagar\s+at[ée]|pag[áa]vel\s+at[ée]", 0.85, &["pagar", "pagavel"]),
    (Field::DueDate, r"(?:pagamento|da\s+pagare|pagare)\s+entro(?:\s+il)?", 0.85, &["entro"]),
    (Field::DueDate, r"(?:te\s+)?betalen\s+(?:voor|v[óo][óo]r|uiterlijk)(?:\s+op)?", 0.85, &["betalen"]),
    // Net.
    (Field::Net, r"(?:total\s+)?bases?\s+imponibles?", 0.9, &["imponible"]),
    (Field::Net, r"importe\s+neto", 0.9, &["neto"]),
    (Field::Net, r"total\s+neto", 0.9, &["neto"]),
    (Field::Net, r"neto", 0.5, &["neto"]),
    (Field::Net, r"sub-?\s?total", 0.8, &["sub"]),
    (Field::Net, r"net\s+(?:total|amount)", 0.9, &["net"]),
    (
        Field::Net,
        r"total\s+(?:net|excl\.?(?:uding)?\s+(?:vat|tax|gst|sst)|before\s+tax|without\s+(?:vat|tax))",
        0.9,
        &["net", "excl", "before", "without"],
    ),
    (Field::Net, r"amount\s+(?:excl\.?(?:uding)?|before|without)\s+(?:vat|tax|gst|sst)", 0.9, &["amount"]),
    (Field::Net, r"taxable\s+amount", 0.8, &["taxable"]),
    (Field::Net, r"net", 0.45, &["net"]),
    (Field::Net, r"nettobetrag|nettosumme|nettowert|gesamt\s*netto|netto\s*gesamt", 0.9, &["netto"]),
    (Field::Net, r"summe\s+netto", 0.9, &["netto"]),
    (Field::Net, r"rechnungssumme\s+(?:netto|ohne\s+(?:ust|mwst)\.?)", 0.95, &["rechnungssumme"]),
    (Field::Net, r"netto", 0.55, &["netto"]),
    (Field::Net, r"zwischensumme", 0.7, &["zwischensumme"]),
    (Field::Net, r"gesamtbeitrag|nettobeitrag", 0.7, &["beitrag"]),
    (Field::Net, r"total\s+ht|montant\s+(?:total\s+)?ht|total\s+hors\s+taxes?|base\s+ht", 0.9, &["ht", "hors"]),
    (Field::Net, r"sous-?\s?total", 0.75, &["sous"]),
    (Field::Net, r"subtotaal|totaal\s+excl\.?\s*btw", 0.85, &["totaal"]),
    (
        Field::Net,
        r"(?:totale\s+)?imponibile|base\s+tribut[áa]vel|valor\s+tribut[áa]vel",
        0.9,
        &["imponibile", "tributavel"],
    ),
    (
        Field::Net,
        r"totale\s+(?:netto|merce)|total\s+(?:s/|sem\s+)iva|total\s+l[ií]quido",
        0.85,
        &["netto", "merce", "sem", "liquido"],
    ),
    (Field::Net, r"subtotale", 0.8, &["subtotale"]),
    // Tax.
    (
        Field::Tax,
        r"(?:cuota|total|importe)\s+(?:de\s+)?(?:iva|i\.v\.a\.)",
        0.95,
        &["cuota", "totaliva", "totaldeiva", "importeiva", "importedeiva"],
    ),
    (Field::Tax, r"iva|i\.v\.a\.", 0.7, &["iva"]),
    (Field::Tax, r"impuestos", 0.6, &["impuestos"]),
    (Field::Tax, r"(?:total\s+(?:vat|tax)|(?:vat|tax)\s+(?:total|amount))", 0.95, &["vat", "tax"]),
    (Field::Tax, r"sales\s+tax", 0.8, &["tax"]),
    (Field::Tax, r"vat", 0.6, &["vat"]),
    (Field::Tax, r"tax", 0.5, &["tax"]),
    // Goods and services tax (India's central, state and integrated parts; Malaysia, Singapore, Australia) and
    // Malaysia's sales and service tax.
    (Field::Tax, r"total\s+(?:gst|sst)|(?:gst|sst)\s+(?:total|amount)", 0.9, &["gst", "sst"]),
    (Field::Tax, r"gst|cgst|sgst|igst|sst", 0.6, &["gst", "cgst", "sgst", "igst", "sst"]),
    (Field::Tax, r"(?:mwst|ust)\.?\s*(?:-\s*)?(?:betrag|gesamt|summe)", 0.95, &["mwst", "ust"]),
    (Field::Tax, r"(?:summe|gesamt)\s+(?:mwst|ust)\.?", 0.95, &["mwst", "ust"]),
    (Field::Tax, r"steuerbetrag", 0.8, &["steuerbetrag"]),
    (Field::Tax, r"(?:umsatz|mehrwert|versicherung)s?steuer", 0.7, &["steuer"]),
    (Field::Tax, r"mwst\.?|ust\.?", 0.65, &["mwst", "ust"]),
    (Field::Tax, r"(?:total|montant)\s+(?:de\s+la\s+)?tva|total\s+taxes", 0.95, &["tva", "taxes"]),
    (Field::Tax, r"tva", 0.6, &["tva"]),
    (Field::Tax, r"(?:totaal\s+)?btw(?:-?bedrag)?", 0.7, &["btw"]),
    (Field::Tax, r"(?:totale|importo)\s+iva|(?:total|valor)\s+(?:do\s+|de\s+)?iva", 0.95, &["iva"]),
    (Field::Tax, r"imposta", 0.6, &["imposta"]),
    // Total (before withholding).
    (
        Field::Total,
        r"total\s+(?:de\s+(?:la\s+)?)?factura",
        0.95,
        &["totalfactura", "totaldefactura", "totaldelafactura"],
    ),
    (Field::Total, r"importe\s+total", 0.9, &["importetotal"]),
    (Field::Total, r"total\s+(?:con\s+iva|iva\s+incluido)", 0.95, &["totalcon", "totaliva"]),
    (Field::Total, r"grand\s+total", 0.95, &["grandtotal"]),
    (
        Field::Total,
        r"(?:invoice\s+total|total\s+(?:invoice(?:\s+amount)?|amount|incl\.?(?:uding)?\s+(?:vat|tax)))",
        0.9,
        &["invoicetotal", "totalinvoice", "totalamount", "totalincl"],
    ),
    (Field::Total, r"total\s+\S{1,3}\s+incl\.?(?:uding)?\s+(?:vat|tax)", 0.9, &["incl"]),
    (Field::Total, r"total", 0.6, &["total"]),
    (
        Field::Total,
        r"bruttobetrag|bruttosumme|rechnungssumme\s+brutto|gesamtsumme|endsumme|endbetrag",
        0.9,
        &["brutto", "summe", "endbetrag"],
    ),
    (Field::Total, r"summe\s+(?:inkl\.?|brutto)\s*(?:ust\.?|mwst\.?)?", 0.9, &["summe"]),
    (
        Field::Total,
        r"gesamtbetrag|rechnungsbetrag|summe\s+gesamt|gesamtpreis",
        0.85,
        &["betrag", "summe", "gesamtpreis"],
    ),
    (Field::Total, r"brutto", 0.5, &["brutto"]),
    (Field::Total, r"rechnungsbeitrag|bruttobeitrag|zahlbeitrag", 0.85, &["beitrag"]),
    // A till slip's total after its cash-rounding line is what was paid (EVALUATION.md).
    (
        Field::Total,
        r"total\s+(?:arrondi|rounded|redondeado|gerundet|afgerond|arrotondato|arredondado)|rounded\s+total",
        0.9,
        &["arrondi", "rounded", "redondeado", "gerundet", "afgerond", "arrotondato", "arredondado"],
    ),
    (Field::Total, r"total\s+ttc|montant\s+(?:total\s+)?ttc", 0.95, &["ttc"]),
    (Field::Total, r"totaal\s+incl\.?\s*btw|totaalbedrag|factuurbedrag", 0.9, &["totaal", "factuurbedrag"]),
    (Field::Total, r"totaal", 0.6, &["totaal"]),
    (Field::Total, r"totale\s+(?:fattura|documento|generale|ivato)|importo\s+totale", 0.95, &["totale", "importo"]),
    (Field::Total, r"totale", 0.6, &["totale"]),
    (Field::Total, r"total\s+(?:da\s+fatura|do\s+documento|com\s+iva|geral)|valor\s+total", 0.95, &["total"]),
    // Amount due.
    (Field::Due, r"(?:total|importe|l[ií]quido)\s+a\s+pagar", 0.9, &["apagar"]),
    (Field::Due, r"a\s+pagar", 0.7, &["apagar"]),
    (Field::Due, r"(?:amount|balance|total)\s+(?:due|payable|to\s+pay)", 0.9, &["due", "payable", "topay"]),
    (Field::Due, r"due\s+payable", 0.85, &["due"]),
    (Field::Due, r"residual(?:\s+amount)?", 0.85, &["residual"]),
    (Field::Due, r"zahlbetrag|zu\s+zahlen(?:der\s+betrag)?|offener\s+betrag|restbetrag", 0.9, &["zahl", "betrag"]),
    (Field::Due, r"(?:net|solde|reste|montant)\s+[àa]\s+payer", 0.9, &["payer"]),
    (Field::Due, r"(?:totaal\s+)?te\s+betalen", 0.9, &["tebetalen"]),
    (Field::Due, r"(?:totale|importo|netto)\s+da\s+pagare", 0.9, &["pagare"]),
    // Withholding.
    (Field::Withholding, r"retenci[oó]n(?:\s+(?:de\s+)?(?:i\.?r\.?p\.?f\.?|irpf))?", 0.9, &["retencion"]),
    (Field::Withholding, r"i\.?r\.?p\.?f\.?", 0.85, &["irpf"]),
    (Field::Withholding, r"withholding(?:\s+tax)?", 0.85, &["withholding"]),
    // Prepaid.
    (
        Field::Prepaid,
        r"anticipos?|pagos?\s+a\s+cuenta|ya\s+pagado|entregas?\s+a\s+cuenta",
        0.85,
        &["anticipo", "acuenta", "pagado"],
    ),
    (
        Field::Prepaid,
        r"(?:erhaltene\s+)?anzahlung(?:en)?|bereits\s+(?:bezahlt|gezahlt)|vorauszahlung",
        0.85,
        &["anzahlung", "bereits", "vorauszahlung"],
    ),
    (
        Field::Prepaid,
        r"(?:amount\s+)?(?:already\s+)?paid|prepaid|prepayment|advance\s+payment|deposit\s+paid",
        0.75,
        &["paid", "prepaid", "prepayment", "advancepayment"],
    ),
    (
        Field::Prepaid,
        r"acompte|montant\s+d[ée]j[àa]\s+(?:pay[ée]|r[ée]gl[ée])|d[ée]j[àa]\s+pay[ée]",
        0.85,
        &["acompte", "deja"],
    ),
    (Field::Prepaid, r"vooruitbetaald|reeds\s+betaald", 0.85, &["betaald"]),
    // Currency.
    (
        Field::Currency,
        r"moneda|divisa|currency|w[äa]hrung|rechnungsw[äa]hrung|devise|valuta|betr[äa]ge\s+in",
        0.95,
        &["moneda", "divisa", "currency", "wahrung", "devise", "valuta", "betragein"],
    ),
    // Things that look like ours but are not.
    (
        Field::Ignore,
        r"gesamtbetrag\s+der\s+(?:zu|ab)schl[äa]ge|positionssumme|warenwert|leergutwert",
        1.0,
        &["schlage", "positionssumme", "warenwert", "leergutwert"],
    ),
    (
        Field::Ignore,
        r"(?:liefer|leistungs|lieferschein|bestell|auftrag)(?:-\s*und\s+leistungs)?-?\s*datum",
        1.0,
        &["datum"],
    ),
    (Field::Ignore, r"liefer-?\s*(?:/|und)\s*leistungs-?(?:datum|zeitraum)", 1.0, &["leistungs"]),
    (
        Field::Ignore,
        r"(?:delivery|order|shipment|service)\s+date|date\s+of\s+(?:delivery|supply|service)",
        1.0,
        &["date"],
    ),
    (
        Field::Ignore,
        r"fecha\s+(?:de\s+)?(?:entrega|pedido|operaci[oó]n|servicio|albar[aá]n)",
        1.0,
        &["entrega", "pedido", "operacion", "servicio", "albaran"],
    ),
    (Field::Ignore, r"date\s+(?:de\s+)?(?:livraison|commande|d[ée]but|fin|de\s+facture\s+associ[ée]e)", 1.0, &["date"]),
    (Field::Ignore, r"(?:lever|order)datum", 1.0, &["datum"]),
    // The date a payment was made or a receipt printed for it: never the invoice's issue date.
    (
        Field::Ignore,
        r"fecha\s+(?:de\s+)?(?:pago|cobro)|payment\s+date|date\s+(?:of\s+)?payment|zahlungsdatum|date\s+de\s+(?:paiement|r[eè]glement)|betaaldatum|data\s+(?:de\s+|di\s+)?pagamento",
        1.0,
        &["pago", "cobro", "payment", "zahlungsdatum", "paiement", "reglement", "betaaldatum", "pagamento"],
    ),
    (
        Field::Ignore,
        r"data\s+(?:de\s+|di\s+)?(?:entrega|consegna|ordine|encomenda|nascita)|data\s+(?:do\s+)?pedido",
        1.0,
        &["entrega", "consegna", "ordine", "encomenda", "nascita", "pedido"],
    ),
    (
        Field::Ignore,
        r"(?:unit\s+)?price\s+(?:excl|incl)\.?(?:uding)?\s+(?:vat|tax)|(?:excl|incl|inkl|exkl)\.?\s+(?:vat|tax|ust|mwst|iva|tva|btw|gst|sst)\b",
        1.0,
        &["excl", "incl", "inkl", "exkl"],
    ),
    (
        Field::Ignore,
        r"(?:n[º°o]\.?|nr\.?)\s+(?:tva|iva|ust|vat)|(?:vat|tva|iva|btw)\s*(?:reg(?:istration)?\.?\s*)?(?:no\.?|number|nr\.?|n[º°o]|id|identifier|intra(?:com)?)|ust\.?-?\s*id\.?\s*-?\s*nr\.?|ust-?id|vat-?id|gstin|(?:gst|sst)\s*(?:reg(?:istration)?\.?\s*)?(?:no\.?|number|id)",
        1.0,
        &["tva", "iva", "ust", "vat", "btw", "gst", "sst"],
    ),
    (
        Field::Ignore,
        r"(?:tax|vat)\s+(?:rate|%|code|category|clause|exemption|identifier)|(?:iva|ust|mwst|tva|btw)\s*%|steuersatz|tipo\s+(?:de\s+)?iva|taux(?:\s+de\s+tva)?",
        1.0,
        &["tax", "vat", "iva", "ust", "mwst", "tva", "btw", "steuersatz", "taux"],
    ),
    // Cash tendered, change given back and the cash-rounding line of a till slip: never its total.
    (
        Field::Ignore,
        r"(?:cash\s+)?tendered|change(?:\s+due)?|cambio|entregado|efectivo|r[uü]ckgeld|wechselgeld|gegeben|monnaie(?:\s+rendue)?|rendu|wisselgeld|terug|resto|contanti|troco|rounding(?:\s+adj(?:ustment)?\.?)?|redondeo|rundung|arrondi|afronding|arrotondamento|arredondamento",
        1.0,
        &[
            "tendered",
            "change",
            "cambio",
            "entregado",
            "efectivo",
            "ruckgeld",
            "wechselgeld",
            "gegeben",
            "monnaie",
            "rendu",
            "wisselgeld",
            "terug",
            "resto",
            "contanti",
            "troco",
            "rounding",
            "redondeo",
            "rundung",
            "arrondi",
            "afronding",
            "arrotondamento",
            "arredondamento",
        ],
    ),
    (
        Field::Ignore,
        r"skonto|descuento|rabatt|remise|discount",
        1.0,
        &["skonto", "descuento", "rabatt", "remise", "discount"],
    ),
    (
        Field::Ignore,
        r"(?:total|summe)\s+(?:de\s+)?(?:art[ií]culos|unidades|items|positionen|st[üu]ck|quantity|cantidad)",
        1.0,
        &["articulos", "unidades", "items", "positionen", "stuck", "quantity", "cantidad"],
    ),
];

/// Long words also match when a PDF producer spread their letters (`Zahlbetr ag`, `Br uttosumme`): such
/// spreading is common in generated stylesheets, and harmless for runs of six letters or more. Character
/// classes and escapes are left alone.
fn loosen(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let (mut in_class, mut escaped) = (false, false);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if escaped || in_class || c == '\\' || c == '[' || !c.is_alphabetic() {
            if c == '[' && !escaped {
                in_class = true;
            } else if c == ']' && !escaped {
                in_class = false;
            }
            escaped = c == '\\' && !escaped;
            out.push(c);
            i += 1;
            continue;
        }
        let run_end = (i..chars.len()).find(|&j| !chars[j].is_alphabetic()).unwrap_or(chars.len());
        let run: Vec<String> = chars[i..run_end].iter().map(char::to_string).collect();
        out.push_str(&if run.len() >= 6 { run.join(" ?") } else { run.concat() });
        i = run_end;
    }
    out
}

/// One regex per table row, compiled the first time a line contains one of the row's key words.
///
/// Why lazily: the extractor is a fresh process per document (it runs in the jail), so every regex it uses is
/// compiled once per document, and a Spanish invoice needs perhaps a sixth of the rows (see `super::regex` for
/// why the compiler is `regex_lite`). The patterns run on the folded line (`super::fold_char`: lower case, no
/// accents), so they need no `(?i)`, and ASCII word boundaries say on folded text what Unicode ones would.
///
/// Each row has a tight form and a loose one (`loosen`) for lines with letter-spaced words; the loose form's
/// optional spaces make a bigger and slower automaton, so it is only built for such lines.
static TIGHT: LazyLock<Vec<OnceLock<Regex>>> = LazyLock::new(|| TABLE.iter().map(|_| OnceLock::new()).collect());
static LOOSE: LazyLock<Vec<OnceLock<Regex>>> = LazyLock::new(|| TABLE.iter().map(|_| OnceLock::new()).collect());

fn compiled(row: usize, loose: bool) -> &'static Regex {
    let cells = if loose { &LOOSE } else { &TIGHT };
    cells[row].get_or_init(|| {
        let pattern = TABLE[row].1;
        // Accents folded like the text, so `f[äa]llig` and the folded `fallig` meet.
        let folded: String = pattern.chars().map(|c| if c.is_ascii() { c } else { super::fold_char(c) }).collect();
        let body = if loose { loosen(&folded) } else { folded };
        super::regex(&format!(r"\b(?:{body})(?:\b|$|[\s:.#])"))
    })
}

/// All labels in a line, longest first where they overlap, left to right. Labels inside parentheses are dropped
/// (`Nettobetrag (zzgl. 19% MwSt.)` is a net amount, not a tax).
pub fn find_labels(line: &str) -> Vec<LabelHit> {
    if !line.chars().any(char::is_alphabetic) {
        return Vec::new();
    }
    let (folded, map) = super::fold_mapped(line);
    // Long key words are looked up with spaces and punctuation squeezed out, so `Zahlbetr ag` counts; short
    // ones only at the start of a word (`I.V.A.` is the word `iva`), or `ht` would be found in every `Recht`.
    let squeezed: String = folded.chars().filter(|c| c.is_alphanumeric()).collect();
    let words: String =
        folded.chars().filter(|c| *c != '.').map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    let has_key = |k: &&str| {
        if k.len() > 4 {
            squeezed.contains(k)
        } else {
            words.match_indices(k).any(|(at, _)| at == 0 || words[..at].ends_with(' '))
        }
    };
    let mut all: Vec<LabelHit> = Vec::new();
    let mut loose = None;
    for (row, (field, _, strength, keys)) in TABLE.iter().enumerate() {
        if !keys.iter().any(has_key) {
            continue;
        }
        // Letter-spaced: a long key word that is only there with its spaces squeezed out.
        let loose = *loose.get_or_insert_with(|| {
            TABLE.iter().flat_map(|r| r.3.iter()).any(|k| k.len() >= 6 && squeezed.contains(k) && !words.contains(k))
        });
        for m in compiled(row, loose).find_iter(&folded) {
            let raw = m.as_str();
            let lead = raw.len() - raw.trim_start().len();
            let text = raw.trim();
            let text = text.trim_end_matches([':', '.', '#']).trim_end();
            // Two spaces are a column break (`layout`): `FECHA      VENCIMIENTO` are two labels, not one; but
            // `FACTURA SIMPLIFICADA  Nº` is one label that the layout spaced out before its short marker. A
            // marker a whole column away (`FATTURA          N. documento:`) starts a label of its own.
            let spread = text.split("  ").skip(1).any(|part| part.trim().chars().count() > 3) || text.contains("     ");
            if text.is_empty() || spread {
                continue;
            }
            let start = map[m.start() + lead];
            let mut end = map[m.start() + lead + text.len()];
            // Keep a trailing `.` that belongs to an abbreviation (`Nr.`, `MwSt.`), so values start after it.
            if line[end..].starts_with('.') {
                end += 1;
            }
            all.push(LabelHit { field: *field, start, end, strength: *strength });
        }
    }
    all.sort_by(|a, b| (b.end - b.start).cmp(&(a.end - a.start)).then(b.strength.total_cmp(&a.strength)));
    let mut kept: Vec<LabelHit> = Vec::new();
    for hit in all {
        if kept.iter().all(|k| hit.end <= k.start || hit.start >= k.end) && !in_parentheses(line, hit.start) {
            kept.push(hit);
        }
    }
    kept.sort_by_key(|h| h.start);
    kept
}

fn in_parentheses(line: &str, at: usize) -> bool {
    let before = &line[..at];
    match (before.rfind('('), before.rfind(')')) {
        (Some(open), Some(close)) => open > close && line[at..].contains(')'),
        (Some(_), None) => line[at..].contains(')'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::rules::fold;

    fn fields(line: &str) -> Vec<Field> {
        find_labels(line).into_iter().map(|h| h.field).collect()
    }

    #[test]
    fn goods_and_services_tax_lines_are_tax_and_its_registration_numbers_are_not() {
        use Field::*;
        assert_eq!(fields("Total excl. GST                        30.78").first(), Some(&Net));
        assert_eq!(fields("GST 6%                                  1.85").first(), Some(&Tax));
        assert_eq!(fields("CGST 9%                                 0.38").first(), Some(&Tax));
        assert_eq!(fields("Total (incl. GST)                      32.63").first(), Some(&Total));
        // A registration number is no tax amount, though its digits would read as one.
        for line in ["GSTIN: 21XFMCK6403L1ZL", "SST Reg No: W10-1411-62485972", "GST Reg No. 200012345M"] {
            assert!(!fields(line).contains(&Tax), "{line}");
        }
    }

    #[test]
    fn number_markers_with_a_dot_before_the_ordinal_and_after_the_document_word() {
        for line in [
            "Fatura n.º: FT A/4684",
            "N.º fatura: 2406651",
            "N. documento: 9225/2025",
            "Nº ticket: 006997",
            "Bonnr.: 008111",
            "N° de facture : 2026-9446",
        ] {
            assert_eq!(fields(line).first(), Some(&Field::InvoiceNumber), "{line}");
        }
    }

    #[test]
    fn pay_by_wordings_are_due_dates_not_amounts() {
        for line in ["Pagar até: 2025-07-13", "Pagamento entro il: 2025-10-25", "Te betalen voor: 2024-02-23"] {
            assert_eq!(fields(line), vec![Field::DueDate], "{line}");
        }
        assert_eq!(fields("Te betalen: 12,00"), vec![Field::Due]);
        assert_eq!(fields("Total a pagar: 12,00"), vec![Field::Due]);
    }

    #[test]
    fn issue_date_wordings_of_header_grids() {
        for line in ["Ausstellungsdatum: 04.08.2024", "Datum factuur: 06-09-2024", "Date d'émission : 08/10/2026"] {
            assert_eq!(fields(line), vec![Field::IssueDate], "{line}");
        }
    }

    #[test]
    fn tendered_change_and_rounding_are_no_total() {
        for line in ["Cash tendered 20.00", "Change 7.50", "Rounding adj. -0.02", "Cambio 4,50", "Rückgeld 2,00"] {
            assert!(!fields(line).contains(&Field::Total), "{line}");
        }
        assert_eq!(fields("Total rounded 12.50"), vec![Field::Total]);
    }

    #[test]
    fn labels_are_recognised_in_five_languages() {
        use Field::*;
        let cases: &[(&str, Field)] = &[
            ("Factura nº:", InvoiceNumber),
            ("Factura n2:", InvoiceNumber),
            ("N2 ticket: T26-09407", InvoiceNumber),
            ("Factura n%: R-2025-1330", InvoiceNumber),
            ("N?2 de factura: FR202600803", InvoiceNumber),
            ("Nº factura", InvoiceNumber),
            ("Número de factura", InvoiceNumber),
            ("Invoice No.", InvoiceNumber),
            ("Invoice #", InvoiceNumber),
            ("Rechnungsnummer:", InvoiceNumber),
            ("Rechnung Nr.", InvoiceNumber),
            ("Facture n°", InvoiceNumber),
            ("Numéro de facture", InvoiceNumber),
            ("Factuurnummer", InvoiceNumber),
            ("Factuur nr", InvoiceNumber),
            ("Fecha de expedición", IssueDate),
            ("Fecha factura", IssueDate),
            ("Invoice date", IssueDate),
            ("Rechnungsdatum", IssueDate),
            ("Date de facture", IssueDate),
            ("Factuurdatum", IssueDate),
            ("Fecha de vencimiento", DueDate),
            ("Vencimiento", DueDate),
            ("Due date", DueDate),
            ("Fälligkeitsdatum", DueDate),
            ("Zahlbar bis", DueDate),
            ("Date d'échéance", DueDate),
            ("Échéance", DueDate),
            ("Vervaldatum", DueDate),
            ("Base imponible", Net),
            ("Subtotal", Net),
            ("Nettobetrag", Net),
            ("Summe netto", Net),
            ("Total HT", Net),
            ("Montant HT", Net),
            ("Subtotaal", Net),
            ("Cuota IVA", Tax),
            ("IVA", Tax),
            ("VAT", Tax),
            ("MwSt.", Tax),
            ("USt", Tax),
            ("Umsatzsteuer", Tax),
            ("TVA", Tax),
            ("BTW", Tax),
            ("Total factura", Total),
            ("Importe total", Total),
            ("Grand total", Total),
            ("Gesamtbetrag", Total),
            ("Rechnungsbetrag", Total),
            ("Bruttobetrag", Total),
            ("Total TTC", Total),
            ("Totaal", Total),
            ("Total a pagar", Due),
            ("Amount due", Due),
            ("Net à payer", Due),
            ("Te betalen", Due),
            ("Zahlbetrag", Due),
            ("Retención IRPF", Withholding),
            ("IRPF", Withholding),
        ];
        for (line, want) in cases {
            assert_eq!(fields(line), vec![*want], "{line}");
        }
    }

    #[test]
    fn a_label_does_not_reach_across_a_column_gap() {
        assert_eq!(fields("FECHA        VENCIMIENTO"), vec![Field::IssueDate, Field::DueDate]);
        assert_eq!(fields("FACTURA SIMPLIFICADA  Nº T-2025-18873"), vec![Field::InvoiceNumber]);
        // The title a column away from the marker is not part of the label: the marker and its word are.
        let hits = find_labels("FATTURA                N. documento:   3424/2026");
        assert_eq!(hits.iter().map(|h| h.field).collect::<Vec<_>>(), vec![Field::InvoiceNumber]);
        assert_eq!(hits[0].start, "FATTURA                ".len());
    }

    #[test]
    fn the_longer_label_wins_where_two_overlap() {
        assert_eq!(fields("Fecha de vencimiento: 01/01/2025"), vec![Field::DueDate]);
        assert_eq!(fields("Gesamtbetrag der Zuschläge   0,00"), vec![Field::Ignore]);
        assert_eq!(fields("Liefer- und Leistungsdatum : 05.03.2018"), vec![Field::Ignore]);
        assert_eq!(fields("Total HT   100,00"), vec![Field::Net]);
    }

    #[test]
    fn labels_in_parentheses_do_not_count() {
        assert_eq!(fields("Nettobetrag (zzgl. 19,00% MwSt.)   376,37"), vec![Field::Net]);
    }

    #[test]
    fn letter_spaced_long_labels_still_match() {
        assert_eq!(fields("Zahlbetr ag   470,15"), vec![Field::Due]);
        assert_eq!(fields("Br uttosumme   671,15"), vec![Field::Total]);
    }

    /// The letters a pattern spells, escapes (`\s`, `\p{L}`) dropped and a class (`[úu]`) read as its first char.
    fn skeleton(pattern: &str) -> String {
        let mut out = String::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.next() == Some('p') => {
                    chars.next();
                }
                '\\' => {}
                '[' => {
                    let class: String = chars.by_ref().take_while(|c| *c != ']').collect();
                    out.extend(class.chars().next().filter(|c| c.is_alphabetic()));
                }
                c if c.is_alphabetic() => out.push(c),
                _ => {}
            }
        }
        fold(&out)
    }

    #[test]
    fn every_key_word_is_spelled_in_its_pattern() {
        // The keys gate the patterns: a key the pattern cannot produce would silently disable the row. A key
        // must at least be spelled, in order, by the pattern's letters (optional words may be skipped).
        for (_, pattern, _, keys) in TABLE {
            let letters = skeleton(pattern);
            for k in *keys {
                assert!(!k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase()), "{pattern}: key {k}");
                let mut rest = letters.chars();
                assert!(k.chars().all(|c| rest.any(|l| l == c)), "{pattern}: key {k} is not spelled by {letters}");
            }
        }
    }

    #[test]
    fn labels_with_accents_and_capitals_report_original_byte_offsets() {
        let line = "Fecha de expedición: 15/10/2025   FÄLLIGKEIT: 01.11.2025";
        let hits = find_labels(line);
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert_eq!(&line[hits[0].start..hits[0].end], "Fecha de expedición");
        assert_eq!(&line[hits[1].start..hits[1].end], "FÄLLIGKEIT");
    }

    #[test]
    fn a_vat_number_label_is_not_a_tax_amount() {
        assert_eq!(fields("VAT Registration No."), vec![Field::Ignore]);
        assert_eq!(fields("USt-IdNr.: DE136695976"), vec![Field::Ignore]);
    }
}
