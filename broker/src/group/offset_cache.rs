//! The coordinating broker's write-through cache of committed offsets,
//! per group, dropped whenever a group may have been coordinated elsewhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cluster::offsets::GroupOffsets;
use crate::cluster::MetadataImage;

/// Per-group cached offsets, dropped whenever the set of live brokers
/// changes (a group may have been coordinated elsewhere meanwhile) or a
/// topic comes or goes (a deleted topic's offsets are deleted with it).
#[derive(Default)]
pub(super) struct OffsetCache {
    inner: Mutex<(Fingerprint, HashMap<String, Slot>)>,
}

/// Live brokers, and the topic ids XOR-ed together.
type Fingerprint = (Vec<i32>, u128);

pub(super) type Slot = Arc<tokio::sync::Mutex<Option<GroupOffsets>>>;

impl OffsetCache {
    pub(super) fn slot(&self, group: &str, img: &MetadataImage) -> Slot {
        let brokers: Vec<i32> = img.brokers.keys().copied().collect();
        let topics = img
            .topics
            .values()
            .fold(0u128, |acc, t| acc ^ t.id.as_u128());
        let fingerprint = (brokers, topics);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.0 != fingerprint {
            *inner = (fingerprint, HashMap::new());
        }
        inner.1.entry(group.to_owned()).or_default().clone()
    }

    pub(super) fn forget(&self, group: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .remove(group);
    }
}
