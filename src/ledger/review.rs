//! Whether an accountant must look at an invoice before it is booked, and why; and whether it is addressed to us.

use serde::{Deserialize, Serialize};

use crate::config::CompanyConfig;
use crate::extract::{Check, Extraction};
use crate::fraud::normalize_tax_id;
use crate::store::keys::normalize_name;

/// The name of the check that records that the customer on the invoice is not us.
pub const ADDRESSED_TO_US: &str = "addressed_to_us";

/// Where an invoice stands with the accountants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// A check failed, a field was read with low confidence, a fraud signal, or a foreign customer.
    NeedsReview,
    /// Nothing to look at.
    AutoOk,
    /// An accountant approved it (`invoices approve`).
    Approved,
    /// An accountant corrected a field (`invoices correct`).
    Corrected,
}

impl ReviewState {
    pub const ALL: [ReviewState; 4] =
        [ReviewState::NeedsReview, ReviewState::AutoOk, ReviewState::Approved, ReviewState::Corrected];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::NeedsReview => "needs_review",
            ReviewState::AutoOk => "auto_ok",
            ReviewState::Approved => "approved",
            ReviewState::Corrected => "corrected",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewState> {
        ReviewState::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Why a failed check makes an invoice need review.
pub fn reason(c: &Check) -> String {
    match &c.detail {
        Some(d) => format!("check {} failed: {d}", c.name),
        None => format!("check {} failed", c.name),
    }
}

/// The review state of a newly stored invoice, with the reasons when it needs review. `alerts` are its fraud
/// signals; `min_confidence` is `[review] min_confidence`.
pub fn assess(e: &Extraction, alerts: &[String], min_confidence: f32) -> (ReviewState, Vec<String>) {
    let mut reasons: Vec<String> = e.failed_checks().map(reason).collect();
    for (field, c) in e.confidence.iter().flatten() {
        if *c < min_confidence {
            reasons.push(format!("{field} read with confidence {c:.2}, below {min_confidence:.2}"));
        }
    }
    reasons.extend(alerts.iter().map(|a| format!("fraud signal: {a}")));
    let state = if reasons.is_empty() { ReviewState::AutoOk } else { ReviewState::NeedsReview };
    (state, reasons)
}

/// Why the invoice's customer is clearly someone else than the company in `[company]`, if it is.
///
/// A customer tax ID on the page decides: ours or not. Without one, a customer name is compared with ours,
/// and only a name that shares no word with any of ours counts as another company: OCR may misspell a letter,
/// but not turn "Example Buyer" into "Hotel Miramar". With nothing configured, or no customer shown, nothing is
/// claimed.
pub fn foreign_customer(e: &Extraction, company: &CompanyConfig) -> Option<String> {
    let customer = e.customer.as_ref()?;
    let ours: Vec<String> = company.tax_ids.iter().filter_map(|t| normalize_tax_id(t)).collect();
    if let Some(id) = customer.tax_id.as_deref().and_then(normalize_tax_id) {
        if ours.is_empty() {
            return None;
        }
        if ours.contains(&id) {
            return None;
        }
        let who = customer.name.as_deref().map(|n| format!("{n}, ")).unwrap_or_default();
        return Some(format!("dirigida a otra empresa: {who}{}", customer.tax_id.as_deref().unwrap_or_default()));
    }
    let name = normalize_name(customer.name.as_deref()?)?;
    let our_words: Vec<String> = company
        .names
        .iter()
        .filter_map(|n| normalize_name(n))
        .flat_map(|n| n.split(' ').filter(|w| w.len() > 2).map(str::to_string).collect::<Vec<_>>())
        .collect();
    if our_words.is_empty() {
        return None;
    }
    let shares_a_word = name.split(' ').any(|w| our_words.iter().any(|o| o == w));
    (!shares_a_word).then(|| format!("dirigida a otra empresa: {}", customer.name.as_deref().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Party;
    use std::collections::BTreeMap;

    fn company() -> CompanyConfig {
        CompanyConfig {
            names: vec!["Example Buyer S.L.".into()],
            tax_ids: vec!["B76543214".into()],
            ..Default::default()
        }
    }

    fn to(name: Option<&str>, tax_id: Option<&str>) -> Extraction {
        let mut e = Extraction::empty("f.pdf");
        e.customer =
            Some(Party { name: name.map(str::to_string), tax_id: tax_id.map(str::to_string), ..Default::default() });
        e
    }

    #[test]
    fn an_invoice_to_us_is_ours_whatever_the_spelling() {
        assert_eq!(foreign_customer(&to(Some("EXAMPLE BUYER SL"), Some("ES-B76543214")), &company()), None);
        assert_eq!(foreign_customer(&to(Some("Examp1e Buyer"), None), &company()), None);
        assert_eq!(foreign_customer(&Extraction::empty("f.pdf"), &company()), None);
    }

    #[test]
    fn another_tax_id_or_an_unrelated_name_is_another_company() {
        let why = foreign_customer(&to(Some("Hotel Miramar S.A."), Some("A12345674")), &company()).unwrap();
        assert!(why.contains("Hotel Miramar") && why.contains("A12345674"), "{why}");
        assert!(foreign_customer(&to(Some("Hotel Miramar S.A."), None), &company()).is_some());
        assert_eq!(foreign_customer(&to(Some("Hotel Miramar S.A."), None), &CompanyConfig::default()), None);
    }

    #[test]
    fn low_confidence_failed_checks_and_alerts_need_review() {
        let mut e = Extraction::empty("f.pdf");
        e.confidence = Some(BTreeMap::from([("total_amount".to_string(), 0.95), ("issue_date".to_string(), 0.9)]));
        assert_eq!(assess(&e, &[], 0.8).0, ReviewState::AutoOk);
        assert_eq!(assess(&e, &["IBAN changed".into()], 0.8).0, ReviewState::NeedsReview);
        let (state, reasons) = assess(&e, &[], 0.92);
        assert_eq!(state, ReviewState::NeedsReview);
        assert_eq!(reasons, vec!["issue_date read with confidence 0.90, below 0.92"]);
        e.push_check(Check::new("totals_add_up", false, None));
        assert_eq!(assess(&e, &[], 0.5).1, vec!["check totals_add_up failed"]);
    }
}
