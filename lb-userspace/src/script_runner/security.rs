//! keepalived's script security check (keepalived.conf(5),
//! `enable_script_security`): a script run with root's user or group, or
//! set-uid/set-gid root, must not be replaceable by anyone but root. Every
//! component of its path, from `/` to the file, must be owned by root and
//! not writable by a non-root group or by others; a directory with the
//! sticky bit (`/tmp`) may be writable, as only its owners can rename in it.
//!
//! Pure: the walk takes a metadata lookup (`lstat`), so tests feed it tables.

use std::{
    io,
    path::{Path, PathBuf},
};

/// The `lstat` facts the check reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
}

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;
const S_IWGRP: u32 = 0o020;
const S_IWOTH: u32 = 0o002;

impl Meta {
    fn kind(self) -> u32 {
        self.mode & S_IFMT
    }

    pub fn is_dir(self) -> bool {
        self.kind() == S_IFDIR
    }

    /// Owned by root and writable by nobody else (see the module doc).
    fn safe(self) -> bool {
        let guarded = (self.is_dir() && self.mode & S_ISVTX == 0) || self.kind() == S_IFREG;
        let others_write = (self.gid != 0 && self.mode & S_IWGRP != 0) || self.mode & S_IWOTH != 0;
        self.uid == 0 && !(guarded && others_write)
    }

    /// Whether `uid:gid` may execute the file (root: any execute bit).
    pub fn executable_by(self, uid: u32, gid: u32) -> bool {
        let bits = if uid == 0 {
            0o111
        } else if uid == self.uid {
            0o100
        } else if gid == self.gid {
            0o010
        } else {
            0o001
        };
        self.mode & bits != 0
    }

    /// Runs with root's privileges whoever starts it.
    pub fn setid_root(self) -> bool {
        (self.uid == 0 && self.mode & S_ISUID != 0 && self.mode & 0o100 != 0)
            || (self.gid == 0 && self.mode & S_ISGID != 0 && self.mode & 0o010 != 0)
    }
}

/// What the walk found on a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathVerdict {
    Safe,
    /// This component (or the file) can be changed by a non-root user.
    Unsafe(PathBuf),
    /// A component is missing or cannot be read.
    NotFound(PathBuf),
    /// A parent that is not a directory, or a file that is neither regular
    /// nor a symbolic link.
    WrongType(PathBuf),
}

/// Walks `/`, `/a`, `/a/b`, ... `path` (absolute) with `lstat`, as
/// keepalived's check does: the first unsafe component decides.
pub fn check_path(path: &Path, lstat: impl Fn(&Path) -> io::Result<Meta>) -> PathVerdict {
    let mut here = PathBuf::new();
    let parts: Vec<_> = path.components().collect();
    for (i, part) in parts.iter().enumerate() {
        here.push(part);
        let last = i + 1 == parts.len();
        let Ok(meta) = lstat(&here) else {
            return PathVerdict::NotFound(here);
        };
        let right_kind = if last {
            matches!(meta.kind(), S_IFREG | S_IFLNK)
        } else {
            meta.is_dir()
        };
        if !right_kind {
            return PathVerdict::WrongType(here);
        }
        if !meta.safe() {
            return PathVerdict::Unsafe(here);
        }
    }
    PathVerdict::Safe
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn table(entries: &[(&str, u32, u32, u32)]) -> impl Fn(&Path) -> io::Result<Meta> {
        let map: HashMap<PathBuf, Meta> = entries
            .iter()
            .map(|&(p, uid, gid, mode)| (PathBuf::from(p), Meta { uid, gid, mode }))
            .collect();
        move |p: &Path| map.get(p).copied().ok_or(io::ErrorKind::NotFound.into())
    }

    const DIR: u32 = S_IFDIR;
    const REG: u32 = S_IFREG;

    fn walk(entries: &[(&str, u32, u32, u32)], path: &str) -> PathVerdict {
        check_path(Path::new(path), table(entries))
    }

    #[test]
    fn root_owned_path_is_safe() {
        let fs = [
            ("/", 0, 0, DIR | 0o755),
            ("/etc", 0, 0, DIR | 0o755),
            ("/etc/k", 0, 0, DIR | 0o750),
            ("/etc/k/c.sh", 0, 0, REG | 0o755),
        ];
        assert_eq!(walk(&fs, "/etc/k/c.sh"), PathVerdict::Safe);
    }

    #[test]
    fn any_writable_component_is_unsafe() {
        let base = [("/", 0, 0, DIR | 0o755), ("/s", 0, 0, DIR | 0o755)];
        let with = |last: (&'static str, u32, u32, u32)| {
            let mut v = base.to_vec();
            v.push(last);
            walk(&v, "/s/c.sh")
        };
        let unsafe_at = PathVerdict::Unsafe("/s/c.sh".into());
        assert_eq!(
            with(("/s/c.sh", 0, 0, REG | 0o777)),
            unsafe_at,
            "world-writable file"
        );
        assert_eq!(
            with(("/s/c.sh", 0, 7, REG | 0o775)),
            unsafe_at,
            "group 7 may write"
        );
        assert_eq!(
            with(("/s/c.sh", 0, 0, REG | 0o775)),
            PathVerdict::Safe,
            "group root may write"
        );
        assert_eq!(
            with(("/s/c.sh", 1000, 0, REG | 0o700)),
            unsafe_at,
            "owned by uid 1000"
        );
        let dir = [
            ("/", 0, 0, DIR | 0o755),
            ("/s", 0, 0, DIR | 0o777),
            ("/s/c.sh", 0, 0, REG | 0o755),
        ];
        assert_eq!(
            walk(&dir, "/s/c.sh"),
            PathVerdict::Unsafe("/s".into()),
            "world-writable parent"
        );
    }

    #[test]
    fn sticky_directories_and_symlinks() {
        let fs = [
            ("/", 0, 0, DIR | 0o755),
            ("/tmp", 0, 0, DIR | 0o1777),
            ("/tmp/c.sh", 0, 0, REG | 0o755),
            ("/tmp/l", 0, 0, S_IFLNK | 0o777),
            ("/tmp/u", 1000, 1000, S_IFLNK | 0o777),
        ];
        assert_eq!(walk(&fs, "/tmp/c.sh"), PathVerdict::Safe, "sticky /tmp");
        assert_eq!(walk(&fs, "/tmp/l"), PathVerdict::Safe, "root's symlink");
        assert_eq!(walk(&fs, "/tmp/u"), PathVerdict::Unsafe("/tmp/u".into()));
    }

    #[test]
    fn missing_and_wrong_types() {
        let fs = [
            ("/", 0, 0, DIR | 0o755),
            ("/f", 0, 0, REG | 0o755),
            ("/d", 0, 0, DIR | 0o755),
            ("/d/fifo", 0, 0, 0o010_000 | 0o755),
        ];
        assert_eq!(walk(&fs, "/nope/x"), PathVerdict::NotFound("/nope".into()));
        assert_eq!(walk(&fs, "/f/x"), PathVerdict::WrongType("/f".into()));
        assert_eq!(
            walk(&fs, "/d/fifo"),
            PathVerdict::WrongType("/d/fifo".into())
        );
    }

    #[test]
    fn execute_bits_and_setid() {
        let m = |uid, gid, mode| Meta {
            uid,
            gid,
            mode: REG | mode,
        };
        assert!(m(0, 0, 0o100).executable_by(0, 0));
        assert!(!m(0, 0, 0o744).executable_by(65534, 65534));
        assert!(m(0, 0, 0o755).executable_by(65534, 65534));
        assert!(m(0, 65534, 0o750).executable_by(65534, 65534));
        assert!(
            !m(65534, 0, 0o070).executable_by(65534, 65534),
            "owner bits only"
        );
        assert!(m(0, 0, 0o4755).setid_root() && !m(0, 0, 0o755).setid_root());
    }

    #[test]
    fn real_filesystem_walk() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let lstat = |p: &Path| {
            std::fs::symlink_metadata(p).map(|m| Meta {
                uid: m.uid(),
                gid: m.gid(),
                mode: m.mode(),
            })
        };
        assert_eq!(
            check_path(Path::new("/usr/bin/env"), lstat),
            PathVerdict::Safe
        );
        // /tmp is root's and sticky: the walk reaches our directory.
        let dir = Path::new("/tmp").join(format!("xdpvs-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("c.sh");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o777)).unwrap();
        let got = check_path(&file, lstat);
        std::fs::remove_dir_all(&dir).unwrap();
        // As root the directory is safe and the file is not; otherwise our
        // own directory already is (not owned by root).
        let want = if nix::unistd::geteuid().is_root() {
            file
        } else {
            dir
        };
        assert_eq!(
            got,
            PathVerdict::Unsafe(want),
            "a world-writable file on disk"
        );
    }
}
