//! Spacing of gratuitous ARPs and unsolicited NAs on an interface
//! (keepalived's `vrrp_garp_interval`, `vrrp_gna_interval` and
//! `garp_group`): after one is sent on a lane, the next waits `interval`.
//!
//! A lane is one interface and family, or one `garp_group` and family (its
//! interfaces share the spacing, keepalived's aggregation group). A lane
//! without an interval sends at once. Unlike keepalived, which keeps one
//! pending flag per address and so folds the repeats of a queued address
//! into one, every requested message is sent, in order.
//!
//! Pure: the caller passes `now`, sends what `due` returns and wakes at
//! `next_wake`.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

/// Spacing in force: per `garp_group` and for every other interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spacing {
    /// (interfaces, IPv4 interval, IPv6 interval) of each garp_group.
    pub groups: Vec<(Vec<String>, Option<Duration>, Option<Duration>)>,
    /// `vrrp_garp_interval`, `vrrp_gna_interval`: each other interface.
    pub default: (Option<Duration>, Option<Duration>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum LaneKey {
    Group(usize, bool),
    Interface(String, bool),
}

#[derive(Debug)]
struct Lane<T> {
    interval: Duration,
    /// When the next message may go; `None`: at once.
    next: Option<Instant>,
    queue: VecDeque<(u64, T)>,
}

/// Messages waiting for their lane, by owner (an instance) so a master
/// that steps down can drop its own.
#[derive(Debug)]
pub struct Pacer<T> {
    spacing: Spacing,
    lanes: HashMap<LaneKey, Lane<T>>,
}

impl<T> Pacer<T> {
    pub fn new(spacing: Spacing) -> Self {
        Pacer {
            spacing,
            lanes: HashMap::new(),
        }
    }

    fn key_and_interval(&self, dev: &str, v6: bool) -> (LaneKey, Duration) {
        let pick = |(v4, v6i): (Option<Duration>, Option<Duration>)| {
            if v6 { v6i } else { v4 }.unwrap_or_default()
        };
        match self
            .spacing
            .groups
            .iter()
            .position(|(devs, _, _)| devs.iter().any(|d| d == dev))
        {
            Some(g) => {
                let (_, v4, v6i) = &self.spacing.groups[g];
                (LaneKey::Group(g, v6), pick((*v4, *v6i)))
            }
            None => (
                LaneKey::Interface(dev.to_string(), v6),
                pick(self.spacing.default),
            ),
        }
    }

    /// Queues one message for `dev` (IPv6 NA when `v6`).
    pub fn push(&mut self, dev: &str, v6: bool, owner: u64, item: T) {
        let (key, interval) = self.key_and_interval(dev, v6);
        self.lanes
            .entry(key)
            .or_insert_with(|| Lane {
                interval,
                next: None,
                queue: VecDeque::new(),
            })
            .queue
            .push_back((owner, item));
    }

    /// Drops what `owner` still has queued; returns how many.
    pub fn cancel(&mut self, owner: u64) -> usize {
        let mut dropped = 0;
        for lane in self.lanes.values_mut() {
            let before = lane.queue.len();
            lane.queue.retain(|(o, _)| *o != owner);
            dropped += before - lane.queue.len();
        }
        dropped
    }

    /// The messages that may go at `now`, each lane's in order; the lanes'
    /// next times move on as they are taken.
    pub fn due(&mut self, now: Instant) -> Vec<T> {
        let mut out = Vec::new();
        for lane in self.lanes.values_mut() {
            while lane.next.is_none_or(|at| at <= now) {
                let Some((_, item)) = lane.queue.pop_front() else {
                    break;
                };
                out.push(item);
                if !lane.interval.is_zero() {
                    lane.next = Some(now + lane.interval);
                }
            }
        }
        out
    }

    /// When a queued message may go next; `None`: nothing is queued.
    pub fn next_wake(&self) -> Option<Instant> {
        self.lanes
            .values()
            .filter(|l| !l.queue.is_empty())
            .filter_map(|l| l.next)
            .min()
    }

    /// Messages still queued.
    pub fn queued(&self) -> usize {
        self.lanes.values().map(|l| l.queue.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn spacing() -> Spacing {
        Spacing {
            groups: vec![(vec!["g1".into(), "g2".into()], Some(100 * MS), None)],
            default: (Some(250 * MS), Some(40 * MS)),
        }
    }

    /// Drives the pacer as the daemon does: wakes at `next_wake`, sends
    /// what is due; returns (time since t0, item) in the order sent.
    fn drain(p: &mut Pacer<&'static str>, t0: Instant) -> Vec<(Duration, &'static str)> {
        let mut sent: Vec<(Duration, &str)> =
            p.due(t0).into_iter().map(|i| (Duration::ZERO, i)).collect();
        let mut rounds = 0;
        while let Some(at) = p.next_wake() {
            rounds += 1;
            assert!(rounds < 1000, "bounded");
            sent.extend(p.due(at).into_iter().map(|i| (at - t0, i)));
        }
        sent
    }

    #[test]
    fn one_message_per_interval_per_interface_and_family() {
        let t0 = Instant::now();
        let mut p = Pacer::new(spacing());
        for item in ["a1", "a2", "a3"] {
            p.push("eth0", false, 1, item);
        }
        for item in ["n1", "n2"] {
            p.push("eth0", true, 1, item);
        }
        p.push("eth1", false, 1, "b1");
        let mut sent = drain(&mut p, t0);
        sent.sort();
        assert_eq!(
            sent,
            [
                (Duration::ZERO, "a1"),
                (Duration::ZERO, "b1"),
                (Duration::ZERO, "n1"),
                (40 * MS, "n2"),
                (250 * MS, "a2"),
                (500 * MS, "a3"),
            ],
            "ARPs and NAs apart, interfaces apart"
        );
        assert_eq!(p.queued(), 0);
    }

    #[test]
    fn a_garp_group_shares_one_lane_and_its_own_intervals() {
        let t0 = Instant::now();
        let mut p = Pacer::new(spacing());
        p.push("g1", false, 1, "x1");
        p.push("g2", false, 2, "y1");
        p.push("g1", false, 1, "x2");
        // The group sets no gna_interval: its NAs go at once, whatever the
        // global vrrp_gna_interval says (keepalived: the group's delay
        // replaces the default for its interfaces).
        p.push("g2", true, 2, "n1");
        p.push("g2", true, 2, "n2");
        let mut sent = drain(&mut p, t0);
        sent.sort();
        assert_eq!(
            sent,
            [
                (Duration::ZERO, "n1"),
                (Duration::ZERO, "n2"),
                (Duration::ZERO, "x1"),
                (100 * MS, "y1"),
                (200 * MS, "x2"),
            ]
        );
    }

    #[test]
    fn the_spacing_counts_from_the_last_message_sent() {
        let t0 = Instant::now();
        let mut p = Pacer::new(spacing());
        p.push("eth0", false, 1, "a1");
        assert_eq!(p.due(t0), ["a1"]);
        assert_eq!(p.next_wake(), None, "nothing queued");
        // 100 ms later: still within the 250 ms after a1.
        p.push("eth0", false, 1, "a2");
        assert_eq!(p.due(t0 + 100 * MS), Vec::<&str>::new());
        assert_eq!(p.next_wake(), Some(t0 + 250 * MS));
        // Woken late: the next one is spaced from when a2 really went.
        assert_eq!(p.due(t0 + 300 * MS), ["a2"]);
        p.push("eth0", false, 1, "a3");
        assert_eq!(p.due(t0 + 400 * MS), Vec::<&str>::new());
        assert_eq!(p.next_wake(), Some(t0 + 550 * MS));
        // Long idle: the next goes at once.
        assert_eq!(p.due(t0 + 10_000 * MS), ["a3"]);
        p.push("eth0", false, 1, "a4");
        assert_eq!(p.due(t0 + 20_000 * MS), ["a4"]);
    }

    #[test]
    fn without_spacing_everything_goes_at_once() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Spacing::default());
        for item in ["a", "b", "c"] {
            p.push("eth0", false, 1, item);
        }
        assert_eq!(p.due(t0), ["a", "b", "c"]);
        assert_eq!(p.next_wake(), None);
    }

    #[test]
    fn a_stepped_down_master_drops_only_its_own() {
        let t0 = Instant::now();
        let mut p = Pacer::new(spacing());
        for (owner, item) in [(1, "a1"), (1, "a2"), (2, "b1"), (1, "a3"), (2, "b2")] {
            p.push("eth0", false, owner, item);
        }
        assert_eq!(p.due(t0), ["a1"]);
        assert_eq!(p.cancel(1), 2);
        assert_eq!(p.queued(), 2);
        let sent = drain(&mut p, t0);
        assert_eq!(sent, [(250 * MS, "b1"), (500 * MS, "b2")]);
    }
}
