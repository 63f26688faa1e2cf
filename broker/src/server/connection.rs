//! One client connection: Kafka's size-prefixed frames in, requests decoded
//! with the `kafka-protocol` crate, answered in order (Kafka's per-connection
//! guarantee). Pipelined requests are read ahead and their answers written
//! in one go. A frame that cannot be a Kafka request closes this connection
//! alone, with a log line saying why.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::{self, Broker, RequestContext};

/// Answers bigger than this are written before more requests are handled,
/// bounding the memory one connection holds.
const FLUSH_AT: usize = 1 << 20;

pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    broker: Arc<Broker>,
    stop: CancellationToken,
    // Held while the connection lives: its share of the connection limits.
    _permit: common::net::ConnectionPermit,
) {
    let span = tracing::info_span!("conn", %peer);
    async move {
        match run(stream, peer, listener, &broker, &stop).await {
            Ok(()) => tracing::debug!("connection closed"),
            Err(e) => tracing::info!(reason = %e, "connection closed"),
        }
    }
    .instrument(span)
    .await
}

/// Why a connection was closed by the broker.
#[derive(Debug, thiserror::Error)]
enum CloseReason {
    #[error("frame size {0} is negative or over socket.request.max.bytes")]
    FrameSize(i64),
    #[error("frame of {0} bytes is too short for a request header")]
    ShortFrame(usize),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("{api:?} v{version} is not supported")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode the {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("peer sent a partial frame and closed")]
    Truncated,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    broker: &Arc<Broker>,
    stop: &CancellationToken,
) -> Result<(), CloseReason> {
    let (mut rd, mut wr) = stream.into_split();
    let max = broker.config.socket_request_max_bytes;
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        while let Some(frame) = next_frame(&mut inbuf, max)? {
            let ctx = RequestContext {
                listener: listener.clone(),
                peer,
            };
            if let Some(answer) = handle(broker, &ctx, frame).await? {
                out.put_u32(u32::try_from(answer.len()).unwrap_or(u32::MAX));
                out.extend_from_slice(&answer);
                if out.len() >= FLUSH_AT {
                    wr.write_all(&out).await?;
                    out.clear();
                }
            }
        }
        if !out.is_empty() {
            wr.write_all(&out).await?;
            out.clear();
        }
        let n = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            n = rd.read_buf(&mut inbuf) => n?,
        };
        if n == 0 {
            return if inbuf.is_empty() {
                Ok(())
            } else {
                Err(CloseReason::Truncated)
            };
        }
    }
}

/// Splits one whole frame off `buf`, if there is one.
fn next_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, CloseReason> {
    common::framing::split_frame(buf, max)
        .map(|frame| frame.map(BytesMut::freeze))
        .map_err(|bad| CloseReason::FrameSize(bad.0))
}

/// Decodes, handles and encodes one request; `None` when no answer is due
/// (Produce with acks=0).
async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    mut frame: Bytes,
) -> Result<Option<Bytes>, CloseReason> {
    if frame.len() < 8 {
        return Err(CloseReason::ShortFrame(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(key).map_err(|_| CloseReason::UnknownApi(key))?;
    if !api::supports(api, version) {
        if api == ApiKey::ApiVersions {
            // Kafka answers an ApiVersions it cannot parse in v0's shape so
            // any client can read the supported ranges and retry.
            tracing::debug!(version, "ApiVersions version unknown, answering v0");
            return encode(
                api,
                0,
                correlation_id,
                &ResponseKind::ApiVersions(api::api_versions::unsupported()),
            )
            .map(Some);
        }
        return Err(CloseReason::UnsupportedVersion { api, version });
    }
    let malformed = |e: anyhow::Error| CloseReason::Malformed {
        api,
        version,
        reason: e.to_string(),
    };
    if api == ApiKey::Produce && version < 3 {
        // The codec has no Produce below v3: read and answered by hand.
        RequestHeader::decode(&mut frame, 1).map_err(malformed)?;
        let span = tracing::debug_span!("request", ?api, version, correlation_id);
        let body = api::produce_legacy::handle(broker, frame, version)
            .instrument(span)
            .await
            .map_err(malformed)?;
        let Some(body) = body else {
            return Ok(None);
        };
        let mut buf = BytesMut::with_capacity(4 + body.len());
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut buf, 0)
            .map_err(|e| CloseReason::Encode {
                api,
                version,
                reason: e.to_string(),
            })?;
        buf.extend_from_slice(&body);
        return Ok(Some(buf.freeze()));
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(malformed)?;
    let request = RequestKind::decode(api, &mut frame, version).map_err(malformed)?;
    let span = tracing::debug_span!("request", ?api, version, correlation_id);
    let response = api::handle(broker, ctx, &header, request)
        .instrument(span)
        .await;
    match response {
        Some(r) => encode(api, version, correlation_id, &r).map(Some),
        None => Ok(None),
    }
}

fn encode(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Bytes, CloseReason> {
    let fail = |e: anyhow::Error| {
        // An encode failure is our bug (a field set that the version lacks):
        // say so loudly rather than leave the client hanging.
        tracing::error!(?api, version, error = %e, "response encoding failed");
        CloseReason::Encode {
            api,
            version,
            reason: e.to_string(),
        }
    };
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api.response_header_version(version))
        .map_err(fail)?;
    response.encode(&mut buf, version).map_err(fail)?;
    Ok(buf.freeze())
}

/// Fuzzing seam (`broker/fuzz`), not an API: a broker's connections
/// without their sockets. Builds a [`Broker`] from its parts, then runs each
/// stream in `connections` (the bytes one client sends) through the frame
/// splitting and per-frame handling of [`run`], in order, reporting every
/// frame and its outcome to `each`: the answer (`None` when none is due) or
/// why the connection closes there, after which that stream stops. A stream
/// that ends inside a frame is reported as truncated with an empty frame.
#[doc(hidden)]
pub async fn fuzz_connections(
    config: crate::config::BrokerConfig,
    cluster: crate::cluster::Cluster,
    logs: Arc<crate::log::LogManager>,
    replicas: Arc<crate::replication::Replicas>,
    connections: Vec<Vec<u8>>,
    mut each: impl FnMut(usize, &Bytes, Result<Option<Bytes>, String>),
) {
    let groups =
        crate::group::GroupService::start(config.group, cluster.clone(), CancellationToken::new());
    let broker = Arc::new(Broker::new(config, cluster, logs, replicas, groups));
    let ctx = RequestContext {
        listener: "PLAINTEXT".into(),
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
    };
    let max = broker.config.socket_request_max_bytes;
    for (conn, stream) in connections.into_iter().enumerate() {
        let mut inbuf = BytesMut::from(&stream[..]);
        loop {
            match next_frame(&mut inbuf, max) {
                Ok(Some(frame)) => {
                    let outcome = handle(&broker, &ctx, frame.clone()).await;
                    let closes = outcome.is_err();
                    each(conn, &frame, outcome.map_err(|e| e.to_string()));
                    if closes {
                        break;
                    }
                }
                Ok(None) => {
                    if !inbuf.is_empty() {
                        each(conn, &Bytes::new(), Err(CloseReason::Truncated.to_string()));
                    }
                    break;
                }
                Err(e) => {
                    each(conn, &Bytes::new(), Err(e.to_string()));
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::ApiVersionsResponse;

    #[test]
    fn frames_split_and_wait_for_more() {
        let mut buf = BytesMut::new();
        buf.put_i32(3);
        buf.put_slice(b"ab");
        assert!(next_frame(&mut buf, 100).expect("ok").is_none());
        buf.put_slice(b"c");
        buf.put_i32(0);
        assert_eq!(
            next_frame(&mut buf, 100).expect("ok").as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(
            next_frame(&mut buf, 100).expect("ok").as_deref(),
            Some(&b""[..])
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_and_negative_frames_close() {
        let mut buf = BytesMut::new();
        buf.put_i32(101);
        assert!(matches!(
            next_frame(&mut buf, 100),
            Err(CloseReason::FrameSize(101))
        ));
        let mut buf = BytesMut::new();
        buf.put_i32(-1);
        assert!(matches!(
            next_frame(&mut buf, 100),
            Err(CloseReason::FrameSize(-1))
        ));
    }

    #[test]
    fn unknown_api_versions_get_the_v0_shape() {
        let bytes = encode(
            ApiKey::ApiVersions,
            0,
            7,
            &ResponseKind::ApiVersions(api::api_versions::unsupported()),
        )
        .expect("encode");
        let mut b = bytes.clone();
        assert_eq!(b.get_i32(), 7);
        let r = ApiVersionsResponse::decode(&mut b, 0).expect("decode v0");
        assert_eq!(r.error_code, 35);
        assert!(r
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16));
    }
}
