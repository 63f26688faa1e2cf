//! ZooKeeper's operation codes (`ZooDefs.OpCode`) and the special xids.

/// xid of a watch notification sent by the server.
pub const NOTIFICATION_XID: i32 = -1;
/// xid of a ping and its reply.
pub const PING_XID: i32 = -2;
/// xid the clients use for auth packets.
pub const AUTH_XID: i32 = -4;
/// xid the clients use for setWatches after a reconnect.
pub const SET_WATCHES_XID: i32 = -8;
/// Opcode of the createSession transaction; clients never send it.
pub const CREATE_SESSION: i32 = -10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum OpCode {
    Error = -1,
    Create = 1,
    Delete = 2,
    Exists = 3,
    GetData = 4,
    SetData = 5,
    GetAcl = 6,
    SetAcl = 7,
    GetChildren = 8,
    Sync = 9,
    Ping = 11,
    GetChildren2 = 12,
    Check = 13,
    Multi = 14,
    Create2 = 15,
    Reconfig = 16,
    CheckWatches = 17,
    RemoveWatches = 18,
    CreateContainer = 19,
    DeleteContainer = 20,
    CreateTtl = 21,
    MultiRead = 22,
    Auth = 100,
    SetWatches = 101,
    Sasl = 102,
    GetEphemerals = 103,
    GetAllChildrenNumber = 104,
    SetWatches2 = 105,
    AddWatch = 106,
    WhoAmI = 107,
    CloseSession = -11,
}

impl OpCode {
    pub fn from_i32(v: i32) -> Option<Self> {
        use OpCode::*;
        Some(match v {
            -1 => Error,
            1 => Create,
            2 => Delete,
            3 => Exists,
            4 => GetData,
            5 => SetData,
            6 => GetAcl,
            7 => SetAcl,
            8 => GetChildren,
            9 => Sync,
            11 => Ping,
            12 => GetChildren2,
            13 => Check,
            14 => Multi,
            15 => Create2,
            16 => Reconfig,
            17 => CheckWatches,
            18 => RemoveWatches,
            19 => CreateContainer,
            20 => DeleteContainer,
            21 => CreateTtl,
            22 => MultiRead,
            100 => Auth,
            101 => SetWatches,
            102 => Sasl,
            103 => GetEphemerals,
            104 => GetAllChildrenNumber,
            105 => SetWatches2,
            106 => AddWatch,
            107 => WhoAmI,
            -11 => CloseSession,
            _ => return None,
        })
    }
}
