//! One TCP connection to one broker: length-prefixed frames, correlation ids, and the
//! ApiVersions handshake that decides which version of each API we send.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, HeaderVersion, Request, StrBytes,
};
use kafka_protocol::ResponseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::error::ClientError;

/// The `client_id` every request carries, so broker logs show who asked.
const CLIENT_ID: &str = "broker-cli";

/// Responses above this are refused rather than allocated: fetches ask for at most
/// tens of MiB, so a bigger length prefix means a broken stream.
const MAX_FRAME: usize = 256 * 1024 * 1024;

/// How long opening a TCP connection may take before we give up on that broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The ApiVersions version we try first; a broker that does not know it answers
/// UNSUPPORTED_VERSION in the v0 shape, and we retry with v0.
const API_VERSIONS_FIRST: i16 = 3;

/// A connection with its negotiated API version ranges.
#[derive(Debug)]
pub struct Connection {
    /// The `host:port` we dialled, for error messages.
    addr: String,
    stream: BufReader<TcpStream>,
    /// Incremented per request; responses must echo it.
    next_correlation_id: i32,
    /// The broker's advertised `(min, max)` per API key, from ApiVersions.
    broker_versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects to `addr` (`host:port`) and runs the ApiVersions handshake.
    pub async fn connect(addr: &str) -> Result<Self, ClientError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|elapsed| ClientError::Connect {
                addr: addr.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, elapsed),
            })?
            .map_err(|source| ClientError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        // Requests are written whole, so Nagle would only add latency.
        stream.set_nodelay(true).map_err(|source| ClientError::Io {
            addr: addr.to_owned(),
            source,
        })?;
        let mut conn = Connection {
            addr: addr.to_owned(),
            stream: BufReader::new(stream),
            next_correlation_id: 0,
            broker_versions: HashMap::new(),
        };
        conn.negotiate().await?;
        Ok(conn)
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn negotiate(&mut self) -> Result<(), ClientError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let body = self.round_trip(API_VERSIONS_FIRST, &request).await?;
        // A broker that does not know our version answers in the v0 shape (Java's client
        // falls back the same way), so a failed or UNSUPPORTED_VERSION decode is retried as v0.
        let response = match ApiVersionsResponse::decode(&mut body.clone(), API_VERSIONS_FIRST) {
            Ok(r) if r.error_code != ResponseError::UnsupportedVersion.code() => r,
            _ => self.send(0, &ApiVersionsRequest::default()).await?,
        };
        super::error::check(response.error_code, || "api versions".to_owned(), None)?;
        self.broker_versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// The highest version of `R` that the broker, kafka-protocol and the caller (which
    /// knows how to fill the request up to `known`) all support.
    pub fn version<R: Request>(&self, known: RangeInclusive<i16>) -> Result<i16, ClientError> {
        let api = api_key::<R>();
        let crate_range = api.valid_versions();
        let (broker_min, broker_max) =
            self.broker_versions.get(&R::KEY).copied().ok_or_else(|| {
                ClientError::UnsupportedApi {
                    addr: self.addr.clone(),
                    api,
                }
            })?;
        let min = broker_min.max(crate_range.min).max(*known.start());
        let max = broker_max.min(crate_range.max).min(*known.end());
        if min > max {
            return Err(ClientError::UnsupportedApi {
                addr: self.addr.clone(),
                api,
            });
        }
        Ok(max)
    }

    /// Sends `request` at `version` and waits for its response.
    pub async fn send<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, ClientError> {
        let mut body = self.round_trip(version, request).await?;
        R::Response::decode(&mut body, version).map_err(|source| ClientError::Decode {
            api: api_key::<R>(),
            version,
            source: source.into(),
        })
    }

    /// Sends `request` and returns the body of its response, after the header.
    async fn round_trip<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<Bytes, ClientError> {
        let sent = self.write_request(version, request).await?;
        let mut frame = self.read_frame().await?;
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))
            .map_err(|source| ClientError::Decode {
                api: api_key::<R>(),
                version,
                source: source.into(),
            })?;
        if header.correlation_id != sent {
            return Err(ClientError::CorrelationMismatch {
                addr: self.addr.clone(),
                sent,
                got: header.correlation_id,
            });
        }
        Ok(frame)
    }

    /// Sends `request` without waiting: for Produce with acks=0, which gets no response.
    pub async fn send_only<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<(), ClientError> {
        self.write_request(version, request).await.map(drop)
    }

    /// Writes one framed request and returns its correlation id.
    async fn write_request<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<i32, ClientError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let api = api_key::<R>();
        let encode_err = |source: anyhow::Error| ClientError::Encode {
            api,
            version,
            source: source.into(),
        };
        let mut buf = BytesMut::new();
        // Placeholder for the length prefix, filled in once the body is encoded.
        buf.put_i32(0);
        encode_request_header_into_buffer(&mut buf, &header).map_err(encode_err)?;
        request.encode(&mut buf, version).map_err(encode_err)?;
        let body_len = i32::try_from(buf.len() - 4).map_err(|_| ClientError::FrameSize {
            addr: self.addr.clone(),
            size: buf.len() as i64,
            limit: MAX_FRAME,
        })?;
        buf[..4].copy_from_slice(&body_len.to_be_bytes());
        let stream = self.stream.get_mut();
        stream
            .write_all(&buf)
            .await
            .map_err(|source| ClientError::Io {
                addr: self.addr.clone(),
                source,
            })?;
        Ok(correlation_id)
    }

    async fn read_frame(&mut self) -> Result<Bytes, ClientError> {
        let mut len = [0u8; 4];
        self.read_exact(&mut len).await?;
        let size = i32::from_be_bytes(len);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_FRAME)
            .ok_or_else(|| ClientError::FrameSize {
                addr: self.addr.clone(),
                size: i64::from(size),
                limit: MAX_FRAME,
            })?;
        let mut frame = BytesMut::zeroed(size);
        self.read_exact(&mut frame).await?;
        Ok(frame.freeze())
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ClientError> {
        match self.stream.read_exact(buf).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ClientError::Closed {
                addr: self.addr.clone(),
            }),
            Err(source) => Err(ClientError::Io {
                addr: self.addr.clone(),
                source,
            }),
        }
    }
}

/// The `ApiKey` of a request type; every generated request has a valid key.
fn api_key<R: Request>() -> ApiKey {
    // `R::KEY` comes from the same generated table as `ApiKey`, so this cannot fail;
    // ApiVersions is only a harmless label for the impossible case.
    ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions)
}
