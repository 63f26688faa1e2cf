"""acks=all durability across leader failovers of a replicated topic.

  kafka_repl_produce.py produce <bootstrap> <topic> <ack-file> <partitions> <min-count>
      Produces "m-<n>" (n = 0, 1, ...) to partition n % partitions with
      acks=all and enable.idempotence=true until at least <min-count> were
      produced AND "STOP" was read on stdin; then flushes and writes every
      ACKNOWLEDGED message to <ack-file> as "<partition> <offset> <value>".
      Prints "PROGRESS <acked> <epoch-ms>" every 5000 acks, every delivery
      error, "ACKED partition=<p> at=<epoch-ms>" for an acknowledgement at
      most every 500 ms per partition (so the first one after a gap at
      once), per partition the longest time without an acknowledgement
      ("GAP partition=<p> ms=<gap> from=<epoch-ms> to=<epoch-ms>"), and
      "OK produced=... acked=... failed=...".

  kafka_repl_produce.py verify <bootstrap> <topic> <ack-file> <partitions>
      Consumes every partition from the beginning to its high watermark and
      checks: every acknowledgement carries an offset (librdkafka reports
      none when the broker failed a batch it had written and a later batch
      succeeded, or answered DUPLICATE_SEQUENCE_NUMBER), each acknowledged
      message is at its acknowledged offset, and in each partition the
      "m-<n>" values are strictly increasing (per-partition order kept, no
      duplicates: the producer is idempotent). Other values (the test's
      probes, "probe-...") are skipped.
"""

import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from kafka_common import (check, ck_consume_until, ck_consumer, ck_error_cb, ck_wait_topic, fail,
                          log, versions)

mode, bootstrap, topic, ack_file, partitions = sys.argv[1:6]
PARTITIONS = int(partitions)
log("%s, %s" % (versions(), mode))


def now_ms():
    return int(time.time() * 1000)


def produce(min_count):
    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "STOP":
                stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        # Never give up on a message because of a failover.
        "message.timeout.ms": 300000,
        "request.timeout.ms": 15000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "retry.backoff.ms": 50,
        "topic.metadata.refresh.interval.ms": 2000,
        "error_cb": ck_error_cb,
    })
    acks = []
    failed = []
    last_ack = {}
    shown = {}
    gaps = {}

    def on_delivery(err, msg):
        t = now_ms()
        if err is not None:
            failed.append(str(err))
            if len(failed) <= 20:
                log("DELIVERY_ERROR %d %s partition=%d" % (t, err, msg.partition()))
            return
        p = msg.partition()
        acks.append((p, msg.offset(), msg.value().decode()))
        prev = last_ack.get(p)
        if prev is not None and t - prev > gaps.get(p, (0, 0, 0))[0]:
            gaps[p] = (t - prev, prev, t)
        if t - shown.get(p, 0) >= 500:
            shown[p] = t
            log("ACKED partition=%d at=%d" % (p, t))
        last_ack[p] = t
        if len(acks) % 5000 == 0:
            log("PROGRESS %d %d" % (len(acks), t))

    n = 0
    started = time.monotonic()
    deadline = started + 900
    while not (stop.is_set() and n >= min_count):
        if time.monotonic() > deadline:
            fail("not done after 900 s (produced %d, acked %d, failed %d, stop %s)"
                 % (n, len(acks), len(failed), stop.is_set()))
        # Keeps producing until STOP too: every round of the chaos has
        # traffic to disrupt.
        if n - len(acks) - len(failed) >= 20000:
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
    log("PRODUCED %d in %.1f s, flushing" % (n, time.monotonic() - started))
    left = producer.flush(300)
    if left:
        fail("%d messages still undecided after flush(300)" % left)
    with open(ack_file, "w") as f:
        for p, off, v in acks:
            # A delivery without an offset (None) is written as -1, and
            # verify() fails on it: librdkafka reports one only when the
            # broker answered a batch it had written with an error (or
            # DUPLICATE_SEQUENCE_NUMBER) and acknowledged a later one.
            f.write("%d %d %s\n" % (p, -1 if off is None else off, v))
    for p in sorted(gaps):
        g, a, b = gaps[p]
        log("GAP partition=%d ms=%d from=%d to=%d" % (p, g, a, b))
    log("first failures: %s" % failed[:3])
    log("OK produced=%d acked=%d failed=%d seconds=%.1f"
        % (n, len(acks), len(failed), time.monotonic() - started))


def verify():
    acks = []
    with open(ack_file) as f:
        for line in f:
            p, off, v = line.split()
            acks.append((int(p), int(off), v.encode()))
    check(acks, "no acknowledged messages to verify")
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
    got = ck_consume_until(consumer, {(topic, p): high[p] for p in range(PARTITIONS)},
                           timeout=300)
    consumer.close()
    stored = {}
    problems = []
    for (_, p), msgs in sorted(got.items()):
        offs = [m.offset() for m in msgs]
        if offs != list(range(len(offs))):
            problems.append("partition %d offsets are not dense from 0: first gaps %s"
                            % (p, [(a, b) for a, b in zip(offs, offs[1:]) if b != a + 1][:10]))
        last = None
        for m in msgs:
            stored[(p, m.offset())] = m.value()
            v = m.value()
            if not v.startswith(b"m-"):
                continue
            num = int(v[2:])
            if num % PARTITIONS != p:
                problems.append("partition %d offset %d holds %r, produced to partition %d"
                                % (p, m.offset(), v, num % PARTITIONS))
            if last is not None and num <= last[1]:
                problems.append("partition %d: %r at offset %d after m-%d at offset %d "
                                "(order broken or duplicate)" % (p, v, m.offset(), last[1], last[0]))
            last = (m.offset(), num)
    values = {(p, v) for (p, _), v in stored.items()}
    lost = [(p, off, v, stored.get((p, off))) for p, off, v in acks
            if (stored.get((p, off)) != v if off >= 0 else (p, v) not in values)]
    unknown = [(p, v.decode()) for p, off, v in acks if off < 0]
    log("acknowledged without an offset: %d" % len(unknown))
    if unknown:
        problems.append("%d of %d deliveries were acknowledged without an offset (partition, "
                        "value; first 10): %s" % (len(unknown), len(acks), unknown[:10]))
    if lost:
        problems.append("%d of %d acknowledged messages are not at their acknowledged offset "
                        "(partition, offset, acked value, stored value; first 10): %s"
                        % (len(lost), len(acks), lost[:10]))
    positions = [(p, off) for p, off, _ in acks if off >= 0]
    if len(set(positions)) != len(positions):
        problems.append("two acknowledgements name the same offset")
    extra = sum(1 for v in stored.values() if v.startswith(b"m-")) - len(acks)
    log("stored m- messages beyond the acknowledged ones: %d" % extra)
    if problems:
        fail("; ".join(problems[:20]) + "; high watermarks %s" % high)
    log("OK verified acked=%d stored=%s" % (len(acks), high))


if mode == "produce":
    produce(int(sys.argv[6]))
elif mode == "verify":
    verify()
else:
    fail("unknown mode " + mode)
