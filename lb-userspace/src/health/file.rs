//! FILE_CHECK: a `track_file`'s number moves a real's weight, or takes it
//! down (keepalived check_file.c / track_file.c). The file is read at each
//! of the real's check attempts (every `delay_loop`); keepalived reacts to
//! inotify events at once.

use std::path::PathBuf;

use super::probe::{Attempt, Failure, Outcome, Probe};
use crate::vrrp::track::parse_file_value;

/// The real's weight with the file's number `value`: `None` is down.
/// Weight 0: down while the number is not 0 (`reverse`: while it is 0).
/// Otherwise the real's weight plus number × weight (negated by
/// `reverse`), at least 0; keepalived's IPVS_WEIGHT_FAULT (the product
/// reaching i32::MIN) is down too.
pub fn checker_weight(base: u32, value: i64, weight: i32, reverse: bool) -> Option<u32> {
    if weight == 0 {
        return ((value != 0) == reverse).then_some(base);
    }
    let sign = if reverse { -1 } else { 1 };
    let status = value
        .saturating_mul(i64::from(weight))
        .saturating_mul(sign)
        .clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    if status == i64::from(i32::MIN) {
        return None;
    }
    let w = (i64::from(base) + status).clamp(0, i64::from(u32::MAX));
    u32::try_from(w).ok()
}

pub struct FileProbe {
    pub name: String,
    pub path: PathBuf,
    pub weight: i32,
    pub reverse: bool,
    /// The real's configured weight.
    pub base: u32,
}

impl Probe for FileProbe {
    fn run(&self) -> Attempt<'_> {
        Box::pin(async move {
            // Missing or empty: 0, as keepalived reads it.
            let value = match std::fs::read(&self.path) {
                Ok(bytes) => parse_file_value(&bytes),
                Err(_) => Some(0),
            };
            let Some(value) = value else {
                return Outcome::Down(Failure::BadResponse(format!(
                    "{} holds a number out of range",
                    self.path.display()
                )));
            };
            // Always the weight, its own included: an Up without one
            // would leave a weight set by an earlier number in place.
            match checker_weight(self.base, value, self.weight, self.reverse) {
                Some(w) => Outcome::UpWithWeight(w),
                None => Outcome::Down(Failure::BadResponse(format!(
                    "{} reads {value}",
                    self.path.display()
                ))),
            }
        })
    }

    fn describe(&self) -> String {
        format!("FILE_CHECK {}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_moves_the_weight_or_takes_the_real_down() {
        // (base, value, weight, reverse, want, why)
        let cases = [
            (10, 0, 1, false, Some(10), "0: the real's weight"),
            (10, 5, 1, false, Some(15), "added"),
            (10, 5, 3, false, Some(25), "times the weight"),
            (10, 5, 3, true, Some(0), "reverse subtracts; never below 0"),
            (10, -4, 2, false, Some(2), "a negative number lowers it"),
            (10, 0, 0, false, Some(10), "weight 0, 0: up"),
            (10, 1, 0, false, None, "weight 0, not 0: down"),
            (10, 0, 0, true, None, "weight 0 reverse, 0: down"),
            (10, 3, 0, true, Some(10), "weight 0 reverse, not 0: up"),
            (10, i64::from(i32::MIN), 1, false, None, "IPVS_WEIGHT_FAULT"),
            (
                10,
                i64::from(i32::MAX) + 1,
                -65535,
                false,
                None,
                "saturates to the fault",
            ),
            (
                1,
                i64::from(i32::MAX),
                65535,
                false,
                Some(1 + i32::MAX as u32),
                "saturates high",
            ),
        ];
        for (base, value, weight, reverse, want, why) in cases {
            assert_eq!(checker_weight(base, value, weight, reverse), want, "{why}");
        }
    }

    #[tokio::test]
    async fn the_probe_reads_the_file_each_attempt() {
        let path = std::env::temp_dir().join(format!("xdpvs-fc-{}", std::process::id()));
        let probe = FileProbe {
            name: "f".into(),
            path: path.clone(),
            weight: 0,
            reverse: false,
            base: 4,
        };
        let _ = std::fs::remove_file(&path);
        assert_eq!(probe.run().await, Outcome::UpWithWeight(4), "missing: 0");
        std::fs::write(&path, "1\n").unwrap();
        assert!(matches!(probe.run().await, Outcome::Down(_)));
        let weighted = FileProbe { weight: 2, ..probe };
        std::fs::write(&path, "3\n").unwrap();
        assert_eq!(weighted.run().await, Outcome::UpWithWeight(10));
        std::fs::write(&path, "99999999999\n").unwrap();
        assert!(
            matches!(weighted.run().await, Outcome::Down(_)),
            "out of range"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
