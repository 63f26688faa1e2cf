//! The connection's state machine in-process: a real `Broker` (fresh temp
//! log dir per input, a fixed metadata image applied to its replicas, a
//! coordinator session that can never connect) fed client byte streams
//! through `broker::server::fuzzing::fuzz_connections`, which runs the
//! connection's own frame splitting and per-frame handling.
//!
//! Frames are a mix of requests generated for an API and version from
//! `api::SUPPORTED` (kafka-protocol's encoder for v3+ Produce and the rest,
//! a hand encoder for Produce v0-v2 and legacy message sets), the same
//! mutated, and random bytes. Everything runs on a current-thread runtime
//! with a paused clock, so waits (the 5 s coordinator wait of admin
//! requests, Fetch's long poll) end as soon as nothing else can run.
//!
//! Oracles: no panic; no answer fails to encode; every answer carries the
//! request's correlation id and decodes (kafka-protocol's response decoder,
//! or by hand for Produce v0-v2) to its end; only Produce acks=0 goes
//! unanswered; a generated, unmutated request never closes the connection;
//! after the run, every log reopens with the same start and end offsets.

#![no_main]
#![feature(alloc_error_hook)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use broker::api;
use broker::cluster::{
    Cluster, MetadataImage, PartitionImage, PartitionState, SessionConfig, TopicImage,
};
use broker::config::BrokerConfig;
use broker::log::{LogConfig, LogManager};
use broker::replication::Replicas;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use libfuzzer_sys::fuzz_target;
use tokio_util::sync::CancellationToken;

const ME: i32 = 0;
/// Topics in the image: name, partitions (leader per partition), configs.
const TOPICS: &[(&str, &[i32], &[(&str, &str)])] = &[
    ("t", &[ME, ME], &[]),
    (
        "c",
        &[ME],
        &[
            ("message.timestamp.type", "LogAppendTime"),
            ("segment.bytes", "300"),
        ],
    ),
    ("m", &[ME], &[("max.message.bytes", "120")]),
    ("f", &[1], &[]),
];
/// Names the generator picks from: the image's, one to auto-create, bad ones.
const NAMES: &[&str] = &["t", "c", "m", "f", "new", "bad name", "", "..", "t-0"];

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    common::tolerate_refused_allocations(|| RT.with(|rt| rt.block_on(run(input))));
});

#[derive(Arbitrary, Debug)]
struct Input {
    connections: Vec<Conn>,
}

#[derive(Arbitrary, Debug)]
struct Conn {
    pieces: Vec<Piece>,
    /// Ends the stream inside a frame.
    tail: Option<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
enum Piece {
    /// A generated request, maybe mutated.
    Request(Req),
    /// Random bytes behind a correct size prefix.
    Frame(Vec<u8>),
    /// A frame with a forced supported API key and version and random rest.
    Gated { api: u8, version: u8, rest: Vec<u8> },
    /// Random bytes in the stream, size prefixes and all.
    Stream(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Req {
    api: u8,
    version: u8,
    correlation_id: i32,
    client_id: Option<String>,
    spec: Spec,
    edits: Vec<Edit>,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Xor { at: u16, x: u8 },
    Truncate(u16),
    Insert { at: u16, bytes: Vec<u8> },
    /// Overwrites 4 bytes (an array length, a size) with a chosen value.
    Put32 { at: u16, v: i32 },
}

/// Knobs each API's generator reads as it needs.
#[derive(Arbitrary, Debug)]
struct Spec {
    topics: Vec<TopicSpec>,
    acks: i8,
    flag: bool,
    flag2: bool,
    n: i16,
    timeout_ms: i16,
    max_bytes: i32,
    producer: (i8, i16),
    transactional_id: Option<String>,
}

#[derive(Arbitrary, Debug)]
struct TopicSpec {
    name: Name,
    partitions: Vec<PartSpec>,
    configs: Vec<(Name, Option<String>, u8)>,
}

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Config(u8),
    Other(String),
}

const CONFIG_KEYS: &[&str] = &[
    "segment.bytes",
    "retention.ms",
    "retention.bytes",
    "max.message.bytes",
    "message.timestamp.type",
    "cleanup.policy",
    "compression.type",
    "flush.messages",
    "min.insync.replicas",
    "no.such.key",
];

impl Name {
    fn get(&self) -> String {
        match self {
            Name::Known(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
            Name::Config(i) => CONFIG_KEYS[usize::from(*i) % CONFIG_KEYS.len()].to_owned(),
            Name::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct PartSpec {
    index: i8,
    offset: i64,
    small_offset: u8,
    records: RecSpec,
    replicas: Vec<i8>,
}

#[derive(Arbitrary, Debug)]
enum RecSpec {
    None,
    Batches(Vec<common::BatchSpec>, bool),
    Raw(Vec<u8>, bool),
    Legacy(Vec<LegacyMsg>),
}

/// A magic 0/1 message, maybe a compressed wrapper of more.
#[derive(Arbitrary, Debug)]
struct LegacyMsg {
    magic1: bool,
    attributes: u8,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// Gzip the inner messages into this message's value.
    inner: Vec<(Option<Vec<u8>>, Option<Vec<u8>>, bool)>,
    bad_crc: bool,
}

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl PartSpec {
    fn index(&self) -> i32 {
        i32::from(self.index % 4)
    }

    fn offset(&self) -> i64 {
        if self.small_offset < 200 {
            i64::from(self.small_offset % 8) - 3
        } else {
            self.offset
        }
    }

    fn records(&self) -> Option<Bytes> {
        match &self.records {
            RecSpec::None => None,
            RecSpec::Batches(specs, fix) => {
                let mut b = BytesMut::new();
                for s in specs.iter().take(3) {
                    b.extend_from_slice(&s.encode()?);
                }
                if *fix {
                    common::fix_crcs(&mut b);
                }
                Some(b.freeze())
            }
            RecSpec::Raw(b, fix) => {
                let mut b = b.clone();
                if *fix {
                    common::fix_crcs(&mut b);
                }
                Some(b.into())
            }
            RecSpec::Legacy(msgs) => Some(legacy_set(msgs)),
        }
    }
}

fn legacy_message(magic1: bool, attributes: u8, ts: i64, key: Option<&[u8]>, value: Option<&[u8]>, bad_crc: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.push(u8::from(magic1));
    body.push(attributes);
    if magic1 {
        body.extend_from_slice(&ts.to_be_bytes());
    }
    for f in [key, value] {
        match f {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                body.extend_from_slice(&(b.len() as i32).to_be_bytes());
                body.extend_from_slice(b);
            }
        }
    }
    let crc = crc32fast::hash(&body) ^ u32::from(bad_crc);
    let mut m = Vec::new();
    m.extend_from_slice(&0i64.to_be_bytes());
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(&crc.to_be_bytes());
    m.extend_from_slice(&body);
    m
}

fn legacy_set(msgs: &[LegacyMsg]) -> Bytes {
    let mut set = Vec::new();
    for m in msgs.iter().take(4) {
        if m.inner.is_empty() {
            set.extend_from_slice(&legacy_message(
                m.magic1,
                m.attributes & !0x07,
                m.timestamp,
                m.key.as_deref(),
                m.value.as_deref(),
                m.bad_crc,
            ));
        } else {
            let mut inner = Vec::new();
            for (i, (k, v, magic1)) in m.inner.iter().take(4).enumerate() {
                let mut msg = legacy_message(*magic1 && m.magic1, 0, m.timestamp, k.as_deref(), v.as_deref(), false);
                // Inner offsets: absolute for magic 0, relative for magic 1.
                msg[..8].copy_from_slice(&(i as i64).to_be_bytes());
                inner.extend_from_slice(&msg);
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &inner).expect("gzip");
            let value = gz.finish().expect("gzip");
            set.extend_from_slice(&legacy_message(
                m.magic1,
                (m.attributes & !0x07) | 1,
                m.timestamp,
                m.key.as_deref(),
                Some(&value),
                m.bad_crc,
            ));
        }
    }
    set.into()
}

/// Produce v0-v2 body, by hand (kafka-protocol has none).
fn legacy_produce(spec: &Spec) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(i16::from(spec.acks % 3));
    b.put_i32(i32::from(spec.timeout_ms));
    b.put_i32(spec.topics.len().min(3) as i32);
    for t in spec.topics.iter().take(3) {
        let name = t.name.get();
        b.put_i16(name.len() as i16);
        b.put_slice(name.as_bytes());
        b.put_i32(t.partitions.len().min(3) as i32);
        for p in t.partitions.iter().take(3) {
            b.put_i32(p.index());
            let set = p.records().unwrap_or_default();
            b.put_i32(set.len() as i32);
            b.put_slice(&set);
        }
    }
    b.freeze()
}

fn topic_name(t: &TopicSpec) -> TopicName {
    TopicName(str(&t.name.get()))
}

/// A request of `api` from the knobs; `None` for an API without a
/// generator (the consumer-group APIs, added to `api::SUPPORTED` after this
/// target was written: they get random and mutated bodies only).
fn generate(api: ApiKey, version: i16, s: &Spec) -> Option<RequestKind> {
    let topics = || s.topics.iter().take(3);
    fn parts(t: &TopicSpec) -> Vec<&PartSpec> {
        t.partitions.iter().take(3).collect()
    }
    let timeout = i32::from(s.timeout_ms);
    Some(match api {
        ApiKey::Produce => RequestKind::Produce(
            ProduceRequest::default()
                .with_transactional_id(s.transactional_id.as_deref().map(|t| TransactionalId(str(t))))
                .with_acks(i16::from(s.acks % 3))
                .with_timeout_ms(timeout)
                .with_topic_data(
                    topics()
                        .map(|t| {
                            produce_request::TopicProduceData::default()
                                .with_name(topic_name(t))
                                .with_partition_data(
                                    parts(t)
                                        .into_iter()
                                        .map(|p| {
                                            produce_request::PartitionProduceData::default()
                                                .with_index(p.index())
                                                .with_records(p.records())
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        ApiKey::Fetch => RequestKind::Fetch(
            FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(i32::from(s.timeout_ms % 5))
                .with_min_bytes(i32::from(s.n))
                .with_max_bytes(s.max_bytes)
                .with_isolation_level(i8::from(s.flag))
                .with_topics(
                    topics()
                        .map(|t| {
                            fetch_request::FetchTopic::default()
                                .with_topic(topic_name(t))
                                .with_partitions(
                                    parts(t)
                                        .into_iter()
                                        .map(|p| {
                                            fetch_request::FetchPartition::default()
                                                .with_partition(p.index())
                                                .with_fetch_offset(p.offset())
                                                .with_partition_max_bytes(
                                                    i32::from(p.small_offset) * 64 - 1000,
                                                )
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        ApiKey::ListOffsets => RequestKind::ListOffsets(
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(i8::from(s.flag))
                .with_topics(
                    topics()
                        .map(|t| {
                            list_offsets_request::ListOffsetsTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(
                                    parts(t)
                                        .into_iter()
                                        .map(|p| {
                                            list_offsets_request::ListOffsetsPartition::default()
                                                .with_partition_index(p.index())
                                                .with_timestamp(p.offset())
                                                .with_current_leader_epoch(-1)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        ApiKey::Metadata => RequestKind::Metadata(
            MetadataRequest::default()
                .with_topics((!s.flag2 || version == 0).then(|| {
                    topics()
                        .map(|t| {
                            metadata_request::MetadataRequestTopic::default()
                                .with_name(Some(topic_name(t)))
                        })
                        .collect()
                }))
                .with_allow_auto_topic_creation(version < 4 || s.flag),
        ),
        ApiKey::ApiVersions => RequestKind::ApiVersions(if version >= 3 {
            ApiVersionsRequest::default()
                .with_client_software_name(str("fuzz"))
                .with_client_software_version(str(
                    &s.transactional_id.clone().unwrap_or_default(),
                ))
        } else {
            ApiVersionsRequest::default()
        }),
        ApiKey::CreateTopics => RequestKind::CreateTopics(
            CreateTopicsRequest::default()
                .with_timeout_ms(timeout)
                .with_validate_only(s.flag)
                .with_topics(
                    topics()
                        .map(|t| {
                            create_topics_request::CreatableTopic::default()
                                .with_name(topic_name(t))
                                .with_num_partitions(i32::from(s.n % 5))
                                .with_replication_factor(s.producer.1 % 3)
                                .with_assignments(
                                    parts(t)
                                        .into_iter()
                                        .map(|p| {
                                            create_topics_request::CreatableReplicaAssignment::default()
                                                .with_partition_index(p.index())
                                                .with_broker_ids(
                                                    p.replicas.iter().take(3).map(|&r| BrokerId(i32::from(r % 3))).collect(),
                                                )
                                        })
                                        .collect(),
                                )
                                .with_configs(
                                    t.configs
                                        .iter()
                                        .take(3)
                                        .map(|(k, v, _)| {
                                            create_topics_request::CreatableTopicConfig::default()
                                                .with_name(str(&k.get()))
                                                .with_value(v.as_deref().map(str))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        ApiKey::DeleteTopics => {
            let mut r = DeleteTopicsRequest::default().with_timeout_ms(timeout);
            if version >= 6 {
                r.topics = topics()
                    .map(|t| {
                        delete_topics_request::DeleteTopicState::default()
                            .with_name(Some(topic_name(t)))
                    })
                    .collect();
            } else {
                r.topic_names = topics().map(topic_name).collect();
            }
            RequestKind::DeleteTopics(r)
        }
        ApiKey::InitProducerId => {
            let mut r = InitProducerIdRequest::default()
                .with_transactional_id(s.transactional_id.as_deref().map(|t| TransactionalId(str(t))))
                .with_transaction_timeout_ms(timeout);
            if version >= 3 {
                r.producer_id = ProducerId(i64::from(s.producer.0));
                r.producer_epoch = s.producer.1;
            }
            RequestKind::InitProducerId(r)
        }
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(
            DescribeConfigsRequest::default()
                .with_include_synonyms(version >= 1 && s.flag)
                .with_include_documentation(version >= 3 && s.flag2)
                .with_resources(
                    topics()
                        .map(|t| {
                            describe_configs_request::DescribeConfigsResource::default()
                                .with_resource_type(if s.n % 3 == 0 { 4 } else { 2 })
                                .with_resource_name(str(&t.name.get()))
                                .with_configuration_keys((!t.configs.is_empty()).then(|| {
                                    t.configs.iter().take(3).map(|(k, _, _)| str(&k.get())).collect()
                                }))
                        })
                        .collect(),
                ),
        ),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(
            AlterConfigsRequest::default()
                .with_validate_only(s.flag)
                .with_resources(
                    topics()
                        .map(|t| {
                            alter_configs_request::AlterConfigsResource::default()
                                .with_resource_type(if s.n % 3 == 0 { 4 } else { 2 })
                                .with_resource_name(str(&t.name.get()))
                                .with_configs(
                                    t.configs
                                        .iter()
                                        .take(3)
                                        .map(|(k, v, _)| {
                                            alter_configs_request::AlterableConfig::default()
                                                .with_name(str(&k.get()))
                                                .with_value(v.as_deref().map(str))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default()
                .with_validate_only(s.flag)
                .with_resources(
                    topics()
                        .map(|t| {
                            incremental_alter_configs_request::AlterConfigsResource::default()
                                .with_resource_type(if s.n % 3 == 0 { 4 } else { 2 })
                                .with_resource_name(str(&t.name.get()))
                                .with_configs(
                                    t.configs
                                        .iter()
                                        .take(3)
                                        .map(|(k, v, op)| {
                                            incremental_alter_configs_request::AlterableConfig::default()
                                                .with_name(str(&k.get()))
                                                .with_config_operation((*op % 5) as i8)
                                                .with_value(v.as_deref().map(str))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(
            CreatePartitionsRequest::default()
                .with_timeout_ms(timeout)
                .with_validate_only(s.flag)
                .with_topics(
                    topics()
                        .map(|t| {
                            create_partitions_request::CreatePartitionsTopic::default()
                                .with_name(topic_name(t))
                                .with_count(i32::from(s.n % 6))
                                .with_assignments(s.flag2.then(|| {
                                    parts(t)
                                        .into_iter()
                                        .map(|p| {
                                            create_partitions_request::CreatePartitionsAssignment::default()
                                                .with_broker_ids(
                                                    p.replicas.iter().take(3).map(|&r| BrokerId(i32::from(r % 3))).collect(),
                                                )
                                        })
                                        .collect()
                                }))
                        })
                        .collect(),
                ),
        ),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(
            DescribeClusterRequest::default()
                .with_include_cluster_authorized_operations(s.flag)
                .with_endpoint_type(if version >= 1 { 1 } else { 1 }),
        ),
        _ => return None,
    })
}

fn pick(api: u8, version: u8) -> (ApiKey, i16) {
    let (api, min, max) = api::SUPPORTED[usize::from(api) % api::SUPPORTED.len()];
    (api, min + i16::from(version) % (max - min + 1))
}

/// The frame (without its size) for `req`, and whether it is well formed.
fn frame(req: &Req) -> (Vec<u8>, bool) {
    let (api, version) = pick(req.api, req.version);
    let mut out = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(req.correlation_id)
        .with_client_id(req.client_id.as_deref().map(str));
    let mut ok = true;
    if api == ApiKey::Produce && version < 3 {
        header.encode(&mut out, 1).expect("header v1 encodes");
        out.extend_from_slice(&legacy_produce(&req.spec));
    } else {
        header
            .encode(&mut out, api.request_header_version(version))
            .expect("request header encodes");
        // A field the version lacks fails the encode: send what there is.
        ok = match generate(api, version, &req.spec) {
            Some(r) => r.encode(&mut out, version).is_ok(),
            None => {
                let body = req.spec.transactional_id.clone().unwrap_or_default();
                out.extend_from_slice(body.as_bytes());
                false
            }
        };
    }
    let mut f = out.to_vec();
    for e in req.edits.iter().take(4) {
        ok = false;
        // The API key and version stay, so the gate still passes.
        let len = f.len();
        match e {
            Edit::Xor { at, x } => {
                if len > 4 {
                    f[4 + usize::from(*at) % (len - 4)] ^= x;
                }
            }
            Edit::Truncate(n) => f.truncate(4 + usize::from(*n) % (len - 3)),
            Edit::Insert { at, bytes } => {
                let at = 4 + usize::from(*at) % (len - 3);
                f.splice(at..at, bytes.iter().take(16).copied());
            }
            Edit::Put32 { at, v } => {
                if len >= 8 {
                    let at = 4 + usize::from(*at) % (len - 7);
                    f[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
    (f, ok)
}

fn push_frame(stream: &mut Vec<u8>, f: &[u8]) {
    stream.extend_from_slice(&(f.len() as u32).to_be_bytes());
    stream.extend_from_slice(f);
}

async fn run(input: Input) {
    let mut streams = Vec::new();
    // Per connection: whether each frame was generated well formed, when the
    // stream has no raw pieces (so frames line up with reports).
    let mut expect: Vec<Option<Vec<bool>>> = Vec::new();
    for c in input.connections.iter().take(3) {
        let mut s = Vec::new();
        let mut wellformed = Some(Vec::new());
        for p in c.pieces.iter().take(12) {
            match p {
                Piece::Request(r) => {
                    let (f, ok) = frame(r);
                    push_frame(&mut s, &f);
                    if let Some(w) = &mut wellformed {
                        w.push(ok);
                    }
                }
                Piece::Frame(b) => {
                    push_frame(&mut s, b);
                    if let Some(w) = &mut wellformed {
                        w.push(false);
                    }
                }
                Piece::Gated { api, version, rest } => {
                    let (api, version) = pick(*api, *version);
                    let mut f = (api as i16).to_be_bytes().to_vec();
                    f.extend_from_slice(&version.to_be_bytes());
                    f.extend_from_slice(rest);
                    push_frame(&mut s, &f);
                    if let Some(w) = &mut wellformed {
                        w.push(false);
                    }
                }
                Piece::Stream(b) => {
                    s.extend_from_slice(b);
                    wellformed = None;
                }
            }
        }
        if let Some(t) = &c.tail {
            let claimed = t.len() as u32 + 1 + u32::from(t.first().copied().unwrap_or(0));
            s.extend_from_slice(&claimed.to_be_bytes());
            s.extend_from_slice(t);
        }
        streams.push(s);
        expect.push(wellformed);
    }
    if streams.is_empty() {
        return;
    }

    let dir = tempfile::tempdir_in(common::scratch()).expect("temp dir");
    let defaults = LogConfig {
        segment_bytes: 4096,
        ..LogConfig::default()
    };
    let config = BrokerConfig {
        broker_id: ME,
        log_dirs: vec![dir.path().to_path_buf()],
        zookeeper_connect: Some("127.0.0.1:1".into()),
        socket_request_max_bytes: 1 << 20,
        log: defaults.clone(),
        ..BrokerConfig::default()
    };
    let logs = Arc::new(LogManager::open(config.log_dirs.clone(), &defaults).expect("open logs"));
    let stop = CancellationToken::new();
    // Ends the session task even when a refused allocation unwinds.
    let _stop = stop.clone().drop_guard();
    let (cluster, session) = Cluster::start(
        SessionConfig {
            connect: "127.0.0.1:1".into(),
            session_timeout: Duration::from_secs(6),
            broker_id: ME,
            endpoints: Vec::new(),
            rack: None,
            election: Default::default(),
            session_file: Default::default(),
        },
        stop.clone(),
    );
    let replicas = Arc::new(Replicas::default());
    // `true`: the fixed image stands in for a live coordinator session, so
    // the partitions led here stay led.
    replicas.apply(&image(), ME, true, &logs, &defaults).await;

    let mut seen: Vec<usize> = vec![0; streams.len()];
    broker::server::fuzzing::fuzz_connections(
        config,
        cluster,
        logs.clone(),
        replicas,
        streams,
        |conn, frame, outcome| {
            let i = seen[conn];
            seen[conn] += 1;
            let wellformed = expect[conn]
                .as_ref()
                .and_then(|w| w.get(i).copied())
                .unwrap_or(false);
            check(frame, &outcome, wellformed);
        },
    )
    .await;
    stop.cancel();
    let _ = session.await;

    // Every log reopens as it was left.
    let before: BTreeMap<(String, i32), (i64, i64)> = logs
        .all()
        .iter()
        .map(|l| {
            (
                (l.topic().to_owned(), l.partition()),
                (l.log_start_offset(), l.log_end_offset()),
            )
        })
        .collect();
    logs.close_all().expect("close logs");
    drop(logs);
    let logs = LogManager::open(vec![dir.path().to_path_buf()], &defaults).expect("reopen logs");
    let after: BTreeMap<(String, i32), (i64, i64)> = logs
        .all()
        .iter()
        .map(|l| {
            (
                (l.topic().to_owned(), l.partition()),
                (l.log_start_offset(), l.log_end_offset()),
            )
        })
        .collect();
    assert_eq!(before, after, "logs changed across a clean close and reopen");
    let _ = logs.close_all();
}

fn image() -> MetadataImage {
    let mut img = MetadataImage {
        cluster_id: "fuzz".into(),
        controller_id: Some(ME),
        ..MetadataImage::default()
    };
    for (i, &(name, leaders, configs)) in TOPICS.iter().enumerate() {
        let topic = TopicImage {
            name: name.into(),
            id: uuid::Uuid::from_u128(i as u128 + 1),
            partitions: leaders
                .iter()
                .map(|&leader| PartitionImage {
                    replicas: vec![leader, if leader == ME { 1 } else { ME }],
                    state: Some(PartitionState {
                        leader,
                        leader_epoch: 3,
                        isr: vec![leader],
                        controller_epoch: 1,
                        zk_version: 0,
                    }),
                })
                .collect(),
            configs: configs
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        img.topics.insert(name.into(), Arc::new(topic));
    }
    img
}

/// The oracles for one frame's outcome.
fn check(frame: &Bytes, outcome: &Result<Option<Bytes>, String>, wellformed: bool) {
    let answer = match outcome {
        Err(reason) => {
            assert!(
                !reason.starts_with("cannot encode"),
                "an answer failed to encode: {reason}"
            );
            assert!(!wellformed, "a well-formed request closed the connection: {reason}");
            return;
        }
        Ok(a) => a,
    };
    assert!(frame.len() >= 8, "a short frame was answered");
    let api = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).expect("known API");
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Some(answer) = answer else {
        assert_eq!(api, ApiKey::Produce, "only Produce acks=0 goes unanswered");
        return;
    };
    let mut b = answer.clone();
    if api == ApiKey::Produce && version < 3 {
        legacy_response(&mut b, version, correlation_id);
        return;
    }
    let version = if api == ApiKey::ApiVersions && !api::supports(api, version) {
        0
    } else {
        version
    };
    let header = ResponseHeader::decode(&mut b, api.response_header_version(version))
        .expect("response header decodes");
    assert_eq!(header.correlation_id, correlation_id, "correlation id");
    let r = ResponseKind::decode(api, &mut b, version);
    assert!(r.is_ok(), "{api:?} v{version} answer does not decode: {r:?}");
    assert!(!b.has_remaining(), "{api:?} v{version} answer has {} bytes left over", b.remaining());
}

/// Produce v0-v2 answer: correlation id, [topic [partition error offset
/// (v2: append time)]], v1+: throttle time.
fn legacy_response(b: &mut Bytes, version: i16, correlation_id: i32) {
    assert_eq!(b.try_get_i32().expect("correlation id"), correlation_id);
    let topics = b.try_get_i32().expect("topic count");
    for _ in 0..topics {
        let len = b.try_get_i16().expect("name length");
        let len = usize::try_from(len).expect("name length >= 0");
        assert!(b.remaining() >= len, "name");
        b.advance(len);
        let parts = b.try_get_i32().expect("partition count");
        for _ in 0..parts {
            b.try_get_i32().expect("partition");
            b.try_get_i16().expect("error code");
            b.try_get_i64().expect("base offset");
            if version >= 2 {
                b.try_get_i64().expect("append time");
            }
        }
    }
    if version >= 1 {
        b.try_get_i32().expect("throttle time");
    }
    assert!(!b.has_remaining(), "legacy Produce v{version} answer has bytes left over");
}
