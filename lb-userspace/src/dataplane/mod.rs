//! The data plane's driver: loading, pinning, adopting and attaching the XDP
//! program, and the reconciler that owns its maps.

pub mod adopt;
mod batch;
pub mod device;
pub mod flow_scan;
pub mod flow_table;
pub mod keys;
pub mod loader;
pub mod maps;
pub mod pin;
pub mod reconcile;
