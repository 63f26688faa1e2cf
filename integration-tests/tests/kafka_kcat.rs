//! kcat (Debian's, librdkafka 2.0.2) against the broker: metadata listing,
//! a 100,000-message round trip with keys and headers compared byte for
//! byte, reading from an offset, and offsets by timestamp.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use integration_tests::kafka::KafkaBroker;
use integration_tests::kafka_raw::{self, err, KafkaConn};
use integration_tests::{run_with_timeout, wait_until};

const KCAT: &str = "/usr/bin/kcat";

fn kcat(addr: SocketAddr, args: &[&str], stdin: &str, timeout: Duration) -> String {
    let mut cmd = Command::new(KCAT);
    cmd.args(["-b", &addr.to_string()]).args(args);
    let (status, out) =
        run_with_timeout(cmd, stdin, timeout).unwrap_or_else(|e| panic!("kcat {args:?}: {e:#}"));
    assert!(
        status.success(),
        "kcat {args:?} failed ({status}):\n{}",
        tail(&out)
    );
    out
}

fn tail(s: &str) -> &str {
    let cut = s.len().saturating_sub(4000);
    let cut = (cut..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[cut..]
}

fn create(addr: SocketAddr, topic: &str, partitions: i32) {
    kafka_raw::wait_registered(addr).expect("broker registered");
    let mut c = KafkaConn::connect(addr).expect("connect");
    let (code, msg) =
        kafka_raw::create_topic(&mut c, topic, partitions, 1, &[]).expect("create topic");
    assert_eq!(code, err::NONE, "CreateTopics {topic}: {msg:?}");
    for p in 0..partitions {
        kafka_raw::wait_leader(addr, topic, p).expect("leader");
    }
}

#[test]
fn kcat_lists_broker_and_topics() {
    let broker = KafkaBroker::dev().expect("spawn broker");
    let addr = broker.addr();
    create(addr, "listed", 3);
    // Auto-creation through kcat's own produce.
    kcat(
        addr,
        &["-P", "-t", "auto-made"],
        "hello\n",
        Duration::from_secs(30),
    );
    let out = kcat(addr, &["-L"], "", Duration::from_secs(30));
    assert!(out.contains(" 1 brokers:"), "{out}");
    let (ids, controller) = kafka_raw::brokers(addr).expect("metadata");
    assert_eq!(ids.len(), 1, "brokers {ids:?}");
    let id = ids[0];
    assert_eq!(controller, id, "controller");
    assert!(
        out.contains(&format!("broker {id} at {addr} (controller)")),
        "broker line missing:\n{out}"
    );
    assert!(out.contains("topic \"listed\" with 3 partitions:"), "{out}");
    for p in 0..3 {
        assert!(
            out.contains(&format!(
                "partition {p}, leader {id}, replicas: {id}, isrs: {id}"
            )),
            "partition {p} of listed:\n{out}"
        );
    }
    assert!(
        out.contains("topic \"auto-made\" with 1 partitions:"),
        "{out}"
    );
    // One topic only.
    let out = kcat(addr, &["-L", "-t", "listed"], "", Duration::from_secs(30));
    assert!(out.contains(" 1 topics:"), "{out}");
    assert!(!out.contains("auto-made"), "{out}");
}

/// The i-th message's key and value: distinct, lengths 0..~600, some UTF-8,
/// never the delimiter, a tab or a newline.
fn message(i: usize) -> (String, String) {
    let key = format!("k{i:06}-{}", "K".repeat(i % 17));
    let fill_len = (i * 7919) % 600;
    let mut value = format!("v{i}:");
    if i.is_multiple_of(1000) {
        value.clear(); // empty value
    } else {
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 =,.:;/-_";
        for j in 0..fill_len {
            value.push(alphabet[(i + j * 31) % alphabet.len()] as char);
        }
        if i.is_multiple_of(7) {
            value.push_str("é€😀");
        }
    }
    (key, value)
}

#[test]
fn kcat_round_trip_100k_with_keys_and_headers() {
    let broker = KafkaBroker::dev().expect("spawn broker");
    let addr = broker.addr();
    let topic = "roundtrip";
    create(addr, topic, 1);
    const N: usize = 100_000;
    let mut input = String::new();
    let mut expected = String::new();
    for i in 0..N {
        let (k, v) = message(i);
        writeln!(input, "{k}|{v}").expect("fmt");
        writeln!(expected, "{k}\t{v}\ttrace=abc-123,env=it").expect("fmt");
    }
    let before = kafka_raw::now_ms();
    kcat(
        addr,
        &[
            "-P",
            "-t",
            topic,
            "-p",
            "0",
            "-K",
            "|",
            "-H",
            "trace=abc-123",
            "-H",
            "env=it",
            "-X",
            "linger.ms=5",
        ],
        &input,
        Duration::from_secs(60),
    );
    // A moment after every message of the first run was created.
    let mid = kafka_raw::now_ms() + 1;
    assert!(wait_until(Duration::from_secs(5), || kafka_raw::now_ms() > mid));
    let mut c = KafkaConn::connect(addr).expect("connect");
    let (code, end) = kafka_raw::list_offset(&mut c, topic, 0, -1).expect("latest");
    assert_eq!(
        (code, end),
        (err::NONE, N as i64),
        "log end after producing {N}"
    );

    let out = kcat(
        addr,
        &[
            "-C",
            "-q",
            "-t",
            topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k\t%s\t%h\n",
        ],
        "",
        Duration::from_secs(60),
    );
    if out != expected {
        let got: Vec<&str> = out.lines().collect();
        let want: Vec<&str> = expected.lines().collect();
        let first_diff = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "consumed {} lines, produced {}; first difference at line {first_diff}:\n got: {:?}\nwant: {:?}",
            got.len(),
            want.len(),
            got.get(first_diff),
            want.get(first_diff)
        );
    }

    // From an offset: -o 54321 -c 5, with offsets printed.
    let out = kcat(
        addr,
        &[
            "-C",
            "-q",
            "-t",
            topic,
            "-p",
            "0",
            "-o",
            "54321",
            "-c",
            "5",
            "-f",
            "%o %k %S\n",
        ],
        "",
        Duration::from_secs(30),
    );
    let mut want = String::new();
    for i in 54321..54326 {
        let (k, v) = message(i);
        writeln!(want, "{i} {k} {}", v.len()).expect("fmt");
    }
    assert_eq!(out, want, "kcat -o 54321 -c 5");

    // Offsets by timestamp: before everything -> 0; after the first run -> N
    // once more messages exist; far in the future -> -1 (no such record).
    let q = |ts: i64| -> String {
        kcat(
            addr,
            &["-Q", "-t", &format!("{topic}:0:{ts}")],
            "",
            Duration::from_secs(30),
        )
    };
    let out = q(before - 60_000);
    assert!(
        out.contains(&format!("{topic} [0] offset 0")),
        "kcat -Q before: {out}"
    );
    kcat(
        addr,
        &["-P", "-t", topic, "-p", "0", "-K", "|"],
        "late-1|a\nlate-2|b\n",
        Duration::from_secs(30),
    );
    let out = q(mid);
    assert!(
        out.contains(&format!("{topic} [0] offset {N}")),
        "kcat -Q at a time between the two runs: {out}"
    );
    let out = q(kafka_raw::now_ms() + 3_600_000);
    assert!(
        out.contains(&format!("{topic} [0] offset -1")),
        "kcat -Q in the future: {out}"
    );
}
