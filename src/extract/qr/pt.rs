//! The Portuguese AT QR code (Portaria 195/2020, "Especificações técnicas do código QR", §4–5): fields `KEY:value`
//! separated by `*`, in a fixed order, `A` (issuer NIF) to `S`. Read here: `A`, `B` (buyer NIF; `999999990` is
//! the final consumer, no one), `C` (buyer country), `F` (date YYYYMMDD), `G` (document number), `H` (ATCUD),
//! `N` (total tax) and `O` (total with tax).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

use super::{invalid, Code, Kind, PayloadError};
use crate::extract::rules::taxid::TaxId;

const KIND: Kind = Kind::Pt;
/// The fields every code has (§4, "obrigatório").
const REQUIRED: [&str; 13] = ["A", "B", "C", "D", "E", "F", "G", "H", "I1", "N", "O", "Q", "R"];
/// The consumidor final: a sale without the buyer's NIF.
const FINAL_CONSUMER: &str = "999999990";

fn known(key: &str) -> bool {
    let regions = ['I', 'J', 'K'];
    matches!(key, "A" | "B" | "C" | "D" | "E" | "F" | "G" | "H" | "L" | "M" | "N" | "O" | "P" | "Q" | "R" | "S")
        || key.len() == 2
            && key.starts_with(regions)
            && key.as_bytes()[1].is_ascii_digit()
            && (b'1'..=b'8').contains(&key.as_bytes()[1])
}

pub fn parse(payload: &str) -> Result<Code, PayloadError> {
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for part in payload.trim().split('*') {
        let Some((key, value)) = part.split_once(':') else {
            return Err(invalid(KIND, format!("the field {part:?} is not KEY:value")));
        };
        if !known(key) {
            return Err(invalid(KIND, format!("the field {key:?} is not in the specification")));
        }
        if fields.iter().any(|(k, _)| *k == key) {
            return Err(invalid(KIND, format!("the field {key:?} is repeated")));
        }
        fields.push((key, value));
    }
    let get = |k: &str| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| v.trim());
    if let Some(missing) = REQUIRED.iter().find(|k| get(k).is_none()) {
        return Err(invalid(KIND, format!("truncated: the required field {missing} is missing")));
    }
    let field = |k: &str| get(k).expect("required fields are present");
    let mut code = Code { kind: Some(KIND), ..Code::default() };
    let w = &mut code.warnings;
    let a = field("A");
    match TaxId::parse(&format!("PT{a}")) {
        Ok(id) if a.len() == 9 => code.supplier_tax_id = Some(id.number().to_string()),
        Ok(_) => w.push(format!("Portuguese AT QR: the issuer NIF {a:?} is refused: not nine digits")),
        Err(e) => w.push(format!("Portuguese AT QR: the issuer NIF {a:?} is refused: {e}")),
    }
    let (b, c) = (field("B"), field("C"));
    if b != FINAL_CONSUMER {
        if c == "PT" {
            match TaxId::parse(&format!("PT{b}")) {
                Ok(id) if b.len() == 9 => code.customer_tax_id = Some(id.number().to_string()),
                _ => w.push(format!("Portuguese AT QR: the buyer NIF {b:?} is refused: not a valid Portuguese NIF")),
            }
        } else if !b.is_empty() {
            code.customer_tax_id = Some(b.to_string());
        }
        if c.len() == 2 && c.bytes().all(|x| x.is_ascii_uppercase()) {
            code.customer_country = Some(c.to_string());
        }
    }
    let f = field("F");
    code.issue_date = NaiveDate::parse_from_str(f, "%Y%m%d").ok().filter(|_| f.len() == 8);
    if code.issue_date.is_none() {
        w.push(format!("Portuguese AT QR: the date {f:?} is refused: not an existing date YYYYMMDD"));
    }
    let g = field("G");
    // `<internal type> <series>/<sequence>` (§4, field G).
    if g.contains(' ') && g.contains('/') && g.len() <= 60 {
        code.invoice_number = Some(g.to_string());
    } else {
        w.push(format!("Portuguese AT QR: the document number {g:?} is refused: not TYPE SERIES/NUMBER"));
    }
    let h = field("H");
    // The ATCUD is `<validation code>-<sequence>` and its sequence is the document number's (Decreto-Lei
    // 28/2019, art. 7); "0" was allowed before 2023. A mismatch means a damaged or altered code.
    if let Some((_, seq)) = h.rsplit_once('-') {
        if !g.ends_with(&format!("/{seq}")) {
            w.push(format!("Portuguese AT QR: the ATCUD {h:?} does not end with the document's sequence"));
        }
    }
    for (key, slot) in [("N", &mut code.tax_amount), ("O", &mut code.total_amount)] {
        let v = field(key);
        let max = Decimal::from_str("999999999999.99").expect("constant");
        *slot = super::plain_amount(v, max).filter(|_| v.contains('.'));
        if slot.is_none() {
            w.push(format!("Portuguese AT QR: the amount {key}:{v:?} is refused: not a number with two decimals"));
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FT: &str = "A:123456789*B:999999990*C:PT*D:FT*E:N*F:20191231*G:FT AB2019/0035*H:CSDF7T5H-0035*I1:PT*I2:12000.00*I3:15000.00*I4:900.00*I5:50000.00*I6:6500.00*I7:80000.00*I8:18400.00*J1:PT-AC*J2:10000.00*J3:25000.56*J4:1000.02*J5:75000.00*J6:6750.00*J7:100000.00*J8:18000.00*K1:PT-MA*K2:5000.00*K3:12500.00*K4:625.00*K5:25000.00*K6:3000.00*K7:40000.00*K8:8800.00*L:100.00*M:25.00*N:64000.02*O:513600.58*P:100.00*Q:kLp0*R:9999*S:TB;PT00000000000000000000000;513500.58";
    const PF: &str = "A:500000000*B:123456789*C:PT*D:PF*E:N*F:20190123*G:PF G2019CB/145789*H:HB6FT7RV-145789*I1:PT*I2:12345.34*I3:12532.65*I4:751.96*I5:52789.00*I6:6862.57*I7:32425.69*I8:7457.91*N:15072.44*O:125165.12*Q:r/fY*R:9999";

    #[test]
    fn the_specifications_examples_give_nifs_date_number_and_totals() {
        let c = crate::extract::qr::parse(FT).unwrap();
        assert_eq!(c.supplier_tax_id.as_deref(), Some("123456789"));
        assert_eq!(c.customer_tax_id, None, "999999990 is the final consumer");
        assert_eq!(c.issue_date, NaiveDate::from_ymd_opt(2019, 12, 31));
        assert_eq!(c.invoice_number.as_deref(), Some("FT AB2019/0035"));
        assert_eq!(c.tax_amount, Some(Decimal::from_str("64000.02").unwrap()));
        assert_eq!(c.total_amount, Some(Decimal::from_str("513600.58").unwrap()));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = parse(PF).unwrap();
        assert_eq!(c.customer_tax_id.as_deref(), Some("123456789"));
        assert_eq!(c.customer_country.as_deref(), Some("PT"));
    }

    #[test]
    fn a_truncated_code_is_refused_whole() {
        let cut = &PF[..PF.find("*N:").unwrap()];
        assert!(parse(cut).unwrap_err().to_string().contains("missing"));
        assert!(parse(&PF[..PF.find("*R:").unwrap()]).is_err());
    }

    #[test]
    fn an_unknown_or_repeated_field_is_refused_whole() {
        assert!(parse(&format!("{PF}*Z:1")).unwrap_err().to_string().contains("\"Z\""));
        assert!(parse(&format!("{PF}*A:123456789")).unwrap_err().to_string().contains("repeated"));
    }

    #[test]
    fn a_bad_nif_a_non_existent_date_and_a_non_numeric_amount_are_refused() {
        let bad = PF
            .replace("A:500000000", "A:500000001")
            .replace("F:20190123", "F:20190230")
            .replace("O:125165.12", "O:125.165,12");
        let c = parse(&bad).unwrap();
        assert_eq!((c.supplier_tax_id.as_deref(), c.issue_date, c.total_amount), (None, None, None));
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert_eq!(c.invoice_number.as_deref(), Some("PF G2019CB/145789"));
    }

    #[test]
    fn an_atcud_of_another_document_is_warned() {
        let c = parse(&PF.replace("HB6FT7RV-145789", "HB6FT7RV-145780")).unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("ATCUD")), "{:?}", c.warnings);
    }
}
