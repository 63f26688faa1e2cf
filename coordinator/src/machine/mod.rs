//! The request-level state machine: the database, the watch table and each
//! live session's identities, changed only by requests and session events.
//! It does no I/O and keeps no clock: the server feeds it requests with the
//! time, then takes the transactions to log and the notifications to send
//! from `effects`. Tests and fuzzing drive exactly the code the server runs.

mod ops;

use std::collections::HashMap;

use crate::db::ZkDb;
use crate::proto::records::ClientInfo;
use crate::proto::PASSWORD_LEN;
use crate::txn::{Txn, TxnEntry};
use crate::watch::{Notification, WatchTable};

/// What requests produced since the caller last drained it.
#[derive(Debug, Default)]
pub struct Effects {
    /// Applied transactions, in zxid order, for the log.
    pub committed: Vec<TxnEntry>,
    /// Watch notifications with the zxid that fired them, in firing order.
    pub notifications: Vec<(i64, Notification)>,
}

#[derive(Debug)]
pub struct Machine {
    pub db: ZkDb,
    pub watches: WatchTable,
    /// Identities of each live session (`ip` from its connection, plus any
    /// `digest` it authenticated as); not durable, clients re-send auth.
    auth: HashMap<i64, Vec<ClientInfo>>,
    skip_acl: bool,
    /// Wall-clock time of the request being handled (ctime/mtime).
    time: i64,
    pub effects: Effects,
}

impl Machine {
    pub fn new(db: ZkDb, skip_acl: bool) -> Self {
        Self {
            db,
            watches: WatchTable::default(),
            auth: HashMap::new(),
            skip_acl,
            time: 0,
            effects: Effects::default(),
        }
    }

    /// Applies a transaction under the next zxid, records it for the log and
    /// fires the watches it triggers.
    pub fn commit(&mut self, txn: Txn) -> i64 {
        let entry = TxnEntry {
            zxid: self.db.last_zxid + 1,
            time: self.time,
            txn,
        };
        let mut changes = Vec::new();
        self.db.apply(&entry, &mut changes);
        let mut notes = Vec::new();
        for change in &changes {
            self.watches.trigger(change, &mut notes);
        }
        let zxid = entry.zxid;
        self.effects
            .notifications
            .extend(notes.into_iter().map(|n| (zxid, n)));
        self.effects.committed.push(entry);
        zxid
    }

    /// Logs a new session.
    pub fn create_session(
        &mut self,
        id: i64,
        timeout_ms: i32,
        password: [u8; PASSWORD_LEN],
        time: i64,
    ) -> i64 {
        self.time = time;
        self.commit(Txn::CreateSession {
            session: id,
            timeout_ms,
            password,
        })
    }

    /// A session (new or resumed) is now served on a connection from `ip`:
    /// that address is its `ip` identity, and earlier identities are gone
    /// (clients re-send their auth after reconnecting).
    pub fn attach(&mut self, id: i64, ip: String) {
        self.auth.insert(
            id,
            vec![ClientInfo {
                auth_scheme: "ip".into(),
                user: ip,
            }],
        );
    }

    /// Ends a session: its watches go, and the logged close deletes its
    /// ephemeral nodes (firing other sessions' watches).
    pub fn close_session(&mut self, id: i64, time: i64) -> i64 {
        self.time = time;
        self.watches.remove_session(id);
        self.auth.remove(&id);
        self.commit(Txn::CloseSession { session: id })
    }

    /// Deletes a node on the server's own behalf (an empty container, an
    /// expired TTL node).
    pub fn delete(&mut self, path: String, time: i64) -> i64 {
        self.time = time;
        self.commit(Txn::Delete { path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::records::CheckVersionRequest;
    use crate::proto::records::{CreateTtlRequest, PathWatchRequest, SetDataRequest};
    use crate::proto::{Acl, ErrorCode, MultiOp, MultiResult, OpCode, Request, Response};

    fn create(path: &str, flags: i32) -> Request {
        Request::Create(
            OpCode::Create,
            CreateTtlRequest {
                path: path.into(),
                data: b"d".to_vec(),
                acl: vec![Acl::open()],
                flags,
                ttl: -1,
            },
        )
    }

    fn machine() -> Machine {
        let mut m = Machine::new(ZkDb::default(), false);
        m.create_session(1, 4000, [0; 16], 0);
        m.attach(1, "127.0.0.1".into());
        m.create_session(2, 4000, [0; 16], 0);
        m.attach(2, "127.0.0.1".into());
        m.effects = Effects::default();
        m
    }

    #[test]
    fn a_write_is_committed_once_and_fires_the_watch_before_returning() {
        let mut m = machine();
        let watch = PathWatchRequest {
            path: "/a".into(),
            watch: true,
        };
        assert_eq!(
            m.request(2, Request::Exists(watch), 5).1,
            Err(ErrorCode::NoNode)
        );
        let (zxid, reply) = m.request(1, create("/a", 0), 7);
        assert_eq!(reply, Ok(Response::Create("/a".into())));
        assert_eq!(zxid, Some(3));
        assert_eq!(m.effects.committed.len(), 1);
        assert_eq!(m.effects.committed[0].time, 7);
        let (z, note) = &m.effects.notifications[0];
        assert_eq!(
            (*z, note.session, note.event_type, note.path.as_str()),
            (3, 2, 1, "/a")
        );
    }

    #[test]
    fn failed_multi_commits_nothing_and_reports_each_op() {
        let mut m = machine();
        assert!(m.request(1, create("/a", 0), 0).1.is_ok());
        m.effects = Effects::default();
        let ops = vec![
            MultiOp::SetData(SetDataRequest {
                path: "/a".into(),
                data: vec![],
                version: 0,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 5,
            }),
            MultiOp::Delete(crate::proto::records::DeleteRequest {
                path: "/a".into(),
                version: -1,
            }),
        ];
        let (zxid, reply) = m.request(1, Request::Multi(ops), 0);
        assert_eq!(zxid, None);
        assert_eq!(
            reply,
            Ok(Response::Multi(vec![
                MultiResult::Error(0),
                MultiResult::Error(-103),
                MultiResult::Error(-2)
            ]))
        );
        assert!(m.effects.committed.is_empty());
        assert_eq!(m.db.tree.get("/a").map(|n| n.stat.version), Some(0));
    }

    #[test]
    fn closing_a_session_deletes_its_ephemerals_and_notifies_others() {
        let mut m = machine();
        assert!(m.request(1, create("/e", 1), 0).1.is_ok());
        let watch = PathWatchRequest {
            path: "/e".into(),
            watch: true,
        };
        assert!(m.request(2, Request::GetData(watch), 0).1.is_ok());
        m.effects = Effects::default();
        m.close_session(1, 9);
        assert!(m.db.tree.get("/e").is_none());
        assert!(!m.db.sessions.contains_key(&1));
        assert_eq!(m.effects.notifications.len(), 1);
        assert_eq!(m.effects.notifications[0].1.session, 2);
    }

    #[test]
    fn digest_auth_is_per_session_and_reset_on_attach() {
        let mut m = machine();
        let auth = crate::proto::records::AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"u:p".to_vec(),
        };
        assert_eq!(m.request(1, Request::Auth(auth), 0).1, Ok(Response::Empty));
        let Ok(Response::WhoAmI(ids)) = m.request(1, Request::WhoAmI, 0).1 else {
            panic!("whoami answers");
        };
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[1].user, "u");
        m.attach(1, "10.0.0.1".into());
        let Ok(Response::WhoAmI(ids)) = m.request(1, Request::WhoAmI, 0).1 else {
            panic!("whoami answers");
        };
        assert_eq!(ids.len(), 1);
        let bad = crate::proto::records::AuthPacket {
            auth_type: 0,
            scheme: "kerberos".into(),
            auth: vec![],
        };
        assert_eq!(
            m.request(1, Request::Auth(bad), 0).1,
            Err(ErrorCode::AuthFailed)
        );
    }
}
