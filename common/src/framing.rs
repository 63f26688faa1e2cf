//! The framing both protocols share: a 4-byte big-endian length, then that
//! many bytes. Sans-io: whole frames are split off a read buffer.

use bytes::{Buf, BytesMut};

/// A length prefix that is negative or over the service's limit
/// (`socket.request.max.bytes`, `jute.maxbuffer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame length {0} is negative or over the limit")]
pub struct BadLength(pub i64);

/// Splits one whole frame (without its prefix) off `buf`, if `buf` holds
/// one; otherwise reserves room for the rest of it and answers `None`.
pub fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, BadLength> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = usize::try_from(size)
        .ok()
        .filter(|&len| len <= max)
        .ok_or(BadLength(size.into()))?;
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_whole_frames_only() {
        let mut buf = BytesMut::from(&[0, 0, 0, 2, 7, 8, 0, 0, 0, 3, 9][..]);
        assert_eq!(
            split_frame(&mut buf, 10),
            Ok(Some(BytesMut::from(&[7, 8][..])))
        );
        assert_eq!(split_frame(&mut buf, 10), Ok(None), "2 of 3 bytes");
        assert!(buf.capacity() >= 7);
        buf.extend_from_slice(&[10, 11]);
        assert_eq!(
            split_frame(&mut buf, 10),
            Ok(Some(BytesMut::from(&[9, 10, 11][..])))
        );
        assert!(buf.is_empty());
        assert_eq!(split_frame(&mut buf, 10), Ok(None));
    }

    #[test]
    fn refuses_negative_and_oversized_lengths() {
        let mut over = BytesMut::from(&[0, 0, 0, 11][..]);
        assert_eq!(split_frame(&mut over, 10), Err(BadLength(11)));
        let mut negative = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(split_frame(&mut negative, 10), Err(BadLength(-1)));
    }
}
