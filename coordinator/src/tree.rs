//! The data tree: nodes, their stats and children, and the indexes derived from
//! them (ephemerals by session, container and TTL nodes). Pure and
//! deterministic: it changes only through `apply` of an already validated
//! transaction, so replaying the log rebuilds exactly the same tree.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::path;
use crate::proto::{Acl, Stat};
use crate::txn::Txn;

/// `ephemeralOwner` of a container node (ZooKeeper's `EphemeralType.CONTAINER`).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte marking an extended ephemeral type; TTL nodes keep their TTL below it.
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
/// Largest TTL that fits below the extended-type bits (ZooKeeper's `TTL.MAX_TTL`).
pub const MAX_TTL: i64 = 0x00ff_ffff_ffff;

/// What an `ephemeralOwner` value says about its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Persistent,
    Session(i64),
    Container,
    Ttl(i64),
}

impl Owner {
    pub fn from_raw(raw: i64) -> Self {
        match raw {
            0 => Owner::Persistent,
            CONTAINER_OWNER => Owner::Container,
            r if r & EXTENDED_MASK == EXTENDED_MASK => Owner::Ttl(r & MAX_TTL),
            r => Owner::Session(r),
        }
    }

    pub fn raw(self) -> i64 {
        match self {
            Owner::Persistent => 0,
            Owner::Session(id) => id,
            Owner::Container => CONTAINER_OWNER,
            Owner::Ttl(ttl) => EXTENDED_MASK | ttl,
        }
    }
}

/// The persisted part of a node's stat; `dataLength` and `numChildren` are derived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
}

#[derive(Debug, Clone)]
pub struct Node {
    /// Owned copy: slices of a network buffer would pin the whole buffer.
    pub data: Box<[u8]>,
    pub acl: Arc<[Acl]>,
    pub stat: NodeStat,
    pub children: Children,
}

/// A node's child names. Most nodes are leaves, so the set is only allocated
/// (and only costs more than a pointer) once a first child arrives.
// The box is the point: `Option<Box<_>>` is one word in every leaf node,
// where a bare set would be six.
#[allow(clippy::box_collection)]
#[derive(Debug, Clone, Default)]
pub struct Children(Option<Box<HashSet<Box<str>, RandomState>>>);

impl Children {
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |set| set.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().flat_map(|set| set.iter().map(|name| &**name))
    }

    fn insert(&mut self, name: &str) {
        self.0
            .get_or_insert_with(Default::default)
            .insert(name.into());
    }

    fn remove(&mut self, name: &str) {
        if let Some(set) = &mut self.0 {
            set.remove(name);
            if set.is_empty() {
                self.0 = None;
            }
        }
    }
}

impl Node {
    /// The stat as clients see it. Internally `cversion` counts child
    /// creations only (it numbers sequential children); clients are shown
    /// creations plus deletions, and TTL and container markers stay hidden,
    /// exactly as ZooKeeper's `DataNode.copyStat` reports them.
    pub fn stat(&self) -> Stat {
        let s = &self.stat;
        let num_children = self.children.len() as i32;
        let ephemeral_owner = match Owner::from_raw(s.ephemeral_owner) {
            Owner::Session(id) => id,
            _ => 0,
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner,
            data_length: self.data.len() as i32,
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// A node changed by a transaction, for the watch table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(String),
    Deleted(String),
    DataChanged(String),
    ChildrenChanged(String),
}

#[derive(Debug)]
pub struct DataTree {
    /// Boxed nodes keep the table's slots small: at a million nodes the table
    /// has two million slots, and each slot costs its full size.
    nodes: HashMap<Box<str>, Box<Node>, RandomState>,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    open_acl: Arc<[Acl]>,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree with the nodes ZooKeeper always has: `/`, `/zookeeper`,
    /// `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> Self {
        let open_acl: Arc<[Acl]> = Arc::from(vec![Acl::open()]);
        let mut tree = Self {
            nodes: HashMap::default(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            open_acl,
        };
        tree.insert_raw(
            "/",
            Box::default(),
            tree.open_acl.clone(),
            NodeStat::default(),
        );
        for p in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            tree.insert_raw(
                p,
                Box::default(),
                tree.open_acl.clone(),
                NodeStat::default(),
            );
        }
        tree.link_children();
        tree
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|n| &**n)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn ephemerals_of(&self, session: i64) -> impl Iterator<Item = &String> {
        self.ephemerals.get(&session).into_iter().flatten()
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    pub fn containers(&self) -> impl Iterator<Item = &String> {
        self.containers.iter()
    }

    pub fn ttl_nodes(&self) -> impl Iterator<Item = &String> {
        self.ttls.iter()
    }

    pub fn nodes(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(p, n)| (&**p, &**n))
    }

    /// Number of descendants of `path` (ZooKeeper's getAllChildrenNumber).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(p.as_str()) {
                count += node.children.len();
                stack.extend(node.children.iter().map(|c| path::join(&p, c)));
            }
        }
        count
    }

    /// The shared `world:anyone` list for open ACLs (nearly every node), a new
    /// allocation otherwise.
    pub fn intern_acl(&self, acl: &[Acl]) -> Arc<[Acl]> {
        if *acl == *self.open_acl {
            self.open_acl.clone()
        } else {
            Arc::from(acl)
        }
    }

    /// Inserts a node and indexes it, without touching its parent: for the
    /// initial nodes and for loading a snapshot.
    pub fn insert_raw(&mut self, path: &str, data: Box<[u8]>, acl: Arc<[Acl]>, stat: NodeStat) {
        match Owner::from_raw(stat.ephemeral_owner) {
            Owner::Session(id) => {
                self.ephemerals
                    .entry(id)
                    .or_default()
                    .insert(path.to_string());
            }
            Owner::Container => {
                self.containers.insert(path.to_string());
            }
            Owner::Ttl(_) => {
                self.ttls.insert(path.to_string());
            }
            Owner::Persistent => {}
        }
        let node = Node {
            data,
            acl,
            stat,
            children: Children::default(),
        };
        self.nodes.insert(path.into(), Box::new(node));
    }

    /// Rebuilds every parent's child set from the node paths, after `insert_raw`.
    pub fn link_children(&mut self) {
        let paths: Vec<Box<str>> = self
            .nodes
            .keys()
            .filter(|p| &***p != "/")
            .cloned()
            .collect();
        for p in paths {
            let (parent, name) = path::split(&p);
            if let Some(parent) = self.nodes.get_mut(parent) {
                parent.children.insert(name);
            }
        }
    }

    /// Applies a validated transaction. Parts that do not fit the tree (a
    /// create of an existing node, a change to a missing one) are skipped
    /// rather than trusted; validation and recovery (which replays only what
    /// follows the snapshot) never produce them.
    pub fn apply(&mut self, zxid: i64, time: i64, txn: &Txn, changes: &mut Vec<Change>) {
        match txn {
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
            } => self.create(zxid, time, path, data, acl, *ephemeral_owner, changes),
            Txn::Delete { path } => self.delete(zxid, path, changes),
            Txn::SetData { path, data } => {
                if let Some(node) = self.nodes.get_mut(path.as_str()) {
                    node.data = data.clone().into_boxed_slice();
                    node.stat.mzxid = zxid;
                    node.stat.mtime = time;
                    node.stat.version = node.stat.version.wrapping_add(1);
                    changes.push(Change::DataChanged(path.clone()));
                }
            }
            Txn::SetAcl { path, acl } => {
                let acl = self.intern_acl(acl);
                if let Some(node) = self.nodes.get_mut(path.as_str()) {
                    node.acl = acl;
                    node.stat.aversion = node.stat.aversion.wrapping_add(1);
                }
            }
            Txn::CloseSession { session } => {
                let paths = self.ephemerals.remove(session).unwrap_or_default();
                // Deepest first, so a parent is never deleted before its child.
                for p in paths.iter().rev() {
                    self.delete(zxid, p, changes);
                }
            }
            Txn::Multi(txns) => {
                for t in txns {
                    self.apply(zxid, time, t, changes);
                }
            }
            Txn::CreateSession { .. } => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        zxid: i64,
        time: i64,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        ephemeral_owner: i64,
        changes: &mut Vec<Change>,
    ) {
        if self.nodes.contains_key(path) {
            return;
        }
        let (parent_path, name) = path::split(path);
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return;
        };
        parent.children.insert(name);
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.pzxid = zxid;
        let stat = NodeStat {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            ephemeral_owner,
            ..NodeStat::default()
        };
        let acl = self.intern_acl(acl);
        self.insert_raw(path, data.into(), acl, stat);
        changes.push(Change::Created(path.to_string()));
        changes.push(Change::ChildrenChanged(parent_path.to_string()));
    }

    fn delete(&mut self, zxid: i64, path: &str, changes: &mut Vec<Change>) {
        let Some(node) = self.nodes.remove(path) else {
            return;
        };
        match Owner::from_raw(node.stat.ephemeral_owner) {
            Owner::Session(id) => {
                if let Some(set) = self.ephemerals.get_mut(&id) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&id);
                    }
                }
            }
            Owner::Container => {
                self.containers.remove(path);
            }
            Owner::Ttl(_) => {
                self.ttls.remove(path);
            }
            Owner::Persistent => {}
        }
        let (parent_path, name) = path::split(path);
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.children.remove(name);
            parent.stat.pzxid = zxid;
        }
        changes.push(Change::Deleted(path.to_string()));
        changes.push(Change::ChildrenChanged(parent_path.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(tree: &mut DataTree, zxid: i64, path: &str, owner: i64) -> Vec<Change> {
        let mut changes = Vec::new();
        let txn = Txn::Create {
            path: path.into(),
            data: b"v".to_vec(),
            acl: vec![Acl::open()],
            ephemeral_owner: owner,
        };
        tree.apply(zxid, 1000 + zxid, &txn, &mut changes);
        changes
    }

    #[test]
    fn starts_with_zookeeper_system_nodes() {
        let tree = DataTree::new();
        assert_eq!(tree.len(), 4);
        assert_eq!(tree.get("/").map(|n| n.children.len()), Some(1));
        assert_eq!(tree.descendant_count("/"), 3);
    }

    #[test]
    fn create_sets_stat_and_bumps_parent() {
        let mut tree = DataTree::new();
        let changes = create(&mut tree, 5, "/a", 0);
        assert_eq!(
            changes,
            vec![
                Change::Created("/a".into()),
                Change::ChildrenChanged("/".into())
            ]
        );
        let stat = tree.get("/a").map(Node::stat).expect("created");
        assert_eq!(
            (stat.czxid, stat.mzxid, stat.pzxid, stat.ctime),
            (5, 5, 5, 1005)
        );
        assert_eq!(
            (stat.version, stat.data_length, stat.num_children),
            (0, 1, 0)
        );
        let root = tree.get("/").map(Node::stat).expect("root");
        assert_eq!((root.cversion, root.pzxid, root.num_children), (0, 5, 2));
    }

    #[test]
    fn set_data_bumps_version_and_mzxid_only() {
        let mut tree = DataTree::new();
        create(&mut tree, 1, "/a", 0);
        let mut changes = Vec::new();
        tree.apply(
            2,
            50,
            &Txn::SetData {
                path: "/a".into(),
                data: vec![1, 2],
            },
            &mut changes,
        );
        let stat = tree.get("/a").map(Node::stat).expect("node");
        assert_eq!(
            (stat.czxid, stat.mzxid, stat.mtime, stat.version),
            (1, 2, 50, 1)
        );
        assert_eq!(stat.data_length, 2);
        assert_eq!(changes, vec![Change::DataChanged("/a".into())]);
    }

    #[test]
    fn close_session_removes_only_its_ephemerals() {
        let mut tree = DataTree::new();
        create(&mut tree, 1, "/e1", 7);
        create(&mut tree, 2, "/e2", 8);
        create(&mut tree, 3, "/p", 0);
        let mut changes = Vec::new();
        tree.apply(4, 0, &Txn::CloseSession { session: 7 }, &mut changes);
        assert!(tree.get("/e1").is_none());
        assert!(tree.get("/e2").is_some());
        assert_eq!(tree.ephemerals_of(8).count(), 1);
        assert_eq!(tree.ephemerals_of(7).count(), 0);
        // Internal cversion counts creations (3); clients see 2 * 3 - children,
        // where /zookeeper is a child that was never "created" (ZooKeeper's root
        // starts at cversion -1 for the same reason).
        assert_eq!(tree.get("/").map(|n| n.stat.cversion), Some(3));
        assert_eq!(tree.get("/").map(|n| n.stat().cversion), Some(3));
        assert_eq!(
            DataTree::new().get("/").map(|n| n.stat().cversion),
            Some(-1)
        );
    }

    #[test]
    fn owner_encodings_round_trip() {
        for owner in [
            Owner::Persistent,
            Owner::Session(0x0100_0000_0000_0001),
            Owner::Container,
            Owner::Ttl(5000),
        ] {
            assert_eq!(Owner::from_raw(owner.raw()), owner);
        }
        assert_eq!(Owner::Ttl(1).raw() as u64, 0xff00_0000_0000_0001);
    }

    #[test]
    fn containers_and_ttls_are_indexed_and_unindexed() {
        let mut tree = DataTree::new();
        create(&mut tree, 1, "/c", CONTAINER_OWNER);
        create(&mut tree, 2, "/t", Owner::Ttl(100).raw());
        assert_eq!(tree.containers().count(), 1);
        assert_eq!(tree.ttl_nodes().count(), 1);
        let mut changes = Vec::new();
        tree.apply(3, 0, &Txn::Delete { path: "/c".into() }, &mut changes);
        tree.apply(4, 0, &Txn::Delete { path: "/t".into() }, &mut changes);
        assert_eq!(tree.containers().count() + tree.ttl_nodes().count(), 0);
    }

    #[test]
    fn replaying_a_create_twice_is_harmless() {
        let mut tree = DataTree::new();
        create(&mut tree, 1, "/a", 0);
        assert!(create(&mut tree, 1, "/a", 0).is_empty());
        assert_eq!(tree.get("/").map(|n| n.stat.cversion), Some(1));
    }
}
