//! Is the sender who the From header says? Decided from the `Authentication-Results` header (RFC 8601) that our
//! own receiving MTA stamped, read with DMARC's notion of alignment (RFC 7489).
//!
//! We never verify signatures or query DNS here: the MTA (OpenDKIM/OpenDMARC, rspamd, Gmail, …) already did, and
//! this module only reads its verdict. That is safe only for the header the MTA itself added, so the rules are:
//!
//! - Only the *topmost* `Authentication-Results` field carrying our authserv-id counts. Every hop prepends its
//!   trace fields (RFC 5322 §3.6.7), so anything a sender forged sits below our MTA's field; and a field with
//!   another authserv-id is someone else's claim, which RFC 8601 §7.1 (forged header fields) says not to believe.
//!   Border MTAs should also delete incoming fields that bear their own authserv-id (RFC 8601 §5); reading only
//!   the topmost one protects us even where that was not configured.
//! - `dmarc=pass` for the From domain is enough, and so is a `dkim=pass` whose signing domain is aligned with the
//!   From domain (that is DMARC's own DKIM test, RFC 7489 §4.2, for domains without a DMARC record).
//! - `spf=pass` alone is not: SPF authenticates the envelope sender (RFC 7208 §2.4), which a forger picks freely.
//! - `dmarc=fail` wins over any DKIM pass: the verifier that saw the whole message said no.
//!
//! Postfix with separate OpenDKIM and OpenDMARC milters writes one field per milter; only the topmost (usually
//! OpenDMARC's) is read, so DKIM-only alignment then goes unseen and the message is left untrusted. That errs on
//! the safe side; a verifier that writes one combined field (rspamd does) avoids it.

/// Who may send us invoices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderPolicy {
    /// Everyone: for mailboxes that only trusted systems can reach.
    Any,
    /// Entries are matched case-insensitively against the From address:
    /// `billing@example.com` matches that address only; `example.com` or `@example.com` match any address at
    /// exactly that domain (not its subdomains); `.example.com` matches any address at a subdomain of
    /// `example.com` (not `example.com` itself, as in Postfix's tables), so list both to allow both.
    /// The From header is trivially forged, so an allowlist alone keeps out mistakes, not attackers.
    Allowlist(Vec<String>),
    /// Trust what our receiving MTA, identified by its authserv-id, reports in `Authentication-Results`.
    Authenticated { authserv_id: String },
}

/// The judgement, with one sentence for logs and for the people who read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Trusted { how: String },
    Untrusted { reason: String },
}

impl Verdict {
    pub fn is_trusted(&self) -> bool {
        matches!(self, Verdict::Trusted { .. })
    }

    fn trusted(how: impl Into<String>) -> Verdict {
        Verdict::Trusted { how: how.into() }
    }

    fn untrusted(reason: impl Into<String>) -> Verdict {
        Verdict::Untrusted { reason: reason.into() }
    }
}

/// Judges a message. `raw` is its header section, or the whole raw message (only the part before the first empty
/// line is read); `from` is its RFC 5322 From address.
pub fn judge(raw: &[u8], from: &str, policy: &SenderPolicy) -> Verdict {
    let from = from.trim().to_ascii_lowercase();
    match policy {
        SenderPolicy::Any => Verdict::trusted("the sender policy accepts any sender"),
        SenderPolicy::Allowlist(entries) => judge_allowlist(&from, entries),
        SenderPolicy::Authenticated { authserv_id } => judge_authenticated(raw, &from, authserv_id),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Allowlist

fn judge_allowlist(from: &str, entries: &[String]) -> Verdict {
    let domain = domain_of(from);
    let hit = entries.iter().map(|e| e.trim().to_ascii_lowercase()).find(|entry| {
        if entry.contains('@') && !entry.starts_with('@') {
            return entry == from;
        }
        match (entry.strip_prefix('.'), domain) {
            (Some(parent), Some(domain)) => domain.strip_suffix(parent).is_some_and(|rest| rest.ends_with('.')),
            (None, Some(domain)) => entry.trim_start_matches('@') == domain,
            (_, None) => false,
        }
    });
    match hit {
        Some(entry) => Verdict::trusted(format!("{from} matches allowlist entry {entry}")),
        None => Verdict::untrusted(format!("{from} is not on the allowlist")),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Authenticated

fn judge_authenticated(raw: &[u8], from: &str, authserv_id: &str) -> Verdict {
    let ours = authserv_id.trim().to_ascii_lowercase();
    let Some(from_domain) = domain_of(from) else {
        return Verdict::untrusted(format!("From address {from:?} has no domain"));
    };
    let mut ignored = Vec::new();
    for (name, value) in header_fields(raw) {
        if !name.eq_ignore_ascii_case("Authentication-Results") {
            continue;
        }
        let mut cursor = Cursor::new(&value);
        match cursor.authserv_id() {
            Ok(id) if id == ours => {
                return match cursor.results() {
                    Ok(results) => evaluate(&results, from_domain, &ours),
                    Err(e) => Verdict::untrusted(format!("Authentication-Results from {ours} is malformed: {e}")),
                };
            }
            Ok(id) => ignored.push(id),
            Err(_) => ignored.push("a field without a readable authserv-id".to_string()),
        }
    }
    ignored.dedup();
    if ignored.is_empty() {
        Verdict::untrusted(format!("no Authentication-Results from {ours}"))
    } else {
        Verdict::untrusted(format!("no Authentication-Results from {ours} (ignored: {})", ignored.join(", ")))
    }
}

/// Applies DMARC's reading (RFC 7489 §4.2) to the results our MTA reported.
fn evaluate(results: &[MethodResult], from_domain: &str, authserv_id: &str) -> Verdict {
    let dmarc: Vec<&MethodResult> = results.iter().filter(|r| r.method == "dmarc").collect();
    // A DMARC result about another From domain means the verifier and we read different From fields (a message
    // with two, RFC 7489 §6.6.1): nothing in this field is then about the sender we would be trusting.
    let about_other = dmarc.iter().find_map(|r| {
        let domain = r.domain_prop("header.from")?;
        (domain != from_domain).then_some((&r.result, domain))
    });
    if let Some((result, other)) = about_other {
        return Verdict::untrusted(format!("dmarc={result} was for {other}, not the From domain {from_domain}"));
    }
    if dmarc.iter().any(|r| r.result == "fail") {
        return Verdict::untrusted(format!("dmarc=fail for {from_domain}"));
    }
    if dmarc.iter().any(|r| r.result == "pass") {
        return Verdict::trusted(format!("dmarc=pass for {from_domain} (per {authserv_id})"));
    }
    let dkim_passes: Vec<&MethodResult> = results.iter().filter(|r| r.method == "dkim" && r.result == "pass").collect();
    if let Some(d) = dkim_passes.iter().filter_map(|r| r.dkim_domain()).find(|d| aligned(d, from_domain)) {
        return Verdict::trusted(format!(
            "dkim=pass for {d}, aligned with From domain {from_domain} (per {authserv_id})"
        ));
    }
    match dkim_passes.first() {
        Some(r) => match r.dkim_domain() {
            Some(d) => Verdict::untrusted(format!("dkim=pass for {d} is not aligned with From domain {from_domain}")),
            None => Verdict::untrusted(format!(
                "dkim=pass names no header.d or header.i to align with From domain {from_domain}"
            )),
        },
        None => Verdict::untrusted(format!(
            "no dmarc=pass or aligned dkim=pass for {from_domain} ({authserv_id} reported {})",
            summary(results)
        )),
    }
}

/// `spf=pass, dkim=fail`, or `none`, for the reason sentence.
fn summary(results: &[MethodResult]) -> String {
    if results.is_empty() {
        return "none".to_string();
    }
    let parts: Vec<String> = results
        .iter()
        .map(|r| match &r.reason {
            Some(reason) => format!("{}={} ({reason:?})", r.method, r.result),
            None => format!("{}={}", r.method, r.result),
        })
        .collect();
    parts.join(", ")
}

/// Relaxed alignment (RFC 7489 §3.1.1): the two domains share an organizational domain.
fn aligned(a: &str, b: &str) -> bool {
    organizational_domain(a) == organizational_domain(b)
}

/// Second-level labels that, under a two-letter country TLD, are public suffixes (`co.uk`, `com.es`, `com.au`,
/// `co.jp`, `gob.es`, `ne.jp`, `gv.at`, …).
const GENERIC_SECOND_LEVELS: &[&str] =
    &["ac", "co", "com", "edu", "gob", "go", "gov", "gv", "ltd", "mil", "ne", "net", "nom", "or", "org", "plc"];

/// RFC 7489 §3.2 defines the organizational domain with the Public Suffix List. We approximate it without the
/// list: the last two labels, or the last three when the domain sits under a country TLD's generic second level
/// (`example.co.uk`, `example.com.es`). The approximation errs in both directions, knowingly:
/// - too strict for registrable domains that look like such a suffix (`x.co.de` and `y.co.de` are two
///   organizations to us even if `co.de` is one company): a signed message then stays untrusted;
/// - too loose under public suffixes it does not know (`github.io`, `k12.ca.us`): there `evil.github.io` would
///   align with `victim.github.io`. Suppliers' invoicing domains are not hosted under such suffixes in practice.
fn organizational_domain(domain: &str) -> String {
    let labels: Vec<&str> = domain.split('.').collect();
    let n = labels.len();
    let keep = if n >= 3 && labels[n - 1].len() == 2 && GENERIC_SECOND_LEVELS.contains(&labels[n - 2]) { 3 } else { 2 };
    labels[n.saturating_sub(keep)..].join(".")
}

/// The domain of an address (after the last `@`), lower-case, without a trailing root dot.
fn domain_of(address: &str) -> Option<&str> {
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.');
    (!domain.is_empty()).then_some(domain)
}

fn normalize_domain(value: &str) -> String {
    value.trim().trim_end_matches('.').to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------------------------------
// Header section (RFC 5322 §2.2)

/// The header fields in order, as (name, unfolded value). We split them ourselves rather than through
/// mail-parser because we need every field in its original order and its value undecoded: RFC 8601's grammar
/// applies to the raw text, and RFC 2047 decoding has no business there.
fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // RFC 5322 §2.1: the header section ends at the first empty line.
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with([' ', '\t']) {
            // §2.2.3 unfolding: the line break goes, the whitespace that follows it stays.
            if let Some((_, value)) = current.as_mut() {
                value.push_str(&line);
            }
            continue;
        }
        fields.extend(current.take());
        current = line
            .split_once(':')
            .filter(|(name, _)| is_field_name(name.trim_end()))
            .map(|(name, value)| (name.trim_end().to_string(), value.to_string()));
    }
    fields.extend(current);
    fields
}

/// RFC 5322 §3.6.8: printable US-ASCII except the colon. Rejects an mbox `From ` line and other debris.
fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

// ---------------------------------------------------------------------------------------------------------------
// Authentication-Results grammar (RFC 8601 §2.2)

/// One `method=result` statement of a resinfo (RFC 8601 §2.2), keywords lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MethodResult {
    method: String,
    result: String,
    reason: Option<String>,
    /// `ptype.property` (lower-case, e.g. `header.d`) and its value as written.
    props: Vec<(String, String)>,
}

impl MethodResult {
    fn prop(&self, key: &str) -> Option<&str> {
        self.props.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn domain_prop(&self, key: &str) -> Option<String> {
        self.prop(key).map(normalize_domain)
    }

    /// The signing domain: `header.d` (RFC 6376 §3.5 `d=`), else the domain of the agent identifier `header.i`
    /// (Gmail reports only `header.i=@example.com`), which RFC 6376 §3.5 requires to be within `d=`.
    fn dkim_domain(&self) -> Option<String> {
        let d = self.domain_prop("header.d").filter(|d| !d.is_empty());
        d.or_else(|| self.prop("header.i").map(|i| normalize_domain(i.rsplit('@').next().unwrap_or(i))))
            .filter(|d| !d.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Malformed {
    #[error("a comment is not closed")]
    UnterminatedComment,
    #[error("a quoted string is not closed")]
    UnterminatedQuote,
    #[error("it starts with a result instead of an authserv-id")]
    NoAuthservId,
    #[error("it has neither results nor \"none\"")]
    NoResults,
    #[error("expected ';' but found {0:?}")]
    ExpectedSemicolon(char),
    #[error("expected a method name after ';'")]
    ExpectedMethod,
    #[error("expected a version number after \"{0}/\"")]
    ExpectedVersion(String),
    #[error("expected '=' after \"{0}\"")]
    ExpectedEquals(String),
    #[error("expected a result after \"{0}=\"")]
    ExpectedResult(String),
    #[error("expected a property name after \"{0}.\"")]
    ExpectedProperty(String),
    #[error("expected a value after \"{0}=\"")]
    ExpectedValue(String),
}

/// A cursor over one unfolded field value.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(value: &'a str) -> Self {
        Cursor { rest: value }
    }

    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.rest = &self.rest[c.len_utf8()..];
        Some(c)
    }

    fn eat(&mut self, wanted: char) -> bool {
        let hit = self.peek() == Some(wanted);
        if hit {
            self.bump();
        }
        hit
    }

    /// At the end of a resinfo: the next `;` or the end of the field.
    fn at_resinfo_end(&self) -> bool {
        matches!(self.peek(), None | Some(';'))
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self.rest.find(|c: char| !keep(c)).unwrap_or(self.rest.len());
        let (taken, rest) = self.rest.split_at(end);
        self.rest = rest;
        taken
    }

    /// RFC 5322 §3.2.2 CFWS: whitespace and comments, which nest and may hold quoted-pairs. Comments carry
    /// free text such as `(2048-bit key; unprotected)`, so they must be gone before `;` is read as a separator.
    fn skip_cfws(&mut self) -> Result<(), Malformed> {
        loop {
            self.take_while(char::is_whitespace);
            if !self.eat('(') {
                return Ok(());
            }
            let mut depth = 1;
            while depth > 0 {
                match self.bump().ok_or(Malformed::UnterminatedComment)? {
                    '\\' => {
                        self.bump();
                    }
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
            }
        }
    }

    /// RFC 5322 §3.2.4 quoted-string, without its quotes and with quoted-pairs resolved. The `"` is next.
    fn quoted_string(&mut self) -> Result<String, Malformed> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump().ok_or(Malformed::UnterminatedQuote)? {
                '"' => return Ok(out),
                '\\' => out.push(self.bump().ok_or(Malformed::UnterminatedQuote)?),
                c => out.push(c),
            }
        }
    }

    /// RFC 8601 `Keyword` (an RFC 5321 ldh-str), lower-cased because methods, results and property names are
    /// case-insensitive (§2.2). `_` is tolerated; some verifiers use it in their own method names.
    fn keyword(&mut self) -> Option<String> {
        let word = self.take_while(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        (!word.is_empty()).then(|| word.to_ascii_lowercase())
    }

    /// `value` (RFC 2045 token or quoted-string) and `pvalue` (which adds `[local-part] "@" domain`). Unquoted,
    /// we read up to whitespace, `;` or `(`, which is more than a token allows: verifiers write base64 such as
    /// `header.b=Ab+c/d=` unquoted, and rejecting that would reject most real mail.
    fn value(&mut self) -> Result<Option<String>, Malformed> {
        if self.peek() == Some('"') {
            return self.quoted_string().map(Some);
        }
        let word = self.take_while(|c| !c.is_whitespace() && c != ';' && c != '(');
        Ok((!word.is_empty()).then(|| word.to_string()))
    }

    /// `[CFWS] authserv-id [CFWS authres-version]` (§2.2), the id lower-cased: it names a host, so it compares
    /// case-insensitively. Exchange Online writes no authserv-id at all (its fields start `spf=pass`); such a
    /// field can be attributed to no one and is reported as `NoAuthservId`.
    fn authserv_id(&mut self) -> Result<String, Malformed> {
        self.skip_cfws()?;
        let id = if self.peek() == Some('"') {
            self.quoted_string()?
        } else {
            self.take_while(|c| !c.is_whitespace() && !matches!(c, ';' | '(' | '=')).to_string()
        };
        if id.is_empty() || self.peek() == Some('=') {
            return Err(Malformed::NoAuthservId);
        }
        self.skip_cfws()?;
        self.take_while(|c| c.is_ascii_digit()); // authres-version: only 1 exists (§2.2), so it is skipped.
        self.skip_cfws()?;
        Ok(id.to_ascii_lowercase())
    }

    /// `( no-result / 1*resinfo )` (§2.2). An empty resinfo, as left by a trailing `;`, is tolerated.
    fn results(&mut self) -> Result<Vec<MethodResult>, Malformed> {
        let mut results = Vec::new();
        let mut said_none = false;
        loop {
            self.skip_cfws()?;
            match self.bump() {
                None => break,
                Some(';') => {}
                Some(other) => return Err(Malformed::ExpectedSemicolon(other)),
            }
            self.skip_cfws()?;
            if self.at_resinfo_end() {
                continue;
            }
            let method = self.keyword().ok_or(Malformed::ExpectedMethod)?;
            self.skip_cfws()?;
            if method == "none" && self.at_resinfo_end() {
                said_none = true; // §2.2 no-result: the MTA ran no checks.
                continue;
            }
            results.push(self.resinfo(method)?);
        }
        if results.is_empty() && !said_none {
            return Err(Malformed::NoResults);
        }
        Ok(results)
    }

    /// The rest of `methodspec [CFWS reasonspec] [CFWS 1*propspec]` once the method name is read.
    fn resinfo(&mut self, method: String) -> Result<MethodResult, Malformed> {
        if self.eat('/') {
            // method-version (§2.2), e.g. `dkim/1`: only version 1 of each method exists, so it is skipped.
            self.skip_cfws()?;
            if self.take_while(|c| c.is_ascii_digit()).is_empty() {
                return Err(Malformed::ExpectedVersion(method));
            }
            self.skip_cfws()?;
        }
        if !self.eat('=') {
            return Err(Malformed::ExpectedEquals(method));
        }
        self.skip_cfws()?;
        let result = self.keyword().ok_or_else(|| Malformed::ExpectedResult(method.clone()))?;
        let mut info = MethodResult { method, result, reason: None, props: Vec::new() };
        loop {
            self.skip_cfws()?;
            if self.at_resinfo_end() {
                return Ok(info);
            }
            let (key, value) = self.property()?;
            if key == "reason" {
                info.reason = Some(value);
            } else if key.contains('.') {
                info.props.push((key, value));
            }
            // Anything else is a vendor extension outside the grammar, such as Exchange's `action=none`; it
            // carries nothing we act on, so it is skipped rather than failing the whole field.
        }
    }

    /// `reason=value` or `ptype.property=pvalue` (§2.2), with CFWS allowed around `.` and `=`.
    fn property(&mut self) -> Result<(String, String), Malformed> {
        let mut key = match self.keyword() {
            Some(k) => k,
            None => return Err(Malformed::ExpectedSemicolon(self.peek().unwrap_or(';'))),
        };
        self.skip_cfws()?;
        if self.eat('.') {
            self.skip_cfws()?;
            let property = self.keyword().ok_or_else(|| Malformed::ExpectedProperty(key.clone()))?;
            key = format!("{key}.{property}");
            self.skip_cfws()?;
        }
        if !self.eat('=') {
            return Err(Malformed::ExpectedEquals(key));
        }
        self.skip_cfws()?;
        let value = self.value()?.ok_or_else(|| Malformed::ExpectedValue(key.clone()))?;
        Ok((key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MX: &str = "mx.example.test";

    fn authenticated(id: &str) -> SenderPolicy {
        SenderPolicy::Authenticated { authserv_id: id.to_string() }
    }

    fn trusted(how: &str) -> Verdict {
        Verdict::trusted(how)
    }

    fn untrusted(reason: &str) -> Verdict {
        Verdict::untrusted(reason)
    }

    /// A message whose header section is `headers` (LF line ends, as written below) with CRLF line ends, the
    /// way IMAP delivers it, and a body that looks like headers to prove the body is never read.
    fn message(headers: &str) -> Vec<u8> {
        let body = "Authentication-Results: mx.example.test; dmarc=pass header.from=evil.test\n";
        format!("{headers}\n\n{body}").replace('\n', "\r\n").into_bytes()
    }

    struct Case {
        name: &'static str,
        authserv_id: &'static str,
        from: &'static str,
        headers: &'static str,
        expected: Verdict,
    }

    fn authenticated_cases() -> Vec<Case> {
        vec![
            Case {
                name: "gmail: dmarc pass, folded over several lines, comments holding '=' and ';'",
                authserv_id: "mx.google.com",
                from: "facturas@proveedor.es",
                headers: "\
Delivered-To: invoices@example.test
Received: by 2002:a05:6102:22c6:0:0:0:0 with SMTP id a6csp126141vsh;
        Tue, 28 Sep 2021 20:57:32 -0700 (PDT)
ARC-Authentication-Results: i=1; mx.google.com;
       dkim=pass header.i=@evil.test;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=evil.test
Return-Path: <bounces@mailer.proveedor.es>
Received: from mail.proveedor.es (mail.proveedor.es. [192.0.2.10])
        by mx.google.com with ESMTPS id x2si1234567wrt.412.2021.09.28.20.57.31
Received-SPF: pass (google.com: domain of bounces@mailer.proveedor.es designates 192.0.2.10 as permitted sender)
Authentication-Results: mx.google.com;
       dkim=pass header.i=@proveedor.es header.s=sel1 header.b=Zk3+a/Q1;
       arc=pass (i=1 spf=pass spfdomain=mailer.proveedor.es dkim=pass dkdomain=proveedor.es dmarc=pass fromdomain=proveedor.es);
       spf=pass (google.com: domain of bounces@mailer.proveedor.es designates 192.0.2.10 as permitted sender) smtp.mailfrom=bounces@mailer.proveedor.es;
       dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=proveedor.es
From: Proveedor SL <facturas@proveedor.es>
Subject: Factura F-2024-001",
                expected: trusted("dmarc=pass for proveedor.es (per mx.google.com)"),
            },
            Case {
                name: "postfix/opendmarc: topmost field of ours decides; tab-folded fields below are not read",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; dmarc=pass (p=reject dis=none) header.from=example.com
Authentication-Results: mx.example.test;
\tdkim=fail reason=\"signature verification failed\" (2048-bit key; unprotected) header.d=example.com
Received: from mail.example.com (mail.example.com [198.51.100.7])
\tby mx.example.test (Postfix) with ESMTPS id 4F1B2C3D4E
From: billing@example.com",
                expected: trusted("dmarc=pass for example.com (per mx.example.test)"),
            },
            Case {
                name: "spoofed field below the real one is ignored",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=evil.test;
\tdkim=none; dmarc=fail (p=none dis=none) header.from=example.com
Received: from evil.test by mx.example.test (Postfix)
Authentication-Results: mx.example.test; dmarc=pass header.from=example.com
From: billing@example.com",
                expected: untrusted("dmarc=fail for example.com"),
            },
            Case {
                name: "a field from another authserv-id only",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Received: from evil.test by mx.example.test (Postfix)
Authentication-Results: mx.evil.test; dmarc=pass header.from=example.com; dkim=pass header.d=example.com
From: billing@example.com",
                expected: untrusted("no Authentication-Results from mx.example.test (ignored: mx.evil.test)"),
            },
            Case {
                name: "dmarc=fail on a phishing message with a Reply-To elsewhere",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test;
\tdkim=pass (1024-bit key) header.d=mailer.evil.test header.i=@mailer.evil.test;
\tspf=pass smtp.mailfrom=bounce@mailer.evil.test;
\tdmarc=fail reason=\"No aligned identifiers\" (p=none dis=none) header.from=example.com
From: \"Example Billing\" <billing@example.com>
Reply-To: payments@evil.test
Subject: Updated bank details",
                expected: untrusted("dmarc=fail for example.com"),
            },
            Case {
                name: "no Authentication-Results at all",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Received: from mail.example.com by mx.example.test (Postfix)
From: billing@example.com
Subject: Invoice",
                expected: untrusted("no Authentication-Results from mx.example.test"),
            },
            Case {
                name: "aligned dkim pass (subdomain signer) without any dmarc result",
                authserv_id: MX,
                from: "billing@example.co.uk",
                headers: "\
Authentication-Results: mx.example.test;
\tdkim=pass header.d=mail.example.co.uk header.s=s1 header.b=\"AbC+/d==\";
\tspf=softfail smtp.mailfrom=example.co.uk
From: billing@example.co.uk",
                expected: trusted(
                    "dkim=pass for mail.example.co.uk, aligned with From domain example.co.uk (per mx.example.test)",
                ),
            },
            Case {
                name: "dkim pass for a different domain, dmarc none",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; dkim=pass header.d=sendgrid.net;
\tspf=pass smtp.mailfrom=bounces@sendgrid.net; dmarc=none header.from=example.com
From: billing@example.com",
                expected: untrusted("dkim=pass for sendgrid.net is not aligned with From domain example.com"),
            },
            Case {
                name: "two dkim results: the aligned one suffices",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; dkim=pass header.d=sendgrid.net;
\tdkim=pass header.d=example.com header.s=s2; spf=pass smtp.mailfrom=sendgrid.net
From: billing@example.com",
                expected: trusted("dkim=pass for example.com, aligned with From domain example.com (per mx.example.test)"),
            },
            Case {
                name: "dmarc=fail beats an aligned dkim pass",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; dkim=pass header.d=example.com; dmarc=fail header.from=example.com
From: billing@example.com",
                expected: untrusted("dmarc=fail for example.com"),
            },
            Case {
                name: "spf pass alone is not enough",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=billing@example.com
From: billing@example.com",
                expected: untrusted(
                    "no dmarc=pass or aligned dkim=pass for example.com (mx.example.test reported spf=pass)",
                ),
            },
            Case {
                name: "case differences in field name, authserv-id, methods, results and domains",
                authserv_id: "MX.Example.TEST",
                from: "Billing@EXAMPLE.com",
                headers: "\
AUTHENTICATION-RESULTS: Mx.Example.Test; DKIM=Pass Header.D=Example.COM; DMARC = PASS header . from = EXAMPLE.com.
From: Billing@EXAMPLE.com",
                expected: trusted("dmarc=pass for example.com (per mx.example.test)"),
            },
            Case {
                name: "nested comments everywhere, version, method version and a quoted reason with a ';'",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: (ours) mx.example.test (edge (primary)) 1 (version);
  dkim/1 (signed) = (ok) pass reason=\"good signature; key 2048 bits\" (x) header.d=(signer)example.com;
  x-custom-check=whatever policy.weird=\"a (b) c\"
From: billing@example.com",
                expected: trusted("dkim=pass for example.com, aligned with From domain example.com (per mx.example.test)"),
            },
            Case {
                name: "rspamd style: dkim aligned via header.i only",
                authserv_id: MX,
                from: "billing@sub.example.com.es",
                headers: "\
Authentication-Results: mx.example.test;
\tdkim=pass header.i=@example.com.es header.s=dkim header.b=Jm9/ZTk2;
\tspf=pass (mx.example.test: domain of billing@sub.example.com.es designates 192.0.2.1 as permitted sender) smtp.mailfrom=billing@sub.example.com.es;
\tdmarc=temperror reason=\"DNS timeout\" header.from=sub.example.com.es
From: billing@sub.example.com.es",
                expected: trusted(
                    "dkim=pass for example.com.es, aligned with From domain sub.example.com.es (per mx.example.test)",
                ),
            },
            Case {
                name: "exchange-formatted results: action=, compauth, no space after ';'",
                authserv_id: MX,
                from: "ap@contoso.com",
                headers: "\
Authentication-Results: mx.example.test; spf=pass (sender IP is 40.107.22.100)
 smtp.mailfrom=contoso.com; dkim=pass (signature was verified)
 header.d=contoso.com;dmarc=pass action=none header.from=contoso.com;compauth=pass
 reason=100
From: ap@contoso.com",
                expected: trusted("dmarc=pass for contoso.com (per mx.example.test)"),
            },
            Case {
                name: "exchange online field without authserv-id cannot be ours",
                authserv_id: MX,
                from: "ap@contoso.com",
                headers: "\
Authentication-Results: spf=pass (sender IP is 40.107.22.100) smtp.mailfrom=contoso.com; dkim=pass
 (signature was verified) header.d=contoso.com;dmarc=pass action=none header.from=contoso.com;
ARC-Authentication-Results: i=1; mx.microsoft.com 1; spf=pass smtp.mailfrom=contoso.com; dmarc=pass
 action=none header.from=contoso.com; dkim=pass header.d=contoso.com; arc=none
From: ap@contoso.com",
                expected: untrusted(
                    "no Authentication-Results from mx.example.test (ignored: a field without a readable authserv-id)",
                ),
            },
            Case {
                name: "dmarc pass about another From domain (two From fields)",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; dkim=pass header.d=example.com; dmarc=pass header.from=evil.test
From: billing@example.com
From: someone@evil.test",
                expected: untrusted("dmarc=pass was for evil.test, not the From domain example.com"),
            },
            Case {
                name: "none: the MTA ran no checks",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; none
From: billing@example.com",
                expected: untrusted(
                    "no dmarc=pass or aligned dkim=pass for example.com (mx.example.test reported none)",
                ),
            },
            Case {
                name: "malformed: unterminated comment",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; dmarc=pass (p=reject header.from=example.com
From: billing@example.com",
                expected: untrusted("Authentication-Results from mx.example.test is malformed: a comment is not closed"),
            },
            Case {
                name: "malformed: method without result",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; dmarc header.from=example.com
From: billing@example.com",
                expected: untrusted(
                    "Authentication-Results from mx.example.test is malformed: expected '=' after \"dmarc\"",
                ),
            },
            Case {
                name: "malformed: authserv-id only",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test
From: billing@example.com",
                expected: untrusted(
                    "Authentication-Results from mx.example.test is malformed: it has neither results nor \"none\"",
                ),
            },
            Case {
                name: "dkim pass without a domain cannot be aligned",
                authserv_id: MX,
                from: "billing@example.com",
                headers: "\
Authentication-Results: mx.example.test; dkim=pass (good signature)
From: billing@example.com",
                expected: untrusted("dkim=pass names no header.d or header.i to align with From domain example.com"),
            },
            Case {
                name: "look-alike registrable domain under a country second level does not align",
                authserv_id: MX,
                from: "billing@example.com.es",
                headers: "\
Authentication-Results: mx.example.test; dkim=pass header.d=evil.com.es
From: billing@example.com.es",
                expected: untrusted("dkim=pass for evil.com.es is not aligned with From domain example.com.es"),
            },
            Case {
                name: "From without a domain",
                authserv_id: MX,
                from: "billing",
                headers: "\
Authentication-Results: mx.example.test; dmarc=pass header.from=example.com
From: billing",
                expected: untrusted("From address \"billing\" has no domain"),
            },
        ]
    }

    #[test]
    fn authenticated_policy_reads_only_our_mtas_topmost_field() {
        for case in authenticated_cases() {
            let raw = message(case.headers);
            let verdict = judge(&raw, case.from, &authenticated(case.authserv_id));
            assert_eq!(verdict, case.expected, "case: {}", case.name);
        }
    }

    #[test]
    fn allowlist_matches_addresses_domains_and_dotted_subdomains() {
        let policy = SenderPolicy::Allowlist(vec![
            "Billing@Supplier.es".to_string(),
            "@partner.com".to_string(),
            "vendor.co.uk".to_string(),
            ".group.example".to_string(),
        ]);
        let cases: &[(&str, Verdict)] = &[
            ("billing@supplier.es", trusted("billing@supplier.es matches allowlist entry billing@supplier.es")),
            ("other@supplier.es", untrusted("other@supplier.es is not on the allowlist")),
            ("anyone@partner.com", trusted("anyone@partner.com matches allowlist entry @partner.com")),
            ("anyone@mail.partner.com", untrusted("anyone@mail.partner.com is not on the allowlist")),
            ("ap@vendor.co.uk", trusted("ap@vendor.co.uk matches allowlist entry vendor.co.uk")),
            ("ap@evilvendor.co.uk", untrusted("ap@evilvendor.co.uk is not on the allowlist")),
            ("ap@es.group.example", trusted("ap@es.group.example matches allowlist entry .group.example")),
            ("ap@group.example", untrusted("ap@group.example is not on the allowlist")),
            ("ap@evilgroup.example", untrusted("ap@evilgroup.example is not on the allowlist")),
            ("AP@Partner.COM", trusted("ap@partner.com matches allowlist entry @partner.com")),
            ("nodomain", untrusted("nodomain is not on the allowlist")),
        ];
        for (from, expected) in cases {
            assert_eq!(&judge(b"", from, &policy), expected, "from: {from}");
        }
    }

    #[test]
    fn any_policy_trusts_everyone() {
        let verdict = judge(b"From: x@evil.test\r\n\r\n", "x@evil.test", &SenderPolicy::Any);
        assert!(verdict.is_trusted());
    }

    #[test]
    fn organizational_domain_approximates_the_public_suffix_list() {
        let cases = [
            ("example.com", "example.com"),
            ("mail.eu.example.com", "example.com"),
            ("example.co.uk", "example.co.uk"),
            ("a.b.example.co.uk", "example.co.uk"),
            ("shop.example.com.es", "example.com.es"),
            ("example.es", "example.es"),
            ("mail.example.es", "example.es"),
            ("x.example.co.jp", "example.co.jp"),
            ("example.com.au", "example.com.au"),
            ("localhost", "localhost"),
        ];
        for (domain, expected) in cases {
            assert_eq!(organizational_domain(domain), expected, "domain: {domain}");
        }
    }

    /// Results as `method=result reason="…" ptype.property=value`, `; `-separated, for readable tables.
    fn render(results: &[MethodResult]) -> String {
        let rendered: Vec<String> = results
            .iter()
            .map(|r| {
                let mut out = format!("{}={}", r.method, r.result);
                if let Some(reason) = &r.reason {
                    out.push_str(&format!(" reason={reason:?}"));
                }
                for (key, value) in &r.props {
                    out.push_str(&format!(" {key}={value}"));
                }
                out
            })
            .collect();
        rendered.join("; ")
    }

    #[test]
    fn parser_reads_rfc8601_examples_and_real_world_variants() {
        let cases = [
            // RFC 8601 Appendix B.2 to B.6, unfolded.
            ("example.org 1; none", "example.org", ""),
            ("example.com; spf=pass smtp.mailfrom=example.net", "example.com", "spf=pass smtp.mailfrom=example.net"),
            (
                "example.com; auth=pass (cram-md5) smtp.auth=sender@example.net; spf=pass smtp.mailfrom=example.net",
                "example.com",
                "auth=pass smtp.auth=sender@example.net; spf=pass smtp.mailfrom=example.net",
            ),
            (
                "example.com; sender-id=fail header.from=example.com; dkim=pass (good signature) header.d=example.com",
                "example.com",
                "sender-id=fail header.from=example.com; dkim=pass header.d=example.com",
            ),
            (
                "example.com; dkim=pass (good signature) header.i=@mail-router.example.net; \
                 dkim=fail (bad signature) header.i=@newyork.example.com",
                "example.com",
                "dkim=pass header.i=@mail-router.example.net; dkim=fail header.i=@newyork.example.com",
            ),
            // Base64 outside quotes, a quoted reason holding ';', Exchange's action=, a trailing ';'.
            (
                "\"MX.Example.Test\" ; dkim=pass reason=\"ok; really\" header.b=Ab+c/d== (x); \
                 dmarc=pass action=none header.from=example.com;",
                "mx.example.test",
                "dkim=pass reason=\"ok; really\" header.b=Ab+c/d==; dmarc=pass header.from=example.com",
            ),
        ];
        for (value, id, expected) in cases {
            let mut cursor = Cursor::new(value);
            assert_eq!(cursor.authserv_id().as_deref(), Ok(id), "value: {value}");
            let results = cursor.results().unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(render(&results), expected, "value: {value}");
        }
    }

    #[test]
    fn parser_rejects_malformed_fields_with_the_cause() {
        let cases = [
            ("mx.example.test; dkim=pass reason=\"open", Malformed::UnterminatedQuote),
            ("mx.example.test; dkim=pass (open", Malformed::UnterminatedComment),
            ("mx.example.test; =pass", Malformed::ExpectedMethod),
            ("mx.example.test; dkim=", Malformed::ExpectedResult("dkim".into())),
            ("mx.example.test; dkim/=pass", Malformed::ExpectedVersion("dkim".into())),
            ("mx.example.test; dkim=pass header.d=", Malformed::ExpectedValue("header.d".into())),
            ("mx.example.test; dkim=pass header.=x", Malformed::ExpectedProperty("header".into())),
            ("mx.example.test; dkim=pass header.d example.com", Malformed::ExpectedEquals("header.d".into())),
            ("mx.example.test dkim=pass", Malformed::ExpectedSemicolon('d')),
            ("mx.example.test", Malformed::NoResults),
        ];
        for (value, expected) in cases {
            let mut cursor = Cursor::new(value);
            let got = cursor.authserv_id().and_then(|_| cursor.results());
            assert_eq!(got, Err(expected), "value: {value}");
        }
    }

    #[test]
    fn header_fields_unfold_and_stop_at_the_body() {
        let raw = b"From sender@example.com Mon Jan  1 00:00:00 2024\r\nA: 1\r\n  2\r\nB:3\r\n\r\nC: body\r\n";
        let fields = header_fields(raw);
        assert_eq!(fields, vec![("A".to_string(), " 1  2".to_string()), ("B".to_string(), "3".to_string())]);
    }
}
