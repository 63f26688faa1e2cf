//! Records on the client side: building a produce batch, and reading the batches a
//! Fetch returns (skipping records before the fetch offset, stopping at a partial batch).

use bytes::{Buf, Bytes};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

use super::error::ClientError;
use crate::log::{encode_plain, PlainRecord};

/// A record as a producer hands it over; offsets are the broker's business.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Header names and values in order; duplicate names keep the last value.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Creation time in milliseconds since the epoch.
    pub timestamp: i64,
}

impl ProducerRecord {
    /// Roughly how many bytes the record adds to a batch, for batching decisions.
    pub fn size_hint(&self) -> usize {
        const OVERHEAD: usize = 16;
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        OVERHEAD
            + len(&self.key)
            + len(&self.value)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + len(v) + 4)
                .sum::<usize>()
    }
}

/// A batch header field we read ourselves: kafka-protocol's decoder does not expose
/// `lastOffsetDelta`, which tells where the next fetch starts even when compaction has
/// emptied the end of a batch.
const LAST_OFFSET_DELTA_AT: usize = 23;
/// Bytes before `batchLength` counts: baseOffset (8) + batchLength (4).
const LOG_OVERHEAD: usize = 12;
/// Where the magic byte sits; only magic 2 is readable.
const MAGIC_AT: usize = 16;
/// The fixed part of a magic-2 batch header.
const BATCH_HEADER: usize = 61;

/// Encodes `records` as one magic-2 batch (not idempotent, no transaction).
pub(crate) fn encode_batch(
    records: &[ProducerRecord],
    compression: Compression,
) -> Result<Bytes, ClientError> {
    let records = records
        .iter()
        .map(|r| PlainRecord {
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect(),
        })
        .collect();
    encode_plain(records, compression).map_err(|e| ClientError::Records { source: e.into() })
}

/// What one partition's `records` bytes held.
#[derive(Debug, Default)]
pub(crate) struct DecodedRecords {
    /// Data records at or after the fetch offset, in offset order.
    pub records: Vec<Record>,
    /// Where the next fetch should start; `None` if no complete batch was returned.
    pub next_offset: Option<i64>,
    /// Bytes were left over that did not form a whole batch.
    pub partial: bool,
}

/// Decodes every complete batch in `bytes`, dropping records below `from` (a fetch
/// returns whole batches, so the first one may start before the offset asked for) and
/// control records (transaction markers).
pub(crate) fn decode_batches(mut bytes: Bytes, from: i64) -> Result<DecodedRecords, ClientError> {
    let mut out = DecodedRecords::default();
    while bytes.has_remaining() {
        if bytes.len() < BATCH_HEADER {
            out.partial = true;
            break;
        }
        let base_offset = (&bytes[0..8]).get_i64();
        let batch_len = (&bytes[8..LOG_OVERHEAD]).get_i32();
        let total = usize::try_from(batch_len)
            .ok()
            .and_then(|len| len.checked_add(LOG_OVERHEAD))
            .filter(|total| *total >= BATCH_HEADER)
            .ok_or_else(|| ClientError::Records {
                source: format!("batch at offset {base_offset} has length {batch_len}").into(),
            })?;
        if total > bytes.len() {
            // The broker cut the last batch at the fetch size limit: the rest comes next time.
            out.partial = true;
            break;
        }
        let magic = bytes[MAGIC_AT];
        if magic != 2 {
            return Err(ClientError::Records {
                source: format!(
                    "batch at offset {base_offset} has magic {magic}, only 2 is supported"
                )
                .into(),
            });
        }
        let last_delta = (&bytes[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]).get_i32();
        let mut batch = bytes.split_to(total);
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| ClientError::Records { source: e.into() })?;
        out.records.extend(
            set.records
                .into_iter()
                .filter(|r| r.offset >= from && !r.control),
        );
        out.next_offset = Some(base_offset + i64::from(last_delta) + 1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    fn record(value: &'static str) -> ProducerRecord {
        ProducerRecord {
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(value.as_bytes())),
            headers: vec![("h".to_owned(), Some(Bytes::from_static(b"v")))],
            timestamp: 1_700_000_000_000,
        }
    }

    /// Encodes `values` as one batch whose base offset is `base`, as a broker would store it.
    fn batch_at(base: i64, values: &[&'static str], compression: Compression) -> Bytes {
        let records: Vec<_> = values.iter().map(|v| record(v)).collect();
        let mut bytes = BytesMut::from(&encode_batch(&records, compression).expect("encodes")[..]);
        bytes[0..8].copy_from_slice(&base.to_be_bytes());
        bytes.freeze()
    }

    #[test]
    fn one_batch_round_trips() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = batch_at(0, &["a", "b", "c"], compression);
            let infos = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).expect("headers");
            assert_eq!(infos.len(), 1, "{compression:?} made one batch");
            assert_eq!(infos[0].base_sequence, -1);
            let decoded = decode_batches(bytes, 0).expect("decodes");
            let values: Vec<_> = decoded
                .records
                .iter()
                .filter_map(|r| r.value.clone())
                .collect();
            assert_eq!(values, ["a", "b", "c"]);
            assert_eq!(decoded.records[1].offset, 1);
            assert_eq!(decoded.records[0].headers.len(), 1);
            assert_eq!(decoded.next_offset, Some(3));
            assert!(!decoded.partial);
        }
    }

    #[test]
    fn skips_records_below_the_fetch_offset() {
        let mut bytes = BytesMut::new();
        bytes.extend_from_slice(&batch_at(10, &["a", "b", "c"], Compression::None));
        bytes.extend_from_slice(&batch_at(13, &["d"], Compression::None));
        let decoded = decode_batches(bytes.freeze(), 12).expect("decodes");
        let offsets: Vec<_> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [12, 13]);
        assert_eq!(decoded.next_offset, Some(14));
    }

    #[test]
    fn tolerates_a_partial_trailing_batch() {
        let mut bytes = BytesMut::new();
        bytes.extend_from_slice(&batch_at(0, &["a"], Compression::None));
        let second = batch_at(1, &["b", "c"], Compression::None);
        bytes.extend_from_slice(&second[..second.len() - 5]);
        let decoded = decode_batches(bytes.freeze(), 0).expect("decodes");
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.next_offset, Some(1));
        assert!(decoded.partial);

        let only_partial = decode_batches(second.slice(..20), 1).expect("decodes");
        assert!(only_partial.records.is_empty());
        assert_eq!(only_partial.next_offset, None);
        assert!(only_partial.partial);
    }

    #[test]
    fn rejects_a_negative_batch_length() {
        let mut bytes = BytesMut::from(&batch_at(0, &["a"], Compression::None)[..]);
        bytes[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(decode_batches(bytes.freeze(), 0).is_err());
    }
}
