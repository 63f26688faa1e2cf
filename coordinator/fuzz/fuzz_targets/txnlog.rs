//! Fuzzes the transaction-log parser (`storage::txnlog::parse`): it never
//! panics, it stops cleanly only at the end or at a zeroed (preallocated)
//! record header, its valid prefix re-parses to the same entries without a
//! problem, and re-framing those entries parses back to them.
#![no_main]

use bytes::{BufMut, BytesMut};
use coordinator::storage::txnlog::{frame, parse};
use libfuzzer_sys::fuzz_target;

/// The log file magic (private in txnlog.rs).
const MAGIC: &[u8; 8] = b"EDDYLOG1";

fn check(bytes: &[u8]) {
    let c = parse(bytes);
    let valid = c.valid_len as usize;
    assert!(valid <= bytes.len());
    if valid == 0 {
        assert!(c.entries.is_empty());
        assert!(c.problem.is_some());
        return;
    }
    if c.problem.is_none() && valid < bytes.len() {
        // A clean stop before the end is only the zeroed, preallocated tail.
        assert!(bytes.len() - valid >= 8 && bytes[valid..valid + 8] == [0; 8], "stopped at {valid}/{}", bytes.len());
    }
    if valid == bytes.len() {
        assert_eq!(c.problem, None);
    }
    let prefix = parse(&bytes[..valid]);
    assert_eq!(prefix.entries, c.entries);
    assert_eq!(prefix.valid_len as usize, valid);
    assert_eq!(prefix.problem, None);

    let mut buf = BytesMut::new();
    buf.put_slice(MAGIC);
    for e in &c.entries {
        frame(e, &mut buf);
    }
    let again = parse(&buf);
    assert_eq!(again.entries, c.entries);
    assert_eq!(again.problem, None);
    assert_eq!(again.valid_len as usize, buf.len());
}

fuzz_target!(|data: &[u8]| {
    // As given (mostly a bad header), and as a log body behind a good header.
    check(data);
    let mut with_magic = MAGIC.to_vec();
    with_magic.extend_from_slice(data);
    check(&with_magic);
});
