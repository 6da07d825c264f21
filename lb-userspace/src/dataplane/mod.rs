//! The data plane's driver: loading and attaching the XDP program, and the
//! reconciler that owns its maps.

mod batch;
pub mod flow_scan;
pub mod keys;
pub mod loader;
pub mod maps;
pub mod reconcile;
