//! Flow-state sync between active-active nodes (keepalived's
//! `lvs_sync_daemon`, in the spirit of IPVS's sync daemon): each node sends
//! the flows and persistence bindings its data plane decided to its peers,
//! and inserts those it hears about and does not know into its own tables.
//!
//! Identical Maglev tables already send a flow that ECMP moves to another
//! node to the same real, as long as the tables have not changed since the
//! flow started; sync covers the rest (a real added, removed or drained,
//! weights, persistence). Entries travel by address, and a received entry
//! is only inserted for a service and real this node has; the data plane's
//! rules still apply to it (a real that is down or no longer the service's
//! is never followed).
//!
//! Two threads beside the control loop: the sender scans the tables every
//! `SEND_EVERY` and sends what is new or changed (and everything, now and
//! then, and on a peer's `Hello`), bounded by `MAX_RATE`; the receiver
//! takes datagrams from the configured peers only.

mod index;
pub mod wire;

use std::{
    collections::{HashMap, HashSet},
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    os::fd::OwnedFd,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use aya::maps::{Array, HashMap as BpfHashMap, Map, MapData};
use lb_common::{Binding, DataplaneConfig, FLOW_CLOSING, FlowKey, PersistKey};
use log::{debug, info, warn};
use serde::{Deserialize, Serialize};

pub use self::index::Index;
use self::wire::{Entry, Message, What};
use crate::{
    config::FlowSync as SyncConfig,
    dataplane::{flow_scan::coarse_now_ns, flow_table::FlowTable},
};

/// How often the sender looks for new flows.
const SEND_EVERY: Duration = Duration::from_millis(250);
/// Every live entry is sent again this often, so a peer that missed a
/// datagram or restarted catches up.
const RESEND_EVERY: Duration = Duration::from_secs(30);
/// Entries older than this (no packet) are not sent.
const LIVE_WITHIN: Duration = Duration::from_secs(120);
/// At most this many entries per second to each peer (about 3 MB/s).
const MAX_RATE: usize = 50_000;
/// A joining node waits this long at most for its peers' dumps.
const JOIN_WAIT: Duration = Duration::from_secs(3);

/// What `ctl status` shows of the sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    pub peers: Vec<IpAddr>,
    pub ready: bool,
    pub entries_sent: u64,
    pub entries_received: u64,
    pub entries_inserted: u64,
    pub datagrams_refused: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    inserted: AtomicU64,
    refused: AtomicU64,
}

/// Who this node syncs with.
#[derive(Debug, Clone)]
enum Peers {
    Unicast(Vec<IpAddr>),
    /// keepalived's and IPVS's way: a multicast group on one interface,
    /// datagrams accepted from that interface's subnets only.
    Multicast {
        group: Ipv4Addr,
        subnets: Vec<(Ipv4Addr, Ipv4Addr)>,
    },
}

impl Peers {
    fn targets(&self) -> Vec<IpAddr> {
        match self {
            Peers::Unicast(p) => p.clone(),
            Peers::Multicast { group, .. } => vec![IpAddr::V4(*group)],
        }
    }

    fn accepts(&self, from: IpAddr) -> bool {
        match self {
            Peers::Unicast(p) => p.contains(&from),
            Peers::Multicast { subnets, .. } => match from {
                // Our own datagrams do not come back (IP_MULTICAST_LOOP off).
                IpAddr::V4(a) => subnets.iter().any(|(net, mask)| {
                    u32::from(a) & u32::from(*mask) == u32::from(*net) & u32::from(*mask)
                }),
                IpAddr::V6(_) => false,
            },
        }
    }

    /// Whether every peer has sent its dump (multicast: any one has).
    fn all_answered(&self, answered: &HashSet<IpAddr>) -> bool {
        match self {
            Peers::Unicast(p) => p.iter().all(|a| answered.contains(a)),
            Peers::Multicast { .. } => !answered.is_empty(),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Peers::Unicast(p) if p.is_empty())
    }
}

/// The interface's IPv4 addresses and netmasks.
fn ipv4_subnets(interface: &str) -> io::Result<Vec<(Ipv4Addr, Ipv4Addr)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut at = head;
    while !at.is_null() {
        // SAFETY: a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*at };
        at = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string of the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        // SAFETY: ifa_addr is non-null; sa_family says how to read it.
        if name.to_bytes() != interface.as_bytes()
            || i32::from(unsafe { (*ifa.ifa_addr).sa_family }) != libc::AF_INET
        {
            continue;
        }
        let v4 = |sa: *const libc::sockaddr| {
            // SAFETY: an AF_INET address, so a sockaddr_in.
            let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
            Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))
        };
        out.push((v4(ifa.ifa_addr), v4(ifa.ifa_netmask)));
    }
    // SAFETY: the list getifaddrs allocated.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

impl Shared {
    /// The numbering as the control loop last published it.
    fn index(&self) -> Index {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Shared {
    index: RwLock<Index>,
    /// Peers that asked for everything (`Hello`).
    dumps: Mutex<Vec<IpAddr>>,
    /// Peers whose dump has arrived (`Done`).
    answered: Mutex<HashSet<IpAddr>>,
    ready: AtomicBool,
    counters: Counters,
}

pub struct FlowSync {
    shared: Arc<Shared>,
    peers: Peers,
}

fn lru_persist(fd: OwnedFd) -> Result<BpfHashMap<MapData, PersistKey, Binding>> {
    Ok(BpfHashMap::try_from(Map::LruHashMap(MapData::from_fd(
        fd,
    )?))?)
}

/// A peer address that is one of ours (the same file on every node).
fn is_local(addr: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(addr, 0)).is_ok()
}

impl FlowSync {
    /// Binds the sync port and starts both threads on the data plane's flow
    /// table, its `PERSIST` map (a descriptor) and its `CONFIG`.
    pub fn start(
        config: &SyncConfig,
        flows: Arc<FlowTable>,
        persist: &OwnedFd,
        dataplane: Array<MapData, DataplaneConfig>,
    ) -> Result<Self> {
        let (peers, socket) = if config.peers.is_empty() {
            let subnets = ipv4_subnets(&config.interface)
                .with_context(|| format!("reading the addresses of {}", config.interface))?;
            let Some((own, _)) = subnets.first().copied() else {
                anyhow::bail!(
                    "lvs_sync_daemon {}: the interface has no IPv4 address for multicast sync",
                    config.interface
                );
            };
            let socket = bind_sync(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), config.port))
                .with_context(|| format!("binding the flow-sync port {}", config.port))?;
            socket
                .join_multicast_v4(&config.group, &own)
                .with_context(|| format!("joining {} on {}", config.group, config.interface))?;
            socket.set_multicast_loop_v4(false)?;
            socket.set_multicast_ttl_v4(1)?;
            socket2::SockRef::from(&socket).set_multicast_if_v4(&own)?;
            let peers = Peers::Multicast {
                group: config.group,
                subnets,
            };
            (peers, socket)
        } else {
            let peers: Vec<IpAddr> = config
                .peers
                .iter()
                .copied()
                .filter(|p| !is_local(*p))
                .collect();
            let any: IpAddr = if peers.iter().all(IpAddr::is_ipv4) {
                Ipv4Addr::UNSPECIFIED.into()
            } else {
                Ipv6Addr::UNSPECIFIED.into()
            };
            let socket = bind_sync(SocketAddr::new(any, config.port))
                .with_context(|| format!("binding the flow-sync port {}", config.port))?;
            (Peers::Unicast(peers), socket)
        };
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let shared = Arc::new(Shared {
            index: RwLock::new(Index::default()),
            dumps: Mutex::new(Vec::new()),
            answered: Mutex::new(HashSet::new()),
            ready: AtomicBool::new(peers.is_empty()),
            counters: Counters::default(),
        });
        let receiver = Receiver {
            socket: socket.try_clone()?,
            shared: shared.clone(),
            peers: peers.clone(),
            id: config.id,
            flows: flows.clone(),
            persist: lru_persist(persist.try_clone()?)?,
            config: dataplane,
        };
        let sender = Sender {
            socket,
            shared: shared.clone(),
            peers: peers.clone(),
            port: config.port,
            id: config.id,
            flows,
            persist: lru_persist(persist.try_clone()?)?,
            sent: HashMap::new(),
        };
        thread::Builder::new()
            .name("flowsync-rx".into())
            .spawn(move || receiver.run())?;
        thread::Builder::new()
            .name("flowsync-tx".into())
            .spawn(move || sender.run())?;
        info!(
            "flow sync on port {} with {:?} (sync id {})",
            config.port, peers, config.id
        );
        Ok(Self { shared, peers })
    }

    /// The numbering the control loop has now.
    pub fn set_index(&self, index: Index) {
        let mut current = self
            .shared
            .index
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if *current != index {
            *current = index;
        }
    }

    /// Whether the peers' live flows have been learnt (a joining node
    /// announces only then).
    pub fn ready(&self) -> bool {
        self.shared.ready.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> SyncStatus {
        let c = &self.shared.counters;
        SyncStatus {
            peers: self.peers.targets(),
            ready: self.ready(),
            entries_sent: c.sent.load(Ordering::Relaxed),
            entries_received: c.received.load(Ordering::Relaxed),
            entries_inserted: c.inserted.load(Ordering::Relaxed),
            datagrams_refused: c.refused.load(Ordering::Relaxed),
        }
    }
}

struct Receiver {
    socket: UdpSocket,
    shared: Arc<Shared>,
    peers: Peers,
    id: u8,
    flows: Arc<FlowTable>,
    persist: BpfHashMap<MapData, PersistKey, Binding>,
    /// `CONFIG`, whose timeouts say which flows the data plane still follows.
    config: Array<MapData, DataplaneConfig>,
}

/// `BPF_NOEXIST`: a node's own binding is never overwritten.
const BPF_NOEXIST: u64 = 1;

impl Receiver {
    fn run(mut self) {
        let mut buf = [0u8; 2048];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    warn!("flow sync: receiving: {e}");
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let peer = from.ip().to_canonical();
            if !self.peers.accepts(peer) {
                self.shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                debug!("flow sync: datagram from {from}, not a configured peer: dropped");
                continue;
            }
            match wire::decode(&buf[..n], self.id) {
                Ok(Message::Hello) => {
                    info!("flow sync: {peer} (re)joined, sending it every live flow");
                    self.shared
                        .dumps
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(peer);
                }
                Ok(Message::Done) => {
                    let mut answered = self
                        .shared
                        .answered
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    answered.insert(peer);
                    if self.peers.all_answered(&answered)
                        && !self.shared.ready.swap(true, Ordering::Relaxed)
                    {
                        info!("flow sync: learnt the live flows of every peer");
                    }
                }
                Ok(Message::State(entries)) => self.insert(&entries),
                Err(e) => {
                    self.shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                    debug!("flow sync: datagram from {from} refused: {e}");
                }
            }
        }
    }

    fn insert(&mut self, entries: &[Entry]) {
        let c = &self.shared.counters;
        c.received
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        let index = self.shared.index();
        let now = coarse_now_ns();
        let config = self.config.get(&0, 0).unwrap_or_default();
        for e in entries {
            let Some(local) = index.local(e) else {
                continue;
            };
            let binding = Binding {
                real: local.real,
                flags: 0,
                last_seen_ns: now,
            };
            let inserted = match e.what {
                What::Flow => self
                    .flows
                    .insert_absent(&local.flow_key(e), &binding, &config, now),
                What::Persistence => self
                    .persist
                    .insert(local.persist_key(e), binding, BPF_NOEXIST)
                    .is_ok(),
            };
            if inserted {
                c.inserted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct Sender {
    socket: UdpSocket,
    shared: Arc<Shared>,
    peers: Peers,
    port: u16,
    id: u8,
    /// `FLOWS`, read in place.
    flows: Arc<FlowTable>,
    persist: BpfHashMap<MapData, PersistKey, Binding>,
    /// What each live entry was last sent as, and when.
    sent: HashMap<(What, FlowKey), (u32, Instant)>,
}

impl Sender {
    fn run(mut self) {
        let started = Instant::now();
        for peer in self.peers.targets() {
            self.send(peer, &Message::Hello);
        }
        loop {
            thread::sleep(SEND_EVERY);
            if !self.shared.ready.load(Ordering::Relaxed) && started.elapsed() >= JOIN_WAIT {
                self.shared.ready.store(true, Ordering::Relaxed);
                warn!("flow sync: not every peer answered within {JOIN_WAIT:?}; going on");
            }
            let live = self.live();
            let dumps: Vec<IpAddr> = std::mem::take(
                &mut *self
                    .shared
                    .dumps
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            for peer in dumps {
                let all: Vec<Entry> = live.iter().map(|(_, _, e)| *e).collect();
                self.send(peer, &Message::State(all));
                self.send(peer, &Message::Done);
            }
            let budget = MAX_RATE * SEND_EVERY.as_millis() as usize / 1000;
            let now = Instant::now();
            let mut fresh = Vec::new();
            for (key, real, entry) in &live {
                if fresh.len() >= budget {
                    break; // the rest next time
                }
                let due = self
                    .sent
                    .get(key)
                    .is_none_or(|(r, at)| r != real || now.duration_since(*at) >= RESEND_EVERY);
                if due {
                    self.sent.insert(*key, (*real, now));
                    fresh.push(*entry);
                }
            }
            let keep: HashSet<(What, FlowKey)> = live.iter().map(|(k, _, _)| *k).collect();
            self.sent.retain(|k, _| keep.contains(k));
            if !fresh.is_empty() {
                for peer in self.peers.targets() {
                    self.send(peer, &Message::State(fresh.clone()));
                }
            }
        }
    }

    /// Every live flow and binding, by address.
    fn live(&self) -> Vec<((What, FlowKey), u32, Entry)> {
        let index = self.shared.index();
        let now = coarse_now_ns();
        let recent = |b: &Binding| now.wrapping_sub(b.last_seen_ns) < LIVE_WITHIN.as_nanos() as u64;
        let mut out = Vec::new();
        for w in self.flows.ways() {
            let b = &w.binding;
            if b.flags & FLOW_CLOSING == 0
                && recent(b)
                && let Some(entry) = index.flow_entry(&w.key, b.real)
            {
                out.push(((What::Flow, w.key), b.real, entry));
            }
        }
        for (key, b) in self.persist.iter().flatten() {
            if recent(&b)
                && let Some(entry) = index.persist_entry(&key, b.real)
            {
                // Keyed like a flow so that one map tracks both.
                let as_flow = FlowKey {
                    src: key.client,
                    dst: [key.service, 0, 0, 0],
                    family: key.family,
                    ..FlowKey::default()
                };
                out.push(((What::Persistence, as_flow), b.real, entry));
            }
        }
        out
    }

    fn send(&self, peer: IpAddr, message: &Message) {
        let to = SocketAddr::new(peer, self.port);
        let mut count = 0u64;
        for d in wire::encode(message, self.id) {
            if let Err(e) = self.socket.send_to(&d, to) {
                debug!("flow sync: sending to {to}: {e}");
                return;
            }
            count += ((d.len() - 12) / wire::ENTRY) as u64;
        }
        self.shared
            .counters
            .sent
            .fetch_add(count, Ordering::Relaxed);
    }
}

/// The sync port, shared with another process's: an upgrade's new daemon
/// binds it while the old one still holds it, and both apply what they read
/// to the same pinned maps (a datagram read by either is applied once; a
/// multicast one by both, which is idempotent). Only a process of the same
/// user may join a port bound so (the kernel's rule for `SO_REUSEPORT`).
fn bind_sync(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrades_new_daemon_binds_the_sync_port_beside_the_old_one() {
        for any in [
            IpAddr::from(Ipv4Addr::UNSPECIFIED),
            Ipv6Addr::UNSPECIFIED.into(),
        ] {
            let old = bind_sync(SocketAddr::new(any, 0)).expect("the old daemon's");
            let port = old.local_addr().unwrap().port();
            let new = bind_sync(SocketAddr::new(any, port)).expect("the new daemon's");
            assert_eq!(new.local_addr().unwrap().port(), port);
        }
    }
}
