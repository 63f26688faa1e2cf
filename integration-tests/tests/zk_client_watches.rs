//! Watch semantics through the `zookeeper-client` crate: one-shot data/exists/child watches,
//! persistent and persistent-recursive watches, and the rule that a client sees a watch event
//! before the data that triggered it.

use std::time::Duration;

use futures::FutureExt;
use integration_tests::zk::{
    AddWatchMode, Client, CreateMode, EventType, OneshotWatcher, PersistentWatcher,
};
use integration_tests::{open, zk_connect, Coordinator};

const SESSION: Duration = Duration::from_secs(10);
const EVENT: Duration = Duration::from_secs(10);

async fn oneshot(w: OneshotWatcher) -> (EventType, String) {
    let e = tokio::time::timeout(EVENT, w.changed())
        .await
        .expect("one-shot watch did not fire in time");
    (e.event_type, e.path)
}

async fn next(w: &mut PersistentWatcher) -> (EventType, String) {
    let e = tokio::time::timeout(EVENT, w.changed())
        .await
        .expect("persistent watch did not fire in time");
    (e.event_type, e.path)
}

fn ev(t: EventType, p: &str) -> (EventType, String) {
    (t, p.to_string())
}

async fn pair(server: &Coordinator) -> (Client, Client) {
    let a = zk_connect(server.addr(), SESSION).await.expect("client a");
    let b = zk_connect(server.addr(), SESSION).await.expect("client b");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneshot_data_exists_and_child_watches() {
    let server = Coordinator::spawn().expect("spawn server");
    let (a, b) = pair(&server).await;
    let persistent = open(CreateMode::Persistent);

    // exists-watch on a missing node fires on creation.
    let (stat, w) = a.check_and_watch_stat("/w").await.expect("exists watch");
    assert!(stat.is_none());
    b.create("/w", b"0", &persistent).await.expect("create /w");
    assert_eq!(oneshot(w).await, ev(EventType::NodeCreated, "/w"));

    // data watch fires on setData.
    let (_, _, w) = a.get_and_watch_data("/w").await.expect("data watch");
    b.set_data("/w", b"1", None).await.expect("set /w");
    assert_eq!(oneshot(w).await, ev(EventType::NodeDataChanged, "/w"));

    // exists-watch on an existing node fires on data change too.
    let (_, w) = a
        .check_and_watch_stat("/w")
        .await
        .expect("exists watch on existing");
    b.set_data("/w", b"2", None).await.expect("set /w");
    assert_eq!(oneshot(w).await, ev(EventType::NodeDataChanged, "/w"));

    // child watch fires on child creation, not on the child's data change.
    let (_, cw) = a.list_and_watch_children("/w").await.expect("child watch");
    b.create("/w/c", b"", &persistent)
        .await
        .expect("create /w/c");
    assert_eq!(oneshot(cw).await, ev(EventType::NodeChildrenChanged, "/w"));

    // deleting a node fires its data watch (NodeDeleted) and the parent's child watch.
    let (_, _, dw) = a
        .get_and_watch_data("/w/c")
        .await
        .expect("data watch child");
    let (_, cw) = a
        .list_and_watch_children("/w")
        .await
        .expect("child watch again");
    b.set_data("/w", b"3", None)
        .await
        .expect("set parent: not a child event");
    b.delete("/w/c", None).await.expect("delete /w/c");
    assert_eq!(oneshot(dw).await, ev(EventType::NodeDeleted, "/w/c"));
    assert_eq!(oneshot(cw).await, ev(EventType::NodeChildrenChanged, "/w"));

    // child watch on a node that is deleted fires NodeDeleted for that node.
    let (_, cw) = a
        .list_and_watch_children("/w")
        .await
        .expect("child watch before delete");
    b.delete("/w", None).await.expect("delete /w");
    assert_eq!(oneshot(cw).await, ev(EventType::NodeDeleted, "/w"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_event_arrives_before_new_data() {
    let server = Coordinator::spawn().expect("spawn server");
    let (a, b) = pair(&server).await;
    a.create("/o", b"old", &open(CreateMode::Persistent))
        .await
        .expect("create /o");
    for round in 0..20 {
        let (_, _, w) = a.get_and_watch_data("/o").await.expect("data watch");
        let value = format!("v{round}");
        b.set_data("/o", value.as_bytes(), None)
            .await
            .expect("set /o");
        // b's write is acknowledged, so a's next read returns it; the notification was queued
        // to a before that read's reply and must already be delivered.
        let (data, _) = a.get_data("/o").await.expect("read /o");
        assert_eq!(data, value.as_bytes());
        let event = w.changed().now_or_never();
        let event =
            event.unwrap_or_else(|| panic!("round {round}: new data seen before its watch event"));
        assert_eq!(
            (event.event_type, event.path.as_str()),
            (EventType::NodeDataChanged, "/o")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watch_fires_repeatedly_for_node_and_children() {
    let server = Coordinator::spawn().expect("spawn server");
    let (a, b) = pair(&server).await;
    let persistent = open(CreateMode::Persistent);
    let mut w = a
        .watch("/p", AddWatchMode::Persistent)
        .await
        .expect("addWatch persistent");

    b.create("/p", b"", &persistent).await.expect("create /p");
    assert_eq!(next(&mut w).await, ev(EventType::NodeCreated, "/p"));
    b.set_data("/p", b"1", None).await.expect("set 1");
    assert_eq!(next(&mut w).await, ev(EventType::NodeDataChanged, "/p"));
    b.set_data("/p", b"2", None).await.expect("set 2");
    assert_eq!(next(&mut w).await, ev(EventType::NodeDataChanged, "/p"));
    b.create("/p/c", b"", &persistent)
        .await
        .expect("create /p/c");
    assert_eq!(next(&mut w).await, ev(EventType::NodeChildrenChanged, "/p"));
    // Grandchildren and a child's data are outside a non-recursive watch: the next event
    // must be the later change to /p itself.
    b.create("/p/c/g", b"", &persistent)
        .await
        .expect("create grandchild");
    b.set_data("/p/c", b"x", None).await.expect("set child");
    b.set_data("/p", b"3", None).await.expect("set 3");
    assert_eq!(next(&mut w).await, ev(EventType::NodeDataChanged, "/p"));
    b.delete("/p/c/g", None).await.expect("delete grandchild");
    b.delete("/p/c", None).await.expect("delete child");
    assert_eq!(next(&mut w).await, ev(EventType::NodeChildrenChanged, "/p"));
    b.delete("/p", None).await.expect("delete /p");
    assert_eq!(next(&mut w).await, ev(EventType::NodeDeleted, "/p"));
    // Still armed after deletion: recreation is seen too.
    b.create("/p", b"", &persistent).await.expect("recreate /p");
    assert_eq!(next(&mut w).await, ev(EventType::NodeCreated, "/p"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_recursive_watch_covers_subtree_without_child_events() {
    let server = Coordinator::spawn().expect("spawn server");
    let (a, b) = pair(&server).await;
    let persistent = open(CreateMode::Persistent);
    let mut w = a
        .watch("/r", AddWatchMode::PersistentRecursive)
        .await
        .expect("addWatch recursive");

    b.create("/r", b"", &persistent).await.expect("create /r");
    assert_eq!(next(&mut w).await, ev(EventType::NodeCreated, "/r"));
    b.create("/r/a", b"", &persistent)
        .await
        .expect("create /r/a");
    assert_eq!(next(&mut w).await, ev(EventType::NodeCreated, "/r/a"));
    b.create("/r/a/b", b"", &persistent)
        .await
        .expect("create /r/a/b");
    assert_eq!(next(&mut w).await, ev(EventType::NodeCreated, "/r/a/b"));
    b.set_data("/r/a/b", b"x", None).await.expect("set /r/a/b");
    assert_eq!(next(&mut w).await, ev(EventType::NodeDataChanged, "/r/a/b"));
    b.delete("/r/a/b", None).await.expect("delete /r/a/b");
    assert_eq!(next(&mut w).await, ev(EventType::NodeDeleted, "/r/a/b"));
    // Siblings that merely share the prefix are outside the subtree.
    b.create("/rx", b"", &persistent).await.expect("create /rx");
    b.create("/other", b"", &persistent)
        .await
        .expect("create /other");
    b.set_data("/r", b"1", None).await.expect("set /r");
    assert_eq!(next(&mut w).await, ev(EventType::NodeDataChanged, "/r"));

    // Ephemeral children are reported like any other, including their removal on close.
    let c = zk_connect(server.addr(), SESSION).await.expect("client c");
    c.create("/r/e", b"", &open(CreateMode::Ephemeral))
        .await
        .expect("create /r/e");
    assert_eq!(next(&mut w).await, ev(EventType::NodeCreated, "/r/e"));
    drop(c);
    assert_eq!(next(&mut w).await, ev(EventType::NodeDeleted, "/r/e"));

    // One multi fires one event per affected node, in op order.
    let mut m = b.new_multi_writer();
    m.add_create("/r/m1", b"", &persistent).expect("add create");
    m.add_set_data("/r/a", b"y", None).expect("add set");
    m.add_delete("/r/m1", None).expect("add delete");
    m.commit().await.expect("multi");
    assert_eq!(next(&mut w).await, ev(EventType::NodeCreated, "/r/m1"));
    assert_eq!(next(&mut w).await, ev(EventType::NodeDataChanged, "/r/a"));
    assert_eq!(next(&mut w).await, ev(EventType::NodeDeleted, "/r/m1"));
}
