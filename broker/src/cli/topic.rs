//! `broker topic create|list|describe|alter|delete`, printed like `kafka-topics.sh`.

use anyhow::Context as _;
use base64::Engine as _;
use broker::client::{Client, ClientError, NewTopic, TopicInfo, CONFIG_SOURCE_TOPIC};
use common::output::OutputFormat;
use serde_json::json;
use uuid::Uuid;

use super::output::{self, at_least_one};
use super::{parse_key_value, ConnectArgs};

#[derive(clap::Args, Debug)]
pub struct TopicArgs {
    #[command(flatten)]
    pub(super) conn: ConnectArgs,
    #[command(subcommand)]
    action: TopicAction,
}

#[derive(clap::Subcommand, Debug)]
enum TopicAction {
    /// Create a topic.
    Create {
        name: String,
        /// Number of partitions, at least 1 (default: the broker's num.partitions).
        #[arg(long, value_parser = at_least_one::<i32>, allow_negative_numbers = true)]
        partitions: Option<i32>,
        /// Copies of each partition, at least 1 (default: the broker's
        /// default.replication.factor).
        #[arg(long, value_parser = at_least_one::<i16>, allow_negative_numbers = true)]
        replication_factor: Option<i16>,
        /// A topic configuration override, e.g. --config retention.ms=60000 (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics with their partition count and replication factor.
    List {
        /// text: a table; json: an array of topics; plain: name, partitions and
        /// replication factor, tab-separated, one topic per line.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Show the partitions (leader, replicas, ISR), id and configuration overrides of topics.
    Describe {
        /// The topic to describe (default: all).
        name: Option<String>,
        /// text: a header line and a table per topic; json: an array of topics;
        /// plain: one line per partition (topic, partition, leader, replicas, isr).
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Grow a topic to more partitions.
    Alter {
        name: String,
        /// The new total number of partitions.
        #[arg(long, value_parser = at_least_one::<i32>, allow_negative_numbers = true)]
        partitions: i32,
    },
    /// Delete a topic.
    Delete { name: String },
}

pub(super) async fn run(args: TopicArgs) -> anyhow::Result<()> {
    let mut client = args.conn.connect().await?;
    match args.action {
        TopicAction::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let topic = NewTopic {
                name: name.clone(),
                partitions: partitions.unwrap_or(-1),
                replication_factor: replication_factor.unwrap_or(-1),
                configs,
            };
            client.create_topics(&[topic]).await?;
            println!("Created topic {name}.");
        }
        TopicAction::List { output } => {
            let topics = client.metadata(None, false).await?.topics;
            if output == OutputFormat::Json {
                println!("{}", list_json(&topics));
            } else {
                output::print(&output::rows(
                    output,
                    &["Topic", "Partitions", "Replication Factor"],
                    &list_rows(&topics),
                ));
            }
        }
        TopicAction::Describe { name, output } => {
            let topics = match name {
                Some(name) => vec![client.topic(&name, false).await?],
                None => client.metadata(None, false).await?.topics,
            };
            let mut described = Vec::new();
            for topic in topics {
                // Plain rows have no column for configurations: not asked for.
                let configs = match output {
                    OutputFormat::Plain => None,
                    _ => topic_overrides(&mut client, &topic.name).await?,
                };
                described.push((topic, configs));
            }
            print_described(output, &described);
        }
        TopicAction::Alter { name, partitions } => {
            client.create_partitions(&name, partitions).await?;
            println!("Topic {name} now has {partitions} partitions.");
        }
        TopicAction::Delete { name } => {
            client.delete_topics(std::slice::from_ref(&name)).await?;
            println!("Deleted topic {name}.");
        }
    }
    Ok(())
}

/// The topic's own configuration values, or `None` when the broker does not implement
/// DescribeConfigs (describing partitions is still useful then).
async fn topic_overrides(client: &mut Client, topic: &str) -> anyhow::Result<Option<Configs>> {
    match client.describe_configs(topic).await {
        Ok(entries) => Ok(Some(
            entries
                .iter()
                .filter(|e| e.source == CONFIG_SOURCE_TOPIC)
                .map(|e| {
                    let value = if e.is_sensitive {
                        "<sensitive>"
                    } else {
                        e.value.as_deref().unwrap_or("null")
                    };
                    (e.name.clone(), value.to_owned())
                })
                .collect(),
        )),
        Err(ClientError::UnsupportedApi { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("configs of {topic}")),
    }
}

/// A topic's replication factor, as Kafka's tools report it: the first partition's.
fn replication_factor(topic: &TopicInfo) -> usize {
    topic.partitions.first().map_or(0, |p| p.replicas.len())
}

/// A topic's configuration overrides, in the broker's order.
type Configs = Vec<(String, String)>;

fn list_rows(topics: &[TopicInfo]) -> Vec<Vec<String>> {
    topics
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.partitions.len().to_string(),
                replication_factor(t).to_string(),
            ]
        })
        .collect()
}

fn list_json(topics: &[TopicInfo]) -> serde_json::Value {
    topics
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "partitions": t.partitions.len(),
                "replicationFactor": replication_factor(t),
            })
        })
        .collect()
}

fn print_described(output: OutputFormat, described: &[(TopicInfo, Option<Configs>)]) {
    match output {
        OutputFormat::Text => {
            for (topic, configs) in described {
                println!("{}", describe_header(topic, configs.as_deref()));
                println!("{}", partition_table(topic));
            }
        }
        OutputFormat::Plain => {
            let rows: Vec<Vec<String>> = described
                .iter()
                .flat_map(|(topic, _)| {
                    partition_rows(topic).into_iter().map(|mut row| {
                        row.insert(0, topic.name.clone());
                        row
                    })
                })
                .collect();
            output::print(&output::rows(output, &[], &rows));
        }
        OutputFormat::Json => {
            let topics: Vec<_> = described
                .iter()
                .map(|(t, configs)| describe_json(t, configs.as_deref()))
                .collect();
            println!("{}", serde_json::Value::Array(topics));
        }
    }
}

fn describe_json(topic: &TopicInfo, configs: Option<&[(String, String)]>) -> serde_json::Value {
    let configs = configs.map(|c| {
        c.iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
    });
    json!({
        "name": topic.name,
        "topicId": kafka_uuid(topic.topic_id),
        "partitionCount": topic.partitions.len(),
        "replicationFactor": replication_factor(topic),
        "configs": configs,
        "partitions": topic.partitions.iter().map(|p| json!({
            "partition": p.partition,
            // No leader is null, not Kafka's -1.
            "leader": (p.leader >= 0).then_some(p.leader),
            "replicas": p.replicas,
            "isr": p.isr,
        })).collect::<Vec<_>>(),
    })
}

/// Kafka prints topic ids as URL-safe base64 without padding (`Uuid.toString()`).
fn kafka_uuid(id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn describe_header(topic: &TopicInfo, configs: Option<&[(String, String)]>) -> String {
    let configs = configs.map(|c| {
        c.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    });
    format!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
        topic.name,
        kafka_uuid(topic.topic_id),
        topic.partitions.len(),
        replication_factor(topic),
        configs.as_deref().unwrap_or("(not available)"),
    )
}

fn partition_table(topic: &TopicInfo) -> String {
    output::rows(
        OutputFormat::Text,
        &["Partition", "Leader", "Replicas", "Isr"],
        &partition_rows(topic),
    )
}

/// Partition, leader (`none` without one), replicas and ISR as `1,2`.
fn partition_rows(topic: &TopicInfo) -> Vec<Vec<String>> {
    let ids = |ids: &[i32]| {
        ids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    topic
        .partitions
        .iter()
        .map(|p| {
            let leader = if p.leader < 0 {
                "none".to_owned()
            } else {
                p.leader.to_string()
            };
            vec![
                p.partition.to_string(),
                leader,
                ids(&p.replicas),
                ids(&p.isr),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::super::ClientCommand;
    use super::*;
    use broker::client::PartitionInfo;

    fn topic() -> TopicInfo {
        TopicInfo {
            name: "orders".to_owned(),
            topic_id: Uuid::nil(),
            is_internal: false,
            error: None,
            partitions: (0..2)
                .map(|p| PartitionInfo {
                    partition: p,
                    leader: if p == 0 { 1 } else { -1 },
                    replicas: vec![1, 2],
                    isr: vec![1],
                    error: None,
                })
                .collect(),
        }
    }

    #[test]
    fn create_takes_partitions_replication_and_configs() {
        let ClientCommand::Topic(args) = parse(&[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=1000",
            "--config",
            "cleanup.policy=compact",
        ])
        .expect("parses") else {
            panic!("not topic");
        };
        let TopicAction::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } = args.action
        else {
            panic!("not create");
        };
        assert_eq!(name, "orders");
        assert_eq!(partitions, Some(3));
        assert_eq!(replication_factor, Some(1));
        assert_eq!(configs.len(), 2);
        assert!(parse(&["topic", "create", "t", "--config", "novalue"]).is_err());
    }

    #[test]
    fn describe_prints_like_kafka_topics() {
        let configs = [("retention.ms".to_owned(), "1".to_owned())];
        let header = describe_header(&topic(), Some(&configs));
        assert_eq!(
            header,
            "Topic: orders\tTopicId: AAAAAAAAAAAAAAAAAAAAAA\tPartitionCount: 2\t\
             ReplicationFactor: 2\tConfigs: retention.ms=1"
        );
        let table = partition_table(&topic());
        assert!(table.contains("Partition"), "{table}");
        assert!(table.contains("none"), "{table}");
        assert!(table.contains("1,2"), "{table}");
    }

    #[test]
    fn list_shows_partitions_and_replication() {
        assert_eq!(list_rows(&[topic()]), [["orders", "2", "2"]]);
        assert_eq!(
            list_json(&[topic()]),
            json!([{ "name": "orders", "partitions": 2, "replicationFactor": 2 }])
        );
    }

    #[test]
    fn describe_json_has_partitions_and_configs() {
        let configs = [("retention.ms".to_owned(), "1".to_owned())];
        let v = describe_json(&topic(), Some(&configs));
        assert_eq!(v["topicId"], "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(v["configs"]["retention.ms"], "1");
        assert_eq!(v["partitions"][0]["leader"], 1);
        assert_eq!(v["partitions"][1]["leader"], serde_json::Value::Null);
        assert_eq!(v["partitions"][1]["replicas"], json!([1, 2]));
        assert_eq!(
            describe_json(&topic(), None)["configs"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn counts_below_one_are_refused_by_the_parser() {
        for bad in ["0", "-3"] {
            let err = parse(&["topic", "create", "t", "--partitions", bad])
                .expect_err("refused")
                .to_string();
            assert!(err.contains("must be >= 1"), "{err}");
            let err = parse(&["topic", "create", "t", "--replication-factor", bad])
                .expect_err("refused")
                .to_string();
            assert!(err.contains("must be >= 1"), "{err}");
            let err = parse(&["topic", "alter", "t", "--partitions", bad])
                .expect_err("refused")
                .to_string();
            assert!(err.contains("must be >= 1"), "{err}");
        }
    }
}
