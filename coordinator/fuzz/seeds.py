#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into corpus/<target>/ (run from coordinator/fuzz)."""
import os
import struct
import zlib

i32 = lambda v: struct.pack(">i", v)
i64 = lambda v: struct.pack(">q", v)
b = lambda v: bytes([1 if v else 0])
buf = lambda v: i32(len(v)) + v
s = lambda v: buf(v.encode())
vec = lambda items: i32(len(items)) + b"".join(items)
OPEN = [i32(31) + s("world") + s("anyone")]


def acl(*entries):
    return vec([i32(p) + s(sc) + s(i) for p, sc, i in entries] or OPEN)


def connect(session=0, last_zxid=0, password=bytes(16)):
    return i32(0) + i64(last_zxid) + i32(30000) + i64(session) + buf(password) + b(False)


def req(xid, op, body=b""):
    return i32(xid) + i32(op) + body


create_body = lambda p, flags=0, data=b"v", a=None: s(p) + buf(data) + (a or vec(OPEN)) + i32(flags)
pw = lambda p, watch=True: s(p) + b(watch)
mh = lambda op, done=False: i32(op) + b(done) + i32(-1)
multi_end = mh(-1, True)

create = lambda x, p, flags=0, data=b"v", a=None: req(x, 1, create_body(p, flags, data, a))
create2 = lambda x, p, flags=0: req(x, 15, create_body(p, flags))
container = lambda x, p: req(x, 19, create_body(p, 4))
ttl = lambda x, p, t=1000, flags=5: req(x, 21, create_body(p, flags) + i64(t))
delete = lambda x, p, v=-1: req(x, 2, s(p) + i32(v))
exists = lambda x, p, w=True: req(x, 3, pw(p, w))
get_data = lambda x, p, w=True: req(x, 4, pw(p, w))
set_data = lambda x, p, d=b"d", v=-1: req(x, 5, s(p) + buf(d) + i32(v))
get_acl = lambda x, p: req(x, 6, s(p))
set_acl = lambda x, p, a, v=-1: req(x, 7, s(p) + a + i32(v))
children = lambda x, p, w=True: req(x, 8, pw(p, w))
children2 = lambda x, p, w=True: req(x, 12, pw(p, w))
sync = lambda x, p: req(x, 9, s(p))
ping = lambda: req(-2, 11)
check = lambda x, p, v: req(x, 13, s(p) + i32(v))
check_watches = lambda x, p, t: req(x, 17, s(p) + i32(t))
remove_watches = lambda x, p, t: req(x, 18, s(p) + i32(t))
auth = lambda scheme, cred: req(-4, 100, i32(0) + s(scheme) + buf(cred))
set_watches = lambda rel, d, e, c: req(-8, 101, i64(rel) + vec([s(p) for p in d]) + vec([s(p) for p in e]) + vec([s(p) for p in c]))
set_watches2 = lambda rel, d, e, c, p, r: req(-8, 105, i64(rel) + b"".join(vec([s(x) for x in l]) for l in (d, e, c, p, r)))
ephemerals = lambda x, p: req(x, 103, s(p))
all_children = lambda x, p: req(x, 104, s(p))
add_watch = lambda x, p, mode: req(x, 106, s(p) + i32(mode))
whoami = lambda x: req(x, 107)
close = lambda x: req(x, -11)


def multi(x, ops, read=False):
    return req(x, 22 if read else 14, b"".join(ops) + multi_end)


m_create = lambda p, flags=0: mh(1) + create_body(p, flags)
m_create2 = lambda p, flags=0: mh(15) + create_body(p, flags)
m_delete = lambda p, v=-1: mh(2) + s(p) + i32(v)
m_set = lambda p, d=b"m", v=-1: mh(5) + s(p) + buf(d) + i32(v)
m_check = lambda p, v: mh(13) + s(p) + i32(v)
m_get_data = lambda p: mh(4) + pw(p)
m_children = lambda p: mh(8) + pw(p)

S1 = 1 << 56 | 1  # first session id the session target hands out

sessions = {
    "basic": [
        connect(), create(1, "/a"), create(2, "/a/b-", 3), get_data(3, "/a"), children(4, "/a"),
        exists(5, "/x"), set_data(6, "/a", b"new", 0), create(7, "/x"), children2(8, "/"),
        delete(9, "/x", 0), get_acl(10, "/a"), sync(11, "/a"), ping(), close(12),
    ],
    "multi": [
        connect(), multi(1, [m_create("/m"), m_create("/m/c"), m_create2("/m/s-", 2), m_set("/m", b"x", 0), m_check("/m", 1)]),
        multi(2, [m_check("/m", 7), m_delete("/m/c")]),
        multi(3, [m_get_data("/m"), m_children("/m"), m_get_data("/missing")], read=True),
        multi(4, [m_delete("/m/c"), m_set("/m", b"y")]), all_children(5, "/"),
    ],
    "sessions": [
        connect(), create(1, "/p"), create(2, "/p/e", 1), add_watch(3, "/", 1), add_watch(4, "/p", 0),
        b"",  # undecodable request: the connection drops, the session stays
        connect(), exists(1, "/p/e"), get_data(2, "/p/e"), create(3, "/p/e2", 1), ephemerals(4, "/"),
        close(5),  # closes session 2
        connect(S1), set_data(1, "/p/e"), whoami(2), close(3),
        connect(), get_data(1, "/p/e"),
    ],
    "acl": [
        connect(), auth("digest", b"user:pw"), create(1, "/s", 0, b"", acl((31, "auth", ""))),
        whoami(2), get_acl(3, "/s"), set_acl(4, "/s", acl((1, "world", "anyone"), (31, "ip", "127.0.0.1/8")), 0),
        set_data(5, "/s"), check(6, "/s", 0), create(7, "/s/k"), get_acl(8, "/s"),
        create(9, "/d", 0, b"", acl((31, "digest", "bob:hash"))), get_data(10, "/d"), auth("sasl", b"x"),
    ],
    "watches": [
        connect(), create(1, "/w"), create(2, "/w/c"), get_data(3, "/w"), children(4, "/w"), exists(5, "/w/n"),
        check_watches(6, "/w", 3), remove_watches(7, "/w", 1), remove_watches(8, "/w", 1),
        set_watches(0, ["/w"], ["/w/z"], ["/w"]), set_watches2(100, ["/w/c"], ["/q"], ["/w/c"], ["/w"], ["/"]),
        create(9, "/w/n"), set_data(10, "/w/c"), delete(11, "/w/n"), delete(12, "/w/c"), delete(13, "/w"),
    ],
    "modes": [
        connect(), container(1, "/c"), ttl(2, "/t"), ttl(3, "/t/s-", 500, 6), create2(4, "/c/x"),
        delete(5, "/c/x"), create(6, "/c/e", 1), delete(7, "/zookeeper"), set_data(8, "/zookeeper/config"),
        create(9, "/zookeeper/z"), delete(10, "/zookeeper/z"), req(11, 16), req(12, 999),
    ],
}


def write(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


for name, frames in sessions.items():
    write("session", name, b"".join(buf(f) for f in frames))
    for i, f in enumerate(frames):
        write("request_decode", f"{name}-{i}", f)

# txnlog: record bodies (the target prepends the magic itself).
def record(zxid, txn):
    payload = i64(zxid) + i64(zxid * 1000) + txn
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


t_create = lambda p, owner=0: i32(1) + s(p) + buf(b"d") + vec(OPEN) + i64(owner)
log = (record(1, i32(-10) + i64(S1) + i32(30000) + buf(bytes(16)))
       + record(2, t_create("/a")) + record(3, i32(5) + s("/a") + buf(b"x"))
       + record(4, i32(7) + s("/a") + vec(OPEN))
       + record(5, i32(14) + i32(2) + t_create("/a/e", S1) + i32(2) + s("/a"))
       + record(6, i32(-11) + i64(S1)))
write("txnlog", "log", log)
write("txnlog", "torn", log[:-3])
