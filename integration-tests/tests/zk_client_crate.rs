//! Core znode semantics through the `zookeeper-client` crate: CRUD, versions, sequential
//! naming, ephemeral lifetime (close and expiry), multi/multiRead, getEphemerals,
//! getAllChildrenNumber, TTL and container nodes, ACLs and auth.

use std::time::{Duration, Instant};

use integration_tests::zk::{
    Acl, Acls, AuthId, Client, CreateMode, Error, MultiReadResult, MultiWriteError,
    MultiWriteResult, Permission,
};
use integration_tests::{
    open, wait_until_async, zk_connect, zk_connect_detached, Coordinator, Opts,
};

const SESSION: Duration = Duration::from_secs(10);

async fn exists(c: &Client, path: &str) -> bool {
    c.check_stat(path).await.expect("exists").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_roundtrip() {
    let server = Coordinator::spawn().expect("spawn server");
    let c = zk_connect(server.addr(), SESSION).await.expect("connect");
    let persistent = open(CreateMode::Persistent);

    let (stat, _) = c
        .create("/a", b"hello", &persistent)
        .await
        .expect("create /a");
    assert_eq!(
        (
            stat.version,
            stat.cversion,
            stat.data_length,
            stat.num_children
        ),
        (0, 0, 5, 0)
    );
    assert_eq!(stat.czxid, stat.mzxid);
    assert_eq!(stat.ephemeral_owner, 0);
    let (data, got) = c.get_data("/a").await.expect("get /a");
    assert_eq!((data.as_slice(), got), (&b"hello"[..], stat));

    assert_eq!(
        c.create("/a", b"", &persistent)
            .await
            .expect_err("expected an error"),
        Error::NodeExists
    );
    assert_eq!(
        c.create("/missing/child", b"", &persistent)
            .await
            .expect_err("expected an error"),
        Error::NoNode
    );
    assert_eq!(
        c.get_data("/missing").await.expect_err("expected an error"),
        Error::NoNode
    );
    assert_eq!(
        c.set_data("/missing", b"", None)
            .await
            .expect_err("expected an error"),
        Error::NoNode
    );
    assert_eq!(
        c.delete("/missing", None)
            .await
            .expect_err("expected an error"),
        Error::NoNode
    );

    let (child_stat, _) = c
        .create("/a/b", b"", &persistent)
        .await
        .expect("create /a/b");
    assert!(child_stat.czxid > stat.czxid, "zxids must increase");
    let (children, parent) = c.get_children("/a").await.expect("children");
    assert_eq!(children, vec!["b".to_string()]);
    assert_eq!(
        (parent.cversion, parent.num_children, parent.pzxid),
        (1, 1, child_stat.czxid)
    );
    assert_eq!(
        c.delete("/a", None).await.expect_err("expected an error"),
        Error::NotEmpty
    );

    let set = c.set_data("/a", b"world!", None).await.expect("set /a");
    assert_eq!(
        (set.version, set.data_length, set.czxid),
        (1, 6, stat.czxid)
    );
    assert!(set.mzxid > child_stat.czxid);
    assert!(set.mtime >= stat.mtime);
    assert_eq!(c.get_data("/a").await.expect("get").0, b"world!");

    // Empty data and a large (but under 1 MiB) payload round-trip exactly.
    let big: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    c.set_data("/a/b", &big, None).await.expect("set big");
    assert_eq!(c.get_data("/a/b").await.expect("get big").0, big);
    c.set_data("/a/b", b"", None).await.expect("set empty");
    assert!(c.get_data("/a/b").await.expect("get empty").0.is_empty());

    c.delete("/a/b", None).await.expect("delete /a/b");
    c.delete("/a", None).await.expect("delete /a");
    assert!(!exists(&c, "/a").await);
    c.sync("/").await.expect("sync");
    let root = c.list_children("/").await.expect("ls /");
    assert_eq!(
        root,
        vec!["zookeeper".to_string()],
        "only /zookeeper remains"
    );
    let mut reserved = c.list_children("/zookeeper").await.expect("ls /zookeeper");
    reserved.sort();
    assert_eq!(
        reserved,
        ["config", "quota"],
        "ZooKeeper 3.5+ always has /zookeeper/{{config,quota}}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_checked() {
    let server = Coordinator::spawn().expect("spawn server");
    let c = zk_connect(server.addr(), SESSION).await.expect("connect");
    c.create("/v", b"0", &open(CreateMode::Persistent))
        .await
        .expect("create");
    assert_eq!(
        c.set_data("/v", b"x", Some(1))
            .await
            .expect_err("expected an error"),
        Error::BadVersion
    );
    assert_eq!(
        c.set_data("/v", b"1", Some(0))
            .await
            .expect("set v0")
            .version,
        1
    );
    assert_eq!(
        c.set_data("/v", b"2", Some(1))
            .await
            .expect("set v1")
            .version,
        2
    );
    assert_eq!(
        c.set_data("/v", b"x", Some(1))
            .await
            .expect_err("expected an error"),
        Error::BadVersion
    );
    assert_eq!(
        c.get_data("/v").await.expect("get").0,
        b"2",
        "a failed set must not write"
    );
    assert_eq!(
        c.delete("/v", Some(7))
            .await
            .expect_err("expected an error"),
        Error::BadVersion
    );
    let acl = [Acl::new(Permission::ALL, AuthId::anyone())];
    assert_eq!(
        c.set_acl("/v", &acl, Some(3))
            .await
            .expect_err("expected an error"),
        Error::BadVersion
    );
    let stat = c.set_acl("/v", &acl, Some(0)).await.expect("set acl v0");
    assert_eq!((stat.aversion, stat.version), (1, 2));
    c.delete("/v", Some(2)).await.expect("delete at version 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_names_count_child_creations() {
    let server = Coordinator::spawn().expect("spawn server");
    let c = zk_connect(server.addr(), SESSION).await.expect("connect");
    c.create("/seq", b"", &open(CreateMode::Persistent))
        .await
        .expect("create /seq");
    c.create("/seq/x", b"", &open(CreateMode::Persistent))
        .await
        .expect("create /seq/x");

    let (_, n) = c
        .create("/seq/n-", b"", &open(CreateMode::PersistentSequential))
        .await
        .expect("seq 1");
    assert_eq!((n.into_i64(), n.to_string()), (1, "0000000001".to_string()));
    // ZooKeeper numbers by child *creations* so far; deletes bump the reported cversion but
    // not the sequence counter (reported cversion = 2 * creations - numChildren).
    c.delete("/seq/x", None).await.expect("delete /seq/x");
    assert_eq!(c.get_children("/seq").await.expect("ls").1.cversion, 3);
    let (_, e) = c
        .create("/seq/e-", b"", &open(CreateMode::EphemeralSequential))
        .await
        .expect("eph seq");
    assert_eq!(
        e.into_i64(),
        2,
        "a delete must not advance the sequence counter"
    );

    // A failed multi must not consume a sequence number.
    let mut w = c.new_multi_writer();
    w.add_create("/seq/m-", b"", &open(CreateMode::PersistentSequential))
        .expect("add create");
    w.add_check_version("/seq", 1000).expect("add check");
    assert!(
        w.commit().await.is_err(),
        "multi with a failing check must fail"
    );

    let (_, n) = c
        .create("/seq/n-", b"", &open(CreateMode::PersistentSequential))
        .await
        .expect("seq 3");
    assert_eq!(n.into_i64(), 3);
    // Sequential under a trailing slash: the name is just the number.
    let (_, bare) = c
        .create("/seq/", b"", &open(CreateMode::PersistentSequential))
        .await
        .expect("bare seq");
    assert_eq!(bare.into_i64(), 4);

    let (mut children, stat) = c.get_children("/seq").await.expect("children");
    children.sort();
    assert_eq!(
        children,
        ["0000000004", "e-0000000002", "n-0000000001", "n-0000000003"]
    );
    assert_eq!((stat.cversion, stat.num_children), (6, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemerals_vanish_when_session_closes() {
    let server = Coordinator::spawn().expect("spawn server");
    let owner = zk_connect(server.addr(), Duration::from_secs(20))
        .await
        .expect("owner");
    let watcher = zk_connect(server.addr(), SESSION).await.expect("watcher");
    let (stat, _) = owner
        .create("/e", b"", &open(CreateMode::Ephemeral))
        .await
        .expect("create /e");
    assert_eq!(stat.ephemeral_owner, owner.session_id().0);
    let seen = watcher.get_data("/e").await.expect("watcher sees /e").1;
    assert_eq!(seen.ephemeral_owner, owner.session_id().0);
    assert_eq!(
        owner
            .create("/e/child", b"", &open(CreateMode::Persistent))
            .await
            .expect_err("expected an error"),
        Error::NoChildrenForEphemerals
    );

    // Dropping a non-detached client sends closeSession: removal must not wait for expiry.
    drop(owner);
    let gone = wait_until_async(Duration::from_secs(8), || async {
        !exists(&watcher, "/e").await
    })
    .await;
    assert!(
        gone,
        "ephemeral /e still present 8s after its session was closed (timeout 20s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemerals_vanish_after_session_expiry() {
    // Session timeouts are clamped to [2, 20] ticks: 400 ms .. 4 s here.
    let server = Coordinator::spawn_with(Opts::default().tick_time(200)).expect("spawn server");
    let observer = zk_connect(server.addr(), Duration::from_secs(4))
        .await
        .expect("observer");
    let doomed = zk_connect_detached(server.addr(), Duration::from_secs(2))
        .await
        .expect("doomed");
    assert!(
        doomed.session_timeout() <= Duration::from_secs(4),
        "negotiated {:?}",
        doomed.session_timeout()
    );
    doomed
        .create("/gone", b"", &open(CreateMode::Ephemeral))
        .await
        .expect("create /gone");
    let info = doomed.session().clone();
    let (_, watch) = observer
        .check_and_watch_stat("/gone")
        .await
        .expect("watch /gone");

    // A detached client goes away without closeSession, as if it crashed.
    drop(doomed);
    let dropped_at = Instant::now();
    let gone = wait_until_async(Duration::from_secs(20), || async {
        !exists(&observer, "/gone").await
    })
    .await;
    let after = dropped_at.elapsed();
    assert!(
        gone,
        "ephemeral of an abandoned 2s session still present after 20s"
    );
    assert!(
        after >= Duration::from_millis(1000),
        "ephemeral removed after only {after:?}: before the session could expire"
    );
    let event = tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .expect("NodeDeleted event");
    assert_eq!(
        (event.event_type.to_string(), event.path.as_str()),
        ("NodeDeleted".to_string(), "/gone")
    );

    // The expired session cannot be resumed.
    let resumed = Client::connector()
        .with_session(info)
        .connect(&server.connect_string())
        .await;
    assert_eq!(resumed.err(), Some(Error::SessionExpired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_is_atomic() {
    let server = Coordinator::spawn().expect("spawn server");
    let c = zk_connect(server.addr(), SESSION).await.expect("connect");
    c.create("/m", b"", &open(CreateMode::Persistent))
        .await
        .expect("create /m");
    c.create("/m/x", b"0", &open(CreateMode::Persistent))
        .await
        .expect("create /m/x");

    let mut w = c.new_multi_writer();
    w.add_create("/m/a", b"A", &open(CreateMode::Persistent))
        .expect("add create");
    w.add_set_data("/m/x", b"1", None).expect("add set");
    w.add_check_version("/m/x", 99).expect("add check");
    w.add_delete("/m/x", None).expect("add delete");
    let err = w.commit().await.expect_err("expected an error");
    assert_eq!(
        err,
        MultiWriteError::OperationFailed {
            index: 2,
            source: Error::BadVersion
        }
    );
    assert!(!exists(&c, "/m/a").await, "rolled-back create is visible");
    let (data, stat) = c.get_data("/m/x").await.expect("get /m/x");
    assert_eq!(
        (data.as_slice(), stat.version),
        (&b"0"[..], 0),
        "rolled-back set is visible"
    );

    let mut w = c.new_multi_writer();
    w.add_check_version("/m/nope", 0).expect("add check");
    w.add_create("/m/b", b"", &open(CreateMode::Persistent))
        .expect("add create");
    let err = w.commit().await.expect_err("expected an error");
    assert_eq!(
        err,
        MultiWriteError::OperationFailed {
            index: 0,
            source: Error::NoNode
        }
    );

    // Later ops see the effects of earlier ones within the same multi.
    let mut w = c.new_multi_writer();
    w.add_create("/m/a", b"A", &open(CreateMode::Persistent))
        .expect("add create");
    w.add_set_data("/m/x", b"1", Some(0)).expect("add set");
    w.add_check_version("/m/x", 1).expect("add check");
    w.add_create("/m/a/s-", b"", &open(CreateMode::PersistentSequential))
        .expect("add seq create");
    w.add_delete("/m/a/s-0000000000", None).expect("add delete");
    let results = w.commit().await.expect("multi commits");
    assert_eq!(results.len(), 5);
    assert!(
        matches!(&results[0], MultiWriteResult::Create { path, .. } if path == "/m/a"),
        "{results:?}"
    );
    assert!(
        matches!(&results[1], MultiWriteResult::SetData { stat } if stat.version == 1),
        "{results:?}"
    );
    assert!(matches!(results[2], MultiWriteResult::Check), "{results:?}");
    assert!(
        matches!(&results[3], MultiWriteResult::Create { path, .. } if path == "/m/a/s-0000000000")
    );
    assert!(
        matches!(results[4], MultiWriteResult::Delete),
        "{results:?}"
    );
    assert_eq!(c.get_data("/m/a").await.expect("get /m/a").0, b"A");
    assert_eq!(c.get_children("/m/a").await.expect("ls").1.cversion, 2);

    let mut r = c.new_multi_reader();
    r.add_get_data("/m/x").expect("add get");
    r.add_get_children("/m").expect("add children");
    r.add_get_data("/m/nope").expect("add get missing");
    let results = r.commit().await.expect("multiRead");
    assert_eq!(results.len(), 3, "one result per read: {results:?}");
    assert!(
        matches!(&results[0], MultiReadResult::Data { data, stat } if data == b"1" && stat.version == 1)
    );
    let MultiReadResult::Children { children } = &results[1] else {
        panic!("{results:?}")
    };
    let mut children = children.clone();
    children.sort();
    assert_eq!(children, ["a", "x"]);
    assert!(
        matches!(&results[2], MultiReadResult::Error { err: Error::NoNode }),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemerals_listing_and_descendant_count() {
    let server = Coordinator::spawn().expect("spawn server");
    let a = zk_connect(server.addr(), SESSION).await.expect("a");
    let b = zk_connect(server.addr(), SESSION).await.expect("b");
    for (path, mode) in [
        ("/g", CreateMode::Persistent),
        ("/g/e1", CreateMode::Ephemeral),
        ("/g/p", CreateMode::Persistent),
        ("/g/p/e2", CreateMode::Ephemeral),
        ("/h-e", CreateMode::Ephemeral),
    ] {
        a.create(path, b"", &open(mode)).await.expect(path);
    }
    b.create("/g/b", b"", &open(CreateMode::Ephemeral))
        .await
        .expect("b eph");

    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(a.list_ephemerals("/").await.expect("a /")),
        ["/g/e1", "/g/p/e2", "/h-e"]
    );
    assert_eq!(
        sorted(a.list_ephemerals("/g").await.expect("a /g")),
        ["/g/e1", "/g/p/e2"]
    );
    assert_eq!(
        a.list_ephemerals("/g/p/e2").await.expect("exact"),
        ["/g/p/e2"]
    );
    // ZooKeeper filters by string prefix, not by path component.
    assert_eq!(
        a.list_ephemerals("/h").await.expect("string prefix"),
        ["/h-e"]
    );
    assert!(a.list_ephemerals("/nope").await.expect("none").is_empty());
    assert_eq!(b.list_ephemerals("/").await.expect("b /"), ["/g/b"]);

    assert_eq!(a.count_descendants_number("/g").await.expect("count /g"), 4);
    assert_eq!(
        a.count_descendants_number("/g/p")
            .await
            .expect("count /g/p"),
        1
    );
    assert_eq!(
        a.count_descendants_number("/g/e1")
            .await
            .expect("count leaf"),
        0
    );
    assert_eq!(
        a.count_descendants_number("/nope")
            .await
            .expect_err("expected an error"),
        Error::NoNode
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_and_container_nodes() {
    // Reaping runs every 60 s by default; coord reads the interval from zoo.cfg
    // (ZooKeeper only from a system property, so it keeps the default there).
    let opts = Opts {
        config: Some("znode.container.checkIntervalMs=200\n".into()),
        ..Opts::default()
    }
    .tick_time(200);
    let server = Coordinator::spawn_with(opts).expect("spawn server");
    let c = zk_connect(server.addr(), Duration::from_secs(4))
        .await
        .expect("connect");

    let ttl = open(CreateMode::Persistent).with_ttl(Duration::from_millis(1000));
    let (stat, _) = c.create("/ttl", b"t", &ttl).await.expect("createTTL");
    // ZooKeeper stores the TTL in ephemeralOwner internally but reports 0 to clients.
    assert_eq!(
        stat.ephemeral_owner, 0,
        "TTL node must report ephemeralOwner 0"
    );
    assert_eq!(
        c.get_data("/ttl")
            .await
            .expect("get /ttl")
            .1
            .ephemeral_owner,
        0
    );
    let seq_ttl = open(CreateMode::PersistentSequential).with_ttl(Duration::from_millis(1000));
    let (_, n) = c
        .create("/ttl-seq-", b"", &seq_ttl)
        .await
        .expect("createTTL sequential");
    assert!(exists(&c, &format!("/ttl-seq-{n}")).await);

    let (stat, _) = c
        .create("/ctr", b"", &open(CreateMode::Container))
        .await
        .expect("createContainer");
    assert_eq!(
        stat.ephemeral_owner, 0,
        "container node must report ephemeralOwner 0"
    );
    c.create("/ctr/child", b"", &open(CreateMode::Persistent))
        .await
        .expect("container child");

    // Reapers may run as rarely as once a minute (ZooKeeper's default check interval).
    let reap = Duration::from_secs(75);
    let gone = wait_until_async(reap, || async { !exists(&c, "/ttl").await }).await;
    assert!(gone, "TTL node not removed within {reap:?} of its 1s TTL");
    assert!(
        exists(&c, "/ctr").await,
        "a container with a child must stay"
    );
    c.delete("/ctr/child", None)
        .await
        .expect("delete container child");
    let gone = wait_until_async(reap, || async { !exists(&c, "/ctr").await }).await;
    assert!(gone, "empty container not removed within {reap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_and_auth() {
    let server = Coordinator::spawn().expect("spawn server");
    let owner = zk_connect(server.addr(), SESSION).await.expect("owner");
    let other = zk_connect(server.addr(), SESSION).await.expect("other");

    let users = owner.list_auth_users().await.expect("whoami");
    assert!(
        users
            .iter()
            .any(|u| u.scheme() == "ip" && u.user() == "127.0.0.1"),
        "{users:?}"
    );
    owner
        .auth("digest", b"alice:secret")
        .await
        .expect("digest auth");
    let users = owner.list_auth_users().await.expect("whoami after auth");
    assert!(
        users
            .iter()
            .any(|u| u.scheme() == "digest" && u.user() == "alice"),
        "{users:?}"
    );

    owner
        .create(
            "/acl",
            b"s",
            &CreateMode::Persistent.with_acls(Acls::creator_all()),
        )
        .await
        .expect("create");
    let (acl, _) = owner.get_acl("/acl").await.expect("getACL");
    assert_eq!(acl.len(), 1, "{acl:?}");
    assert_eq!(
        (acl[0].scheme(), acl[0].permission()),
        ("digest", Permission::ALL)
    );
    assert!(
        acl[0].id().starts_with("alice:"),
        "digest id {:?}",
        acl[0].id()
    );
    assert_eq!(
        other.get_data("/acl").await.expect_err("expected an error"),
        Error::NoAuth
    );
    assert_eq!(owner.get_data("/acl").await.expect("owner reads").0, b"s");

    let read_only = [Acl::new(Permission::READ, AuthId::anyone())];
    let stat = owner
        .set_acl("/acl", &read_only, Some(0))
        .await
        .expect("setACL");
    assert_eq!(stat.aversion, 1);
    assert_eq!(other.get_data("/acl").await.expect("now readable").0, b"s");
    assert_eq!(
        other
            .set_data("/acl", b"x", None)
            .await
            .expect_err("expected an error"),
        Error::NoAuth
    );
    assert_eq!(other.get_acl("/acl").await.expect("getACL").0, read_only);
    // Creating with an `auth` ACL but no authenticated identity is invalid.
    let err = other
        .create(
            "/noauth",
            b"",
            &CreateMode::Persistent.with_acls(Acls::creator_all()),
        )
        .await;
    assert_eq!(err.expect_err("expected an error"), Error::InvalidAcl);
}
