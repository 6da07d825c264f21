//! Effective priority from `track_script` / `track_interface` results, by
//! keepalived 2.2.7's rules (vrrp_track.c `process_script_update_priority`,
//! `vrrp_set_effective_priority`):
//! - weight > 0 is added while the object is up, weight < 0 while it is
//!   down; `reverse` negates the adjustment (and swaps up/down for weight 0);
//! - weight 0: the instance is in Fault while the object is down;
//! - the sum is clamped to 1..=254; an address owner (255) never moves.
//!
//! `track_file` (keepalived track_file.c): the number in the file times the
//! weight (negated by `reverse`) is added; at -254 or below the instance is
//! in Fault, above 253 it counts as 253. Weight 0: Fault while the number is
//! not 0 (with `reverse`: while it is 0).

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

/// A `track_file` as one instance tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackedFile {
    /// -254..=254; keepalived's default 1.
    pub weight: i32,
    pub reverse: bool,
    /// The number last read from the file (0: missing or empty).
    pub value: i64,
}

/// What a tracked file does to the priority: `None` is Fault.
pub fn file_adjustment(f: &TrackedFile) -> Option<i64> {
    if f.weight == 0 {
        return ((f.value != 0) == f.reverse).then_some(0);
    }
    let sign = if f.reverse { -1 } else { 1 };
    let status = f
        .value
        .saturating_mul(i64::from(f.weight))
        .saturating_mul(sign);
    (status > -254).then_some(status.min(253))
}

/// keepalived's reading of a track file's first 127 bytes: C `strtol` with
/// base 0 (leading blanks, a sign, `0x` hex, `0` octal, then digits up to
/// the first other character; nothing numeric reads as 0). `None`: out of
/// range (below i32::MIN or above i32::MAX + 1), the previous value stays.
pub fn parse_file_value(text: &[u8]) -> Option<i64> {
    let text = &text[..text.len().min(127)];
    let mut i = text
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .unwrap_or(text.len());
    let negative = match text.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let hex_digit = |b: Option<&u8>| b.is_some_and(u8::is_ascii_hexdigit);
    let radix = match (text.get(i), text.get(i + 1)) {
        (Some(b'0'), Some(b'x' | b'X')) if hex_digit(text.get(i + 2)) => {
            i += 2;
            16
        }
        (Some(b'0'), _) => 8,
        _ => 10,
    };
    let mut value: i64 = 0;
    for &b in &text[i..] {
        let Some(d) = char::from(b).to_digit(radix) else {
            break;
        };
        // Past i64 (strtol's ERANGE) is out of range either way.
        value = value
            .checked_mul(i64::from(radix))?
            .checked_add(i64::from(d))?;
    }
    let value = if negative { -value } else { value };
    (i64::from(i32::MIN)..=i64::from(i32::MAX) + 1)
        .contains(&value)
        .then_some(value)
}

fn adjustment(t: &Tracked) -> i64 {
    let w = i64::from(t.weight);
    let raw = match (w > 0, t.up) {
        (true, true) | (false, false) => w,
        _ => 0,
    };
    if t.reverse { -raw } else { raw }
}

pub fn effective(base: u8, tracked: &[Tracked], files: &[TrackedFile]) -> Effective {
    let file_faults = files.iter().any(|f| file_adjustment(f).is_none());
    let fault = file_faults || tracked.iter().any(|t| t.weight == 0 && t.up == t.reverse);
    let priority = if base == PRIO_OWNER {
        PRIO_OWNER
    } else {
        let from_files: i64 = files.iter().filter_map(file_adjustment).sum();
        let sum = i64::from(base) + tracked.iter().map(adjustment).sum::<i64>() + from_files;
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
                effective(base, &tracked, &[]),
                Effective { priority, fault },
                "{why}"
            );
        }
    }

    fn file(weight: i32, reverse: bool, value: i64) -> TrackedFile {
        TrackedFile {
            weight,
            reverse,
            value,
        }
    }

    #[test]
    fn file_numbers_times_weights() {
        // (weight, reverse, value, adjustment or None for Fault, why)
        let cases = [
            (1, false, 0, Some(0), "default weight, 0: nothing"),
            (1, false, 20, Some(20), "the number itself"),
            (1, false, -20, Some(-20), "negative numbers lower it"),
            (5, false, 3, Some(15), "times the weight"),
            (-5, false, 3, Some(-15), "negative weight"),
            (5, true, 3, Some(-15), "reverse negates"),
            (-5, true, -3, Some(-15), "both negative, reversed"),
            (1, false, 253, Some(253), "253 is the most"),
            (1, false, 1000, Some(253), "above 253 counts as 253"),
            (1, false, -253, Some(-253), "-253 still counts"),
            (1, false, -254, None, "-254: fault"),
            (100, false, -3, None, "below -254: fault"),
            (
                254,
                false,
                i64::from(i32::MIN),
                None,
                "no overflow at the extremes",
            ),
            (
                -254,
                false,
                i64::from(i32::MIN),
                Some(253),
                "a huge positive product",
            ),
            (0, false, 0, Some(0), "weight 0, 0: fine"),
            (0, false, 7, None, "weight 0, not 0: fault"),
            (0, false, -1, None, "weight 0, negative: fault"),
            (0, true, 0, None, "weight 0 reverse, 0: fault"),
            (0, true, 7, Some(0), "weight 0 reverse, not 0: fine"),
        ];
        for (weight, reverse, value, want, why) in cases {
            assert_eq!(
                file_adjustment(&file(weight, reverse, value)),
                want,
                "{why}"
            );
        }
        // Every weight and a range of values: the rule as written above.
        for weight in -254..=254 {
            for reverse in [false, true] {
                for value in -300i64..=300 {
                    let got = file_adjustment(&file(weight, reverse, value));
                    let want = if weight == 0 {
                        ((value != 0) == reverse).then_some(0)
                    } else {
                        let s = value * i64::from(weight) * if reverse { -1 } else { 1 };
                        (s > -254).then_some(s.min(253))
                    };
                    assert_eq!(got, want, "weight {weight} reverse {reverse} value {value}");
                }
            }
        }
    }

    #[test]
    fn files_join_the_other_tracking() {
        let up = tr(10, false, true);
        assert_eq!(
            effective(100, &[up], &[file(2, false, 5)]),
            Effective {
                priority: 120,
                fault: false
            }
        );
        assert_eq!(
            effective(100, &[up], &[file(1, false, 200)]),
            Effective {
                priority: 254,
                fault: false
            },
            "clamped like the rest"
        );
        assert_eq!(
            effective(100, &[], &[file(1, false, 30), file(0, false, 1)]),
            Effective {
                priority: 130,
                fault: true
            },
            "one file at fault faults the instance"
        );
        assert_eq!(
            effective(255, &[], &[file(1, false, -50)]),
            Effective {
                priority: 255,
                fault: false
            },
            "the owner does not move"
        );
        assert!(effective(255, &[], &[file(1, false, -254)]).fault);
    }

    #[test]
    fn file_text_as_strtol_reads_it() {
        let cases: [(&[u8], Option<i64>); 16] = [
            (b"", Some(0)),
            (b"\n", Some(0)),
            (b"42\n", Some(42)),
            (b"  -17 trailing", Some(-17)),
            (b"+5", Some(5)),
            (b"0x1F", Some(31)),
            (b"0X1f\n", Some(31)),
            (b"010", Some(8)),
            (b"09", Some(0)),
            (b"0x", Some(0)),
            (b"abc", Some(0)),
            (b"12abc", Some(12)),
            (b"2147483648", Some(2_147_483_648)),
            (b"2147483649", None),
            (b"-2147483649", None),
            (b"99999999999999999999999", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_file_value(text),
                want,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        let mut long = vec![b' '; 126];
        long.extend_from_slice(b"12");
        assert_eq!(
            parse_file_value(&long),
            Some(1),
            "only the first 127 bytes count"
        );
    }
}
