//! `broker group reset-offsets GROUP`: compute new committed offsets from a rule
//! (earliest, latest, an offset, a time, a shift), print the plan, and with `--execute`
//! commit it. Like Kafka, only an inactive group (Empty or Dead) can be reset: a live
//! consumer would overwrite the reset with its next commit.

use std::collections::BTreeMap;

use anyhow::{bail, Context as _};
use broker::client::{Client, TopicPartition, EARLIEST, LATEST};
use comfy_table::Table;

use super::datetime::parse_datetime;
use super::partitions_of;
use crate::cli::new_table;

#[derive(clap::Args, Debug)]
pub(super) struct ResetArgs {
    group: String,
    /// A topic to reset, all partitions (`T`) or some (`T:0,2`); repeatable.
    #[arg(long = "topic", value_name = "TOPIC[:P,...]", value_parser = parse_topic_spec,
          required_unless_present = "all_topics")]
    topics: Vec<TopicSpec>,
    /// Every topic the group has committed offsets for.
    #[arg(long, conflicts_with = "topics")]
    all_topics: bool,
    #[command(flatten)]
    target: TargetArgs,
    /// Commit the new offsets; without it only the plan is printed.
    #[arg(long, conflicts_with = "dry_run")]
    execute: bool,
    /// Only print the plan (the default).
    #[arg(long)]
    dry_run: bool,
}

/// Exactly one rule for the new offsets.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
struct TargetArgs {
    /// The log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// The log end offset.
    #[arg(long)]
    to_latest: bool,
    /// The committed offset (the log end where nothing is committed).
    #[arg(long)]
    to_current: bool,
    /// This offset, moved into [log start, log end] if outside.
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// The first offset with a timestamp at or after this time (the log end if none):
    /// YYYY-MM-DDTHH:mm:SS[.sss][Z|+HH:MM], UTC when no zone is given.
    #[arg(long, value_name = "DATETIME", value_parser = parse_datetime)]
    to_datetime: Option<i64>,
    /// The committed offset plus N (negative to go back), kept within the log.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
}

/// A rule for the new offset of each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Earliest,
    Latest,
    Current,
    Offset(i64),
    /// Epoch milliseconds.
    Datetime(i64),
    ShiftBy(i64),
}

impl TargetArgs {
    fn target(&self) -> Target {
        // clap's group makes exactly one of these present.
        match (self.to_offset, self.to_datetime, self.shift_by) {
            (Some(n), _, _) => Target::Offset(n),
            (_, Some(ms), _) => Target::Datetime(ms),
            (_, _, Some(n)) => Target::ShiftBy(n),
            _ if self.to_earliest => Target::Earliest,
            _ if self.to_latest => Target::Latest,
            _ => Target::Current,
        }
    }
}

/// `--topic` value: a topic and, optionally, some of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TopicSpec {
    topic: String,
    /// Empty means every partition.
    partitions: Vec<i32>,
}

fn parse_topic_spec(s: &str) -> Result<TopicSpec, String> {
    // Kafka topic names cannot contain ':', so the first one starts the partitions.
    let (topic, partitions) = match s.split_once(':') {
        Some((t, ps)) => {
            let partitions = ps
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 0)
                        .ok_or_else(|| format!("bad partition {p:?} in {s:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            (t, partitions)
        }
        None => (s, Vec::new()),
    };
    if topic.is_empty() {
        return Err(format!("no topic in {s:?}"));
    }
    Ok(TopicSpec {
        topic: topic.to_owned(),
        partitions,
    })
}

/// What the log holds for one partition, as ListOffsets reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bounds {
    earliest: i64,
    latest: i64,
    /// For [`Target::Datetime`]: the offset for that time, `None` when every record is older.
    at_time: Option<i64>,
}

/// The new offset of one partition, kept within [earliest, latest] as Kafka does.
fn new_offset(target: Target, current: Option<i64>, b: Bounds) -> Result<i64, String> {
    let wanted = match target {
        Target::Earliest => b.earliest,
        Target::Latest => b.latest,
        Target::Current => current.unwrap_or(b.latest),
        Target::Offset(n) => n,
        Target::Datetime(_) => b.at_time.unwrap_or(b.latest),
        Target::ShiftBy(n) => current
            .ok_or("it has no committed offset to shift")?
            .saturating_add(n),
    };
    // Not `clamp`: it panics if a racing truncation made earliest > latest.
    Ok(wanted.max(b.earliest).min(b.latest))
}

pub(super) async fn run(client: &mut Client, args: ResetArgs) -> anyhow::Result<()> {
    let group = &args.group;
    let description = client.describe_group(group).await?;
    if !matches!(description.state.as_str(), "Empty" | "Dead") {
        bail!(
            "Assignments can only be reset if the group '{group}' is inactive, but the \
             current state is {}.",
            description.state
        );
    }
    let committed = client.committed_offsets(group).await?;
    let mut partitions: Vec<TopicPartition> = Vec::new();
    if args.all_topics {
        partitions.extend(committed.keys().cloned());
    }
    for spec in &args.topics {
        if spec.partitions.is_empty() {
            partitions.extend(partitions_of(client, &spec.topic).await?);
        } else {
            partitions.extend(spec.partitions.iter().map(|p| (spec.topic.clone(), *p)));
        }
    }
    partitions.sort();
    partitions.dedup();
    if partitions.is_empty() {
        bail!("nothing to reset: group '{group}' has no committed offsets");
    }

    let target = args.target.target();
    let mut plan = BTreeMap::new();
    for tp in partitions {
        let bounds = bounds(client, &tp, target).await?;
        let current = committed.get(&tp).copied();
        let offset = new_offset(target, current, bounds)
            .map_err(|why| anyhow::anyhow!("cannot reset {}-{}: {why}", tp.0, tp.1))?;
        plan.insert(tp, (current, offset));
    }
    println!("{}", plan_table(group, &plan));
    if args.execute {
        let offsets = plan
            .iter()
            .map(|(tp, (_, new))| (tp.clone(), *new))
            .collect();
        client
            .commit_offsets(group, &offsets)
            .await
            .with_context(|| format!("commit new offsets of group {group}"))?;
        println!("Committed the new offsets of group '{group}'.");
    } else {
        eprintln!("Dry run: nothing was committed; add --execute to commit these offsets.");
    }
    Ok(())
}

async fn bounds(
    client: &mut Client,
    tp: &TopicPartition,
    target: Target,
) -> anyhow::Result<Bounds> {
    let (topic, partition) = (tp.0.as_str(), tp.1);
    let context = || format!("offsets of {topic}-{partition}");
    let earliest = client
        .list_offset(topic, partition, EARLIEST)
        .await
        .with_context(context)?;
    let latest = client
        .list_offset(topic, partition, LATEST)
        .await
        .with_context(context)?;
    let at_time = match target {
        Target::Datetime(ms) => {
            // -1: no record at or after that time.
            let offset = client
                .list_offset(topic, partition, ms)
                .await
                .with_context(context)?;
            (offset >= 0).then_some(offset)
        }
        _ => None,
    };
    Ok(Bounds {
        earliest,
        latest,
        at_time,
    })
}

fn plan_table(group: &str, plan: &BTreeMap<TopicPartition, (Option<i64>, i64)>) -> Table {
    let mut table = new_table(&[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "NEW-OFFSET",
    ]);
    for ((topic, partition), (current, new)) in plan {
        table.add_row(vec![
            group.to_owned(),
            topic.clone(),
            partition.to_string(),
            current.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            new.to_string(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::super::super::tests::parse;
    use super::super::super::ClientCommand;
    use super::super::{cells, GroupAction};
    use super::*;

    const B: Bounds = Bounds {
        earliest: 5,
        latest: 20,
        at_time: Some(12),
    };

    fn reset_args(args: &[&str]) -> Result<ResetArgs, clap::Error> {
        let full: Vec<&str> = ["group", "reset-offsets"]
            .iter()
            .chain(args)
            .copied()
            .collect();
        match parse(&full)? {
            ClientCommand::Group(g) => match g.action {
                GroupAction::ResetOffsets(r) => Ok(r),
                other => panic!("not reset: {other:?}"),
            },
            other => panic!("not group: {other:?}"),
        }
    }

    #[test]
    fn rules_resolve_within_the_log() {
        assert_eq!(new_offset(Target::Earliest, Some(9), B), Ok(5));
        assert_eq!(new_offset(Target::Latest, Some(9), B), Ok(20));
        assert_eq!(new_offset(Target::Current, Some(9), B), Ok(9));
        assert_eq!(new_offset(Target::Current, None, B), Ok(20));
        assert_eq!(new_offset(Target::Offset(7), None, B), Ok(7));
        assert_eq!(new_offset(Target::Offset(1), None, B), Ok(5));
        assert_eq!(new_offset(Target::Offset(99), None, B), Ok(20));
        assert_eq!(new_offset(Target::Datetime(0), None, B), Ok(12));
        let none_after = Bounds { at_time: None, ..B };
        assert_eq!(new_offset(Target::Datetime(0), None, none_after), Ok(20));
        assert_eq!(new_offset(Target::ShiftBy(-3), Some(9), B), Ok(6));
        assert_eq!(new_offset(Target::ShiftBy(-30), Some(9), B), Ok(5));
        assert_eq!(new_offset(Target::ShiftBy(30), Some(9), B), Ok(20));
        assert!(new_offset(Target::ShiftBy(1), None, B).is_err());
        let inverted = Bounds {
            earliest: 8,
            latest: 3,
            at_time: None,
        };
        assert_eq!(new_offset(Target::Earliest, None, inverted), Ok(3));
    }

    #[test]
    fn topic_specs_name_partitions_optionally() {
        assert_eq!(
            parse_topic_spec("orders"),
            Ok(TopicSpec {
                topic: "orders".into(),
                partitions: vec![]
            })
        );
        assert_eq!(
            parse_topic_spec("orders:0,2"),
            Ok(TopicSpec {
                topic: "orders".into(),
                partitions: vec![0, 2]
            })
        );
        for bad in ["", ":1", "orders:", "orders:x", "orders:-1"] {
            assert!(parse_topic_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exactly_one_rule_and_a_scope_are_required() {
        let r = reset_args(&["g", "--topic", "t", "--shift-by", "-2"]).expect("parses");
        assert_eq!(r.target.target(), Target::ShiftBy(-2));
        assert!(!r.execute);
        let r = reset_args(&["g", "--all-topics", "--to-earliest", "--execute"]).expect("parses");
        assert_eq!(r.target.target(), Target::Earliest);
        assert!(r.execute);
        let r = reset_args(&["g", "--topic", "t", "--to-datetime", "1970-01-01T00:00:01Z"])
            .expect("parses");
        assert_eq!(r.target.target(), Target::Datetime(1000));
        assert!(reset_args(&["g", "--topic", "t"]).is_err());
        assert!(reset_args(&["g", "--to-latest"]).is_err());
        assert!(reset_args(&["g", "--topic", "t", "--to-latest", "--to-earliest"]).is_err());
        assert!(reset_args(&["g", "--topic", "t", "--all-topics", "--to-latest"]).is_err());
        assert!(
            reset_args(&["g", "--topic", "t", "--to-latest", "--execute", "--dry-run"]).is_err()
        );
    }

    #[test]
    fn plan_table_shows_current_and_new() {
        let plan = BTreeMap::from([
            (("t".to_owned(), 0), (Some(3), 0)),
            (("t".to_owned(), 1), (None, 7)),
        ]);
        assert_eq!(
            cells(&plan_table("g", &plan).to_string()),
            [["g", "t", "0", "3", "0"], ["g", "t", "1", "-", "7"]]
        );
    }
}
