//! `net_namespace NAME`: the daemon moves itself into /var/run/netns/NAME
//! before its first thread starts, so every thread, socket, netlink
//! connection and the XDP attach are in it (setns changes only the calling
//! thread; threads started later inherit it).
//!
//! As `ip netns exec` does, it also takes a mount namespace of its own with
//! /sys mounted again, because sysfs shows the network devices of the
//! namespace that mounted it, and xdpvs reads link state and MACs there.

use std::{ffi::CString, fs::File, os::fd::AsRawFd as _, path::Path};

use anyhow::{Context as _, Result, bail};
use log::info;

/// The threads this process runs, from /proc/self/status.
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

fn check(rc: libc::c_int, what: &str) -> Result<()> {
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context(what.to_string());
    }
    Ok(())
}

/// Enters network namespace `name`; call before any thread is started.
pub fn enter(name: &str) -> Result<()> {
    let path = Path::new("/var/run/netns").join(name);
    let file = File::open(&path).with_context(|| {
        format!(
            "net_namespace {name}: cannot open {} (create the namespace with `ip netns add {name}`, \
             or remove net_namespace from the configuration)",
            path.display()
        )
    })?;
    if threads().is_some_and(|n| n > 1) {
        bail!("net_namespace {name}: the process already runs threads; it must switch before");
    }
    // SAFETY: setns on an open namespace file; single-threaded (checked).
    check(
        unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
        "setns(CLONE_NEWNET)",
    )
    .with_context(|| format!("net_namespace {name}"))?;
    // SAFETY: plain unshare/mount calls with valid C strings, single-threaded.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS), "unshare(CLONE_NEWNS)")?;
        let root = CString::new("/")?;
        let none = CString::new("none")?;
        // Mounts made here stay here; the host's still reach us.
        check(
            libc::mount(
                none.as_ptr(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_SLAVE | libc::MS_REC,
                std::ptr::null(),
            ),
            "making / a slave mount",
        )?;
        let sys = CString::new("/sys")?;
        let sysfs = CString::new("sysfs")?;
        let ns = CString::new(name)?;
        // Absent (EINVAL) is fine: there is nothing to replace.
        if libc::umount2(sys.as_ptr(), libc::MNT_DETACH) != 0
            && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
        {
            return Err(std::io::Error::last_os_error()).context("unmounting /sys");
        }
        check(
            libc::mount(
                ns.as_ptr(),
                sys.as_ptr(),
                sysfs.as_ptr(),
                0,
                std::ptr::null(),
            ),
            "mounting /sys for the namespace",
        )?;
    }
    info!("net_namespace {name}: running in {}", path.display());
    Ok(())
}

/// `xdpvs run`: enters the configuration's `net_namespace`, if any. A file
/// that does not load is left to the daemon to report in full.
pub fn enter_configured(path: &Path, options: &crate::config::Options) -> Result<()> {
    let Ok(loaded) = crate::config::load_with(path, options) else {
        return Ok(());
    };
    match &loaded.config.global.net_namespace {
        Some(name) => enter(name),
        None => Ok(()),
    }
}
