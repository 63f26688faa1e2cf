//! The client side of the `broker` binary: `broker topic|produce|consume|group ...`, talking to
//! any Kafka-compatible broker through [`broker::client`].

mod consume;
mod format;
mod group;
mod output;
mod produce;
mod topic;

/// Client subcommands; the binary's own parser embeds these.
#[derive(clap::Subcommand, Debug)]
pub enum ClientCommand {
    /// Create, list, describe, alter and delete topics.
    Topic(topic::TopicArgs),
    /// Send lines from stdin to a topic, one record per line.
    Produce(produce::ProduceArgs),
    /// Print records of a topic to stdout.
    Consume(consume::ConsumeArgs),
    /// List, describe (with lag), delete consumer groups and reset their offsets.
    Group(group::GroupArgs),
}

/// Where to reach the cluster; every client subcommand takes it.
#[derive(clap::Args, Debug)]
pub(crate) struct ConnectArgs {
    /// Broker(s) to bootstrap from: host:port[,host:port...].
    #[arg(
        long,
        short = 'b',
        env = "BOOTSTRAP_SERVER",
        default_value = "localhost:9092",
        global = true
    )]
    bootstrap_server: String,
}

impl ConnectArgs {
    async fn connect(&self) -> anyhow::Result<broker::client::Client> {
        use broker::client::ClientError;
        match broker::client::Client::connect(&self.bootstrap_server).await {
            Ok(client) => Ok(client),
            // These name the address already: said once is enough.
            Err(
                e @ (ClientError::Connect { .. }
                | ClientError::BadAddress { .. }
                | ClientError::Io { .. }
                | ClientError::Closed { .. }),
            ) => Err(e.into()),
            Err(e) => {
                Err(anyhow::Error::new(e)
                    .context(format!("bootstrap from {}", self.bootstrap_server)))
            }
        }
    }
}

/// Runs one client subcommand to completion.
pub async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Topic(args) => topic::run(args).await,
        ClientCommand::Produce(args) => produce::run(args).await,
        ClientCommand::Consume(args) => consume::run(args).await,
        ClientCommand::Group(args) => group::run(args).await,
    }
}

/// A table in the style every client subcommand prints.
fn new_table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(header.iter().copied());
    table
}

/// Parses `key=value` (split at the first `=`), for `--config` and `--header`.
fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// Stands in for the binary's parser, which embeds [`ClientCommand`].
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: ClientCommand,
    }

    pub(super) fn parse(args: &[&str]) -> Result<ClientCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("broker").chain(args.iter().copied())).map(|c| c.cmd)
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bootstrap_server_defaults_and_is_accepted_anywhere() {
        // Only this test touches BOOTSTRAP_SERVER's absence; no test sets it.
        let ClientCommand::Topic(args) = parse(&["topic", "list"]).expect("parses") else {
            panic!("not topic");
        };
        if std::env::var_os("BOOTSTRAP_SERVER").is_none() {
            assert_eq!(args.conn.bootstrap_server, "localhost:9092");
        }
        let ClientCommand::Topic(args) =
            parse(&["topic", "list", "--bootstrap-server", "h:1"]).expect("parses")
        else {
            panic!("not topic");
        };
        assert_eq!(args.conn.bootstrap_server, "h:1");
        let ClientCommand::Produce(args) = parse(&["produce", "-b", "h:2", "t"]).expect("parses")
        else {
            panic!("not produce");
        };
        assert_eq!(args.conn.bootstrap_server, "h:2");
    }

    #[test]
    fn key_value_splits_at_the_first_equals() {
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_owned(), "b=c".to_owned()))
        );
        assert_eq!(parse_key_value("a="), Ok(("a".to_owned(), String::new())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }
}
