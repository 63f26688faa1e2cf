//! The `--output` choice every list and describe command of both CLIs takes.

/// How a command prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// For people: tables and readable text (the default).
    #[default]
    #[value(alias = "table")]
    Text,
    /// One JSON document on stdout.
    Json,
    /// Tab-separated fields, no header, one row per line (as rpk and kcat).
    Plain,
}
