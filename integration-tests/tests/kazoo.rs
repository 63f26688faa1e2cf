//! Runs the kazoo (Python client) scripts under `py/` against a fresh server each: CRUD,
//! expiry, watches, transactions and the Lock/Election/Counter/Barrier/DoubleBarrier recipes.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use integration_tests::{run_with_timeout, Coordinator, Opts};

/// Debian's interpreter, which has python3-kazoo; the pyenv python on PATH does not.
const PYTHON: &str = "/usr/bin/python3";

fn run_script(opts: Opts, script: &str, args: &[&str]) {
    let server = Coordinator::spawn_with(opts).expect("spawn server");
    let py_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py");
    let mut cmd = Command::new(PYTHON);
    cmd.current_dir(&py_dir)
        .arg("-u")
        .arg(py_dir.join(script))
        .arg(server.connect_string())
        .args(args);
    let (status, output) = run_with_timeout(cmd, "", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{script} {args:?} did not run to completion: {e:#}"));
    assert!(
        status.success(),
        "{script} {args:?} failed ({status}):\n{output}"
    );
    assert!(
        output.contains("all checks passed"),
        "{script} {args:?} exited 0 but did not finish:\n{output}"
    );
}

#[test]
fn kazoo_crud_versions_sequential() {
    run_script(Opts::default(), "crud.py", &[]);
}

#[test]
fn kazoo_ephemeral_close_and_expiry() {
    run_script(Opts::default().tick_time(200), "expiry.py", &[]);
}

#[test]
fn kazoo_watches() {
    run_script(Opts::default(), "watches.py", &[]);
}

#[test]
fn kazoo_transactions() {
    run_script(Opts::default(), "transactions.py", &[]);
}

#[test]
fn kazoo_lock() {
    run_script(Opts::default(), "recipes.py", &["lock"]);
}

#[test]
fn kazoo_election() {
    run_script(Opts::default(), "recipes.py", &["election"]);
}

#[test]
fn kazoo_counter() {
    run_script(Opts::default(), "recipes.py", &["counter"]);
}

#[test]
fn kazoo_barrier() {
    run_script(Opts::default(), "recipes.py", &["barrier"]);
}

#[test]
fn kazoo_double_barrier() {
    run_script(Opts::default(), "recipes.py", &["double_barrier"]);
}
