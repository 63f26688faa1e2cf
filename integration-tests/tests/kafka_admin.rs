//! Admin requests in a row, as admin clients send them: once CreateTopics
//! has answered, the topic exists for every request to that broker, even
//! when the client did not wait for the partitions to come online
//! (`timeout_ms=0`, which Kafka answers at once).

use integration_tests::kafka::KafkaBroker;
use integration_tests::kafka_raw::{self, err, KafkaConn};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    MetadataRequest, MetadataResponse,
};

#[test]
fn topics_created_without_waiting_are_known_to_the_next_request() {
    let broker = KafkaBroker::dev().expect("broker");
    let mut c = KafkaConn::connect(broker.addr()).expect("connect");
    let names: Vec<String> = (0..9).map(|i| format!("quick-{i}")).collect();
    let topics = names
        .iter()
        .flat_map(|n| kafka_raw::create_topics_request(n, 1, 1, &[]).topics)
        .collect();
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(0)
        .with_topics(topics);
    let created: CreateTopicsResponse = c.send(4, &create).expect("CreateTopics");
    for t in &created.topics {
        assert_eq!(
            t.error_code,
            err::NONE,
            "{:?}: {:?}",
            t.name,
            t.error_message
        );
    }

    let grow = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(
            names
                .iter()
                .map(|n| {
                    CreatePartitionsTopic::default()
                        .with_name(kafka_raw::topic_name(n))
                        .with_count(2)
                        .with_assignments(None)
                })
                .collect(),
        );
    let grown: CreatePartitionsResponse = c.send(1, &grow).expect("CreatePartitions");
    for r in &grown.results {
        assert_eq!(
            r.error_code,
            err::NONE,
            "{:?}: {:?}",
            r.name,
            r.error_message
        );
    }

    let all: MetadataResponse = c
        .send(4, &MetadataRequest::default().with_topics(None))
        .expect("Metadata");
    for n in &names {
        assert!(
            all.topics
                .iter()
                .any(|t| t.name.as_ref().is_some_and(|t| t.as_str() == n)),
            "{n} missing from Metadata"
        );
    }
}
