//! What a broker says and does around start-up: every wait obeys SIGTERM at
//! once and says what it waits for; the log reads as prose (no `Debug`
//! dumps, no client-library chatter, a new log is not "unclean"); listening
//! lines carry a timestamp and the real address; connection limits refuse
//! with a log line.

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::kafka::{broker_bin, BrokerOpts, KafkaBroker};
use integration_tests::kafka_raw::{self, KafkaConn};
use integration_tests::process::tail;
use integration_tests::{free_port, wait_until};

/// Starts `broker start` in `dir` with the overrides, stdout and stderr to
/// files there; the embedded coordinator (dev mode) on a free port.
fn start(dir: &Path, overrides: &[String]) -> Child {
    let mut cmd = Command::new(broker_bin());
    cmd.args(["start", "--coordinator-port", "0"])
        .current_dir(dir)
        .env("RUST_LOG", "info");
    for o in overrides {
        cmd.arg("--override").arg(o);
    }
    let out = std::fs::File::create(dir.join("stdout")).expect("stdout file");
    let err = std::fs::File::create(dir.join("stderr")).expect("stderr file");
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn broker")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// SIGTERM, then the time until the process exited (with its success).
fn terminate(child: &mut Child) -> (Duration, bool) {
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args(["-s", "TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let at = Instant::now();
    let exited = wait_until(Duration::from_secs(20), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait");
    (at.elapsed(), exited && status.success())
}

/// With no coordinator answering, a broker waits, saying so with the cause,
/// and a SIGTERM ends it at once: with `broker.id` set (waiting to
/// register) and without (waiting to generate an id).
#[test]
fn shutdown_is_prompt_while_the_coordinator_is_unreachable() {
    for with_id in [true, false] {
        let dir = tempfile::tempdir().expect("temp dir");
        let dead = free_port().expect("port");
        let mut overrides = vec![
            format!("zookeeper.connect=127.0.0.1:{dead}"),
            "listeners=PLAINTEXT://127.0.0.1:0".to_owned(),
            format!("log.dirs={}", dir.path().join("logs").display()),
        ];
        if with_id {
            overrides.push("broker.id=7".to_owned());
        }
        let mut child = start(dir.path(), &overrides);
        let stderr = dir.path().join("stderr");
        let said = wait_until(Duration::from_secs(20), || {
            let log = read(&stderr);
            log.contains("waiting for the coordinator") && log.contains("Connection refused")
        });
        assert!(
            said,
            "with_id={with_id}: no wait line with its cause\n{}",
            tail(&stderr, 20)
        );
        let (took, clean) = terminate(&mut child);
        assert!(
            clean && took < Duration::from_secs(3),
            "with_id={with_id}: exit took {took:?} (clean: {clean})\n{}",
            tail(&stderr, 20)
        );
    }
}

#[test]
fn start_up_log_reads_as_prose() {
    let broker = KafkaBroker::dev().expect("dev broker");
    let mut c = KafkaConn::connect(broker.addr()).expect("connect");
    kafka_raw::create_topic(&mut c, "fresh", 1, 1, &[]).expect("create");
    kafka_raw::wait_leader(broker.addr(), "fresh", 0).expect("leader");
    let log = read(&broker.stderr_path());
    for unwanted in [
        "Endpoint {",
        "new session established",
        "succeeds to establish",
        "clean=false",
    ] {
        assert!(!log.contains(unwanted), "{unwanted:?} in the log:\n{log}");
    }
    assert!(log.contains("created log"), "{log}");
    assert!(
        log.contains(&format!(
            "endpoints=PLAINTEXT://127.0.0.1:{}",
            broker.addr().port()
        )),
        "{log}"
    );
}

/// Dev mode's listening lines: one per socket (Kafka and the embedded
/// coordinator), each with a timestamp and the address actually bound,
/// which is loopback by default.
#[test]
fn dev_mode_listens_on_loopback_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    // `listeners` explicit (all interfaces, port 0) wins for Kafka; the
    // coordinator follows `--bind`, loopback by default.
    let mut child = start(dir.path(), &["listeners=PLAINTEXT://:0".to_owned()]);
    let stdout = dir.path().join("stdout");
    let both = wait_until(Duration::from_secs(30), || {
        let out = read(&stdout);
        out.contains("service=kafka") && out.contains("service=zookeeper")
    });
    let out = read(&stdout);
    let (_, clean) = terminate(&mut child);
    assert!(both, "{out}\n{}", tail(&dir.path().join("stderr"), 20));
    assert!(clean);
    for line in out.lines() {
        let (time, rest) = line.split_once(' ').expect("timestamp first");
        assert!(
            time.len() == 27 && time.ends_with('Z') && time.contains('T'),
            "{line}"
        );
        assert!(rest.starts_with("listening addr="), "{line}");
    }
    let zk = out
        .lines()
        .find(|l| l.contains("service=zookeeper"))
        .expect("zk line");
    assert!(zk.contains("addr=127.0.0.1:"), "{zk}");
    let kafka = out
        .lines()
        .find(|l| l.contains("service=kafka"))
        .expect("kafka line");
    assert!(
        kafka.contains("addr=0.0.0.0:") && kafka.contains("listener=PLAINTEXT"),
        "{kafka}"
    );
}

/// `max.connections.per.ip`: the connection over the limit is closed at
/// once with a log line; one closing makes room again.
#[test]
fn connections_over_the_per_ip_limit_are_refused() {
    let broker = KafkaBroker::spawn(BrokerOpts::default().with("max.connections.per.ip", 2))
        .expect("broker");
    let addr = broker.addr();
    let first = KafkaConn::connect(addr).expect("first");
    let _second = KafkaConn::connect(addr).expect("second");
    kafka_raw::api_versions_ok(addr).expect_err("a third connection is refused");
    let mut third = TcpStream::connect(addr).expect("tcp connect");
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 1];
    assert_eq!(
        third.read(&mut buf).map_err(|e| e.kind()),
        Ok(0),
        "closed at once"
    );
    let log = read(&broker.stderr_path());
    assert!(log.contains("max.connections.per.ip"), "{log}");
    drop(first);
    let room = wait_until(Duration::from_secs(10), || {
        kafka_raw::api_versions_ok(addr).is_ok()
    });
    assert!(room, "no room after a close");
}
