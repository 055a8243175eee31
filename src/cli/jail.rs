//! The extractor's side of the jail: the hidden subcommands the sandbox runs.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

use crate::sandbox::ExtractOptions;

use super::Command;

/// The extractor's side of the jail: read one document (or probe, or misbehave on purpose) and print JSON lines.
pub fn run_in_jail(command: Command) -> Result<i32> {
    match command {
        Command::SandboxRun { name, jail, input } => {
            let opts = ExtractOptions {
                no_embedded: jail.no_embedded,
                max_pages: jail.max_pages,
                max_image_pixels: jail.max_pixels,
                own_names: jail.own_names,
                own_tax_ids: jail.own_tax_ids,
                hints: jail.hints,
                learn: jail.learn,
            };
            // No dot in the directory's name: tesseract looks for a zone file named after the image up to its
            // last dot, and with a dot in `/tmp/.tmpXYZ/document` it took `/tmp/` for one and read no text.
            let workdir =
                tempfile::Builder::new().prefix("extract-").tempdir().context("no private /tmp in the jail")?;
            let (input, name, readers) = if input.as_os_str() == crate::sandbox::STDIN_INPUT {
                // Most documents are PDFs: poppler's readers start while the document is still to come.
                let readers = crate::extract::pdf::Readers::start(workdir.path(), opts.max_pages, !opts.no_embedded);
                let path = workdir.path().join("document");
                let name = crate::sandbox::receive_document(std::io::stdin().lock(), &path)?;
                (path, name, readers.ok())
            } else {
                (input, name.context("--name is needed with a file")?, None)
            };
            let results = std::panic::catch_unwind(|| {
                crate::extract::extract_file(&input, &name, &opts, workdir.path(), readers)
            })
            .unwrap_or_else(|_| {
                vec![crate::extract::Extraction::failed(
                    name.as_str(),
                    crate::extract::ErrorCode::SandboxFailure,
                    "the extractor crashed on this document",
                )]
            });
            let mut out = std::io::stdout().lock();
            for r in results {
                writeln!(out, "{}", serde_json::to_string(&r)?)?;
            }
            Ok(0)
        }
        Command::SandboxProbe { secrets, langs, tools_only, offline, input, .. } => {
            let mut checks = Vec::new();
            if !tools_only {
                // Before anything of ours is written: a jail's /tmp must start empty.
                checks.push(crate::sandbox::selftest::fresh_tmp());
            }
            let dir = tempfile::Builder::new().prefix("probe-").tempdir().context("no private /tmp")?;
            if input.as_deref() == Some(Path::new(crate::sandbox::STDIN_INPUT)) {
                checks.push(crate::sandbox::selftest::document_arrives(dir.path()));
            }
            checks.extend(crate::extract::probe::tools(&langs, dir.path()));
            if offline {
                checks.extend(crate::sandbox::selftest::no_network());
            }
            if !tools_only {
                checks.extend(crate::sandbox::selftest::escape_attempts(&secrets));
            }
            let mut out = std::io::stdout().lock();
            for p in checks {
                writeln!(out, "{p}")?;
            }
            Ok(0)
        }
        Command::SandboxBomb { kind, .. } => crate::sandbox::selftest::bomb(&kind),
        _ => anyhow::bail!("not a jail command"),
    }
}
