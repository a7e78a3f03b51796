//! The server's side of the opening handshake on a tokio transport: ws-proto's
//! `ServerHandshake` fed from the socket, subprotocol and permessage-deflate chosen, the
//! application's own check, all within the handshake timeout.

use crate::config::Config;
use crate::error::{Error, Timeout};
use crate::head::read_head;
use crate::stream::WebSocketStream;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use ws_proto::deflate::PerMessageDeflate;
use ws_proto::handshake::http_response;
use ws_proto::handshake::server::{Accept, Request, ServerHandshake};
use ws_proto::{Connection, Role, StatusCode};

type Check = dyn Fn(&Request) -> Result<(), StatusCode> + Send + Sync;

/// Accepts WebSocket connections with a configuration, the subprotocols this server speaks
/// and an optional check of each request. Cheap to clone and share between tasks.
///
/// ```no_run
/// use tokio::net::TcpListener;
/// use ws_tokio::{Acceptor, Config, StatusCode};
///
/// # async fn run() -> Result<(), ws_tokio::Error> {
/// let acceptor = Acceptor::new(Config::default())
///     .protocols(&["chat.v2", "chat.v1"])
///     .check(|request| match request.query_param("token").as_deref() {
///         Some("secret") => Ok(()),
///         _ => Err(StatusCode::UNAUTHORIZED),
///     });
/// let listener = TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let ws = acceptor.accept(tcp).await?;
/// println!("speaking {:?}", ws.protocol());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Acceptor {
    config: Config,
    protocols: Vec<String>,
    check: Option<Arc<Check>>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("config", &self.config)
            .field("protocols", &self.protocols)
            .field("check", &self.check.is_some())
            .finish()
    }
}

impl Acceptor {
    /// An acceptor with this configuration, no subprotocol and no check.
    pub fn new(config: Config) -> Acceptor {
        Acceptor {
            config,
            protocols: Vec::new(),
            check: None,
        }
    }

    /// The subprotocols this server speaks, preferred first: the first of them the client
    /// offered is chosen; a client that offers none of them gets no subprotocol
    /// (RFC 6455 section 4.2.2 leaves the decision to close to it).
    pub fn protocols(mut self, protocols: &[&str]) -> Acceptor {
        self.protocols = protocols.iter().map(|p| p.to_string()).collect();
        self
    }

    /// Checks each valid upgrade request (its path, query, origin, headers) before it is
    /// accepted; an `Err` status is answered and the connection refused
    /// ([`Error::Rejected`]).
    pub fn check(
        mut self,
        check: impl Fn(&Request) -> Result<(), StatusCode> + Send + Sync + 'static,
    ) -> Acceptor {
        self.check = Some(Arc::new(check));
        self
    }

    /// Runs the opening handshake on `io` within [`Config::handshake_timeout`]. A request
    /// that is not a valid upgrade is answered with its HTTP status (400, 426, 431...) and
    /// returned as [`Error::Handshake`].
    pub async fn accept<S>(&self, io: S) -> Result<WebSocketStream<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        tokio::time::timeout(self.config.handshake_timeout, self.handshake(io))
            .await
            .map_err(|_| Error::Timeout(Timeout::Handshake))?
    }

    /// Runs the TLS handshake with `tls` and then the WebSocket handshake, both within
    /// [`Config::handshake_timeout`].
    pub async fn accept_tls<S>(
        &self,
        io: S,
        tls: &TlsAcceptor,
    ) -> Result<WebSocketStream<TlsStream<S>>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let both = async { self.handshake(tls.accept(io).await?).await };
        tokio::time::timeout(self.config.handshake_timeout, both)
            .await
            .map_err(|_| Error::Timeout(Timeout::Handshake))?
    }

    async fn handshake<S>(&self, mut io: S) -> Result<WebSocketStream<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut buf = vec![0u8; 4096];
        let mut handshake = ServerHandshake::new(self.config.handshake_limits);
        let head = read_head(&mut io, &mut buf, |data| handshake.receive(data)).await;
        let (request, leftover) = match head {
            Ok(done) => done,
            Err(Error::Handshake(e)) => return refuse(&mut io, &e.response(), e.into()).await,
            Err(e) => return Err(e),
        };
        let upgrade = match request.upgrade() {
            Ok(upgrade) => upgrade,
            Err(e) => return refuse(&mut io, &e.response(), e.into()).await,
        };
        if let Some(check) = &self.check {
            if let Err(status) = check(&request) {
                let response = http_response(status, &[], b"");
                return refuse(&mut io, &response, Error::Rejected(status)).await;
            }
        }
        let protocol = self
            .protocols
            .iter()
            .find(|ours| upgrade.protocols().contains(ours))
            .cloned();
        let mut accept = Accept::new();
        if let Some(p) = &protocol {
            accept = accept.protocol(p);
        }
        let mut conn = Connection::server(self.config.engine_config());
        if let Some(deflate) = &self.config.deflate {
            if let Some((params, response)) = deflate.negotiate(upgrade.extensions()) {
                accept = accept.extensions(&response);
                let extension = PerMessageDeflate::new(Role::Server, params, deflate);
                conn = conn.with_extension(Box::new(extension));
            }
        }
        // The protocol chosen was one the client offered, which is all `accept` checks.
        let response = upgrade.accept(&accept)?;
        io.write_all(&response).await?;
        io.flush().await?;
        Ok(WebSocketStream::from_parts(
            io,
            conn,
            &buf[leftover],
            protocol,
            &self.config,
        ))
    }
}

/// Answers a refused request and closes the transport.
async fn refuse<S, T>(io: &mut S, response: &[u8], error: Error) -> Result<T, Error>
where
    S: AsyncWrite + Unpin,
{
    // The peer may be gone already; the refusal is the error either way.
    let _ = io.write_all(response).await;
    let _ = io.shutdown().await;
    Err(error)
}

/// Accepts a WebSocket connection on `io` with the default [`Config`]: no subprotocol, no
/// compression.
///
/// ```no_run
/// # async fn run() -> Result<(), ws_tokio::Error> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let mut ws = ws_tokio::accept(tcp).await?;
/// while let Some(message) = ws.recv().await {
///     ws.send(message?).await?;
/// }
/// # Ok(()) }
/// ```
pub async fn accept<S>(io: S) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Acceptor::new(Config::default()).accept(io).await
}
