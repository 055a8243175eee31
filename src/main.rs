//! invoice-intake: the table of contents. Everything else lives in the library so tests can drive it.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = invoice_intake::cli::Cli::parse();
    match invoice_intake::cli::run(cli).await {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("invoice-intake: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
