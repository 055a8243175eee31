//! The words of our mails, per language: one reviewed table per language (`i18n/*.toml`), and the way each
//! language writes amounts, dates and IBANs.
//!
//! Every sentence and label a person reads in a mail comes from these tables; what the extractor writes for
//! operators (check details, warnings, reasons, all in English) is translated here by its kind, never shown as
//! it is. A test fails when one table lacks a key another has, or a key's `{placeholders}` differ.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::settings::Language;
use crate::extract::{validate, Check, ErrorCode, Source};

const SOURCES: [(Language, &str); 7] = [
    (Language::Es, include_str!("i18n/es.toml")),
    (Language::En, include_str!("i18n/en.toml")),
    (Language::De, include_str!("i18n/de.toml")),
    (Language::Fr, include_str!("i18n/fr.toml")),
    (Language::Nl, include_str!("i18n/nl.toml")),
    (Language::It, include_str!("i18n/it.toml")),
    (Language::Pt, include_str!("i18n/pt.toml")),
];

type Table = BTreeMap<String, String>;

/// The tables, read once: `section.key` → text. A table that does not parse is empty (the tests parse each).
fn catalogs() -> &'static HashMap<Language, Table> {
    static CATALOGS: OnceLock<HashMap<Language, Table>> = OnceLock::new();
    CATALOGS.get_or_init(|| SOURCES.iter().map(|(l, src)| (*l, parse(src).unwrap_or_default())).collect())
}

fn parse(src: &str) -> Result<Table, String> {
    let root: toml::Table = toml::from_str(src).map_err(|e| e.to_string())?;
    let mut out = Table::new();
    for (section, value) in root {
        let toml::Value::Table(entries) = value else { return Err(format!("{section} is not a section")) };
        for (key, text) in entries {
            let toml::Value::String(text) = text else { return Err(format!("{section}.{key} is not text")) };
            out.insert(format!("{section}.{key}"), text);
        }
    }
    Ok(out)
}

/// The text of `key` in `lang`; the English one if the table lacks it (the tests make sure none does), and
/// nothing if both do.
pub fn t(lang: Language, key: &str) -> &'static str {
    let all = catalogs();
    all.get(&lang)
        .and_then(|c| c.get(key))
        .or_else(|| all.get(&Language::En).and_then(|c| c.get(key)))
        .map(String::as_str)
        .unwrap_or("")
}

/// `t` with its `{name}` placeholders filled in.
pub fn tf(lang: Language, key: &str, args: &[(&str, &str)]) -> String {
    let mut out = t(lang, key).to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// An amount as the language writes it: `1.234,50` (es, de, nl, it, pt), `1 234,50` (fr, a narrow no-break
/// space), `1,234.50` (en).
pub fn money(d: Decimal, lang: Language) -> String {
    let (thousands, decimal) = match lang {
        Language::En => (",", "."),
        Language::Fr => ("\u{202F}", ","),
        _ => (".", ","),
    };
    let s = format!("{:.2}", d.round_dp(2));
    let (neg, s) = s.strip_prefix('-').map(|r| (true, r)).unwrap_or((false, s.as_str()));
    let (int, frac) = s.split_once('.').unwrap_or((s, "00"));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push_str(thousands);
        }
        grouped.push(ch);
    }
    format!("{}{grouped}{decimal}{frac}", if neg { "-" } else { "" })
}

/// An amount with its currency code after it, or the amount alone when the currency is unknown.
pub fn money_in(d: Decimal, currency: Option<&str>, lang: Language) -> String {
    match currency.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => format!("{} {c}", money(d, lang)),
        None => money(d, lang),
    }
}

/// A VAT rate as the language writes it: `21`, `10,5` (`10.5` in English).
pub fn rate(r: Decimal, lang: Language) -> String {
    let s = r.normalize().to_string();
    if lang == Language::En {
        s
    } else {
        s.replace('.', ",")
    }
}

/// A date as the language writes it; ISO 8601 in English, where day and month orders differ by country.
pub fn date(d: NaiveDate, lang: Language) -> String {
    let f = match lang {
        Language::En => "%Y-%m-%d",
        Language::De => "%d.%m.%Y",
        Language::Nl => "%d-%m-%Y",
        _ => "%d/%m/%Y",
    };
    d.format(f).to_string()
}

/// An IBAN in groups of four, the way it is printed (ISO 13616).
pub fn iban(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// A size in megabytes, with the language's decimal mark.
pub fn size(bytes: u64, lang: Language) -> String {
    let mb = Decimal::from(bytes) / Decimal::from(1024 * 1024);
    let s = format!("{:.1}", mb.round_dp(1));
    format!("{} MB", if lang == Language::En { s } else { s.replace('.', ",") })
}

/// The language a supplier from `country` (ISO 3166 alpha-2) most likely reads; `None` where a country
/// speaks several of ours (Belgium, Switzerland) or none.
pub fn language_of_country(country: &str) -> Option<Language> {
    match country.trim().to_ascii_uppercase().as_str() {
        "ES" => Some(Language::Es),
        "DE" | "AT" | "LI" => Some(Language::De),
        "FR" | "MC" => Some(Language::Fr),
        "NL" => Some(Language::Nl),
        "IT" | "SM" => Some(Language::It),
        "PT" | "BR" => Some(Language::Pt),
        "GB" | "IE" | "US" | "MT" => Some(Language::En),
        _ => None,
    }
}

/// The catalog key of the sentence for an error code, for the supplier (`error.*`) or a short one for the
/// accountants (`error_short.*`).
pub fn error_key(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Encrypted => "encrypted",
        ErrorCode::Unreadable => "unreadable",
        ErrorCode::UnsupportedType => "unsupported_type",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::TooManyPages => "too_many_pages",
        ErrorCode::NoInvoiceFound => "no_invoice_found",
        ErrorCode::InvalidEinvoice => "invalid_einvoice",
        ErrorCode::Timeout | ErrorCode::SandboxFailure => "review",
    }
}

/// The sentence the supplier can act on, for an error code.
pub fn error_sentence(code: ErrorCode, lang: Language, max_pages: u32) -> String {
    tf(lang, &format!("error.{}", error_key(code)), &[("max", &max_pages.to_string())])
}

/// A failed check as a sentence: what is wrong, and the figures or the value behind it when the detail holds no
/// words (the extractor writes its details in English for operators).
pub fn check_sentence(check: &Check, lang: Language) -> String {
    let key = match check.name.as_str() {
        "totals_add_up" | "BR-CO-15" | "facturae:InvoiceTotal" => "check.totals",
        "tax_id_checksum" => "check.tax_id",
        "iban_checksum" => "check.iban",
        "xml_matches_visual" => "check.xml_visual",
        "qr_matches_visual" => "check.qr_visual",
        validate::CHECK_TOTAL_READ => "check.total_read",
        validate::CHECK_TOTAL_POSITIVE => "check.total_positive",
        "addressed_to_us" => "check.addressed_to_us",
        "lines_sum" => "check.lines_sum",
        n if n.starts_with("BR-") || n.starts_with("PEPPOL-") => "check.einvoice_rule",
        _ => "check.other",
    };
    let what = tf(lang, key, &[("rule", &check.name)]);
    match check_figures(check) {
        Some(f) => format!("{what} ({f})"),
        None => what,
    }
}

/// What of a check's detail can be shown in any language: a wordless detail (`1000.00 + 210.00 ≠ 1200.00`),
/// or the value a checksum check names first (an IBAN or tax ID).
fn check_figures(check: &Check) -> Option<String> {
    let detail = check.detail.as_deref()?.trim();
    if detail.is_empty() {
        return None;
    }
    let is_word = |w: &str| w.chars().filter(|c| c.is_alphabetic()).count() >= 2 && w.chars().any(|c| c.is_lowercase());
    if !detail.split_whitespace().any(is_word) {
        return Some(super::headers::line_text(detail));
    }
    match check.name.as_str() {
        "iban_checksum" => detail.split_whitespace().next().map(iban),
        "tax_id_checksum" => detail.split_whitespace().next().filter(|w| !is_word(w)).map(super::headers::line_text),
        _ => None,
    }
}

/// The extractor's warnings that ask for a look, translated by kind; the rest only counted. (A withholding is
/// not one: the confirmation shows it as its own line.)
pub fn notes(warnings: &[String], lang: Language) -> (Vec<String>, usize) {
    let mut known = Vec::new();
    let mut others = 0;
    for w in warnings {
        let lower = w.to_lowercase();
        let key = if lower.contains("were dropped") || lower.contains("were not kept") {
            Some("note.net_tax_dropped")
        } else {
            None
        };
        if key.is_none() && (lower.contains("irpf") || lower.contains("withholding")) {
            continue;
        }
        match key {
            Some(k) => {
                let s = t(lang, k).to_string();
                if !known.contains(&s) {
                    known.push(s);
                }
            }
            None => others += 1,
        }
    }
    (known, others)
}

pub fn source_label(s: Source, lang: Language) -> &'static str {
    let key = match s {
        Source::Cii => "source.cii",
        Source::Ubl => "source.ubl",
        Source::Facturae => "source.facturae",
        Source::PdfText => "source.pdf_text",
        Source::Ocr => "source.ocr",
        Source::SupplierMemory => "source.supplier_memory",
        Source::QrSwiss | Source::QrEpc | Source::QrVerifactu | Source::QrTicketbai | Source::QrPt => "source.qr",
    };
    t(lang, key)
}

/// The label of a field the extractor names (`total_amount`, `supplier.iban`); `None` for a name we do not know.
pub fn field_label(name: &str, lang: Language) -> Option<String> {
    let key = match name {
        "invoice_number" => "field.number",
        "invoice_series" => "field.series",
        "issue_date" => "field.issue_date",
        "due_date" => "field.due_date",
        "total_amount" => "field.total",
        "net_amount" => "field.base",
        "tax_amount" => "field.vat",
        "amount_due" => "field.amount_due",
        "currency" => "field.currency",
        "document_type" => "field.document_type",
        "supplier.name" => "field.supplier",
        "customer.name" => "field.customer",
        "supplier.iban" | "iban" => "field.iban",
        "supplier.tax_id" => return Some(format!("{} ({})", t(lang, "field.tax_id"), t(lang, "field.supplier"))),
        "customer.tax_id" => return Some(format!("{} ({})", t(lang, "field.tax_id"), t(lang, "field.customer"))),
        "supplier.country" => return Some(format!("{} ({})", t(lang, "field.country"), t(lang, "field.supplier"))),
        "customer.country" => return Some(format!("{} ({})", t(lang, "field.country"), t(lang, "field.customer"))),
        _ => return None,
    };
    Some(t(lang, key).to_string())
}

/// The reason a sender was not trusted (`mail::auth` writes it in English for the log), as a sentence.
pub fn auth_reason(reason: &str, lang: Language) -> String {
    // "sender not authenticated: <verdict>[; Reply-To: <address>]", as the quarantine stores it.
    let reason = reason.trim();
    let reason = reason.strip_prefix("sender not authenticated: ").unwrap_or(reason);
    let (verdict, reply_to) = match reason.rsplit_once("; Reply-To: ") {
        Some((v, r)) => (v, Some(r)),
        None => (reason, None),
    };
    let word_after = |marker: &str| {
        verdict
            .split_once(marker)
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(|w| super::headers::line_text(w.trim_matches(|c: char| matches!(c, ',' | ';' | '(' | ')' | '"'))))
    };
    let sentence = if verdict.contains("is not on the allowlist") {
        t(lang, "auth.not_allowlisted").to_string()
    } else if verdict.contains("has no domain") {
        t(lang, "auth.no_domain").to_string()
    } else if verdict.starts_with("Authentication-Results from") && verdict.contains("is malformed") {
        t(lang, "auth.malformed").to_string()
    } else if verdict.starts_with("no Authentication-Results from") {
        tf(lang, "auth.no_results", &[("server", &word_after("from ").unwrap_or_default())])
    } else if verdict.contains("was for") && verdict.starts_with("dmarc=") {
        tf(lang, "auth.dmarc_other", &[("domain", &word_after("was for ").unwrap_or_default())])
    } else if verdict.starts_with("dmarc=fail for") {
        tf(lang, "auth.dmarc_fail", &[("domain", &word_after("for ").unwrap_or_default())])
    } else if verdict.starts_with("dkim=pass for") && verdict.contains("is not aligned") {
        tf(lang, "auth.dkim_not_aligned", &[("domain", &word_after("for ").unwrap_or_default())])
    } else {
        t(lang, "auth.not_authenticated").to_string()
    };
    match reply_to {
        Some(r) => {
            format!("{sentence}; {}", tf(lang, "auth.reply_to_differs", &[("address", &super::headers::line_text(r))]))
        }
        None => sentence,
    }
}

/// A fraud signal as the sentence the accountants read, with the amounts and dates in their language.
pub fn fraud_sentence(s: &crate::fraud::Signal, lang: Language) -> String {
    use crate::fraud::Signal;
    match s {
        Signal::IbanChanged { previous, now, since } => {
            let (previous, now) = (iban(previous), iban(now));
            match since {
                Some(d) => tf(
                    lang,
                    "fraud.iban_changed_since",
                    &[("now", &now), ("previous", &previous), ("date", &date(*d, lang))],
                ),
                None => tf(lang, "fraud.iban_changed", &[("now", &now), ("previous", &previous)]),
            }
        }
        Signal::QrIbanDiffersFromPage { code, page } => {
            tf(lang, "fraud.qr_iban", &[("code", &iban(code)), ("page", &iban(page))])
        }
        Signal::NumberReusedWithDifferentDate { number, previous_date, now } => tf(
            lang,
            "fraud.number_date",
            &[
                ("number", &super::headers::line_text(number)),
                ("previous", &date(*previous_date, lang)),
                ("now", &date(*now, lang)),
            ],
        ),
        Signal::NumberReusedWithDifferentTotal { number, previous_total, now } => tf(
            lang,
            "fraud.number_total",
            &[
                ("number", &super::headers::line_text(number)),
                ("previous", &money(*previous_total, lang)),
                ("now", &money(*now, lang)),
            ],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::str::FromStr;

    fn placeholders(s: &str) -> BTreeSet<String> {
        s.split('{').skip(1).filter_map(|p| p.split_once('}').map(|(name, _)| name.to_string())).collect()
    }

    #[test]
    fn every_catalog_parses_and_has_every_key_of_the_others_with_the_same_placeholders() {
        let tables: Vec<(Language, Table)> =
            SOURCES.iter().map(|(l, src)| (*l, parse(src).unwrap_or_else(|e| panic!("{l:?}: {e}")))).collect();
        let all_keys: BTreeSet<&String> = tables.iter().flat_map(|(_, t)| t.keys()).collect();
        for (lang, table) in &tables {
            let missing: Vec<&&String> = all_keys.iter().filter(|k| !table.contains_key(**k)).collect();
            assert!(missing.is_empty(), "{lang:?} lacks {missing:?}");
        }
        let (_, es) = &tables[0];
        for (lang, table) in &tables {
            for (key, text) in table {
                assert!(!text.trim().is_empty(), "{lang:?} {key} is empty");
                assert_eq!(placeholders(text), placeholders(&es[key]), "{lang:?} {key}: placeholders differ from es");
            }
        }
    }

    #[test]
    fn amounts_dates_and_ibans_are_written_the_languages_way() {
        let d = Decimal::from_str("1234567.5").unwrap();
        assert_eq!(money(d, Language::Es), "1.234.567,50");
        assert_eq!(money(d, Language::En), "1,234,567.50");
        assert_eq!(money(d, Language::Fr), "1\u{202F}234\u{202F}567,50");
        assert_eq!(money(Decimal::from_str("-45.1").unwrap(), Language::De), "-45,10");
        let day = NaiveDate::from_ymd_opt(2025, 3, 7).unwrap();
        assert_eq!(date(day, Language::Es), "07/03/2025");
        assert_eq!(date(day, Language::De), "07.03.2025");
        assert_eq!(date(day, Language::En), "2025-03-07");
        assert_eq!(iban("es9121000418450200051332"), "ES91 2100 0418 4502 0005 1332");
        assert_eq!(rate(Decimal::from_str("10.50").unwrap(), Language::Es), "10,5");
    }

    #[test]
    fn english_check_details_never_reach_another_language() {
        let iban_check =
            Check::new("iban_checksum", false, Some("ES9221000418450200051332 fails mod 97 or its length".into()));
        let s = check_sentence(&iban_check, Language::Es);
        assert_eq!(
            s,
            "el IBAN impreso no es válido (dígitos de control) y no se ha tomado (ES92 2100 0418 4502 0005 1332)"
        );
        let totals = Check::new("totals_add_up", false, Some("1000.00 + 210.00 ≠ 1200.00".into()));
        assert!(check_sentence(&totals, Language::De).ends_with("(1000.00 + 210.00 ≠ 1200.00)"));
        let words = Check::new("totals_add_up", false, Some("the net and tax amounts printed do not add up".into()));
        assert_eq!(check_sentence(&words, Language::Es), "el total no coincide con la base imponible más el IVA");
        let (notes, others) =
            notes(&["net and tax amounts contradict the total and were dropped".into(), "x y z".into()], Language::Es);
        assert_eq!(notes, ["la base imponible y el IVA impresos no cuadran con el total y no se han tomado"]);
        assert_eq!(others, 1);
    }

    #[test]
    fn quarantine_reasons_are_translated_by_kind() {
        assert_eq!(
            auth_reason("sender not authenticated: no Authentication-Results from mx.example.test", Language::Es),
            "nuestro servidor de correo no ha dejado resultado de autenticación (mx.example.test)"
        );
        assert_eq!(
            auth_reason("sender not authenticated: dmarc=fail for example.com; Reply-To: x@evil.test", Language::En),
            "DMARC failed for example.com; replies go to another address: x@evil.test"
        );
        assert_eq!(auth_reason("anything else", Language::Fr), t(Language::Fr, "auth.not_authenticated"));
    }
}
