//! Request validation (ZooKeeper's PrepRequestProcessor): turns a write request
//! into a transaction, or into the error ZooKeeper would answer, in the same
//! order of checks. Inside a `multi` each op sees the effect of the ones
//! before it through a small overlay, so nothing is applied until all pass.

use std::collections::HashMap;

use base64::Engine;

use crate::path;
use crate::proto::records::{CheckVersionRequest, ClientInfo, CreateTtlRequest, DeleteRequest};
use crate::proto::records::{SetAclRequest, SetDataRequest};
use crate::proto::{Acl, ErrorCode, OpCode};
use crate::tree::{DataTree, Owner, MAX_TTL};
use crate::txn::Txn;

/// What validation needs to know of a node, possibly changed earlier in a multi.
#[derive(Debug, Clone, Copy)]
struct Summary {
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
        Some(Self { ephemeral, sequential, container, ttl })
    }
}

/// The digest id ZooKeeper derives from `user:password`: `user:base64(sha1)`.
pub fn digest_id(user_password: &str) -> Option<String> {
    let (user, _) = user_password.split_once(':')?;
    let hash = sha1_smol::Sha1::from(user_password).digest().bytes();
    Some(format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash)))
}

/// Checks an ACL as ZooKeeper's `fixupACL` does; the `auth` scheme becomes
/// the session's digest identities.
pub fn fixup_acl(acl: &[Acl], auth: &[ClientInfo]) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(acl.len());
    for a in acl {
        if a.perms & !crate::proto::acl::perms::ALL != 0 {
            return Err(ErrorCode::InvalidAcl);
        }
        match a.scheme.as_str() {
            "world" if a.id == "anyone" => out.push(a.clone()),
            "auth" => {
                let mut any = false;
                for info in auth.iter().filter(|i| i.auth_scheme == "digest") {
                    any = true;
                    out.push(Acl { perms: a.perms, scheme: "digest".into(), id: info.user.clone() });
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if a.id.contains(':') => out.push(a.clone()),
            "ip" if valid_ip_id(&a.id) => out.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

fn valid_ip_id(id: &str) -> bool {
    let (addr, bits) = id.split_once('/').unwrap_or((id, "0"));
    addr.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 128)
}

fn check_version(expected: i32, actual: i32) -> Result<(), ErrorCode> {
    if expected == -1 || expected == actual {
        Ok(())
    } else {
        Err(ErrorCode::BadVersion)
    }
}

fn validate_path(p: &str) -> Result<(), ErrorCode> {
    path::validate(p).map_err(|_| ErrorCode::BadArguments)
}

/// The nodes no client may delete or rewrite.
fn is_protected(p: &str) -> bool {
    matches!(p, "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config")
}

#[derive(Debug)]
pub struct Prep<'a> {
    tree: &'a DataTree,
    overlay: HashMap<String, Option<Summary>>,
}

impl<'a> Prep<'a> {
    pub fn new(tree: &'a DataTree) -> Self {
        Self { tree, overlay: HashMap::new() }
    }

    fn lookup(&self, p: &str) -> Option<Summary> {
        if let Some(s) = self.overlay.get(p) {
            return *s;
        }
        self.tree.get(p).map(|n| Summary {
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

    fn bump_parent(&mut self, parent: &str, mut parent_summary: Summary, delta: i32) {
        parent_summary.cversion = parent_summary.cversion.wrapping_add(1);
        parent_summary.num_children += delta;
        self.overlay.insert(parent.to_string(), Some(parent_summary));
    }

    pub fn create(
        &mut self,
        op: OpCode,
        req: &CreateTtlRequest,
        session: i64,
        auth: &[ClientInfo],
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
        // A sequential path may end in '/': the suffix becomes the last name.
        let probe = if mode.sequential { format!("{}1", req.path) } else { req.path.clone() };
        validate_path(&probe)?;
        if req.path == "/" {
            return Err(ErrorCode::NodeExists);
        }
        let acl = fixup_acl(&req.acl, auth)?;
        let (parent_path, _) = path::split(&probe);
        let parent = self.existing(parent_path)?;
        let path = if mode.sequential {
            format!("{}{:010}", req.path, parent.cversion)
        } else {
            req.path.clone()
        };
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
        let summary = Summary { version: 0, aversion: 0, cversion: 0, num_children: 0, owner: owner.raw() };
        self.overlay.insert(path.clone(), Some(summary));
        Ok(Txn::Create { path, data: req.data.clone(), acl, ephemeral_owner: owner.raw() })
    }

    pub fn delete(&mut self, req: &DeleteRequest) -> Result<Txn, ErrorCode> {
        validate_path(&req.path)?;
        if req.path == "/" {
            return Err(ErrorCode::BadArguments);
        }
        if is_protected(&req.path) {
            return Err(ErrorCode::NoAuth);
        }
        let node = self.existing(&req.path)?;
        check_version(req.version, node.version)?;
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        let (parent_path, _) = path::split(&req.path);
        if let Some(parent) = self.lookup(parent_path) {
            self.bump_parent(parent_path, parent, -1);
        }
        self.overlay.insert(req.path.clone(), None);
        Ok(Txn::Delete { path: req.path.clone() })
    }

    pub fn set_data(&mut self, req: &SetDataRequest) -> Result<Txn, ErrorCode> {
        validate_path(&req.path)?;
        let mut node = self.existing(&req.path)?;
        if req.path == "/zookeeper/config" {
            return Err(ErrorCode::NoAuth);
        }
        check_version(req.version, node.version)?;
        node.version = node.version.wrapping_add(1);
        self.overlay.insert(req.path.clone(), Some(node));
        Ok(Txn::SetData { path: req.path.clone(), data: req.data.clone() })
    }

    pub fn set_acl(&mut self, req: &SetAclRequest, auth: &[ClientInfo]) -> Result<Txn, ErrorCode> {
        validate_path(&req.path)?;
        let acl = fixup_acl(&req.acl, auth)?;
        let mut node = self.existing(&req.path)?;
        check_version(req.version, node.aversion)?;
        node.aversion = node.aversion.wrapping_add(1);
        self.overlay.insert(req.path.clone(), Some(node));
        Ok(Txn::SetAcl { path: req.path.clone(), acl })
    }

    pub fn check(&mut self, req: &CheckVersionRequest) -> Result<(), ErrorCode> {
        validate_path(&req.path)?;
        let node = self.existing(&req.path)?;
        check_version(req.version, node.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_req(path: &str, flags: i32) -> CreateTtlRequest {
        CreateTtlRequest { path: path.into(), data: vec![], acl: vec![Acl::open()], flags, ttl: -1 }
    }

    fn apply(tree: &mut DataTree, zxid: i64, txn: &Txn) {
        tree.apply(zxid, 0, txn, &mut Vec::new());
    }

    #[test]
    fn sequential_suffix_is_the_parent_cversion() {
        let mut tree = DataTree::new();
        let parent = Prep::new(&tree).create(OpCode::Create, &create_req("/q", 0), 1, &[]).expect("create");
        apply(&mut tree, 1, &parent);
        // A plain child and its deletion both bump the parent's cversion.
        let plain = Prep::new(&tree).create(OpCode::Create, &create_req("/q/x", 0), 1, &[]).expect("x");
        apply(&mut tree, 2, &plain);
        apply(&mut tree, 3, &Txn::Delete { path: "/q/x".into() });
        let seq = Prep::new(&tree).create(OpCode::Create, &create_req("/q/n-", 2), 1, &[]).expect("seq");
        assert!(matches!(&seq, Txn::Create { path, .. } if path == "/q/n-0000000002"));
        let slash = Prep::new(&tree).create(OpCode::Create, &create_req("/q/", 2), 1, &[]).expect("seq");
        assert!(matches!(&slash, Txn::Create { path, .. } if path == "/q/0000000002"));
    }

    #[test]
    fn create_errors_in_zookeeper_order() {
        let mut tree = DataTree::new();
        let e = Prep::new(&tree).create(OpCode::Create, &create_req("/e", 1), 9, &[]).expect("eph");
        apply(&mut tree, 1, &e);
        let mut p = Prep::new(&tree);
        let err = |p: &mut Prep<'_>, path: &str, flags| p.create(OpCode::Create, &create_req(path, flags), 9, &[]);
        assert_eq!(err(&mut p, "/missing/x", 0), Err(ErrorCode::NoNode));
        assert_eq!(err(&mut p, "/e", 0), Err(ErrorCode::NodeExists));
        assert_eq!(err(&mut p, "/e/child", 0), Err(ErrorCode::NoChildrenForEphemerals));
        assert_eq!(err(&mut p, "noslash", 0), Err(ErrorCode::BadArguments));
        assert_eq!(err(&mut p, "/a//b", 0), Err(ErrorCode::BadArguments));
        assert_eq!(err(&mut p, "/x", 7), Err(ErrorCode::BadArguments));
        assert_eq!(err(&mut p, "/x", 5), Err(ErrorCode::BadArguments), "TTL mode needs createTTL");
        let mut bad_acl = create_req("/x", 0);
        bad_acl.acl.clear();
        assert_eq!(p.create(OpCode::Create, &bad_acl, 9, &[]), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn ttl_and_container_modes() {
        let tree = DataTree::new();
        let mut p = Prep::new(&tree);
        let mut ttl = create_req("/t", 5);
        ttl.ttl = 1000;
        let txn = p.create(OpCode::CreateTtl, &ttl, 1, &[]).expect("ttl");
        assert!(matches!(txn, Txn::Create { ephemeral_owner, .. } if Owner::from_raw(ephemeral_owner) == Owner::Ttl(1000)));
        ttl.ttl = 0;
        assert_eq!(p.create(OpCode::CreateTtl, &ttl, 1, &[]), Err(ErrorCode::BadArguments));
        let c = p.create(OpCode::CreateContainer, &create_req("/c", 4), 1, &[]).expect("container");
        assert!(matches!(c, Txn::Create { ephemeral_owner, .. } if Owner::from_raw(ephemeral_owner) == Owner::Container));
    }

    #[test]
    fn multi_overlay_sees_earlier_ops() {
        let tree = DataTree::new();
        let mut p = Prep::new(&tree);
        p.create(OpCode::Create, &create_req("/m", 0), 1, &[]).expect("create");
        p.create(OpCode::Create, &create_req("/m/c", 0), 1, &[]).expect("child of pending node");
        assert_eq!(p.delete(&DeleteRequest { path: "/m".into(), version: -1 }), Err(ErrorCode::NotEmpty));
        p.set_data(&SetDataRequest { path: "/m".into(), data: vec![], version: 0 }).expect("v0");
        assert_eq!(p.check(&CheckVersionRequest { path: "/m".into(), version: 1 }), Ok(()));
        p.delete(&DeleteRequest { path: "/m/c".into(), version: 0 }).expect("delete child");
        p.delete(&DeleteRequest { path: "/m".into(), version: 1 }).expect("now empty");
        assert_eq!(p.check(&CheckVersionRequest { path: "/m".into(), version: -1 }), Err(ErrorCode::NoNode));
    }

    #[test]
    fn versions_are_checked() {
        let mut tree = DataTree::new();
        let txn = Prep::new(&tree).create(OpCode::Create, &create_req("/v", 0), 1, &[]).expect("c");
        apply(&mut tree, 1, &txn);
        let mut p = Prep::new(&tree);
        let set = |version| SetDataRequest { path: "/v".into(), data: vec![], version };
        assert_eq!(p.set_data(&set(3)), Err(ErrorCode::BadVersion));
        assert!(p.set_data(&set(0)).is_ok());
        assert_eq!(p.delete(&DeleteRequest { path: "/v".into(), version: 0 }), Err(ErrorCode::BadVersion));
        assert_eq!(p.delete(&DeleteRequest { path: "/zookeeper".into(), version: -1 }), Err(ErrorCode::NoAuth));
        let acl = SetAclRequest { path: "/v".into(), acl: vec![Acl::open()], version: 1 };
        assert_eq!(p.set_acl(&acl, &[]), Err(ErrorCode::BadVersion));
    }

    #[test]
    fn auth_acl_becomes_the_session_digest() {
        let id = digest_id("user:secret").expect("has a colon");
        assert!(id.starts_with("user:"));
        let auth = [ClientInfo { auth_scheme: "digest".into(), user: id.clone() }];
        let acl = [Acl { perms: 31, scheme: "auth".into(), id: String::new() }];
        assert_eq!(fixup_acl(&acl, &[]), Err(ErrorCode::InvalidAcl));
        let fixed = fixup_acl(&acl, &auth).expect("with auth");
        assert_eq!(fixed, vec![Acl { perms: 31, scheme: "digest".into(), id }]);
        let ip = [Acl { perms: 1, scheme: "ip".into(), id: "10.0.0.0/8".into() }];
        assert!(fixup_acl(&ip, &[]).is_ok());
    }
}
