//! Produce v0-v2, which `kafka-protocol` no longer decodes: the request and
//! answer shapes by hand; each partition's legacy message set is converted
//! to one magic-2 batch by `log::legacy` and appended as Produce v3+ is.

use std::sync::Arc;

use anyhow::Context;
use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::produce;
use super::Broker;
use crate::log::legacy::{to_batch, SetError};

/// Answers one Produce v0-v2 request (`body` follows the request header);
/// `None` for acks=0. An error means the request itself is malformed and
/// the connection should close.
pub async fn handle(
    broker: &Arc<Broker>,
    body: Bytes,
    version: i16,
) -> anyhow::Result<Option<Bytes>> {
    let request = Request::decode(body)?;
    let now = crate::now_ms();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (index, set) in topic.partitions {
            let outcome = produce::leader(broker, name, index, request.acks).and_then(|replica| {
                let batch = to_batch(set).map_err(|e| {
                    if matches!(e, SetError::Encode(_)) {
                        tracing::error!(topic = name, partition = index, error = %e, "conversion failed");
                    }
                    (e.code(), e.to_string())
                })?;
                produce::append(&replica, name, index, &batch, now).map(|(info, _)| info)
            });
            let mut r = PartitionResult {
                index,
                error_code: 0,
                base_offset: -1,
                log_append_time: -1,
            };
            match outcome {
                Ok(info) => {
                    r.base_offset = info.base_offset;
                    r.log_append_time = info.log_append_time;
                }
                Err((code, message)) => {
                    tracing::debug!(
                        topic = name,
                        partition = index,
                        code,
                        message,
                        "legacy produce refused"
                    );
                    r.error_code = code;
                }
            }
            partitions.push(r);
        }
        topics.push((topic.name, partitions));
    }
    if request.acks == 0 {
        return Ok(None);
    }
    Ok(Some(encode_response(version, &topics)))
}

/// The fields v0-v2 share: v1 only adds throttle time to the answer, v2
/// the log-append time.
#[derive(Debug)]
struct Request {
    acks: i16,
    topics: Vec<TopicData>,
}

#[derive(Debug)]
struct TopicData {
    name: String,
    /// (partition, message set bytes)
    partitions: Vec<(i32, Bytes)>,
}

impl Request {
    fn decode(mut buf: Bytes) -> anyhow::Result<Request> {
        let acks = buf.try_get_i16().context("acks")?;
        // The append is synchronous with one replica: nothing waits out a timeout.
        let _timeout_ms = buf.try_get_i32().context("timeout_ms")?;
        // Counts come from the wire: no capacity is reserved from them.
        let mut topics = Vec::new();
        for _ in 0..array_len(&mut buf, "topics")? {
            let len = buf.try_get_i16().context("topic name length")?;
            let len = usize::try_from(len)
                .ok()
                .filter(|&n| n <= buf.remaining())
                .with_context(|| format!("topic name length {len}"))?;
            let name = String::from_utf8(buf.split_to(len).to_vec()).context("topic name")?;
            let mut partitions = Vec::new();
            for _ in 0..array_len(&mut buf, "partitions")? {
                let index = buf.try_get_i32().context("partition")?;
                let size = buf.try_get_i32().context("message set size")?;
                let size = usize::try_from(size)
                    .ok()
                    .filter(|&n| n <= buf.remaining())
                    .with_context(|| format!("message set size {size}"))?;
                partitions.push((index, buf.split_to(size)));
            }
            topics.push(TopicData { name, partitions });
        }
        Ok(Request { acks, topics })
    }
}

fn array_len(buf: &mut Bytes, what: &'static str) -> anyhow::Result<i32> {
    let n = buf.try_get_i32().context(what)?;
    anyhow::ensure!(n >= 0, "{what}: array length {n}");
    Ok(n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionResult {
    index: i32,
    error_code: i16,
    base_offset: i64,
    log_append_time: i64,
}

fn encode_response(version: i16, topics: &[(String, Vec<PartitionResult>)]) -> Bytes {
    let mut buf = BytesMut::new();
    put_len(&mut buf, topics.len());
    for (name, partitions) in topics {
        // Names were read with an i16 length, so they fit one.
        buf.put_i16(i16::try_from(name.len()).unwrap_or(i16::MAX));
        buf.put_slice(name.as_bytes());
        put_len(&mut buf, partitions.len());
        for p in partitions {
            buf.put_i32(p.index);
            buf.put_i16(p.error_code);
            buf.put_i64(p.base_offset);
            if version >= 2 {
                buf.put_i64(p.log_append_time);
            }
        }
    }
    if version >= 1 {
        // throttle_time_ms: no quotas.
        buf.put_i32(0);
    }
    buf.freeze()
}

/// Array lengths of the answer mirror the request's, which were i32s.
fn put_len(buf: &mut BytesMut, n: usize) {
    buf.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// (partition, message set) pairs of one topic.
    type Partitions<'a> = &'a [(i32, &'a [u8])];

    fn request(acks: i16, topics: &[(&str, Partitions<'_>)]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(acks);
        b.put_i32(1500);
        b.put_i32(topics.len() as i32);
        for (name, parts) in topics {
            b.put_i16(name.len() as i16);
            b.put_slice(name.as_bytes());
            b.put_i32(parts.len() as i32);
            for (p, set) in *parts {
                b.put_i32(*p);
                b.put_i32(set.len() as i32);
                b.put_slice(set);
            }
        }
        b.freeze()
    }

    #[test]
    fn requests_decode() {
        let set = b"a message set".to_vec();
        let r = Request::decode(request(-1, &[("t", &[(0, &set), (3, b"")]), ("u", &[])]))
            .expect("decodes");
        assert_eq!(r.acks, -1);
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].name, "t");
        assert_eq!(r.topics[0].partitions[0], (0, Bytes::from(set)));
        assert_eq!(r.topics[0].partitions[1], (3, Bytes::new()));
        assert!(r.topics[1].partitions.is_empty());
    }

    #[test]
    fn malformed_requests_are_errors() {
        let whole = request(1, &[("topic", &[(0, b"0123456789")])]);
        for cut in 0..whole.len() {
            assert!(Request::decode(whole.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut huge = BytesMut::from(&whole[..]);
        huge[6..10].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(Request::decode(huge.freeze()).is_err());
        let mut negative = BytesMut::from(&whole[..]);
        negative[6..10].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(Request::decode(negative.freeze()).is_err());
        let mut bad_utf8 = BytesMut::from(&whole[..]);
        bad_utf8[12] = 0xff;
        assert!(Request::decode(bad_utf8.freeze()).is_err());
    }

    #[test]
    fn responses_grow_with_the_version() {
        let topics = vec![(
            "t".to_owned(),
            vec![PartitionResult {
                index: 2,
                error_code: 0,
                base_offset: 7,
                log_append_time: -1,
            }],
        )];
        let mut v0 = Vec::new();
        v0.put_i32(1);
        v0.put_i16(1);
        v0.put_slice(b"t");
        v0.put_i32(1);
        v0.put_i32(2);
        v0.put_i16(0);
        v0.put_i64(7);
        assert_eq!(encode_response(0, &topics), v0);
        let mut v1 = v0.clone();
        v1.put_i32(0);
        assert_eq!(encode_response(1, &topics), v1);
        let mut v2 = v0.clone();
        v2.put_i64(-1);
        v2.put_i32(0);
        assert_eq!(encode_response(2, &topics), v2);
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Request::decode(Bytes::from(bytes));
        }
    }
}
