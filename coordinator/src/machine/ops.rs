//! One arm per operation: writes go through validation (`prep`) and
//! `commit`; reads answer from the tree and may register watches.

use crate::acl::{check_acl, digest_id, redact};
use crate::path;
use crate::prep::Prep;
use crate::proto::acl::perms;
use crate::proto::records::{
    AuthPacket, ClientInfo, PathWatchRequest, RemoveWatchesRequest, SetWatches2,
};
use crate::proto::{ErrorCode, MultiOp, MultiResult, OpCode, Request, Response};
use crate::tree::Node;
use crate::txn::Txn;
use crate::watch::{event_type, Notification, WatchKind, WatcherType};

use super::Machine;

type Reply = Result<Response, ErrorCode>;

fn valid(p: &str) -> Result<(), ErrorCode> {
    path::validate(p).map_err(|_| ErrorCode::BadArguments)
}

impl Machine {
    /// Handles one request of `session` at wall-clock `time`: the zxid of the
    /// transaction it committed (if any) and the reply. Pings and
    /// closeSession belong to the connection layer and are not handled here.
    pub fn request(&mut self, session: i64, req: Request, time: i64) -> (Option<i64>, Reply) {
        self.time = time;
        let mut zxid = None;
        let result = match req {
            Request::Create(..) | Request::Delete(_) | Request::SetData(_) | Request::SetAcl(_) => {
                self.write(session, req, &mut zxid)
            }
            Request::Multi(ops) => Ok(self.multi(session, &ops, &mut zxid)),
            Request::Check(c) => Prep::new(&self.db.tree, self.auth_of(session), self.skip_acl)
                .check(&c)
                .map(|()| Response::Empty),
            Request::Exists(r) => self.exists(session, &r),
            Request::GetData(r) => self.get_data(session, &r),
            Request::GetChildren(r) => self
                .children(session, &r)
                .map(|(c, _)| Response::Children(c)),
            Request::GetChildren2(r) => self
                .children(session, &r)
                .map(|(c, s)| Response::Children2(c, s)),
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
            Request::GetAllChildrenNumber(r) => {
                self.readable(session, &r.path, perms::READ).map(|_| {
                    Response::AllChildrenNumber(self.db.tree.descendant_count(&r.path) as i32)
                })
            }
            Request::AddWatch(r) => valid(&r.path).and_then(|()| {
                let kind = match r.mode {
                    0 => WatchKind::Persistent,
                    1 => WatchKind::PersistentRecursive,
                    _ => return Err(ErrorCode::BadArguments),
                };
                self.watches.add(session, kind, &r.path);
                Ok(Response::ErrorBody(0))
            }),
            Request::CheckWatches(r) => self.remove_watches(session, &r, true),
            Request::RemoveWatches(r) => self.remove_watches(session, &r, false),
            Request::SetWatches(w) | Request::SetWatches2(w) => {
                self.set_watches(session, w);
                Ok(Response::Empty)
            }
            Request::Auth(a) => self.auth(session, a).map(|()| Response::Empty),
            Request::WhoAmI => {
                // Digest identities are shown by user name, as ZooKeeper does.
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
            Request::Unsupported(OpCode::Reconfig) => Err(ErrorCode::ReconfigDisabled),
            Request::Unsupported(op) => {
                tracing::info!(op = ?op, "operation not supported");
                Err(ErrorCode::Unimplemented)
            }
            Request::Unknown(op) => {
                tracing::warn!(op, "unknown opcode");
                Err(ErrorCode::Unimplemented)
            }
            Request::Ping | Request::CloseSession => Err(ErrorCode::SystemError),
        };
        (zxid, result)
    }

    fn auth_of(&self, session: i64) -> &[ClientInfo] {
        self.auth
            .get(&session)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The node exists and the session may `perm` it.
    fn readable(&self, session: i64, path: &str, perm: i32) -> Result<&Node, ErrorCode> {
        let node = self.db.tree.get(path).ok_or(ErrorCode::NoNode)?;
        if !self.skip_acl {
            check_acl(&node.acl, perm, self.auth_of(session))?;
        }
        Ok(node)
    }

    fn get_acl(&self, session: i64, path: &str) -> Reply {
        let node = self.readable(session, path, perms::READ | perms::ADMIN)?;
        let admin =
            self.skip_acl || check_acl(&node.acl, perms::ADMIN, self.auth_of(session)).is_ok();
        let acl = if admin {
            node.acl.to_vec()
        } else {
            redact(&node.acl)
        };
        Ok(Response::GetAcl(acl, node.stat()))
    }

    fn write(&mut self, session: i64, req: Request, zxid: &mut Option<i64>) -> Reply {
        let mut prep = Prep::new(&self.db.tree, self.auth_of(session), self.skip_acl);
        let txn = match &req {
            Request::Create(op, c) => prep.create(*op, c, session),
            Request::Delete(d) => prep.delete(d),
            Request::SetData(s) => prep.set_data(s),
            Request::SetAcl(s) => prep.set_acl(s),
            _ => Err(ErrorCode::SystemError),
        }?;
        let created = match &txn {
            Txn::Create { path, .. } => Some(path.clone()),
            _ => None,
        };
        let z = self.commit(txn);
        *zxid = Some(z);
        let stat_of =
            |core: &Self, p: &str| core.db.tree.get(p).map(|n| n.stat()).unwrap_or_default();
        Ok(match (req, created) {
            (Request::Create(OpCode::Create, _), Some(p)) => Response::Create(p),
            (Request::Create(_, _), Some(p)) => {
                let stat = stat_of(self, &p);
                Response::Create2(p, stat)
            }
            (Request::SetData(s), _) => Response::Stat(stat_of(self, &s.path)),
            (Request::SetAcl(s), _) => Response::Stat(stat_of(self, &s.path)),
            _ => Response::Empty,
        })
    }

    /// All ops validated first; on the first failure nothing is applied and
    /// the results say which op failed (earlier ones 0, later ones -2), as
    /// ZooKeeper reports them.
    fn multi(&mut self, session: i64, ops: &[MultiOp], zxid: &mut Option<i64>) -> Response {
        let mut prep = Prep::new(&self.db.tree, self.auth_of(session), self.skip_acl);
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
            *zxid = Some(self.commit(Txn::Multi(writes)));
        }
        let tree = &self.db.tree;
        let stat = |p: &str| tree.get(p).map(|n| n.stat()).unwrap_or_default();
        let results = ops
            .iter()
            .zip(created)
            .map(|(op, created)| match op {
                MultiOp::Create(OpCode::Create, _) => {
                    MultiResult::Create(created.unwrap_or_default())
                }
                MultiOp::Create(..) => {
                    let p = created.unwrap_or_default();
                    let s = stat(&p);
                    MultiResult::Create2(p, s)
                }
                MultiOp::Delete(_) => MultiResult::Delete,
                MultiOp::SetData(s) => MultiResult::SetData(stat(&s.path)),
                MultiOp::Check(_) => MultiResult::Check,
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => {
                    MultiResult::Error(ErrorCode::BadArguments.code())
                }
            })
            .collect();
        Response::Multi(results)
    }

    /// Each read is answered on its own; one failing does not fail the others.
    fn multi_read(&self, session: i64, ops: &[MultiOp]) -> Response {
        let results = ops
            .iter()
            .map(|op| {
                let (p, data) = match op {
                    MultiOp::GetData(p) => (&p.path, true),
                    MultiOp::GetChildren(p) => (&p.path, false),
                    _ => return MultiResult::Error(ErrorCode::BadArguments.code()),
                };
                match self.readable(session, p, perms::READ) {
                    Err(e) => MultiResult::Error(e.code()),
                    Ok(n) if data => MultiResult::GetData(n.data.to_vec(), n.stat()),
                    Ok(n) => {
                        MultiResult::GetChildren(n.children.iter().map(String::from).collect())
                    }
                }
            })
            .collect();
        Response::Multi(results)
    }

    /// Reads do not validate paths (a malformed one simply does not exist),
    /// except that exists rejects a NUL as ZooKeeper does.
    fn exists(&mut self, session: i64, r: &PathWatchRequest) -> Reply {
        if r.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        if self.db.tree.get(&r.path).is_some() {
            self.readable(session, &r.path, perms::READ)?;
        }
        if r.watch {
            // An exists watch on a missing node waits for its creation.
            self.watches.add(session, WatchKind::Data, &r.path);
        }
        let node = self.db.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
        Ok(Response::Stat(node.stat()))
    }

    fn get_data(&mut self, session: i64, r: &PathWatchRequest) -> Reply {
        let node = self.readable(session, &r.path, perms::READ)?;
        let response = Response::GetData(node.data.to_vec(), node.stat());
        if r.watch {
            self.watches.add(session, WatchKind::Data, &r.path);
        }
        Ok(response)
    }

    fn children(
        &mut self,
        session: i64,
        r: &PathWatchRequest,
    ) -> Result<(Vec<String>, crate::proto::Stat), ErrorCode> {
        let node = self.readable(session, &r.path, perms::READ)?;
        let children = node.children.iter().map(|c| c.to_string()).collect();
        let stat = node.stat();
        if r.watch {
            self.watches.add(session, WatchKind::Child, &r.path);
        }
        Ok((children, stat))
    }

    fn remove_watches(&mut self, session: i64, r: &RemoveWatchesRequest, dry_run: bool) -> Reply {
        valid(&r.path)?;
        let kind = WatcherType::from_i32(r.watcher_type).ok_or(ErrorCode::BadArguments)?;
        if self.watches.remove(session, &r.path, kind, dry_run) {
            Ok(Response::Empty)
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// Re-registers a reconnecting client's watches; a change it missed while
    /// away is delivered now instead (ZooKeeper's `DataTree.setWatches`).
    fn set_watches(&mut self, session: i64, w: SetWatches2) {
        let zxid = self.db.last_zxid;
        let rel = w.relative_zxid;
        let mut notes = Vec::new();
        let note = |event_type, path: &String| Notification {
            session,
            event_type,
            path: path.clone(),
        };
        for p in &w.data_watches {
            match self.db.tree.get(p) {
                None => notes.push(note(event_type::NODE_DELETED, p)),
                Some(n) if n.stat.mzxid > rel => notes.push(note(event_type::NODE_DATA_CHANGED, p)),
                Some(_) => self.watches.add(session, WatchKind::Data, p),
            }
        }
        for p in &w.exist_watches {
            match self.db.tree.get(p) {
                Some(_) => notes.push(note(event_type::NODE_CREATED, p)),
                None => self.watches.add(session, WatchKind::Data, p),
            }
        }
        for p in &w.child_watches {
            match self.db.tree.get(p) {
                None => notes.push(note(event_type::NODE_DELETED, p)),
                Some(n) if n.stat.pzxid > rel => {
                    notes.push(note(event_type::NODE_CHILDREN_CHANGED, p))
                }
                Some(_) => self.watches.add(session, WatchKind::Child, p),
            }
        }
        for p in &w.persistent_watches {
            self.watches.add(session, WatchKind::Persistent, p);
        }
        for p in &w.persistent_recursive_watches {
            self.watches.add(session, WatchKind::PersistentRecursive, p);
        }
        self.effects
            .notifications
            .extend(notes.into_iter().map(|n| (zxid, n)));
    }

    /// Adds the identity of an `addauth digest user:password` to the session.
    fn auth(&mut self, session: i64, a: AuthPacket) -> Result<(), ErrorCode> {
        let credentials = String::from_utf8(a.auth).map_err(|_| ErrorCode::AuthFailed)?;
        let info = match a.scheme.as_str() {
            "digest" => ClientInfo {
                auth_scheme: "digest".into(),
                user: digest_id(&credentials).ok_or(ErrorCode::AuthFailed)?,
            },
            other => {
                tracing::info!(scheme = other, "authentication scheme not supported");
                return Err(ErrorCode::AuthFailed);
            }
        };
        let ids = self.auth.entry(session).or_default();
        if !ids.contains(&info) {
            ids.push(info);
        }
        Ok(())
    }
}
