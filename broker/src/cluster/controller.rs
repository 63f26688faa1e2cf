//! The controller role (Kafka's ZooKeeper-mode `KafkaController`): elected
//! through `/controller` with a `/controller_epoch` bump, it gives new
//! partitions their first state, elects leaders from the ISR when brokers
//! come and go, and finishes topic deletions. Every write is fenced by the
//! epoch znode's version, so a deposed controller cannot overwrite a newer one.

use std::collections::{BTreeMap, BTreeSet};

use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError, MultiWriteResult};

use super::image::{self, MetadataImage, PartitionState};
use super::znode::{self, ControllerZnode, PartitionStateZnode};

/// This broker holds the controller role at `epoch`.
#[derive(Debug)]
pub struct Controller {
    pub epoch: i32,
    /// The fencing token: `/controller_epoch`'s version after our bump.
    epoch_zk_version: i32,
    policy: ElectionPolicy,
    /// Each live broker's epoch (registration czxid) as of the last
    /// reconcile: a broker whose epoch changed restarted in between, maybe
    /// faster than its absence was seen.
    broker_epochs: BTreeMap<i32, i64>,
    /// Restarted brokers still treated as failed: until no partition has
    /// one as its leader or in a led partition's ISR.
    restarting: BTreeSet<i32>,
}

/// Kafka's election switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionPolicy {
    /// `unclean.leader.election.enable` (default false): with no live ISR
    /// member, elect any live replica and accept losing what it lacks.
    pub unclean: bool,
    /// `auto.leader.rebalance.enable` (default true): move leadership back
    /// to the preferred (first assigned) replica once it is in the ISR...
    pub preferred: bool,
    /// ...checked every `leader.imbalance.check.interval.seconds` (300 s),
    /// as Kafka does, not at each change: a replica that just rejoined
    /// does not take leadership (and pending writes) away at once.
    pub preferred_check_interval: std::time::Duration,
}

impl Default for ElectionPolicy {
    fn default() -> Self {
        ElectionPolicy {
            unclean: false,
            preferred: true,
            preferred_check_interval: std::time::Duration::from_secs(300),
        }
    }
}

/// Why a controller write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("another broker became controller")]
    Moved,
    #[error(transparent)]
    Zk(#[from] ZkError),
}

fn persistent() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

impl Controller {
    /// Kafka's `registerControllerAndIncrementControllerEpoch`: one multi
    /// creates `/controller` and bumps the epoch; losing the race is `None`.
    pub async fn try_elect(
        client: &Client,
        broker_id: i32,
        policy: ElectionPolicy,
    ) -> Result<Option<Controller>, ZkError> {
        if image::read(client, znode::CONTROLLER).await?.is_some() {
            return Ok(None);
        }
        let (epoch, version) = match image::read(client, znode::CONTROLLER_EPOCH).await? {
            Some((data, version, _)) => {
                let epoch = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                    .unwrap_or(0);
                (epoch, version)
            }
            None => {
                match client
                    .create(znode::CONTROLLER_EPOCH, b"0", &persistent())
                    .await
                {
                    Ok(_) | Err(ZkError::NodeExists) => {}
                    Err(e) => return Err(e),
                }
                return Box::pin(Self::try_elect(client, broker_id, policy)).await;
            }
        };
        let data = serde_json::to_vec(&ControllerZnode {
            version: 2,
            brokerid: broker_id,
            timestamp: Some(znode::now_string()),
            kraft_controller_epoch: -1,
        })
        .unwrap_or_default();
        let mut multi = client.new_multi_writer();
        multi.add_create(
            znode::CONTROLLER,
            &data,
            &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
        )?;
        multi.add_set_data(
            znode::CONTROLLER_EPOCH,
            (epoch + 1).to_string().as_bytes(),
            Some(version),
        )?;
        match multi.commit().await {
            Ok(results) => {
                let epoch_zk_version = results
                    .into_iter()
                    .find_map(|r| match r {
                        MultiWriteResult::SetData { stat } => Some(stat.version),
                        _ => None,
                    })
                    .unwrap_or(version + 1);
                tracing::info!(
                    broker = broker_id,
                    epoch = epoch + 1,
                    "became the controller"
                );
                Ok(Some(Controller {
                    epoch: epoch + 1,
                    epoch_zk_version,
                    policy,
                    broker_epochs: BTreeMap::new(),
                    restarting: BTreeSet::new(),
                }))
            }
            Err(e) => match ZkError::from(e) {
                ZkError::NodeExists | ZkError::BadVersion => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Brings the coordinator's partition states in line with `img`: first
    /// states for new partitions, leaders for partitions whose leader is
    /// gone, dead brokers out of ISRs, and pending deletions done.
    /// Idempotent: a stale image only makes some writes fail and be retried
    /// on the next event.
    ///
    /// A broker that came back with a new epoch is treated as Kafka's
    /// controller treats a bounced broker: failed first (leadership moves
    /// away, it leaves the ISRs, leader epochs move on), then started — on
    /// the next image, once those writes are seen. Its new incarnation may
    /// have lost what it had not flushed, so it must not simply carry on
    /// leading at the old epoch.
    pub async fn reconcile(
        &mut self,
        client: &Client,
        img: &MetadataImage,
        preferred: bool,
    ) -> Result<(), ControllerError> {
        let bounced = restarted(&self.broker_epochs, img);
        if !bounced.is_empty() {
            tracing::info!(brokers = ?bounced, "brokers restarted: their partitions are re-elected as after a failure");
        }
        self.broker_epochs = img.brokers.values().map(|b| (b.id, b.epoch)).collect();
        self.restarting.extend(bounced);
        self.restarting
            .retain(|&b| img.brokers.contains_key(&b) && still_holds(img, b));
        let mut live: BTreeSet<i32> = img.brokers.keys().copied().collect();
        live.retain(|b| !self.restarting.contains(b));
        let preferred = preferred && self.restarting.is_empty();
        self.reconcile_live(client, img, &live, preferred).await
    }

    async fn reconcile_live(
        &self,
        client: &Client,
        img: &MetadataImage,
        live: &BTreeSet<i32>,
        preferred: bool,
    ) -> Result<(), ControllerError> {
        for marker in image::children(client, znode::DELETE_TOPICS).await? {
            self.delete_topic(client, &marker).await?;
        }
        for topic in img.topics.values() {
            let mut new_states = Vec::new();
            for (p, part) in topic.partitions.iter().enumerate() {
                let p = i32::try_from(p).unwrap_or(i32::MAX);
                match &part.state {
                    None => {
                        let isr: Vec<i32> = part
                            .replicas
                            .iter()
                            .copied()
                            .filter(|r| live.contains(r))
                            .collect();
                        // Kafka leaves a partition with no live replica in
                        // NewPartition until one appears.
                        if let Some(&leader) = isr.first() {
                            new_states.push((p, leader, isr));
                        }
                    }
                    Some(state) => {
                        if let Some(next) = self.next_state(&part.replicas, state, live, preferred)
                        {
                            self.write_state(client, &topic.name, p, &next, Some(state.zk_version))
                                .await?;
                        }
                    }
                }
            }
            if !new_states.is_empty() {
                self.create_states(client, &topic.name, new_states).await?;
            }
        }
        Ok(())
    }

    /// The state a partition should move to given the live brokers, if any
    /// change is due: Kafka's offline-partition election, OfflineReplica
    /// ISR removal, and preferred-leader election. A restarted broker is
    /// not in `live` until it is released (see `reconcile`).
    fn next_state(
        &self,
        replicas: &[i32],
        s: &PartitionState,
        live: &BTreeSet<i32>,
        check_preferred: bool,
    ) -> Option<PartitionStateZnode> {
        let live_isr: Vec<i32> = s.isr.iter().copied().filter(|b| live.contains(b)).collect();
        let leader_ok = s.leader >= 0 && live.contains(&s.leader);
        let preferred = replicas.first().copied().filter(|p| {
            check_preferred && self.policy.preferred && *p != s.leader && live_isr.contains(p)
        });
        if leader_ok && live_isr.len() == s.isr.len() && preferred.is_none() {
            return None;
        }
        let (leader, isr) = if let Some(p) = preferred {
            (p, live_isr)
        } else if leader_ok {
            (s.leader, live_isr)
        } else if let Some(&l) = replicas.iter().find(|r| live_isr.contains(r)) {
            (l, live_isr)
        } else if let Some(&l) = replicas
            .iter()
            .find(|r| self.policy.unclean && live.contains(r))
        {
            tracing::warn!(leader = l, isr = ?s.isr, "unclean leader election: messages only the old ISR had are lost");
            (l, vec![l])
        } else {
            // No live ISR member: no leader, and the last ISR is kept so a
            // returning member (and only it) can lead again.
            if s.leader == -1 {
                return None;
            }
            (-1, s.isr.clone())
        };
        let isr = if isr.is_empty() { s.isr.clone() } else { isr };
        // The leader epoch moves only with the leader (as KRaft from
        // metadata version 3.6 on): an ISR-only change is fenced by the
        // znode version alone, Kafka's partition epoch. A bump there would
        // tell the leader, its followers and its pending acks=all produces
        // that leadership moved when it did not.
        let leader_epoch = if leader == s.leader {
            s.leader_epoch
        } else {
            s.leader_epoch + 1
        };
        Some(PartitionStateZnode {
            controller_epoch: self.epoch,
            leader,
            version: 1,
            leader_epoch,
            isr,
            leader_recovery_state: None,
        })
    }

    async fn create_states(
        &self,
        client: &Client,
        topic: &str,
        states: Vec<(i32, i32, Vec<i32>)>,
    ) -> Result<(), ControllerError> {
        // Kafka ignores failures on these two levels: they may exist already.
        let mut paths = vec![znode::partitions_path(topic)];
        paths.extend(
            states
                .iter()
                .map(|(p, _, _)| znode::partition_path(topic, *p)),
        );
        for path in paths {
            match client.create(&path, b"", &persistent()).await {
                Ok(_) | Err(ZkError::NodeExists) => {}
                Err(ZkError::NoNode) => return Ok(()), // topic deleted meanwhile
                Err(e) => return Err(e.into()),
            }
        }
        let mut multi = client.new_multi_writer();
        multi.add_check_version(znode::CONTROLLER_EPOCH, self.epoch_zk_version)?;
        for (p, leader, isr) in &states {
            let z = PartitionStateZnode {
                controller_epoch: self.epoch,
                leader: *leader,
                version: 1,
                leader_epoch: 0,
                isr: isr.clone(),
                leader_recovery_state: None,
            };
            multi.add_create(&znode::state_path(topic, *p), &to_json(&z), &persistent())?;
        }
        match self.commit(multi).await {
            Ok(()) => {
                tracing::info!(topic, partitions = states.len(), "partitions online");
                Ok(())
            }
            // A state already there (stale image) or the topic going away:
            // the next image tells what is left to do.
            Err(ControllerError::Zk(ZkError::NodeExists | ZkError::NoNode)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A fenced conditional write of one partition state.
    pub async fn write_state(
        &self,
        client: &Client,
        topic: &str,
        partition: i32,
        state: &PartitionStateZnode,
        expected_version: Option<i32>,
    ) -> Result<(), ControllerError> {
        let mut multi = client.new_multi_writer();
        multi.add_check_version(znode::CONTROLLER_EPOCH, self.epoch_zk_version)?;
        multi.add_set_data(
            &znode::state_path(topic, partition),
            &to_json(state),
            expected_version,
        )?;
        match self.commit(multi).await {
            Ok(()) => {
                tracing::info!(
                    topic,
                    partition,
                    leader = state.leader,
                    leader_epoch = state.leader_epoch,
                    isr = ?state.isr,
                    "partition state changed"
                );
                Ok(())
            }
            Err(ControllerError::Zk(ZkError::BadVersion | ZkError::NoNode)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Kafka's `TopicDeletionManager` end state: the topic's znodes, its
    /// config and the marker go, fenced. Brokers drop their logs when the
    /// topic leaves their image.
    async fn delete_topic(&self, client: &Client, topic: &str) -> Result<(), ControllerError> {
        super::offsets::delete_topic(client, topic).await?;
        let mut paths = Vec::new();
        let parts = image::children(client, &znode::partitions_path(topic)).await?;
        for p in &parts {
            let base = format!("{}/{p}", znode::partitions_path(topic));
            if image::read(client, &format!("{base}/state"))
                .await?
                .is_some()
            {
                paths.push(format!("{base}/state"));
            }
            paths.push(base);
        }
        if image::read(client, &znode::partitions_path(topic))
            .await?
            .is_some()
        {
            paths.push(znode::partitions_path(topic));
        }
        if image::read(client, &znode::topic_path(topic))
            .await?
            .is_some()
        {
            paths.push(znode::topic_path(topic));
        }
        if image::read(client, &znode::topic_config_path(topic))
            .await?
            .is_some()
        {
            paths.push(znode::topic_config_path(topic));
        }
        paths.push(znode::delete_marker_path(topic));
        let mut multi = client.new_multi_writer();
        multi.add_check_version(znode::CONTROLLER_EPOCH, self.epoch_zk_version)?;
        for path in &paths {
            multi.add_delete(path, None)?;
        }
        match self.commit(multi).await {
            Ok(()) => {
                tracing::info!(topic, "topic deleted");
                Ok(())
            }
            Err(ControllerError::Zk(ZkError::NoNode | ZkError::NotEmpty)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Commits a multi whose first op is the epoch check; a failed check
    /// means a newer controller exists.
    async fn commit(
        &self,
        mut multi: zookeeper_client::MultiWriter<'_>,
    ) -> Result<(), ControllerError> {
        match multi.commit().await {
            Ok(_) => Ok(()),
            Err(zookeeper_client::MultiWriteError::OperationFailed { index: 0, .. }) => {
                Err(ControllerError::Moved)
            }
            Err(e) => Err(ControllerError::Zk(e.into())),
        }
    }
}

/// Whether `broker` still leads a partition or sits in the ISR of one that
/// has a leader (a leaderless partition keeps its last ISR on purpose).
fn still_holds(img: &MetadataImage, broker: i32) -> bool {
    img.topics
        .values()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.state.as_ref())
        .any(|s| s.leader == broker || (s.leader >= 0 && s.isr.contains(&broker)))
}

/// Brokers whose epoch in `img` differs from the one last seen.
fn restarted(known: &BTreeMap<i32, i64>, img: &MetadataImage) -> BTreeSet<i32> {
    img.brokers
        .values()
        .filter(|b| known.get(&b.id).is_some_and(|&e| e != b.epoch))
        .map(|b| b.id)
        .collect()
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, isr: &[i32]) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch: 4,
            isr: isr.to_vec(),
            controller_epoch: 1,
            zk_version: 3,
        }
    }

    fn ctl() -> Controller {
        Controller {
            epoch: 2,
            epoch_zk_version: 2,
            policy: ElectionPolicy {
                unclean: false,
                preferred: false,
                preferred_check_interval: std::time::Duration::from_secs(300),
            },
            broker_epochs: BTreeMap::new(),
            restarting: BTreeSet::new(),
        }
    }

    #[test]
    fn preferred_leader_returns_once_in_the_isr() {
        let mut c = ctl();
        c.policy.preferred = true;
        let live = BTreeSet::from([1, 2, 3]);
        let next = c
            .next_state(&[1, 2, 3], &state(2, &[2, 3, 1]), &live, true)
            .expect("move back");
        // Only at the periodic check.
        assert!(c
            .next_state(&[1, 2, 3], &state(2, &[2, 3, 1]), &live, false)
            .is_none());
        assert_eq!(next.leader, 1);
        // Not in the ISR yet: leadership stays.
        assert!(c
            .next_state(&[1, 2, 3], &state(2, &[2, 3]), &live, true)
            .is_none());
    }

    #[test]
    fn unclean_election_takes_any_live_replica_only_when_enabled() {
        let mut c = ctl();
        let live = BTreeSet::from([3]);
        let clean = c
            .next_state(&[1, 3], &state(1, &[1]), &live, false)
            .expect("leaderless");
        assert_eq!(clean.leader, -1);
        c.policy.unclean = true;
        let unclean = c
            .next_state(&[1, 3], &state(1, &[1]), &live, false)
            .expect("elect");
        assert_eq!((unclean.leader, unclean.isr), (3, vec![3]));
    }

    #[test]
    fn healthy_partition_needs_nothing() {
        let live = BTreeSet::from([1, 2, 3]);
        assert!(ctl()
            .next_state(&[1, 2, 3], &state(1, &[1, 2, 3]), &live, false)
            .is_none());
    }

    #[test]
    fn dead_leader_is_replaced_from_the_isr_in_assignment_order() {
        let live = BTreeSet::from([2, 3]);
        let next = ctl()
            .next_state(&[1, 3, 2], &state(1, &[1, 2, 3]), &live, false)
            .expect("change");
        assert_eq!(next.leader, 3);
        assert_eq!(next.isr, vec![2, 3]);
        assert_eq!(next.leader_epoch, 5);
        assert_eq!(next.controller_epoch, 2);
    }

    #[test]
    fn dead_follower_leaves_the_isr() {
        let live = BTreeSet::from([1, 2]);
        let next = ctl()
            .next_state(&[1, 2, 3], &state(1, &[1, 2, 3]), &live, false)
            .expect("change");
        assert_eq!((next.leader, next.isr), (1, vec![1, 2]));
    }

    #[test]
    fn isr_only_change_keeps_the_leader_epoch() {
        // A dead follower leaves the ISR: same leader, same leader epoch;
        // the write is fenced by the znode version (the partition epoch).
        let live = BTreeSet::from([1, 3]);
        let next = ctl()
            .next_state(&[1, 2, 3], &state(1, &[1, 2, 3]), &live, false)
            .expect("change");
        assert_eq!((next.leader, next.isr), (1, vec![1, 3]));
        assert_eq!(next.leader_epoch, 4);
        assert_eq!(next.controller_epoch, 2);
        // Every follower gone: the leader stays alone, still epoch 4.
        let alone = BTreeSet::from([1]);
        let next = ctl()
            .next_state(&[1, 2, 3], &state(1, &[1, 2, 3]), &alone, false)
            .expect("change");
        assert_eq!((next.leader, next.isr, next.leader_epoch), (1, vec![1], 4));
    }

    #[test]
    fn a_restarted_leader_gets_a_new_leader_epoch() {
        // While restarting, broker 1 is not live: another ISR member takes
        // over, as Kafka moves leadership off a bounced broker.
        let restarting = BTreeSet::from([2, 3]);
        let next = ctl()
            .next_state(&[1, 2, 3], &state(1, &[1, 2, 3]), &restarting, false)
            .expect("election");
        assert_eq!((next.leader, next.leader_epoch), (2, 5));
        assert_eq!(next.isr, vec![2, 3]);
        // Alone in the ISR it leaves the partition leaderless (ISR kept)...
        let next = ctl()
            .next_state(&[1, 2, 3], &state(1, &[1]), &restarting, false)
            .expect("offline");
        assert_eq!((next.leader, next.leader_epoch, next.isr), (-1, 5, vec![1]));
        // ...and, released, leads again in a newer epoch.
        let offline = PartitionState {
            leader: -1,
            leader_epoch: 5,
            ..state(-1, &[1])
        };
        let next = ctl()
            .next_state(&[1, 2, 3], &offline, &BTreeSet::from([1, 2, 3]), false)
            .expect("re-election");
        assert_eq!((next.leader, next.leader_epoch), (1, 6));
    }

    #[test]
    fn every_leader_change_bumps_the_leader_epoch() {
        // Failover to the next ISR member.
        let live = BTreeSet::from([2, 3]);
        let next = ctl()
            .next_state(&[1, 2, 3], &state(1, &[1, 2, 3]), &live, false)
            .expect("failover");
        assert_eq!((next.leader, next.leader_epoch), (2, 5));
        // Going leaderless, and a returning ISR member leading again.
        let none = BTreeSet::from([3]);
        let next = ctl()
            .next_state(&[1, 2, 3], &state(1, &[1]), &none, false)
            .expect("leaderless");
        assert_eq!((next.leader, next.leader_epoch), (-1, 5));
        let back = BTreeSet::from([1, 3]);
        let next = ctl()
            .next_state(&[1, 2, 3], &state(-1, &[1]), &back, false)
            .expect("back");
        assert_eq!((next.leader, next.leader_epoch), (1, 5));
        // Preferred-leader election, and an unclean one.
        let mut c = ctl();
        c.policy.preferred = true;
        let all = BTreeSet::from([1, 2, 3]);
        let next = c
            .next_state(&[1, 2, 3], &state(2, &[2, 3, 1]), &all, true)
            .expect("preferred");
        assert_eq!((next.leader, next.leader_epoch), (1, 5));
        c.policy.unclean = true;
        let next = c
            .next_state(&[1, 3], &state(1, &[1]), &BTreeSet::from([3]), false)
            .expect("unclean");
        assert_eq!((next.leader, next.leader_epoch), (3, 5));
    }

    #[test]
    fn no_live_isr_member_means_no_leader_and_the_last_isr_is_kept() {
        let live = BTreeSet::from([3]);
        let next = ctl()
            .next_state(&[1, 2, 3], &state(1, &[1]), &live, false)
            .expect("change");
        assert_eq!((next.leader, next.isr), (-1, vec![1]));
        // Already leaderless: nothing more to write until a member returns.
        assert!(ctl()
            .next_state(&[1, 2, 3], &state(-1, &[1]), &live, false)
            .is_none());
        let back = BTreeSet::from([1, 3]);
        let next = ctl()
            .next_state(&[1, 2, 3], &state(-1, &[1]), &back, false)
            .expect("change");
        assert_eq!(next.leader, 1);
    }

    fn image(brokers: &[(i32, i64)], partitions: &[(i32, &[i32])]) -> MetadataImage {
        let mut img = MetadataImage::default();
        for &(id, epoch) in brokers {
            img.brokers.insert(
                id,
                super::super::BrokerInfo {
                    id,
                    rack: None,
                    endpoints: Vec::new(),
                    epoch,
                },
            );
        }
        let topic = super::super::TopicImage {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            partitions: partitions
                .iter()
                .map(|&(leader, isr)| super::super::PartitionImage {
                    replicas: vec![1, 2, 3],
                    state: Some(state(leader, isr)),
                })
                .collect(),
            configs: BTreeMap::new(),
        };
        img.topics.insert("t".into(), std::sync::Arc::new(topic));
        img
    }

    #[test]
    fn a_new_broker_epoch_is_a_restart_and_a_first_sighting_is_not() {
        let known = BTreeMap::from([(1, 10), (2, 20)]);
        let img = image(&[(1, 10), (2, 25), (3, 30)], &[]);
        assert_eq!(restarted(&known, &img), BTreeSet::from([2]));
        assert!(restarted(&BTreeMap::new(), &img).is_empty());
    }

    #[test]
    fn a_restarted_broker_holds_on_until_it_leads_nothing_and_left_led_isrs() {
        // Leads partition 0.
        assert!(still_holds(&image(&[], &[(2, &[2, 1])]), 2));
        // In the ISR of a led partition.
        assert!(still_holds(&image(&[], &[(1, &[1, 2])]), 2));
        // Only in the kept ISR of a leaderless partition: done, it may lead
        // that partition again as a started broker.
        assert!(!still_holds(&image(&[], &[(-1, &[2])]), 2));
        assert!(!still_holds(&image(&[], &[(1, &[1, 3])]), 2));
    }
}
