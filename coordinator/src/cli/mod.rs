//! The `coord` client commands (`ls`, `get`, `stat`, `create`, `set`,
//! `delete`, `watch`), built on the `zookeeper-client` crate so they work
//! against this server or any ZooKeeper. Output is readable text, JSON
//! (`--output json`) or tab-separated rows (`--output plain`); errors are one
//! line in zkCli's words and a non-zero exit.

mod errors;
mod render;
mod watch;

use std::time::Duration;

use common::output::OutputFormat;
use serde_json::json;
use zookeeper_client as zk;

use self::errors::AtPath as _;
use self::render::Data;

/// The server when neither `--server` nor `COORD_SERVER` names one.
const DEFAULT_SERVER: &str = "127.0.0.1:2181";

/// How long the reachability probe waits for a TCP connect.
const PROBE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// Options of every client command. Accepted before the command
/// (`coord --server h:1 ls /`) or after it (`coord ls / --server h:1`), and
/// not by `coord server`, whose help lists only server options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientOpts {
    /// Server to talk to: host:port[,host:port...][/chroot]
    /// [env: COORD_SERVER] [default: 127.0.0.1:2181]
    #[arg(long, value_name = "HOST:PORT")]
    server: Option<String>,
    /// Output format: text (default), json (one document), plain (tab-separated).
    #[arg(long, value_enum)]
    output: Option<OutputFormat>,
    /// Same as --output json.
    #[arg(long, hide = true)]
    json: bool,
}

impl ClientOpts {
    /// Whether any client option was given (an error for `coord server`).
    pub fn any(&self) -> bool {
        self.server.is_some() || self.output.is_some() || self.json
    }

    /// The options after the command win over those before it.
    fn merged(&self, before: &ClientOpts) -> (String, OutputFormat) {
        let server = self
            .server
            .clone()
            .or_else(|| before.server.clone())
            .or_else(|| std::env::var("COORD_SERVER").ok())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let json = (self.json || before.json).then_some(OutputFormat::Json);
        let output = self
            .output
            .or(before.output)
            .or(json)
            .unwrap_or(OutputFormat::Text);
        (server, output)
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum Op {
    /// List the children of a node.
    Ls {
        path: String,
        /// Walk the whole subtree.
        #[arg(short = 'R', long)]
        recursive: bool,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Print a node's data (and its stat with -s).
    Get {
        path: String,
        #[arg(short = 's', long)]
        stat: bool,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Print a node's stat.
    Stat {
        path: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Create a node.
    Create {
        path: String,
        #[arg(default_value = "")]
        data: String,
        /// Ephemeral: deleted when this command's session ends.
        #[arg(short = 'e', long)]
        ephemeral: bool,
        /// Sequential: a 10-digit counter is appended to the name.
        #[arg(short = 's', long)]
        sequential: bool,
        /// Container: deleted by the server once its last child is gone.
        #[arg(short = 'c', long, conflicts_with_all = ["ephemeral", "ttl"])]
        container: bool,
        /// TTL in milliseconds: deleted once unchanged and childless that long.
        #[arg(long, conflicts_with = "ephemeral")]
        ttl: Option<u64>,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Replace a node's data.
    Set {
        path: String,
        data: String,
        /// Only if the node is at this version.
        #[arg(short = 'v', long)]
        version: Option<i32>,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Delete a node (with -r, its whole subtree).
    Delete {
        path: String,
        #[arg(short = 'v', long, conflicts_with = "recursive")]
        version: Option<i32>,
        #[arg(short = 'r', long)]
        recursive: bool,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Print every change under a path until interrupted: one line per
    /// change with the node's data (JSON and text as themselves, binary as
    /// `base64:...`); with --output json, one JSON object per line.
    Watch {
        path: String,
        /// Include all descendants.
        #[arg(short = 'r', long)]
        recursive: bool,
        #[command(flatten)]
        opts: ClientOpts,
    },
}

impl Op {
    fn opts(&self) -> &ClientOpts {
        match self {
            Op::Ls { opts, .. }
            | Op::Get { opts, .. }
            | Op::Stat { opts, .. }
            | Op::Create { opts, .. }
            | Op::Set { opts, .. }
            | Op::Delete { opts, .. }
            | Op::Watch { opts, .. } => opts,
        }
    }
}

/// Runs one client command; `before` holds the options given before it.
pub fn run(before: ClientOpts, op: Op) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (server, output) = op.opts().merged(&before);
    runtime.block_on(execute(&server, output, op))
}

fn stat_fields(s: &zk::Stat) -> [(&'static str, String); 11] {
    [
        ("cZxid", format!("{:#x}", s.czxid)),
        ("ctime", s.ctime.to_string()),
        ("mZxid", format!("{:#x}", s.mzxid)),
        ("mtime", s.mtime.to_string()),
        ("pZxid", format!("{:#x}", s.pzxid)),
        ("cversion", s.cversion.to_string()),
        ("dataVersion", s.version.to_string()),
        ("aclVersion", s.aversion.to_string()),
        ("ephemeralOwner", format!("{:#x}", s.ephemeral_owner)),
        ("dataLength", s.data_length.to_string()),
        ("numChildren", s.num_children.to_string()),
    ]
}

fn stat_json(s: &zk::Stat) -> serde_json::Value {
    json!({
        "czxid": format!("{:#x}", s.czxid), "mzxid": format!("{:#x}", s.mzxid), "pzxid": format!("{:#x}", s.pzxid),
        "ctime": s.ctime, "mtime": s.mtime, "version": s.version, "cversion": s.cversion, "aversion": s.aversion,
        "ephemeralOwner": format!("{:#x}", s.ephemeral_owner), "dataLength": s.data_length, "numChildren": s.num_children,
    })
}

/// zkCli's `stat` layout (`key = value`), or `key<TAB>value` for plain.
fn stat_text(s: &zk::Stat, output: OutputFormat) -> String {
    let sep = if output == OutputFormat::Plain {
        "\t"
    } else {
        " = "
    };
    stat_fields(s)
        .iter()
        .map(|(k, v)| format!("{k}{sep}{v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Every node under `path` (itself included), parents before children.
async fn subtree(client: &zk::Client, path: &str) -> anyhow::Result<Vec<String>> {
    let mut out = vec![path.to_string()];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].clone();
        let mut children = client.list_children(&parent).await.at(&parent)?;
        children.sort();
        out.extend(children.into_iter().map(|c| join(&parent, &c)));
        i += 1;
    }
    Ok(out)
}

async fn execute(server: &str, output: OutputFormat, op: Op) -> anyhow::Result<()> {
    // A refused connection is reported now, not as a timeout later.
    coordinator::connect_string::probe(server, PROBE_PATIENCE)
        .await
        .map_err(anyhow::Error::msg)?;
    let client = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_secs(5))
        .connect(server)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to {server}: {e}"))?;
    let mut states = client.state_watcher();
    let result = execute_op(client, output, op).await;
    // The last client handle is gone: the session task sends closeSession.
    // Waiting for it (briefly) ends the session at once instead of leaving
    // it to expire on the server, which matters for frequent callers such
    // as container healthchecks.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while !states.changed().await.is_terminated() {}
    })
    .await;
    result
}

async fn execute_op(client: zk::Client, output: OutputFormat, op: Op) -> anyhow::Result<()> {
    // Text and plain differ only where a command says so.
    let print = |text: String, value: serde_json::Value| {
        if output == OutputFormat::Json {
            println!("{value}");
        } else if !text.is_empty() {
            println!("{text}");
        }
    };
    match op {
        Op::Ls {
            path, recursive, ..
        } => {
            let mut names = if recursive {
                subtree(&client, &path).await?
            } else {
                client.list_children(&path).await.at(&path)?
            };
            names.sort();
            print(names.join("\n"), json!(names));
        }
        Op::Get { path, stat, .. } => {
            let (bytes, s) = client.get_data(&path).await.at(&path)?;
            let data = Data::classify(&bytes);
            let mut value = json!({ "path": path });
            if let Some(obj) = value.as_object_mut() {
                obj.extend(data.json_fields().map(|(k, v)| (k.to_owned(), v)));
            }
            let mut out = data.to_text();
            if stat {
                value["stat"] = stat_json(&s);
                out = format!("{out}\n{}", stat_text(&s, output));
            }
            // Empty data still prints its (empty) line, as zkCli does.
            if output == OutputFormat::Json {
                println!("{value}");
            } else {
                println!("{out}");
            }
        }
        Op::Stat { path, .. } => {
            let s =
                client.check_stat(&path).await.at(&path)?.ok_or_else(|| {
                    anyhow::anyhow!(errors::zk_message(&zk::Error::NoNode, &path))
                })?;
            print(stat_text(&s, output), stat_json(&s));
        }
        Op::Create {
            path,
            data,
            ephemeral,
            sequential,
            container,
            ttl,
            ..
        } => {
            let mode = match (ephemeral, sequential, container) {
                (_, _, true) => zk::CreateMode::Container,
                (true, true, _) => zk::CreateMode::EphemeralSequential,
                (true, false, _) => zk::CreateMode::Ephemeral,
                (false, true, _) => zk::CreateMode::PersistentSequential,
                (false, false, _) => zk::CreateMode::Persistent,
            };
            let mut options = mode.with_acls(zk::Acls::anyone_all());
            if let Some(ms) = ttl {
                options = options.with_ttl(Duration::from_millis(ms));
            }
            let (s, seq) = client
                .create(&path, data.as_bytes(), &options)
                .await
                .at(&path)?;
            let created = if sequential {
                format!("{path}{seq}")
            } else {
                path
            };
            print(
                format!("Created {created}"),
                json!({ "created": created, "stat": stat_json(&s) }),
            );
        }
        Op::Set {
            path,
            data,
            version,
            ..
        } => {
            let s = client
                .set_data(&path, data.as_bytes(), version)
                .await
                .at(&path)?;
            print(stat_text(&s, output), stat_json(&s));
        }
        Op::Delete {
            path,
            version,
            recursive,
            ..
        } => {
            let doomed = if recursive {
                subtree(&client, &path).await?
            } else {
                vec![path.clone()]
            };
            for p in doomed.iter().rev() {
                client.delete(p, version).await.at(p)?;
            }
            print(
                format!("Deleted {} node(s)", doomed.len()),
                json!({ "deleted": doomed }),
            );
        }
        Op::Watch {
            path, recursive, ..
        } => {
            let mode = if recursive {
                zk::AddWatchMode::PersistentRecursive
            } else {
                zk::AddWatchMode::Persistent
            };
            let mut watcher = client.watch(&path, mode).await.at(&path)?;
            eprintln!(
                "watching {path}{} (Ctrl-C to stop)",
                if recursive { " and below" } else { "" }
            );
            let mut seen = watch::Coalescer::default();
            loop {
                let event = tokio::select! {
                    e = watcher.changed() => e,
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                };
                if event.event_type == zk::EventType::Session {
                    if event.session_state.is_terminated() {
                        anyhow::bail!("session ended: {:?}", event.session_state);
                    }
                    continue;
                }
                watch::print_event(&client, &event, output, &mut seen).await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_after_the_command_win() {
        let before = ClientOpts {
            server: Some("a:1".into()),
            json: true,
            ..ClientOpts::default()
        };
        let after = ClientOpts {
            server: Some("b:2".into()),
            output: Some(OutputFormat::Plain),
            json: false,
        };
        assert_eq!(
            after.merged(&before),
            ("b:2".to_owned(), OutputFormat::Plain)
        );
        assert_eq!(
            ClientOpts::default().merged(&before),
            ("a:1".to_owned(), OutputFormat::Json)
        );
    }
}
