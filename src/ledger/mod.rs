//! The accountants' ledger: every invoice once, with a review state, corrections that keep an audit trail, the
//! supplier memory those corrections teach, and the commands to list, show, correct, approve and export.
//!
//! ```text
//! stored ──▶ needs_review ──(invoices correct)──▶ corrected
//!        │               └─(invoices approve)───▶ approved
//!        └─▶ auto_ok
//! ```

pub mod correct;
pub mod digest;
pub mod export;
pub mod instructions;
pub use crate::store::keys;
pub mod review;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::extract::memory::{FieldHint, LearnRequest};
use crate::extract::Extraction;
use crate::store::{self, ledger as db};
use review::ReviewState;

#[derive(Debug, Subcommand)]
pub enum InvoicesCommand {
    /// The stored invoices, oldest first.
    List {
        #[arg(long)]
        config: PathBuf,
        /// Received on or after this day (YYYY-MM-DD).
        #[arg(long)]
        since: Option<NaiveDate>,
        /// Received on or before this day (YYYY-MM-DD).
        #[arg(long)]
        until: Option<NaiveDate>,
        /// needs_review, auto_ok, approved or corrected.
        #[arg(long)]
        state: Option<String>,
        /// Part of the supplier's name, tax ID or address.
        #[arg(long)]
        supplier: Option<String>,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Every field of one invoice with its confidence and source, its checks and its corrections.
    Show {
        #[arg(long)]
        config: PathBuf,
        id: i64,
        /// Write the original document into this directory.
        #[arg(long)]
        save_original: Option<PathBuf>,
    },
    /// Correct fields: `FIELD=VALUE`, fields named as in the schema (total_amount, supplier.tax_id, …).
    Correct {
        #[arg(long)]
        config: PathBuf,
        id: i64,
        #[arg(required = true)]
        assignments: Vec<String>,
        /// Who makes the correction (default: the login name).
        #[arg(long)]
        by: Option<String>,
    },
    /// Mark invoices as reviewed and fine.
    Approve {
        #[arg(long)]
        config: PathBuf,
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    LibroRegistro,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The service's config file (for the database).
    #[arg(long)]
    config: PathBuf,
    /// `csv`: one row per invoice; `libro-registro`: the Spanish register of received invoices, one line per
    /// invoice and VAT rate.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Invoices issued on or after this day (YYYY-MM-DD).
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Invoices issued on or before this day (YYYY-MM-DD).
    #[arg(long)]
    to: Option<NaiveDate>,
}

async fn connect(path: &Path) -> Result<(Config, sqlx::PgPool)> {
    let cfg = Config::load(path)?;
    let pool = store::connect(cfg.database.url.expose(), 2).await?;
    store::migrate(&pool).await?;
    Ok((cfg, pool))
}

pub async fn invoices(command: InvoicesCommand) -> Result<i32> {
    match command {
        InvoicesCommand::List { config, since, until, state, supplier, format } => {
            if let Some(s) = &state {
                if ReviewState::parse(s).is_none() {
                    bail!("--state must be one of needs_review, auto_ok, approved, corrected; got {s:?}");
                }
            }
            let (_, pool) = connect(&config).await?;
            let filter = db::Filter { since, until, state, supplier, ..Default::default() };
            let rows = db::list_invoices(&pool, &filter).await?;
            match format {
                ListFormat::Table => print!("{}", export::table(&rows)),
                ListFormat::Csv => print!("{}", export::csv(&rows)),
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&export::json(&rows))?),
            }
            Ok(0)
        }
        InvoicesCommand::Show { config, id, save_original } => show(&config, id, save_original.as_deref()).await,
        InvoicesCommand::Correct { config, id, assignments, by } => {
            let by = by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into());
            correct(&config, id, &assignments, &by).await
        }
        InvoicesCommand::Approve { config, ids } => {
            let (_, pool) = connect(&config).await?;
            let done = db::approve(&pool, &ids).await?;
            let missing: Vec<String> = ids.iter().filter(|i| !done.contains(i)).map(|i| i.to_string()).collect();
            for id in &done {
                println!("invoice {id}: approved");
            }
            if !missing.is_empty() {
                eprintln!("no such invoice: {}", missing.join(", "));
                return Ok(1);
            }
            Ok(0)
        }
    }
}

pub async fn export(args: ExportArgs) -> Result<i32> {
    let (_, pool) = connect(&args.config).await?;
    let filter = db::Filter { issued_from: args.from, issued_to: args.to, ..Default::default() };
    let rows = db::list_invoices(&pool, &filter).await?;
    match args.format {
        ExportFormat::Csv => print!("{}", export::csv(&rows)),
        ExportFormat::LibroRegistro => print!("{}", export::libro_registro(&rows)),
    }
    Ok(0)
}

fn stored_extraction(result: &serde_json::Value) -> Result<Extraction> {
    serde_json::from_value(result.clone()).context("the stored result is not an extraction")
}

async fn show(config: &Path, id: i64, save_original: Option<&Path>) -> Result<i32> {
    let (cfg, pool) = connect(config).await?;
    let Some(row) = db::invoice(&pool, id).await? else {
        eprintln!("no such invoice: {id}");
        return Ok(1);
    };
    let e = stored_extraction(&row.result)?;
    let corrections = db::corrections(&pool, id).await?;
    println!("invoice {id}: {}", row.state);
    println!("received {} from {}", row.received_at.format("%Y-%m-%d %H:%M:%S UTC"), row.sender);
    let source = row.source.clone().unwrap_or_default();
    println!("\n{:<18} {:<36} {:>10}  source", "field", "value", "confidence");
    for field in correct::FIELDS {
        let value = correct::current(&e, field).unwrap_or_else(|| "-".into());
        let conf = e.confidence.as_ref().and_then(|c| c.get(*field)).map(|c| format!("{c:.2}")).unwrap_or_default();
        let from = if corrections.iter().any(|c| c.field == *field) {
            "correction".to_string()
        } else {
            e.field_sources
                .as_ref()
                .and_then(|s| s.get(*field))
                .and_then(|s| serde_json::to_value(s).ok())
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_else(|| source.clone())
        };
        println!("{field:<18} {value:<36} {conf:>10}  {from}");
    }
    if let Some(taxes) = e.taxes.as_ref().filter(|t| !t.is_empty()) {
        println!("\ntaxes:");
        for t in taxes {
            let s = |d: Option<rust_decimal::Decimal>| d.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
            println!("  rate {}%  base {}  amount {}", s(t.rate), s(t.base), s(t.amount));
        }
    }
    if let Some(checks) = e.checks.as_ref().filter(|c| !c.is_empty()) {
        let when = if corrections.is_empty() { "on the values as read" } else { "after the corrections" };
        println!("\nchecks ({when}):");
        for c in checks {
            let detail = c.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            println!("  {} {}{detail}", if c.ok { "ok  " } else { "FAIL" }, c.name);
        }
    }
    for w in e.warnings.iter().flatten() {
        println!("warning: {w}");
    }
    let reasons: Vec<String> =
        row.review_reasons.as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_string)).collect();
    if !reasons.is_empty() {
        println!("\nneeds review because:");
        for r in reasons {
            println!("  - {r}");
        }
    }
    println!("\ncorrections:");
    if corrections.is_empty() {
        println!("  (none)");
    }
    for c in &corrections {
        println!(
            "  {} {} by {} via {}: {} -> {}",
            c.corrected_at.format("%Y-%m-%d %H:%M:%S UTC"),
            c.field,
            c.corrected_by,
            c.via,
            c.old_value.as_deref().unwrap_or("(none)"),
            c.new_value
        );
    }
    let notes = crate::store::accountants::notes(&pool, id).await?;
    if !notes.is_empty() {
        println!("\nnotes:");
    }
    for n in &notes {
        println!("  {} {}: {}", n.created_at.format("%Y-%m-%d %H:%M:%S UTC"), n.author, n.body);
    }
    if let Some(dir) = save_original {
        let path = save_document(&cfg, &pool, id, dir).await?;
        println!("\noriginal written to {}", path.display());
    }
    Ok(0)
}

/// The document the invoice was read from, as the supplier sent it.
async fn original_document(cfg: &Config, pool: &sqlx::PgPool, id: i64) -> Result<crate::mail::mime::Document> {
    let (raw, position, filename) = db::original(pool, id).await?.context("the invoice's message is gone")?;
    let incoming = crate::mail::mime::parse(&raw, &cfg.smtp.from, cfg.limits.max_attachments);
    let doc = incoming
        .documents
        .into_iter()
        .nth(position as usize)
        .filter(|d| d.filename == filename)
        .with_context(|| format!("the stored message no longer yields the document {filename:?}"))?;
    Ok(doc)
}

async fn save_document(cfg: &Config, pool: &sqlx::PgPool, id: i64, dir: &Path) -> Result<PathBuf> {
    let doc = original_document(cfg, pool, id).await?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // The name came from the internet: only its last component, and never a hidden or empty one.
    let base = Path::new(&doc.filename).file_name().and_then(|n| n.to_str()).unwrap_or("document");
    let base = base.trim_start_matches('.');
    let name = format!("{id}-{}", if base.is_empty() { "document" } else { base });
    let path = dir.join(name);
    std::fs::write(&path, &doc.bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Apply `FIELD=VALUE` corrections to invoice `id` from the command line.
async fn correct(config: &Path, id: i64, assignments: &[String], by: &str) -> Result<i32> {
    let (cfg, pool) = connect(config).await?;
    let mut pairs = Vec::new();
    for a in assignments {
        match correct::parse_assignment(a) {
            Ok(pair) => pairs.push(pair),
            Err(why) => {
                eprintln!("invoice {id}: {why}; nothing was changed");
                return Ok(2);
            }
        }
    }
    let mut tx = pool.begin().await?;
    let done = match apply_corrections(&cfg, &pool, &mut tx, id, &pairs, by, "cli").await? {
        Corrected::Done(done) => done,
        refused => {
            eprintln!("invoice {id}: {}", refused.why().unwrap_or_default());
            return Ok(if matches!(refused, Corrected::NoSuchInvoice) { 1 } else { 2 });
        }
    };
    tx.commit().await?;
    for c in &done.changes {
        println!("invoice {id}: {} {} -> {}", c.field, c.old.as_deref().unwrap_or("(none)"), c.new);
    }
    for h in &done.hints {
        println!(
            "learnt: this supplier prints {} {} the label {:?} (value like {})",
            h.field,
            if h.below { "under" } else { "after" },
            h.label,
            h.pattern
        );
    }
    for c in &done.rechecked {
        let detail = c.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        println!("check again {} {}{detail}", if c.ok { "ok  " } else { "FAIL" }, c.name);
    }
    println!("invoice {id}: {}", done.state.as_str());
    Ok(0)
}

/// One field changed by a correction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub field: String,
    pub old: Option<String>,
    pub new: String,
}

/// What a correction did.
#[derive(Debug, Clone)]
pub struct CorrectionDone {
    pub changes: Vec<Change>,
    /// What the supplier memory learnt from it.
    pub hints: Vec<FieldHint>,
    /// The checks run again on the corrected record.
    pub rechecked: Vec<crate::extract::Check>,
    /// `corrected`, or `needs_review` when a check run again fails.
    pub state: ReviewState,
    pub reasons: Vec<String>,
}

/// The outcome of `apply_corrections`; only `Done` changed anything.
#[derive(Debug, Clone)]
pub enum Corrected {
    Done(CorrectionDone),
    NoSuchInvoice,
    /// A value is not valid for its field: why.
    Invalid(String),
    /// With the corrections the invoice would be the same as another one already stored.
    WouldDuplicate,
}

impl Corrected {
    /// Why nothing was changed, for a refused correction.
    pub fn why(&self) -> Option<String> {
        match self {
            Corrected::Done(_) => None,
            Corrected::NoSuchInvoice => Some("no such invoice".into()),
            Corrected::Invalid(why) => Some(format!("{why}; nothing was changed")),
            Corrected::WouldDuplicate => Some(
                "with this correction it would be the same invoice as one already stored; nothing was changed".into(),
            ),
        }
    }
}

/// Apply `(field, value)` corrections to invoice `id` inside `tx`: every value checked as an extracted one would
/// be (all or nothing), the checks run again on the corrected record, who made it and how (`cli`, `mail`) in the
/// audit trail, and what the supplier memory learns from it.
pub async fn apply_corrections(
    cfg: &Config,
    pool: &sqlx::PgPool,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: i64,
    pairs: &[(String, String)],
    by: &str,
    via: &str,
) -> Result<Corrected> {
    let Some((result, sender)) = db::lock_invoice(tx, id).await? else { return Ok(Corrected::NoSuchInvoice) };
    let mut e = stored_extraction(&result)?;
    let mut changes = Vec::new();
    for (field, value) in pairs {
        match correct::apply(&mut e, field, value) {
            Ok((old, new)) => changes.push(Change { field: field.clone(), old, new }),
            Err(why) => return Ok(Corrected::Invalid(why)),
        }
    }
    let failed = correct::recheck(&mut e);
    let (state, reasons) = if failed.is_empty() {
        (ReviewState::Corrected, Vec::new())
    } else {
        (ReviewState::NeedsReview, failed.iter().map(review::reason).collect())
    };
    let supplier = keys::InvoiceKeys::of(&e, &sender).supplier;
    let hints = learn(cfg, pool, id, &supplier, &changes).await;

    // A unique violation would abort the caller's transaction: a savepoint keeps it usable.
    let mut sp = sqlx::Connection::begin(&mut **tx).await?;
    let stored = db::update_fields(&mut sp, id, &e, &sender, state.as_str(), &serde_json::json!(reasons)).await;
    if let Err(err) = stored {
        if is_unique_violation(&err) {
            sp.rollback().await?;
            return Ok(Corrected::WouldDuplicate);
        }
        return Err(err);
    }
    sp.commit().await?;
    for c in &changes {
        let record = db::NewCorrection {
            invoice_ref: id,
            field: &c.field,
            old_value: c.old.as_deref(),
            new_value: &c.new,
            corrected_by: by,
            via,
        };
        db::insert_correction(tx, &record).await?;
    }
    for h in &hints {
        db::remember_hint(tx, &h.supplier, &h.field, &serde_json::to_value(h)?, id).await?;
    }
    let rechecked =
        e.checks.iter().flatten().filter(|c| correct::RECHECKED.contains(&c.name.as_str())).cloned().collect();
    Ok(Corrected::Done(CorrectionDone { changes, hints, rechecked, state, reasons }))
}

/// Ask the extractor, in its jail, where the original document prints the corrected values. A document it
/// cannot place them on teaches nothing; that is not an error for the correction.
async fn learn(cfg: &Config, pool: &sqlx::PgPool, id: i64, supplier: &str, changes: &[Change]) -> Vec<FieldHint> {
    let requests: Vec<LearnRequest> = changes
        .iter()
        .filter(|c| crate::extract::memory::FIELDS.contains(&c.field.as_str()))
        .map(|c| LearnRequest { supplier: supplier.to_string(), field: c.field.clone(), value: c.new.clone() })
        .collect();
    if requests.is_empty() {
        return Vec::new();
    }
    let doc = match original_document(cfg, pool, id).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "cannot learn from this correction");
            return Vec::new();
        }
    };
    let sandbox = match crate::sandbox::Sandbox::new(&cfg.sandbox, &cfg.company) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "cannot learn from this correction");
            return Vec::new();
        }
    };
    let results = sandbox.extract_with_memory(&doc.filename, &doc.bytes, Vec::new(), requests).await;
    results.into_iter().flat_map(|r| r.learned.unwrap_or_default()).collect()
}

fn is_unique_violation(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>()
            .and_then(|s| s.as_database_error())
            .is_some_and(|d| d.code().as_deref() == Some("23505"))
    })
}

/// The supplier-memory hints stored for this sender's suppliers, as the extractor takes them. A hint that no
/// longer parses is skipped.
pub async fn hints_for(pool: &sqlx::PgPool, sender: &str) -> Result<Vec<FieldHint>> {
    Ok(db::hints_for_sender(pool, sender).await?.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect())
}
