//! The command line: each subcommand is a short function over the library.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::store;

mod extract;
mod jail;
mod operator;
mod service;

use extract::{extract, standalone_sandbox};
pub use jail::run_in_jail;
use operator::{doctor, status};
use service::{once, serve};

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

fn load(path: &Path) -> Result<Config> {
    Config::load(path)
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
