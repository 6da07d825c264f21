//! Keys, values and constants shared by the XDP program (`lb-ebpf`) and the
//! daemon (`lb-userspace`).
//!
//! Every type is `#[repr(C)]` and derives `bytemuck::Pod`, which refuses hidden
//! padding: padding is an explicit `_pad` field, and each layout is pinned by a
//! size assertion so the kernel and userspace can never disagree silently.
//!
//! Addresses: an IPv4 address occupies `addr[0]` with `addr[1..4]` zero, an IPv6
//! address all four words; both in network byte order, exactly as the bytes
//! stand in the packet. `family` tells the two apart (`FAMILY_V4`/`FAMILY_V6`).
//! Ports are network byte order too.
#![no_std]

use core::mem::size_of;

use bytemuck::{Pod, Zeroable};

pub mod flow_table;
pub mod service_table;
pub use flow_table::{FLOW_WAYS, FlowBucket, FlowLine, FlowSlot, flow_buckets, flows_of_buckets};
pub use service_table::{ServiceSlot, service_slots, services_of_slots};

/// Slots in one Maglev lookup table. Prime, as Maglev requires; 65537 keeps the
/// imbalance between reals well under 1% for up to a few hundred reals.
pub const RING_SIZE: u32 = 65537;
/// Default number of services (VIP, port, protocol); raised at load time.
pub const MAX_SERVICES: u32 = 64;
/// Default number of real servers over all services; raised at load time.
pub const MAX_REALS: u32 = 4096;
/// Default number of flows the flow table is sized for (see `flow_table`:
/// it has twice as many slots).
pub const MAX_FLOWS: u32 = 1 << 20;
/// Default size of the source-IP persistence table (LRU).
pub const MAX_PERSIST: u32 = 1 << 18;
/// Default number of IP datagrams whose later fragments can be followed (LRU).
pub const MAX_FRAGMENTS: u32 = 1 << 14;

/// Slots per CPU of `FLOW_CACHE`. A power of two: the slot is
/// [`flow_cache_slot`]. Fixed at build time (the XDP program indexes by it,
/// see [`flow_cache_index`]), unlike the other sizes; the map has this many
/// entries per possible CPU.
pub const FLOW_CACHE_SIZE: u32 = 1 << 14;
const _: () = assert!(FLOW_CACHE_SIZE.is_power_of_two());

/// The slot in each CPU's part of `FLOW_CACHE` of the flow of key words `w`
/// (`FlowKey::words`): a multiplicative hash of the five words folded into
/// one, not `FlowKey::hash`, whose ten rounds the ring needs only for new
/// flows and which cost more than the rest of the fast path's arithmetic.
/// Colliding flows only cost each other trips through the slow path. The
/// ports word is folded in as it is: the multiply carries every bit
/// into the top ones the slot takes (rotating it as well cost an
/// established flow about 1 ns, measured).
#[inline(always)]
pub const fn flow_cache_slot(w: &[u64; 5]) -> u32 {
    let folded = w[0] ^ w[1].rotate_left(17) ^ w[2] ^ w[3].rotate_left(17) ^ w[4];
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - FLOW_CACHE_SIZE.trailing_zeros())) as u32
}

/// The entry of `FLOW_CACHE` CPU `cpu` holds the flow of key words `w` in:
/// its [`flow_cache_slot`] in that CPU's part (see [`flow_cache_entries`]).
#[inline(always)]
pub const fn flow_cache_index(cpu: u32, w: &[u64; 5]) -> u32 {
    cpu.wrapping_mul(FLOW_CACHE_SIZE) | flow_cache_slot(w)
}

/// Entries of `FLOW_CACHE` for `cpus` possible CPUs: one plain array with
/// [`FLOW_CACHE_SIZE`] slots for each CPU, CPU `c`'s from `c *
/// FLOW_CACHE_SIZE` ([`flow_cache_index`]), the program's CPU read with
/// `bpf_get_smp_processor_id`.
/// Not a per-CPU array, whose lookup first reads the value's address from
/// an array of pointers as long as the slots: a flow whose lines are cold
/// waited on two misses, one after the other (measured: a cached flow's
/// packet among 8,192 in turn, +35 ns over MAC-swap, +25 this way). A CPU
/// beyond the map's parts finds no slot and takes the slow path.
pub const fn flow_cache_entries(cpus: u32) -> u32 {
    FLOW_CACHE_SIZE.saturating_mul(cpus)
}

/// A ring slot holding no real: the service has no real that takes new flows.
pub const NO_REAL: u32 = u32::MAX;

pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// Version of everything the XDP program and the daemon share through pinned
/// maps: the types below, the maps' names, kinds and sizes, and `RealIdent`.
/// A daemon adopts a pinned data plane only when its version is this one.
/// Bump it whenever a shared type or map changes, or what a map holds
/// (8: `FLOW_CACHE` a plain array with a part per CPU, not a per-CPU array).
pub const LAYOUT_VERSION: u32 = 8;

/// Program names, as the XDP object declares them (each is its function's
/// name in `lb-ebpf`).
pub mod programs {
    /// The XDP program.
    pub const XDP: &str = "xdpvs";
    /// The tc (tcx ingress) program.
    pub const TC: &str = "xdpvs_tc";
    /// The object's global telling the tc program how it sends a frame out
    /// (set at load time, read only): 0 `bpf_redirect` to its interface's
    /// egress, 1 `bpf_redirect_peer` into the ingress of its veth peer (see
    /// the daemon's `device::redirects_to_peer` for when).
    pub const TC_REDIRECT_PEER: &str = "TC_REDIRECT_PEER";
}

/// Map names, as the XDP object declares them.
pub mod maps {
    pub const SERVICES: &str = "SERVICES";
    pub const RINGS: &str = "RINGS";
    pub const REALS: &str = "REALS";
    pub const FLOWS: &str = "FLOWS";
    pub const PERSIST: &str = "PERSIST";
    pub const FRAGMENTS: &str = "FRAGMENTS";
    /// Per-service counters of the reals each service has lost (folded in
    /// by the daemon as it frees a real's number); a service's counters are
    /// these plus its current reals' `REAL_STATS`, in which the program
    /// counts every packet it forwards.
    pub const SERVICE_STATS: &str = "SERVICE_STATS";
    pub const REAL_STATS: &str = "REAL_STATS";
    pub const REASON_STATS: &str = "REASON_STATS";
    pub const FLOW_CACHE: &str = "FLOW_CACHE";
    pub const CONFIG: &str = "CONFIG";
    pub const FLOOD_GUARD: &str = "FLOOD_GUARD";
    pub const VIP_FILTER: &str = "VIP_FILTER";
    pub const CACHE_EPOCH: &str = "CACHE_EPOCH";
    /// Created by the daemon, not the XDP object: who each `REALS` index is.
    pub const IDENTS: &str = "IDENTS";

    /// Every map the XDP object declares; the daemon pins them all.
    pub const OBJECT: [&str; 14] = [
        SERVICES,
        RINGS,
        REALS,
        FLOWS,
        PERSIST,
        FRAGMENTS,
        SERVICE_STATS,
        REAL_STATS,
        REASON_STATS,
        FLOW_CACHE,
        CONFIG,
        FLOOD_GUARD,
        VIP_FILTER,
        CACHE_EPOCH,
    ];
}

/// Words of `VIP_FILTER`, a bitmap of 65536 bits indexed by [`vip_filter_bit`]:
/// a packet whose destination's bit is clear is for no service, which costs
/// one array read (after the per-CPU cache's probe) instead of two service
/// lookups.
pub const VIP_FILTER_WORDS: u32 = 1024;

/// The `VIP_FILTER` word and bit of address `addr` (as keys hold it). The
/// daemon sets the bit of every VIP; a collision only sends a packet on to
/// the service lookup.
#[inline(always)]
pub const fn vip_filter_bit(addr: &[u32; 4]) -> (u32, u64) {
    let folded =
        addr[0] ^ addr[1].rotate_left(8) ^ addr[2].rotate_left(16) ^ addr[3].rotate_left(24);
    let h = folded.wrapping_mul(0x9e37_79b1) >> 16;
    (h >> 6, 1 << (h & 63))
}
const _: () = assert!(VIP_FILTER_WORDS == 1 << (16 - 6));

/// A service's key in `SERVICES` (see `service_table`). `port` 0 means every
/// port of the VIP.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct ServiceKey {
    /// VIP, network byte order (see the crate docs for IPv4).
    pub addr: [u32; 4],
    /// Network byte order; 0 = all ports.
    pub port: u16,
    pub proto: u8,
    pub family: u8,
}
const _: () = assert!(size_of::<ServiceKey>() == 20);

/// A service as `SERVICES` holds it.
///
/// The daemon publishes a new Maglev table by writing it into the ring that is
/// not in use and then pointing `ring` at it, one aligned word whose two values
/// differ in one bit, so the XDP program reads either the old table or the
/// new one, never a mix.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Service {
    /// Index into `SERVICE_STATS`, unique per service.
    pub id: u32,
    /// The ring in use: `RINGS[ring * RING_SIZE .. (ring + 1) * RING_SIZE]`.
    pub ring: u32,
    /// Source-IP persistence in seconds (LVS `persistence_timeout`); 0 = off.
    pub persist_timeout_s: u32,
}
const _: () = assert!(size_of::<Service>() == 12);

/// The two rings of service `id`: it alternates between them.
pub const fn rings_of(id: u32) -> [u32; 2] {
    [id * 2, id * 2 + 1]
}

/// Value of `REALS`, indexed by the real's number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Real {
    pub mac: [u8; 6],
    /// `REAL_UP` when the real may receive packets (healthy and MAC known).
    pub flags: u16,
    /// The `Service::id` this real belongs to. State that names a real by
    /// number (flows, persistence, caches) is only followed when the service
    /// matches, so a number reused by another service is never followed.
    pub service: u32,
}
const _: () = assert!(size_of::<Real>() == 12);

pub const REAL_UP: u16 = 1;
/// With `REAL_UP`: the real keeps its flows but takes no new flow and no new
/// persistence binding (weight 0: drained, or down with `inhibit_on_failure`).
pub const REAL_NO_NEW: u16 = 2;

/// Value of `IDENTS`, indexed like `REALS`: which real of which service holds
/// that number, and its health as the daemon last knew it. Only the daemon
/// reads it, to take over a running data plane without renumbering the reals
/// its flows name. A zeroed entry (`family` 0) is a free number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RealIdent {
    /// Network byte order (see the crate docs for IPv4).
    pub addr: [u32; 4],
    /// Network byte order.
    pub port: u16,
    pub family: u8,
    /// `IDENT_HEALTHY` when the data plane sends it packets, and
    /// `IDENT_INHIBITED` too when that is only `inhibit_on_failure`.
    pub flags: u8,
    /// The `Service::id` the real belongs to.
    pub service: u32,
}
const _: () = assert!(size_of::<RealIdent>() == 24);

pub const IDENT_HEALTHY: u8 = 1;
/// With `IDENT_HEALTHY`: its checks said down, and `inhibit_on_failure` keeps
/// it at weight 0 with its flows. Added within layout 5: a daemon before it
/// ignores the bit and adopts such a real as up, as it did.
pub const IDENT_INHIBITED: u8 = 2;

/// A flow: the packet's 5-tuple as it arrives from the client (the key of
/// `FLOWS` slots and of `FLOW_CACHE`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct FlowKey {
    /// Network byte order.
    pub src: [u32; 4],
    /// Network byte order.
    pub dst: [u32; 4],
    /// Network byte order.
    pub sport: u16,
    /// Network byte order.
    pub dport: u16,
    pub proto: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<FlowKey>() == 40);

impl FlowKey {
    /// The key as five 64-bit words, in memory order: what the flow cache
    /// and the flow table compare, and what [`FlowKey::hash`] mixes.
    #[inline(always)]
    pub fn words(&self) -> [u64; 5] {
        let pair = |lo: u32, hi: u32| lo as u64 | (hi as u64) << 32;
        [
            pair(self.src[0], self.src[1]),
            pair(self.src[2], self.src[3]),
            pair(self.dst[0], self.dst[1]),
            pair(self.dst[2], self.dst[3]),
            pair(
                self.sport as u32 | (self.dport as u32) << 16,
                self.proto as u32
                    | (self.family as u32) << 8
                    | (self._pad[0] as u32) << 16
                    | (self._pad[1] as u32) << 24,
            ),
        ]
    }

    /// The hash that indexes a service's Maglev ring and picks the flow's
    /// `FLOWS` bucket. Userspace computes the same one to explain where a
    /// flow goes. The key as five 64-bit words, each folded in by a multiply
    /// and a shift (as in MurmurHash's 64-bit mixing), then a last mix so the
    /// low bits (the bucket) depend on every input bit: half the cost of the
    /// ten 32-bit rounds it replaced, which a new flow paid on the data path.
    #[inline(always)]
    pub fn hash(&self) -> u32 {
        let w = self.words();
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut i = 0;
        while i < w.len() {
            h = (h ^ w[i]).wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 32;
            i += 1;
        }
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        (h ^ (h >> 32)) as u32
    }
}

/// Which real a flow (a `FLOWS` slot) or a client (`PERSIST`) is bound to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Binding {
    pub real: u32,
    /// `FLOW_CLOSING` once a TCP FIN or RST has been seen (flows only).
    pub flags: u32,
    /// `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC_COARSE) of the last packet,
    /// refreshed at most once per `TOUCH_INTERVAL_NS` to spare cache lines.
    pub last_seen_ns: u64,
}
const _: () = assert!(size_of::<Binding>() == 16);

pub const FLOW_CLOSING: u32 = 1;
pub const TOUCH_INTERVAL_NS: u64 = 1_000_000_000;

/// Value of `CONFIG`, an array of one entry the daemon writes at start (and
/// `adm --set` later). All zero (as the kernel creates it) means: no flood
/// guard, IPVS's timeouts, no pass-through.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DataplaneConfig {
    /// Flood guard: the credit one new flow costs, `1e9 / rate` for a rate in
    /// new flows per second per CPU; 0 = no guard.
    pub new_flow_cost_ns: u64,
    /// The most credit a CPU saves up: `burst` new flows times their cost.
    pub new_flow_burst_ns: u64,
    /// Idle timeout of a TCP flow (IPVS `tcp`); 0 = `DEFAULT_TCP_TIMEOUT_S`.
    pub tcp_timeout_s: u32,
    /// Idle timeout of a TCP flow once FIN or RST was seen (IPVS `tcpfin`);
    /// 0 = `DEFAULT_TCPFIN_TIMEOUT_S`.
    pub tcpfin_timeout_s: u32,
    /// Idle timeout of a UDP flow (IPVS `udp`); 0 = `DEFAULT_UDP_TIMEOUT_S`.
    pub udp_timeout_s: u32,
    /// `CONFIG_PASS_NO_REAL`.
    pub flags: u32,
}
const _: () = assert!(size_of::<DataplaneConfig>() == 32);

/// Packets for a service with no usable real go to the kernel stack
/// (`PassNoReal`) instead of being dropped (`DropNoReal`).
pub const CONFIG_PASS_NO_REAL: u32 = 1;

/// IPVS's default timeouts (`ipvsadm -L --timeout`: 900 120 300).
pub const DEFAULT_TCP_TIMEOUT_S: u32 = 900;
pub const DEFAULT_TCPFIN_TIMEOUT_S: u32 = 120;
pub const DEFAULT_UDP_TIMEOUT_S: u32 = 300;

impl DataplaneConfig {
    /// The flood guard's two fields for `rate` new flows per second per CPU
    /// and a burst of `burst` flows; a rate of 0 turns the guard off.
    pub const fn flood_guard(rate: u32, burst: u32) -> (u64, u64) {
        if rate == 0 {
            return (0, 0);
        }
        let cost = 1_000_000_000 / rate as u64;
        let cost = if cost == 0 { 1 } else { cost };
        (cost, cost * if burst == 0 { 1 } else { burst as u64 })
    }

    /// A flow's idle timeout in seconds, defaults filled in.
    #[inline(always)]
    pub fn timeout_s(&self, proto: u8, closing: bool) -> u32 {
        let (set, default) = match (proto, closing) {
            (PROTO_UDP, _) => (self.udp_timeout_s, DEFAULT_UDP_TIMEOUT_S),
            (_, true) => (self.tcpfin_timeout_s, DEFAULT_TCPFIN_TIMEOUT_S),
            _ => (self.tcp_timeout_s, DEFAULT_TCP_TIMEOUT_S),
        };
        if set == 0 { default } else { set }
    }

    /// Whether a flow of protocol `proto` with `flags`, last seen at
    /// `last_seen_ns` (as `Binding` and a `FLOWS` slot hold them), has been
    /// idle beyond its timeout at `now`: then it decides nothing and counts
    /// as ended. Wrapping, as stamps near a fresh boot's clock need.
    #[inline(always)]
    pub fn idle_out(&self, proto: u8, flags: u32, last_seen_ns: u64, now: u64) -> bool {
        let closing = flags & FLOW_CLOSING != 0;
        let timeout_ns = self.timeout_s(proto, closing) as u64 * 1_000_000_000;
        now.wrapping_sub(last_seen_ns) >= timeout_ns
    }
}

/// Value of `FLOOD_GUARD`, a per-CPU array of one entry: this CPU's token
/// bucket of new flows, kept as nanoseconds of credit (see `DataplaneConfig`).
/// Written only by the XDP program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FloodBucket {
    pub credit_ns: u64,
    /// `bpf_ktime_get_coarse_ns` when the credit was last brought up to date.
    pub stamp_ns: u64,
}
const _: () = assert!(size_of::<FloodBucket>() == 16);

/// Value of `FLOW_CACHE`, a per-CPU direct-mapped cache of `FLOWS` decisions
/// that lets established flows skip the `SERVICES` and `FLOWS` lookups.
/// Written only by the XDP program; a zeroed entry matches no packet
/// (`key.family` is never 0 in a packet's key).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FlowCacheEntry {
    /// The whole flow key, compared exactly (first, so it is 8-byte aligned).
    pub key: FlowKey,
    /// The `REALS` index the flow goes to.
    pub real: u32,
    /// The `Service::id` the flow belongs to; the real must still belong to it.
    pub service: u32,
    /// `CACHE_EPOCH` when the slow path last decided this flow: once the
    /// daemon has moved the epoch on (every second, and after every change
    /// it makes to the maps) the next packet takes the slow path again.
    pub epoch: u64,
    /// The entry of `FLOWS` holding the flow's slot when it was decided: a
    /// FIN or RST served from the cache marks the flow closing there, once
    /// it has checked that the slot still holds this key.
    pub line: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<FlowCacheEntry>() == 64);

/// Key of `PERSIST`: one client of one service.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct PersistKey {
    /// Network byte order.
    pub client: [u32; 4],
    pub service: u32,
    pub family: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(size_of::<PersistKey>() == 24);

/// Key of `FRAGMENTS`: one fragmented IP datagram.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct FragmentKey {
    /// Network byte order.
    pub src: [u32; 4],
    /// Network byte order.
    pub dst: [u32; 4],
    /// IPv4 identification (widened) or IPv6 fragment header identification.
    pub id: u32,
    pub proto: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<FragmentKey>() == 40);

/// Value of `FRAGMENTS`: the ports the first fragment carried.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FragmentPorts {
    /// Network byte order.
    pub sport: u16,
    /// Network byte order.
    pub dport: u16,
}
const _: () = assert!(size_of::<FragmentPorts>() == 4);

/// Per-CPU counters of `SERVICE_STATS`, `REAL_STATS` and `REASON_STATS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    /// Flows (or persistence bindings) created; unused in `REASON_STATS`.
    pub new_flows: u64,
}
const _: () = assert!(size_of::<Counters>() == 24);

/// Field by field: per-CPU values summed, a service's reals added up.
impl core::ops::Add for Counters {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            packets: self.packets + other.packets,
            bytes: self.bytes + other.bytes,
            new_flows: self.new_flows + other.new_flows,
        }
    }
}

/// Why the XDP program returned what it did: the index into `REASON_STATS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Sent to a real server (`XDP_TX`).
    Forwarded = 0,
    /// An ICMP error about a VIP flow, sent to the real that owns the flow.
    ForwardedIcmpError,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...): `XDP_PASS`.
    PassNotIp,
    /// IP, but not for a configured service (the node's own traffic, VRRP,
    /// other ports, ICMP that is not an error about a VIP flow) or not
    /// addressed to this host (a broadcast or multicast MAC): `XDP_PASS`.
    PassNotService,
    /// For a service, but no real can take it (all down, MAC unknown), and
    /// `CONFIG_PASS_NO_REAL` is set: `XDP_PASS`.
    PassNoReal,
    /// A later fragment whose first fragment was not seen: `XDP_PASS`.
    PassFragment,
    /// IPv6 extension headers beyond what the program follows: `XDP_PASS`.
    PassExtHeaders,
    /// Truncated or inconsistent headers: `XDP_PASS`, the kernel drops them
    /// and counts them in its own statistics.
    PassMalformed,
    /// A packet of a flow the table does not know, sent to the ring's real
    /// (`XDP_TX`) but not recorded: this CPU is above the flood guard's rate,
    /// or the flow's bucket of `FLOWS` is full.
    ForwardedUntracked,
    /// For a service, but no real can take it: `XDP_DROP` (unless
    /// `CONFIG_PASS_NO_REAL`, then `PassNoReal`).
    DropNoReal,
}

impl Reason {
    pub const COUNT: u32 = 10;
    pub const ALL: [Reason; Reason::COUNT as usize] = [
        Reason::Forwarded,
        Reason::ForwardedIcmpError,
        Reason::PassNotIp,
        Reason::PassNotService,
        Reason::PassNoReal,
        Reason::PassFragment,
        Reason::PassExtHeaders,
        Reason::PassMalformed,
        Reason::ForwardedUntracked,
        Reason::DropNoReal,
    ];

    /// A name for metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::Forwarded => "forwarded",
            Reason::ForwardedIcmpError => "forwarded_icmp_error",
            Reason::PassNotIp => "pass_not_ip",
            Reason::PassNotService => "pass_not_service",
            Reason::PassNoReal => "pass_no_real",
            Reason::PassFragment => "pass_fragment",
            Reason::PassExtHeaders => "pass_ext_headers",
            Reason::PassMalformed => "pass_malformed",
            Reason::ForwardedUntracked => "forwarded_untracked",
            Reason::DropNoReal => "drop_no_real",
        }
    }
}

#[cfg(feature = "user")]
extern crate std;

#[cfg(feature = "user")]
pub use user::flow_cache_entries_here;

#[cfg(feature = "user")]
mod user {
    use super::*;

    /// [`flow_cache_entries`] for this machine's possible CPUs.
    pub fn flow_cache_entries_here() -> std::io::Result<u32> {
        let cpus = aya::util::nr_cpus().map_err(|(path, e)| {
            std::io::Error::new(e.kind(), std::format!("reading {path}: {e}"))
        })?;
        Ok(flow_cache_entries(u32::try_from(cpus).unwrap_or(u32::MAX)))
    }

    // SAFETY: all of these are `Pod` (checked by bytemuck's derive: no padding,
    // every bit pattern valid), which is what aya::Pod requires.
    unsafe impl aya::Pod for ServiceKey {}
    unsafe impl aya::Pod for Service {}
    unsafe impl aya::Pod for Real {}
    unsafe impl aya::Pod for FlowKey {}
    unsafe impl aya::Pod for Binding {}
    unsafe impl aya::Pod for PersistKey {}
    unsafe impl aya::Pod for FragmentKey {}
    unsafe impl aya::Pod for FragmentPorts {}
    unsafe impl aya::Pod for Counters {}
    unsafe impl aya::Pod for FlowCacheEntry {}
    unsafe impl aya::Pod for RealIdent {}
    unsafe impl aya::Pod for DataplaneConfig {}
    unsafe impl aya::Pod for FloodBucket {}
    unsafe impl aya::Pod for FlowLine {}
    unsafe impl aya::Pod for ServiceSlot {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_table_is_complete_and_ordered() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn flow_cache_slots_spread_one_client_over_the_cache() {
        // One client's connections differ only in the source port: they
        // must not pile into a few slots.
        let mut taken = [false; FLOW_CACHE_SIZE as usize];
        let mut distinct = 0;
        for port in 0..FLOW_CACHE_SIZE {
            let key = FlowKey {
                src: [0x0a00_0001, 0, 0, 0],
                dst: [0x0a00_0064, 0, 0, 0],
                sport: (port as u16).to_be(),
                dport: 80u16.to_be(),
                proto: PROTO_TCP,
                family: FAMILY_V4,
                _pad: [0; 2],
            };
            let slot = flow_cache_slot(&key.words()) as usize;
            if !taken[slot] {
                taken[slot] = true;
                distinct += 1;
            }
        }
        // Random placement fills 1 - 1/e (63%) of the slots.
        assert!(
            distinct > FLOW_CACHE_SIZE / 2,
            "{distinct} of {FLOW_CACHE_SIZE} slots"
        );
    }

    #[test]
    fn flow_hash_depends_on_every_field() {
        let base = FlowKey {
            src: [0x0a00_0001, 0, 0, 0],
            dst: [0x0a00_0064, 0, 0, 0],
            sport: 1234,
            dport: 80,
            proto: PROTO_TCP,
            family: FAMILY_V4,
            _pad: [0; 2],
        };
        let h = base.hash();
        let variants = [
            FlowKey {
                src: [0x0a00_0002, 0, 0, 0],
                ..base
            },
            FlowKey {
                dst: [0x0a00_0065, 0, 0, 0],
                ..base
            },
            FlowKey {
                sport: 1235,
                ..base
            },
            FlowKey { dport: 81, ..base },
            FlowKey {
                proto: PROTO_UDP,
                ..base
            },
            FlowKey {
                family: FAMILY_V6,
                ..base
            },
        ];
        for v in variants {
            assert_ne!(v.hash(), h, "{v:?}");
        }
    }
}
