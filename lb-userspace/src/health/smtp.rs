//! SMTP_CHECK: the dialogue keepalived holds, hand-written because it is
//! three lines: a 220 greeting, `HELO name` answered 250, `QUIT` answered
//! 221. Multi-line replies (`250-...`) are read to their last line; every
//! reply is bounded in size and the whole dialogue by the timeout.

use std::{net::SocketAddr, time::Duration};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{
    probe::{Attempt, Failure, Outcome, Probe, bounded},
    tcp::connect,
};

pub struct SmtpProbe {
    pub target: SocketAddr,
    pub source: super::source::Source,
    pub timeout: Duration,
    pub helo_name: String,
}

/// A reply longer than this is no SMTP server's.
const MAX_REPLY: usize = 4096;

/// Reads one reply and returns its code.
async fn reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<u16, Failure> {
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = tokio::io::AsyncReadExt::take(&mut *r, (MAX_REPLY - total) as u64 + 1)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Err(Failure::BadResponse("connection closed".into()));
        }
        total += n;
        if total > MAX_REPLY {
            return Err(Failure::BadResponse("reply too long".into()));
        }
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| {
                Failure::BadResponse(format!("not an SMTP reply: {:?}", line.trim_end()))
            })?;
        // "250-more" continues; "250 last" or a bare "250" ends.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(code);
        }
    }
}

async fn expect<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    want: u16,
    after: &str,
) -> Result<(), Failure> {
    match reply(r).await? {
        code if code == want => Ok(()),
        code => Err(Failure::BadResponse(format!(
            "{after}: {code}, expected {want}"
        ))),
    }
}

impl SmtpProbe {
    async fn dialogue(&self) -> Result<(), Failure> {
        let stream = connect(self.target, &self.source).await?;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        expect(&mut read, 220, "greeting").await?;
        write
            .write_all(format!("HELO {}\r\n", self.helo_name).as_bytes())
            .await?;
        expect(&mut read, 250, "HELO").await?;
        write.write_all(b"QUIT\r\n").await?;
        expect(&mut read, 221, "QUIT").await
    }
}

impl Probe for SmtpProbe {
    fn run(&self) -> Attempt<'_> {
        Box::pin(bounded(self.timeout, async {
            match self.dialogue().await {
                Ok(()) => Outcome::Up,
                Err(f) => Outcome::Down(f),
            }
        }))
    }

    fn describe(&self) -> String {
        format!("SMTP_CHECK {}", self.target)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::{io::AsyncReadExt, net::TcpListener};

    use super::*;

    /// An SMTP-like responder: sends `greeting`, then answers HELO and
    /// QUIT with `helo` and `quit`; records what it was sent.
    async fn responder(
        greeting: &'static str,
        helo: &'static str,
        quit: &'static str,
    ) -> (SocketAddr, Arc<Mutex<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heard = Arc::new(Mutex::new(String::new()));
        let log = heard.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    s.write_all(greeting.as_bytes()).await.ok()?;
                    let mut buf = [0u8; 512];
                    for answer in [helo, quit] {
                        let n = s.read(&mut buf).await.ok()?;
                        log.lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&buf[..n]));
                        s.write_all(answer.as_bytes()).await.ok()?;
                    }
                    Some(())
                });
            }
        });
        (addr, heard)
    }

    fn probe(target: SocketAddr) -> SmtpProbe {
        SmtpProbe {
            target,
            source: Default::default(),
            timeout: Duration::from_millis(500),
            helo_name: "lb1.example.com".into(),
        }
    }

    #[tokio::test]
    async fn a_full_dialogue_is_up() {
        let (addr, heard) = responder(
            "220-mx.example.com ESMTP\r\n220 welcome\r\n",
            "250 mx.example.com\r\n",
            "221 bye\r\n",
        )
        .await;
        assert_eq!(probe(addr).run().await, Outcome::Up);
        assert_eq!(*heard.lock().unwrap(), "HELO lb1.example.com\r\nQUIT\r\n");
    }

    #[tokio::test]
    async fn a_wrong_code_is_down_and_says_where() {
        let (busy, _) = responder("554 no service\r\n", "", "").await;
        assert!(matches!(
            probe(busy).run().await,
            Outcome::Down(Failure::BadResponse(m)) if m == "greeting: 554, expected 220"
        ));
        let (refuses_helo, _) = responder("220 hi\r\n", "501 no\r\n", "").await;
        assert!(matches!(
            probe(refuses_helo).run().await,
            Outcome::Down(Failure::BadResponse(m)) if m == "HELO: 501, expected 250"
        ));
        let (not_smtp, _) = responder("HTTP/1.1 400 Bad Request\r\n", "", "").await;
        assert!(matches!(
            probe(not_smtp).run().await,
            Outcome::Down(Failure::BadResponse(m)) if m.starts_with("not an SMTP reply")
        ));
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_silent_server_times_out() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        assert_eq!(probe(addr).run().await, Outcome::Down(Failure::Refused));
        // Accepts, never greets.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = probe(silent.local_addr().unwrap());
        let start = std::time::Instant::now();
        assert_eq!(
            p.run().await,
            Outcome::Down(Failure::Timeout(Duration::from_millis(500)))
        );
        assert!(start.elapsed() < Duration::from_millis(1200));
    }

    #[tokio::test]
    async fn an_endless_reply_is_cut() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let line = "220-".to_string() + &"x".repeat(100) + "\r\n";
            for _ in 0..100 {
                if s.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        assert!(matches!(
            probe(addr).run().await,
            Outcome::Down(Failure::BadResponse(m)) if m == "reply too long"
        ));
    }
}
