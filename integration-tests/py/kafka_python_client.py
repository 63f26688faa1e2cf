"""kafka-python (2.0.2 from Debian, 3.x from PyPI) against the broker at argv[1],
with the client's DEFAULT producer settings (3.x turns idempotence on, as the
Java client does):

1. KafkaAdminClient: create a topic, see it in list_topics, delete it, see it go;
2. create a 3-partition topic, produce N keyed messages with headers, flush,
   every future resolved;
3. KafkaConsumer without a group (assign + seek_to_beginning,
   consumer_timeout_ms) reads them back; compare key, value, headers,
   partition and offset.
"""

import sys
import time
import uuid

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from kafka_common import check, check_eq, fail, log, versions

bootstrap = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
PARTITIONS = 3
log(versions())


def wait_for(what, cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    fail("timed out waiting for " + what)


admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kp-admin",
                         request_timeout_ms=30000)
scratch = "kp-scratch-" + uuid.uuid4().hex[:8]
topic = "kp-data-" + uuid.uuid4().hex[:8]

# CreateTopics / Metadata / DeleteTopics through the admin client.
res = admin.create_topics([NewTopic(name=scratch, num_partitions=2, replication_factor=1)],
                          timeout_ms=30000)
log("create_topics(%s): %r" % (scratch, res))


def topic_error_codes(res, field):
    """Per-topic error codes from a create/delete_topics result: kafka-python
    2.0.2 returns the response object, 3.x a dict (and raises on errors)."""
    if isinstance(res, dict):
        return [(t["name"], t["error_code"]) for t in res.get("topics", [])]
    return [(t[0], t[1]) for t in getattr(res, field)]


check_eq(topic_error_codes(res, "topic_errors"), [(scratch, 0)], "create_topics(%s) result" % scratch)
wait_for("%s in list_topics" % scratch, lambda: scratch in admin.list_topics())
res = admin.delete_topics([scratch], timeout_ms=30000)
log("delete_topics(%s): %r" % (scratch, res))
check_eq(topic_error_codes(res, "topic_error_codes"), [(scratch, 0)],
         "delete_topics(%s) result" % scratch)
wait_for("%s to leave list_topics" % scratch, lambda: scratch not in admin.list_topics())

admin.create_topics([NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)],
                    timeout_ms=30000)
wait_for("%s in list_topics" % topic, lambda: topic in admin.list_topics())
topics = admin.list_topics()
check(topic in topics and scratch not in topics,
      "list_topics after create/delete: %r" % (topics,))
admin.close()
log("admin ok")


def message(i):
    key = ("key-%d" % i).encode()
    value = ("value-%d-" % i).encode() + bytes([i % 256, 0, 255]) * (i % 50)
    headers = [("i", str(i).encode()), ("dup", b"a"), ("dup", bytes([i % 256]))] if i % 3 == 0 else []
    return key, value, headers


producer = KafkaProducer(bootstrap_servers=bootstrap)  # defaults, on purpose
log("producer config: enable_idempotence=%r acks=%r" % (
    producer.config.get("enable_idempotence"), producer.config.get("acks")))
futures = []
for i in range(N):
    key, value, headers = message(i)
    futures.append(producer.send(topic, key=key, value=value, headers=headers))
producer.flush(timeout=60)
placed = {}
for i, f in enumerate(futures):
    try:
        md = f.get(timeout=30)
    except Exception as e:  # noqa: BLE001 - report whatever the client raised
        fail("send %d failed: %r" % (i, e))
    placed[i] = (md.partition, md.offset)
producer.close(timeout=30)
by_partition = {p: sorted((off, i) for i, (pp, off) in placed.items() if pp == p)
                for p in range(PARTITIONS)}
for p, pairs in by_partition.items():
    check_eq([off for off, _ in pairs], list(range(len(pairs))),
             "acknowledged offsets of partition %d are not dense from 0" % p)
log("produced %d: %s" % (N, {p: len(v) for p, v in by_partition.items()}))

consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         consumer_timeout_ms=10000, auto_offset_reset="earliest")
tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
consumer.assign(tps)
consumer.seek_to_beginning(*tps)
got = {p: [] for p in range(PARTITIONS)}
deadline = time.monotonic() + 45
while sum(len(v) for v in got.values()) < N and time.monotonic() < deadline:
    for rec in consumer:  # stops after consumer_timeout_ms without records
        got[rec.partition].append(rec)
        if sum(len(v) for v in got.values()) >= N:
            break
consumer.close()
check_eq({p: len(v) for p, v in got.items()}, {p: len(v) for p, v in by_partition.items()},
         "records consumed per partition")
for p in range(PARTITIONS):
    for rec, (off, i) in zip(got[p], by_partition[p]):
        key, value, headers = message(i)
        where = "message %d (partition %d offset %d)" % (i, p, off)
        check_eq(rec.offset, off, where + " offset")
        check_eq(rec.key, key, where + " key")
        check_eq(rec.value, value, where + " value")
        check_eq(list(rec.headers or []), headers, where + " headers")
log("OK kafka-python %s messages=%d" % (kafka.__version__, N))
