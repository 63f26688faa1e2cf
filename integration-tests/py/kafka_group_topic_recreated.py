"""A group's committed offsets for a topic go with the topic.

    kafka_group_topic_recreated.py <bootstrap>

Commits offset 3 of a 5-message topic for a group, deletes the topic, and
checks what Kafka does: the group's offsets for the deleted partitions are
removed (the coordinator's handleDeletedPartitions), so OffsetFetch (the admin
client's list_consumer_group_offsets) no longer shows them, and a consumer of
the group on a topic re-created under the same name starts from
auto.offset.reset=earliest, reading all of the new messages instead of
skipping to the stale offset. Runs under PyPI's confluent-kafka 2.x.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions

from kafka_common import ck_create_topic, ck_error_cb, check_eq, fail, log, versions

bootstrap = sys.argv[1]
topic, group = "recreated", "recreated-group"
log(versions())
admin = ck_create_topic(bootstrap, topic, 1)
p = Producer({"bootstrap.servers": bootstrap, "error_cb": ck_error_cb})


def produce(prefix):
    for i in range(5):
        p.produce(topic, b"%s%d" % (prefix, i), partition=0)
    check_eq(p.flush(30), 0, "messages left after flush")


def group_offsets():
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(30)
    return [(tp.topic, tp.partition, tp.offset) for tp in res.topic_partitions]


produce(b"old")
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
              "error_cb": ck_error_cb})
c.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
c.close()
check_eq(group_offsets(), [(topic, 0, 3)], "committed offsets before the delete")

admin.delete_topics([topic], operation_timeout=30)[topic].result(30)
deadline = time.monotonic() + 30
while topic in admin.list_topics(timeout=10).topics:
    if time.monotonic() > deadline:
        fail("topic still listed 30 s after DeleteTopics")
    time.sleep(0.1)
after_delete = group_offsets()

ck_create_topic(bootstrap, topic, 1)
produce(b"new")
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "enable.partition.eof": True, "error_cb": ck_error_cb})
c.subscribe([topic])
got = []
deadline = time.monotonic() + 30
while True:
    if time.monotonic() > deadline:
        fail("no end of partition within 30 s; got %r" % got)
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error() is not None:
        if m.error().code() == KafkaError._PARTITION_EOF:
            break
        log("consumer error: %s" % m.error())
        continue
    got.append((m.offset(), m.value().decode()))
c.close()
want = [(i, "new%d" % i) for i in range(5)]
if after_delete or got != want:
    fail("offsets committed for the deleted topic outlived it: OffsetFetch after DeleteTopics "
         "lists %r (Kafka: nothing), and the group's consumer on the re-created topic read %r "
         "(Kafka: %r, from auto.offset.reset=earliest)" % (after_delete, got, want))
log("OK offsets went with the topic; the re-created topic was read from offset 0")
