//! What the integration tests share: servers on loopback ports, and the test certificates.
#![allow(dead_code)] // each test file uses a part

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use ws_tokio::tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ws_tokio::tokio_rustls::rustls::{self, ServerConfig};
use ws_tokio::{Acceptor, WebSocketStream};

/// A listener on a free loopback port.
pub async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Echoes every message of every connection accepted by `acceptor`, written the way the
/// crate's docs suggest (feed, and let the next read write).
pub async fn echo_server(acceptor: Acceptor) -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(ws) = acceptor.accept(tcp).await {
                    echo(ws).await;
                }
            });
        }
    });
    addr
}

pub async fn echo(
    mut ws: WebSocketStream<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>,
) {
    while let Some(Ok(message)) = ws.next().await {
        if ws.feed(message).await.is_err() {
            return;
        }
    }
}

/// A server that accepts connections and hands each, upgraded, to the test.
pub async fn accepting_server(
    acceptor: Acceptor,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<WebSocketStream<TcpStream>>,
) {
    let (listener, addr) = listener().await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(ws) = acceptor.accept(tcp).await {
                if tx.send(ws).is_err() {
                    return;
                }
            }
        }
    });
    (addr, rx)
}

pub fn ca_cert() -> CertificateDer<'static> {
    CertificateDer::from(include_bytes!("../certs/ca.der").to_vec())
}

/// The server side of the test certificates: `localhost` and 127.0.0.1.
pub fn server_tls() -> Arc<ServerConfig> {
    let cert = CertificateDer::from(include_bytes!("../certs/server.der").to_vec());
    let key = PrivateKeyDer::try_from(include_bytes!("../certs/server.key.der").to_vec()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(config)
}
