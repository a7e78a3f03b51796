//! The Autobahn testee for ws-tokio's server role: an echo server on a single-threaded tokio
//! runtime, permessage-deflate accepted with ws-proto's defaults.
//!
//! Usage: `autobahn-tokio-server [--addr 127.0.0.1:9001]`

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use ws_tokio::{Acceptor, Config, DeflateConfig};

/// Autobahn's limits and compression, and a read buffer fit for its 16 MiB messages.
fn config() -> Config {
    Config {
        protocol: autobahn::config(),
        deflate: Some(DeflateConfig::default()),
        read_buffer_size: 64 << 10,
        ..Config::default()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let addr = match args.iter().position(|a| a == "--addr") {
        Some(i) => args.get(i + 1).cloned().unwrap_or_default(),
        None => "127.0.0.1:9001".to_string(),
    };
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("autobahn-tokio-server: echo on {addr}");
    let acceptor = Acceptor::new(config());
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let mut ws = match acceptor.accept(tcp).await {
                Ok(ws) => ws,
                Err(e) => return eprintln!("autobahn-tokio-server: handshake: {e}"),
            };
            // Replies are fed, and written together when the next read waits.
            while let Some(Ok(message)) = ws.next().await {
                if ws.feed(message).await.is_err() {
                    break;
                }
            }
        });
    }
}
