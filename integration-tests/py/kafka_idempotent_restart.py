"""Idempotent confluent-kafka producer across a broker restart, against the
broker at argv[1]: produces "seq-<n>" for n = 0, 1, ... to partition 0 of a
fresh 1-partition topic with enable.idempotence=true and acks=all.

Protocol with the driving test, one line each:
  stdout  PROGRESS <acked>      every 500 acknowledged messages
  stdin   RESTARTED             the broker was restarted (SIGTERM, then started
                                again on the same port and data)
After RESTARTED the script produces until at least argv[2] messages AND 2000
more acknowledgements than it had when told, flushes, checks every delivery
report, then consumes the partition and checks it holds exactly seq-0 ..
seq-(N-1) in order at offsets 0 .. N-1: no duplicates, no gaps.
"""

import sys
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from kafka_common import (check, check_eq, ck_consume_until, ck_consumer, ck_create_topic,
                          ck_error_cb, fail, log, versions)

bootstrap = sys.argv[1]
MIN_MESSAGES = int(sys.argv[2]) if len(sys.argv) > 2 else 6000
MAX_IN_FLIGHT = 2000
log(versions())

topic = "idem-" + uuid.uuid4().hex[:8]
ck_create_topic(bootstrap, topic, 1)
log("TOPIC %s" % topic)

restarted = threading.Event()


def read_stdin():
    for line in sys.stdin:
        if line.strip() == "RESTARTED":
            restarted.set()


threading.Thread(target=read_stdin, daemon=True).start()

producer = Producer({
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    # Plenty of time to ride out the restart (the default is 300 s; a test
    # wants a failure well within its own deadline).
    "message.timeout.ms": 45000,
    "error_cb": ck_error_cb,
})

acked = []        # values in acknowledgement order
offsets = {}      # n -> offset
errors = []
fatal = []


def on_delivery(err, msg):
    if err is not None:
        errors.append("%s: %s" % (msg.value(), err))
        if err.fatal():
            fatal.append(str(err))
        return
    acked.append(msg.value())
    offsets[int(msg.value()[4:])] = msg.offset()
    if len(acked) % 500 == 0:
        log("PROGRESS %d" % len(acked))


n = 0
acked_at_restart = None
deadline = time.monotonic() + 90
while True:
    if time.monotonic() > deadline:
        fail("producing did not finish: %d produced, %d acked, restarted=%s, errors %s"
             % (n, len(acked), restarted.is_set(), errors[:5]))
    if errors:
        fail("delivery failed after %d acks (idempotent producer must not lose messages "
             "across a restart): %s" % (len(acked), errors[:10]))
    if restarted.is_set() and acked_at_restart is None:
        acked_at_restart = len(acked)
        log("restart reported after %d acks (%d produced)" % (acked_at_restart, n))
    if (acked_at_restart is not None and n >= MIN_MESSAGES
            and len(acked) >= acked_at_restart + 2000):
        break
    if n - len(acked) - len(errors) >= MAX_IN_FLIGHT:
        producer.poll(0.05)
        continue
    try:
        producer.produce(topic, value=b"seq-%d" % n, partition=0, on_delivery=on_delivery)
    except BufferError:
        producer.poll(0.05)
        continue
    n += 1
    producer.poll(0)

left = producer.flush(60)
check_eq(left, 0, "messages still queued after flush(60)")
check(not errors, "delivery errors: %s" % errors[:10])
N = n
check_eq(len(acked), N, "delivery reports")
check_eq(sorted(offsets), list(range(N)), "acknowledged sequence numbers")
bad = [(i, offsets[i]) for i in range(N) if offsets[i] != i]
check(not bad, "seq-n acknowledged at an offset other than n (first 10 (n, offset)): %s" % bad[:10])
log("produced and acknowledged %d, %d of them after the restart" % (N, N - acked_at_restart))

consumer = ck_consumer(bootstrap)
consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
got = ck_consume_until(consumer, {(topic, 0): N}, timeout=60)[(topic, 0)]
consumer.close()
values = [m.value() for m in got]
if values != [b"seq-%d" % i for i in range(N)]:
    seen = {}
    dups = []
    for off, v in enumerate(values):
        if v in seen:
            dups.append((v, seen[v], off))
        seen[v] = off
    missing = [i for i in range(N) if b"seq-%d" % i not in seen]
    first_bad = next(i for i, v in enumerate(values + [None]) if i >= N or v != b"seq-%d" % i)
    fail("partition holds %d messages, want %d; first mismatch at offset %d (%r); "
         "duplicates (value, first offset, again at) %s; missing %s"
         % (len(values), N, first_bad, values[first_bad] if first_bad < len(values) else None,
            dups[:10], missing[:10]))
check_eq([m.offset() for m in got], list(range(N)), "offsets")
log("OK idempotent messages=%d after_restart=%d" % (N, N - acked_at_restart))
