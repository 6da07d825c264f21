//! Every map of the XDP program. Names are the `lb_common::maps` constants
//! (the `#[map]` macro names a map after its static); sizes are the
//! `lb_common` defaults, which the daemon may raise at load time.

use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray},
};
use lb_common::{
    Binding, Counters, DataplaneConfig, FLOW_CACHE_SIZE, FloodBucket, FlowCacheEntry, FlowLine,
    FragmentKey, FragmentPorts, MAX_FLOWS, MAX_FRAGMENTS, MAX_PERSIST, MAX_REALS, MAX_SERVICES,
    PersistKey, RING_SIZE, Real, Reason, ServiceSlot, VIP_FILTER_WORDS, flow_buckets,
    flow_table::flow_lines, service_slots,
};

/// Services by (VIP, port, protocol, family); port 0 = every port of the VIP.
/// An open-addressed array (see `balance::service` and
/// `lb_common::service_table`), written only by the daemon.
#[map]
pub static SERVICES: Array<ServiceSlot> = Array::with_max_entries(service_slots(MAX_SERVICES), 0);

/// Two Maglev tables per service, back to back: slot `i` of ring `r` is
/// `RINGS[r * RING_SIZE + i]`, holding a `REALS` index or `NO_REAL`.
#[map]
pub static RINGS: Array<u32> = Array::with_max_entries(MAX_SERVICES * 2 * RING_SIZE, 0);

/// Real servers by number: MAC address and `REAL_UP`.
#[map]
pub static REALS: Array<Real> = Array::with_max_entries(MAX_REALS, 0);

/// Connection table: the arriving 5-tuple to its real, a set-associative
/// table of buckets in lines, tags apart from slots (see `flows` and
/// `lb_common::flow_table`): a new flow costs one tag line's read whatever
/// the fill, where the kernel's hash map (and more so its LRU) cost an insert
/// that grew with it. Nothing deletes idle flows: new ones take their slots.
/// Memory-mappable, so the daemon reads and writes it in place.
#[map]
pub static FLOWS: Array<FlowLine> =
    Array::with_max_entries(flow_lines(flow_buckets(MAX_FLOWS)), BPF_F_MMAPABLE);

/// Source-IP persistence: (client, service) to the real chosen for it.
#[map]
pub static PERSIST: LruHashMap<PersistKey, Binding> = LruHashMap::with_max_entries(MAX_PERSIST, 0);

/// Ports of fragmented datagrams, recorded from the first fragment so the
/// later ones (which carry no L4 header) follow it.
#[map]
pub static FRAGMENTS: LruHashMap<FragmentKey, FragmentPorts> =
    LruHashMap::with_max_entries(MAX_FRAGMENTS, 0);

/// Per-service counters of the reals each service has lost, indexed by
/// `Service::id`: written only by the daemon, which adds a service's
/// current reals' `REAL_STATS` to them (one counter update per packet, not
/// two).
#[map]
pub static SERVICE_STATS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(MAX_SERVICES, 0);

/// Per-real counters, indexed like `REALS`.
#[map]
pub static REAL_STATS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(MAX_REALS, 0);

/// Per-verdict counters, indexed by `Reason`.
#[map]
pub static REASON_STATS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(Reason::COUNT, 0);

/// The cache of `FLOWS` decisions, a part per CPU (see
/// `lb_common::flow_cache_entries`): the established-flow fast path (see
/// `cache`). Sized here for one CPU; the loader gives it every possible
/// CPU's part. Memory-mappable for its page-aligned values: every entry in
/// a line of its own.
#[map]
pub static FLOW_CACHE: Array<FlowCacheEntry> =
    Array::with_max_entries(FLOW_CACHE_SIZE, BPF_F_MMAPABLE);

/// The daemon's settings for the program: flood guard, idle timeouts,
/// pass-through (see `DataplaneConfig`). One entry.
#[map]
pub static CONFIG: Array<DataplaneConfig> = Array::with_max_entries(1, 0);

/// Each CPU's token bucket of new flows (see `flood`). One entry.
#[map]
pub static FLOOD_GUARD: PerCpuArray<FloodBucket> = PerCpuArray::with_max_entries(1, 0);

/// Bitmap of the VIPs' addresses (see `lb_common::vip_filter_bit`): checked
/// before the slow path (after the per-CPU cache, where an established
/// flow's packet ends), so node traffic costs almost nothing. Written only
/// by the daemon.
#[map]
pub static VIP_FILTER: Array<u64> = Array::with_max_entries(VIP_FILTER_WORDS, 0);

/// The flow cache's epoch (one entry): the daemon increments it every
/// `TOUCH_INTERVAL_NS` and after each change it writes, and a cache entry
/// filled in an older epoch is not trusted (see `cache`). Reading it costs
/// one array load where reading the clock on every packet cost a helper call.
#[map]
pub static CACHE_EPOCH: Array<u64> = Array::with_max_entries(1, 0);
