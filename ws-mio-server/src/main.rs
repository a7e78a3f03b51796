//! The `ws-mio-server` binary: `cargo run --release -p ws-mio-server` serves on 127.0.0.1:9001
//! with no configuration; `--help` lists the options.

mod malloc_tuning;

use std::process::ExitCode;
use ws_mio_server::chat::Chat;
use ws_mio_server::config::{layered::ResolveError, ConfigError};
use ws_mio_server::{Broadcast, Config, Echo, Mode, Server};

fn main() -> ExitCode {
    // While the process has one thread; see the module for why and the figures.
    let tuned = malloc_tuning::apply();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WS_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match Config::load() {
        Ok(config) => config,
        // Help, the version, or a bad flag or variable: as clap prints and exits.
        Err(ConfigError::Resolve(ResolveError::Args(e))) => e.exit(),
        Err(e) => {
            eprintln!("ws-mio-server: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::debug!(tuned, "allocator thresholds");
    let server = match config.mode {
        Mode::Echo => Server::start(config, Echo),
        Mode::Broadcast => Server::start(config, Broadcast),
        Mode::Chat => {
            let chat = Chat::new(config.chat.clone());
            Server::start(config, chat)
        }
    };
    let result = server.and_then(Server::run_until_signal);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws-mio-server: {e}");
            ExitCode::FAILURE
        }
    }
}
