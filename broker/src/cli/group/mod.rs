//! `broker group list|describe|delete|reset-offsets`, printed like `kafka-consumer-groups.sh`.

mod datetime;
mod describe;
mod reset;

use anyhow::{bail, Context as _};
use broker::client::{Client, ClientError, GroupListing, ResponseError, TopicPartition};
use comfy_table::Table;

use super::{new_table, ConnectArgs};

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
    List,
    /// Show a group's state, members, assignments, committed offsets, log end and lag.
    Describe { group: String },
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
        GroupAction::List => println!("{}", list_table(&client.list_groups().await?)),
        GroupAction::Describe { group } => describe::run(&mut client, &group).await?,
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

fn list_table(groups: &[GroupListing]) -> Table {
    let mut table = new_table(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
    for g in groups {
        // ListGroups before v4 carries no state.
        let state = if g.state.is_empty() { "-" } else { &g.state };
        let protocol_type = if g.protocol_type.is_empty() {
            "-"
        } else {
            &g.protocol_type
        };
        table.add_row(vec![g.group_id.as_str(), state, protocol_type]);
    }
    table
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
fn cells(table: &Table) -> Vec<Vec<String>> {
    table
        .to_string()
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
            cells(&list_table(&groups)),
            [["g1", "Stable", "consumer"], ["g2", "-", "-"]]
        );
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
