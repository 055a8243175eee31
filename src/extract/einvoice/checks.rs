//! Arithmetic checks on what the document states.
//!
//! EN 16931 (CII, UBL): the BR-CO calculation rules of the semantic model (BR-CO-10 to BR-CO-17), plus the
//! line amount rule (BT-131 = quantity x price + line charges - line allowances) under its Peppol name
//! PEPPOL-EN16931-R120, since no BR-CO rule looks inside a line. Facturae: the sums its totals are defined as.
//! A rule runs only when the terms it compares are in the document; optional terms that EN 16931 treats as
//! "zero when absent" (allowances BT-107, charges BT-108, VAT BT-110, prepaid BT-113, rounding BT-114) count
//! as zero.
//!
//! Tolerance: 0.01 per rule. Amounts are written with two decimals and every total is a rounded sum, so one
//! cent of difference is rounding; more is an error in the document. BR-CO-17 (tax = base x rate) gets one
//! currency unit, as the official CII schematron allows. A failed rule is a `Check { ok: false }` plus a
//! warning sentence, never an error: the document is still read, and the person who sent it can be told what
//! does not add up.

use crate::extract::model::{Check, Extraction, TaxLine};
use rust_decimal::Decimal;

/// One cent.
pub(crate) const TOLERANCE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// The EN 16931 terms the BR-CO rules compare (BG-22 document totals and the amounts they sum).
#[derive(Debug, Default)]
pub(crate) struct En16931Totals {
    /// BT-131 of every invoice line that has one (and counts towards BT-106).
    pub line_net_amounts: Vec<Decimal>,
    /// The figures of each line that states its quantity, price and net amount.
    pub lines: Vec<LineFigures>,
    /// BT-92 document level allowance amounts.
    pub allowances: Vec<Decimal>,
    /// BT-99 document level charge amounts.
    pub charges: Vec<Decimal>,
    /// BT-117 VAT category tax amounts.
    pub vat_category_amounts: Vec<Decimal>,
    pub line_total: Option<Decimal>,      // BT-106
    pub allowance_total: Option<Decimal>, // BT-107
    pub charge_total: Option<Decimal>,    // BT-108
    pub net_total: Option<Decimal>,       // BT-109
    pub vat_total: Option<Decimal>,       // BT-110
    pub grand_total: Option<Decimal>,     // BT-112
    pub prepaid: Option<Decimal>,         // BT-113
    pub rounding: Option<Decimal>,        // BT-114
    pub due: Option<Decimal>,             // BT-115
}

/// What one invoice line says about its own amount (BG-25, BG-27, BG-28, BG-29).
#[derive(Debug)]
pub(crate) struct LineFigures {
    pub id: Option<String>,             // BT-126
    pub net: Decimal,                   // BT-131
    pub quantity: Decimal,              // BT-129
    pub price: Decimal,                 // BT-146
    pub base_quantity: Option<Decimal>, // BT-149
    pub allowances: Decimal,            // sum of BT-136
    pub charges: Decimal,               // sum of BT-141
}

/// Runs BR-CO-10 .. BR-CO-17 and the line amount rule, and records each as a check (and a warning when it
/// fails).
pub(crate) fn en16931(t: &En16931Totals, e: &mut Extraction) {
    let zero = Decimal::ZERO;
    line_net_amounts(&t.lines, e);
    if let Some(bt106) = t.line_total.filter(|_| !t.line_net_amounts.is_empty()) {
        let sum = sum(&t.line_net_amounts);
        let rule = Rule::new("BR-CO-10", bt106, sum);
        rule.record(e, || format!("the sum of line net amounts (BT-106) is {bt106}, but the lines add up to {sum}"));
    }
    if let Some(bt107) = t.allowance_total {
        let sum = sum(&t.allowances);
        Rule::new("BR-CO-11", bt107, sum).record(e, || {
            format!("the sum of allowances (BT-107) is {bt107}, but the document level allowances add up to {sum}")
        });
    }
    if let Some(bt108) = t.charge_total {
        let sum = sum(&t.charges);
        Rule::new("BR-CO-12", bt108, sum).record(e, || {
            format!("the sum of charges (BT-108) is {bt108}, but the document level charges add up to {sum}")
        });
    }
    if let (Some(bt109), Some(bt106)) = (t.net_total, t.line_total) {
        let bt107 = t.allowance_total.unwrap_or(zero);
        let bt108 = t.charge_total.unwrap_or(zero);
        let expected = bt106 - bt107 + bt108;
        Rule::new("BR-CO-13", bt109, expected).record(e, || {
            format!(
                "the total without VAT (BT-109) is {bt109}, but lines {bt106} - allowances {bt107} + charges {bt108} = {expected}"
            )
        });
    }
    if let Some(bt110) = t.vat_total.filter(|_| !t.vat_category_amounts.is_empty()) {
        let sum = sum(&t.vat_category_amounts);
        Rule::new("BR-CO-14", bt110, sum)
            .record(e, || format!("the VAT total (BT-110) is {bt110}, but the VAT breakdown adds up to {sum}"));
    }
    if let (Some(bt112), Some(bt109)) = (t.grand_total, t.net_total) {
        let bt110 = t.vat_total.unwrap_or(zero);
        let expected = bt109 + bt110;
        Rule::new("BR-CO-15", bt112, expected).record(e, || {
            format!("the total with VAT (BT-112) is {bt112}, but {bt109} without VAT + {bt110} VAT = {expected}")
        });
    }
    if let (Some(bt115), Some(bt112)) = (t.due, t.grand_total) {
        let bt113 = t.prepaid.unwrap_or(zero);
        let bt114 = t.rounding.unwrap_or(zero);
        let expected = bt112 - bt113 + bt114;
        Rule::new("BR-CO-16", bt115, expected).record(e, || {
            format!(
                "the amount due (BT-115) is {bt115}, but total {bt112} - prepaid {bt113} + rounding {bt114} = {expected}"
            )
        });
    }
    let taxes = e.taxes.clone().unwrap_or_default();
    tax_amounts_follow_rates("BR-CO-17", &taxes, e);
}

/// BT-131 = BT-129 x (BT-146 / BT-149) + line charges - line allowances. EN 16931 states this calculation in
/// its semantic model (clause 6.4) and Peppol BIS 3 enforces it as PEPPOL-EN16931-R120, the name used here.
/// One check for all lines; the detail names the lines that do not add up.
fn line_net_amounts(lines: &[LineFigures], e: &mut Extraction) {
    if lines.is_empty() {
        return;
    }
    let wrong: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let base = l.base_quantity.filter(|b| !b.is_zero()).unwrap_or(Decimal::ONE);
            let expected = l.quantity * l.price / base + l.charges - l.allowances;
            let holds = (l.net - expected).abs() <= TOLERANCE;
            (!holds).then(|| {
                format!(
                    "line {}: net amount {}, but {} x {} / {base} + charges {} - allowances {} = {}",
                    l.id.as_deref().unwrap_or("?"),
                    l.net,
                    l.quantity,
                    l.price,
                    l.charges,
                    l.allowances,
                    expected.round_dp(4).normalize()
                )
            })
        })
        .collect();
    record_all(e, "PEPPOL-EN16931-R120", wrong, TOLERANCE);
}

/// Slack for BR-CO-17: the official EN 16931 CII schematron accepts a VAT category amount within one currency
/// unit of base x rate (tax may be rounded per line, and currencies like HUF round to whole units). The same
/// slack is used for UBL and Facturae so an invoice gets one verdict whatever its syntax.
const TAX_RATE_SLACK: Decimal = Decimal::ONE;

/// BR-CO-17: VAT category tax amount (BT-117) = taxable amount (BT-116) x rate (BT-119) / 100, rounded to two
/// decimals. Also used for Facturae's tax lines, which follow the same arithmetic.
pub(crate) fn tax_amounts_follow_rates(name: &'static str, taxes: &[TaxLine], e: &mut Extraction) {
    let stated: Vec<(Decimal, Decimal, Decimal)> =
        taxes.iter().filter_map(|t| Some((t.base?, t.rate?, t.amount?))).collect();
    if stated.is_empty() {
        return;
    }
    let wrong: Vec<String> = stated
        .iter()
        .filter_map(|&(base, rate, amount)| {
            let expected = (base * rate / Decimal::ONE_HUNDRED).round_dp(2);
            let holds = (amount - expected).abs() <= TAX_RATE_SLACK;
            (!holds).then(|| format!("tax {amount} at {rate}% of {base}, but {base} x {rate} / 100 = {expected}"))
        })
        .collect();
    record_all(e, name, wrong, TAX_RATE_SLACK);
}

/// One check summarising several comparisons; `wrong` explains each that failed.
fn record_all(e: &mut Extraction, name: &'static str, wrong: Vec<String>, tolerance: Decimal) {
    if wrong.is_empty() {
        e.push_check(Check::new(name, true, None));
        return;
    }
    let detail = format!("{} (tolerance {tolerance})", wrong.join("; "));
    e.push_warning(format!("The amounts do not add up: {detail} [{name}]."));
    e.push_check(Check::new(name, false, Some(detail)));
}

/// "stated" should equal "computed" within the tolerance.
pub(crate) struct Rule {
    name: &'static str,
    stated: Decimal,
    computed: Decimal,
}

impl Rule {
    pub fn new(name: &'static str, stated: Decimal, computed: Decimal) -> Self {
        Rule { name, stated, computed }
    }

    pub fn holds(&self) -> bool {
        (self.stated - self.computed).abs() <= TOLERANCE
    }

    /// Adds the check; when it fails, `explain` gives the numbers for the detail and the warning.
    pub fn record(&self, e: &mut Extraction, explain: impl FnOnce() -> String) {
        if self.holds() {
            e.push_check(Check::new(self.name, true, None));
            return;
        }
        let why = explain();
        let difference = self.stated - self.computed;
        let detail = format!("{why} (difference {difference}, tolerance {TOLERANCE})");
        e.push_warning(format!("The amounts do not add up: {detail} [{}].", self.name));
        e.push_check(Check::new(self.name, false, Some(detail)));
    }
}

/// The payee account (BT-84) is kept as the XML states it; when it is not a valid IBAN (a national account
/// number, an anonymised "XXX", a typo in the check digits) the accountants must see that before paying into it.
pub(crate) fn payee_account(mut e: Extraction) -> Extraction {
    let Some(account) = e.supplier.as_ref().and_then(|s| s.iban.clone()) else {
        return e;
    };
    match crate::extract::rules::iban::Iban::parse(&account) {
        Ok(_) => e.push_check(Check::new("iban_checksum", true, Some(format!("{account} passes mod 97")))),
        Err(_) => {
            e.push_warning(format!("The payment account {account} stated in the XML is not a valid IBAN."));
            e.push_check(Check::new("iban_checksum", false, Some(format!("{account} fails mod 97 or its length"))));
        }
    }
    e
}

pub(crate) fn sum(values: &[Decimal]) -> Decimal {
    values.iter().copied().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn run(t: &En16931Totals) -> Extraction {
        let mut e = Extraction::empty("t.xml");
        en16931(t, &mut e);
        e
    }

    #[test]
    fn a_consistent_invoice_passes_every_rule_that_has_inputs() {
        let t = En16931Totals {
            line_net_amounts: vec![d("100.00"), d("50.00")],
            line_total: Some(d("150.00")),
            net_total: Some(d("150.00")),
            vat_category_amounts: vec![d("28.50")],
            vat_total: Some(d("28.50")),
            grand_total: Some(d("178.50")),
            due: Some(d("178.50")),
            ..Default::default()
        };
        let e = run(&t);
        let names: Vec<_> = e.checks.iter().flatten().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["BR-CO-10", "BR-CO-13", "BR-CO-14", "BR-CO-15", "BR-CO-16"]);
        // BR-CO-17 and the line rule need tax lines and line figures, which this example does not have.
        assert_eq!(e.failed_checks().count(), 0);
        assert!(e.warnings.is_none());
    }

    #[test]
    fn a_wrong_grand_total_fails_br_co_15_with_the_numbers() {
        let t = En16931Totals {
            net_total: Some(d("100.00")),
            vat_total: Some(d("19.00")),
            grand_total: Some(d("120.00")),
            ..Default::default()
        };
        let e = run(&t);
        let failed: Vec<_> = e.failed_checks().collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].name, "BR-CO-15");
        let detail = failed[0].detail.as_deref().unwrap();
        assert!(detail.contains("120.00") && detail.contains("119.00"), "{detail}");
        assert!(e.warnings.unwrap()[0].contains("BR-CO-15"));
    }

    #[test]
    fn one_cent_of_rounding_is_tolerated() {
        assert!(Rule::new("x", d("10.01"), d("10.00")).holds());
        assert!(!Rule::new("x", d("10.02"), d("10.00")).holds());
    }
}
