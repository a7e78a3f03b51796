//! wss: the listener's TLS through rustls, on the ring provider (the one ws-tokio uses, so the
//! workspace builds one TLS stack). This module loads the certificate chain and key (PEM
//! files, `--tls-cert` and `--tls-key`), checks that they belong together, and swaps them on
//! [`TlsFiles::reload`] (SIGHUP in [`crate::process::serve`]): handshakes that start after a
//! reload present the new certificate, connections already open keep theirs. TLS 1.2 and 1.3
//! are offered, and ALPN `http/1.1`.
//!
//! The connections themselves are encrypted inside the workers' event loops, sans-IO, with no
//! thread of their own (`worker/tls_transport.rs`).
//!
//! ```no_run
//! use ws_mio_server::tls::TlsFiles;
//! let tls = TlsFiles::load("cert.pem".as_ref(), "key.pem".as_ref())?;
//! // ... later, after the files were replaced:
//! tls.reload()?;
//! # Ok::<(), ws_mio_server::tls::TlsError>(())
//! ```

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig, ServerConnection};
use rustls::sign::CertifiedKey;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Why a certificate or key could not be used.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read or holds no PEM item of the kind expected (certificate, private
    /// key).
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::pki_types::pem::Error,
    },
    /// The private key is of a kind the crypto provider cannot sign with.
    Key {
        /// The key's file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// The key is not the certificate's (or the certificate cannot be parsed).
    Mismatch {
        /// The certificate's file.
        cert: PathBuf,
        /// The key's file.
        key: PathBuf,
        /// What rustls found.
        source: rustls::Error,
    },
    /// rustls refused the configuration (a protocol version the provider lacks).
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Pem { path, source } => write!(f, "TLS file {}: {source}", path.display()),
            TlsError::Key { path, source } => {
                write!(f, "TLS key {}: unusable: {source}", path.display())
            }
            TlsError::Mismatch { cert, key, source } => write!(
                f,
                "TLS key {} does not match certificate {}: {source}",
                key.display(),
                cert.display()
            ),
            TlsError::Config(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Pem { source, .. } => Some(source),
            TlsError::Key { source, .. } | TlsError::Mismatch { source, .. } => Some(source),
            TlsError::Config(e) => Some(e),
        }
    }
}

/// The certificate and key files, loaded, and the server configuration that presents them.
#[derive(Debug)]
pub struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<Current>,
    config: Arc<ServerConfig>,
}

/// The certificate handshakes present now; replaced whole on reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a whole Arc: a panic cannot leave it half-written.
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsFiles {
    /// Loads the certificate chain (PEM, the server's certificate first) from `cert` and its
    /// private key (PEM: PKCS#8, PKCS#1 or SEC1) from `key`, and checks that they match.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsFiles, TlsError> {
        let provider = provider();
        let certified = read_pair(cert, key, &provider)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(certified))));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current,
            config: Arc::new(config),
        })
    }

    /// Reads the files again: new handshakes present what they hold now. On an error the
    /// certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certified = read_pair(&self.cert, &self.key, self.config.crypto_provider())?;
        *self.current.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certified);
        Ok(())
    }

    /// The server's side of a new connection.
    pub(crate) fn accept(&self) -> Result<ServerConnection, rustls::Error> {
        ServerConnection::new(self.config.clone())
    }
}

fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    fn pem(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + '_ {
        move |source| TlsError::Pem {
            path: path.to_owned(),
            source,
        }
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem(cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem(cert))?;
    if chain.is_empty() {
        return Err(pem(cert)(rustls::pki_types::pem::Error::NoItemsFound));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(pem(key))?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|source| TlsError::Key {
            path: key.to_owned(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing);
    // Checked strictly: a key whose public half cannot be compared is refused too, since
    // serving with it would fail every handshake.
    certified
        .keys_match()
        .map_err(|source| TlsError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        })?;
    Ok(certified)
}
