//! The `ws-mio-server` binary: `cargo run --release -p ws-mio-server` serves the echo
//! application on 127.0.0.1:9001 with no configuration (`--mode broadcast` for plain fanout);
//! `--help` lists the options. The chat is the `ws-chat` binary.

mod malloc_tuning;

use clap::Command;
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use ws_mio_server::config::{layered, ConfigError};
use ws_mio_server::{process, Broadcast, Config, Echo, Server};

/// The application the binary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// Echo every message back: the mode the Autobahn run and the benchmarks use.
    Echo,
    /// Publish every message to every connection, the sender included: plain fanout.
    Broadcast,
}

/// The server's options and the choice of application.
#[derive(Debug, clap::Args, Serialize, Deserialize)]
struct Options {
    #[command(flatten)]
    #[serde(flatten)]
    server: Config,
    /// The application.
    #[arg(long, env = "WS_MODE", value_enum, default_value_t = Mode::Echo)]
    mode: Mode,
}

fn load() -> Result<Options, ConfigError> {
    let base = Command::new("ws-mio-server")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A WebSocket server on mio and ws-proto")
        .arg(layered::file_arg("WS_CONFIG"));
    let options: Options = layered::resolve(base, std::env::args_os(), layered::process_env)?;
    options.server.validate()?;
    Ok(options)
}

fn main() -> ExitCode {
    // While the process has one thread; see the module for why and the figures.
    let tuned = malloc_tuning::apply();
    process::init_logging();
    tracing::debug!(tuned, "allocator thresholds");
    let options = match process::configuration("ws-mio-server", load()) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let hooks = malloc_tuning::hooks();
    process::serve("ws-mio-server", || match options.mode {
        Mode::Echo => Server::start_with(options.server, Echo, hooks),
        Mode::Broadcast => Server::start_with(options.server, Broadcast, hooks),
    })
}
