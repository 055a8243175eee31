//! A correction `FIELD=VALUE` applied to an extraction: the field named as in the schema (`total_amount`,
//! `supplier.tax_id`, …), the value checked as an extracted one would be. Pure: the caller stores the result and
//! the audit record.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

use crate::extract::rules::iban::Iban;
use crate::extract::rules::taxid::{TaxId, TaxIdError};
use crate::extract::{Check, DocumentType, Extraction, Party};

/// The fields a correction may name: the schema's scored fields (EVALUATION.md), the ones a page shows.
pub use crate::eval::FIELDS;

/// Split `FIELD=VALUE`.
pub fn parse_assignment(arg: &str) -> Result<(String, String), String> {
    let (field, value) =
        arg.split_once('=').ok_or_else(|| format!("{arg:?} is not FIELD=VALUE (for example total_amount=1210.00)"))?;
    let field = field.trim();
    if !FIELDS.contains(&field) {
        return Err(format!("unknown field {field:?}; the fields are: {}", FIELDS.join(", ")));
    }
    Ok((field.to_string(), value.trim().to_string()))
}

/// Set `field` to `value` in `e`. Returns the value read before and the value as stored.
pub fn apply(e: &mut Extraction, field: &str, value: &str) -> Result<(Option<String>, String), String> {
    let old = current(e, field);
    let stored = match field {
        "invoice_number" => {
            let v = non_empty(field, value)?;
            e.invoice_series = None;
            e.invoice_number = Some(v.clone());
            v
        }
        "issue_date" | "due_date" => {
            let d = date(field, value)?;
            *if field == "issue_date" { &mut e.issue_date } else { &mut e.due_date } = Some(d);
            d.to_string()
        }
        "currency" => {
            let c = value.trim().to_uppercase();
            if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_alphabetic()) {
                return Err(format!("currency must be an ISO 4217 code such as EUR, got {value:?}"));
            }
            e.currency = Some(c.clone());
            c
        }
        "document_type" => {
            let t: DocumentType = serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| {
                format!(
                    "document_type must be one of invoice, credit_note, corrected_invoice, receipt, unknown; got {value:?}"
                )
            })?;
            e.document_type = Some(t);
            value.to_string()
        }
        "net_amount" | "tax_amount" | "total_amount" | "amount_due" => {
            let a = amount(field, value)?;
            *match field {
                "net_amount" => &mut e.net_amount,
                "tax_amount" => &mut e.tax_amount,
                "total_amount" => &mut e.total_amount,
                _ => &mut e.amount_due,
            } = Some(a);
            a.to_string()
        }
        "supplier.name" | "customer.name" => {
            let v = non_empty(field, value)?;
            party(e, field).name = Some(v.clone());
            v
        }
        "supplier.tax_id" | "customer.tax_id" => {
            let id = TaxId::parse(value).map_err(|err| format!("{field}: {value:?} is not a valid tax ID ({err})"))?;
            if !id.checksum_verified() {
                return Err(format!("{field}: {value:?} fails its check digit"));
            }
            let printed = id.as_printed();
            let p = party(e, field);
            p.tax_id = Some(printed.clone());
            p.country = Some(id.country().to_string());
            printed
        }
        "supplier.iban" => {
            let iban =
                Iban::parse(value).map_err(|err| format!("supplier.iban: {value:?} is not a valid IBAN ({err})"))?;
            party(e, field).iban = Some(iban.as_str().to_string());
            iban.as_str().to_string()
        }
        other => return Err(format!("unknown field {other:?}; the fields are: {}", FIELDS.join(", "))),
    };
    if let Some(conf) = e.confidence.as_mut() {
        // An accountant's value is certain.
        conf.insert(field.to_string(), 1.0);
    }
    Ok((old, stored))
}

/// Two cents: documents round each tax line and then sum, so a total may be off the sum by a cent.
const TOTALS_TOLERANCE: Decimal = Decimal::from_parts(2, 0, 0, false, 2);

/// The checks run again on the corrected values, and the checks each one supersedes (the e-invoice rules say the
/// same thing in their own words).
/// The names of the checks `recheck` runs.
pub const RECHECKED: [&str; 3] = ["totals_add_up", "tax_id_checksum", "iban_checksum"];

const RECHECKS: [(&str, &[&str]); 3] = [
    ("totals_add_up", &["totals_add_up", "BR-CO-15", "total_readable", "total_not_negative"]),
    ("tax_id_checksum", &["tax_id_checksum"]),
    ("iban_checksum", &["iban_checksum"]),
];

/// Run the consistency checks again on a corrected extraction: the net plus the tax make the total, the tax IDs
/// pass their check digits, the IBAN passes mod 97. Each check that the corrected values allow replaces the
/// checks on the values as read; one they do not allow (no net, say) leaves the old ones. Returns the failed
/// checks, which make the invoice need review again.
pub fn recheck(e: &mut Extraction) -> Vec<Check> {
    let mut fresh: Vec<Check> = Vec::new();
    if let Some(total) = e.total_amount {
        if total.is_sign_negative() && !total.is_zero() && e.document_type == Some(DocumentType::Invoice) {
            fresh.push(Check::new("totals_add_up", false, Some(format!("total {total} of an invoice is negative"))));
        } else if let (Some(n), Some(t)) = (e.net_amount, e.tax_amount) {
            let ok = (n + t - total).abs() <= TOTALS_TOLERANCE;
            fresh.push(Check::new("totals_add_up", ok, Some(format!("net {n} + tax {t} = {} (total {total})", n + t))));
        }
    }
    for (role, p) in [("supplier", &e.supplier), ("customer", &e.customer)] {
        let Some(printed) = p.as_ref().and_then(|p| p.tax_id.as_deref()) else { continue };
        fresh.push(match TaxId::parse(printed) {
            Ok(id) if id.checksum_verified() => {
                Check::new("tax_id_checksum", true, Some(format!("{role} tax id {printed} passes its check digit")))
            }
            Ok(id) => Check::new(
                "tax_id_checksum",
                true,
                Some(format!(
                    "{role} tax id {printed} has the format of {} but no check digit we can verify",
                    id.country()
                )),
            ),
            Err(TaxIdError::Checksum) => {
                Check::new("tax_id_checksum", false, Some(format!("{role} tax id {printed} fails its check digit")))
            }
            // A format we do not know (some e-invoices state other countries' IDs): nothing to claim.
            Err(TaxIdError::Format) => continue,
        });
    }
    if let Some(iban) = e.supplier.as_ref().and_then(|p| p.iban.as_deref()) {
        let ok = Iban::parse(iban).is_ok();
        let detail = format!("{iban} {}", if ok { "passes mod 97" } else { "fails mod 97 or its length" });
        fresh.push(Check::new("iban_checksum", ok, Some(detail)));
    }
    let checks = e.checks.get_or_insert_with(Vec::new);
    for (name, supersedes) in RECHECKS {
        if fresh.iter().any(|c| c.name == name) {
            checks.retain(|c| !supersedes.contains(&c.name.as_str()));
        }
    }
    let failed: Vec<Check> = fresh.iter().filter(|c| !c.ok).cloned().collect();
    checks.extend(fresh);
    failed
}

/// The value of `field` in `e`, as text.
pub fn current(e: &Extraction, field: &str) -> Option<String> {
    let party = |p: &Option<Party>, f: fn(&Party) -> Option<String>| p.as_ref().and_then(f);
    match field {
        "invoice_number" => e.display_number(),
        "issue_date" => e.issue_date.map(|d| d.to_string()),
        "due_date" => e.due_date.map(|d| d.to_string()),
        "currency" => e.currency.clone(),
        "document_type" => e.document_type.and_then(|t| serde_json::to_value(t).ok()?.as_str().map(str::to_string)),
        "net_amount" => e.net_amount.map(|a| a.to_string()),
        "tax_amount" => e.tax_amount.map(|a| a.to_string()),
        "total_amount" => e.total_amount.map(|a| a.to_string()),
        "amount_due" => e.amount_due.map(|a| a.to_string()),
        "supplier.name" => party(&e.supplier, |p| p.name.clone()),
        "supplier.tax_id" => party(&e.supplier, |p| p.tax_id.clone()),
        "supplier.iban" => party(&e.supplier, |p| p.iban.clone()),
        "customer.name" => party(&e.customer, |p| p.name.clone()),
        "customer.tax_id" => party(&e.customer, |p| p.tax_id.clone()),
        _ => None,
    }
}

fn party<'a>(e: &'a mut Extraction, field: &str) -> &'a mut Party {
    let p = if field.starts_with("supplier.") { &mut e.supplier } else { &mut e.customer };
    p.get_or_insert_with(Party::default)
}

fn non_empty(field: &str, value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    Ok(v.to_string())
}

/// `2025-10-15` or `15/10/2025`.
fn date(field: &str, value: &str) -> Result<NaiveDate, String> {
    let v = value.trim();
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(v, "%d/%m/%Y"))
        .map_err(|_| format!("{field} must be a date such as 2025-10-15 (or 15/10/2025), got {value:?}"))
}

/// `1210.00`, or `1210,00` with a decimal comma; no thousands separators, so nothing is ambiguous.
fn amount(field: &str, value: &str) -> Result<Decimal, String> {
    let v = value.trim();
    let normalised = if v.matches(',').count() == 1 && !v.contains('.') { v.replace(',', ".") } else { v.to_string() };
    let ok = !normalised.is_empty()
        && normalised.trim_start_matches('-').chars().all(|c| c.is_ascii_digit() || c == '.')
        && normalised.matches('.').count() <= 1;
    let parsed = ok.then(|| Decimal::from_str(&normalised).ok()).flatten();
    parsed.ok_or_else(|| format!("{field} must be a decimal amount such as 1210.00, got {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_is_checked_like_an_extracted_value() {
        let mut e = Extraction::empty("f.pdf");
        assert_eq!(apply(&mut e, "total_amount", "1210,50"), Ok((None, "1210.50".into())));
        assert_eq!(e.total_amount, Some(Decimal::new(121050, 2)));
        let err = apply(&mut e, "total_amount", "12O.00").unwrap_err();
        assert!(err.contains("must be a decimal amount"), "{err}");
        let err = apply(&mut e, "issue_date", "2025-02-30").unwrap_err();
        assert!(err.contains("must be a date"), "{err}");
        assert_eq!(apply(&mut e, "issue_date", "15/10/2025").unwrap().1, "2025-10-15");
        assert!(apply(&mut e, "supplier.tax_id", "B12345675").unwrap_err().contains("check digit"));
        assert_eq!(apply(&mut e, "supplier.tax_id", "B-12345674").unwrap().1, "B12345674");
        assert_eq!(apply(&mut e, "total_amount", "99").unwrap().0.as_deref(), Some("1210.50"));
        assert!(parse_assignment("total=1").unwrap_err().contains("unknown field"));
        assert!(parse_assignment("total_amount").unwrap_err().contains("FIELD=VALUE"));
    }

    #[test]
    fn the_checks_are_run_again_on_the_corrected_values() {
        let mut e = Extraction::empty("f.pdf");
        e.document_type = Some(DocumentType::Invoice);
        e.net_amount = Some(Decimal::new(100000, 2));
        e.tax_amount = Some(Decimal::new(21000, 2));
        e.total_amount = Some(Decimal::new(121000, 2));
        e.supplier = Some(Party { tax_id: Some("B12345674".into()), ..Default::default() });
        e.push_check(Check::new("totals_add_up", true, Some("as read".into())));
        e.push_check(Check::new("lines_sum", true, None));
        assert!(recheck(&mut e).is_empty());
        let names: Vec<&str> = e.checks.iter().flatten().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["lines_sum", "totals_add_up", "tax_id_checksum"]);

        apply(&mut e, "total_amount", "512,00").unwrap();
        let failed = recheck(&mut e);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].name, "totals_add_up");
        assert_eq!(failed[0].detail.as_deref(), Some("net 1000.00 + tax 210.00 = 1210.00 (total 512.00)"));
        assert_eq!(e.checks.iter().flatten().filter(|c| c.name == "totals_add_up").count(), 1, "replaced, not added");

        apply(&mut e, "total_amount", "1210.01").unwrap();
        assert!(recheck(&mut e).is_empty(), "a cent of rounding is fine");
        apply(&mut e, "total_amount", "-5").unwrap();
        assert!(recheck(&mut e)[0].detail.as_deref().unwrap().contains("negative"));

        // Without a net the totals cannot be checked again: the check on the values as read stays.
        let mut only_total = Extraction::empty("f.pdf");
        only_total.total_amount = Some(Decimal::new(5, 0));
        only_total.push_check(Check::new("totals_add_up", false, Some("net and tax dropped".into())));
        assert!(recheck(&mut only_total).is_empty());
        assert_eq!(only_total.failed_checks().count(), 1);
    }
}
