//! A structural look at an image before the sandbox opens it: the headers and the page table (TIFF IFDs, PNG
//! chunks, JPEG segments) must fit in the file and must not loop. A 772-byte TIFF whose IFD points to itself
//! keeps the image library busy until the sandbox's timeout; here it is refused in microseconds, and the
//! supplier is told the file is damaged.
//!
//! Pure code: bytes in, a verdict out. Files that are not TIFF, PNG or JPEG pass untouched.

/// More pages than this in one TIFF is not an invoice (and a cheap bound on the walk).
const MAX_TIFF_PAGES: usize = 1000;
/// Width or height beyond this (pixels) is no scan; decoders would allocate gigabytes for it.
const MAX_SIDE: u64 = 60_000;

/// Why the image cannot be read, in one sentence for the operator; `Ok` when it looks sound (or is no image).
pub fn check(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        tiff(bytes)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(bytes)
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        jpeg(bytes)
    } else {
        Ok(())
    }
}

fn tiff(b: &[u8]) -> Result<(), String> {
    let little = b[0] == b'I';
    let u16_at = |at: usize| -> Option<u64> {
        let s = b.get(at..at + 2)?;
        Some(u64::from(if little { u16::from_le_bytes([s[0], s[1]]) } else { u16::from_be_bytes([s[0], s[1]]) }))
    };
    let u32_at = |at: usize| -> Option<u64> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(if little { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) }))
    };
    let mut offset = u32_at(4).ok_or("the TIFF header is cut short")?;
    let mut seen = std::collections::HashSet::new();
    while offset != 0 {
        if !seen.insert(offset) {
            return Err(format!("the TIFF's page table loops (IFD at byte {offset} is reached twice)"));
        }
        if seen.len() > MAX_TIFF_PAGES {
            return Err(format!("the TIFF has more than {MAX_TIFF_PAGES} pages"));
        }
        let at = usize::try_from(offset).map_err(|_| "the TIFF's page table points outside the file")?;
        let entries = u16_at(at).ok_or("the TIFF's page table points outside the file")?;
        let end = at as u64 + 2 + entries * 12;
        let next = u32_at(end as usize).ok_or("a page of the TIFF is cut short")?;
        for e in 0..entries {
            let entry = at + 2 + e as usize * 12;
            let tag = u16_at(entry).unwrap_or(0);
            // ImageWidth (256), ImageLength (257): SHORT or LONG.
            if tag == 256 || tag == 257 {
                let kind = u16_at(entry + 2).unwrap_or(0);
                let value = if kind == 3 { u16_at(entry + 8) } else { u32_at(entry + 8) }.unwrap_or(0);
                if value == 0 || value > MAX_SIDE {
                    return Err(format!("the TIFF says a page is {value} pixels wide or high"));
                }
            }
        }
        offset = next;
    }
    if seen.is_empty() {
        return Err("the TIFF has no pages".into());
    }
    Ok(())
}

fn png(b: &[u8]) -> Result<(), String> {
    let mut at = 8usize;
    let mut first = true;
    while at < b.len() {
        let header = b.get(at..at + 8).ok_or("a PNG chunk is cut short")?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = &header[4..8];
        if first {
            if kind != b"IHDR" || len != 13 {
                return Err("the PNG does not start with its image header".into());
            }
            let ihdr = b.get(at + 8..at + 16).ok_or("the PNG image header is cut short")?;
            let w = u64::from(u32::from_be_bytes([ihdr[0], ihdr[1], ihdr[2], ihdr[3]]));
            let h = u64::from(u32::from_be_bytes([ihdr[4], ihdr[5], ihdr[6], ihdr[7]]));
            if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
                return Err(format!("the PNG says it is {w} × {h} pixels"));
            }
            first = false;
        }
        if kind == b"IEND" {
            return Ok(());
        }
        at = at.checked_add(12 + len).ok_or("a PNG chunk is too long")?;
        if at > b.len() {
            return Err("a PNG chunk runs past the end of the file".into());
        }
    }
    if first {
        return Err("the PNG has no image header".into());
    }
    // No IEND: a truncated file whose data may still be readable; the decoder decides.
    Ok(())
}

fn jpeg(b: &[u8]) -> Result<(), String> {
    let mut at = 2usize;
    loop {
        let Some(&marker) = b.get(at + 1).filter(|_| b[at] == 0xFF) else {
            return Err(format!("the JPEG has no segment marker at byte {at}"));
        };
        match marker {
            // Fill bytes before a marker.
            0xFF => at += 1,
            // Markers without a length: standalone (TEM, RSTn).
            0x01 | 0xD0..=0xD7 => at += 2,
            0xD9 => return Err("the JPEG ends before its image data".into()),
            _ => {
                let len = b.get(at + 2..at + 4).map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])));
                let len = len.filter(|&l| l >= 2).ok_or("a JPEG segment is cut short")?;
                // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC): the frame header with the image's size.
                if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                    let s = b.get(at + 5..at + 9).ok_or("the JPEG frame header is cut short")?;
                    let (h, w) = (u16::from_be_bytes([s[0], s[1]]), u16::from_be_bytes([s[2], s[3]]));
                    // A height of 0 is allowed (DNL marker later); a width of 0 is not.
                    if w == 0 {
                        return Err(format!("the JPEG says it is {w} × {h} pixels"));
                    }
                }
                if marker == 0xDA {
                    return Ok(());
                }
                at += 2 + len;
                if at >= b.len() {
                    return Err("a JPEG segment runs past the end of the file".into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 772-byte little-endian TIFF whose one IFD names itself as the next (`tests/fixtures/hostile`).
    fn looping_tiff() -> Vec<u8> {
        include_bytes!("../../tests/fixtures/hostile/looping.tif").to_vec()
    }

    #[test]
    fn a_tiff_whose_page_table_points_to_itself_is_refused() {
        let err = check(&looping_tiff()).unwrap_err();
        assert!(err.contains("loops"), "{err}");
        let mut ok = looping_tiff();
        ok[34..38].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(check(&ok), Ok(()));
    }

    #[test]
    fn broken_png_and_jpeg_headers_are_refused_and_sound_ones_pass() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(13u32.to_be_bytes());
        png.extend(b"IHDR");
        png.extend(0u32.to_be_bytes());
        png.extend(10u32.to_be_bytes());
        png.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert!(check(&png).unwrap_err().contains("0 × 10"));
        png[16..20].copy_from_slice(&10u32.to_be_bytes());
        png.extend(0u32.to_be_bytes());
        png.extend(b"IEND");
        png.extend([0; 4]);
        assert_eq!(check(&png), Ok(()));
        assert!(check(b"\xFF\xD8\xFF\xE0\x00\x10JFIF").is_err());
        assert_eq!(check(b"%PDF-1.4"), Ok(()));
    }
}
