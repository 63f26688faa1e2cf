//! Dev mode in one command: `broker start` with no arguments in an empty
//! directory serves Kafka on 9092 (coordinator on 2181), keeps its data in
//! `./data/dev`, and exits 0 on SIGTERM. Alone in its binary: it needs the fixed
//! ports, so it must never run in parallel with itself.

use std::net::TcpListener;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use integration_tests::kafka::broker_bin;
use integration_tests::process::spawn_announcing;
use integration_tests::run_with_timeout;

#[test]
fn broker_start_with_no_arguments() {
    for port in [9092u16, 2181] {
        if let Err(e) = TcpListener::bind(("0.0.0.0", port)) {
            panic!(
                "port {port} is already taken on this machine ({e}); `broker start` dev mode \
                 needs 9092 and 2181 free, so this test cannot run here"
            );
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("broker-dev-")
        .tempdir()
        .expect("temp dir");
    let stderr = dir.path().join("broker.stderr");
    let mut cmd = Command::new(broker_bin());
    cmd.arg("start").current_dir(dir.path());
    let (mut child, addr) =
        spawn_announcing(cmd, "kafka", &stderr).expect("broker start announces itself");
    let tail = || integration_tests::process::tail(&stderr, 30);
    assert_eq!(addr.port(), 9092, "dev mode listens on {addr}");
    assert!(
        dir.path().join("data/dev/kafka-logs").is_dir(),
        "./data/dev/kafka-logs was not created\n{}",
        tail()
    );

    let mut kcat = Command::new("/usr/bin/kcat");
    kcat.args(["-b", "localhost:9092", "-L", "-m", "15"]);
    let (status, out) = run_with_timeout(kcat, "", Duration::from_secs(30)).expect("kcat runs");
    assert!(
        status.success(),
        "kcat -L failed ({status}):\n{out}\n{}",
        tail()
    );
    assert!(
        out.contains(" 1 brokers:") && out.contains(":9092"),
        "{out}"
    );
    // The in-process coordinator answers on 2181 too.
    let ruok = integration_tests::four_letter(([127, 0, 0, 1], 2181).into(), "ruok");
    assert_eq!(ruok.ok().as_deref(), Some("imok"), "coordinator on 2181");

    let kill = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .expect("kill -s TERM");
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("broker did not exit within 10 s of SIGTERM\n{}", tail());
        }
        thread::sleep(Duration::from_millis(25));
    };
    assert!(
        status.success(),
        "exit status {status} after SIGTERM\n{}",
        tail()
    );
}
