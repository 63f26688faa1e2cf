//! The `Jute` trait (encode into a buffer, decode from a frame) for primitives,
//! and `jute_record!`, which derives both directions for a record from its
//! field list, so the two can never disagree.

use bytes::{BufMut, BytesMut};

use super::jute::{DecodeError, JuteWrite, Reader};

/// A value with a jute wire form.
pub trait Jute: Sized {
    fn write(&self, buf: &mut BytesMut);
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Jute for i32 {
    fn write(&self, buf: &mut BytesMut) {
        buf.put_i32(*self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.i32()
    }
}

impl Jute for i64 {
    fn write(&self, buf: &mut BytesMut) {
        buf.put_i64(*self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.i64()
    }
}

impl Jute for bool {
    fn write(&self, buf: &mut BytesMut) {
        buf.put_bool_j(*self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.bool()
    }
}

impl Jute for String {
    fn write(&self, buf: &mut BytesMut) {
        buf.put_string(self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.string()
    }
}

/// `buffer`: raw bytes (node data, passwords, auth tokens).
impl Jute for Vec<u8> {
    fn write(&self, buf: &mut BytesMut) {
        buf.put_buffer(self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.buffer()?.to_vec())
    }
}

/// `vector<T>` for records and strings.
impl<T: Jute> Jute for Vec<T> {
    fn write(&self, buf: &mut BytesMut) {
        buf.put_vec(self, |b, item| item.write(b));
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.vec(T::read)
    }
}

/// Declares a record struct whose fields are written and read in order.
macro_rules! jute_record {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::proto::record::Jute for $name {
            fn write(&self, _buf: &mut bytes::BytesMut) {
                $($crate::proto::record::Jute::write(&self.$field, _buf);)*
            }
            fn read(
                _r: &mut $crate::proto::jute::Reader<'_>,
            ) -> Result<Self, $crate::proto::jute::DecodeError> {
                Ok(Self { $($field: $crate::proto::record::Jute::read(_r)?,)* })
            }
        }
    };
}
pub(crate) use jute_record;
