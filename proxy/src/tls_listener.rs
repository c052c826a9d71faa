//! Optional TLS on the public listener (`[tls] cert`/`key`, PEM): rustls with the ring provider, ALPN `h2` then
//! `http/1.1`, and each connection served by hyper-util's auto builder (HTTP/1.1 or HTTP/2, whichever was
//! negotiated) with the peer's address as axum's `ConnectInfo` and `X-Forwarded-Proto: https`. The
//! certificate and key are re-read on demand ([`TlsCerts::reload`], called on SIGHUP): a good pair replaces the
//! served one for every new connection, a bad one is refused and the old one stays. Graceful shutdown stops
//! accepting and lets the open connections finish, as the plain listener does.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::config::TlsConfig;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.cert: cannot read {path}: {source}")]
    ReadCert { path: String, source: std::io::Error },
    #[error("tls.key: cannot read {path}: {source}")]
    ReadKey { path: String, source: std::io::Error },
    #[error("tls.cert: {path} holds no PEM certificate: {message}")]
    Cert { path: String, message: String },
    #[error("tls.key: {path} holds no PEM private key: {message}")]
    Key { path: String, message: String },
    #[error("tls: the certificate and key are not usable together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate in force, and where to read the next one.
pub struct TlsCerts {
    files: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsCerts {
    /// Reads the files named by `[tls]`; any problem is an error (the proxy does not start).
    pub fn load(files: &TlsConfig) -> Result<Self, TlsError> {
        Ok(TlsCerts {
            current: RwLock::new(Arc::new(server_config(files)?)),
            files: files.clone(),
        })
    }

    /// The configuration new connections are accepted with.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the files: a valid pair serves every new connection from now on; on error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(server_config(&self.files)?);
        match self.current.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// [`TlsCerts::reload`], logged (the SIGHUP hook).
    pub fn reload_logged(&self) {
        match self.reload() {
            Ok(()) => tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded"),
            Err(e) => tracing::error!(error = %e, "TLS reload refused; the old certificate stays"),
        }
    }
}

fn read(path: &Path, error: fn(String, std::io::Error) -> TlsError) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| error(path.display().to_string(), source))
}

/// A rustls server configuration (ring provider, ALPN `h2`, `http/1.1`) from the PEM files.
pub fn server_config(files: &TlsConfig) -> Result<ServerConfig, TlsError> {
    let cert_path = || files.cert.display().to_string();
    let key_path = || files.key.display().to_string();
    let cert_pem = read(&files.cert, |path, source| TlsError::ReadCert { path, source })?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Cert {
            path: cert_path(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert_path(),
            message: "no CERTIFICATE section".into(),
        });
    }
    let key_pem = read(&files.key, |path, source| TlsError::ReadKey { path, source })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
        path: key_path(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then waits for the open connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    certs: Arc<TlsCerts>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = TlsAcceptor::from(certs.current());
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
                    .headers_mut()
                    .insert("x-forwarded-proto", HeaderValue::from_static("https"));
                app.clone().oneshot(request)
            });
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> TlsConfig {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let files = TlsConfig {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.cert.pem()).unwrap();
        std::fs::write(&files.key, cert.signing_key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn a_bad_new_certificate_keeps_the_old_one() {
        let dir = std::env::temp_dir().join(format!("nerdcabal-tls-{}", alloy::primitives::B64::random()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = write_pair(&dir, "a");
        let certs = TlsCerts::load(&files).unwrap();
        let before = certs.current();
        assert_eq!(before.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);

        std::fs::write(&files.cert, "not a certificate").unwrap();
        let err = certs.reload().unwrap_err();
        assert!(err.to_string().starts_with("tls.cert:"), "{err}");
        assert!(Arc::ptr_eq(&before, &certs.current()), "the old configuration stays");
        std::fs::remove_file(&files.key).unwrap();
        assert!(matches!(
            certs.reload(),
            Err(TlsError::ReadCert { .. } | TlsError::Cert { .. })
        ));

        let fresh = write_pair(&dir, "a");
        assert_eq!(fresh, files);
        certs.reload().unwrap();
        assert!(!Arc::ptr_eq(&before, &certs.current()), "a good pair replaces it");
        std::fs::write(
            &files.key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(certs.reload().is_err());

        let missing = TlsConfig {
            cert: dir.join("none.crt"),
            key: dir.join("none.key"),
        };
        assert!(matches!(TlsCerts::load(&missing), Err(TlsError::ReadCert { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
