//! Packet builders for the kernel tests and the benchmark.
