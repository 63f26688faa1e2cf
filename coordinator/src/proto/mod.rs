//! The ZooKeeper wire protocol (jute), sans-io: records are decoded from and
//! encoded into byte buffers; nothing here touches a socket.

pub mod acl;
pub mod connect;
pub mod error_code;
pub mod jute;
pub mod op_code;
pub mod record;
pub mod records;
pub mod request;
pub mod response;
pub mod stat;

pub use acl::Acl;
pub use connect::{ConnectRequest, ConnectResponse, PASSWORD_LEN};
pub use error_code::ErrorCode;
pub use jute::{DecodeError, Reader, DEFAULT_MAX_BUFFER};
pub use op_code::OpCode;
pub use record::Jute;
pub use request::{MultiOp, Request};
pub use response::{write_event, write_reply, MultiResult, Response};
pub use stat::Stat;

#[cfg(test)]
mod tests;
