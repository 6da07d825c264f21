//! `virtual_server` and `real_server` blocks with their health checks.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use super::{
    diag::Diagnostics,
    keywords,
    model::{
        BodyRegex, Connect, DnsCheck, HealthCheck, HexPattern, HttpCheck, HttpProtocol, MiscCheck,
        PingCheck, Protocol, QuorumConfig, RealServer, SmtpCheck, SslCheck, SslClient, TcpCheck,
        Timing, UdpCheck, Url, VirtualServer,
    },
    tree::Node,
    values::{command, flag, int, ip, ip_text, notify_command, one, port_text, secs, switch},
};

// keepalived's defaults as keepalived.conf(5) (2.x) gives them: delay_loop
// 60 s, connect_timeout 5 s, retry 1, delay_before_retry 1 s (3 s for
// HTTP_GET and SSL_GET, see `http_defaults`); an absent
// lb_algo leaves IPVS's default scheduler, wlc.
const DELAY_LOOP: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
const RETRY: u32 = 1;
const SCHEDULER: &str = "wlc";

/// Schedulers IPVS knows; all are served by weighted Maglev.
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
];

/// The members of each `virtual_server_group`, by name.
pub type Groups = HashMap<String, Vec<(IpAddr, u16)>>;

/// A group expands to at most this many services.
const MAX_GROUP_MEMBERS: usize = 1024;

/// Reads every `virtual_server_group NAME { VIP PORT ... }` block; members
/// may be ranges (`10.0.0.1-10`, `10.0.0.1-10.0.0.9`, `10.0.0.8/29`).
pub fn groups(nodes: &[Node], d: &mut Diagnostics) -> Groups {
    let mut groups = Groups::new();
    let mut defined_at = HashMap::new();
    for n in nodes.iter().filter(|n| n.keyword == "virtual_server_group") {
        let Some(name) = n.arg(0).filter(|_| n.args.len() == 1) else {
            d.error(
                &n.at,
                "virtual_server_group needs one name: `virtual_server_group WEB {`",
            );
            continue;
        };
        if let Some(first) = defined_at.insert(name.to_string(), n.at.clone()) {
            d.error(
                &n.at,
                format!("virtual_server_group {name} is already defined at {first}"),
            );
            continue;
        }
        let mut members: Vec<(IpAddr, u16)> = Vec::new();
        for k in n.block.iter().flatten() {
            if k.keyword == "fwmark" {
                d.error(
                    &k.at,
                    "virtual_server_group fwmark is not supported: xdpvs balances by VIP, port and protocol",
                );
                continue;
            }
            let port = match (k.arg(0).and_then(port_text), k.args.len()) {
                (Some(p), 1) if p != 0 => p,
                _ => {
                    d.error(
                        &k.at,
                        format!(
                            "virtual_server_group {name}: `{}` needs one port: xdpvs balances one port per service",
                            k.keyword
                        ),
                    );
                    continue;
                }
            };
            let Some(addrs) = address_range(&k.keyword) else {
                d.error(
                    &k.at,
                    format!(
                        "virtual_server_group {name}: {} is not an IP address or range \
                         (10.0.0.1, 10.0.0.1-10, 10.0.0.1-10.0.0.9, 10.0.0.8/29), or has more than {MAX_GROUP_MEMBERS} addresses",
                        k.keyword
                    ),
                );
                continue;
            };
            for a in addrs {
                if members.contains(&(a, port)) {
                    d.error(
                        &k.at,
                        format!("virtual_server_group {name}: {a} {port} is listed twice"),
                    );
                } else if members
                    .first()
                    .is_some_and(|f| f.0.is_ipv4() != a.is_ipv4())
                {
                    d.error(
                        &k.at,
                        format!("virtual_server_group {name}: IPv4 and IPv6 members cannot share real servers in direct routing"),
                    );
                } else {
                    members.push((a, port));
                }
            }
        }
        if members.len() > MAX_GROUP_MEMBERS {
            d.error(
                &n.at,
                format!("virtual_server_group {name}: more than {MAX_GROUP_MEMBERS} members"),
            );
            members.clear();
        }
        groups.insert(name.to_string(), members);
    }
    groups
}

/// `A`, `A-B` (B the last octet or hextet, or a whole address) or `A/N`.
fn address_range(text: &str) -> Option<Vec<IpAddr>> {
    fn bits(a: IpAddr) -> u128 {
        match a {
            IpAddr::V4(v) => u128::from(u32::from(v)),
            IpAddr::V6(v) => u128::from(v),
        }
    }
    let back = |like: IpAddr, n: u128| match like {
        IpAddr::V4(_) => u32::try_from(n)
            .ok()
            .map(|n| IpAddr::from(std::net::Ipv4Addr::from(n))),
        IpAddr::V6(_) => Some(IpAddr::from(std::net::Ipv6Addr::from(n))),
    };
    let (first, last) = if let Some((a, b)) = text.split_once('-') {
        let first: IpAddr = a.parse().ok()?;
        let last = match b.parse::<IpAddr>() {
            Ok(l) if l.is_ipv4() == first.is_ipv4() => l,
            Ok(_) => return None,
            // The last octet (IPv4, decimal) or hextet (IPv6, hex).
            Err(_) => {
                let (width, n) = match first {
                    IpAddr::V4(_) => (8, u128::from(b.parse::<u8>().ok()?)),
                    IpAddr::V6(_) => (16, u128::from(u16::from_str_radix(b, 16).ok()?)),
                };
                back(first, (bits(first) >> width << width) | n)?
            }
        };
        (first, last)
    } else if let Some((a, len)) = text.split_once('/') {
        let base: IpAddr = a.parse().ok()?;
        let total = if base.is_ipv4() { 32 } else { 128 };
        let len: u32 = len.parse().ok().filter(|&l| l <= total)?;
        let host_bits = total - len;
        if host_bits > 10 {
            return None;
        }
        let start = bits(base) >> host_bits << host_bits;
        (
            back(base, start)?,
            back(base, start | ((1u128 << host_bits) - 1))?,
        )
    } else {
        let a: IpAddr = text.parse().ok()?;
        (a, a)
    };
    let (lo, hi) = (bits(first), bits(last));
    if hi < lo || hi - lo >= MAX_GROUP_MEMBERS as u128 {
        return None;
    }
    (lo..=hi).map(|n| back(first, n)).collect()
}

/// One `virtual_server` block: a service, or with `group NAME` one service
/// per member of that virtual_server_group.
pub fn virtual_server(n: &Node, groups: &Groups, d: &mut Diagnostics) -> Vec<VirtualServer> {
    match n.arg(0) {
        Some("fwmark") => {
            d.error(
                &n.at,
                "virtual_server fwmark is not supported: xdpvs balances by VIP, port and protocol",
            );
            Vec::new()
        }
        Some("group") => {
            let Some(name) = n.arg(1).filter(|_| n.args.len() == 2) else {
                d.error(
                    &n.at,
                    "virtual_server group needs a group name: `virtual_server group WEB {`",
                );
                return Vec::new();
            };
            let Some(members) = groups.get(name) else {
                d.error(
                    &n.at,
                    format!(
                        "virtual_server group {name}: no virtual_server_group {name} is defined"
                    ),
                );
                return Vec::new();
            };
            if members.is_empty() {
                d.error(
                    &n.at,
                    format!("virtual_server group {name}: the group has no usable member"),
                );
            }
            let mut out = Vec::new();
            // The body is read once per member (each member's port is its
            // reals' default); its diagnostics are told once.
            let mut quiet = Diagnostics::default();
            for (i, &(addr, port)) in members.iter().enumerate() {
                let d = if i == 0 { &mut *d } else { &mut quiet };
                out.extend(service(n, addr, port, Some(name), d));
            }
            out
        }
        _ => match (n.arg(0).and_then(ip_text), n.arg(1).and_then(port_text)) {
            (Some(a), Some(p)) if n.args.len() == 2 => {
                service(n, a, p, None, d).into_iter().collect()
            }
            _ => {
                d.error(
                    &n.at,
                    "virtual_server needs an IP address and a port: `virtual_server 10.0.0.100 80 {`",
                );
                Vec::new()
            }
        },
    }
}

fn service(
    n: &Node,
    addr: IpAddr,
    port: u16,
    group: Option<&str>,
    d: &mut Diagnostics,
) -> Option<VirtualServer> {
    let mut vs = VirtualServer {
        addr,
        port,
        group: group.map(String::from),
        protocol: Protocol::Tcp,
        delay_loop: DELAY_LOOP,
        scheduler: SCHEDULER.into(),
        persistence_timeout: 0,
        sorry_server: None,
        alpha: false,
        smtp_alert: None,
        ha_suspend: false,
        omega: false,
        quorum: QuorumConfig::default(),
        reals: Vec::new(),
        location: n.at.clone(),
    };
    let mut scheduler_at = None;
    let mut method_set = false;
    let mut listed = std::collections::HashSet::new();
    let blocks = n.block.as_deref().unwrap_or_default();
    // Checker settings here are defaults for every check below, wherever they stand.
    let defaults = Connect::new().settings(blocks, d);
    let vs_virtualhost = virtualhost_of(blocks, d);
    let real_defaults = RealDefaults::of(blocks);
    for k in blocks
        .iter()
        .filter(|k| !Connect::SETTINGS.contains(&k.keyword.as_str()))
    {
        match k.keyword.as_str() {
            "delay_loop" => vs.delay_loop = secs(k, 1, d).unwrap_or(vs.delay_loop),
            "lb_algo" | "lvs_sched" => {
                if let Some(s) = one(k, d) {
                    if !SCHEDULERS.contains(&s) {
                        d.warn(
                            &k.at,
                            format!(
                                "lb_algo {s}: not an IPVS scheduler name; weighted Maglev is used"
                            ),
                        );
                    }
                    vs.scheduler = s.to_string();
                    scheduler_at = Some(k.at.clone());
                }
            }
            "lb_kind" | "lvs_method" => {
                method_set = true;
                direct_routing(k, d);
            }
            "sorry_server_lvs_method" => direct_routing(k, d),
            // The default of every real below (see `real_server`).
            "weight" => {
                int(k, 1u32, 65535, d);
            }
            "inhibit_on_failure" => {
                switch(k, d);
            }
            "persistence_timeout" if k.args.is_empty() => {
                vs.persistence_timeout = PERSISTENCE_TIMEOUT
            }
            "persistence_timeout" => vs.persistence_timeout = int(k, 0, u32::MAX, d).unwrap_or(0),
            "protocol" => match one(k, d) {
                Some(p) if p.eq_ignore_ascii_case("tcp") => vs.protocol = Protocol::Tcp,
                Some(p) if p.eq_ignore_ascii_case("udp") => vs.protocol = Protocol::Udp,
                Some(p) => d.error(&k.at, format!("protocol {p}: xdpvs balances TCP or UDP")),
                None => {}
            },
            "sorry_server" => match (k.arg(0).and_then(ip_text), k.arg(1).and_then(port_text)) {
                (Some(a), Some(p)) => vs.sorry_server = Some(SocketAddr::new(a, p)),
                _ => d.error(&k.at, "sorry_server needs an IP address and a port"),
            },
            "alpha" => vs.alpha = flag(k, d),
            "smtp_alert" => vs.smtp_alert = switch(k, d),
            "ha_suspend" => vs.ha_suspend = flag(k, d),
            "omega" => vs.omega = flag(k, d),
            "ops" => d.error(
                &k.at,
                "ops (one-packet scheduling) is not supported: xdpvs keeps each UDP flow on one \
                 real through its flow table; remove ops (a short UDP timeout, `xdpvs adm \
                 --set 0 0 SECONDS`, ends idle flows sooner)",
            ),
            "persistence_granularity" => persistence_granularity(k, &mut vs, d),
            "uthreshold" | "lthreshold" => threshold(k, d),
            // keepalived reads these per real_server only.
            "notify_up" | "notify_down" => d.error(
                &k.at,
                format!(
                    "{0} belongs in each real_server block (keepalived runs it when that real \
                     goes up or down): move it there",
                    k.keyword
                ),
            ),
            "quorum" => vs.quorum.quorum = int(k, 1, u32::MAX, d).unwrap_or(1),
            "hysteresis" => vs.quorum.hysteresis = int(k, 0, u32::MAX, d).unwrap_or(0),
            "quorum_up" => vs.quorum.up_script = notify_command(k, d),
            "quorum_down" => vs.quorum.down_script = notify_command(k, d),
            // Read above, wherever it stands: the default of every url below.
            "virtualhost" => {}
            "real_server" => {
                if let Some(r) = real_server(
                    k,
                    &vs,
                    (blocks, &defaults, &real_defaults),
                    vs_virtualhost.as_deref(),
                    d,
                ) {
                    // A set, not a scan: a hostile file may list a million reals.
                    if !listed.insert((r.addr, r.port)) {
                        d.error(
                            &k.at,
                            format!(
                                "real_server {} {} is listed twice in this virtual_server",
                                r.addr, r.port
                            ),
                        );
                    } else {
                        vs.reals.push(r);
                    }
                }
            }
            _ => keywords::unhandled("virtual_server", k, d),
        }
    }
    if let Some(at) = scheduler_at {
        d.note(
            &at,
            format!(
                "lb_algo {} is served by weighted Maglev consistent hashing",
                vs.scheduler
            ),
        );
    }
    if !method_set {
        // keepalived: "no forwarding method set, setting default NAT". A
        // note, as `lb_algo`'s: what differs is said, the file is fine.
        d.note(
            &n.at,
            "no lb_kind: keepalived would forward by NAT; xdpvs forwards by direct routing \
             (DR), so each real must hold the VIP on its loopback (set `lb_kind DR`)",
        );
    }
    Some(vs)
}

fn real_server(
    n: &Node,
    vs: &VirtualServer,
    (vs_blocks, vs_defaults, vs_reals): (&[Node], &Connect, &RealDefaults),
    vs_virtualhost: Option<&str>,
    d: &mut Diagnostics,
) -> Option<RealServer> {
    let (addr, port) = match (n.arg(0).and_then(ip_text), n.arg(1).and_then(port_text)) {
        // Port 0 or none: the service's port, as IPVS direct routing uses it anyway.
        (Some(a), Some(0)) if n.args.len() == 2 => (a, vs.port),
        (Some(a), Some(p)) if n.args.len() == 2 => (a, p),
        (Some(a), None) if n.args.len() == 1 => (a, vs.port),
        _ => {
            d.error(
                &n.at,
                "real_server needs an IP address and a port: `real_server 10.0.0.11 80 {`",
            );
            return None;
        }
    };
    if addr.is_ipv4() != vs.addr.is_ipv4() {
        d.error(
            &n.at,
            "real_server and virtual_server must be of the same address family in direct routing",
        );
        return None;
    }
    // Port 0 serves every port: the real's port is only where its checks connect.
    if port != vs.port && vs.port != 0 {
        // Direct routing rewrites no port: the real must listen on the VIP's.
        d.warn(
            &n.at,
            format!(
                "real_server {addr} {port}: port differs from the virtual_server's {0}; direct routing keeps port {0}",
                vs.port
            ),
        );
    }
    let mut r = RealServer {
        addr,
        port,
        weight: vs_reals.weight,
        inhibit_on_failure: vs_reals.inhibit_on_failure,
        smtp_alert: None,
        delay_loop: None,
        alpha: None,
        notify_up: None,
        notify_down: None,
        checks: Vec::new(),
        location: n.at.clone(),
    };
    let blocks = n.block.as_deref().unwrap_or_default();
    let defaults = vs_defaults.clone().settings(blocks, d);
    let virtualhost = virtualhost_of(blocks, d);
    let virtualhost = virtualhost.as_deref().or(vs_virtualhost);
    for k in blocks
        .iter()
        .filter(|k| !Connect::SETTINGS.contains(&k.keyword.as_str()))
    {
        match k.keyword.as_str() {
            "weight" => r.weight = int(k, 0, 65535, d).unwrap_or(1),
            "lvs_method" => direct_routing(k, d),
            // keepalived's `<BOOL>`: `false` undoes the virtual server's.
            "inhibit_on_failure" => {
                r.inhibit_on_failure = switch(k, d).unwrap_or(r.inhibit_on_failure)
            }
            "smtp_alert" => r.smtp_alert = switch(k, d),
            "delay_loop" => r.delay_loop = secs(k, 1, d).or(r.delay_loop),
            "alpha" => r.alpha = switch(k, d).or(r.alpha),
            "notify_up" => r.notify_up = notify_command(k, d),
            "notify_down" => r.notify_down = notify_command(k, d),
            "uthreshold" | "lthreshold" => threshold(k, d),
            "BFD_CHECK" => refuse_bfd(k, d),
            "TCP_CHECK" => {
                let c = tcp_check(k, &defaults, d);
                needs_port(k, &r, &c.connect, d);
                r.checks.push(HealthCheck::TcpCheck(c));
            }
            "HTTP_GET" => {
                let defaults = http_defaults(vs_blocks, blocks);
                let (c, _) = http_check(k, &defaults, virtualhost, d);
                needs_port(k, &r, &c.connect, d);
                r.checks.push(HealthCheck::HttpGet(c));
            }
            "SSL_GET" => {
                let defaults = http_defaults(vs_blocks, blocks);
                let (http, enable_sni) = http_check(k, &defaults, virtualhost, d);
                needs_port(k, &r, &http.connect, d);
                r.checks
                    .push(HealthCheck::SslGet(SslCheck { http, enable_sni }));
            }
            "virtualhost" => {}
            "MISC_CHECK" => {
                let defaults = misc_defaults(vs_blocks, blocks);
                r.checks
                    .extend(misc_check(k, defaults, vs.delay_loop, d).map(HealthCheck::MiscCheck))
            }
            "UDP_CHECK" => {
                if let Some(c) = udp_check(k, &defaults, d) {
                    needs_port(k, &r, &c.connect, d);
                    r.checks.push(HealthCheck::UdpCheck(c));
                }
            }
            "PING_CHECK" => r.checks.push(HealthCheck::PingCheck(PingCheck {
                connect: plain_check(k, &defaults, d),
            })),
            "DNS_CHECK" => {
                let defaults = dns_defaults(vs_blocks, blocks, vs.delay_loop);
                if let Some(c) = dns_check(k, &defaults, d) {
                    needs_port(k, &r, &c.connect, d);
                    r.checks.push(HealthCheck::DnsCheck(c));
                }
            }
            "SMTP_CHECK" => {
                if let Some(c) = smtp_check(k, &defaults, d) {
                    needs_port(k, &r, &c.connect, d);
                    r.checks.push(HealthCheck::SmtpCheck(c));
                }
            }
            "FILE_CHECK" => r
                .checks
                .extend(super::vrrp::file_check(k, d).map(HealthCheck::FileCheck)),
            _ => keywords::unhandled("real_server", k, d),
        }
    }
    Some(r)
}

/// The virtual_server's `weight` and `inhibit_on_failure`: its reals'
/// defaults, as in keepalived, wherever they stand (their errors are told
/// where the virtual_server's statements are read).
struct RealDefaults {
    weight: u32,
    inhibit_on_failure: bool,
}

impl RealDefaults {
    fn of(vs_blocks: &[Node]) -> Self {
        let mut quiet = Diagnostics::default();
        let mut r = RealDefaults {
            weight: 1,
            inhibit_on_failure: false,
        };
        for k in vs_blocks {
            match k.keyword.as_str() {
                "weight" => r.weight = int(k, 1, 65535, &mut quiet).unwrap_or(r.weight),
                "inhibit_on_failure" => {
                    r.inhibit_on_failure = switch(k, &mut quiet).unwrap_or(r.inhibit_on_failure)
                }
                _ => {}
            }
        }
        r
    }
}

/// `lb_kind` / `lvs_method`: only DR, the one method xdpvs forwards by.
fn direct_routing(k: &Node, d: &mut Diagnostics) {
    match one(k, d).map(str::to_ascii_uppercase).as_deref() {
        Some("DR") => {}
        Some(kind @ ("NAT" | "TUN")) => d.error(
            &k.at,
            format!(
                "{} {kind} is not supported: xdpvs forwards in direct-routing mode (DR)",
                k.keyword
            ),
        ),
        Some(other) => d.error(&k.at, format!("{} {other}: expected DR", k.keyword)),
        None => {}
    }
}

/// A real of a port-0 (every port) service has no port to check by default.
fn needs_port(k: &Node, r: &RealServer, c: &Connect, d: &mut Diagnostics) {
    if r.port == 0 && c.connect_port.is_none() {
        d.error(
            &k.at,
            format!(
                "{} of real_server {} needs connect_port (or a port on its real_server): the virtual_server serves every port",
                k.keyword, r.addr
            ),
        );
    }
}

/// keepalived's IPVS_SVC_PERSISTENT_TIMEOUT: what a `persistence_timeout`
/// without a value sets, and what `persistence_granularity` turns
/// persistence on with when no `persistence_timeout` came before it.
const PERSISTENCE_TIMEOUT: u32 = 360;

/// `persistence_granularity MASK`: the data plane binds each client address
/// on its own, so only the full mask (the same as none) can be honoured.
fn persistence_granularity(k: &Node, vs: &mut VirtualServer, d: &mut Diagnostics) {
    let Some(mask) = one(k, d) else { return };
    let full = match vs.addr {
        IpAddr::V4(_) => mask == "255.255.255.255" || mask == "32",
        IpAddr::V6(_) => mask == "128",
    };
    if !full {
        let whole = if vs.addr.is_ipv4() {
            "255.255.255.255"
        } else {
            "128"
        };
        d.error(
            &k.at,
            format!(
                "persistence_granularity {mask} is not supported: xdpvs persists each client \
                 address on its own; remove the line or write `persistence_granularity {whole}`"
            ),
        );
        return;
    }
    if vs.persistence_timeout == 0 {
        vs.persistence_timeout = PERSISTENCE_TIMEOUT;
    }
}

/// `uthreshold` / `lthreshold N`: xdpvs does not count a real's connections
/// to stop scheduling it, so only 0 (no limit) is accepted.
fn threshold(k: &Node, d: &mut Diagnostics) {
    match int(k, 0u32, u32::MAX, d) {
        Some(0) | None => {}
        Some(n) => d.error(
            &k.at,
            format!(
                "{} {n} is not supported: xdpvs does not limit a real's connections; remove \
                 the line (or set it to 0) and use weights, or `xdpvs ctl drain` to stop new flows",
                k.keyword
            ),
        ),
    }
}

/// BFD_CHECK, `bfd_instance`, `track_bfd`: xdpvs runs no BFD.
pub fn refuse_bfd(k: &Node, d: &mut Diagnostics) {
    d.error(
        &k.at,
        format!(
            "{} is not supported: xdpvs runs no BFD. Check reals with TCP_CHECK or PING_CHECK; \
             for fast failure detection between the balancers and the routers, run BFD in BIRD \
             with the routed scale-out (see the README, \"Two ways to share a VIP\")",
            k.keyword
        ),
    );
}

/// `bind_if NAME`: a network interface's name.
fn interface_name(k: &Node, d: &mut Diagnostics) -> Option<String> {
    let name = one(k, d)?;
    let valid = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.contains(['/', ':'])
        && name.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Some(name.to_string())
    } else {
        d.error(
            &k.at,
            format!(
                "{} {name}: not an interface name (at most {} characters, no `/`, `:` or spaces)",
                k.keyword,
                libc::IFNAMSIZ - 1
            ),
        );
        None
    }
}

/// MISC_CHECK's own default (keepalived: retry 0), then whatever the
/// virtual_server and real_server set.
fn misc_defaults(vs_blocks: &[Node], rs_blocks: &[Node]) -> Timing {
    let mut base = Connect::new();
    base.timing.retry = 0;
    base.inherited(vs_blocks, rs_blocks).timing
}

/// The settings of every checker, MISC_CHECK's too.
impl Timing {
    /// What a virtual_server or real_server may set for its checks too;
    /// false when `k` is not one.
    fn read(&mut self, k: &Node, d: &mut Diagnostics) -> bool {
        match k.keyword.as_str() {
            // `nb_get_retry` is the older spelling.
            "retry" | "nb_get_retry" => self.retry = int(k, 0, 1000, d).unwrap_or(self.retry),
            "delay_before_retry" => {
                self.delay_before_retry = secs(k, 0, d).unwrap_or(self.delay_before_retry)
            }
            "warmup" => self.warmup = secs(k, 0, d).or(self.warmup),
            _ => return false,
        }
        true
    }

    /// A checker's own `delay_loop` and `alpha` (the virtual_server and
    /// real_server read theirs); false when `k` is neither.
    fn read_own(&mut self, k: &Node, d: &mut Diagnostics) -> bool {
        match k.keyword.as_str() {
            "delay_loop" => self.delay_loop = secs(k, 1, d).or(self.delay_loop),
            "alpha" => self.alpha = switch(k, d).or(self.alpha),
            _ => return false,
        }
        true
    }
}

/// Reading the settings TCP_CHECK and HTTP_GET share.
impl Connect {
    fn new() -> Self {
        Self {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
            connect_timeout: CONNECT_TIMEOUT,
            timing: Timing {
                retry: RETRY,
                delay_before_retry: DELAY_BEFORE_RETRY,
                warmup: None,
                delay_loop: None,
                alpha: None,
            },
        }
    }

    /// What a virtual_server or real_server may set for its checks.
    const SETTINGS: &[&str] = &[
        "connect_timeout",
        "retry",
        "nb_get_retry",
        "delay_before_retry",
        "warmup",
    ];

    /// A checker's own defaults (`self`) under what the virtual_server and
    /// real_server set, both read once already with their diagnostics.
    fn inherited(self, vs_blocks: &[Node], rs_blocks: &[Node]) -> Self {
        let mut quiet = Diagnostics::default();
        self.settings(vs_blocks, &mut quiet)
            .settings(rs_blocks, &mut quiet)
    }

    fn settings(mut self, block: &[Node], d: &mut Diagnostics) -> Self {
        for k in block {
            self.read(k, d);
        }
        self
    }

    /// Reads one of `SETTINGS`; false when `k` is not one.
    fn read(&mut self, k: &Node, d: &mut Diagnostics) -> bool {
        match k.keyword.as_str() {
            "connect_timeout" => {
                self.connect_timeout = secs(k, 1, d).unwrap_or(self.connect_timeout)
            }
            _ => return self.timing.read(k, d),
        }
        true
    }

    /// Reads a setting of a check block; true when `k` was one.
    fn read_check(&mut self, block: &str, k: &Node, d: &mut Diagnostics) -> bool {
        match k.keyword.as_str() {
            "connect_ip" => self.connect_ip = ip(k, d),
            "connect_port" => self.connect_port = int(k, 1, 65535, d),
            "bindto" => self.bindto = ip(k, d),
            "bind_port" if block == "PING_CHECK" => d.error(
                &k.at,
                "bind_port: PING_CHECK sends ICMP echoes, which have no port; remove the line",
            ),
            "bind_port" => self.bind_port = int(k, 1, 65535, d),
            "bind_if" => self.bind_if = interface_name(k, d),
            // 0: no mark, as keepalived.
            "fwmark" => self.fwmark = int(k, 0, u32::MAX, d).filter(|&m| m != 0),
            "delay_loop" | "alpha" => {
                self.timing.read_own(k, d);
            }
            other if keywords::listed(block, other) => keywords::unhandled(block, k, d),
            _ => return self.read(k, d),
        }
        true
    }
}

fn tcp_check(n: &Node, defaults: &Connect, d: &mut Diagnostics) -> TcpCheck {
    let mut c = defaults.clone();
    for k in n.block.iter().flatten() {
        if !c.read_check("TCP_CHECK", k, d) {
            d.warn(
                &k.at,
                format!("unknown keyword {} in TCP_CHECK, ignored", k.keyword),
            );
        }
    }
    TcpCheck { connect: c }
}

/// The last `virtualhost` among `block`'s statements.
fn virtualhost_of(block: &[Node], d: &mut Diagnostics) -> Option<String> {
    let mut found = None;
    for k in block.iter().filter(|k| k.keyword == "virtualhost") {
        found = virtualhost(k, d).or(found);
    }
    found
}

/// A `virtualhost` value: it is sent as the Host header, so it must be one.
fn virtualhost(k: &Node, d: &mut Diagnostics) -> Option<String> {
    let host = one(k, d)?;
    if host.bytes().all(|b| b.is_ascii_graphic()) {
        Some(host.to_string())
    } else {
        d.error(
            &k.at,
            format!(
                "virtualhost {host}: must be a host name, with no spaces or control characters"
            ),
        );
        None
    }
}

/// HTTP_GET or SSL_GET (`n.keyword`), with `enable_sni` for SSL_GET.
fn http_check(
    n: &Node,
    defaults: &Connect,
    virtualhost: Option<&str>,
    d: &mut Diagnostics,
) -> (HttpCheck, bool) {
    let kind = n.keyword.as_str();
    let tls = kind == "SSL_GET";
    let block = n.block.as_deref().unwrap_or_default();
    let own = virtualhost_of(block, d);
    let virtualhost = own.as_deref().or(virtualhost);
    let mut c = defaults.clone();
    let mut urls = Vec::new();
    let mut url_blocks = 0;
    let mut enable_sni = false;
    let mut sni_at = None;
    let mut protocol = HttpProtocol::default();
    for k in block {
        match k.keyword.as_str() {
            "url" => {
                url_blocks += 1;
                urls.extend(url(k, virtualhost, d));
            }
            "virtualhost" => {}
            "enable_sni" if tls => {
                enable_sni = flag(k, d);
                sni_at = Some(&k.at);
            }
            "http_protocol" => match one(k, d) {
                Some("1.0") => protocol = HttpProtocol::Http10,
                Some("1.0C" | "1.0c") => protocol = HttpProtocol::Http10Close,
                Some("1.1") => protocol = HttpProtocol::Http11,
                Some(other) => d.error(
                    &k.at,
                    format!("http_protocol {other}: expected 1.0, 1.0C or 1.1"),
                ),
                None => {}
            },
            "fast_recovery" => d.error(
                &k.at,
                "fast_recovery is not supported: a down real is checked every delay_loop \
                 (every delay_before_retry while retrying); remove it",
            ),
            "sni_name" if tls => d.error(
                &k.at,
                "sni_name is not supported: give the url a virtualhost, which enable_sni sends \
                 as the server name",
            ),
            // SSL_GET has HTTP_GET's fields.
            _ if c.read_check("HTTP_GET", k, d) => {}
            other => d.warn(&k.at, format!("unknown keyword {other} in {kind}, ignored")),
        }
    }
    if url_blocks == 0 {
        d.error(
            &n.at,
            format!("{kind} needs at least one url {{ path ... }} block"),
        );
    }
    if let Some(at) = sni_at {
        for u in &urls {
            match u.virtualhost.as_deref() {
                None => d.warn(
                    at,
                    format!(
                        "enable_sni: url {} has no virtualhost, so no server name is sent",
                        u.path
                    ),
                ),
                Some(h) if !crate::health::tls::is_sni_name(h) => d.warn(
                    at,
                    format!(
                        "enable_sni: virtualhost {h} is not a DNS name, so no server name is sent"
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    for u in &mut urls {
        u.protocol = protocol;
    }
    (HttpCheck { urls, connect: c }, enable_sni)
}

fn url(n: &Node, default_host: Option<&str>, d: &mut Diagnostics) -> Option<Url> {
    let mut path = None;
    // A path refused is not also reported missing.
    let mut bad_path = false;
    let mut u = Url {
        path: String::new(),
        status_codes: Vec::new(),
        digest: None,
        virtualhost: default_host.map(String::from),
        regex: None,
        protocol: HttpProtocol::default(),
    };
    let mut regex = RegexParts::default();
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "path" => {
                match one(k, d) {
                    Some(p)
                        if p.parse::<hyper::http::uri::PathAndQuery>().is_ok()
                            && p.starts_with('/') =>
                    {
                        path = Some(p.to_string())
                    }
                    Some(p) => {
                        bad_path = true;
                        d.error(
                        &k.at,
                        format!("path {p}: must be an HTTP request path such as /health or /status?full"),
                    )
                    }
                    None => bad_path = true,
                }
            }
            "virtualhost" => {
                if let Some(h) = virtualhost(k, d) {
                    u.virtualhost = Some(h)
                }
            }
            "status_code" => {
                for a in &k.args {
                    match status_codes(&a.text) {
                        Some(codes) => u.status_codes.extend(codes),
                        None => d.error(
                            &k.at,
                            format!(
                                "status_code {}: must be an HTTP status from 100 to 599, or a range such as 200-299",
                                a.text
                            ),
                        ),
                    }
                }
            }
            "digest" => match one(k, d) {
                Some(h) if h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
                    u.digest = Some(h.to_ascii_lowercase())
                }
                Some(h) => d.error(
                    &k.at,
                    format!("digest {h}: must be 32 hex digits (an MD5, as genhash prints)"),
                ),
                None => {}
            },
            "regex" => match k.args.as_slice() {
                [p] => regex.pattern = Some((p.text.clone(), k.at.clone())),
                _ => {
                    regex.bad = true;
                    d.error(
                        &k.at,
                        "regex needs one pattern; quote it when it has spaces: `regex \"up and running\"`",
                    )
                }
            },
            "regex_no_match" => {
                regex.no_match = flag(k, d);
                regex.at.get_or_insert(k.at.clone());
            }
            "regex_options" => {
                regex.options.extend(k.args.iter().map(|a| a.text.clone()));
                regex.at.get_or_insert(k.at.clone());
            }
            "regex_min_offset" | "regex_max_offset" | "regex_stack" => {
                regex.bad = true;
                d.error(
                    &k.at,
                    format!(
                        "{} is not supported: the whole body (up to {} bytes) is matched; anchor \
                         the regex instead",
                        k.keyword,
                        crate::health::http::MAX_BODY
                    ),
                )
            }
            _ => keywords::unhandled("url", k, d),
        }
    }
    u.regex = body_regex(regex, d)?;
    match path {
        Some(p) => {
            u.path = p;
            Some(u)
        }
        None if bad_path => None,
        None => {
            d.error(&n.at, "url needs a path");
            None
        }
    }
}

/// A url's regex statements, read in any order.
#[derive(Default)]
struct RegexParts {
    pattern: Option<(String, super::diag::Location)>,
    no_match: bool,
    options: Vec<String>,
    /// The first regex_no_match or regex_options, for an error without regex.
    at: Option<super::diag::Location>,
    /// A statement was refused: the url is dropped.
    bad: bool,
}

/// Sets keepalived's PCRE2 option `name` on `b`; false when the regex
/// crate has no equivalent. Options that only tune PCRE2's matcher, or that
/// xdpvs's defaults already are (no UTF, `$` only at the very end), change
/// nothing.
fn regex_option(b: &mut regex::bytes::RegexBuilder, name: &str) -> bool {
    match name {
        "caseless" => b.case_insensitive(true),
        "multiline" => b.multi_line(true),
        "dotall" => b.dot_matches_new_line(true),
        "extended" => b.ignore_whitespace(true),
        "ungreedy" => b.swap_greed(true),
        "utf" | "ucp" => b.unicode(true),
        "dollar_endonly" | "never_utf" | "never_ucp" | "no_auto_capture" | "no_auto_possess"
        | "no_dotstar_anchor" | "no_start_optimize" | "never_backslash_c" | "dupnames" => b,
        _ => return false,
    };
    true
}

/// What `regex_option` takes, for the error.
const REGEX_OPTIONS: &str = "caseless, multiline, dotall, extended, ungreedy, utf, ucp, \
     dollar_endonly, never_utf, never_ucp, no_auto_capture, no_auto_possess, no_dotstar_anchor, \
     no_start_optimize, never_backslash_c, dupnames";

/// The compiled regex of a url; `Err` (reported) drops the url.
fn body_regex(parts: RegexParts, d: &mut Diagnostics) -> Option<Option<BodyRegex>> {
    if parts.bad {
        return None;
    }
    let Some((pattern, regex_at)) = parts.pattern else {
        if let Some(at) = &parts.at {
            d.error(
                at,
                "regex_no_match and regex_options need a regex in the same url",
            );
            return None;
        }
        return Some(None);
    };
    let at = parts.at.as_ref().unwrap_or(&regex_at);
    let mut builder = regex::bytes::RegexBuilder::new(&pattern);
    // PCRE2 without `utf` matches bytes; a bounded program keeps a hostile
    // pattern from taking the daemon's memory.
    builder.unicode(false).size_limit(REGEX_SIZE_LIMIT);
    let mut valid = true;
    for o in &parts.options {
        if !regex_option(&mut builder, o) {
            valid = false;
            d.error(
                at,
                format!(
                    "regex_options {o}: not supported by xdpvs's regex engine (Rust's regex \
                     crate); it has {REGEX_OPTIONS}"
                ),
            );
        }
    }
    let compiled = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            d.error(
                &regex_at,
                format!(
                    "regex {pattern:?}: {e} (xdpvs uses Rust's regex crate: no look-around or \
                     back-references)"
                ),
            );
            return None;
        }
    };
    valid.then_some(Some(BodyRegex {
        pattern,
        options: parts.options,
        no_match: parts.no_match,
        compiled,
    }))
}

/// The compiled size a url's regex may take.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `200` or a range `200-299`.
fn status_codes(text: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let (lo, hi) = (lo.parse::<u16>().ok()?, hi.parse::<u16>().ok()?);
    (100 <= lo && lo <= hi && hi <= 599).then_some(lo..=hi)
}

fn misc_check(
    n: &Node,
    timing: Timing,
    delay_loop: Duration,
    d: &mut Diagnostics,
) -> Option<MiscCheck> {
    let mut path = None;
    // keepalived.conf(5): misc_timeout defaults to delay_loop.
    let mut m = MiscCheck {
        misc_path: String::new(),
        misc_timeout: delay_loop,
        misc_dynamic: false,
        user: None,
        timing,
    };
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "misc_path" => path = command(k, d),
            "misc_timeout" => m.misc_timeout = secs(k, 1, d).unwrap_or(delay_loop),
            "misc_dynamic" => m.misc_dynamic = flag(k, d),
            "user" => m.user = super::vrrp::script_user(k, d),
            _ if m.timing.read(k, d) || m.timing.read_own(k, d) => {}
            _ => keywords::unhandled("MISC_CHECK", k, d),
        }
    }
    match path {
        Some(p) => {
            m.misc_path = p;
            Some(m)
        }
        None => {
            d.error(&n.at, "MISC_CHECK needs misc_path");
            None
        }
    }
}

/// A check with only the settings every checker has (PING_CHECK, TCP_CHECK).
fn plain_check(n: &Node, defaults: &Connect, d: &mut Diagnostics) -> Connect {
    let mut c = defaults.clone();
    for k in n.block.iter().flatten() {
        if !c.read_check(&n.keyword, k, d) {
            d.warn(
                &k.at,
                format!("unknown keyword {} in {}, ignored", k.keyword, n.keyword),
            );
        }
    }
    c
}

/// keepalived's UDP_CHECK limits: a reply of 0 to 255 bytes by default.
const MAX_REPLY_LENGTH: usize = 255;

fn udp_check(n: &Node, defaults: &Connect, d: &mut Diagnostics) -> Option<UdpCheck> {
    let mut u = UdpCheck {
        connect: defaults.clone(),
        payload: None,
        require_reply: false,
        reply_pattern: None,
        min_reply_length: 0,
        max_reply_length: MAX_REPLY_LENGTH,
    };
    let mut valid = true;
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "payload" => match hex_string(k, false) {
                Some(p) if !p.is_empty() => {
                    u.payload = Some(p.into_iter().map(|(v, _)| v).collect())
                }
                _ => {
                    d.error(&k.at, "payload needs hex digits, such as `payload 0a1b 2c`");
                    valid = false;
                }
            },
            "require_reply" => {
                u.require_reply = true;
                if !k.args.is_empty() {
                    match hex_string(k, true) {
                        Some(p) => u.reply_pattern = Some(HexPattern(p)),
                        None => {
                            d.error(
                                &k.at,
                                "require_reply: expected hex digits (x for any), such as `require_reply 0a1b xx`",
                            );
                            valid = false;
                        }
                    }
                }
            }
            "min_reply_length" => {
                u.min_reply_length = int(k, 0, 65535, d).unwrap_or(u.min_reply_length)
            }
            "max_reply_length" => {
                u.max_reply_length = int(k, 0, 65535, d).unwrap_or(u.max_reply_length)
            }
            _ if u.connect.read_check("UDP_CHECK", k, d) => {}
            other => d.warn(
                &k.at,
                format!("unknown keyword {other} in UDP_CHECK, ignored"),
            ),
        }
    }
    if u.min_reply_length > u.max_reply_length {
        d.error(
            &n.at,
            format!(
                "UDP_CHECK: min_reply_length {} is more than max_reply_length {}",
                u.min_reply_length, u.max_reply_length
            ),
        );
        valid = false;
    }
    valid.then_some(u)
}

/// keepalived's HEX_STR: words of hex digits, each read two digits at a
/// time from its start, a last odd digit standing alone (`Ab12f 3` is
/// AB 12 0F 03). With `wildcards`, `x` is a digit that matches anything.
/// Returns (value, mask) pairs; `None` when a character is not a digit.
fn hex_string(n: &Node, wildcards: bool) -> Option<Vec<(u8, u8)>> {
    let nibble = |c: char| match c {
        'x' | 'X' if wildcards => Some((0, 0)),
        c => c.to_digit(16).map(|v| (v as u8, 0xf)),
    };
    let mut out = Vec::new();
    for word in n.args.iter().map(|a| a.text.as_str()) {
        let digits = word.chars().map(nibble).collect::<Option<Vec<_>>>()?;
        for pair in digits.chunks(2) {
            out.push(match (pair[0], pair.get(1)) {
                ((hv, hm), Some(&(lv, lm))) => ((hv << 4) | lv, (hm << 4) | lm),
                ((v, m), None) => (v, m | 0xf0),
            });
        }
    }
    Some(out)
}

/// DNS_CHECK's own defaults (keepalived.conf(5): retry 3, delay_before_retry
/// delay_loop), then whatever the virtual_server and real_server set.
fn dns_defaults(vs_blocks: &[Node], rs_blocks: &[Node], delay_loop: Duration) -> Connect {
    let mut base = Connect::new();
    base.timing.retry = DNS_RETRY;
    base.timing.delay_before_retry = delay_loop;
    base.inherited(vs_blocks, rs_blocks)
}

/// HTTP_GET's and SSL_GET's own default (keepalived's http_get_handler:
/// delay_before_retry 3 s), then whatever the virtual_server and
/// real_server set.
fn http_defaults(vs_blocks: &[Node], rs_blocks: &[Node]) -> Connect {
    let mut base = Connect::new();
    base.timing.delay_before_retry = HTTP_DELAY_BEFORE_RETRY;
    base.inherited(vs_blocks, rs_blocks)
}

const HTTP_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(3);

const DNS_RETRY: u32 = 3;
const DNS_TYPES: &[&str] = &["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"];

fn dns_check(n: &Node, defaults: &Connect, d: &mut Diagnostics) -> Option<DnsCheck> {
    let mut c = DnsCheck {
        connect: defaults.clone(),
        record_type: "SOA".into(),
        name: ".".into(),
    };
    let mut valid = true;
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "type" => match one(k, d).map(str::to_ascii_uppercase) {
                Some(t) if DNS_TYPES.contains(&t.as_str()) => c.record_type = t,
                Some(t) => {
                    d.error(
                        &k.at,
                        format!(
                            "type {t}: DNS_CHECK queries one of {}",
                            DNS_TYPES.join(", ")
                        ),
                    );
                    valid = false;
                }
                None => valid = false,
            },
            "name" => match one(k, d) {
                Some(name) if hickory_proto::rr::Name::from_ascii(name).is_ok() => {
                    c.name = name.to_string()
                }
                Some(name) => {
                    d.error(&k.at, format!("name {name}: not a domain name"));
                    valid = false;
                }
                None => valid = false,
            },
            _ if c.connect.read_check("DNS_CHECK", k, d) => {}
            other => d.warn(
                &k.at,
                format!("unknown keyword {other} in DNS_CHECK, ignored"),
            ),
        }
    }
    valid.then_some(c)
}

/// keepalived's HELO name when `helo_name` is not given.
const SMTP_HELO: &str = "smtpchecker.keepalived.org";

fn smtp_check(n: &Node, defaults: &Connect, d: &mut Diagnostics) -> Option<SmtpCheck> {
    let mut c = SmtpCheck {
        connect: defaults.clone(),
        helo_name: SMTP_HELO.into(),
    };
    let mut valid = true;
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "helo_name" => match command(k, d) {
                Some(name) if !name.contains(['\r', '\n']) => c.helo_name = name,
                _ => valid = false,
            },
            // keepalived 1.x listed several servers in one SMTP_CHECK.
            "host" => {
                d.error(
                    &k.at,
                    "SMTP_CHECK host { } blocks are not supported: write one SMTP_CHECK per \
                     server, with connect_ip and connect_port",
                );
                valid = false;
            }
            _ if c.connect.read_check("SMTP_CHECK", k, d) => {}
            other => d.warn(
                &k.at,
                format!("unknown keyword {other} in SMTP_CHECK, ignored"),
            ),
        }
    }
    valid.then_some(c)
}

/// The top-level `SSL { certificate PATH  key PATH  ca PATH  password P }`.
pub fn ssl_client(n: &Node, d: &mut Diagnostics) -> Option<SslClient> {
    let (mut certificate, mut key, mut ca) = (None, None, None);
    for k in n.block.iter().flatten() {
        match k.keyword.as_str() {
            "certificate" => certificate = one(k, d).map(String::from),
            "key" => key = one(k, d).map(String::from),
            "ca" => ca = one(k, d).map(String::from),
            "password" => d.error(
                &k.at,
                "SSL password: an encrypted key is not supported; store it decrypted \
                 (`openssl pkey -in KEY -out PLAIN`, mode 0600) and remove the password",
            ),
            other => d.warn(&k.at, format!("unknown keyword {other} in SSL, ignored")),
        }
    }
    match (certificate, key) {
        (Some(certificate), Some(key)) => Some(SslClient {
            certificate,
            key,
            ca,
            location: n.at.clone(),
        }),
        (None, None) => None,
        _ => {
            d.error(&n.at, "SSL needs both certificate and key");
            None
        }
    }
}
