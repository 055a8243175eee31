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
}

/// Options the extractor needs besides the document.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    pub no_embedded: bool,
    pub max_pages: u32,
    pub max_image_pixels: u64,
    pub own_names: Vec<String>,
    pub own_tax_ids: Vec<String>,
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
        args
    }
}
