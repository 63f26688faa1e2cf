//! `broker topic create|list|describe|alter|delete`, printed like `kafka-topics.sh`.

use anyhow::Context as _;
use base64::Engine as _;
use broker::client::{Client, ClientError, NewTopic, TopicInfo, CONFIG_SOURCE_TOPIC};
use comfy_table::Table;
use uuid::Uuid;

use super::{new_table, parse_key_value, ConnectArgs};

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
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// Copies of each partition (default: the broker's default.replication.factor).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic configuration override, e.g. --config retention.ms=60000 (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics with their partition count and replication factor.
    List,
    /// Show the partitions (leader, replicas, ISR), id and configuration overrides of topics.
    Describe {
        /// The topic to describe (default: all).
        name: Option<String>,
    },
    /// Grow a topic to more partitions.
    Alter {
        name: String,
        /// The new total number of partitions.
        #[arg(long)]
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
        TopicAction::List => {
            let metadata = client.metadata(None, false).await?;
            println!("{}", list_table(&metadata.topics));
        }
        TopicAction::Describe { name } => {
            let topics = match name {
                Some(name) => vec![client.topic(&name, false).await?],
                None => client.metadata(None, false).await?.topics,
            };
            for topic in &topics {
                let configs = topic_overrides(&mut client, &topic.name).await?;
                println!("{}", describe_header(topic, configs.as_deref()));
                println!("{}", partition_table(topic));
            }
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

/// The topic's own configuration values as `k=v,...`, or `None` when the broker does not
/// implement DescribeConfigs (describing partitions is still useful then).
async fn topic_overrides(client: &mut Client, topic: &str) -> anyhow::Result<Option<String>> {
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
                    format!("{}={value}", e.name)
                })
                .collect::<Vec<_>>()
                .join(","),
        )),
        Err(ClientError::UnsupportedApi { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("configs of {topic}")),
    }
}

/// A topic's replication factor, as Kafka's tools report it: the first partition's.
fn replication_factor(topic: &TopicInfo) -> usize {
    topic.partitions.first().map_or(0, |p| p.replicas.len())
}

fn list_table(topics: &[TopicInfo]) -> Table {
    let mut table = new_table(&["Topic", "Partitions", "Replication Factor"]);
    for t in topics {
        table.add_row(vec![
            t.name.clone(),
            t.partitions.len().to_string(),
            replication_factor(t).to_string(),
        ]);
    }
    table
}

/// Kafka prints topic ids as URL-safe base64 without padding (`Uuid.toString()`).
fn kafka_uuid(id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn describe_header(topic: &TopicInfo, configs: Option<&str>) -> String {
    format!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
        topic.name,
        kafka_uuid(topic.topic_id),
        topic.partitions.len(),
        replication_factor(topic),
        configs.unwrap_or("(not available)"),
    )
}

fn partition_table(topic: &TopicInfo) -> Table {
    let ids = |ids: &[i32]| {
        ids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut table = new_table(&["Partition", "Leader", "Replicas", "Isr"]);
    for p in &topic.partitions {
        let leader = if p.leader < 0 {
            "none".to_owned()
        } else {
            p.leader.to_string()
        };
        table.add_row(vec![
            p.partition.to_string(),
            leader,
            ids(&p.replicas),
            ids(&p.isr),
        ]);
    }
    table
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
        let header = describe_header(&topic(), Some("retention.ms=1"));
        assert_eq!(
            header,
            "Topic: orders\tTopicId: AAAAAAAAAAAAAAAAAAAAAA\tPartitionCount: 2\t\
             ReplicationFactor: 2\tConfigs: retention.ms=1"
        );
        let table = partition_table(&topic()).to_string();
        assert!(table.contains("Partition"), "{table}");
        assert!(table.contains("none"), "{table}");
        assert!(table.contains("1,2"), "{table}");
    }

    #[test]
    fn list_shows_partitions_and_replication() {
        let table = list_table(&[topic()]).to_string();
        let row = table
            .lines()
            .find(|l| l.contains("orders"))
            .expect("a row for the topic");
        let cells: Vec<_> = row
            .split(['│', '┆'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cells, ["orders", "2", "2"]);
    }
}
