//! Hostile and malformed input over raw TCP (garbage, oversized and truncated frames, unknown
//! opcodes, invalid paths) must not disturb other sessions or stored data; plus the
//! four-letter words.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use integration_tests::raw::{self, code, op, Jute, RawSession};
use integration_tests::{four_letter, Coordinator};

const CLOSE_DEADLINE: Duration = Duration::from_secs(10);

/// A session opened before the attack, holding `/canary`, that must be unaffected by it.
struct Bystander {
    session: RawSession,
}

impl Bystander {
    fn new(addr: SocketAddr) -> Self {
        let mut session = RawSession::connect(addr, 30_000).expect("bystander connects");
        let created = session.create("/canary", b"v1", 0).expect("create canary");
        assert_eq!(created, Ok("/canary".to_string()));
        Bystander { session }
    }

    /// The bystander still reads and writes, stored data is unchanged, and new sessions work.
    fn check(mut self, addr: SocketAddr) {
        let got = self
            .session
            .get_data("/canary")
            .expect("bystander get after attack");
        assert_eq!(
            got,
            Ok((b"v1".to_vec(), 0)),
            "canary changed or bystander broken"
        );
        let (h, _) = self
            .session
            .request(op::SET_DATA, &raw::set_data_body("/canary", b"v2", 0))
            .expect("bystander set after attack");
        assert_eq!(h.err, code::OK, "bystander setData failed after attack");
        let mut fresh = RawSession::connect(addr, 30_000).expect("a new session after attack");
        assert_eq!(
            fresh.get_data("/canary").expect("fresh get"),
            Ok((b"v2".to_vec(), 1))
        );
        fresh.close().expect("fresh close");
        assert_eq!(
            four_letter(addr, "ruok").expect("ruok after attack"),
            "imok"
        );
        self.session.close().expect("bystander close");
    }
}

#[test]
fn four_letter_words() {
    let server = Coordinator::spawn().expect("spawn server");
    let addr = server.addr();
    assert_eq!(four_letter(addr, "ruok").expect("ruok"), "imok");
    let srvr = four_letter(addr, "srvr").expect("srvr");
    assert!(srvr.contains("Mode: standalone"), "srvr: {srvr}");
    let stat = four_letter(addr, "stat").expect("stat");
    assert!(stat.contains("Mode: standalone"), "stat: {stat}");
    let mntr = four_letter(addr, "mntr").expect("mntr");
    assert!(mntr.contains("zk_znode_count"), "mntr: {mntr}");
    assert!(mntr.contains("zk_server_state\tstandalone"), "mntr: {mntr}");
    assert_eq!(four_letter(addr, "isro").expect("isro"), "rw");
    assert!(
        !four_letter(addr, "conf").expect("conf").is_empty(),
        "conf is empty"
    );
    assert!(
        !four_letter(addr, "envi").expect("envi").is_empty(),
        "envi is empty"
    );
}

#[test]
fn garbage_before_handshake_is_dropped() {
    let server = Coordinator::spawn().expect("spawn server");
    let addr = server.addr();
    let by = Bystander::new(addr);
    let mut s = raw::connect_tcp(addr).expect("connect");
    // Negative frame length followed by noise.
    s.write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .expect("write garbage");
    assert!(
        raw::wait_closed(&mut s, CLOSE_DEADLINE),
        "server kept a garbage connection open"
    );
    // A plausible length whose ConnectRequest is cut short inside the record.
    let mut s = raw::connect_tcp(addr).expect("connect");
    raw::write_frame(&mut s, &[0xff; 16]).expect("write short connect");
    assert!(
        raw::wait_closed(&mut s, CLOSE_DEADLINE),
        "server kept a bad-handshake connection open"
    );
    by.check(addr);
}

#[test]
fn garbage_after_handshake_is_dropped() {
    let server = Coordinator::spawn().expect("spawn server");
    let addr = server.addr();
    let by = Bystander::new(addr);
    let mut victim = RawSession::connect(addr, 30_000).expect("victim connects");
    victim
        .stream
        .write_all(&[0xff, 0xff, 0xff, 0xf0, 0x42, 0x42, 0x42])
        .expect("write garbage");
    assert!(
        raw::wait_closed(&mut victim.stream, CLOSE_DEADLINE),
        "server kept a garbage connection open"
    );
    by.check(addr);
}

#[test]
fn oversized_frame_is_rejected() {
    let server = Coordinator::spawn().expect("spawn server");
    let addr = server.addr();
    let by = Bystander::new(addr);
    // Over jute.maxbuffer (1 MiB) before the handshake: announce 2 MiB, send a little.
    let mut s = raw::connect_tcp(addr).expect("connect");
    s.write_all(&(2 * 1024 * 1024_i32).to_be_bytes())
        .expect("write length");
    s.write_all(&[0u8; 64]).expect("write some body");
    assert!(
        raw::wait_closed(&mut s, CLOSE_DEADLINE),
        "oversized handshake frame not rejected"
    );
    // And on an established session: the server must not wait for the body to arrive.
    let mut victim = RawSession::connect(addr, 30_000).expect("victim connects");
    victim
        .stream
        .write_all(&(1024 * 1024 + 1_i32).to_be_bytes())
        .expect("write length");
    victim
        .stream
        .write_all(&Jute::new().int(7).int(op::GET_DATA).bytes())
        .expect("write header");
    assert!(
        raw::wait_closed(&mut victim.stream, CLOSE_DEADLINE),
        "oversized request frame not rejected"
    );
    by.check(addr);
}

#[test]
fn truncated_frame_then_close() {
    let server = Coordinator::spawn().expect("spawn server");
    let addr = server.addr();
    let by = Bystander::new(addr);
    // Cut short inside the handshake...
    let mut s = raw::connect_tcp(addr).expect("connect");
    s.write_all(&44_i32.to_be_bytes()).expect("write length");
    s.write_all(&[0u8; 10]).expect("write partial");
    drop(s);
    // ...and inside a request on a live session whose node must then survive untouched.
    let mut victim = RawSession::connect(addr, 30_000).expect("victim connects");
    let body = raw::set_data_body("/canary", b"clobbered", -1);
    let mut frame = Jute::new().int(1).int(op::SET_DATA).bytes();
    frame.extend_from_slice(&body);
    let len = i32::try_from(frame.len()).expect("small frame");
    victim
        .stream
        .write_all(&len.to_be_bytes())
        .expect("write length");
    victim
        .stream
        .write_all(&frame[..frame.len() - 3])
        .expect("write partial frame");
    drop(victim);
    by.check(addr);
}

#[test]
fn unknown_opcode_gets_unimplemented() {
    let server = Coordinator::spawn().expect("spawn server");
    let addr = server.addr();
    let by = Bystander::new(addr);
    let mut s = RawSession::connect(addr, 30_000).expect("connect");
    let (h, _) = s
        .request(9999, &Jute::new().string("/canary").bytes())
        .expect("reply to unknown opcode");
    assert_eq!(h.xid, 1, "reply must echo the xid");
    assert_eq!(h.err, code::UNIMPLEMENTED, "unknown opcode error code");
    by.check(addr);
}

#[test]
fn invalid_paths_are_bad_arguments() {
    let server = Coordinator::spawn().expect("spawn server");
    let addr = server.addr();
    let by = Bystander::new(addr);
    let mut s = RawSession::connect(addr, 30_000).expect("connect");
    // ZooKeeper validates the full path only after finding the parent, so each of these has an
    // existing parent ("/" or "/canary") and must fail validation itself.
    for path in [
        "canary",
        "noslash",
        "//x",
        "/canary/",
        "/canary/.",
        "/canary/..",
        "/bad\u{0}nul",
        "",
    ] {
        assert_eq!(
            s.create(path, b"x", 0).expect("create reply"),
            Err(code::BAD_ARGUMENTS),
            "create {path:?}"
        );
    }
    for path in ["noslash", "//x", "/canary//x", "/canary/"] {
        let (h, _) = s
            .request(op::SET_DATA, &raw::set_data_body(path, b"x", -1))
            .expect("setData reply");
        assert_eq!(h.err, code::BAD_ARGUMENTS, "setData {path:?}");
    }
    // With a missing parent ZooKeeper answers NoNode before looking at the rest of the path.
    let got = s.create("/canary//x", b"x", 0).expect("create reply");
    assert!(
        matches!(got, Err(code::BAD_ARGUMENTS | code::NO_NODE)),
        "create \"/canary//x\": {got:?}"
    );
    for path in ["noslash", "//x", "/canary/"] {
        let (h, _) = s
            .request(op::GET_DATA, &raw::path_watch_body(path, false))
            .expect("getData reply");
        assert!(
            matches!(h.err, code::BAD_ARGUMENTS | code::NO_NODE),
            "getData {path:?} gave {}",
            h.err
        );
    }
    // Still a healthy session afterwards.
    assert_eq!(s.get_data("/canary").expect("get"), Ok((b"v1".to_vec(), 0)));
    let (h, _) = s
        .request(op::EXISTS, &raw::path_watch_body("/nope", false))
        .expect("exists");
    assert_eq!(h.err, code::NO_NODE);
    s.close().expect("close");
    by.check(addr);
}

#[test]
fn create_under_ephemeral_is_refused() {
    let server = Coordinator::spawn().expect("spawn server");
    let addr = server.addr();
    let by = Bystander::new(addr);
    let mut s = RawSession::connect(addr, 30_000).expect("connect");
    assert_eq!(
        s.create("/eph", b"", 1).expect("create ephemeral"),
        Ok("/eph".to_string())
    );
    assert_eq!(
        s.create("/eph/child", b"", 0).expect("create child"),
        Err(code::NO_CHILDREN_FOR_EPHEMERALS)
    );
    assert_eq!(
        s.create("/eph/seq-", b"", 3).expect("create seq child"),
        Err(code::NO_CHILDREN_FOR_EPHEMERALS)
    );
    assert_eq!(
        s.create("/eph", b"", 0).expect("create duplicate"),
        Err(code::NODE_EXISTS)
    );
    let (h, body) = s
        .request(op::GET_CHILDREN, &raw::path_watch_body("/eph", false))
        .expect("children");
    assert_eq!(h.err, code::OK);
    assert_eq!(raw::Reader(&body).int().expect("child count"), 0);
    s.close().expect("close");
    by.check(addr);
}

/// `maxClientCnxns`: a connection over the per-address limit is closed at
/// once (ZooKeeper's behaviour, as Apache's server shows too); one closing
/// makes room again.
#[test]
fn connections_over_max_client_cnxns_are_closed() {
    let server = Coordinator::spawn_with(integration_tests::Opts {
        config: Some("maxClientCnxns=2".into()),
        ..Default::default()
    })
    .expect("spawn server");
    let addr = server.addr();
    let first = RawSession::connect(addr, 30_000).expect("first session");
    let _second = RawSession::connect(addr, 30_000).expect("second session");
    assert!(
        RawSession::connect(addr, 30_000).is_err(),
        "a third connection from the same address is refused"
    );
    drop(first);
    let room = integration_tests::wait_until(Duration::from_secs(10), || {
        four_letter(addr, "ruok").is_ok_and(|r| r == "imok")
    });
    assert!(room, "no room after a close");
}
