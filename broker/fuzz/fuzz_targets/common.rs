//! Helpers shared by the targets: the connection's frame splitting, magic-2
//! batches built with kafka-protocol's encoder, CRC repair, and checks of
//! stored batches.

#![allow(dead_code)]

use arbitrary::Arbitrary;
use bytes::{Buf, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType,
};

/// Where per-input log directories go: tmpfs when there is one.
pub fn scratch() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// `connection::next_frame`, copied: one whole size-prefixed frame off
/// `buf`; `Err` where the connection would close on the size.
pub fn next_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, i32> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = usize::try_from(size).map_err(|_| size)?;
    if len > max {
        return Err(size);
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

/// One record of a generated batch.
#[derive(Arbitrary, Debug, Clone)]
pub struct RecSpec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub ts_delta: i16,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A magic-2 batch as a producer would send it.
#[derive(Arbitrary, Debug, Clone)]
pub struct BatchSpec {
    pub records: Vec<RecSpec>,
    pub compression: u8,
    pub timestamp: i64,
    /// (producer id, epoch, base sequence), small ranges so they repeat.
    pub producer: Option<(u8, u8, i32)>,
    pub transactional: bool,
}

impl BatchSpec {
    pub fn encode(&self) -> Option<Bytes> {
        let (producer_id, producer_epoch, base_sequence) = match self.producer {
            Some((id, epoch, seq)) => (i64::from(id % 4), i16::from(epoch % 3), seq),
            None => (-1, -1, -1),
        };
        let mut records: Vec<Record> = self
            .records
            .iter()
            .take(8)
            .enumerate()
            .map(|(i, r)| Record {
                transactional: self.transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: if base_sequence < 0 {
                    -1
                } else {
                    base_sequence.wrapping_add(i as i32)
                },
                timestamp: self.timestamp.wrapping_add(i64::from(r.ts_delta)),
                key: r.key.clone().map(Bytes::from),
                value: r.value.clone().map(Bytes::from),
                headers: r
                    .headers
                    .iter()
                    .take(3)
                    .map(|(k, v)| (k.clone().into(), v.clone().map(Bytes::from)))
                    .collect::<IndexMap<_, _>>(),
            })
            .collect();
        if records.is_empty() {
            records.push(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: 0,
                sequence: base_sequence,
                timestamp: self.timestamp,
                key: None,
                value: Some(Bytes::from_static(b"v")),
                headers: IndexMap::new(),
            });
        }
        let compression = match self.compression % 5 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            _ => Compression::Zstd,
        };
        let mut buf = BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &opts).ok()?;
        Some(buf.freeze())
    }
}

/// Rewrites the CRC-32C of every batch whose framing holds, so mutated
/// batches get past the CRC check to the checks after it.
pub fn fix_crcs(buf: &mut [u8]) {
    let mut at = 0usize;
    while at + 61 <= buf.len() {
        let len = i32::from_be_bytes([buf[at + 8], buf[at + 9], buf[at + 10], buf[at + 11]]);
        let Some(size) = usize::try_from(len).ok().map(|l| l + 12) else {
            return;
        };
        if size < 61 || at + size > buf.len() {
            return;
        }
        let crc = crc32c::crc32c(&buf[at + 21..at + size]);
        buf[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at += size;
    }
}

/// (base offset, size, record count) of each batch in `buf`, checking the
/// framing and each CRC; panics with `what` when stored bytes are bad.
pub fn stored_batches(buf: &Bytes, what: &str) -> Vec<(i64, usize, i32)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < buf.len() {
        assert!(at + 61 <= buf.len(), "{what}: truncated batch header at {at}");
        let base = i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(buf[at + 8..at + 12].try_into().expect("4 bytes"));
        let size = usize::try_from(len).expect("stored length") + 12;
        assert!(size >= 61 && at + size <= buf.len(), "{what}: bad length at {at}");
        assert_eq!(buf[at + 16], 2, "{what}: magic at {at}");
        let mut one = buf.slice(at..at + size);
        let infos = RecordBatchDecoder::decode_batch_info(&mut one);
        assert!(
            matches!(&infos, Ok(i) if i.len() == 1) && one.is_empty(),
            "{what}: stored batch at {at} fails its CRC: {infos:?}"
        );
        let count = i32::from_be_bytes(buf[at + 57..at + 61].try_into().expect("4 bytes"));
        out.push((base, size, count));
        at += size;
    }
    out
}

/// Panic message for an allocation the allocator refused (see the README:
/// kafka-protocol's decoders reserve `Vec`s as long as a wire array length
/// says, so a tiny frame can ask for hundreds of GB and abort the broker).
/// Run with `ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=2000`
/// so such an allocation fails, turns into this panic, and the input is
/// counted and dropped instead of stopping the campaign on the known bug.
pub const REFUSED: &str = "allocation refused";

static REFUSALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs `f`, tolerating only the refused-allocation panic.
pub fn tolerate_refused_allocations(f: impl FnOnce()) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::alloc::set_alloc_error_hook(|layout| {
            panic!("{REFUSED}: {} bytes", layout.size())
        });
        // libfuzzer-sys's hook aborts on every panic; let ours unwind.
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .unwrap_or("");
            if !msg.starts_with(REFUSED) {
                prev(info)
            }
        }));
    });
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let msg = p.downcast_ref::<String>().map(String::as_str).unwrap_or("");
        if !msg.starts_with(REFUSED) {
            std::panic::resume_unwind(p);
        }
        let n = REFUSALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            eprintln!("{msg} (known kafka-protocol preallocation; {n} so far)");
        }
    }
}
