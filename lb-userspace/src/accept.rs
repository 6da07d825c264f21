//! What the daemon's listeners share: how many connections they may hold
//! for the open-file limit in force, and what an accept loop does when
//! accept fails: waits, longer each time. EMFILE, ENFILE and ENOBUFS leave
//! the pending connection queued, so a loop that retried at once would
//! spin a core until a descriptor freed.

use std::time::Duration;

use log::warn;

const FIRST: Duration = Duration::from_millis(10);
const MOST: Duration = Duration::from_secs(1);

/// The soft open-file limit in force (1,024, systemd's default, if unreadable).
pub fn open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes to a valid rlimit.
    match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
        0 => limit.rlim_cur,
        _ => 1024,
    }
}

/// At most `most` connections, and never more than `1/share` of the
/// open-file limit: the health checks keep the rest of the descriptors.
pub fn connection_cap(open_files: u64, share: u64, most: usize) -> usize {
    usize::try_from(open_files / share)
        .unwrap_or(usize::MAX)
        .clamp(1, most)
}

#[derive(Debug, Default)]
pub struct Backoff {
    /// Failures in a row.
    failures: u32,
}

impl Backoff {
    /// An accept succeeded.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// How long to wait after the `failures`-th failure in a row.
    fn delay(failures: u32) -> Duration {
        FIRST
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(MOST)
    }

    /// Logs `e` (the 1st, 2nd, 4th, 8th... in a row) and waits.
    pub async fn wait(&mut self, what: &str, e: &std::io::Error) {
        self.failures = self.failures.saturating_add(1);
        let delay = Self::delay(self.failures);
        if self.failures.is_power_of_two() {
            warn!(
                "{what}: accept failed ({} in a row): {e}; retrying in {delay:?}",
                self.failures
            );
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_stay_a_small_share_of_the_limit() {
        assert_eq!(connection_cap(1024, 16, 64), 64);
        assert_eq!(connection_cap(1 << 20, 16, 64), 64);
        assert_eq!(connection_cap(256, 16, 64), 16);
        assert_eq!(connection_cap(8, 16, 64), 1);
        assert_eq!(connection_cap(u64::MAX, 64, 16), 16);
    }

    #[test]
    fn the_wait_doubles_up_to_a_second() {
        let waits: Vec<_> = (1..=9).map(Backoff::delay).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            waits,
            [
                ms(10),
                ms(20),
                ms(40),
                ms(80),
                ms(160),
                ms(320),
                ms(640),
                ms(1000),
                ms(1000)
            ]
        );
        assert_eq!(Backoff::delay(u32::MAX), MOST);
    }

    #[tokio::test]
    async fn a_streak_of_failures_waits_and_a_success_resets_it() {
        let mut b = Backoff::default();
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        let start = std::time::Instant::now();
        for _ in 0..4 {
            b.wait("test", &e).await;
        }
        // 10 + 20 + 40 + 80 ms: not a spin.
        assert!(start.elapsed() >= Duration::from_millis(150));
        b.reset();
        let start = std::time::Instant::now();
        b.wait("test", &e).await;
        assert!(start.elapsed() < Duration::from_millis(100));
    }
}
