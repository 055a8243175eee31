//! Line items, conservatively: a row counts only when it has a description and three numbers where
//! quantity × unit price = amount to the cent. Rows that do not multiply out (discounts, packaging units) are
//! left out rather than guessed, and the whole table is dropped unless at least two rows or the net agree.

use super::layout::Layout;
use super::Locale;
use crate::extract::model::LineItem;
use rust_decimal::Decimal;

/// Rows of the line-item table that multiply out.
pub fn read_items(layout: &Layout, hint: Option<Locale>) -> Vec<LineItem> {
    let mut out = Vec::new();
    for line in &layout.lines {
        let amounts = line.amounts(0, line.text.len(), hint);
        if amounts.len() < 3 {
            continue;
        }
        let Some(first_num) = amounts.first() else {
            continue;
        };
        let description = line.text[..first_num.start].trim();
        // The description is what precedes the numbers; a row led by a position number keeps the text after it.
        let description = description.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.').trim();
        if description.chars().filter(|c| c.is_alphabetic()).count() < 3 {
            continue;
        }
        // Money is printed with decimals; bare integers at the end of a row are phone numbers or codes.
        if !amounts.last().is_some_and(|a| a.has_decimals || a.has_currency) {
            continue;
        }
        let values: Vec<Decimal> = amounts.iter().map(|a| a.value).collect();
        if let Some(item) = multiply_out(description, &values) {
            out.push(item);
        }
    }
    out
}

/// Find quantity, unit price and amount among a row's numbers, in that order, with q × p = amount.
fn multiply_out(description: &str, values: &[Decimal]) -> Option<LineItem> {
    let n = values.len();
    for a in (2..n).rev() {
        for p in (1..a).rev() {
            for q in (0..p).rev() {
                let (qty, price, amount) = (values[q], values[p], values[a]);
                if qty.is_zero() || amount.is_zero() {
                    continue;
                }
                if (qty * price).round_dp(2) == amount.round_dp(2) {
                    return Some(LineItem {
                        description: Some(description.to_string()),
                        quantity: Some(qty),
                        unit_price: Some(price),
                        amount: Some(amount),
                        tax_rate: None,
                    });
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn rows_that_multiply_out_are_line_items() {
        let layout = Layout::new(
            "Descripción              Cantidad    Precio      Importe\nTornillos M8                   100      0,25        25,00\nMano de obra                   2,5     40,00       100,00\nPortes (según tarifa)            1     12,00        10,00\n",
        );
        let items = read_items(&layout, Some(Locale::Es));
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].description.as_deref(), Some("Tornillos M8"));
        assert_eq!(items[1].amount, Some(Decimal::from_str("100.00").unwrap()));
    }
}
