//! How the client prints znode data: JSON and UTF-8 text as the text they
//! are, anything else as base64 marked `base64:` (text) or with
//! `"encoding": "base64"` (JSON output).

use base64::Engine as _;
use serde_json::{json, Value};

/// What a znode's bytes are, decided once for every output format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data<'a> {
    Empty,
    /// A JSON object or array (what Kafka writes under `/brokers`). Scalars
    /// such as `42` stay text: calling them JSON would change how they read.
    Json {
        text: &'a str,
        value: Value,
    },
    /// UTF-8 without control characters other than tab and line breaks.
    Text(&'a str),
    Binary(&'a [u8]),
}

impl<'a> Data<'a> {
    pub(crate) fn classify(bytes: &'a [u8]) -> Self {
        if bytes.is_empty() {
            return Data::Empty;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Data::Binary(bytes);
        };
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Data::Binary(bytes);
        }
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            if let Ok(value) = serde_json::from_str::<Value>(text) {
                return Data::Json { text, value };
            }
        }
        Data::Text(text)
    }

    /// The data for a person or a shell pipe: the text itself, or
    /// `base64:<encoded>` so binary is never mistaken for text.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Data::Empty => String::new(),
            Data::Json { text, .. } | Data::Text(text) => (*text).to_owned(),
            Data::Binary(bytes) => format!("base64:{}", encode(bytes)),
        }
    }

    /// `data` and `encoding` members for JSON output: JSON data embedded as
    /// JSON, text as a string, binary as a base64 string.
    pub(crate) fn json_fields(&self) -> [(&'static str, Value); 2] {
        let (data, encoding) = match self {
            Data::Empty => (json!(""), "utf-8"),
            Data::Json { value, .. } => (value.clone(), "json"),
            Data::Text(text) => (json!(text), "utf-8"),
            Data::Binary(bytes) => (json!(encode(bytes)), "base64"),
        };
        [("data", data), ("encoding", json!(encoding))]
    }
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKER: &str = r#"{"host":"kafka1","port":9092,"endpoints":["PLAINTEXT://kafka1:9092"]}"#;

    #[test]
    fn json_prints_as_itself_not_escaped() {
        let d = Data::classify(BROKER.as_bytes());
        assert!(matches!(d, Data::Json { .. }), "{d:?}");
        assert_eq!(d.to_text(), BROKER);
        let [(_, data), (_, encoding)] = d.json_fields();
        assert_eq!(data["port"], 9092);
        assert_eq!(encoding, "json");
    }

    #[test]
    fn text_prints_as_text() {
        let d = Data::classify("héllo\nworld".as_bytes());
        assert_eq!(d, Data::Text("héllo\nworld"));
        assert_eq!(d.to_text(), "héllo\nworld");
        // A JSON scalar or broken JSON is text too.
        assert_eq!(Data::classify(b"42"), Data::Text("42"));
        assert_eq!(Data::classify(b"{not json"), Data::Text("{not json"));
        assert_eq!(Data::classify(b"").to_text(), "");
    }

    #[test]
    fn binary_is_base64_and_marked() {
        let bytes = [0u8, 1, 2, 0xff];
        let d = Data::classify(&bytes);
        assert_eq!(d, Data::Binary(&bytes));
        assert_eq!(d.to_text(), "base64:AAEC/w==");
        let [(_, data), (_, encoding)] = d.json_fields();
        assert_eq!((data, encoding), (json!("AAEC/w=="), json!("base64")));
        // Valid UTF-8 with control characters is not text either.
        assert!(matches!(Data::classify(b"a\x01b"), Data::Binary(_)));
    }
}
