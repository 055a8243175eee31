//! The language a mail is written in: its `Content-Language`, then `Accept-Language`, then the words people write
//! around an invoice. The supplier is answered in it.

use super::settings::Language;

/// The language of a mail: its `Content-Language`, then the first language of `Accept-Language` we write,
/// then the words people write around an invoice; `None` when unclear.
pub fn guess_language(text: &str, content_language: Option<&str>) -> Option<Language> {
    guess_language_from(text, content_language, None)
}

pub fn guess_language_from(
    text: &str,
    content_language: Option<&str>,
    accept_language: Option<&str>,
) -> Option<Language> {
    if let Some(l) = content_language.and_then(|cl| cl.split(',').find_map(Language::from_tag)) {
        return Some(l);
    }
    if let Some(l) = accept_language.and_then(|al| al.split(',').find_map(Language::from_tag)) {
        return Some(l);
    }
    // Words that are common in one language's invoice mails and rare in the others'.
    const WORDS: [(Language, &[&str]); 7] = [
        (
            Language::Es,
            &[
                "factura",
                "adjunto",
                "adjunta",
                "gracias",
                "saludos",
                "hola",
                "buenos",
                "buenas",
                "estimado",
                "estimados",
                "atentamente",
                "le",
                "les",
                "los",
                "las",
                "el",
                "del",
                "que",
                "pago",
                "envío",
                "envio",
                "mes",
                "una",
                "por",
                "para",
                "y",
            ],
        ),
        (
            Language::En,
            &[
                "invoice", "attached", "please", "thanks", "thank", "regards", "hello", "dear", "the", "and", "for",
                "your", "our", "find", "payment", "kind", "best", "of", "is",
            ],
        ),
        (
            Language::De,
            &[
                "rechnung",
                "anbei",
                "anhang",
                "im",
                "sehr",
                "geehrte",
                "geehrter",
                "damen",
                "herren",
                "grüße",
                "gruß",
                "freundlichen",
                "mit",
                "und",
                "die",
                "der",
                "das",
                "ihre",
                "unsere",
                "bitte",
                "für",
                "zahlung",
                "ist",
                "wir",
                "sie",
            ],
        ),
        (
            Language::Fr,
            &[
                "facture",
                "ci-joint",
                "ci",
                "joint",
                "jointe",
                "bonjour",
                "cordialement",
                "madame",
                "monsieur",
                "merci",
                "veuillez",
                "trouver",
                "votre",
                "notre",
                "nous",
                "vous",
                "et",
                "les",
                "des",
                "du",
                "le",
                "paiement",
                "est",
                "pour",
            ],
        ),
        (
            Language::Nl,
            &[
                "factuur",
                "bijgaand",
                "bijlage",
                "beste",
                "geachte",
                "groeten",
                "vriendelijke",
                "met",
                "hierbij",
                "uw",
                "onze",
                "wij",
                "het",
                "een",
                "van",
                "en",
                "de",
                "betaling",
                "graag",
                "is",
                "voor",
            ],
        ),
        (
            Language::It,
            &[
                "fattura",
                "allegato",
                "allegata",
                "in",
                "buongiorno",
                "gentile",
                "cordiali",
                "saluti",
                "grazie",
                "distinti",
                "vostra",
                "nostra",
                "il",
                "della",
                "per",
                "pagamento",
                "di",
                "e",
                "è",
                "che",
                "alla",
            ],
        ),
        (
            Language::Pt,
            &[
                "fatura",
                "anexo",
                "anexa",
                "segue",
                "em",
                "olá",
                "bom",
                "dia",
                "cumprimentos",
                "obrigado",
                "obrigada",
                "atenciosamente",
                "prezado",
                "prezados",
                "caro",
                "vossa",
                "nossa",
                "pagamento",
                "do",
                "da",
                "os",
                "as",
                "não",
                "é",
                "que",
            ],
        ),
    ];
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric() && c != '-').filter(|w| !w.is_empty()).collect();
    let mut scores: Vec<(Language, usize)> =
        WORDS.iter().map(|(lang, list)| (*lang, words.iter().filter(|w| list.contains(w)).count())).collect();
    // Letters only one language writes.
    for (lang, letters) in [
        (Language::Es, &['ñ', '¿', '¡'][..]),
        (Language::De, &['ß', 'ä', 'ö', 'ü'][..]),
        (Language::Pt, &['ã', 'õ'][..]),
        (Language::Fr, &['è', 'ê', 'ç', 'œ'][..]),
    ] {
        let n = lower.chars().filter(|c| letters.contains(c)).count();
        if let Some(s) = scores.iter_mut().find(|(l, _)| *l == lang) {
            s.1 += n;
        }
    }
    scores.sort_by_key(|s| std::cmp::Reverse(s.1));
    match scores.as_slice() {
        [(lang, best), (_, second), ..] if *best > 0 && best > second => Some(*lang),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_is_told_from_the_words() {
        assert_eq!(guess_language("Adjunto la factura de octubre. Saludos", None), Some(Language::Es));
        assert_eq!(guess_language("Please find attached the invoice. Regards", None), Some(Language::En));
        assert_eq!(guess_language("", None), None);
        assert_eq!(guess_language("", Some("en-GB")), Some(Language::En));
        assert_eq!(
            guess_language("Sehr geehrte Damen und Herren, anbei die Rechnung für März. Mit freundlichen Grüßen", None),
            Some(Language::De)
        );
        assert_eq!(
            guess_language("Bonjour, veuillez trouver ci-joint la facture de mars. Cordialement", None),
            Some(Language::Fr)
        );
        assert_eq!(
            guess_language("Beste, hierbij de factuur van maart. Met vriendelijke groeten", None),
            Some(Language::Nl)
        );
        assert_eq!(
            guess_language("Buongiorno, in allegato la fattura di marzo. Cordiali saluti", None),
            Some(Language::It)
        );
        assert_eq!(guess_language("Olá, segue em anexo a fatura de março. Cumprimentos", None), Some(Language::Pt));
        assert_eq!(guess_language_from("Invoice", None, Some("fr-CH, fr;q=0.9, en;q=0.8")), Some(Language::Fr));
        assert_eq!(guess_language_from("Rechnung anbei", Some("nl"), None), Some(Language::Nl));
    }
}
