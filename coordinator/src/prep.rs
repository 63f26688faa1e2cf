//! Request validation (ZooKeeper's PrepRequestProcessor): turns a write request
//! into a transaction, or into the error ZooKeeper would answer, in the same
//! order of checks. Inside a `multi` each op sees the effect of the ones
//! before it through a small overlay, so nothing is applied until all pass.

use std::collections::HashMap;

use crate::acl::{check_acl, fixup_acl};
use crate::path;
use crate::proto::acl::perms;
use crate::proto::records::{CheckVersionRequest, ClientInfo, CreateTtlRequest, DeleteRequest};
use crate::proto::records::{SetAclRequest, SetDataRequest};
use crate::proto::{Acl, ErrorCode, OpCode};
use crate::tree::{DataTree, Owner, MAX_TTL};
use crate::txn::Txn;
use std::sync::Arc;

/// What validation needs to know of a node, possibly changed earlier in a multi.
#[derive(Debug, Clone)]
struct Summary {
    acl: Arc<[Acl]>,
    version: i32,
    aversion: i32,
    cversion: i32,
    num_children: i32,
    owner: i64,
}

/// `CreateMode` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl: bool,
}

impl CreateMode {
    pub fn from_flags(flags: i32) -> Option<Self> {
        let (ephemeral, sequential, container, ttl) = match flags {
            0 => (false, false, false, false),
            1 => (true, false, false, false),
            2 => (false, true, false, false),
            3 => (true, true, false, false),
            4 => (false, false, true, false),
            5 => (false, false, false, true),
            6 => (false, true, false, true),
            _ => return None,
        };
        Some(Self {
            ephemeral,
            sequential,
            container,
            ttl,
        })
    }
}

fn check_version(expected: i32, actual: i32) -> Result<(), ErrorCode> {
    if expected == -1 || expected == actual {
        Ok(())
    } else {
        Err(ErrorCode::BadVersion)
    }
}

/// The cheap check ZooKeeper makes before looking a parent up: absolute-ish, no NUL.
fn basic_path(p: &str) -> Result<(), ErrorCode> {
    if !p.contains('/') || p.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    Ok(())
}

fn validate_path(p: &str) -> Result<(), ErrorCode> {
    path::validate(p).map_err(|_| ErrorCode::BadArguments)
}

/// The nodes no client may delete or rewrite.
fn is_protected(p: &str) -> bool {
    matches!(
        p,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

#[derive(Debug)]
pub struct Prep<'a> {
    tree: &'a DataTree,
    /// The identities of the session asking.
    auth: &'a [ClientInfo],
    /// Skip permission checks (`skipACL=yes`).
    skip_acl: bool,
    overlay: HashMap<String, Option<Summary>>,
}

impl<'a> Prep<'a> {
    pub fn new(tree: &'a DataTree, auth: &'a [ClientInfo], skip_acl: bool) -> Self {
        Self {
            tree,
            auth,
            skip_acl,
            overlay: HashMap::new(),
        }
    }

    fn allowed(&self, node: &Summary, perm: i32) -> Result<(), ErrorCode> {
        if self.skip_acl {
            return Ok(());
        }
        check_acl(&node.acl, perm, self.auth)
    }

    fn lookup(&self, p: &str) -> Option<Summary> {
        if let Some(s) = self.overlay.get(p) {
            return s.clone();
        }
        self.tree.get(p).map(|n| Summary {
            acl: n.acl.clone(),
            version: n.stat.version,
            aversion: n.stat.aversion,
            cversion: n.stat.cversion,
            num_children: n.children.len() as i32,
            owner: n.stat.ephemeral_owner,
        })
    }

    fn existing(&self, p: &str) -> Result<Summary, ErrorCode> {
        self.lookup(p).ok_or(ErrorCode::NoNode)
    }

    /// Only creations advance the parent's (internal) cversion.
    fn bump_parent(&mut self, parent: &str, mut parent_summary: Summary, delta: i32) {
        if delta > 0 {
            parent_summary.cversion = parent_summary.cversion.wrapping_add(1);
        }
        parent_summary.num_children += delta;
        self.overlay
            .insert(parent.to_string(), Some(parent_summary));
    }

    pub fn create(
        &mut self,
        op: OpCode,
        req: &CreateTtlRequest,
        session: i64,
    ) -> Result<Txn, ErrorCode> {
        let mode = CreateMode::from_flags(req.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.ttl {
            if op != OpCode::CreateTtl || req.ttl <= 0 || req.ttl > MAX_TTL {
                return Err(ErrorCode::BadArguments);
            }
        } else if req.ttl >= 0 {
            return Err(ErrorCode::BadArguments);
        }
        if mode.container != (op == OpCode::CreateContainer) {
            return Err(ErrorCode::BadArguments);
        }
        basic_path(&req.path)?;
        let acl = fixup_acl(&req.acl, self.auth)?;
        // The parent is looked up before the full path is checked, so a
        // missing parent wins over a malformed name, as in ZooKeeper.
        let parent_path = match req.path.rfind('/') {
            Some(0) => "/",
            Some(i) => &req.path[..i],
            None => return Err(ErrorCode::BadArguments),
        };
        let parent = self.existing(parent_path)?;
        self.allowed(&parent, perms::CREATE)?;
        let path = if mode.sequential {
            format!("{}{:010}", req.path, parent.cversion)
        } else {
            req.path.clone()
        };
        validate_path(&path)?;
        if self.lookup(&path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(Owner::from_raw(parent.owner), Owner::Session(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let owner = if mode.ephemeral {
            Owner::Session(session)
        } else if mode.container {
            Owner::Container
        } else if mode.ttl {
            Owner::Ttl(req.ttl)
        } else {
            Owner::Persistent
        };
        self.bump_parent(parent_path, parent, 1);
        let summary = Summary {
            acl: Arc::from(acl.as_slice()),
            version: 0,
            aversion: 0,
            cversion: 0,
            num_children: 0,
            owner: owner.raw(),
        };
        self.overlay.insert(path.clone(), Some(summary));
        Ok(Txn::Create {
            path,
            data: req.data.clone(),
            acl,
            ephemeral_owner: owner.raw(),
        })
    }

    pub fn delete(&mut self, req: &DeleteRequest) -> Result<Txn, ErrorCode> {
        basic_path(&req.path)?;
        if req.path == "/" {
            return Err(ErrorCode::BadArguments);
        }
        if is_protected(&req.path) {
            return Err(ErrorCode::NoAuth);
        }
        let (parent_path, _) = path::split(&req.path);
        let parent = self.existing(parent_path)?;
        let node = self.existing(&req.path)?;
        self.allowed(&parent, perms::DELETE)?;
        check_version(req.version, node.version)?;
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.bump_parent(parent_path, parent, -1);
        self.overlay.insert(req.path.clone(), None);
        Ok(Txn::Delete {
            path: req.path.clone(),
        })
    }

    pub fn set_data(&mut self, req: &SetDataRequest) -> Result<Txn, ErrorCode> {
        validate_path(&req.path)?;
        let mut node = self.existing(&req.path)?;
        if req.path == "/zookeeper/config" {
            return Err(ErrorCode::NoAuth);
        }
        self.allowed(&node, perms::WRITE)?;
        check_version(req.version, node.version)?;
        node.version = node.version.wrapping_add(1);
        self.overlay.insert(req.path.clone(), Some(node));
        Ok(Txn::SetData {
            path: req.path.clone(),
            data: req.data.clone(),
        })
    }

    pub fn set_acl(&mut self, req: &SetAclRequest) -> Result<Txn, ErrorCode> {
        validate_path(&req.path)?;
        let acl = fixup_acl(&req.acl, self.auth)?;
        let mut node = self.existing(&req.path)?;
        self.allowed(&node, perms::ADMIN)?;
        check_version(req.version, node.aversion)?;
        node.aversion = node.aversion.wrapping_add(1);
        node.acl = Arc::from(acl.as_slice());
        self.overlay.insert(req.path.clone(), Some(node));
        Ok(Txn::SetAcl {
            path: req.path.clone(),
            acl,
        })
    }

    pub fn check(&mut self, req: &CheckVersionRequest) -> Result<(), ErrorCode> {
        validate_path(&req.path)?;
        let node = self.existing(&req.path)?;
        self.allowed(&node, perms::READ)?;
        check_version(req.version, node.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_req(path: &str, flags: i32) -> CreateTtlRequest {
        CreateTtlRequest {
            path: path.into(),
            data: vec![],
            acl: vec![Acl::open()],
            flags,
            ttl: -1,
        }
    }

    fn apply(tree: &mut DataTree, zxid: i64, txn: &Txn) {
        tree.apply(zxid, 0, txn, &mut Vec::new());
    }

    #[test]
    fn sequential_suffix_is_the_parent_cversion() {
        let mut tree = DataTree::new();
        let parent = Prep::new(&tree, &[], false)
            .create(OpCode::Create, &create_req("/q", 0), 1)
            .expect("create");
        apply(&mut tree, 1, &parent);
        // Only creations count: the deleted child still used up number 1.
        let plain = Prep::new(&tree, &[], false)
            .create(OpCode::Create, &create_req("/q/x", 0), 1)
            .expect("x");
        apply(&mut tree, 2, &plain);
        apply(
            &mut tree,
            3,
            &Txn::Delete {
                path: "/q/x".into(),
            },
        );
        let seq = Prep::new(&tree, &[], false)
            .create(OpCode::Create, &create_req("/q/n-", 2), 1)
            .expect("seq");
        assert!(matches!(&seq, Txn::Create { path, .. } if path == "/q/n-0000000001"));
        let slash = Prep::new(&tree, &[], false)
            .create(OpCode::Create, &create_req("/q/", 2), 1)
            .expect("seq");
        assert!(matches!(&slash, Txn::Create { path, .. } if path == "/q/0000000001"));
    }

    #[test]
    fn create_errors_in_zookeeper_order() {
        let mut tree = DataTree::new();
        let e = Prep::new(&tree, &[], false)
            .create(OpCode::Create, &create_req("/e", 1), 9)
            .expect("eph");
        apply(&mut tree, 1, &e);
        let mut p = Prep::new(&tree, &[], false);
        let err = |p: &mut Prep<'_>, path: &str, flags| {
            p.create(OpCode::Create, &create_req(path, flags), 9)
        };
        assert_eq!(err(&mut p, "/missing/x", 0), Err(ErrorCode::NoNode));
        assert_eq!(err(&mut p, "/e", 0), Err(ErrorCode::NodeExists));
        assert_eq!(
            err(&mut p, "/e/child", 0),
            Err(ErrorCode::NoChildrenForEphemerals)
        );
        assert_eq!(err(&mut p, "noslash", 0), Err(ErrorCode::BadArguments));
        assert_eq!(err(&mut p, "//b", 0), Err(ErrorCode::BadArguments));
        assert_eq!(err(&mut p, "/missing//b", 0), Err(ErrorCode::NoNode));
        assert_eq!(err(&mut p, "/e/", 0), Err(ErrorCode::BadArguments));
        assert_eq!(err(&mut p, "/x", 7), Err(ErrorCode::BadArguments));
        assert_eq!(
            err(&mut p, "/x", 5),
            Err(ErrorCode::BadArguments),
            "TTL mode needs createTTL"
        );
        let mut bad_acl = create_req("/x", 0);
        bad_acl.acl.clear();
        assert_eq!(
            p.create(OpCode::Create, &bad_acl, 9),
            Err(ErrorCode::InvalidAcl)
        );
    }

    #[test]
    fn ttl_and_container_modes() {
        let tree = DataTree::new();
        let mut p = Prep::new(&tree, &[], false);
        let mut ttl = create_req("/t", 5);
        ttl.ttl = 1000;
        let txn = p.create(OpCode::CreateTtl, &ttl, 1).expect("ttl");
        assert!(
            matches!(txn, Txn::Create { ephemeral_owner, .. } if Owner::from_raw(ephemeral_owner) == Owner::Ttl(1000))
        );
        ttl.ttl = 0;
        assert_eq!(
            p.create(OpCode::CreateTtl, &ttl, 1),
            Err(ErrorCode::BadArguments)
        );
        let c = p
            .create(OpCode::CreateContainer, &create_req("/c", 4), 1)
            .expect("container");
        assert!(
            matches!(c, Txn::Create { ephemeral_owner, .. } if Owner::from_raw(ephemeral_owner) == Owner::Container)
        );
    }

    #[test]
    fn multi_overlay_sees_earlier_ops() {
        let tree = DataTree::new();
        let mut p = Prep::new(&tree, &[], false);
        p.create(OpCode::Create, &create_req("/m", 0), 1)
            .expect("create");
        p.create(OpCode::Create, &create_req("/m/c", 0), 1)
            .expect("child of pending node");
        assert_eq!(
            p.delete(&DeleteRequest {
                path: "/m".into(),
                version: -1
            }),
            Err(ErrorCode::NotEmpty)
        );
        p.set_data(&SetDataRequest {
            path: "/m".into(),
            data: vec![],
            version: 0,
        })
        .expect("v0");
        assert_eq!(
            p.check(&CheckVersionRequest {
                path: "/m".into(),
                version: 1
            }),
            Ok(())
        );
        p.delete(&DeleteRequest {
            path: "/m/c".into(),
            version: 0,
        })
        .expect("delete child");
        p.delete(&DeleteRequest {
            path: "/m".into(),
            version: 1,
        })
        .expect("now empty");
        assert_eq!(
            p.check(&CheckVersionRequest {
                path: "/m".into(),
                version: -1
            }),
            Err(ErrorCode::NoNode)
        );
    }

    #[test]
    fn versions_are_checked() {
        let mut tree = DataTree::new();
        let txn = Prep::new(&tree, &[], false)
            .create(OpCode::Create, &create_req("/v", 0), 1)
            .expect("c");
        apply(&mut tree, 1, &txn);
        let mut p = Prep::new(&tree, &[], false);
        let set = |version| SetDataRequest {
            path: "/v".into(),
            data: vec![],
            version,
        };
        assert_eq!(p.set_data(&set(3)), Err(ErrorCode::BadVersion));
        assert!(p.set_data(&set(0)).is_ok());
        assert_eq!(
            p.delete(&DeleteRequest {
                path: "/v".into(),
                version: 0
            }),
            Err(ErrorCode::BadVersion)
        );
        assert_eq!(
            p.delete(&DeleteRequest {
                path: "/zookeeper".into(),
                version: -1
            }),
            Err(ErrorCode::NoAuth)
        );
        let acl = SetAclRequest {
            path: "/v".into(),
            acl: vec![Acl::open()],
            version: 1,
        };
        assert_eq!(p.set_acl(&acl), Err(ErrorCode::BadVersion));
    }

    #[test]
    fn permissions_are_checked_after_existence_and_before_versions() {
        let mut tree = DataTree::new();
        let mut ro = create_req("/ro", 0);
        ro.acl = vec![Acl {
            perms: perms::READ,
            scheme: "world".into(),
            id: "anyone".into(),
        }];
        let txn = Prep::new(&tree, &[], false)
            .create(OpCode::Create, &ro, 1)
            .expect("create");
        apply(&mut tree, 1, &txn);
        let mut p = Prep::new(&tree, &[], false);
        let set = SetDataRequest {
            path: "/ro".into(),
            data: vec![],
            version: 7,
        };
        assert_eq!(p.set_data(&set), Err(ErrorCode::NoAuth));
        assert_eq!(
            p.create(OpCode::Create, &create_req("/ro/kid", 0), 1),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            p.create(OpCode::Create, &create_req("/nope/kid", 0), 1),
            Err(ErrorCode::NoNode)
        );
        assert_eq!(
            p.check(&CheckVersionRequest {
                path: "/ro".into(),
                version: 0
            }),
            Ok(())
        );
        let mut skip = Prep::new(&tree, &[], true);
        assert_eq!(skip.set_data(&set), Err(ErrorCode::BadVersion));
    }
}
