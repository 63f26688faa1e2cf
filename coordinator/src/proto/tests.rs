//! Codec tests: golden bytes for the handshake, and encode-then-decode property
//! tests for every request, response, multi and notification record.

use bytes::BytesMut;
use proptest::prelude::*;

use super::records::*;
use super::*;

fn path() -> impl Strategy<Value = String> {
    "(/[a-z0-9._-]{1,6}){1,3}"
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..48)
}

fn acl() -> impl Strategy<Value = Vec<Acl>> {
    proptest::collection::vec(
        (0..32i32, "[a-z]{1,6}", "[a-z:0-9]{0,12}").prop_map(|(perms, scheme, id)| Acl {
            perms,
            scheme,
            id,
        }),
        0..3,
    )
}

fn stat() -> impl Strategy<Value = Stat> {
    (any::<[i64; 6]>(), any::<[i32; 5]>()).prop_map(|(l, i)| Stat {
        czxid: l[0],
        mzxid: l[1],
        ctime: l[2],
        mtime: l[3],
        ephemeral_owner: l[4],
        pzxid: l[5],
        version: i[0],
        cversion: i[1],
        aversion: i[2],
        data_length: i[3],
        num_children: i[4],
    })
}

fn create() -> impl Strategy<Value = Request> {
    let op = prop_oneof![
        Just(OpCode::Create),
        Just(OpCode::Create2),
        Just(OpCode::CreateContainer),
        Just(OpCode::CreateTtl)
    ];
    (op, path(), data(), acl(), 0..7i32, 1..1000i64).prop_map(
        |(op, path, data, acl, flags, ttl)| {
            let ttl = if op == OpCode::CreateTtl { ttl } else { -1 };
            Request::Create(
                op,
                CreateTtlRequest {
                    path,
                    data,
                    acl,
                    flags,
                    ttl,
                },
            )
        },
    )
}

fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create().prop_map(|r| match r {
            Request::Create(op, c) => MultiOp::Create(op, c),
            _ => unreachable!("create() only makes creates"),
        }),
        (path(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Delete(DeleteRequest { path, version })),
        (path(), data(), any::<i32>()).prop_map(|(path, data, version)| MultiOp::SetData(
            SetDataRequest {
                path,
                data,
                version
            }
        )),
        (path(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Check(CheckVersionRequest { path, version })),
    ]
}

fn read_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        path_watch().prop_map(MultiOp::GetData),
        path_watch().prop_map(MultiOp::GetChildren),
    ]
}

fn watches() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(path(), 0..3)
}

fn path_watch() -> impl Strategy<Value = PathWatchRequest> {
    (path(), any::<bool>()).prop_map(|(path, watch)| PathWatchRequest { path, watch })
}

fn path_req() -> impl Strategy<Value = PathRequest> {
    path().prop_map(|path| PathRequest { path })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        create(),
        (path(), any::<i32>())
            .prop_map(|(path, version)| Request::Delete(DeleteRequest { path, version })),
        path_watch().prop_map(Request::Exists),
        path_watch().prop_map(Request::GetData),
        path_watch().prop_map(Request::GetChildren),
        path_watch().prop_map(Request::GetChildren2),
        (path(), data(), any::<i32>()).prop_map(|(path, data, version)| Request::SetData(
            SetDataRequest {
                path,
                data,
                version
            }
        )),
        path_req().prop_map(Request::GetAcl),
        path_req().prop_map(Request::Sync),
        path_req().prop_map(Request::GetEphemerals),
        path_req().prop_map(Request::GetAllChildrenNumber),
        (path(), acl(), any::<i32>())
            .prop_map(|(path, acl, version)| Request::SetAcl(SetAclRequest { path, acl, version })),
        (path(), any::<i32>())
            .prop_map(|(path, version)| Request::Check(CheckVersionRequest { path, version })),
        proptest::collection::vec(multi_op(), 0..4).prop_map(Request::Multi),
        proptest::collection::vec(read_op(), 0..4).prop_map(Request::MultiRead),
        (path(), 1..6i32).prop_map(|(path, t)| Request::RemoveWatches(RemoveWatchesRequest {
            path,
            watcher_type: t
        })),
        (path(), 1..6i32).prop_map(|(path, t)| Request::CheckWatches(RemoveWatchesRequest {
            path,
            watcher_type: t
        })),
        ("[a-z]{1,8}", data()).prop_map(|(scheme, auth)| Request::Auth(AuthPacket {
            auth_type: 0,
            scheme,
            auth
        })),
        (any::<i64>(), watches(), watches(), watches()).prop_map(|(z, d, e, c)| {
            Request::SetWatches(SetWatches2 {
                relative_zxid: z,
                data_watches: d,
                exist_watches: e,
                child_watches: c,
                ..SetWatches2::default()
            })
        }),
        (
            any::<i64>(),
            watches(),
            watches(),
            watches(),
            watches(),
            watches()
        )
            .prop_map(|(z, d, e, c, p, r)| {
                Request::SetWatches2(SetWatches2 {
                    relative_zxid: z,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                    persistent_watches: p,
                    persistent_recursive_watches: r,
                })
            }),
        (path(), 0..2i32)
            .prop_map(|(path, mode)| Request::AddWatch(AddWatchRequest { path, mode })),
        Just(Request::Ping),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
        Just(Request::Unsupported(OpCode::Reconfig)),
        (200..300i32).prop_map(Request::Unknown),
    ]
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        path().prop_map(MultiResult::Create),
        (path(), stat()).prop_map(|(p, s)| MultiResult::Create2(p, s)),
        Just(MultiResult::Delete),
        stat().prop_map(MultiResult::SetData),
        Just(MultiResult::Check),
        (data(), stat()).prop_map(|(d, s)| MultiResult::GetData(d, s)),
        watches().prop_map(MultiResult::GetChildren),
        (-130..=0i32).prop_map(MultiResult::Error),
    ]
}

/// A response with the opcode of a request that gets it.
fn response() -> impl Strategy<Value = (OpCode, Response)> {
    prop_oneof![
        Just((OpCode::Delete, Response::Empty)),
        Just((OpCode::AddWatch, Response::ErrorBody(0))),
        path().prop_map(|p| (OpCode::Create, Response::Create(p))),
        (path(), stat()).prop_map(|(p, s)| (OpCode::Create2, Response::Create2(p, s))),
        stat().prop_map(|s| (OpCode::SetData, Response::Stat(s))),
        (data(), stat()).prop_map(|(d, s)| (OpCode::GetData, Response::GetData(d, s))),
        (acl(), stat()).prop_map(|(a, s)| (OpCode::GetAcl, Response::GetAcl(a, s))),
        watches().prop_map(|c| (OpCode::GetChildren, Response::Children(c))),
        (watches(), stat()).prop_map(|(c, s)| (OpCode::GetChildren2, Response::Children2(c, s))),
        path().prop_map(|p| (OpCode::Sync, Response::Path(p))),
        watches().prop_map(|e| (OpCode::GetEphemerals, Response::Ephemerals(e))),
        any::<i32>().prop_map(|n| (OpCode::GetAllChildrenNumber, Response::AllChildrenNumber(n))),
        proptest::collection::vec(("[a-z]{1,5}", "[a-z0-9.]{0,9}"), 0..3).prop_map(|v| {
            let info = v
                .into_iter()
                .map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
                .collect();
            (OpCode::WhoAmI, Response::WhoAmI(info))
        }),
        proptest::collection::vec(multi_result(), 0..4)
            .prop_map(|r| (OpCode::Multi, Response::Multi(r))),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(xid: i32, req in request()) {
        let mut buf = BytesMut::new();
        req.encode(xid, &mut buf);
        let (header, back) = Request::decode(&buf).expect("decodes");
        prop_assert_eq!(header.xid, xid);
        prop_assert_eq!(header.op, req.op_code());
        prop_assert_eq!(back, req);
    }

    #[test]
    fn replies_round_trip(xid: i32, zxid: i64, (op, resp) in response()) {
        let mut buf = BytesMut::new();
        write_reply(&mut buf, xid, zxid, &Ok(resp.clone()));
        let mut r = Reader::new(&buf);
        prop_assert_eq!(r.i32().expect("len") as usize, buf.len() - 4);
        let header = ReplyHeader::read(&mut r).expect("header");
        prop_assert_eq!((header.xid, header.zxid, header.err), (xid, zxid, 0));
        prop_assert_eq!(Response::read(op, &mut r).expect("body"), resp);
        prop_assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn events_round_trip(zxid: i64, event_type in 1..5i32, p in path()) {
        let event = WatcherEvent { event_type, state: 3, path: p };
        let mut buf = BytesMut::new();
        write_event(&mut buf, zxid, &event);
        let mut r = Reader::new(&buf[4..]);
        let header = ReplyHeader::read(&mut r).expect("header");
        prop_assert_eq!((header.xid, header.zxid), (-1, zxid));
        prop_assert_eq!(WatcherEvent::read(&mut r).expect("event"), event);
    }

    #[test]
    fn handshake_round_trips(timeout_ms: i32, session_id: i64, zxid: i64, password: [u8; 16], read_only: bool) {
        let req = ConnectRequest { protocol_version: 0, last_zxid_seen: zxid, timeout_ms, session_id, password: password.to_vec(), read_only };
        let mut buf = BytesMut::new();
        req.encode(&mut buf);
        prop_assert_eq!(ConnectRequest::decode(&mut Reader::new(&buf)).expect("request"), req);
        let resp = ConnectResponse { protocol_version: 0, timeout_ms, session_id, password, read_only };
        let mut buf = BytesMut::new();
        resp.encode(&mut buf);
        prop_assert_eq!(ConnectResponse::decode(&mut Reader::new(&buf)).expect("response"), resp);
    }

    /// Any byte string either decodes or is rejected; it never panics.
    #[test]
    fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Request::decode(&bytes);
        let _ = ConnectRequest::decode(&mut Reader::new(&bytes));
    }
}

#[test]
fn connect_response_is_41_bytes_as_the_c_client_expects() {
    let mut buf = BytesMut::new();
    ConnectResponse {
        protocol_version: 0,
        timeout_ms: 30000,
        session_id: 0x0100_0000_0000_0001,
        password: [9; 16],
        read_only: false,
    }
    .encode(&mut buf);
    // 41 bytes with the length prefix: the C client's fixed primer buffer.
    assert_eq!(buf.len() + 4, 41);
    assert_eq!(&buf[..4], &[0, 0, 0, 0]);
    assert_eq!(&buf[4..8], &30000i32.to_be_bytes());
    assert_eq!(&buf[16..20], &16i32.to_be_bytes());
}

#[test]
fn old_clients_without_the_read_only_byte_are_accepted() {
    let mut buf = BytesMut::new();
    ConnectRequest {
        password: vec![0; 16],
        ..ConnectRequest::default()
    }
    .encode(&mut buf);
    let short = &buf[..buf.len() - 1];
    assert_eq!(short.len(), 44);
    assert!(ConnectRequest::decode(&mut Reader::new(short)).is_ok());
}

#[test]
fn a_failed_call_carries_no_body() {
    let mut buf = BytesMut::new();
    write_reply(&mut buf, 7, 9, &Err(ErrorCode::NoNode));
    assert_eq!(
        &buf[..],
        &[0, 0, 0, 16, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0x9b]
    );
}

#[test]
fn mixed_multi_is_a_decode_error() {
    let mut buf = BytesMut::new();
    Request::MultiRead(vec![MultiOp::Delete(DeleteRequest {
        path: "/a".into(),
        version: -1,
    })])
    .encode(1, &mut buf);
    assert!(Request::decode(&buf).is_err());
}
