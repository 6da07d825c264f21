//! Weighted Maglev lookup tables (Eisenbud et al., NSDI 2016), pure.
//!
//! Each backend walks its own permutation of the table's slots, derived from
//! a stable seed (its address and port, never its position in a list), and
//! takes turns claiming the next free slot of its permutation. Turns are
//! weighted: a backend earns `weight / max_weight` of a claim per round, and
//! stops claiming once it holds its exact share of the table (largest
//! remainder rounding), so shares match the weights to within one slot.
//! Because the permutations do not depend on which other backends exist,
//! removing one of N backends moves about 1/N of the slots, and two nodes
//! with the same backends build the same table.

use std::net::IpAddr;

use lb_common::NO_REAL;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// The real's number in the `REALS` map: what the table holds.
    pub id: u32,
    /// Stable identity, see `seed_of`.
    pub seed: u64,
    /// 0 = not in the table.
    pub weight: u32,
}

/// A stable hash of a real's identity, the same on every node and release.
pub fn seed_of(addr: IpAddr, port: u16) -> u64 {
    // FNV-1a over the address and port bytes, then a finaliser.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    for b in bytes.iter().chain(&port.to_be_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix(h)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Each backend's exact number of slots: proportional to weight, rounded by
/// largest remainder so they add up to `size`.
fn quotas(backends: &[Backend], size: u64) -> Vec<u64> {
    let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    let mut quotas: Vec<u64> = backends.iter().map(|b| size * u64::from(b.weight) / total).collect();
    let mut short = size - quotas.iter().sum::<u64>();
    let mut by_remainder: Vec<usize> = (0..backends.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse((size * u64::from(backends[i].weight)) % total));
    for i in by_remainder {
        if short == 0 {
            break;
        }
        quotas[i] += 1;
        short -= 1;
    }
    quotas
}

/// Builds a table of `size` slots (a prime) holding backend ids;
/// `NO_REAL` everywhere when no backend has a weight.
pub fn build(backends: &[Backend], size: u32) -> Vec<u32> {
    let mut live: Vec<Backend> = backends.iter().copied().filter(|b| b.weight > 0).collect();
    let mut table = vec![NO_REAL; size as usize];
    if live.is_empty() || size == 0 {
        return table;
    }
    // Input order must not matter.
    live.sort_by_key(|b| (b.seed, b.id));
    let m = u64::from(size);
    let quota = quotas(&live, m);
    let max_weight = live.iter().map(|b| u64::from(b.weight)).max().unwrap_or(1);
    let offsets: Vec<u64> = live.iter().map(|b| b.seed % m).collect();
    let skips: Vec<u64> = live.iter().map(|b| splitmix(b.seed) % (m - 1).max(1) + 1).collect();
    let mut next = vec![0u64; live.len()];
    let mut held = vec![0u64; live.len()];
    let mut credit = vec![0u64; live.len()];
    let mut filled = 0u64;
    while filled < m {
        for i in 0..live.len() {
            if held[i] == quota[i] {
                continue;
            }
            credit[i] += u64::from(live[i].weight);
            while credit[i] >= max_weight && held[i] < quota[i] {
                credit[i] -= max_weight;
                // The next slot of this backend's permutation that is free.
                let slot = loop {
                    let s = (offsets[i] + next[i] * skips[i]) % m;
                    next[i] += 1;
                    if table[s as usize] == NO_REAL {
                        break s;
                    }
                };
                table[slot as usize] = live[i].id;
                held[i] += 1;
                filled += 1;
            }
        }
    }
    table
}

/// The slots where `new` differs from `old`, with their new value: only these
/// need writing to the kernel.
pub fn changed(old: &[u32], new: &[u32]) -> Vec<(u32, u32)> {
    new.iter()
        .enumerate()
        .filter(|(i, n)| old.get(*i) != Some(n))
        .map(|(i, n)| (i as u32, *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use lb_common::RING_SIZE;

    use super::*;

    fn backends(weights: &[u32]) -> Vec<Backend> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Backend {
                id: i as u32,
                seed: seed_of(IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1)), 80),
                weight: *w,
            })
            .collect()
    }

    fn shares(table: &[u32], n: usize) -> Vec<f64> {
        let mut counts = vec![0usize; n];
        for id in table {
            counts[*id as usize] += 1;
        }
        counts.iter().map(|c| *c as f64 / table.len() as f64).collect()
    }

    /// Every backend's share is within 1% (relative) of its weight share, or
    /// one slot for a share too small for 1% to be a whole slot.
    fn assert_balanced(weights: &[u32]) {
        let table = build(&backends(weights), RING_SIZE);
        assert!(table.iter().all(|id| *id != NO_REAL));
        let total: u32 = weights.iter().sum();
        for (i, share) in shares(&table, weights.len()).iter().enumerate() {
            let want = weights[i] as f64 / total as f64;
            let slack = (want * 0.01).max(1.0 / table.len() as f64);
            assert!((share - want).abs() <= slack, "backend {i}: share {share}, weight share {want}");
        }
    }

    #[test]
    fn shares_follow_weights() {
        assert_balanced(&[1, 5]);
        assert_balanced(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_balanced(&[1; 64]);
        assert_balanced(&[1000, 1, 65535]);
    }

    #[test]
    fn order_does_not_matter() {
        let b = backends(&[3, 1, 4, 1, 5]);
        let mut reversed = b.clone();
        reversed.reverse();
        assert_eq!(build(&b, RING_SIZE), build(&reversed, RING_SIZE));
    }

    fn moved(a: &[u32], b: &[u32]) -> f64 {
        a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
    }

    #[test]
    fn removing_one_of_n_moves_about_one_nth() {
        for n in [2usize, 5, 10, 64] {
            let all = backends(&vec![1; n]);
            let before = build(&all, RING_SIZE);
            let after = build(&all[1..], RING_SIZE);
            let m = moved(&before, &after);
            // The removed backend's own 1/N must move; Maglev moves a little more.
            assert!(m <= 1.0 / n as f64 + 0.01 + 0.5 / n as f64, "n={n}: moved {m}");
            // Slots of the removed backend all went elsewhere.
            assert!(after.iter().all(|id| *id != 0));
        }
    }

    #[test]
    fn adding_one_moves_about_its_share() {
        let all = backends(&[1; 11]);
        let before = build(&all[..10], RING_SIZE);
        let after = build(&all, RING_SIZE);
        let m = moved(&before, &after);
        assert!(m <= 1.0 / 11.0 * 1.5 + 0.01, "moved {m}");
    }

    #[test]
    fn changing_one_weight_moves_little_more_than_the_share_difference() {
        let before = build(&backends(&[1, 1, 1, 1]), RING_SIZE);
        let after = build(&backends(&[1, 1, 1, 2]), RING_SIZE);
        // Backend 3 goes from 1/4 to 2/5 of the table: +0.15.
        let m = moved(&before, &after);
        assert!(m >= 0.15 && m <= 0.15 * 1.6, "moved {m}");
    }

    #[test]
    fn no_weight_means_no_real() {
        assert!(build(&backends(&[0, 0]), RING_SIZE).iter().all(|id| *id == NO_REAL));
        assert!(build(&[], RING_SIZE).iter().all(|id| *id == NO_REAL));
        let table = build(&backends(&[0, 7]), RING_SIZE);
        assert!(table.iter().all(|id| *id == 1), "weight 0 takes no slot");
    }

    #[test]
    fn one_backend_takes_every_slot() {
        assert!(build(&backends(&[3]), 7).iter().all(|id| *id == 0));
    }

    #[test]
    fn seeds_are_stable_and_distinct() {
        let a = seed_of("10.0.0.1".parse().unwrap(), 80);
        assert_eq!(a, seed_of("10.0.0.1".parse().unwrap(), 80));
        assert_ne!(a, seed_of("10.0.0.1".parse().unwrap(), 81));
        assert_ne!(a, seed_of("10.0.0.2".parse().unwrap(), 80));
        assert_ne!(a, seed_of("2001:db8::1".parse().unwrap(), 80));
    }

    #[test]
    fn changed_lists_only_differences() {
        assert_eq!(changed(&[1, 2, 3], &[1, 5, 3]), vec![(1, 5)]);
        assert_eq!(changed(&[], &[7, 8]), vec![(0, 7), (1, 8)]);
    }
}
