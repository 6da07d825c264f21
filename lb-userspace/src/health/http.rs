//! HTTP_GET and SSL_GET: one HTTP/1.1 GET per `url`, over TCP or TLS; every
//! url must answer with an accepted status (any 2xx when none is configured)
//! and, when a digest is set, a body whose MD5 matches (what keepalived's
//! `genhash` prints); with a `regex`, a body that matches it (or with
//! `regex_no_match`, does not), read whole up to MAX_BODY.
//!
//! hyper speaks HTTP (framing, chunked bodies, keep-alive servers: the check
//! ends as soon as the body is complete) over a socket connected here, so
//! `bindto`, `connect_ip`/`connect_port` and the timeout apply as for TCP_CHECK
//! (the timeout to each url's request).

use std::{io, net::SocketAddr, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, LengthLimitError, Limited};
use hyper::{
    Request, Version,
    header::{CONNECTION, HOST, USER_AGENT},
};
use hyper_util::rt::TokioIo;
use md5::{Digest as _, Md5};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use super::{
    probe::{Attempt, Failure, Outcome, Probe, bounded},
    tcp::connect,
    tls,
};
use crate::config::{HttpProtocol, Url};

/// Bodies are read up to this much; a health page is small.
pub const MAX_BODY: usize = 1 << 20;
/// Status line and headers are read up to this much (hyper's buffer).
const MAX_HEAD: usize = 64 << 10;

pub struct HttpProbe {
    pub target: SocketAddr,
    pub source: super::source::Source,
    pub urls: Vec<Url>,
    pub timeout: Duration,
    /// SSL_GET: the TLS client (`tls::client`); `None` for HTTP_GET.
    pub tls: Option<TlsConnector>,
}

impl HttpProbe {
    /// One url on a connection of its own, as keepalived checks them.
    async fn get(&self, url: &Url) -> Outcome {
        let stream = match connect(self.target, &self.source).await {
            Ok(s) => s,
            Err(e) => return Outcome::Down(e.into()),
        };
        let host = host_header(url, self.target, self.tls.is_some());
        let Some(tls) = &self.tls else {
            return check(stream, url, &host).await;
        };
        let name = tls::server_name(url.virtualhost.as_deref(), self.target.ip());
        match tls.connect(name, stream).await {
            Ok(stream) => check(stream, url, &host).await,
            Err(e) => Outcome::Down(handshake_failure(e)),
        }
    }
}

/// The url's virtual host, else the address with its port unless it is the
/// scheme's default (RFC 9110 7.2).
fn host_header(url: &Url, target: SocketAddr, https: bool) -> String {
    if let Some(host) = &url.virtualhost {
        return host.clone();
    }
    let default_port = if https { 443 } else { 80 };
    match target {
        SocketAddr::V4(a) if a.port() == default_port => a.ip().to_string(),
        SocketAddr::V6(a) if a.port() == default_port => format!("[{}]", a.ip()),
        t => t.to_string(),
    }
}

/// A failed TLS handshake is the real's answer; a socket error stays one.
fn handshake_failure(e: io::Error) -> Failure {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>())
    {
        Failure::BadResponse(format!("TLS handshake: {e}"))
    } else {
        Failure::from(e)
    }
}

/// GET `url` over `io`, a connected TCP or TLS stream, and judge the
/// response. Never waits for the server to close once the body is complete;
/// the caller bounds the time.
pub async fn check<T>(io: T, url: &Url, host: &str) -> Outcome
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match exchange(io, url, host).await {
        Ok((status, body)) => verdict(url, status, &body),
        Err(f) => Outcome::Down(f),
    }
}

async fn exchange<T>(io: T, url: &Url, host: &str) -> Result<(u16, Bytes), Failure>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // keepalived's `http_protocol`: 1.0 (its default), 1.0C, 1.1.
    let (version, close) = match url.protocol {
        HttpProtocol::Http10 => (Version::HTTP_10, false),
        HttpProtocol::Http10Close => (Version::HTTP_10, true),
        HttpProtocol::Http11 => (Version::HTTP_11, true),
    };
    let mut request = Request::get(url.path.as_str())
        .version(version)
        .header(HOST, host)
        .header(USER_AGENT, "xdpvs-healthcheck");
    if close {
        request = request.header(CONNECTION, "close");
    }
    let request = request
        .body(Empty::<Bytes>::new())
        // The parser admits only valid paths and hosts.
        .map_err(|e| Failure::Io(format!("cannot build the request: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .handshake(TokioIo::new(io))
        .await
        .map_err(failure)?;
    let talk = async move {
        let response = sender.send_request(request).await.map_err(failure)?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(body_failure)?
            .to_bytes();
        Ok((status, body))
    };
    // The connection does the socket I/O while `talk` waits. If it ends
    // first, `talk` ends too (hyper fails the request or the body), but the
    // cause, a socket error say, is what the connection returned.
    tokio::pin!(talk);
    let ended = tokio::select! {
        result = &mut talk => return result,
        ended = connection => ended,
    };
    match (talk.await, ended) {
        (Err(_), Err(cause)) => Err(failure(cause)),
        (result, _) => result,
    }
}

/// Status, digest and regex, as keepalived judges them.
fn verdict(url: &Url, status: u16, body: &[u8]) -> Outcome {
    let accepted = if url.status_codes.is_empty() {
        (200..300).contains(&status)
    } else {
        url.status_codes.contains(&status)
    };
    if !accepted {
        return Outcome::Down(Failure::Status(status));
    }
    if let Some(want) = &url.digest {
        let got: String = Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if &got != want {
            return Outcome::Down(Failure::DigestMismatch);
        }
    }
    if let Some(r) = &url.regex
        && !r.passes(body)
    {
        let how = if r.no_match {
            "matches"
        } else {
            "does not match"
        };
        return Outcome::Down(Failure::BadResponse(format!(
            "body {how} regex {:?}",
            r.pattern
        )));
    }
    Outcome::Up
}

/// A socket error under hyper's stays the OS error it is (its code tells a
/// local EMFILE or ENOMEM from the real's reset); anything else, a truncated
/// or malformed response included, is the real answering badly.
fn failure(e: hyper::Error) -> Failure {
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(code) = s
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Failure::from(io::Error::from_raw_os_error(code));
        }
        source = s.source();
    }
    match std::error::Error::source(&e) {
        Some(cause) => Failure::BadResponse(format!("{e}: {cause}")),
        None => Failure::BadResponse(e.to_string()),
    }
}

fn body_failure(e: Box<dyn std::error::Error + Send + Sync>) -> Failure {
    if e.is::<LengthLimitError>() {
        return Failure::BadResponse(format!("body longer than {MAX_BODY} bytes"));
    }
    match e.downcast::<hyper::Error>() {
        Ok(e) => failure(*e),
        Err(e) => Failure::BadResponse(e.to_string()),
    }
}

impl Probe for HttpProbe {
    fn run(&self) -> Attempt<'_> {
        // The timeout bounds each url's request, as keepalived arms its
        // timer per connection: a check of several urls may take longer.
        Box::pin(async {
            for url in &self.urls {
                let outcome = bounded(self.timeout, self.get(url)).await;
                if outcome != Outcome::Up {
                    return outcome;
                }
            }
            Outcome::Up
        })
    }

    fn describe(&self) -> String {
        let kind = if self.tls.is_some() {
            "SSL_GET"
        } else {
            "HTTP_GET"
        };
        format!("{kind} {}", self.target)
    }
}

#[cfg(test)]
mod tests;
