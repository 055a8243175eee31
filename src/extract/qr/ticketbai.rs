//! The Basque TicketBAI code ("TicketBAI: especificaciones funcionales y técnicas", v1.2, §6): a URL of the
//! provincial treasury with exactly `id` (the TBAI identifier), `s` (series), `nf` (number), `i` (total) and
//! `cr`, a CRC-8 of everything before `&cr=`. The identifier `TBAI-<NIF>-<DDMMYY>-<13 signature characters>-<CRC>`
//! carries the issuer's NIF and the issue date, and its own CRC-8.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

use super::{invalid, text, Code, Kind, PayloadError, Url};
use crate::extract::rules::taxid::TaxId;

const KIND: Kind = Kind::Ticketbai;
const ID_LEN: usize = 39;

/// CRC-8, polynomial x⁸+x²+x+1 (0x07), initial value 0, no reflection, as the specification's annex gives it,
/// written as three decimal digits.
pub fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 { (crc << 1) ^ 0x07 } else { crc << 1 };
        }
    }
    crc
}

pub(crate) fn parse(raw: &str, url: &Url) -> Result<Code, PayloadError> {
    let [id, series, number, amount, cr] =
        url.exactly(&["id", "s", "nf", "i", "cr"]).map_err(|e| invalid(KIND, e))?[..]
    else {
        unreachable!("five names give five values")
    };
    // The URL's CRC covers the URL as written, up to `&cr=`.
    let Some(signed) = raw.trim().rsplit_once("&cr=").map(|(head, _)| head) else {
        return Err(invalid(KIND, "the URL does not end with its CRC parameter cr"));
    };
    if format!("{:03}", crc8(signed.as_bytes())) != cr {
        return Err(invalid(KIND, format!("the URL's CRC {cr:?} does not match: the code is damaged or altered")));
    }
    if id.len() != ID_LEN || !id.is_ascii() || id.as_bytes()[ID_LEN - 4] != b'-' {
        return Err(invalid(KIND, format!("the identifier {id:?} is not TBAI-NIF-DDMMYY-signature-CRC")));
    }
    if format!("{:03}", crc8(&id.as_bytes()[..ID_LEN - 3])) != id[ID_LEN - 3..] {
        return Err(invalid(KIND, format!("the identifier's CRC in {id:?} does not match")));
    }
    let (nif, date) = (&id[5..14], &id[15..21]);
    let mut code = Code { kind: Some(KIND), ..Code::default() };
    let w = &mut code.warnings;
    match TaxId::parse(nif) {
        Ok(t) if t.country() == "ES" => code.supplier_tax_id = Some(t.number().to_string()),
        Ok(_) => w.push(format!("TicketBAI: the NIF {nif:?} is refused: not Spanish")),
        Err(e) => w.push(format!("TicketBAI: the NIF {nif:?} is refused: {e}")),
    }
    code.issue_date = NaiveDate::parse_from_str(&format!("{}20{}", &date[..4], &date[4..]), "%d%m%Y").ok();
    if code.issue_date.is_none() {
        w.push(format!("TicketBAI: the date {date:?} in the identifier is refused: not a date DDMMYY"));
    }
    code.invoice_series = text(Some(series));
    code.invoice_number = text(Some(number));
    if code.invoice_number.is_none() {
        w.push("TicketBAI: the invoice number nf is empty".to_string());
    }
    let unsigned = amount.strip_prefix('-').unwrap_or(amount);
    let max = Decimal::from_str("999999999999.99").expect("constant");
    code.total_amount = super::plain_amount(unsigned, max).map(|v| if amount.starts_with('-') { -v } else { v });
    if code.total_amount.is_none() {
        w.push(format!("TicketBAI: the amount {amount:?} is refused: not a number with at most 2 decimals"));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::qr;

    const SPEC: &str =
        "https://batuz.eus/QRTBAI/?id=TBAI-00000006Y-251019-btFpwP8dcLGAF-237&s=T&nf=27174&i=4.70&cr=007";

    /// The URL with `query` (before `&cr=`) and its CRC recomputed, as an issuing system would write it.
    fn signed(head: &str) -> String {
        format!("{head}&cr={:03}", crc8(head.as_bytes()))
    }

    #[test]
    fn the_specifications_example_gives_nif_date_series_number_and_total() {
        let c = qr::parse(SPEC).unwrap();
        assert_eq!(c.kind, Some(Kind::Ticketbai));
        assert_eq!(c.supplier_tax_id.as_deref(), Some("00000006Y"));
        assert_eq!(c.issue_date, NaiveDate::from_ymd_opt(2019, 10, 25));
        assert_eq!(c.invoice_series.as_deref(), Some("T"));
        assert_eq!(c.invoice_number.as_deref(), Some("27174"));
        assert_eq!(c.total_amount, Some(Decimal::from_str("4.70").unwrap()));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn an_altered_url_fails_its_crc_and_is_refused_whole() {
        let err = qr::parse(&SPEC.replace("i=4.70", "i=4.80")).unwrap_err();
        assert!(err.to_string().contains("CRC"), "{err}");
        let err = qr::parse(&signed(&SPEC[..SPEC.len() - 7].replace("-237", "-238"))).unwrap_err();
        assert!(err.to_string().contains("identifier's CRC"), "{err}");
    }

    #[test]
    fn an_identifier_of_another_format_is_refused_whole() {
        // One signature character short, as another version of the identifier would be, with valid CRCs.
        let id = "TBAI-00000006Y-251019-btFpwP8dcLGA-";
        let id = format!("{id}{:03}", crc8(id.as_bytes()));
        let err = qr::parse(&signed(&format!("https://batuz.eus/QRTBAI/?id={id}&s=T&nf=1&i=4.70"))).unwrap_err();
        assert!(err.to_string().contains("TBAI-NIF-DDMMYY"), "{err}");
    }

    #[test]
    fn a_url_with_an_extra_or_a_missing_parameter_is_refused_whole() {
        let head = &SPEC[..SPEC.len() - 7];
        assert!(qr::parse(&signed(&format!("{head}&x=1"))).unwrap_err().to_string().contains("\"x\""));
        assert!(qr::parse(&signed(&head.replace("&nf=27174", ""))).unwrap_err().to_string().contains("nf"));
        assert!(qr::parse(head).is_err(), "a truncated URL without cr");
    }

    #[test]
    fn a_non_numeric_amount_is_refused_and_the_rest_kept() {
        let c = qr::parse(&signed(&SPEC[..SPEC.len() - 7].replace("4.70", "4,70"))).unwrap();
        assert_eq!(c.total_amount, None);
        assert_eq!(c.invoice_number.as_deref(), Some("27174"));
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn a_non_existent_date_in_the_identifier_is_refused() {
        let id = "TBAI-00000006Y-310219-btFpwP8dcLGAF-";
        let id = format!("{id}{:03}", crc8(id.as_bytes()));
        let c = qr::parse(&signed(&format!("https://batuz.eus/QRTBAI/?id={id}&s=T&nf=1&i=4.70"))).unwrap();
        assert_eq!(c.issue_date, None);
        assert!(c.warnings[0].contains("date"));
    }
}
