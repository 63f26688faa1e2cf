//! kcat-style output format strings (`-f '%t [%p] at %o: %k=%s\n'`): parsing and rendering.

use broker::client::Record;

/// One piece of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    /// `%t`
    Topic,
    /// `%p`
    Partition,
    /// `%o`
    Offset,
    /// `%k`
    Key,
    /// `%s`
    Value,
    /// `%K`: key length, -1 for a null key.
    KeyLen,
    /// `%S`: value length, -1 for a null value.
    ValueLen,
    /// `%T`: timestamp in ms.
    Timestamp,
    /// `%h`: headers as `k=v,k2=v2`.
    Headers,
}

/// A parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Format(Vec<Token>);

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            let token = match c {
                '%' => match chars.next() {
                    Some('t') => Token::Topic,
                    Some('p') => Token::Partition,
                    Some('o') => Token::Offset,
                    Some('k') => Token::Key,
                    Some('s') => Token::Value,
                    Some('K') => Token::KeyLen,
                    Some('S') => Token::ValueLen,
                    Some('T') => Token::Timestamp,
                    Some('h') => Token::Headers,
                    Some('%') => {
                        literal.push(b'%');
                        continue;
                    }
                    Some(other) => return Err(format!("unsupported formatter %{other}")),
                    None => return Err("format ends with a lone %".to_owned()),
                },
                // Shells do not turn `\n` into a newline inside quotes, so we do, like kcat.
                '\\' => {
                    let escaped = match chars.next() {
                        Some('n') => "\n".to_owned(),
                        Some('t') => "\t".to_owned(),
                        Some('r') => "\r".to_owned(),
                        Some('0') => "\0".to_owned(),
                        Some('\\') => "\\".to_owned(),
                        Some(other) => format!("\\{other}"),
                        None => "\\".to_owned(),
                    };
                    literal.extend_from_slice(escaped.as_bytes());
                    continue;
                }
                other => {
                    let mut buf = [0u8; 4];
                    literal.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(token);
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(Format(tokens))
    }
}

impl Format {
    /// Appends `record` of `topic`-`partition`, formatted, to `out`.
    pub(crate) fn render(&self, topic: &str, partition: i32, record: &Record, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
        for token in &self.0 {
            // Writing into a Vec cannot fail.
            let _ = match token {
                Token::Literal(bytes) => out.write_all(bytes),
                Token::Topic => out.write_all(topic.as_bytes()),
                Token::Partition => write!(out, "{partition}"),
                Token::Offset => write!(out, "{}", record.offset),
                Token::Key => out.write_all(record.key.as_deref().unwrap_or_default()),
                Token::Value => out.write_all(record.value.as_deref().unwrap_or_default()),
                Token::KeyLen => write!(out, "{}", len(&record.key)),
                Token::ValueLen => write!(out, "{}", len(&record.value)),
                Token::Timestamp => write!(out, "{}", record.timestamp),
                Token::Headers => {
                    for (i, (name, value)) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(name.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(value.as_deref().unwrap_or_default());
                    }
                    Ok(())
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record() -> Record {
        let mut headers = indexmap::IndexMap::new();
        headers.insert("a".into(), Some(Bytes::from_static(b"1")));
        headers.insert("b".into(), None);
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: 42,
            sequence: -1,
            timestamp: 1_700_000_000_123,
            key: Some(Bytes::from_static(b"user-1")),
            value: Some(Bytes::from_static(b"hello")),
            headers,
        }
    }

    fn render(format: &str, record: &Record) -> String {
        let format: Format = format.parse().expect("valid format");
        let mut out = Vec::new();
        format.render("orders", 3, record, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn renders_every_token() {
        assert_eq!(
            render("%t [%p] @%o %T: %k=%s (%K/%S) {%h} 100%%\\n", &record()),
            "orders [3] @42 1700000000123: user-1=hello (6/5) {a=1,b=} 100%\n"
        );
    }

    #[test]
    fn default_format_is_the_value_and_a_newline() {
        assert_eq!(render("%s\\n", &record()), "hello\n");
        assert_eq!(render("%s\n", &record()), "hello\n");
    }

    #[test]
    fn null_key_and_value_render_empty_with_length_minus_one() {
        let mut r = record();
        r.key = None;
        r.value = None;
        r.headers.clear();
        assert_eq!(render("[%k][%s][%K][%S][%h]\\t.", &r), "[][][-1][-1][]\t.");
    }

    #[test]
    fn rejects_unknown_and_dangling_formatters() {
        assert!("%x".parse::<Format>().is_err());
        assert!("abc%".parse::<Format>().is_err());
    }

    #[test]
    fn unknown_escapes_stay_literal() {
        assert_eq!(render("\\q%s\\", &record()), "\\qhello\\");
    }
}
