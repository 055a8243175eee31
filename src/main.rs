//! invoice-intake: the table of contents. Everything else lives in the library so tests can drive it.

use clap::Parser;
use invoice_intake::cli::{self, Cli};

/// Blocking work (file reads, the odd DNS lookup) gets at most this many threads; the default 512 would let a
/// burst of mail pile up threads that count against the service user's process limit.
const MAX_BLOCKING_THREADS: usize = 32;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Inside the jail there is one document and no network: no async runtime, no threads to start.
    let result = if cli.command.runs_in_jail() {
        cli::run_in_jail(cli.command)
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(cli::run(cli)))
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("invoice-intake: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
