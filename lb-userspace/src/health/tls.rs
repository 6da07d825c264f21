//! TLS for SSL_GET: rustls, accepting whatever certificate the real presents.
//!
//! keepalived's SSL_GET does not verify the real's certificate (a real is
//! usually reached by IP, often with a self-signed or internal certificate):
//! the check asks "does the HTTPS service answer", not "is it who it claims".
//! The handshake's signatures are still verified against the presented
//! certificate, so the check does talk TLS with the holder of its key.
//! With keepalived's top-level `SSL { certificate key }` every SSL_GET
//! presents that certificate to a real that asks for one.

use std::sync::{Arc, OnceLock};

use tokio_rustls::{
    TlsConnector,
    rustls::{
        self, DigitallySignedStruct, SignatureScheme,
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        crypto::WebPkiSupportedAlgorithms,
        pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
    },
};

/// Accepts any server certificate, as keepalived's SSL_GET does.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// What SSL_GET presents of itself (keepalived's `SSL` block).
#[derive(Debug, Default)]
pub enum ClientAuth {
    #[default]
    None,
    Certificate(Arc<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>),
    /// The files could not be read: every SSL_GET says so instead of running.
    Broken(String),
}

impl ClientAuth {
    /// Reads the `SSL` block's PEM certificate chain and key.
    pub fn load(ssl: Option<&crate::config::SslClient>) -> Self {
        let Some(s) = ssl else {
            return ClientAuth::None;
        };
        let certs = CertificateDer::pem_file_iter(&s.certificate)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("SSL certificate {}: {e}", s.certificate));
        let key =
            PrivateKeyDer::from_pem_file(&s.key).map_err(|e| format!("SSL key {}: {e}", s.key));
        match (certs, key) {
            (Ok(certs), _) if certs.is_empty() => ClientAuth::Broken(format!(
                "SSL certificate {}: no certificate in it",
                s.certificate
            )),
            (Ok(certs), Ok(key)) => ClientAuth::Certificate(Arc::new((certs, key))),
            (Err(e), _) | (_, Err(e)) => ClientAuth::Broken(e),
        }
    }

    /// The connector for an SSL_GET; `Err` when the certificate is unusable.
    pub fn connector(&self, enable_sni: bool) -> Result<TlsConnector, String> {
        match self {
            ClientAuth::None => Ok(client(enable_sni)),
            ClientAuth::Certificate(id) => with_certificate(enable_sni, id),
            ClientAuth::Broken(e) => Err(e.clone()),
        }
    }
}

fn builder() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyCertificate(provider.signature_verification_algorithms));
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
}

fn with_certificate(
    enable_sni: bool,
    id: &(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
) -> Result<TlsConnector, String> {
    let mut config = builder()
        .with_client_auth_cert(id.0.clone(), id.1.clone_key())
        .map_err(|e| format!("SSL certificate and key: {e}"))?;
    config.enable_sni = enable_sni;
    Ok(TlsConnector::from(Arc::new(config)))
}

fn connector(enable_sni: bool) -> TlsConnector {
    let mut config = builder().with_no_client_auth();
    // Without `enable_sni` keepalived sends no server name at all.
    config.enable_sni = enable_sni;
    TlsConnector::from(Arc::new(config))
}

/// The client side of SSL_GET, with or without Server Name Indication; built
/// once per process and shared by every check.
pub fn client(enable_sni: bool) -> TlsConnector {
    static WITH_SNI: OnceLock<TlsConnector> = OnceLock::new();
    static WITHOUT_SNI: OnceLock<TlsConnector> = OnceLock::new();
    let cell = if enable_sni { &WITH_SNI } else { &WITHOUT_SNI };
    cell.get_or_init(|| connector(enable_sni)).clone()
}

/// The name the handshake carries: the virtual host when SNI is on and one is
/// configured, else the real's address (for which rustls sends no SNI).
pub fn server_name(virtualhost: Option<&str>, addr: std::net::IpAddr) -> ServerName<'static> {
    virtualhost
        .and_then(|h| ServerName::try_from(h.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(addr.into()))
}

/// True when `name` can be sent as SNI (a DNS name; rustls sends none for an
/// IP address).
pub fn is_sni_name(name: &str) -> bool {
    matches!(ServerName::try_from(name), Ok(ServerName::DnsName(_)))
}
