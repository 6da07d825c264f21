//! Helpers shared by the kernel (`BPF_PROG_TEST_RUN`) tests, the end-to-end
//! tests in network namespaces, the demo and the data-plane benchmark.

pub mod adverts;
pub mod ecmp;
pub mod keepalived;
pub mod load;
pub mod mutate;
pub mod netns;
pub mod packet;
pub mod ping;
pub mod topology;
