//! Outlook's `winmail.dat` (TNEF, [MS-OXTNEF]): just enough to take the attached files out.
//!
//! A TNEF stream is a signature, a key, then attributes: level (1 byte), id (4), length (4), data, checksum (2).
//! Each attachment starts with `attAttachRendData`; its name is in `attAttachTitle` (8.3 or long name) or, in
//! newer Outlook, in the MAPI property `PR_ATTACH_LONG_FILENAME` inside `attAttachment`; its bytes are in
//! `attAttachData`. No crate on crates.io reads this maintained and safely, and the format is small and frozen, so
//! we read it here with every length checked against the buffer.

use thiserror::Error;

const SIGNATURE: u32 = 0x223E_9F78;
const LVL_ATTACHMENT: u8 = 0x02;
const ATT_ATTACH_REND_DATA: u32 = 0x0006_9002;
const ATT_ATTACH_TITLE: u32 = 0x0001_8010;
const ATT_ATTACH_DATA: u32 = 0x0006_800F;
const ATT_ATTACHMENT: u32 = 0x0006_9005;
/// PR_ATTACH_LONG_FILENAME (0x3707) as PT_STRING8 (0x001E) or PT_UNICODE (0x001F).
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TnefError {
    #[error("not a TNEF stream")]
    NotTnef,
    #[error("TNEF stream truncated at byte {0}")]
    Truncated(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TnefAttachment {
    pub filename: String,
    pub data: Vec<u8>,
}

pub fn attachments(buf: &[u8]) -> Result<Vec<TnefAttachment>, TnefError> {
    let mut r = Reader { buf, pos: 0 };
    if r.u32()? != SIGNATURE {
        return Err(TnefError::NotTnef);
    }
    r.u16()?; // legacy key, unused
    let mut out: Vec<(Option<String>, Option<String>, Vec<u8>)> = Vec::new();
    while r.pos < buf.len() {
        let level = r.u8()?;
        let id = r.u32()?;
        let len = r.u32()? as usize;
        let data = r.take(len)?;
        r.u16()?; // checksum: a bad one is a damaged file, but the data may still be the invoice; ignore it
        if level != LVL_ATTACHMENT {
            continue;
        }
        match id {
            ATT_ATTACH_REND_DATA => out.push((None, None, Vec::new())),
            ATT_ATTACH_TITLE => {
                if let Some(a) = out.last_mut() {
                    a.0 = Some(cstring(data));
                }
            }
            ATT_ATTACH_DATA => {
                if let Some(a) = out.last_mut() {
                    a.2 = data.to_vec();
                }
            }
            ATT_ATTACHMENT => {
                if let Some(a) = out.last_mut() {
                    a.1 = long_filename(data);
                }
            }
            _ => {}
        }
    }
    Ok(out
        .into_iter()
        .filter(|(_, _, data)| !data.is_empty())
        .enumerate()
        .map(|(i, (short, long, data))| TnefAttachment {
            filename: long.or(short).filter(|n| !n.is_empty()).unwrap_or_else(|| format!("winmail-{}", i + 1)),
            data,
        })
        .collect())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TnefError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(TnefError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, TnefError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, TnefError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, TnefError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn cstring(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).trim().to_string()
}

/// Find PR_ATTACH_LONG_FILENAME in an attAttachment MAPI property list ([MS-OXTNEF] 2.1.3.4). Only simple
/// property types are walked; on anything unexpected we stop and fall back to the short title.
fn long_filename(data: &[u8]) -> Option<String> {
    let mut r = Reader { buf: data, pos: 0 };
    let count = r.u32().ok()?;
    for _ in 0..count.min(10_000) {
        let ptype = r.u16().ok()?;
        let pid = r.u16().ok()?;
        if pid >= 0x8000 {
            return None; // named properties carry a GUID and name first; not worth walking for a filename
        }
        let fixed = match ptype {
            0x0002 | 0x000B => Some(4), // PT_SHORT and PT_BOOLEAN are padded to 4
            0x0003 | 0x0004 | 0x000A => Some(4),
            0x0005 | 0x0006 | 0x0007 | 0x0014 | 0x0040 => Some(8),
            0x0048 => Some(16),
            _ => None,
        };
        if let Some(n) = fixed {
            r.take(n).ok()?;
            continue;
        }
        match ptype {
            0x001E | 0x001F | 0x0102 | 0x000D => {
                let values = r.u32().ok()?;
                for _ in 0..values.min(1000) {
                    let len = r.u32().ok()? as usize;
                    let bytes = r.take(len).ok()?;
                    let padded = (4 - len % 4) % 4;
                    r.take(padded).ok()?;
                    if pid == PR_ATTACH_LONG_FILENAME {
                        return Some(match ptype {
                            0x001F => utf16(bytes),
                            _ => cstring(bytes),
                        });
                    }
                }
            }
            _ => return None,
        }
    }
    None
}

fn utf16(bytes: &[u8]) -> String {
    let units: Vec<u16> =
        bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
    String::from_utf16_lossy(&units).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(level: u8, id: u32, data: &[u8]) -> Vec<u8> {
        let mut v = vec![level];
        v.extend(id.to_le_bytes());
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(data);
        let sum: u16 = data.iter().fold(0u16, |a, &b| a.wrapping_add(u16::from(b)));
        v.extend(sum.to_le_bytes());
        v
    }

    fn stream(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut v = SIGNATURE.to_le_bytes().to_vec();
        v.extend(0x1234u16.to_le_bytes());
        for p in parts {
            v.extend(p);
        }
        v
    }

    #[test]
    fn a_winmail_dat_gives_back_its_pdf() {
        let s = stream(&[
            attr(1, 0x0009_8000, b"\x01\x00\x00\x00"),
            attr(LVL_ATTACHMENT, ATT_ATTACH_REND_DATA, &[0; 14]),
            attr(LVL_ATTACHMENT, ATT_ATTACH_TITLE, b"FACTUR~1.PDF\0"),
            attr(LVL_ATTACHMENT, ATT_ATTACH_DATA, b"%PDF-1.4 hello"),
        ]);
        let a = attachments(&s).unwrap();
        assert_eq!(a, vec![TnefAttachment { filename: "FACTUR~1.PDF".into(), data: b"%PDF-1.4 hello".to_vec() }]);
    }

    #[test]
    fn the_long_filename_wins_over_the_short_title() {
        let name: Vec<u8> = "Factura 2025-001.pdf\0".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let mut props = 1u32.to_le_bytes().to_vec();
        props.extend(0x001Fu16.to_le_bytes());
        props.extend(PR_ATTACH_LONG_FILENAME.to_le_bytes());
        props.extend(1u32.to_le_bytes());
        props.extend((name.len() as u32).to_le_bytes());
        props.extend(&name);
        props.extend(vec![0; (4 - name.len() % 4) % 4]);
        let s = stream(&[
            attr(LVL_ATTACHMENT, ATT_ATTACH_REND_DATA, &[0; 14]),
            attr(LVL_ATTACHMENT, ATT_ATTACH_TITLE, b"FACTUR~1.PDF\0"),
            attr(LVL_ATTACHMENT, ATT_ATTACH_DATA, b"%PDF-"),
            attr(LVL_ATTACHMENT, ATT_ATTACHMENT, &props),
        ]);
        assert_eq!(attachments(&s).unwrap()[0].filename, "Factura 2025-001.pdf");
    }

    #[test]
    fn truncated_and_foreign_input_is_an_error_not_a_panic() {
        assert_eq!(attachments(b"PK\x03\x04"), Err(TnefError::NotTnef));
        let mut s = stream(&[attr(LVL_ATTACHMENT, ATT_ATTACH_DATA, b"%PDF-1.4 hello")]);
        s.truncate(s.len() - 5);
        assert!(matches!(attachments(&s), Err(TnefError::Truncated(_))));
        for n in 0..40 {
            let _ = attachments(&s[..n.min(s.len())]);
        }
    }

    #[test]
    fn the_corpus_winmail_files_do_not_panic_and_give_files() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/email/mimekit/tnef");
        let Ok(entries) = std::fs::read_dir(dir) else { panic!("corpus missing at {dir}") };
        let mut files_found = 0;
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            if let Ok(a) = attachments(&bytes) {
                files_found += a.len();
            }
        }
        assert!(files_found > 0, "no attachment found in any corpus TNEF file");
    }
}
