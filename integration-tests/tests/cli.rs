//! The `coord` command-line client against a running server: CRUD with
//! readable, JSON and plain output, one-line errors in zkCli's words with a
//! non-zero exit, and `coord watch -r` printing events as they happen, data
//! as the text it is, one line per change.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use integration_tests::kafka::{BrokerOpts, KafkaBroker};
use integration_tests::{coord_bin, is_apache, kafka_raw, zk, zk_connect, Coordinator};

fn coord(server: &Coordinator, args: &[&str]) -> Output {
    Command::new(coord_bin())
        .args(["--server", &server.connect_string()])
        .args(args)
        .output()
        .expect("run coord")
}

fn ok(server: &Coordinator, args: &[&str]) -> String {
    let out = coord(server, args);
    assert!(
        out.status.success(),
        "coord {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn crud_with_text_and_json_output() {
    // The CLI is ours, but it must work against real ZooKeeper too.
    let server = Coordinator::spawn().expect("spawn server");
    assert_eq!(
        ok(&server, &["create", "/app", "hello"]).trim(),
        "Created /app"
    );
    assert_eq!(ok(&server, &["get", "/app"]).trim(), "hello");
    assert_eq!(
        ok(&server, &["create", "-s", "/app/job-", "x"]).trim(),
        "Created /app/job-0000000000"
    );
    assert_eq!(ok(&server, &["ls", "/app"]).trim(), "job-0000000000");

    let json: serde_json::Value =
        serde_json::from_str(&ok(&server, &["--json", "get", "-s", "/app"])).expect("json");
    assert_eq!(json["data"], "hello");
    assert_eq!(json["stat"]["numChildren"], 1);
    assert_eq!(json["stat"]["version"], 0);

    assert!(ok(&server, &["set", "-v", "0", "/app", "v2"]).contains("dataVersion = 1"));
    let stale = coord(&server, &["set", "-v", "0", "/app", "v3"]);
    assert_eq!(stale.status.code(), Some(1));
    let err = String::from_utf8_lossy(&stale.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("/app"), "{err}");

    let tree = ok(&server, &["ls", "-R", "/app"]);
    assert_eq!(
        tree.lines().collect::<Vec<_>>(),
        ["/app", "/app/job-0000000000"]
    );
    assert!(ok(&server, &["delete", "-r", "/app"]).contains("2 node(s)"));
    let gone = coord(&server, &["stat", "/app"]);
    assert_eq!(gone.status.code(), Some(1));
}

#[test]
fn unreachable_server_is_one_line_and_exit_1() {
    let started = Instant::now();
    let out = Command::new(coord_bin())
        .args(["--server", "127.0.0.1:1", "ls", "/"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run coord");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // The real cause, at once: not `timeout` after the session timeout.
    assert_eq!(
        err.trim(),
        "error: cannot connect to 127.0.0.1:1: Connection refused (os error 111)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Runs coord expecting exit 1; returns stderr, checked to be one line
/// with no backtrace although `RUST_BACKTRACE=1` is set.
fn fails(server: &Coordinator, args: &[&str]) -> String {
    let out = Command::new(coord_bin())
        .args(args)
        .args(["--server", &server.connect_string()])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run coord");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "coord {args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    err.trim().to_owned()
}

#[test]
fn errors_use_zkclis_words() {
    let server = Coordinator::spawn().expect("spawn server");
    assert_eq!(
        fails(&server, &["get", "/nope"]),
        "error: Node does not exist: /nope"
    );
    assert_eq!(
        fails(&server, &["stat", "/nope"]),
        "error: Node does not exist: /nope"
    );
    ok(&server, &["create", "/a"]);
    ok(&server, &["create", "/a/b"]);
    assert_eq!(
        fails(&server, &["create", "/a"]),
        "error: Node already exists: /a"
    );
    assert_eq!(
        fails(&server, &["delete", "/a"]),
        "error: Node not empty: /a"
    );
    assert_eq!(
        fails(&server, &["set", "-v", "7", "/a", "x"]),
        "error: version No is not valid : /a"
    );
    assert_eq!(
        fails(&server, &["create", "/x/y"]),
        "error: Node does not exist: /x/y"
    );
    ok(&server, &["create", "-e", "/e"]);
    // The ephemeral went with the session of the command that made it.
    assert_eq!(
        fails(&server, &["ls", "/e"]),
        "error: Node does not exist: /e"
    );
}

#[test]
fn server_help_lists_server_options_and_the_default_data_dir() {
    let out = Command::new(coord_bin())
        .args(["server", "--help"])
        .output()
        .expect("run coord");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    // (`--servers`, the ensemble list, is a server option.)
    for client_only in ["--server <", "--output", "--json"] {
        assert!(!help.contains(client_only), "{client_only} in:\n{help}");
    }
    assert!(help.contains("--data-dir"), "{help}");
    assert!(help.contains("[default: data/coordinator"), "{help}");
    // Client commands still take their options on either side.
    let out = Command::new(coord_bin())
        .args(["ls", "/", "--server", "127.0.0.1:1"])
        .output()
        .expect("run coord");
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"));
}

#[test]
fn list_and_describe_take_output_json_and_plain() {
    let server = Coordinator::spawn().expect("spawn server");
    ok(&server, &["create", "/o"]);
    ok(&server, &["create", "/o/b", r#"{"k":[1,2]}"#]);
    ok(&server, &["create", "/o/a", "text"]);

    let ls: serde_json::Value =
        serde_json::from_str(&ok(&server, &["ls", "/o", "--output", "json"])).expect("json");
    assert_eq!(ls, serde_json::json!(["a", "b"]));
    assert_eq!(ok(&server, &["ls", "/o", "--output", "plain"]), "a\nb\n");
    let tree: serde_json::Value =
        serde_json::from_str(&ok(&server, &["ls", "-R", "/o", "--output", "json"])).expect("json");
    assert_eq!(tree, serde_json::json!(["/o", "/o/a", "/o/b"]));
    assert_eq!(
        ok(&server, &["ls", "-R", "/o", "--output", "plain"]),
        "/o\n/o/a\n/o/b\n"
    );
    assert_eq!(ok(&server, &["ls", "/o/a", "--output", "plain"]), "");

    let stat: serde_json::Value =
        serde_json::from_str(&ok(&server, &["stat", "/o", "--output", "json"])).expect("json");
    assert_eq!(stat["numChildren"], 2);
    let plain = ok(&server, &["stat", "/o", "--output", "plain"]);
    assert!(plain.lines().any(|l| l == "numChildren\t2"), "{plain}");

    // JSON data is embedded as JSON, text as a string.
    let get: serde_json::Value =
        serde_json::from_str(&ok(&server, &["get", "/o/b", "--output", "json"])).expect("json");
    assert_eq!(get["data"], serde_json::json!({"k": [1, 2]}));
    assert_eq!(get["encoding"], "json");
    let get: serde_json::Value =
        serde_json::from_str(&ok(&server, &["--output", "json", "get", "/o/a"])).expect("json");
    assert_eq!(
        (&get["data"], &get["encoding"]),
        (&serde_json::json!("text"), &serde_json::json!("utf-8"))
    );
    assert_eq!(ok(&server, &["get", "/o/b"]), "{\"k\":[1,2]}\n");
}

/// A running `coord watch` with its stdout lines arriving on a channel.
struct Watch {
    child: std::process::Child,
    lines: mpsc::Receiver<Option<String>>,
    deadline: Instant,
}

impl Watch {
    /// Starts `coord watch` with `args` and waits until the watch is set.
    fn start(server: &Coordinator, args: &[&str]) -> Watch {
        let mut child = Command::new(coord_bin())
            .args(["--server", &server.connect_string(), "watch"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn watch");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let ready = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("watching") {
                    let _ = ready.send(None);
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(Some(line));
            }
        });
        let mut watch = Watch {
            child,
            lines: rx,
            deadline: Instant::now() + Duration::from_secs(20),
        };
        assert_eq!(watch.recv(), None, "watch is set");
        watch
    }

    fn recv(&mut self) -> Option<String> {
        self.lines
            .recv_timeout(self.deadline.saturating_duration_since(Instant::now()))
            .expect("a line in time")
    }

    fn next_line(&mut self) -> String {
        self.recv().expect("a stdout line")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `path` the way Kafka registers a broker: one multi that creates
/// it empty and then sets its data (two events, one transaction).
fn create_then_set_in_one_multi(server: &Coordinator, path: &str, data: &[u8]) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let c = zk_connect(server.addr(), Duration::from_secs(10))
            .await
            .expect("connect");
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let mut w = c.new_multi_writer();
        w.add_create(path, b"", &open).expect("add create");
        w.add_set_data(path, data, None).expect("add set");
        w.commit().await.expect("multi");
    });
}

fn create_raw(server: &Coordinator, path: &str, data: &[u8]) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let c = zk_connect(server.addr(), Duration::from_secs(10))
            .await
            .expect("connect");
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        c.create(path, data, &open).await.expect("create");
    });
}

const BROKER_JSON: &str =
    r#"{"host":"kafka1","port":9092,"endpoints":["PLAINTEXT://kafka1:9092"]}"#;

#[test]
fn watch_prints_data_as_text_and_one_line_per_change() {
    let server = Coordinator::spawn().expect("spawn server");
    ok(&server, &["create", "/w"]);
    let mut watch = Watch::start(&server, &["-r", "/w"]);
    create_then_set_in_one_multi(&server, "/w/1", BROKER_JSON.as_bytes());
    ok(&server, &["set", "/w/1", "plain text"]);
    create_raw(&server, "/w/bin", &[0, 1, 2, 0xff]);
    ok(&server, &["delete", "/w/1"]);
    // A duplicate `changed` for the multi would come second and fail here.
    assert_eq!(watch.next_line(), format!("created /w/1 {BROKER_JSON}"));
    assert_eq!(watch.next_line(), "changed /w/1 plain text");
    assert_eq!(watch.next_line(), "created /w/bin base64:AAEC/w==");
    assert_eq!(watch.next_line(), "deleted /w/1");
}

#[test]
fn watch_json_embeds_json_data_once_per_change() {
    let server = Coordinator::spawn().expect("spawn server");
    ok(&server, &["create", "/j"]);
    let mut watch = Watch::start(&server, &["-r", "/j", "--output", "json"]);
    create_then_set_in_one_multi(&server, "/j/1", BROKER_JSON.as_bytes());
    create_raw(&server, "/j/bin", &[0, 0xff]);
    let first: serde_json::Value = serde_json::from_str(&watch.next_line()).expect("json");
    assert_eq!(
        (&first["event"], &first["path"]),
        (&serde_json::json!("created"), &serde_json::json!("/j/1"))
    );
    assert_eq!(first["data"]["port"], 9092);
    assert_eq!(first["encoding"], "json");
    let second: serde_json::Value = serde_json::from_str(&watch.next_line()).expect("json");
    assert_eq!(
        second["path"], "/j/bin",
        "the multi printed twice: {second}"
    );
    assert_eq!(
        (&second["data"], &second["encoding"]),
        (&serde_json::json!("AP8="), &serde_json::json!("base64"))
    );
}

#[test]
fn watch_prints_every_event_until_stopped() {
    if is_apache() {
        // Same client either way; once is enough.
        return;
    }
    let server = Coordinator::spawn().expect("spawn server");
    ok(&server, &["create", "/w"]);
    let mut watch = Watch::start(&server, &["-r", "/w", "--output", "json"]);

    ok(&server, &["create", "/w/a", "one"]);
    ok(&server, &["set", "/w/a", "two"]);
    ok(&server, &["delete", "/w/a"]);
    let mut events = Vec::new();
    while events.len() < 3 {
        let line = watch.next_line();
        let v: serde_json::Value = serde_json::from_str(&line).expect("json event");
        events.push((
            v["event"].as_str().unwrap_or_default().to_string(),
            v["path"].clone(),
        ));
    }
    assert_eq!(
        events,
        [
            ("created".to_string(), serde_json::json!("/w/a")),
            ("changed".to_string(), serde_json::json!("/w/a")),
            ("deleted".to_string(), serde_json::json!("/w/a")),
        ]
    );
}

#[test]
fn watch_shows_a_real_broker_registration_once() {
    let server = Coordinator::spawn().expect("spawn server");
    let mut watch = Watch::start(&server, &["-r", "/"]);
    let broker = KafkaBroker::spawn(
        BrokerOpts::default()
            .zookeeper(server.connect_string())
            .id(1),
    )
    .expect("spawn broker");
    kafka_raw::wait_registered(broker.addr()).expect("registered");
    // Everything the registration fired comes before this node's event.
    ok(&server, &["create", "/fence"]);
    let mut registration = Vec::new();
    loop {
        let line = watch.next_line();
        if line.starts_with("created /fence") {
            break;
        }
        if line.split(' ').nth(1) == Some("/brokers/ids/1") {
            registration.push(line);
        }
    }
    assert_eq!(registration.len(), 1, "{registration:#?}");
    // Kafka's registration JSON, as itself.
    assert!(
        registration[0].starts_with("created /brokers/ids/1 {\""),
        "{registration:#?}"
    );
    assert!(
        registration[0].contains("\"endpoints\":["),
        "{registration:#?}"
    );
}
