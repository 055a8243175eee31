//! The Spanish VeriFactu code (AEAT "Características del QR y especificaciones del servicio de cotejo", v0.4.7):
//! a URL to the AEAT's `ValidarQR` (a VERI*FACTU system) or `ValidarQRNoVerifactu`, with exactly the
//! parameters `nif`, `numserie`, `fecha` (DD-MM-AAAA) and `importe`, URL-encoded.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

use super::{invalid, Code, Kind, PayloadError, Url};
use crate::extract::rules::taxid::TaxId;

const KIND: Kind = Kind::Verifactu;
/// The production and the test service (§3): a code that sends its reader elsewhere is not the AEAT's.
const HOSTS: [&str; 2] = ["www2.agenciatributaria.gob.es", "prewww2.aeat.es"];
const PATHS: [&str; 2] = ["/wlpl/TIKE-CONT/ValidarQR", "/wlpl/TIKE-CONT/ValidarQRNoVerifactu"];
/// `NumSerieFactura` is at most 60 characters (Orden HAC/1177/2024, record design).
const MAX_NUMBER: usize = 60;

pub(crate) fn parse(url: &Url) -> Result<Code, PayloadError> {
    if !HOSTS.contains(&url.host.as_str()) {
        return Err(invalid(KIND, format!("the host {} is not the AEAT's", url.host)));
    }
    if !PATHS.contains(&url.path.as_str()) {
        return Err(invalid(KIND, format!("the path {} is not ValidarQR", url.path)));
    }
    let [nif, number, date, amount] =
        url.exactly(&["nif", "numserie", "fecha", "importe"]).map_err(|e| invalid(KIND, e))?[..]
    else {
        unreachable!("four names give four values")
    };
    let mut code = Code { kind: Some(KIND), ..Code::default() };
    let w = &mut code.warnings;
    match TaxId::parse(nif) {
        Ok(id) if id.country() == "ES" && nif.len() == 9 => code.supplier_tax_id = Some(id.number().to_string()),
        Ok(_) => w.push(format!("VeriFactu: the NIF {nif:?} is refused: not a Spanish NIF of nine characters")),
        Err(e) => w.push(format!("VeriFactu: the NIF {nif:?} is refused: {e}")),
    }
    let number = number.trim();
    if number.is_empty() || number.chars().count() > MAX_NUMBER {
        w.push(format!("VeriFactu: the invoice number {number:?} is refused: 1 to {MAX_NUMBER} characters"));
    } else {
        code.invoice_number = Some(number.to_string());
    }
    code.issue_date = NaiveDate::parse_from_str(date, "%d-%m-%Y").ok().filter(|_| date.len() == 10);
    if code.issue_date.is_none() {
        w.push(format!("VeriFactu: the date {date:?} is refused: not an existing date DD-MM-AAAA"));
    }
    code.total_amount = importe(amount);
    if code.total_amount.is_none() {
        w.push(format!(
            "VeriFactu: the amount {amount:?} is refused: not a number with at most 12 digits and 2 decimals"
        ));
    }
    Ok(code)
}

/// `ImporteTotal`: a sign, at most 12 integer digits, a point and at most 2 decimals.
fn importe(s: &str) -> Option<Decimal> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let max = Decimal::from_str("999999999999.99").expect("constant");
    let value = super::plain_amount(unsigned, max)?;
    Some(if s.starts_with('-') { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::qr;

    const TEST_ENV: &str =
        "https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR?nif=89890001K&numserie=12345678%26G33&fecha=01-01-2024&importe=241.4";
    const NO_VERIFACTU: &str = "https://www2.agenciatributaria.gob.es/wlpl/TIKE-CONT/ValidarQRNoVerifactu?nif=89890001K&numserie=12345678-G33&fecha=01-09-2024&importe=241.4";

    #[test]
    fn the_specifications_examples_give_nif_number_date_and_total() {
        let c = qr::parse(TEST_ENV).unwrap();
        assert_eq!(c.kind, Some(Kind::Verifactu));
        assert_eq!(c.supplier_tax_id.as_deref(), Some("89890001K"));
        assert_eq!(c.invoice_number.as_deref(), Some("12345678&G33"));
        assert_eq!(c.issue_date, NaiveDate::from_ymd_opt(2024, 1, 1));
        assert_eq!(c.total_amount, Some(Decimal::from_str("241.4").unwrap()));
        let c = qr::parse(NO_VERIFACTU).unwrap();
        assert_eq!(c.invoice_number.as_deref(), Some("12345678-G33"));
        assert_eq!(c.issue_date, NaiveDate::from_ymd_opt(2024, 9, 1));
    }

    #[test]
    fn a_url_with_an_extra_or_a_missing_parameter_is_refused_whole() {
        assert!(qr::parse(&format!("{NO_VERIFACTU}&iban=ES9121000418450200051332")).is_err());
        assert!(qr::parse(&NO_VERIFACTU.replace("&importe=241.4", "")).unwrap_err().to_string().contains("importe"));
        assert!(qr::parse(&format!("{NO_VERIFACTU}&nif=89890001K")).unwrap_err().to_string().contains("repeats"));
    }

    #[test]
    fn a_truncated_url_is_refused_whole() {
        assert!(qr::parse(&NO_VERIFACTU[..NO_VERIFACTU.len() - 30]).is_err());
    }

    #[test]
    fn another_service_or_version_of_the_path_is_refused_whole() {
        for path in ["ValidarQRv2", "ValidarQR/2", "ValidarQRNoVerifactu2"] {
            let url = NO_VERIFACTU.replace("ValidarQRNoVerifactu", path);
            assert!(qr::parse(&url).unwrap_err().to_string().contains("path"), "{url}");
        }
    }

    #[test]
    fn another_host_is_refused_whole() {
        assert!(qr::parse(&NO_VERIFACTU.replace("www2.agenciatributaria.gob.es", "agenciatributaria.example.com"))
            .unwrap_err()
            .to_string()
            .contains("host"));
    }

    #[test]
    fn a_non_existent_date_a_non_numeric_amount_and_a_bad_nif_are_refused() {
        let bad = NO_VERIFACTU
            .replace("01-09-2024", "31-02-2024")
            .replace("241.4", "241,40")
            .replace("89890001K", "89890001A");
        let c = qr::parse(&bad).unwrap();
        assert_eq!((c.issue_date, c.total_amount, c.supplier_tax_id.as_deref()), (None, None, None));
        assert_eq!(c.invoice_number.as_deref(), Some("12345678-G33"));
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert!(qr::parse(&NO_VERIFACTU.replace("01-09-2024", "2024-09-01")).unwrap().issue_date.is_none());
    }

    #[test]
    fn a_rectifying_invoice_has_a_negative_amount() {
        let c = qr::parse(&NO_VERIFACTU.replace("241.4", "-241.40")).unwrap();
        assert_eq!(c.total_amount, Some(Decimal::from_str("-241.40").unwrap()));
    }
}
