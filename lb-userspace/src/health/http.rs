//! HTTP_GET: a plain HTTP/1.1 GET per `url`; every url must answer with an
//! accepted status (any 2xx when none is configured) and, when a digest is
//! set, a body whose MD5 matches (what keepalived's `genhash` prints).

use std::{borrow::Cow, net::SocketAddr, time::Duration};

use md5::{Digest as _, Md5};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{
    probe::{Attempt, Failure, Outcome, Probe, bounded},
    tcp::connect,
};
use crate::config::Url;

/// Bodies are read up to this much; a health page is small.
const MAX_RESPONSE: usize = 1 << 20;

pub struct HttpProbe {
    pub target: SocketAddr,
    pub bindto: Option<std::net::IpAddr>,
    pub urls: Vec<Url>,
    pub timeout: Duration,
}

fn bad(what: &str) -> Failure {
    Failure::BadResponse(what.to_string())
}

/// Status code and body of a response read to its end (`Connection: close`).
fn parse_response(raw: &[u8]) -> Result<(u16, Cow<'_, [u8]>), Failure> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not text"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(bad("no status line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not HTTP/1.x"));
    }
    let code = code
        .parse()
        .map_err(|_| bad("status code is not a number"))?;
    let body = &raw[end + 4..];
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    };
    // An HTTP/1.1 server may chunk even with `Connection: close`; the digest
    // is of the content, as genhash sees it over HTTP/1.0.
    if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return Ok((code, Cow::Owned(dechunk(body)?)));
    }
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    Ok((
        code,
        Cow::Borrowed(&body[..length.unwrap_or(body.len()).min(body.len())]),
    ))
}

/// The content of a chunked body, without its framing.
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut content = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("truncated chunk size"))?;
        let line = std::str::from_utf8(&raw[..eol]).map_err(|_| bad("chunk size is not text"))?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| bad("chunk size is not hex"))?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(content);
        }
        content.extend_from_slice(raw.get(..size).ok_or_else(|| bad("truncated chunk"))?);
        raw = raw.get(size + 2..).ok_or_else(|| bad("truncated chunk"))?;
    }
}

async fn get(target: SocketAddr, bindto: Option<std::net::IpAddr>, url: &Url) -> Outcome {
    let mut stream = match connect(target, bindto).await {
        Ok(s) => s,
        Err(e) => return Outcome::Down(e.into()),
    };
    // The port is part of Host unless it is HTTP's default (RFC 9110 7.2).
    let host = match (target, target.port()) {
        (SocketAddr::V4(a), 80) => a.ip().to_string(),
        (SocketAddr::V6(a), 80) => format!("[{}]", a.ip()),
        (t, _) => t.to_string(),
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: xdpvs-healthcheck\r\nConnection: close\r\n\r\n",
        url.path
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return Outcome::Down(e.into());
    }
    let mut raw = Vec::new();
    if let Err(e) = (&mut stream)
        .take(MAX_RESPONSE as u64)
        .read_to_end(&mut raw)
        .await
    {
        return Outcome::Down(e.into());
    }
    let (code, body) = match parse_response(&raw) {
        Ok(r) => r,
        Err(f) => return Outcome::Down(f),
    };
    let accepted = if url.status_codes.is_empty() {
        (200..300).contains(&code)
    } else {
        url.status_codes.contains(&code)
    };
    if !accepted {
        return Outcome::Down(Failure::Status(code));
    }
    if let Some(want) = &url.digest {
        let got: String = Md5::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if &got != want {
            return Outcome::Down(Failure::DigestMismatch);
        }
    }
    Outcome::Up
}

impl Probe for HttpProbe {
    fn run(&self) -> Attempt<'_> {
        Box::pin(bounded(self.timeout, async {
            for url in &self.urls {
                let outcome = get(self.target, self.bindto, url).await;
                if outcome != Outcome::Up {
                    return outcome;
                }
            }
            Outcome::Up
        }))
    }

    fn describe(&self) -> String {
        format!("HTTP_GET {}", self.target)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::net::TcpListener;

    use super::*;

    /// A test server: answers a request for a path in `routes` with its
    /// response after `delay` (an empty response: closes without answering),
    /// anything else with 404. Returns its address and the last request.
    async fn server(
        routes: &'static [(&'static str, &'static str)],
        delay: Duration,
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
                });
            }
        });
        (addr, last)
    }

    fn url(path: &str, status_codes: Vec<u16>, digest: Option<&str>) -> Url {
        Url {
            path: path.into(),
            status_codes,
            digest: digest.map(String::from),
        }
    }

    fn probe(target: SocketAddr, status_codes: Vec<u16>, digest: Option<&str>) -> HttpProbe {
        HttpProbe {
            target,
            bindto: None,
            urls: vec![url("/health", status_codes, digest)],
            timeout: Duration::from_millis(300),
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
    async fn the_request_names_the_host_and_closes() {
        let (addr, last) = server(&[("/health", OK)], Duration::ZERO).await;
        assert_eq!(probe(addr, vec![], None).run().await, Outcome::Up);
        let request = last.lock().unwrap().clone();
        assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains(&format!("\r\nHost: {addr}\r\n")),
            "{request}"
        );
        assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
    }

    #[tokio::test]
    async fn a_chunked_body_is_digested_without_its_framing() {
        const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1;x=y\r\nk\r\n0\r\n\r\n";
        let (addr, _) = server(&[("/health", CHUNKED)], Duration::ZERO).await;
        assert_eq!(probe(addr, vec![], Some(OK_MD5)).run().await, Outcome::Up);
        const TRUNCATED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok";
        let (addr, _) = server(&[("/health", TRUNCATED)], Duration::ZERO).await;
        assert!(matches!(
            probe(addr, vec![], None).run().await,
            Outcome::Down(Failure::BadResponse(_))
        ));
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
    async fn slow_closing_and_refusing_servers_are_down() {
        let (slow, _) = server(&[("/health", OK)], Duration::from_secs(5)).await;
        let start = std::time::Instant::now();
        assert_eq!(
            probe(slow, vec![], None).run().await,
            Outcome::Down(Failure::Timeout(Duration::from_millis(300)))
        );
        assert!(start.elapsed() < Duration::from_secs(1));
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

    #[test]
    fn content_length_bounds_the_body() {
        let (code, body) =
            parse_response(b"HTTP/1.0 201 Created\r\ncontent-length: 2\r\n\r\nokEXTRA").unwrap();
        assert_eq!((code, &*body), (201, &b"ok"[..]));
    }
}
