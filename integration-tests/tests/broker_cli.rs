//! The `broker` client and server start-up as a user meets them: list and
//! describe with `--output json|plain`, plain refusals of impossible counts,
//! one-line errors without a backtrace (even with `RUST_BACKTRACE=1`), and
//! warnings that name a misspelt or unhonoured config key (with the closest
//! key), for the broker's config sources and for zoo.cfg.

use std::process::{Command, Output};
use std::time::Duration;

use integration_tests::kafka::{broker_bin, BrokerOpts, KafkaBroker};
use integration_tests::{is_apache, kafka_raw, wait_until, Coordinator, Opts};

fn broker_cli(bootstrap: &str, args: &[&str]) -> Output {
    Command::new(broker_bin())
        .args(args)
        .args(["--bootstrap-server", bootstrap])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run broker CLI")
}

fn ok(bootstrap: &str, args: &[&str]) -> String {
    let out = broker_cli(bootstrap, args);
    assert!(
        out.status.success(),
        "broker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the CLI expecting exit `code`; returns stderr, checked to carry no
/// backtrace.
fn fails(bootstrap: &str, args: &[&str], code: i32) -> String {
    let out = broker_cli(bootstrap, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "broker {args:?}: {err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    err
}

#[test]
fn a_refused_bootstrap_is_one_line_naming_the_cause_once() {
    let err = fails("127.0.0.1:1", &["topic", "list"], 1);
    assert_eq!(
        err.trim(),
        "error: cannot connect to 127.0.0.1:1: Connection refused (os error 111)"
    );
}

#[test]
fn counts_below_one_are_refused_plainly() {
    for bad in ["-3", "0"] {
        for args in [
            ["topic", "create", "t", "--partitions", bad],
            ["topic", "create", "t", "--replication-factor", bad],
            ["topic", "alter", "t", "--partitions", bad],
        ] {
            // Refused while parsing: no broker is needed, none is dialled.
            let err = fails("127.0.0.1:1", &args, 2);
            assert!(err.contains("must be >= 1"), "{args:?}: {err}");
            assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
        }
    }
}

#[test]
fn topic_list_and_describe_take_output_json_and_plain() {
    let b = KafkaBroker::dev().expect("spawn broker");
    kafka_raw::wait_registered(b.addr()).expect("registered");
    let bs = b.bootstrap();
    ok(
        &bs,
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "2",
            "--config",
            "retention.ms=60000",
        ],
    );
    ok(&bs, &["topic", "create", "audit", "--partitions", "1"]);
    for (t, p) in [("orders", 0), ("orders", 1), ("audit", 0)] {
        kafka_raw::wait_leader(b.addr(), t, p).expect("leader");
    }

    let mut plain: Vec<String> = ok(&bs, &["topic", "list", "--output", "plain"])
        .lines()
        .map(str::to_owned)
        .collect();
    plain.sort();
    assert_eq!(plain, ["audit\t1\t1", "orders\t2\t1"]);
    let list: serde_json::Value =
        serde_json::from_str(&ok(&bs, &["topic", "list", "--output", "json"])).expect("json");
    let orders = list
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == "orders"))
        .expect("orders listed");
    assert_eq!(orders["partitions"], 2);
    assert_eq!(orders["replicationFactor"], 1);

    assert_eq!(
        ok(&bs, &["topic", "describe", "orders", "--output", "plain"]),
        "orders\t0\t0\t0\t0\norders\t1\t0\t0\t0\n"
    );
    let described: serde_json::Value = serde_json::from_str(&ok(
        &bs,
        &["topic", "describe", "orders", "--output", "json"],
    ))
    .expect("one JSON document");
    let topic = &described[0];
    assert_eq!(topic["name"], "orders");
    assert_eq!(topic["partitionCount"], 2);
    assert_eq!(topic["configs"]["retention.ms"], "60000");
    assert_eq!(
        topic["partitions"][1],
        serde_json::json!({ "partition": 1, "leader": 0, "replicas": [0], "isr": [0] })
    );
    // The default stays the table.
    assert!(ok(&bs, &["topic", "list"]).contains("Replication Factor"));

    // User errors against a live broker: one line, no backtrace, and the
    // topic named once although a context and the error both name it.
    let unknown = "error: topic nope: UNKNOWN_TOPIC_OR_PARTITION (3)";
    assert_eq!(
        fails(&bs, &["topic", "describe", "nope"], 1).trim(),
        unknown
    );
    assert_eq!(
        fails(
            &bs,
            &[
                "group",
                "reset-offsets",
                "g",
                "--topic",
                "nope",
                "--to-earliest"
            ],
            1
        )
        .trim(),
        unknown
    );
}

#[test]
fn broker_config_typos_and_unhonoured_keys_are_warnings_naming_them() {
    let b = KafkaBroker::spawn(
        BrokerOpts::default()
            .with("num.partiton", 3)
            .env("KAFKA_AUTO_CREATE_TOPICS_ENABEL", "false")
            .env("KAFKA_NUM_NETWORK_THREADS", "3")
            .with("log.cleaner.threads", 2),
    )
    .expect("a typo does not stop the broker");
    let wanted = [
        "unknown key num.partiton ignored; did you mean num.partitions?",
        "unknown key KAFKA_AUTO_CREATE_TOPICS_ENABEL (auto.create.topics.enabel) ignored; \
         did you mean KAFKA_AUTO_CREATE_TOPICS_ENABLE (auto.create.topics.enable)?",
        "KAFKA_NUM_NETWORK_THREADS (num.network.threads) is a Kafka setting this broker does not honour; ignored",
        "log.cleaner.threads is a Kafka setting this broker does not honour; ignored",
    ];
    let mut log = String::new();
    // The warnings come before the listening line; the wait only covers a
    // slow flush of the log file.
    let all = wait_until(Duration::from_secs(10), || {
        log = std::fs::read_to_string(b.stderr_path()).unwrap_or_default();
        wanted.iter().all(|w| log.contains(w))
    });
    assert!(all, "missing warnings in:\n{log}");
    for w in wanted {
        let line = log.lines().find(|l| l.contains(w)).unwrap_or_default();
        assert!(line.contains("WARN"), "{line}");
    }
}

#[test]
fn zoo_cfg_typos_get_the_closest_key() {
    if is_apache() {
        return;
    }
    let server = Coordinator::spawn_with(Opts {
        config: Some("tickTme=2000\nmaxClientCnxn=10\n".into()),
        ..Opts::default()
    })
    .expect("a typo does not stop the server");
    let mut log = String::new();
    let found = wait_until(Duration::from_secs(10), || {
        log = std::fs::read_to_string(server.stderr_path()).unwrap_or_default();
        log.contains("unknown key tickTme ignored; did you mean tickTime?")
            && log.contains("unknown key maxClientCnxn ignored; did you mean maxClientCnxns?")
    });
    assert!(found, "{log}");
}

#[test]
fn server_errors_are_one_line_without_backtrace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.properties");
    let out = Command::new(broker_bin())
        .arg("start")
        .arg("--config")
        .arg(&missing)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run broker");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    let line = err.lines().last().unwrap_or_default();
    assert!(line.starts_with("error: cannot read"), "{err}");
    // The io error is said once, not again as a cause.
    assert_eq!(line.matches("No such file").count(), 1, "{line}");

    let out = Command::new(integration_tests::coord_bin())
        .args(["server", "--config"])
        .arg(&missing)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run coord");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    let line = err.lines().last().unwrap_or_default();
    assert_eq!(line.matches("No such file").count(), 1, "{line}");
}
