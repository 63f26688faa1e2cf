//! Fuzzes the per-connection state machine without I/O: length-prefixed frames
//! (a ConnectRequest first, then requests) are decoded and handled exactly as
//! `server/core.rs` + `server/handler.rs` do (Prep, ZkDb::apply, the watch
//! table), checking tree, watch, reply-codec, log-replay and snapshot invariants.
#![no_main]

use std::collections::{BTreeSet, HashMap, HashSet};

use bytes::{BufMut, BytesMut};
use coordinator::acl::{check_acl, digest_id, redact};
use coordinator::db::ZkDb;
use coordinator::path;
use coordinator::prep::Prep;
use coordinator::proto::acl::perms;
use coordinator::proto::op_code::PING_XID;
use coordinator::proto::records::{
    AuthPacket, ClientInfo, PathWatchRequest, RemoveWatchesRequest, ReplyHeader, SetWatches2,
};
use coordinator::proto::{
    write_reply, ConnectRequest, ErrorCode, Jute, MultiOp, MultiResult, OpCode, Reader, Request,
    Response, Stat, DEFAULT_MAX_BUFFER, PASSWORD_LEN,
};
use coordinator::storage::txnlog;
use coordinator::tree::{Change, DataTree, Node, Owner};
use coordinator::txn::{Txn, TxnEntry};
use coordinator::watch::{event_type, Notification, WatchKind, WatchTable};
use libfuzzer_sys::fuzz_target;

/// `cfg.skip_acl` of the simulated server (the default).
const SKIP_ACL: bool = false;
/// Default `minSessionTimeout` / `maxSessionTimeout` for tickTime 2000.
const MIN_TIMEOUT: i64 = 4000;
const MAX_TIMEOUT: i64 = 40000;
/// Session passwords are random in the server; fixed here so the fuzzer can
/// resume a session by id.
const PASSWORD: [u8; PASSWORD_LEN] = [0; PASSWORD_LEN];
/// txnlog's private magic.
const LOG_MAGIC: &[u8; 8] = b"EDDYLOG1";

type Reply = Result<Response, ErrorCode>;

fn valid(p: &str) -> Result<(), ErrorCode> {
    path::validate(p).map_err(|_| ErrorCode::BadArguments)
}

/// Which watch kinds a `WatcherType` code covers (private in watch.rs).
fn covers(watcher_type: i32) -> Option<&'static [WatchKind]> {
    Some(match watcher_type {
        1 => &[WatchKind::Child],
        2 => &[WatchKind::Data],
        3 => &[WatchKind::Data, WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive],
        4 => &[WatchKind::Persistent],
        5 => &[WatchKind::PersistentRecursive],
        _ => return None,
    })
}

#[derive(Default)]
struct Sim {
    db: ZkDb,
    watches: WatchTable,
    /// An independent model of the watch table: (kind, path, session).
    shadow: HashSet<(WatchKind, String, i64)>,
    /// Live sessions and their identities (`Core::sessions`).
    live: HashMap<i64, Vec<ClientInfo>>,
    next_session: i64,
    /// Everything committed, framed as the log file would hold it.
    log: BytesMut,
}

impl Sim {
    fn new() -> Self {
        let mut log = BytesMut::new();
        log.put_slice(LOG_MAGIC);
        // Server id 1 in the top byte, as `Core::new` lays session ids out.
        Self { next_session: 1 << 56, log, ..Self::default() }
    }

    fn auth_of(&self, session: i64) -> &[ClientInfo] {
        self.live.get(&session).map(|a| a.as_slice()).unwrap_or_default()
    }

    // ---- core.rs -------------------------------------------------------

    fn commit(&mut self, txn: Txn) -> (i64, Vec<Change>) {
        let zxid = self.db.last_zxid + 1;
        let entry = TxnEntry { zxid, time: zxid * 1000, txn };
        txnlog::frame(&entry, &mut self.log);
        let mut changes = Vec::new();
        self.db.apply(&entry, &mut changes);
        assert_eq!(self.db.last_zxid, zxid);
        self.fire(&changes);
        (zxid, changes)
    }

    /// Triggers the watch table and checks it against the shadow model.
    fn fire(&mut self, changes: &[Change]) {
        for change in changes {
            let mut notes: Vec<Notification> = Vec::new();
            self.watches.trigger(change, &mut notes);
            let (ev, p, one_shot, recursive): (i32, &String, &[WatchKind], bool) = match change {
                Change::Created(p) => (event_type::NODE_CREATED, p, &[WatchKind::Data], true),
                Change::DataChanged(p) => (event_type::NODE_DATA_CHANGED, p, &[WatchKind::Data], true),
                Change::Deleted(p) => {
                    (event_type::NODE_DELETED, p, &[WatchKind::Data, WatchKind::Child], true)
                }
                Change::ChildrenChanged(p) => {
                    (event_type::NODE_CHILDREN_CHANGED, p, &[WatchKind::Child], false)
                }
            };
            let mut expected = BTreeSet::new();
            for kind in one_shot {
                let fired: Vec<_> =
                    self.shadow.iter().filter(|(k, wp, _)| k == kind && wp == p).cloned().collect();
                for w in fired {
                    expected.insert(w.2);
                    self.shadow.remove(&w);
                }
            }
            for (k, wp, s) in &self.shadow {
                let hit = match k {
                    WatchKind::Persistent => wp == p,
                    WatchKind::PersistentRecursive => {
                        recursive && path::self_and_ancestors(p).any(|a| a == wp)
                    }
                    _ => false,
                };
                if hit {
                    expected.insert(*s);
                }
            }
            let mut got = BTreeSet::new();
            for n in &notes {
                assert_eq!(n.event_type, ev, "{change:?}");
                assert_eq!(&n.path, p, "{change:?}");
                assert!(got.insert(n.session), "two notifications for one session: {change:?}");
            }
            assert_eq!(got, expected, "notified sessions for {change:?}");
        }
    }

    fn watch(&mut self, session: i64, kind: WatchKind, p: &str) {
        self.watches.add(session, kind, p);
        self.shadow.insert((kind, p.to_string(), session));
    }

    fn connect(&mut self, req: &ConnectRequest) -> Option<i64> {
        if req.last_zxid_seen > self.db.last_zxid {
            return None;
        }
        let ip = vec![ClientInfo { auth_scheme: "ip".into(), user: "127.0.0.1".into() }];
        if req.session_id == 0 {
            let id = loop {
                self.next_session = self.next_session.wrapping_add(1);
                let id = self.next_session;
                if id != 0 && !self.db.sessions.contains_key(&id) {
                    break id;
                }
            };
            let timeout = i64::from(req.timeout_ms).clamp(MIN_TIMEOUT, MAX_TIMEOUT);
            self.commit(Txn::CreateSession { session: id, timeout_ms: timeout as i32, password: PASSWORD });
            self.live.insert(id, ip);
            return Some(id);
        }
        let id = req.session_id;
        match self.db.sessions.get(&id) {
            Some(rec) if rec.password[..] == req.password[..] => {
                let live = self.live.get_mut(&id).expect("a session in the db is live");
                *live = ip;
                Some(id)
            }
            _ => None,
        }
    }

    fn close_session(&mut self, id: i64) -> i64 {
        self.watches.remove_session(id);
        self.shadow.retain(|w| w.2 != id);
        let before: Vec<String> = self.db.tree.ephemerals_of(id).cloned().collect();
        let (zxid, _) = self.commit(Txn::CloseSession { session: id });
        self.live.remove(&id);
        for p in before {
            assert!(self.db.tree.get(&p).is_none(), "ephemeral {p} survived its session");
        }
        assert!(!self.db.sessions.contains_key(&id));
        zxid
    }

    fn reply(&self, op: i32, xid: i32, zxid: Option<i64>, result: &Reply) {
        let zxid = zxid.unwrap_or(self.db.last_zxid);
        let mut buf = BytesMut::new();
        write_reply(&mut buf, xid, zxid, result);
        let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        assert_eq!(len as usize, buf.len() - 4);
        let mut r = Reader::new(&buf[4..]);
        let h = ReplyHeader::read(&mut r).expect("reply header");
        assert_eq!((h.xid, h.zxid), (xid, zxid));
        match result {
            Ok(body) => {
                assert_eq!(h.err, 0);
                let op = OpCode::from_i32(op).expect("a successful reply has a known opcode");
                let back = Response::read(op, &mut r).expect("reply body decodes");
                assert_eq!(&back, body);
                assert_eq!(r.remaining(), 0);
            }
            Err(e) => {
                assert_eq!(h.err, e.code());
                assert_eq!(r.remaining(), 0);
            }
        }
    }

    // ---- handler.rs ----------------------------------------------------

    /// One request; false when the connection closes after it.
    fn request(&mut self, session: i64, xid: i32, req: Request) -> bool {
        let op = req.op_code();
        let mut zxid = None;
        let result: Reply = match req {
            Request::Ping => {
                self.reply(op, PING_XID, None, &Ok(Response::Empty));
                return true;
            }
            Request::Create(..) | Request::Delete(_) | Request::SetData(_) | Request::SetAcl(_) => {
                self.write(session, req, &mut zxid)
            }
            Request::Multi(ops) => Ok(self.multi(session, &ops, &mut zxid)),
            Request::Check(c) => Prep::new(&self.db.tree, self.auth_of(session), SKIP_ACL)
                .check(&c)
                .map(|()| Response::Empty),
            Request::Exists(r) => self.exists(session, &r),
            Request::GetData(r) => self.get_data(session, &r),
            Request::GetChildren(r) => self.children(session, &r).map(|(c, _)| Response::Children(c)),
            Request::GetChildren2(r) => {
                self.children(session, &r).map(|(c, s)| Response::Children2(c, s))
            }
            Request::GetAcl(r) => self.get_acl(session, &r.path),
            Request::Sync(r) => Ok(Response::Path(r.path)),
            Request::MultiRead(ops) => Ok(self.multi_read(session, &ops)),
            Request::GetEphemerals(r) => {
                let mut list: Vec<String> = self
                    .db
                    .tree
                    .ephemerals_of(session)
                    .filter(|p| p.starts_with(&r.path))
                    .cloned()
                    .collect();
                list.sort();
                Ok(Response::Ephemerals(list))
            }
            Request::GetAllChildrenNumber(r) => self
                .readable(session, &r.path, perms::READ)
                .map(|()| Response::AllChildrenNumber(self.db.tree.descendant_count(&r.path) as i32)),
            Request::AddWatch(r) => valid(&r.path).and_then(|()| {
                let kind = match r.mode {
                    0 => WatchKind::Persistent,
                    1 => WatchKind::PersistentRecursive,
                    _ => return Err(ErrorCode::BadArguments),
                };
                self.watch(session, kind, &r.path);
                Ok(Response::ErrorBody(0))
            }),
            Request::CheckWatches(r) => self.remove_watches(session, &r, true),
            Request::RemoveWatches(r) => self.remove_watches(session, &r, false),
            Request::SetWatches(w) | Request::SetWatches2(w) => {
                self.set_watches(session, w);
                Ok(Response::Empty)
            }
            Request::Auth(a) => {
                if let Err(e) = self.auth(session, a) {
                    self.reply(op, xid, None, &Err(e));
                    return false;
                }
                Ok(Response::Empty)
            }
            Request::WhoAmI => {
                let shown = self
                    .auth_of(session)
                    .iter()
                    .map(|i| ClientInfo {
                        auth_scheme: i.auth_scheme.clone(),
                        user: i.user.split(':').next().unwrap_or_default().to_string(),
                    })
                    .collect();
                Ok(Response::WhoAmI(shown))
            }
            Request::CloseSession => {
                let z = self.close_session(session);
                self.reply(op, xid, Some(z), &Ok(Response::Empty));
                return false;
            }
            Request::Unsupported(OpCode::Reconfig) => Err(ErrorCode::ReconfigDisabled),
            Request::Unsupported(_) | Request::Unknown(_) => Err(ErrorCode::Unimplemented),
        };
        self.reply(op, xid, zxid, &result);
        true
    }

    fn readable(&self, session: i64, p: &str, perm: i32) -> Result<(), ErrorCode> {
        let node = self.db.tree.get(p).ok_or(ErrorCode::NoNode)?;
        if SKIP_ACL {
            return Ok(());
        }
        check_acl(&node.acl, perm, self.auth_of(session))
    }

    fn get_acl(&self, session: i64, p: &str) -> Reply {
        self.readable(session, p, perms::READ | perms::ADMIN)?;
        let node = self.db.tree.get(p).ok_or(ErrorCode::NoNode)?;
        let admin = SKIP_ACL || check_acl(&node.acl, perms::ADMIN, self.auth_of(session)).is_ok();
        let acl = if admin { node.acl.to_vec() } else { redact(&node.acl) };
        Ok(Response::GetAcl(acl, node.stat()))
    }

    fn stat_of(&self, p: &str) -> Stat {
        self.db.tree.get(p).map(|n| n.stat()).unwrap_or_default()
    }

    fn write(&mut self, session: i64, req: Request, zxid: &mut Option<i64>) -> Reply {
        let mut prep = Prep::new(&self.db.tree, self.auth_of(session), SKIP_ACL);
        let txn = match &req {
            Request::Create(op, c) => prep.create(*op, c, session),
            Request::Delete(d) => prep.delete(d),
            Request::SetData(s) => prep.set_data(s),
            Request::SetAcl(s) => prep.set_acl(s),
            _ => Err(ErrorCode::SystemError),
        }?;
        let before = match &txn {
            Txn::SetData { path, .. } | Txn::SetAcl { path, .. } => {
                Some(self.db.tree.get(path).expect("prep checked it exists").stat)
            }
            _ => None,
        };
        let created = match &txn {
            Txn::Create { path, .. } => Some(path.clone()),
            _ => None,
        };
        let applied = txn.clone();
        let (z, changes) = self.commit(txn);
        *zxid = Some(z);
        check_effects(std::slice::from_ref(&applied), &changes);
        // The validated change really happened.
        match &applied {
            Txn::Create { path, data, ephemeral_owner, .. } => {
                let n = self.db.tree.get(path).expect("created node exists");
                assert_eq!((n.stat.czxid, n.stat.mzxid, n.stat.version), (z, z, 0));
                assert_eq!(&*n.data, &data[..]);
                assert_eq!(n.stat.ephemeral_owner, *ephemeral_owner);
            }
            Txn::Delete { path } => assert!(self.db.tree.get(path).is_none()),
            Txn::SetData { path, data } => {
                let n = self.db.tree.get(path).expect("node exists");
                let old = before.expect("stat before");
                assert_eq!(n.stat.version, old.version.wrapping_add(1));
                assert_eq!((n.stat.mzxid, n.stat.czxid), (z, old.czxid));
                assert_eq!(&*n.data, &data[..]);
            }
            Txn::SetAcl { path, acl } => {
                let n = self.db.tree.get(path).expect("node exists");
                let old = before.expect("stat before");
                assert_eq!(n.stat.aversion, old.aversion.wrapping_add(1));
                assert_eq!((n.stat.version, n.stat.mzxid), (old.version, old.mzxid));
                assert_eq!(&*n.acl, &acl[..]);
            }
            other => panic!("prep produced {other:?} for a single write"),
        }
        Ok(match (req, created) {
            (Request::Create(OpCode::Create, _), Some(p)) => Response::Create(p),
            (Request::Create(_, _), Some(p)) => Response::Create2(p.clone(), self.stat_of(&p)),
            (Request::SetData(s), _) => Response::Stat(self.stat_of(&s.path)),
            (Request::SetAcl(s), _) => Response::Stat(self.stat_of(&s.path)),
            _ => Response::Empty,
        })
    }

    fn multi(&mut self, session: i64, ops: &[MultiOp], zxid: &mut Option<i64>) -> Response {
        let mut prep = Prep::new(&self.db.tree, self.auth_of(session), SKIP_ACL);
        let mut txns = Vec::new();
        let mut failed = None;
        for (i, op) in ops.iter().enumerate() {
            let r = match op {
                MultiOp::Create(code, c) => prep.create(*code, c, session).map(Some),
                MultiOp::Delete(d) => prep.delete(d).map(Some),
                MultiOp::SetData(s) => prep.set_data(s).map(Some),
                MultiOp::Check(c) => prep.check(c).map(|()| None),
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::BadArguments),
            };
            match r {
                Ok(t) => txns.push(t),
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        if let Some((at, err)) = failed {
            let results = (0..ops.len())
                .map(|i| match i.cmp(&at) {
                    std::cmp::Ordering::Less => MultiResult::Error(0),
                    std::cmp::Ordering::Equal => MultiResult::Error(err.code()),
                    std::cmp::Ordering::Greater => {
                        MultiResult::Error(ErrorCode::RuntimeInconsistency.code())
                    }
                })
                .collect();
            return Response::Multi(results);
        }
        let created: Vec<Option<String>> = txns
            .iter()
            .map(|t| match t {
                Some(Txn::Create { path, .. }) => Some(path.clone()),
                _ => None,
            })
            .collect();
        let writes: Vec<Txn> = txns.into_iter().flatten().collect();
        if !writes.is_empty() {
            let (z, changes) = self.commit(Txn::Multi(writes.clone()));
            *zxid = Some(z);
            check_effects(&writes, &changes);
        }
        let results = ops
            .iter()
            .zip(created)
            .map(|(op, created)| match op {
                MultiOp::Create(OpCode::Create, _) => MultiResult::Create(created.unwrap_or_default()),
                MultiOp::Create(..) => {
                    let p = created.unwrap_or_default();
                    let s = self.stat_of(&p);
                    MultiResult::Create2(p, s)
                }
                MultiOp::Delete(_) => MultiResult::Delete,
                MultiOp::SetData(s) => MultiResult::SetData(self.stat_of(&s.path)),
                MultiOp::Check(_) => MultiResult::Check,
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => {
                    MultiResult::Error(ErrorCode::BadArguments.code())
                }
            })
            .collect();
        Response::Multi(results)
    }

    fn multi_read(&self, session: i64, ops: &[MultiOp]) -> Response {
        let tree = &self.db.tree;
        let results = ops
            .iter()
            .map(|op| {
                let (p, data) = match op {
                    MultiOp::GetData(p) => (&p.path, true),
                    MultiOp::GetChildren(p) => (&p.path, false),
                    _ => return MultiResult::Error(ErrorCode::BadArguments.code()),
                };
                if let Err(e) = self.readable(session, p, perms::READ) {
                    return MultiResult::Error(e.code());
                }
                match tree.get(p) {
                    None => MultiResult::Error(ErrorCode::NoNode.code()),
                    Some(n) if data => MultiResult::GetData(n.data.to_vec(), n.stat()),
                    Some(n) => {
                        MultiResult::GetChildren(n.children.iter().map(|c| c.to_string()).collect())
                    }
                }
            })
            .collect();
        Response::Multi(results)
    }

    fn exists(&mut self, session: i64, r: &PathWatchRequest) -> Reply {
        if r.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        if self.db.tree.get(&r.path).is_some() {
            self.readable(session, &r.path, perms::READ)?;
        }
        if r.watch {
            self.watch(session, WatchKind::Data, &r.path);
        }
        let node = self.db.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
        Ok(Response::Stat(node.stat()))
    }

    fn get_data(&mut self, session: i64, r: &PathWatchRequest) -> Reply {
        self.readable(session, &r.path, perms::READ)?;
        let node = self.db.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
        let response = Response::GetData(node.data.to_vec(), node.stat());
        if r.watch {
            self.watch(session, WatchKind::Data, &r.path);
        }
        Ok(response)
    }

    fn children(&mut self, session: i64, r: &PathWatchRequest) -> Result<(Vec<String>, Stat), ErrorCode> {
        self.readable(session, &r.path, perms::READ)?;
        let node = self.db.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
        let children: Vec<String> = node.children.iter().map(|c| c.to_string()).collect();
        let stat = node.stat();
        assert_eq!(stat.num_children as usize, children.len());
        if r.watch {
            self.watch(session, WatchKind::Child, &r.path);
        }
        Ok((children, stat))
    }

    fn remove_watches(&mut self, session: i64, r: &RemoveWatchesRequest, dry_run: bool) -> Reply {
        valid(&r.path)?;
        let kind = coordinator::watch::WatcherType::from_i32(r.watcher_type).ok_or(ErrorCode::BadArguments)?;
        let kinds = covers(r.watcher_type).expect("WatcherType::from_i32 accepted it");
        let mine: Vec<_> = kinds
            .iter()
            .map(|k| (*k, r.path.clone(), session))
            .filter(|w| self.shadow.contains(w))
            .collect();
        let found = self.watches.remove(session, &r.path, kind, dry_run);
        assert_eq!(found, !mine.is_empty(), "remove_watches({r:?}, dry_run={dry_run})");
        if !dry_run {
            for w in &mine {
                self.shadow.remove(w);
            }
        }
        if found {
            Ok(Response::Empty)
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    fn set_watches(&mut self, session: i64, w: SetWatches2) {
        let rel = w.relative_zxid;
        for p in &w.data_watches {
            // A missing or changed node is notified at once instead.
            if self.db.tree.get(p).is_some_and(|n| n.stat.mzxid <= rel) {
                self.watch(session, WatchKind::Data, p);
            }
        }
        for p in &w.exist_watches {
            if self.db.tree.get(p).is_none() {
                self.watch(session, WatchKind::Data, p);
            }
        }
        for p in &w.child_watches {
            match self.db.tree.get(p) {
                Some(n) if n.stat.pzxid <= rel => self.watch(session, WatchKind::Child, p),
                _ => {}
            }
        }
        for p in &w.persistent_watches {
            self.watch(session, WatchKind::Persistent, p);
        }
        for p in &w.persistent_recursive_watches {
            self.watch(session, WatchKind::PersistentRecursive, p);
        }
    }

    fn auth(&mut self, session: i64, a: AuthPacket) -> Result<(), ErrorCode> {
        let credentials = String::from_utf8(a.auth).map_err(|_| ErrorCode::AuthFailed)?;
        let info = match a.scheme.as_str() {
            "digest" => ClientInfo {
                auth_scheme: "digest".into(),
                user: digest_id(&credentials).ok_or(ErrorCode::AuthFailed)?,
            },
            _ => return Err(ErrorCode::AuthFailed),
        };
        if let Some(live) = self.live.get_mut(&session) {
            if !live.contains(&info) {
                live.push(info);
            }
        }
        Ok(())
    }

    // ---- invariants ----------------------------------------------------

    fn check(&self) {
        let tree = &self.db.tree;
        let mut child_count: HashMap<&str, usize> = HashMap::new();
        let mut ephemerals = 0;
        for (p, n) in tree.nodes() {
            assert!(path::validate(p).is_ok(), "invalid path {p:?} in the tree");
            let s = &n.stat;
            assert!(s.czxid <= s.mzxid && s.mzxid <= self.db.last_zxid, "{p}: {s:?}");
            assert!(s.czxid <= s.pzxid && s.pzxid <= self.db.last_zxid, "{p}: {s:?}");
            assert_eq!(n.stat().num_children as usize, n.children.len());
            for c in n.children.iter() {
                assert!(tree.get(&path::join(p, c)).is_some(), "{p} lists missing child {c}");
            }
            if p != "/" {
                let (parent, name) = path::split(p);
                let pn = tree.get(parent).unwrap_or_else(|| panic!("{p} has no parent"));
                assert!(pn.children.iter().any(|c| c == name), "{parent} does not list {name}");
                *child_count.entry(parent).or_default() += 1;
            }
            match Owner::from_raw(s.ephemeral_owner) {
                Owner::Session(id) => {
                    ephemerals += 1;
                    assert!(self.db.sessions.contains_key(&id), "{p} owned by dead session {id:#x}");
                    assert!(n.children.is_empty(), "ephemeral {p} has children");
                    assert!(tree.ephemerals_of(id).any(|e| e == p), "{p} missing from ephemerals index");
                }
                Owner::Container => assert!(tree.containers().any(|c| c == p), "{p} not indexed"),
                Owner::Ttl(_) => assert!(tree.ttl_nodes().any(|c| c == p), "{p} not indexed"),
                Owner::Persistent => {}
            }
        }
        for (p, n) in tree.nodes() {
            assert_eq!(child_count.get(p).copied().unwrap_or(0), n.children.len(), "{p}");
        }
        assert_eq!(tree.ephemeral_count(), ephemerals);
        for c in tree.containers() {
            assert!(tree.get(c).is_some_and(|n| Owner::from_raw(n.stat.ephemeral_owner) == Owner::Container));
        }
        for t in tree.ttl_nodes() {
            assert!(tree.get(t).is_some_and(|n| matches!(Owner::from_raw(n.stat.ephemeral_owner), Owner::Ttl(_))));
        }
        for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            assert!(tree.get(p).is_some(), "system node {p} is gone");
        }
        let db_sessions: BTreeSet<i64> = self.db.sessions.keys().copied().collect();
        let live: BTreeSet<i64> = self.live.keys().copied().collect();
        assert_eq!(db_sessions, live);
        assert_eq!(self.watches.count(), self.shadow.len(), "watch count");
        assert_eq!(self.watches.by_session().map(|(_, n)| n).sum::<usize>(), self.shadow.len());
    }

    /// The snapshot and the log each rebuild the same state, and so does a
    /// snapshot taken midway plus the log entries after it (as
    /// `storage::Storage::open` recovers: entries at or below the snapshot's
    /// zxid are skipped).
    fn check_durable(&self, mid: Option<&[u8]>) {
        let back = ZkDb::from_snapshot(&self.db.snapshot()).expect("own snapshot loads");
        same_db(&self.db, &back, "snapshot");
        let log = txnlog::parse(&self.log);
        assert_eq!(log.problem, None);
        assert_eq!(log.valid_len as usize, self.log.len());
        let mut replayed = ZkDb::default();
        for e in &log.entries {
            replayed.apply(e, &mut Vec::new());
        }
        same_db(&self.db, &replayed, "log replay");
        if let Some(mid) = mid {
            let mut recovered = ZkDb::from_snapshot(mid).expect("midway snapshot loads");
            let since = recovered.last_zxid;
            for e in log.entries.iter().filter(|e| e.zxid > since) {
                recovered.apply(e, &mut Vec::new());
            }
            same_db(&self.db, &recovered, "midway snapshot + log");
        }
    }
}

/// Every validated create/delete/setData produced its change: nothing was
/// silently skipped by `DataTree::apply`.
fn check_effects(txns: &[Txn], changes: &[Change]) {
    let count = |f: fn(&Txn) -> bool| txns.iter().filter(|t| f(t)).count();
    let created = changes.iter().filter(|c| matches!(c, Change::Created(_))).count();
    let deleted = changes.iter().filter(|c| matches!(c, Change::Deleted(_))).count();
    let data = changes.iter().filter(|c| matches!(c, Change::DataChanged(_))).count();
    assert_eq!(created, count(|t| matches!(t, Txn::Create { .. })), "{txns:?} -> {changes:?}");
    assert_eq!(deleted, count(|t| matches!(t, Txn::Delete { .. })), "{txns:?} -> {changes:?}");
    assert_eq!(data, count(|t| matches!(t, Txn::SetData { .. })), "{txns:?} -> {changes:?}");
}

fn same_db(a: &ZkDb, b: &ZkDb, what: &str) {
    assert_eq!(a.last_zxid, b.last_zxid, "{what}: last_zxid");
    assert_eq!(a.sessions, b.sessions, "{what}: sessions");
    same_tree(&a.tree, &b.tree, what);
}

fn sorted_children(n: &Node) -> Vec<&str> {
    let mut v: Vec<&str> = n.children.iter().collect();
    v.sort_unstable();
    v
}

fn same_tree(a: &DataTree, b: &DataTree, what: &str) {
    let paths = |t: &DataTree| t.nodes().map(|(p, _)| p.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(paths(a), paths(b), "{what}: node set");
    for (p, n) in a.nodes() {
        let m = b.get(p).expect("same paths");
        assert_eq!(n.stat, m.stat, "{what}: {p} stat");
        assert_eq!(n.stat(), m.stat(), "{what}: {p} client stat");
        assert_eq!(n.data, m.data, "{what}: {p} data");
        assert_eq!(n.acl, m.acl, "{what}: {p} acl");
        assert_eq!(sorted_children(n), sorted_children(m), "{what}: {p} children");
    }
    let owners: BTreeSet<i64> = a
        .nodes()
        .filter_map(|(_, n)| match Owner::from_raw(n.stat.ephemeral_owner) {
            Owner::Session(id) => Some(id),
            _ => None,
        })
        .collect();
    let eph = |t: &DataTree| {
        owners.iter().map(|id| (*id, t.ephemerals_of(*id).cloned().collect::<Vec<_>>())).collect::<Vec<_>>()
    };
    assert_eq!(eph(a), eph(b), "{what}: ephemerals index");
    assert_eq!(a.ephemeral_count(), b.ephemeral_count(), "{what}: ephemeral count");
    assert_eq!(a.containers().collect::<Vec<_>>(), b.containers().collect::<Vec<_>>(), "{what}: containers");
    assert_eq!(a.ttl_nodes().collect::<Vec<_>>(), b.ttl_nodes().collect::<Vec<_>>(), "{what}: ttls");
}

/// Splits `data` into frames as `connection.rs`'s `read_frame` does; a bad
/// length ends the stream (the connection would be dropped).
fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        if len < 0 || len as usize > DEFAULT_MAX_BUFFER || data.len() < 4 + len as usize {
            return None;
        }
        let (frame, rest) = data[4..].split_at(len as usize);
        data = rest;
        Some(frame)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut sim = Sim::new();
    // The session attached to the current connection; None before the
    // handshake. When a connection ends, the next frame opens a new one.
    let mut attached: Option<i64> = None;
    let frames: Vec<&[u8]> = frames(data).collect();
    let mut mid = None;
    for (i, frame) in frames.iter().enumerate() {
        if i == frames.len() / 2 {
            mid = Some(sim.db.snapshot());
        }
        match attached {
            None => {
                let mut r = Reader::new(frame);
                if let Ok(req) = ConnectRequest::decode(&mut r) {
                    attached = sim.connect(&req);
                }
            }
            Some(session) => match Request::decode(frame) {
                Ok((header, req)) => {
                    if !sim.request(session, header.xid, req) {
                        attached = None;
                    }
                }
                Err(_) => attached = None,
            },
        }
        sim.check();
    }
    sim.check_durable(mid.as_deref());
});
