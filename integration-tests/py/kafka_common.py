"""Helpers shared by the kafka_*.py scripts: failing loudly, and confluent-kafka
admin/consume helpers that work with confluent-kafka 1.7 (Debian) and 2.x (PyPI)."""

import sys
import time


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def check_eq(got, want, msg):
    if got != want:
        fail("%s: got %r, want %r" % (msg, got, want))


def log(msg):
    print(msg, flush=True)


def versions():
    """A one-line description of the client library versions in this interpreter."""
    out = ["python %d.%d" % sys.version_info[:2]]
    try:
        import confluent_kafka
        out.append("confluent-kafka %s (librdkafka %s)"
                   % (ck_version_string(), confluent_kafka.libversion()[0]))
    except ImportError:
        pass
    try:
        import kafka
        out.append("kafka-python %s" % kafka.__version__)
    except ImportError:
        pass
    return ", ".join(out)


def ck_version_string():
    import confluent_kafka

    v = confluent_kafka.version()  # a (str, int) tuple in 1.x, a str in 2.x
    return v[0] if isinstance(v, tuple) else v


def ck_version():
    """confluent-kafka's version as a tuple of ints, e.g. (1, 7, 0)."""
    return tuple(int(x) for x in ck_version_string().split(".")[:3] if x.isdigit())


def ck_error_cb(err):
    # librdkafka reports transient connection trouble here; the scripts judge
    # success by delivery reports and consumed data, so only log it.
    log("client error: %s" % err)


def ck_create_topic(bootstrap, topic, partitions, timeout=30.0, config=None):
    """Creates `topic` with AdminClient.create_topics and waits until Metadata
    shows every partition with a leader."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "error_cb": ck_error_cb})
    fs = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
        request_timeout=timeout)
    try:
        fs[topic].result(timeout)
    except Exception as e:  # noqa: BLE001 - report whatever the client raised
        fail("create_topics(%s, %d partitions): %r" % (topic, partitions, e))
    ck_wait_topic(admin, topic, partitions, timeout)
    return admin


def ck_wait_topic(admin, topic, partitions, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = admin.list_topics(topic=topic, timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
                p.leader >= 0 and p.error is None for p in t.partitions.values()):
            return
        last = t
        time.sleep(0.1)
    fail("topic %s never showed %d partitions with leaders; last metadata: %r (error %r, partitions %r)"
         % (topic, partitions, last, getattr(last, "error", None),
            getattr(last, "partitions", None)))


def ck_consumer(bootstrap, **extra):
    """A consumer used only with assign(): confluent-kafka insists on a
    group.id, but nothing is committed or subscribed."""
    from confluent_kafka import Consumer

    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": "kafka-py-tests-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "error_cb": ck_error_cb,
    }
    conf.update(extra)
    return Consumer(conf)


def ck_consume_until(consumer, want_counts, timeout=45.0):
    """Polls an assigned consumer until every (topic, partition) in
    `want_counts` reached EOF after at least that many messages. Returns
    {(topic, partition): [Message, ...]} in arrival order."""
    from confluent_kafka import KafkaError

    got = {tp: [] for tp in want_counts}
    at_eof = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(tp in at_eof and len(got[tp]) >= n for tp, n in want_counts.items()):
            return got
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        tp = (msg.topic(), msg.partition())
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                at_eof.add(tp)
                continue
            fail("consumer error on %s: %s" % (tp, err))
        if tp not in got:
            fail("message from unassigned partition %s" % (tp,))
        at_eof.discard(tp)
        got[tp].append(msg)
    fail("consuming timed out: got %s, want %s, at EOF %s"
         % ({tp: len(v) for tp, v in got.items()}, want_counts, sorted(at_eof)))


def raw_metadata(bootstrap, version, topics, allow_auto_topic_creation=True, timeout=30.0):
    """Sends one Metadata request (v1 or v4, hand-encoded so the flag is exactly
    what the test says) and returns {topic: (error_code, partition_count)}."""
    import socket
    import struct

    check(version in (1, 4), "raw_metadata speaks v1 and v4 only")

    def string(s):
        b = s.encode()
        return struct.pack(">h", len(b)) + b

    body = struct.pack(">hhi", 3, version, 7) + string("kafka-py-raw")
    body += struct.pack(">i", len(topics)) + b"".join(string(t) for t in topics)
    if version >= 4:
        body += struct.pack(">b", 1 if allow_auto_topic_creation else 0)
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)

        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    fail("broker closed the connection during a Metadata v%d response" % version)
                buf += chunk
            return buf

        (size,) = struct.unpack(">i", read(4))
        data = read(size)
    pos = [0]

    def take(fmt):
        vals = struct.unpack_from(fmt, data, pos[0])
        pos[0] += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def nstring():
        n = take(">h")
        if n < 0:
            return None
        s = data[pos[0]:pos[0] + n].decode()
        pos[0] += n
        return s

    check_eq(take(">i"), 7, "Metadata v%d correlation id" % version)
    if version >= 3:
        take(">i")  # throttle_time_ms
    for _ in range(take(">i")):  # brokers
        take(">i")
        nstring()
        take(">i")
        nstring()  # rack (v1+)
    if version >= 2:
        nstring()  # cluster_id
    take(">i")  # controller_id (v1+)
    out = {}
    for _ in range(take(">i")):
        err = take(">h")
        name = nstring()
        take(">b")  # is_internal (v1+)
        nparts = take(">i")
        for _ in range(nparts):
            take(">hii")  # error_code, partition_index, leader_id
            for _ in range(2):  # replica_nodes, isr_nodes
                n = take(">i")
                pos[0] += 4 * n
        out[name] = (err, nparts)
    check_eq(pos[0], len(data), "Metadata v%d response fully parsed" % version)
    return out
