//! `broker produce TOPIC`: one record per stdin line, batched per partition (up to
//! ~1 MiB or 5 ms), with a progress line for long runs and a summary at the end.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::{bail, Context as _};
use broker::client::{Acks, Client, Compression, Partitioner, ProducerRecord, ResponseError};
use broker::now_ms;
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::time::Instant;

use super::{parse_key_value, ConnectArgs};

/// A partition's batch is sent once it holds this many bytes...
const BATCH_BYTES: usize = 1024 * 1024;
/// ...or once its first record has waited this long.
const LINGER: Duration = Duration::from_millis(5);
/// Runs shorter than this finish without a progress line.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);
/// Retries of a batch that failed with a retriable error (e.g. a leader change).
const RETRIES: u32 = 5;
/// Pause before a retry, so a leader election can finish.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub(super) conn: ConnectArgs,
    /// The topic to write to (created if the broker auto-creates topics).
    topic: String,
    /// Split each line at the first SEP into key and value; lines without SEP get a null key.
    #[arg(long, short = 'K', value_name = "SEP")]
    key_separator: Option<String>,
    /// A header added to every record (repeatable).
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// Write every record to this partition (default: by key hash, round robin without a key).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Acknowledgements to wait for: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    /// Batch compression.
    #[arg(long, short = 'z', value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

fn parse_acks(s: &str) -> Result<Acks, String> {
    match s {
        "0" => Ok(Acks::None),
        "1" => Ok(Acks::Leader),
        "all" | "-1" => Ok(Acks::All),
        _ => Err(format!("acks must be 0, 1 or all, not {s:?}")),
    }
}

/// Turns one input line (without its line ending) into a record.
fn parse_line(
    line: &[u8],
    key_separator: Option<&[u8]>,
    headers: &[(String, Option<Bytes>)],
    timestamp: i64,
) -> ProducerRecord {
    let split = key_separator.and_then(|sep| {
        line.windows(sep.len())
            .position(|w| w == sep)
            .map(|at| (&line[..at], &line[at + sep.len()..]))
    });
    let (key, value) = match split {
        Some((key, value)) => (Some(Bytes::copy_from_slice(key)), value),
        None => (None, line),
    };
    ProducerRecord {
        key,
        value: Some(Bytes::copy_from_slice(value)),
        headers: headers.to_vec(),
        timestamp,
    }
}

/// Strips `\n` and a `\r` before it.
fn trim_line_ending(mut line: &[u8]) -> &[u8] {
    if let Some(rest) = line.strip_suffix(b"\n") {
        line = rest;
        if let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
    }
    line
}

/// Records waiting to be sent to one partition.
#[derive(Debug)]
struct Pending {
    records: Vec<ProducerRecord>,
    bytes: usize,
    /// When the first record arrived; the batch goes out `LINGER` later at the latest.
    since: Instant,
}

/// Sends batches and counts what was sent.
#[derive(Debug)]
struct Sender {
    client: Client,
    topic: String,
    acks: Acks,
    compression: Compression,
    started: Instant,
    messages: u64,
    /// Key and value bytes sent.
    bytes: u64,
    progress: ProgressBar,
}

impl Sender {
    /// Sends one partition's batch, retrying retriable errors after a metadata refresh.
    async fn send(&mut self, partition: i32, batch: Pending) -> anyhow::Result<()> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .produce(
                    &self.topic,
                    partition,
                    &batch.records,
                    self.acks,
                    self.compression,
                )
                .await;
            match result {
                Ok(_) => break,
                Err(e)
                    if attempt < RETRIES && e.kafka_error().is_some_and(|k| k.is_retriable()) =>
                {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "retrying produce");
                    self.client.invalidate(&self.topic);
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len) as u64;
        self.messages += batch.records.len() as u64;
        self.bytes += batch
            .records
            .iter()
            .map(|r| len(&r.key) + len(&r.value))
            .sum::<u64>();
        self.progress.set_position(self.messages);
        let secs = self.started.elapsed().as_secs_f64().max(f64::EPSILON);
        self.progress
            .set_message(format!("{:.0} msgs/s", self.messages as f64 / secs));
        Ok(())
    }
}

/// Metadata for `topic`, waiting out the moment after auto-creation when it has no leader yet.
async fn wait_for_topic(client: &mut Client, topic: &str) -> anyhow::Result<i32> {
    let mut attempt = 0;
    loop {
        match client.topic(topic, true).await {
            Ok(info) if !info.partitions.is_empty() => {
                return i32::try_from(info.partitions.len()).context("partition count")
            }
            Ok(_) => {}
            Err(e)
                if attempt < RETRIES
                    && matches!(
                        e.kafka_error(),
                        Some(ResponseError::LeaderNotAvailable)
                            | Some(ResponseError::UnknownTopicOrPartition)
                    ) => {}
            Err(e) => return Err(e.into()),
        }
        attempt += 1;
        if attempt > RETRIES {
            bail!("topic {topic} has no partitions");
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
}

pub(super) async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let mut client = args.conn.connect().await?;
    let partitions = wait_for_topic(&mut client, &args.topic).await?;
    if let Some(p) = args.partition {
        if !(0..partitions).contains(&p) {
            bail!(
                "topic {} has no partition {p} (it has {partitions})",
                args.topic
            );
        }
    }
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .into_iter()
        .map(|(k, v)| (k, Some(Bytes::from(v))))
        .collect();
    let key_separator = args.key_separator.as_deref().map(str::as_bytes);

    let progress = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    progress.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} messages sent ({msg}) {elapsed}")
            .context("progress template")?,
    );
    // Someone typing lines does not want a spinner in the way.
    let show_progress = !std::io::stdin().is_terminal();
    let started = Instant::now();
    let mut sender = Sender {
        client,
        started,
        topic: args.topic.clone(),
        acks: args.acks,
        compression: args.compression.into(),
        messages: 0,
        bytes: 0,
        progress,
    };

    let mut partitioner = Partitioner::default();
    let mut pending: BTreeMap<i32, Pending> = BTreeMap::new();
    let mut stdin = BufReader::with_capacity(256 * 1024, tokio::io::stdin());
    let mut line = Vec::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let deadline = pending.values().map(|p| p.since + LINGER).min();
        tokio::select! {
            // `read_until` keeps what it read in `line` if the timer wins, so no input is lost.
            read = stdin.read_until(b'\n', &mut line) => {
                if read.context("read stdin")? == 0 {
                    break;
                }
                let record = parse_line(trim_line_ending(&line), key_separator, &headers, now_ms());
                line.clear();
                let partition = args.partition.unwrap_or_else(|| {
                    partitioner.partition(record.key.as_deref(), partitions)
                });
                let batch = pending.entry(partition).or_insert_with(|| Pending {
                    records: Vec::new(),
                    bytes: 0,
                    since: Instant::now(),
                });
                batch.bytes += record.size_hint();
                batch.records.push(record);
                if batch.bytes >= BATCH_BYTES {
                    if let Some(full) = pending.remove(&partition) {
                        sender.send(partition, full).await?;
                    }
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let now = Instant::now();
                let due: Vec<i32> = pending
                    .iter()
                    .filter(|(_, p)| p.since + LINGER <= now)
                    .map(|(partition, _)| *partition)
                    .collect();
                for partition in due {
                    if let Some(batch) = pending.remove(&partition) {
                        sender.send(partition, batch).await?;
                    }
                }
            }
            _ = &mut ctrl_c => break,
        }
        if show_progress && sender.progress.is_hidden() && started.elapsed() >= PROGRESS_AFTER {
            sender
                .progress
                .set_draw_target(ProgressDrawTarget::stderr());
        }
    }
    for (partition, batch) in std::mem::take(&mut pending) {
        sender.send(partition, batch).await?;
    }
    sender.progress.finish_and_clear();

    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "Produced {} messages ({} key and value bytes) to {} in {:.2} s ({:.0} msgs/s)",
        sender.messages,
        sender.bytes,
        sender.topic,
        secs,
        sender.messages as f64 / secs.max(f64::EPSILON),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::super::ClientCommand;
    use super::*;

    #[test]
    fn splits_key_at_the_first_separator() {
        let r = parse_line(b"k1::v::x", Some(b"::"), &[], 7);
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v::x"[..]));
        assert_eq!(r.timestamp, 7);
    }

    #[test]
    fn lines_without_separator_get_a_null_key() {
        let headers = vec![("h".to_owned(), Some(Bytes::from_static(b"1")))];
        let r = parse_line(b"just a value", Some(b"\t"), &headers, 0);
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"just a value"[..]));
        assert_eq!(r.headers, headers);
        assert_eq!(parse_line(b"a:b", None, &[], 0).key, None);
    }

    #[test]
    fn line_endings_are_stripped() {
        assert_eq!(trim_line_ending(b"a\r\n"), b"a");
        assert_eq!(trim_line_ending(b"a\n"), b"a");
        assert_eq!(trim_line_ending(b"a"), b"a");
        assert_eq!(trim_line_ending(b"a\r"), b"a\r");
    }

    #[test]
    fn arguments_parse() {
        let ClientCommand::Produce(args) = parse(&[
            "produce",
            "orders",
            "--key-separator",
            ":",
            "--header",
            "a=1",
            "--header",
            "b=2",
            "--partition",
            "2",
            "--acks",
            "1",
            "--compression",
            "zstd",
        ])
        .expect("parses") else {
            panic!("not produce");
        };
        assert_eq!(args.topic, "orders");
        assert_eq!(args.key_separator.as_deref(), Some(":"));
        assert_eq!(args.headers.len(), 2);
        assert_eq!(args.partition, Some(2));
        assert_eq!(args.acks, Acks::Leader);
        assert_eq!(args.compression, CompressionArg::Zstd);

        let ClientCommand::Produce(args) = parse(&["produce", "t"]).expect("parses") else {
            panic!("not produce");
        };
        assert_eq!(args.acks, Acks::All);
        assert_eq!(args.compression, CompressionArg::None);
        assert!(parse(&["produce", "t", "--acks", "2"]).is_err());
    }
}
