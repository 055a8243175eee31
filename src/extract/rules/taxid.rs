//! Tax identifiers: Spanish NIF/NIE/CIF, EU VAT numbers, the Swiss UID, and the Indian GSTIN and Malaysian SST
//! registration numbers that till receipts from those countries print.
//!
//! A `TaxId` only exists once its format matched and, where the country publishes a simple check digit, once
//! the check held: a misread digit must not become a supplier's identity. Countries whose check we have not
//! written parse with `checksum_verified() == false`, and callers give them a lower confidence.
//!
//! Sources of the check algorithms: AEAT (NIF/CIF control characters), BZSt (DE: ISO 7064 MOD 11,10),
//! DGFiP (FR key), Belastingdienst (NL mod 11, and mod 97 for the 2020 sole-trader numbers), and the
//! European Commission's VIES technical notes for IT, PT, BE, AT, PL, DK, FI, LU, SE, GR and GB, and GSTN (the
//! GSTIN's base-36 check character). The Malaysian SST number publishes no check.

use regex::Regex;
use std::fmt;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaxIdKind {
    /// Spanish DNI-based NIF: 8 digits and a control letter.
    SpanishNif,
    /// Spanish foreigner's number: X, Y or Z, 7 digits and a control letter.
    SpanishNie,
    /// Spanish entity (CIF): a letter for the legal form, 7 digits and a control digit or letter.
    SpanishCif,
    /// Spanish K/L/M numbers (minors, non-residents): a letter, 7 digits and a control letter.
    SpanishOther,
    /// An EU VAT number with its country prefix.
    EuVat,
    /// Swiss UID (`CHE-123.456.789`).
    SwissUid,
    /// Indian GSTIN: state code, PAN, entity number, `Z`, check character (`27AAPFU0939F1ZV`).
    IndianGstin,
    /// Malaysian SST registration number (`W10-1808-31000123`); it has no check digit.
    MalaysianSst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TaxIdError {
    #[error("not a tax identifier in any format we know")]
    Format,
    #[error("the tax identifier's check digit does not match")]
    Checksum,
}

/// A tax identifier whose format (and check digit, where we know it) has been verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaxId {
    /// ISO 3166 country (`GR` for Greece even though its VAT prefix is `EL`).
    country: &'static str,
    /// The number without country prefix or separators, upper-case.
    number: String,
    /// The document printed the country prefix (`ESB12345674` rather than `B12345674`).
    prefixed: bool,
    checksum_verified: bool,
    kind: TaxIdKind,
}

impl TaxId {
    /// Parse `B12345674`, `ES B-1234567-4`, `DE 123 456 788`, `FR 11 123456782`, `CHE-123.456.788 MWST`, ….
    pub fn parse(s: &str) -> Result<TaxId, TaxIdError> {
        let mut compact: String =
            s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
        for suffix in ["MWST", "TVA", "IVA"] {
            if compact.starts_with("CHE") && compact.len() > 12 {
                if let Some(stripped) = compact.strip_suffix(suffix) {
                    compact = stripped.to_string();
                }
            }
        }
        if let Some(rest) = compact.strip_prefix("CHE") {
            return swiss(rest);
        }
        if GSTIN_RE.is_match(&compact) {
            return gstin(&compact);
        }
        if SST_RE.is_match(&compact) {
            return Ok(TaxId {
                country: "MY",
                number: compact,
                prefixed: false,
                checksum_verified: false,
                kind: TaxIdKind::MalaysianSst,
            });
        }
        if compact.len() > 2 && compact.is_char_boundary(2) {
            let (prefix, rest) = compact.split_at(2);
            if let Some(country) = vat_country(prefix) {
                return eu_vat(country, rest);
            }
        }
        spanish(&compact, false)
    }

    pub fn country(&self) -> &'static str {
        self.country
    }

    pub fn kind(&self) -> TaxIdKind {
        self.kind
    }

    pub fn checksum_verified(&self) -> bool {
        self.checksum_verified
    }

    /// The number without prefix (`B12345674`).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The VAT form with its prefix (`ESB12345674`, `EL123456783`, `CHE123456788`), the one to compare on.
    pub fn vat_form(&self) -> String {
        format!("{}{}", self.vat_prefix(), self.number)
    }

    /// As the document printed it, minus separators: with the prefix only if it was printed.
    pub fn as_printed(&self) -> String {
        if self.prefixed {
            self.vat_form()
        } else {
            self.number.clone()
        }
    }

    fn vat_prefix(&self) -> &'static str {
        match self.country {
            "GR" => "EL",
            "CH" => "CHE",
            "IN" | "MY" => "",
            c => c,
        }
    }
}

impl fmt::Display for TaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_printed())
    }
}

const VAT_PREFIXES: &[(&str, &str)] = &[
    ("AT", "AT"),
    ("BE", "BE"),
    ("BG", "BG"),
    ("CY", "CY"),
    ("CZ", "CZ"),
    ("DE", "DE"),
    ("DK", "DK"),
    ("EE", "EE"),
    ("EL", "GR"),
    ("ES", "ES"),
    ("FI", "FI"),
    ("FR", "FR"),
    ("GB", "GB"),
    ("HR", "HR"),
    ("HU", "HU"),
    ("IE", "IE"),
    ("IT", "IT"),
    ("LT", "LT"),
    ("LU", "LU"),
    ("LV", "LV"),
    ("MT", "MT"),
    ("NL", "NL"),
    ("PL", "PL"),
    ("PT", "PT"),
    ("RO", "RO"),
    ("SE", "SE"),
    ("SI", "SI"),
    ("SK", "SK"),
    ("XI", "GB"),
];

fn vat_country(prefix: &str) -> Option<&'static str> {
    VAT_PREFIXES.iter().find(|(p, _)| *p == prefix).map(|(_, c)| *c)
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

fn all_digits(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit())
}

fn verified(country: &'static str, number: &str, kind: TaxIdKind, ok: bool) -> Result<TaxId, TaxIdError> {
    if !ok {
        return Err(TaxIdError::Checksum);
    }
    Ok(TaxId { country, number: number.to_string(), prefixed: true, checksum_verified: true, kind })
}

fn unverified(country: &'static str, number: &str) -> Result<TaxId, TaxIdError> {
    Ok(TaxId { country, number: number.to_string(), prefixed: true, checksum_verified: false, kind: TaxIdKind::EuVat })
}

fn eu_vat(country: &'static str, n: &str) -> Result<TaxId, TaxIdError> {
    use TaxIdKind::EuVat;
    let d = digits(n);
    match country {
        "ES" => spanish(n, true),
        "DE" if all_digits(n, 9..=9) && !n.starts_with('0') => verified(country, n, EuVat, de_ok(&d)),
        "FR" if n.len() == 11 && all_digits(&n[2..], 9..=9) => {
            if all_digits(&n[..2], 2..=2) {
                verified(country, n, EuVat, fr_ok(&d))
            } else {
                // Alphabetic keys (issued since 2010) have no public check; the SIREN still has Luhn.
                if luhn_ok(&d) {
                    unverified(country, n)
                } else {
                    Err(TaxIdError::Checksum)
                }
            }
        }
        "NL" if n.len() == 12 && all_digits(&n[..9], 9..=9) && &n[9..10] == "B" && all_digits(&n[10..], 2..=2) => {
            verified(country, n, EuVat, nl_mod11_ok(&d[..9]) || nl_mod97_ok(n))
        }
        "IT" if all_digits(n, 11..=11) => verified(country, n, EuVat, luhn_ok(&d)),
        "PT" if all_digits(n, 9..=9) => verified(country, n, EuVat, pt_ok(&d)),
        "BE" if all_digits(n, 9..=10) => {
            let n10 = if n.len() == 9 { format!("0{n}") } else { n.to_string() };
            let d = digits(&n10);
            let ok = matches!(d[0], 0 | 1) && be_ok(&d);
            verified(country, &n10, EuVat, ok)
        }
        "AT" if n.len() == 9 && n.starts_with('U') && all_digits(&n[1..], 8..=8) => {
            verified(country, n, EuVat, at_ok(&d))
        }
        "GB" if all_digits(n, 9..=9) || all_digits(n, 12..=12) => verified(country, n, EuVat, gb_ok(&d)),
        "GB" if n.len() == 5 && (n.starts_with("GD") || n.starts_with("HA")) && all_digits(&n[2..], 3..=3) => {
            unverified(country, n)
        }
        "PL" if all_digits(n, 10..=10) => verified(country, n, EuVat, pl_ok(&d)),
        "DK" if all_digits(n, 8..=8) => verified(country, n, EuVat, weighted(&d, &[2, 7, 6, 5, 4, 3, 2, 1]) % 11 == 0),
        "FI" if all_digits(n, 8..=8) => verified(country, n, EuVat, fi_ok(&d)),
        "LU" if all_digits(n, 8..=8) => {
            let ok = n[..6].parse::<u64>().map(|v| v % 89) == n[6..].parse::<u64>();
            verified(country, n, EuVat, ok)
        }
        "SE" if all_digits(n, 12..=12) && n.ends_with("01") => verified(country, n, EuVat, luhn_ok(&d[..10])),
        "GR" if all_digits(n, 9..=9) => verified(country, n, EuVat, gr_ok(&d)),
        "CZ" if all_digits(n, 8..=10) => unverified(country, n),
        "SK" if all_digits(n, 10..=10) => unverified(country, n),
        "HU" | "SI" | "MT" if all_digits(n, 8..=8) => unverified(country, n),
        "RO" if all_digits(n, 2..=10) => unverified(country, n),
        "BG" if all_digits(n, 9..=10) => unverified(country, n),
        "HR" | "LV" if all_digits(n, 11..=11) => unverified(country, n),
        "EE" if all_digits(n, 9..=9) => unverified(country, n),
        "LT" if all_digits(n, 9..=9) || all_digits(n, 12..=12) => unverified(country, n),
        "CY" if n.len() == 9 && all_digits(&n[..8], 8..=8) && n.ends_with(|c: char| c.is_ascii_uppercase()) => {
            unverified(country, n)
        }
        "IE" if ie_format(n) => unverified(country, n),
        _ => Err(TaxIdError::Format),
    }
}

const DNI_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
const CIF_LETTERS: &[u8; 10] = b"JABCDEFGHI";

/// NIF, NIE and CIF, with or without the `ES` prefix.
fn spanish(n: &str, prefixed: bool) -> Result<TaxId, TaxIdError> {
    let b = n.as_bytes();
    if n.len() != 9 || !n.is_ascii() {
        return Err(TaxIdError::Format);
    }
    let mid_digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let last = b[8];
    let (kind, ok) = if mid_digits(0..8) && last.is_ascii_uppercase() {
        let v: u32 = n[..8].parse().map_err(|_| TaxIdError::Format)?;
        (TaxIdKind::SpanishNif, DNI_LETTERS[(v % 23) as usize] == last)
    } else if matches!(b[0], b'X' | b'Y' | b'Z') && mid_digits(1..8) && last.is_ascii_uppercase() {
        let lead = (b[0] - b'X') as u32;
        let v: u32 = lead * 10_000_000 + n[1..8].parse::<u32>().map_err(|_| TaxIdError::Format)?;
        (TaxIdKind::SpanishNie, DNI_LETTERS[(v % 23) as usize] == last)
    } else if matches!(b[0], b'K' | b'L' | b'M') && mid_digits(1..8) && last.is_ascii_uppercase() {
        let v: u32 = n[1..8].parse().map_err(|_| TaxIdError::Format)?;
        (TaxIdKind::SpanishOther, DNI_LETTERS[(v % 23) as usize] == last)
    } else if b"ABCDEFGHJNPQRSUVW".contains(&b[0])
        && mid_digits(1..8)
        && (last.is_ascii_digit() || (b'A'..=b'J').contains(&last))
    {
        (TaxIdKind::SpanishCif, cif_ok(b))
    } else {
        return Err(TaxIdError::Format);
    };
    if !ok {
        return Err(TaxIdError::Checksum);
    }
    Ok(TaxId { country: "ES", number: n.to_string(), prefixed, checksum_verified: true, kind })
}

/// CIF control: digits in odd positions are doubled (digit sum), even ones added; the control is `10 - sum % 10`
/// as a digit, or the letter `JABCDEFGHI[c]`. Entities P, Q, R, S, W, N print the letter; A, B, E, H the digit;
/// the others may print either.
fn cif_ok(b: &[u8]) -> bool {
    let d: Vec<u32> = b[1..8].iter().map(|c| (c - b'0') as u32).collect();
    let sum: u32 = d.iter().enumerate().map(|(i, &x)| if i % 2 == 0 { (x * 2) / 10 + (x * 2) % 10 } else { x }).sum();
    let c = (10 - sum % 10) % 10;
    let (digit, letter) = (b'0' + c as u8, CIF_LETTERS[c as usize]);
    match b[0] {
        b'P' | b'Q' | b'R' | b'S' | b'W' | b'N' => b[8] == letter,
        b'A' | b'B' | b'E' | b'H' => b[8] == digit,
        _ => b[8] == digit || b[8] == letter,
    }
}

/// ISO 7064 MOD 11,10 over the first 8 digits.
fn de_ok(d: &[u32]) -> bool {
    let mut product = 10;
    for &x in &d[..8] {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    let check = (11 - product) % 10;
    check == d[8]
}

/// The key is `(12 + 3 × (SIREN mod 97)) mod 97`.
fn fr_ok(d: &[u32]) -> bool {
    let siren = d[2..].iter().fold(0u64, |acc, &x| acc * 10 + x as u64);
    let key = (d[0] * 10 + d[1]) as u64;
    (12 + 3 * (siren % 97)) % 97 == key
}

fn nl_mod11_ok(d: &[u32]) -> bool {
    let sum: i64 = d[..8].iter().zip((2..=9).rev()).map(|(&x, w)| (x * w) as i64).sum::<i64>() - d[8] as i64;
    sum % 11 == 0
}

/// Since 2020 sole traders get numbers checked by ISO 7064 mod 97 over `NL` + number, letters as 10..35.
fn nl_mod97_ok(n: &str) -> bool {
    let s = format!("NL{n}");
    super::iban::mod97(&s) == 1
}

fn luhn_ok(d: &[u32]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum % 10 == 0
}

fn weighted(d: &[u32], w: &[u32]) -> u32 {
    d.iter().zip(w).map(|(a, b)| a * b).sum()
}

fn pt_ok(d: &[u32]) -> bool {
    let r = 11 - weighted(&d[..8], &[9, 8, 7, 6, 5, 4, 3, 2]) % 11;
    let check = if r >= 10 { 0 } else { r };
    check == d[8]
}

fn be_ok(d: &[u32]) -> bool {
    let head = d[..8].iter().fold(0u64, |acc, &x| acc * 10 + x as u64);
    let tail = (d[8] * 10 + d[9]) as u64;
    97 - head % 97 == tail
}

/// Austria: alternate digits doubled (digit sum), then `(10 - (S + 4) mod 10) mod 10`.
fn at_ok(d: &[u32]) -> bool {
    let s: u32 =
        d[..7].iter().enumerate().map(|(i, &x)| if i % 2 == 1 { (x * 2) / 10 + (x * 2) % 10 } else { x }).sum();
    (10 - (s + 4) % 10) % 10 == d[7]
}

fn gb_ok(d: &[u32]) -> bool {
    let total = weighted(&d[..7], &[8, 7, 6, 5, 4, 3, 2]) + d[7] * 10 + d[8];
    total % 97 == 0 || (total + 55) % 97 == 0
}

fn pl_ok(d: &[u32]) -> bool {
    weighted(&d[..9], &[6, 5, 7, 2, 3, 4, 5, 6, 7]) % 11 == d[9]
}

fn fi_ok(d: &[u32]) -> bool {
    let r = weighted(&d[..7], &[7, 9, 10, 5, 8, 4, 2]) % 11;
    let check = if r == 0 { 0 } else { 11 - r };
    check == d[7]
}

fn gr_ok(d: &[u32]) -> bool {
    let sum: u32 = d[..8].iter().enumerate().map(|(i, &x)| x << (8 - i)).sum();
    sum % 11 % 10 == d[8]
}

fn ie_format(n: &str) -> bool {
    static IE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^([0-9]{7}[A-W][A-IW]?|[0-9][A-Z+*][0-9]{5}[A-W])$").expect("ie regex"));
    IE.is_match(n)
}

/// Swiss UID: mod 11 with weights 5,4,3,2,7,6,5,4.
fn swiss(n: &str) -> Result<TaxId, TaxIdError> {
    if !all_digits(n, 9..=9) {
        return Err(TaxIdError::Format);
    }
    let d = digits(n);
    let r = 11 - weighted(&d[..8], &[5, 4, 3, 2, 7, 6, 5, 4]) % 11;
    let check = if r == 11 { 0 } else { r };
    if check == 10 || check != d[8] {
        return Err(TaxIdError::Checksum);
    }
    Ok(TaxId {
        country: "CH",
        number: n.to_string(),
        prefixed: true,
        checksum_verified: true,
        kind: TaxIdKind::SwissUid,
    })
}

/// An Indian GSTIN (compact): two digits of state, a PAN (five letters, four digits, a letter), the entity
/// number, `Z`, and the check character.
static GSTIN_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-3][0-9][A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]$").expect("gstin regex"));
/// A Malaysian SST registration number (compact): a letter, two digits, then four and eight digits.
static SST_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Z][0-9]{14}$").expect("sst regex"));

/// GSTN's check: each of the first 14 characters' base-36 value times 1 and 2 alternately, the product's
/// base-36 digits summed; the check character makes the sum a multiple of 36.
fn gstin(n: &str) -> Result<TaxId, TaxIdError> {
    const BASE36: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let value = |b: u8| BASE36.iter().position(|a| *a == b);
    let bytes = n.as_bytes();
    let mut sum = 0;
    for (i, &b) in bytes[..14].iter().enumerate() {
        let v = value(b).ok_or(TaxIdError::Format)? * if i % 2 == 0 { 1 } else { 2 };
        sum += v / 36 + v % 36;
    }
    if BASE36[(36 - sum % 36) % 36] != bytes[14] {
        return Err(TaxIdError::Checksum);
    }
    Ok(TaxId {
        country: "IN",
        number: n.to_string(),
        prefixed: false,
        checksum_verified: true,
        kind: TaxIdKind::IndianGstin,
    })
}

/// A tax identifier found in a line, or something shaped like one whose check failed.
#[derive(Debug, Clone, PartialEq)]
pub struct TaxIdMatch {
    pub start: usize,
    pub end: usize,
    pub id: Result<TaxId, TaxIdError>,
    /// The characters as printed, for warnings about failed checks.
    pub raw: String,
}

static PREFIXED_RE: LazyLock<Regex> = LazyLock::new(|| {
    let prefixes: Vec<&str> = VAT_PREFIXES.iter().map(|(p, _)| *p).collect();
    Regex::new(&format!(r"(?-u:\b)(?:CHE|{})[ .\-]?[0-9A-Z]", prefixes.join("|"))).expect("vat prefix regex")
});
static SPANISH_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?-u:\b)(?:[A-HJ-NP-SUVW][ .\-]?[0-9]{2}\.?[0-9]{3}\.?[0-9]{2}[ .\-]?[0-9A-J]|[0-9]{2}\.?[0-9]{3}\.?[0-9]{3}[ \-]?[A-Z]|[XYZKLM][ .\-]?[0-9]{7}[ \-]?[A-Z])(?-u:\b)",
    )
    .expect("spanish id regex")
});

/// A GSTIN, or a Malaysian SST number as printed with its dashes (`W10-1808-31000123`).
static ASIAN_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)(?:[0-3][0-9][A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]|[A-Z][0-9]{2}-[0-9]{4}-[0-9]{8})(?-u:\b)")
        .expect("gstin and sst regex")
});

/// Every tax identifier in `line`: prefixed VAT numbers (`DE 123 456 788`, `FR11123456782`), GSTINs, Malaysian
/// SST numbers, and Spanish NIF/NIE/CIF without prefix. Matches whose check digit fails are returned too, marked `Err(Checksum)`, so the
/// caller can warn about them instead of silently dropping them.
pub fn find_tax_ids(line: &str) -> Vec<TaxIdMatch> {
    let mut out: Vec<TaxIdMatch> = Vec::new();
    for m in PREFIXED_RE.find_iter(line) {
        if out.iter().any(|o| m.start() < o.end) {
            continue;
        }
        if let Some(found) = longest_prefixed(line, m.start()) {
            out.push(found);
        }
    }
    for m in ASIAN_RE.find_iter(line) {
        if out.iter().any(|o| m.start() < o.end && o.start < m.end()) {
            continue;
        }
        out.push(TaxIdMatch {
            start: m.start(),
            end: m.end(),
            id: TaxId::parse(m.as_str()),
            raw: m.as_str().to_string(),
        });
    }
    for m in SPANISH_RE.find_iter(line) {
        if out.iter().any(|o| m.start() < o.end && o.start < m.end()) {
            continue;
        }
        let id = spanish(&m.as_str().chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>(), false);
        out.push(TaxIdMatch { start: m.start(), end: m.end(), id, raw: m.as_str().to_string() });
    }
    out.sort_by_key(|m| m.start);
    out
}

/// From a country prefix, read alphanumeric groups separated by single spaces, dots or dashes (`FR 11 123 456
/// 782`), and return the longest run of whole groups that parses. Nothing is returned for a run that never
/// looks like a VAT number of that country (a word that merely starts with `DE`).
fn longest_prefixed(line: &str, start: usize) -> Option<TaxIdMatch> {
    let rest = &line[start..];
    let mut cuts = Vec::new(); // byte offsets (relative) where a group ends
    let mut alnum = 0;
    let mut prev_sep = false;
    for (i, c) in rest.char_indices() {
        if c.is_ascii_alphanumeric() {
            alnum += 1;
            prev_sep = false;
            if alnum > 20 {
                break;
            }
        } else if matches!(c, ' ' | '.' | '-') && !prev_sep && alnum > 0 {
            cuts.push(i);
            prev_sep = true;
        } else {
            break;
        }
        if !prev_sep {
            let end = i + c.len_utf8();
            let next = rest[end..].chars().next();
            if next.is_none_or(|n| !n.is_ascii_alphanumeric()) {
                cuts.push(end);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut checksum_failure = None;
    for &cut in cuts.iter().rev() {
        let raw = rest[..cut].trim_end_matches([' ', '.', '-']);
        if raw.len() < 4 {
            continue;
        }
        match TaxId::parse(raw) {
            Ok(id) => {
                return Some(TaxIdMatch { start, end: start + raw.len(), id: Ok(id), raw: raw.to_string() });
            }
            Err(TaxIdError::Checksum) if checksum_failure.is_none() => {
                checksum_failure = Some(TaxIdMatch {
                    start,
                    end: start + raw.len(),
                    id: Err(TaxIdError::Checksum),
                    raw: raw.to_string(),
                });
            }
            Err(_) => {}
        }
    }
    checksum_failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_spanish_identifiers_parse() {
        for (s, kind) in [
            ("12345678Z", TaxIdKind::SpanishNif),
            ("X1234567L", TaxIdKind::SpanishNie),
            ("Y1234567X", TaxIdKind::SpanishNie),
            ("B12345674", TaxIdKind::SpanishCif),
            ("A12345674", TaxIdKind::SpanishCif),
            ("Q2826000H", TaxIdKind::SpanishCif),
            ("P2807900B", TaxIdKind::SpanishCif),
            ("ESB12345674", TaxIdKind::SpanishCif),
            ("ES-B-12345674", TaxIdKind::SpanishCif),
            ("es 12345678-z", TaxIdKind::SpanishNif),
        ] {
            let id = TaxId::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(id.kind(), kind, "{s}");
            assert_eq!(id.country(), "ES");
            assert!(id.checksum_verified());
        }
    }

    #[test]
    fn spanish_identifiers_with_a_wrong_control_character_are_rejected() {
        for s in ["12345678A", "X1234567A", "B12345675", "B1234567D", "Q2826000A", "Q28260008", "ESB12345670"] {
            assert_eq!(TaxId::parse(s), Err(TaxIdError::Checksum), "{s}");
        }
    }

    #[test]
    fn a_cif_letter_entity_may_use_the_letter_only_where_the_rules_allow() {
        // B (S.L.) must print a digit; G (associations) may print either.
        assert_eq!(TaxId::parse("B1234567D"), Err(TaxIdError::Checksum));
        assert!(TaxId::parse("G12345674").is_ok());
        assert!(TaxId::parse("G1234567D").is_ok());
    }

    #[test]
    fn eu_vat_numbers_with_a_valid_check_parse() {
        for (s, country) in [
            ("DE136695976", "DE"),
            ("DE 123 456 788", "DE"),
            ("FR11123456782", "FR"),
            ("FR 05 987 654 321", "FR"),
            ("IT00743110157", "IT"),
            ("PT501964843", "PT"),
            ("BE0403170701", "BE"),
            ("NL004495445B01", "NL"),
            ("ATU13585627", "AT"),
            ("GB980780684", "GB"),
            ("CHE-116.281.710 MWST", "CH"),
            ("PL5260250274", "PL"),
            ("DK13585628", "DK"),
            ("FI20774740", "FI"),
        ] {
            let id = TaxId::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(id.country(), country, "{s}");
            assert!(id.checksum_verified(), "{s}");
        }
    }

    #[test]
    fn eu_vat_numbers_with_one_digit_changed_are_rejected() {
        for s in ["DE136695977", "FR12123456782", "IT00743110158", "PT501964844", "BE0403170702", "ATU13585628"] {
            assert_eq!(TaxId::parse(s), Err(TaxIdError::Checksum), "{s}");
        }
    }

    #[test]
    fn vat_numbers_of_countries_without_a_check_parse_unverified() {
        let id = TaxId::parse("CZ12345678").unwrap();
        assert!(!id.checksum_verified());
    }

    #[test]
    fn strings_in_no_known_format_are_not_tax_ids() {
        for s in ["", "hello", "DE12345", "DE12345618938", "1234567", "ESX"] {
            assert_eq!(TaxId::parse(s), Err(TaxIdError::Format), "{s}");
        }
    }

    #[test]
    fn the_printed_form_keeps_the_prefix_only_if_it_was_printed() {
        assert_eq!(TaxId::parse("B-12345674").unwrap().as_printed(), "B12345674");
        assert_eq!(TaxId::parse("ES B12345674").unwrap().as_printed(), "ESB12345674");
        assert_eq!(TaxId::parse("B12345674").unwrap().vat_form(), "ESB12345674");
    }

    #[test]
    fn tax_ids_are_found_inside_lines() {
        let line = "N° TVA intra : FR 11 123 456 782   USt-IdNr: DE136695976 IBAN  CIF: B-12345674, NIF 12345678Z";
        let ids: Vec<String> =
            find_tax_ids(line).into_iter().filter_map(|m| m.id.ok()).map(|id| id.vat_form()).collect();
        assert_eq!(ids, vec!["FR11123456782", "DE136695976", "ESB12345674", "ES12345678Z"]);
    }

    #[test]
    fn a_tax_id_shaped_string_with_a_bad_check_is_reported_as_such() {
        let found = find_tax_ids("NIF: 12345678A");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, Err(TaxIdError::Checksum));
    }

    #[test]
    fn indian_gstins_and_malaysian_sst_numbers_on_till_receipts_are_found() {
        let ids: Vec<(String, bool)> = find_tax_ids("GSTIN: 27AAPFU0939F1ZV   SST Reg No: W10-1808-31000123")
            .into_iter()
            .filter_map(|m| m.id.ok())
            .map(|id| (id.as_printed(), id.checksum_verified()))
            .collect();
        assert_eq!(ids, vec![("27AAPFU0939F1ZV".to_string(), true), ("W10180831000123".to_string(), false)]);
        // One character of the GSTIN misread: its check character no longer matches.
        assert_eq!(find_tax_ids("GSTIN: 27AAPFU0939F1ZW")[0].id, Err(TaxIdError::Checksum));
        // A phone number's dashes are no SST number.
        assert!(find_tax_ids("Tel: 03-2161-2345").is_empty());
    }

    #[test]
    fn words_starting_with_a_country_code_are_not_tax_ids() {
        assert!(find_tax_ids("DEUTSCHLAND ESPAÑA Frankfurt ITALIA").is_empty());
    }
}
