//! The `coord` command-line client against a running server: CRUD with
//! readable and JSON output, one-line errors with a non-zero exit, and
//! `coord watch -r` printing events as they happen.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use integration_tests::{coord_bin, is_apache, Coordinator};

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
    let out = Command::new(coord_bin())
        .args(["--server", "127.0.0.1:1", "ls", "/"])
        .output()
        .expect("run coord");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: cannot connect"), "{err}");
}

#[test]
fn watch_prints_every_event_until_stopped() {
    if is_apache() {
        // Same client either way; once is enough.
        return;
    }
    let server = Coordinator::spawn().expect("spawn server");
    ok(&server, &["create", "/w"]);
    let mut child = Command::new(coord_bin())
        .args([
            "--server",
            &server.connect_string(),
            "--json",
            "watch",
            "-r",
            "/w",
        ])
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
    let deadline = Instant::now() + Duration::from_secs(20);
    let next = || rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    assert_eq!(next().expect("watch is set"), None);

    ok(&server, &["create", "/w/a", "one"]);
    ok(&server, &["set", "/w/a", "two"]);
    ok(&server, &["delete", "/w/a"]);
    let mut events = Vec::new();
    while events.len() < 3 {
        let line = next().expect("an event").expect("stdout line");
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
    child.kill().expect("stop watch");
    let _ = child.wait();
}
