//! XOAUTH2 against real servers: Dovecot (IMAP, and SMTP submission) checks our bearer tokens with a local token
//! service that stands in for Google's or Microsoft's, and we get those tokens with the refresh-token flow,
//! storing the rotated refresh token.

use crate::common;

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use common::pdf::SampleInvoice;
use common::{MailBuilder, TestWorld};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// The token service: refresh tokens R<n> are rotated to R<n+1>; access tokens A<n> belong to the intake user.
#[derive(Default)]
struct Provider {
    refresh: Mutex<HashMap<String, u32>>,
    access: Mutex<HashMap<String, String>>,
    refreshes: Mutex<u32>,
}

async fn token(
    State(p): State<Arc<Provider>>,
    Form(f): Form<HashMap<String, String>>,
) -> (StatusCode, Json<serde_json::Value>) {
    let known = f.get("refresh_token").and_then(|r| p.refresh.lock().unwrap().remove(r));
    match (f.get("grant_type").map(String::as_str), known, f.get("client_id").map(String::as_str)) {
        (Some("refresh_token"), Some(n), Some("invoice-intake")) => {
            let (access, next) = (format!("A{n}"), format!("R{}", n + 1));
            p.refresh.lock().unwrap().insert(next.clone(), n + 1);
            p.access.lock().unwrap().insert(access.clone(), format!("intake@{}", common::DOMAIN));
            *p.refreshes.lock().unwrap() += 1;
            (
                StatusCode::OK,
                Json(
                    serde_json::json!({"access_token": access, "expires_in": 3600, "refresh_token": next, "token_type": "Bearer"}),
                ),
            )
        }
        _ => (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_grant"}))),
    }
}

async fn tokeninfo(
    State(p): State<Arc<Provider>>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Json<serde_json::Value>) {
    match q.get("access_token").and_then(|t| p.access.lock().unwrap().get(t).cloned()) {
        Some(email) => (StatusCode::OK, Json(serde_json::json!({"email": email}))),
        None => (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "invalid_token"}))),
    }
}

/// One provider per test binary, on the port the test Dovecot asks (OAUTH_PORT, 10080).
async fn provider() -> Arc<Provider> {
    static PROVIDER: OnceCell<Arc<Provider>> = OnceCell::const_new();
    PROVIDER
        .get_or_init(|| async {
            let p = Arc::new(Provider::default());
            p.refresh.lock().unwrap().insert("R0".into(), 0);
            let app = axum::Router::new()
                .route("/token", post(token))
                .route("/tokeninfo", get(tokeninfo))
                .with_state(p.clone());
            let port = std::env::var("OAUTH_PORT").unwrap_or_else(|_| "10080".into());
            let listener =
                tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("the OAuth port is free");
            // A thread of its own, so the service outlives each test's runtime.
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
                    axum::serve(listener.into_std().map(tokio::net::TcpListener::from_std).unwrap().unwrap(), app)
                        .await
                        .unwrap()
                })
            });
            p
        })
        .await
        .clone()
}

fn oauth_section(refresh_file: &std::path::Path) -> toml::Value {
    let port = std::env::var("OAUTH_PORT").unwrap_or_else(|_| "10080".into());
    let mut t = toml::Table::new();
    t.insert("token_url".into(), format!("http://127.0.0.1:{port}/token").into());
    t.insert("client_id".into(), "invoice-intake".into());
    t.insert("client_secret".into(), "not-so-secret".into());
    t.insert("refresh_token_file".into(), refresh_file.display().to_string().into());
    toml::Value::Table(t)
}

#[tokio::test]
async fn the_pipeline_logs_in_with_xoauth2_and_stores_the_rotated_refresh_token() {
    let p = provider().await;
    let dir = tempfile::tempdir().unwrap();
    let refresh_file = dir.path().join("refresh-token");
    // Take the provider's current refresh token, as an operator does once after consent.
    let current = p.refresh.lock().unwrap().keys().next().cloned().unwrap();
    std::fs::write(&refresh_file, &current).unwrap();
    let section = oauth_section(&refresh_file);
    let w = TestWorld::with_config(|t| {
        let servers = common::Servers::from_env();
        let imap = t["imap"].as_table_mut().unwrap();
        imap.insert("auth".into(), "xoauth2".into());
        imap.remove("password");
        imap.insert("oauth2".into(), section.clone());
        let smtp = t["smtp"].as_table_mut().unwrap();
        smtp.insert("host".into(), "localhost".into());
        smtp.insert("port".into(), i64::from(servers.submission_port).into());
        smtp.insert("tls".into(), "starttls".into());
        smtp.insert("ca_file".into(), servers.tls_ca_file.clone().into());
        smtp.insert("username".into(), format!("intake@{}", common::DOMAIN).into());
        smtp.insert("auth".into(), "xoauth2".into());
        smtp.insert("oauth2".into(), section.clone());
    })
    .await;
    let mail = MailBuilder::new(&w, "Factura").attach(
        "f.pdf",
        "application/pdf",
        SampleInvoice::basic("OAUTH-1").render_pdf(),
    );
    w.send(&mail.build()).await.unwrap();
    let refreshes_before = *p.refreshes.lock().unwrap();
    let summary = w.run_once().await.unwrap();
    assert_eq!((summary.processed, summary.sent), (1, 2), "{summary:?}");
    assert!(w.mailbox("supplier", 1).await.unwrap()[0].text.contains("OAUTH-1"));
    assert!(*p.refreshes.lock().unwrap() > refreshes_before, "tokens came from the refresh flow");
    let stored = std::fs::read_to_string(&refresh_file).unwrap();
    assert_ne!(stored, current, "the rotated refresh token replaced the old one");
    assert!(p.refresh.lock().unwrap().contains_key(&stored), "and it is the one the provider now accepts");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&refresh_file).unwrap().permissions().mode() & 0o777, 0o600);
    w.drop_database().await;
}

#[tokio::test]
async fn a_revoked_refresh_token_is_a_clear_login_error() {
    provider().await;
    let dir = tempfile::tempdir().unwrap();
    let refresh_file = dir.path().join("refresh-token");
    std::fs::write(&refresh_file, "R-revoked").unwrap();
    let section = oauth_section(&refresh_file);
    let w = TestWorld::with_config(|t| {
        let imap = t["imap"].as_table_mut().unwrap();
        imap.insert("auth".into(), "xoauth2".into());
        imap.insert("oauth2".into(), section);
    })
    .await;
    let err = match invoice_intake::mail::imap::ImapSession::connect(&w.config.imap).await {
        Ok(_) => panic!("logged in with a revoked refresh token"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("invalid_grant"), "{err}");
    w.drop_database().await;
}
