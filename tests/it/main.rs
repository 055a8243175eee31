//! The integration tests, one binary: the real servers, the real jail, poppler and tesseract (see
//! docs/development.md). One binary links the library once instead of once per file. `tests/faults.rs` stops and
//! starts the mail servers, so it stays a binary of its own and never runs beside these.

#[path = "../common/mod.rs"]
mod common;
#[path = "../e2b_support/mod.rs"]
mod e2b_support;
// The layout families, which name the generator as `crate::pdf`, as the examples build them.
#[path = "../common/families/mod.rs"]
mod families;
use common::pdf;

mod accountants;
mod e2b_contract;
mod e2b_pipeline;
mod e2b_template;
mod e2e;
mod eval_corpus;
mod extract_cli;
mod hostile;
mod jail;
mod ledger;
mod mail_render;
mod mails;
mod metrics;
mod mime_corpus;
mod oauth;
mod qr;
mod scale;
mod tls;
mod trust;
