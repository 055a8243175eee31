//! A PDF's embedded images that may be codes, read from its bytes without `pdfimages`: each image XObject square
//! enough and big enough (`decode::square_enough`) has its stream decoded here and turned into grey levels.
//!
//! Starting `pdfimages` and having it write every image as a file took most of the time of reading a PDF whose
//! code is an image, far more than the code's few kilobytes of pixels need. What is read here covers what PDF
//! writers put a code in: unfiltered, Flate (with PNG or TIFF predictors) and JPEG streams; grey, RGB, CMYK,
//! ICC-based and indexed colours, image masks, 1 to 16 bits a sample, an inverting `/Decode`. Anything else (LZW,
//! CCITT, JBIG2 and JPEG 2000 streams, Lab, Separation and DeviceN colours, a JPEG in CMYK, an encrypted file, a
//! damaged stream, an image larger than `MAX_PIXELS`) is `Unread`, and the PDF goes to `pdfimages` as before.

use std::collections::HashMap;
use std::io::Read;

use super::decode::{grey, rgb_luma, square_enough};
use super::pdf_objects::{Dict, Obj, Objects};

/// The largest image decoded here, in pixels (4000 × 4000): a larger one goes to `pdfimages`, as before.
const MAX_PIXELS: u64 = 16_000_000;
/// The most bytes an image's samples may take here (a 4000 × 4000 RGB image takes 48 MB): the jail's memory
/// is limited, and running out of it ends the whole reading, not just this shortcut.
const MAX_SAMPLE_BYTES: usize = 48_000_000;
/// More candidate images than this in one file go to `pdfimages` too: no invoice carries so many codes.
const MAX_IMAGES: usize = 32;

/// A decoded image that may be a code, and the object it came from.
#[derive(Debug)]
pub struct CodeImage {
    pub object: u32,
    pub image: image::GrayImage,
}

/// Why an image was not read here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unread {
    /// Something this reader does not implement: `pdfimages` reads it.
    #[error("not read here: {0}")]
    Unsupported(String),
    /// The file contradicts itself (a stream shorter than its image, an unknown predictor byte).
    #[error("damaged: {0}")]
    Damaged(String),
}

fn unsupported(what: impl Into<String>) -> Unread {
    Unread::Unsupported(what.into())
}

fn damaged(what: impl Into<String>) -> Unread {
    Unread::Damaged(what.into())
}

/// Every image of `bytes` that may be a code, decoded to grey levels, in the file's order; `Unread` when one of
/// them cannot be read here.
pub fn code_images(bytes: &[u8]) -> Result<Vec<CodeImage>, Unread> {
    code_images_in(bytes, &Objects::index(bytes))
}

/// `code_images` of a file whose objects are already indexed.
pub(super) fn code_images_in<'a>(bytes: &'a [u8], objects: &Objects<'a>) -> Result<Vec<CodeImage>, Unread> {
    planned(bytes, objects)?.into_iter().map(|p| Ok(CodeImage { object: p.object, image: p.decode()? })).collect()
}

/// How many images of `bytes` may be codes, when every one can be read here. Only the dictionaries are looked
/// at, not the data: cheap enough to decide at once whether `pdfimages` must run.
pub fn readable(bytes: &[u8]) -> Result<usize, Unread> {
    planned(bytes, &Objects::index(bytes)).map(|p| p.len())
}

/// The number of pages of `bytes` (up to `max_pages + 1`) and the pages (1-based) that draw each image, by the
/// image's object number; `None` when the page tree cannot be walked here (it is in an object stream).
pub fn image_pages(bytes: &[u8], max_pages: u32) -> Option<(u32, HashMap<u32, Vec<u32>>)> {
    Objects::index(bytes).image_pages(max_pages)
}

/// The images that may be codes, each with what decoding it takes.
fn planned<'a>(bytes: &'a [u8], objects: &Objects<'a>) -> Result<Vec<Plan<'a>>, Unread> {
    // Every string and stream of an encrypted file is encrypted (ISO 32000-1 §7.6).
    if memchr::memmem::find(bytes, b"/Encrypt").is_some() {
        return Err(unsupported("an encrypted file"));
    }
    let mut plans = Vec::new();
    for object in objects.images() {
        let dict = objects.get(object);
        let dict = dict.as_ref().and_then(Obj::as_dict).ok_or_else(|| damaged(format!("image {object} is lost")))?;
        let size = |key: &[u8]| {
            dict.get(key)
                .and_then(|v| objects.resolve(v))
                .and_then(|v| v.as_int())
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| damaged(format!("image {object} has no {}", String::from_utf8_lossy(key))))
        };
        let (width, height) = (size(b"Width")?, size(b"Height")?);
        if !square_enough(width, height) {
            continue;
        }
        if u64::from(width) * u64::from(height) > MAX_PIXELS {
            return Err(unsupported(format!("an image of {width} × {height} pixels")));
        }
        if plans.len() == MAX_IMAGES {
            return Err(unsupported(format!("more than {MAX_IMAGES} images that may be codes")));
        }
        // The data is looked for only now: finding a stream whose length is wrong means a search to its end.
        let (dict, data) = objects.stream(object).ok_or_else(|| damaged(format!("image {object} has no stream")))?;
        plans.push(Plan::of(objects, object, &dict, data, width, height)?);
    }
    Ok(plans)
}

/// How an image's samples become grey levels.
#[derive(Debug, Clone, PartialEq)]
enum Colours {
    Gray,
    Rgb,
    Cmyk,
    /// A palette, each entry already turned grey.
    Indexed(Vec<u8>),
    /// An image mask (§8.9.6.2): a clear sample paints, unless `/Decode [1 0]` says a set one does.
    Mask,
}

impl Colours {
    fn components(&self) -> usize {
        match self {
            Colours::Rgb => 3,
            Colours::Cmyk => 4,
            _ => 1,
        }
    }
}

/// The grey level of one pixel of `colours`, each sample 0–255.
fn luma(colours: &Colours, px: &[u8]) -> u8 {
    match colours {
        Colours::Rgb => rgb_luma(px[0], px[1], px[2]),
        Colours::Cmyk => cmyk_luma(px),
        _ => px[0],
    }
}

/// CMYK as the RGB it prints without a profile (ISO 32000-1 §10.3.5), then grey.
fn cmyk_luma(px: &[u8]) -> u8 {
    let ink = |c: u8| 255 - (u16::from(c) + u16::from(px[3])).min(255) as u8;
    rgb_luma(ink(px[0]), ink(px[1]), ink(px[2]))
}

/// The stream's filter.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Filter {
    None,
    Flate(Predictor),
    Dct,
}

/// A Flate stream's predictor (§7.4.4.4): 1 none, 2 TIFF, 10–15 PNG.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Predictor {
    kind: i64,
    colors: i64,
    bits: i64,
    columns: i64,
}

/// One image, ready to be decoded.
struct Plan<'a> {
    object: u32,
    data: &'a [u8],
    width: u32,
    height: u32,
    filter: Filter,
    colours: Colours,
    bits: usize,
    /// `/Decode` swaps each sample's range end for end (`[1 0]`).
    inverted: bool,
}

impl<'a> Plan<'a> {
    fn of(
        objects: &Objects,
        object: u32,
        dict: &Dict,
        data: &'a [u8],
        width: u32,
        height: u32,
    ) -> Result<Self, Unread> {
        let get = |key: &[u8]| dict.get(key).and_then(|v| objects.resolve(v)).map(|v| v.into_owned());
        let filter = filter(objects, get(b"Filter"), get(b"DecodeParms"))?;
        let mask = get(b"ImageMask") == Some(Obj::Bool(true));
        let colours = match get(b"ColorSpace") {
            _ if mask => Colours::Mask,
            Some(space) => colour_space(objects, &space, 0)?,
            None => return Err(damaged(format!("image {object} has no colour space"))),
        };
        let bits = match (filter, get(b"BitsPerComponent")) {
            (Filter::Dct, _) => 8,
            (_, _) if mask => 1,
            (_, Some(Obj::Int(b @ (1 | 2 | 4 | 8 | 16)))) => b as usize,
            (_, b) => return Err(unsupported(format!("{b:?} bits a sample"))),
        };
        let top = match colours {
            Colours::Indexed(_) => ((1u32 << bits) - 1) as f64,
            _ => 1.0,
        };
        let inverted = match get(b"Decode") {
            None => false,
            Some(d) => inverted(&d, top, colours.components())?,
        };
        let row = (width as usize * colours.components() * bits).div_ceil(8);
        if (row + 1) * height as usize > MAX_SAMPLE_BYTES {
            return Err(unsupported(format!("an image of {width} × {height} pixels of {bits}-bit samples")));
        }
        match (filter, &colours) {
            (Filter::Dct, Colours::Gray | Colours::Rgb) => {}
            (Filter::Dct, other) => return Err(unsupported(format!("a JPEG in {other:?}"))),
            (Filter::Flate(p), _) if p.kind == 1 => {}
            (Filter::Flate(p), _) => {
                let comps = colours.components() as i64;
                if (p.colors, p.bits, p.columns) != (comps, bits as i64, i64::from(width)) {
                    return Err(unsupported(format!("a predictor for other samples than the image's: {p:?}")));
                }
                if p.kind == 2 && bits != 8 {
                    return Err(unsupported(format!("the TIFF predictor on {bits}-bit samples")));
                }
            }
            (Filter::None, _) => {}
        }
        Ok(Plan { object, data, width, height, filter, colours, bits, inverted })
    }

    fn decode(&self) -> Result<image::GrayImage, Unread> {
        if self.filter == Filter::Dct {
            return self.jpeg();
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let comps = self.colours.components();
        let row = (w * comps * self.bits).div_ceil(8);
        let raw = match self.filter {
            Filter::Flate(p) if p.kind >= 10 => {
                let encoded = inflate(self.data, (row + 1) * h)?;
                unpredict_png(&encoded, row, (comps * self.bits).div_ceil(8))?
            }
            Filter::Flate(p) => {
                let mut raw = inflate(self.data, row * h)?;
                if p.kind == 2 {
                    for line in raw.chunks_exact_mut(row) {
                        for i in comps..row {
                            line[i] = line[i].wrapping_add(line[i - comps]);
                        }
                    }
                }
                raw
            }
            _ if self.data.len() < row * h => return Err(damaged("an image stream shorter than its image")),
            _ => self.data[..row * h].to_vec(),
        };
        Ok(self.grey_levels(&raw, row))
    }

    /// A JPEG stream, decoded by the `image` crate within the size the dictionary declares.
    fn jpeg(&self) -> Result<image::GrayImage, Unread> {
        let mut reader = image::ImageReader::with_format(std::io::Cursor::new(self.data), image::ImageFormat::Jpeg);
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.width);
        limits.max_image_height = Some(self.height);
        limits.max_alloc = Some(MAX_PIXELS * 4);
        reader.limits(limits);
        let img = reader.decode().map_err(|e| damaged(format!("JPEG: {e}")))?;
        if (img.width(), img.height()) != (self.width, self.height) {
            return Err(damaged("a JPEG of another size than its image"));
        }
        let mut g = grey(img);
        if self.inverted {
            g.iter_mut().for_each(|p| *p = 255 - *p);
        }
        Ok(g)
    }

    /// The grey image of `raw` samples, `row` bytes a line.
    fn grey_levels(&self, raw: &[u8], row: usize) -> image::GrayImage {
        let (w, h) = (self.width as usize, self.height as usize);
        let comps = self.colours.components();
        // Each sample value (16-bit samples by their high byte) to its level 0–255, `/Decode` applied.
        let top = if self.bits == 16 { 255 } else { (1usize << self.bits) - 1 };
        let mut level = [0u8; 256];
        for (v, l) in level.iter_mut().enumerate().take(top + 1) {
            let v = if self.inverted { top - v } else { v };
            *l = match &self.colours {
                Colours::Indexed(palette) => palette[v.min(palette.len() - 1)],
                Colours::Mask if v == 0 => 0,
                Colours::Mask => 255,
                _ => (v * 255 / top) as u8,
            };
        }
        let mut samples = vec![0u8; w * comps];
        let mut out = Vec::with_capacity(w * h);
        for line in raw.chunks_exact(row).take(h) {
            match self.bits {
                8 => samples.iter_mut().zip(line).for_each(|(s, &v)| *s = level[usize::from(v)]),
                16 => samples.iter_mut().zip(line.chunks_exact(2)).for_each(|(s, v)| *s = level[usize::from(v[0])]),
                bits => {
                    for (i, s) in samples.iter_mut().enumerate() {
                        let bit = i * bits;
                        *s = level[usize::from((line[bit / 8] >> (8 - bits - bit % 8)) & top as u8)];
                    }
                }
            }
            match &self.colours {
                Colours::Rgb => out.extend(samples.chunks_exact(3).map(|p| rgb_luma(p[0], p[1], p[2]))),
                Colours::Cmyk => out.extend(samples.chunks_exact(4).map(cmyk_luma)),
                _ => out.extend_from_slice(&samples),
            }
        }
        image::GrayImage::from_raw(self.width, self.height, out).expect("one grey level a pixel")
    }
}

/// The filter of an image stream and its parameters.
fn filter(objects: &Objects, filter: Option<Obj>, parms: Option<Obj>) -> Result<Filter, Unread> {
    let one = |o: Option<Obj>| -> Result<Option<Obj>, Unread> {
        match o {
            Some(Obj::Array(mut a)) if a.len() <= 1 => Ok(a.pop()),
            Some(Obj::Array(_)) => Err(unsupported("a chain of filters")),
            Some(Obj::Null) | None => Ok(None),
            other => Ok(other),
        }
    };
    let Some(name) = one(filter)? else { return Ok(Filter::None) };
    match name.as_name() {
        Some(b"FlateDecode" | b"Fl") => {}
        Some(b"DCTDecode" | b"DCT") => return Ok(Filter::Dct),
        _ => return Err(unsupported(format!("the filter {name:?}"))),
    }
    let parms = match one(parms)? {
        Some(p) => objects.resolve(&p).map(|p| p.into_owned()),
        None => None,
    };
    let value = |key: &[u8], default: i64| {
        parms.as_ref().and_then(Obj::as_dict).and_then(|d| d.get(key)).and_then(Obj::as_int).unwrap_or(default)
    };
    let p = Predictor {
        kind: value(b"Predictor", 1),
        colors: value(b"Colors", 1),
        bits: value(b"BitsPerComponent", 8),
        columns: value(b"Columns", 1),
    };
    match p.kind {
        1 | 2 | 10..=15 => Ok(Filter::Flate(p)),
        other => Err(unsupported(format!("predictor {other}"))),
    }
}

/// Does `/Decode` invert every component? Only the identity and the inversion are read here.
fn inverted(decode: &Obj, top: f64, components: usize) -> Result<bool, Unread> {
    let d: Option<Vec<f64>> = decode.as_array().map(|a| a.iter().filter_map(Obj::as_number).collect());
    let d = d.filter(|d| d.len() == 2 * components).ok_or_else(|| damaged(format!("/Decode {decode:?}")))?;
    let is = |a: f64, b: f64| d.chunks(2).all(|p| (p[0] - a).abs() < 1e-6 && (p[1] - b).abs() < 1e-6);
    if is(0.0, top) {
        Ok(false)
    } else if is(top, 0.0) {
        Ok(true)
    } else {
        Err(unsupported(format!("/Decode {d:?}")))
    }
}

/// The colour space `space` (a name, an array, a reference to either), read as grey levels.
fn colour_space(objects: &Objects, space: &Obj, depth: usize) -> Result<Colours, Unread> {
    let space = objects.resolve(space).ok_or_else(|| unsupported("a colour space not found in the file"))?;
    let (family, args) = match &*space {
        Obj::Name(n) => (n.as_slice(), &[][..]),
        Obj::Array(a) => match a.split_first() {
            Some((Obj::Name(n), args)) => (n.as_slice(), args),
            _ => return Err(damaged(format!("colour space {space:?}"))),
        },
        _ => return Err(damaged(format!("colour space {space:?}"))),
    };
    match family {
        b"DeviceGray" | b"G" | b"CalGray" => Ok(Colours::Gray),
        b"DeviceRGB" | b"RGB" | b"CalRGB" => Ok(Colours::Rgb),
        b"DeviceCMYK" | b"CMYK" => Ok(Colours::Cmyk),
        b"ICCBased" => {
            let Some(Obj::Ref(profile)) = args.first() else { return Err(damaged("an ICC profile not a stream")) };
            let n = objects.get(*profile).and_then(|p| p.as_dict().and_then(|d| d.get(b"N")).and_then(Obj::as_int));
            match n {
                Some(1) => Ok(Colours::Gray),
                Some(3) => Ok(Colours::Rgb),
                Some(4) => Ok(Colours::Cmyk),
                other => Err(unsupported(format!("an ICC profile of {other:?} components"))),
            }
        }
        b"Indexed" | b"I" if depth == 0 => {
            let [base, hival, lookup] = args else { return Err(damaged("an indexed colour space of wrong length")) };
            let base = colour_space(objects, base, depth + 1)?;
            let entries = match objects.resolve(hival).as_deref() {
                Some(Obj::Int(h @ 0..=255)) => *h as usize + 1,
                other => return Err(damaged(format!("an indexed colour space's hival {other:?}"))),
            };
            let n = base.components();
            let table = palette_bytes(objects, lookup, entries * n)?;
            Ok(Colours::Indexed(table.chunks_exact(n).take(entries).map(|px| luma(&base, px)).collect()))
        }
        other => Err(unsupported(format!("the colour space {}", String::from_utf8_lossy(other)))),
    }
}

/// An indexed colour space's lookup table, `len` bytes: a string, or a stream (§8.6.6.3).
fn palette_bytes(objects: &Objects, lookup: &Obj, len: usize) -> Result<Vec<u8>, Unread> {
    let bytes = match lookup {
        Obj::Str(s) => s.clone(),
        Obj::Ref(n) => {
            let (dict, data) = objects.stream(*n).ok_or_else(|| damaged("a palette not found in the file"))?;
            match filter(objects, dict.get(b"Filter").cloned(), None)? {
                Filter::None => data.to_vec(),
                Filter::Flate(_) => inflate(data, len)?,
                Filter::Dct => return Err(unsupported("a palette in a JPEG")),
            }
        }
        other => return Err(damaged(format!("palette {other:?}"))),
    };
    if bytes.len() < len {
        return Err(damaged("a palette shorter than its entries"));
    }
    Ok(bytes)
}

/// The first `len` bytes `data` inflates to (zlib, RFC 1950); never more, so no stream can inflate past its
/// image. A stream that ends early is damaged; one whose checksum is wrong after `len` bytes is read anyway.
fn inflate(data: &[u8], len: usize) -> Result<Vec<u8>, Unread> {
    // Room for what the data can plausibly hold, not for what a hostile dictionary claims.
    let mut out = Vec::with_capacity(len.min(data.len().saturating_mul(8)));
    let _ = flate2::read::ZlibDecoder::new(data).take(len as u64).read_to_end(&mut out);
    if out.len() < len {
        return Err(damaged(format!("a Flate stream of {} bytes where {len} are needed", out.len())));
    }
    Ok(out)
}

/// Rows filtered by PNG predictors (RFC 2083 §6), each a tag byte and `row` bytes, back to plain rows; `bpp` is
/// the distance in bytes to the same sample of the pixel on the left.
fn unpredict_png(encoded: &[u8], row: usize, bpp: usize) -> Result<Vec<u8>, Unread> {
    let lines = encoded.len() / (row + 1);
    let mut out = vec![0u8; row * lines];
    let zero = vec![0u8; row];
    for (y, line) in encoded.chunks_exact(row + 1).enumerate() {
        let (done, rest) = out.split_at_mut(y * row);
        let up = if y == 0 { &zero[..] } else { &done[(y - 1) * row..] };
        let cur = &mut rest[..row];
        let src = &line[1..];
        match line[0] {
            0 => cur.copy_from_slice(src),
            1 => {
                cur[..bpp.min(row)].copy_from_slice(&src[..bpp.min(row)]);
                for i in bpp..row {
                    cur[i] = src[i].wrapping_add(cur[i - bpp]);
                }
            }
            2 => {
                for i in 0..row {
                    cur[i] = src[i].wrapping_add(up[i]);
                }
            }
            3 => {
                for i in 0..row {
                    let left = if i >= bpp { u16::from(cur[i - bpp]) } else { 0 };
                    cur[i] = src[i].wrapping_add(((left + u16::from(up[i])) / 2) as u8);
                }
            }
            4 => {
                for i in 0..row {
                    let (a, c) = if i >= bpp { (cur[i - bpp], up[i - bpp]) } else { (0, 0) };
                    cur[i] = src[i].wrapping_add(paeth(a, up[i], c));
                }
            }
            tag => return Err(damaged(format!("PNG predictor tag {tag}"))),
        }
    }
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = ((p - i16::from(a)).abs(), (p - i16::from(b)).abs(), (p - i16::from(c)).abs());
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

#[cfg(test)]
#[path = "pdf_images_tests.rs"]
pub(super) mod tests;
