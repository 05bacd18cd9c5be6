//! TLS for every connection patrol opens to a server it does not run: HTTPS (Telegram, health
//! endpoints, Prometheus, RabbitMQ) and PostgreSQL (sources and the shared archive).
//!
//! One rustls configuration is built here, with the `ring` provider, for both reqwest and
//! tokio-postgres, so the two agree on what is trusted: the platform's roots (the system's CA
//! bundle, `SSL_CERT_FILE`/`SSL_CERT_DIR` honoured) or, on a machine without any, the bundled
//! Mozilla roots; plus, per source, an optional CA file for a private CA. Every reqwest client
//! of patrol is built by [`http_client`], never by reqwest's defaults, which would need a
//! process-wide crypto provider and could panic without one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How a PostgreSQL connection uses TLS; the names and meanings are libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate (libpq's default).
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is checked only against a given CA file.
    Require,
    /// TLS, certificate signed by a trusted CA (the CA file, else the platform's roots).
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

impl SslMode {
    pub const NAMES: &'static str = "disable, prefer, require, verify-ca, verify-full";

    pub fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// What a server's certificate must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Chain to a trusted root and name the host (HTTPS always; `verify-full`).
    Full,
    /// Chain to a trusted root, any name (`verify-ca`).
    ChainOnly,
    /// Encryption only (`prefer`, `require` without a CA file), as libpq does.
    Nothing,
}

/// The TLS settings of one connection: the optional CA file (PEM) of a private CA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub ca_file: Option<PathBuf>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The platform's roots, or the bundled ones where the platform has none; read once.
fn default_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(store)
        })
        .clone()
}

/// The certificates of a PEM file; the error names the file.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("CA file {}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "CA file {}: holds no certificate (expected PEM `-----BEGIN CERTIFICATE-----`)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The roots to trust: the default ones plus the CA file's certificates.
fn roots(options: &TlsOptions) -> Result<Arc<RootCertStore>, String> {
    let Some(path) = &options.ca_file else {
        return Ok(default_roots());
    };
    let mut store = (*default_roots()).clone();
    for cert in read_ca_file(path)? {
        store
            .add(cert)
            .map_err(|e| format!("CA file {}: {e}", path.display()))?;
    }
    Ok(Arc::new(store))
}

fn client_config(options: &TlsOptions, check: Check) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let config = match check {
        Check::Full => builder
            .with_root_certificates(roots(options)?)
            .with_no_client_auth(),
        Check::ChainOnly => {
            let inner = WebPkiServerVerifier::builder_with_provider(roots(options)?, provider)
                .build()
                .map_err(|e| format!("TLS: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyName { inner }))
                .with_no_client_auth()
        }
        Check::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptionOnly { provider }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// A reqwest client that speaks HTTPS with patrol's trust settings. `builder` carries what the
/// caller wants besides (timeouts, a unix socket).
pub fn http_client(
    builder: reqwest::ClientBuilder,
    options: &TlsOptions,
) -> Result<reqwest::Client, String> {
    let mut config = client_config(options, Check::Full)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    builder
        .tls_backend_preconfigured(config)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A PostgreSQL connection's TLS: the mode tokio-postgres negotiates with, and the connector.
pub fn postgres_connector(
    mode: SslMode,
    options: &TlsOptions,
) -> Result<
    (
        tokio_postgres::config::SslMode,
        tokio_postgres_rustls::MakeRustlsConnect,
    ),
    String,
> {
    use tokio_postgres::config::SslMode as Pg;
    let (negotiate, check) = match mode {
        SslMode::Disable => (Pg::Disable, Check::Nothing),
        SslMode::Prefer => (Pg::Prefer, Check::Nothing),
        // libpq: with a root certificate given, `require` checks the chain as verify-ca does.
        SslMode::Require if options.ca_file.is_some() => (Pg::Require, Check::ChainOnly),
        SslMode::Require => (Pg::Require, Check::Nothing),
        SslMode::VerifyCa => (Pg::Require, Check::ChainOnly),
        SslMode::VerifyFull => (Pg::Require, Check::Full),
    };
    let config = client_config(options, check)?;
    Ok((
        negotiate,
        tokio_postgres_rustls::MakeRustlsConnect::new(config),
    ))
}

/// `verify-ca`: the chain must be good; the name in it need not be the host's.
#[derive(Debug)]
struct AnyName {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `prefer` and `require`: the session is encrypted and its handshake signed by the key in the
/// certificate, but who holds that certificate is not checked (libpq's meaning of these modes).
#[derive(Debug)]
struct EncryptionOnly {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for EncryptionOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_names_round_trip() {
        for name in SslMode::NAMES.split(", ") {
            assert_eq!(SslMode::parse(name).map(SslMode::name), Some(name));
        }
        assert_eq!(SslMode::parse("allow"), None);
    }

    #[test]
    fn a_client_is_built_without_a_process_wide_provider() {
        // reqwest's own rustls set-up panics when no default provider is installed.
        let client = http_client(reqwest::Client::builder(), &TlsOptions::default());
        assert!(client.is_ok());
        assert!(!default_roots().is_empty());
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = http_client(
            reqwest::Client::builder(),
            &TlsOptions {
                ca_file: Some(missing.clone()),
            },
        )
        .unwrap_err();
        assert!(err.contains("nope.pem"), "{err}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = http_client(
            reqwest::Client::builder(),
            &TlsOptions {
                ca_file: Some(junk),
            },
        )
        .unwrap_err();
        assert!(
            err.contains("junk.pem") && err.contains("no certificate"),
            "{err}"
        );
    }
}
