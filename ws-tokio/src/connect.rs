//! The client's side: TCP (and TLS for `wss://`) within the connect timeout, then ws-proto's
//! `ClientHandshake` within the handshake timeout, with permessage-deflate offered when
//! configured.

use crate::config::Config;
use crate::error::{Error, Timeout};
use crate::head::read_head;
use crate::stream::WebSocketStream;
use crate::tls::{webpki_client_config, MaybeTlsStream};
use crate::url::WsUrl;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;
use ws_proto::deflate::PerMessageDeflate;
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::{Connection, HandshakeError, Role};

/// A client stream over TCP, with TLS for `wss://`.
pub type ClientStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a client connects to and asks for. Cheap to clone; the reconnecting client keeps one
/// and connects with it again after every loss.
///
/// ```no_run
/// use std::time::Duration;
/// use ws_tokio::{ClientOptions, Message};
///
/// # async fn run() -> Result<(), ws_tokio::Error> {
/// let mut ws = ClientOptions::new("wss://example.com/feed")?
///     .protocols(&["feed.v1"])
///     .header("Authorization", "Bearer abc")
///     .connect_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// ws.send(Message::Text("hello".into())).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    url: WsUrl,
    config: Config,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
    origin: Option<String>,
    tls: Option<Arc<ClientConfig>>,
    connect_timeout: Duration,
}

impl ClientOptions {
    /// Options for a `ws://` or `wss://` URL, with the default [`Config`] and a 10-second
    /// connect timeout.
    pub fn new(url: &str) -> Result<ClientOptions, Error> {
        Ok(ClientOptions {
            url: WsUrl::parse(url)?,
            config: Config::default(),
            protocols: Vec::new(),
            headers: Vec::new(),
            origin: None,
            tls: None,
            connect_timeout: Duration::from_secs(10),
        })
    }

    /// The stream's configuration (limits, compression, heartbeat, handshake timeout).
    pub fn config(mut self, config: Config) -> ClientOptions {
        self.config = config;
        self
    }

    /// Offers subprotocols, preferred first.
    pub fn protocols(mut self, protocols: &[&str]) -> ClientOptions {
        self.protocols = protocols.iter().map(|p| p.to_string()).collect();
        self
    }

    /// Adds a request header (names or values with CR or LF are left out).
    pub fn header(mut self, name: &str, value: &str) -> ClientOptions {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sends an `Origin` header.
    pub fn origin(mut self, origin: &str) -> ClientOptions {
        self.origin = Some(origin.to_string());
        self
    }

    /// The TLS configuration for `wss://` (default: [`webpki_client_config`]; see
    /// [`crate::tls::client_config_with_roots`] for a private CA).
    pub fn tls_config(mut self, tls: Arc<ClientConfig>) -> ClientOptions {
        self.tls = Some(tls);
        self
    }

    /// How long the TCP connection, and the TLS handshake for `wss://`, may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientOptions {
        self.connect_timeout = timeout;
        self
    }

    /// The URL.
    pub fn url(&self) -> &WsUrl {
        &self.url
    }

    /// The stream's configuration.
    pub fn stream_config(&self) -> &Config {
        &self.config
    }

    /// Connects: TCP and TLS within the connect timeout, then the opening handshake within
    /// the handshake timeout.
    pub async fn connect(&self) -> Result<ClientStream, Error> {
        let io = tokio::time::timeout(self.connect_timeout, self.open_transport())
            .await
            .map_err(|_| Error::Timeout(Timeout::Connect))??;
        self.handshake(io).await
    }

    async fn open_transport(&self) -> Result<MaybeTlsStream<TcpStream>, Error> {
        let tcp = TcpStream::connect((self.url.host(), self.url.port())).await?;
        tcp.set_nodelay(true)?;
        if !self.url.is_tls() {
            return Ok(MaybeTlsStream::Plain(tcp));
        }
        let config = self.tls.clone().unwrap_or_else(webpki_client_config);
        let name = ServerName::try_from(self.url.host().to_string())
            .map_err(|_| Error::Url(crate::error::UrlError::Host))?;
        let tls = TlsConnector::from(config).connect(name, tcp).await?;
        Ok(MaybeTlsStream::Tls(tls))
    }

    /// Runs the opening handshake over a transport already connected (a proxy tunnel, a
    /// Unix socket, an in-memory pipe), within the handshake timeout.
    pub async fn handshake<S>(&self, io: S) -> Result<WebSocketStream<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        tokio::time::timeout(self.config.handshake_timeout, self.run_handshake(io))
            .await
            .map_err(|_| Error::Timeout(Timeout::Handshake))?
    }

    async fn run_handshake<S>(&self, mut io: S) -> Result<WebSocketStream<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let protocols: Vec<&str> = self.protocols.iter().map(String::as_str).collect();
        let mut request =
            ClientRequest::new(self.url.host_header(), self.url.target()).protocols(&protocols);
        if let Some(origin) = &self.origin {
            request = request.origin(origin);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(deflate) = &self.config.deflate {
            request = request.extensions(&deflate.offer());
        }
        let limits = self.config.handshake_limits;
        let (mut handshake, bytes) = ClientHandshake::with_random_key(&request, limits);
        io.write_all(&bytes).await?;
        io.flush().await?;
        let mut buf = vec![0u8; 4096];
        let (response, leftover) = read_head(&mut io, &mut buf, |d| handshake.receive(d)).await?;
        let mut conn = Connection::client(self.config.engine_config());
        if response.extensions().len() > 1 {
            // Only permessage-deflate is offered, and it may be accepted once.
            return Err(Error::ExtensionRefused);
        }
        if let Some(accepted) = response.extensions().first() {
            // The handshake refused extensions that were not offered; only deflate is.
            let deflate = self
                .config
                .deflate
                .as_ref()
                .ok_or(Error::Handshake(HandshakeError::UnofferedExtension))?;
            let params = deflate
                .accept_response(accepted)
                .ok_or(Error::ExtensionRefused)?;
            let extension = PerMessageDeflate::new(Role::Client, params, deflate);
            conn = conn.with_extension(Box::new(extension));
        }
        let protocol = response.protocol().map(str::to_string);
        Ok(WebSocketStream::from_parts(
            io,
            conn,
            &buf[leftover],
            protocol,
            &self.config,
        ))
    }
}

/// Connects to a `ws://` or `wss://` URL with the default options.
///
/// ```no_run
/// use futures_util::StreamExt;
///
/// # async fn run() -> Result<(), ws_tokio::Error> {
/// let mut ws = ws_tokio::connect("ws://127.0.0.1:9001/").await?;
/// ws.send(ws_tokio::Message::Text("hi".into())).await?;
/// let reply = ws.next().await;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<ClientStream, Error> {
    ClientOptions::new(url)?.connect().await
}
