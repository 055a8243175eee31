//! Spanish Facturae 3.2, 3.2.1 and 3.2.2 (signed `.xsig` files too: the `ds:Signature` is simply not read).
//!
//! A file is a batch: the parties are stated once (`Parties`) and `Invoices` holds one or more `Invoice`
//! elements. Each becomes its own `Extraction`.
//!
//! Totals: `TotalGrossAmountBeforeTaxes` is the net amount, `TotalTaxOutputs` the tax, `TotalExecutableAmount`
//! what must be paid. `InvoiceTotal` is defined by the format as "before taxes + outputs - withheld", but
//! generators also write it before withholding (gobl does). The schema's `total_amount` is the total *before*
//! withholding (like BT-112), so when `InvoiceTotal` already has the withholding taken off, the total is
//! rebuilt as before-taxes + outputs, and the check says which convention the file used.

use super::checks::{self, Rule, TOLERANCE};
use super::values::{self, Reader};
use super::xml::NodeExt;
use crate::extract::model::{Check, DocumentType, Extraction, LineItem, Party, Source, TaxLine};
use roxmltree::Node;
use rust_decimal::Decimal;

/// Reads every invoice of the batch. An empty `Invoices` gives an empty list.
pub(crate) fn read(file: &str, root: Node) -> Vec<Extraction> {
    let seller = party(root.at(&["Parties", "SellerParty"]));
    let buyer = party(root.at(&["Parties", "BuyerParty"]));
    let batch_currency = root.text_at(&["FileHeader", "Batch", "InvoiceCurrencyCode"]);
    root.all(&["Invoices", "Invoice"])
        .into_iter()
        .map(|invoice| read_invoice(file, invoice, &seller, &buyer, batch_currency.as_deref()))
        .collect()
}

fn read_invoice(file: &str, invoice: Node, seller: &Party, buyer: &Party, batch_currency: Option<&str>) -> Extraction {
    let mut r = Reader::default();
    let mut e = Extraction::empty(file);
    e.source = Some(Source::Facturae);

    let header = invoice.child("InvoiceHeader");
    e.invoice_number = header.and_then(|h| h.text_at(&["InvoiceNumber"]));
    e.invoice_series = header.and_then(|h| h.text_at(&["InvoiceSeriesCode"]));
    e.document_type = Some(document_type(header));
    e.issue_date = r.iso_date(invoice.at(&["InvoiceIssueData", "IssueDate"]), "The issue date");
    e.currency = invoice.text_at(&["InvoiceIssueData", "InvoiceCurrencyCode"]).or(batch_currency.map(String::from));

    let installments = invoice.all(&["PaymentDetails", "Installment"]);
    // The first instalment's due date: when payment (of at least part) is due.
    let due = installments.iter().find_map(|i| i.child("InstallmentDueDate"));
    e.due_date = r.iso_date(due, "The instalment due date");
    // The seller's account to be paid into; `AccountToBeDebited` is the buyer's (direct debit).
    let ibans = installments.iter().filter_map(|i| i.text_at(&["AccountToBeCredited", "IBAN"]));
    let mut supplier = seller.clone();
    supplier.iban = values::first_iban(ibans);
    e.supplier = values::party(supplier);
    e.customer = values::party(buyer.clone());

    e.taxes = taxes(&mut r, invoice);
    e.line_items = lines(&mut r, invoice);
    if let Some(totals) = read_totals(&mut r, invoice) {
        apply_totals(&mut e, invoice, &totals);
    }
    let taxes = e.taxes.clone().unwrap_or_default();
    checks::tax_amounts_follow_rates("facturae:TaxAmount", &taxes, &mut e);

    for w in r.warnings {
        e.push_warning(w);
    }
    values::fill_confidence(&mut e);
    e
}

/// `InvoiceClass` OO/OC/CO/CC are (copies of) original or summary invoices; OR/CR are "rectificativas",
/// corrections of an earlier invoice, which also carry a `Corrective` block.
fn document_type(header: Option<Node>) -> DocumentType {
    let Some(header) = header else {
        return DocumentType::Invoice;
    };
    let class = header.text_at(&["InvoiceClass"]);
    if matches!(class.as_deref(), Some("OR" | "CR")) || header.child("Corrective").is_some() {
        DocumentType::CorrectedInvoice
    } else {
        DocumentType::Invoice
    }
}

/// Seller or buyer: a legal entity (`CorporateName`, else `TradeName`) or an individual (name and surnames).
fn party(node: Option<Node>) -> Party {
    let Some(node) = node else {
        return Party::default();
    };
    let entity = node.child("LegalEntity");
    let individual = node.child("Individual");
    let name = match (entity, individual) {
        (Some(entity), _) => entity.text_at(&["CorporateName"]).or_else(|| entity.text_at(&["TradeName"])),
        (None, Some(person)) => {
            let parts: Vec<String> =
                ["Name", "FirstSurname", "SecondSurname"].iter().filter_map(|p| person.text_at(&[p])).collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
        (None, None) => None,
    };
    let holder = entity.or(individual);
    Party {
        name: values::clean(name),
        tax_id: node.text_at(&["TaxIdentification", "TaxIdentificationNumber"]),
        country: holder.and_then(country),
        iban: None,
    }
}

/// `AddressInSpain` is Spain; `OverseasAddress` names an ISO 3166 alpha-3 code.
fn country(holder: Node) -> Option<String> {
    if holder.child("AddressInSpain").is_some() {
        return Some("ES".into());
    }
    let alpha3 = holder.text_at(&["OverseasAddress", "CountryCode"])?;
    alpha2(&alpha3).map(String::from)
}

/// The countries Spanish invoices most often name (EU, EEA and main trading partners). Others leave the
/// country empty rather than guess.
fn alpha2(alpha3: &str) -> Option<&'static str> {
    #[rustfmt::skip]
    const TABLE: &[(&str, &str)] = &[
        ("ESP", "ES"), ("PRT", "PT"), ("FRA", "FR"), ("DEU", "DE"), ("ITA", "IT"), ("AND", "AD"), ("GBR", "GB"),
        ("IRL", "IE"), ("BEL", "BE"), ("NLD", "NL"), ("LUX", "LU"), ("AUT", "AT"), ("CHE", "CH"), ("LIE", "LI"),
        ("DNK", "DK"), ("SWE", "SE"), ("FIN", "FI"), ("NOR", "NO"), ("ISL", "IS"), ("POL", "PL"), ("CZE", "CZ"),
        ("SVK", "SK"), ("SVN", "SI"), ("HUN", "HU"), ("ROU", "RO"), ("BGR", "BG"), ("GRC", "GR"), ("HRV", "HR"),
        ("CYP", "CY"), ("MLT", "MT"), ("EST", "EE"), ("LVA", "LV"), ("LTU", "LT"), ("MCO", "MC"), ("GIB", "GI"),
        ("USA", "US"), ("CAN", "CA"), ("MEX", "MX"), ("BRA", "BR"), ("ARG", "AR"), ("CHL", "CL"), ("COL", "CO"),
        ("PER", "PE"), ("MAR", "MA"), ("CHN", "CN"), ("JPN", "JP"), ("IND", "IN"), ("TUR", "TR"), ("AUS", "AU"),
    ];
    let key = alpha3.trim().to_ascii_uppercase();
    TABLE.iter().find(|(a3, _)| *a3 == key).map(|(_, a2)| *a2)
}

/// `TaxesOutputs`: the tax breakdown (category = Facturae `TaxTypeCode`, 01 = IVA, 03 = IGIC ...). Taxes
/// withheld (IRPF) are not a breakdown line: they lower what is paid, see `TotalExecutableAmount`.
fn taxes(r: &mut Reader, invoice: Node) -> Option<Vec<TaxLine>> {
    let taxes: Vec<TaxLine> = invoice
        .all(&["TaxesOutputs", "Tax"])
        .into_iter()
        .map(|tax| TaxLine {
            rate: r.amount(tax.child("TaxRate"), "A tax rate"),
            base: r.amount(tax.at(&["TaxableBase", "TotalAmount"]), "A taxable base"),
            amount: r.amount(tax.at(&["TaxAmount", "TotalAmount"]), "A tax amount"),
            category: tax.text_at(&["TaxTypeCode"]),
        })
        .collect();
    (!taxes.is_empty()).then_some(taxes)
}

/// `Items/InvoiceLine`: `GrossAmount` is the line's amount after its discounts and charges, before tax.
fn lines(r: &mut Reader, invoice: Node) -> Option<Vec<LineItem>> {
    let items: Vec<LineItem> = invoice
        .all(&["Items", "InvoiceLine"])
        .into_iter()
        .map(|line| LineItem {
            description: values::clean(line.text_at(&["ItemDescription"])),
            quantity: r.amount(line.child("Quantity"), "A line quantity"),
            unit_price: r.amount(line.child("UnitPriceWithoutTax"), "A unit price"),
            amount: r.amount(line.child("GrossAmount"), "A line gross amount"),
            tax_rate: r.amount(line.at(&["TaxesOutputs", "Tax", "TaxRate"]), "A line tax rate"),
        })
        .collect();
    (!items.is_empty()).then_some(items)
}

/// The `InvoiceTotals` amounts as written; absent optional ones (discounts, subsidies ...) are zero.
struct Totals {
    gross: Option<Decimal>,
    discounts: Decimal,
    surcharges: Decimal,
    before_taxes: Option<Decimal>,
    outputs: Option<Decimal>,
    withheld: Option<Decimal>,
    invoice_total: Option<Decimal>,
    subsidies: Decimal,
    payments_on_account: Decimal,
    amounts_withheld: Decimal,
    reimbursable: Decimal,
    executable: Option<Decimal>,
}

fn read_totals(r: &mut Reader, invoice: Node) -> Option<Totals> {
    let totals = invoice.child("InvoiceTotals")?;
    let mut amount = |path: &[&str]| r.amount(totals.at(path), &format!("{} in InvoiceTotals", path.join("/")));
    Some(Totals {
        gross: amount(&["TotalGrossAmount"]),
        discounts: amount(&["TotalGeneralDiscounts"]).unwrap_or_default(),
        surcharges: amount(&["TotalGeneralSurcharges"]).unwrap_or_default(),
        before_taxes: amount(&["TotalGrossAmountBeforeTaxes"]),
        outputs: amount(&["TotalTaxOutputs"]),
        withheld: amount(&["TotalTaxesWithheld"]),
        invoice_total: amount(&["InvoiceTotal"]),
        subsidies: amount(&["TotalFinancialSubsidies"]).unwrap_or_default(),
        payments_on_account: amount(&["TotalPaymentsOnAccount"]).unwrap_or_default(),
        amounts_withheld: amount(&["AmountsWithheld", "WithholdingAmount"]).unwrap_or_default(),
        reimbursable: amount(&["TotalReimbursableExpenses"]).unwrap_or_default(),
        executable: amount(&["TotalExecutableAmount"]),
    })
}

/// Maps the totals and checks each against what it is defined as.
fn apply_totals(e: &mut Extraction, invoice: Node, t: &Totals) {
    e.net_amount = t.before_taxes;
    e.tax_amount = t.outputs;
    e.amount_due = t.executable;
    check_sums(e, invoice, t);
    e.total_amount = match (t.invoice_total, t.before_taxes, t.outputs) {
        (Some(total), Some(before), Some(outputs)) => Some(total_before_withholding(e, t, total, before + outputs)),
        (total, _, _) => total,
    };
    if let (Some(executable), Some(total)) = (t.executable, e.total_amount) {
        let withheld = t.withheld.unwrap_or_default();
        let expected = total - withheld - t.subsidies - t.payments_on_account - t.amounts_withheld + t.reimbursable;
        Rule::new("facturae:TotalExecutableAmount", executable, expected).record(e, || {
            format!(
                "TotalExecutableAmount is {executable}, but total {total} - withheld {withheld} - subsidies {} \
                 - payments on account {} - amounts withheld {} + reimbursable expenses {} = {expected}",
                t.subsidies, t.payments_on_account, t.amounts_withheld, t.reimbursable
            )
        });
    }
}

/// The sums: lines to gross, gross to before-taxes, tax lines to their totals.
fn check_sums(e: &mut Extraction, invoice: Node, t: &Totals) {
    let line_amounts: Vec<Decimal> = e.line_items.iter().flatten().filter_map(|l| l.amount).collect();
    if let (Some(gross), false) = (t.gross, line_amounts.is_empty()) {
        let sum = checks::sum(&line_amounts);
        Rule::new("facturae:TotalGrossAmount", gross, sum)
            .record(e, || format!("TotalGrossAmount is {gross}, but the lines' GrossAmount add up to {sum}"));
    }
    if let (Some(before), Some(gross)) = (t.before_taxes, t.gross) {
        let expected = gross - t.discounts + t.surcharges;
        Rule::new("facturae:TotalGrossAmountBeforeTaxes", before, expected).record(e, || {
            format!(
                "TotalGrossAmountBeforeTaxes is {before}, but gross {gross} - discounts {} + surcharges {} = {expected}",
                t.discounts, t.surcharges
            )
        });
    }
    for (stated, group, name) in [
        (t.outputs, "TaxesOutputs", "facturae:TotalTaxOutputs"),
        (t.withheld, "TaxesWithheld", "facturae:TotalTaxesWithheld"),
    ] {
        if let Some(stated) = stated {
            let sum = tax_sum(invoice, group);
            Rule::new(name, stated, sum).record(e, || format!("{name} is {stated}, but the {group} add up to {sum}"));
        }
    }
}

/// Accepts both ways `InvoiceTotal` is written and returns the total before withholding.
fn total_before_withholding(e: &mut Extraction, t: &Totals, total: Decimal, gross_with_tax: Decimal) -> Decimal {
    let withheld = t.withheld.unwrap_or_default();
    let near = |a: Decimal, b: Decimal| (a - b).abs() <= TOLERANCE;
    if near(total, gross_with_tax) {
        e.push_check(Check::new("facturae:InvoiceTotal", true, None));
        return total;
    }
    if !withheld.is_zero() && near(total, gross_with_tax - withheld) {
        let detail = format!(
            "InvoiceTotal {total} has the withholding {withheld} taken off; the total before withholding is {gross_with_tax}"
        );
        e.push_check(Check::new("facturae:InvoiceTotal", true, Some(detail)));
        return gross_with_tax;
    }
    let detail = format!(
        "InvoiceTotal is {total}, but before taxes + taxes = {gross_with_tax} (or {} after withholding {withheld}), \
         tolerance {TOLERANCE}",
        gross_with_tax - withheld
    );
    e.push_warning(format!("The amounts do not add up: {detail} [facturae:InvoiceTotal]."));
    e.push_check(Check::new("facturae:InvoiceTotal", false, Some(detail)));
    total
}

/// Sum of `group/Tax/TaxAmount/TotalAmount` (plus any equivalence surcharge, "recargo de equivalencia").
/// Unreadable amounts were already reported when the tax lines were read.
fn tax_sum(invoice: Node, group: &str) -> Decimal {
    invoice
        .all(&[group, "Tax"])
        .into_iter()
        .flat_map(|tax| [tax.at(&["TaxAmount", "TotalAmount"]), tax.at(&["EquivalenceSurchargeAmount", "TotalAmount"])])
        .filter_map(|n| n.and_then(|n| n.own_text()).and_then(|t| values::decimal(&t)))
        .sum()
}
