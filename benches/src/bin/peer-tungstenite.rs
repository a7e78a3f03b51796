//! The tokio-tungstenite peer server: `--mode echo` sends every data message back,
//! `--mode fanout` sends it to every client. Written the way that crate's examples are: echo
//! forwards the read half into the write half (which flushes when no input is ready); each
//! fanout client has a writer task that batches what is queued into one flush.

use benches::peer::{runtime, Hub, Mode, PeerArgs};
use clap::Parser;
use futures_util::{future, SinkExt, StreamExt, TryStreamExt};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

async fn echo(stream: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|m| future::ready(m.is_text() || m.is_binary()))
        .forward(write)
        .await;
}

async fn fanout(stream: TcpStream, hub: Arc<Hub<Message>>) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut write, mut read) = ws.split();
    let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel::<Message>();
    let id = hub.join(queue);
    tokio::spawn(async move {
        while let Some(message) = queued.recv().await {
            if write.feed(message).await.is_err() {
                return;
            }
            while let Ok(message) = queued.try_recv() {
                if write.feed(message).await.is_err() {
                    return;
                }
            }
            if write.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = read.next().await {
        match message {
            Message::Text(_) | Message::Binary(_) => hub.broadcast(&message),
            Message::Close(_) => break,
            _ => {}
        }
    }
    // The hub held the writer's only sender: leaving ends the writer once it has drained.
    hub.leave(id);
}

async fn serve(args: PeerArgs) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    let hub = Arc::new(Hub::default());
    eprintln!("peer-tungstenite: {:?} on {}", args.mode, args.listen);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: keep serving the connections we have.
                eprintln!("peer-tungstenite: accept: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match args.mode {
            Mode::Echo => tokio::spawn(echo(stream)),
            Mode::Fanout => tokio::spawn(fanout(stream, hub.clone())),
        };
    }
}

fn main() -> std::io::Result<()> {
    let args = PeerArgs::parse();
    runtime(args.threads)?.block_on(serve(args))
}
