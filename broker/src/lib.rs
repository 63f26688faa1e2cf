//! The Kafka-compatible broker. Empty until the broker issue lands; the crate
//! exists so the workspace already has the layout of `docs/architecture.md`.
