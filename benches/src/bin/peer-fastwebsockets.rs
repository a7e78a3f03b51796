//! The fastwebsockets peer server: `--mode echo` sends every data message back, `--mode fanout`
//! sends it to every client. Echo is that crate's own example (read a frame, write it back);
//! fanout splits each connection into a reader and a buffered writer task that flushes when its
//! queue is empty, so deliveries are batched as the other servers batch them.

use benches::peer::{runtime, Hub, Mode, PeerArgs};
use benches::upgrade;
use bytes::Bytes;
use clap::Parser;
use fastwebsockets::{
    FragmentCollector, FragmentCollectorRead, Frame, OpCode, Payload, Role, WebSocket,
    WebSocketError,
};
use std::sync::Arc;
use tokio::io::BufWriter;
use tokio::net::{TcpListener, TcpStream};

type Item = (OpCode, Bytes);

fn into_bytes(payload: Payload<'_>) -> Bytes {
    match payload {
        Payload::Bytes(b) => b.freeze(),
        Payload::Owned(v) => Bytes::from(v),
        other => Bytes::copy_from_slice(&other),
    }
}

async fn echo(mut stream: TcpStream) -> Result<(), WebSocketError> {
    upgrade::accept(&mut stream).await?;
    let mut ws = FragmentCollector::new(WebSocket::after_handshake(stream, Role::Server));
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}

async fn fanout(mut stream: TcpStream, hub: Arc<Hub<Item>>) -> Result<(), WebSocketError> {
    upgrade::accept(&mut stream).await?;
    let ws = WebSocket::after_handshake(stream, Role::Server);
    let (read, mut write) = ws.split(|s| {
        let (r, w) = s.into_split();
        (r, BufWriter::new(w))
    });
    let mut read = FragmentCollectorRead::new(read);
    let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel::<Item>();
    let id = hub.join(queue.clone());
    tokio::spawn(async move {
        while let Some((opcode, payload)) = queued.recv().await {
            let frame = Frame::new(true, opcode, None, Payload::Borrowed(&payload));
            if write.write_frame(frame).await.is_err() {
                return;
            }
            if queued.is_empty() && write.flush().await.is_err() {
                return;
            }
            if opcode == OpCode::Close {
                return;
            }
        }
    });
    // Pongs and the close reply go through the writer, in order with the data.
    let mut reply = |frame: Frame<'_>| {
        let sent = queue.send((frame.opcode, into_bytes(frame.payload)));
        std::future::ready(sent.map_err(|_| "the writer is gone"))
    };
    let result = loop {
        match read.read_frame(&mut reply).await {
            Ok(frame) => match frame.opcode {
                OpCode::Text | OpCode::Binary => {
                    hub.broadcast(&(frame.opcode, into_bytes(frame.payload)));
                }
                OpCode::Close => break Ok(()),
                _ => {}
            },
            Err(e) => break Err(e),
        }
    };
    hub.leave(id);
    result
}

async fn serve(args: PeerArgs) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    let hub = Arc::new(Hub::default());
    eprintln!("peer-fastwebsockets: {:?} on {}", args.mode, args.listen);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("peer-fastwebsockets: accept: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match args.mode {
            Mode::Echo => tokio::spawn(async move {
                let _ = echo(stream).await;
            }),
            Mode::Fanout => {
                let hub = hub.clone();
                tokio::spawn(async move {
                    let _ = fanout(stream, hub).await;
                })
            }
        };
    }
}

fn main() -> std::io::Result<()> {
    let args = PeerArgs::parse();
    runtime(args.threads)?.block_on(serve(args))
}
