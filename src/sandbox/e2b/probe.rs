//! `doctor` for E2B: one real sandbox, checked from inside.

use tokio::time::Instant;

use super::client::{E2bSandbox, Inner};
use super::helpers::*;
use super::*;
use crate::sandbox::ExtractOptions;

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
    /// `doctor` for E2B: start a sandbox, check the extractor's version, run `sandbox-probe` inside it, read a
    /// tiny sample invoice, report the start latency, and delete the sandbox. Each line is (check, ok, detail).
    pub async fn probe(&self) -> Vec<(String, bool, String)> {
        let inner = &self.inner;
        let mut out: Vec<(String, bool, String)> = Vec::new();
        let _slot = match inner.slots.acquire().await {
            Ok(s) => s,
            Err(_) => {
                out.push(("e2b sandbox start".into(), false, "the E2B backend was shut down".into()));
                return out;
            }
        };
        let t0 = Instant::now();
        let guard = match Inner::create_detached(inner, "probe", inner.timeout * 4 + TTL_MARGIN, None).await {
            Ok(g) => g,
            Err(e) => {
                out.push(("e2b sandbox start".into(), false, e.to_string()));
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
        out.push(("e2b sandbox start".into(), true, detail));

        let step = |args: Vec<String>| inner.run_bounded(live, args);

        // The extractor is where the template says, runs, and is the same version as this service.
        let ours = env!("CARGO_PKG_VERSION");
        match step(vec!["--version".into()]).await {
            Ok(o) if o.end.as_ref().is_some_and(|e| e.exit_code == 0) => {
                let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
                let theirs = text.split_whitespace().last().unwrap_or("").to_string();
                let ok = theirs == ours;
                let detail = if ok {
                    format!("{} runs: {text}", inner.extractor)
                } else {
                    format!("the template has {text:?}, this service is {ours}: rebuild the template (e2b/README.md)")
                };
                out.push(("e2b extractor version".into(), ok, detail));
            }
            Ok(o) => out.push((
                "e2b extractor version".into(),
                false,
                format!("{} --version failed: {}", inner.extractor, describe_failure(&o)),
            )),
            Err(e) => out.push(("e2b extractor version".into(), false, format!("{}: {e}", inner.extractor))),
        }

        // The tools and language packs, seen from inside the sandbox at run time (not just at build time).
        match step(vec!["sandbox-probe".into()]).await {
            Ok(o) if o.end.as_ref().is_some_and(|e| e.exit_code == 0) => {
                let mut any = false;
                for line in String::from_utf8_lossy(&o.stdout).lines() {
                    if let Ok(p) = serde_json::from_str::<serde_json::Value>(line) {
                        any = true;
                        out.push((
                            p["name"].as_str().unwrap_or("?").to_string(),
                            p["ok"].as_bool().unwrap_or(false),
                            p["detail"].as_str().unwrap_or("").to_string(),
                        ));
                    }
                }
                if !any {
                    out.push((
                        "e2b sandbox-probe".into(),
                        false,
                        "the extractor's sandbox-probe printed nothing".into(),
                    ));
                }
            }
            Ok(o) => out.push(("e2b sandbox-probe".into(), false, describe_failure(&o))),
            Err(e) => out.push(("e2b sandbox-probe".into(), false, e.to_string())),
        }

        // A real document through the real path: upload, sandbox-run, parse.
        let t1 = Instant::now();
        let sample = async {
            let deadline = Instant::now() + inner.timeout;
            let args =
                run_args("e2b-probe.xml", &ExtractOptions { max_pages: 1, max_image_pixels: 1, ..Default::default() });
            tokio::time::timeout_at(deadline, async {
                inner.upload(live, PROBE_SAMPLE.as_bytes()).await?;
                let o = inner.run(live, args, deadline).await?;
                parse_results(&o)
            })
            .await
            .unwrap_or(Err(E2bError::Timeout { secs: inner.timeout.as_secs() }))
        };
        match sample.await {
            Ok(r) if r.first().and_then(|e| e.invoice_number.as_deref()) == Some(PROBE_SAMPLE_NUMBER) => out.push((
                "e2b sample document".into(),
                true,
                format!("read invoice {PROBE_SAMPLE_NUMBER} in {} ms", t1.elapsed().as_millis()),
            )),
            Ok(r) => out.push((
                "e2b sample document".into(),
                false,
                format!(
                    "expected invoice {PROBE_SAMPLE_NUMBER}, got {}",
                    serde_json::to_string(&r).unwrap_or_default()
                ),
            )),
            Err(e) => out.push(("e2b sample document".into(), false, e.to_string())),
        }

        let id = live.id.clone();
        match guard.delete().await {
            Ok(()) => out.push(("e2b sandbox delete".into(), true, format!("sandbox {id} deleted"))),
            Err(e) => out.push((
                "e2b sandbox delete".into(),
                false,
                format!("sandbox {id} not deleted ({e}); E2B stops it at its TTL"),
            )),
        }
        out
    }
}
