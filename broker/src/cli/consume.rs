//! `broker consume TOPIC`: fetch from one or all partitions and print each record with a
//! kcat-style format, until Ctrl-C, `--max-messages`, `--timeout-ms` or (`--exit`) the end.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::time::Duration;

use anyhow::{bail, Context as _};
use broker::client::{Client, FetchOptions, ResponseError, EARLIEST, LATEST};
use tokio::time::Instant;

use super::format::Format;
use super::ConnectArgs;

/// How long one Fetch may wait at the broker for data.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// Response size limit for one Fetch (Kafka's consumer default, fetch.max.bytes).
const MAX_BYTES: i32 = 50 * 1024 * 1024;
/// Per-partition limit to start with (max.partition.fetch.bytes); doubled when a single
/// batch does not fit.
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;
/// Pause after a retriable error before fetching again.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub(super) conn: ConnectArgs,
    /// The topic to read.
    topic: String,
    /// Start at the beginning of each partition (same as --offset beginning).
    #[arg(long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Read only this partition (default: all).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Where to start: beginning, end, an offset N, or -N for N before the end (default: end).
    #[arg(long, short = 'o', allow_hyphen_values = true, value_parser = parse_start)]
    offset: Option<Start>,
    /// Stop after this many records.
    #[arg(long, short = 'c')]
    max_messages: Option<u64>,
    /// Output format: %t topic, %p partition, %o offset, %k key, %s value, %K/%S key/value
    /// length, %T timestamp (ms), %h headers, %% a percent sign; \n \t \r escapes.
    #[arg(long, short = 'f', default_value = "%s\\n")]
    format: Format,
    /// Stop when no record arrives for this many milliseconds.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Stop at the end of the partitions, like kcat -e.
    #[arg(long, short = 'e')]
    exit: bool,
}

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Beginning,
    End,
    /// An absolute offset.
    At(i64),
    /// This many records before the end.
    BeforeEnd(i64),
}

fn parse_start(s: &str) -> Result<Start, String> {
    match s {
        "beginning" => Ok(Start::Beginning),
        "end" => Ok(Start::End),
        _ => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Start::At(n)),
            Ok(n) => Ok(Start::BeforeEnd(n.saturating_neg())),
            Err(_) => Err(format!("offset must be beginning, end, N or -N, not {s:?}")),
        },
    }
}

/// The first offset to read from `partition`.
async fn start_offset(
    client: &mut Client,
    topic: &str,
    partition: i32,
    start: Start,
) -> anyhow::Result<i64> {
    Ok(match start {
        Start::Beginning => client.list_offset(topic, partition, EARLIEST).await?,
        Start::End => client.list_offset(topic, partition, LATEST).await?,
        // Out of range is handled on the first fetch, like any later reset.
        Start::At(n) => n,
        Start::BeforeEnd(n) => {
            let earliest = client.list_offset(topic, partition, EARLIEST).await?;
            let latest = client.list_offset(topic, partition, LATEST).await?;
            latest.saturating_sub(n).max(earliest)
        }
    })
}

pub(super) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut client = args.conn.connect().await?;
    let topic_name = args.topic.as_str();
    let topic = client.topic(topic_name, false).await?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if topic.partitions.iter().any(|info| info.partition == p) => vec![p],
        Some(p) => bail!("topic {topic_name} has no partition {p}"),
        None => topic.partitions.iter().map(|p| p.partition).collect(),
    };
    let start = match (args.from_beginning, args.offset) {
        (true, _) => Start::Beginning,
        (false, Some(start)) => start,
        (false, None) => Start::End,
    };

    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    for &p in &partitions {
        let offset = start_offset(&mut client, topic_name, p, start).await?;
        positions.insert(p, offset);
    }
    // With --exit, partitions already at their end need no fetch at all.
    let mut finished: BTreeSet<i32> = BTreeSet::new();
    if args.exit {
        for (&p, &offset) in &positions {
            if offset >= client.list_offset(topic_name, p, LATEST).await? {
                finished.insert(p);
            }
        }
    }

    let mut options = FetchOptions {
        max_wait: MAX_WAIT,
        min_bytes: 1,
        max_bytes: MAX_BYTES,
        partition_max_bytes: PARTITION_MAX_BYTES,
    };
    let timeout = args.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    let mut consumed: u64 = 0;
    let mut out = Vec::new();
    let stdout = std::io::stdout();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    'fetching: loop {
        if args.max_messages.is_some_and(|max| consumed >= max) {
            break;
        }
        let wanted: Vec<(i32, i64)> = positions
            .iter()
            .filter(|(p, _)| !finished.contains(p))
            .map(|(&p, &o)| (p, o))
            .collect();
        if wanted.is_empty() {
            break;
        }
        options.max_wait = match timeout {
            Some(t) => {
                let left = t.saturating_sub(last_record.elapsed());
                if left.is_zero() {
                    break;
                }
                left.min(MAX_WAIT)
            }
            None => MAX_WAIT,
        };
        let fetched = tokio::select! {
            fetched = client.fetch(topic_name, &wanted, &options) => fetched?,
            _ = &mut ctrl_c => break,
        };

        let mut retry = false;
        for part in fetched {
            let p = part.partition;
            match part.error {
                None => {}
                Some(ResponseError::OffsetOutOfRange) => {
                    // Like auto.offset.reset: below the log goes to its start, past it to its end.
                    let at = positions.get(&p).copied().unwrap_or_default();
                    let earliest = client.list_offset(topic_name, p, EARLIEST).await?;
                    let reset = if at < earliest {
                        earliest
                    } else {
                        client.list_offset(topic_name, p, LATEST).await?
                    };
                    eprintln!(
                        "% {topic_name} [{p}]: offset {at} is out of range, resetting to {reset}"
                    );
                    positions.insert(p, reset);
                    continue;
                }
                Some(e) if e.is_retriable() => {
                    tracing::debug!(partition = p, error = %e, "retriable fetch error");
                    retry = true;
                    continue;
                }
                Some(e) => bail!(
                    "fetch {topic_name} [{p}]: {}",
                    broker::client::kafka_error_name(e)
                ),
            }
            for record in &part.records {
                if args.max_messages.is_some_and(|max| consumed >= max) {
                    break;
                }
                args.format.render(topic_name, p, record, &mut out);
                consumed += 1;
                last_record = Instant::now();
                positions.insert(p, record.offset + 1);
            }
            match part.next_offset {
                // Only move past the whole batch if every record in it was printed.
                Some(next) if args.max_messages.is_none_or(|max| consumed < max) => {
                    positions.insert(p, next);
                }
                Some(_) => {}
                None if part.partial => {
                    // A single batch is larger than the limit: ask for more next time.
                    options.partition_max_bytes =
                        options.partition_max_bytes.saturating_mul(2).min(MAX_BYTES);
                }
                None => {}
            }
            let at = positions.get(&p).copied().unwrap_or_default();
            if args.exit && at >= part.high_watermark {
                finished.insert(p);
            }
        }
        if !out.is_empty() {
            let mut lock = stdout.lock();
            match lock.write_all(&out).and_then(|()| lock.flush()) {
                Ok(()) => out.clear(),
                // The reader went away (`| head`): that is the end, not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break 'fetching,
                Err(e) => return Err(e).context("write stdout"),
            }
        }
        if retry {
            client.invalidate(topic_name);
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }
    eprintln!("Processed a total of {consumed} messages");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::super::ClientCommand;
    use super::*;

    fn consume(args: &[&str]) -> ConsumeArgs {
        let mut all = vec!["consume", "orders"];
        all.extend_from_slice(args);
        match parse(&all).expect("parses") {
            ClientCommand::Consume(args) => args,
            other => panic!("not consume: {other:?}"),
        }
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_start("beginning"), Ok(Start::Beginning));
        assert_eq!(parse_start("end"), Ok(Start::End));
        assert_eq!(parse_start("17"), Ok(Start::At(17)));
        assert_eq!(parse_start("-10"), Ok(Start::BeforeEnd(10)));
        assert!(parse_start("soon").is_err());
        assert_eq!(
            consume(&["--offset", "-5"]).offset,
            Some(Start::BeforeEnd(5))
        );
        assert_eq!(consume(&["-o", "beginning"]).offset, Some(Start::Beginning));
    }

    #[test]
    fn defaults_and_flags() {
        let args = consume(&[]);
        assert!(!args.from_beginning && !args.exit);
        assert_eq!(args.offset, None);
        assert_eq!(args.format, "%s\n".parse().expect("format"));
        let args = consume(&[
            "--from-beginning",
            "--partition",
            "1",
            "--max-messages",
            "10",
            "--format",
            "%k=%s\\n",
            "--timeout-ms",
            "2000",
            "--exit",
        ]);
        assert!(args.from_beginning && args.exit);
        assert_eq!(args.partition, Some(1));
        assert_eq!(args.max_messages, Some(10));
        assert_eq!(args.timeout_ms, Some(2000));
        assert!(parse(&["consume", "t", "--from-beginning", "--offset", "end"]).is_err());
        assert!(parse(&["consume", "t", "--format", "%z"]).is_err());
    }
}
