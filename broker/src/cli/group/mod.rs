//! `broker group list|describe|delete|reset-offsets`, printed like `kafka-consumer-groups.sh`.

mod datetime;
mod describe;
mod reset;

use anyhow::{bail, Context as _};
use broker::client::{Client, ClientError, GroupListing, ResponseError, TopicPartition};
use common::output::OutputFormat;

use super::{output, ConnectArgs};

#[derive(clap::Args, Debug)]
pub struct GroupArgs {
    #[command(flatten)]
    pub(super) conn: ConnectArgs,
    #[command(subcommand)]
    action: GroupAction,
}

#[derive(clap::Subcommand, Debug)]
enum GroupAction {
    /// List every group with its state and protocol type.
    List {
        /// text: a table; json: an array of groups; plain: group, state and
        /// protocol type, tab-separated, one group per line.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Show a group's state, members, assignments, committed offsets, log end and lag.
    Describe {
        group: String,
        /// text: a state line and a table; json: one object; plain: the table's rows.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Delete groups and their committed offsets; a group must have no members.
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Plan (or, with --execute, commit) new offsets for an inactive group.
    ResetOffsets(reset::ResetArgs),
}

pub(super) async fn run(args: GroupArgs) -> anyhow::Result<()> {
    let mut client = args.conn.connect().await?;
    match args.action {
        GroupAction::List { output } => {
            let groups = client.list_groups().await?;
            if output == OutputFormat::Json {
                println!("{}", list_json(&groups));
            } else {
                output::print(&output::rows(
                    output,
                    &["GROUP", "STATE", "PROTOCOL-TYPE"],
                    &list_rows(&groups),
                ));
            }
        }
        GroupAction::Describe { group, output } => {
            describe::run(&mut client, &group, output).await?
        }
        GroupAction::Delete { groups } => {
            for group in &groups {
                client
                    .delete_group(group)
                    .await
                    .map_err(|e| not_found_or(e, group))?;
            }
            println!(
                "Deletion of requested consumer groups ({}) was successful.",
                quoted(&groups)
            );
        }
        GroupAction::ResetOffsets(reset) => reset::run(&mut client, reset).await?,
    }
    Ok(())
}

/// Turns GROUP_ID_NOT_FOUND into Kafka's own sentence; other errors pass through.
fn not_found_or(e: ClientError, group: &str) -> anyhow::Error {
    if e.kafka_error() == Some(ResponseError::GroupIdNotFound) {
        anyhow::anyhow!("Consumer group '{group}' does not exist.")
    } else {
        anyhow::Error::new(e).context(format!("delete group {group}"))
    }
}

/// `'a', 'b'`, as Kafka's tool names the groups it acted on.
fn quoted(groups: &[String]) -> String {
    groups
        .iter()
        .map(|g| format!("'{g}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_rows(groups: &[GroupListing]) -> Vec<Vec<String>> {
    // ListGroups before v4 carries no state.
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    groups
        .iter()
        .map(|g| vec![g.group_id.clone(), dash(&g.state), dash(&g.protocol_type)])
        .collect()
}

/// Unknown state or protocol type (old brokers) are null, not `-`.
fn list_json(groups: &[GroupListing]) -> serde_json::Value {
    let or_null = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    groups
        .iter()
        .map(|g| {
            serde_json::json!({
                "group": g.group_id,
                "state": or_null(&g.state),
                "protocolType": or_null(&g.protocol_type),
            })
        })
        .collect()
}

/// The partitions of `topic`, from Metadata (failing if it does not exist).
async fn partitions_of(client: &mut Client, topic: &str) -> anyhow::Result<Vec<TopicPartition>> {
    let info = client
        .topic(topic, false)
        .await
        .with_context(|| format!("topic {topic}"))?;
    if info.partitions.is_empty() {
        bail!("topic {topic} has no partitions");
    }
    Ok(info
        .partitions
        .iter()
        .map(|p| (topic.to_owned(), p.partition))
        .collect())
}

/// The cells of a table's data rows, for tests: each line split at the column borders.
#[cfg(test)]
fn cells(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| l.contains('┆'))
        .skip(1)
        .map(|l| {
            l.split(['│', '┆'])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::super::ClientCommand;
    use super::*;

    #[test]
    fn list_table_shows_state_and_protocol_type() {
        let groups = [
            GroupListing {
                group_id: "g1".into(),
                state: "Stable".into(),
                protocol_type: "consumer".into(),
            },
            GroupListing {
                group_id: "g2".into(),
                state: String::new(),
                protocol_type: String::new(),
            },
        ];
        assert_eq!(
            list_rows(&groups),
            [["g1", "Stable", "consumer"], ["g2", "-", "-"]]
        );
        let json = list_json(&groups);
        assert_eq!(json[0]["state"], "Stable");
        assert_eq!(json[1]["protocolType"], serde_json::Value::Null);
    }

    #[test]
    fn delete_takes_one_or_more_groups() {
        let ClientCommand::Group(args) = parse(&["group", "delete", "a", "b"]).expect("parses")
        else {
            panic!("not group");
        };
        let GroupAction::Delete { groups } = args.action else {
            panic!("not delete");
        };
        assert_eq!(groups, ["a", "b"]);
        assert_eq!(quoted(&groups), "'a', 'b'");
        assert!(parse(&["group", "delete"]).is_err());
    }
}
