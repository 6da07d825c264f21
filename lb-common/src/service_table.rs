//! The layout of `SERVICES` and how a service is found in it.
//!
//! `SERVICES` is a BPF array of [`ServiceSlot`]s, open-addressed: a service
//! lives in the first slot of its probe sequence (`ServiceKey::slot`, then the
//! next slots, wrapping) that held no other service when it was written, at
//! most [`SERVICE_PROBES`] slots from its home. The array has eight slots per
//! service it is sized for, so a lookup seldom reads past its home slot: two
//! slots share a cache line and the program inlines every array read, where
//! the kernel's hash map cost a helper call, a hash of the key and two or
//! three cache lines, which made it the largest cost of a new flow after the
//! flow table.
//!
//! Only the daemon writes it, one slot at a time, so that the program always
//! reads a whole service: a new service is written first as a tombstone
//! (matching no packet), then with its family; a removed one
//! becomes a tombstone ([`FAMILY_TOMBSTONE`]) that lookups probe past and a
//! later service may take; a ring switch rewrites only `Service::ring`, an
//! aligned word whose two values (`rings_of`) differ in one bit.

use crate::{Service, ServiceKey};

/// The farthest a service may sit from its home slot (its probe sequence).
pub const SERVICE_PROBES: u32 = 16;

/// The XDP program's global holding `slots - 1` (`SERVICES` has a power of
/// two of slots), set at load time as `FLOW_BUCKETS` is.
pub const SERVICE_SLOT_MASK: &str = "SERVICE_SLOT_MASK";

/// `ServiceKey::family` of a removed service's slot.
pub const FAMILY_TOMBSTONE: u8 = 0xff;

/// Slots of a table sized for `services` services: eight per service, so
/// that linear probing's clusters stay far shorter than `SERVICE_PROBES`.
pub const fn service_slots(services: u32) -> u32 {
    let slots = services as u64 * 8;
    let slots = if slots < SERVICE_PROBES as u64 {
        SERVICE_PROBES as u64
    } else {
        slots
    };
    let pow = slots.next_power_of_two();
    if pow > 1 << 31 { 1 << 31 } else { pow as u32 }
}

/// The services a table of `slots` slots is sized for.
pub const fn services_of_slots(slots: u32) -> u32 {
    slots / 8
}

/// Value of `SERVICES`: one service, or none (`key.family` 0), or a
/// tombstone. 32 bytes: two to a cache line.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ServiceSlot {
    pub key: ServiceKey,
    pub service: Service,
}
const _: () = assert!(core::mem::size_of::<ServiceSlot>() == 32);

impl ServiceSlot {
    /// What a removed service leaves: matches no packet, probed past.
    pub const TOMBSTONE: Self = Self {
        key: ServiceKey {
            addr: [0; 4],
            port: 0,
            proto: 0,
            family: FAMILY_TOMBSTONE,
        },
        service: Service {
            id: 0,
            ring: 0,
            persist_timeout_s: 0,
        },
    };

    /// Whether the slot holds a service (neither empty nor a tombstone).
    pub const fn in_use(&self) -> bool {
        !matches!(self.key.family, 0 | FAMILY_TOMBSTONE)
    }
}

impl ServiceKey {
    /// The home slot of this key in a table of `mask + 1` slots: its five
    /// words folded into one and mixed by two multiplies, so that every
    /// input bit reaches the slot's bits.
    #[inline(always)]
    pub fn slot(&self, mask: u32) -> u32 {
        let last = self.port as u32 | (self.proto as u32) << 16 | (self.family as u32) << 24;
        let folded = (self.addr[0] ^ self.addr[1].rotate_left(8)) as u64
            | ((self.addr[2].rotate_left(16) ^ self.addr[3].rotate_left(24)) as u64) << 32;
        let mut h = (folded ^ (last as u64).rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 31;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        (h >> 32) as u32 & mask
    }
}

/// The slot of `key`'s service in `slots` (the whole array), if it has one.
pub fn find(slots: &[ServiceSlot], key: &ServiceKey) -> Option<u32> {
    let mask = slots.len() as u32 - 1;
    let home = key.slot(mask);
    (0..SERVICE_PROBES)
        .map(|i| (home + i) & mask)
        .take_while(|&s| slots[s as usize].key.family != 0)
        .find(|&s| slots[s as usize].key == *key)
}

/// Where `key`'s service is written: its own slot if it has one, else the
/// first empty or tombstone slot of its probe sequence; `None` when all of
/// them hold other services.
pub fn place(slots: &[ServiceSlot], key: &ServiceKey) -> Option<u32> {
    let mask = slots.len() as u32 - 1;
    let home = key.slot(mask);
    find(slots, key).or_else(|| {
        (0..SERVICE_PROBES)
            .map(|i| (home + i) & mask)
            .find(|&s| !slots[s as usize].in_use())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FAMILY_V4, PROTO_TCP};

    fn key(n: u32, port: u16) -> ServiceKey {
        ServiceKey {
            addr: [n, 0, 0, 0],
            port,
            proto: PROTO_TCP,
            family: FAMILY_V4,
        }
    }

    #[test]
    fn sizes_are_powers_of_two_with_room() {
        assert_eq!(service_slots(64), 512);
        assert_eq!(services_of_slots(512), 64);
        assert_eq!(service_slots(1), SERVICE_PROBES);
        assert_eq!(service_slots(4096), 32768);
        assert_eq!(service_slots(100), 1024);
    }

    #[test]
    fn placed_services_are_found_and_tombstones_probed_past() {
        let mut slots = [ServiceSlot::default(); 8];
        let put = |slots: &mut [ServiceSlot], k: ServiceKey, id: u32| {
            let s = place(slots, &k).expect("room");
            slots[s as usize] = ServiceSlot {
                key: k,
                service: Service {
                    id,
                    ..Service::default()
                },
            };
            s
        };
        // Eight services in eight slots: every one placed and found.
        let keys: [ServiceKey; 8] = core::array::from_fn(|n| key(n as u32, 80));
        for (id, k) in keys.iter().enumerate() {
            put(&mut slots, *k, id as u32);
        }
        for (id, k) in keys.iter().enumerate() {
            let s = find(&slots, k).expect("found");
            assert_eq!(slots[s as usize].service.id, id as u32);
        }
        assert_eq!(place(&slots, &key(99, 80)), None, "full");
        assert_eq!(find(&slots, &key(99, 80)), None);
        // Removed: a tombstone, which the others are still found past.
        let gone = find(&slots, &keys[3]).unwrap();
        slots[gone as usize].key.family = FAMILY_TOMBSTONE;
        assert_eq!(find(&slots, &keys[3]), None);
        for k in keys.iter().filter(|k| **k != keys[3]) {
            assert!(find(&slots, k).is_some(), "{k:?}");
        }
        assert_eq!(
            place(&slots, &key(99, 80)),
            Some(gone),
            "the tombstone is reused"
        );
        // An existing service is rewritten in place.
        assert_eq!(place(&slots, &keys[5]), find(&slots, &keys[5]));
    }

    /// The most services the daemon allows (4096), with addresses as
    /// operators number them (consecutive) and scattered: every one placed,
    /// none near the end of its probe sequence.
    #[test]
    fn a_full_table_of_services_always_has_room() {
        const N: u32 = 4096;
        let mut slots = [ServiceSlot::default(); service_slots(N) as usize];
        let mut worst = 0;
        let mut x: u32 = 0x1234_5678;
        for n in 0..N {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let k = if n % 2 == 0 {
                key((0x0a00_0000 + n / 8).to_be(), 80 + (n % 8) as u16)
            } else {
                key(x, (x >> 16) as u16)
            };
            let s = place(&slots, &k).expect("room");
            let home = k.slot(slots.len() as u32 - 1);
            worst = worst.max(s.wrapping_sub(home) & (slots.len() as u32 - 1));
            slots[s as usize].key = k;
        }
        assert!(worst < SERVICE_PROBES / 2, "a probe of {worst}");
    }

    #[test]
    fn an_empty_slot_ends_the_probe() {
        let mut slots = [ServiceSlot::default(); 64];
        let k = key(1, 80);
        let home = k.slot(63);
        // The key sits two past its home, but the slot between is empty.
        slots[((home + 2) & 63) as usize].key = k;
        slots[home as usize].key = key(2, 80);
        assert_eq!(find(&slots, &k), None);
        slots[((home + 1) & 63) as usize].key = key(3, 80);
        assert_eq!(find(&slots, &k), Some((home + 2) & 63));
    }

    #[test]
    fn every_field_moves_the_home_slot() {
        let base = key(0x0a00_0064, 80);
        let variants = [
            ServiceKey {
                addr: [0x0a00_0065, 0, 0, 0],
                ..base
            },
            ServiceKey { port: 81, ..base },
            ServiceKey { proto: 17, ..base },
            ServiceKey {
                addr: [0x0a00_0064, 0, 0, 1],
                ..base
            },
        ];
        let mask = (1 << 20) - 1;
        for v in variants {
            assert_ne!(v.slot(mask), base.slot(mask), "{v:?}");
        }
    }
}
