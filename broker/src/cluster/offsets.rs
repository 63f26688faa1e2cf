//! Committed consumer offsets, kept in the coordinator under Kafka's
//! classic `/consumers/<group>/offsets/<topic>/<partition>` layout, so they
//! outlive any broker and any broker can serve them after a coordinator
//! move. Kafka's own ZooKeeper-era format is the bare ASCII offset; ours
//! is a small JSON object that also keeps what modern clients round-trip
//! (leader epoch, metadata string). Readers accept both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError};

use super::image;

/// One committed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    #[serde(default = "no_epoch")]
    pub leader_epoch: i32,
    #[serde(default)]
    pub metadata: Option<String>,
    #[serde(default)]
    pub commit_timestamp: i64,
}

fn no_epoch() -> i32 {
    -1
}

#[derive(Serialize, Deserialize)]
struct OffsetZnode {
    version: i32,
    #[serde(flatten)]
    committed: CommittedOffset,
}

pub fn group_path(group: &str) -> String {
    format!("/consumers/{group}")
}

pub fn offsets_path(group: &str) -> String {
    format!("/consumers/{group}/offsets")
}

pub fn offset_path(group: &str, topic: &str, partition: i32) -> String {
    format!("/consumers/{group}/offsets/{topic}/{partition}")
}

pub fn encode(c: &CommittedOffset) -> Vec<u8> {
    serde_json::to_vec(&OffsetZnode {
        version: 1,
        committed: c.clone(),
    })
    .unwrap_or_default()
}

/// Ours (JSON) or Kafka's (ASCII decimal).
pub fn decode(data: &[u8]) -> Option<CommittedOffset> {
    if let Ok(z) = serde_json::from_slice::<OffsetZnode>(data) {
        return Some(z.committed);
    }
    let offset = std::str::from_utf8(data).ok()?.trim().parse().ok()?;
    Some(CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp: 0,
    })
}

/// (topic, partition) -> committed offset.
pub type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

fn persistent() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

/// Writes several partitions' offsets in one transaction; missing parents
/// are created first (Kafka's `createRecursive`).
pub async fn commit(
    client: &Client,
    group: &str,
    entries: &[(String, i32, CommittedOffset)],
) -> Result<(), ZkError> {
    for attempt in 0..2 {
        let mut multi = client.new_multi_writer();
        for (topic, partition, c) in entries {
            multi.add_set_data(&offset_path(group, topic, *partition), &encode(c), None)?;
        }
        match multi.commit().await.map_err(ZkError::from) {
            Ok(_) => return Ok(()),
            Err(ZkError::NoNode) if attempt == 0 => {
                for (topic, partition, c) in entries {
                    create_recursive(client, &offset_path(group, topic, *partition), &encode(c))
                        .await?;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn create_recursive(client: &Client, path: &str, data: &[u8]) -> Result<(), ZkError> {
    let mut end = 0;
    while let Some(i) = path[end + 1..].find('/') {
        end += i + 1;
        match client.create(&path[..end], b"", &persistent()).await {
            Ok(_) | Err(ZkError::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    match client.create(path, data, &persistent()).await {
        Ok(_) | Err(ZkError::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Every committed offset of a group.
pub async fn load(client: &Client, group: &str) -> Result<GroupOffsets, ZkError> {
    let mut out = BTreeMap::new();
    for topic in image::children(client, &offsets_path(group)).await? {
        let base = format!("{}/{topic}", offsets_path(group));
        for p in image::children(client, &base).await? {
            let Ok(partition) = p.parse::<i32>() else {
                continue;
            };
            if let Some((data, _, _)) = image::read(client, &format!("{base}/{p}")).await? {
                if let Some(c) = decode(&data) {
                    out.insert((topic.clone(), partition), c);
                }
            }
        }
    }
    Ok(out)
}

/// Removes some partitions' offsets (OffsetDelete), leaving empty parents.
pub async fn delete(
    client: &Client,
    group: &str,
    partitions: &[(String, i32)],
) -> Result<(), ZkError> {
    for (topic, partition) in partitions {
        match client
            .delete(&offset_path(group, topic, *partition), None)
            .await
        {
            Ok(()) | Err(ZkError::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes a group's whole subtree (DeleteGroups).
pub async fn delete_group(client: &Client, group: &str) -> Result<(), ZkError> {
    delete_tree(client, &group_path(group)).await
}

async fn delete_tree(client: &Client, path: &str) -> Result<(), ZkError> {
    for child in image::children(client, path).await? {
        Box::pin(delete_tree(client, &format!("{path}/{child}"))).await?;
    }
    match client.delete(path, None).await {
        Ok(()) | Err(ZkError::NoNode) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Groups that have committed offsets (ListGroups shows them as Empty
/// groups even when no member is connected, as Kafka does).
pub async fn groups(client: &Client) -> Result<Vec<String>, ZkError> {
    image::children(client, "/consumers").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ours_and_kafkas_formats() {
        let c = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: Some("m".into()),
            commit_timestamp: 17,
        };
        assert_eq!(decode(&encode(&c)), Some(c));
        let kafka = decode(b"99").expect("ascii");
        assert_eq!(
            (kafka.offset, kafka.leader_epoch, kafka.metadata),
            (99, -1, None)
        );
        assert_eq!(decode(b"not an offset"), None);
    }
}
