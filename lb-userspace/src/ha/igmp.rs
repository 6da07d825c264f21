//! keepalived's `disable_local_igmp`: no IGMP reports for link-local groups
//! (VRRP's 224.0.0.18 among them), which some switches flood or police, by
//! the namespace's `igmp_link_local_mcast_reports`; the value found is put
//! back at stop, as keepalived does.

use std::{fs, io};

const SYSCTL: &str = "/proc/sys/net/ipv4/igmp_link_local_mcast_reports";

/// Turns the reports off; the value found, to give back to [`restore`].
pub fn disable() -> io::Result<String> {
    let before = fs::read_to_string(SYSCTL)?.trim().to_string();
    fs::write(SYSCTL, "0")?;
    Ok(before)
}

pub fn restore(value: &str) -> io::Result<()> {
    fs::write(SYSCTL, value)
}
