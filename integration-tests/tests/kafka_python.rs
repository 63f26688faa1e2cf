//! Real Python Kafka clients against the `broker` binary, each script under
//! both Debian's interpreter (confluent-kafka 1.7.0 on librdkafka 2.0.2,
//! kafka-python 2.0.2) and PyPI's current clients (confluent-kafka 2.x,
//! kafka-python 3.x, the latter with idempotence on by default like the Java
//! client): byte-exact round trips per compression codec, consuming by
//! timestamp, kafka-python's defaults and admin client, an idempotent producer
//! across a broker restart, acks=1 durability across kill -9, and topic
//! auto-creation. The scripts live in `py/kafka_*.py`; each ends with an
//! `OK ...` line and exits non-zero with a `FAIL: ...` line on any mismatch.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use integration_tests::kafka::{self, BrokerOpts, KafkaBroker};
use integration_tests::run_with_timeout;

/// Upper bound for one script run; they take a few seconds when all is well.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    /// Debian's /usr/bin/python3: confluent-kafka 1.7.0, kafka-python 2.0.2.
    Debian,
    /// The PyPI venv: confluent-kafka 2.x, kafka-python 3.x.
    Pypi,
}

impl Client {
    fn python(self) -> PathBuf {
        let p = match self {
            Client::Debian => PathBuf::from(kafka::DEBIAN_PYTHON),
            Client::Pypi => kafka::pypi_python(),
        };
        assert!(
            p.exists(),
            "{self:?} Python not found at {} (Debian: apt python3-confluent-kafka python3-kafka; \
             PyPI: the .venv-clients venv, or set PYPI_PYTHON)",
            p.display()
        );
        p
    }

    fn command(self, script: &str) -> Command {
        let dir = kafka::py_dir();
        let mut cmd = Command::new(self.python());
        cmd.current_dir(&dir)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg("-u")
            .arg(dir.join(script));
        cmd
    }
}

/// Runs `script <bootstrap> <args..>` to completion and checks it printed its `OK` line.
fn run_script(client: Client, broker: &KafkaBroker, script: &str, args: &[&str]) -> String {
    let bootstrap = broker.bootstrap();
    let mut all = vec![bootstrap.as_str()];
    all.extend_from_slice(args);
    run_script_args(client, broker, script, &all)
}

/// Runs `script <args..>` to completion and checks it printed its `OK` line.
fn run_script_args(client: Client, broker: &KafkaBroker, script: &str, args: &[&str]) -> String {
    let mut cmd = client.command(script);
    cmd.args(args);
    let (status, output) = run_with_timeout(cmd, "", SCRIPT_TIMEOUT).unwrap_or_else(|e| {
        panic!(
            "{client:?} {script} {args:?} did not run to completion: {e:#}\n{}",
            broker.stderr_tail(50)
        )
    });
    assert_ok(client, script, args, status, &output, broker);
    output
}

fn assert_ok(
    client: Client,
    script: &str,
    args: &[&str],
    status: ExitStatus,
    output: &str,
    broker: &KafkaBroker,
) {
    assert!(
        status.success() && output.lines().any(|l| l.starts_with("OK ")),
        "{client:?} {script} {args:?} failed ({status}):\n{output}\n{}",
        broker.stderr_tail(50)
    );
    // Debian's client must run on Debian's librdkafka 2.0.2, the strict one
    // (a newer librdkafka on the library path would hide its failures).
    if client == Client::Debian && output.contains("librdkafka") {
        assert!(
            output.contains("librdkafka 2.0.2"),
            "Debian's confluent-kafka loaded another librdkafka:\n{output}"
        );
    }
}

/// A script running alongside the test, which talks to it through lines:
/// the script's stdout is read by a thread, the test writes to its stdin.
struct PyProc {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: tempfile::NamedTempFile,
}

impl PyProc {
    fn spawn(client: Client, script: &str, args: &[&str]) -> PyProc {
        let stderr = tempfile::NamedTempFile::new().expect("temp file for stderr");
        let mut cmd = client.command(script);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(stderr.path()).expect("opening stderr file"));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let out = child.stdout.take().expect("stdout pipe");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        let all = Arc::clone(&stdout);
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                all.lock().expect("stdout lines").push(line.clone());
                let _ = tx.send(line);
            }
        });
        PyProc {
            what: format!("{client:?} {script} {args:?}"),
            stdin: child.stdin.take(),
            child,
            lines,
            stdout,
            stderr,
        }
    }

    /// Everything the script printed so far, stdout then stderr.
    fn output(&self) -> String {
        format!(
            "{}\n--- stderr ---\n{}",
            self.stdout.lock().expect("stdout lines").join("\n"),
            std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
        )
    }

    /// Waits for a stdout line for which `pred` holds; panics (with the
    /// script's output and the broker's log) on timeout or if the script ends.
    fn wait_line(
        &mut self,
        broker: &KafkaBroker,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: expected line not printed within {timeout:?}:\n{}\n{}",
                    self.what,
                    self.output(),
                    broker.stderr_tail(50)
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "{}: exited ({status:?}) before printing the expected line:\n{}\n{}",
                        self.what,
                        self.output(),
                        broker.stderr_tail(50)
                    )
                }
            }
        }
    }

    /// Writes one line to the script's stdin (a script that already exited is
    /// judged by `finish`).
    fn send(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
        }
    }

    /// Waits for the script to exit and checks its `OK` line; returns its output.
    fn finish(mut self, broker: &KafkaBroker, timeout: Duration) -> String {
        self.stdin.take();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("waiting for the script") {
                break st;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{}: did not finish within {timeout:?}:\n{}\n{}",
                    self.what,
                    self.output(),
                    broker.stderr_tail(50)
                );
            }
            thread::sleep(Duration::from_millis(25));
        };
        // The reader thread sees EOF once the process is gone; drain it.
        while self.lines.recv_timeout(Duration::from_secs(5)).is_ok() {}
        let output = self.output();
        assert!(
            status.success() && output.lines().any(|l| l.starts_with("OK ")),
            "{}: failed ({status}):\n{output}\n{}",
            self.what,
            broker.stderr_tail(50)
        );
        output
    }
}

impl Drop for PyProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The count in a `PROGRESS <n>` line, if it is one.
fn progress(line: &str) -> Option<u64> {
    line.strip_prefix("PROGRESS ")?.trim().parse().ok()
}

fn dev_broker() -> KafkaBroker {
    KafkaBroker::dev().expect("start dev broker")
}

// ---------------------------------------------------------------------------
// 1. confluent-kafka round trip per codec, and consuming by timestamp.

fn confluent_roundtrip(client: Client, codec: &str) {
    let broker = dev_broker();
    run_script(client, &broker, "kafka_confluent_roundtrip.py", &[codec]);
}

macro_rules! roundtrip_tests {
    ($($name:ident: $client:ident $codec:literal;)*) => {$(
        #[test]
        fn $name() {
            confluent_roundtrip(Client::$client, $codec);
        }
    )*};
}

roundtrip_tests! {
    confluent_roundtrip_none_debian: Debian "none";
    confluent_roundtrip_gzip_debian: Debian "gzip";
    confluent_roundtrip_snappy_debian: Debian "snappy";
    confluent_roundtrip_lz4_debian: Debian "lz4";
    confluent_roundtrip_zstd_debian: Debian "zstd";
    confluent_roundtrip_none_pypi: Pypi "none";
    confluent_roundtrip_gzip_pypi: Pypi "gzip";
    confluent_roundtrip_snappy_pypi: Pypi "snappy";
    confluent_roundtrip_lz4_pypi: Pypi "lz4";
    confluent_roundtrip_zstd_pypi: Pypi "zstd";
}

// ---------------------------------------------------------------------------
// 2. kafka-python with default producer settings, and its admin client.

#[test]
fn kafka_python_defaults_and_admin_debian() {
    let broker = dev_broker();
    run_script(Client::Debian, &broker, "kafka_python_client.py", &["1000"]);
}

#[test]
fn kafka_python_defaults_and_admin_pypi() {
    let broker = dev_broker();
    let out = run_script(Client::Pypi, &broker, "kafka_python_client.py", &["1000"]);
    // kafka-python 3.x's defaults are the Java client's: idempotent, acks=all.
    assert!(
        out.contains("enable_idempotence=True"),
        "kafka-python 3.x was expected to default to idempotence:\n{out}"
    );
}

/// Magic 0 has no timestamp: Kafka stores none (-1) on a CreateTime topic,
/// not the broker's clock, and consumers read -1 back.
#[test]
fn legacy_message_timestamps_debian() {
    let broker = dev_broker();
    run_script(Client::Debian, &broker, "kafka_legacy_timestamps.py", &[]);
}

// ---------------------------------------------------------------------------
// 3. Idempotent producer across a broker restart.

/// How the broker goes away under the idempotent producer.
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// SIGTERM, then start again on the same port and data.
    Restart,
    /// SIGKILL, then the same: the producer's in-flight batches may be in the
    /// log without having been acknowledged, and their retries must be
    /// recognised as duplicates from the producer state recovered from the log.
    Kill9,
}

fn idempotent_across_outage(client: Client, outage: Outage) {
    let mut broker = match outage {
        Outage::Restart => dev_broker(),
        // See `acked_survive_kill9`: the dead broker's session must expire.
        Outage::Kill9 => {
            KafkaBroker::spawn(BrokerOpts::default().with("zookeeper.session.timeout.ms", 6000))
                .expect("start broker")
        }
    };
    let bootstrap = broker.bootstrap();
    let mut py = PyProc::spawn(client, "kafka_idempotent_restart.py", &[&bootstrap, "6000"]);
    py.wait_line(&broker, Duration::from_secs(60), |l| {
        progress(l).is_some_and(|n| n >= 2000)
    });
    if let Outage::Kill9 = outage {
        broker.kill9().expect("kill -9 the broker");
    }
    broker
        .restart()
        .unwrap_or_else(|e| panic!("restarting the broker: {e:#}\n{}", broker.stderr_tail(50)));
    assert_eq!(
        broker.bootstrap(),
        bootstrap,
        "broker came back on another port; the producer cannot find it"
    );
    py.send("RESTARTED");
    let out = py.finish(&broker, SCRIPT_TIMEOUT);
    eprintln!("{out}");
}

#[test]
fn idempotent_producer_across_restart_debian() {
    idempotent_across_outage(Client::Debian, Outage::Restart);
}

#[test]
fn idempotent_producer_across_restart_pypi() {
    idempotent_across_outage(Client::Pypi, Outage::Restart);
}

#[test]
fn idempotent_producer_across_kill9_debian() {
    idempotent_across_outage(Client::Debian, Outage::Kill9);
}

#[test]
fn idempotent_producer_across_kill9_pypi() {
    idempotent_across_outage(Client::Pypi, Outage::Kill9);
}

// ---------------------------------------------------------------------------
// 4. acks=1: every acknowledged message survives kill -9.

fn acked_survive_kill9(client: Client) {
    // The restarted broker can only lead again once the killed one's
    // coordinator session has expired, so keep that short from the start.
    let mut broker =
        KafkaBroker::spawn(BrokerOpts::default().with("zookeeper.session.timeout.ms", 6000))
            .expect("start broker");
    let dir = tempfile::tempdir().expect("temp dir");
    let ack_file = dir.path().join("acks.txt");
    let ack_path = ack_file.to_str().expect("utf-8 temp path");
    let topic = "durable";
    let bootstrap = broker.bootstrap();
    let mut py = PyProc::spawn(
        client,
        "kafka_ack_durability.py",
        &["produce", &bootstrap, topic, ack_path],
    );
    let line = py.wait_line(&broker, Duration::from_secs(60), |l| {
        progress(l).is_some_and(|n| n >= 3000)
    });
    let before = progress(&line).expect("a PROGRESS line");
    broker.kill9().expect("kill -9 the broker");
    broker
        .restart()
        .unwrap_or_else(|e| panic!("restarting the broker: {e:#}\n{}", broker.stderr_tail(50)));
    assert_eq!(
        broker.bootstrap(),
        bootstrap,
        "broker came back on another port; the producer cannot find it"
    );
    // The producer keeps going: acknowledgements resume once the broker
    // leads its partitions again.
    py.wait_line(&broker, Duration::from_secs(60), |l| {
        progress(l).is_some_and(|n| n >= before + 1000)
    });
    py.send("STOP");
    eprintln!("{}", py.finish(&broker, SCRIPT_TIMEOUT));
    let out = run_script_args(
        client,
        &broker,
        "kafka_ack_durability.py",
        &["verify", &bootstrap, topic, ack_path],
    );
    eprintln!("{out}");
}

#[test]
fn acked_messages_survive_kill9_debian() {
    acked_survive_kill9(Client::Debian);
}

#[test]
fn acked_messages_survive_kill9_pypi() {
    acked_survive_kill9(Client::Pypi);
}

// ---------------------------------------------------------------------------
// 5. Topic auto-creation: producers create, a consumer that says no does not.

#[test]
fn auto_create_topics_debian() {
    let broker = dev_broker();
    run_script(Client::Debian, &broker, "kafka_autocreate.py", &[]);
}

#[test]
fn auto_create_topics_pypi() {
    let broker = dev_broker();
    run_script(Client::Pypi, &broker, "kafka_autocreate.py", &[]);
}
