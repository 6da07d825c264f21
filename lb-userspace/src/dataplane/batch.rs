//! The bpf syscall's batch commands, which aya 0.14 does not offer.
//!
//! Writes many slots of a BPF array in one `BPF_MAP_UPDATE_BATCH` call: a real
//! leaving a two-real service rewrites half of a 65537-slot ring; one syscall
//! per slot costs tens of milliseconds, one batch about one.

use std::{
    io,
    os::fd::{AsRawFd as _, OwnedFd},
};

/// `BPF_MAP_LOOKUP_BATCH` (linux/bpf.h, since 5.6).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// `BPF_MAP_UPDATE_BATCH` (linux/bpf.h, since 5.6).
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// One batch command; the kernel writes back `attr.count` (also on some errors).
///
/// # Safety
/// Every pointer in `attr` must point at buffers the command may read or
/// write: `count` keys and values, and batch tokens of the map's key size.
unsafe fn call(cmd: libc::c_long, attr: &mut BatchAttr) -> io::Result<()> {
    // SAFETY: the caller vouches for the buffers; the size is the struct's.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            std::mem::size_of::<BatchAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `array[keys[i]] = values[i]` for every i. On `Err`, a prefix of the
/// pairs may have been written; the caller retries the whole set.
pub fn update_u32_array(map: &OwnedFd, keys: &[u32], values: &[u32]) -> io::Result<()> {
    assert_eq!(keys.len(), values.len(), "one value per key");
    let mut done = 0usize;
    while done < keys.len() {
        let mut attr = BatchAttr {
            keys: keys[done..].as_ptr() as u64,
            values: values[done..].as_ptr() as u64,
            count: u32::try_from(keys.len() - done).unwrap_or(u32::MAX),
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` points at `count` keys and values that outlive the
        // call; the kernel reads them and writes back only `attr.count`.
        unsafe { call(BPF_MAP_UPDATE_BATCH, &mut attr)? };
        // The kernel reports how many it wrote; it may stop early.
        if attr.count == 0 {
            return Err(io::Error::other("BPF_MAP_UPDATE_BATCH made no progress"));
        }
        done += attr.count as usize;
    }
    Ok(())
}

/// Reads `array[first .. first + count]` in as few calls as the kernel allows.
pub fn lookup_u32_array(map: &OwnedFd, first: u32, count: u32) -> io::Result<Vec<u32>> {
    let mut values = vec![0u32; count as usize];
    let mut keys = vec![0u32; count as usize];
    let mut done = 0usize;
    // The kernel starts after the key in `in_batch`, so key `first - 1`.
    let mut prev = first.wrapping_sub(1);
    let mut out = 0u32;
    while done < values.len() {
        let mut attr = BatchAttr {
            in_batch: if done == 0 && first == 0 {
                0
            } else {
                &prev as *const u32 as u64
            },
            out_batch: &mut out as *mut u32 as u64,
            keys: keys[done..].as_mut_ptr() as u64,
            values: values[done..].as_mut_ptr() as u64,
            count: u32::try_from(values.len() - done).unwrap_or(u32::MAX),
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` points at room for `count` keys and values and at
        // two keys, all of which outlive the call.
        let ended = match unsafe { call(BPF_MAP_LOOKUP_BATCH, &mut attr) } {
            Ok(()) => false,
            // ENOENT: the array ended, with `attr.count` entries read before it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            Err(e) => return Err(e),
        };
        if attr.count == 0 {
            return Err(io::Error::other("BPF_MAP_LOOKUP_BATCH read nothing"));
        }
        done += attr.count as usize;
        prev = out;
        if ended && done < values.len() {
            return Err(io::Error::other("array ended before the range"));
        }
    }
    Ok(values)
}
