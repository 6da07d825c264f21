//! Helpers shared by the kernel and end-to-end tests.
