//! `doctor` and `status`: what an operator asks a deployment.

use anyhow::Result;
use std::path::Path;

use crate::config::{Config, SandboxBackend};
use crate::sandbox::Sandbox;
use crate::store;

use super::load;

pub(super) async fn doctor(path: &Path) -> Result<i32> {
    die_quietly_on_closed_stdout();
    let mut missing: Vec<String> = Vec::new();
    let mut line = |name: &str, ok: bool, detail: &str| {
        println!("{} {name:<28} {detail}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            missing.push(format!("{name}: {detail}"));
        }
    };
    let cfg = match Config::load(path) {
        Ok(c) => {
            line("config", true, &path.display().to_string());
            c
        }
        Err(e) => {
            line("config", false, &format!("{e:#}"));
            println!("\nmissing:\n- config: {e:#}");
            return Ok(1);
        }
    };
    if cfg.security.sender_policy == crate::config::SenderPolicy::Any {
        println!(
            "warn {:<28} sender_policy = \"any\": anyone can have replies sent to any address; use \"authenticated\"",
            "security"
        );
    }
    if cfg.notify.accountants.is_empty() {
        println!(
            "warn {:<28} no [notify] accountants: nobody is told of stored invoices or quarantined mail",
            "notify"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o004 != 0 {
                println!(
                    "warn {:<28} {} is world-readable; secrets in it can be read by any user",
                    "config permissions",
                    path.display()
                );
            }
        }
    }
    match store::connect(cfg.database.url.expose(), 1).await {
        Ok(_) => {
            let pending = store::MIGRATOR.iter().count();
            line("postgres", true, &format!("connected; {pending} migrations known"));
        }
        Err(e) => line("postgres", false, &format!("{e:#}")),
    }
    match crate::mail::imap::ImapSession::connect(&cfg.imap).await {
        Ok(mut s) => {
            let sel = s.select(&cfg.imap.mailbox).await;
            let idle = if s.has_idle() { "IDLE available" } else { "no IDLE: polling" };
            match sel {
                Ok(_) => line(
                    "imap",
                    true,
                    &format!("logged in as {}; {} selectable; {idle}", cfg.imap.username, cfg.imap.mailbox),
                ),
                Err(e) => line("imap", false, &format!("{e:#}")),
            }
            s.logout().await;
        }
        Err(e) => line("imap", false, &format!("{e:#}")),
    }
    match crate::mail::smtp::Mailer::new(&cfg.smtp) {
        Ok(m) => match m.test_connection().await {
            Ok(true) => line("smtp", true, &format!("{}:{} answers", cfg.smtp.host, cfg.smtp.port)),
            Ok(false) => line("smtp", false, "the server did not accept the connection"),
            Err(e) => line("smtp", false, &format!("{e:#}")),
        },
        Err(e) => line("smtp", false, &format!("{e:#}")),
    }
    match Sandbox::new(&cfg.sandbox, &cfg.company) {
        Ok(sb) => {
            if sb.backend() == SandboxBackend::None {
                println!("warn {:<28} backend = \"none\": documents are read WITHOUT isolation", "sandbox");
            }
            let secrets = [
                std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string(),
                "/var/run/postgresql/.s.PGSQL.5432".to_string(),
            ];
            for p in sb.probe(&secrets).await {
                if p.applies {
                    line(&p.name, p.ok, &p.detail);
                } else {
                    println!("n/a  {:<28} {}", p.name, p.detail);
                }
            }
        }
        Err(e) => line("sandbox", false, &format!("{e:#}")),
    }
    if missing.is_empty() {
        println!("\nall checks passed");
        Ok(0)
    } else {
        println!("\nmissing:");
        for m in &missing {
            println!("- {m}");
        }
        Ok(1)
    }
}

/// `status | head` and `doctor | head`: a reader that stops early ends us quietly, as it ends any Unix tool,
/// instead of `println!` panicking on EPIPE. Only for these printing commands: the service itself must get
/// EPIPE as an error on a dropped socket, never be killed by the signal.
pub(super) fn die_quietly_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread writes to stdout.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub(super) async fn status(path: &Path) -> Result<i32> {
    die_quietly_on_closed_stdout();
    let cfg = load(path)?;
    let pool = store::connect(cfg.database.url.expose(), 2).await?;
    println!("messages by state:");
    let counts = store::state_counts(&pool).await?;
    if counts.is_empty() {
        println!("  (none yet)");
    }
    for (state, n) in counts {
        println!("  {state:<12} {n}");
    }
    let reviews = store::ledger::review_counts(&pool).await?;
    if !reviews.is_empty() {
        println!("invoices by review state (`invoices list --state STATE`):");
        for (state, n) in reviews {
            println!("  {state:<12} {n}");
        }
    }
    println!("outbox backlog: {}", store::pending_mail_count(&pool).await?);
    if let Some(p) = store::oldest_pending_mail(&pool).await? {
        println!(
            "oldest pending mail: outbox #{} ({}) to {}, queued {}, {} attempts, next {}; last error: {}",
            p.id,
            p.kind,
            p.recipients.join(", "),
            p.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            p.attempts,
            p.next_attempt_at.format("%Y-%m-%d %H:%M:%S UTC"),
            p.last_error.as_deref().map(crate::mail::headers::line_text).unwrap_or_else(|| "none".into())
        );
    }
    match store::last_imap_contact(&pool).await? {
        Some(t) => println!("last IMAP contact: {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
        None => println!("last IMAP contact: never"),
    }
    // Only one `run` process talks IMAP; the others extract and deliver.
    match store::imap_owner(&pool, &cfg.imap.mailbox).await? {
        Some(owner) => println!("IMAP session held by: {owner}"),
        None => println!("IMAP session held by: nobody (no `run` process is watching the mailbox)"),
    }
    let problems = store::problem_messages(&pool, 50).await?;
    if !problems.is_empty() {
        println!("failed and quarantined (newest first):");
        for p in problems {
            println!(
                "  #{:<6} {:<11} {} {:?} from {}: {}",
                p.id,
                p.state,
                p.updated_at.format("%Y-%m-%d %H:%M"),
                crate::mail::headers::line_text(&p.subject.unwrap_or_default()),
                p.sender.unwrap_or_else(|| "?".into()),
                p.reason.unwrap_or_default()
            );
        }
    }
    let flagged = store::flagged_invoices(&pool, 20).await?;
    if !flagged.is_empty() {
        println!("invoices with fraud signals (newest first):");
        for (id, number, sender, signals) in flagged {
            let kinds: Vec<String> = signals
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["kind"].as_str().map(str::to_string))
                .collect();
            println!("  invoice #{id} {} from {sender}: {}", number.unwrap_or_default(), kinds.join(", "));
        }
    }
    let undeliverable = store::undeliverable_mail(&pool, 20).await?;
    if !undeliverable.is_empty() {
        println!("undeliverable mail:");
        for (id, to, err) in undeliverable {
            println!(
                "  outbox #{id} to {}: {}",
                to.join(", "),
                crate::mail::headers::line_text(&err.unwrap_or_default())
            );
        }
    }
    Ok(0)
}
