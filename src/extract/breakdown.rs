//! The VAT breakdown per rate for invoices read from their page, when the rules found no per-rate table: the
//! libro registro needs base, rate and quota per rate. Only a rate the page prints is used, and only when it
//! explains the whole tax amount from the whole base: an invoice with two rates and no table gets no breakdown
//! rather than an invented one.

use rust_decimal::Decimal;

use crate::extract::model::TaxLine;
use crate::extract::rules::numbers::find_percents;
use crate::extract::Extraction;

/// Fill `e.taxes` from its net and tax amounts and a rate printed in `text`, when exactly one printed rate fits.
pub fn fill(e: &mut Extraction, text: &str) {
    if e.taxes.as_ref().is_some_and(|t| !t.is_empty()) {
        return;
    }
    let (Some(net), Some(tax)) = (e.net_amount, e.tax_amount) else { return };
    let mut printed: Vec<Decimal> = text.lines().flat_map(find_percents).map(|p| p.value).collect();
    printed.sort();
    printed.dedup();
    let hundred = Decimal::from(100);
    // The quota is rounded once per rate (RD 1619/2012 art. 6): one cent either way is the rounding.
    let fits: Vec<Decimal> = printed
        .into_iter()
        .filter(|r| *r > Decimal::ZERO && *r < hundred)
        .filter(|r| ((net * r / hundred).round_dp(2) - tax).abs() <= Decimal::new(1, 2))
        .collect();
    if let [rate] = fits.as_slice() {
        e.taxes = Some(vec![TaxLine { rate: Some(*rate), base: Some(net), amount: Some(tax), category: None }]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(net: &str, tax: &str) -> Extraction {
        let mut e = Extraction::empty("f.pdf");
        e.net_amount = net.parse().ok();
        e.tax_amount = tax.parse().ok();
        e
    }

    #[test]
    fn one_printed_rate_that_explains_the_tax_becomes_the_breakdown() {
        let mut e = invoice("800.00", "168.00");
        fill(&mut e, "Base imponible 800,00\nIVA 21 % 168,00\nRetención IRPF 15% -120,00");
        let t = &e.taxes.unwrap()[0];
        assert_eq!((t.rate, t.base, t.amount), (Some(Decimal::from(21)), "800.00".parse().ok(), "168.00".parse().ok()));
    }

    #[test]
    fn mixed_rates_without_a_table_or_no_printed_rate_give_no_breakdown() {
        let mut e = invoice("138.00", "22.52");
        fill(&mut e, "IVA 21% y 4%\nTotal 160,52");
        assert_eq!(e.taxes, None);
        let mut e = invoice("100.00", "21.00");
        fill(&mut e, "Impuestos 21,00");
        assert_eq!(e.taxes, None);
    }
}
