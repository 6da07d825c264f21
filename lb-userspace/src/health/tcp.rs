//! TCP_CHECK: the real accepts a connection.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpSocket;

use super::{
    probe::{Attempt, Failure, Outcome, Probe, bounded},
    source::Source,
};

pub struct TcpProbe {
    pub target: SocketAddr,
    pub source: Source,
    pub timeout: Duration,
}

pub async fn connect(
    target: SocketAddr,
    source: &Source,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    source.apply((&socket).into(), target.is_ipv6())?;
    socket.connect(target).await
}

impl Probe for TcpProbe {
    fn run(&self) -> Attempt<'_> {
        Box::pin(bounded(self.timeout, async {
            match connect(self.target, &self.source).await {
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
        let probe = |target| TcpProbe {
            target,
            source: Source::default(),
            timeout: Duration::from_millis(500),
        };
        assert_eq!(
            probe(listener.local_addr().unwrap()).run().await,
            Outcome::Up
        );
        // Closed, and kept closed: bound but not listening, so no other
        // test's listener (nor a connect to itself) can take the port, as
        // they could a listener's port once it is dropped.
        let closed = TcpSocket::new_v4().unwrap();
        closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_eq!(
            probe(closed.local_addr().unwrap()).run().await,
            Outcome::Down(Failure::Refused)
        );
    }

    /// A local black hole: a listener with backlog 0 that never accepts.
    /// Once its accept queue is full Linux drops further SYNs (it does not
    /// refuse them), so a connect hangs until the caller gives up. Returns
    /// the listener and the connections that filled it, to keep alive.
    async fn black_hole() -> (TcpListener, SocketAddr, Vec<tokio::net::TcpStream>) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let listener = socket.listen(0).unwrap();
        let mut fillers = Vec::new();
        for _ in 0..8 {
            match tokio::time::timeout(
                Duration::from_millis(100),
                connect(addr, &Source::default()),
            )
            .await
            {
                Ok(Ok(s)) => fillers.push(s),
                Ok(Err(e)) => panic!("filling the backlog: {e}"),
                // Full: a SYN just went unanswered.
                Err(_) => return (listener, addr, fillers),
            }
        }
        panic!("the accept queue never filled");
    }

    #[tokio::test]
    async fn a_black_holed_real_is_down_at_the_timeout() {
        let (_listener, addr, _fillers) = black_hole().await;
        let probe = TcpProbe {
            target: addr,
            source: Source::default(),
            timeout: Duration::from_millis(200),
        };
        let start = std::time::Instant::now();
        assert_eq!(
            probe.run().await,
            Outcome::Down(Failure::Timeout(Duration::from_millis(200)))
        );
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_millis(600),
            "took {took:?}"
        );
    }

    #[tokio::test]
    async fn bindto_sets_the_source_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let source: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        let probe = TcpProbe {
            target: listener.local_addr().unwrap(),
            source: Source::addr(Some(source)),
            timeout: Duration::from_millis(500),
        };
        assert_eq!(probe.run().await, Outcome::Up);
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), source);
        // A source address this host does not have: down, not hung.
        let foreign = TcpProbe {
            source: Source::addr(Some("192.0.2.1".parse().unwrap())),
            ..probe
        };
        assert!(matches!(foreign.run().await, Outcome::Down(Failure::Io(_))));
    }
}
