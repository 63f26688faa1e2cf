//! ACL records: a permission mask and an `Id { scheme, id }`.

use super::record::jute_record;

pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;
}

jute_record! {
    /// One entry of a node's access control list.
    Acl { perms: i32, scheme: String, id: String }
}

impl Acl {
    /// `world:anyone` with every permission: ZooKeeper's `OPEN_ACL_UNSAFE`.
    pub fn open() -> Self {
        Self {
            perms: perms::ALL,
            scheme: "world".into(),
            id: "anyone".into(),
        }
    }
}
