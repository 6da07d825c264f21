//! What xdpvs understood from a configuration, with defaults filled in.
//! Serialized as the JSON `xdpvs check FILE --json` prints (see `mod.rs`).

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use serde::{Serialize, Serializer};

use super::diag::Location;

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Config {
    pub global: GlobalDefs,
    pub vrrp_scripts: Vec<VrrpScript>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub sync_groups: Vec<SyncGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    /// `static_routes`: set when the daemon starts, whatever the VRRP state.
    pub static_routes: Vec<VirtualRoute>,
    /// `static_rules`: likewise.
    pub static_rules: Vec<VirtualRule>,
    /// `static_ipaddress`: added when the daemon starts, removed when it stops.
    pub static_addresses: Vec<VipAddress>,
    /// `SSL { certificate key }`: the client certificate SSL_GET presents.
    pub ssl: Option<SslClient>,
    /// `garp_group`: gratuitous ARP / NA spacing of some interfaces.
    pub garp_groups: Vec<GarpGroup>,
    /// `track_file` / `vrrp_track_file`: files whose number moves priorities.
    pub track_files: Vec<TrackFile>,
    /// `track_process` / `vrrp_track_process`: processes whose count does.
    pub track_processes: Vec<TrackProcess>,
}

/// `track_process NAME { process PATH [ARGS...]  param_match [initial|partial]
/// full_command  weight N [reverse]  quorum N  quorum_max N  delay S
/// fork_delay S  terminate_delay S }` (keepalived 2.2.7's keywords).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackProcess {
    pub name: String,
    /// Matched against the process's name (`/proc/PID/stat`), or with
    /// `full_command` against its argv\[0\].
    pub process: String,
    /// The arguments after `process PATH`: matched by `param_match`.
    pub params: Vec<String>,
    pub param_match: ParamMatch,
    pub full_command: bool,
    pub weight: i32,
    pub reverse: bool,
    /// The process counts as up while `quorum <= running <= quorum_max`.
    pub quorum: u32,
    pub quorum_max: u32,
    /// How long a gained (lost) quorum must last before it counts.
    #[serde(serialize_with = "secs")]
    pub fork_delay: Duration,
    #[serde(serialize_with = "secs")]
    pub terminate_delay: Duration,
    pub location: Location,
}

/// How a process's arguments are compared (keepalived `param_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamMatch {
    /// No arguments given, no `param_match`: any arguments.
    None,
    /// Exactly the arguments given.
    Exact,
    /// The process's arguments start with the ones given, whole words.
    Partial,
    /// Likewise, the last one given may be the start of a word.
    Initial,
}

/// `garp_group { garp_interval S  gna_interval S  interface IF | interfaces { IF ... } }`:
/// the interfaces share one spacing, as keepalived's aggregation group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GarpGroup {
    #[serde(flatten)]
    pub pacing: GarpPacing,
    pub interfaces: Vec<String>,
    pub location: Location,
}

/// The least time between two gratuitous ARPs (`garp`) or unsolicited NAs
/// (`gna`) sent on an interface; `None`: back to back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GarpPacing {
    #[serde(serialize_with = "opt_secs", rename = "garp_interval")]
    pub garp: Option<Duration>,
    #[serde(serialize_with = "opt_secs", rename = "gna_interval")]
    pub gna: Option<Duration>,
}

/// `track_file NAME { file PATH  weight N [reverse]  init_file [VALUE] [overwrite] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackFile {
    pub name: String,
    pub path: String,
    /// keepalived's default 1.
    pub weight: i32,
    pub reverse: bool,
    /// `init_file`: the value written at start when the file is missing
    /// (`overwrite`: always).
    pub init: Option<TrackFileInit>,
    pub location: Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrackFileInit {
    pub value: i32,
    pub overwrite: bool,
}

/// A `track_file { NAME [weight N [reverse|noreverse]] }` line: the file's
/// own weight and direction unless given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackFileRef {
    pub name: String,
    pub weight: Option<i32>,
    pub reverse: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalDefs {
    /// `vrrp_version`: the default for instances (keepalived's default is 2).
    pub vrrp_version: u8,
    /// `router_id` (or `lvs_id`): names the node in alert mails; unset:
    /// the host name.
    pub router_id: Option<String>,
    /// The alert mails' settings (`config::mail`).
    pub mail: super::mail::MailSettings,
    /// `notify_fifo`, `vrrp_notify_fifo`, `lvs_notify_fifo` (`config::fifo`).
    pub notify_fifos: super::fifo::NotifyFifos,
    /// `xdpvs_announce { ... }`: keep a host route per servable VIP for a
    /// routing daemon (BIRD) to announce by BGP. Absent: no routes.
    pub announce: Option<Announce>,
    /// `lvs_sync_daemon`: flow-state sync with the other nodes.
    pub sync: Option<FlowSync>,
    /// `xdpvs_sync_peers { ... }`, merged into `sync` once every
    /// global_defs block is read.
    #[serde(skip)]
    pub sync_peers: Option<(Vec<IpAddr>, Location)>,
    /// `vrrp_strict`: RFC-strict VRRP, with keepalived's refusals (see `strict`).
    #[serde(skip)]
    pub strict: Option<Location>,
    /// The data plane's table sizes (`xdpvs_max_*`).
    pub capacity: Capacity,
    /// `enable_script_security`: refuse root-run scripts others can write.
    pub enable_script_security: bool,
    /// `script_user`: who scripts run as unless they say (keepalived's
    /// default: `keepalived_script` if that user exists, else root).
    pub script_user: Option<ScriptUser>,
    /// `vrrp_mcast_group4`: the IPv4 group adverts go to (224.0.0.18).
    pub vrrp_mcast_group4: Option<std::net::Ipv4Addr>,
    /// `vrrp_mcast_group6`: the IPv6 group adverts go to (ff02::12).
    pub vrrp_mcast_group6: Option<std::net::Ipv6Addr>,
    /// `vrrp_skip_check_adv_addr`: the instances' default.
    pub vrrp_skip_check_adv_addr: bool,
    /// `disable_local_igmp`: no IGMP reports for link-local groups.
    pub disable_local_igmp: bool,
    /// `default_interface`: the interface of a `static_ipaddress` without `dev`.
    pub default_interface: Option<String>,
    /// `rs_init_notifies`: reals starting up get their `notify_up` at start.
    pub rs_init_notifies: bool,
    /// `vrrp_down_timer_adverts`: the instances' default.
    #[serde(skip)]
    pub vrrp_down_timer_adverts: u32,
    /// `vrrp_startup_delay`: VRRP starts this long after the daemon.
    #[serde(serialize_with = "opt_secs")]
    pub vrrp_startup_delay: Option<Duration>,
    /// `vrrp_delay_after_boot`: VRRP starts no sooner than this after boot.
    #[serde(serialize_with = "opt_secs")]
    pub vrrp_delay_after_boot: Option<Duration>,
    /// `startup_script`: run when the daemon starts, before it serves.
    pub startup_script: Option<HostScript>,
    /// `shutdown_script`: run when the daemon stops, after the VRRP handover.
    pub shutdown_script: Option<HostScript>,
    /// `lvs_timeouts`: the data plane's idle timeouts.
    pub lvs_timeouts: LvsTimeouts,
    /// `vrrp_garp_master_*`, `vrrp_garp_lower_prio_*`: the instances' defaults.
    pub garp: GarpSettings,
    /// `vrrp_garp_interval`, `vrrp_gna_interval`: each interface in no
    /// `garp_group` is spaced on its own.
    pub garp_pacing: GarpPacing,
    /// `vrrp_lower_prio_no_advert`: the instances' default.
    pub lower_prio_no_advert: bool,
    /// `vrrp_higher_prio_send_advert`: the instances' default.
    pub higher_prio_send_advert: bool,
    /// `net_namespace NAME`: the daemon runs in /var/run/netns/NAME.
    pub net_namespace: Option<String>,
}

/// `startup_script` / `shutdown_script SCRIPT [USER [GROUP]]` with its
/// `*_script_timeout` (keepalived's default: 10 s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostScript {
    pub command: String,
    pub user: Option<ScriptUser>,
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    pub location: Location,
}

/// Master_Down_Interval's adverts in RFC 5798 (and keepalived's default).
pub const DOWN_TIMER_ADVERTS: u32 = 3;

/// keepalived's default `startup_script_timeout` / `shutdown_script_timeout`.
pub const HOST_SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// `lvs_timeouts [tcp S] [tcpfin S] [udp S]`: what IPVS calls its
/// timeouts; `None` keeps the data plane's default (IPVS's 900/120/300 s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LvsTimeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

/// IPVS's sync daemon port and multicast group, which keepalived uses too.
pub const SYNC_PORT: u16 = 8848;
pub const SYNC_GROUP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(224, 0, 0, 81);

/// `lvs_sync_daemon INTERFACE [VRRP_INSTANCE] [id N] [port P] [group G]`,
/// with xdpvs's `xdpvs_sync_peers { ADDR ... }` for unicast peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowSync {
    pub interface: String,
    /// keepalived sends only while this instance is master; xdpvs nodes
    /// all send and all receive, which the active-active layout needs.
    pub instance: Option<String>,
    pub id: u8,
    pub port: u16,
    /// Multicast group (IPv4) used when no unicast peers are listed.
    pub group: std::net::Ipv4Addr,
    /// Unicast peers; empty: the multicast group on `interface`.
    pub peers: Vec<IpAddr>,
    pub location: Location,
}

impl FlowSync {
    /// Sync on `interface` with IPVS's defaults (id 0, its port and group).
    pub fn on(interface: &str, location: &Location) -> Self {
        FlowSync {
            interface: interface.to_string(),
            instance: None,
            id: 0,
            port: SYNC_PORT,
            group: SYNC_GROUP,
            peers: Vec::new(),
            location: location.clone(),
        }
    }
}

impl Default for GlobalDefs {
    fn default() -> Self {
        Self {
            vrrp_version: 2,
            router_id: None,
            mail: super::mail::MailSettings::default(),
            notify_fifos: super::fifo::NotifyFifos::default(),
            announce: None,
            sync: None,
            sync_peers: None,
            strict: None,
            capacity: Capacity::default(),
            enable_script_security: false,
            script_user: None,
            vrrp_mcast_group4: None,
            vrrp_mcast_group6: None,
            vrrp_skip_check_adv_addr: false,
            vrrp_down_timer_adverts: DOWN_TIMER_ADVERTS,
            rs_init_notifies: false,
            disable_local_igmp: false,
            default_interface: None,
            vrrp_startup_delay: None,
            vrrp_delay_after_boot: None,
            startup_script: None,
            shutdown_script: None,
            lvs_timeouts: LvsTimeouts::default(),
            garp: GarpSettings::default(),
            garp_pacing: GarpPacing::default(),
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            net_namespace: None,
        }
    }
}

/// How many entries the data plane's tables hold, fixed when `xdpvs run`
/// loads them: `global_defs { xdpvs_max_services N  xdpvs_max_reals N
/// xdpvs_max_flows N }`. `check` refuses a configuration that does not fit,
/// as `run` would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capacity {
    /// Virtual servers (VIP, port, protocol).
    pub services: u32,
    /// Real servers over all virtual servers, a sorry_server counting as one.
    pub reals: u32,
    /// Connections the flow table (LRU) holds.
    pub flows: u32,
}

impl Capacity {
    /// Bounds of each setting: `(keyword, min, max)`. Services are bound by
    /// the ring array (2 rings of 65,537 slots each per service, indexed by
    /// u32; 4,096 services take 2 GiB of rings), reals and flows by memory.
    pub const SERVICES: (&'static str, u32, u32) = ("xdpvs_max_services", 1, 4096);
    pub const REALS: (&'static str, u32, u32) = ("xdpvs_max_reals", 1, 1 << 20);
    pub const FLOWS: (&'static str, u32, u32) = ("xdpvs_max_flows", 1024, 1 << 26);
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            services: lb_common::MAX_SERVICES,
            reals: lb_common::MAX_REALS,
            flows: lb_common::MAX_FLOWS,
        }
    }
}

/// Default kernel routing table of the announced VIP routes.
pub const ANNOUNCE_TABLE: u32 = 200;
/// Default route protocol number of the announced VIP routes (unused by
/// iproute2's `rt_protos`; BIRD is 12, keepalived 18).
pub const ANNOUNCE_PROTOCOL: u8 = 201;

/// How VIP routes are kept (see `announce::decide`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Announce {
    pub table: u32,
    pub protocol: u8,
    /// With several virtual_servers on one VIP: announce while any of them
    /// can serve (the default) or only while all can.
    pub require: AnnounceRequire,
}

impl Default for Announce {
    fn default() -> Self {
        Self {
            table: ANNOUNCE_TABLE,
            protocol: ANNOUNCE_PROTOCOL,
            require: AnnounceRequire::Any,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnounceRequire {
    Any,
    All,
}

/// `USER [GROUP]` of `script_user` and a script's `user`; the group
/// defaults to the user's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub addr: IpAddr,
    pub port: u16,
    /// `virtual_server group NAME`: the virtual_server_group this service
    /// is one member of (each member is a service of its own).
    pub group: Option<String>,
    pub protocol: Protocol,
    #[serde(serialize_with = "secs")]
    pub delay_loop: Duration,
    /// The configured `lb_algo`; every scheduler is served by weighted Maglev.
    pub scheduler: String,
    /// Seconds; 0 = off.
    pub persistence_timeout: u32,
    pub sorry_server: Option<SocketAddr>,
    /// Reals start down until their first successful check.
    pub alpha: bool,
    /// `smtp_alert`: mail on quorum changes; `None`: the global default.
    pub smtp_alert: Option<bool>,
    /// `ha_suspend`: the checks pause while the VIP is not on this host.
    pub ha_suspend: bool,
    /// `omega`: at shutdown, `quorum_down` and each live real's
    /// `notify_down` run (keepalived).
    pub omega: bool,
    pub quorum: QuorumConfig,
    pub reals: Vec<RealServer>,
    pub location: Location,
}

/// A `notify*` or `quorum_*` script: `SCRIPT [USER [GROUP]]`, the command
/// one word or a quoted string with its arguments; run as `user` if given,
/// else as `script_user`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NotifyScript {
    pub command: String,
    pub user: Option<ScriptUser>,
}

/// The command quoted, and the user it runs as when it names one: what the
/// daemon's log says it runs.
impl fmt::Display for NotifyScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.command)?;
        match &self.user {
            Some(ScriptUser { user, group: None }) => write!(f, " as {user}"),
            Some(ScriptUser {
                user,
                group: Some(group),
            }) => write!(f, " as {user}:{group}"),
            None => Ok(()),
        }
    }
}

/// A script run as `script_user`.
impl From<&str> for NotifyScript {
    fn from(command: &str) -> Self {
        Self {
            command: command.into(),
            user: None,
        }
    }
}

/// `quorum`, `hysteresis`, `quorum_up` and `quorum_down` of a virtual server
/// (`services::quorum` says what they do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumConfig {
    /// The weight of healthy reals the service needs; keepalived's default 1.
    pub quorum: u32,
    pub hysteresis: u32,
    /// Run when the service gains its quorum.
    pub up_script: Option<NotifyScript>,
    /// Run when it loses it.
    pub down_script: Option<NotifyScript>,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        Self {
            quorum: 1,
            hysteresis: 0,
            up_script: None,
            down_script: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub inhibit_on_failure: bool,
    /// `smtp_alert`: mail when the real goes up or down; `None`: the global default.
    pub smtp_alert: Option<bool>,
    /// `delay_loop` for this real's checks; unset: the virtual server's.
    #[serde(serialize_with = "opt_secs")]
    pub delay_loop: Option<Duration>,
    /// `alpha` for this real's checks; unset: the virtual server's.
    pub alpha: Option<bool>,
    /// Run when the real goes up (all its checks pass) / down.
    pub notify_up: Option<NotifyScript>,
    pub notify_down: Option<NotifyScript>,
    pub checks: Vec<HealthCheck>,
    pub location: Location,
}

impl RealServer {
    /// keepalived's `alpha`: whether the real starts down, until its checks
    /// pass. Each checker's own setting decides for it, else the real's,
    /// else the virtual server's (`vs_alpha`); one alpha checker starts the
    /// real down, as its failed check would. A FILE_CHECK reads its state
    /// at once (keepalived clears its alpha), and a real with no checker
    /// has nothing to wait for.
    pub fn starts_down(&self, vs_alpha: bool) -> bool {
        let alpha = self.alpha.unwrap_or(vs_alpha);
        self.checks
            .iter()
            .filter_map(HealthCheck::timing)
            .any(|t| t.alpha.unwrap_or(alpha))
    }
}

/// One checker of a real server, named after its keepalived block; JSON:
/// the check's fields plus `"type": "TCP_CHECK" | "HTTP_GET" | "SSL_GET" |
/// "MISC_CHECK" | "UDP_CHECK" | "PING_CHECK" | "DNS_CHECK" | "SMTP_CHECK"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthCheck {
    TcpCheck(TcpCheck),
    HttpGet(HttpCheck),
    SslGet(SslCheck),
    MiscCheck(MiscCheck),
    UdpCheck(UdpCheck),
    PingCheck(PingCheck),
    DnsCheck(DnsCheck),
    SmtpCheck(SmtpCheck),
    FileCheck(FileCheck),
}

/// FILE_CHECK `{ track_file NAME  weight N [reverse] }`: the number in the
/// track file times the weight is added to the real's weight; weight 0:
/// the real is down while the number is not 0 (`reverse`: while it is 0).
/// Weight and direction default to the track_file's own (filled in once
/// every block is read, with the file's path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileCheck {
    pub track_file: String,
    pub path: String,
    pub weight: Option<i32>,
    pub reverse: Option<bool>,
}

impl HealthCheck {
    /// When the check runs; FILE_CHECK has no timing of its own (it is
    /// read at each round of its real's other checks, or its delay_loop).
    pub fn timing(&self) -> Option<&Timing> {
        match self {
            Self::TcpCheck(c) => Some(&c.connect.timing),
            Self::HttpGet(c) => Some(&c.connect.timing),
            Self::SslGet(c) => Some(&c.http.connect.timing),
            Self::MiscCheck(c) => Some(&c.timing),
            Self::UdpCheck(c) => Some(&c.connect.timing),
            Self::PingCheck(c) => Some(&c.connect.timing),
            Self::DnsCheck(c) => Some(&c.connect.timing),
            Self::SmtpCheck(c) => Some(&c.connect.timing),
            Self::FileCheck(_) => None,
        }
    }
}

/// UDP_CHECK: a datagram is sent; an ICMP error (port unreachable) is a
/// failure, and with `require_reply` so is silence or a reply that does
/// not match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UdpCheck {
    #[serde(flatten)]
    pub connect: Connect,
    /// `payload HEX`; `None`: a few random bytes, as keepalived sends.
    #[serde(serialize_with = "hex")]
    pub payload: Option<Vec<u8>>,
    pub require_reply: bool,
    /// `require_reply HEX`: the reply's first bytes, `x` nibbles matching anything.
    pub reply_pattern: Option<HexPattern>,
    pub min_reply_length: usize,
    pub max_reply_length: usize,
}

fn hex<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_some(&b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        None => s.serialize_none(),
    }
}

/// Bytes to match, each with the mask of the bits that must be equal
/// (`x` in keepalived's HEX_STR clears a nibble of the mask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexPattern(pub Vec<(u8, u8)>);

impl HexPattern {
    /// Whether `reply` matches over the shorter of the two (keepalived).
    pub fn matches(&self, reply: &[u8]) -> bool {
        self.0
            .iter()
            .zip(reply)
            .all(|(&(value, mask), &b)| b & mask == value & mask)
    }
}

impl fmt::Display for HexPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &(value, mask) in &self.0 {
            for shift in [4, 0] {
                if (mask >> shift) & 0xf == 0 {
                    f.write_str("x")?;
                } else {
                    write!(f, "{:x}", (value >> shift) & 0xf)?;
                }
            }
        }
        Ok(())
    }
}

impl Serialize for HexPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// PING_CHECK: an ICMP echo answered within `connect_timeout`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PingCheck {
    #[serde(flatten)]
    pub connect: Connect,
}

/// DNS_CHECK: a query over UDP answered with NOERROR for the same question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsCheck {
    #[serde(flatten)]
    pub connect: Connect,
    /// `type`: A, NS, CNAME, SOA (the default), MX, TXT or AAAA.
    #[serde(rename = "query_type")]
    pub record_type: String,
    /// `name`: the default is the root, `.`.
    pub name: String,
}

/// SMTP_CHECK: a 220 greeting, HELO answered 250, QUIT answered 221.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpCheck {
    #[serde(flatten)]
    pub connect: Connect,
    pub helo_name: String,
}

/// How TCP_CHECK and HTTP_GET connect and retry; a virtual_server or
/// real_server may set the timing for the checks beneath it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connect {
    /// Defaults to the real's address.
    pub connect_ip: Option<IpAddr>,
    /// Defaults to the real's port.
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    /// `bind_port`: the source port.
    pub bind_port: Option<u16>,
    /// `bind_if`: SO_BINDTODEVICE.
    pub bind_if: Option<String>,
    /// `fwmark`: SO_MARK on the check's packets.
    pub fwmark: Option<u32>,
    #[serde(serialize_with = "secs")]
    pub connect_timeout: Duration,
    #[serde(flatten)]
    pub timing: Timing,
}

/// When a check runs, every checker's own (MISC_CHECK's too); a virtual_server
/// or real_server sets the defaults of the checks beneath it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    pub retry: u32,
    #[serde(serialize_with = "secs")]
    pub delay_before_retry: Duration,
    /// `warmup`: the first check waits a random time up to this; unset:
    /// none (keepalived waits up to `delay_loop`).
    #[serde(serialize_with = "opt_secs")]
    pub warmup: Option<Duration>,
    /// The checker's own `delay_loop`; unset: its real's, else its virtual server's.
    #[serde(serialize_with = "opt_secs")]
    pub delay_loop: Option<Duration>,
    /// The checker's own `alpha`; unset: its real's, else its virtual server's.
    pub alpha: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpCheck {
    #[serde(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpCheck {
    pub urls: Vec<Url>,
    #[serde(flatten)]
    pub connect: Connect,
}

/// keepalived's top-level `SSL { certificate PATH  key PATH  ca PATH }`:
/// the certificate and key (PEM) every SSL_GET presents to its real. `ca` is
/// read as keepalived reads it, which verifies no server with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SslClient {
    pub certificate: String,
    pub key: String,
    pub ca: Option<String>,
    pub location: Location,
}

/// HTTP_GET's fields over TLS; the real's certificate is not verified, as
/// keepalived does not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SslCheck {
    #[serde(flatten)]
    pub http: HttpCheck,
    /// Send the url's `virtualhost` as Server Name Indication.
    pub enable_sni: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Url {
    pub path: String,
    /// Accepted status codes; empty = any 2xx.
    pub status_codes: Vec<u16>,
    /// MD5 of the body, lower-case hex (keepalived's `genhash`).
    pub digest: Option<String>,
    /// The Host header (and, for SSL_GET with `enable_sni`, the SNI name):
    /// the url's `virtualhost`, else its checker's, real's or virtual
    /// server's; none: the address the check connects to.
    pub virtualhost: Option<String>,
    /// `regex`: the body must match it (with `regex_no_match`: must not).
    pub regex: Option<BodyRegex>,
    /// Its checker's `http_protocol`.
    pub protocol: HttpProtocol,
}

/// `http_protocol`: the request's version and `Connection` header, as
/// keepalived sends them (its default: HTTP/1.0, no `Connection`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum HttpProtocol {
    #[default]
    #[serde(rename = "1.0")]
    Http10,
    /// `1.0C`: HTTP/1.0 with `Connection: close`.
    #[serde(rename = "1.0C")]
    Http10Close,
    /// `1.1`, with `Connection: close`.
    #[serde(rename = "1.1")]
    Http11,
}

/// A url's `regex`, `regex_no_match` and `regex_options`, compiled.
#[derive(Debug, Clone, Serialize)]
pub struct BodyRegex {
    pub pattern: String,
    /// keepalived's PCRE2 option names, as written.
    pub options: Vec<String>,
    pub no_match: bool,
    #[serde(skip)]
    pub compiled: regex::bytes::Regex,
}

impl PartialEq for BodyRegex {
    fn eq(&self, other: &Self) -> bool {
        (&self.pattern, &self.options, self.no_match)
            == (&other.pattern, &other.options, other.no_match)
    }
}

impl BodyRegex {
    /// Whether `body` passes: it matches, or with `no_match` it does not.
    pub fn passes(&self, body: &[u8]) -> bool {
        self.compiled.is_match(body) != self.no_match
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MiscCheck {
    pub misc_path: String,
    #[serde(serialize_with = "secs")]
    pub misc_timeout: Duration,
    pub misc_dynamic: bool,
    pub user: Option<ScriptUser>,
    /// retry 0 by default, as keepalived's MISC_CHECK.
    #[serde(flatten)]
    pub timing: Timing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InitialState {
    Master,
    Backup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "password")]
pub enum Auth {
    #[serde(rename = "PASS")]
    Pass(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipAddress {
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: Option<String>,
    pub label: Option<String>,
    #[serde(flatten)]
    pub options: VipOptions,
}

/// The `ip addr` options of a `virtual_ipaddress` line. IPv6 VIPs are always
/// added without duplicate address detection (`nodad`), as keepalived does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VipOptions {
    /// `brd`: IPv4 broadcast; unset (or `brd +`): computed from the prefix.
    pub broadcast: Option<std::net::Ipv4Addr>,
    /// `scope`: rtnetlink scope number (global 0, site 200, link 253,
    /// host 254, nowhere 255); unset: the kernel's.
    pub scope: Option<u8>,
    /// `home`: IPv6 home address (IFA_F_HOMEADDRESS).
    pub home: bool,
    /// `noprefixroute`: no prefix route for the address.
    pub noprefixroute: bool,
    /// `no_track`: a VIP on another interface does not make the instance
    /// fault when that interface goes down.
    pub no_track: bool,
    /// `preferred_lft`: seconds (0: deprecated at once); unset: forever.
    pub preferred_lft: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackScript {
    pub name: String,
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackInterface {
    pub name: String,
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Notify {
    pub master: Option<NotifyScript>,
    pub backup: Option<NotifyScript>,
    pub fault: Option<NotifyScript>,
    pub stop: Option<NotifyScript>,
    /// `notify`: called with `INSTANCE name state priority`.
    pub any: Option<NotifyScript>,
}

impl Notify {
    /// Every configured script.
    pub fn scripts(&self) -> impl Iterator<Item = &NotifyScript> {
        [
            &self.master,
            &self.backup,
            &self.fault,
            &self.stop,
            &self.any,
        ]
        .into_iter()
        .flatten()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GarpSettings {
    #[serde(serialize_with = "secs")]
    pub master_delay: Duration,
    pub master_repeat: u32,
    #[serde(serialize_with = "opt_secs")]
    pub master_refresh: Option<Duration>,
    pub master_refresh_repeat: u32,
    /// `garp_lower_prio_delay`; unset in an instance: global_defs'
    /// `vrrp_garp_lower_prio_delay`, else its `vrrp_garp_master_delay` (keepalived).
    #[serde(serialize_with = "opt_secs")]
    pub lower_prio_delay: Option<Duration>,
    /// `garp_lower_prio_repeat`; unset: likewise from the `repeat`s.
    pub lower_prio_repeat: Option<u32>,
}

impl Default for GarpSettings {
    /// keepalived.conf(5): `garp_master_delay` 5 s, `garp_master_repeat` 5,
    /// `garp_master_refresh` 0 (no refreshing), `garp_master_refresh_repeat` 1.
    fn default() -> Self {
        Self {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            lower_prio_delay: None,
            lower_prio_repeat: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    pub name: String,
    pub initial_state: InitialState,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    #[serde(serialize_with = "secs")]
    pub advert_int: Duration,
    pub version: u8,
    pub preempt: bool,
    #[serde(serialize_with = "secs")]
    pub preempt_delay: Duration,
    pub mcast_src_ip: Option<IpAddr>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub auth: Option<Auth>,
    pub vips: Vec<VipAddress>,
    pub excluded_vips: Vec<VipAddress>,
    pub track_scripts: Vec<TrackScript>,
    pub track_interfaces: Vec<TrackInterface>,
    pub notify: Notify,
    pub garp: GarpSettings,
    /// `lower_prio_no_advert`: as master, answer lower priorities with
    /// gratuitous ARPs only (RFC-strict silence on VRRP).
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`: as master, answer a higher priority with
    /// one advert before becoming backup.
    pub higher_prio_send_advert: bool,
    /// `dont_track_primary`: the instance's interface (and VIPs on it)
    /// going down does not make it fault.
    pub dont_track_primary: bool,
    /// `notify_master_rx_lower_pri`: run when, as master, a lower priority
    /// advert is received.
    pub notify_master_rx_lower_pri: Option<NotifyScript>,
    /// `track_file { NAME ... }`, with the sync group's added.
    pub track_files: Vec<TrackFileRef>,
    /// `track_process { NAME [weight N [reverse]] }`, with the sync group's
    /// added (the same line shape as track_file's).
    pub track_processes: Vec<TrackFileRef>,
    /// `skip_check_adv_addr`: adverts from the current master are not
    /// checked against our VIP list (keepalived).
    pub skip_check_adv_addr: bool,
    /// `down_timer_adverts` (`vrrp_down_timer_adverts`): adverts a backup
    /// misses before it takes over (RFC: 3).
    pub down_timer_adverts: u32,
    /// `mcast_dst_ip`: this instance's multicast group, over
    /// `vrrp_mcast_group4/6`.
    pub mcast_dst_ip: Option<IpAddr>,
    /// `promote_secondaries`: set the interface's promote_secondaries, so
    /// removing its primary address does not remove the VIPs in its subnet.
    pub promote_secondaries: bool,
    /// `virtual_routes`: present while this instance is master.
    pub virtual_routes: Vec<VirtualRoute>,
    /// `virtual_rules`: likewise.
    pub virtual_rules: Vec<VirtualRule>,
    /// `smtp_alert`: mail on state changes; `None`: the global default.
    pub smtp_alert: Option<bool>,
    pub location: Location,
}

/// keepalived's route protocol number (`proto keepalived`), the default.
pub const KEEPALIVED_PROTOCOL: u8 = 18;

/// One policy-routing rule of `virtual_rules`/`static_rules` (`ip rule` words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualRule {
    /// `inet6`, or the family of `from`/`to`.
    pub v6: bool,
    /// `from ADDR[/LEN]`.
    pub from: Option<(IpAddr, u8)>,
    /// `to ADDR[/LEN]`.
    pub to: Option<(IpAddr, u8)>,
    pub table: u32,
    /// `priority`, `preference` or `pref`.
    pub priority: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// `fwmark MARK[/MASK]`.
    pub fwmark: Option<(u32, Option<u32>)>,
    pub location: Location,
}

/// What a `virtual_routes` line makes: `ip route` words keepalived takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// One route of `virtual_routes`, with keepalived's (and `ip route`'s) words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualRoute {
    pub kind: RouteKind,
    pub dst: IpAddr,
    pub prefix: u8,
    /// `src`: the preferred source address.
    pub src: Option<IpAddr>,
    /// `via` or `gw`.
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// Absent: the main table (254).
    pub table: Option<u32>,
    /// `metric`, `priority` or `preference`.
    pub metric: Option<u32>,
    /// `scope`: host (254), link (253), global/universe (0) or a number.
    pub scope: Option<u8>,
    /// `protocol`/`proto`: absent means keepalived's own number, 18.
    pub protocol: Option<u8>,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    pub name: String,
    pub script: String,
    #[serde(serialize_with = "secs")]
    pub interval: Duration,
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    pub weight: i32,
    pub rise: u32,
    pub fall: u32,
    /// `init_fail`: the script starts as failing (it needs `rise` successes).
    pub init_fail: bool,
    pub user: Option<ScriptUser>,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroup {
    pub name: String,
    pub members: Vec<String>,
    /// `track_script`, `track_interface`, `track_file`: tracked by every
    /// member (merged into the members' own lists once read).
    pub track_scripts: Vec<TrackScript>,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_files: Vec<TrackFileRef>,
    pub track_processes: Vec<TrackFileRef>,
    /// `sync_group_tracking_weight` (or the older `global_tracking`): the
    /// members' own tracking weights count; without it keepalived (and
    /// xdpvs) reads them as weight 0 (interfaces, files) or drops them (scripts).
    pub tracking_weight: bool,
    pub notify: Notify,
    /// `smtp_alert`: mail on the group's state changes; `None`: the global default.
    pub smtp_alert: Option<bool>,
    pub location: Location,
}
