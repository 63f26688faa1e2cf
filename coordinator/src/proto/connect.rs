//! The session handshake: `ConnectRequest` and `ConnectResponse`, which carry
//! no header. The trailing `readOnly` byte is optional in both directions.

use bytes::{BufMut, BytesMut};

use super::jute::{DecodeError, JuteWrite, Reader};

/// Length of a session password, fixed by the C client's `char passwd[16]`.
pub const PASSWORD_LEN: usize = 16;

#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: bool,
}

// The password stays out of logs.
impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("protocol_version", &self.protocol_version)
            .field("last_zxid_seen", &self.last_zxid_seen)
            .field("timeout_ms", &self.timeout_ms)
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl ConnectRequest {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            password: r.buffer()?.to_vec(),
            // Clients older than 3.4 stop here.
            read_only: if r.remaining() > 0 { r.bool()? } else { false },
        })
    }

    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.protocol_version);
        buf.put_i64(self.last_zxid_seen);
        buf.put_i32(self.timeout_ms);
        buf.put_i64(self.session_id);
        buf.put_buffer(&self.password);
        buf.put_bool_j(self.read_only);
    }
}

#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    /// Negotiated timeout; zero tells the client its session is expired.
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: [u8; PASSWORD_LEN],
    pub read_only: bool,
}

impl std::fmt::Debug for ConnectResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectResponse")
            .field("timeout_ms", &self.timeout_ms)
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .finish_non_exhaustive()
    }
}

impl ConnectResponse {
    /// The answer to a reconnect with an expired or unknown session.
    pub fn expired() -> Self {
        Self::default()
    }

    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.protocol_version);
        buf.put_i32(self.timeout_ms);
        buf.put_i64(self.session_id);
        buf.put_buffer(&self.password);
        buf.put_bool_j(self.read_only);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol_version = r.i32()?;
        let timeout_ms = r.i32()?;
        let session_id = r.i64()?;
        let password = r
            .buffer()?
            .try_into()
            .map_err(|_| DecodeError::Invalid("password length"))?;
        let read_only = if r.remaining() > 0 { r.bool()? } else { false };
        Ok(Self {
            protocol_version,
            timeout_ms,
            session_id,
            password,
            read_only,
        })
    }
}
