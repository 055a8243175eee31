//! Safe XML loading and small navigation helpers over `roxmltree`.
//!
//! Hostile input is stopped in three places, cheapest first:
//! 1. `decode`: the byte size limit, then the text encoding (UTF-8 with or without BOM, UTF-16 by BOM,
//!    ISO-8859-1/-15 and windows-1252 by declaration).
//! 2. `prescan`: one linear pass over the text that bounds element depth, attributes per element and namespace
//!    declarations *before* any tree is built. This keeps a depth bomb (100 000 nested elements) from ever
//!    reaching a parser, and it keeps roxmltree's per-element checks (duplicate attributes, namespace scopes)
//!    from going quadratic.
//! 3. `roxmltree` itself, with DTDs refused (`allow_dtd = false`, so no XXE, no billion laughs) and a node limit.
//!
//! Navigation matches elements by *local name* only: CII (two versions), UBL and Facturae each use their own
//! namespaces for the same structure, and the paths we follow are unambiguous without them.

use super::{EinvoiceError, XmlLimits};
use roxmltree::{Document, Node, ParsingOptions};
use std::borrow::Cow;

/// More attributes than this on one element is not an invoice; real roots carry about 15 namespace declarations.
const MAX_ATTRIBUTES_PER_ELEMENT: usize = 64;
/// Namespace declarations in the whole document (signed documents redeclare a few on nested elements).
const MAX_NAMESPACE_DECLARATIONS: usize = 4096;

const DTD_REFUSED: &str = "a DTD (<!DOCTYPE ...>) is not allowed in an e-invoice, so no entity is expanded";

/// Bytes to text. Refuses oversized input before looking at it.
pub(crate) fn decode<'a>(xml: &'a [u8], limits: &XmlLimits) -> Result<Cow<'a, str>, EinvoiceError> {
    if xml.len() > limits.max_bytes {
        return Err(EinvoiceError::TooLarge(format!(
            "{} bytes is over the limit of {} bytes",
            xml.len(),
            limits.max_bytes
        )));
    }
    if let Some(rest) = xml.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    if let Some(rest) = xml.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes).map(Cow::Owned);
    }
    if let Some(rest) = xml.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes).map(Cow::Owned);
    }
    // UTF-16 without a BOM still starts with "<" next to a zero byte.
    if xml.starts_with(b"<\0") {
        return utf16(xml, u16::from_le_bytes).map(Cow::Owned);
    }
    if xml.starts_with(b"\0<") {
        return utf16(xml, u16::from_be_bytes).map(Cow::Owned);
    }
    match declared_encoding(xml).as_deref() {
        Some("ISO-8859-1" | "LATIN1" | "ISO_8859-1" | "ISO8859-1") => Ok(Cow::Owned(latin1(xml))),
        Some("WINDOWS-1252" | "CP1252") => Ok(Cow::Owned(windows_1252(xml))),
        Some("ISO-8859-15" | "LATIN-9" | "LATIN9") => Ok(Cow::Owned(latin9(xml))),
        // Everything else (UTF-8, no declaration, or a mislabelled one like "UTF-8-W/O-BOM") must be UTF-8.
        _ => utf8(xml),
    }
}

fn utf8(bytes: &[u8]) -> Result<Cow<'_, str>, EinvoiceError> {
    std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
        let (line, column) = line_column(&bytes[..e.valid_up_to()]);
        EinvoiceError::Invalid { line, column, message: "the text is not valid UTF-8".into() }
    })
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, EinvoiceError> {
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]])).collect();
    String::from_utf16(&units).map_err(|_| EinvoiceError::Invalid {
        line: 1,
        column: 1,
        message: "the text is not valid UTF-16".into(),
    })
}

/// The `encoding` of the XML declaration, upper-cased (only looked for in the first 200 bytes).
fn declared_encoding(xml: &[u8]) -> Option<String> {
    let head = &xml[..xml.len().min(200)];
    let head = String::from_utf8_lossy(head);
    let decl = head.strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let at = decl.find("encoding")? + "encoding".len();
    let rest = decl[at..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].to_ascii_uppercase())
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// ISO-8859-15: latin-1 with eight code points replaced (the euro sign among them).
fn latin9(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0xA4 => '€',
            0xA6 => 'Š',
            0xA8 => 'š',
            0xB4 => 'Ž',
            0xB8 => 'ž',
            0xBC => 'Œ',
            0xBD => 'œ',
            0xBE => 'Ÿ',
            _ => char::from(b),
        })
        .collect()
}

/// windows-1252: latin-1 except for 0x80..=0x9F, which hold typographic characters (and the euro sign).
fn windows_1252(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
    ];
    bytes.iter().map(|&b| if (0x80..0xA0).contains(&b) { HIGH[usize::from(b - 0x80)] } else { char::from(b) }).collect()
}

fn line_column(before: &[u8]) -> (u32, u32) {
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (saturate(line), saturate(column))
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Decode, prescan and parse. DTDs are refused; the node limit is enforced by roxmltree.
pub(crate) fn parse_document<'a>(text: &'a str, limits: &XmlLimits) -> Result<Document<'a>, EinvoiceError> {
    prescan(text, limits)?;
    let options = ParsingOptions { allow_dtd: false, nodes_limit: u32::try_from(limits.max_nodes).unwrap_or(u32::MAX) };
    Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => {
            EinvoiceError::TooLarge(format!("more than {} XML nodes", limits.max_nodes))
        }
        roxmltree::Error::DtdDetected => EinvoiceError::Invalid { line: 1, column: 1, message: DTD_REFUSED.into() },
        other => {
            let pos = other.pos();
            EinvoiceError::Invalid { line: pos.row, column: pos.col, message: other.to_string() }
        }
    })
}

/// One pass over the raw text that bounds what roxmltree would otherwise build without limit. It is not a
/// validator: malformed markup is left for roxmltree to report with its line and column.
pub(crate) fn prescan(text: &str, limits: &XmlLimits) -> Result<(), EinvoiceError> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut namespaces = 0usize;
    let mut i = 0;
    while let Some(offset) = memchr(b'<', &bytes[i..]) {
        i += offset + 1;
        match bytes.get(i) {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(b'?') => i = skip_past(bytes, i, b"?>"),
            Some(b'!') if bytes[i..].starts_with(b"!--") => i = skip_past(bytes, i, b"-->"),
            Some(b'!') if bytes[i..].starts_with(b"![CDATA[") => i = skip_past(bytes, i, b"]]>"),
            Some(b'!') if bytes[i..].starts_with(b"!DOCTYPE") => {
                // A DOCTYPE. roxmltree refuses internal subsets (entities: XXE, billion laughs) but accepts
                // `<!DOCTYPE x SYSTEM "...">`; no e-invoice format uses a DTD, so every DOCTYPE is refused.
                let (line, column) = line_column(&bytes[..i - 1]);
                return Err(EinvoiceError::Invalid { line, column, message: DTD_REFUSED.into() });
            }
            // Any other `<!` is malformed; roxmltree reports it with its position.
            Some(b'!') => {}
            Some(_) => {
                let tag = start_tag(bytes, i);
                i = tag.end;
                namespaces += tag.namespaces;
                if tag.attributes > MAX_ATTRIBUTES_PER_ELEMENT {
                    return Err(too_large(format!(
                        "an element has {} attributes (limit {MAX_ATTRIBUTES_PER_ELEMENT})",
                        tag.attributes
                    )));
                }
                if namespaces > MAX_NAMESPACE_DECLARATIONS {
                    return Err(too_large(format!("more than {MAX_NAMESPACE_DECLARATIONS} namespace declarations")));
                }
                if !tag.self_closing {
                    depth += 1;
                    if depth > limits.max_depth {
                        return Err(too_large(format!("elements nested deeper than {}", limits.max_depth)));
                    }
                }
            }
            None => break,
        }
    }
    Ok(())
}

fn too_large(message: String) -> EinvoiceError {
    EinvoiceError::TooLarge(message)
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Index just after `end` (searching from `from`), or the end of input.
fn skip_past(bytes: &[u8], from: usize, end: &[u8]) -> usize {
    bytes[from..].windows(end.len()).position(|w| w == end).map_or(bytes.len(), |p| from + p + end.len())
}

struct StartTag {
    end: usize,
    attributes: usize,
    namespaces: usize,
    self_closing: bool,
}

/// Scans a start tag from just after `<` to just after its `>`, skipping quoted attribute values.
fn start_tag(bytes: &[u8], from: usize) -> StartTag {
    let mut tag = StartTag { end: bytes.len(), attributes: 0, namespaces: 0, self_closing: false };
    let mut i = from;
    let mut previous = 0u8;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => {
                tag.attributes += 1;
                if attribute_name_before(bytes, from, i).starts_with(b"xmlns") {
                    tag.namespaces += 1;
                }
                // An attribute value left open to the end of the input is malformed XML; the parser proper reports it.
                match memchr(quote, &bytes[i + 1..]) {
                    Some(p) => i += 1 + p,
                    None => return tag,
                }
            }
            b'>' => {
                tag.self_closing = previous == b'/';
                tag.end = i + 1;
                return tag;
            }
            _ => {}
        }
        previous = bytes[i];
        i += 1;
    }
    tag
}

/// The attribute name in front of the `="` at `quote` (whitespace around `=` allowed).
fn attribute_name_before(bytes: &[u8], tag_start: usize, quote: usize) -> &[u8] {
    let mut end = quote;
    while end > tag_start && (bytes[end - 1] == b'=' || bytes[end - 1].is_ascii_whitespace()) {
        end -= 1;
    }
    let mut start = end;
    while start > tag_start && !bytes[start - 1].is_ascii_whitespace() {
        start -= 1;
    }
    &bytes[start..end]
}

/// Local-name navigation on element nodes.
pub(crate) trait NodeExt<'a, 'input: 'a> {
    /// First element child with this local name.
    fn child(&self, name: &str) -> Option<Node<'a, 'input>>;
    /// Element children with this local name, in document order.
    fn children_named<'n>(&self, name: &'n str) -> impl Iterator<Item = Node<'a, 'input>> + 'n
    where
        'a: 'n,
        'input: 'n;
    /// Every element reached by following `path` (local names, one level each), in document order.
    fn all(&self, path: &[&str]) -> Vec<Node<'a, 'input>>;
    /// The first element reached by `path`, trying every branch (not only the first child at each step).
    fn at(&self, path: &[&str]) -> Option<Node<'a, 'input>>;
    /// Trimmed text of the first element at `path` that has non-empty text.
    fn text_at(&self, path: &[&str]) -> Option<String>;
    /// This element's own text (all direct text and CDATA children), trimmed; `None` when empty.
    fn own_text(&self) -> Option<String>;
    fn local(&self) -> &'a str;
}

impl<'a, 'input: 'a> NodeExt<'a, 'input> for Node<'a, 'input> {
    fn child(&self, name: &str) -> Option<Node<'a, 'input>> {
        self.children().find(|c| c.is_element() && c.tag_name().name() == name)
    }

    fn children_named<'n>(&self, name: &'n str) -> impl Iterator<Item = Node<'a, 'input>> + 'n
    where
        'a: 'n,
        'input: 'n,
    {
        self.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
    }

    fn all(&self, path: &[&str]) -> Vec<Node<'a, 'input>> {
        let mut level = vec![*self];
        for name in path {
            level = level.iter().flat_map(|n| n.children_named(name)).collect();
        }
        level
    }

    fn at(&self, path: &[&str]) -> Option<Node<'a, 'input>> {
        self.all(path).into_iter().next()
    }

    fn text_at(&self, path: &[&str]) -> Option<String> {
        self.all(path).iter().find_map(|n| n.own_text())
    }

    fn own_text(&self) -> Option<String> {
        let text: String = self.children().filter(|c| c.is_text()).filter_map(|c| c.text()).collect();
        let trimmed = text.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_string())
    }

    fn local(&self) -> &'a str {
        self.tag_name().name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> XmlLimits {
        XmlLimits::default()
    }

    #[test]
    fn a_utf8_bom_is_stripped() {
        let text = decode(b"\xEF\xBB\xBF<a/>", &limits()).unwrap();
        assert_eq!(text, "<a/>");
    }

    #[test]
    fn utf16_with_a_bom_is_decoded() {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend("<a>ñ</a>".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(&bytes, &limits()).unwrap(), "<a>ñ</a>");
    }

    #[test]
    fn latin1_is_decoded_when_declared() {
        let bytes = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>Nu\xF1ez</a>";
        assert!(decode(bytes, &limits()).unwrap().contains("Nuñez"));
    }

    #[test]
    fn single_byte_encodings_are_decoded_by_their_own_tables() {
        let decl = |enc: &str| format!("<?xml version=\"1.0\" encoding=\"{enc}\"?><a>").into_bytes();
        let mut cp1252 = decl("windows-1252");
        cp1252.extend(b"\x80 100</a>");
        assert!(decode(&cp1252, &limits()).unwrap().contains("€ 100"));
        let mut latin9 = decl("ISO-8859-15");
        latin9.extend(b"\xA4 100</a>");
        assert!(decode(&latin9, &limits()).unwrap().contains("€ 100"));
    }

    #[test]
    fn invalid_utf8_names_its_line_and_column() {
        let err = decode(b"<a>\n  \xFF</a>", &limits()).unwrap_err();
        assert!(matches!(err, EinvoiceError::Invalid { line: 2, column: 3, .. }), "{err:?}");
    }

    #[test]
    fn the_prescan_ignores_markup_inside_comments_cdata_and_attribute_values() {
        let text = "<a x='<b>'><!-- <c><c><c> --><![CDATA[<d><d>]]><e/></a>";
        let tight = XmlLimits { max_depth: 1, ..XmlLimits::default() };
        prescan(text, &tight).unwrap();
    }

    #[test]
    fn too_many_attributes_on_one_element_are_refused() {
        let attrs: String = (0..100).map(|i| format!(" a{i}=\"\"")).collect();
        let text = format!("<a{attrs}/>");
        assert!(matches!(prescan(&text, &limits()), Err(EinvoiceError::TooLarge(_))));
    }

    #[test]
    fn path_lookup_tries_every_branch() {
        let doc = Document::parse("<r><t><x/></t><t><d>2024</d></t></r>").unwrap();
        assert_eq!(doc.root_element().text_at(&["t", "d"]).as_deref(), Some("2024"));
    }
}
