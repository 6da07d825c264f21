//! Effective priority from `track_script` / `track_interface` results, by
//! keepalived 2.2.7's rules (vrrp_track.c `process_script_update_priority`,
//! `vrrp_set_effective_priority`):
//! - weight > 0 is added while the object is up, weight < 0 while it is
//!   down; `reverse` negates the adjustment (and swaps up/down for weight 0);
//! - weight 0: the instance is in Fault while the object is down;
//! - the sum is clamped to 1..=254; an address owner (255) never moves.

use super::fsm::PRIO_OWNER;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracked {
    /// keepalived accepts -253..=253 (254 is cut to 253 with a warning).
    pub weight: i32,
    pub reverse: bool,
    /// Script succeeding (after rise/fall), interface up.
    pub up: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effective {
    /// Feed as `Input::PriorityChanged`.
    pub priority: u8,
    /// Feed as `Input::FaultChanged`.
    pub fault: bool,
}

fn adjustment(t: &Tracked) -> i64 {
    let w = i64::from(t.weight);
    let raw = match (w > 0, t.up) {
        (true, true) | (false, false) => w,
        _ => 0,
    };
    if t.reverse { -raw } else { raw }
}

pub fn effective(base: u8, tracked: &[Tracked]) -> Effective {
    let fault = tracked.iter().any(|t| t.weight == 0 && t.up == t.reverse);
    let priority = if base == PRIO_OWNER {
        PRIO_OWNER
    } else {
        let sum = i64::from(base) + tracked.iter().map(adjustment).sum::<i64>();
        // In range by the clamp.
        sum.clamp(1, i64::from(PRIO_OWNER - 1)) as u8
    };
    Effective { priority, fault }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(weight: i32, reverse: bool, up: bool) -> Tracked {
        Tracked {
            weight,
            reverse,
            up,
        }
    }

    #[test]
    fn weights_by_keepalived_rules() {
        let cases = [
            // (base, tracked, priority, fault, why)
            (100, vec![], 100, false, "nothing tracked"),
            (
                100,
                vec![tr(10, false, true)],
                110,
                false,
                "positive weight added while up",
            ),
            (
                100,
                vec![tr(10, false, false)],
                100,
                false,
                "positive weight: nothing while down",
            ),
            (
                100,
                vec![tr(-20, false, true)],
                100,
                false,
                "negative weight: nothing while up",
            ),
            (
                100,
                vec![tr(-20, false, false)],
                80,
                false,
                "negative weight applied while down",
            ),
            (
                100,
                vec![tr(10, true, true)],
                90,
                false,
                "reverse: positive weight subtracted while up",
            ),
            (
                100,
                vec![tr(-20, true, false)],
                120,
                false,
                "reverse: negative weight added while down",
            ),
            (
                100,
                vec![tr(0, false, false)],
                100,
                true,
                "weight 0 down: fault",
            ),
            (
                100,
                vec![tr(0, false, true)],
                100,
                false,
                "weight 0 up: fine",
            ),
            (
                100,
                vec![tr(0, true, true)],
                100,
                true,
                "weight 0 reverse: fault while up",
            ),
            (
                100,
                vec![
                    tr(10, false, true),
                    tr(-30, false, false),
                    tr(5, false, true),
                ],
                85,
                false,
                "summed",
            ),
            (250, vec![tr(50, false, true)], 254, false, "clamped to 254"),
            (10, vec![tr(-50, false, false)], 1, false, "clamped to 1"),
            (
                255,
                vec![tr(-50, false, false)],
                255,
                false,
                "owner never moves",
            ),
            (
                255,
                vec![tr(0, false, false)],
                255,
                true,
                "owner can still fault",
            ),
        ];
        for (base, tracked, priority, fault, why) in cases {
            assert_eq!(
                effective(base, &tracked),
                Effective { priority, fault },
                "{why}"
            );
        }
    }
}
