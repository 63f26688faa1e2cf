//! Consumer-group membership in the coordinator, next to the group's
//! offsets: `/consumers/<group>/metadata` holds what Kafka keeps in
//! `__consumer_offsets` as the group's metadata record (generation,
//! protocol, leader, members with their subscriptions and assignments), so
//! a broker that takes the group over restores it instead of making every
//! member rejoin. JSON with a format version; opaque bytes are base64.
//!
//! Writes are conditional on the znode version the writer last saw: a
//! broker that no longer coordinates the group (another one wrote since)
//! gets [`StoreError::Conflict`] instead of overwriting newer membership.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError};

use super::{GroupSnapshot, MemberSnapshot, Protocol};
use crate::cluster::{image, offsets};

/// The format this broker writes.
const FORMAT_VERSION: i32 = 1;

#[derive(Serialize, Deserialize)]
struct MetadataZnode {
    version: i32,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: Vec<MemberZnode>,
}

#[derive(Serialize, Deserialize)]
struct MemberZnode {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<ProtocolZnode>,
    /// Base64.
    assignment: String,
}

#[derive(Serialize, Deserialize)]
struct ProtocolZnode {
    name: String,
    /// Base64 (the subscription, for consumers).
    metadata: String,
}

/// Why stored metadata could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("group metadata is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("group metadata format version {0} is not supported")]
    Format(i32),
    #[error("group metadata holds invalid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("group metadata was written by another coordinator")]
    Conflict,
    #[error("coordinator: {0}")]
    Zk(#[from] ZkError),
}

/// The group's metadata znode.
pub fn metadata_path(group: &str) -> String {
    format!("{}/metadata", offsets::group_path(group))
}

pub fn encode(s: &GroupSnapshot) -> Vec<u8> {
    let z = MetadataZnode {
        version: FORMAT_VERSION,
        generation: s.generation_id,
        protocol_type: s.protocol_type.clone(),
        protocol: s.protocol_name.clone(),
        leader: s.leader_id.clone(),
        members: s
            .members
            .iter()
            .map(|m| MemberZnode {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocols: m
                    .protocols
                    .iter()
                    .map(|p| ProtocolZnode {
                        name: p.name.clone(),
                        metadata: STANDARD.encode(&p.metadata),
                    })
                    .collect(),
                assignment: STANDARD.encode(&m.assignment),
            })
            .collect(),
    };
    serde_json::to_vec(&z).unwrap_or_default()
}

pub fn decode(data: &[u8]) -> Result<GroupSnapshot, StoreError> {
    let z: MetadataZnode = serde_json::from_slice(data)?;
    if z.version != FORMAT_VERSION {
        return Err(StoreError::Format(z.version));
    }
    let bytes = |b64: &str| STANDARD.decode(b64).map(Bytes::from);
    let mut members = Vec::with_capacity(z.members.len());
    for m in z.members {
        let mut protocols = Vec::with_capacity(m.protocols.len());
        for p in m.protocols {
            protocols.push(Protocol {
                metadata: bytes(&p.metadata)?,
                name: p.name,
            });
        }
        members.push(MemberSnapshot {
            assignment: bytes(&m.assignment)?,
            member_id: m.member_id,
            group_instance_id: m.group_instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            session_timeout_ms: m.session_timeout_ms,
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            protocols,
        });
    }
    Ok(GroupSnapshot {
        generation_id: z.generation,
        protocol_type: z.protocol_type,
        protocol_name: z.protocol,
        leader_id: z.leader,
        members,
    })
}

/// A group's metadata znode as read: its snapshot (`None` if there is
/// none, or it cannot be read — the group then starts over, as with no
/// metadata) and the version a write must replace (`None`: no znode).
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub snapshot: Option<GroupSnapshot>,
    pub version: Option<i32>,
}

pub async fn load(client: &Client, group: &str) -> Result<Stored, ZkError> {
    let Some((data, version, _)) = image::read(client, &metadata_path(group)).await? else {
        return Ok(Stored::default());
    };
    let snapshot = match decode(&data) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(group, error = %e, "ignoring unreadable group metadata");
            None
        }
    };
    Ok(Stored {
        snapshot,
        version: Some(version),
    })
}

/// Writes `snapshot` over the znode at version `expected`, or creates it
/// when `expected` is `None`; returns the new version. A znode removed
/// meanwhile (its group's last offsets went with a deleted topic) is
/// created again.
pub async fn store(
    client: &Client,
    group: &str,
    snapshot: &GroupSnapshot,
    expected: Option<i32>,
) -> Result<i32, StoreError> {
    let path = metadata_path(group);
    let data = encode(snapshot);
    if let Some(v) = expected {
        match client.set_data(&path, &data, Some(v)).await {
            Ok(stat) => return Ok(stat.version),
            Err(ZkError::BadVersion) => return Err(StoreError::Conflict),
            Err(ZkError::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
    }
    offsets::create_parents(client, &path).await?;
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    match client.create(&path, &data, &options).await {
        Ok(_) => Ok(0),
        Err(ZkError::NodeExists) => Err(StoreError::Conflict),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip_through_json() {
        let s = GroupSnapshot {
            generation_id: 7,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader_id: Some("m1".into()),
            members: vec![MemberSnapshot {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 6000,
                rebalance_timeout_ms: 30000,
                protocols: vec![Protocol {
                    name: "range".into(),
                    metadata: Bytes::from_static(&[0, 1, 0xff]),
                }],
                assignment: Bytes::from_static(&[0, 0, 2, 9]),
            }],
        };
        assert_eq!(decode(&encode(&s)).ok(), Some(s));
        assert!(matches!(decode(b"{"), Err(StoreError::Json(_))));
        let future = br#"{"version":2,"generation":1,"protocol_type":null,"protocol":null,"leader":null,"members":[]}"#;
        assert!(matches!(decode(future), Err(StoreError::Format(2))));
        assert_eq!(
            metadata_path("a/b"),
            format!("{}/metadata", offsets::group_path("a/b"))
        );
    }
}
