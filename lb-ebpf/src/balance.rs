//! Choosing the real: the per-CPU flow cache (see `cache`), else the slow
//! path: service lookup, then the flow table, then source-IP persistence,
//! then the service's Maglev ring.
//!
//! A real reached by number from state (`FLOW_CACHE`, `FLOWS`, `PERSIST`) or
//! from a ring is used only if it is up and `REALS[real].service` is the
//! packet's service, so a real number reused by another service is never
//! followed. Connection semantics, IPVS's:
//! - a recorded flow idle for longer than its timeout (`DataplaneConfig`:
//!   tcp, tcpfin once FIN/RST was seen, udp) is treated as absent: the packet
//!   is decided again and the slot overwritten;
//! - a SYN on a tuple whose entry saw FIN/RST starts a new flow (port reuse);
//! - a real with `REAL_NO_NEW` (weight 0) keeps its flows but is never chosen
//!   for a new one, neither by the ring (the daemon leaves it out) nor by a
//!   persistence binding, and gets no new binding;
//! - above the flood guard's rate (see `flood`), or when the flow's bucket of
//!   `FLOWS` is full, a new flow is forwarded by the ring but not recorded.

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use lb_common::{
    Binding, DataplaneConfig, FLOW_CLOSING, FlowCacheEntry, FlowKey, MAX_SERVICES, NO_REAL,
    PersistKey, REAL_NO_NEW, REAL_UP, RING_SIZE, Real, Reason, Service, ServiceKey,
    TOUCH_INTERVAL_NS, service_slots, service_table::SERVICE_PROBES, vip_filter_bit,
};

use crate::{
    cache, flood, flows, fragments,
    maps::{CONFIG, PERSIST, REALS, RINGS, SERVICES, VIP_FILTER},
    parse::{FragmentKind, Packet},
};

const NS_PER_S: u64 = 1_000_000_000;

/// A MAC address as the two words it is written into the frame with: bytes
/// 0-3 and 4-5, in memory order.
#[derive(Clone, Copy)]
pub struct Mac {
    pub head: u32,
    pub tail: u16,
}

/// Where a packet goes.
pub struct Decision {
    pub real: u32,
    pub mac: Mac,
    pub service_id: u32,
    pub new_flow: bool,
    /// A new flow kept out of the tables: by the flood guard, or its `FLOWS`
    /// bucket full.
    pub untracked: bool,
    /// The `FLOWS` line of the flow's slot; meaningless for an untracked
    /// flow and for packets that only follow state (never cached).
    pub line: u32,
}

/// CLOCK_MONOTONIC_COARSE, as `Binding::last_seen_ns` documents: a tick's
/// precision is plenty for timeouts in seconds and it is cheaper to read.
#[inline(always)]
fn now_ns() -> u64 {
    // SAFETY: a helper without arguments, allowed in XDP programs.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// Balances a parsed packet of any frame but the common one (which `main`
/// takes through [`cached`], [`maybe_vip`] and [`refill`] itself): the flow
/// cache for data packets of a known flow, the slow path ([`decide`]) for
/// everything else that may be for a VIP.
#[inline(always)]
pub fn balance(pkt: &mut Packet) -> Result<Decision, Reason> {
    // What the fast path reads of the packet, copied before the first map
    // lookup: LLVM takes every call (a map lookup is a helper call until the
    // verifier inlines it) for one that may write the packet, whose address
    // the slow path hands to helpers, and would read it all again from the
    // stack, losing what the parser's constants told it.
    let whole = pkt.fragment.kind == FragmentKind::No && !pkt.icmp_error;
    let (key, closing, syn) = (pkt.key.words(), pkt.closing, pkt.syn);
    // The cache first, the VIP check after it: an established flow's
    // packet ends at the cache, and only a packet the slow path would see
    // pays for the VIP check. Node traffic pays a cache probe, which never
    // writes the cache. Measured (alternated, three runs of three
    // placements): an established flow +17.1 to +17.5 with the VIP check
    // first, +13.3 to +13.9 after; a packet for no service +2.8 to +3.7
    // first, +7.9 to +8.2 after.
    let miss = if whole && !syn {
        match cached(&key, closing) {
            Ok(hit) => return Ok(hit.decision()),
            Err(miss) => miss,
        }
    } else {
        None
    };
    if !maybe_vip(&pkt.key.dst) {
        return Err(Reason::PassNotService);
    }
    // A SYN's decision fills its slot (see `cache`).
    let miss = if whole && syn { to_fill(&key) } else { miss };
    refill(pkt, miss.as_ref())
}

/// A flow cache hit: the entry (its real and service) and the real's MAC.
pub struct Hit {
    pub entry: *const FlowCacheEntry,
    pub mac: Mac,
}

impl Hit {
    #[inline(always)]
    fn decision(&self) -> Decision {
        // SAFETY: a `FLOW_CACHE` entry, as in `cached`.
        let e = unsafe { &*self.entry };
        Decision {
            real: e.real,
            mac: self.mac,
            service_id: e.service,
            new_flow: false,
            untracked: false,
            line: e.line,
        }
    }
}

/// What the slow path needs of a flow cache probe that did not decide the
/// packet: the slot its flow maps to, whether it held that flow, and the
/// epoch read.
pub struct Miss {
    entry: *mut FlowCacheEntry,
    cached: bool,
    epoch: u64,
}

/// The fast path: the decision `FLOW_CACHE` holds for the flow of key `w`
/// (see `FlowKey::words`), if it is still good; else the slot to refill,
/// if there is one. A `closing` packet (FIN, RST) is served from the cache
/// only once it has marked its flow closing in `FLOWS` (see [`close`]).
#[inline(always)]
pub fn cached(w: &[u64; 5], closing: bool) -> Result<Hit, Option<Miss>> {
    let Some(entry) = cache::slot(w) else {
        return Err(None);
    };
    // SAFETY: this CPU's slot of a per-CPU map; nothing else uses it while
    // this program runs on this CPU.
    let e = unsafe { &*entry };
    // Read before deciding: a decision filled under this epoch saw every
    // change the daemon made before moving to it.
    let epoch = cache::epoch();
    let cached = cache::same_flow(w, e);
    if cached
        && e.epoch == epoch
        && let Some(mac) = up_real(e.real, e.service)
        && (!closing || close(e))
    {
        return Ok(Hit { entry, mac });
    }
    Err(Some(Miss {
        entry,
        cached,
        epoch,
    }))
}

/// A FIN or RST of the cached flow of `e`: marks it closing in the `FLOWS`
/// slot the entry recorded, as the slow path would (see [`touch`]; the
/// client's persistence is refreshed by the once-per-epoch trip through the
/// slow path, as for every cached packet). `false`: the slot no longer
/// holds the flow, and the slow path decides it.
#[inline(always)]
fn close(e: &FlowCacheEntry) -> bool {
    let Some(flow) = flows::at_line(e.line, &e.key, e.real) else {
        return false;
    };
    refresh(&flow, flow.flags(), flow.last_seen_ns(), now_ns(), true);
    true
}

/// The slot a SYN's decision fills, not read (see `cache`: a SYN never uses
/// the cache, and the line need not be waited for). Its own function, called
/// after the VIP check, rather than a `syn` case of [`cached`]: folded in,
/// LLVM copied the undefined payload of `cached`'s `Err(None)` into the
/// `Option` handed to the slow path, and the verifier refused the program
/// (`R2 !read_ok`).
#[inline(always)]
pub fn to_fill(w: &[u64; 5]) -> Option<Miss> {
    Some(Miss {
        entry: cache::slot(w)?,
        cached: false,
        epoch: cache::epoch(),
    })
}

/// The slow path, keeping the cache in step with its decision after a probe
/// that missed or for a SYN (`miss`; `None` for a packet whose decision is
/// not cached).
#[inline(always)]
pub fn refill(pkt: &mut Packet, miss: Option<&Miss>) -> Result<Decision, Reason> {
    let Some(miss) = miss else {
        return decide(pkt);
    };
    // SAFETY: as in `cached`.
    let entry = unsafe { &mut *miss.entry };
    match decide(pkt) {
        Ok(d) => {
            // An untracked flow is not cached either: a flood must not push
            // established flows out of the cache.
            if !d.untracked {
                cache::fill(entry, pkt, &d, miss.epoch);
            }
            Ok(d)
        }
        Err(reason) => {
            if miss.cached {
                cache::invalidate(entry);
            }
            Err(reason)
        }
    }
}

/// Whether `addr` may be a VIP: its `VIP_FILTER` bit is set.
#[inline(always)]
pub fn maybe_vip(addr: &[u32; 4]) -> bool {
    let (word, bit) = vip_filter_bit(addr);
    VIP_FILTER.get(word).is_some_and(|w| w & bit != 0)
}

/// `SERVICES`' slots minus one (a power of two), set by the loader
/// (`lb_common::service_table::SERVICE_SLOT_MASK`); read only, so the
/// verifier knows its value.
#[unsafe(no_mangle)]
static SERVICE_SLOT_MASK: u32 = service_slots(MAX_SERVICES) - 1;

/// The service for the packet's destination: exact port first, then port 0.
#[inline(always)]
fn service(key: &FlowKey) -> Option<Service> {
    let mut skey = ServiceKey {
        addr: key.dst,
        port: key.dport,
        proto: key.proto,
        family: key.family,
    };
    if let Some(s) = lookup_service(&skey) {
        return Some(s);
    }
    skey.port = 0;
    lookup_service(&skey)
}

/// `skey`'s service: its probe sequence up to the first empty slot (see
/// `lb_common::service_table`).
#[inline(always)]
fn lookup_service(skey: &ServiceKey) -> Option<Service> {
    // SAFETY: a plain read of the program's own read-only global.
    let mask = unsafe { core::ptr::read_volatile(&SERVICE_SLOT_MASK) };
    let home = skey.slot(mask);
    let want = service_words(skey);
    let mut i = 0;
    while i < SERVICE_PROBES {
        let slot = SERVICES.get((home + i) & mask)?;
        if slot.key.family == 0 {
            return None;
        }
        let have = service_words(&slot.key);
        if (want[0] ^ have[0]) | (want[1] ^ have[1]) | (want[2] ^ have[2]) == 0 {
            return Some(slot.service);
        }
        i += 1;
    }
    None
}

/// A service key as the three words it is compared by.
#[inline(always)]
fn service_words(k: &ServiceKey) -> [u64; 3] {
    let pair = |lo: u32, hi: u32| lo as u64 | (hi as u64) << 32;
    [
        pair(k.addr[0], k.addr[1]),
        pair(k.addr[2], k.addr[3]),
        k.port as u64 | (k.proto as u64) << 16 | (k.family as u64) << 24,
    ]
}

/// The daemon's settings; all defaults until it has written them.
#[inline(always)]
pub fn config() -> DataplaneConfig {
    CONFIG.get(0).copied().unwrap_or_default()
}

/// The MAC address of real `real` if it may receive packets of service
/// `service`: up, and (still) that service's.
#[inline(always)]
pub fn up_real(real: u32, service: u32) -> Option<Mac> {
    real_mac(real, service, 0)
}

/// [`up_real`], and taking new flows (not `REAL_NO_NEW`).
#[inline(always)]
fn open_real(real: u32, service: u32) -> Option<Mac> {
    real_mac(real, service, REAL_NO_NEW)
}

#[inline(always)]
fn real_mac(real: u32, service: u32, refused: u16) -> Option<Mac> {
    let r = REALS.get_ptr(real)?;
    // SAFETY: a pointer to a live, 4-byte aligned `Real`; the MAC is its
    // first six bytes, read as a u32 and the u16 after it.
    unsafe {
        let r = &*r;
        let words = (r as *const Real).cast::<u32>();
        (r.flags & (REAL_UP | refused) == REAL_UP && r.service == service).then(|| Mac {
            head: *words,
            tail: *words.add(1).cast::<u16>(),
        })
    }
}

/// Whether a recorded flow still decides a packet: not idle beyond its
/// timeout, and not a closed connection whose tuple a SYN reopens.
#[inline(always)]
fn live(
    flags: u32,
    last_seen_ns: u64,
    key: &FlowKey,
    syn: bool,
    cfg: &DataplaneConfig,
    now: u64,
) -> bool {
    !(syn && flags & FLOW_CLOSING != 0) && !cfg.idle_out(key.proto, flags, last_seen_ns, now)
}

/// The slow path. Data packets create flow and persistence entries; ICMP
/// errors and later fragments only follow existing state.
///
/// One probe of the flow's bucket serves both the lookup and the insert: a
/// SYN nearly always opens a flow the table does not know, and a retransmitted
/// SYN (or a packet of a flow the cache missed) finds its slot in it.
#[inline(always)]
fn decide(pkt: &mut Packet) -> Result<Decision, Reason> {
    if pkt.fragment.kind == FragmentKind::Later {
        fragments::fill_later(&mut pkt.key, pkt.fragment.id)?;
    }
    let key = &pkt.key;
    let hash = key.hash();
    let bucket = flows::bucket(hash);
    let svc = service(key).ok_or(Reason::PassNotService)?;
    if pkt.fragment.kind == FragmentKind::First {
        fragments::record_first(key, pkt.fragment.id);
    }
    // ICMP errors and later fragments only follow state; a new flow is
    // recorded unless the flood guard says no.
    let follows = pkt.icmp_error || pkt.fragment.kind == FragmentKind::Later;
    let now = now_ns();
    let cfg = config();
    let probe = bucket.probe(key, hash, &cfg, now);
    if let Some(d) = established(pkt, &svc, &cfg, now, &probe) {
        return Ok(d);
    }
    let record = !follows && flood::admit(&cfg, now);
    let (real, mac) = pick(&svc, key, hash, now, record)?;
    // The tuple's own way, found but no longer deciding (a SYN reopening a
    // closed tuple, an idle flow, its real gone): the flow is decided anew,
    // and nothing may keep the old decision.
    if probe.found().is_some() && !follows {
        forget_stale(pkt, &probe, record);
    }
    let flags = if pkt.closing { FLOW_CLOSING } else { 0 };
    // Not recorded when the bucket is full (see `lb_common::flow_table`).
    let line = if record {
        probe.insert(key, hash, real, flags, now)
    } else {
        None
    };
    let new_flow = line.is_some();
    Ok(Decision {
        real,
        mac,
        service_id: svc.id,
        new_flow,
        untracked: !follows && !new_flow,
        line: line.unwrap_or(0),
    })
}

/// Drops what still holds a flow's old decision when it is decided anew.
/// The cache: an untracked SYN does not fill it (see `cache`), so a cached
/// ACK of the old connection would send the new one's next packets to the
/// old real (any other decision overwrites the slot anyway). The way: when
/// the new flow is not recorded (the flood guard), its later packets must
/// follow the ring as the first did, not the old way; clearing the tuple's
/// own way evicts nobody.
#[inline(always)]
fn forget_stale(pkt: &Packet, probe: &flows::Probe, record: bool) {
    cache::forget(&pkt.key.words());
    if !record {
        probe.clear();
    }
}

/// The decision of the packet's recorded flow, if it still decides (see
/// [`live`]) and its real is up and still the service's.
#[inline(always)]
fn established(
    pkt: &Packet,
    svc: &Service,
    cfg: &DataplaneConfig,
    now: u64,
    probe: &flows::Probe,
) -> Option<Decision> {
    let key = &pkt.key;
    let flow = probe.found()?;
    let (flags, last_seen_ns) = (flow.flags(), flow.last_seen_ns());
    // Expired, reopened by a SYN, or the real went down or is no longer this
    // service's: the caller decides again and overwrites the slot.
    if !live(flags, last_seen_ns, key, pkt.syn, cfg, now) {
        return None;
    }
    let mac = up_real(flow.real, svc.id)?;
    if !pkt.icmp_error {
        touch(&flow, flags, last_seen_ns, svc, key, now, pkt.closing);
    }
    Some(Decision {
        real: flow.real,
        mac,
        service_id: svc.id,
        new_flow: false,
        untracked: false,
        line: flow.line,
    })
}

/// Keeps an established flow (and its client's persistence) fresh, writing
/// only when something changes so the cache line stays shared between CPUs.
#[inline(always)]
fn touch(
    flow: &flows::Found,
    flags: u32,
    last_seen_ns: u64,
    svc: &Service,
    key: &FlowKey,
    now: u64,
    closing: bool,
) {
    if refresh(flow, flags, last_seen_ns, now, closing)
        && svc.persist_timeout_s != 0
        && let Some(p) = PERSIST.get_ptr_mut(persist_key(key, svc))
    {
        // SAFETY: a pointer to a live map value; one u64 store.
        unsafe { (*p).last_seen_ns = now };
    }
}

/// [`touch`] of the flow's own slot; `true` when it refreshed its
/// `last_seen_ns`.
#[inline(always)]
fn refresh(flow: &flows::Found, flags: u32, last_seen_ns: u64, now: u64, closing: bool) -> bool {
    let stale = now.wrapping_sub(last_seen_ns) > TOUCH_INTERVAL_NS;
    if stale {
        flow.set_last_seen_ns(now);
    }
    if closing && flags & FLOW_CLOSING == 0 {
        flow.mark_closing();
    }
    stale
}

#[inline(always)]
#[expect(
    clippy::field_reassign_with_default,
    reason = "a struct literal zeroes `_pad` with a call to a byte-loop memset"
)]
fn persist_key(key: &FlowKey, svc: &Service) -> PersistKey {
    // From zero, not with `_pad: [0; 3]`: LLVM turns that into a call to a
    // byte-loop `memset`, the whole-key zeroing into plain stores.
    let mut pkey = PersistKey::default();
    pkey.client = key.src;
    pkey.service = svc.id;
    pkey.family = key.family;
    pkey
}

/// A real for a flow the table does not know (or whose real is down):
/// the client's persistence binding if fresh and open to new flows, else
/// the ring. `record`: refresh or create the binding.
#[inline(always)]
fn pick(
    svc: &Service,
    key: &FlowKey,
    hash: u32,
    now: u64,
    record: bool,
) -> Result<(u32, Mac), Reason> {
    if svc.persist_timeout_s == 0 {
        return ring_pick(svc, hash);
    }
    let pkey = persist_key(key, svc);
    if let Some(p) = PERSIST.get_ptr_mut(pkey) {
        // SAFETY: a pointer to a live map value.
        let p = unsafe { &mut *p };
        let timeout_ns = svc.persist_timeout_s as u64 * NS_PER_S;
        if now.wrapping_sub(p.last_seen_ns) < timeout_ns
            && let Some(mac) = open_real(p.real, svc.id)
        {
            if record {
                p.last_seen_ns = now;
            }
            return Ok((p.real, mac));
        }
    }
    let (real, mac) = ring_pick(svc, hash)?;
    if record {
        let binding = Binding {
            real,
            flags: 0,
            last_seen_ns: now,
        };
        // Failing only loses stickiness for this client's next flow.
        let _ = PERSIST.insert(pkey, binding, 0);
    }
    Ok((real, mac))
}

/// The Maglev slot for the flow's hash (`FlowKey::hash`) in the service's
/// current ring.
#[inline(always)]
fn ring_pick(svc: &Service, hash: u32) -> Result<(u32, Mac), Reason> {
    let slot = svc
        .ring
        .wrapping_mul(RING_SIZE)
        .wrapping_add(hash % RING_SIZE);
    let real = *RINGS.get(slot).ok_or(Reason::PassNoReal)?;
    if real == NO_REAL {
        return Err(Reason::PassNoReal);
    }
    let mac = up_real(real, svc.id).ok_or(Reason::PassNoReal)?;
    Ok((real, mac))
}
