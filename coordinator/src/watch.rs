//! The watch table: which session watches which path, how (one-shot data or
//! child watch, persistent, persistent-recursive), and which notifications a
//! change produces. It never sends anything; the caller delivers the events.

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;

use crate::path;
use crate::tree::Change;

/// ZooKeeper's `Watcher.Event.EventType` codes.
pub mod event_type {
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
}

/// `KeeperState.SyncConnected`, the state every notification carries.
pub const SYNC_CONNECTED: i32 = 3;

/// How a watch was set. Exists watches are data watches, as in ZooKeeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    Data,
    Child,
    Persistent,
    PersistentRecursive,
}

const KINDS: [WatchKind; 4] = [
    WatchKind::Data,
    WatchKind::Child,
    WatchKind::Persistent,
    WatchKind::PersistentRecursive,
];

/// `WatcherType` of removeWatches/checkWatches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatcherType {
    Children = 1,
    Data = 2,
    Any = 3,
    Persistent = 4,
    PersistentRecursive = 5,
}

impl WatcherType {
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            1 => Self::Children,
            2 => Self::Data,
            3 => Self::Any,
            4 => Self::Persistent,
            5 => Self::PersistentRecursive,
            _ => return None,
        })
    }

    fn covers(self, kind: WatchKind) -> bool {
        match self {
            Self::Children => kind == WatchKind::Child,
            Self::Data => kind == WatchKind::Data,
            Self::Persistent => kind == WatchKind::Persistent,
            Self::PersistentRecursive => kind == WatchKind::PersistentRecursive,
            Self::Any => true,
        }
    }
}

/// One notification for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub session: i64,
    pub event_type: i32,
    pub path: String,
}

#[derive(Debug, Default)]
pub struct WatchTable {
    by_kind: [HashMap<String, HashSet<i64>, RandomState>; 4],
    by_session: HashMap<i64, HashSet<(WatchKind, String)>>,
}

impl WatchTable {
    fn table(&mut self, kind: WatchKind) -> &mut HashMap<String, HashSet<i64>, RandomState> {
        &mut self.by_kind[kind as usize]
    }

    pub fn add(&mut self, session: i64, kind: WatchKind, path: &str) {
        self.table(kind)
            .entry(path.to_string())
            .or_default()
            .insert(session);
        self.by_session
            .entry(session)
            .or_default()
            .insert((kind, path.to_string()));
    }

    fn remove_one(&mut self, session: i64, kind: WatchKind, path: &str) -> bool {
        let table = self.table(kind);
        let Some(set) = table.get_mut(path) else {
            return false;
        };
        let removed = set.remove(&session);
        if set.is_empty() {
            table.remove(path);
        }
        if let Some(mine) = self.by_session.get_mut(&session) {
            mine.remove(&(kind, path.to_string()));
            if mine.is_empty() {
                self.by_session.remove(&session);
            }
        }
        removed
    }

    /// Removes (or, with `dry_run`, only looks for) the session's watches of
    /// `watcher_type` on `path`; false when there were none (NoWatcher).
    pub fn remove(
        &mut self,
        session: i64,
        path: &str,
        watcher_type: WatcherType,
        dry_run: bool,
    ) -> bool {
        let kinds = KINDS.into_iter().filter(|k| watcher_type.covers(*k));
        let matching: Vec<WatchKind> = kinds
            .filter(|k| {
                self.by_kind[*k as usize]
                    .get(path)
                    .is_some_and(|s| s.contains(&session))
            })
            .collect();
        if !dry_run {
            for kind in &matching {
                self.remove_one(session, *kind, path);
            }
        }
        !matching.is_empty()
    }

    pub fn remove_session(&mut self, session: i64) {
        for (kind, path) in self.by_session.remove(&session).unwrap_or_default() {
            let table = self.table(kind);
            if let Some(set) = table.get_mut(&path) {
                set.remove(&session);
                if set.is_empty() {
                    table.remove(&path);
                }
            }
        }
    }

    /// One-shot watchers of `kind` on `path` fire once and are dropped.
    fn take(&mut self, kind: WatchKind, path: &str, out: &mut HashSet<i64>) {
        if let Some(set) = self.table(kind).remove(path) {
            for session in set {
                if let Some(mine) = self.by_session.get_mut(&session) {
                    mine.remove(&(kind, path.to_string()));
                    if mine.is_empty() {
                        self.by_session.remove(&session);
                    }
                }
                out.insert(session);
            }
        }
    }

    fn persistent(&self, path: &str, recursive_too: bool, out: &mut HashSet<i64>) {
        if let Some(set) = self.by_kind[WatchKind::Persistent as usize].get(path) {
            out.extend(set);
        }
        if recursive_too {
            let recursive = &self.by_kind[WatchKind::PersistentRecursive as usize];
            if !recursive.is_empty() {
                for p in path::self_and_ancestors(path) {
                    if let Some(set) = recursive.get(p) {
                        out.extend(set);
                    }
                }
            }
        }
    }

    /// The notifications a change produces, at most one per session, as
    /// ZooKeeper delivers one event per connection.
    pub fn trigger(&mut self, change: &Change, out: &mut Vec<Notification>) {
        use event_type::*;
        let mut sessions = HashSet::new();
        let (event_type, path) = match change {
            Change::Created(p) => {
                self.take(WatchKind::Data, p, &mut sessions);
                self.persistent(p, true, &mut sessions);
                (NODE_CREATED, p)
            }
            Change::DataChanged(p) => {
                self.take(WatchKind::Data, p, &mut sessions);
                self.persistent(p, true, &mut sessions);
                (NODE_DATA_CHANGED, p)
            }
            Change::Deleted(p) => {
                self.take(WatchKind::Data, p, &mut sessions);
                self.take(WatchKind::Child, p, &mut sessions);
                self.persistent(p, true, &mut sessions);
                (NODE_DELETED, p)
            }
            Change::ChildrenChanged(p) => {
                self.take(WatchKind::Child, p, &mut sessions);
                // Recursive watches do not see child-list changes, only the
                // creations and deletions themselves.
                self.persistent(p, false, &mut sessions);
                (NODE_CHILDREN_CHANGED, p)
            }
        };
        out.extend(sessions.into_iter().map(|session| Notification {
            session,
            event_type,
            path: path.clone(),
        }));
    }

    /// Total watches, for `mntr`'s `zk_watch_count`.
    pub fn count(&self) -> usize {
        self.by_kind
            .iter()
            .flat_map(|t| t.values())
            .map(HashSet::len)
            .sum()
    }

    /// Paths watched by each session, for `wchs`/`wchc`.
    pub fn by_session(&self) -> impl Iterator<Item = (i64, usize)> + '_ {
        self.by_session.iter().map(|(s, w)| (*s, w.len()))
    }

    pub fn path_count(&self) -> usize {
        self.by_kind
            .iter()
            .flat_map(|t| t.keys())
            .collect::<HashSet<_>>()
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::event_type::*;
    use super::*;

    fn fire(table: &mut WatchTable, change: Change) -> Vec<(i64, i32)> {
        let mut out = Vec::new();
        table.trigger(&change, &mut out);
        let mut v: Vec<_> = out.into_iter().map(|n| (n.session, n.event_type)).collect();
        v.sort();
        v
    }

    #[test]
    fn one_shot_data_watch_fires_once() {
        let mut t = WatchTable::default();
        t.add(1, WatchKind::Data, "/a");
        assert_eq!(
            fire(&mut t, Change::DataChanged("/a".into())),
            [(1, NODE_DATA_CHANGED)]
        );
        assert!(fire(&mut t, Change::DataChanged("/a".into())).is_empty());
        assert_eq!(t.count(), 0);
    }

    #[test]
    fn delete_fires_data_and_child_watchers_once_per_session() {
        let mut t = WatchTable::default();
        t.add(1, WatchKind::Data, "/a");
        t.add(1, WatchKind::Child, "/a");
        t.add(2, WatchKind::Child, "/a");
        assert_eq!(
            fire(&mut t, Change::Deleted("/a".into())),
            [(1, NODE_DELETED), (2, NODE_DELETED)]
        );
        assert_eq!(t.count(), 0);
    }

    #[test]
    fn persistent_watch_stays_and_sees_children() {
        let mut t = WatchTable::default();
        t.add(1, WatchKind::Persistent, "/a");
        for _ in 0..2 {
            assert_eq!(
                fire(&mut t, Change::DataChanged("/a".into())),
                [(1, NODE_DATA_CHANGED)]
            );
            assert_eq!(
                fire(&mut t, Change::ChildrenChanged("/a".into())),
                [(1, NODE_CHILDREN_CHANGED)]
            );
        }
        assert!(fire(&mut t, Change::Created("/a/b".into())).is_empty());
    }

    #[test]
    fn recursive_watch_sees_descendants_but_not_child_lists() {
        let mut t = WatchTable::default();
        t.add(1, WatchKind::PersistentRecursive, "/a");
        assert_eq!(
            fire(&mut t, Change::Created("/a/b/c".into())),
            [(1, NODE_CREATED)]
        );
        assert_eq!(
            fire(&mut t, Change::Deleted("/a".into())),
            [(1, NODE_DELETED)]
        );
        assert!(fire(&mut t, Change::ChildrenChanged("/a".into())).is_empty());
        assert!(fire(&mut t, Change::Created("/ab".into())).is_empty());
        let mut root = WatchTable::default();
        root.add(2, WatchKind::PersistentRecursive, "/");
        assert_eq!(
            fire(&mut root, Change::DataChanged("/x/y".into())),
            [(2, NODE_DATA_CHANGED)]
        );
    }

    #[test]
    fn remove_by_type_and_session_cleanup() {
        let mut t = WatchTable::default();
        t.add(1, WatchKind::Data, "/a");
        t.add(1, WatchKind::Child, "/a");
        assert!(t.remove(1, "/a", WatcherType::Children, true));
        assert!(t.remove(1, "/a", WatcherType::Children, false));
        assert!(!t.remove(1, "/a", WatcherType::Children, false));
        assert!(!t.remove(2, "/a", WatcherType::Any, false));
        t.add(1, WatchKind::Persistent, "/b");
        t.remove_session(1);
        assert_eq!(t.count(), 0);
        assert_eq!(t.by_session().count(), 0);
    }
}
