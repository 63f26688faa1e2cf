//! Headers and per-operation request/response records, field for field as in
//! `zookeeper.jute` (release 3.8).

use super::acl::Acl;
use super::record::jute_record;
use super::stat::Stat;

jute_record! { RequestHeader { xid: i32, op: i32 } }
jute_record! { ReplyHeader { xid: i32, zxid: i64, err: i32 } }
jute_record! { MultiHeader { op: i32, done: bool, err: i32 } }
jute_record! { WatcherEvent { event_type: i32, state: i32, path: String } }

jute_record! { CreateRequest { path: String, data: Vec<u8>, acl: Vec<Acl>, flags: i32 } }
jute_record! { CreateTtlRequest { path: String, data: Vec<u8>, acl: Vec<Acl>, flags: i32, ttl: i64 } }
jute_record! { DeleteRequest { path: String, version: i32 } }
jute_record! {
    /// exists, getData, getChildren and getChildren2 share this shape.
    PathWatchRequest { path: String, watch: bool }
}
jute_record! { SetDataRequest { path: String, data: Vec<u8>, version: i32 } }
jute_record! {
    /// getACL, sync, getEphemerals, getAllChildrenNumber share this shape.
    PathRequest { path: String }
}
jute_record! { SetAclRequest { path: String, acl: Vec<Acl>, version: i32 } }
jute_record! { CheckVersionRequest { path: String, version: i32 } }
jute_record! {
    SetWatches2 {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
        persistent_watches: Vec<String>,
        persistent_recursive_watches: Vec<String>,
    }
}
jute_record! {
    SetWatches {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
    }
}
jute_record! { AddWatchRequest { path: String, mode: i32 } }
jute_record! {
    /// removeWatches and checkWatches share this shape.
    RemoveWatchesRequest { path: String, watcher_type: i32 }
}
jute_record! { AuthPacket { auth_type: i32, scheme: String, auth: Vec<u8> } }

jute_record! { CreateResponse { path: String } }
jute_record! { Create2Response { path: String, stat: Stat } }
jute_record! {
    /// exists, setData and setACL answer with a bare Stat.
    StatResponse { stat: Stat }
}
jute_record! { GetDataResponse { data: Vec<u8>, stat: Stat } }
jute_record! { GetAclResponse { acl: Vec<Acl>, stat: Stat } }
jute_record! { GetChildrenResponse { children: Vec<String> } }
jute_record! { GetChildren2Response { children: Vec<String>, stat: Stat } }
jute_record! {
    /// sync echoes its path.
    PathResponse { path: String }
}
jute_record! { GetEphemeralsResponse { ephemerals: Vec<String> } }
jute_record! { GetAllChildrenNumberResponse { total: i32 } }
jute_record! { ClientInfo { auth_scheme: String, user: String } }
jute_record! { WhoAmIResponse { client_info: Vec<ClientInfo> } }
jute_record! { ErrorResponse { err: i32 } }
