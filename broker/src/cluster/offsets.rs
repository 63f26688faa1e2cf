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

/// A group id as one znode name. Kafka accepts any string as a group id,
/// including `""`, `.`, `..` and ids with `/`, which ZooKeeper paths cannot
/// hold: those characters (and `%` itself, and the control and reserved
/// ranges ZooKeeper refuses; surrogates cannot occur in a Rust string) are
/// percent-encoded, `""` is `%`. Every other
/// id is its own name, as in Kafka's layout.
pub fn group_segment(group: &str) -> String {
    match group {
        "" => return "%".to_owned(),
        "." => return "%2E".to_owned(),
        ".." => return "%2E%2E".to_owned(),
        _ => {}
    }
    let mut out = String::with_capacity(group.len());
    for c in group.chars() {
        let reserved = matches!(c, '%' | '/')
            || c <= '\u{1f}'
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c);
        if reserved {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The inverse of [`group_segment`]; `None` for a name it cannot produce.
pub fn group_from_segment(segment: &str) -> Option<String> {
    if segment == "%" {
        return Some(String::new());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn group_path(group: &str) -> String {
    format!("/consumers/{}", group_segment(group))
}

pub fn offsets_path(group: &str) -> String {
    format!("{}/offsets", group_path(group))
}

pub fn offset_path(group: &str, topic: &str, partition: i32) -> String {
    format!("{}/{topic}/{partition}", offsets_path(group))
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

/// Creates every missing ancestor of `path` (empty, persistent).
pub(crate) async fn create_parents(client: &Client, path: &str) -> Result<(), ZkError> {
    let mut end = 0;
    while let Some(i) = path[end + 1..].find('/') {
        end += i + 1;
        match client.create(&path[..end], b"", &persistent()).await {
            Ok(_) | Err(ZkError::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn create_recursive(client: &Client, path: &str, data: &[u8]) -> Result<(), ZkError> {
    create_parents(client, path).await?;
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

/// Drops every group's offsets for a deleted topic, as Kafka's group
/// coordinator does when partitions go, so a re-created topic of the same
/// name is read from its start.
pub async fn delete_topic(client: &Client, topic: &str) -> Result<(), ZkError> {
    for segment in image::children(client, "/consumers").await? {
        let group = format!("/consumers/{segment}");
        let offsets = format!("{group}/offsets/{topic}");
        if client.check_stat(&offsets).await?.is_none() {
            continue;
        }
        delete_tree(client, &offsets).await?;
        drop_if_forgotten(client, &group).await?;
    }
    Ok(())
}

/// An Empty group whose last offsets went with a topic is gone, as Kafka's
/// `cleanupGroupMetadata` makes it Dead: its metadata znode (left by its
/// last generation) must not bring it back in ListGroups or after a restart.
/// Metadata written meanwhile (a new generation) keeps the group.
async fn drop_if_forgotten(client: &Client, group: &str) -> Result<(), ZkError> {
    if !image::children(client, &format!("{group}/offsets"))
        .await?
        .is_empty()
    {
        return Ok(());
    }
    let meta = format!("{group}/metadata");
    if let Some((data, version, _)) = image::read(client, &meta).await? {
        // Only whether members are left matters here; the group module owns
        // the format (`group::znode`), and an unreadable one counts as empty.
        let empty = serde_json::from_slice::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| v.get("members")?.as_array().map(Vec::is_empty))
            .unwrap_or(true);
        if !empty {
            return Ok(());
        }
        match client.delete(&meta, Some(version)).await {
            Ok(()) | Err(ZkError::NoNode) => {}
            Err(ZkError::BadVersion) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    for path in [format!("{group}/offsets"), group.to_owned()] {
        match client.delete(&path, None).await {
            // Another write (a commit, a new generation) got there first.
            Ok(()) | Err(ZkError::NoNode | ZkError::NotEmpty) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes a group's whole subtree (DeleteGroups): offsets and metadata.
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

/// Groups that have committed offsets or persisted membership (ListGroups
/// shows them even when no member is connected, as Kafka does).
pub async fn groups(client: &Client) -> Result<Vec<String>, ZkError> {
    Ok(image::children(client, "/consumers")
        .await?
        .iter()
        .filter_map(|s| group_from_segment(s))
        .collect())
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

    #[test]
    fn every_group_id_is_one_valid_znode_name() {
        for id in [
            "",
            ".",
            "..",
            "a/b",
            "a%2Fb",
            "%",
            "plain-group_1.x",
            "tab\there",
            "\u{7f}",
        ] {
            let seg = group_segment(id);
            assert!(
                !seg.is_empty() && !seg.contains('/') && seg != "." && seg != "..",
                "{id:?} -> {seg:?}"
            );
            assert_eq!(group_from_segment(&seg).as_deref(), Some(id), "{seg:?}");
        }
        assert_eq!(
            group_segment("notification_service"),
            "notification_service"
        );
        assert_ne!(group_path("a/b"), format!("{}/b", group_path("a")));
    }

    proptest::proptest! {
        #[test]
        fn group_segments_round_trip(id in ".*") {
            let seg = group_segment(&id);
            proptest::prop_assert!(!seg.contains('/'));
            proptest::prop_assert_eq!(group_from_segment(&seg), Some(id));
        }
    }
}
