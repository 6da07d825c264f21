//! HTTP_GET and SSL_GET against real local servers: a raw TCP server that
//! answers with exact bytes (to control framing, keep-alive and hangs) and a
//! hyper server behind rustls with a self-signed certificate made here.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{self, pki_types::PrivateKeyDer},
};

use super::*;

/// What a raw server does after its response.
#[derive(Clone, Copy)]
enum Then {
    Close,
    /// Keep the connection open (a keep-alive server ignoring `Connection: close`).
    StayOpen,
}

/// A test server: answers a request for a path in `routes` with its bytes
/// after `delay` (an empty response: closes without answering), anything
/// else with 404. Returns its address and the last request.
async fn raw_server(
    routes: &'static [(&'static str, &'static str)],
    delay: Duration,
    then: Then,
) -> (SocketAddr, Arc<Mutex<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let last = Arc::new(Mutex::new(String::new()));
    let seen = last.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                *seen.lock().unwrap() = request;
                tokio::time::sleep(delay).await;
                let response = routes
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map_or(NOT_FOUND, |(_, r)| r);
                let _ = s.write_all(response.as_bytes()).await;
                if let Then::StayOpen = then {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
        }
    });
    (addr, last)
}

async fn server(
    routes: &'static [(&'static str, &'static str)],
    delay: Duration,
) -> (SocketAddr, Arc<Mutex<String>>) {
    raw_server(routes, delay, Then::Close).await
}

fn url(path: &str, status_codes: Vec<u16>, digest: Option<&str>) -> Url {
    Url {
        path: path.into(),
        status_codes,
        digest: digest.map(String::from),
        virtualhost: None,
        regex: None,
        protocol: Default::default(),
    }
}

fn probe(target: SocketAddr, status_codes: Vec<u16>, digest: Option<&str>) -> HttpProbe {
    HttpProbe {
        target,
        source: Default::default(),
        urls: vec![url("/health", status_codes, digest)],
        timeout: Duration::from_millis(300),
        tls: None,
    }
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
/// md5("ok"), as `genhash` prints it.
const OK_MD5: &str = "444bcb3a3fcf8389296c49467f27e1d6";

#[tokio::test]
async fn status_codes_and_digest() {
    let (ok, _) = server(&[("/health", OK)], Duration::ZERO).await;
    assert_eq!(probe(ok, vec![], None).run().await, Outcome::Up);
    assert_eq!(
        probe(ok, vec![204], None).run().await,
        Outcome::Down(Failure::Status(200))
    );
    assert_eq!(probe(ok, vec![200], Some(OK_MD5)).run().await, Outcome::Up);
    let wrong = "00000000000000000000000000000000";
    assert_eq!(
        probe(ok, vec![], Some(wrong)).run().await,
        Outcome::Down(Failure::DigestMismatch)
    );
    let (err, _) = server(
        &[("/health", "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")],
        Duration::ZERO,
    )
    .await;
    assert_eq!(
        probe(err, vec![], None).run().await,
        Outcome::Down(Failure::Status(500))
    );
    assert_eq!(
        probe(err, vec![200, 500], None).run().await,
        Outcome::Up,
        "500 listed as accepted"
    );
}

#[tokio::test]
async fn the_request_is_keepaliveds_for_each_http_protocol() {
    use crate::config::HttpProtocol;
    for (protocol, line, close) in [
        (HttpProtocol::Http10, "get /health http/1.0\r\n", false),
        (HttpProtocol::Http10Close, "get /health http/1.0\r\n", true),
        (HttpProtocol::Http11, "get /health http/1.1\r\n", true),
    ] {
        let (addr, last) = server(&[("/health", OK)], Duration::ZERO).await;
        let mut p = probe(addr, vec![], None);
        p.urls[0].protocol = protocol;
        assert_eq!(p.run().await, Outcome::Up);
        let request = last.lock().unwrap().to_ascii_lowercase();
        assert!(request.starts_with(line), "{protocol:?}: {request}");
        assert!(
            request.contains(&format!("\r\nhost: {addr}\r\n")),
            "{request}"
        );
        assert_eq!(
            request.contains("\r\nconnection: close\r\n"),
            close,
            "{protocol:?}: {request}"
        );
    }
}

#[tokio::test]
async fn virtualhost_is_the_host_header() {
    let (addr, last) = server(&[("/health?full", OK)], Duration::ZERO).await;
    let mut p = probe(addr, vec![], None);
    p.urls[0].path = "/health?full".into();
    p.urls[0].virtualhost = Some("www.example.test".into());
    assert_eq!(p.run().await, Outcome::Up);
    let request = last.lock().unwrap().to_ascii_lowercase();
    assert!(
        request.starts_with("get /health?full http/1.0\r\n"),
        "{request}"
    );
    assert!(
        request.contains("\r\nhost: www.example.test\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn a_chunked_body_is_digested_without_its_framing() {
    const CHUNKED: &str =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1;x=y\r\nk\r\n0\r\n\r\n";
    let (addr, _) = server(&[("/health", CHUNKED)], Duration::ZERO).await;
    assert_eq!(probe(addr, vec![], Some(OK_MD5)).run().await, Outcome::Up);
    const TRUNCATED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok";
    let (addr, _) = server(&[("/health", TRUNCATED)], Duration::ZERO).await;
    let outcome = probe(addr, vec![], None).run().await;
    assert!(
        matches!(&outcome, Outcome::Down(Failure::BadResponse(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn content_length_bounds_the_body_and_ends_the_check() {
    // The body is complete after 2 bytes: what follows is not digested, and
    // a server that keeps the connection open does not hold the check.
    const EXTRA: &str = "HTTP/1.0 201 Created\r\ncontent-length: 2\r\n\r\nokEXTRA";
    let (addr, _) = raw_server(&[("/health", EXTRA)], Duration::ZERO, Then::StayOpen).await;
    let mut p = probe(addr, vec![201], Some(OK_MD5));
    p.timeout = Duration::from_secs(5);
    let start = Instant::now();
    assert_eq!(p.run().await, Outcome::Up);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(500), "took {took:?}");
}

#[tokio::test]
async fn a_keep_alive_server_that_never_closes_is_checked_at_once() {
    let (addr, _) = raw_server(&[("/health", OK)], Duration::ZERO, Then::StayOpen).await;
    let mut p = probe(addr, vec![], Some(OK_MD5));
    p.timeout = Duration::from_secs(5);
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(p.run().await, Outcome::Up);
    }
    let took = start.elapsed();
    assert!(took < Duration::from_millis(500), "3 checks took {took:?}");
}

#[tokio::test]
async fn a_body_over_the_bound_is_refused() {
    const HUGE: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n";
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(HUGE.as_bytes()).await;
        let chunk = vec![b'x'; 64 << 10];
        for _ in 0..32 {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let mut p = probe(addr, vec![], None);
    p.timeout = Duration::from_secs(5);
    assert_eq!(
        p.run().await,
        Outcome::Down(Failure::BadResponse(format!(
            "body longer than {MAX_BODY} bytes"
        )))
    );
}

#[tokio::test]
async fn every_url_must_pass() {
    let (addr, _) = server(&[("/a", OK), ("/b", OK)], Duration::ZERO).await;
    let mut p = probe(addr, vec![], None);
    p.urls = vec![url("/a", vec![], Some(OK_MD5)), url("/b", vec![], None)];
    assert_eq!(p.run().await, Outcome::Up);
    p.urls.push(url("/missing", vec![], None));
    assert_eq!(p.run().await, Outcome::Down(Failure::Status(404)));
}

#[tokio::test]
async fn the_timeout_bounds_each_url_not_the_whole_check() {
    // Each answer within the timeout, the three of them beyond it.
    let (addr, _) = server(
        &[("/a", OK), ("/b", OK), ("/c", OK)],
        Duration::from_millis(150),
    )
    .await;
    let mut p = probe(addr, vec![], None);
    p.urls = ["/a", "/b", "/c"].map(|u| url(u, vec![], None)).to_vec();
    assert_eq!(p.run().await, Outcome::Up);
}

#[tokio::test]
async fn hanging_closing_garbage_and_refusing_servers_are_down() {
    // Accepts, reads the request and never answers within the timeout.
    let (slow, _) = server(&[("/health", OK)], Duration::from_secs(5)).await;
    let start = Instant::now();
    assert_eq!(
        probe(slow, vec![], None).run().await,
        Outcome::Down(Failure::Timeout(Duration::from_millis(300)))
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(1),
        "took {took:?}"
    );
    let (closes, _) = server(&[("/health", "")], Duration::ZERO).await;
    assert!(matches!(
        probe(closes, vec![], None).run().await,
        Outcome::Down(Failure::BadResponse(_))
    ));
    let (garbage, _) = server(&[("/health", "SSH-2.0-OpenSSH\r\n\r\n")], Duration::ZERO).await;
    assert!(matches!(
        probe(garbage, vec![], None).run().await,
        Outcome::Down(Failure::BadResponse(_))
    ));
    let refused = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(
        probe(refused, vec![], None).run().await,
        Outcome::Down(Failure::Refused)
    );
}

/// What the HTTPS test server saw of the last request.
#[derive(Default, Debug, Clone)]
struct Seen {
    sni: Option<String>,
    host: Option<String>,
}

/// A hyper server behind rustls with a fresh self-signed certificate for
/// `www.example.test`, answering `/health` with `status` and body "ok".
async fn https_server(status: u16) -> (SocketAddr, Arc<Mutex<Seen>>) {
    https_server_with(status, None).await
}

/// [`https_server`], asking for a client certificate signed by `client_ca`.
async fn https_server_with(
    status: u16,
    client_ca: Option<rustls::pki_types::CertificateDer<'static>>,
) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let cert = rcgen::generate_simple_self_signed(vec!["www.example.test".into()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(String::from);
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        let sni = sni.clone();
                        async move {
                            let host = req
                                .headers()
                                .get(HOST)
                                .and_then(|h| h.to_str().ok())
                                .map(String::from);
                            *record.lock().unwrap() = Seen { sni, host };
                            hyper::Response::builder()
                                .status(status)
                                .body(http_body_util::Full::new(Bytes::from_static(b"ok")))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn ssl_probe(target: SocketAddr, enable_sni: bool, virtualhost: Option<&str>) -> HttpProbe {
    let mut p = probe(target, vec![], Some(OK_MD5));
    p.urls[0].virtualhost = virtualhost.map(String::from);
    p.tls = Some(tls::client(enable_sni));
    p.timeout = Duration::from_secs(2);
    p
}

#[tokio::test]
async fn ssl_get_accepts_a_self_signed_certificate_and_sends_sni_when_enabled() {
    let (addr, seen) = https_server(200).await;
    let p = ssl_probe(addr, true, Some("www.example.test"));
    assert_eq!(p.describe(), format!("SSL_GET {addr}"));
    assert_eq!(p.run().await, Outcome::Up);
    let s = seen.lock().unwrap().clone();
    assert_eq!(s.sni.as_deref(), Some("www.example.test"), "{s:?}");
    assert_eq!(s.host.as_deref(), Some("www.example.test"), "{s:?}");

    // Without enable_sni no server name is sent, the virtual host still is.
    assert_eq!(
        ssl_probe(addr, false, Some("www.example.test")).run().await,
        Outcome::Up
    );
    let s = seen.lock().unwrap().clone();
    assert_eq!(s.sni, None, "{s:?}");
    assert_eq!(s.host.as_deref(), Some("www.example.test"), "{s:?}");

    // No virtual host: the address, never as SNI.
    assert_eq!(ssl_probe(addr, true, None).run().await, Outcome::Up);
    let s = seen.lock().unwrap().clone();
    assert_eq!(s.sni, None, "{s:?}");
    assert_eq!(s.host, Some(addr.to_string()), "{s:?}");
}

#[tokio::test]
async fn ssl_get_judges_status_and_digest() {
    let (addr, _) = https_server(503).await;
    assert_eq!(
        ssl_probe(addr, false, None).run().await,
        Outcome::Down(Failure::Status(503))
    );
    let (addr, _) = https_server(200).await;
    let mut p = ssl_probe(addr, false, None);
    p.urls[0].digest = Some("00000000000000000000000000000000".into());
    assert_eq!(p.run().await, Outcome::Down(Failure::DigestMismatch));
}

#[tokio::test]
async fn ssl_get_to_plain_http_hanging_or_refusing_servers_is_down() {
    let (plain, _) = server(&[("/health", OK)], Duration::ZERO).await;
    let outcome = ssl_probe(plain, false, None).run().await;
    assert!(
        matches!(&outcome, Outcome::Down(Failure::BadResponse(m)) if m.starts_with("TLS handshake: ")),
        "{outcome:?}"
    );
    // Accepts and never speaks TLS: bounded by the timeout.
    let (silent, _) = server(&[("/health", OK)], Duration::from_secs(30)).await;
    let mut p = ssl_probe(silent, false, None);
    p.timeout = Duration::from_millis(300);
    let start = Instant::now();
    assert_eq!(
        p.run().await,
        Outcome::Down(Failure::Timeout(Duration::from_millis(300)))
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    let refused = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(
        ssl_probe(refused, false, None).run().await,
        Outcome::Down(Failure::Refused)
    );
}

#[tokio::test]
async fn a_response_over_an_in_memory_stream_gets_a_verdict() {
    let (client, mut server) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        let _ = server.read(&mut buf).await;
        let _ = server.write_all(OK.as_bytes()).await;
    });
    let u = url("/", vec![], Some(OK_MD5));
    assert_eq!(check(client, &u, "h").await, Outcome::Up);
}

/// A stream whose every read and write fails with the OS error `code`.
struct Failing(i32);

impl tokio::io::AsyncRead for Failing {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Err(io::Error::from_raw_os_error(self.0)))
    }
}

impl tokio::io::AsyncWrite for Failing {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::task::Poll::Ready(Err(io::Error::from_raw_os_error(self.0)))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn socket_errors_under_hyper_stay_os_errors() {
    // What a local error classifier needs: the errno, not hyper's wording.
    let u = url("/", vec![], None);
    for code in [libc::EMFILE, libc::ENOMEM, libc::ECONNRESET] {
        assert_eq!(
            check(Failing(code), &u, "h").await,
            Outcome::Down(Failure::from(io::Error::from_raw_os_error(code))),
            "errno {code}"
        );
    }
}

fn with_regex(target: SocketAddr, pattern: &str, no_match: bool) -> HttpProbe {
    let mut p = probe(target, vec![], None);
    p.urls[0].regex = Some(crate::config::BodyRegex {
        pattern: pattern.into(),
        options: Vec::new(),
        no_match,
        compiled: regex::bytes::Regex::new(pattern).unwrap(),
    });
    p
}

#[tokio::test]
async fn the_body_is_matched_whole_against_the_regex() {
    // The text the regex looks for straddles two chunks.
    const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                           6\r\nstate:\r\n6\r\n ready\r\n0\r\n\r\n";
    let (addr, _) = server(&[("/health", CHUNKED)], Duration::ZERO).await;
    assert_eq!(
        with_regex(addr, "^state: ready$", false).run().await,
        Outcome::Up
    );
    assert_eq!(
        with_regex(addr, "busy", false).run().await,
        Outcome::Down(Failure::BadResponse(
            "body does not match regex \"busy\"".into()
        ))
    );
    assert_eq!(with_regex(addr, "busy", true).run().await, Outcome::Up);
    assert_eq!(
        with_regex(addr, "ready", true).run().await,
        Outcome::Down(Failure::BadResponse("body matches regex \"ready\"".into()))
    );
}

#[tokio::test]
async fn ssl_get_presents_the_ssl_blocks_certificate() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["lb1.example.test".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    let (addr, _) = https_server_with(200, Some(ca.der().clone())).await;
    assert!(
        matches!(ssl_probe(addr, false, None).run().await, Outcome::Down(_)),
        "a real asking for a client certificate refuses a check without one"
    );

    let dir = std::env::temp_dir().join(format!("xdpvs-ssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
    std::fs::write(&c, client.pem()).unwrap();
    std::fs::write(&k, client_key.serialize_pem()).unwrap();
    let ssl = |certificate: &std::path::Path| crate::config::SslClient {
        certificate: certificate.display().to_string(),
        key: k.display().to_string(),
        ca: None,
        location: crate::config::Location::of(&c),
    };
    let auth = tls::ClientAuth::load(Some(&ssl(&c)));
    let mut p = ssl_probe(addr, false, None);
    p.tls = Some(auth.connector(false).unwrap());
    assert_eq!(
        p.run().await,
        Outcome::Up,
        "with the SSL block's certificate"
    );

    let missing = tls::ClientAuth::load(Some(&ssl(&dir.join("none.pem"))));
    let Err(e) = missing.connector(false) else {
        panic!("a missing certificate must not make a connector");
    };
    assert!(e.starts_with("SSL certificate "), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
