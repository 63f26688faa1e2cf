//! `coord`: `coord server` runs the coordinator; the other subcommands are a
//! command-line client for it (or for any ZooKeeper server).

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use coordinator::config::{Config, ServerArgs};

mod cli;

#[derive(Debug, Parser)]
#[command(
    name = "coord",
    version,
    about = "A ZooKeeper-compatible coordination service"
)]
struct Cli {
    /// Client options may also come before the command.
    #[command(flatten)]
    client: cli::ClientOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run the coordinator.
    Server(ServerArgs),
    #[command(flatten)]
    Client(cli::Op),
}

fn main() -> std::process::ExitCode {
    // Errors end as one `error: ...` line, never a Debug dump with a
    // backtrace (which `RUST_BACKTRACE=1` would add).
    common::exit::report(run(Cli::parse()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Server(args) => {
            if cli.client.any() {
                anyhow::bail!("--server, --output and --json are client options, not server ones");
            }
            common::telemetry::init("info");
            serve(args)
        }
        Command::Client(op) => {
            // The client library logs each failed connection attempt; the
            // command reports the outcome itself, once.
            common::telemetry::init("warn,zookeeper_client=error");
            cli::run(cli.client, op)
        }
    }
}
fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let ip = cfg.client_port_address.unwrap_or([0, 0, 0, 0].into());
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, cfg.client_port))
            .await
            .with_context(|| format!("binding {ip}:{}", cfg.client_port))?;
        let shutdown = common::shutdown::on_signals()?;
        let announce = |addr| common::announce_listening("zookeeper", None, addr);
        coordinator::server::run(cfg, listener, shutdown, announce).await?;
        Ok(())
    })
}
