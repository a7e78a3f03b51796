//! What a server binary does around its application, shared by every binary built on this
//! crate: logs to stderr (`WS_LOG` filters them), configuration errors reported the way clap
//! and the server agree on (exit status 2), and serving until SIGINT or SIGTERM.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use ws_mio_server::{process, Config, Echo, Server};
//!
//! fn main() -> ExitCode {
//!     process::init_logging();
//!     let config = match process::configuration("my-server", Config::load()) {
//!         Ok(config) => config,
//!         Err(code) => return code,
//!     };
//!     process::serve("my-server", || Server::start(config, Echo))
//! }
//! ```

use crate::config::layered::ResolveError;
use crate::config::ConfigError;
use crate::server::ShutdownSignals;
use crate::Server;
use std::io;
use std::process::ExitCode;

/// Logs to stderr, filtered by `WS_LOG` (`info` when unset), in colour on a terminal.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WS_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The configuration, or the exit status after saying why there is none: help, the version
/// or a bad flag as clap prints them (clap exits itself), anything else as `name: error`
/// with status 2.
pub fn configuration<T>(name: &str, loaded: Result<T, ConfigError>) -> Result<T, ExitCode> {
    match loaded {
        Ok(config) => Ok(config),
        Err(ConfigError::Resolve(ResolveError::Args(e))) => e.exit(),
        Err(e) => {
            eprintln!("{name}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Starts a server with `start` and runs it until SIGINT or SIGTERM and its graceful shutdown
/// (a second signal ends the process at once); a failure to start or to run is reported as
/// `name: error` with status 1. The signals are caught before the server starts, so one that
/// comes while it starts still shuts it down gracefully.
pub fn serve(name: &str, start: impl FnOnce() -> io::Result<Server>) -> ExitCode {
    let run = ShutdownSignals::install()
        .and_then(|signals| start().and_then(|server| server.run_until(signals)));
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
