//! Where the amounts come from: every labelled amount on the page as a candidate (beside its label or under it
//! in a column), unlabelled totals, and the tax-breakdown rows.

use crate::extract::rules::labels::{Field, LabelHit};
use crate::extract::rules::layout::Layout;
use crate::extract::rules::numbers::{find_percents, parse_amount};
use crate::extract::rules::Locale;
use rust_decimal::Decimal;

use super::{close, vat_rates, Candidate, TaxRow};

/// Labelled amounts and tax rows of a document.
pub fn collect(layout: &Layout, hint: Option<Locale>) -> (Vec<Candidate>, Vec<TaxRow>) {
    let mut cands = Vec::new();
    let mut rows = Vec::new();
    for (i, line) in layout.lines.iter().enumerate() {
        if line.is_blank() {
            continue;
        }
        let hits = line.labels();
        let row = tax_row(layout, i, hint);
        if let Some(r) = &row {
            rows.push(r.clone());
        }
        for (k, hit) in hits.iter().enumerate() {
            let wanted = matches!(
                hit.field,
                Field::Net | Field::Tax | Field::Total | Field::Due | Field::Withholding | Field::Prepaid
            );
            if !wanted {
                continue;
            }
            let to = hits.get(k + 1).map_or(line.text.len(), |h| h.start);
            if let Some(c) = same_line(layout, i, hit, to, hint) {
                cands.push(c);
            } else if hits.get(k + 1).is_none_or(|h| h.field != Field::Ignore) {
                cands.extend(under(layout, i, hit, hint));
            }
        }
    }
    (cands, rows)
}

/// Amounts without a label in the lines of the net amount and the three after it, as weak total candidates
/// (score 0.4, below what a total needs on its own): on a scan the heading `TOTAL` of a grey cell is often
/// lost while its amount is read. Only a value equal to net plus tax can then be chosen (see `solve`).
pub fn unlabelled_totals(layout: &Layout, cands: &[Candidate], hint: Option<Locale>) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut lines: Vec<usize> =
        cands.iter().filter(|c| c.field == Field::Net).flat_map(|c| c.line..c.line + 4).collect();
    lines.sort_unstable();
    lines.dedup();
    for i in lines.into_iter().filter(|&i| i < layout.len()) {
        let line = &layout.lines[i];
        for a in line.amounts(0, line.text.len(), hint).into_iter().filter(|a| a.has_decimals) {
            if !cands.iter().any(|c| c.line == i && c.value == a.value) {
                out.push(Candidate { field: Field::Total, value: a.value, score: 0.4, line: i, rate: None, share: 0 });
            }
        }
    }
    out
}

pub(super) fn same_line(
    layout: &Layout,
    i: usize,
    hit: &LabelHit,
    to: usize,
    hint: Option<Locale>,
) -> Option<Candidate> {
    let line = &layout.lines[i];
    let amounts = line.amounts(hit.end, to, hint);
    let a = amounts.last()?;
    let mut score = hit.strength;
    if !a.has_decimals {
        score *= 0.7;
    }
    if !a.has_currency {
        score *= 0.97;
    }
    let label = &line.text[hit.start..a.start];
    let rate = if hit.field == Field::Tax { label_rate(label) } else { None };
    Some(Candidate { field: hit.field, value: a.value, score, line: i, rate, share: tax_share(label) })
}

/// Values printed under a label (a totals header row such as `TOTAL HT   TOTAL TVA   TOTAL TTC`). A column of
/// several values whose last is the sum of the others is a per-rate table with its total row.
pub(super) fn under(layout: &Layout, i: usize, hit: &LabelHit, hint: Option<Locale>) -> Vec<Candidate> {
    let line = &layout.lines[i];
    let (from, to) = layout.column_of(i, line.col(hit.start), line.col(hit.end));
    let mut values: Vec<(usize, Decimal)> = Vec::new();
    let mut last_line = i;
    for (j, seg) in layout.below(i, from, to, 4) {
        if j == last_line && !values.is_empty() {
            continue;
        }
        // In a grid of headings with the amounts right-aligned under them, an amount may reach into the next
        // heading's column by a char or two: it belongs to the column its middle is in.
        let middle = (seg.start + seg.end) / 2;
        if middle < from || middle > to {
            continue;
        }
        match parse_amount(&seg.text, hint) {
            Some(v) if seg.text.contains([',', '.']) => {
                values.push((j, v));
                last_line = j;
            }
            // A note between the header and its values is skipped; text after the values ends the column.
            _ if values.is_empty() => continue,
            _ => break,
        }
    }
    let Some(&(first_line, first)) = values.first() else {
        return Vec::new();
    };
    let &(end_line, last) = values.last().expect("non-empty");
    let sum_rest: Decimal = values[..values.len() - 1].iter().map(|(_, v)| *v).sum();
    let (value, line, factor) = if values.len() == 1 || values.iter().all(|(_, v)| *v == first) {
        (first, first_line, 0.9)
    } else if close(sum_rest, last) {
        (last, end_line, 0.9)
    } else {
        (first, first_line, 0.6)
    };
    let label_line = &layout.lines[i];
    let label = label_line.segment_at(hit.start).map_or(&label_line.text[hit.start..hit.end], |s| s.text.as_str());
    let rate = if hit.field == Field::Tax { label_rate(label) } else { None };
    vec![Candidate { field: hit.field, value, score: hit.strength * factor, line, rate, share: tax_share(label) }]
}

/// Which share of a split tax a label names (see `Candidate::share`).
pub(super) fn tax_share(label: &str) -> u8 {
    let folded = crate::extract::rules::fold(label);
    match folded.split(|c: char| !c.is_alphanumeric()).find(|w| matches!(*w, "cgst" | "sgst" | "utgst")) {
        Some("cgst") => 1,
        Some(_) => 2,
        None => 0,
    }
}

/// The one known VAT rate printed in a label (`IVA 21%`), if there is exactly one.
pub(super) fn label_rate(text: &str) -> Option<Decimal> {
    let known = vat_rates();
    let rates: Vec<Decimal> =
        find_percents(text).into_iter().map(|p| p.value.normalize()).filter(|r| known.contains(r)).collect();
    match rates.as_slice() {
        [one] if !one.is_zero() => Some(*one),
        _ => None,
    }
}

/// Is this line a tax-breakdown row? It needs a known rate (with `%`, or a bare rate number in a row of money)
/// and two amounts `base` and `amount` with `base × rate = amount` to the cent.
pub(super) fn tax_row(layout: &Layout, i: usize, hint: Option<Locale>) -> Option<TaxRow> {
    let line = &layout.lines[i];
    let lower = line.text.to_lowercase();
    if ["irpf", "retenc", "withholding", "skonto", "rabatt", "descuento", "remise"].iter().any(|w| lower.contains(w)) {
        return None;
    }
    let amounts = line.amounts(0, line.text.len(), hint);
    let money: Vec<Decimal> = amounts.iter().filter(|a| a.has_decimals).map(|a| a.value).collect();
    if money.len() < 2 {
        return None;
    }
    let mut rates: Vec<Decimal> = find_percents(&line.text).into_iter().map(|p| p.value).collect();
    let percent_given = !rates.is_empty();
    if !percent_given {
        rates.extend(amounts.iter().filter(|a| !a.has_decimals).map(|a| a.value));
        rates.extend(amounts.iter().filter(|a| a.has_decimals && a.value < Decimal::from(30)).map(|a| a.value));
    }
    let known = vat_rates();
    let tax_word = ["iva", "vat", "tax", "mwst", "ust", "steuer", "tva", "btw", "impuesto", "taxe"]
        .iter()
        .any(|w| lower.contains(w));
    for rate in rates.into_iter().filter(|r| known.contains(&r.normalize())) {
        for (bi, &base) in money.iter().enumerate() {
            for &amount in &money[bi + 1..] {
                if base.is_zero() || amount.abs() > base.abs() {
                    continue;
                }
                let computed = (base * rate / Decimal::from(100)).round_dp(2);
                let matches = (computed - amount).abs() <= Decimal::new(1, 2);
                let zero_ok = !rate.is_zero() || (amount.is_zero() && (tax_word || percent_given));
                if matches && zero_ok {
                    return Some(TaxRow { rate: rate.normalize(), base, amount, line: i });
                }
            }
        }
    }
    None
}
