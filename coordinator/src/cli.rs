//! The `coord` client commands (`ls`, `get`, `stat`, `create`, `set`,
//! `delete`, `watch`), built on the `zookeeper-client` crate so they work
//! against this server or any ZooKeeper. Output is readable text, or one JSON
//! object per line with `--json`; errors are one line and a non-zero exit.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use zookeeper_client as zk;

#[derive(Debug, clap::Args)]
pub struct Global {
    /// Server to talk to.
    #[arg(
        long,
        global = true,
        default_value = "127.0.0.1:2181",
        env = "COORD_SERVER"
    )]
    server: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum Op {
    /// List the children of a node.
    Ls {
        path: String,
        /// Walk the whole subtree.
        #[arg(short = 'R', long)]
        recursive: bool,
    },
    /// Print a node's data (and its stat with -s).
    Get {
        path: String,
        #[arg(short = 's', long)]
        stat: bool,
    },
    /// Print a node's stat.
    Stat { path: String },
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
    },
    /// Replace a node's data.
    Set {
        path: String,
        data: String,
        /// Only if the node is at this version.
        #[arg(short = 'v', long)]
        version: Option<i32>,
    },
    /// Delete a node (with -r, its whole subtree).
    Delete {
        path: String,
        #[arg(short = 'v', long, conflicts_with = "recursive")]
        version: Option<i32>,
        #[arg(short = 'r', long)]
        recursive: bool,
    },
    /// Print every change under a path until interrupted.
    Watch {
        path: String,
        /// Include all descendants.
        #[arg(short = 'r', long)]
        recursive: bool,
    },
}

/// Runs one client command; an error is printed as one line and exits 1.
pub fn run(global: Global, op: Op) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Err(e) = runtime.block_on(execute(global, op)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

fn stat_json(s: &zk::Stat) -> serde_json::Value {
    json!({
        "czxid": format!("{:#x}", s.czxid), "mzxid": format!("{:#x}", s.mzxid), "pzxid": format!("{:#x}", s.pzxid),
        "ctime": s.ctime, "mtime": s.mtime, "version": s.version, "cversion": s.cversion, "aversion": s.aversion,
        "ephemeralOwner": format!("{:#x}", s.ephemeral_owner), "dataLength": s.data_length, "numChildren": s.num_children,
    })
}

fn stat_text(s: &zk::Stat) -> String {
    format!(
        "cZxid = {:#x}\nctime = {}\nmZxid = {:#x}\nmtime = {}\npZxid = {:#x}\ncversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = {:#x}\ndataLength = {}\nnumChildren = {}",
        s.czxid, s.ctime, s.mzxid, s.mtime, s.pzxid, s.cversion, s.version, s.aversion, s.ephemeral_owner, s.data_length, s.num_children
    )
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
        let mut children = client
            .list_children(&out[i])
            .await
            .with_context(|| out[i].clone())?;
        children.sort();
        let parent = out[i].clone();
        out.extend(children.into_iter().map(|c| join(&parent, &c)));
        i += 1;
    }
    Ok(out)
}

async fn execute(g: Global, op: Op) -> anyhow::Result<()> {
    let client = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_secs(5))
        .connect(&g.server)
        .await
        .with_context(|| format!("cannot connect to {}", g.server))?;
    let mut states = client.state_watcher();
    let result = execute_op(client, g, op).await;
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

async fn execute_op(client: zk::Client, g: Global, op: Op) -> anyhow::Result<()> {
    let print = |text: String, value: serde_json::Value| {
        if g.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    };
    match op {
        Op::Ls { path, recursive } => {
            let mut names = if recursive {
                subtree(&client, &path).await?
            } else {
                client
                    .list_children(&path)
                    .await
                    .with_context(|| path.clone())?
            };
            names.sort();
            print(names.join("\n"), json!(names));
        }
        Op::Get { path, stat } => {
            let (data, s) = client.get_data(&path).await.with_context(|| path.clone())?;
            let text = String::from_utf8_lossy(&data).into_owned();
            let mut value = json!({ "path": path, "data": text });
            let mut out = text;
            if stat {
                value["stat"] = stat_json(&s);
                out = format!("{out}\n{}", stat_text(&s));
            }
            print(out, value);
        }
        Op::Stat { path } => {
            let s = client
                .check_stat(&path)
                .await
                .with_context(|| path.clone())?;
            let s = s.ok_or_else(|| anyhow::anyhow!("{path}: no node"))?;
            print(stat_text(&s), stat_json(&s));
        }
        Op::Create {
            path,
            data,
            ephemeral,
            sequential,
            container,
            ttl,
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
                .with_context(|| path.clone())?;
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
        } => {
            let s = client
                .set_data(&path, data.as_bytes(), version)
                .await
                .with_context(|| path.clone())?;
            print(stat_text(&s), stat_json(&s));
        }
        Op::Delete {
            path,
            version,
            recursive,
        } => {
            let doomed = if recursive {
                subtree(&client, &path).await?
            } else {
                vec![path.clone()]
            };
            for p in doomed.iter().rev() {
                client.delete(p, version).await.with_context(|| p.clone())?;
            }
            print(
                format!("Deleted {} node(s)", doomed.len()),
                json!({ "deleted": doomed }),
            );
        }
        Op::Watch { path, recursive } => {
            let mode = if recursive {
                zk::AddWatchMode::PersistentRecursive
            } else {
                zk::AddWatchMode::Persistent
            };
            let mut watcher = client
                .watch(&path, mode)
                .await
                .with_context(|| path.clone())?;
            eprintln!(
                "watching {path}{} (Ctrl-C to stop)",
                if recursive { " and below" } else { "" }
            );
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
                print_event(&client, &event, g.json).await;
            }
        }
    }
    Ok(())
}

/// One line per event, with the node's new data or children when it has them.
async fn print_event(client: &zk::Client, event: &zk::WatchedEvent, as_json: bool) {
    let (kind, detail) = match event.event_type {
        zk::EventType::NodeCreated | zk::EventType::NodeDataChanged => {
            let data = client
                .get_data(&event.path)
                .await
                .ok()
                .map(|(d, _)| String::from_utf8_lossy(&d).into_owned());
            let kind = if event.event_type == zk::EventType::NodeCreated {
                "created"
            } else {
                "changed"
            };
            (kind, data.map(|d| json!({ "data": d })))
        }
        zk::EventType::NodeChildrenChanged => {
            let mut children = client.list_children(&event.path).await.unwrap_or_default();
            children.sort();
            ("children", Some(json!({ "children": children })))
        }
        zk::EventType::NodeDeleted => ("deleted", None),
        zk::EventType::Session => ("session", None),
    };
    if as_json {
        let mut value =
            json!({ "event": kind, "path": event.path, "zxid": format!("{:#x}", event.zxid) });
        if let Some(serde_json::Value::Object(extra)) = detail {
            if let Some(obj) = value.as_object_mut() {
                obj.extend(extra);
            }
        }
        println!("{value}");
    } else {
        let extra = detail.map(|d| format!(" {d}")).unwrap_or_default();
        println!("{kind} {}{extra}", event.path);
    }
}
