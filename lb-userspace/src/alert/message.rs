//! The mails keepalived sends, word for word (2.2.7: core/smtp.c,
//! vrrp/vrrp_notify.c, check/ipwrapper.c and each checker): subjects
//! `[ROUTER_ID] VRRP Instance VI_1 - Entering MASTER state`, bodies the
//! one `=> ... <=` line. Pure: the sender adds the clock and the host.

use std::{net::IpAddr, time::SystemTime};

use lettre::{
    Message,
    message::{Mailbox, header::ContentType},
};

use crate::{
    config::HealthCheck,
    dataplane::keys::Proto,
    vrrp::{fsm::State, sync_group},
};

/// A VRRP instance's or sync group's state, as mails name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpState {
    Master,
    Backup,
    Fault,
    Stop,
}

impl VrrpState {
    fn fsm(self) -> State {
        match self {
            VrrpState::Master => State::Master,
            VrrpState::Backup => State::Backup,
            VrrpState::Fault => State::Fault,
            VrrpState::Stop => State::Initialize,
        }
    }

    fn of(state: State) -> VrrpState {
        match state {
            State::Master => VrrpState::Master,
            State::Backup => VrrpState::Backup,
            State::Fault => VrrpState::Fault,
            State::Initialize => VrrpState::Stop,
        }
    }
}

/// One alert, before it is a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    Instance {
        name: String,
        state: VrrpState,
    },
    Group {
        name: String,
        state: VrrpState,
    },
    /// A real server went up or down; `body` is its checker's line.
    Real {
        service: String,
        real: String,
        up: bool,
        body: String,
    },
    /// A virtual server gained or lost its quorum.
    Quorum {
        service: String,
        up: bool,
        body: String,
    },
}

fn up_down(up: bool) -> &'static str {
    if up { "UP" } else { "DOWN" }
}

impl Alert {
    pub fn subject(&self, router_id: &str) -> String {
        match self {
            Self::Instance { name, state } => {
                format!(
                    "[{router_id}] VRRP Instance {name} - {}",
                    state_subject(*state)
                )
            }
            Self::Group { name, state } => {
                format!(
                    "[{router_id}] VRRP Group {name} - {}",
                    state_subject(*state)
                )
            }
            Self::Real {
                service, real, up, ..
            } => format!(
                "[{router_id}] Realserver {real} of virtual server {service} - {}",
                up_down(*up)
            ),
            Self::Quorum { service, up, .. } => {
                format!("[{router_id}] Virtualserver {service} - {}", up_down(*up))
            }
        }
    }

    pub fn body(&self) -> String {
        match self {
            Self::Instance { state, .. } => match state {
                VrrpState::Master => "=> VRRP Instance is now owning VRRP VIPs <=",
                VrrpState::Backup | VrrpState::Fault => {
                    "=> VRRP Instance is no longer owning VRRP VIPs <="
                }
                VrrpState::Stop => "=> VRRP Instance stopping <=",
            }
            .to_string(),
            Self::Group { state, .. } => format!(
                "=> All VRRP group instances are now {} <=",
                match state {
                    VrrpState::Master => "in MASTER state",
                    VrrpState::Backup => "in BACKUP state",
                    VrrpState::Fault => "in FAULT state",
                    VrrpState::Stop => "stopping",
                }
            ),
            Self::Real { body, .. } | Self::Quorum { body, .. } => body.clone(),
        }
    }
}

fn state_subject(s: VrrpState) -> &'static str {
    match s {
        VrrpState::Master => "Entering MASTER state",
        VrrpState::Backup => "Entering BACKUP state",
        VrrpState::Fault => "Entering FAULT state",
        VrrpState::Stop => "Stopping",
    }
}

/// keepalived's name of a service or real: `[10.0.0.1]:tcp:80`, in mails
/// and notify FIFO lines.
pub fn trio(addr: IpAddr, protocol: impl Into<Proto>, port: u16) -> String {
    let p = match protocol.into() {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    format!("[{addr}]:{p}:{port}")
}

/// A virtual_server of a virtual_server_group: `[NAME]:PORT`.
pub fn group_service(name: &str, port: u16) -> String {
    format!("[{name}]:{port}")
}

/// The body line each checker sends when it decides the real up or down.
pub fn check_line(check: &HealthCheck, up: bool) -> &'static str {
    use HealthCheck as H;
    match (check, up) {
        (H::TcpCheck(_), true) => "=> TCP CHECK succeed on service <=",
        (H::TcpCheck(_), false) => "=> TCP CHECK failed on service <=",
        (H::HttpGet(_) | H::SslGet(_), true) => "=> CHECK succeed on service <=",
        (H::HttpGet(_) | H::SslGet(_), false) => {
            "=> CHECK failed on service : HTTP request failed <="
        }
        (H::MiscCheck(_), true) => "=> MISC CHECK succeeded on service <=",
        (H::MiscCheck(_), false) => "=> MISC CHECK failed on service <=",
        (H::UdpCheck(_), true) => "=> UDP CHECK succeed on service <=",
        (H::UdpCheck(_), false) => "=> UDP CHECK failed on service <=",
        (H::PingCheck(_), true) => "=> ICMP CHECK succeed on service <=",
        (H::PingCheck(_), false) => "=> ICMP CHECK failed on service <=",
        (H::DnsCheck(_), true) => "=> DNS_CHECK: succeed on service <=",
        (H::DnsCheck(_), false) => "=> DNS_CHECK: failed on service <=",
        (H::SmtpCheck(_), true) => "=> CHECK succeed on service <=",
        (H::SmtpCheck(_), false) => "=> CHECK failed on service <=",
        (H::FileCheck(_), true) => "=> FILE CHECK succeeded on service <=",
        (H::FileCheck(_), false) => "=> FILE CHECK failed on service <=",
    }
}

/// The body of a quorum mail: `=> Gained quorum 1+0=1 <= 2 <=` (the
/// threshold the change was decided against, then the live weight).
pub fn quorum_line(up: bool, quorum: u32, hysteresis: u32, threshold: u64, weight: u64) -> String {
    let what = if up { "Gained quorum" } else { "Lost quorum" };
    format!("=> {what} {quorum}+{hysteresis}={threshold} <= {weight} <=")
}

/// A sync group's state from its members' (`None`: not started), by the
/// rule its notify scripts follow (`sync_group::group_state`).
pub fn group_state(members: &[Option<VrrpState>]) -> Option<VrrpState> {
    let fsm: Vec<Option<State>> = members.iter().map(|m| m.map(VrrpState::fsm)).collect();
    sync_group::group_state(&fsm).map(VrrpState::of)
}

/// Who a mail is from and to, checked once when the settings are read.
#[derive(Debug, Clone)]
pub struct Addresses {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
}

/// The mail: From, To (every recipient), Subject, Date, Message-ID, the
/// body as one plain-text line.
pub fn compose(
    who: &Addresses,
    subject: String,
    body: String,
    date: SystemTime,
    message_id: String,
) -> Result<Message, lettre::error::Error> {
    let mut m = Message::builder()
        .from(who.from.clone())
        .subject(subject)
        .date(date)
        .message_id(Some(message_id))
        .header(ContentType::TEXT_PLAIN);
    for to in &who.to {
        m = m.to(to.clone());
    }
    m.body(body + "\r\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Connect, Protocol, TcpCheck};

    #[test]
    fn vrrp_subjects_and_bodies() {
        let i = |state| Alert::Instance {
            name: "VI_1".into(),
            state,
        };
        assert_eq!(
            i(VrrpState::Master).subject("LVS_DEVEL"),
            "[LVS_DEVEL] VRRP Instance VI_1 - Entering MASTER state"
        );
        assert_eq!(
            i(VrrpState::Master).body(),
            "=> VRRP Instance is now owning VRRP VIPs <="
        );
        assert_eq!(
            i(VrrpState::Backup).subject("lb1"),
            "[lb1] VRRP Instance VI_1 - Entering BACKUP state"
        );
        assert_eq!(
            i(VrrpState::Fault).body(),
            "=> VRRP Instance is no longer owning VRRP VIPs <="
        );
        assert_eq!(
            i(VrrpState::Stop).subject("lb1"),
            "[lb1] VRRP Instance VI_1 - Stopping"
        );
        assert_eq!(i(VrrpState::Stop).body(), "=> VRRP Instance stopping <=");
        let g = Alert::Group {
            name: "G".into(),
            state: VrrpState::Master,
        };
        assert_eq!(
            g.subject("lb1"),
            "[lb1] VRRP Group G - Entering MASTER state"
        );
        assert_eq!(
            g.body(),
            "=> All VRRP group instances are now in MASTER state <="
        );
        let g = Alert::Group {
            name: "G".into(),
            state: VrrpState::Stop,
        };
        assert_eq!(g.body(), "=> All VRRP group instances are now stopping <=");
    }

    #[test]
    fn checker_and_quorum_mails() {
        let tcp = HealthCheck::TcpCheck(TcpCheck {
            connect: Connect {
                connect_ip: None,
                connect_port: None,
                bindto: None,
                bind_port: None,
                bind_if: None,
                fwmark: None,
                connect_timeout: Duration::from_secs(5),
                timing: crate::config::Timing {
                    retry: 1,
                    delay_before_retry: Duration::from_secs(1),
                    warmup: None,
                    delay_loop: None,
                    alpha: None,
                },
            },
        });
        let a = Alert::Real {
            service: trio("10.0.0.100".parse().unwrap(), Protocol::Tcp, 80),
            real: trio("10.0.0.11".parse().unwrap(), Protocol::Tcp, 80),
            up: false,
            body: check_line(&tcp, false).into(),
        };
        assert_eq!(
            a.subject("lb1"),
            "[lb1] Realserver [10.0.0.11]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN"
        );
        assert_eq!(a.body(), "=> TCP CHECK failed on service <=");
        assert_eq!(check_line(&tcp, true), "=> TCP CHECK succeed on service <=");
        let q = Alert::Quorum {
            service: trio("2001:db8::1".parse().unwrap(), Protocol::Udp, 53),
            up: true,
            body: quorum_line(true, 2, 1, 3, 4),
        };
        assert_eq!(
            q.subject("lb1"),
            "[lb1] Virtualserver [2001:db8::1]:udp:53 - UP"
        );
        assert_eq!(q.body(), "=> Gained quorum 2+1=3 <= 4 <=");
        assert_eq!(
            quorum_line(false, 1, 0, 1, 0),
            "=> Lost quorum 1+0=1 <= 0 <="
        );
        assert_eq!(group_service("web", 443), "[web]:443");
    }

    /// The rule is `sync_group::group_state`'s (tested there); each mail
    /// state maps to its own and back.
    #[test]
    fn a_group_follows_its_members() {
        use VrrpState::*;
        for s in [Master, Backup, Fault, Stop] {
            assert_eq!(group_state(&[Some(s), Some(s)]), Some(s));
        }
        assert_eq!(group_state(&[Some(Stop), Some(Master)]), None);
    }

    #[test]
    fn the_mail_has_keepalived_s_headers() {
        let who = Addresses {
            from: "lb1@example.com".parse().unwrap(),
            to: vec![
                "ops@example.com".parse().unwrap(),
                "oncall@example.com".parse().unwrap(),
            ],
        };
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let alert = Alert::Instance {
            name: "VI_1".into(),
            state: VrrpState::Master,
        };
        let m = compose(
            &who,
            alert.subject("lb1"),
            alert.body(),
            date,
            "<1.2@lb1>".into(),
        )
        .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        for header in [
            "From: lb1@example.com\r\n",
            "To: ops@example.com, oncall@example.com\r\n",
            "Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state\r\n",
            "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n",
            "Message-ID: <1.2@lb1>\r\n",
        ] {
            assert!(text.contains(header), "{header:?} missing in:\n{text}");
        }
        assert!(
            text.ends_with("\r\n\r\n=> VRRP Instance is now owning VRRP VIPs <=\r\n"),
            "{text}"
        );
        let envelope = m.envelope();
        assert_eq!(envelope.to().len(), 2);
        assert_eq!(envelope.from().unwrap().to_string(), "lb1@example.com");
    }
}
