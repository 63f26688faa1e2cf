//! `kafkabench`: Kafka produce/consume/latency load generator built on librdkafka (the `rdkafka`
//! crate). Each subcommand prints one JSON line; `bench/kafka-compare.sh` strings them together.

use anyhow::{bail, Context, Result};
use bench::cluster::{self, FailoverOpts};
use bench::groups::{self, CommitOpts, RebalanceOpts};
use bench::kafka::{self, LatencyOpts, ProduceOpts, MB};
use bench::physical;
use clap::{Parser, Subcommand};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Drive a Kafka-protocol broker through librdkafka and report one JSON line per run.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Extra librdkafka property for every client, `key=value` (repeatable; for experiments,
    /// e.g. `--config fetch.queue.backoff.ms=0`). Applied after the benchmark's own settings.
    #[arg(long = "config", short = 'X', global = true, value_name = "KEY=VALUE")]
    config: Vec<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// bootstrap.servers
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to use.
    #[arg(long)]
    topic: String,
    /// Broker process id: report its CPU use and RSS over the phase.
    #[arg(long)]
    pid: Option<u32>,
    /// Free-form label copied into the report (e.g. "ours" or "tansu").
    #[arg(long)]
    label: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Loopback TCP throughput (one stream) and sequential write + fdatasync throughput.
    Physical {
        /// Directory for the write test (put it on the broker's log disk).
        #[arg(long)]
        dir: PathBuf,
        /// Seconds of loopback streaming.
        #[arg(long, default_value_t = 3.0)]
        tcp_secs: f64,
        /// Megabytes (10^6 bytes, rounded up to whole MiB) written by the write test.
        #[arg(long, default_value_t = 2000)]
        write_mb: u64,
    },
    /// Wait until ADDR answers ApiVersions; report the time since --since.
    Ready {
        #[arg(long)]
        addr: SocketAddr,
        /// Unix time in seconds (bash `$EPOCHREALTIME`) taken just before the broker was spawned.
        #[arg(long)]
        since: f64,
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        #[arg(long)]
        label: Option<String>,
    },
    /// Create a topic (replication factor 1) and wait for its partition leaders.
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
    },
    /// Delete a topic (best effort).
    Delete {
        #[command(flatten)]
        common: Common,
    },
    /// Produce keyless records as fast as librdkafka's queue allows.
    Produce {
        #[command(flatten)]
        common: Common,
        /// Record value size in bytes.
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// acks: 0, 1 or all.
        #[arg(long, default_value = "1")]
        acks: String,
        /// Seconds of producing (the flush afterwards is included in the rate).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Stop earlier once this many megabytes of values have been enqueued.
        #[arg(long, default_value_t = 1000)]
        max_mb: u64,
        /// linger.ms; librdkafka's default (5) when absent.
        #[arg(long)]
        linger_ms: Option<u32>,
    },
    /// Read a topic back from the beginning with default fetch settings.
    Consume {
        #[command(flatten)]
        common: Common,
        /// Stop after this many seconds even if not everything arrived.
        #[arg(long, default_value_t = 30.0)]
        max_secs: f64,
    },
    /// End-to-end latency at a fixed produce rate, consumer in the same process.
    Latency {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 100)]
        size: usize,
        #[arg(long, default_value = "1")]
        acks: String,
        /// Records per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Unmeasured seconds at the same rate first.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// linger.ms; librdkafka's default (5) when absent.
        #[arg(long)]
        linger_ms: Option<u32>,
    },
    /// Consumer-group rebalance time after one member of a group leaves (clean close, or
    /// SIGKILL of a member process with --vanish), repeated --rounds times with fresh groups.
    Rebalance {
        #[command(flatten)]
        common: Common,
        /// Members of the group.
        #[arg(long, default_value_t = 3)]
        members: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// The leaving member is a child process killed with SIGKILL (no LeaveGroup): the
        /// broker notices only after the member's session.timeout.ms.
        #[arg(long)]
        vanish: bool,
        /// librdkafka setting of every member, `key=value` (repeatable), e.g.
        /// `--set session.timeout.ms=6000 --set heartbeat.interval.ms=500`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Internal: one group member in its own process (used by `rebalance --vanish`).
    #[command(hide = true)]
    GroupMember {
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        group: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Offset commits: --groups concurrent committers (one group each) synchronously commit
    /// explicit offsets of every partition of the topic, back to back or every --interval-ms.
    Commits {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 8)]
        groups: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Unmeasured seconds first.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// One commit per interval per group instead of back to back (background committer).
        #[arg(long)]
        interval_ms: Option<u64>,
        /// Group ids are `<prefix>-<i>`.
        #[arg(long, default_value = "kafkabench-commits")]
        group_prefix: String,
    },
    /// Create a replicated topic and wait until every partition has a leader and a full ISR.
    CreateReplicated {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        #[arg(long, default_value_t = 3)]
        replication_factor: i32,
        /// Topic config, `key=value` (repeatable), e.g. `min.insync.replicas=2`.
        #[arg(long = "topic-config", value_name = "KEY=VALUE")]
        topic_config: Vec<String>,
    },
    /// Failover: produce acks=all to one partition, SIGKILL its leader, time session expiry,
    /// election, fresh metadata and the first successful delivery afterwards.
    Failover {
        #[command(flatten)]
        common: Common,
        /// The coordinator (ZooKeeper protocol) address, host:port.
        #[arg(long)]
        coord: String,
        #[arg(long, default_value_t = 0)]
        partition: i32,
        /// Broker id and pid, `id=pid` (repeatable): whichever leads the partition is killed.
        #[arg(long = "broker-pid", value_name = "ID=PID")]
        broker_pids: Vec<String>,
        /// Records per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Seconds of producing before the kill.
        #[arg(long, default_value_t = 2.0)]
        before: f64,
        /// Give up waiting this many seconds after the kill.
        #[arg(long, default_value_t = 60.0)]
        max_wait: f64,
        #[arg(long, default_value_t = 100)]
        size: usize,
    },
}

fn secs(s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("bad duration {s}"))
}

/// `key=value` pairs of --set / --topic-config.
fn pairs(v: &[String]) -> Result<Vec<(String, String)>> {
    v.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .with_context(|| format!("want key=value, got {p:?}"))
        })
        .collect()
}

fn label(mut v: serde_json::Value, label: &Option<String>) -> serde_json::Value {
    if let Some(obj) = v.as_object_mut() {
        obj.insert("label".into(), json!(label));
    }
    v
}

fn main() -> Result<()> {
    let args = Args::parse();
    kafka::set_extra_config(&args.config)?;
    let report = match args.cmd {
        Cmd::Physical {
            dir,
            tcp_secs,
            write_mb,
        } => {
            let tcp = physical::loopback_tcp(secs(tcp_secs)?)?;
            let bytes = (write_mb as f64 * MB) as u64;
            let write = physical::sequential_write(&dir, bytes.next_multiple_of(1 << 20))?;
            json!({
                "phase": "physical",
                "loopback_tcp_mb_per_s": (tcp / MB).round(),
                "seq_write_fdatasync_mb_per_s": (write / MB).round(),
                "write_dir": dir,
                "write_mb": write_mb,
            })
        }
        Cmd::Ready {
            addr,
            since,
            timeout,
            label: l,
        } => label(kafka::wait_ready(addr, secs(since)?, secs(timeout)?)?, &l),
        Cmd::Create { common, partitions } => label(
            kafka::create_topic(&common.brokers, &common.topic, partitions)?,
            &common.label,
        ),
        Cmd::Delete { common } => label(
            kafka::delete_topic(&common.brokers, &common.topic)?,
            &common.label,
        ),
        Cmd::Produce {
            common,
            size,
            acks,
            duration,
            max_mb,
            linger_ms,
        } => {
            if size == 0 {
                bail!("--size must be at least 1");
            }
            let o = ProduceOpts {
                brokers: common.brokers,
                topic: common.topic,
                size,
                acks,
                duration: secs(duration)?,
                max_bytes: (max_mb as f64 * MB) as u64,
                linger_ms,
                pid: common.pid,
            };
            label(kafka::produce(&o)?, &common.label)
        }
        Cmd::Consume { common, max_secs } => label(
            kafka::consume(&common.brokers, &common.topic, secs(max_secs)?, common.pid)?,
            &common.label,
        ),
        Cmd::Latency {
            common,
            size,
            acks,
            rate,
            duration,
            warmup,
            linger_ms,
        } => {
            let o = LatencyOpts {
                brokers: common.brokers,
                topic: common.topic,
                size,
                acks,
                rate,
                duration: secs(duration)?,
                warmup: secs(warmup)?,
                linger_ms,
                pid: common.pid,
            };
            label(kafka::latency(&o)?, &common.label)
        }
        Cmd::Rebalance {
            common,
            members,
            rounds,
            vanish,
            set,
        } => {
            let o = RebalanceOpts {
                brokers: common.brokers,
                topic: common.topic,
                members,
                rounds,
                vanish,
                extra: pairs(&set)?,
                pid: common.pid,
            };
            label(groups::rebalance(&o)?, &common.label)
        }
        Cmd::GroupMember {
            brokers,
            topic,
            group,
            set,
        } => {
            groups::run_member(&brokers, &topic, &group, &pairs(&set)?)?;
            return Ok(());
        }
        Cmd::Commits {
            common,
            groups: n,
            duration,
            warmup,
            interval_ms,
            group_prefix,
        } => {
            let o = CommitOpts {
                brokers: common.brokers,
                topic: common.topic,
                groups: n,
                group_prefix,
                duration: secs(duration)?,
                warmup: secs(warmup)?,
                interval: interval_ms.map(Duration::from_millis),
                pid: common.pid,
            };
            label(groups::commits(&o)?, &common.label)
        }
        Cmd::CreateReplicated {
            common,
            partitions,
            replication_factor,
            topic_config,
        } => label(
            cluster::create_replicated(
                &common.brokers,
                &common.topic,
                partitions,
                replication_factor,
                &pairs(&topic_config)?,
            )?,
            &common.label,
        ),
        Cmd::Failover {
            common,
            coord,
            partition,
            broker_pids,
            rate,
            before,
            max_wait,
            size,
        } => {
            let mut pids = BTreeMap::new();
            for (id, pid) in pairs(&broker_pids)? {
                pids.insert(
                    id.parse().context("broker id")?,
                    pid.parse().context("pid")?,
                );
            }
            let o = FailoverOpts {
                brokers: common.brokers,
                coord,
                topic: common.topic,
                partition,
                pids,
                rate,
                before: secs(before)?,
                max_wait: secs(max_wait)?,
                size,
            };
            label(cluster::failover(&o)?, &common.label)
        }
    };
    println!("{report}");
    Ok(())
}
