//! Tests of the client against an in-process stand-in broker: a few lines per API, built
//! on kafka-protocol's server side, holding topics and batches in memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Per topic, per partition: stored batches (base offset already assigned) and the log end.
type Topics = BTreeMap<String, Vec<(Vec<Bytes>, i64)>>;

/// The APIs the stand-in answers; it advertises kafka-protocol's full range for each.
const APIS: [ApiKey; 9] = [
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::DescribeConfigs,
];

/// Starts the stand-in on a free port and returns its `host:port`.
/// `old` makes it answer ApiVersions v3 with UNSUPPORTED_VERSION, like a pre-2.4 broker.
async fn start(old: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let topics = Arc::new(Mutex::new(Topics::new()));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, addr.port(), Arc::clone(&topics), old));
        }
    });
    addr.to_string()
}

async fn serve(mut stream: TcpStream, port: u16, topics: Arc<Mutex<Topics>>, old: bool) {
    loop {
        let Ok(len) = stream.read_i32().await else {
            return;
        };
        let mut frame = BytesMut::zeroed(len as usize);
        stream.read_exact(&mut frame).await.expect("frame");
        let mut frame = frame.freeze();
        let header = decode_request_header_from_buffer(&mut frame).expect("header");
        let key = ApiKey::try_from(header.request_api_key).expect("key");
        let mut version = header.request_api_version;
        let request = RequestKind::decode(key, &mut frame, version).expect("request");
        let response = {
            let mut topics = topics.lock().expect("lock");
            answer(request, version, port, &mut topics, old)
        };
        let Some(response) = response else { continue };
        if matches!(&response, ResponseKind::ApiVersions(r) if r.error_code == 35) {
            version = 0;
        }
        let mut body = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut body, key.response_header_version(version))
            .expect("response header");
        response.encode(&mut body, version).expect("response");
        let mut out = BytesMut::new();
        out.put_i32(body.len() as i32);
        out.extend_from_slice(&body);
        stream.write_all(&out).await.expect("write");
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn answer(
    request: RequestKind,
    version: i16,
    port: u16,
    topics: &mut Topics,
    old: bool,
) -> Option<ResponseKind> {
    Some(match request {
        RequestKind::ApiVersions(_) if old && version >= 3 => {
            ApiVersionsResponse::default().with_error_code(35).into()
        }
        RequestKind::ApiVersions(_) => ApiVersionsResponse::default()
            .with_api_keys(
                APIS.iter()
                    .map(|k| {
                        let range = k.valid_versions();
                        ApiVersion::default()
                            .with_api_key(*k as i16)
                            .with_min_version(range.min)
                            .with_max_version(range.max)
                    })
                    .collect(),
            )
            .into(),
        RequestKind::Metadata(req) => {
            let names: Vec<String> = match req.topics {
                None => topics.keys().cloned().collect(),
                Some(ts) => ts
                    .iter()
                    .filter_map(|t| t.name.as_ref())
                    .map(|n| n.to_string())
                    .collect(),
            };
            MetadataResponse::default()
                .with_controller_id(BrokerId(1))
                .with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(i32::from(port))])
                .with_topics(
                    names
                        .iter()
                        .map(|n| {
                            let t = MetadataResponseTopic::default().with_name(Some(name(n)));
                            match topics.get(n) {
                                None => t.with_error_code(3),
                                Some(parts) => t.with_partitions(
                                    (0..parts.len() as i32)
                                        .map(|p| {
                                            MetadataResponsePartition::default()
                                                .with_partition_index(p)
                                                .with_leader_id(BrokerId(1))
                                                .with_replica_nodes(vec![BrokerId(1)])
                                                .with_isr_nodes(vec![BrokerId(1)])
                                        })
                                        .collect(),
                                ),
                            }
                        })
                        .collect(),
                )
                .into()
        }
        RequestKind::CreateTopics(req) => CreateTopicsResponse::default()
            .with_topics(
                req.topics
                    .iter()
                    .map(|t| {
                        let r = CreatableTopicResult::default().with_name(t.name.clone());
                        if topics.contains_key(t.name.as_str()) {
                            return r.with_error_code(36);
                        }
                        let count = if t.num_partitions < 0 {
                            1
                        } else {
                            t.num_partitions
                        };
                        topics.insert(t.name.to_string(), vec![(Vec::new(), 0); count as usize]);
                        r.with_num_partitions(count)
                    })
                    .collect(),
            )
            .into(),
        RequestKind::DeleteTopics(req) => {
            let names: Vec<TopicName> = if version >= 6 {
                req.topics.into_iter().filter_map(|t| t.name).collect()
            } else {
                req.topic_names
            };
            DeleteTopicsResponse::default()
                .with_responses(
                    names
                        .into_iter()
                        .map(|n| {
                            let code = if topics.remove(n.as_str()).is_some() {
                                0
                            } else {
                                3
                            };
                            DeletableTopicResult::default()
                                .with_name(Some(n))
                                .with_error_code(code)
                        })
                        .collect(),
                )
                .into()
        }
        RequestKind::CreatePartitions(req) => CreatePartitionsResponse::default()
            .with_results(
                req.topics
                    .iter()
                    .map(|t| {
                        if let Some(parts) = topics.get_mut(t.name.as_str()) {
                            parts.resize(t.count as usize, (Vec::new(), 0));
                        }
                        CreatePartitionsTopicResult::default().with_name(t.name.clone())
                    })
                    .collect(),
            )
            .into(),
        RequestKind::DescribeConfigs(req) => DescribeConfigsResponse::default()
            .with_results(
                req.resources
                    .iter()
                    .map(|r| {
                        DescribeConfigsResult::default()
                            .with_resource_name(r.resource_name.clone())
                            .with_configs(vec![DescribeConfigsResourceResult::default()
                                .with_name(StrBytes::from_static_str("retention.ms"))
                                .with_value(Some(StrBytes::from_static_str("1000")))
                                .with_config_source(1)])
                    })
                    .collect(),
            )
            .into(),
        RequestKind::Produce(req) => {
            let mut responses = Vec::new();
            for t in req.topic_data {
                let mut partitions = Vec::new();
                for p in t.partition_data {
                    let (batches, end) = &mut topics.get_mut(t.name.as_str())?[p.index as usize];
                    let mut batch = BytesMut::from(&p.records?[..]);
                    let count = (&batch[57..61]).get_i32();
                    let base = *end;
                    batch[0..8].copy_from_slice(&base.to_be_bytes());
                    batches.push(batch.freeze());
                    *end += i64::from(count);
                    partitions.push(
                        PartitionProduceResponse::default()
                            .with_index(p.index)
                            .with_base_offset(base),
                    );
                }
                responses.push(
                    TopicProduceResponse::default()
                        .with_name(t.name)
                        .with_partition_responses(partitions),
                );
            }
            if req.acks == 0 {
                return None;
            }
            ProduceResponse::default().with_responses(responses).into()
        }
        RequestKind::Fetch(req) => FetchResponse::default()
            .with_responses(
                req.topics
                    .iter()
                    .map(|t| {
                        let parts = &topics[t.topic.as_str()];
                        FetchableTopicResponse::default()
                            .with_topic(t.topic.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        let (batches, end) = &parts[p.partition as usize];
                                        let mut records = BytesMut::new();
                                        for b in batches {
                                            let base = (&b[0..8]).get_i64();
                                            let last = base + i64::from((&b[23..27]).get_i32());
                                            if last >= p.fetch_offset {
                                                records.extend_from_slice(b);
                                            }
                                        }
                                        PartitionData::default()
                                            .with_partition_index(p.partition)
                                            .with_high_watermark(*end)
                                            .with_records(Some(records.freeze()))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .into(),
        RequestKind::ListOffsets(req) => ListOffsetsResponse::default()
            .with_topics(
                req.topics
                    .iter()
                    .map(|t| {
                        let parts = &topics[t.name.as_str()];
                        ListOffsetsTopicResponse::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        let end = parts[p.partition_index as usize].1;
                                        let offset = if p.timestamp == EARLIEST { 0 } else { end };
                                        ListOffsetsPartitionResponse::default()
                                            .with_partition_index(p.partition_index)
                                            .with_offset(offset)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .into(),
        _ => return None,
    })
}

fn record(key: Option<&'static str>, value: &'static str) -> ProducerRecord {
    ProducerRecord {
        key: key.map(|k| Bytes::from_static(k.as_bytes())),
        value: Some(Bytes::from_static(value.as_bytes())),
        headers: vec![("h".to_owned(), None)],
        timestamp: 1,
    }
}

fn options() -> FetchOptions {
    FetchOptions {
        max_wait: std::time::Duration::from_millis(10),
        min_bytes: 1,
        max_bytes: 1 << 20,
        partition_max_bytes: 1 << 20,
    }
}

#[tokio::test]
async fn admin_round_trip() {
    let addr = start(false).await;
    let mut client = Client::connect(&addr).await.expect("connect");
    let topic = NewTopic {
        name: "orders".to_owned(),
        partitions: 2,
        replication_factor: 1,
        configs: vec![("retention.ms".to_owned(), "1000".to_owned())],
    };
    let created = client
        .create_topics(std::slice::from_ref(&topic))
        .await
        .expect("create");
    assert_eq!(created[0].partitions, 2);
    let err = client.create_topics(&[topic]).await.expect_err("exists");
    assert_eq!(err.kafka_error(), Some(ResponseError::TopicAlreadyExists));

    client.create_partitions("orders", 3).await.expect("grow");
    let metadata = client.metadata(None, false).await.expect("metadata");
    assert_eq!(metadata.topics.len(), 1);
    assert_eq!(metadata.topics[0].partitions.len(), 3);
    assert_eq!(metadata.brokers[0].host, "127.0.0.1");

    let configs = client.describe_configs("orders").await.expect("configs");
    assert_eq!(configs[0].source, CONFIG_SOURCE_TOPIC);

    client
        .delete_topics(&["orders".to_owned()])
        .await
        .expect("delete");
    let err = client.topic("orders", false).await.expect_err("deleted");
    assert_eq!(
        err.kafka_error(),
        Some(ResponseError::UnknownTopicOrPartition)
    );
}

#[tokio::test]
async fn produce_fetch_list_offsets() {
    let addr = start(false).await;
    let mut client = Client::connect(&addr).await.expect("connect");
    let topic = NewTopic {
        name: "t".to_owned(),
        partitions: 1,
        replication_factor: 1,
        configs: vec![],
    };
    client.create_topics(&[topic]).await.expect("create");
    let first = [record(Some("a"), "1"), record(None, "2")];
    let base = client
        .produce("t", 0, &first, Acks::All, Compression::Lz4)
        .await
        .expect("produce");
    assert_eq!(base, Some(0));
    let none = client
        .produce("t", 0, &[record(None, "3")], Acks::None, Compression::None)
        .await
        .expect("produce acks=0");
    assert_eq!(none, None);
    // acks=0 gets no answer, so this one also proves the stream is still in step.
    let base = client
        .produce(
            "t",
            0,
            &[record(None, "4")],
            Acks::Leader,
            Compression::Gzip,
        )
        .await
        .expect("produce");
    assert_eq!(base, Some(3));

    assert_eq!(
        client
            .list_offset("t", 0, EARLIEST)
            .await
            .expect("earliest"),
        0
    );
    assert_eq!(client.list_offset("t", 0, LATEST).await.expect("latest"), 4);

    // Offset 1 sits inside the first batch: record 0 must be skipped.
    let fetched = client
        .fetch("t", &[(0, 1)], &options())
        .await
        .expect("fetch");
    assert_eq!(fetched.len(), 1);
    let values: Vec<_> = fetched[0]
        .records
        .iter()
        .filter_map(|r| r.value.clone())
        .collect();
    assert_eq!(values, ["2", "3", "4"]);
    assert_eq!(fetched[0].next_offset, Some(4));
    assert_eq!(fetched[0].high_watermark, 4);
    assert_eq!(fetched[0].records[0].headers.len(), 1);
}

#[tokio::test]
async fn falls_back_to_api_versions_v0() {
    let addr = start(true).await;
    let mut client = Client::connect(&addr)
        .await
        .expect("connect with v0 handshake");
    assert!(client
        .metadata(None, false)
        .await
        .expect("metadata")
        .topics
        .is_empty());
}

#[tokio::test]
async fn unreachable_bootstrap_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let err = Client::connect(&addr).await.expect_err("nothing listens");
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
}
