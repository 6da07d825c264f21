//! The reconciler against a model of the kernel's maps.

use std::collections::HashMap;

use lb_common::{NO_REAL, REAL_NO_NEW};

use super::*;

/// The maps as the kernel would hold them after the writes so far.
#[derive(Default)]
struct Kernel {
    services: HashMap<ServiceKey, Service>,
    rings: HashMap<u32, u32>,
    reals: HashMap<u32, Real>,
    idents: HashMap<u32, RealIdent>,
    vip_filter: HashMap<u32, u64>,
}

impl Kernel {
    /// Applies writes one by one, checking after each that the XDP program
    /// could never send a packet to a real that is not up.
    fn apply(&mut self, writes: &[Write]) {
        for w in writes {
            match w {
                Write::Real { index, real } => {
                    self.reals.insert(*index, *real);
                }
                Write::Ident { index, ident } => {
                    self.idents.insert(*index, *ident);
                }
                Write::RingSlots { ring, slots } => {
                    for (pos, real) in slots {
                        self.rings.insert(ring * RING_SIZE + pos, *real);
                    }
                }
                Write::Service { key, service } => {
                    self.services.insert(*key, *service);
                }
                Write::DeleteService { key } => {
                    self.services.remove(key);
                }
                Write::VipFilter { word, bits } => {
                    self.vip_filter.insert(*word, *bits);
                }
            }
            self.check_live_rings();
            self.check_vip_filter();
        }
    }

    /// The filter never hides a service the kernel has.
    fn check_vip_filter(&self) {
        for key in self.services.keys() {
            let (word, bit) = lb_common::vip_filter_bit(&key.addr);
            let bits = self.vip_filter.get(&word).copied().unwrap_or(0);
            assert_ne!(bits & bit, 0, "service {key:?} hidden by VIP_FILTER");
        }
    }

    fn check_live_rings(&self) {
        for s in self.services.values() {
            for pos in 0..RING_SIZE {
                let real = self
                    .rings
                    .get(&(s.ring * RING_SIZE + pos))
                    .copied()
                    .unwrap_or(0);
                if real != NO_REAL {
                    let r = self.reals.get(&real).copied().unwrap_or_default();
                    assert_eq!(
                        r.flags & (REAL_UP | REAL_NO_NEW),
                        REAL_UP,
                        "live ring of service {} names real {real}, not up or drained",
                        s.id
                    );
                }
            }
        }
    }

    fn live_ring(&self, key: &ServiceKey) -> Vec<u32> {
        let s = self.services[key];
        (0..RING_SIZE)
            .map(|p| {
                self.rings
                    .get(&(s.ring * RING_SIZE + p))
                    .copied()
                    .unwrap_or(0)
            })
            .collect()
    }
}

const MAC1: Mac = [2, 0, 0, 0, 0, 1];
const MAC2: Mac = [2, 0, 0, 0, 0, 2];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn spec(weights: &[(u32, bool)]) -> ServiceSpec {
    ServiceSpec {
        vip: ip("10.0.0.100"),
        port: 80,
        proto: Proto::Tcp,
        persist_timeout_s: 0,
        reals: weights
            .iter()
            .enumerate()
            .map(|(i, (weight, healthy))| RealSpec {
                addr: ip(&format!("10.0.0.{}", 11 + i)),
                port: 80,
                weight: *weight,
                healthy: *healthy,
                inhibited: false,
            })
            .collect(),
    }
}

fn key() -> ServiceKey {
    service_key(ip("10.0.0.100"), 80, Proto::Tcp)
}

fn share(ring: &[u32], real: u32) -> f64 {
    ring.iter().filter(|r| **r == real).count() as f64 / ring.len() as f64
}

#[test]
fn a_service_without_known_macs_publishes_an_empty_ring() {
    let mut rec = Reconciler::new(4, 16);
    let mut k = Kernel::default();
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (1, true)])])
            .unwrap(),
    );
    assert!(k.live_ring(&key()).iter().all(|r| *r == NO_REAL));
    assert!(
        k.reals.is_empty(),
        "no real is written before its MAC is known"
    );
}

#[test]
fn reals_join_as_their_macs_become_known() {
    let mut rec = Reconciler::new(4, 16);
    let mut k = Kernel::default();
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (3, true)])])
            .unwrap(),
    );
    k.apply(&rec.set_mac(ip("10.0.0.11"), Some(MAC1)).unwrap());
    let ring = k.live_ring(&key());
    assert!(ring.iter().all(|r| *r == 0), "only real 0 is known");
    k.apply(&rec.set_mac(ip("10.0.0.12"), Some(MAC2)).unwrap());
    let ring = k.live_ring(&key());
    assert!((share(&ring, 0) - 0.25).abs() < 0.01, "{}", share(&ring, 0));
    assert!((share(&ring, 1) - 0.75).abs() < 0.01);
    assert_eq!(
        k.reals[&1],
        Real {
            mac: MAC2,
            flags: REAL_UP,
            service: 0
        }
    );
}

#[test]
fn the_live_ring_is_never_written_in_place() {
    let mut rec = Reconciler::new(4, 16);
    rec.set_services(vec![spec(&[(1, true), (1, true)])])
        .unwrap();
    rec.set_mac(ip("10.0.0.11"), Some(MAC1)).unwrap();
    let id = (ip("10.0.0.100"), 80, Proto::Tcp);
    for i in 0..6 {
        let live = rec.service_index(&id).unwrap().ring;
        let mac = (i % 2 == 0).then_some(MAC2);
        let writes = rec.set_mac(ip("10.0.0.12"), mac).unwrap();
        let mut wrote_ring = false;
        for w in &writes {
            if let Write::RingSlots { ring, .. } = w {
                assert_ne!(*ring, live, "wrote the live ring");
                wrote_ring = true;
            }
        }
        assert!(wrote_ring, "each change of members changes the table");
        assert_ne!(
            rec.service_index(&id).unwrap().ring,
            live,
            "the new ring is live"
        );
    }
}

/// One service of two equal reals, both MACs known, applied.
fn two_reals_known() -> (Reconciler, Kernel) {
    let mut rec = Reconciler::new(4, 16);
    let mut k = Kernel::default();
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (1, true)])])
            .unwrap(),
    );
    k.apply(&rec.set_mac(ip("10.0.0.11"), Some(MAC1)).unwrap());
    k.apply(&rec.set_mac(ip("10.0.0.12"), Some(MAC2)).unwrap());
    (rec, k)
}

#[test]
fn a_down_real_leaves_the_ring_before_it_is_marked_down() {
    let (mut rec, mut k) = two_reals_known();
    let writes = rec
        .set_services(vec![spec(&[(1, true), (1, false)])])
        .unwrap();
    let publish = writes
        .iter()
        .position(|w| matches!(w, Write::Service { .. }))
        .unwrap();
    let down = writes
        .iter()
        .position(|w| matches!(w, Write::Real { index: 1, .. }))
        .unwrap();
    assert!(publish < down, "{writes:?}");
    k.apply(&writes);
    assert_eq!(k.reals[&1].flags, 0);
    assert!(k.live_ring(&key()).iter().all(|r| *r == 0));
}

#[test]
fn weight_zero_drains_the_real_stays_up() {
    let (mut rec, mut k) = two_reals_known();
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (0, true)])])
            .unwrap(),
    );
    assert_eq!(
        k.reals[&1].flags,
        REAL_UP | REAL_NO_NEW,
        "existing flows keep going to a drained real, new ones and bindings do not"
    );
    assert_eq!(
        share(&k.live_ring(&key()), 1),
        0.0,
        "no new flows to a drained real"
    );
}

#[test]
fn an_unchanged_state_writes_nothing() {
    let mut rec = Reconciler::new(4, 16);
    rec.set_services(vec![spec(&[(1, true), (2, true)])])
        .unwrap();
    rec.set_mac(ip("10.0.0.11"), Some(MAC1)).unwrap();
    assert_eq!(rec.set_mac(ip("10.0.0.11"), Some(MAC1)).unwrap(), vec![]);
    assert_eq!(
        rec.set_services(vec![spec(&[(1, true), (2, true)])])
            .unwrap(),
        vec![]
    );
}

#[test]
fn a_removed_service_is_deleted_and_its_numbers_reused_last() {
    let mut rec = Reconciler::new(2, 4);
    let mut k = Kernel::default();
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (1, true)])])
            .unwrap(),
    );
    k.apply(&rec.set_mac(ip("10.0.0.11"), Some(MAC1)).unwrap());
    k.apply(&rec.set_services(vec![]).unwrap());
    assert!(k.services.is_empty());
    assert_eq!(k.reals[&0], Real::default());
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (1, true)])])
            .unwrap(),
    );
    let index = rec
        .service_index(&(ip("10.0.0.100"), 80, Proto::Tcp))
        .unwrap();
    assert_eq!(index.id, 1, "service numbers are reused first-in first-out");
    assert_eq!(
        index.reals.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
        vec![2, 3]
    );
}

#[test]
fn a_set_over_capacity_changes_nothing() {
    let mut rec = Reconciler::new(1, 2);
    let mut k = Kernel::default();
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (1, true)])])
            .unwrap(),
    );
    let mut other = spec(&[(1, true)]);
    other.port = 443;
    assert_eq!(
        rec.set_services(vec![other]),
        Err(ReconcileError::TooManyServices(1))
    );
    assert!(
        rec.service_index(&(ip("10.0.0.100"), 80, Proto::Tcp))
            .is_some(),
        "the old service stays"
    );
    assert_eq!(
        rec.set_services(vec![spec(&[(1, true), (1, true)])])
            .unwrap(),
        vec![],
        "in step with the kernel"
    );
}

#[test]
fn capacity_errors_are_reported() {
    let mut rec = Reconciler::new(1, 1);
    let mut two = spec(&[(1, true)]);
    two.port = 443;
    assert_eq!(
        rec.set_services(vec![spec(&[(1, true)]), two]),
        Err(ReconcileError::TooManyServices(1))
    );
    let mut rec = Reconciler::new(1, 1);
    assert_eq!(
        rec.set_services(vec![spec(&[(1, true), (1, true)])]),
        Err(ReconcileError::TooManyReals(1))
    );
}

#[test]
fn every_intermediate_state_is_safe_under_churn() {
    let mut rec = Reconciler::new(4, 64);
    let mut k = Kernel::default();
    let macs = [MAC1, MAC2, [2, 0, 0, 0, 0, 3]];
    let mut seed = 0x1234_5678u32;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for _ in 0..40 {
        match next() % 3 {
            0 => {
                let reals: Vec<(u32, bool)> =
                    (0..3).map(|_| (next() % 3, next() % 4 != 0)).collect();
                k.apply(&rec.set_services(vec![spec(&reals)]).unwrap());
            }
            1 => {
                let i = (next() % 3) as usize;
                k.apply(
                    &rec.set_mac(ip(&format!("10.0.0.{}", 11 + i)), Some(macs[i]))
                        .unwrap(),
                );
            }
            _ => {
                let i = next() % 3;
                k.apply(
                    &rec.set_mac(ip(&format!("10.0.0.{}", 11 + i)), None)
                        .unwrap(),
                );
            }
        }
    }
}

impl Kernel {
    /// What `Maps::snapshot` would read back.
    fn snapshot(&self) -> Snapshot {
        let mut indices: Vec<u32> = self
            .reals
            .keys()
            .chain(self.idents.keys())
            .copied()
            .collect();
        indices.sort();
        indices.dedup();
        let reals = indices
            .into_iter()
            .map(|index| SnapshotReal {
                index,
                real: self.reals.get(&index).copied().unwrap_or_default(),
                ident: self.idents.get(&index).copied().unwrap_or_default(),
            })
            .filter(|r| r.real != Real::default() || r.ident != RealIdent::default())
            .collect();
        let mut rings = HashMap::new();
        for s in self.services.values() {
            for ring in rings_of(s.id) {
                let slots = (0..RING_SIZE)
                    .map(|p| {
                        self.rings
                            .get(&(ring * RING_SIZE + p))
                            .copied()
                            .unwrap_or(0)
                    })
                    .collect();
                rings.insert(ring, slots);
            }
        }
        Snapshot {
            services: self.services.iter().map(|(k, v)| (*k, *v)).collect(),
            reals,
            rings,
            vip_filter: (0..lb_common::VIP_FILTER_WORDS)
                .map(|w| self.vip_filter.get(&w).copied().unwrap_or(0))
                .collect(),
        }
    }

    /// Applies writes until the kernel refuses write `fail` (of a ring,
    /// only its first half of slots lands), as a map update error would.
    fn apply_failing_at(&mut self, writes: &[Write], fail: usize) {
        self.apply(&writes[..fail]);
        if let Some(Write::RingSlots { ring, slots }) = writes.get(fail) {
            let half = slots[..slots.len() / 2].to_vec();
            self.apply(&[Write::RingSlots {
                ring: *ring,
                slots: half,
            }]);
        }
    }
}

fn sid() -> ServiceId {
    (ip("10.0.0.100"), 80, Proto::Tcp)
}

#[test]
fn an_adopted_kernel_in_the_wanted_state_gets_no_write() {
    let (rec, k) = two_reals_known();
    let mut adopted = Reconciler::adopt(4, 16, &k.snapshot());
    assert_eq!(adopted.service_index(&sid()), rec.service_index(&sid()));
    assert_eq!(
        adopted.mac(&ip("10.0.0.12")),
        Some(MAC2),
        "MACs come from REALS"
    );
    assert_eq!(
        adopted
            .set_services(vec![spec(&[(1, true), (1, true)])])
            .unwrap(),
        vec![]
    );
    assert_eq!(
        adopted.set_mac(ip("10.0.0.11"), Some(MAC1)).unwrap(),
        vec![]
    );
}

#[test]
fn an_adopted_kernel_gets_only_the_difference() {
    let (_, mut k) = two_reals_known();
    let live_before = k.services[&key()].ring;
    let mut adopted = Reconciler::adopt(4, 16, &k.snapshot());
    let writes = adopted
        .set_services(vec![spec(&[(1, true), (3, true)])])
        .unwrap();
    // A new table in the spare ring, then the service entry: nothing else.
    assert_eq!(
        writes.len(),
        2,
        "{:?}",
        writes
            .iter()
            .map(std::mem::discriminant)
            .collect::<Vec<_>>()
    );
    let Write::RingSlots { ring, slots } = &writes[0] else {
        panic!("{:?}", writes[0]);
    };
    assert_ne!(*ring, live_before, "the live ring is never written");
    assert!(
        slots.len() < RING_SIZE as usize,
        "only the slots that differ: {}",
        slots.len()
    );
    assert!(matches!(writes[1], Write::Service { .. }));
    k.apply(&writes);
    assert!((share(&k.live_ring(&key()), 1) - 0.75).abs() < 0.01);
    println!(
        "adoption then weights 1:1 -> 1:3: {} of {RING_SIZE} ring slots written",
        slots.len()
    );
}

/// The adopted health of `two_reals_known`'s reals: .11 up, .12 failed.
fn assert_first_up_second_failed(adopted: &Reconciler) {
    let mut health = adopted.adopted_health();
    health.sort();
    assert_eq!(
        health,
        vec![
            (sid(), (ip("10.0.0.11"), 80), true),
            (sid(), (ip("10.0.0.12"), 80), false),
        ]
    );
}

#[test]
fn health_and_numbers_are_carried_over() {
    let (mut rec, mut k) = two_reals_known();
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (1, false)])])
            .unwrap(),
    );
    let adopted = Reconciler::adopt(4, 16, &k.snapshot());
    assert_first_up_second_failed(&adopted);
    assert_eq!(adopted.service_index(&sid()), rec.service_index(&sid()));
}

#[test]
fn an_inhibited_real_is_adopted_as_failed() {
    let (mut rec, mut k) = two_reals_known();
    let mut inhibited = spec(&[(1, true), (0, true)]);
    inhibited.reals[1].inhibited = true;
    k.apply(&rec.set_services(vec![inhibited.clone()]).unwrap());
    let mut adopted = Reconciler::adopt(4, 16, &k.snapshot());
    assert_first_up_second_failed(&adopted);
    assert_eq!(
        adopted.set_services(vec![inhibited]).unwrap(),
        vec![],
        "still at weight 0 with its flows"
    );
}

#[test]
fn leftovers_no_service_owns_are_cleared_first_and_their_numbers_reused_last() {
    let (_, mut k) = two_reals_known();
    // A crash while adding a service: its real's number is taken, the
    // service entry never written.
    k.idents.insert(
        5,
        RealIdent {
            family: lb_common::FAMILY_V4,
            service: 3,
            ..RealIdent::default()
        },
    );
    k.reals.insert(
        5,
        Real {
            mac: MAC1,
            flags: REAL_UP,
            service: 3,
        },
    );
    let mut adopted = Reconciler::adopt(4, 6, &k.snapshot());
    let writes = adopted
        .set_services(vec![spec(&[(1, true), (1, true)])])
        .unwrap();
    assert_eq!(
        writes,
        vec![
            Write::Real {
                index: 5,
                real: Real::default()
            },
            Write::Ident {
                index: 5,
                ident: RealIdent::default()
            },
        ]
    );
    k.apply(&writes);
    let more = spec(&[(1, true), (1, true), (1, true), (1, true), (1, true)]);
    let _ = adopted.set_services(vec![more]).unwrap();
    let numbers: Vec<u32> = adopted
        .service_index(&sid())
        .unwrap()
        .reals
        .iter()
        .map(|(_, i)| *i)
        .collect();
    assert_eq!(numbers, vec![0, 1, 2, 3, 4], "5 comes last");
}

#[test]
fn a_refused_write_leaves_the_view_equal_to_the_kernel() {
    let wanted = vec![spec(&[(1, true), (3, true), (2, true)])];
    let mut reference = two_reals_known();
    reference
        .1
        .apply(&reference.0.set_services(wanted.clone()).unwrap());
    reference.1.apply(
        &reference
            .0
            .set_mac(ip("10.0.0.13"), Some([2, 0, 0, 0, 0, 3]))
            .unwrap(),
    );
    let n = {
        let (mut rec, _) = two_reals_known();
        rec.set_services(wanted.clone()).unwrap().len()
    };
    for fail in 0..n {
        let (mut rec, mut k) = two_reals_known();
        let live = k.live_ring(&key());
        let writes = rec.set_services(wanted.clone()).unwrap();
        k.apply_failing_at(&writes, fail);
        if !writes[..fail]
            .iter()
            .any(|w| matches!(w, Write::Service { .. }))
        {
            assert_eq!(
                k.live_ring(&key()),
                live,
                "a half-written ring was published"
            );
        }
        rec.resync(&k.snapshot());
        // The view is the kernel's: what it writes next brings the kernel
        // to the wanted state, and then nothing is left to write.
        k.apply(&rec.set_services(wanted.clone()).unwrap());
        k.apply(
            &rec.set_mac(ip("10.0.0.13"), Some([2, 0, 0, 0, 0, 3]))
                .unwrap(),
        );
        assert_eq!(
            rec.set_services(wanted.clone()).unwrap(),
            vec![],
            "failing at {fail}"
        );
        assert_eq!(
            k.live_ring(&key()),
            reference.1.live_ring(&key()),
            "failing at {fail}"
        );
        for i in 0..3 {
            assert_eq!(
                k.reals.get(&i).copied().unwrap_or_default(),
                reference.1.reals.get(&i).copied().unwrap_or_default(),
                "failing at {fail}: REALS[{i}]"
            );
        }
    }
}

#[test]
fn ipv6_and_udp_services_are_adopted_as_they_were() {
    let v6 = ServiceSpec {
        vip: ip("2001:db8::100"),
        port: 53,
        proto: Proto::Udp,
        persist_timeout_s: 300,
        reals: vec![RealSpec {
            addr: ip("2001:db8::11"),
            port: 5353,
            weight: 2,
            healthy: true,
            inhibited: false,
        }],
    };
    let mut rec = Reconciler::new(4, 16);
    let mut k = Kernel::default();
    k.apply(&rec.set_services(vec![v6.clone()]).unwrap());
    k.apply(&rec.set_mac(ip("2001:db8::11"), Some(MAC1)).unwrap());
    let mut adopted = Reconciler::adopt(4, 16, &k.snapshot());
    let id = (ip("2001:db8::100"), 53, Proto::Udp);
    assert_eq!(adopted.service_index(&id), rec.service_index(&id));
    assert_eq!(adopted.set_services(vec![v6]).unwrap(), vec![]);
}

#[test]
fn a_drained_real_closes_after_the_ring_without_it_and_reopens_before_it() {
    let (mut rec, mut k) = two_reals_known();
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (1, true)])])
            .unwrap(),
    );
    // Kernel::apply checks after every write that no live ring names a
    // drained real: so the drain is published first...
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (0, true)])])
            .unwrap(),
    );
    assert_eq!(k.reals[&1].flags, REAL_UP | REAL_NO_NEW);
    // ...and the undrain opens the real first.
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (2, true)])])
            .unwrap(),
    );
    assert_eq!(k.reals[&1].flags, REAL_UP);
    assert!(share(&k.live_ring(&key()), 1) > 0.5);
}

#[test]
fn the_vip_filter_holds_exactly_the_vips() {
    let (mut rec, mut k) = two_reals_known();
    let filter_bits = |k: &Kernel| k.vip_filter.values().map(|b| b.count_ones()).sum::<u32>();
    k.apply(&rec.set_services(vec![spec(&[(1, true)])]).unwrap());
    assert_eq!(filter_bits(&k), 1);
    let mut other = spec(&[(1, true)]);
    other.vip = ip("10.0.0.200");
    k.apply(
        &rec.set_services(vec![spec(&[(1, true)]), other.clone()])
            .unwrap(),
    );
    assert_eq!(filter_bits(&k), 2);
    // The first VIP's service goes: its bit is cleared, after the service.
    k.apply(&rec.set_services(vec![other]).unwrap());
    assert_eq!(filter_bits(&k), 1);
    let (word, bit) = lb_common::vip_filter_bit(&key().addr);
    assert_eq!(k.vip_filter.get(&word).copied().unwrap_or(0) & bit, 0);
}

#[test]
fn a_resync_takes_back_what_another_process_wrote() {
    // An upgrade's new process adopts the maps, writes its own
    // configuration (one real, not two) and fails: the running daemon
    // reads the maps back and writes its own table again.
    let (mut rec, mut k) = two_reals_known();
    let reference = k.live_ring(&key());
    let mut other = Reconciler::adopt(4, 16, &k.snapshot());
    k.apply(&other.set_services(vec![spec(&[(1, true)])]).unwrap());
    assert_ne!(k.live_ring(&key()), reference, "the other process wrote");
    rec.resync(&k.snapshot());
    k.apply(
        &rec.set_services(vec![spec(&[(1, true), (1, true)])])
            .unwrap(),
    );
    assert_eq!(k.live_ring(&key()), reference);
}
