//! `zkbench`: pipelined ZooKeeper-protocol load generator printing one JSON line per run.

use anyhow::{bail, Context, Result};
use bench::driver::{self, Phase, Stop};
use bench::procfs;
use bench::report::{self, Resources, RunInfo};
use bench::workload::{node_set_paths, Workload};
use clap::Parser;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Drive a ZooKeeper-compatible server with N sessions x K pipelined requests and report
/// throughput and latency as one JSON line on stdout.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Connect string (host:port[,host:port...]).
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    /// What to run.
    #[arg(long, value_enum, default_value_t = Workload::Get)]
    workload: Workload,
    /// Number of client sessions (one TCP connection each).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Requests kept in flight per session (1 = synchronous client).
    #[arg(long, default_value_t = 1)]
    inflight: usize,
    /// Bytes of data per create/set.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Length of the measured phase in seconds (ignored with --ops).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Measure exactly this many requests (over all sessions) instead of a duration.
    #[arg(long)]
    ops: Option<u64>,
    /// Unmeasured warm-up phase, in seconds, running the same workload.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Size of the node set that set/get/mix touch (created before the run).
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Parent znode for everything the bench creates.
    #[arg(long, default_value = "/zkbench")]
    root: String,
    /// Server process id: report its RSS and CPU use.
    #[arg(long)]
    pid: Option<u32>,
    /// Client runtime worker threads (1 = single-threaded runtime; keeps the client cheap).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Free-form label copied into the report (e.g. "zookeeper" or "coord").
    #[arg(long)]
    label: Option<String>,
    /// Session timeout requested from the server, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    session_timeout_ms: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.sessions == 0 || args.inflight == 0 {
        bail!("--sessions and --inflight must be at least 1");
    }
    if args.workload.needs_node_set() && args.nodes == 0 {
        bail!("--nodes must be at least 1 for {}", args.workload);
    }
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("building tokio runtime")?;
    let report = runtime.block_on(run(&args))?;
    println!("{report}");
    if report["errors"].as_u64().unwrap_or(0) > 0 {
        bail!("run had errors: {}", report["first_error"]);
    }
    Ok(())
}

fn secs(s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("bad duration {s}"))
}

async fn run(args: &Args) -> Result<serde_json::Value> {
    let root = args.root.trim_end_matches('/').to_owned();
    let sessions = driver::connect_all(
        &args.server,
        args.sessions,
        Duration::from_millis(args.session_timeout_ms),
    )
    .await?;
    let first = &sessions[0].client;

    let unique = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let create_dir = format!("{root}/c{:x}{:x}", std::process::id(), unique);
    let data_dir = format!("{root}/d{}", args.value_size);
    let value = vec![b'x'; args.value_size];
    let nodes = if args.workload.needs_node_set() {
        driver::ensure_dir(first, &data_dir).await?;
        let paths = node_set_paths(&data_dir, args.nodes);
        driver::create_node_set(first, &paths, &value).await?;
        paths
    } else {
        driver::ensure_dir(first, &create_dir).await?;
        Vec::new()
    };

    let phase = Arc::new(Phase {
        workload: args.workload,
        inflight: args.inflight,
        value,
        nodes,
        create_dir,
    });

    let warmup = secs(args.warmup)?;
    let sessions = if warmup.is_zero() {
        sessions
    } else {
        let (sessions, out) =
            driver::run_phase(sessions, &phase, &Stop::At(Instant::now() + warmup)).await?;
        if out.errors > 0 {
            bail!("warm-up failed: {}", out.first_error.unwrap_or_default());
        }
        sessions
    };

    let server_pid = args.pid.map(|p| p.to_string());
    let server_cpu = |pid: &Option<String>| pid.as_deref().map(procfs::cpu_time).transpose();
    let client_cpu0 = procfs::cpu_time("self")?;
    let host_cpu0 = procfs::host_busy_time()?;
    let server_cpu0 = server_cpu(&server_pid)?;
    let start = Instant::now();
    let stop = match args.ops {
        Some(n) => Stop::Budget(Arc::new(AtomicU64::new(n))),
        None => Stop::At(start + secs(args.duration)?),
    };
    let (sessions, out) = driver::run_phase(sessions, &phase, &stop).await?;
    let elapsed = out.finished.saturating_duration_since(start);
    let resources = Resources {
        client_cpu: Some(procfs::cpu_time("self")?.saturating_sub(client_cpu0)),
        server_cpu: match (server_cpu0, server_cpu(&server_pid)?) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
        host_cpu: Some(procfs::host_busy_time()?.saturating_sub(host_cpu0)),
        server_rss_kib: args.pid.map(procfs::rss_kib).transpose()?,
    };
    driver::close_all(sessions).await;

    let info = RunInfo {
        label: args.label.clone(),
        server: args.server.clone(),
        workload: args.workload.name().to_owned(),
        sessions: args.sessions,
        inflight: args.inflight,
        value_size: args.value_size,
    };
    Ok(report::report(&info, &out, elapsed, &resources))
}
