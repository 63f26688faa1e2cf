//! Library half of the `bench` crate: workload model, load driver, report and /proc helpers for
//! `zkbench`; librdkafka load phases, process sampling and physical-limit probes for `kafkabench`.

pub mod cluster;
pub mod driver;
pub mod groups;
pub mod kafka;
pub mod physical;
pub mod procfs;
pub mod report;
pub mod sampler;
pub mod workload;
