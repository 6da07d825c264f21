//! When a real changes state, keepalived's way: checked every `delay_loop`;
//! a failure is retried `retry` times, `delay_before_retry` apart, before the
//! real is declared down; one success brings it back. An attempt that could
//! not run at all (the daemon's own resources ran out) counts for nothing.
//! Pure: the caller passes the time.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub delay_loop: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
}

/// What one attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// `Some(up)` when the real changed state.
    pub transition: Option<bool>,
    /// When to run the next attempt.
    pub next_in: Duration,
    /// For a transition to down: from the first failed attempt to now.
    pub detected_in: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Tracker {
    policy: Policy,
    up: bool,
    failures: u32,
    first_failure: Option<Instant>,
}

impl Tracker {
    /// `up`: the state before the first check (down with keepalived's `alpha`).
    pub fn new(policy: Policy, up: bool) -> Self {
        Self {
            policy,
            up,
            failures: 0,
            first_failure: None,
        }
    }

    /// A real no check has judged since the daemon started: keepalived's
    /// "one failure is enough initially" (its retries are spent), so a dead
    /// real assumed up goes down at its first failed attempt.
    pub fn unjudged(policy: Policy, up: bool) -> Self {
        Self {
            failures: policy.retry,
            ..Self::new(policy, up)
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// An attempt that could not run: neither a failure nor a success, so
    /// the state and the failure count stay as they are; it is tried again
    /// after `delay_before_retry` (at most `delay_loop`).
    pub fn inconclusive(&self) -> Step {
        Step {
            transition: None,
            next_in: self.policy.delay_before_retry.min(self.policy.delay_loop),
            detected_in: None,
        }
    }

    pub fn observe(&mut self, ok: bool, now: Instant) -> Step {
        let p = self.policy;
        if ok {
            let transition = (!self.up).then_some(true);
            self.up = true;
            self.failures = 0;
            self.first_failure = None;
            return Step {
                transition,
                next_in: p.delay_loop,
                detected_in: None,
            };
        }
        let first = *self.first_failure.get_or_insert(now);
        self.failures += 1;
        if !self.up {
            return Step {
                transition: None,
                next_in: p.delay_loop,
                detected_in: None,
            };
        }
        if self.failures <= p.retry {
            return Step {
                transition: None,
                next_in: p.delay_before_retry,
                detected_in: None,
            };
        }
        self.up = false;
        Step {
            transition: Some(false),
            next_in: p.delay_loop,
            detected_in: Some(now - first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        delay_loop: Duration::from_secs(6),
        retry: 2,
        delay_before_retry: Duration::from_secs(1),
    };

    #[test]
    fn unjudged_goes_down_at_its_first_failure_and_retries_once_it_has_been_up() {
        let t0 = Instant::now();
        let mut t = Tracker::unjudged(POLICY, true);
        let s = t.observe(false, t0);
        assert_eq!(
            (s.transition, s.detected_in),
            (Some(false), Some(Duration::ZERO))
        );
        assert_eq!(t.observe(true, t0).transition, Some(true));
        // Judged once: the next failure is retried as usual.
        assert_eq!(t.observe(false, t0).transition, None);
        // Up after its first success, then the usual retries too.
        let mut t = Tracker::unjudged(POLICY, true);
        assert_eq!(t.observe(true, t0).transition, None);
        assert_eq!(t.observe(false, t0).transition, None);
    }

    #[test]
    fn down_after_retry_plus_one_failures_spaced_by_delay_before_retry() {
        let t0 = Instant::now();
        let mut t = Tracker::new(POLICY, true);
        let s = t.observe(false, t0);
        assert_eq!((s.transition, s.next_in), (None, Duration::from_secs(1)));
        let s = t.observe(false, t0 + Duration::from_secs(1));
        assert_eq!((s.transition, s.next_in), (None, Duration::from_secs(1)));
        let s = t.observe(false, t0 + Duration::from_secs(2));
        assert_eq!(s.transition, Some(false));
        assert_eq!(
            s.next_in,
            Duration::from_secs(6),
            "a down real is checked every delay_loop"
        );
        assert_eq!(s.detected_in, Some(Duration::from_secs(2)));
        assert!(!t.is_up());
        assert_eq!(
            t.observe(false, t0 + Duration::from_secs(8)).transition,
            None,
            "already down"
        );
    }

    #[test]
    fn one_success_resets_the_count_and_brings_it_back() {
        let t0 = Instant::now();
        let mut t = Tracker::new(POLICY, true);
        t.observe(false, t0);
        t.observe(false, t0);
        assert_eq!(t.observe(true, t0).transition, None, "never went down");
        assert_eq!(t.observe(false, t0).transition, None, "count started again");
        t.observe(false, t0);
        assert_eq!(t.observe(false, t0).transition, Some(false));
        let s = t.observe(true, t0);
        assert_eq!(
            (s.transition, s.next_in),
            (Some(true), Duration::from_secs(6))
        );
    }

    #[test]
    fn retry_zero_fails_at_once_and_alpha_starts_down() {
        let mut t = Tracker::new(Policy { retry: 0, ..POLICY }, true);
        assert_eq!(t.observe(false, Instant::now()).transition, Some(false));
        let mut t = Tracker::new(POLICY, false);
        assert_eq!(t.observe(true, Instant::now()).transition, Some(true));
    }

    #[test]
    fn an_attempt_that_could_not_run_counts_for_nothing() {
        let t0 = Instant::now();
        let mut t = Tracker::new(POLICY, true);
        t.observe(false, t0);
        t.observe(false, t0);
        for _ in 0..100 {
            let s = t.inconclusive();
            assert_eq!(
                (s.transition, s.next_in),
                (None, Duration::from_secs(1)),
                "retried soon, no change"
            );
        }
        assert!(t.is_up());
        // The streak resumes where it was: the third real failure decides.
        assert_eq!(t.observe(false, t0).transition, Some(false));
        let quick = Tracker::new(
            Policy {
                delay_before_retry: Duration::from_secs(60),
                ..POLICY
            },
            false,
        );
        assert_eq!(quick.inconclusive().next_in, Duration::from_secs(6));
        assert!(!quick.is_up(), "a down real stays down until a success");
    }

    /// Every sequence of up to 9 outcomes, for `retry` 0 to 3 and both
    /// starting states, against a direct statement of keepalived's rule.
    #[test]
    fn every_short_sequence_follows_the_rule() {
        let t0 = Instant::now();
        let at = |k: u32| t0 + Duration::from_secs(u64::from(k));
        for retry in 0..=3 {
            let policy = Policy { retry, ..POLICY };
            for start_up in [true, false] {
                for len in 0..=9u32 {
                    for bits in 0..(1u32 << len) {
                        let mut tracker = Tracker::new(policy, start_up);
                        let (mut up, mut streak, mut streak_start) = (start_up, 0, 0);
                        for k in 0..len {
                            let ok = bits >> k & 1 == 1;
                            let step = tracker.observe(ok, at(k));
                            let ctx = format!(
                                "retry {retry}, start up {start_up}, bits {bits:b}, step {k}"
                            );
                            if ok {
                                assert_eq!(step.transition, (!up).then_some(true), "{ctx}");
                                assert_eq!(step.next_in, policy.delay_loop, "{ctx}");
                                (up, streak) = (true, 0);
                            } else {
                                if streak == 0 {
                                    streak_start = k;
                                }
                                streak += 1;
                                let goes_down = up && streak == retry + 1;
                                assert_eq!(step.transition, goes_down.then_some(false), "{ctx}");
                                let detected = Duration::from_secs(u64::from(k - streak_start));
                                assert_eq!(
                                    step.detected_in,
                                    goes_down.then_some(detected),
                                    "{ctx}"
                                );
                                let retrying = up && !goes_down;
                                let next = if retrying {
                                    policy.delay_before_retry
                                } else {
                                    policy.delay_loop
                                };
                                assert_eq!(step.next_in, next, "{ctx}");
                                up &= !goes_down;
                            }
                            assert_eq!(tracker.is_up(), up, "{ctx}");
                        }
                    }
                }
            }
        }
    }
}
