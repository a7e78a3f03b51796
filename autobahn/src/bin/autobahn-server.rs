//! An echo server over std::net and ws-proto, one thread per connection: the Autobahn testee
//! for the server role until the mio server takes its place.
//!
//! Usage: `autobahn-server [--addr 127.0.0.1:9001]`

use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let addr = match args.iter().position(|a| a == "--addr") {
        Some(i) => args.get(i + 1).cloned().unwrap_or_default(),
        None => "127.0.0.1:9001".to_string(),
    };
    let listener = TcpListener::bind(&addr)?;
    eprintln!("autobahn-server: echo on {addr}");
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            if let Err(e) = autobahn::serve_echo(stream) {
                eprintln!("autobahn-server: connection error: {e}");
            }
        });
    }
    Ok(())
}
