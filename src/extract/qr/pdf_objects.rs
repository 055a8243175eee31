//! Just enough of a PDF's object syntax (ISO 32000-1 §7.3) to find its image XObjects, their streams and the
//! pages that draw them, from the file's bytes alone.
//!
//! Objects are found by their `N G obj` headers, the last definition of a number winning, as an incremental
//! update's does (§7.5.6). Objects inside compressed object streams (§7.5.7) are not found: an image is a stream
//! and never there, but a page tree may be, and then the caller falls back to `pdfimages`. Every walk is bounded
//! (nesting depth, nodes visited) and every failure is `None`: the bytes may be hostile.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Deeper nesting of arrays and dictionaries than this is refused: real files stay under ten.
const MAX_DEPTH: usize = 32;
/// How many page tree nodes and XObjects one walk of the pages may visit.
const MAX_VISITS: usize = 100_000;
/// Form XObjects drawn inside form XObjects: deeper than this is a loop.
const MAX_FORM_DEPTH: usize = 8;

/// A PDF object (§7.3). Numbers keep their integer form when they have one; references keep only the object
/// number, since every generation of an object is found by its number.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Name(Vec<u8>),
    Str(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Dict),
    Ref(u32),
}

/// A dictionary's entries, in the file's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dict(pub Vec<(Vec<u8>, Obj)>);

impl Dict {
    pub fn get(&self, key: &[u8]) -> Option<&Obj> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl Obj {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Obj::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Obj::Int(n) => Some(*n as f64),
            Obj::Real(r) => Some(*r),
            _ => None,
        }
    }

    pub fn as_name(&self) -> Option<&[u8]> {
        match self {
            Obj::Name(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Obj::Dict(d) => Some(d),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Obj]> {
        match self {
            Obj::Array(a) => Some(a),
            _ => None,
        }
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, 0 | 9 | 10 | 12 | 13 | 32)
}

fn is_delimiter(c: u8) -> bool {
    matches!(c, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%')
}

fn is_regular(c: u8) -> bool {
    !is_space(c) && !is_delimiter(c)
}

/// Reads objects from `b` at `pos`.
struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Past white space and comments.
    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if is_space(c) {
                self.pos += 1;
            } else if c == b'%' {
                while self.peek().is_some_and(|c| c != b'\n' && c != b'\r') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// The run of regular characters at `pos`: a number, a keyword, a name's letters.
    fn token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(is_regular) {
            self.pos += 1;
        }
        &self.b[start..self.pos]
    }

    fn value(&mut self, depth: usize) -> Option<Obj> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match self.peek()? {
            b'/' => {
                self.pos += 1;
                Some(Obj::Name(name(self.token())))
            }
            b'<' if self.b.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                let mut entries = Vec::new();
                loop {
                    self.skip_space();
                    if self.b[self.pos..].starts_with(b">>") {
                        self.pos += 2;
                        return Some(Obj::Dict(Dict(entries)));
                    }
                    let Obj::Name(key) = self.value(depth + 1)? else { return None };
                    entries.push((key, self.value(depth + 1)?));
                }
            }
            b'<' => self.hex_string(),
            b'(' => self.literal_string(),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    if self.peek()? == b']' {
                        self.pos += 1;
                        return Some(Obj::Array(items));
                    }
                    items.push(self.value(depth + 1)?);
                }
            }
            c if c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.') => self.number(),
            _ => match self.token() {
                b"true" => Some(Obj::Bool(true)),
                b"false" => Some(Obj::Bool(false)),
                b"null" => Some(Obj::Null),
                _ => None,
            },
        }
    }

    /// A number, or an indirect reference `N G R` (§7.3.10) when one starts here.
    fn number(&mut self) -> Option<Obj> {
        let text = std::str::from_utf8(self.token()).ok()?;
        let Ok(n) = text.parse::<i64>() else {
            return text.parse::<f64>().ok().filter(|r| r.is_finite()).map(Obj::Real);
        };
        if let Ok(num) = u32::try_from(n) {
            let back = self.pos;
            self.skip_space();
            let generation = self.token();
            self.skip_space();
            if !generation.is_empty() && generation.iter().all(u8::is_ascii_digit) && self.token() == b"R" {
                return Some(Obj::Ref(num));
            }
            self.pos = back;
        }
        Some(Obj::Int(n))
    }

    fn hex_string(&mut self) -> Option<Obj> {
        self.pos += 1;
        let mut digits = Vec::new();
        loop {
            let c = self.peek()?;
            self.pos += 1;
            match c {
                b'>' => break,
                c if c.is_ascii_hexdigit() => digits.push(hex_value(c)),
                c if is_space(c) => {}
                _ => return None,
            }
        }
        // An odd last digit is followed by an implied 0 (§7.3.4.3).
        Some(Obj::Str(digits.chunks(2).map(|d| d[0] << 4 | d.get(1).copied().unwrap_or(0)).collect()))
    }

    fn literal_string(&mut self) -> Option<Obj> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut open = 0usize;
        loop {
            let c = self.peek()?;
            self.pos += 1;
            match c {
                b'(' => {
                    open += 1;
                    out.push(c);
                }
                b')' if open == 0 => return Some(Obj::Str(out)),
                b')' => {
                    open -= 1;
                    out.push(c);
                }
                b'\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(v as u8);
                        }
                        // A backslash at the end of a line continues the string on the next (§7.3.4.2).
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
    }
}

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// A name's bytes, its `#xx` escapes (§7.3.5) decoded.
fn name(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw.get(i..i + 3) {
            Some([b'#', h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                out.push(hex_value(*h) << 4 | hex_value(*l));
                i += 3;
            }
            _ => {
                out.push(raw[i]);
                i += 1;
            }
        }
    }
    out
}

/// The object number of the `N G obj` header whose keyword starts at `obj`.
fn header_before(b: &[u8], obj: usize) -> Option<u32> {
    let mut p = obj;
    let digits = |p: &mut usize, most: usize| {
        let end = *p;
        while *p > 0 && b[*p - 1].is_ascii_digit() {
            *p -= 1;
        }
        (*p < end && end - *p <= most).then_some(end)
    };
    let space = |p: &mut usize| {
        let end = *p;
        while *p > 0 && is_space(b[*p - 1]) {
            *p -= 1;
        }
        *p < end
    };
    if !space(&mut p) {
        return None;
    }
    digits(&mut p, 5)?;
    if !space(&mut p) {
        return None;
    }
    let end = digits(&mut p, 10)?;
    if p > 0 && is_regular(b[p - 1]) {
        return None;
    }
    std::str::from_utf8(&b[p..end]).ok()?.parse().ok()
}

/// The objects of one file, found by their headers.
pub struct Objects<'a> {
    bytes: &'a [u8],
    /// Where each object's value starts (just past `obj`), by object number.
    at: HashMap<u32, usize>,
}

impl<'a> Objects<'a> {
    pub fn index(bytes: &'a [u8]) -> Objects<'a> {
        let mut at = HashMap::new();
        for obj in memchr::memmem::find_iter(bytes, b"obj") {
            if bytes.get(obj + 3).is_some_and(|&c| is_regular(c)) {
                continue;
            }
            if let Some(num) = header_before(bytes, obj) {
                at.insert(num, obj + 3);
            }
        }
        Objects { bytes, at }
    }

    /// Object `num`'s value; a stream's dictionary for a stream.
    pub fn get(&self, num: u32) -> Option<Obj> {
        Parser { b: self.bytes, pos: *self.at.get(&num)? }.value(0)
    }

    /// `obj`, or the object it refers to.
    pub fn resolve<'o>(&self, obj: &'o Obj) -> Option<Cow<'o, Obj>> {
        match obj {
            Obj::Ref(n) => match self.get(*n)? {
                Obj::Ref(_) => None,
                o => Some(Cow::Owned(o)),
            },
            o => Some(Cow::Borrowed(o)),
        }
    }

    /// The dictionary and the still encoded data of stream object `num`. The data's `/Length` may be a
    /// reference; when it is wrong or missing, the data ends at the first `endstream`.
    pub fn stream(&self, num: u32) -> Option<(Dict, &'a [u8])> {
        let mut p = Parser { b: self.bytes, pos: *self.at.get(&num)? };
        let Obj::Dict(dict) = p.value(0)? else { return None };
        p.skip_space();
        if !self.bytes[p.pos..].starts_with(b"stream") {
            return None;
        }
        // The keyword ends with CRLF or LF (§7.3.8.1); a lone CR is taken too.
        let mut start = p.pos + 6;
        if self.bytes[start..].starts_with(b"\r\n") {
            start += 2;
        } else if matches!(self.bytes.get(start), Some(b'\n' | b'\r')) {
            start += 1;
        }
        let rest = &self.bytes[start..];
        let declared = dict
            .get(b"Length")
            .and_then(|l| self.resolve(l))
            .and_then(|l| l.as_int())
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= rest.len() && ends_stream(&rest[n..]));
        if let Some(n) = declared {
            return Some((dict, &rest[..n]));
        }
        let end = memchr::memmem::find(rest, b"endstream")?;
        let data = &rest[..end];
        let data = data.strip_suffix(b"\r\n").or_else(|| data.strip_suffix(b"\n")).unwrap_or(data);
        Some((dict, data.strip_suffix(b"\r").unwrap_or(data)))
    }

    /// The image XObjects defined in the file, by object number, in the file's order.
    pub fn images(&self) -> Vec<u32> {
        let mut live: Vec<(usize, u32)> = self.at.iter().map(|(&n, &at)| (at, n)).collect();
        live.sort_unstable();
        let mut seen = HashSet::new();
        let mut images = Vec::new();
        for hit in memchr::memmem::find_iter(self.bytes, b"/Image") {
            let Some(&(_, num)) = live.partition_point(|&(at, _)| at <= hit).checked_sub(1).and_then(|i| live.get(i))
            else {
                continue;
            };
            if !seen.insert(num) {
                continue;
            }
            let is_image = self.get(num).is_some_and(|o| {
                o.as_dict().and_then(|d| d.get(b"Subtype")).and_then(Obj::as_name) == Some(b"Image".as_slice())
            });
            if is_image {
                images.push(num);
            }
        }
        images
    }

    /// The document catalog: the last trailer's (or cross-reference stream's) `/Root`.
    fn root(&self) -> Option<u32> {
        let at = memchr::memmem::rfind(self.bytes, b"/Root")?;
        match (Parser { b: self.bytes, pos: at + 5 }).value(0)? {
            Obj::Ref(n) => Some(n),
            _ => None,
        }
    }

    /// The number of pages, up to `max_pages + 1`, and the pages (1-based) that draw each image, by the image's
    /// object number, its soft mask and mask included. `None` when the page tree cannot be walked here.
    pub fn image_pages(&self, max_pages: u32) -> Option<(u32, HashMap<u32, Vec<u32>>)> {
        let catalog = self.get(self.root()?)?;
        let root = catalog.as_dict()?.get(b"Pages")?.clone();
        // Depth first in `/Kids` order, each node with the resources it inherits (§7.7.3.4).
        let mut stack: Vec<(Obj, Option<Obj>)> = vec![(root, None)];
        let mut seen = HashSet::new();
        let mut visits = MAX_VISITS;
        let (mut count, mut drawn) = (0u32, HashMap::new());
        while let Some((node, inherited)) = stack.pop() {
            visits = visits.checked_sub(1)?;
            if let Obj::Ref(n) = node {
                if !seen.insert(n) {
                    return None;
                }
            }
            let node = self.resolve(&node)?;
            let dict = node.as_dict()?;
            let resources = dict.get(b"Resources").cloned().or(inherited);
            let is_tree = dict.get(b"Type").and_then(Obj::as_name) == Some(b"Pages".as_slice());
            match dict.get(b"Kids") {
                Some(kids) if is_tree || dict.get(b"Type").is_none() => {
                    let kids = self.resolve(kids)?;
                    stack.extend(kids.as_array()?.iter().rev().map(|k| (k.clone(), resources.clone())));
                }
                _ => {
                    count += 1;
                    if count > max_pages {
                        break;
                    }
                    if let Some(r) = &resources {
                        self.images_drawn(r, count, &mut drawn, &mut visits, 0)?;
                    }
                }
            }
        }
        Some((count, drawn))
    }

    /// Note `page` for every image in `resources`' XObjects, and in the forms those draw.
    fn images_drawn(
        &self,
        resources: &Obj,
        page: u32,
        drawn: &mut HashMap<u32, Vec<u32>>,
        visits: &mut usize,
        depth: usize,
    ) -> Option<()> {
        if depth > MAX_FORM_DEPTH {
            return None;
        }
        let resources = self.resolve(resources)?;
        let Some(xobjects) = resources.as_dict()?.get(b"XObject") else { return Some(()) };
        let xobjects = self.resolve(xobjects)?;
        for (_, x) in &xobjects.as_dict()?.0 {
            *visits = visits.checked_sub(1)?;
            // An XObject is a stream, and a stream is always an indirect object.
            let Obj::Ref(num) = x else { continue };
            let dict = self.get(*num)?;
            let dict = dict.as_dict()?;
            match dict.get(b"Subtype").and_then(Obj::as_name) {
                Some(b"Image") => {
                    let masks = [b"SMask".as_slice(), b"Mask"].map(|key| dict.get(key));
                    let masks = masks.into_iter().flatten().filter_map(|m| match m {
                        Obj::Ref(n) => Some(*n),
                        _ => None,
                    });
                    for image in std::iter::once(*num).chain(masks) {
                        let pages = drawn.entry(image).or_default();
                        if pages.last() != Some(&page) {
                            pages.push(page);
                        }
                    }
                }
                Some(b"Form") => {
                    if let Some(r) = dict.get(b"Resources") {
                        self.images_drawn(r, page, drawn, visits, depth + 1)?;
                    }
                }
                _ => {}
            }
        }
        Some(())
    }
}

/// Do these bytes, past a stream's data, start with `endstream` (after an end of line)?
fn ends_stream(after: &[u8]) -> bool {
    let skip = after.iter().take(4).take_while(|&&c| is_space(c)).count();
    after[skip..].starts_with(b"endstream")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<Obj> {
        Parser { b: s.as_bytes(), pos: 0 }.value(0)
    }

    #[test]
    fn objects_of_every_kind_are_parsed() {
        let dict =
            parse("<< /A 1 /B -2.5 /C [1 0 R (a\\(b\\)\\101) <41 42 4>] /D#20E true /F null % note\n /G 7 >>").unwrap();
        let dict = dict.as_dict().unwrap();
        assert_eq!(dict.get(b"A"), Some(&Obj::Int(1)));
        assert_eq!(dict.get(b"B"), Some(&Obj::Real(-2.5)));
        let c = dict.get(b"C").unwrap().as_array().unwrap();
        assert_eq!(c, [Obj::Ref(1), Obj::Str(b"a(b)A".to_vec()), Obj::Str(vec![0x41, 0x42, 0x40])]);
        assert_eq!(dict.get(b"D E"), Some(&Obj::Bool(true)));
        assert_eq!(dict.get(b"F"), Some(&Obj::Null));
        assert_eq!(dict.get(b"G"), Some(&Obj::Int(7)));
        // Two numbers that are not a reference stay numbers.
        assert_eq!(parse("[1 0 2]").unwrap().as_array().unwrap(), [Obj::Int(1), Obj::Int(0), Obj::Int(2)]);
    }

    #[test]
    fn hostile_nesting_and_truncation_are_refused() {
        assert_eq!(parse(&"[".repeat(10_000)), None);
        assert_eq!(parse("<< /A [1 2"), None);
        assert_eq!(parse("(unterminated"), None);
        assert_eq!(parse("<< 1 2 >>"), None);
    }

    #[test]
    fn the_last_definition_of_an_object_wins_and_a_stream_ends_at_its_length() {
        let pdf = b"1 0 obj\n<< /Length 3 >>\nstream\nabc\nendstream\nendobj\n\
                    1 0 obj\n<< /Length 9 0 R >>\nstream\r\nabcdef\r\nendstream\nendobj\n9 0 obj 6 endobj\n\
                    2 0 obj << /Length 99 >> stream\nxyz\nendstream endobj";
        let objects = Objects::index(pdf);
        assert_eq!(objects.stream(1).unwrap().1, b"abcdef");
        // A wrong length: the data ends before `endstream`.
        assert_eq!(objects.stream(2).unwrap().1, b"xyz");
        assert!(objects.stream(3).is_none());
    }

    #[test]
    fn pages_are_walked_in_order_with_inherited_resources_and_forms() {
        let pdf = b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 /Resources << /XObject << /A 5 0 R >> >> >> endobj
3 0 obj << /Type /Page /Parent 2 0 R >> endobj
4 0 obj << /Type /Page /Parent 2 0 R /Resources 8 0 R >> endobj
8 0 obj << /XObject << /F 6 0 R >> >> endobj
5 0 obj << /Subtype /Image /Width 30 /Height 30 /SMask 9 0 R /Length 0 >> stream\n\nendstream endobj
6 0 obj << /Subtype /Form /Resources << /XObject << /B 7 0 R /A 5 0 R >> >> /Length 0 >> stream\n\nendstream endobj
7 0 obj << /Subtype /Image /Width 30 /Height 30 /Length 0 >> stream\n\nendstream endobj
trailer << /Root 1 0 R /Size 10 >>";
        let objects = Objects::index(pdf);
        assert_eq!(objects.images(), [5, 7]);
        let (count, drawn) = objects.image_pages(50).unwrap();
        assert_eq!(count, 2);
        assert_eq!(drawn[&5], [1, 2]);
        assert_eq!(drawn[&9], [1, 2]);
        assert_eq!(drawn[&7], [2]);
        // A page tree that loops is not walked.
        let looping = b"1 0 obj << /Pages 2 0 R >> endobj 2 0 obj << /Type /Pages /Kids [2 0 R] >> endobj
trailer << /Root 1 0 R >>";
        assert_eq!(Objects::index(looping).image_pages(50), None);
    }
}
