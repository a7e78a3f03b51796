//! The ws-tokio peer server, on the same runtime as the tokio-tungstenite peer (one thread by
//! default): `--mode echo` sends every data message back, `--mode fanout` sends it to every
//! client. Written as the crate's docs suggest: replies are fed, and the next read writes
//! everything queued in one write before it waits; fanout publishes to a `ws_tokio::room::Room`
//! (each message encoded once, in a bounded log) and reads every client with `recv_with`,
//! which sends what the room published since the client's last turn in one write.

use benches::peer::{runtime, Mode, PeerArgs};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use ws_tokio::room::Room;
use ws_tokio::{CloseCode, Error};

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

async fn fanout(stream: TcpStream, room: Room) {
    let Ok(mut ws) = ws_tokio::accept(stream).await else {
        return;
    };
    let mut member = room.join();
    while let Some(next) = ws.recv_with(&mut member).await {
        match next {
            Ok(message) => room.publish(&message),
            // A member too slow for the room's log is closed, as a slow consumer.
            Err(Error::Lagged { .. }) => {
                let _ = ws.close(CloseCode::POLICY_VIOLATION, "too slow").await;
                return;
            }
            Err(_) => return,
        }
    }
}

async fn serve(args: PeerArgs) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    let room = Room::new();
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
            Mode::Fanout => tokio::spawn(fanout(stream, room.clone())),
        };
    }
}

fn main() -> std::io::Result<()> {
    let args = PeerArgs::parse();
    runtime(args.threads)?.block_on(serve(args))
}
