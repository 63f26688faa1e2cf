//! Drives Apache's own `zkCli.sh` (Debian package `zookeeper`) with command scripts on stdin
//! and checks its printed results: CRUD, sequential/ephemeral nodes, stat output, ACLs, auth,
//! whoami, getEphemerals, getAllChildrenNumber, persistent watches, and that `coord` words its
//! errors as zkCli does.

use std::process::Command;
use std::time::Duration;

use integration_tests::{assert_in_order, run_with_timeout, Coordinator};

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// Runs `script` through zkCli against `server`; returns stdout+stderr in write order with
/// SLF4J's "no binding" chatter removed (Debian ships zkCli without a logging backend, which
/// also keeps it quiet otherwise).
fn zkcli(server: &Coordinator, script: &str) -> String {
    let mut cmd = Command::new(ZKCLI);
    cmd.args(["-server", &server.connect_string()]);
    // zkCli's exit status is that of the last failing command, so it says nothing here. The
    // answer to a final `ls /zookeeper` shows that the whole script ran (the Closed event
    // after `quit` is printed by another thread and may lose the race with the JVM's exit).
    let script = format!("{script}\nls /zookeeper\nquit\n");
    let (_status, out) = run_with_timeout(cmd, &script, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("zkCli did not finish: {e:#}"));
    let out = out
        .lines()
        .filter(|l| !l.starts_with("SLF4J:"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    assert!(
        out.contains("[config, quota]"),
        "zkCli did not run the whole script:\n{out}"
    );
    out
}

/// The first line starting with `prefix` parsed as a `[a, b, c]` list, sorted (zkCli prints
/// some lists in server order, which is unspecified).
fn sorted_list(out: &str, prefix: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{out}"));
    let inner = line.trim().trim_start_matches('[').trim_end_matches(']');
    let mut items: Vec<String> = inner
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    items.sort();
    items
}

#[test]
fn zkcli_create_get_set_delete() {
    let server = Coordinator::spawn().expect("spawn server");
    let out = zkcli(
        &server,
        "create /c hello
create /c/child x
create -e /c/eph e
create -s /c/s- s
create /c dup
ls /c
ls -s /c
get /c
get -s /c
set /c world
set -v 0 /c stale
set -v 1 /c fresh
stat /c
get /c
getAllChildrenNumber /c
delete /c
delete /c/child
deleteall /c
ls /
get /nope
ls /nope
create /nope/x
stat /nope",
    );
    assert_in_order(
        &out,
        &[
            "Created /c\n",
            "Created /c/child\n",
            "Created /c/eph\n",
            "Created /c/s-0000000002\n",
            "Node already exists: /c",
            "[child, eph, s-0000000002]\n",
            "[child, eph, s-0000000002]\n",
            "cversion = 3\n",
            "dataVersion = 0\n",
            "dataLength = 5\n",
            "numChildren = 3\n",
            "hello\n",
            "hello\n",
            "cZxid = 0x",
            "dataVersion = 0\n",
            "version No is not valid : /c",
            "dataVersion = 2\n",
            "dataLength = 5\n",
            "fresh\n",
            "3\n",
            "Node not empty: /c",
            "[zookeeper]\n",
            "Node does not exist: /nope",
            "Node does not exist: /nope",
            "Node does not exist: /nope/x",
            "Node does not exist: /nope",
        ],
    );
}

#[test]
fn zkcli_ephemerals_and_stat_fields() {
    let server = Coordinator::spawn().expect("spawn server");
    let out = zkcli(
        &server,
        "create /g
create -e /g/e1 a
create -e /g/e2 b
create -s -e /g/q- c
create /h
getEphemerals /g
getEphemerals /h
stat /g/e1
create -c /ctr
stat /ctr
create -t 5000 /ttl x
stat /ttl
sync /",
    );
    assert_in_order(
        &out,
        &[
            "Created /g\n",
            "Created /g/e1\n",
            "Created /g/e2\n",
            "Created /g/q-0000000002\n",
            "Created /h\n",
            "\n[]\n",
            "ephemeralOwner = 0x",
            "dataLength = 1\n",
            "Created /ctr\n",
            "ephemeralOwner = 0x0\n",
            "Created /ttl\n",
            "ephemeralOwner = 0x0\n",
            "Sync is OK",
        ],
    );
    assert_eq!(
        sorted_list(&out, "[/g/"),
        ["/g/e1", "/g/e2", "/g/q-0000000002"]
    );
    // The ephemeral's owner is this (non-zero) session.
    let owner = out
        .split("ephemeralOwner = ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .unwrap_or_default();
    assert_ne!(owner, "0x0", "ephemeral shows no owner:\n{out}");
}

#[test]
fn zkcli_acl_auth_and_whoami() {
    let server = Coordinator::spawn().expect("spawn server");
    // digest ids are user:base64(sha1("user:password")).
    let out = zkcli(
        &server,
        "whoami
create /a data
getAcl /a
setAcl /a world:anyone:ra
getAcl /a
set /a denied
create /a/kid
get /a
setAcl -v 0 /a world:anyone:cdrwa
setAcl -v 1 /a world:anyone:cdrwa
set /a allowed
get /a
addauth digest alice:secret
whoami
create /mine x digest:alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=:cdrwa
getAcl /mine
create /auth y auth::cdrwa
getAcl /auth
get /auth",
    );
    assert_in_order(
        &out,
        &[
            "Auth scheme: User\nip: 127.0.0.1\n",
            "Created /a\n",
            "'world,'anyone\n: cdrwa\n",
            "'world,'anyone\n: ra\n",
            "Insufficient permission : /a\n",
            "Insufficient permission : /a/kid\n",
            "data\n",
            "version No is not valid : /a\n",
            "allowed\n",
            "Auth scheme: User\n",
            "Created /mine\n",
            "'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=\n: cdrwa\n",
            "Created /auth\n",
            "'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=\n: cdrwa\n",
            "y\n",
        ],
    );
    let whoami = out.rsplit("Auth scheme: User\n").next().unwrap_or_default();
    assert!(
        whoami.contains("digest: alice\n") && whoami.contains("ip: 127.0.0.1\n"),
        "whoami after addauth:\n{out}"
    );
}

#[test]
fn zkcli_persistent_recursive_watch() {
    let server = Coordinator::spawn().expect("spawn server");
    let out = zkcli(
        &server,
        "addWatch /w
create /w
create /w/x
set /w/x 1
delete /w/x
addWatch -m PERSISTENT /p
create /p
create /p/c
ls /w",
    );
    // Events are printed by zkCli's event thread, so only their presence is checked.
    for event in [
        "type:NodeCreated path:/w\n",
        "type:NodeCreated path:/w/x\n",
        "type:NodeDataChanged path:/w/x\n",
        "type:NodeDeleted path:/w/x\n",
        "type:NodeCreated path:/p\n",
        "type:NodeChildrenChanged path:/p\n",
    ] {
        assert!(
            out.contains(event),
            "missing watch event {event:?} in:\n{out}"
        );
    }
    assert!(
        !out.contains("type:NodeChildrenChanged path:/w\n"),
        "recursive watch sent a child event:\n{out}"
    );
}

/// `coord`'s error for `args` without its `error: ` prefix.
fn coord_error(server: &Coordinator, args: &[&str]) -> String {
    let out = Command::new(integration_tests::coord_bin())
        .args(["--server", &server.connect_string()])
        .args(args)
        .output()
        .expect("run coord");
    assert_eq!(out.status.code(), Some(1), "coord {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    err.trim()
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("no error line: {err}"))
        .to_owned()
}

#[test]
fn coord_errors_read_like_zkclis() {
    let server = Coordinator::spawn().expect("spawn server");
    let out = zkcli(
        &server,
        "get /nope\ncreate /a\ncreate /a\ncreate /a/b\ndelete /a\nset -v 7 /a x\nstat /nope\ncreate /x/y",
    );
    // The same failures through coord, on the tree zkCli left behind.
    let ours = [
        coord_error(&server, &["get", "/nope"]),
        coord_error(&server, &["create", "/a"]),
        coord_error(&server, &["delete", "/a"]),
        coord_error(&server, &["set", "-v", "7", "/a", "x"]),
        coord_error(&server, &["stat", "/nope"]),
        coord_error(&server, &["create", "/x/y"]),
    ];
    let lines: Vec<&str> = ours.iter().map(String::as_str).collect();
    assert_in_order(&out, &lines);
}
