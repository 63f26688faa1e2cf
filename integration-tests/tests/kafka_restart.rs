//! A broker restarted after `kill -9` serves again at once: it owns its log
//! directories, so it takes back the coordinator session its predecessor
//! left and closes it instead of waiting out that session's timeout. The
//! controller sees a new incarnation (broker epoch) and re-elects its
//! partitions as after a failure; nothing acknowledged is lost.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use integration_tests::kafka::{BrokerOpts, KafkaBroker};
use integration_tests::kafka_raw::{self, err, KafkaConn};
use integration_tests::{wait_until, Coordinator};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse};

/// Well above what any restart here takes, far below the session timeout
/// the brokers below run with: a restart that waited for the old session
/// to expire fails.
const SERVES_WITHIN: Duration = Duration::from_secs(10);
const SESSION_TIMEOUT_MS: u32 = 30_000;

/// (leader, leader epoch, ISR) of `topic`-0 as `addr` reports it.
fn partition_state(addr: SocketAddr, topic: &str) -> Option<(i32, i32, Vec<i32>)> {
    let mut c = KafkaConn::connect(addr).ok()?;
    let req = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(kafka_raw::topic_name(topic)))
    ]));
    let resp: MetadataResponse = c.send(9, &req).ok()?;
    let p = resp.topics.first()?.partitions.first()?;
    let isr = p.isr_nodes.iter().map(|b| i32::from(*b)).collect();
    Some((i32::from(p.leader_id), p.leader_epoch, isr))
}

fn produce_one(addr: SocketAddr, topic: &str, value: &[u8]) -> i64 {
    let mut c = KafkaConn::connect(addr).expect("connect");
    let batch = kafka_raw::simple_batch(&[value]).expect("batch");
    let (code, offset) = kafka_raw::produce(&mut c, topic, 0, batch).expect("produce");
    assert_eq!(code, err::NONE, "produce to {topic} at {addr}");
    offset
}

fn log_end(addr: SocketAddr, topic: &str) -> (i16, i64) {
    let mut c = KafkaConn::connect(addr).expect("connect");
    kafka_raw::list_offset(&mut c, topic, 0, -1).expect("list offsets")
}

/// Kills `broker` with SIGKILL, restarts it and returns how long it took
/// until it led `topic`-0 again (ListOffsets answered without error).
fn kill_and_time_restart(broker: &mut KafkaBroker, topic: &str) -> Duration {
    broker.kill9().expect("kill -9");
    let started = Instant::now();
    broker.restart().expect("restart");
    let mut c = KafkaConn::connect(broker.addr()).expect("connect after restart");
    let led = wait_until(Duration::from_secs(60), || {
        matches!(kafka_raw::list_offset(&mut c, topic, 0, -1), Ok((0, _)))
    });
    assert!(led, "{topic}-0 never led again\n{}", broker.stderr_tail(30));
    started.elapsed()
}

fn lone_broker(coord: &Coordinator) -> KafkaBroker {
    KafkaBroker::spawn(
        BrokerOpts::default()
            .zookeeper(coord.connect_string())
            .id(1)
            .with("zookeeper.session.timeout.ms", SESSION_TIMEOUT_MS),
    )
    .expect("spawn broker")
}

#[test]
fn killed_broker_serves_again_before_its_old_session_expires() {
    let coord = Coordinator::spawn().expect("coordinator");
    let mut broker = lone_broker(&coord);
    let mut c = KafkaConn::connect(broker.addr()).expect("connect");
    kafka_raw::create_topic(&mut c, "kept", 1, 1, &[]).expect("create");
    kafka_raw::wait_leader(broker.addr(), "kept", 0).expect("leader");
    produce_one(broker.addr(), "kept", b"before the crash");

    let took = kill_and_time_restart(&mut broker, "kept");
    assert!(
        took < SERVES_WITHIN,
        "served again only after {took:?}\n{}",
        broker.stderr_tail(30)
    );
    assert!(
        broker
            .stderr_tail(200)
            .contains("closed the coordinator session of this broker's previous run"),
        "{}",
        broker.stderr_tail(30)
    );
    assert_eq!(log_end(broker.addr(), "kept"), (err::NONE, 1));
    assert_eq!(produce_one(broker.addr(), "kept", b"after"), 1);
}

#[test]
fn killed_dev_mode_broker_serves_again_at_once() {
    let mut broker = KafkaBroker::spawn(
        BrokerOpts::default().with("zookeeper.session.timeout.ms", SESSION_TIMEOUT_MS),
    )
    .expect("spawn dev broker");
    let mut c = KafkaConn::connect(broker.addr()).expect("connect");
    kafka_raw::create_topic(&mut c, "dev", 1, 1, &[]).expect("create");
    kafka_raw::wait_leader(broker.addr(), "dev", 0).expect("leader");
    produce_one(broker.addr(), "dev", b"x");

    let took = kill_and_time_restart(&mut broker, "dev");
    assert!(
        took < SERVES_WITHIN,
        "served again only after {took:?}\n{}",
        broker.stderr_tail(30)
    );
    assert_eq!(log_end(broker.addr(), "dev"), (err::NONE, 1));
}

/// In a cluster the restarted leader is a new incarnation: the controller
/// moves leadership away (leader epoch up) whether or not it saw the broker
/// gone, and the broker rejoins the ISR as a follower.
#[test]
fn restarted_leader_is_re_elected_as_a_new_incarnation() {
    let coord = Coordinator::spawn().expect("coordinator");
    let mut brokers: Vec<KafkaBroker> = (1..=3)
        .map(|id| {
            KafkaBroker::spawn(
                BrokerOpts::default()
                    .zookeeper(coord.connect_string())
                    .id(id)
                    .with("zookeeper.session.timeout.ms", SESSION_TIMEOUT_MS)
                    .with("min.insync.replicas", 2),
            )
            .expect("spawn broker")
        })
        .collect();
    let first = brokers[0].addr();
    let mut c = KafkaConn::connect(first).expect("connect");
    kafka_raw::create_topic(&mut c, "rf3", 1, 3, &[]).expect("create");
    let full = wait_until(Duration::from_secs(30), || {
        partition_state(first, "rf3").is_some_and(|(l, _, isr)| l >= 0 && isr.len() == 3)
    });
    assert!(full, "no full ISR: {:?}", partition_state(first, "rf3"));
    let Some((leader, epoch, _)) = partition_state(first, "rf3") else {
        panic!("no state")
    };
    let leader_idx = usize::try_from(leader - 1).expect("broker ids are 1..=3");
    let leader_addr = brokers[leader_idx].addr();
    for i in 0..10u8 {
        produce_one(leader_addr, "rf3", &[i]);
    }

    let restarted = &mut brokers[leader_idx];
    restarted.kill9().expect("kill -9");
    let started = Instant::now();
    restarted.restart().expect("restart");
    let took = started.elapsed();
    assert!(
        took < SERVES_WITHIN,
        "served again only after {took:?}\n{}",
        restarted.stderr_tail(30)
    );
    let addr = restarted.addr();
    let moved_on = wait_until(Duration::from_secs(30), || {
        partition_state(addr, "rf3")
            .is_some_and(|(l, e, isr)| l >= 0 && e > epoch && isr.len() == 3)
    });
    assert!(
        moved_on,
        "after the restart of leader {leader} (epoch {epoch}): {:?}",
        partition_state(addr, "rf3")
    );
    let Some((new_leader, _, _)) = partition_state(addr, "rf3") else {
        panic!("no state")
    };
    let new_idx = usize::try_from(new_leader - 1).expect("broker ids are 1..=3");
    // A new leader's high watermark catches up once its followers fetch.
    let new_addr = brokers[new_idx].addr();
    let all_there = wait_until(Duration::from_secs(30), || {
        log_end(new_addr, "rf3") == (err::NONE, 10)
    });
    assert!(all_there, "{:?}", log_end(new_addr, "rf3"));
}

/// The figure for the closing note: median of 10 `kill -9` restarts, in a
/// cluster (external coordinator) and in dev mode.
/// `cargo test -p integration-tests --test kafka_restart -- --ignored --nocapture`
#[test]
#[ignore = "measurement, not a check"]
fn restart_time_median_of_10() {
    let median = |mut v: Vec<Duration>| {
        v.sort();
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2
    };
    let coord = Coordinator::spawn().expect("coordinator");
    let mut broker = lone_broker(&coord);
    let mut c = KafkaConn::connect(broker.addr()).expect("connect");
    kafka_raw::create_topic(&mut c, "timed", 1, 1, &[]).expect("create");
    kafka_raw::wait_leader(broker.addr(), "timed", 0).expect("leader");
    let times: Vec<Duration> = (0..10)
        .map(|_| kill_and_time_restart(&mut broker, "timed"))
        .collect();
    println!(
        "external coordinator: {times:?}\n  median {:?}",
        median(times.clone())
    );

    let mut dev = KafkaBroker::dev().expect("dev broker");
    let mut c = KafkaConn::connect(dev.addr()).expect("connect");
    kafka_raw::create_topic(&mut c, "timed", 1, 1, &[]).expect("create");
    kafka_raw::wait_leader(dev.addr(), "timed", 0).expect("leader");
    let times: Vec<Duration> = (0..10)
        .map(|_| kill_and_time_restart(&mut dev, "timed"))
        .collect();
    println!("dev mode: {times:?}\n  median {:?}", median(times.clone()));
}
