"""confluent-kafka round trip against the broker at argv[1] with compression
codec argv[2] (none, gzip, snappy, lz4, zstd):

1. AdminClient.create_topics a 3-partition topic;
2. produce keyed, null-keyed, null-valued and empty messages with headers
   (binary values, duplicate keys, null values), every one acknowledged;
3. consume by assignment from OFFSET_BEGINNING and compare every message
   byte-exact (key, value, headers, partition, offset, per-partition order);
4. produce with explicit timestamps, offsets_for_times a middle timestamp,
   assign there and check the first message is the expected one;
5. produce with this codec to a topic whose compression.type is another
   codec (the broker recompresses) and read it back byte-exact.
"""

import sys
import time
import uuid

from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Producer,
                             TopicPartition)

from kafka_common import (check, check_eq, ck_consume_until, ck_consumer, ck_create_topic,
                          ck_error_cb, ck_version, log, versions)

bootstrap, codec = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 600
PARTITIONS = 3
# confluent-kafka < 1.8 (Debian's 1.7.0) drops a reference to None for every
# null-valued header Message.headers() returns, and the interpreter later
# aborts with "none_dealloc: deallocating None" (a client bug, not the
# broker's: the header does come back as None). Only newer clients get them.
NULL_HEADERS = ck_version() >= (1, 8)
log("%s, codec %s" % (versions(), codec))


def message(i):
    """(key, value, headers) of message i: a mix of every shape Kafka allows."""
    if i % 7 == 0:
        key = None
    elif i % 7 == 1:
        key = b""
    elif i % 7 == 2:
        key = bytes([i % 256, 0, 255, 10, 13]) + b"\x00binary-key"
    else:
        key = ("key-%d" % i).encode()
    if i % 11 == 0:
        value = None
    elif i % 11 == 1:
        value = b""
    elif i % 11 == 2:
        # Large and compressible: several KB that codecs shrink.
        value = (("big-%d-" % i) * 1500).encode()
    else:
        value = bytes(range(256))[i % 256:] + ("value-%d" % i).encode()
    if i % 5 == 0:
        headers = None
    elif i % 5 == 1:
        headers = [("bin", bytes([0, 1, 2, 255, 254]) + bytes([i % 256]))]
    elif i % 5 == 2:
        headers = [("dup", b"first"), ("dup", b"second"), ("other", b"x"), ("dup", b"third")]
    elif i % 5 == 3:
        headers = [("null-valued", None if NULL_HEADERS else b"n"), ("empty", b""),
                   ("i", str(i).encode())]
    else:
        headers = [("h%d" % j, ("v%d" % j).encode() * j) for j in range(12)]
    return key, value, headers


topic = "rt-%s-%s" % (codec, uuid.uuid4().hex[:8])
ck_create_topic(bootstrap, topic, PARTITIONS)
log("created %s" % topic)

producer = Producer({
    "bootstrap.servers": bootstrap,
    "compression.type": codec,
    "linger.ms": 20,
    "acks": "all",
    "error_cb": ck_error_cb,
})

delivered = {}  # i -> (partition, offset)
errors = []


def on_delivery(i):
    def cb(err, msg):
        if err is not None:
            errors.append((i, str(err)))
        else:
            delivered[i] = (msg.partition(), msg.offset())
    return cb


for i in range(N):
    key, value, headers = message(i)
    kwargs = {"value": value, "key": key, "on_delivery": on_delivery(i)}
    if headers is not None:
        kwargs["headers"] = headers
    # Null-keyed messages go to an explicit partition so all three get some of
    # each shape whatever the client's partitioner does with null keys.
    if key is None:
        kwargs["partition"] = i % PARTITIONS
    producer.produce(topic, **kwargs)
    producer.poll(0)
left = producer.flush(30)
check(not errors, "delivery errors (codec %s): %s" % (codec, errors[:10]))
check_eq(left, 0, "messages still queued after flush(30)")
check_eq(len(delivered), N, "delivery reports")
for i, (p, off) in delivered.items():
    check(0 <= p < PARTITIONS and off >= 0, "message %d delivered to bad position %s" % (i, (p, off)))
by_partition = {p: sorted((off, i) for i, (pp, off) in delivered.items() if pp == p)
                for p in range(PARTITIONS)}
for p, pairs in by_partition.items():
    check(pairs, "no message landed in partition %d" % p)
    offs = [off for off, _ in pairs]
    check_eq(offs, list(range(len(offs))),
             "acknowledged offsets of partition %d are not dense from 0" % p)
    # Within one producer and partition, the acknowledged order is produce order.
    idx = [i for _, i in pairs]
    check_eq(idx, sorted(idx), "partition %d acknowledged out of produce order" % p)
log("produced %d (per partition %s)" % (N, {p: len(v) for p, v in by_partition.items()}))

consumer = ck_consumer(bootstrap)
consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
got = ck_consume_until(consumer, {(topic, p): len(by_partition[p]) for p in range(PARTITIONS)})
for p in range(PARTITIONS):
    msgs = got[(topic, p)]
    check_eq(len(msgs), len(by_partition[p]), "message count of partition %d" % p)
    for msg, (off, i) in zip(msgs, by_partition[p]):
        key, value, headers = message(i)
        where = "message %d (partition %d offset %d, codec %s)" % (i, p, off, codec)
        check_eq(msg.offset(), off, where + " offset")
        check_eq(msg.key(), key, where + " key")
        check_eq(msg.value(), value, where + " value")
        got_headers = msg.headers() or []
        check_eq([(k, v) for k, v in got_headers], headers or [], where + " headers")
        ts_type, ts = msg.timestamp()
        check_eq(ts_type, TIMESTAMP_CREATE_TIME, where + " timestamp type")
        check(ts > 1_500_000_000_000, where + " timestamp %d is not a recent epoch ms" % ts)
consumer.close()
log("consumed %d byte-exact" % N)

# Consume by timestamp: partition 0 of a fresh topic, messages 1 s apart.
ts_topic = "ts-%s-%s" % (codec, uuid.uuid4().hex[:8])
ck_create_topic(bootstrap, ts_topic, 1)
base = (int(time.time()) - 3600) * 1000
TS_N = 40
ts_errors = []
for i in range(TS_N):
    producer.produce(ts_topic, value=("ts-%d" % i).encode(), key=b"k", partition=0,
                     timestamp=base + i * 1000,
                     on_delivery=lambda err, msg: err and ts_errors.append(str(err)))
check_eq(producer.flush(30), 0, "timestamped messages still queued after flush(30)")
check(not ts_errors, "timestamped delivery errors: %s" % ts_errors[:5])

consumer = ck_consumer(bootstrap)
queries = [
    (base + 20 * 1000 - 500, 20),  # between 19 and 20: the first at or after it
    (base + 25 * 1000, 25),        # exactly message 25's timestamp
    (base - 100000, 0),            # before everything: the first
]
for ts_query, want in queries:
    res = consumer.offsets_for_times([TopicPartition(ts_topic, 0, ts_query)], timeout=15)
    check_eq(len(res), 1, "offsets_for_times result count")
    check(res[0].error is None, "offsets_for_times(%d) error: %s" % (ts_query, res[0].error))
    check_eq(res[0].offset, want, "offsets_for_times(%d) offset" % ts_query)
res = consumer.offsets_for_times([TopicPartition(ts_topic, 0, base + TS_N * 1000 + 5000)], timeout=15)
check(res[0].error is None, "offsets_for_times(after last) error: %s" % res[0].error)
check_eq(res[0].offset, -1, "offsets_for_times after the last timestamp is the end (-1)")

mid = consumer.offsets_for_times([TopicPartition(ts_topic, 0, base + 20 * 1000 - 500)], timeout=15)
consumer.assign(mid)
got = ck_consume_until(consumer, {(ts_topic, 0): TS_N - 20})
first = got[(ts_topic, 0)][0]
check_eq((first.offset(), first.value(), first.timestamp()),
         (20, b"ts-20", (TIMESTAMP_CREATE_TIME, base + 20 * 1000)),
         "first message after seeking by timestamp")
check_eq([m.value() for m in got[(ts_topic, 0)]], [("ts-%d" % i).encode() for i in range(20, TS_N)],
         "messages after seeking by timestamp")
consumer.close()
log("consumed by timestamp")

# Topic-level compression.type differing from the producer's codec.
other = {"none": "zstd", "gzip": "lz4", "snappy": "gzip", "lz4": "uncompressed",
         "zstd": "snappy"}[codec]
rc_topic = "rc-%s-%s-%s" % (codec, other, uuid.uuid4().hex[:8])
ck_create_topic(bootstrap, rc_topic, 1, config={"compression.type": other})
RC_N = 200
rc_errors = []
for i in range(RC_N):
    key, value, headers = message(i)
    producer.produce(rc_topic, key=key, value=value, headers=headers or [], partition=0,
                     timestamp=base + i,
                     on_delivery=lambda err, msg: err and rc_errors.append(str(err)))
check_eq(producer.flush(30), 0, "recompressed messages still queued after flush(30)")
check(not rc_errors, "delivery errors to a compression.type=%s topic: %s" % (other, rc_errors[:5]))
consumer = ck_consumer(bootstrap)
consumer.assign([TopicPartition(rc_topic, 0, OFFSET_BEGINNING)])
got = ck_consume_until(consumer, {(rc_topic, 0): RC_N})[(rc_topic, 0)]
consumer.close()
check_eq(len(got), RC_N, "messages in the compression.type=%s topic" % other)
for i, msg in enumerate(got):
    key, value, headers = message(i)
    check_eq((msg.offset(), msg.key(), msg.value(), msg.headers() or [], msg.timestamp()[1]),
             (i, key, value, headers or [], base + i),
             "message %d produced with %s to a compression.type=%s topic" % (i, codec, other))
log("OK roundtrip codec=%s messages=%d" % (codec, N))
