//! What makes two documents the same invoice: the same supplier and the same number (and, for the row itself,
//! the same total and date, since the same number with another total is a fraud signal and gets its own row).
//!
//! The supplier is its tax ID when the invoice shows one, else its name, else the address it was mailed from.
//! All three are normalised so that a re-exported PDF, the XML embedded in it, and an XML sent beside it give
//! the same key.

use crate::extract::Extraction;
use crate::fraud::{normalize_number, normalize_tax_id};

/// The normalised identity of an invoice, as stored in `invoices.supplier_key`, `number_key` and `variant_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceKeys {
    pub supplier: String,
    /// `None` when the document shows no number: such an invoice can only be a duplicate by its bytes.
    pub number: Option<String>,
    /// The total and the issue date; the same supplier and number with another variant is a fraud signal.
    pub variant: String,
}

impl InvoiceKeys {
    pub fn of(e: &Extraction, sender: &str) -> InvoiceKeys {
        let supplier = e.supplier.as_ref();
        let key = supplier
            .and_then(|s| s.tax_id.as_deref())
            .and_then(normalize_tax_id)
            .map(|t| format!("tax:{t}"))
            .or_else(|| supplier.and_then(|s| s.name.as_deref()).and_then(normalize_name).map(|n| format!("name:{n}")))
            .unwrap_or_else(|| format!("sender:{}", sender.trim().to_lowercase()));
        let total = e.total_amount.map(|t| t.normalize().to_string()).unwrap_or_default();
        let date = e.issue_date.map(|d| d.to_string()).unwrap_or_default();
        InvoiceKeys {
            supplier: key,
            number: e.display_number().as_deref().and_then(normalize_number),
            variant: format!("{total}|{date}"),
        }
    }
}

pub use crate::extract::normalize::normalize_name;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Party;

    fn invoice(tax_id: Option<&str>, name: Option<&str>, number: &str, total: &str) -> Extraction {
        let mut e = Extraction::empty("f.pdf");
        e.supplier =
            Some(Party { tax_id: tax_id.map(str::to_string), name: name.map(str::to_string), ..Default::default() });
        e.invoice_number = Some(number.into());
        e.total_amount = Some(total.parse().unwrap());
        e.issue_date = "2025-10-15".parse().ok();
        e
    }

    #[test]
    fn a_pdf_and_its_xml_give_the_same_keys() {
        let pdf = InvoiceKeys::of(
            &invoice(Some("B-12345674"), Some("Suministros Norte S.L."), "FN-2025-0042", "532.1"),
            "a@x",
        );
        let xml = InvoiceKeys::of(&invoice(Some("ESB12345674"), None, "fn-2025-0042", "532.10"), "b@y");
        assert_eq!(pdf, xml);
        assert_eq!(pdf.supplier, "tax:B12345674");
    }

    #[test]
    fn without_a_tax_id_the_name_then_the_sender_decide() {
        let a = InvoiceKeys::of(&invoice(None, Some("Suministros Norte, S.L."), "7", "1"), "a@x");
        let b = InvoiceKeys::of(&invoice(None, Some("SUMINISTROS NORTE SL"), "7", "1"), "b@y");
        assert_eq!(a.supplier, "name:suministros norte");
        assert_eq!(a, b);
        let c = InvoiceKeys::of(&invoice(None, None, "7", "1"), " Proveedor@X.test");
        assert_eq!(c.supplier, "sender:proveedor@x.test");
    }

    #[test]
    fn another_total_is_another_variant_of_the_same_number() {
        let a = InvoiceKeys::of(&invoice(Some("B12345674"), None, "7", "100"), "a@x");
        let b = InvoiceKeys::of(&invoice(Some("B12345674"), None, "7", "150"), "a@x");
        assert_eq!((a.supplier.clone(), a.number.clone()), (b.supplier.clone(), b.number.clone()));
        assert_ne!(a.variant, b.variant);
    }
}
