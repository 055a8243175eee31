//! What the extractor is told besides the document: limits, and who we are (so that our own company is
//! never reported as the supplier).

use serde::Deserialize;

/// Our own company, so that it is never reported as the supplier of an invoice addressed to us.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyConfig {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub tax_ids: Vec<String>,
    /// What to do with an invoice whose customer is clearly another company.
    #[serde(default)]
    pub on_foreign_customer: ForeignCustomer,
}

/// `[company] on_foreign_customer`: book an invoice addressed to another company flagged for review, or answer
/// the supplier that it is not ours and book nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForeignCustomer {
    #[default]
    Flag,
    Reject,
}

/// Options the extractor needs besides the document.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    pub no_embedded: bool,
    pub max_pages: u32,
    pub max_image_pixels: u64,
    pub own_names: Vec<String>,
    pub own_tax_ids: Vec<String>,
    /// Where the supplier memory says suppliers print their fields (`extract::memory`).
    pub hints: Vec<crate::extract::memory::FieldHint>,
    /// Corrected values whose place on the page the extractor should report (`Extraction::learned`).
    pub learn: Vec<crate::extract::memory::LearnRequest>,
}

impl ExtractOptions {
    /// The command-line arguments of `invoice-intake sandbox-run` that carry these options.
    pub fn to_args(&self) -> Vec<String> {
        // `--flag=value` in one argument, so a value that starts with '-' (a supplier's file name, say) is never
        // taken for a flag.
        let mut args =
            vec![format!("--max-pages={}", self.max_pages), format!("--max-pixels={}", self.max_image_pixels)];
        if self.no_embedded {
            args.push("--no-embedded".into());
        }
        args.extend(self.own_names.iter().map(|n| format!("--own-name={n}")));
        args.extend(self.own_tax_ids.iter().map(|t| format!("--own-tax-id={t}")));
        args.extend(self.memory_args());
        args
    }

    /// `--hint=JSON` and `--learn=JSON`, one per hint and per request.
    pub fn memory_args(&self) -> Vec<String> {
        let hints = self.hints.iter().map(|h| format!("--hint={}", serde_json::to_string(h).unwrap_or_default()));
        let learn = self.learn.iter().map(|l| format!("--learn={}", serde_json::to_string(l).unwrap_or_default()));
        hints.chain(learn).collect()
    }
}
