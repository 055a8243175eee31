//! invoice-intake: invoices emailed by suppliers become checked rows in Postgres, and every sender gets an answer.
//!
//! Data moves one way, and each arrow is a durable state in Postgres:
//! IMAP (`mail::imap`) → message rows (`store`) → attachments split by `mail::mime` → the sandboxed extractor
//! (`sandbox`, running `extract`) → invoice rows and an outbox of replies (`store`) → SMTP (`mail::smtp`), and the
//! message is moved to its final IMAP folder. `pipeline` drives the arrows; `main.rs` only parses the command line.

#[cfg(test)]
mod architecture;
pub mod cli;
pub mod config;
pub mod eval;
pub mod extract;
pub mod fraud;
pub mod ledger;
pub mod mail;
pub mod metrics;
pub mod pipeline;
pub mod sandbox;
pub mod secret;
pub mod store;
pub mod telemetry;
