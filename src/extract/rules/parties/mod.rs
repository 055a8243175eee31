//! Supplier and customer: names, tax IDs and the supplier's IBAN.
//!
//! In order of trust:
//! 1. Labelled blocks: `Emisor` / `Cliente`, `Seller` / `Bill to`, `Verkäufer` / `Käufer`, `Lieferant` /
//!    `Rechnungsempfänger`, `Fournisseur` / `Client`, `Leverancier` / `Klant`. The name is the first line of
//!    the block in the label's column; tax IDs in the block belong to that party.
//! 2. The sender line printed above the address window (`Acme GmbH · Calle Mayor 1 · 28001 Madrid`): its first
//!    part is the supplier, and the address under it is the customer's.
//! 3. A company name (with a legal form such as S.L. or GmbH) alone at the top of the page, or the nearest one
//!    above the supplier's tax ID.
//!
//! Tax IDs labelled for the customer (`NIF cliente`, `Customer VAT number`, `N° TVA client`) or inside the
//! customer block are the customer's; the first other valid one is the supplier's. Our own company (the
//! `[company]` config) is never the supplier: when the text makes it one, the roles are swapped or dropped.

use super::fold;
use super::header::Found;
use super::iban::find_ibans;
use super::labels::find_labels;
use super::layout::Layout;
use super::taxid::{find_tax_ids, TaxId, TaxIdError};
use crate::extract::normalize::one_line;
use regex_lite::Regex;
use std::sync::LazyLock;

mod blocks;
mod words;

use blocks::{block_name, find_blocks, in_column, Block, Role};

pub use words::has_legal_form;
use words::{block_role, customer_labelled, is_salutation, is_title, name_like, tax_id_labelled};

/// What we know of one party.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartyFound {
    pub name: Option<Found<String>>,
    pub tax_id: Option<Found<TaxId>>,
    /// A labelled tax ID whose check digit fails, as printed (separators removed). It is what the page says,
    /// so it is reported with a failed `tax_id_checksum`; it never replaces a verified one.
    pub unchecked_tax_id: Option<Found<String>>,
}

/// Both parties, the supplier's IBAN and notes for the result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parties {
    pub supplier: PartyFound,
    pub customer: PartyFound,
    pub iban: Option<Found<String>>,
    /// Tax IDs and IBANs printed with a failed check digit, as text for a warning.
    pub bad_tax_ids: Vec<String>,
    pub bad_ibans: Vec<String>,
}

/// Who "we" are, normalised for comparison.
#[derive(Debug, Clone, Default)]
pub struct Own {
    pub names: Vec<String>,
    pub tax_ids: Vec<String>,
}

impl Own {
    pub fn new(names: &[String], tax_ids: &[String]) -> Own {
        Own {
            names: names.iter().map(|n| name_key(n)).filter(|n| n.len() >= 3).collect(),
            tax_ids: tax_ids.iter().filter_map(|t| TaxId::parse(t).ok()).map(|t| t.vat_form()).collect(),
        }
    }

    fn is_own_id(&self, id: &TaxId) -> bool {
        self.tax_ids.contains(&id.vat_form())
    }

    fn is_own_name(&self, name: &str) -> bool {
        let key = name_key(name);
        !key.is_empty() && self.names.iter().any(|n| key.contains(n.as_str()) || n.contains(key.as_str()))
    }
}

/// Letters and digits only, folded: `ACME, S.L.` → `acmesl`.
fn name_key(s: &str) -> String {
    fold(s).chars().filter(|c| c.is_alphanumeric()).collect()
}

/// What joins the parts of a sender or letterhead line: `|`, `·`, `●`, `•`, or a dash with spaces around it.
static PART_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| super::regex(r"\s*[|·●•]\s*|\s+[-–]\s+"));

/// The sender line above the address window: three or more parts joined by `|`, `·`, `●`, `•` or ` - `, one
/// of them a postcode and town. Producers often space the separators out, so the whole line is split, not
/// its segments.
fn sender_line(layout: &Layout) -> Option<(String, usize, usize)> {
    // Continental postcodes, and British ones (`M1 2HF`, `SW1A 1AA`).
    static POSTCODE: LazyLock<Regex> =
        LazyLock::new(|| super::regex(r"\b[0-9]{4,5}\b|\b[A-Z]{1,2}[0-9][A-Z0-9]?\s[0-9][A-Z]{2}\b"));
    let limit = (layout.len() * 2 / 5).max(12);
    for (i, line) in layout.lines.iter().enumerate().take(limit) {
        // A speck that OCR reads as `-` or `'` ahead of the line is no part of it.
        let Some(first) = line.segments.iter().find(|s| s.text.chars().any(char::is_alphanumeric)) else {
            continue;
        };
        let text = &line.text[first.byte_start..];
        let parts: Vec<&str> = PART_SEPARATOR.split(text).map(str::trim).collect();
        // A letterhead's address line (`Victoria Road 28 · Bristol BS1 5TR · Tel. …`) leads with a street, not a
        // name: a name has no digits.
        let named = name_like(parts[0]) && !parts[0].chars().any(|c| c.is_ascii_digit());
        if parts.len() >= 3 && parts.iter().skip(1).any(|p| POSTCODE.is_match(p)) && named {
            return Some((one_line(parts[0]), i, first.start));
        }
        if let Some(name) = sender_line_without_separators(text) {
            return Some((name, i, first.start));
        }
    }
    None
}

/// A sender line whose separators OCR dropped (`Harbour Print  Design Ltd  High Street 139 - Bristol BS1 5TR`):
/// only gaps are left between its parts, so more is asked of it. The name is the leading parts without
/// digits (an `&` read as nothing splits a name too) and must end in a legal form; a later part must be a
/// postcode and a town.
fn sender_line_without_separators(text: &str) -> Option<String> {
    static GAP: LazyLock<Regex> = LazyLock::new(|| super::regex(r"\s*[|·●•]\s*|\s+[-–—]\s+|\s{2,}"));
    // A postcode and its town (a British one after it, where OCR reads a 5 as S).
    static POSTCODE: LazyLock<Regex> = LazyLock::new(|| super::regex(r"\b[0-9]{4,5}\s+|\b[0-9]{4}-[0-9]{3}\s+"));
    static BRITISH: LazyLock<Regex> = LazyLock::new(|| super::regex(r"\b[A-Z]{1,2}[0-9][A-Z0-9]?\s[0-9S][A-Z]{2}$"));
    let parts: Vec<&str> = GAP.split(text).map(str::trim).filter(|p| !p.is_empty()).collect();
    let lead = parts.iter().take(3).take_while(|p| !p.chars().any(|c| c.is_ascii_digit())).count();
    let n = (1..=lead).find(|&n| {
        let name = parts[..n].join(" ");
        has_legal_form(&name) && name_like(&name)
    })?;
    (parts.len() >= 3 && parts[n..].iter().any(|p| postcode_and_town(&POSTCODE, p) || BRITISH.is_match(p)))
        .then(|| parts[..n].join(" "))
}

/// The first line of an address block (three to eight lines in one column, one of them a postcode and town)
/// in the top half of the page, outside the supplier's and delivery blocks and below `after`.
fn address_block(layout: &Layout, blocks: &[Block], after: usize, supplier: Option<&str>) -> Option<(String, usize)> {
    static TOWN: LazyLock<Regex> = LazyLock::new(|| super::regex(r"\b[0-9]{4,5}\s+"));
    // A British town line ends in its postcode (`York YO1 7HH`).
    static BRITISH: LazyLock<Regex> = LazyLock::new(|| super::regex(r"\b[A-Z]{1,2}[0-9][A-Z0-9]?\s[0-9][A-Z]{2}$"));
    let top = layout.len() / 2;
    for i in after + 1..top {
        for seg in &layout.lines[i].segments {
            let inside = blocks
                .iter()
                .any(|b| b.role != Role::Customer && i > b.label_line && i <= b.last_line && in_column(seg.start, b));
            let text = seg.text.trim();
            if inside
                || block_role(text).is_some()
                || !name_like(text)
                || text.chars().any(|c| c.is_ascii_digit())
                || supplier.is_some_and(|s| name_key(s) == name_key(text))
            {
                continue;
            }
            let mut has_town = false;
            let mut lines = 1;
            for j in i + 1..(i + 8).min(layout.len()) {
                let l = &layout.lines[j];
                if l.is_blank() {
                    break;
                }
                if let Some(s) = l.segments.iter().find(|s| s.start.abs_diff(seg.start) <= 2) {
                    lines += 1;
                    has_town |= postcode_and_town(&TOWN, &s.text) || BRITISH.is_match(s.text.trim_end());
                } else if l.segments.iter().any(|s| s.start < seg.start + 20 && s.end > seg.start) {
                    break;
                }
            }
            if has_town && (3..=8).contains(&lines) {
                return Some((text.to_string(), i));
            }
        }
    }
    None
}

/// The addressee under the sender line: the first name-like line starting in the same column.
fn addressee(layout: &Layout, line: usize, col: usize) -> Option<(String, usize)> {
    let mut seen = 0;
    for j in line + 1..layout.len() {
        let l = &layout.lines[j];
        if l.is_blank() {
            continue;
        }
        seen += 1;
        if seen > 4 {
            return None;
        }
        let Some(seg) = l.segments.iter().find(|s| s.start + 6 >= col && s.start <= col + 6) else {
            continue;
        };
        if name_like(&seg.text) {
            return Some((seg.text.trim().to_string(), j));
        }
        if !is_salutation(&fold(seg.text.trim())) {
            return None;
        }
    }
    None
}

/// A column header right above the value names it a tax ID (`USt-IdNr` / `DE123456789` in a footer table).
fn labelled_above(layout: &Layout, line: usize, col: usize) -> bool {
    line.checked_sub(1).is_some_and(|up| {
        layout.lines[up].segments.iter().any(|s| s.start <= col + 2 && s.end + 2 > col && tax_id_labelled(&s.text))
    })
}

/// Read both parties. `own` is our company, which is never the supplier.
pub fn read_parties(layout: &Layout, own: &Own) -> Parties {
    let mut out = Parties::default();
    let blocks = find_blocks(layout);
    let block_of = |line: usize, col: usize| {
        blocks.iter().find(|b| line > b.label_line && line <= b.last_line && in_column(col, b)).map(|b| b.role)
    };

    // Names from labelled blocks.
    for role in [Role::Supplier, Role::Customer] {
        if let Some((name, line)) = blocks.iter().filter(|b| b.role == role).find_map(|b| block_name(layout, b)) {
            let target = if role == Role::Supplier { &mut out.supplier } else { &mut out.customer };
            target.name = Some(Found { value: name, confidence: 0.85, line });
        }
    }

    // The sender line and the address window under it.
    if let Some((name, line, col)) = sender_line(layout) {
        if out.supplier.name.is_none() {
            out.supplier.name = Some(Found { value: name.clone(), confidence: 0.8, line });
        }
        if out.customer.name.is_none() {
            if let Some((cust, cl)) = addressee(layout, line, col) {
                out.customer.name = Some(Found { value: cust, confidence: 0.75, line: cl });
            } else if let Some((cust, cl)) = address_block(layout, &blocks, line, Some(&name)) {
                out.customer.name = Some(Found { value: cust, confidence: 0.6, line: cl });
            }
        }
    } else if out.customer.name.is_none() {
        // No sender line to read (OCR often garbles its small print): the window is still known by its place,
        // an address block under the letterhead, in the top half of the page.
        if let Some((head, hl)) = letterhead(layout, &blocks) {
            if let Some((cust, cl)) = address_block(layout, &blocks, hl, Some(&head)) {
                out.customer.name = Some(Found { value: cust, confidence: 0.6, line: cl });
            }
        }
    }

    // Tax IDs: customer-labelled or in the customer block go to the customer; the first other one is the
    // supplier's. Our own ID marks the side we are on.
    let mut ids: Vec<IdSeen> = Vec::new();
    for (i, line) in layout.lines.iter().enumerate() {
        for m in find_tax_ids(&line.text) {
            let before = &line.text[..m.start];
            let col = line.segment_at(m.start).map_or(line.col(m.start), |s| s.start);
            let labelled = tax_id_labelled(before) || labelled_above(layout, i, line.col(m.start));
            let hint = if customer_labelled(before) {
                Some(Role::Customer)
            } else {
                // The value may sit far right of its label (`N° TVA intracommunautaire      FR…`): the label's
                // column is the one the window shares.
                let label_col =
                    line.segments.iter().take_while(|s| s.start < col).last().filter(|s| tax_id_labelled(&s.text));
                let windowed = in_window(layout, &out.customer, i, col)
                    || label_col.is_some_and(|s| in_window(layout, &out.customer, i, s.start));
                block_of(i, col).or_else(|| windowed.then_some(Role::Customer))
            };
            let id = match m.id {
                Ok(id) => id,
                Err(TaxIdError::Checksum) => {
                    if labelled {
                        if !out.bad_tax_ids.contains(&m.raw) {
                            out.bad_tax_ids.push(m.raw.clone());
                        }
                        let printed: String = m.raw.chars().filter(char::is_ascii_alphanumeric).collect();
                        ids.push(IdSeen { id: None, printed, confidence: 0.55, line: i, col, hint, own: false });
                    }
                    continue;
                }
                Err(TaxIdError::Format) => continue,
            };
            // An unprefixed Spanish number with no label could be any code that happens to pass mod 23.
            if !labelled && !id.as_printed().starts_with(id.country()) && !id.as_printed().starts_with("EL") {
                continue;
            }
            let base = if id.checksum_verified() { 0.9 } else { 0.65 };
            let confidence = if labelled { base } else { base - 0.1 };
            let own_id = own.is_own_id(&id);
            ids.push(IdSeen { printed: id.vat_form(), id: Some(id), confidence, line: i, col, hint, own: own_id });
        }
    }
    let (supplier_id, customer_id) = assign_ids(&ids);
    if let Some(s) = supplier_id {
        if out.supplier.name.is_none() {
            // A letterhead line `Calle Mayor 97 · 48001 Bilbao · NIF …` may come apart in columns (OCR drops the
            // dots): its first column is where the name above it starts.
            let first_col = layout.lines[s.line].segments.first().map_or(s.col, |f| f.start);
            let found = company_above(layout, s.line, s.col)
                .or_else(|| group_top(layout, s.line, s.col))
                .or_else(|| (first_col != s.col && s.line < 8).then(|| group_top(layout, s.line, first_col)).flatten());
            if let Some((name, nl)) = found {
                out.supplier.name = Some(Found { value: name, confidence: 0.65, line: nl });
            }
        }
        set_id(&mut out.supplier, s);
    }
    if let Some(c) = customer_id {
        set_id(&mut out.customer, c);
    }

    if out.supplier.name.is_none() {
        if let Some((name, line)) = letterhead(layout, &blocks) {
            out.supplier.name = Some(Found { value: name, confidence: 0.65, line });
        } else if let Some((name, line)) = person_letterhead(layout, &blocks) {
            out.supplier.name = Some(Found { value: name, confidence: 0.6, line });
        }
    }

    apply_own(&mut out, own);
    supplier_iban(layout, &mut out);
    out
}

/// Is a tax ID at `line`/`col` part of the customer's address block (the addressee window): within six lines
/// under the customer's name and starting in its column? The window's tax ID is never the supplier's.
fn in_window(layout: &Layout, customer: &PartyFound, line: usize, col: usize) -> bool {
    let Some(name) = &customer.name else { return false };
    let Some(name_col) =
        layout.lines[name.line].segments.iter().find(|s| s.text.trim() == name.value.trim()).map(|s| s.start)
    else {
        return false;
    };
    line > name.line && line <= name.line + 6 && col + 4 >= name_col && col <= name_col + 4
}

/// A tax ID seen on the page, with where it was and what its surroundings say.
#[derive(Debug, Clone)]
struct IdSeen {
    /// `None` when the check digit failed (only kept when labelled as a tax ID).
    id: Option<TaxId>,
    /// The VAT form when verified, else the characters as printed.
    printed: String,
    confidence: f32,
    line: usize,
    col: usize,
    hint: Option<Role>,
    own: bool,
}

fn set_id(party: &mut PartyFound, seen: &IdSeen) {
    match &seen.id {
        Some(id) => party.tax_id = Some(Found { value: id.clone(), confidence: seen.confidence, line: seen.line }),
        None => {
            party.unchecked_tax_id =
                Some(Found { value: seen.printed.clone(), confidence: seen.confidence, line: seen.line })
        }
    }
}

/// Who owns which tax ID. Labelled and in-block IDs go to their party; the first unplaced one that is not ours
/// is the supplier's; verified IDs win over ones whose check failed. When our own ID sits where the supplier
/// should be and another company is labelled as the customer, the document has the roles the other way round
/// from our point of view: we are the customer.
fn assign_ids(ids: &[IdSeen]) -> (Option<&IdSeen>, Option<&IdSeen>) {
    let first = |f: &dyn Fn(&IdSeen) -> bool| {
        ids.iter().find(|s| s.id.is_some() && f(s)).or_else(|| ids.iter().find(|s| s.id.is_none() && f(s)))
    };
    let mut customer = first(&|s| s.hint == Some(Role::Customer) && !s.own);
    let mut supplier = first(&|s| s.hint == Some(Role::Supplier) && !s.own)
        .or_else(|| first(&|s| s.hint.is_none() && !s.own && customer.is_none_or(|c| c.printed != s.printed)));
    let own = first(&|s| s.own);
    if supplier.is_none() && own.is_some_and(|o| o.hint != Some(Role::Customer)) && customer.is_some() {
        supplier = customer;
        customer = own;
    } else if customer.is_none() {
        customer = own;
    }
    if supplier.is_some_and(|s| customer.is_some_and(|c| c.printed == s.printed)) {
        customer = None;
    }
    (supplier, customer)
}

/// The top line of the block of consecutive lines a tax ID ends (a freelancer's name above their address and
/// NIF carries no legal form to find it by).
fn group_top(layout: &Layout, line: usize, col: usize) -> Option<(String, usize)> {
    let at_col = |j: usize| layout.lines[j].segments.iter().find(|s| s.start + 4 >= col && s.start <= col + 4);
    let mut top = line;
    while top > 0 && line - top < 7 && at_col(top - 1).is_some() {
        top -= 1;
    }
    let seg = at_col(top)?;
    let text = seg.text.trim();
    (top < line && name_like(text) && !text.chars().any(|c| c.is_ascii_digit())).then(|| (text.to_string(), top))
}

/// The nearest company name (with a legal form) above a tax ID in its column, within eight lines.
fn company_above(layout: &Layout, line: usize, col: usize) -> Option<(String, usize)> {
    for j in (line.saturating_sub(8)..=line).rev() {
        let seg = layout.lines[j].segments.iter().find(|s| s.start + 4 >= col && s.start <= col + 4);
        if let Some(s) = seg {
            if has_legal_form(&s.text) && name_like(&s.text) {
                // A footer line `Bäckerei Weber KG · Bahnhofstraße 38` whose last separator OCR dropped is one
                // segment: the name is its first part, when that part has the legal form.
                let text = s.text.trim();
                let first = PART_SEPARATOR.split(text).next().unwrap_or(text).trim();
                let name = if has_legal_form(first) && name_like(first) { first } else { text };
                return Some((name.to_string(), j));
            }
        }
    }
    None
}

/// A company name alone on its line near the top (or beside the title), outside any customer or delivery
/// block.
fn letterhead(layout: &Layout, blocks: &[Block]) -> Option<(String, usize)> {
    let mut seen = 0;
    for (i, line) in layout.lines.iter().enumerate() {
        if line.is_blank() {
            continue;
        }
        seen += 1;
        if seen > 8 {
            return None;
        }
        // Alone on its line, or beside the document's title or header labels (`Acme S.L.      FACTURA`).
        // A short heading without digits or a company of its own (`Project Statement`) counts as a title.
        let heading =
            |t: &str| t.split_whitespace().count() <= 3 && !t.chars().any(|c| c.is_ascii_digit()) && !has_legal_form(t);
        let beside_title = line.segments[1..]
            .iter()
            .all(|s| is_title(&s.text) || !find_labels(&s.text).is_empty() || (i < 3 && heading(&s.text)));
        if !beside_title || blocks.iter().any(|b| i >= b.label_line && i <= b.last_line) {
            continue;
        }
        let text = line.segments[0].text.trim();
        if has_legal_form(text) && name_like(text) {
            let prev = i.checked_sub(1).map(|p| &layout.lines[p]);
            // `MVM Musterhafter` / `Versicherungsverein Musterstadt a.G.`: one name on two lines.
            if let Some(p) = prev.filter(|p| p.segments.len() == 1 && name_like(&p.segments[0].text)) {
                if !has_legal_form(&p.segments[0].text) {
                    return Some((format!("{} {text}", p.segments[0].text.trim()), i - 1));
                }
            }
            return Some((text.to_string(), i));
        }
    }
    None
}

/// A postcode (`postcode` matches it and the spaces after it) followed by a town's name in any alphabet.
fn postcode_and_town(postcode: &Regex, text: &str) -> bool {
    postcode.find_iter(text).any(|m| text[m.end()..].chars().next().is_some_and(char::is_alphabetic))
}

/// A freelancer's letterhead: a capitalised name of two to five words, without digits, in the first lines, with
/// a postcode and town under it in its column (`Laura Gómez Ruiz` / `Calle Real 105` / `30001 Murcia`), in the
/// first three lines. Only used when nothing better names the supplier (their NIF line may be unreadable on a
/// scan).
fn person_letterhead(layout: &Layout, blocks: &[Block]) -> Option<(String, usize)> {
    static TOWN: LazyLock<Regex> = LazyLock::new(|| super::regex(r"\b[0-9]{5}\s+"));
    let mut seen = 0;
    for (i, line) in layout.lines.iter().enumerate() {
        if line.is_blank() {
            continue;
        }
        // The letterhead leads the page; lower down a name over a town is an address window (the customer's).
        seen += 1;
        if seen > 3 {
            return None;
        }
        if blocks.iter().any(|b| i >= b.label_line && i <= b.last_line) {
            continue;
        }
        for seg in &line.segments {
            let text = seg.text.trim();
            let words: Vec<&str> = text.split_whitespace().collect();
            let capitalised = words.iter().all(|w| w.chars().next().is_some_and(char::is_uppercase) || w.len() <= 3);
            let shouting = text.chars().filter(|c| c.is_alphabetic()).all(char::is_uppercase);
            if !(2..=5).contains(&words.len())
                || !capitalised
                || shouting
                || text.chars().any(|c| c.is_ascii_digit())
                || !name_like(text)
                || block_role(text).is_some()
                || !line.labels().is_empty()
            {
                continue;
            }
            let town_below = (i + 1..(i + 4).min(layout.len())).any(|j| {
                layout.lines[j]
                    .segments
                    .iter()
                    .any(|s| s.start.abs_diff(seg.start) <= 4 && postcode_and_town(&TOWN, &s.text))
            });
            if town_below {
                return Some((text.to_string(), i));
            }
        }
    }
    None
}

/// Our own company is never the supplier: swap when the text has it the wrong way round, else drop it. Names
/// and tax IDs are settled separately (`assign_ids` already placed our own ID).
fn apply_own(out: &mut Parties, own: &Own) {
    let own_name = |p: &PartyFound| p.name.as_ref().is_some_and(|f| own.is_own_name(&f.value));
    if own_name(&out.supplier) {
        if out.customer.name.is_some() && !own_name(&out.customer) {
            std::mem::swap(&mut out.supplier.name, &mut out.customer.name);
        } else {
            out.supplier.name = None;
        }
    }
    if out.supplier.tax_id.as_ref().is_some_and(|f| own.is_own_id(&f.value)) {
        let ours = out.supplier.tax_id.take();
        if out.customer.tax_id.is_none() {
            out.customer.tax_id = ours;
        }
    }
}

/// The IBAN to pay into: the only valid one on the page, unless the page speaks of a direct debit (then the
/// IBAN printed is the customer's own account).
fn supplier_iban(layout: &Layout, out: &mut Parties) {
    let text: String = layout.lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n");
    let mut valid: Vec<String> = Vec::new();
    for m in find_ibans(&text) {
        match m.iban {
            Ok(iban) => {
                if !valid.contains(&iban.to_string()) {
                    valid.push(iban.to_string());
                }
            }
            Err(_) => out.bad_ibans.push(text[m.start..m.end].to_string()),
        }
    }
    let f = fold(&text);
    let debit =
        ["lastschrift", "abbuchen", "domiciliacion", "domiciliado", "adeudo", "direct debit", "prelevement", "incasso"]
            .iter()
            .any(|w| f.contains(w));
    if let [only] = valid.as_slice() {
        if !debit {
            out.iban = Some(Found { value: only.clone(), confidence: 0.85, line: 0 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use words::addressee_salutation;

    fn read(text: &str) -> Parties {
        read_parties(&Layout::new(text), &Own::default())
    }

    fn name(p: &PartyFound) -> Option<&str> {
        p.name.as_ref().map(|f| f.value.as_str())
    }

    fn tax(p: &PartyFound) -> Option<String> {
        p.tax_id.as_ref().map(|f| f.value.as_printed())
    }

    #[test]
    fn the_window_under_a_letterhead_is_the_customer_when_ocr_garbled_the_sender_line() {
        let body = "Concepto                          1        10,00\n".repeat(14);
        let p = read(&format!(
            "                                        Suministros Norte S.L.\n\
             Sres None SL Call Mayor 4001 Bio\n\
             Clínica Dental Sonrisa S.L.                 Núm. factura:   R2025/0018\n\
             Calle Mayor 79                              Fecha factura: 2 de agosto de 2025\n\
             48001 Bilbao\n\
             CIF: A58818501\n\n\
             {body}\n\
             Suministros Norte S.L. · CIF: B12345674 · Registro Mercantil de Bilbao\n"
        ));
        assert_eq!(name(&p.customer), Some("Clínica Dental Sonrisa S.L."));
        assert_eq!(tax(&p.customer).as_deref(), Some("A58818501"), "the window's tax ID is the customer's");
        assert_eq!(tax(&p.supplier).as_deref(), Some("B12345674"));
        assert_eq!(name(&p.supplier), Some("Suministros Norte S.L."));
    }

    #[test]
    fn a_letterhead_address_line_led_by_a_street_names_nobody() {
        let body = "Item                              1        10.00\n".repeat(14);
        let p = read(&format!(
            "                 Northwind Supplies Ltd\n\
             Victoria Road 28 · Bristol BS1 5TR · Tel. +00 200 5000\n\n{body}"
        ));
        assert_eq!(name(&p.supplier), Some("Northwind Supplies Ltd"));
    }

    #[test]
    fn a_sender_line_whose_separators_ocr_dropped_needs_a_legal_form_and_a_town() {
        assert_eq!(
            sender_line_without_separators("Harbour Print  Design Ltd  High Street 139 - Bristol BS1 STR").as_deref(),
            Some("Harbour Print Design Ltd")
        );
        assert_eq!(
            sender_line_without_separators("Menuiserie Dubois SARL  place du Marché 123 - 31000 Toulouse").as_deref(),
            Some("Menuiserie Dubois SARL")
        );
        // No legal form: a row of a table, not a sender.
        assert_eq!(sender_line_without_separators("Customer Services  Order 12345  28001 Madrid"), None);
        // No town: a company beside its invoice number.
        assert_eq!(sender_line_without_separators("Acme GmbH  Rechnung  Nr. 12345"), None);
    }

    #[test]
    fn malaysian_and_italian_partnership_legal_forms_name_a_company() {
        assert!(has_legal_form("Kedai Runcit Maju SDN BHD"));
        assert!(has_legal_form("Syarikat Ali Bhd."));
        assert!(has_legal_form("Kedai Ali S/B"));
        assert!(has_legal_form("Bar Centrale S.n.c."), "an Italian partnership");
        assert!(has_legal_form("Pharmacie Centrale SELARL"), "a French professional company");
        assert!(!has_legal_form("Bhdra Road"), "only the whole word");
    }

    #[test]
    fn an_srl_whose_l_ocr_read_as_a_one_is_still_a_legal_form_but_a_code_is_not() {
        assert!(has_legal_form("Ferramenta Gallo S.r.1."));
        assert!(has_legal_form("Alimentari Esposito S.r. L."));
        assert!(!has_legal_form("Modello SR1 Ricambi"), "without the dots it is a model code");
    }

    #[test]
    fn from_and_to_head_the_two_parties_columns_only_as_a_pair() {
        let p = read(
            "Von                                                An\n\
             Nordlicht Software GmbH                            Kanzlei Wagner & Koch\n\
             Hauptstraße 105                                    Lindenallee 133\n\
             70173 Stuttgart                                    70173 Stuttgart\n",
        );
        assert_eq!(name(&p.supplier), Some("Nordlicht Software GmbH"));
        assert_eq!(name(&p.customer), Some("Kanzlei Wagner & Koch"));
        // A lone `A` or `An` is no label, nor is a pair the wrong way round.
        assert!(!words::party_pair(&["A"]));
        assert!(!words::party_pair(&["An", "Von"]));
        assert!(!words::party_pair(&["Serie", "A"]));
    }

    #[test]
    fn side_by_side_emisor_and_cliente_blocks_are_read_by_column() {
        let p = read(
            "EMISOR                                  CLIENTE\nTalleres Ejemplo S.L.                   Distribuciones Norte S.A.\nC/ Mayor 1                              Av. Libertad 22\nNIF: B12345674                          CIF: A58818501\n",
        );
        assert_eq!(name(&p.supplier), Some("Talleres Ejemplo S.L."));
        assert_eq!(name(&p.customer), Some("Distribuciones Norte S.A."));
        assert_eq!(tax(&p.supplier).as_deref(), Some("B12345674"));
        assert_eq!(tax(&p.customer).as_deref(), Some("A58818501"));
    }

    #[test]
    fn the_sender_line_names_the_supplier_and_the_window_the_customer() {
        let p = read("Kraxi GmbH · Flugzeugallee 17 · 12345 Papierfeld · Deutschland\nPapierflieger-Vertriebs-GmbH\nHelga Musterfrau\n");
        assert_eq!(name(&p.supplier), Some("Kraxi GmbH"));
        assert_eq!(name(&p.customer), Some("Papierflieger-Vertriebs-GmbH"));
    }

    #[test]
    fn a_customer_labelled_tax_id_is_the_customers() {
        let p = read("Acme S.L.\nNIF: B12345674\n\nNIF cliente: 12345678Z\n");
        assert_eq!(tax(&p.supplier).as_deref(), Some("B12345674"));
        assert_eq!(tax(&p.customer).as_deref(), Some("12345678Z"));
    }

    #[test]
    fn our_own_company_is_never_the_supplier() {
        let own = Own::new(&["Nuestra Empresa S.L.".into()], &["B12345674".into()]);
        let p = read_parties(
            &Layout::new("Proveedor: Nuestra Empresa S.L.\nNIF: B12345674\nCliente: Otra Casa S.A.\nCIF: A58818501\n"),
            &own,
        );
        assert_eq!(name(&p.supplier), Some("Otra Casa S.A."));
        assert_eq!(tax(&p.supplier).as_deref(), Some("A58818501"));
        assert_eq!(tax(&p.customer).as_deref(), Some("B12345674"));
    }

    #[test]
    fn a_tax_id_with_a_bad_check_digit_is_reported_not_used() {
        let p = read("Acme S.L.\nNIF: B12345675\n");
        assert_eq!(p.supplier.tax_id, None);
        assert_eq!(p.bad_tax_ids, vec!["B12345675".to_string()]);
    }

    #[test]
    fn a_customer_name_beside_its_label_without_a_colon_is_read_and_ship_to_is_not_the_customer() {
        let p = read("Contoso, Ltd.\n\n        Sold To    Fabrikam Residences\n                   345 Willow Street\n");
        assert_eq!(name(&p.customer), Some("Fabrikam Residences"));
        let p = read("Kunde    W A R E N R E C H N U N G\n");
        assert_eq!(name(&p.customer), None, "a spaced-out title beside the label");
        let p = read("Ship To    Northwind Traders\n           1 Main St\n");
        assert_eq!(name(&p.customer), None);
        let p = read("Cliente     Fecha      Número\nAcme S.A.   01/02/2025 7\n");
        assert_ne!(name(&p.customer), Some("Fecha      Número"));
    }

    #[test]
    fn a_company_beside_a_heading_at_the_top_is_the_letterhead() {
        let p = read(
            " Contoso, Ltd.                                  Project Statement\n                 Date: 8/20/2020\n",
        );
        assert_eq!(name(&p.supplier), Some("Contoso, Ltd."));
    }

    #[test]
    fn a_footer_line_whose_last_separator_ocr_dropped_gives_only_the_name() {
        let footer = "Rechnung Nr. 5\n\n\n\n\n\n\n\n\n\n\n\n\
            Bäckerei Weber KG - Bahnhofstraße 38  50667 Köln\n\
            USt-IdNr.: DE122856118 - Amtsgericht Köln 20033\n";
        let p = read(footer);
        assert_eq!(name(&p.supplier), Some("Bäckerei Weber KG"));
        assert_eq!(tax(&p.supplier).as_deref(), Some("DE122856118"));
        // A name whose legal form comes after the dash stays whole.
        let p = read(&footer.replace("Bäckerei Weber KG - Bahnhofstraße 38", "Weber - Bäckerei KG"));
        assert_eq!(name(&p.supplier), Some("Weber - Bäckerei KG"));
    }

    #[test]
    fn the_tax_id_in_the_addressee_window_is_never_the_suppliers() {
        let p = read(
            "Harbour Print Ltd · 47 Victoria Road · M1 2HF Manchester\n\n                                        Kunde\n                                        Greenfield Dental GmbH\n                                        Hauptstr. 5\n                                        10115 Berlin\n                                        USt-IdNr. DE136695976\n\nRechnung Nr. 5\n\n\n\n\n\n\n\nHarbour Print Ltd   VAT GB 980 7806 84\n",
        );
        assert_eq!(tax(&p.customer).as_deref(), Some("DE136695976"));
        assert_ne!(tax(&p.supplier).as_deref(), Some("DE136695976"));
    }

    #[test]
    fn a_tax_id_label_counts_across_wide_padding_and_only_as_a_word() {
        assert!(tax_id_labelled("USt-IdNr.:                               "));
        assert!(tax_id_labelled("NIF"));
        assert!(tax_id_labelled("SST Reg No: "), "a Malaysian sales tax registration");
        assert!(!tax_id_labelled("Augustusburg"));
        assert!(!tax_id_labelled("Kreuzstraße 9, 09573 Augustusburg "));
    }

    #[test]
    fn a_direct_debit_iban_is_not_the_suppliers() {
        assert!(read("IBAN ES91 2100 0418 4502 0005 1332").iban.is_some());
        assert!(read("Se cargará por domiciliación en ES91 2100 0418 4502 0005 1332").iban.is_none());
    }

    #[test]
    fn a_billing_address_heading_or_a_salutation_heads_the_customer_block() {
        let text = "Rossi Impianti S.r.l.                            FATTURA\nVia Roma 116 · 50122 Firenze\n\
                    Partita IVA: IT74272409843                  Nr.:   7774/2026\n\nSpett.le\nStudio Dentistico Ricci\n\
                    Corso Italia 53\n40121 Bologna\nPartita IVA: IT50044655400\n\n\nDescrizione   Importo\n\
                    Consulenza   100,00\n\nTotale   122,00\n\nFirma\nMario Rossi\n";
        let p = read(text);
        assert_eq!(name(&p.customer), Some("Studio Dentistico Ricci"));
        assert_eq!(tax(&p.customer).as_deref(), Some("IT50044655400"));
        assert_eq!(tax(&p.supplier).as_deref(), Some("IT74272409843"));
        let de = "Bäckerei Weber KG\nSchillerstraße 19 · 80331 München\nUSt-ID: DE267122324\n\n\
                  Rechnungsadresse:\nStadtwerke Neustadt GmbH\nGartenweg 84\n10115 Berlin\nUSt-ID: DE409498036\n\n\n\
                  Summe  10,00\n";
        let p = read(de);
        assert_eq!(name(&p.customer), Some("Stadtwerke Neustadt GmbH"));
        assert_eq!(tax(&p.customer).as_deref(), Some("DE409498036"));
        // `Firma` alone (a signature line) heads nothing.
        assert!(!addressee_salutation("Firma"));
        assert!(addressee_salutation("Exmo.(s) Sr.(s)"));
    }

    #[test]
    fn key_value_rows_under_party_headings_give_names_and_tax_ids_far_right_of_their_keys() {
        let p = read(
            "Rechnungssteller\nName:                              Bäckerei Weber KG\nStraße:                            Lindenallee 83, 70173 Stuttgart\nUSt.-ID:                           DE949584443\nKäufer\nName:                              Autohaus Becker GmbH & Co. KG\nStraße:                            Gartenweg 24, 10115 Berlin\nUSt.-ID:                           DE598162456\n",
        );
        assert_eq!(name(&p.supplier), Some("Bäckerei Weber KG"));
        assert_eq!(name(&p.customer), Some("Autohaus Becker GmbH & Co. KG"));
        assert_eq!(tax(&p.supplier).as_deref(), Some("DE949584443"));
        assert_eq!(tax(&p.customer).as_deref(), Some("DE598162456"));
        // A key that is not a name (`Straße:`) never gives the name, however far right its value is.
        let p = read("Käufer\nStraße:                            Gartenweg 24, 10115 Berlin\n");
        assert_eq!(name(&p.customer), None);
    }
}
