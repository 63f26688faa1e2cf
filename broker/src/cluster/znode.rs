//! Kafka's classic znode paths and JSON payloads (Kafka 3.7 `ZkData.scala`),
//! so operators and tools find what they know. Readers ignore unknown keys and
//! accept missing optional ones, as Kafka's do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const BROKER_IDS: &str = "/brokers/ids";
pub const BROKER_TOPICS: &str = "/brokers/topics";
pub const BROKER_SEQID: &str = "/brokers/seqid";
pub const CONTROLLER: &str = "/controller";
pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
pub const CLUSTER_ID: &str = "/cluster/id";
pub const CONFIG_TOPICS: &str = "/config/topics";
pub const CONFIG_CHANGES: &str = "/config/changes";
pub const DELETE_TOPICS: &str = "/admin/delete_topics";
pub const PRODUCER_ID_BLOCK: &str = "/latest_producer_id_block";

/// Created empty at every broker start, as `KafkaZkClient.createTopLevelPaths`.
pub const PERSISTENT_PATHS: &[&str] = &[
    "/consumers",
    "/brokers",
    BROKER_IDS,
    BROKER_TOPICS,
    "/config",
    CONFIG_CHANGES,
    "/admin",
    DELETE_TOPICS,
    BROKER_SEQID,
    "/isr_change_notification",
    PRODUCER_ID_BLOCK,
    "/log_dir_event_notification",
    CONFIG_TOPICS,
    "/config/clients",
    "/config/users",
    "/config/brokers",
    "/config/ips",
    "/cluster",
];

pub fn broker_path(id: i32) -> String {
    format!("{BROKER_IDS}/{id}")
}

pub fn topic_path(topic: &str) -> String {
    format!("{BROKER_TOPICS}/{topic}")
}

pub fn partitions_path(topic: &str) -> String {
    format!("{BROKER_TOPICS}/{topic}/partitions")
}

pub fn partition_path(topic: &str, partition: i32) -> String {
    format!("{BROKER_TOPICS}/{topic}/partitions/{partition}")
}

pub fn state_path(topic: &str, partition: i32) -> String {
    format!("{BROKER_TOPICS}/{topic}/partitions/{partition}/state")
}

pub fn topic_config_path(topic: &str) -> String {
    format!("{CONFIG_TOPICS}/{topic}")
}

pub fn delete_marker_path(topic: &str) -> String {
    format!("{DELETE_TOPICS}/{topic}")
}

/// Milliseconds since the epoch, as the string Kafka writes in timestamps.
pub fn now_string() -> String {
    crate::now_ms().to_string()
}

/// `/brokers/ids/<id>`, version 5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerZnode {
    #[serde(default)]
    pub features: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub listener_security_protocol_map: BTreeMap<String, String>,
    #[serde(default)]
    pub endpoints: Vec<String>,
    #[serde(default = "minus_one")]
    pub jmx_port: i32,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "minus_one")]
    pub port: i32,
    pub version: i32,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

fn minus_one() -> i32 {
    -1
}

/// One `LISTENER://host:port` of a broker registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub listener: String,
    pub host: String,
    pub port: i32,
}

/// `PLAINTEXT://host:port`, as in `listeners`.
impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.listener, self.host, self.port)
    }
}

/// Endpoints as a `listeners` value: `A://h:1,B://h:2`.
pub fn endpoint_list(endpoints: &[Endpoint]) -> String {
    let list: Vec<String> = endpoints.iter().map(Endpoint::to_string).collect();
    list.join(",")
}

impl BrokerZnode {
    pub fn new(endpoints: &[Endpoint], rack: Option<String>) -> BrokerZnode {
        let plaintext = endpoints.iter().find(|e| e.listener == "PLAINTEXT");
        BrokerZnode {
            features: BTreeMap::new(),
            listener_security_protocol_map: endpoints
                .iter()
                .map(|e| (e.listener.clone(), security_protocol(&e.listener)))
                .collect(),
            endpoints: endpoints
                .iter()
                .map(|e| format!("{}://{}:{}", e.listener, bracket(&e.host), e.port))
                .collect(),
            jmx_port: -1,
            host: plaintext.map(|e| e.host.clone()),
            port: plaintext.map_or(-1, |e| e.port),
            version: 5,
            timestamp: Some(now_string()),
            rack,
        }
    }

    /// The endpoints, falling back to v1's top-level host and port.
    pub fn parsed_endpoints(&self) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .endpoints
            .iter()
            .filter_map(|e| {
                let (listener, rest) = e.split_once("://")?;
                let (host, port) = rest.rsplit_once(':')?;
                Some(Endpoint {
                    listener: listener.to_owned(),
                    host: host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned(),
                    port: port.parse().ok()?,
                })
            })
            .collect();
        if out.is_empty() {
            if let Some(host) = &self.host {
                out.push(Endpoint {
                    listener: "PLAINTEXT".into(),
                    host: host.clone(),
                    port: self.port,
                });
            }
        }
        out
    }
}

fn security_protocol(listener: &str) -> String {
    match listener {
        "SSL" | "SASL_PLAINTEXT" | "SASL_SSL" => listener.to_owned(),
        _ => "PLAINTEXT".to_owned(),
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `/brokers/topics/<topic>`, version 3: the replica assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicZnode {
    pub partitions: BTreeMap<String, Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    #[serde(default)]
    pub adding_replicas: BTreeMap<String, Vec<i32>>,
    #[serde(default)]
    pub removing_replicas: BTreeMap<String, Vec<i32>>,
    pub version: i32,
}

impl TopicZnode {
    pub fn new(assignment: &BTreeMap<i32, Vec<i32>>, topic_id: uuid::Uuid) -> TopicZnode {
        TopicZnode {
            partitions: assignment
                .iter()
                .map(|(p, r)| (p.to_string(), r.clone()))
                .collect(),
            topic_id: Some(topic_id_string(topic_id)),
            adding_replicas: BTreeMap::new(),
            removing_replicas: BTreeMap::new(),
            version: 3,
        }
    }

    /// Partition number -> replicas; entries with a non-numeric key are
    /// skipped (nothing Kafka writes).
    pub fn assignment(&self) -> BTreeMap<i32, Vec<i32>> {
        self.partitions
            .iter()
            .filter_map(|(p, r)| Some((p.parse().ok()?, r.clone())))
            .collect()
    }
}

/// Kafka writes topic ids as URL-safe base64 without padding (22 chars).
pub fn topic_id_string(id: uuid::Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn parse_topic_id(s: &str) -> Option<uuid::Uuid> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    uuid::Uuid::from_slice(&bytes).ok()
}

/// `/brokers/topics/<t>/partitions/<p>/state`, version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStateZnode {
    pub controller_epoch: i32,
    pub leader: i32,
    pub version: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_recovery_state: Option<i32>,
}

/// `/controller`, version 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerZnode {
    pub version: i32,
    pub brokerid: i32,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default = "minus_one", rename = "kraftControllerEpoch")]
    pub kraft_controller_epoch: i32,
}

/// `/config/topics/<topic>`: overrides of the broker's topic defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConfigZnode {
    pub version: i32,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// `/config/changes/config_change_<seq>`, version 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigChangeZnode {
    pub version: i32,
    pub entity_path: String,
}

/// `/cluster/id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterIdZnode {
    pub version: String,
    pub id: String,
}

/// `/latest_producer_id_block`: the last block of producer ids handed out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerIdBlockZnode {
    pub version: i32,
    pub broker: i32,
    pub block_start: String,
    pub block_end: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafka_written_json() {
        let b: BrokerZnode = serde_json::from_str(
            r#"{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT","SSL":"SSL"},"endpoints":["PLAINTEXT://h1:9092","SSL://h1:9093"],"jmx_port":-1,"port":9092,"host":"h1","version":5,"timestamp":"1717000000000","rack":"dc1"}"#,
        )
        .expect("broker json");
        assert_eq!(b.parsed_endpoints().len(), 2);
        assert_eq!(b.rack.as_deref(), Some("dc1"));
        let t: TopicZnode = serde_json::from_str(
            r#"{"partitions":{"0":[1,2,3],"1":[2,3,1]},"topic_id":"q5cE9wXDRkqf3nhcvVZBXw","adding_replicas":{},"removing_replicas":{},"version":3}"#,
        )
        .expect("topic json");
        assert_eq!(t.assignment()[&1], vec![2, 3, 1]);
        assert!(parse_topic_id(t.topic_id.as_deref().unwrap_or_default()).is_some());
        let s: PartitionStateZnode = serde_json::from_str(
            r#"{"controller_epoch":3,"leader":1,"version":1,"leader_epoch":7,"isr":[1,3]}"#,
        )
        .expect("state json");
        assert_eq!(s.isr, vec![1, 3]);
        let old: BrokerZnode =
            serde_json::from_str(r#"{"host":"h","port":9092,"version":1}"#).expect("v1");
        assert_eq!(old.parsed_endpoints()[0].port, 9092);
    }

    #[test]
    fn topic_ids_round_trip() {
        let id = uuid::Uuid::new_v4();
        let s = topic_id_string(id);
        assert_eq!(s.len(), 22);
        assert_eq!(parse_topic_id(&s), Some(id));
    }
}
