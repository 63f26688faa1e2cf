//! The replicated state: the data tree, the durable session records and the
//! last zxid; applied one transaction at a time and serialized whole into a
//! snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use crate::proto::{Acl, DecodeError, Jute, Reader, PASSWORD_LEN};
use crate::tree::{Change, DataTree, NodeStat};
use crate::txn::{Txn, TxnEntry};

/// What must survive a restart about a session.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub timeout_ms: i32,
    pub password: [u8; PASSWORD_LEN],
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub struct ZkDb {
    pub tree: DataTree,
    pub sessions: BTreeMap<i64, SessionRecord>,
    pub last_zxid: i64,
}

const SNAPSHOT_MAGIC: &[u8; 8] = b"EDDYSNP1";

impl ZkDb {
    /// Applies one logged transaction; changes for the watch table go to `changes`.
    pub fn apply(&mut self, entry: &TxnEntry, changes: &mut Vec<Change>) {
        match &entry.txn {
            Txn::CreateSession {
                session,
                timeout_ms,
                password,
            } => {
                self.sessions.insert(
                    *session,
                    SessionRecord {
                        timeout_ms: *timeout_ms,
                        password: *password,
                    },
                );
            }
            Txn::CloseSession { session } => {
                self.sessions.remove(session);
            }
            _ => {}
        }
        self.tree.apply(entry.zxid, entry.time, &entry.txn, changes);
        self.last_zxid = self.last_zxid.max(entry.zxid);
    }

    /// Serializes the whole state: magic, zxid, sessions, nodes, then a CRC32
    /// of everything before it.
    pub fn snapshot(&self) -> BytesMut {
        let mut buf = BytesMut::with_capacity(64 + self.tree.len() * 128);
        buf.put_slice(SNAPSHOT_MAGIC);
        self.last_zxid.write(&mut buf);
        (self.sessions.len() as i64).write(&mut buf);
        for (id, s) in &self.sessions {
            id.write(&mut buf);
            s.timeout_ms.write(&mut buf);
            s.password.to_vec().write(&mut buf);
        }
        (self.tree.len() as i64).write(&mut buf);
        for (path, node) in self.tree.nodes() {
            path.to_string().write(&mut buf);
            node.data.to_vec().write(&mut buf);
            node.acl.to_vec().write(&mut buf);
            let s = &node.stat;
            for v in [
                s.czxid,
                s.mzxid,
                s.pzxid,
                s.ctime,
                s.mtime,
                s.ephemeral_owner,
            ] {
                v.write(&mut buf);
            }
            for v in [s.version, s.cversion, s.aversion] {
                v.write(&mut buf);
            }
        }
        let crc = crc32fast::hash(&buf);
        buf.put_u32(crc);
        buf
    }

    /// Rebuilds a state from `snapshot`'s bytes, checking magic and checksum.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < SNAPSHOT_MAGIC.len() + 4 || &bytes[..8] != SNAPSHOT_MAGIC {
            return Err(DecodeError::Invalid("snapshot header"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body).to_be_bytes() != crc {
            return Err(DecodeError::Invalid("snapshot checksum"));
        }
        let mut r = Reader::new(&body[8..]);
        let last_zxid = i64::read(&mut r)?;
        let mut sessions = BTreeMap::new();
        for _ in 0..count(&mut r)? {
            let id = i64::read(&mut r)?;
            let timeout_ms = i32::read(&mut r)?;
            let password = Vec::<u8>::read(&mut r)?
                .try_into()
                .map_err(|_| DecodeError::Invalid("session password"))?;
            sessions.insert(
                id,
                SessionRecord {
                    timeout_ms,
                    password,
                },
            );
        }
        let mut tree = DataTree::new();
        for _ in 0..count(&mut r)? {
            let path = String::read(&mut r)?;
            let data = Vec::<u8>::read(&mut r)?.into_boxed_slice();
            let acl: Arc<[Acl]> = Vec::<Acl>::read(&mut r)?.into();
            let mut s = NodeStat {
                czxid: r.i64()?,
                mzxid: r.i64()?,
                pzxid: r.i64()?,
                ctime: r.i64()?,
                mtime: r.i64()?,
                ephemeral_owner: r.i64()?,
                ..NodeStat::default()
            };
            s.version = r.i32()?;
            s.cversion = r.i32()?;
            s.aversion = r.i32()?;
            tree.insert_raw(&path, data, acl, s);
        }
        tree.link_children();
        Ok(Self {
            tree,
            sessions,
            last_zxid,
        })
    }
}

fn count(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let n = r.i64()?;
    if n < 0 || n as usize > r.remaining() {
        return Err(DecodeError::Invalid("snapshot count"));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(zxid: i64, txn: Txn) -> TxnEntry {
        TxnEntry {
            zxid,
            time: zxid * 10,
            txn,
        }
    }

    fn sample() -> ZkDb {
        let mut db = ZkDb::default();
        let mut changes = Vec::new();
        let txns = [
            Txn::CreateSession {
                session: 42,
                timeout_ms: 4000,
                password: [7; 16],
            },
            Txn::Create {
                path: "/a".into(),
                data: b"x".to_vec(),
                acl: vec![Acl::open()],
                ephemeral_owner: 0,
            },
            Txn::Create {
                path: "/a/e".into(),
                data: vec![],
                acl: vec![Acl::open()],
                ephemeral_owner: 42,
            },
            Txn::SetData {
                path: "/a".into(),
                data: b"yy".to_vec(),
            },
        ];
        for (i, txn) in txns.into_iter().enumerate() {
            db.apply(&entry(i as i64 + 1, txn), &mut changes);
        }
        db
    }

    #[test]
    fn snapshot_round_trips_everything() {
        let db = sample();
        let back = ZkDb::from_snapshot(&db.snapshot()).expect("valid snapshot");
        assert_eq!(back.last_zxid, 4);
        assert_eq!(back.sessions, db.sessions);
        assert_eq!(back.tree.len(), db.tree.len());
        for (path, node) in db.tree.nodes() {
            let other = back.tree.get(path).expect("node restored");
            assert_eq!(other.stat(), node.stat(), "{path}");
            assert_eq!(other.data, node.data);
        }
        assert_eq!(back.tree.ephemerals_of(42).count(), 1);
    }

    #[test]
    fn corrupt_snapshot_is_rejected() {
        let mut bytes = sample().snapshot().to_vec();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        assert!(ZkDb::from_snapshot(&bytes).is_err());
        assert!(ZkDb::from_snapshot(&bytes[..10]).is_err());
        assert!(ZkDb::from_snapshot(b"").is_err());
    }

    #[test]
    fn closing_a_session_forgets_it_and_its_ephemerals() {
        let mut db = sample();
        let mut changes = Vec::new();
        db.apply(&entry(5, Txn::CloseSession { session: 42 }), &mut changes);
        assert!(db.sessions.is_empty());
        assert!(db.tree.get("/a/e").is_none());
        assert!(changes.contains(&Change::Deleted("/a/e".into())));
    }
}
