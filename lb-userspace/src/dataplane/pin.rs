//! Where a data plane's pins live in bpffs, what is recorded beside them,
//! and removing them.
//!
//! One directory per network namespace and interface:
//! `<bpffs>/xdpvs/netns<cookie>-<interface>`, where bpffs is /run/xdpvs/bpf
//! when the operator mounted one there, else /sys/fs/bpf. The namespace cookie is
//! never reused while the machine runs, so two daemons in two namespaces
//! with interfaces of the same name never share pins. The directory holds
//! the XDP link (`link`), every map by name, and three symlinks that record
//! what made them (bpffs holds no regular files): `layout` ->
//! `LAYOUT_VERSION`, `object` -> the XDP object's MD5, `mode` -> the attach
//! mode. `layout` is written last: a directory without it is a data plane
//! whose setup never finished.

use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use log::{info, warn};

/// The XDP link's pin in a data plane's directory.
pub const LINK: &str = "link";
const LAYOUT: &str = "layout";
const OBJECT: &str = "object";
const MODE: &str = "mode";

/// `statfs` type of bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The directory for `interface` in this network namespace, under the
/// bpffs that outlives this process (mounted if absent).
pub fn default_dir(interface: &str) -> Result<PathBuf> {
    let root = bpffs()?.join("xdpvs");
    Ok(root.join(format!("netns{}-{interface}", netns_cookie()?)))
}

/// What a data plane's directory records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub layout: u32,
    pub object: String,
    pub mode: String,
}

impl Meta {
    /// `None` when there is no complete data plane in `dir`.
    pub fn read(dir: &Path) -> Option<Self> {
        let get = |name| {
            std::fs::read_link(dir.join(name))
                .ok()
                .map(|t| t.to_string_lossy().into_owned())
        };
        if !dir.join(LINK).exists() {
            return None;
        }
        Some(Self {
            layout: get(LAYOUT)?.parse().ok()?,
            object: get(OBJECT).unwrap_or_default(),
            mode: get(MODE).unwrap_or_default(),
        })
    }

    /// Records the meta in `dir`, `layout` last.
    pub fn write(&self, dir: &Path) -> Result<()> {
        for (name, value) in [
            (OBJECT, self.object.clone()),
            (MODE, self.mode.clone()),
            (LAYOUT, self.layout.to_string()),
        ] {
            set_symlink(dir, name, &value)?;
        }
        Ok(())
    }
}

pub fn set_symlink(dir: &Path, name: &str, value: &str) -> Result<()> {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    std::os::unix::fs::symlink(value, &path)
        .with_context(|| format!("recording {}", path.display()))
}

/// MD5 of an XDP object, to tell whether the running program is this one.
pub fn object_digest(object: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(object)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the kernel says about a pinned XDP link.
#[derive(Debug, Clone, Copy)]
pub struct LinkState {
    pub program_id: u32,
    /// 0 once the interface it was attached to is gone.
    pub ifindex: u32,
}

pub fn link_state(dir: &Path) -> Result<LinkState> {
    let fd = obj_get(&dir.join(LINK))?;
    // struct bpf_link_info: type, id, prog_id, then (8-aligned) xdp.ifindex.
    let mut info = [0u8; 64];
    let mut attr = [0u64; 2];
    attr[0] = u64::from(fd.as_raw_fd() as u32) | ((info.len() as u64) << 32);
    attr[1] = info.as_mut_ptr() as u64;
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).context("reading the pinned link")?;
    let word = |at: usize| u32::from_ne_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]]);
    Ok(LinkState {
        program_id: word(8),
        ifindex: word(16),
    })
}

/// Removes the data plane in `dir`: detaches its XDP program (even if a
/// process still holds the link), then unpins everything. Returns how many
/// pins it removed; 0 when there was nothing.
pub fn remove(dir: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let entries: Vec<_> = entries.collect::<io::Result<_>>()?;
    // Never empty a directory that holds anything but a data plane's pins
    // (a mistyped --pin-dir such as the bpffs root).
    let ours = |name: &str| {
        [LINK, LAYOUT, OBJECT, MODE, lb_common::maps::IDENTS].contains(&name)
            || lb_common::maps::OBJECT.contains(&name)
    };
    if let Some(other) = entries
        .iter()
        .find(|e| !ours(&e.file_name().to_string_lossy()))
    {
        bail!(
            "{} is not an xdpvs data plane (it holds {}): left as it is",
            dir.display(),
            other.file_name().to_string_lossy()
        );
    }
    if let Ok(link) = obj_get(&dir.join(LINK)) {
        let mut attr = [u64::from(link.as_raw_fd() as u32), 0];
        if let Err(e) = bpf(BPF_LINK_DETACH, &mut attr) {
            warn!("detaching the XDP link in {}: {e}", dir.display());
        }
    }
    unpin(dir, entries.iter().map(|e| e.path()))
}

/// Removes `pins` and then `dir`. Once detached, a link reports ifindex 0,
/// so another daemon's orphan sweep may be removing the same pins: one
/// already gone counts as removed by the other.
fn unpin(dir: &Path, pins: impl Iterator<Item = PathBuf>) -> Result<usize> {
    let removed = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        r => r.map(|()| true),
    };
    let mut count = 0;
    for path in pins {
        if removed(std::fs::remove_file(&path))
            .with_context(|| format!("removing {}", path.display()))?
        {
            count += 1;
        }
    }
    removed(std::fs::remove_dir(dir)).with_context(|| format!("removing {}", dir.display()))?;
    Ok(count)
}

/// Removes the data planes under `root` whose interface is gone (for
/// example with the namespace it was in): their maps would otherwise hold
/// memory until the machine restarts. `keep` is never touched.
pub fn remove_orphans(root: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir == keep {
            continue;
        }
        if let Ok(LinkState { ifindex: 0, .. }) = link_state(&dir) {
            match remove(&dir) {
                Ok(_) => info!(
                    "removed the pins of a data plane whose interface is gone: {}",
                    dir.display()
                ),
                Err(e) => warn!("removing orphaned pins {}: {e:#}", dir.display()),
            }
        }
    }
}

/// Fails unless `dir` (or, before it exists, its nearest ancestor) is on a bpffs.
pub fn check_on_bpffs(dir: &Path) -> Result<()> {
    let parent = dir.ancestors().find(|p| p.exists()).unwrap_or(dir);
    if !is_bpffs(parent) {
        bail!(
            "--pin-dir {}: {} is not on a BPF file system (mount one with `mount -t bpf bpf DIR`)",
            dir.display(),
            parent.display()
        );
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes only the struct it is given.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0) && st.f_type as i64 == BPF_FS_MAGIC
}

/// A bpffs the operator mounted for xdpvs; preferred when present, because
/// `ip netns exec` gives a process its own /sys, where the host's
/// /sys/fs/bpf is out of sight, while /run stays the host's.
pub const RUN_BPFFS: &str = "/run/xdpvs/bpf";
const SYS_BPFFS: &str = "/sys/fs/bpf";

/// The bpffs to pin in: /run/xdpvs/bpf if it is one, else /sys/fs/bpf
/// (mounted if absent).
pub(crate) fn bpffs() -> Result<PathBuf> {
    if is_bpffs(Path::new(RUN_BPFFS)) {
        return Ok(PathBuf::from(RUN_BPFFS));
    }
    let root = Path::new(SYS_BPFFS);
    if !is_bpffs(root) {
        mount_bpffs(root)?;
        info!("mounted a BPF file system on {SYS_BPFFS}");
        if private_mount_namespace() {
            warn!(
                "this process has a mount namespace of its own (as under `ip netns exec`): the \
                 bpffs it mounted, and the data plane pinned there, end with it, so a crash \
                 detaches XDP. On the host, `mkdir -p {RUN_BPFFS} && mount -t bpf bpf {RUN_BPFFS}` \
                 first makes the data plane outlive the daemon"
            );
        }
    }
    Ok(root.to_path_buf())
}

/// Whether this process runs in another mount namespace than its parent's.
fn private_mount_namespace() -> bool {
    let ino = |p: String| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    match (
        ino("/proc/self/ns/mnt".into()),
        ino(format!("/proc/{parent}/ns/mnt")),
    ) {
        (Ok(a), Ok(b)) => a != b,
        _ => false,
    }
}

fn mount_bpffs(target: &Path) -> Result<()> {
    let target_c = CString::new(target.as_os_str().as_bytes())?;
    let (src, fs, opts) = (c"bpf", c"bpf", c"mode=0700");
    // SAFETY: every argument is a NUL-terminated string.
    let ret = unsafe {
        libc::mount(
            src.as_ptr(),
            target_c.as_ptr(),
            fs.as_ptr(),
            0,
            opts.as_ptr().cast(),
        )
    };
    if ret != 0 {
        let e = io::Error::last_os_error();
        let hint = if e.raw_os_error() == Some(libc::EPERM) {
            format!(
                " (needs CAP_SYS_ADMIN: mount one first, `mount -t bpf bpf {}`, or on the host \
                 `mkdir -p {RUN_BPFFS} && mount -t bpf bpf {RUN_BPFFS}`)",
                target.display()
            )
        } else {
            String::new()
        };
        return Err(e)
            .with_context(|| format!("mounting a BPF file system on {}{hint}", target.display()));
    }
    Ok(())
}

/// This network namespace's cookie (unique until the machine restarts).
fn netns_cookie() -> Result<u64> {
    // SAFETY: a plain socket; closed by OwnedFd.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("socket");
    }
    // SAFETY: fd is a socket this function just opened.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`.
    let ret = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error()).context("reading the network namespace cookie");
    }
    Ok(cookie)
}

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_DETACH: libc::c_long = 34;

/// One `bpf(2)` call whose attributes fit two words.
fn bpf(cmd: libc::c_long, attr: &mut [u64; 2]) -> io::Result<i64> {
    // SAFETY: `attr` is the size passed and outlives the call; every
    // pointer in it is valid for what `cmd` reads or writes.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), 16usize) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// Opens a pinned object.
fn obj_get(path: &Path) -> Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    let mut attr = [c.as_ptr() as u64, 0];
    let fd = bpf(BPF_OBJ_GET, &mut attr).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: BPF_OBJ_GET returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_is_read_back_only_when_complete() {
        let dir = std::env::temp_dir().join(format!("xdpvs-meta-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let meta = Meta {
            layout: 7,
            object: object_digest(b"object"),
            mode: "generic".into(),
        };
        meta.write(&dir).unwrap();
        assert_eq!(Meta::read(&dir), None, "no link pinned: unfinished");
        std::fs::write(dir.join(LINK), b"").unwrap();
        assert_eq!(Meta::read(&dir), Some(meta.clone()));
        std::fs::remove_file(dir.join(LAYOUT)).unwrap();
        assert_eq!(Meta::read(&dir), None, "no layout: unfinished");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            meta.object, "a8cfde6331bd59eb2ac96f8911c4b666",
            "MD5 in hex"
        );
    }

    #[test]
    fn pins_another_process_removed_first_are_not_an_error() {
        let dir = std::env::temp_dir().join(format!("xdpvs-unpin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in [LINK, MODE, LAYOUT] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let listed: Vec<_> = [LINK, MODE, LAYOUT].map(|n| dir.join(n)).into();
        std::fs::remove_file(dir.join(MODE)).unwrap();
        assert_eq!(unpin(&dir, listed.clone().into_iter()).unwrap(), 2);
        assert!(!dir.exists());
        assert_eq!(
            unpin(&dir, listed.into_iter()).unwrap(),
            0,
            "all gone already"
        );
    }
}
