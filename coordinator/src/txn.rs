//! Transactions: the validated, deterministic changes that the log stores and
//! the tree applies. Encoded with the jute primitives, tagged with ZooKeeper's
//! opcodes.

use bytes::BytesMut;

use crate::proto::op_code::CREATE_SESSION;
use crate::proto::{Acl, DecodeError, Jute, OpCode, Reader, PASSWORD_LEN};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    CreateSession {
        session: i64,
        timeout_ms: i32,
        password: [u8; PASSWORD_LEN],
    },
    /// Ends a session and deletes its ephemeral nodes.
    CloseSession {
        session: i64,
    },
    Create {
        path: String,
        data: Vec<u8>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
    },
    Delete {
        path: String,
    },
    SetData {
        path: String,
        data: Vec<u8>,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
    },
    /// The changes of one `multi`, applied atomically under one zxid.
    Multi(Vec<Txn>),
}

/// A transaction with the zxid and wall-clock time it was assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnEntry {
    pub zxid: i64,
    pub time: i64,
    pub txn: Txn,
}

impl Txn {
    pub fn write(&self, buf: &mut BytesMut) {
        match self {
            Txn::CreateSession {
                session,
                timeout_ms,
                password,
            } => {
                CREATE_SESSION.write(buf);
                session.write(buf);
                timeout_ms.write(buf);
                password.to_vec().write(buf);
            }
            Txn::CloseSession { session } => {
                (OpCode::CloseSession as i32).write(buf);
                session.write(buf);
            }
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
            } => {
                (OpCode::Create as i32).write(buf);
                path.write(buf);
                data.write(buf);
                acl.write(buf);
                ephemeral_owner.write(buf);
            }
            Txn::Delete { path } => {
                (OpCode::Delete as i32).write(buf);
                path.write(buf);
            }
            Txn::SetData { path, data } => {
                (OpCode::SetData as i32).write(buf);
                path.write(buf);
                data.write(buf);
            }
            Txn::SetAcl { path, acl } => {
                (OpCode::SetAcl as i32).write(buf);
                path.write(buf);
                acl.write(buf);
            }
            Txn::Multi(txns) => {
                (OpCode::Multi as i32).write(buf);
                (txns.len() as i32).write(buf);
                txns.iter().for_each(|t| t.write(buf));
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = i32::read(r)?;
        Ok(match tag {
            CREATE_SESSION => Txn::CreateSession {
                session: i64::read(r)?,
                timeout_ms: i32::read(r)?,
                password: Vec::<u8>::read(r)?
                    .try_into()
                    .map_err(|_| DecodeError::Invalid("session password"))?,
            },
            t if t == OpCode::CloseSession as i32 => Txn::CloseSession {
                session: i64::read(r)?,
            },
            t if t == OpCode::Create as i32 => Txn::Create {
                path: String::read(r)?,
                data: Vec::read(r)?,
                acl: Vec::read(r)?,
                ephemeral_owner: i64::read(r)?,
            },
            t if t == OpCode::Delete as i32 => Txn::Delete {
                path: String::read(r)?,
            },
            t if t == OpCode::SetData as i32 => Txn::SetData {
                path: String::read(r)?,
                data: Vec::read(r)?,
            },
            t if t == OpCode::SetAcl as i32 => Txn::SetAcl {
                path: String::read(r)?,
                acl: Vec::read(r)?,
            },
            t if t == OpCode::Multi as i32 => {
                let n = i32::read(r)?;
                if n < 0 || n as usize > r.remaining() {
                    return Err(DecodeError::Invalid("multi txn count"));
                }
                let mut txns = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    // The server never nests multis; refusing them keeps a
                    // crafted log from recursing the reader off its stack.
                    match Txn::read(r)? {
                        Txn::Multi(_) => return Err(DecodeError::Invalid("nested multi txn")),
                        t => txns.push(t),
                    }
                }
                Txn::Multi(txns)
            }
            _ => return Err(DecodeError::Invalid("txn type")),
        })
    }
}

impl TxnEntry {
    pub fn write(&self, buf: &mut BytesMut) {
        self.zxid.write(buf);
        self.time.write(buf);
        self.txn.write(buf);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            zxid: i64::read(r)?,
            time: i64::read(r)?,
            txn: Txn::read(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaf() -> impl Strategy<Value = Txn> {
        prop_oneof![
            (any::<i64>(), any::<i32>(), any::<[u8; 16]>()).prop_map(
                |(session, timeout_ms, password)| {
                    Txn::CreateSession {
                        session,
                        timeout_ms,
                        password,
                    }
                }
            ),
            any::<i64>().prop_map(|session| Txn::CloseSession { session }),
            (
                "/[a-z]{1,8}",
                proptest::collection::vec(any::<u8>(), 0..64),
                any::<i64>()
            )
                .prop_map(|(path, data, ephemeral_owner)| Txn::Create {
                    path,
                    data,
                    acl: vec![Acl::open()],
                    ephemeral_owner
                }),
            "/[a-z]{1,8}".prop_map(|path| Txn::Delete { path }),
            ("/[a-z]{1,8}", proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(path, data)| Txn::SetData { path, data }),
            "/[a-z]{1,8}".prop_map(|path| Txn::SetAcl {
                path,
                acl: vec![Acl::open()]
            }),
        ]
    }

    #[test]
    fn nested_multis_are_rejected() {
        let inner = Txn::Multi(vec![Txn::Delete { path: "/a".into() }]);
        let mut buf = BytesMut::new();
        Txn::Multi(vec![inner]).write(&mut buf);
        assert_eq!(
            Txn::read(&mut Reader::new(&buf)),
            Err(DecodeError::Invalid("nested multi txn"))
        );
    }

    proptest! {
        #[test]
        fn entries_round_trip(zxid: i64, time: i64, txns in proptest::collection::vec(leaf(), 1..5)) {
            let txn = if txns.len() == 1 { txns[0].clone() } else { Txn::Multi(txns) };
            let entry = TxnEntry { zxid, time, txn };
            let mut buf = BytesMut::new();
            entry.write(&mut buf);
            let mut r = Reader::new(&buf);
            prop_assert_eq!(TxnEntry::read(&mut r), Ok(entry));
            prop_assert_eq!(r.remaining(), 0);
        }
    }
}
