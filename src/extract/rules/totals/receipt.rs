//! A till receipt's total must be backed up: by net plus tax, by the item amounts above it, or by the cash tendered
//! less the change. Tendered, change and rounding amounts are never the total.

use crate::extract::rules::labels::Field;
use crate::extract::rules::layout::{Layout, Line};
use crate::extract::rules::{fold, Locale};
use regex_lite::Regex;
use rust_decimal::Decimal;
use std::sync::LazyLock;

use super::{close, Candidate, Totals};

/// A label this strong (`Total factura`, `Grand total`, `Amount due`) vouches for its amount on its own.
pub(super) const STRONG_TOTAL_LABEL: f32 = 0.85;

/// Words of the cash tendered and of the change given back on a till slip (folded text).
pub(super) static TENDERED_RE: LazyLock<Regex> = LazyLock::new(|| {
    super::super::regex(
        r"\b(?:cash|tendered|entregado|efectivo|recibido|gegeben|bar|especes|contanti|contante|contant|dinheiro|pagamento)\b",
    )
});

pub(super) static CHANGE_RE: LazyLock<Regex> = LazyLock::new(|| {
    super::super::regex(r"\b(?:change|cambio|vuelto|ruckgeld|wechselgeld|rendu|monnaie|wisselgeld|terug|resto|troco)\b")
});

/// The cash-rounding line of a till slip (folded text).
static ROUNDING_RE: LazyLock<Regex> = LazyLock::new(|| {
    super::super::regex(r"\b(?:rounding|redondeo|rundung|arrondi|afronding|arrotondamento|arredondamento)\b")
});

/// What a till slip's cash-rounding line changes: the total is what is paid after it (`total_after_rounding`),
/// and a net or tax worked out from the total is not kept (`printed_beside_rounding`). Nothing on a slip
/// without one.
pub fn after_cash_rounding(layout: &Layout, cands: &[Candidate], totals: &mut Totals, hint: Option<Locale>) {
    let roundings: Vec<&Line> = layout.lines.iter().filter(|l| ROUNDING_RE.is_match(&fold(&l.text))).collect();
    if roundings.is_empty() {
        return;
    }
    total_after_rounding(&roundings, totals, hint);
    printed_beside_rounding(layout, cands, totals, hint);
}

/// A till slip that rounds cash prints the total, a rounding line and then what is paid (`TOTAL 3,44`,
/// `Afronding 0,01`, `TE BETALEN 3,45`), and what is paid is its total (EVALUATION.md). When the solver took
/// the total before rounding, and the amount due differs from it by less
/// than the largest cash rounding (half a unit), of the same sign, and by the rounding line's own amount when
/// that one is legible: the amount due becomes the total. Net and tax stay as printed, with a warning.
fn total_after_rounding(roundings: &[&Line], totals: &mut Totals, hint: Option<Locale>) {
    let (Some(total), Some(due)) = (totals.total, totals.due) else {
        return;
    };
    let diff = due - total;
    if diff.is_zero() || diff.abs() > Decimal::new(50, 2) || due.is_sign_negative() != total.is_sign_negative() {
        return;
    }
    let legible: Vec<Decimal> = roundings
        .iter()
        .filter_map(|l| l.amounts(0, l.text.len(), hint).into_iter().rev().find(|a| a.has_decimals))
        .map(|a| a.value)
        .collect();
    if !legible.is_empty() && !legible.iter().any(|r| r.abs() == diff.abs()) {
        return;
    }
    totals.warnings.push(format!("the total {total} rounded to {due} for cash; the rounded amount is the total"));
    totals.total = Some(due);
}

/// A net or tax that the slip does not print, worked out from a total that a cash-rounding line may have
/// moved, is off by the rounding (`323.00 − 15.90 = 307.10` for a printed net of `307.05` that OCR could not
/// label): only printed amounts are kept, and a tax that is the sum of the
/// per-rate quotas printed.
fn printed_beside_rounding(layout: &Layout, cands: &[Candidate], totals: &mut Totals, hint: Option<Locale>) {
    let printed: Vec<Decimal> = layout
        .lines
        .iter()
        .flat_map(|l| l.amounts(0, l.text.len(), hint))
        .map(|a| a.value.abs())
        .chain(super::rated_sum(cands).map(|(sum, _)| sum.abs()))
        .collect();
    for (name, value) in [("net_amount", &mut totals.net), ("tax_amount", &mut totals.tax)] {
        if let Some(v) = *value {
            if !printed.contains(&v.abs()) {
                *value = None;
                totals.confidence.remove(name);
                totals.warnings.push(format!(
                    "{} {v} is not printed and was worked out from a total that cash rounding may have moved; it was not kept",
                    name.replace('_', " ")
                ));
            }
        }
    }
}

/// The total of a till slip needs corroboration unless its label is strong: net + tax (the solver kept them
/// only when they add up), the item amounts above it, or cash tendered less change. A weakly labelled total
/// that nothing corroborates is more likely a tendered, subtotal or item amount than the total, so it is
/// dropped (with the amount due it fed) and a warning says why.
pub fn corroborate_receipt_total(layout: &Layout, cands: &[Candidate], totals: &mut Totals, hint: Option<Locale>) {
    let Some(total) = totals.total else {
        return;
    };
    if totals.net.is_some() && totals.tax.is_some() {
        return;
    }
    let label = cands
        .iter()
        .filter(|c| matches!(c.field, Field::Total | Field::Due) && c.value == total)
        .max_by(|a, b| a.score.total_cmp(&b.score));
    let Some(label) = label else {
        return;
    };
    if label.score >= STRONG_TOTAL_LABEL
        || items_add_up(layout, label.line, total, hint)
        || tendered_less_change(layout, total, hint)
    {
        return;
    }
    totals.total = None;
    totals.confidence.remove("total_amount");
    if totals.due == Some(total) {
        totals.due = None;
        totals.confidence.remove("amount_due");
    }
    totals.warnings.push(format!(
        "the receipt total {total} agrees neither with net and tax, the items, nor the cash tendered; it was not kept"
    ));
}

/// Do the amounts ending the unlabelled lines above `line` (the items) add up to `total`, counting upwards?
pub(super) fn items_add_up(layout: &Layout, line: usize, total: Decimal, hint: Option<Locale>) -> bool {
    let mut sum = Decimal::ZERO;
    for i in (line.saturating_sub(60)..line).rev() {
        let l = &layout.lines[i];
        if l.is_blank() {
            continue;
        }
        let labelled = l.labels().iter().any(|h| h.field != Field::Currency);
        let Some(last) = l.amounts(0, l.text.len(), hint).into_iter().rev().find(|a| a.has_decimals) else {
            continue;
        };
        if labelled {
            // A subtotal equal to the total (a slip without tax) corroborates it too; other labelled rows are
            // not items.
            if l.labels().iter().any(|h| h.field == Field::Net) && close(last.value, total) && sum.is_zero() {
                return true;
            }
            continue;
        }
        sum += last.value;
        if close(sum, total) {
            return true;
        }
    }
    false
}

/// Is `total` the cash tendered less the change given back?
pub(super) fn tendered_less_change(layout: &Layout, total: Decimal, hint: Option<Locale>) -> bool {
    let last_amount = |re: &Regex| -> Vec<Decimal> {
        layout
            .lines
            .iter()
            .filter(|l| re.is_match(&fold(&l.text)))
            .filter_map(|l| l.amounts(0, l.text.len(), hint).into_iter().rev().find(|a| a.has_decimals))
            .map(|a| a.value)
            .collect()
    };
    let (tendered, change) = (last_amount(&TENDERED_RE), last_amount(&CHANGE_RE));
    tendered.iter().any(|t| change.iter().any(|c| *c < *t && close(*t - *c, total)))
}
