"""Produces with acks=all until told to stop, recording every acknowledged
message as `partition offset value` lines; used by compose/test.sh.

usage: acks_producer.py BOOTSTRAP TOPIC ACKED_FILE STOP_FILE
"""
import os
import sys
import time

from confluent_kafka import Producer

bootstrap, topic, acked_path, stop_path = sys.argv[1:5]
p = Producer({
    "bootstrap.servers": bootstrap,
    "acks": "all",
    "enable.idempotence": True,
    "message.timeout.ms": 60000,
    "linger.ms": 5,
})
acked = open(acked_path, "w", buffering=1)
failed = 0


def report(err, msg):
    global failed
    if err is None:
        acked.write(f"{msg.partition()} {msg.offset()} {msg.value().decode()}\n")
    else:
        failed += 1


i = 0
while not os.path.exists(stop_path):
    try:
        p.produce(topic, value=f"m{i:06d}".encode(), key=str(i).encode(), on_delivery=report)
        i += 1
    except BufferError:
        pass
    p.poll(0.02)
left = p.flush(90)
acked.close()
print(f"acks_producer: sent {i}, acknowledged {i - failed - left}, failed {failed}, unflushed {left}")
