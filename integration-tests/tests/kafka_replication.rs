//! Replication across brokers sharing one coordinator: acks=all messages
//! survive repeated SIGKILLs of partition leaders (every acknowledgement
//! with its offset), an ISR-only change keeps the leader epoch and lets a
//! pending acks=all produce complete, a lone survivor keeps taking writes
//! and the ISR refills when the others return, unclean leader election
//! stays off, and a replica with a divergent tail is truncated to the new
//! leader's log.
//!
//! Timings (`[t+ms]` lines on stderr, run with `--no-capture` to see them)
//! break a failover into: coordinator session expiry of the killed broker,
//! the controller's election (state znode), Metadata of a survivor showing
//! the new leader, and the first acks=all produce that succeeds.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use integration_tests::kafka::{self, BrokerOpts, KafkaBroker};
use integration_tests::kafka_raw::{self, topic_name, KafkaConn};
use integration_tests::{run_with_timeout, wait_until, zk, zk_connect, Coordinator, Opts};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, ProduceResponse};

/// `zookeeper.session.timeout.ms` of every broker (the coordinator ticks
/// every 500 ms, so this is 8 ticks).
const SESSION_MS: u64 = 4000;
/// `replica.lag.time.max.ms` of every broker.
const LAG_MS: u64 = 3000;

// ---------------------------------------------------------------------------
// Helpers.

struct Clock(Instant);

impl Clock {
    fn new() -> Self {
        Clock(Instant::now())
    }
    fn ms(&self) -> u128 {
        self.0.elapsed().as_millis()
    }
    fn log(&self, msg: impl AsRef<str>) {
        eprintln!(
            "[t+{:>6}ms epoch={}] {}",
            self.ms(),
            kafka_raw::now_ms(),
            msg.as_ref()
        );
    }
}

fn coordinator() -> Coordinator {
    Coordinator::spawn_with(Opts::default().tick_time(500)).expect("spawn coordinator")
}

fn repl_broker(coord: &Coordinator, id: i32, extra: &[(&str, &str)]) -> KafkaBroker {
    let mut opts = BrokerOpts::default()
        .zookeeper(coord.connect_string())
        .id(id)
        .with("zookeeper.session.timeout.ms", SESSION_MS)
        .with("replica.lag.time.max.ms", LAG_MS)
        .with("group.initial.rebalance.delay.ms", 0);
    for (k, v) in extra {
        opts = opts.with(k, v);
    }
    KafkaBroker::spawn(opts).unwrap_or_else(|e| panic!("spawn broker {id}: {e:#}"))
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

/// A coordinator session of the test's own, to read znodes.
struct Zk {
    rt: tokio::runtime::Runtime,
    client: zk::Client,
}

/// A partition's state znode: (leader, leader_epoch, isr sorted).
type State = (i32, i32, Vec<i32>);

impl Zk {
    fn connect(addr: SocketAddr) -> Zk {
        // Multi-threaded so the session's pings go on between calls.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt
            .block_on(zk_connect(addr, Duration::from_secs(10)))
            .expect("zk connect");
        Zk { rt, client }
    }

    fn get(&self, path: &str) -> Option<Vec<u8>> {
        self.rt.block_on(async {
            match self.client.get_data(path).await {
                Ok((data, _)) => Some(data),
                Err(zk::Error::NoNode) => None,
                Err(e) => panic!("get {path}: {e}"),
            }
        })
    }

    fn registered(&self, id: i32) -> bool {
        self.get(&format!("/brokers/ids/{id}")).is_some()
    }

    fn state(&self, topic: &str, p: i32) -> Option<State> {
        let data = self.get(&format!("/brokers/topics/{topic}/partitions/{p}/state"))?;
        let v: serde_json::Value = serde_json::from_slice(&data).unwrap_or_else(|e| {
            panic!(
                "state of {topic}-{p} is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&data)
            )
        });
        let mut isr: Vec<i32> = v["isr"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_i64())
                    .map(|x| x as i32)
                    .collect()
            })
            .unwrap_or_default();
        isr.sort();
        Some((
            v["leader"].as_i64().unwrap_or(-99) as i32,
            v["leader_epoch"].as_i64().unwrap_or(-99) as i32,
            isr,
        ))
    }

    fn states(&self, topic: &str, partitions: i32) -> Vec<Option<State>> {
        (0..partitions).map(|p| self.state(topic, p)).collect()
    }
}

/// Metadata v4 of `topic` from `addr`: [(partition, leader, sorted ISR)].
fn md_states(addr: SocketAddr, topic: &str) -> Vec<(i32, i32, Vec<i32>)> {
    let Ok(mut c) = KafkaConn::connect(addr) else {
        return vec![];
    };
    let req = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
    ]));
    let Ok(resp) = c.send::<MetadataRequest>(4, &req) else {
        return vec![];
    };
    let resp: MetadataResponse = resp;
    let mut out: Vec<(i32, i32, Vec<i32>)> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let mut isr: Vec<i32> = p.isr_nodes.iter().map(|n| i32::from(*n)).collect();
                isr.sort();
                (p.partition_index, i32::from(p.leader_id), isr)
            })
        })
        .collect();
    out.sort();
    out
}

/// One produce of `values` to `topic`/`p` at `addr` with `acks`, on a fresh
/// connection: (error code, base offset).
fn produce(
    addr: SocketAddr,
    topic: &str,
    p: i32,
    acks: i16,
    values: &[&[u8]],
) -> anyhow::Result<(i16, i64)> {
    produce_within(addr, topic, p, acks, values, 5000)
}

/// [`produce`] with the request's own timeout (how long acks=all may wait).
fn produce_within(
    addr: SocketAddr,
    topic: &str,
    p: i32,
    acks: i16,
    values: &[&[u8]],
    timeout_ms: i32,
) -> anyhow::Result<(i16, i64)> {
    let mut c = KafkaConn::connect(addr)?;
    let req = kafka_raw::produce_request(topic, p, kafka_raw::simple_batch(values)?)
        .with_acks(acks)
        .with_timeout_ms(timeout_ms);
    let resp: ProduceResponse = c.send(7, &req)?;
    let part = resp
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or_else(|| anyhow::anyhow!("produce answer without a partition"))?;
    Ok((part.error_code, part.base_offset))
}

/// Every record of `topic`/`p` from `addr` (the leader) up to the high watermark.
fn fetch_all(addr: SocketAddr, topic: &str, p: i32) -> (i16, i64, Vec<(i64, Bytes)>) {
    let mut c = KafkaConn::connect(addr).expect("connect for fetch");
    let mut out = Vec::new();
    loop {
        let next = out.last().map_or(0, |(o, _): &(i64, Bytes)| o + 1);
        let (code, hw, _, recs) = kafka_raw::fetch(&mut c, topic, p, next, 1 << 20).expect("fetch");
        if code != 0 {
            return (code, hw, out);
        }
        let recs: Vec<_> = recs.into_iter().filter(|(o, _)| *o >= next).collect();
        if recs.is_empty() || next >= hw {
            return (code, hw, out);
        }
        out.extend(recs);
    }
}

fn values(recs: &[(i64, Bytes)]) -> Vec<(i64, String)> {
    recs.iter()
        .map(|(o, v)| (*o, String::from_utf8_lossy(v).into_owned()))
        .collect()
}

fn tails(bs: &[&KafkaBroker]) -> String {
    bs.iter()
        .map(|b| format!("--- broker {} ---\n{}", b.addr(), b.stderr_tail(40)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A client process running alongside the test; its output lines are collected.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for (stream, prefix) in [(out, ""), (err, "stderr: ")] {
            let all = Arc::clone(&lines);
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    all.lock().expect("lines").push(format!("{prefix}{line}"));
                }
            });
        }
        Proc {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    fn has(&self, f: impl Fn(&str) -> bool) -> bool {
        self.lines.lock().expect("lines").iter().any(|l| f(l))
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With `REPL_LOG_DIR` set, copies every broker's stderr files (all
/// incarnations) there, for reading after the temp dirs are gone.
fn keep_logs(test: &str, bs: &[&KafkaBroker]) {
    let Some(dir) = std::env::var_os("REPL_LOG_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir).join(test);
    std::fs::create_dir_all(&dir).expect("log dir");
    for (i, b) in bs.iter().enumerate() {
        for e in std::fs::read_dir(b.data_dir()).expect("data dir").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".stderr") {
                let _ = std::fs::copy(e.path(), dir.join(format!("b{}-{name}", i + 1)));
            }
        }
    }
}

fn signal(b: &KafkaBroker, sig: &str) {
    let pid = b.pid().expect("broker runs");
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill {sig} {pid}: {st}");
}

// ---------------------------------------------------------------------------
// 1. acks=all across repeated leader SIGKILLs.

/// How many messages the producer sends at least (200k in a release build
/// would take minutes with debug brokers; `REPL_MESSAGES` overrides).
fn message_count() -> usize {
    std::env::var("REPL_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Whether producer output line `l` is an `ACKED` of partition `p` at or
/// after `since` (epoch ms).
fn acked_since(l: &str, p: i32, since: i64) -> bool {
    let Some(rest) = l.strip_prefix("ACKED ") else {
        return false;
    };
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse::<i64>().ok())
    };
    field("partition=") == Some(i64::from(p)) && field("at=").is_some_and(|at| at >= since)
}

#[test]
fn acks_all_survives_repeated_leader_kills() {
    let clock = Clock::new();
    let coord = coordinator();
    let zkc = Zk::connect(coord.addr());
    let mut bs: Vec<KafkaBroker> = (1..=3).map(|id| repl_broker(&coord, id, &[])).collect();
    for b in &bs {
        wait_brokers(b.addr(), &[1, 2, 3]);
    }
    let topic = "chaos";
    const P: i32 = 6;
    let mut c = KafkaConn::connect(bs[0].addr()).expect("connect");
    let (code, msg) = kafka_raw::create_topic(&mut c, topic, P, 3, &[("min.insync.replicas", "2")])
        .expect("CreateTopics");
    assert_eq!(code, 0, "CreateTopics {topic}: {msg:?}");
    let mut st = vec![];
    assert!(
        wait_until(Duration::from_secs(30), || {
            st = zkc.states(topic, P);
            st.iter()
                .all(|s| matches!(s, Some((l, _, isr)) if *l > 0 && isr == &[1, 2, 3]))
        }),
        "{topic} never had leaders and ISR [1,2,3] everywhere: {st:?}"
    );
    for b in &bs {
        for p in 0..P {
            let leader = zkc.state(topic, p).expect("partition state").0;
            if bs[(leader - 1) as usize].addr() == b.addr() {
                kafka_raw::wait_leader(b.addr(), topic, p).expect("leader serves");
            }
        }
    }
    clock.log(format!("topic ready: {st:?}"));

    let dir = tempfile::tempdir().expect("tmp");
    let ack_file = dir.path().join("acks.txt");
    let bootstrap = bs
        .iter()
        .map(|b| b.bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let count = message_count();
    let mut cmd = Command::new(kafka::pypi_python());
    cmd.current_dir(kafka::py_dir()).args([
        "kafka_repl_produce.py",
        "produce",
        &bootstrap,
        topic,
        ack_file.to_str().expect("utf-8 temp path"),
        &P.to_string(),
        &count.to_string(),
    ]);
    let mut producer = Proc::spawn(cmd);
    assert!(
        wait_until(Duration::from_secs(60), || producer
            .has(|l| l.starts_with("PROGRESS"))
            || producer.exited()),
        "producer never acknowledged 5000 messages:\n{}",
        producer.output()
    );
    assert!(!producer.exited(), "producer died:\n{}", producer.output());
    clock.log("producer running");

    let mut report = Vec::new();
    for round in 0..3 {
        let p = round * 2 + 1;
        let (victim, epoch0, _) = zkc.state(topic, p).expect("state");
        let vi = (victim - 1) as usize;
        let survivors: Vec<SocketAddr> = bs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != vi)
            .map(|(_, b)| b.addr())
            .collect();
        clock.log(format!(
            "round {round}: killing broker {victim} (leader of {topic}-{p}, epoch {epoch0})"
        ));
        let t0 = Instant::now();
        bs[vi].kill9().expect("kill -9");
        let (mut expired, mut elected, mut md_seen, mut produced) = (None, None, None, None);
        let mut new_leader = -1;
        let mut last_err = String::new();
        let mut k = 0;
        while produced.is_none() && t0.elapsed() < Duration::from_secs(60) {
            if expired.is_none() && !zkc.registered(victim) {
                expired = Some(t0.elapsed());
            }
            if elected.is_none() {
                if let Some((l, e, _)) = zkc.state(topic, p) {
                    if l != victim && l > 0 && e > epoch0 {
                        elected = Some(t0.elapsed());
                        new_leader = l;
                    }
                }
            }
            if md_seen.is_none() && new_leader > 0 {
                let all = survivors.iter().all(|a| {
                    md_states(*a, topic)
                        .iter()
                        .any(|(pp, l, _)| *pp == p && *l == new_leader)
                });
                if all {
                    md_seen = Some(t0.elapsed());
                }
            }
            // What a client does: ask a survivor who leads, produce there.
            let leader = md_states(survivors[0], topic)
                .iter()
                .find(|(pp, _, _)| *pp == p)
                .map_or(-1, |s| s.1);
            if leader > 0 && leader != victim {
                let v = format!("probe-r{round}-{k}");
                k += 1;
                match produce(
                    bs[(leader - 1) as usize].addr(),
                    topic,
                    p,
                    -1,
                    &[v.as_bytes()],
                ) {
                    Ok((0, _)) => produced = Some(t0.elapsed()),
                    other => last_err = format!("{other:?}"),
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        let line = format!(
            "round {round}: broker {victim} killed; registration gone after {expired:?}, \
             new leader {new_leader} in state znode after {elected:?}, in survivors' Metadata \
             after {md_seen:?}, first acks=all produce ok after {produced:?} (last error before: {last_err})"
        );
        clock.log(&line);
        report.push(line.clone());
        assert!(
            produced.is_some(),
            "no acks=all produce to {topic}-{p} succeeded within 60 s of killing its leader {victim}: \
             {line}\nstates {:?}\n{}",
            zkc.states(topic, P),
            tails(&bs.iter().collect::<Vec<_>>())
        );
        assert!(!producer.exited(), "producer died:\n{}", producer.output());

        // Restart and wait until it is back in every ISR.
        let t1 = Instant::now();
        bs[vi].restart().expect("restart");
        let registered = wait_until(Duration::from_secs(30), || zkc.registered(victim));
        let reg_at = t1.elapsed();
        let back = wait_until(Duration::from_secs(90), || {
            st = zkc.states(topic, P);
            st.iter()
                .all(|s| matches!(s, Some((_, _, isr)) if isr.contains(&victim)))
        });
        let line = format!(
            "round {round}: broker {victim} restarted; registered={registered} after {reg_at:?}, \
             back in all ISRs={back} after {:?}: {st:?}",
            t1.elapsed()
        );
        clock.log(&line);
        report.push(line);
        assert!(
            back,
            "broker {victim} never rejoined every ISR of {topic} within 90 s of restarting: {st:?}\n{}",
            tails(&bs.iter().collect::<Vec<_>>())
        );
        assert!(!producer.exited(), "producer died:\n{}", producer.output());
        // The next round starts once the producer had an acknowledgement
        // on every partition since the victim was back, so one gap spans
        // one round's disruption, not several whose short gaps between
        // them the client had no time to use.
        let back_at = kafka_raw::now_ms();
        let t2 = Instant::now();
        let resumed = wait_until(Duration::from_secs(30), || {
            (0..P).all(|p| producer.has(|l| acked_since(l, p, back_at)))
        });
        clock.log(format!(
            "round {round}: producer acknowledged on every partition again={resumed} after {:?}",
            t2.elapsed()
        ));
    }

    clock.log("chaos over, telling the producer to stop");
    writeln!(producer.stdin.as_mut().expect("piped stdin"), "STOP").expect("STOP");
    producer.stdin.as_mut().expect("piped stdin").flush().ok();
    let done = wait_until(Duration::from_secs(900), || producer.exited());
    let out = producer.output();
    clock.log(format!(
        "producer finished={done}: {}",
        out.lines()
            .filter(|l| l.starts_with("OK")
                || l.starts_with("GAP")
                || l.starts_with("PRODUCED")
                || l.starts_with("DELIVERY_ERROR")
                || l.starts_with("FAIL")
                || l.starts_with("first"))
            .collect::<Vec<_>>()
            .join("\n  ")
    ));
    assert!(
        done && out.contains("\nOK produced="),
        "producer failed:\n{out}\n{}",
        tails(&bs.iter().collect::<Vec<_>>())
    );

    let mut cmd = Command::new(kafka::pypi_python());
    cmd.current_dir(kafka::py_dir()).args([
        "kafka_repl_produce.py",
        "verify",
        &bootstrap,
        topic,
        ack_file.to_str().expect("utf-8 temp path"),
        &P.to_string(),
    ]);
    let (status, vout) = run_with_timeout(cmd, "", Duration::from_secs(600)).expect("verify runs");
    clock.log(format!("verify: {vout}"));
    clock.log(format!("final states {:?}", zkc.states(topic, P)));
    keep_logs("chaos", &bs.iter().collect::<Vec<_>>());
    for l in &report {
        eprintln!("SUMMARY {l}");
    }
    assert!(
        status.success(),
        "verification failed:\n{vout}\nstates {:?}\n{}",
        zkc.states(topic, P),
        tails(&bs.iter().collect::<Vec<_>>())
    );
    // Every acknowledgement names its offset: the brokers never answer an
    // error for a batch they wrote while acknowledging a later one (which
    // librdkafka reports as delivered without an offset), because an ISR
    // change keeps the leader epoch and pending acks=all waits with it.
    assert!(
        vout.contains("acknowledged without an offset: 0\n"),
        "deliveries without an offset:\n{vout}"
    );
    // Availability: a partition goes without acknowledgements for about one
    // failover (session expiry + election + metadata refresh) or one
    // follower's removal from the ISR (rounds wait for the producer to
    // resume everywhere, so they do not add up); never for the producer's
    // whole request timeout (15 s), which means a produce request hung.
    let worst: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.starts_with("GAP")
                && l.split("ms=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|ms| ms > 12_000)
        })
        .collect();
    assert!(
        worst.is_empty(),
        "partitions went more than 12 s without an acks=all acknowledgement (a produce request \
         answered only at the client's 15 s request timeout): {worst:?}; rounds: {report:#?}"
    );
}

// ---------------------------------------------------------------------------
// 1b. An ISR-only change keeps the leader epoch and a pending acks=all.

#[test]
fn isr_only_change_keeps_the_leader_epoch_and_a_pending_acks_all() {
    let clock = Clock::new();
    let coord = coordinator();
    let zkc = Zk::connect(coord.addr());
    // Followers may lag far longer than a session lasts, so it is the
    // controller (when the killed follower's registration goes) that takes
    // it out of the ISR, not the leader.
    let lag = [("replica.lag.time.max.ms", "60000")];
    let mut bs: Vec<KafkaBroker> = (1..=3).map(|id| repl_broker(&coord, id, &lag)).collect();
    for b in &bs {
        wait_brokers(b.addr(), &[1, 2, 3]);
    }
    let topic = "isr-only";
    let mut c = KafkaConn::connect(bs[0].addr()).expect("connect");
    let (code, msg) = kafka_raw::create_topic(&mut c, topic, 1, 3, &[("min.insync.replicas", "2")])
        .expect("CreateTopics");
    assert_eq!(code, 0, "CreateTopics {topic}: {msg:?}");
    let mut st = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            st = zkc.state(topic, 0);
            matches!(&st, Some((l, _, isr)) if *l > 0 && isr == &[1, 2, 3])
        }),
        "{st:?}"
    );
    let (leader, epoch, _) = st.clone().expect("partition state");
    let lead = bs[(leader - 1) as usize].addr();
    kafka_raw::wait_leader(lead, topic, 0).expect("leader serves");
    for i in 0..5 {
        let v = format!("all-{i}");
        assert_eq!(
            produce(lead, topic, 0, -1, &[v.as_bytes()]).expect("produce"),
            (0, i)
        );
    }
    // Kill a follower: the leader's high watermark stops until the
    // controller drops it from the ISR (session expiry), and a produce
    // sent meanwhile waits for that.
    let victim = (1..=3).find(|b| *b != leader).expect("a follower");
    bs[(victim - 1) as usize].kill9().expect("kill -9 follower");
    let t0 = Instant::now();
    let pending = thread::spawn(move || {
        produce_within(lead, "isr-only", 0, -1, &[b"during-isr-change"], 20_000)
    });
    let shrunk = wait_until(Duration::from_secs(30), || {
        st = zkc.state(topic, 0);
        matches!(&st, Some((_, _, isr)) if !isr.contains(&victim))
    });
    let answer = pending.join().expect("produce thread");
    clock.log(format!(
        "follower {victim} killed; ISR without it={shrunk} ({st:?}); pending acks=all answered {answer:?} after {:?}",
        t0.elapsed()
    ));
    assert!(
        shrunk,
        "{st:?}
{}",
        tails(&bs.iter().collect::<Vec<_>>())
    );
    let mut isr = vec![1, 2, 3];
    isr.retain(|b| *b != victim);
    assert_eq!(
        st,
        Some((leader, epoch, isr)),
        "the ISR-only change must keep the leader and its leader epoch"
    );
    assert_eq!(
        answer.expect("produce"),
        (0, 5),
        "the acks=all produce pending across the ISR change completes with its offset"
    );
    // The leader epoch the leader serves is the same one.
    let md = md_states(lead, topic);
    assert_eq!(md.first().map(|m| m.1), Some(leader), "{md:?}");
    let (code, hw, recs) = fetch_all(lead, topic, 0);
    assert_eq!((code, hw), (0, 6));
    assert_eq!(
        values(&recs).last(),
        Some(&(5, "during-isr-change".to_owned()))
    );
}

// ---------------------------------------------------------------------------
// 2. A lone survivor keeps taking writes; the ISR refills.

#[test]
fn lone_survivor_takes_writes_and_isr_refills() {
    let clock = Clock::new();
    let coord = coordinator();
    let zkc = Zk::connect(coord.addr());
    let mut bs: Vec<KafkaBroker> = (1..=3).map(|id| repl_broker(&coord, id, &[])).collect();
    for b in &bs {
        wait_brokers(b.addr(), &[1, 2, 3]);
    }
    let topic = "survive";
    const P: i32 = 6;
    let mut c = KafkaConn::connect(bs[0].addr()).expect("connect");
    let (code, msg) = kafka_raw::create_topic(&mut c, topic, P, 3, &[("min.insync.replicas", "1")])
        .expect("CreateTopics");
    assert_eq!(code, 0, "CreateTopics {topic}: {msg:?}");
    let mut st = vec![];
    assert!(
        wait_until(Duration::from_secs(30), || {
            st = zkc.states(topic, P);
            st.iter()
                .all(|s| matches!(s, Some((l, _, isr)) if *l > 0 && isr == &[1, 2, 3]))
        }),
        "{topic} never had leaders and ISR [1,2,3]: {st:?}"
    );
    clock.log(format!("topic ready {st:?}"));
    // Something replicated before the stop.
    for p in 0..P {
        let leader = zkc.state(topic, p).expect("partition state").0;
        let addr = bs[(leader - 1) as usize].addr();
        kafka_raw::wait_leader(addr, topic, p).expect("leader");
        let v = format!("before-{p}");
        let r = produce(addr, topic, p, -1, &[v.as_bytes()]).expect("produce");
        assert_eq!(
            r,
            (0, 0),
            "acks=all produce to {topic}-{p} on its leader {leader}"
        );
    }

    let t0 = Instant::now();
    for i in [1, 2] {
        bs[i].terminate().expect("terminate");
    }
    clock.log("brokers 2 and 3 terminated");
    let survivor = bs[0].addr();
    let mut md = vec![];
    let led = wait_until(Duration::from_secs(30), || {
        md = md_states(survivor, topic);
        md.len() == P as usize && md.iter().all(|(_, l, isr)| *l == 1 && isr == &[1])
    });
    clock.log(format!(
        "survivor leads everything={led} after {:?}: Metadata {md:?}, znodes {:?}",
        t0.elapsed(),
        zkc.states(topic, P)
    ));
    assert!(
        led,
        "broker 1 never led every partition with ISR [1] after 2 and 3 stopped: {md:?}\n{}",
        bs[0].stderr_tail(60)
    );
    for p in 0..P {
        for (acks, n) in [(1i16, 0), (1, 1), (-1, 2)] {
            let v = format!("alone-{p}-{n}");
            let r = produce(survivor, topic, p, acks, &[v.as_bytes()]);
            assert!(
                matches!(r, Ok((0, off)) if off == 1 + n),
                "acks={acks} produce to {topic}-{p} on the lone survivor (min.insync.replicas=1): {r:?}\n{}",
                bs[0].stderr_tail(40)
            );
        }
    }
    clock.log("lone survivor took acks=1 and acks=all writes");

    let t1 = Instant::now();
    for i in [1, 2] {
        bs[i].restart().expect("restart");
    }
    let back = wait_until(Duration::from_secs(60), || {
        st = zkc.states(topic, P);
        st.iter()
            .all(|s| matches!(s, Some((_, _, isr)) if isr == &[1, 2, 3]))
    });
    clock.log(format!(
        "ISR full again in znodes={back} after {:?}: {st:?}",
        t1.elapsed()
    ));
    assert!(
        back,
        "the ISRs never returned to [1,2,3] within 60 s of restarting brokers 2 and 3: {st:?}\n{}",
        tails(&bs.iter().collect::<Vec<_>>())
    );
    for b in &bs {
        let ok = wait_until(Duration::from_secs(20), || {
            md = md_states(b.addr(), topic);
            md.len() == P as usize && md.iter().all(|(_, _, isr)| isr == &[1, 2, 3])
        });
        assert!(
            ok,
            "Metadata of {} never showed ISR [1,2,3] everywhere (znodes do): {md:?}",
            b.addr()
        );
    }
    clock.log(format!("Metadata agrees after {:?}", t1.elapsed()));

    // The ISR claim is backed by data: with broker 1 gone for good, the
    // others lead and hold everything written while they were away.
    bs[0].kill9().expect("kill -9 broker 1");
    let t2 = Instant::now();
    for p in 0..P {
        let mut last = vec![];
        let ok = wait_until(Duration::from_secs(30), || {
            last = md_states(bs[1].addr(), topic);
            last.iter()
                .any(|(pp, l, _)| *pp == p && (*l == 2 || *l == 3))
        });
        assert!(
            ok,
            "{topic}-{p} never got a new leader after broker 1 died: {last:?}"
        );
        let leader = last.iter().find(|s| s.0 == p).expect("partition listed").1;
        let addr = bs[(leader - 1) as usize].addr();
        kafka_raw::wait_leader(addr, topic, p).expect("leader");
        let (code, hw, recs) = fetch_all(addr, topic, p);
        let want: Vec<(i64, String)> = vec![
            (0, format!("before-{p}")),
            (1, format!("alone-{p}-0")),
            (2, format!("alone-{p}-1")),
            (3, format!("alone-{p}-2")),
        ];
        assert_eq!(
            (code, hw, values(&recs)),
            (0, 4, want),
            "{topic}-{p} on its new leader {leader} after the ISR had refilled and broker 1 died"
        );
    }
    clock.log(format!(
        "new leaders hold every message, checked after {:?}",
        t2.elapsed()
    ));
}

// ---------------------------------------------------------------------------
// 3a. Unclean leader election is off.

#[test]
fn out_of_sync_replica_does_not_become_leader() {
    let clock = Clock::new();
    let coord = coordinator();
    let zkc = Zk::connect(coord.addr());
    let mut b1 = repl_broker(&coord, 1, &[]);
    let mut b2 = repl_broker(&coord, 2, &[]);
    wait_brokers(b1.addr(), &[1, 2]);
    wait_brokers(b2.addr(), &[1, 2]);
    let topic = "unclean";
    let mut c = KafkaConn::connect(b1.addr()).expect("connect");
    let (code, msg) = kafka_raw::create_topic(&mut c, topic, 1, 2, &[]).expect("CreateTopics");
    assert_eq!(code, 0, "{msg:?}");
    let mut st = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            st = zkc.state(topic, 0);
            matches!(&st, Some((l, _, isr)) if *l > 0 && isr == &[1, 2])
        }),
        "{st:?}"
    );
    let (leader, _, _) = st.clone().expect("partition state");
    let (lead, foll) = if leader == 1 {
        (&mut b1, &mut b2)
    } else {
        (&mut b2, &mut b1)
    };
    let follower = 3 - leader;
    kafka_raw::wait_leader(lead.addr(), topic, 0).expect("leader");
    for i in 0..5 {
        let v = format!("both-{i}");
        assert_eq!(
            produce(lead.addr(), topic, 0, -1, &[v.as_bytes()]).expect("produce"),
            (0, i)
        );
    }
    foll.kill9().expect("kill -9 follower");
    let t0 = Instant::now();
    let shrunk = wait_until(Duration::from_secs(30), || {
        st = zkc.state(topic, 0);
        matches!(&st, Some((l, _, isr)) if *l == leader && isr == &[leader])
    });
    clock.log(format!(
        "follower {follower} killed; ISR shrank to the leader={shrunk} after {:?}: {st:?}",
        t0.elapsed()
    ));
    assert!(shrunk, "{st:?}\n{}", lead.stderr_tail(40));
    for i in 5..8 {
        let v = format!("leader-only-{i}");
        assert_eq!(
            produce(lead.addr(), topic, 0, 1, &[v.as_bytes()]).expect("produce"),
            (0, i),
            "acks=1 on the leader alone"
        );
    }
    lead.kill9().expect("kill -9 leader");
    clock.log("leader killed too; restarting the out-of-sync follower alone");
    foll.restart().expect("restart follower");
    // Its old session must expire first; then it registers and (being the
    // only live broker) becomes the controller.
    assert!(
        wait_until(Duration::from_secs(30), || zkc.registered(follower)
            && !zkc.registered(leader)),
        "broker {follower} never registered alone"
    );
    // The controller (maybe the restarted follower itself, once the old one's
    // session is gone) then acts on the leader's death.
    let acted = wait_until(Duration::from_secs(30), || {
        st = zkc.state(topic, 0);
        !matches!(&st, Some((l, _, _)) if *l == leader)
    });
    assert!(
        acted,
        "the state of {topic}-0 still names the dead leader {leader}: {st:?}"
    );
    let t1 = Instant::now();
    let mut seen = vec![];
    while t1.elapsed() < Duration::from_millis(SESSION_MS * 2) {
        let s = zkc.state(topic, 0);
        let m = md_states(foll.addr(), topic);
        let lo = KafkaConn::connect(foll.addr())
            .and_then(|mut c| kafka_raw::list_offset(&mut c, topic, 0, -1))
            .ok();
        if !seen.contains(&(s.clone(), m.clone(), lo)) {
            clock.log(format!("state {s:?}, Metadata {m:?}, ListOffsets {lo:?}"));
            seen.push((s.clone(), m.clone(), lo));
        }
        assert!(
            matches!(&s, Some((-1, _, isr)) if isr == &[leader]),
            "with only the out-of-sync replica {follower} alive, {topic}-0 must stay leaderless \
             with ISR [{leader}] (unclean.leader.election.enable=false); state znode {s:?}, \
             Metadata {m:?}, ListOffsets {lo:?}\n{}",
            foll.stderr_tail(40)
        );
        assert!(
            !matches!(lo, Some((0, _))),
            "out-of-sync broker {follower} serves ListOffsets for {topic}-0: {lo:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    // The old leader comes back: it leads again with everything it had.
    lead.restart().expect("restart leader");
    let t2 = Instant::now();
    let ok = wait_until(Duration::from_secs(30), || {
        st = zkc.state(topic, 0);
        matches!(&st, Some((l, _, isr)) if *l == leader && isr == &[1, 2])
    });
    clock.log(format!(
        "old leader back: leader and ISR [1,2]={ok} after {:?}: {st:?}",
        t2.elapsed()
    ));
    assert!(ok, "{st:?}\n{}", tails(&[&*lead, &*foll]));
    kafka_raw::wait_leader(lead.addr(), topic, 0).expect("leader");
    let (code, hw, recs) = fetch_all(lead.addr(), topic, 0);
    let mut want: Vec<(i64, String)> = (0..5).map(|i| (i, format!("both-{i}"))).collect();
    want.extend((5..8).map(|i| (i, format!("leader-only-{i}"))));
    assert_eq!((code, hw, values(&recs)), (0, 8, want.clone()));
    // And the follower really has it: it leads once the leader stops.
    lead.terminate().expect("terminate leader");
    kafka_raw::wait_leader(foll.addr(), topic, 0).expect("follower leads");
    let (code, hw, recs) = fetch_all(foll.addr(), topic, 0);
    assert_eq!(
        (code, hw, values(&recs)),
        (0, 8, want),
        "the former follower {follower} after catching up and taking over"
    );
}

// ---------------------------------------------------------------------------
// 3b. A divergent tail is truncated.

/// The leader (A) takes acks=1 writes its follower (B, frozen with SIGSTOP
/// for less than the lag and session timeouts, so it stays in the ISR) never
/// fetched, then dies; B is elected and takes other writes at the same
/// offsets; A returns and must drop its tail (OffsetForLeaderEpoch), copy
/// B's, rejoin the ISR, and never serve its old tail, even as leader again.
#[test]
fn divergent_tail_is_truncated() {
    let clock = Clock::new();
    let coord = coordinator();
    let zkc = Zk::connect(coord.addr());
    let mut b1 = repl_broker(&coord, 1, &[]);
    let mut b2 = repl_broker(&coord, 2, &[]);
    wait_brokers(b1.addr(), &[1, 2]);
    wait_brokers(b2.addr(), &[1, 2]);
    let topic = "diverge";
    let mut c = KafkaConn::connect(b1.addr()).expect("connect");
    let (code, msg) = kafka_raw::create_topic(&mut c, topic, 1, 2, &[]).expect("CreateTopics");
    assert_eq!(code, 0, "{msg:?}");
    let mut st = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            st = zkc.state(topic, 0);
            matches!(&st, Some((l, _, isr)) if *l > 0 && isr == &[1, 2])
        }),
        "{st:?}"
    );
    let (a_id, epoch0, _) = st.clone().expect("partition state");
    let b_id = 3 - a_id;
    let (a, b) = if a_id == 1 {
        (&mut b1, &mut b2)
    } else {
        (&mut b2, &mut b1)
    };
    kafka_raw::wait_leader(a.addr(), topic, 0).expect("leader");
    for i in 0..10 {
        let v = format!("common-{i}");
        assert_eq!(
            produce(a.addr(), topic, 0, -1, &[v.as_bytes()]).expect("produce"),
            (0, i)
        );
    }
    // B is in sync (acks=all went through). Freeze it, let its pending
    // replica fetch (max wait 500 ms) be answered empty, write on A only.
    signal(b, "-STOP");
    let t0 = Instant::now();
    thread::sleep(Duration::from_millis(1200));
    for i in 10..15 {
        let v = format!("a-only-{i}");
        assert_eq!(
            produce(a.addr(), topic, 0, 1, &[v.as_bytes()]).expect("produce"),
            (0, i),
            "acks=1 on A with B frozen"
        );
    }
    a.kill9().expect("kill -9 A");
    signal(b, "-CONT");
    clock.log(format!(
        "B ({b_id}) frozen for {:?}; A ({a_id}) wrote a-only-10..14 and was killed",
        t0.elapsed()
    ));
    let elected = wait_until(Duration::from_secs(30), || {
        st = zkc.state(topic, 0);
        matches!(&st, Some((l, _, _)) if *l == b_id)
    });
    clock.log(format!(
        "B elected={elected} after {:?}: {st:?}",
        t0.elapsed()
    ));
    assert!(
        elected,
        "B ({b_id}, in the ISR) never took over {topic}-0 from the dead A: {st:?}\n{}",
        b.stderr_tail(40)
    );
    assert!(
        st.as_ref().expect("partition state").1 > epoch0,
        "leader epoch did not grow: {st:?}"
    );
    kafka_raw::wait_leader(b.addr(), topic, 0).expect("B leads");
    let lo = KafkaConn::connect(b.addr())
        .and_then(|mut c| kafka_raw::list_offset(&mut c, topic, 0, -1))
        .expect("list offsets");
    assert_eq!(
        lo,
        (0, 10),
        "B's log end: it was frozen before A's acks=1 writes at 10..14 (if not 10, this \
         scenario did not diverge)"
    );
    for i in 10..13 {
        let v = format!("b-{i}");
        assert_eq!(
            produce(b.addr(), topic, 0, 1, &[v.as_bytes()]).expect("produce"),
            (0, i),
            "acks=1 on the new leader B"
        );
    }
    // A returns with its divergent tail. (Eddy may at once hand leadership
    // back to A, its preferred replica, once A is in the ISR; Kafka would
    // wait for leader.imbalance.check.interval.seconds. Either is checked.)
    a.restart().expect("restart A");
    let t1 = Instant::now();
    let rejoined = wait_until(Duration::from_secs(60), || {
        st = zkc.state(topic, 0);
        matches!(&st, Some((l, _, isr)) if *l > 0 && isr == &[1, 2])
    });
    clock.log(format!(
        "A rejoined the ISR={rejoined} after {:?}: {st:?}",
        t1.elapsed()
    ));
    assert!(rejoined, "{st:?}\n{}", tails(&[&*a, &*b]));
    let mut want: Vec<(i64, String)> = (0..10).map(|i| (i, format!("common-{i}"))).collect();
    want.extend((10..13).map(|i| (i, format!("b-{i}"))));
    let first = st.as_ref().expect("partition state").0;
    let (first_b, second_b) = if first == a_id {
        (&mut *a, &mut *b)
    } else {
        (&mut *b, &mut *a)
    };
    let second = 3 - first;
    kafka_raw::wait_leader(first_b.addr(), topic, 0).expect("leader");
    let (code, hw, on_first) = fetch_all(first_b.addr(), topic, 0);
    assert_eq!(
        (code, hw, values(&on_first)),
        (0, 13, want.clone()),
        "{topic}-0 from its leader {first} once A ({a_id}) rejoined (B is {b_id})\n{}",
        tails(&[&*first_b, &*second_b])
    );

    // The other replica leads: it must serve the same log, none of a-only-*.
    first_b.terminate().expect("terminate the leader");
    let t2 = Instant::now();
    let ok = wait_until(Duration::from_secs(30), || {
        st = zkc.state(topic, 0);
        matches!(&st, Some((l, _, _)) if *l == second)
    });
    assert!(
        ok,
        "{second} never led after {first} stopped: {st:?}\n{}",
        second_b.stderr_tail(40)
    );
    kafka_raw::wait_leader(second_b.addr(), topic, 0).expect("second leads");
    clock.log(format!("{second} leads after {:?}: {st:?}", t2.elapsed()));
    let (code, hw, on_second) = fetch_all(second_b.addr(), topic, 0);
    let lo = KafkaConn::connect(second_b.addr())
        .and_then(|mut c| kafka_raw::list_offset(&mut c, topic, 0, -1))
        .expect("list offsets");
    assert_eq!(
        (code, hw, values(&on_second)),
        (0, 13, want),
        "{topic}-0 on broker {second} (A is {a_id}) after truncation/catch-up (ListOffsets latest {lo:?})\n{}",
        second_b.stderr_tail(40)
    );
    assert_eq!(lo, (0, 13), "log end of {second}");
    let (on_a, on_b) = if first == a_id {
        (on_first, on_second)
    } else {
        (on_second, on_first)
    };
    // Byte-identical batches: the follower appends them as the leader wrote them.
    assert_eq!(
        on_a, on_b,
        "records differ between A (after truncation) and B"
    );
    let seg = |k: &KafkaBroker| {
        std::fs::read(
            k.log_dir()
                .join(format!("{topic}-0"))
                .join("00000000000000000000.log"),
        )
        .unwrap_or_default()
    };
    // One stopped cleanly, the other is idle.
    let (sa, sb) = (seg(a), seg(b));
    clock.log(format!(
        "segment sizes: A {} bytes, B {} bytes",
        sa.len(),
        sb.len()
    ));
    assert!(
        sa == sb,
        "the segment files differ: A {} bytes, B {} bytes (first difference at byte {:?})",
        sa.len(),
        sb.len(),
        sa.iter().zip(&sb).position(|(x, y)| x != y)
    );
}
