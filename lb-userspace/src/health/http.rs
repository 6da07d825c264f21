//! HTTP_GET: a plain HTTP/1.1 GET per `url`; every url must answer with an
//! accepted status (any 2xx when none is configured) and, when a digest is
//! set, a body whose MD5 matches (what keepalived's `genhash` prints).

use std::{net::SocketAddr, time::Duration};

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

/// Status code and body of a response read to its end (`Connection: close`).
fn parse_response(raw: &[u8]) -> Result<(u16, &[u8]), Failure> {
    let bad = |w: &str| Failure::BadResponse(w.to_string());
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not text"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else { return Err(bad("no status line")) };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not HTTP/1.x"));
    }
    let code = code.parse().map_err(|_| bad("status code is not a number"))?;
    let mut body = &raw[end + 4..];
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
    });
    if let Some(n) = length {
        body = &body[..n.min(body.len())];
    }
    Ok((code, body))
}

async fn get(target: SocketAddr, bindto: Option<std::net::IpAddr>, url: &Url) -> Outcome {
    let mut stream = match connect(target, bindto).await {
        Ok(s) => s,
        Err(e) => return Outcome::Down(e.into()),
    };
    let host = match target {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: xdpvs-healthcheck\r\nConnection: close\r\n\r\n",
        url.path
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return Outcome::Down(e.into());
    }
    let mut raw = Vec::new();
    if let Err(e) = (&mut stream).take(MAX_RESPONSE as u64).read_to_end(&mut raw).await {
        return Outcome::Down(e.into());
    }
    let (code, body) = match parse_response(&raw) {
        Ok(r) => r,
        Err(f) => return Outcome::Down(f),
    };
    let accepted = if url.status_codes.is_empty() { (200..300).contains(&code) } else { url.status_codes.contains(&code) };
    if !accepted {
        return Outcome::Down(Failure::Status(code));
    }
    if let Some(want) = &url.digest {
        let got: String = Md5::digest(body).iter().map(|b| format!("{b:02x}")).collect();
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
    use tokio::net::TcpListener;

    use super::*;

    /// A one-route server: answers every connection with `response`, after
    /// `delay`, or closes at once when `response` is empty.
    async fn server(response: &'static str, delay: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let _ = s.write_all(response.as_bytes()).await;
                });
            }
        });
        addr
    }

    fn probe(target: SocketAddr, status_codes: Vec<u16>, digest: Option<&str>) -> HttpProbe {
        let url = Url { path: "/health".into(), status_codes, digest: digest.map(String::from) };
        HttpProbe { target, bindto: None, urls: vec![url], timeout: Duration::from_millis(300) }
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[tokio::test]
    async fn status_codes_and_digest() {
        let ok = server(OK, Duration::ZERO).await;
        assert_eq!(probe(ok, vec![], None).run().await, Outcome::Up);
        assert_eq!(probe(ok, vec![204], None).run().await, Outcome::Down(Failure::Status(200)));
        // md5("ok") = 444bcb3a3fcf8389296c49467f27e1d6
        assert_eq!(probe(ok, vec![200], Some("444bcb3a3fcf8389296c49467f27e1d6")).run().await, Outcome::Up);
        assert_eq!(probe(ok, vec![], Some("00000000000000000000000000000000")).run().await, Outcome::Down(Failure::DigestMismatch));
        let err = server("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", Duration::ZERO).await;
        assert_eq!(probe(err, vec![], None).run().await, Outcome::Down(Failure::Status(500)));
    }

    #[tokio::test]
    async fn slow_closing_and_refusing_servers_are_down() {
        let slow = server(OK, Duration::from_secs(5)).await;
        assert_eq!(probe(slow, vec![], None).run().await, Outcome::Down(Failure::Timeout(Duration::from_millis(300))));
        let closes = server("", Duration::ZERO).await;
        assert!(matches!(probe(closes, vec![], None).run().await, Outcome::Down(Failure::BadResponse(_))));
        let refused = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        assert_eq!(probe(refused, vec![], None).run().await, Outcome::Down(Failure::Refused));
    }
}
