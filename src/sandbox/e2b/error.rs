//! What can go wrong with E2B, typed so the caller can decide to retry.

use std::time::Duration;

use crate::extract::ErrorCode;

/// What went wrong, typed so the caller can decide to retry ([`E2bError::is_transient`]).
#[derive(Debug, thiserror::Error)]
pub enum E2bError {
    /// HTTP 401 from the API: a configuration error, retrying will not help.
    #[error("E2B API key rejected (HTTP 401): check sandbox.e2b.api_key / api_key_file")]
    Unauthorized,
    /// Missing or invalid settings.
    #[error("E2B configuration error: {0}")]
    Config(String),
    /// HTTP 404 on creation: no such template for this team.
    #[error(
        "E2B template {template:?} not found (HTTP 404: {message}): set sandbox.e2b.template to the template ID \
         printed by `e2b template create` (or its alias) for the team of this API key"
    )]
    TemplateNotFound { template: String, message: String },
    /// HTTP 429: too many sandboxes started, or running at once.
    #[error("E2B rate limit (HTTP 429{}): {message}", .retry_after.map(|d| format!(", retry after {}s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration>, message: String },
    /// E2B's edge, in front of envd, answered 429 (too many requests to this sandbox) or 409 (the sandbox is
    /// changing state) and kept answering it through our backoff.
    #[error("E2B's edge refused to {what} (HTTP {status}{}): {message}", .retry_after.map(|d| format!(", retry after {}s", d.as_secs_f64())).unwrap_or_default())]
    Edge { what: &'static str, status: u16, retry_after: Option<Duration>, message: String },
    /// Any other HTTP error answer.
    #[error("E2B {what} failed with HTTP {status}: {message}")]
    Http { what: &'static str, status: u16, message: String },
    /// No answer at all: DNS, TCP, TLS, a request timeout.
    #[error("cannot reach E2B ({what}): {message}")]
    Connection { what: &'static str, message: String },
    /// The document's wall-clock limit passed.
    #[error("reading the document in the E2B sandbox took longer than {secs}s")]
    Timeout { secs: u64 },
    /// The sandbox went away while the extractor ran (the stream ended without an end event, or the sandbox is
    /// no longer routable).
    #[error("the E2B sandbox died mid-run: {0}")]
    SandboxDied(String),
    /// envd answered the process RPC with a Connect error.
    #[error("the E2B sandbox daemon refused to run the extractor ({code}): {message}")]
    Rpc { code: String, message: String },
    /// The extractor ran and failed (non-zero exit, killed, or no result printed): the document's fault or the
    /// template's, not the network's.
    #[error("{0}")]
    Extractor(String),
    /// An answer that does not follow the documented API.
    #[error("unexpected answer from E2B: {0}")]
    Protocol(String),
}

impl E2bError {
    /// Worth retrying later: rate limits, 5xx, unreachable, timeouts, a sandbox that died. Not: a rejected key,
    /// a missing template, a bad config, an extractor that failed on this document.
    pub fn is_transient(&self) -> bool {
        match self {
            E2bError::RateLimited { .. }
            | E2bError::Edge { .. }
            | E2bError::Connection { .. }
            | E2bError::Timeout { .. }
            | E2bError::SandboxDied(_)
            | E2bError::Protocol(_) => true,
            E2bError::Http { status, .. } => *status >= 500 || *status == 408,
            E2bError::Rpc { code, message } => {
                matches!(
                    code.as_str(),
                    "unavailable" | "deadline_exceeded" | "resource_exhausted" | "aborted" | "unknown"
                ) && !message.contains("no such file or directory")
            }
            E2bError::Unauthorized
            | E2bError::Config(_)
            | E2bError::TemplateNotFound { .. }
            | E2bError::Extractor(_) => false,
        }
    }

    /// How long E2B asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            E2bError::RateLimited { retry_after, .. } | E2bError::Edge { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The schema error code a failed result gets.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            E2bError::Timeout { .. } => ErrorCode::Timeout,
            _ => ErrorCode::SandboxFailure,
        }
    }
}
