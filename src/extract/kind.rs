//! What a document is, told by its first bytes: the one thing a mailer cannot mislabel. The MIME layer uses it
//! to pick attachments, and the extractor to choose its reader.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Pdf,
    Png,
    Jpeg,
    Tiff,
    Xml,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Pdf => "application/pdf",
            DocumentKind::Png => "image/png",
            DocumentKind::Jpeg => "image/jpeg",
            DocumentKind::Tiff => "image/tiff",
            DocumentKind::Xml => "application/xml",
        }
    }
}

/// Decide by content, the one thing a mailer cannot mislabel.
pub fn sniff(bytes: &[u8]) -> Option<DocumentKind> {
    let head = &bytes[..bytes.len().min(1024)];
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(DocumentKind::Png)
    } else if head.starts_with(b"\xFF\xD8\xFF") {
        Some(DocumentKind::Jpeg)
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        Some(DocumentKind::Tiff)
    } else if find(head, b"%PDF-").is_some() {
        // PDF readers accept the header anywhere in the first 1024 bytes, and so do we.
        Some(DocumentKind::Pdf)
    } else if looks_like_xml(head) {
        Some(DocumentKind::Xml)
    } else {
        None
    }
}

fn looks_like_xml(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let trimmed = head.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &head[i..]).unwrap_or(&[]);
    trimmed.starts_with(b"<?xml") || (trimmed.starts_with(b"<") && find(trimmed, b"xmlns").is_some())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
