//! A decoded client request: the header's opcode selects the record that follows.

use bytes::BytesMut;

use super::jute::{DecodeError, Reader};
use super::op_code::OpCode;
use super::record::Jute;
use super::records::*;

/// One operation of a `multi` or `multiRead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(OpCode, CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(PathWatchRequest),
    GetData(PathWatchRequest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create, create2, createContainer and createTTL; `ttl` is -1 unless createTTL.
    Create(OpCode, CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    CheckWatches(RemoveWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches2),
    SetWatches2(SetWatches2),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
    /// A known opcode this server does not serve (reconfig, sasl, ...).
    Unsupported(OpCode),
    /// An opcode ZooKeeper does not define.
    Unknown(i32),
}

fn create(op: OpCode, r: &mut Reader<'_>) -> Result<CreateTtlRequest, DecodeError> {
    if op == OpCode::CreateTtl {
        return CreateTtlRequest::read(r);
    }
    let c = CreateRequest::read(r)?;
    // -1 is ZooKeeper's "no TTL", so a TTL mode without createTTL is rejected.
    Ok(CreateTtlRequest {
        path: c.path,
        data: c.data,
        acl: c.acl,
        flags: c.flags,
        ttl: -1,
    })
}

fn write_create(op: OpCode, c: &CreateTtlRequest, buf: &mut BytesMut) {
    if op == OpCode::CreateTtl {
        c.write(buf);
    } else {
        c.path.write(buf);
        c.data.write(buf);
        c.acl.write(buf);
        c.flags.write(buf);
    }
}

impl MultiOp {
    fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(op, _) => *op,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    fn write(&self, buf: &mut BytesMut) {
        MultiHeader {
            op: self.op_code() as i32,
            done: false,
            err: -1,
        }
        .write(buf);
        match self {
            MultiOp::Create(op, c) => write_create(*op, c, buf),
            MultiOp::Delete(d) => d.write(buf),
            MultiOp::SetData(s) => s.write(buf),
            MultiOp::Check(c) => c.write(buf),
            MultiOp::GetChildren(p) | MultiOp::GetData(p) => p.write(buf),
        }
    }
}

/// Reads the ops of a multi up to the `done` header. `reads` selects which
/// family is allowed; ZooKeeper rejects a mix as a marshalling error.
fn multi(r: &mut Reader<'_>, reads: bool) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        let op = OpCode::from_i32(h.op).ok_or(DecodeError::Invalid("multi op type"))?;
        ops.push(match (op, reads) {
            (
                OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl,
                false,
            ) => MultiOp::Create(op, create(op, r)?),
            (OpCode::Delete, false) => MultiOp::Delete(DeleteRequest::read(r)?),
            (OpCode::SetData, false) => MultiOp::SetData(SetDataRequest::read(r)?),
            (OpCode::Check, false) => MultiOp::Check(CheckVersionRequest::read(r)?),
            (OpCode::GetChildren, true) => MultiOp::GetChildren(PathWatchRequest::read(r)?),
            (OpCode::GetData, true) => MultiOp::GetData(PathWatchRequest::read(r)?),
            _ => return Err(DecodeError::Invalid("multi op type")),
        });
    }
}

fn set_watches_v1(r: &mut Reader<'_>) -> Result<SetWatches2, DecodeError> {
    let v1 = SetWatches::read(r)?;
    Ok(SetWatches2 {
        relative_zxid: v1.relative_zxid,
        data_watches: v1.data_watches,
        exist_watches: v1.exist_watches,
        child_watches: v1.child_watches,
        ..SetWatches2::default()
    })
}

impl Request {
    /// Decodes a whole request frame (without its length prefix).
    pub fn decode(frame: &[u8]) -> Result<(RequestHeader, Request), DecodeError> {
        let mut r = Reader::new(frame);
        let header = RequestHeader::read(&mut r)?;
        let Some(op) = OpCode::from_i32(header.op) else {
            let op = header.op;
            return Ok((header, Request::Unknown(op)));
        };
        let r = &mut r;
        let req = match op {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Request::Create(op, create(op, r)?)
            }
            OpCode::Delete => Request::Delete(DeleteRequest::read(r)?),
            OpCode::Exists => Request::Exists(PathWatchRequest::read(r)?),
            OpCode::GetData => Request::GetData(PathWatchRequest::read(r)?),
            OpCode::SetData => Request::SetData(SetDataRequest::read(r)?),
            OpCode::GetAcl => Request::GetAcl(PathRequest::read(r)?),
            OpCode::SetAcl => Request::SetAcl(SetAclRequest::read(r)?),
            OpCode::GetChildren => Request::GetChildren(PathWatchRequest::read(r)?),
            OpCode::GetChildren2 => Request::GetChildren2(PathWatchRequest::read(r)?),
            OpCode::Sync => Request::Sync(PathRequest::read(r)?),
            OpCode::Ping => Request::Ping,
            OpCode::Check => Request::Check(CheckVersionRequest::read(r)?),
            OpCode::Multi => Request::Multi(multi(r, false)?),
            OpCode::MultiRead => Request::MultiRead(multi(r, true)?),
            OpCode::CheckWatches => Request::CheckWatches(RemoveWatchesRequest::read(r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(RemoveWatchesRequest::read(r)?),
            OpCode::Auth => Request::Auth(AuthPacket::read(r)?),
            OpCode::SetWatches => Request::SetWatches(set_watches_v1(r)?),
            OpCode::SetWatches2 => Request::SetWatches2(SetWatches2::read(r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(PathRequest::read(r)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(PathRequest::read(r)?),
            OpCode::AddWatch => Request::AddWatch(AddWatchRequest::read(r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Reconfig | OpCode::Sasl | OpCode::DeleteContainer | OpCode::Error => {
                Request::Unsupported(op)
            }
        };
        Ok((header, req))
    }

    /// Encodes header and record: the client's side, used by tests and fuzzing seeds.
    pub fn encode(&self, xid: i32, buf: &mut BytesMut) {
        let op = self.op_code();
        RequestHeader { xid, op }.write(buf);
        match self {
            Request::Create(op, c) => write_create(*op, c, buf),
            Request::Delete(d) => d.write(buf),
            Request::Exists(p)
            | Request::GetData(p)
            | Request::GetChildren(p)
            | Request::GetChildren2(p) => p.write(buf),
            Request::SetData(s) => s.write(buf),
            Request::GetAcl(p)
            | Request::Sync(p)
            | Request::GetEphemerals(p)
            | Request::GetAllChildrenNumber(p) => p.write(buf),
            Request::SetAcl(s) => s.write(buf),
            Request::Check(c) => c.write(buf),
            Request::Multi(ops) | Request::MultiRead(ops) => {
                ops.iter().for_each(|o| o.write(buf));
                MultiHeader {
                    op: -1,
                    done: true,
                    err: -1,
                }
                .write(buf);
            }
            Request::CheckWatches(w) | Request::RemoveWatches(w) => w.write(buf),
            Request::Auth(a) => a.write(buf),
            Request::SetWatches(w) => SetWatches {
                relative_zxid: w.relative_zxid,
                data_watches: w.data_watches.clone(),
                exist_watches: w.exist_watches.clone(),
                child_watches: w.child_watches.clone(),
            }
            .write(buf),
            Request::SetWatches2(w) => w.write(buf),
            Request::AddWatch(a) => a.write(buf),
            Request::Ping
            | Request::WhoAmI
            | Request::CloseSession
            | Request::Unsupported(_)
            | Request::Unknown(_) => {}
        }
    }

    pub fn op_code(&self) -> i32 {
        let op = match self {
            Request::Create(op, _) => *op,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
            Request::Unsupported(op) => *op,
            Request::Unknown(op) => return *op,
        };
        op as i32
    }
}
