//! The XDP program in the kernel, through `BPF_PROG_TEST_RUN` (aya `TestRun`),
//! in the manner of Katran's tester: named cases of input packet, map state,
//! expected verdict and expected output bytes. The table and the mutated
//! frames run through the tc program too (`tests::hook`). A mismatch fails
//! the test with the offset of the first differing byte and both packets in
//! hex.
//!
//! The maps are filled the way the daemon's reconciler fills them: services,
//! reals, and ring slots `RINGS[ring * RING_SIZE + i]`.
//!
//! Each test needs root; without it, it says so and returns.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray},
    programs::ProgramError,
};
use lb_common::{
    Binding, CONFIG_PASS_NO_REAL, Counters, DataplaneConfig, FAMILY_V4, FAMILY_V6, FLOW_CACHE_SIZE,
    FLOW_CLOSING, FLOW_WAYS, FlowBucket, FlowCacheEntry, FlowKey, FlowLine, NO_REAL, PROTO_TCP,
    PROTO_UDP, PersistKey, REAL_NO_NEW, REAL_UP, RING_SIZE, Real, Reason, Service, ServiceKey,
    flow_buckets, flow_cache_entries_here, flow_cache_index,
    flow_table::{FLOW_BUCKETS, bucket_of, flow_lines, tag_of},
    maps, rings_of, vip_filter_bit,
};
use tests::coarse_now_ns;
use tests::hook::{Hook, UNKNOWN, XDP_DROP, XDP_PASS, XDP_TX};
use tests::packet::{
    ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ExtHeader, ICMP_DEST_UNREACH,
    ICMP_ECHO_REQUEST, ICMP_FRAG_NEEDED, ICMPV6_PACKET_TOO_BIG, IPPROTO_ICMP, IPPROTO_ICMPV6,
    IPPROTO_TCP, IPPROTO_UDP, IPPROTO_VRRP, IPV6_DEST_OPTS, IPV6_HOP_BY_HOP, Ipv4, Ipv6, TCP_ACK,
    TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, Vlan, arp_request, ethernet, frame, icmpv4, icmpv6, tcp,
    to_hex, udp,
};

/// The load balancer's MAC: frames for a VIP arrive addressed to it.
const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The router the client's packets come through.
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];

const VIP4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const OTHER4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);

const R1: u32 = 1;
const R2: u32 = 2;
const R3: u32 = 3;
const R4: u32 = 4;
/// The table world's reals of its UDP and IPv6 services (a real belongs to
/// one service).
const R_UDP4: u32 = 11;
const R_TCP6: u32 = 21;
const R_UDP6: u32 = 31;

fn real_mac(real: u32) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x01, real as u8]
}

/// The compiled object: `XDPVS_EBPF_OBJECT`, else the default build output.
fn object_path() -> String {
    std::env::var("XDPVS_EBPF_OBJECT").unwrap_or_else(|_| {
        format!(
            "{}/../target/ebpf/bpfel-unknown-none/release/lb-ebpf",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

fn addr(ip: IpAddr) -> [u32; 4] {
    match ip {
        IpAddr::V4(a) => [u32::from_ne_bytes(a.octets()), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            std::array::from_fn(|i| {
                u32::from_ne_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

fn family(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { FAMILY_V4 } else { FAMILY_V6 }
}

fn service_key(vip: IpAddr, port: u16, proto: u8) -> ServiceKey {
    ServiceKey {
        addr: addr(vip),
        port: port.to_be(),
        proto,
        family: family(vip),
    }
}

fn flow_key(client: IpAddr, cport: u16, vip: IpAddr, vport: u16, proto: u8) -> FlowKey {
    FlowKey {
        src: addr(client),
        dst: addr(vip),
        sport: cport.to_be(),
        dport: vport.to_be(),
        proto,
        family: family(vip),
        _pad: [0; 2],
    }
}

/// The ring slot a data packet of flow `key` lands on.
fn ring_slot(key: &FlowKey) -> u32 {
    key.hash() % RING_SIZE
}

/// The frame the program must send: MACs rewritten, nothing else.
fn rewritten(input: &[u8], real: u32) -> Vec<u8> {
    let mut out = input.to_vec();
    out[6..12].copy_from_slice(&input[0..6]);
    out[0..6].copy_from_slice(&real_mac(real));
    out
}

/// Builds client packets to a VIP.
fn tcp_frame(client: IpAddr, cport: u16, vip: IpAddr, vport: u16, flags: u8) -> Vec<u8> {
    let seg = tcp(client, vip, cport, vport, flags, b"GET / HTTP/1.0\r\n\r\n");
    frame(
        LB_MAC,
        ROUTER_MAC,
        &ip_packet(client, vip, IPPROTO_TCP, &seg),
    )
}

fn udp_frame(client: IpAddr, cport: u16, vip: IpAddr, vport: u16) -> Vec<u8> {
    let seg = udp(client, vip, cport, vport, b"query");
    frame(
        LB_MAC,
        ROUTER_MAC,
        &ip_packet(client, vip, IPPROTO_UDP, &seg),
    )
}

fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Ipv4::new(s, d, proto).build(payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => Ipv6::new(s, d, proto).build(payload),
        _ => panic!("mixed families {src} {dst}"),
    }
}

/// What a case expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// `XDP_TX` to this real, counted as `Reason::Forwarded`.
    Tx(u32),
    /// `XDP_TX` to this real, counted as `Reason::ForwardedIcmpError`.
    IcmpTx(u32),
    /// `XDP_TX` to this real, counted as `Reason::ForwardedUntracked`.
    UntrackedTx(u32),
    /// `XDP_PASS`, frame untouched, counted under this reason.
    Pass(Reason),
    /// `XDP_DROP`, counted under this reason.
    Drop(Reason),
}

struct Case {
    name: &'static str,
    input: Vec<u8>,
    expect: Expect,
}

fn case(name: &'static str, input: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        input,
        expect,
    }
}

/// The loaded program and its maps.
struct Lb {
    ebpf: Ebpf,
    hook: Hook,
}

impl Lb {
    fn load() -> Self {
        Self::load_hook(Hook::Xdp)
    }

    fn load_hook(hook: Hook) -> Self {
        Self::load_with(&mut EbpfLoader::new(), hook)
    }

    /// With a flow table sized for `flows` flows (as the daemon's loader
    /// sizes it: buckets, and the program's mask to match).
    fn load_with_flows(flows: u32) -> Self {
        let buckets = flow_buckets(flows);
        Self::load_with(
            EbpfLoader::new()
                .map_max_entries(maps::FLOWS, flow_lines(buckets))
                .override_global(FLOW_BUCKETS, &buckets, true),
            Hook::Xdp,
        )
    }

    fn load_with(loader: &mut EbpfLoader, hook: Hook) -> Self {
        pin_to_current_cpu();
        let path = object_path();
        // As the daemon's loader sizes it: a part for each CPU.
        loader.map_max_entries(
            maps::FLOW_CACHE,
            flow_cache_entries_here().expect("number of CPUs"),
        );
        let mut ebpf = loader.load_file(&path).unwrap_or_else(|e| {
            panic!("loading {path} (build it first: `cargo xtask build-ebpf`): {e}")
        });
        let name = hook.program();
        if let Err(e) = hook.load(&mut ebpf) {
            match e {
                ProgramError::LoadError { verifier_log, .. } => {
                    panic!("verifier rejected {name}:\n{verifier_log}")
                }
                e => panic!("loading {name}: {e}"),
            }
        }
        Self { ebpf, hook }
    }

    /// The verdict in XDP's words (see `tests::hook`) and the frame after.
    fn run(&self, input: &[u8]) -> (u32, Vec<u8>) {
        let mut out = vec![0u8; input.len() + 256];
        let (verdict, len) = self
            .hook
            .run(&self.ebpf, input, &mut out)
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of\n{}: {e:#}", to_hex(input)));
        out.truncate(len);
        (verdict, out)
    }

    fn hash<K: aya::Pod, V: aya::Pod>(&mut self, name: &str) -> HashMap<&mut MapData, K, V> {
        HashMap::try_from(
            self.ebpf
                .map_mut(name)
                .unwrap_or_else(|| panic!("map {name}")),
        )
        .unwrap_or_else(|e| panic!("map {name}: {e}"))
    }

    fn array<V: aya::Pod>(&mut self, name: &str) -> Array<&mut MapData, V> {
        Array::try_from(
            self.ebpf
                .map_mut(name)
                .unwrap_or_else(|| panic!("map {name}")),
        )
        .unwrap_or_else(|e| panic!("map {name}: {e}"))
    }

    /// A service, and its VIP's bit in `VIP_FILTER`, as the daemon writes them.
    fn service(&mut self, key: ServiceKey, svc: Service) {
        let (word, bit) = vip_filter_bit(&key.addr);
        let mut filter = self.array::<u64>(maps::VIP_FILTER);
        let old = filter.get(&word, 0).expect("VIP_FILTER get");
        filter.set(word, old | bit, 0).expect("VIP_FILTER set");
        tests::services::put(&mut self.ebpf, key, svc).expect("SERVICES put");
    }

    /// Real `real` of service `service`, up or down.
    fn real(&mut self, real: u32, service: u32, up: bool) {
        self.set_real(
            real,
            Real {
                mac: real_mac(real),
                flags: if up { REAL_UP } else { 0 },
                service,
            },
        );
    }

    /// What the daemon writes into `CONFIG`.
    fn set_config(&mut self, cfg: DataplaneConfig) {
        self.array(maps::CONFIG).set(0, cfg, 0).expect("CONFIG set");
    }

    fn set_real(&mut self, real: u32, value: Real) {
        self.array(maps::REALS)
            .set(real, value, 0)
            .expect("REALS set");
    }

    /// Fills every slot of `ring` with `slot(i)`.
    fn ring(&mut self, ring: u32, slot: impl Fn(u32) -> u32) {
        let mut rings = self.array::<u32>(maps::RINGS);
        for i in 0..RING_SIZE {
            rings
                .set(ring * RING_SIZE + i, slot(i), 0)
                .expect("RINGS set");
        }
    }

    /// A service at `id` using its first ring, filled by `slot`.
    fn service_with_ring(
        &mut self,
        key: ServiceKey,
        id: u32,
        persist_timeout_s: u32,
        slot: impl Fn(u32) -> u32,
    ) {
        let ring = rings_of(id)[0];
        self.ring(ring, slot);
        self.service(
            key,
            Service {
                id,
                ring,
                persist_timeout_s,
            },
        );
    }

    /// `key`'s bucket of `FLOWS` and its number.
    fn flow_bucket(&mut self, key: &FlowKey) -> (u32, FlowBucket) {
        let flows = self.array::<FlowLine>(maps::FLOWS);
        let index = bucket_of(key.hash(), tests::flows::buckets(&flows));
        (index, tests::flows::read(&flows, index).expect("FLOWS get"))
    }

    fn set_flow_bucket(&mut self, index: u32, bucket: FlowBucket) {
        tests::flows::write(&mut self.array(maps::FLOWS), index, &bucket).expect("FLOWS set");
    }

    fn flow(&mut self, key: &FlowKey) -> Option<Binding> {
        let (_, bucket) = self.flow_bucket(key);
        bucket.find(key).map(|w| bucket.binding(w))
    }

    /// Records a flow as the daemon's flow sync would: in its own way or the
    /// first empty one.
    fn set_flow(&mut self, key: FlowKey, binding: Binding) {
        let (index, mut bucket) = self.flow_bucket(&key);
        let way = bucket
            .find(&key)
            .or_else(|| bucket.empty_way())
            .expect("a way for the flow");
        bucket.set(way, key, &binding);
        self.set_flow_bucket(index, bucket);
    }

    /// Empties the flow's way, as the daemon's flow scan does.
    fn remove_flow(&mut self, key: &FlowKey) {
        let (index, mut bucket) = self.flow_bucket(key);
        let way = bucket.find(key).expect("the flow is recorded");
        bucket.tags[way] = 0;
        self.set_flow_bucket(index, bucket);
    }

    fn remove_service(&mut self, key: &ServiceKey) {
        tests::services::remove(&mut self.ebpf, key).expect("SERVICES remove");
    }

    /// What the daemon does every second and after each change it writes.
    fn next_epoch(&mut self) {
        let mut epoch = self.array::<u64>(maps::CACHE_EPOCH);
        let e = epoch.get(&0, 0).expect("CACHE_EPOCH get");
        epoch.set(0, e + 1, 0).expect("CACHE_EPOCH set");
    }

    /// Empties every CPU's flow cache, so the next packet of any flow takes
    /// the slow path.
    fn clear_flow_cache(&mut self) {
        let mut cache = self.array::<FlowCacheEntry>(maps::FLOW_CACHE);
        for i in 0..cache.len() {
            cache
                .set(i, FlowCacheEntry::default(), 0)
                .expect("FLOW_CACHE set");
        }
    }

    /// Ways of `FLOWS` holding a flow.
    fn flow_count(&mut self) -> usize {
        tests::flows::count(&self.array::<FlowLine>(maps::FLOWS)).expect("FLOWS get")
    }

    fn persist(&mut self, key: &PersistKey) -> Option<Binding> {
        self.hash::<PersistKey, Binding>(maps::PERSIST)
            .get(key, 0)
            .ok()
    }

    fn set_persist(&mut self, key: PersistKey, binding: Binding) {
        self.hash(maps::PERSIST)
            .insert(key, binding, 0)
            .expect("PERSIST insert");
    }

    /// A counter summed over the CPUs.
    /// New flows counted for `reals`, in `REAL_STATS`: the program counts a
    /// packet there alone (the daemon adds a service's up).
    fn new_flows(&self, reals: &[u32]) -> u64 {
        reals
            .iter()
            .map(|r| self.counters(maps::REAL_STATS, *r).new_flows)
            .sum()
    }

    fn counters(&self, map: &str, index: u32) -> Counters {
        let m: PerCpuArray<&MapData, Counters> =
            PerCpuArray::try_from(self.ebpf.map(map).unwrap_or_else(|| panic!("map {map}")))
                .expect("per-CPU array");
        let per_cpu = m
            .get(&index, 0)
            .unwrap_or_else(|e| panic!("{map}[{index}]: {e}"));
        per_cpu.iter().fold(Counters::default(), |a, c| a + *c)
    }

    fn reason(&self, reason: Reason) -> Counters {
        self.counters(maps::REASON_STATS, reason as u32)
    }

    /// Runs a case; returns a description of what went wrong, if anything.
    fn check(&mut self, c: &Case) -> Result<(), String> {
        if self.hook.refuses(&c.input) {
            println!(
                "{}: not run through {:?} (the test run refuses it)",
                c.name, self.hook
            );
            return Ok(());
        }
        let reason = match c.expect {
            Expect::Tx(_) => Reason::Forwarded,
            Expect::IcmpTx(_) => Reason::ForwardedIcmpError,
            Expect::UntrackedTx(_) => Reason::ForwardedUntracked,
            Expect::Pass(r) | Expect::Drop(r) => r,
        };
        let before = self.reason(reason);
        let (action, out) = self.run(&c.input);
        let (want_action, want) = match c.expect {
            Expect::Tx(real) | Expect::IcmpTx(real) | Expect::UntrackedTx(real) => {
                (XDP_TX, rewritten(&c.input, real))
            }
            Expect::Pass(_) => (XDP_PASS, c.input.clone()),
            // A dropped frame's bytes go nowhere: whatever the test run
            // copies back is not compared.
            Expect::Drop(_) => (XDP_DROP, out.clone()),
        };
        if action != want_action {
            return Err(format!(
                "{}: verdict {} ({}), want {} ({:?})",
                c.name,
                action,
                action_name(action),
                want_action,
                c.expect
            ));
        }
        diff(&out, &want).map_err(|d| format!("{}: output differs: {d}", c.name))?;
        let after = self.reason(reason);
        let len = c.input.len() as u64;
        if after.packets != before.packets + 1 || after.bytes != before.bytes + len {
            return Err(format!(
                "{}: REASON_STATS[{}] went from {before:?} to {after:?}, want +1 packet, +{len} bytes",
                c.name,
                reason.name()
            ));
        }
        Ok(())
    }

    /// Runs every case and fails with all the mismatches at once.
    fn check_all(&mut self, cases: &[Case]) {
        let failures: Vec<String> = cases.iter().filter_map(|c| self.check(c).err()).collect();
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n\n")
        );
    }

    /// Runs a packet that must be forwarded and returns the real it went to.
    fn forwarded_to(&self, input: &[u8]) -> u32 {
        let (action, out) = self.run(input);
        assert_eq!(
            action,
            XDP_TX,
            "verdict {} for\n{}",
            action_name(action),
            to_hex(input)
        );
        let mac: [u8; 6] = out[0..6].try_into().expect("6 bytes");
        let real = u32::from(mac[5]);
        assert_eq!(
            mac,
            real_mac(real),
            "destination MAC {mac:02x?} is no real's"
        );
        diff(&out, &rewritten(input, real)).unwrap_or_else(|d| panic!("output differs: {d}"));
        real
    }
}

/// Keeps the test's thread on one CPU: `BPF_PROG_TEST_RUN` runs the program
/// on the caller's CPU, and the flow cache is per CPU, so a test that fills it
/// must read it back from the same CPU.
fn pin_to_current_cpu() {
    // SAFETY: sched_getcpu has no preconditions; a zeroed cpu_set_t is a
    // valid empty set, which CPU_SET and sched_setaffinity only read and write.
    unsafe {
        let cpu = libc::sched_getcpu();
        assert!(cpu >= 0, "sched_getcpu");
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let rc = libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(rc, 0, "sched_setaffinity");
    }
}

fn action_name(action: u32) -> &'static str {
    match action {
        0 => "XDP_ABORTED",
        XDP_DROP => "XDP_DROP",
        XDP_PASS => "XDP_PASS",
        XDP_TX => "XDP_TX",
        UNKNOWN => "a tc verdict the program never gives",
        _ => "?",
    }
}

/// `Err` with the first differing offset and both packets in hex.
fn diff(got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    Err(format!(
        "first difference at byte {at} (got {} bytes, want {})\ngot:\n{}\nwant:\n{}",
        got.len(),
        want.len(),
        to_hex(got),
        to_hex(want)
    ))
}

/// Services shared by the table, each on one real that is up (real 3, of
/// service 0, is down):
/// - id 0: VIP4 TCP 80 on real 1, id 1: VIP4 UDP 53 on real 11, id 2: VIP6
///   TCP 80 on real 21, id 3: VIP6 UDP 53 on real 31;
/// - id 4: VIP4 TCP all ports, on real 2.
fn table_world(hook: Hook) -> Lb {
    table_in(Lb::load_hook(hook))
}

/// [`table_world`]'s services and reals, in a program loaded already.
fn table_in(mut lb: Lb) -> Lb {
    for (real, service) in [(R1, 0), (R_UDP4, 1), (R_TCP6, 2), (R_UDP6, 3), (R2, 4)] {
        lb.real(real, service, true);
    }
    lb.real(R3, 0, false);
    lb.service_with_ring(service_key(VIP4.into(), 80, PROTO_TCP), 0, 0, |_| R1);
    lb.service_with_ring(service_key(VIP4.into(), 53, PROTO_UDP), 1, 0, |_| R_UDP4);
    lb.service_with_ring(service_key(VIP6.into(), 80, PROTO_TCP), 2, 0, |_| R_TCP6);
    lb.service_with_ring(service_key(VIP6.into(), 53, PROTO_UDP), 3, 0, |_| R_UDP6);
    lb.service_with_ring(service_key(VIP4.into(), 0, PROTO_TCP), 4, 0, |_| R2);
    lb
}

fn vlan(tpid: u16, id: u16) -> Vlan {
    Vlan { tpid, tci: id }
}

/// `frame` with the Ethernet header of `f` replaced by one with tags.
fn tagged(f: &[u8], vlans: &[Vlan]) -> Vec<u8> {
    let ether_type = u16::from_be_bytes([f[12], f[13]]);
    ethernet(LB_MAC, ROUTER_MAC, vlans, ether_type, &f[14..])
}

fn v4_tcp(cport: u16, vport: u16) -> Vec<u8> {
    tcp_frame(CLIENT4.into(), cport, VIP4.into(), vport, TCP_SYN)
}

fn v6_tcp(cport: u16, vport: u16) -> Vec<u8> {
    tcp_frame(CLIENT6.into(), cport, VIP6.into(), vport, TCP_SYN)
}

/// An ICMPv4 error from a router about a packet the real sent from the VIP.
fn icmp4_error(icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let router = Ipv4Addr::new(192, 0, 2, 1);
    let m = icmpv4(icmp_type, code, 1400, quoted);
    frame(
        LB_MAC,
        ROUTER_MAC,
        &Ipv4::new(router, VIP4, IPPROTO_ICMP).build(&m),
    )
}

fn icmp6_error(icmp_type: u8, quoted: &[u8]) -> Vec<u8> {
    let m = icmpv6(ROUTER6, VIP6, icmp_type, 0, 1280, quoted);
    frame(
        LB_MAC,
        ROUTER_MAC,
        &Ipv6::new(ROUTER6, VIP6, IPPROTO_ICMPV6).build(&m),
    )
}

/// The packet a real sent from VIP:vport to client:cport, as an ICMP error
/// quotes it.
fn reply4(cport: u16, vport: u16, proto: u8) -> Vec<u8> {
    let seg = match proto {
        IPPROTO_TCP => tcp(
            VIP4.into(),
            CLIENT4.into(),
            vport,
            cport,
            TCP_ACK | TCP_PSH,
            &[0; 1400],
        ),
        _ => udp(VIP4.into(), CLIENT4.into(), vport, cport, &[0; 1400]),
    };
    // Routers quote the IP header and at least 8 bytes; Linux quotes more.
    Ipv4::new(VIP4, CLIENT4, proto).build(&seg)[..548].to_vec()
}

fn reply6(cport: u16, vport: u16) -> Vec<u8> {
    let seg = tcp(
        VIP6.into(),
        CLIENT6.into(),
        vport,
        cport,
        TCP_ACK | TCP_PSH,
        &[0; 1400],
    );
    Ipv6::new(VIP6, CLIENT6, IPPROTO_TCP).build(&seg)[..1184].to_vec()
}

/// A copy of `f` with bytes `at..` replaced by `bytes`.
fn patched(f: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut p = f.to_vec();
    p[at..at + bytes.len()].copy_from_slice(bytes);
    p
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn kernel_table_root() {
    kernel_table(Hook::Xdp);
}

/// The same cases through the tc program: the same verdicts (a redirect
/// for `XDP_TX`, `TCX_NEXT` for `XDP_PASS`, `TC_ACT_SHOT` for `XDP_DROP`)
/// and the same bytes out.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn kernel_table_tc_root() {
    kernel_table(Hook::Tc);
}

fn kernel_table(hook: Hook) {
    let mut lb = table_world(hook);
    use Expect::{IcmpTx, Pass, Tx};
    use Reason::{PassExtHeaders, PassMalformed, PassNotIp, PassNotService};

    let v4 = v4_tcp(40000, 80);
    let v6 = v6_tcp(40000, 80);
    let v4_ip = &v4[14..];
    let v6_ip = &v6[14..];
    let c4: IpAddr = CLIENT4.into();
    let vip4: IpAddr = VIP4.into();
    let c6: IpAddr = CLIENT6.into();
    let vip6: IpAddr = VIP6.into();

    let with_options = {
        let mut ip = Ipv4::new(CLIENT4, VIP4, IPPROTO_TCP);
        // Record route (7) with room for one address, then end of options.
        ip.options = vec![7, 7, 4, 0, 0, 0, 0, 0];
        frame(
            LB_MAC,
            ROUTER_MAC,
            &ip.build(&tcp(c4, vip4, 40001, 80, TCP_SYN, b"x")),
        )
    };
    let v6_ext = |ext: Vec<ExtHeader>, cport: u16| {
        let mut ip = Ipv6::new(CLIENT6, VIP6, IPPROTO_TCP);
        ip.ext = ext;
        frame(
            LB_MAC,
            ROUTER_MAC,
            &ip.build(&tcp(c6, vip6, cport, 80, TCP_SYN, b"x")),
        )
    };
    let hbh = || ExtHeader::options(IPV6_HOP_BY_HOP, 1);
    let dst_opts = |units| ExtHeader::options(IPV6_DEST_OPTS, units);
    let vrrp = {
        let advert = [0x21, 51, 100, 1, 0, 1, 0, 0, 10, 0, 0, 100];
        let mut ip = Ipv4::new(
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(224, 0, 0, 18),
            IPPROTO_VRRP,
        );
        ip.ttl = 255;
        frame([0x01, 0, 0x5e, 0, 0, 0x12], ROUTER_MAC, &ip.build(&advert))
    };
    let vrrp_to_vip = frame(
        LB_MAC,
        ROUTER_MAC,
        &Ipv4::new(CLIENT4, VIP4, IPPROTO_VRRP).build(&[0x21; 20]),
    );
    let arp = ethernet(
        [0xff; 6],
        ROUTER_MAC,
        &[],
        ETH_P_ARP,
        &arp_request(ROUTER_MAC, CLIENT4, VIP4),
    );
    let echo = frame(
        LB_MAC,
        ROUTER_MAC,
        &Ipv4::new(CLIENT4, VIP4, IPPROTO_ICMP).build(&icmpv4(ICMP_ECHO_REQUEST, 0, 1, b"ping")),
    );
    let short_l4 = |proto: u8, seg: &[u8], keep: usize| {
        frame(
            LB_MAC,
            ROUTER_MAC,
            &Ipv4::new(CLIENT4, VIP4, proto).build(&seg[..keep]),
        )
    };
    let tcp4 = tcp(c4, vip4, 40002, 80, TCP_SYN, b"");
    let udp4 = udp(c4, vip4, 40002, 53, b"q");
    let ext_truncated = {
        // A hop-by-hop header claiming 16 bytes where the payload has 8.
        let mut ip = Ipv6::new(CLIENT6, VIP6, 59);
        ip.ext = vec![hbh()];
        let mut p = frame(LB_MAC, ROUTER_MAC, &ip.build(&[]));
        p[14 + 40 + 1] = 1;
        p
    };

    // Service traffic to a group (broadcast, multicast) MAC: not for this
    // host; readdressed, that MAC would become the frame's source.
    let to_mac = |f: &[u8], mac: [u8; 6]| patched(f, 0, &mac);

    let cases = vec![
        // Service traffic, forwarded with only the MACs changed.
        case("v4 tcp to vip", v4.clone(), Tx(R1)),
        case(
            "v4 tcp to vip, broadcast MAC",
            to_mac(&v4, [0xff; 6]),
            Pass(PassNotService),
        ),
        case(
            "v4 tcp to vip, multicast MAC",
            to_mac(&v4, [0x01, 0, 0x5e, 0, 0, 1]),
            Pass(PassNotService),
        ),
        case(
            "v4 tcp to vip, vlan-tagged, broadcast MAC",
            to_mac(&tagged(&v4, &[vlan(ETH_P_8021Q, 10)]), [0xff; 6]),
            Pass(PassNotService),
        ),
        case(
            "v6 tcp to vip, multicast MAC",
            to_mac(&v6, [0x33, 0x33, 0, 0, 0, 1]),
            Pass(PassNotService),
        ),
        case("v4 udp to vip", udp_frame(c4, 40000, vip4, 53), Tx(R_UDP4)),
        case("v6 tcp to vip", v6.clone(), Tx(R_TCP6)),
        case("v6 udp to vip", udp_frame(c6, 40000, vip6, 53), Tx(R_UDP6)),
        case(
            "v4 tcp fin to vip",
            tcp_frame(c4, 40003, vip4, 80, TCP_FIN | TCP_ACK),
            Tx(R1),
        ),
        case(
            "port-0 service takes other ports",
            v4_tcp(40000, 8080),
            Tx(R2),
        ),
        case("ipv4 options forwarded", with_options, Tx(R1)),
        case(
            "v6 hop-by-hop, routing, dest opts forwarded",
            v6_ext(vec![hbh(), ExtHeader::routing(), dst_opts(2)], 40010),
            Tx(R_TCP6),
        ),
        case(
            "v6 four ext headers forwarded",
            v6_ext(
                vec![hbh(), dst_opts(1), ExtHeader::routing(), dst_opts(1)],
                40011,
            ),
            Tx(R_TCP6),
        ),
        case(
            "v6 five ext headers",
            v6_ext(
                vec![
                    hbh(),
                    dst_opts(1),
                    ExtHeader::routing(),
                    dst_opts(1),
                    dst_opts(1),
                ],
                40012,
            ),
            Pass(PassExtHeaders),
        ),
        case(
            "v6 ESP after hop-by-hop",
            {
                let mut ip = Ipv6::new(CLIENT6, VIP6, 50);
                ip.ext = vec![hbh()];
                frame(LB_MAC, ROUTER_MAC, &ip.build(&[0; 16]))
            },
            Pass(PassExtHeaders),
        ),
        case(
            "802.1Q tag kept",
            tagged(&v4, &[vlan(ETH_P_8021Q, 100)]),
            Tx(R1),
        ),
        case(
            "QinQ 88a8+8100 tags kept",
            tagged(&v6, &[vlan(ETH_P_8021AD, 10), vlan(ETH_P_8021Q, 100)]),
            Tx(R_TCP6),
        ),
        case(
            "QinQ 8100+8100 tags kept",
            tagged(&v4, &[vlan(ETH_P_8021Q, 10), vlan(ETH_P_8021Q, 100)]),
            Tx(R1),
        ),
        case(
            "three tags",
            tagged(
                &v4,
                &[
                    vlan(ETH_P_8021AD, 1),
                    vlan(ETH_P_8021Q, 2),
                    vlan(ETH_P_8021Q, 3),
                ],
            ),
            Pass(PassNotIp),
        ),
        // Not service traffic.
        case(
            "non-vip address",
            tcp_frame(c4, 40000, OTHER4.into(), 80, TCP_SYN),
            Pass(PassNotService),
        ),
        case(
            "vip, wrong udp port",
            udp_frame(c4, 40000, vip4, 54),
            Pass(PassNotService),
        ),
        case(
            "vip6, wrong tcp port",
            v6_tcp(40000, 81),
            Pass(PassNotService),
        ),
        case("arp", arp, Pass(PassNotIp)),
        case("vrrp advert", vrrp, Pass(PassNotService)),
        case("vrrp to the vip", vrrp_to_vip, Pass(PassNotService)),
        case("icmp echo to the vip", echo, Pass(PassNotService)),
        // ICMP errors with no flow: the ring's pick for the reversed tuple.
        case(
            "icmp frag needed, tcp",
            icmp4_error(
                ICMP_DEST_UNREACH,
                ICMP_FRAG_NEEDED,
                &reply4(41000, 80, IPPROTO_TCP),
            ),
            IcmpTx(R1),
        ),
        case(
            "icmp port unreachable, udp",
            icmp4_error(ICMP_DEST_UNREACH, 3, &reply4(41000, 53, IPPROTO_UDP)),
            IcmpTx(R_UDP4),
        ),
        case(
            "icmp time exceeded, port-0 service",
            icmp4_error(11, 0, &reply4(41000, 8080, IPPROTO_TCP)),
            IcmpTx(R2),
        ),
        case(
            "icmpv6 packet too big",
            icmp6_error(ICMPV6_PACKET_TOO_BIG, &reply6(41000, 80)),
            IcmpTx(R_TCP6),
        ),
        case(
            "icmp error about a non-service port",
            icmp4_error(
                ICMP_DEST_UNREACH,
                ICMP_FRAG_NEEDED,
                &reply4(41000, 9, IPPROTO_UDP),
            ),
            Pass(PassNotService),
        ),
        case(
            "icmp error to another address quoting a vip packet",
            {
                let m = icmpv4(
                    ICMP_DEST_UNREACH,
                    ICMP_FRAG_NEEDED,
                    1400,
                    &reply4(41000, 80, IPPROTO_TCP),
                );
                frame(
                    LB_MAC,
                    ROUTER_MAC,
                    &Ipv4::new(Ipv4Addr::new(192, 0, 2, 1), OTHER4, IPPROTO_ICMP).build(&m),
                )
            },
            Pass(PassNotService),
        ),
        case(
            "icmpv6 error to another address quoting a vip packet",
            {
                let other6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5);
                let m = icmpv6(
                    ROUTER6,
                    other6,
                    ICMPV6_PACKET_TOO_BIG,
                    0,
                    1280,
                    &reply6(41000, 80),
                );
                frame(
                    LB_MAC,
                    ROUTER_MAC,
                    &Ipv6::new(ROUTER6, other6, IPPROTO_ICMPV6).build(&m),
                )
            },
            Pass(PassNotService),
        ),
        case(
            "icmpv6 echo request",
            frame(
                LB_MAC,
                ROUTER_MAC,
                &Ipv6::new(CLIENT6, VIP6, IPPROTO_ICMPV6)
                    .build(&icmpv6(CLIENT6, VIP6, 128, 0, 1, b"ping")),
            ),
            Pass(PassNotService),
        ),
        // Truncated or inconsistent: never forwarded. (BPF_PROG_TEST_RUN
        // refuses frames shorter than an Ethernet header, so the shortest
        // frame tried is the bare header.)
        case(
            "ethernet header only",
            v4[..14].to_vec(),
            Pass(PassMalformed),
        ),
        case(
            "vlan tag cut",
            tagged(&v4, &[vlan(ETH_P_8021Q, 100)])[..16].to_vec(),
            Pass(PassMalformed),
        ),
        case(
            "second vlan tag cut",
            tagged(&v4, &[vlan(ETH_P_8021AD, 1), vlan(ETH_P_8021Q, 100)])[..20].to_vec(),
            Pass(PassMalformed),
        ),
        case(
            "ipv4 header cut",
            v4[..14 + 12].to_vec(),
            Pass(PassMalformed),
        ),
        case(
            "ipv4 options cut",
            patched(&v4[..14 + 22], 14, &[0x46]),
            Pass(PassMalformed),
        ),
        case("ipv4 ihl 4", patched(&v4, 14, &[0x44]), Pass(PassMalformed)),
        case(
            "ipv4 version 5",
            patched(&v4, 14, &[0x55]),
            Pass(PassMalformed),
        ),
        case(
            "ipv4 total length below header",
            patched(&v4, 16, &[0, 19]),
            Pass(PassMalformed),
        ),
        case(
            "ipv4 total length beyond frame",
            patched(&v4, 16, &(v4_ip.len() as u16 + 1).to_be_bytes()),
            Pass(PassMalformed),
        ),
        case(
            "frame cut inside tcp header",
            v4[..14 + 20 + 10].to_vec(),
            Pass(PassMalformed),
        ),
        case(
            "tcp header cut (consistent lengths)",
            short_l4(IPPROTO_TCP, &tcp4, 10),
            Pass(PassMalformed),
        ),
        case(
            "tcp data offset 4",
            patched(&v4, 14 + 20 + 12, &[0x40]),
            Pass(PassMalformed),
        ),
        case(
            "tcp data offset past the segment",
            patched(&v4, 14 + 20 + 12, &[0xf0]),
            Pass(PassMalformed),
        ),
        case(
            "udp header cut (consistent lengths)",
            short_l4(IPPROTO_UDP, &udp4, 4),
            Pass(PassMalformed),
        ),
        case(
            "ipv6 header cut",
            v6[..14 + 30].to_vec(),
            Pass(PassMalformed),
        ),
        case(
            "ipv6 payload length beyond frame",
            patched(&v6, 14 + 4, &(v6_ip.len() as u16).to_be_bytes()),
            Pass(PassMalformed),
        ),
        case(
            "ipv6 tcp header cut",
            v6[..14 + 40 + 12].to_vec(),
            Pass(PassMalformed),
        ),
        case("ipv6 ext header cut", ext_truncated, Pass(PassMalformed)),
        case(
            "icmp quote without inner ports",
            icmp4_error(
                ICMP_DEST_UNREACH,
                ICMP_FRAG_NEEDED,
                &reply4(41000, 80, IPPROTO_TCP)[..20],
            ),
            Pass(PassMalformed),
        ),
        case(
            "icmp quote cut in inner header",
            icmp4_error(
                ICMP_DEST_UNREACH,
                ICMP_FRAG_NEEDED,
                &reply4(41000, 80, IPPROTO_TCP)[..10],
            ),
            Pass(PassMalformed),
        ),
        case(
            "icmp header cut",
            frame(
                LB_MAC,
                ROUTER_MAC,
                &Ipv4::new(CLIENT4, VIP4, IPPROTO_ICMP).build(&[3, 4, 0, 0]),
            ),
            Pass(PassMalformed),
        ),
        case(
            "icmpv6 quote cut in inner header",
            icmp6_error(ICMPV6_PACKET_TOO_BIG, &reply6(41000, 80)[..30]),
            Pass(PassMalformed),
        ),
        case(
            "icmpv6 quote without inner ports",
            icmp6_error(ICMPV6_PACKET_TOO_BIG, &reply6(41000, 80)[..42]),
            Pass(PassMalformed),
        ),
        case(
            "ipv6 ethertype, ipv4 inside",
            ethernet(LB_MAC, ROUTER_MAC, &[], ETH_P_IPV6, v4_ip),
            Pass(PassMalformed),
        ),
        case(
            "ipv4 ethertype, ipv6 inside",
            ethernet(LB_MAC, ROUTER_MAC, &[], ETH_P_IP, v6_ip),
            Pass(PassMalformed),
        ),
    ];
    lb.check_all(&cases);
}

/// A world with one service per family for the stateful tests: VIP4 UDP 53
/// (id 0), VIP6 UDP 53 (id 1), VIP4 TCP 80 (id 2), rings filled by `slot`.
/// Reals 1-3 are up and belong to service `owner`: only its ring may name
/// them.
fn stateful_world(owner: u32, persist_timeout_s: u32, slot: impl Fn(u32) -> u32 + Copy) -> Lb {
    let mut lb = Lb::load();
    for r in [R1, R2, R3] {
        lb.real(r, owner, true);
    }
    lb.service_with_ring(
        service_key(VIP4.into(), 53, PROTO_UDP),
        0,
        persist_timeout_s,
        slot,
    );
    lb.service_with_ring(
        service_key(VIP6.into(), 53, PROTO_UDP),
        1,
        persist_timeout_s,
        slot,
    );
    lb.service_with_ring(
        service_key(VIP4.into(), 80, PROTO_TCP),
        2,
        persist_timeout_s,
        slot,
    );
    lb
}

fn binding(real: u32, last_seen_ns: u64) -> Binding {
    Binding {
        real,
        flags: 0,
        last_seen_ns,
    }
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn fragments_follow_their_first_fragment_root() {
    // Alternate reals so that a lookup with the wrong ports would likely
    // land elsewhere; the flow entry is then moved to real 3 (in no ring) to
    // prove the later fragment used the first fragment's ports.
    let mut lb = stateful_world(0, 0, |i| if i.is_multiple_of(2) { R1 } else { R2 });
    let (c4, vip4, c6, vip6): (IpAddr, IpAddr, IpAddr, IpAddr) =
        (CLIENT4.into(), VIP4.into(), CLIENT6.into(), VIP6.into());

    let seg4 = udp(c4, vip4, 5000, 53, &[0x55; 64]);
    let ip4 = Ipv4 {
        id: 0x4242,
        ..Ipv4::new(CLIENT4, VIP4, IPPROTO_UDP)
    };
    let frames =
        |(a, b): (Vec<u8>, Vec<u8>)| (frame(LB_MAC, ROUTER_MAC, &a), frame(LB_MAC, ROUTER_MAC, &b));
    let (first4, later4) = frames(ip4.fragments(&seg4, 32));
    let seg6 = udp(c6, vip6, 5000, 53, &[0x66; 64]);
    let (first6, later6) =
        frames(Ipv6::new(CLIENT6, VIP6, IPPROTO_UDP).fragments(&seg6, 32, 0xdead_beef));

    for (name, service, first, later, key) in [
        (
            "v4",
            0,
            &first4,
            &later4,
            flow_key(c4, 5000, vip4, 53, PROTO_UDP),
        ),
        (
            "v6",
            1,
            &first6,
            &later6,
            flow_key(c6, 5000, vip6, 53, PROTO_UDP),
        ),
    ] {
        // The reals move to the service under test (a real has one service).
        for r in [R1, R2, R3] {
            lb.real(r, service, true);
        }
        let real = lb.forwarded_to(first);
        let flow = lb
            .flow(&key)
            .unwrap_or_else(|| panic!("{name}: the first fragment records the flow"));
        assert_eq!(flow.real, real, "{name}");
        lb.set_flow(key, binding(R3, coarse_now_ns()));
        let flows = lb.flow_count();
        assert_eq!(
            lb.forwarded_to(later),
            R3,
            "{name}: the later fragment follows the flow"
        );
        assert_eq!(
            lb.flow_count(),
            flows,
            "{name}: a later fragment creates no flow"
        );
    }

    let orphan4 = Ipv4 { id: 0x4343, ..ip4 }.fragments(&seg4, 32).1;
    let orphan6 = Ipv6::new(CLIENT6, VIP6, IPPROTO_UDP)
        .fragments(&seg6, 32, 7)
        .1;
    lb.check_all(&[
        case(
            "v4 orphan later fragment",
            frame(LB_MAC, ROUTER_MAC, &orphan4),
            Expect::Pass(Reason::PassFragment),
        ),
        case(
            "v6 orphan later fragment",
            frame(LB_MAC, ROUTER_MAC, &orphan6),
            Expect::Pass(Reason::PassFragment),
        ),
    ]);
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn icmp_errors_follow_the_flow_root() {
    // The rings say real 1 (IPv6: 21) for everything; the flows say real 2
    // (IPv6: 22).
    let mut lb = stateful_world(2, 0, |_| R1);
    let vip6: IpAddr = VIP6.into();
    let (ring6, flow6) = (R_TCP6, R_TCP6 + 1);
    lb.real(ring6, 3, true);
    lb.real(flow6, 3, true);
    lb.service_with_ring(service_key(vip6, 80, PROTO_TCP), 3, 0, |_| ring6);
    lb.set_flow(
        flow_key(CLIENT4.into(), 41000, VIP4.into(), 80, PROTO_TCP),
        binding(R2, coarse_now_ns()),
    );
    lb.set_flow(
        flow_key(CLIENT6.into(), 41000, vip6, 80, PROTO_TCP),
        binding(flow6, coarse_now_ns()),
    );
    let flows = lb.flow_count();
    lb.check_all(&[
        case(
            "icmp frag needed to the flow's real",
            icmp4_error(
                ICMP_DEST_UNREACH,
                ICMP_FRAG_NEEDED,
                &reply4(41000, 80, IPPROTO_TCP),
            ),
            Expect::IcmpTx(R2),
        ),
        case(
            "icmpv6 packet too big to the flow's real",
            icmp6_error(ICMPV6_PACKET_TOO_BIG, &reply6(41000, 80)),
            Expect::IcmpTx(flow6),
        ),
        case(
            "icmp frag needed, no flow: the ring's real",
            icmp4_error(
                ICMP_DEST_UNREACH,
                ICMP_FRAG_NEEDED,
                &reply4(41001, 80, IPPROTO_TCP),
            ),
            Expect::IcmpTx(R1),
        ),
    ]);
    assert_eq!(lb.flow_count(), flows, "ICMP errors create no flows");
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn weights_split_new_flows_root() {
    // Real 1 has weight 1, real 2 weight 3: one slot in four is real 1's.
    let lb = stateful_world(0, 0, |i| if i.is_multiple_of(4) { R1 } else { R2 });
    let flows = 4000u32;
    let mut to_r1 = 0;
    for n in 0..flows {
        let client = Ipv4Addr::from(0xc633_6400 + n / 1000);
        let f = udp_frame(client.into(), 10000 + (n % 1000) as u16, VIP4.into(), 53);
        match lb.forwarded_to(&f) {
            R1 => to_r1 += 1,
            R2 => {}
            r => panic!("flow {n} went to real {r}, which is in no ring"),
        }
    }
    let share = f64::from(to_r1) / f64::from(flows);
    assert!(
        (0.22..=0.28).contains(&share),
        "real 1 got {to_r1} of {flows} flows ({share:.3}), want about 0.25"
    );
    let new1 = lb.counters(maps::REAL_STATS, R1).new_flows;
    let new2 = lb.counters(maps::REAL_STATS, R2).new_flows;
    assert_eq!(
        (new1, new2),
        (u64::from(to_r1), u64::from(flows - to_r1)),
        "REAL_STATS new_flows"
    );
    assert_eq!(
        lb.counters(maps::SERVICE_STATS, 0),
        Counters::default(),
        "SERVICE_STATS is the daemon's"
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn drained_and_down_reals_root() {
    // Real 2 has weight 0: in no ring slot, but up.
    let mut lb = stateful_world(0, 0, |_| R1);
    let (c4, vip4): (IpAddr, IpAddr) = (CLIENT4.into(), VIP4.into());
    let old = flow_key(c4, 1000, vip4, 53, PROTO_UDP);
    lb.set_flow(old, binding(R2, coarse_now_ns()));
    assert_eq!(
        lb.forwarded_to(&udp_frame(c4, 1000, vip4, 53)),
        R2,
        "a draining real keeps its flows"
    );
    assert_eq!(
        lb.forwarded_to(&udp_frame(c4, 1001, vip4, 53)),
        R1,
        "a draining real gets no new flow"
    );

    // Real 2 goes down: its flow moves to the ring's pick and the table says so.
    lb.real(R2, 0, false);
    assert_eq!(
        lb.forwarded_to(&udp_frame(c4, 1000, vip4, 53)),
        R1,
        "a flow of a down real is re-picked"
    );
    assert_eq!(
        lb.flow(&old).map(|b| b.real),
        Some(R1),
        "FLOWS updated after the re-pick"
    );

    // Every real down, or a ring of NO_REAL: never forwarded, and dropped
    // rather than given to a local listener.
    lb.real(R1, 0, false);
    lb.set_flow(old, binding(R1, coarse_now_ns()));
    lb.service_with_ring(service_key(VIP6.into(), 53, PROTO_UDP), 1, 0, |_| NO_REAL);
    let no_real = Expect::Drop(Reason::DropNoReal);
    lb.check_all(&[
        case(
            "flow to a down real, ring's real down",
            udp_frame(c4, 1000, vip4, 53),
            no_real,
        ),
        case(
            "new flow, ring's real down",
            udp_frame(c4, 1002, vip4, 53),
            no_real,
        ),
        case(
            "ring of NO_REAL",
            udp_frame(CLIENT6.into(), 1000, VIP6.into(), 53),
            no_real,
        ),
        case(
            "icmp error, flow's real down",
            icmp4_error(
                ICMP_DEST_UNREACH,
                ICMP_FRAG_NEEDED,
                &reply4(1000, 53, IPPROTO_UDP),
            ),
            no_real,
        ),
    ]);
    // A real zeroed in REALS (as the kernel creates it) is down too.
    lb.service_with_ring(service_key(VIP6.into(), 53, PROTO_UDP), 1, 0, |_| 0);
    lb.check_all(&[case(
        "ring of an unset real",
        udp_frame(CLIENT6.into(), 1000, VIP6.into(), 53),
        no_real,
    )]);
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn source_ip_persistence_root() {
    const TIMEOUT_S: u32 = 300;
    let ring = |i: u32| if i.is_multiple_of(2) { R1 } else { R2 };
    let mut lb = stateful_world(0, TIMEOUT_S, ring);
    let (c4, vip4): (IpAddr, IpAddr) = (CLIENT4.into(), VIP4.into());
    let ring_real = |cport: u16| ring(ring_slot(&flow_key(c4, cport, vip4, 53, PROTO_UDP)));

    // Two source ports the ring alone would send to different reals.
    let first = 2000u16;
    let second = (2001..3000)
        .find(|&p| ring_real(p) != ring_real(first))
        .expect("a port the ring sends elsewhere");
    let real = lb.forwarded_to(&udp_frame(c4, first, vip4, 53));
    assert_eq!(real, ring_real(first));
    assert_eq!(
        lb.forwarded_to(&udp_frame(c4, second, vip4, 53)),
        real,
        "same client, same real"
    );
    let pkey = PersistKey {
        client: addr(c4),
        service: 0,
        family: FAMILY_V4,
        _pad: [0; 3],
    };
    assert_eq!(
        lb.persist(&pkey).map(|b| b.real),
        Some(real),
        "PERSIST binding"
    );

    // A binding older than the timeout is replaced by the ring's pick.
    let now = coarse_now_ns();
    // The data plane ages bindings with wrapping arithmetic, so this is
    // "twice the timeout ago" at any uptime, even just after boot.
    let stale = now.wrapping_sub(2 * u64::from(TIMEOUT_S) * 1_000_000_000);
    let third = (3000..4000)
        .find(|&p| ring_real(p) != real)
        .expect("a port the ring sends elsewhere");
    lb.set_persist(pkey, binding(real, stale));
    let picked = lb.forwarded_to(&udp_frame(c4, third, vip4, 53));
    assert_eq!(picked, ring_real(third), "a stale binding does not decide");
    let renewed = lb.persist(&pkey).expect("binding recorded again");
    assert_eq!(renewed.real, picked, "the stale binding is replaced");
    assert!(renewed.last_seen_ns >= now, "and renewed");

    // A fresh binding to a down real does not decide either.
    lb.set_persist(pkey, binding(R3, coarse_now_ns()));
    lb.real(R3, 0, false);
    let fourth = 4000;
    assert_eq!(
        lb.forwarded_to(&udp_frame(c4, fourth, vip4, 53)),
        ring_real(fourth)
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn flow_entries_root() {
    let mut lb = stateful_world(2, 0, |_| R1);
    let (c4, vip4): (IpAddr, IpAddr) = (CLIENT4.into(), VIP4.into());
    let key = flow_key(c4, 3000, vip4, 80, PROTO_TCP);
    let start = coarse_now_ns();
    lb.forwarded_to(&tcp_frame(c4, 3000, vip4, 80, TCP_SYN));
    let flow = lb.flow(&key).expect("a SYN records its flow");
    assert_eq!((flow.real, flow.flags), (R1, 0));
    assert!(flow.last_seen_ns >= start, "last_seen set");

    // Recent: not rewritten. Older than TOUCH_INTERVAL_NS: refreshed.
    // Wrapping, as the data plane ages stamps: valid at any uptime.
    let recent = coarse_now_ns().wrapping_sub(1000);
    lb.set_flow(key, binding(R1, recent));
    lb.forwarded_to(&tcp_frame(c4, 3000, vip4, 80, TCP_ACK));
    assert_eq!(
        lb.flow(&key).map(|b| b.last_seen_ns),
        Some(recent),
        "a recent flow is not rewritten"
    );
    let old = recent.wrapping_sub(2 * lb_common::TOUCH_INTERVAL_NS);
    lb.set_flow(key, binding(R1, old));
    lb.forwarded_to(&tcp_frame(c4, 3000, vip4, 80, TCP_ACK));
    assert_eq!(
        lb.flow(&key).map(|b| b.last_seen_ns),
        Some(old),
        "the cache serves the flow: FLOWS is not read, so not refreshed"
    );
    // The slow path refreshes FLOWS once per TOUCH_INTERVAL_NS; emptying the
    // cache stands for the interval passing.
    lb.clear_flow_cache();
    lb.forwarded_to(&tcp_frame(c4, 3000, vip4, 80, TCP_ACK));
    let touched = lb.flow(&key).expect("flow");
    assert!(
        touched.last_seen_ns >= recent,
        "an idle flow is refreshed: {touched:?}"
    );

    lb.forwarded_to(&tcp_frame(c4, 3000, vip4, 80, TCP_FIN | TCP_ACK));
    assert_eq!(
        lb.flow(&key).map(|b| b.flags),
        Some(FLOW_CLOSING),
        "FIN marks the flow closing"
    );
    let rst = flow_key(c4, 3001, vip4, 80, PROTO_TCP);
    lb.forwarded_to(&tcp_frame(c4, 3001, vip4, 80, TCP_RST));
    assert_eq!(
        lb.flow(&rst).map(|b| b.flags),
        Some(FLOW_CLOSING),
        "RST on a new flow"
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn counters_root() {
    let lb = stateful_world(2, 0, |_| R2);
    let (c4, vip4): (IpAddr, IpAddr) = (CLIENT4.into(), VIP4.into());
    let syn = tcp_frame(c4, 5000, vip4, 80, TCP_SYN);
    let ack = tcp_frame(c4, 5000, vip4, 80, TCP_ACK);
    let other = udp_frame(c4, 5000, vip4, 54);
    for f in [&syn, &ack, &ack] {
        lb.forwarded_to(f);
    }
    let (action, _) = lb.run(&other);
    assert_eq!(action, XDP_PASS);
    let bytes = (syn.len() + 2 * ack.len()) as u64;
    let want = Counters {
        packets: 3,
        bytes,
        new_flows: 1,
    };
    assert_eq!(lb.counters(maps::REAL_STATS, R2), want, "REAL_STATS[2]");
    assert_eq!(
        lb.counters(maps::SERVICE_STATS, 2),
        Counters::default(),
        "a packet is counted in its real's counters alone"
    );
    assert_eq!(
        lb.counters(maps::REAL_STATS, R1),
        Counters::default(),
        "REAL_STATS[1]"
    );
    assert_eq!(
        lb.counters(maps::SERVICE_STATS, 0),
        Counters::default(),
        "SERVICE_STATS[0]"
    );
    assert_eq!(
        lb.reason(Reason::Forwarded),
        Counters {
            new_flows: 0,
            ..want
        },
        "REASON_STATS[forwarded]"
    );
    assert_eq!(
        lb.reason(Reason::PassNotService),
        Counters {
            packets: 1,
            bytes: other.len() as u64,
            new_flows: 0
        },
        "REASON_STATS[pass_not_service]"
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn real_of_another_service_root() {
    // Real 4 is up but belongs to service 1: a flow of service 0 naming it
    // (a number the daemon reused) is re-picked from service 0's ring.
    let mut lb = stateful_world(0, 0, |_| R1);
    lb.real(R4, 1, true);
    let (c4, vip4): (IpAddr, IpAddr) = (CLIENT4.into(), VIP4.into());
    let key = flow_key(c4, 6000, vip4, 53, PROTO_UDP);
    lb.set_flow(key, binding(R4, coarse_now_ns()));
    assert_eq!(
        lb.forwarded_to(&udp_frame(c4, 6000, vip4, 53)),
        R1,
        "a flow naming another service's real is re-picked"
    );
    assert_eq!(lb.flow(&key).map(|b| b.real), Some(R1), "and FLOWS says so");

    // The same for a persistence binding.
    let mut lb = stateful_world(0, 300, |_| R1);
    lb.real(R4, 1, true);
    let pkey = PersistKey {
        client: addr(c4),
        service: 0,
        family: FAMILY_V4,
        _pad: [0; 3],
    };
    lb.set_persist(pkey, binding(R4, coarse_now_ns()));
    assert_eq!(
        lb.forwarded_to(&udp_frame(c4, 6001, vip4, 53)),
        R1,
        "a binding to another service's real does not decide"
    );

    // And for a ring that names it: never forwarded there.
    let mut lb = stateful_world(0, 0, |_| R4);
    lb.real(R4, 1, true);
    lb.check_all(&[case(
        "ring naming another service's real",
        udp_frame(c4, 6002, vip4, 53),
        Expect::Drop(Reason::DropNoReal),
    )]);
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn flow_cache_root() {
    let (c4, vip4): (IpAddr, IpAddr) = (CLIENT4.into(), VIP4.into());
    let skey = service_key(vip4, 53, PROTO_UDP);
    let ring2 = rings_of(0)[1];
    // Service 0 moves to a ring of real 2 behind the cache's back.
    let to_real2 = |lb: &mut Lb| {
        lb.ring(ring2, |_| R2);
        lb.service(
            skey,
            Service {
                id: 0,
                ring: ring2,
                persist_timeout_s: 0,
            },
        );
    };

    // The cache is used: with the FLOWS entry gone and the ring changed, the
    // cached flow still goes to its real, and the slow path (which would
    // record a new flow) is not taken.
    let mut lb = stateful_world(0, 0, |_| R1);
    let key = flow_key(c4, 7000, vip4, 53, PROTO_UDP);
    let f = udp_frame(c4, 7000, vip4, 53);
    assert_eq!(lb.forwarded_to(&f), R1, "first packet: the ring's real");
    lb.remove_flow(&key);
    to_real2(&mut lb);
    assert_eq!(lb.forwarded_to(&f), R1, "cached: still real 1");
    assert_eq!(lb.flow(&key), None, "cached: FLOWS not written");
    // The entry is in this CPU's part of the cache, where
    // `lb_common::flow_cache_index` says (the bench picks its flows by its
    // slot), and in no other CPU's.
    // SAFETY: sched_getcpu has no preconditions (the test is pinned).
    let cpu = u32::try_from(unsafe { libc::sched_getcpu() }).expect("sched_getcpu");
    let cache = lb.array::<FlowCacheEntry>(maps::FLOW_CACHE);
    for c in 0..cache.len() / FLOW_CACHE_SIZE {
        let index = flow_cache_index(c, &key.words());
        let e = cache.get(&index, 0).expect("FLOW_CACHE get");
        assert_eq!(
            e.key == key && e.real == R1,
            c == cpu,
            "CPU {c}'s part of the cache, entry {index} (the test runs on CPU {cpu})"
        );
    }
    assert_eq!(
        lb.counters(maps::REAL_STATS, R1),
        Counters {
            packets: 2,
            bytes: 2 * f.len() as u64,
            new_flows: 1
        },
        "cache hits are counted"
    );
    // Once the daemon moves the epoch on (every second, and after its own
    // changes) the slow path decides again.
    lb.next_epoch();
    assert_eq!(lb.forwarded_to(&f), R2, "refreshed: the new ring's real");
    assert_eq!(
        lb.flow(&key).map(|b| b.real),
        Some(R2),
        "refreshed: recorded again"
    );

    // A FIN or RST of a cached flow is served from the cache and marks the
    // flow closing in its FLOWS slot: with the slot re-pointed to real 3 and
    // the TCP service's ring to real 2 behind the cache's back, the packet
    // still goes to real 1, and the closed tuple's next SYN is a new flow.
    let tcp_ring2 = rings_of(2)[1];
    let tcp_to_real2 = |lb: &mut Lb| {
        lb.ring(tcp_ring2, |_| R2);
        lb.service(
            service_key(vip4, 80, PROTO_TCP),
            Service {
                id: 2,
                ring: tcp_ring2,
                persist_timeout_s: 0,
            },
        );
    };
    for (port, closing) in [(7001, TCP_FIN | TCP_ACK), (7002, TCP_RST)] {
        let mut lb = stateful_world(2, 0, |_| R1);
        let tkey = flow_key(c4, port, vip4, 80, PROTO_TCP);
        let ack = tcp_frame(c4, port, vip4, 80, TCP_ACK);
        assert_eq!(lb.forwarded_to(&ack), R1);
        tcp_to_real2(&mut lb);
        let old = coarse_now_ns().wrapping_sub(2 * lb_common::TOUCH_INTERVAL_NS);
        lb.set_flow(tkey, binding(R3, old));
        let fin = tcp_frame(c4, port, vip4, 80, closing);
        assert_eq!(lb.forwarded_to(&fin), R1, "{closing:#x}: from the cache");
        let flow = lb.flow(&tkey).expect("still recorded");
        assert_eq!(
            (flow.real, flow.flags),
            (R3, FLOW_CLOSING),
            "{closing:#x} of a cached flow marks FLOWS"
        );
        assert!(flow.last_seen_ns > old, "and refreshes it: {flow:?}");
        assert_eq!(
            lb.counters(maps::REAL_STATS, R1).new_flows,
            1,
            "{closing:#x}: no new flow"
        );
        let syn = tcp_frame(c4, port, vip4, 80, TCP_SYN);
        assert_eq!(lb.forwarded_to(&syn), R2, "the closed tuple reopened");
    }

    // A SYN's decision fills the cache: the handshake's ACK is served from
    // it, with the flow gone from FLOWS and the ring moved on. A SYN above
    // the flood guard's rate (untracked) fills nothing: its ACK follows the
    // ring, as the SYN did.
    let mut lb = stateful_world(2, 0, |_| R1);
    lb.set_config(flood_guard(1, 1));
    let (tracked, untracked) = (
        flow_key(c4, 7005, vip4, 80, PROTO_TCP),
        flow_key(c4, 7006, vip4, 80, PROTO_TCP),
    );
    assert_eq!(lb.forwarded_to(&tcp_frame(c4, 7005, vip4, 80, TCP_SYN)), R1);
    let syn = tcp_frame(c4, 7006, vip4, 80, TCP_SYN);
    lb.check_all(&[case("SYN above the rate", syn, Expect::UntrackedTx(R1))]);
    lb.remove_flow(&tracked);
    tcp_to_real2(&mut lb);
    assert_eq!(
        lb.forwarded_to(&tcp_frame(c4, 7005, vip4, 80, TCP_ACK)),
        R1,
        "the SYN's decision, from the cache"
    );
    assert_eq!(lb.flow(&tracked), None, "cached: FLOWS not written");
    lb.check_all(&[case(
        "ACK of the untracked SYN",
        tcp_frame(c4, 7006, vip4, 80, TCP_ACK),
        Expect::UntrackedTx(R2),
    )]);
    assert_eq!(lb.flow(&untracked), None);

    // A FIN whose cached slot now holds another flow is decided by the slow
    // path, and the other flow is left alone.
    let mut lb = stateful_world(2, 0, |_| R1);
    let tkey = flow_key(c4, 7003, vip4, 80, PROTO_TCP);
    assert_eq!(lb.forwarded_to(&tcp_frame(c4, 7003, vip4, 80, TCP_ACK)), R1);
    tcp_to_real2(&mut lb);
    let (index, mut bucket) = lb.flow_bucket(&tkey);
    let way = bucket.find(&tkey).expect("recorded");
    let other = FlowKey {
        sport: 7004u16.to_be(),
        ..tkey
    };
    bucket.set(way, other, &binding(R1, coarse_now_ns()));
    lb.set_flow_bucket(index, bucket);
    let fin = tcp_frame(c4, 7003, vip4, 80, TCP_FIN | TCP_ACK);
    assert_eq!(lb.forwarded_to(&fin), R2, "the slow path decided the FIN");
    assert_eq!(
        lb.flow(&tkey).map(|b| (b.real, b.flags)),
        Some((R2, FLOW_CLOSING)),
        "recorded again, closing"
    );
    let (_, bucket) = lb.flow_bucket(&tkey);
    let kept = bucket.slots[way];
    assert_eq!(
        (kept.key, kept.flags),
        (other, 0),
        "the other flow unmarked"
    );

    // The cached real goes down: re-picked at once.
    let mut lb = stateful_world(0, 0, |_| R1);
    assert_eq!(lb.forwarded_to(&f), R1);
    assert_eq!(lb.forwarded_to(&f), R1, "cached");
    to_real2(&mut lb);
    lb.real(R1, 0, false);
    assert_eq!(lb.forwarded_to(&f), R2, "cached real down: re-picked");
    assert_eq!(lb.flow(&key).map(|b| b.real), Some(R2), "FLOWS re-pointed");

    // The cached real's number is reused by another service: re-picked.
    let mut lb = stateful_world(0, 0, |_| R1);
    assert_eq!(lb.forwarded_to(&f), R1);
    to_real2(&mut lb);
    lb.real(R1, 1, true);
    assert_eq!(
        lb.forwarded_to(&f),
        R2,
        "cached real now another service's: re-picked"
    );

    // The service is deleted and the daemon zeroes its reals: the cached
    // flow falls to the slow path, which passes it.
    let mut lb = stateful_world(0, 0, |_| R1);
    assert_eq!(lb.forwarded_to(&f), R1);
    lb.remove_service(&skey);
    for r in [R1, R2, R3] {
        lb.set_real(r, Real::default());
    }
    lb.check_all(&[case(
        "cached flow of a deleted service",
        f.clone(),
        Expect::Pass(Reason::PassNotService),
    )]);
    // The refused entry is invalidated: a real that comes back under another
    // service is not used from the cache either.
    lb.real(R1, 0, true);
    lb.check_all(&[case(
        "after the pass, still not served from the cache",
        f.clone(),
        Expect::Pass(Reason::PassNotService),
    )]);
}

/// A flood guard of `rate` new flows per second per CPU after `burst`.
fn flood_guard(rate: u32, burst: u32) -> DataplaneConfig {
    let (new_flow_cost_ns, new_flow_burst_ns) = DataplaneConfig::flood_guard(rate, burst);
    DataplaneConfig {
        new_flow_cost_ns,
        new_flow_burst_ns,
        ..DataplaneConfig::default()
    }
}

/// Client `n` of many, each its own address (persistence binds per client).
fn client(n: u32) -> IpAddr {
    Ipv4Addr::from(0xc633_6400 + n).into()
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn flood_guard_root() {
    const BURST: u32 = 10;
    let ring = |i: u32| if i.is_multiple_of(2) { R1 } else { R2 };
    let ring_real = |c: IpAddr| ring(ring_slot(&flow_key(c, 9000, VIP4.into(), 53, PROTO_UDP)));
    // Persistence on: a refused flow must not create a binding either.
    let mut lb = stateful_world(0, 300, ring);
    // One new flow per second after a burst of ten: the test sends far
    // faster, so exactly the burst is admitted.
    lb.set_config(flood_guard(1, BURST));
    let vip4: IpAddr = VIP4.into();

    // Under the limit: recorded, with their persistence.
    let mut established = Vec::new();
    for n in 0..BURST {
        let real = lb.forwarded_to(&udp_frame(client(n), 9000, vip4, 53));
        let key = flow_key(client(n), 9000, vip4, 53, PROTO_UDP);
        assert_eq!(
            lb.flow(&key).map(|b| b.real),
            Some(real),
            "flow {n} recorded"
        );
        established.push((n, real));
    }
    assert_eq!(lb.new_flows(&[R1, R2]), u64::from(BURST));

    // Above it: forwarded to the ring's real, counted, not recorded.
    let flood = 2000u32;
    let flows = lb.flow_count();
    let cases: Vec<Case> = (BURST..BURST + flood)
        .map(|n| {
            case(
                "flood flow",
                udp_frame(client(n), 9000, vip4, 53),
                Expect::UntrackedTx(ring_real(client(n))),
            )
        })
        .collect();
    lb.check_all(&cases);
    assert_eq!(lb.flow_count(), flows, "no flow recorded above the rate");
    for n in [BURST, BURST + flood / 2, BURST + flood - 1] {
        let pkey = PersistKey {
            client: addr(client(n)),
            service: 0,
            family: FAMILY_V4,
            _pad: [0; 3],
        };
        assert_eq!(lb.persist(&pkey), None, "no binding for flood client {n}");
    }
    assert_eq!(
        lb.reason(Reason::ForwardedUntracked).packets,
        u64::from(flood),
        "REASON_STATS[forwarded_untracked]"
    );
    assert_eq!(
        lb.new_flows(&[R1, R2]),
        u64::from(BURST),
        "untracked flows are no new flows"
    );

    // The established flows survived the burst, in the table and on the
    // slow path (the cache emptied), still forwarded as tracked flows.
    lb.clear_flow_cache();
    let cases: Vec<Case> = established
        .iter()
        .map(|&(n, real)| {
            case(
                "established flow after the flood",
                udp_frame(client(n), 9000, vip4, 53),
                Expect::Tx(real),
            )
        })
        .collect();
    lb.check_all(&cases);

    // Credit comes back with time: one flow per second, a burst of one, and
    // a pause longer than one flow's cost admits exactly one (a second
    // between the two packets, not a tenth, so that a loaded machine running
    // the other tests beside this one cannot earn it another).
    lb.set_config(flood_guard(1, 1));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (a, b) = (client(100_000), client(100_001));
    lb.check_all(&[
        case(
            "after a pause: recorded",
            udp_frame(a, 9000, vip4, 53),
            Expect::Tx(ring_real(a)),
        ),
        case(
            "credit spent again: untracked",
            udp_frame(b, 9000, vip4, 53),
            Expect::UntrackedTx(ring_real(b)),
        ),
    ]);
    assert!(lb.flow(&flow_key(a, 9000, vip4, 53, PROTO_UDP)).is_some());
    assert!(lb.flow(&flow_key(b, 9000, vip4, 53, PROTO_UDP)).is_none());

    // Rate 0: no guard.
    lb.set_config(DataplaneConfig::default());
    let c = client(100_002);
    lb.check_all(&[case(
        "guard off: recorded",
        udp_frame(c, 9000, vip4, 53),
        Expect::Tx(ring_real(c)),
    )]);
    assert!(lb.flow(&flow_key(c, 9000, vip4, 53, PROTO_UDP)).is_some());
}

/// A bucket of `FLOWS` full of live flows takes no new flow, which goes by
/// the ring unrecorded, while its flows keep their reals; an emptied or idle
/// way is taken again. A table sized for three flows is one bucket: every
/// flow lands in it.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn full_flow_bucket_root() {
    const WAYS: u32 = FLOW_WAYS as u32;
    let ring = |i: u32| if i.is_multiple_of(2) { R1 } else { R2 };
    let mut lb = Lb::load_with_flows(3);
    assert_eq!(
        tests::flows::buckets(&lb.array::<FlowLine>(maps::FLOWS)),
        1,
        "one bucket"
    );
    // UDP: reals 1 and 2; TCP: real 4.
    for r in [R1, R2] {
        lb.real(r, 0, true);
    }
    lb.real(R4, 1, true);
    let vip4: IpAddr = VIP4.into();
    lb.service_with_ring(service_key(vip4, 53, PROTO_UDP), 0, 0, ring);
    lb.service_with_ring(service_key(vip4, 80, PROTO_TCP), 1, 0, |_| R4);
    let udp_real = |c: IpAddr| ring(ring_slot(&flow_key(c, 9000, vip4, 53, PROTO_UDP)));
    let tcp_real = |_: IpAddr| R4;
    let mut established = Vec::new();
    for n in 0..WAYS {
        let real = lb.forwarded_to(&udp_frame(client(n), 9000, vip4, 53));
        established.push((n, real));
    }
    assert_eq!(lb.flow_count(), WAYS as usize, "full");
    let (udp_new, tcp_new) = (client(1000), client(1001));
    lb.check_all(&[
        case(
            "full: a new UDP flow goes by the ring, unrecorded",
            udp_frame(udp_new, 9000, vip4, 53),
            Expect::UntrackedTx(udp_real(udp_new)),
        ),
        case(
            "full: a SYN too",
            tcp_frame(tcp_new, 9000, vip4, 80, TCP_SYN),
            Expect::UntrackedTx(tcp_real(tcp_new)),
        ),
        case(
            "full: its next packet again",
            tcp_frame(tcp_new, 9000, vip4, 80, TCP_ACK),
            Expect::UntrackedTx(tcp_real(tcp_new)),
        ),
    ]);
    assert_eq!(lb.flow(&flow_key(udp_new, 9000, vip4, 53, PROTO_UDP)), None);
    assert_eq!(lb.flow(&flow_key(tcp_new, 9000, vip4, 80, PROTO_TCP)), None);
    assert_eq!(lb.reason(Reason::ForwardedUntracked).packets, 3);
    // The table's flows keep their reals, from the table (cache emptied).
    lb.clear_flow_cache();
    let cases: Vec<Case> = established
        .iter()
        .map(|&(n, real)| {
            case(
                "full: a recorded flow",
                udp_frame(client(n), 9000, vip4, 53),
                Expect::Tx(real),
            )
        })
        .collect();
    lb.check_all(&cases);
    // Room again (the daemon's scan emptied an idle way): recorded.
    lb.remove_flow(&flow_key(client(1), 9000, vip4, 53, PROTO_UDP));
    lb.check_all(&[case(
        "room again: recorded",
        tcp_frame(tcp_new, 9000, vip4, 80, TCP_SYN),
        Expect::Tx(tcp_real(tcp_new)),
    )]);
    assert!(
        lb.flow(&flow_key(tcp_new, 9000, vip4, 80, PROTO_TCP))
            .is_some()
    );
    // No way empty, one idle (no daemon emptied it): another tuple's new
    // flow takes it.
    let aged = flow_key(client(2), 9000, vip4, 53, PROTO_UDP);
    let (index, mut bucket) = lb.flow_bucket(&aged);
    let way = bucket.find(&aged).expect("client 2 is recorded");
    bucket.slots[way].last_seen_ns = coarse_now_ns().wrapping_sub(400 * S);
    lb.set_flow_bucket(index, bucket);
    lb.check_all(&[case(
        "full but for an idle way: recorded there",
        udp_frame(udp_new, 9000, vip4, 53),
        Expect::Tx(udp_real(udp_new)),
    )]);
    let (_, bucket) = lb.flow_bucket(&aged);
    assert_eq!(
        bucket.find(&flow_key(udp_new, 9000, vip4, 53, PROTO_UDP)),
        Some(way),
        "in the idle flow's way"
    );
    assert_eq!(bucket.find(&aged), None);
}

/// A way whose tag does not check its key (a write caught half done) is not
/// followed: the packet goes by the ring, and its flow is recorded again.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_torn_flow_way_is_not_followed_root() {
    let mut lb = Lb::load_with_flows(3);
    for r in [R1, R2, R3] {
        lb.real(r, 0, true);
    }
    let vip4: IpAddr = VIP4.into();
    lb.service_with_ring(service_key(vip4, 80, PROTO_TCP), 0, 0, |_| R1);
    let (torn, other) = (
        flow_key(client(1), 9000, vip4, 80, PROTO_TCP),
        flow_key(client(2), 9000, vip4, 80, PROTO_TCP),
    );
    // The key of one flow under the tag (check and real) of another.
    let (index, mut bucket) = lb.flow_bucket(&torn);
    bucket.set(0, torn, &binding(R2, coarse_now_ns()));
    bucket.tags[0] = tag_of(other.hash(), R3);
    lb.set_flow_bucket(index, bucket);
    assert_eq!(lb.flow(&torn), None);
    lb.check_all(&[case(
        "torn: by the ring, not the way's real",
        tcp_frame(client(1), 9000, vip4, 80, TCP_ACK),
        Expect::Tx(R1),
    )]);
    assert_eq!(lb.flow(&torn).map(|b| b.real), Some(R1), "recorded again");
}

const S: u64 = 1_000_000_000;

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn idle_timeouts_root() {
    // The rings say real 1; the flows say real 2.
    let mut lb = stateful_world(0, 0, |_| R1);
    let (c4, vip4): (IpAddr, IpAddr) = (CLIENT4.into(), VIP4.into());
    // Idle for `age_s`, wrapping as the data plane ages stamps.
    let aged = |age_s: u64, flags: u32| Binding {
        real: R2,
        flags,
        last_seen_ns: coarse_now_ns().wrapping_sub(age_s * S),
    };
    // IPVS's defaults with an all-zero CONFIG: udp 300 s, tcp 900 s, tcpfin 120 s.
    let udp_key = |p| flow_key(c4, p, vip4, 53, PROTO_UDP);
    let tcp_key = |p| flow_key(c4, p, vip4, 80, PROTO_TCP);
    // TCP 80 moves to service 0, whose reals 1 and 2 are.
    lb.service_with_ring(service_key(vip4, 80, PROTO_TCP), 0, 0, |_| R1);
    lb.set_flow(udp_key(100), aged(290, 0));
    lb.set_flow(udp_key(101), aged(310, 0));
    lb.set_flow(tcp_key(102), aged(890, 0));
    lb.set_flow(tcp_key(103), aged(910, 0));
    lb.set_flow(tcp_key(104), aged(110, FLOW_CLOSING));
    lb.set_flow(tcp_key(105), aged(130, FLOW_CLOSING));
    let ack = |p| tcp_frame(c4, p, vip4, 80, TCP_ACK);
    lb.check_all(&[
        case(
            "udp idle 290 s: kept",
            udp_frame(c4, 100, vip4, 53),
            Expect::Tx(R2),
        ),
        case(
            "udp idle 310 s: new",
            udp_frame(c4, 101, vip4, 53),
            Expect::Tx(R1),
        ),
        case("tcp idle 890 s: kept", ack(102), Expect::Tx(R2)),
        case("tcp idle 910 s: new", ack(103), Expect::Tx(R1)),
        case("tcpfin idle 110 s: kept", ack(104), Expect::Tx(R2)),
        case("tcpfin idle 130 s: new", ack(105), Expect::Tx(R1)),
    ]);
    let expired = lb.flow(&udp_key(101)).expect("recorded again");
    assert_eq!(
        (expired.real, expired.flags),
        (R1, 0),
        "the expired entry is overwritten"
    );
    assert!(expired.last_seen_ns >= coarse_now_ns() - 2 * S);
    let closed = lb.flow(&tcp_key(105)).expect("recorded again");
    assert_eq!(
        (closed.real, closed.flags),
        (R1, 0),
        "a new flow, not closing"
    );

    // Timeouts from CONFIG (`adm --set 60 20 10`).
    lb.set_config(DataplaneConfig {
        tcp_timeout_s: 60,
        tcpfin_timeout_s: 20,
        udp_timeout_s: 10,
        ..DataplaneConfig::default()
    });
    lb.set_flow(udp_key(110), aged(5, 0));
    lb.set_flow(udp_key(111), aged(15, 0));
    lb.set_flow(tcp_key(112), aged(50, 0));
    lb.set_flow(tcp_key(113), aged(70, 0));
    lb.set_flow(tcp_key(114), aged(15, FLOW_CLOSING));
    lb.set_flow(tcp_key(115), aged(25, FLOW_CLOSING));
    lb.check_all(&[
        case(
            "udp 5 s of 10: kept",
            udp_frame(c4, 110, vip4, 53),
            Expect::Tx(R2),
        ),
        case(
            "udp 15 s of 10: new",
            udp_frame(c4, 111, vip4, 53),
            Expect::Tx(R1),
        ),
        case("tcp 50 s of 60: kept", ack(112), Expect::Tx(R2)),
        case("tcp 70 s of 60: new", ack(113), Expect::Tx(R1)),
        case("tcpfin 15 s of 20: kept", ack(114), Expect::Tx(R2)),
        case("tcpfin 25 s of 20: new", ack(115), Expect::Tx(R1)),
    ]);
    // An ICMP error follows only a live flow too.
    lb.set_flow(udp_key(120), aged(15, 0));
    lb.check_all(&[case(
        "icmp error about an expired flow: the ring's real",
        icmp4_error(ICMP_DEST_UNREACH, 3, &reply4(120, 53, IPPROTO_UDP)),
        Expect::IcmpTx(R1),
    )]);
    assert_eq!(
        lb.flow(&udp_key(120)).map(|b| b.real),
        Some(R2),
        "ICMP records nothing"
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn syn_reopens_a_closed_tuple_root() {
    let mut lb = stateful_world(2, 0, |_| R1);
    let (c4, vip4): (IpAddr, IpAddr) = (CLIENT4.into(), VIP4.into());
    let key = |p| flow_key(c4, p, vip4, 80, PROTO_TCP);
    let now = coarse_now_ns();
    lb.set_flow(
        key(200),
        Binding {
            real: R2,
            flags: FLOW_CLOSING,
            last_seen_ns: now,
        },
    );
    lb.set_flow(
        key(201),
        Binding {
            real: R2,
            flags: 0,
            last_seen_ns: now,
        },
    );
    lb.set_flow(
        key(202),
        Binding {
            real: R2,
            flags: FLOW_CLOSING,
            last_seen_ns: now,
        },
    );
    lb.check_all(&[
        case(
            "SYN on a closing tuple: a new flow",
            tcp_frame(c4, 200, vip4, 80, TCP_SYN),
            Expect::Tx(R1),
        ),
        case(
            "SYN on an open tuple (retransmit): the flow's real",
            tcp_frame(c4, 201, vip4, 80, TCP_SYN),
            Expect::Tx(R2),
        ),
        case(
            "ACK on a closing tuple: the flow's real",
            tcp_frame(c4, 202, vip4, 80, TCP_ACK),
            Expect::Tx(R2),
        ),
    ]);
    let reopened = lb.flow(&key(200)).expect("recorded");
    assert_eq!(
        (reopened.real, reopened.flags),
        (R1, 0),
        "a fresh, open flow"
    );
    assert_eq!((lb.new_flows(&[R1]), lb.new_flows(&[R2])), (1, 0));
}

/// A tuple reopened after its connection closed goes where the ring sends
/// the new connection, packet after packet: no state of the old connection
/// (the per-CPU cache's entry, the closed way) keeps its real.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_reopened_tuple_keeps_nothing_of_the_old_connection_root() {
    pin_to_current_cpu();
    // The ring names real 1; the old connections were on real 2.
    let mut lb = stateful_world(2, 0, |_| R1);
    let (c4, vip4): (IpAddr, IpAddr) = (CLIENT4.into(), VIP4.into());
    let key = |p| flow_key(c4, p, vip4, 80, PROTO_TCP);
    let on_real2 = |flags| Binding {
        real: R2,
        flags,
        last_seen_ns: coarse_now_ns(),
    };
    lb.set_flow(key(300), on_real2(0));
    lb.check_all(&[
        case(
            "ACK of the old connection: its real (and now cached)",
            tcp_frame(c4, 300, vip4, 80, TCP_ACK),
            Expect::Tx(R2),
        ),
        case(
            "its FIN",
            tcp_frame(c4, 300, vip4, 80, TCP_FIN | TCP_ACK),
            Expect::Tx(R2),
        ),
        case(
            "SYN of a new connection on the tuple: the ring's real",
            tcp_frame(c4, 300, vip4, 80, TCP_SYN),
            Expect::Tx(R1),
        ),
        case(
            "its ACK: the new connection's real, not the cached one",
            tcp_frame(c4, 300, vip4, 80, TCP_ACK),
            Expect::Tx(R1),
        ),
    ]);

    // Above the flood guard's rate the new connection is not recorded: the
    // closed way must not decide its later packets either.
    lb.set_config(flood_guard(1, 1));
    lb.check(&case(
        "the one new flow the burst admits",
        tcp_frame(c4, 400, vip4, 80, TCP_SYN),
        Expect::Tx(R1),
    ))
    .unwrap();
    lb.set_flow(key(301), on_real2(FLOW_CLOSING));
    lb.check_all(&[
        case(
            "SYN on the closed tuple, above the rate: the ring's real, untracked",
            tcp_frame(c4, 301, vip4, 80, TCP_SYN),
            Expect::UntrackedTx(R1),
        ),
        case(
            "its ACK: the ring's real again, not the closed way's",
            tcp_frame(c4, 301, vip4, 80, TCP_ACK),
            Expect::UntrackedTx(R1),
        ),
    ]);
    assert_eq!(lb.flow(&key(301)), None, "the closed way is gone");
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn no_new_real_keeps_flows_but_takes_no_new_ones_root() {
    // Real 2 is up with REAL_NO_NEW (weight 0: drained, or failed with
    // inhibit_on_failure) and in no ring.
    let mut lb = stateful_world(0, 300, |_| R1);
    lb.set_real(
        R2,
        Real {
            mac: real_mac(R2),
            flags: REAL_UP | REAL_NO_NEW,
            service: 0,
        },
    );
    let (vip4, a, b) = (IpAddr::from(VIP4), client(1), client(2));
    let pkey = |c: IpAddr| PersistKey {
        client: addr(c),
        service: 0,
        family: FAMILY_V4,
        _pad: [0; 3],
    };
    let now = coarse_now_ns();
    lb.set_flow(flow_key(a, 300, vip4, 53, PROTO_UDP), binding(R2, now));
    lb.set_persist(pkey(a), binding(R2, now));
    lb.set_persist(pkey(b), binding(R2, now));
    lb.check_all(&[
        case(
            "established flow on the drained real: kept",
            udp_frame(a, 300, vip4, 53),
            Expect::Tx(R2),
        ),
        case(
            "new flow of a client bound to it: the ring's real",
            udp_frame(a, 301, vip4, 53),
            Expect::Tx(R1),
        ),
        case(
            "another bound client's new flow: the ring's real",
            udp_frame(b, 302, vip4, 53),
            Expect::Tx(R1),
        ),
    ]);
    assert_eq!(
        lb.persist(&pkey(a)).map(|p| p.real),
        Some(R1),
        "rebound to an open real"
    );
    assert_eq!(
        lb.persist(&pkey(b)).map(|p| p.real),
        Some(R1),
        "rebound to an open real"
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn no_real_pass_through_is_an_option_root() {
    let mut lb = stateful_world(0, 0, |_| NO_REAL);
    let f = udp_frame(CLIENT4.into(), 400, VIP4.into(), 53);
    lb.check_all(&[case(
        "default: dropped",
        f.clone(),
        Expect::Drop(Reason::DropNoReal),
    )]);
    lb.set_config(DataplaneConfig {
        flags: CONFIG_PASS_NO_REAL,
        ..DataplaneConfig::default()
    });
    lb.check_all(&[case(
        "CONFIG_PASS_NO_REAL: to the local stack",
        f,
        Expect::Pass(Reason::PassNoReal),
    )]);
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn mutated_frames_root() {
    mutated_frames(Hook::Xdp);
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn mutated_frames_tc_root() {
    mutated_frames(Hook::Tc);
}

fn mutated_frames(hook: Hook) {
    // 200,000 frames mutated from the table's forwarded frames: none
    // aborted, every XDP_TX valid service traffic with only its MACs
    // changed, everything else passed untouched or dropped for a service
    // (see tests::mutate). `cargo xtask bench` runs 10^6.
    let mut lb = Lb::load_hook(hook);
    tests::mutate::configure(&mut lb.ebpf).expect("the table's world");
    let started = std::time::Instant::now();
    let s = tests::mutate::run(&lb.ebpf, hook, 200_000, 0x5eed_0001)
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("{s:?} in {:.1?}", started.elapsed());
    assert_eq!(s.frames + s.refused, 200_000);
    assert!(
        s.refused < s.frames / 5,
        "the test run refused too many frames to judge the program: {s:?}"
    );
    assert!(
        s.tx > s.frames / 20 && s.pass > s.frames / 20,
        "the mutations must leave both forwarded and refused frames: {s:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:.1?}",
        started.elapsed()
    );
}

/// `TUNSETIFF`, `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NAPI: libc::c_short = 0x0010;
/// Each written segment after the first becomes a page fragment.
const IFF_NAPI_FRAGS: libc::c_short = 0x0020;
const IFF_NO_PI: libc::c_short = 0x1000;

/// A tap whose frames reach the stack with nothing but the Ethernet header
/// in the skb's linear part (`IFF_NAPI_FRAGS`, GRO off), which
/// `BPF_PROG_TEST_RUN` cannot build.
fn frags_tap(name: &str) -> std::fs::File {
    use std::os::fd::AsRawFd as _;
    let tap = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .expect("/dev/net/tun");
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI | IFF_NAPI | IFF_NAPI_FRAGS;
    // SAFETY: TUNSETIFF reads and writes the ifreq it is given.
    let rc = unsafe { libc::ioctl(tap.as_raw_fd(), TUNSETIFF as _, &mut req) };
    assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    tap
}

/// Writes `frame` as two segments: its Ethernet header, then the rest.
fn write_in_two(tap: &std::fs::File, frame: &[u8]) {
    use std::os::fd::AsRawFd as _;
    let iov = [
        libc::iovec {
            iov_base: frame.as_ptr() as *mut _,
            iov_len: 14,
        },
        libc::iovec {
            iov_base: frame[14..].as_ptr() as *mut _,
            iov_len: frame.len() - 14,
        },
    ];
    // SAFETY: both segments lie inside `frame`.
    let n = unsafe { libc::writev(tap.as_raw_fd(), iov.as_ptr(), 2) };
    assert_eq!(
        n,
        frame.len() as isize,
        "writev: {}",
        std::io::Error::last_os_error()
    );
}

/// The loaded tc program on `interface`'s tcx ingress, in the calling
/// thread's namespace.
fn attach_tc(lb: &mut Lb, interface: &str) {
    use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, tc::TcAttachOptions};
    let prog: &mut SchedClassifier = lb
        .ebpf
        .program_mut(Hook::Tc.program())
        .expect("the tc program")
        .try_into()
        .expect("a classifier");
    prog.attach_with_options(
        interface,
        TcAttachType::Ingress,
        TcAttachOptions::TcxOrder(LinkOrder::default()),
    )
    .expect("tcx attach");
}

/// The next frame the tap sends whose destination MAC is `dst`, within 2 s.
fn read_to(tap: &std::fs::File, dst: [u8; 6]) -> Option<Vec<u8>> {
    use std::os::fd::AsRawFd as _;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut buf = vec![0u8; 2048];
    while std::time::Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: tap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        // SAFETY: reads into `buf`, at most its length.
        let n = unsafe { libc::read(tap.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 && buf[..6] == dst {
            return Some(buf[..n as usize].to_vec());
        }
    }
    None
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn tc_reads_headers_beyond_the_linear_part_root() {
    // On a real interface an skb may carry its headers in page fragments
    // (here: a tap that hands the stack only the Ethernet header linear);
    // the tc program pulls them in and forwards the frame as from a linear
    // one, and leaves node traffic untouched.
    let mut lab = tests::netns::Lab::new("kt").expect("lab");
    let ns = lab.netns("n").expect("namespace");
    let lb = table_world(Hook::Tc);
    let flow = v4_tcp(40000, 80);
    let node = tcp_frame(CLIENT4.into(), 40000, OTHER4.into(), 80, TCP_SYN);
    // Its TCP header past byte 512: the pull reaches as deep as the parser.
    let deep = {
        let (c6, vip6): (IpAddr, IpAddr) = (CLIENT6.into(), VIP6.into());
        let mut ip = Ipv6::new(CLIENT6, VIP6, IPPROTO_TCP);
        ip.ext = vec![ExtHeader::options(IPV6_DEST_OPTS, 64)];
        frame(
            LB_MAC,
            ROUTER_MAC,
            &ip.build(&tcp(c6, vip6, 40001, 80, TCP_SYN, b"x")),
        )
    };
    let (sent, deep_sent) = (flow.clone(), deep.clone());
    let (lb, out, deep_out) = tests::netns::in_netns(&ns, move || {
        let mut lb = lb;
        let tap = frags_tap("tp0");
        for args in [
            &["ethtool", "-K", "tp0", "gro", "off"][..],
            &["sysctl", "-qw", "net.ipv6.conf.tp0.disable_ipv6=1"],
            &["ip", "link", "set", "tp0", "up"],
        ] {
            let st = std::process::Command::new(args[0])
                .args(&args[1..])
                .status()
                .expect(args[0]);
            assert!(st.success(), "{args:?}");
        }
        attach_tc(&mut lb, "tp0");
        write_in_two(&tap, &node);
        write_in_two(&tap, &sent);
        let out = read_to(&tap, real_mac(R1));
        write_in_two(&tap, &deep_sent);
        let deep_out = read_to(&tap, real_mac(R_TCP6));
        (lb, out, deep_out)
    })
    .expect("in the namespace");
    let out = out.expect("the flow's frame leaves the tap for real 1");
    diff(&out, &rewritten(&flow, R1)).unwrap_or_else(|d| panic!("output differs: {d}"));
    let deep_out = deep_out.expect("the deep frame leaves the tap for its real");
    diff(&deep_out, &rewritten(&deep, R_TCP6)).unwrap_or_else(|d| panic!("output differs: {d}"));
    assert_eq!(lb.reason(Reason::Forwarded).packets, 2);
    assert_eq!(lb.reason(Reason::PassNotService).packets, 1);
    assert_eq!(lb.reason(Reason::PassMalformed).packets, 0);
}

/// One frame through the tc program on veth `l0`, whose peer `l0p` is in
/// another namespace, sent from that peer: where the program sends it back
/// (`TC_REDIRECT_PEER`), and how many frames `l0` transmitted meanwhile.
fn through_veth(redirect_peer: bool, input: Vec<u8>, dst: [u8; 6]) -> (Option<Vec<u8>>, u64) {
    let mut lab = tests::netns::Lab::new("kp").expect("lab");
    let (lb_ns, peer_ns) = (
        lab.netns("a").expect("netns"),
        lab.netns("b").expect("netns"),
    );
    let mac = LB_MAC.map(|b| format!("{b:02x}")).join(":");
    for (ns, args) in [
        (
            &lb_ns,
            &[
                "link", "add", "l0", "address", &mac, "type", "veth", "peer", "name", "l0p",
                "netns", &peer_ns,
            ][..],
        ),
        (&lb_ns, &["link", "set", "l0", "up"]),
        (&peer_ns, &["link", "set", "l0p", "up"]),
    ] {
        lab.ip(ns, args).expect("ip");
    }
    for ns in [&lb_ns, &peer_ns] {
        lab.sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1")
            .expect("sysctl");
    }
    let peer = u32::from(redirect_peer);
    let lb = table_in(Lb::load_with(
        EbpfLoader::new().override_global(lb_common::programs::TC_REDIRECT_PEER, &peer, true),
        Hook::Tc,
    ));
    let link = tests::netns::in_netns(&lb_ns, move || {
        let mut lb = lb;
        attach_tc(&mut lb, "l0");
        lb
    })
    .expect("in the namespace");
    let transmitted = || {
        let path = "/sys/class/net/l0/statistics/tx_packets";
        let n = tests::netns::sh("ip", &["netns", "exec", &lb_ns, "cat", path]).expect(path);
        n.trim().parse::<u64>().expect("a count")
    };
    let before = transmitted();
    let out = tests::netns::in_netns(&peer_ns, move || {
        let sock = tests::packet_socket::PacketSocket::bind("l0p").expect("a packet socket on l0p");
        sock.send(&input).expect("send");
        sock.receive_to(dst, std::time::Duration::from_secs(2))
            .expect("receive")
    })
    .expect("in the peer's namespace");
    let sent = transmitted() - before;
    drop(link);
    (out, sent)
}

/// On a veth whose peer is in another namespace the tc program sends a frame
/// straight into the peer (`bpf_redirect_peer`): it arrives there as
/// rewritten, and the veth itself transmits nothing. Beside it the other
/// way, by the veth's egress, which transmits it.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn tc_sends_into_the_veth_peer_root() {
    let flow = v4_tcp(40000, 80);
    for (redirect_peer, transmits) in [(true, 0), (false, 1)] {
        let (out, sent) = through_veth(redirect_peer, flow.clone(), real_mac(R1));
        let out = out.unwrap_or_else(|| {
            panic!("peer redirect {redirect_peer}: nothing reached the peer for real 1")
        });
        diff(&out, &rewritten(&flow, R1)).unwrap_or_else(|d| panic!("output differs: {d}"));
        assert_eq!(
            sent, transmits,
            "peer redirect {redirect_peer}: frames l0 transmitted"
        );
    }
}

/// The verifier walks every path of a program up to a million instructions
/// and then refuses it: a change that nears the limit is caught here, while
/// there is room to restructure, not when the program no longer loads.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn the_programs_verify_with_room_to_spare_root() {
    const LIMIT: u32 = 1_000_000;
    for hook in [Hook::Xdp, Hook::Tc] {
        let lb = Lb::load_hook(hook);
        let name = hook.program();
        let prog = lb.ebpf.program(name).expect("the program");
        let walked = prog
            .info()
            .expect("the program's info")
            .verified_instruction_count()
            .expect("a kernel that reports verified instructions");
        println!("{name}: {walked} instructions verified of {LIMIT}");
        assert!(
            walked < LIMIT / 4 * 3,
            "{name}: the verifier walked {walked} instructions, over three quarters of its \
             limit of {LIMIT}"
        );
    }
}
