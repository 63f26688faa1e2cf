//! The replicated state: the data tree, the durable session records and the
//! last zxid; applied one transaction at a time and serialized whole into a
//! snapshot.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::sync::Arc;

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

const SNAPSHOT_MAGIC: &[u8; 8] = b"EDDYSNP2";
/// Six i64 and three i32 stat fields per node.
const NODE_STAT_BYTES: usize = 6 * 8 + 3 * 4;

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

    /// Serializes the whole state into `out`: magic, zxid, sessions, the
    /// distinct ACLs, nodes (each naming its ACL by index, as ZooKeeper's ACL
    /// cache does), then a CRC32 of everything before it. Nothing is
    /// allocated per node: this runs on the state machine, so its cost is a
    /// pause for every client.
    pub fn write_snapshot(&self, out: &mut impl Write) -> io::Result<()> {
        // ACL lists are shared, so pointer identity finds the distinct ones
        // without hashing their contents per node.
        let mut acl_index: HashMap<*const Acl, i32> = HashMap::new();
        let mut acls: Vec<&[Acl]> = Vec::new();
        for (_, node) in self.tree.nodes() {
            acl_index.entry(node.acl.as_ptr()).or_insert_with(|| {
                acls.push(&node.acl);
                acls.len() as i32 - 1
            });
        }
        let mut w = Checksummed {
            out,
            crc: crc32fast::Hasher::new(),
        };
        w.put(SNAPSHOT_MAGIC)?;
        w.put(&self.last_zxid.to_be_bytes())?;
        w.put_len(self.sessions.len())?;
        for (id, s) in &self.sessions {
            w.put(&id.to_be_bytes())?;
            w.put(&s.timeout_ms.to_be_bytes())?;
            w.put_bytes(&s.password)?;
        }
        w.put_len(acls.len())?;
        for list in &acls {
            w.put(&(list.len() as i32).to_be_bytes())?;
            for a in list.iter() {
                w.put(&a.perms.to_be_bytes())?;
                w.put_bytes(a.scheme.as_bytes())?;
                w.put_bytes(a.id.as_bytes())?;
            }
        }
        w.put_len(self.tree.len())?;
        for (path, node) in self.tree.nodes() {
            w.put_bytes(path.as_bytes())?;
            w.put_bytes(&node.data)?;
            let index = acl_index.get(&node.acl.as_ptr()).copied().unwrap_or(0);
            let s = &node.stat;
            let mut fixed = [0u8; 4 + NODE_STAT_BYTES];
            let fields = [
                s.czxid,
                s.mzxid,
                s.pzxid,
                s.ctime,
                s.mtime,
                s.ephemeral_owner,
            ];
            fixed[..4].copy_from_slice(&index.to_be_bytes());
            for (i, v) in fields.into_iter().enumerate() {
                fixed[4 + i * 8..12 + i * 8].copy_from_slice(&v.to_be_bytes());
            }
            for (i, v) in [s.version, s.cversion, s.aversion].into_iter().enumerate() {
                fixed[52 + i * 4..56 + i * 4].copy_from_slice(&v.to_be_bytes());
            }
            w.put(&fixed)?;
        }
        let crc = w.crc.finalize();
        w.out.write_all(&crc.to_be_bytes())
    }

    /// The snapshot as one buffer (tests, fuzzing).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = self.write_snapshot(&mut buf);
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
        let mut acls = Vec::new();
        for _ in 0..count(&mut r)? {
            acls.push(tree.intern_acl(&Vec::<Acl>::read(&mut r)?));
        }
        for _ in 0..count(&mut r)? {
            let path = String::read(&mut r)?;
            let data = Vec::<u8>::read(&mut r)?.into_boxed_slice();
            let index = r.i32()?;
            let acl: Arc<[Acl]> = usize::try_from(index)
                .ok()
                .and_then(|i| acls.get(i).cloned())
                .ok_or(DecodeError::Invalid("snapshot acl index"))?;
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

/// A writer that keeps the CRC32 of everything written through it.
struct Checksummed<'a, W: Write> {
    out: &'a mut W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Checksummed<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)
    }

    fn put_len(&mut self, n: usize) -> io::Result<()> {
        self.put(&(n as i64).to_be_bytes())
    }

    /// A jute `buffer`: length, then the bytes.
    fn put_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put(&(bytes.len() as i32).to_be_bytes())?;
        self.put(bytes)
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

#[cfg(test)]
mod snapshot_cost {
    use super::*;

    /// How long the state machine pauses to serialize a large tree:
    /// `cargo test --release -p coordinator snapshot_of_a_million -- --ignored --nocapture`
    #[test]
    #[ignore = "timing probe, run by hand"]
    fn snapshot_of_a_million_nodes() {
        let mut db = ZkDb::default();
        let mut changes = Vec::new();
        db.apply(
            &TxnEntry {
                zxid: 1,
                time: 0,
                txn: Txn::Create {
                    path: "/b".into(),
                    data: vec![],
                    acl: vec![Acl::open()],
                    ephemeral_owner: 0,
                },
            },
            &mut changes,
        );
        for i in 0..1_000_000i64 {
            let txn = Txn::Create {
                path: format!("/b/n{i:010}"),
                data: vec![7; 100],
                acl: vec![Acl::open()],
                ephemeral_owner: 0,
            };
            db.apply(
                &TxnEntry {
                    zxid: i + 2,
                    time: 0,
                    txn,
                },
                &mut changes,
            );
            changes.clear();
        }
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let bytes = db.snapshot();
            eprintln!("snapshot: {} bytes in {:?}", bytes.len(), t.elapsed());
        }
        let t = std::time::Instant::now();
        let back = ZkDb::from_snapshot(&db.snapshot()).expect("valid");
        eprintln!(
            "snapshot + load: {:?} ({} nodes)",
            t.elapsed(),
            back.tree.len()
        );
        assert_eq!(back.tree.len(), db.tree.len());
    }
}
