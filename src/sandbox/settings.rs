//! The `[sandbox]` settings: which backend runs the extractor, and its limits. `config` reads and checks them.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxBackend {
    /// bubblewrap on this machine (the default).
    Local,
    /// No jail at all; only for machines without user namespaces, and loudly warned about.
    None,
    /// A fresh e2b.dev cloud sandbox per document (`[sandbox.e2b]`).
    E2b,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    #[serde(default = "default_backend")]
    pub backend: SandboxBackend,
    /// Wall-clock limit per document; the whole process tree is killed past it.
    #[serde(default = "default_sandbox_timeout")]
    pub timeout_secs: u64,
    /// Address-space limit for the extractor and its tools (tesseract needs a few hundred MB).
    #[serde(default = "default_sandbox_memory")]
    pub memory_mb: u64,
    #[serde(default = "default_sandbox_cpu")]
    pub cpu_secs: u64,
    /// Documents extracted at once; 0 means one per core.
    #[serde(default)]
    pub concurrency: usize,
    /// Jails started ahead of time, each waiting for the one document it will read; unset means one per
    /// extraction slot, 0 starts each jail only when its document arrives.
    #[serde(default)]
    pub standby: Option<usize>,
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// Decompression-bomb guard: images larger than this many pixels are refused before decoding.
    #[serde(default = "default_max_pixels")]
    pub max_image_pixels: u64,
    /// The extractor binary run inside the jail; defaults to this very executable.
    #[serde(default)]
    pub extractor: Option<PathBuf>,
    /// Settings of the E2B backend; required when `backend = "e2b"`.
    #[serde(default)]
    pub e2b: Option<super::e2b::E2bConfig>,
    /// The tesseract languages that must read a scan where the extractor runs: `doctor` and the template build
    /// check each one (tesseract's codes: eng, spa, deu, ...).
    #[serde(default = "default_ocr_languages")]
    pub ocr_languages: Vec<String>,
}

/// English and Spanish: the suppliers' languages.
pub fn default_ocr_languages() -> Vec<String> {
    vec!["eng".into(), "spa".into()]
}

fn default_backend() -> SandboxBackend {
    SandboxBackend::Local
}
fn default_sandbox_timeout() -> u64 {
    120
}
fn default_sandbox_memory() -> u64 {
    2048
}
fn default_sandbox_cpu() -> u64 {
    120
}
fn default_max_pages() -> u32 {
    50
}
fn default_max_pixels() -> u64 {
    // An A4 page at 600 dpi is about 35 Mpx; anything past 100 Mpx is a bomb, not a scan.
    100_000_000
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            backend: default_backend(),
            timeout_secs: default_sandbox_timeout(),
            memory_mb: default_sandbox_memory(),
            cpu_secs: default_sandbox_cpu(),
            concurrency: 0,
            standby: None,
            max_pages: default_max_pages(),
            max_image_pixels: default_max_pixels(),
            extractor: None,
            e2b: None,
            ocr_languages: default_ocr_languages(),
        }
    }
}
