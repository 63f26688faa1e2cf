//! Fuzzing seam for `broker/fuzz`, not an API: re-exports the one entry
//! point that runs client byte streams through a connection's frame handling.

pub use super::connection::fuzz_connections;
