//! Each VRRP instance's last state on disk (`--state-dir`, default
//! `/run/xdpvs`), so a daemon restarted after a crash or replaced by an
//! upgrade can resume as master within Master_Down_Interval instead of
//! dropping its VIPs and waiting for an election.
//!
//! One JSON file per instance, rewritten atomically (temporary file, then
//! rename) on every transition and on every advert a master sends, so the
//! timestamp says when the instance was last known to be master. Files are
//! named after the network namespace too (its cookie, never reused within a
//! boot, unlike its inode): daemons in two namespaces share `/run` but never
//! a file, and a namespace made after another is deleted starts afresh. Time is CLOCK_BOOTTIME with the boot id beside
//! it, so neither a reboot nor a wall-clock step counts as "recent".

use std::{
    fs, io,
    net::IpAddr,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

pub const DEFAULT_DIR: &str = "/run/xdpvs";

/// What one instance last wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub instance: String,
    pub vrid: u8,
    /// "MASTER", "BACKUP", "FAULT" or "INIT".
    pub state: String,
    pub priority: u8,
    /// Us while master, else the last master heard.
    pub master: Option<IpAddr>,
    pub boot_id: String,
    /// CLOCK_BOOTTIME when written.
    pub boottime_ms: u64,
    pub pid: u32,
}

/// A point in time that survives a process but not a reboot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootTime {
    pub boot_id: String,
    pub since_boot: Duration,
}

impl BootTime {
    pub fn now() -> io::Result<Self> {
        // Read once: it cannot change while we run, and masters record often.
        static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let boot_id = match BOOT_ID.get() {
            Some(id) => id.clone(),
            None => {
                let id = fs::read_to_string("/proc/sys/kernel/random/boot_id")?
                    .trim()
                    .to_string();
                BOOT_ID.get_or_init(|| id).clone()
            }
        };
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we pass and nothing else.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let since_boot = Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or_default(),
            u32::try_from(ts.tv_nsec).unwrap_or_default(),
        );
        Ok(Self {
            boot_id,
            since_boot,
        })
    }
}

/// Whether an instance that wrote `saved` may resume as master at `now`:
/// it was master, on this boot, and less than `down_interval` ago, so no
/// backup can have taken over yet (their Master_Down_Interval runs from
/// our last advert and is at least ours when their priority is lower).
pub fn may_resume(saved: &Saved, now: &BootTime, down_interval: Duration) -> bool {
    if saved.state != "MASTER" || saved.boot_id != now.boot_id {
        return false;
    }
    let at = Duration::from_millis(saved.boottime_ms);
    // A time ahead of now is a corrupt file: no resume.
    now.since_boot
        .checked_sub(at)
        .is_some_and(|age| age < down_interval)
}

/// The state directory of one daemon.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    /// Names this network namespace.
    netns: String,
}

/// The network namespace's cookie (SO_NETNS_COOKIE, Linux 5.14), else its
/// inode number.
fn netns_id() -> io::Result<String> {
    // SAFETY: a socket this function closes; getsockopt writes at most
    // `len` bytes into the u64 we pass.
    let cookie = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        let mut cookie = 0u64;
        let mut len = size_of::<u64>() as libc::socklen_t;
        let ok = fd >= 0
            && libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_NETNS_COOKIE,
                (&raw mut cookie).cast(),
                &mut len,
            ) == 0;
        if fd >= 0 {
            libc::close(fd);
        }
        ok.then_some(cookie)
    };
    match cookie {
        Some(c) => Ok(format!("c{c}")),
        None => Ok(format!("i{}", fs::metadata("/proc/self/ns/net")?.ino())),
    }
}

/// Keeps the name to characters that are safe in a file name.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Store {
    pub fn new(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            netns: netns_id()?,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, instance: &str, vrid: u8) -> PathBuf {
        self.dir.join(format!(
            "vrrp-{}-{}-{vrid}.json",
            self.netns,
            file_safe(instance)
        ))
    }

    /// The instance's last record; `None` when missing or unreadable.
    pub fn load(&self, instance: &str, vrid: u8) -> Option<Saved> {
        let text = fs::read_to_string(self.path(instance, vrid)).ok()?;
        serde_json::from_str(&text)
            .ok()
            .filter(|s: &Saved| s.instance == instance && s.vrid == vrid)
    }

    /// Removes the record: a planned stop handed over, nothing to resume.
    pub fn forget(&self, instance: &str, vrid: u8) -> io::Result<()> {
        match fs::remove_file(self.path(instance, vrid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Replaces the record atomically: readers see the old or the new one.
    pub fn save(&self, saved: &Saved) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path(&saved.instance, saved.vrid);
        // Per process: during an upgrade the old and new daemon both write.
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let text = serde_json::to_vec(saved).map_err(io::Error::other)?;
        fs::write(&tmp, text)?;
        fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOWN: Duration = Duration::from_millis(3_609);

    fn saved(state: &str, at_ms: u64) -> Saved {
        Saved {
            instance: "VI_1".into(),
            vrid: 51,
            state: state.into(),
            priority: 100,
            master: None,
            boot_id: "boot-a".into(),
            boottime_ms: at_ms,
            pid: 1,
        }
    }

    fn at(ms: u64) -> BootTime {
        BootTime {
            boot_id: "boot-a".into(),
            since_boot: Duration::from_millis(ms),
        }
    }

    #[test]
    fn master_resumes_only_within_master_down_interval() {
        assert!(may_resume(&saved("MASTER", 10_000), &at(11_000), DOWN));
        assert!(may_resume(&saved("MASTER", 10_000), &at(13_608), DOWN));
        assert!(
            !may_resume(&saved("MASTER", 10_000), &at(13_609), DOWN),
            "a backup may have taken over by now"
        );
        assert!(!may_resume(&saved("BACKUP", 10_000), &at(10_100), DOWN));
        assert!(
            !may_resume(&saved("INIT", 10_000), &at(10_100), DOWN),
            "a planned stop handed over"
        );
    }

    #[test]
    fn reboot_or_time_ahead_never_resumes() {
        let other_boot = BootTime {
            boot_id: "boot-b".into(),
            ..at(10_100)
        };
        assert!(!may_resume(&saved("MASTER", 10_000), &other_boot, DOWN));
        assert!(!may_resume(&saved("MASTER", 10_000), &at(9_000), DOWN));
    }

    #[test]
    fn save_then_load_round_trips_and_replaces() {
        let dir = std::env::temp_dir().join(format!("xdpvs-persist-{}", std::process::id()));
        let store = Store::new(&dir).expect("store");
        let mut s = saved("MASTER", 5);
        s.instance = "VI 1/x".into();
        store.save(&s).expect("save");
        assert_eq!(store.load("VI 1/x", 51), Some(s.clone()));
        s.state = "BACKUP".into();
        store.save(&s).expect("save again");
        assert_eq!(store.load("VI 1/x", 51), Some(s));
        store.forget("VI 1/x", 51).expect("forget");
        assert_eq!(store.load("VI 1/x", 51), None);
        store
            .forget("VI 1/x", 51)
            .expect("forgetting twice is fine");
        store.save(&saved("MASTER", 6)).expect("save");
        assert_eq!(store.load("VI 1/x", 52), None, "another VRID");
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn corrupt_file_is_no_record() {
        let dir = std::env::temp_dir().join(format!("xdpvs-persist-bad-{}", std::process::id()));
        let store = Store::new(&dir).expect("store");
        fs::create_dir_all(&dir).expect("dir");
        fs::write(store.path("VI_1", 51), "{not json").expect("write");
        assert_eq!(store.load("VI_1", 51), None);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
