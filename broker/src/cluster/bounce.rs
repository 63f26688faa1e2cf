//! Bounced leaders (Kafka's "bounced brokers"): a broker found in two
//! consecutive images with different broker epochs (registration czxids)
//! restarted or re-registered in between, its removal and return landing
//! in one image, so the controller never saw it gone. The partitions it led
//! then need a new election and leader epoch, as if it had gone and come
//! back; they stay due until the state shows a newer leader epoch, so a
//! write that fails on a stale image is redone from the next one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::image::{MetadataImage, PartitionState};

#[derive(Debug, Default)]
pub struct Bounces {
    /// Broker epochs in the last image noted.
    broker_epochs: Mutex<BTreeMap<i32, i64>>,
    /// Partitions whose leader bounced, with the leader epoch they had then.
    due: Mutex<BTreeMap<(Arc<str>, i32), i32>>,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent whatever panicked while holding them.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Bounces {
    /// Compares `img` with the last image noted and records the partitions
    /// whose leader bounced in between.
    pub fn note(&self, img: &MetadataImage) {
        let now: BTreeMap<i32, i64> = img.brokers.iter().map(|(id, b)| (*id, b.epoch)).collect();
        let before = std::mem::replace(&mut *relock(&self.broker_epochs), now.clone());
        let bounced: BTreeSet<i32> = now
            .iter()
            .filter(|(id, epoch)| before.get(id).is_some_and(|e| e != *epoch))
            .map(|(id, _)| *id)
            .collect();
        let mut due = relock(&self.due);
        due.retain(|(t, _), _| img.topics.contains_key(t));
        if bounced.is_empty() {
            return;
        }
        tracing::info!(brokers = ?bounced, "brokers re-registered between two images");
        for topic in img.topics.values() {
            for (p, part) in topic.partitions.iter().enumerate() {
                let Some(s) = part.state.as_ref().filter(|s| bounced.contains(&s.leader)) else {
                    continue;
                };
                let p = i32::try_from(p).unwrap_or(i32::MAX);
                due.entry((topic.name.clone(), p)).or_insert(s.leader_epoch);
            }
        }
    }

    /// Whether `topic`-`p`, now in state `s`, still needs the election its
    /// leader's bounce calls for.
    pub fn pending(&self, topic: &Arc<str>, p: i32, s: &PartitionState) -> bool {
        let mut due = relock(&self.due);
        let key = (topic.clone(), p);
        match due.get(&key) {
            Some(epoch) if s.leader_epoch > *epoch => {
                due.remove(&key);
                false
            }
            Some(_) => true,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::{BrokerInfo, PartitionImage, TopicImage};

    fn state(leader: i32, leader_epoch: i32) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch,
            isr: vec![1, 2, 3],
            controller_epoch: 1,
            zk_version: 3,
        }
    }

    fn image(brokers: &[(i32, i64)], leaders: &[i32]) -> MetadataImage {
        let partitions = leaders
            .iter()
            .map(|l| PartitionImage {
                replicas: vec![1, 2, 3],
                state: Some(state(*l, 4)),
            })
            .collect();
        let t = TopicImage {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            partitions,
            configs: BTreeMap::new(),
        };
        let brokers = brokers.iter().map(|(id, epoch)| {
            let b = BrokerInfo {
                id: *id,
                rack: None,
                endpoints: vec![],
                epoch: *epoch,
            };
            (*id, b)
        });
        MetadataImage {
            brokers: brokers.collect(),
            topics: BTreeMap::from([(t.name.clone(), Arc::new(t))]),
            ..MetadataImage::default()
        }
    }

    #[test]
    fn a_re_registration_between_two_images_is_due_until_re_elected() {
        let b = Bounces::default();
        let t: Arc<str> = "t".into();
        // First image: nothing to compare with.
        b.note(&image(&[(1, 10), (2, 20), (3, 30)], &[1, 2]));
        assert!(!b.pending(&t, 0, &state(1, 4)));
        // Broker 1 re-registered (new czxid), broker 2 did not.
        b.note(&image(&[(1, 11), (2, 20), (3, 30)], &[1, 2]));
        assert!(b.pending(&t, 0, &state(1, 4)));
        assert!(!b.pending(&t, 1, &state(2, 4)));
        // Still due on the next image if the write did not land...
        b.note(&image(&[(1, 11), (2, 20), (3, 30)], &[1, 2]));
        assert!(b.pending(&t, 0, &state(1, 4)));
        // ...and done once the state has a newer leader epoch.
        assert!(!b.pending(&t, 0, &state(2, 5)));
        assert!(!b.pending(&t, 0, &state(1, 4)));
        // A broker seen gone and then back is no bounce: its going already
        // moved leadership.
        b.note(&image(&[(2, 20), (3, 30)], &[2, 2]));
        b.note(&image(&[(1, 12), (2, 20), (3, 30)], &[1, 2]));
        assert!(!b.pending(&t, 0, &state(1, 4)));
    }
}
