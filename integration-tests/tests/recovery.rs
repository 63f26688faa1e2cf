//! Durability and recovery: acknowledged writes survive kill -9, sessions survive a restart
//! (and expire if their client never returns), a torn log tail and a corrupt newest snapshot
//! are recovered from.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::zk::{Client, CreateMode, EventType};
use integration_tests::{
    is_apache, open, wait_until, wait_until_async, zk_connect, zk_connect_detached, zxid_files,
    Coordinator, Opts,
};

const SESSION: Duration = Duration::from_secs(10);

/// What a client was told: this path reached `version` with `data` at `mzxid`.
#[derive(Debug, Clone)]
struct Ack {
    version: i32,
    data: Vec<u8>,
    mzxid: i64,
}

/// Creates each (path, data) node and records what its acknowledgement promised.
async fn create_acked(
    c: &Client,
    nodes: impl Iterator<Item = (String, String)>,
) -> BTreeMap<String, Ack> {
    let mut acks = BTreeMap::new();
    for (path, data) in nodes {
        let data = data.into_bytes();
        let (stat, _) = c
            .create(&path, &data, &open(CreateMode::Persistent))
            .await
            .expect("create");
        acks.insert(
            path,
            Ack {
                version: 0,
                data,
                mzxid: stat.mzxid,
            },
        );
    }
    acks
}

async fn assert_all_present(c: &Client, acks: &BTreeMap<String, Ack>) {
    for (path, ack) in acks {
        let (data, stat) = c
            .get_data(path)
            .await
            .unwrap_or_else(|e| panic!("acked {path} lost: {e}"));
        assert!(
            stat.version >= ack.version,
            "{path}: version {} < acked {}",
            stat.version,
            ack.version
        );
        assert!(
            stat.mzxid >= ack.mzxid,
            "{path}: mzxid {:#x} < acked {:#x}",
            stat.mzxid,
            ack.mzxid
        );
        if stat.version == ack.version {
            assert_eq!(data, ack.data, "{path}: data differs from what was acked");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_writes_keeps_every_acknowledged_write() {
    let mut server = Coordinator::spawn().expect("spawn server");
    let setup = zk_connect(server.addr(), SESSION).await.expect("connect");
    setup
        .create("/r", b"", &open(CreateMode::Persistent))
        .await
        .expect("create /r");
    drop(setup);

    let acks: Arc<Mutex<BTreeMap<String, Ack>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let c = zk_connect(server.addr(), SESSION)
            .await
            .expect("writer connects");
        let (acks, stop) = (acks.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            for j in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let path = format!("/r/w{w}-{j}");
                let Ok((stat, _)) = c.create(&path, b"new", &open(CreateMode::Persistent)).await
                else {
                    break;
                };
                let ack = Ack {
                    version: 0,
                    data: b"new".to_vec(),
                    mzxid: stat.mzxid,
                };
                acks.lock().expect("acks lock").insert(path.clone(), ack);
                let data = format!("set-{j}").into_bytes();
                let Ok(stat) = c.set_data(&path, &data, Some(0)).await else {
                    break;
                };
                acks.lock().expect("acks lock").insert(
                    path,
                    Ack {
                        version: 1,
                        data,
                        mzxid: stat.mzxid,
                    },
                );
            }
        }));
    }
    let enough = wait_until_async(Duration::from_secs(60), || async {
        acks.lock().expect("acks lock").len() >= 300
    })
    .await;
    assert!(enough, "writers did not get 300 acks within 60s");
    server.kill9().expect("kill -9");
    stop.store(true, Ordering::Relaxed);
    for h in writers {
        // A writer may be stuck on a request to the dead server; its acks are already recorded.
        h.abort();
        let _ = h.await;
    }
    let acks = acks.lock().expect("acks lock").clone();
    let max_acked = acks.values().map(|a| a.mzxid).max().expect("some acks");

    server.restart().expect("restart after kill -9");
    let c = zk_connect(server.addr(), SESSION)
        .await
        .expect("connect after restart");
    assert_all_present(&c, &acks).await;
    let (stat, _) = c
        .create("/r/after", b"", &open(CreateMode::Persistent))
        .await
        .expect("write after restart");
    assert!(
        stat.czxid > max_acked,
        "zxid went backwards: new {:#x} <= acked {max_acked:#x}",
        stat.czxid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_restart_and_absent_ones_expire() {
    // Ticks of 500 ms allow sessions of 1..10 s.
    let mut server = Coordinator::spawn_with(Opts::default().tick_time(500)).expect("spawn server");
    let keeper = zk_connect(server.addr(), Duration::from_secs(8))
        .await
        .expect("keeper");
    let lost = zk_connect_detached(server.addr(), Duration::from_secs(3))
        .await
        .expect("lost");
    keeper
        .create("/data", b"0", &open(CreateMode::Persistent))
        .await
        .expect("create /data");
    keeper
        .create("/keep", b"", &open(CreateMode::Ephemeral))
        .await
        .expect("create /keep");
    lost.create("/lost", b"", &open(CreateMode::Ephemeral))
        .await
        .expect("create /lost");
    let (_, _, watch) = keeper
        .get_and_watch_data("/data")
        .await
        .expect("watch /data");
    let lost_info = lost.session().clone();
    // The lost client disappears without closing its session.
    drop(lost);

    server.kill9().expect("kill -9");
    server.restart().expect("restart");

    let observer = zk_connect(server.addr(), SESSION).await.expect("observer");
    let gone = wait_until_async(Duration::from_secs(30), || async {
        observer
            .check_stat("/lost")
            .await
            .expect("exists /lost")
            .is_none()
    })
    .await;
    assert!(
        gone,
        "ephemeral of a session that never came back still present 30s after restart"
    );

    // The keeper reconnects on its own within its 8 s timeout and keeps everything.
    let back = wait_until_async(Duration::from_secs(20), || async {
        keeper.get_data("/keep").await.is_ok()
    })
    .await;
    assert!(back, "keeper could not use its session after the restart");
    let stat = observer
        .check_stat("/keep")
        .await
        .expect("exists /keep")
        .expect("keeper's ephemeral lost");
    assert_eq!(stat.ephemeral_owner, keeper.session_id().0);
    keeper
        .create("/keep2", b"", &open(CreateMode::Ephemeral))
        .await
        .expect("keeper still writes ephemerals");

    // Its watch was re-registered after reconnecting (setWatches).
    observer
        .set_data("/data", b"1", None)
        .await
        .expect("set /data");
    let event = tokio::time::timeout(Duration::from_secs(10), watch.changed())
        .await
        .expect("watch survived");
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/data")
    );

    let resumed = Client::connector()
        .with_session(lost_info)
        .connect(&server.connect_string())
        .await;
    assert_eq!(
        resumed.err(),
        Some(integration_tests::zk::Error::SessionExpired)
    );
}

/// Appends bytes that look like the start of a record cut short by a crash.
fn tear_tail(log_dir: &std::path::Path) {
    let logs = zxid_files(log_dir, "log").expect("list logs");
    let (_, newest) = logs.last().expect("a transaction log exists");
    let mut f = OpenOptions::new()
        .append(true)
        .open(newest)
        .expect("open newest log");
    let mut garbage = vec![0x00, 0x00, 0x01, 0x00, 0x12, 0x34, 0x56, 0x78];
    garbage.extend(std::iter::repeat_n(0xa5, 37));
    f.write_all(&garbage).expect("append garbage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_log_tail_is_recovered() {
    let mut server = Coordinator::spawn().expect("spawn server");
    let c = zk_connect(server.addr(), SESSION).await.expect("connect");
    c.create("/t", b"", &open(CreateMode::Persistent))
        .await
        .expect("create /t");
    let mut acks = create_acked(&c, (0..60).map(|i| (format!("/t/n{i}"), format!("d{i}")))).await;
    for i in 0..10 {
        let path = format!("/t/n{i}");
        c.delete(&path, None).await.expect("delete");
        acks.remove(&path);
    }
    drop(c);
    server.kill9().expect("kill -9");
    tear_tail(&server.data_log_dir().join("version-2"));

    server.restart().expect("restart with a torn log tail");
    let c = zk_connect(server.addr(), SESSION)
        .await
        .expect("connect after restart");
    assert_all_present(&c, &acks).await;
    for i in 0..10 {
        assert!(
            c.check_stat(&format!("/t/n{i}"))
                .await
                .expect("exists")
                .is_none(),
            "deleted /t/n{i} is back"
        );
    }
    // Writes after the repair must be durable too.
    for i in 0..20 {
        let path = format!("/t/m{i}");
        let (stat, _) = c
            .create(&path, b"m", &open(CreateMode::Persistent))
            .await
            .expect("create after repair");
        acks.insert(
            path,
            Ack {
                version: 0,
                data: b"m".to_vec(),
                mzxid: stat.mzxid,
            },
        );
    }
    drop(c);
    server.kill9().expect("second kill -9");
    server.restart().expect("second restart");
    let c = zk_connect(server.addr(), SESSION)
        .await
        .expect("connect after second restart");
    assert_all_present(&c, &acks).await;
    assert_eq!(c.count_descendants_number("/t").await.expect("count"), 70);
}

/// Writes enough to get several snapshots, crashes, damages the newest snapshot with
/// `damage`, restarts, and checks that nothing acknowledged is missing.
async fn snapshot_fallback(damage: fn(&std::path::Path, u64)) {
    let mut server =
        Coordinator::spawn_with(Opts::default().snap_count(100)).expect("spawn server");
    let c = zk_connect(server.addr(), SESSION).await.expect("connect");
    c.create("/s", b"", &open(CreateMode::Persistent))
        .await
        .expect("create /s");
    let acks = create_acked(
        &c,
        (0..400).map(|i| {
            (
                format!("/s/n{i:03}"),
                format!("payload-{i}-{}", "x".repeat(i % 50)),
            )
        }),
    )
    .await;
    let snap_dir = server.data_dir().join("version-2");
    let two = wait_until(Duration::from_secs(30), || {
        zxid_files(&snap_dir, "snapshot")
            .map(|v| v.len() >= 2)
            .unwrap_or(false)
    });
    assert!(
        two,
        "fewer than two snapshots after 400 writes with --snap-count 100"
    );
    drop(c);
    server.kill9().expect("kill -9");

    let snaps = zxid_files(&snap_dir, "snapshot").expect("list snapshots");
    let (zxid, newest) = snaps.last().expect("newest snapshot");
    let len = fs::metadata(newest).expect("snapshot metadata").len();
    assert!(
        len > 64,
        "snapshot {} is only {len} bytes",
        newest.display()
    );
    damage(newest, len);
    eprintln!(
        "damaged {} (zxid {zxid:#x}, {len} bytes) of {} snapshots",
        newest.display(),
        snaps.len()
    );

    server
        .restart()
        .expect("restart with a damaged newest snapshot");
    let c = zk_connect(server.addr(), SESSION)
        .await
        .expect("connect after restart");
    assert_all_present(&c, &acks).await;
    assert_eq!(c.count_descendants_number("/s").await.expect("count"), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_newest_snapshot_falls_back_to_previous() {
    snapshot_fallback(|path, len| {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .expect("open snapshot");
        f.set_len(len / 2).expect("truncate snapshot");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_newest_snapshot_falls_back_to_previous() {
    if is_apache() {
        // ZooKeeper 3.8 aborts on this (IllegalArgumentException: Invalid ephemeralOwner)
        // instead of falling back; coord is expected to checksum its snapshots.
        eprintln!("skipped under ZK_IMPL=apache");
        return;
    }
    snapshot_fallback(|path, len| {
        let mut f = OpenOptions::new()
            .write(true)
            .open(path)
            .expect("open snapshot");
        f.seek(SeekFrom::Start(len / 2)).expect("seek");
        f.write_all(&[0xff; 48]).expect("corrupt snapshot");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_then_restart() {
    let mut server = Coordinator::spawn().expect("spawn server");
    let c = zk_connect(server.addr(), SESSION).await.expect("connect");
    let (stat, _) = c
        .create("/clean", b"kept", &open(CreateMode::Persistent))
        .await
        .expect("create");
    drop(c);
    let status = server.terminate().expect("SIGTERM");
    // Java exits 143 on SIGTERM; coord promises a clean exit.
    if !is_apache() {
        assert!(status.success(), "coord exited with {status} after SIGTERM");
    }
    server.restart().expect("restart");
    let c = zk_connect(server.addr(), SESSION)
        .await
        .expect("connect after restart");
    let (data, got) = c.get_data("/clean").await.expect("/clean survived");
    assert_eq!((data.as_slice(), got.czxid), (&b"kept"[..], stat.czxid));
}
