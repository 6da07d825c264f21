//! keepalived's quorum of a virtual server, as a pure rule.
//!
//! The live weight is the sum of the weights of the healthy reals. A service
//! without quorum gains it when the live weight reaches `quorum + hysteresis`;
//! a service with quorum loses it when the live weight falls below
//! `quorum - hysteresis`, or to 0. In between it keeps its state, so a weight
//! that wobbles around `quorum` does not flap. A service starts with quorum
//! when its live weight is at least `quorum + hysteresis`, without running a
//! script; later transitions run `quorum_up` / `quorum_down`, and while the
//! quorum is lost a `sorry_server` takes the service's new flows.

use crate::config::QuorumConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// At least 1 (the parser refuses 0).
    pub quorum: u32,
    pub hysteresis: u32,
}

impl From<&QuorumConfig> for Quorum {
    fn from(c: &QuorumConfig) -> Self {
        Self {
            quorum: c.quorum,
            hysteresis: c.hysteresis,
        }
    }
}

impl Default for Quorum {
    fn default() -> Self {
        Self::from(&QuorumConfig::default())
    }
}

impl Quorum {
    /// The live weight at which a service without quorum gains it.
    pub fn gain_at(&self) -> u64 {
        u64::from(self.quorum) + u64::from(self.hysteresis)
    }

    /// The live weight below which a service with quorum loses it.
    pub fn lose_below(&self) -> u64 {
        u64::from(self.quorum.saturating_sub(self.hysteresis))
    }

    /// The state a service starts in.
    pub fn initial(&self, live_weight: u64) -> bool {
        live_weight >= self.gain_at()
    }

    /// The state after the live weight became `live_weight`, from `up`.
    pub fn next(&self, up: bool, live_weight: u64) -> bool {
        if up {
            live_weight > 0 && live_weight >= self.lose_below()
        } else {
            live_weight >= self.gain_at()
        }
    }

    /// The threshold that decides the next transition from `up`, for logs.
    pub fn threshold(&self, up: bool) -> u64 {
        if up {
            self.lose_below()
        } else {
            self.gain_at()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(quorum: u32, hysteresis: u32) -> Quorum {
        Quorum { quorum, hysteresis }
    }

    /// Every quorum 1..=8, hysteresis 0..=9 (also above the quorum), live
    /// weight 0..=20, from both states, against the rule as the docs state it.
    #[test]
    fn every_small_case_follows_the_rule() {
        for quorum in 1..=8u32 {
            for hysteresis in 0..=9u32 {
                let rule = q(quorum, hysteresis);
                let (qu, hy) = (i64::from(quorum), i64::from(hysteresis));
                for w in 0..=20u64 {
                    let wi = w as i64;
                    let gains = wi >= qu + hy;
                    let loses = w == 0 || wi < qu - hy;
                    let ctx = format!("quorum {quorum} hysteresis {hysteresis} weight {w}");
                    assert_eq!(rule.next(false, w), gains, "from down: {ctx}");
                    assert_eq!(rule.next(true, w), !loses, "from up: {ctx}");
                    assert_eq!(rule.initial(w), gains, "start: {ctx}");
                    // A constant weight never flaps: one step settles it.
                    for up in [false, true] {
                        let once = rule.next(up, w);
                        assert_eq!(rule.next(once, w), once, "settled: {ctx}");
                    }
                    // Without hysteresis the state is the weight's alone.
                    if hysteresis == 0 {
                        assert_eq!(rule.next(false, w), w >= u64::from(quorum), "{ctx}");
                        assert_eq!(rule.next(true, w), w >= u64::from(quorum), "{ctx}");
                    }
                }
            }
        }
    }

    #[test]
    fn hysteresis_holds_the_state_inside_the_band() {
        // quorum 4 ± 1: gains at 5, loses below 3.
        let rule = q(4, 1);
        let walk = [5, 4, 3, 2, 3, 4, 5, 6];
        let mut up = rule.initial(0);
        let states: Vec<bool> = walk
            .iter()
            .map(|&w| {
                up = rule.next(up, w);
                up
            })
            .collect();
        assert_eq!(
            states,
            [true, true, true, false, false, false, true, true],
            "weights {walk:?}"
        );
        assert_eq!((rule.threshold(true), rule.threshold(false)), (3, 5));
    }

    #[test]
    fn the_default_is_any_live_weight_and_no_live_weight_always_loses() {
        let rule = Quorum::default();
        assert_eq!(rule, q(1, 0));
        assert!(rule.initial(1) && !rule.initial(0));
        // A hysteresis above the quorum still loses it at weight 0.
        let wide = q(2, 5);
        assert!(wide.next(true, 1) && !wide.next(true, 0));
        assert!(!wide.next(false, 6) && wide.next(false, 7));
    }

    #[test]
    fn large_values_do_not_overflow() {
        let rule = q(u32::MAX, u32::MAX);
        assert_eq!(rule.gain_at(), 2 * u64::from(u32::MAX));
        assert_eq!(rule.lose_below(), 0);
        assert!(!rule.next(false, u64::from(u32::MAX)));
    }
}
