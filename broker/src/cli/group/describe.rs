//! `broker group describe GROUP`: one row per partition the group has committed or been
//! assigned, with its lag, plus one per member that owns nothing (as Kafka prints it).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;
use broker::client::{Client, ClientError, GroupDescription, TopicPartition, LATEST};
use common::output::OutputFormat;
use serde_json::json;

use super::output;

/// One line of the table; `None` prints as `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    /// `None` for a member with nothing assigned.
    partition: Option<TopicPartition>,
    current: Option<i64>,
    log_end: Option<i64>,
    /// `None` for a partition with a committed offset that no member owns.
    member: Option<Owner>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    consumer_id: String,
    host: String,
    client_id: String,
}

pub(super) async fn run(
    client: &mut Client,
    group: &str,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let description = client.describe_group(group).await?;
    if description.state == "Dead" {
        bail!("Consumer group '{group}' does not exist.");
    }
    let committed = client.committed_offsets(group).await?;
    let mut log_end = BTreeMap::new();
    for tp in partitions(&description, &committed) {
        if let Some(offset) = log_end_offset(client, &tp).await? {
            log_end.insert(tp, offset);
        }
    }
    let rows = rows(&description, &committed, &log_end);
    match output {
        OutputFormat::Json => println!("{}", describe_json(&description, &rows)),
        OutputFormat::Plain => output::print(&output::rows(output, &[], &cells(group, &rows))),
        OutputFormat::Text => {
            println!("{}", state_line(&description));
            println!("{}", table(group, &rows));
        }
    }
    Ok(())
}

/// The log end offset, or `None` (printed `-`) when the partition no longer exists or
/// has no leader: a group may hold offsets of a deleted topic.
async fn log_end_offset(client: &mut Client, tp: &TopicPartition) -> anyhow::Result<Option<i64>> {
    match client.list_offset(&tp.0, tp.1, LATEST).await {
        Ok(offset) => Ok(Some(offset)),
        Err(ClientError::Kafka { .. } | ClientError::NoLeader { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every partition the group committed or was assigned.
fn partitions(
    description: &GroupDescription,
    committed: &BTreeMap<TopicPartition, i64>,
) -> BTreeSet<TopicPartition> {
    description
        .members
        .iter()
        .flat_map(|m| m.assignment.iter().cloned())
        .chain(committed.keys().cloned())
        .collect()
}

/// Kafka's lag: log end minus committed, when both are known. Not clamped, so a committed
/// offset past the log end (after truncation) shows as negative, as in Kafka.
fn lag(current: Option<i64>, log_end: Option<i64>) -> Option<i64> {
    Some(log_end? - current?)
}

fn rows(
    description: &GroupDescription,
    committed: &BTreeMap<TopicPartition, i64>,
    log_end: &BTreeMap<TopicPartition, i64>,
) -> Vec<Row> {
    let mut owners: BTreeMap<&TopicPartition, Owner> = BTreeMap::new();
    let mut idle = Vec::new();
    for m in &description.members {
        let owner = Owner {
            consumer_id: m.member_id.clone(),
            host: m.host.clone(),
            client_id: m.client_id.clone(),
        };
        if m.assignment.is_empty() {
            idle.push(owner);
        } else {
            for tp in &m.assignment {
                owners.insert(tp, owner.clone());
            }
        }
    }
    let mut rows: Vec<Row> = partitions(description, committed)
        .into_iter()
        .map(|tp| Row {
            current: committed.get(&tp).copied(),
            log_end: log_end.get(&tp).copied(),
            member: owners.get(&tp).cloned(),
            partition: Some(tp),
        })
        .collect();
    rows.extend(idle.into_iter().map(|owner| Row {
        partition: None,
        current: None,
        log_end: None,
        member: Some(owner),
    }));
    rows
}

/// What Kafka prints above the table: whether anyone is consuming.
fn state_line(d: &GroupDescription) -> String {
    match d.state.as_str() {
        "Empty" => format!("Consumer group '{}' has no active members.", d.group_id),
        "PreparingRebalance" | "CompletingRebalance" => format!(
            "Warning: Consumer group '{}' is rebalancing ({}).",
            d.group_id, d.state
        ),
        state => format!(
            "Consumer group '{}' is {state} with {} member(s), assignment strategy '{}', \
             coordinator broker {}.",
            d.group_id,
            d.members.len(),
            d.protocol,
            d.coordinator
        ),
    }
}

const HEADER: [&str; 9] = [
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
];

fn table(group: &str, rows: &[Row]) -> String {
    output::rows(OutputFormat::Text, &HEADER, &cells(group, rows))
}

/// The table's cells: `-` for what is unknown or absent.
fn cells(group: &str, rows: &[Row]) -> Vec<Vec<String>> {
    let dash = || "-".to_owned();
    let num = |n: Option<i64>| n.map_or_else(dash, |n| n.to_string());
    rows.iter()
        .map(|r| {
            let (topic, partition) = r
                .partition
                .as_ref()
                .map_or_else(|| (dash(), dash()), |(t, p)| (t.clone(), p.to_string()));
            let (consumer, host, client) = r.member.as_ref().map_or_else(
                || (dash(), dash(), dash()),
                |o| (o.consumer_id.clone(), o.host.clone(), o.client_id.clone()),
            );
            vec![
                group.to_owned(),
                topic,
                partition,
                num(r.current),
                num(r.log_end),
                num(lag(r.current, r.log_end)),
                consumer,
                host,
                client,
            ]
        })
        .collect()
}

/// The group and its rows as one JSON object; unknown values are null.
fn describe_json(d: &GroupDescription, rows: &[Row]) -> serde_json::Value {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "topic": r.partition.as_ref().map(|(t, _)| t),
                "partition": r.partition.as_ref().map(|(_, p)| p),
                "currentOffset": r.current,
                "logEndOffset": r.log_end,
                "lag": lag(r.current, r.log_end),
                "consumerId": r.member.as_ref().map(|o| &o.consumer_id),
                "host": r.member.as_ref().map(|o| &o.host),
                "clientId": r.member.as_ref().map(|o| &o.client_id),
            })
        })
        .collect();
    json!({
        "group": d.group_id,
        "state": d.state,
        "protocolType": d.protocol_type,
        "protocol": d.protocol,
        "coordinator": d.coordinator,
        "members": d.members.len(),
        "partitions": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker::client::MemberDescription;

    fn tp(t: &str, p: i32) -> TopicPartition {
        (t.to_owned(), p)
    }

    fn member(id: &str, assignment: Vec<TopicPartition>) -> MemberDescription {
        MemberDescription {
            member_id: id.to_owned(),
            group_instance_id: None,
            client_id: format!("client-{id}"),
            host: "/127.0.0.1".to_owned(),
            assignment,
        }
    }

    fn description(members: Vec<MemberDescription>) -> GroupDescription {
        GroupDescription {
            group_id: "g".to_owned(),
            state: "Stable".to_owned(),
            protocol_type: "consumer".to_owned(),
            protocol: "range".to_owned(),
            members,
            coordinator: 0,
        }
    }

    #[test]
    fn lag_needs_both_offsets_and_is_not_clamped() {
        assert_eq!(lag(Some(3), Some(10)), Some(7));
        assert_eq!(lag(Some(10), Some(10)), Some(0));
        assert_eq!(lag(Some(12), Some(10)), Some(-2));
        assert_eq!(lag(None, Some(10)), None);
        assert_eq!(lag(Some(3), None), None);
    }

    #[test]
    fn rows_cover_assigned_committed_and_idle() {
        let d = description(vec![
            member("m1", vec![tp("t", 0), tp("t", 1)]),
            member("m2", vec![]),
        ]);
        // t-1 assigned but never committed; u-0 committed but owned by nobody.
        let committed = BTreeMap::from([(tp("t", 0), 4), (tp("u", 0), 1)]);
        let log_end = BTreeMap::from([(tp("t", 0), 10), (tp("t", 1), 5)]);
        let got = super::super::cells(&table("g", &rows(&d, &committed, &log_end)));
        assert_eq!(got, cells("g", &rows(&d, &committed, &log_end)));
        let json = describe_json(&d, &rows(&d, &committed, &log_end));
        assert_eq!(json["partitions"][0]["lag"], 6);
        assert_eq!(
            json["partitions"][1]["currentOffset"],
            serde_json::Value::Null
        );
        assert_eq!(json["partitions"][3]["consumerId"], "m2");
        assert_eq!(json["members"], 2);
        let want = [
            [
                "g",
                "t",
                "0",
                "4",
                "10",
                "6",
                "m1",
                "/127.0.0.1",
                "client-m1",
            ],
            [
                "g",
                "t",
                "1",
                "-",
                "5",
                "-",
                "m1",
                "/127.0.0.1",
                "client-m1",
            ],
            ["g", "u", "0", "1", "-", "-", "-", "-", "-"],
            [
                "g",
                "-",
                "-",
                "-",
                "-",
                "-",
                "m2",
                "/127.0.0.1",
                "client-m2",
            ],
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn state_line_says_who_is_consuming() {
        let mut d = description(vec![member("m1", vec![])]);
        assert_eq!(
            state_line(&d),
            "Consumer group 'g' is Stable with 1 member(s), assignment strategy 'range', \
             coordinator broker 0."
        );
        d.state = "Empty".to_owned();
        d.members.clear();
        assert_eq!(state_line(&d), "Consumer group 'g' has no active members.");
        d.state = "PreparingRebalance".to_owned();
        assert!(state_line(&d).contains("rebalancing"));
    }
}
