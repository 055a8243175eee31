//! Secrets (passwords, tokens, API keys, the database URL): wrapped so they never print and are wiped from
//! memory when dropped.
//!
//! Built on `secrecy`: reading one takes an explicit `expose()`, which makes every place that sends a secret
//! over the wire easy to find; `Debug` and `Display` print `***`, so a config dump or a log line cannot leak it.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::fmt;

#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(SecretString::from(s.into()))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_but_can_be_read_on_purpose() {
        let s: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
        assert!(!s.is_empty() && Secret::default().is_empty());
    }
}
