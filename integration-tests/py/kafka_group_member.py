"""One member of a consumer group, for kafka_groups.rs.

    kafka_group_member.py <bootstrap> <lib> <topic> <group> <records-file> <commit> [<name> [<k=v,...>]]

<lib> is `ck` (confluent-kafka, Debian's 1.7 or PyPI's 2.x, whichever this
interpreter has) or `kp` (kafka-python, 2.0.2 or 3.x). The member subscribes to
<topic> in <group> (auto.offset.reset=earliest, auto commit off,
session.timeout.ms=6000, heartbeat every 1000 ms) and, for every message,
first appends `<value> <partition> <offset> <name>` to <records-file> (flushed:
the record is on disk before anything else happens) and then, if <commit> is
`sync`, commits that message's offset synchronously; with `none` it never
commits. Commits therefore always precede the next poll, and so any rebalance.
If a commit fails (confluent-kafka), the offset is committed again when the
partition is revoked (commit on revoke), unless the client reports it lost.

Stdout, for the test: `ASSIGNED <p,p,..>` (empty list as `-`) whenever the
assignment changes, `REVOKED <p,..>`, `COMMIT_FAILED <p> <offset> <error>` if a
synchronous commit fails, `CONSUMED <n>` after every message (after its commit
when committing). The optional last argument is extra confluent-kafka
configuration (`ck` only), e.g. `group.instance.id=a` for a static member or
`partition.assignment.strategy=cooperative-sticky`; with the cooperative
protocol the callbacks get increments, and `ASSIGNED` always shows the whole
resulting assignment. A `STOP` line on stdin closes the consumer (leaving the group
cleanly) and prints `OK ...`.
"""

import os
import sys
import threading
import time

from kafka_common import ck_error_cb, fail, log, versions

bootstrap, lib, topic, group, records_path, commit_mode = sys.argv[1:7]
name = sys.argv[7] if len(sys.argv) > 7 else "%s-%d" % (lib, os.getpid())
extra = dict(kv.split("=", 1) for kv in sys.argv[8].split(",") if kv) if len(sys.argv) > 8 else {}
if extra and lib != "ck":
    fail("extra configuration is for confluent-kafka only")
cooperative = extra.get("partition.assignment.strategy") == "cooperative-sticky"
if lib not in ("ck", "kp"):
    fail("unknown lib %r" % lib)
if commit_mode not in ("sync", "none"):
    fail("unknown commit mode %r" % commit_mode)

stop = threading.Event()


def read_stdin():
    for line in sys.stdin:
        if line.strip() == "STOP":
            break
    # STOP or EOF (the test went away): close cleanly either way.
    stop.set()


threading.Thread(target=read_stdin, daemon=True).start()
records = open(records_path, "a")
consumed = 0


def parts(ps):
    return ",".join(str(p) for p in sorted(ps)) or "-"


def record(value, partition, offset):
    records.write("%s %d %d %s\n" % (value, partition, offset, name))
    records.flush()
    os.fsync(records.fileno())


log("member %s: %s" % (name, versions()))

if lib == "ck":
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    current = set()
    # Offsets (next to read) whose synchronous commit failed, by partition:
    # committed again when the partition is revoked.
    uncommitted = {}

    def commit_on_revoke(consumer, partitions):
        tps = [TopicPartition(topic, p.partition, uncommitted.pop(p.partition))
               for p in partitions if p.partition in uncommitted]
        if tps:
            try:
                consumer.commit(offsets=tps, asynchronous=False)
                log("REVOKE_COMMIT %s" % parts(tp.partition for tp in tps))
            except KafkaException as e:
                log("COMMIT_FAILED on revoke %s %s" % (parts(tp.partition for tp in tps), e))

    def on_assign(consumer, partitions):
        if cooperative:
            current.update(p.partition for p in partitions)
            log("ASSIGNED %s" % parts(current))
        else:
            log("ASSIGNED %s" % parts(p.partition for p in partitions))

    def on_revoke(consumer, partitions):
        commit_on_revoke(consumer, partitions)
        if cooperative:
            current.difference_update(p.partition for p in partitions)
            log("ASSIGNED %s" % parts(current))
        else:
            log("REVOKED %s" % parts(p.partition for p in partitions))

    def on_lost(consumer, partitions):
        log("LOST %s" % parts(p.partition for p in partitions))
        for p in partitions:
            uncommitted.pop(p.partition, None)
        if cooperative:
            current.difference_update(p.partition for p in partitions)
            log("ASSIGNED %s" % parts(current))
        else:
            log("REVOKED %s" % parts(p.partition for p in partitions))

    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": name,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "error_cb": ck_error_cb,
    }
    conf.update(extra)
    c = Consumer(conf)
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    while not stop.is_set():
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error() is not None:
            log("consumer error: %s" % msg.error())
            continue
        record(msg.value().decode(), msg.partition(), msg.offset())
        if commit_mode == "sync":
            try:
                c.commit(message=msg, asynchronous=False)
                uncommitted.pop(msg.partition(), None)
            except KafkaException as e:
                uncommitted[msg.partition()] = msg.offset() + 1
                log("COMMIT_FAILED %d %d %s" % (msg.partition(), msg.offset(), e))
        consumed += 1
        log("CONSUMED %d" % consumed)
    c.close()
else:
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            log("REVOKED %s" % parts(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            log("ASSIGNED %s" % parts(tp.partition for tp in assigned))

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=name,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    c.subscribe([topic], listener=Listener())
    while not stop.is_set():
        batch = c.poll(timeout_ms=200, max_records=1)
        for tp, msgs in batch.items():
            for msg in msgs:
                record(msg.value.decode(), msg.partition, msg.offset)
                if commit_mode == "sync":
                    try:
                        # kafka-python 3.x's OffsetAndMetadata has a leader epoch; 2.0.2's has not.
                        try:
                            om = OffsetAndMetadata(msg.offset + 1, "", -1)
                        except TypeError:
                            om = OffsetAndMetadata(msg.offset + 1, "")
                        c.commit({TopicPartition(tp.topic, tp.partition): om})
                    except Exception as e:  # noqa: BLE001 - report whatever the client raised
                        log("COMMIT_FAILED %d %d %r" % (msg.partition, msg.offset, e))
                consumed += 1
                log("CONSUMED %d" % consumed)
    c.close()

records.close()
log("OK %s closed after %d messages" % (name, consumed))
