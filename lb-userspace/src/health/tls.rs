//! TLS for SSL_GET: rustls, accepting whatever certificate the real presents.
//!
//! keepalived's SSL_GET does not verify the real's certificate (a real is
//! usually reached by IP, often with a self-signed or internal certificate):
//! the check asks "does the HTTPS service answer", not "is it who it claims".
//! The handshake's signatures are still verified against the presented
//! certificate, so the check does talk TLS with the holder of its key.

use std::sync::{Arc, OnceLock};

use tokio_rustls::{
    TlsConnector,
    rustls::{
        self, DigitallySignedStruct, SignatureScheme,
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        crypto::WebPkiSupportedAlgorithms,
        pki_types::{CertificateDer, ServerName, UnixTime},
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

fn connector(enable_sni: bool) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyCertificate(provider.signature_verification_algorithms));
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
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
