//! TCP_CHECK: the real accepts a connection.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpSocket;

use super::probe::{Attempt, Failure, Outcome, Probe, bounded};

pub struct TcpProbe {
    pub target: SocketAddr,
    pub bindto: Option<std::net::IpAddr>,
    pub timeout: Duration,
}

pub async fn connect(target: SocketAddr, bindto: Option<std::net::IpAddr>) -> std::io::Result<tokio::net::TcpStream> {
    let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(source) = bindto {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    socket.connect(target).await
}

impl Probe for TcpProbe {
    fn run(&self) -> Attempt<'_> {
        Box::pin(bounded(self.timeout, async {
            match connect(self.target, self.bindto).await {
                Ok(_) => Outcome::Up,
                Err(e) => Outcome::Down(Failure::from(e)),
            }
        }))
    }

    fn describe(&self) -> String {
        format!("TCP_CHECK {}", self.target)
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn listening_port_is_up_closed_port_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let probe = TcpProbe { target: open, bindto: None, timeout: Duration::from_millis(500) };
        assert_eq!(probe.run().await, Outcome::Up);
        drop(listener);
        assert_eq!(probe.run().await, Outcome::Down(Failure::Refused));
    }

    #[tokio::test]
    async fn an_unreachable_address_is_down_within_the_timeout() {
        // 192.0.2.0/24 is TEST-NET-1: nothing answers, the SYN goes unanswered
        // or the route is missing; either way the check must end at its timeout.
        let probe = TcpProbe { target: "192.0.2.1:80".parse().unwrap(), bindto: None, timeout: Duration::from_millis(200) };
        let start = std::time::Instant::now();
        let outcome = probe.run().await;
        assert!(matches!(outcome, Outcome::Down(_)), "{outcome:?}");
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
