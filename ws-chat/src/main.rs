//! The `ws-chat` binary: `cargo run --release -p ws-chat` serves the chat and its page on
//! 127.0.0.1:9001 with no configuration; `--help` lists the server's options and the chat's.
//! With `--redis URL`, instances sharing that Redis share their rooms ([`ws_redis`]).

// The server binary's allocator tuning, the same file: see it for why and the figures.
#[path = "../../ws-mio-server/src/malloc_tuning.rs"]
mod malloc_tuning;

use std::process::ExitCode;
use std::sync::Arc;
use ws_chat::{Chat, Options};
use ws_mio_server::{process, Server};
use ws_redis::RedisBroker;

fn main() -> ExitCode {
    // While the process has one thread.
    let tuned = malloc_tuning::apply();
    process::init_logging();
    tracing::debug!(tuned, "allocator thresholds");
    let options = match process::configuration("ws-chat", Options::load()) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let chat = Chat::new(options.chat);
    let mut hooks = malloc_tuning::hooks();
    let max_message = usize::try_from(options.server.max_message_size).unwrap_or(usize::MAX);
    if let Some(mut config) = options.cluster.config(max_message) {
        // The cache of the rooms' history holds what an instance's own history would.
        config.cache = options.server.history_limits();
        match RedisBroker::start(config) {
            Ok(broker) => hooks.broker = Some(Arc::new(broker)),
            Err(e) => {
                eprintln!("ws-chat: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    process::serve("ws-chat", || {
        Server::start_with(options.server, chat, hooks)
    })
}
