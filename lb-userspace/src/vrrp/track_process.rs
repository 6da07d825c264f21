//! `track_process`: whether enough copies of a process run, by keepalived
//! 2.2.7's rules (core/track_process.c), as pure functions: which processes
//! match, and the quorum with its `fork_delay` / `terminate_delay`.
//!
//! A process matches on its name (`/proc/PID/stat`'s comm, zombies left
//! out), or with `full_command` on argv\[0\], with the arguments compared as
//! `param_match` says. It is up while `quorum <= count <= quorum_max`; a
//! change lasts `fork_delay` (gained) or `terminate_delay` (lost) before it
//! counts, and one that reverts within the delay never counts.

use std::time::{Duration, Instant};

/// How the arguments are compared (config's `ParamMatch`, kept here so the
/// VRRP core does not depend on the parser).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Params {
    Any,
    Exact,
    /// The process's arguments start with the given ones, whole words.
    Partial,
    /// Likewise, the last given one may be the start of a word.
    Initial,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    pub process: String,
    pub params: Vec<String>,
    pub params_match: Params,
    pub full_command: bool,
}

impl Matcher {
    /// Whether a process with `comm` (None: a zombie or unreadable) and
    /// `cmdline` (NUL-separated, as /proc/PID/cmdline) matches.
    pub fn matches(&self, comm: Option<&str>, cmdline: &[u8]) -> bool {
        if !self.full_command {
            return comm == Some(self.process.as_str());
        }
        let mut words = cmdline.split(|b| *b == 0);
        if words.next() != Some(self.process.as_bytes()) {
            return false;
        }
        let rest = cmdline.get(self.process.len() + 1..).unwrap_or_default();
        // keepalived compares the arguments as bytes, each with its NUL.
        let wanted: Vec<u8> = self
            .params
            .iter()
            .flat_map(|p| p.bytes().chain(std::iter::once(0)))
            .collect();
        match self.params_match {
            Params::Any => true,
            Params::Exact => rest == wanted.as_slice(),
            Params::Partial => rest.starts_with(&wanted),
            Params::Initial => rest.starts_with(&wanted[..wanted.len().saturating_sub(1)]),
        }
    }
}

/// The comm of a `/proc/PID/stat` line, `None` for a zombie ('Z').
pub fn comm_of_stat(stat: &str) -> Option<&str> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let state = stat.get(close + 2..)?.chars().next()?;
    (state != 'Z').then_some(comm)
}

/// The quorum of one tracked process over time.
#[derive(Clone, Debug)]
pub struct Quorum {
    pub quorum: u32,
    pub quorum_max: u32,
    pub fork_delay: Duration,
    pub terminate_delay: Duration,
    up: Option<bool>,
    /// A change waiting out its delay: (the new state, when it counts).
    pending: Option<(bool, Instant)>,
}

impl Quorum {
    pub fn new(
        quorum: u32,
        quorum_max: u32,
        fork_delay: Duration,
        terminate_delay: Duration,
    ) -> Self {
        Quorum {
            quorum,
            quorum_max,
            fork_delay,
            terminate_delay,
            up: None,
            pending: None,
        }
    }

    /// Records `count` matching processes at `now`; returns whether the
    /// process is up. The first count counts at once (keepalived's start).
    pub fn observe(&mut self, now: Instant, count: u32) -> bool {
        let want = (self.quorum..=self.quorum_max).contains(&count);
        let Some(up) = self.up else {
            self.up = Some(want);
            return want;
        };
        if want == up {
            self.pending = None;
            return up;
        }
        let delay = if want {
            self.fork_delay
        } else {
            self.terminate_delay
        };
        let due = match self.pending {
            Some((w, at)) if w == want => at,
            _ => {
                let at = now + delay;
                self.pending = Some((want, at));
                at
            }
        };
        if now >= due {
            self.pending = None;
            self.up = Some(want);
            return want;
        }
        up
    }

    /// When a pending change would count, to poll again then.
    pub fn pending_until(&self) -> Option<Instant> {
        self.pending.map(|(_, at)| at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(process: &str, params: &[&str], params_match: Params, full: bool) -> Matcher {
        Matcher {
            process: process.into(),
            params: params.iter().map(|p| p.to_string()).collect(),
            params_match,
            full_command: full,
        }
    }

    #[test]
    fn names_and_command_lines() {
        let nginx = b"/usr/sbin/nginx\0-g\0daemon off;\0";
        let by_name = m("nginx", &[], Params::Any, false);
        assert!(by_name.matches(Some("nginx"), nginx));
        assert!(!by_name.matches(Some("nginx: worker"), nginx));
        assert!(!by_name.matches(None, nginx), "zombies do not count");
        let full = m("/usr/sbin/nginx", &[], Params::Any, true);
        assert!(full.matches(Some("x"), nginx), "argv[0], any arguments");
        assert!(!full.matches(Some("nginx"), b"nginx\0"), "argv[0] exactly");
        let exact = m(
            "/usr/sbin/nginx",
            &["-g", "daemon off;"],
            Params::Exact,
            true,
        );
        assert!(exact.matches(None, nginx));
        assert!(
            !exact.matches(None, b"/usr/sbin/nginx\0-g\0daemon off;\0-x\0"),
            "no more"
        );
        assert!(!exact.matches(None, b"/usr/sbin/nginx\0-g\0"), "no fewer");
        let none = m("/usr/sbin/nginx", &[], Params::Exact, true);
        assert!(
            none.matches(None, b"/usr/sbin/nginx\0"),
            "exact, no arguments"
        );
        assert!(!none.matches(None, nginx));
        let partial = m("/usr/sbin/nginx", &["-g"], Params::Partial, true);
        assert!(partial.matches(None, nginx), "starts with whole words");
        assert!(!m("/usr/sbin/nginx", &["-"], Params::Partial, true).matches(None, nginx));
        let initial = m("/usr/sbin/nginx", &["-g", "daemon"], Params::Initial, true);
        assert!(
            initial.matches(None, nginx),
            "the last may be a word's start"
        );
        assert!(
            !m("/usr/sbin/nginx", &["-", "daemon"], Params::Initial, true).matches(None, nginx)
        );
    }

    #[test]
    fn stat_lines() {
        assert_eq!(comm_of_stat("42 (nginx) S 1 42"), Some("nginx"));
        assert_eq!(
            comm_of_stat("42 (a (b) c) R 1"),
            Some("a (b) c"),
            "the last paren"
        );
        assert_eq!(comm_of_stat("42 (dead) Z 1"), None);
        assert_eq!(comm_of_stat("garbage"), None);
    }

    #[test]
    fn quorum_and_its_delays() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut q = Quorum::new(2, 3, s, 2 * s);
        assert!(!q.observe(t0, 1), "the first count counts at once: 1 < 2");
        assert!(!q.observe(t0, 2), "gained: fork_delay first");
        assert_eq!(q.pending_until(), Some(t0 + s));
        assert!(!q.observe(t0 + s / 2, 3), "still in range, still waiting");
        assert!(q.observe(t0 + s, 3), "a second later: up");
        assert!(
            q.observe(t0 + 2 * s, 4),
            "above quorum_max: terminate_delay"
        );
        assert!(
            q.observe(t0 + 3 * s, 2),
            "back in range within it: nothing happened"
        );
        assert_eq!(q.pending_until(), None);
        assert!(q.observe(t0 + 4 * s, 0));
        assert!(q.observe(t0 + 5 * s, 1), "still out of range, 1 s of 2");
        assert!(!q.observe(t0 + 6 * s, 0), "2 s later: down");
        let mut q = Quorum::new(1, u32::MAX, Duration::ZERO, Duration::ZERO);
        assert!(q.observe(t0, 5));
        assert!(!q.observe(t0, 0), "no delays: at once");
        let mut none_running = Quorum::new(0, 0, Duration::ZERO, Duration::ZERO);
        assert!(
            none_running.observe(t0, 0),
            "quorum_max 0: up while none runs"
        );
        assert!(!none_running.observe(t0, 1));
    }
}
