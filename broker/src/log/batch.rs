//! Record batch (magic 2) headers: checking what a producer sent, and
//! stamping offsets, leader epoch and log-append time into the bytes we store;
//! and building a plain batch as a non-idempotent producer sends one.

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

use super::LogError;

/// baseOffset + batchLength: the part of a batch its length does not count.
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Every fixed field up to and including recordCount.
pub(crate) const HEADER_LEN: usize = 61;

const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const FIRST_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x7;
pub(crate) const LOG_APPEND_TIME_BIT: i16 = 1 << 3;
const CONTROL_BIT: i16 = 1 << 5;
/// zstd; codes 5..7 name no codec.
const MAX_COMPRESSION: i16 = 4;

/// The fixed header fields of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub(crate) base_offset: i64,
    /// The whole batch, [`LOG_OVERHEAD`] included.
    pub(crate) size: usize,
    /// partitionLeaderEpoch: the epoch of the leader that appended it.
    pub(crate) leader_epoch: i32,
    pub(crate) magic: i8,
    pub(crate) attributes: i16,
    pub(crate) last_offset_delta: i32,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) record_count: i32,
}

impl BatchHeader {
    /// Reads the header at the front of `buf`. `None` when `buf` is shorter
    /// than a header or the length field cannot describe a whole header.
    pub(crate) fn parse(buf: &[u8]) -> Option<BatchHeader> {
        let h = buf.get(..HEADER_LEN)?;
        let size = usize::try_from(i32_at(h, 8)).ok()? + LOG_OVERHEAD;
        if size < HEADER_LEN {
            return None;
        }
        Some(BatchHeader {
            base_offset: i64_at(h, 0),
            size,
            leader_epoch: i32_at(h, LEADER_EPOCH_AT),
            magic: i8::from_be_bytes([h[MAGIC_AT]]),
            attributes: i16::from_be_bytes([h[ATTRIBUTES_AT], h[ATTRIBUTES_AT + 1]]),
            last_offset_delta: i32_at(h, LAST_OFFSET_DELTA_AT),
            max_timestamp: i64_at(h, MAX_TIMESTAMP_AT),
            producer_id: i64_at(h, PRODUCER_ID_AT),
            producer_epoch: i16::from_be_bytes([h[PRODUCER_EPOCH_AT], h[PRODUCER_EPOCH_AT + 1]]),
            base_sequence: i32_at(h, BASE_SEQUENCE_AT),
            record_count: i32_at(h, RECORD_COUNT_AT),
        })
    }

    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Sequences wrap from `i32::MAX` to 0, as in Kafka's `DefaultRecordBatch`.
    pub(crate) fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }

    pub(crate) fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Whether one whole stored or produced batch passes the CRC-32C check.
pub(crate) fn crc_ok(batch: Bytes) -> bool {
    let len = batch.len();
    let mut buf = batch;
    // The decoder stops silently at a non-v2 magic, so it must have
    // consumed the whole batch and produced exactly one header.
    matches!(RecordBatchDecoder::decode_batch_info(&mut buf), Ok(infos) if infos.len() == 1 && len > 0 && buf.is_empty())
}

/// Who sent the batches being validated.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// A producer: every rule applies.
    Client { max_message_bytes: i32 },
    /// The partition leader, whose log already holds these batches: they
    /// must be intact and keep offsets increasing, but may exceed this
    /// broker's `max.message.bytes` (as Kafka's `ignoreRecordSize`), be
    /// control batches, or have fewer records than offsets (compaction).
    Replication,
}

/// Splits a produce partition's `records` into batches and checks each:
/// framing, magic, size limit, codec, record count, CRC.
pub(crate) fn validate_produce(
    records: &Bytes,
    max_message_bytes: i32,
) -> Result<Vec<BatchHeader>, LogError> {
    validate(records, Origin::Client { max_message_bytes })
}

/// Splits batches a follower fetched from its leader into batches and
/// checks each: framing, magic, codec, CRC, and offsets that increase.
pub(crate) fn validate_replicated(records: &Bytes) -> Result<Vec<BatchHeader>, LogError> {
    let headers = validate(records, Origin::Replication)?;
    for pair in headers.windows(2) {
        if pair[1].base_offset <= pair[0].last_offset() {
            return Err(LogError::CorruptMessage(format!(
                "batch at offset {} follows one ending at {}",
                pair[1].base_offset,
                pair[0].last_offset()
            )));
        }
    }
    Ok(headers)
}

fn validate(records: &Bytes, origin: Origin) -> Result<Vec<BatchHeader>, LogError> {
    if records.is_empty() {
        return Err(LogError::InvalidRecord(match origin {
            Origin::Client { .. } => "produce requests must hold at least one record batch",
            Origin::Replication => "replicated records must hold at least one record batch",
        }));
    }
    let mut headers = Vec::with_capacity(1);
    let mut at = 0;
    while at < records.len() {
        let rest = &records[at..];
        let h = BatchHeader::parse(rest)
            .ok_or_else(|| LogError::CorruptMessage("truncated or bad batch length".into()))?;
        if h.size > rest.len() {
            return Err(LogError::CorruptMessage(format!(
                "batch length {} exceeds the {} bytes sent",
                h.size,
                rest.len()
            )));
        }
        if h.magic != 2 {
            return Err(LogError::CorruptMessage(format!(
                "magic {} is not 2",
                h.magic
            )));
        }
        if h.compression() > MAX_COMPRESSION {
            return Err(LogError::UnsupportedCompression(h.compression()));
        }
        match origin {
            Origin::Client { max_message_bytes } => check_client_batch(&h, max_message_bytes)?,
            Origin::Replication => {
                if h.last_offset_delta < 0
                    || h.record_count < 0
                    || i64::from(h.record_count) > i64::from(h.last_offset_delta) + 1
                {
                    return Err(LogError::CorruptMessage(format!(
                        "record count {} does not fit last offset delta {}",
                        h.record_count, h.last_offset_delta
                    )));
                }
            }
        }
        if !crc_ok(records.slice(at..at + h.size)) {
            return Err(LogError::CorruptMessage("CRC-32C mismatch".into()));
        }
        headers.push(h);
        at += h.size;
    }
    Ok(headers)
}

/// The rules only a producer's batches must follow.
fn check_client_batch(h: &BatchHeader, max_message_bytes: i32) -> Result<(), LogError> {
    if usize::try_from(max_message_bytes).is_ok_and(|max| h.size > max) {
        return Err(LogError::MessageTooLarge {
            size: h.size,
            max: max_message_bytes,
        });
    }
    if h.record_count < 1 || i64::from(h.last_offset_delta) != i64::from(h.record_count) - 1 {
        return Err(LogError::CorruptMessage(format!(
            "record count {} does not match last offset delta {}",
            h.record_count, h.last_offset_delta
        )));
    }
    if h.attributes & CONTROL_BIT != 0 {
        return Err(LogError::InvalidRecord(
            "clients may not produce control batches",
        ));
    }
    Ok(())
}

/// A copy of `records` ready to store: each batch gets its offsets from
/// `first_offset` on and `leader_epoch`; with `log_append_time` also the
/// LogAppendTime attribute, both timestamps, and a new CRC.
pub(crate) fn stamp(
    records: &[u8],
    headers: &[BatchHeader],
    first_offset: i64,
    leader_epoch: i32,
    log_append_time: Option<i64>,
) -> BytesMut {
    let mut out = BytesMut::from(records);
    let mut at = 0;
    let mut offset = first_offset;
    for h in headers {
        let b = &mut out[at..at + h.size];
        b[..8].copy_from_slice(&offset.to_be_bytes());
        b[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
        if let Some(now) = log_append_time {
            let attributes = h.attributes | LOG_APPEND_TIME_BIT;
            b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
            b[FIRST_TIMESTAMP_AT..FIRST_TIMESTAMP_AT + 8].copy_from_slice(&now.to_be_bytes());
            b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now.to_be_bytes());
            let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
            b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        }
        offset += i64::from(h.last_offset_delta) + 1;
        at += h.size;
    }
    out
}

/// One record of a plain batch: what a non-idempotent producer sends.
#[derive(Debug, Clone, Default)]
pub struct PlainRecord {
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: IndexMap<StrBytes, Option<Bytes>>,
}

/// Encodes `records` as one magic-2 batch as a non-idempotent producer
/// sends it: no producer id, base sequence -1, offsets from 0 (the log
/// assigns the real ones).
pub fn encode_plain(records: Vec<PlainRecord>, compression: Compression) -> anyhow::Result<Bytes> {
    anyhow::ensure!(
        i32::try_from(records.len()).is_ok(),
        "{} records do not fit one batch",
        records.len()
    );
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever `offset - sequence`
            // changes; sequences from -1 keep one batch with baseSequence -1.
            sequence: (i as i32).wrapping_sub(1),
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)?;
    Ok(buf.freeze())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builds real batches with kafka-protocol's encoder for the tests.

    use bytes::{Bytes, BytesMut};
    use indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// `count` records of `value_len` bytes; producer fields as given.
    pub(crate) fn batch_with(
        count: usize,
        value_len: usize,
        timestamp: i64,
        producer: (i64, i16, i32),
        compression: Compression,
    ) -> Bytes {
        let (producer_id, producer_epoch, first_seq) = producer;
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: first_seq.wrapping_add(i as i32),
                timestamp: timestamp + i as i64,
                key: None,
                value: Some(Bytes::from(vec![b'v'; value_len])),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression,
        };
        if RecordBatchEncoder::encode(&mut buf, &records, &opts).is_err() {
            panic!("test batch encodes");
        }
        buf.freeze()
    }

    /// A plain uncompressed batch without producer id.
    pub(crate) fn batch(count: usize, value_len: usize, timestamp: i64) -> Bytes {
        batch_with(count, value_len, timestamp, (-1, -1, -1), Compression::None)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use kafka_protocol::records::Compression;

    #[test]
    fn valid_batches_parse_and_concatenate() {
        let one = batch(3, 10, 1000);
        let mut two = BytesMut::from(&one[..]);
        two.extend_from_slice(&batch(2, 5, 2000));
        let headers = validate_produce(&two.freeze(), 1_000_000).expect("valid");
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].record_count, 3);
        assert_eq!(headers[0].last_offset_delta, 2);
        assert_eq!(headers[0].max_timestamp, 1002);
        assert_eq!(headers[1].record_count, 2);
    }

    #[test]
    fn compressed_batches_are_accepted() {
        let b = batch_with(50, 100, 0, (-1, -1, -1), Compression::Gzip);
        let h = validate_produce(&b, 1_000_000).expect("valid");
        assert_eq!(h[0].compression(), 1);
    }

    #[test]
    fn corruptions_are_classified() {
        let good = batch(3, 10, 1000);
        let code = |b: &[u8], max| {
            validate_produce(&Bytes::copy_from_slice(b), max).map_err(|e| e.error_code())
        };
        assert_eq!(code(&[], 100).err(), Some(87));
        assert_eq!(code(&good[..good.len() - 1], 1000).err(), Some(2));
        assert_eq!(code(&good[..30], 1000).err(), Some(2));
        let mut flipped = good.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(code(&flipped, 1000).err(), Some(2));
        let mut magic = good.to_vec();
        magic[MAGIC_AT] = 1;
        assert_eq!(code(&magic, 1000).err(), Some(2));
        assert_eq!(code(&good, 20).err(), Some(10));
        let mut codec = good.to_vec();
        codec[ATTRIBUTES_AT + 1] |= 5;
        assert_eq!(code(&codec, 1000).err(), Some(76));
        let mut count = good.to_vec();
        count[RECORD_COUNT_AT + 3] = 7;
        assert_eq!(code(&count, 1000).err(), Some(2));
        // The offset and leader epoch are outside the CRC.
        let mut moved = good.to_vec();
        moved[3] = 9;
        moved[LEADER_EPOCH_AT] = 1;
        assert!(code(&moved, 1000).is_ok());
    }

    #[test]
    fn stamp_assigns_offsets_and_keeps_crc() {
        let mut two = BytesMut::from(&batch(3, 10, 1000)[..]);
        two.extend_from_slice(&batch(2, 5, 2000));
        let two = two.freeze();
        let headers = validate_produce(&two, 1_000_000).expect("valid");
        let out = stamp(&two, &headers, 100, 7, None).freeze();
        let again = validate_produce(&out, 1_000_000).expect("still valid");
        assert_eq!(again[0].base_offset, 100);
        assert_eq!(again[1].base_offset, 103);
        assert_eq!(i32_at(&out, LEADER_EPOCH_AT), 7);
    }

    #[test]
    fn log_append_time_rewrites_timestamps_and_crc() {
        let b = batch_with(4, 10, 1000, (-1, -1, -1), Compression::Lz4);
        let headers = validate_produce(&b, 1_000_000).expect("valid");
        let out = stamp(&b, &headers, 0, 0, Some(5555)).freeze();
        let h = validate_produce(&out, 1_000_000).expect("new crc is right");
        assert_eq!(h[0].max_timestamp, 5555);
        assert_ne!(h[0].attributes & LOG_APPEND_TIME_BIT, 0);
        let mut buf = out.clone();
        let sets =
            kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).expect("decodes");
        assert_eq!(sets[0].records.len(), 4);
    }

    #[test]
    fn replicated_batches_keep_offsets_and_epochs() {
        let mut two = BytesMut::from(&batch(3, 10, 1000)[..]);
        two.extend_from_slice(&batch(2, 500, 2000));
        let two = two.freeze();
        let headers = validate_produce(&two, 1_000_000).expect("valid");
        let stored = stamp(&two, &headers, 40, 6, None).freeze();
        let h = validate_replicated(&stored).expect("valid");
        assert_eq!((h[0].base_offset, h[0].leader_epoch), (40, 6));
        assert_eq!((h[1].base_offset, h[1].leader_epoch), (43, 6));
        // No max.message.bytes for the leader's batches.
        assert_eq!(
            validate_produce(&stored, 100).map_err(|e| e.error_code()),
            Err(10)
        );
        // Control batches (transaction markers) come from leaders too.
        let mut control = stored[..h[0].size].to_vec();
        control[ATTRIBUTES_AT + 1] |= CONTROL_BIT as u8;
        let crc = crc32c::crc32c(&control[ATTRIBUTES_AT..]);
        control[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        let control = Bytes::from(control);
        assert!(validate_replicated(&control).is_ok());
        assert_eq!(
            validate_produce(&control, 1_000_000).map_err(|e| e.error_code()),
            Err(87)
        );
        // Offsets that do not increase are corrupt.
        let backwards = stamp(&two, &headers, 40, 6, None);
        let mut backwards = backwards.to_vec();
        backwards[h[0].size..h[0].size + 8].copy_from_slice(&42i64.to_be_bytes());
        assert_eq!(
            validate_replicated(&Bytes::from(backwards)).map_err(|e| e.error_code()),
            Err(2)
        );
        assert_eq!(
            validate_replicated(&Bytes::new()).map_err(|e| e.error_code()),
            Err(87)
        );
    }

    #[test]
    fn sequences_wrap() {
        let mut h = BatchHeader::parse(&batch(3, 1, 0)).expect("header");
        h.base_sequence = i32::MAX - 1;
        assert_eq!(h.last_sequence(), 0);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = validate_produce(&Bytes::from(data), 1_000_000);
        }

        #[test]
        fn any_single_byte_flip_in_crc_range_is_caught(pos in 21usize..100, bit in 0u8..8) {
            let good = batch(2, 40, 5);
            let mut bad = good.to_vec();
            let pos = pos % bad.len();
            proptest::prop_assume!(pos >= 21);
            bad[pos] ^= 1 << bit;
            proptest::prop_assert!(validate_produce(&Bytes::from(bad), 1_000_000).is_err());
        }
    }
}
