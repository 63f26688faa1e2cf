//! The names of broker settings: those this broker acts on, and those Kafka
//! has that it does not honour. Both feed "did you mean" for a misspelt key;
//! the second list makes an ignored Kafka key a warning that names it,
//! never a silent acceptance. [`ignored_notice`] words those warnings.

/// Keys `BrokerConfig::from_properties` applies (a unit test holds the two
/// in step).
pub(super) const HONOURED: &[&str] = &[
    "broker.id",
    "listeners",
    "advertised.listeners",
    "broker.rack",
    "log.dirs",
    "log.dir",
    "zookeeper.connect",
    "zookeeper.session.timeout.ms",
    "num.partitions",
    "default.replication.factor",
    "min.insync.replicas",
    "auto.create.topics.enable",
    "delete.topic.enable",
    "message.max.bytes",
    "socket.request.max.bytes",
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "log.retention.check.interval.ms",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.flush.scheduler.interval.ms",
    "reserved.broker.max.id",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.initial.rebalance.delay.ms",
    "group.max.size",
    "offset.metadata.max.bytes",
    "unclean.leader.election.enable",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "replica.lag.time.max.ms",
    "log.segment.bytes",
    "log.retention.bytes",
    "log.index.interval.bytes",
    "log.message.timestamp.type",
    "log.retention.ms",
    "log.retention.minutes",
    "log.retention.hours",
    "log.roll.ms",
    "log.roll.hours",
    // Honoured while they ask for PLAINTEXT, the only protocol spoken
    // (and the listener replication uses).
    "listener.security.protocol.map",
    "inter.broker.listener.name",
];

/// Keys of [`HONOURED`] that only some values of are honoured.
const PLAINTEXT_ONLY: &[&str] = &[
    "listener.security.protocol.map",
    "inter.broker.listener.name",
];

/// Kafka (and cp-kafka image) broker keys this broker reads but does not
/// act on: it sizes its own threads and buffers, keeps offsets and
/// transactions its own way, and speaks PLAINTEXT only.
pub(super) const NOT_HONOURED: &[&str] = &[
    "advertised.host.name",
    "advertised.port",
    "alter.config.policy.class.name",
    "alter.log.dirs.replication.quota.window.num",
    "authorizer.class.name",
    "auto.include.jmx.reporter",
    "background.threads",
    "broker.heartbeat.interval.ms",
    "broker.id.generation.enable",
    "broker.session.timeout.ms",
    "compression.type",
    "confluent.support.metrics.enable",
    "confluent.support.customer.id",
    "connection.failed.authentication.delay.ms",
    "connections.max.idle.ms",
    "connections.max.reauth.ms",
    "control.plane.listener.name",
    "controlled.shutdown.enable",
    "controlled.shutdown.max.retries",
    "controlled.shutdown.retry.backoff.ms",
    "controller.listener.names",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.socket.timeout.ms",
    "create.topic.policy.class.name",
    "delegation.token.expiry.time.ms",
    "delegation.token.master.key",
    "delegation.token.max.lifetime.ms",
    "delegation.token.secret.key",
    "delete.records.purgatory.purge.interval.requests",
    "fetch.max.bytes",
    "fetch.purgatory.purge.interval.requests",
    "group.consumer.heartbeat.interval.ms",
    "group.consumer.session.timeout.ms",
    "group.coordinator.rebalance.protocols",
    "host.name",
    "inter.broker.protocol.version",
    "kafka.metrics.polling.interval.secs",
    "kafka.metrics.reporters",
    "leader.imbalance.per.broker.percentage",
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.enable",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.threads",
    "log.cleanup.policy",
    "log.index.size.max.bytes",
    "log.local.retention.bytes",
    "log.local.retention.ms",
    "log.message.downconversion.enable",
    "log.message.format.version",
    "log.message.timestamp.after.max.ms",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.difference.max.ms",
    "log.preallocate",
    "log.retention.check.interval.minutes",
    "log.roll.jitter.hours",
    "log.roll.jitter.ms",
    "log.segment.delete.delay.ms",
    "max.connection.creation.rate",
    "max.incremental.fetch.session.cache.slots",
    "metadata.log.dir",
    "metric.reporters",
    "metrics.num.samples",
    "metrics.recording.level",
    "metrics.sample.window.ms",
    "node.id",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.alter.log.dirs.threads",
    "num.replica.fetchers",
    "offsets.commit.required.acks",
    "offsets.commit.timeout.ms",
    "offsets.load.buffer.size",
    "offsets.retention.check.interval.ms",
    "offsets.retention.minutes",
    "offsets.topic.compression.codec",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    "offsets.topic.segment.bytes",
    "password.encoder.secret",
    "port",
    "principal.builder.class",
    "process.roles",
    "producer.id.expiration.ms",
    "producer.purgatory.purge.interval.requests",
    "queued.max.request.bytes",
    "queued.max.requests",
    "quota.window.num",
    "quota.window.size.seconds",
    "replica.fetch.backoff.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.min.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.wait.max.ms",
    "replica.high.watermark.checkpoint.interval.ms",
    "replica.selector.class",
    "replica.socket.receive.buffer.bytes",
    "replica.socket.timeout.ms",
    "replication.quota.window.num",
    "request.timeout.ms",
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
    "sasl.kerberos.service.name",
    "sasl.mechanism.controller.protocol",
    "sasl.mechanism.inter.broker.protocol",
    "security.inter.broker.protocol",
    "socket.connection.setup.timeout.max.ms",
    "socket.connection.setup.timeout.ms",
    "socket.listen.backlog.size",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "ssl.cipher.suites",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.endpoint.identification.algorithm",
    "ssl.key.password",
    "ssl.keymanager.algorithm",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.protocol",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
    "super.users",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transaction.max.timeout.ms",
    "transaction.remove.expired.transaction.cleanup.interval.ms",
    "transaction.state.log.load.buffer.size",
    "transaction.state.log.min.isr",
    "transaction.state.log.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.segment.bytes",
    "transactional.id.expiration.ms",
    "unstable.api.versions.enable",
    "zookeeper.clientCnxnSocket",
    "zookeeper.connection.timeout.ms",
    "zookeeper.max.in.flight.requests",
    "zookeeper.set.acl",
    "zookeeper.ssl.client.enable",
];

/// Every key the broker knows by name: the candidates for "did you mean".
pub(super) fn all() -> impl Iterator<Item = &'static str> {
    HONOURED.iter().chain(NOT_HONOURED).copied()
}

/// The cp-kafka environment name of `key`: the image's mapping backwards
/// (`-` -> `___`, `_` -> `__`, `.` -> `_`, upper case, `KAFKA_` in front).
pub(super) fn env_name(key: &str) -> String {
    let mut out = String::from("KAFKA_");
    for c in key.chars() {
        match c {
            '-' => out.push_str("___"),
            '_' => out.push_str("__"),
            '.' => out.push('_'),
            c => out.push(c.to_ascii_uppercase()),
        }
    }
    out
}

/// Where a key was set, for the warnings about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    File,
    /// The `KAFKA_*` variable it was mapped from.
    Env(String),
    Override,
}

/// The warning for a key this broker does not act on: a Kafka key it does
/// not honour, or an unknown one with the closest known key, named the way
/// it was given (`KAFKA_*` variables by their own name).
pub(super) fn ignored_notice(key: &str, origin: &Origin) -> String {
    let given = match origin {
        Origin::Env(name) => format!("{name} ({key})"),
        Origin::File | Origin::Override => key.to_owned(),
    };
    if PLAINTEXT_ONLY.contains(&key) {
        return format!(
            "{given} is honoured only as PLAINTEXT (the one protocol this broker speaks); ignored"
        );
    }
    if NOT_HONOURED.contains(&key) {
        return format!("{given} is a Kafka setting this broker does not honour; ignored");
    }
    let suggestion = common::suggest::closest(key, all()).map(|s| match origin {
        Origin::Env(_) => format!("; did you mean {} ({s})?", env_name(s)),
        Origin::File | Origin::Override => format!("; did you mean {s}?"),
    });
    format!(
        "unknown key {given} ignored{}",
        suggestion.unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_do_not_overlap() {
        for k in HONOURED {
            assert!(!NOT_HONOURED.contains(k), "{k} is in both lists");
        }
    }

    #[test]
    fn other_protocols_than_plaintext_are_named() {
        assert_eq!(
            ignored_notice("inter.broker.listener.name", &Origin::File),
            "inter.broker.listener.name is honoured only as PLAINTEXT \
             (the one protocol this broker speaks); ignored"
        );
    }

    #[test]
    fn env_name_inverts_the_image_mapping() {
        assert_eq!(env_name("num.partitions"), "KAFKA_NUM_PARTITIONS");
        assert_eq!(
            env_name("confluent.support-x_y.z"),
            "KAFKA_CONFLUENT_SUPPORT___X__Y_Z"
        );
    }

    #[test]
    fn typos_get_the_closest_key() {
        assert_eq!(
            ignored_notice("num.partiton", &Origin::Override),
            "unknown key num.partiton ignored; did you mean num.partitions?"
        );
        assert_eq!(
            ignored_notice(
                "zookeeper.conect",
                &Origin::Env("KAFKA_ZOOKEEPER_CONECT".into())
            ),
            "unknown key KAFKA_ZOOKEEPER_CONECT (zookeeper.conect) ignored; \
             did you mean KAFKA_ZOOKEEPER_CONNECT (zookeeper.connect)?"
        );
        assert_eq!(
            ignored_notice("something.else.entirely", &Origin::File),
            "unknown key something.else.entirely ignored"
        );
    }

    #[test]
    fn kafka_keys_not_honoured_are_named() {
        assert_eq!(
            ignored_notice("num.network.threads", &Origin::File),
            "num.network.threads is a Kafka setting this broker does not honour; ignored"
        );
        assert_eq!(
            ignored_notice(
                "offsets.topic.replication.factor",
                &Origin::Env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR".into())
            ),
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR (offsets.topic.replication.factor) \
             is a Kafka setting this broker does not honour; ignored"
        );
    }
}
