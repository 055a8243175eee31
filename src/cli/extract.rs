//! `extract` and the sandbox of the commands that need no servers (`extract`, `eval`).

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{CompanyConfig, SandboxConfig};
use crate::sandbox::Sandbox;

/// The sandbox for commands that need no servers: defaults, or [sandbox] and [company] from a config file.
pub(super) fn standalone_sandbox(config: Option<&Path>, no_embedded: bool) -> Result<Sandbox> {
    let (sandbox_cfg, company) = match config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            #[derive(serde::Deserialize)]
            struct Partial {
                sandbox: Option<SandboxConfig>,
                #[serde(default)]
                company: CompanyConfig,
            }
            let partial: Partial = toml::from_str::<toml::Table>(&text)
                .map_err(anyhow::Error::from)
                .and_then(|t| {
                    let mut keep = toml::Table::new();
                    for k in ["sandbox", "company"] {
                        if let Some(v) = t.get(k) {
                            keep.insert(k.into(), v.clone());
                        }
                    }
                    Ok(toml::Value::Table(keep).try_into()?)
                })
                .with_context(|| format!("invalid [sandbox] or [company] in {}", p.display()))?;
            (partial.sandbox.unwrap_or_else(default_sandbox), partial.company)
        }
        None => (default_sandbox(), CompanyConfig::default()),
    };
    Ok(Sandbox::new(&sandbox_cfg, &company)?.with_no_embedded(no_embedded))
}

pub(super) fn default_sandbox() -> SandboxConfig {
    toml::from_str::<SandboxConfig>("").expect("every [sandbox] key has a default")
}

pub(super) async fn extract(json: bool, no_embedded: bool, config: Option<&Path>, files: &[PathBuf]) -> Result<i32> {
    let sandbox = standalone_sandbox(config, no_embedded)?;
    let concurrency = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    use futures::StreamExt;
    let mut results = futures::stream::iter(files.iter().cloned().enumerate())
        .map(|(i, f)| {
            let sandbox = sandbox.clone();
            async move {
                let name = f.display().to_string();
                let out = match tokio::fs::read(&f).await {
                    Ok(bytes) => sandbox.extract(&name, &bytes).await,
                    Err(e) => vec![crate::extract::Extraction::failed(
                        name.as_str(),
                        crate::extract::ErrorCode::Unreadable,
                        format!("cannot read the file: {e}"),
                    )],
                };
                (i, out)
            }
        })
        .buffered(concurrency);
    let mut stdout = std::io::stdout().lock();
    let mut failed = false;
    while let Some((_, out)) = results.next().await {
        for r in out {
            failed |= !r.is_ok();
            if json {
                writeln!(stdout, "{}", serde_json::to_string(&r)?)?;
            } else {
                writeln!(stdout, "{}", crate::eval::human_line(&r))?;
            }
        }
    }
    // Every file still gets its line; the exit code tells a script that at least one of them failed.
    Ok(i32::from(failed))
}
