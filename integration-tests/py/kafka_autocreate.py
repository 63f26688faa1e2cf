"""Topic auto-creation against the broker at argv[1] (auto.create.topics.enable
at its default, true):

1. a confluent-kafka producer to an unknown topic gets its messages
   acknowledged (the broker auto-creates the topic) and they read back;
2. a confluent-kafka consumer with allow.auto.create.topics=false that assigns
   and asks for an unknown topic does NOT create it;
3. Metadata v4 with allow_auto_topic_creation=false answers
   UNKNOWN_TOPIC_OR_PARTITION and creates nothing; v4 with true, and v1
   (which has no flag), create the topic.
"""

import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from kafka_common import (check, check_eq, ck_consume_until, ck_consumer, ck_error_cb,
                          fail, log, raw_metadata, versions)

bootstrap = sys.argv[1]
log(versions())
suffix = uuid.uuid4().hex[:8]
admin = AdminClient({"bootstrap.servers": bootstrap, "error_cb": ck_error_cb})


def all_topics():
    """Every topic, via a Metadata request for all topics (which creates nothing)."""
    return set(admin.list_topics(timeout=15).topics)


def wait_for(what, cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    fail("timed out waiting for " + what)


# 1. Producing to an unknown topic creates it.
auto = "auto-" + suffix
check(auto not in all_topics(), "%s exists before anything used it" % auto)
producer = Producer({"bootstrap.servers": bootstrap, "error_cb": ck_error_cb,
                     "message.timeout.ms": 30000})
errors, acked = [], []
for i in range(10):
    producer.produce(auto, value=b"auto-%d" % i, key=b"k",
                     on_delivery=lambda err, msg: errors.append(str(err)) if err else acked.append(
                         (msg.partition(), msg.offset(), msg.value())))
check_eq(producer.flush(40), 0, "messages to an auto-created topic still queued after flush(40)")
check(not errors, "delivery to an auto-created topic failed: %s" % errors)
check_eq(len(acked), 10, "acknowledged messages to the auto-created topic")
check(auto in all_topics(), "%s not listed after producing to it" % auto)
md = admin.list_topics(topic=auto, timeout=15).topics[auto]
check(md.error is None, "metadata of %s: %s" % (auto, md.error))
nparts = len(md.partitions)
check(nparts >= 1, "auto-created topic has no partitions")
consumer = ck_consumer(bootstrap)
consumer.assign([TopicPartition(auto, p, OFFSET_BEGINNING) for p in range(nparts)])
counts = {(auto, p): sum(1 for a in acked if a[0] == p) for p in range(nparts)}
got = ck_consume_until(consumer, counts)
values = sorted(m.value() for msgs in got.values() for m in msgs)
check_eq(values, sorted(b"auto-%d" % i for i in range(10)), "values read back from %s" % auto)
consumer.close()
log("producer auto-created %s (%d partitions)" % (auto, nparts))

# 2. A consumer that must not auto-create.
noauto = "noauto-" + suffix
consumer = ck_consumer(bootstrap, **{"allow.auto.create.topics": False})
consumer.assign([TopicPartition(noauto, 0, OFFSET_BEGINNING)])
# The assignment makes the client look the topic up; give it a bounded number
# of polls (it may report the unknown topic, it must not get messages).
deadline = time.monotonic() + 3
while time.monotonic() < deadline:
    msg = consumer.poll(0.2)
    if msg is not None and msg.error() is None:
        fail("consumer got a message from the nonexistent topic %s" % noauto)
res = consumer.list_topics(topic=noauto, timeout=15).topics.get(noauto)
check(res is not None, "metadata answer has no entry for %s" % noauto)
check(res.error is not None and res.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART,
      "consumer metadata for %s with allow.auto.create.topics=false: error %r, partitions %r"
      % (noauto, res.error, res.partitions))
consumer.close()
check(noauto not in all_topics(),
      "consumer with allow.auto.create.topics=false created %s" % noauto)
log("consumer did not create %s" % noauto)

# 3. Raw Metadata requests: the flag, and v1 which predates it.
raw_no = "raw-no-" + suffix
res = raw_metadata(bootstrap, 4, [raw_no], allow_auto_topic_creation=False)
check_eq(res, {raw_no: (3, 0)},
         "Metadata v4 allow_auto_topic_creation=false for a missing topic "
         "(want UNKNOWN_TOPIC_OR_PARTITION=3)")
check(raw_no not in all_topics(), "Metadata v4 allow_auto_topic_creation=false created %s" % raw_no)

for version, flag in ((4, True), (1, None)):
    name = "raw-v%d-%s" % (version, suffix)
    res = raw_metadata(bootstrap, version, [name], allow_auto_topic_creation=bool(flag))
    check(name in res, "Metadata v%d answer lacks %s: %r" % (version, name, res))
    # Kafka answers LEADER_NOT_AVAILABLE (5) while the new topic has no
    # leader yet; an answer describing the created topic is fine too.
    check(res[name][0] in (0, 5), "Metadata v%d auto-creating %s: error %d"
          % (version, name, res[name][0]))
    wait_for("Metadata v%d to have created %s" % (version, name), lambda: name in all_topics())
    res = raw_metadata(bootstrap, version, [name], allow_auto_topic_creation=False)
    check_eq(res[name][0], 0, "Metadata v%d for the auto-created %s" % (version, name))
    check(res[name][1] >= 1, "auto-created %s has no partitions" % name)
log("OK autocreate")
