//! Normalised forms shared by the extractor and the services around it: one-line text for anything shown to a
//! person, and the keys a supplier is known by (tax id, name).

/// The longest line a value may become in a mail body.
const MAX_LINE_CHARS: usize = 500;

/// `s` on one line: control characters (C0, DEL, C1), line and paragraph separators and bidi overrides become a
/// space, runs of whitespace one space, and the ends are trimmed.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(4 * MAX_LINE_CHARS));
    let mut space = false;
    for c in s.chars() {
        let blank = c.is_whitespace() || c.is_control() || is_format_override(c);
        if blank {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Characters that reorder or hide text when shown (U+202A..U+202E, U+2066..U+2069, U+200B..U+200F, U+FEFF).
fn is_format_override(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `s` cut to at most `max_chars` characters, ending in an ellipsis when cut.
pub fn shorten(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars.saturating_sub(1)) {
        Some((at, _)) if s[at..].chars().count() > 1 => format!("{}…", s[..at].trim_end()),
        _ => s.to_string(),
    }
}

/// Upper-case alphanumerics, with the `ES` VAT prefix dropped so `ESB12345674` and `B-12345674` compare equal.
/// Spanish NIF/NIE/CIF are nine characters and never start with `ES` themselves (a CIF's second character is a
/// digit), so eleven characters starting with `ES` are always prefix plus number.
pub fn normalize_tax_id(raw: &str) -> Option<String> {
    let compact = compact_upper(raw);
    let id = match compact.strip_prefix("ES") {
        Some(number) if number.len() == 9 => number.to_string(),
        _ => compact,
    };
    (!id.is_empty()).then_some(id)
}

fn compact_upper(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

/// Legal forms that one copy prints and another leaves out (`S.L.`, `SLU`, `GmbH`, …).
const LEGAL_FORMS: &[&str] = &[
    "sl", "slu", "sa", "sau", "scoop", "sll", "slne", "cb", "gmbh", "ag", "sarl", "sas", "bv", "nv", "ltd", "llc",
    "inc", "srl", "spa",
];

/// A company name folded to lower-case ASCII words, without punctuation or a trailing legal form:
/// `Suministros Norte, S.L.` and `SUMINISTROS NORTE SL` give `suministros norte`.
pub fn normalize_name(name: &str) -> Option<String> {
    let folded = crate::extract::rules::fold(name);
    // Dots and hyphens inside a legal form (`S.L.`, `S.Coop.`) join its letters; other punctuation separates.
    let mut words: Vec<String> = folded
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    while words.len() > 1 && words.last().is_some_and(|w| LEGAL_FORMS.contains(&w.as_str())) {
        words.pop();
    }
    let joined = words.join(" ");
    (!joined.is_empty()).then_some(joined)
}
