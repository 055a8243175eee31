//! The command line: each subcommand is a short function over the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{CompanyConfig, Config, SandboxBackend, SandboxConfig};
use crate::pipeline::App;
use crate::sandbox::{ExtractOptions, Sandbox};
use crate::store;

/// How long a stopping service may spend finishing the message in hand before it exits anyway. The sandbox
/// timeout bounds one document; this bounds the whole drain (systemd's TimeoutStopSec is set above it).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(150);
/// Where the config file is named when `--config` is not given, and the path used when neither is.
const CONFIG_ENV: &str = "INVOICE_INTAKE_CONFIG";
const DEFAULT_CONFIG: &str = "/etc/invoice-intake/config.toml";

#[derive(Debug, Parser)]
#[command(
    name = "invoice-intake",
    version,
    about = "Invoices emailed by suppliers become checked rows in Postgres, and every sender gets an answer."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The accountants' view of the stored invoices: list, show, correct, approve.
    Invoices {
        #[command(subcommand)]
        command: crate::ledger::InvoicesCommand,
    },
    /// The stored invoices as a file: CSV, or the libro registro de facturas recibidas.
    Export(crate::ledger::ExportArgs),
    /// Watch the mailbox until SIGTERM or SIGINT (the service).
    Run {
        /// The config file; else $INVOICE_INTAKE_CONFIG, else /etc/invoice-intake/config.toml.
        #[arg(long, short, env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Process everything waiting in the mailbox, deliver the replies, and exit.
    Once {
        /// The config file; else $INVOICE_INTAKE_CONFIG, else /etc/invoice-intake/config.toml.
        #[arg(long, short, env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Read invoice files with the sandboxed extractor; no servers needed.
    Extract {
        /// Print one JSON object per result per line (schema/invoice.schema.json).
        #[arg(long)]
        json: bool,
        /// Ignore XML embedded in PDFs and read what the page shows.
        #[arg(long)]
        no_embedded: bool,
        /// Take [sandbox] and [company] from this config file (else $INVOICE_INTAKE_CONFIG; without either, the
        /// defaults).
        #[arg(long, short, env = CONFIG_ENV)]
        config: Option<PathBuf>,
        /// The documents to read: PDF, PNG, JPEG, TIFF or e-invoice XML. The exit code is 1 when any of them fails.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Score the extractor on every file of DIR that has X.expected.json beside it (docs/evaluation.md).
    Eval {
        /// The folder of labelled documents (searched recursively).
        dir: PathBuf,
        /// Print the report as one JSON object instead of tables.
        #[arg(long)]
        json: bool,
        /// Ignore XML embedded in PDFs and score what the pages show.
        #[arg(long)]
        no_embedded: bool,
        /// Take [sandbox] and [company] from this config file (else $INVOICE_INTAKE_CONFIG; without either, the
        /// defaults).
        #[arg(long, short, env = CONFIG_ENV)]
        config: Option<PathBuf>,
    },
    /// Apply the database migrations.
    Migrate {
        /// The config file; else $INVOICE_INTAKE_CONFIG, else /etc/invoice-intake/config.toml.
        #[arg(long, short, env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check the config, IMAP, SMTP, Postgres and the sandbox's tools; exit non-zero listing what is missing.
    Doctor {
        /// The config file; else $INVOICE_INTAKE_CONFIG, else /etc/invoice-intake/config.toml.
        #[arg(long, short, env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Counts per state, failed and quarantined messages with their reasons, outbox backlog, last IMAP contact.
    Status {
        /// The config file; else $INVOICE_INTAKE_CONFIG, else /etc/invoice-intake/config.toml.
        #[arg(long, short, env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Send failed or quarantined messages through the pipeline again.
    Reprocess {
        /// The config file; else $INVOICE_INTAKE_CONFIG, else /etc/invoice-intake/config.toml.
        #[arg(long, short, env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Message ids, as `status` lists them.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Internal: read one document inside the jail and print its results as JSON lines.
    #[command(hide = true)]
    SandboxRun {
        /// The file name the supplier gave; with input `-` it comes with the document on stdin.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        jail: JailArgs,
        /// The document, or `-` for the name and the document on stdin (see `sandbox::document_header`).
        input: PathBuf,
    },
    /// Internal: report, from inside the jail, the tools and language packs present and every escape that fails.
    #[command(hide = true)]
    SandboxProbe {
        #[command(flatten)]
        jail: JailArgs,
        /// Host paths that must not be readable from the jail (the config file, the Postgres socket).
        #[arg(long = "secret")]
        secrets: Vec<String>,
        /// The OCR languages each OCR check is run in (`sandbox.ocr_languages`).
        #[arg(long = "lang", default_values_t = crate::sandbox::settings::default_ocr_languages())]
        langs: Vec<String>,
        /// Only the tools, not the local jail's escape tests (which do not apply in an E2B sandbox or an image
        /// build).
        #[arg(long)]
        tools_only: bool,
        /// Also check that the network is closed (E2B sandboxes are created without internet access).
        #[arg(long)]
        offline: bool,
        /// `-` to also check that a document arrives on stdin.
        input: Option<PathBuf>,
    },
    /// Internal: misbehave on purpose inside the jail (fork, memory, loop), to prove the jail stops it.
    #[command(hide = true)]
    SandboxBomb {
        /// What to try: fork, memory, loop, ...
        kind: String,
        #[command(flatten)]
        jail: JailArgs,
        /// Unused; accepted so the jail can start it like the extractor.
        input: Option<PathBuf>,
    },
}

/// What the worker tells the extractor besides the document (see `sandbox::ExtractOptions::to_args`).
#[derive(Debug, clap::Args)]
pub struct JailArgs {
    /// Ignore XML embedded in PDFs.
    #[arg(long)]
    no_embedded: bool,
    /// Pages read at most.
    #[arg(long, default_value_t = 50)]
    max_pages: u32,
    /// Images larger than this many pixels are refused before decoding.
    #[arg(long, default_value_t = 100_000_000)]
    max_pixels: u64,
    /// A name of our own company, never reported as the supplier.
    #[arg(long = "own-name")]
    own_names: Vec<String>,
    /// A tax ID of our own company, never reported as the supplier's.
    #[arg(long = "own-tax-id")]
    own_tax_ids: Vec<String>,
    /// A supplier-memory hint, as JSON (`extract::memory::FieldHint`).
    #[arg(long = "hint", value_parser = json_arg::<crate::extract::memory::FieldHint>)]
    hints: Vec<crate::extract::memory::FieldHint>,
    /// A corrected value to locate on the page, as JSON (`extract::memory::LearnRequest`).
    #[arg(long = "learn", value_parser = json_arg::<crate::extract::memory::LearnRequest>)]
    learn: Vec<crate::extract::memory::LearnRequest>,
}

fn json_arg<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_str(s).map_err(|e| e.to_string())
}

/// Run a parsed command; the returned code is the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run { config } => serve(&config).await,
        Command::Once { config } => once(&config).await,
        Command::Invoices { command } => crate::ledger::invoices(command).await,
        Command::Export(args) => crate::ledger::export(args).await,
        Command::Extract { json, no_embedded, config, files } => {
            extract(json, no_embedded, config.as_deref(), &files).await
        }
        Command::Eval { dir, json, no_embedded, config } => {
            let sandbox = standalone_sandbox(config.as_deref(), no_embedded)?;
            crate::eval::run(&sandbox, &dir, json).await
        }
        Command::Migrate { config } => {
            let cfg = load(&config)?;
            let pool = store::connect(cfg.database.url.expose(), 2).await?;
            store::migrate(&pool).await?;
            println!("migrations applied");
            Ok(0)
        }
        Command::Doctor { config } => doctor(&config).await,
        Command::Status { config } => status(&config).await,
        Command::Reprocess { config, ids } => {
            let cfg = load(&config)?;
            let pool = store::connect(cfg.database.url.expose(), 2).await?;
            let n = store::reprocess(&pool, &ids).await?;
            println!("{n} of {} messages queued again; the running service (or `once`) picks them up", ids.len());
            if (n as usize) < ids.len() {
                for (id, state) in store::message_states(&pool, &ids).await? {
                    match state {
                        None => println!("  #{id}: no such message"),
                        Some(s) if s == "received" => println!("  #{id}: already waiting to be handled"),
                        Some(s) if s == "processed" => {
                            println!("  #{id}: processed; only failed, quarantined or ignored mail is reprocessed")
                        }
                        Some(_) => {}
                    }
                }
            }
            Ok(if n as usize == ids.len() { 0 } else { 1 })
        }
        Command::SandboxRun { .. } | Command::SandboxProbe { .. } | Command::SandboxBomb { .. } => {
            run_in_jail(cli.command)
        }
    }
}

impl Command {
    /// The commands that run inside the jail, synchronously and without an async runtime.
    pub fn runs_in_jail(&self) -> bool {
        matches!(self, Command::SandboxRun { .. } | Command::SandboxProbe { .. } | Command::SandboxBomb { .. })
    }
}

/// The extractor's side of the jail: read one document (or probe, or misbehave on purpose) and print JSON lines.
pub fn run_in_jail(command: Command) -> Result<i32> {
    match command {
        Command::SandboxRun { name, jail, input } => {
            let opts = ExtractOptions {
                no_embedded: jail.no_embedded,
                max_pages: jail.max_pages,
                max_image_pixels: jail.max_pixels,
                own_names: jail.own_names,
                own_tax_ids: jail.own_tax_ids,
                hints: jail.hints,
                learn: jail.learn,
            };
            // No dot in the directory's name: tesseract looks for a zone file named after the image up to its
            // last dot, and with a dot in `/tmp/.tmpXYZ/document` it took `/tmp/` for one and read no text.
            let workdir =
                tempfile::Builder::new().prefix("extract-").tempdir().context("no private /tmp in the jail")?;
            let (input, name, readers) = if input.as_os_str() == crate::sandbox::STDIN_INPUT {
                // Most documents are PDFs: poppler's readers start while the document is still to come.
                let readers = crate::extract::pdf::Readers::start(workdir.path(), opts.max_pages, !opts.no_embedded);
                let path = workdir.path().join("document");
                let name = crate::sandbox::receive_document(std::io::stdin().lock(), &path)?;
                (path, name, readers.ok())
            } else {
                (input, name.context("--name is needed with a file")?, None)
            };
            let results = std::panic::catch_unwind(|| {
                crate::extract::extract_file(&input, &name, &opts, workdir.path(), readers)
            })
            .unwrap_or_else(|_| {
                vec![crate::extract::Extraction::failed(
                    name.as_str(),
                    crate::extract::ErrorCode::SandboxFailure,
                    "the extractor crashed on this document",
                )]
            });
            let mut out = std::io::stdout().lock();
            for r in results {
                writeln!(out, "{}", serde_json::to_string(&r)?)?;
            }
            Ok(0)
        }
        Command::SandboxProbe { secrets, langs, tools_only, offline, input, .. } => {
            let mut checks = Vec::new();
            if !tools_only {
                // Before anything of ours is written: a jail's /tmp must start empty.
                checks.push(crate::sandbox::selftest::fresh_tmp());
            }
            let dir = tempfile::Builder::new().prefix("probe-").tempdir().context("no private /tmp")?;
            if input.as_deref() == Some(Path::new(crate::sandbox::STDIN_INPUT)) {
                checks.push(crate::sandbox::selftest::document_arrives(dir.path()));
            }
            checks.extend(crate::extract::probe::tools(&langs, dir.path()));
            if offline {
                checks.extend(crate::sandbox::selftest::no_network());
            }
            if !tools_only {
                checks.extend(crate::sandbox::selftest::escape_attempts(&secrets));
            }
            let mut out = std::io::stdout().lock();
            for p in checks {
                writeln!(out, "{p}")?;
            }
            Ok(0)
        }
        Command::SandboxBomb { kind, .. } => crate::sandbox::selftest::bomb(&kind),
        _ => anyhow::bail!("not a jail command"),
    }
}

fn load(path: &Path) -> Result<Config> {
    Config::load(path)
}

async fn once(path: &Path) -> Result<i32> {
    let cfg = load(path)?;
    crate::telemetry::init(&cfg.log);
    let app = App::build(cfg).await?;
    let s = app.run_once().await?;
    info!(
        fetched = s.fetched,
        processed = s.processed,
        sent = s.sent,
        archived = s.archived,
        still_queued = s.queued,
        "once: done"
    );
    if s.queued > 0 {
        warn!(
            still_queued = s.queued,
            "some replies could not be delivered yet; they stay in the outbox for the next run"
        );
    }
    Ok(0)
}

async fn serve(path: &Path) -> Result<i32> {
    let cfg = load(path)?;
    crate::telemetry::init(&cfg.log);
    let app = App::build(cfg).await?;
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    if let Some(listen) = app.config.metrics.listen {
        // Unhealthy after three poll intervals (at least a minute) without reaching IMAP.
        let stale = Duration::from_secs((app.config.imap.poll_interval_secs * 3).max(60));
        let c = cancel.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(listen, stale, c).await {
                warn!(error = format!("{e:#}"), "metrics endpoint failed");
            }
        });
    }
    let watchdog = watchdog_interval();
    let worker = app.run_until_stopped(cancel.clone(), || {
        info!("ready: Postgres and IMAP are up");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    });
    tokio::pin!(worker);
    let ticker = async {
        // Between loop iterations the worker pings the watchdog itself; this covers long IDLE waits.
        loop {
            match watchdog {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        }
    };
    tokio::select! {
        r = &mut worker => r?,
        _ = ticker => unreachable!("the watchdog ticker never ends"),
    }
    Ok(0)
}

fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec / 2))
    } else {
        None
    }
}

async fn shutdown_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        warn!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: finishing the message in hand"),
        _ = int.recv() => info!("SIGINT: finishing the message in hand"),
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    cancel.cancel();
    tokio::time::sleep(SHUTDOWN_GRACE).await;
    warn!("shutdown grace of {}s passed; exiting", SHUTDOWN_GRACE.as_secs());
    std::process::exit(0);
}

/// The sandbox for commands that need no servers: defaults, or [sandbox] and [company] from a config file.
fn standalone_sandbox(config: Option<&Path>, no_embedded: bool) -> Result<Sandbox> {
    let (sandbox_cfg, company) = match config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            #[derive(serde::Deserialize)]
            struct Partial {
                sandbox: Option<SandboxConfig>,
                #[serde(default)]
                company: CompanyConfig,
            }
            let partial: Partial = toml::from_str::<toml::Table>(&text)
                .map_err(anyhow::Error::from)
                .and_then(|t| {
                    let mut keep = toml::Table::new();
                    for k in ["sandbox", "company"] {
                        if let Some(v) = t.get(k) {
                            keep.insert(k.into(), v.clone());
                        }
                    }
                    Ok(toml::Value::Table(keep).try_into()?)
                })
                .with_context(|| format!("invalid [sandbox] or [company] in {}", p.display()))?;
            (partial.sandbox.unwrap_or_else(default_sandbox), partial.company)
        }
        None => (default_sandbox(), CompanyConfig::default()),
    };
    Ok(Sandbox::new(&sandbox_cfg, &company)?.with_no_embedded(no_embedded))
}

fn default_sandbox() -> SandboxConfig {
    toml::from_str::<SandboxConfig>("").expect("every [sandbox] key has a default")
}

async fn extract(json: bool, no_embedded: bool, config: Option<&Path>, files: &[PathBuf]) -> Result<i32> {
    let sandbox = standalone_sandbox(config, no_embedded)?;
    let concurrency = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    use futures::StreamExt;
    let mut results = futures::stream::iter(files.iter().cloned().enumerate())
        .map(|(i, f)| {
            let sandbox = sandbox.clone();
            async move {
                let name = f.display().to_string();
                let out = match tokio::fs::read(&f).await {
                    Ok(bytes) => sandbox.extract(&name, &bytes).await,
                    Err(e) => vec![crate::extract::Extraction::failed(
                        name.as_str(),
                        crate::extract::ErrorCode::Unreadable,
                        format!("cannot read the file: {e}"),
                    )],
                };
                (i, out)
            }
        })
        .buffered(concurrency);
    let mut stdout = std::io::stdout().lock();
    let mut failed = false;
    while let Some((_, out)) = results.next().await {
        for r in out {
            failed |= !r.is_ok();
            if json {
                writeln!(stdout, "{}", serde_json::to_string(&r)?)?;
            } else {
                writeln!(stdout, "{}", crate::eval::human_line(&r))?;
            }
        }
    }
    // Every file still gets its line; the exit code tells a script that at least one of them failed.
    Ok(i32::from(failed))
}

async fn doctor(path: &Path) -> Result<i32> {
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
fn die_quietly_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread writes to stdout.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

async fn status(path: &Path) -> Result<i32> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(args: &[&str]) -> PathBuf {
        match Cli::try_parse_from(args).unwrap().command {
            Command::Status { config } => config,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_config_comes_from_the_flag_else_the_environment_else_etc() {
        // The only test that touches this variable, so setting it cannot race with another.
        std::env::remove_var(CONFIG_ENV);
        assert_eq!(config_of(&["invoice-intake", "status"]), Path::new("/etc/invoice-intake/config.toml"));
        std::env::set_var(CONFIG_ENV, "/srv/intake.toml");
        assert_eq!(config_of(&["invoice-intake", "status"]), Path::new("/srv/intake.toml"));
        assert_eq!(config_of(&["invoice-intake", "status", "-c", "my.toml"]), Path::new("my.toml"));
        std::env::remove_var(CONFIG_ENV);
    }

    #[test]
    fn every_flag_and_argument_has_help_text() {
        use clap::CommandFactory;
        let mut missing = Vec::new();
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                if arg.get_help().is_none() && !matches!(arg.get_id().as_str(), "help" | "version") {
                    missing.push(format!("{} {}", sub.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }
}
