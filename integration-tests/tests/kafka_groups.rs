//! Consumer groups (the classic protocol: FindCoordinator, Join/Sync/Heartbeat/
//! LeaveGroup, OffsetCommit/OffsetFetch) driven by real clients:
//!
//! 1. the seed article's Go consumer (confluent-kafka-go, Debian's packages,
//!    built in GOPATH mode from `go/seed_consumer/main.go`);
//! 2. two, then three, then two members of one group on a six-partition topic
//!    (confluent-kafka from Debian and PyPI, kafka-python 3.x), fed while they
//!    join and leave: every message consumed exactly once by the group; a member
//!    killed with SIGKILL expires and its partitions move to the survivor;
//! 3. at-least-once: a member that crashes before committing has its messages
//!    delivered again, one that committed has not;
//! 4. committed offsets survive a broker restart (SIGTERM and SIGKILL) and the
//!    group resumes from them;
//! 5. kcat's balanced consumer (`-G`);
//!
//! and beyond the issue's list: cooperative-sticky and static members, members
//! riding out a broker restart, offsets of a deleted topic, raw OffsetCommit/
//! OffsetFetch edge cases, members that vanish mid-protocol, and coordinator
//! failover between two brokers (which also turned up acks=all data loss on a
//! replicated topic, `acks_all_messages_survive_leader_failover`).
//!
//! The Python members live in `py/kafka_group_member.py` (records every message
//! to a file before committing it synchronously) and `py/kafka_group_produce.py`
//! (numbered messages `m000000`, `m000001`, ..., message i to partition
//! i % partitions). Committed offsets are read back with a raw OffsetFetch.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use integration_tests::kafka::{self, BrokerOpts, KafkaBroker};
use integration_tests::kafka_raw::{self, str_bytes, topic_name, KafkaConn};
use integration_tests::{run_with_timeout, wait_until, workspace_root};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, ListGroupsRequest,
    ListGroupsResponse, OffsetFetchRequest, OffsetFetchResponse,
};

const KCAT: &str = "/usr/bin/kcat";
/// Upper bound for a script that runs to completion.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// The members' session timeout (the broker's default minimum).
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// A broker for group tests: no initial rebalance delay (Kafka's default of
/// 3 s would only slow every first join down), and a short coordinator session
/// so a broker killed with SIGKILL can lead again soon after restarting.
fn group_broker() -> KafkaBroker {
    KafkaBroker::spawn(
        BrokerOpts::default()
            .with("group.initial.rebalance.delay.ms", 0)
            .with("zookeeper.session.timeout.ms", 6000),
    )
    .expect("start broker")
}

// ---------------------------------------------------------------------------
// Child processes whose output the test watches.

/// A client process running alongside the test. Its stdout and stderr lines
/// are collected (by two threads) into one list the test polls.
struct Proc {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Proc {
    fn spawn(what: impl Into<String>, mut cmd: Command) -> Proc {
        let what = what.into();
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: spawning {cmd:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for (stream, prefix) in [(out, ""), (err, "stderr: ")] {
            let all = Arc::clone(&lines);
            readers.push(thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    all.lock().expect("lines").push(format!("{prefix}{line}"));
                }
            }));
        }
        Proc {
            what,
            stdin: child.stdin.take(),
            child,
            lines,
            readers,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    fn output(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits until `cond` holds for the lines printed so far; panics with the
    /// output and the broker's log on timeout or if the process exited first.
    fn wait(
        &mut self,
        broker: &KafkaBroker,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&[String]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(&self.lines()) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // Let the readers drain what it printed last.
                thread::sleep(Duration::from_millis(200));
                if cond(&self.lines()) {
                    return;
                }
                panic!(
                    "{}: exited ({st}) before {what}:\n{}\n--- broker ---\n{}",
                    self.what,
                    self.output(),
                    broker.stderr_tail(60)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: not {what} within {timeout:?}:\n{}\n--- broker ---\n{}",
                    self.what,
                    self.output(),
                    broker.stderr_tail(60)
                );
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    fn send(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    /// Waits for the process to exit (stdin closed first); returns its status.
    fn wait_exit(&mut self, broker: &KafkaBroker, timeout: Duration) -> ExitStatus {
        self.stdin.take();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("waiting for the child") {
                break st;
            }
            if Instant::now() >= deadline {
                self.kill9();
                panic!(
                    "{}: did not finish within {timeout:?}:\n{}\n--- broker ---\n{}",
                    self.what,
                    self.output(),
                    broker.stderr_tail(60)
                );
            }
            thread::sleep(Duration::from_millis(25));
        };
        for r in std::mem::take(&mut self.readers) {
            let _ = r.join();
        }
        status
    }

    /// Waits for the process to exit; returns its status and output.
    fn finish(mut self, broker: &KafkaBroker, timeout: Duration) -> (ExitStatus, String) {
        let st = self.wait_exit(broker, timeout);
        (st, self.output())
    }

    /// Waits for exit; the script must have printed its `OK` line.
    fn exit_ok(&mut self, broker: &KafkaBroker, timeout: Duration) {
        let status = self.wait_exit(broker, timeout);
        let out = self.output();
        assert!(
            status.success() && out.lines().any(|l| l.starts_with("OK ")),
            "{}: failed ({status}):\n{out}\n--- broker ---\n{}",
            self.what,
            broker.stderr_tail(60)
        );
    }

    /// `finish`, and the script must have printed its `OK` line.
    fn finish_ok(self, broker: &KafkaBroker, timeout: Duration) -> String {
        let what = self.what.clone();
        let (status, out) = self.finish(broker, timeout);
        assert!(
            status.success() && out.lines().any(|l| l.starts_with("OK ")),
            "{what}: failed ({status}):\n{out}\n--- broker ---\n{}",
            broker.stderr_tail(60)
        );
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Python clients.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Py {
    /// /usr/bin/python3: confluent-kafka 1.7.0 (librdkafka 2.0.2), kafka-python 2.0.2.
    Debian,
    /// The PyPI venv: confluent-kafka 2.x, kafka-python 3.x.
    Pypi,
}

impl Py {
    fn python(self) -> PathBuf {
        let p = match self {
            Py::Debian => PathBuf::from(kafka::DEBIAN_PYTHON),
            Py::Pypi => kafka::pypi_python(),
        };
        assert!(
            p.exists(),
            "{self:?} Python not found at {} (Debian: apt python3-confluent-kafka python3-kafka; \
             PyPI: the .venv-clients venv .ci/run makes, or set PYPI_PYTHON)",
            p.display()
        );
        p
    }

    fn command(self, script: &str, args: &[&str]) -> Command {
        let dir = kafka::py_dir();
        let mut cmd = Command::new(self.python());
        cmd.current_dir(&dir)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg("-u")
            .arg(dir.join(script))
            .args(args);
        cmd
    }
}

/// A group member: which interpreter and which library.
#[derive(Clone, Copy, Debug)]
struct Lib(Py, &'static str);

const CK_DEBIAN: Lib = Lib(Py::Debian, "ck");
const CK_PYPI: Lib = Lib(Py::Pypi, "ck");
const KP_DEBIAN: Lib = Lib(Py::Debian, "kp");
const KP_PYPI: Lib = Lib(Py::Pypi, "kp");

fn run_py(broker: &KafkaBroker, py: Py, script: &str, args: &[&str]) -> String {
    let bootstrap = broker.bootstrap();
    let mut all = vec![bootstrap.as_str()];
    all.extend_from_slice(args);
    let cmd = py.command(script, &all);
    let (status, out) = run_with_timeout(cmd, "", SCRIPT_TIMEOUT).unwrap_or_else(|e| {
        panic!(
            "{py:?} {script} {all:?}: {e:#}\n--- broker ---\n{}",
            broker.stderr_tail(60)
        )
    });
    assert!(
        status.success() && out.lines().any(|l| l.starts_with("OK ")),
        "{py:?} {script} {all:?} failed ({status}):\n{out}\n--- broker ---\n{}",
        broker.stderr_tail(60)
    );
    out
}

fn create_topic(broker: &KafkaBroker, topic: &str, partitions: i32) {
    run_py(
        broker,
        Py::Pypi,
        "kafka_group_produce.py",
        &["create", topic, &partitions.to_string()],
    );
}

/// Produces `m<first>` .. `m<first+count-1>`, message i to partition i % partitions.
fn produce(broker: &KafkaBroker, topic: &str, partitions: i32, first: u64, count: u64) {
    run_py(
        broker,
        Py::Pypi,
        "kafka_group_produce.py",
        &[
            "produce",
            topic,
            &partitions.to_string(),
            &first.to_string(),
            &count.to_string(),
        ],
    );
}

fn value(i: u64) -> String {
    format!("m{i:06}")
}

/// One member process and the file it records its messages to.
struct Member {
    name: String,
    proc: Proc,
    records: PathBuf,
}

impl Member {
    fn spawn(
        lib: Lib,
        broker: &KafkaBroker,
        dir: &Path,
        name: &str,
        topic: &str,
        group: &str,
        commit: &str,
    ) -> Member {
        Self::spawn_with(lib, broker, dir, name, topic, group, commit, "")
    }

    /// With extra confluent-kafka configuration, `k=v,k=v`.
    #[allow(clippy::too_many_arguments)]
    fn spawn_with(
        lib: Lib,
        broker: &KafkaBroker,
        dir: &Path,
        name: &str,
        topic: &str,
        group: &str,
        commit: &str,
        extra: &str,
    ) -> Member {
        let records = dir.join(format!("{name}.records"));
        let bootstrap = broker.bootstrap();
        let cmd = lib.0.command(
            "kafka_group_member.py",
            &[
                &bootstrap,
                lib.1,
                topic,
                group,
                records.to_str().expect("utf-8 temp path"),
                commit,
                name,
                extra,
            ],
        );
        Member {
            name: name.to_owned(),
            proc: Proc::spawn(
                format!("member {name} ({lib:?}, commit {commit} {extra})"),
                cmd,
            ),
            records,
        }
    }

    /// The partitions of its latest `ASSIGNED` line, or `None` while it has none
    /// (not assigned yet, or revoked and not assigned again).
    fn assignment(&self) -> Option<BTreeSet<i32>> {
        let mut cur = None;
        for l in self.proc.lines() {
            if let Some(ps) = l.strip_prefix("ASSIGNED ") {
                cur = Some(
                    ps.trim()
                        .split(',')
                        .filter(|p| *p != "-" && !p.is_empty())
                        .map(|p| p.parse().expect("partition number"))
                        .collect(),
                );
            } else if l.starts_with("REVOKED ") {
                cur = None;
            }
        }
        cur
    }

    /// Every value it recorded, in order, with (partition, offset).
    fn records(&self) -> Vec<(String, i32, i64)> {
        read_records(&self.records)
    }

    fn commit_failures(&self) -> Vec<String> {
        self.proc
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("COMMIT_FAILED"))
            .collect()
    }
}

fn read_records(path: &Path) -> Vec<(String, i32, i64)> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let v = it.next()?.to_owned();
            let p = it.next()?.parse().ok()?;
            let o = it.next()?.parse().ok()?;
            Some((v, p, o))
        })
        .collect()
}

/// How often each value was recorded across `members`.
fn tally(members: &[&Member]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in members {
        for (v, p, o) in m.records() {
            out.entry(v)
                .or_default()
                .push(format!("{}@{p}/{o}", m.name));
        }
    }
    out
}

/// A description of every member's state, for failure messages.
fn describe(members: &[&Member]) -> String {
    let mut s = String::new();
    for m in members {
        s.push_str(&format!(
            "--- {} ({}): assignment {:?}, {} records, commit failures {:?}\n{}\n",
            m.name,
            m.proc.what,
            m.assignment(),
            m.records().len(),
            m.commit_failures(),
            last_lines(
                &m.proc
                    .lines()
                    .into_iter()
                    .filter(|l| !l.starts_with("CONSUMED "))
                    .collect::<Vec<_>>()
                    .join("\n"),
                40
            )
        ));
    }
    s
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// True once every member of `live` holds a non-empty assignment, the
/// assignments are disjoint and together cover `0..partitions`.
fn balanced(live: &[&Member], partitions: i32) -> bool {
    let mut all = BTreeSet::new();
    for m in live {
        match m.assignment() {
            Some(a) if !a.is_empty() => {
                for p in a {
                    if !all.insert(p) {
                        return false;
                    }
                }
            }
            _ => return false,
        }
    }
    all == (0..partitions).collect()
}

fn wait_balanced(
    broker: &KafkaBroker,
    live: &[&Member],
    all: &[&Member],
    partitions: i32,
    timeout: Duration,
    what: &str,
) -> Duration {
    let start = Instant::now();
    assert!(
        wait_until(timeout, || balanced(live, partitions)),
        "group not balanced over {:?} within {timeout:?} ({what}):\n{}\n--- broker ---\n{}",
        live.iter().map(|m| &m.name).collect::<Vec<_>>(),
        describe(all),
        broker.stderr_tail(80)
    );
    start.elapsed()
}

/// Waits until the members together recorded every value in `want`.
fn wait_consumed(
    broker: &KafkaBroker,
    all: &[&Member],
    want: std::ops::Range<u64>,
    timeout: Duration,
) {
    let ok = wait_until(timeout, || {
        let t = tally(all);
        want.clone().all(|i| t.contains_key(&value(i)))
    });
    if !ok {
        let t = tally(all);
        let missing: Vec<String> = want
            .clone()
            .map(value)
            .filter(|v| !t.contains_key(v))
            .collect();
        panic!(
            "{} of {} messages not consumed by the group within {timeout:?}, e.g. {:?}\n{}\n--- broker ---\n{}",
            missing.len(),
            want.end - want.start,
            &missing[..missing.len().min(20)],
            describe(all),
            broker.stderr_tail(80)
        );
    }
}

fn assert_exactly_once(broker: &KafkaBroker, all: &[&Member], want: std::ops::Range<u64>) {
    let t = tally(all);
    let missing: Vec<String> = want
        .clone()
        .map(value)
        .filter(|v| !t.contains_key(v))
        .collect();
    let dups: Vec<(&String, &Vec<String>)> = t.iter().filter(|(_, who)| who.len() > 1).collect();
    let extra: Vec<&String> = t
        .keys()
        .filter(|v| !want.clone().any(|i| &value(i) == *v))
        .collect();
    assert!(
        missing.is_empty() && dups.is_empty() && extra.is_empty(),
        "group did not consume {}..{} exactly once: {} missing {:?}, {} duplicated {:?}, {} unexpected {:?}\n{}\n--- broker ---\n{}",
        value(want.start),
        value(want.end - 1),
        missing.len(),
        &missing[..missing.len().min(20)],
        dups.len(),
        &dups[..dups.len().min(20)],
        extra.len(),
        &extra[..extra.len().min(20)],
        describe(all),
        broker.stderr_tail(80)
    );
}

// ---------------------------------------------------------------------------
// Raw group requests.

/// FindCoordinator v2 for `group`: (error code, node id, host:port).
fn find_coordinator(addr: SocketAddr, group: &str) -> anyhow::Result<(i16, i32, String)> {
    let mut c = KafkaConn::connect(addr)?;
    let resp: FindCoordinatorResponse = c.send(
        2,
        &FindCoordinatorRequest::default()
            .with_key(str_bytes(group))
            .with_key_type(0),
    )?;
    Ok((
        resp.error_code,
        i32::from(resp.node_id),
        format!("{}:{}", resp.host.as_str(), resp.port),
    ))
}

/// OffsetFetch v5 of `topic`'s partitions `0..partitions` in `group`:
/// (top-level error, [(partition error, committed offset)]).
fn offset_fetch(
    addr: SocketAddr,
    group: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<(i16, Vec<(i16, i64)>)> {
    let mut c = KafkaConn::connect(addr)?;
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes((0..partitions).collect())]));
    let resp: OffsetFetchResponse = c.send(5, &req)?;
    let mut out = vec![(-1i16, i64::MIN); partitions as usize];
    for t in &resp.topics {
        anyhow::ensure!(
            t.name.0.as_str() == topic,
            "answer names topic {:?}",
            t.name
        );
        for p in &t.partitions {
            let i = usize::try_from(p.partition_index)?;
            anyhow::ensure!(
                i < out.len(),
                "answer names partition {}",
                p.partition_index
            );
            out[i] = (p.error_code, p.committed_offset);
        }
    }
    Ok((resp.error_code, out))
}

/// The committed offsets, once OffsetFetch answers without any error.
fn committed(addr: SocketAddr, group: &str, topic: &str, partitions: i32) -> Option<Vec<i64>> {
    match offset_fetch(addr, group, topic, partitions) {
        Ok((0, ps)) if ps.iter().all(|(e, _)| *e == 0) => {
            Some(ps.iter().map(|(_, o)| *o).collect())
        }
        _ => None,
    }
}

fn wait_committed(
    broker: &KafkaBroker,
    group: &str,
    topic: &str,
    want: &[i64],
    timeout: Duration,
    ctx: &str,
) {
    let addr = broker.addr();
    let n = want.len() as i32;
    let ok = wait_until(timeout, || {
        committed(addr, group, topic, n).as_deref() == Some(want)
    });
    assert!(
        ok,
        "{group}'s committed offsets of {topic} never became {want:?} within {timeout:?} ({ctx}); \
         OffsetFetch v5 answers {:?}\n--- broker ---\n{}",
        offset_fetch(addr, group, topic, n),
        broker.stderr_tail(60)
    );
}

/// ListGroups v2: [(group id, protocol type)].
fn list_groups(addr: SocketAddr) -> anyhow::Result<(i16, Vec<(String, String)>)> {
    let mut c = KafkaConn::connect(addr)?;
    let resp: ListGroupsResponse = c.send(2, &ListGroupsRequest::default())?;
    Ok((
        resp.error_code,
        resp.groups
            .iter()
            .map(|g| (g.group_id.0.to_string(), g.protocol_type.to_string()))
            .collect(),
    ))
}

// ---------------------------------------------------------------------------
// 1. The seed article's Go consumer.

/// Builds `go/seed_consumer/main.go` with only its bootstrap string rewritten
/// from "localhost" (the article's broker on the default port 9092) to
/// "localhost:<port>", in GOPATH mode against Debian's confluent-kafka-go
/// (/usr/share/gocode). The Go build cache is kept under target/ so later
/// runs only relink.
fn build_seed_consumer(port: u16, out_dir: &Path) -> PathBuf {
    let go = which("go").unwrap_or_else(|| {
        panic!(
            "`go` not found on PATH: the seed article's Go consumer needs Debian's golang-go and \
             golang-github-confluentinc-confluent-kafka-go-dev (.ci/run installs them: \
             apt-get install -y golang-go golang-github-confluentinc-confluent-kafka-go-dev)"
        )
    });
    let debian_gopath = Path::new("/usr/share/gocode");
    let pkg = debian_gopath.join("src/github.com/confluentinc/confluent-kafka-go/kafka");
    assert!(
        pkg.is_dir(),
        "{} missing: install golang-github-confluentinc-confluent-kafka-go-dev (see .ci/run)",
        pkg.display()
    );
    let src_path = workspace_root().join("integration-tests/go/seed_consumer/main.go");
    let src = fs::read_to_string(&src_path).expect("reading the seed consumer's source");
    let from = r#""bootstrap.servers": "localhost","#;
    assert_eq!(
        src.matches(from).count(),
        1,
        "{} must set bootstrap.servers to \"localhost\" once",
        src_path.display()
    );
    let patched = src.replace(
        from,
        &format!(r#""bootstrap.servers": "localhost:{port}","#),
    );
    let gopath = out_dir.join("gopath");
    let pkg_dir = gopath.join("src/seed_consumer");
    fs::create_dir_all(&pkg_dir).expect("temp GOPATH");
    fs::write(pkg_dir.join("main.go"), patched).expect("writing patched source");
    let cache = workspace_root().join("target/go-build-cache");
    fs::create_dir_all(&cache).expect("go build cache dir");
    let bin = out_dir.join("seed_consumer");
    let mut cmd = Command::new(go);
    cmd.current_dir(&pkg_dir)
        .env(
            "GOPATH",
            format!("{}:{}", gopath.display(), debian_gopath.display()),
        )
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", &cache)
        .args(["build", "-o"])
        .arg(&bin)
        .arg("seed_consumer");
    let (status, out) = run_with_timeout(cmd, "", Duration::from_secs(240)).expect("go build");
    assert!(
        status.success(),
        "go build of the seed consumer failed ({status}):\n{out}"
    );
    bin
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

#[test]
fn seed_article_go_consumer() {
    let broker = group_broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = build_seed_consumer(broker.addr().port(), dir.path());
    let topic = "users.notification";
    // As in the article: the topic is not created beforehand; the producer's
    // first message auto-creates it.
    let addr = broker.addr();
    kafka_raw::wait_registered(addr).expect("broker registered");
    let mut cmd = Command::new(KCAT);
    cmd.args(["-b", &addr.to_string(), "-P", "-t", topic]);
    let (st, out) = run_with_timeout(cmd, "hello\n", SCRIPT_TIMEOUT).expect("kcat -P");
    assert!(st.success(), "kcat -P failed: {out}");

    let mut c = Proc::spawn("seed article's Go consumer", Command::new(&bin));
    // The article's output for its message:
    //   Topic :  users.notification / Partition :  0 / Offset :  1 / Value :  hello
    // (its broker had one earlier message; here "hello" is the first, offset 0).
    c.wait(
        &broker,
        Duration::from_secs(45),
        "printing the message",
        |ls| {
            let s = ls.join("\n");
            s.contains("Topic :  users.notification\nPartition :  0\nOffset :  0\nValue :  hello")
        },
    );
    // A second message while it waits in ReadMessage(-1).
    let mut cmd = Command::new(KCAT);
    cmd.args(["-b", &addr.to_string(), "-P", "-t", topic]);
    let (st, out) = run_with_timeout(cmd, "world\n", SCRIPT_TIMEOUT).expect("kcat -P");
    assert!(st.success(), "kcat -P failed: {out}");
    c.wait(
        &broker,
        Duration::from_secs(30),
        "printing the second message",
        |ls| {
            ls.join("\n").contains(
                "Topic :  users.notification\nPartition :  0\nOffset :  1\nValue :  world",
            )
        },
    );
    let out = c.output();
    let stdout: Vec<String> = c
        .lines()
        .into_iter()
        .filter(|l| !l.starts_with("stderr: "))
        .collect();
    assert_eq!(
        stdout.first().map(String::as_str),
        Some("Waiting for messages..."),
        "the article's first line:\n{out}"
    );
    // `localhost` may also resolve to ::1, where nothing listens: librdkafka
    // reports such connection attempts, which says nothing about the broker.
    let errors: Vec<&String> = stdout
        .iter()
        .filter(|l| l.starts_with("Consumer error"))
        .filter(|l| !(l.contains("Connection refused") || l.contains("brokers are down")))
        .collect();
    assert!(
        errors.is_empty(),
        "the consumer reported errors {errors:?}:\n{out}"
    );
    // It joined the article's group, whose coordinator is this broker.
    let (code, _node, hostport) =
        find_coordinator(addr, "notification_service").expect("FindCoordinator");
    assert_eq!(
        (code, hostport.as_str()),
        (0, addr.to_string().as_str()),
        "FindCoordinator(notification_service)"
    );
    c.kill9();
}

// ---------------------------------------------------------------------------
// 2. Members join and leave while messages flow: exactly once per group.

#[test]
fn group_members_join_leave_and_expire() {
    const PARTS: i32 = 6;
    let broker = group_broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let (topic, group) = ("numbers", "numbers-group");
    create_topic(&broker, topic, PARTS);
    let bootstrap = broker.bootstrap();
    let spawn = |lib, name| Member::spawn(lib, &broker, dir.path(), name, topic, group, "sync");

    // Two members, confluent-kafka 2.x and kafka-python 3.x (PyPI).
    let mut a = spawn(CK_PYPI, "a");
    let mut b = spawn(KP_PYPI, "b");
    wait_balanced(
        &broker,
        &[&a, &b],
        &[&a, &b],
        PARTS,
        Duration::from_secs(40),
        "a and b joined",
    );

    // Messages flow from here on, through every membership change.
    let mut producer = Proc::spawn(
        "stream producer",
        Py::Pypi.command(
            "kafka_group_produce.py",
            &[&bootstrap, "stream", topic, &PARTS.to_string(), "0"],
        ),
    );
    producer.wait(&broker, Duration::from_secs(30), "producing 150", |ls| {
        ls.iter().any(|l| l == "PRODUCED 150")
    });

    // A third member, confluent-kafka 1.7 (Debian's librdkafka 2.0.2).
    let mut c = spawn(CK_DEBIAN, "c");
    wait_balanced(
        &broker,
        &[&a, &b, &c],
        &[&a, &b, &c],
        PARTS,
        Duration::from_secs(40),
        "c joined",
    );
    let seen = producer.lines().len();
    producer.wait(&broker, Duration::from_secs(30), "producing more", |ls| {
        ls.len() >= seen + 4
    });

    // a leaves cleanly (LeaveGroup).
    a.proc.send("STOP");
    wait_balanced(
        &broker,
        &[&b, &c],
        &[&a, &b, &c],
        PARTS,
        Duration::from_secs(40),
        "a left",
    );
    let seen = producer.lines().len();
    producer.wait(&broker, Duration::from_secs(30), "producing more", |ls| {
        ls.len() >= seen + 4
    });

    producer.send("STOP");
    let out = producer.finish_ok(&broker, SCRIPT_TIMEOUT);
    let next: u64 = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("OK ")?
                .rsplit_once("next ")?
                .1
                .trim()
                .parse()
                .ok()
        })
        .expect("the producer's next number");
    wait_consumed(&broker, &[&a, &b, &c], 0..next, Duration::from_secs(40));
    a.proc.exit_ok(&broker, SCRIPT_TIMEOUT);
    assert_exactly_once(&broker, &[&a, &b, &c], 0..next);
    assert!(
        !a.records().is_empty() && !b.records().is_empty() && !c.records().is_empty(),
        "every member should have consumed something:\n{}",
        describe(&[&a, &b, &c])
    );

    // Everything consumed is committed: committed offset = log end per partition.
    let per = |n: u64, p: i32| ((n + (PARTS as u64 - 1) - p as u64) / PARTS as u64) as i64;
    let want: Vec<i64> = (0..PARTS).map(|p| per(next, p)).collect();
    wait_committed(
        &broker,
        group,
        topic,
        &want,
        Duration::from_secs(20),
        "all consumed",
    );

    // b dies without a word: its session expires and c takes everything.
    b.proc.kill9();
    let killed = Instant::now();
    wait_balanced(
        &broker,
        &[&c],
        &[&a, &b, &c],
        PARTS,
        SESSION_TIMEOUT + Duration::from_secs(20),
        "b killed",
    );
    let took = killed.elapsed();
    eprintln!("partitions moved to c {took:?} after b was killed");
    produce(&broker, topic, PARTS, next, 60);
    wait_consumed(
        &broker,
        &[&a, &b, &c],
        0..next + 60,
        Duration::from_secs(30),
    );
    assert_exactly_once(&broker, &[&a, &b, &c], 0..next + 60);
    let want: Vec<i64> = (0..PARTS).map(|p| per(next + 60, p)).collect();
    wait_committed(
        &broker,
        group,
        topic,
        &want,
        Duration::from_secs(20),
        "after b expired",
    );
    c.proc.send("STOP");
    c.proc.exit_ok(&broker, SCRIPT_TIMEOUT);
}

/// The cooperative (incremental) protocol over the classic group requests:
/// librdkafka's cooperative-sticky members join and leave while messages
/// flow; exactly once per group again. Members keep consuming (and
/// committing) during a cooperative rebalance, so some commits meet the next
/// generation and fail with ILLEGAL_GENERATION, as they do with Kafka; the
/// member commits those offsets again when the partition is revoked. Only
/// PyPI's librdkafka 2.16 takes part: librdkafka before 2.10 (Debian's 2.0.2)
/// treats that ILLEGAL_GENERATION as the assignment lost and rejoins without
/// committing (confluentinc/librdkafka#4059, fixed by #4908), which
/// duplicates messages against any broker.
#[test]
fn cooperative_sticky_members_exactly_once() {
    const PARTS: i32 = 6;
    let broker = group_broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let (topic, group) = ("coop", "coop-group");
    create_topic(&broker, topic, PARTS);
    let bootstrap = broker.bootstrap();
    let coop = "partition.assignment.strategy=cooperative-sticky";
    let spawn =
        |lib, name| Member::spawn_with(lib, &broker, dir.path(), name, topic, group, "sync", coop);
    let mut a = spawn(CK_PYPI, "a");
    wait_balanced(
        &broker,
        &[&a],
        &[&a],
        PARTS,
        Duration::from_secs(40),
        "a joined",
    );
    let mut producer = Proc::spawn(
        "stream producer",
        Py::Pypi.command(
            "kafka_group_produce.py",
            &[&bootstrap, "stream", topic, &PARTS.to_string(), "0"],
        ),
    );
    producer.wait(&broker, Duration::from_secs(30), "producing 100", |ls| {
        ls.iter().any(|l| l == "PRODUCED 100")
    });
    let b = spawn(CK_PYPI, "b");
    wait_balanced(
        &broker,
        &[&a, &b],
        &[&a, &b],
        PARTS,
        Duration::from_secs(40),
        "b joined",
    );
    let c = spawn(CK_PYPI, "c");
    wait_balanced(
        &broker,
        &[&a, &b, &c],
        &[&a, &b, &c],
        PARTS,
        Duration::from_secs(40),
        "c joined",
    );
    let seen = producer.lines().len();
    producer.wait(&broker, Duration::from_secs(30), "producing more", |ls| {
        ls.len() >= seen + 4
    });
    a.proc.send("STOP");
    wait_balanced(
        &broker,
        &[&b, &c],
        &[&a, &b, &c],
        PARTS,
        Duration::from_secs(40),
        "a left",
    );
    let seen = producer.lines().len();
    producer.wait(&broker, Duration::from_secs(30), "producing more", |ls| {
        ls.len() >= seen + 4
    });
    producer.send("STOP");
    let out = producer.finish_ok(&broker, SCRIPT_TIMEOUT);
    let next: u64 = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("OK ")?
                .rsplit_once("next ")?
                .1
                .trim()
                .parse()
                .ok()
        })
        .expect("the producer's next number");
    wait_consumed(&broker, &[&a, &b, &c], 0..next, Duration::from_secs(40));
    a.proc.exit_ok(&broker, SCRIPT_TIMEOUT);
    assert_exactly_once(&broker, &[&a, &b, &c], 0..next);
}

/// Static membership (KIP-345, `group.instance.id`): a static member killed
/// with SIGKILL and started again with the same instance id before its session
/// expires takes its old place, with its old partitions, without a rebalance
/// of the others.
#[test]
fn static_member_restart_without_rebalance() {
    const PARTS: i32 = 4;
    let broker = group_broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let (topic, group) = ("static", "static-group");
    create_topic(&broker, topic, PARTS);
    // A long session, so that only the static rejoin can explain a quick return.
    let conf = |id: &str| format!("group.instance.id={id},session.timeout.ms=30000");
    let s1 = Member::spawn_with(
        CK_PYPI,
        &broker,
        dir.path(),
        "s1",
        topic,
        group,
        "sync",
        &conf("s1"),
    );
    let s2 = Member::spawn_with(
        CK_PYPI,
        &broker,
        dir.path(),
        "s2",
        topic,
        group,
        "sync",
        &conf("s2"),
    );
    wait_balanced(
        &broker,
        &[&s1, &s2],
        &[&s1, &s2],
        PARTS,
        Duration::from_secs(40),
        "s1 and s2 joined",
    );
    produce(&broker, topic, PARTS, 0, 40);
    wait_consumed(&broker, &[&s1, &s2], 0..40, Duration::from_secs(30));
    wait_committed(
        &broker,
        group,
        topic,
        &[10; 4],
        Duration::from_secs(20),
        "all consumed",
    );
    let before = s1.assignment().expect("s1's assignment");
    let s2_lines = s2.proc.lines().len();
    let mut s1 = s1;
    s1.proc.kill9();
    let started = Instant::now();
    let s1b = Member::spawn_with(
        CK_PYPI,
        &broker,
        dir.path(),
        "s1-again",
        topic,
        group,
        "sync",
        &conf("s1"),
    );
    wait_balanced(
        &broker,
        &[&s1b, &s2],
        &[&s1, &s1b, &s2],
        PARTS,
        Duration::from_secs(25),
        "s1 came back",
    );
    let took = started.elapsed();
    assert_eq!(
        s1b.assignment(),
        Some(before.clone()),
        "the static member should get its old partitions back"
    );
    let s2_new: Vec<String> = s2.proc.lines()[s2_lines..].to_vec();
    assert!(
        !s2_new.iter().any(|l| l.starts_with("REVOKED") || l.starts_with("ASSIGNED")),
        "s2 was rebalanced when static member s1 rejoined ({took:?} after the kill):\n{}\n--- broker ---\n{}",
        s2_new.join("\n"),
        broker.stderr_tail(60)
    );
    produce(&broker, topic, PARTS, 40, 40);
    wait_consumed(&broker, &[&s1, &s1b, &s2], 0..80, Duration::from_secs(30));
    assert_exactly_once(&broker, &[&s1, &s1b, &s2], 0..80);
}

// ---------------------------------------------------------------------------
// 3. At-least-once: uncommitted messages come again after a crash.

fn at_least_once(lib: Lib) {
    const PARTS: i32 = 3;
    let broker = group_broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let (topic, group) = ("alo", "alo-group");
    create_topic(&broker, topic, PARTS);
    produce(&broker, topic, PARTS, 0, 30);

    // x reads everything but never commits, then crashes.
    let mut x = Member::spawn(lib, &broker, dir.path(), "x", topic, group, "none");
    x.proc
        .wait(&broker, Duration::from_secs(40), "consuming 30", |_| {
            read_records(&dir.path().join("x.records")).len() >= 30
        });
    x.proc.kill9();
    let xs: BTreeSet<String> = x.records().into_iter().map(|r| r.0).collect();
    assert_eq!(xs, (0..30).map(value).collect(), "x's records");
    assert_eq!(
        committed(broker.addr(), group, topic, PARTS),
        Some(vec![-1; PARTS as usize]),
        "nothing was committed, so OffsetFetch should answer -1 for every partition"
    );

    // y, same group: gets all 30 again; commits each, then crashes.
    let mut y = Member::spawn(lib, &broker, dir.path(), "y", topic, group, "sync");
    y.proc.wait(
        &broker,
        SESSION_TIMEOUT + Duration::from_secs(40),
        "consuming 30 again",
        |_| read_records(&dir.path().join("y.records")).len() >= 30,
    );
    wait_committed(
        &broker,
        group,
        topic,
        &[10, 10, 10],
        Duration::from_secs(20),
        "y committed all",
    );
    y.proc.kill9();
    assert_exactly_once(&broker, &[&y], 0..30);

    // z, same group: only what came after y's commits.
    produce(&broker, topic, PARTS, 30, 6);
    let mut z = Member::spawn(lib, &broker, dir.path(), "z", topic, group, "sync");
    z.proc.wait(
        &broker,
        SESSION_TIMEOUT + Duration::from_secs(40),
        "consuming the 6 new ones",
        |_| read_records(&dir.path().join("z.records")).len() >= 6,
    );
    wait_committed(
        &broker,
        group,
        topic,
        &[12, 12, 12],
        Duration::from_secs(20),
        "z committed",
    );
    assert_exactly_once(&broker, &[&z], 30..36);
    z.proc.send("STOP");
    z.proc.exit_ok(&broker, SCRIPT_TIMEOUT);
}

#[test]
fn at_least_once_confluent_pypi() {
    at_least_once(CK_PYPI);
}

#[test]
fn at_least_once_confluent_debian() {
    at_least_once(CK_DEBIAN);
}

#[test]
fn at_least_once_kafka_python_pypi() {
    at_least_once(KP_PYPI);
}

#[test]
fn at_least_once_kafka_python_debian() {
    at_least_once(KP_DEBIAN);
}

// ---------------------------------------------------------------------------
// 4. Committed offsets survive a broker restart.

fn offsets_survive(kill9: bool) {
    const PARTS: i32 = 3;
    let mut broker = group_broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let (topic, group) = ("kept", "kept-group");
    create_topic(&broker, topic, PARTS);
    produce(&broker, topic, PARTS, 0, 30);
    let mut a = Member::spawn(CK_PYPI, &broker, dir.path(), "a", topic, group, "sync");
    wait_committed(
        &broker,
        group,
        topic,
        &[10, 10, 10],
        Duration::from_secs(40),
        "a consumed 30",
    );
    a.proc.send("STOP");
    a.proc.exit_ok(&broker, SCRIPT_TIMEOUT);
    // More messages that nobody in the group has seen yet.
    produce(&broker, topic, PARTS, 30, 15);

    let bootstrap = broker.bootstrap();
    if kill9 {
        broker.kill9().expect("kill -9 the broker");
    }
    broker
        .restart()
        .unwrap_or_else(|e| panic!("restarting the broker: {e:#}\n{}", broker.stderr_tail(50)));
    assert_eq!(
        broker.bootstrap(),
        bootstrap,
        "broker came back on another port"
    );

    // OffsetFetch after the restart: exactly what was committed.
    let addr = broker.addr();
    let mut last = None;
    let ok = wait_until(Duration::from_secs(40), || {
        last = Some(offset_fetch(addr, group, topic, PARTS).map_err(|e| format!("{e:#}")));
        matches!(&last, Some(Ok((0, ps))) if ps.iter().all(|(e, _)| *e == 0))
    });
    assert!(
        ok,
        "OffsetFetch never answered without error after the restart: {last:?}\n{}",
        broker.stderr_tail(60)
    );
    assert_eq!(
        committed(addr, group, topic, PARTS),
        Some(vec![10, 10, 10]),
        "committed offsets after the restart"
    );
    // Kafka lists a group that has committed offsets (state Empty) after a restart.
    let groups = list_groups(addr).expect("ListGroups");
    assert!(
        groups.0 == 0 && groups.1.iter().any(|(g, _)| g == group),
        "ListGroups v2 after the restart should list {group}: {groups:?}"
    );

    // A new member (kafka-python 3.x) resumes from there: exactly m30..m44.
    let mut b = Member::spawn(KP_PYPI, &broker, dir.path(), "b", topic, group, "sync");
    wait_committed(
        &broker,
        group,
        topic,
        &[15, 15, 15],
        Duration::from_secs(40),
        "b consumed the rest",
    );
    b.proc.send("STOP");
    b.proc.exit_ok(&broker, SCRIPT_TIMEOUT);
    assert_exactly_once(&broker, &[&b], 30..45);
}

#[test]
fn committed_offsets_survive_restart() {
    offsets_survive(false);
}

#[test]
fn committed_offsets_survive_kill9() {
    offsets_survive(true);
}

/// Members stay in business across a broker restart (SIGTERM, same port and
/// data). Kafka keeps group metadata (members, generation, protocol,
/// assignment) in `__consumer_offsets` beside the offsets and reloads it when
/// the coordinator comes back, so its members' heartbeats and commits go on
/// being accepted: no rebalance, and messages produced after the restart are
/// consumed exactly once. Ours keeps it in the coordinator
/// (`/consumers/<group>/metadata`) and restores it on the group's first
/// request after the restart.
#[test]
fn live_members_across_broker_restart() {
    const PARTS: i32 = 4;
    let mut broker = group_broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let (topic, group) = ("live", "live-group");
    create_topic(&broker, topic, PARTS);
    let a = Member::spawn(CK_PYPI, &broker, dir.path(), "a", topic, group, "sync");
    let b = Member::spawn(KP_PYPI, &broker, dir.path(), "b", topic, group, "sync");
    wait_balanced(
        &broker,
        &[&a, &b],
        &[&a, &b],
        PARTS,
        Duration::from_secs(40),
        "a and b joined",
    );
    produce(&broker, topic, PARTS, 0, 40);
    wait_consumed(&broker, &[&a, &b], 0..40, Duration::from_secs(30));
    wait_committed(
        &broker,
        group,
        topic,
        &[10; 4],
        Duration::from_secs(20),
        "all consumed",
    );
    let (a_seen, b_seen) = (a.proc.lines().len(), b.proc.lines().len());
    broker
        .restart()
        .unwrap_or_else(|e| panic!("restarting the broker: {e:#}\n{}", broker.stderr_tail(50)));
    produce(&broker, topic, PARTS, 40, 40);
    wait_consumed(&broker, &[&a, &b], 0..80, Duration::from_secs(45));
    wait_committed(
        &broker,
        group,
        topic,
        &[20; 4],
        Duration::from_secs(30),
        "all consumed after the restart",
    );
    let rebalanced: Vec<String> = [(&a, a_seen), (&b, b_seen)]
        .iter()
        .flat_map(|(m, seen)| {
            m.proc.lines()[*seen..]
                .iter()
                .filter(|l| {
                    l.starts_with("REVOKED")
                        || l.starts_with("LOST")
                        || l.starts_with("COMMIT_FAILED")
                })
                .map(|l| format!("{}: {l}", m.name))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        rebalanced.is_empty(),
        "the group lost its members with the broker restart (Kafka reloads group membership with the \
         offsets; its members carry on without a rebalance):\n{}\n{}",
        rebalanced.join("\n"),
        describe(&[&a, &b])
    );
    assert_exactly_once(&broker, &[&a, &b], 0..80);
}

fn raw_leave(conn: &mut KafkaConn, group: &str, member: &str) -> i16 {
    use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
    let req = LeaveGroupRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_member_id(str_bytes(member));
    let resp: LeaveGroupResponse = conn.send(1, &req).expect("LeaveGroup v1");
    resp.error_code
}

fn raw_delete_group(conn: &mut KafkaConn, group: &str) -> i16 {
    use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
    let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str_bytes(group))]);
    let resp: DeleteGroupsResponse = conn.send(1, &req).expect("DeleteGroups v1");
    resp.results.first().map_or(-1, |r| r.error_code)
}

fn raw_delete_topic(conn: &mut KafkaConn, topic: &str) -> i16 {
    use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
    let req = DeleteTopicsRequest::default()
        .with_topic_names(vec![topic_name(topic)])
        .with_timeout_ms(30_000);
    let resp: DeleteTopicsResponse = conn.send(1, &req).expect("DeleteTopics v1");
    resp.responses.first().map_or(-1, |r| r.error_code)
}

/// What is persisted of a group decides what a restarted coordinator
/// brings back (raw requests, no client library): a Stable group comes back
/// Stable with its member, generation and assignment, and heartbeats go on;
/// a group removed with DeleteGroups, or an Empty group whose only offsets
/// went with a deleted topic (Kafka makes it Dead), does not come back.
#[test]
fn restarted_coordinator_restores_only_live_groups() {
    use integration_tests::kafka_raw::group as raw;
    let mut broker = group_broker();
    let addr = broker.addr();
    create_topic(&broker, "meta", 2);
    create_topic(&broker, "meta-doomed", 1);
    let mut c = KafkaConn::connect(addr).expect("connect");

    let parts: &[(&str, &[i32])] = &[("meta", &[0, 1])];
    let live = raw::join_alone(&mut c, "meta-live", 30_000, parts).expect("meta-live joined");
    let assignment = raw::assignment(parts).expect("assignment");

    let gone = raw::join_alone(&mut c, "meta-deleted", 30_000, parts).expect("joined");
    let committed = raw::commit(
        &mut c,
        "meta-deleted",
        gone.generation,
        &gone.member_id,
        &[("meta", 0, 1, None)],
    )
    .expect("commit");
    assert_eq!(committed, vec![("meta".into(), 0, 0)]);
    assert_eq!(raw_leave(&mut c, "meta-deleted", &gone.member_id), 0);
    assert_eq!(raw_delete_group(&mut c, "meta-deleted"), 0, "DeleteGroups");

    let doomed: &[(&str, &[i32])] = &[("meta-doomed", &[0])];
    let emptied = raw::join_alone(&mut c, "meta-emptied", 30_000, doomed).expect("joined");
    raw::commit(
        &mut c,
        "meta-emptied",
        emptied.generation,
        &emptied.member_id,
        &[("meta-doomed", 0, 1, None)],
    )
    .expect("commit");
    assert_eq!(raw_leave(&mut c, "meta-emptied", &emptied.member_id), 0);
    assert_eq!(raw_delete_topic(&mut c, "meta-doomed"), 0, "DeleteTopics");
    let offsets_gone = wait_until(
        Duration::from_secs(30),
        || matches!(raw::fetch(&mut c, "meta-emptied"), Ok((0, rows)) if rows.is_empty()),
    );
    assert!(offsets_gone, "meta-emptied's offsets outlived their topic");
    drop(c);

    broker
        .restart()
        .unwrap_or_else(|e| panic!("restarting the broker: {e:#}\n{}", broker.stderr_tail(50)));
    let mut c = KafkaConn::connect(addr).expect("connect after the restart");
    let mut last = None;
    let resumed = wait_until(Duration::from_secs(30), || {
        last = Some(raw::heartbeat(
            &mut c,
            "meta-live",
            live.generation,
            &live.member_id,
        ));
        matches!(last, Some(Ok(0)))
    });
    assert!(
        resumed,
        "the live member's heartbeat after the restart: {last:?}\n{}",
        broker.stderr_tail(40)
    );
    let described = raw::describe(&mut c, "meta-live").expect("DescribeGroups");
    assert_eq!(
        (described.state.as_str(), described.protocol.as_str()),
        ("Stable", "range")
    );
    assert_eq!(described.members.len(), 1);
    assert_eq!(described.members[0].0, live.member_id);
    assert_eq!(described.members[0].2, assignment);
    let commit = raw::commit(
        &mut c,
        "meta-live",
        live.generation,
        &live.member_id,
        &[("meta", 1, 7, None)],
    )
    .expect("commit");
    assert_eq!(commit, vec![("meta".into(), 1, 0)]);

    for dead in ["meta-deleted", "meta-emptied"] {
        let d = raw::describe(&mut c, dead).expect("DescribeGroups");
        assert_eq!(
            (d.state.as_str(), d.members.len()),
            ("Dead", 0),
            "{dead}: {d:?}"
        );
    }
    let (code, listed) = list_groups(addr).expect("ListGroups");
    let names: Vec<&str> = listed.iter().map(|(g, _)| g.as_str()).collect();
    assert_eq!(
        (code, names),
        (0, vec!["meta-live"]),
        "ListGroups after the restart"
    );
}

/// Committed offsets of a deleted topic are deleted with it (Kafka's
/// coordinator drops them), so a topic re-created under the same name is
/// read from auto.offset.reset, not from the old topic's offsets.
#[test]
fn offsets_go_with_deleted_topic() {
    let broker = group_broker();
    run_py(&broker, Py::Pypi, "kafka_group_topic_recreated.py", &[]);
}

// ---------------------------------------------------------------------------
// 5. kcat's balanced consumer.

fn kcat_group(addr: SocketAddr, group: &str, topic: &str, exit_at_end: bool) -> Command {
    let mut cmd = Command::new(KCAT);
    cmd.args(["-b", &addr.to_string(), "-u", "-G", group])
        .args(["-X", "auto.offset.reset=earliest"])
        .args(["-X", "session.timeout.ms=6000"])
        .args(["-X", "heartbeat.interval.ms=1000"])
        .args(["-f", "REC %t %p %o %s\\n"]);
    if exit_at_end {
        cmd.arg("-e");
    }
    cmd.arg(topic);
    cmd
}

fn kcat_records(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("REC "))
        .filter_map(|l| l.rsplit(' ').next().map(str::to_owned))
        .collect()
}

#[test]
fn kcat_balanced_consumer() {
    const PARTS: i32 = 4;
    let broker = group_broker();
    let addr = broker.addr();
    let (topic, group) = ("kc", "kcat-group");
    create_topic(&broker, topic, PARTS);
    produce(&broker, topic, PARTS, 0, 100);

    // -G ... -e: consumes what is there, commits on exit.
    let (st, out) = run_with_timeout(kcat_group(addr, group, topic, true), "", SCRIPT_TIMEOUT)
        .unwrap_or_else(|e| panic!("kcat -G: {e:#}\n{}", broker.stderr_tail(60)));
    assert!(
        st.success(),
        "kcat -G -e failed ({st}):\n{out}\n{}",
        broker.stderr_tail(60)
    );
    let mut got = kcat_records(&out);
    got.sort();
    assert_eq!(
        got,
        (0..100).map(value).collect::<Vec<_>>(),
        "kcat -G first run:\n{out}"
    );
    wait_committed(
        &broker,
        group,
        topic,
        &[25, 25, 25, 25],
        Duration::from_secs(20),
        "kcat committed on exit",
    );

    // Again in the same group: only the new messages.
    produce(&broker, topic, PARTS, 100, 20);
    let (st, out) = run_with_timeout(kcat_group(addr, group, topic, true), "", SCRIPT_TIMEOUT)
        .unwrap_or_else(|e| panic!("kcat -G: {e:#}\n{}", broker.stderr_tail(60)));
    assert!(
        st.success(),
        "kcat -G -e failed ({st}):\n{out}\n{}",
        broker.stderr_tail(60)
    );
    let mut got = kcat_records(&out);
    got.sort();
    assert_eq!(
        got,
        (100..120).map(value).collect::<Vec<_>>(),
        "kcat -G second run:\n{out}"
    );

    // Two kcat members in a fresh group share the partitions.
    let group2 = "kcat-pair";
    let mut k1 = Proc::spawn("kcat -G #1", kcat_group(addr, group2, topic, false));
    let mut k2 = Proc::spawn("kcat -G #2", kcat_group(addr, group2, topic, false));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut all: Vec<String> = kcat_records(&k1.output());
        all.extend(kcat_records(&k2.output()));
        let distinct: BTreeSet<&String> = all.iter().collect();
        if distinct.len() >= 120 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "two kcat members did not consume all 120 within 60 s ({} distinct):\n--- #1 ---\n{}\n--- #2 ---\n{}\n--- broker ---\n{}",
            distinct.len(),
            last_lines(&k1.output(), 30),
            last_lines(&k2.output(), 30),
            broker.stderr_tail(60)
        );
        thread::sleep(Duration::from_millis(50));
    }
    // Both hold partitions once the group settles; new messages go to both.
    let assigned = |p: &Proc| {
        p.lines()
            .iter()
            .rev()
            .find(|l| l.contains("rebalanced"))
            .is_some_and(|l| l.contains("assigned:"))
    };
    assert!(
        wait_until(Duration::from_secs(30), || assigned(&k1) && assigned(&k2)),
        "both kcat members should hold partitions:\n--- #1 ---\n{}\n--- #2 ---\n{}",
        k1.output(),
        k2.output()
    );
    produce(&broker, topic, PARTS, 120, 40);
    let ok = wait_until(Duration::from_secs(30), || {
        let mut all: Vec<String> = kcat_records(&k1.output());
        all.extend(kcat_records(&k2.output()));
        all.iter().collect::<BTreeSet<_>>().len() >= 160
    });
    let r1 = kcat_records(&k1.output());
    let r2 = kcat_records(&k2.output());
    let mut all: Vec<String> = r1.iter().chain(&r2).cloned().collect();
    all.sort();
    assert!(
        ok && all == (0..160).map(value).collect::<Vec<_>>(),
        "two kcat members should together consume m0..m159 exactly once ({} records, {} from #1, {} from #2):\n--- #1 ---\n{}\n--- #2 ---\n{}",
        all.len(),
        r1.len(),
        r2.len(),
        last_lines(&k1.output(), 30),
        last_lines(&k2.output(), 30)
    );
    let new1 = r1.iter().filter(|v| **v >= value(120)).count();
    let new2 = r2.iter().filter(|v| **v >= value(120)).count();
    assert!(
        new1 > 0 && new2 > 0,
        "both members should get some of m120..m159: {new1} and {new2}"
    );
    k1.kill9();
    k2.kill9();
}

// ---------------------------------------------------------------------------
// 6. Raw OffsetCommit / OffsetFetch / OffsetDelete edge cases, answered as Kafka does.

fn raw_commit(
    addr: SocketAddr,
    version: i16,
    group: &str,
    generation: i32,
    member: &str,
    entries: &[(&str, i32, i64, Option<&str>)],
) -> Vec<(String, i32, i16)> {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (t, p, o, meta) in entries {
        let part = OffsetCommitRequestPartition::default()
            .with_partition_index(*p)
            .with_committed_offset(*o)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(meta.map(str_bytes));
        match topics.iter_mut().find(|x| x.name.0.as_str() == *t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(t))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(str_bytes(member))
        .with_retention_time_ms(-1)
        .with_topics(topics);
    let mut c = KafkaConn::connect(addr).expect("connect");
    let resp: OffsetCommitResponse = c.send(version, &req).expect("OffsetCommit");
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

#[test]
fn raw_offset_commit_edges() {
    let broker = group_broker();
    let addr = broker.addr();
    create_topic(&broker, "raw", 2);
    let big = "x".repeat(5000);
    let got = raw_commit(
        addr,
        8,
        "raw-g",
        -1,
        "",
        &[
            ("raw", 0, 5, Some("meta-0")),
            ("raw", 1, 6, Some(&big)),
            ("raw", 7, 1, None),
            ("nope", 0, 1, None),
        ],
    );
    eprintln!("OffsetCommit v8 answered {got:?}");
    let mut c = KafkaConn::connect(addr).expect("connect");
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(str_bytes("raw-g")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name("raw"))
            .with_partition_indexes(vec![0, 1])]));
    let resp: OffsetFetchResponse = c.send(5, &req).expect("OffsetFetch");
    let fetched: Vec<(i32, i64, Option<String>, i16)> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.committed_offset,
                p.metadata.as_ref().map(|m| m.to_string()),
                p.error_code,
            )
        })
        .collect();
    eprintln!("OffsetFetch v5 answered {fetched:?}");
    // All-topics fetch (topics null).
    let resp: OffsetFetchResponse = c
        .send(
            5,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(str_bytes("raw-g")))
                .with_topics(None),
        )
        .expect("OffsetFetch all");
    let all: Vec<(String, i32, i64)> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
        })
        .collect();
    eprintln!("OffsetFetch v5 (all topics) answered {all:?}");
    assert_eq!(
        got,
        vec![
            ("raw".into(), 0, 0),
            ("raw".into(), 1, 12), // OFFSET_METADATA_TOO_LARGE (offset.metadata.max.bytes 4096)
            ("raw".into(), 7, 3),  // UNKNOWN_TOPIC_OR_PARTITION
            ("nope".into(), 0, 3),
        ],
        "OffsetCommit v8 per-partition errors"
    );
    assert_eq!(
        fetched,
        vec![
            (0, 5, Some("meta-0".into()), 0),
            (1, -1, Some(String::new()), 0)
        ],
        "OffsetFetch v5 after the commit"
    );
    assert_eq!(
        all,
        vec![("raw".into(), 0, 5)],
        "OffsetFetch v5 of all topics"
    );
}

/// ConsumerProtocolSubscription v0 for `topic`, no user data.
fn subscription(topic: &str) -> bytes::Bytes {
    let mut v = Vec::new();
    v.extend_from_slice(&0i16.to_be_bytes());
    v.extend_from_slice(&1i32.to_be_bytes());
    v.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    v.extend_from_slice(topic.as_bytes());
    v.extend_from_slice(&(-1i32).to_be_bytes());
    bytes::Bytes::from(v)
}

/// JoinGroup v5 on its own connection (which stays open: the caller keeps it).
fn raw_join(
    conn: &mut KafkaConn,
    group: &str,
    member: &str,
    topic: &str,
) -> kafka_protocol::messages::JoinGroupResponse {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::JoinGroupRequest;
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_session_timeout_ms(6000)
        .with_rebalance_timeout_ms(120_000)
        .with_member_id(str_bytes(member))
        .with_protocol_type(str_bytes("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(str_bytes("range"))
            .with_metadata(subscription(topic))]);
    conn.send(5, &req).expect("JoinGroup v5")
}

/// Members that vanish mid-protocol expire after their session timeout and
/// do not hold the group up for the (long) rebalance timeout: one that got
/// MEMBER_ID_REQUIRED and never came back (a pending member), and a leader
/// that joined and never sent SyncGroup.
#[test]
fn vanished_raw_members_expire() {
    let broker = group_broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = broker.addr();
    let topic = "vanish";
    create_topic(&broker, topic, 2);

    // A leader that never syncs: joins an empty group (two rounds, as the
    // member id is required) and goes quiet, connection open.
    let group = "vanish-leader";
    let mut quiet = KafkaConn::connect(addr).expect("connect");
    let first = raw_join(&mut quiet, group, "", topic);
    assert_eq!(
        first.error_code, 79,
        "JoinGroup v5 without member id: MEMBER_ID_REQUIRED"
    );
    let id = first.member_id.to_string();
    let second = raw_join(&mut quiet, group, &id, topic);
    assert_eq!(
        (
            second.error_code,
            second.leader.to_string(),
            second.generation_id
        ),
        (0, id.clone(), 1),
        "the only member leads generation 1"
    );
    let started = Instant::now();
    let m = Member::spawn(
        CK_PYPI,
        &broker,
        dir.path(),
        "after-leader",
        topic,
        group,
        "sync",
    );
    wait_balanced(
        &broker,
        &[&m],
        &[&m],
        2,
        SESSION_TIMEOUT + Duration::from_secs(15),
        "the silent leader expired",
    );
    eprintln!("assigned {:?} after a silent leader", started.elapsed());

    // A pending member (MEMBER_ID_REQUIRED, never back) beside a stable one.
    let group = "vanish-pending";
    let a = Member::spawn(CK_PYPI, &broker, dir.path(), "a", topic, group, "sync");
    wait_balanced(
        &broker,
        &[&a],
        &[&a],
        2,
        Duration::from_secs(30),
        "a joined",
    );
    let mut pending = KafkaConn::connect(addr).expect("connect");
    let r = raw_join(&mut pending, group, "", topic);
    assert_eq!(
        r.error_code, 79,
        "JoinGroup v5 without member id: MEMBER_ID_REQUIRED"
    );
    let started = Instant::now();
    let b = Member::spawn(CK_PYPI, &broker, dir.path(), "b", topic, group, "sync");
    wait_balanced(
        &broker,
        &[&a, &b],
        &[&a, &b],
        2,
        SESSION_TIMEOUT + Duration::from_secs(15),
        "the pending member expired",
    );
    eprintln!("rebalanced {:?} after a pending member", started.elapsed());
    drop(quiet);
    drop(pending);
}

// ---------------------------------------------------------------------------
// 7. Two brokers: one coordinates the group; when it dies the other takes the
//    group over with its committed offsets (they live in the coordinator).

fn cluster_broker(coord: &integration_tests::Coordinator, id: i32) -> KafkaBroker {
    KafkaBroker::spawn(
        BrokerOpts::default()
            .zookeeper(coord.connect_string())
            .id(id)
            .with("group.initial.rebalance.delay.ms", 0)
            .with("zookeeper.session.timeout.ms", 6000),
    )
    .unwrap_or_else(|e| panic!("spawn broker {id}: {e:#}"))
}

/// Metadata v4 of `topic`: [(partition, leader, sorted ISR)].
fn partition_states(addr: SocketAddr, topic: &str) -> Vec<(i32, i32, Vec<i32>)> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::MetadataRequest;
    let Ok(mut c) = KafkaConn::connect(addr) else {
        return vec![];
    };
    let req = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
    ]));
    let Ok(resp) = c.send::<MetadataRequest>(4, &req) else {
        return vec![];
    };
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

fn wait_two_brokers(b: &KafkaBroker) {
    assert!(
        wait_until(
            Duration::from_secs(30),
            || matches!(kafka_raw::brokers(b.addr()), Ok((ids, _)) if ids == [1, 2])
        ),
        "{} never listed both brokers: {:?}",
        b.addr(),
        kafka_raw::brokers(b.addr())
    );
}

/// The group's coordinator dies (SIGKILL); the other broker becomes the
/// coordinator (FindCoordinator), answers OffsetFetch with what was committed
/// through the dead one, and a new member resumes from there. The topic has
/// one unreplicated partition on the surviving broker, and the group id is
/// picked so that the *other* broker coordinates it.
#[test]
fn group_coordinator_failover_keeps_offsets() {
    let coord = integration_tests::Coordinator::spawn().expect("spawn coordinator");
    let b1 = cluster_broker(&coord, 1);
    let b2 = cluster_broker(&coord, 2);
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = "fo";
    wait_two_brokers(&b1);
    let mut c = KafkaConn::connect(b1.addr()).expect("connect");
    let (code, msg) = kafka_raw::create_topic(&mut c, topic, 1, 1, &[]).expect("CreateTopics");
    assert_eq!(code, 0, "CreateTopics {topic}: {msg:?}");
    let mut leader = -1;
    assert!(
        wait_until(Duration::from_secs(30), || {
            leader = partition_states(b1.addr(), topic)
                .first()
                .map_or(-1, |p| p.1);
            leader > 0
        }),
        "{topic}-0 never got a leader: {:?}",
        partition_states(b1.addr(), topic)
    );
    let (data_broker, other) = if leader == 1 { (b1, b2) } else { (b2, b1) };
    kafka_raw::wait_leader(data_broker.addr(), topic, 0).expect("leader");
    // A group whose coordinator is the broker without the data.
    let group = (0..100)
        .map(|i| format!("fo-group-{i}"))
        .find(|g| {
            find_coordinator(data_broker.addr(), g)
                .is_ok_and(|(e, node, _)| e == 0 && node != leader)
        })
        .expect("some group id hashes to the other broker");
    let group = group.as_str();
    let f1 = find_coordinator(data_broker.addr(), group).expect("FindCoordinator");
    let f2 = find_coordinator(other.addr(), group).expect("FindCoordinator");
    assert_eq!(f1, f2, "the brokers disagree on {group}'s coordinator");
    assert_eq!(f1.2, other.addr().to_string(), "coordinator address");
    let mut coordinator = other;
    // The broker that does not coordinate the group refuses its requests.
    let (top, _) = offset_fetch(data_broker.addr(), group, topic, 1).expect("OffsetFetch");
    assert_eq!(
        top, 16,
        "OffsetFetch v5 at a broker that does not coordinate the group: NOT_COORDINATOR"
    );

    produce(&data_broker, topic, 1, 0, 20);
    // A member bootstrapped from the non-coordinator finds the coordinator.
    let mut a = Member::spawn(CK_PYPI, &data_broker, dir.path(), "a", topic, group, "sync");
    wait_committed(
        &coordinator,
        group,
        topic,
        &[20],
        Duration::from_secs(40),
        "a consumed 20",
    );
    a.proc.send("STOP");
    a.proc.exit_ok(&coordinator, SCRIPT_TIMEOUT);

    coordinator
        .kill9()
        .expect("kill -9 the coordinating broker");
    let killed = Instant::now();
    let ok = wait_until(SESSION_TIMEOUT + Duration::from_secs(30), || {
        find_coordinator(data_broker.addr(), group)
            .is_ok_and(|(e, node, _)| e == 0 && node == leader)
    });
    assert!(
        ok,
        "the surviving broker never took over {group}: FindCoordinator answers {:?}\n{}",
        find_coordinator(data_broker.addr(), group),
        data_broker.stderr_tail(60)
    );
    eprintln!("coordinator moved {:?} after the kill", killed.elapsed());
    wait_committed(
        &data_broker,
        group,
        topic,
        &[20],
        Duration::from_secs(30),
        "after the coordinator failed over",
    );
    produce(&data_broker, topic, 1, 20, 10);
    let mut b = Member::spawn(KP_PYPI, &data_broker, dir.path(), "b", topic, group, "sync");
    wait_committed(
        &data_broker,
        group,
        topic,
        &[30],
        Duration::from_secs(40),
        "b consumed the rest",
    );
    b.proc.send("STOP");
    b.proc.exit_ok(&data_broker, SCRIPT_TIMEOUT);
    assert_exactly_once(&data_broker, &[&b], 20..30);
}

/// Found while writing the failover test above: a replication-factor-2 topic
/// reports both replicas in the ISR and acknowledges acks=all produces, but
/// the follower's log stays empty, so when the leader dies the follower leads
/// with nothing and acknowledged messages are gone. Kafka acknowledges acks=all
/// only once every ISR replica has the message.
#[test]
fn acks_all_messages_survive_leader_failover() {
    let coord = integration_tests::Coordinator::spawn().expect("spawn coordinator");
    let b1 = cluster_broker(&coord, 1);
    let b2 = cluster_broker(&coord, 2);
    let topic = "rf2";
    wait_two_brokers(&b1);
    let mut c = KafkaConn::connect(b1.addr()).expect("connect");
    let (code, msg) = kafka_raw::create_topic(&mut c, topic, 1, 2, &[]).expect("CreateTopics");
    assert_eq!(code, 0, "CreateTopics {topic} RF 2: {msg:?}");
    let mut state = vec![];
    assert!(
        wait_until(Duration::from_secs(30), || {
            state = partition_states(b1.addr(), topic);
            state.len() == 1 && state[0].1 > 0 && state[0].2 == [1, 2]
        }),
        "{topic}-0 never had a leader and ISR [1, 2]: {state:?}"
    );
    let leader = state[0].1;
    let (mut lead, follower) = if leader == 1 { (b1, b2) } else { (b2, b1) };
    kafka_raw::wait_leader(lead.addr(), topic, 0).expect("leader");
    produce(&lead, topic, 1, 0, 10); // acks=all
    let isr = partition_states(follower.addr(), topic);
    lead.kill9().expect("kill -9 the leader");
    let mut end = None;
    let ok = wait_until(SESSION_TIMEOUT + Duration::from_secs(30), || {
        end = KafkaConn::connect(follower.addr())
            .and_then(|mut c| kafka_raw::list_offset(&mut c, topic, 0, -1))
            .ok();
        matches!(end, Some((0, _)))
    });
    assert!(
        ok,
        "the follower never led {topic}-0 after the leader died: {end:?}"
    );
    assert_eq!(
        end,
        Some((0, 10)),
        "{topic}-0's 10 messages were acknowledged with acks=all while Metadata showed ISR {isr:?}; \
         after the leader's death the new leader (broker {}) has log end {end:?}",
        if leader == 1 { 2 } else { 1 }
    );
}
