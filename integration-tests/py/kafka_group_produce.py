"""Numbered messages for kafka_groups.rs.

    kafka_group_produce.py <bootstrap> create <topic> <partitions>
    kafka_group_produce.py <bootstrap> produce <topic> <partitions> <first> <count>
    kafka_group_produce.py <bootstrap> stream <topic> <partitions> <first>

`create` makes the topic and waits for leaders. `produce` sends values
`m<first>` .. `m<first+count-1>` (zero-padded to 6 digits), message i to
partition i % <partitions>, acks=all, and checks every delivery report.
`stream` does the same from m<first> on, one message every 10 ms, printing
`PRODUCED <n>` every 50 messages, until a `STOP` line on stdin; its OK line
ends with `next <i>`, the number the next message would have had.
"""

import sys

from kafka_common import ck_create_topic, ck_error_cb, check_eq, fail, log

bootstrap, mode, topic, partitions = sys.argv[1:5]
partitions = int(partitions)

if mode == "create":
    ck_create_topic(bootstrap, topic, partitions)
    log("OK created %s with %d partitions" % (topic, partitions))
elif mode in ("produce", "stream"):
    import threading
    import time

    from confluent_kafka import Producer

    first = int(sys.argv[5])
    count = int(sys.argv[6]) if mode == "produce" else None
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "error_cb": ck_error_cb})
    errors = []
    delivered = [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append((msg.value(), err))
        else:
            delivered[0] += 1

    stop = threading.Event()
    if mode == "stream":
        def read_stdin():
            for line in sys.stdin:
                if line.strip() == "STOP":
                    break
            stop.set()

        threading.Thread(target=read_stdin, daemon=True).start()
    i = first
    while (i < first + count) if count is not None else not stop.is_set():
        p.produce(topic, value=b"m%06d" % i, partition=i % partitions, on_delivery=on_delivery)
        p.poll(0)
        i += 1
        if count is None:
            if (i - first) % 50 == 0:
                log("PRODUCED %d" % (i - first))
            time.sleep(0.01)
    count = i - first
    left = p.flush(30)
    check_eq(left, 0, "messages still in flight after flush")
    if errors:
        fail("delivery errors: %r" % errors[:10])
    check_eq(delivered[0], count, "delivered")
    log("OK produced m%06d..m%06d to %s, next %d" % (first, first + count - 1, topic, i))
else:
    fail("unknown mode %r" % mode)
