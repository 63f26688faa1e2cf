//! A ZooKeeper-wire-compatible coordination service: the protocol codec, the
//! data tree and watch state machines, durable storage, and the server.

pub mod acl;
pub mod config;
pub mod connect_string;
pub mod db;
pub mod machine;
pub mod path;
pub mod prep;
pub mod proto;
pub mod server;
pub mod storage;
pub mod tree;
pub mod txn;
pub mod watch;
