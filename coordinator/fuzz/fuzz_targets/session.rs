//! Fuzzes the request-level state machine (`machine::Machine`, the code the
//! server runs) without I/O: the input is length-prefixed frames, a
//! ConnectRequest first and then requests, handled as `server/core.rs` does
//! (connect/resume, ping and closeSession at the connection layer, the rest
//! through `Machine::request`). Checks tree, watch, reply-codec, log-replay and
//! snapshot invariants after every frame.
#![no_main]

use std::collections::{BTreeSet, HashMap, HashSet};

use bytes::{BufMut, BytesMut};
use coordinator::db::ZkDb;
use coordinator::machine::{Effects, Machine};
use coordinator::path;
use coordinator::proto::records::ReplyHeader;
use coordinator::proto::{
    write_reply, ConnectRequest, ErrorCode, Jute, OpCode, Reader, Request, Response,
    DEFAULT_MAX_BUFFER, PASSWORD_LEN,
};
use coordinator::storage::txnlog;
use coordinator::tree::{Change, DataTree, Node, NodeStat, Owner};
use coordinator::txn::Txn;
use coordinator::watch::{event_type, Notification, WatchKind};
use libfuzzer_sys::fuzz_target;

/// Default `minSessionTimeout` / `maxSessionTimeout` for tickTime 2000.
const MIN_TIMEOUT: i64 = 4000;
const MAX_TIMEOUT: i64 = 40000;
/// Session passwords are random in the server; fixed here so the fuzzer can
/// resume a session by id.
const PASSWORD: [u8; PASSWORD_LEN] = [0; PASSWORD_LEN];
/// txnlog's private magic.
const LOG_MAGIC: &[u8; 8] = b"EDDYLOG1";
/// `PING_XID`: pings are answered with it.
const PING_XID: i32 = -2;

type Reply = Result<Response, ErrorCode>;

/// Which watch kinds a `WatcherType` code covers (private in watch.rs).
fn covers(watcher_type: i32) -> &'static [WatchKind] {
    match watcher_type {
        1 => &[WatchKind::Child],
        2 => &[WatchKind::Data],
        3 => &[WatchKind::Data, WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive],
        4 => &[WatchKind::Persistent],
        5 => &[WatchKind::PersistentRecursive],
        _ => &[],
    }
}

struct Sim {
    m: Machine,
    /// Every committed entry applied to a second database.
    replica: ZkDb,
    /// An independent model of the watch table: (kind, path, session).
    shadow: HashSet<(WatchKind, String, i64)>,
    next_session: i64,
    /// Everything committed, framed as the log file would hold it.
    log: BytesMut,
    /// A deterministic clock for ctime/mtime.
    time: i64,
}

impl Sim {
    fn new() -> Self {
        let mut log = BytesMut::new();
        log.put_slice(LOG_MAGIC);
        Self {
            m: Machine::new(ZkDb::default(), false),
            replica: ZkDb::default(),
            shadow: HashSet::new(),
            // Server id 1 in the top byte, as `Core::new` lays session ids out.
            next_session: 1 << 56,
            log,
            time: 0,
        }
    }

    fn tick(&mut self) -> i64 {
        self.time += 1000;
        self.time
    }

    /// Takes the machine's effects (as `Core::drain`): frames the log,
    /// applies each entry to the replica and checks the notifications it
    /// fired against the shadow watch model. `extra` are notifications not
    /// caused by a transaction (setWatches), expected first-come in order.
    fn drain(&mut self, extra: Vec<Notification>) {
        let Effects { committed, notifications } = std::mem::take(&mut self.m.effects);
        let mut notes = notifications.into_iter().peekable();
        for entry in &committed {
            txnlog::frame(entry, &mut self.log);
            let mut changes = Vec::new();
            self.replica.apply(entry, &mut changes);
            let leaves: Vec<Txn> = match &entry.txn {
                Txn::Multi(t) => t.clone(),
                t => vec![t.clone()],
            };
            if !matches!(entry.txn, Txn::CloseSession { .. }) {
                check_effects(&leaves, &changes);
            }
            for change in &changes {
                let expected = self.expect(change);
                let mut got = BTreeSet::new();
                for _ in 0..expected.len() {
                    let (zxid, n) = notes.next().unwrap_or_else(|| panic!("missing notification for {change:?}"));
                    assert_eq!(zxid, entry.zxid);
                    assert!(got.insert(n.session), "two notifications for one session: {change:?}");
                    let (ev, p) = describe(change);
                    assert_eq!((n.event_type, &n.path), (ev, p), "{change:?}");
                }
                assert_eq!(got, expected, "notified sessions for {change:?}");
            }
        }
        let last = self.m.db.last_zxid;
        let rest: Vec<Notification> = notes
            .map(|(zxid, n)| {
                assert_eq!(zxid, last, "an unexpected notification {n:?}");
                n
            })
            .collect();
        assert_eq!(rest, extra, "notifications not caused by a transaction");
    }

    /// The sessions the shadow model says a change notifies; one-shot
    /// watches are consumed.
    fn expect(&mut self, change: &Change) -> BTreeSet<i64> {
        let (_, p) = describe(change);
        let (one_shot, recursive): (&[WatchKind], bool) = match change {
            Change::Created(_) | Change::DataChanged(_) => (&[WatchKind::Data], true),
            Change::Deleted(_) => (&[WatchKind::Data, WatchKind::Child], true),
            Change::ChildrenChanged(_) => (&[WatchKind::Child], false),
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
                WatchKind::PersistentRecursive => recursive && path::self_and_ancestors(p).any(|a| a == wp),
                _ => false,
            };
            if hit {
                expected.insert(*s);
            }
        }
        expected
    }

    fn connect(&mut self, req: &ConnectRequest) -> Option<i64> {
        if req.last_zxid_seen > self.m.db.last_zxid {
            return None;
        }
        if req.session_id == 0 {
            let id = loop {
                self.next_session = self.next_session.wrapping_add(1);
                let id = self.next_session;
                if id != 0 && !self.m.db.sessions.contains_key(&id) {
                    break id;
                }
            };
            let timeout = i64::from(req.timeout_ms).clamp(MIN_TIMEOUT, MAX_TIMEOUT);
            let time = self.tick();
            self.m.create_session(id, timeout as i32, PASSWORD, time);
            self.drain(Vec::new());
            self.m.attach(id, "127.0.0.1".into());
            return Some(id);
        }
        let id = req.session_id;
        match self.m.db.sessions.get(&id) {
            Some(rec) if rec.password[..] == req.password[..] => {
                self.m.attach(id, "127.0.0.1".into());
                Some(id)
            }
            _ => None,
        }
    }

    fn close_session(&mut self, id: i64) -> i64 {
        self.shadow.retain(|w| w.2 != id);
        let before: Vec<String> = self.m.db.tree.ephemerals_of(id).cloned().collect();
        let time = self.tick();
        let zxid = self.m.close_session(id, time);
        self.drain(Vec::new());
        for p in before {
            assert!(self.m.db.tree.get(&p).is_none(), "ephemeral {p} survived its session");
        }
        assert!(!self.m.db.sessions.contains_key(&id));
        zxid
    }

    fn reply(&self, op: i32, xid: i32, zxid: Option<i64>, result: &Reply) {
        let zxid = zxid.unwrap_or(self.m.db.last_zxid);
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
            }
            Err(e) => assert_eq!(h.err, e.code()),
        }
        assert_eq!(r.remaining(), 0);
    }

    /// One request, as `Core::request` handles it; false when the connection
    /// closes after it.
    fn request(&mut self, session: i64, xid: i32, req: Request) -> bool {
        let op = req.op_code();
        match req {
            Request::Ping => {
                self.reply(op, PING_XID, None, &Ok(Response::Empty));
                return true;
            }
            Request::CloseSession => {
                let zxid = self.close_session(session);
                self.reply(op, xid, Some(zxid), &Ok(Response::Empty));
                return false;
            }
            _ => {}
        }
        // What the shadow model needs to know before the machine acts.
        let target = match &req {
            Request::SetData(s) => Some(s.path.clone()),
            Request::SetAcl(s) => Some(s.path.clone()),
            _ => None,
        };
        let before: Option<NodeStat> = target.as_deref().and_then(|p| self.m.db.tree.get(p)).map(|n| n.stat);
        let set_watch_notes = match &req {
            Request::SetWatches(w) | Request::SetWatches2(w) => self.set_watches(session, w),
            _ => Vec::new(),
        };
        let removable: Vec<(WatchKind, String, i64)> = match &req {
            Request::CheckWatches(r) | Request::RemoveWatches(r) => covers(r.watcher_type)
                .iter()
                .map(|k| (*k, r.path.clone(), session))
                .filter(|w| self.shadow.contains(w))
                .collect(),
            _ => Vec::new(),
        };
        let is_auth = matches!(req, Request::Auth(_));
        let time = self.tick();
        let (zxid, result) = self.m.request(session, req.clone(), time);
        assert_eq!(zxid.is_some(), self.m.effects.committed.len() == 1, "{req:?}");
        if let Some(z) = zxid {
            assert_eq!(z, self.m.db.last_zxid);
        }
        self.drain(set_watch_notes);

        // Watches the request registered or removed, per the shadow model.
        match (&req, &result) {
            (Request::Exists(r), Ok(_) | Err(ErrorCode::NoNode)) if r.watch => {
                self.shadow.insert((WatchKind::Data, r.path.clone(), session));
            }
            (Request::GetData(r), Ok(_)) if r.watch => {
                self.shadow.insert((WatchKind::Data, r.path.clone(), session));
            }
            (Request::GetChildren(r) | Request::GetChildren2(r), Ok(_)) if r.watch => {
                self.shadow.insert((WatchKind::Child, r.path.clone(), session));
            }
            (Request::AddWatch(r), Ok(_)) => {
                let kind = if r.mode == 0 { WatchKind::Persistent } else { WatchKind::PersistentRecursive };
                self.shadow.insert((kind, r.path.clone(), session));
            }
            (Request::CheckWatches(r) | Request::RemoveWatches(r), _) => {
                if path::validate(&r.path).is_ok() && !covers(r.watcher_type).is_empty() {
                    assert_eq!(result.is_ok(), !removable.is_empty(), "{req:?} -> {result:?}");
                }
                if matches!(req, Request::RemoveWatches(_)) && result.is_ok() {
                    for w in &removable {
                        self.shadow.remove(w);
                    }
                }
            }
            _ => {}
        }

        // The validated change really happened.
        if let Some(z) = zxid {
            match (&req, &result) {
                (Request::Create(..), Ok(Response::Create(p) | Response::Create2(p, _))) => {
                    let n = self.m.db.tree.get(p).expect("created node exists");
                    assert_eq!((n.stat.czxid, n.stat.mzxid, n.stat.version), (z, z, 0));
                }
                (Request::Delete(d), Ok(_)) => assert!(self.m.db.tree.get(&d.path).is_none()),
                (Request::SetData(s), Ok(Response::Stat(stat))) => {
                    let n = self.m.db.tree.get(&s.path).expect("node exists");
                    let old = before.expect("stat before");
                    assert_eq!(n.stat.version, old.version.wrapping_add(1));
                    assert_eq!((n.stat.mzxid, n.stat.czxid), (z, old.czxid));
                    assert_eq!(&*n.data, &s.data[..]);
                    assert_eq!(*stat, n.stat());
                }
                (Request::SetAcl(s), Ok(Response::Stat(stat))) => {
                    let n = self.m.db.tree.get(&s.path).expect("node exists");
                    let old = before.expect("stat before");
                    assert_eq!(n.stat.aversion, old.aversion.wrapping_add(1));
                    assert_eq!((n.stat.version, n.stat.mzxid), (old.version, old.mzxid));
                    assert_eq!(*stat, n.stat());
                }
                (Request::Multi(_), Ok(Response::Multi(_))) => {}
                _ => panic!("{req:?} committed {z} and answered {result:?}"),
            }
        }

        self.reply(op, xid, zxid, &result);
        // ZooKeeper answers a failed auth and then drops the connection.
        !(is_auth && result.is_err())
    }

    /// The shadow side of setWatches: registers what should be registered
    /// and returns the notifications due at once, in the machine's order.
    fn set_watches(&mut self, session: i64, w: &coordinator::proto::records::SetWatches2) -> Vec<Notification> {
        let tree = &self.m.db.tree;
        let rel = w.relative_zxid;
        let mut notes = Vec::new();
        let mut add = Vec::new();
        let note = |event_type, p: &String| Notification { session, event_type, path: p.clone() };
        for p in &w.data_watches {
            match tree.get(p) {
                None => notes.push(note(event_type::NODE_DELETED, p)),
                Some(n) if n.stat.mzxid > rel => notes.push(note(event_type::NODE_DATA_CHANGED, p)),
                Some(_) => add.push((WatchKind::Data, p.clone(), session)),
            }
        }
        for p in &w.exist_watches {
            match tree.get(p) {
                Some(_) => notes.push(note(event_type::NODE_CREATED, p)),
                None => add.push((WatchKind::Data, p.clone(), session)),
            }
        }
        for p in &w.child_watches {
            match tree.get(p) {
                None => notes.push(note(event_type::NODE_DELETED, p)),
                Some(n) if n.stat.pzxid > rel => notes.push(note(event_type::NODE_CHILDREN_CHANGED, p)),
                Some(_) => add.push((WatchKind::Child, p.clone(), session)),
            }
        }
        for p in &w.persistent_watches {
            add.push((WatchKind::Persistent, p.clone(), session));
        }
        for p in &w.persistent_recursive_watches {
            add.push((WatchKind::PersistentRecursive, p.clone(), session));
        }
        self.shadow.extend(add);
        notes
    }

    // ---- invariants ----------------------------------------------------

    fn check(&self) {
        let tree = &self.m.db.tree;
        let mut child_count: HashMap<&str, usize> = HashMap::new();
        let mut ephemerals = 0;
        for (p, n) in tree.nodes() {
            assert!(path::validate(p).is_ok(), "invalid path {p:?} in the tree");
            let s = &n.stat;
            assert!(s.czxid <= s.mzxid && s.mzxid <= self.m.db.last_zxid, "{p}: {s:?}");
            assert!(s.czxid <= s.pzxid && s.pzxid <= self.m.db.last_zxid, "{p}: {s:?}");
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
                    assert!(self.m.db.sessions.contains_key(&id), "{p} owned by dead session {id:#x}");
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
        assert_eq!(self.m.watches.count(), self.shadow.len(), "watch count");
        assert_eq!(self.m.watches.by_session().map(|(_, n)| n).sum::<usize>(), self.shadow.len());
        // Every committed transaction, applied on its own, gives the same state.
        same_db(&self.m.db, &self.replica, "replica");
    }

    /// The snapshot and the log each rebuild the same state, and so does a
    /// snapshot taken midway plus the log entries after it (as
    /// `storage::Storage::open` recovers: entries at or below the snapshot's
    /// zxid are skipped).
    fn check_durable(&self, mid: Option<&[u8]>) {
        let back = ZkDb::from_snapshot(&self.m.db.snapshot()).expect("own snapshot loads");
        same_db(&self.m.db, &back, "snapshot");
        let log = txnlog::parse(&self.log);
        assert_eq!(log.problem, None);
        assert_eq!(log.valid_len as usize, self.log.len());
        let mut replayed = ZkDb::default();
        for e in &log.entries {
            replayed.apply(e, &mut Vec::new());
        }
        same_db(&self.m.db, &replayed, "log replay");
        if let Some(mid) = mid {
            let mut recovered = ZkDb::from_snapshot(mid).expect("midway snapshot loads");
            let since = recovered.last_zxid;
            for e in log.entries.iter().filter(|e| e.zxid > since) {
                recovered.apply(e, &mut Vec::new());
            }
            same_db(&self.m.db, &recovered, "midway snapshot + log");
        }
    }
}

fn describe(change: &Change) -> (i32, &String) {
    match change {
        Change::Created(p) => (event_type::NODE_CREATED, p),
        Change::DataChanged(p) => (event_type::NODE_DATA_CHANGED, p),
        Change::Deleted(p) => (event_type::NODE_DELETED, p),
        Change::ChildrenChanged(p) => (event_type::NODE_CHILDREN_CHANGED, p),
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
            mid = Some(sim.m.db.snapshot());
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
