//! The ZooKeeper C client (`cli_mt` from Debian's `zookeeper-bin`, libzookeeper-mt
//! 3.8): its fixed-size handshake, create/set/get/ls/exists/delete, and the watch
//! events its `exists` and `ls` leave behind.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use integration_tests::Coordinator;

const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";

#[test]
fn cli_mt_round_trip_and_watch_events() {
    assert!(
        Path::new(CLI_MT).exists(),
        "{CLI_MT} missing: install zookeeper-bin (.ci/run does)"
    );
    let server = Coordinator::spawn().expect("spawn server");
    // cli_mt prints its answers on stderr (unbuffered).
    let mut child = Command::new(CLI_MT)
        .arg(server.connect_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cli_mt");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stdin = child.stdin.take().expect("stdin");
    // The C shell runs commands asynchronously; the last one's answer ends the script.
    stdin
        .write_all(
            b"create /cc\nset /cc newdata\nget /cc\nls /\nexists /cc\ndelete /cc\nexists /cc\n",
        )
        .expect("send commands");

    // Answers and watch events are printed by the client's own threads, so
    // wait until every marker has shown up rather than for a particular last line.
    let markers = [
        "Error -101 for /cc",
        "DELETED_EVENT state = CONNECTED_STATE for path /cc",
        "CHILD_EVENT state = CONNECTED_STATE for path /",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out: Vec<String> = Vec::new();
    while !markers.iter().all(|m| out.iter().any(|l| l.contains(m))) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => out.push(line),
            Err(_) => panic!("cli_mt output incomplete:\n{}", out.join("\n")),
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let text = out.join("\n");
    assert!(text.contains("Got a new session id"), "{text}");
    assert!(text.contains("[/cc]: rc = 0"), "create: {text}");
    assert!(text.contains("newdata"), "get after set: {text}");
    assert!(text.contains("version=1"), "stat after one set: {text}");
    let ls = text.split("/: rc = 0").nth(1).unwrap_or_default();
    assert!(
        ls.contains("\tcc") && ls.contains("\tzookeeper"),
        "ls /: {text}"
    );
    // exists and ls left a data watch on /cc and a child watch on /: delete fires both.
    assert!(
        text.contains("DELETED_EVENT state = CONNECTED_STATE for path /cc"),
        "{text}"
    );
    assert!(
        text.contains("CHILD_EVENT state = CONNECTED_STATE for path /"),
        "{text}"
    );
}
