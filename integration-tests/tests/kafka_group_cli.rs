//! `broker group list|describe|reset-offsets|delete` against a running broker, with
//! groups made over raw requests (an offsets-only group committed as an admin, and
//! a live member): exact offsets and lag in the tables, dry runs that change
//! nothing, resets that commit, refusals for active groups, deletion; and a real
//! librdkafka consumer (kcat -G) seen through `describe`.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use integration_tests::kafka::{broker_bin, BrokerOpts, KafkaBroker};
use integration_tests::kafka_raw::group::{self, Member};
use integration_tests::kafka_raw::{self, err, str_bytes, KafkaConn};
use integration_tests::wait_until;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

const SESSION_MS: i32 = 300_000;

fn broker_cli(addr: SocketAddr, args: &[&str]) -> Output {
    Command::new(broker_bin())
        .args(args)
        .args(["--bootstrap-server", &addr.to_string()])
        .output()
        .expect("run broker CLI")
}

/// Runs the CLI, expecting success; returns stdout.
fn ok(addr: SocketAddr, args: &[&str]) -> String {
    let out = broker_cli(addr, args);
    assert!(
        out.status.success(),
        "broker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the CLI, expecting exit 1; returns stderr.
fn fails(addr: SocketAddr, args: &[&str]) -> String {
    let out = broker_cli(addr, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "broker {args:?} should fail; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The data rows of the table in `out`, as trimmed cells (the header is skipped).
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| l.contains('┆'))
        .skip(1)
        .map(|l| {
            l.split(['│', '┆'])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// `orders` with 5 records in partition 0 and 3 in partition 1.
fn orders(addr: SocketAddr) {
    let mut c = KafkaConn::connect(addr).expect("connect");
    let (code, msg) = kafka_raw::create_topic(&mut c, "orders", 2, 1, &[]).expect("create");
    assert_eq!(code, err::NONE, "{msg:?}");
    for (p, n) in [(0, 5), (1, 3)] {
        kafka_raw::wait_leader(addr, "orders", p).expect("leader");
        let values: Vec<Vec<u8>> = (0..n).map(|i| format!("v{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let batch = kafka_raw::simple_batch(&refs).expect("batch");
        let (code, base) = kafka_raw::produce(&mut c, "orders", p, batch).expect("produce");
        assert_eq!((code, base), (err::NONE, 0));
    }
}

/// The committed offsets of `group` as (partition, offset) for `orders`.
fn committed(addr: SocketAddr, group_id: &str) -> Vec<(i32, i64)> {
    let mut c = KafkaConn::connect(addr).expect("connect");
    let (code, rows) = group::fetch(&mut c, group_id).expect("fetch");
    assert_eq!(code, err::NONE);
    rows.into_iter()
        .filter(|r| r.0 == "orders")
        .map(|r| (r.1, r.2))
        .collect()
}

fn admin_commit(addr: SocketAddr, group_id: &str, offsets: &[(i32, i64)]) {
    let mut c = KafkaConn::connect(addr).expect("connect");
    let parts: Vec<group::Commit<'_>> = offsets
        .iter()
        .map(|&(p, o)| ("orders", p, o, None))
        .collect();
    let codes = group::commit(&mut c, group_id, -1, "", &parts).expect("commit");
    assert!(codes.iter().all(|c| c.2 == err::NONE), "{codes:?}");
}

fn broker() -> KafkaBroker {
    let b = KafkaBroker::spawn(BrokerOpts::default().with("group.initial.rebalance.delay.ms", 0))
        .expect("spawn broker");
    kafka_raw::wait_registered(b.addr()).expect("registered");
    b
}

#[test]
fn list_and_describe_show_exact_offsets_and_lag() {
    let b = broker();
    let addr = b.addr();
    orders(addr);
    admin_commit(addr, "batch", &[(0, 2), (1, 3)]);
    let mut c = KafkaConn::connect(addr).expect("connect");
    let live: Member =
        group::join_alone(&mut c, "live", SESSION_MS, &[("orders", &[0, 1])]).expect("join");
    let codes = group::commit(
        &mut c,
        "live",
        live.generation,
        &live.member_id,
        &[("orders", 0, 4, None)],
    )
    .expect("commit");
    assert_eq!(codes, [("orders".to_owned(), 0, err::NONE)]);

    let listed = rows(&ok(addr, &["group", "list"]));
    assert_eq!(
        listed,
        [["batch", "Empty", "-"], ["live", "Stable", "consumer"]],
        "group list"
    );

    let out = ok(addr, &["group", "describe", "batch"]);
    assert!(
        out.starts_with("Consumer group 'batch' has no active members."),
        "{out}"
    );
    assert_eq!(
        rows(&out),
        [
            ["batch", "orders", "0", "2", "5", "3", "-", "-", "-"],
            ["batch", "orders", "1", "3", "3", "0", "-", "-", "-"],
        ],
        "describe batch:\n{out}"
    );

    let out = ok(addr, &["group", "describe", "live"]);
    assert!(
        out.starts_with("Consumer group 'live' is Stable with 1 member(s)"),
        "{out}"
    );
    let id = live.member_id.as_str();
    assert_eq!(
        rows(&out),
        [
            [
                "live",
                "orders",
                "0",
                "4",
                "5",
                "1",
                id,
                "/127.0.0.1",
                "eddy-it"
            ],
            [
                "live",
                "orders",
                "1",
                "-",
                "3",
                "-",
                id,
                "/127.0.0.1",
                "eddy-it"
            ],
        ],
        "describe live:\n{out}"
    );

    let err = fails(addr, &["group", "describe", "nobody"]);
    assert!(
        err.contains("Consumer group 'nobody' does not exist."),
        "{err}"
    );
}

#[test]
fn list_and_describe_take_output_json_and_plain() {
    let b = broker();
    let addr = b.addr();
    orders(addr);
    admin_commit(addr, "batch", &[(0, 2), (1, 3)]);

    assert_eq!(
        ok(addr, &["group", "list", "--output", "plain"]),
        "batch\tEmpty\t-\n"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(addr, &["group", "list", "--output", "json"])).expect("json");
    assert_eq!(
        listed,
        serde_json::json!([{ "group": "batch", "state": "Empty", "protocolType": null }])
    );

    assert_eq!(
        ok(addr, &["group", "describe", "batch", "--output", "plain"]),
        "batch\torders\t0\t2\t5\t3\t-\t-\t-\nbatch\torders\t1\t3\t3\t0\t-\t-\t-\n"
    );
    let described: serde_json::Value = serde_json::from_str(&ok(
        addr,
        &["group", "describe", "batch", "--output", "json"],
    ))
    .expect("one JSON document");
    assert_eq!(described["group"], "batch");
    assert_eq!(described["state"], "Empty");
    assert_eq!(
        described["partitions"][0],
        serde_json::json!({
            "topic": "orders", "partition": 0, "currentOffset": 2, "logEndOffset": 5,
            "lag": 3, "consumerId": null, "host": null, "clientId": null,
        })
    );
    assert_eq!(described["partitions"][1]["lag"], 0);
}

#[test]
fn reset_offsets_plans_commits_and_refuses_active_groups() {
    let b = broker();
    let addr = b.addr();
    orders(addr);
    admin_commit(addr, "batch", &[(0, 2), (1, 3)]);

    // A dry run prints the plan and commits nothing.
    let out = ok(
        addr,
        &[
            "group",
            "reset-offsets",
            "batch",
            "--topic",
            "orders",
            "--to-earliest",
        ],
    );
    assert_eq!(
        rows(&out),
        [
            ["batch", "orders", "0", "2", "0"],
            ["batch", "orders", "1", "3", "0"]
        ],
        "{out}"
    );
    assert_eq!(
        committed(addr, "batch"),
        [(0, 2), (1, 3)],
        "after a dry run"
    );

    let reset = |args: &[&str]| {
        let mut all = vec!["group", "reset-offsets", "batch"];
        all.extend_from_slice(args);
        all.push("--execute");
        ok(addr, &all)
    };
    reset(&["--topic", "orders:0", "--shift-by", "-1"]);
    assert_eq!(
        committed(addr, "batch"),
        [(0, 1), (1, 3)],
        "shift-by -1 on p0"
    );
    reset(&["--all-topics", "--to-earliest"]);
    assert_eq!(committed(addr, "batch"), [(0, 0), (1, 0)], "to-earliest");
    // Beyond the log end: moved to the log end, as Kafka does.
    let out = reset(&["--topic", "orders", "--to-offset", "100"]);
    assert!(out.contains("Committed the new offsets"), "{out}");
    assert_eq!(committed(addr, "batch"), [(0, 5), (1, 3)], "to-offset 100");
    reset(&[
        "--topic",
        "orders",
        "--to-datetime",
        "2000-01-01T00:00:00.000",
    ]);
    assert_eq!(
        committed(addr, "batch"),
        [(0, 0), (1, 0)],
        "to a time before all"
    );
    reset(&["--topic", "orders", "--to-datetime", "2999-01-01T00:00:00Z"]);
    assert_eq!(
        committed(addr, "batch"),
        [(0, 5), (1, 3)],
        "to a time after all"
    );
    // Two rules is a usage error (clap's exit 2), before anything is sent.
    let two_rules = broker_cli(
        addr,
        &[
            "group",
            "reset-offsets",
            "batch",
            "--topic",
            "orders",
            "--to-latest",
            "--to-earliest",
        ],
    );
    assert_eq!(two_rules.status.code(), Some(2));
    let err = String::from_utf8_lossy(&two_rules.stderr);
    assert!(err.contains("cannot be used with"), "{err}");
    assert_eq!(committed(addr, "batch"), [(0, 5), (1, 3)]);

    // A group with a member cannot be reset, not even as a dry run.
    let mut c = KafkaConn::connect(addr).expect("connect");
    let live = group::join_alone(&mut c, "live", SESSION_MS, &[("orders", &[0, 1])]).expect("join");
    let codes = group::commit(
        &mut c,
        "live",
        live.generation,
        &live.member_id,
        &[("orders", 0, 4, None)],
    )
    .expect("commit");
    assert_eq!(codes, [("orders".to_owned(), 0, err::NONE)]);
    for extra in [None, Some("--execute")] {
        let mut args = vec![
            "group",
            "reset-offsets",
            "live",
            "--topic",
            "orders",
            "--to-earliest",
        ];
        args.extend(extra);
        let err = fails(addr, &args);
        assert!(
            err.contains(
                "Assignments can only be reset if the group 'live' is inactive, \
                 but the current state is Stable."
            ),
            "{err}"
        );
    }
    assert_eq!(committed(addr, "live"), [(0, 4)]);

    // Once its member leaves, it can.
    let left: LeaveGroupResponse = c
        .send(
            1,
            &LeaveGroupRequest::default()
                .with_group_id(group::group_id("live"))
                .with_member_id(str_bytes(&live.member_id)),
        )
        .expect("leave");
    assert_eq!(left.error_code, err::NONE);
    ok(
        addr,
        &[
            "group",
            "reset-offsets",
            "live",
            "--topic",
            "orders",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(committed(addr, "live"), [(0, 0), (1, 0)]);
}

#[test]
fn delete_removes_inactive_groups_only() {
    let b = broker();
    let addr = b.addr();
    orders(addr);
    admin_commit(addr, "batch", &[(0, 2)]);
    let mut c = KafkaConn::connect(addr).expect("connect");
    group::join_alone(&mut c, "live", SESSION_MS, &[("orders", &[0, 1])]).expect("join");

    let err = fails(addr, &["group", "delete", "live"]);
    assert!(err.contains("NON_EMPTY_GROUP"), "{err}");
    let out = ok(addr, &["group", "delete", "batch"]);
    assert_eq!(
        out.trim(),
        "Deletion of requested consumer groups ('batch') was successful."
    );
    assert_eq!(committed(addr, "batch"), []);
    let err = fails(addr, &["group", "describe", "batch"]);
    assert!(err.contains("does not exist"), "{err}");
    let err = fails(addr, &["group", "delete", "batch"]);
    assert!(
        err.contains("Consumer group 'batch' does not exist."),
        "{err}"
    );
    assert_eq!(
        rows(&ok(addr, &["group", "list"])),
        [["live", "Stable", "consumer"]]
    );
    // The other subcommands still parse and run alongside.
    assert!(ok(addr, &["topic", "list"]).contains("orders"));
}

#[test]
fn describe_follows_a_real_kcat_consumer() {
    let b = broker();
    let addr = b.addr();
    orders(addr);
    let bootstrap = addr.to_string();
    // librdkafka's balanced consumer: joins, syncs, heartbeats and commits on its own.
    let mut kcat = Command::new("/usr/bin/kcat")
        .args([
            "-b",
            &bootstrap,
            "-G",
            "kc",
            "-q",
            "-o",
            "beginning",
            "orders",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn kcat");
    let mut last = String::new();
    // Stable with one member owning both partitions, everything consumed and committed
    // (auto-commit runs every 5 s).
    let settled = wait_until(Duration::from_secs(60), || {
        last = String::from_utf8_lossy(&broker_cli(addr, &["group", "describe", "kc"]).stdout)
            .into_owned();
        let r = rows(&last);
        last.contains("is Stable with 1 member(s)")
            && r.len() == 2
            && r.iter()
                .all(|row| row[3] == row[4] && row[5] == "0" && row[6] != "-")
    });
    let _ = kcat.kill();
    let _ = kcat.wait();
    assert!(settled, "kcat's group never settled:\n{last}");
    let r = rows(&last);
    assert_eq!(
        r.iter()
            .map(|row| (row[2].as_str(), row[3].as_str(), row[8].as_str()))
            .collect::<Vec<_>>(),
        [("0", "5", "rdkafka"), ("1", "3", "rdkafka")],
        "{last}"
    );
}
