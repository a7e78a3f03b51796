//! The ws-tokio peer server, on the same runtime as the tokio-tungstenite peer (one thread by
//! default): `--mode echo` sends every data message back, `--mode fanout` sends it to every
//! client. Written as the crate's docs suggest: replies are fed, and the next read writes
//! everything queued in one write before it waits; a fanout client's queued messages are
//! fed between its reads the same way.

use benches::peer::{runtime, Hub, Mode, PeerArgs};
use clap::Parser;
use futures_util::{Sink, SinkExt, StreamExt};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use tokio::net::{TcpListener, TcpStream};
use ws_tokio::{Message, WebSocketStream};

async fn echo(stream: TcpStream) {
    let Ok(mut ws) = ws_tokio::accept(stream).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if ws.feed(message).await.is_err() {
            return;
        }
    }
}

/// The next message received, feeding this client's queued room messages meanwhile.
async fn next_feeding(
    ws: &mut WebSocketStream<TcpStream>,
    queued: &mut tokio::sync::mpsc::UnboundedReceiver<Message>,
) -> Option<Message> {
    std::future::poll_fn(|cx| {
        while let Poll::Ready(Ok(())) = Pin::new(&mut *ws).poll_ready(cx) {
            match queued.poll_recv(cx) {
                Poll::Ready(Some(message)) => {
                    if Pin::new(&mut *ws).start_send(message).is_err() {
                        return Poll::Ready(None);
                    }
                }
                _ => break,
            }
        }
        // Writes what was fed, then reads.
        ws.poll_next_unpin(cx).map(|next| next.and_then(Result::ok))
    })
    .await
}

async fn fanout(stream: TcpStream, hub: Arc<Hub<Message>>) {
    let Ok(mut ws) = ws_tokio::accept(stream).await else {
        return;
    };
    let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel::<Message>();
    let id = hub.join(queue);
    while let Some(message) = next_feeding(&mut ws, &mut queued).await {
        hub.broadcast(&message);
    }
    hub.leave(id);
}

async fn serve(args: PeerArgs) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    let hub = Arc::new(Hub::default());
    eprintln!("peer-ws-tokio: {:?} on {}", args.mode, args.listen);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: keep serving the connections we have.
                eprintln!("peer-ws-tokio: accept: {e}");
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
