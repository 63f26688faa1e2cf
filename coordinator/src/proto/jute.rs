//! Jute primitives: checked big-endian reads from a byte slice and writes into a
//! `BytesMut`. Every length read from the wire is validated before use.

use bytes::{BufMut, BytesMut};

/// Largest buffer, string or frame accepted, as ZooKeeper's `jute.maxbuffer`
/// (0xfffff bytes by default).
pub const DEFAULT_MAX_BUFFER: usize = 0xfffff;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record truncated")]
    Truncated,
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("unknown opcode {0}")]
    UnknownOp(i32),
}

/// A cursor over one received frame.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.array::<1>()?[0] != 0)
    }

    /// A length prefix: -1 means null, anything else must fit in the frame.
    fn len(&mut self) -> Result<Option<usize>, DecodeError> {
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::Invalid("negative length")),
            // Compare against what is left rather than trusting the prefix.
            n if n as usize > self.buf.len() => Err(DecodeError::Truncated),
            n => Ok(Some(n as usize)),
        }
    }

    /// A `buffer`; null decodes as empty, as ZooKeeper's server treats it.
    pub fn buffer(&mut self) -> Result<&'a [u8], DecodeError> {
        match self.len()? {
            None => Ok(&[]),
            Some(n) => self.take(n),
        }
    }

    /// A `ustring`; null decodes as empty.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.buffer()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Invalid("utf-8 string"))
    }

    /// A `vector<T>`; null decodes as empty. The count is bounded by the bytes
    /// left so a forged count cannot make us allocate.
    pub fn vec<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = match self.i32()? {
            -1 => return Ok(Vec::new()),
            n if n < 0 => return Err(DecodeError::Invalid("negative count")),
            n => n as usize,
        };
        let mut out = Vec::with_capacity(count.min(self.buf.len()));
        for _ in 0..count {
            out.push(item(self)?);
        }
        Ok(out)
    }
}

/// Writes jute primitives.
pub trait JuteWrite {
    fn put_bool_j(&mut self, v: bool);
    fn put_buffer(&mut self, v: &[u8]);
    fn put_string(&mut self, v: &str);
    fn put_vec<T>(&mut self, items: &[T], each: impl FnMut(&mut Self, &T));
}

impl JuteWrite for BytesMut {
    fn put_bool_j(&mut self, v: bool) {
        self.put_u8(u8::from(v));
    }

    fn put_buffer(&mut self, v: &[u8]) {
        self.put_i32(v.len() as i32);
        self.put_slice(v);
    }

    fn put_string(&mut self, v: &str) {
        self.put_buffer(v.as_bytes());
    }

    fn put_vec<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.put_i32(items.len() as i32);
        for item in items {
            each(self, item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_lengths_are_rejected_without_allocating() {
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(r.buffer(), Err(DecodeError::Truncated));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(r.buffer(), Err(DecodeError::Invalid("negative length")));
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(r.vec(|r| r.i64()), Err(DecodeError::Truncated));
    }

    #[test]
    fn null_buffer_and_vector_are_empty() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.buffer(), Ok(&[][..]));
        assert_eq!(r.vec(|r| r.i32()), Ok(vec![]));
        assert_eq!(r.remaining(), 0);
    }
}
