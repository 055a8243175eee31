//! The TrueType fonts that generated PDFs embed, so that a page renders and reads the same on every machine,
//! whatever fonts it has installed (poppler substitutes installed fonts for the standard 14 when they are not
//! embedded, and a different substitute changes what OCR reads from a generated scan).
//!
//! The fonts ship in `tests/fonts/` with their licences: Liberation Sans, Serif and Mono (SIL OFL 1.1; metric-
//! compatible with Helvetica, Times and Courier, so layouts keep their proportions) and DejaVu Sans Mono (Bitstream
//! Vera licence; it has the rupee sign `₹` that till receipts print). Each is embedded as `/FontFile2`, subset to
//! the characters of the encoding below (glyph ids kept, other glyph outlines dropped, layout tables left out)
//! and compressed, with `/Widths` taken from the font's `hmtx`.
//!
//! The encoding is WinAnsiEncoding (Latin-1 plus `€`, dashes, quotes) with one addition through `/Differences`:
//! code 0x81 (unused by WinAnsi) is `₹` (`/uni20B9`).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::OnceLock;

/// One embedded font face.
pub struct Face {
    /// PostScript name with a subset tag, `ABCDEF+LiberationSans`.
    pub base_font: String,
    /// Advance widths in 1/1000 em of codes 32..=255 (index `code - 32`).
    pub widths: Vec<u16>,
    pub ascent: i32,
    pub descent: i32,
    pub cap_height: i32,
    pub bbox: [i32; 4],
    pub fixed_pitch: bool,
    pub serif: bool,
    /// The subset font program, zlib-compressed, and its uncompressed length.
    pub program: Vec<u8>,
    pub program_len: usize,
}

impl Face {
    /// Width of a char in 1/1000 em (chars outside the encoding print as `?`).
    pub fn width(&self, c: char) -> f32 {
        let code = encode(c);
        if code < 32 {
            return 0.0;
        }
        f32::from(self.widths[usize::from(code - 32)])
    }

    /// The font dictionary, whose descriptor is object `descriptor`.
    pub fn font_object(&self, descriptor: usize) -> Vec<u8> {
        let widths: Vec<String> = self.widths.iter().map(u16::to_string).collect();
        format!(
            "<< /Type /Font /Subtype /TrueType /BaseFont /{name} /FirstChar 32 /LastChar 255 /Widths [{w}] \
             /Encoding << /Type /Encoding /BaseEncoding /WinAnsiEncoding /Differences [129 /uni20B9] >> \
             /FontDescriptor {descriptor} 0 R >>",
            name = self.base_font,
            w = widths.join(" "),
        )
        .into_bytes()
    }

    /// The font descriptor, whose font program is object `program`.
    pub fn descriptor_object(&self, program: usize) -> Vec<u8> {
        // Flags: 1 fixed pitch, 2 serif, 32 nonsymbolic (the glyphs are found through the Unicode cmap).
        let flags = 32 | u32::from(self.fixed_pitch) | if self.serif { 2 } else { 0 };
        let [x0, y0, x1, y1] = self.bbox;
        format!(
            "<< /Type /FontDescriptor /FontName /{name} /Flags {flags} /FontBBox [{x0} {y0} {x1} {y1}] \
             /ItalicAngle 0 /Ascent {a} /Descent {d} /CapHeight {c} /StemV 80 /FontFile2 {program} 0 R >>",
            name = self.base_font,
            a = self.ascent,
            d = self.descent,
            c = self.cap_height,
        )
        .into_bytes()
    }

    /// The embedded font program stream.
    pub fn program_object(&self) -> Vec<u8> {
        let mut program = format!(
            "<< /Length {} /Length1 {} /Filter /FlateDecode >>\nstream\n",
            self.program.len(),
            self.program_len
        )
        .into_bytes();
        program.extend(&self.program);
        program.extend(b"\nendstream");
        program
    }
}

/// The shipped faces, by file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceId {
    Sans,
    SansBold,
    Serif,
    SerifBold,
    Mono,
    MonoBold,
    ReceiptMono,
    ReceiptMonoBold,
}

const FILES: [(&str, &[u8]); 8] = [
    ("LiberationSans", include_bytes!("../fonts/LiberationSans-Regular.ttf")),
    ("LiberationSans-Bold", include_bytes!("../fonts/LiberationSans-Bold.ttf")),
    ("LiberationSerif", include_bytes!("../fonts/LiberationSerif-Regular.ttf")),
    ("LiberationSerif-Bold", include_bytes!("../fonts/LiberationSerif-Bold.ttf")),
    ("LiberationMono", include_bytes!("../fonts/LiberationMono-Regular.ttf")),
    ("LiberationMono-Bold", include_bytes!("../fonts/LiberationMono-Bold.ttf")),
    ("DejaVuSansMono", include_bytes!("../fonts/DejaVuSansMono.ttf")),
    ("DejaVuSansMono-Bold", include_bytes!("../fonts/DejaVuSansMono-Bold.ttf")),
];

/// The face, parsed and subset once per process.
pub fn face(id: FaceId) -> &'static Face {
    static FACES: OnceLock<Vec<Face>> = OnceLock::new();
    let faces = FACES.get_or_init(|| {
        FILES
            .iter()
            .enumerate()
            .map(|(k, (name, data))| {
                let serif = name.starts_with("LiberationSerif");
                // A fixed six-letter subset tag per face, as PDF/A asks for subset fonts.
                let tag: String = (0..6).map(|i| char::from(b'A' + ((k * 7 + i * 3) % 26) as u8)).collect();
                Face::parse(&format!("{tag}+{name}"), data, serif).expect("a shipped font parses")
            })
            .collect()
    });
    &faces[id as usize]
}

/// WinAnsiEncoding codes 0x80..=0x9F (0 where WinAnsi leaves a code undefined), with `₹` at 0x81.
const HIGH: [char; 32] = [
    '€', '₹', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', '\0', '‘', '’', '“', '”', '•',
    '–', '—', '˜', '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
];

/// The char a code stands for in this encoding.
pub fn decode(code: u8) -> Option<char> {
    match code {
        0x20..=0x7E | 0xA0..=0xFF => Some(char::from(code)),
        0x80..=0x9F => Some(HIGH[usize::from(code - 0x80)]).filter(|c| *c != '\0'),
        _ => None,
    }
}

/// The code of a char in this encoding (control chars as they are); `?` for chars it lacks.
pub fn encode(c: char) -> u8 {
    match c as u32 {
        0x00..=0x7E | 0xA0..=0xFF => c as u8,
        _ => HIGH.iter().position(|h| *h == c).map_or(b'?', |k| 0x80 + k as u8),
    }
}

fn u16_at(d: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([d[o], d[o + 1]])
}
fn i16_at(d: &[u8], o: usize) -> i16 {
    i16::from_be_bytes([d[o], d[o + 1]])
}
fn u32_at(d: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]])
}

struct Tables<'a> {
    data: &'a [u8],
    dir: Vec<([u8; 4], usize, usize)>,
}

impl<'a> Tables<'a> {
    fn new(data: &'a [u8]) -> Tables<'a> {
        let n = usize::from(u16_at(data, 4));
        let dir = (0..n)
            .map(|i| {
                let r = 12 + 16 * i;
                let tag = [data[r], data[r + 1], data[r + 2], data[r + 3]];
                (tag, u32_at(data, r + 8) as usize, u32_at(data, r + 12) as usize)
            })
            .collect();
        Tables { data, dir }
    }
    fn get(&self, tag: &[u8; 4]) -> Option<&'a [u8]> {
        self.dir.iter().find(|(t, _, _)| t == tag).map(|&(_, o, l)| &self.data[o..o + l])
    }
}

/// Glyph id of a char through a (3,1) format-4 cmap subtable.
fn glyph_of(cmap: &[u8], c: char) -> u16 {
    let c = c as u32;
    if c > 0xFFFF {
        return 0;
    }
    let c = c as u16;
    let n = usize::from(u16_at(cmap, 2));
    let sub = (0..n).map(|i| 4 + 8 * i).find_map(|r| {
        let (platform, encoding) = (u16_at(cmap, r), u16_at(cmap, r + 2));
        let off = u32_at(cmap, r + 4) as usize;
        ((platform, encoding) == (3, 1) && u16_at(cmap, off) == 4).then_some(off)
    });
    let Some(s) = sub else { return 0 };
    let segs = usize::from(u16_at(cmap, s + 6)) / 2;
    let ends = s + 14;
    let starts = ends + 2 * segs + 2;
    let deltas = starts + 2 * segs;
    let ranges = deltas + 2 * segs;
    for k in 0..segs {
        let end = u16_at(cmap, ends + 2 * k);
        if c > end {
            continue;
        }
        let start = u16_at(cmap, starts + 2 * k);
        if c < start {
            return 0;
        }
        let delta = u16_at(cmap, deltas + 2 * k);
        let range = usize::from(u16_at(cmap, ranges + 2 * k));
        if range == 0 {
            return c.wrapping_add(delta);
        }
        let at = ranges + 2 * k + range + 2 * usize::from(c - start);
        let g = u16_at(cmap, at);
        return if g == 0 { 0 } else { g.wrapping_add(delta) };
    }
    0
}

impl Face {
    fn parse(base_font: &str, data: &[u8], serif: bool) -> Option<Face> {
        let t = Tables::new(data);
        let head = t.get(b"head")?;
        let hhea = t.get(b"hhea")?;
        let hmtx = t.get(b"hmtx")?;
        let cmap = t.get(b"cmap")?;
        let post = t.get(b"post")?;
        let os2 = t.get(b"OS/2")?;
        let upem = f32::from(u16_at(head, 18));
        let scale = |v: i16| (f32::from(v) * 1000.0 / upem).round() as i32;
        let metrics = usize::from(u16_at(hhea, 34));
        let advance = |g: u16| u16_at(hmtx, 4 * usize::from(g).min(metrics - 1));
        let mut used = BTreeSet::from([0u16]);
        let widths = (32u8..=255)
            .map(|code| {
                let g = decode(code).map_or(0, |c| glyph_of(cmap, c));
                used.insert(g);
                (f32::from(advance(g)) * 1000.0 / upem).round() as u16
            })
            .collect();
        let cap_height = if u16_at(os2, 0) >= 2 { scale(i16_at(os2, 88)) } else { scale(i16_at(hhea, 4)) * 7 / 10 };
        let program = subset(&t, &used)?;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&program).ok()?;
        Some(Face {
            base_font: base_font.to_string(),
            widths,
            ascent: scale(i16_at(hhea, 4)),
            descent: scale(i16_at(hhea, 6)),
            cap_height,
            bbox: [scale(i16_at(head, 36)), scale(i16_at(head, 38)), scale(i16_at(head, 40)), scale(i16_at(head, 42))],
            fixed_pitch: u32_at(post, 12) != 0,
            serif,
            program: z.finish().ok()?,
            program_len: program.len(),
        })
    }
}

/// The font with the outlines of `used` glyphs only (and the glyphs their composites use); every glyph keeps
/// its id, so the cmap and hmtx stay valid. Tables a PDF renderer does not need (layout, kerning, bitmaps) go.
fn subset(t: &Tables, used: &BTreeSet<u16>) -> Option<Vec<u8>> {
    const KEEP: [&[u8; 4]; 13] = [
        b"OS/2", b"cmap", b"cvt ", b"fpgm", b"gasp", b"glyf", b"head", b"hhea", b"hmtx", b"loca", b"maxp", b"name",
        b"prep",
    ];
    let head = t.get(b"head")?;
    let glyf = t.get(b"glyf")?;
    let loca = t.get(b"loca")?;
    let glyphs = usize::from(u16_at(t.get(b"maxp")?, 4));
    let long = i16_at(head, 50) == 1;
    let offset = |g: usize| if long { u32_at(loca, 4 * g) as usize } else { 2 * usize::from(u16_at(loca, 2 * g)) };
    // Close over composite glyphs' components.
    let mut keep = used.clone();
    let mut todo: Vec<u16> = used.iter().copied().collect();
    while let Some(g) = todo.pop() {
        let (a, b) = (offset(usize::from(g)), offset(usize::from(g) + 1));
        if b <= a || i16_at(glyf, a) >= 0 {
            continue;
        }
        let mut p = a + 10;
        loop {
            let flags = u16_at(glyf, p);
            let component = u16_at(glyf, p + 2);
            if keep.insert(component) {
                todo.push(component);
            }
            p += 4 + if flags & 1 != 0 { 4 } else { 2 };
            p += if flags & 8 != 0 {
                2
            } else if flags & 0x40 != 0 {
                4
            } else if flags & 0x80 != 0 {
                8
            } else {
                0
            };
            if flags & 0x20 == 0 {
                break;
            }
        }
    }
    let mut new_glyf = Vec::new();
    let mut new_loca = Vec::with_capacity(4 * (glyphs + 1));
    for g in 0..glyphs {
        new_loca.extend((new_glyf.len() as u32).to_be_bytes());
        if keep.contains(&(g as u16)) {
            new_glyf.extend(&glyf[offset(g)..offset(g + 1)]);
            while new_glyf.len() % 4 != 0 {
                new_glyf.push(0);
            }
        }
    }
    new_loca.extend((new_glyf.len() as u32).to_be_bytes());
    let mut new_head = head.to_vec();
    new_head[8..12].copy_from_slice(&[0; 4]); // checkSumAdjustment, set below
    new_head[50..52].copy_from_slice(&1i16.to_be_bytes()); // long loca
    let mut tables: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    for tag in KEEP {
        let data = match tag {
            b"glyf" => new_glyf.clone(),
            b"loca" => new_loca.clone(),
            b"head" => new_head.clone(),
            _ => match t.get(tag) {
                Some(d) => d.to_vec(),
                None => continue,
            },
        };
        tables.push((*tag, data));
    }
    let n = tables.len() as u16;
    let entry_selector = 15 - n.leading_zeros() as u16;
    let search_range = 16 * (1u16 << entry_selector);
    let mut out = Vec::new();
    out.extend(0x0001_0000u32.to_be_bytes());
    for v in [n, search_range, entry_selector, 16 * n - search_range] {
        out.extend(v.to_be_bytes());
    }
    let mut offset = 12 + 16 * tables.len();
    let mut body = Vec::new();
    let mut head_at = 0;
    for (tag, data) in &tables {
        if tag == b"head" {
            head_at = offset;
        }
        out.extend(tag);
        out.extend(checksum(data).to_be_bytes());
        out.extend((offset as u32).to_be_bytes());
        out.extend((data.len() as u32).to_be_bytes());
        body.extend(data);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        offset = 12 + 16 * tables.len() + body.len();
    }
    out.extend(body);
    let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
    out[head_at + 8..head_at + 12].copy_from_slice(&adjustment.to_be_bytes());
    Some(out)
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        sum.wrapping_add(u32::from_be_bytes(w))
    })
}
