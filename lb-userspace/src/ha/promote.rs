//! keepalived's `promote_secondaries`: the kernel deletes every secondary
//! address of a subnet when its primary goes, unless the interface promotes
//! them; an instance asking for it sets the interface's sysctl while the
//! daemon runs and, as keepalived does, clears it at stop if it set it.

use std::{fs, io, path::PathBuf};

fn path(dev: &str) -> io::Result<PathBuf> {
    if dev.is_empty() || dev.contains('/') || dev == "." || dev == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{dev:?} is not an interface name"),
        ));
    }
    Ok(PathBuf::from(format!(
        "/proc/sys/net/ipv4/conf/{dev}/promote_secondaries"
    )))
}

/// Sets it on `dev`; true when it was off (so [`clear`] is ours to do).
pub fn enable(dev: &str) -> io::Result<bool> {
    let p = path(dev)?;
    if fs::read_to_string(&p)?.trim() == "1" {
        return Ok(false);
    }
    fs::write(&p, "1")?;
    Ok(true)
}

/// Clears it on `dev`.
pub fn clear(dev: &str) -> io::Result<()> {
    fs::write(path(dev)?, "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_interfaces_are_refused() {
        for bad in ["", "..", ".", "eth0/../../x", "a/b"] {
            assert!(path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            path("eth0").ok(),
            Some(PathBuf::from(
                "/proc/sys/net/ipv4/conf/eth0/promote_secondaries"
            ))
        );
    }
}
