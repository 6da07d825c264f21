//! xdpvs userspace: configuration, control plane and the data plane's driver.
//!
//! The pure parts (`config`, `maglev`, `vrrp` state machine and codec, health
//! hysteresis) do no I/O and read no clock; the rest drives them.

pub mod config;
pub mod health;
pub mod maglev;
pub mod vrrp;
