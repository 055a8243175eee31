//! The image reader on PDFs made here, each around one code image encoded the way a PDF writer would.

use super::*;
use crate::extract::qr::decode::in_code_image;
use flate2::{write::ZlibEncoder, Compression};
use std::io::Write;

pub(in crate::extract::qr) const PAYLOAD: &str =
    "BCD\n002\n1\nSCT\n\nBeispiel AG\nDE02100500000054540402\nEUR12.50\n\n\nRechnung 2024-17";

/// The code of `PAYLOAD`, `scale` pixels a module, inside a quiet zone of four modules: its side in pixels and
/// whether each pixel is dark.
fn code(scale: usize) -> (usize, Vec<bool>) {
    let code = qrcode::QrCode::new(PAYLOAD.as_bytes()).expect("the payload fits a code");
    let n = code.width();
    let dark: Vec<bool> = code.to_colors().iter().map(|c| *c == qrcode::Color::Dark).collect();
    let side = (n + 8) * scale;
    let module = |i: usize| (i % side / scale, i / side / scale);
    let pixels = (0..side * side)
        .map(module)
        .map(|(x, y)| (4..n + 4).contains(&x) && (4..n + 4).contains(&y) && dark[(y - 4) * n + x - 4])
        .collect();
    (side, pixels)
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// Rows of `row` bytes filtered by PNG predictors, row `y` by predictor `y % 5`, so that every one is used.
fn png_rows(raw: &[u8], row: usize, bpp: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let zero = vec![0u8; row];
    for (y, cur) in raw.chunks(row).enumerate() {
        let up = if y == 0 { &zero[..] } else { &raw[(y - 1) * row..y * row] };
        let left = |i: usize| if i >= bpp { cur[i - bpp] } else { 0 };
        let corner = |i: usize| if i >= bpp { up[i - bpp] } else { 0 };
        let tag = (y % 5) as u8;
        out.push(tag);
        out.extend((0..row).map(|i| {
            let guess = match tag {
                0 => 0,
                1 => left(i),
                2 => up[i],
                3 => ((u16::from(left(i)) + u16::from(up[i])) / 2) as u8,
                _ => paeth(left(i), up[i], corner(i)),
            };
            cur[i].wrapping_sub(guess)
        }));
    }
    out
}

/// Pixels packed one bit each, rows padded to a byte.
fn bits(side: usize, set: impl Fn(usize) -> bool) -> Vec<u8> {
    let row = side.div_ceil(8);
    let mut out = vec![0u8; row * side];
    for i in (0..side * side).filter(|&i| set(i)) {
        out[i / side * row + i % side / 8] |= 0x80 >> (i % side % 8);
    }
    out
}

/// A PDF of `pages` pages whose page `on` draws the image object 4, made of `dict` (its `/Length` added unless
/// given) and `data`; `extra` holds more objects, numbered 5 to 9.
fn pdf_on(pages: usize, on: usize, dict: &str, data: &[u8], extra: &[u8]) -> Vec<u8> {
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 10 + i)).collect();
    let mut pdf = format!(
        "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n\
         2 0 obj\n<< /Type /Pages /Kids [{}] /Count {pages} >>\nendobj\n",
        kids.join(" ")
    )
    .into_bytes();
    for i in 0..pages {
        let xobject = if i + 1 == on { "/XObject << /Im0 4 0 R >>" } else { "" };
        pdf.extend(
            format!("{} 0 obj\n<< /Type /Page /Parent 2 0 R /Resources << {xobject} >> >>\nendobj\n", 10 + i).bytes(),
        );
    }
    let length = if dict.contains("/Length") { String::new() } else { format!(" /Length {}", data.len()) };
    pdf.extend(format!("4 0 obj\n<< /Type /XObject /Subtype /Image {dict}{length} >>\nstream\n").bytes());
    pdf.extend(data);
    pdf.extend(b"\nendstream\nendobj\n");
    pdf.extend(extra);
    pdf.extend(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    pdf
}

/// A PDF of `pages` pages whose page `on` draws the code of `PAYLOAD`, an unfiltered grey image.
pub(in crate::extract::qr) fn code_pdf(pages: usize, on: usize) -> Vec<u8> {
    let (side, dark) = code(2);
    let raw: Vec<u8> = dark.iter().map(|&d| if d { 0 } else { 255 }).collect();
    let dict = format!("/Width {side} /Height {side} /ColorSpace /DeviceGray /BitsPerComponent 8");
    pdf_on(pages, on, &dict, &raw, b"")
}

fn pdf(dict: &str, data: &[u8]) -> Vec<u8> {
    pdf_on(1, 1, dict, data, b"")
}

/// Are these the grey levels wanted? (Said briefly: an image has thousands.)
fn same(img: &image::GrayImage, want: &[u8]) {
    let wrong = img.as_raw().iter().zip(want).filter(|(a, b)| a != b).count();
    let first = img.as_raw().iter().zip(want).position(|(a, b)| a != b);
    assert!(img.len() == want.len() && wrong == 0, "{wrong} of {} pixels differ, the first at {first:?}", want.len());
}

/// The dictionary of a grey image of 8-bit samples, `side` pixels square, compressed by Flate after PNG
/// predictors.
fn grey_png_dict(side: usize) -> String {
    format!(
        "/Width {side} /Height {side} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode \
         /DecodeParms << /Predictor 15 /Colors 1 /BitsPerComponent 8 /Columns {side} >>"
    )
}

/// The one image of `pdf`, read here.
fn read(pdf: &[u8]) -> image::GrayImage {
    assert_eq!(readable(pdf), Ok(1));
    let mut images = code_images(pdf).unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].object, 4);
    images.pop().unwrap().image
}

#[test]
fn a_grey_flate_image_with_png_predictors_is_read_exactly_and_its_code_decoded() {
    let (side, dark) = code(3);
    let raw: Vec<u8> = dark.iter().map(|&d| if d { 20 } else { 235 }).collect();
    let dict = grey_png_dict(side);
    let img = read(&pdf(&dict, &zlib(&png_rows(&raw, side, 1))));
    assert_eq!(img.dimensions(), (side as u32, side as u32));
    same(&img, &raw);
    assert_eq!(in_code_image(&img), [PAYLOAD]);
}

#[test]
fn an_rgb_image_is_read_as_grey_levels_with_either_predictor() {
    let (side, dark) = code(2);
    let (ink, paper) = ([10u8, 20, 120], [255u8, 250, 200]);
    let raw: Vec<u8> = dark.iter().flat_map(|&d| if d { ink } else { paper }).collect();
    let luma = |p: [u8; 3]| ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8;
    let want: Vec<u8> = dark.iter().map(|&d| luma(if d { ink } else { paper })).collect();
    let png = format!(
        "/Width {side} /Height {side} /ColorSpace [/CalRGB << /WhitePoint [0.9505 1 1.089] >>] /BitsPerComponent 8 \
         /Filter [/FlateDecode] /DecodeParms [<< /Predictor 12 /Colors 3 /Columns {side} >>]"
    );
    let img = read(&pdf(&png, &zlib(&png_rows(&raw, 3 * side, 3))));
    same(&img, &want);
    assert_eq!(in_code_image(&img), [PAYLOAD]);
    // The TIFF predictor: each sample less the same sample of the pixel on its left.
    let tiff: Vec<u8> = raw
        .chunks(3 * side)
        .flat_map(|row| (0..row.len()).map(move |i| if i < 3 { row[i] } else { row[i].wrapping_sub(row[i - 3]) }))
        .collect();
    let dict = format!(
        "/Width {side} /Height {side} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode \
         /DecodeParms << /Predictor 2 /Colors 3 /Columns {side} >>"
    );
    same(&read(&pdf(&dict, &zlib(&tiff))), &want);
}

#[test]
fn an_indexed_image_of_one_bit_samples_is_read_through_its_palette() {
    let (side, dark) = code(3);
    let indices = bits(side, |i| dark[i]);
    let row = side.div_ceil(8);
    // The palette as a hex string: entry 0 is paper (255 255 240, grey 253), entry 1 ink (16 16 96, grey 25).
    let want: Vec<u8> = dark.iter().map(|&d| if d { 25 } else { 253 }).collect();
    let dict = format!(
        "/Width {side} /Height {side} /ColorSpace [/Indexed /DeviceRGB 1 <FFFFF0 101060>] /BitsPerComponent 1 \
         /Filter /FlateDecode /DecodeParms << /Predictor 15 /Colors 1 /BitsPerComponent 1 /Columns {side} >>"
    );
    let img = read(&pdf(&dict, &zlib(&png_rows(&indices, row, 1))));
    same(&img, &want);
    assert_eq!(in_code_image(&img), [PAYLOAD]);
    // The colour space in an object of its own, the palette a compressed stream, over a grey ICC-based base.
    let palette = zlib(&[255, 16]);
    let extra = [
        b"5 0 obj\n[/Indexed [/ICCBased 6 0 R] 1 7 0 R]\nendobj\n".as_slice(),
        b"6 0 obj\n<< /N 1 /Length 0 >>\nstream\n\nendstream\nendobj\n",
        format!("7 0 obj\n<< /Filter /FlateDecode /Length {} >>\nstream\n", palette.len()).as_bytes(),
        &palette,
        b"\nendstream\nendobj\n",
    ]
    .concat();
    let dict = format!("/Width {side} /Height {side} /ColorSpace 5 0 R /BitsPerComponent 1");
    let img = read(&pdf_on(1, 1, &dict, &indices, &extra));
    same(&img, &dark.iter().map(|&d| if d { 16 } else { 255 }).collect::<Vec<_>>());
}

#[test]
fn a_jpeg_image_is_decoded() {
    let (side, dark) = code(4);
    let raw: Vec<u8> = dark.iter().map(|&d| if d { 0 } else { 255 }).collect();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode(&raw, side as u32, side as u32, image::ExtendedColorType::L8)
        .unwrap();
    let dict = format!("/Width {side} /Height {side} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode");
    let img = read(&pdf(&dict, &jpeg));
    assert_eq!(img.dimensions(), (side as u32, side as u32));
    assert_eq!(in_code_image(&img), [PAYLOAD]);
    // A JPEG in CMYK is left to pdfimages.
    let cmyk = dict.replace("DeviceGray", "DeviceCMYK");
    assert!(matches!(readable(&pdf(&cmyk, &jpeg)), Err(Unread::Unsupported(_))));
}

#[test]
fn an_image_mask_and_an_inverting_decode_array_paint_the_set_samples() {
    let (side, dark) = code(3);
    let want: Vec<u8> = dark.iter().map(|&d| if d { 0 } else { 255 }).collect();
    // A mask paints its clear samples; `/Decode [1 0]` its set ones.
    let set_is_ink = bits(side, |i| dark[i]);
    let mask = format!("/Width {side} /Height {side} /ImageMask true /Decode [1 0]");
    same(&read(&pdf(&mask, &set_is_ink)), &want);
    let clear_is_ink = bits(side, |i| !dark[i]);
    let mask = format!("/Width {side} /Height {side} /ImageMask true");
    same(&read(&pdf(&mask, &clear_is_ink)), &want);
    // A grey image whose samples are inverted by `/Decode`, with 4 bits a sample.
    let nibbles: Vec<u8> = (0..side)
        .flat_map(|y| bits_of_4(&dark[y * side..(y + 1) * side].iter().map(|&d| u8::from(d) * 15).collect::<Vec<_>>()))
        .collect();
    let grey = format!("/Width {side} /Height {side} /ColorSpace /DeviceGray /BitsPerComponent 4 /Decode [1 0]");
    same(&read(&pdf(&grey, &nibbles)), &want);
}

/// Samples of 4 bits packed two a byte, the row padded.
fn bits_of_4(samples: &[u8]) -> Vec<u8> {
    samples.chunks(2).map(|p| p[0] << 4 | p.get(1).copied().unwrap_or(0)).collect()
}

#[test]
fn a_length_given_by_reference_is_resolved() {
    let (side, dark) = code(2);
    let mut raw: Vec<u8> = dark.iter().map(|&d| if d { 0 } else { 255 }).collect();
    // The data holds the word that ends a stream: only its length tells where it ends.
    raw[..9].copy_from_slice(b"endstream");
    let extra = format!("9 0 obj\n{}\nendobj\n", raw.len());
    let dict = format!("/Width {side} /Height {side} /ColorSpace /DeviceGray /BitsPerComponent 8 /Length 9 0 R");
    same(&read(&pdf_on(1, 1, &dict, &raw, extra.as_bytes())), &raw);
}

#[test]
fn a_truncated_or_corrupt_stream_is_refused_and_left_to_pdfimages() {
    let (side, dark) = code(2);
    let raw: Vec<u8> = dark.iter().map(|&d| if d { 0 } else { 255 }).collect();
    let dict = grey_png_dict(side);
    let stream = zlib(&png_rows(&raw, side, 1));
    let damaged = [
        stream[..stream.len() / 2].to_vec(),
        stream.iter().map(|b| b ^ 0x5a).collect(),
        zlib(&png_rows(&raw, side, 1).iter().map(|&b| if b < 5 { 7 } else { b }).collect::<Vec<_>>()),
        zlib(&raw[..raw.len() / 3]),
    ];
    for data in damaged {
        let pdf = pdf(&dict, &data);
        // The dictionary promises a readable image; its data breaks the promise.
        assert_eq!(readable(&pdf), Ok(1));
        assert!(matches!(code_images(&pdf), Err(Unread::Damaged(_))), "{:?}", code_images(&pdf).map(|v| v.len()));
    }
    let unfiltered = format!("/Width {side} /Height {side} /ColorSpace /DeviceGray /BitsPerComponent 8");
    assert!(matches!(code_images(&pdf(&unfiltered, &raw[..100])), Err(Unread::Damaged(_))));
}

#[test]
fn what_is_not_read_here_is_said_before_any_data_is_decoded() {
    let square = "/Width 100 /Height 100 /BitsPerComponent 1";
    for dict in [
        format!("{square} /ColorSpace /DeviceGray /Filter /JBIG2Decode"),
        format!("{square} /ColorSpace /DeviceGray /Filter /CCITTFaxDecode"),
        format!("{square} /ColorSpace [/Separation /Black /DeviceCMYK 5 0 R]"),
        format!("{square} /ColorSpace /DeviceGray /Filter [/ASCII85Decode /FlateDecode]"),
        format!("{square} /ColorSpace /DeviceGray /Decode [0.2 0.8]"),
        "/Width 5000 /Height 5000 /ColorSpace /DeviceGray /BitsPerComponent 8".to_string(),
    ] {
        assert!(matches!(readable(&pdf(&dict, b"")), Err(Unread::Unsupported(_))), "{dict}");
    }
    // An encrypted file's streams are encrypted.
    let mut encrypted = pdf(&format!("{square} /ColorSpace /DeviceGray"), &[0; 1300]);
    encrypted.extend(b"trailer << /Root 1 0 R /Encrypt 8 0 R >>");
    assert!(matches!(readable(&encrypted), Err(Unread::Unsupported(_))));
    // A logo (far from square) is no code: what it is made of does not matter.
    let logo = pdf("/Width 600 /Height 120 /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /JBIG2Decode", b"");
    assert_eq!(readable(&logo), Ok(0));
    assert!(code_images(&logo).unwrap().is_empty());
}

#[test]
fn the_page_that_draws_a_code_image_is_known() {
    let pdf = code_pdf(3, 2);
    let (count, drawn) = image_pages(&pdf, 50).unwrap();
    assert_eq!(count, 3);
    assert_eq!(drawn[&4], [2]);
}
