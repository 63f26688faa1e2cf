//! How a command-line binary ends on an error: one `error: ...` line on
//! stderr and exit code 1.
//!
//! Returning an `anyhow::Error` from `main` prints its `Debug` form instead,
//! which adds a stack backtrace whenever `RUST_BACKTRACE` is set: noise for a
//! user who typed a wrong path or a dead address.

use std::error::Error;
use std::process::ExitCode;

/// Prints `error: <message>` (see [`message`]) and returns exit code 1;
/// `Ok` is success. Takes `anyhow::Error` and any boxed error.
pub fn report<E>(result: Result<(), E>) -> ExitCode
where
    E: AsRef<dyn Error + Send + Sync + 'static>,
{
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, as anyhow's `{:#}` does, but
/// nothing is said twice: many errors put their source in their own message
/// (`cannot read x: {source}`) and also return it from `source()`, and a
/// context often repeats what the error under it already says (`topic t`
/// over `topic t: UNKNOWN_TOPIC_OR_PARTITION`). A cause already said is left
/// out; a cause that contains the part before it replaces that part.
pub fn message(error: &(dyn Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        let said = parts.iter().any(|p| p.contains(&text));
        if !text.is_empty() && !said {
            match parts.last_mut() {
                Some(last) if text.contains(last.as_str()) => *last = text,
                _ => parts.push(text),
            }
        }
        cause = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Chain {
        text: &'static str,
        source: Option<Box<Chain>>,
    }

    impl std::fmt::Display for Chain {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.text)
        }
    }

    impl Error for Chain {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.source.as_deref().map(|s| s as &(dyn Error + 'static))
        }
    }

    fn chain(texts: &[&'static str]) -> Chain {
        let (first, rest) = texts.split_first().expect("one at least");
        Chain {
            text: first,
            source: (!rest.is_empty()).then(|| Box::new(chain(rest))),
        }
    }

    #[test]
    fn causes_are_joined() {
        let e = chain(&["bootstrap", "cannot connect to h:1", "Connection refused"]);
        assert_eq!(
            message(&e),
            "bootstrap: cannot connect to h:1: Connection refused"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let e = chain(&["cannot read /x: No such file", "No such file"]);
        assert_eq!(message(&e), "cannot read /x: No such file");
        let e = chain(&["broker id: io: gone", "io: gone", "gone"]);
        assert_eq!(message(&e), "broker id: io: gone");
    }

    #[test]
    fn a_context_the_cause_repeats_gives_way_to_it() {
        let e = chain(&["topic t", "topic t: UNKNOWN_TOPIC_OR_PARTITION (3)"]);
        assert_eq!(message(&e), "topic t: UNKNOWN_TOPIC_OR_PARTITION (3)");
        let e = chain(&["run", "configs of t", "describe configs of t: X"]);
        assert_eq!(message(&e), "run: describe configs of t: X");
    }
}
