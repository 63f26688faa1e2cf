"""acks=1 durability across kill -9, in two runs against the broker at argv[2]:

  kafka_ack_durability.py produce <bootstrap> <topic> <ack-file>
      Creates <topic> (3 partitions) and produces "m-<n>" round-robin over the
      partitions with acks=1, writing each ACKNOWLEDGED message to <ack-file>
      as "<partition> <offset> <value>". Prints "PROGRESS <acked>" every 500
      acks; on stdin "STOP" stops producing, waits for the outstanding
      delivery reports (errors are expected: the broker was killed), writes
      the file and prints "OK ...".

  kafka_ack_durability.py verify <bootstrap> <topic> <ack-file>
      Consumes every partition from the beginning to its high watermark and
      checks that each acknowledged message is at its acknowledged offset.
"""

import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from kafka_common import (check, ck_consume_until, ck_consumer, ck_create_topic, ck_error_cb,
                          ck_wait_topic, fail, log, versions)

mode, bootstrap, topic, ack_file = sys.argv[1:5]
PARTITIONS = 3
log("%s, %s" % (versions(), mode))


def produce():
    ck_create_topic(bootstrap, topic, PARTITIONS)
    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "STOP":
                stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": 1,
        "linger.ms": 2,
        "enable.idempotence": False,
        # Undeliverable messages fail within this once the broker is gone.
        "message.timeout.ms": 8000,
        "reconnect.backoff.max.ms": 500,
        "error_cb": ck_error_cb,
    })
    acks = []
    failed = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append(str(err))
            return
        acks.append((msg.partition(), msg.offset(), msg.value().decode()))
        if len(acks) % 500 == 0:
            log("PROGRESS %d" % len(acks))

    n = 0
    deadline = time.monotonic() + 90
    while not stop.is_set():
        if time.monotonic() > deadline:
            fail("never told to STOP (acked %d, failed %d)" % (len(acks), len(failed)))
        if n - len(acks) - len(failed) >= 1000:
            producer.poll(0.05)
            continue
        try:
            producer.produce(topic, value=b"m-%d" % n, partition=n % PARTITIONS,
                             on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.05)
            continue
        n += 1
        producer.poll(0)
    left = producer.flush(30)
    if left:
        fail("%d messages still undecided after flush(30)" % left)
    with open(ack_file, "w") as f:
        for p, off, v in acks:
            f.write("%d %d %s\n" % (p, off, v))
    log("first failures: %s" % failed[:3])
    log("OK produced=%d acked=%d failed=%d" % (n, len(acks), len(failed)))


def verify():
    acks = []
    with open(ack_file) as f:
        for line in f:
            p, off, v = line.split()
            acks.append((int(p), int(off), v.encode()))
    check(acks, "no acknowledged messages to verify")
    # After a kill -9 the broker's old coordinator session must expire before
    # it can lead again: wait for leaders.
    from confluent_kafka.admin import AdminClient
    ck_wait_topic(AdminClient({"bootstrap.servers": bootstrap, "error_cb": ck_error_cb}),
                  topic, PARTITIONS, timeout=60)
    consumer = ck_consumer(bootstrap)
    high = {}
    for p in range(PARTITIONS):
        lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)
        check(lo == 0, "partition %d low watermark %d, want 0" % (p, lo))
        high[p] = hi
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got = ck_consume_until(consumer, {(topic, p): high[p] for p in range(PARTITIONS)}, timeout=60)
    consumer.close()
    stored = {}
    for (_, p), msgs in got.items():
        offs = [m.offset() for m in msgs]
        check(offs == list(range(len(offs))),
              "partition %d offsets are not dense from 0: first ones %s" % (p, offs[:20]))
        for m in msgs:
            stored[(p, m.offset())] = m.value()
    lost = [(p, off, v, stored.get((p, off))) for p, off, v in acks if stored.get((p, off)) != v]
    if lost:
        fail("%d of %d acknowledged messages are not at their acknowledged offset "
             "(partition, offset, acked value, stored value; first 10): %s; high watermarks %s"
             % (len(lost), len(acks), lost[:10], high))
    # (Acknowledgement order is not checked: a non-idempotent producer's
    # retries may legitimately reorder batches.)
    positions = [(p, off) for p, off, _ in acks]
    check(len(set(positions)) == len(positions), "two acknowledgements name the same offset")
    log("OK verified acked=%d stored=%s" % (len(acks), high))


if mode == "produce":
    produce()
elif mode == "verify":
    verify()
else:
    fail("unknown mode " + mode)
