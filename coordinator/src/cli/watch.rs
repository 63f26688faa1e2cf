//! `coord watch`: one line per change under a path, with the node's data
//! (rendered by [`super::render`]) or children.
//!
//! A notification carries no data, so the watcher reads it after the fact.
//! One transaction can fire several events for one path (Kafka registers a
//! broker by a multi that creates the node and then sets its data: created
//! and changed, same zxid), and the read after the first already shows the
//! whole transaction. [`Coalescer`] prints such a transaction once; events
//! of different transactions are all printed, even when a read shows the same
//! data, so no change is lost.

use std::collections::HashMap;

use common::output::OutputFormat;
use serde_json::json;
use zookeeper_client as zk;

use super::render::Data;

/// Which kind of state an event reports: a node's data or its child list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    Data,
    Children,
}

/// What has been printed per path, to recognise repeats.
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    /// The zxid of the last event printed for a path and class.
    zxids: HashMap<(Class, String), i64>,
    /// The `mzxid` of the data last printed for a path: the only clue to a
    /// repeat from servers that send notifications without a zxid.
    versions: HashMap<String, i64>,
}

impl Coalescer {
    /// Whether an event of transaction `zxid` on `path` was already printed.
    /// Events without a zxid (older servers send -1) never are, by this test.
    pub(crate) fn same_transaction(&self, class: Class, path: &str, zxid: i64) -> bool {
        zxid > 0 && self.zxids.get(&(class, path.to_owned())) == Some(&zxid)
    }

    /// Whether a data event without a zxid read the node version already
    /// printed (a created event's read that already saw the data change).
    pub(crate) fn same_version(&self, path: &str, zxid: i64, mzxid: i64) -> bool {
        zxid <= 0 && self.versions.get(path) == Some(&mzxid)
    }

    /// Records a printed event (and, for data, the version it showed).
    pub(crate) fn printed(&mut self, class: Class, path: &str, zxid: i64, mzxid: Option<i64>) {
        self.zxids.insert((class, path.to_owned()), zxid);
        if let Some(m) = mzxid {
            self.versions.insert(path.to_owned(), m);
        }
    }

    /// A deleted node starts afresh if it is created again.
    pub(crate) fn deleted(&mut self, path: &str) {
        self.zxids.retain(|(_, p), _| p != path);
        self.versions.remove(path);
    }
}

/// Prints `event` unless it repeats a transaction already printed.
pub(crate) async fn print_event(
    client: &zk::Client,
    event: &zk::WatchedEvent,
    output: OutputFormat,
    seen: &mut Coalescer,
) {
    let path = event.path.as_str();
    let zxid = event.zxid;
    let kind = match event.event_type {
        zk::EventType::NodeCreated => "created",
        zk::EventType::NodeDataChanged => "changed",
        zk::EventType::NodeChildrenChanged => "children",
        zk::EventType::NodeDeleted => "deleted",
        zk::EventType::Session => return,
    };
    let mut fields = Vec::new();
    let mut text = None;
    match event.event_type {
        zk::EventType::NodeCreated | zk::EventType::NodeDataChanged => {
            if seen.same_transaction(Class::Data, path, zxid) {
                return;
            }
            // The node may be gone again by now: then the event is printed
            // without data, and its deletion follows.
            let mut mzxid = None;
            if let Ok((bytes, stat)) = client.get_data(path).await {
                if seen.same_version(path, zxid, stat.mzxid) {
                    return;
                }
                mzxid = Some(stat.mzxid);
                let data = Data::classify(&bytes);
                fields.extend(data.json_fields());
                text = Some(data.to_text());
            }
            seen.printed(Class::Data, path, zxid, mzxid);
        }
        zk::EventType::NodeChildrenChanged => {
            if seen.same_transaction(Class::Children, path, zxid) {
                return;
            }
            let mut children = client.list_children(path).await.unwrap_or_default();
            children.sort();
            text = Some(children.join(","));
            fields.push(("children", json!(children)));
            seen.printed(Class::Children, path, zxid, None);
        }
        _ => seen.deleted(path),
    }
    match output {
        OutputFormat::Json => {
            let mut value = json!({ "event": kind, "path": path, "zxid": format!("{zxid:#x}") });
            if let Some(obj) = value.as_object_mut() {
                obj.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
            }
            println!("{value}");
        }
        OutputFormat::Plain => println!("{kind}\t{path}\t{}", text.unwrap_or_default()),
        OutputFormat::Text => match text.filter(|t| !t.is_empty()) {
            Some(t) => println!("{kind} {path} {t}"),
            None => println!("{kind} {path}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_transaction_prints_once() {
        let mut seen = Coalescer::default();
        // A multi: created, then changed, with the zxid of the one transaction.
        assert!(!seen.same_transaction(Class::Data, "/b/1", 7));
        seen.printed(Class::Data, "/b/1", 7, Some(7));
        assert!(seen.same_transaction(Class::Data, "/b/1", 7));
        // A later change is printed, even when the earlier read already saw it.
        assert!(!seen.same_transaction(Class::Data, "/b/1", 8));
        assert!(!seen.same_version("/b/1", 8, 7));
        // Other paths and classes are their own.
        assert!(!seen.same_transaction(Class::Data, "/b/2", 7));
        assert!(!seen.same_transaction(Class::Children, "/b/1", 7));
    }

    #[test]
    fn without_zxids_the_read_version_decides() {
        let mut seen = Coalescer::default();
        seen.printed(Class::Data, "/a", -1, Some(5));
        assert!(!seen.same_transaction(Class::Data, "/a", -1));
        assert!(seen.same_version("/a", -1, 5));
        assert!(!seen.same_version("/a", -1, 6));
    }

    #[test]
    fn deletion_forgets_the_path() {
        let mut seen = Coalescer::default();
        seen.printed(Class::Data, "/a", 3, Some(3));
        seen.printed(Class::Children, "/a", 4, None);
        seen.deleted("/a");
        assert!(!seen.same_transaction(Class::Data, "/a", 3));
        assert!(!seen.same_transaction(Class::Children, "/a", 4));
        assert!(!seen.same_version("/a", -1, 3));
    }
}
