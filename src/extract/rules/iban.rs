//! IBANs (ISO 13616): a newtype that only exists with the right length for its country and a mod-97 remainder
//! of 1, so one misread digit never becomes a bank account.

use regex::Regex;
use std::fmt;
use std::sync::LazyLock;

/// How long an IBAN of `candidate`'s country is, judged on the candidate itself: the number of its characters
/// (`candidate` holds letters and digits only) that would be a valid IBAN once its check digits were right.
/// `None` when no cut of it could be one (an unknown country, or a BBAN of the wrong shape). The country
/// formats are the SWIFT IBAN registry's, as `iban_validate` carries them.
fn country_length(candidate: &str) -> Option<usize> {
    (15..=candidate.len().min(34)).find(|&n| {
        let head = &candidate[..n];
        let check = 98 - mod97(&format!("{}{}00", &head[4..], &head[..2]));
        format!("{}{check:02}{}", &head[..2], &head[4..]).parse::<::iban::Iban>().is_ok()
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IbanError {
    #[error("not shaped like an IBAN")]
    Format,
    #[error("wrong length for the IBAN's country")]
    Length,
    #[error("the IBAN's check digits do not match")]
    Checksum,
}

/// A checked IBAN, stored without spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iban(String);

impl Iban {
    /// Parse an IBAN written with or without spaces (`ES91 2100 0418 4502 0005 1332`).
    pub fn parse(s: &str) -> Result<Iban, IbanError> {
        let compact: String =
            s.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
        if compact.len() < 5 || !compact.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(IbanError::Format);
        }
        let (country, check) = (&compact[..2], &compact[2..4]);
        if !country.chars().all(|c| c.is_ascii_uppercase()) || !check.chars().all(|c| c.is_ascii_digit()) {
            return Err(IbanError::Format);
        }
        match compact.parse::<::iban::Iban>() {
            Ok(_) => Ok(Iban(compact)),
            // The library checks the digits before the country's format; a wrong length or an unknown
            // country is the more useful answer, so the checksum is only blamed when the rest is right.
            Err(_) if country_length(&compact) == Some(compact.len()) => Err(IbanError::Checksum),
            Err(_) => Err(IbanError::Length),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn country(&self) -> &str {
        &self.0[..2]
    }

    /// Groups of four, as printed on paper.
    pub fn grouped(&self) -> String {
        self.0.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join(" ")
    }
}

impl fmt::Display for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IBAN-shaped string found in text: valid, or with the error that stopped it.
#[derive(Debug, Clone, PartialEq)]
pub struct IbanMatch {
    pub start: usize,
    pub end: usize,
    pub iban: Result<Iban, IbanError>,
}

static IBAN_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)[A-Z]{2}[0-9]{2}[ \t\u{a0}]{0,3}[0-9A-Z]").expect("iban regex"));

/// Every IBAN in `text`, tolerant of spaces (and the tabs some PDF producers put between groups). The run of
/// characters is cut at the length the country requires, so trailing words (`- BIC`) do not spoil it.
pub fn find_ibans(text: &str) -> Vec<IbanMatch> {
    let mut out: Vec<IbanMatch> = Vec::new();
    for m in IBAN_START.find_iter(text) {
        if out.last().is_some_and(|o| m.start() < o.end) {
            continue;
        }
        // The run of letters and digits (spaces between groups allowed), as long as an IBAN can be.
        let mut run = String::new();
        let mut ends = Vec::new();
        let mut gap = 0;
        for (i, c) in text[m.start()..].char_indices() {
            if c.is_ascii_alphanumeric() {
                run.push(c);
                ends.push(m.start() + i + 1);
                gap = 0;
                if run.len() == 34 {
                    break;
                }
            } else if matches!(c, ' ' | '\t' | '\u{a0}') && gap < 3 {
                gap += 1;
            } else {
                break;
            }
        }
        // No cut of the run fitting its country, but the run padded with zeros fitting: an IBAN printed short.
        let padded = || country_length(&format!("{run:0<34}")).filter(|&l| l > run.len());
        let Some(len) = country_length(&run).or_else(padded) else {
            continue;
        };
        let taken = len.min(run.len());
        let end = ends[taken - 1];
        // A letter or digit glued right after the cut means we are inside something longer.
        let glued = text[end..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let cut_short = taken < len || glued;
        let iban = if cut_short { Err(IbanError::Length) } else { Iban::parse(&text[m.start()..end]) };
        if iban.is_err() {
            // Not an IBAN; a direct-debit invoice's creditor identifier is not a misprinted one either.
            let token: String = text[m.start()..].chars().take_while(char::is_ascii_alphanumeric).collect();
            if is_creditor_id(&token) || cut_short && taken < 15 {
                continue;
            }
        }
        out.push(IbanMatch { start: m.start(), end, iban });
    }
    out
}

/// A SEPA creditor identifier (`DE98ZZZ09999999999`): country, two check digits, a three-character business
/// code and the national identifier. Direct-debit invoices print it beside the IBAN, and it looks like one, but
/// its check (ISO 7064 mod 97-10, as an IBAN's) leaves the business code out (EPC262-08).
fn is_creditor_id(s: &str) -> bool {
    let b = s.as_bytes();
    (8..=35).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b.iter().all(u8::is_ascii_alphanumeric)
        && mod97(&format!("{}{}", &s[7..], &s[..4])) == 1
}

/// ISO 7064 mod 97-10 of `s` with letters as 10..35, as IBANs, SEPA creditor IDs and Dutch VAT numbers use it.
pub fn mod97(s: &str) -> u32 {
    s.chars().fold(0u32, |acc, c| {
        let v = c.to_digit(36).unwrap_or(0);
        if v >= 10 {
            (acc * 100 + v) % 97
        } else {
            (acc * 10 + v) % 97
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_spanish_iban_parses_with_or_without_spaces() {
        let a = Iban::parse("ES91 2100 0418 4502 0005 1332").unwrap();
        let b = Iban::parse("ES9121000418450200051332").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.country(), "ES");
        assert_eq!(a.grouped(), "ES91 2100 0418 4502 0005 1332");
    }

    #[test]
    fn an_iban_with_one_digit_changed_is_rejected() {
        assert_eq!(Iban::parse("ES91 2100 0418 4502 0005 1333"), Err(IbanError::Checksum));
        assert_eq!(Iban::parse("ES81 2100 0418 4502 0005 1332"), Err(IbanError::Checksum));
    }

    #[test]
    fn an_iban_of_the_wrong_length_for_its_country_is_rejected() {
        assert_eq!(Iban::parse("ES91 2100 0418 4502 0005 133"), Err(IbanError::Length));
        assert_eq!(Iban::parse("QQ91 2100 0418 4502 0005 1332"), Err(IbanError::Length));
        assert_eq!(Iban::parse("hello"), Err(IbanError::Format));
    }

    #[test]
    fn ibans_of_other_countries_parse() {
        for s in ["DE89 3704 0044 0532 0130 00", "FR14 2004 1010 0505 0001 3M02 606", "GB29 NWBK 6016 1331 9268 19"] {
            assert!(Iban::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn ibans_of_every_registry_country_parse_including_vatican_russia_and_libya() {
        // The SWIFT IBAN registry's examples.
        for s in [
            "VA59 0011 2300 0012 3456 78",
            "RU02 0445 2560 0407 0281 0412 3456 7890 1",
            "LY83 0020 4800 0020 1001 2036 1",
            "NO93 8601 1117 947",
            "MT84 MALT 0110 0001 2345 MTLC AST0 01S",
        ] {
            let iban = Iban::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            let found: Vec<_> = find_ibans(&format!("Bank: {s} BIC XXXXXX")).into_iter().map(|m| m.iban).collect();
            assert_eq!(found, vec![Ok(iban)], "{s}");
        }
        assert_eq!(Iban::parse("VA59 0011 2300 0012 3456 79"), Err(IbanError::Checksum));
        assert_eq!(find_ibans("IBAN RU02 0445 2560 0407 0281 0412 3456 7890")[0].iban, Err(IbanError::Length));
    }

    #[test]
    fn ibans_are_found_in_text_and_cut_at_their_length() {
        let text =
            "IBAN : FR14 2004 1010 0505 0001 3M02 606 - BIC : FIDCFR21XXX\nIBAN:\tDE89\t  3704 0044 0532 0130 00";
        let found: Vec<String> =
            find_ibans(text).into_iter().filter_map(|m| m.iban.ok()).map(|i| i.to_string()).collect();
        assert_eq!(found, vec!["FR1420041010050500013M02606", "DE89370400440532013000"]);
    }

    #[test]
    fn a_sepa_creditor_identifier_is_neither_an_iban_nor_a_misprinted_one() {
        // The Bundesbank's example and the one a Hetzner invoice in the corpus prints.
        for ci in ["DE98ZZZ09999999999", "DE63ZZZ00000015422"] {
            assert!(is_creditor_id(ci), "{ci}");
            assert!(find_ibans(&format!("Gläubiger-ID: {ci}")).is_empty(), "{ci}");
        }
        assert!(!is_creditor_id("DE98ZZZ09999999998"));
        assert!(!is_creditor_id("ES9121000418450200051332"));
        // A real IBAN beside it is still found, and a misprinted one still reported.
        let found = find_ibans("Gläubiger-ID DE98ZZZ09999999999  IBAN DE89 3704 0044 0532 0130 00");
        assert_eq!(found.len(), 1);
        assert!(found[0].iban.is_ok());
        assert_eq!(find_ibans("IBAN DE89 3704 0044 0532 0130 01")[0].iban, Err(IbanError::Checksum));
    }

    #[test]
    fn a_misprinted_iban_in_text_is_reported_not_dropped() {
        let found = find_ibans("IBAN ES91 2100 0418 4502 0005 1333");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].iban, Err(IbanError::Checksum));
    }
}
