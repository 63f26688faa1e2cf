//! Hand-encoded ZooKeeper wire protocol (jute framing) over a blocking `TcpStream`, so tests
//! can send exactly the bytes they want — including malformed ones — and read raw reply codes.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Opcodes used by the tests (ZooKeeper's `ZooDefs.OpCode`).
pub mod op {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_CHILDREN: i32 = 8;
    pub const PING: i32 = 11;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const MULTI_READ: i32 = 22;
    pub const CREATE2: i32 = 15;
    pub const CLOSE_SESSION: i32 = -11;
}

/// Error codes the tests assert on (ZooKeeper's `KeeperException.Code`).
pub mod code {
    pub const OK: i32 = 0;
    pub const RUNTIME_INCONSISTENCY: i32 = -2;
    pub const UNIMPLEMENTED: i32 = -6;
    pub const BAD_ARGUMENTS: i32 = -8;
    pub const NO_NODE: i32 = -101;
    pub const BAD_VERSION: i32 = -103;
    pub const NO_CHILDREN_FOR_EPHEMERALS: i32 = -108;
    pub const NODE_EXISTS: i32 = -110;
}

/// Builder for jute-encoded records (big-endian, length-prefixed strings and buffers).
#[derive(Debug, Default, Clone)]
pub struct Jute(pub Vec<u8>);

impl Jute {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn int(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn long(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn boolean(mut self, v: bool) -> Self {
        self.0.push(u8::from(v));
        self
    }

    pub fn buffer(mut self, v: &[u8]) -> Self {
        let len = i32::try_from(v.len()).unwrap_or(i32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(v);
        self
    }

    pub fn string(self, v: &str) -> Self {
        self.buffer(v.as_bytes())
    }

    /// `vector<ACL>` holding only world:anyone with all permissions.
    pub fn open_acl(self) -> Self {
        self.int(1).int(31).string("world").string("anyone")
    }

    pub fn bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Body of a `create` request: path, data, open ACL, flags (0 persistent, 1 ephemeral, ...).
pub fn create_body(path: &str, data: &[u8], flags: i32) -> Vec<u8> {
    Jute::new()
        .string(path)
        .buffer(data)
        .open_acl()
        .int(flags)
        .bytes()
}

/// Body of `getData`/`exists`/`getChildren`: path plus watch flag.
pub fn path_watch_body(path: &str, watch: bool) -> Vec<u8> {
    Jute::new().string(path).boolean(watch).bytes()
}

/// Body of `setData`: path, data, expected version.
pub fn set_data_body(path: &str, data: &[u8], version: i32) -> Vec<u8> {
    Jute::new().string(path).buffer(data).int(version).bytes()
}

/// Encoded size of a `Stat` record.
pub const STAT_LEN: usize = 68;

/// Body of a `multi` request from (opcode, op body) pairs.
pub fn multi_body(ops: &[(i32, Vec<u8>)]) -> Vec<u8> {
    let mut j = Jute::new();
    for (op_code, body) in ops {
        j = j.int(*op_code).boolean(false).int(-1);
        j.0.extend_from_slice(body);
    }
    j.int(-1).boolean(true).int(-1).bytes()
}

/// Per-op (result type, error code) of a `multi` or `multiRead` reply; error code is 0 for successful ops,
/// result type is -1 for error results.
pub fn parse_multi_response(body: &[u8]) -> Result<Vec<(i32, i32)>> {
    let mut r = Reader(body);
    let mut out = Vec::new();
    loop {
        let op_type = r.int()?;
        let done = r.boolean()?;
        let err = r.int()?;
        if done {
            return Ok(out);
        }
        match op_type {
            -1 => out.push((op_type, r.int()?)),
            op::CREATE => {
                r.string()?;
                out.push((op_type, err));
            }
            op::CREATE2 => {
                r.string()?;
                r.skip(STAT_LEN)?;
                out.push((op_type, err));
            }
            op::SET_DATA => {
                r.skip(STAT_LEN)?;
                out.push((op_type, err));
            }
            op::DELETE | op::CHECK => out.push((op_type, err)),
            op::GET_DATA => {
                r.buffer()?;
                r.skip(STAT_LEN)?;
                out.push((op_type, err));
            }
            op::GET_CHILDREN => {
                for _ in 0..r.int()? {
                    r.string()?;
                }
                out.push((op_type, err));
            }
            other => bail!("unexpected multi result type {other}"),
        }
    }
}

/// Reply header of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

/// Cursor over a received body.
#[derive(Debug)]
pub struct Reader<'a>(pub &'a [u8]);

impl Reader<'_> {
    pub fn int(&mut self) -> Result<i32> {
        let (h, t) = self.0.split_first_chunk::<4>().context("short read: int")?;
        self.0 = t;
        Ok(i32::from_be_bytes(*h))
    }

    pub fn long(&mut self) -> Result<i64> {
        let (h, t) = self
            .0
            .split_first_chunk::<8>()
            .context("short read: long")?;
        self.0 = t;
        Ok(i64::from_be_bytes(*h))
    }

    pub fn boolean(&mut self) -> Result<bool> {
        let (h, t) = self.0.split_first().context("short read: bool")?;
        self.0 = t;
        Ok(*h != 0)
    }

    pub fn skip(&mut self, n: usize) -> Result<()> {
        if self.0.len() < n {
            bail!("short read: skip {n}");
        }
        self.0 = &self.0[n..];
        Ok(())
    }

    pub fn buffer(&mut self) -> Result<Vec<u8>> {
        let len = self.int()?;
        if len < 0 {
            return Ok(Vec::new());
        }
        let len = usize::try_from(len)?;
        if self.0.len() < len {
            bail!("short read: buffer of {len}");
        }
        let (h, t) = self.0.split_at(len);
        self.0 = t;
        Ok(h.to_vec())
    }

    pub fn string(&mut self) -> Result<String> {
        Ok(String::from_utf8(self.buffer()?)?)
    }
}

/// A watch notification (`WatcherEvent`) received on a raw session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// 1 created, 2 deleted, 3 data changed, 4 children changed.
    pub event_type: i32,
    /// 3 = SyncConnected.
    pub state: i32,
    pub path: String,
}

/// One raw session: handshake done, requests numbered from xid 1.
#[derive(Debug)]
pub struct RawSession {
    pub stream: TcpStream,
    pub session_id: i64,
    pub timeout_ms: i32,
    pub passwd: Vec<u8>,
    /// Notifications that arrived while waiting for replies, in arrival order.
    pub notifications: Vec<Notification>,
    next_xid: i32,
}

/// Connects a TCP stream with a read timeout so no test can hang on a silent server.
pub fn connect_tcp(addr: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Writes a length-prefixed frame.
pub fn write_frame(s: &mut TcpStream, payload: &[u8]) -> Result<()> {
    let len = i32::try_from(payload.len())?;
    let mut buf = len.to_be_bytes().to_vec();
    buf.extend_from_slice(payload);
    s.write_all(&buf)?;
    Ok(())
}

/// Reads one length-prefixed frame.
pub fn read_frame(s: &mut TcpStream) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).context("reading frame length")?;
    let len = i32::from_be_bytes(len);
    if !(0..=16 * 1024 * 1024).contains(&len) {
        bail!("implausible frame length {len}");
    }
    let mut body = vec![0u8; usize::try_from(len)?];
    s.read_exact(&mut body).context("reading frame body")?;
    Ok(body)
}

/// Waits until the peer closes the connection (EOF or reset), discarding anything it sends.
/// Returns false if the connection is still open at `timeout`.
pub fn wait_closed(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

impl RawSession {
    /// Handshake: ConnectRequest{protocolVersion 0, lastZxidSeen 0, timeOut, sessionId 0,
    /// passwd 16 zero bytes, readOnly false}.
    pub fn connect(addr: SocketAddr, timeout_ms: i32) -> Result<Self> {
        let mut stream = connect_tcp(addr)?;
        let req = Jute::new()
            .int(0)
            .long(0)
            .int(timeout_ms)
            .long(0)
            .buffer(&[0u8; 16])
            .boolean(false)
            .bytes();
        write_frame(&mut stream, &req)?;
        let body = read_frame(&mut stream).context("reading ConnectResponse")?;
        let mut r = Reader(&body);
        let _protocol_version = r.int()?;
        let negotiated = r.int()?;
        let session_id = r.long()?;
        let passwd = r.buffer()?;
        if session_id == 0 {
            bail!("server refused the session (session id 0)");
        }
        Ok(RawSession {
            stream,
            session_id,
            timeout_ms: negotiated,
            passwd,
            notifications: Vec::new(),
            next_xid: 1,
        })
    }

    /// Sends one request and returns its reply header and body, collecting watch
    /// notifications (xid -1) into `notifications`.
    pub fn request(&mut self, op_code: i32, body: &[u8]) -> Result<(ReplyHeader, Vec<u8>)> {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.request_with_xid(xid, op_code, body)
    }

    /// A ping: xid -2, answered with a reply whose xid is -2.
    pub fn ping(&mut self) -> Result<ReplyHeader> {
        Ok(self.request_with_xid(-2, op::PING, &[])?.0)
    }

    fn request_with_xid(
        &mut self,
        xid: i32,
        op_code: i32,
        body: &[u8],
    ) -> Result<(ReplyHeader, Vec<u8>)> {
        let mut payload = Jute::new().int(xid).int(op_code).bytes();
        payload.extend_from_slice(body);
        write_frame(&mut self.stream, &payload)?;
        loop {
            let frame = read_frame(&mut self.stream)?;
            let mut r = Reader(&frame);
            let header = ReplyHeader {
                xid: r.int()?,
                zxid: r.long()?,
                err: r.int()?,
            };
            if header.xid == -1 && xid != -1 {
                let event_type = r.int()?;
                let state = r.int()?;
                let path = r.string()?;
                self.notifications.push(Notification {
                    event_type,
                    state,
                    path,
                });
                continue;
            }
            if header.xid != xid {
                bail!("reply for xid {} while waiting for {xid}", header.xid);
            }
            return Ok((header, r.0.to_vec()));
        }
    }

    /// `getData` returning (data, version) or the error code.
    pub fn get_data(&mut self, path: &str) -> Result<std::result::Result<(Vec<u8>, i32), i32>> {
        let (h, body) = self.request(op::GET_DATA, &path_watch_body(path, false))?;
        if h.err != 0 {
            return Ok(Err(h.err));
        }
        let mut r = Reader(&body);
        let data = r.buffer()?;
        // Stat: czxid, mzxid, ctime, mtime (4 longs), then version.
        for _ in 0..4 {
            r.long()?;
        }
        let version = r.int()?;
        Ok(Ok((data, version)))
    }

    /// `create` returning the created path or the error code.
    pub fn create(
        &mut self,
        path: &str,
        data: &[u8],
        flags: i32,
    ) -> Result<std::result::Result<String, i32>> {
        let (h, body) = self.request(op::CREATE, &create_body(path, data, flags))?;
        if h.err != 0 {
            return Ok(Err(h.err));
        }
        Ok(Ok(Reader(&body).string()?))
    }

    /// `closeSession`; the server answers then closes the connection.
    pub fn close(mut self) -> Result<()> {
        let (h, _) = self.request(op::CLOSE_SESSION, &[])?;
        if h.err != 0 {
            bail!("closeSession failed with {}", h.err);
        }
        Ok(())
    }
}
