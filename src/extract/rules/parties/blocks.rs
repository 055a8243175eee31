//! The labelled blocks of the page: a label naming a party (`Emisor`, `Bill to`, `Käufer`, `Lieferant`), the
//! column span under or beside it, and the party's name read from its first lines or its `Name:` row.

use super::super::labels::find_labels;
use super::super::layout::Layout;
use super::has_legal_form;
use super::words::{
    addressee_salutation, block_key, block_role, inline_block, is_key, is_title, name_like, party_pair, spaced_out,
    NAME_KEYS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Supplier,
    Customer,
    /// Delivery address, payee, tax representative: a block to keep out of both parties.
    Other,
}

/// A block under (or beside) a label: the column span and the lines it covers.
#[derive(Debug, Clone)]
pub(super) struct Block {
    pub(super) role: Role,
    pub(super) label_line: usize,
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) last_line: usize,
    pub(super) inline_name: Option<String>,
}

pub(super) fn find_blocks(layout: &Layout) -> Vec<Block> {
    let mut blocks = Vec::new();
    for (i, line) in layout.lines.iter().enumerate() {
        let texts: Vec<&str> = line.segments.iter().map(|s| s.text.trim()).collect();
        // A `From` / `To` pair: its first segment heads the supplier's column, its second the customer's.
        let paired = party_pair(&texts);
        for (k, seg) in line.segments.iter().enumerate() {
            let pair_role = || paired.then_some(if k == 0 { Role::Supplier } else { Role::Customer });
            let (role, inline_name) = match block_role(&seg.text).or_else(pair_role) {
                // `Cliente:` in one column and the name in the next, on the same line (a header grid).
                Some(r) if seg.text.trim_end().ends_with(':') => {
                    let next = line.segments.get(k + 1).map(|s| s.text.trim()).filter(|t| name_like(t));
                    (r, next.map(str::to_string))
                }
                // `Sold To    Fabrikam Residences`: the name beside its label without a colon. Only a name of two
                // words or more that no label reads, so a grid of column headers (`Cliente   Fecha`) is no name.
                Some(r) => {
                    let next = line.segments.get(k + 1).map(|s| s.text.trim()).filter(|t| {
                        name_like(t)
                            && t.split_whitespace().count() >= 2
                            && block_role(t).is_none()
                            && find_labels(t).is_empty()
                            && !is_title(t)
                            && !spaced_out(t)
                    });
                    (r, next.map(str::to_string))
                }
                None => match inline_block(&seg.text) {
                    Some((r, name)) => (r, Some(name)),
                    // `Spett.le`, `Exmo.(s) Sr.(s)`, `Herrn` alone on its line heads the addressee, in the upper
                    // half of the page where the address window is.
                    None if i < layout.len() / 2 && addressee_salutation(&seg.text) => (Role::Customer, None),
                    None => continue,
                },
            };
            let to = line.segments.get(k + 1).map_or(usize::MAX, |s| s.start.saturating_sub(1));
            blocks.push(Block {
                role,
                label_line: i,
                from: seg.start.saturating_sub(2),
                to,
                last_line: i,
                inline_name,
            });
        }
    }
    // A label alone on its line owns the columns up to the nearest text further right in the lines under it.
    for b in &mut blocks {
        if b.to == usize::MAX {
            let label_end = layout.lines[b.label_line]
                .segments
                .iter()
                .find(|s| s.start.saturating_sub(2) == b.from)
                .map_or(b.from, |s| s.end);
            // The value of a key–value row (`Name:      Bäckerei Weber KG`) sits far right of its key but belongs
            // to the block: it does not bound it.
            let from = b.from;
            b.to = (b.label_line + 1..(b.label_line + 7).min(layout.len()))
                .flat_map(|j| {
                    let segs = &layout.lines[j].segments;
                    segs.iter().enumerate().filter(move |(k, _)| {
                        let key = k.checked_sub(1).map(|p| &segs[p]);
                        !key.is_some_and(|p| p.start >= from && p.start <= label_end + 10 && is_key(&p.text))
                    })
                })
                .map(|(_, s)| s.start)
                .filter(|&c| c > label_end + 10)
                .min()
                .map_or(usize::MAX, |c| c - 1);
        }
    }
    // A block ends at the next block label in an overlapping column, after three blank lines, or 12 lines down.
    let starts: Vec<(usize, usize, usize)> = blocks.iter().map(|b| (b.label_line, b.from, b.to)).collect();
    for b in &mut blocks {
        let mut blanks = 0;
        let mut last = b.label_line;
        for j in b.label_line + 1..layout.len().min(b.label_line + 13) {
            let next_label = starts.iter().any(|&(l, f, t)| l == j && f < b.to && t > b.from);
            if next_label {
                break;
            }
            if layout.lines[j].segments.iter().any(|s| in_column(s.start, b)) {
                blanks = 0;
                last = j;
            } else {
                blanks += 1;
                if blanks >= 3 {
                    break;
                }
            }
        }
        b.last_line = last;
    }
    blocks
}

pub(super) fn in_column(col: usize, b: &Block) -> bool {
    col >= b.from && col < b.to
}

pub(super) fn block_segments<'a>(layout: &'a Layout, b: &Block) -> Vec<(usize, &'a str)> {
    (b.label_line + 1..=b.last_line)
        .flat_map(|j| {
            layout.lines[j].segments.iter().filter(|s| in_column(s.start, b)).map(move |s| (j, s.text.as_str()))
        })
        .collect()
}

/// The party's name from the first lines of its block; a first line without a legal form followed directly by
/// one with it (`MVM Musterhafter` / `Versicherungsverein Musterstadt a.G.`) is one name on two lines.
pub(super) fn block_name(layout: &Layout, b: &Block) -> Option<(String, usize)> {
    if let Some(n) = &b.inline_name {
        return Some((n.clone(), b.label_line));
    }
    // One segment per line: the first in the column. A line led by a field (`Nummer : 12`, `GLN 400…`) is
    // skipped whole, so its value is never taken for a name.
    // Key–value rows: the value of a name key (`Name:`, `Raison sociale :`) is the name.
    for j in b.label_line + 1..=b.last_line {
        let segs = &layout.lines[j].segments;
        let Some(k) = segs.iter().position(|s| in_column(s.start, b)) else { continue };
        if is_key(&segs[k].text) && NAME_KEYS.contains(&block_key(&segs[k].text).as_str()) {
            return segs.get(k + 1).map(|v| v.text.trim()).filter(|v| name_like(v)).map(|v| (v.to_string(), j));
        }
    }
    let mut segs = block_segments(layout, b);
    segs.dedup_by_key(|(line, _)| *line);
    let (idx, &(line, first)) = segs.iter().enumerate().take(4).find(|(_, (_, t))| name_like(t))?;
    let mut name = first.trim().to_string();
    if let Some(&(next_line, next)) = segs.get(idx + 1) {
        if next_line == line + 1 && !has_legal_form(&name) && has_legal_form(next) && name_like(next) {
            name = format!("{name} {}", next.trim());
        }
    }
    Some((name, line))
}
