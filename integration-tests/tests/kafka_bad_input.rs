//! Hostile, malformed and refused Kafka requests over raw TCP: each gets
//! Kafka's answer (or a closed connection for that connection alone), the
//! broker keeps serving everyone else, and no log is touched.

use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::process::Command;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use integration_tests::kafka::{BrokerOpts, KafkaBroker};
use integration_tests::kafka_raw::{self, err, topic_name, KafkaConn};
use integration_tests::run_with_timeout;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsResponse, InitProducerIdRequest, InitProducerIdResponse, MetadataRequest,
    MetadataResponse, ResponseHeader,
};
use kafka_protocol::protocol::Decodable;

const CLOSE_DEADLINE: Duration = Duration::from_secs(10);

/// `kcat -L` against the broker must list it (and `topic`, if given).
fn kcat_lists(addr: SocketAddr, topic: Option<&str>) {
    let mut cmd = Command::new("/usr/bin/kcat");
    cmd.args(["-b", &addr.to_string(), "-L", "-m", "15"]);
    let (status, out) = run_with_timeout(cmd, "", Duration::from_secs(30)).expect("kcat -L runs");
    assert!(status.success(), "kcat -L failed ({status}):\n{out}");
    assert!(out.contains("1 brokers:"), "kcat -L output:\n{out}");
    if let Some(t) = topic {
        assert!(
            out.contains(&format!("topic \"{t}\" with 1 partitions")),
            "kcat -L does not list {t}:\n{out}"
        );
    }
}

/// A topic holding known records, checked unchanged after every attack.
struct Canary {
    topic: String,
    values: Vec<Bytes>,
}

impl Canary {
    fn new(addr: SocketAddr, topic: &str) -> Self {
        kafka_raw::wait_registered(addr).expect("broker registered");
        let mut c = KafkaConn::connect(addr).expect("connect");
        let (code, msg) = kafka_raw::create_topic(&mut c, topic, 1, 1, &[]).expect("create canary");
        assert_eq!(code, err::NONE, "creating canary topic: {msg:?}");
        kafka_raw::wait_leader(addr, topic, 0).expect("canary has a leader");
        let vals: Vec<&[u8]> = vec![b"canary-0", b"canary-1", b"canary-2"];
        let (code, base) = kafka_raw::produce(
            &mut c,
            topic,
            0,
            kafka_raw::simple_batch(&vals).expect("batch"),
        )
        .expect("produce canary");
        assert_eq!((code, base), (err::NONE, 0), "producing canary");
        Canary {
            topic: topic.to_owned(),
            values: vals.iter().map(|v| Bytes::copy_from_slice(v)).collect(),
        }
    }

    /// The broker still serves new connections (ApiVersions, kcat -L) and the
    /// canary's log is exactly what was produced.
    fn check(&self, addr: SocketAddr, after: &str) {
        kafka_raw::api_versions_ok(addr)
            .unwrap_or_else(|e| panic!("ApiVersions on a new connection after {after}: {e:#}"));
        let mut c = KafkaConn::connect(addr).expect("connect");
        let (code, hw, lso, recs) =
            kafka_raw::fetch(&mut c, &self.topic, 0, 0, 1 << 20).expect("fetch canary");
        assert_eq!(code, err::NONE, "fetch canary after {after}");
        assert_eq!((hw, lso), (3, 0), "canary offsets changed after {after}");
        let got: Vec<(i64, Bytes)> = recs;
        let want: Vec<(i64, Bytes)> = self
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64, v.clone()))
            .collect();
        assert_eq!(got, want, "canary contents changed after {after}");
        kcat_lists(addr, Some(&self.topic));
    }
}

fn write_raw(addr: SocketAddr, bytes: &[u8]) -> KafkaConn {
    let mut c = KafkaConn::connect(addr).expect("connect");
    c.stream.write_all(bytes).expect("write");
    c
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let broker = KafkaBroker::spawn(BrokerOpts::default().with("socket.request.max.bytes", 4096))
        .expect("spawn broker");
    let addr = broker.addr();
    let canary = Canary::new(addr, "canary");
    // A client connected before the attacks keeps its connection throughout.
    let mut bystander = KafkaConn::connect(addr).expect("bystander connects");

    // Garbage: an HTTP request (its "size" is 0x47455420, far over the limit).
    let mut c = write_raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        c.wait_closed(CLOSE_DEADLINE),
        "broker kept an HTTP-garbage connection open"
    );
    canary.check(addr, "HTTP garbage");

    // A CreateTopics v2 claiming 2^31-1 topics in 12 bytes: the decoder
    // must not reserve memory for them (this aborted the broker once).
    let mut c = write_raw(
        addr,
        &[
            0, 0, 0, 12, 0, 19, 0, 2, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
        ],
    );
    assert!(
        c.wait_closed(CLOSE_DEADLINE),
        "broker kept a huge-array-count connection open"
    );
    canary.check(addr, "huge array count");

    // Garbage inside a plausible frame: API key 0xabab (negative), noise after.
    let mut frame = vec![0, 0, 0, 16];
    frame.extend_from_slice(&[0xab; 16]);
    let mut c = write_raw(addr, &frame);
    assert!(
        c.wait_closed(CLOSE_DEADLINE),
        "broker kept a garbage frame connection open"
    );
    canary.check(addr, "garbage frame");

    // A size just over socket.request.max.bytes=4096, the body never sent.
    let mut c = write_raw(addr, &4097i32.to_be_bytes());
    assert!(
        c.wait_closed(CLOSE_DEADLINE),
        "broker kept an oversized frame's connection open"
    );
    // And one that is actually sent in full.
    let mut c = KafkaConn::connect(addr).expect("connect");
    let body = vec![0u8; 5000];
    let _ = c.write_frame(&body);
    assert!(
        c.wait_closed(CLOSE_DEADLINE),
        "broker accepted a 5000-byte frame over a 4096 limit"
    );
    canary.check(addr, "oversized frame");

    // A negative size.
    let mut c = write_raw(addr, &(-5i32).to_be_bytes());
    assert!(
        c.wait_closed(CLOSE_DEADLINE),
        "broker kept a negative-size connection open"
    );
    canary.check(addr, "negative size");

    // Unknown API key 9999 with a well-formed v1 header: Kafka closes the connection.
    let mut body = BytesMut::new();
    body.extend_from_slice(&9999i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&7i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    let mut c = KafkaConn::connect(addr).expect("connect");
    c.write_frame(&body).expect("write");
    assert!(
        c.wait_closed(CLOSE_DEADLINE),
        "broker kept an unknown-API-key connection open"
    );
    canary.check(addr, "unknown API key");

    // Metadata at a version the broker does not advertise (its max + 1, and 99).
    let advertised = kafka_raw::api_versions_ok(addr).expect("ApiVersions");
    let meta = advertised
        .api_keys
        .iter()
        .find(|k| k.api_key == 3)
        .expect("Metadata advertised");
    for bad in [meta.max_version + 1, 99] {
        let mut body = KafkaConn::encode_request(meta.max_version, 9, &MetadataRequest::default())
            .expect("encode");
        body[2..4].copy_from_slice(&bad.to_be_bytes());
        let mut c = KafkaConn::connect(addr).expect("connect");
        c.write_frame(&body).expect("write");
        assert!(
            c.wait_closed(CLOSE_DEADLINE),
            "broker kept a Metadata v{bad} connection open"
        );
        canary.check(addr, &format!("Metadata v{bad}"));
    }

    // ApiVersions v99: a v0-shaped answer with UNSUPPORTED_VERSION and the supported ranges.
    let mut body = BytesMut::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&99i16.to_be_bytes());
    body.extend_from_slice(&4242i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    body.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // a body no known version has
    let mut c = KafkaConn::connect(addr).expect("connect");
    c.write_frame(&body).expect("write");
    let mut frame = c.read_frame().expect("ApiVersions v99 is answered");
    let header = ResponseHeader::decode(&mut frame, 0).expect("v0 response header");
    assert_eq!(header.correlation_id, 4242);
    let resp = ApiVersionsResponse::decode(&mut frame, 0).expect("v0-shaped ApiVersions answer");
    assert!(
        frame.is_empty(),
        "{} bytes after the v0 answer",
        frame.len()
    );
    assert_eq!(resp.error_code, err::UNSUPPORTED_VERSION, "{resp:?}");
    let av = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == 18)
        .expect("ApiVersions itself listed");
    assert_eq!(av.min_version, 0, "{resp:?}");
    assert!(av.max_version >= 3, "{resp:?}");
    assert!(
        resp.api_keys.iter().any(|k| k.api_key == 0),
        "Produce not listed: {resp:?}"
    );
    assert!(
        resp.api_keys.iter().any(|k| k.api_key == 1),
        "Fetch not listed: {resp:?}"
    );
    // The connection stays usable: a v3 request on it is answered normally.
    let again: ApiVersionsResponse = c
        .send(3, &kafka_protocol::messages::ApiVersionsRequest::default())
        .expect("ApiVersions v3 on the same connection after v99");
    assert_eq!(again.error_code, 0);
    canary.check(addr, "ApiVersions v99");

    // A truncated frame, then EOF from the client.
    let mut c = KafkaConn::connect(addr).expect("connect");
    let full = KafkaConn::encode_request(12, 3, &MetadataRequest::default()).expect("encode");
    let mut partial = Vec::new();
    partial.extend_from_slice(&((full.len() + 100) as i32).to_be_bytes());
    partial.extend_from_slice(&full);
    c.stream.write_all(&partial).expect("write");
    c.stream.shutdown(Shutdown::Write).expect("shutdown write");
    assert!(
        c.wait_closed(CLOSE_DEADLINE),
        "broker did not close a truncated frame's connection"
    );
    canary.check(addr, "truncated frame");

    // A well-framed Metadata v1 whose topic array claims 1000 entries it lacks.
    let mut body = BytesMut::new();
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&11i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    body.extend_from_slice(&1000i32.to_be_bytes());
    body.extend_from_slice(&[0, 1, b'x']);
    let mut c = KafkaConn::connect(addr).expect("connect");
    c.write_frame(&body).expect("write");
    assert!(
        c.wait_closed(CLOSE_DEADLINE),
        "broker kept a malformed Metadata connection open"
    );
    canary.check(addr, "malformed Metadata body");

    // The bystander's connection survived all of it.
    let resp: MetadataResponse = bystander
        .send(4, &MetadataRequest::default().with_topics(None))
        .expect("bystander Metadata after the attacks");
    assert!(
        resp.topics
            .iter()
            .any(|t| t.name.as_ref().map(|n| n.as_str()) == Some("canary")),
        "{resp:?}"
    );
}

#[test]
fn refused_produce_leaves_the_log_alone() {
    let broker = KafkaBroker::spawn(BrokerOpts::default().with("auto.create.topics.enable", false))
        .expect("spawn broker");
    let addr = broker.addr();
    let canary = Canary::new(addr, "canary");
    let mut c = KafkaConn::connect(addr).expect("connect");

    // CRC wrong: flip a byte of the CRC field (bytes 17..21 of a v2 batch).
    let good = kafka_raw::simple_batch(&[b"evil-1", b"evil-2"]).expect("batch");
    let mut bad = good.to_vec();
    bad[18] ^= 0x55;
    let (code, _) = kafka_raw::produce(&mut c, "canary", 0, Bytes::from(bad)).expect("produce");
    assert_eq!(code, err::CORRUPT_MESSAGE, "batch with a wrong CRC field");
    canary.check(addr, "a batch with a wrong CRC");

    // CRC field intact but a payload byte flipped (the value "evil-2").
    let mut bad = good.to_vec();
    let at = bad
        .windows(6)
        .position(|w| w == b"evil-2")
        .expect("value in batch");
    bad[at + 2] ^= 0x01;
    let (code, _) = kafka_raw::produce(&mut c, "canary", 0, Bytes::from(bad)).expect("produce");
    assert_eq!(
        code,
        err::CORRUPT_MESSAGE,
        "batch with a flipped payload byte"
    );
    canary.check(addr, "a batch with a flipped payload byte");

    // A batch over the topic's max.message.bytes.
    let (code, msg) =
        kafka_raw::create_topic(&mut c, "small", 1, 1, &[("max.message.bytes", "1024")])
            .expect("create small");
    assert_eq!(
        code,
        err::NONE,
        "create topic with max.message.bytes: {msg:?}"
    );
    kafka_raw::wait_leader(addr, "small", 0).expect("small has a leader");
    let big = vec![b'x'; 2000];
    let (code, _) = kafka_raw::produce(
        &mut c,
        "small",
        0,
        kafka_raw::simple_batch(&[&big]).expect("batch"),
    )
    .expect("produce");
    assert_eq!(
        code,
        err::MESSAGE_TOO_LARGE,
        "2000-byte batch into max.message.bytes=1024"
    );
    let (code, hw) = kafka_raw::list_offset(&mut c, "small", 0, -1).expect("list offsets");
    assert_eq!(
        (code, hw),
        (err::NONE, 0),
        "the refused batch reached the log"
    );
    // A batch under the limit is accepted there.
    let (code, base) = kafka_raw::produce(
        &mut c,
        "small",
        0,
        kafka_raw::simple_batch(&[b"fits"]).expect("batch"),
    )
    .expect("produce");
    assert_eq!(
        (code, base),
        (err::NONE, 0),
        "a small batch into max.message.bytes=1024"
    );
    canary.check(addr, "an oversized batch");

    // An invalid topic name. Kafka's Produce answers UNKNOWN_TOPIC_OR_PARTITION
    // (its metadata cache lacks the topic); INVALID_TOPIC_EXCEPTION is also fine.
    let (code, _) = kafka_raw::produce(
        &mut c,
        "bad name!",
        0,
        kafka_raw::simple_batch(&[b"v"]).expect("batch"),
    )
    .expect("produce");
    assert!(
        code == err::INVALID_TOPIC_EXCEPTION || code == err::UNKNOWN_TOPIC_OR_PARTITION,
        "Produce to \"bad name!\" answered {code}"
    );
    // Metadata of an invalid name: INVALID_TOPIC_EXCEPTION, auto-creation allowed or not.
    for (version, allow) in [(4i16, true), (4, false), (9, true), (12, true), (1, true)] {
        let req = MetadataRequest::default()
            .with_allow_auto_topic_creation(allow)
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name("bad name!")))
            ]));
        let resp: MetadataResponse = c.send(version, &req).expect("metadata");
        let t = resp.topics.first().expect("topic in answer");
        assert_eq!(
            t.error_code,
            err::INVALID_TOPIC_EXCEPTION,
            "Metadata v{version} (allow_auto_topic_creation={allow}) of \"bad name!\": {t:?}"
        );
    }

    // A missing topic with auto.create.topics.enable=false.
    let (code, _) = kafka_raw::produce(
        &mut c,
        "missing",
        0,
        kafka_raw::simple_batch(&[b"v"]).expect("batch"),
    )
    .expect("produce");
    assert_eq!(
        code,
        err::UNKNOWN_TOPIC_OR_PARTITION,
        "Produce to a missing topic"
    );
    // A missing partition of an existing topic.
    let (code, _) = kafka_raw::produce(
        &mut c,
        "canary",
        7,
        kafka_raw::simple_batch(&[b"v"]).expect("batch"),
    )
    .expect("produce");
    assert_eq!(
        code,
        err::UNKNOWN_TOPIC_OR_PARTITION,
        "Produce to canary partition 7"
    );
    // And Metadata did not create it either.
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name("missing")))
        ]));
    let resp: MetadataResponse = c.send(4, &req).expect("metadata");
    assert_eq!(
        resp.topics.first().map(|t| t.error_code),
        Some(err::UNKNOWN_TOPIC_OR_PARTITION),
        "Metadata of a missing topic with auto-creation off: {resp:?}"
    );
    canary.check(addr, "refused produces");
}

#[test]
fn fetch_and_create_topics_errors() {
    let broker = KafkaBroker::dev().expect("spawn broker");
    let addr = broker.addr();
    let canary = Canary::new(addr, "canary");
    let mut c = KafkaConn::connect(addr).expect("connect");

    // Fetch past the log end (3) is OFFSET_OUT_OF_RANGE; at the end it is fine.
    let (code, _, _, recs) = kafka_raw::fetch(&mut c, "canary", 0, 4, 1 << 20).expect("fetch");
    assert_eq!(
        code,
        err::OFFSET_OUT_OF_RANGE,
        "Fetch at offset 4 of a 3-record log"
    );
    assert!(recs.is_empty());
    let (code, _, _, _) = kafka_raw::fetch(&mut c, "canary", 0, 1000, 1 << 20).expect("fetch");
    assert_eq!(
        code,
        err::OFFSET_OUT_OF_RANGE,
        "Fetch at offset 1000 of a 3-record log"
    );
    let (code, hw, _, recs) = kafka_raw::fetch(&mut c, "canary", 0, 3, 1 << 20).expect("fetch");
    assert_eq!((code, hw), (err::NONE, 3), "Fetch at the log end");
    assert!(recs.is_empty());
    let (code, _, _, _) = kafka_raw::fetch(&mut c, "canary", 0, -5, 1 << 20).expect("fetch");
    assert_eq!(code, err::OFFSET_OUT_OF_RANGE, "Fetch at offset -5");

    // CreateTopics: an invalid config value.
    for (k, v) in [
        ("retention.ms", "soon"),
        ("cleanup.policy", "shred"),
        ("segment.bytes", "-1"),
    ] {
        let (code, msg) = kafka_raw::create_topic(&mut c, "cfg", 1, 1, &[(k, v)]).expect("create");
        assert_eq!(
            code,
            err::INVALID_CONFIG,
            "CreateTopics with {k}={v}: {msg:?}"
        );
    }
    // An existing topic.
    let (code, msg) = kafka_raw::create_topic(&mut c, "canary", 1, 1, &[]).expect("create");
    assert_eq!(
        code,
        err::TOPIC_ALREADY_EXISTS,
        "CreateTopics of an existing topic: {msg:?}"
    );
    // Replication factor 3 with one broker.
    let (code, msg) = kafka_raw::create_topic(&mut c, "rf3", 1, 3, &[]).expect("create");
    assert_eq!(
        code,
        err::INVALID_REPLICATION_FACTOR,
        "replication factor 3 on one broker: {msg:?}"
    );
    // An invalid name.
    let (code, msg) = kafka_raw::create_topic(&mut c, "bad name!", 1, 1, &[]).expect("create");
    assert_eq!(
        code,
        err::INVALID_TOPIC_EXCEPTION,
        "CreateTopics \"bad name!\": {msg:?}"
    );
    // None of the refused topics exists.
    let resp: MetadataResponse = c
        .send(4, &MetadataRequest::default().with_topics(None))
        .expect("metadata");
    let names: Vec<String> = resp
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    assert_eq!(
        names,
        vec!["canary".to_string()],
        "topics after refused creations"
    );
    canary.check(addr, "refused CreateTopics");
}

#[test]
fn idempotent_sequence_gap_and_duplicate() {
    let broker = KafkaBroker::dev().expect("spawn broker");
    let addr = broker.addr();
    let canary = Canary::new(addr, "canary");
    let mut c = KafkaConn::connect(addr).expect("connect");
    let (code, _) = kafka_raw::create_topic(&mut c, "idem", 1, 1, &[]).expect("create");
    assert_eq!(code, err::NONE);
    kafka_raw::wait_leader(addr, "idem", 0).expect("idem has a leader");

    let init: InitProducerIdResponse = c
        .send(
            1,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
        )
        .expect("InitProducerId");
    assert_eq!(init.error_code, err::NONE, "{init:?}");
    let pid = i64::from(init.producer_id);
    let epoch = init.producer_epoch;
    assert!(pid >= 0, "{init:?}");

    let b0 = kafka_raw::idempotent_batch(pid, epoch, 0, &[b"s0", b"s1"]).expect("batch");
    let (code, base) = kafka_raw::produce(&mut c, "idem", 0, b0.clone()).expect("produce seq 0");
    assert_eq!((code, base), (err::NONE, 0), "first idempotent batch");

    // Sequence 5 when 2 is expected: a gap.
    let gap = kafka_raw::idempotent_batch(pid, epoch, 5, &[b"s5"]).expect("batch");
    let (code, _) = kafka_raw::produce(&mut c, "idem", 0, gap).expect("produce seq 5");
    assert_eq!(
        code,
        err::OUT_OF_ORDER_SEQUENCE_NUMBER,
        "sequence 5 after 0..1"
    );

    // The last accepted batch again: its original offset, no error, nothing appended.
    let (code, base) = kafka_raw::produce(&mut c, "idem", 0, b0.clone()).expect("resend seq 0");
    assert_eq!((code, base), (err::NONE, 0), "resent duplicate batch");
    let (code, hw) = kafka_raw::list_offset(&mut c, "idem", 0, -1).expect("list offsets");
    assert_eq!(
        (code, hw),
        (err::NONE, 2),
        "log end after gap and duplicate"
    );

    // The expected sequence still works, and then the older batch is a duplicate too.
    let b2 = kafka_raw::idempotent_batch(pid, epoch, 2, &[b"s2"]).expect("batch");
    let (code, base) = kafka_raw::produce(&mut c, "idem", 0, b2.clone()).expect("produce seq 2");
    assert_eq!((code, base), (err::NONE, 2), "in-order batch after the gap");
    let (code, base) = kafka_raw::produce(&mut c, "idem", 0, b0).expect("resend seq 0 again");
    assert_eq!(
        (code, base),
        (err::NONE, 0),
        "duplicate of the second-to-last batch"
    );
    let (code, base) = kafka_raw::produce(&mut c, "idem", 0, b2).expect("resend seq 2");
    assert_eq!((code, base), (err::NONE, 2), "duplicate of the last batch");

    let (code, hw, _, recs) = kafka_raw::fetch(&mut c, "idem", 0, 0, 1 << 20).expect("fetch");
    assert_eq!((code, hw), (err::NONE, 3));
    let vals: Vec<&[u8]> = recs.iter().map(|(_, v)| v.as_ref()).collect();
    assert_eq!(
        vals,
        vec![&b"s0"[..], b"s1", b"s2"],
        "idempotent log contents"
    );
    canary.check(addr, "idempotent errors");
}

/// Kafka's CreateTopics answers once the new partitions' leaders have them
/// (LeaderAndIsr is applied before the metadata the request waits for), so a
/// Produce sent right after a successful CreateTopics is accepted.
#[test]
fn produce_right_after_create_topics() {
    let broker = KafkaBroker::dev().expect("spawn broker");
    let addr = broker.addr();
    kafka_raw::wait_registered(addr).expect("broker registered");
    let mut c = KafkaConn::connect(addr).expect("connect");
    let mut refused = Vec::new();
    for i in 0..20 {
        let topic = format!("fresh-{i}");
        let (code, msg) = kafka_raw::create_topic(&mut c, &topic, 1, 1, &[]).expect("create");
        assert_eq!(code, err::NONE, "CreateTopics {topic}: {msg:?}");
        let (code, _) = kafka_raw::produce(
            &mut c,
            &topic,
            0,
            kafka_raw::simple_batch(&[b"first"]).expect("batch"),
        )
        .expect("produce");
        if code != err::NONE {
            refused.push((topic, code));
        }
    }
    assert!(
        refused.is_empty(),
        "Produce right after a successful CreateTopics was refused (topic, error): {refused:?}"
    );
}
