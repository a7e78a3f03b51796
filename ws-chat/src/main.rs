//! The `ws-chat` binary: `cargo run --release -p ws-chat` serves the chat and its page on
//! 127.0.0.1:9001 with no configuration; `--help` lists the server's options and the chat's.

// The server binary's allocator tuning, the same file: see it for why and the figures.
#[path = "../../ws-mio-server/src/malloc_tuning.rs"]
mod malloc_tuning;

use std::process::ExitCode;
use ws_chat::{Chat, Options};
use ws_mio_server::{process, Server};

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
    let hooks = malloc_tuning::hooks();
    process::serve("ws-chat", || {
        Server::start_with(options.server, chat, hooks)
    })
}
