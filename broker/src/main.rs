//! `broker`: the Kafka-compatible broker (`broker start`) and its client
//! CLI (`broker topic|group|produce|consume`).

mod cli;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use broker::config::{BrokerConfig, Sources};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "broker", version, about = "Kafka-compatible broker and client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the broker. Without `zookeeper.connect` (dev mode) it also runs
    /// the coordinator in-process, both on loopback, with everything under
    /// `./data/dev`.
    Start(StartArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// A Kafka `server.properties` file.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// `key=value` over the file and the `KAFKA_*` environment, as
    /// `kafka-server-start.sh --override`.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Dev mode: the embedded coordinator's port.
    #[arg(long, default_value_t = 2181)]
    coordinator_port: u16,
    /// Dev mode: where the coordinator and the logs keep their data.
    #[arg(long, default_value = "data/dev")]
    data_dir: PathBuf,
    /// Dev mode: the address the broker (unless `listeners` is set) and the
    /// coordinator listen on; `0.0.0.0` opens them to the network.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
}

fn main() -> std::process::ExitCode {
    // Errors end as one `error: ...` line, never a Debug dump with a
    // backtrace (which `RUST_BACKTRACE=1` would add).
    common::exit::report(run(Cli::parse()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Start(args) => {
            common::telemetry::init("info");
            start(args)
        }
        Command::Client(cmd) => {
            common::telemetry::init("warn");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(cli::run(cmd))
        }
    }
}

fn start(args: StartArgs) -> anyhow::Result<()> {
    let sources = Sources {
        file: args.config.clone(),
        overrides: args.overrides.clone(),
    };
    let mut config = BrokerConfig::load(&sources, std::env::vars())?;
    let dev = config.zookeeper_connect.is_none();
    if dev && !explicit(&args, "log.dirs") && !explicit(&args, "log.dir") {
        config.log_dirs = vec![args.data_dir.join("kafka-logs")];
    }
    if dev && config.broker_id < 0 {
        config.broker_id = 0;
    }
    if dev && !explicit(&args, "listeners") {
        for l in &mut config.listeners {
            l.host = args.bind.to_string();
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = common::shutdown::on_signals()?;
        // The coordinator stops after the broker, so the broker's session
        // closes cleanly and its registration goes at once.
        let coordinator_stop = tokio_util::sync::CancellationToken::new();
        let mut coordinator = None;
        if dev {
            let (addr, task) = start_coordinator(&args, coordinator_stop.clone()).await?;
            config.zookeeper_connect = Some(addr.to_string());
            coordinator = Some(task);
        }
        let listeners = broker::server::bind(&config).await?;
        let announce = |name: &str, addr| common::announce_listening("kafka", Some(name), addr);
        broker::server::run(config, listeners, shutdown.clone(), announce).await?;
        coordinator_stop.cancel();
        if let Some(task) = coordinator {
            task.await.context("coordinator task")??;
        }
        Ok(())
    })
}

/// Whether a key was set explicitly (override, file or environment), so dev
/// mode's `./data` default does not replace it.
fn explicit(args: &StartArgs, key: &str) -> bool {
    let env_key = format!("KAFKA_{}", key.to_ascii_uppercase().replace('.', "_"));
    args.overrides
        .iter()
        .any(|o| o.starts_with(&format!("{key}=")))
        || std::env::var_os(env_key).is_some()
        || args
            .config
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|t| broker::config::parse_properties(&t).contains_key(key))
}

type CoordinatorTask = tokio::task::JoinHandle<Result<(), coordinator::server::ServerError>>;

async fn start_coordinator(
    args: &StartArgs,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<(SocketAddr, CoordinatorTask)> {
    let dir = args.data_dir.join("coordinator");
    let cfg = coordinator::config::Config {
        client_port: args.coordinator_port,
        data_dir: dir.clone(),
        data_log_dir: dir,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind((args.bind, args.coordinator_port))
        .await
        .with_context(|| {
            format!(
                "binding the coordinator on {}:{}",
                args.bind, args.coordinator_port
            )
        })?;
    let bound = listener.local_addr()?;
    // The broker dials loopback when the coordinator listens everywhere.
    let addr = if bound.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], bound.port()))
    } else {
        bound
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(coordinator::server::run(
        cfg,
        listener,
        stop,
        move |bound| {
            common::announce_listening("zookeeper", None, bound);
            let _ = ready_tx.send(());
        },
    ));
    ready_rx.await.context("the coordinator did not start")?;
    Ok((addr, task))
}
