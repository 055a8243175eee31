//! OAuth2 access tokens for XOAUTH2 (Gmail, Microsoft 365): from a file that another agent keeps fresh, or from
//! the refresh-token flow (RFC 6749 section 6) against the provider's token endpoint.
//!
//! Microsoft rotates refresh tokens and lets an unused one expire after 90 days (Paperless-ngx #11341 lost
//! mailboxes that way), so a refresh token the endpoint sends back replaces the stored one at once, written
//! atomically with mode 0600.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use crate::secret::Secret;

/// Token endpoints answer within seconds; a hung one must not hold the mail loop.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Refresh this long before the provider's expiry, so a token never dies in the middle of a session.
const EXPIRY_MARGIN: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// A file holding a current access token (kept fresh by something else, e.g. a credential helper).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The provider's token endpoint, for the refresh-token flow
    /// (Google: https://oauth2.googleapis.com/token; Microsoft: https://login.microsoftonline.com/TENANT/oauth2/v2.0/token).
    #[serde(default)]
    pub token_url: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Where the refresh token lives; rewritten when the provider rotates it.
    #[serde(default)]
    pub refresh_token_file: Option<PathBuf>,
    /// Requested scopes, space-separated (Microsoft wants them on refresh; Google ignores them).
    #[serde(default)]
    pub scope: Option<String>,
}

impl OAuth2Config {
    pub fn validate(&self, key: &str) -> Result<()> {
        match (&self.token_file, &self.token_url) {
            (Some(_), Some(_)) => bail!("{key}: set token_file or token_url, not both"),
            (None, None) => bail!("{key}: set token_file, or token_url with client_id and refresh_token_file"),
            (None, Some(_)) => {
                if self.client_id.is_none() || self.refresh_token_file.is_none() {
                    bail!("{key}: the refresh-token flow needs client_id and refresh_token_file");
                }
                Ok(())
            }
            (Some(_), None) => Ok(()),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Hands out access tokens, refreshing them when needed.
#[derive(Debug)]
pub struct TokenSource {
    cfg: OAuth2Config,
    http: reqwest::Client,
    cached: Mutex<Option<(Secret, Instant)>>,
}

impl TokenSource {
    pub fn new(cfg: OAuth2Config) -> Result<TokenSource> {
        let http = reqwest::Client::builder().timeout(TOKEN_TIMEOUT).build().context("building the HTTP client")?;
        Ok(TokenSource { cfg, http, cached: Mutex::new(None) })
    }

    /// A valid access token.
    pub async fn access_token(&self) -> Result<Secret> {
        if let Some(path) = &self.cfg.token_file {
            return read_secret(path).await;
        }
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() + EXPIRY_MARGIN < *until {
                return Ok(token.clone());
            }
        }
        let (token, lifetime) = self.refresh().await?;
        *cached = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// Forget the cached token (the server refused it), so the next call refreshes.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn refresh(&self) -> Result<(Secret, Duration)> {
        let url = self.cfg.token_url.as_deref().context("no token_url")?;
        let refresh_path = self.cfg.refresh_token_file.as_deref().context("no refresh_token_file")?;
        let refresh_token = read_secret(refresh_path).await?;
        let client_secret = match (&self.cfg.client_secret, &self.cfg.client_secret_file) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(p)) => Some(read_secret(p).await?),
            (None, None) => None,
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", self.cfg.client_id.as_deref().unwrap_or("")),
        ];
        if let Some(s) = &client_secret {
            form.push(("client_secret", s.expose()));
        }
        if let Some(scope) = &self.cfg.scope {
            form.push(("scope", scope));
        }
        let resp = self.http.post(url).form(&form).send().await.context("token endpoint unreachable")?;
        let status = resp.status();
        if !status.is_success() {
            // The body may hold the provider's error code ("invalid_grant" = re-consent needed); never tokens.
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let code = body["error"].as_str().unwrap_or("unknown error");
            bail!("token endpoint refused the refresh token ({status}, {code})");
        }
        let body: TokenResponse = resp.json().await.context("token endpoint sent no access_token")?;
        if let Some(new_refresh) = body.refresh_token.filter(|t| t != refresh_token.expose()) {
            write_secret_atomically(refresh_path, &new_refresh).await.context("storing the rotated refresh token")?;
            tracing::info!(file = %refresh_path.display(), "stored the rotated refresh token");
        }
        Ok((Secret::new(body.access_token), Duration::from_secs(body.expires_in.unwrap_or(3600))))
    }
}

/// The SASL XOAUTH2 initial response (Google's and Microsoft's format).
pub fn xoauth2_response(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

async fn read_secret(path: &Path) -> Result<Secret> {
    let s = tokio::fs::read_to_string(path).await.with_context(|| format!("reading {}", path.display()))?;
    let s = s.trim();
    if s.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(Secret::new(s))
}

async fn write_secret_atomically(path: &Path, value: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("new");
    let value = value.to_string();
    let (tmp2, path2) = (tmp.clone(), path.to_path_buf());
    tokio::task::spawn_blocking(move || -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp2)?;
        f.write_all(value.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp2, &path2)?;
        Ok(())
    })
    .await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xoauth2_response_has_the_providers_shape() {
        assert_eq!(xoauth2_response("a@b.com", "tok"), "user=a@b.com\x01auth=Bearer tok\x01\x01");
    }

    #[test]
    fn a_config_names_one_way_to_get_tokens() {
        let both: OAuth2Config = toml::from_str("token_file = \"/t\"\ntoken_url = \"http://x\"").unwrap();
        assert!(both.validate("imap.oauth2").is_err());
        let refresh: OAuth2Config = toml::from_str("token_url = \"http://x\"").unwrap();
        assert!(format!("{}", refresh.validate("imap.oauth2").unwrap_err()).contains("client_id"));
        let file: OAuth2Config = toml::from_str("token_file = \"/t\"").unwrap();
        assert!(file.validate("imap.oauth2").is_ok());
    }
}
