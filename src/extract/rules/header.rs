//! Invoice number, issue date and due date: a labelled value to the right of its label or under it, or the
//! title line `Rechnung Nr. 42 vom 31.01.2014` / `Facture FA-2017-0010`.

use super::dates::{find_dates, DateMatch};
use super::labels::{Field, LabelHit};
use super::layout::Layout;
use super::{fold_mapped, Locale};
use chrono::NaiveDate;
use regex_lite::Regex;
use std::sync::LazyLock;

/// A value with how sure we are of it (0..1) and the line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    pub value: T,
    pub confidence: f32,
    pub line: usize,
}

/// The invoice number, issue date and due date of a document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    pub number: Option<Found<String>>,
    pub issue_date: Option<Found<NaiveDate>>,
    pub due_date: Option<Found<NaiveDate>>,
}

static ID_RE: LazyLock<Regex> = LazyLock::new(|| super::regex(r"^[A-Za-z0-9][A-Za-z0-9\-/._]*"));
/// On folded segments (lower case, no accents), so without `(?i)`; offsets are mapped back (`fold_mapped`).
static TITLE_RE: LazyLock<Regex> = LazyLock::new(|| {
    super::regex(
        r"^(?:factura(?:\s+(?:rectificativa|simplificada|de\s+abono|proforma))?|abono|(?:tax\s+)?invoice|credit\s+note|[a-zß]*rechnung|gutschrift|rechnungskorrektur|facture(?:\s+rectificative)?|avoir|factuur|creditnota|fattura|fatura)(?:\s*\([^)]{0,40}\))?\s*[:#]?\s+",
    )
});
/// A title, up to six words and a number marker (`Facture du mois d'octobre n°`). The words are plain words: a
/// digit or a colon among them ends the match, so `Invoice for order 123 No. 4` is not read past the order.
static TITLE_WORDS_NUMBER_RE: LazyLock<Regex> = LazyLock::new(|| {
    super::regex(
        r"^(?:factura|(?:tax\s+)?invoice|credit\s+note|[a-zß]*rechnung|gutschrift|facture|avoir|factuur|creditnota|fattura|fatura|nota\s+d[ie]\s+cr[eé]dito)(?:\s+[a-zß'’]+){1,6}?\s+(?:n\.?\s?[º°ªo]\.?|nr\.?|no\.?|num\.?|n[uú]mero|number|#)\s*:?\s+",
    )
});
/// Words after which a number marker numbers something other than the invoice: `Beitragsrechnung zur
/// Kraftfahrtversicherung Nr.` is the policy's number, `Invoice for order No.` the order's. Folded, matched
/// inside words so compounds count (`Kraftfahrtversicherung`, `Bestellung`).
fn names_another_thing(title: &str) -> bool {
    const OTHER: &[&str] = &[
        "order",
        "purchase",
        "contract",
        "policy",
        "account",
        "customer",
        "client",
        "delivery",
        "versicherung",
        "vertrag",
        "auftrag",
        "bestell",
        "kunde",
        "liefer",
        "commande",
        "contrat",
        "livraison",
        "pedido",
        "contrato",
        "albaran",
        "poliza",
        "ordine",
        "polizza",
        "encomenda",
        "apolice",
        "bestelling",
        "klant",
        "polis",
        "opdracht",
        "mandat",
        "mandate",
        "project",
        "projekt",
        "proyecto",
        "projet",
        "progetto",
        "projecto",
        "offer",
        "angebot",
    ];
    let words: Vec<&str> = title.split_whitespace().collect();
    words.iter().skip(1).take(words.len().saturating_sub(2)).any(|w| OTHER.iter().any(|o| w.contains(o)))
}

static DATE_LINK_RE: LazyLock<Regex> =
    LazyLock::new(|| super::regex(r"(?i)\b(?:vom|von|du|del|de|of|dated|issued(?:\s+(?:at|on))?|from|le)\s*$"));
/// Words one of which every `TITLE_RE` match contains: the cheap test before the regex.
const TITLE_WORDS: &[&str] = &[
    "factura",
    "abono",
    "invoice",
    "credit",
    "rechnung",
    "gutschrift",
    "facture",
    "avoir",
    "factuur",
    "creditnota",
    "fattura",
    "fatura",
];
/// Words that say the invoice number next to them is another invoice's (a corrective invoice names the one it
/// corrects).
const REFERENCE_WORDS: &[&str] = &[
    "rectificad",
    "original",
    "corrige",
    "liee",
    "associee",
    "related",
    "referenced",
    "ursprung",
    "bezug",
    "storno",
    "anterior",
    "gutgeschrieben",
    "credited",
];

/// An invoice number: letters, digits and `-/._`, at least one digit, not a date and not an amount.
pub fn parse_invoice_number(s: &str) -> Option<String> {
    let s = s.trim_start_matches([' ', ':', '#', '.', '-', '–']).trim_start();
    let s = s.strip_prefix("Nr.").or_else(|| s.strip_prefix("No.")).unwrap_or(s).trim_start_matches([' ', ':']);
    let token = s.split_whitespace().next().unwrap_or("");
    let m = ID_RE.find(s)?;
    let mut id = m.as_str().trim_end_matches(['.', ',', '-', '/']).to_string();
    // OCR sets a hyphen or slash apart: `2024 - 1682` is `2024-1682`.
    static SPLIT: LazyLock<Regex> = LazyLock::new(|| super::regex(r"^ ([-/]) ([A-Za-z0-9]{1,12})(?:\s|$)"));
    if let Some(c) = SPLIT.captures(&s[m.end()..]).filter(|_| m.as_str() == id) {
        let joined = format!("{id}{}{}", &c[1], &c[2]);
        if c[2].chars().any(|ch| ch.is_ascii_digit()) && find_dates(&joined, None).is_empty() {
            id = joined;
        }
    }
    // Or after it: `T26- 03882`.
    static DANGLING: LazyLock<Regex> = LazyLock::new(|| super::regex(r"^ ([A-Za-z0-9]{1,12})(?:\s|$)"));
    let dangling = m.as_str().strip_prefix(id.as_str()).is_some_and(|cut| cut == "-" || cut == "/");
    if let Some(c) = DANGLING.captures(&s[m.end()..]).filter(|_| dangling) {
        let joined = format!("{}{}", m.as_str(), &c[1]);
        if c[1].chars().any(|ch| ch.is_ascii_digit()) && find_dates(&joined, None).is_empty() {
            id = joined;
        }
    }
    // A series and its number set apart: `A 013394`. Only capital letters before one space and digits.
    // Portuguese series run `FT A/7610`: the document code, the series and its number.
    static SERIES: LazyLock<Regex> = LazyLock::new(|| super::regex(r"^ ((?:[A-Z0-9]{1,4}/)?[0-9]{3,12})(?:\s|$)"));
    if id.len() <= 4 && id.chars().all(|c| c.is_ascii_uppercase()) && m.as_str() == id {
        if let Some(c) = SERIES.captures(&s[m.end()..]) {
            id = format!("{id} {}", &c[1]);
        }
    }
    let id = id.as_str();
    let digits = id.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || id.len() > 30 || !find_dates(id, None).is_empty() {
        return None;
    }
    static AMOUNT: LazyLock<Regex> = LazyLock::new(|| super::regex(r"^[0-9]{1,3}(?:[.,][0-9]{3})*[.,][0-9]{2}$"));
    if AMOUNT.is_match(id) || AMOUNT.is_match(token.trim_end_matches(['€', '.'])) {
        return None;
    }
    Some(id.to_string())
}

fn is_reference(text_before: &str) -> bool {
    let folded = super::fold(text_before);
    REFERENCE_WORDS.iter().any(|w| folded.contains(w))
}

/// Read the header fields. `hint` decides `03/04/2025` (see `dates`).
pub fn read_header(layout: &Layout, hint: Option<Locale>) -> Header {
    let mut numbers: Vec<Found<String>> = Vec::new();
    let mut issue: Vec<Found<NaiveDate>> = Vec::new();
    let mut due: Vec<Found<NaiveDate>> = Vec::new();
    let n_lines = layout.len().max(1);
    for (i, line) in layout.lines.iter().enumerate() {
        if line.is_blank() {
            continue;
        }
        // Titles and labels near the top are the document's own; lower down they are more often references.
        let position = if i * 2 < n_lines { 1.0 } else { 0.9 };
        let hits = line.labels();
        for (k, hit) in hits.iter().enumerate() {
            let to = hits.get(k + 1).map_or(line.text.len(), |h| h.start);
            match hit.field {
                Field::InvoiceNumber if !is_reference(&line.text[..hit.end]) => {
                    if let Some((value, at, below)) = number_near(layout, i, hit, to) {
                        let factor = if below { 0.9 } else { 1.0 };
                        numbers.push(Found { value, confidence: hit.strength * factor * position, line: at });
                        if let Some(d) = date_after_number(layout, at, hint) {
                            issue.push(Found { value: d, confidence: 0.9, line: at });
                        }
                    }
                }
                // `Factura rectificada nº F-1 de fecha 20/10/2025` dates the corrected invoice, not this one.
                Field::IssueDate if is_reference(&line.text[..hit.start]) => {}
                // A bare `Date` after another word of its own segment names another date (`Training Date`,
                // `Event Date`); the issue date's own labels are stronger rows of the table.
                Field::IssueDate
                    if hit.strength <= 0.6
                        && line
                            .segment_at(hit.start)
                            .is_some_and(|s| line.text[s.byte_start..hit.start].chars().any(char::is_alphabetic)) => {}
                Field::IssueDate | Field::DueDate => {
                    if let Some((d, at, below)) = date_near(layout, i, hit, to, hint) {
                        // `02-09-2026` is ambiguous only in English: everyone else writes the day first.
                        let english = matches!(hint, None | Some(Locale::En | Locale::EnUs));
                        let ambiguous = if d.ambiguous && english { 0.9 } else { 1.0 };
                        let factor = if below { 0.9 } else { 1.0 } * ambiguous;
                        let found = Found { value: d.date, confidence: hit.strength * factor, line: at };
                        if hit.field == Field::IssueDate {
                            issue.push(found)
                        } else {
                            due.push(found)
                        }
                    }
                }
                _ => {}
            }
        }
        if i * 2 < n_lines && !hits.iter().any(|h| h.field == Field::InvoiceNumber) {
            for (hit, strength) in bare_number_labels(line) {
                let to = hits.iter().find(|h| h.start >= hit.end).map_or(line.text.len(), |h| h.start);
                if let Some((value, at, below)) = number_near(layout, i, &hit, to) {
                    // After a bare `Nº` only a value that cannot be an item's position or a page number (`1`, `2`).
                    if value.chars().count() < 3 {
                        continue;
                    }
                    let factor = if below { 0.9 } else { 1.0 };
                    numbers.push(Found { value, confidence: strength * factor, line: at });
                    if let Some(d) = date_after_number(layout, at, hint) {
                        issue.push(Found { value: d, confidence: 0.8, line: at });
                    }
                }
            }
        }
        for (k, seg) in line.segments.iter().enumerate() {
            let (folded, map) = fold_mapped(&seg.text);
            if !TITLE_WORDS.iter().any(|w| folded.contains(w)) {
                continue;
            }
            // The title alone in its cell and the number in the next (`RECHNUNG        RE-2025-0042`), on a line
            // with no label: only a value that parses whole as a number.
            if TITLE_RE.find(&format!("{} ", folded.trim_end())).is_some_and(|m| m.end() > folded.trim_end().len())
                && hits.is_empty()
            {
                let next = line.segments.get(k + 1).map(|n| n.text.trim());
                if let Some(value) = next.and_then(|n| parse_invoice_number(n).filter(|v| v == n)) {
                    numbers.push(Found { value, confidence: 0.75 * position, line: i });
                    continue;
                }
            }
            // `Rechnung des Monats Oktober Nr. 4711`, `Invoice for consulting services No. 12`: a few words
            // between the title and its number marker.
            let Some((m, confidence)) = TITLE_RE
                .find(&folded)
                .filter(|m| parse_invoice_number(&seg.text[map[m.end()]..]).is_some())
                .map(|m| (m, 0.85))
                .or_else(|| {
                    TITLE_WORDS_NUMBER_RE.find(&folded).filter(|m| !names_another_thing(m.as_str())).map(|m| (m, 0.8))
                })
            else {
                continue;
            };
            let title_end = map[m.end()];
            if hits.iter().any(|h| h.field == Field::InvoiceNumber && h.start < seg.byte_end && h.end > seg.byte_start)
            {
                continue;
            }
            if let Some(value) = parse_invoice_number(&seg.text[title_end..]) {
                numbers.push(Found { value, confidence: confidence * position, line: i });
                if let Some(d) = date_after_number(layout, i, hint) {
                    issue.push(Found { value: d, confidence: 0.85, line: i });
                }
            }
        }
    }
    if issue.is_empty() {
        issue.extend(title_date(layout, hint));
    }
    if issue.is_empty() {
        issue.extend(lone_date(layout, hint));
    }
    Header { number: best(numbers), issue_date: best(issue), due_date: best(due) }
}

/// Number labels that do not say "invoice": `Nº`, `N.º`, `Núm.`, `Número`, `No.`, `Nr.`, `#`, alone at the
/// start of a segment or after a word or two that name the document itself (`Cash Inv No.`, `Receipt # No.`,
/// `Ticket Nº`, `Beleg Nr.`). Words naming anything else (`Order No.`, `VAT No.`, `Tel. No.`, `Kunden-Nr.`)
/// never get here, because only the words in `DOCUMENT_WORDS` may stand before the marker: a wrong invoice
/// number is worse than none. A bare marker is trusted less than one after a document word.
fn bare_number_labels(line: &super::layout::Line) -> Vec<(LabelHit, f32)> {
    static BARE: LazyLock<Regex> = LazyLock::new(|| {
        super::regex(
            r"^((?:[a-z]+\.?(?:\s+|-)){0,2}?)(?:n\.?\s?[º°ªo?]\.?|n[º°ª]\.?|n\.2|no\.|nr\.?|num\.|numero|number|#|n\.)(?:\s*(?:no\.|nr\.?|#))?\s*:?(?:\s|$)",
        )
    });
    const DOCUMENT_WORDS: &[&str] = &[
        "cash",
        "inv",
        "invoice",
        "bill",
        "receipt",
        "statement",
        "sales",
        "tax",
        "doc",
        "document",
        "ticket",
        "tiquet",
        "factura",
        "fra",
        "fact",
        "simplificada",
        "beleg",
        "bon",
        "kassenbon",
        "quittung",
        "recu",
        "facture",
        "fattura",
        "fatura",
        "factuur",
        "nota",
        "serie",
        "recibo",
        "bono",
    ];
    let document_words = |text: &str| -> Vec<String> {
        text.split(|ch: char| ch.is_whitespace() || ch == '-')
            .filter(|w| !w.is_empty())
            .map(|w| w.trim_end_matches('.').to_string())
            .collect()
    };
    let mut out = Vec::new();
    for (k, seg) in line.segments.iter().enumerate() {
        let (folded, map) = fold_mapped(&seg.text);
        let Some(c) = BARE.captures(&folded) else {
            continue;
        };
        let mut words = document_words(&c[1]);
        // OCR sets `Doc.  n. 0011-009858` a column apart: a cell of document words alone just before the marker
        // is its first words.
        if words.is_empty() {
            if let Some(prev) = k.checked_sub(1).map(|p| &line.segments[p]) {
                let before = document_words(&super::fold(&prev.text));
                if (1..=2).contains(&before.len()) && before.iter().all(|w| DOCUMENT_WORDS.contains(&w.as_str())) {
                    words = before;
                }
            }
        }
        // A lone `n.` is an abbreviation of anything; only after a document word is it the number's marker.
        if !words.iter().all(|w| DOCUMENT_WORDS.contains(&w.as_str()))
            || (words.is_empty() && folded.starts_with("n. "))
        {
            continue;
        }
        let m = c.get(0).map_or(0, |m| m.end());
        let marker = folded[..m].trim_end();
        // OCR reads the `º` of `n.º` as `?` or `2`; a `2` is only the marker when the number follows it.
        if marker.ends_with("n.2") && folded[m..].trim().is_empty() {
            continue;
        }
        let end = seg.byte_start + map[marker.len()];
        let strength = if words.is_empty() { 0.75 } else { 0.85 };
        out.push((LabelHit { field: Field::InvoiceNumber, start: seg.byte_start, end, strength }, strength));
    }
    out
}

/// A letter-style invoice: a title such as `Beitragsrechnung` alone with a date in another column of its line.
fn title_date(layout: &Layout, hint: Option<Locale>) -> Option<Found<NaiveDate>> {
    static WORD_TITLE: LazyLock<Regex> =
        LazyLock::new(|| super::regex(r"^(?:factura|invoice|[a-zß]*rechnung|facture|factuur)$"));
    let top = layout.len() / 2 + 1;
    for (i, line) in layout.lines.iter().enumerate().take(top) {
        let Some(first) = line.segments.first() else {
            continue;
        };
        if line.segments.len() != 2 || !WORD_TITLE.is_match(&super::fold(first.text.trim())) {
            continue;
        }
        if let Some(d) = crate::extract::rules::dates::parse_date(&line.segments[1].text, hint) {
            return Some(Found { value: d, confidence: 0.7, line: i });
        }
    }
    None
}

/// A till slip prints its date without a label, at the top, often with the time (`18.05.2026 20:02`). With no
/// labelled date anywhere, a date in the top third of the page is the issue date, but only when it is the only
/// date the page prints (an unlabelled date among others could be any of them) and no label stands on its line.
fn lone_date(layout: &Layout, hint: Option<Locale>) -> Option<Found<NaiveDate>> {
    let mut seen: Vec<(NaiveDate, usize)> = Vec::new();
    for (i, line) in layout.lines.iter().enumerate() {
        for d in find_dates(&line.text, hint) {
            if !seen.iter().any(|(s, _)| *s == d.date) {
                seen.push((d.date, i));
            }
        }
    }
    let [(date, i)] = seen[..] else { return None };
    // Nor may a label above have its value to come: `Training Date` over `9/15/2020` names another date. A
    // label with its value beside it (`USt.-ID: DE940336219` over the slip's date) names nothing below.
    let unlabelled = |j: usize| layout.lines[j].labels().is_empty();
    let nothing_awaited = |j: usize| {
        let line = &layout.lines[j];
        line.labels().iter().all(|h| !line.text[h.end..].trim_matches([' ', ':', '.', '#']).is_empty())
    };
    let top = i * 3 <= layout.len() || i < 10;
    (top && unlabelled(i) && i.checked_sub(1).is_none_or(nothing_awaited)).then_some(Found {
        value: date,
        confidence: 0.7,
        line: i,
    })
}

/// The number to the right of its label, or under it when nothing is to the right.
fn number_near(layout: &Layout, i: usize, hit: &LabelHit, to: usize) -> Option<(String, usize, bool)> {
    let line = &layout.lines[i];
    let right = &line.text[hit.end..to];
    if let Some(v) = parse_invoice_number(right) {
        return Some((v, i, false));
    }
    // Something else to the right in the label's own segment: the label is part of a sentence.
    if line.segment_at(hit.start).is_some_and(|s| {
        !line.text.get(hit.end..s.byte_end).unwrap_or("").trim_matches([' ', ':', '#', '.']).is_empty()
    }) {
        return None;
    }
    let (from, col_to) = layout.column_of(i, line.col(hit.start), line.col(hit.end));
    let under = layout.below(i, from, col_to, 1).into_iter().find_map(|(j, seg)| {
        // A value after a label of its own row (`Customer No.:   10026`) is that label's.
        if layout.lines[j].segments.iter().any(|s| s.start < seg.start && s.text.trim_end().ends_with(':')) {
            return None;
        }
        let v = parse_invoice_number(&seg.text)?;
        // One word under the label, or a series and its number that make up the whole cell (`A 013394`).
        (seg.text.split_whitespace().count() == 1 || v == seg.text.trim()).then_some((v, j, true))
    });
    under.or_else(|| number_below_right(layout, i, line.col(hit.end)))
}

/// A stack of labels beside a stack of values whose lines do not meet (`Invoice #:` / `Date of issue:` on the
/// left, `INV-07068` / `14 January 2025` a line or two lower on the right): the first cell right of the label
/// in the next two lines, when it is a number whole, alone on its line, and nothing sits right of the label on its
/// own line.
fn number_below_right(layout: &Layout, i: usize, label_end: usize) -> Option<(String, usize, bool)> {
    for j in i + 1..(i + 3).min(layout.len()) {
        let Some(seg) = layout.lines[j].segments.iter().find(|s| s.start >= label_end && s.start <= label_end + 30)
        else {
            continue;
        };
        // A cell on a row of its own label (`Customer No.:     10026`) is that label's value.
        if layout.lines[j].segments.iter().any(|s| s.start < label_end) {
            return None;
        }
        let text = seg.text.trim();
        return parse_invoice_number(text).filter(|v| v == text).map(|v| (v, j, true));
    }
    None
}

/// `… Nr. 471102 vom 05.03.2018`, or `vom` at the end of the line and the date at the start of the next.
fn date_after_number(layout: &Layout, i: usize, hint: Option<Locale>) -> Option<NaiveDate> {
    let text = &layout.lines[i].text;
    for d in find_dates(text, hint) {
        if DATE_LINK_RE.is_match(text[..d.start].trim_end()) {
            return Some(d.date);
        }
    }
    if DATE_LINK_RE.is_match(text.trim_end()) {
        let next = layout.lines.get(i + 1)?;
        let d = find_dates(&next.text, hint).into_iter().next()?;
        return next.text[..d.start].trim().is_empty().then_some(d.date);
    }
    let next = layout.lines.get(i + 1)?;
    let t = next.text.trim_start();
    let rest = t.strip_prefix("vom ").or_else(|| t.strip_prefix("du ")).or_else(|| t.strip_prefix("de "))?;
    let d = find_dates(rest, hint).into_iter().next()?;
    rest[..d.start].trim().is_empty().then_some(d.date)
}

/// The first date to the right of a label (before the next label), else the first date under it.
fn date_near(
    layout: &Layout,
    i: usize,
    hit: &LabelHit,
    to: usize,
    hint: Option<Locale>,
) -> Option<(DateMatch, usize, bool)> {
    let line = &layout.lines[i];
    let right = &line.text[hit.end..to];
    if let Some(d) = find_dates(right, hint).into_iter().next() {
        // Only a date close to its label, not one in a sentence half a line away.
        let gap = &right[..d.start];
        if gap.trim_matches([' ', ':', '.', '-']).chars().count() <= 12 {
            return Some((d, i, false));
        }
        return None;
    }
    if line
        .segment_at(hit.start)
        .is_some_and(|s| !line.text.get(hit.end..s.byte_end).unwrap_or("").trim_matches([' ', ':', '.']).is_empty())
    {
        return None;
    }
    let (from, col_to) = layout.column_of(i, line.col(hit.start), line.col(hit.end));
    layout.below(i, from, col_to, 2).into_iter().find_map(|(j, seg)| {
        let d = find_dates(&seg.text, hint).into_iter().next()?;
        // A speck read as a letter or a quote before the date (`o 14-08-2026`) is not text before it.
        let before = seg.text[..d.start].trim();
        let speck = before.chars().count() <= 1 && !before.chars().any(|c| c.is_ascii_digit());
        speck.then_some((d, j, true))
    })
}

/// The best-supported value: the highest confidence, lifted a little when several places agree and lowered
/// when a close rival disagrees.
fn best<T: PartialEq + Clone>(found: Vec<Found<T>>) -> Option<Found<T>> {
    let mut merged: Vec<(Found<T>, usize)> = Vec::new();
    for f in found {
        match merged.iter_mut().find(|(m, _)| m.value == f.value) {
            Some((m, n)) => {
                *n += 1;
                if f.confidence > m.confidence {
                    m.confidence = f.confidence;
                    m.line = f.line;
                }
            }
            None => merged.push((f, 1)),
        }
    }
    let mut scored: Vec<Found<T>> = merged
        .into_iter()
        .map(|(mut f, n)| {
            f.confidence = (f.confidence + 0.05 * (n as f32 - 1.0)).min(1.0);
            f
        })
        .collect();
    scored.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(a.line.cmp(&b.line)));
    let mut it = scored.into_iter();
    let mut top = it.next()?;
    if let Some(second) = it.next() {
        if top.confidence - second.confidence < 0.1 {
            top.confidence -= 0.15;
        }
    }
    Some(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn invoice_numbers_need_a_digit_and_are_not_dates_or_amounts() {
        assert_eq!(parse_invoice_number(": F-2025/001.").as_deref(), Some("F-2025/001"));
        assert_eq!(parse_invoice_number("# RE-20140519/499 vom").as_deref(), Some("RE-20140519/499"));
        assert_eq!(parse_invoice_number("Nr. 42").as_deref(), Some("42"));
        assert_eq!(parse_invoice_number("Date"), None);
        assert_eq!(parse_invoice_number("15/10/2025"), None);
        assert_eq!(parse_invoice_number("1.210,00"), None);
        assert_eq!(parse_invoice_number(": 2024 - 1682").as_deref(), Some("2024-1682"), "OCR spaced the hyphen");
        assert_eq!(parse_invoice_number("T26- 03882").as_deref(), Some("T26-03882"), "OCR spaced after the hyphen");
        assert_eq!(
            parse_invoice_number("T26- VAT").as_deref(),
            Some("T26"),
            "a word after it is no part of the number"
        );
        assert_eq!(parse_invoice_number("123 - 15/10/2025").as_deref(), Some("123"));
        assert_eq!(parse_invoice_number(" A 013394").as_deref(), Some("A 013394"), "a series and its number");
        assert_eq!(parse_invoice_number("Date 2024"), None, "a word before a year is no series");
    }

    /// Twelve lines of body under the header, so the header sits in the page's top half like a real one.
    fn page(header: &str) -> Layout {
        Layout::new(&format!("{header}\n{}Total 100,00\n", "Concepto   1   10,00\n".repeat(12)))
    }

    #[test]
    fn a_number_a_line_or_two_below_its_stacked_label_is_read_but_not_another_rows_value() {
        let stacked = page(
            "TAX INVOICE                  Invoice #:\n                             Date of issue:\n\
             \u{20}                                               INV-07068\n\
             \u{20}                                               14 January 2025\n",
        );
        assert_eq!(read_header(&stacked, None).number.map(|f| f.value).as_deref(), Some("INV-07068"));
        // The cell under and right of `Invoice #:` is the customer number's, on its own label's row.
        let rows =
            page("INVOICE                      Invoice #:\n                             Customer No.:   10026\n");
        assert_eq!(read_header(&rows, None).number, None, "a wrong number is worse than none");
    }

    #[test]
    fn a_title_alone_in_its_cell_takes_the_number_in_the_next_cell() {
        let h = read_header(&page("Acme GmbH\nRECHNUNG                           RE-2025-0042\n"), None);
        assert_eq!(h.number.map(|f| f.value).as_deref(), Some("RE-2025-0042"));
        // A date or an amount in the next cell is no number.
        let h = read_header(&page("Acme GmbH\nRECHNUNG                           14.03.2025\n"), None);
        assert_eq!(h.number, None);
        let h = read_header(&page("Acme GmbH\nRECHNUNG                           1.234,56\n"), None);
        assert_eq!(h.number, None);
    }

    #[test]
    fn a_series_and_its_number_under_the_label_are_one_number() {
        let h = read_header(&page("FACTURA\nNº de factura:\nA 013394\nFecha: 03/02/2025\n"), Some(Locale::Es));
        assert_eq!(h.number.map(|f| f.value).as_deref(), Some("A 013394"));
    }

    #[test]
    fn a_label_and_its_value_on_one_line_are_read() {
        let layout =
            Layout::new("Factura nº: A-2025-017        Fecha de expedición: 15/10/2025\nVencimiento: 14/11/2025\n");
        let h = read_header(&layout, Some(Locale::Es));
        assert_eq!(h.number.unwrap().value, "A-2025-017");
        assert_eq!(h.issue_date.unwrap().value, ymd(2025, 10, 15));
        assert_eq!(h.due_date.unwrap().value, ymd(2025, 11, 14));
    }

    #[test]
    fn a_value_under_its_label_is_read_from_the_same_column() {
        let layout = Layout::new(
            "Acme S.L.                 Rechnungsnummer\nCalle Mayor 1                             471102\n                          Rechnungsdatum\nMadrid                                    05.03.2013\n",
        );
        let h = read_header(&layout, Some(Locale::De));
        assert_eq!(h.number.unwrap().value, "471102");
        assert_eq!(h.issue_date.unwrap().value, ymd(2013, 3, 5));
    }

    #[test]
    fn number_labels_without_the_word_invoice_are_read() {
        let cases: &[(&str, &str)] = &[
            ("Acme Ltd                         Receipt # No.: 2468\n", "2468"),
            ("CASH INV NO. 000123\n", "000123"),
            ("Nº: A 013394            Fecha: 01/02/2025\n", "A 013394"),
            ("N.º 2025/0042\n", "2025/0042"),
            ("Núm.    FV-88\n", "FV-88"),
            ("Nr.  RE-2024-77\n", "RE-2024-77"),
            ("Fecha           Nº\n02/03/2025      2025-118\n", "2025-118"),
            // The `º` of a till slip's `Doc. n.º`, as OCR reads it, and OCR's gap after `Doc.`.
            ("Doc. n.? 006726\n", "006726"),
            ("Doc. n.2 T25-04701\n", "T25-04701"),
            ("Doc.  n. T25-04226\n", "T25-04226"),
        ];
        for (text, want) in cases {
            let h = read_header(&Layout::new(text), Some(Locale::Es));
            assert_eq!(h.number.map(|f| f.value).as_deref(), Some(*want), "{text}");
        }
    }

    #[test]
    fn numbers_after_other_documents_labels_are_not_the_invoice_number() {
        for text in [
            "Order No.: 55123\n",
            "VAT No. GB123456789\n",
            "Tel. No. 0044 20 1234\n",
            "Kunden-Nr. 10023\n",
            "Nº pedido 4567\n",
            "Nº 1\n",
            // A lone `n.` a column after anything but the document's own word.
            "Via Roma  n. 12\n",
            // A `2` glued to `n.` with nothing after it is a number, not a misread `º`.
            "Doc. n.2\nFV-2025-118\n",
            "Nr.   Artikel      Menge\n1      Schrauben    10\n",
        ] {
            let h = read_header(&Layout::new(text), Some(Locale::De));
            assert_eq!(h.number, None, "{text}");
        }
    }

    #[test]
    fn payment_dates_are_never_the_issue_date_and_a_bare_fecha_is_the_last_resort() {
        let h = read_header(&Layout::new("Fecha de pago: 20/03/2025\nF. emisión: 01/03/2025\n"), Some(Locale::Es));
        assert_eq!(h.issue_date.unwrap().value, ymd(2025, 3, 1));
        let h = read_header(&Layout::new("Fecha: 05/03/2025\nFecha de emisión: 01/03/2025\n"), Some(Locale::Es));
        assert_eq!(h.issue_date.unwrap().value, ymd(2025, 3, 1));
        let h = read_header(&Layout::new("Training Date\n9/15/2020\n"), Some(Locale::En));
        assert_eq!(h.issue_date, None, "another date's label");
        let h = read_header(&Layout::new("Pagadera antes del 30/04/2025\n"), Some(Locale::Es));
        assert_eq!(h.issue_date, None);
        assert_eq!(h.due_date.unwrap().value, ymd(2025, 4, 30));
        let h = read_header(&Layout::new("Data fattura: 01/03/2025\nScadenza: 31/03/2025\n"), Some(Locale::It));
        assert_eq!(h.issue_date.unwrap().value, ymd(2025, 3, 1));
        assert_eq!(h.due_date.unwrap().value, ymd(2025, 3, 31));
    }

    #[test]
    fn a_title_line_gives_number_and_date() {
        let layout = Layout::new("\nHandelsrechnung Nr. 471102 vom 05.03.2018\n\nFacture FA-2017-0010\n");
        let h = read_header(&layout, Some(Locale::De));
        assert_eq!(h.number.as_ref().unwrap().value, "471102");
        assert_eq!(h.issue_date.unwrap().value, ymd(2018, 3, 5));
    }

    #[test]
    fn words_between_the_title_and_its_number_marker_are_passed_over() {
        let cases = [
            ("Rechnung des Monats Oktober Nr. R2025/4796", "R2025/4796"),
            ("Invoice for consulting services No. 2608020", "2608020"),
            ("Facture du mois d'octobre n° INV-06113", "INV-06113"),
            ("Fatura de serviços de consultoria n.º FT A/7610", "FT A/7610"),
        ];
        for (text, want) in cases {
            let h = read_header(&Layout::new(text), Some(Locale::De));
            assert_eq!(h.number.map(|f| f.value).as_deref(), Some(want), "{text}");
        }
        // Another document's number inside the words is not passed over, and plain prose is no title.
        for text in [
            "Invoice for order 4471 No. 12",
            "Invoice for consulting services",
            "Invoice for purchase order No. 4471",
            "Beitragsrechnung zur Kraftfahrtversicherung Nr. 00.123.456.7",
        ] {
            assert_eq!(read_header(&Layout::new(text), Some(Locale::En)).number, None, "{text}");
        }
    }

    #[test]
    fn a_till_slips_unlabelled_date_and_document_number_are_read_and_two_unlabelled_dates_are_not() {
        let slip = "Bäckerei Weber KG\nHauptstraße 48\n18.05.2026 20:02\nBon-Nr.: 009169\n----\nMilch  2,18\nBrot  10,47\n----\nTotal   12,65\nBar  20,00\n";
        let h = read_header(&Layout::new(slip), Some(Locale::De));
        assert_eq!(h.issue_date.map(|f| f.value), Some(ymd(2026, 5, 18)));
        assert_eq!(h.number.map(|f| f.value).as_deref(), Some("009169"));
        // Under the shop's tax ID, whose value stands beside its label.
        let slip = "Getränke Hoffmann GmbH\nUSt.-ID: DE940336219\n20.10.2024 10:51\nBon-Nr.: 005475\nTotal   20,86\n";
        let h = read_header(&Layout::new(slip), Some(Locale::De));
        assert_eq!(h.issue_date.map(|f| f.value), Some(ymd(2024, 10, 20)));
        let h = read_header(
            &Layout::new("Bar Centrale S.n.c.\nDoc. n. 0011-009858\n22/09/2025 11:15\nPane  2,10\n"),
            Some(Locale::It),
        );
        assert_eq!(h.number.map(|f| f.value).as_deref(), Some("0011-009858"));
        // Two dates and no label: either could be the issue date, so neither is taken; nor is a bare `n.`.
        let h = read_header(&Layout::new("Acme Ltd\n18.05.2026\n20.06.2026\nn. 12345\n"), Some(Locale::De));
        assert_eq!(h.issue_date, None);
        assert_eq!(h.number, None);
    }

    #[test]
    fn the_invoice_a_corrective_invoice_corrects_is_not_its_number() {
        let layout = Layout::new("FACTURA RECTIFICATIVA\nNº factura: R-2025-003\nFactura rectificada nº: F-2025-101\n");
        let h = read_header(&layout, Some(Locale::Es));
        assert_eq!(h.number.unwrap().value, "R-2025-003");
    }

    #[test]
    fn a_delivery_date_is_not_the_issue_date() {
        let layout = Layout::new("Lieferdatum: 01.02.2024\nRechnungsdatum: 03.02.2024\n");
        let h = read_header(&layout, Some(Locale::De));
        assert_eq!(h.issue_date.unwrap().value, ymd(2024, 2, 3));
    }
}
