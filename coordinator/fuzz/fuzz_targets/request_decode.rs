//! Fuzzes the request codec: arbitrary bytes through `Request::decode` and
//! `ConnectRequest::decode`; whatever decodes must re-encode to bytes that
//! decode to the same value (and re-encode to the same bytes).
#![no_main]

use bytes::BytesMut;
use coordinator::proto::{ConnectRequest, Reader, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, req)) = Request::decode(data) {
        assert_eq!(req.op_code(), header.op, "op_code() disagrees with the header");
        let mut buf = BytesMut::new();
        req.encode(header.xid, &mut buf);
        let (header2, req2) = Request::decode(&buf)
            .unwrap_or_else(|e| panic!("re-encoded {req:?} does not decode: {e}"));
        assert_eq!(header2, header);
        assert_eq!(req2, req);
        let mut buf2 = BytesMut::new();
        req2.encode(header2.xid, &mut buf2);
        assert_eq!(buf2, buf, "encoding is not a fixed point");
    }

    let mut r = Reader::new(data);
    if let Ok(c) = ConnectRequest::decode(&mut r) {
        let mut buf = BytesMut::new();
        c.encode(&mut buf);
        let mut r2 = Reader::new(&buf);
        let back = ConnectRequest::decode(&mut r2).expect("re-encoded ConnectRequest decodes");
        assert_eq!(back, c);
        assert_eq!(r2.remaining(), 0, "ConnectRequest::decode left bytes of its own encoding");
    }
});
