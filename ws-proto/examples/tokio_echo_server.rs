//! The same engine inside another runtime: an echo server on tokio, one task per connection.
//! Only this example uses tokio (a dev-dependency); ws-proto itself knows no runtime.
//!
//! ```text
//! cargo run -p ws-proto --example tokio_echo_server -- 127.0.0.1:9001
//! ```

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use ws_proto::handshake::server::{Accept, ServerHandshake};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::{Config, Connection, Event};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("tokio echo server on ws://{addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = serve(stream).await {
                eprintln!("connection ended with an error: {e}");
            }
        });
    }
}

async fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 << 10];
    let mut handshake = ServerHandshake::new(HandshakeLimits::default());
    let (request, mut start, mut end) = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        match handshake.receive(&buf[..n]) {
            Ok(Some((request, used))) => break (request, used, n),
            Ok(None) => {}
            Err(e) => return stream.write_all(&e.response()).await,
        }
    };
    let upgrade = match request.upgrade() {
        Ok(upgrade) => upgrade,
        Err(e) => return stream.write_all(&e.response()).await,
    };
    stream
        .write_all(&upgrade.accept(&Accept::new()).expect("no subprotocol"))
        .await?;

    let clock = Instant::now();
    let mut conn = Connection::server(Config::default());
    loop {
        let _ = conn.receive(&buf[start..end]);
        conn.handle_time(clock.elapsed());
        while let Some(event) = conn.poll_event() {
            if let Event::Message(message) = event {
                let _ = conn.send(&message);
            }
        }
        while let Some(bytes) = conn.poll_transmit() {
            stream.write_all(&bytes).await?;
        }
        if conn.should_close_transport() {
            return Ok(());
        }
        // Wait for bytes or for the engine's next timer, whichever comes first.
        let read = stream.read(&mut buf);
        let n = match conn.poll_timeout() {
            Some(due) => {
                let wait = due
                    .saturating_sub(clock.elapsed())
                    .max(Duration::from_millis(1));
                match tokio::time::timeout(wait, read).await {
                    Ok(result) => result?,
                    Err(_elapsed) => {
                        (start, end) = (0, 0);
                        continue;
                    }
                }
            }
            None => read.await?,
        };
        if n == 0 {
            conn.receive_eof();
            return Ok(());
        }
        (start, end) = (0, n);
    }
}
