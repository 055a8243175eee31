//! Net, tax, total and amount due.
//!
//! Every labelled amount is only a candidate: `Total` also heads line-item columns, `IVA` also labels the rate
//! column, a page may show the tax in two currencies. We keep the combination that adds up (net + tax = total
//! within a cent or two, and tax consistent with the tax-breakdown rows or a known VAT rate), preferring strong
//! labels. Withholdings (Spanish IRPF) and prepayments explain an amount due below the total; a Spanish
//! `Total factura` printed after IRPF is recognised because it equals net + tax − IRPF.
//!
//! When nothing adds up we keep a clearly labelled total, drop the net and tax that contradict it, and say so in
//! a failed `totals_add_up` check and a warning: a wrong net is worse than none.

use super::labels::{find_labels, Field, LabelHit};
use super::layout::Layout;
use super::numbers::{find_percents, parse_amount};
use super::Locale;
use crate::extract::model::{Check, TaxLine};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;

/// VAT rates in force in the EU (standard and reduced) plus Spain's. A tax that is not one of these times the
/// net is not trusted without a breakdown row to back it.
const VAT_RATES: &[&str] = &[
    "0", "2.1", "3", "4", "5", "5.5", "6", "7", "8", "8.5", "9", "10", "12", "13", "14", "16", "17", "18", "19", "20",
    "21", "22", "23", "24", "25", "27",
];

fn vat_rates() -> Vec<Decimal> {
    VAT_RATES.iter().map(|r| Decimal::from_str(r).expect("rate")).collect()
}

/// Two cents: documents round each tax line and then sum, so the grand total may be off the sum by a cent.
fn tolerance() -> Decimal {
    Decimal::new(2, 2)
}

fn close(a: Decimal, b: Decimal) -> bool {
    (a - b).abs() <= tolerance()
}

/// A labelled amount.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub field: Field,
    pub value: Decimal,
    /// 0..1: label strength times how the value was found (same line, under the label, a bare integer…).
    pub score: f32,
    pub line: usize,
}

/// A row of a tax breakdown: `IVA 21% 1.000,00 210,00`, `19% 336.00 € 63.84 €`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaxRow {
    pub rate: Decimal,
    pub base: Decimal,
    pub amount: Decimal,
    pub line: usize,
}

/// The chosen amounts, with their confidences and what was checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub net: Option<Decimal>,
    pub tax: Option<Decimal>,
    pub total: Option<Decimal>,
    pub due: Option<Decimal>,
    pub withholding: Option<Decimal>,
    pub prepaid: Option<Decimal>,
    pub taxes: Vec<TaxLine>,
    pub confidence: BTreeMap<&'static str, f32>,
    pub checks: Vec<Check>,
    pub warnings: Vec<String>,
}

/// Labelled amounts and tax rows of a document.
pub fn collect(layout: &Layout, hint: Option<Locale>) -> (Vec<Candidate>, Vec<TaxRow>) {
    let mut cands = Vec::new();
    let mut rows = Vec::new();
    for (i, line) in layout.lines.iter().enumerate() {
        if line.is_blank() {
            continue;
        }
        let hits = find_labels(&line.text);
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

fn same_line(layout: &Layout, i: usize, hit: &LabelHit, to: usize, hint: Option<Locale>) -> Option<Candidate> {
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
    Some(Candidate { field: hit.field, value: a.value, score, line: i })
}

/// Values printed under a label (a totals header row such as `TOTAL HT   TOTAL TVA   TOTAL TTC`). A column of
/// several values whose last is the sum of the others is a per-rate table with its total row.
fn under(layout: &Layout, i: usize, hit: &LabelHit, hint: Option<Locale>) -> Vec<Candidate> {
    let line = &layout.lines[i];
    let (from, to) = layout.column_of(i, line.col(hit.start), line.col(hit.end));
    let mut values: Vec<(usize, Decimal)> = Vec::new();
    let mut last_line = i;
    for (j, seg) in layout.below(i, from, to, 4) {
        if j == last_line && !values.is_empty() {
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
    vec![Candidate { field: hit.field, value, score: hit.strength * factor, line }]
}

/// Is this line a tax-breakdown row? It needs a known rate (with `%`, or a bare rate number in a row of money)
/// and two amounts `base` and `amount` with `base × rate = amount` to the cent.
fn tax_row(layout: &Layout, i: usize, hint: Option<Locale>) -> Option<TaxRow> {
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

/// Candidates of one field merged by value, best first; agreement between two labels lifts the score a little.
fn pool(cands: &[Candidate], field: Field) -> Vec<(Decimal, f32)> {
    let mut by_value: Vec<(Decimal, f32, usize)> = Vec::new();
    for c in cands.iter().filter(|c| c.field == field) {
        match by_value.iter_mut().find(|(v, _, _)| *v == c.value) {
            Some(entry) => {
                entry.1 = entry.1.max(c.score);
                entry.2 += 1;
            }
            None => by_value.push((c.value, c.score, 1)),
        }
    }
    let mut out: Vec<(Decimal, f32)> =
        by_value.into_iter().map(|(v, s, n)| (v, (s + 0.05 * (n as f32 - 1.0)).min(1.0))).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out.truncate(6);
    out
}

fn add_to_pool(pool: &mut Vec<(Decimal, f32)>, value: Decimal, score: f32) {
    match pool.iter_mut().find(|(v, _)| *v == value) {
        Some(entry) => entry.1 = (entry.1.max(score) + 0.1).min(1.0),
        None => pool.push((value, score)),
    }
}

/// Does `tax` look like VAT on `net`: one known rate, or exactly the sum of the breakdown rows?
fn plausible_tax(net: Decimal, tax: Decimal, rows: &[TaxRow]) -> bool {
    if !rows.is_empty() && close(rows.iter().map(|r| r.amount).sum(), tax) {
        return true;
    }
    vat_rates().iter().any(|r| close((net * r / Decimal::from(100)).round_dp(2), tax))
}

fn same_sign(values: &[Decimal]) -> bool {
    values.iter().all(|v| !v.is_sign_negative() || v.is_zero())
        || values.iter().all(|v| v.is_sign_negative() || v.is_zero())
}

#[derive(Debug, Clone, Copy, Default)]
struct Choice {
    net: Option<Decimal>,
    tax: Option<Decimal>,
    total: Option<Decimal>,
    due: Option<Decimal>,
    withholding: Option<Decimal>,
    /// Which of net/tax/total were computed rather than read.
    derived: [bool; 3],
    score: f32,
    consistent: bool,
}

/// Pick the amounts (see the module comment).
pub fn solve(cands: &[Candidate], rows: &[TaxRow]) -> Totals {
    let mut nets = pool(cands, Field::Net);
    let mut taxes = pool(cands, Field::Tax);
    let mut totals = pool(cands, Field::Total);
    let dues = pool(cands, Field::Due);
    let withholdings: Vec<(Decimal, f32)> =
        pool(cands, Field::Withholding).into_iter().map(|(v, s)| (v.abs(), s)).collect();
    let prepaids: Vec<(Decimal, f32)> = pool(cands, Field::Prepaid).into_iter().map(|(v, s)| (v.abs(), s)).collect();
    if !rows.is_empty() {
        add_to_pool(&mut nets, rows.iter().map(|r| r.base).sum(), 0.7);
        add_to_pool(&mut taxes, rows.iter().map(|r| r.amount).sum(), 0.7);
    }
    // A document without a "total" label may still print the grand total as "amount due".
    for &(v, s) in &dues {
        if !totals.iter().any(|(t, _)| *t == v) {
            totals.push((v, s * 0.8));
        }
    }

    let best = best_choice(&nets, &taxes, &totals, &withholdings, rows);
    let mut out = Totals::default();
    let Some(choice) = best else {
        if !nets.is_empty() || !taxes.is_empty() {
            out.warnings.push("no total amount found; net and tax were not kept".into());
        }
        return out;
    };
    out.net = choice.net;
    out.tax = choice.tax;
    out.total = choice.total;
    out.withholding = choice.withholding;
    let base_conf = if choice.consistent { 0.95 } else { (0.3 + 0.5 * choice.score).min(0.8) };
    for (name, value, derived) in [
        ("net_amount", choice.net, choice.derived[0]),
        ("tax_amount", choice.tax, choice.derived[1]),
        ("total_amount", choice.total, choice.derived[2]),
    ] {
        if value.is_some() {
            out.confidence.insert(name, if derived { base_conf - 0.1 } else { base_conf });
        }
    }
    if let (Some(n), Some(t), Some(g)) = (choice.net, choice.tax, choice.total) {
        out.checks.push(Check::new(
            "totals_add_up",
            choice.consistent,
            Some(format!("net {n} + tax {t} = {} (total {g})", n + t)),
        ));
    } else if !nets.is_empty() || !taxes.is_empty() {
        out.checks.push(Check::new(
            "totals_add_up",
            false,
            Some("the net and tax amounts printed do not add up to the total; only the total was kept".into()),
        ));
        out.warnings.push("net and tax amounts contradict the total and were dropped".into());
    }
    if let Some(total) = choice.total {
        amount_due(&mut out, total, choice.due, &dues, &totals, &withholdings, &prepaids);
    }
    if let (Some(n), Some(t)) = (out.net, out.tax) {
        let rows_base: Decimal = rows.iter().map(|r| r.base).sum();
        let rows_tax: Decimal = rows.iter().map(|r| r.amount).sum();
        if !rows.is_empty() && close(rows_base, n) && close(rows_tax, t) {
            let mut seen: Vec<&TaxRow> = Vec::new();
            for r in rows {
                if !seen.iter().any(|s| s.rate == r.rate && s.base == r.base && s.amount == r.amount) {
                    seen.push(r);
                }
            }
            out.taxes = seen
                .into_iter()
                .map(|r| TaxLine { rate: Some(r.rate), base: Some(r.base), amount: Some(r.amount), category: None })
                .collect();
        }
    }
    out
}

fn best_choice(
    nets: &[(Decimal, f32)],
    taxes: &[(Decimal, f32)],
    totals: &[(Decimal, f32)],
    withholdings: &[(Decimal, f32)],
    rows: &[TaxRow],
) -> Option<Choice> {
    let opt = |p: &[(Decimal, f32)]| -> Vec<Option<(Decimal, f32)>> {
        std::iter::once(None).chain(p.iter().copied().map(Some)).collect()
    };
    let mut best: Option<Choice> = None;
    let mut consider = |c: Choice| {
        if best.is_none_or(|b| c.score > b.score) {
            best = Some(c);
        }
    };
    for n in opt(nets) {
        for t in opt(taxes) {
            for g in opt(totals) {
                match (n, t, g) {
                    (Some((nv, ns)), Some((tv, ts)), Some((gv, gs))) => {
                        if !same_sign(&[nv, tv, gv]) {
                            continue;
                        }
                        if close(nv + tv, gv) {
                            consider(Choice {
                                net: Some(nv),
                                tax: Some(tv),
                                total: Some(gv),
                                score: ns + ts + gs + 1.0,
                                consistent: true,
                                ..Choice::default()
                            });
                        }
                        // Spanish invoices often print the total after IRPF: it is then the amount due.
                        for &(wv, ws) in withholdings {
                            if close(nv + tv - wv, gv) && plausible_tax(nv, tv, rows) {
                                consider(Choice {
                                    net: Some(nv),
                                    tax: Some(tv),
                                    total: Some(nv + tv),
                                    due: Some(gv),
                                    withholding: Some(wv),
                                    derived: [false, false, true],
                                    score: ns + ts + gs + ws + 1.0,
                                    consistent: true,
                                });
                            }
                        }
                    }
                    (Some((nv, ns)), None, Some((gv, gs))) => {
                        let tv = gv - nv;
                        if same_sign(&[nv, gv]) && nv.abs() <= gv.abs() && plausible_tax(nv, tv, rows) {
                            consider(Choice {
                                net: Some(nv),
                                tax: Some(tv),
                                total: Some(gv),
                                derived: [false, true, false],
                                score: ns + gs + 0.5,
                                consistent: true,
                                ..Choice::default()
                            });
                        }
                    }
                    (None, Some((tv, ts)), Some((gv, gs))) => {
                        let nv = gv - tv;
                        if same_sign(&[tv, gv]) && tv.abs() < gv.abs() && plausible_tax(nv, tv, rows) {
                            consider(Choice {
                                net: Some(nv),
                                tax: Some(tv),
                                total: Some(gv),
                                derived: [true, false, false],
                                score: ts + gs + 0.5,
                                consistent: true,
                                ..Choice::default()
                            });
                        }
                    }
                    (None, None, Some((gv, gs))) if gs >= 0.5 => {
                        consider(Choice { total: Some(gv), score: gs, ..Choice::default() });
                    }
                    _ => {}
                }
            }
        }
    }
    best
}

/// The amount due: a labelled one that the total, withholdings and prepayments explain; else the total itself
/// when nothing was withheld or prepaid.
fn amount_due(
    out: &mut Totals,
    total: Decimal,
    known: Option<Decimal>,
    dues: &[(Decimal, f32)],
    totals: &[(Decimal, f32)],
    withholdings: &[(Decimal, f32)],
    prepaids: &[(Decimal, f32)],
) {
    if let Some(d) = known {
        out.due = Some(d);
        out.confidence.insert("amount_due", 0.9);
        return;
    }
    let zero = [(Decimal::ZERO, 0.0)];
    let ws: Vec<(Decimal, f32)> = zero.iter().copied().chain(withholdings.iter().copied()).collect();
    let ps: Vec<(Decimal, f32)> = zero.iter().copied().chain(prepaids.iter().copied()).collect();
    let candidates = dues.iter().chain(totals.iter().filter(|(v, _)| *v != total));
    let mut best: Option<(Decimal, f32, Decimal, Decimal)> = None;
    for &(d, ds) in candidates {
        for &(w, _) in &ws {
            for &(p, _) in &ps {
                let explained = close(total.abs() - w - p, d.abs()) && same_sign(&[total, d]);
                if explained && best.is_none_or(|b| ds > b.1) {
                    best = Some((d, ds, w, p));
                }
            }
        }
    }
    if let Some((d, _, w, p)) = best {
        out.due = Some(d);
        out.confidence.insert("amount_due", 0.9);
        if !w.is_zero() {
            out.withholding = Some(w);
        }
        if !p.is_zero() {
            out.prepaid = Some(p);
        }
        return;
    }
    // A strongly labelled amount due that nothing explains is still what the supplier asks for; keep it, warn.
    if let Some(&(d, ds)) = dues.first().filter(|(d, ds)| *ds >= 0.85 && *d != total) {
        out.due = Some(d);
        out.confidence.insert("amount_due", 0.6_f32.min(ds));
        out.warnings.push(format!("amount due {d} is not the total {total} less withholdings or prepayments"));
        return;
    }
    if withholdings.is_empty() && prepaids.is_empty() {
        out.due = Some(total);
        out.confidence.insert("amount_due", 0.8);
    } else if let (Some(&(w, _)), true) = (withholdings.first(), prepaids.is_empty()) {
        out.due = Some(total - w);
        out.withholding = Some(w);
        out.confidence.insert("amount_due", 0.7);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn c(field: Field, value: &str, score: f32) -> Candidate {
        Candidate { field, value: d(value), score, line: 0 }
    }

    #[test]
    fn net_plus_tax_must_equal_the_total() {
        let t = solve(
            &[
                c(Field::Net, "1000.00", 0.9),
                c(Field::Tax, "210.00", 0.9),
                c(Field::Total, "1210.00", 0.9),
                c(Field::Total, "160.00", 0.6),
            ],
            &[],
        );
        assert_eq!((t.net, t.tax, t.total), (Some(d("1000.00")), Some(d("210.00")), Some(d("1210.00"))));
        assert_eq!(t.due, Some(d("1210.00")));
        assert!(t.checks.iter().all(|c| c.ok));
    }

    #[test]
    fn spanish_irpf_lowers_the_amount_due_but_not_the_total() {
        let t = solve(
            &[
                c(Field::Net, "1000.00", 0.9),
                c(Field::Tax, "210.00", 0.9),
                c(Field::Withholding, "-150.00", 0.9),
                c(Field::Total, "1060.00", 0.95),
            ],
            &[],
        );
        assert_eq!(t.total, Some(d("1210.00")));
        assert_eq!(t.due, Some(d("1060.00")));
        assert_eq!(t.withholding, Some(d("150.00")));
    }

    #[test]
    fn a_labelled_total_before_irpf_and_a_total_to_pay_after_it_are_both_kept() {
        let t = solve(
            &[
                c(Field::Net, "1000.00", 0.9),
                c(Field::Tax, "210.00", 0.9),
                c(Field::Withholding, "150.00", 0.9),
                c(Field::Total, "1210.00", 0.95),
                c(Field::Due, "1060.00", 0.9),
            ],
            &[],
        );
        assert_eq!((t.total, t.due), (Some(d("1210.00")), Some(d("1060.00"))));
    }

    #[test]
    fn several_vat_rates_sum_their_bases_and_quotas() {
        let rows = [
            TaxRow { rate: d("21"), base: d("1000.00"), amount: d("210.00"), line: 1 },
            TaxRow { rate: d("10"), base: d("500.00"), amount: d("50.00"), line: 2 },
        ];
        let t = solve(&[c(Field::Total, "1760.00", 0.95)], &rows);
        assert_eq!((t.net, t.tax), (Some(d("1500.00")), Some(d("260.00"))));
        assert_eq!(t.taxes.len(), 2);
    }

    #[test]
    fn a_net_and_tax_that_contradict_the_labelled_total_are_dropped_with_a_failed_check() {
        let t =
            solve(&[c(Field::Net, "100.00", 0.9), c(Field::Tax, "50.00", 0.9), c(Field::Total, "1210.00", 0.95)], &[]);
        assert_eq!(t.total, Some(d("1210.00")));
        assert_eq!((t.net, t.tax), (None, None));
        assert!(t.checks.iter().any(|c| c.name == "totals_add_up" && !c.ok));
        assert!(!t.warnings.is_empty());
    }

    #[test]
    fn a_missing_tax_is_derived_only_at_a_known_rate() {
        let t = solve(&[c(Field::Net, "100.00", 0.9), c(Field::Total, "121.00", 0.9)], &[]);
        assert_eq!(t.tax, Some(d("21.00")));
        let t = solve(&[c(Field::Net, "100.00", 0.9), c(Field::Total, "133.33", 0.9)], &[]);
        assert_eq!(t.tax, None);
        assert_eq!(t.net, None);
    }

    #[test]
    fn prepayments_explain_a_smaller_amount_due() {
        let t = solve(
            &[
                c(Field::Net, "624.90", 0.9),
                c(Field::Tax, "46.25", 0.9),
                c(Field::Total, "671.15", 0.95),
                c(Field::Prepaid, "-201.00", 0.85),
                c(Field::Due, "470.15", 0.9),
            ],
            &[],
        );
        assert_eq!(t.due, Some(d("470.15")));
        assert_eq!(t.prepaid, Some(d("201.00")));
    }

    #[test]
    fn credit_notes_add_up_in_negative() {
        let t = solve(
            &[c(Field::Net, "-218.48", 0.9), c(Field::Tax, "-14.99", 0.9), c(Field::Total, "-233.47", 0.95)],
            &[],
        );
        assert_eq!(t.total, Some(d("-233.47")));
        assert_eq!(t.due, Some(d("-233.47")));
    }

    #[test]
    fn tax_rows_are_recognised_by_their_arithmetic() {
        let layout = Layout::new(
            "IVA 21%      1.000,00     210,00\nLuftballon    19%   0,79 €   316,00 €\nUmsatzsteuer (S)   858,75   19   163,16\n",
        );
        let (_, rows) = collect(&layout, Some(Locale::Es));
        let got: Vec<(String, String, String)> =
            rows.iter().map(|r| (r.rate.to_string(), r.base.to_string(), r.amount.to_string())).collect();
        assert_eq!(
            got,
            vec![("21".into(), "1000.00".into(), "210.00".into()), ("19".into(), "858.75".into(), "163.16".into())]
        );
    }

    #[test]
    fn a_totals_header_row_reads_the_values_under_it() {
        let layout = Layout::new(
            "   TOTAL HT     TOTAL TVA     TOTAL TTC\nsome note\n     100,00          4,90        104,90\n",
        );
        let (cands, rows) = collect(&layout, Some(Locale::Fr));
        let t = solve(&cands, &rows);
        assert_eq!((t.net, t.tax, t.total), (Some(d("100.00")), Some(d("4.90")), Some(d("104.90"))));
    }
}
