//! What the server sends back: a reply body per operation, multi results, and
//! whole frames (length prefix, reply header, body) ready for the socket.

use bytes::{BufMut, BytesMut};

use super::acl::Acl;
use super::error_code::ErrorCode;
use super::jute::{DecodeError, Reader};
use super::op_code::{OpCode, NOTIFICATION_XID};
use super::record::Jute;
use super::records::*;
use super::stat::Stat;

/// The result of one op inside a `multi` or `multiRead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetData(Vec<u8>, Stat),
    GetChildren(Vec<String>),
    /// Code 0 marks an op rolled back because a later one failed.
    Error(i32),
}

impl MultiResult {
    fn op(&self) -> OpCode {
        match self {
            MultiResult::Create(_) => OpCode::Create,
            MultiResult::Create2(..) => OpCode::Create2,
            MultiResult::Delete => OpCode::Delete,
            MultiResult::SetData(_) => OpCode::SetData,
            MultiResult::Check => OpCode::Check,
            MultiResult::GetData(..) => OpCode::GetData,
            MultiResult::GetChildren(_) => OpCode::GetChildren,
            MultiResult::Error(_) => OpCode::Error,
        }
    }

    fn write(&self, buf: &mut BytesMut) {
        let err = match self {
            MultiResult::Error(e) => *e,
            _ => 0,
        };
        MultiHeader {
            op: self.op() as i32,
            done: false,
            err,
        }
        .write(buf);
        match self {
            MultiResult::Create(path) => path.write(buf),
            MultiResult::Create2(path, stat) => {
                path.write(buf);
                stat.write(buf);
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(stat) => stat.write(buf),
            MultiResult::GetData(data, stat) => {
                data.write(buf);
                stat.write(buf);
            }
            MultiResult::GetChildren(children) => children.write(buf),
            MultiResult::Error(e) => e.write(buf),
        }
    }

    fn read(h: &MultiHeader, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let op = OpCode::from_i32(h.op).ok_or(DecodeError::Invalid("multi result type"))?;
        Ok(match op {
            OpCode::Create => MultiResult::Create(String::read(r)?),
            OpCode::Create2 => MultiResult::Create2(String::read(r)?, Stat::read(r)?),
            OpCode::Delete => MultiResult::Delete,
            OpCode::SetData => MultiResult::SetData(Stat::read(r)?),
            OpCode::Check => MultiResult::Check,
            OpCode::GetData => MultiResult::GetData(Vec::read(r)?, Stat::read(r)?),
            OpCode::GetChildren => MultiResult::GetChildren(Vec::read(r)?),
            OpCode::Error => MultiResult::Error(i32::read(r)?),
            _ => return Err(DecodeError::Invalid("multi result type")),
        })
    }
}

/// A successful reply body. Errors carry no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// delete, check, auth, setWatches, addWatch, removeWatches, closeSession, ping.
    Empty,
    Create(String),
    Create2(String, Stat),
    /// exists, setData, setACL.
    Stat(Stat),
    GetData(Vec<u8>, Stat),
    GetAcl(Vec<Acl>, Stat),
    Children(Vec<String>),
    Children2(Vec<String>, Stat),
    /// sync echoes its path.
    Path(String),
    Ephemerals(Vec<String>),
    AllChildrenNumber(i32),
    /// addWatch answers with an `ErrorResponse` body holding 0; the Java
    /// client reads those four bytes and drops the connection without them.
    ErrorBody(i32),
    WhoAmI(Vec<ClientInfo>),
    Multi(Vec<MultiResult>),
}

impl Response {
    pub fn write(&self, buf: &mut BytesMut) {
        match self {
            Response::Empty => {}
            Response::Create(path) | Response::Path(path) => path.write(buf),
            Response::Create2(path, stat) => {
                path.write(buf);
                stat.write(buf);
            }
            Response::Stat(stat) => stat.write(buf),
            Response::GetData(data, stat) => {
                data.write(buf);
                stat.write(buf);
            }
            Response::GetAcl(acl, stat) => {
                acl.write(buf);
                stat.write(buf);
            }
            Response::Children(c) | Response::Ephemerals(c) => c.write(buf),
            Response::Children2(c, stat) => {
                c.write(buf);
                stat.write(buf);
            }
            Response::AllChildrenNumber(n) | Response::ErrorBody(n) => n.write(buf),
            Response::WhoAmI(info) => info.write(buf),
            Response::Multi(results) => {
                results.iter().for_each(|r| r.write(buf));
                MultiHeader {
                    op: -1,
                    done: true,
                    err: -1,
                }
                .write(buf);
            }
        }
    }

    /// Decodes a reply body for a request of opcode `op`: the client's side,
    /// used by tests.
    pub fn read(op: OpCode, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match op {
            OpCode::Create => Response::Create(String::read(r)?),
            OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => {
                Response::Create2(String::read(r)?, Stat::read(r)?)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(Stat::read(r)?),
            OpCode::GetData => Response::GetData(Vec::read(r)?, Stat::read(r)?),
            OpCode::GetAcl => Response::GetAcl(Vec::read(r)?, Stat::read(r)?),
            OpCode::GetChildren => Response::Children(Vec::read(r)?),
            OpCode::GetChildren2 => Response::Children2(Vec::read(r)?, Stat::read(r)?),
            OpCode::Sync => Response::Path(String::read(r)?),
            OpCode::GetEphemerals => Response::Ephemerals(Vec::read(r)?),
            OpCode::GetAllChildrenNumber => Response::AllChildrenNumber(i32::read(r)?),
            OpCode::AddWatch => Response::ErrorBody(i32::read(r)?),
            OpCode::WhoAmI => Response::WhoAmI(Vec::read(r)?),
            OpCode::Multi | OpCode::MultiRead => {
                let mut results = Vec::new();
                loop {
                    let h = MultiHeader::read(r)?;
                    if h.done {
                        break Response::Multi(results);
                    }
                    results.push(MultiResult::read(&h, r)?);
                }
            }
            _ => Response::Empty,
        })
    }
}

/// Reserves the 4-byte length prefix, lets `body` write, then fills it in.
fn framed(buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_i32(0);
    body(buf);
    let len = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends one reply frame. The body is written only on success, as ZooKeeper does.
pub fn write_reply(buf: &mut BytesMut, xid: i32, zxid: i64, result: &Result<Response, ErrorCode>) {
    framed(buf, |buf| {
        let err = result.as_ref().err().map_or(0, |e| e.code());
        ReplyHeader { xid, zxid, err }.write(buf);
        if let Ok(body) = result {
            body.write(buf);
        }
    });
}

/// Appends one watch notification frame.
pub fn write_event(buf: &mut BytesMut, zxid: i64, event: &WatcherEvent) {
    framed(buf, |buf| {
        ReplyHeader {
            xid: NOTIFICATION_XID,
            zxid,
            err: 0,
        }
        .write(buf);
        event.write(buf);
    });
}
