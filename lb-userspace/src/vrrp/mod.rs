//! VRRP (RFC 3768 v2, RFC 5798 v3), keepalived-compatible.
//!
//! Everything here is pure: `packet` (advert codec), `fsm` (one state
//! machine per instance, `handle(now, input) -> actions`), `garp`
//! (gratuitous ARP / unsolicited NA frames), `garp_pace` (their spacing on
//! an interface), `sync_group` and `track`
//! (priority from tracked scripts, interfaces and files), `track_process`
//! (process matching and quorum); `fsm_config` holds the
//! per-instance settings with keepalived defaults. The daemon owns the
//! sockets, the clock, the timers and netlink, and wires them to these.

pub mod fsm;
pub mod fsm_config;
pub mod garp;
pub mod garp_pace;
pub mod packet;
pub mod sync_group;
pub mod track;
pub mod track_process;
