//! The words that label parties: block headings (`Emisor`, `Bill to`, `Rechnungsempfänger`), name keys, legal
//! forms, salutations, and the words before a tax ID that say whose it is. Pure vocabulary and small tests on one
//! segment of text; `parties` uses them to read the page.

use super::super::fold;
use super::Role;
use regex_lite::Regex;
use std::sync::LazyLock;

/// Block labels with letters only, folded (see `block_key`).
pub(super) const SUPPLIER_BLOCKS: &[&str] = &[
    "emisor",
    "datosdelemisor",
    "proveedor",
    "vendedor",
    "expedidor",
    "seller",
    "supplier",
    "vendor",
    "from",
    "issuedby",
    "verkaufer",
    "lieferant",
    "rechnungsersteller",
    "leistungserbringer",
    "rechnungssteller",
    "fournisseur",
    "vendeur",
    "emetteur",
    "leverancier",
    "verkoper",
    "afzender",
    "cedenteprestatore",
    "cedente",
    "prestatore",
    "fornitore",
    "emittente",
    "fornecedor",
    "emitente",
    "prestador",
    "datosdelproveedor",
    "supplierdetails",
];

pub(super) const CUSTOMER_BLOCKS: &[&str] = &[
    "cliente",
    "datosdelcliente",
    "facturara",
    "facturadoa",
    "destinatario",
    "receptor",
    "customer",
    "billto",
    "billedto",
    "invoiceto",
    "buyer",
    "soldto",
    "kaufer",
    "kauferleistungsempfanger",
    "rechnungsempfanger",
    "leistungsempfanger",
    "kunde",
    "client",
    "adresseduclient",
    "adressedefacturation",
    "facturea",
    "acheteur",
    "klant",
    "afnemer",
    "factuuradres",
    "abweichenderrechnungsempfanger",
    "vosidentifiants",
    "para",
    "alaatencionde",
    "billingaddress",
    "destinataire",
    "facturationa",
    "fatturatoa",
    "intestatario",
    "cessionariocommittente",
    "committente",
    "cessionario",
    "adquirente",
    "faturadoa",
    "faturara",
    "dadosdocliente",
    "datidelcliente",
    "gegevensklant",
    "kundendaten",
    "customerdetails",
    "rechnungsadresse",
    "rechnungsanschrift",
    "aan",
    "koper",
    "acquirente",
    "comprador",
];

pub(super) const OTHER_BLOCKS: &[&str] = &[
    "adressedelivraison",
    "deliveryaddress",
    "shipto",
    "lieferadresse",
    "lieferanschrift",
    "warenempfanger",
    "abweichenderwarenempfanger",
    "abweichenderzahlungsempfanger",
    "direcciondeentrega",
    "enviara",
    "representantfiscal",
    "afleveradres",
    "payee",
    "zahlungsempfanger",
    "deliverto",
    "shippingaddress",
    "livraison",
    "indirizzodispedizione",
    "destinazionemerce",
    "luogodiconsegna",
    "moradadeentrega",
    "localdeentrega",
    "entregaen",
    "direcciondeenvio",
];

pub(super) fn block_key(s: &str) -> String {
    fold(s).chars().filter(|c| c.is_alphabetic()).collect()
}

/// `Von` / `An`, `From` / `To`, `De` / `À`, `Da` / `A`: words too short to be a label alone, which head the two
/// parties' columns when they stand as a pair on one line, each alone in its segment, the issuer's first. Is the
/// line (its segments' texts) such a pair?
pub(super) fn party_pair(segments: &[&str]) -> bool {
    const FROM: &[&str] = &["from", "von", "de", "da", "van"];
    const TO: &[&str] = &["to", "an", "a", "para", "aan"];
    let [from, to] = segments else { return false };
    !segments.iter().any(|s| s.chars().any(|c| c.is_ascii_digit()))
        && FROM.contains(&block_key(from).as_str())
        && TO.contains(&block_key(to).as_str())
}

pub(super) fn block_role(segment: &str) -> Option<Role> {
    // A label stands alone (`Cliente:`); `Customer:2` or `Kunden-Nr. 12` is a field, not a block.
    if segment.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let key = block_key(segment);
    if SUPPLIER_BLOCKS.contains(&key.as_str()) {
        Some(Role::Supplier)
    } else if CUSTOMER_BLOCKS.contains(&key.as_str()) {
        Some(Role::Customer)
    } else if OTHER_BLOCKS.contains(&key.as_str()) {
        Some(Role::Other)
    } else {
        None
    }
}

/// `Cliente: Distribuciones Norte S.A.` — a block label with the name on the same segment.
pub(super) fn inline_block(segment: &str) -> Option<(Role, String)> {
    let (label, rest) = segment.split_once(':')?;
    let role = block_role(label)?;
    let rest = rest.trim();
    (rest.chars().filter(|c| c.is_alphabetic()).count() >= 2).then(|| (role, rest.to_string()))
}

// The name patterns run on folded text (`fold`: lower case, no accents), so they need no `(?i)`.

pub(super) static LEGAL_FORM: LazyLock<Regex> = LazyLock::new(|| {
    super::super::regex(
        r"\b(?:s\.?\s?l\.?\s?u?\.?|s\.?\s?a\.?\s?u?\.?|s\.?\s?coop\.?|s\.?\s?c\.?|gmbh|ag|kg|ohg|ug|e\.\s?k\.|a\.\s?g\.|e\.\s?v\.|sarl|sas|sasu|sa|eurl|selarl|selas|b\.?\s?v\.?|n\.?\s?v\.?|ltd\.?|limited|llc|inc\.?|plc|corp\.?|corporation|s\.?\s?r\.?\s?l\.?|s\.\s?r\.\s?1\.|s\.?\s?p\.?\s?a\.?|s\.?\s?n\.?\s?c\.?|s\.\s?a\.\s?s\.|lda\.?|oy|ab|as|aps|sdn\.?\s?bhd\.?|bhd\.?|s/b)(?:\s|$|[,.)])|gmbh\b",
    )
});

pub fn has_legal_form(s: &str) -> bool {
    LEGAL_FORM.is_match(&format!("{} ", fold(s)))
}

pub(super) static NOT_A_NAME: LazyLock<Regex> = LazyLock::new(|| {
    super::super::regex(
        r"(?x)^(?:(?:nummer|globale\s+nummer|gln|tel|telefon|telefono|fax|e-?mail|phone|fon|mobil|movil|web|www|http|nif|cif|vat|tva|btw|ust|ust-?id[a-z]*|steuer[a-z]*|handelsname|contact|attn|kunden-?nr|kundennummer|customer\s+(?:no|number|id)|nr|id|siret|siren|buyer\s+contact|dni|calle|avda|avenida|paseo|plaza|pza|ronda|camino|carretera|ctra|travesia|glorieta|poligono|urbanizacion|rue|page|seite|iban|bic|swift|descripcion|concepto|cantidad|precio|importe|unidades|description|quantity|price|menge|preis|betrag)\b|n\.?i\.?f|z\.\s?hd|n[º°o]\b|c/|@|[0-9])",
    )
});

pub(super) static SALUTATION: LazyLock<Regex> = LazyLock::new(|| {
    super::super::regex(
        r"^(?:herrn?|frau|firma|mr\.?|mrs\.?|ms\.?|sr\.?|sra\.?|d\.|dna\.?|don|dona|m\.|mme\.?|monsieur|madame|dhr\.?|mevr\.?|a/a|att\.?|spett\.?(?:le)?|egr\.?(?:egio)?|gent\.?(?:mo|ma)?|exmo?a?\.?(?:\(s\))?(?:\s+sr[a]?\.?(?:\(s\))?)?)$",
    )
});

/// A salutation that stands alone before an addressee's name. `Firma` (a signature in Spanish and Italian) and
/// the one-letter ones (`D.`, `M.`) are too ambiguous alone on a line to head a block.
pub(super) fn addressee_salutation(segment: &str) -> bool {
    let folded = fold(segment.trim());
    folded.chars().count() <= 16
        && !matches!(folded.trim_end_matches('.'), "firma" | "d" | "m" | "don" | "dona")
        && SALUTATION.is_match(&folded)
}

/// `folded` is `fold`ed text.
pub(super) fn is_salutation(folded: &str) -> bool {
    // Most segments are longer than any salutation: no need to run (or compile) the regex for them.
    folded.len() <= 9 && SALUTATION.is_match(folded)
}

pub(super) fn name_like(s: &str) -> bool {
    let t = s.trim();
    let letters = t.chars().filter(|c| c.is_alphabetic()).count();
    if letters < 2 || t.chars().count() > 70 {
        return false;
    }
    // OCR puts a stray quote or dot before a line now and then: judge the words.
    let folded = fold(t);
    let folded = folded.trim_start_matches(|c: char| !c.is_alphanumeric());
    !NOT_A_NAME.is_match(folded)
        && !is_salutation(folded)
        && !t.contains('@')
        // `Número de factura: FV24/002055` is a field, not a name (OCR's `S:L.` is).
        && !t.contains(": ")
        && !t.ends_with(':')
        && !t.starts_with(':')
        && !t.to_lowercase().contains("http")
        && !t.to_lowercase().contains("www.")
        && t.chars().filter(char::is_ascii_digit).count() * 2 <= letters
}

/// Keys of a key–value row that name the party itself, folded to letters (`block_key`).
pub(super) const NAME_KEYS: &[&str] = &[
    "name",
    "companyname",
    "company",
    "nombre",
    "razonsocial",
    "nombreorazonsocial",
    "empresa",
    "nom",
    "raisonsociale",
    "denomination",
    "firma",
    "firmenname",
    "naam",
    "bedrijfsnaam",
    "bedrijf",
    "denominazione",
    "ragionesociale",
    "nome",
    "denominacao",
    "denominacaosocial",
];

/// A key of a key–value row: a few words ending in a colon, without digits (`Name:`, `USt-IdNr.:`, `Nom :`).
pub(super) fn is_key(segment: &str) -> bool {
    let t = segment.trim();
    t.ends_with(':')
        && t.chars().count() <= 30
        && !t.chars().any(|c| c.is_ascii_digit())
        && t.split_whitespace().count() <= 4
}

/// Words before a tax ID that say it is the customer's.
pub(super) fn customer_labelled(text_before: &str) -> bool {
    let f = fold(text_before);
    let tail: String = f.chars().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    [
        "client",
        "customer",
        "buyer",
        "kunde",
        "klant",
        "destinatario",
        "receptor",
        "acheteur",
        "ihre ust",
        "your vat",
        "afnemer",
    ]
    .iter()
    .any(|w| tail.contains(w))
}

/// Words before a tax ID that say it is a tax ID (as opposed to a code that happens to pass the check).
///
/// The label may sit far left of its value (wide padding): runs of spaces count as one. It must be a word of its
/// own: `ust` inside a town's name (`Augustusburg`) is no label.
pub(super) fn tax_id_labelled(text_before: &str) -> bool {
    static LABEL: LazyLock<Regex> = LazyLock::new(|| {
        super::super::regex(
            r"\b(?:nif|cif|vat(?:no|id)?|ust(?:-?id[a-z]*)?|tva|iva|btw|n\.i\.f|c\.i\.f|dni|nie|tax|steuer[a-z]*|mwst|uid|p\.\s?iva|partita|nipc|contribuinte|gst|gstin|sst|tin|abn|siren|kvk)\b",
        )
    });
    let f = fold(text_before);
    let squeezed = f.split_whitespace().collect::<Vec<_>>().join(" ");
    LABEL.find_iter(&squeezed).last().is_some_and(|m| squeezed.len() - m.end() <= 30)
}

/// A title set in spaced capitals (`W A R E N R E C H N U N G`): mostly one-letter words.
pub(super) fn spaced_out(t: &str) -> bool {
    let words: Vec<&str> = t.split_whitespace().collect();
    words.len() >= 4 && words.iter().filter(|w| w.chars().count() == 1).count() * 4 >= words.len() * 3
}

/// A document title such as `FACTURA`, `FACTURA RECTIFICATIVA`, `INVOICE`, `RECHNUNG`.
pub(super) fn is_title(segment: &str) -> bool {
    let f = fold(segment.trim());
    ["factura", "invoice", "rechnung", "facture", "factuur", "gutschrift", "avoir", "abono", "credit note"]
        .iter()
        .any(|t| f.starts_with(t))
        && f.split_whitespace().count() <= 3
}
