//! `doctor`'s checks of the sandbox, run from where documents are read: each tool reads its sample, and in the
//! local jail every escape fails.

use std::time::Duration;
use tokio::process::Command;

use super::{local, Backend, Sandbox, TimedOut, STDIN_INPUT};

/// One line of `doctor`: what was checked, whether it holds, and what to do when it does not.
#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// False for a check that means nothing on this backend (the local jail's escape tests in an E2B sandbox):
    /// shown, never failed.
    pub applies: bool,
}

impl Probe {
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Probe {
        Probe { name: name.into(), ok, detail: detail.into(), applies: true }
    }

    pub fn not_applicable(name: impl Into<String>, detail: impl Into<String>) -> Probe {
        Probe { name: name.into(), ok: true, detail: detail.into(), applies: false }
    }
}

impl Sandbox {
    /// Check, from where documents are read, that every tool and OCR language the extractor needs reads its
    /// sample, and, in the local jail, that every escape fails.
    pub async fn probe(&self, secrets: &[String]) -> Vec<Probe> {
        if let Backend::E2b(e2b) = &self.backend {
            return e2b.probe(&self.ocr_languages).await;
        }
        let mut probes = Vec::new();
        if matches!(self.backend, Backend::Jail) {
            let ok = Command::new("bwrap").arg("--version").output().await.map(|o| o.status.success()).unwrap_or(false);
            let detail = if ok { "bwrap runs" } else { "install the Debian package bubblewrap" };
            probes.push(Probe::new("bubblewrap", ok, detail));
            for (i, p) in local::protections().into_iter().enumerate() {
                probes.push(Probe::new(format!("protection {}", i + 1), true, p));
            }
            let ahead = self.standby.as_ref().map_or(0, |s| s.target);
            let detail = if ahead > 0 {
                format!("{ahead} wait for a document; each reads one and is gone (`[sandbox] standby`)")
            } else {
                "none: each jail starts when its document comes (`[sandbox] standby = 0`)".into()
            };
            probes.push(Probe::new("jails started ahead", true, detail));
        } else {
            probes.push(Probe::new(
                "sandbox",
                true,
                "WARNING: backend = \"none\": documents are read without isolation",
            ));
        }
        let mut cmd_args = vec!["sandbox-probe".to_string()];
        cmd_args.extend(self.options.to_args());
        cmd_args.extend(self.ocr_languages.iter().map(|l| format!("--lang={l}")));
        cmd_args.extend(secrets.iter().map(|s| format!("--secret={s}")));
        cmd_args.push(STDIN_INPUT.to_string());
        let output = match self.start_now(&cmd_args).await {
            Ok(started) => {
                started.finish(Some(("probe.pdf", b"%PDF-1.4 probe")), Duration::from_secs(60)).await.map(|f| f.output)
            }
            Err(e) => {
                probes.push(Probe::new("jail", false, format!("{e:#}")));
                return probes;
            }
        };
        match output {
            Ok(o) if o.status.success() => probes.extend(probe_lines(&o.stdout)),
            Ok(o) => probes.push(Probe::new(
                "jail",
                false,
                format!(
                    "the extractor does not run in the jail ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            )),
            Err(e) if e.is::<TimedOut>() => probes.push(Probe::new("jail", false, "the probe timed out")),
            Err(e) => probes.push(Probe::new("jail", false, format!("cannot run: {e:#}"))),
        }
        probes
    }
}

/// The checks `sandbox-probe` printed, one JSON object a line.
pub fn probe_lines(stdout: &[u8]) -> Vec<Probe> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|p| {
            Probe::new(
                p["name"].as_str().unwrap_or("?"),
                p["ok"].as_bool().unwrap_or(false),
                p["detail"].as_str().unwrap_or(""),
            )
        })
        .collect()
}
