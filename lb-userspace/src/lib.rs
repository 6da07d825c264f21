//! xdpvs userspace: configuration, control plane and the data plane's driver.
//!
//! The pure parts (`config`, `maglev`, `dataplane::reconcile`, the `vrrp`
//! state machine and codec, health hysteresis) do no I/O and read no clock;
//! the rest drives them.

pub mod accept;
pub mod alert;
pub mod announce;
pub mod api;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod flowsync;
pub mod ha;
pub mod health;
pub mod maglev;
pub mod metrics;
pub mod neighbour;
#[cfg(test)]
mod netns_testing;
pub mod script_runner;
pub mod services;
pub mod vrrp;
