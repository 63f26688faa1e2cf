//! Printing rows in the `--output` format a list or describe command was
//! given: a table (text), or tab-separated cells without a header (plain).
//! JSON documents are built by each command, which knows its fields.

use common::output::OutputFormat;

use super::new_table;

/// The rows as a table under `header` (text) or as tab-separated lines
/// (plain; the same cells as the table). Empty for JSON.
pub(super) fn rows(format: OutputFormat, header: &[&str], rows: &[Vec<String>]) -> String {
    match format {
        OutputFormat::Text => {
            let mut table = new_table(header);
            for row in rows {
                table.add_row(row.clone());
            }
            table.to_string()
        }
        OutputFormat::Plain => rows
            .iter()
            .map(|r| r.join("\t"))
            .collect::<Vec<_>>()
            .join("\n"),
        OutputFormat::Json => String::new(),
    }
}

/// Prints `text` with a newline, unless it is empty (a plain list of
/// nothing is no lines at all, which `wc -l` and `while read` expect).
pub(super) fn print(text: &str) {
    if !text.is_empty() {
        println!("{text}");
    }
}

/// Parses a count that must be at least 1 (`--partitions`,
/// `--replication-factor`), with a plain message for 0 and negatives.
pub(super) fn at_least_one<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
{
    let n: T = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if n < T::from(1) {
        return Err("must be >= 1".to_owned());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_is_the_table_cells_tab_separated() {
        let rows_in = [
            vec!["a".to_owned(), "1".to_owned()],
            vec!["b".to_owned(), "2".to_owned()],
        ];
        assert_eq!(
            rows(OutputFormat::Plain, &["N", "C"], &rows_in),
            "a\t1\nb\t2"
        );
        let table = rows(OutputFormat::Text, &["N", "C"], &rows_in);
        assert!(table.contains('N') && table.contains('b'), "{table}");
        assert_eq!(rows(OutputFormat::Plain, &["N"], &[]), "");
    }

    #[test]
    fn counts_must_be_positive() {
        assert_eq!(at_least_one::<i32>("3"), Ok(3));
        assert_eq!(at_least_one::<i32>("0"), Err("must be >= 1".to_owned()));
        assert_eq!(at_least_one::<i16>("-3"), Err("must be >= 1".to_owned()));
        assert!(at_least_one::<i16>("x").is_err());
        assert!(at_least_one::<i16>("40000").is_err());
    }
}
