//! The extractor's arguments and results, and reading E2B's HTTP answers.

use std::time::Duration;

use super::client::ProcessOutput;
use super::{E2bError, DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, SANDBOX_DOCUMENT};
use crate::extract::Extraction;
use crate::sandbox::ExtractOptions;

/// `sandbox-run --name=NAME [options] /tmp/document`. Values are attached with `=` so a file name that starts
/// with `-` is a value, not an option.
pub(super) fn run_args(filename: &str, o: &ExtractOptions) -> Vec<String> {
    let mut a = vec![
        "sandbox-run".to_string(),
        format!("--name={filename}"),
        format!("--max-pages={}", o.max_pages),
        format!("--max-pixels={}", o.max_image_pixels),
    ];
    if o.no_embedded {
        a.push("--no-embedded".into());
    }
    a.extend(o.own_names.iter().map(|n| format!("--own-name={n}")));
    a.extend(o.own_tax_ids.iter().map(|t| format!("--own-tax-id={t}")));
    a.extend(o.memory_args());
    a.push(SANDBOX_DOCUMENT.into());
    a
}

/// Results from the extractor's stdout: one JSON object per line, as the local backend reads them.
pub(super) fn parse_results(out: &ProcessOutput, extractor: &str) -> Result<Vec<Extraction>, E2bError> {
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed: Vec<Extraction> =
        text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    if out.succeeded() && !parsed.is_empty() {
        return Ok(parsed);
    }
    Err(E2bError::Extractor(describe_failure(out, extractor)))
}

/// Why a run failed, in the operator's terms. envd starts every command through `/bin/sh -c '… exec nice …'`, so
/// a command that is not in the template is not a refused RPC but a run that exits 127 (126: not executable),
/// and its end event carries `error: "exit status 127"`.
pub(super) fn describe_failure(out: &ProcessOutput, extractor: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = tail[tail.len().saturating_sub(3)..].join(" | ");
    let why = match &out.end {
        None => "the extractor did not finish".to_string(),
        Some(e) if e.status.contains("killed") => "the extractor was killed (out of memory or time)".to_string(),
        Some(e) if e.status.starts_with("signal") => format!("the extractor crashed ({})", e.status),
        Some(e) if e.exit_code == 0 && e.error.is_none() => "the extractor printed no result".to_string(),
        Some(e) if e.exit_code == 127 => format!(
            "the template has no {extractor} (exit 127, not found): rebuild the template (e2b/README.md) or set \
             sandbox.e2b.extractor_path"
        ),
        Some(e) if e.exit_code == 126 => {
            format!("{extractor} cannot be run in the template (exit 126): rebuild the template (e2b/README.md)")
        }
        Some(e) => match &e.error {
            Some(err) => format!("the extractor exited with code {} ({err})", e.exit_code),
            None => format!("the extractor exited with code {}", e.exit_code),
        },
    };
    if tail.is_empty() {
        why
    } else {
        format!("{why}: {tail}")
    }
}

pub(super) fn connection_error(what: &'static str, e: reqwest::Error) -> E2bError {
    // reqwest's message names the URL (host and sandbox ID), never our headers: no key in it.
    E2bError::Connection { what, message: e.to_string() }
}

/// The `message` of an E2B error body (`{"code": 401, "message": "..."}`), else the start of the body.
pub(super) async fn error_message(resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) if v["message"].is_string() => v["message"].as_str().unwrap_or_default().to_string(),
        _ => truncate(text.trim(), 300),
    }
}

/// How long to wait after a 429 (the API's or the edge's) or the edge's 409: what it asked, else a second; never
/// more than a minute.
pub(super) fn backoff(retry_after: Option<Duration>) -> Duration {
    retry_after.unwrap_or(DEFAULT_RETRY_AFTER).min(MAX_RETRY_AFTER)
}

/// `Retry-After`: delta-seconds (fractions tolerated) or an HTTP date.
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_starting_with_a_dash_stays_a_value() {
        let a = run_args("-rf.pdf", &ExtractOptions { own_names: vec!["-x".into()], ..Default::default() });
        assert!(a.contains(&"--name=-rf.pdf".to_string()));
        assert!(a.contains(&"--own-name=-x".to_string()));
        assert_eq!(a.last().map(String::as_str), Some(SANDBOX_DOCUMENT));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }
}
