//! UN/CEFACT Cross Industry Invoice: ZUGFeRD 2.x, Factur-X, XRechnung-CII (`rsm:CrossIndustryInvoice`, D16B)
//! and ZUGFeRD 1.0 (`rsm:CrossIndustryDocument`, namespace `urn:ferd:CrossIndustryDocument:invoice:1p0`).
//!
//! The two versions share the structure and differ in element names, which `Dialect` lists. Paths follow the
//! EN 16931 CII binding; comments name the business terms (BT-/BG-).

use super::checks::{self, En16931Totals, LineFigures};
use super::values::{self, Level, Reader};
use super::xml::NodeExt;
use crate::extract::model::{Extraction, LineItem, Party, Source, TaxLine};
use roxmltree::Node;
use rust_decimal::Decimal;

/// Element names that differ between ZUGFeRD 1.0 and CII D16B.
struct Dialect {
    document: &'static str,
    transaction: &'static str,
    agreement: &'static str,
    settlement: &'static str,
    summation: &'static str,
    rate: &'static str,
    line_agreement: &'static str,
    line_delivery: &'static str,
    line_settlement: &'static str,
    line_summation: &'static str,
    /// ZUGFeRD 1.0 writers give allowances either sign (the indicator already says which it is); only the
    /// amount counts there. In EN 16931 the sign is meaningful and kept.
    signed_allowances: bool,
}

const D16B: Dialect = Dialect {
    document: "ExchangedDocument",
    transaction: "SupplyChainTradeTransaction",
    agreement: "ApplicableHeaderTradeAgreement",
    settlement: "ApplicableHeaderTradeSettlement",
    summation: "SpecifiedTradeSettlementHeaderMonetarySummation",
    rate: "RateApplicablePercent",
    line_agreement: "SpecifiedLineTradeAgreement",
    line_delivery: "SpecifiedLineTradeDelivery",
    line_settlement: "SpecifiedLineTradeSettlement",
    line_summation: "SpecifiedTradeSettlementLineMonetarySummation",
    signed_allowances: false,
};

const ZUGFERD_1: Dialect = Dialect {
    document: "HeaderExchangedDocument",
    transaction: "SpecifiedSupplyChainTradeTransaction",
    agreement: "ApplicableSupplyChainTradeAgreement",
    settlement: "ApplicableSupplyChainTradeSettlement",
    summation: "SpecifiedTradeSettlementMonetarySummation",
    rate: "ApplicablePercent",
    line_agreement: "SpecifiedSupplyChainTradeAgreement",
    line_delivery: "SpecifiedSupplyChainTradeDelivery",
    line_settlement: "SpecifiedSupplyChainTradeSettlement",
    line_summation: "SpecifiedTradeSettlementMonetarySummation",
    signed_allowances: true,
};

/// Reads one CII invoice; `root` is `CrossIndustryInvoice`, `CrossIndustryDocument` (ZUGFeRD 1.0) or the
/// `Invoice` of ZUGFeRD 1.0's release candidate (namespace `...:CBFBUY:5`), which has 1.0's element names.
pub(crate) fn read(file: &str, root: Node) -> Extraction {
    let d = if root.child(ZUGFERD_1.document).is_some() { &ZUGFERD_1 } else { &D16B };
    let mut r = Reader::default();
    let mut e = Extraction::empty(file);
    e.source = Some(Source::Cii);

    let document = root.child(d.document);
    let transaction = root.child(d.transaction);
    let agreement = transaction.and_then(|t| t.child(d.agreement));
    let settlement = transaction.and_then(|t| t.child(d.settlement));

    e.invoice_number = document.and_then(|n| n.text_at(&["ID"])); // BT-1
    e.document_type = document.and_then(|n| n.text_at(&["TypeCode"])).map(|c| values::document_type(&c)); // BT-3
    e.issue_date = r.cii_date(document.and_then(|n| n.child("IssueDateTime")), "The issue date (BT-2)");
    e.currency = settlement.and_then(|s| s.text_at(&["InvoiceCurrencyCode"])); // BT-5
    let tax_currency = settlement.and_then(|s| s.text_at(&["TaxCurrencyCode"])); // BT-6

    if let Some(settlement) = settlement {
        // BT-9: the first payment terms that give a due date.
        let due = settlement.all(&["SpecifiedTradePaymentTerms", "DueDateDateTime"]);
        e.due_date = due.into_iter().find_map(|n| r.cii_date(Some(n), "The due date (BT-9)"));
    }

    let mut supplier = party(agreement.and_then(|a| a.child("SellerTradeParty"))); // BG-4
    supplier.iban = settlement.and_then(payee_iban);
    e.supplier = values::party(supplier);
    e.customer = values::party(party(agreement.and_then(|a| a.child("BuyerTradeParty")))); // BG-7

    let mut totals = En16931Totals::default();
    if let Some(settlement) = settlement {
        read_totals(&mut r, &mut e, &mut totals, settlement, d, tax_currency.as_deref());
    }
    if let Some(transaction) = transaction {
        read_lines(&mut r, &mut e, &mut totals, transaction, d);
    }

    checks::en16931(&totals, &mut e);
    for w in r.warnings {
        e.push_warning(w);
    }
    values::fill_confidence(&mut e);
    e
}

/// BG-4 seller / BG-7 buyer: name, VAT id (or tax number), country.
fn party(node: Option<Node>) -> Party {
    let Some(node) = node else {
        return Party::default();
    };
    // BT-27 / BT-44 legal name; the trading name (BT-28) only when the legal name is missing.
    let name = node.text_at(&["Name"]).or_else(|| node.text_at(&["SpecifiedLegalOrganization", "TradingBusinessName"]));
    Party {
        name: values::clean(name),
        tax_id: tax_registration(node),
        country: values::country(node.text_at(&["PostalTradeAddress", "CountryID"])), // BT-40 / BT-55
        iban: None,
    }
}

/// BT-31 / BT-48 VAT identifier (`schemeID="VA"`; some producers write `VAT`), else BT-32 tax registration
/// number (`schemeID="FC"`). Only an identifier: Swedish invoices put the F-tax approval text ("Godkänd för
/// F-skatt") under `FC`, which is a statement, not a number.
fn tax_registration(party: Node) -> Option<String> {
    let ids = party.all(&["SpecifiedTaxRegistration", "ID"]);
    let with_scheme = |scheme: &str| {
        ids.iter()
            .filter(|n| n.attribute("schemeID").is_some_and(|s| s.eq_ignore_ascii_case(scheme)))
            .filter_map(|n| n.own_text())
            .find(|id| values::looks_like_identifier(id))
    };
    with_scheme("VA").or_else(|| with_scheme("VAT")).or_else(|| with_scheme("FC"))
}

/// BT-84: the payee's account of the payment means (`IBANID`, or a `ProprietaryID` that is an IBAN). A direct
/// debit names the buyer's account instead (BT-91, PayerPartyDebtorFinancialAccount): not the supplier's IBAN.
fn payee_iban(settlement: Node) -> Option<String> {
    let accounts = settlement.all(&["SpecifiedTradeSettlementPaymentMeans", "PayeePartyCreditorFinancialAccount"]);
    let ids = |field: &'static str| accounts.iter().filter_map(move |a| a.text_at(&[field]));
    values::first_iban(ids("IBANID").chain(ids("ProprietaryID")))
}

/// BG-22 document totals, BG-23 VAT breakdown, BG-20/BG-21 document level allowances and charges.
fn read_totals(
    r: &mut Reader,
    e: &mut Extraction,
    t: &mut En16931Totals,
    settlement: Node,
    d: &Dialect,
    tax_currency: Option<&str>,
) {
    let sum = settlement.child(d.summation);
    let currency = e.currency.clone();
    let amount = |r: &mut Reader, name: &str, what: &str| {
        let node = sum.and_then(|s| in_currency(s, name, currency.as_deref(), tax_currency));
        r.amount(node, what)
    };
    t.line_total = amount(r, "LineTotalAmount", "The sum of line net amounts (BT-106)");
    t.charge_total = amount(r, "ChargeTotalAmount", "The sum of charges (BT-108)");
    t.allowance_total = amount(r, "AllowanceTotalAmount", "The sum of allowances (BT-107)");
    t.net_total = amount(r, "TaxBasisTotalAmount", "The total without VAT (BT-109)");
    t.vat_total = amount(r, "TaxTotalAmount", "The VAT total (BT-110)");
    t.rounding = amount(r, "RoundingAmount", "The rounding amount (BT-114)");
    t.grand_total = amount(r, "GrandTotalAmount", "The total with VAT (BT-112)");
    t.prepaid = amount(r, "TotalPrepaidAmount", "The paid amount (BT-113)");
    t.due = amount(r, "DuePayableAmount", "The amount due (BT-115)");
    e.net_amount = t.net_total;
    e.tax_amount = t.vat_total;
    e.total_amount = t.grand_total;
    e.amount_due = t.due;

    let mut taxes = Vec::new();
    for tax in settlement.children_named("ApplicableTradeTax") {
        let line = TaxLine {
            rate: r.amount(tax.child(d.rate), "A VAT rate (BT-119)"),
            base: r.amount(tax.child("BasisAmount"), "A VAT category taxable amount (BT-116)"),
            amount: r.amount(tax.child("CalculatedAmount"), "A VAT category tax amount (BT-117)"),
            category: tax.text_at(&["CategoryCode"]),
        };
        t.vat_category_amounts.extend(line.amount);
        taxes.push(line);
    }
    e.taxes = (!taxes.is_empty()).then_some(taxes);

    let (allowances, charges) = values::allowances_and_charges(
        r,
        settlement.children_named("SpecifiedTradeAllowanceCharge"),
        &["ChargeIndicator", "Indicator"],
        "ActualAmount",
        Level::Document,
    );
    let magnitude = |v: Decimal| if d.signed_allowances { v.abs() } else { v };
    t.allowances.extend(allowances.into_iter().map(magnitude));
    t.charges.extend(charges.into_iter().map(magnitude));
    // ZUGFeRD 1.0 writes shipping and similar charges apart from the other charges.
    for charge in settlement.children_named("SpecifiedLogisticsServiceCharge") {
        t.charges.extend(r.amount(charge.child("AppliedAmount"), "A logistics charge amount (BT-99)"));
    }
}

/// The amount element in the invoice currency. CII may state BT-110 twice: once in the invoice currency and
/// once (BT-111) in the VAT accounting currency (BT-6); the `currencyID` tells them apart.
fn in_currency<'a, 'i>(
    parent: Node<'a, 'i>,
    name: &str,
    currency: Option<&str>,
    tax_currency: Option<&str>,
) -> Option<Node<'a, 'i>> {
    let nodes: Vec<Node> = parent.children_named(name).collect();
    if let Some(n) = nodes.iter().find(|n| currency.is_some() && n.attribute("currencyID") == currency) {
        return Some(*n);
    }
    let differs_from_tax_currency =
        |n: &&Node| tax_currency.is_none() || tax_currency == currency || n.attribute("currencyID") != tax_currency;
    nodes
        .iter()
        .find(|n| n.attribute("currencyID").is_none())
        .or_else(|| nodes.iter().find(differs_from_tax_currency))
        .copied()
}

/// BG-25 invoice lines. Lines that EXTENDED marks as DETAIL or INFORMATION (sub-lines of a group) are listed but
/// do not count towards BT-106, as the Factur-X rules for BR-CO-10 say.
fn read_lines(r: &mut Reader, e: &mut Extraction, t: &mut En16931Totals, transaction: Node, d: &Dialect) {
    let mut items = Vec::new();
    for line in transaction.children_named("IncludedSupplyChainTradeLineItem") {
        let item = line_item(r, line, d);
        let status = line.text_at(&["AssociatedDocumentLineDocument", "LineStatusReasonCode"]);
        if !matches!(status.as_deref(), Some("DETAIL" | "INFORMATION")) {
            t.line_net_amounts.extend(item.amount);
        }
        if let (Some(net), Some(quantity), Some(price)) = (item.amount, item.quantity, item.unit_price) {
            t.lines.push(line_figures(r, line, d, net, quantity, price));
        }
        if item != LineItem::default() {
            items.push(item);
        }
    }
    e.line_items = (!items.is_empty()).then_some(items);
}

fn line_item(r: &mut Reader, line: Node, d: &Dialect) -> LineItem {
    let settlement = line.child(d.line_settlement);
    let product = |field: &str| line.text_at(&["SpecifiedTradeProduct", field]);
    let quantity = line.at(&[d.line_delivery, "BilledQuantity"]);
    let price = line.at(&[d.line_agreement, "NetPriceProductTradePrice", "ChargeAmount"]);
    let net = settlement.and_then(|s| s.at(&[d.line_summation, "LineTotalAmount"]));
    let rate = settlement.and_then(|s| s.at(&["ApplicableTradeTax", d.rate]));
    LineItem {
        description: values::clean(product("Name").or_else(|| product("Description"))), // BT-153, BT-154
        quantity: r.amount(quantity, "An invoiced quantity (BT-129)"),
        unit_price: r.amount(price, "An item net price (BT-146)"),
        amount: r.amount(net, "A line net amount (BT-131)"),
        tax_rate: r.amount(rate, "A line VAT rate (BT-152)"),
    }
}

/// The figures the line amount rule needs: price base quantity (BT-149), line allowances and charges.
fn line_figures(
    r: &mut Reader,
    line: Node,
    d: &Dialect,
    net: Decimal,
    quantity: Decimal,
    price: Decimal,
) -> LineFigures {
    let base = line.at(&[d.line_agreement, "NetPriceProductTradePrice", "BasisQuantity"]);
    let (allowances, charges) = match line.child(d.line_settlement) {
        Some(settlement) => values::allowances_and_charges(
            r,
            settlement.children_named("SpecifiedTradeAllowanceCharge"),
            &["ChargeIndicator", "Indicator"],
            "ActualAmount",
            Level::Line,
        ),
        None => Default::default(),
    };
    LineFigures {
        id: line.text_at(&["AssociatedDocumentLineDocument", "LineID"]),
        net,
        quantity,
        price,
        base_quantity: r.amount(base, "An item price base quantity (BT-149)"),
        allowances: checks::sum(&allowances),
        charges: checks::sum(&charges),
    }
}
