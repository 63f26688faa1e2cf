//! Protocol details only visible on the raw wire: one-shot watches fire exactly once per
//! connection, multi error-result layout, reply-header zxids, and ping replies.

use integration_tests::raw::{self, code, op, Jute, Notification, RawSession};
use integration_tests::Coordinator;

const NODE_CREATED: i32 = 1;
const NODE_DELETED: i32 = 2;
const DATA_CHANGED: i32 = 3;
const CHILDREN_CHANGED: i32 = 4;
const SYNC_CONNECTED: i32 = 3;

fn note(event_type: i32, path: &str) -> Notification {
    Notification {
        event_type,
        state: SYNC_CONNECTED,
        path: path.to_string(),
    }
}

fn session(server: &Coordinator) -> RawSession {
    RawSession::connect(server.addr(), 30_000).expect("raw session")
}

#[test]
fn oneshot_watches_fire_once_per_connection() {
    let server = Coordinator::spawn().expect("spawn server");
    let mut w = session(&server);
    let mut b = session(&server);
    assert_eq!(
        b.create("/x", b"0", 0).expect("create"),
        Ok("/x".to_string())
    );

    let (h, _) = w
        .request(op::GET_DATA, &raw::path_watch_body("/x", true))
        .expect("getData watch");
    assert_eq!(h.err, code::OK);
    // getData and exists share one data watch: set twice, expect a single notification.
    let (h, _) = w
        .request(op::EXISTS, &raw::path_watch_body("/x", true))
        .expect("exists watch");
    assert_eq!(h.err, code::OK);
    for v in [b"1", b"2"] {
        let (h, _) = b
            .request(op::SET_DATA, &raw::set_data_body("/x", v, -1))
            .expect("set");
        assert_eq!(h.err, code::OK);
    }
    // Anything the server sent before this reply has been read by now.
    w.request(op::EXISTS, &raw::path_watch_body("/x", false))
        .expect("sync point");
    assert_eq!(w.notifications, vec![note(DATA_CHANGED, "/x")]);
    w.notifications.clear();

    // Data + child watch on the same node, then delete it: one NodeDeleted for the connection,
    // and the parent's child watch fires separately.
    w.request(op::GET_DATA, &raw::path_watch_body("/x", true))
        .expect("getData watch");
    w.request(op::GET_CHILDREN, &raw::path_watch_body("/x", true))
        .expect("getChildren watch");
    w.request(op::GET_CHILDREN, &raw::path_watch_body("/", true))
        .expect("root child watch");
    let (h, _) = b
        .request(op::DELETE, &Jute::new().string("/x").int(-1).bytes())
        .expect("delete");
    assert_eq!(h.err, code::OK);
    w.request(op::EXISTS, &raw::path_watch_body("/x", true))
        .expect("sync point + exists watch");
    let mut got = w.notifications.clone();
    got.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(
        got,
        vec![note(CHILDREN_CHANGED, "/"), note(NODE_DELETED, "/x")]
    );
    w.notifications.clear();

    // The exists watch left on the missing node fires on re-creation, once.
    assert_eq!(
        b.create("/x", b"", 0).expect("recreate"),
        Ok("/x".to_string())
    );
    b.request(op::SET_DATA, &raw::set_data_body("/x", b"again", -1))
        .expect("set after create");
    w.request(op::EXISTS, &raw::path_watch_body("/x", false))
        .expect("sync point");
    assert_eq!(w.notifications, vec![note(NODE_CREATED, "/x")]);
}

#[test]
fn failed_multi_reports_every_op() {
    let server = Coordinator::spawn().expect("spawn server");
    let mut s = session(&server);
    assert_eq!(
        s.create("/x", b"0", 0).expect("create"),
        Ok("/x".to_string())
    );
    let ops = vec![
        (op::CREATE, raw::create_body("/a", b"", 0)),
        (op::SET_DATA, raw::set_data_body("/x", b"1", 99)),
        (op::DELETE, Jute::new().string("/x").int(-1).bytes()),
    ];
    let (h, body) = s.request(op::MULTI, &raw::multi_body(&ops)).expect("multi");
    // Ops before the failure report 0, the failing op its code, later ops RuntimeInconsistency.
    let results = raw::parse_multi_response(&body).expect("parse multi reply");
    assert_eq!(
        results,
        vec![
            (-1, code::OK),
            (-1, code::BAD_VERSION),
            (-1, code::RUNTIME_INCONSISTENCY)
        ]
    );
    assert_eq!(
        h.err,
        code::OK,
        "a failed multi still has reply header err 0: {h:?}"
    );
    assert_eq!(s.get_data("/a").expect("get /a"), Err(code::NO_NODE));
    assert_eq!(s.get_data("/x").expect("get /x"), Ok((b"0".to_vec(), 0)));

    let ops = vec![
        (op::CREATE, raw::create_body("/a", b"", 0)),
        (op::CHECK, Jute::new().string("/x").int(0).bytes()),
        (op::SET_DATA, raw::set_data_body("/x", b"1", 0)),
        (op::DELETE, Jute::new().string("/a").int(0).bytes()),
    ];
    let (h, body) = s.request(op::MULTI, &raw::multi_body(&ops)).expect("multi");
    assert_eq!(h.err, code::OK);
    let results = raw::parse_multi_response(&body).expect("parse multi reply");
    let ok = [
        (op::CREATE, 0),
        (op::CHECK, 0),
        (op::SET_DATA, 0),
        (op::DELETE, 0),
    ];
    assert_eq!(results, ok);
    // An empty multi is valid and changes nothing.
    let (h, body) = s
        .request(op::MULTI, &raw::multi_body(&[]))
        .expect("empty multi");
    assert_eq!(
        (h.err, raw::parse_multi_response(&body).expect("parse")),
        (code::OK, vec![])
    );
}

#[test]
fn multi_read_reports_every_op() {
    let server = Coordinator::spawn().expect("spawn server");
    let mut s = session(&server);
    assert_eq!(
        s.create("/x", b"1", 0).expect("create"),
        Ok("/x".to_string())
    );
    let ops = vec![
        (op::GET_DATA, raw::path_watch_body("/x", false)),
        (op::GET_CHILDREN, raw::path_watch_body("/", false)),
        (op::GET_DATA, raw::path_watch_body("/nope", false)),
        (op::GET_CHILDREN, raw::path_watch_body("/x", false)),
    ];
    let (h, body) = s
        .request(op::MULTI_READ, &raw::multi_body(&ops))
        .expect("multiRead");
    assert_eq!(h.err, code::OK);
    let results = raw::parse_multi_response(&body)
        .unwrap_or_else(|e| panic!("bad multiRead reply {body:02x?}: {e}"));
    // Reads fail independently: the one error does not affect its neighbours.
    let want = vec![
        (op::GET_DATA, 0),
        (op::GET_CHILDREN, 0),
        (-1, code::NO_NODE),
        (op::GET_CHILDREN, 0),
    ];
    assert_eq!(results, want, "multiRead results; raw reply {body:02x?}");
}

#[test]
fn reply_zxids_and_pings() {
    let server = Coordinator::spawn().expect("spawn server");
    let mut s = session(&server);
    let (h1, body) = s
        .request(op::CREATE2, &raw::create_body("/z", b"", 0))
        .expect("create2");
    assert_eq!(h1.err, code::OK);
    let mut r = raw::Reader(&body);
    assert_eq!(r.string().expect("path"), "/z");
    let czxid = r.long().expect("czxid");
    assert_eq!(
        h1.zxid, czxid,
        "a write's reply header carries its own zxid"
    );
    let (h2, _) = s
        .request(op::SET_DATA, &raw::set_data_body("/z", b"1", -1))
        .expect("set");
    assert!(
        h2.zxid > h1.zxid,
        "zxids increase: {} then {}",
        h1.zxid,
        h2.zxid
    );
    let (h3, _) = s
        .request(op::GET_DATA, &raw::path_watch_body("/z", false))
        .expect("get");
    assert!(
        h3.zxid >= h2.zxid,
        "a read's reply carries the last committed zxid"
    );
    // Errors still carry a zxid no older than the session has seen.
    let (h4, _) = s
        .request(op::GET_DATA, &raw::path_watch_body("/nope", false))
        .expect("get missing");
    assert_eq!(h4.err, code::NO_NODE);
    assert!(h4.zxid >= h2.zxid);
    let p = s.ping().expect("ping");
    assert_eq!((p.xid, p.err), (-2, 0));
    // The session stays usable after pings and answers requests in order.
    assert_eq!(s.get_data("/z").expect("get"), Ok((b"1".to_vec(), 1)));
    s.close().expect("close");
}
