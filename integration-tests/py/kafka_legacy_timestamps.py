"""kafka-python pinned to old protocol versions against the broker at argv[1]:
a 0.9 producer writes magic-0 messages (no timestamp field), a 0.10 producer
magic-1 messages with a CreateTime timestamp. Read back by a current
consumer, the magic-0 record has no timestamp (-1), as Kafka stores and
returns it, and the magic-1 record keeps its own.
"""

import sys
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from kafka_common import check_eq, fail, log, versions

bootstrap = sys.argv[1]
log(versions())
topic = "legacy-ts-" + uuid.uuid4().hex[:8]

old = KafkaProducer(bootstrap_servers=bootstrap, api_version=(0, 9), acks=1)
old.send(topic, value=b"magic-0").get(timeout=30)
old.close()
newer = KafkaProducer(bootstrap_servers=bootstrap, api_version=(0, 10, 0), acks=1)
newer.send(topic, value=b"magic-1", timestamp_ms=12345).get(timeout=30)
newer.close()

consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=10000)
tp = TopicPartition(topic, 0)
consumer.assign([tp])
consumer.seek_to_beginning(tp)
got = {}
for record in consumer:
    got[record.value] = record.timestamp
    if len(got) == 2:
        break
consumer.close()
if len(got) != 2:
    fail("read back %r" % got)
check_eq(got[b"magic-0"], -1, "timestamp of the magic-0 message")
check_eq(got[b"magic-1"], 12345, "timestamp of the magic-1 message")
log("OK magic 0 reads back without a timestamp, magic 1 with its own")
