//! The admin API: a Unix socket served by the daemon, and the ipvsadm-style
//! CLI that talks to it.

pub mod client;
pub mod ipvsadm;
pub mod protocol;
pub mod server;
