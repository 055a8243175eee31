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
//!
//! The candidates are gathered in [`candidates`]; a till receipt's total must be backed up ([`receipt`]).

use super::labels::Field;
use super::layout::Layout;
use crate::extract::model::{Check, TaxLine};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;

mod candidates;
mod receipt;

use candidates::label_rate;
pub use candidates::{collect, unlabelled_totals};
pub use receipt::{after_cash_rounding, corroborate_receipt_total};

/// VAT rates in force in the EU (standard and reduced) plus Spain's, Switzerland's (2.6, 3.8, 8.1) and the
/// halves and wholes of India's GST (2.5 + 2.5 of 5, … 14 + 14 of 28). A tax that is not one of these times the
/// net is not trusted without a breakdown row to back it.
const VAT_RATES: &[&str] = &[
    "0", "2.1", "2.5", "2.6", "3", "3.8", "4", "5", "5.5", "6", "7", "8", "8.1", "8.5", "9", "10", "12", "13", "14",
    "16", "17", "18", "19", "20", "21", "22", "23", "24", "25", "27", "28",
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
    /// The VAT rate its label names (`IVA 21%`, `Cuota IVA 10%`): one of several per-rate quotas.
    pub rate: Option<Decimal>,
    /// Which share of a tax split between two authorities its label names: 0 for a whole tax, 1 for India's
    /// central GST (`CGST 9%`), 2 for the state's (`SGST 9%`, `UTGST 9%`). Two shares of one rate are two
    /// quotas, not one printed twice.
    pub share: u8,
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

/// The sum of per-rate quotas when the document prints one for each of two or more rates (and only one value
/// for each rate), with the weakest of their scores.
fn rated_sum(cands: &[Candidate]) -> Option<(Decimal, f32)> {
    let mut by_rate: Vec<((Decimal, u8), Decimal, f32)> = Vec::new();
    for c in cands.iter().filter(|c| c.field == Field::Tax) {
        let Some(rate) = c.rate else { continue };
        match by_rate.iter_mut().find(|(r, _, _)| *r == (rate, c.share)) {
            Some((_, v, s)) if *v == c.value => *s = s.max(c.score),
            Some(_) => return None,
            None => by_rate.push(((rate, c.share), c.value, c.score)),
        }
    }
    if by_rate.len() < 2 {
        return None;
    }
    let score = by_rate.iter().map(|(_, _, s)| *s).fold(1.0, f32::min);
    Some((by_rate.iter().map(|(_, v, _)| *v).sum(), score))
}

/// What the document says about its tax, against which a net and a tax are judged.
struct Evidence<'a> {
    rows: &'a [TaxRow],
    /// The rates the document prints in its tax labels and rows; empty when it prints none.
    rates: Vec<Decimal>,
    /// Per-rate quotas printed without their bases (`IVA 21%  574,96`), when there are two or more: (rate,
    /// share, quota), see `Candidate::share`.
    rated: Vec<(Decimal, u8, Decimal)>,
    /// OCR text: a misread digit is likelier than an invoice that does not add up.
    ocr: bool,
    /// A net (tax) is printed under a strong label: one computed from the others must not replace it.
    strong_net: bool,
    strong_tax: bool,
}

impl Evidence<'_> {
    fn new<'a>(cands: &[Candidate], rows: &'a [TaxRow], ocr: bool) -> Evidence<'a> {
        let mut rates: Vec<Decimal> = cands.iter().filter_map(|c| c.rate).chain(rows.iter().map(|r| r.rate)).collect();
        rates.sort();
        rates.dedup();
        let mut rated: Vec<(Decimal, u8, Decimal)> =
            cands.iter().filter_map(|c| Some((c.rate?, c.share, c.value))).collect();
        rated.sort();
        rated.dedup();
        if rated.len() < 2 || rated.windows(2).any(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1)) {
            rated.clear();
        }
        Evidence { rows, rates, rated, ocr, strong_net: false, strong_tax: false }
    }

    /// Does `tax` look like VAT on `net`: exactly the sum of the breakdown rows, or `net` at a rate the page
    /// prints (any EU rate when it prints none), or the per-rate quotas whose bases add up to `net`?
    fn plausible(&self, net: Decimal, tax: Decimal) -> bool {
        if !self.rows.is_empty() && close(self.rows.iter().map(|r| r.amount).sum(), tax) {
            return true;
        }
        let hundred = Decimal::from(100);
        let rates = if self.rates.is_empty() { vat_rates() } else { self.rates.clone() };
        if rates.iter().any(|r| close((net * r / hundred).round_dp(2), tax)) {
            return true;
        }
        self.quotas_explain(net, tax)
    }

    /// The per-rate quotas sum to `tax`, and the bases they imply (quota ÷ rate, each quota rounded to the
    /// cent) sum to `net` within that rounding.
    fn quotas_explain(&self, net: Decimal, tax: Decimal) -> bool {
        if self.rated.is_empty() || !close(self.rated.iter().map(|(_, _, q)| *q).sum(), tax) {
            return false;
        }
        let hundred = Decimal::from(100);
        // The two shares of a split tax are levied on one base: count it once, from the central share.
        let whole = self.rated.iter().filter(|(_, share, _)| *share != 2);
        let bases: Decimal = whole.clone().map(|(r, _, q)| q * hundred / r).sum();
        let slack: Decimal = whole.map(|(r, _, _)| Decimal::new(5, 1) / r).sum::<Decimal>() + tolerance();
        (bases - net).abs() <= slack
    }

    /// `tax` is `net` at one printed rate to the cent (or the quotas explain it): strong enough to overrule a
    /// total that OCR misread.
    fn exact(&self, net: Decimal, tax: Decimal) -> bool {
        let hundred = Decimal::from(100);
        let by_rate = self.rates.len() == 1
            && self.rates.iter().any(|r| ((net * r / hundred).round_dp(2) - tax).abs() <= Decimal::new(1, 2));
        !net.is_zero() && (by_rate || self.quotas_explain(net, tax))
    }
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
    solve_reading(cands, rows, &[], false)
}

/// Pick the amounts of a page: `solve` (or `solve_ocr`), knowing the VAT rates its tax labels print even where
/// their amounts could not be read (`Cuota IVA 21%`), so that a computed tax must be at one of them.
pub fn solve_page(layout: &Layout, cands: &[Candidate], rows: &[TaxRow], ocr: bool) -> Totals {
    solve_reading(cands, rows, &printed_rates(layout), ocr)
}

/// The VAT rates named in the tax labels of a page.
fn printed_rates(layout: &Layout) -> Vec<Decimal> {
    let mut rates: Vec<Decimal> = layout
        .lines
        .iter()
        .flat_map(|line| {
            line.labels().iter().filter(|h| h.field == Field::Tax).filter_map(|h| {
                let label = line.segment_at(h.start).map_or(&line.text[h.start..h.end], |s| s.text.as_str());
                label_rate(label)
            })
        })
        .collect();
    rates.sort();
    rates.dedup();
    rates
}

/// Pick the amounts of OCR text. One thing differs: when net and tax agree with each other at the rate the
/// page prints but not with the printed total, the total is the misread one (`6.781,92` for `6.781,02`), so
/// it is computed, and a warning says so.
pub fn solve_ocr(cands: &[Candidate], rows: &[TaxRow]) -> Totals {
    solve_reading(cands, rows, &[], true)
}

fn solve_reading(cands: &[Candidate], rows: &[TaxRow], printed_rates: &[Decimal], ocr: bool) -> Totals {
    let mut nets = pool(cands, Field::Net);
    let mut taxes = pool(cands, Field::Tax);
    let mut totals = pool(cands, Field::Total);
    let dues = pool(cands, Field::Due);
    let withholding_label = cands.iter().any(|c| c.field == Field::Withholding);
    // IRPF is at most a fifth of the base (19% for capital income, 15% and 7% for professionals): a larger
    // "withholding" is an amount from another column.
    let largest_net = nets.iter().map(|(v, _)| v.abs()).max();
    let withholdings: Vec<(Decimal, f32)> = pool(cands, Field::Withholding)
        .into_iter()
        .map(|(v, s)| (v.abs(), s))
        .filter(|(w, _)| largest_net.is_none_or(|n| *w * Decimal::from(4) <= n))
        .collect();
    let prepaids: Vec<(Decimal, f32)> = pool(cands, Field::Prepaid).into_iter().map(|(v, s)| (v.abs(), s)).collect();
    if !rows.is_empty() {
        add_to_pool(&mut nets, rows.iter().map(|r| r.base).sum(), 0.7);
        add_to_pool(&mut taxes, rows.iter().map(|r| r.amount).sum(), 0.7);
    }
    // `IVA 21%  574,96` and `IVA 4%  1,52` on their own rows, without their bases: the tax is their sum.
    if let Some((sum, score)) = rated_sum(cands) {
        add_to_pool(&mut taxes, sum, score);
    }
    // A document without a "total" label may still print the grand total as "amount due" — unless it withholds
    // (IRPF): then what it asks for is less than the total.
    for &(v, s) in dues.iter().filter(|_| !withholding_label) {
        if !totals.iter().any(|(t, _)| *t == v) {
            totals.push((v, s * 0.8));
        }
    }

    let mut evidence = Evidence::new(cands, rows, ocr);
    evidence.rates.extend(printed_rates);
    evidence.rates.sort();
    evidence.rates.dedup();
    evidence.strong_net = nets.iter().any(|(_, s)| *s >= 0.8);
    evidence.strong_tax = taxes.iter().any(|(_, s)| *s >= 0.8);
    let best = best_choice(&nets, &taxes, &totals, &withholdings, &evidence);
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
    if let (true, Some(total)) = (choice.derived[2], choice.total) {
        if let Some((printed, _)) = pool(cands, Field::Total).into_iter().find(|(v, sc)| *v != total && *sc >= 0.5) {
            out.warnings.push(format!(
                "the total printed reads {printed}, but net and tax add up to {total}; the scan was probably misread"
            ));
        }
    }
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
    evidence: &Evidence,
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
                            if close(nv + tv - wv, gv) && evidence.plausible(nv, tv) {
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
                        if !evidence.strong_tax
                            && same_sign(&[nv, gv])
                            && nv.abs() <= gv.abs()
                            && evidence.plausible(nv, tv)
                        {
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
                        if !evidence.strong_net
                            && same_sign(&[tv, gv])
                            && tv.abs() < gv.abs()
                            && evidence.plausible(nv, tv)
                        {
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
                    // OCR misread the total: net and tax agree to the cent at the printed rate, so the total is
                    // their sum. Only when the page does print a total (one that failed to match).
                    (Some((nv, ns)), Some((tv, ts)), None)
                        if evidence.ocr
                            && totals.iter().any(|(_, s)| *s >= 0.5)
                            && same_sign(&[nv, tv])
                            && evidence.exact(nv, tv) =>
                    {
                        consider(Choice {
                            net: Some(nv),
                            tax: Some(tv),
                            total: Some(nv + tv),
                            derived: [false, false, true],
                            score: ns + ts + 0.3,
                            consistent: true,
                            ..Choice::default()
                        });
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
    // But not one of the other sign: that is a misread (OCR's `77177,36` for `-7177,36` on a credit note), and
    // a wrong amount is worse than none. A larger one is real: open payments carried over (`Offene Zahlungen`).
    let plausible = |d: &Decimal| same_sign(&[total, *d]);
    if let Some(&(d, ds)) = dues.first().filter(|(d, ds)| *ds >= 0.85 && *d != total && plausible(d)) {
        out.due = Some(d);
        out.confidence.insert("amount_due", 0.6_f32.min(ds));
        out.warnings.push(format!("amount due {d} is not the total {total} less withholdings or prepayments"));
        return;
    }
    if dues.first().is_some_and(|(d, ds)| *ds >= 0.85 && *d != total) {
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
    use crate::extract::rules::Locale;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn c(field: Field, value: &str, score: f32) -> Candidate {
        Candidate { field, value: d(value), score, line: 0, rate: None, share: 0 }
    }

    fn receipt_total(text: &str) -> Option<Decimal> {
        let layout = Layout::new(text);
        let hint = Some(Locale::En);
        let (cands, rows) = collect(&layout, hint);
        let mut t = solve(&cands, &rows);
        corroborate_receipt_total(&layout, &cands, &mut t, hint);
        t.total
    }

    #[test]
    fn a_receipt_total_needs_the_items_net_and_tax_or_the_cash_to_agree() {
        // The items add up.
        let items = "KEDAI MAJU SDN BHD\nTeh tarik         3.50\nRoti canai        4.20\nTotal             7.70\n";
        assert_eq!(receipt_total(items), Some(d("7.70")));
        // Cash tendered less change, with a rounding line that is never the total.
        let cash = "SHOP\nItem A 2 x 3.10      6.20\nTotal             12.52\nRounding          -0.02\n\
                    Total rounded     12.50\nCash              20.00\nChange             7.50\n";
        assert_eq!(receipt_total(cash), Some(d("12.50")));
        // The tricky case: `Total` beside the cash tendered, nothing agrees with it: no total rather than 50.00.
        let tricky = "CAFE LUNA\nCoffee             2.80\nCake               3.90\nTotal  Cash       50.00\n\
                      Change            43.30\n";
        assert_eq!(receipt_total(tricky), None);
        let unsupported = "CAFE LUNA\nCoffee             2.80\nCake               3.90\nTotal              9.99\n";
        assert_eq!(receipt_total(unsupported), None);
        // A strong label vouches for itself.
        let strong = "CAFE LUNA\nCoffee             2.80\nGrand total        9.99\n";
        assert_eq!(receipt_total(strong), Some(d("9.99")));
        // Tendered and change amounts never become the total.
        let change_only = "CAFE LUNA\nTendered          20.00\nChange             3.00\n";
        assert_eq!(receipt_total(change_only), None);
    }

    #[test]
    fn a_net_worked_out_from_a_rounded_total_is_not_kept_on_a_slip() {
        // OCR lost the net's label; the solver took the total after rounding and worked the net out from it.
        let slip = "SHARMA TRADERS\nTotal xcl GST              307.05\nCGST 2.5%                  7.95\n\
                    SGST 2.5%                  7.95\nRounding                   0.05\nTOTAL DUE                323.00\n";
        let kept = |text: &str, net: &str| {
            let layout = Layout::new(text);
            let (cands, _) = collect(&layout, Some(Locale::En));
            let mut t =
                Totals { net: Some(d(net)), tax: Some(d("15.90")), total: Some(d("323.00")), ..Totals::default() };
            after_cash_rounding(&layout, &cands, &mut t, Some(Locale::En));
            (t.net, t.tax)
        };
        // The tax is the sum of the two quotas printed: it stays.
        assert_eq!(kept(slip, "307.10"), (None, Some(d("15.90"))));
        // Printed amounts stay; so does everything on a slip without a rounding line.
        assert_eq!(kept(slip, "307.05"), (Some(d("307.05")), Some(d("15.90"))));
        assert_eq!(kept(&slip.replace("Rounding", "Discount"), "307.10"), (Some(d("307.10")), Some(d("15.90"))));
    }

    #[test]
    fn the_central_and_state_shares_of_indian_gst_are_two_quotas_on_one_base() {
        let slip = "SHARMA TRADERS PVT LTD\nTotal excl. GST          307.05\nCGST 9%                    0.38\n\
                    SGST 9%                    0.38\nCGST 2.5%                  7.57\nSGST 2.5%                  7.57\n\
                    Total (incl. GST)        322.95\n";
        let layout = Layout::new(slip);
        let (cands, rows) = collect(&layout, Some(Locale::En));
        let t = solve(&cands, &rows);
        assert_eq!((t.net, t.tax, t.total), (Some(d("307.05")), Some(d("15.90")), Some(d("322.95"))));
        // The same quota printed twice under one label is one quota.
        let twice =
            "ACME LTD\nNet                    307.05\nVAT 5%                  15.35\nVAT 5%                  15.35\n\
                     Total                  322.40\n";
        let layout = Layout::new(twice);
        let (cands, rows) = collect(&layout, Some(Locale::En));
        let t = solve(&cands, &rows);
        assert_eq!((t.net, t.tax, t.total), (Some(d("307.05")), Some(d("15.35")), Some(d("322.40"))));
    }

    #[test]
    fn a_till_slips_total_is_what_is_paid_after_its_cash_rounding_line() {
        // OCR lost the net's label (`Totaal exct.. btw`), so the solver took the total before rounding.
        let paid = |text: &str| {
            let layout = Layout::new(text);
            let mut t = Totals { total: Some(d("3.44")), due: Some(d("3.45")), ..Totals::default() };
            after_cash_rounding(&layout, &[], &mut t, Some(Locale::Nl));
            t.total
        };
        let slip = "BAKKERIJ DE MOLEN\nTandpasta                2,29\nTotaal exct.. btw        3,16\nBTW 9%                   0,28\n\
                    TOTAL                    3,44\nAfronding                {r}\nTE BETALEN             € 3,45\n\
                    Contant                  5,00\nWisselgeld               1,55\n";
        assert_eq!(paid(&slip.replace("{r}", "0,01")), Some(d("3.45")));
        // The rounding amount specked or illegible: the line itself is enough.
        assert_eq!(paid(&slip.replace("{r}", "„0,01")), Some(d("3.45")));
        assert_eq!(paid(&slip.replace("{r}", "O,Ol")), Some(d("3.45")));
        // A legible rounding amount that is not the difference: nothing is changed.
        assert_eq!(paid(&slip.replace("{r}", "0,04")), Some(d("3.44")));
        // Without a rounding line an amount due that differs is no rounded total.
        assert_eq!(paid(&slip.replace("Afronding                {r}\n", "")), Some(d("3.44")));
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
    fn a_total_misread_by_ocr_is_recomputed_from_net_and_tax_at_the_printed_rate() {
        let mut tax = c(Field::Tax, "1176.87", 0.7);
        tax.rate = Some(d("21"));
        let cands = [c(Field::Net, "5604.15", 0.9), tax, c(Field::Total, "6781.92", 0.95)];
        let t = solve_ocr(&cands, &[]);
        assert_eq!(
            (t.net, t.tax, t.total, t.due),
            (Some(d("5604.15")), Some(d("1176.87")), Some(d("6781.02")), Some(d("6781.02")))
        );
        assert!(!t.warnings.is_empty());
        // A text layer is what the supplier printed: there the total stands and net and tax are dropped.
        let t = solve(&cands, &[]);
        assert_eq!((t.net, t.total), (None, Some(d("6781.92"))));
    }

    #[test]
    fn a_derived_tax_must_be_at_a_rate_the_page_prints() {
        let mut tax = c(Field::Tax, "15004.31", 0.85);
        tax.rate = Some(d("21"));
        // 81451.96 - 71449.09 = 10002.87 is 14% of the net: an EU rate, but not the 21% this page prints.
        let t = solve(&[c(Field::Net, "71449.09", 0.8), tax, c(Field::Due, "81451.96", 0.9)], &[]);
        assert_eq!(t.tax, None);
    }

    #[test]
    fn an_amount_due_of_the_other_sign_than_the_total_is_left_out() {
        let due = |total: &str, due: &str| {
            solve(
                &[
                    c(Field::Net, "-5931.70", 0.9),
                    c(Field::Tax, "-1245.66", 0.9),
                    c(Field::Total, total, 0.95),
                    c(Field::Due, due, 0.9),
                ],
                &[],
            )
            .due
        };
        // A credit note's `Net à payer -7 177,36` whose minus OCR read as a 7.
        assert_eq!(due("-7177.36", "77177.36"), None);
        // One that nothing explains is still what the supplier asks for: smaller, or larger with open payments
        // carried over.
        assert_eq!(due("-7177.36", "-7000.00"), Some(d("-7000.00")));
        assert_eq!(due("-7177.36", "-14354.72"), Some(d("-14354.72")));
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
    fn quotas_printed_per_rate_without_their_bases_add_up_to_the_tax() {
        let layout = Layout::new(
            "Base imponible        -2.775,92 €\nIVA 21%                 -574,96 €\nIVA 4%                    -1,52 €\nTotal factura         -3.352,40 €\n",
        );
        let (cands, rows) = collect(&layout, Some(Locale::Es));
        let t = solve(&cands, &rows);
        assert_eq!((t.net, t.tax, t.total), (Some(d("-2775.92")), Some(d("-576.48")), Some(d("-3352.40"))));
        assert!(t.checks.iter().any(|c| c.name == "totals_add_up" && c.ok));
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
