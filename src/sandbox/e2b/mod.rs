//! The E2B backend: each document is read in a fresh e2b.dev cloud sandbox instead of a local bubblewrap jail.
//!
//! One document, one sandbox, always deleted. For each document the client
//! 1. creates a sandbox from our template: `POST {api_url}/sandboxes` with `X-API-Key`, asking for `secure: true`
//!    (so envd wants an access token) and `allow_internet_access: false`, and with a TTL a minute past our own
//!    deadline, so E2B kills the sandbox by itself even if this process dies before it can;
//! 2. uploads the document to the sandbox daemon (envd, port 49983): `POST {envd}/files?path=/tmp/document`,
//!    multipart field `file`, header `X-Access-Token`;
//! 3. runs the extractor by absolute path with an argument vector (no shell, so a supplier's file name can never
//!    become a command) through envd's Connect-RPC `POST {envd}/process.Process/Start` (server streaming, JSON
//!    envelopes: 1 flag byte, 4-byte big-endian length, JSON; flag 0x02 marks the end-of-stream frame);
//! 4. parses the JSON lines the extractor printed into `Extraction`s exactly as the local backend does;
//! 5. deletes the sandbox (`DELETE {api_url}/sandboxes/{id}`): on success, on error, on timeout, and, through
//!    [`SandboxGuard`]'s `Drop`, when the caller's future is dropped half-way.
//!
//! A sandbox never reads a second document: one that read a hostile file is never trusted again. The optional
//! pool only pre-starts sandboxes to hide the cold start. Concurrency is bounded by a semaphore
//! (`max_concurrent`), sandbox creations by a token bucket (`creations_per_second`), and a 429 pauses every
//! creation for its `Retry-After`.
//!
//! envd's address is `https://49983-{sandboxID}.{domain}` (the domain from the create answer, else the API
//! URL's host without `api.`); `envd_url_override` replaces it, e.g. with E2B's shared `https://sandbox.e2b.app`
//! or a local test server. Every envd request also carries `E2b-Sandbox-Id` and `E2b-Sandbox-Port`, which is how
//! the shared host routes, so either form works.

mod bucket;
mod client;
mod config;
mod envd;
mod error;
mod guard;
mod helpers;
mod probe;
mod wire;

pub use client::E2bSandbox;
pub use config::E2bConfig;
pub use error::E2bError;

use std::time::Duration;

/// E2B's public API (the `servers` entry of its OpenAPI spec; the SDKs derive it as `https://api.{E2B_DOMAIN}`).
pub const DEFAULT_API_URL: &str = "https://api.e2b.app";
/// The port envd, E2B's in-sandbox daemon, listens on.
pub const ENVD_PORT: u16 = 49983;
/// Where the template puts the extractor (see `e2b/Dockerfile`). Absolute: E2B's PATH is not to be relied on.
pub const DEFAULT_EXTRACTOR_PATH: &str = "/usr/local/bin/invoice-intake";
/// Where the document is uploaded inside the sandbox.
pub const SANDBOX_DOCUMENT: &str = "/tmp/document";
/// The user envd runs the extractor as (E2B's default unprivileged user).
const SANDBOX_USER: &str = "user";
/// `Authorization: Basic base64("user:")`, how envd is told which user to run a process as.
const SANDBOX_USER_BASIC: &str = "Basic dXNlcjo=";

/// Same limits as the local backend: results are small, stderr is only read for its last lines.
const MAX_STDOUT: usize = 16 * 1024 * 1024;
const MAX_STDERR: usize = 64 * 1024;
/// No single Connect frame may be larger than this (stdout arrives in small chunks).
const MAX_FRAME: usize = 16 * 1024 * 1024 + 4096;
/// E2B's TTL is our deadline plus this, so E2B kills a sandbox we failed to delete.
const TTL_MARGIN: Duration = Duration::from_secs(60);
/// A pooled sandbox older than this is deleted rather than used, and its TTL covers this much idling.
const POOL_MAX_IDLE: Duration = Duration::from_secs(240);
/// Per-request limits for the REST calls (creation, deletion).
const API_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A 429 is retried this many times in all, each after its `Retry-After` (capped).
const CREATE_ATTEMPTS: u32 = 4;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// envd sends keepalive events at this interval (seconds) while a process is quiet, as the SDKs ask it to.
const KEEPALIVE_SECS: &str = "50";
/// envd versions from which `stdin: false` is understood (the SDKs' `ENVD_COMMANDS_STDIN`).
const ENVD_COMMANDS_STDIN: (u32, u32, u32) = (0, 3, 0);
/// The environment the extractor gets: the same as in the local jail, independent of the template's ENV.
const EXTRACTOR_ENV: [(&str, &str); 4] =
    [("PATH", "/usr/bin:/bin"), ("HOME", "/tmp"), ("LANG", "C.UTF-8"), ("OMP_THREAD_LIMIT", "1")];
