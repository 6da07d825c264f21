//! DNS_CHECK: one query over UDP (built and read with hickory-proto; the
//! transport is ours, bounded by the check's timeout). Up when the answer
//! is a response to our id and question with RCODE NOERROR.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use hickory_proto::{
    op::{Message, MessageType, Query, ResponseCode},
    rr::{Name, RecordType},
};

use super::{
    probe::{Attempt, Failure, Outcome, Probe, bounded},
    source::Source,
    udp::connected,
};

pub struct DnsProbe {
    pub target: SocketAddr,
    pub source: Source,
    pub timeout: Duration,
    pub query: Query,
}

impl DnsProbe {
    /// The probe for `name` and `record_type` as the parser accepted them.
    pub fn new(
        target: SocketAddr,
        source: Source,
        timeout: Duration,
        record_type: &str,
        name: &str,
    ) -> Result<Self, String> {
        let mut name = Name::from_ascii(name).map_err(|e| format!("name {name}: {e}"))?;
        // As the answer's question will read.
        name.set_fqdn(true);
        let record_type =
            RecordType::from_str(record_type).map_err(|e| format!("type {record_type}: {e}"))?;
        Ok(Self {
            target,
            source,
            timeout,
            query: Query::query(name, record_type),
        })
    }

    /// The verdict on a reply; `None` when it answers another query.
    fn judge(&self, id: u16, reply: &[u8]) -> Option<Outcome> {
        let bad = |m: String| Some(Outcome::Down(Failure::BadResponse(m)));
        let m = match Message::from_vec(reply) {
            Ok(m) => m,
            Err(e) => return bad(format!("not a DNS message: {e}")),
        };
        if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
            return None;
        }
        if m.queries.first() != Some(&self.query) {
            return bad("the answer is for another question".into());
        }
        match m.metadata.response_code {
            ResponseCode::NoError => Some(Outcome::Up),
            code => bad(format!("rcode {code}")),
        }
    }

    async fn attempt(&self) -> Outcome {
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        message.add_query(self.query.clone());
        let id = message.metadata.id;
        let request = match message.to_vec() {
            Ok(b) => b,
            Err(e) => return Outcome::Down(Failure::Local(format!("encoding the query: {e}"))),
        };
        let socket = match connected(self.target, &self.source).await {
            Ok(s) => s,
            Err(e) => return Outcome::Down(e.into()),
        };
        if let Err(e) = socket.send(&request).await {
            return Outcome::Down(e.into());
        }
        let mut buf = vec![0u8; 65536];
        // A stray datagram (an old answer) is skipped; the timeout bounds the wait.
        loop {
            match socket.recv(&mut buf).await {
                Ok(n) => {
                    if let Some(verdict) = self.judge(id, &buf[..n]) {
                        return verdict;
                    }
                }
                Err(e) => return Outcome::Down(e.into()),
            }
        }
    }
}

impl Probe for DnsProbe {
    fn run(&self) -> Attempt<'_> {
        Box::pin(bounded(self.timeout, self.attempt()))
    }

    fn describe(&self) -> String {
        format!(
            "DNS_CHECK {} {} {}",
            self.target,
            self.query.query_type(),
            self.query.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::{
        op::OpCode,
        rr::{RData, Record, rdata::A},
    };

    use super::*;

    /// A DNS responder on a thread: answers every query with `rcode`
    /// (and an A record when NOERROR), echoing its question; silent
    /// when `rcode` is `None`.
    fn responder(rcode: Option<ResponseCode>) -> SocketAddr {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let (Some(rcode), Ok(q)) = (rcode, Message::from_vec(&buf[..n])) else {
                    continue;
                };
                let mut r = Message::error_msg(q.metadata.id, OpCode::Query, rcode);
                r.add_queries(q.queries.clone());
                if rcode == ResponseCode::NoError {
                    let name = q.queries[0].name().clone();
                    r.add_answer(Record::from_rdata(name, 60, RData::A(A::new(10, 0, 0, 1))));
                }
                let _ = socket.send_to(&r.to_vec().unwrap(), from);
            }
        });
        addr
    }

    fn probe(target: SocketAddr) -> DnsProbe {
        DnsProbe::new(
            target,
            Source::default(),
            Duration::from_millis(300),
            "A",
            "www.example.com",
        )
        .unwrap()
    }

    #[tokio::test]
    async fn an_answer_is_up() {
        assert_eq!(
            probe(responder(Some(ResponseCode::NoError))).run().await,
            Outcome::Up
        );
        let soa = DnsProbe::new(
            responder(Some(ResponseCode::NoError)),
            Source::default(),
            Duration::from_millis(300),
            "SOA",
            ".",
        )
        .unwrap();
        assert_eq!(soa.run().await, Outcome::Up);
        assert_eq!(soa.describe().split(' ').nth(2), Some("SOA"));
    }

    #[tokio::test]
    async fn an_error_rcode_is_down() {
        assert!(matches!(
            probe(responder(Some(ResponseCode::ServFail))).run().await,
            Outcome::Down(Failure::BadResponse(m)) if m.starts_with("rcode ")
        ));
        assert!(matches!(
            probe(responder(Some(ResponseCode::NXDomain))).run().await,
            Outcome::Down(Failure::BadResponse(_))
        ));
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_a_closed_port_is_refused() {
        let start = std::time::Instant::now();
        assert_eq!(
            probe(responder(None)).run().await,
            Outcome::Down(Failure::Timeout(Duration::from_millis(300)))
        );
        assert!(start.elapsed() < Duration::from_millis(800));
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert_eq!(probe(closed).run().await, Outcome::Down(Failure::Refused));
    }

    #[tokio::test]
    async fn garbage_is_a_bad_response() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((_, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(b"\x01\x02garbage", from);
            }
        });
        assert!(matches!(
            probe(addr).run().await,
            Outcome::Down(Failure::BadResponse(m)) if m.starts_with("not a DNS message")
        ));
    }
}
