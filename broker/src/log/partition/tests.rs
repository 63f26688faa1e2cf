//! Append, read, roll, retention and producer-rule tests of `Log`.

use super::*;
use crate::log::batch::testing::{batch, batch_with};
use kafka_protocol::records::Compression;

pub(crate) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 2000,
        index_interval_bytes: 300,
        ..LogConfig::default()
    }
}

/// Offsets of every record in `records`, decoded by kafka-protocol.
pub(crate) fn offsets_in(records: &Bytes) -> Vec<i64> {
    let mut buf = records.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf).expect("stored batches decode");
    sets.iter()
        .flat_map(|s| s.records.iter().map(|r| r.offset))
        .collect()
}

fn fill(log: &Log, batches: usize, records: usize) {
    for i in 0..batches {
        log.append(&batch(records, 50, 1000 + i as i64), 3, 5000)
            .expect("append");
    }
}

#[test]
fn appends_get_consecutive_offsets_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), "t", 0, LogConfig::default()).expect("open");
    let a = log.append(&batch(3, 10, 1), 0, 0).expect("append");
    let b = log.append(&batch(2, 10, 1), 0, 0).expect("append");
    assert_eq!(
        (a.base_offset, a.last_offset, b.base_offset, b.last_offset),
        (0, 2, 3, 4)
    );
    assert_eq!(a.log_append_time, -1);
    assert_eq!(log.log_end_offset(), 5);
    log.set_high_watermark(5);

    let all = log.read(0, 1 << 20, 5, false).expect("read");
    assert_eq!(offsets_in(&all.records), vec![0, 1, 2, 3, 4]);
    assert_eq!(
        (all.high_watermark, all.log_start_offset, all.log_end_offset),
        (5, 0, 5)
    );
    // The batch holding the offset comes whole.
    let mid = log.read(4, 1 << 20, 5, false).expect("read");
    assert_eq!(offsets_in(&mid.records), vec![3, 4]);
    // Never past max_offset.
    let below = log.read(0, 1 << 20, 4, false).expect("read");
    assert_eq!(offsets_in(&below.records), vec![0, 1, 2]);
    assert!(log
        .read(5, 1 << 20, 5, false)
        .expect("read")
        .records
        .is_empty());
    assert_eq!(
        log.read(6, 100, 5, false).map_err(|e| e.error_code()),
        Err(1)
    );
}

#[test]
fn max_bytes_and_min_one_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), "t", 0, LogConfig::default()).expect("open");
    fill(&log, 3, 4);
    let one = log.read(0, 10, 12, true).expect("read");
    assert_eq!(offsets_in(&one.records), vec![0, 1, 2, 3]);
    assert!(log.read(0, 10, 12, false).expect("read").records.is_empty());
    let size = one.records.len();
    let two = log.read(0, 2 * size + 5, 12, false).expect("read");
    assert_eq!(two.records.len(), 2 * size);
}

#[test]
fn rolls_by_size_and_reads_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), "t", 0, small_config()).expect("open");
    fill(&log, 40, 5);
    assert!(log.segments().len() > 5);
    let mut next = 0;
    while next < log.log_end_offset() {
        let r = log.read(next, 700, 200, false).expect("read");
        let offsets = offsets_in(&r.records);
        assert_eq!(offsets.first(), Some(&next));
        next = offsets.last().expect("data") + 1;
    }
    assert_eq!(next, 200);
    for w in log.segments().windows(2) {
        assert_eq!(w[0].next_offset(), w[1].base_offset());
        assert!(w[0].size() <= 2000);
    }
}

#[test]
fn rolls_by_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = LogConfig {
        segment_ms: 100,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), "t", 0, cfg).expect("open");
    log.append(&batch(1, 1, 1000), 0, 1000).expect("append");
    log.append(&batch(1, 1, 1050), 0, 1050).expect("append");
    assert_eq!(log.segments().len(), 1);
    log.append(&batch(1, 1, 1200), 0, 1200).expect("append");
    assert_eq!(log.segments().len(), 2);
    assert_eq!(log.segments()[1].base_offset(), 2);
}

#[test]
fn retention_by_size_and_time_moves_log_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), "t", 0, small_config()).expect("open");
    fill(&log, 40, 5);
    let before = log.segments().len();
    let total = log.size_bytes() as i64;
    log.set_config(LogConfig {
        retention_bytes: total / 2,
        retention_ms: -1,
        ..small_config()
    });
    let deleted = log.enforce_retention(i64::MAX).expect("retention");
    assert!(deleted > 0 && deleted < before);
    assert!(log.size_bytes() as i64 >= total / 2);
    let start = log.log_start_offset();
    assert_eq!(start, log.segments()[0].base_offset());
    assert_eq!(
        log.read(start - 1, 100, 1000, true)
            .map_err(|e| e.error_code()),
        Err(1)
    );
    assert!(!log
        .read(start, 100, 1000, true)
        .expect("read")
        .records
        .is_empty());

    // Time: everything but the active segment is older than retention.ms.
    log.set_config(LogConfig {
        retention_ms: 10,
        ..small_config()
    });
    assert_eq!(log.enforce_retention(1000).expect("retention"), 0);
    log.enforce_retention(1000 + 10_000).expect("retention");
    assert_eq!(log.segments().len(), 1);
    assert_eq!(log.log_start_offset(), log.segments()[0].base_offset());
    let logs = std::fs::read_dir(log.dir()).expect("ls").filter(|e| {
        e.as_ref()
            .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
    });
    assert_eq!(logs.count(), 1);
}

#[test]
fn idempotent_duplicates_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), "t", 0, LogConfig::default()).expect("open");
    let p = |seq, n| batch_with(n, 5, 0, (42, 0, seq), Compression::None);
    let first = log.append(&p(0, 3), 0, 0).expect("append");
    log.append(&p(3, 2), 0, 0).expect("append");
    let dup = log.append(&p(0, 3), 0, 0).expect("duplicate is no error");
    assert!(dup.duplicate);
    assert_eq!(
        (dup.base_offset, dup.last_offset),
        (first.base_offset, first.last_offset)
    );
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(
        log.append(&p(9, 1), 0, 0).map_err(|e| e.error_code()),
        Err(45)
    );
    let older = batch_with(1, 5, 0, (42, 0, 5), Compression::None);
    assert!(log.append(&older, 0, 0).is_ok());
    let bumped = batch_with(1, 5, 0, (42, 1, 0), Compression::None);
    log.append(&bumped, 0, 0).expect("new epoch from 0");
    assert_eq!(
        log.append(&older, 0, 0).map_err(|e| e.error_code()),
        Err(47)
    );
    assert_eq!(log.log_end_offset(), 7);
}

#[test]
fn several_batches_of_one_request_are_checked_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), "t", 0, LogConfig::default()).expect("open");
    let p = |seq| batch_with(2, 5, 0, (7, 0, seq), Compression::None);
    let mut two = bytes::BytesMut::from(&p(0)[..]);
    two.extend_from_slice(&p(2));
    let info = log.append(&two.freeze(), 0, 0).expect("in order");
    assert_eq!((info.base_offset, info.last_offset), (0, 3));
    let mut gap = bytes::BytesMut::from(&p(4)[..]);
    gap.extend_from_slice(&p(9));
    assert_eq!(
        log.append(&gap.freeze(), 0, 0).map_err(|e| e.error_code()),
        Err(45)
    );
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn log_append_time_is_stamped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), "t", 0, cfg).expect("open");
    let info = log
        .append(
            &batch_with(3, 5, 10, (-1, -1, -1), Compression::Snappy),
            0,
            777,
        )
        .expect("append");
    assert_eq!(info.log_append_time, 777);
    let r = log.read(0, 1 << 20, 3, false).expect("read");
    let h = BatchHeader::parse(&r.records).expect("header");
    assert_eq!(h.max_timestamp, 777);
    assert_eq!(offsets_in(&r.records), vec![0, 1, 2]);
    assert_eq!(log.offset_for_timestamp(700).expect("io"), Some((0, 777)));
}

#[test]
fn offset_for_timestamp_finds_the_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), "t", 0, small_config()).expect("open");
    // Batch i holds timestamps 1000+10i .. 1000+10i+4.
    for i in 0..30 {
        log.append(&batch(5, 50, 1000 + 10 * i), 0, 0)
            .expect("append");
    }
    assert_eq!(log.offset_for_timestamp(0).expect("io"), Some((0, 1000)));
    assert_eq!(
        log.offset_for_timestamp(1000 + 10 * 17 + 3).expect("io"),
        Some((17 * 5 + 3, 1173))
    );
    assert_eq!(
        log.offset_for_timestamp(1000 + 10 * 17 + 7).expect("io"),
        Some((18 * 5, 1180))
    );
    assert_eq!(log.offset_for_timestamp(5000).expect("io"), None);
}

#[test]
fn high_watermark_wakes_subscribers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), "t", 0, LogConfig::default()).expect("open");
    let mut rx = log.subscribe_hw();
    fill(&log, 1, 3);
    assert!(!rx.has_changed().expect("open channel"));
    log.set_high_watermark(100);
    assert!(rx.has_changed().expect("open channel"));
    assert_eq!(*rx.borrow_and_update(), 3);
}

#[test]
fn readers_see_only_whole_batches_while_appending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(Log::open(dir.path(), "t", 0, small_config()).expect("open"));
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut next = 0;
            while next < 1000 {
                let r = log.read(next, 1500, i64::MAX, true).expect("read");
                if let Some(last) = offsets_in(&r.records).last() {
                    next = last + 1;
                }
            }
        })
    };
    fill(&log, 100, 10);
    reader.join().expect("reader saw consistent data");
}

#[test]
fn appends_after_close_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), "t", 0, LogConfig::default()).expect("open");
    log.close().expect("close");
    assert_eq!(
        log.append(&batch(1, 1, 0), 0, 0)
            .map_err(|e| e.error_code()),
        Err(56)
    );
}
