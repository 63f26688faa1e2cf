//! Picking a partition for a record the way Kafka's producers do: murmur2 of the key
//! bytes for keyed records (so the same key lands where a Java client puts it), round
//! robin for records without a key.

/// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed 0x9747b28c, little-endian words.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java's int arithmetic wraps, and `length` is the i32 length reinterpreted.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        // The Java switch falls through from case 3 to case 1.
        for (i, byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Chooses partitions for one topic.
#[derive(Debug, Default)]
pub struct Partitioner {
    /// The next partition for a record without a key.
    next: u32,
}

impl Partitioner {
    /// The partition for a record with `key`, among `partitions` (> 0) partitions.
    pub fn partition(&mut self, key: Option<&[u8]>, partitions: i32) -> i32 {
        let count = partitions.max(1) as u32;
        match key {
            // Kafka's `toPositive(murmur2(key)) % numPartitions`.
            Some(key) => ((murmur2(key) as u32 & 0x7fff_ffff) % count) as i32,
            None => {
                let p = self.next % count;
                self.next = self.next.wrapping_add(1);
                p as i32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's `UtilsTest.testMurmur2`, plus one per tail length.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 11] = [
            (b"", 275_646_681),
            (b"string-f-24-chars-length", 124_730_809),
            (b"string-fo-25-chars-length", 1_269_511_650),
            (b"string-foo-26-chars-length", 119_165_628),
            (b"string-last-27-chars-length", 1_089_971_754),
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn keyed_records_follow_the_hash() {
        let mut p = Partitioner::default();
        // toPositive(-790332482) % 10 = 1357151166 % 10
        assert_eq!(p.partition(Some(b"foobar"), 10), 6);
        assert_eq!(p.partition(Some(b"foobar"), 10), 6);
    }

    #[test]
    fn null_keys_go_round_robin() {
        let mut p = Partitioner::default();
        let picks: Vec<_> = (0..5).map(|_| p.partition(None, 3)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1]);
    }
}
