//! Logging setup: `[log] format = "pretty" | "json"`, filtered by `[log] level` or `RUST_LOG`.
//! Secrets are `secret::Secret`, whose `Debug` and `Display` print `***`, so no log line can carry one.

use tracing_subscriber::{fmt, EnvFilter};

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive; `RUST_LOG` wins when set.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: default_log_format(), level: default_log_level() }
    }
}

fn default_log_format() -> LogFormat {
    LogFormat::Pretty
}
fn default_log_level() -> String {
    "info".into()
}

pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.level));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests, or a command that initialises twice) is harmless.
    let _ = match cfg.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
