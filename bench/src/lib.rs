//! Library half of the `bench` crate: workload model, load driver, report and /proc helpers for `zkbench`.

pub mod driver;
pub mod procfs;
pub mod report;
pub mod workload;
