//! What a benchmark prints, kept for the README: each benchmark's summary
//! goes to the terminal and, when `XDPVS_BENCH_REPORTS` names a directory
//! (`cargo xtask bench` sets it), to `<name>.md` there, headed by the machine
//! and the date. `cargo xtask bench` then splices every report into
//! README.md between its markers, so the performance section is always the
//! last run's.

use std::{fmt::Write as _, path::PathBuf};

use anyhow::{Context as _, Result};

pub struct Report {
    name: &'static str,
    text: String,
}

impl Report {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            text: String::new(),
        }
    }

    /// Prints `line` and keeps it.
    pub fn line(&mut self, line: impl AsRef<str>) {
        println!("{}", line.as_ref());
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    /// Writes the kept lines under a line naming the machine, the time and
    /// the load averages, if `XDPVS_BENCH_REPORTS` is set.
    pub fn save(&self, load_before: &str, load_after: &str) -> Result<()> {
        let Some(dir) = std::env::var_os("XDPVS_BENCH_REPORTS").map(PathBuf::from) else {
            return Ok(());
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Last run: {}, {}; load average {load_before} before, {load_after} after.\n",
            machine(),
            utc_now()
        );
        out.push_str(&self.text);
        let path = dir.join(format!("{}.md", self.name));
        std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))
    }
}

/// The median of `v` (of an even count, the mean of the middle two).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The three load averages of /proc/loadavg: a busy machine shows here.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// "2 vCPUs AMD EPYC, kernel 6.18.44": what the figures were measured on.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    // Online CPUs, not this thread's affinity (the benchmark pins itself).
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} vCPUs {model}, kernel {}", kernel.trim())
}

/// The current time, "2026-12-01 15:04 UTC".
pub fn utc_now() -> String {
    // SAFETY: time(NULL) has no preconditions; gmtime_r writes the tm given.
    let tm = unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&t, &mut tm);
        tm
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
