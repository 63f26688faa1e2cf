//! The follower side of replication (Kafka's `appendAsFollower` and the
//! OffsetsForLeaderEpoch lookups): storing batches fetched from the leader
//! exactly as the leader stored them, and the leader epoch queries a
//! replica fetcher uses to find where its log diverges from the leader's.

use bytes::Bytes;

use super::batch;
use super::partition::{AppendInfo, Log};
use super::LogError;
use crate::now_ms;

impl Log {
    /// Appends batches fetched from the leader: offsets, leader epochs and
    /// timestamps stay as the leader stored them, so the logs stay byte
    /// for byte alike. The first batch must start at the log end. Producer
    /// state learns every batch without the producer checks (the leader
    /// already made them), so this replica answers a retried batch as a
    /// duplicate once it leads.
    pub fn append_replicated(&self, records: &Bytes) -> Result<AppendInfo, LogError> {
        let config = self.config();
        let headers = batch::validate_replicated(records)?;
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            return Err(LogError::InvalidRecord("no record batch to replicate"));
        };
        let mut w = self.lock_writer();
        if w.closed {
            return Err(LogError::Closed(format!(
                "{}-{}",
                self.topic, self.partition
            )));
        }
        let expected = self.log_end_offset();
        if first.base_offset != expected {
            return Err(LogError::OffsetMismatch {
                expected,
                got: first.base_offset,
            });
        }
        self.write_batches(&mut w, &config, records, &headers, now_ms())?;
        for h in &headers {
            w.producers.replay(h);
        }
        self.count_unflushed(&mut w, &config, &headers)?;
        Ok(AppendInfo {
            base_offset: first.base_offset,
            last_offset: last.last_offset(),
            log_append_time: -1,
            log_start_offset: self.log_start_offset(),
            duplicate: false,
        })
    }

    /// The newest leader epoch of any batch in this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs().latest_epoch()
    }

    /// OffsetsForLeaderEpoch for `epoch`, as Kafka's `endOffsetFor`:
    /// `(epoch, log end)` for the latest epoch; for an older one the largest
    /// epoch at or below it this log knows and the offset where the next
    /// epoch starts; for one older than every known epoch, itself and the
    /// first known epoch's start (its data is gone here). `None` means
    /// UNDEFINED_EPOCH (-1) / UNDEFINED_EPOCH_OFFSET (-1): `epoch` is
    /// negative, newer than any known, or no epoch is known.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let epochs = self.epochs();
        epochs.end_offset_for(epoch, self.log_end_offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::testing::{batch, batch_with};
    use crate::log::leader_epoch::CHECKPOINT;
    use crate::log::partition::tests::{offsets_in, small_config};
    use crate::log::LogConfig;
    use kafka_protocol::records::Compression;

    fn open(dir: &tempfile::TempDir, name: &str) -> Log {
        Log::open(dir.path(), name, 0, small_config()).expect("open")
    }

    fn all(log: &Log) -> Bytes {
        log.read(log.log_start_offset(), 1 << 24, i64::MAX, true)
            .expect("read")
            .records
    }

    /// What a follower's fetch loop does: read from the leader at the
    /// follower's log end and append, until caught up.
    fn catch_up(leader: &Log, follower: &Log) {
        while follower.log_end_offset() < leader.log_end_offset() {
            let r = leader
                .read(follower.log_end_offset(), 700, i64::MAX, true)
                .expect("leader read");
            follower.append_replicated(&r.records).expect("replicate");
        }
    }

    fn checkpoint(log: &Log) -> String {
        std::fs::read_to_string(log.dir().join(CHECKPOINT)).expect("checkpoint")
    }

    #[test]
    fn follower_log_is_byte_identical_to_the_leader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leader = open(&dir, "leader");
        let follower = open(&dir, "follower");
        for i in 0..40i64 {
            let b = match i % 3 {
                0 => batch(5, 50, 1000 + i),
                1 => batch_with(
                    3,
                    40,
                    1000 + i,
                    (11, 0, (i / 3) as i32 * 3),
                    Compression::Lz4,
                ),
                _ => batch_with(2, 60, 1000 + i, (-1, -1, -1), Compression::Gzip),
            };
            leader.append(&b, (i / 10) as i32, 0).expect("append");
        }
        catch_up(&leader, &follower);
        assert!(follower.segments().len() > 3);
        assert_eq!(all(&follower), all(&leader));
        assert_eq!(follower.log_end_offset(), leader.log_end_offset());
        assert_eq!(follower.latest_epoch(), Some(3));
        assert_eq!(checkpoint(&follower), checkpoint(&leader));
        for epoch in 0..5 {
            assert_eq!(
                follower.end_offset_for_epoch(epoch),
                leader.end_offset_for_epoch(epoch)
            );
        }
        // Batches the follower already has are refused.
        let info = follower
            .append_replicated(&leader.read(0, 1, i64::MAX, true).expect("read").records)
            .map_err(|e| e.to_string());
        assert!(info.is_err_and(|e| e.contains("start at offset 0")));
    }

    #[test]
    fn replicated_batches_must_continue_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leader = open(&dir, "leader");
        let follower = open(&dir, "follower");
        for _ in 0..3 {
            leader.append(&batch(2, 10, 0), 0, 0).expect("append");
        }
        let from_2 = leader.read(2, 1 << 20, i64::MAX, true).expect("read");
        match follower.append_replicated(&from_2.records) {
            Err(LogError::OffsetMismatch { expected, got }) => assert_eq!((expected, got), (0, 2)),
            other => panic!("expected an offset mismatch, got {other:?}"),
        }
        // Batches out of offset order are corrupt, and nothing is written.
        let first = leader.read(0, 1, i64::MAX, true).expect("read").records;
        let mut twice = bytes::BytesMut::from(&first[..]);
        twice.extend_from_slice(&first);
        assert_eq!(
            follower
                .append_replicated(&twice.freeze())
                .map_err(|e| e.error_code()),
            Err(2)
        );
        assert_eq!(
            follower
                .append_replicated(&Bytes::new())
                .map_err(|e| e.error_code()),
            Err(87)
        );
        // A batch larger than this broker's max.message.bytes is taken: the
        // leader accepted it under its own limit.
        follower.set_config(LogConfig {
            max_message_bytes: 10,
            ..small_config()
        });
        let info = follower.append_replicated(&first).expect("replicate");
        assert_eq!((info.base_offset, info.last_offset), (0, 1));
        assert!(!info.duplicate);
        assert_eq!(follower.log_end_offset(), 2);
    }

    #[test]
    fn epoch_cache_tracks_appends_and_survives_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(&dir, "t");
        assert_eq!(log.latest_epoch(), None);
        assert_eq!(log.end_offset_for_epoch(0), None);
        for (epoch, n) in [(0, 4), (2, 3), (2, 2), (5, 1)] {
            for _ in 0..n {
                log.append(&batch(5, 50, 0), epoch, 0).expect("append");
            }
        }
        // Epoch 0 at 0, 2 at 20, 5 at 45; the log ends at 50.
        assert_eq!(checkpoint(&log), "0\n3\n0 0\n2 20\n5 45\n");
        assert_eq!(log.latest_epoch(), Some(5));
        assert_eq!(log.end_offset_for_epoch(5), Some((5, 50)));
        assert_eq!(log.end_offset_for_epoch(4), Some((2, 45)));
        assert_eq!(log.end_offset_for_epoch(2), Some((2, 45)));
        assert_eq!(log.end_offset_for_epoch(1), Some((0, 20)));
        assert_eq!(log.end_offset_for_epoch(0), Some((0, 20)));
        assert_eq!(log.end_offset_for_epoch(6), None);
        log.close().expect("close");
        drop(log);

        let log = open(&dir, "t");
        assert_eq!(log.end_offset_for_epoch(2), Some((2, 45)));
        assert_eq!(log.end_offset_for_epoch(5), Some((5, 50)));
        drop(log);

        // A missing checkpoint is rebuilt from the batch headers.
        std::fs::remove_file(dir.path().join("t-0").join(CHECKPOINT)).expect("rm");
        let log = open(&dir, "t");
        assert_eq!(checkpoint(&log), "0\n3\n0 0\n2 20\n5 45\n");
        drop(log);

        // Entries past the log end (their batches did not survive a crash)
        // are dropped.
        std::fs::write(
            dir.path().join("t-0").join(CHECKPOINT),
            "0\n4\n0 0\n2 20\n5 45\n6 50\n",
        )
        .expect("write");
        let log = open(&dir, "t");
        assert_eq!(log.latest_epoch(), Some(5));
        assert_eq!(checkpoint(&log), "0\n3\n0 0\n2 20\n5 45\n");
        drop(log);

        // So is garbage.
        std::fs::write(dir.path().join("t-0").join(CHECKPOINT), "0\n9\n").expect("write");
        let log = open(&dir, "t");
        assert_eq!(checkpoint(&log), "0\n3\n0 0\n2 20\n5 45\n");
    }

    #[test]
    fn retention_moves_the_first_epoch_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(&dir, "t");
        for i in 0..40 {
            log.append(&batch(5, 50, 0), i / 20, 0).expect("append");
        }
        log.set_config(LogConfig {
            retention_ms: 10,
            ..small_config()
        });
        assert!(log.enforce_retention(i64::MAX).expect("retention") > 0);
        let start = log.log_start_offset();
        assert!(start > 100, "epoch 0's segments are gone: {start}");
        assert_eq!(checkpoint(&log), format!("0\n1\n1 {start}\n"));
        // Epoch 0 is older than anything left: it ends where epoch 1 starts.
        assert_eq!(log.end_offset_for_epoch(0), Some((0, start)));
        assert_eq!(log.end_offset_for_epoch(1), Some((1, 200)));
    }

    #[test]
    fn divergent_tail_is_truncated_by_epoch_and_caught_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = open(&dir, "a");
        let b = open(&dir, "b");
        // Both replicate epoch 0; then b, still leading epoch 0, writes a
        // batch that never reached a, and a is elected in epoch 1.
        for _ in 0..6 {
            a.append(&batch(5, 50, 0), 0, 0).expect("append");
        }
        catch_up(&a, &b);
        b.append(&batch(3, 50, 0), 0, 0).expect("lost write");
        b.set_high_watermark(b.log_end_offset());
        for _ in 0..4 {
            a.append(&batch(2, 50, 0), 1, 0).expect("append");
        }
        assert_eq!(a.log_end_offset(), 38);

        // b, now a follower, asks a where its latest epoch ends.
        let epoch = b.latest_epoch().expect("epoch");
        assert_eq!(epoch, 0);
        let (leader_epoch, end) = a.end_offset_for_epoch(epoch).expect("known epoch");
        assert_eq!((leader_epoch, end), (0, 30));
        b.truncate_to(end.min(b.log_end_offset()))
            .expect("truncate");
        assert_eq!(b.log_end_offset(), 30);
        assert_eq!(b.high_watermark(), 30);
        catch_up(&a, &b);
        assert_eq!(all(&b), all(&a));
        assert_eq!(checkpoint(&b), "0\n2\n0 0\n1 30\n");
        assert_eq!(b.end_offset_for_epoch(0), Some((0, 30)));
    }

    #[test]
    fn truncation_drops_epochs_and_to_log_start_restarts_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leader = open(&dir, "leader");
        let follower = open(&dir, "follower");
        for i in 0..30 {
            leader.append(&batch(5, 50, 0), i / 10, 0).expect("append");
        }
        catch_up(&leader, &follower);
        follower.set_high_watermark(150);
        follower.truncate_to(103).expect("truncate");
        assert_eq!(follower.log_end_offset(), 100);
        assert_eq!(follower.high_watermark(), 100);
        assert_eq!(follower.latest_epoch(), Some(1));
        assert_eq!(follower.end_offset_for_epoch(1), Some((1, 100)));
        catch_up(&leader, &follower);
        assert_eq!(all(&follower), all(&leader));

        // Retention on the follower, then a truncation to its log start
        // (as when the leader's log starts later): the log restarts there.
        follower.set_config(LogConfig {
            retention_ms: 10,
            ..small_config()
        });
        follower.enforce_retention(i64::MAX).expect("retention");
        let start = follower.log_start_offset();
        assert!(start > 0);
        follower.truncate_to(start).expect("truncate to start");
        assert_eq!(
            (follower.log_start_offset(), follower.log_end_offset()),
            (start, start)
        );
        assert_eq!(follower.high_watermark(), start);
        assert_eq!(follower.latest_epoch(), None);
        catch_up(&leader, &follower);
        assert_eq!(
            all(&follower),
            leader
                .read(start, 1 << 24, i64::MAX, true)
                .expect("read")
                .records
        );
        assert_eq!(follower.latest_epoch(), Some(2));
        follower.close().expect("close");
        drop(follower);
        let follower = open(&dir, "follower");
        assert_eq!(follower.log_start_offset(), start);
        assert_eq!(follower.end_offset_for_epoch(2), Some((2, 150)));
        assert_eq!(offsets_in(&all(&follower)).first(), Some(&start));
    }

    #[test]
    fn retries_of_the_last_five_batches_get_their_offsets_on_the_new_leader() {
        // What a producer's retry meets after its request was answered with
        // an error although the leader had written the batch (leadership
        // moved): each of its last five batches comes back as a duplicate
        // with the offsets the first write got, on the new leader as on the
        // old one; an older one is out of sequence (as in Kafka).
        let dir = tempfile::tempdir().expect("tempdir");
        let leader = open(&dir, "leader");
        let follower = open(&dir, "follower");
        let p = |seq| batch_with(4, 20, 0, (5, 0, seq), Compression::None);
        let first: Vec<AppendInfo> = (0..7)
            .map(|i| leader.append(&p(i * 4), 3, 0).expect("append"))
            .collect();
        catch_up(&leader, &follower);
        let end = follower.log_end_offset();
        for log in [&leader, &follower] {
            for (i, orig) in first.iter().enumerate().skip(2) {
                let seq = i32::try_from(i).expect("small") * 4;
                let dup = log.append(&p(seq), 4, 0).expect("retry");
                assert!(dup.duplicate, "batch {i}");
                assert_eq!(
                    (dup.base_offset, dup.last_offset),
                    (orig.base_offset, orig.last_offset)
                );
            }
            assert_eq!(log.append(&p(4), 4, 0).map_err(|e| e.error_code()), Err(45));
            assert_eq!(log.log_end_offset(), end, "a retry writes nothing");
        }
    }

    #[test]
    fn former_follower_detects_duplicates_as_leader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leader = open(&dir, "leader");
        let follower = open(&dir, "follower");
        let p = |seq| batch_with(4, 20, 0, (77, 3, seq), Compression::Snappy);
        leader.append(&batch(2, 10, 0), 0, 0).expect("append");
        let first = leader.append(&p(0), 0, 0).expect("append");
        let second = leader.append(&p(4), 0, 0).expect("append");
        catch_up(&leader, &follower);

        // The follower is elected; the producer retries its last batch.
        let dup = follower.append(&p(4), 1, 0).expect("append");
        assert!(dup.duplicate);
        assert_eq!(
            (dup.base_offset, dup.last_offset),
            (second.base_offset, second.last_offset)
        );
        let dup = follower.append(&p(0), 1, 0).expect("append");
        assert_eq!((dup.duplicate, dup.base_offset), (true, first.base_offset));
        // Sequence rules continue from the leader's batches, across a restart.
        assert_eq!(
            follower.append(&p(9), 1, 0).map_err(|e| e.error_code()),
            Err(45)
        );
        follower.close().expect("close");
        drop(follower);
        let follower = open(&dir, "follower");
        assert!(follower.append(&p(4), 1, 0).expect("append").duplicate);
        let next = follower.append(&p(8), 1, 0).expect("append");
        assert_eq!((next.duplicate, next.base_offset), (false, 10));
        assert_eq!(follower.latest_epoch(), Some(1));
    }
}
