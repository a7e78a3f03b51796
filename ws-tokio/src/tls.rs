//! `wss://`: TLS through rustls. A client trusts the Mozilla roots (webpki-roots) unless given
//! its own configuration or CA; a server takes the application's rustls `ServerConfig`
//! ([`crate::Acceptor::accept_tls`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A client transport that is plain TCP for `ws://` and TLS for `wss://`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per connection, never moved in a hot loop
pub enum MaybeTlsStream<S> {
    /// `ws://`.
    Plain(S),
    /// `wss://`.
    Tls(tokio_rustls::client::TlsStream<S>),
}

/// A rustls client configuration on the ring provider that trusts `roots`.
fn client_config(roots: RootCertStore) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The client configuration `wss://` uses by default: the Mozilla root certificates of
/// webpki-roots, TLS 1.2 and 1.3.
pub fn webpki_client_config() -> Arc<ClientConfig> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Arc::new(client_config(roots))
}

/// A client configuration that trusts only the given CA certificates (DER), for servers with
/// a private CA or a self-signed certificate.
///
/// ```
/// // A certificate rustls cannot parse is refused.
/// let bad = ws_tokio::tls::client_config_with_roots([vec![0u8; 4].into()]);
/// assert!(bad.is_err());
/// ```
pub fn client_config_with_roots(
    cas: impl IntoIterator<Item = CertificateDer<'static>>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca)?;
    }
    Ok(Arc::new(client_config(roots)))
}

/// A client configuration that trusts only the CA certificates in the PEM file at `path`
/// (a `--ca FILE` option): an error if it cannot be read, holds no certificate, or one rustls
/// cannot parse.
///
/// ```
/// let missing = ws_tokio::tls::client_config_with_ca_file("/no/such/ca.pem".as_ref());
/// assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
/// ```
pub fn client_config_with_ca_file(path: &std::path::Path) -> io::Result<Arc<ClientConfig>> {
    use rustls::pki_types::pem::{self, PemObject};
    let invalid = |e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    };
    let cas = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| match e {
            pem::Error::Io(e) => io::Error::new(e.kind(), format!("{}: {e}", path.display())),
            e => invalid(&e),
        })?;
    if cas.is_empty() {
        return Err(invalid(&"no certificate"));
    }
    client_config_with_roots(cas).map_err(|e| invalid(&e))
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTlsStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTlsStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTlsStream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(s) => s.is_write_vectored(),
            MaybeTlsStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTlsStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTlsStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
