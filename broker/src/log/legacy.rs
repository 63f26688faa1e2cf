//! Legacy message sets (magic 0 and 1, compressed wrappers included), sans
//! io: a partition's message set from Produce v0-v2 becomes one magic-2
//! batch that goes through the same append path as Produce v3+. Compressed
//! wrappers inflate within a budget; every length is checked against the
//! bytes left.

use std::io::Read;

use bytes::{Buf, Bytes};
use indexmap::IndexMap;
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;

use super::batch::{encode_plain, PlainRecord};

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// What the compressed wrappers of one partition may inflate to in total.
/// Kafka sets no such limit, but the request size does not bound it (gzip
/// reaches ~1000:1), and producers batch about 1 MB uncompressed by default.
const MAX_INFLATED: usize = 64 << 20;

/// offset (i64) and message size (i32), in front of every message.
const LOG_OVERHEAD: usize = 12;
/// crc, magic, attributes, key length, value length: Kafka's
/// `RECORD_OVERHEAD_V0`. A smaller declared size is corrupt, not partial.
const MIN_MESSAGE: usize = 14;

const CODEC_MASK: u8 = 0x07;
/// Magic 1: the wrapper's timestamp is the broker's, and overrides the
/// inner messages' own.
const LOG_APPEND_TIME_BIT: u8 = 0x08;

/// Why a partition's message set was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetError {
    #[error("{0}")]
    Corrupt(String),
    #[error("compression codec {0} needs magic 2 (Produce v3 or later)")]
    UnsupportedCodec(u8),
    #[error("compressed messages inflate past {MAX_INFLATED} bytes")]
    TooLarge,
    #[error("cannot encode the converted batch: {0}")]
    Encode(String),
}

impl SetError {
    /// The Kafka error code a producer gets for it.
    pub(crate) fn code(&self) -> i16 {
        match self {
            SetError::Corrupt(_) => ResponseError::CorruptMessage,
            SetError::UnsupportedCodec(_) => ResponseError::UnsupportedCompressionType,
            SetError::TooLarge => ResponseError::MessageTooLarge,
            SetError::Encode(_) => ResponseError::UnknownServerError,
        }
        .code()
    }
}

fn corrupt(why: impl Into<String>) -> SetError {
    SetError::Corrupt(why.into())
}

/// Converts one partition's legacy message set into a single magic-2 batch
/// with the codec of its (last) compressed wrapper.
pub(crate) fn to_batch(set: Bytes) -> Result<Bytes, SetError> {
    let mut d = Decoder {
        messages: Vec::new(),
        codec: Compression::None,
        inflate_budget: MAX_INFLATED,
    };
    d.read_set(set, None)?;
    if d.messages.is_empty() {
        return Err(corrupt("no complete message in the message set"));
    }
    encode_batch(d.messages, d.codec)
}

/// What a magic-2 record keeps of a legacy message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

/// The compressed message whose value holds the messages being read.
#[derive(Debug, Clone, Copy)]
struct Wrapper {
    magic: u8,
    timestamp: i64,
    log_append_time: bool,
}

#[derive(Debug)]
struct Decoder {
    messages: Vec<Message>,
    /// Kafka's old broker kept the codec of the last compressed wrapper
    /// when a set mixed them; one batch can only have one.
    codec: Compression,
    inflate_budget: usize,
}

impl Decoder {
    fn read_set(&mut self, mut set: Bytes, wrapper: Option<Wrapper>) -> Result<(), SetError> {
        while set.len() >= LOG_OVERHEAD {
            let declared = i32::from_be_bytes([set[8], set[9], set[10], set[11]]);
            let size = usize::try_from(declared)
                .ok()
                .filter(|&n| n >= MIN_MESSAGE)
                .ok_or_else(|| corrupt(format!("message size {declared}")))?;
            if set.len() - LOG_OVERHEAD < size {
                break;
            }
            set.advance(LOG_OVERHEAD);
            let message = set.split_to(size);
            self.read_message(message, wrapper)?;
        }
        // A producer's set may end in a partial message (Kafka ignores it);
        // inside a wrapper the CRC covered every byte, so one is corruption.
        if wrapper.is_some() && !set.is_empty() {
            return Err(corrupt("partial message inside a compressed wrapper"));
        }
        Ok(())
    }

    /// `m` is one message from its CRC on.
    fn read_message(&mut self, mut m: Bytes, wrapper: Option<Wrapper>) -> Result<(), SetError> {
        let short = || corrupt("message shorter than its header");
        let crc = m.try_get_u32().map_err(|_| short())?;
        // Magic sits where a v2 batch has its own: checked first, so a
        // v2 batch in a v0-v2 request is named as such, not as a bad CRC.
        let magic = *m.first().ok_or_else(short)?;
        if magic > 1 {
            return Err(corrupt(format!("magic {magic} needs Produce v3 or later")));
        }
        if crc32fast::hash(&m) != crc {
            return Err(corrupt("CRC-32 mismatch"));
        }
        m.advance(1);
        let attributes = m.try_get_u8().map_err(|_| short())?;
        let timestamp = if magic == 1 {
            m.try_get_i64()
                .map_err(|_| corrupt("message too short for a timestamp"))?
        } else {
            // Magic 0 has no timestamp: Kafka keeps none (-1) on a
            // CreateTime topic, and consumers read -1 back.
            NO_TIMESTAMP
        };
        let key = bytes_field(&mut m, "key")?;
        let value = bytes_field(&mut m, "value")?;
        if !m.is_empty() {
            return Err(corrupt(format!("{} bytes after the value", m.len())));
        }
        let codec = attributes & CODEC_MASK;
        if let Some(w) = wrapper {
            if codec != 0 {
                return Err(corrupt("compressed message inside a compressed wrapper"));
            }
            if magic != w.magic {
                return Err(corrupt(format!(
                    "magic {magic} inside a magic {} wrapper",
                    w.magic
                )));
            }
            let timestamp = if w.log_append_time {
                w.timestamp
            } else {
                timestamp
            };
            self.messages.push(Message {
                timestamp,
                key,
                value,
            });
            return Ok(());
        }
        let (compression, inflate): (Compression, Inflate) = match codec {
            0 => {
                self.messages.push(Message {
                    timestamp,
                    key,
                    value,
                });
                return Ok(());
            }
            1 => (Compression::Gzip, gunzip),
            2 => (Compression::Snappy, unsnappy),
            3 => (Compression::Lz4, unlz4),
            4 => return Err(SetError::UnsupportedCodec(codec)),
            _ => return Err(corrupt(format!("unknown compression codec {codec}"))),
        };
        let value = value.ok_or_else(|| corrupt("compressed wrapper without a value"))?;
        let inner = inflate(&value, self.inflate_budget)?;
        self.inflate_budget -= inner.len();
        let before = self.messages.len();
        let w = Wrapper {
            magic,
            timestamp,
            log_append_time: attributes & LOG_APPEND_TIME_BIT != 0,
        };
        self.read_set(Bytes::from(inner), Some(w))?;
        if self.messages.len() == before {
            return Err(corrupt("compressed wrapper without messages"));
        }
        self.codec = compression;
        Ok(())
    }
}

/// A key or value: i32 length, -1 for null.
fn bytes_field(m: &mut Bytes, what: &str) -> Result<Option<Bytes>, SetError> {
    let len = m
        .try_get_i32()
        .map_err(|_| corrupt(format!("message too short for the {what} length")))?;
    if len == -1 {
        return Ok(None);
    }
    let n = usize::try_from(len)
        .ok()
        .filter(|&n| n <= m.len())
        .ok_or_else(|| corrupt(format!("{what} length {len} with {} bytes left", m.len())))?;
    Ok(Some(m.split_to(n)))
}

fn encode_batch(messages: Vec<Message>, compression: Compression) -> Result<Bytes, SetError> {
    let records = messages
        .into_iter()
        .map(|m| PlainRecord {
            timestamp: m.timestamp,
            key: m.key,
            value: m.value,
            headers: IndexMap::new(),
        })
        .collect();
    encode_plain(records, compression).map_err(|e| SetError::Encode(e.to_string()))
}

/// Decompresses a wrapper's value, refusing to produce more than `limit` bytes.
type Inflate = fn(&[u8], usize) -> Result<Vec<u8>, SetError>;

fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, SetError> {
    let mut out = Vec::new();
    // Java's GZIPInputStream reads concatenated members too.
    flate2::read::MultiGzDecoder::new(data)
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| corrupt(format!("gzip: {e}")))?;
    if out.len() > limit {
        return Err(SetError::TooLarge);
    }
    Ok(out)
}

/// snappy-java's stream header: magic, then version and compatible version.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// Java and sarama frame snappy the xerial way (blocks with a u32 length);
/// librdkafka and others send one raw block. snappy-java tells them apart
/// by the magic, and so does this.
fn unsnappy(data: &[u8], limit: usize) -> Result<Vec<u8>, SetError> {
    let mut out = Vec::new();
    if !data.starts_with(XERIAL_MAGIC) {
        snappy_block(data, &mut out, limit)?;
        return Ok(out);
    }
    let mut rest = data
        .get(XERIAL_HEADER_LEN..)
        .ok_or_else(|| corrupt("snappy: short xerial header"))?;
    while !rest.is_empty() {
        let len = rest
            .try_get_u32()
            .map_err(|_| corrupt("snappy: short block length"))?;
        let block = usize::try_from(len)
            .ok()
            .and_then(|n| rest.get(..n))
            .ok_or_else(|| corrupt(format!("snappy: block of {len} bytes is truncated")))?;
        rest = &rest[block.len()..];
        snappy_block(block, &mut out, limit)?;
    }
    Ok(out)
}

fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), SetError> {
    let bad = |e: snap::Error| corrupt(format!("snappy: {e}"));
    // The declared length is checked before it sizes an allocation.
    let n = snap::raw::decompress_len(block).map_err(bad)?;
    if n > limit - out.len() {
        return Err(SetError::TooLarge);
    }
    let start = out.len();
    out.resize(start + n, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(bad)?;
    out.truncate(start + written);
    Ok(())
}

const LZ4_MAGIC: u32 = 0x184D_2204;
const LZ4_UNCOMPRESSED_BIT: u32 = 1 << 31;

/// Reads an LZ4 frame block by block. The header checksum is not checked:
/// Kafka before 0.10 (magic 0) computed it over the wrong bytes
/// (KAFKA-3160) and librdkafka reproduces that for magic 0; the message CRC
/// already guards the bytes. Like Kafka, only independent blocks are read.
fn unlz4(data: &[u8], limit: usize) -> Result<Vec<u8>, SetError> {
    let bad = |what: &str| corrupt(format!("lz4 frame: {what}"));
    let mut r = data;
    let magic = r.try_get_u32_le().map_err(|_| bad("too short"))?;
    if magic != LZ4_MAGIC {
        return Err(bad("bad magic"));
    }
    let flg = r.try_get_u8().map_err(|_| bad("too short"))?;
    let bd = r.try_get_u8().map_err(|_| bad("too short"))?;
    if flg >> 6 != 1 {
        return Err(bad("unknown version"));
    }
    if flg & 0x20 == 0 {
        return Err(bad("dependent blocks"));
    }
    let block_checksum = flg & 0x10 != 0;
    let content_size = if flg & 0x08 != 0 { 8 } else { 0 };
    let dict_id = if flg & 0x01 != 0 { 4 } else { 0 };
    // ... then the one-byte header checksum.
    r = r
        .get(content_size + dict_id + 1..)
        .ok_or_else(|| bad("truncated header"))?;
    let max_block: usize = match (bd >> 4) & 0x07 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return Err(bad("bad block size")),
    };
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    loop {
        let word = r.try_get_u32_le().map_err(|_| bad("no end mark"))?;
        if word == 0 {
            // End mark; a content checksum may follow, not needed either.
            return Ok(out);
        }
        let len = usize::try_from(word & !LZ4_UNCOMPRESSED_BIT).unwrap_or(usize::MAX);
        if len > max_block {
            return Err(bad("block larger than its declared maximum"));
        }
        let block = r.get(..len).ok_or_else(|| bad("truncated block"))?;
        r = &r[len..];
        if block_checksum {
            r = r.get(4..).ok_or_else(|| bad("truncated block checksum"))?;
        }
        let plain = if word & LZ4_UNCOMPRESSED_BIT != 0 {
            block
        } else {
            scratch.resize(max_block, 0);
            // max_block is at most 4 MiB.
            let n = lz4::block::decompress_to_buffer(block, Some(max_block as i32), &mut scratch)
                .map_err(|e| corrupt(format!("lz4 block: {e}")))?;
            &scratch[..n]
        };
        if plain.len() > limit - out.len() {
            return Err(SetError::TooLarge);
        }
        out.extend_from_slice(plain);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::{BufMut, BytesMut};
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    use kafka_protocol::records::RecordBatchDecoder;
    use proptest::prelude::*;

    use super::*;

    /// One legacy message as a producer writes it.
    struct Msg<'a> {
        magic: u8,
        attributes: u8,
        timestamp: i64,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
    }

    fn plain<'a>(magic: u8, timestamp: i64, key: Option<&'a [u8]>, value: &'a [u8]) -> Msg<'a> {
        Msg {
            magic,
            attributes: 0,
            timestamp,
            key,
            value: Some(value),
        }
    }

    fn put_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
        match b {
            None => buf.put_i32(-1),
            Some(b) => {
                buf.put_i32(b.len() as i32);
                buf.put_slice(b);
            }
        }
    }

    /// offset, size, crc, then the CRC'd body.
    fn message(offset: i64, m: &Msg<'_>) -> Vec<u8> {
        let mut body = vec![m.magic, m.attributes];
        if m.magic == 1 {
            body.put_i64(m.timestamp);
        }
        put_bytes(&mut body, m.key);
        put_bytes(&mut body, m.value);
        let mut out = Vec::new();
        out.put_i64(offset);
        out.put_i32(body.len() as i32 + 4);
        out.put_u32(crc32fast::hash(&body));
        out.extend_from_slice(&body);
        out
    }

    fn set(msgs: &[Msg<'_>], first_offset: i64) -> Vec<u8> {
        msgs.iter()
            .enumerate()
            .flat_map(|(i, m)| message(first_offset + i as i64, m))
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    /// snappy-java's framing, as Java clients and sarama send it.
    fn xerial(data: &[u8]) -> Vec<u8> {
        let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
        for chunk in data.chunks(100) {
            let block = snap::raw::Encoder::new()
                .compress_vec(chunk)
                .expect("snappy");
            out.put_u32(block.len() as u32);
            out.extend_from_slice(&block);
        }
        out
    }

    fn lz4_frame(data: &[u8], broken_header_checksum: bool) -> Vec<u8> {
        let mut e = lz4::EncoderBuilder::new()
            .block_mode(lz4::BlockMode::Independent)
            .checksum(lz4::ContentChecksum::ChecksumEnabled)
            .build(Vec::new())
            .expect("lz4");
        e.write_all(data).expect("lz4");
        let (mut out, r) = e.finish();
        r.expect("lz4");
        if broken_header_checksum {
            // Whatever the header checksum holds must not matter.
            out[6] ^= 0xff;
        }
        out
    }

    fn wrapper(magic: u8, codec: u8, timestamp: i64, compressed: &[u8]) -> Vec<u8> {
        message(
            0,
            &Msg {
                magic,
                attributes: codec,
                timestamp,
                key: None,
                value: Some(compressed),
            },
        )
    }

    fn decode(batch: Bytes) -> (Compression, Vec<Record>) {
        let mut buf = batch;
        let sets = RecordBatchDecoder::decode_all(&mut buf).expect("a valid v2 batch");
        assert!(buf.is_empty());
        assert_eq!(sets.len(), 1, "one batch per partition");
        let s = sets.into_iter().next().expect("one");
        (s.compression, s.records)
    }

    /// What a record must keep of its message: timestamp, key, value.
    type Kv<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>);

    fn kv(r: &Record) -> Kv<'_> {
        (r.timestamp, r.key.as_deref(), r.value.as_deref())
    }

    fn sample(magic: u8) -> Vec<Msg<'static>> {
        vec![
            plain(magic, 1000, Some(b"k1"), b"v1"),
            Msg {
                magic,
                attributes: 0,
                timestamp: 1001,
                key: None,
                value: None,
            },
            plain(magic, 999, Some(b""), b"a longer value, a longer value"),
        ]
    }

    fn expected(magic: u8) -> Vec<Kv<'static>> {
        let ts = |t| if magic == 0 { NO_TIMESTAMP } else { t };
        vec![
            (ts(1000), Some(&b"k1"[..]), Some(&b"v1"[..])),
            (ts(1001), None, None),
            (
                ts(999),
                Some(&b""[..]),
                Some(&b"a longer value, a longer value"[..]),
            ),
        ]
    }

    fn check(batch: Bytes, codec: Compression, magic: u8) {
        let (c, records) = decode(batch);
        assert_eq!(c, codec);
        assert_eq!(records.iter().map(kv).collect::<Vec<_>>(), expected(magic));
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.producer_id, -1);
            assert_eq!(r.sequence, -1 + i as i32);
            assert_eq!(r.timestamp_type, TimestampType::Creation);
            assert!(r.headers.is_empty());
        }
    }

    #[test]
    fn uncompressed_sets_convert_record_for_record() {
        for magic in [0, 1] {
            let bytes = set(&sample(magic), 42);
            check(
                to_batch(Bytes::from(bytes)).expect("converts"),
                Compression::None,
                magic,
            );
        }
    }

    #[test]
    fn compressed_wrappers_keep_their_codec() {
        for magic in [0u8, 1] {
            // Magic 1 inner messages carry relative offsets, magic 0 absolute.
            let first = if magic == 1 { 0 } else { 100 };
            let inner = set(&sample(magic), first);
            let cases: [(u8, Vec<u8>, Compression); 5] = [
                (1, gzip(&inner), Compression::Gzip),
                (2, xerial(&inner), Compression::Snappy),
                (
                    2,
                    snap::raw::Encoder::new()
                        .compress_vec(&inner)
                        .expect("snappy"),
                    Compression::Snappy,
                ),
                (3, lz4_frame(&inner, false), Compression::Lz4),
                (3, lz4_frame(&inner, true), Compression::Lz4),
            ];
            for (codec, compressed, expect) in cases {
                let bytes = wrapper(magic, codec, 5, &compressed);
                let batch = to_batch(Bytes::from(bytes))
                    .unwrap_or_else(|e| panic!("magic {magic} codec {codec}: {e}"));
                check(batch, expect, magic);
            }
        }
    }

    #[test]
    fn log_append_time_wrappers_stamp_their_messages() {
        let inner = set(&sample(1), 0);
        let bytes = message(
            0,
            &Msg {
                magic: 1,
                attributes: 1 | LOG_APPEND_TIME_BIT,
                timestamp: 777,
                key: None,
                value: Some(&gzip(&inner)),
            },
        );
        let (_, records) = decode(to_batch(Bytes::from(bytes)).expect("converts"));
        assert!(records.iter().all(|r| r.timestamp == 777));
    }

    #[test]
    fn several_wrappers_and_plain_messages_make_one_batch() {
        let mut bytes = set(&[plain(1, 1, None, b"plain")], 0);
        let inner = set(&[plain(1, 2, None, b"zipped")], 0);
        bytes.extend(wrapper(1, 1, 2, &gzip(&inner)));
        let inner = set(&[plain(1, 3, None, b"snapped")], 0);
        bytes.extend(wrapper(1, 2, 3, &xerial(&inner)));
        let (c, records) = decode(to_batch(Bytes::from(bytes)).expect("converts"));
        assert_eq!(c, Compression::Snappy);
        let values: Vec<_> = records.iter().map(|r| r.value.as_deref()).collect();
        assert_eq!(
            values,
            [Some(&b"plain"[..]), Some(b"zipped"), Some(b"snapped")]
        );
    }

    #[test]
    fn a_partial_trailing_message_is_ignored() {
        let mut bytes = set(&sample(1), 0);
        let whole = bytes.len();
        bytes.extend_from_slice(&message(3, &plain(1, 5, None, b"cut off"))[..20]);
        check(
            to_batch(Bytes::from(bytes.clone())).expect("converts"),
            Compression::None,
            1,
        );
        // Even a declared size far beyond the bytes sent.
        bytes.truncate(whole);
        bytes.put_i64(3);
        bytes.put_i32(i32::MAX);
        bytes.put_slice(b"junk");
        check(
            to_batch(Bytes::from(bytes)).expect("converts"),
            Compression::None,
            1,
        );
    }

    fn refused(bytes: Vec<u8>) -> SetError {
        match to_batch(Bytes::from(bytes)) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    fn is_corrupt(e: &SetError) -> bool {
        e.code() == ResponseError::CorruptMessage.code()
    }

    #[test]
    fn malformed_sets_are_corrupt_messages() {
        let good = set(&sample(1), 0);

        let mut bad_crc = good.clone();
        *bad_crc.last_mut().expect("bytes") ^= 1;
        assert!(matches!(refused(bad_crc), SetError::Corrupt(m) if m.contains("CRC")));

        assert!(is_corrupt(&refused(Vec::new())));
        assert!(is_corrupt(&refused(good[..20].to_vec())));

        let mut negative = good.clone();
        negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(is_corrupt(&refused(negative)));
        let mut tiny = good.clone();
        tiny[8..12].copy_from_slice(&3i32.to_be_bytes());
        assert!(is_corrupt(&refused(tiny)));

        // Key length past the message end, with a valid CRC.
        let mut m = vec![1u8, 0];
        m.put_i64(0);
        m.put_i32(1_000_000);
        m.put_i32(-1);
        let mut bytes = Vec::new();
        bytes.put_i64(0);
        bytes.put_i32(m.len() as i32 + 4);
        bytes.put_u32(crc32fast::hash(&m));
        bytes.extend_from_slice(&m);
        assert!(is_corrupt(&refused(bytes)));

        // Trailing bytes after the value.
        let mut m = vec![0u8, 0];
        m.put_i32(-1);
        m.put_i32(0);
        m.put_u8(9);
        let mut bytes = Vec::new();
        bytes.put_i64(0);
        bytes.put_i32(m.len() as i32 + 4);
        bytes.put_u32(crc32fast::hash(&m));
        bytes.extend_from_slice(&m);
        assert!(is_corrupt(&refused(bytes)));
    }

    #[test]
    fn magic_2_is_refused_as_corrupt() {
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1,
            key: None,
            value: Some(Bytes::from_static(b"v2")),
            headers: IndexMap::new(),
        };
        let mut batch = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut batch,
            [&record],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encodes");
        assert!(matches!(
            refused(batch.to_vec()),
            SetError::Corrupt(m) if m.contains("magic 2")
        ));
    }

    #[test]
    fn bad_wrappers() {
        let inner = set(&sample(1), 0);
        // zstd has no legacy form.
        assert_eq!(
            refused(wrapper(1, 4, 0, &inner)).code(),
            ResponseError::UnsupportedCompressionType.code()
        );
        assert!(is_corrupt(&refused(wrapper(1, 6, 0, &inner))));
        // Not gzip at all.
        assert!(is_corrupt(&refused(wrapper(1, 1, 0, &inner))));
        // Truncated gzip.
        let z = gzip(&inner);
        assert!(is_corrupt(&refused(wrapper(1, 1, 0, &z[..z.len() / 2]))));
        // Inner magic differs from the wrapper's.
        assert!(is_corrupt(&refused(wrapper(0, 1, 0, &gzip(&inner)))));
        // Nested compression.
        let nested = wrapper(1, 1, 0, &gzip(&inner));
        assert!(is_corrupt(&refused(wrapper(1, 1, 0, &gzip(&nested)))));
        // An empty compressed set, and one ending in a partial message.
        assert!(is_corrupt(&refused(wrapper(1, 1, 0, &gzip(b"")))));
        let partial = &inner[..inner.len() - 3];
        assert!(is_corrupt(&refused(wrapper(1, 1, 0, &gzip(partial)))));
        // A null wrapper value.
        let null = message(
            0,
            &Msg {
                magic: 1,
                attributes: 1,
                timestamp: 0,
                key: None,
                value: None,
            },
        );
        assert!(is_corrupt(&refused(null)));
        // Truncated and malformed lz4 frames.
        let f = lz4_frame(&inner, false);
        assert!(is_corrupt(&refused(wrapper(1, 3, 0, &f[..f.len() - 6]))));
        assert!(is_corrupt(&refused(wrapper(1, 3, 0, &f[..5]))));
        // Truncated xerial block.
        let x = xerial(&inner);
        assert!(is_corrupt(&refused(wrapper(1, 2, 0, &x[..x.len() - 1]))));
    }

    #[test]
    fn inflation_is_bounded() {
        let zeros = vec![0u8; MAX_INFLATED + 1];
        let big = gzip(&zeros);
        assert!(matches!(
            refused(wrapper(1, 1, 0, &big)),
            SetError::TooLarge
        ));
        // Raw snappy declaring a huge length in a few bytes.
        let mut lie = Vec::new();
        let mut n = u32::MAX;
        while n >= 0x80 {
            lie.push((n as u8) | 0x80);
            n >>= 7;
        }
        lie.push(n as u8);
        lie.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            refused(wrapper(1, 2, 0, &lie)),
            SetError::TooLarge
        ));
        assert!(matches!(
            unlz4(&lz4_frame(&zeros, false), MAX_INFLATED),
            Err(SetError::TooLarge)
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_sets_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = to_batch(Bytes::from(bytes));
        }

        /// Damaged compressed payloads under a valid wrapper CRC reach the
        /// decompressors and the inner parser, which random bytes rarely do.
        #[test]
        fn damaged_wrappers_never_panic(
            magic in 0u8..2,
            codec in 1u8..4,
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let inner = set(&sample(magic), 0);
            let mut compressed = match codec {
                1 => gzip(&inner),
                2 => xerial(&inner),
                _ => lz4_frame(&inner, false),
            };
            let i = at.index(compressed.len());
            compressed[i] = byte;
            let _ = to_batch(Bytes::from(wrapper(magic, codec, 0, &compressed)));
            compressed.truncate(cut.index(compressed.len() + 1));
            let _ = to_batch(Bytes::from(wrapper(magic, codec, 0, &compressed)));
        }

    }
}
