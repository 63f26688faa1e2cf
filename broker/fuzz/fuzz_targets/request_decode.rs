//! Arbitrary bytes through the connection's request decoding, and arbitrary
//! `records` through produce-batch validation and `Log::append`.
//!
//! The first byte picks the mode:
//! - 0: the rest is a client byte stream, split into frames as the
//!   connection does and each decoded as `connection::handle` does (API
//!   key/version gate, `RequestHeader::decode`, `RequestKind::decode`);
//! - 1: the rest is one frame whose API key and version are forced into
//!   `api::SUPPORTED` (by its first two bytes) so decoding gets past the gate;
//! - 2: the rest drives appends to a fresh log in a temp dir (see
//!   [`LogInput`]): never a panic; an append error leaves the log end and
//!   size unchanged; an accepted append gets the next offsets and reads back
//!   with every CRC valid and its bytes as sent (bar stamped fields); a
//!   valid batch still appends afterwards; reopening the directory (after a
//!   clean close or without one) finds the same log.

#![no_main]
#![feature(alloc_error_hook)]

mod common;

use arbitrary::{Arbitrary, Unstructured};
use broker::api;
use broker::log::{LogConfig, LogManager, TimestampType};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;

const MAX_FRAME: usize = 100 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    common::tolerate_refused_allocations(|| one(data));
});

fn one(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let mut buf = BytesMut::from(rest);
            while let Ok(Some(frame)) = common::next_frame(&mut buf, MAX_FRAME) {
                decode(frame);
            }
        }
        1 => {
            if rest.len() < 2 {
                return;
            }
            let (api, min, max) = api::SUPPORTED[usize::from(rest[0]) % api::SUPPORTED.len()];
            let version = min + i16::from(rest[1]) % (max - min + 1);
            let mut frame = BytesMut::new();
            frame.extend_from_slice(&(api as i16).to_be_bytes());
            frame.extend_from_slice(&version.to_be_bytes());
            frame.extend_from_slice(&rest[2..]);
            decode(frame.freeze());
        }
        _ => {
            if let Ok(input) = LogInput::arbitrary_take_rest(Unstructured::new(rest)) {
                log_appends(input);
            }
        }
    }
}

/// `connection::handle` up to the handler call.
fn decode(mut frame: Bytes) {
    if frame.len() < 8 {
        return;
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let Ok(api) = ApiKey::try_from(key) else {
        return;
    };
    if !api::supports(api, version) {
        if api == ApiKey::ApiVersions {
            let mut out = BytesMut::new();
            ResponseKind::ApiVersions(api::api_versions::unsupported())
                .encode(&mut out, 0)
                .expect("the v0 ApiVersions answer encodes");
        }
        return;
    }
    if api == ApiKey::Produce && version < 3 {
        // The body is read by `produce_legacy::handle`, which needs a
        // broker: the `connection` target covers it.
        let _ = RequestHeader::decode(&mut frame, 1);
        return;
    }
    let Ok(_header) = RequestHeader::decode(&mut frame, api.request_header_version(version))
    else {
        return;
    };
    let Ok(request) = RequestKind::decode(api, &mut frame, version) else {
        return;
    };
    // What the codec decoded it can encode again at the same version.
    let mut out = BytesMut::new();
    let _ = request.encode(&mut out, version);
}

#[derive(Arbitrary, Debug)]
struct LogInput {
    /// Picks segment.bytes, max.message.bytes, timestamp type, index interval.
    config: u16,
    appends: Vec<Append>,
    /// The closing valid batch.
    last: common::BatchSpec,
    clean_close: bool,
}

#[derive(Arbitrary, Debug)]
enum Records {
    Raw(Vec<u8>),
    /// Raw bytes with every well-framed batch's CRC rewritten.
    RawFixedCrc(Vec<u8>),
    Valid(common::BatchSpec),
    /// Valid batches, concatenated, then changed in place (CRC rewritten
    /// unless `keep_crc`).
    Mutated {
        batches: Vec<common::BatchSpec>,
        edits: Vec<(u16, u8)>,
        truncate: Option<u16>,
        keep_crc: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Append {
    records: Records,
    leader_epoch: i32,
    now_delta: i32,
}

fn records(r: &Records) -> Option<Bytes> {
    Some(match r {
        Records::Raw(b) => Bytes::copy_from_slice(b),
        Records::RawFixedCrc(b) => {
            let mut b = b.clone();
            common::fix_crcs(&mut b);
            Bytes::from(b)
        }
        Records::Valid(spec) => spec.encode()?,
        Records::Mutated {
            batches,
            edits,
            truncate,
            keep_crc,
        } => {
            let mut b = Vec::new();
            for spec in batches.iter().take(4) {
                b.extend_from_slice(&spec.encode()?);
            }
            if b.is_empty() {
                return None;
            }
            for &(at, x) in edits.iter().take(8) {
                let at = usize::from(at) % b.len();
                b[at] ^= x;
            }
            if let Some(t) = truncate {
                b.truncate(usize::from(*t) % (b.len() + 1));
            }
            if !keep_crc {
                common::fix_crcs(&mut b);
            }
            Bytes::from(b)
        }
    })
}

fn log_appends(input: LogInput) {
    let dir = tempfile::tempdir_in(common::scratch()).expect("temp dir");
    let c = input.config;
    let config = LogConfig {
        segment_bytes: [14, 200, 1024, 16 * 1024, 1 << 30][usize::from(c % 5)],
        max_message_bytes: [100, 1000, 1_048_588][usize::from((c >> 3) % 3)],
        timestamp_type: if c & (1 << 6) != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        index_interval_bytes: [0, 64, 4096][usize::from((c >> 7) % 3)],
        flush_messages: if c & (1 << 9) != 0 { 1 } else { i64::MAX },
        ..LogConfig::default()
    };
    let manager = LogManager::open(vec![dir.path().to_path_buf()], &config).expect("open");
    let log = manager
        .get_or_create("t", 0, config.clone())
        .expect("create log");
    let mut now: i64 = 1_700_000_000_000;
    for a in input.appends.iter().take(16) {
        let Some(records) = records(&a.records) else {
            continue;
        };
        now = now.wrapping_add(i64::from(a.now_delta)).max(0);
        let end = log.log_end_offset();
        let size = log.size_bytes();
        match log.append(&records, a.leader_epoch, now) {
            Err(e) => {
                assert_eq!(log.log_end_offset(), end, "log end moved by a failed append: {e}");
                assert_eq!(log.size_bytes(), size, "bytes written by a failed append: {e}");
            }
            Ok(info) if info.duplicate => {
                assert_eq!(log.log_end_offset(), end, "duplicate moved the log end");
                assert_eq!(log.size_bytes(), size, "duplicate wrote bytes");
                assert!(
                    info.base_offset <= info.last_offset && info.last_offset < end,
                    "duplicate answered with offsets outside the log: {info:?}, log end {end}, records {:?}",
                    &records[..]
                );
            }
            Ok(info) => {
                assert_eq!(info.base_offset, end);
                assert!(info.last_offset >= info.base_offset);
                assert_eq!(log.log_end_offset(), info.last_offset + 1);
                assert_eq!(log.size_bytes(), size + records.len() as u64);
                check_read_back(&log, &records, end, a.leader_epoch, &config);
            }
        }
    }

    // A valid batch still goes in and comes back.
    let Some(last) = input.last.encode() else {
        return;
    };
    let last = {
        // No producer id, so idempotence cannot refuse it.
        let mut spec = input.last.clone();
        spec.producer = None;
        spec.transactional = false;
        spec.encode().unwrap_or(last)
    };
    let end = log.log_end_offset();
    if last.len() > usize::try_from(config.max_message_bytes).unwrap_or(0) {
        return;
    }
    let info = log
        .append(&last, 7, now)
        .unwrap_or_else(|e| panic!("a valid batch is refused after the appends: {e}"));
    assert_eq!(info.base_offset, end);
    check_read_back(&log, &last, end, 7, &config);

    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let tail = log
        .read(info.base_offset, usize::MAX, end, true)
        .expect("read the last batch")
        .records;
    drop(log);
    if input.clean_close {
        manager.close_all().expect("close");
    }
    drop(manager);
    let manager = LogManager::open(vec![dir.path().to_path_buf()], &config).expect("reopen");
    let log = manager.get("t", 0).expect("the log is still there");
    assert_eq!(log.log_end_offset(), end, "log end after reopening");
    assert_eq!(log.log_start_offset(), start, "log start after reopening");
    let again = log
        .read(info.base_offset, usize::MAX, end, true)
        .expect("read the last batch after reopening")
        .records;
    assert_eq!(again, tail, "the last batch changed across reopening");
    let _ = manager.close_all();
}

/// The batches just appended at `first` read back with their offsets, the
/// leader epoch, valid CRCs and everything else as sent.
fn check_read_back(
    log: &broker::log::Log,
    sent: &Bytes,
    first: i64,
    epoch: i32,
    config: &LogConfig,
) {
    let read = log
        .read(first, usize::MAX, log.log_end_offset(), true)
        .expect("read back an accepted append");
    let got = read.records;
    assert_eq!(got.len(), sent.len(), "read back a different length");
    let batches = common::stored_batches(&got, "read back");
    let mut offset = first;
    let mut at = 0;
    for (base, size, count) in batches {
        assert_eq!(base, offset, "stored base offset");
        let (s, g) = (&sent[at..at + size], &got[at..at + size]);
        assert_eq!(&g[12..16], &epoch.to_be_bytes(), "stored leader epoch");
        assert_eq!(&g[8..12], &s[8..12], "length");
        if config.timestamp_type == TimestampType::CreateTime {
            assert_eq!(&g[16..], &s[16..], "batch changed in storage");
        } else {
            assert_eq!(g[16], s[16], "magic");
            assert_eq!(&g[23..27], &s[23..27], "last offset delta");
            assert_eq!(&g[43..], &s[43..], "producer fields and records");
        }
        offset += i64::from(count);
        at += size;
    }
    assert_eq!(offset, log.log_end_offset(), "record counts add up to the log end");
}
