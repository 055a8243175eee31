//! `doctor` for E2B: one real sandbox, checked from inside.

use tokio::time::Instant;

use super::client::{E2bSandbox, Inner};
use super::helpers::*;
use super::*;
use crate::sandbox::{probe_lines, ExtractOptions, Probe};

/// A tiny UBL invoice the probe reads inside the sandbox, end to end.
pub(super) const PROBE_SAMPLE_NUMBER: &str = "E2B-PROBE-1";
pub(super) const PROBE_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
<cbc:ID>E2B-PROBE-1</cbc:ID>
<cbc:IssueDate>2025-01-01</cbc:IssueDate>
<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
<cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>Probe Supplier</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
<cac:TaxTotal><cbc:TaxAmount currencyID="EUR">21.00</cbc:TaxAmount></cac:TaxTotal>
<cac:LegalMonetaryTotal><cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount><cbc:TaxInclusiveAmount currencyID="EUR">121.00</cbc:TaxInclusiveAmount><cbc:PayableAmount currencyID="EUR">121.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
</Invoice>
"#;

impl E2bSandbox {
    /// `doctor` for E2B: what E2B promises, checked in one real sandbox. It starts (latency, the template ID an
    /// alias resolved to), its extractor has this service's version, every tool reads its sample in every OCR
    /// language asked for (`sandbox-probe --tools-only`, the same probe the template build runs), it cannot reach
    /// the internet (sandboxes are created with `allow_internet_access: false`), a sample invoice goes through the
    /// real path, and the sandbox is deleted and gone afterwards. The local jail's escape tests do not apply.
    pub async fn probe(&self, langs: &[String]) -> Vec<Probe> {
        let inner = &self.inner;
        let mut out: Vec<Probe> = Vec::new();
        let _slot = match inner.slots.acquire().await {
            Ok(s) => s,
            Err(_) => {
                out.push(Probe::new("e2b sandbox start", false, "the E2B backend was shut down"));
                return out;
            }
        };
        let t0 = Instant::now();
        let guard = match Inner::create_detached(inner, "probe", inner.probe_ttl(), None).await {
            Ok(g) => g,
            Err(e) => {
                out.push(Probe::new("e2b sandbox start", false, e.to_string()));
                return out;
            }
        };
        let live = guard.live();
        let started_ms = t0.elapsed().as_millis();
        let mut detail = format!(
            "sandbox {} started in {started_ms} ms from template ID {}{} (envd {})",
            live.id,
            live.template_id,
            live.alias.as_deref().map(|a| format!(", alias {a}")).unwrap_or_default(),
            live.envd_version,
        );
        if live.template_id != inner.template {
            detail.push_str(&format!(
                "; sandbox.e2b.template = {:?} resolved to {}: put the ID in the config to pin this template",
                inner.template, live.template_id
            ));
        }
        out.push(Probe::new("e2b sandbox start", true, detail));

        let step = |args: Vec<String>| inner.run_bounded(live, args);

        // The extractor is where the template says, runs, and is the same version as this service.
        let ours = env!("CARGO_PKG_VERSION");
        let name = "e2b extractor version";
        match step(vec!["--version".into()]).await {
            Ok(o) if o.succeeded() => {
                let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
                let theirs = text.split_whitespace().last().unwrap_or("").to_string();
                let ok = theirs == ours;
                let detail = if ok {
                    format!("{} runs: {text}", inner.extractor)
                } else {
                    format!("the template has {text:?}, this service is {ours}: rebuild the template (e2b/README.md)")
                };
                out.push(Probe::new(name, ok, detail));
            }
            Ok(o) => out.push(Probe::new(
                name,
                false,
                format!("{} --version failed: {}", inner.extractor, describe_failure(&o, &inner.extractor)),
            )),
            Err(e) => out.push(Probe::new(name, false, format!("{}: {e}", inner.extractor))),
        }

        // Every tool and language, doing the work, inside the sandbox at run time (not just at build time).
        let mut args = vec!["sandbox-probe".to_string(), "--tools-only".into(), "--offline".into()];
        args.extend(langs.iter().map(|l| format!("--lang={l}")));
        match step(args).await {
            Ok(o) if o.succeeded() => {
                let lines = probe_lines(&o.stdout);
                if lines.is_empty() {
                    out.push(Probe::new("e2b sandbox-probe", false, "the extractor's sandbox-probe printed nothing"));
                }
                for mut p in lines {
                    if p.name.starts_with("no internet") {
                        p.detail = format!("created with allow_internet_access: false; {}", p.detail);
                    }
                    out.push(p);
                }
            }
            Ok(o) => out.push(Probe::new("e2b sandbox-probe", false, describe_failure(&o, &inner.extractor))),
            Err(e) => out.push(Probe::new("e2b sandbox-probe", false, e.to_string())),
        }
        out.push(Probe::not_applicable(
            "jail escape tests",
            "not applicable: E2B isolates each sandbox in its own VM; the local jail's tests check bubblewrap",
        ));

        // A real document through the real path: upload, sandbox-run, parse.
        let t1 = Instant::now();
        let sample = async {
            let deadline = Instant::now() + inner.timeout;
            let args =
                run_args("e2b-probe.xml", &ExtractOptions { max_pages: 1, max_image_pixels: 1, ..Default::default() });
            tokio::time::timeout_at(deadline, async {
                inner.upload(live, PROBE_SAMPLE.as_bytes(), deadline).await?;
                let o = inner.run(live, args, deadline).await?;
                parse_results(&o, &inner.extractor)
            })
            .await
            .unwrap_or(Err(E2bError::Timeout { secs: inner.timeout.as_secs() }))
        };
        let name = "e2b sample document";
        match sample.await {
            Ok(r) if r.first().and_then(|e| e.invoice_number.as_deref()) == Some(PROBE_SAMPLE_NUMBER) => {
                out.push(Probe::new(
                    name,
                    true,
                    format!("read invoice {PROBE_SAMPLE_NUMBER} in {} ms", t1.elapsed().as_millis()),
                ))
            }
            Ok(r) => out.push(Probe::new(
                name,
                false,
                format!(
                    "expected invoice {PROBE_SAMPLE_NUMBER}, got {}",
                    serde_json::to_string(&r).unwrap_or_default()
                ),
            )),
            Err(e) => out.push(Probe::new(name, false, e.to_string())),
        }

        // Deleted, and gone: E2B no longer knows the sandbox.
        let id = live.id.clone();
        let name = "e2b sandbox delete";
        match guard.delete().await {
            Ok(()) => match inner.is_gone(&id).await {
                Ok(true) => out.push(Probe::new(name, true, format!("sandbox {id} deleted; E2B answers 404 for it"))),
                Ok(false) => out.push(Probe::new(
                    name,
                    false,
                    format!("sandbox {id} still listed after its deletion; E2B stops it at its TTL"),
                )),
                Err(e) => out.push(Probe::new(name, false, format!("sandbox {id} deleted, but not confirmed: {e}"))),
            },
            Err(e) => {
                out.push(Probe::new(name, false, format!("sandbox {id} not deleted ({e}); E2B stops it at its TTL")))
            }
        }
        out
    }
}
