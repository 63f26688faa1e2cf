//! Several brokers sharing one coordinator: metadata propagates between
//! them, the coordinator holds Kafka's znode layout, membership follows
//! broker starts and stops, and a broker rides out a coordinator outage.
//! Also: retention deleting old segments, and startup readiness.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use integration_tests::kafka::{BrokerOpts, KafkaBroker};
use integration_tests::kafka_raw::{self, err, KafkaConn};
use integration_tests::{run_with_timeout, wait_until, zk, zk_connect, Coordinator};
use serde_json::Value;

fn kcat_list(addr: SocketAddr) -> String {
    let mut cmd = Command::new("/usr/bin/kcat");
    cmd.args(["-b", &addr.to_string(), "-L", "-m", "15"]);
    let (status, out) = run_with_timeout(cmd, "", Duration::from_secs(30)).expect("kcat -L runs");
    assert!(
        status.success(),
        "kcat -L -b {addr} failed ({status}):\n{out}"
    );
    out
}

/// The data of `path` (None if it does not exist), over a fresh session.
fn zk_get(coord: SocketAddr, path: &str) -> Option<Vec<u8>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = zk_connect(coord, Duration::from_secs(10))
            .await
            .expect("zk connect");
        match c.get_data(path).await {
            Ok((data, _)) => Some(data),
            Err(zk::Error::NoNode) => None,
            Err(e) => panic!("get {path}: {e}"),
        }
    })
}

fn zk_json(coord: SocketAddr, path: &str) -> Value {
    let data = zk_get(coord, path).unwrap_or_else(|| panic!("znode {path} missing"));
    serde_json::from_slice(&data).unwrap_or_else(|e| {
        panic!(
            "{path} is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&data)
        )
    })
}

fn spawn_member(coord: &Coordinator, id: i32) -> KafkaBroker {
    KafkaBroker::spawn(
        BrokerOpts::default()
            .zookeeper(coord.connect_string())
            .id(id),
    )
    .unwrap_or_else(|e| panic!("spawn broker {id}: {e:#}"))
}

fn wait_brokers(addr: SocketAddr, want: &[i32]) {
    let ok = wait_until(
        Duration::from_secs(30),
        || matches!(kafka_raw::brokers(addr), Ok((ids, _)) if ids == want),
    );
    assert!(
        ok,
        "broker at {addr} never listed exactly {want:?}: {:?}",
        kafka_raw::brokers(addr)
    );
}

#[test]
fn two_brokers_share_metadata_and_znodes() {
    let coord = Coordinator::spawn().expect("spawn coordinator");
    let zk_addr = coord.addr();
    let b1 = spawn_member(&coord, 1);
    let mut b2 = spawn_member(&coord, 2);
    wait_brokers(b1.addr(), &[1, 2]);
    wait_brokers(b2.addr(), &[1, 2]);

    // Created on broker 1...
    let mut c1 = KafkaConn::connect(b1.addr()).expect("connect b1");
    let (code, msg) = kafka_raw::create_topic(&mut c1, "shared", 2, 1, &[]).expect("create");
    assert_eq!(code, err::NONE, "CreateTopics on broker 1: {msg:?}");
    // ... visible on broker 2 with both partitions led, nothing restarted.
    let mut last = String::new();
    let seen = wait_until(Duration::from_secs(30), || {
        last = kcat_list(b2.addr());
        last.contains("topic \"shared\" with 2 partitions:")
            && (0..2).all(|p| {
                last.lines().any(|l| {
                    l.contains(&format!("partition {p}, leader ")) && !l.contains("leader -1")
                })
            })
    });
    assert!(
        seen,
        "broker 2 never showed topic shared with leaders:\n{last}"
    );
    assert!(last.contains(" 2 brokers:"), "{last}");
    assert!(
        last.contains(&format!("broker 1 at {}", b1.addr())),
        "{last}"
    );
    assert!(
        last.contains(&format!("broker 2 at {}", b2.addr())),
        "{last}"
    );
    let l1 = kcat_list(b1.addr());
    assert!(l1.contains(" 2 brokers:"), "{l1}");
    assert!(l1.contains(&format!("broker 2 at {}", b2.addr())), "{l1}");
    // Both answer the same controller.
    let (_, ctl1) = kafka_raw::brokers(b1.addr()).expect("metadata b1");
    let (_, ctl2) = kafka_raw::brokers(b2.addr()).expect("metadata b2");
    assert!(ctl1 == 1 || ctl1 == 2, "controller {ctl1}");
    assert_eq!(ctl1, ctl2, "brokers disagree on the controller");

    // A replicated topic is possible with two brokers.
    let (code, msg) = kafka_raw::create_topic(&mut c1, "replicated", 1, 2, &[]).expect("create");
    assert_eq!(code, err::NONE, "CreateTopics rf=2 with 2 brokers: {msg:?}");
    let (code, msg) = kafka_raw::create_topic(&mut c1, "rf3", 1, 3, &[]).expect("create");
    assert_eq!(
        code,
        err::INVALID_REPLICATION_FACTOR,
        "rf=3 with 2 brokers: {msg:?}"
    );

    // Kafka's znodes.
    for id in [1, 2] {
        let reg = zk_json(zk_addr, &format!("/brokers/ids/{id}"));
        let b = if id == 1 { &b1 } else { &b2 };
        let endpoint = format!("PLAINTEXT://{}", b.addr());
        let endpoints = reg["endpoints"]
            .as_array()
            .unwrap_or_else(|| panic!("{reg}"));
        assert!(
            endpoints.iter().any(|e| e.as_str() == Some(&endpoint)),
            "/brokers/ids/{id} lacks {endpoint}: {reg}"
        );
        assert_eq!(
            reg["port"].as_i64(),
            Some(i64::from(b.addr().port())),
            "{reg}"
        );
        assert!(reg["host"].is_string(), "{reg}");
        assert!(reg["version"].as_i64().is_some_and(|v| v >= 4), "{reg}");
        assert!(
            reg["listener_security_protocol_map"]["PLAINTEXT"] == "PLAINTEXT",
            "{reg}"
        );
        assert!(reg["timestamp"].is_string(), "{reg}");
    }
    let topic = zk_json(zk_addr, "/brokers/topics/shared");
    let parts = topic["partitions"]
        .as_object()
        .unwrap_or_else(|| panic!("{topic}"));
    assert_eq!(parts.len(), 2, "{topic}");
    for p in ["0", "1"] {
        let replicas = parts[p].as_array().unwrap_or_else(|| panic!("{topic}"));
        assert_eq!(replicas.len(), 1, "{topic}");
    }
    let topic_id = topic["topic_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no topic_id: {topic}"));
    assert_eq!(topic_id.len(), 22, "topic_id is not a base64 uuid: {topic}");
    for p in 0..2 {
        let path = format!("/brokers/topics/shared/partitions/{p}/state");
        let st = zk_json(zk_addr, &path);
        let leader = st["leader"]
            .as_i64()
            .unwrap_or_else(|| panic!("{path}: {st}"));
        assert_eq!(
            Some(&Value::from(leader)),
            parts[&p.to_string()].as_array().and_then(|r| r.first()),
            "{path} leader vs assignment: {st} / {topic}"
        );
        assert_eq!(st["isr"], Value::from(vec![leader]), "{path}: {st}");
        assert!(
            st["leader_epoch"].as_i64().is_some_and(|e| e >= 0),
            "{path}: {st}"
        );
        assert!(
            st["controller_epoch"].as_i64().is_some_and(|e| e >= 1),
            "{path}: {st}"
        );
        assert!(st["version"].is_i64(), "{path}: {st}");
    }
    let ctl = zk_json(zk_addr, "/controller");
    assert_eq!(
        ctl["brokerid"].as_i64(),
        Some(i64::from(ctl1)),
        "/controller: {ctl}"
    );
    let epoch = zk_get(zk_addr, "/controller_epoch").expect("/controller_epoch");
    let epoch: i64 = String::from_utf8_lossy(&epoch)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("/controller_epoch {epoch:?}: {e}"));
    assert!(epoch >= 1, "controller epoch {epoch}");
    let cluster = zk_json(zk_addr, "/cluster/id");
    assert!(
        cluster["id"].as_str().is_some_and(|s| !s.is_empty()),
        "/cluster/id: {cluster}"
    );

    // A clean stop removes the registration at once and broker 1 forgets it.
    let status = b2.terminate().expect("terminate broker 2");
    assert!(status.success(), "broker 2 exit status {status}");
    assert_eq!(
        zk_get(zk_addr, "/brokers/ids/2").map(|d| String::from_utf8_lossy(&d).into_owned()),
        None,
        "/brokers/ids/2 still registered after broker 2 exited"
    );
    assert!(
        zk_get(zk_addr, "/brokers/ids/1").is_some(),
        "broker 1 lost its registration"
    );
    wait_brokers(b1.addr(), &[1]);
}

#[test]
fn broker_survives_coordinator_outage() {
    let mut coord = Coordinator::spawn().expect("spawn coordinator");
    let broker = spawn_member(&coord, 1);
    let addr = broker.addr();
    kafka_raw::wait_registered(addr).expect("registered");
    let mut c = KafkaConn::connect(addr).expect("connect");
    let (code, msg) = kafka_raw::create_topic(&mut c, "steady", 1, 1, &[]).expect("create");
    assert_eq!(code, err::NONE, "{msg:?}");
    kafka_raw::wait_leader(addr, "steady", 0).expect("leader");
    let (code, base) = kafka_raw::produce(
        &mut c,
        "steady",
        0,
        kafka_raw::simple_batch(&[b"before"]).expect("batch"),
    )
    .expect("produce");
    assert_eq!((code, base), (err::NONE, 0));

    coord.kill9().expect("kill coordinator");
    // Existing partitions keep taking writes and serving reads, on the old
    // connection and on new ones.
    for (i, v) in [b"during-1", b"during-2"].iter().enumerate() {
        let (code, base) = kafka_raw::produce(
            &mut c,
            "steady",
            0,
            kafka_raw::simple_batch(&[&v[..]]).expect("batch"),
        )
        .expect("produce while the coordinator is down");
        assert_eq!(
            (code, base),
            (err::NONE, 1 + i as i64),
            "produce without a coordinator"
        );
    }
    let mut fresh = KafkaConn::connect(addr).expect("new connection while coordinator down");
    let (code, hw, _, recs) = kafka_raw::fetch(&mut fresh, "steady", 0, 0, 1 << 20).expect("fetch");
    assert_eq!((code, hw), (err::NONE, 3), "fetch without a coordinator");
    let vals: Vec<&[u8]> = recs.iter().map(|(_, v)| v.as_ref()).collect();
    assert_eq!(vals, vec![&b"before"[..], b"during-1", b"during-2"]);
    let (ids, _) = kafka_raw::brokers(addr).expect("metadata while coordinator down");
    assert_eq!(ids, vec![1], "Metadata while the coordinator is down");

    coord.restart().expect("restart coordinator");
    let zk_addr = coord.addr();
    let registered = wait_until(Duration::from_secs(45), || {
        zk_get(zk_addr, "/brokers/ids/1").is_some()
    });
    assert!(
        registered,
        "/brokers/ids/1 did not reappear after the coordinator came back\n{}",
        broker.stderr_tail(30)
    );
    // And the broker uses the coordinator again: a new topic can be created.
    // CreateTopics waits (up to its 20 s timeout) for the controller to make
    // the new partition online, as Kafka's does.
    let t0 = std::time::Instant::now();
    let answers = match kafka_raw::create_topic(&mut c, "after-outage", 1, 1, &[]) {
        Ok((0, _)) => None,
        other => Some(format!(
            "after {:?}: {:?}",
            t0.elapsed(),
            other.map_err(|e| format!("{e:#}"))
        )),
    };
    let led = match &answers {
        None => kafka_raw::wait_leader(addr, "after-outage", 0).map_err(|e| format!("{e:#}")),
        Some(_) => Err(format!(
            "ListOffsets after-outage-0: {:?}",
            kafka_raw::list_offset(&mut c, "after-outage", 0, -1).map_err(|e| format!("{e:#}"))
        )),
    };
    if let Err(e) = led {
        panic!(
            "{e}\nCreateTopics answer after restart: {answers:?}\nznode: {:?}\nstate: {:?}\n{}",
            zk_get(zk_addr, "/brokers/topics/after-outage")
                .map(|d| String::from_utf8_lossy(&d).into_owned()),
            zk_get(zk_addr, "/brokers/topics/after-outage/partitions/0/state")
                .map(|d| String::from_utf8_lossy(&d).into_owned()),
            broker.stderr_tail(40)
        );
    }
    let (code, base) = kafka_raw::produce(
        &mut c,
        "steady",
        0,
        kafka_raw::simple_batch(&[b"after"]).expect("batch"),
    )
    .expect("produce");
    assert_eq!(
        (code, base),
        (err::NONE, 3),
        "produce after the coordinator restart"
    );
}

#[test]
fn retention_deletes_old_segments() {
    let broker =
        KafkaBroker::spawn(BrokerOpts::default().with("log.retention.check.interval.ms", 500))
            .expect("spawn broker");
    let addr = broker.addr();
    kafka_raw::wait_registered(addr).expect("registered");
    let mut c = KafkaConn::connect(addr).expect("connect");
    let (code, msg) = kafka_raw::create_topic(
        &mut c,
        "short",
        1,
        1,
        &[("segment.bytes", "1024"), ("retention.ms", "1000")],
    )
    .expect("create");
    assert_eq!(
        code,
        err::NONE,
        "CreateTopics with segment.bytes/retention.ms: {msg:?}"
    );
    kafka_raw::wait_leader(addr, "short", 0).expect("leader");
    // 40 batches of ~300 bytes: several 1 KiB segments.
    let value = vec![b'r'; 250];
    for i in 0..40 {
        let (code, base) = kafka_raw::produce(
            &mut c,
            "short",
            0,
            kafka_raw::simple_batch(&[&value]).expect("batch"),
        )
        .expect("produce");
        assert_eq!((code, base), (err::NONE, i), "produce batch {i}");
    }
    let dir = broker.log_dir().join("short-0");
    let logs = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".log"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let before = logs();
    assert!(
        before.len() >= 4,
        "expected several segments in {}: {before:?}",
        dir.display()
    );
    assert!(before.contains(&format!("{:020}.log", 0)), "{before:?}");

    let mut start = 0;
    let trimmed = wait_until(Duration::from_secs(30), || {
        if let Ok((0, off)) = kafka_raw::list_offset(&mut c, "short", 0, -2) {
            start = off;
        }
        start > 0 && !logs().contains(&format!("{:020}.log", 0))
    });
    assert!(
        trimmed,
        "log start offset {start}, segments {:?} (was {before:?}): retention never deleted old segments\n{}",
        logs(),
        broker.stderr_tail(20)
    );
    let after = logs();
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    // Kafka never deletes the active segment, so the newest record survives.
    assert!(start <= 39, "log start {start} past the last record");
    let (code, end) = kafka_raw::list_offset(&mut c, "short", 0, -1).expect("latest");
    assert_eq!((code, end), (err::NONE, 40));
    let (code, hw, lso, recs) = kafka_raw::fetch(&mut c, "short", 0, 39, 1 << 20).expect("fetch");
    assert_eq!(code, err::NONE, "fetch of the newest record");
    assert_eq!(hw, 40);
    assert!(lso > 0, "fetch log_start_offset {lso}");
    assert_eq!(recs.first().map(|(o, v)| (*o, v.len())), Some((39, 250)));
    // A fetch below the new start is out of range.
    let (code, _, _, _) = kafka_raw::fetch(&mut c, "short", 0, 0, 1 << 20).expect("fetch");
    assert_eq!(code, err::OFFSET_OUT_OF_RANGE, "fetch at 0 after retention");
}

/// Kafka accepts no request before the broker is registered and its metadata
/// loaded; the first request after `listening addr=` must already see this
/// broker in Metadata and be able to create a topic.
#[test]
fn first_request_after_listening() {
    let mut failures = Vec::new();
    for round in 0..3 {
        let broker = KafkaBroker::dev().expect("spawn broker");
        let addr = broker.addr();
        let mut c = KafkaConn::connect(addr).expect("connect");
        let (code, msg) = kafka_raw::create_topic(&mut c, "early", 1, 1, &[]).expect("create");
        if code != err::NONE {
            failures.push(format!(
                "round {round}: CreateTopics answered {code} {msg:?}"
            ));
        }
        let broker2 = KafkaBroker::dev().expect("spawn broker");
        let (ids, ctl) = kafka_raw::brokers(broker2.addr()).expect("metadata");
        if ids.is_empty() || ctl < 0 {
            failures.push(format!(
                "round {round}: first Metadata listed brokers {ids:?}, controller {ctl}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
