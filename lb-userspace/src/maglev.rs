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
    let mut quotas: Vec<u64> = backends
        .iter()
        .map(|b| size * u64::from(b.weight) / total)
        .collect();
    let mut short = size - quotas.iter().sum::<u64>();
    let mut by_remainder: Vec<usize> = (0..backends.len()).collect();
    by_remainder
        .sort_by_key(|&i| std::cmp::Reverse((size * u64::from(backends[i].weight)) % total));
    for i in by_remainder {
        if short == 0 {
            break;
        }
        quotas[i] += 1;
        short -= 1;
    }
    quotas
}

/// Builds a table of `size` slots holding backend ids; `NO_REAL` everywhere
/// when no backend has a weight. `size` should be prime (Maglev's
/// permutations need it to spread well); any other size still terminates.
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
    let skips: Vec<u64> = live
        .iter()
        .map(|b| coprime_skip(splitmix(b.seed), m))
        .collect();
    let mut next = vec![0u64; live.len()];
    let mut held = vec![0u64; live.len()];
    let mut credit = vec![0u64; live.len()];
    // Backends still short of their quota, in seed order.
    let mut active: Vec<usize> = (0..live.len()).filter(|&i| quota[i] > 0).collect();
    while !active.is_empty() {
        // Rounds in which nobody earns a whole claim change nothing but the
        // credits: skip them at once, or a weight-1 backend beside a weight
        // of 10^9 would cost 10^9 rounds per slot.
        let idle = active
            .iter()
            .map(|&i| (max_weight - credit[i]).div_ceil(u64::from(live[i].weight)) - 1)
            .min()
            .unwrap_or(0);
        for &i in &active {
            credit[i] += (idle + 1) * u64::from(live[i].weight);
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
            }
        }
        active.retain(|&i| held[i] < quota[i]);
    }
    table
}

/// A permutation step in `1..m` that visits every slot: any step when `m` is
/// prime, the next coprime one otherwise.
fn coprime_skip(hash: u64, m: u64) -> u64 {
    let mut skip = hash % (m - 1).max(1) + 1;
    while gcd(skip, m) != 1 {
        skip = skip % (m - 1).max(1) + 1;
    }
    skip
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
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
    use std::{net::Ipv4Addr, time::Instant};

    use lb_common::RING_SIZE;

    use super::*;

    fn backends(weights: &[u32]) -> Vec<Backend> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Backend {
                id: i as u32,
                seed: seed_of(
                    IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1)),
                    80,
                ),
                weight: *w,
            })
            .collect()
    }

    fn shares(table: &[u32], n: usize) -> Vec<f64> {
        let mut counts = vec![0usize; n];
        for id in table {
            counts[*id as usize] += 1;
        }
        counts
            .iter()
            .map(|c| *c as f64 / table.len() as f64)
            .collect()
    }

    fn weight_shares(weights: &[u32]) -> Vec<f64> {
        let total: f64 = weights.iter().map(|w| f64::from(*w)).sum();
        weights.iter().map(|w| f64::from(*w) / total).collect()
    }

    /// Every backend's share is within 1% (relative) of its weight share, or
    /// one slot for a share too small for 1% to be a whole slot.
    fn assert_balanced(weights: &[u32]) {
        let table = build(&backends(weights), RING_SIZE);
        assert!(table.iter().all(|id| *id != NO_REAL));
        let want = weight_shares(weights);
        for (i, share) in shares(&table, weights.len()).iter().enumerate() {
            let slack = (want[i] * 0.01).max(1.0 / table.len() as f64);
            assert!(
                (share - want[i]).abs() <= slack,
                "backend {i}: share {share}, weight share {}",
                want[i]
            );
        }
    }

    /// The fraction of slots whose backend differs.
    fn moved(a: &[u32], b: &[u32]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
    }

    /// The least any table could move between two weightings: the shares
    /// some backends must give up.
    fn least_movement(before: &[u32], after: &[u32]) -> f64 {
        let (b, a) = (weight_shares(before), weight_shares(after));
        b.iter().zip(&a).map(|(x, y)| (x - y).max(0.0)).sum()
    }

    #[test]
    fn shares_follow_weights() {
        assert_balanced(&[1, 5]);
        assert_balanced(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_balanced(&[7, 1, 10, 3, 3, 9, 2, 5, 8, 1]);
        assert_balanced(&[1; 64]);
        assert_balanced(&[1; 300]);
    }

    #[test]
    fn huge_weights_balance_and_do_not_overflow() {
        assert_balanced(&[u32::MAX, 1, u32::MAX / 2]);
        assert_balanced(&[u32::MAX; 8]);
        assert_balanced(&[u32::MAX, u32::MAX - 1]);
    }

    #[test]
    fn scaling_every_weight_changes_nothing() {
        // gcd normalisation is implicit: only weight ratios matter.
        let small = build(&backends(&[1, 5, 3]), RING_SIZE);
        assert_eq!(small, build(&backends(&[2, 10, 6]), RING_SIZE));
        assert_eq!(small, build(&backends(&[1000, 5000, 3000]), RING_SIZE));
        assert_eq!(
            build(&backends(&[4; 5]), RING_SIZE),
            build(&backends(&[1; 5]), RING_SIZE)
        );
    }

    #[test]
    fn order_does_not_matter() {
        let b = backends(&[3, 1, 4, 1, 5, 9, 2, 6]);
        let mut reversed = b.clone();
        reversed.reverse();
        let mut rotated = b.clone();
        rotated.rotate_left(3);
        let table = build(&b, RING_SIZE);
        assert_eq!(table, build(&reversed, RING_SIZE));
        assert_eq!(table, build(&rotated, RING_SIZE));
    }

    #[test]
    fn same_seed_ties_break_by_id() {
        let a = Backend {
            id: 1,
            seed: 42,
            weight: 1,
        };
        let b = Backend {
            id: 2,
            seed: 42,
            weight: 1,
        };
        assert_eq!(build(&[a, b], 101), build(&[b, a], 101));
    }

    #[test]
    fn removing_one_of_n_moves_about_one_nth() {
        for n in [2usize, 3, 5, 10, 20, 64, 100] {
            let all = backends(&vec![1; n]);
            let before = build(&all, RING_SIZE);
            // Several removed positions: the worst one counts.
            for k in [0, n / 2, n - 1] {
                let mut rest = all.clone();
                let gone = rest.remove(k);
                let after = build(&rest, RING_SIZE);
                let m = moved(&before, &after);
                assert!(
                    m >= 1.0 / n as f64 - 1e-4,
                    "n={n}: the removed backend's own slots must move"
                );
                assert!(m <= 1.0 / n as f64 + 0.01, "n={n}, removed {k}: moved {m}");
                assert!(after.iter().all(|id| *id != gone.id));
            }
        }
    }

    #[test]
    fn adding_one_to_n_moves_about_its_share() {
        for n in [2usize, 10, 64] {
            let all = backends(&vec![1; n + 1]);
            let before = build(&all[..n], RING_SIZE);
            let after = build(&all, RING_SIZE);
            let m = moved(&before, &after);
            let share = 1.0 / (n + 1) as f64;
            assert!(m <= share + 0.01, "n={n}: moved {m}, new share {share}");
            // Slots that moved went to the new backend, except Maglev's few knock-ons.
            let to_new = before
                .iter()
                .zip(&after)
                .filter(|(x, y)| x != y && **y == n as u32)
                .count();
            assert!(to_new as f64 / before.len() as f64 >= share - 1e-4);
        }
    }

    #[test]
    fn removing_a_weighted_backend_moves_about_its_share() {
        let weights: Vec<u32> = (1..=10).collect();
        let before = build(&backends(&weights), RING_SIZE);
        for k in 0..weights.len() {
            let mut w = weights.clone();
            w[k] = 0;
            let after = build(&backends(&w), RING_SIZE);
            let least = least_movement(&weights, &w);
            let m = moved(&before, &after);
            assert!(
                m >= least - 1e-4 && m <= least + 0.01,
                "removing weight {}: moved {m}, least {least}",
                weights[k]
            );
        }
    }

    #[test]
    fn changing_one_weight_moves_about_the_share_difference() {
        let mut one_of_64_tripled = vec![1; 64];
        one_of_64_tripled[12] = 3;
        let cases: [(Vec<u32>, Vec<u32>); 4] = [
            (vec![1, 1, 1, 1], vec![1, 1, 1, 2]),
            ((1..=10).collect(), vec![1, 2, 3, 4, 6, 6, 7, 8, 9, 10]),
            ((1..=10).collect(), vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 1]),
            (vec![1; 64], one_of_64_tripled),
        ];
        for (before, after) in cases {
            let m = moved(
                &build(&backends(&before), RING_SIZE),
                &build(&backends(&after), RING_SIZE),
            );
            let least = least_movement(&before, &after);
            assert!(
                m >= least - 1e-4 && m <= least * 1.2 + 0.005,
                "{before:?} -> {after:?}: moved {m}, least {least}"
            );
        }
    }

    #[test]
    fn no_weight_means_no_real() {
        assert!(
            build(&backends(&[0, 0]), RING_SIZE)
                .iter()
                .all(|id| *id == NO_REAL)
        );
        assert!(build(&[], RING_SIZE).iter().all(|id| *id == NO_REAL));
        assert_eq!(build(&[], RING_SIZE).len(), RING_SIZE as usize);
        let table = build(&backends(&[0, 7]), RING_SIZE);
        assert!(table.iter().all(|id| *id == 1), "weight 0 takes no slot");
        // Weight 0 is the same as absent.
        let with_zero = backends(&[3, 0, 5]);
        assert_eq!(
            build(&with_zero, RING_SIZE),
            build(&[with_zero[0], with_zero[2]], RING_SIZE)
        );
    }

    #[test]
    fn one_backend_takes_every_slot() {
        assert!(build(&backends(&[3]), 7).iter().all(|id| *id == 0));
        assert!(build(&backends(&[1]), RING_SIZE).iter().all(|id| *id == 0));
    }

    #[test]
    fn tiny_and_odd_sizes_terminate_and_fill() {
        for size in [1, 2, 4, 6, 12, 100, 1024] {
            let table = build(&backends(&[1, 2, 3]), size);
            assert_eq!(table.len(), size as usize);
            assert!(table.iter().all(|id| *id != NO_REAL), "size {size}");
        }
        assert!(build(&backends(&[1]), 0).is_empty());
        // More backends than slots: every slot still holds one of them.
        let table = build(&backends(&[1; 20]), 7);
        assert!(table.iter().all(|id| *id < 20));
    }

    #[test]
    fn lopsided_weights_are_fast() {
        // 1000 weight-1 reals beside one of weight 10^6: some earn one slot,
        // which round by round would take 10^6 rounds of 1001 backends.
        let mut weights = vec![1; 1000];
        weights.push(1_000_000);
        let start = Instant::now();
        let table = build(&backends(&weights), RING_SIZE);
        assert!(
            start.elapsed().as_secs_f64() < 2.0,
            "took {:?}",
            start.elapsed()
        );
        assert_balanced(&weights);
        assert!(table.iter().all(|id| *id != NO_REAL));
    }

    #[test]
    fn sixty_four_reals_build_quickly() {
        let b = backends(&(1..=64).collect::<Vec<_>>());
        let start = Instant::now();
        let table = build(&b, RING_SIZE);
        // A few ms in release; debug builds are ~20x slower.
        assert!(
            start.elapsed().as_millis() < 500,
            "took {:?}",
            start.elapsed()
        );
        assert_eq!(table.len(), RING_SIZE as usize);
    }

    #[test]
    fn seeds_are_stable_and_distinct() {
        let v4 = |s: &str| IpAddr::V4(s.parse().expect("test address"));
        let a = seed_of(v4("10.0.0.1"), 80);
        assert_eq!(a, seed_of(v4("10.0.0.1"), 80));
        assert_ne!(a, seed_of(v4("10.0.0.1"), 81));
        assert_ne!(a, seed_of(v4("10.0.0.2"), 80));
        assert_ne!(
            a,
            seed_of(IpAddr::V6("2001:db8::1".parse().expect("test address")), 80)
        );
        // Pinned: a change here reshuffles every deployed table.
        assert_eq!(a, 16_654_636_257_608_811_196);
    }

    #[test]
    fn changed_lists_only_differences() {
        assert_eq!(changed(&[1, 2, 3], &[1, 5, 3]), vec![(1, 5)]);
        assert_eq!(changed(&[], &[7, 8]), vec![(0, 7), (1, 8)]);
        assert!(changed(&[4, 4], &[4, 4]).is_empty());
        let before = build(&backends(&[1; 10]), RING_SIZE);
        let after = build(&backends(&[1; 11]), RING_SIZE);
        let diff = changed(&before, &after);
        let mut patched = before.clone();
        for (pos, id) in &diff {
            patched[*pos as usize] = *id;
        }
        assert_eq!(patched, after);
        assert_eq!(
            diff.len() as f64 / before.len() as f64,
            moved(&before, &after)
        );
    }
}
