//! The client's one error type, and the mapping from Kafka error codes to their names.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `host:port` could not be parsed or resolved.
    #[error("bad broker address {addr:?}")]
    BadAddress { addr: String },
    /// The TCP connection could not be opened (or timed out).
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing an open connection failed.
    #[error("i/o error talking to {addr}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The broker closed the connection while we waited for a response.
    #[error("{addr} closed the connection")]
    Closed { addr: String },
    /// A response frame announced an impossible size.
    #[error("{addr} sent a frame of {size} bytes (limit {limit})")]
    FrameSize {
        addr: String,
        size: i64,
        limit: usize,
    },
    /// The response did not answer the request we sent.
    #[error("{addr} answered correlation id {got}, expected {sent}")]
    CorrelationMismatch { addr: String, sent: i32, got: i32 },
    /// The broker and this client share no version of an API.
    #[error("{addr} supports no version of {api:?} that this client can send")]
    UnsupportedApi { addr: String, api: ApiKey },
    /// kafka-protocol refused to encode a request.
    #[error("cannot encode {api:?} v{version}")]
    Encode {
        api: ApiKey,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A response did not decode.
    #[error("cannot decode {api:?} v{version} response")]
    Decode {
        api: ApiKey,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Records could not be encoded into, or decoded from, a record batch.
    #[error("bad record batch")]
    Records {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The broker answered with a Kafka error code.
    #[error("{context}: {} ({}){}", kafka_error_name(*.error), .error.code(),
        .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// What was being done, e.g. `create topic orders`.
        context: String,
        error: ResponseError,
        /// The broker's own error message, when the API has one.
        message: Option<String>,
    },
    /// The metadata has no usable leader for a partition.
    #[error("no leader for {topic}-{partition}")]
    NoLeader { topic: String, partition: i32 },
    /// The metadata names a broker id that it does not describe.
    #[error("metadata names unknown broker {0}")]
    UnknownBroker(i32),
    /// A response lacked the entry for something the request asked about.
    #[error("response has no entry for {0}")]
    MissingEntry(String),
}

impl ClientError {
    /// The Kafka error carried by this error, if it is one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            ClientError::Kafka { error, .. } => Some(*error),
            _ => None,
        }
    }
}

/// Turns a response's error code into `Ok(())` or a [`ClientError::Kafka`].
pub(crate) fn check(
    code: i16,
    context: impl FnOnce() -> String,
    message: Option<&str>,
) -> Result<(), ClientError> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => Err(ClientError::Kafka {
            context: context(),
            error,
            message: message.map(str::to_owned),
        }),
    }
}

/// Kafka's own spelling of an error (`UNKNOWN_TOPIC_OR_PARTITION`), as its tools print it.
///
/// kafka-protocol names the variants in CamelCase; Kafka's `Errors.java` uses the
/// SCREAMING_SNAKE form, which is what users search for.
pub fn kafka_error_name(error: ResponseError) -> String {
    if let ResponseError::Unknown(code) = error {
        return format!("UNKNOWN_ERROR_CODE_{code}");
    }
    let camel = format!("{error:?}");
    let mut name = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_kafka() {
        assert_eq!(
            kafka_error_name(ResponseError::UnknownTopicOrPartition),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            kafka_error_name(ResponseError::TopicAlreadyExists),
            "TOPIC_ALREADY_EXISTS"
        );
        assert_eq!(
            kafka_error_name(ResponseError::Unknown(999)),
            "UNKNOWN_ERROR_CODE_999"
        );
    }

    #[test]
    fn check_maps_codes() {
        assert!(check(0, || "x".into(), None).is_ok());
        let err =
            check(36, || "create topic t".into(), Some("exists")).expect_err("36 is an error");
        assert_eq!(
            err.to_string(),
            "create topic t: TOPIC_ALREADY_EXISTS (36): exists"
        );
        assert_eq!(err.kafka_error(), Some(ResponseError::TopicAlreadyExists));
    }
}
