//! Per-instance configuration of the state machine, as plain fields with
//! keepalived 2.2.7's defaults (the config module maps keepalived.conf
//! onto these).

use std::{net::IpAddr, time::Duration};

use super::packet::Version;

/// keepalived's gratuitous ARP / NA schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GarpConfig {
    /// `garp_master_delay`: second batch after takeover; zero: none.
    pub master_delay: Duration,
    /// `garp_master_repeat`: messages per batch.
    pub master_repeat: u32,
    /// `garp_master_refresh`: periodic batch while master; zero: off.
    pub master_refresh: Duration,
    /// `garp_master_refresh_repeat`.
    pub master_refresh_repeat: u32,
    /// `garp_lower_prio_delay`: zero: no delayed batch.
    pub lower_prio_delay: Duration,
    /// `garp_lower_prio_repeat`: zero: no batch on lower-priority adverts.
    pub lower_prio_repeat: u32,
}

impl Default for GarpConfig {
    /// keepalived 2.2.7 defaults (non-strict mode).
    fn default() -> Self {
        GarpConfig {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsmConfig {
    pub version: Version,
    pub vrid: u8,
    /// Base priority, 1..=255 (255: address owner).
    pub priority: u8,
    /// v2: whole seconds; v3: centisecond resolution.
    pub advert_int: Duration,
    /// `false` is keepalived's `nopreempt`.
    pub preempt: bool,
    /// keepalived `preempt_delay`: how long a lower-priority master is
    /// still accepted after the first of its adverts was seen.
    pub preempt_delay: Duration,
    /// Our primary address, for the equal-priority tie-break.
    pub primary_addr: IpAddr,
    /// keepalived `state MASTER`: take over after one interval of silence.
    pub start_as_master: bool,
    /// v3 Accept_Mode, passed through in `AddVips`.
    pub accept: bool,
    /// keepalived `lower_prio_no_advert`: RFC-strict silence as master.
    pub lower_prio_no_advert: bool,
    /// keepalived `higher_prio_send_advert`: a master that hears a higher
    /// priority sends one advert of its own before it becomes backup.
    pub higher_prio_send_advert: bool,
    /// Member of a `vrrp_sync_group`: wait for `GroupGoMaster` to take over.
    pub sync_group: bool,
    pub garp: GarpConfig,
    /// keepalived `down_timer_adverts`: Master_Down_Interval's adverts (RFC: 3).
    pub down_timer_adverts: u32,
}

impl FsmConfig {
    /// keepalived's defaults for everything not given.
    pub fn new(version: Version, vrid: u8, priority: u8, primary_addr: IpAddr) -> Self {
        FsmConfig {
            version,
            vrid,
            priority,
            advert_int: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary_addr,
            start_as_master: false,
            accept: false,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            sync_group: false,
            garp: GarpConfig::default(),
            down_timer_adverts: 3,
        }
    }
}
