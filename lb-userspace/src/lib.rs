//! xdpvs userspace: configuration, control plane and the data plane's driver.
//!
//! The pure parts (`config`, `maglev`, `vrrp::fsm`, `vrrp::packet`,
//! `health::hysteresis`) do no I/O and read no clock; the rest drives them.

pub mod config;
pub mod maglev;
