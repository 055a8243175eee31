//! OASIS UBL 2.x `Invoice` and `CreditNote` (EN 16931 UBL binding: Peppol BIS 3, XRechnung-UBL, CIUS-FR ...).

use super::checks::{self, En16931Totals, LineFigures};
use super::values::{self, Level, Reader};
use super::xml::NodeExt;
use crate::extract::model::{DocumentType, Extraction, LineItem, Party, Source, TaxLine};
use roxmltree::Node;
use rust_decimal::Decimal;

/// Reads one UBL invoice or credit note; `root` is `Invoice` or `CreditNote`.
pub(crate) fn read(file: &str, root: Node) -> Extraction {
    let credit_note = root.local() == "CreditNote";
    let mut r = Reader::default();
    let mut e = Extraction::empty(file);
    e.source = Some(Source::Ubl);

    e.invoice_number = root.text_at(&["ID"]); // BT-1
    e.document_type = Some(document_type(root, credit_note)); // BT-3
    e.issue_date = r.iso_date(root.child("IssueDate"), "The issue date (BT-2)");
    e.currency = root.text_at(&["DocumentCurrencyCode"]); // BT-5
    e.due_date = due_date(&mut r, root);

    let mut supplier = party(root.at(&["AccountingSupplierParty", "Party"])); // BG-4
    supplier.iban = payee_iban(root);
    e.supplier = values::party(supplier);
    e.customer = values::party(party(root.at(&["AccountingCustomerParty", "Party"]))); // BG-7

    let mut totals = En16931Totals::default();
    read_totals(&mut r, &mut e, &mut totals, root);
    read_lines(&mut r, &mut e, &mut totals, root, credit_note);

    checks::en16931(&totals, &mut e);
    for w in r.warnings {
        e.push_warning(w);
    }
    values::fill_confidence(&mut e);
    e
}

/// BT-3. A `CreditNote` document is a credit note whatever else its code says, unless the code is 384
/// (corrected invoice); an `Invoice` follows its code (an `Invoice` may carry a credit note code).
fn document_type(root: Node, credit_note: bool) -> DocumentType {
    let code_element = if credit_note { "CreditNoteTypeCode" } else { "InvoiceTypeCode" };
    let from_code = root.text_at(&[code_element]).map(|c| values::document_type(&c));
    match (credit_note, from_code) {
        (true, Some(DocumentType::CorrectedInvoice)) => DocumentType::CorrectedInvoice,
        (true, _) => DocumentType::CreditNote,
        (false, Some(t)) if t != DocumentType::Unknown => t,
        (false, _) => DocumentType::Invoice,
    }
}

/// BT-9: `cbc:DueDate` on an invoice; a credit note (UBL 2.1 has no DueDate there) states it on the payment
/// means or payment terms.
fn due_date(r: &mut Reader, root: Node) -> Option<chrono::NaiveDate> {
    let candidates = [
        root.child("DueDate"),
        root.at(&["PaymentMeans", "PaymentDueDate"]),
        root.at(&["PaymentTerms", "PaymentDueDate"]),
    ];
    candidates.into_iter().flatten().find_map(|n| r.iso_date(Some(n), "The due date (BT-9)"))
}

/// BG-4 seller / BG-7 buyer.
fn party(node: Option<Node>) -> Party {
    let Some(node) = node else {
        return Party::default();
    };
    // BT-27 / BT-44 registration (legal) name; the trading name (BT-28, PartyName) only when it is missing.
    let name = node.text_at(&["PartyLegalEntity", "RegistrationName"]).or_else(|| node.text_at(&["PartyName", "Name"]));
    Party {
        name: values::clean(name),
        tax_id: tax_id(node),
        country: values::country(node.text_at(&["PostalAddress", "Country", "IdentificationCode"])), // BT-40 / BT-55
        iban: None,
    }
}

/// BT-31 / BT-48: `PartyTaxScheme` whose `TaxScheme/ID` is VAT; else BT-32, the one with another scheme.
fn tax_id(party: Node) -> Option<String> {
    let schemes = party.all(&["PartyTaxScheme"]);
    let is_vat = |s: &Node| s.text_at(&["TaxScheme", "ID"]).is_some_and(|id| id.eq_ignore_ascii_case("VAT"));
    let vat = schemes.iter().filter(|s| is_vat(s)).find_map(|s| s.text_at(&["CompanyID"]));
    vat.or_else(|| schemes.iter().filter(|s| !is_vat(s)).find_map(|s| s.text_at(&["CompanyID"])))
}

/// BT-84: the first payee account (`PayeeFinancialAccount`) that is an IBAN. A direct
/// debit's `PaymentMandate/PayerFinancialAccount` is the buyer's account (BT-91) and is not used.
fn payee_iban(root: Node) -> Option<String> {
    let ids = root.all(&["PaymentMeans", "PayeeFinancialAccount", "ID"]);
    values::first_iban(ids.iter().filter_map(|id| id.own_text()))
}

/// BG-22 totals, BG-23 VAT breakdown, BG-20/BG-21 document level allowances and charges.
fn read_totals(r: &mut Reader, e: &mut Extraction, t: &mut En16931Totals, root: Node) {
    let total = root.child("LegalMonetaryTotal");
    let mut amount = |name: &str, what: &str| r.amount(total.and_then(|n| n.child(name)), what);
    t.line_total = amount("LineExtensionAmount", "The sum of line net amounts (BT-106)");
    t.allowance_total = amount("AllowanceTotalAmount", "The sum of allowances (BT-107)");
    t.charge_total = amount("ChargeTotalAmount", "The sum of charges (BT-108)");
    t.net_total = amount("TaxExclusiveAmount", "The total without VAT (BT-109)");
    t.grand_total = amount("TaxInclusiveAmount", "The total with VAT (BT-112)");
    t.prepaid = amount("PrepaidAmount", "The paid amount (BT-113)");
    t.rounding = amount("PayableRoundingAmount", "The rounding amount (BT-114)");
    t.due = amount("PayableAmount", "The amount due (BT-115)");

    // BT-110 is the TaxTotal in the document currency; a second one in the VAT accounting currency is BT-111.
    let tax_totals: Vec<Node> = root.children_named("TaxTotal").collect();
    let currency = e.currency.as_deref();
    let in_document_currency = |tt: &&Node| tt.child("TaxAmount").and_then(|a| a.attribute("currencyID")) == currency;
    let tax_total = tax_totals.iter().find(in_document_currency).or_else(|| tax_totals.first());
    if let Some(tax_total) = tax_total {
        t.vat_total = r.amount(tax_total.child("TaxAmount"), "The VAT total (BT-110)");
        let mut taxes = Vec::new();
        for sub in tax_total.children_named("TaxSubtotal") {
            let line = TaxLine {
                rate: r.amount(sub.at(&["TaxCategory", "Percent"]), "A VAT rate (BT-119)"),
                base: r.amount(sub.child("TaxableAmount"), "A VAT category taxable amount (BT-116)"),
                amount: r.amount(sub.child("TaxAmount"), "A VAT category tax amount (BT-117)"),
                category: sub.text_at(&["TaxCategory", "ID"]),
            };
            t.vat_category_amounts.extend(line.amount);
            taxes.push(line);
        }
        e.taxes = (!taxes.is_empty()).then_some(taxes);
    }

    let (allowances, charges) = values::allowances_and_charges(
        r,
        root.children_named("AllowanceCharge"),
        &["ChargeIndicator"],
        "Amount",
        Level::Document,
    );
    t.allowances = allowances;
    t.charges = charges;

    e.net_amount = t.net_total;
    e.tax_amount = t.vat_total;
    e.total_amount = t.grand_total;
    e.amount_due = t.due;
}

/// BG-25 invoice lines (`InvoiceLine` or `CreditNoteLine`, direct children only: XRechnung sub-lines nest
/// inside their parent line and are part of its amount).
fn read_lines(r: &mut Reader, e: &mut Extraction, t: &mut En16931Totals, root: Node, credit_note: bool) {
    let (line_name, quantity_name) =
        if credit_note { ("CreditNoteLine", "CreditedQuantity") } else { ("InvoiceLine", "InvoicedQuantity") };
    let mut items = Vec::new();
    for line in root.children_named(line_name) {
        let item = line_item(r, line, quantity_name);
        t.line_net_amounts.extend(item.amount);
        if let (Some(net), Some(quantity), Some(price)) = (item.amount, item.quantity, item.unit_price) {
            t.lines.push(line_figures(r, line, net, quantity, price));
        }
        if item != LineItem::default() {
            items.push(item);
        }
    }
    e.line_items = (!items.is_empty()).then_some(items);
}

fn line_item(r: &mut Reader, line: Node, quantity_name: &str) -> LineItem {
    let item = |field: &str| line.text_at(&["Item", field]);
    let rate = line.at(&["Item", "ClassifiedTaxCategory", "Percent"]);
    LineItem {
        description: values::clean(item("Name").or_else(|| item("Description"))), // BT-153, BT-154
        quantity: r.amount(line.child(quantity_name), "An invoiced quantity (BT-129)"),
        unit_price: r.amount(line.at(&["Price", "PriceAmount"]), "An item net price (BT-146)"),
        amount: r.amount(line.child("LineExtensionAmount"), "A line net amount (BT-131)"),
        tax_rate: r.amount(rate, "A line VAT rate (BT-152)"),
    }
}

/// The figures the line amount rule needs: price base quantity (BT-149), line allowances and charges.
fn line_figures(r: &mut Reader, line: Node, net: Decimal, quantity: Decimal, price: Decimal) -> LineFigures {
    let (allowances, charges) = values::allowances_and_charges(
        r,
        line.children_named("AllowanceCharge"),
        &["ChargeIndicator"],
        "Amount",
        Level::Line,
    );
    LineFigures {
        id: line.text_at(&["ID"]),
        net,
        quantity,
        price,
        base_quantity: r.amount(line.at(&["Price", "BaseQuantity"]), "An item price base quantity (BT-149)"),
        allowances: checks::sum(&allowances),
        charges: checks::sum(&charges),
    }
}
